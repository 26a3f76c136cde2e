/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Test helpers for libjwtd (see testutil.h). The signer here uses OpenSSL
 * directly so that a bug shared by libjwtd's signer and verifier cannot hide.
 *
 * Must not: be used outside tests; it asserts instead of handling errors.
 */
#include "testutil.h"

#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rsa.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

EVP_PKEY *tu_keygen(jwtd_alg alg)
{
    EVP_PKEY *pkey = NULL;

    switch (alg) {
    case JWTD_ALG_ES256:
        pkey = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
        break;
    case JWTD_ALG_EDDSA:
        pkey = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
        break;
    case JWTD_ALG_RS256:
        pkey = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
        break;
    default:
        break;
    }
    assert_non_null(pkey);
    return pkey;
}

char *tu_b64(const void *data, size_t len)
{
    size_t cap = jwtd__b64url_encoded_len(len) + 1;
    char *out = malloc(cap);

    assert_non_null(out);
    assert_int_equal(jwtd__b64url_encode(data, len, out, cap), cap - 1);
    return out;
}

char *tu_b64s(const char *s)
{
    return tu_b64(s, strlen(s));
}

uint8_t *tu_unb64(const char *s, size_t *len)
{
    size_t n = strlen(s), cap = jwtd__b64url_decoded_max(n) + 1;
    uint8_t *out = malloc(cap);

    assert_non_null(out);
    assert_int_equal(jwtd__b64url_decode(s, n, out, cap, len), JWTD_OK);
    return out;
}

char *tu_fmt(const char *fmt, ...)
{
    va_list ap;
    char *s = NULL;
    int n;

    /* vasprintf (GNU): one pass, and no vsnprintf(NULL, 0) sizing, which
     * GCC 12 mis-warns about under -fsanitize=undefined. */
    va_start(ap, fmt);
    n = vasprintf(&s, fmt, ap);
    va_end(ap);
    assert_true(n >= 0);
    assert_non_null(s);
    return s;
}

char *tu_token_raw(const char *header, const char *payload, const uint8_t *sig, size_t sig_len)
{
    char *h = tu_b64s(header), *p = tu_b64s(payload), *s = tu_b64(sig, sig_len);
    char *t = tu_fmt("%s.%s.%s", h, p, s);

    free(h);
    free(p);
    free(s);
    return t;
}

char *tu_with_sig(const char *token, const uint8_t *sig, size_t sig_len)
{
    const char *last = strrchr(token, '.');
    char *s, *t;

    assert_non_null(last);
    s = tu_b64(sig, sig_len);
    t = tu_fmt("%.*s.%s", (int)(last - token), token, s);
    free(s);
    return t;
}

static size_t sign_with(EVP_PKEY *pkey, const EVP_MD *md, int rsa_pad, const char *msg,
                        uint8_t *sig, size_t cap)
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    EVP_PKEY_CTX *pctx = NULL;
    size_t len = cap;

    assert_non_null(ctx);
    assert_int_equal(EVP_DigestSignInit(ctx, &pctx, md, NULL, pkey), 1);
    if (rsa_pad != 0)
        assert_int_equal(EVP_PKEY_CTX_set_rsa_padding(pctx, rsa_pad), 1);
    assert_int_equal(EVP_DigestSign(ctx, sig, &len, (const uint8_t *)msg, strlen(msg)), 1);
    EVP_MD_CTX_free(ctx);
    return len;
}

char *tu_sign(jwtd_alg alg, EVP_PKEY *pkey, const uint8_t *secret, size_t secret_len,
              const char *header, const char *payload)
{
    char *h = tu_b64s(header), *p = tu_b64s(payload);
    char *input = tu_fmt("%s.%s", h, p);
    uint8_t sig[1024], der[128];
    size_t len = 0;
    unsigned int mlen = 0;
    char *s, *t;

    switch (alg) {
    case JWTD_ALG_HS256:
        assert_non_null(HMAC(EVP_sha256(), secret, (int)secret_len, (const uint8_t *)input,
                             strlen(input), sig, &mlen));
        len = mlen;
        break;
    case JWTD_ALG_ES256: {
        size_t dlen = sign_with(pkey, EVP_sha256(), 0, input, der, sizeof(der));
        const unsigned char *q = der;
        ECDSA_SIG *es = d2i_ECDSA_SIG(NULL, &q, (long)dlen);
        const BIGNUM *r, *ss;
        assert_non_null(es);
        ECDSA_SIG_get0(es, &r, &ss);
        assert_int_equal(BN_bn2binpad(r, sig, 32), 32);
        assert_int_equal(BN_bn2binpad(ss, sig + 32, 32), 32);
        ECDSA_SIG_free(es);
        len = 64;
        break;
    }
    case JWTD_ALG_EDDSA:
        len = sign_with(pkey, NULL, 0, input, sig, sizeof(sig));
        break;
    case JWTD_ALG_RS256:
        len = sign_with(pkey, EVP_sha256(), RSA_PKCS1_PADDING, input, sig, sizeof(sig));
        break;
    }
    assert_true(len > 0);
    s = tu_b64(sig, len);
    t = tu_fmt("%s.%s", input, s);
    free(s);
    free(input);
    free(h);
    free(p);
    return t;
}

char *tu_public_jwk(EVP_PKEY *pkey, jwtd_alg alg, const char *kid)
{
    jwtd_key *key = NULL;
    json_t *jwk = NULL;
    char *text;

    assert_int_equal(jwtd__key_from_pkey(pkey, alg, kid, &key), JWTD_OK);
    assert_int_equal(jwtd__key_public_jwk(key, &jwk), JWTD_OK);
    text = json_dumps(jwk, JSON_COMPACT);
    assert_non_null(text);
    json_decref(jwk);
    jwtd_key_free(key);
    return text;
}

jwtd_keyset *tu_set1(jwtd_key *key)
{
    jwtd_keyset *set = NULL;

    assert_int_equal(jwtd_keyset_new(&set), JWTD_OK);
    assert_int_equal(jwtd_keyset_add(set, key), JWTD_OK);
    return set;
}
