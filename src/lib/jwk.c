/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Keys: parsing JWKs (RFC 7517/7518/8037) into verification keys with one
 * pinned algorithm, wrapping OpenSSL keys for the server, HMAC keys,
 * reference counting, the public JWK and the RFC 7638 thumbprint.
 *
 * Every check that makes a key trustworthy happens here, once, when the key
 * is built: curve and point validity, RSA size, exponent and the ROCA
 * fingerprint, HMAC key length, "use"/"key_ops"/"alg" consistency. The verify
 * path then only ever sees keys that passed.
 *
 * Must not: keep private JWK members (d, p, q, ...), publish a secret, fetch
 * anything, or build an OpenSSL key per verification.
 */
#include "jwtd_lib.h"

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/param_build.h>

#include <stdlib.h>
#include <string.h>

/* FIPS 186-4 B.3.1: e < 2^256. */
#define RSA_MAX_E_BITS 256

/* ------------------------------------------------------------ lifetime -- */

static jwtd_key *key_alloc(jwtd_alg alg, const char *kid, size_t kid_len)
{
    jwtd_key *key;

    if (kid_len > SIZE_MAX - sizeof(*key) - 1)
        return NULL;
    key = calloc(1, sizeof(*key) + kid_len + 1);
    if (key == NULL)
        return NULL;
    atomic_init(&key->refs, 1u);
    key->alg = alg;
    key->kid_len = kid_len;
    if (kid_len > 0)
        memcpy(key->kid, kid, kid_len);
    key->kid[kid_len] = '\0';
    return key;
}

static void key_destroy(jwtd_key *key)
{
    EVP_PKEY_free(key->pkey);
    /* The HMAC provider clears its copy of the secret when freed. */
    EVP_MAC_CTX_free(key->hmac);
    free(key);
}

jwtd_key *jwtd__key_ref(jwtd_key *key)
{
    if (key != NULL)
        atomic_fetch_add_explicit(&key->refs, 1u, memory_order_relaxed);
    return key;
}

void jwtd_key_free(jwtd_key *key)
{
    if (key == NULL)
        return;
    /* acq_rel: the last owner must see every write other owners made before
     * dropping their references. */
    if (atomic_fetch_sub_explicit(&key->refs, 1u, memory_order_acq_rel) == 1u)
        key_destroy(key);
}

const char *jwtd_key_kid(const jwtd_key *key)
{
    return key != NULL ? key->kid : NULL;
}

jwtd_alg jwtd_key_alg(const jwtd_key *key)
{
    return key != NULL ? key->alg : 0;
}

EVP_PKEY *jwtd__key_pkey(const jwtd_key *key)
{
    return key != NULL ? key->pkey : NULL;
}

/* ---------------------------------------------------------------- HMAC -- */

static jwtd_err hmac_ctx_new(const uint8_t *secret, size_t len, EVP_MAC_CTX **ret_ctx)
{
    char digest[] = "SHA256";
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
        OSSL_PARAM_construct_end(),
    };
    EVP_MAC *mac;
    EVP_MAC_CTX *ctx;

    /* Fetched once per key, never per verification. */
    mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    if (mac == NULL)
        return JWTD_ERR_INTERNAL;
    ctx = EVP_MAC_CTX_new(mac);
    EVP_MAC_free(mac); /* the context holds its own reference */
    if (ctx == NULL)
        return JWTD_ERR_NOMEM;
    if (EVP_MAC_init(ctx, secret, len, params) != 1) {
        EVP_MAC_CTX_free(ctx);
        return JWTD_ERR_INTERNAL;
    }
    *ret_ctx = ctx;
    return JWTD_OK;
}

jwtd_err jwtd__hmac(const jwtd_key *key, const uint8_t *msg, size_t len,
                    uint8_t out[JWTD__HS256_TAG_LEN])
{
    EVP_MAC_CTX *ctx;
    size_t outl = 0;
    jwtd_err err = JWTD_OK;

    if (key == NULL || key->hmac == NULL)
        return JWTD_ERR_INVALID_ARG;
    /* The template is keyed and never updated; a duplicate per call lets
     * threads share the key without locks. */
    ctx = EVP_MAC_CTX_dup(key->hmac);
    if (ctx == NULL)
        return JWTD_ERR_NOMEM;
    if (EVP_MAC_update(ctx, msg, len) != 1
        || EVP_MAC_final(ctx, out, &outl, JWTD__HS256_TAG_LEN) != 1
        || outl != JWTD__HS256_TAG_LEN)
        err = JWTD_ERR_INTERNAL;
    EVP_MAC_CTX_free(ctx);
    return err;
}

