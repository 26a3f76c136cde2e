/* SPDX-License-Identifier: Apache-2.0 */
/*
 * TOTP (src/core/totp.c): the RFC 6238 Appendix B SHA-1 vectors (8 digits,
 * and the same truncated to 6), the RFC 4226 Appendix D HOTP values, the
 * RFC 4648 section 10 base32 vectors and refusals, the verification window,
 * replay refusal, malformed codes and the otpauth URI. Values not in an RFC
 * (window neighbours, a code shared by two steps, base32 of other bytes,
 * the URIs) were computed with /usr/bin/python3 (hmac, hashlib, base64,
 * urllib.parse.quote(s, safe='')), independently of this C code.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "core/totp.h"

/* RFC 6238 Appendix B and RFC 4226 Appendix D: the ASCII "1234567890" x2. */
static const uint8_t RFC_SECRET[20] = "12345678901234567890";

static enum totp_rc verify(const char *code, int64_t now, int64_t last, int64_t *step)
{
    return totp_verify(RFC_SECRET, sizeof RFC_SECRET, code, strlen(code), now, 1, last, step);
}

/* ---- codes ---- */

static void test_rfc6238_sha1_vectors(void **state)
{
    (void)state;
    static const struct {
        int64_t t;
        uint64_t step;
        uint32_t code8, code6;
    } V[] = {
        {59, 1, 94287082, 287082},
        {1111111109, 0x23523EC, 7081804, 81804},
        {1111111111, 0x23523ED, 14050471, 50471},
        {1234567890, 0x273EF07, 89005924, 5924},
        {2000000000, 0x3F940AA, 69279037, 279037},
        {20000000000, 0x27BC86AA, 65353130, 353130},
    };
    for (size_t i = 0; i < sizeof V / sizeof V[0]; i++) {
        assert_int_equal(totp_counter(V[i].t), V[i].step);
        assert_int_equal(totp_code(RFC_SECRET, 20, V[i].step, 8), V[i].code8);
        assert_int_equal(totp_code(RFC_SECRET, 20, V[i].step, 6), V[i].code6);
    }
}

static void test_rfc4226_hotp_vectors(void **state)
{
    (void)state;
    static const uint32_t V[10] = {755224, 287082, 359152, 969429, 338314,
                                   254676, 287922, 162583, 399871, 520489};
    for (uint64_t c = 0; c < 10; c++)
        assert_int_equal(totp_code(RFC_SECRET, 20, c, 6), V[c]);
}

static void test_counter_and_code_edges(void **state)
{
    (void)state;
    assert_int_equal(totp_counter(0), 0);
    assert_int_equal(totp_counter(29), 0);
    assert_int_equal(totp_counter(30), 1);
    assert_int_equal(totp_counter(-1), -1); /* floor, not truncation */
    assert_int_equal(totp_counter(-30), -1);
    assert_int_equal(totp_counter(-31), -2);
    assert_int_equal(totp_code(RFC_SECRET, 20, 0, 5), TOTP_CODE_ERROR);
    assert_int_equal(totp_code(RFC_SECRET, 20, 0, 9), TOTP_CODE_ERROR);
    assert_int_equal(totp_code(RFC_SECRET, 15, 0, 6), TOTP_CODE_ERROR);
    assert_int_equal(totp_code(NULL, 20, 0, 6), TOTP_CODE_ERROR);
    uint8_t big[TOTP_SECRET_MAX_BYTES + 1] = {0};
    assert_int_equal(totp_code(big, sizeof big, 0, 6), TOTP_CODE_ERROR);
    assert_int_not_equal(totp_code(big, TOTP_SECRET_MAX_BYTES, 0, 6), TOTP_CODE_ERROR);
}

static void test_secret_new(void **state)
{
    (void)state;
    uint8_t a[TOTP_SECRET_BYTES], b[TOTP_SECRET_BYTES];
    assert_true(totp_secret_new(a));
    assert_true(totp_secret_new(b));
    /* Two 160-bit draws are equal with probability 2^-160. */
    assert_memory_not_equal(a, b, sizeof a);
}

/* ---- base32 ---- */

