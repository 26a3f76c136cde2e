/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Account endpoints: signup, login, refresh, logout, /auth/me (read and
 * delete), password change. Password work (policy dictionary check,
 * argon2id, bcrypt) always runs on the hashing pool with the connection
 * suspended; the handlers here parse, call core and storage, and answer.
 * Log lines name users by id (and usernames only of existing accounts):
 * a mistyped password in the username field must not reach a log.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "api/handlers.h"
#include "api/common.h"
#include "core/log.h"
#include "core/password.h"
#include "core/tokens.h"
#include "http/cookie.h"
#include "http/cors.h"

/* ---------------------------------------------------------- helpers --- */

json_t *user_json(const struct store_user *u)
{
    char created[RFC3339_LEN];
    util_rfc3339(u->created_at, created);
    return json_pack("{s:s, s:s, s:s}", "id", u->id, "username", u->username, "created_at",
                     created);
}

char *secret_dup(const char *s, size_t n)
{
    char *d = malloc(n + 1);
    if (d) {
        memcpy(d, s, n);
        d[n] = '\0';
    }
    return d;
}

void secret_free(char *s, size_t n)
{
    if (s) {
        OPENSSL_cleanse(s, n);
        free(s);
    }
}

static void respond_weak_password(struct request *r, const char *why)
{
    char msg[160];
    snprintf(msg, sizeof msg, "The password is too weak: %s.", why);
    respond_error(r, 422, "weak_password", msg);
}

/* Parse the optional "delivery" member: "body" (default) or "cookie".
 * Answers 400 and returns false when it is something else. */
static bool parse_delivery(struct request *r, json_t *body, bool *ret_cookie)
{
    const char *d = NULL;
    if (!json_field_string(r, body, "delivery", false, &d, NULL))
        return false;
    if (!d || strcmp(d, "body") == 0) {
        *ret_cookie = false;
        return true;
    }
    if (strcmp(d, "cookie") == 0) {
        *ret_cookie = true;
        return true;
    }
    respond_error(r, 400, "invalid_request", "The field 'delivery' must be \"body\" or \"cookie\".");
    return false;
}

/* Answer 200 with a token pair for (user, session, generation). */
static void respond_tokens(struct request *r, const struct store_user *u, const char *sid,
                           uint32_t gen, bool cookie, int64_t now)
{
    struct app *app = r->app;
    char *access = NULL;
    char refresh[REFRESH_TOKEN_LEN + 1];
    if (access_token_issue(app->keys, app->cfg, u->id, u->username, sid, now, &access) != JWTD_OK ||
        !refresh_token_make(app->refresh_key, sid, gen, refresh)) {
        free(access);
        LOGE(LOG_ERROR, "token_issue_failed", "user_id", u->id);
        respond_error(r, 500, "internal_error", "The server could not sign a token.");
        return;
    }
    json_t *body;
    if (cookie) {
        if (!cookie_set_tokens(r, access, app->cfg->access_ttl, refresh, app->cfg->refresh_ttl)) {
            free(access);
            respond_error(r, 500, "internal_error", "The server ran out of memory.");
            return;
        }
        body = json_pack("{s:s, s:I, s:o}", "token_type", "Bearer", "expires_in",
                         (json_int_t)app->cfg->access_ttl, "user", user_json(u));
    } else {
        body = json_pack("{s:s, s:s, s:I, s:s, s:o}", "access_token", access, "token_type",
                         "Bearer", "expires_in", (json_int_t)app->cfg->access_ttl,
                         "refresh_token", refresh, "user", user_json(u));
    }
    OPENSSL_cleanse(access, strlen(access));
    free(access);
    OPENSSL_cleanse(refresh, sizeof refresh);
    respond_json(r, 200, body);
}

/* ----------------------------------------------------------- signup --- */

struct signup_state {
    char username[USERNAME_MAX + 1];
    char *password;
    size_t pwlen;
    const char *weak; /* policy verdict */
    char *hash;
};

static void signup_state_free(void *p)
{
    struct signup_state *st = p;
    secret_free(st->password, st->pwlen);
    password_hash_free(st->hash);
    free(st);
}

static void signup_run(struct hash_job *job)
{
    struct request *r = request_of_job(job);
    struct signup_state *st = r->hs;
    st->weak = password_policy_check(r->app->policy, st->username, st->password, st->pwlen);
    if (!st->weak && password_hash(&r->app->argon2, st->password, st->pwlen, &st->hash) != PASSWORD_OK)
        st->hash = NULL;
}