static jwtd_err hmac_key_new(const char *kid, size_t kid_len, const uint8_t *secret,
                             size_t secret_len, jwtd_key **ret_key)
{
    jwtd_key *key;
    jwtd_err err;

    /* RFC 7518 §3.2: a key of the same size as the hash output or larger. */
    if (secret_len < JWTD__HS256_MIN_KEY)
        return JWTD_ERR_KEY;
    key = key_alloc(JWTD_ALG_HS256, kid, kid_len);
    if (key == NULL)
        return JWTD_ERR_NOMEM;
    err = hmac_ctx_new(secret, secret_len, &key->hmac);
    if (err != JWTD_OK) {
        key_destroy(key);
        return err;
    }
    key->sig_len = JWTD__HS256_TAG_LEN;
    key->can_sign = true;
    *ret_key = key;
    return JWTD_OK;
}

jwtd_err jwtd_key_new_hmac(const char *kid, const uint8_t *secret, size_t secret_len,
                           jwtd_key **ret_key)
{
    jwtd_err err;

    if (secret == NULL || ret_key == NULL)
        return JWTD_ERR_INVALID_ARG;
    if (kid == NULL)
        kid = "";
    ERR_set_mark();
    err = hmac_key_new(kid, strlen(kid), secret, secret_len, ret_key);
    ERR_pop_to_mark();
    return err;
}

/* --------------------------------------------------------- RSA checks --- */

/*
 * ROCA (Nemec et al., "The Return of Coppersmith's Attack", CCS 2017): the
 * Infineon library built primes as k*M + (65537^a mod M), M a primorial, so
 * the modulus satisfies n mod p ∈ <65537> (the subgroup of Z_p* generated by
 * 65537) for every small prime p dividing M. A random modulus passes that for
 * all the primes 3..167 with negligible probability, so passing all of them
 * is the published fingerprint. The subgroups are recomputed here (a few
 * thousand multiplications) rather than stored as tables.
 */
static bool rsa_has_roca_fingerprint(const BIGNUM *n)
{
    for (unsigned p = 3; p <= 167; p += 2) {
        bool prime = true, member = false;
        unsigned g, x = 1;
        BN_ULONG r;

        for (unsigned d = 3; d * d <= p; d += 2)
            if (p % d == 0)
                prime = false;
        if (!prime)
            continue;
        r = BN_mod_word(n, (BN_ULONG)p);
        if (r == (BN_ULONG)-1)
            return true; /* cannot tell: treat as suspicious */
        g = 65537u % p;
        do {
            if (x == r) {
                member = true;
                break;
            }
            x = (x * g) % p;
        } while (x != 1);
        if (!member)
            return false;
    }
    return true;
}

static jwtd_err rsa_check_public(const BIGNUM *n, const BIGNUM *e)
{
    int bits = BN_num_bits(n);

    if (bits < JWTD__RSA_MIN_BITS || bits > JWTD__RSA_MAX_BITS || !BN_is_odd(n))
        return JWTD_ERR_KEY;
    /* e = 1 makes the "signature" the message itself; even e is not RSA. */
    if (!BN_is_odd(e) || BN_num_bits(e) < 2 || BN_num_bits(e) > RSA_MAX_E_BITS
        || BN_cmp(e, n) >= 0)
        return JWTD_ERR_KEY;
    if (rsa_has_roca_fingerprint(n))
        return JWTD_ERR_KEY;
    return JWTD_OK;
}

/* ------------------------------------------------ building OpenSSL keys -- */

/* OpenSSL's own validation on top of ours: point on the curve, modulus
 * composite without small factors, ... */
static jwtd_err pkey_public_check(EVP_PKEY *pkey)
{
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_pkey(NULL, pkey, NULL);
    int ok;

    if (ctx == NULL)
        return JWTD_ERR_NOMEM;
    ok = EVP_PKEY_public_check(ctx);
    EVP_PKEY_CTX_free(ctx);
    return ok == 1 ? JWTD_OK : JWTD_ERR_KEY;
}

static jwtd_err pkey_fromdata(const char *type, OSSL_PARAM *params, EVP_PKEY **ret_pkey)
{
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, type, NULL);
    EVP_PKEY *pkey = NULL;
    jwtd_err err;

    if (ctx == NULL)
        return JWTD_ERR_NOMEM;
    if (EVP_PKEY_fromdata_init(ctx) != 1) {
        err = JWTD_ERR_INTERNAL;
        goto free_ctx;
    }
    /* Rejected data (e.g. a point not on the curve) is the key's fault. */
    if (EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) != 1) {
        err = JWTD_ERR_KEY;
        goto free_ctx;
    }
    err = pkey_public_check(pkey);
    if (err != JWTD_OK) {
        EVP_PKEY_free(pkey);
        goto free_ctx;
    }
    *ret_pkey = pkey;
