/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Backend-independent parts of the storage layer: choosing a backend from
 * the database URL, the transactions composed from the backends' primitives
 * (refresh rotation, password change, disabling and deleting an account,
 * revoking sessions) written once for both backends, and the small
 * destructors of result structs.
 */
#include "store/store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>

#include "store/backends.h"

enum store_rc store_open(const char *url, const struct store_options *opt, struct store **ret,
                         char *err, size_t errlen)
{
    enum store_rc rc;
    struct store *s = NULL;
    if (strncmp(url, "sqlite:", 7) == 0)
        rc = sqlite_store_open(url + 7, opt, &s, err, errlen);
    else if (strncmp(url, "postgres://", 11) == 0 || strncmp(url, "postgresql://", 13) == 0) {
#ifdef JWTD_HAVE_POSTGRES
        rc = pg_store_open(url, opt, &s, err, errlen);
#else
        snprintf(err, errlen, "this jwtd was built without PostgreSQL support (meson -Dpostgres)");
        return STORE_ERROR;
#endif
    } else {
        snprintf(err, errlen, "unsupported database URL (sqlite:PATH or postgres://...)");
        return STORE_ERROR;
    }
    if (rc != STORE_OK)
        return rc;
    if (opt) {
        s->on_event = opt->on_event;
        s->event_ctx = opt->event_ctx;
    }
    *ret = s;
    return STORE_OK;
}

