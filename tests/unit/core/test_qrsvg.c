/* SPDX-License-Identifier: Apache-2.0 */
/*
 * QR codes in SVG (src/core/qrsvg.c): the document's shape (one <svg>, one
 * <title>, one <path>, no style or script for the CSP), title escaping and
 * refusals, and the drawing itself: the path's rectangles are parsed back
 * into a module matrix that must equal libqrencode's, module by module,
 * quiet zone included. Independently of libqrencode, the symbol size must
 * follow the 8-bit capacities at level M of ISO/IEC 18004 (table 7), and
 * the format information drawn must decode (BCH code and mask of 18004
 * section 7.9) to error correction level M. During development the SVG
 * was also rendered (rsvg-convert) and read back with zbarimg.
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

#include <qrencode.h>

#include "core/qrsvg.h"

static const char *URI = "otpauth://totp/jwtd%3A%20Example%20Co:alice%20smith%40example.com"
                         "?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=jwtd%3A%20Example%20Co"
                         "&algorithm=SHA1&digits=6&period=30";

static size_t count(const char *hay, const char *needle)
{
    size_t n = 0;
    for (const char *p = strstr(hay, needle); p; p = strstr(p + 1, needle))
        n++;
    return n;
}

/* Parse the viewBox side and the path into a side*side matrix (1 = dark),
 * failing on anything but "Mx yhWv1h-Wz" runs inside the picture, on
 * overlaps and on runs that touch (they should have been merged). */
static unsigned char *parse_svg(const char *svg, unsigned *ret_side)
{
    unsigned side = 0, side2 = 0;
    const char *vb = strstr(svg, "viewBox=\"0 0 ");
    assert_non_null(vb);
    assert_int_equal(sscanf(vb, "viewBox=\"0 0 %u %u\"", &side, &side2), 2);
    assert_int_equal(side, side2);
    assert_true(side > 0 && side < 200);
    unsigned char *m = calloc((size_t)side * side, 1);
    assert_non_null(m);

    const char *d = strstr(svg, " d=\"");
    assert_non_null(d);
    d += 4;
    while (*d != '"') {
        unsigned x, y, w, w2;
        int used = 0;
        assert_int_equal(sscanf(d, "M%u %uh%uv1h-%uz%n", &x, &y, &w, &w2, &used), 4);
        assert_true(used > 0);
        assert_int_equal(w, w2);
        assert_true(w > 0 && x + w <= side && y < side);
        for (unsigned i = x; i < x + w; i++) {
            assert_int_equal(m[(size_t)y * side + i], 0);
            m[(size_t)y * side + i] = 1;
        }
        if (x + w < side)
            assert_int_equal(m[(size_t)y * side + x + w], 0);
        if (x > 0)
            assert_int_equal(m[(size_t)y * side + x - 1], 0);
        d += used;
    }
    assert_string_equal(d, "\"/></svg>");
    *ret_side = side;
    return m;
}

static void render(const char *text, const char *title, char **svg, size_t *len)
{
    *svg = NULL;
    *len = 0;
    assert_true(qrsvg_render(text, title, svg, len));
    assert_non_null(*svg);
    assert_int_equal(strlen(*svg), *len);
}

/* The drawing equals libqrencode's matrix, with a blank quiet zone. */
static void check_matrix(const char *text, const char *svg, unsigned *ret_modules)
{
    unsigned side;
    unsigned char *m = parse_svg(svg, &side);
    QRcode *qr = QRcode_encodeString8bit(text, 0, QR_ECLEVEL_M);
    assert_non_null(qr);
    unsigned w = (unsigned)qr->width, q = QRSVG_QUIET_MODULES;
    assert_int_equal(side, w + 2 * q);
    for (unsigned y = 0; y < side; y++)
        for (unsigned x = 0; x < side; x++) {
            bool inside = x >= q && y >= q && x < q + w && y < q + w;
            unsigned want = inside ? qr->data[(y - q) * w + (x - q)] & 1 : 0;
            if (m[y * side + x] != want)
                fail_msg("module (%u,%u) is %u, libqrencode says %u", x, y, m[y * side + x],
                         want);
        }

    /* Format information, first copy (18004 7.9): bits 0-5 at column 8 of
     * rows 0-5, bits 6-7 at rows 7-8, bits 8-14 on row 8 at columns 7, 5..0. */
    static const unsigned COL8_ROWS[8] = {0, 1, 2, 3, 4, 5, 7, 8};
    static const unsigned ROW8_COLS[7] = {7, 5, 4, 3, 2, 1, 0};
    uint32_t fmt = 0;
    for (unsigned i = 0; i < 8; i++)
        fmt |= (uint32_t)m[(COL8_ROWS[i] + q) * side + 8 + q] << i;
    for (unsigned i = 0; i < 7; i++)
        fmt |= (uint32_t)m[(8 + q) * side + ROW8_COLS[i] + q] << (8 + i);
    fmt ^= 0x5412; /* the format mask */
    /* The 10 low bits are the BCH(15,5) remainder, generator 0x537. */
    uint32_t rem = (fmt >> 10) << 10;
    for (int b = 14; b >= 10; b--)
        if (rem & (1u << b))
            rem ^= 0x537u << (b - 10);
    assert_int_equal(fmt & 0x3ff, rem);
    assert_int_equal(fmt >> 13, 0); /* error correction level M is 00 */
    QRcode_free(qr);
    free(m);
    *ret_modules = w;
}

