/* SPDX-License-Identifier: Apache-2.0 */
/*
 * JWK and JWK Set parsing: what is accepted, and every refusal (wrong use,
 * key_ops, alg, curve, invalid points, weak RSA, ROCA, secrets without the
 * flag, mixed sets, duplicate kids), SKIP_UNUSABLE, the public JWK and the
 * RFC 7638 / RFC 8037 thumbprints, reference counting.
 */
#include "testutil.h"

#include <openssl/core_names.h>
#include <openssl/evp.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* RFC 7515 A.3 P-256 key (public part, and its private scalar). */
#define A3_X "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU"
#define A3_Y "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"
#define A3_D "jpsQnnGQmL-YBIffH1136cspYG6-0iY7X1fCE9-E9LI"
/* Same x, y with the last character changed: not on the curve. */
#define A3_Y_OFF "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a4"
/* RFC 8037 A.2 Ed25519 public key. */
#define ED_X "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"
/* RFC 7638 §3.1 RSA modulus (2048 bits). */
#define TP_N                                                                                       \
    "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECP" \
    "ebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY" \
    "368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0f" \
    "M4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw"
/*
 * A 2048-bit modulus n = p*q with p and q both of the ROCA form
 * k*M + (65537^a mod M), M the product of the primes up to 167, generated for
 * this test (Python, Miller-Rabin). CTRL_N = r*q with r an ordinary random
 * prime: same size, also a proper RSA modulus, but without the fingerprint.
 * Accepting CTRL_N and refusing ROCA_N shows the refusal is the fingerprint.
 */
#define ROCA_N                                                                                     \
    "6-5u42qOMygBFiyFQtysioHmTs0s8ipa6phu5YqJwBfEO3rxGi0lzIFZ_XAncftcMIOzrMpPbf1Qt0VVpPLGEvU8vWtGt" \
    "S0xfsh3_tZJm0nCxM6Q22jqqaM7Oihbc48_XN1LJz8iIyIQsF0qk3R_Vtjj1k9t8V9H-IbRHbTG447U7xPWtVRdyf4qP" \
    "FoMkKEJT2IxO-D7gjStEuoJfypa2pDyZuooS9Dr6aS0eCP2DQicUPqBB-QVDmnBlwVS0s5bXM1asHH_IbLiiNFElSJa6" \
    "hewtv4h2lRzYiIA6V5_tYcZytYPtQ2sULGcwUH2_gC7Eg4kpLe5DOVgPFlcR4gAqw"
#define CTRL_N                                                                                     \
    "3HiimXuGHmHozFqqnbFnKZ57Cr1xb2dHAbb6VPP1LxemIclfK2sjYQJjnDI8OCxlPkTUtVW8AQxmuiYQV2D1ybvTUEVz" \
    "lAQN7-oZCZ74O7xinBI_TY_uTAwA9Ilm8j5iwGvuKSXcVe8os8CMmQAeC_rm5YCicRN-i_cgXuSMVEwMIHhaZXZTXbiy" \
    "T2xv4XLEAfbl_MFu-Umt9tFIIHK626u1Jtb2DYEqHeHfCSY1L6U9wUOSkiWtLnMko4KagpRhhT_m-JQTzyg_YsimQ5Br" \
    "-B79rSmBP--IxEmPghHCtD31BG06R78yRjuvZseaMzyQcyXYu-l9lMkqW_NX60Yefw"
/* 32 bytes of key material for oct keys. */
#define K32 "AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr8"

#define EC_JWK(extra) "{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"" A3_X "\",\"y\":\"" A3_Y "\"" extra "}"
#define RSA_JWK(n, e, extra) "{\"kty\":\"RSA\",\"n\":\"" n "\",\"e\":\"" e "\"" extra "}"

static jwtd_err parse(const char *json, unsigned flags, jwtd_key **key)
{
    *key = NULL;
    return jwtd_key_from_jwk(json, strlen(json), flags, key);
}

/* Parse and expect a refusal with err; no key comes back. */
static void refuse(const char *json, unsigned flags, jwtd_err err)
{
    jwtd_key *key = (jwtd_key *)0x1;

    assert_int_equal(jwtd_key_from_jwk(json, strlen(json), flags, &key), err);
    assert_ptr_equal(key, (jwtd_key *)0x1); /* ret_ untouched on failure */
}

static void accept_alg(const char *json, unsigned flags, jwtd_alg alg, const char *kid)
{
    jwtd_key *key = NULL;

    assert_int_equal(parse(json, flags, &key), JWTD_OK);
    assert_non_null(key);
    assert_int_equal(jwtd_key_alg(key), alg);
    assert_string_equal(jwtd_key_kid(key), kid);
    jwtd_key_free(key);
}