static void signup_resume(struct request *r)
{
    struct signup_state *st = r->hs;
    if (!r->job_ran) {
        respond_busy(r, "The server is too busy to hash a password; try again shortly.");
        return;
    }
    if (st->weak) {
        respond_weak_password(r, st->weak);
        return;
    }
    if (!st->hash) {
        respond_error(r, 500, "internal_error", "The password could not be hashed.");
        return;
    }
    struct store_user u = {.created_at = util_now(), .password_hash = st->hash};
    if (!util_uuid7(u.id)) {
        respond_error(r, 500, "internal_error", "The server could not make an id.");
        return;
    }
    snprintf(u.username, sizeof u.username, "%s", st->username);
    enum store_rc rc = STORE_CALL(r->app->store, user_create, &u);
    if (rc == STORE_CONFLICT) {
        respond_error(r, 409, "username_taken", "That username is already taken.");
        return;
    }
    if (rc != STORE_OK) {
        respond_store_error(r, rc);
        return;
    }
    metrics_inc(&r->app->metrics.signups_ok);
    LOGE(LOG_INFO, "signup", "user_id", u.id, "username", u.username, "addr",
         request_client_addr(r));
    respond_json(r, 201, json_pack("{s:o}", "user", user_json(&u)));
}

void api_signup(struct request *r)
{
    struct app *app = r->app;
    if (!app->cfg->signup_open) {
        respond_error(r, 403, "signup_disabled", "Signing up is disabled on this server.");
        return;
    }
    json_t *body = request_json(r, true);
    if (!body)
        return;
    const char *username, *password;
    size_t ulen, plen;
    if (!json_field_string(r, body, "username", true, &username, &ulen) ||
        !json_field_string(r, body, "password", true, &password, &plen))
        goto out;
    if (!username_valid(username, ulen)) {
        respond_error(r, 422, "invalid_username",
                      "A username has 3 to 128 characters: letters, digits and . _ - @ +");
        goto out;
    }
    /* The cheap rules now; the dictionary check runs with the hash. */
    if (plen < PASSWORD_MIN_BYTES || plen > PASSWORD_MAX_BYTES ||
        (plen == ulen && util_ascii_ieq(username, password))) {
        respond_weak_password(r, password_policy_check(app->policy, username, password, plen));
        goto out;
    }
    if (!ratelimit_signup(r))
        goto out;
    /* A taken name is known without hashing anything. */
    struct store_user existing = {0};
    enum store_rc rc = STORE_CALL(app->store, user_by_name, username, &existing);
    store_user_clear(&existing);
    if (rc == STORE_OK) {
        respond_error(r, 409, "username_taken", "That username is already taken.");
        goto out;
    }
    if (rc != STORE_NOT_FOUND) {
        respond_store_error(r, rc);
        goto out;
    }
    struct signup_state *st = calloc(1, sizeof *st);
    if (!st || !(st->password = secret_dup(password, plen))) {
        free(st);
        respond_error(r, 500, "internal_error", "The server ran out of memory.");
        goto out;
    }
    st->pwlen = plen;
    memcpy(st->username, username, ulen + 1);
    r->hs = st;
    r->hs_free = signup_state_free;
    request_run_job(r, signup_run, signup_resume);
out:
    json_decref(body);
}

/* ------------------------------------------------------------ login --- */

struct login_state {
    struct store_user user; /* hash present when found */
    bool found;
    char *password;
    size_t pwlen;
    bool cookie;
    char ratekey[USERNAME_MAX + 8];
    enum password_rc verdict;
    bool needs_rehash;
    char *new_hash;
};

static void login_state_free(void *p)
{
    struct login_state *st = p;
    store_user_clear(&st->user);
    secret_free(st->password, st->pwlen);
    password_hash_free(st->new_hash);
    free(st);
}

static void login_run(struct hash_job *job)
{
    struct request *r = request_of_job(job);
    struct login_state *st = r->hs;
    struct app *app = r->app;
    /* Unknown users verify against a dummy hash of the same cost, so the
     * answer takes as long either way. */
    const char *hash = st->found ? st->user.password_hash : app->dummy_hash;
    st->needs_rehash = false;
    st->verdict = password_verify(hash, st->password, st->pwlen, &app->argon2, &st->needs_rehash);
    if (!st->found && st->verdict == PASSWORD_OK)
        st->verdict = PASSWORD_MISMATCH;
    if (st->verdict == PASSWORD_OK && st->needs_rehash &&
        password_hash(&app->argon2, st->password, st->pwlen, &st->new_hash) != PASSWORD_OK)
        st->new_hash = NULL;
}