static void test_render_uri(void **state)
{
    (void)state;
    char *svg;
    size_t len;
    render(URI, "Scan with your authenticator app", &svg, &len);
    assert_int_equal(strncmp(svg, "<svg xmlns=\"http://www.w3.org/2000/svg\" ", 40), 0);
    assert_true(len > 6 && strcmp(svg + len - 6, "</svg>") == 0);
    assert_int_equal(count(svg, "<svg"), 1);
    assert_int_equal(count(svg, "</svg>"), 1);
    assert_int_equal(count(svg, "<path"), 1);
    assert_int_equal(count(svg, "<rect"), 1);
    assert_int_equal(count(svg, "<title>Scan with your authenticator app</title>"), 1);
    assert_int_equal(count(svg, "shape-rendering=\"crispEdges\""), 1);
    assert_null(strcasestr(svg, "style"));
    assert_null(strcasestr(svg, "script"));
    unsigned w;
    check_matrix(URI, svg, &w);
    /* 169 bytes: 18004 table 7 holds 152 (version 8) to 180 (version 9)
     * bytes at level M, so version 9, 17 + 4 * 9 modules. */
    assert_int_equal(strlen(URI), 169);
    assert_int_equal(w, 53);
    char box[64], size[64];
    snprintf(box, sizeof box, "viewBox=\"0 0 %u %u\"", w + 8, w + 8);
    snprintf(size, sizeof size, "width=\"%u\" height=\"%u\"", (w + 8) * QRSVG_PX_PER_MODULE,
             (w + 8) * QRSVG_PX_PER_MODULE);
    assert_non_null(strstr(svg, box));
    assert_non_null(strstr(svg, size));
    free(svg);
}

static void test_version_boundaries(void **state)
{
    (void)state;
    /* 8-bit capacity at level M (18004 table 7): 14 bytes in version 1,
     * 26 in version 2, 122 in version 7. One more byte needs the next. */
    static const struct {
        size_t bytes;
        unsigned modules;
    } V[] = {{1, 21}, {14, 21}, {15, 25}, {26, 25}, {27, 29}, {122, 45}, {123, 49}};
    char text[200];
    for (size_t i = 0; i < sizeof V / sizeof V[0]; i++) {
        /* Lower case letters: no alphanumeric-mode shortcut could help. */
        for (size_t j = 0; j < V[i].bytes; j++)
            text[j] = (char)('a' + j % 26);
        text[V[i].bytes] = '\0';
        char *svg;
        size_t len;
        render(text, "t", &svg, &len);
        unsigned w;
        check_matrix(text, svg, &w);
        assert_int_equal(w, V[i].modules);
        free(svg);
    }
}

static void test_title_escaped(void **state)
{
    (void)state;
    char *svg;
    size_t len;
    render("hello", "Scan <me> & \"you'll\" see \xc3\xa9", &svg, &len);
    assert_non_null(
        strstr(svg, "<title>Scan &lt;me&gt; &amp; &quot;you&apos;ll&quot; see \xc3\xa9</title>"));
    assert_int_equal(count(svg, "<"), 6); /* svg, title, /title, rect, path, /svg */
    free(svg);
}

static void test_refusals(void **state)
{
    (void)state;
    char *svg = (char *)"untouched";
    size_t len = 42;
    static const char *BAD_TITLES[] = {
        "", "a\nb", "tab\there", "del\x7f", "\xc3\x28", "\xc0\xaf", "\xed\xa0\x80",
        "\xf4\x90\x80\x80", "\xef\xbf\xbe", "cut\xe2\x82",
    };
    for (size_t i = 0; i < sizeof BAD_TITLES / sizeof BAD_TITLES[0]; i++)
        assert_false(qrsvg_render("hello", BAD_TITLES[i], &svg, &len));
    assert_false(qrsvg_render("hello", NULL, &svg, &len));
    assert_false(qrsvg_render("", "t", &svg, &len));
    assert_false(qrsvg_render(NULL, "t", &svg, &len));

    char title[QRSVG_MAX_TITLE_BYTES + 2];
    memset(title, 'T', sizeof title);
    title[QRSVG_MAX_TITLE_BYTES + 1] = '\0';
    assert_false(qrsvg_render("hello", title, &svg, &len));

    char *text = malloc(QRSVG_MAX_TEXT_BYTES + 2);
    assert_non_null(text);
    memset(text, 'x', QRSVG_MAX_TEXT_BYTES + 1);
    text[QRSVG_MAX_TEXT_BYTES + 1] = '\0';
    assert_false(qrsvg_render(text, "t", &svg, &len));
    assert_string_equal(svg, "untouched");
    assert_int_equal(len, 42);

    /* Exactly at both caps is fine, and still drawn right. */
    text[QRSVG_MAX_TEXT_BYTES] = '\0';
    title[QRSVG_MAX_TITLE_BYTES] = '\0';
    render(text, title, &svg, &len);
    unsigned w;
    check_matrix(text, svg, &w);
    free(svg);
    free(text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_render_uri),
        cmocka_unit_test(test_version_boundaries),
        cmocka_unit_test(test_title_escaped),
        cmocka_unit_test(test_refusals),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
