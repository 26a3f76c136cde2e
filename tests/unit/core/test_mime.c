/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Mail format (src/core/mime.c): the exact bytes of a small message with a
 * fixed boundary, quoted-printable against Python's quopri (binascii) where
 * both follow RFC 2045 and against hand-derived RFC 2045 values where Python
 * does not (it lets a line with an encoded trailing blank reach 77-78
 * characters), RFC 2047 encoded-words checked against the decodings of
 * Python's email package (recorded below) and against OpenSSL's base64
 * decoder, header injection and address checks, caps, dates (Python's
 * email.utils.formatdate) and the random boundary.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "core/mime.h"

static struct mime_message base_message(void)
{
    struct mime_message m = {
        .from_name = "jwtd",
        .from_addr = "noreply@example.org",
        .to_name = NULL,
        .to_addr = "alice@example.com",
        .subject = "Reset your password",
        .date = 1700000000,
        .message_id = "q42.1700000000@jwtd.example.org",
        .text = "Hello,\n\nOpen https://auth.example.org/reset?t=abc to reset.\n",
        .html = "<p>Hello,</p>\n<p><a href=\"https://auth.example.org/reset?t=abc\">Reset</a></p>\n",
        .boundary = "=_test",
    };
    return m;
}

/* Not inlined: GCC 12 at -O3 then takes the message for a pointer to the
 * local `buf` itself (mime_build gets its address) and fails the -Werror
 * release build with -Wdangling-pointer at every use of the message. */
__attribute__((noinline)) static char *build_ok(const struct mime_message *m, size_t *ret_len)
{
    char *buf = NULL;
    size_t len = 0;
    assert_int_equal(mime_build(m, &buf, &len), MIME_OK);
    assert_non_null(buf);
    assert_int_equal(strlen(buf), len);
    *ret_len = len;
    return buf;
}

static enum mime_rc build_rc(const struct mime_message *m)
{
    char *buf = (char *)0x1;
    size_t len = 12345;
    enum mime_rc rc = mime_build(m, &buf, &len);
    if (rc == MIME_OK) {
        mime_free(buf, len);
    } else {
        /* Out-parameters are written only on success. */
        assert_ptr_equal(buf, (char *)0x1);
        assert_int_equal(len, 12345);
    }
    return rc;
}

/* The header block (up to the blank line), unfolded, as a new string. */
static char *header_value(const char *msg, const char *name)
{
    const char *end = strstr(msg, "\r\n\r\n");
    assert_non_null(end);
    size_t nlen = strlen(name);
    const char *p = msg;
    while (p < end) {
        if (strncmp(p, name, nlen) == 0 && p[nlen] == ':') {
            p += nlen + 1;
            char *out = malloc((size_t)(end - p) + 1);
            assert_non_null(out);
            size_t o = 0;
            while (p < end) {
                if (p[0] == '\r' && p[1] == '\n') {
                    if (p[2] != ' ' && p[2] != '\t')
                        break;
                    p += 2; /* unfolding removes the CRLF only */
                    continue;
                }
                out[o++] = *p++;
            }
            out[o] = '\0';
            return out;
        }
        p = strstr(p, "\r\n") + 2;
    }
    fail_msg("no %s header", name);
    return NULL;
}

/* The text/plain part of a message built with boundary "=_t". */
static char *text_part(const char *text)
{
    struct mime_message m = base_message();
    m.text = text;
    m.html = "x";
    m.boundary = "=_t";
    size_t len;
    char *msg = build_ok(&m, &len);
    static const char open[] =
        "--=_t\r\nContent-Type: text/plain; charset=UTF-8\r\n"
        "Content-Transfer-Encoding: quoted-printable\r\n\r\n";
    const char *start = strstr(msg, open);
    assert_non_null(start);
    start += sizeof open - 1;
    const char *end = strstr(start, "\r\n--=_t\r\n");
    assert_non_null(end);
    char *out = strndup(start, (size_t)(end - start));
    assert_non_null(out);
    mime_free(msg, len);
    return out;
}

static void assert_lines_within(const char *s, size_t max)
{
    for (const char *p = s; *p;) {
        const char *e = strstr(p, "\r\n");
        size_t n = e ? (size_t)(e - p) : strlen(p);
        if (n > max)
            fail_msg("line of %zu > %zu characters: %.*s", n, max, (int)n, p);
        p += n + (e ? 2 : 0);
    }
}

