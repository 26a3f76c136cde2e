/* SPDX-License-Identifier: Apache-2.0 */
/*
 * base64url without padding (RFC 4648 §5, as JOSE uses it, RFC 7515 §2).
 *
 * Decoding is strict: one encoding per byte string. Anything a lenient
 * decoder would "fix" (padding, whitespace, the standard alphabet, non-zero
 * unused bits) is refused, so that two different token strings can never
 * carry the same signed bytes.
 *
 * Must not: allocate, or write past the caller's capacity.
 */
#include "jwtd_lib.h"

#include <stdint.h>

static const char alphabet[64] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/* Sextet value of each byte, or -1. Built as a constant so decoding is one
 * table lookup per character and there is no initialisation to race on. */
#define X (-1)
static const int8_t sextet[256] = {
    X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,
    X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,
    X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  62, X,  X,
    52, 53, 54, 55, 56, 57, 58, 59, 60, 61, X,  X,  X,  X,  X,  X,
    X,  0,  1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11, 12, 13, 14,
    15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, X,  X,  X,  X,  63,
    X,  26, 27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40,
    41, 42, 43, 44, 45, 46, 47, 48, 49, 50, 51, X,  X,  X,  X,  X,
    X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,
    X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,
    X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,
    X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,
    X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,
    X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,
    X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,
    X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,
};
#undef X

size_t jwtd__b64url_encoded_len(size_t n)
{
    /* Saturate instead of wrapping, so a caller that sizes a buffer with
     * this can never get a small number for a huge input. */
    if (n / 3 > (SIZE_MAX - 4) / 4)
        return SIZE_MAX;
    return (n / 3) * 4 + (n % 3 == 0 ? 0 : n % 3 + 1);
}

size_t jwtd__b64url_decoded_max(size_t n)
{
    size_t rem = n % 4;

    return (n / 4) * 3 + (rem > 1 ? rem - 1 : 0);
}

size_t jwtd__b64url_encode(const uint8_t *in, size_t n, char *out, size_t cap)
{
    size_t need = jwtd__b64url_encoded_len(n);
    size_t o = 0, i = 0;

    if (out == NULL || (in == NULL && n > 0) || need == SIZE_MAX || cap <= need)
        return 0;
    for (; i + 3 <= n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
        out[o++] = alphabet[v >> 18];
        out[o++] = alphabet[(v >> 12) & 63];
        out[o++] = alphabet[(v >> 6) & 63];
        out[o++] = alphabet[v & 63];
    }
    if (n - i == 1) {
        uint32_t v = (uint32_t)in[i] << 16;
        out[o++] = alphabet[v >> 18];
        out[o++] = alphabet[(v >> 12) & 63];
    } else if (n - i == 2) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;
        out[o++] = alphabet[v >> 18];
        out[o++] = alphabet[(v >> 12) & 63];
        out[o++] = alphabet[(v >> 6) & 63];
    }
    out[o] = '\0';
    return o;
}

jwtd_err jwtd__b64url_decode(const char *in, size_t n, uint8_t *out, size_t cap,
                             size_t *ret_len)
{
    size_t rem = n % 4, full = n - rem, o = 0;
    size_t need;

    if ((in == NULL && n > 0) || (out == NULL && cap > 0) || ret_len == NULL)
        return JWTD_ERR_INVALID_ARG;
    /* One leftover character carries only 6 bits: never a whole byte. */
    if (rem == 1)
        return JWTD_ERR_BASE64;
    need = jwtd__b64url_decoded_max(n);
    if (need > cap)
        return JWTD_ERR_TOO_LARGE;

    for (size_t i = 0; i < full; i += 4) {
        int a = sextet[(unsigned char)in[i]], b = sextet[(unsigned char)in[i + 1]];
        int c = sextet[(unsigned char)in[i + 2]], d = sextet[(unsigned char)in[i + 3]];
        if ((a | b | c | d) < 0)
            return JWTD_ERR_BASE64;
        uint32_t v = (uint32_t)a << 18 | (uint32_t)b << 12 | (uint32_t)c << 6 | (uint32_t)d;
        out[o++] = (uint8_t)(v >> 16);
        out[o++] = (uint8_t)(v >> 8);
        out[o++] = (uint8_t)v;
    }
    if (rem == 2) {
        int a = sextet[(unsigned char)in[full]], b = sextet[(unsigned char)in[full + 1]];
        /* The low 4 bits of the last character are not part of the byte; a
         * canonical encoder leaves them zero. */
        if ((a | b) < 0 || (b & 0x0f) != 0)
            return JWTD_ERR_BASE64;
        out[o++] = (uint8_t)(a << 2 | b >> 4);
    } else if (rem == 3) {
        int a = sextet[(unsigned char)in[full]], b = sextet[(unsigned char)in[full + 1]];
        int c = sextet[(unsigned char)in[full + 2]];
        if ((a | b | c) < 0 || (c & 0x03) != 0)
            return JWTD_ERR_BASE64;
        uint32_t v = (uint32_t)a << 12 | (uint32_t)b << 6 | (uint32_t)c;
        out[o++] = (uint8_t)(v >> 10);
        out[o++] = (uint8_t)(v >> 2);
    }
    *ret_len = o;
    return JWTD_OK;
}
