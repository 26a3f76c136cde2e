/* SPDX-License-Identifier: Apache-2.0 */
/*
 * WebAuthn Level 2 relying-party verification for jwtd's passkeys: the
 * registration ceremony (attestation "none") and the authentication
 * ceremony, checked against one RP ID and one exact origin, with user
 * verification required. Everything here is pure: no I/O, no clock, no
 * global state, no logging. Storing credentials, remembering challenges,
 * finding the stored credential for an assertion's rawId and checking that
 * a new credential ID is not registered already all belong to the caller.
 *
 * Sizes are capped (the WEBAUTHN_*_MAX constants) because every input here
 * comes from the network.
 */
#ifndef JWTD_WEBAUTHN_H
#define JWTD_WEBAUTHN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Input caps; a larger input is WEBAUTHN_ERR_TOO_LARGE. */
#define WEBAUTHN_CLIENT_DATA_MAX 4096
#define WEBAUTHN_ATTESTATION_MAX 16384
#define WEBAUTHN_AUTH_DATA_MAX 4096
#define WEBAUTHN_SIGNATURE_MAX 1024
/* A stored public key (SubjectPublicKeyInfo DER); RSA-8192 needs ~1.1 KiB. */
#define WEBAUTHN_SPKI_MAX 2048
/* WebAuthn Level 3, 5.1: credential IDs are at most 1023 bytes. */
#define WEBAUTHN_CREDENTIAL_ID_MAX 1023
/* Challenges jwtd makes are 32 bytes; the spec asks for at least 16. */
#define WEBAUTHN_CHALLENGE_LEN 32
#define WEBAUTHN_CHALLENGE_MIN 16
#define WEBAUTHN_CHALLENGE_MAX 64

/* COSE algorithm identifiers accepted (IANA COSE Algorithms registry). */
#define WEBAUTHN_ALG_ES256 (-7)
#define WEBAUTHN_ALG_EDDSA (-8)
#define WEBAUTHN_ALG_RS256 (-257)

/* Authenticator data flags (WebAuthn 6.1; BE and BS from Level 3). */
#define WEBAUTHN_FLAG_UP 0x01u /* user present */
#define WEBAUTHN_FLAG_UV 0x04u /* user verified */
#define WEBAUTHN_FLAG_BE 0x08u /* backup eligible (a synced passkey) */
#define WEBAUTHN_FLAG_BS 0x10u /* backed up */
#define WEBAUTHN_FLAG_AT 0x40u /* attested credential data follows */
#define WEBAUTHN_FLAG_ED 0x80u /* extensions follow */

