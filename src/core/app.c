/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Building and tearing down the app (app.h): storage, the refresh-token
 * key, signing keys, the verifier, the password policy and hasher, the
 * pools and the revoked-session set, in the order each needs the others.
 * Operator commands get the same storage and rules without the serving
 * parts.
 */
#include "core/app.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include <jansson.h>

#include "base/log.h"
#include "core/qrsvg.h"
#include "lib/jwtd_internal.h"

/* Storage reports what an operator should hear about; logging is ours. */
static void store_event(void *ctx, enum store_event ev, const char *detail)
{
    (void)ctx;
    switch (ev) {
    case STORE_EV_DOWN:
        LOG(LOG_WARN, "storage_down", LF_S("action", detail));
        break;
    case STORE_EV_UP:
        LOG(LOG_INFO, "storage_up", LF_S("action", detail));
        break;
    case STORE_EV_NOTICE:
        LOG(LOG_DEBUG, "storage_notice", LF_S("message", detail));
        break;
    case STORE_EV_WARNING:
        LOG(LOG_WARN, "storage_warning", LF_S("message", detail));
        break;
    case STORE_EV_ERROR:
        LOG(LOG_ERROR, "storage_error", LF_S("message", detail));
        break;
    }
}

static bool schema_current(struct app *app, char *err, size_t errlen)
{
    int current = 0, latest = 0;
    enum store_rc rc = store_schema_version(app->store, &current, &latest);
    if (rc != STORE_OK)
        snprintf(err, errlen, "JWTD_DATABASE: cannot read the schema version (%s)",
                 store_rc_name(rc));
    else if (current == 0)
        /* PostgreSQL takes jwtd's tables beside others; a SQLite file of
         * another application's is refused by every migration (sq_migrate),
         * so the advice must not promise one there. */
        snprintf(err, errlen, "JWTD_DATABASE: no jwtd database there (no jwtd schema); is it "
                              "the server's database (--config, JWTD_DATABASE)? %s: check the "
                              "path first",
                 config_uses_postgres(app->cfg)
                     ? "`jwtd migrate` makes one there, beside any other application's tables"
                     : "`jwtd migrate` makes one in a new or empty file (never in a file "
                       "holding another application's tables)");
    else if (current < latest)
        snprintf(err, errlen, "JWTD_DATABASE: the schema is at version %d of %d: run `jwtd "
                              "migrate` (or start the server) first", current, latest);
    else if (current > latest)
        snprintf(err, errlen, "JWTD_DATABASE: the schema is at version %d, newer than this "
                              "jwtd's %d", current, latest);
    app->schema_too_new = rc == STORE_OK && current > latest;
    return rc == STORE_OK && current == latest;
}

static bool open_store(struct app *app, char *err, size_t errlen)
{
    char why[512];
    struct store_options opt = {.sqlite_sync_full = app->cfg->sqlite_sync_full,
                                .must_exist = app->mode == APP_READ_ONLY ||
                                              app->mode == APP_EXISTING,
                                .timeout_ms = (int)app->cfg->db_timeout_ms,
                                .on_event = store_event};
    if (store_open(app->cfg->database, &opt, &app->store, why, sizeof why) != STORE_OK) {
        snprintf(err, errlen, "JWTD_DATABASE: %s", why);
        return false;
    }
    /* A command that must not write (a reading one, or one on existing
     * accounts and keys) does not migrate either: a database left at an
     * older schema is for `jwtd migrate` or the server to upgrade, and a
     * URL naming another application's database gets no tables made in
     * it. */
    if (app->mode == APP_READ_ONLY || app->mode == APP_EXISTING)
        return schema_current(app, err, errlen);
    int latest = 0;
    if (store_schema_version(app->store, &app->schema_from, &latest) != STORE_OK)
        app->schema_from = -1; /* unknown: the migration will say why */
    if (app->schema_from > latest) {
        /* Written by a newer jwtd: never run half-understood. */
        snprintf(err, errlen, "JWTD_DATABASE: the schema is at version %d, newer than this "
                              "jwtd's %d", app->schema_from, latest);
        app->schema_too_new = true;
        return false;
    }
    /* What this process found under the migration lock: of instances
     * starting together, only the one that migrated says so. */
    enum store_rc rc = store_migrate_from(app->store, &app->schema_from);
    if (rc == STORE_OK && store_schema_version(app->store, &app->schema_to, &latest) != STORE_OK)
        app->schema_to = latest;
    if (rc == STORE_OK && app->schema_from >= 0 && app->schema_from != app->schema_to)
        LOG(LOG_INFO, "schema_migrated", LF_I("from", app->schema_from),
            LF_I("to", app->schema_to));
    if (rc != STORE_OK) {
        snprintf(err, errlen, "JWTD_DATABASE: cannot apply schema migrations (%s)%s",
                 store_rc_name(rc),
                 rc == STORE_ERROR      ? "; is the database from a newer jwtd?"
                 : rc == STORE_CONFLICT ? ": the SQLite file holds another application's "
                                          "tables and no jwtd schema; give jwtd a file of its "
                                          "own (check JWTD_DATABASE)"
                                        : "");
        return false;
    }
    return true;
}

