/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Helpers shared by the libjwtd unit tests: key generation, an independent
 * signer (so verification is not only tested against the library's own
 * signing code), and token assembly from arbitrary header/payload text.
 *
 * Must not: be linked into anything but tests. Helpers abort the test (via
 * cmocka's assertions) on any setup failure instead of returning errors.
 */
#ifndef JWTD_TESTUTIL_H
#define JWTD_TESTUTIL_H

#include "lib/jwtd_internal.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

/* A fresh key pair for an asymmetric alg (RSA: 2048 bits). */
EVP_PKEY *tu_keygen(jwtd_alg alg);

/* base64url of bytes / of a NUL-terminated string; new string (free()). */
char *tu_b64(const void *data, size_t len);
char *tu_b64s(const char *s);

/* Decode base64url (test vectors); new buffer (free()), *len set. */
uint8_t *tu_unb64(const char *s, size_t *len);

/* "<b64(header)>.<b64(payload)>.<b64(sig)>"; new string. */
char *tu_token_raw(const char *header, const char *payload, const uint8_t *sig, size_t sig_len);

/* header.payload signed independently of libjwtd: pkey for ES256 / EdDSA /
 * RS256 (alg chooses the scheme), secret for HS256. New string. */
char *tu_sign(jwtd_alg alg, EVP_PKEY *pkey, const uint8_t *secret, size_t secret_len,
              const char *header, const char *payload);

/* Replace the signature segment of a token; new string. */
char *tu_with_sig(const char *token, const uint8_t *sig, size_t sig_len);

/* The public JWK text of a key wrapped from pkey (kid and alg set). */
char *tu_public_jwk(EVP_PKEY *pkey, jwtd_alg alg, const char *kid);

/* A key set holding exactly one key. */
jwtd_keyset *tu_set1(jwtd_key *key);

/* Printf into a new string. */
char *tu_fmt(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif /* JWTD_TESTUTIL_H */
