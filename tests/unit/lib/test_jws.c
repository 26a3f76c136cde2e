/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Compact JWS: RFC 7515 A.1-A.3, RFC 8037 A.4 and RFC 7520 §4.1/§4.4 vectors,
 * sign/verify round trips for the four algorithms, and one test per attack
 * (named after it): algorithm confusion, alg "none", malformed ECDSA
 * signatures, embedded keys, crit, unknown kid, duplicate header members,
 * segment and size games, non-canonical encodings.
 */
#include "testutil.h"

#include <openssl/hmac.h>
#include <openssl/x509.h>

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define ALL_ALGS (JWTD_ALG_HS256 | JWTD_ALG_ES256 | JWTD_ALG_EDDSA | JWTD_ALG_RS256)

/* ---- RFC 7515 Appendix A ---- */
#define A_PAYLOAD_B64                                                                              \
    "eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVl" \
    "fQ"
#define A_PAYLOAD "{\"iss\":\"joe\",\r\n \"exp\":1300819380,\r\n \"http://example.com/is_root\":true}"
#define A1_JWK                                                                                     \
    "{\"kty\":\"oct\",\"k\":\"AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4" \
    "hcgUuTwjAzZr1Z9CAow\"}"
#define A1_JWS                                                                                     \
    "eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9." A_PAYLOAD_B64                                      \
    ".dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
#define A2_JWK                                                                                     \
    "{\"kty\":\"RSA\",\"e\":\"AQAB\",\"n\":\"ofgWCuLjybRlzo0tZWJjNiuSfb4p4fAkd_wWJcyQoTbji9k0l8W26m" \
    "PddxHmfHQp-Vaw-4qPCJrcS2mJPMEzP1Pt0Bm4d4QlL-yRT-SFd2lZS-pCgNMsD1W_YpRPEwOWvG6b32690r2jZ47soMZo" \
    "9wGzjb_7OMg0LOL-bSf63kpaSHSXndS5z5rexMdbBYUsLA9e-KXBdQOS-UTo7WTBEMa2R2CapHg665xsmtdVMTBQY4uDZlx" \
    "vb3qCo5ZwKh9kG4LT6_I5IhlJH7aGhyxXFvUK-DWNmoudF8NAco9_h9iaGNj8q2ethFkMLs91kzk2PAcDTW9gb54h4FRWy" \
    "uXpoQ\"}"
#define A2_JWS                                                                                     \
    "eyJhbGciOiJSUzI1NiJ9." A_PAYLOAD_B64                                                          \
    ".cC4hiUPoj9Eetdgtv3hF80EGrhuB__dzERat0XF9g2VtQgr9PJbu3XOiZj5RZmh7AAuHIm4Bh-0Qc_lF5YKt_O8W2Fp" \
    "5jujGbds9uJdbF9CUAr7t1dnZcAcQjbKBYNX4BAynRFdiuB--f_nZLgrnbyTyWzO75vRK5h6xBArLIARNPvkSjtQBMHlb" \
    "1L07Qe7K0GarZRmB_eSN9383LcOLn6_dO--xi12jzDwusC-eOkHWEsqtFZESc6BfI7noOPqvhJ1phCnvWh6IeYI2w9QOY" \
    "EUipUTI8np6LbgGY9Fs98rqVt5AXLIhWkWywlVmtVrBp0igcN_IoypGlUPQGe77Rw"
#define A3_JWK                                                                                     \
    "{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU\",\"y\":" \
    "\"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0\"}"
#define A3_JWS                                                                                     \
    "eyJhbGciOiJFUzI1NiJ9." A_PAYLOAD_B64                                                          \
    ".DtEhU3ljbEg8L38VWAfUAqOyKAM6-Xx-F4GawxaepmXFCgfTjDxw5djxLa8ISlSApmWQxfKTUJqPP3-Kg6NU1Q"

/* ---- RFC 8037 A.4 (key from A.2) ---- */
#define ED_JWK "{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"x\":\"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo\"}"
#define ED_JWS                                                                                     \
    "eyJhbGciOiJFZERTQSJ9.RXhhbXBsZSBvZiBFZDI1NTE5IHNpZ25pbmc.hgyY0il_MGCjP0JzlnLWG1PPOt7-09PGcvMg" \
    "3AIbQR6dWbhijcNR4ki4iylGjg5BhVsPt9g7sVvpAr_MuM0KAg"

/* ---- RFC 7520 §3.3 / §3.5 keys, §4.1 / §4.4 signatures ---- */
#define C_PAYLOAD_B64                                                                              \
    "SXTigJlzIGEgZGFuZ2Vyb3VzIGJ1c2luZXNzLCBGcm9kbywgZ29pbmcgb3V0IHlvdXIgZG9vci4gWW91IHN0ZXAgb250" \
    "byB0aGUgcm9hZCwgYW5kIGlmIHlvdSBkb24ndCBrZWVwIHlvdXIgZmVldCwgdGhlcmXigJlzIG5vIGtub3dpbmcgd2hlcmUg" \
    "eW91IG1pZ2h0IGJlIHN3ZXB0IG9mZiB0by4"
#define C_RSA_JWK                                                                                  \
    "{\"kty\":\"RSA\",\"kid\":\"bilbo.baggins@hobbiton.example\",\"use\":\"sig\",\"n\":\"n4EPtAOCc9" \
    "AlkeQHPzHStgAbgs7bTZLwUBZdR8_KuKPEHLd4rHVTeT-O-XV2jRojdNhxJWTDvNd7nqQ0VEiZQHz_AJmSCpMaJMRBSFKr" \
    "Kb2wqVwGU_NsYOYL-QtiWN2lbzcEe6XC0dApr5ydQLrHqkHHig3RBordaZ6Aj-oBHqFEHYpPe7Tpe-OfVfHd1E6cS6M1FZ" \
    "cD1NNLYD5lFHpPI9bTwJlsde3uhGqC0ZCuEHg8lhzwOHrtIQbS0FVbb9k3-tVTU4fg_3L_vniUFAKwuCLqKnS2BYwdq_mz" \
    "SnbLY7h_qixoR7jig3__kRhuaxwUkRz5iaiQkqgc5gHdrNP5zw\",\"e\":\"AQAB\"}"
#define C41_JWS                                                                                    \
    "eyJhbGciOiJSUzI1NiIsImtpZCI6ImJpbGJvLmJhZ2dpbnNAaG9iYml0b24uZXhhbXBsZSJ9." C_PAYLOAD_B64      \
    ".MRjdkly7_-oTPTS3AXP41iQIGKa80A0ZmTuV5MEaHoxnW2e5CZ5NlKtainoFmKZopdHM1O2U4mwzJdQx996ivp83xug" \
    "lII7PNDi84wnB-BDkoBwA78185hX-Es4JIwmDLJK3lfWRa-XtL0RnltuYv746iYTh_qHRD68BNt1uSNCrUCTJDt5aAE6x8" \
    "wW1Kt9eRo4QPocSadnHXFxnt8Is9UzpERV0ePPQdLuW3IS_de3xyIrDaLGdjluPxUAhb6L2aXic1U12podGU0KLUQSE_oI" \
    "-ZnmKJ3F4uOZDnd6QZWJushZ41Axf_fcIe8u9ipH84ogoree7vjbU5y18kDquDg"
