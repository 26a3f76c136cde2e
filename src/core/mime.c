/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Implementation of mime.h: header folding, RFC 2047 encoded-words,
 * quoted-printable (RFC 2045 section 6.7) and the multipart framing. The
 * output buffer is allocated once at its cap so that the message, which
 * carries a recovery secret, never leaves stale copies behind in memory that
 * realloc moved; every failure path wipes it. Nothing here logs or talks to
 * the network.
 *
 * Why the boundary cannot occur inside a part: the boundary always contains
 * "=_" (the random one is "=_jwtd_" + hex; a test one is checked for it). In
 * quoted-printable output every '=' is followed either by two upper-case
 * hex digits or by CRLF (a soft line break), never by '_'. So "=_", and with
 * it any delimiter line "--" + boundary, cannot appear in an encoded part,
 * and the part headers written here do not contain it either. No search of
 * the output is needed.
 */
#include "core/mime.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "base/util.h"

/* RFC 5322 section 2.1.1: lines SHOULD stay within 78 characters. */
#define LINE_SOFT_MAX 78
/* RFC 2045 section 6.7 rule 5: encoded lines at most 76 characters. */
#define QP_LINE_MAX 76
/* RFC 2047 section 2: an encoded-word is at most 75 characters. */
#define EWORD_MAX 75
#define EWORD_PREFIX "=?UTF-8?B?"
#define EWORD_OVERHEAD 12 /* "=?UTF-8?B?" + "?=" */
#define BOUNDARY_RANDOM_BYTES 16
#define BOUNDARY_PREFIX "=_jwtd_"
/* 9999-12-31T23:59:59Z: RFC 5322 years are four digits here. */
#define DATE_MAX INT64_C(253402300799)

static const char HEX[] = "0123456789ABCDEF";

struct obuf {
    char *p;
    size_t len;
    bool full; /* an append did not fit: the whole build fails */
};

static void ob_put(struct obuf *o, const char *s, size_t n)
{
    if (o->full || n > MIME_MAX_BYTES - o->len) {
        o->full = true;
        return;
    }
    memcpy(o->p + o->len, s, n);
    o->len += n;
}

static void ob_puts(struct obuf *o, const char *s)
{
    ob_put(o, s, strlen(s));
}

/* ---- character classes ---- */

/* RFC 5322 atext. */
static bool is_atext(unsigned char c)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
        return true;
    return c != 0 && strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL;
}

/* RFC 5322 dot-atom-text: atext runs separated by single dots. */
static bool dot_atom_valid(const char *s, size_t n)
{
    if (n == 0 || s[0] == '.' || s[n - 1] == '.')
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '.') {
            if (s[i + 1] == '.')
                return false;
        } else if (!is_atext(c)) {
            return false;
        }
    }
    return true;
}

static bool domain_valid(const char *s, size_t n)
{
    if (n == 0 || n > 253)
        return false;
    size_t label = 0;
    for (size_t i = 0; i <= n; i++) {
        if (i == n || s[i] == '.') {
            if (label == 0 || label > 63 || s[i - 1] == '-')
                return false;
            label = 0;
            continue;
        }
        unsigned char c = (unsigned char)s[i];
        bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
        if (!alnum && !(c == '-' && label > 0))
            return false;
        label++;
    }
    return true;
}

bool mime_addr_valid(const char *addr)
{
    if (!addr)
        return false;
    size_t n = strnlen(addr, MIME_ADDR_MAX_BYTES + 1);
    if (n > MIME_ADDR_MAX_BYTES)
        return false;
    const char *at = memchr(addr, '@', n);
    if (!at || memchr(at + 1, '@', n - (size_t)(at - addr) - 1))
        return false;
    size_t local = (size_t)(at - addr);
    if (local > 64 || !dot_atom_valid(addr, local))
        return false;
    return domain_valid(at + 1, n - local - 1);
}

bool mime_utf8_valid(const char *s, size_t n)
{
    for (size_t i = 0; i < n;) {
        size_t k = util_utf8_decode(s + i, n - i, NULL);
        if (k == 0)
            return false;
        i += k;
    }
    return true;
}

/* A header text (subject, display name): capped, valid UTF-8, and no
 * control character at all, CR and LF above all (they would end the header
 * and start one of the caller's choosing). */
static enum mime_rc header_text_check(const char *s)
{
    if (!s)
        return MIME_OK;
    size_t n = strnlen(s, MIME_TEXT_MAX_BYTES + 1);
    if (n > MIME_TEXT_MAX_BYTES)
        return MIME_TOO_BIG;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c == 0x7F)
            return MIME_INVALID;
    }
    return mime_utf8_valid(s, n) ? MIME_OK : MIME_INVALID;
}