/* ---- the whole message ---- */

static void test_small_message_exact(void **state)
{
    (void)state;
    /* Written from RFC 5322/2045/2046 by hand; Python's email package
     * parses it without defects into these headers and the two parts with
     * CRLF line ends. */
    static const char expected[] =
        "From: jwtd <noreply@example.org>\r\n"
        "To: alice@example.com\r\n"
        "Subject: Reset your password\r\n"
        "Date: Tue, 14 Nov 2023 22:13:20 +0000\r\n"
        "Message-ID: <q42.1700000000@jwtd.example.org>\r\n"
        "MIME-Version: 1.0\r\n"
        "Auto-Submitted: auto-generated\r\n"
        "Content-Type: multipart/alternative;\r\n"
        " boundary=\"=_test\"\r\n"
        "\r\n"
        "--=_test\r\n"
        "Content-Type: text/plain; charset=UTF-8\r\n"
        "Content-Transfer-Encoding: quoted-printable\r\n"
        "\r\n"
        "Hello,\r\n"
        "\r\n"
        "Open https://auth.example.org/reset?t=3Dabc to reset.\r\n"
        "\r\n"
        "--=_test\r\n"
        "Content-Type: text/html; charset=UTF-8\r\n"
        "Content-Transfer-Encoding: quoted-printable\r\n"
        "\r\n"
        "<p>Hello,</p>\r\n"
        "<p><a href=3D\"https://auth.example.org/reset?t=3Dabc\">Reset</a></p>\r\n"
        "\r\n"
        "--=_test--\r\n";
    struct mime_message m = base_message();
    size_t len;
    char *msg = build_ok(&m, &len);
    assert_int_equal(len, sizeof expected - 1);
    assert_string_equal(msg, expected);
    mime_free(msg, len);

    /* CRLF in the bodies gives the same bytes as LF. */
    m.text = "Hello,\r\n\r\nOpen https://auth.example.org/reset?t=abc to reset.\r\n";
    m.html = "<p>Hello,</p>\r\n<p><a href=\"https://auth.example.org/reset?t=abc\">Reset</a></p>\r\n";
    msg = build_ok(&m, &len);
    assert_string_equal(msg, expected);
    mime_free(msg, len);
}

/* ---- quoted-printable ---- */

/* Python 3.11 quopri.encodestring(input) with LF turned into CRLF, equal
 * byte for byte; quopri.decodestring gives the input back. */
static const struct {
    const char *in, *out;
} QP_PYTHON[] = {
    {"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
     "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
     "xxxxxxxxxxxxxxxxxxxx", /* 200 x */
     "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx=\r\n"
     "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx=\r\n"
     "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"},
    {"a=b a=b a=b a=b a=b a=b a=b a=b a=b a=b a=b a=b a=b a=b a=b a=b a=b a=b a=b a=b a=b a=b "
     "a=b a=b a=b a=b a=b a=b a=b a=b ",
     "a=3Db a=3Db a=3Db a=3Db a=3Db a=3Db a=3Db a=3Db a=3Db a=3Db a=3Db a=3Db a=\r\n"
     "=3Db a=3Db a=3Db a=3Db a=3Db a=3Db a=3Db a=3Db a=3Db a=3Db a=3Db a=3Db a=3D=\r\n"
     "b a=3Db a=3Db a=3Db a=3Db a=3Db=20"},
    {"trailing  \t", "trailing  =09"},
    {"spaces  \nand tabs\t\t\nend ", "spaces =20\r\nand tabs\t=09\r\nend=20"},
    /* 76 characters fit on one line, 77 do not. */
    {"yyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyy",
     "yyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyy"},
    {"yyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyy",
     "yyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyy=\r\nyy"},
    /* An escape is never split by a soft break. */
    {"zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz=q",
     "zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz=\r\n=3Dq"},
    {"zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz=q",
     "zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz=\r\n=3Dq"},
    {"\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
     "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
     "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
     "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9", /* 40 e-acute */
     "=C3=A9=C3=A9=C3=A9=C3=A9=C3=A9=C3=A9=C3=A9=C3=A9=C3=A9=C3=A9=C3=A9=C3=A9=C3=\r\n"
     "=A9=C3=A9=C3=A9=C3=A9=C3=A9=C3=A9=C3=A9=C3=A9=C3=A9=C3=A9=C3=A9=C3=A9=C3=A9=\r\n"
     "=C3=A9=C3=A9=C3=A9=C3=A9=C3=A9=C3=A9=C3=A9=C3=A9=C3=A9=C3=A9=C3=A9=C3=A9=C3=\r\n"
     "=A9=C3=A9=C3=A9"},
    {"caf\xc3\xa9 = 100%\x01\x7f~", "caf=C3=A9 =3D 100%=01=7F~"},
};

