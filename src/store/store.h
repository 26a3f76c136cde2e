/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The storage interface: the only door to persistent state, and the only
 * place with SQL behind it (sqlite.c, postgres.c). This layer sits below
 * core/ and uses only base/: it knows rows and transactions, not product
 * rules. Rules that need a transaction (the refresh rotation, a password
 * change that ends the other sessions) are decided by pure functions given
 * to it (store_refresh_decide) or composed here in store.c from the
 * backends' primitives, once for both backends.
 *
 * Threading: a store may be used from any number of threads at once; each
 * backend keeps one connection per thread, and a transaction (tx_begin ..
 * tx_end) belongs to the calling thread's connection. Times are Unix
 * seconds unless a name ends in _ms. Strings in results are copied into the
 * caller's structs (fixed-size fields) or heap strings the caller frees with
 * the matching _clear() function.
 *
 * Backends never log: what an operator should hear about (a database gone
 * down or back, a server notice) is reported through the on_event callback
 * of store_options, and the owner decides how to log it.
 */
#ifndef JWTD_STORE_H
#define JWTD_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "base/util.h"

enum store_rc {
    STORE_OK = 0,
    STORE_NOT_FOUND = 1,   /* no such row, or a compare-and-set lost */
    STORE_CONFLICT = 2,    /* unique constraint (username taken, ...) */
    STORE_UNAVAILABLE = -1,/* database unreachable, locked, read-only or full: retry later (503) */
    STORE_ERROR = -2       /* anything else: a bug or corruption (500) */
};

#define USERNAME_MAX 128
#define EMAIL_MAX 254
#define USER_AGENT_MAX 256
#define CLIENT_ADDR_MAX 64
#define KID_MAX 64
#define SHA256_HEX_LEN 65  /* 64 hex digits + NUL */

struct store_user {
    char id[UUID_STR_LEN];
    char username[USERNAME_MAX + 1];
    char *password_hash;   /* heap; NULL in lists */
    int64_t created_at;
    int64_t disabled_at;   /* 0 while the account may sign in */
    char email[EMAIL_MAX + 1];          /* normalized (lower case); "" when none */
    bool email_verified;
    char email_pending[EMAIL_MAX + 1];  /* a new address awaiting verification; "" */
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
    unsigned amr;          /* how it signed in (AMR_* of core/tokens.h); set on insert, read by session_lock */
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
    REFRESH_REVOKED,  /* session revoked earlier (logout, password change, account disabled) */
    REFRESH_REUSED    /* an older token: theft assumed, session revoked now */
};

/* The inputs of a refresh decision. The rules themselves belong to core
 * (core/sessions.c builds this and supplies `decide`); the store runs the
 * decision inside its transaction with the session row locked. */
struct refresh_policy {
    int64_t now_ms;
    int64_t idle_ttl;         /* seconds */
    int64_t reuse_interval_ms;
    /* Rotations made in [doubt_from_ms, doubt_to_ms] (a storage outage and
     * the time before it was noticed) may have committed after their request
     * was answered 503: the client retries with the token they retired, and
     * that is a replay if it comes within the reuse interval of doubt_to_ms.
     * Both 0: no outage known. */
    int64_t doubt_from_ms, doubt_to_ms;
    struct revocation rev;    /* used when the outcome is REFRESH_REUSED */
    enum refresh_outcome (*decide)(const struct store_session *row,
                                   const struct store_user *owner, uint32_t gen,
                                   const struct refresh_policy *p);
};

/* How far a sign-out with a refresh token reaches. core/sessions.c decides
 * it from the refresh decision the token would get; the store applies it. */
enum signout_reach {
    SIGNOUT_NOTHING, /* the token ends nothing (unknown, expired, revoked) */
    SIGNOUT_SESSION, /* the token's session */
    SIGNOUT_USER     /* every live session of the session's owner */
};

/* The inputs of a sign-out with a refresh token: the refresh decision
 * (refresh.decide) and what it lets the sign-out reach (reach; `all` is
 * whether every session was asked for). Both pure, both core's. */
struct signout_policy {
    struct refresh_policy refresh;
    bool all;
    enum signout_reach (*reach)(enum refresh_outcome out, bool all);
};

/* What a sign-out with a refresh token did. */
struct signout_result {
    enum refresh_outcome outcome; /* what /auth/refresh would have decided */
    enum signout_reach reach;     /* what ended */
    char user_id[UUID_STR_LEN];   /* the session's owner; "" when unknown */
    int revoked;                  /* sessions revoked now */
};

/* Helpers shared by the backends. */

/* The uniqueness key of a username: ASCII lower case (usernames are ASCII,
 * see docs/api.md). out has USERNAME_MAX + 1 bytes. */
void store_username_key(const char *username, char out[USERNAME_MAX + 1]);

/* "argon2id", "bcrypt" or "unknown": the scheme of a stored hash, for
 * listings (never the hash itself). */
const char *store_hash_scheme(const char *hash);

/* The back-off (seconds) after the n-th consecutive failure: 0 below
 * max_failures, then base doubled per further failure, at most max. */
int64_t store_login_backoff(int64_t failures, unsigned max_failures, int64_t base, int64_t max);

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

