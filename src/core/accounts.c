/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Implementation of accounts.h. Passwords are copied into the operation
 * (wiped when it is freed) because the hashing runs after the caller's
 * buffers are gone. Log and audit lines name accounts by id, and by
 * username only when the account exists: a password typed into the
 * username field must never reach a log.
 */
#include "core/accounts.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>

#include "base/log.h"
#include "core/audit.h"
#include "core/mail.h"
#include "core/mfa.h"
#include "core/mime.h"
#include "core/recovery.h"
#include "core/ratelimit.h"
#include "core/sessions.h"

/* The state of an operation that hashes. */
struct pw_priv {
    char *password;        /* the password to check (login, re-confirmation) */
    size_t pwlen;
    bool too_long;         /* re-confirmation: the password given was over the cap (kept cut) */
    char *new_password;    /* the password to set */
    size_t newlen;
    bool found;            /* login: the account exists */
    struct login_limit limit;
    enum password_rc verdict;
    bool needs_rehash;
    const char *weak;      /* re-confirmed change: the new password's weakness */
    char *new_hash;
    struct identity who;   /* self-service operations */
    char *new_email;       /* e-mail change: the new address, "" to remove */
};

/* The passwords go as soon as they were checked or hashed. */
static void pw_priv_wipe(void *p)
{
    struct pw_priv *pv = p;
    if (pv->password) {
        OPENSSL_cleanse(pv->password, pv->pwlen);
        free(pv->password);
        pv->password = NULL;
    }
    if (pv->new_password) {
        OPENSSL_cleanse(pv->new_password, pv->newlen);
        free(pv->new_password);
        pv->new_password = NULL;
    }
}

static void pw_priv_free(void *p)
{
    struct pw_priv *pv = p;
    if (!pv)
        return;
    pw_priv_wipe(pv);
    password_hash_free(pv->new_hash);
    free(pv->new_email);
    free(pv);
}

/* A NUL-terminated heap copy of n secret bytes. */
static char *secret_dup(const char *s, size_t n)
{
    char *d = malloc(n + 1);
    if (d) {
        memcpy(d, s, n);
        d[n] = '\0';
    }
    return d;
}

static struct pw_priv *priv_new(struct svc_op *op)
{
    struct pw_priv *pv = calloc(1, sizeof *pv);
    if (pv) {
        op->priv = pv;
        op->priv_free = pw_priv_free;
        op->priv_wipe = pw_priv_wipe;
    }
    return pv;
}

static void set_result(struct svc_op *op, struct svc_result r)
{
    op->res = r;
    op->slow = NULL;
    op->finish = NULL;
}

static const struct svc_result OOM = {SVC_ERROR, "The server ran out of memory.", 0};

/* The rules a new password must follow; NULL when it may be used. */
static const char *password_weakness(struct app *app, const char *username, const char *pw,
                                     size_t len)
{
    return password_policy_check(app->policy, username, pw, len);
}

/* The same verdict, but only when one of the cheap rules (length, equal to
 * the username) fails: checked before anything else is looked at. */
static const char *password_cheap_weakness(struct app *app, const char *username,
                                           const char *pw, size_t len)
{
    size_t ulen = username ? strlen(username) : 0;
    if (len < PASSWORD_MIN_BYTES || len > PASSWORD_MAX_BYTES ||
        (username && len == ulen && util_ascii_ieq(username, pw)))
        return password_weakness(app, username, pw, len);
    return NULL;
}

/* ------------------------------------------------------------ signup --- */

static enum store_rc identifier_taken(struct app *app, const char *x, const char *except_id,
                                      bool *ret_taken);

static void hash_new_password(struct svc_op *op)
{
    struct pw_priv *pv = op->priv;
    if (password_hash(&op->app->argon2, pv->new_password, pv->newlen, &pv->new_hash) !=
        PASSWORD_OK)
        pv->new_hash = NULL;
}

/* The last step before hashing a password an account is to get (sign-up,
 * an operator's `user passwd`): the policy, then a private copy that the
 * hashing job takes, then `finish` with the hash. */
static struct svc_op *set_new_password(struct svc_op *op, const char *username,
                                       const char *password, size_t plen,
                                       void (*finish)(struct svc_op *, bool))
{
    const char *weak = password_weakness(op->app, username, password, plen);
    if (weak) {
        set_result(op, svc_fail(SVC_WEAK_PASSWORD, weak));
        return op;
    }
    struct pw_priv *pv = priv_new(op);
    if (!pv || !(pv->new_password = secret_dup(password, plen))) {
        set_result(op, OOM);
        return op;
    }
    pv->newlen = plen;
    op->slow = hash_new_password;
    op->finish = finish;
    return op;
}

static void signup_finish(struct svc_op *op, bool ran)
{
    struct pw_priv *pv = op->priv;
    struct app *app = op->app;
    if (!ran) {
        op->res = (struct svc_result){SVC_BUSY,
                                      "The server is too busy to hash a password; try again shortly.", 1};
        return;
    }
    if (!pv->new_hash) {
        op->res = svc_fail(SVC_ERROR, "The password could not be hashed.");
        return;
    }
    op->user.created_at = util_now();
    if (!util_uuid7(op->user.id)) {
        op->res = svc_fail(SVC_ERROR, "The server could not make an id.");
        return;
    }
    op->user.password_hash = pv->new_hash;
    enum store_rc rc = store_user_create(app->store, &op->user);
    op->user.password_hash = NULL;
    if (rc == STORE_CONFLICT) {
        /* A race with another account's write (the database refuses a
         * name or address that names another account): which one? */
        bool name = true;
        identifier_taken(app, op->user.username, NULL, &name);
        op->res = name ? svc_fail(SVC_USERNAME_TAKEN, "That username is already taken.")
                       : svc_fail(SVC_EMAIL_TAKEN, NULL);
        return;
    }
    if (rc != STORE_OK) {
        op->res = svc_store_failure(app, rc, "signup");
        return;
    }
    metrics_inc(&app->metrics.signups_ok);
    AUDIT(LOG_INFO, &op->ctx, "signup", "ok", op->user.id, LF_S("username", op->user.username),
          LF_B("email", op->user.email[0] != 0));
    /* A new address gets its verification at once (when mail is set up;
     * the account exists either way). */
    if (op->user.email[0] && mail_configured(app))
        recovery_send_verification(app, &op->ctx, &op->user, op->user.email, NULL);
}