void app_storage_state(struct app *app, bool ok)
{
    if (atomic_exchange(&app->storage_ok, ok) == ok)
        return;
    atomic_store(ok ? &app->storage_up_ms : &app->storage_down_ms, util_now_ms());
    LOG(ok ? LOG_INFO : LOG_WARN, "storage_state", LF_B("up", ok));
}

void app_pools_stop(struct app *app)
{
    /* The hashing pool first: a hashing job's completion continues on the
     * I/O pool (dropped ones too, to answer 503), so the I/O pool must
     * still take work while the hashing pool empties. */
    workpool_stop(app->hash);
    workpool_stop(app->io);
}

void app_close(struct app *app)
{
    /* The pools' jobs wake the mail worker (mail_wake): they stop before
     * it, and before the memory they use goes. */
    app_pools_stop(app);
    app_background_stop(app);
    workpool_free(app->io);
    workpool_free(app->hash);
    keyring_free(app->keys);
    jwtd_verifier_free(app->verifier);
    vcache_free(app->vcache);
    revoked_free(app->revoked);
    password_policy_free(app->policy);
    password_hash_free(app->dummy_hash);
    OPENSSL_cleanse(app->refresh_key, sizeof app->refresh_key);
    OPENSSL_cleanse(app->mail_key, sizeof app->mail_key);
    store_close(app->store);
    if (app->cfg)
        pthread_mutex_destroy(&app->rev_lock);
    /* The configurations SIGHUP installed (the first one is the caller's). */
    struct config *current = app->cfg;
    bool current_is_ours = app->retired != NULL;
    for (struct retired_config *r = app->retired; r;) {
        struct retired_config *next = r->next;
        if (r->cfg != app->first_cfg) {
            config_free(r->cfg);
            free(r->cfg);
        }
        free(r);
        r = next;
    }
    if (current_is_ours && current != app->first_cfg) {
        config_free(current);
        free(current);
    }
    memset(app, 0, sizeof *app);
}

void app_replace_config(struct app *app, struct config *next)
{
    struct retired_config *r = calloc(1, sizeof *r);
    struct config *old = app->cfg;
    if (r) {
        r->cfg = old;
        r->next = app->retired;
        app->retired = r;
    } /* else: the old one leaks, which is better than freeing it under a reader */
    app->cfg = next;
    log_set_level(next->log_level);
}

/* The JSON and QR libraries bind the C library's functions they call
 * lazily (they are not linked with -z now): on a first call the dynamic
 * linker saves the vector registers on the stack, where a string function
 * may have left part of a request body with its password, or of an
 * authenticator's secret. Used once here, nothing of a request is in them.
 * (libargon2's are bound by the dummy hash above.) */
static void warm_up_libraries(void)
{
    char *svg = NULL;
    size_t svglen = 0;
    if (qrsvg_render("otpauth://totp/warm-up?secret=AAAAAAAAAAAAAAAA&issuer=warm-up", "warm-up",
                     &svg, &svglen))
        free(svg);
    static const char good[] = "{\"username\": \"warm-up\", \"password\": \"-\", \"n\": 1, "
                               "\"x\": 1.5e3, \"a\": [true, false, null], \"u\": \"\\u00e9\"}";
    static const char bad[] = "{\"a\": [1, \"b\"";
    json_error_t e;
    json_t *j = json_loadb(good, sizeof good - 1,
                           JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL | JSON_DECODE_ANY, &e);
    char *text = j ? json_dumps(j, JSON_COMPACT) : NULL;
    free(text);
    json_decref(j);
    json_decref(json_loadb(bad, sizeof bad - 1, JSON_REJECT_DUPLICATES, &e));
}

