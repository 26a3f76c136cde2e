/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The e-mail endpoints: asking for and completing an address verification,
 * "forgot my password" and the reset. The rules are core/recovery.c's; the
 * answers api/errors.c's.
 */
#include <string.h>

#include "api/api.h"
#include "api/handlers.h"
#include "core/recovery.h"

/* POST /auth/email/verify/request (Bearer; no body, or a JSON object that
 * is ignored): 202, the message is queued. */
void api_email_verify_request(struct request *r)
{
    struct identity id;
    if (!request_authenticate(r, &id))
        return;
    json_t *body = request_json(r, false); /* a form or text body: 415, as everywhere */
    if (!body)
        return;
    json_decref(body);
    struct svc_result res = recovery_request_verification(r->app, request_ctx(r), &id);
    if (res.status != SVC_OK) {
        api_respond_failure(r, &res);
        return;
    }
    respond_json(r, 202, json_pack("{s:s}", "status", "queued"));
}

/* POST /auth/email/verify: {"token"} from the link (no sign-in needed), or
 * {"code"} with the account's access token. */
void api_email_verify(struct request *r)
{
    json_t *body = request_json(r, true);
    if (!body)
        return;
    const char *token = NULL, *code = NULL;
    size_t tlen = 0, clen = 0;
    if (!json_field_string(r, body, "token", false, &token, &tlen) ||
        !json_field_string(r, body, "code", false, &code, &clen))
        goto out;
    struct store_user u;
    struct svc_result res;
    if (token) {
        res = recovery_confirm_link(r->app, request_ctx(r), token, tlen, &u);
    } else if (code) {
        struct identity id;
        if (!request_authenticate(r, &id))
            goto out;
        res = recovery_confirm_code(r->app, request_ctx(r), &id, code, clen, &u);
    } else {
        respond_error(r, 400, "invalid_request", "Give 'token' (from the link) or 'code'.");
        goto out;
    }
    if (res.status != SVC_OK)
        api_respond_failure(r, &res);
    else
        respond_json(r, 200, json_pack("{s:o}", "user", api_user_json(&u)));
out:
    json_decref(body);
}

/* POST /auth/password/forgot {"email"} or {"username"}: always 202 (the
 * same answer whether an account exists). */
void api_password_forgot(struct request *r)
{
    json_t *body = request_json(r, true);
    if (!body)
        return;
    const char *email = NULL, *username = NULL;
    size_t elen = 0, ulen = 0;
    if (json_field_string(r, body, "email", false, &email, &elen) &&
        json_field_string(r, body, "username", false, &username, &ulen)) {
        if (!email && !username) {
            respond_error(r, 400, "invalid_request", "Give 'email' (or 'username').");
        } else {
            struct svc_result res = recovery_forgot(r->app, request_ctx(r),
                                                    email ? email : username,
                                                    email ? elen : ulen);
            if (res.status != SVC_OK)
                api_respond_failure(r, &res);
            else
                respond_json(r, 202, json_pack("{s:s}", "status", "queued"));
        }
    }
    json_decref(body);
}

static void reset_done(struct request *r, struct svc_op *op)
{
    if (op->res.status != SVC_OK)
        api_respond_failure(r, &op->res);
    else
        respond_empty(r, 204);
}

/* POST /auth/password/reset {"token", "new_password"}: 204. */
void api_password_reset(struct request *r)
{
    json_t *body = request_json(r, true);
    if (!body)
        return;
    const char *token, *pw;
    size_t tlen, plen;
    if (json_field_string(r, body, "token", true, &token, &tlen) &&
        json_field_string(r, body, "new_password", true, &pw, &plen))
        request_run_op(r, recovery_reset(r->app, request_ctx(r), token, tlen, pw, plen),
                       reset_done);
    json_decref(body);
}
