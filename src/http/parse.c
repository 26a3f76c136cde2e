/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Implementation of parse.h.
 */
#include "http/parse.h"
#include "base/util.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

static bool is_ws(char c)
{
    return c == ' ' || c == '\t';
}

const char *parse_bearer(const char *h, size_t *ret_len)
{
    if (!h || strncasecmp(h, "Bearer", 6) != 0 || !is_ws(h[6]))
        return NULL;
    const char *t = h + 7;
    while (is_ws(*t))
        t++;
    size_t n = strlen(t);
    while (n && is_ws(t[n - 1]))
        n--;
    *ret_len = n;
    return t;
}

bool parse_cookie(const char *h, const char *name, const char **ret_value, size_t *ret_len)
{
    if (!h || !name)
        return false;
    size_t nlen = strlen(name);
    const char *p = h;
    bool found = false;
    while (*p) {
        while (is_ws(*p) || *p == ';')
            p++;
        const char *pair = p;
        while (*p && *p != ';')
            p++;
        const char *end = p;
        const char *eq = memchr(pair, '=', (size_t)(end - pair));
        if (!eq)
            continue;
        const char *kend = eq;
        while (kend > pair && is_ws(kend[-1]))
            kend--;
        if ((size_t)(kend - pair) != nlen || memcmp(pair, name, nlen) != 0)
            continue;
        const char *v = eq + 1;
        while (v < end && is_ws(*v))
            v++;
        const char *vend = end;
        while (vend > v && is_ws(vend[-1]))
            vend--;
        /* RFC 6265 allows a quoted value. */
        if (vend - v >= 2 && v[0] == '"' && vend[-1] == '"') {
            v++;
            vend--;
        }
        /* A second pair of the name: ambiguous, none is taken (see
         * parse.h). */
        if (found)
            return false;
        found = true;
        *ret_value = v;
        *ret_len = (size_t)(vend - v);
    }
    return found;
}

bool parse_content_type_json(const char *ct)
{
    if (!ct)
        return false;
    while (is_ws(*ct))
        ct++;
    if (strncasecmp(ct, "application/json", 16) != 0)
        return false;
    const char *p = ct + 16;
    while (is_ws(*p))
        p++;
    if (*p == '\0')
        return true;
    if (*p != ';')
        return false;
    p++;
    while (is_ws(*p))
        p++;
    if (*p == '\0')
        return true;
    if (strncasecmp(p, "charset=", 8) != 0)
        return false;
    p += 8;
    const char *v = p;
    size_t n = strlen(v);
    while (n && is_ws(v[n - 1]))
        n--;
    return (n == 5 && strncasecmp(v, "utf-8", 5) == 0) ||
           (n == 7 && strncasecmp(v, "\"utf-8\"", 7) == 0);
}

/* An entry's address without what some proxies add around it: brackets
 * ("[2001:db8::1]") and a port ("[2001:db8::1]:443", "203.0.113.7:8080").
 * False when the decoration is malformed (an unclosed bracket, a port that
 * is not 1-5 digits); the address itself is checked by the caller. */
static bool port_digits(const char *p)
{
    size_t n = strlen(p);
    return n >= 1 && n <= 5 && strspn(p, "0123456789") == n;
}

static bool strip_port(char *item)
{
    if (item[0] == '[') {
        char *close = strchr(item, ']');
        if (!close || (close[1] && (close[1] != ':' || !port_digits(close + 2))))
            return false;
        size_t len = (size_t)(close - item - 1);
        memmove(item, item + 1, len);
        item[len] = '\0';
        return true;
    }
    char *colon = strchr(item, ':');
    if (colon && !strchr(colon + 1, ':')) { /* one colon: IPv4 with a port */
        if (!port_digits(colon + 1))
            return false;
        *colon = '\0';
    }
    return true;
}

bool parse_forwarded_client(const char *xff, bool (*trusted)(void *ctx, const char *addr),
                            void *ctx, char *out, size_t cap)
{
    if (!xff)
        return false;
    /* From the right, one entry at a time, without a cap on the whole
     * header: a proxy appends to what the client sent, so the left part is
     * the client's to pad - padding must not make the answer "no client"
     * (which would put the client in the proxy's rate-limit bucket). */
    const char *end = xff + strlen(xff);
    for (;;) {
        const char *start = end;
        while (start > xff && start[-1] != ',')
            start--;
        const char *a = start, *z = end;
        while (a < z && is_ws(*a))
            a++;
        while (z > a && is_ws(z[-1]))
            z--;
        char item[INET6_ADDRSTRLEN + 8], canon[INET6_ADDRSTRLEN]; /* + "[]:65535" */
        size_t n = (size_t)(z - a);
        if (n == 0 || n >= sizeof item)
            return false;
        memcpy(item, a, n);
        item[n] = '\0';
        /* One spelling per address: "::ffff:192.0.2.1" is 192.0.2.1 (not
         * the ::/64 bucket of every mapped client), "2001:DB8::A" is
         * 2001:db8::a, "[2001:db8::a]:443" and "192.0.2.1:8080" (as some
         * proxies write them) the address alone - for the trust check and
         * for the rate limits. */
        if (!strip_port(item) || !util_addr_canonical(item, canon, sizeof canon))
            return false;
        if (start == xff || !trusted(ctx, canon)) {
            n = strlen(canon);
            if (n >= cap)
                return false;
            memcpy(out, canon, n + 1);
            return true;
        }
        end = start - 1; /* the comma */
    }
}

/* The host of an authority ("host[:port]", "[v6]:port"), without its
 * port: its length. */
static size_t authority_host_len(const char *a)
{
    return a[0] == '[' ? strcspn(a, "]") + (a[strcspn(a, "]")] ? 1 : 0) : strcspn(a, ":");
}