static void test_accepts_each_key_type(void **state)
{
    (void)state;
    accept_alg(EC_JWK(",\"kid\":\"ec1\",\"use\":\"sig\",\"alg\":\"ES256\""), 0, JWTD_ALG_ES256,
               "ec1");
    accept_alg(EC_JWK(""), 0, JWTD_ALG_ES256, "");
    accept_alg("{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"x\":\"" ED_X "\",\"alg\":\"EdDSA\"}", 0,
               JWTD_ALG_EDDSA, "");
    accept_alg(RSA_JWK(TP_N, "AQAB", ",\"kid\":\"2011-04-29\",\"alg\":\"RS256\""), 0,
               JWTD_ALG_RS256, "2011-04-29");
    accept_alg("{\"kty\":\"oct\",\"k\":\"" K32 "\",\"kid\":\"h\"}", JWTD_JWK_ALLOW_SECRET,
               JWTD_ALG_HS256, "h");
    /* key_ops listing verify is fine, alone or with others. */
    accept_alg(EC_JWK(",\"key_ops\":[\"verify\"]"), 0, JWTD_ALG_ES256, "");
    accept_alg(EC_JWK(",\"key_ops\":[\"sign\",\"verify\"]"), 0, JWTD_ALG_ES256, "");
}

static void test_private_members_are_ignored(void **state)
{
    jwtd_key *key = NULL;
    char *token = NULL;

    (void)state;
    assert_int_equal(parse(EC_JWK(",\"d\":\"" A3_D "\""), 0, &key), JWTD_OK);
    /* Only the public part is kept: the key cannot sign. */
    assert_int_equal(jwtd__sign_compact(key, "{}", 2, &token), JWTD_ERR_INVALID_ARG);
    assert_null(token);
    jwtd_key_free(key);
}

static void test_refuses_use_enc(void **state)
{
    (void)state;
    refuse(EC_JWK(",\"use\":\"enc\""), 0, JWTD_ERR_KEY);
    refuse(EC_JWK(",\"use\":\"SIG\""), 0, JWTD_ERR_KEY);
    refuse(EC_JWK(",\"use\":1"), 0, JWTD_ERR_KEY);
}

static void test_refuses_key_ops_without_verify(void **state)
{
    (void)state;
    refuse(EC_JWK(",\"key_ops\":[\"encrypt\"]"), 0, JWTD_ERR_KEY);
    refuse(EC_JWK(",\"key_ops\":[\"sign\"]"), 0, JWTD_ERR_KEY);
    refuse(EC_JWK(",\"key_ops\":[]"), 0, JWTD_ERR_KEY);
    refuse(EC_JWK(",\"key_ops\":\"verify\""), 0, JWTD_ERR_KEY);
    refuse(EC_JWK(",\"key_ops\":[\"verify\",7]"), 0, JWTD_ERR_KEY);
}

static void test_refuses_alg_other_than_pinned(void **state)
{
    (void)state;
    refuse(EC_JWK(",\"alg\":\"ES521\""), 0, JWTD_ERR_KEY);
    refuse(EC_JWK(",\"alg\":\"ES224\""), 0, JWTD_ERR_KEY);
    refuse(EC_JWK(",\"alg\":\"ES384\""), 0, JWTD_ERR_KEY);
    refuse(EC_JWK(",\"alg\":\"RS256\""), 0, JWTD_ERR_KEY);
    refuse(EC_JWK(",\"alg\":\"es256\""), 0, JWTD_ERR_KEY);
    refuse(EC_JWK(",\"alg\":\"none\""), 0, JWTD_ERR_KEY);
    refuse(EC_JWK(",\"alg\":null"), 0, JWTD_ERR_KEY);
    refuse(RSA_JWK(TP_N, "AQAB", ",\"alg\":\"PS256\""), 0, JWTD_ERR_KEY);
    refuse(RSA_JWK(TP_N, "AQAB", ",\"alg\":\"RSA-OAEP\""), 0, JWTD_ERR_KEY);
    refuse("{\"kty\":\"oct\",\"k\":\"" K32 "\",\"alg\":\"A256GCM\"}", JWTD_JWK_ALLOW_SECRET,
           JWTD_ERR_KEY);
    refuse("{\"kty\":\"oct\",\"k\":\"" K32 "\",\"alg\":\"HS512\"}", JWTD_JWK_ALLOW_SECRET,
           JWTD_ERR_KEY);
}

