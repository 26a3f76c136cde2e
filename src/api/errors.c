/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The one place where service results become HTTP: status, error code and
 * description of API.md, Retry-After and WWW-Authenticate where they
 * belong. Also the shared response shapes (user object, token response).
 */
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>

#include "api/api.h"
#include "core/mfa.h"
#include "http/cookie.h"
#include "http/status.h"

json_t *api_user_json(const struct store_user *u)
{
    char created[RFC3339_LEN];
    util_rfc3339(u->created_at, created);
    json_t *o = json_pack("{s:s, s:s, s:s}", "id", u->id, "username", u->username,
                          "created_at", created);
    /* The address fields only for accounts that have one: an account
     * without keeps exactly the object of API.md. */
    if (o && u->email[0]) {
        json_object_set_new(o, "email", json_string(u->email));
        json_object_set_new(o, "email_verified", json_boolean(u->email_verified));
    }
    if (o && u->email_pending[0])
        json_object_set_new(o, "email_pending", json_string(u->email_pending));
    return o;
}

void api_respond_failure(struct request *r, const struct svc_result *res)
{
    const char *d = res->detail;
    char msg[200];
    unsigned st = http_status_of(res->status);
    switch (res->status) {
    case SVC_INVALID_USERNAME:
        respond_error(r, st, "invalid_username", d);
        return;
    case SVC_WEAK_PASSWORD:
        snprintf(msg, sizeof msg, "The password is too weak: %s.", d ? d : "it breaks the rules");
        respond_error(r, st, "weak_password", msg);
        return;
    case SVC_USERNAME_TAKEN:
        respond_error(r, st, "username_taken", "That username is already taken.");
        return;
    case SVC_SIGNUP_CLOSED:
        respond_error(r, st, "signup_disabled", "Signing up is disabled on this server.");
        return;
    case SVC_BAD_CREDENTIALS:
        respond_error(r, st, "invalid_credentials", d ? d : "The username or password is wrong.");
        return;
    case SVC_WRONG_PASSWORD:
        respond_error(r, st, "invalid_credentials", "The password is wrong.");
        return;
    case SVC_ACCOUNT_DISABLED:
        respond_error(r, st, "account_disabled", "This account is disabled.");
        return;
    case SVC_LIMITED:
        respond_retry_after(r, res->retry_after);
        snprintf(msg, sizeof msg, "Too many %s; try again in %lld second%s.",
                 d ? d : "attempts", (long long)(res->retry_after > 0 ? res->retry_after : 1),
                 res->retry_after > 1 ? "s" : "");
        respond_error(r, st, "too_many_attempts", msg);
        return;
    case SVC_BUSY:
    case SVC_UNAVAILABLE:
        respond_retry_after(r, 1);
        respond_error(r, st, "server_busy", d ? d : "The server is too busy; try again shortly.");
        return;
    case SVC_NOT_FOUND:
        respond_error(r, st, "not_found", d ? d : "There is no such resource.");
        return;
    case SVC_GONE:
        respond_unauthorized(r, "the user no longer exists");
        return;
    case SVC_INVALID_GRANT:
        respond_error(r, st, "invalid_grant", d ? d : "The refresh token was refused.");
        return;
    case SVC_INVALID_INPUT:
        respond_error(r, st, "invalid_request", d ? d : "The request is not valid.");
        return;
    case SVC_INVALID_EMAIL:
        respond_error(r, st, "invalid_email", d ? d : "That is not an e-mail address.");
        return;
    case SVC_EMAIL_TAKEN:
        respond_error(r, st, "email_taken", "That e-mail address belongs to another account.");
        return;
    case SVC_EMAIL_NOT_VERIFIED:
        respond_error(r, st, "email_not_verified",
                      "The account's e-mail address must be verified before logging in.");
        return;
    case SVC_NOT_CONFIGURED:
        respond_error(r, st, "not_configured", d ? d : "This server does not send e-mail.");
        return;
    case SVC_NOTHING_TO_VERIFY:
        respond_error(r, st, "nothing_to_verify",
                      d ? d : "The account has no unverified e-mail address.");
        return;
    case SVC_INVALID_LINK:
        respond_error(r, st, "invalid_link",
                      d ? d : "The link is unknown, already used or expired.");
        return;
    case SVC_INVALID_CODE:
        respond_error(r, st, "invalid_code", d ? d : "The code is wrong.");
        return;
    case SVC_MFA_REQUIRED: /* api_respond_mfa_required has the ticket */
        respond_error(r, st, "mfa_required", "A second factor is required.");
        return;
    case SVC_BAD_SECOND_FACTOR:
        respond_error(r, st, "invalid_credentials", d ? d : "The second factor was refused.");
        return;
    case SVC_ALREADY_ENABLED:
        respond_error(r, st, "already_enabled", d ? d : "It is set up already.");
        return;
    case SVC_CONFLICT:
        respond_error(r, st, "conflict", d ? d : "Another request changed this first; try again.");
        return;
    case SVC_OK:
    case SVC_ERROR:
        break;
    }
    respond_error(r, 500, "internal_error", d ? d : "The server failed to answer.");
}

void api_respond_grant(struct request *r, const struct store_user *u,
                       const struct session_grant *g, bool cookie)
{
    json_t *body;
    if (cookie) {
        if (!cookie_set_tokens(r, g->access_token, g->access_ttl, g->refresh_token,
                               g->refresh_ttl)) {
            respond_error(r, 500, "internal_error", "The server ran out of memory.");
            return;
        }
        body = json_pack("{s:s, s:I, s:o}", "token_type", "Bearer", "expires_in",
                         (json_int_t)g->access_ttl, "user", api_user_json(u));
    } else {
        body = json_pack("{s:s, s:s, s:I, s:s, s:o}", "access_token", g->access_token,
                         "token_type", "Bearer", "expires_in", (json_int_t)g->access_ttl,
                         "refresh_token", g->refresh_token, "user", api_user_json(u));
    }
    respond_json(r, 200, body);
}

void api_respond_mfa_required(struct request *r, const struct svc_op *op)
{
    json_t *b = json_pack("{s:s, s:s, s:s, s:o, s:I}", "error", "mfa_required",
                          "error_description",
                          "The password is right; finish logging in with a second factor.",
                          "mfa_ticket", op->mfa_ticket, "mfa_methods",
                          mfa_methods_json(op->mfa_methods), "expires_in",
                          (json_int_t)r->app->cfg->mfa_ticket_ttl);
    respond_json(r, 403, b);
}

bool api_parse_delivery(struct request *r, json_t *body, bool *ret_cookie)
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