static void test_base32_rfc4648_vectors(void **state)
{
    (void)state;
    static const struct {
        const char *raw, *padded, *bare;
    } V[] = {
        {"", "", ""},
        {"f", "MY======", "MY"},
        {"fo", "MZXQ====", "MZXQ"},
        {"foo", "MZXW6===", "MZXW6"},
        {"foob", "MZXW6YQ=", "MZXW6YQ"},
        {"fooba", "MZXW6YTB", "MZXW6YTB"},
        {"foobar", "MZXW6YTBOI======", "MZXW6YTBOI"},
    };
    for (size_t i = 0; i < sizeof V / sizeof V[0]; i++) {
        size_t n = strlen(V[i].raw);
        char enc[32];
        assert_true(totp_base32_encode((const uint8_t *)V[i].raw, n, enc, sizeof enc));
        assert_string_equal(enc, V[i].bare);
        /* Exact capacity fits, one less does not and leaves out alone. */
        assert_true(totp_base32_encode((const uint8_t *)V[i].raw, n, enc, strlen(V[i].bare) + 1));
        memset(enc, 'x', sizeof enc);
        assert_false(totp_base32_encode((const uint8_t *)V[i].raw, n, enc, strlen(V[i].bare)));
        assert_int_equal(enc[0], 'x');

        uint8_t dec[16];
        size_t len = 99;
        assert_true(totp_base32_decode(V[i].padded, strlen(V[i].padded), dec, sizeof dec, &len));
        assert_int_equal(len, n);
        assert_memory_equal(dec, V[i].raw, n);
        len = 99;
        assert_true(totp_base32_decode(V[i].bare, strlen(V[i].bare), dec, sizeof dec, &len));
        assert_int_equal(len, n);
        assert_memory_equal(dec, V[i].raw, n);
    }
}

static void test_base32_other_bytes(void **state)
{
    (void)state;
    uint8_t seq[20];
    for (size_t i = 0; i < sizeof seq; i++)
        seq[i] = (uint8_t)i;
    char enc[TOTP_BASE32_LEN(20) + 1];
    assert_int_equal(sizeof enc, 33);
    assert_true(totp_base32_encode(seq, sizeof seq, enc, sizeof enc));
    assert_string_equal(enc, "AAAQEAYEAUDAOCAJBIFQYDIOB4IBCEQT");
    assert_true(totp_base32_encode(RFC_SECRET, 20, enc, sizeof enc));
    assert_string_equal(enc, "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ");

    /* Lower case and groups of four, as apps display secrets. */
    static const char *spaced = " gezd gnbv gy3t qojq GEZD GNBV gy3t qojq ";
    uint8_t dec[TOTP_SECRET_MAX_BYTES];
    size_t len = 0;
    assert_true(totp_base32_decode(spaced, strlen(spaced), dec, sizeof dec, &len));
    assert_int_equal(len, 20);
    assert_memory_equal(dec, RFC_SECRET, 20);

    /* 64 bytes 0xff, 0xfe, ... 0xc0: every alphabet letter appears. */
    static const char *b64 = "777P37H37L47R57W6X2PH4XR6DX653PM5PVOT2HH43S6JY7C4HQN7XW53TN5VWOY"
                             "27LNLVGT2LI5BT6OZXGMXSWJZDD4NROEYPBMDQA=";
    assert_true(totp_base32_decode(b64, strlen(b64), dec, sizeof dec, &len));
    assert_int_equal(len, 64);
    for (size_t i = 0; i < 64; i++)
        assert_int_equal(dec[i], 0xff - i);
    char enc64[TOTP_BASE32_LEN(64) + 1];
    assert_true(totp_base32_encode(dec, 64, enc64, sizeof enc64));
    assert_int_equal(strncmp(enc64, b64, strlen(b64) - 1), 0);
    assert_int_equal(strlen(enc64), strlen(b64) - 1);
}

static void test_base32_refusals(void **state)
{
    (void)state;
    static const char *BAD[] = {
        "MZXW6YT0",   /* 0, 1, 8 and 9 are not in the alphabet */
        "MZXW6YT1", "MZXW6YT8", "MZXW6YT9", "MZ-W", "MZ\tXW", "MZXW\n", "MZ+W", "MZ/W",
        "MZ\xc3\xa9W", /* a non-ASCII letter */
        "MY=Y",       /* data after padding */
        "MY=",        /* incomplete padding */
        "MY=======",  /* too much padding */
        "MZXW6YTB========", /* padding after a whole group */
        "M", "MZX", "MZXW6Y", /* lengths no byte string has */
        "MZ", /* non-zero trailing bits (Python accepts it as "f") */
        "=",
    };
    uint8_t dec[16];
    for (size_t i = 0; i < sizeof BAD / sizeof BAD[0]; i++) {
        size_t len = 77;
        memset(dec, 0xaa, sizeof dec);
        assert_false(totp_base32_decode(BAD[i], strlen(BAD[i]), dec, sizeof dec, &len));
        assert_int_equal(len, 77);
        assert_int_equal(dec[0], 0xaa);
    }
    /* An embedded NUL is a bad character too. */
    size_t len = 77;
    assert_false(totp_base32_decode("MZ\0W", 4, dec, sizeof dec, &len));

    /* Output that does not fit: "foobar" needs 6 bytes. */
    assert_false(totp_base32_decode("MZXW6YTBOI", 10, dec, 5, &len));
    assert_int_equal(dec[0], 0xaa);
    assert_true(totp_base32_decode("MZXW6YTBOI", 10, dec, 6, &len));
    assert_int_equal(len, 6);

    /* Overlong input, even with room: 256 characters pass, 257 do not. */
    char longin[TOTP_BASE32_MAX_CHARS + 2];
    memset(longin, 'A', sizeof longin);
    uint8_t big[TOTP_BASE32_MAX_CHARS];
    assert_true(totp_base32_decode(longin, TOTP_BASE32_MAX_CHARS, big, sizeof big, &len));
    assert_int_equal(len, TOTP_BASE32_MAX_CHARS * 5 / 8);
    assert_false(totp_base32_decode(longin, TOTP_BASE32_MAX_CHARS + 1, big, sizeof big, &len));
    memset(longin, ' ', sizeof longin); /* spaces count too */
    assert_false(totp_base32_decode(longin, TOTP_BASE32_MAX_CHARS + 1, big, sizeof big, &len));
}