/* A one-time e-mail token: a link token (only its SHA-256 is stored) and,
 * for address verification, a short code (only its keyed hash), bound to a
 * user and a purpose; at most one per (user, purpose). */
enum email_purpose { EMAIL_RESET = 0, EMAIL_VERIFY = 1 };

struct store_email_token {
    char token_hash[SHA256_HEX_LEN];
    char user_id[UUID_STR_LEN];
    enum email_purpose purpose;
    char email[EMAIL_MAX + 1];        /* where it was sent (verify: the address to confirm) */
    char code_hash[SHA256_HEX_LEN];   /* "" when there is no code */
    int attempts;                     /* wrong codes so far */
    int64_t created_at;
    int64_t expires_at;
};

/* A queued message. `params` is a JSON object of template values (never a
 * secret: links and codes are derived from the id when the mail is sent). */
struct store_mail {
    char id[UUID_STR_LEN];
    char kind[32];                    /* template: verify_email, reset_password, ... */
    char user_id[UUID_STR_LEN];       /* "" when not (yet) known */
    char to[EMAIL_MAX + 1];           /* "" when the worker resolves it (forgot) */
    char *params;                     /* heap JSON text */
    int attempts;
    int64_t created_ms;
    int64_t next_attempt_ms;
    int64_t give_up_ms;
};

void store_mail_clear(struct store_mail *m);

/* The outcome the mail worker writes back. */
enum mail_status { MAIL_QUEUED, MAIL_SENT, MAIL_FAILED, MAIL_DROPPED };
const char *store_mail_status_name(enum mail_status s);

typedef void (*store_user_cb)(void *ctx, const struct store_user *u, const char *hash_scheme);
typedef void (*store_session_cb)(void *ctx, const struct store_session *s);
typedef void (*store_revocation_cb)(void *ctx, const char *sid, int64_t revoked_ms,
                                    int64_t expires_ms);
typedef void (*store_key_cb)(void *ctx, const struct store_key *k);
typedef void (*store_mail_cb)(void *ctx, const struct store_mail *m);

/* A TOTP factor: the secret (hex of its bytes), whether the user confirmed
 * it with a first code, and the last time step a code was accepted for. */
struct store_totp {
    char user_id[UUID_STR_LEN];
    char secret_hex[129];
    bool confirmed;
    int64_t last_step;     /* -1: none yet */
    int64_t created_at;
    int64_t codes_gen;     /* how many times its recovery codes were renewed */
};

/* A passkey (WebAuthn credential). */
#define PASSKEY_ID_MAX 1400   /* base64url of a credential id of up to 1023 bytes */
/* hex of a SubjectPublicKeyInfo of up to 1100 bytes (RSA-8192 with a 64-bit
 * exponent is 1,062) */
#define PASSKEY_KEY_MAX 2200
#define PASSKEY_NAME_MAX 256  /* bytes: 64 characters of up to 4 bytes in UTF-8 */

struct store_passkey {
    char id[PASSKEY_ID_MAX + 1];
    char user_id[UUID_STR_LEN];
    char public_key_hex[PASSKEY_KEY_MAX + 1];
    int alg;
    uint32_t sign_count;
    char name[PASSKEY_NAME_MAX + 1];
    bool backup_eligible;
    int64_t created_at;
    int64_t last_used_at;
};

typedef void (*store_passkey_cb)(void *ctx, const struct store_passkey *p);

/* Short-lived single-use state (MFA tickets, WebAuthn challenges): a key,
 * a kind, the user, a JSON value, an attempt count and an expiry. */
struct store_ephemeral {
    char key[96];
    char kind[16];
    char user_id[UUID_STR_LEN];   /* "" when none */
    char *value;                  /* heap JSON text */
    int attempts;
    int64_t expires_at;
};

void store_ephemeral_clear(struct store_ephemeral *e);

/* What a backend reports to its owner instead of logging. */
enum store_event {
    STORE_EV_DOWN,     /* a connection failed or a query missed its deadline */
    STORE_EV_UP,       /* a probe succeeded after STORE_EV_DOWN */
    STORE_EV_NOTICE,   /* a message from the database server */
    STORE_EV_WARNING,  /* something the operator should fix (file permissions, ...) */
    STORE_EV_ERROR,    /* an unexpected database error (detail: code and message) */
};

struct store;

/*
 * The backend vtable: primitives on the calling thread's connection. Each
 * runs in the thread's open transaction when there is one (tx_begin), or
 * on its own otherwise. Contracts are given with the wrappers below.
 */
struct store_ops {
    const char *name;
    void (*close)(struct store *s);
    /* ret_from (may be NULL): the version found under the migration lock,
     * before applying anything. */
    enum store_rc (*migrate)(struct store *s, int *ret_from);
    enum store_rc (*schema_version)(struct store *s, int *ret_current, int *ret_latest);
    enum store_rc (*ping)(struct store *s);
    bool (*healthy)(struct store *s);

    enum store_rc (*tx_begin)(struct store *s);
    enum store_rc (*tx_end)(struct store *s, enum store_rc rc);

