/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Implementation of recovery.h.
 */
#include "core/recovery.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/crypto.h>

#include "base/log.h"
#include "core/accounts.h"
#include "core/audit.h"
#include "core/mail.h"
#include "core/mime.h"
#include "core/ratelimit.h"
#include "core/sessions.h"
#include "lib/jwtd_internal.h"

static const char *const LINK_BAD = "The link is unknown, already used or expired.";

/* A message to queue: id, kind, recipient, values (a JSON object, stolen). */
static bool make_mail(struct app *app, const char *kind, const char *user_id, const char *to,
                      json_t *params, struct store_mail *ret)
{
    struct store_mail m = {0};
    char *text = params ? json_dumps(params, JSON_COMPACT) : NULL;
    json_decref(params);
    if (!text || !util_uuid7(m.id)) {
        if (text) /* the message's secret (mail.h), as store_mail_clear */
            OPENSSL_cleanse(text, strlen(text));
        free(text);
        return false;
    }
    snprintf(m.kind, sizeof m.kind, "%s", kind);
    snprintf(m.user_id, sizeof m.user_id, "%s", user_id ? user_id : "");
    snprintf(m.to, sizeof m.to, "%s", to ? to : "");
    m.params = text;
    m.created_ms = util_now_ms();
    m.next_attempt_ms = m.created_ms;
    m.give_up_ms = m.created_ms + app->cfg->mail_give_up_ms;
    *ret = m;
    return true;
}

struct svc_result recovery_send_verification(struct app *app, const struct svc_ctx *ctx,
                                             const struct store_user *u, const char *address,
                                             const char *notify_old)
{
    struct store_mail mails[2];
    memset(mails, 0, sizeof mails);
    int n = 0;
    struct store_email_token t = {.purpose = EMAIL_VERIFY,
                                  .created_at = util_now(),
                                  .expires_at = util_now() + app->cfg->verify_ttl};
    char token[MAIL_TOKEN_LEN + 1], code[MAIL_CODE_LEN + 1], secret[64] = "";
    json_t *params = json_pack("{s:s, s:s}", "username", u->username, "email", address);
    bool ok = params && mail_secret_add(params);
    if (ok)
        snprintf(secret, sizeof secret, "%s", mail_secret_of(params));
    ok = ok && make_mail(app, MAIL_VERIFY, u->id, address, json_incref(params), &mails[n]);
    json_decref(params);
    if (ok) {
        n++;
        snprintf(t.user_id, sizeof t.user_id, "%s", u->id);
        snprintf(t.email, sizeof t.email, "%s", address);
        ok = mail_token(app, mails[0].id, secret, token) &&
             mail_token_hash(token, strlen(token), t.token_hash) &&
             mail_code(app, mails[0].id, secret, code) &&
             mail_code_hash(app, u->id, code, strlen(code), t.code_hash);
        OPENSSL_cleanse(token, sizeof token);
        OPENSSL_cleanse(code, sizeof code);
    }
    OPENSSL_cleanse(secret, sizeof secret);
    if (ok && notify_old) {
        ok = make_mail(app, MAIL_EMAIL_CHANGED, u->id, notify_old,
                       json_pack("{s:s, s:s, s:s}", "username", u->username, "email", notify_old,
                                 "new_email", address),
                       &mails[n]);
        n += ok;
    }
    enum store_rc rc = ok ? store_mail_enqueue(app->store, &t, mails, n) : STORE_ERROR;
    for (int i = 0; i < n; i++)
        store_mail_clear(&mails[i]);
    if (rc != STORE_OK)
        return svc_store_failure(app, rc, "mail_enqueue");
    mail_wake(app);
    AUDIT(LOG_INFO, ctx, "email_verification_sent", "queued", u->id,
          LF_B("notice_to_old_address", notify_old != NULL));
    return svc_ok();
}

struct svc_result recovery_send_removal_notice(struct app *app, const struct svc_ctx *ctx,
                                               const struct store_user *u, const char *address)
{
    struct store_mail m;
    memset(&m, 0, sizeof m);
    if (!make_mail(app, MAIL_EMAIL_REMOVED, u->id, address,
                   json_pack("{s:s, s:s}", "username", u->username, "email", address), &m))
        return svc_fail(SVC_ERROR, NULL);
    enum store_rc rc = store_mail_enqueue(app->store, NULL, &m, 1);
    store_mail_clear(&m);
    if (rc != STORE_OK)
        return svc_store_failure(app, rc, "mail_enqueue");
    mail_wake(app);
    AUDIT0(LOG_INFO, ctx, "email_removal_notice_sent", "queued", u->id);
    return svc_ok();
}

