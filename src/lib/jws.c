/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Compact JWS (RFC 7515 §7.1): verification with the algorithm pinned to the
 * key, and signing for the server.
 *
 * Verification is the hot path of every authenticated request: segments are
 * decoded into stack buffers (their size is bounded by JWTD_MAX_TOKEN_LEN),
 * the signing input is the token itself (no copy), and keys arrive with their
 * OpenSSL objects already built.
 *
 * Must not: trust anything in the header beyond "alg" and "kid" (no embedded
 * keys, no key URLs, no extensions), accept an algorithm the key is not
 * pinned to, or report success for anything but a verified signature.
 */
#include "jwtd_lib.h"

#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/rsa.h>

#include <stdlib.h>
#include <string.h>

/* Largest signature of any accepted key (the largest RSA modulus). */
#define MAX_SIG_LEN (JWTD__RSA_MAX_BITS / 8)

/* Order n of the P-256 group (SEC 2 §2.4.2), big-endian. */
static const uint8_t p256_order[JWTD__ES256_COORD] = {
    0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xbc, 0xe6, 0xfa, 0xad, 0xa7, 0x17, 0x9e, 0x84, 0xf3, 0xb9, 0xca, 0xc2, 0xfc, 0x63, 0x25, 0x51,
};

/* Header parameters that would make the token choose or carry its own key.
 * They are never fetched nor trusted, and their mere presence is refused: a
 * token that asks for them was not made by an issuer we know. */
static const char *const forbidden_headers[] = {
    "jwk", "jku", "x5u", "x5c", "x5t", "x5t#S256",
};

/* ------------------------------------------------------ ES256 encoding -- */

/* 0 < v < n, as RFC 7518 §3.4 and SEC 1 §4.1.4 require of r and s. */
static bool p256_scalar_in_range(const uint8_t v[JWTD__ES256_COORD])
{
    uint8_t any = 0;

    for (size_t i = 0; i < JWTD__ES256_COORD; i++)
        any |= v[i];
    return any != 0 && memcmp(v, p256_order, JWTD__ES256_COORD) < 0;
}

/* One DER INTEGER (X.690 §8.3): minimal, with a zero octet when the high bit
 * is set so the value stays positive. */
static size_t der_integer(uint8_t *out, const uint8_t *be, size_t n)
{
    size_t pad;

    while (n > 1 && be[0] == 0) {
        be++;
        n--;
    }
    pad = (be[0] & 0x80) ? 1 : 0;
    out[0] = 0x02;
    out[1] = (uint8_t)(n + pad);
    out[2] = 0;
    memcpy(out + 2 + pad, be, n);
    return 2 + pad + n;
}

/* r||s → DER ECDSA-Sig-Value. Built by hand: at most 72 bytes, on the stack,
 * no BIGNUM allocations on the hot path. */
static size_t es256_raw_to_der(const uint8_t sig[JWTD__ES256_SIG_LEN], uint8_t der[72])
{
    size_t len = 2;

    len += der_integer(der + len, sig, JWTD__ES256_COORD);
    len += der_integer(der + len, sig + JWTD__ES256_COORD, JWTD__ES256_COORD);
    der[0] = 0x30;
    der[1] = (uint8_t)(len - 2); /* <= 70: short form */
    return len;
}

static jwtd_err es256_der_to_raw(const uint8_t *der, size_t len, uint8_t out[JWTD__ES256_SIG_LEN])
{
    const unsigned char *p = der;
    ECDSA_SIG *sig = d2i_ECDSA_SIG(NULL, &p, (long)len);
    const BIGNUM *r, *s;
    jwtd_err err = JWTD_OK;

    if (sig == NULL)
        return JWTD_ERR_INTERNAL;
    ECDSA_SIG_get0(sig, &r, &s);
    if (BN_bn2binpad(r, out, JWTD__ES256_COORD) < 0
        || BN_bn2binpad(s, out + JWTD__ES256_COORD, JWTD__ES256_COORD) < 0)
        err = JWTD_ERR_INTERNAL;
    ECDSA_SIG_free(sig);
    return err;
}