enum webauthn_rc {
    WEBAUTHN_OK = 0,
    WEBAUTHN_ERR_INVALID_ARGUMENT, /* NULL pointer, empty RP ID or origin, bad challenge size */
    WEBAUTHN_ERR_TOO_LARGE,        /* an input exceeds its cap, or an output buffer is too small */
    WEBAUTHN_ERR_NO_MEMORY,        /* allocation failed */
    WEBAUTHN_ERR_CRYPTO,           /* OpenSSL failed on a valid input (RAND_bytes, hashing...) */
    WEBAUTHN_ERR_BASE64,           /* not strict unpadded base64url */
    WEBAUTHN_ERR_MALFORMED_CLIENT_DATA, /* not a JSON object, duplicate keys, ill-typed members */
    WEBAUTHN_ERR_CLIENT_DATA_TYPE,      /* type is not webauthn.create / webauthn.get */
    WEBAUTHN_ERR_CHALLENGE_MISMATCH,    /* challenge is not the one issued */
    WEBAUTHN_ERR_ORIGIN_MISMATCH,       /* origin is not exactly rp->origin */
    WEBAUTHN_ERR_CROSS_ORIGIN,   /* crossOrigin is true (a ceremony inside a foreign iframe) */
    WEBAUTHN_ERR_MALFORMED_CBOR, /* not one well-formed CBOR item (or bytes after it) */
    WEBAUTHN_ERR_MALFORMED_ATTESTATION, /* attestation object lacks fmt/attStmt/authData, or fmt
                                         * "none" with a non-empty attStmt */
    WEBAUTHN_ERR_MALFORMED_AUTH_DATA,   /* authenticator data too short, bytes after its parts,
                                         * AT missing on registration or present on assertion,
                                         * BS without BE, bad credential ID length */
    WEBAUTHN_ERR_RP_ID_MISMATCH,        /* rpIdHash is not SHA-256(rp->id) */
    WEBAUTHN_ERR_USER_NOT_PRESENT,      /* UP flag clear */
    WEBAUTHN_ERR_USER_NOT_VERIFIED,     /* UV flag clear */
    WEBAUTHN_ERR_MALFORMED_KEY,         /* COSE key not a map, duplicate or ill-typed parameters,
                                         * kty not the one of its alg */
    WEBAUTHN_ERR_UNSUPPORTED_ALG,       /* alg (or its curve) not ES256, EdDSA/Ed25519 or RS256 */
    WEBAUTHN_ERR_BAD_KEY,               /* wrong coordinate sizes, point off the curve, RSA
                                         * modulus under 2048 bits, stored key not of cose_alg */
    WEBAUTHN_ERR_MALFORMED_SIGNATURE,   /* ES256 not strict DER, wrong Ed25519/RSA length */
    WEBAUTHN_ERR_BAD_SIGNATURE,         /* the signature does not verify */
    WEBAUTHN_ERR_COUNTER,               /* signature counter did not increase: maybe a cloned
                                         * authenticator */
};

struct webauthn_rp {
    const char *id;     /* RP ID, e.g. "example.com" (hashed into rpIdHash) */
    const char *origin; /* the one accepted origin, e.g. "https://login.example.com" */
};

/* A newly registered credential, to be stored by the caller. */
struct webauthn_credential {
    uint8_t id[WEBAUTHN_CREDENTIAL_ID_MAX];
    size_t id_len;
    int alg;             /* WEBAUTHN_ALG_* */
    uint8_t *public_key; /* SubjectPublicKeyInfo DER (d2i_PUBKEY reloads it); malloc'd */
    size_t public_key_len;
    uint32_t sign_count;
    uint8_t aaguid[16];
    uint8_t flags;        /* authenticator data flags at registration (WEBAUTHN_FLAG_*) */
    bool backup_eligible; /* BE: the credential may be synced (a multi-device passkey) */
    bool backed_up;       /* BS: it is synced now */
};

/* Authenticator data split into its parts (WebAuthn 6.1). The pointers point
 * into the buffer given to webauthn_authdata_parse and live as long as it. */
struct webauthn_authdata {
    uint8_t rp_id_hash[32];
    uint8_t flags;
    uint32_t sign_count;
    uint8_t aaguid[16];           /* zero when AT is clear */
    const uint8_t *credential_id; /* NULL when AT is clear */
    size_t credential_id_len;
    const uint8_t *cose_key; /* the COSE_Key CBOR item, NULL when AT is clear */
    size_t cose_key_len;
    const uint8_t *extensions; /* the extensions CBOR map, NULL when ED is clear */
    size_t extensions_len;
};

/* Verify a registration (navigator.credentials.create() response) made for
 * expected_challenge. client_data_json, attestation_object and the challenge
 * are raw bytes (already base64url-decoded). The attestation statement is
 * not verified: jwtd asks for attestation "none" and trusts no attestation,
 * so any fmt is treated as "none" once the object is a well-formed map (fmt
 * "none" itself must carry an empty attStmt). On WEBAUTHN_OK, *ret_cred is
 * filled; the caller owns ret_cred->public_key and releases it with
 * webauthn_credential_clear. The caller must still check that the
 * credential ID is not registered already, and should store ret_cred->id
 * rather than the rawId sent next to the response. */
enum webauthn_rc webauthn_register_verify(const struct webauthn_rp *rp,
                                          const uint8_t *client_data_json, size_t cdj_len,
                                          const uint8_t *attestation_object, size_t ao_len,
                                          const uint8_t *expected_challenge, size_t challenge_len,
                                          struct webauthn_credential *ret_cred);