struct svc_result accounts_signup_allowed(struct app *app, const struct svc_ctx *ctx)
{
    if (ctx->actor != SVC_ACTOR_OPERATOR && !app->cfg->signup_open)
        return svc_fail(SVC_SIGNUP_CLOSED, "Signing up is disabled on this server.");
    return svc_ok();
}

bool accounts_email_normalize(const char *in, size_t len, char out[EMAIL_MAX + 1])
{
    while (len && (*in == ' ' || *in == '\t')) {
        in++;
        len--;
    }
    while (len && (in[len - 1] == ' ' || in[len - 1] == '\t'))
        len--;
    if (len == 0 || len > EMAIL_MAX || memchr(in, '\0', len))
        return false;
    /* Lower case as a whole: providers treat the local part so in practice,
     * and one account per mailbox is what matters. */
    for (size_t i = 0; i < len; i++)
        out[i] = (in[i] >= 'A' && in[i] <= 'Z') ? (char)(in[i] + 32) : in[i];
    out[len] = '\0';
    return mime_addr_valid(out);
}

/* Does an account other than `except_id` answer to x, as its username or
 * as its address? Usernames may look like addresses, and login takes
 * either: one identifier names one account. */
static enum store_rc identifier_taken(struct app *app, const char *x, const char *except_id,
                                      bool *ret_taken)
{
    struct store_user u = {0};
    enum store_rc rc = STORE_NOT_FOUND;
    if (username_valid(x, strlen(x)))
        rc = store_user_by_name(app->store, x, &u);
    if (rc == STORE_NOT_FOUND && strchr(x, '@')) {
        char e[EMAIL_MAX + 1];
        if (accounts_email_normalize(x, strlen(x), e))
            rc = store_user_by_email(app->store, e, &u);
    }
    store_user_clear(&u);
    if (rc == STORE_NOT_FOUND) {
        *ret_taken = false;
        return STORE_OK;
    }
    if (rc == STORE_OK)
        *ret_taken = !except_id || strcmp(u.id, except_id) != 0;
    return rc;
}

struct svc_op *accounts_signup(struct app *app, const struct svc_ctx *ctx, const char *username,
                               size_t ulen, const char *password, size_t plen, const char *email,
                               size_t elen)
{
    struct svc_op *op = svc_op_new(app, ctx);
    if (!op)
        return NULL;
    bool operator = ctx->actor == SVC_ACTOR_OPERATOR;
    struct svc_result allowed = accounts_signup_allowed(app, ctx);
    if (allowed.status != SVC_OK) {
        set_result(op, allowed);
        return op;
    }
    if (!username_valid(username, ulen)) {
        set_result(op, svc_fail(SVC_INVALID_USERNAME,
                                "A username has 3 to 128 characters: letters, digits and . _ - @ +"));
        return op;
    }
    /* From here on the name is exactly the ulen bytes that were checked. */
    memcpy(op->user.username, username, ulen);
    op->user.username[ulen] = '\0';
    username = op->user.username;
    const char *weak = password_cheap_weakness(app, username, password, plen);
    if (weak) {
        set_result(op, svc_fail(SVC_WEAK_PASSWORD, weak));
        return op;
    }
    if (!operator) {
        struct svc_result r = ratelimit_take(app, ctx, RATE_SIGNUP);
        if (r.status != SVC_OK) {
            set_result(op, r);
            return op;
        }
    }
    if (email && !accounts_email_normalize(email, elen, op->user.email)) {
        set_result(op, svc_fail(SVC_INVALID_EMAIL, "That is not an e-mail address."));
        return op;
    }
    if (!email && app->cfg->require_verified_email && !operator) {
        /* Without one the account could never log in. */
        set_result(op, svc_fail(SVC_INVALID_EMAIL,
                                "An e-mail address is required: it must be verified to log in."));
        return op;
    }
    if (op->user.email[0] && mail_configured(app) && !operator) {
        /* Sign-up sends mail: the same limits as every request that does.
         * The subject is the address in a counter of its own: "forgot"
         * must not be able to tell that someone signed up with it. */
        struct svc_result r = ratelimit_mail(app, ctx, MAIL_SUBJECT_SIGNUP, op->user.email);
        if (r.status != SVC_OK) {
            set_result(op, r);
            return op;
        }
    }
    /* A taken name or address is known without hashing anything. */
    bool taken = false;
    enum store_rc rc = identifier_taken(app, username, NULL, &taken);
    if (rc == STORE_OK && taken) {
        set_result(op, svc_fail(SVC_USERNAME_TAKEN, "That username is already taken."));
        return op;
    }
    if (rc == STORE_OK && op->user.email[0])
        rc = identifier_taken(app, op->user.email, NULL, &taken);
    if (rc == STORE_OK && taken) {
        set_result(op, svc_fail(SVC_EMAIL_TAKEN, NULL));
        return op;
    }
    if (rc != STORE_OK) {
        set_result(op, svc_store_failure(app, rc, "signup"));
        return op;
    }
    return set_new_password(op, username, password, plen, signup_finish);
}

/* ------------------------------------------------------------- login --- */