static void test_qp_python_vectors(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof QP_PYTHON / sizeof QP_PYTHON[0]; i++) {
        char *got = text_part(QP_PYTHON[i].in);
        if (strcmp(got, QP_PYTHON[i].out) != 0)
            fail_msg("case %zu:\n got %s\nwant %s", i, got, QP_PYTHON[i].out);
        assert_lines_within(got, 76);
        free(got);
    }
}

/* Derived by hand from RFC 2045 section 6.7 and this module's documented
 * choices; Python's quopri.decodestring returns each input (line ends as
 * CRLF). */
static const struct {
    const char *in, *out;
} QP_RFC[] = {
    /* 73 b, a space, a tab. Encoding the final tab at column 74 would make
     * a 77-character line (Python's quopri writes that); rule 5 caps lines
     * at 76, so a soft break comes first, and the space before '=' may stay
     * literal. */
    {"bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb \t",
     "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb =\r\n=09"},
    /* 73 b and a tab: "=09" ends the line at exactly 76, which is allowed
     * (Python breaks one token earlier). */
    {"bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb\t",
     "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb=09"},
    /* A '.' or "From " opening an encoded line is encoded (dot-stuffing and
     * mbox safety), also after a soft break; elsewhere it stays. */
    {".dot\n..\nFrom me\nFrom\nx.y", "=2Edot\r\n=2E.\r\n=46rom me\r\nFrom\r\nx.y"},
    {"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.b",
     "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa=\r\n=2Eb"},
    {"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaFrom x",
     "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa=\r\n=46rom x"},
    /* A lone CR is data; CR LF and LF are line breaks. */
    {"a\rb\r\n c", "a=0Db\r\n c"},
    {"a\r\r\n", "a=0D\r\n"},
    {"\xf0\x9f\x94\x91 key", "=F0=9F=94=91 key"},
    {"", ""},
    {"\n", "\r\n"},
};

static void test_qp_rfc_vectors(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof QP_RFC / sizeof QP_RFC[0]; i++) {
        char *got = text_part(QP_RFC[i].in);
        if (strcmp(got, QP_RFC[i].out) != 0)
            fail_msg("case %zu:\n got %s\nwant %s", i, got, QP_RFC[i].out);
        assert_lines_within(got, 76);
        free(got);
    }
}

/* ---- RFC 2047 ---- */

