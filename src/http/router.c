/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Implementation of router.h: a small static table, searched linearly (15
 * routes; the hot route is first).
 */
#include "http/router.h"

#include <string.h>

#include "api/handlers.h"

struct method_entry {
    enum http_method method;
    handler_fn fn;
    bool body;
};

struct route_entry {
    const char *path;
    enum route id;
    struct method_entry m[2];
};

static const struct route_entry routes[] = {
    {"/auth/verify", ROUTE_VERIFY, {{M_GET, api_verify, false}}},
    {"/auth/me", ROUTE_ME, {{M_GET, api_me, false}, {M_DELETE, api_me_delete, true}}},
    {"/auth/login", ROUTE_LOGIN, {{M_POST, api_login, true}}},
    {"/auth/refresh", ROUTE_REFRESH, {{M_POST, api_refresh, true}}},
    {"/auth/signup", ROUTE_SIGNUP, {{M_POST, api_signup, true}}},
    {"/auth/logout", ROUTE_LOGOUT, {{M_POST, api_logout, true}}},
    {"/auth/password", ROUTE_PASSWORD, {{M_POST, api_password, true}}},
    {"/auth/sessions", ROUTE_SESSIONS, {{M_GET, api_sessions, false}}},
    {"/.well-known/jwks.json", ROUTE_JWKS, {{M_GET, api_jwks, false}}},
    {"/.well-known/openid-configuration", ROUTE_OIDC, {{M_GET, api_openid_configuration, false}}},
    {"/healthz", ROUTE_HEALTHZ, {{M_GET, api_healthz, false}}},
    {"/readyz", ROUTE_READYZ, {{M_GET, api_readyz, false}}},
    {"/metrics", ROUTE_METRICS, {{M_GET, api_metrics, false}}},
};

static const struct route_entry session_one = {
    "/auth/sessions/", ROUTE_SESSION_ONE, {{M_DELETE, api_session_delete, false}}};

#define N_ROUTES (sizeof routes / sizeof routes[0])

enum route router_match(const char *url, char path_id[UUID_STR_LEN])
{
    for (size_t i = 0; i < N_ROUTES; i++)
        if (strcmp(url, routes[i].path) == 0)
            return routes[i].id;
    size_t n = strlen(session_one.path);
    if (strncmp(url, session_one.path, n) == 0 && strlen(url + n) == UUID_STR_LEN - 1) {
        /* Any 36-character segment routes here; the handler answers 404 for
         * ids that are not UUIDs or not the caller's. */
        memcpy(path_id, url + n, UUID_STR_LEN);
        return ROUTE_SESSION_ONE;
    }
    return ROUTE_NONE;
}

static const struct route_entry *entry_of(enum route id)
{
    if (id == ROUTE_SESSION_ONE)
        return &session_one;
    for (size_t i = 0; i < N_ROUTES; i++)
        if (routes[i].id == id)
            return &routes[i];
    return NULL;
}

handler_fn router_handler(enum route route, enum http_method m, unsigned *ret_allowed,
                          bool *ret_body)
{
    const struct route_entry *e = entry_of(route);
    *ret_allowed = 0;
    *ret_body = false;
    if (!e)
        return NULL;
    handler_fn found = NULL;
    for (size_t i = 0; i < 2 && e->m[i].fn; i++) {
        *ret_allowed |= e->m[i].method;
        if (e->m[i].method == M_GET)
            *ret_allowed |= M_HEAD;
        if (e->m[i].method == m || (m == M_HEAD && e->m[i].method == M_GET)) {
            found = e->m[i].fn;
            *ret_body = e->m[i].body;
        }
    }
    return found;
}

enum http_method router_method(const char *method)
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

bool router_on_io_pool(enum route route)
{
    switch (route) {
    case ROUTE_VERIFY:
    case ROUTE_JWKS:
    case ROUTE_OIDC:
    case ROUTE_HEALTHZ:
    case ROUTE_METRICS:
    case ROUTE_READYZ:
    case ROUTE_NONE:
        return false;
    default:
        return true;
    }
}
