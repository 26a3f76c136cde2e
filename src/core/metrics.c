/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Counting helpers of metrics.h; the exposition itself is in api/metrics.c.
 */
#include "core/metrics.h"

static const unsigned statuses[METRICS_STATUSES - 1] = {200, 201, 204, 400, 401, 403, 404, 405,
                                                        409, 413, 415, 422, 429, 500, 503};

unsigned metrics_status_of_slot(unsigned i)
{
    return i < METRICS_STATUSES - 1 ? statuses[i] : 0;
}

void metrics_request(struct metrics *m, enum route r, unsigned status)
{
    unsigned slot = METRICS_STATUSES - 1;
    for (unsigned i = 0; i < METRICS_STATUSES - 1; i++)
        if (statuses[i] == status) {
            slot = i;
            break;
        }
    if ((unsigned)r < ROUTE_COUNT)
        metrics_inc(&m->requests[r][slot]);
}

const char *route_name(enum route r)
{
    static const char *const names[ROUTE_COUNT] = {
        [ROUTE_NONE] = "other",        [ROUTE_SIGNUP] = "signup",
        [ROUTE_LOGIN] = "login",       [ROUTE_REFRESH] = "refresh",
        [ROUTE_LOGOUT] = "logout",     [ROUTE_ME] = "me",
        [ROUTE_PASSWORD] = "password", [ROUTE_SESSIONS] = "sessions",
        [ROUTE_SESSION_ONE] = "session", [ROUTE_VERIFY] = "verify",
        [ROUTE_JWKS] = "jwks",         [ROUTE_OIDC] = "openid_configuration",
        [ROUTE_HEALTHZ] = "healthz",   [ROUTE_READYZ] = "readyz",
        [ROUTE_METRICS] = "metrics",
    };
    return (unsigned)r < ROUTE_COUNT ? names[r] : "other";
}