/* Why u may not sign in now (SVC_OK: it may), and the audit reason. */
static struct svc_result sign_in_refusal(const struct app *app, const struct store_user *u,
                                         const char **ret_why)
{
    *ret_why = NULL;
    if (u->disabled_at) {
        *ret_why = "account_disabled";
        return svc_fail(SVC_ACCOUNT_DISABLED, "This account is disabled.");
    }
    if (app->cfg->require_verified_email && !(u->email[0] && u->email_verified)) {
        *ret_why = "email_not_verified";
        return svc_fail(SVC_EMAIL_NOT_VERIFIED, NULL);
    }
    return svc_ok();
}

struct svc_result accounts_signup_session(struct app *app, const struct svc_ctx *ctx,
                                          const struct store_user *u,
                                          struct session_grant *ret_grant)
{
    const char *why;
    struct svc_result r = sign_in_refusal(app, u, &why);
    if (r.status != SVC_OK)
        return r; /* no failed login: nobody tried one */
    r = sessions_open(app, ctx, u, AMR_PWD, ret_grant);
    if (r.status == SVC_OK)
        AUDIT(LOG_INFO, ctx, "login", "ok", u->id, LF_S("sid", ret_grant->sid),
              LF_S("after", "signup"));
    return r;
}

struct svc_result accounts_may_sign_in(struct app *app, const struct svc_ctx *ctx,
                                       const struct store_user *u)
{
    const char *why;
    struct svc_result r = sign_in_refusal(app, u, &why);
    if (why) {
        metrics_inc(&app->metrics.logins[LOGIN_FAILED]);
        AUDIT(LOG_INFO, ctx, "login_failed", "refused", u->id, LF_S("reason", why));
    }
    return r;
}

static void login_slow(struct svc_op *op)
{
    struct pw_priv *pv = op->priv;
    struct app *app = op->app;
    /* Unknown users verify against a dummy hash of the same cost, so the
     * answer takes as long either way. */
    const char *hash = pv->found ? op->user.password_hash : app->dummy_hash;
    pv->needs_rehash = false;
    int64_t t0 = util_mono_us();
    pv->verdict = password_verify(hash, pv->password, pv->pwlen, &app->argon2, &pv->needs_rehash);
    int64_t took = util_mono_us() - t0;
    if (!pv->found && pv->verdict == PASSWORD_OK)
        pv->verdict = PASSWORD_MISMATCH;
    if (!pv->found) { /* what an unknown user's answer costs: a moving average */
        int64_t avg = atomic_load(&app->dummy_verify_us);
        atomic_store(&app->dummy_verify_us, avg ? (avg * 7 + took) / 8 : took);
    }
    /* A refusal against a hash that costs less than the dummy (bcrypt
     * imported at a low cost, older argon2id settings, a hash that cannot
     * be used at all) would answer sooner than for an unknown user: it
     * waits out the difference (the dummy itself is verified when its cost
     * is not known yet). A dearer imported hash (bcrypt at cost 12, say)
     * answers later than an unknown user whatever is done; either is
     * replaced at the account's next successful login. */
    if (pv->found && pv->verdict != PASSWORD_OK &&
        !password_hash_is_current(op->user.password_hash, &app->argon2)) {
        int64_t want = atomic_load(&app->dummy_verify_us);
        if (!want) {
            bool unused = false;
            (void)password_verify(app->dummy_hash, pv->password, pv->pwlen, &app->argon2,
                                  &unused);
        } else if (took < want) {
            int64_t us = want - took;
            struct timespec ts = {.tv_sec = us / 1000000, .tv_nsec = (us % 1000000) * 1000};
            while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
                ;
        }
    }
    if (pv->verdict == PASSWORD_OK && pv->needs_rehash &&
        password_hash(&app->argon2, pv->password, pv->pwlen, &pv->new_hash) != PASSWORD_OK)
        pv->new_hash = NULL;
}

/* The password is right and the account has a second factor
 * (op->mfa_methods): a ticket for the second step instead of a session. */
static void second_factor_due(struct svc_op *op, struct pw_priv *pv)
{
    struct app *app = op->app;
    ratelimit_login_first_factor_ok(app, &pv->limit);
    struct svc_result r = mfa_ticket_new(app, &op->user, AMR_PWD, op->mfa_ticket);
    if (r.status == SVC_OK) {
        AUDIT(LOG_INFO, &op->ctx, "login_second_factor_due", "ok", op->user.id,
              LF_I("methods", op->mfa_methods));
        r = svc_fail(SVC_MFA_REQUIRED, "A second factor is required to finish logging in.");
    }
    op->res = r;
    store_user_clear(&op->user);
}