free_ctx:
    EVP_PKEY_CTX_free(ctx);
    return err;
}

static jwtd_err ec_pkey_new(const uint8_t x[JWTD__ES256_COORD], const uint8_t y[JWTD__ES256_COORD],
                            EVP_PKEY **ret_pkey)
{
    char group[] = "prime256v1";
    uint8_t point[1 + 2 * JWTD__ES256_COORD];
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, group, 0),
        OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, point, sizeof(point)),
        OSSL_PARAM_construct_end(),
    };

    point[0] = 0x04; /* SEC 1 uncompressed point */
    memcpy(point + 1, x, JWTD__ES256_COORD);
    memcpy(point + 1 + JWTD__ES256_COORD, y, JWTD__ES256_COORD);
    return pkey_fromdata("EC", params, ret_pkey);
}

/*
 * The encodings, sign bit cleared, of the y-coordinates of Ed25519's points
 * of small order: the eight-torsion has five distinct y (1 for the neutral
 * point, p - 1 for the point of order 2, 0 for the two of order 4, and a
 * pair y8, p - y8 for the four of order 8), and y = 0 and 1 also have the
 * non-canonical encodings p and p + 1 (below 2^255). Worked out by
 * multiplying curve points by the prime group order L (what remains lies
 * in the eight-torsion) and listing the y of the multiples.
 */
static const uint8_t ED25519_SMALL_ORDER[][32] = {
    {0x00}, /* y = 0 */
    {0x01}, /* y = 1 */
    {0x26, 0xe8, 0x95, 0x8f, 0xc2, 0xb2, 0x27, 0xb0, 0x45, 0xc3, 0xf4, 0x89, 0xf2, 0xef, 0x98, 0xf0,
     0xd5, 0xdf, 0xac, 0x05, 0xd3, 0xc6, 0x33, 0x39, 0xb1, 0x38, 0x02, 0x88, 0x6d, 0x53, 0xfc, 0x05},
    {0xc7, 0x17, 0x6a, 0x70, 0x3d, 0x4d, 0xd8, 0x4f, 0xba, 0x3c, 0x0b, 0x76, 0x0d, 0x10, 0x67, 0x0f,
     0x2a, 0x20, 0x53, 0xfa, 0x2c, 0x39, 0xcc, 0xc6, 0x4e, 0xc7, 0xfd, 0x77, 0x92, 0xac, 0x03, 0x7a},
    /* p - 1, p, p + 1 */
    {0xec, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
     0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f},
    {0xed, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
     0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f},
    {0xee, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
     0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f},
};

bool jwtd__ed25519_small_order(const uint8_t key[32])
{
    for (size_t i = 0; i < sizeof ED25519_SMALL_ORDER / sizeof ED25519_SMALL_ORDER[0]; i++) {
        const uint8_t *bad = ED25519_SMALL_ORDER[i];
        if (memcmp(key, bad, 31) == 0 && (key[31] & 0x7f) == bad[31])
            return true;
    }
    return false;
}

static jwtd_err ed25519_pkey_new(const uint8_t x[JWTD__ED25519_LEN], EVP_PKEY **ret_pkey)
{
    uint8_t pub[JWTD__ED25519_LEN];
    if (jwtd__ed25519_small_order(x))
        return JWTD_ERR_KEY;
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, pub, sizeof(pub)),
        OSSL_PARAM_construct_end(),
    };

    memcpy(pub, x, sizeof(pub));
    return pkey_fromdata("ED25519", params, ret_pkey);
}

static jwtd_err rsa_pkey_new(const BIGNUM *n, const BIGNUM *e, EVP_PKEY **ret_pkey)
{
    OSSL_PARAM_BLD *bld;
    OSSL_PARAM *params = NULL;
    jwtd_err err;

    err = rsa_check_public(n, e);
    if (err != JWTD_OK)
        return err;
    bld = OSSL_PARAM_BLD_new();
    if (bld == NULL)
        return JWTD_ERR_NOMEM;
    if (OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, n) != 1
        || OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, e) != 1
        || (params = OSSL_PARAM_BLD_to_param(bld)) == NULL) {
        err = JWTD_ERR_NOMEM;
        goto free_bld;
    }
    err = pkey_fromdata("RSA", params, ret_pkey);
    OSSL_PARAM_free(params);