    enum store_rc (*user_insert)(struct store *s, const struct store_user *u);
    enum store_rc (*user_by_name)(struct store *s, const char *username, struct store_user *ret);
    enum store_rc (*user_by_id)(struct store *s, const char *id, struct store_user *ret);
    enum store_rc (*user_by_email)(struct store *s, const char *email, struct store_user *ret);
    enum store_rc (*user_update_email)(struct store *s, const char *id, const char *email,
                                       bool verified, const char *pending, int64_t now);
    enum store_rc (*user_update_hash)(struct store *s, const char *id, const char *old_hash,
                                      const char *new_hash, int64_t now);
    enum store_rc (*user_update_disabled)(struct store *s, const char *id, int64_t disabled_at,
                                          int64_t now);
    enum store_rc (*user_delete_row)(struct store *s, const char *id);
    /* In a transaction: hold the user's row until it ends (exclusive: for
     * an update; else shared, and only while the account is not disabled),
     * when it exists and, hash not NULL, still has that password hash;
     * else NOT_FOUND. */
    enum store_rc (*user_lock)(struct store *s, const char *id, const char *hash, bool exclusive);
    enum store_rc (*user_list)(struct store *s, store_user_cb cb, void *ctx);

    enum store_rc (*session_insert)(struct store *s, const struct store_session *sess);
    enum store_rc (*session_list)(struct store *s, const char *user_id, int64_t now,
                                  int64_t idle_ttl, store_session_cb cb, void *ctx);
    enum store_rc (*session_lock)(struct store *s, const char *sid, struct store_session *ret,
                                  struct store_user *ret_owner);
    enum store_rc (*session_rotate)(struct store *s, const struct store_session *row);
    enum store_rc (*session_revoke_rows)(struct store *s, const char *user_id, const char *sid,
                                         const char *except_sid, const char *reason,
                                         const struct revocation *rev, int *ret_count);

    enum store_rc (*revocations_since)(struct store *s, int64_t since_ms, store_revocation_cb cb,
                                       void *ctx);
    enum store_rc (*prune_some)(struct store *s, int64_t now, int64_t now_ms, int limit,
                                int64_t *ret_removed);

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
                                 int64_t delta, int64_t *ret_count, int64_t *ret_window_start);
    enum store_rc (*login_attempt)(struct store *s, const char *key, int64_t now_ms,
                                   unsigned max_failures, int64_t base_ms, int64_t max_ms,
                                   int64_t *ret_retry_after_ms, int64_t *ret_set_until_ms);
    enum store_rc (*login_get)(struct store *s, const char *key, int64_t *ret_failures,
                               int64_t *ret_blocked_until_ms);
    enum store_rc (*login_reset)(struct store *s, const char *key);
    enum store_rc (*login_refund)(struct store *s, const char *key, unsigned max_failures,
                                  int64_t set_until_ms);

    enum store_rc (*email_token_put)(struct store *s, const struct store_email_token *t);
    enum store_rc (*email_token_by_hash)(struct store *s, const char *token_hash,
                                         struct store_email_token *ret);
    enum store_rc (*email_token_by_user)(struct store *s, const char *user_id,
                                         enum email_purpose purpose,
                                         struct store_email_token *ret);
    enum store_rc (*email_token_attempt)(struct store *s, const char *user_id,
                                         enum email_purpose purpose, int *ret_attempts);
    enum store_rc (*email_token_delete)(struct store *s, const char *user_id,
                                        enum email_purpose purpose);

    enum store_rc (*outbox_insert)(struct store *s, const struct store_mail *m);
    enum store_rc (*outbox_claim)(struct store *s, int64_t now_ms, int64_t lease_until_ms,
                                  int max, store_mail_cb cb, void *ctx);
    enum store_rc (*outbox_finish)(struct store *s, const char *id, enum mail_status status,
                                   int attempts, int64_t next_attempt_ms, const char *error,
                                   int64_t now_ms);
    enum store_rc (*outbox_resolve)(struct store *s, const struct store_mail *m);
    enum store_rc (*outbox_count)(struct store *s, enum mail_status status, int64_t *ret_n);

    enum store_rc (*totp_get)(struct store *s, const char *user_id, struct store_totp *ret);
    enum store_rc (*totp_put)(struct store *s, const struct store_totp *t);
    enum store_rc (*totp_step)(struct store *s, const char *user_id, int64_t step, bool confirm,
                               const char *pending_secret_hex);
    enum store_rc (*totp_codes_bump)(struct store *s, const char *user_id, int64_t gen);
    enum store_rc (*totp_delete)(struct store *s, const char *user_id);
    enum store_rc (*recovery_codes_put)(struct store *s, const char *user_id,
                                        const char (*hashes)[SHA256_HEX_LEN], int n);
    enum store_rc (*recovery_code_use)(struct store *s, const char *user_id, const char *hash,
                                       int64_t now);
    enum store_rc (*recovery_codes_left)(struct store *s, const char *user_id, int *ret_n);

    enum store_rc (*passkey_insert)(struct store *s, const struct store_passkey *p, int max);
    enum store_rc (*passkeys_list)(struct store *s, const char *user_id, store_passkey_cb cb,
                                   void *ctx);
    enum store_rc (*passkey_get)(struct store *s, const char *id, struct store_passkey *ret);
    enum store_rc (*passkey_use)(struct store *s, const char *id, uint32_t new_count,
                                 int64_t now);
    enum store_rc (*passkey_delete)(struct store *s, const char *user_id, const char *id);

    enum store_rc (*ephemeral_put)(struct store *s, const struct store_ephemeral *e);
    enum store_rc (*ephemeral_get)(struct store *s, const char *key, struct store_ephemeral *ret);
    enum store_rc (*ephemeral_attempt)(struct store *s, const char *key, int *ret_attempts);
    enum store_rc (*ephemeral_delete)(struct store *s, const char *key);
};

