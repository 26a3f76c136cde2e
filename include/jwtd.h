/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libjwtd — verify JSON Web Tokens issued by jwtd, offline, from its JWKS.
 *
 * This is the whole public interface. The library parses JWK Sets, verifies
 * compact JWS signatures (ES256, EdDSA/Ed25519, RS256, HS256) with the
 * algorithm pinned to the key, and validates JWT claims against an issuer, an
 * audience, a leeway and a caller-supplied clock. It never touches the network,
 * files, the clock or global state, never logs and never aborts: every
 * function is safe to call from any thread on distinct objects, and the
 * read-only objects (a filled jwtd_keyset, a configured jwtd_verifier) may be
 * shared by threads that only verify with them.
 *
 * Error contract: every fallible function returns a jwtd_err. JWTD_OK (0)
 * means success; every failure is negative and jwtd_strerror() names it.
 * Out-parameters (ret_*) are written only on success. Objects returned through
 * ret_* belong to the caller, who releases them with the matching _free()
 * function; every _free() accepts NULL. Strings returned by accessors belong
 * to the object they were read from and live as long as it does.
 *
 * Link with `pkg-config --cflags --libs jwtd`. Depends on OpenSSL 3 libcrypto
 * and jansson.
 */
#ifndef JWTD_H
#define JWTD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define JWTD_API __attribute__((visibility("default")))
#define JWTD_MUST_CHECK __attribute__((warn_unused_result))
#else
#define JWTD_API
#define JWTD_MUST_CHECK
#endif

/* Largest token, in bytes, that is even looked at. Longer input is refused
 * with JWTD_ERR_TOO_LARGE before any decoding. */
#define JWTD_MAX_TOKEN_LEN 8192

/* Largest JWKS document accepted by jwtd_keyset_from_jwks(). */
#define JWTD_MAX_JWKS_LEN (256 * 1024)

/* Result codes. Negative values are failures. */
typedef enum jwtd_err {
    JWTD_OK = 0,
    JWTD_ERR_NOMEM = -1,          /* an allocation failed */
    JWTD_ERR_INVALID_ARG = -2,    /* API misuse: NULL argument, verifier without issuer/audience, ... */
    JWTD_ERR_TOO_LARGE = -3,      /* token over JWTD_MAX_TOKEN_LEN, or document over its cap */
    JWTD_ERR_MALFORMED = -4,      /* not three dot-separated segments, empty header, ... */
    JWTD_ERR_BASE64 = -5,         /* a segment is not canonical unpadded base64url */
    JWTD_ERR_JSON = -6,           /* header/payload/JWK is not a JSON object, or has duplicate keys */
    JWTD_ERR_ALG = -7,            /* alg missing, "none", not allowed, or not the key's algorithm */
    JWTD_ERR_KID = -8,            /* no key with the token's kid (or no single candidate without one) */
    JWTD_ERR_HEADER = -9,         /* forbidden header parameter: jwk, jku, x5u, x5c, x5t, ... */
    JWTD_ERR_CRIT = -10,          /* crit lists an extension this library does not understand */
    JWTD_ERR_SIGNATURE = -11,     /* the signature does not verify */
    JWTD_ERR_EXPIRED = -12,       /* exp is in the past (beyond the leeway) */
    JWTD_ERR_NOT_YET_VALID = -13, /* nbf is in the future (beyond the leeway) */
    JWTD_ERR_ISSUED_IN_FUTURE = -14, /* iat is in the future (beyond the leeway) */
    JWTD_ERR_MISSING_CLAIM = -15, /* a required claim (exp, iss, aud, sub, sid) is absent */
    JWTD_ERR_CLAIM_TYPE = -16,    /* a registered claim has the wrong JSON type */
    JWTD_ERR_ISSUER = -17,        /* iss differs from the configured issuer */
    JWTD_ERR_AUDIENCE = -18,      /* the configured audience is not in aud */
    JWTD_ERR_KEY = -19,           /* a JWK is unusable: bad member, weak or invalid key, wrong use */
    JWTD_ERR_DUPLICATE_KID = -20, /* two keys of one set share a kid */
    JWTD_ERR_MIXED_KEYS = -21,    /* a set mixes secret (oct) and public keys */
    JWTD_ERR_INTERNAL = -22       /* the crypto library failed unexpectedly */
} jwtd_err;

