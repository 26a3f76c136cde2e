/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The pure header parsers of src/http/parse.c, with expected values written
 * by hand from the RFCs: Authorization: Bearer (RFC 6750 §2.1, RFC 7235
 * §2.1: the scheme is case-insensitive, the token follows one or more
 * spaces), Cookie (RFC 6265 §4.2.1 and §5.2: "; "-separated pairs, names
 * case-sensitive and matched whole, whitespace around names and values
 * ignored, a name sent twice taken as absent, an optionally quoted value), Content-Type
 * (RFC 7231 §3.1.1.1: media type and parameter names case-insensitive,
 * OWS around ';', quoted or token parameter values; jwtd takes
 * application/json with at most a UTF-8 charset), X-Forwarded-For (the
 * client is the first untrusted address walking from the right; every
 * entry walked must be a bare numeric address) and the same-origin check
 * of Origin against Host (RFC 6454 §7: scheme "://" host [":" port];
 * hosts compare case-insensitively, ports exactly), and %-decoding of
 * paths (RFC 3986 §2.1; %00 kept encoded), absolute-form targets (RFC
 * 9112 §3.2.2: path and authority). Every parser is also
 * fed NULL and empty input.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "http/parse.h"

/* ---- Authorization: Bearer ---- */

/* The token of header h as a string ("(none)" when NULL was returned). */
static void bearer_is(const char *h, const char *want)
{
    size_t len = 12345;
    const char *t = parse_bearer(h, &len);
    if (!want) {
        if (t)
            fail_msg("'%s': got token '%.*s', expected none", h ? h : "(null)", (int)len, t);
        return;
    }
    if (!t)
        fail_msg("'%s': no token, expected '%s'", h, want);
    if (len != strlen(want) || memcmp(t, want, len) != 0)
        fail_msg("'%s': got '%.*s', expected '%s'", h, (int)len, t, want);
    /* The token points into the header (no copy). */
    assert_true(t >= h && t + len <= h + strlen(h));
}

static void test_bearer(void **state)
{
    (void)state;
    bearer_is("Bearer abc.def.ghi", "abc.def.ghi");
    /* RFC 7235 §2.1: auth-scheme is case-insensitive. */
    bearer_is("bearer abc", "abc");
    bearer_is("BEARER abc", "abc");
    bearer_is("bEaReR abc", "abc");
    /* 1*SP before the token; tabs and trailing white space are trimmed
     * as OWS of the field value (RFC 7230 §3.2). */
    bearer_is("Bearer    abc", "abc");
    bearer_is("Bearer\tabc", "abc");
    bearer_is("Bearer \t abc \t ", "abc");
    /* b64token characters (RFC 6750 §2.1), '=' padding included. */
    bearer_is("Bearer A-z0_9.~+/==", "A-z0_9.~+/==");
    /* A separator but no token: an empty token (the caller refuses it). */
    bearer_is("Bearer ", "");
    bearer_is("Bearer \t ", "");
    /* Other schemes and malformed headers: no token. */
    bearer_is("Basic dXNlcjpwYXNz", NULL);
    bearer_is("Digest username=\"x\"", NULL);
    bearer_is("Bearer", NULL);
    bearer_is("Bearerabc", NULL);
    bearer_is("Bearer,abc", NULL);
    bearer_is("Bearer=abc", NULL);
    bearer_is("Bear abc", NULL);
    bearer_is("BearerX abc", NULL);
    bearer_is("Token abc", NULL);
    bearer_is("", NULL);
    bearer_is(NULL, NULL);
}

/* ---- Cookie ---- */

static void cookie_is(const char *h, const char *name, const char *want)
{
    const char *v = NULL;
    size_t len = 12345;
    bool found = parse_cookie(h, name, &v, &len);
    if (!want) {
        if (found)
            fail_msg("'%s' [%s]: got '%.*s', expected absent", h ? h : "(null)", name, (int)len,
                     v);
        return;
    }
    if (!found)
        fail_msg("'%s' [%s]: absent, expected '%s'", h, name, want);
    if (len != strlen(want) || memcmp(v, want, len) != 0)
        fail_msg("'%s' [%s]: got '%.*s', expected '%s'", h, name, (int)len, v, want);
    assert_true(v >= h && v + len <= h + strlen(h));
}

