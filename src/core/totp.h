/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The second factor: TOTP (RFC 6238: HMAC-SHA-1, 6 digits, 30 s steps from
 * T0 = 0) over HOTP (RFC 4226), the base32 spelling of secrets (RFC 4648)
 * and the otpauth:// URI that authenticator apps enrol from. Pure functions:
 * no storage, no clock (the caller passes the time), no logging. Remembering
 * the last accepted step (replay protection) is the caller's job; this
 * module only enforces it given that step.
 */
#ifndef JWTD_TOTP_H
#define JWTD_TOTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* What jwtd enrols: 160-bit secrets (RFC 4226 section 4 recommends 160). */
#define TOTP_SECRET_BYTES 20
/* Accepted secret sizes: RFC 4226 R6 asks for at least 128 bits; past the
 * HMAC-SHA-1 block size a key is only hashed down, so 64 is plenty. */
#define TOTP_SECRET_MIN_BYTES 16
#define TOTP_SECRET_MAX_BYTES 64
#define TOTP_DIGITS 6
#define TOTP_PERIOD 30
/* The largest verification window accepted (steps each side). */
#define TOTP_MAX_WINDOW 10
/* Base32 input longer than this (spaces and padding included) is refused. */
#define TOTP_BASE32_MAX_CHARS 256
/* Issuer and account names longer than this (bytes) are refused. */
#define TOTP_LABEL_MAX_BYTES 256

/* Characters of the unpadded base32 spelling of n bytes (without the NUL). */
#define TOTP_BASE32_LEN(n) (((n) * 8 + 4) / 5)

/* What totp_code answers when it cannot compute a code (bad arguments). */
#define TOTP_CODE_ERROR UINT32_MAX

enum totp_rc {
    TOTP_OK = 0,
    TOTP_MISMATCH = 1,   /* well-formed, matches no step of the window */
    TOTP_REPLAY = 2,     /* matches, but only steps at or before last_used_step */
    TOTP_MALFORMED = -1, /* not exactly 6 ASCII digits */
    TOTP_ERROR = -2,     /* the caller's arguments (secret, window) are unusable */
};

/* Fill out with TOTP_SECRET_BYTES fresh bytes from RAND_bytes. False (out
 * untouched) when the generator fails. The caller owns out and should wipe
 * it with OPENSSL_cleanse when done. */
bool totp_secret_new(uint8_t out[TOTP_SECRET_BYTES]);

/* Write the RFC 4648 base32 spelling of in[0..len) (upper case, no padding)
 * and a NUL into out, which holds cap bytes: TOTP_BASE32_LEN(len) + 1 are
 * needed. False (out untouched) when it does not fit. */
bool totp_base32_encode(const uint8_t *in, size_t len, char *out, size_t cap);

/* Decode base32 in[0..len) into out (cap bytes) and set *ret_len. Accepts
 * upper and lower case, spaces anywhere (apps show secrets in groups of 4)
 * and '=' padding at the end (if present it must be complete). Refuses any
 * other character, impossible lengths, non-zero trailing bits (so that a
 * secret has one spelling), more than TOTP_BASE32_MAX_CHARS characters and
 * output that does not fit in cap. On failure out and *ret_len are
 * untouched. The caller owns out. */
bool totp_base32_decode(const char *in, size_t len, uint8_t *out, size_t cap, size_t *ret_len);

/* The time step of a Unix time: floor(unix_time / TOTP_PERIOD). */
int64_t totp_counter(int64_t unix_time);

/* HOTP (RFC 4226 section 5.3): HMAC-SHA-1(secret, counter), dynamic
 * truncation, modulo 10^digits. digits is 6, 7 or 8. The caller zero-pads
 * to `digits` characters. TOTP_CODE_ERROR when the secret size is outside
 * [TOTP_SECRET_MIN_BYTES, TOTP_SECRET_MAX_BYTES], digits is out of range
 * or HMAC fails. */
uint32_t totp_code(const uint8_t *secret, size_t len, uint64_t counter, unsigned digits);

/* Check a 6-digit code typed by the user at time `now` against every step
 * from step(now) - window to step(now) + window. The code must be exactly 6
 * ASCII digits: callers that tolerate spaces ("123 456") strip them first;
 * nothing is stripped here. Every step of the window is computed and
 * compared in constant time (no early exit). A step counts only when it is
 * greater than last_used_step (-1 when the account never used a code):
 * a code is accepted once, and no code older than the last accepted one is
 * accepted. When the code matches several steps (a 1-in-a-million
 * coincidence), the latest one is taken, so that the same code can never
 * pass twice. On TOTP_OK, *ret_step is the matched step, which the caller
 * must store as the new last_used_step before answering. */
enum totp_rc totp_verify(const uint8_t *secret, size_t len, const char *code, size_t code_len,
                         int64_t now, unsigned window, int64_t last_used_step,
                         int64_t *ret_step);

/* Write the enrolment URI
 *   otpauth://totp/<issuer>:<account>?secret=<base32>&issuer=<issuer>
 *       &algorithm=SHA1&digits=6&period=30
 * and a NUL into out (cap bytes). Issuer and account are non-empty
 * NUL-terminated strings of at most TOTP_LABEL_MAX_BYTES bytes,
 * percent-encoded here (everything but RFC 3986 unreserved characters,
 * including ':' and spaces, which become %3A and %20). False (out
 * untouched) on bad arguments or when the URI does not fit. The URI
 * carries the secret: the caller owns out and wipes it when done. */
bool totp_uri(const uint8_t *secret, size_t len, const char *issuer, const char *account,
              char *out, size_t cap);

#endif /* JWTD_TOTP_H */
