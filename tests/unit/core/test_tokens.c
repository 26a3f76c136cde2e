/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Refresh tokens (src/core/tokens.c) and the helpers they stand on
 * (src/core/util.c). Refresh tokens: round trip, fixed length, a forgery
 * made by changing any character, another key, a wrong length, a
 * non-canonical encoding of the same bytes, and a wrong version byte (built
 * here with an independent HMAC so that only the version differs). Helpers:
 * UUIDv7 format and ordering, UUID text/bytes conversion and refusals,
 * RFC 3339 formatting, strict integer parsing and the capped buffer.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "core/tokens.h"
#include "base/util.h"

static const uint8_t KEY[REFRESH_KEY_LEN] = {
    0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f,
    0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18, 0x19, 0x1a, 0x1b, 0x1c, 0x1d, 0x1e, 0x1f,
};
static const char SID[] = "017f22e2-79b0-7cc3-98c4-dc0c0c07398f"; /* RFC 9562 A.6 */

static const char B64URL[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/* An independent unpadded base64url encoder (no libjwtd code). */
static void b64url(const uint8_t *in, size_t n, char *out)
{
    size_t o = 0, i = 0;
    for (; i + 3 <= n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
        out[o++] = B64URL[v >> 18 & 63];
        out[o++] = B64URL[v >> 12 & 63];
        out[o++] = B64URL[v >> 6 & 63];
        out[o++] = B64URL[v & 63];
    }
    if (n - i == 1) {
        uint32_t v = (uint32_t)in[i] << 16;
        out[o++] = B64URL[v >> 18 & 63];
        out[o++] = B64URL[v >> 12 & 63];
    } else if (n - i == 2) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;
        out[o++] = B64URL[v >> 18 & 63];
        out[o++] = B64URL[v >> 12 & 63];
        out[o++] = B64URL[v >> 6 & 63];
    }
    out[o] = '\0';
}

/* The token format of tokens.h, built independently: version || sid ||
 * gen (big-endian) || HMAC-SHA256(key, "jwtd-refresh-token\0" || the 21
 * bytes before). */
static void forge(uint8_t version, const uint8_t key[REFRESH_KEY_LEN], const char *sid,
                  uint32_t gen, char out[REFRESH_TOKEN_LEN + 1])
{
    uint8_t raw[REFRESH_TOKEN_RAW];
    raw[0] = version;
    assert_true(util_uuid_to_bytes(sid, raw + 1));
    raw[17] = (uint8_t)(gen >> 24);
    raw[18] = (uint8_t)(gen >> 16);
    raw[19] = (uint8_t)(gen >> 8);
    raw[20] = (uint8_t)gen;
    static const char label[] = "jwtd-refresh-token";
    uint8_t msg[sizeof label + 21];
    memcpy(msg, label, sizeof label); /* with its NUL */
    memcpy(msg + sizeof label, raw, 21);
    unsigned int len = 0;
    assert_non_null(HMAC(EVP_sha256(), key, REFRESH_KEY_LEN, msg, sizeof msg, raw + 21, &len));
    assert_int_equal(len, 32);
    b64url(raw, sizeof raw, out);
    assert_int_equal(strlen(out), REFRESH_TOKEN_LEN);
}

static bool parse(const uint8_t key[REFRESH_KEY_LEN], const char *tok, char sid[UUID_STR_LEN],
                  uint32_t *gen)
{
    return refresh_token_parse(key, tok, strlen(tok), sid, gen);
}

/* ---- refresh tokens ---- */

static void test_refresh_round_trip(void **state)
{
    (void)state;
    static const uint32_t gens[] = {0, 1, 255, 256, 65536, 0x7fffffffu, 0xffffffffu};
    for (size_t i = 0; i < sizeof gens / sizeof gens[0]; i++) {
        char tok[REFRESH_TOKEN_LEN + 1];
        memset(tok, 'X', sizeof tok);
        assert_true(refresh_token_make(KEY, SID, gens[i], tok));
        assert_int_equal(strlen(tok), REFRESH_TOKEN_LEN);
        assert_int_equal(strspn(tok, B64URL), REFRESH_TOKEN_LEN);

        char sid[UUID_STR_LEN];
        uint32_t gen = 12345;
        assert_true(parse(KEY, tok, sid, &gen));
        assert_string_equal(sid, SID);
        assert_int_equal(gen, gens[i]);

        /* The independent construction gives the very same token. */
        char mine[REFRESH_TOKEN_LEN + 1];
        forge(1, KEY, SID, gens[i], mine);
        assert_string_equal(tok, mine);
    }
    /* Upper-case session ids are the same session. */
    char a[REFRESH_TOKEN_LEN + 1], b[REFRESH_TOKEN_LEN + 1];
    assert_true(refresh_token_make(KEY, SID, 7, a));
    assert_true(refresh_token_make(KEY, "017F22E2-79B0-7CC3-98C4-DC0C0C07398F", 7, b));
    assert_string_equal(a, b);
    /* Not a session id: no token. */
    assert_false(refresh_token_make(KEY, "not-a-uuid", 7, a));
}

