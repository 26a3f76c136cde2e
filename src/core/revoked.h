/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The in-memory set of revoked session ids, consulted on every token check
 * (/auth/me, /auth/verify) instead of the database. An entry lives as long
 * as an access token of that session could still be valid; the set is fed by
 * this instance's own revocations at once and by the shared storage's
 * revocation feed on every poll, so revocations reach every instance within
 * the poll interval.
 */
#ifndef JWTD_REVOKED_H
#define JWTD_REVOKED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct revoked_set;

struct revoked_set *revoked_new(void);
void revoked_free(struct revoked_set *rs);

/* Add (or extend) sid until expires_ms. False when out of memory or sid is
 * not a UUID. */
bool revoked_add(struct revoked_set *rs, const char *sid, int64_t expires_ms);

/* True when sid is revoked. Lock-free when the set is empty. */
bool revoked_contains(struct revoked_set *rs, const char *sid);

/* Drop entries that expired before now_ms. */
void revoked_prune(struct revoked_set *rs, int64_t now_ms);

size_t revoked_size(struct revoked_set *rs);

#endif /* JWTD_REVOKED_H */