static void test_cookie(void **state)
{
    (void)state;
    cookie_is("sid=abc", "sid", "abc");
    cookie_is("a=1; sid=abc; b=2", "sid", "abc");
    cookie_is("a=1; b=2", "b", "2");
    cookie_is("a=1;b=2", "b", "2"); /* no space after ';' (RFC 6265 §5.2 tolerates it) */
    /* Two pairs of a name: ambiguous, neither is taken (one may have been
     * tossed by a sibling subdomain; the browser sends the longer path
     * first, so "the first wins" would take the intruder's). */
    cookie_is("sid=one; sid=two", "sid", NULL);
    cookie_is("x=0; sid=one; sid=two", "sid", NULL);
    cookie_is("sid=one; x=0; sid=one", "sid", NULL);
    cookie_is("sid=one; sid_2=two", "sid", "one"); /* another name */
    /* Names are matched whole: prefixes and suffixes of other names. */
    cookie_is("session_old=x; session=y", "session", "y");
    cookie_is("session=y; session_old=x", "session_old", "x");
    cookie_is("xsession=1; session=2", "session", "2");
    cookie_is("session=y", "sess", NULL);
    cookie_is("sess=y", "session", NULL);
    /* Names are case-sensitive. */
    cookie_is("SID=abc", "sid", NULL);
    cookie_is("SID=upper; sid=lower", "sid", "lower");
    /* White space around names and values is not part of them (§5.2). */
    cookie_is("  a = 1 ;   b =  2  ", "a", "1");
    cookie_is("  a = 1 ;   b =  2  ", "b", "2");
    cookie_is("a=1;\tb=\t2", "b", "2");
    /* The value runs to the next ';' and may contain '='. */
    cookie_is("t=aGVsbG8=; u=1", "t", "aGVsbG8=");
    cookie_is("t=a=b=c", "t", "a=b=c");
    /* Empty values are present; a quoted value loses its quotes. */
    cookie_is("a=; b=2", "a", "");
    cookie_is("a=\"xyz\"; b=2", "a", "xyz");
    cookie_is("a=\"\"", "a", "");
    cookie_is("a=\"", "a", "\""); /* one quote is no quoting */
    /* Pairs without '=' are skipped, not taken for names. */
    cookie_is("garbage; a=1", "a", "1");
    cookie_is("a; a=1", "a", "1");
    cookie_is("a", "a", NULL);
    /* Absent. */
    cookie_is("a=1; b=2", "c", NULL);
    cookie_is(";;; ;", "a", NULL);
    cookie_is("", "a", NULL);
    cookie_is(NULL, "a", NULL);
    const char *v;
    size_t len;
    assert_false(parse_cookie("a=1", NULL, &v, &len));
}

/* ---- Content-Type ---- */

static void test_content_type_json(void **state)
{
    (void)state;
    static const char *yes[] = {
        "application/json",
        "Application/JSON", /* type and subtype are case-insensitive */
        "APPLICATION/JSON",
        "application/json; charset=utf-8",
        "application/json;charset=utf-8",
        "application/json; charset=UTF-8", /* charset values too */
        "application/json; CHARSET=utf-8", /* parameter names too */
        "application/json; Charset=Utf-8",
        "application/json; charset=\"utf-8\"", /* a quoted-string value */
        "application/json ; charset=utf-8",    /* OWS before ';' */
        "application/json;\tcharset=utf-8",
        "application/json; charset=utf-8 ",
        " application/json",
        "application/json ",
    };
    for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++)
        if (!parse_content_type_json(yes[i]))
            fail_msg("'%s' refused", yes[i]);
    static const char *no[] = {
        "text/json",
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        "application/jsonp",
        "application/json-patch+json",
        "application/json5",
        "application/jsonx; charset=utf-8",
        "application/ld+json",
        "application/",
        "application",
        "json",
        "*/*",
        "application/json; charset=iso-8859-1", /* another charset */
        "application/json; charset=utf-16",
        "application/json; charset=utf-8x",
        "application/json; charset=",
        "application/json; boundary=x", /* a parameter other than charset */
        "application/json; charset=utf-8; boundary=x",
        "application/json, text/plain",
        "application/json x",
        "",
        NULL,
    };
    for (size_t i = 0; i < sizeof no / sizeof no[0]; i++)
        if (parse_content_type_json(no[i]))
            fail_msg("'%s' accepted", no[i] ? no[i] : "(null)");
}