static void test_refresh_generation_changes_token(void **state)
{
    (void)state;
    char t0[REFRESH_TOKEN_LEN + 1], t1[REFRESH_TOKEN_LEN + 1], t2[REFRESH_TOKEN_LEN + 1];
    assert_true(refresh_token_make(KEY, SID, 0, t0));
    assert_true(refresh_token_make(KEY, SID, 1, t1));
    assert_true(refresh_token_make(KEY, "017f22e2-79b0-7cc3-98c4-dc0c0c07398e", 0, t2));
    assert_string_not_equal(t0, t1);
    assert_string_not_equal(t0, t2);
    /* Deterministic: the server can hand the current token again. */
    char again[REFRESH_TOKEN_LEN + 1];
    assert_true(refresh_token_make(KEY, SID, 1, again));
    assert_string_equal(t1, again);
}

/* token_forgery: every single-character change, at every position and to
 * every other alphabet character, is refused. */
static void test_refresh_forgery_any_character(void **state)
{
    (void)state;
    char tok[REFRESH_TOKEN_LEN + 1];
    assert_true(refresh_token_make(KEY, SID, 41, tok));
    size_t accepted = 0;
    for (size_t pos = 0; pos < REFRESH_TOKEN_LEN; pos++) {
        for (size_t k = 0; k < 64; k++) {
            if (B64URL[k] == tok[pos])
                continue;
            char t[REFRESH_TOKEN_LEN + 1];
            memcpy(t, tok, sizeof t);
            t[pos] = B64URL[k];
            char sid[UUID_STR_LEN];
            uint32_t gen;
            if (parse(KEY, t, sid, &gen)) {
                accepted++;
                print_error("accepted: position %zu -> '%c'\n", pos, B64URL[k]);
            }
        }
        /* Characters outside the alphabet. */
        static const char others[] = "+/=. \n";
        for (size_t k = 0; k < sizeof others - 1; k++) {
            char t[REFRESH_TOKEN_LEN + 1];
            memcpy(t, tok, sizeof t);
            t[pos] = others[k];
            char sid[UUID_STR_LEN];
            uint32_t gen;
            assert_false(parse(KEY, t, sid, &gen));
        }
    }
    assert_int_equal(accepted, 0);
}

/* generation_forgery: a token for another generation or session cannot be
 * made without the key, even with a valid MAC layout. */
static void test_refresh_wrong_key(void **state)
{
    (void)state;
    uint8_t other[REFRESH_KEY_LEN];
    memcpy(other, KEY, sizeof other);
    other[31] ^= 1;
    char tok[REFRESH_TOKEN_LEN + 1];
    assert_true(refresh_token_make(other, SID, 3, tok));
    char sid[UUID_STR_LEN];
    uint32_t gen = 99;
    assert_false(parse(KEY, tok, sid, &gen));
    assert_int_equal(gen, 99); /* untouched */
    assert_true(parse(other, tok, sid, &gen));
    assert_int_equal(gen, 3);
}

static void test_refresh_wrong_length(void **state)
{
    (void)state;
    char tok[REFRESH_TOKEN_LEN + 1];
    assert_true(refresh_token_make(KEY, SID, 3, tok));
    char sid[UUID_STR_LEN];
    uint32_t gen;
    for (size_t n = 0; n < REFRESH_TOKEN_LEN; n++)
        assert_false(refresh_token_parse(KEY, tok, n, sid, &gen));
    char longer[REFRESH_TOKEN_LEN + 8];
    snprintf(longer, sizeof longer, "%sA", tok);
    assert_false(parse(KEY, longer, sid, &gen));
    snprintf(longer, sizeof longer, "%sAAAA", tok);
    assert_false(parse(KEY, longer, sid, &gen));
    /* Padding is not part of the format. */
    snprintf(longer, sizeof longer, "%s=", tok);
    assert_false(parse(KEY, longer, sid, &gen));
    assert_true(refresh_token_parse(KEY, tok, REFRESH_TOKEN_LEN, sid, &gen));
}