struct svc_result recovery_request_verification(struct app *app, const struct svc_ctx *ctx,
                                                const struct identity *who)
{
    if (!mail_configured(app))
        return svc_fail(SVC_NOT_CONFIGURED, NULL);
    struct store_user u;
    struct svc_result r = accounts_get(app, who, &u);
    if (r.status != SVC_OK)
        return r;
    const char *target = u.email_pending[0]                   ? u.email_pending
                         : u.email[0] && !u.email_verified ? u.email
                                                             : NULL;
    if (!target)
        return svc_fail(SVC_NOTHING_TO_VERIFY, u.email[0] ? "The e-mail address is verified already."
                                                          : "The account has no e-mail address.");
    if ((r = ratelimit_mail(app, ctx, MAIL_SUBJECT_ACCOUNT, u.id)).status != SVC_OK)
        return r;
    return recovery_send_verification(app, ctx, &u, target, NULL);
}

bool recovery_token_well_formed(const char *t)
{
    if (!t || !*t || strlen(t) > RECOVERY_TOKEN_MAX)
        return false;
    for (const char *c = t; *c; c++)
        if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
              *c == '-' || *c == '_'))
            return false;
    return true;
}

/* The token of a link, if it is one of the purpose, unexpired. */
static struct svc_result find_token(struct app *app, const char *token, size_t len,
                                    enum email_purpose purpose, struct store_email_token *ret)
{
    char h[SHA256_HEX_LEN];
    if (len == 0 || len > RECOVERY_TOKEN_MAX || !mail_token_hash(token, len, h))
        return svc_fail(SVC_INVALID_LINK, LINK_BAD);
    enum store_rc rc = store_email_token_by_hash(app->store, h, ret);
    if (rc == STORE_NOT_FOUND || (rc == STORE_OK && ret->purpose != purpose))
        return svc_fail(SVC_INVALID_LINK, LINK_BAD);
    if (rc != STORE_OK)
        return svc_store_failure(app, rc, "email_token");
    if (util_now() >= ret->expires_at)
        return svc_fail(SVC_INVALID_LINK, "The link has expired; ask for a new one.");
    return svc_ok();
}

static struct svc_result link_check(struct app *app, const char *token, size_t len,
                                    enum email_purpose purpose)
{
    struct store_email_token t;
    struct svc_result r = find_token(app, token, len, purpose, &t);
    if (r.status != SVC_OK)
        return r;
    struct store_user u = {0};
    enum store_rc rc = store_user_by_id(app->store, t.user_id, &u);
    bool live = rc == STORE_OK &&
                (purpose == EMAIL_RESET ? store_reset_token_live(&t, t.user_id, &u, util_now())
                                        : store_verify_token_live(&t, t.user_id, &u, util_now()));
    store_user_clear(&u);
    if (rc != STORE_OK && rc != STORE_NOT_FOUND)
        return svc_store_failure(app, rc, "email_token");
    return live ? svc_ok() : svc_fail(SVC_INVALID_LINK, LINK_BAD);
}

struct svc_result recovery_reset_link_check(struct app *app, const char *token, size_t len)
{
    return link_check(app, token, len, EMAIL_RESET);
}

struct svc_result recovery_verify_link_check(struct app *app, const char *token, size_t len)
{
    return link_check(app, token, len, EMAIL_VERIFY);
}

/* Apply a verification token (its link's, or its code's: by_code) and
 * read the account back. */
static struct svc_result confirm(struct app *app, const struct svc_ctx *ctx,
                                 const struct store_email_token *t, bool by_code,
                                 struct store_user *ret)
{
    enum store_rc rc = store_email_confirm(app->store, t, util_now());
    /* Gone meanwhile: used, replaced, or the address verified another way
     * (a reset link sent to it). A code is answered as a code. */
    if (rc == STORE_NOT_FOUND)
        return by_code ? svc_fail(SVC_INVALID_CODE, "There is no code to check; ask for a new one.")
                       : svc_fail(SVC_INVALID_LINK, LINK_BAD);
    if (rc == STORE_CONFLICT)
        return svc_fail(SVC_EMAIL_TAKEN, NULL);
    if (rc != STORE_OK)
        return svc_store_failure(app, rc, "email_confirm");
    AUDIT0(LOG_INFO, ctx, "email_verified", "ok", t->user_id);
    struct identity who;
    memset(&who, 0, sizeof who);
    snprintf(who.sub, sizeof who.sub, "%s", t->user_id);
    return accounts_get(app, &who, ret);
}