static void login_finish(struct svc_op *op, bool ran)
{
    struct pw_priv *pv = op->priv;
    struct app *app = op->app;
    if (!ran) {
        ratelimit_login_refund(app, &pv->limit);
        metrics_inc(&app->metrics.logins[LOGIN_BUSY]);
        op->res = (struct svc_result){
            SVC_BUSY, "The server is too busy to check a password; try again shortly.", 1};
        return;
    }
    if (pv->verdict == PASSWORD_ERROR && pv->found)
        LOG(LOG_ERROR, "password_hash_unusable", LF_S("user_id", op->user.id));
    if (pv->verdict != PASSWORD_OK) {
        ratelimit_login_failed(app, &pv->limit);
        metrics_inc(&app->metrics.logins[LOGIN_FAILED]);
        AUDIT(LOG_INFO, &op->ctx, "login_failed", "refused", pv->found ? op->user.id : NULL,
              LF_B("user_known", pv->found));
        op->res = svc_fail(SVC_BAD_CREDENTIALS, "The username or password is wrong.");
        return;
    }
    if (pv->new_hash) {
        /* Compare-and-set: a password change in the meantime wins. */
        enum store_rc rh =
            store_user_set_hash(app->store, op->user.id, op->user.password_hash, pv->new_hash);
        if (rh == STORE_NOT_FOUND) {
            /* The hash changed since it was read: another login's rehash
             * of the same password, or a password change - which, only a
             * new check can tell. The session below would be refused for
             * the old hash either way; a moment later the login checks
             * the hash stored then. */
            ratelimit_login_refund(app, &pv->limit);
            op->res = (struct svc_result){
                SVC_BUSY, "The account's password was being updated; try again.", 1};
            store_user_clear(&op->user);
            return;
        }
        if (rh == STORE_OK) {
            LOG(LOG_INFO, "password_rehashed", LF_S("user_id", op->user.id),
                LF_S("scheme", "argon2id"));
            /* What is stored now (a second-step ticket is bound to it). */
            password_hash_free(op->user.password_hash);
            op->user.password_hash = pv->new_hash;
            pv->new_hash = NULL;
        }
    }
    struct svc_result r = accounts_may_sign_in(app, &op->ctx, &op->user);
    if (r.status != SVC_OK) {
        ratelimit_login_succeeded(app, &pv->limit); /* the password was right */
        const char *target = op->user.email_pending[0] ? op->user.email_pending
                             : op->user.email[0]       ? op->user.email
                                                       : NULL;
        /* The right password for an unverified address: the one who can
         * open that mailbox gets a fresh link (within the mail limits), so
         * an expired or lost link is never a dead end. */
        if (r.status == SVC_EMAIL_NOT_VERIFIED && target && mail_configured(app) &&
            ratelimit_mail(app, &op->ctx, MAIL_SUBJECT_ACCOUNT, op->user.id).status == SVC_OK)
            recovery_send_verification(app, &op->ctx, &op->user, target, NULL);
        op->res = r;
        return;
    }
    op->mfa_methods = mfa_methods(app, op->user.id, &r);
    if (r.status != SVC_OK) {
        ratelimit_login_refund(app, &pv->limit);
        op->res = r;
        return;
    }
    if (op->mfa_methods) {
        second_factor_due(op, pv);
        return;
    }
    r = sessions_open(app, &op->ctx, &op->user, AMR_PWD, &op->grant);
    if (r.status == SVC_OK) {
        /* The account's first second factor may have been stored after
         * the read above, and its "end the other sessions"
         * (mfa_factor_added) may have run before this session was stored,
         * missing it: a session opened with the password alone would then
         * outlive the factor turned on against that password. So read
         * again, now that the session is stored: a factor stored after
         * this read is followed by the revocation, which finds the
         * session; one stored before it is seen here, and the session is
         * taken back before its tokens leave - the login needs the factor
         * now, as a login a moment later would. */
        struct svc_result mr;
        unsigned late = mfa_methods(app, op->user.id, &mr);
        if (mr.status != SVC_OK || late) {
            sessions_withdraw(app, op->user.id, "second_factor_added", &op->grant);
            if (mr.status != SVC_OK) {
                ratelimit_login_refund(app, &pv->limit);
                op->res = mr;
                store_user_clear(&op->user);
                return;
            }
            op->mfa_methods = late;
            second_factor_due(op, pv);
            return;
        }
    }
    ratelimit_login_succeeded(app, &pv->limit);
    if (r.status == SVC_BAD_CREDENTIALS) {
        metrics_inc(&app->metrics.logins[LOGIN_FAILED]);
        op->res = svc_fail(SVC_BAD_CREDENTIALS, "The username or password is wrong.");
        return;
    }
    if (r.status != SVC_OK) {
        op->res = r;
        return;
    }
    metrics_inc(&app->metrics.logins[LOGIN_OK]);
    AUDIT(LOG_INFO, &op->ctx, "login", "ok", op->user.id, LF_S("sid", op->grant.sid));
    store_user_clear(&op->user);
}

struct svc_op *accounts_login(struct app *app, const struct svc_ctx *ctx, const char *username,
                              size_t ulen, const char *password, size_t plen)
{
    struct svc_op *op = svc_op_new(app, ctx);
    if (!op)
        return NULL;
    struct pw_priv *pv = priv_new(op);
    if (!pv) {
        set_result(op, OOM);
        return op;
    }
    /* Names that could not exist and oversized passwords are refused like
     * any wrong password (same answer), after the same work. */
    char e[EMAIL_MAX + 1];
    bool as_name = username_valid(username, ulen);
    bool as_email = ulen <= EMAIL_MAX && memchr(username, '@', ulen) &&
                    accounts_email_normalize(username, ulen, e);
    bool plausible = (as_name || as_email) && plen <= PASSWORD_MAX_BYTES;
    char name[EMAIL_MAX + 1];
    if (plausible) { /* exactly the ulen bytes that were checked */
        memcpy(name, username, ulen);
        name[ulen] = '\0';
        username = name;
        /* A username, or else an account's e-mail address. */
        enum store_rc rc =
            as_name ? store_user_by_name(app->store, username, &op->user) : STORE_NOT_FOUND;
        if (rc == STORE_NOT_FOUND && as_email)
            rc = store_user_by_email(app->store, e, &op->user);
        if (rc == STORE_OK)
            pv->found = true;
        else if (rc != STORE_NOT_FOUND) {
            set_result(op, svc_store_failure(app, rc, "login"));
            return op;
        }
    }
    /* Every attempt counts against the address (implausible ones are hashed
     * against the dummy too); plausible names have their own counter - the
     * account's, however it was named, and for an unknown one the form the
     * lookup used (an address normalized), so that " x@y" and "x@y" share a
     * counter whether or not an account has that address. */
    char unknown[RATELIMIT_UNKNOWN_LEN];
    const char *counted = !plausible  ? NULL
                          : pv->found ? op->user.username
                          : ratelimit_unknown_name(app, as_email ? e : username, unknown)
                              ? unknown
                              : NULL;
    if (plausible && !counted) {
        set_result(op, svc_fail(SVC_ERROR, NULL));
        return op;
    }
    struct svc_result r = ratelimit_login_attempt(app, ctx, counted, &pv->limit);
    if (r.status != SVC_OK) {
        set_result(op, r);
        return op;
    }
    size_t keep = plen <= PASSWORD_MAX_BYTES ? plen : PASSWORD_MAX_BYTES;
    if (!(pv->password = secret_dup(password, keep))) {
        ratelimit_login_refund(app, &pv->limit);
        set_result(op, OOM);
        return op;
    }
    pv->pwlen = keep;
    op->slow = login_slow;
    op->finish = login_finish;
    return op;
}