#define C_HMAC_JWK                                                                                 \
    "{\"kty\":\"oct\",\"kid\":\"018c0ae5-4d9b-471b-bfd6-eef314bc7037\",\"use\":\"sig\",\"alg\":" \
    "\"HS256\",\"k\":\"hJtXIZ2uSN5kbQfbtTNWbpdmhkV8FJG-Onbc6mxCcYg\"}"
#define C44_JWS                                                                                    \
    "eyJhbGciOiJIUzI1NiIsImtpZCI6IjAxOGMwYWU1LTRkOWItNDcxYi1iZmQ2LWVlZjMxNGJjNzAzNyJ9."            \
    C_PAYLOAD_B64 ".s0h6KThzkfBBBkLspW1h84VsJZFTsPPqMDA7g1Md7p0"
#define C_PAYLOAD                                                                                  \
    "It\xe2\x80\x99s a dangerous business, Frodo, going out your door. You step onto the road, "   \
    "and if you don't keep your feet, there\xe2\x80\x99s no knowing where you might be swept off " \
    "to."

/* P-256 group order n. */
static const uint8_t P256_N[32] = {
    0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xbc, 0xe6, 0xfa, 0xad, 0xa7, 0x17, 0x9e, 0x84, 0xf3, 0xb9, 0xca, 0xc2, 0xfc, 0x63, 0x25, 0x51,
};

/* Generated once for the whole file: RSA key generation is slow. */
static EVP_PKEY *g_ec, *g_ed, *g_rsa;
static jwtd_keyset *g_pub; /* public keys "ec", "ed", "rsa" */

static int setup(void **state)
{
    char *ec, *ed, *rsa, *doc;

    (void)state;
    g_ec = tu_keygen(JWTD_ALG_ES256);
    g_ed = tu_keygen(JWTD_ALG_EDDSA);
    g_rsa = tu_keygen(JWTD_ALG_RS256);
    ec = tu_public_jwk(g_ec, JWTD_ALG_ES256, "ec");
    ed = tu_public_jwk(g_ed, JWTD_ALG_EDDSA, "ed");
    rsa = tu_public_jwk(g_rsa, JWTD_ALG_RS256, "rsa");
    doc = tu_fmt("{\"keys\":[%s,%s,%s]}", ec, ed, rsa);
    if (jwtd_keyset_from_jwks(doc, strlen(doc), 0, &g_pub) != JWTD_OK)
        return -1;
    free(ec);
    free(ed);
    free(rsa);
    free(doc);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    jwtd_keyset_free(g_pub);
    EVP_PKEY_free(g_ec);
    EVP_PKEY_free(g_ed);
    EVP_PKEY_free(g_rsa);
    return 0;
}

static jwtd_keyset *set_from_jwk(const char *jwk, unsigned flags)
{
    jwtd_key *key = NULL;
    jwtd_keyset *set;

    assert_int_equal(jwtd_key_from_jwk(jwk, strlen(jwk), flags, &key), JWTD_OK);
    set = tu_set1(key);
    jwtd_key_free(key);
    return set;
}

static jwtd_err verify(const jwtd_keyset *set, unsigned algs, const char *jws)
{
    uint8_t *payload = NULL;
    size_t len = 0;
    jwtd_err err = jwtd_jws_verify(set, algs, jws, strlen(jws), &payload, &len);

    if (err != JWTD_OK)
        assert_null(payload); /* ret_ written only on success */
    free(payload);
    return err;
}

/* Verify, then check the payload bytes and the NUL after them. */
static void verify_payload(const jwtd_keyset *set, unsigned algs, const char *jws,
                           const char *want)
{
    uint8_t *payload = NULL;
    size_t len = 0;

    assert_int_equal(jwtd_jws_verify(set, algs, jws, strlen(jws), &payload, &len), JWTD_OK);
    assert_int_equal(len, strlen(want));
    assert_memory_equal(payload, want, len);
    assert_int_equal(payload[len], 0);
    free(payload);
}

/* The token with one character of segment `seg` (0..2) at `pos` changed to
 * another character of the alphabet that keeps the encoding canonical. */
static char *tamper(const char *jws, int seg, size_t pos)
{
    char *t = tu_fmt("%s", jws), *p = t;

    for (int i = 0; i < seg; i++)
        p = strchr(p, '.') + 1;
    p[pos] = p[pos] == 'A' ? 'B' : 'A';
    return t;
}

/* ------------------------------------------------------ RFC vectors ---- */

static void test_rfc7515_a1_hs256(void **state)
{
    jwtd_keyset *set = set_from_jwk(A1_JWK, JWTD_JWK_ALLOW_SECRET);
    char *t;

    (void)state;
    verify_payload(set, JWTD_ALG_HS256, A1_JWS, A_PAYLOAD);
    t = tamper(A1_JWS, 1, 10);
    assert_int_equal(verify(set, JWTD_ALG_HS256, t), JWTD_ERR_SIGNATURE);
    free(t);
    t = tamper(A1_JWS, 2, 4);
    assert_int_equal(verify(set, JWTD_ALG_HS256, t), JWTD_ERR_SIGNATURE);
    free(t);
    /* HS256 is not in the default asymmetric set. */
    assert_int_equal(verify(set, JWTD_ALGS_ASYMMETRIC, A1_JWS), JWTD_ERR_ALG);
    jwtd_keyset_free(set);
}

static void test_rfc7515_a2_rs256(void **state)
{
    jwtd_keyset *set = set_from_jwk(A2_JWK, 0);
    char *t;

    (void)state;
    verify_payload(set, JWTD_ALGS_ASYMMETRIC, A2_JWS, A_PAYLOAD);
    t = tamper(A2_JWS, 1, 0);
    assert_int_equal(verify(set, ALL_ALGS, t), JWTD_ERR_SIGNATURE);
    free(t);
    t = tamper(A2_JWS, 2, 100);
    assert_int_equal(verify(set, ALL_ALGS, t), JWTD_ERR_SIGNATURE);
    free(t);
    jwtd_keyset_free(set);
}

static void test_rfc7515_a3_es256(void **state)
{
    jwtd_keyset *set = set_from_jwk(A3_JWK, 0);
    char *t;

    (void)state;
    verify_payload(set, JWTD_ALGS_ASYMMETRIC, A3_JWS, A_PAYLOAD);
    t = tamper(A3_JWS, 1, 20);
    assert_int_equal(verify(set, ALL_ALGS, t), JWTD_ERR_SIGNATURE);
    free(t);
    t = tamper(A3_JWS, 2, 40);
    assert_int_equal(verify(set, ALL_ALGS, t), JWTD_ERR_SIGNATURE);
    free(t);
    jwtd_keyset_free(set);
}

