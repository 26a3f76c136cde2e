/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Implementation of util.h. Time comes from clock_gettime (plus the offset
 * of a test clock, when a test set one up), randomness from OpenSSL's CSPRNG
 * (RAND_bytes) only.
 */
#include "base/util.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

/* The test clock: 8 bytes of a file mapped shared, a little-endian offset
 * in milliseconds that the test rewrites to move time forward. NULL (the
 * normal case) costs one predictable branch. */
static const volatile int64_t *g_clock_offset;

bool util_test_clock(const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    void *m = mmap(NULL, sizeof(int64_t), PROT_READ, MAP_SHARED, fd, 0);
    close(fd);
    if (m == MAP_FAILED)
        return false;
    g_clock_offset = m;
    return true;
}

bool util_test_clock_on(void)
{
    return g_clock_offset != NULL;
}

static int64_t clock_offset_ms(void)
{
    return g_clock_offset ? *g_clock_offset : 0;
}

int64_t util_now(void)
{
    return util_now_ms() / 1000;
}

int64_t util_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000 + clock_offset_ms();
}

int64_t util_mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int64_t util_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void util_rfc3339(int64_t t, char out[RFC3339_LEN])
{
    time_t tt = (time_t)t;
    struct tm tm;
    if (!gmtime_r(&tt, &tm) || strftime(out, RFC3339_LEN, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        snprintf(out, RFC3339_LEN, "1970-01-01T00:00:00Z");
}

bool util_random(void *buf, size_t n)
{
    if (n > (size_t)INT32_MAX)
        return false;
    return RAND_bytes(buf, (int)n) == 1;
}

void util_uuid_from_bytes(const uint8_t b[16], char out[UUID_STR_LEN])
{
    static const char hex[] = "0123456789abcdef";
    size_t o = 0;
    for (size_t i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            out[o++] = '-';
        out[o++] = hex[b[i] >> 4];
        out[o++] = hex[b[i] & 15];
    }
    out[o] = '\0';
}

/* b: 16 random bytes; the first 48 bits become the time in ms. */
static void uuid7_format(uint8_t b[16], char out[UUID_STR_LEN])
{
    uint64_t ms = (uint64_t)util_now_ms();
    for (int i = 0; i < 6; i++)
        b[i] = (uint8_t)(ms >> (40 - 8 * i));
    b[6] = (uint8_t)(0x70 | (b[6] & 0x0f)); /* version 7 */
    b[8] = (uint8_t)(0x80 | (b[8] & 0x3f)); /* RFC variant */
    util_uuid_from_bytes(b, out);
}

bool util_uuid7(char out[UUID_STR_LEN])
{
    uint8_t b[16];
    if (!util_random(b, sizeof b))
        return false;
    uuid7_format(b, out);
    return true;
}

/* splitmix64 (Steele, Lea, Flood 2014) over a per-thread state. */
static uint64_t weak_next(void)
{
    static _Thread_local uint64_t state;
    static _Thread_local bool seeded;
    if (!seeded) {
        if (!util_random(&state, sizeof state))
            state = (uint64_t)util_mono_us() ^ ((uint64_t)(uintptr_t)&state << 16);
        seeded = true;
    }
    uint64_t z = (state += 0x9e3779b97f4a7c15u);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    return z ^ (z >> 31);
}

void util_uuid7_weak(char out[UUID_STR_LEN])
{
    uint8_t b[16];
    uint64_t hi = weak_next(), lo = weak_next();
    memcpy(b, &hi, 8);
    memcpy(b + 8, &lo, 8);
    uuid7_format(b, out);
}

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

void util_hex(const uint8_t *d, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[d[i] >> 4];
        out[2 * i + 1] = digits[d[i] & 15];
    }
    out[2 * n] = '\0';
}

bool util_unhex(const char *s, uint8_t *out, size_t cap, size_t *ret_len)
{
    size_t n = strlen(s);
    if (n % 2 || n / 2 > cap)
        return false;
    for (size_t i = 0; i < n / 2; i++) {
        int hi = hexval((unsigned char)s[2 * i]), lo = hexval((unsigned char)s[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return false;
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    *ret_len = n / 2;
    return true;
}

bool util_uuid_to_bytes(const char *s, uint8_t out[16])
{
    if (!s || strlen(s) != 36)
        return false;
    size_t o = 0;
    for (size_t i = 0; i < 36;) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (s[i] != '-')
                return false;
            i++;
            continue;
        }
        int hi = hexval((unsigned char)s[i]), lo = hexval((unsigned char)s[i + 1]);
        if (hi < 0 || lo < 0)
            return false;
        out[o++] = (uint8_t)(hi << 4 | lo);
        i += 2;
    }
    return o == 16;
}

bool util_is_uuid(const char *s)
{
    uint8_t b[16];
    return util_uuid_to_bytes(s, b);
}

bool util_parse_int(const char *s, int64_t min, int64_t max, int64_t *ret_value)
{
    if (!s || !*s)
        return false;
    const char *p = s;
    bool neg = false;
    if (*p == '-') {
        if (min >= 0)
            return false;
        neg = true;
        p++;
    }
    if (!isdigit((unsigned char)*p))
        return false;
    int64_t v = 0;
    for (; *p; p++) {
        if (!isdigit((unsigned char)*p))
            return false;
        int d = *p - '0';
        if (v > (INT64_MAX - d) / 10)
            return false;
        v = v * 10 + d;
    }
    if (neg)
        v = -v;
    if (v < min || v > max)
        return false;
    *ret_value = v;
    return true;
}

static bool parse_duration_unit(const char *s, int64_t unit_ms_for_bare, int64_t *ret_ms)
{
    if (!s || !*s)
        return false;
    size_t n = strlen(s), digits = 0;
    while (digits < n && isdigit((unsigned char)s[digits]))
        digits++;
    if (digits == 0 || digits > 12)
        return false;
    char num[16];
    memcpy(num, s, digits);
    num[digits] = '\0';
    int64_t v;
    if (!util_parse_int(num, 0, INT64_C(999999999999), &v))
        return false;
    const char *unit = s + digits;
    int64_t mult;
    if (*unit == '\0')
        mult = unit_ms_for_bare;
    else if (strcmp(unit, "ms") == 0)
        mult = 1;
    else if (strcmp(unit, "s") == 0)
        mult = 1000;
    else if (strcmp(unit, "m") == 0)
        mult = 60 * 1000;
    else if (strcmp(unit, "h") == 0)
        mult = 3600 * 1000;
    else if (strcmp(unit, "d") == 0)
        mult = 86400 * 1000;
    else
        return false;
    if (v > INT64_MAX / mult)
        return false;
    *ret_ms = v * mult;
    return true;
}

bool util_parse_duration(const char *s, int64_t *ret_seconds)
{
    int64_t ms;
    if (!parse_duration_unit(s, 1000, &ms) || ms % 1000 != 0)
        return false;
    *ret_seconds = ms / 1000;
    return true;
}

bool util_parse_duration_ms(const char *s, int64_t *ret_ms)
{
    return parse_duration_unit(s, 1000, ret_ms);
}

char *util_strdup(const char *s)
{
    return s ? strdup(s) : NULL;
}

bool util_ascii_ieq(const char *a, const char *b)
{
    for (; *a && *b; a++, b++)
        if (tolower((unsigned char)*a) != tolower((unsigned char)*b))
            return false;
    return *a == *b;
}

/* The passwords of a database URL or connection string: at most 4 spans. */
struct secret_span {
    size_t off, len;
};

static size_t url_secrets(const char *url, struct secret_span *sp, size_t max)
{
    size_t n = 0;
    const char *scheme = strstr(url, "://");
    if (scheme) {
        /* The password runs from the first ':' after the user to the last
         * '@' anywhere: libpq takes the userinfo up to the first '@' or
         * '/', so a password with an unencoded '?', '/', '#' or '@' is
         * still all hidden (a query value with an '@' may be hidden too:
         * better too much than a password). */
        const char *user = scheme + 3;
        const char *at = strrchr(user, '@');
        const char *colon = at ? memchr(user, ':', (size_t)(at - user)) : NULL;
        if (colon && at > colon + 1)
            sp[n++] = (struct secret_span){(size_t)(colon + 1 - url), (size_t)(at - colon - 1)};
    }
    /* password=, and any parameter whose name ends in it (sslpassword=). */
    for (const char *p = url; n < max && (p = strstr(p, "password")) != NULL; p += 8) {
        const char *v = p + 8;
        v += strspn(v, " ");
        if (*v != '=')
            continue;
        v++;
        v += strspn(v, " ");
        bool quoted = *v == '\'';
        v += quoted;
        size_t len = quoted ? strcspn(v, "'") : strcspn(v, "& \t#");
        if (len)
            sp[n++] = (struct secret_span){(size_t)(v - url), len};
    }
    return n;
}

size_t util_utf8_decode(const char *str, size_t n, uint32_t *ret_cp)
{
    const unsigned char *s = (const unsigned char *)str;
    if (n == 0)
        return 0;
    unsigned char c = s[0];
    if (c < 0x80) {
        if (ret_cp)
            *ret_cp = c;
        return 1;
    }
    size_t len;
    uint32_t cp;
    if (c >= 0xC2 && c <= 0xDF) {
        len = 2;
        cp = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
        len = 3;
        cp = c & 0x0F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4;
        cp = c & 0x07;
    } else {
        return 0;
    }
    if (len > n)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3F);
    }
    if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) || cp > 0x10FFFF ||
        (cp >= 0xD800 && cp <= 0xDFFF))
        return 0;
    if (ret_cp)
        *ret_cp = cp;
    return len;
}