/* ---------------------------------------------- re-confirmed changes --- */

static void confirm_slow(struct svc_op *op)
{
    struct pw_priv *pv = op->priv;
    bool rehash_unused;
    pv->verdict = password_verify(op->user.password_hash, pv->password, pv->pwlen,
                                  &op->app->argon2, &rehash_unused);
    /* No password is longer than the cap: one that was is wrong, whatever
     * its first PASSWORD_MAX_BYTES bytes (checked all the same, for the time). */
    if (pv->too_long && pv->verdict == PASSWORD_OK)
        pv->verdict = PASSWORD_MISMATCH;
    if (pv->verdict != PASSWORD_OK || !pv->new_password)
        return;
    pv->weak = password_weakness(op->app, op->user.username, pv->new_password, pv->newlen);
    if (!pv->weak)
        hash_new_password(op);
}

/* The common verdict of a re-confirmation; false when op->res is final.
 * A wrong password counts as a failed login of the account and of the
 * address (it was a guess like any other); a right one, or one never
 * checked, gives the attempt back. */
static bool confirm_verdict(struct svc_op *op, bool ran, const char *what)
{
    struct pw_priv *pv = op->priv;
    if (!ran) {
        ratelimit_login_refund(op->app, &pv->limit);
        op->res = (struct svc_result){
            SVC_BUSY, "The server is too busy to check a password; try again shortly.", 1};
        return false;
    }
    if (pv->verdict != PASSWORD_OK) {
        ratelimit_login_failed(op->app, &pv->limit);
        AUDIT(LOG_INFO, &op->ctx, "reconfirm_failed", "refused", pv->who.sub, LF_S("for", what));
        op->res = svc_fail(SVC_WRONG_PASSWORD, "The password is wrong.");
        return false;
    }
    ratelimit_login_first_factor_ok(op->app, &pv->limit);
    return true;
}

/* A re-confirmation that will not run after all: its attempt back. */
static void confirm_abort(struct svc_op *op, struct svc_result r)
{
    struct pw_priv *pv = op->priv;
    ratelimit_login_refund(op->app, &pv->limit);
    memset(&pv->limit, 0, sizeof pv->limit);
    set_result(op, r);
}

/* Load the caller's account and copy the passwords: the start of every
 * re-confirmed change. */
static struct svc_op *confirm_start(struct app *app, const struct svc_ctx *ctx,
                                    const struct identity *who, const char *current, size_t clen,
                                    const char *new_password, size_t nlen)
{
    struct svc_op *op = svc_op_new(app, ctx);
    if (!op)
        return NULL;
    struct pw_priv *pv = priv_new(op);
    if (!pv) {
        set_result(op, OOM);
        return op;
    }
    pv->who = *who;
    enum store_rc rc = store_user_by_id(app->store, who->sub, &op->user);
    if (rc == STORE_NOT_FOUND) {
        set_result(op, svc_fail(SVC_GONE, "the user no longer exists"));
        return op;
    }
    if (rc != STORE_OK) {
        set_result(op, svc_store_failure(app, rc, "reconfirm"));
        return op;
    }
    if (new_password) {
        /* Only the cheap rules before the current password is checked; the
         * dictionary after (change_password_finish). */
        const char *weak = password_cheap_weakness(app, NULL, new_password, nlen);
        if (weak) {
            set_result(op, svc_fail(SVC_WEAK_PASSWORD, weak));
            return op;
        }
    }
    size_t ckeep = clen <= PASSWORD_MAX_BYTES ? clen : PASSWORD_MAX_BYTES;
    /* Each length set with its copy: pw_priv_wipe wipes what it says, also
     * when the second copy fails and the first is freed with the op. */
    if ((pv->password = secret_dup(current, ckeep)))
        pv->pwlen = ckeep;
    if (new_password && pv->password && (pv->new_password = secret_dup(new_password, nlen)))
        pv->newlen = nlen;
    if (!pv->password || (new_password && !pv->new_password)) {
        set_result(op, OOM);
        return op;
    }
    pv->too_long = clen > PASSWORD_MAX_BYTES;
    /* Re-confirmations are guesses like logins: the same back-off and
     * per-address limit (429 while the account is blocked). */
    struct svc_result r = ratelimit_login_attempt(app, ctx, op->user.username, &pv->limit);
    if (r.status != SVC_OK) {
        set_result(op, r);
        return op;
    }
    op->slow = confirm_slow;
    return op;
}

static void change_password_finish(struct svc_op *op, bool ran)
{
    struct pw_priv *pv = op->priv;
    struct app *app = op->app;
    if (!confirm_verdict(op, ran, "password_change"))
        return;
    if (pv->weak) {
        op->res = svc_fail(SVC_WEAK_PASSWORD, pv->weak);
        return;
    }
    if (!pv->new_hash) {
        op->res = svc_fail(SVC_ERROR, "The password could not be hashed.");
        return;
    }
    struct revocation rev = sessions_revocation_now(app);
    /* Compare-and-set with the hash the current password was checked
     * against: a reset or another change in between wins. */
    enum store_rc rc = store_user_change_password(app->store, pv->who.sub, op->user.password_hash,
                                                  pv->new_hash, pv->who.sid, &rev, &op->count);
    if (rc == STORE_NOT_FOUND) {
        struct store_user now = {0};
        enum store_rc again = store_user_by_id(app->store, pv->who.sub, &now);
        store_user_clear(&now);
        /* The stored hash changed since current_password was checked
         * against it: a reset or another change (then current_password
         * is no longer the password), or a login upgrading the same
         * password's hash - only a new check can tell, which a retry
         * makes. */
        op->res = again == STORE_OK
                      ? (struct svc_result){SVC_BUSY,
                                            "The account's password was being updated; try "
                                            "again.",
                                            1}
                  : again == STORE_NOT_FOUND ? svc_fail(SVC_GONE, "the user no longer exists")
                                             : svc_store_failure(app, again, "password_change");
        return;
    }
    if (rc != STORE_OK) {
        op->res = svc_store_failure(app, rc, "password_change");
        return;
    }
    app_sync_revocations(app);
    AUDIT(LOG_INFO, &op->ctx, "password_changed", "ok", pv->who.sub,
          LF_I("other_sessions_revoked", op->count));
}