static void test_non_ascii_headers_exact(void **state)
{
    (void)state;
    /* Python 3.11, email.message_from_bytes(policy=email.policy.default) on
     * this output gives back exactly these subject and display names;
     * email.header.decode_header agrees. */
    static const char subject[] =
        "\xd0\x92\xd0\xb0\xd1\x88 \xd0\xba\xd0\xbe\xd0\xb4 \xd0\xb2\xd0\xbe\xd1\x81\xd1\x81\xd1"
        "\x82\xd0\xb0\xd0\xbd\xd0\xbe\xd0\xb2\xd0\xbb\xd0\xb5\xd0\xbd\xd0\xb8\xd1\x8f \xd0\xbf"
        "\xd0\xb0\xd1\x80\xd0\xbe\xd0\xbb\xd1\x8f \xd0\xb4\xd0\xbb\xd1\x8f jwtd \xf0\x9f\x94\x91"
        " \xe2\x80\x94 \xd0\xb4\xd0\xb5\xd0\xb9\xd1\x81\xd1\x82\xd0\xb2\xd0\xb8\xd1\x82\xd0\xb5"
        "\xd0\xbb\xd0\xb5\xd0\xbd 15 \xd0\xbc\xd0\xb8\xd0\xbd\xd1\x83\xd1\x82";
    /* "Ваш код восстановления пароля для jwtd 🔑 — действителен 15 минут" */
    static const char expected_headers[] =
        "From: =?UTF-8?B?RG9lLCBKYW5l?= <noreply@example.org>\r\n"
        "To: =?UTF-8?B?Wm/DqyDDhXN0csO2bQ==?= <zoe@example.com>\r\n"
        "Subject: =?UTF-8?B?0JLQsNGIINC60L7QtCDQstC+0YHRgdGC0LDQvdC+0LLQu9C10L3QuNGP?=\r\n"
        " =?UTF-8?B?INC/0LDRgNC+0LvRjyDQtNC70Y8gand0ZCDwn5SRIOKAlCDQtNC10LnRgdGC?=\r\n"
        " =?UTF-8?B?0LLQuNGC0LXQu9C10L0gMTUg0LzQuNC90YPRgg==?=\r\n"
        "Date: Thu, 01 Jan 1970 00:00:00 +0000\r\n";
    struct mime_message m = base_message();
    m.from_name = "Doe, Jane"; /* ASCII, but a comma needs more than atoms */
    m.to_name = "Zo\xc3\xab \xc3\x85str\xc3\xb6m"; /* "Zoë Åström" */
    m.to_addr = "zoe@example.com";
    m.subject = subject;
    m.date = 0;
    size_t len;
    char *msg = build_ok(&m, &len);
    assert_memory_equal(msg, expected_headers, sizeof expected_headers - 1);
    mime_free(msg, len);
}

static bool utf8_whole(const unsigned char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        size_t k = s[i] < 0x80 ? 1 : s[i] >= 0xF0 ? 4 : s[i] >= 0xE0 ? 3 : s[i] >= 0xC0 ? 2 : 0;
        if (k == 0 || i + k > n)
            return false;
        for (size_t j = 1; j < k; j++)
            if ((s[i + j] & 0xC0) != 0x80)
                return false;
        i += k;
    }
    return true;
}

/* Decode an unfolded header value made only of B encoded-words with
 * OpenSSL's base64 decoder, checking each word's size and that it holds
 * whole characters. */
static char *decode_words(const char *v)
{
    size_t cap = strlen(v) + 1;
    char *out = malloc(cap);
    assert_non_null(out);
    size_t o = 0;
    const char *p = v;
    while (*p == ' ')
        p++;
    while (*p) {
        const char *sp = strchr(p, ' ');
        size_t n = sp ? (size_t)(sp - p) : strlen(p);
        assert_true(n <= 75);
        assert_true(n > 12);
        assert_memory_equal(p, "=?UTF-8?B?", 10);
        assert_memory_equal(p + n - 2, "?=", 2);
        size_t b = n - 12;
        assert_int_equal(b % 4, 0);
        unsigned char chunk[64];
        int got = EVP_DecodeBlock(chunk, (const unsigned char *)p + 10, (int)b);
        assert_true(got >= 0);
        size_t pad = (p[10 + b - 1] == '=') + (p[10 + b - 2] == '=');
        size_t clen = (size_t)got - pad;
        assert_true(utf8_whole(chunk, clen));
        memcpy(out + o, chunk, clen);
        o += clen;
        p += n;
        while (*p == ' ')
            p++;
    }
    out[o] = '\0';
    return out;
}

static void test_encoded_words_split(void **state)
{
    (void)state;
    /* Long subjects of 1-, 2-, 3- and 4-byte characters: every word at most
     * 75 characters with whole characters, every line at most 78, and the
     * words decode to the subject. */
    static const char *const units[] = {"\xc3\xa9", "\xe6\x97\xa5", "\xf0\x9f\x94\x91", "a\xc3\xa9",
                                        "ab\xf0\x9f\x94\x91", " "};
    for (size_t u = 0; u < sizeof units / sizeof units[0]; u++) {
        char subject[MIME_TEXT_MAX_BYTES + 1];
        size_t n = 0, ul = strlen(units[u]);
        while (n + ul <= MIME_TEXT_MAX_BYTES) {
            memcpy(subject + n, units[u], ul);
            n += ul;
        }
        subject[n] = '\0';
        struct mime_message m = base_message();
        m.subject = subject;
        m.to_name = subject + n - (n > 100 ? 100 - 100 % ul : 0); /* a long name too */
        size_t len;
        char *msg = build_ok(&m, &len);
        const char *hend = strstr(msg, "\r\n\r\n");
        char *headers = strndup(msg, (size_t)(hend - msg));
        assert_lines_within(headers, 78);
        free(headers);
        char *v = header_value(msg, "Subject");
        char *dec = decode_words(v);
        assert_string_equal(dec, subject);
        free(dec);
        free(v);
        v = header_value(msg, "To");
        char *lt = strrchr(v, '<');
        assert_non_null(lt);
        assert_string_equal(lt, "<alice@example.com>");
        lt[-1] = '\0';
        dec = decode_words(v);
        assert_string_equal(dec, m.to_name);
        free(dec);
        free(v);
        mime_free(msg, len);
    }
}