static void test_rfc8037_a4_ed25519(void **state)
{
    jwtd_keyset *set = set_from_jwk(ED_JWK, 0);
    char *t;

    (void)state;
    verify_payload(set, JWTD_ALGS_ASYMMETRIC, ED_JWS, "Example of Ed25519 signing");
    t = tamper(ED_JWS, 2, 10);
    assert_int_equal(verify(set, ALL_ALGS, t), JWTD_ERR_SIGNATURE);
    free(t);
    t = tamper(ED_JWS, 1, 3);
    assert_int_equal(verify(set, ALL_ALGS, t), JWTD_ERR_SIGNATURE);
    free(t);
    jwtd_keyset_free(set);
}

static void test_rfc7520_4_1_rs256(void **state)
{
    jwtd_keyset *set = set_from_jwk(C_RSA_JWK, 0);
    char *t;

    (void)state;
    verify_payload(set, JWTD_ALG_RS256, C41_JWS, C_PAYLOAD);
    t = tamper(C41_JWS, 1, 30);
    assert_int_equal(verify(set, JWTD_ALG_RS256, t), JWTD_ERR_SIGNATURE);
    free(t);
    jwtd_keyset_free(set);
}

static void test_rfc7520_4_4_hs256(void **state)
{
    jwtd_keyset *set = set_from_jwk(C_HMAC_JWK, JWTD_JWK_ALLOW_SECRET);
    char *t;

    (void)state;
    verify_payload(set, JWTD_ALG_HS256, C44_JWS, C_PAYLOAD);
    t = tamper(C44_JWS, 2, 0);
    assert_int_equal(verify(set, JWTD_ALG_HS256, t), JWTD_ERR_SIGNATURE);
    free(t);
    jwtd_keyset_free(set);
}

/* ------------------------------------------------------- round trips ---- */

static void round_trip(jwtd_key *signer, const jwtd_keyset *verifier_set, const char *header)
{
    const char *payload = "{\"sub\":\"alice\",\"n\":1}";
    char *token = NULL, *hdr_b64, *hdr;
    size_t hlen;

    assert_int_equal(jwtd__sign_compact(signer, payload, strlen(payload), &token), JWTD_OK);
    /* The header is exactly {"alg","typ","kid"}, in that order. */
    hdr_b64 = tu_fmt("%.*s", (int)(strchr(token, '.') - token), token);
    hdr = (char *)tu_unb64(hdr_b64, &hlen);
    assert_int_equal(hlen, strlen(header));
    assert_memory_equal(hdr, header, hlen);
    verify_payload(verifier_set, ALL_ALGS, token, payload);
    /* A changed payload breaks it. */
    {
        char *t = tamper(token, 1, 2);
        assert_int_equal(verify(verifier_set, ALL_ALGS, t), JWTD_ERR_SIGNATURE);
        free(t);
    }
    free(hdr);
    free(hdr_b64);
    free(token);
}

static void test_round_trip_es256(void **state)
{
    jwtd_key *key = NULL;

    (void)state;
    assert_int_equal(jwtd__key_from_pkey(g_ec, JWTD_ALG_ES256, "ec", &key), JWTD_OK);
    round_trip(key, g_pub, "{\"alg\":\"ES256\",\"typ\":\"JWT\",\"kid\":\"ec\"}");
    jwtd_key_free(key);
}

static void test_round_trip_eddsa(void **state)
{
    jwtd_key *key = NULL;

    (void)state;
    assert_int_equal(jwtd__key_from_pkey(g_ed, JWTD_ALG_EDDSA, "ed", &key), JWTD_OK);
    round_trip(key, g_pub, "{\"alg\":\"EdDSA\",\"typ\":\"JWT\",\"kid\":\"ed\"}");
    jwtd_key_free(key);
}

static void test_round_trip_rs256(void **state)
{
    jwtd_key *key = NULL;

    (void)state;
    assert_int_equal(jwtd__key_from_pkey(g_rsa, JWTD_ALG_RS256, "rsa", &key), JWTD_OK);
    round_trip(key, g_pub, "{\"alg\":\"RS256\",\"typ\":\"JWT\",\"kid\":\"rsa\"}");
    jwtd_key_free(key);
}

static void test_round_trip_hs256(void **state)
{
    uint8_t secret[48];
    jwtd_key *key = NULL, *nokid = NULL;
    jwtd_keyset *set;

    (void)state;
    memset(secret, 0x5a, sizeof(secret));
    assert_int_equal(jwtd_key_new_hmac("h\"1", secret, sizeof(secret), &key), JWTD_OK);
    set = tu_set1(key);
    /* The kid is JSON-escaped in the header. */
    round_trip(key, set, "{\"alg\":\"HS256\",\"typ\":\"JWT\",\"kid\":\"h\\\"1\"}");
    jwtd_keyset_free(set);
    jwtd_key_free(key);
    /* An empty kid is omitted from the header. */
    assert_int_equal(jwtd_key_new_hmac(NULL, secret, sizeof(secret), &nokid), JWTD_OK);
    set = tu_set1(nokid);
    round_trip(nokid, set, "{\"alg\":\"HS256\",\"typ\":\"JWT\"}");
    jwtd_keyset_free(set);
    jwtd_key_free(nokid);
}

static void test_independent_signer_verifies(void **state)
{
    const char *p = "{\"x\":1}";
    char *t;

    (void)state;
    t = tu_sign(JWTD_ALG_ES256, g_ec, NULL, 0, "{\"alg\":\"ES256\",\"kid\":\"ec\"}", p);
    verify_payload(g_pub, ALL_ALGS, t, p);
    free(t);
    t = tu_sign(JWTD_ALG_EDDSA, g_ed, NULL, 0, "{\"alg\":\"EdDSA\",\"kid\":\"ed\"}", p);
    verify_payload(g_pub, ALL_ALGS, t, p);
    free(t);
    t = tu_sign(JWTD_ALG_RS256, g_rsa, NULL, 0, "{\"alg\":\"RS256\",\"kid\":\"rsa\"}", p);
    verify_payload(g_pub, ALL_ALGS, t, p);
    free(t);
}

static void test_es256_signature_is_raw_64_bytes(void **state)
{
    jwtd_key *key = NULL;
    char *token = NULL;
    uint8_t *sig;
    size_t len;

    (void)state;
    assert_int_equal(jwtd__key_from_pkey(g_ec, JWTD_ALG_ES256, "ec", &key), JWTD_OK);
    for (int i = 0; i < 20; i++) { /* short r or s must still be padded */
        assert_int_equal(jwtd__sign_compact(key, "{}", 2, &token), JWTD_OK);
        sig = tu_unb64(strrchr(token, '.') + 1, &len);
        assert_int_equal(len, 64);
        free(sig);
        assert_int_equal(verify(g_pub, JWTD_ALG_ES256, token), JWTD_OK);
        free(token);
    }
    jwtd_key_free(key);
}

/* r or s below 2^248 has a leading zero byte in r||s and a shorter DER
 * INTEGER: the conversion must strip it (and keep the sign octet right). */
