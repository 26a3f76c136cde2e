/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Private to libjwtd's own .c files: the layout of keys and key sets and the
 * helpers the files share. The server does not include this (it uses
 * jwtd_internal.h), so these definitions may change freely.
 *
 * Must not: declare anything with JWTD_API, or grow state that is not owned by
 * an object passed in (no globals, no caches).
 */
#ifndef JWTD_LIB_H
#define JWTD_LIB_H

#include "jwtd_internal.h"

#include <stdatomic.h>
#include <stdbool.h>

/* Exact sizes fixed by the algorithms (RFC 7518 §3.2, §3.4; RFC 8037 §3.1). */
#define JWTD__HS256_TAG_LEN 32
#define JWTD__HS256_MIN_KEY 32
#define JWTD__ES256_COORD 32
#define JWTD__ES256_SIG_LEN 64
#define JWTD__ED25519_LEN 32
#define JWTD__ED25519_SIG_LEN 64
#define JWTD__RSA_MIN_BITS 2048
/* Largest RSA modulus accepted. OpenSSL's public key check runs a
 * Miller-Rabin round over n when a key is loaded, whose cost grows with the
 * cube of the size (measured here: ~0.1 s at 8192 bits, so ~0.8 s at 16384), so
 * the cap bounds what one JWKS entry can cost while staying twice the size
 * anyone deploys. Also bounds the largest signature. */
#define JWTD__RSA_MAX_BITS 8192

/* Largest decoded segment of a token that passed the length cap. */
#define JWTD__MAX_SEGMENT ((JWTD_MAX_TOKEN_LEN / 4) * 3)

/* Every algorithm bit this library knows. */
#define JWTD__ALGS_ALL (JWTD_ALG_HS256 | JWTD_ALG_ES256 | JWTD_ALG_EDDSA | JWTD_ALG_RS256)

struct jwtd_key {
    atomic_uint refs;
    jwtd_alg alg;
    /* ES256 / EdDSA / RS256: the key, built once, never modified after
     * construction (so threads may verify with it concurrently). */
    EVP_PKEY *pkey;
    /* HS256: an HMAC-SHA-256 context already keyed, duplicated per use so the
     * algorithm is never fetched on the hot path. Holds the only copy of the
     * secret; OpenSSL wipes it when the context is freed. */
    EVP_MAC_CTX *hmac;
    /* The only signature length this key can produce or accept. */
    size_t sig_len;
    /* True when the key can sign (private key present, or HMAC). */
    bool can_sign;
    size_t kid_len;
    char kid[]; /* NUL-terminated, kid_len bytes before the NUL */
};

struct jwtd_keyset {
    jwtd_key **keys;
    size_t count;
    size_t cap;
    bool has_secret; /* holds an HS256 key */
    bool has_public; /* holds an asymmetric key */
};

/* Parse JSON text with the only flags the library ever uses: duplicate
 * members rejected, NUL never allowed, nothing after the value. NULL on any
 * error. The result is owned by the caller (json_decref). */
json_t *jwtd__json_parse(const void *text, size_t len);

/*
 * Build a key from a parsed JWK object (see jwtd_key_from_jwk for the rules).
 * On failure with JWTD_ERR_KEY, *ret_unusable (when not NULL) tells whether
 * the key is merely of a kind this library does not use (skippable in a set
 * with JWTD_JWKS_SKIP_UNUSABLE) rather than malformed or weak.
 */
jwtd_err jwtd__key_from_json(const json_t *jwk, unsigned flags, jwtd_key **ret_key,
                             bool *ret_unusable);

/*
 * Pick the key for a token header: by kid when the header has one (has_kid),
 * otherwise the set's only key pinned to alg. Returns the borrowed key, or
 * NULL with JWTD_ERR_KID.
 */
const jwtd_key *jwtd__keyset_select(const jwtd_keyset *set, jwtd_alg alg, bool has_kid,
                                    const char *kid, size_t kid_len);

/*
 * Verify a compact JWS and decode its payload into payload (cap bytes, at
 * least JWTD__MAX_SEGMENT). On success *ret_len is the payload length,
 * *ret_alg the header's algorithm and *ret_kid the header's kid ("" when the
 * header has none; otherwise the selected key's kid, which is equal, and
 * lives as long as the set). Shared by jwtd_jws_verify() and jwtd_verify()
 * so the JWT path needs no allocation for the payload.
 */
jwtd_err jwtd__jws_verify_into(const jwtd_keyset *set, unsigned allowed_algs, const char *jws,
                               size_t len, uint8_t *payload, size_t cap, size_t *ret_len,
                               jwtd_alg *ret_alg, const char **ret_kid);

/* Compute HMAC-SHA-256 with a keyed template context. out gets 32 bytes. */
jwtd_err jwtd__hmac(const jwtd_key *key, const uint8_t *msg, size_t len,
                    uint8_t out[JWTD__HS256_TAG_LEN]);

#endif /* JWTD_LIB_H */