static void test_ascii_subject(void **state)
{
    (void)state;
    struct mime_message m = base_message();
    /* Plain words fold at spaces: unfolding gives the subject back. */
    m.subject = "Your jwtd account: a password reset was requested from the web page "
                "of the service just now";
    size_t len;
    char *msg = build_ok(&m, &len);
    assert_non_null(strstr(msg, "\r\nSubject: Your jwtd account: a password reset was requested "
                                "from the web page\r\n of the service just now\r\n"));
    char *v = header_value(msg, "Subject");
    assert_string_equal(v, " Your jwtd account: a password reset was requested from the web "
                           "page of the service just now");
    free(v);
    mime_free(msg, len);

    /* What plain text cannot carry faithfully goes as encoded-words: runs
     * of spaces, leading or trailing blanks, and "=?" (a reader would take
     * it for an encoded-word). */
    static const char *const encoded[] = {"two  spaces", " lead", "trail ", "=?x?=", "x=?y"};
    for (size_t i = 0; i < sizeof encoded / sizeof encoded[0]; i++) {
        m.subject = encoded[i];
        msg = build_ok(&m, &len);
        v = header_value(msg, "Subject");
        assert_memory_equal(v, " =?UTF-8?B?", 11);
        char *dec = decode_words(v);
        assert_string_equal(dec, encoded[i]);
        free(dec);
        free(v);
        mime_free(msg, len);
    }
    /* RFC 2047 example-style check of one recorded word: base64 of
     * "two  spaces" (Python: base64.b64encode(b"two  spaces")). */
    m.subject = "two  spaces";
    msg = build_ok(&m, &len);
    assert_non_null(strstr(msg, "\r\nSubject: =?UTF-8?B?dHdvICBzcGFjZXM=?=\r\n"));
    mime_free(msg, len);

    m.subject = "";
    msg = build_ok(&m, &len);
    assert_non_null(strstr(msg, "\r\nSubject:\r\nDate: "));
    mime_free(msg, len);
}

/* ---- refusals ---- */