/* ---- X-Forwarded-For ---- */

/* The trusted proxies of a test, and the order in which they were asked. */
struct trust {
    const char *const *addrs;
    char asked[8][64];
    int n_asked;
};

static bool is_trusted(void *ctx, const char *addr)
{
    struct trust *t = ctx;
    if (t->n_asked < 8)
        snprintf(t->asked[t->n_asked++], sizeof t->asked[0], "%s", addr);
    for (size_t i = 0; t->addrs && t->addrs[i]; i++)
        if (strcmp(t->addrs[i], addr) == 0)
            return true;
    return false;
}

static const char *const NONE[] = {NULL};
static const char *const PROXIES[] = {"10.0.0.1", "10.0.0.2", "2001:db8::fe", NULL};

/* The client of xff with `trusted` proxies, or NULL when refused. */
static void xff_is(const char *xff, const char *const *trusted, const char *want)
{
    struct trust t = {.addrs = trusted};
    char out[64];
    memset(out, 'X', sizeof out);
    bool ok = parse_forwarded_client(xff, is_trusted, &t, out, sizeof out);
    if (!want) {
        if (ok)
            fail_msg("'%s': got '%s', expected refusal", xff ? xff : "(null)", out);
        return;
    }
    if (!ok)
        fail_msg("'%s': refused, expected '%s'", xff, want);
    if (strcmp(out, want) != 0)
        fail_msg("'%s': got '%s', expected '%s'", xff, out, want);
}