/* token_malleability: 53 bytes in 71 characters leave two unused bits in the
 * last character; setting them encodes the same bytes (same MAC) and must
 * still be refused, or one token would have four spellings. */
static void test_refresh_non_canonical_base64url(void **state)
{
    (void)state;
    char tok[REFRESH_TOKEN_LEN + 1];
    assert_true(refresh_token_make(KEY, SID, 5, tok));
    const char *p = strchr(B64URL, tok[REFRESH_TOKEN_LEN - 1]);
    assert_non_null(p);
    size_t v = (size_t)(p - B64URL);
    assert_int_equal(v & 3, 0); /* canonical form leaves them zero */
    for (size_t low = 1; low < 4; low++) {
        char t[REFRESH_TOKEN_LEN + 1];
        memcpy(t, tok, sizeof t);
        t[REFRESH_TOKEN_LEN - 1] = B64URL[v | low];
        char sid[UUID_STR_LEN];
        uint32_t gen;
        assert_false(parse(KEY, t, sid, &gen));
    }
}

static void test_refresh_wrong_version(void **state)
{
    (void)state;
    char sid[UUID_STR_LEN];
    uint32_t gen;
    char t[REFRESH_TOKEN_LEN + 1];
    forge(1, KEY, SID, 9, t);
    assert_true(parse(KEY, t, sid, &gen)); /* the oracle is right */
    static const uint8_t versions[] = {0, 2, 0x81, 0xff};
    for (size_t i = 0; i < sizeof versions; i++) {
        forge(versions[i], KEY, SID, 9, t);
        if (parse(KEY, t, sid, &gen))
            fail_msg("version byte %u accepted", versions[i]);
    }
}

/* ---- UUIDs ---- */

static void assert_uuid7_shape(const char *u)
{
    assert_int_equal(strlen(u), 36);
    for (size_t i = 0; i < 36; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23)
            assert_int_equal(u[i], '-');
        else if (!strchr("0123456789abcdef", u[i]))
            fail_msg("'%s': character %zu is not lower-case hex", u, i);
    }
    assert_int_equal(u[14], '7');                   /* version */
    assert_non_null(strchr("89ab", u[19]));          /* RFC 9562 variant 10xx */
}

static uint64_t uuid7_ms(const char *u)
{
    uint8_t b[16];
    assert_true(util_uuid_to_bytes(u, b));
    uint64_t ms = 0;
    for (int i = 0; i < 6; i++)
        ms = ms << 8 | b[i];
    return ms;
}

static void *weak_id_thread(void *out)
{
    util_uuid7_weak(out);
    return NULL;
}

/* N ids from util_uuid7, or from util_uuid7_weak (request ids): same shape,
 * same time prefix, all distinct. */
static void check_uuid7s(bool weak)
{
    enum { N = 2000 };
    static char ids[N][UUID_STR_LEN];
    int64_t before = util_now_ms();
    for (int i = 0; i < N; i++) {
        if (weak)
            util_uuid7_weak(ids[i]);
        else
            assert_true(util_uuid7(ids[i]));
        assert_uuid7_shape(ids[i]);
        assert_true(util_is_uuid(ids[i]));
    }
    int64_t after = util_now_ms();
    uint64_t prev = 0;
    for (int i = 0; i < N; i++) {
        uint64_t ms = uuid7_ms(ids[i]);
        /* The prefix is the creation time, and never goes backwards. */
        assert_in_range(ms, (uint64_t)before, (uint64_t)after);
        assert_true(ms >= prev);
        prev = ms;
    }
    /* All distinct (the 74 random bits). */
    for (int i = 0; i < N; i++)
        for (int j = i + 1; j < N; j++)
            if (strcmp(ids[i], ids[j]) == 0)
                fail_msg("duplicate id %s", ids[i]);
    /* Variant bits vary over the allowed four values only: check that the
     * random part is not constant. */
    bool differs = false;
    for (int i = 1; i < N && !differs; i++)
        differs = strcmp(ids[i] + 24, ids[0] + 24) != 0;
    assert_true(differs);
}

static void test_uuid7(void **state)
{
    (void)state;
    check_uuid7s(false);
}

static void test_uuid7_weak(void **state)
{
    (void)state;
    check_uuid7s(true);
    /* Another thread's generator is seeded on its own: its first ids are not
     * this thread's sequence (two threads must never hand out the same
     * request ids). */
    char mine[UUID_STR_LEN], theirs[UUID_STR_LEN];
    util_uuid7_weak(mine);
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, weak_id_thread, theirs), 0);
    assert_int_equal(pthread_join(t, NULL), 0);
    assert_string_not_equal(mine + 14, theirs + 14); /* past the time prefix */
}