bool mime_header_text_valid(const char *s)
{
    return s && header_text_check(s) == MIME_OK;
}

static enum mime_rc body_check(const char *s)
{
    if (!s)
        return MIME_INVALID;
    size_t n = strnlen(s, MIME_MAX_BYTES + 1);
    if (n > MIME_MAX_BYTES)
        return MIME_TOO_BIG;
    return mime_utf8_valid(s, n) ? MIME_OK : MIME_INVALID;
}

static bool msgid_valid(const char *id)
{
    if (!id)
        return false;
    size_t n = strnlen(id, MIME_MSGID_MAX_BYTES + 1);
    if (n > MIME_MSGID_MAX_BYTES)
        return false;
    const char *at = memchr(id, '@', n);
    if (!at)
        return false;
    size_t left = (size_t)(at - id);
    return dot_atom_valid(id, left) && dot_atom_valid(at + 1, n - left - 1);
}

/* RFC 2046 section 5.1.1 bchars, no trailing space, plus the "=_" that the
 * proof at the top of this file relies on. */
static bool boundary_valid(const char *b)
{
    size_t n = strnlen(b, MIME_BOUNDARY_MAX_BYTES + 1);
    if (n == 0 || n > MIME_BOUNDARY_MAX_BYTES || b[n - 1] == ' ')
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)b[i];
        bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
        if (!alnum && !strchr("'()+_,-./:=? ", c))
            return false;
    }
    return strstr(b, "=_") != NULL;
}

/* ---- headers ---- */

struct hdr {
    struct obuf *o;
    size_t col;      /* characters on the current line */
    bool has_token;  /* the current line carries a token after the name */
};

static void hdr_start(struct hdr *h, struct obuf *o, const char *name)
{
    h->o = o;
    ob_puts(o, name);
    ob_puts(o, ":");
    h->col = strlen(name) + 1;
    h->has_token = false;
}

/* Append " tok", folding first (CRLF SP) when asked to or when the line
 * would pass 78 characters and already carries something: a fold may only
 * replace the space in front of a token. */
static void hdr_token_fold(struct hdr *h, const char *tok, size_t n, bool fold)
{
    if (fold || (h->has_token && h->col + 1 + n > LINE_SOFT_MAX)) {
        ob_puts(h->o, "\r\n ");
        h->col = 1;
    } else {
        ob_puts(h->o, " ");
        h->col++;
    }
    ob_put(h->o, tok, n);
    h->col += n;
    h->has_token = true;
}

static void hdr_token(struct hdr *h, const char *tok, size_t n)
{
    hdr_token_fold(h, tok, n, false);
}

static void hdr_end(struct hdr *h)
{
    ob_puts(h->o, "\r\n");
}

/* Base64 (RFC 4648, padded) of in[0..n) into out, which has room. */
static size_t b64(const unsigned char *in, size_t n, char *out)
{
    static const char A[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t o = 0;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16;
        if (i + 1 < n)
            v |= (uint32_t)in[i + 1] << 8;
        if (i + 2 < n)
            v |= in[i + 2];
        out[o++] = A[(v >> 18) & 63];
        out[o++] = A[(v >> 12) & 63];
        out[o++] = i + 1 < n ? A[(v >> 6) & 63] : '=';
        out[o++] = i + 2 < n ? A[v & 63] : '=';
    }
    return o;
}

/* How many bytes of whole UTF-8 characters from u[0..n) fit in one
 * encoded-word written after column col: the word, its leading space and
 * the line must stay within 75 and 78 characters. */
static size_t utf8_fit(const unsigned char *u, size_t n, size_t col)
{
    size_t room = col + 1 < LINE_SOFT_MAX ? LINE_SOFT_MAX - col - 1 : 0;
    if (room > EWORD_MAX)
        room = EWORD_MAX;
    size_t b64max = room > EWORD_OVERHEAD ? (room - EWORD_OVERHEAD) & ~(size_t)3 : 0;
    size_t bytes_max = b64max / 4 * 3;
    size_t take = 0;
    while (take < n) {
        size_t k = util_utf8_decode((const char *)u + take, n - take, NULL);
        if (k == 0 || take + k > bytes_max)
            break;
        take += k;
    }
    return take;
}

/* s[0..n) as B encoded-words, each at most 75 characters, each holding whole
 * UTF-8 characters (RFC 2047 section 5), each sized to the room left on
 * its line so that lines stay within 78 characters. B rather than Q: one
 * encoding that is legal both in unstructured text and in a phrase. */
