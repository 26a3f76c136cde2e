/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The server's context: everything a service or a front end may use,
 * passed as a pointer (no global server struct). Built by app_open (app.c)
 * for `jwtd serve` with every part, or for an operator command with only
 * what commands need (no pools, no background thread), and torn down by
 * app_close in reverse order.
 */
#ifndef JWTD_APP_H
#define JWTD_APP_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "jwtd.h"
#include "core/config.h"
#include "core/keyring.h"
#include "core/metrics.h"
#include "core/password.h"
#include "core/revoked.h"
#include "core/tokens.h"
#include "core/vcache.h"
#include "core/workpool.h"
#include "store/store.h"

enum app_mode {
    APP_SERVE,     /* everything: keys made current, pools, revocation feed */
    APP_COMMAND,   /* an operator command that changes things */
    APP_EXISTING,  /* one that changes an existing account or key: never creates a database */
    APP_READ_ONLY  /* an operator command that only reads: never creates a database */
};

/* A configuration replaced by SIGHUP: kept until app_close, because
 * threads may still read the one they loaded. */
struct retired_config {
    struct config *cfg;
    struct retired_config *next;
};

struct app {
    enum app_mode mode;
    /* The configuration in force. Readers load the pointer once per use
     * (an atomic load); SIGHUP installs a new one (app_replace_config) whose
     * settings that need a restart are the same as before. */
    struct config *_Atomic cfg;
    struct retired_config *retired;
    struct config *first_cfg;         /* the caller's: never freed here */
    struct store *store;
    int schema_from, schema_to;       /* versions before and after migrating */
    bool schema_too_new;              /* app_open failed: a newer jwtd's database */
    struct keyring *keys;             /* APP_SERVE only */
    struct workpool *hash;            /* password hashing; APP_SERVE only */
    struct workpool *io;              /* requests that wait on storage; APP_SERVE only */
    struct revoked_set *revoked;
    struct vcache *vcache;
    struct password_policy *policy;
    jwtd_verifier *verifier;
    struct password_params argon2;
    char *dummy_hash;                 /* verified for unknown usernames */
    atomic_int_fast64_t dummy_verify_us; /* how long verifying it takes (moving average; 0: not yet) */
    uint8_t refresh_key[REFRESH_KEY_LEN];
    uint8_t mail_key[32];             /* derives the links and codes of mail */
    struct metrics metrics;
    atomic_bool storage_ok;           /* last storage probe succeeded */
    /* Wall-clock ms when storage last became unavailable and available
     * again (app_storage_state): writes committed around an outage may have
     * been answered 503 (sessions.c widens the reuse interval for them). */
    atomic_int_fast64_t storage_down_ms, storage_up_ms;
    atomic_int in_flight;             /* requests being answered */
    int64_t started_at;
    /* revocation feed position (guarded by rev_lock) */
    pthread_mutex_t rev_lock;
    int64_t rev_since_ms;
    /* background thread */
    pthread_t bg_thread;
    bool bg_running;                  /* set before the HTTP threads start, cleared after they end */
    pthread_mutex_t bg_lock;
    pthread_cond_t bg_cond;
    bool bg_stop;
    /* An unknown kid was seen: the background thread re-reads the key ring
     * (app_request_ring_reload). */
    atomic_bool ring_reload_wanted;
    /* mail worker (core/mail.c) */
    pthread_t mail_thread;
    atomic_bool mail_running;         /* read by I/O threads (mail_wake) */
    pthread_mutex_t mail_lock;
    pthread_cond_t mail_cond;
    atomic_bool mail_stop;            /* read unlocked between and during deliveries */
    bool mail_kick;
};

/*
 * Build the app for cfg (borrowed: must outlive the app) in `mode`: open and
 * migrate the database, and, for APP_SERVE, load or create the signing keys,
 * the refresh-token key, the pools and the revoked-session set. On failure
 * writes a one-line reason (naming the setting at fault) to err and returns
 * false; app_close must still be called.
 */
bool app_open(struct app *app, struct config *cfg, enum app_mode mode, char *err, size_t errlen);

/* Stop the hashing pool, then the I/O pool (workpool_stop): queued jobs
 * are completed as dropped (their requests answered 503 and resumed),
 * running ones finish. The pools stay allocated and refuse new work until
 * app_close, so HTTP threads may still call them. Call from one thread
 * (the signal loop); app_close calls it too. */
void app_pools_stop(struct app *app);

/* Stop the pools, then the background thread and the mail worker, free
 * everything. Safe on a partly opened app. */
void app_close(struct app *app);

/* Install next (heap, owned by the app from now on, freed by app_close)
 * as the configuration in force, and apply what takes effect outside the
 * config struct (the log level). Call from one thread (the signal loop). */
void app_replace_config(struct app *app, struct config *next);

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

/* Read the storage's revocation feed since the last read (with an overlap
 * for clock skew and slow commits) into the revoked set. Called by the
 * background thread every JWTD_REVOCATION_POLL, and by services right
 * after bulk revocations so that this instance knows at once. */
bool app_sync_revocations(struct app *app);

/* Record whether storage answers (probe results and failures); logs and
 * timestamps the changes. */
void app_storage_state(struct app *app, bool ok);

/* The background duties (revocation feed, key ring, pruning, storage
 * probe) on their own thread until app_background_stop(). */
bool app_background_start(struct app *app);
void app_background_stop(struct app *app);

/*
 * Ask the background thread to re-read the key ring soon: a token named a
 * kid the ring does not have, which may be a key another instance just
 * started to sign with. Returns at once: no storage, and no lock that is
 * held while storage is read (the hot path may call it). The background
 * thread re-reads the ring at most once a second however often it is asked.
 * Does nothing without a background thread (operator commands, tests).
 */
void app_request_ring_reload(struct app *app);

#endif /* JWTD_APP_H */