static void test_refuses_wrong_curve_for_kty(void **state)
{
    (void)state;
    refuse("{\"kty\":\"EC\",\"crv\":\"P-384\",\"x\":\"" A3_X "\",\"y\":\"" A3_Y "\"}", 0,
           JWTD_ERR_KEY);
    refuse("{\"kty\":\"EC\",\"crv\":\"Ed25519\",\"x\":\"" A3_X "\",\"y\":\"" A3_Y "\"}", 0,
           JWTD_ERR_KEY);
    refuse("{\"kty\":\"EC\",\"x\":\"" A3_X "\",\"y\":\"" A3_Y "\"}", 0, JWTD_ERR_KEY);
    refuse("{\"kty\":\"OKP\",\"crv\":\"X25519\",\"x\":\"" ED_X "\"}", 0, JWTD_ERR_KEY);
    refuse("{\"kty\":\"OKP\",\"crv\":\"P-256\",\"x\":\"" ED_X "\"}", 0, JWTD_ERR_KEY);
    /* kty RSA carrying EC members. */
    refuse("{\"kty\":\"RSA\",\"crv\":\"P-256\",\"x\":\"" A3_X "\",\"y\":\"" A3_Y "\"}", 0,
           JWTD_ERR_KEY);
}

static void test_refuses_point_off_curve(void **state)
{
    (void)state;
    refuse("{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"" A3_X "\",\"y\":\"" A3_Y_OFF "\"}", 0,
           JWTD_ERR_KEY);
    /* Coordinates must be exactly 32 bytes: 31 (leading zero dropped) and
     * 33 are refused, as is a coordinate >= p. */
    refuse("{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"" A3_X
           "\",\"y\":\"8UTNG72bfocs3-257rn0s2ldbqkLJK2KRiMohYjlrQ\"}",
           0, JWTD_ERR_KEY);
    refuse("{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"AA" A3_X "\",\"y\":\"" A3_Y "\"}", 0,
           JWTD_ERR_KEY);
    refuse("{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"_____wAAAAEAAAAAAAAAAAAAAAD_______________8"
           "\",\"y\":\"" A3_Y "\"}",
           0, JWTD_ERR_KEY); /* x = p */
    /* Non-canonical base64url in a coordinate. */
    refuse("{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"" A3_X "=\",\"y\":\"" A3_Y "\"}", 0,
           JWTD_ERR_KEY);
    refuse("{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"x\":\"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcH"
           "UQ\"}",
           0, JWTD_ERR_KEY);
}

/*
 * Ed25519 public keys of small order. With the neutral point as the key,
 * OpenSSL's verification accepts the signature R = neutral, S = 0 for any
 * message (checked first, so that the test shows why the keys are refused);
 * jwtd refuses every encoding of a point of small order, with either sign
 * bit. (The y values of the eight-torsion: 0, 1, p - 1 and the order-8
 * pair; 0 and 1 also as y + p.)
 */
static const char *const SMALL_ORDER_HEX[] = {
    "0000000000000000000000000000000000000000000000000000000000000000",
    "0100000000000000000000000000000000000000000000000000000000000000",
    "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05",
    "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a",
    "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
    "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
    "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
};

static void unhex(const char *hex, uint8_t out[32])
{
    for (int i = 0; i < 32; i++) {
        unsigned v;
        assert_int_equal(sscanf(hex + 2 * i, "%2x", &v), 1);
        out[i] = (uint8_t)v;
    }
}

static void test_refuses_ed25519_keys_of_small_order(void **state)
{
    (void)state;
    uint8_t neutral[32] = {1}, sig[64] = {1}; /* R = neutral point, S = 0 */
    EVP_PKEY *pk = EVP_PKEY_new_raw_public_key_ex(NULL, "ED25519", NULL, neutral, 32);
    assert_non_null(pk);
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    assert_int_equal(EVP_DigestVerifyInit(md, NULL, NULL, NULL, pk), 1);
    const unsigned char msg[] = "eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJhZG1pbiJ9";
    assert_int_equal(EVP_DigestVerify(md, sig, sizeof sig, msg, sizeof msg - 1), 1);
    EVP_MD_CTX_free(md);
    EVP_PKEY_free(pk);

    for (size_t i = 0; i < sizeof SMALL_ORDER_HEX / sizeof SMALL_ORDER_HEX[0]; i++) {
        for (int sign = 0; sign < 2; sign++) {
            uint8_t x[32];
            char b64[64], json[160];
            unhex(SMALL_ORDER_HEX[i], x);
            x[31] |= (uint8_t)(sign << 7);
            assert_true(jwtd__b64url_encode(x, sizeof x, b64, sizeof b64) == 43);
            snprintf(json, sizeof json, "{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"x\":\"%s\"}",
                     b64);
            refuse(json, 0, JWTD_ERR_KEY);
        }
    }
    /* An ordinary key still loads. */
    accept_alg("{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"x\":\"" ED_X "\"}", 0, JWTD_ALG_EDDSA,
               "");
}