/* Verify an assertion (navigator.credentials.get() response) made for
 * expected_challenge with the stored credential (spki_der, cose_alg,
 * stored_sign_count). On WEBAUTHN_OK, *ret_new_count is the counter to
 * store. WEBAUTHN_ERR_COUNTER means a valid signature whose counter did not
 * go up while one of the counters is non-zero: the caller decides whether to
 * refuse the login (jwtd does) and should flag the credential. Borrows every
 * buffer; allocates nothing that outlives the call. */
enum webauthn_rc webauthn_assert_verify(const struct webauthn_rp *rp,
                                        const uint8_t *client_data_json, size_t cdj_len,
                                        const uint8_t *authenticator_data, size_t ad_len,
                                        const uint8_t *signature, size_t sig_len,
                                        const uint8_t *expected_challenge, size_t challenge_len,
                                        const uint8_t *spki_der, size_t spki_len, int cose_alg,
                                        uint32_t stored_sign_count, uint32_t *ret_new_count);

/* Free the public key of cred and zero the struct. NULL-safe; safe on a
 * zeroed struct and on one already cleared. */
void webauthn_credential_clear(struct webauthn_credential *cred);

/* A static English sentence for rc (never NULL). */
const char *webauthn_strerror(enum webauthn_rc rc);

/* A fresh random challenge (RAND_bytes). */
enum webauthn_rc webauthn_challenge_new(uint8_t out[WEBAUTHN_CHALLENGE_LEN]);

/* Length of the unpadded base64url encoding of n bytes (without the NUL). */
size_t webauthn_b64url_encoded_len(size_t n);

/* Encode len bytes as unpadded base64url into out, NUL-terminated; out_size
 * must be at least webauthn_b64url_encoded_len(len) + 1, else
 * WEBAUTHN_ERR_TOO_LARGE and out untouched. */
enum webauthn_rc webauthn_b64url_encode(const uint8_t *in, size_t len, char *out, size_t out_size);

/* Decode strict unpadded base64url (RFC 4648 section 5): padding, other
 * characters, a length of 1 mod 4 and non-zero unused trailing bits are
 * WEBAUTHN_ERR_BASE64. The decoded bytes go to out (out_size bytes; too
 * small is WEBAUTHN_ERR_TOO_LARGE); *ret_len gets their count. Nothing is
 * written on failure. */
enum webauthn_rc webauthn_b64url_decode(const char *in, size_t len, uint8_t *out, size_t out_size,
                                        size_t *ret_len);

/* The parsers the verifiers are made of, exposed for the fuzz target and for
 * tests. */

/* Check an attestation object (one CBOR map: text "fmt", map "attStmt",
 * byte string "authData"; nothing after it) and return a malloc'd copy of
 * authData that the caller frees with free(). */
enum webauthn_rc webauthn_attestation_parse(const uint8_t *ao, size_t ao_len,
                                            uint8_t **ret_authdata, size_t *ret_authdata_len);

/* Split authenticator data (WebAuthn 6.1) into *ret_ad, which borrows ad.
 * Checks the layout only: the attested credential data when AT is set (the
 * COSE key is checked to be one well-formed CBOR item, not parsed), the
 * extensions map when ED is set, nothing after them, BS only with BE. The
 * flag and hash policy is the verifiers'. */
enum webauthn_rc webauthn_authdata_parse(const uint8_t *ad, size_t ad_len,
                                         struct webauthn_authdata *ret_ad);

/* Parse a COSE_Key (exactly one CBOR map, nothing after it) of an accepted
 * algorithm and validate the key. On WEBAUTHN_OK *ret_alg is its COSE alg
 * and *ret_spki a malloc'd SubjectPublicKeyInfo DER the caller frees with
 * free(). */
enum webauthn_rc webauthn_cose_key_parse(const uint8_t *key, size_t key_len, int *ret_alg,
                                         uint8_t **ret_spki, size_t *ret_spki_len);

#endif /* JWTD_WEBAUTHN_H */
