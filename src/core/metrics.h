/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Process counters for /metrics (Prometheus text format). Plain relaxed
 * atomics: cheap enough for the hot path, exact enough for monitoring.
 */
#ifndef JWTD_METRICS_H
#define JWTD_METRICS_H

#include <stdatomic.h>
#include <stdint.h>

/* Routes, also used by the router. */
enum route {
    ROUTE_NONE = 0,
    ROUTE_SIGNUP,
    ROUTE_LOGIN,
    ROUTE_REFRESH,
    ROUTE_LOGOUT,
    ROUTE_ME,
    ROUTE_PASSWORD,
    ROUTE_SESSIONS,
    ROUTE_SESSION_ONE,
    ROUTE_VERIFY,
    ROUTE_JWKS,
    ROUTE_OIDC,
    ROUTE_HEALTHZ,
    ROUTE_READYZ,
    ROUTE_METRICS,
    ROUTE_COUNT
};

/* Status codes counted one by one; others go to the last slot. */
#define METRICS_STATUSES 16

enum login_result { LOGIN_OK, LOGIN_FAILED, LOGIN_LIMITED, LOGIN_BUSY, LOGIN_RESULT_COUNT };
enum refresh_result {
    RR_ROTATED, RR_REPLAYED, RR_UNKNOWN, RR_EXPIRED, RR_REVOKED, RR_REUSED, RR_INVALID,
    RR_COUNT
};

struct metrics {
    atomic_uint_fast64_t requests[ROUTE_COUNT][METRICS_STATUSES];
    atomic_uint_fast64_t logins[LOGIN_RESULT_COUNT];
    atomic_uint_fast64_t signups_ok;
    atomic_uint_fast64_t refresh[RR_COUNT];
    atomic_uint_fast64_t revocations;
    atomic_uint_fast64_t vcache_hits;
    atomic_uint_fast64_t vcache_misses;
    atomic_uint_fast64_t storage_errors;
};

/* Count one answered request. */
void metrics_request(struct metrics *m, enum route r, unsigned status);

static inline void metrics_inc(atomic_uint_fast64_t *c)
{
    atomic_fetch_add_explicit(c, 1, memory_order_relaxed);
}

/* Name of a route for labels and logs ("login", ...). */
const char *route_name(enum route r);

/* The status code of slot i (0 for "other"). */
unsigned metrics_status_of_slot(unsigned i);

#endif /* JWTD_METRICS_H */