/* The JWK text of an RSA public key of `bits` bits made right here. */
static char *rsa_jwk_of_size(size_t bits)
{
    EVP_PKEY *pkey = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", bits);
    BIGNUM *n = NULL, *e = NULL;
    uint8_t nb[512], eb[8];
    char *ns, *es, *json;
    int nl, el;

    assert_non_null(pkey);
    assert_int_equal(EVP_PKEY_get_bn_param(pkey, OSSL_PKEY_PARAM_RSA_N, &n), 1);
    assert_int_equal(EVP_PKEY_get_bn_param(pkey, OSSL_PKEY_PARAM_RSA_E, &e), 1);
    nl = BN_bn2bin(n, nb);
    el = BN_bn2bin(e, eb);
    ns = tu_b64(nb, (size_t)nl);
    es = tu_b64(eb, (size_t)el);
    json = tu_fmt("{\"kty\":\"RSA\",\"n\":\"%s\",\"e\":\"%s\"}", ns, es);
    free(ns);
    free(es);
    BN_free(n);
    BN_free(e);
    EVP_PKEY_free(pkey);
    return json;
}

static void test_refuses_rsa_1024(void **state)
{
    char *json = rsa_jwk_of_size(1024);

    (void)state;
    refuse(json, 0, JWTD_ERR_KEY);
    free(json);
}

static void test_refuses_rsa_bad_exponent(void **state)
{
    (void)state;
    refuse(RSA_JWK(TP_N, "AQ", ""), 0, JWTD_ERR_KEY);   /* e = 1 */
    refuse(RSA_JWK(TP_N, "Ag", ""), 0, JWTD_ERR_KEY);   /* e = 2 */
    refuse(RSA_JWK(TP_N, "AAEAAQ", ""), 0, JWTD_ERR_KEY); /* leading zero */
    refuse(RSA_JWK(TP_N, "", ""), 0, JWTD_ERR_KEY);
    refuse(RSA_JWK(TP_N, "AQABAA", ""), 0, JWTD_ERR_KEY); /* even */
    accept_alg(RSA_JWK(TP_N, "Aw", ""), 0, JWTD_ALG_RS256, ""); /* e = 3 is legal */
    /* A modulus with a leading zero octet is not canonical (RFC 7518). */
    refuse(RSA_JWK("AA" TP_N, "AQAB", ""), 0, JWTD_ERR_KEY);
    refuse("{\"kty\":\"RSA\",\"e\":\"AQAB\"}", 0, JWTD_ERR_KEY);
}

static void test_refuses_rsa_roca_fingerprint(void **state)
{
    (void)state;
    accept_alg(RSA_JWK(CTRL_N, "AQAB", ""), 0, JWTD_ALG_RS256, "");
    refuse(RSA_JWK(ROCA_N, "AQAB", ""), 0, JWTD_ERR_KEY);
}

static void test_refuses_oct_without_flag(void **state)
{
    (void)state;
    refuse("{\"kty\":\"oct\",\"k\":\"" K32 "\"}", 0, JWTD_ERR_KEY);
    /* Not even skippable: a secret in a public document is an error. */
    refuse("{\"kty\":\"oct\",\"k\":\"" K32 "\",\"use\":\"enc\"}", JWTD_JWKS_SKIP_UNUSABLE,
           JWTD_ERR_KEY);
}

static void test_refuses_short_oct(void **state)
{
    (void)state;
    /* 31 bytes */
    refuse("{\"kty\":\"oct\",\"k\":\"AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr\"}",
           JWTD_JWK_ALLOW_SECRET, JWTD_ERR_KEY);
    refuse("{\"kty\":\"oct\",\"k\":\"\"}", JWTD_JWK_ALLOW_SECRET, JWTD_ERR_KEY);
    refuse("{\"kty\":\"oct\"}", JWTD_JWK_ALLOW_SECRET, JWTD_ERR_KEY);
}

static void test_refuses_malformed_documents(void **state)
{
    char *big;

    (void)state;
    refuse("[]", 0, JWTD_ERR_JSON);
    refuse("\"x\"", 0, JWTD_ERR_JSON);
    refuse("{", 0, JWTD_ERR_JSON);
    refuse("{\"kty\":\"EC\",\"kty\":\"RSA\"}", 0, JWTD_ERR_JSON); /* duplicate member */
    refuse(EC_JWK(",\"x\":\"" A3_X "\""), 0, JWTD_ERR_JSON);
    refuse("{\"crv\":\"P-256\"}", 0, JWTD_ERR_KEY);                    /* no kty */
    refuse("{\"kty\":\"foo\"}", 0, JWTD_ERR_KEY);
    refuse("{\"kty\":5}", 0, JWTD_ERR_KEY);
    refuse(EC_JWK(",\"kid\":42"), 0, JWTD_ERR_KEY);
    refuse(EC_JWK(",\"kid\":\"a\\u0000b\""), 0, JWTD_ERR_JSON); /* NUL never allowed */
    big = malloc(JWTD_MAX_JWKS_LEN + 2);
    assert_non_null(big);
    memset(big, ' ', JWTD_MAX_JWKS_LEN + 1);
    big[JWTD_MAX_JWKS_LEN + 1] = '\0';
    refuse(big, 0, JWTD_ERR_TOO_LARGE);
    free(big);
    assert_int_equal(jwtd_key_from_jwk(NULL, 0, 0, &(jwtd_key *){NULL}), JWTD_ERR_INVALID_ARG);
}