bool util_url_has_password(const char *url)
{
    struct secret_span sp[4];
    return url_secrets(url, sp, 4) > 0;
}

void util_redact_url(const char *url, char *out, size_t cap)
{
    struct secret_span sp[4];
    size_t n = url_secrets(url, sp, 4), pos = 0, o = 0;
    if (!cap)
        return;
    /* Spans are found in two passes: put them in order. */
    for (size_t i = 1; i < n; i++)
        for (size_t j = i; j > 0 && sp[j].off < sp[j - 1].off; j--) {
            struct secret_span t = sp[j];
            sp[j] = sp[j - 1];
            sp[j - 1] = t;
        }
    for (size_t i = 0; i <= n; i++) {
        size_t upto = i < n ? sp[i].off : strlen(url);
        if (upto < pos)
            continue;
        int w = snprintf(out + o, cap - o, "%.*s%s", (int)(upto - pos), url + pos,
                         i < n ? "***" : "");
        if (w < 0 || (size_t)w >= cap - o)
            return; /* truncated, still NUL-terminated */
        o += (size_t)w;
        pos = i < n ? sp[i].off + sp[i].len : upto;
    }
}

void util_redact_text(const char *text, const char *url, char *out, size_t cap)
{
    struct secret_span sp[4];
    size_t n = url ? url_secrets(url, sp, 4) : 0, o = 0;
    if (!cap)
        return;
    /* Each password whole, and the pieces of it between the characters a
     * URL parser splits at ("could not translate host name "x@host"" after
     * an unencoded '@'): every piece of 2 bytes or more is hidden too. */
    struct secret_span piece[32];
    size_t np = 0;
    for (size_t i = 0; i < n && np < 32; i++) {
        piece[np++] = sp[i];
        const char *v = url + sp[i].off;
        for (size_t k = 0; k < sp[i].len && np < 32;) {
            size_t len = strcspn(v + k, "/@?:#&=[]");
            if (len > sp[i].len - k)
                len = sp[i].len - k;
            if (len >= 2 && len < sp[i].len)
                piece[np++] = (struct secret_span){sp[i].off + k, len};
            k += len + 1;
        }
    }
    for (const char *t = text; *t && o + 1 < cap;) {
        size_t hit = 0;
        for (size_t i = 0; i < np; i++) /* the longest match */
            if (piece[i].len > hit && strncmp(t, url + piece[i].off, piece[i].len) == 0)
                hit = piece[i].len;
        if (hit) {
            int w = snprintf(out + o, cap - o, "***");
            o = w < 0 || (size_t)w >= cap - o ? cap - 1 : o + (size_t)w;
            t += hit;
        } else {
            out[o++] = *t++;
        }
    }
    out[o] = '\0';
}

