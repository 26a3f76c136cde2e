/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A latency histogram for /metrics: fixed buckets (0.25 ms to 10 s, in
 * roughly 2.5x steps), relaxed atomic counters, so that observing costs a
 * few nanoseconds on any thread and reading never blocks a writer. The text
 * it writes is the Prometheus histogram exposition (cumulative buckets,
 * _sum in seconds, _count).
 */
#ifndef JWTD_HISTOGRAM_H
#define JWTD_HISTOGRAM_H

#include <stdatomic.h>
#include <stdint.h>

#include "base/util.h"

#define HISTOGRAM_BUCKETS 15

struct histogram {
    atomic_uint_fast64_t bucket[HISTOGRAM_BUCKETS + 1]; /* the last one is +Inf */
    atomic_uint_fast64_t sum_us;
    atomic_uint_fast64_t count;
};

/* Record one duration in microseconds (negative values count as 0). */
void histogram_observe_us(struct histogram *h, int64_t us);

/* Append the exposition of h as `name{labels,le="..."}` lines; labels may be
 * "" or `route="login"` (no braces). False when the buffer is full. */
bool histogram_write(const struct histogram *h, struct buf *b, const char *name,
                     const char *labels);

#endif /* JWTD_HISTOGRAM_H */