struct svc_result recovery_confirm_link(struct app *app, const struct svc_ctx *ctx,
                                        const char *token, size_t len, struct store_user *ret)
{
    struct store_email_token t;
    struct svc_result r = find_token(app, token, len, EMAIL_VERIFY, &t);
    if (r.status != SVC_OK)
        return r;
    return confirm(app, ctx, &t, false, ret);
}

/* Codes of one account tried in a day, at most: each code has its own
 * JWTD_CODE_ATTEMPTS, and new codes come by asking for them (the mail
 * limits), so without this a guesser asking again and again gets
 * JWTD_MAIL_ACCOUNT_RATE x JWTD_CODE_ATTEMPTS tries per window (3,600 a
 * day by default: one six-digit code in 280). */
#define CODE_DAY_FACTOR 4
#define CODE_DAY_SECONDS 86400

/* Count one try of a code of the account against the day's allowance,
 * atomically (counted before the code is compared, like each code's own
 * tries). SVC_OK while within it. Kept in the shared ephemeral table, so
 * that every instance counts the same tries; a day after the first try
 * the count starts over. */
static struct svc_result code_day_try(struct app *app, const char *user_id)
{
    struct store_ephemeral e;
    memset(&e, 0, sizeof e);
    snprintf(e.key, sizeof e.key, "code_tries:%s", user_id);
    int tries = 0;
    enum store_rc rc = store_ephemeral_get(app->store, e.key, &e);
    bool live = rc == STORE_OK && e.expires_at > util_now();
    store_ephemeral_clear(&e);
    if (rc != STORE_OK && rc != STORE_NOT_FOUND)
        return svc_store_failure(app, rc, "email_token");
    if (live)
        rc = store_ephemeral_attempt(app->store, e.key, &tries);
    if (!live || rc == STORE_NOT_FOUND) {
        snprintf(e.kind, sizeof e.kind, "code_tries");
        snprintf(e.user_id, sizeof e.user_id, "%s", user_id);
        e.value = "{}";
        e.attempts = tries = 1;
        e.expires_at = util_now() + CODE_DAY_SECONDS;
        rc = store_ephemeral_put(app->store, &e);
        e.value = NULL;
    }
    if (rc != STORE_OK)
        return svc_store_failure(app, rc, "email_token");
    if (tries > CODE_DAY_FACTOR * (int)app->cfg->code_attempts)
        return svc_fail(SVC_INVALID_CODE, "Too many codes were tried today; open the link in the "
                                          "message instead, or try again tomorrow.");
    return svc_ok();
}

struct svc_result recovery_confirm_code(struct app *app, const struct svc_ctx *ctx,
                                        const struct identity *who, const char *code, size_t len,
                                        struct store_user *ret)
{
    struct store_email_token t;
    enum store_rc rc = store_email_token_by_user(app->store, who->sub, EMAIL_VERIFY, &t);
    if (rc == STORE_NOT_FOUND)
        return svc_fail(SVC_INVALID_CODE, "There is no code to check; ask for a new one.");
    if (rc != STORE_OK)
        return svc_store_failure(app, rc, "email_token");
    if (util_now() >= t.expires_at)
        return svc_fail(SVC_INVALID_CODE, "The code has expired; ask for a new one.");
    struct svc_result day = code_day_try(app, who->sub);
    if (day.status != SVC_OK) {
        AUDIT(LOG_INFO, ctx, "email_code_wrong", "refused", who->sub, LF_S("reason", "day_limit"));
        return day;
    }
    /* The try is counted before the code is compared, in one atomic step:
     * parallel guesses cannot get more than code_attempts compared. */
    int attempts = 0;
    rc = store_email_token_attempt(app->store, who->sub, EMAIL_VERIFY, &attempts);
    if (rc == STORE_NOT_FOUND) /* used or replaced a moment ago */
        return svc_fail(SVC_INVALID_CODE, "There is no code to check; ask for a new one.");
    if (rc != STORE_OK)
        return svc_store_failure(app, rc, "email_token");
    if (attempts > (int)app->cfg->code_attempts)
        return svc_fail(SVC_INVALID_CODE, "Too many wrong codes; ask for a new one.");
    char h[SHA256_HEX_LEN];
    bool digits = len == MAIL_CODE_LEN;
    for (size_t i = 0; digits && i < len; i++)
        digits = code[i] >= '0' && code[i] <= '9';
    if (digits && mail_code_hash(app, who->sub, code, len, h) && t.code_hash[0] &&
        CRYPTO_memcmp(h, t.code_hash, SHA256_HEX_LEN - 1) == 0)
        return confirm(app, ctx, &t, true, ret);
    AUDIT(LOG_INFO, ctx, "email_code_wrong", "refused", who->sub, LF_I("attempts", attempts));
    if (attempts >= (int)app->cfg->code_attempts) {
        store_email_token_delete(app->store, who->sub, EMAIL_VERIFY);
        return svc_fail(SVC_INVALID_CODE, "The code is wrong, and no tries are left; ask for a "
                                          "new one.");
    }
    return svc_fail(SVC_INVALID_CODE, "The code is wrong.");
}