/* A short English phrase for a code, e.g. "token has expired". Never NULL;
 * the string is static. Safe to show to a client: it names no key material. */
JWTD_API const char *jwtd_strerror(jwtd_err err);

/* Signature algorithms, usable as a bit set. */
typedef enum jwtd_alg {
    JWTD_ALG_HS256 = 1u << 0,
    JWTD_ALG_ES256 = 1u << 1,
    JWTD_ALG_EDDSA = 1u << 2, /* Ed25519 only (RFC 8037) */
    JWTD_ALG_RS256 = 1u << 3  /* RSASSA-PKCS1-v1_5 SHA-256, modulus >= 2048 bits */
} jwtd_alg;

/* Every asymmetric algorithm: the default set of a new verifier. */
#define JWTD_ALGS_ASYMMETRIC (JWTD_ALG_ES256 | JWTD_ALG_EDDSA | JWTD_ALG_RS256)

/* The JOSE name of one algorithm ("ES256", "EdDSA", ...), or NULL when alg is
 * not exactly one known algorithm. */
JWTD_API const char *jwtd_alg_name(jwtd_alg alg);

/* The algorithm named by a JOSE name (case-sensitive), or 0 when unknown.
 * "none" is unknown. */
JWTD_API jwtd_alg jwtd_alg_from_name(const char *name);

/* ---------------------------------------------------------------- keys -- */

/* One verification key with its kid and its single algorithm. Keys are
 * reference-counted internally; jwtd_key_free() drops the caller's
 * reference. */
typedef struct jwtd_key jwtd_key;

/* Flags for jwtd_key_from_jwk() and jwtd_keyset_from_jwks(). */
enum {
    /* Accept symmetric keys (kty "oct", HS256). Off by default: a JWKS
     * fetched from a server must never make a public document a secret. */
    JWTD_JWK_ALLOW_SECRET = 1u << 0,
    /* In a key set, skip keys this library cannot use for signatures
     * (encryption keys, unknown kty/crv/alg) instead of failing the whole
     * set. Malformed or weak keys of a supported type still fail, and so
     * does an oct key without JWTD_JWK_ALLOW_SECRET. */
    JWTD_JWKS_SKIP_UNUSABLE = 1u << 1
};

/*
 * Parse one JWK (RFC 7517) from JSON text. Accepted: kty EC with crv P-256
 * (ES256), kty OKP with crv Ed25519 (EdDSA), kty RSA with a modulus of 2048
 * to 8192 bits and an odd public exponent 3 <= e < 2^256 (RS256), and, with
 * JWTD_JWK_ALLOW_SECRET, kty oct of at least 32 bytes (HS256). Private
 * members, when present, are ignored: only the public part is kept.
 *
 * The key's algorithm is pinned: when "alg" is present it must be the one
 * that fits kty/crv, otherwise it is derived from them. A key whose "use" is
 * not "sig", or whose "key_ops" does not include "verify", is refused, as are
 * EC points off the curve, RSA keys with the ROCA fingerprint, and duplicate
 * JSON members. "kid" is optional (empty string when absent).
 *
 * On success *ret_key holds a new key owned by the caller.
 */
JWTD_API JWTD_MUST_CHECK jwtd_err jwtd_key_from_jwk(const char *json, size_t len,
                                                   unsigned flags, jwtd_key **ret_key);

/* A HS256 key from raw secret bytes (at least 32). kid may be NULL (empty). */
JWTD_API JWTD_MUST_CHECK jwtd_err jwtd_key_new_hmac(const char *kid, const uint8_t *secret,
                                                   size_t secret_len, jwtd_key **ret_key);

