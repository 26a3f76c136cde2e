/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Implementation of webauthn.h: client data (jansson), attestation objects,
 * authenticator data and COSE keys (libcbor), keys, hashes and signatures
 * (OpenSSL 3). It keeps no state between calls, does no I/O, reads no
 * clock and never logs; OpenSSL errors raised inside a call are popped
 * before it returns so the caller's error queue is left as it was.
 *
 * libcbor 0.8 allocates a container's declared size before reading its
 * items (a 6-byte input can ask for 2 GiB) and accepts indefinite lengths,
 * so every CBOR input is first checked here for well-formedness, with
 * definite lengths bounded by the bytes actually present and a nesting
 * limit; libcbor only ever sees an item that passed that check.
 */
#include "core/webauthn.h"

#include <stdlib.h>
#include <string.h>

#include <cbor.h>
#include <jansson.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/param_build.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "lib/jwtd_internal.h"

#define SHA256_LEN 32
#define AUTHDATA_FIXED_LEN 37 /* rpIdHash 32, flags 1, signCount 4 */
#define AAGUID_LEN 16
/* Attestation statements nest three deep (packed: map, x5c array, bstr);
 * COSE keys and extension maps less. 16 leaves room and bounds libcbor's
 * recursion when it frees an item. */
#define CBOR_MAX_DEPTH 16
#define RSA_MIN_BITS 2048
/* An RSA-8192 signature is 1 KiB, the signature cap. */
#define RSA_MAX_BITS 8192
/* RSA public exponents beyond 64 bits only make verification slow. */
#define RSA_MAX_E_BYTES 8

#define COSE_KTY_OKP 1
#define COSE_KTY_EC2 2
#define COSE_KTY_RSA 3
#define COSE_CRV_P256 1
#define COSE_CRV_ED25519 6

/* SEC 2, secp256r1: the group order n. */
static const uint8_t P256_ORDER[32] = {
    0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xbc, 0xe6, 0xfa, 0xad, 0xa7, 0x17, 0x9e, 0x84, 0xf3, 0xb9, 0xca, 0xc2, 0xfc, 0x63, 0x25, 0x51,
};

/* ---- base64url ---- */

static const char B64URL[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

size_t webauthn_b64url_encoded_len(size_t n)
{
    return n / 3 * 4 + (n % 3 ? n % 3 + 1 : 0);
}

enum webauthn_rc webauthn_b64url_encode(const uint8_t *in, size_t len, char *out, size_t out_size)
{
    if ((!in && len) || !out)
        return WEBAUTHN_ERR_INVALID_ARGUMENT;
    if (len > (SIZE_MAX - 4) / 4 * 3 || out_size < webauthn_b64url_encoded_len(len) + 1)
        return WEBAUTHN_ERR_TOO_LARGE;
    size_t o = 0, i = 0;
    for (; len - i >= 3; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
        out[o++] = B64URL[v >> 18];
        out[o++] = B64URL[(v >> 12) & 63];
        out[o++] = B64URL[(v >> 6) & 63];
        out[o++] = B64URL[v & 63];
    }
    if (len - i == 1) {
        out[o++] = B64URL[in[i] >> 2];
        out[o++] = B64URL[(in[i] & 3) << 4];
    } else if (len - i == 2) {
        uint32_t v = (uint32_t)in[i] << 8 | in[i + 1];
        out[o++] = B64URL[v >> 10];
        out[o++] = B64URL[(v >> 4) & 63];
        out[o++] = B64URL[(v & 15) << 2];
    }
    out[o] = '\0';
    return WEBAUTHN_OK;
}

/* The 6-bit value of a base64url character, -1 for anything else
 * (including '=', '+' and '/'). */
static int b64url_value(char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '-')
        return 62;
    if (c == '_')
        return 63;
    return -1;
}

enum webauthn_rc webauthn_b64url_decode(const char *in, size_t len, uint8_t *out, size_t out_size,
                                        size_t *ret_len)
{
    if ((!in && len) || !ret_len)
        return WEBAUTHN_ERR_INVALID_ARGUMENT;
    if (len % 4 == 1)
        return WEBAUTHN_ERR_BASE64;
    size_t need = len / 4 * 3 + (len % 4 ? len % 4 - 1 : 0);
    if (need > out_size)
        return WEBAUTHN_ERR_TOO_LARGE;
    if (!out && need)
        return WEBAUTHN_ERR_INVALID_ARGUMENT;
    /* Validate everything before writing anything. */
    for (size_t i = 0; i < len; i++)
        if (b64url_value(in[i]) < 0)
            return WEBAUTHN_ERR_BASE64;
    /* The bits of a partial last group beyond its bytes must be zero, else
     * two strings would decode to the same bytes: 12 bits carry one byte,
     * 18 carry two. */
    if (len % 4 == 2 && (b64url_value(in[len - 1]) & 15))
        return WEBAUTHN_ERR_BASE64;
    if (len % 4 == 3 && (b64url_value(in[len - 1]) & 3))
        return WEBAUTHN_ERR_BASE64;
    size_t o = 0;
    for (size_t i = 0; i < len; i += 4) {
        size_t n = len - i < 4 ? len - i : 4;
        uint32_t v = 0;
        for (size_t k = 0; k < n; k++)
            v = v << 6 | (uint32_t)b64url_value(in[i + k]);
        if (n == 4) {
            out[o++] = (uint8_t)(v >> 16);
            out[o++] = (uint8_t)(v >> 8);
            out[o++] = (uint8_t)v;
        } else if (n == 3) {
            out[o++] = (uint8_t)(v >> 10);
            out[o++] = (uint8_t)(v >> 2);
        } else {
            out[o++] = (uint8_t)(v >> 4);
        }
    }
    *ret_len = o;
    return WEBAUTHN_OK;
}

/* ---- small helpers ---- */