struct svc_result recovery_forgot(struct app *app, const struct svc_ctx *ctx,
                                  const char *identifier, size_t len)
{
    if (!mail_configured(app))
        return svc_fail(SVC_NOT_CONFIGURED, NULL);
    char ident[EMAIL_MAX + 1];
    /* A form's value may be any bytes (a JSON body is UTF-8 already). */
    if (len == 0 || len > EMAIL_MAX || memchr(identifier, '\0', len) ||
        !mime_utf8_valid(identifier, len))
        return svc_fail(SVC_INVALID_INPUT, "Give the account's e-mail address or username.");
    /* Addresses in the form they are kept in; names as typed (the worker
     * looks them up case-insensitively). */
    if (!memchr(identifier, '@', len) || !accounts_email_normalize(identifier, len, ident)) {
        memcpy(ident, identifier, len);
        ident[len] = '\0';
    }
    struct svc_result r = ratelimit_mail(app, ctx, MAIL_SUBJECT_IDENTIFIER, ident);
    if (r.status != SVC_OK)
        return r;
    /* The same single write for any identifier: no lookup here, so neither
     * the answer nor its timing says whether the account exists. */
    struct store_mail m;
    json_t *params = json_pack("{s:s}", "identifier", ident);
    if (params && !mail_secret_add(params)) {
        json_decref(params);
        params = NULL;
    }
    if (!params || !make_mail(app, MAIL_FORGOT, NULL, NULL, params, &m))
        return svc_fail(SVC_ERROR, NULL);
    enum store_rc rc = store_outbox_insert(app->store, &m);
    store_mail_clear(&m);
    if (rc != STORE_OK)
        return svc_store_failure(app, rc, "mail_enqueue");
    mail_wake(app);
    AUDIT(LOG_INFO, ctx, "password_forgot", "queued", NULL, LF_S("mail_id", m.id));
    return svc_ok();
}

/* ------------------------------------------------------------- reset --- */

struct reset_priv {
    struct store_email_token t;
    char *password;
    size_t pwlen;
    char *hash;
};

static void reset_priv_free(void *p)
{
    struct reset_priv *rp = p;
    if (!rp)
        return;
    if (rp->password) {
        OPENSSL_cleanse(rp->password, rp->pwlen);
        free(rp->password);
    }
    password_hash_free(rp->hash);
    free(rp);
}

static void reset_slow(struct svc_op *op)
{
    struct reset_priv *rp = op->priv;
    if (password_hash(&op->app->argon2, rp->password, rp->pwlen, &rp->hash) != PASSWORD_OK)
        rp->hash = NULL;
    /* Hashed: the password goes now, not when the answer has left. */
    OPENSSL_cleanse(rp->password, rp->pwlen);
    free(rp->password);
    rp->password = NULL;
}

