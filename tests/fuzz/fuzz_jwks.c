/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Fuzz target: JWK and JWK Set parsing, with each combination of flags,
 * then a lookup and an export of every parsed key. Nothing may crash or
 * leak; an oct key must never be accepted without JWTD_JWK_ALLOW_SECRET.
 */
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"
#include "lib/jwtd_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *doc = (const char *)data;
    for (unsigned flags = 0; flags < 4; flags++) {
        jwtd_keyset *ks = NULL;
        if (jwtd_keyset_from_jwks(doc, size, flags, &ks) == JWTD_OK) {
            (void)jwtd_keyset_find(ks, "fuzz-ec");
            (void)jwtd_keyset_count(ks);
            jwtd_keyset_free(ks);
        }
        jwtd_key *k = NULL;
        if (jwtd_key_from_jwk(doc, size, flags, &k) == JWTD_OK) {
            if (jwtd_key_alg(k) == JWTD_ALG_HS256 && !(flags & JWTD_JWK_ALLOW_SECRET))
                abort();
            json_t *jwk = NULL;
            if (jwtd__key_public_jwk(k, &jwk) == JWTD_OK)
                json_decref(jwk);
            char tp[44];
            (void)jwtd__key_thumbprint(k, tp);
            jwtd_key_free(k);
        }
    }
    return 0;
}