static void test_uuid_bytes_round_trip(void **state)
{
    (void)state;
    static const uint8_t want[16] = {0x01, 0x7f, 0x22, 0xe2, 0x79, 0xb0, 0x7c, 0xc3,
                                     0x98, 0xc4, 0xdc, 0x0c, 0x0c, 0x07, 0x39, 0x8f};
    uint8_t b[16];
    assert_true(util_uuid_to_bytes(SID, b));
    assert_memory_equal(b, want, 16);
    char s[UUID_STR_LEN];
    util_uuid_from_bytes(b, s);
    assert_string_equal(s, SID);

    /* Upper case in, lower case out. */
    assert_true(util_uuid_to_bytes("017F22E2-79B0-7CC3-98C4-DC0C0C07398F", b));
    assert_memory_equal(b, want, 16);
    util_uuid_from_bytes(b, s);
    assert_string_equal(s, SID);

    uint8_t all[16];
    for (int i = 0; i < 256; i++) {
        for (int k = 0; k < 16; k++)
            all[k] = (uint8_t)(i * 17 + k * 31);
        util_uuid_from_bytes(all, s);
        assert_true(util_uuid_to_bytes(s, b));
        assert_memory_equal(b, all, 16);
    }
    util_uuid_from_bytes((const uint8_t[16]){0}, s);
    assert_string_equal(s, "00000000-0000-0000-0000-000000000000");
}

static void test_is_uuid_refusals(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "",
        "017f22e2-79b0-7cc3-98c4-dc0c0c07398",    /* 35 */
        "017f22e2-79b0-7cc3-98c4-dc0c0c07398f0",  /* 37 */
        "017f22e279b07cc398c4dc0c0c07398f",       /* no hyphens */
        "017f22e2-79b07-cc3-98c4-dc0c0c07398f",   /* hyphen moved */
        "017f22e2_79b0_7cc3_98c4_dc0c0c07398f",
        "017f22e2-79b0-7cc3-98c4-dc0c0c07398g",   /* not hex */
        "{017f22e2-79b0-7cc3-98c4-dc0c0c07398f}",
        "urn:uuid:017f22e2-79b0-7cc3-98c4-dc0c0c07398f",
        " 017f22e2-79b0-7cc3-98c4-dc0c0c07398",
        "017f22e2-79b0-7cc3-98c4-dc0c0c07398 ",
        "017f22e2-79b0-7cc3-98c4+dc0c0c07398f",
        "0x7f22e2-79b0-7cc3-98c4-dc0c0c07398f",
        "017f22e2-79b0-7cc3-98c4-dc0c0c0739\xc3\xa9",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (util_is_uuid(bad[i]))
            fail_msg("'%s' accepted as a UUID", bad[i]);
    assert_false(util_is_uuid(NULL));
    assert_true(util_is_uuid(SID));
}

/* ---- time, numbers, buffers ---- */

static void test_rfc3339(void **state)
{
    (void)state;
    char out[RFC3339_LEN];
    util_rfc3339(0, out);
    assert_string_equal(out, "1970-01-01T00:00:00Z");
    util_rfc3339(1795900638, out); /* checked with Python's datetime */
    assert_string_equal(out, "2026-11-28T21:17:18Z");
    util_rfc3339(951782400, out); /* a leap day */
    assert_string_equal(out, "2000-02-29T00:00:00Z");
    util_rfc3339(2147483647, out);
    assert_string_equal(out, "2038-01-19T03:14:07Z");
    util_rfc3339(2147483648, out); /* past 32-bit time_t */
    assert_string_equal(out, "2038-01-19T03:14:08Z");
    assert_int_equal(strlen(out), RFC3339_LEN - 1);

    int64_t now = util_now(), now_ms = util_now_ms();
    assert_true(now_ms / 1000 - now <= 1 && now_ms / 1000 >= now);
    int64_t m1 = util_mono_ms(), m2 = util_mono_ms();
    assert_true(m2 >= m1);
}