static void hdr_encoded_words(struct hdr *h, const char *s, size_t n)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0;
    while (i < n) {
        bool fold = false;
        size_t take = utf8_fit(u + i, n - i, h->col);
        if (take == 0) {
            /* Not even one character fits on this line: fold, and on the
             * new line (column 1) 45 bytes, any character, always fit. */
            fold = true;
            take = utf8_fit(u + i, n - i, 1);
        }
        char word[EWORD_MAX + 1];
        size_t w = sizeof EWORD_PREFIX - 1;
        memcpy(word, EWORD_PREFIX, w);
        w += b64(u + i, take, word + w);
        word[w++] = '?';
        word[w++] = '=';
        hdr_token_fold(h, word, w, fold);
        i += take;
    }
}

/* Text that can go out as is: printable ASCII words separated by single
 * spaces, no word longer than fits on a folded line, and nothing a reader
 * would take for an encoded-word. atoms_only narrows words to atext (a
 * display name, where specials would need quoting). */
static bool plain_ok(const char *s, size_t n, bool atoms_only)
{
    if (n == 0 || s[0] == ' ' || s[n - 1] == ' ' || strstr(s, "=?"))
        return false;
    size_t word = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == ' ') {
            if (s[i + 1] == ' ')
                return false;
            word = 0;
            continue;
        }
        if (c < 0x21 || c > 0x7E || (atoms_only && !is_atext(c)))
            return false;
        if (++word > LINE_SOFT_MAX - 2)
            return false;
    }
    return true;
}

static void hdr_words(struct hdr *h, const char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        const char *sp = memchr(s + i, ' ', n - i);
        size_t w = sp ? (size_t)(sp - (s + i)) : n - i;
        hdr_token(h, s + i, w);
        i += w + 1;
    }
}

static void hdr_text(struct hdr *h, const char *s, bool atoms_only)
{
    size_t n = strlen(s);
    if (plain_ok(s, n, atoms_only))
        hdr_words(h, s, n);
    else
        hdr_encoded_words(h, s, n);
}

static void hdr_mailbox(struct obuf *o, const char *field, const char *name, const char *addr)
{
    struct hdr h;
    hdr_start(&h, o, field);
    size_t alen = strlen(addr);
    if (name && name[0]) {
        hdr_text(&h, name, true);
        char tok[MIME_ADDR_MAX_BYTES + 3];
        tok[0] = '<';
        memcpy(tok + 1, addr, alen);
        tok[alen + 1] = '>';
        hdr_token(&h, tok, alen + 2);
    } else {
        hdr_token(&h, addr, alen);
    }
    hdr_end(&h);
}

