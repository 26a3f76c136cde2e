/* SPDX-License-Identifier: Apache-2.0 */
/*
 * QR code to SVG. libqrencode computes the module matrix; this file only
 * draws it: one white rectangle, then one <path> where each horizontal run
 * of dark modules is one rectangle. It must not emit anything a strict
 * Content-Security-Policy blocks (style attributes, <style>, <script>) and
 * must not leave copies of the encoded text behind (it may be a TOTP
 * secret): the matrix is wiped, and the output is measured first and
 * allocated once, so no realloc strands a copy.
 */
#include "core/qrsvg.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <qrencode.h>

/* Builder that only measures when p is NULL. */
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

static void sb_put_uint(struct sbuf *b, unsigned v)
{
    char d[12];
    size_t i = sizeof d;
    do {
        d[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v > 0);
    sb_put(b, d + i, sizeof d - i);
}

static void sb_put_xml_text(struct sbuf *b, const char *s)
{
    for (; *s; s++) {
        switch (*s) {
        case '&': sb_puts(b, "&amp;"); break;
        case '<': sb_puts(b, "&lt;"); break;
        case '>': sb_puts(b, "&gt;"); break;
        case '"': sb_puts(b, "&quot;"); break;
        case '\'': sb_puts(b, "&apos;"); break;
        default: sb_put(b, s, 1); break;
        }
    }
}

/* Non-empty, bounded, well-formed UTF-8 of XML 1.0 characters without
 * controls: anything else would make the document ill-formed or odd. */
static bool title_ok(const char *s)
{
    if (s == NULL)
        return false;
    size_t n = strnlen(s, QRSVG_MAX_TITLE_BYTES + 1);
    if (n == 0 || n > QRSVG_MAX_TITLE_BYTES)
        return false;
    const unsigned char *p = (const unsigned char *)s;
    for (size_t i = 0; i < n;) {
        unsigned c = p[i];
        if (c < 0x80) {
            if (c < 0x20 || c == 0x7f)
                return false;
            i++;
            continue;
        }
        size_t k;
        uint32_t cp, min;
        if ((c & 0xe0) == 0xc0) {
            k = 1, cp = c & 0x1f, min = 0x80;
        } else if ((c & 0xf0) == 0xe0) {
            k = 2, cp = c & 0x0f, min = 0x800;
        } else if ((c & 0xf8) == 0xf0) {
            k = 3, cp = c & 0x07, min = 0x10000;
        } else {
            return false;
        }
        if (n - i <= k)
            return false;
        for (size_t j = 1; j <= k; j++) {
            if ((p[i + j] & 0xc0) != 0x80)
                return false;
            cp = (cp << 6) | (p[i + j] & 0x3f);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff) || cp == 0xfffe ||
            cp == 0xffff)
            return false;
        i += k + 1;
    }
    return true;
}

static void build_svg(struct sbuf *b, const QRcode *qr, const char *title)
{
    unsigned w = (unsigned)qr->width;
    unsigned side = w + 2 * QRSVG_QUIET_MODULES;

    sb_puts(b, "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 ");
    sb_put_uint(b, side);
    sb_puts(b, " ");
    sb_put_uint(b, side);
    sb_puts(b, "\" width=\"");
    sb_put_uint(b, side * QRSVG_PX_PER_MODULE);
    sb_puts(b, "\" height=\"");
    sb_put_uint(b, side * QRSVG_PX_PER_MODULE);
    sb_puts(b, "\" shape-rendering=\"crispEdges\" role=\"img\"><title>");
    sb_put_xml_text(b, title);
    sb_puts(b, "</title><rect width=\"");
    sb_put_uint(b, side);
    sb_puts(b, "\" height=\"");
    sb_put_uint(b, side);
    sb_puts(b, "\" fill=\"#fff\"/><path fill=\"#000\" d=\"");
    for (unsigned y = 0; y < w; y++) {
        const unsigned char *row = qr->data + (size_t)y * w;
        for (unsigned x = 0; x < w;) {
            if (!(row[x] & 1)) { /* bit 0 set = dark module */
                x++;
                continue;
            }
            unsigned x0 = x;
            while (x < w && (row[x] & 1))
                x++;
            sb_puts(b, "M");
            sb_put_uint(b, x0 + QRSVG_QUIET_MODULES);
            sb_puts(b, " ");
            sb_put_uint(b, y + QRSVG_QUIET_MODULES);
            sb_puts(b, "h");
            sb_put_uint(b, x - x0);
            sb_puts(b, "v1h-");
            sb_put_uint(b, x - x0);
            sb_puts(b, "z");
        }
    }
    sb_puts(b, "\"/></svg>");
}

bool qrsvg_render(const char *text, const char *title, char **ret_svg, size_t *ret_len)
{
    QRcode *qr = NULL;
    bool ok = false;

    if (text == NULL || ret_svg == NULL || ret_len == NULL || !title_ok(title))
        return false;
    size_t n = strnlen(text, QRSVG_MAX_TEXT_BYTES + 1);
    if (n == 0 || n > QRSVG_MAX_TEXT_BYTES)
        return false;
    /* Version 0: the smallest that holds the text at level M. */
    qr = QRcode_encodeString8bit(text, 0, QR_ECLEVEL_M);
    if (qr == NULL || qr->width <= 0)
        goto free_qr;
    struct sbuf measure = {NULL, 0};
    build_svg(&measure, qr, title);
    char *svg = malloc(measure.len + 1);
    if (svg == NULL)
        goto free_qr;
    struct sbuf w = {svg, 0};
    build_svg(&w, qr, title);
    svg[w.len] = '\0';
    *ret_svg = svg;
    *ret_len = w.len;
    ok = true;
free_qr:
    if (qr != NULL && qr->data != NULL)
        OPENSSL_cleanse(qr->data, (size_t)qr->width * (size_t)qr->width);
    QRcode_free(qr);
    return ok;
}
