/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Implementation of blocklist.h: binary search of the generated, sorted
 * table, folding the password's ASCII letters on the fly so that nothing is
 * copied (no buffer holds the secret, nothing to wipe). Must not fold with
 * tolower(): it depends on the locale and would fold bytes >= 0x80 under a
 * Latin-1 one, while the generator folds A-Z only.
 */
#include "core/blocklist.h"

static unsigned char ascii_lower(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') ? (unsigned char)(c - 'A' + 'a') : c;
}

/* <0, 0, >0 as entry i sorts before, equal to, after the folded password:
 * the order the generator sorted with (Python's bytes order). */
static int compare_entry(size_t i, const unsigned char *pw, size_t len)
{
    const struct blocklist_table *t = &blocklist_table;
    const unsigned char *e = (const unsigned char *)t->bytes + t->offsets[i];
    size_t elen = (size_t)(t->offsets[i + 1] - t->offsets[i]);
    size_t n = elen < len ? elen : len;
    for (size_t k = 0; k < n; k++) {
        unsigned char c = ascii_lower(pw[k]);
        if (e[k] != c)
            return e[k] < c ? -1 : 1;
    }
    return (elen > len) - (elen < len);
}

bool blocklist_contains(const char *pw, size_t len)
{
    const struct blocklist_table *t = &blocklist_table;
    /* Nothing outside the table's lengths can match: skip the search, which
     * also bounds the work for a 1 KiB password. */
    if (!pw || len < BLOCKLIST_MIN_BYTES || len > t->max_len)
        return false;
    const unsigned char *p = (const unsigned char *)pw;
    size_t lo = 0, hi = t->count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = compare_entry(mid, p, len);
        if (c == 0)
            return true;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return false;
}

size_t blocklist_size(void)
{
    return blocklist_table.count;
}
