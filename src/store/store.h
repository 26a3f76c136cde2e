/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The storage interface: the only door to persistent state, and the only
 * place with SQL behind it (sqlite.c, postgres.c). Every operation that
 * makes a decision (refresh rotation, conditional key inserts, rate-limit
 * counters) is atomic inside the backend, so that threads and instances
 * sharing one database can never both win.
 *
 * Threading: a store may be used from any number of threads at once; each
 * backend keeps one connection per thread. Times are Unix seconds unless a
 * name ends in _ms. Strings in results are copied into the caller's structs
 * (fixed-size fields) or heap strings the caller frees with the matching
 * _clear() function.
 */
#ifndef JWTD_STORE_H
#define JWTD_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/util.h"

enum store_rc {
    STORE_OK = 0,
    STORE_NOT_FOUND = 1,   /* no such row, or a compare-and-set lost */
    STORE_CONFLICT = 2,    /* unique constraint (username taken, ...) */
    STORE_UNAVAILABLE = -1,/* database unreachable, locked, read-only or full: retry later (503) */
    STORE_ERROR = -2       /* anything else: a bug or corruption (500) */
};

#define USERNAME_MAX 128
#define USER_AGENT_MAX 256
#define CLIENT_ADDR_MAX 64
#define KID_MAX 64

struct store_user {
    char id[UUID_STR_LEN];
    char username[USERNAME_MAX + 1];
    char *password_hash;   /* heap; NULL in lists */
    int64_t created_at;
};

/* Wipe and free the hash; NULL-safe. */
void store_user_clear(struct store_user *u);

struct store_session {
    char id[UUID_STR_LEN];
    char user_id[UUID_STR_LEN];
    int64_t created_at;
    int64_t last_used_at;
    int64_t expires_at;    /* absolute end of the session */
    uint32_t refresh_gen;  /* generation of the one live refresh token */
    int64_t rotated_at_ms; /* when refresh_gen last moved */
    int64_t revoked_at_ms; /* 0 when live */
    char user_agent[USER_AGENT_MAX + 1];
    char client_addr[CLIENT_ADDR_MAX + 1];
};

/* What a revocation writes to the revocations feed that every instance
 * polls: when, and until when access tokens of the session could live. */
struct revocation {
    int64_t now_ms;
    int64_t expires_ms;
};

enum refresh_outcome {
    REFRESH_ROTATED,  /* the presented token was current: generation moved on */
    REFRESH_REPLAYED, /* the token retired last, within the reuse interval: current pair again */
    REFRESH_UNKNOWN,  /* no such session */
    REFRESH_EXPIRED,  /* idle or absolute lifetime over */
    REFRESH_REVOKED,  /* session revoked earlier (logout, password change, ...) */
    REFRESH_REUSED    /* an older token: theft assumed, session revoked now */
};

struct refresh_policy {
    int64_t now_ms;
    int64_t idle_ttl;         /* seconds */
    int64_t reuse_interval_ms;
    struct revocation rev;    /* used when the outcome is REFRESH_REUSED */
};

/* Helpers shared by the backends. */

/* The uniqueness key of a username: ASCII lower case (usernames are ASCII,
 * see docs/api.md). out has USERNAME_MAX + 1 bytes. */
void store_username_key(const char *username, char *out);

/* "argon2id", "bcrypt" or "unknown": the scheme of a stored hash, for
 * listings (never the hash itself). */
const char *store_hash_scheme(const char *hash);

/* The back-off (seconds) after the n-th consecutive failure: 0 below
 * max_failures, then base doubled per further failure, at most max. */
int64_t store_login_backoff(int64_t failures, unsigned max_failures, int64_t base, int64_t max);

/* The decision of a refresh, shared by the backends, which call it inside
 * their transaction with the locked session row. Pure. */
enum refresh_outcome store_refresh_decide(const struct store_session *row, uint32_t gen,
                                          const struct refresh_policy *p);

