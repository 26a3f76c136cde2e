/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The common-password blocklist of the password policy (NIST SP 800-63B):
 * is this password, ASCII case aside, one of the commonly used or
 * compromised passwords or dictionary words vendored in data/blocklist/?
 * Exact match only. This module must not judge composition, length beyond
 * the table's own rule, or "systematic" looks (repeats, sequences,
 * leetspeak): a password is refused only when it is an entry, so a random
 * password is never refused. The table is built into the binary; nothing is
 * read at run time.
 */
#ifndef JWTD_BLOCKLIST_H
#define JWTD_BLOCKLIST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Entries shorter than this are not in the table (jwtd refuses such
 * passwords before asking). Must match MIN_BYTES in scripts/blocklist_gen.py. */
#define BLOCKLIST_MIN_BYTES 8

/* True when pw[0..len), with A-Z folded to a-z (bytes >= 0x80 untouched),
 * is an entry of the table. pw need not be NUL-terminated and is only read;
 * NULL or len 0 is never an entry. No allocation, no locking, no state:
 * safe from any number of threads. Time is O(log n) comparisons and leaks
 * where the password falls in the (public) sorted table, nothing more. */
bool blocklist_contains(const char *pw, size_t len);

/* Number of entries in the table. */
size_t blocklist_size(void);

/* The table itself, defined by blocklist_data.c, which
 * scripts/blocklist_gen.py writes at build time. Declared here only so that
 * the generated file is checked against this type; other modules use the
 * two functions above. Entry i is bytes[offsets[i] .. offsets[i + 1]),
 * entries strictly increasing in unsigned bytewise order. Static storage,
 * never freed. */
struct blocklist_table {
    size_t count;
    size_t max_len;
    const uint32_t *offsets; /* count + 1 items */
    const char *bytes;
};

extern const struct blocklist_table blocklist_table;

#endif /* JWTD_BLOCKLIST_H */
