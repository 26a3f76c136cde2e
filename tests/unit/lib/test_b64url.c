/* SPDX-License-Identifier: Apache-2.0 */
/*
 * base64url: RFC 4648 §10 vectors, canonical-form rejection, capacity rules,
 * and round trips checked against OpenSSL's standard base64 as an oracle.
 */
#include "testutil.h"

#include <openssl/evp.h>
#include <openssl/rand.h>

#include <stdlib.h>
#include <string.h>

static jwtd_err dec(const char *s, uint8_t *out, size_t cap, size_t *len)
{
    return jwtd__b64url_decode(s, strlen(s), out, cap, len);
}

static void test_rfc4648_vectors(void **state)
{
    static const struct {
        const char *plain, *enc;
    } v[] = {
        {"", ""},         {"f", "Zg"},         {"fo", "Zm8"},       {"foo", "Zm9v"},
        {"foob", "Zm9vYg"}, {"fooba", "Zm9vYmE"}, {"foobar", "Zm9vYmFy"},
    };
    (void)state;
    for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
        char out[16];
        uint8_t back[16];
        size_t n = strlen(v[i].plain), len = 99;

        assert_int_equal(jwtd__b64url_encoded_len(n), strlen(v[i].enc));
        assert_int_equal(jwtd__b64url_encode((const uint8_t *)v[i].plain, n, out, sizeof(out)),
                         strlen(v[i].enc));
        assert_string_equal(out, v[i].enc);
        assert_int_equal(dec(v[i].enc, back, sizeof(back), &len), JWTD_OK);
        assert_int_equal(len, n);
        assert_memory_equal(back, v[i].plain, n);
    }
}

static void test_url_alphabet(void **state)
{
    static const uint8_t bytes[] = {0xfb, 0xff, 0xbf};
    char out[8];
    uint8_t back[4];
    size_t len = 0;

    (void)state;
    assert_int_equal(jwtd__b64url_encode(bytes, 3, out, sizeof(out)), 4);
    assert_string_equal(out, "-_-_");
    assert_int_equal(jwtd__b64url_encode(bytes, 2, out, sizeof(out)), 3);
    assert_string_equal(out, "-_8");
    assert_int_equal(dec("-_-_", back, sizeof(back), &len), JWTD_OK);
    assert_int_equal(len, 3);
    assert_memory_equal(back, bytes, 3);
    /* The standard alphabet's + and / are not base64url. */
    assert_int_equal(dec("+/+/", back, sizeof(back), &len), JWTD_ERR_BASE64);
    assert_int_equal(dec("-_+_", back, sizeof(back), &len), JWTD_ERR_BASE64);
}

static void test_rejects_padding(void **state)
{
    uint8_t out[16];
    size_t len;

    (void)state;
    assert_int_equal(dec("Zg==", out, sizeof(out), &len), JWTD_ERR_BASE64);
    assert_int_equal(dec("Zm8=", out, sizeof(out), &len), JWTD_ERR_BASE64);
    assert_int_equal(dec("Zg=", out, sizeof(out), &len), JWTD_ERR_BASE64);
    assert_int_equal(dec("====", out, sizeof(out), &len), JWTD_ERR_BASE64);
}

static void test_rejects_whitespace_and_junk(void **state)
{
    uint8_t out[16];
    size_t len;

    (void)state;
    assert_int_equal(dec("Zm9v Yg", out, sizeof(out), &len), JWTD_ERR_BASE64);
    assert_int_equal(dec("Zm9v\nYmFy", out, sizeof(out), &len), JWTD_ERR_BASE64);
    assert_int_equal(dec(" Zm9v", out, sizeof(out), &len), JWTD_ERR_BASE64);
    assert_int_equal(dec("Zm9v\t", out, sizeof(out), &len), JWTD_ERR_BASE64);
    assert_int_equal(dec("Zm9v!A", out, sizeof(out), &len), JWTD_ERR_BASE64);
    assert_int_equal(dec("Zm.v", out, sizeof(out), &len), JWTD_ERR_BASE64);
    /* A NUL inside the counted input is not an early end. */
    assert_int_equal(jwtd__b64url_decode("Zm\0v", 4, out, sizeof(out), &len), JWTD_ERR_BASE64);
    /* High bytes (UTF-8) are not in the alphabet. */
    assert_int_equal(dec("Zm9\xc3\xa9", out, sizeof(out), &len), JWTD_ERR_BASE64);
}

static void test_rejects_length_mod4_eq_1(void **state)
{
    uint8_t out[16];
    size_t len;

    (void)state;
    assert_int_equal(dec("Z", out, sizeof(out), &len), JWTD_ERR_BASE64);
    assert_int_equal(dec("Zm9vY", out, sizeof(out), &len), JWTD_ERR_BASE64);
    assert_int_equal(dec("A", out, sizeof(out), &len), JWTD_ERR_BASE64);
}