static void test_hmac_key_new(void **state)
{
    uint8_t secret[32] = {1};
    jwtd_key *key = NULL;

    (void)state;
    assert_int_equal(jwtd_key_new_hmac("k", secret, 31, &key), JWTD_ERR_KEY);
    assert_null(key);
    assert_int_equal(jwtd_key_new_hmac("k", NULL, 32, &key), JWTD_ERR_INVALID_ARG);
    assert_int_equal(jwtd_key_new_hmac(NULL, secret, 32, &key), JWTD_OK);
    assert_string_equal(jwtd_key_kid(key), "");
    assert_int_equal(jwtd_key_alg(key), JWTD_ALG_HS256);
    assert_null(jwtd__key_pkey(key));
    {
        json_t *jwk = NULL;
        char tp[44];
        /* A secret is never published, not even as a thumbprint. */
        assert_int_equal(jwtd__key_public_jwk(key, &jwk), JWTD_ERR_INVALID_ARG);
        assert_int_equal(jwtd__key_thumbprint(key, tp), JWTD_ERR_INVALID_ARG);
    }
    jwtd_key_free(key);
}

/* ----------------------------------------------------------- key sets --- */

static jwtd_err jwks(const char *json, unsigned flags, jwtd_keyset **set)
{
    *set = NULL;
    return jwtd_keyset_from_jwks(json, strlen(json), flags, set);
}

static void test_keyset_basics(void **state)
{
    jwtd_keyset *set = NULL;
    const jwtd_key *k;

    (void)state;
    assert_int_equal(jwks("{\"keys\":[" EC_JWK(",\"kid\":\"a\"") "," RSA_JWK(TP_N, "AQAB",
                                                                            ",\"kid\":\"b\"") "]}",
                          0, &set),
                     JWTD_OK);
    assert_int_equal(jwtd_keyset_count(set), 2);
    k = jwtd_keyset_find(set, "b");
    assert_non_null(k);
    assert_int_equal(jwtd_key_alg(k), JWTD_ALG_RS256);
    assert_null(jwtd_keyset_find(set, "c"));
    assert_null(jwtd_keyset_find(set, ""));
    jwtd_keyset_free(set);

    assert_int_equal(jwks("{\"keys\":[]}", 0, &set), JWTD_OK);
    assert_int_equal(jwtd_keyset_count(set), 0);
    jwtd_keyset_free(set);
    jwtd_keyset_free(NULL);
}

static void test_keyset_refuses_bad_documents(void **state)
{
    jwtd_keyset *set = NULL;

    (void)state;
    assert_int_equal(jwks("{}", 0, &set), JWTD_ERR_JSON);
    assert_int_equal(jwks("{\"keys\":{}}", 0, &set), JWTD_ERR_JSON);
    assert_int_equal(jwks("[]", 0, &set), JWTD_ERR_JSON);
    assert_int_equal(jwks("{\"keys\":[],\"keys\":[]}", 0, &set), JWTD_ERR_JSON);
    assert_int_equal(jwks("{\"keys\":[1]}", 0, &set), JWTD_ERR_KEY);
    assert_null(set);
}

static void test_keyset_duplicate_kid(void **state)
{
    jwtd_keyset *set = NULL;
    jwtd_key *key = NULL;

    (void)state;
    assert_int_equal(jwks("{\"keys\":[" EC_JWK(",\"kid\":\"a\"") "," RSA_JWK(TP_N, "AQAB",
                                                                            ",\"kid\":\"a\"") "]}",
                          0, &set),
                     JWTD_ERR_DUPLICATE_KID);
    assert_null(set);
    /* Two keys without kid share the empty kid. */
    assert_int_equal(jwks("{\"keys\":[" EC_JWK("") "," RSA_JWK(TP_N, "AQAB", "") "]}", 0, &set),
                     JWTD_ERR_DUPLICATE_KID);
    /* The same through jwtd_keyset_add. */
    assert_int_equal(jwks("{\"keys\":[" EC_JWK(",\"kid\":\"a\"") "]}", 0, &set), JWTD_OK);
    assert_int_equal(parse(RSA_JWK(TP_N, "AQAB", ",\"kid\":\"a\""), 0, &key), JWTD_OK);
    assert_int_equal(jwtd_keyset_add(set, key), JWTD_ERR_DUPLICATE_KID);
    assert_int_equal(jwtd_keyset_count(set), 1);
    jwtd_key_free(key);
    jwtd_keyset_free(set);
}