static void test_es256_short_r_or_s_verifies(void **state)
{
    int found = 0;

    (void)state;
    for (int i = 0; i < 20000 && found < 2; i++) {
        char *t = tu_sign(JWTD_ALG_ES256, g_ec, NULL, 0, "{\"alg\":\"ES256\",\"kid\":\"ec\"}",
                          "{}");
        size_t len;
        uint8_t *sig = tu_unb64(strrchr(t, '.') + 1, &len);

        /* A zero byte followed by one without the high bit: the minimal
         * DER INTEGER is shorter than 32 bytes. */
        if ((sig[0] == 0 && sig[1] < 0x80) || (sig[32] == 0 && sig[33] < 0x80)) {
            assert_int_equal(verify(g_pub, ALL_ALGS, t), JWTD_OK);
            found++;
        }
        free(sig);
        free(t);
    }
    assert_int_equal(found, 2);
}

static void test_sign_needs_private_key(void **state)
{
    jwtd_key *pub = NULL;
    char *token = NULL;

    (void)state;
    assert_int_equal(jwtd_key_from_jwk(A3_JWK, strlen(A3_JWK), 0, &pub), JWTD_OK);
    assert_int_equal(jwtd__sign_compact(pub, "{}", 2, &token), JWTD_ERR_INVALID_ARG);
    assert_null(token);
    assert_int_equal(jwtd__sign_compact(NULL, "{}", 2, &token), JWTD_ERR_INVALID_ARG);
    jwtd_key_free(pub);
}

/* -------------------------------------------------------- attacks ------- */

/* HMAC a token with the given bytes as the "secret". */
static char *hs256_with(const uint8_t *secret, size_t len, const char *header)
{
    return tu_sign(JWTD_ALG_HS256, NULL, secret, len, header, "{\"sub\":\"admin\"}");
}

static void confusion_attempts(EVP_PKEY *pkey, const char *kid)
{
    unsigned char *der = NULL;
    int der_len = i2d_PUBKEY(pkey, &der);
    char *hdr = tu_fmt("{\"alg\":\"HS256\",\"kid\":\"%s\"}", kid);
    char *t;

    assert_true(der_len > 0);
    /* The classic attack: HMAC keyed with the public key the verifier has. */
    t = hs256_with(der, (size_t)der_len, hdr);
    assert_int_equal(verify(g_pub, ALL_ALGS, t), JWTD_ERR_ALG);
    assert_int_equal(verify(g_pub, JWTD_ALGS_ASYMMETRIC, t), JWTD_ERR_ALG);
    free(t);
    /* Without a kid there is no HS256 key to pick at all. */
    t = hs256_with(der, (size_t)der_len, "{\"alg\":\"HS256\"}");
    assert_int_equal(verify(g_pub, ALL_ALGS, t), JWTD_ERR_KID);
    free(t);
    OPENSSL_free(der);
    free(hdr);
}

static void test_alg_confusion_hs256_with_rsa_public_key(void **state)
{
    (void)state;
    confusion_attempts(g_rsa, "rsa");
}

static void test_alg_confusion_hs256_with_ec_public_key(void **state)
{
    (void)state;
    confusion_attempts(g_ec, "ec");
}

static void test_alg_confusion_hs256_with_ed25519_public_key(void **state)
{
    (void)state;
    confusion_attempts(g_ed, "ed");
}

static void test_alg_confusion_hs256_with_jwk_text_as_secret(void **state)
{
    char *jwk = tu_public_jwk(g_rsa, JWTD_ALG_RS256, "rsa");
    char *t = hs256_with((const uint8_t *)jwk, strlen(jwk), "{\"alg\":\"HS256\",\"kid\":\"rsa\"}");

    (void)state;
    assert_int_equal(verify(g_pub, ALL_ALGS, t), JWTD_ERR_ALG);
    free(t);
    free(jwk);
}

static void test_alg_confusion_rs256_header_on_ec_key(void **state)
{
    char *t = tu_sign(JWTD_ALG_RS256, g_rsa, NULL, 0, "{\"alg\":\"RS256\",\"kid\":\"ec\"}", "{}");

    (void)state;
    assert_int_equal(verify(g_pub, ALL_ALGS, t), JWTD_ERR_ALG);
    free(t);
    t = tu_sign(JWTD_ALG_ES256, g_ec, NULL, 0, "{\"alg\":\"ES256\",\"kid\":\"rsa\"}", "{}");
    assert_int_equal(verify(g_pub, ALL_ALGS, t), JWTD_ERR_ALG);
    free(t);
    t = tu_sign(JWTD_ALG_EDDSA, g_ed, NULL, 0, "{\"alg\":\"EdDSA\",\"kid\":\"ec\"}", "{}");
    assert_int_equal(verify(g_pub, ALL_ALGS, t), JWTD_ERR_ALG);
    free(t);
}

static void test_alg_none_spellings(void **state)
{
    static const char *const spellings[] = {"none", "None", "NONE", "nOnE"};
    static const uint8_t junk[32] = {1};

    (void)state;
    for (size_t i = 0; i < 4; i++) {
        char *hdr = tu_fmt("{\"alg\":\"%s\",\"kid\":\"ec\"}", spellings[i]);
        char *h = tu_b64s(hdr), *p = tu_b64s("{\"sub\":\"admin\"}");
        char *unsigned_tok = tu_fmt("%s.%s.", h, p);
        char *with_sig = tu_token_raw(hdr, "{\"sub\":\"admin\"}", junk, sizeof(junk));

        /* The classic form has an empty signature: refused for its
         * algorithm, the header being read before the empty third segment
         * is (a caller's log then says "algorithm not allowed"). */
        assert_int_not_equal(verify(g_pub, ALL_ALGS, unsigned_tok), JWTD_OK);
        assert_int_equal(verify(g_pub, ALL_ALGS, unsigned_tok), JWTD_ERR_ALG);
        /* With a signature present, the header rule refuses it. */
        assert_int_equal(verify(g_pub, ALL_ALGS, with_sig), JWTD_ERR_ALG);
        free(hdr);
        free(h);
        free(p);
        free(unsigned_tok);
        free(with_sig);
    }
    /* A token of an allowed algorithm with its signature cut off is still
     * malformed, its header read first. */
    char *t = tu_sign(JWTD_ALG_ES256, g_ec, NULL, 0, "{\"alg\":\"ES256\",\"kid\":\"ec\"}", "{}");
    strrchr(t, '.')[1] = '\0';
    assert_int_equal(verify(g_pub, ALL_ALGS, t), JWTD_ERR_MALFORMED);
    free(t);
}

static void test_alg_outside_allowed_set(void **state)
{
    char *t = tu_sign(JWTD_ALG_ES256, g_ec, NULL, 0, "{\"alg\":\"ES256\",\"kid\":\"ec\"}", "{}");

    (void)state;
    assert_int_equal(verify(g_pub, JWTD_ALG_RS256 | JWTD_ALG_EDDSA, t), JWTD_ERR_ALG);
    assert_int_equal(verify(g_pub, JWTD_ALG_ES256, t), JWTD_OK);
    free(t);
}

