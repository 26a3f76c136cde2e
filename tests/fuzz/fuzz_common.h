/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Fixed inputs shared by the fuzz targets: a JWK Set with one public key of
 * each asymmetric type (keys generated for this project's tests; their
 * private halves were thrown away) and an HMAC secret.
 */
#ifndef JWTD_FUZZ_COMMON_H
#define JWTD_FUZZ_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static const char fuzz_jwks[] =
    "{\"keys\": ["
    "{\"kty\": \"EC\", \"crv\": \"P-256\", \"x\": \"MKgWSw0BC6ptOG-ggydnkdGmx7D-cxu6D3QE2xUFBSg\","
    " \"y\": \"Za-RQOGZXAXoW5SE3sseA7vetLn-gIHW5HFq-uwRoxU\", \"kid\": \"fuzz-ec\", \"alg\": \"ES256\","
    " \"use\": \"sig\"},"
    "{\"kty\": \"OKP\", \"crv\": \"Ed25519\", \"x\": \"5rlKQg7DuA7BgQoWuUyTUKt7upF0MviFdlc7YhDMi7Q\","
    " \"kid\": \"fuzz-ed\", \"alg\": \"EdDSA\", \"use\": \"sig\"},"
    "{\"kty\": \"RSA\", \"n\": \"2JyKiOGxzkUUnIvl0XP2Zuw21mqvZHXcKEOD4f1X1xSjoNNLDecxYAESGz_fGfVRL3P7U3wsiYs"
    "-LFqtWrAxLspQoVhsOjcnNfqb9nXSKK-e2NA2uDvKn4jf2z72tJtsYCC5Oq_OA90JEgtdm-XI23L6vo5yxMamadhI1xJ545DNvLKe6"
    "i298h-aZCY-vsjh-vkcBd79XpfW_XSg-gIRqSW9VJLvXSAPnWMR65dLkLOEygz02sf5E0qCmjDUlhFNGzSjrD5KiCaSGKvDXpyB8Co"
    "vWC6yP9OusCWTx3EQ5_5MAYMIby1IemX36FOUMqo3H5Phu858CCKVsngy_WfzDQ\", \"e\": \"AQAB\","
    " \"kid\": \"fuzz-rsa\", \"alg\": \"RS256\", \"use\": \"sig\"}]}";

static const uint8_t fuzz_hmac_secret[32] = "fuzzing-secret-of-32-bytes-long!";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The input as a NUL-terminated string the caller frees (NULL when out of
 * memory); a NUL inside ends it early. */
static inline char *fuzz_text(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    if (s) {
        memcpy(s, data, size);
        s[size] = '\0';
    }
    return s;
}

#endif /* JWTD_FUZZ_COMMON_H */
