/* SPDX-License-Identifier: Apache-2.0 */
/*
 * `jwtd serve`: build the app (configuration, storage, keys, pools), serve
 * until SIGTERM/SIGINT, then shut down cleanly: stop accepting, let
 * in-flight requests finish (up to 10 s), stop the threads, close storage.
 * Also the shared set-up of the operator commands (cli_open).
 */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "cli/cli.h"
#include "core/app.h"
#include "core/log.h"
#include "core/util.h"
#include "http/server.h"
#include "lib/jwtd_internal.h"

void cli_redact_url(const char *url, char *out, size_t cap)
{
    /* postgres://user:password@host/db -> postgres://user:***@host/db */
    const char *scheme = strstr(url, "://");
    const char *at = scheme ? strchr(scheme + 3, '@') : NULL;
    const char *colon = scheme ? strchr(scheme + 3, ':') : NULL;
    if (at && colon && colon < at)
        snprintf(out, cap, "%.*s:***%s", (int)(colon - url), url, at);
    else
        snprintf(out, cap, "%s", url);
}

static bool open_store(const struct config *cfg, struct store **ret)
{
    char err[256];
    struct store_options opt = {.sqlite_sync_full = cfg->sqlite_sync_full};
    if (store_open(cfg->database, &opt, ret, err, sizeof err) != STORE_OK) {
        fprintf(stderr, "jwtd: JWTD_DATABASE: %s\n", err);
        return false;
    }
    enum store_rc rc = STORE_CALL0(*ret, migrate);
    if (rc != STORE_OK) {
        fprintf(stderr, "jwtd: JWTD_DATABASE: cannot apply schema migrations (%s)%s\n",
                store_rc_name(rc),
                rc == STORE_ERROR ? "; is the database from a newer jwtd?" : "");
        store_close(*ret);
        *ret = NULL;
        return false;
    }
    return true;
}

bool cli_open(int argc, char **argv, struct config *cfg, struct store **ret_store)
{
    char err[512];
    config_defaults(cfg);
    if (!config_load(cfg, argc, argv, err, sizeof err)) {
        fprintf(stderr, "jwtd: %s\n", err);
        return false;
    }
    log_setup(cfg->log_level, cfg->log_json);
    return open_store(cfg, ret_store);
}

int cmd_migrate(int argc, char **argv)
{
    struct config cfg;
    struct store *store = NULL;
    bool ok = cli_open(argc, argv, &cfg, &store);
    if (ok)
        printf("database is up to date\n");
    store_close(store);
    config_free(&cfg);
    return ok ? 0 : 1;
}

/* ---------------------------------------------------------------- app -- */

static void app_free(struct app *app)
{
    app_background_stop(app);
    hashpool_free(app->io);
    hashpool_free(app->pool);
    keyring_free(app->keys);
    jwtd_verifier_free(app->verifier);
    vcache_free(app->vcache);
    revoked_free(app->revoked);
    password_policy_free(app->policy);
    password_hash_free(app->dummy_hash);
    OPENSSL_cleanse(app->refresh_key, sizeof app->refresh_key);
    store_close(app->store);
    pthread_mutex_destroy(&app->rev_lock);
}