/* Drop the caller's reference; the key is wiped and freed with the last one. */
JWTD_API void jwtd_key_free(jwtd_key *key);

/* The key's kid ("" when it has none). Never NULL for a non-NULL key. */
JWTD_API const char *jwtd_key_kid(const jwtd_key *key);

/* The key's pinned algorithm. */
JWTD_API jwtd_alg jwtd_key_alg(const jwtd_key *key);

/* ------------------------------------------------------------- key sets -- */

/* A set of verification keys, looked up by kid. Not thread-safe while being
 * filled; read-only use (verification) may be shared by threads. */
typedef struct jwtd_keyset jwtd_keyset;

/* A new empty set, owned by the caller. */
JWTD_API JWTD_MUST_CHECK jwtd_err jwtd_keyset_new(jwtd_keyset **ret_set);

/*
 * Parse a JWK Set document ({"keys": [...]}) into a new set. Every key is
 * parsed as by jwtd_key_from_jwk() with the same flags. Two keys with the
 * same kid fail with JWTD_ERR_DUPLICATE_KID; a set mixing oct and public keys
 * fails with JWTD_ERR_MIXED_KEYS. An empty "keys" array gives an empty set
 * (which verifies nothing). Documents over JWTD_MAX_JWKS_LEN are refused.
 */
JWTD_API JWTD_MUST_CHECK jwtd_err jwtd_keyset_from_jwks(const char *json, size_t len,
                                                       unsigned flags, jwtd_keyset **ret_set);

/*
 * Add a key. On success the set takes its own reference (the caller still
 * owns and must free its own). Fails with JWTD_ERR_DUPLICATE_KID or
 * JWTD_ERR_MIXED_KEYS as jwtd_keyset_from_jwks() does.
 */
JWTD_API JWTD_MUST_CHECK jwtd_err jwtd_keyset_add(jwtd_keyset *set, jwtd_key *key);

/* Number of keys in the set. */
JWTD_API size_t jwtd_keyset_count(const jwtd_keyset *set);

/* The key with this kid, or NULL. The key belongs to the set. */
JWTD_API const jwtd_key *jwtd_keyset_find(const jwtd_keyset *set, const char *kid);

/* Free the set and drop its key references. NULL is fine. */
JWTD_API void jwtd_keyset_free(jwtd_keyset *set);

/* ------------------------------------------------------------ raw JWS --- */

/*
 * Verify a compact JWS (RFC 7515) and return its payload, without looking at
 * the payload. The protected header must be a JSON object with a string
 * "alg" that is in allowed_algs and equal to the selected key's algorithm;
 * the key is selected by "kid" (or, when the header has no kid, the set's
 * only key of that algorithm). Headers jwk, jku, x5u, x5c, x5t, x5t#S256 and
 * any "crit" are refused; "b64": false is refused. Every segment must be
 * canonical unpadded base64url; a "kid" that is not a string is refused with
 * JWTD_ERR_HEADER. ES256 signatures must be exactly 64 bytes
 * (r||s, RFC 7518 §3.4) with 0 < r, s < n; RS256 signatures exactly the
 * modulus length; HMAC tags are compared in constant time.
 *
 * On success *ret_payload is a new NUL-terminated buffer (free() it) and
 * *ret_len its length without the NUL.
 */
JWTD_API JWTD_MUST_CHECK jwtd_err jwtd_jws_verify(const jwtd_keyset *set, unsigned allowed_algs,
                                                 const char *jws, size_t len,
                                                 uint8_t **ret_payload, size_t *ret_len);

/* ------------------------------------------------------------- JWT ------ */

/* Verification policy: allowed algorithms, expected issuer and audience,
 * leeway. Configure once, then share read-only between threads. */
typedef struct jwtd_verifier jwtd_verifier;

/* A new verifier owned by the caller: algorithms JWTD_ALGS_ASYMMETRIC,
 * leeway 5 s, and no issuer or audience yet (both must be set before use). */
JWTD_API JWTD_MUST_CHECK jwtd_err jwtd_verifier_new(jwtd_verifier **ret_verifier);