enum store_rc store_prune_until(struct store *s, int64_t now, int64_t now_ms,
                                int64_t deadline_ms, int64_t *ret_removed, bool *ret_done)
{
    *ret_done = false;
    for (;;) {
        int64_t n = 0;
        enum store_rc rc = store_prune_some(s, now, now_ms, STORE_PRUNE_BATCH, &n);
        if (rc != STORE_OK)
            return rc;
        if (ret_removed)
            *ret_removed += n;
        if (n < STORE_PRUNE_BATCH) {
            *ret_done = true;
            return STORE_OK;
        }
        if (util_mono_ms() >= deadline_ms)
            return STORE_OK;
        /* A millisecond between batches: a writer of this process woken
         * when the batch let go of the write lock takes it before the next
         * batch does (a mutex is not fair), and another process's busy
         * handler finds the database free now and then. */
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
}

void store_close(struct store *s)
{
    if (s)
        s->ops->close(s);
}

void store_report(struct store *s, enum store_event ev, const char *detail)
{
    if (s->on_event)
        s->on_event(s->event_ctx, ev, detail ? detail : "");
}

const char *store_rc_name(enum store_rc rc)
{
    switch (rc) {
    case STORE_OK: return "ok";
    case STORE_NOT_FOUND: return "not_found";
    case STORE_CONFLICT: return "conflict";
    case STORE_UNAVAILABLE: return "unavailable";
    case STORE_ERROR: return "error";
    }
    return "?";
}

/* ------------------------------------------------------ transactions --- */

/* The account a session belongs to ("" when there is no such session),
 * read in a transaction of its own: a session's owner never changes. */
static enum store_rc session_owner(struct store *s, const char *sid, char owner[UUID_STR_LEN])
{
    struct store_session row = {0};
    struct store_user user = {0};
    owner[0] = '\0';
    enum store_rc rc = s->ops->tx_begin(s);
    if (rc != STORE_OK)
        return rc;
    rc = s->ops->session_lock(s, sid, &row, &user);
    if (rc == STORE_OK)
        memcpy(owner, row.user_id, UUID_STR_LEN);
    return s->ops->tx_end(s, rc == STORE_NOT_FOUND ? STORE_OK : rc);
}

/* Open a transaction with sid's row locked and decide, with p->decide,
 * what its token of generation gen gets (*ret_open true: the transaction is
 * left open for the caller to apply the decision and end). No such
 * session: REFRESH_UNKNOWN, nothing left open. On a failure nothing is left
 * open either. With lock_owner, the owner's row is held (exclusively)
 * before the session's: the order of every change to all of a user's
 * sessions (see store_session_revoke_user). */
static enum store_rc session_decide_locked(struct store *s, const char *sid, uint32_t gen,
                                           const struct refresh_policy *p, bool lock_owner,
                                           struct store_session *row, struct store_user *owner,
                                           enum refresh_outcome *ret_out, bool *ret_open)
{
    *ret_open = false;
    char uid[UUID_STR_LEN] = "";
    enum store_rc rc = lock_owner ? session_owner(s, sid, uid) : STORE_OK;
    if (rc != STORE_OK)
        return rc;
    if (lock_owner && !uid[0]) {
        *ret_out = REFRESH_UNKNOWN;
        return STORE_OK;
    }
    rc = s->ops->tx_begin(s);
    if (rc != STORE_OK)
        return rc;
    rc = lock_owner ? s->ops->user_lock(s, uid, NULL, true) : STORE_OK;
    /* The row lock (SELECT ... FOR UPDATE, or SQLite's write transaction)
     * makes concurrent decisions on one session, on any instance, take
     * turns: concurrent refreshes of one token, say - the first rotates,
     * the others see its result. */
    if (rc == STORE_OK)
        rc = s->ops->session_lock(s, sid, row, owner);
    if (rc == STORE_NOT_FOUND) {
        *ret_out = REFRESH_UNKNOWN;
        return s->ops->tx_end(s, STORE_OK);
    }
    if (rc != STORE_OK)
        return s->ops->tx_end(s, rc);
    *ret_out = p->decide(row, owner, gen, p);
    *ret_open = true;
    return STORE_OK;
}

enum store_rc store_refresh(struct store *s, const char *sid, uint32_t gen,
                            const struct refresh_policy *p, enum refresh_outcome *ret_outcome,
                            struct store_session *ret_session, struct store_user *ret_owner)
{
    struct store_session row = {0};
    struct store_user owner = {0};
    enum refresh_outcome out = REFRESH_UNKNOWN;
    bool open;
    enum store_rc rc = session_decide_locked(s, sid, gen, p, false, &row, &owner, &out, &open);
    if (rc == STORE_OK && open) {
        if (out == REFRESH_ROTATED) {
            row.refresh_gen = gen + 1;
            row.rotated_at_ms = p->now_ms;
            row.last_used_at = p->now_ms / 1000;
            rc = s->ops->session_rotate(s, &row);
        } else if (out == REFRESH_REUSED) {
            rc = s->ops->session_revoke_rows(s, NULL, sid, NULL, "refresh_token_reused",
                                             &p->rev, NULL);
            if (rc == STORE_NOT_FOUND)
                rc = STORE_OK;
        }
        rc = s->ops->tx_end(s, rc);
    }
    if (rc != STORE_OK)
        return rc;
    *ret_outcome = out;
    if (out == REFRESH_ROTATED || out == REFRESH_REPLAYED) {
        if (ret_session)
            *ret_session = row;
        if (ret_owner)
            *ret_owner = owner;
    } else if (ret_session) { /* whose session was refused, for the audit line */
        memcpy(ret_session->user_id, row.user_id, sizeof row.user_id);
    }
    return STORE_OK;
}

/* A password change or reset calls off a pending address change: its
 * verification (link and code) goes, and the verified address stays. The
 * notice of the change tells the owner to change the password if it was
 * not them; a link for the intruder's address that outlived that would
 * still make it the account's address, and hand the intruder the next
 * reset link. Inside the caller's transaction, after the row was held. */
static enum store_rc call_off_pending(struct store *s, const char *id, int64_t now)
{
    struct store_user u = {0};
    enum store_rc rc = s->ops->user_by_id(s, id, &u);
    if (rc == STORE_OK && u.email_pending[0]) {
        rc = s->ops->user_update_email(s, id, u.email, u.email_verified, NULL, now);
        if (rc == STORE_OK)
            rc = s->ops->email_token_delete(s, id, EMAIL_VERIFY);
    }
    store_user_clear(&u);
    return rc;
}

enum store_rc store_user_change_password(struct store *s, const char *id, const char *old_hash,
                                         const char *new_hash, const char *keep_sid,
                                         const struct revocation *rev, int *ret_revoked)
{
    enum store_rc rc = s->ops->tx_begin(s);
    if (rc != STORE_OK)
        return rc;
    int n = 0;
    rc = s->ops->user_update_hash(s, id, old_hash, new_hash, rev->now_ms / 1000);
    if (rc == STORE_OK)
        rc = s->ops->session_revoke_rows(s, id, NULL, keep_sid, "password_changed", rev, &n);
    /* A password change ends every reset link sent before it, and a
     * pending address change (call_off_pending). */
    if (rc == STORE_OK)
        rc = s->ops->email_token_delete(s, id, EMAIL_RESET);
    if (rc == STORE_OK)
        rc = call_off_pending(s, id, rev->now_ms / 1000);
    rc = s->ops->tx_end(s, rc);
    if (rc == STORE_OK && ret_revoked)
        *ret_revoked = n;
    return rc;
}

enum store_rc store_user_set_disabled(struct store *s, const char *id, bool disabled,
                                      const struct revocation *rev, int *ret_revoked)
{
    enum store_rc rc = s->ops->tx_begin(s);
    if (rc != STORE_OK)
        return rc;
    int n = 0;
    int64_t now = rev->now_ms / 1000;
    rc = s->ops->user_update_disabled(s, id, disabled ? now : 0, now);
    if (rc == STORE_OK && disabled)
        rc = s->ops->session_revoke_rows(s, id, NULL, NULL, "account_disabled", rev, &n);
    rc = s->ops->tx_end(s, rc);
    if (rc == STORE_OK && ret_revoked)
        *ret_revoked = n;
    return rc;
}

enum store_rc store_user_delete(struct store *s, const char *id, const struct revocation *rev)
{
    enum store_rc rc = s->ops->tx_begin(s);
    if (rc != STORE_OK)
        return rc;
    /* The row first: a session being opened meanwhile is either in the
     * revocation feed below or refused (store_session_create), never
     * deleted by the cascade without being fed. */
    rc = s->ops->user_lock(s, id, NULL, true);
    if (rc == STORE_OK)
        rc = s->ops->session_revoke_rows(s, id, NULL, NULL, "user_deleted", rev, NULL);
    if (rc == STORE_OK)
        rc = s->ops->user_delete_row(s, id);
    return s->ops->tx_end(s, rc);
}

enum store_rc store_signout(struct store *s, const char *sid, uint32_t gen,
                            const struct signout_policy *p, struct signout_result *ret)
{
    struct store_session row = {0};
    struct store_user owner = {0};
    struct signout_result out = {.reach = SIGNOUT_NOTHING};
    bool open;
    enum store_rc rc =
        session_decide_locked(s, sid, gen, &p->refresh, p->all, &row, &owner, &out.outcome, &open);
    if (rc == STORE_OK && open) {
        out.reach = p->reach(out.outcome, p->all);
        memcpy(out.user_id, row.user_id, sizeof out.user_id);
        /* The labels recorded with the rows: a reused token ends its
         * session as /auth/refresh would have. */
        if (out.reach == SIGNOUT_SESSION)
            rc = s->ops->session_revoke_rows(
                s, NULL, sid, NULL,
                out.outcome == REFRESH_REUSED ? "refresh_token_reused" : "logout",
                &p->refresh.rev, &out.revoked);
        else if (out.reach == SIGNOUT_USER)
            rc = s->ops->session_revoke_rows(s, row.user_id, NULL, NULL, "logout_all",
                                             &p->refresh.rev, &out.revoked);
        rc = s->ops->tx_end(s, rc == STORE_NOT_FOUND ? STORE_OK : rc);
    }
    if (rc == STORE_OK)
        *ret = out;
    return rc;
}

enum store_rc store_session_revoke(struct store *s, const char *user_id, const char *sid,
                                   const char *reason, const struct revocation *rev)
{
    enum store_rc rc = s->ops->tx_begin(s);
    if (rc != STORE_OK)
        return rc;
    int n = 0;
    rc = s->ops->session_revoke_rows(s, user_id, sid, NULL, reason, rev, &n);
    if (rc == STORE_OK && n == 0)
        rc = STORE_NOT_FOUND;
    return s->ops->tx_end(s, rc);
}

enum store_rc store_session_revoke_user(struct store *s, const char *user_id,
                                        const char *except_sid, const char *reason,
                                        const struct revocation *rev, int *ret_count)
{
    enum store_rc rc = s->ops->tx_begin(s);
    if (rc != STORE_OK)
        return rc;
    int n = 0;
    /* The user's row first, as every change to all of a user's sessions
     * takes it (a password change, disabling, deletion, a reset, a
     * sign-out everywhere with a refresh token): they take turns instead
     * of locking the session rows in different orders (on PostgreSQL, a
     * deadlock). An account deleted meanwhile has no sessions left. */
    rc = s->ops->user_lock(s, user_id, NULL, true);
    if (rc == STORE_OK)
        rc = s->ops->session_revoke_rows(s, user_id, NULL, except_sid, reason, rev, &n);
    if (rc == STORE_NOT_FOUND)
        rc = STORE_OK;
    rc = s->ops->tx_end(s, rc);
    if (rc == STORE_OK && ret_count)
        *ret_count = n;
    return rc;
}

enum store_rc store_session_create(struct store *s, const struct store_session *sess,
                                   const char *expect_hash)
{
    enum store_rc rc = s->ops->tx_begin(s);
    if (rc != STORE_OK)
        return rc;
    rc = s->ops->user_lock(s, sess->user_id, expect_hash, false);
    if (rc == STORE_OK)
        rc = s->ops->session_insert(s, sess);
    return s->ops->tx_end(s, rc);
}

enum store_rc store_mail_enqueue(struct store *s, const struct store_email_token *token,
                                 const struct store_mail *mails, int n)
{
    enum store_rc rc = s->ops->tx_begin(s);
    if (rc != STORE_OK)
        return rc;
    if (token)
        rc = s->ops->email_token_put(s, token);
    for (int i = 0; i < n && rc == STORE_OK; i++)
        rc = s->ops->outbox_insert(s, &mails[i]);
    return s->ops->tx_end(s, rc);
}

enum store_rc store_mail_resolve(struct store *s, const struct store_email_token *token,
                                 const struct store_mail *m)
{
    enum store_rc rc = s->ops->tx_begin(s);
    if (rc != STORE_OK)
        return rc;
    rc = s->ops->outbox_resolve(s, m);
    if (rc == STORE_OK)
        rc = s->ops->email_token_put(s, token);
    return s->ops->tx_end(s, rc);
}

bool store_reset_token_live(const struct store_email_token *t, const char *user_id,
                            const struct store_user *u, int64_t now)
{
    /* A link mailed to an address is void once the account's address is
     * another (removed, replaced, or a new one confirmed since). An
     * operator's link (`jwtd user reset-link`) names no address. */
    return t->purpose == EMAIL_RESET && strcmp(t->user_id, user_id) == 0 &&
           strcmp(u->id, user_id) == 0 && now < t->expires_at &&
           (!t->email[0] || strcmp(u->email, t->email) == 0);
}

bool store_verify_token_live(const struct store_email_token *t, const char *user_id,
                             const struct store_user *u, int64_t now)
{
    /* Only the address the account is waiting to confirm: a link for an
     * address since removed or replaced is void. */
    return t->purpose == EMAIL_VERIFY && strcmp(t->user_id, user_id) == 0 &&
           strcmp(u->id, user_id) == 0 && now < t->expires_at &&
           (strcmp(u->email_pending, t->email) == 0 ||
            (strcmp(u->email, t->email) == 0 && !u->email_verified));
}

enum store_rc store_password_reset(struct store *s, const struct store_email_token *t,
                                   const char *new_hash, const struct revocation *rev,
                                   int *ret_revoked, struct store_user *ret_user)
{
    enum store_rc rc = s->ops->tx_begin(s);
    if (rc != STORE_OK)
        return rc;
    /* Still there? A second use, a newer link or a password change since
     * removed it. The user's row is held first, so that two uses of one
     * link (or a use and a password change) take turns: the second finds
     * the link gone. */
    struct store_email_token now_t;
    struct store_user u = {0};
    int n = 0;
    rc = s->ops->user_lock(s, t->user_id, NULL, true);
    if (rc == STORE_OK)
        rc = s->ops->email_token_by_hash(s, t->token_hash, &now_t);
    if (rc == STORE_OK)
        rc = s->ops->user_by_id(s, t->user_id, &u);
    /* Expired while the new password was hashed: refused as at the door. */
    if (rc == STORE_OK && !store_reset_token_live(&now_t, t->user_id, &u, rev->now_ms / 1000))
        rc = STORE_NOT_FOUND;
    if (rc == STORE_OK)
        rc = s->ops->user_update_hash(s, t->user_id, NULL, new_hash, rev->now_ms / 1000);
    if (rc == STORE_OK)
        rc = s->ops->session_revoke_rows(s, t->user_id, NULL, NULL, "password_reset", rev, &n);
    if (rc == STORE_OK)
        rc = s->ops->email_token_delete(s, t->user_id, EMAIL_RESET);
    /* The link reached the account's address: that proves the address
     * (not an operator's link, which was never mailed). A pending new
     * address is called off (call_off_pending): whoever made it pending may
     * be whom the reset locks out. Either way the outstanding verification
     * (link and code) is done. */
    bool proven = u.email[0] && strcmp(u.email, now_t.email) == 0;
    if (rc == STORE_OK && ((proven && !u.email_verified) || u.email_pending[0])) {
        bool verified = u.email_verified || proven;
        rc = s->ops->user_update_email(s, u.id, u.email, verified, NULL, rev->now_ms / 1000);
        if (rc == STORE_OK) {
            u.email_verified = verified;
            u.email_pending[0] = '\0';
            rc = s->ops->email_token_delete(s, u.id, EMAIL_VERIFY);
        }
    }
    rc = s->ops->tx_end(s, rc);
    store_user_clear(&u);
    if (rc != STORE_OK)
        return rc;
    if (ret_revoked)
        *ret_revoked = n;
    if (ret_user)
        *ret_user = u;
    return STORE_OK;
}

enum store_rc store_email_confirm(struct store *s, const struct store_email_token *t,
                                  int64_t now)
{
    enum store_rc rc = s->ops->tx_begin(s);
    if (rc != STORE_OK)
        return rc;
    struct store_email_token now_t;
    struct store_user u = {0};
    /* The user's row first, as every change to the account's addresses
     * takes it: a removal or a new address meanwhile waits for this
     * confirmation or is seen by it, never overwritten from a stale read
     * (PostgreSQL reads committed rows, it does not serialize). */
    rc = s->ops->user_lock(s, t->user_id, NULL, true);
    if (rc == STORE_OK)
        rc = s->ops->email_token_by_hash(s, t->token_hash, &now_t);
    if (rc == STORE_OK)
        rc = s->ops->user_by_id(s, t->user_id, &u);
    if (rc == STORE_OK && !store_verify_token_live(&now_t, t->user_id, &u, now))
        rc = STORE_NOT_FOUND;
    /* One identifier names one account: an address that became another
     * account's username while it waited here cannot be confirmed. */
    if (rc == STORE_OK) {
        struct store_user other = {0};
        enum store_rc orc = s->ops->user_by_name(s, now_t.email, &other);
        if (orc == STORE_OK && strcmp(other.id, u.id) != 0)
            rc = STORE_CONFLICT;
        else if (orc != STORE_OK && orc != STORE_NOT_FOUND)
            rc = orc;
        store_user_clear(&other);
    }
    if (rc == STORE_OK) {
        /* The confirmed address replaces the old one; a pending address
         * other than this one stays pending. */
        const char *pending = strcmp(u.email_pending, now_t.email) == 0 ? "" : u.email_pending;
        rc = s->ops->user_update_email(s, u.id, now_t.email, true, pending, now);
    }
    if (rc == STORE_OK)
        rc = s->ops->email_token_delete(s, t->user_id, EMAIL_VERIFY);
    /* Another address now: reset links mailed to the one before end here,
     * not only while the addresses differ (X, then Y, then X again must
     * not bring X's old link back). */
    if (rc == STORE_OK && strcmp(u.email, now_t.email) != 0)
        rc = s->ops->email_token_delete(s, t->user_id, EMAIL_RESET);
    store_user_clear(&u);
    return s->ops->tx_end(s, rc == STORE_CONFLICT ? STORE_CONFLICT : rc);
}

enum store_rc store_totp_begin(struct store *s, const struct store_totp *t)
{
    enum store_rc rc = s->ops->tx_begin(s);
    if (rc != STORE_OK)
        return rc;
    /* The user's row first: a confirmation of the factor in another tab
     * (which holds it too, store_totp_accept) finishes before this reads,
     * so a confirmed factor is never overwritten by a new pending one. */
    struct store_totp cur;
    memset(&cur, 0, sizeof cur);
    rc = s->ops->user_lock(s, t->user_id, NULL, true);
    if (rc == STORE_OK) {
        rc = s->ops->totp_get(s, t->user_id, &cur);
        if (rc == STORE_OK && cur.confirmed)
            rc = STORE_CONFLICT;
        else if (rc == STORE_OK || rc == STORE_NOT_FOUND) /* none yet, or one pending */
            rc = s->ops->totp_put(s, t);
    }
    OPENSSL_cleanse(&cur, sizeof cur);
    return s->ops->tx_end(s, rc);
}

enum store_rc store_totp_delete(struct store *s, const char *user_id)
{
    enum store_rc rc = s->ops->tx_begin(s);
    if (rc != STORE_OK)
        return rc;
    rc = s->ops->user_lock(s, user_id, NULL, true);
    if (rc == STORE_OK)
        rc = s->ops->totp_delete(s, user_id);
    return s->ops->tx_end(s, rc);
}

enum store_rc store_user_set_email_if(struct store *s, const struct store_user *seen,
                                      const char *email, bool verified, const char *pending)
{
    enum store_rc rc = s->ops->tx_begin(s);
    if (rc != STORE_OK)
        return rc;
    /* seen->password_hash, when given, is the hash the change was
     * confirmed with: a password changed meanwhile (a reset, the owner
     * locking an intruder out) leaves nothing to write. */
    rc = s->ops->user_lock(s, seen->id, seen->password_hash, true);
    struct store_user cur;
    memset(&cur, 0, sizeof cur);
    if (rc == STORE_OK)
        rc = s->ops->user_by_id(s, seen->id, &cur);
    if (rc == STORE_OK &&
        (strcmp(cur.email, seen->email) != 0 || cur.email_verified != seen->email_verified ||
         strcmp(cur.email_pending, seen->email_pending) != 0))
        rc = STORE_NOT_FOUND; /* changed meanwhile */
    store_user_clear(&cur);
    if (rc == STORE_OK)
        rc = s->ops->user_update_email(s, seen->id, email, verified, pending, util_now());
    return s->ops->tx_end(s, rc);
}

struct pk_ids {
    char id[16][PASSKEY_ID_MAX + 1];
    int n;
};

static void pk_collect(void *ctx, const struct store_passkey *p)
{
    struct pk_ids *l = ctx;
    if (l->n < 16)
        snprintf(l->id[l->n++], sizeof l->id[0], "%s", p->id);
}

enum store_rc store_mfa_clear(struct store *s, const char *user_id, bool *ret_totp,
                              int *ret_passkeys)
{
    *ret_totp = false;
    *ret_passkeys = 0;
    bool had_totp = false;
    int removed = 0;
    enum store_rc rc = s->ops->tx_begin(s);
    if (rc != STORE_OK)
        return rc;
    rc = s->ops->user_lock(s, user_id, NULL, true);
    if (rc == STORE_OK) {
        struct store_totp t;
        memset(&t, 0, sizeof t);
        enum store_rc g = s->ops->totp_get(s, user_id, &t);
        had_totp = g == STORE_OK && t.confirmed;
        OPENSSL_cleanse(&t, sizeof t);
        if (g != STORE_OK && g != STORE_NOT_FOUND)
            rc = g;
    }
    if (rc == STORE_OK)
        rc = s->ops->totp_delete(s, user_id);
    /* Sixteen at a time until none is left (an account holds a few). */
    struct pk_ids *l = rc == STORE_OK ? malloc(sizeof *l) : NULL;
    if (rc == STORE_OK && !l)
        rc = STORE_ERROR;
    for (int round = 0; rc == STORE_OK; round++) {
        l->n = 0;
        rc = s->ops->passkeys_list(s, user_id, pk_collect, l);
        if (rc != STORE_OK || l->n == 0)
            break;
        if (round == 64) {
            rc = STORE_ERROR; /* more than 1,024 passkeys: not an account of ours */
            break;
        }
        for (int i = 0; rc == STORE_OK && i < l->n; i++) {
            rc = s->ops->passkey_delete(s, user_id, l->id[i]);
            if (rc == STORE_OK)
                removed++;
        }
    }
    free(l);
    rc = s->ops->tx_end(s, rc);
    if (rc == STORE_OK) {
        *ret_totp = had_totp;
        *ret_passkeys = removed;
    }
    return rc;
}

enum store_rc store_totp_accept(struct store *s, const char *user_id, int64_t step, bool confirm,
                                const char *pending_secret_hex,
                                const char (*recovery_hashes)[SHA256_HEX_LEN], int n)
{
    enum store_rc rc = s->ops->tx_begin(s);
    if (rc != STORE_OK)
        return rc;
    /* A confirmation holds the user's row, as store_totp_begin does. */
    rc = confirm ? s->ops->user_lock(s, user_id, NULL, true) : STORE_OK;
    if (rc == STORE_OK)
        rc = s->ops->totp_step(s, user_id, step, confirm, pending_secret_hex);
    if (rc == STORE_OK && confirm)
        rc = s->ops->recovery_codes_put(s, user_id, recovery_hashes, n);
    return s->ops->tx_end(s, rc);
}

enum store_rc store_recovery_codes_renew(struct store *s, const char *user_id, int64_t gen,
                                         const char (*hashes)[SHA256_HEX_LEN], int n)
{
    enum store_rc rc = s->ops->tx_begin(s);
    if (rc != STORE_OK)
        return rc;
    rc = s->ops->totp_codes_bump(s, user_id, gen);
    if (rc == STORE_OK)
        rc = s->ops->recovery_codes_put(s, user_id, hashes, n);
    return s->ops->tx_end(s, rc);
}

enum store_rc store_ephemeral_take(struct store *s, const char *key,
                                   struct store_ephemeral *ret)
{
    enum store_rc rc = s->ops->tx_begin(s);
    if (rc != STORE_OK)
        return rc;
    struct store_ephemeral e;
    memset(&e, 0, sizeof e);
    rc = s->ops->ephemeral_get(s, key, &e);
    if (rc == STORE_OK)
        rc = s->ops->ephemeral_delete(s, key);
    rc = s->ops->tx_end(s, rc);
    if (rc != STORE_OK) {
        store_ephemeral_clear(&e);
        return rc;
    }
    *ret = e;
    return STORE_OK;
}

void store_ephemeral_clear(struct store_ephemeral *e)
{
    if (e && e->value) {
        OPENSSL_cleanse(e->value, strlen(e->value));
        free(e->value);
        e->value = NULL;
    }
}

void store_mail_clear(struct store_mail *m)
{
    if (m && m->params) {
        /* The parameters hold the message's secret (core/mail.h). */
        OPENSSL_cleanse(m->params, strlen(m->params));
        free(m->params);
        m->params = NULL;
    }
}

const char *store_mail_status_name(enum mail_status st)
{
    switch (st) {
    case MAIL_QUEUED: return "queued";
    case MAIL_SENT: return "sent";
    case MAIL_FAILED: return "failed";
    case MAIL_DROPPED: return "dropped";
    }
    return "?";
}

/* ----------------------------------------------------------- helpers --- */

void store_username_key(const char *u, char out[USERNAME_MAX + 1])
{
    size_t i = 0;
    for (; u[i] && i < USERNAME_MAX; i++)
        out[i] = (u[i] >= 'A' && u[i] <= 'Z') ? (char)(u[i] + 32) : u[i];
    out[i] = '\0';
}

const char *store_hash_scheme(const char *h)
{
    if (strncmp(h, "$argon2id$", 10) == 0)
        return "argon2id";
    if (strncmp(h, "$2a$", 4) == 0 || strncmp(h, "$2b$", 4) == 0 || strncmp(h, "$2y$", 4) == 0)
        return "bcrypt";
    return "unknown";
}

int64_t store_login_backoff(int64_t failures, unsigned max_failures, int64_t base, int64_t max)
{
    if (failures < (int64_t)max_failures)
        return 0;
    int64_t b = base;
    for (int64_t i = 0; i < failures - (int64_t)max_failures && b < max; i++)
        b *= 2;
    return b < max ? b : max;
}

void store_user_clear(struct store_user *u)
{
    if (!u)
        return;
    if (u->password_hash) {
        OPENSSL_cleanse(u->password_hash, strlen(u->password_hash));
        free(u->password_hash);
        u->password_hash = NULL;
    }
}

void store_key_clear(struct store_key *k)
{
    if (!k)
        return;
    if (k->private_pem) {
        OPENSSL_cleanse(k->private_pem, strlen(k->private_pem));
        free(k->private_pem);
        k->private_pem = NULL;
    }
}

const char *store_key_state_name(enum key_state s)
{
    switch (s) {
    case KEY_NEXT: return "next";
    case KEY_CURRENT: return "current";
    case KEY_RETIRED: return "retired";
    }
    return "?";
}
