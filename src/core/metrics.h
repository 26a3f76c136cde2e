/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Counters of the account services for /metrics (Prometheus text format):
 * logins, refreshes, signups, revocations, the verify cache. Plain relaxed
 * atomics: cheap enough for the hot path, exact enough for monitoring.
 * Per-route request counts and latencies belong to the HTTP layer
 * (http/metrics.h); the exposition is written by api/health.c.
 */
#ifndef JWTD_METRICS_H
#define JWTD_METRICS_H

#include <stdatomic.h>
#include <stdint.h>

enum login_result { LOGIN_OK, LOGIN_FAILED, LOGIN_LIMITED, LOGIN_BUSY, LOGIN_RESULT_COUNT };
enum refresh_result {
    RR_ROTATED, RR_REPLAYED, RR_UNKNOWN, RR_EXPIRED, RR_REVOKED, RR_REUSED, RR_INVALID,
    RR_COUNT
};

enum mail_result { MR_SENT, MR_RETRY, MR_FAILED, MR_GIVEN_UP, MR_DROPPED, MR_COUNT };

struct metrics {
    atomic_uint_fast64_t mail[MR_COUNT];
    atomic_int_fast64_t mail_queued;  /* gauge, read by the mail worker */
    atomic_uint_fast64_t logins[LOGIN_RESULT_COUNT];
    atomic_uint_fast64_t signups_ok;
    atomic_uint_fast64_t refresh[RR_COUNT];
    atomic_uint_fast64_t revocations;
    atomic_uint_fast64_t vcache_hits;
    atomic_uint_fast64_t vcache_misses;
    atomic_uint_fast64_t storage_errors;
};

static inline void metrics_inc(atomic_uint_fast64_t *c)
{
    atomic_fetch_add_explicit(c, 1, memory_order_relaxed);
}

/* Label values of the enums above. */
const char *metrics_login_name(enum login_result r);
const char *metrics_refresh_name(enum refresh_result r);
const char *metrics_mail_name(enum mail_result r);

#endif /* JWTD_METRICS_H */