/* ---- verification ---- */

static void test_verify_window(void **state)
{
    (void)state;
    int64_t step = -5;
    /* 081804 is the code of step 37037036 (t = 1111111109). */
    assert_int_equal(verify("081804", 1111111109, -1, &step), TOTP_OK);
    assert_int_equal(step, 37037036);
    step = -5;
    assert_int_equal(verify("081804", 1111111109 - 30, -1, &step), TOTP_OK); /* +1 */
    assert_int_equal(step, 37037036);
    step = -5;
    assert_int_equal(verify("081804", 1111111109 + 30, -1, &step), TOTP_OK); /* -1 */
    assert_int_equal(step, 37037036);
    step = -5;
    assert_int_equal(verify("081804", 1111111109 - 60, -1, &step), TOTP_MISMATCH); /* +2 */
    assert_int_equal(verify("081804", 1111111109 + 60, -1, &step), TOTP_MISMATCH); /* -2 */
    assert_int_equal(step, -5);
    /* Step 37037038 is 266759: last second of the step before it is +1. */
    assert_int_equal(verify("266759", 37037037 * 30 + 29, -1, &step), TOTP_OK);
    assert_int_equal(step, 37037038);
    /* Wider window: +2 accepted with window 2. */
    assert_int_equal(totp_verify(RFC_SECRET, 20, "081804", 6, 1111111109 - 60, 2, -1, &step),
                     TOTP_OK);
    /* Window 0: the current step only. */
    assert_int_equal(totp_verify(RFC_SECRET, 20, "081804", 6, 1111111109 - 30, 0, -1, &step),
                     TOTP_MISMATCH);
    assert_int_equal(verify("000000", 1111111109, -1, &step), TOTP_MISMATCH);
    /* Near the epoch: steps before 0 do not exist; step 0's code is 755224. */
    assert_int_equal(verify("755224", 0, -1, &step), TOTP_OK);
    assert_int_equal(step, 0);
}

static void test_verify_replay(void **state)
{
    (void)state;
    int64_t step = -5;
    assert_int_equal(verify("081804", 1111111109, -1, &step), TOTP_OK);
    assert_int_equal(step, 37037036);
    /* The same code again, a second later. */
    step = -5;
    assert_int_equal(verify("081804", 1111111110, 37037036, &step), TOTP_REPLAY);
    assert_int_equal(step, -5);
    /* An older code (step 37037035, 731029) after the newer one. */
    assert_int_equal(verify("731029", 1111111109, 37037036, &step), TOTP_REPLAY);
    /* The next step's code (050471) is still fine. */
    assert_int_equal(verify("050471", 1111111109, 37037036, &step), TOTP_OK);
    assert_int_equal(step, 37037037);
    /* Whatever was used last in the future refuses all current codes. */
    assert_int_equal(verify("081804", 1111111109, 37037037, &step), TOTP_REPLAY);
    /* A wrong code stays a mismatch, not a replay. */
    assert_int_equal(verify("123456", 1111111109, 37037037, &step), TOTP_MISMATCH);
}

static void test_verify_code_of_two_steps(void **state)
{
    (void)state;
    /* 468457 is the code of both step 153567 and step 153569 (found by a
     * Python search over the RFC secret); at step 153568 both are in the
     * window. The later step is taken, so that the code cannot pass again. */
    int64_t now = 153568 * 30, step = -5;
    assert_int_equal(verify("468457", now, -1, &step), TOTP_OK);
    assert_int_equal(step, 153569);
    assert_int_equal(verify("468457", now + 1, step, &step), TOTP_REPLAY);
    assert_int_equal(verify("468457", now, 153567, &step), TOTP_OK);
    assert_int_equal(step, 153569);
    assert_int_equal(verify("468457", now, 153568, &step), TOTP_OK);
    assert_int_equal(step, 153569);
}