static void test_forwarded_client(void **state)
{
    (void)state;
    /* One entry: that is the client. */
    xff_is("203.0.113.7", NONE, "203.0.113.7");
    xff_is("203.0.113.7", PROXIES, "203.0.113.7");
    /* The rightmost untrusted address; what a client wrote to the left of
     * it is not believed. */
    xff_is("203.0.113.7, 198.51.100.9", NONE, "198.51.100.9");
    xff_is("1.2.3.4, 203.0.113.7, 10.0.0.1", PROXIES, "203.0.113.7");
    xff_is("203.0.113.7, 10.0.0.2, 10.0.0.1", PROXIES, "203.0.113.7");
    xff_is("10.0.0.1, 203.0.113.7", PROXIES, "203.0.113.7"); /* a trusted one further left */
    /* Every entry trusted: the leftmost. */
    xff_is("10.0.0.2, 10.0.0.1", PROXIES, "10.0.0.2");
    /* Spaces and tabs around entries. */
    xff_is("  203.0.113.7 ,\t10.0.0.1  ", PROXIES, "203.0.113.7");
    xff_is("203.0.113.7,10.0.0.1", PROXIES, "203.0.113.7");
    /* IPv6, compressed; every address comes back in one spelling (lower
     * case, compressed), an IPv4-mapped one as IPv4: otherwise every mapped
     * client would share the ::/64 rate-limit bucket. */
    xff_is("2001:db8::1", NONE, "2001:db8::1");
    xff_is("2001:db8::1, 2001:db8::fe", PROXIES, "2001:db8::1");
    xff_is("::ffff:192.0.2.1, 10.0.0.1", PROXIES, "192.0.2.1");
    xff_is("::FFFF:198.51.100.20", NONE, "198.51.100.20");
    xff_is("::ffff:c000:201", NONE, "192.0.2.1");
    xff_is("2001:DB8::A", NONE, "2001:db8::a");
    xff_is("2001:0db8:0000:0000:0000:0000:0000:0001", NONE, "2001:db8::1");
    xff_is("::1", NONE, "::1");
    /* The trust check sees the same spelling: a proxy that writes itself
     * in upper case or mapped is still the configured one. */
    xff_is("203.0.113.7, 2001:DB8::FE", PROXIES, "203.0.113.7");
    xff_is("203.0.113.7, ::ffff:10.0.0.1", PROXIES, "203.0.113.7");
    /* An entry that must be read but is not a bare numeric address: the
     * header is not believed (the caller uses the socket peer). */
    xff_is("203.0.113.7, garbage", NONE, NULL);
    xff_is("garbage, 10.0.0.1", PROXIES, NULL);
    xff_is("unknown", NONE, NULL);
    /* With a port or in brackets, as some proxies write them: the address
     * alone (before, such a proxy put every client in its own bucket). */
    xff_is("203.0.113.7:8080", NONE, "203.0.113.7");
    xff_is("[2001:db8::1]", NONE, "2001:db8::1");
    xff_is("[2001:db8::1]:443", NONE, "2001:db8::1");
    xff_is("[::ffff:203.0.113.99]:5555", NONE, "203.0.113.99");
    xff_is("[ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255]:65535", NONE,
           "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff");
    xff_is("203.0.113.7, 10.0.0.1:3128", PROXIES, "203.0.113.7"); /* a proxy with its port */
    /* Malformed decoration: not believed. */
    xff_is("203.0.113.7:", NONE, NULL);
    xff_is("203.0.113.7:80x", NONE, NULL);
    xff_is("203.0.113.7:123456", NONE, NULL);
    xff_is("[2001:db8::1", NONE, NULL);
    xff_is("[2001:db8::1]443", NONE, NULL);
    xff_is("[2001:db8::1]:", NONE, NULL);
    xff_is("[203.0.113.7:80]", NONE, NULL);
    xff_is("[]", NONE, NULL);
    xff_is("example.com", NONE, NULL);
    xff_is("203.0.113", NONE, NULL);
    xff_is("203.0.113.256", NONE, NULL);
    xff_is("203.0.113.7/24", NONE, NULL);
    xff_is("203.0.113.7, , 10.0.0.1", PROXIES, NULL); /* an empty entry */
    xff_is("203.0.113.7,", NONE, NULL);
    xff_is("203.0.113.7 198.51.100.9", NONE, NULL); /* two without a comma */
    xff_is("", NONE, NULL);
    xff_is(" ", NONE, NULL);
    xff_is(NULL, NONE, NULL);
    /* Entries to the left of the client are never looked at: a client
     * cannot make the server fall back to its proxy's address. */
    xff_is("garbage, 203.0.113.7", NONE, "203.0.113.7");
    xff_is("garbage, 203.0.113.7, 10.0.0.1", PROXIES, "203.0.113.7");
    xff_is(",203.0.113.7, 10.0.0.1", PROXIES, "203.0.113.7");

    /* The walk goes right to left and stops at the first untrusted one. */
    struct trust t = {.addrs = PROXIES};
    char out[64];
    assert_true(parse_forwarded_client("198.51.100.1, 203.0.113.7, 10.0.0.2, 10.0.0.1",
                                       is_trusted, &t, out, sizeof out));
    assert_string_equal(out, "203.0.113.7");
    assert_int_equal(t.n_asked, 3);
    assert_string_equal(t.asked[0], "10.0.0.1");
    assert_string_equal(t.asked[1], "10.0.0.2");
    assert_string_equal(t.asked[2], "203.0.113.7");

    /* The output is capped: the address and its NUL must fit. */
    char small[12];
    struct trust t2 = {.addrs = NONE};
    assert_true(parse_forwarded_client("2001:db8::1", is_trusted, &t2, small, 12));
    assert_string_equal(small, "2001:db8::1");
    assert_false(parse_forwarded_client("2001:db8::1", is_trusted, &t2, small, 11));
    /* No cap on the whole header: only the entries walked are read. A
     * client can pad what it sends (a proxy appends to it); padding must not
     * make the answer "no client" - that would put the client into the
     * proxy's rate-limit bucket. */
    char big[1100];
    size_t o = 0;
    while (o + 12 < sizeof big - 1) {
        memcpy(big + o, "203.0.113.7,", 12);
        o += 12;
    }
    memcpy(big + o - 1, "\0", 1);
    assert_true(strlen(big) >= 1024);
    assert_true(parse_forwarded_client(big, is_trusted, &t2, out, sizeof out));
    assert_string_equal(out, "203.0.113.7");
    char padded[2200];
    o = 0;
    for (int i = 0; i < 550; i++) {
        memcpy(padded + o, "x,", 2);
        o += 2;
    }
    snprintf(padded + o, sizeof padded - o, "198.51.100.9");
    assert_true(parse_forwarded_client(padded, is_trusted, &t2, out, sizeof out));
    assert_string_equal(out, "198.51.100.9");
    /* ... while a garbage entry that is walked still refuses the header. */
    struct trust t3 = {.addrs = PROXIES};
    snprintf(padded + o, sizeof padded - o, "x, 10.0.0.1");
    assert_false(parse_forwarded_client(padded, is_trusted, &t3, out, sizeof out));
}

