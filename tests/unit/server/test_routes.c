/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The route table (src/server/routes.c) against the endpoint list of
 * docs/api.md, written out here by hand: every documented path matches
 * exactly its route, with the documented methods (HEAD wherever GET is,
 * except where GET changes state), the documented request bodies and the
 * documented thread (answers from memory inline, anything that waits on
 * storage on the I/O pool); unknown paths, trailing slashes, case variants
 * and near misses do not match;
 * /auth/sessions/{id} takes exactly 36 characters into path_id; method
 * names map to their bits (case-sensitively, RFC 7230 §3.1.1) and anything
 * else to M_OTHER; routes_index agrees with the table order; names are
 * unique metric labels.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "server/routes.h"

/* docs/api.md, "Endpoints": path, methods, which methods read a JSON body,
 * and whether the answer comes from memory. */
static const struct {
    const char *path;
    unsigned methods;
    unsigned body; /* methods that read JSON */
    bool inline_;
    unsigned form; /* methods that read an HTML form */
} DOC[] = {
    {"/auth/signup", M_POST, M_POST, false, 0},
    {"/auth/login", M_POST, M_POST, false, 0},
    {"/auth/refresh", M_POST, M_POST, false, 0},
    {"/auth/logout", M_POST, M_POST, false, 0}, /* optional {"scope"} */
    /* DELETE takes {"password"}, PATCH {"email", "password"} */
    {"/auth/me", M_GET | M_DELETE | M_PATCH, M_DELETE | M_PATCH, false, 0},
    {"/auth/password", M_POST, M_POST, false, 0},
    {"/auth/sessions", M_GET, 0, false, 0},
    {"/auth/sessions/", M_DELETE, 0, false, 0}, /* {id}: a body is ignored */
    /* Bearer; no body, or a JSON object that is ignored (a form type: 415) */
    {"/auth/email/verify/request", M_POST, M_POST, false, 0},
    {"/auth/email/verify", M_POST, M_POST, false, 0},
    {"/auth/password/forgot", M_POST, M_POST, false, 0},
    {"/auth/password/reset", M_POST, M_POST, false, 0},
    /* second factors (docs/mfa.md) */
    {"/auth/mfa", M_GET, 0, false, 0},
    {"/auth/mfa/verify", M_POST, M_POST, false, 0},
    {"/auth/mfa/totp", M_POST | M_DELETE, M_POST | M_DELETE, false, 0},
    {"/auth/mfa/totp/confirm", M_POST, M_POST, false, 0},
    {"/auth/mfa/recovery-codes", M_POST, M_POST, false, 0},
    {"/auth/passkeys", M_GET | M_DELETE, M_DELETE, false, 0},
    {"/auth/passkeys/register/options", M_POST, M_POST, false, 0},
    {"/auth/passkeys/register", M_POST, M_POST, false, 0},
    {"/auth/passkeys/login/options", M_POST, M_POST, false, 0},
    {"/auth/passkeys/login", M_POST, M_POST, false, 0},
    /* pages (docs/pages.md) */
    {"/auth/refresh/continue", M_GET, 0, false, 0},
    {"/auth/refresh/signout", M_POST, 0, false, M_POST},
    {"/login", M_GET | M_POST, 0, false, M_POST},
    {"/login/mfa", M_POST, 0, false, M_POST},
    {"/signup", M_GET | M_POST, 0, false, M_POST},
    {"/logout", M_POST, 0, false, M_POST},
    {"/account", M_GET, 0, false, 0},
    {"/account/password", M_POST, 0, false, M_POST},
    {"/account/email", M_POST, 0, false, M_POST},
    {"/account/email/verify", M_POST, 0, false, M_POST},
    {"/account/email/resend", M_POST, 0, false, M_POST},
    {"/account/sessions/revoke", M_POST, 0, false, M_POST},
    {"/account/totp", M_POST, 0, false, M_POST},
    {"/account/totp/confirm", M_POST, 0, false, M_POST},
    {"/account/totp/remove", M_POST, 0, false, M_POST},
    {"/account/recovery-codes", M_POST, 0, false, M_POST},
    {"/account/passkeys/remove", M_POST, 0, false, M_POST},
    {"/forgot-password", M_GET | M_POST, 0, false, M_POST},
    {"/reset-password", M_GET | M_POST, 0, false, M_POST},
    {"/verify-email", M_GET | M_POST, 0, false, M_POST},
    {"/static/jwtd.css", M_GET, 0, true, 0},
    {"/static/passkeys.js", M_GET, 0, true, 0},
    {"/auth/verify", M_GET, 0, true, 0},        /* touches no storage */
    {"/.well-known/jwks.json", M_GET, 0, true, 0},
    {"/.well-known/openid-configuration", M_GET, 0, true, 0},
    {"/healthz", M_GET, 0, true, 0},
    {"/readyz", M_GET, 0, true, 0}, /* never waits on the database */
    {"/metrics", M_GET, 0, true, 0},
};
#define N_DOC (sizeof DOC / sizeof DOC[0])

