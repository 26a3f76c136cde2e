/* SPDX-License-Identifier: Apache-2.0 */
/*
 * TOTP/HOTP codes, their verification with replay refusal, base32 and the
 * otpauth:// enrolment URI. Owns no state: the clock and the last accepted
 * step come from the caller, which also stores the new step. Must not log,
 * allocate, or leave secret-derived buffers on the stack (every local copy
 * is wiped with OPENSSL_cleanse).
 */
#include "core/totp.h"

#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

static const char B32_ALPHABET[32] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

static bool secret_size_ok(const uint8_t *secret, size_t len)
{
    return secret != NULL && len >= TOTP_SECRET_MIN_BYTES && len <= TOTP_SECRET_MAX_BYTES;
}

bool totp_secret_new(uint8_t out[TOTP_SECRET_BYTES])
{
    uint8_t tmp[TOTP_SECRET_BYTES];
    bool ok = false;
    /* Into a local first: RAND_bytes may have written part of it when it
     * fails, and out must stay untouched then. */
    if (RAND_bytes(tmp, (int)sizeof tmp) != 1)
        goto wipe;
    memcpy(out, tmp, sizeof tmp);
    ok = true;
wipe:
    OPENSSL_cleanse(tmp, sizeof tmp);
    return ok;
}

bool totp_base32_encode(const uint8_t *in, size_t len, char *out, size_t cap)
{
    if ((in == NULL && len > 0) || out == NULL || len > (SIZE_MAX - 4) / 8)
        return false;
    size_t need = TOTP_BASE32_LEN(len);
    if (need >= cap)
        return false;
    uint32_t acc = 0;
    unsigned bits = 0;
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        acc = (acc << 8) | in[i];
        bits += 8;
        while (bits >= 5) {
            bits -= 5;
            out[n++] = B32_ALPHABET[(acc >> bits) & 31];
        }
        acc &= (1u << bits) - 1;
    }
    if (bits > 0)
        out[n++] = B32_ALPHABET[(acc << (5 - bits)) & 31];
    out[n] = '\0';
    return true;
}

/* Value of a base32 character, -1 when it is not one. Branch-free on c,
 * because stored secrets may be decoded here: ((lo - 1 - c) & (c - hi - 1))
 * is negative exactly when lo <= c <= hi, and >> 8 turns that into a mask. */
static int b32_value(int c)
{
    int v = -1;
    v += ((('A' - 1 - c) & (c - ('Z' + 1))) >> 8) & (c - 'A' + 1);
    v += ((('a' - 1 - c) & (c - ('z' + 1))) >> 8) & (c - 'a' + 1);
    v += ((('2' - 1 - c) & (c - ('7' + 1))) >> 8) & (c - '2' + 27);
    return v;
}

bool totp_base32_decode(const char *in, size_t len, uint8_t *out, size_t cap, size_t *ret_len)
{
    uint8_t tmp[TOTP_BASE32_MAX_CHARS * 5 / 8];
    uint32_t acc = 0;
    unsigned bits = 0;
    size_t n = 0, chars = 0, pads = 0;
    bool ok = false;

    if ((in == NULL && len > 0) || ret_len == NULL || len > TOTP_BASE32_MAX_CHARS)
        return false;
    for (size_t i = 0; i < len; i++) {
        int c = (unsigned char)in[i];
        if (c == ' ')
            continue;
        if (c == '=') {
            pads++;
            continue;
        }
        int v = b32_value(c);
        if (v < 0 || pads > 0) /* not base32, or data after padding */
            goto wipe;
        chars++;
        acc = (acc << 5) | (uint32_t)v;
        bits += 5;
        if (bits >= 8) {
            bits -= 8;
            tmp[n++] = (uint8_t)(acc >> bits);
            acc &= (1u << bits) - 1;
        }
    }
    /* 1, 3 or 6 characters of a final group cannot come from whole bytes. */
    size_t rem = chars % 8;
    if (rem == 1 || rem == 3 || rem == 6)
        goto wipe;
    if (pads > 0 && (rem == 0 || rem + pads != 8))
        goto wipe;
    if (acc != 0) /* non-zero trailing bits: a second spelling of the same bytes */
        goto wipe;
    if (n > cap || (out == NULL && n > 0))
        goto wipe;
    if (n > 0)
        memcpy(out, tmp, n);
    *ret_len = n;
    ok = true;
wipe:
    OPENSSL_cleanse(tmp, sizeof tmp);
    OPENSSL_cleanse(&acc, sizeof acc);
    return ok;
}

int64_t totp_counter(int64_t unix_time)
{
    int64_t q = unix_time / TOTP_PERIOD;
    if (unix_time % TOTP_PERIOD != 0 && unix_time < 0)
        q--; /* floor, not truncation, for times before 1970 */
    return q;
}

uint32_t totp_code(const uint8_t *secret, size_t len, uint64_t counter, unsigned digits)
{
    static const uint32_t POW10[] = {1000000u, 10000000u, 100000000u};
    uint8_t msg[8], mac[EVP_MAX_MD_SIZE];
    unsigned mac_len = 0;
    uint32_t code = TOTP_CODE_ERROR;

    if (!secret_size_ok(secret, len) || digits < 6 || digits > 8)
        return TOTP_CODE_ERROR;
    for (int i = 7; i >= 0; i--) {
        msg[i] = (uint8_t)(counter & 0xff);
        counter >>= 8;
    }
    if (HMAC(EVP_sha1(), secret, (int)len, msg, sizeof msg, mac, &mac_len) == NULL ||
        mac_len != 20)
        goto wipe;
    /* RFC 4226 section 5.3: the low nibble of the last byte picks 31 bits. */
    unsigned off = mac[19] & 0x0f;
    uint32_t bin = ((uint32_t)(mac[off] & 0x7f) << 24) | ((uint32_t)mac[off + 1] << 16) |
                   ((uint32_t)mac[off + 2] << 8) | (uint32_t)mac[off + 3];
    code = bin % POW10[digits - 6];
wipe:
    OPENSSL_cleanse(mac, sizeof mac);
    OPENSSL_cleanse(msg, sizeof msg);
    return code;
}