free_bld:
    OSSL_PARAM_BLD_free(bld);
    return err;
}

/* ------------------------------------------------- public components ---- */

/* Public values of a key, base64url-encoded: EC x and y, OKP x, RSA n and e
 * (in that order as a and b). Both strings are new (free()). */
static jwtd_err pkey_public_b64(jwtd_alg alg, EVP_PKEY *pkey, char **ret_a, char **ret_b)
{
    uint8_t *raw_a = NULL, *raw_b = NULL;
    size_t len_a = 0, len_b = 0;
    BIGNUM *bn_a = NULL, *bn_b = NULL;
    char *a = NULL, *b = NULL;
    jwtd_err err = JWTD_ERR_INTERNAL;

    switch (alg) {
    case JWTD_ALG_ES256:
        if (EVP_PKEY_get_bn_param(pkey, OSSL_PKEY_PARAM_EC_PUB_X, &bn_a) != 1
            || EVP_PKEY_get_bn_param(pkey, OSSL_PKEY_PARAM_EC_PUB_Y, &bn_b) != 1)
            goto out;
        /* RFC 7518 §6.2.1.2: coordinates are always the full 32 bytes. */
        len_a = len_b = JWTD__ES256_COORD;
        break;
    case JWTD_ALG_EDDSA:
        len_a = JWTD__ED25519_LEN;
        raw_a = malloc(len_a);
        if (raw_a == NULL) {
            err = JWTD_ERR_NOMEM;
            goto out;
        }
        if (EVP_PKEY_get_octet_string_param(pkey, OSSL_PKEY_PARAM_PUB_KEY, raw_a, len_a, &len_a)
                != 1
            || len_a != JWTD__ED25519_LEN)
            goto out;
        break;
    case JWTD_ALG_RS256:
        if (EVP_PKEY_get_bn_param(pkey, OSSL_PKEY_PARAM_RSA_N, &bn_a) != 1
            || EVP_PKEY_get_bn_param(pkey, OSSL_PKEY_PARAM_RSA_E, &bn_b) != 1)
            goto out;
        /* RFC 7518 §6.3.1: minimal big-endian, no leading zero octets. */
        len_a = (size_t)BN_num_bytes(bn_a);
        len_b = (size_t)BN_num_bytes(bn_b);
        break;
    default:
        err = JWTD_ERR_INVALID_ARG;
        goto out;
    }
    if (bn_a != NULL) {
        raw_a = malloc(len_a);
        raw_b = malloc(len_b);
        if (raw_a == NULL || raw_b == NULL) {
            err = JWTD_ERR_NOMEM;
            goto out;
        }
        if (BN_bn2binpad(bn_a, raw_a, (int)len_a) < 0 || BN_bn2binpad(bn_b, raw_b, (int)len_b) < 0)
            goto out;
    }
    a = malloc(jwtd__b64url_encoded_len(len_a) + 1);
    if (a == NULL) {
        err = JWTD_ERR_NOMEM;
        goto out;
    }
    jwtd__b64url_encode(raw_a, len_a, a, jwtd__b64url_encoded_len(len_a) + 1);
    if (raw_b != NULL) {
        b = malloc(jwtd__b64url_encoded_len(len_b) + 1);
        if (b == NULL) {
            err = JWTD_ERR_NOMEM;
            goto out;
        }
        jwtd__b64url_encode(raw_b, len_b, b, jwtd__b64url_encoded_len(len_b) + 1);
    }
    *ret_a = a;
    *ret_b = b;
    a = b = NULL;
    err = JWTD_OK;
out:
    free(a);
    free(b);
    free(raw_a);
    free(raw_b);
    BN_free(bn_a);
    BN_free(bn_b);
    return err;
}