static void test_alg_unknown_or_missing(void **state)
{
    static const char *const headers[] = {
        "{\"alg\":\"ES384\",\"kid\":\"ec\"}", "{\"alg\":\"PS256\",\"kid\":\"rsa\"}",
        "{\"alg\":\"HS512\",\"kid\":\"ec\"}", "{\"alg\":\"es256\",\"kid\":\"ec\"}",
        "{\"alg\":\"ES256 \",\"kid\":\"ec\"}", "{\"kid\":\"ec\"}",
        "{\"alg\":null,\"kid\":\"ec\"}",    "{\"alg\":[\"ES256\"],\"kid\":\"ec\"}",
        "{\"alg\":\"\",\"kid\":\"ec\"}",
    };
    static const uint8_t sig[64] = {1};

    (void)state;
    for (size_t i = 0; i < sizeof(headers) / sizeof(headers[0]); i++) {
        char *t = tu_token_raw(headers[i], "{}", sig, sizeof(sig));
        assert_int_equal(verify(g_pub, ALL_ALGS, t), JWTD_ERR_ALG);
        free(t);
    }
}

/* A valid ES256 token, and its raw signature. */
static char *es256_token(uint8_t sig[64])
{
    char *t = tu_sign(JWTD_ALG_ES256, g_ec, NULL, 0, "{\"alg\":\"ES256\",\"kid\":\"ec\"}",
                      "{\"sub\":\"u\"}");
    size_t len;
    uint8_t *raw = tu_unb64(strrchr(t, '.') + 1, &len);

    assert_int_equal(len, 64);
    memcpy(sig, raw, 64);
    free(raw);
    assert_int_equal(verify(g_pub, ALL_ALGS, t), JWTD_OK);
    return t;
}

static void expect_sig_refused(const char *token, const uint8_t *sig, size_t len)
{
    char *t = tu_with_sig(token, sig, len);

    assert_int_equal(verify(g_pub, ALL_ALGS, t), JWTD_ERR_SIGNATURE);
    free(t);
}

static void test_es256_all_zero_signature(void **state)
{
    uint8_t sig[64], zero[64] = {0};
    char *t = es256_token(sig);

    (void)state;
    expect_sig_refused(t, zero, sizeof(zero));
    free(t);
}

static void test_es256_r_or_s_equal_to_order(void **state)
{
    uint8_t sig[64], bad[64];
    char *t = es256_token(sig);

    (void)state;
    memcpy(bad, P256_N, 32); /* r = n */
    memcpy(bad + 32, sig + 32, 32);
    expect_sig_refused(t, bad, 64);
    memcpy(bad, sig, 32); /* s = n */
    memcpy(bad + 32, P256_N, 32);
    expect_sig_refused(t, bad, 64);
    memset(bad, 0xff, 32); /* r > n */
    memcpy(bad + 32, sig + 32, 32);
    expect_sig_refused(t, bad, 64);
    memset(bad, 0, 32); /* r = 0, s valid */
    memcpy(bad + 32, sig + 32, 32);
    expect_sig_refused(t, bad, 64);
    memcpy(bad, sig, 32); /* s = 0 */
    memset(bad + 32, 0, 32);
    expect_sig_refused(t, bad, 64);
    free(t);
}

static void test_es256_signature_of_63_or_65_bytes(void **state)
{
    uint8_t sig[64], longer[65];
    char *t = es256_token(sig);

    (void)state;
    expect_sig_refused(t, sig, 63);
    memcpy(longer, sig, 64);
    longer[64] = 0;
    expect_sig_refused(t, longer, 65);
    /* r||s with a leading zero prepended to r (a "BufferOverflow" shape). */
    longer[0] = 0;
    memcpy(longer + 1, sig, 64);
    expect_sig_refused(t, longer, 65);
    free(t);
}

static void test_es256_der_signature_refused(void **state)
{
    uint8_t sig[64], der[80];
    char *t = es256_token(sig);
    size_t len = 0;

    (void)state;
    /* The same (r, s) in DER, as OpenSSL would emit it: not JWS. */
    der[len++] = 0x30;
    der[len++] = 68;
    der[len++] = 0x02;
    der[len++] = 33;
    der[len++] = 0;
    memcpy(der + len, sig, 32);
    len += 32;
    der[len++] = 0x02;
    der[len++] = 33;
    der[len++] = 0;
    memcpy(der + len, sig + 32, 32);
    len += 32;
    expect_sig_refused(t, der, len);
    free(t);
}

static void test_eddsa_and_rs256_signature_length(void **state)
{
    char *t = tu_sign(JWTD_ALG_EDDSA, g_ed, NULL, 0, "{\"alg\":\"EdDSA\",\"kid\":\"ed\"}", "{}");
    size_t len;
    uint8_t *sig = tu_unb64(strrchr(t, '.') + 1, &len);
    uint8_t buf[260];

    (void)state;
    assert_int_equal(len, 64);
    expect_sig_refused(t, sig, 63);
    memcpy(buf, sig, 64);
    buf[64] = 0;
    expect_sig_refused(t, buf, 65);
    free(sig);
    free(t);

    t = tu_sign(JWTD_ALG_RS256, g_rsa, NULL, 0, "{\"alg\":\"RS256\",\"kid\":\"rsa\"}", "{}");
    sig = tu_unb64(strrchr(t, '.') + 1, &len);
    assert_int_equal(len, 256);
    expect_sig_refused(t, sig, 255);
    buf[0] = 0; /* a leading zero keeps the value but not the length */
    memcpy(buf + 1, sig, 256);
    expect_sig_refused(t, buf, 257);
    free(sig);
    free(t);
}

static void test_hs256_truncated_tag(void **state)
{
    uint8_t secret[32] = {9};
    jwtd_key *key = NULL;
    jwtd_keyset *set;
    char *t;
    size_t len;
    uint8_t *tag;

    (void)state;
    assert_int_equal(jwtd_key_new_hmac("h", secret, sizeof(secret), &key), JWTD_OK);
    set = tu_set1(key);
    t = tu_sign(JWTD_ALG_HS256, NULL, secret, sizeof(secret), "{\"alg\":\"HS256\",\"kid\":\"h\"}",
                "{}");
    assert_int_equal(verify(set, JWTD_ALG_HS256, t), JWTD_OK);
    tag = tu_unb64(strrchr(t, '.') + 1, &len);
    {
        char *cut = tu_with_sig(t, tag, 16);
        assert_int_equal(verify(set, JWTD_ALG_HS256, cut), JWTD_ERR_SIGNATURE);
        free(cut);
    }
    free(tag);
    free(t);
    jwtd_keyset_free(set);
    jwtd_key_free(key);
}

/* Correctly signed tokens whose header carries a forbidden parameter. */
static void test_embedded_key_headers_refused(void **state)
{
    static const char *const extra[] = {
        "\"jwk\":{\"kty\":\"oct\",\"k\":\"AAAA\"}",
        "\"jku\":\"https://attacker.example/jwks.json\"",
        "\"x5u\":\"https://attacker.example/cert.pem\"",
        "\"x5c\":[\"MIIB\"]",
        "\"x5t\":\"abc\"",
        "\"x5t#S256\":\"abc\"",
    };

    (void)state;
    for (size_t i = 0; i < sizeof(extra) / sizeof(extra[0]); i++) {
        char *hdr = tu_fmt("{\"alg\":\"ES256\",\"kid\":\"ec\",%s}", extra[i]);
        char *t = tu_sign(JWTD_ALG_ES256, g_ec, NULL, 0, hdr, "{}");
        assert_int_equal(verify(g_pub, ALL_ALGS, t), JWTD_ERR_HEADER);
        free(t);
        free(hdr);
    }
}