static const char SID[] = "017f22e2-79b0-7cc3-98c4-dc0c0c07398f"; /* RFC 9562 A.6 */

static const unsigned ALL_METHODS[] = {M_GET,    M_HEAD,  M_POST,    M_PUT,
                                       M_DELETE, M_PATCH, M_OPTIONS, M_OTHER};

/* The documented entry of a table path, or -1. */
static int doc_index(const char *path)
{
    for (size_t i = 0; i < N_DOC; i++)
        if (strcmp(DOC[i].path, path) == 0)
            return (int)i;
    return -1;
}

static const struct route *match(const char *url, char id[UUID_STR_LEN])
{
    char unused[UUID_STR_LEN];
    return routes_match(url, id ? id : unused);
}

static void test_table_is_the_documented_one(void **state)
{
    (void)state;
    assert_int_equal(routes_count, N_DOC);
    bool seen[N_DOC] = {false};
    for (unsigned i = 0; i < routes_count; i++) {
        int d = doc_index(routes_table[i].path);
        if (d < 0)
            fail_msg("undocumented route %s", routes_table[i].path);
        assert_false(seen[d]);
        seen[d] = true;
        bool is_inline = routes_table[i].pool == ROUTE_INLINE;
        if (is_inline != DOC[d].inline_)
            fail_msg("%s runs %s", routes_table[i].path, is_inline ? "inline" : "on the I/O pool");
    }
    /* The hot route is looked at first. */
    assert_string_equal(routes_table[0].path, "/auth/verify");
}

static void test_every_path_matches(void **state)
{
    (void)state;
    for (size_t d = 0; d < N_DOC; d++) {
        char url[128];
        size_t n = strlen(DOC[d].path);
        bool with_id = DOC[d].path[n - 1] == '/';
        snprintf(url, sizeof url, "%s%s", DOC[d].path, with_id ? SID : "");
        char id[UUID_STR_LEN];
        memset(id, 'Z', sizeof id);
        const struct route *r = match(url, id);
        if (!r)
            fail_msg("%s does not match", url);
        assert_string_equal(r->path, DOC[d].path);
        assert_ptr_equal(r, &routes_table[routes_index(r)]);
        if (with_id)
            assert_string_equal(id, SID);
        else
            assert_memory_equal(id, "ZZZZ", 4); /* untouched */
    }
}

static void test_unknown_paths(void **state)
{
    (void)state;
    static const char *no[] = {
        "",
        "/",
        "/auth",
        "/auth/",
        "/auth/login/",  /* trailing slash */
        "/auth/me/",
        "/healthz/",
        "/metrics/",
        "/.well-known/jwks.json/",
        "/AUTH/LOGIN",   /* case */
        "/auth/Login",
        "/Healthz",
        "/.well-known/JWKS.json",
        "/.WELL-KNOWN/jwks.json",
        "//auth/login",  /* not normalised */
        "/auth//login",
        "/auth/./login",
        "/auth/login/x",
        "/auth/loginx",
        "/auth/logi",
        "auth/login",
        "/auth/login?x=1", /* libmicrohttpd strips queries before routing */
        "/auth/login#x",
        "/auth/login ",
        " /auth/login",
        "/auth/verify%20",
        "/auth/sessionsx",
        "/auth/sessions/", /* no id */
        "/.well-known/",
        "/.well-known/openid-configuration/",
        "/jwks.json",
        "/index.html",
    };
    for (size_t i = 0; i < sizeof no / sizeof no[0]; i++) {
        const struct route *r = match(no[i], NULL);
        if (r)
            fail_msg("'%s' matched %s", no[i], r->path);
    }
    /* A path with an id only where the table has one. */
    char url[128];
    static const char *prefixes[] = {"/auth/me/", "/auth/login/", "/auth/session/",
                                     "/auth/sessionsX", "/healthz/"};
    for (size_t i = 0; i < sizeof prefixes / sizeof prefixes[0]; i++) {
        snprintf(url, sizeof url, "%s%s", prefixes[i], SID);
        assert_null(match(url, NULL));
    }
}