struct svc_op *accounts_change_password(struct app *app, const struct svc_ctx *ctx,
                                        const struct identity *who, const char *current,
                                        size_t clen, const char *new_password, size_t nlen)
{
    struct svc_op *op = confirm_start(app, ctx, who, current, clen, new_password, nlen);
    if (op && op->slow)
        op->finish = change_password_finish;
    return op;
}

static void delete_self_finish(struct svc_op *op, bool ran)
{
    struct pw_priv *pv = op->priv;
    struct app *app = op->app;
    if (!confirm_verdict(op, ran, "account_deletion"))
        return;
    struct revocation rev = sessions_revocation_now(app);
    enum store_rc rc = store_user_delete(app->store, pv->who.sub, &rev);
    if (rc == STORE_NOT_FOUND) {
        op->res = svc_fail(SVC_GONE, "the user no longer exists");
        return;
    }
    if (rc != STORE_OK) {
        op->res = svc_store_failure(app, rc, "account_deletion");
        return;
    }
    app_note_revoked(app, pv->who.sid, rev.expires_ms);
    app_sync_revocations(app);
    AUDIT0(LOG_INFO, &op->ctx, "user_deleted", "ok", pv->who.sub);
}

struct svc_op *accounts_delete_self(struct app *app, const struct svc_ctx *ctx,
                                    const struct identity *who, const char *password, size_t plen)
{
    struct svc_op *op = confirm_start(app, ctx, who, password, plen, NULL, 0);
    if (op && op->slow)
        op->finish = delete_self_finish;
    return op;
}

static void change_email_finish(struct svc_op *op, bool ran)
{
    struct pw_priv *pv = op->priv;
    struct app *app = op->app;
    if (!confirm_verdict(op, ran, "email_change"))
        return;
    /* Decided on the addresses as they are now, not as read before the
     * password was hashed, and written only if they are still those
     * (compare and set): a confirmation in another tab meanwhile (a
     * pending address became the address) is never undone from a stale
     * copy; the decision is made again on what it left. */
    const char *want = pv->new_email;
    char old[EMAIL_MAX + 1];
    bool keep_old = false; /* a verified address stays until the new one is verified */
    struct store_user u;
    enum store_rc rc = STORE_NOT_FOUND;
    for (int attempt = 0; attempt < 3 && rc == STORE_NOT_FOUND; attempt++) {
        struct store_user now_u = {0};
        enum store_rc nrc = store_user_by_id(app->store, op->user.id, &now_u);
        if (nrc == STORE_NOT_FOUND) {
            op->res = svc_fail(SVC_GONE, "the user no longer exists");
            return;
        }
        if (nrc != STORE_OK) {
            op->res = svc_store_failure(app, nrc, "email_change");
            return;
        }
        /* Confirmed with a password that is no longer the account's (a
         * reset or a password change meanwhile, perhaps the owner locking
         * out whoever sent this): the confirmation is void, as a wrong
         * password's is. The write below is bound to the hash too. */
        bool stale = !now_u.password_hash || !op->user.password_hash ||
                     strcmp(now_u.password_hash, op->user.password_hash) != 0;
        if (stale) {
            store_user_clear(&now_u);
            AUDIT(LOG_INFO, &op->ctx, "reconfirm_failed", "refused", pv->who.sub,
                  LF_S("for", "email_change"), LF_S("reason", "password_changed"));
            op->res = svc_fail(SVC_WRONG_PASSWORD, "The password is wrong.");
            return;
        }
        memcpy(op->user.email, now_u.email, sizeof op->user.email);
        memcpy(op->user.email_pending, now_u.email_pending, sizeof op->user.email_pending);
        op->user.email_verified = now_u.email_verified;
        store_user_clear(&now_u);
        u = op->user;
        snprintf(old, sizeof old, "%s", u.email);
        keep_old = false;
        if (!want[0]) {
            rc = store_user_set_email_if(app->store, &u, NULL, false, NULL);
        } else if (strcmp(want, u.email) == 0) {
            /* The same address again: a pending change is called off. */
            rc = store_user_set_email_if(app->store, &u, u.email, u.email_verified, NULL);
        } else {
            bool taken = false;
            rc = identifier_taken(app, want, u.id, &taken);
            if (rc == STORE_OK && taken) {
                op->res = svc_fail(SVC_EMAIL_TAKEN, NULL);
                return;
            }
            keep_old = u.email[0] && u.email_verified;
            if (rc == STORE_OK && keep_old && !mail_configured(app)) {
                /* Nothing could ever confirm the new one. */
                op->res = svc_fail(SVC_NOT_CONFIGURED, NULL);
                return;
            }
            if (rc == STORE_OK)
                rc = keep_old ? store_user_set_email_if(app->store, &u, u.email, true, want)
                              : store_user_set_email_if(app->store, &u, want, false, NULL);
        }
    }
    if (rc == STORE_CONFLICT) {
        op->res = svc_fail(SVC_EMAIL_TAKEN, NULL);
        return;
    }
    if (rc == STORE_NOT_FOUND) {
        /* Gone, or changed three times over while this request decided. */
        struct store_user gone = {0};
        enum store_rc grc = store_user_by_id(app->store, op->user.id, &gone);
        store_user_clear(&gone);
        op->res = grc == STORE_NOT_FOUND
                      ? svc_fail(SVC_GONE, "the user no longer exists")
                      : svc_fail(SVC_CONFLICT, "The address was changed a moment ago; try again.");
        return;
    }
    if (rc != STORE_OK) {
        op->res = svc_store_failure(app, rc, "email_change");
        return;
    }
    struct store_user after = {0};
    if (store_user_by_id(app->store, u.id, &after) == STORE_OK) {
        store_user_clear(&op->user);
        op->user = after;
        store_user_clear(&op->user);
    }
    /* A reset link went to the address the account had: once that address
     * is removed or replaced, the link is void (the notice says so). */
    if (old[0] && !keep_old && strcmp(want, old) != 0)
        store_email_token_delete(app->store, u.id, EMAIL_RESET);
    AUDIT(LOG_INFO, &op->ctx, "email_changed", "ok", u.id,
          LF_S("state", !want[0] ? "removed" : keep_old ? "pending" : "replaced"));
    if (want[0] && strcmp(want, old) != 0 && mail_configured(app))
        recovery_send_verification(app, &op->ctx, &op->user, want, keep_old ? old : NULL);
    else if (!want[0] && old[0] && u.email_verified && mail_configured(app))
        recovery_send_removal_notice(app, &op->ctx, &op->user, old);
}