static void test_verify_malformed(void **state)
{
    (void)state;
    static const char *BAD[] = {"08180", "0818040", "08180a", "O81804", "", "081 804",
                                " 81804", "+81804", "-81804", "08180\xd9"};
    int64_t step = -5;
    for (size_t i = 0; i < sizeof BAD / sizeof BAD[0]; i++)
        assert_int_equal(verify(BAD[i], 1111111109, -1, &step), TOTP_MALFORMED);
    assert_int_equal(totp_verify(RFC_SECRET, 20, "081804\0", 7, 1111111109, 1, -1, &step),
                     TOTP_MALFORMED);
    assert_int_equal(totp_verify(RFC_SECRET, 20, NULL, 6, 1111111109, 1, -1, &step),
                     TOTP_MALFORMED);
    /* Unusable arguments are the caller's error, not the user's. */
    assert_int_equal(totp_verify(RFC_SECRET, 10, "081804", 6, 1111111109, 1, -1, &step),
                     TOTP_ERROR);
    assert_int_equal(totp_verify(RFC_SECRET, 20, "081804", 6, 1111111109, TOTP_MAX_WINDOW + 1,
                                 -1, &step),
                     TOTP_ERROR);
    assert_int_equal(totp_verify(RFC_SECRET, 20, "081804", 6, 1111111109, 1, -1, NULL),
                     TOTP_ERROR);
    assert_int_equal(step, -5);
}

/* ---- URI ---- */

static void test_uri(void **state)
{
    (void)state;
    static const char *EXPECTED =
        "otpauth://totp/jwtd%3A%20Example%20Co:alice%20smith%40example.com"
        "?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=jwtd%3A%20Example%20Co"
        "&algorithm=SHA1&digits=6&period=30";
    char out[512];
    assert_true(totp_uri(RFC_SECRET, 20, "jwtd: Example Co", "alice smith@example.com", out,
                         sizeof out));
    assert_string_equal(out, EXPECTED);

    /* Exact fit, and one byte short (out untouched). */
    size_t n = strlen(EXPECTED);
    assert_true(totp_uri(RFC_SECRET, 20, "jwtd: Example Co", "alice smith@example.com", out,
                         n + 1));
    assert_string_equal(out, EXPECTED);
    memset(out, 'x', sizeof out);
    assert_false(totp_uri(RFC_SECRET, 20, "jwtd: Example Co", "alice smith@example.com", out, n));
    assert_int_equal(out[0], 'x');

    /* UTF-8 is percent-encoded byte by byte; unreserved -._~ stay. */
    assert_true(totp_uri(RFC_SECRET, 20, "Soci\xc3\xa9t\xc3\xa9", "b.o-b_~", out, sizeof out));
    assert_string_equal(out, "otpauth://totp/Soci%C3%A9t%C3%A9:b.o-b_~"
                             "?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=Soci%C3%A9t%C3%A9"
                             "&algorithm=SHA1&digits=6&period=30");

    /* Refusals: empty or overlong labels, bad secrets. */
    char longname[TOTP_LABEL_MAX_BYTES + 2];
    memset(longname, 'a', sizeof longname);
    longname[TOTP_LABEL_MAX_BYTES + 1] = '\0';
    assert_false(totp_uri(RFC_SECRET, 20, "", "bob", out, sizeof out));
    assert_false(totp_uri(RFC_SECRET, 20, "jwtd", "", out, sizeof out));
    assert_false(totp_uri(RFC_SECRET, 20, NULL, "bob", out, sizeof out));
    assert_false(totp_uri(RFC_SECRET, 20, "jwtd", longname, out, sizeof out));
    assert_false(totp_uri(RFC_SECRET, 10, "jwtd", "bob", out, sizeof out));
    char big[2048];
    longname[TOTP_LABEL_MAX_BYTES] = '\0';
    assert_true(totp_uri(RFC_SECRET, 20, "jwtd", longname, big, sizeof big));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rfc6238_sha1_vectors),
        cmocka_unit_test(test_rfc4226_hotp_vectors),
        cmocka_unit_test(test_counter_and_code_edges),
        cmocka_unit_test(test_secret_new),
        cmocka_unit_test(test_base32_rfc4648_vectors),
        cmocka_unit_test(test_base32_other_bytes),
        cmocka_unit_test(test_base32_refusals),
        cmocka_unit_test(test_verify_window),
        cmocka_unit_test(test_verify_replay),
        cmocka_unit_test(test_verify_code_of_two_steps),
        cmocka_unit_test(test_verify_malformed),
        cmocka_unit_test(test_uri),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
