/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Fuzz target: the WebAuthn parsers of src/core/webauthn.c. The first byte
 * (mod 5) chooses what the rest is fed to:
 *   0  an attestation object: webauthn_attestation_parse, then the
 *      authData and COSE key it holds, and webauthn_register_verify with a
 *      fixed clientDataJSON for RP "localhost" (so recorded seeds reach the
 *      key parser through the whole ceremony);
 *   1  authenticator data: webauthn_authdata_parse, then its COSE key;
 *   2  a COSE key: webauthn_cose_key_parse;
 *   3  base64url: strict decode, and re-encode must give the input back;
 *   4  an assertion: [key byte][signature length byte][signature][authData]
 *      through webauthn_assert_verify with a recorded ES256 or Ed25519 key.
 * Besides not crashing or leaking, results must be consistent: parsed parts
 * lie inside the input, a parsed key reloads as the SPKI it was given as.
 * Seeds (tests/fuzz/corpus/fuzz_webauthn/) are the recorded exchanges of
 * tests/unit/core/webauthn_vectors/.
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "core/webauthn.h"
#include "fuzz_common.h"

static const struct webauthn_rp rp = {"localhost", "http://localhost:8080"};

/* The challenge is 32 bytes of 0x01; "AQEB..." is its base64url. */
static const char create_cdj[] =
    "{\"type\":\"webauthn.create\",\"challenge\":\"AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE\","
    "\"origin\":\"http://localhost:8080\",\"crossOrigin\":false}";
static const char get_cdj[] =
    "{\"type\":\"webauthn.get\",\"challenge\":\"AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE\","
    "\"origin\":\"http://localhost:8080\",\"crossOrigin\":false}";

/* Public keys of the recorded es256 and eddsa exchanges (SPKI DER). */
static const uint8_t es256_spki[] = {
    0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a,
    0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00, 0x04, 0xe2, 0x2a, 0x1c, 0xce, 0x4c,
    0x4f, 0xf0, 0x14, 0x6d, 0x4a, 0x04, 0xf6, 0x94, 0xce, 0xce, 0x69, 0xa5, 0x38, 0xde, 0x1d, 0x8c,
    0x0f, 0x85, 0x57, 0xd8, 0x78, 0xf3, 0x3f, 0x94, 0xe8, 0x0e, 0x29, 0x5e, 0xab, 0x26, 0xbf, 0x2b,
    0xbe, 0x18, 0xe2, 0xca, 0xf2, 0x4c, 0xdf, 0xce, 0x15, 0x8e, 0x82, 0xc2, 0xf5, 0xc5, 0x19, 0xc9,
    0xff, 0x2e, 0x76, 0x16, 0x3f, 0x38, 0x5e, 0x2d, 0x5c, 0x81, 0xf8,
};
static const uint8_t eddsa_spki[] = {
    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00, 0x83, 0xe6, 0x7a,
    0x04, 0x0f, 0x9e, 0xd6, 0xd6, 0x51, 0x7d, 0xad, 0x89, 0xe1, 0x68, 0x1b, 0x10, 0x03, 0x4e,
    0xdb, 0x6d, 0xc4, 0x5e, 0xaa, 0x09, 0xc3, 0x20, 0x07, 0xe6, 0xc6, 0xa6, 0x07, 0xe9,
};

static void check_key(const uint8_t *key, size_t len)
{
    int alg = 0;
    uint8_t *spki = NULL;
    size_t spki_len = 0;
    if (webauthn_cose_key_parse(key, len, &alg, &spki, &spki_len) != WEBAUTHN_OK)
        return;
    if (alg != WEBAUTHN_ALG_ES256 && alg != WEBAUTHN_ALG_EDDSA && alg != WEBAUTHN_ALG_RS256)
        abort();
    const unsigned char *p = spki;
    EVP_PKEY *pkey = d2i_PUBKEY(NULL, &p, (long)spki_len);
    if (!pkey || p != spki + spki_len)
        abort();
    unsigned char *again = NULL;
    int n = i2d_PUBKEY(pkey, &again);
    if (n <= 0 || (size_t)n != spki_len || memcmp(again, spki, spki_len) != 0)
        abort();
    OPENSSL_free(again);
    EVP_PKEY_free(pkey);
    free(spki);
}

static void check_authdata(const uint8_t *ad, size_t len)
{
    struct webauthn_authdata p;
    if (webauthn_authdata_parse(ad, len, &p) != WEBAUTHN_OK)
        return;
    const uint8_t *end = ad + len;
    if (p.cose_key) {
        if (!(p.flags & WEBAUTHN_FLAG_AT) || p.cose_key < ad || p.cose_key_len == 0 ||
            p.cose_key_len > (size_t)(end - p.cose_key) || p.credential_id_len == 0 ||
            p.credential_id_len > WEBAUTHN_CREDENTIAL_ID_MAX)
            abort();
        check_key(p.cose_key, p.cose_key_len);
    }
    if (p.extensions && p.extensions + p.extensions_len != end)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    const uint8_t *in = data + 1;
    size_t n = size - 1;
    switch (data[0] % 5) {
    case 0: {
        uint8_t *ad = NULL;
        size_t ad_len = 0;
        if (webauthn_attestation_parse(in, n, &ad, &ad_len) == WEBAUTHN_OK) {
            check_authdata(ad, ad_len);
            free(ad);
        }
        uint8_t challenge[WEBAUTHN_CHALLENGE_LEN];
        memset(challenge, 0x01, sizeof challenge);
        struct webauthn_credential cred;
        if (webauthn_register_verify(&rp, (const uint8_t *)create_cdj, strlen(create_cdj), in, n,
                                     challenge, sizeof challenge, &cred) == WEBAUTHN_OK) {
            if (cred.id_len == 0 || cred.id_len > WEBAUTHN_CREDENTIAL_ID_MAX || !cred.public_key ||
                !(cred.flags & WEBAUTHN_FLAG_UV))
                abort();
            webauthn_credential_clear(&cred);
        }
        break;
    }
    case 1:
        check_authdata(in, n);
        break;
    case 2:
        check_key(in, n);
        break;
    case 3: {
        uint8_t out[4096];
        size_t out_len;
        if (n <= 4096 &&
            webauthn_b64url_decode((const char *)in, n, out, sizeof out, &out_len) == WEBAUTHN_OK) {
            char text[4096 + 8];
            if (webauthn_b64url_encode(out, out_len, text, sizeof text) != WEBAUTHN_OK ||
                strlen(text) != n || memcmp(text, in, n) != 0)
                abort();
        }
        break;
    }
    case 4: {
        if (n < 2 || (size_t)in[1] > n - 2)
            break;
        bool ed = in[0] & 1;
        const uint8_t *sig = in + 2;
        size_t sig_len = in[1];
        uint8_t challenge[WEBAUTHN_CHALLENGE_LEN];
        memset(challenge, 0x01, sizeof challenge);
        uint32_t count;
        /* No one holds these keys' private halves for this message: success
         * would be a forgery. */
        if (webauthn_assert_verify(
                &rp, (const uint8_t *)get_cdj, strlen(get_cdj), sig + sig_len, n - 2 - sig_len, sig,
                sig_len, challenge, sizeof challenge, ed ? eddsa_spki : es256_spki,
                ed ? sizeof eddsa_spki : sizeof es256_spki,
                ed ? WEBAUTHN_ALG_EDDSA : WEBAUTHN_ALG_ES256, 0, &count) == WEBAUTHN_OK)
            abort();
        break;
    }
    }
    return 0;
}