static void test_embedded_jwk_with_attacker_key(void **state)
{
    /* The attacker signs with their own key and ships its public half in
     * "jwk", hoping the verifier uses it. */
    EVP_PKEY *evil = tu_keygen(JWTD_ALG_ES256);
    char *jwk = tu_public_jwk(evil, JWTD_ALG_ES256, "ec");
    char *hdr = tu_fmt("{\"alg\":\"ES256\",\"kid\":\"ec\",\"jwk\":%s}", jwk);
    char *t = tu_sign(JWTD_ALG_ES256, evil, NULL, 0, hdr, "{}");
    char *hdr2 = tu_fmt("{\"alg\":\"ES256\",\"jwk\":%s}", jwk);
    char *t2 = tu_sign(JWTD_ALG_ES256, evil, NULL, 0, hdr2, "{}");

    (void)state;
    assert_int_equal(verify(g_pub, ALL_ALGS, t), JWTD_ERR_HEADER);
    assert_int_equal(verify(g_pub, ALL_ALGS, t2), JWTD_ERR_HEADER);
    free(t);
    free(t2);
    free(hdr);
    free(hdr2);
    free(jwk);
    EVP_PKEY_free(evil);
}

static void test_crit_header_refused(void **state)
{
    static const char *const headers[] = {
        "{\"alg\":\"ES256\",\"kid\":\"ec\",\"crit\":[\"exp\"],\"exp\":1}",
        "{\"alg\":\"ES256\",\"kid\":\"ec\",\"crit\":[]}",
        "{\"alg\":\"ES256\",\"kid\":\"ec\",\"crit\":\"b64\"}",
    };

    (void)state;
    for (size_t i = 0; i < 3; i++) {
        char *t = tu_sign(JWTD_ALG_ES256, g_ec, NULL, 0, headers[i], "{}");
        assert_int_equal(verify(g_pub, ALL_ALGS, t), JWTD_ERR_CRIT);
        free(t);
    }
}

static void test_unencoded_payload_b64_false_refused(void **state)
{
    char *t = tu_sign(JWTD_ALG_ES256, g_ec, NULL, 0, "{\"alg\":\"ES256\",\"kid\":\"ec\",\"b64\":false}",
                      "{}");

    (void)state;
    assert_int_equal(verify(g_pub, ALL_ALGS, t), JWTD_ERR_HEADER);
    free(t);
}

static void test_kid_not_a_string(void **state)
{
    char *t = tu_sign(JWTD_ALG_ES256, g_ec, NULL, 0, "{\"alg\":\"ES256\",\"kid\":7}", "{}");

    (void)state;
    assert_int_equal(verify(g_pub, ALL_ALGS, t), JWTD_ERR_HEADER);
    free(t);
}

static void test_unknown_kid(void **state)
{
    char *t = tu_sign(JWTD_ALG_ES256, g_ec, NULL, 0, "{\"alg\":\"ES256\",\"kid\":\"nope\"}", "{}");

    (void)state;
    assert_int_equal(verify(g_pub, ALL_ALGS, t), JWTD_ERR_KID);
    free(t);
    /* A kid differing only by a trailing NUL-escape is refused by the JSON
     * parser, not truncated to "ec". */
    t = tu_sign(JWTD_ALG_ES256, g_ec, NULL, 0, "{\"alg\":\"ES256\",\"kid\":\"ec\\u0000x\"}", "{}");
    assert_int_equal(verify(g_pub, ALL_ALGS, t), JWTD_ERR_JSON);
    free(t);
    t = tu_sign(JWTD_ALG_ES256, g_ec, NULL, 0, "{\"alg\":\"ES256\",\"kid\":\"EC\"}", "{}");
    assert_int_equal(verify(g_pub, ALL_ALGS, t), JWTD_ERR_KID);
    free(t);
}

static void test_missing_kid_selects_only_key_of_alg(void **state)
{
    jwtd_keyset *two = NULL;
    char *a = tu_public_jwk(g_ec, JWTD_ALG_ES256, "a");
    EVP_PKEY *other = tu_keygen(JWTD_ALG_ES256);
    char *b = tu_public_jwk(other, JWTD_ALG_ES256, "b");
    char *doc = tu_fmt("{\"keys\":[%s,%s]}", a, b);
    char *t = tu_sign(JWTD_ALG_ES256, g_ec, NULL, 0, "{\"alg\":\"ES256\"}", "{}");

    (void)state;
    /* One ES256 key in the set: it is used. */
    assert_int_equal(verify(g_pub, ALL_ALGS, t), JWTD_OK);
    /* Two: ambiguous, refused. */
    assert_int_equal(jwtd_keyset_from_jwks(doc, strlen(doc), 0, &two), JWTD_OK);
    assert_int_equal(verify(two, ALL_ALGS, t), JWTD_ERR_KID);
    jwtd_keyset_free(two);
    free(t);
    free(doc);
    free(a);
    free(b);
    EVP_PKEY_free(other);
}

static void test_empty_keyset_verifies_nothing(void **state)
{
    jwtd_keyset *empty = NULL;
    char *t = tu_sign(JWTD_ALG_ES256, g_ec, NULL, 0, "{\"alg\":\"ES256\"}", "{}");

    (void)state;
    assert_int_equal(jwtd_keyset_new(&empty), JWTD_OK);
    assert_int_equal(verify(empty, ALL_ALGS, t), JWTD_ERR_KID);
    jwtd_keyset_free(empty);
    free(t);
}

static void test_duplicate_json_keys_in_header(void **state)
{
    static const char *const headers[] = {
        "{\"alg\":\"ES256\",\"alg\":\"none\",\"kid\":\"ec\"}",
        "{\"alg\":\"ES256\",\"kid\":\"rsa\",\"kid\":\"ec\"}",
        "{\"alg\":\"ES256\",\"kid\":\"ec\",\"kid\":\"ec\"}",
    };

    (void)state;
    for (size_t i = 0; i < 3; i++) {
        char *t = tu_sign(JWTD_ALG_ES256, g_ec, NULL, 0, headers[i], "{}");
        assert_int_equal(verify(g_pub, ALL_ALGS, t), JWTD_ERR_JSON);
        free(t);
    }
}

static void test_header_not_a_json_object(void **state)
{
    static const char *const headers[] = {"[\"ES256\"]", "\"ES256\"", "{\"alg\":\"ES256\"",
                                          "{\"alg\":\"ES256\"} x", ""};
    static const uint8_t sig[64] = {1};

    (void)state;
    for (size_t i = 0; i < 4; i++) {
        char *t = tu_token_raw(headers[i], "{}", sig, sizeof(sig));
        assert_int_equal(verify(g_pub, ALL_ALGS, t), JWTD_ERR_JSON);
        free(t);
    }
    {
        char *t = tu_token_raw(headers[4], "{}", sig, sizeof(sig));
        assert_int_equal(verify(g_pub, ALL_ALGS, t), JWTD_ERR_MALFORMED); /* empty header */
        free(t);
    }
}