static jwtd_err pkey_thumbprint(jwtd_alg alg, EVP_PKEY *pkey, char out[44])
{
    char *a = NULL, *b = NULL, *text = NULL;
    size_t cap, len = 0;
    uint8_t md[32];
    unsigned mdlen = 0;
    jwtd_err err;

    err = pkey_public_b64(alg, pkey, &a, &b);
    if (err != JWTD_OK)
        return err;
    /* RFC 7638 §3.2: only the required members, in lexicographic order, no
     * whitespace. Values are base64url, so they need no JSON escaping. */
    cap = strlen(a) + (b != NULL ? strlen(b) : 0) + 64;
    text = malloc(cap);
    if (text == NULL) {
        err = JWTD_ERR_NOMEM;
        goto out;
    }
    switch (alg) {
    case JWTD_ALG_ES256:
        len = (size_t)snprintf(text, cap, "{\"crv\":\"P-256\",\"kty\":\"EC\",\"x\":\"%s\",\"y\":\"%s\"}",
                               a, b);
        break;
    case JWTD_ALG_EDDSA: /* RFC 8037 §2 */
        len = (size_t)snprintf(text, cap, "{\"crv\":\"Ed25519\",\"kty\":\"OKP\",\"x\":\"%s\"}", a);
        break;
    default:
        len = (size_t)snprintf(text, cap, "{\"e\":\"%s\",\"kty\":\"RSA\",\"n\":\"%s\"}", b, a);
        break;
    }
    if (len >= cap || EVP_Digest(text, len, md, &mdlen, EVP_sha256(), NULL) != 1 || mdlen != 32) {
        err = JWTD_ERR_INTERNAL;
        goto out;
    }
    jwtd__b64url_encode(md, sizeof(md), out, 44);
out:
    free(text);
    free(a);
    free(b);
    return err;
}

jwtd_err jwtd__key_thumbprint(const jwtd_key *key, char out[44])
{
    jwtd_err err;

    if (key == NULL || out == NULL || key->pkey == NULL)
        return JWTD_ERR_INVALID_ARG;
    ERR_set_mark();
    err = pkey_thumbprint(key->alg, key->pkey, out);
    ERR_pop_to_mark();
    return err;
}

jwtd_err jwtd__key_public_jwk(const jwtd_key *key, json_t **ret_jwk)
{
    char *a = NULL, *b = NULL;
    json_t *jwk;
    jwtd_err err;
    int rc = 0;

    if (key == NULL || ret_jwk == NULL || key->pkey == NULL)
        return JWTD_ERR_INVALID_ARG; /* a secret is never published */
    ERR_set_mark();
    err = pkey_public_b64(key->alg, key->pkey, &a, &b);
    ERR_pop_to_mark();
    if (err != JWTD_OK)
        return err;
    jwk = json_object();
    if (jwk == NULL) {
        err = JWTD_ERR_NOMEM;
        goto out;
    }
    /* Member order is fixed (objects keep insertion order) so documents are
     * stable across runs. */
    switch (key->alg) {
    case JWTD_ALG_ES256:
        rc |= json_object_set_new(jwk, "kty", json_string("EC"));
        rc |= json_object_set_new(jwk, "crv", json_string("P-256"));
        rc |= json_object_set_new(jwk, "x", json_string(a));
        rc |= json_object_set_new(jwk, "y", json_string(b));
        break;
    case JWTD_ALG_EDDSA:
        rc |= json_object_set_new(jwk, "kty", json_string("OKP"));
        rc |= json_object_set_new(jwk, "crv", json_string("Ed25519"));
        rc |= json_object_set_new(jwk, "x", json_string(a));
        break;
    default:
        rc |= json_object_set_new(jwk, "kty", json_string("RSA"));
        rc |= json_object_set_new(jwk, "n", json_string(a));
        rc |= json_object_set_new(jwk, "e", json_string(b));
        break;
    }
    if (key->kid_len > 0)
        rc |= json_object_set_new(jwk, "kid", json_stringn(key->kid, key->kid_len));
    rc |= json_object_set_new(jwk, "alg", json_string(jwtd_alg_name(key->alg)));
    rc |= json_object_set_new(jwk, "use", json_string("sig"));
    if (rc != 0) {
        json_decref(jwk);
        err = JWTD_ERR_NOMEM;
        goto out;
    }
    *ret_jwk = jwk;
out:
    free(a);
    free(b);
    return err;
}

/* -------------------------------------------------------- from OpenSSL -- */

/* Whether an OpenSSL key holds its private half. Asking for a parameter the
 * key lacks fails quietly (errors are popped by the caller). */
static bool pkey_has_private(jwtd_alg alg, EVP_PKEY *pkey)
{
    BIGNUM *bn = NULL;
    size_t len = 0;
    bool has;

    switch (alg) {
    case JWTD_ALG_ES256:
        has = EVP_PKEY_get_bn_param(pkey, OSSL_PKEY_PARAM_PRIV_KEY, &bn) == 1;
        break;
    case JWTD_ALG_RS256:
        has = EVP_PKEY_get_bn_param(pkey, OSSL_PKEY_PARAM_RSA_D, &bn) == 1;
        break;
    case JWTD_ALG_EDDSA:
        has = EVP_PKEY_get_octet_string_param(pkey, OSSL_PKEY_PARAM_PRIV_KEY, NULL, 0, &len) == 1
              && len > 0;
        break;
    default:
        has = false;
        break;
    }
    BN_clear_free(bn);
    return has;
}