static void test_session_id_length(void **state)
{
    (void)state;
    char url[160], seg[80];
    const struct route *sessions = match("/auth/sessions", NULL);
    assert_non_null(sessions);
    for (size_t n = 0; n <= 72; n++) {
        memset(seg, 'a', n);
        seg[n] = '\0';
        snprintf(url, sizeof url, "/auth/sessions/%s", seg);
        char id[UUID_STR_LEN];
        memset(id, 'Z', sizeof id);
        const struct route *r = match(url, id);
        if (n == 0) {
            assert_null(r); /* "/auth/sessions/" has no id */
            continue;
        }
        /* Any one segment routes to the handler, so that a request without
         * a token is 401 whatever the id; only a 36-character segment is
         * passed on as the id (anything else is 404 after authentication). */
        assert_non_null(r);
        assert_string_equal(r->path, "/auth/sessions/");
        assert_ptr_not_equal(r, sessions);
        if (n == 36)
            assert_string_equal(id, seg);
        else
            assert_string_equal(id, "");
    }
    /* Upper-case ids are routed (the service folds them). */
    char id[UUID_STR_LEN];
    assert_non_null(match("/auth/sessions/017F22E2-79B0-7CC3-98C4-DC0C0C07398F", id));
    assert_string_equal(id, "017F22E2-79B0-7CC3-98C4-DC0C0C07398F");
    /* The id segment followed by anything is another path. */
    snprintf(url, sizeof url, "/auth/sessions/%s/", SID);
    assert_null(match(url, NULL));
    snprintf(url, sizeof url, "/auth/sessions/%s/x", SID);
    assert_null(match(url, NULL));
    snprintf(url, sizeof url, "/AUTH/SESSIONS/%s", SID);
    assert_null(match(url, NULL));
}

static void test_handlers_and_allowed_methods(void **state)
{
    (void)state;
    handler_fn seen[64];
    size_t n_seen = 0;
    for (unsigned i = 0; i < routes_count; i++) {
        const struct route *r = &routes_table[i];
        int d = doc_index(r->path);
        assert_true(d >= 0);
        /* docs/pages.md: the one GET that changes state does not serve HEAD */
        bool get_no_head = strcmp(r->path, "/auth/refresh/continue") == 0;
        assert_int_equal(routes_get_changes_state(r), get_no_head);
        unsigned want_allowed =
            DOC[d].methods | ((DOC[d].methods & M_GET) && !get_no_head ? M_HEAD : 0);
        handler_fn get_fn = NULL;
        for (size_t k = 0; k < sizeof ALL_METHODS / sizeof ALL_METHODS[0]; k++) {
            unsigned m = ALL_METHODS[k];
            unsigned allowed = 0xdead;
            enum body_kind body = BODY_JSON;
            handler_fn fn = routes_handler(r, (enum http_method)m, &allowed, &body);
            if (allowed != want_allowed)
                fail_msg("%s: allowed 0x%x, expected 0x%x", r->path, allowed, want_allowed);
            if ((want_allowed & m) == 0) {
                if (fn)
                    fail_msg("%s: a handler for method 0x%x", r->path, m);
                assert_int_equal(body, BODY_NONE);
                continue;
            }
            if (!fn)
                fail_msg("%s: no handler for method 0x%x", r->path, m);
            unsigned as = m == M_HEAD ? M_GET : m;
            enum body_kind want = (DOC[d].body & as)   ? BODY_JSON
                                  : (DOC[d].form & as) ? BODY_FORM
                                                       : BODY_NONE;
            if (body != want)
                fail_msg("%s: method 0x%x body %d, expected %d", r->path, m, (int)body, (int)want);
            if (m == M_GET)
                get_fn = fn;
            if (m == M_HEAD) {
                /* HEAD is served by the GET handler (GET comes first). */
                assert_non_null(get_fn);
                assert_ptr_equal(fn, get_fn);
                continue;
            }
            assert_true(n_seen < sizeof seen / sizeof seen[0]);
            seen[n_seen++] = fn;
        }
        /* OPTIONS is answered by the server for every known path, never
         * by a route handler (docs/api.md "OPTIONS"). */
        assert_false(want_allowed & M_OPTIONS);
    }
    /* Each (path, method) has its own handler. */
    for (size_t a = 0; a < n_seen; a++)
        for (size_t b = a + 1; b < n_seen; b++)
            if (seen[a] == seen[b])
                fail_msg("handlers %zu and %zu are the same function", a, b);
    size_t want_pairs = 0;
    for (size_t d = 0; d < N_DOC; d++)
        want_pairs += (size_t)__builtin_popcount(DOC[d].methods);
    assert_int_equal(n_seen, want_pairs);
}

