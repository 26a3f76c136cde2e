/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Account endpoints of API.md: signup, login, refresh, logout, /auth/me
 * (read and delete), password change, and /auth/verify. Each handler reads
 * the request, calls the service (core/accounts.h, core/sessions.h) and
 * answers; the rules are the services', the HTTP mapping api/errors.c's.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "api/handlers.h"
#include "core/accounts.h"
#include "core/sessions.h"
#include "http/cookie.h"
#include "http/cors.h"

/* ----------------------------------------------------------- signup --- */

static void signup_done(struct request *r, struct svc_op *op)
{
    if (op->res.status != SVC_OK) {
        api_respond_failure(r, &op->res);
        return;
    }
    respond_json(r, 201, json_pack("{s:o}", "user", api_user_json(&op->user)));
}

void api_signup(struct request *r)
{
    /* Closed sign-up is answered before the body is looked at. */
    struct svc_result open = accounts_signup_allowed(r->app, request_ctx(r));
    if (open.status != SVC_OK) {
        api_respond_failure(r, &open);
        return;
    }
    json_t *body = request_json(r, true);
    if (!body)
        return;
    const char *username, *password, *email = NULL;
    size_t ulen, plen, elen = 0;
    if (json_field_string(r, body, "username", true, &username, &ulen) &&
        json_field_string(r, body, "password", true, &password, &plen) &&
        json_field_string(r, body, "email", false, &email, &elen))
        request_run_op(r, accounts_signup(r->app, request_ctx(r), username, ulen, password, plen,
                                          email, elen),
                       signup_done);
    json_decref(body);
}

/* ------------------------------------------------------------ login --- */

struct delivery {
    bool cookie;
};

static void login_done(struct request *r, struct svc_op *op)
{
    if (op->res.status == SVC_MFA_REQUIRED) {
        api_respond_mfa_required(r, op);
        return;
    }
    if (op->res.status != SVC_OK) {
        api_respond_failure(r, &op->res);
        return;
    }
    const struct delivery *d = r->hs;
    api_respond_grant(r, &op->user, &op->grant, d->cookie);
}

/* "username" (a username or an e-mail address), or "email". */
static bool login_identifier(struct request *r, json_t *body, const char **ret, size_t *ret_len)
{
    const char *u = NULL, *e = NULL;
    size_t ul = 0, el = 0;
    if (!json_field_string(r, body, "username", false, &u, &ul) ||
        !json_field_string(r, body, "email", false, &e, &el))
        return false;
    if (!u && !e) {
        respond_error(r, 400, "invalid_request", "The field 'username' is required.");
        return false;
    }
    *ret = u ? u : e;
    *ret_len = u ? ul : el;
    return true;
}

void api_login(struct request *r)
{
    json_t *body = request_json(r, true);
    if (!body)
        return;
    const char *username, *password;
    size_t ulen, plen;
    struct delivery *d = calloc(1, sizeof *d);
    if (!d) {
        respond_error(r, 500, "internal_error", "The server ran out of memory.");
    } else if (login_identifier(r, body, &username, &ulen) &&
               json_field_string(r, body, "password", true, &password, &plen) &&
               api_parse_delivery(r, body, &d->cookie)) {
        r->hs = d;
        r->hs_free = free;
        d = NULL;
        request_run_op(r, accounts_login(r->app, request_ctx(r), username, ulen, password, plen),
                       login_done);
    }
    free(d);
    json_decref(body);
}

/* ---------------------------------------------------------- refresh --- */

void api_refresh(struct request *r)
{
    json_t *body = request_json(r, false);
    if (!body)
        return;
    const char *tok = NULL;
    size_t len = 0;
    bool cookie = false, from_cookie = false;
    if (!json_field_string(r, body, "refresh_token", false, &tok, &len) ||
        !api_parse_delivery(r, body, &cookie))
        goto out;
    if (!tok) {
        tok = cookie_get(r, COOKIE_REFRESH, &len);
        if (tok) {
            cookie = from_cookie = true; /* came as a cookie: goes back as a cookie */
            if (!csrf_check(r))
                goto out;
        }
    }
    if (!tok) {
        respond_error(r, 400, "invalid_request",
                      "The field 'refresh_token' (or the refresh cookie) is required.");
        goto out;
    }
    struct session_grant g = {0};
    struct store_user u = {0};
    struct svc_result res = sessions_refresh(r->app, request_ctx(r), tok, len, &g, &u);
    if (res.status == SVC_OK) {
        api_respond_grant(r, &u, &g, cookie);
    } else {
        /* A refresh cookie that can never work again (expired, revoked,
         * reused, unknown) is cleared with the access cookie, as logout
         * clears them: the browser stops sending a dead session. A
         * passing failure (503, 429) leaves them. */
        if (from_cookie && res.status == SVC_INVALID_GRANT)
            cookie_clear_tokens(r);
        api_respond_failure(r, &res);
    }
    svc_grant_clear(&g);
out:
    json_decref(body);
}