/* Why a shared secret could not be read or made, in the start-up error's
 * words: a busy or unreachable database (another process writing the
 * SQLite file without pause, PostgreSQL down) is worth another try. */
static void secret_failed(char *err, size_t errlen, const char *what, enum store_rc rc)
{
    if (rc == STORE_UNAVAILABLE)
        snprintf(err, errlen,
                 "JWTD_DATABASE: cannot read or create the %s: the database is busy or "
                 "unreachable (waited JWTD_DB_TIMEOUT); try again",
                 what);
    else
        snprintf(err, errlen, "JWTD_DATABASE: cannot read or create the %s", what);
}

bool app_open(struct app *app, struct config *cfg, enum app_mode mode, char *err, size_t errlen)
{
    memset(app, 0, sizeof *app);
    app->cfg = cfg;
    app->first_cfg = cfg;
    app->mode = mode;
    app->started_at = util_now();
    pthread_mutex_init(&app->rev_lock, NULL);
    app->argon2 = (struct password_params){cfg->argon2_memory_kib, cfg->argon2_iterations,
                                           cfg->argon2_parallelism};
    if (!open_store(app, err, errlen))
        return false;
    atomic_store(&app->storage_ok, true);
    app->policy = password_policy_new();
    if (!app->policy) {
        snprintf(err, errlen, "out of memory");
        return false;
    }
    if (mode == APP_READ_ONLY)
        return true;
    /* The key links and codes of mail are derived from: shared too. */
    uint8_t mcand[sizeof app->mail_key];
    size_t mlen = 0;
    enum store_rc mrc = STORE_ERROR;
    bool mok = util_random(mcand, sizeof mcand) &&
               (mrc = store_secret_get_or_create(app->store, "mail_hmac", mcand, sizeof mcand,
                                                 app->mail_key, sizeof app->mail_key, &mlen)) ==
                   STORE_OK &&
               mlen == sizeof app->mail_key;
    OPENSSL_cleanse(mcand, sizeof mcand);
    if (!mok) {
        secret_failed(err, errlen, "mail key", mrc);
        return false;
    }
    if (mode != APP_SERVE)
        return true;

    /* The refresh-token MAC key: shared by every instance on this storage. */
    uint8_t candidate[REFRESH_KEY_LEN];
    size_t klen = 0;
    enum store_rc krc = STORE_ERROR;
    if (!util_random(candidate, sizeof candidate) ||
        (krc = store_secret_get_or_create(app->store, "refresh_hmac", candidate,
                                          sizeof candidate, app->refresh_key,
                                          sizeof app->refresh_key, &klen)) != STORE_OK ||
        klen != REFRESH_KEY_LEN) {
        OPENSSL_cleanse(candidate, sizeof candidate);
        secret_failed(err, errlen, "refresh-token key", krc);
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

    app->revoked = revoked_new();
    app->vcache = vcache_new(8192);
    if (!app->revoked || !app->vcache) {
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
    password_release_work_area(); /* this thread hashes no more */
    warm_up_libraries();

    /* Everything revoked within an access token's life still matters. */
    app->rev_since_ms = util_now_ms() - (cfg->access_ttl + cfg->leeway + 5) * 1000;
    if (!app_sync_revocations(app)) {
        snprintf(err, errlen, "JWTD_DATABASE: cannot read revocations");
        return false;
    }

    app->hash = workpool_new(cfg->hash_workers, cfg->hash_queue, cfg->hash_priority,
                             cfg->hash_deadline_ms, cfg->hash_cpus_pinned ? &cfg->hash_cpus : NULL);
    if (!app->hash) {
        snprintf(err, errlen, "JWTD_HASH_WORKERS: cannot start the hashing threads");
        return false;
    }
    /* Storage waits happen here, as SCHED_BATCH: a fair share of the CPU,
     * but waking up does not preempt an HTTP thread answering /auth/verify
     * (measured: the wake-ups of a login flood's I/O work were what stretched
     * the verify p99). The queue is generous (these jobs are short), the
     * deadline the same as for hashing. */
    app->io = workpool_new(cfg->io_workers, cfg->io_workers * 64, WORK_PRIO_IO_BATCH,
                           cfg->hash_deadline_ms, NULL);
    if (!app->io) {
        snprintf(err, errlen, "JWTD_IO_WORKERS: cannot start the I/O threads");
        return false;
    }
    return true;
}