static void login_resume(struct request *r)
{
    struct login_state *st = r->hs;
    struct app *app = r->app;
    if (!r->job_ran) {
        ratelimit_login_refund(r, st->ratekey);
        metrics_inc(&app->metrics.logins[LOGIN_BUSY]);
        respond_busy(r, "The server is too busy to check a password; try again shortly.");
        return;
    }
    if (st->verdict == PASSWORD_ERROR && st->found) {
        LOGE(LOG_ERROR, "password_hash_unusable", "user_id", st->user.id);
    }
    if (st->verdict != PASSWORD_OK) {
        metrics_inc(&app->metrics.logins[LOGIN_FAILED]);
        LOGE(LOG_INFO, "login_failed", "user_id", st->found ? st->user.id : "", "user_known",
             st->found ? "yes" : "no", "addr", request_client_addr(r));
        respond_error(r, 401, "invalid_credentials", "The username or password is wrong.");
        return;
    }
    ratelimit_login_succeeded(r, st->ratekey);
    if (st->new_hash) {
        /* Compare-and-set: a password change in the meantime wins. */
        enum store_rc rc =
            STORE_CALL(app->store, user_set_hash, st->user.id, st->user.password_hash, st->new_hash);
        if (rc == STORE_OK)
            LOGE(LOG_INFO, "password_rehashed", "user_id", st->user.id, "scheme", "argon2id");
    }
    int64_t now = util_now();
    struct store_session s = {
        .created_at = now,
        .last_used_at = now,
        .expires_at = now + app->cfg->refresh_absolute_ttl,
        .refresh_gen = 0,
        .rotated_at_ms = util_now_ms(),
    };
    if (!util_uuid7(s.id)) {
        respond_error(r, 500, "internal_error", "The server could not make an id.");
        return;
    }
    memcpy(s.user_id, st->user.id, sizeof s.user_id);
    request_user_agent(r, s.user_agent, sizeof s.user_agent);
    snprintf(s.client_addr, sizeof s.client_addr, "%s", request_client_addr(r));
    enum store_rc rc = STORE_CALL(app->store, session_create, &s);
    if (rc == STORE_NOT_FOUND) {
        /* Deleted while we checked the password. */
        metrics_inc(&app->metrics.logins[LOGIN_FAILED]);
        respond_error(r, 401, "invalid_credentials", "The username or password is wrong.");
        return;
    }
    if (rc != STORE_OK) {
        respond_store_error(r, rc);
        return;
    }
    metrics_inc(&app->metrics.logins[LOGIN_OK]);
    LOGE(LOG_INFO, "login", "user_id", st->user.id, "sid", s.id, "addr", s.client_addr, "delivery",
         st->cookie ? "cookie" : "body");
    respond_tokens(r, &st->user, s.id, 0, st->cookie, now);
}

void api_login(struct request *r)
{
    struct app *app = r->app;
    json_t *body = request_json(r, true);
    if (!body)
        return;
    const char *username, *password;
    size_t ulen, plen;
    bool cookie = false;
    if (!json_field_string(r, body, "username", true, &username, &ulen) ||
        !json_field_string(r, body, "password", true, &password, &plen) ||
        !parse_delivery(r, body, &cookie))
        goto out;
    struct login_state *st = calloc(1, sizeof *st);
    if (!st) {
        respond_error(r, 500, "internal_error", "The server ran out of memory.");
        goto out;
    }
    r->hs = st;
    r->hs_free = login_state_free;
    st->cookie = cookie;
    /* Names that could not exist and oversized passwords are refused like
     * any wrong password (same body), after the same work. */
    bool plausible = username_valid(username, ulen) && plen <= PASSWORD_MAX_BYTES;
    /* Every attempt counts against the address (implausible ones are hashed
     * against the dummy too); only plausible names have their own counter. */
    if (!ratelimit_login_attempt(r, plausible ? username : NULL, st->ratekey, sizeof st->ratekey))
        goto out;
    if (plausible) {
        enum store_rc rc = STORE_CALL(app->store, user_by_name, username, &st->user);
        if (rc == STORE_OK)
            st->found = true;
        else if (rc != STORE_NOT_FOUND) {
            ratelimit_login_refund(r, st->ratekey);
            respond_store_error(r, rc);
            goto out;
        }
    }
    size_t keep = plen <= PASSWORD_MAX_BYTES ? plen : PASSWORD_MAX_BYTES;
    if (!(st->password = secret_dup(password, keep))) {
        ratelimit_login_refund(r, st->ratekey);
        respond_error(r, 500, "internal_error", "The server ran out of memory.");
        goto out;
    }
    st->pwlen = keep;
    if (!request_run_job(r, login_run, login_resume)) {
        ratelimit_login_refund(r, st->ratekey);
        metrics_inc(&app->metrics.logins[LOGIN_BUSY]);
    }
out:
    json_decref(body);
}

