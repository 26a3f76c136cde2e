/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Internal interface of libjwtd, shared by the library's own files and by the
 * jwtd server, which links the library statically. Nothing here is exported
 * from libjwtd.so (symbols are hidden; the public ones carry JWTD_API).
 *
 * Same rules as the public API: no I/O, no clock, no globals, no logging;
 * ret_* written only on success; _free() accepts NULL.
 */
#ifndef JWTD_INTERNAL_H
#define JWTD_INTERNAL_H

#include "jwtd.h"

#include <stdbool.h>

#include <jansson.h>
#include <openssl/evp.h>

/* ---- Ed25519 public keys ---- */

/* Whether a 32-byte Ed25519 public key encodes a point of small order (one
 * of the eight-torsion, or a non-canonical encoding of one). Such a key
 * verifies forged signatures (S = 0 with R of small order), so it is
 * refused wherever a public key is taken. */
bool jwtd__ed25519_small_order(const uint8_t key[32]);

/* ---- base64url (RFC 4648 §5, no padding) ---- */

/* Length of the encoding of n bytes. */
size_t jwtd__b64url_encoded_len(size_t n);

/* Encode n bytes into out (cap bytes, room for the NUL included). Returns the
 * encoded length, or 0 and writes nothing when cap is too small. */
size_t jwtd__b64url_encode(const uint8_t *in, size_t n, char *out, size_t cap);

/* Strict decode: only [A-Za-z0-9_-], no padding, no whitespace, length % 4
 * != 1, and the unused low bits of the last character zero (canonical).
 * Decodes into out (cap bytes). On success *ret_len is the decoded length. */
jwtd_err jwtd__b64url_decode(const char *in, size_t n, uint8_t *out, size_t cap,
                             size_t *ret_len);

/* Upper bound of the decoded size of n characters. */
size_t jwtd__b64url_decoded_max(size_t n);

/* ---- keys ---- */

/*
 * Wrap an OpenSSL key as a jwtd key with its algorithm (which must fit the
 * key type: EC P-256 → ES256, Ed25519 → EdDSA, RSA >= 2048 → RS256). The key
 * takes its own reference on pkey (EVP_PKEY_up_ref); a private key is kept,
 * so the result can sign. kid NULL means the RFC 7638 thumbprint.
 */
jwtd_err jwtd__key_from_pkey(EVP_PKEY *pkey, jwtd_alg alg, const char *kid, jwtd_key **ret_key);

/* Take one more reference on key. */
jwtd_key *jwtd__key_ref(jwtd_key *key);

/* The public JWK of an asymmetric key as a new JSON object (kty, crv/x/y, n/e,
 * kid, alg, use "sig"); never private members. JWTD_ERR_INVALID_ARG for an
 * HMAC key: a secret is never published. */
jwtd_err jwtd__key_public_jwk(const jwtd_key *key, json_t **ret_jwk);

/* RFC 7638 JWK thumbprint (SHA-256, base64url, 43 chars + NUL) of the key's
 * public part. Not defined for HMAC keys (JWTD_ERR_INVALID_ARG). */
jwtd_err jwtd__key_thumbprint(const jwtd_key *key, char out[44]);

/* The OpenSSL key (borrowed), or NULL for an HMAC key. */
EVP_PKEY *jwtd__key_pkey(const jwtd_key *key);

/*
 * Sign a JWT: header {"alg","typ":"JWT","kid"} (kid omitted when empty),
 * then the given payload JSON text, as a compact JWS. The key must hold a
 * private key or an HMAC secret. *ret_token is a new NUL-terminated string
 * (free() it).
 */
jwtd_err jwtd__sign_compact(const jwtd_key *key, const char *payload, size_t payload_len,
                            char **ret_token);

#endif /* JWTD_INTERNAL_H */