struct store {
    const struct store_ops *ops;
    void (*on_event)(void *ctx, enum store_event ev, const char *detail);
    void *event_ctx;
};

/* The database deadline when store_options gives none (JWTD_DB_TIMEOUT's
 * default). */
#define STORE_DEFAULT_TIMEOUT_MS 5000

/* Options common to the backends. */
struct store_options {
    bool sqlite_sync_full;
    /* Never create a database that does not exist (commands that only
     * read): opening fails instead. */
    bool must_exist;
    /* Longest wait for one round trip to PostgreSQL (also its
     * statement_timeout and lock_timeout) or for a SQLite lock; 0 =
     * STORE_DEFAULT_TIMEOUT_MS. */
    int timeout_ms;
    /* Called from any thread; may be NULL. detail is never a secret. */
    void (*on_event)(void *ctx, enum store_event ev, const char *detail);
    void *event_ctx;
};

/*
 * Open the database named by url ("sqlite:PATH", "postgres://..."). Does
 * not migrate. A new SQLite file is created 0600 (it holds private keys).
 * On failure writes a one-line reason to err.
 */
enum store_rc store_open(const char *url, const struct store_options *opt, struct store **ret,
                         char *err, size_t errlen);

/* Close every connection and free the store. NULL-safe. Call only when no
 * other thread uses it. */
void store_close(struct store *s);

/* Short name of a result, for logs. */
const char *store_rc_name(enum store_rc rc);

/* For backends: report an event to the owner. */
void store_report(struct store *s, enum store_event ev, const char *detail);

/* ---- operations: inline wrappers over the backend, with their contracts ---- */

/* Apply pending versioned migrations; safe when several instances start at
 * once. STORE_ERROR when the database was written by a newer jwtd. */
static inline enum store_rc store_migrate(struct store *s) { return s->ops->migrate(s, NULL); }

/* The same, saying which version this call found (under the lock: of
 * instances starting together, the one that waited finds the latest). */
static inline enum store_rc store_migrate_from(struct store *s, int *ret_from)
{
    return s->ops->migrate(s, ret_from);
}

/* The schema version the database has (0: no jwtd schema at all) and the
 * one this jwtd writes, read without changing anything (for commands that
 * must not write). */
static inline enum store_rc store_schema_version(struct store *s, int *ret_current,
                                                 int *ret_latest)
{
    return s->ops->schema_version(s, ret_current, ret_latest);
}

/* A probe of the database; the only operation that tries a database
 * believed down (see store_healthy). */
static inline enum store_rc store_ping(struct store *s) { return s->ops->ping(s); }

/* False while the backend believes the database is down (a connection
 * failed or a query missed its deadline, and no ping has succeeded since);
 * every other operation then answers UNAVAILABLE at once instead of waiting
 * for timeouts. Cheap: no I/O. */
static inline bool store_healthy(struct store *s) { return s->ops->healthy(s); }

/* CONFLICT when the username (case-insensitively) exists. */
static inline enum store_rc store_user_create(struct store *s, const struct store_user *u)
{
    return s->ops->user_insert(s, u);
}

/* Case-insensitive lookup; the hash is returned (heap, store_user_clear).
 * A name longer than any username is none (the key is cut at USERNAME_MAX
 * bytes: without this check it would find the account named by its first
 * 128 bytes). */
static inline enum store_rc store_user_by_name(struct store *s, const char *username,
                                               struct store_user *ret)
{
    if (strnlen(username, USERNAME_MAX + 1) > USERNAME_MAX)
        return STORE_NOT_FOUND;
    return s->ops->user_by_name(s, username, ret);
}

static inline enum store_rc store_user_by_id(struct store *s, const char *id,
                                             struct store_user *ret)
{
    return s->ops->user_by_id(s, id, ret);
}

/* Compare-and-set of the hash (old_hash NULL = any); NOT_FOUND when the user
 * is gone or the hash changed meanwhile. Sessions are not touched. */
static inline enum store_rc store_user_set_hash(struct store *s, const char *id,
                                                const char *old_hash, const char *new_hash)
{
    return s->ops->user_update_hash(s, id, old_hash, new_hash, util_now());
}

/* Lookup by normalized e-mail address (only confirmed addresses, not
 * pending ones); the hash is returned. */
static inline enum store_rc store_user_by_email(struct store *s, const char *email,
                                                struct store_user *ret)
{
    return s->ops->user_by_email(s, email, ret);
}

/* Set the e-mail columns (email NULL or "": none; pending NULL or "":
 * none). CONFLICT when another account has that address. */
static inline enum store_rc store_user_set_email(struct store *s, const char *id,
                                                 const char *email, bool verified,
                                                 const char *pending)
{
    return s->ops->user_update_email(s, id, email, verified, pending, util_now());
}