static jwtd_err pkey_validate(EVP_PKEY *pkey, jwtd_alg alg, size_t *ret_sig_len)
{
    char group[64];
    BIGNUM *n = NULL, *e = NULL;
    jwtd_err err;

    switch (alg) {
    case JWTD_ALG_ES256:
        if (!EVP_PKEY_is_a(pkey, "EC")
            || EVP_PKEY_get_utf8_string_param(pkey, OSSL_PKEY_PARAM_GROUP_NAME, group,
                                              sizeof(group), NULL) != 1
            || strcmp(group, "prime256v1") != 0)
            return JWTD_ERR_KEY;
        *ret_sig_len = JWTD__ES256_SIG_LEN;
        break;
    case JWTD_ALG_EDDSA:
        if (!EVP_PKEY_is_a(pkey, "ED25519"))
            return JWTD_ERR_KEY;
        *ret_sig_len = JWTD__ED25519_SIG_LEN;
        break;
    case JWTD_ALG_RS256:
        /* Plain RSA only: an RSA-PSS-restricted key cannot do PKCS#1 v1.5. */
        if (!EVP_PKEY_is_a(pkey, "RSA"))
            return JWTD_ERR_KEY;
        if (EVP_PKEY_get_bn_param(pkey, OSSL_PKEY_PARAM_RSA_N, &n) != 1
            || EVP_PKEY_get_bn_param(pkey, OSSL_PKEY_PARAM_RSA_E, &e) != 1) {
            err = JWTD_ERR_KEY;
            goto free_bn;
        }
        err = rsa_check_public(n, e);
        if (err != JWTD_OK)
            goto free_bn;
        *ret_sig_len = (size_t)BN_num_bytes(n);
        BN_free(n);
        BN_free(e);
        break;
    default:
        return JWTD_ERR_INVALID_ARG;
    }
    return pkey_public_check(pkey);
free_bn:
    BN_free(n);
    BN_free(e);
    return err;
}

static jwtd_err key_from_pkey(EVP_PKEY *pkey, jwtd_alg alg, const char *kid, jwtd_key **ret_key)
{
    char thumb[44];
    size_t sig_len = 0;
    jwtd_key *key;
    jwtd_err err;

    err = pkey_validate(pkey, alg, &sig_len);
    if (err != JWTD_OK)
        return err;
    if (kid == NULL) {
        err = pkey_thumbprint(alg, pkey, thumb);
        if (err != JWTD_OK)
            return err;
        kid = thumb;
    }
    key = key_alloc(alg, kid, strlen(kid));
    if (key == NULL)
        return JWTD_ERR_NOMEM;
    if (EVP_PKEY_up_ref(pkey) != 1) {
        key_destroy(key);
        return JWTD_ERR_INTERNAL;
    }
    key->pkey = pkey;
    key->sig_len = sig_len;
    key->can_sign = pkey_has_private(alg, pkey);
    *ret_key = key;
    return JWTD_OK;
}

jwtd_err jwtd__key_from_pkey(EVP_PKEY *pkey, jwtd_alg alg, const char *kid, jwtd_key **ret_key)
{
    jwtd_err err;

    if (pkey == NULL || ret_key == NULL)
        return JWTD_ERR_INVALID_ARG;
    ERR_set_mark();
    err = key_from_pkey(pkey, alg, kid, ret_key);
    ERR_pop_to_mark();
    return err;
}

/* ------------------------------------------------------------ from JWK -- */

/* 1: a string (value and length returned), 0: absent, -1: another type. */
static int member_string(const json_t *obj, const char *name, const char **ret, size_t *ret_len)
{
    const json_t *v = json_object_get(obj, name);

    if (v == NULL)
        return 0;
    if (!json_is_string(v))
        return -1;
    *ret = json_string_value(v);
    if (ret_len != NULL)
        *ret_len = json_string_length(v);
    return 1;
}

static bool str_eq(const char *s, size_t len, const char *lit)
{
    size_t n = strlen(lit);

    return len == n && memcmp(s, lit, n) == 0;
}

/* Decode a required base64url member of exactly `want` bytes (want == 0:
 * any length up to cap) into out. */
static jwtd_err member_b64(const json_t *obj, const char *name, uint8_t *out, size_t cap,
                           size_t want, size_t *ret_len)
{
    const char *s;
    size_t slen, len;

    if (member_string(obj, name, &s, &slen) != 1)
        return JWTD_ERR_KEY;
    if (jwtd__b64url_decode(s, slen, out, cap, &len) != JWTD_OK)
        return JWTD_ERR_KEY;
    if ((want != 0 && len != want) || len == 0)
        return JWTD_ERR_KEY;
    if (ret_len != NULL)
        *ret_len = len;
    return JWTD_OK;
}