const char *webauthn_strerror(enum webauthn_rc rc)
{
    switch (rc) {
    case WEBAUTHN_OK:
        return "success";
    case WEBAUTHN_ERR_INVALID_ARGUMENT:
        return "invalid argument";
    case WEBAUTHN_ERR_TOO_LARGE:
        return "input too large";
    case WEBAUTHN_ERR_NO_MEMORY:
        return "out of memory";
    case WEBAUTHN_ERR_CRYPTO:
        return "cryptographic library failure";
    case WEBAUTHN_ERR_BASE64:
        return "invalid base64url";
    case WEBAUTHN_ERR_MALFORMED_CLIENT_DATA:
        return "malformed clientDataJSON";
    case WEBAUTHN_ERR_CLIENT_DATA_TYPE:
        return "wrong clientDataJSON type";
    case WEBAUTHN_ERR_CHALLENGE_MISMATCH:
        return "challenge mismatch";
    case WEBAUTHN_ERR_ORIGIN_MISMATCH:
        return "origin mismatch";
    case WEBAUTHN_ERR_CROSS_ORIGIN:
        return "cross-origin ceremony refused";
    case WEBAUTHN_ERR_MALFORMED_CBOR:
        return "malformed CBOR";
    case WEBAUTHN_ERR_MALFORMED_ATTESTATION:
        return "malformed attestation object";
    case WEBAUTHN_ERR_MALFORMED_AUTH_DATA:
        return "malformed authenticator data";
    case WEBAUTHN_ERR_RP_ID_MISMATCH:
        return "RP ID hash mismatch";
    case WEBAUTHN_ERR_USER_NOT_PRESENT:
        return "user not present";
    case WEBAUTHN_ERR_USER_NOT_VERIFIED:
        return "user not verified";
    case WEBAUTHN_ERR_MALFORMED_KEY:
        return "malformed COSE key";
    case WEBAUTHN_ERR_UNSUPPORTED_ALG:
        return "unsupported algorithm";
    case WEBAUTHN_ERR_BAD_KEY:
        return "invalid public key";
    case WEBAUTHN_ERR_MALFORMED_SIGNATURE:
        return "malformed signature";
    case WEBAUTHN_ERR_BAD_SIGNATURE:
        return "signature verification failed";
    case WEBAUTHN_ERR_COUNTER:
        return "signature counter did not increase (possible cloned authenticator)";
    }
    return "unknown error";
}

enum webauthn_rc webauthn_challenge_new(uint8_t out[WEBAUTHN_CHALLENGE_LEN])
{
    if (!out)
        return WEBAUTHN_ERR_INVALID_ARGUMENT;
    ERR_set_mark();
    int ok = RAND_bytes(out, WEBAUTHN_CHALLENGE_LEN);
    ERR_pop_to_mark();
    return ok == 1 ? WEBAUTHN_OK : WEBAUTHN_ERR_CRYPTO;
}

void webauthn_credential_clear(struct webauthn_credential *cred)
{
    if (!cred)
        return;
    free(cred->public_key);
    memset(cred, 0, sizeof *cred);
}

static bool sha256(const void *data, size_t len, uint8_t out[SHA256_LEN])
{
    return EVP_Digest(data, len, out, NULL, EVP_sha256(), NULL) == 1;
}

static bool rp_valid(const struct webauthn_rp *rp)
{
    return rp && rp->id && rp->id[0] && rp->origin && rp->origin[0];
}

/* ---- CBOR well-formedness (RFC 8949 appendix C, definite lengths only) ---- */

/* Read the head at *pos: major type and argument. Indefinite lengths (and
 * the break code) are refused: CTAP2's canonical CBOR, which authenticators
 * and browsers emit, has none. */
static bool cbor_head(const uint8_t *b, size_t len, size_t *pos, unsigned *ret_major,
                      uint64_t *ret_arg)
{
    if (*pos >= len)
        return false;
    uint8_t ib = b[(*pos)++];
    unsigned ai = ib & 0x1fu;
    uint64_t arg = ai;
    if (ai >= 24) {
        if (ai > 27)
            return false;
        size_t n = (size_t)1 << (ai - 24);
        if (len - *pos < n)
            return false;
        arg = 0;
        for (size_t i = 0; i < n; i++)
            arg = arg << 8 | b[(*pos)++];
    }
    *ret_major = ib >> 5;
    *ret_arg = arg;
    return true;
}

/* True when b starts with one well-formed CBOR item; *ret_item_len is its
 * length. Linear in the input: every item read consumes at least a byte, and
 * a container may not declare more items than bytes remain. */
static bool cbor_wellformed(const uint8_t *b, size_t len, size_t *ret_item_len)
{
    uint64_t left[CBOR_MAX_DEPTH]; /* items still to read at each open level */
    size_t depth = 1, pos = 0;
    left[0] = 1;
    while (depth > 0) {
        if (left[depth - 1] == 0) {
            depth--;
            continue;
        }
        left[depth - 1]--;
        size_t head = pos;
        unsigned major;
        uint64_t arg;
        if (!cbor_head(b, len, &pos, &major, &arg))
            return false;
        uint64_t children = 0;
        switch (major) {
        case 2: /* byte string */
        case 3: /* text string */
            if (arg > len - pos)
                return false;
            pos += (size_t)arg;
            break;
        case 4: /* array */
            if (arg > len - pos)
                return false;
            children = arg;
            break;
        case 5: /* map */
            if (arg > (len - pos) / 2)
                return false;
            children = 2 * arg;
            break;
        case 6: /* tag: one item follows */
            children = 1;
            break;
        case 7:
            /* A one-byte simple value below 32 is not well-formed. */
            if ((b[head] & 0x1fu) == 24 && arg < 32)
                return false;
            break;
        default: /* unsigned and negative integers */
            break;
        }
        if (children) {
            if (depth == CBOR_MAX_DEPTH)
                return false;
            left[depth++] = children;
        }
    }
    *ret_item_len = pos;
    return true;
}

