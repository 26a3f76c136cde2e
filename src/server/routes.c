/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Implementation of routes.h: a small static table, searched linearly (the
 * hot route, /auth/verify, is first).
 */
#include "server/routes.h"

#include <string.h>

#include "api/handlers.h"

const struct route routes_table[] = {
    {"/auth/verify", "verify", ROUTE_INLINE, {{M_GET, api_verify, false}}},
    {"/auth/me", "me", ROUTE_IO,
     {{M_GET, api_me, false}, {M_DELETE, api_me_delete, true}, {M_PATCH, api_me_patch, true}}},
    {"/auth/login", "login", ROUTE_IO, {{M_POST, api_login, true}}},
    {"/auth/refresh", "refresh", ROUTE_IO, {{M_POST, api_refresh, true}}},
    {"/auth/signup", "signup", ROUTE_IO, {{M_POST, api_signup, true}}},
    {"/auth/logout", "logout", ROUTE_IO, {{M_POST, api_logout, true}}},
    {"/auth/password", "password", ROUTE_IO, {{M_POST, api_password, true}}},
    {"/auth/sessions", "sessions", ROUTE_IO, {{M_GET, api_sessions, false}}},
    {"/auth/email/verify/request", "email_verify_request", ROUTE_IO,
     {{M_POST, api_email_verify_request, false}}},
    {"/auth/email/verify", "email_verify", ROUTE_IO, {{M_POST, api_email_verify, true}}},
    {"/auth/password/forgot", "password_forgot", ROUTE_IO, {{M_POST, api_password_forgot, true}}},
    {"/auth/password/reset", "password_reset", ROUTE_IO, {{M_POST, api_password_reset, true}}},
    {"/auth/sessions/", "session", ROUTE_IO, {{M_DELETE, api_session_delete, false}}},
    {"/.well-known/jwks.json", "jwks", ROUTE_INLINE, {{M_GET, api_jwks, false}}},
    {"/.well-known/openid-configuration", "openid_configuration", ROUTE_INLINE,
     {{M_GET, api_openid_configuration, false}}},
    {"/healthz", "healthz", ROUTE_INLINE, {{M_GET, api_healthz, false}}},
    {"/readyz", "readyz", ROUTE_INLINE, {{M_GET, api_readyz, false}}},
    {"/metrics", "metrics", ROUTE_INLINE, {{M_GET, api_metrics, false}}},
};

const unsigned routes_count = sizeof routes_table / sizeof routes_table[0];

const struct route *routes_match(const char *url, char path_id[UUID_STR_LEN])
{
    for (unsigned i = 0; i < routes_count; i++) {
        const char *p = routes_table[i].path;
        size_t n = strlen(p);
        if (p[n - 1] != '/') {
            if (strcmp(url, p) == 0)
                return &routes_table[i];
        } else if (strncmp(url, p, n) == 0 && strlen(url + n) == UUID_STR_LEN - 1) {
            /* Any 36-character segment routes here; the handler answers 404
             * for ids that are not UUIDs or not the caller's. */
            memcpy(path_id, url + n, UUID_STR_LEN);
            return &routes_table[i];
        }
    }
    return NULL;
}

unsigned routes_index(const struct route *route)
{
    return (unsigned)(route - routes_table);
}

handler_fn routes_handler(const struct route *route, enum http_method m, unsigned *ret_allowed,
                          bool *ret_body)
{
    *ret_allowed = 0;
    *ret_body = false;
    handler_fn found = NULL;
    for (size_t i = 0; i < sizeof route->m / sizeof route->m[0] && route->m[i].fn; i++) {
        *ret_allowed |= route->m[i].method;
        if (route->m[i].method == M_GET)
            *ret_allowed |= M_HEAD;
        if (route->m[i].method == m || (m == M_HEAD && route->m[i].method == M_GET)) {
            found = route->m[i].fn;
            *ret_body = route->m[i].body;
        }
    }
    return found;
}

enum http_method routes_method(const char *method)
{
    static const struct {
        const char *name;
        enum http_method m;
    } methods[] = {{"GET", M_GET},       {"HEAD", M_HEAD},   {"POST", M_POST},
                   {"PUT", M_PUT},       {"DELETE", M_DELETE}, {"PATCH", M_PATCH},
                   {"OPTIONS", M_OPTIONS}};
    for (size_t i = 0; i < sizeof methods / sizeof methods[0]; i++)
        if (strcmp(method, methods[i].name) == 0)
            return methods[i].m;
    return M_OTHER;
}