/* ---------------------------------------------------------- refresh --- */

static const char *refresh_reason(enum refresh_outcome o)
{
    switch (o) {
    case REFRESH_UNKNOWN: return "The refresh token is unknown.";
    case REFRESH_EXPIRED: return "The refresh token has expired.";
    case REFRESH_REVOKED: return "The refresh token was revoked (the session has ended).";
    case REFRESH_REUSED:
        return "The refresh token was already used; the session has been revoked.";
    default: return "The refresh token was refused.";
    }
}

void api_refresh(struct request *r)
{
    struct app *app = r->app;
    json_t *body = request_json(r, false);
    if (!body)
        return;
    const char *tok = NULL;
    size_t len = 0;
    bool cookie = false;
    if (!json_field_string(r, body, "refresh_token", false, &tok, &len) ||
        !parse_delivery(r, body, &cookie))
        goto out;
    if (!tok) {
        tok = cookie_get(r, COOKIE_REFRESH, &len);
        if (tok) {
            cookie = true; /* came as a cookie: goes back as a cookie */
            if (!csrf_check(r))
                goto out;
        }
    }
    if (!tok) {
        respond_error(r, 400, "invalid_request",
                      "The field 'refresh_token' (or the refresh cookie) is required.");
        goto out;
    }
    if (!ratelimit_refresh(r))
        goto out;
    char sid[UUID_STR_LEN];
    uint32_t gen;
    if (!refresh_token_parse(app->refresh_key, tok, len, sid, &gen)) {
        metrics_inc(&app->metrics.refresh[RR_INVALID]);
        respond_error(r, 401, "invalid_grant", refresh_reason(REFRESH_UNKNOWN));
        goto out;
    }
    struct refresh_policy p = {
        .now_ms = util_now_ms(),
        .idle_ttl = app->cfg->refresh_ttl,
        .reuse_interval_ms = app->cfg->refresh_reuse_interval * 1000,
        .rev = app_revocation_now(app),
    };
    enum refresh_outcome out = REFRESH_UNKNOWN;
    struct store_session s;
    struct store_user u;
    enum store_rc rc = STORE_CALL(app->store, refresh, sid, gen, &p, &out, &s, &u);
    if (rc != STORE_OK) {
        respond_store_error(r, rc);
        goto out;
    }
    static const enum refresh_result metric_of[] = {
        [REFRESH_ROTATED] = RR_ROTATED, [REFRESH_REPLAYED] = RR_REPLAYED,
        [REFRESH_UNKNOWN] = RR_UNKNOWN, [REFRESH_EXPIRED] = RR_EXPIRED,
        [REFRESH_REVOKED] = RR_REVOKED, [REFRESH_REUSED] = RR_REUSED};
    metrics_inc(&app->metrics.refresh[metric_of[out]]);
    switch (out) {
    case REFRESH_ROTATED:
    case REFRESH_REPLAYED:
        LOGE(LOG_INFO, "refresh", "user_id", u.id, "sid", sid, "outcome",
             out == REFRESH_ROTATED ? "rotated" : "replayed_within_reuse_interval");
        respond_tokens(r, &u, sid, s.refresh_gen, cookie, p.now_ms / 1000);
        break;
    case REFRESH_REUSED:
        app_note_revoked(app, sid, p.rev.expires_ms);
        LOGE(LOG_WARN, "refresh_token_reuse", "sid", sid, "addr", request_client_addr(r),
             "action", "session_revoked");
        respond_error(r, 401, "invalid_grant", refresh_reason(out));
        break;
    default:
        respond_error(r, 401, "invalid_grant", refresh_reason(out));
        break;
    }
out:
    json_decref(body);
}