static void test_header_injection_refused(void **state)
{
    (void)state;
    static const char *const bad_text[] = {
        "Hi\r\nBcc: victim@example.net", "Hi\nBcc: victim@example.net", "Hi\rX", "tab\there",
        "nul-free but \x7f", "\x1b[31m",
    };
    for (size_t i = 0; i < sizeof bad_text / sizeof bad_text[0]; i++) {
        struct mime_message m = base_message();
        m.subject = bad_text[i];
        assert_int_equal(build_rc(&m), MIME_INVALID);
        m = base_message();
        m.from_name = bad_text[i];
        assert_int_equal(build_rc(&m), MIME_INVALID);
        m = base_message();
        m.to_name = bad_text[i];
        assert_int_equal(build_rc(&m), MIME_INVALID);
    }
    static const char *const bad_addr[] = {
        "alice@example.com\r\nBcc: victim@example.net",
        "alice@example.com\n",
        "alice@example.com>, <victim@example.net",
        "Alice <alice@example.com>",
        "alice@example.com, victim@example.net",
        "al ice@example.com",
    };
    for (size_t i = 0; i < sizeof bad_addr / sizeof bad_addr[0]; i++) {
        struct mime_message m = base_message();
        m.to_addr = bad_addr[i];
        assert_int_equal(build_rc(&m), MIME_INVALID);
        m = base_message();
        m.from_addr = bad_addr[i];
        assert_int_equal(build_rc(&m), MIME_INVALID);
    }
    static const char *const bad_id[] = {
        "a@b\r\nBcc: x@y", "<a@b>", "a b@c", "ab", "a@b@c", "a..b@c", ".a@b", "a@b.", "",
    };
    for (size_t i = 0; i < sizeof bad_id / sizeof bad_id[0]; i++) {
        struct mime_message m = base_message();
        m.message_id = bad_id[i];
        assert_int_equal(build_rc(&m), MIME_INVALID);
    }
    /* Invalid UTF-8: a lone continuation byte, an overlong '/', a UTF-16
     * surrogate, a code point past U+10FFFF, a truncated sequence. */
    static const char *const bad_utf8[] = {"\x80", "\xc0\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80",
                                           "ab\xe6\x97"};
    for (size_t i = 0; i < sizeof bad_utf8 / sizeof bad_utf8[0]; i++) {
        struct mime_message m = base_message();
        m.subject = bad_utf8[i];
        assert_int_equal(build_rc(&m), MIME_INVALID);
        m = base_message();
        m.text = bad_utf8[i];
        assert_int_equal(build_rc(&m), MIME_INVALID);
        m = base_message();
        m.html = bad_utf8[i];
        assert_int_equal(build_rc(&m), MIME_INVALID);
    }
    /* Missing fields. */
    struct mime_message m = base_message();
    m.subject = NULL;
    assert_int_equal(build_rc(&m), MIME_INVALID);
    m = base_message();
    m.text = NULL;
    assert_int_equal(build_rc(&m), MIME_INVALID);
    m = base_message();
    m.to_addr = NULL;
    assert_int_equal(build_rc(&m), MIME_INVALID);
    m = base_message();
    m.message_id = NULL;
    assert_int_equal(build_rc(&m), MIME_INVALID);
    assert_int_equal(mime_build(NULL, NULL, NULL), MIME_INVALID);
}