static void test_parse_int(void **state)
{
    (void)state;
    int64_t v = -77;
    assert_true(util_parse_int("0", 0, 10, &v));
    assert_int_equal(v, 0);
    assert_true(util_parse_int("10", 0, 10, &v));
    assert_int_equal(v, 10);
    assert_true(util_parse_int("5", 5, 5, &v));
    assert_true(util_parse_int("-5", -5, 5, &v));
    assert_int_equal(v, -5);
    assert_true(util_parse_int("007", 0, 10, &v));
    assert_int_equal(v, 7);
    assert_true(util_parse_int("9223372036854775807", 0, INT64_MAX, &v));
    assert_int_equal(v, INT64_MAX);
    assert_true(util_parse_int("-9223372036854775807", -INT64_MAX, 0, &v));
    assert_int_equal(v, -INT64_MAX);

    v = -77;
    static const struct {
        const char *s;
        int64_t min, max;
    } bad[] = {
        {"11", 0, 10},   {"-1", 0, 10},  {"4", 5, 10},   {"-6", -5, 5},
        {"", 0, 10},     {"-", -5, 5},   {"+1", 0, 10},  {" 1", 0, 10},
        {"1 ", 0, 10},   {"1x", 0, 10},  {"0x1", 0, 10}, {"1.0", 0, 10},
        {"1e3", 0, 5000}, {"--1", -5, 5}, {"\xd9\xa1", 0, 10}, /* Arabic-Indic one */
        {"9223372036854775808", 0, INT64_MAX},
        {"99999999999999999999999", 0, INT64_MAX},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (util_parse_int(bad[i].s, bad[i].min, bad[i].max, &v))
            fail_msg("'%s' accepted in [%lld, %lld]", bad[i].s, (long long)bad[i].min,
                     (long long)bad[i].max);
    assert_false(util_parse_int(NULL, 0, 10, &v));
    assert_int_equal(v, -77); /* untouched on failure */
}

static void test_buf_cap(void **state)
{
    (void)state;
    struct buf b;
    buf_init(&b, 10);
    assert_true(buf_appends(&b, "hello"));
    assert_int_equal(b.len, 5);
    assert_false(buf_appends(&b, "world!")); /* 11 > 10 */
    assert_int_equal(b.len, 5);
    assert_string_equal(b.data, "hello");
    assert_true(buf_appends(&b, "world")); /* exactly 10 */
    assert_string_equal(b.data, "helloworld");
    assert_false(buf_append(&b, "x", 1));
    assert_false(buf_printf(&b, "%d", 1));
    assert_true(buf_append(&b, "", 0));
    assert_int_equal(b.len, 10);
    assert_string_equal(b.data, "helloworld");
    /* Huge n must not wrap the size arithmetic. */
    assert_false(buf_append(&b, "x", SIZE_MAX));
    assert_false(buf_append(&b, "x", SIZE_MAX - 5));
    assert_string_equal(b.data, "helloworld");
    char *s = buf_steal(&b);
    assert_string_equal(s, "helloworld");
    free(s);
    assert_null(b.data);
    assert_int_equal(b.len, 0);

    /* printf larger than its 512-byte stack buffer, and NUL termination. */
    buf_init(&b, 4096);
    char big[1000];
    memset(big, 'q', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    assert_true(buf_printf(&b, "<%s>", big));
    assert_int_equal(b.len, 1001);
    assert_int_equal(b.data[0], '<');
    assert_int_equal(b.data[1000], '>');
    assert_int_equal(b.data[1001], '\0');
    assert_false(buf_printf(&b, "%s%s%s%s", big, big, big, big)); /* past 4096 */
    assert_int_equal(b.len, 1001);
    buf_wipe_free(&b);
    assert_null(b.data);

    /* An empty buffer steals as "". */
    buf_init(&b, 10);
    s = buf_steal(&b);
    assert_non_null(s);
    assert_string_equal(s, "");
    free(s);
    buf_free(&b);

    assert_true(util_ascii_ieq("HeLLo", "hello"));
    assert_false(util_ascii_ieq("hello", "hello!"));
    assert_false(util_ascii_ieq("hello!", "hello"));
    assert_null(util_strdup(NULL));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_refresh_round_trip),
        cmocka_unit_test(test_refresh_generation_changes_token),
        cmocka_unit_test(test_refresh_forgery_any_character),
        cmocka_unit_test(test_refresh_wrong_key),
        cmocka_unit_test(test_refresh_wrong_length),
        cmocka_unit_test(test_refresh_non_canonical_base64url),
        cmocka_unit_test(test_refresh_wrong_version),
        cmocka_unit_test(test_uuid7),
        cmocka_unit_test(test_uuid7_weak),
        cmocka_unit_test(test_uuid_bytes_round_trip),
        cmocka_unit_test(test_is_uuid_refusals),
        cmocka_unit_test(test_rfc3339),
        cmocka_unit_test(test_parse_int),
        cmocka_unit_test(test_buf_cap),
    };
    return cmocka_run_group_tests_name("core_tokens", tests, NULL, NULL);
}