/* ----------------------------------------------------------- logout --- */

void api_logout(struct request *r)
{
    struct app *app = r->app;
    struct identity id;
    if (!request_authenticate(r, &id))
        return;
    json_t *body = request_json(r, false);
    if (!body)
        return;
    const char *scope = NULL;
    if (!json_field_string(r, body, "scope", false, &scope, NULL))
        goto out;
    bool all = false;
    if (scope && strcmp(scope, "all") == 0)
        all = true;
    else if (scope && strcmp(scope, "session") != 0) {
        respond_error(r, 400, "invalid_request", "The field 'scope' must be \"session\" or \"all\".");
        goto out;
    }
    struct revocation rev = app_revocation_now(app);
    enum store_rc rc;
    if (all)
        rc = STORE_CALL(app->store, session_revoke_user, id.sub, NULL, "logout_all", &rev, NULL);
    else
        rc = STORE_CALL(app->store, session_revoke, id.sub, id.sid, "logout", &rev);
    if (rc != STORE_OK && rc != STORE_NOT_FOUND) {
        respond_store_error(r, rc);
        goto out;
    }
    app_note_revoked(app, id.sid, rev.expires_ms);
    if (all)
        app_sync_revocations(app);
    LOGE(LOG_INFO, "logout", "user_id", id.sub, "sid", id.sid, "scope", all ? "all" : "session");
    cookie_clear_tokens(r);
    respond_empty(r, 204);
out:
    json_decref(body);
}

/* --------------------------------------------------------------- me --- */

void api_me(struct request *r)
{
    struct identity id;
    if (!request_authenticate(r, &id))
        return;
    struct store_user u = {0};
    enum store_rc rc = STORE_CALL(r->app->store, user_by_id, id.sub, &u);
    if (rc == STORE_NOT_FOUND) {
        respond_unauthorized(r, "the user no longer exists");
        return;
    }
    if (rc != STORE_OK) {
        respond_store_error(r, rc);
        return;
    }
    respond_json(r, 200, json_pack("{s:o}", "user", user_json(&u)));
    store_user_clear(&u);
}

/* Re-confirmation of a password for a sensitive action (delete, change). */
struct confirm_state {
    struct identity id;
    struct store_user user;
    char *password;     /* the current password given */
    size_t pwlen;
    char *new_password; /* password change only */
    size_t newlen;
    enum password_rc verdict;
    const char *weak;
    char *new_hash;
};

static void confirm_state_free(void *p)
{
    struct confirm_state *st = p;
    store_user_clear(&st->user);
    secret_free(st->password, st->pwlen);
    secret_free(st->new_password, st->newlen);
    password_hash_free(st->new_hash);
    free(st);
}

static void confirm_run(struct hash_job *job)
{
    struct request *r = request_of_job(job);
    struct confirm_state *st = r->hs;
    bool rehash_unused;
    st->verdict = password_verify(st->user.password_hash, st->password, st->pwlen, &r->app->argon2,
                                  &rehash_unused);
    if (st->verdict != PASSWORD_OK || !st->new_password)
        return;
    st->weak = password_policy_check(r->app->policy, st->user.username, st->new_password,
                                     st->newlen);
    if (!st->weak &&
        password_hash(&r->app->argon2, st->new_password, st->newlen, &st->new_hash) != PASSWORD_OK)
        st->new_hash = NULL;
}

/* Common start of DELETE /auth/me and POST /auth/password: authenticate,
 * load the user, copy the passwords, and run the check on the pool. */