/* store_user_set_email, if the account's e-mail columns are still those of
 * `seen` (address, verified flag, pending address), and its password hash
 * still seen->password_hash unless that is NULL: compare and set, in one
 * transaction that holds the user's row. NOT_FOUND when they changed
 * meanwhile (or the account is gone): read again and decide again. */
enum store_rc store_user_set_email_if(struct store *s, const struct store_user *seen,
                                      const char *email, bool verified, const char *pending);

/* Every user (without hashes), oldest first, with the scheme of the hash. */
static inline enum store_rc store_user_list(struct store *s, store_user_cb cb, void *ctx)
{
    return s->ops->user_list(s, cb, ctx);
}

/* New hash, and every live session of the user but keep_sid (NULL: all)
 * revoked and fed to revocations, atomically. With old_hash, only while
 * the stored hash is still that one (the password the change was
 * confirmed with: a reset or another change in between wins); NOT_FOUND
 * when it is not, or the user is gone. */
enum store_rc store_user_change_password(struct store *s, const char *id, const char *old_hash,
                                         const char *new_hash, const char *keep_sid,
                                         const struct revocation *rev, int *ret_revoked);

/* Disable (disabled = true: every live session revoked too) or enable an
 * account, atomically. Disabling a disabled account keeps the time it was
 * first disabled. NOT_FOUND when there is no such user. */
enum store_rc store_user_set_disabled(struct store *s, const char *id, bool disabled,
                                      const struct revocation *rev, int *ret_revoked);

/* The user and its sessions (fed to revocations first), atomically. */
enum store_rc store_user_delete(struct store *s, const char *id, const struct revocation *rev);

/*
 * A new session, with the user's row held meanwhile: NOT_FOUND when the
 * user is gone or, with expect_hash, its password hash is no longer that
 * one (the login checked a password that a change, a reset or an operator
 * replaced meanwhile: the session must not outlive the revocation that
 * came with it), or the account was disabled meanwhile. Holding the row orders the insert with a password change,
 * reset, disabling or deletion of the user on any instance: either the new
 * session exists when they revoke the user's sessions, or it is refused.
 */
enum store_rc store_session_create(struct store *s, const struct store_session *sess,
                                   const char *expect_hash);

/* Live sessions (not revoked, not expired), newest first. */
static inline enum store_rc store_session_list(struct store *s, const char *user_id, int64_t now,
                                               int64_t idle_ttl, store_session_cb cb, void *ctx)
{
    return s->ops->session_list(s, user_id, now, idle_ttl, cb, ctx);
}

/* NOT_FOUND unless sid is a live session of user_id (user_id NULL: of
 * anyone). */
enum store_rc store_session_revoke(struct store *s, const char *user_id, const char *sid,
                                   const char *reason, const struct revocation *rev);

/* Every live session of user_id but except_sid (NULL: all). */
enum store_rc store_session_revoke_user(struct store *s, const char *user_id,
                                        const char *except_sid, const char *reason,
                                        const struct revocation *rev, int *ret_count);

/* The atomic rotation of API.md: the session row locked, p->decide called,
 * its outcome applied (ROTATED moves the generation on, REUSED revokes the
 * session), in one transaction. ret_session/ret_owner are filled for
 * ROTATED and REPLAYED (the session after the change); for a refusal only
 * ret_session->user_id is, the session's account ("" when there is no
 * such session). */
enum store_rc store_refresh(struct store *s, const char *sid, uint32_t gen,
                            const struct refresh_policy *p, enum refresh_outcome *ret_outcome,
                            struct store_session *ret_session, struct store_user *ret_owner);

/* A sign-out with a refresh token, which is not rotated: the session row
 * locked, p->refresh.decide and p->reach called, the reach applied
 * (SIGNOUT_SESSION revokes the session, SIGNOUT_USER every live session of
 * its owner, fed to revocations with p->refresh.rev), in one transaction.
 * *ret is filled on STORE_OK (an unknown session is STORE_OK with outcome
 * REFRESH_UNKNOWN and reach SIGNOUT_NOTHING). */
enum store_rc store_signout(struct store *s, const char *sid, uint32_t gen,
                            const struct signout_policy *p, struct signout_result *ret);

/* Rows with revoked_at_ms >= since_ms. */
static inline enum store_rc store_revocations_since(struct store *s, int64_t since_ms,
                                                    store_revocation_cb cb, void *ctx)
{
    return s->ops->revocations_since(s, since_ms, cb, ctx);
}

/* Rows one prune transaction removes at most: a few milliseconds of work,
 * so that no write (a login's counters, a refresh) waits behind a backlog,
 * and each statement is far within JWTD_DB_TIMEOUT whatever the backlog. */
#define STORE_PRUNE_BATCH 500

/*
 * Forget what is no longer needed: revocations whose tokens have expired,
 * sessions a day past their end or their revocation, rate-limit counters
 * and login back-off a day stale, e-mail tokens a day past expiry, mail
 * finished a week ago, short-lived MFA/WebAuthn state an hour past expiry.
 * store_prune_some removes at most limit of those rows, in one short
 * transaction (*ret_removed: how many; fewer than limit: nothing more is
 * due). store_prune_until removes them STORE_PRUNE_BATCH at a time, with a
 * pause between batches for waiting writers, until nothing is due
 * (*ret_done true) or the monotonic clock (util_mono_ms) passes deadline_ms
 * (*ret_done false: call again to go on); *ret_removed (if not NULL) gets
 * the rows removed added. store_prune goes on to the end.
 */