/* ----------------------------------------------------------- logout --- */

void api_logout(struct request *r)
{
    struct identity id;
    if (!request_authenticate_logout(r, &id))
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
    struct svc_result res = sessions_logout(r->app, request_ctx(r), &id, all);
    if (res.status != SVC_OK) {
        api_respond_failure(r, &res);
        goto out;
    }
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
    struct store_user u;
    struct svc_result res = accounts_get(r->app, &id, &u);
    if (res.status != SVC_OK) {
        api_respond_failure(r, &res);
        return;
    }
    respond_json(r, 200, json_pack("{s:o}", "user", api_user_json(&u)));
}

static void me_delete_done(struct request *r, struct svc_op *op)
{
    if (op->res.status != SVC_OK) {
        api_respond_failure(r, &op->res);
        return;
    }
    cookie_clear_tokens(r);
    respond_empty(r, 204);
}

void api_me_delete(struct request *r)
{
    struct identity id;
    if (!request_authenticate(r, &id))
        return;
    json_t *body = request_json(r, true);
    if (!body)
        return;
    const char *pw;
    size_t plen;
    if (json_field_string(r, body, "password", true, &pw, &plen))
        request_run_op(r, accounts_delete_self(r->app, request_ctx(r), &id, pw, plen),
                       me_delete_done);
    json_decref(body);
}

static void me_patch_done(struct request *r, struct svc_op *op)
{
    if (op->res.status != SVC_OK) {
        api_respond_failure(r, &op->res);
        return;
    }
    respond_json(r, 200, json_pack("{s:o}", "user", api_user_json(&op->user)));
}

void api_me_patch(struct request *r)
{
    struct identity id;
    if (!request_authenticate(r, &id))
        return;
    json_t *body = request_json(r, true);
    if (!body)
        return;
    json_t *ev = json_object_get(body, "email");
    const char *email = NULL, *pw;
    size_t elen = 0, plen;
    if (!ev) {
        respond_error(r, 400, "invalid_request",
                      "The field 'email' is required (an address, or null to remove it).");
    } else if (!json_is_null(ev) && !json_field_string(r, body, "email", true, &email, &elen)) {
        /* answered */
    } else if (json_field_string(r, body, "password", true, &pw, &plen)) {
        request_run_op(r, accounts_change_email(r->app, request_ctx(r), &id, email, elen, pw,
                                                plen),
                       me_patch_done);
    }
    json_decref(body);
}

static void password_done(struct request *r, struct svc_op *op)
{
    if (op->res.status != SVC_OK) {
        api_respond_failure(r, &op->res);
        return;
    }
    respond_empty(r, 204);
}

void api_password(struct request *r)
{
    struct identity id;
    if (!request_authenticate(r, &id))
        return;
    json_t *body = request_json(r, true);
    if (!body)
        return;
    const char *cur, *nw;
    size_t clen, nlen;
    if (json_field_string(r, body, "current_password", true, &cur, &clen) &&
        json_field_string(r, body, "new_password", true, &nw, &nlen))
        request_run_op(r, accounts_change_password(r->app, request_ctx(r), &id, cur, clen, nw, nlen),
                       password_done);
    json_decref(body);
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
    if (len == 0) {
        respond_unauthorized(r, request_empty_token_reason(r));
        return;
    }
    if (!access_check(r->app, tok, len, util_now(), &id, &reason)) {
        respond_unauthorized(r, reason ? reason : jwtd_strerror(JWTD_ERR_MALFORMED));
        return;
    }
    /* Both identity headers or a refusal: a proxy must never pass a
     * request on with half an identity (a value with a line break cannot be
     * a header; no username jwtd issues has one, a forged token might). */
    if (!respond_header_value_ok(id.sub) || !respond_header_value_ok(id.username)) {
        respond_unauthorized(r, jwtd_strerror(JWTD_ERR_CLAIM_TYPE));
        return;
    }
    respond_header(r, "X-Auth-User-Id", id.sub);
    respond_header(r, "X-Auth-Username", id.username);
    respond_empty(r, 200);
}
