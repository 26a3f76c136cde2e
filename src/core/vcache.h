/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A bounded cache of successful token verifications, keyed by the whole
 * token, so that a token seen again skips the signature check (ES256/EdDSA/
 * RS256 verification costs tens of microseconds; a lookup costs a memcmp).
 * Entries carry the key-ring generation they were verified under and the
 * token's exp: a cached answer is never used past exp or after the ring
 * changed. Revocation is checked by the caller on every use, cached or not.
 */
#ifndef JWTD_VCACHE_H
#define JWTD_VCACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/util.h"

#define VCACHE_TOKEN_MAX 1024

struct vcache_value {
    char sub[UUID_STR_LEN];
    char sid[UUID_STR_LEN];
    char username[129];
    int64_t exp;
};

struct vcache;

/* A cache of `slots` entries (rounded up to a power of two); 0 disables. */
struct vcache *vcache_new(size_t slots);
void vcache_free(struct vcache *vc);

/* Look up token under ring generation gen; copies the value on a hit. */
bool vcache_get(struct vcache *vc, const char *token, size_t len, uint64_t gen,
                struct vcache_value *ret);

/* Remember a verified token. Tokens longer than VCACHE_TOKEN_MAX are not
 * cached. */
void vcache_put(struct vcache *vc, const char *token, size_t len, uint64_t gen,
                const struct vcache_value *v);

#endif /* JWTD_VCACHE_H */