/* RFC 5322 section 3.3, in UTC, with English names whatever the locale. */
static bool date_format(int64_t t, char *out, size_t cap)
{
    static const char DAYS[7][4] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static const char MONTHS[12][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                       "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    if (t < 0 || t > DATE_MAX)
        return false;
    time_t tt = (time_t)t;
    struct tm tm;
    if (!gmtime_r(&tt, &tm))
        return false;
    int w = snprintf(out, cap, "%s, %02d %s %04d %02d:%02d:%02d +0000", DAYS[tm.tm_wday],
                     tm.tm_mday, MONTHS[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min,
                     tm.tm_sec);
    return w > 0 && (size_t)w < cap;
}

/* ---- quoted-printable ---- */

static void qp_line(struct obuf *o, const char *s, size_t n)
{
    size_t col = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        bool last = i + 1 == n;
        size_t limit = last ? QP_LINE_MAX : QP_LINE_MAX - 1; /* room for a soft break '=' */
        for (;;) {
            /* Literal: printable ASCII but '=', and blanks that something
             * printable follows on the line (RFC 2045 rule 3). A '.' or the
             * F of "From " opening a line is encoded too, so that neither a
             * relay that forgets dot-stuffing nor an mbox writer can alter
             * the text. */
            bool literal = (c >= 0x21 && c <= 0x7E && c != '=') || ((c == ' ' || c == '\t') && !last);
            if (col == 0 && (c == '.' || (c == 'F' && n - i >= 5 && memcmp(s + i, "From ", 5) == 0)))
                literal = false;
            size_t need = literal ? 1 : 3;
            if (col + need > limit) {
                ob_puts(o, "=\r\n");
                col = 0;
                continue; /* the token may differ at the start of a line */
            }
            if (literal) {
                ob_put(o, (const char *)&c, 1);
            } else {
                char esc[3] = {'=', HEX[c >> 4], HEX[c & 15]};
                ob_put(o, esc, 3);
            }
            col += need;
            break;
        }
    }
}

/* Encode a body: each LF or CRLF becomes a hard line break (CRLF); a lone
 * CR is data and is encoded. */
static void qp_body(struct obuf *o, const char *s)
{
    size_t n = strlen(s);
    size_t start = 0;
    for (;;) {
        const char *lf = memchr(s + start, '\n', n - start);
        size_t end = lf ? (size_t)(lf - s) : n;
        size_t len = end - start;
        if (lf && len > 0 && s[end - 1] == '\r')
            len--;
        qp_line(o, s + start, len);
        if (!lf)
            break;
        ob_puts(o, "\r\n");
        start = end + 1;
    }
}

static void part(struct obuf *o, const char *boundary, const char *type, const char *body)
{
    ob_puts(o, "--");
    ob_puts(o, boundary);
    ob_puts(o, "\r\nContent-Type: ");
    ob_puts(o, type);
    ob_puts(o, "; charset=UTF-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n");
    qp_body(o, body);
    /* The CRLF in front of the next delimiter belongs to it (RFC 2046). */
    ob_puts(o, "\r\n");
}

static enum mime_rc check(const struct mime_message *m)
{
    enum mime_rc rc;
    if ((rc = header_text_check(m->from_name)) != MIME_OK ||
        (rc = header_text_check(m->to_name)) != MIME_OK ||
        (rc = header_text_check(m->subject)) != MIME_OK || (rc = body_check(m->text)) != MIME_OK ||
        (rc = body_check(m->html)) != MIME_OK)
        return rc;
    if (!m->subject || !mime_addr_valid(m->from_addr) || !mime_addr_valid(m->to_addr) ||
        !msgid_valid(m->message_id) || (m->boundary && !boundary_valid(m->boundary)))
        return MIME_INVALID;
    return MIME_OK;
}

enum mime_rc mime_build(const struct mime_message *m, char **ret_buf, size_t *ret_len)
{
    if (!m || !ret_buf || !ret_len)
        return MIME_INVALID;
    enum mime_rc rc = check(m);
    if (rc != MIME_OK)
        return rc;

    char date[40];
    if (!date_format(m->date, date, sizeof date))
        return MIME_INVALID;

    char boundary[MIME_BOUNDARY_MAX_BYTES + 1];
    if (m->boundary) {
        snprintf(boundary, sizeof boundary, "%s", m->boundary);
    } else {
        unsigned char rnd[BOUNDARY_RANDOM_BYTES];
        if (RAND_bytes(rnd, sizeof rnd) != 1)
            return MIME_ERROR;
        size_t p = sizeof BOUNDARY_PREFIX - 1;
        memcpy(boundary, BOUNDARY_PREFIX, p);
        for (size_t i = 0; i < sizeof rnd; i++) {
            boundary[p++] = HEX[rnd[i] >> 4];
            boundary[p++] = HEX[rnd[i] & 15];
        }
        boundary[p] = '\0';
    }

    /* One allocation at the cap (plus the NUL): see the top of the file. */
    struct obuf o = {.p = malloc(MIME_MAX_BYTES + 1), .len = 0, .full = false};
    if (!o.p)
        return MIME_ERROR;

    hdr_mailbox(&o, "From", m->from_name, m->from_addr);
    hdr_mailbox(&o, "To", m->to_name, m->to_addr);
    struct hdr h;
    hdr_start(&h, &o, "Subject");
    if (m->subject[0])
        hdr_text(&h, m->subject, false);
    hdr_end(&h);
    ob_puts(&o, "Date: ");
    ob_puts(&o, date);
    ob_puts(&o, "\r\nMessage-ID: <");
    ob_puts(&o, m->message_id);
    ob_puts(&o, ">\r\nMIME-Version: 1.0\r\nAuto-Submitted: auto-generated\r\n"
                "Content-Type: multipart/alternative;\r\n boundary=\"");
    ob_puts(&o, boundary);
    ob_puts(&o, "\"\r\n\r\n");
    part(&o, boundary, "text/plain", m->text);
    part(&o, boundary, "text/html", m->html);
    ob_puts(&o, "--");
    ob_puts(&o, boundary);
    ob_puts(&o, "--\r\n");

    if (o.full) {
        rc = MIME_TOO_BIG;
        goto free_out;
    }
    o.p[o.len] = '\0';
    *ret_buf = o.p;
    *ret_len = o.len;
    return MIME_OK;

free_out:
    OPENSSL_cleanse(o.p, o.len);
    free(o.p);
    return rc;
}

void mime_free(char *buf, size_t len)
{
    if (!buf)
        return;
    OPENSSL_cleanse(buf, len);
    free(buf);
}
