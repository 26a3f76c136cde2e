/* SPDX-License-Identifier: Apache-2.0 */
/*
 * `jwtd serve`: build the app (configuration, storage, keys, pools), serve
 * until SIGTERM/SIGINT, then shut down cleanly: stop accepting, let
 * in-flight requests finish (up to JWTD_DRAIN_TIMEOUT), answer the rest,
 * stop the threads, close storage. Also the shared set-up of the operator
 * commands (cli_open).
 */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "cli/cli.h"
#include "core/app.h"
#include "base/log.h"
#include "base/util.h"
#include "server/server.h"
#include "lib/jwtd_internal.h"

static const struct cli_cmd migrate_cmd = {
    "jwtd migrate",
    "Create the database when it does not exist, and apply pending schema migrations.\n"
    "`jwtd serve` does the same at start-up; this is for deployments that migrate first.",
    NULL, 0, 0, false};

int cmd_migrate(int argc, char **argv)
{
    struct cli_args a;
    int rc = cli_parse(argc, argv, &migrate_cmd, &a);
    if (rc == 0 && a.help)
        cli_help(&migrate_cmd);
    if (rc != 0 || a.help) {
        cli_args_free(&a);
        return rc;
    }
    struct config cfg;
    struct app app;
    rc = cli_open(a.nrest, a.rest, &cfg, &app, APP_COMMAND);
    if (rc == 0 && app.schema_from >= 0 && app.schema_from != app.schema_to)
        printf("database schema migrated from version %d to %d\n", app.schema_from,
               app.schema_to);
    else if (rc == 0)
        printf("database is up to date (schema version %d)\n", app.schema_to);
    cli_close(&cfg, &app);
    cli_args_free(&a);
    return rc;
}

/* ------------------------------------------------------------- serve --- */

/* ----------------------------------------------------------- SIGHUP --- */

struct reload_report {
    const struct config *running, *fresh;
    struct buf applied, restart;
    bool tls_changed;
};

static void note_change(void *vctx, size_t i, bool reloadable)
{
    struct reload_report *rep = vctx;
    const struct config_setting_info *info = config_setting(i);
    bool tls = strcmp(info->name, "JWTD_TLS_CERT") == 0 || strcmp(info->name, "JWTD_TLS_KEY") == 0;
    /* A new certificate or key for a TLS listener is swapped in; turning
     * TLS on or off needs a restart (another kind of listener). */
    if (tls && reloadable)
        reloadable = rep->running->tls_cert_pem != NULL && rep->fresh->tls_cert_pem != NULL;
    struct buf *b = reloadable ? &rep->applied : &rep->restart;
    buf_printf(b, "%s%s", b->len ? "," : "", info->name);
    if (tls && reloadable)
        rep->tls_changed = true;
}

static void log_reloaded(const struct reload_report *rep, const struct config *next)
{
    /* Settings the environment or a flag gives: a change to them in the
     * file does nothing (and the environment does not change on SIGHUP),
     * which "applied" and "needs_restart" alone would not tell. */
    struct buf held;
    buf_init(&held, 4096);
    for (size_t i = 0; next->config_path && i < config_setting_count(); i++)
        if (next->source[i] == CFG_ENV || next->source[i] == CFG_FLAG)
            buf_printf(&held, "%s%s", held.len ? "," : "", config_setting(i)->name);
    LOG(LOG_INFO, "reloaded", LF_S("applied", rep->applied.len ? rep->applied.data : ""),
        LF_S("needs_restart", rep->restart.len ? rep->restart.data : ""),
        LF_S("overridden", held.len ? held.data : ""),
        LF_S("config", next->config_path ? next->config_path : ""));
    buf_free(&held);
}

/* Re-read the configuration (same file, environment and flags), apply what
 * can change while serving, and say what needs a restart. A configuration
 * that does not load changes nothing. */
static void reload(struct app *app, struct server *srv, int argc, char **argv)
{
    char err[512];
    struct config fresh;
    config_defaults(&fresh);
    struct config *next = calloc(1, sizeof *next);
    struct reload_report rep = {.running = app->cfg, .fresh = &fresh};
    buf_init(&rep.applied, 4096);
    buf_init(&rep.restart, 4096);
    if (!next) {
        LOG(LOG_ERROR, "reload_failed", LF_S("reason", "out of memory"));
        goto out;
    }
    if (!config_load(&fresh, argc, argv, err, sizeof err) ||
        !config_reload_merge(app->cfg, &fresh, next, err, sizeof err)) {
        LOG(LOG_ERROR, "reload_failed", LF_S("reason", err),
            LF_S("action", "the running configuration is kept"));
        config_free(next);
        free(next);
        goto out;
    }
    config_diff(app->cfg, &fresh, note_change, &rep);
    if (rep.tls_changed &&
        !server_set_tls(srv, next->tls_cert_pem, next->tls_key_pem, err, sizeof err)) {
        LOG(LOG_ERROR, "reload_failed", LF_S("reason", err),
            LF_S("action", "the running configuration is kept"));
        config_free(next);
        free(next);
        goto out;
    }
    /* The line is written at the more verbose of the two levels: a reload
     * that raises the level to warn still says so, once. */
    bool quieter = next->log_level > app->cfg->log_level;
    if (quieter)
        log_reloaded(&rep, next);
    app_replace_config(app, next);
    if (!quieter)
        log_reloaded(&rep, next);
out:
    buf_free(&rep.applied);
    buf_free(&rep.restart);
    config_free(&fresh);
}