static void test_keyset_mixed_secret_and_public(void **state)
{
    jwtd_keyset *set = NULL;
    jwtd_key *hkey = NULL;
    uint8_t secret[32] = {7};

    (void)state;
    assert_int_equal(jwks("{\"keys\":[{\"kty\":\"oct\",\"k\":\"" K32 "\",\"kid\":\"h\"},"
                          EC_JWK(",\"kid\":\"e\"") "]}",
                          JWTD_JWK_ALLOW_SECRET, &set),
                     JWTD_ERR_MIXED_KEYS);
    assert_int_equal(jwks("{\"keys\":[" EC_JWK(",\"kid\":\"e\"") "]}", 0, &set), JWTD_OK);
    assert_int_equal(jwtd_key_new_hmac("h", secret, sizeof(secret), &hkey), JWTD_OK);
    assert_int_equal(jwtd_keyset_add(set, hkey), JWTD_ERR_MIXED_KEYS);
    jwtd_key_free(hkey);
    jwtd_keyset_free(set);
}

static void test_keyset_skip_unusable(void **state)
{
    const char *doc =
        "{\"keys\":["
        "{\"kty\":\"RSA\",\"use\":\"enc\",\"n\":\"" TP_N "\",\"e\":\"AQAB\",\"kid\":\"enc\"},"
        "{\"kty\":\"EC\",\"crv\":\"P-384\",\"x\":\"AA\",\"y\":\"AA\",\"kid\":\"p384\"},"
        "{\"kty\":\"RSA\",\"alg\":\"PS256\",\"n\":\"" TP_N "\",\"e\":\"AQAB\",\"kid\":\"pss\"},"
        "{\"kty\":\"EC\",\"alg\":\"ECDH-ES\",\"crv\":\"P-256\",\"x\":\"" A3_X "\",\"y\":\"" A3_Y "\"},"
        "{\"kty\":\"OKP\",\"crv\":\"X25519\",\"x\":\"" ED_X "\"},"
        "{\"kty\":\"unknown\"},"
        "{\"kty\":\"EC\",\"key_ops\":[\"deriveKey\"],\"crv\":\"P-256\",\"x\":\"" A3_X "\",\"y\":\"" A3_Y "\"},"
        EC_JWK(",\"kid\":\"good\"") "]}";
    jwtd_keyset *set = NULL;

    (void)state;
    assert_int_equal(jwks(doc, 0, &set), JWTD_ERR_KEY);
    assert_int_equal(jwks(doc, JWTD_JWKS_SKIP_UNUSABLE, &set), JWTD_OK);
    assert_int_equal(jwtd_keyset_count(set), 1);
    assert_non_null(jwtd_keyset_find(set, "good"));
    jwtd_keyset_free(set);
    set = NULL;
    /* Malformed or weak keys of a supported type still fail the set. */
    assert_int_equal(jwks("{\"keys\":[{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"" A3_X
                          "\",\"y\":\"" A3_Y_OFF "\"}," EC_JWK(",\"kid\":\"good\"") "]}",
                          JWTD_JWKS_SKIP_UNUSABLE, &set),
                     JWTD_ERR_KEY);
    assert_int_equal(jwks("{\"keys\":[" RSA_JWK(TP_N, "AQ", "") "]}", JWTD_JWKS_SKIP_UNUSABLE,
                          &set),
                     JWTD_ERR_KEY);
    assert_int_equal(jwks("{\"keys\":[" RSA_JWK(ROCA_N, "AQAB", "") "]}",
                          JWTD_JWKS_SKIP_UNUSABLE, &set),
                     JWTD_ERR_KEY);
    assert_null(set);
}

/* "Unknown kty/crv/alg" is skipped, as jwtd.h promises: a curve name this
 * library has never heard of (one a newer issuer or another service's key in
 * a shared JWKS may use) is as unusable as an unknown kty, and must not take
 * the whole set down. A missing or non-string crv is malformed and still
 * fails. */