/* ----------------------------------------------------------- verifying -- */

static jwtd_err verify_pkey(const jwtd_key *key, const uint8_t *msg, size_t mlen,
                            const uint8_t *sig, size_t slen)
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    EVP_PKEY_CTX *pctx = NULL;
    const EVP_MD *md = key->alg == JWTD_ALG_EDDSA ? NULL : EVP_sha256();
    jwtd_err err;
    int rc;

    if (ctx == NULL)
        return JWTD_ERR_NOMEM;
    if (EVP_DigestVerifyInit(ctx, &pctx, md, NULL, key->pkey) != 1) {
        err = JWTD_ERR_INTERNAL;
        goto free_ctx;
    }
    /* PKCS#1 v1.5 is OpenSSL's default for RSA; set it anyway so a changed
     * default can never turn RS256 into something else. */
    if (key->alg == JWTD_ALG_RS256 && EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PADDING) != 1) {
        err = JWTD_ERR_INTERNAL;
        goto free_ctx;
    }
    rc = EVP_DigestVerify(ctx, sig, slen, msg, mlen);
    err = rc == 1 ? JWTD_OK : JWTD_ERR_SIGNATURE;
free_ctx:
    EVP_MD_CTX_free(ctx);
    return err;
}

static jwtd_err verify_signature(const jwtd_key *key, const uint8_t *msg, size_t mlen,
                                 const uint8_t *sig, size_t slen)
{
    uint8_t tag[JWTD__HS256_TAG_LEN];
    uint8_t der[72];
    size_t der_len;
    jwtd_err err;

    /* Every algorithm here has exactly one valid signature length; checking
     * it first refuses truncated, padded or re-encoded signatures. */
    if (slen != key->sig_len)
        return JWTD_ERR_SIGNATURE;
    switch (key->alg) {
    case JWTD_ALG_HS256:
        err = jwtd__hmac(key, msg, mlen, tag);
        if (err == JWTD_OK && CRYPTO_memcmp(tag, sig, sizeof(tag)) != 0)
            err = JWTD_ERR_SIGNATURE;
        OPENSSL_cleanse(tag, sizeof(tag));
        return err;
    case JWTD_ALG_ES256:
        /* Refuse r or s outside [1, n-1] before OpenSSL sees them (the
         * all-zero "psychic signature" class of bugs). */
        if (!p256_scalar_in_range(sig) || !p256_scalar_in_range(sig + JWTD__ES256_COORD))
            return JWTD_ERR_SIGNATURE;
        der_len = es256_raw_to_der(sig, der);
        return verify_pkey(key, msg, mlen, der, der_len);
    case JWTD_ALG_EDDSA:
    case JWTD_ALG_RS256:
        return verify_pkey(key, msg, mlen, sig, slen);
    }
    return JWTD_ERR_INTERNAL;
}

static bool ascii_case_equal(const char *s, size_t len, const char *lower)
{
    size_t n = strlen(lower);

    if (len != n)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c >= 'A' && c <= 'Z')
            c = (char)(c - 'A' + 'a');
        if (c != lower[i])
            return false;
    }
    return true;
}

/* The header rules, in the order of the error codes' specificity. On
 * success the key to verify with is returned. */