struct svc_op *accounts_change_email(struct app *app, const struct svc_ctx *ctx,
                                     const struct identity *who, const char *email, size_t elen,
                                     const char *password, size_t plen)
{
    char norm[EMAIL_MAX + 1] = "";
    if (email && !accounts_email_normalize(email, elen, norm)) {
        struct svc_op *op = svc_op_new(app, ctx);
        if (op)
            set_result(op, svc_fail(SVC_INVALID_EMAIL, "That is not an e-mail address."));
        return op;
    }
    if (norm[0] && mail_configured(app)) {
        /* A new address gets mail: the limits of every request that sends. */
        struct svc_result r = ratelimit_mail(app, ctx, MAIL_SUBJECT_ACCOUNT, who->sub);
        if (r.status != SVC_OK) {
            struct svc_op *op = svc_op_new(app, ctx);
            if (op)
                set_result(op, r);
            return op;
        }
    }
    struct svc_op *op = confirm_start(app, ctx, who, password, plen, NULL, 0);
    if (!op || !op->slow)
        return op;
    struct pw_priv *pv = op->priv;
    if (!(pv->new_email = strdup(norm))) {
        confirm_abort(op, OOM);
        return op;
    }
    op->finish = change_email_finish;
    return op;
}

/* A re-confirmed action of another service: `then` runs after the
 * password was checked and found right. */
struct reconfirm {
    void (*then)(struct svc_op *op);
    const char *what;
};

static void reconfirm_finish(struct svc_op *op, bool ran)
{
    struct pw_priv *pv = op->priv;
    const struct reconfirm *rc = (const struct reconfirm *)pv->new_email;
    if (!confirm_verdict(op, ran, rc->what))
        return;
    rc->then(op);
}

struct svc_op *accounts_reconfirm(struct app *app, const struct svc_ctx *ctx,
                                  const struct identity *who, const char *password, size_t plen,
                                  void (*then)(struct svc_op *op), const char *what)
{
    struct svc_op *op = confirm_start(app, ctx, who, password, plen, NULL, 0);
    if (!op || !op->slow)
        return op;
    struct pw_priv *pv = op->priv;
    struct reconfirm *rc = malloc(sizeof *rc);
    if (!rc) {
        confirm_abort(op, OOM);
        return op;
    }
    rc->then = then;
    rc->what = what;
    pv->new_email = (char *)rc; /* freed with the state */
    op->finish = reconfirm_finish;
    return op;
}

/* --------------------------------------------------------- operators --- */

static void set_password_finish(struct svc_op *op, bool ran)
{
    struct pw_priv *pv = op->priv;
    struct app *app = op->app;
    if (!ran || !pv->new_hash) {
        op->res = svc_fail(SVC_ERROR, "The password could not be hashed.");
        return;
    }
    struct revocation rev = sessions_revocation_now(app);
    enum store_rc rc =
        store_user_change_password(app->store, op->user.id, NULL, pv->new_hash, NULL, &rev,
                                   &op->count);
    if (rc == STORE_NOT_FOUND) {
        op->res = svc_fail(SVC_NOT_FOUND, "There is no such user.");
        return;
    }
    if (rc != STORE_OK) {
        op->res = svc_store_failure(app, rc, "set_password");
        return;
    }
    if (app->revoked)
        app_sync_revocations(app);
    AUDIT(LOG_INFO, &op->ctx, "password_set", "ok", op->user.id,
          LF_S("username", op->user.username), LF_I("sessions_revoked", op->count));
}

struct svc_op *accounts_set_password(struct app *app, const struct svc_ctx *ctx,
                                     const char *username, const char *password, size_t plen)
{
    struct svc_op *op = svc_op_new(app, ctx);
    if (!op)
        return NULL;
    enum store_rc rc = store_user_by_name(app->store, username, &op->user);
    if (rc == STORE_NOT_FOUND) {
        set_result(op, svc_fail(SVC_NOT_FOUND, "There is no such user."));
        return op;
    }
    if (rc != STORE_OK) {
        set_result(op, svc_store_failure(app, rc, "set_password"));
        return op;
    }
    return set_new_password(op, op->user.username, password, plen, set_password_finish);
}

struct svc_result accounts_get(struct app *app, const struct identity *who,
                               struct store_user *ret)
{
    struct store_user u = {0};
    enum store_rc rc = store_user_by_id(app->store, who->sub, &u);
    if (rc == STORE_NOT_FOUND)
        return svc_fail(SVC_GONE, "the user no longer exists");
    if (rc != STORE_OK)
        return svc_store_failure(app, rc, "user_read");
    store_user_clear(&u);
    *ret = u;
    return svc_ok();
}