static void test_keyset_skip_unknown_curve(void **state)
{
    const char *doc =
        "{\"keys\":["
        "{\"kty\":\"EC\",\"crv\":\"brainpoolP256r1\",\"x\":\"" A3_X "\",\"y\":\"" A3_Y
        "\",\"kid\":\"bp\"},"
        "{\"kty\":\"OKP\",\"crv\":\"Ed999\",\"x\":\"" ED_X "\",\"kid\":\"ed999\"},"
        EC_JWK(",\"kid\":\"good\"") "]}";
    jwtd_keyset *set = NULL;

    (void)state;
    assert_int_equal(jwks(doc, 0, &set), JWTD_ERR_KEY);
    assert_int_equal(jwks(doc, JWTD_JWKS_SKIP_UNUSABLE, &set), JWTD_OK);
    assert_int_equal(jwtd_keyset_count(set), 1);
    assert_non_null(jwtd_keyset_find(set, "good"));
    jwtd_keyset_free(set);
    set = NULL;
    assert_int_equal(jwks("{\"keys\":[{\"kty\":\"EC\",\"x\":\"" A3_X "\",\"y\":\"" A3_Y
                          "\"}," EC_JWK(",\"kid\":\"good\"") "]}",
                          JWTD_JWKS_SKIP_UNUSABLE, &set),
                     JWTD_ERR_KEY);
    assert_int_equal(jwks("{\"keys\":[{\"kty\":\"OKP\",\"crv\":1,\"x\":\"" ED_X "\"}," EC_JWK(
                              ",\"kid\":\"good\"") "]}",
                          JWTD_JWKS_SKIP_UNUSABLE, &set),
                     JWTD_ERR_KEY);
    assert_null(set);
}

static void test_keyset_holds_its_own_reference(void **state)
{
    jwtd_keyset *set = NULL;
    jwtd_key *key = NULL;

    (void)state;
    assert_int_equal(parse(EC_JWK(",\"kid\":\"a\""), 0, &key), JWTD_OK);
    assert_ptr_equal(jwtd__key_ref(key), key);
    jwtd_key_free(key); /* back to one reference */
    set = tu_set1(key);
    jwtd_key_free(key); /* the set's reference keeps it alive (ASan checks) */
    assert_string_equal(jwtd_key_kid(jwtd_keyset_find(set, "a")), "a");
    jwtd_keyset_free(set);
    jwtd_key_free(NULL);
}

/* ------------------------------------------- public JWK, thumbprints ---- */

static void test_rfc7638_thumbprint(void **state)
{
    jwtd_key *key = NULL;
    char tp[44];

    (void)state;
    assert_int_equal(parse(RSA_JWK(TP_N, "AQAB", ",\"alg\":\"RS256\",\"kid\":\"2011-04-29\""), 0,
                           &key),
                     JWTD_OK);
    assert_int_equal(jwtd__key_thumbprint(key, tp), JWTD_OK);
    assert_string_equal(tp, "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs");
    jwtd_key_free(key);
}

static void test_rfc8037_thumbprint(void **state)
{
    jwtd_key *key = NULL;
    char tp[44];

    (void)state;
    /* RFC 8037 A.3 */
    assert_int_equal(parse("{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"x\":\"" ED_X "\"}", 0, &key),
                     JWTD_OK);
    assert_int_equal(jwtd__key_thumbprint(key, tp), JWTD_OK);
    assert_string_equal(tp, "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k");
    jwtd_key_free(key);
}

static void test_public_jwk_round_trip(void **state)
{
    static const jwtd_alg algs[] = {JWTD_ALG_ES256, JWTD_ALG_EDDSA, JWTD_ALG_RS256};
    static const char *const prefixes[] = {
        "{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"",
        "{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"x\":\"",
        "{\"kty\":\"RSA\",\"n\":\"",
    };
    static const char *const suffixes[] = {
        "\",\"kid\":\"k1\",\"alg\":\"ES256\",\"use\":\"sig\"}",
        "\",\"kid\":\"k1\",\"alg\":\"EdDSA\",\"use\":\"sig\"}",
        "\",\"e\":\"AQAB\",\"kid\":\"k1\",\"alg\":\"RS256\",\"use\":\"sig\"}",
    };

    (void)state;
    for (size_t i = 0; i < 3; i++) {
        EVP_PKEY *pkey = tu_keygen(algs[i]);
        jwtd_key *priv = NULL, *pub = NULL, *thumbkid = NULL;
        char tp1[44], tp2[44];
        char *text = tu_public_jwk(pkey, algs[i], "k1");

        assert_memory_equal(text, prefixes[i], strlen(prefixes[i]));
        assert_string_equal(text + strlen(text) - strlen(suffixes[i]), suffixes[i]);
        assert_null(strstr(text, "\"d\"")); /* no private member */
        if (algs[i] == JWTD_ALG_ES256)
            assert_non_null(strstr(text, "\",\"y\":\""));

        assert_int_equal(jwtd__key_from_pkey(pkey, algs[i], "k1", &priv), JWTD_OK);
        assert_int_equal(parse(text, 0, &pub), JWTD_OK);
        assert_int_equal(jwtd__key_thumbprint(priv, tp1), JWTD_OK);
        assert_int_equal(jwtd__key_thumbprint(pub, tp2), JWTD_OK);
        assert_string_equal(tp1, tp2);
        assert_int_equal(strlen(tp1), 43);
        /* kid NULL means "use the thumbprint". */
        assert_int_equal(jwtd__key_from_pkey(pkey, algs[i], NULL, &thumbkid), JWTD_OK);
        assert_string_equal(jwtd_key_kid(thumbkid), tp1);
        assert_ptr_equal(jwtd__key_pkey(thumbkid), pkey);
        jwtd_key_free(thumbkid);
        jwtd_key_free(priv);
        jwtd_key_free(pub);
        free(text);
        EVP_PKEY_free(pkey);
    }
}