/* Decode exactly b[0..len) as one CBOR item into *ret_item (cbor_decref). */
static enum webauthn_rc cbor_decode(const uint8_t *b, size_t len, cbor_item_t **ret_item)
{
    size_t item_len;
    if (!cbor_wellformed(b, len, &item_len) || item_len != len)
        return WEBAUTHN_ERR_MALFORMED_CBOR;
    struct cbor_load_result res;
    cbor_item_t *item = cbor_load(b, len, &res);
    if (!item || res.error.code != CBOR_ERR_NONE || res.read != len) {
        /* After the check above only an allocation can fail. */
        enum webauthn_rc rc = res.error.code == CBOR_ERR_MEMERROR ? WEBAUTHN_ERR_NO_MEMORY
                                                                  : WEBAUTHN_ERR_MALFORMED_CBOR;
        if (item)
            cbor_decref(&item);
        return rc;
    }
    *ret_item = item;
    return WEBAUTHN_OK;
}

static bool cbor_text_is(const cbor_item_t *it, const char *s)
{
    size_t n = strlen(s);
    return cbor_isa_string(it) && cbor_string_is_definite(it) && cbor_string_length(it) == n &&
           memcmp(cbor_string_handle(it), s, n) == 0;
}

static bool cbor_is_bytes(const cbor_item_t *it)
{
    return it && cbor_isa_bytestring(it) && cbor_bytestring_is_definite(it);
}

/* An integer item as int64_t; false for anything else or out of range. */
static bool cbor_int64(const cbor_item_t *it, int64_t *ret)
{
    if (!it || !(cbor_isa_uint(it) || cbor_isa_negint(it)))
        return false;
    uint64_t v = cbor_get_int(it);
    if (v > (uint64_t)INT64_MAX)
        return false;
    *ret = cbor_isa_uint(it) ? (int64_t)v : -1 - (int64_t)v;
    return true;
}

/* ---- attestation object ---- */

static enum webauthn_rc attestation_parse(const uint8_t *ao, size_t ao_len, uint8_t **ret_authdata,
                                          size_t *ret_authdata_len)
{
    cbor_item_t *root = NULL;
    enum webauthn_rc rc = cbor_decode(ao, ao_len, &root);
    if (rc != WEBAUTHN_OK)
        return rc;
    rc = WEBAUTHN_ERR_MALFORMED_ATTESTATION;
    if (!cbor_isa_map(root))
        goto out_root;
    const cbor_item_t *fmt = NULL, *stmt = NULL, *authdata = NULL;
    struct cbor_pair *pairs = cbor_map_handle(root);
    for (size_t i = 0; i < cbor_map_size(root); i++) {
        const cbor_item_t *k = pairs[i].key, *v = pairs[i].value;
        const cbor_item_t **slot;
        if (!cbor_isa_string(k))
            goto out_root;
        if (cbor_text_is(k, "fmt"))
            slot = &fmt;
        else if (cbor_text_is(k, "attStmt"))
            slot = &stmt;
        else if (cbor_text_is(k, "authData"))
            slot = &authdata;
        else
            continue; /* a member a later spec may add */
        if (*slot)
            goto out_root; /* duplicate key */
        *slot = v;
    }
    if (!fmt || !cbor_isa_string(fmt) || !cbor_string_is_definite(fmt) || !stmt ||
        !cbor_isa_map(stmt) || !cbor_is_bytes(authdata))
        goto out_root;
    /* jwtd trusts no attestation: any other format is taken as "none" and
     * its statement ignored; "none" itself must be exactly that. */
    if (cbor_text_is(fmt, "none") && cbor_map_size(stmt) != 0)
        goto out_root;
    size_t n = cbor_bytestring_length(authdata);
    uint8_t *copy = malloc(n ? n : 1);
    if (!copy) {
        rc = WEBAUTHN_ERR_NO_MEMORY;
        goto out_root;
    }
    if (n)
        memcpy(copy, cbor_bytestring_handle(authdata), n);
    *ret_authdata = copy;
    *ret_authdata_len = n;
    rc = WEBAUTHN_OK;
out_root:
    cbor_decref(&root);
    return rc;
}

enum webauthn_rc webauthn_attestation_parse(const uint8_t *ao, size_t ao_len,
                                            uint8_t **ret_authdata, size_t *ret_authdata_len)
{
    if (!ao || !ret_authdata || !ret_authdata_len)
        return WEBAUTHN_ERR_INVALID_ARGUMENT;
    if (ao_len > WEBAUTHN_ATTESTATION_MAX)
        return WEBAUTHN_ERR_TOO_LARGE;
    return attestation_parse(ao, ao_len, ret_authdata, ret_authdata_len);
}

/* ---- authenticator data ---- */

/* The extensions must be one map keyed by extension identifiers (text);
 * their values are not interpreted. */
static enum webauthn_rc extensions_check(const uint8_t *b, size_t len)
{
    cbor_item_t *map = NULL;
    enum webauthn_rc rc = cbor_decode(b, len, &map);
    if (rc != WEBAUTHN_OK)
        return rc;
    rc = WEBAUTHN_ERR_MALFORMED_AUTH_DATA;
    if (!cbor_isa_map(map))
        goto out_map;
    struct cbor_pair *pairs = cbor_map_handle(map);
    for (size_t i = 0; i < cbor_map_size(map); i++)
        if (!cbor_isa_string(pairs[i].key) || !cbor_string_is_definite(pairs[i].key))
            goto out_map;
    rc = WEBAUTHN_OK;
out_map:
    cbor_decref(&map);
    return rc;
}