static bool app_init(struct app *app, struct config *cfg, char *err, size_t errlen)
{
    memset(app, 0, sizeof *app);
    app->cfg = cfg;
    app->started_at = util_now();
    pthread_mutex_init(&app->rev_lock, NULL);
    app->argon2 = (struct password_params){cfg->argon2_memory_kib, cfg->argon2_iterations,
                                           cfg->argon2_parallelism};
    if (!open_store(cfg, &app->store)) {
        snprintf(err, errlen, "%s", "");
        return false;
    }
    atomic_store(&app->storage_ok, true);

    /* The refresh-token MAC key: shared by every instance on this storage. */
    uint8_t candidate[REFRESH_KEY_LEN];
    size_t klen = 0;
    if (!util_random(candidate, sizeof candidate) ||
        STORE_CALL(app->store, secret_get_or_create, "refresh_hmac", candidate, sizeof candidate,
                   app->refresh_key, sizeof app->refresh_key, &klen) != STORE_OK ||
        klen != REFRESH_KEY_LEN) {
        OPENSSL_cleanse(candidate, sizeof candidate);
        snprintf(err, errlen, "JWTD_DATABASE: cannot read or create the refresh-token key");
        return false;
    }
    OPENSSL_cleanse(candidate, sizeof candidate);

    app->keys = keyring_new(cfg, app->store);
    if (!app->keys || !keyring_start(app->keys, err, errlen))
        return false;

    if (jwtd_verifier_new(&app->verifier) != JWTD_OK ||
        jwtd_verifier_set_algs(app->verifier, cfg->alg == JWTD_ALG_HS256
                                                  ? JWTD_ALG_HS256
                                                  : JWTD_ALGS_ASYMMETRIC) != JWTD_OK ||
        jwtd_verifier_set_issuer(app->verifier, cfg->issuer) != JWTD_OK ||
        jwtd_verifier_set_audience(app->verifier, cfg->audience) != JWTD_OK ||
        jwtd_verifier_set_leeway(app->verifier, cfg->leeway) != JWTD_OK) {
        snprintf(err, errlen, "cannot configure the token verifier");
        return false;
    }

    app->policy = password_policy_new();
    app->revoked = revoked_new();
    app->vcache = vcache_new(8192);
    if (!app->policy || !app->revoked || !app->vcache) {
        snprintf(err, errlen, "out of memory");
        return false;
    }

    /* Unknown usernames are checked against this hash, so that they cost
     * what a real account costs (same parameters, random password). */
    uint8_t pw[32];
    char pwtext[44];
    if (!util_random(pw, sizeof pw) ||
        jwtd__b64url_encode(pw, sizeof pw, pwtext, sizeof pwtext) == 0 ||
        password_hash(&app->argon2, pwtext, strlen(pwtext), &app->dummy_hash) != PASSWORD_OK) {
        snprintf(err, errlen, "cannot prepare the password hasher (argon2id)");
        return false;
    }
    OPENSSL_cleanse(pw, sizeof pw);
    OPENSSL_cleanse(pwtext, sizeof pwtext);

    /* Everything revoked within an access token's life still matters. */
    app->rev_since_ms = util_now_ms() - (cfg->access_ttl + cfg->leeway + 5) * 1000;
    if (!app_sync_revocations(app)) {
        snprintf(err, errlen, "JWTD_DATABASE: cannot read revocations");
        return false;
    }

    app->pool = hashpool_new(cfg->hash_workers, cfg->hash_queue, cfg->hash_priority,
                             cfg->hash_deadline_ms, cfg->hash_cpus_pinned ? &cfg->hash_cpus : NULL);
    if (!app->pool) {
        snprintf(err, errlen, "JWTD_HASH_WORKERS: cannot start the hashing threads");
        return false;
    }
    /* Storage waits happen here, as SCHED_BATCH: a fair share of the CPU,
     * but waking up does not preempt an HTTP thread answering /auth/verify
     * (measured: the wake-ups of a login flood's I/O work were what stretched
     * the verify p99). The queue is generous (these jobs are short), the
     * deadline the same as for hashing. */
    app->io = hashpool_new(cfg->io_workers, cfg->io_workers * 64, HASH_PRIO_IO_BATCH,
                           cfg->hash_deadline_ms, NULL);
    if (!app->io) {
        snprintf(err, errlen, "JWTD_IO_WORKERS: cannot start the I/O threads");
        return false;
    }
    return true;
}

/* ------------------------------------------------------------- serve --- */

int cmd_serve(int argc, char **argv)
{
    for (int i = 0; i < argc; i++)
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            printf("usage: jwtd serve [--setting=value ...]\n\n");
            config_print_help();
            return 0;
        }
    struct config cfg;
    char err[512];
    config_defaults(&cfg);
    if (!config_load(&cfg, argc, argv, err, sizeof err)) {
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
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);

    struct app app;
    err[0] = '\0';
    if (!app_init(&app, &cfg, err, sizeof err)) {
        if (err[0])
            fprintf(stderr, "jwtd: %s\n", err);
        app_free(&app);
        config_free(&cfg);
        return 1;
    }
    if (!app_background_start(&app)) {
        fprintf(stderr, "jwtd: cannot start the background thread\n");
        app_free(&app);
        config_free(&cfg);
        return 1;
    }
    struct server *srv = server_start(&app, err, sizeof err);
    if (!srv) {
        fprintf(stderr, "jwtd: %s\n", err);
        app_free(&app);
        config_free(&cfg);
        return 1;
    }
    char db[256], workers[16], hash_workers[16];
    cli_redact_url(cfg.database, db, sizeof db);
    snprintf(workers, sizeof workers, "%u", cfg.workers);
    snprintf(hash_workers, sizeof hash_workers, "%u", cfg.hash_workers);
    LOGE(LOG_INFO, "listening", "address", cfg.listen, "tls", cfg.tls_cert_pem ? "on" : "off",
         "issuer", cfg.issuer, "alg", config_alg_name(cfg.alg), "database", db, "workers", workers,
         "hash_workers", hash_workers, "signup", cfg.signup_open ? "open" : "closed");

    int sig = 0;
    sigwait(&sigs, &sig);
    LOGE(LOG_INFO, "shutting_down", "signal", sig == SIGTERM ? "SIGTERM" : "SIGINT");

    server_quiesce(srv);
    int64_t deadline = util_mono_ms() + 10000;
    while (atomic_load(&app.in_flight) > 0 && util_mono_ms() < deadline)
        usleep(10000);
    int left = atomic_load(&app.in_flight);
    server_stop(srv);
    app_free(&app);
    char leftbuf[16];
    snprintf(leftbuf, sizeof leftbuf, "%d", left);
    LOGE(LOG_INFO, "stopped", "unfinished_requests", leftbuf);
    config_free(&cfg);
    return 0;
}