enum key_state { KEY_NEXT = 0, KEY_CURRENT = 1, KEY_RETIRED = 2 };

struct store_key {
    char kid[KID_MAX + 1];
    char alg[16];
    enum key_state state;
    char *private_pem;     /* heap, PKCS#8 PEM; wiped by store_key_clear */
    int64_t created_at;
    int64_t activate_at;   /* when a next key is due to become current */
    int64_t retired_at;    /* 0 unless retired */
    int64_t remove_at;     /* 0 unless retired: when it leaves the JWKS */
};

void store_key_clear(struct store_key *k);
const char *store_key_state_name(enum key_state s);

typedef void (*store_user_cb)(void *ctx, const struct store_user *u, const char *hash_scheme);
typedef void (*store_session_cb)(void *ctx, const struct store_session *s);
typedef void (*store_revocation_cb)(void *ctx, const char *sid, int64_t revoked_ms,
                                    int64_t expires_ms);
typedef void (*store_key_cb)(void *ctx, const struct store_key *k);

struct store;

struct store_ops {
    const char *name;
    void (*close)(struct store *s);
    enum store_rc (*migrate)(struct store *s);
    enum store_rc (*ping)(struct store *s);
    bool (*healthy)(struct store *s);

    enum store_rc (*user_create)(struct store *s, const struct store_user *u);
    enum store_rc (*user_by_name)(struct store *s, const char *username, struct store_user *ret);
    enum store_rc (*user_by_id)(struct store *s, const char *id, struct store_user *ret);
    enum store_rc (*user_set_hash)(struct store *s, const char *id, const char *old_hash,
                                   const char *new_hash);
    enum store_rc (*user_change_password)(struct store *s, const char *id, const char *new_hash,
                                          const char *keep_sid, const struct revocation *rev,
                                          int *ret_revoked);
    enum store_rc (*user_delete)(struct store *s, const char *id, const struct revocation *rev);
    enum store_rc (*user_list)(struct store *s, store_user_cb cb, void *ctx);

    enum store_rc (*session_create)(struct store *s, const struct store_session *sess);
    enum store_rc (*session_list)(struct store *s, const char *user_id, int64_t now,
                                  int64_t idle_ttl, store_session_cb cb, void *ctx);
    enum store_rc (*session_revoke)(struct store *s, const char *user_id, const char *sid,
                                    const char *reason, const struct revocation *rev);
    enum store_rc (*session_revoke_user)(struct store *s, const char *user_id,
                                         const char *except_sid, const char *reason,
                                         const struct revocation *rev, int *ret_count);
    enum store_rc (*refresh)(struct store *s, const char *sid, uint32_t gen,
                             const struct refresh_policy *p, enum refresh_outcome *ret_outcome,
                             struct store_session *ret_session, struct store_user *ret_user);

    enum store_rc (*revocations_since)(struct store *s, int64_t since_ms, store_revocation_cb cb,
                                       void *ctx);
    enum store_rc (*prune)(struct store *s, int64_t now, int64_t now_ms);

    enum store_rc (*secret_get_or_create)(struct store *s, const char *name,
                                          const uint8_t *candidate, size_t len, uint8_t *out,
                                          size_t cap, size_t *ret_len);

    enum store_rc (*keys_list)(struct store *s, store_key_cb cb, void *ctx);
    enum store_rc (*key_insert_unless)(struct store *s, const struct store_key *k,
                                       bool *ret_inserted);
    enum store_rc (*key_promote)(struct store *s, const char *next_kid, const char *current_kid,
                                 int64_t now, int64_t retired_remove_at);
    enum store_rc (*key_retire)(struct store *s, const char *kid, int64_t now, int64_t remove_at);
    enum store_rc (*key_retire_purge)(struct store *s, const char *kid, int64_t remove_at);
    enum store_rc (*keys_remove_expired)(struct store *s, int64_t now);