enum webauthn_rc webauthn_authdata_parse(const uint8_t *ad, size_t ad_len,
                                         struct webauthn_authdata *ret_ad)
{
    if (!ad || !ret_ad)
        return WEBAUTHN_ERR_INVALID_ARGUMENT;
    if (ad_len > WEBAUTHN_AUTH_DATA_MAX)
        return WEBAUTHN_ERR_TOO_LARGE;
    if (ad_len < AUTHDATA_FIXED_LEN)
        return WEBAUTHN_ERR_MALFORMED_AUTH_DATA;
    struct webauthn_authdata out;
    memset(&out, 0, sizeof out);
    memcpy(out.rp_id_hash, ad, SHA256_LEN);
    out.flags = ad[32];
    out.sign_count =
        (uint32_t)ad[33] << 24 | (uint32_t)ad[34] << 16 | (uint32_t)ad[35] << 8 | ad[36];
    /* Level 3, 6.1.3: "backed up" without "backup eligible" is not allowed. */
    if ((out.flags & WEBAUTHN_FLAG_BS) && !(out.flags & WEBAUTHN_FLAG_BE))
        return WEBAUTHN_ERR_MALFORMED_AUTH_DATA;
    size_t pos = AUTHDATA_FIXED_LEN;
    if (out.flags & WEBAUTHN_FLAG_AT) {
        if (ad_len - pos < AAGUID_LEN + 2)
            return WEBAUTHN_ERR_MALFORMED_AUTH_DATA;
        memcpy(out.aaguid, ad + pos, AAGUID_LEN);
        pos += AAGUID_LEN;
        size_t id_len = (size_t)ad[pos] << 8 | ad[pos + 1];
        pos += 2;
        if (id_len == 0 || id_len > WEBAUTHN_CREDENTIAL_ID_MAX || id_len > ad_len - pos)
            return WEBAUTHN_ERR_MALFORMED_AUTH_DATA;
        out.credential_id = ad + pos;
        out.credential_id_len = id_len;
        pos += id_len;
        /* The key's length is not written anywhere: it is where its CBOR
         * item ends. */
        size_t key_len;
        if (!cbor_wellformed(ad + pos, ad_len - pos, &key_len))
            return WEBAUTHN_ERR_MALFORMED_CBOR;
        out.cose_key = ad + pos;
        out.cose_key_len = key_len;
        pos += key_len;
    }
    if (out.flags & WEBAUTHN_FLAG_ED) {
        size_t ext_len;
        if (!cbor_wellformed(ad + pos, ad_len - pos, &ext_len))
            return WEBAUTHN_ERR_MALFORMED_CBOR;
        enum webauthn_rc rc = extensions_check(ad + pos, ext_len);
        if (rc != WEBAUTHN_OK)
            return rc;
        out.extensions = ad + pos;
        out.extensions_len = ext_len;
        pos += ext_len;
    }
    if (pos != ad_len)
        return WEBAUTHN_ERR_MALFORMED_AUTH_DATA;
    *ret_ad = out;
    return WEBAUTHN_OK;
}

/* RP ID hash and the user presence and verification flags, in the order of
 * WebAuthn 7.1 steps 13-15 and 7.2 steps 15-17. */
static enum webauthn_rc authdata_policy(const struct webauthn_rp *rp,
                                        const struct webauthn_authdata *ad)
{
    uint8_t h[SHA256_LEN];
    if (!sha256(rp->id, strlen(rp->id), h))
        return WEBAUTHN_ERR_CRYPTO;
    if (CRYPTO_memcmp(h, ad->rp_id_hash, SHA256_LEN) != 0)
        return WEBAUTHN_ERR_RP_ID_MISMATCH;
    if (!(ad->flags & WEBAUTHN_FLAG_UP))
        return WEBAUTHN_ERR_USER_NOT_PRESENT;
    if (!(ad->flags & WEBAUTHN_FLAG_UV))
        return WEBAUTHN_ERR_USER_NOT_VERIFIED;
    return WEBAUTHN_OK;
}

/* ---- client data ---- */

static bool json_string_is(const json_t *j, const char *s, size_t n)
{
    return json_string_length(j) == n && memcmp(json_string_value(j), s, n) == 0;
}

/* WebAuthn 7.1 steps 5-10 / 7.2 steps 9-14. tokenBinding is ignored: no
 * browser supports it any more and jwtd does not use it. */
static enum webauthn_rc client_data_check(const struct webauthn_rp *rp, const uint8_t *cdj,
                                          size_t cdj_len, const char *type,
                                          const uint8_t *challenge, size_t challenge_len)
{
    char expected[WEBAUTHN_CHALLENGE_MAX / 3 * 4 + 8];
    if (webauthn_b64url_encode(challenge, challenge_len, expected, sizeof expected) != WEBAUTHN_OK)
        return WEBAUTHN_ERR_INVALID_ARGUMENT;
    size_t expected_len = strlen(expected);
    json_error_t jerr;
    /* jansson refuses invalid UTF-8 and NUL characters by default. */
    json_t *doc = json_loadb((const char *)cdj, cdj_len, JSON_REJECT_DUPLICATES, &jerr);
    enum webauthn_rc rc = WEBAUTHN_ERR_MALFORMED_CLIENT_DATA;
    if (!doc || !json_is_object(doc))
        goto out_doc;
    const json_t *jtype = json_object_get(doc, "type");
    const json_t *jchallenge = json_object_get(doc, "challenge");
    const json_t *jorigin = json_object_get(doc, "origin");
    const json_t *jcross = json_object_get(doc, "crossOrigin");
    if (!json_is_string(jtype) || !json_is_string(jchallenge) || !json_is_string(jorigin) ||
        (jcross && !json_is_boolean(jcross)))
        goto out_doc;
    if (!json_string_is(jtype, type, strlen(type))) {
        rc = WEBAUTHN_ERR_CLIENT_DATA_TYPE;
        goto out_doc;
    }
    /* The length is public (the encoding of a fixed-size challenge); the
     * bytes are compared in constant time. */
    if (json_string_length(jchallenge) != expected_len ||
        CRYPTO_memcmp(json_string_value(jchallenge), expected, expected_len) != 0) {
        rc = WEBAUTHN_ERR_CHALLENGE_MISMATCH;
        goto out_doc;
    }
    if (!json_string_is(jorigin, rp->origin, strlen(rp->origin))) {
        rc = WEBAUTHN_ERR_ORIGIN_MISMATCH;
        goto out_doc;
    }
    if (json_is_true(jcross)) {
        rc = WEBAUTHN_ERR_CROSS_ORIGIN;
        goto out_doc;
    }
    rc = WEBAUTHN_OK;
out_doc:
    json_decref(doc);
    return rc;
}