struct svc_result accounts_find(struct app *app, const char *username, struct store_user *ret)
{
    if (!username_valid(username, strlen(username)))
        return svc_fail(SVC_NOT_FOUND, "There is no such user.");
    struct store_user u = {0};
    enum store_rc rc = store_user_by_name(app->store, username, &u);
    if (rc == STORE_NOT_FOUND)
        return svc_fail(SVC_NOT_FOUND, "There is no such user.");
    if (rc != STORE_OK)
        return svc_store_failure(app, rc, "user_read");
    *ret = u;
    return svc_ok();
}

struct svc_result accounts_import(struct app *app, const struct svc_ctx *ctx,
                                  const char *username, const char *hash, struct store_user *ret)
{
    if (!username_valid(username, strlen(username)))
        return svc_fail(SVC_INVALID_USERNAME,
                        "A username has 3 to 128 characters: letters, digits and . _ - @ +");
    if (!password_hash_supported(hash))
        return svc_fail(SVC_INVALID_INPUT,
                        "unsupported hash: give a bcrypt ($2a$/$2b$/$2y$) or argon2id PHC string");
    struct store_user u = {.created_at = util_now(), .password_hash = (char *)hash};
    if (!util_uuid7(u.id))
        return svc_fail(SVC_ERROR, "The server could not make an id.");
    snprintf(u.username, sizeof u.username, "%s", username);
    enum store_rc rc = store_user_create(app->store, &u);
    if (rc == STORE_CONFLICT)
        return svc_fail(SVC_USERNAME_TAKEN, "That username is already taken.");
    if (rc != STORE_OK)
        return svc_store_failure(app, rc, "import");
    AUDIT(LOG_INFO, ctx, "user_imported", "ok", u.id, LF_S("username", u.username),
          LF_S("scheme", store_hash_scheme(hash)));
    u.password_hash = NULL;
    *ret = u;
    return svc_ok();
}

struct svc_result accounts_delete(struct app *app, const struct svc_ctx *ctx,
                                  const char *username)
{
    struct store_user u = {0};
    struct svc_result r = accounts_find(app, username, &u);
    if (r.status != SVC_OK)
        return r;
    store_user_clear(&u);
    struct revocation rev = sessions_revocation_now(app);
    enum store_rc rc = store_user_delete(app->store, u.id, &rev);
    if (rc == STORE_NOT_FOUND)
        return svc_fail(SVC_NOT_FOUND, "There is no such user.");
    if (rc != STORE_OK)
        return svc_store_failure(app, rc, "delete");
    if (app->revoked)
        app_sync_revocations(app);
    AUDIT(LOG_INFO, ctx, "user_deleted", "ok", u.id, LF_S("username", u.username));
    return svc_ok();
}

struct svc_result accounts_set_disabled(struct app *app, const struct svc_ctx *ctx,
                                        const char *username, bool disabled, int *ret_revoked)
{
    struct store_user u = {0};
    struct svc_result r = accounts_find(app, username, &u);
    if (r.status != SVC_OK)
        return r;
    store_user_clear(&u);
    struct revocation rev = sessions_revocation_now(app);
    int n = 0;
    enum store_rc rc = store_user_set_disabled(app->store, u.id, disabled, &rev, &n);
    if (rc == STORE_NOT_FOUND)
        return svc_fail(SVC_NOT_FOUND, "There is no such user.");
    if (rc != STORE_OK)
        return svc_store_failure(app, rc, disabled ? "disable" : "enable");
    if (app->revoked)
        app_sync_revocations(app);
    AUDIT(LOG_INFO, ctx, disabled ? "user_disabled" : "user_enabled", "ok", u.id,
          LF_S("username", u.username), LF_I("sessions_revoked", n));
    if (ret_revoked)
        *ret_revoked = n;
    return svc_ok();
}

struct svc_result accounts_unlock(struct app *app, const struct svc_ctx *ctx,
                                  const char *username)
{
    struct store_user u = {0};
    struct svc_result r = accounts_find(app, username, &u);
    if (r.status != SVC_OK)
        return r;
    store_user_clear(&u);
    char key[USERNAME_MAX + 16];
    ratelimit_user_key(u.username, key, sizeof key);
    enum store_rc rc = store_login_reset(app->store, key);
    if (rc != STORE_OK)
        return svc_store_failure(app, rc, "unlock");
    AUDIT(LOG_INFO, ctx, "user_unlocked", "ok", u.id, LF_S("username", u.username));
    return svc_ok();
}

struct svc_result accounts_logout(struct app *app, const struct svc_ctx *ctx,
                                  const char *username, int *ret_revoked)
{
    struct store_user u = {0};
    struct svc_result r = accounts_find(app, username, &u);
    if (r.status != SVC_OK)
        return r;
    store_user_clear(&u);
    return sessions_revoke_all(app, ctx, u.id, NULL, "operator_logout", ret_revoked);
}

static void count_session(void *ctx, const struct store_session *s)
{
    (void)s;
    (*(int *)ctx)++;
}

struct svc_result accounts_info(struct app *app, const char *username, struct account_info *ret)
{
    struct account_info info = {0};
    struct svc_result r = accounts_find(app, username, &info.user);
    if (r.status != SVC_OK)
        return r;
    info.hash_scheme = store_hash_scheme(info.user.password_hash);
    store_user_clear(&info.user);
    enum store_rc rc = store_session_list(app->store, info.user.id, util_now(),
                                          app->cfg->refresh_ttl, count_session,
                                          &info.live_sessions);
    char key[USERNAME_MAX + 16];
    ratelimit_user_key(info.user.username, key, sizeof key);
    if (rc == STORE_OK)
        rc = store_login_get(app->store, key, &info.failures, &info.blocked_until_ms);
    if (rc != STORE_OK)
        return svc_store_failure(app, rc, "user_read");
    *ret = info;
    return svc_ok();
}
