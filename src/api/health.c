/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Liveness, readiness and metrics. /healthz answers while the process
 * serves; /readyz answers 200 only when storage answers and a signing key is
 * loaded; /metrics is the Prometheus text exposition, answered only to the
 * peers JWTD_METRICS allows (loopback by default; 404 to others, so it is
 * invisible from outside). A request a proxy forwarded is not a loopback
 * reader, though its socket peer (the proxy) is on loopback.
 */
#include <stdio.h>
#include <string.h>

#include "api/handlers.h"
#include "base/histogram.h"
#include "base/util.h"

void api_healthz(struct request *r)
{
    respond_json_text(r, 200, "{\"status\":\"ok\"}", 15);
}

void api_readyz(struct request *r)
{
    struct app *app = r->app;
    /* From memory: the background thread probes storage every second, and
     * the backend knows when its last query failed. A probe here would
     * make a load balancer's health checks wait on a sick database. */
    bool storage = atomic_load(&app->storage_ok) && store_healthy(app->store);
    bool keys = keyring_ready(app->keys);
    if (storage && keys) {
        respond_json_text(r, 200, "{\"status\":\"ready\"}", 18);
        return;
    }
    respond_busy(r, !storage ? "Storage is unavailable." : "No signing key is loaded.");
}

static void line(struct buf *b, const char *name, const char *labels, uint64_t v)
{
    buf_printf(b, "%s%s %llu\n", name, labels, (unsigned long long)v);
}

void api_metrics(struct request *r)
{
    struct app *app = r->app;
    if (app->cfg->metrics == METRICS_OFF ||
        (app->cfg->metrics == METRICS_LOOPBACK &&
         (!request_peer_is_loopback(r) || request_forwarded(r)))) {
        respond_error(r, 404, "not_found", "There is no such endpoint.");
        return;
    }
    struct metrics *m = &app->metrics;
    struct buf b;
    buf_init(&b, 1 << 20);
    http_metrics_write(r->metrics, &b);
    buf_appends(&b, "# HELP jwtd_logins_total Login attempts by result.\n"
                    "# TYPE jwtd_logins_total counter\n");
    for (int i = 0; i < LOGIN_RESULT_COUNT; i++) {
        char labels[48];
        snprintf(labels, sizeof labels, "{result=\"%s\"}", metrics_login_name(i));
        line(&b, "jwtd_logins_total", labels, atomic_load(&m->logins[i]));
    }
    buf_appends(&b, "# HELP jwtd_refresh_total Refresh requests by outcome.\n"
                    "# TYPE jwtd_refresh_total counter\n");
    for (int i = 0; i < RR_COUNT; i++) {
        char labels[48];
        snprintf(labels, sizeof labels, "{outcome=\"%s\"}", metrics_refresh_name(i));
        line(&b, "jwtd_refresh_total", labels, atomic_load(&m->refresh[i]));
    }
    buf_appends(&b, "# HELP jwtd_mail_total Delivery attempts of queued mail by result.\n"
                    "# TYPE jwtd_mail_total counter\n");
    for (int i = 0; i < MR_COUNT; i++) {
        char labels[48];
        snprintf(labels, sizeof labels, "{result=\"%s\"}", metrics_mail_name(i));
        line(&b, "jwtd_mail_total", labels, atomic_load(&m->mail[i]));
    }
    buf_appends(&b, "# HELP jwtd_mail_queued Messages waiting in the outbox (all instances).\n"
                    "# TYPE jwtd_mail_queued gauge\n");
    line(&b, "jwtd_mail_queued", "", (uint64_t)atomic_load(&m->mail_queued));
    buf_appends(&b, "# TYPE jwtd_signups_total counter\n");
    line(&b, "jwtd_signups_total", "", atomic_load(&m->signups_ok));
    buf_appends(&b, "# TYPE jwtd_revocations_total counter\n");
    line(&b, "jwtd_revocations_total", "", atomic_load(&m->revocations));
    buf_appends(&b, "# TYPE jwtd_verify_cache_hits_total counter\n");
    line(&b, "jwtd_verify_cache_hits_total", "", atomic_load(&m->vcache_hits));
    buf_appends(&b, "# TYPE jwtd_verify_cache_misses_total counter\n");
    line(&b, "jwtd_verify_cache_misses_total", "", atomic_load(&m->vcache_misses));
    buf_appends(&b, "# TYPE jwtd_storage_errors_total counter\n");
    line(&b, "jwtd_storage_errors_total", "", atomic_load(&m->storage_errors));
    buf_appends(&b, "# HELP jwtd_hash_queue_depth Password jobs waiting or running.\n"
                    "# TYPE jwtd_hash_queue_depth gauge\n");
    line(&b, "jwtd_hash_queue_depth", "", workpool_depth(app->hash));
    buf_appends(&b, "# TYPE jwtd_hash_rejected_total counter\n");
    line(&b, "jwtd_hash_rejected_total", "", workpool_rejected(app->hash));
    buf_appends(&b, "# TYPE jwtd_hash_expired_total counter\n");
    line(&b, "jwtd_hash_expired_total", "", workpool_expired(app->hash));
    buf_appends(&b, "# HELP jwtd_hash_queue_wait_seconds How long password jobs waited for a "
                    "hashing thread.\n"
                    "# TYPE jwtd_hash_queue_wait_seconds histogram\n");
    histogram_write(workpool_wait(app->hash), &b, "jwtd_hash_queue_wait_seconds", "");
    buf_appends(&b, "# HELP jwtd_io_queue_wait_seconds How long requests waited for an I/O "
                    "thread.\n"
                    "# TYPE jwtd_io_queue_wait_seconds histogram\n");
    histogram_write(workpool_wait(app->io), &b, "jwtd_io_queue_wait_seconds", "");
    buf_appends(&b, "# TYPE jwtd_revoked_sessions gauge\n");
    line(&b, "jwtd_revoked_sessions", "", revoked_size(app->revoked));
    buf_appends(&b, "# TYPE jwtd_keyring_generation gauge\n");
    line(&b, "jwtd_keyring_generation", "", keyring_generation(app->keys));
    buf_appends(&b, "# TYPE jwtd_storage_up gauge\n");
    line(&b, "jwtd_storage_up", "", atomic_load(&app->storage_ok) ? 1 : 0);
    buf_appends(&b, "# TYPE jwtd_uptime_seconds gauge\n");
    line(&b, "jwtd_uptime_seconds", "", (uint64_t)(util_now() - app->started_at));

    respond_header(r, "Content-Type", "text/plain; version=0.0.4; charset=utf-8");
    respond_text(r, 200, b.data ? b.data : "", b.len);
    buf_free(&b);
}