/* ---- COSE keys ---- */

static enum webauthn_rc pkey_from_params(const char *type, const OSSL_PARAM *params,
                                         EVP_PKEY **ret_pkey)
{
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, type, NULL);
    if (!ctx)
        return WEBAUTHN_ERR_CRYPTO;
    EVP_PKEY *pkey = NULL;
    enum webauthn_rc rc = WEBAUTHN_ERR_CRYPTO;
    if (EVP_PKEY_fromdata_init(ctx) != 1)
        goto out_ctx;
    rc = WEBAUTHN_ERR_BAD_KEY;
    if (EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, (OSSL_PARAM *)params) != 1)
        goto out_ctx;
    *ret_pkey = pkey;
    rc = WEBAUTHN_OK;
out_ctx:
    EVP_PKEY_CTX_free(ctx);
    return rc;
}

static enum webauthn_rc es256_key(const cbor_item_t *x, const cbor_item_t *y, EVP_PKEY **ret_pkey)
{
    if (!cbor_is_bytes(x) || !cbor_is_bytes(y))
        return WEBAUTHN_ERR_MALFORMED_KEY;
    if (cbor_bytestring_length(x) != 32 || cbor_bytestring_length(y) != 32)
        return WEBAUTHN_ERR_BAD_KEY;
    uint8_t point[65];
    point[0] = 0x04; /* uncompressed */
    memcpy(point + 1, cbor_bytestring_handle(x), 32);
    memcpy(point + 33, cbor_bytestring_handle(y), 32);
    char group[] = "P-256";
    OSSL_PARAM params[] = {
        OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, group, 0),
        OSSL_PARAM_octet_string(OSSL_PKEY_PARAM_PUB_KEY, point, sizeof point),
        OSSL_PARAM_END,
    };
    EVP_PKEY *pkey = NULL;
    enum webauthn_rc rc = pkey_from_params("EC", params, &pkey);
    if (rc != WEBAUTHN_OK)
        return rc;
    /* Coordinates below p, on the curve, not the point at infinity. The
     * import checks this already in OpenSSL 3.0; kept explicit so that a
     * laxer import cannot let an invalid-curve point through. */
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_pkey(NULL, pkey, NULL);
    rc = WEBAUTHN_ERR_CRYPTO;
    if (!ctx)
        goto out_pkey;
    rc = EVP_PKEY_public_check(ctx) == 1 ? WEBAUTHN_OK : WEBAUTHN_ERR_BAD_KEY;
    EVP_PKEY_CTX_free(ctx);
    if (rc == WEBAUTHN_OK) {
        *ret_pkey = pkey;
        pkey = NULL;
    }
out_pkey:
    EVP_PKEY_free(pkey);
    return rc;
}

static enum webauthn_rc eddsa_key(const cbor_item_t *x, EVP_PKEY **ret_pkey)
{
    if (!cbor_is_bytes(x))
        return WEBAUTHN_ERR_MALFORMED_KEY;
    if (cbor_bytestring_length(x) != 32 || jwtd__ed25519_small_order(cbor_bytestring_handle(x)))
        return WEBAUTHN_ERR_BAD_KEY;
    EVP_PKEY *pkey =
        EVP_PKEY_new_raw_public_key_ex(NULL, "ED25519", NULL, cbor_bytestring_handle(x), 32);
    if (!pkey)
        return WEBAUTHN_ERR_BAD_KEY;
    *ret_pkey = pkey;
    return WEBAUTHN_OK;
}

/* RFC 8230, 4: n and e are unsigned big-endian in the fewest bytes. */
static enum webauthn_rc rs256_key(const cbor_item_t *n, const cbor_item_t *e, EVP_PKEY **ret_pkey)
{
    if (!cbor_is_bytes(n) || !cbor_is_bytes(e))
        return WEBAUTHN_ERR_MALFORMED_KEY;
    size_t nlen = cbor_bytestring_length(n), elen = cbor_bytestring_length(e);
    const uint8_t *nb = cbor_bytestring_handle(n), *eb = cbor_bytestring_handle(e);
    if (nlen == 0 || nb[0] == 0 || elen == 0 || eb[0] == 0 || elen > RSA_MAX_E_BYTES)
        return WEBAUTHN_ERR_BAD_KEY;
    /* Odd modulus, odd exponent of at least 3. */
    if (!(nb[nlen - 1] & 1) || !(eb[elen - 1] & 1) || (elen == 1 && eb[0] < 3))
        return WEBAUTHN_ERR_BAD_KEY;
    if (nlen > RSA_MAX_BITS / 8)
        return WEBAUTHN_ERR_BAD_KEY;
    BIGNUM *bn = BN_bin2bn(nb, (int)nlen, NULL);
    BIGNUM *be = BN_bin2bn(eb, (int)elen, NULL);
    OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
    OSSL_PARAM *params = NULL;
    enum webauthn_rc rc = WEBAUTHN_ERR_NO_MEMORY;
    if (!bn || !be || !bld)
        goto out_bld;
    rc = WEBAUTHN_ERR_BAD_KEY;
    if (BN_num_bits(bn) < RSA_MIN_BITS)
        goto out_bld;
    rc = WEBAUTHN_ERR_CRYPTO;
    if (OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, bn) != 1 ||
        OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, be) != 1)
        goto out_bld;
    params = OSSL_PARAM_BLD_to_param(bld);
    if (!params)
        goto out_bld;
    rc = pkey_from_params("RSA", params, ret_pkey);
    OSSL_PARAM_free(params);
out_bld:
    OSSL_PARAM_BLD_free(bld);
    BN_free(be);
    BN_free(bn);
    return rc;
}