static bool code_well_formed(const char *code, size_t code_len)
{
    if (code == NULL || code_len != TOTP_DIGITS)
        return false;
    for (size_t i = 0; i < code_len; i++)
        if (code[i] < '0' || code[i] > '9')
            return false;
    return true;
}

enum totp_rc totp_verify(const uint8_t *secret, size_t len, const char *code, size_t code_len,
                         int64_t now, unsigned window, int64_t last_used_step,
                         int64_t *ret_step)
{
    if (!secret_size_ok(secret, len) || window > TOTP_MAX_WINDOW || ret_step == NULL)
        return TOTP_ERROR;
    if (!code_well_formed(code, code_len))
        return TOTP_MALFORMED;

    /* No overflow: |now / 30| is far from the int64 limits. */
    int64_t step = totp_counter(now);
    uint64_t any = 0, fresh_match = 0, best = 0;
    bool failed = false;
    for (int64_t s = step - (int64_t)window; s <= step + (int64_t)window; s++) {
        if (s < 0)
            continue;
        uint32_t v = totp_code(secret, len, (uint64_t)s, TOTP_DIGITS);
        if (v == TOTP_CODE_ERROR) {
            failed = true;
            continue;
        }
        char cand[TOTP_DIGITS];
        for (int i = TOTP_DIGITS - 1; i >= 0; i--) {
            cand[i] = (char)('0' + v % 10);
            v /= 10;
        }
        /* CRYPTO_memcmp answers 0..255; 0 becomes an all-ones mask. */
        uint64_t d = (uint64_t)(unsigned)CRYPTO_memcmp(cand, code, TOTP_DIGITS);
        uint64_t eq = 0 - ((d - 1) >> 63);
        OPENSSL_cleanse(cand, sizeof cand);
        /* Whether s is past last_used_step is public; the match is not. */
        uint64_t fresh = s > last_used_step ? UINT64_MAX : 0;
        uint64_t take = eq & fresh;
        /* Ascending steps: the latest fresh match wins. */
        best = ((uint64_t)s & take) | (best & ~take);
        fresh_match |= take;
        any |= eq;
    }
    if (failed)
        return TOTP_ERROR;
    if (fresh_match) {
        *ret_step = (int64_t)best;
        return TOTP_OK;
    }
    return any ? TOTP_REPLAY : TOTP_MISMATCH;
}

/* A string builder that can also just measure (p == NULL), so that totp_uri
 * writes its output only once it knows the whole URI fits. */
struct sbuf {
    char *p;
    size_t len;
};

static void sb_put(struct sbuf *b, const char *s, size_t n)
{
    if (b->p != NULL)
        memcpy(b->p + b->len, s, n);
    b->len += n;
}

static void sb_puts(struct sbuf *b, const char *s)
{
    sb_put(b, s, strlen(s));
}

/* RFC 3986 section 2: unreserved characters stay, every other byte is %XX. */
static void sb_put_pct(struct sbuf *b, const char *s)
{
    static const char HEX[16] = "0123456789ABCDEF";
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
            c == '-' || c == '.' || c == '_' || c == '~') {
            sb_put(b, (const char *)&c, 1);
        } else {
            char e[3] = {'%', HEX[c >> 4], HEX[c & 15]};
            sb_put(b, e, 3);
        }
    }
}

static void build_uri(struct sbuf *b, const char *b32, const char *issuer, const char *account)
{
    sb_puts(b, "otpauth://totp/");
    sb_put_pct(b, issuer);
    sb_puts(b, ":");
    sb_put_pct(b, account);
    sb_puts(b, "?secret=");
    sb_puts(b, b32);
    sb_puts(b, "&issuer=");
    sb_put_pct(b, issuer);
    sb_puts(b, "&algorithm=SHA1&digits=6&period=30");
}

static bool label_ok(const char *s)
{
    if (s == NULL)
        return false;
    size_t n = strnlen(s, TOTP_LABEL_MAX_BYTES + 1);
    return n > 0 && n <= TOTP_LABEL_MAX_BYTES;
}

bool totp_uri(const uint8_t *secret, size_t len, const char *issuer, const char *account,
              char *out, size_t cap)
{
    char b32[TOTP_BASE32_LEN(TOTP_SECRET_MAX_BYTES) + 1];
    bool ok = false;

    if (!secret_size_ok(secret, len) || !label_ok(issuer) || !label_ok(account) || out == NULL)
        return false;
    if (!totp_base32_encode(secret, len, b32, sizeof b32))
        goto wipe;
    struct sbuf measure = {NULL, 0};
    build_uri(&measure, b32, issuer, account);
    if (measure.len >= cap)
        goto wipe;
    struct sbuf w = {out, 0};
    build_uri(&w, b32, issuer, account);
    out[w.len] = '\0';
    ok = true;
wipe:
    OPENSSL_cleanse(b32, sizeof b32);
    return ok;
}