static void reset_finish(struct svc_op *op, bool ran)
{
    struct reset_priv *rp = op->priv;
    struct app *app = op->app;
    if (!ran) {
        op->res = (struct svc_result){SVC_BUSY,
                                      "The server is too busy to hash a password; try again shortly.", 1};
        return;
    }
    if (!rp->hash) {
        op->res = svc_fail(SVC_ERROR, "The password could not be hashed.");
        return;
    }
    struct revocation rev = sessions_revocation_now(app);
    struct store_user u = {0};
    enum store_rc rc = store_password_reset(app->store, &rp->t, rp->hash, &rev, &op->count, &u);
    if (rc == STORE_NOT_FOUND) {
        op->res = svc_fail(SVC_INVALID_LINK, LINK_BAD);
        return;
    }
    if (rc != STORE_OK) {
        op->res = svc_store_failure(app, rc, "password_reset");
        return;
    }
    op->user = u;
    if (app->revoked)
        app_sync_revocations(app);
    AUDIT(LOG_INFO, &op->ctx, "password_reset", "ok", u.id, LF_I("sessions_revoked", op->count));
}

struct svc_op *recovery_reset(struct app *app, const struct svc_ctx *ctx, const char *token,
                              size_t tlen, const char *password, size_t plen)
{
    struct svc_op *op = svc_op_new(app, ctx);
    if (!op)
        return NULL;
    struct reset_priv *rp = calloc(1, sizeof *rp);
    if (!rp) {
        op->res = svc_fail(SVC_ERROR, "The server ran out of memory.");
        return op;
    }
    op->priv = rp;
    op->priv_free = reset_priv_free;
    op->res = find_token(app, token, tlen, EMAIL_RESET, &rp->t);
    if (op->res.status != SVC_OK) {
        AUDIT(LOG_INFO, ctx, "password_reset", "refused", NULL, LF_S("reason", "bad link"));
        return op;
    }
    struct identity who;
    memset(&who, 0, sizeof who);
    snprintf(who.sub, sizeof who.sub, "%s", rp->t.user_id);
    struct store_user u;
    if ((op->res = accounts_get(app, &who, &u)).status != SVC_OK) {
        if (op->res.status == SVC_GONE)
            op->res = svc_fail(SVC_INVALID_LINK, LINK_BAD);
        return op;
    }
    const char *weak = password_policy_check(app->policy, u.username, password, plen);
    if (weak) {
        op->res = svc_fail(SVC_WEAK_PASSWORD, weak);
        return op;
    }
    if (!(rp->password = malloc(plen + 1))) {
        op->res = svc_fail(SVC_ERROR, "The server ran out of memory.");
        return op;
    }
    memcpy(rp->password, password, plen);
    rp->password[plen] = '\0';
    rp->pwlen = plen;
    op->slow = reset_slow;
    op->finish = reset_finish;
    return op;
}

struct svc_result recovery_reset_link(struct app *app, const struct svc_ctx *ctx,
                                      const char *username, char *out, size_t cap)
{
    /* The link opens jwtd's reset page: with the pages off it would be a
     * 404 in the person's hands. */
    if (!app->cfg->pages)
        return svc_fail(SVC_NOT_CONFIGURED,
                        "The link opens jwtd's reset page, and the pages are off (JWTD_PAGES=off): "
                        "turn them on, or set the password with jwtd user passwd.");
    struct store_user u;
    struct svc_result r = accounts_find(app, username, &u);
    if (r.status != SVC_OK)
        return r;
    store_user_clear(&u);
    uint8_t raw[32];
    char token[MAIL_TOKEN_LEN + 1];
    struct store_email_token t = {.purpose = EMAIL_RESET,
                                  .created_at = util_now(),
                                  .expires_at = util_now() + app->cfg->reset_ttl};
    snprintf(t.user_id, sizeof t.user_id, "%s", u.id);
    /* No address: this link is handed over by an operator, not mailed, so
     * it proves no address and does not depend on one. */
    bool ok = util_random(raw, sizeof raw) &&
              jwtd__b64url_encode(raw, sizeof raw, token, sizeof token) == MAIL_TOKEN_LEN &&
              mail_token_hash(token, MAIL_TOKEN_LEN, t.token_hash);
    OPENSSL_cleanse(raw, sizeof raw);
    enum store_rc rc = ok ? store_mail_enqueue(app->store, &t, NULL, 0) : STORE_ERROR;
    if (rc == STORE_OK)
        mail_link(app, "/reset-password", token, out, cap);
    OPENSSL_cleanse(token, sizeof token);
    if (rc != STORE_OK)
        return svc_store_failure(app, rc, "reset_link");
    AUDIT(LOG_INFO, ctx, "reset_link_made", "ok", u.id, LF_S("username", u.username));
    return svc_ok();
}