/* Parameters of a COSE_Key, by label -3..3 (RFC 8152 7.1 and 13). */
#define COSE_LABEL_MIN (-3)
#define COSE_LABEL_MAX 3
#define COSE_PARAM(params, label) ((params)[(label)-COSE_LABEL_MIN])

static enum webauthn_rc cose_key_to_pkey(const cbor_item_t *map, int *ret_alg, EVP_PKEY **ret_pkey)
{
    if (!cbor_isa_map(map))
        return WEBAUTHN_ERR_MALFORMED_KEY;
    const cbor_item_t *params[COSE_LABEL_MAX - COSE_LABEL_MIN + 1] = {NULL};
    struct cbor_pair *pairs = cbor_map_handle(map);
    for (size_t i = 0; i < cbor_map_size(map); i++) {
        int64_t label;
        /* Text labels and other integer labels (kid, key_ops...) are not
         * used by any accepted key type: ignored. */
        if (!cbor_int64(pairs[i].key, &label) || label < COSE_LABEL_MIN || label > COSE_LABEL_MAX)
            continue;
        if (COSE_PARAM(params, label))
            return WEBAUTHN_ERR_MALFORMED_KEY; /* duplicate label */
        COSE_PARAM(params, label) = pairs[i].value;
    }
    int64_t kty, alg, crv;
    if (!cbor_int64(COSE_PARAM(params, 1), &kty) || !cbor_int64(COSE_PARAM(params, 3), &alg))
        return WEBAUTHN_ERR_MALFORMED_KEY;
    enum webauthn_rc rc;
    switch (alg) {
    case WEBAUTHN_ALG_ES256:
        if (kty != COSE_KTY_EC2 || !cbor_int64(COSE_PARAM(params, -1), &crv))
            return WEBAUTHN_ERR_MALFORMED_KEY;
        if (crv != COSE_CRV_P256)
            return WEBAUTHN_ERR_UNSUPPORTED_ALG;
        rc = es256_key(COSE_PARAM(params, -2), COSE_PARAM(params, -3), ret_pkey);
        break;
    case WEBAUTHN_ALG_EDDSA:
        if (kty != COSE_KTY_OKP || !cbor_int64(COSE_PARAM(params, -1), &crv))
            return WEBAUTHN_ERR_MALFORMED_KEY;
        if (crv != COSE_CRV_ED25519) /* Ed448 is not offered */
            return WEBAUTHN_ERR_UNSUPPORTED_ALG;
        rc = eddsa_key(COSE_PARAM(params, -2), ret_pkey);
        break;
    case WEBAUTHN_ALG_RS256:
        if (kty != COSE_KTY_RSA)
            return WEBAUTHN_ERR_MALFORMED_KEY;
        rc = rs256_key(COSE_PARAM(params, -1), COSE_PARAM(params, -2), ret_pkey);
        break;
    default:
        return WEBAUTHN_ERR_UNSUPPORTED_ALG;
    }
    if (rc == WEBAUTHN_OK)
        *ret_alg = (int)alg;
    return rc;
}

static enum webauthn_rc spki_encode(EVP_PKEY *pkey, uint8_t **ret_der, size_t *ret_len)
{
    int n = i2d_PUBKEY(pkey, NULL);
    if (n <= 0)
        return WEBAUTHN_ERR_CRYPTO;
    uint8_t *der = malloc((size_t)n);
    if (!der)
        return WEBAUTHN_ERR_NO_MEMORY;
    unsigned char *p = der;
    if (i2d_PUBKEY(pkey, &p) != n) {
        free(der);
        return WEBAUTHN_ERR_CRYPTO;
    }
    *ret_der = der;
    *ret_len = (size_t)n;
    return WEBAUTHN_OK;
}

static enum webauthn_rc cose_key_parse(const uint8_t *key, size_t key_len, int *ret_alg,
                                       uint8_t **ret_spki, size_t *ret_spki_len)
{
    cbor_item_t *map = NULL;
    enum webauthn_rc rc = cbor_decode(key, key_len, &map);
    if (rc != WEBAUTHN_OK)
        return rc;
    EVP_PKEY *pkey = NULL;
    int alg;
    rc = cose_key_to_pkey(map, &alg, &pkey);
    if (rc != WEBAUTHN_OK)
        goto out_map;
    rc = spki_encode(pkey, ret_spki, ret_spki_len);
    if (rc == WEBAUTHN_OK)
        *ret_alg = alg;
    EVP_PKEY_free(pkey);
out_map:
    cbor_decref(&map);
    return rc;
}

enum webauthn_rc webauthn_cose_key_parse(const uint8_t *key, size_t key_len, int *ret_alg,
                                         uint8_t **ret_spki, size_t *ret_spki_len)
{
    if (!key || !ret_alg || !ret_spki || !ret_spki_len)
        return WEBAUTHN_ERR_INVALID_ARGUMENT;
    if (key_len > WEBAUTHN_AUTH_DATA_MAX)
        return WEBAUTHN_ERR_TOO_LARGE;
    ERR_set_mark();
    enum webauthn_rc rc = cose_key_parse(key, key_len, ret_alg, ret_spki, ret_spki_len);
    ERR_pop_to_mark();
    return rc;
}

/* ---- registration ---- */