bool parse_same_origin(const char *origin, const char *host, const char *public_origin, bool tls)
{
    if (!origin)
        return false;
    if (public_origin && strcasecmp(origin, public_origin) == 0)
        return true;
    const char *sep = strstr(origin, "://");
    if (!host || !sep || !sep[3] || strcasecmp(sep + 3, host) != 0)
        return false;
    size_t scheme = (size_t)(sep - origin);
    bool https = scheme == 5 && strncasecmp(origin, "https", 5) == 0;
    bool http = scheme == 4 && strncasecmp(origin, "http", 4) == 0;
    if (!(tls ? https : https || http))
        return false;
    /* The public host by another scheme or port is another origin (a page
     * on http://auth.example.com is not https://auth.example.com's), even
     * when a proxy passes the Host header without the port. */
    if (public_origin) {
        const char *pub = strstr(public_origin, "://");
        if (pub) {
            pub += 3;
            size_t n = authority_host_len(pub);
            if (authority_host_len(host) == n && strncasecmp(host, pub, n) == 0)
                return false;
        }
    }
    return true;
}

bool parse_referer_origin(const char *referer, char *out, size_t cap)
{
    size_t scheme;
    if (strncasecmp(referer, "https://", 8) == 0)
        scheme = 8;
    else if (strncasecmp(referer, "http://", 7) == 0)
        scheme = 7;
    else
        return false;
    size_t auth = strcspn(referer + scheme, "/?#");
    if (auth == 0 || memchr(referer + scheme, '@', auth) || scheme + auth >= cap)
        return false;
    memcpy(out, referer, scheme + auth);
    out[scheme + auth] = '\0';
    return true;
}

bool parse_content_type_form(const char *ct)
{
    static const char form[] = "application/x-www-form-urlencoded";
    while (is_ws(*ct))
        ct++;
    size_t n = sizeof form - 1;
    if (strncasecmp(ct, form, n) != 0)
        return false;
    ct += n;
    while (is_ws(*ct))
        ct++;
    return *ct == '\0' || *ct == ';';
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

bool parse_field_value_ok(const char *value, size_t len)
{
    const unsigned char *p = (const unsigned char *)value;
    size_t i = 0;
    /* Eight bytes at a time (every request's headers pass here, a token
     * among them): a word is looked at byte by byte only when it holds a
     * byte below 0x20 or a DEL - a tab, almost always, or a refusal. */
    const uint64_t ones = 0x0101010101010101u, highs = 0x8080808080808080u;
    for (; i + 8 <= len; i += 8) {
        uint64_t x;
        memcpy(&x, p + i, 8);
        uint64_t below_space = (x - 0x20 * ones) & ~x & highs;
        uint64_t y = x ^ (0x7f * ones);
        uint64_t del = (y - ones) & ~y & highs;
        if (!(below_space | del))
            continue;
        for (size_t k = i; k < i + 8; k++)
            if ((p[k] < 0x20 && p[k] != '\t') || p[k] == 0x7f)
                return false;
    }
    for (; i < len; i++)
        if ((p[i] < 0x20 && p[i] != '\t') || p[i] == 0x7f)
            return false;
    return true;
}

size_t parse_unescape_url(char *s)
{
    size_t o = 0;
    for (size_t i = 0; s[i]; i++) {
        int h, l;
        if (s[i] == '%' && (h = hexval(s[i + 1])) >= 0 && (l = hexval(s[i + 2])) >= 0 &&
            (h | l) != 0) {
            s[o++] = (char)(h * 16 + l);
            i += 2;
        } else {
            s[o++] = s[i];
        }
    }
    s[o] = '\0';
    return o;
}

const char *parse_absolute_form(const char *target, const char **ret_authority,
                                size_t *ret_len)
{
    if (!target)
        return NULL;
    const char *p;
    if (strncasecmp(target, "http://", 7) == 0)
        p = target + 7;
    else if (strncasecmp(target, "https://", 8) == 0)
        p = target + 8;
    else
        return NULL;
    size_t n = strcspn(p, "/?#");
    if (n == 0)
        return NULL;
    *ret_authority = p;
    *ret_len = n;
    return p[n] == '/' ? p + n : "/";
}

bool parse_host_valid(const char *host)
{
    if (!host)
        return false;
    const char *p = host;
    if (*p == '[') {
        /* IP-literal: IPv6address or IPvFuture, checked for its characters */
        p++;
        size_t n = strspn(p, "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                             ":.-_~!$&'()*+,;=");
        if (n == 0 || p[n] != ']')
            return false;
        p += n + 1;
    } else {
        for (; *p && *p != ':'; p++) {
            unsigned char c = (unsigned char)*p;
            if (c == '%') {
                if (hexval(p[1]) < 0 || hexval(p[2]) < 0)
                    return false;
                p += 2;
            } else if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                         (c >= '0' && c <= '9') || strchr("-._~!$&'()*+,;=", c))) {
                return false;
            }
        }
    }
    if (*p == '\0')
        return true;
    if (*p != ':')
        return false;
    p++;
    return strspn(p, "0123456789") == strlen(p);
}

bool parse_form_component(const char *in, size_t len, char *out, size_t cap, size_t *ret_len)
{
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        char c = in[i];
        if (c == '+') {
            c = ' ';
        } else if (c == '%') {
            if (i + 2 >= len)
                return false;
            int h = hexval(in[i + 1]), l = hexval(in[i + 2]);
            if (h < 0 || l < 0)
                return false;
            c = (char)(h * 16 + l);
            i += 2;
        }
        if (c == '\0' || o + 1 >= cap)
            return false;
        out[o++] = c;
    }
    out[o] = '\0';
    *ret_len = o;
    return true;
}