static void test_addr_valid(void **state)
{
    (void)state;
    static const char *const good[] = {
        "alice@example.com", "a@b", "first.last+tag@sub.example.co.uk",
        "o'brien@example.ie", "x_y-z=1!#$%&*/?^`{|}~@example.com", "a@xn--bcher-kva.example",
        "a@1.2.3.4", "A@EXAMPLE.COM",
    };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
        if (!mime_addr_valid(good[i]))
            fail_msg("refused %s", good[i]);
    static const char *const bad[] = {
        "", "@", "a@", "@b", "ab", "a@@b", "a@b@c", ".a@b", "a.@b", "a..b@c", "a@.b", "a@b.",
        "a@b..c", "a@-b.c", "a@b-.c", "a@b_c.d", "\"a b\"@c", "a@[127.0.0.1]", "a(b)@c",
        "a,b@c", "a;b@c", "a:b@c", "a\\b@c", "a<b@c", "a>b@c", "a b@c", "a\tb@c", "a@b c",
        "\xc3\xa9@example.com", "a@\xc3\xa9.example", "a\x7f@b",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (mime_addr_valid(bad[i]))
            fail_msg("accepted %s", bad[i]);
    assert_false(mime_addr_valid(NULL));

    /* Caps: local part 64, label 63, address 254 bytes. */
    char addr[300];
    memset(addr, 'l', 64);
    snprintf(addr + 64, sizeof addr - 64, "@example.com");
    assert_true(mime_addr_valid(addr));
    memset(addr, 'l', 65);
    snprintf(addr + 65, sizeof addr - 65, "@example.com");
    assert_false(mime_addr_valid(addr));
    snprintf(addr, sizeof addr, "a@%.63s.com",
             "ddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd");
    assert_true(mime_addr_valid(addr));
    snprintf(addr, sizeof addr, "a@%.64s.com",
             "ddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd");
    assert_false(mime_addr_valid(addr));
    /* 64 + '@' + 63.63.61 = 254 bytes; one more is refused. */
    char label[64];
    memset(label, 'd', 63);
    label[63] = '\0';
    int w = snprintf(addr, sizeof addr, "%.64s@%s.%s.%.61s",
                     "llllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllll", label,
                     label, label);
    assert_int_equal(w, 254);
    assert_true(mime_addr_valid(addr));
    w = snprintf(addr, sizeof addr, "%.64s@%s.%s.%.62s",
                 "llllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllll", label, label,
                 label);
    assert_int_equal(w, 255);
    assert_false(mime_addr_valid(addr));
}

static void test_boundary_checks(void **state)
{
    (void)state;
    /* A test boundary must hold "=_" (the no-collision argument) and be
     * 1-70 bchars not ending in a space. */
    static const char *const bad[] = {"plain", "", "=_bad\"quote", "=_trailing ", "=_\r\n",
                                      "=_back\\slash", "=_semi;colon"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct mime_message m = base_message();
        m.boundary = bad[i];
        assert_int_equal(build_rc(&m), MIME_INVALID);
    }
    char b[MIME_BOUNDARY_MAX_BYTES + 2];
    memset(b, 'x', sizeof b - 1);
    b[0] = '=';
    b[1] = '_';
    b[MIME_BOUNDARY_MAX_BYTES] = '\0';
    struct mime_message m = base_message();
    m.boundary = b;
    assert_int_equal(build_rc(&m), MIME_OK); /* 70 */
    b[MIME_BOUNDARY_MAX_BYTES] = 'x';
    b[MIME_BOUNDARY_MAX_BYTES + 1] = '\0';
    assert_int_equal(build_rc(&m), MIME_INVALID); /* 71 */
    m.boundary = "=_ all bchars '()+_,-./:=?";
    assert_int_equal(build_rc(&m), MIME_OK);
}

/* ---- dates ---- */

static void test_dates(void **state)
{
    (void)state;
    /* Python: email.utils.formatdate(t) (which writes -0000 where this
     * module writes +0000: both mean UTC, RFC 5322 section 3.3). */
    static const struct {
        int64_t t;
        const char *s;
    } v[] = {
        {0, "Thu, 01 Jan 1970 00:00:00 +0000"},
        {951782400, "Tue, 29 Feb 2000 00:00:00 +0000"},
        {1234567890, "Fri, 13 Feb 2009 23:31:30 +0000"},
        {1700000000, "Tue, 14 Nov 2023 22:13:20 +0000"},
        {INT64_C(253402300799), "Fri, 31 Dec 9999 23:59:59 +0000"},
    };
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        struct mime_message m = base_message();
        m.date = v[i].t;
        size_t len;
        char *msg = build_ok(&m, &len);
        char *d = header_value(msg, "Date");
        assert_string_equal(d + 1, v[i].s);
        free(d);
        mime_free(msg, len);
    }
    struct mime_message m = base_message();
    m.date = -1;
    assert_int_equal(build_rc(&m), MIME_INVALID);
    m.date = INT64_C(253402300800);
    assert_int_equal(build_rc(&m), MIME_INVALID);
    m.date = INT64_MAX;
    assert_int_equal(build_rc(&m), MIME_INVALID);
}

/* ---- caps ---- */