static void test_extra_or_missing_segments(void **state)
{
    char *t = tu_sign(JWTD_ALG_ES256, g_ec, NULL, 0, "{\"alg\":\"ES256\",\"kid\":\"ec\"}", "{}");
    char *x;
    const char *dot1 = strchr(t, '.'), *dot2 = strrchr(t, '.');

    (void)state;
    x = tu_fmt("%s.", t);
    assert_int_equal(verify(g_pub, ALL_ALGS, x), JWTD_ERR_MALFORMED);
    free(x);
    x = tu_fmt("%s.AAAA", t);
    assert_int_equal(verify(g_pub, ALL_ALGS, x), JWTD_ERR_MALFORMED);
    free(x);
    x = tu_fmt("%.*s", (int)(dot2 - t), t); /* header.payload */
    assert_int_equal(verify(g_pub, ALL_ALGS, x), JWTD_ERR_MALFORMED);
    free(x);
    x = tu_fmt("%s", dot1 + 1); /* payload.signature */
    assert_int_equal(verify(g_pub, ALL_ALGS, x), JWTD_ERR_MALFORMED);
    free(x);
    x = tu_fmt("%s", dot1); /* .payload.signature */
    assert_int_equal(verify(g_pub, ALL_ALGS, x), JWTD_ERR_MALFORMED);
    free(x);
    assert_int_equal(verify(g_pub, ALL_ALGS, ""), JWTD_ERR_MALFORMED);
    assert_int_equal(verify(g_pub, ALL_ALGS, ".."), JWTD_ERR_MALFORMED);
    /* JSON serialization is not accepted. */
    x = tu_fmt("{\"payload\":\"e30\",\"protected\":\"%.*s\",\"signature\":\"%s\"}",
               (int)(dot1 - t), t, dot2 + 1);
    assert_int_equal(verify(g_pub, ALL_ALGS, x), JWTD_ERR_MALFORMED);
    free(x);
    free(t);
}

static void test_oversize_token(void **state)
{
    char *big = malloc(JWTD_MAX_TOKEN_LEN + 2);
    char *payload, *t;
    uint8_t *out = NULL;
    size_t len = 0;

    (void)state;
    assert_non_null(big);
    memset(big, 'A', JWTD_MAX_TOKEN_LEN + 1);
    big[10] = '.';
    big[20] = '.';
    big[JWTD_MAX_TOKEN_LEN + 1] = '\0';
    assert_int_equal(verify(g_pub, ALL_ALGS, big), JWTD_ERR_TOO_LARGE);
    /* Checked before anything else: even a NULL-free garbage string. */
    assert_int_equal(jwtd_jws_verify(g_pub, ALL_ALGS, big, SIZE_MAX, &out, &len),
                     JWTD_ERR_TOO_LARGE);
    free(big);

    /* A valid token of exactly JWTD_MAX_TOKEN_LEN is accepted, one byte
     * more is not. Not every length is a valid base64url length, so a
     * little padding in the header finds one that fits exactly. */
    for (int pad = 0; pad < 4; pad++) {
        char *hdr = tu_fmt("{\"alg\":\"EdDSA\",\"kid\":\"ed\",\"p\":\"%.*s\"}", pad, "xxxx");
        size_t henc = jwtd__b64url_encoded_len(strlen(hdr));
        size_t penc = JWTD_MAX_TOKEN_LEN - henc - 2 - 86; /* 86: Ed25519 signature */
        size_t n;

        if (penc % 4 == 1) {
            free(hdr);
            continue;
        }
        n = penc / 4 * 3 + (penc % 4 == 0 ? 0 : penc % 4 - 1);
        payload = malloc(n + 2);
        assert_non_null(payload);
        memset(payload, 'x', n + 1);
        payload[n] = '\0';
        t = tu_sign(JWTD_ALG_EDDSA, g_ed, NULL, 0, hdr, payload);
        assert_int_equal(strlen(t), JWTD_MAX_TOKEN_LEN);
        assert_int_equal(verify(g_pub, ALL_ALGS, t), JWTD_OK);
        free(t);
        payload[n] = 'x';
        payload[n + 1] = '\0';
        t = tu_sign(JWTD_ALG_EDDSA, g_ed, NULL, 0, hdr, payload);
        assert_true(strlen(t) > JWTD_MAX_TOKEN_LEN);
        assert_int_equal(verify(g_pub, ALL_ALGS, t), JWTD_ERR_TOO_LARGE);
        free(t);
        free(payload);
        free(hdr);
        return;
    }
    fail_msg("no header padding gives an exact-size token");
}

static void test_noncanonical_base64_segments(void **state)
{
    char *t = tu_sign(JWTD_ALG_ES256, g_ec, NULL, 0, "{\"alg\":\"ES256\",\"kid\":\"ec\"}", "{}");
    char *x;

    (void)state;
    x = tu_fmt("%s=", t); /* padding on the signature */
    assert_int_equal(verify(g_pub, ALL_ALGS, x), JWTD_ERR_BASE64);
    free(x);
    x = tu_fmt(" %s", t); /* whitespace */
    assert_int_equal(verify(g_pub, ALL_ALGS, x), JWTD_ERR_BASE64);
    free(x);
    x = tu_fmt("%s\n", t);
    assert_int_equal(verify(g_pub, ALL_ALGS, x), JWTD_ERR_BASE64);
    free(x);
    free(t);
}

/* The signature is valid over the exact string, but the payload segment "AB"
 * is a non-canonical spelling of the byte 0x00 ("AA"): refused, so one
 * signed byte string has one token. */
static void test_noncanonical_payload_with_valid_signature(void **state)
{
    char *h = tu_b64s("{\"alg\":\"HS256\",\"kid\":\"h\"}");
    char *input = tu_fmt("%s.AB", h);
    uint8_t secret[32] = {3}, mac[32];
    unsigned int mlen = 0;
    jwtd_key *key = NULL;
    jwtd_keyset *set;
    char *s, *t;

    (void)state;
    assert_int_equal(jwtd_key_new_hmac("h", secret, sizeof(secret), &key), JWTD_OK);
    set = tu_set1(key);
    assert_non_null(HMAC(EVP_sha256(), secret, 32, (const uint8_t *)input, strlen(input), mac,
                         &mlen));
    s = tu_b64(mac, mlen);
    t = tu_fmt("%s.%s", input, s);
    assert_int_equal(verify(set, JWTD_ALG_HS256, t), JWTD_ERR_BASE64);
    free(t);
    free(s);
    free(input);
    free(h);
    jwtd_keyset_free(set);
    jwtd_key_free(key);
}

static void test_empty_payload_is_legal(void **state)
{
    char *t = tu_sign(JWTD_ALG_RS256, g_rsa, NULL, 0, "{\"alg\":\"RS256\",\"kid\":\"rsa\"}", "");

    (void)state;
    verify_payload(g_pub, ALL_ALGS, t, "");
    free(t);
}