void buf_init(struct buf *b, size_t limit)
{
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
    b->limit = limit;
    b->secret = false;
}

void buf_init_secret(struct buf *b, size_t limit)
{
    buf_init(b, limit);
    b->secret = true;
}

bool buf_append(struct buf *b, const void *p, size_t n)
{
    if (n > b->limit || b->len > b->limit - n)
        return false;
    if (b->len + n + 1 > b->cap) {
        size_t ncap = b->cap ? b->cap : 256;
        while (ncap < b->len + n + 1)
            ncap *= 2;
        if (ncap > b->limit + 1)
            ncap = b->limit + 1;
        char *nd;
        if (b->secret) {
            if (!(nd = malloc(ncap)))
                return false;
            if (b->data) {
                memcpy(nd, b->data, b->len + 1);
                OPENSSL_cleanse(b->data, b->cap);
                free(b->data);
            }
        } else if (!(nd = realloc(b->data, ncap))) {
            return false;
        }
        b->data = nd;
        b->cap = ncap;
    }
    if (n)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
    return true;
}

bool buf_appends(struct buf *b, const char *s)
{
    return buf_append(b, s, strlen(s));
}

bool buf_vprintf(struct buf *b, const char *fmt, va_list ap)
{
    char small[512];
    va_list again;
    va_copy(again, ap);
    int n = vsnprintf(small, sizeof small, fmt, ap);
    bool ok = false;
    if (n >= 0 && (size_t)n < sizeof small) {
        ok = buf_append(b, small, (size_t)n);
    } else if (n >= 0) {
        char *big = malloc((size_t)n + 1);
        if (big) {
            vsnprintf(big, (size_t)n + 1, fmt, again);
            ok = buf_append(b, big, (size_t)n);
            free(big);
        }
    }
    va_end(again);
    return ok;
}

