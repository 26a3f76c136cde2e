/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The background thread of `jwtd serve`: keeps the revoked-session set fed
 * from storage (every JWTD_REVOCATION_POLL), the key ring fresh and on
 * schedule (every JWTD_KEYRING_POLL, and soon after the hot path met an
 * unknown kid), storage pruned (every 10 minutes, in slices between the
 * other duties, so that a backlog never delays the revocation feed), and the readiness probe
 * current (every second). It never serves requests and never holds a lock
 * the hot path needs while it waits on storage.
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

/* Re-reads of the ring asked for by unknown kids: at most one a second, so
 * that a flood of tokens with made-up kids costs storage one query a
 * second, while a genuinely new key is picked up within about a second. */
#define KID_RELOAD_INTERVAL_MS 1000

/* Storage is pruned every 10 minutes, at most this long per turn of the
 * loop: a backlog of millions of rows is worked off over many turns, each
 * followed by the revocation feed as usual. */
#define PRUNE_INTERVAL_MS (10 * 60 * 1000)
#define PRUNE_SLICE_MS 100

struct prune_pass {
    bool pending;
    int64_t started_ms, removed;
};

/* One slice of the storage prune (store_prune_until). A failure ends the
 * pass: the next one is due at the usual interval. */
static void prune_slice(struct app *app, struct prune_pass *p)
{
    int64_t start = util_mono_ms();
    if (p->started_ms == 0)
        p->started_ms = start;
    bool done = false;
    enum store_rc rc = store_prune_until(app->store, util_now(), util_now_ms(),
                                         start + PRUNE_SLICE_MS, &p->removed, &done);
    if (rc != STORE_OK)
        LOG(LOG_WARN, "storage_prune_failed", LF_S("reason", store_rc_name(rc)),
            LF_I("rows", p->removed));
    else if (done && p->removed > 0)
        LOG(LOG_INFO, "storage_pruned", LF_I("rows", p->removed),
            LF_I("ms", util_mono_ms() - p->started_ms));
    if (rc != STORE_OK || done)
        *p = (struct prune_pass){0};
}

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

void app_request_ring_reload(struct app *app)
{
    if (!app->bg_running || atomic_load(&app->ring_reload_wanted))
        return; /* no thread to ask, or already asked */
    if (atomic_exchange(&app->ring_reload_wanted, true))
        return;
    /* bg_lock is held only around the wait, never during storage work: this
     * is a short wait at worst, once per reload. */
    pthread_mutex_lock(&app->bg_lock);
    pthread_cond_signal(&app->bg_cond);
    pthread_mutex_unlock(&app->bg_lock);
}

/* Re-read the ring when asked and the last asked-for re-read is a second
 * old. */
static void reload_ring_if_asked(struct app *app, int64_t now, int64_t *next_kid_reload)
{
    if (now < *next_kid_reload || !atomic_exchange(&app->ring_reload_wanted, false))
        return;
    keyring_reload(app->keys);
    *next_kid_reload = now + KID_RELOAD_INTERVAL_MS;
}

/* How long to sleep (under bg_lock, so that a request made after this read
 * signals a thread that already waits): one revocation poll, or less when
 * a re-read of the ring is wanted and due sooner. */
static int64_t sleep_ms(struct app *app, const struct config *cfg, int64_t next_kid_reload)
{
    int64_t ms = cfg->revocation_poll_ms;
    if (atomic_load(&app->ring_reload_wanted)) {
        int64_t due = next_kid_reload - util_mono_ms();
        if (due < ms)
            ms = due > 0 ? due : 0;
    }
    return ms;
}

static void *background(void *arg)
{
    struct app *app = arg;
    const struct config *cfg = app->cfg;
    int64_t next_keys = util_mono_ms() + cfg->keyring_poll_ms;
    int64_t next_prune = util_mono_ms() + 60 * 1000;
    struct prune_pass prune = {0};
    int64_t next_probe = 0;
    int64_t next_set_prune = util_mono_ms() + 60 * 1000;
    int64_t next_kid_reload = 0;
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
        /* Before the revocation feed: a client is waiting on this one. */
        reload_ring_if_asked(app, now, &next_kid_reload);
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
            prune.pending = true;
            next_prune = now + PRUNE_INTERVAL_MS;
        }
        if (prune.pending)
            prune_slice(app, &prune);
        pthread_mutex_lock(&app->bg_lock);
        int64_t ms = sleep_ms(app, cfg, next_kid_reload);
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        int64_t ns = until.tv_nsec + (ms % 1000) * 1000000;
        until.tv_sec += ms / 1000 + ns / 1000000000;
        until.tv_nsec = ns % 1000000000;
        if (!app->bg_stop && ms > 0)
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
