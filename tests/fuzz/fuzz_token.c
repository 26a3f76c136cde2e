/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Fuzz target: token parsing and verification. The input is used three
 * ways: as a compact JWS against a public key set (every asymmetric
 * algorithm) and against an HMAC key set, as a JWT through the full claims
 * check, and — to reach the claims code that random bytes never reach past
 * a signature — as a payload that is signed with the HMAC key and then
 * verified. Nothing may crash, leak or read out of bounds; a forged token
 * must never verify.
 */
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"
#include "lib/jwtd_internal.h"

static jwtd_keyset *pub_set, *hmac_set;
static jwtd_key *hmac_key;
static jwtd_verifier *v_pub, *v_hmac;

static void init(void)
{
    if (pub_set)
        return;
    if (jwtd_keyset_from_jwks(fuzz_jwks, strlen(fuzz_jwks), 0, &pub_set) != JWTD_OK ||
        jwtd_key_new_hmac("fuzz-hs", fuzz_hmac_secret, sizeof fuzz_hmac_secret, &hmac_key) != JWTD_OK ||
        jwtd_keyset_new(&hmac_set) != JWTD_OK || jwtd_keyset_add(hmac_set, hmac_key) != JWTD_OK ||
        jwtd_verifier_new(&v_pub) != JWTD_OK || jwtd_verifier_new(&v_hmac) != JWTD_OK ||
        jwtd_verifier_set_issuer(v_pub, "https://issuer.example") != JWTD_OK ||
        jwtd_verifier_set_audience(v_pub, "jwtd") != JWTD_OK ||
        jwtd_verifier_set_issuer(v_hmac, "https://issuer.example") != JWTD_OK ||
        jwtd_verifier_set_audience(v_hmac, "jwtd") != JWTD_OK ||
        jwtd_verifier_set_algs(v_hmac, JWTD_ALG_HS256) != JWTD_OK)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    init();
    const char *tok = (const char *)data;
    uint8_t *payload = NULL;
    size_t plen = 0;
    const unsigned all = JWTD_ALG_HS256 | JWTD_ALGS_ASYMMETRIC;

    /* Random bytes are never a valid signature of ours. */
    if (jwtd_jws_verify(pub_set, all, tok, size, &payload, &plen) == JWTD_OK)
        abort();
    if (jwtd_jws_verify(hmac_set, all, tok, size, &payload, &plen) == JWTD_OK)
        free(payload); /* possible only for inputs that are signed corpus seeds */

    jwtd_claims *c = NULL;
    if (jwtd_verify(v_pub, pub_set, tok, size, 1800000000, &c) == JWTD_OK)
        abort();
    if (jwtd_verify(v_hmac, hmac_set, tok, size, 1800000000, &c) == JWTD_OK)
        jwtd_claims_free(c);

    /* The claims code: sign the input as a payload, then verify it. */
    char *signed_tok = NULL;
    if (size < 4096 && jwtd__sign_compact(hmac_key, tok, size, &signed_tok) == JWTD_OK) {
        c = NULL;
        if (jwtd_verify(v_hmac, hmac_set, signed_tok, strlen(signed_tok), 1800000000, &c) ==
            JWTD_OK) {
            /* Accepted claims must satisfy the rules that were checked. */
            if (!jwtd_claims_sub(c) || !jwtd_claims_sid(c) ||
                strcmp(jwtd_claims_iss(c), "https://issuer.example") != 0 ||
                jwtd_claims_exp(c) <= 1800000000 - 5) /* no overflow at INT64_MAX */
                abort();
            char *json = jwtd_claims_json(c);
            free(json);
            int64_t x;
            jwtd_claims_integer(c, "exp", &x);
            jwtd_claims_string(c, "preferred_username");
            jwtd_claims_free(c);
        }
        free(signed_tok);
    }
    return 0;
}