static jwtd_err check_header(const json_t *hdr, const jwtd_keyset *set, unsigned allowed,
                             jwtd_alg *ret_alg, const jwtd_key **ret_key, bool *ret_has_kid)
{
    const json_t *alg_j, *kid_j;
    const char *alg_s, *kid = "";
    size_t alg_len, kid_len = 0;
    const jwtd_key *key;
    jwtd_alg alg;

    if (!json_is_object(hdr))
        return JWTD_ERR_JSON;
    alg_j = json_object_get(hdr, "alg");
    if (!json_is_string(alg_j))
        return JWTD_ERR_ALG;
    alg_s = json_string_value(alg_j);
    alg_len = json_string_length(alg_j);
    /* "none" in any spelling: named explicitly so the intent survives any
     * future change to the name table. */
    if (ascii_case_equal(alg_s, alg_len, "none"))
        return JWTD_ERR_ALG;

    for (size_t i = 0; i < sizeof(forbidden_headers) / sizeof(forbidden_headers[0]); i++)
        if (json_object_get(hdr, forbidden_headers[i]) != NULL)
            return JWTD_ERR_HEADER;
    /* No extension is understood, so any "crit" names one we do not
     * (RFC 7515 §4.1.11). */
    if (json_object_get(hdr, "crit") != NULL)
        return JWTD_ERR_CRIT;
    /* RFC 7797 unencoded payloads change what is signed: refused. */
    if (json_object_get(hdr, "b64") != NULL)
        return JWTD_ERR_HEADER;
    kid_j = json_object_get(hdr, "kid");
    if (kid_j != NULL) {
        if (!json_is_string(kid_j))
            return JWTD_ERR_HEADER;
        kid = json_string_value(kid_j);
        kid_len = json_string_length(kid_j);
    }

    /* json strings never hold NUL (JSON_ALLOW_NUL is not used), so the
     * length-blind lookup is exact. */
    alg = jwtd_alg_from_name(alg_s);
    if (alg == 0 || !(alg & allowed))
        return JWTD_ERR_ALG;
    key = jwtd__keyset_select(set, alg, kid_j != NULL, kid, kid_len);
    if (key == NULL)
        return JWTD_ERR_KID;
    /* The key decides the algorithm, never the token: an HS256 header
     * against an RSA key (or RS256 against EC) stops here. */
    if (key->alg != alg)
        return JWTD_ERR_ALG;
    *ret_alg = alg;
    *ret_key = key;
    *ret_has_kid = kid_j != NULL;
    return JWTD_OK;
}

jwtd_err jwtd__jws_verify_into(const jwtd_keyset *set, unsigned allowed_algs, const char *jws,
                               size_t len, uint8_t *payload, size_t cap, size_t *ret_len,
                               jwtd_alg *ret_alg, const char **ret_kid)
{
    uint8_t hbuf[JWTD__MAX_SEGMENT];
    uint8_t sig[MAX_SIG_LEN];
    const char *dot1, *dot2, *seg;
    size_t hseg, pseg, sseg, hlen, plen, slen;
    const jwtd_key *key = NULL;
    jwtd_alg alg = 0;
    bool has_kid = false;
    json_t *hdr;
    jwtd_err err;

    if (set == NULL || jws == NULL || payload == NULL || ret_len == NULL)
        return JWTD_ERR_INVALID_ARG;
    allowed_algs &= JWTD__ALGS_ALL;
    if (allowed_algs == 0)
        return JWTD_ERR_INVALID_ARG;
    if (len > JWTD_MAX_TOKEN_LEN)
        return JWTD_ERR_TOO_LARGE;

    /* Exactly three segments. The JSON serializations (which start with
     * '{') never have exactly two dots in a valid form, but say so. */
    if (len > 0 && jws[0] == '{')
        return JWTD_ERR_MALFORMED;
    dot1 = memchr(jws, '.', len);
    if (dot1 == NULL)
        return JWTD_ERR_MALFORMED;
    dot2 = memchr(dot1 + 1, '.', len - (size_t)(dot1 + 1 - jws));
    if (dot2 == NULL)
        return JWTD_ERR_MALFORMED;
    seg = dot2 + 1;
    sseg = len - (size_t)(seg - jws);
    if (memchr(seg, '.', sseg) != NULL)
        return JWTD_ERR_MALFORMED;
    hseg = (size_t)(dot1 - jws);
    pseg = (size_t)(dot2 - dot1 - 1);
    /* An empty payload is legal JWS; an empty header or signature is not
     * (the latter refused after the header, so that an "alg": "none"
     * token, whose signature is empty, is named for its algorithm). */
    if (hseg == 0)
        return JWTD_ERR_MALFORMED;

    /* Decode everything before any crypto, so junk costs no more than a
     * table lookup per byte. */
    err = jwtd__b64url_decode(jws, hseg, hbuf, sizeof(hbuf), &hlen);
    if (err != JWTD_OK)
        return err;
    err = jwtd__b64url_decode(dot1 + 1, pseg, payload, cap, &plen);
    if (err != JWTD_OK)
        return err;
    if (jwtd__b64url_decoded_max(sseg) > sizeof(sig)) {
        /* Longer than any key's signature; still report bad encoding as
         * such. */
        for (size_t i = 0; i < sseg; i++) {
            char c = seg[i];
            if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')
                  || c == '-' || c == '_'))
                return JWTD_ERR_BASE64;
        }
        return JWTD_ERR_SIGNATURE;
    }
    err = jwtd__b64url_decode(seg, sseg, sig, sizeof(sig), &slen);
    if (err != JWTD_OK)
        return err;

    hdr = jwtd__json_parse(hbuf, hlen);
    if (hdr == NULL)
        return JWTD_ERR_JSON;
    err = check_header(hdr, set, allowed_algs, &alg, &key, &has_kid);
    json_decref(hdr);
    if (err != JWTD_OK)
        return err;
    if (sseg == 0)
        return JWTD_ERR_MALFORMED;

    /* The signing input is header "." payload exactly as received. */
    ERR_set_mark();
    err = verify_signature(key, (const uint8_t *)jws, (size_t)(dot2 - jws), sig, slen);
    ERR_pop_to_mark();
    if (err != JWTD_OK)
        return err;

    *ret_len = plen;
    if (ret_alg != NULL)
        *ret_alg = alg;
    if (ret_kid != NULL)
        *ret_kid = has_kid ? key->kid : "";
    return JWTD_OK;
}

