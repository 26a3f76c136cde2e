/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The background thread of `jwtd serve`: keeps the revoked-session set fed
 * from storage (every JWTD_REVOCATION_POLL), the key ring fresh and on
 * schedule (every JWTD_KEYRING_POLL), storage pruned (every 10 minutes),
 * and the readiness probe current (every second). It never serves requests
 * and never holds a lock the hot path needs while it waits on storage.
 */
#include <errno.h>
#include <time.h>

#include "core/app.h"
#include "core/mail.h"
#include "base/log.h"
#include "base/util.h"

/* Revocations committed up to this long after their timestamp (slow
 * commits, clocks of other instances) are still seen. */
#define REVOCATION_OVERLAP_MS 30000

static void add_revocation(void *ctx, const char *sid, int64_t revoked_ms, int64_t expires_ms)
{
    struct app *app = ctx;
    (void)revoked_ms;
    if (!revoked_add(app->revoked, sid, expires_ms))
        LOG(LOG_ERROR, "revocation_not_recorded", LF_S("sid", sid), LF_S("reason", "out of memory"));
}

bool app_sync_revocations(struct app *app)
{
    pthread_mutex_lock(&app->rev_lock);
    int64_t start = util_now_ms();
    int64_t since = app->rev_since_ms;
    enum store_rc rc = store_revocations_since(app->store, since, add_revocation, app);
    if (rc == STORE_OK)
        app->rev_since_ms = start - REVOCATION_OVERLAP_MS;
    pthread_mutex_unlock(&app->rev_lock);
    if (rc != STORE_OK) {
        app_storage_state(app, false);
        return false;
    }
    return true;
}

static void *background(void *arg)
{
    struct app *app = arg;
    const struct config *cfg = app->cfg;
    int64_t next_keys = util_mono_ms() + cfg->keyring_poll_ms;
    int64_t next_prune = util_mono_ms() + 60 * 1000;
    int64_t next_probe = 0;
    int64_t next_set_prune = util_mono_ms() + 60 * 1000;
    pthread_mutex_lock(&app->bg_lock);
    while (!app->bg_stop) {
        pthread_mutex_unlock(&app->bg_lock);
        int64_t now = util_mono_ms();
        /* The probe comes first: it is what closes the storage backend's
         * circuit breaker after an outage (every other call fails fast
         * while it is open). */
        if (now >= next_probe || !atomic_load(&app->storage_ok)) {
            app_storage_state(app, store_ping(app->store) == STORE_OK);
            next_probe = now + 1000;
        }
        app_sync_revocations(app);
        if (now >= next_keys) {
            keyring_maintain(app->keys, util_now());
            next_keys = now + cfg->keyring_poll_ms;
        }
        if (now >= next_set_prune) {
            revoked_prune(app->revoked, util_now_ms());
            next_set_prune = now + 60 * 1000;
        }
        if (now >= next_prune) {
            store_prune(app->store, util_now(), util_now_ms());
            next_prune = now + 10 * 60 * 1000;
        }
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        int64_t ns = until.tv_nsec + (cfg->revocation_poll_ms % 1000) * 1000000;
        until.tv_sec += cfg->revocation_poll_ms / 1000 + ns / 1000000000;
        until.tv_nsec = ns % 1000000000;
        pthread_mutex_lock(&app->bg_lock);
        if (!app->bg_stop)
            pthread_cond_timedwait(&app->bg_cond, &app->bg_lock, &until);
    }
    pthread_mutex_unlock(&app->bg_lock);
    return NULL;
}

bool app_background_start(struct app *app)
{
    if (!mail_worker_start(app))
        return false;
    pthread_mutex_init(&app->bg_lock, NULL);
    pthread_cond_init(&app->bg_cond, NULL);
    app->bg_stop = false;
    if (pthread_create(&app->bg_thread, NULL, background, app) != 0)
        return false;
    app->bg_running = true;
    return true;
}

void app_background_stop(struct app *app)
{
    mail_worker_stop(app);
    if (!app->bg_running)
        return;
    pthread_mutex_lock(&app->bg_lock);
    app->bg_stop = true;
    pthread_cond_signal(&app->bg_cond);
    pthread_mutex_unlock(&app->bg_lock);
    pthread_join(app->bg_thread, NULL);
    app->bg_running = false;
    pthread_cond_destroy(&app->bg_cond);
    pthread_mutex_destroy(&app->bg_lock);
}