static enum webauthn_rc register_verify(const struct webauthn_rp *rp, const uint8_t *cdj,
                                        size_t cdj_len, const uint8_t *ao, size_t ao_len,
                                        const uint8_t *challenge, size_t challenge_len,
                                        struct webauthn_credential *ret_cred)
{
    enum webauthn_rc rc =
        client_data_check(rp, cdj, cdj_len, "webauthn.create", challenge, challenge_len);
    if (rc != WEBAUTHN_OK)
        return rc;
    uint8_t *authdata = NULL;
    size_t ad_len = 0;
    rc = attestation_parse(ao, ao_len, &authdata, &ad_len);
    if (rc != WEBAUTHN_OK)
        return rc;
    struct webauthn_authdata ad;
    rc = webauthn_authdata_parse(authdata, ad_len, &ad);
    if (rc != WEBAUTHN_OK)
        goto out_authdata;
    rc = authdata_policy(rp, &ad);
    if (rc != WEBAUTHN_OK)
        goto out_authdata;
    if (!(ad.flags & WEBAUTHN_FLAG_AT)) {
        rc = WEBAUTHN_ERR_MALFORMED_AUTH_DATA;
        goto out_authdata;
    }
    /* Step 16 (alg among pubKeyCredParams): jwtd offers exactly the
     * algorithms the COSE parser accepts. */
    int alg;
    uint8_t *spki = NULL;
    size_t spki_len = 0;
    rc = cose_key_parse(ad.cose_key, ad.cose_key_len, &alg, &spki, &spki_len);
    if (rc != WEBAUTHN_OK)
        goto out_authdata;
    memset(ret_cred, 0, sizeof *ret_cred);
    memcpy(ret_cred->id, ad.credential_id, ad.credential_id_len);
    ret_cred->id_len = ad.credential_id_len;
    ret_cred->alg = alg;
    ret_cred->public_key = spki;
    ret_cred->public_key_len = spki_len;
    ret_cred->sign_count = ad.sign_count;
    memcpy(ret_cred->aaguid, ad.aaguid, sizeof ad.aaguid);
    ret_cred->flags = ad.flags;
    ret_cred->backup_eligible = (ad.flags & WEBAUTHN_FLAG_BE) != 0;
    ret_cred->backed_up = (ad.flags & WEBAUTHN_FLAG_BS) != 0;
out_authdata:
    free(authdata);
    return rc;
}

enum webauthn_rc webauthn_register_verify(const struct webauthn_rp *rp,
                                          const uint8_t *client_data_json, size_t cdj_len,
                                          const uint8_t *attestation_object, size_t ao_len,
                                          const uint8_t *expected_challenge, size_t challenge_len,
                                          struct webauthn_credential *ret_cred)
{
    if (!rp_valid(rp) || !client_data_json || !attestation_object || !expected_challenge ||
        !ret_cred || challenge_len < WEBAUTHN_CHALLENGE_MIN ||
        challenge_len > WEBAUTHN_CHALLENGE_MAX)
        return WEBAUTHN_ERR_INVALID_ARGUMENT;
    if (cdj_len > WEBAUTHN_CLIENT_DATA_MAX || ao_len > WEBAUTHN_ATTESTATION_MAX)
        return WEBAUTHN_ERR_TOO_LARGE;
    ERR_set_mark();
    enum webauthn_rc rc = register_verify(rp, client_data_json, cdj_len, attestation_object, ao_len,
                                          expected_challenge, challenge_len, ret_cred);
    ERR_pop_to_mark();
    return rc;
}

/* ---- assertion ---- */

/* The stored key, checked to be of cose_alg (a key stored under the wrong
 * algorithm is refused rather than verified some other way). */
static enum webauthn_rc spki_load(const uint8_t *der, size_t len, int alg, EVP_PKEY **ret_pkey)
{
    if (alg != WEBAUTHN_ALG_ES256 && alg != WEBAUTHN_ALG_EDDSA && alg != WEBAUTHN_ALG_RS256)
        return WEBAUTHN_ERR_UNSUPPORTED_ALG;
    const unsigned char *p = der;
    EVP_PKEY *pkey = d2i_PUBKEY(NULL, &p, (long)len);
    if (!pkey)
        return WEBAUTHN_ERR_BAD_KEY;
    bool ok = p == der + len;
    if (ok && alg == WEBAUTHN_ALG_ES256) {
        char group[64];
        ok = EVP_PKEY_is_a(pkey, "EC") &&
             EVP_PKEY_get_group_name(pkey, group, sizeof group, NULL) == 1 &&
             OBJ_txt2nid(group) == NID_X9_62_prime256v1;
    } else if (ok && alg == WEBAUTHN_ALG_RS256) {
        ok = EVP_PKEY_is_a(pkey, "RSA") && EVP_PKEY_get_bits(pkey) >= RSA_MIN_BITS &&
             EVP_PKEY_get_bits(pkey) <= RSA_MAX_BITS;
    } else if (ok) {
        ok = EVP_PKEY_is_a(pkey, "ED25519");
    }
    if (!ok) {
        EVP_PKEY_free(pkey);
        return WEBAUTHN_ERR_BAD_KEY;
    }
    *ret_pkey = pkey;
    return WEBAUTHN_OK;
}

/* An ES256 signature must be strict DER (what d2i reads re-encodes to the
 * same bytes, nothing after it) with r and s in [1, n-1]. */
static enum webauthn_rc ecdsa_sig_check(const uint8_t *sig, size_t sig_len)
{
    const unsigned char *p = sig;
    ECDSA_SIG *es = d2i_ECDSA_SIG(NULL, &p, (long)sig_len);
    if (!es)
        return WEBAUTHN_ERR_MALFORMED_SIGNATURE;
    unsigned char *der = NULL;
    BIGNUM *order = NULL;
    enum webauthn_rc rc = WEBAUTHN_ERR_MALFORMED_SIGNATURE;
    if (p != sig + sig_len)
        goto out_es;
    int der_len = i2d_ECDSA_SIG(es, &der);
    if (der_len <= 0 || (size_t)der_len != sig_len || memcmp(der, sig, sig_len) != 0)
        goto out_der;
    order = BN_bin2bn(P256_ORDER, sizeof P256_ORDER, NULL);
    if (!order) {
        rc = WEBAUTHN_ERR_NO_MEMORY;
        goto out_der;
    }
    const BIGNUM *r, *s;
    ECDSA_SIG_get0(es, &r, &s);
    rc = WEBAUTHN_ERR_BAD_SIGNATURE;
    if (BN_is_zero(r) || BN_is_zero(s) || BN_is_negative(r) || BN_is_negative(s) ||
        BN_cmp(r, order) >= 0 || BN_cmp(s, order) >= 0)
        goto out_order;
    rc = WEBAUTHN_OK;
out_order:
    BN_free(order);
out_der:
    OPENSSL_free(der);
out_es:
    ECDSA_SIG_free(es);
    return rc;
}