static jwtd_err jwk_ec(const json_t *jwk, EVP_PKEY **ret_pkey)
{
    uint8_t x[JWTD__ES256_COORD], y[JWTD__ES256_COORD];

    /* RFC 7518 §6.2.1.2/3: each coordinate is exactly the field size. */
    if (member_b64(jwk, "x", x, sizeof(x), sizeof(x), NULL) != JWTD_OK
        || member_b64(jwk, "y", y, sizeof(y), sizeof(y), NULL) != JWTD_OK)
        return JWTD_ERR_KEY;
    return ec_pkey_new(x, y, ret_pkey);
}

static jwtd_err jwk_okp(const json_t *jwk, EVP_PKEY **ret_pkey)
{
    uint8_t x[JWTD__ED25519_LEN];

    if (member_b64(jwk, "x", x, sizeof(x), sizeof(x), NULL) != JWTD_OK)
        return JWTD_ERR_KEY;
    return ed25519_pkey_new(x, ret_pkey);
}

static jwtd_err jwk_rsa(const json_t *jwk, EVP_PKEY **ret_pkey)
{
    uint8_t nbuf[JWTD__RSA_MAX_BITS / 8], ebuf[RSA_MAX_E_BITS / 8];
    size_t nlen, elen;
    BIGNUM *n = NULL, *e = NULL;
    jwtd_err err;

    if (member_b64(jwk, "n", nbuf, sizeof(nbuf), 0, &nlen) != JWTD_OK
        || member_b64(jwk, "e", ebuf, sizeof(ebuf), 0, &elen) != JWTD_OK)
        return JWTD_ERR_KEY;
    /* RFC 7518 §6.3.1.1: the modulus MUST NOT carry leading zero octets;
     * §6.3.1.2 uses the same minimal encoding for the exponent. */
    if (nbuf[0] == 0 || ebuf[0] == 0)
        return JWTD_ERR_KEY;
    n = BN_bin2bn(nbuf, (int)nlen, NULL);
    e = BN_bin2bn(ebuf, (int)elen, NULL);
    if (n == NULL || e == NULL)
        err = JWTD_ERR_NOMEM;
    else
        err = rsa_pkey_new(n, e, ret_pkey);
    BN_free(n);
    BN_free(e);
    return err;
}

static jwtd_err jwk_oct(const json_t *jwk, const char *kid, size_t kid_len, jwtd_key **ret_key)
{
    const char *k;
    size_t klen, cap, len = 0;
    uint8_t *secret;
    jwtd_err err;

    if (member_string(jwk, "k", &k, &klen) != 1)
        return JWTD_ERR_KEY;
    cap = jwtd__b64url_decoded_max(klen);
    secret = malloc(cap > 0 ? cap : 1);
    if (secret == NULL)
        return JWTD_ERR_NOMEM;
    err = jwtd__b64url_decode(k, klen, secret, cap, &len);
    if (err != JWTD_OK)
        err = JWTD_ERR_KEY;
    else
        err = hmac_key_new(kid, kid_len, secret, len, ret_key);
    OPENSSL_cleanse(secret, cap);
    free(secret);
    return err;
}

/* Whether key_ops is absent or lists "verify"; -1 when malformed. */
static int key_ops_allow_verify(const json_t *jwk)
{
    const json_t *ops = json_object_get(jwk, "key_ops"), *op;
    size_t i;
    int found = 0;

    if (ops == NULL)
        return 1;
    if (!json_is_array(ops))
        return -1;
    json_array_foreach(ops, i, op) {
        if (!json_is_string(op))
            return -1;
        if (str_eq(json_string_value(op), json_string_length(op), "verify"))
            found = 1;
    }
    return found;
}