static inline enum store_rc store_prune_some(struct store *s, int64_t now, int64_t now_ms,
                                             int limit, int64_t *ret_removed)
{
    return s->ops->prune_some(s, now, now_ms, limit, ret_removed);
}

enum store_rc store_prune_until(struct store *s, int64_t now, int64_t now_ms,
                                int64_t deadline_ms, int64_t *ret_removed, bool *ret_done);

static inline enum store_rc store_prune(struct store *s, int64_t now, int64_t now_ms)
{
    bool done = false;
    return store_prune_until(s, now, now_ms, INT64_MAX, NULL, &done);
}

/* The stored secret of that name, or candidate stored and returned when
 * none existed (first writer wins). */
static inline enum store_rc store_secret_get_or_create(struct store *s, const char *name,
                                                       const uint8_t *candidate, size_t len,
                                                       uint8_t *out, size_t cap, size_t *ret_len)
{
    return s->ops->secret_get_or_create(s, name, candidate, len, out, cap, ret_len);
}

/* Every signing key, oldest first (private keys included: wiped after the
 * callback). */
static inline enum store_rc store_keys_list(struct store *s, store_key_cb cb, void *ctx)
{
    return s->ops->keys_list(s, cb, ctx);
}

/* Insert k unless a key of the same alg is already in k->state (state NEXT
 * or CURRENT); *ret_inserted tells. */
static inline enum store_rc store_key_insert_unless(struct store *s, const struct store_key *k,
                                                    bool *ret_inserted)
{
    return s->ops->key_insert_unless(s, k, ret_inserted);
}

/* Atomically retire current_kid (remove_at given) and make next_kid
 * current; NOT_FOUND when either moved meanwhile. */
static inline enum store_rc store_key_promote(struct store *s, const char *next_kid,
                                              const char *current_kid, int64_t now,
                                              int64_t retired_remove_at)
{
    return s->ops->key_promote(s, next_kid, current_kid, now, retired_remove_at);
}

static inline enum store_rc store_key_retire(struct store *s, const char *kid, int64_t now,
                                             int64_t remove_at)
{
    return s->ops->key_retire(s, kid, now, remove_at);
}

/* Bring the removal of a retired key forward. */
static inline enum store_rc store_key_retire_purge(struct store *s, const char *kid,
                                                   int64_t remove_at)
{
    return s->ops->key_retire_purge(s, kid, remove_at);
}

static inline enum store_rc store_keys_remove_expired(struct store *s, int64_t now)
{
    return s->ops->keys_remove_expired(s, now);
}

/* Add delta to a fixed-window counter (a new window starts at zero once
 * `window` seconds passed since the first hit); the count after the change. */
static inline enum store_rc store_counter_add(struct store *s, const char *key, int64_t now,
                                              int64_t window, int64_t delta, int64_t *ret_count)
{
    return s->ops->counter_add(s, key, now, window, delta, ret_count, NULL);
}

/* The same, also giving when the counter's current window began (it ends
 * `window` seconds later: what a refusal's Retry-After says). */
static inline enum store_rc store_counter_add_in_window(struct store *s, const char *key,
                                                        int64_t now, int64_t window,
                                                        int64_t delta, int64_t *ret_count,
                                                        int64_t *ret_window_start)
{
    return s->ops->counter_add(s, key, now, window, delta, ret_count, ret_window_start);
}

/*
 * Per-key consecutive-failure back-off, counted before the password is
 * checked so that parallel guesses cannot slip past: when the key is
 * blocked, *ret_retry_after_ms > 0 and nothing changes; otherwise the
 * attempt is counted (*ret_retry_after_ms = 0) and, from the max_failures-th
 * on, the key is blocked for base_ms * 2^(n - max) milliseconds (at most
 * max_ms). Milliseconds, so that a block of one second lasts one second
 * whenever in a second it starts. *ret_set_until_ms (when not NULL) is the
 * block this attempt set, 0 for none: store_login_refund takes it.
 */
static inline enum store_rc store_login_attempt(struct store *s, const char *key, int64_t now_ms,
                                                unsigned max_failures, int64_t base_ms,
                                                int64_t max_ms, int64_t *ret_retry_after_ms,
                                                int64_t *ret_set_until_ms)
{
    return s->ops->login_attempt(s, key, now_ms, max_failures, base_ms, max_ms,
                                 ret_retry_after_ms, ret_set_until_ms);
}

/* The failure count and block (milliseconds since the epoch) of a key
 * (0, 0 when unknown). */
static inline enum store_rc store_login_get(struct store *s, const char *key,
                                            int64_t *ret_failures, int64_t *ret_blocked_until_ms)
{
    return s->ops->login_get(s, key, ret_failures, ret_blocked_until_ms);
}

/* Forget the key (after a success, or an operator's unlock). */
static inline enum store_rc store_login_reset(struct store *s, const char *key)
{
    return s->ops->login_reset(s, key);
}

/* Give back one counted attempt that was not a failure after all (the
 * password was never checked, or was right while a second factor is still
 * due): one failure fewer, and the block that attempt set (set_until_ms,
 * from store_login_attempt) lifted - unless a later failure replaced it -
 * as is any block once the count falls below max_failures. */