/* ---- Origin vs Host ---- */

/* Plain HTTP, no public URL. */
static bool same(const char *origin, const char *host)
{
    return parse_same_origin(origin, host, NULL, false);
}

static void test_same_origin(void **state)
{
    (void)state;
    assert_true(same("https://auth.example.com", "auth.example.com"));
    assert_true(same("http://auth.example.com", "auth.example.com"));
    /* Host names are case-insensitive (RFC 3986 §3.2.2). */
    assert_true(same("https://AUTH.Example.COM", "auth.example.com"));
    assert_true(same("https://auth.example.com", "Auth.Example.Com"));
    /* Ports must be the same, written or not written alike. */
    assert_true(same("http://127.0.0.1:8080", "127.0.0.1:8080"));
    assert_true(same("http://localhost:8080", "LOCALHOST:8080"));
    assert_false(same("http://localhost:8080", "localhost:8081"));
    assert_false(same("http://localhost:8080", "localhost"));
    assert_false(same("http://localhost", "localhost:8080"));
    assert_false(same("http://localhost:80800", "localhost:8080"));
    assert_true(same("http://[::1]:8080", "[::1]:8080"));
    assert_false(same("http://[::1]:8080", "[::2]:8080"));
    /* Other sites, including look-alikes. */
    assert_false(same("https://evil.example", "auth.example.com"));
    assert_false(same("https://auth.example.com.evil.example", "auth.example.com"));
    assert_false(same("https://evilauth.example.com", "auth.example.com"));
    assert_false(same("https://auth.example.co", "auth.example.com"));
    assert_false(same("https://x.auth.example.com", "auth.example.com"));
    assert_false(same("https://auth.example.com/", "auth.example.com"));
    /* Not an origin. */
    assert_false(same("null", "auth.example.com"));
    assert_false(same("auth.example.com", "auth.example.com"));
    assert_false(same("https://", ""));
    assert_false(same("https://", "auth.example.com"));
    assert_false(same("", ""));
    assert_false(same(NULL, "auth.example.com"));
    assert_false(same("https://auth.example.com", NULL));
    assert_false(same(NULL, NULL));
}


/* With TLS on, with JWTD_PUBLIC_URL: the scheme counts, and the public
 * host only at the public origin. */