static void test_key_from_pkey_refuses_mismatch(void **state)
{
    EVP_PKEY *ec = tu_keygen(JWTD_ALG_ES256);
    EVP_PKEY *p384 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384");
    EVP_PKEY *small = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)1024);
    jwtd_key *key = NULL;

    (void)state;
    assert_non_null(p384);
    assert_non_null(small);
    assert_int_equal(jwtd__key_from_pkey(ec, JWTD_ALG_RS256, "x", &key), JWTD_ERR_KEY);
    assert_int_equal(jwtd__key_from_pkey(ec, JWTD_ALG_EDDSA, "x", &key), JWTD_ERR_KEY);
    assert_int_equal(jwtd__key_from_pkey(ec, JWTD_ALG_HS256, "x", &key), JWTD_ERR_INVALID_ARG);
    assert_int_equal(jwtd__key_from_pkey(p384, JWTD_ALG_ES256, "x", &key), JWTD_ERR_KEY);
    assert_int_equal(jwtd__key_from_pkey(small, JWTD_ALG_RS256, "x", &key), JWTD_ERR_KEY);
    assert_null(key);
    EVP_PKEY_free(ec);
    EVP_PKEY_free(p384);
    EVP_PKEY_free(small);
}

static void test_alg_names(void **state)
{
    (void)state;
    assert_string_equal(jwtd_alg_name(JWTD_ALG_HS256), "HS256");
    assert_string_equal(jwtd_alg_name(JWTD_ALG_ES256), "ES256");
    assert_string_equal(jwtd_alg_name(JWTD_ALG_EDDSA), "EdDSA");
    assert_string_equal(jwtd_alg_name(JWTD_ALG_RS256), "RS256");
    assert_null(jwtd_alg_name(JWTD_ALG_RS256 | JWTD_ALG_ES256));
    assert_null(jwtd_alg_name(0));
    assert_int_equal(jwtd_alg_from_name("EdDSA"), JWTD_ALG_EDDSA);
    assert_int_equal(jwtd_alg_from_name("RS256"), JWTD_ALG_RS256);
    assert_int_equal(jwtd_alg_from_name("eddsa"), 0);
    assert_int_equal(jwtd_alg_from_name("none"), 0);
    assert_int_equal(jwtd_alg_from_name(NULL), 0);
    assert_string_equal(jwtd_strerror(JWTD_ERR_EXPIRED), "token has expired");
    assert_string_equal(jwtd_strerror((jwtd_err)-999), "unknown error");
    for (int e = 0; e >= JWTD_ERR_INTERNAL; e--)
        assert_string_not_equal(jwtd_strerror((jwtd_err)e), "unknown error");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_accepts_each_key_type),
        cmocka_unit_test(test_private_members_are_ignored),
        cmocka_unit_test(test_refuses_use_enc),
        cmocka_unit_test(test_refuses_key_ops_without_verify),
        cmocka_unit_test(test_refuses_alg_other_than_pinned),
        cmocka_unit_test(test_refuses_wrong_curve_for_kty),
        cmocka_unit_test(test_refuses_point_off_curve),
        cmocka_unit_test(test_refuses_rsa_1024),
        cmocka_unit_test(test_refuses_rsa_bad_exponent),
        cmocka_unit_test(test_refuses_rsa_roca_fingerprint),
        cmocka_unit_test(test_refuses_ed25519_keys_of_small_order),
        cmocka_unit_test(test_refuses_oct_without_flag),
        cmocka_unit_test(test_refuses_short_oct),
        cmocka_unit_test(test_refuses_malformed_documents),
        cmocka_unit_test(test_hmac_key_new),
        cmocka_unit_test(test_keyset_basics),
        cmocka_unit_test(test_keyset_refuses_bad_documents),
        cmocka_unit_test(test_keyset_duplicate_kid),
        cmocka_unit_test(test_keyset_mixed_secret_and_public),
        cmocka_unit_test(test_keyset_skip_unusable),
        cmocka_unit_test(test_keyset_skip_unknown_curve),
        cmocka_unit_test(test_keyset_holds_its_own_reference),
        cmocka_unit_test(test_rfc7638_thumbprint),
        cmocka_unit_test(test_rfc8037_thumbprint),
        cmocka_unit_test(test_public_jwk_round_trip),
        cmocka_unit_test(test_key_from_pkey_refuses_mismatch),
        cmocka_unit_test(test_alg_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