bool buf_printf(struct buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    bool ok = buf_vprintf(b, fmt, ap);
    va_end(ap);
    return ok;
}

void buf_free(struct buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

void buf_wipe_free(struct buf *b)
{
    if (b->data)
        OPENSSL_cleanse(b->data, b->cap);
    buf_free(b);
}

char *buf_steal(struct buf *b)
{
    char *d = b->data;
    if (!d)
        d = calloc(1, 1);
    b->data = NULL;
    b->len = b->cap = 0;
    return d;
}

bool util_addr_canonical(const char *in, char *out, size_t cap)
{
    struct in6_addr a6;
    struct in_addr a4;
    char buf[INET6_ADDRSTRLEN];
    const char *txt;
    if (inet_pton(AF_INET, in, &a4) == 1)
        txt = inet_ntop(AF_INET, &a4, buf, sizeof buf);
    else if (inet_pton(AF_INET6, in, &a6) != 1)
        return false;
    else if (IN6_IS_ADDR_V4MAPPED(&a6))
        txt = inet_ntop(AF_INET, &a6.s6_addr[12], buf, sizeof buf);
    else
        txt = inet_ntop(AF_INET6, &a6, buf, sizeof buf);
    size_t n = txt ? strlen(txt) : 0;
    if (!txt || n >= cap)
        return false;
    memcpy(out, txt, n + 1);
    return true;
}