static void test_caps(void **state)
{
    (void)state;
    char *big = malloc(MIME_MAX_BYTES + 2);
    assert_non_null(big);

    /* Subject and names: 512 bytes pass, 513 do not. */
    memset(big, 's', MIME_TEXT_MAX_BYTES);
    big[MIME_TEXT_MAX_BYTES] = '\0';
    struct mime_message m = base_message();
    m.subject = big;
    m.to_name = big;
    assert_int_equal(build_rc(&m), MIME_OK);
    big[MIME_TEXT_MAX_BYTES] = 's';
    big[MIME_TEXT_MAX_BYTES + 1] = '\0';
    m.to_name = NULL;
    assert_int_equal(build_rc(&m), MIME_TOO_BIG);
    m = base_message();
    m.from_name = big;
    assert_int_equal(build_rc(&m), MIME_TOO_BIG);

    /* A body larger than the cap is refused before encoding; one that fits
     * raw but not once encoded (every byte of U+00E9 becomes "=XX", so 100
     * KiB of it take 300 KiB) is refused after. */
    memset(big, 'a', MIME_MAX_BYTES + 1);
    big[MIME_MAX_BYTES + 1] = '\0';
    m = base_message();
    m.text = big;
    assert_int_equal(build_rc(&m), MIME_TOO_BIG);
    for (size_t i = 0; i < 100 * 1024; i += 2) {
        big[i] = '\xc3';
        big[i + 1] = '\xa9';
    }
    big[100 * 1024] = '\0';
    assert_int_equal(build_rc(&m), MIME_TOO_BIG);

    /* Well under the cap passes: 150 000 'a' take 2000 lines of 75 joined
     * by 1999 soft breaks of 3 bytes, about 156 KB with the rest. */
    memset(big, 'a', 150000);
    big[150000] = '\0';
    size_t len;
    char *msg = build_ok(&m, &len);
    assert_true(len > 150000 && len <= MIME_MAX_BYTES);
    assert_lines_within(msg, 78);
    mime_free(msg, len);

    /* The output cap is exact: grow the body until the build fails and
     * check that the last success is within the cap. */
    size_t lo = 200000, hi = MIME_MAX_BYTES, last_len = 0;
    while (lo < hi) {
        size_t mid = (lo + hi + 1) / 2;
        memset(big, 'a', mid);
        big[mid] = '\0';
        char *b = NULL;
        size_t l = 0;
        enum mime_rc rc = mime_build(&m, &b, &l);
        if (rc == MIME_OK) {
            last_len = l;
            mime_free(b, l);
            lo = mid;
        } else {
            assert_int_equal(rc, MIME_TOO_BIG);
            hi = mid - 1;
        }
    }
    /* One more input byte adds 1 output byte, or 4 with a soft break: the
     * largest message is within 3 bytes of the cap. */
    assert_true(last_len <= MIME_MAX_BYTES);
    assert_true(last_len >= MIME_MAX_BYTES - 3);
    free(big);
}

/* ---- the random boundary ---- */

static bool is_upper_hex(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!strchr("0123456789ABCDEF", s[i]) || s[i] == '\0')
            return false;
    return true;
}

static size_t count(const char *hay, const char *needle)
{
    size_t c = 0;
    for (const char *p = strstr(hay, needle); p; p = strstr(p + 1, needle))
        c++;
    return c;
}

static void test_random_boundary(void **state)
{
    (void)state;
    char seen[2][40];
    for (int i = 0; i < 2; i++) {
        struct mime_message m = base_message();
        m.boundary = NULL;
        /* Text that imitates a delimiter line of this module. */
        m.text = "--=_jwtd_00000000000000000000000000000000\n--=_jwtd_\n";
        size_t len;
        char *msg = build_ok(&m, &len);
        char *ct = header_value(msg, "Content-Type");
        static const char pre[] = " multipart/alternative; boundary=\"=_jwtd_";
        assert_memory_equal(ct, pre, sizeof pre - 1);
        const char *hex = ct + sizeof pre - 1;
        assert_true(is_upper_hex(hex, 32));
        assert_string_equal(hex + 32, "\"");
        snprintf(seen[i], sizeof seen[i], "=_jwtd_%.32s", hex);
        free(ct);

        char delim[64];
        snprintf(delim, sizeof delim, "\r\n--%.39s", seen[i]);
        /* Opening of part 1 and 2 and the close: the imitation in the text
         * came out as "--=3D_jwtd_..." */
        assert_int_equal(count(msg, delim), 3);
        assert_int_equal(count(msg, "=_jwtd_"), 4);
        assert_non_null(strstr(msg, "\r\n--=3D_jwtd_00000000000000000000000000000000\r\n"));
        mime_free(msg, len);
    }
    assert_string_not_equal(seen[0], seen[1]);
}

static void test_free_null(void **state)
{
    (void)state;
    mime_free(NULL, 0);
    mime_free(NULL, 100);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_small_message_exact),
        cmocka_unit_test(test_qp_python_vectors),
        cmocka_unit_test(test_qp_rfc_vectors),
        cmocka_unit_test(test_non_ascii_headers_exact),
        cmocka_unit_test(test_encoded_words_split),
        cmocka_unit_test(test_ascii_subject),
        cmocka_unit_test(test_header_injection_refused),
        cmocka_unit_test(test_addr_valid),
        cmocka_unit_test(test_boundary_checks),
        cmocka_unit_test(test_dates),
        cmocka_unit_test(test_caps),
        cmocka_unit_test(test_random_boundary),
        cmocka_unit_test(test_free_null),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