/* A Referer's origin: scheme and authority of an absolute http(s) URL. */
static void test_referer_origin(void **state)
{
    (void)state;
    char o[64];
    static const struct {
        const char *referer, *origin; /* origin NULL: none */
    } cases[] = {
        {"https://app.example/page?x=1#f", "https://app.example"},
        {"http://127.0.0.1:8080/", "http://127.0.0.1:8080"},
        {"http://127.0.0.1:8080", "http://127.0.0.1:8080"},
        {"HTTPS://App.Example:8443?q", "HTTPS://App.Example:8443"},
        {"https://[::1]:8080/x", "https://[::1]:8080"},
        {"https://evil.example#https://app.example/", "https://evil.example"},
        {"https://user@app.example/", NULL},
        {"https://app.example@evil.example/", NULL},
        {"https:///path", NULL},
        {"https://", NULL},
        {"/relative/path", NULL},
        {"//app.example/", NULL},
        {"ftp://app.example/", NULL},
        {"javascript:alert(1)", NULL},
        {"about:client", NULL},
        {"", NULL},
        {"https://a-host-name-far-too-long-for-the-64-byte-buffer-it-is-given.example/", NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        bool ok = parse_referer_origin(cases[i].referer, o, sizeof o);
        if (!cases[i].origin) {
            if (ok)
                fail_msg("'%s' gave origin '%s'", cases[i].referer, o);
            continue;
        }
        if (!ok)
            fail_msg("'%s' gave no origin", cases[i].referer);
        assert_string_equal(o, cases[i].origin);
    }
}

static void test_same_origin_scheme_and_public_url(void **state)
{
    (void)state;
    /* TLS on: the page was https. */
    assert_true(parse_same_origin("https://auth.example.com", "auth.example.com", NULL, true));
    assert_false(parse_same_origin("http://auth.example.com", "auth.example.com", NULL, true));
    /* Only http and https are web origins. */
    assert_false(parse_same_origin("ftp://auth.example.com", "auth.example.com", NULL, false));
    assert_false(parse_same_origin("httpx://auth.example.com", "auth.example.com", NULL, false));
    assert_false(parse_same_origin("://auth.example.com", "auth.example.com", NULL, false));
    assert_true(parse_same_origin("HTTPS://auth.example.com", "auth.example.com", NULL, false));

    const char *pub = "https://auth.example.com";
    assert_true(parse_same_origin("https://auth.example.com", "auth.example.com", pub, false));
    assert_true(parse_same_origin("HTTPS://Auth.Example.com", "auth.example.com", pub, false));
    /* The public host by plain http, or another port: another site. */
    assert_false(parse_same_origin("http://auth.example.com", "auth.example.com", pub, false));
    assert_false(parse_same_origin("https://auth.example.com:8443", "auth.example.com:8443", pub,
                                   false));
    assert_false(parse_same_origin("http://AUTH.example.com:80", "auth.example.com:80", pub,
                                   false));
    /* Whatever Host a proxy passes: the public origin is the public
     * origin (nginx's $host drops a port). */
    const char *pub_port = "https://auth.example.com:8443";
    assert_true(parse_same_origin("https://auth.example.com:8443", "auth.example.com", pub_port,
                                  false));
    assert_true(parse_same_origin("https://auth.example.com:8443", "127.0.0.1:8080", pub_port,
                                  false));
    assert_false(parse_same_origin("https://auth.example.com", "auth.example.com", pub_port,
                                   false));
    /* Reached by another name (a loopback address, say), that name's own
     * origin, as without a public URL. */
    assert_true(parse_same_origin("http://127.0.0.1:8080", "127.0.0.1:8080", pub, false));
    assert_false(parse_same_origin("http://127.0.0.1:8080", "127.0.0.1:8080", pub, true));
    assert_true(parse_same_origin("http://[::1]:8080", "[::1]:8080", "https://[::2]", false));
    assert_false(parse_same_origin("http://[::1]:8080", "[::1]:8080", "https://[::1]", false));
    /* Other sites stay other sites. */
    assert_false(parse_same_origin("https://evil.example", "auth.example.com", pub, false));
    assert_false(parse_same_origin("https://auth.example.com.evil.example", "auth.example.com",
                                   pub, true));
    assert_false(parse_same_origin(NULL, "auth.example.com", pub, false));
    assert_false(parse_same_origin("null", "auth.example.com", pub, false));
}

/* ---- path and query unescaping (RFC 3986 §2.1) ---- */

static void check_unescape(const char *in, const char *want)
{
    char buf[64];
    snprintf(buf, sizeof buf, "%s", in);
    size_t n = parse_unescape_url(buf);
    assert_int_equal(n, strlen(want));
    assert_string_equal(buf, want);
}

static void test_unescape_url(void **state)
{
    (void)state;
    check_unescape("", "");
    check_unescape("/healthz", "/healthz");
    check_unescape("/%68ealthz", "/healthz");
    check_unescape("/auth/%6Cogin", "/auth/login");
    check_unescape("/a%2fb%2Fc", "/a/b/c");
    check_unescape("/%e2%82%ac", "/\xe2\x82\xac");
    /* %00 stays as it is: a NUL would end the path early. */
    check_unescape("/healthz%00", "/healthz%00");
    check_unescape("/healthz%00/x%41", "/healthz%00/xA");
    /* Bad or cut escapes stay as they are. */
    check_unescape("/%zz%4", "/%zz%4");
    check_unescape("%", "%");
    check_unescape("%4", "%4");
    check_unescape("%%41", "%A");
    check_unescape("a+b", "a+b");
}

/* ---- absolute-form request targets (RFC 9112 §3.2.2) ---- */

static void check_absolute(const char *target, const char *want_path, const char *want_auth)
{
    const char *auth = NULL;
    size_t len = 0;
    const char *path = parse_absolute_form(target, &auth, &len);
    if (!want_path) {
        assert_null(path);
        return;
    }
    assert_non_null(path);
    assert_string_equal(path, want_path);
    assert_int_equal(len, strlen(want_auth));
    assert_memory_equal(auth, want_auth, len);
}

static void test_absolute_form(void **state)
{
    (void)state;
    check_absolute("http://127.0.0.1:8080/healthz", "/healthz", "127.0.0.1:8080");
    check_absolute("HTTPS://auth.example.com/auth/login", "/auth/login", "auth.example.com");
    check_absolute("http://[::1]:8080/a/b", "/a/b", "[::1]:8080");
    check_absolute("http://host", "/", "host");
    check_absolute("http://host?x=1", "/", "host");
    /* Not absolute-form. */
    check_absolute("/healthz", NULL, NULL);
    check_absolute("*", NULL, NULL);
    check_absolute("http:///healthz", NULL, NULL);
    check_absolute("ftp://host/x", NULL, NULL);
    check_absolute("http:/host/x", NULL, NULL);
    check_absolute("", NULL, NULL);
    check_absolute(NULL, NULL, NULL);
}

/* ---- Host (RFC 9112 §3.2, RFC 3986 §3.2.2) ---- */

static void test_host_valid(void **state)
{
    (void)state;
    const char *good[] = {"", "127.0.0.1", "127.0.0.1:8080", "[::1]", "[::1]:8080",
                          "auth.example.com", "Auth.Example.COM.", "my_host", "a,b",
                          "xn--bcher-kva.example", "h%C3%A9", "host:", "[v1.x]"};
    const char *bad[] = {"a b", "a/b", "user@host", "host:80:81", "host:8o", "[::1",
                         "[::1]x", "[]", "a\"b", "a<b", "h%zz", "h%4", "%", "a\tb", "a?b",
                         "a#b"};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
        assert_true(parse_host_valid(good[i]));
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_false(parse_host_valid(bad[i]));
    assert_false(parse_host_valid(NULL));
}

/* Every byte value at every position of values of 1 to 24 bytes (both
 * sides of the eight-byte steps): refused exactly when it is a control
 * character other than HTAB, as a byte-by-byte reading says. */
static void test_field_value(void **state)
{
    (void)state;
    char v[24];
    for (size_t len = 1; len <= sizeof v; len++)
        for (size_t pos = 0; pos < len; pos++)
            for (int b = 1; b < 256; b++) {
                memset(v, 'a', sizeof v);
                v[pos] = (char)b;
                bool want = !((b < 0x20 && b != '\t') || b == 0x7f);
                if (parse_field_value_ok(v, len) != want)
                    fail_msg("byte 0x%02x at %zu of %zu", b, pos, len);
            }
    assert_true(parse_field_value_ok("", 0));
    assert_true(parse_field_value_ok("Bearer \xc3\xa9t\xc3\xa9\t x", 13));
    assert_false(parse_field_value_ok("a\rContent-Length: 0", 20));
    /* Only len bytes count: the NUL after them is not looked at. */
    assert_true(parse_field_value_ok("abcdefghij\n", 10));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bearer),
        cmocka_unit_test(test_cookie),
        cmocka_unit_test(test_content_type_json),
        cmocka_unit_test(test_forwarded_client),
        cmocka_unit_test(test_same_origin),
        cmocka_unit_test(test_same_origin_scheme_and_public_url),
        cmocka_unit_test(test_referer_origin),
        cmocka_unit_test(test_unescape_url),
        cmocka_unit_test(test_absolute_form),
        cmocka_unit_test(test_host_valid),
        cmocka_unit_test(test_field_value),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