jwtd_err jwtd_jws_verify(const jwtd_keyset *set, unsigned allowed_algs, const char *jws,
                         size_t len, uint8_t **ret_payload, size_t *ret_len)
{
    uint8_t buf[JWTD__MAX_SEGMENT];
    size_t plen = 0;
    uint8_t *out;
    jwtd_err err;

    if (ret_payload == NULL || ret_len == NULL)
        return JWTD_ERR_INVALID_ARG;
    err = jwtd__jws_verify_into(set, allowed_algs, jws, len, buf, sizeof(buf), &plen, NULL, NULL);
    if (err != JWTD_OK)
        return err;
    out = malloc(plen + 1);
    if (out == NULL)
        return JWTD_ERR_NOMEM;
    if (plen > 0)
        memcpy(out, buf, plen);
    out[plen] = '\0';
    *ret_payload = out;
    *ret_len = plen;
    return JWTD_OK;
}

/* ------------------------------------------------------------- signing -- */

static jwtd_err sign_pkey(const jwtd_key *key, const uint8_t *msg, size_t mlen, uint8_t *sig,
                          size_t *sig_len)
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    EVP_PKEY_CTX *pctx = NULL;
    const EVP_MD *md = key->alg == JWTD_ALG_EDDSA ? NULL : EVP_sha256();
    jwtd_err err = JWTD_ERR_INTERNAL;

    if (ctx == NULL)
        return JWTD_ERR_NOMEM;
    if (EVP_DigestSignInit(ctx, &pctx, md, NULL, key->pkey) != 1)
        goto free_ctx;
    if (key->alg == JWTD_ALG_RS256 && EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PADDING) != 1)
        goto free_ctx;
    if (EVP_DigestSign(ctx, sig, sig_len, msg, mlen) != 1)
        goto free_ctx;
    err = JWTD_OK;
free_ctx:
    EVP_MD_CTX_free(ctx);
    return err;
}

