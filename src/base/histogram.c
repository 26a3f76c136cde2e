/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Implementation of histogram.h.
 */
#include "base/histogram.h"

#include <stdio.h>

/* Upper bounds in microseconds, and the same as the `le` label text. */
static const int64_t bounds_us[HISTOGRAM_BUCKETS] = {
    250,    500,    1000,    2500,    5000,    10000,   25000,  50000,
    100000, 250000, 500000, 1000000, 2500000, 5000000, 10000000};
static const char *const bounds_text[HISTOGRAM_BUCKETS] = {
    "0.00025", "0.0005", "0.001", "0.0025", "0.005", "0.01", "0.025", "0.05",
    "0.1",     "0.25",   "0.5",   "1",      "2.5",   "5",    "10"};

void histogram_observe_us(struct histogram *h, int64_t us)
{
    if (us < 0)
        us = 0;
    unsigned i = 0;
    while (i < HISTOGRAM_BUCKETS && us > bounds_us[i])
        i++;
    atomic_fetch_add_explicit(&h->bucket[i], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&h->sum_us, (uint_fast64_t)us, memory_order_relaxed);
    atomic_fetch_add_explicit(&h->count, 1, memory_order_relaxed);
}

bool histogram_write(const struct histogram *h, struct buf *b, const char *name,
                     const char *labels)
{
    const char *sep = labels[0] ? "," : "";
    uint64_t cum = 0;
    bool ok = true;
    for (unsigned i = 0; i <= HISTOGRAM_BUCKETS; i++) {
        cum += atomic_load_explicit(&h->bucket[i], memory_order_relaxed);
        ok = ok && buf_printf(b, "%s_bucket{%s%sle=\"%s\"} %llu\n", name, labels, sep,
                              i < HISTOGRAM_BUCKETS ? bounds_text[i] : "+Inf",
                              (unsigned long long)cum);
    }
    uint64_t sum = atomic_load_explicit(&h->sum_us, memory_order_relaxed);
    /* _count equals the +Inf bucket by definition; reading it from the
     * buckets keeps the two consistent under concurrent observations. */
    const char *open = labels[0] ? "{" : "", *close = labels[0] ? "}" : "";
    ok = ok && buf_printf(b, "%s_sum%s%s%s %llu.%06llu\n", name, open, labels, close,
                          (unsigned long long)(sum / 1000000), (unsigned long long)(sum % 1000000));
    ok = ok && buf_printf(b, "%s_count%s%s%s %llu\n", name, open, labels, close,
                          (unsigned long long)cum);
    return ok;
}
