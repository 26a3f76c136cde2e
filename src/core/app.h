/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The server's context: everything a request handler may use, passed as a
 * pointer (no global server struct). Built by `jwtd serve` (cli/serve.c) and
 * torn down there in reverse order.
 */
#ifndef JWTD_APP_H
#define JWTD_APP_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "jwtd.h"
#include "core/config.h"
#include "core/hashpool.h"
#include "core/keyring.h"
#include "core/metrics.h"
#include "core/password.h"
#include "core/revoked.h"
#include "core/tokens.h"
#include "core/vcache.h"
#include "store/store.h"

struct app {
    struct config *cfg;
    struct store *store;
    struct keyring *keys;
    struct hashpool *pool;            /* password hashing */
    struct hashpool *io;              /* handlers that wait on storage */
    struct revoked_set *revoked;
    struct vcache *vcache;
    struct password_policy *policy;
    jwtd_verifier *verifier;
    struct password_params argon2;
    char *dummy_hash;                 /* verified for unknown usernames */
    uint8_t refresh_key[REFRESH_KEY_LEN];
    struct metrics metrics;
    atomic_bool storage_ok;           /* last storage probe succeeded */
    atomic_int_fast64_t last_kid_reload_ms; /* rate limit of reloads on unknown kid */
    atomic_int in_flight;             /* requests being answered */
    int64_t started_at;
    /* revocation feed position (guarded by rev_lock) */
    pthread_mutex_t rev_lock;
    int64_t rev_since_ms;
    /* background thread */
    pthread_t bg_thread;
    bool bg_running;
    pthread_mutex_t bg_lock;
    pthread_cond_t bg_cond;
    bool bg_stop;
};

/* What a valid access token says about its bearer. */
struct identity {
    char sub[UUID_STR_LEN];
    char sid[UUID_STR_LEN];
    char username[USERNAME_MAX + 1];
    int64_t exp;
};

/*
 * Check an access token: size, signature and claims (through the verify
 * cache), then the revoked-session set. No storage access. On failure
 * returns false and a static reason suitable for error_description.
 */
bool access_check(struct app *app, const char *token, size_t len, int64_t now,
                  struct identity *ret_id, const char **ret_reason);

/* Record a revocation locally (at once) - the storage feed brings the same
 * to other instances. */
void app_note_revoked(struct app *app, const char *sid, int64_t expires_ms);

/* The revocation record for a revocation made now. */
struct revocation app_revocation_now(const struct app *app);

/* Read the storage's revocation feed since the last read (with an overlap
 * for clock skew and slow commits) into the revoked set. Called by the
 * background thread every JWTD_REVOCATION_POLL, and by handlers right
 * after bulk revocations so that this instance knows at once. */
bool app_sync_revocations(struct app *app);

/* The background duties (revocation feed, key ring, pruning, storage
 * probe) on their own thread until app_background_stop(). */
bool app_background_start(struct app *app);
void app_background_stop(struct app *app);

#endif /* JWTD_APP_H */