static enum webauthn_rc signature_verify(EVP_PKEY *pkey, int alg, const uint8_t *msg,
                                         size_t msg_len, const uint8_t *sig, size_t sig_len)
{
    enum webauthn_rc rc = WEBAUTHN_OK;
    if (alg == WEBAUTHN_ALG_ES256)
        rc = ecdsa_sig_check(sig, sig_len);
    else if (alg == WEBAUTHN_ALG_EDDSA && sig_len != 64)
        rc = WEBAUTHN_ERR_MALFORMED_SIGNATURE;
    else if (alg == WEBAUTHN_ALG_RS256 && sig_len != (size_t)EVP_PKEY_get_size(pkey))
        rc = WEBAUTHN_ERR_MALFORMED_SIGNATURE;
    if (rc != WEBAUTHN_OK)
        return rc;
    EVP_MD_CTX *mctx = EVP_MD_CTX_new();
    if (!mctx)
        return WEBAUTHN_ERR_NO_MEMORY;
    EVP_PKEY_CTX *pctx = NULL;
    /* Ed25519 signs the message itself (PureEdDSA): no digest. */
    const char *md = alg == WEBAUTHN_ALG_EDDSA ? NULL : "SHA256";
    rc = WEBAUTHN_ERR_CRYPTO;
    if (EVP_DigestVerifyInit_ex(mctx, &pctx, md, NULL, NULL, pkey, NULL) != 1)
        goto out_mctx;
    if (alg == WEBAUTHN_ALG_RS256 && EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PADDING) != 1)
        goto out_mctx;
    rc = EVP_DigestVerify(mctx, sig, sig_len, msg, msg_len) == 1 ? WEBAUTHN_OK
                                                                 : WEBAUTHN_ERR_BAD_SIGNATURE;
out_mctx:
    EVP_MD_CTX_free(mctx);
    return rc;
}

static enum webauthn_rc assert_verify(const struct webauthn_rp *rp, const uint8_t *cdj,
                                      size_t cdj_len, const uint8_t *authdata, size_t ad_len,
                                      const uint8_t *sig, size_t sig_len, const uint8_t *challenge,
                                      size_t challenge_len, const uint8_t *spki, size_t spki_len,
                                      int alg, uint32_t stored_count, uint32_t *ret_new_count)
{
    enum webauthn_rc rc =
        client_data_check(rp, cdj, cdj_len, "webauthn.get", challenge, challenge_len);
    if (rc != WEBAUTHN_OK)
        return rc;
    struct webauthn_authdata ad;
    rc = webauthn_authdata_parse(authdata, ad_len, &ad);
    if (rc != WEBAUTHN_OK)
        return rc;
    /* WebAuthn 6.1: assertions never carry attested credential data. */
    if (ad.flags & WEBAUTHN_FLAG_AT)
        return WEBAUTHN_ERR_MALFORMED_AUTH_DATA;
    rc = authdata_policy(rp, &ad);
    if (rc != WEBAUTHN_OK)
        return rc;
    EVP_PKEY *pkey = NULL;
    rc = spki_load(spki, spki_len, alg, &pkey);
    if (rc != WEBAUTHN_OK)
        return rc;
    /* Signed: authenticatorData || SHA-256(clientDataJSON). */
    uint8_t msg[WEBAUTHN_AUTH_DATA_MAX + SHA256_LEN];
    memcpy(msg, authdata, ad_len);
    if (!sha256(cdj, cdj_len, msg + ad_len)) {
        rc = WEBAUTHN_ERR_CRYPTO;
        goto out_pkey;
    }
    rc = signature_verify(pkey, alg, msg, ad_len + SHA256_LEN, sig, sig_len);
    if (rc != WEBAUTHN_OK)
        goto out_pkey;
    /* Step 21: counters that are used must go up. Checked after the
     * signature so that only the authenticator can trip it. */
    if ((stored_count != 0 || ad.sign_count != 0) && ad.sign_count <= stored_count) {
        rc = WEBAUTHN_ERR_COUNTER;
        goto out_pkey;
    }
    *ret_new_count = ad.sign_count;
out_pkey:
    EVP_PKEY_free(pkey);
    return rc;
}

enum webauthn_rc webauthn_assert_verify(const struct webauthn_rp *rp,
                                        const uint8_t *client_data_json, size_t cdj_len,
                                        const uint8_t *authenticator_data, size_t ad_len,
                                        const uint8_t *signature, size_t sig_len,
                                        const uint8_t *expected_challenge, size_t challenge_len,
                                        const uint8_t *spki_der, size_t spki_len, int cose_alg,
                                        uint32_t stored_sign_count, uint32_t *ret_new_count)
{
    if (!rp_valid(rp) || !client_data_json || !authenticator_data || !signature ||
        !expected_challenge || !spki_der || !ret_new_count ||
        challenge_len < WEBAUTHN_CHALLENGE_MIN || challenge_len > WEBAUTHN_CHALLENGE_MAX)
        return WEBAUTHN_ERR_INVALID_ARGUMENT;
    if (cdj_len > WEBAUTHN_CLIENT_DATA_MAX || ad_len > WEBAUTHN_AUTH_DATA_MAX ||
        sig_len > WEBAUTHN_SIGNATURE_MAX || spki_len > WEBAUTHN_SPKI_MAX)
        return WEBAUTHN_ERR_TOO_LARGE;
    ERR_set_mark();
    enum webauthn_rc rc =
        assert_verify(rp, client_data_json, cdj_len, authenticator_data, ad_len, signature, sig_len,
                      expected_challenge, challenge_len, spki_der, spki_len, cose_alg,
                      stored_sign_count, ret_new_count);
    ERR_pop_to_mark();
    return rc;
}