static void test_invalid_arguments(void **state)
{
    uint8_t *out = NULL;
    size_t len = 0;

    (void)state;
    assert_int_equal(jwtd_jws_verify(NULL, ALL_ALGS, A3_JWS, strlen(A3_JWS), &out, &len),
                     JWTD_ERR_INVALID_ARG);
    assert_int_equal(jwtd_jws_verify(g_pub, 0, A3_JWS, strlen(A3_JWS), &out, &len),
                     JWTD_ERR_INVALID_ARG);
    assert_int_equal(jwtd_jws_verify(g_pub, 1u << 20, A3_JWS, strlen(A3_JWS), &out, &len),
                     JWTD_ERR_INVALID_ARG);
    assert_int_equal(jwtd_jws_verify(g_pub, ALL_ALGS, NULL, 0, &out, &len), JWTD_ERR_INVALID_ARG);
    assert_int_equal(jwtd_jws_verify(g_pub, ALL_ALGS, A3_JWS, strlen(A3_JWS), NULL, &len),
                     JWTD_ERR_INVALID_ARG);
    assert_null(out);
}

/* ------------------------------------------------------- concurrency --- */

struct shared_work {
    const jwtd_keyset *pub, *hmac;
    const char *tokens[3], *hs_token, *bad_token;
    jwtd_key *key; /* referenced and released from every thread */
    int failures;  /* written by one thread each, in its own copy */
};

static void *verify_loop(void *arg)
{
    struct shared_work *w = arg;

    for (int i = 0; i < 200; i++) {
        for (int t = 0; t < 3; t++)
            if (verify(w->pub, ALL_ALGS, w->tokens[t]) != JWTD_OK)
                w->failures++;
        if (verify(w->hmac, JWTD_ALG_HS256, w->hs_token) != JWTD_OK)
            w->failures++;
        if (verify(w->pub, ALL_ALGS, w->bad_token) != JWTD_ERR_SIGNATURE)
            w->failures++;
        jwtd_key_free(jwtd__key_ref(w->key));
    }
    return NULL;
}

/* Read-only key sets and keys are shared by verifying threads (run under
 * ASan here, and under TSan by hand). */
static void test_concurrent_verification_shares_keys(void **state)
{
    uint8_t secret[32] = {8}, zero[64] = {0};
    jwtd_key *hkey = NULL;
    jwtd_keyset *hset;
    struct shared_work w[2];
    pthread_t th[2];
    char *es = tu_sign(JWTD_ALG_ES256, g_ec, NULL, 0, "{\"alg\":\"ES256\",\"kid\":\"ec\"}", "{}");
    char *ed = tu_sign(JWTD_ALG_EDDSA, g_ed, NULL, 0, "{\"alg\":\"EdDSA\",\"kid\":\"ed\"}", "{}");
    char *rs = tu_sign(JWTD_ALG_RS256, g_rsa, NULL, 0, "{\"alg\":\"RS256\",\"kid\":\"rsa\"}", "{}");
    char *hs = tu_sign(JWTD_ALG_HS256, NULL, secret, sizeof(secret),
                       "{\"alg\":\"HS256\",\"kid\":\"h\"}", "{}");
    char *bad = tu_with_sig(es, zero, sizeof(zero));

    (void)state;
    assert_int_equal(jwtd_key_new_hmac("h", secret, sizeof(secret), &hkey), JWTD_OK);
    hset = tu_set1(hkey);
    for (int i = 0; i < 2; i++) {
        w[i] = (struct shared_work){g_pub, hset, {es, ed, rs}, hs, bad, hkey, 0};
        assert_int_equal(pthread_create(&th[i], NULL, verify_loop, &w[i]), 0);
    }
    for (int i = 0; i < 2; i++) {
        assert_int_equal(pthread_join(th[i], NULL), 0);
        assert_int_equal(w[i].failures, 0);
    }
    jwtd_keyset_free(hset);
    jwtd_key_free(hkey);
    free(es);
    free(ed);
    free(rs);
    free(hs);
    free(bad);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rfc7515_a1_hs256),
        cmocka_unit_test(test_rfc7515_a2_rs256),
        cmocka_unit_test(test_rfc7515_a3_es256),
        cmocka_unit_test(test_rfc8037_a4_ed25519),
        cmocka_unit_test(test_rfc7520_4_1_rs256),
        cmocka_unit_test(test_rfc7520_4_4_hs256),
        cmocka_unit_test(test_round_trip_es256),
        cmocka_unit_test(test_round_trip_eddsa),
        cmocka_unit_test(test_round_trip_rs256),
        cmocka_unit_test(test_round_trip_hs256),
        cmocka_unit_test(test_independent_signer_verifies),
        cmocka_unit_test(test_es256_signature_is_raw_64_bytes),
        cmocka_unit_test(test_es256_short_r_or_s_verifies),
        cmocka_unit_test(test_sign_needs_private_key),
        cmocka_unit_test(test_alg_confusion_hs256_with_rsa_public_key),
        cmocka_unit_test(test_alg_confusion_hs256_with_ec_public_key),
        cmocka_unit_test(test_alg_confusion_hs256_with_ed25519_public_key),
        cmocka_unit_test(test_alg_confusion_hs256_with_jwk_text_as_secret),
        cmocka_unit_test(test_alg_confusion_rs256_header_on_ec_key),
        cmocka_unit_test(test_alg_none_spellings),
        cmocka_unit_test(test_alg_outside_allowed_set),
        cmocka_unit_test(test_alg_unknown_or_missing),
        cmocka_unit_test(test_es256_all_zero_signature),
        cmocka_unit_test(test_es256_r_or_s_equal_to_order),
        cmocka_unit_test(test_es256_signature_of_63_or_65_bytes),
        cmocka_unit_test(test_es256_der_signature_refused),
        cmocka_unit_test(test_eddsa_and_rs256_signature_length),
        cmocka_unit_test(test_hs256_truncated_tag),
        cmocka_unit_test(test_embedded_key_headers_refused),
        cmocka_unit_test(test_embedded_jwk_with_attacker_key),
        cmocka_unit_test(test_crit_header_refused),
        cmocka_unit_test(test_unencoded_payload_b64_false_refused),
        cmocka_unit_test(test_kid_not_a_string),
        cmocka_unit_test(test_unknown_kid),
        cmocka_unit_test(test_missing_kid_selects_only_key_of_alg),
        cmocka_unit_test(test_empty_keyset_verifies_nothing),
        cmocka_unit_test(test_duplicate_json_keys_in_header),
        cmocka_unit_test(test_header_not_a_json_object),
        cmocka_unit_test(test_extra_or_missing_segments),
        cmocka_unit_test(test_oversize_token),
        cmocka_unit_test(test_noncanonical_base64_segments),
        cmocka_unit_test(test_noncanonical_payload_with_valid_signature),
        cmocka_unit_test(test_empty_payload_is_legal),
        cmocka_unit_test(test_invalid_arguments),
        cmocka_unit_test(test_concurrent_verification_shares_keys),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
