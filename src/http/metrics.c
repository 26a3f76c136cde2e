/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Implementation of http/metrics.h.
 */
#include "http/metrics.h"

#include <stdio.h>
#include <stdlib.h>

static const unsigned statuses[HTTP_METRICS_STATUSES - 1] = {
    200, 201, 202, 204, 302, 303, 304, 307, 400, 401, 403, 404, 405, 409, 413, 415, 422, 429,
    500, 501, 503};

struct http_metrics *http_metrics_new(unsigned n, const char *const *names)
{
    struct http_metrics *m = calloc(1, sizeof *m);
    if (!m)
        return NULL;
    m->routes = calloc((size_t)n + 1, sizeof *m->routes);
    if (!m->routes) {
        free(m);
        return NULL;
    }
    m->n_routes = n;
    m->names = names;
    return m;
}

void http_metrics_free(struct http_metrics *m)
{
    if (!m)
        return;
    free(m->routes);
    free(m);
}

void http_metrics_count(struct http_metrics *m, unsigned route, unsigned status,
                        int64_t latency_us)
{
    if (route > m->n_routes)
        route = m->n_routes;
    unsigned slot = HTTP_METRICS_STATUSES - 1;
    for (unsigned i = 0; i < HTTP_METRICS_STATUSES - 1; i++)
        if (statuses[i] == status) {
            slot = i;
            break;
        }
    atomic_fetch_add_explicit(&m->routes[route].status[slot], 1, memory_order_relaxed);
    histogram_observe_us(&m->routes[route].latency, latency_us);
}

static const char *route_name(const struct http_metrics *m, unsigned i)
{
    return i < m->n_routes ? m->names[i] : "other";
}

void http_metrics_write(const struct http_metrics *m, struct buf *b)
{
    buf_appends(b, "# HELP jwtd_http_requests_total Requests answered, by route and status.\n"
                   "# TYPE jwtd_http_requests_total counter\n");
    for (unsigned rt = 0; rt <= m->n_routes; rt++)
        for (unsigned i = 0; i < HTTP_METRICS_STATUSES; i++) {
            uint64_t v = atomic_load_explicit(&m->routes[rt].status[i], memory_order_relaxed);
            if (!v)
                continue;
            if (i < HTTP_METRICS_STATUSES - 1)
                buf_printf(b, "jwtd_http_requests_total{route=\"%s\",status=\"%u\"} %llu\n",
                           route_name(m, rt), statuses[i], (unsigned long long)v);
            else
                buf_printf(b, "jwtd_http_requests_total{route=\"%s\",status=\"other\"} %llu\n",
                           route_name(m, rt), (unsigned long long)v);
        }
    buf_appends(b, "# HELP jwtd_http_request_duration_seconds Time from the request's arrival"
                   " to its answer, by route.\n"
                   "# TYPE jwtd_http_request_duration_seconds histogram\n");
    for (unsigned rt = 0; rt <= m->n_routes; rt++) {
        char labels[96];
        snprintf(labels, sizeof labels, "route=\"%s\"", route_name(m, rt));
        histogram_write(&m->routes[rt].latency, b, "jwtd_http_request_duration_seconds", labels);
    }
}