static void test_method_names(void **state)
{
    (void)state;
    static const struct {
        const char *name;
        unsigned m;
    } names[] = {{"GET", M_GET},       {"HEAD", M_HEAD},   {"POST", M_POST},
                 {"PUT", M_PUT},       {"DELETE", M_DELETE}, {"PATCH", M_PATCH},
                 {"OPTIONS", M_OPTIONS}};
    unsigned all = 0;
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        assert_int_equal(routes_method(names[i].name), names[i].m);
        /* One bit each, all different, none of them M_OTHER. */
        assert_int_equal(__builtin_popcount(names[i].m), 1);
        assert_false(all & names[i].m);
        all |= names[i].m;
    }
    assert_false(all & M_OTHER);
    /* Methods are case-sensitive (RFC 7230 §3.1.1); unknown ones are
     * M_OTHER. */
    static const char *other[] = {"get",   "Get",     "post", "TRACE", "CONNECT", "PROPFIND",
                                  "",      "GETX",    "GE",   "GET ",  " GET",    "DELETE\n",
                                  "HEAD\t", "OPTION", "PATCHES"};
    for (size_t i = 0; i < sizeof other / sizeof other[0]; i++)
        if (routes_method(other[i]) != M_OTHER)
            fail_msg("'%s' is not M_OTHER", other[i]);
}

static void test_index_and_names(void **state)
{
    (void)state;
    for (unsigned i = 0; i < routes_count; i++) {
        assert_int_equal(routes_index(&routes_table[i]), i);
        const char *name = routes_table[i].name;
        assert_non_null(name);
        assert_true(name[0] != '\0');
        /* A Prometheus label value and a log value: lower case and '_'. */
        assert_int_equal(strspn(name, "abcdefghijklmnopqrstuvwxyz_"), strlen(name));
        /* "other" is the label of unknown paths (http/request.h). */
        assert_string_not_equal(name, "other");
        for (unsigned j = i + 1; j < routes_count; j++)
            if (strcmp(name, routes_table[j].name) == 0)
                fail_msg("routes %u and %u are both named %s", i, j, name);
        /* Paths are unique too. */
        for (unsigned j = i + 1; j < routes_count; j++)
            assert_string_not_equal(routes_table[i].path, routes_table[j].path);
    }
    /* The index of a match is its place in the table. */
    char url[128];
    for (unsigned i = 0; i < routes_count; i++) {
        size_t n = strlen(routes_table[i].path);
        snprintf(url, sizeof url, "%s%s", routes_table[i].path,
                 routes_table[i].path[n - 1] == '/' ? SID : "");
        const struct route *r = match(url, NULL);
        assert_non_null(r);
        assert_int_equal(routes_index(r), i);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table_is_the_documented_one),
        cmocka_unit_test(test_every_path_matches),
        cmocka_unit_test(test_unknown_paths),
        cmocka_unit_test(test_session_id_length),
        cmocka_unit_test(test_handlers_and_allowed_methods),
        cmocka_unit_test(test_method_names),
        cmocka_unit_test(test_index_and_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
