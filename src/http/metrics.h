/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Request metrics of the HTTP layer: answers per route and status, and the
 * latency of each route (from the first byte of the request to the response
 * being queued) as a histogram. Routes are numbered by whoever owns the
 * route table (server/routes.c); index `n_routes` counts unknown paths.
 */
#ifndef JWTD_HTTP_METRICS_H
#define JWTD_HTTP_METRICS_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "base/histogram.h"
#include "base/util.h"

/* Status codes counted one by one; others go to the last slot. */
#define HTTP_METRICS_STATUSES 22

struct http_route_metrics {
    atomic_uint_fast64_t status[HTTP_METRICS_STATUSES];
    struct histogram latency;
};

struct http_metrics {
    unsigned n_routes;
    const char *const *names;          /* n_routes names; "other" follows */
    struct http_route_metrics *routes; /* n_routes + 1 */
};

/* Metrics for n routes named names[0..n-1] (borrowed). NULL when out of
 * memory. */
struct http_metrics *http_metrics_new(unsigned n, const char *const *names);
void http_metrics_free(struct http_metrics *m);

/* Count one answered request of route index (n_routes: unknown path). */
void http_metrics_count(struct http_metrics *m, unsigned route, unsigned status,
                        int64_t latency_us);

/* Append the exposition: jwtd_http_requests_total and
 * jwtd_http_request_duration_seconds. */
void http_metrics_write(const struct http_metrics *m, struct buf *b);

#endif /* JWTD_HTTP_METRICS_H */