static jwtd_err sign_bytes(const jwtd_key *key, const uint8_t *msg, size_t mlen,
                           uint8_t sig[MAX_SIG_LEN], size_t *ret_len)
{
    uint8_t der[80];
    size_t len;
    jwtd_err err;

    switch (key->alg) {
    case JWTD_ALG_HS256:
        *ret_len = JWTD__HS256_TAG_LEN;
        return jwtd__hmac(key, msg, mlen, sig);
    case JWTD_ALG_ES256:
        /* OpenSSL speaks DER; JWS wants r||s, each 32 bytes (RFC 7518 §3.4). */
        len = sizeof(der);
        err = sign_pkey(key, msg, mlen, der, &len);
        if (err == JWTD_OK) {
            *ret_len = JWTD__ES256_SIG_LEN;
            err = es256_der_to_raw(der, len, sig);
        }
        OPENSSL_cleanse(der, sizeof(der));
        return err;
    default:
        len = MAX_SIG_LEN;
        err = sign_pkey(key, msg, mlen, sig, &len);
        if (err != JWTD_OK)
            return err;
        if (len != key->sig_len)
            return JWTD_ERR_INTERNAL;
        *ret_len = len;
        return JWTD_OK;
    }
}

/* The protected header as compact JSON text (new, free()). */
static jwtd_err header_json(const jwtd_key *key, char **ret_text, size_t *ret_len)
{
    json_t *hdr = json_object();
    size_t len;
    char *text;
    int rc = 0;

    if (hdr == NULL)
        return JWTD_ERR_NOMEM;
    /* Insertion order is output order: {"alg","typ","kid"}. */
    rc |= json_object_set_new(hdr, "alg", json_string(jwtd_alg_name(key->alg)));
    rc |= json_object_set_new(hdr, "typ", json_string("JWT"));
    if (key->kid_len > 0)
        rc |= json_object_set_new(hdr, "kid", json_stringn(key->kid, key->kid_len));
    if (rc != 0) {
        json_decref(hdr);
        return JWTD_ERR_NOMEM;
    }
    /* Sized then written by us, so the text is ours to free() whatever
     * allocator jansson was given. */
    len = json_dumpb(hdr, NULL, 0, JSON_COMPACT);
    text = len > 0 ? malloc(len) : NULL;
    if (text == NULL || json_dumpb(hdr, text, len, JSON_COMPACT) != len) {
        free(text);
        json_decref(hdr);
        return JWTD_ERR_NOMEM;
    }
    json_decref(hdr);
    *ret_text = text;
    *ret_len = len;
    return JWTD_OK;
}

jwtd_err jwtd__sign_compact(const jwtd_key *key, const char *payload, size_t payload_len,
                            char **ret_token)
{
    uint8_t sig[MAX_SIG_LEN];
    size_t hlen = 0, slen = 0, henc, penc, senc, total, pos;
    char *htext = NULL, *out = NULL;
    jwtd_err err;

    if (key == NULL || (payload == NULL && payload_len > 0) || ret_token == NULL)
        return JWTD_ERR_INVALID_ARG;
    if (!key->can_sign)
        return JWTD_ERR_INVALID_ARG;
    err = header_json(key, &htext, &hlen);
    if (err != JWTD_OK)
        return err;
    henc = jwtd__b64url_encoded_len(hlen);
    penc = jwtd__b64url_encoded_len(payload_len);
    senc = jwtd__b64url_encoded_len(key->sig_len);
    if (penc == SIZE_MAX || penc > SIZE_MAX - henc - senc - 3) {
        err = JWTD_ERR_TOO_LARGE;
        goto out;
    }
    total = henc + 1 + penc + 1 + senc + 1;
    out = malloc(total);
    if (out == NULL) {
        err = JWTD_ERR_NOMEM;
        goto out;
    }
    pos = jwtd__b64url_encode((const uint8_t *)htext, hlen, out, total);
    out[pos++] = '.';
    pos += jwtd__b64url_encode((const uint8_t *)payload, payload_len, out + pos, total - pos);
    ERR_set_mark();
    err = sign_bytes(key, (const uint8_t *)out, pos, sig, &slen);
    ERR_pop_to_mark();
    if (err != JWTD_OK)
        goto out;
    out[pos++] = '.';
    jwtd__b64url_encode(sig, slen, out + pos, total - pos);
    *ret_token = out;
    out = NULL;
out:
    /* The signature makes the token a credential: no copy left here, as
     * verify_signature leaves none of the tag it computes. */
    OPENSSL_cleanse(sig, sizeof(sig));
    free(out);
    free(htext);
    return err;
}