jwtd_err jwtd__key_from_json(const json_t *jwk, unsigned flags, jwtd_key **ret_key,
                             bool *ret_unusable)
{
    const char *kty, *kid = "", *use, *crv, *alg;
    size_t kty_len, kid_len = 0, use_len, crv_len, alg_len;
    jwtd_alg pinned;
    EVP_PKEY *pkey = NULL;
    jwtd_key *key;
    jwtd_err err;
    int rc;

    if (ret_unusable != NULL)
        *ret_unusable = false;
    if (!json_is_object(jwk))
        return JWTD_ERR_KEY;
    if (member_string(jwk, "kty", &kty, &kty_len) != 1)
        return JWTD_ERR_KEY;
    if (member_string(jwk, "kid", &kid, &kid_len) < 0)
        return JWTD_ERR_KEY;

    /* A symmetric key is refused outright unless asked for, even when it
     * would otherwise be skipped: a secret in a public document is a fault
     * the operator must see, not something to ignore. */
    if (str_eq(kty, kty_len, "oct") && !(flags & JWTD_JWK_ALLOW_SECRET))
        return JWTD_ERR_KEY;

    /* From here on a refusal for a key that is simply not a signature key
     * of ours is "unusable" (skippable); anything malformed is not. */
    rc = member_string(jwk, "use", &use, &use_len);
    if (rc < 0)
        return JWTD_ERR_KEY;
    if (rc == 1 && !str_eq(use, use_len, "sig"))
        goto unusable;
    rc = key_ops_allow_verify(jwk);
    if (rc < 0)
        return JWTD_ERR_KEY;
    if (rc == 0)
        goto unusable;

    if (str_eq(kty, kty_len, "EC")) {
        if (member_string(jwk, "crv", &crv, &crv_len) != 1)
            return JWTD_ERR_KEY;
        /* Any other curve name, registered or not, is a key this library
         * cannot use (skippable), as an unknown kty is. */
        if (!str_eq(crv, crv_len, "P-256"))
            goto unusable;
        pinned = JWTD_ALG_ES256;
    } else if (str_eq(kty, kty_len, "OKP")) {
        if (member_string(jwk, "crv", &crv, &crv_len) != 1)
            return JWTD_ERR_KEY;
        if (!str_eq(crv, crv_len, "Ed25519"))
            goto unusable;
        pinned = JWTD_ALG_EDDSA;
    } else if (str_eq(kty, kty_len, "RSA")) {
        pinned = JWTD_ALG_RS256;
    } else if (str_eq(kty, kty_len, "oct")) {
        pinned = JWTD_ALG_HS256;
    } else {
        goto unusable;
    }

    /* The algorithm is pinned by the key type; a different "alg" (PS256 on
     * an RSA key, ES512 on a P-256 key, A256GCM on an oct key) means the key
     * is meant for something this library does not do. */
    rc = member_string(jwk, "alg", &alg, &alg_len);
    if (rc < 0)
        return JWTD_ERR_KEY;
    if (rc == 1 && !str_eq(alg, alg_len, jwtd_alg_name(pinned)))
        goto unusable;

    switch (pinned) {
    case JWTD_ALG_HS256:
        return jwk_oct(jwk, kid, kid_len, ret_key);
    case JWTD_ALG_ES256:
        err = jwk_ec(jwk, &pkey);
        break;
    case JWTD_ALG_EDDSA:
        err = jwk_okp(jwk, &pkey);
        break;
    default:
        err = jwk_rsa(jwk, &pkey);
        break;
    }
    if (err != JWTD_OK)
        return err;
    key = key_alloc(pinned, kid, kid_len);
    if (key == NULL) {
        EVP_PKEY_free(pkey);
        return JWTD_ERR_NOMEM;
    }
    key->pkey = pkey; /* the reference made by fromdata moves into the key */
    switch (pinned) {
    case JWTD_ALG_ES256:
        key->sig_len = JWTD__ES256_SIG_LEN;
        break;
    case JWTD_ALG_EDDSA:
        key->sig_len = JWTD__ED25519_SIG_LEN;
        break;
    default:
        key->sig_len = (size_t)EVP_PKEY_get_size(pkey);
        break;
    }
    key->can_sign = false; /* only public members are ever read */
    *ret_key = key;
    return JWTD_OK;

unusable:
    if (ret_unusable != NULL)
        *ret_unusable = true;
    return JWTD_ERR_KEY;
}

jwtd_err jwtd_key_from_jwk(const char *json, size_t len, unsigned flags, jwtd_key **ret_key)
{
    json_t *jwk;
    jwtd_err err;

    if (json == NULL || ret_key == NULL)
        return JWTD_ERR_INVALID_ARG;
    if (len > JWTD_MAX_JWKS_LEN)
        return JWTD_ERR_TOO_LARGE;
    jwk = jwtd__json_parse(json, len);
    if (jwk == NULL)
        return JWTD_ERR_JSON;
    if (!json_is_object(jwk)) {
        json_decref(jwk);
        return JWTD_ERR_JSON;
    }
    ERR_set_mark();
    err = jwtd__key_from_json(jwk, flags, ret_key, NULL);
    ERR_pop_to_mark();
    json_decref(jwk);
    return err;
}