static inline enum store_rc store_login_refund(struct store *s, const char *key,
                                               unsigned max_failures, int64_t set_until_ms)
{
    return s->ops->login_refund(s, key, max_failures, set_until_ms);
}

/* ---- e-mail: one-time tokens and the outbox ---- */

/* Queue n messages, and (when token is not NULL) make it the user's token
 * of its purpose, replacing any earlier one - in one transaction, so that a
 * token never exists without its message nor the other way round. */
enum store_rc store_mail_enqueue(struct store *s, const struct store_email_token *token,
                                 const struct store_mail *mails, int n);

/* The token with that hash (NOT_FOUND when none; expiry is the caller's). */
static inline enum store_rc store_email_token_by_hash(struct store *s, const char *token_hash,
                                                      struct store_email_token *ret)
{
    return s->ops->email_token_by_hash(s, token_hash, ret);
}

static inline enum store_rc store_email_token_by_user(struct store *s, const char *user_id,
                                                      enum email_purpose purpose,
                                                      struct store_email_token *ret)
{
    return s->ops->email_token_by_user(s, user_id, purpose, ret);
}

/* Count one wrong code; *ret_attempts is the count after it. */
static inline enum store_rc store_email_token_attempt(struct store *s, const char *user_id,
                                                      enum email_purpose purpose,
                                                      int *ret_attempts)
{
    return s->ops->email_token_attempt(s, user_id, purpose, ret_attempts);
}

static inline enum store_rc store_email_token_delete(struct store *s, const char *user_id,
                                                     enum email_purpose purpose)
{
    return s->ops->email_token_delete(s, user_id, purpose);
}

/*
 * Whether a token read back (t) is still good for its account (u) at now
 * (seconds): of its purpose and user, unexpired, and for an address the
 * account still has - a reset link sent to the account's current address
 * (or to none: an operator's link), a verification for the address the
 * account waits to confirm. What store_password_reset and
 * store_email_confirm require under the user's row lock; read alone, it
 * says whether the link would work now, without using it.
 */
bool store_reset_token_live(const struct store_email_token *t, const char *user_id,
                            const struct store_user *u, int64_t now);
bool store_verify_token_live(const struct store_email_token *t, const char *user_id,
                             const struct store_user *u, int64_t now);

/*
 * Use a reset token: it must still exist and be unexpired at rev->now_ms
 * (NOT_FOUND otherwise: used, replaced, ended by a password change, or
 * expired while the new password was hashed), then the password is set, every
 * session of the user revoked (fed to revocations), every reset token of the
 * user deleted, and - when the token went to the account's current address
 * - the address marked verified, in one transaction. *ret_user gets the
 * account (without hash).
 */
enum store_rc store_password_reset(struct store *s, const struct store_email_token *t,
                                   const char *new_hash, const struct revocation *rev,
                                   int *ret_revoked, struct store_user *ret_user);

/* Use a verification token: the address it was sent to becomes the
 * account's verified address (a pending address moves in), and the token is
 * deleted, in one transaction that holds the user's row. NOT_FOUND when the
 * token is gone, expired at `now` (seconds) or for an address the account
 * no longer waits for; CONFLICT when another account took the address
 * meanwhile. */
enum store_rc store_email_confirm(struct store *s, const struct store_email_token *t,
                                  int64_t now);

static inline enum store_rc store_outbox_insert(struct store *s, const struct store_mail *m)
{
    return s->ops->outbox_insert(s, m);
}

/* Lease up to max queued messages due at now_ms (not leased by another
 * worker) until lease_until_ms, and hand each to cb. */
static inline enum store_rc store_outbox_claim(struct store *s, int64_t now_ms,
                                               int64_t lease_until_ms, int max, store_mail_cb cb,
                                               void *ctx)
{
    return s->ops->outbox_claim(s, now_ms, lease_until_ms, max, cb, ctx);
}

/* Write an attempt's outcome: MAIL_QUEUED (retry at next_attempt_ms, lease
 * released) or a final status. */
static inline enum store_rc store_outbox_finish(struct store *s, const char *id,
                                                enum mail_status status, int attempts,
                                                int64_t next_attempt_ms, const char *error,
                                                int64_t now_ms)
{
    return s->ops->outbox_finish(s, id, status, attempts, next_attempt_ms, error, now_ms);
}

/* A queued "forgot" message (m->id) becomes the message it resolved to
 * (m's kind, user, recipient and parameters), and token becomes the
 * account's reset token, in one transaction: a retry, after a crash or an
 * SMTP failure, sends the same link and never stores it again (which would
 * bring back a link that a reset or a password change ended). NOT_FOUND,
 * with nothing stored, when the message is no longer a queued "forgot". */
enum store_rc store_mail_resolve(struct store *s, const struct store_email_token *token,
                                 const struct store_mail *m);

static inline enum store_rc store_outbox_count(struct store *s, enum mail_status status,
                                               int64_t *ret_n)
{
    return s->ops->outbox_count(s, status, ret_n);
}

/* ---- second factors ---- */