    enum store_rc (*counter_add)(struct store *s, const char *key, int64_t now, int64_t window,
                                 int64_t delta, int64_t *ret_count);
    enum store_rc (*login_attempt)(struct store *s, const char *key, int64_t now,
                                   unsigned max_failures, int64_t base, int64_t max,
                                   int64_t *ret_retry_after);
    enum store_rc (*login_reset)(struct store *s, const char *key);
    enum store_rc (*login_refund)(struct store *s, const char *key, unsigned max_failures);
};

struct store {
    const struct store_ops *ops;
};

/* Options common to the backends. */
struct store_options {
    bool sqlite_sync_full;
};

/*
 * Open the database named by url ("sqlite:PATH", "postgres://..."). Does
 * not migrate. On failure writes a one-line reason to err.
 */
enum store_rc store_open(const char *url, const struct store_options *opt, struct store **ret,
                         char *err, size_t errlen);

/* Close every connection and free the store. NULL-safe. Call only when no
 * other thread uses it. */
void store_close(struct store *s);

/* Short name of a result, for logs. */
const char *store_rc_name(enum store_rc rc);

/* ---- dispatch: one inline wrapper per operation (documented above) ---- */

#define STORE_CALL(s, op, ...) ((s)->ops->op((s), __VA_ARGS__))
#define STORE_CALL0(s, op) ((s)->ops->op((s)))

/*
 * Operation contracts:
 * - ping: a probe of the database; the only operation that tries a
 *   database believed down (see healthy).
 * - healthy: false while the backend believes the database is down (a
 *   connection failed or a query missed its deadline, and no ping has
 *   succeeded since); every other operation then answers UNAVAILABLE at once
 *   instead of waiting for timeouts. Cheap: no I/O.
 * - migrate: apply pending versioned migrations; safe when several
 *   instances start at once.
 * - user_create: CONFLICT when the username (case-insensitively) exists.
 * - user_by_name: case-insensitive lookup; the hash is returned (heap).
 * - user_set_hash: compare-and-set of the hash (old_hash NULL = any);
 *   NOT_FOUND when the user is gone or the hash changed meanwhile.
 * - user_change_password: new hash, and every other live session of the
 *   user revoked (fed to revocations), atomically.
 * - user_delete: the user, its sessions (fed to revocations first), atomically.
 * - session_list: live sessions (not revoked, not expired), newest first.
 * - session_revoke: NOT_FOUND unless sid is a live session of user_id
 *   (user_id NULL: of anyone).
 * - refresh: the atomic rotation of API.md; ret_session/ret_user are filled
 *   for ROTATED and REPLAYED (the session after the change).
 * - revocations_since: rows with revoked_at_ms >= since_ms.
 * - prune: forget revocations whose tokens have expired, sessions long
 *   over, stale counters and removed keys.
 * - secret_get_or_create: the stored secret of that name, or candidate
 *   stored and returned when none existed (first writer wins).
 * - key_insert_unless: insert k unless a key of the same alg is already in
 *   k->state (state NEXT or CURRENT); *ret_inserted tells.
 * - key_promote: atomically retire current_kid (remove_at given) and make
 *   next_kid current; NOT_FOUND when either moved meanwhile.
 * - key_retire_purge: bring the removal of a retired key forward.
 * - counter_add: add delta to a fixed-window counter (a new window starts
 *   at zero once `window` seconds passed since the first hit), return the
 *   count after the change.
 * - login_attempt: per-key consecutive-failure back-off, counted before the
 *   password is checked so that parallel guesses cannot slip past: when the
 *   key is blocked, *ret_retry_after > 0 (seconds) and nothing changes;
 *   otherwise the attempt is counted (*ret_retry_after = 0) and, from the
 *   max_failures-th on, the key is blocked for base * 2^(n - max) seconds
 *   (at most max). login_reset forgets the key after a success;
 *   login_refund gives back one counted attempt whose password was never
 *   checked (the server was busy), lifting the block when the count falls
 *   below max_failures.
 */

#endif /* JWTD_STORE_H */