static void confirm_start(struct request *r, const char *current_field, const char *new_field,
                          resume_fn on_resume)
{
    struct identity id;
    if (!request_authenticate(r, &id))
        return;
    json_t *body = request_json(r, true);
    if (!body)
        return;
    const char *cur, *nw = NULL;
    size_t clen, nlen = 0;
    if (!json_field_string(r, body, current_field, true, &cur, &clen) ||
        (new_field && !json_field_string(r, body, new_field, true, &nw, &nlen)))
        goto out;
    if (nw && (nlen < PASSWORD_MIN_BYTES || nlen > PASSWORD_MAX_BYTES)) {
        respond_weak_password(r, password_policy_check(r->app->policy, NULL, nw, nlen));
        goto out;
    }
    struct confirm_state *st = calloc(1, sizeof *st);
    if (!st) {
        respond_error(r, 500, "internal_error", "The server ran out of memory.");
        goto out;
    }
    r->hs = st;
    r->hs_free = confirm_state_free;
    st->id = id;
    enum store_rc rc = STORE_CALL(r->app->store, user_by_id, id.sub, &st->user);
    if (rc == STORE_NOT_FOUND) {
        respond_unauthorized(r, "the user no longer exists");
        goto out;
    }
    if (rc != STORE_OK) {
        respond_store_error(r, rc);
        goto out;
    }
    size_t ckeep = clen <= PASSWORD_MAX_BYTES ? clen : PASSWORD_MAX_BYTES;
    if (!(st->password = secret_dup(cur, ckeep)) ||
        (nw && !(st->new_password = secret_dup(nw, nlen)))) {
        respond_error(r, 500, "internal_error", "The server ran out of memory.");
        goto out;
    }
    st->pwlen = ckeep;
    st->newlen = nlen;
    request_run_job(r, confirm_run, on_resume);
out:
    json_decref(body);
}

static bool confirm_verdict(struct request *r, struct confirm_state *st)
{
    if (!r->job_ran) {
        respond_busy(r, "The server is too busy to check a password; try again shortly.");
        return false;
    }
    if (st->verdict != PASSWORD_OK) {
        LOGE(LOG_INFO, "reconfirm_failed", "user_id", st->id.sub, "route", route_name(r->route));
        respond_error(r, 403, "invalid_credentials", "The password is wrong.");
        return false;
    }
    return true;
}

static void me_delete_resume(struct request *r)
{
    struct confirm_state *st = r->hs;
    struct app *app = r->app;
    if (!confirm_verdict(r, st))
        return;
    struct revocation rev = app_revocation_now(app);
    enum store_rc rc = STORE_CALL(app->store, user_delete, st->id.sub, &rev);
    if (rc == STORE_NOT_FOUND) {
        respond_unauthorized(r, "the user no longer exists");
        return;
    }
    if (rc != STORE_OK) {
        respond_store_error(r, rc);
        return;
    }
    app_note_revoked(app, st->id.sid, rev.expires_ms);
    app_sync_revocations(app);
    LOGE(LOG_INFO, "user_deleted", "user_id", st->id.sub, "addr", request_client_addr(r));
    cookie_clear_tokens(r);
    respond_empty(r, 204);
}

void api_me_delete(struct request *r)
{
    confirm_start(r, "password", NULL, me_delete_resume);
}

static void password_resume(struct request *r)
{
    struct confirm_state *st = r->hs;
    struct app *app = r->app;
    if (!confirm_verdict(r, st))
        return;
    if (st->weak) {
        respond_weak_password(r, st->weak);
        return;
    }
    if (!st->new_hash) {
        respond_error(r, 500, "internal_error", "The password could not be hashed.");
        return;
    }
    struct revocation rev = app_revocation_now(app);
    int n = 0;
    enum store_rc rc = STORE_CALL(app->store, user_change_password, st->id.sub, st->new_hash,
                                  st->id.sid, &rev, &n);
    if (rc == STORE_NOT_FOUND) {
        respond_unauthorized(r, "the user no longer exists");
        return;
    }
    if (rc != STORE_OK) {
        respond_store_error(r, rc);
        return;
    }
    app_sync_revocations(app);
    char nbuf[16];
    snprintf(nbuf, sizeof nbuf, "%d", n);
    LOGE(LOG_INFO, "password_changed", "user_id", st->id.sub, "other_sessions_revoked", nbuf);
    respond_empty(r, 204);
}

void api_password(struct request *r)
{
    confirm_start(r, "current_password", "new_password", password_resume);
}

/* ----------------------------------------------------------- verify --- */

void api_verify(struct request *r)
{
    size_t len = 0;
    bool from_cookie = false;
    const char *tok = request_access_token(r, &len, &from_cookie);
    if (!tok) {
        respond_unauthorized(r, NULL);
        return;
    }
    struct identity id;
    const char *reason = NULL;
    if (len == 0 || !access_check(r->app, tok, len, util_now(), &id, &reason)) {
        respond_unauthorized(r, reason ? reason : jwtd_strerror(JWTD_ERR_MALFORMED));
        return;
    }
    respond_header(r, "X-Auth-User-Id", id.sub);
    respond_header(r, "X-Auth-Username", id.username);
    respond_empty(r, 200);
}