static void test_rejects_nonzero_unused_bits(void **state)
{
    uint8_t out[16];
    size_t len = 0;

    (void)state;
    /* "AA" is the one encoding of 0x00; "AB".."AP" decode to the same byte
     * in a lenient decoder. */
    assert_int_equal(dec("AA", out, sizeof(out), &len), JWTD_OK);
    assert_int_equal(len, 1);
    assert_int_equal(out[0], 0);
    assert_int_equal(dec("AB", out, sizeof(out), &len), JWTD_ERR_BASE64);
    assert_int_equal(dec("AP", out, sizeof(out), &len), JWTD_ERR_BASE64);
    assert_int_equal(dec("AQ", out, sizeof(out), &len), JWTD_OK); /* 0x01 */
    assert_int_equal(dec("Zh", out, sizeof(out), &len), JWTD_ERR_BASE64);
    /* Three characters: two unused bits. */
    assert_int_equal(dec("Zm8", out, sizeof(out), &len), JWTD_OK);
    assert_int_equal(dec("Zm9", out, sizeof(out), &len), JWTD_ERR_BASE64);
    assert_int_equal(dec("Zm-", out, sizeof(out), &len), JWTD_ERR_BASE64);
    assert_int_equal(dec("Zm9vZm8", out, sizeof(out), &len), JWTD_OK);
    assert_int_equal(dec("Zm9vZm9", out, sizeof(out), &len), JWTD_ERR_BASE64);
}

static void test_capacity(void **state)
{
    uint8_t out[8];
    char enc[8];
    size_t len = 0;

    (void)state;
    assert_int_equal(dec("Zm9vYmFy", out, 5, &len), JWTD_ERR_TOO_LARGE);
    assert_int_equal(dec("Zm9vYmFy", out, 6, &len), JWTD_OK);
    assert_int_equal(len, 6);
    /* Encoding needs room for the NUL, and writes nothing when short. */
    memset(enc, 'x', sizeof(enc));
    assert_int_equal(jwtd__b64url_encode((const uint8_t *)"foo", 3, enc, 4), 0);
    assert_int_equal(enc[0], 'x');
    assert_int_equal(jwtd__b64url_encode((const uint8_t *)"foo", 3, enc, 5), 4);
    assert_int_equal(jwtd__b64url_decoded_max(8), 6);
    assert_int_equal(jwtd__b64url_decoded_max(7), 5);
    assert_int_equal(jwtd__b64url_decoded_max(6), 4);
    assert_int_equal(jwtd__b64url_encoded_len(SIZE_MAX), SIZE_MAX);
    assert_int_equal(jwtd__b64url_decode(NULL, 1, out, sizeof(out), &len), JWTD_ERR_INVALID_ARG);
}

/* Standard base64 from OpenSSL, converted to the URL alphabet, unpadded. */
static char *oracle(const uint8_t *in, size_t n)
{
    char *out = malloc(4 * ((n + 2) / 3) + 1);
    int len;

    assert_non_null(out);
    len = EVP_EncodeBlock((unsigned char *)out, in, (int)n);
    while (len > 0 && out[len - 1] == '=')
        len--;
    out[len] = '\0';
    for (int i = 0; i < len; i++)
        out[i] = out[i] == '+' ? '-' : out[i] == '/' ? '_' : out[i];
    return out;
}

static void test_round_trips(void **state)
{
    uint8_t in[300], back[300];

    (void)state;
    for (size_t n = 0; n <= sizeof(in); n++) {
        char enc[404];
        size_t len = 0;
        char *want;

        assert_int_equal(RAND_bytes(in, (int)sizeof(in)), 1);
        assert_int_equal(jwtd__b64url_encode(in, n, enc, sizeof(enc)),
                         jwtd__b64url_encoded_len(n));
        want = oracle(in, n);
        assert_string_equal(enc, want);
        free(want);
        assert_int_equal(dec(enc, back, sizeof(back), &len), JWTD_OK);
        assert_int_equal(len, n);
        assert_memory_equal(back, in, n);
        assert_true(len <= jwtd__b64url_decoded_max(strlen(enc)));
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rfc4648_vectors),
        cmocka_unit_test(test_url_alphabet),
        cmocka_unit_test(test_rejects_padding),
        cmocka_unit_test(test_rejects_whitespace_and_junk),
        cmocka_unit_test(test_rejects_length_mod4_eq_1),
        cmocka_unit_test(test_rejects_nonzero_unused_bits),
        cmocka_unit_test(test_capacity),
        cmocka_unit_test(test_round_trips),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