/* Allowed algorithms, a non-empty set of jwtd_alg bits. */
JWTD_API JWTD_MUST_CHECK jwtd_err jwtd_verifier_set_algs(jwtd_verifier *v, unsigned algs);

/* The exact "iss" required (copied; not empty). */
JWTD_API JWTD_MUST_CHECK jwtd_err jwtd_verifier_set_issuer(jwtd_verifier *v, const char *issuer);

/* The audience that must appear in "aud" (a string, or an array of
 * strings) (copied; not empty). */
JWTD_API JWTD_MUST_CHECK jwtd_err jwtd_verifier_set_audience(jwtd_verifier *v,
                                                            const char *audience);

/* Leeway in seconds (0..3600) applied to exp, nbf and iat. */
JWTD_API JWTD_MUST_CHECK jwtd_err jwtd_verifier_set_leeway(jwtd_verifier *v, int64_t seconds);

/* Require a "sid" claim (on by default: every jwtd access token has one).
 * Turn off only to verify tokens of other issuers. */
JWTD_API void jwtd_verifier_require_sid(jwtd_verifier *v, bool required);

/* Free the verifier. NULL is fine. */
JWTD_API void jwtd_verifier_free(jwtd_verifier *v);

/* Verified claims of one token. */
typedef struct jwtd_claims jwtd_claims;

/*
 * Verify a JWT: the signature as jwtd_jws_verify() does (with the verifier's
 * algorithms), then the claims at time `now` (seconds since the Unix epoch,
 * supplied by the caller). The payload must be a JSON object without
 * duplicate members. Refused: missing exp; exp <= now - leeway; nbf or iat
 * > now + leeway; missing or different iss; missing aud or aud without the
 * configured audience; missing or empty sub; missing or empty sid (unless
 * turned off); fractional times count as the next whole second;
 * registered claims of the wrong type (exp/nbf/iat not numbers; iss, sub,
 * sid, jti, preferred_username not strings; aud not a string or array
 * of strings).
 *
 * On success *ret_claims holds the claims, owned by the caller.
 */
JWTD_API JWTD_MUST_CHECK jwtd_err jwtd_verify(const jwtd_verifier *v, const jwtd_keyset *set,
                                             const char *token, size_t len, int64_t now,
                                             jwtd_claims **ret_claims);

/* Registered claims of a verified token; NULL when absent. */
JWTD_API const char *jwtd_claims_sub(const jwtd_claims *c);
JWTD_API const char *jwtd_claims_sid(const jwtd_claims *c);
JWTD_API const char *jwtd_claims_iss(const jwtd_claims *c);
JWTD_API const char *jwtd_claims_jti(const jwtd_claims *c);
/* jwtd's "preferred_username" claim, or NULL. */
JWTD_API const char *jwtd_claims_username(const jwtd_claims *c);
/* exp, and iat (0 when absent), in whole seconds. */
JWTD_API int64_t jwtd_claims_exp(const jwtd_claims *c);
JWTD_API int64_t jwtd_claims_iat(const jwtd_claims *c);
/* The kid ("" when the header has none) and alg of the protected header. */
JWTD_API const char *jwtd_claims_kid(const jwtd_claims *c);
JWTD_API jwtd_alg jwtd_claims_alg(const jwtd_claims *c);

/* Any top-level string claim by name, or NULL when absent or not a string. */
JWTD_API const char *jwtd_claims_string(const jwtd_claims *c, const char *name);

/* Any top-level integer claim; false when absent or not an integer. */
JWTD_API bool jwtd_claims_integer(const jwtd_claims *c, const char *name, int64_t *ret_value);

/* The payload as compact JSON text, new NUL-terminated string (free() it),
 * or NULL when out of memory. */
JWTD_API char *jwtd_claims_json(const jwtd_claims *c);

/* Free the claims. NULL is fine. */
JWTD_API void jwtd_claims_free(jwtd_claims *c);

#ifdef __cplusplus
}
#endif

#endif /* JWTD_H */