/* ---------------------------------------------------------- shutdown --- */

/* After the pools stopped, every request they held has its answer (a 503 at
 * worst) and its connection resumed; libmicrohttpd needs a moment to send
 * them. A client that does not read, or a body still arriving, must not
 * hold the exit longer than this. */
#define ANSWER_GRACE_MS 2000

/* Wait until no request is in flight or the monotonic clock reaches
 * until_ms; the number still in flight. */
static int wait_in_flight(struct app *app, int64_t until_ms)
{
    while (atomic_load(&app->in_flight) > 0 && util_mono_ms() < until_ms)
        usleep(10000);
    return atomic_load(&app->in_flight);
}

/*
 * The order matters. libmicrohttpd forbids MHD_stop_daemon() while a
 * connection is suspended (0.9.75 aborts the process), and a suspended
 * request's memory is referenced by its pool jobs. So: refuse new
 * connections and let work finish; past JWTD_DRAIN_TIMEOUT stop the pools
 * (hashing, then I/O: queued jobs answer 503 and resume their connection,
 * running ones finish); give the answers a moment to leave; only then stop
 * the daemon, when no connection is suspended and no job refers to a
 * request. app_close stops the mail worker after the pools, whose jobs
 * wake it.
 */
static void shut_down(struct app *app, struct server *srv)
{
    server_quiesce(srv);
    int left = wait_in_flight(app, util_mono_ms() + app->cfg->drain_timeout_ms);
    if (left > 0)
        LOG(LOG_WARN, "drain_timeout", LF_I("requests", left),
            LF_S("action", "queued work is answered 503, running work finishes"));
    app_pools_stop(app);
    int unanswered = wait_in_flight(app, util_mono_ms() + ANSWER_GRACE_MS);
    server_stop(srv);
    app_close(app);
    LOG(LOG_INFO, "stopped", LF_I("unfinished_requests", left),
        LF_I("closed_unanswered", unanswered));
}

/* ------------------------------------------------------------- serve --- */

/* A start-up failure after the log format is known: with JSON logs one
 * JSON line (event startup_failed), so that a log shipper that parses
 * every line keeps it; otherwise the plain line a person reads. */
static void startup_error(const struct config *cfg, const char *msg)
{
    if (cfg->log_json)
        LOG(LOG_ERROR, "startup_failed", LF_S("error", msg));
    else
        fprintf(stderr, "jwtd: %s\n", msg);
}

int cmd_serve(int argc, char **argv)
{
    for (int i = 0; i < argc; i++)
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            printf("usage: jwtd serve [--config PATH] [--setting=value ...]\n\n"
                   "Serve the HTTP API until SIGTERM or SIGINT (requests in flight finish).\n"
                   "SIGHUP re-reads the configuration and applies the [reload] settings.\n\n");
            config_print_help();
            return 0;
        }
    struct config cfg;
    char err[512];
    config_defaults(&cfg);
    if (!config_load(&cfg, argc, argv, err, sizeof err)) {
        cli_warn_unknown_env(false); /* a typo may be why: JWTD_JWT_SECERT */
        fprintf(stderr, "jwtd: %s\n", err);
        config_free(&cfg);
        return 2;
    }
    log_setup(cfg.log_level, cfg.log_json);

    /* Every thread inherits this mask; the main thread alone takes the
     * signals, with sigwait. */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);

    if (!server_probe_listen(&cfg, err, sizeof err)) {
        startup_error(&cfg, err);
        config_free(&cfg);
        return 1;
    }
    struct app app;
    if (!app_open(&app, &cfg, APP_SERVE, err, sizeof err)) {
        startup_error(&cfg, err);
        /* A newer jwtd's database: no restart mends that (exit 2, which
         * the unit does not restart), unlike an unreachable database. */
        int rc = app.schema_too_new ? 2 : 1;
        app_close(&app);
        config_free(&cfg);
        return rc;
    }
    if (!app_background_start(&app)) {
        startup_error(&cfg, "cannot start the background thread");
        app_close(&app);
        config_free(&cfg);
        return 1;
    }
    struct server *srv = server_start(&app, err, sizeof err);
    if (!srv) {
        startup_error(&cfg, err);
        app_close(&app);
        config_free(&cfg);
        return 1;
    }
    char db[256];
    util_redact_url(cfg.database, db, sizeof db);
    LOG(LOG_INFO, "listening", LF_S("address", cfg.listen), LF_B("tls", cfg.tls_cert_pem != NULL),
        LF_S("issuer", cfg.issuer), LF_S("alg", config_alg_name(cfg.alg)), LF_S("database", db),
        LF_I("workers", cfg.workers), LF_I("hash_workers", cfg.hash_workers),
        LF_S("signup", cfg.signup_open ? "open" : "closed"),
        LF_S("config", cfg.config_path ? cfg.config_path : ""));
    cli_config_warnings(&cfg, true);

    int sig = 0;
    for (;;) {
        if (sigwait(&sigs, &sig) != 0)
            continue;
        if (sig != SIGHUP)
            break;
        LOG(LOG_INFO, "reloading", LF_S("signal", "SIGHUP"));
        reload(&app, srv, argc, argv);
    }
    LOG(LOG_INFO, "shutting_down", LF_S("signal", sig == SIGTERM ? "SIGTERM" : "SIGINT"));

    shut_down(&app, srv);
    config_free(&cfg);
    return 0;
}