/* The user's TOTP factor (NOT_FOUND: none, confirmed or not). */
static inline enum store_rc store_totp_get(struct store *s, const char *user_id,
                                           struct store_totp *ret)
{
    return s->ops->totp_get(s, user_id, ret);
}

/* A new, unconfirmed factor, replacing an unconfirmed one; CONFLICT when a
 * confirmed factor exists (remove it first). */
enum store_rc store_totp_begin(struct store *s, const struct store_totp *t);

/*
 * Record that a code of time step `step` was accepted: compare-and-set, so
 * that a code is used once even by two requests at the same moment (NOT_FOUND
 * when the factor is gone or its last step is not older). With confirm, an
 * unconfirmed factor becomes confirmed - the set-up whose secret
 * (pending_secret_hex) checked the code, not one begun again meanwhile,
 * even within the same second - and the recovery codes given replace any
 * earlier ones, in the same transaction.
 */
enum store_rc store_totp_accept(struct store *s, const char *user_id, int64_t step, bool confirm,
                                const char *pending_secret_hex,
                                const char (*recovery_hashes)[SHA256_HEX_LEN], int n);

/*
 * Replace a confirmed factor's recovery codes, compare-and-set: only when
 * its codes_gen is still gen (as read before the new codes were made),
 * which it then increments, in one transaction with the replacement.
 * NOT_FOUND: no confirmed factor, or another renewal came first.
 */
enum store_rc store_recovery_codes_renew(struct store *s, const char *user_id, int64_t gen,
                                         const char (*hashes)[SHA256_HEX_LEN], int n);

/* Remove the TOTP factor and the recovery codes, in one transaction that
 * holds the user's row (as store_totp_begin and a confirmation do). */
enum store_rc store_totp_delete(struct store *s, const char *user_id);

/* Remove every second factor of an account - the TOTP factor, its recovery
 * codes and all its passkeys - in one transaction that holds the user's
 * row: an operator's reset leaves all of them or none. *ret_totp says
 * whether a confirmed TOTP factor was there, *ret_passkeys how many
 * passkeys went (both zero unless STORE_OK). */
enum store_rc store_mfa_clear(struct store *s, const char *user_id, bool *ret_totp,
                              int *ret_passkeys);

static inline enum store_rc store_recovery_codes_put(struct store *s, const char *user_id,
                                                     const char (*hashes)[SHA256_HEX_LEN], int n)
{
    return s->ops->recovery_codes_put(s, user_id, hashes, n);
}

/* Use a recovery code once (NOT_FOUND: unknown or used). */
static inline enum store_rc store_recovery_code_use(struct store *s, const char *user_id,
                                                    const char *hash)
{
    return s->ops->recovery_code_use(s, user_id, hash, util_now());
}

static inline enum store_rc store_recovery_codes_left(struct store *s, const char *user_id,
                                                      int *ret_n)
{
    return s->ops->recovery_codes_left(s, user_id, ret_n);
}

/* CONFLICT when the credential id is registered already; NOT_FOUND when
 * the account holds `max` passkeys already (counted and inserted as one
 * step: registrations finished at once cannot pass the limit). */
static inline enum store_rc store_passkey_insert(struct store *s, const struct store_passkey *p,
                                                 int max)
{
    return s->ops->passkey_insert(s, p, max);
}

static inline enum store_rc store_passkeys_list(struct store *s, const char *user_id,
                                                store_passkey_cb cb, void *ctx)
{
    return s->ops->passkeys_list(s, user_id, cb, ctx);
}

static inline enum store_rc store_passkey_get(struct store *s, const char *id,
                                              struct store_passkey *ret)
{
    return s->ops->passkey_get(s, id, ret);
}

/* Record a use: the counter moves to new_count only when it went up (or
 * both are 0: an authenticator without a counter); NOT_FOUND otherwise
 * (a replay, or a cloned authenticator racing the real one). */
static inline enum store_rc store_passkey_use(struct store *s, const char *id,
                                              uint32_t new_count)
{
    return s->ops->passkey_use(s, id, new_count, util_now());
}

/* NOT_FOUND unless id is one of user_id's passkeys. */
static inline enum store_rc store_passkey_delete(struct store *s, const char *user_id,
                                                 const char *id)
{
    return s->ops->passkey_delete(s, user_id, id);
}

/* Insert or replace. */
static inline enum store_rc store_ephemeral_put(struct store *s, const struct store_ephemeral *e)
{
    return s->ops->ephemeral_put(s, e);
}

/* NOT_FOUND when absent (expiry is the caller's to check). */
static inline enum store_rc store_ephemeral_get(struct store *s, const char *key,
                                                struct store_ephemeral *ret)
{
    return s->ops->ephemeral_get(s, key, ret);
}

/* Read and delete at once: a single-use value is used by one request only
 * (NOT_FOUND for every other). */
enum store_rc store_ephemeral_take(struct store *s, const char *key,
                                   struct store_ephemeral *ret);

static inline enum store_rc store_ephemeral_attempt(struct store *s, const char *key,
                                                    int *ret_attempts)
{
    return s->ops->ephemeral_attempt(s, key, ret_attempts);
}

static inline enum store_rc store_ephemeral_delete(struct store *s, const char *key)
{
    return s->ops->ephemeral_delete(s, key);
}

#endif /* JWTD_STORE_H */
