/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Second-factor endpoints (docs/mfa.md): the second step of a login,
 * TOTP enrolment and removal, recovery codes, and passkeys. The rules are
 * core/mfa.c's and core/passkeys.c's; this file reads JSON and answers.
 */
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "api/handlers.h"
#include "core/mfa.h"
#include "core/passkeys.h"
#include "http/cookie.h"

/* The reply of an operation whose result is op->data (200), or nothing (204). */
static void data_done(struct request *r, struct svc_op *op)
{
    if (op->res.status != SVC_OK) {
        api_respond_failure(r, &op->res);
        return;
    }
    if (op->data)
        respond_json(r, 200, json_incref(op->data));
    else
        respond_empty(r, 204);
}

/* An authenticated request with a JSON body (required or not). */
static json_t *auth_body(struct request *r, struct identity *id, bool required)
{
    if (!request_authenticate(r, id))
        return NULL;
    return request_json(r, required);
}

void api_mfa_status(struct request *r)
{
    struct identity id;
    if (!request_authenticate(r, &id))
        return;
    json_t *st = NULL;
    struct svc_result res = mfa_status(r->app, &id, &st);
    if (res.status != SVC_OK)
        api_respond_failure(r, &res);
    else
        respond_json(r, 200, st);
}

/* POST /auth/mfa/verify {"mfa_ticket", "code" | "recovery_code", "delivery"} */
void api_mfa_verify(struct request *r)
{
    json_t *body = request_json(r, true);
    if (!body)
        return;
    const char *ticket, *code = NULL, *rcode = NULL;
    size_t tlen, clen = 0, rlen = 0;
    bool cookie = false;
    if (!json_field_string(r, body, "mfa_ticket", true, &ticket, &tlen) ||
        !json_field_string(r, body, "code", false, &code, &clen) ||
        !json_field_string(r, body, "recovery_code", false, &rcode, &rlen) ||
        !api_parse_delivery(r, body, &cookie))
        goto out;
    if ((code != NULL) == (rcode != NULL)) {
        respond_error(r, 400, "invalid_request",
                      "Give exactly one of the fields 'code' and 'recovery_code'.");
        goto out;
    }
    struct store_user u = {0};
    struct session_grant g = {0};
    struct svc_result res =
        mfa_complete(r->app, request_ctx(r), ticket, tlen, code ? MFA_TOTP : MFA_RECOVERY,
                     code ? code : rcode, code ? clen : rlen, &u, &g);
    if (res.status == SVC_OK)
        api_respond_grant(r, &u, &g, cookie);
    else
        api_respond_failure(r, &res);
    svc_grant_clear(&g);
    store_user_clear(&u);
out:
    json_decref(body);
}

/* The steps that only re-confirm the password: {"password"} in, the
 * operation's data out. */
typedef struct svc_op *password_step(struct app *app, const struct svc_ctx *ctx,
                                     const struct identity *id, const char *pw, size_t plen);

static void password_op(struct request *r, password_step *step)
{
    struct identity id;
    json_t *body = auth_body(r, &id, true);
    if (!body)
        return;
    const char *pw;
    size_t plen;
    if (json_field_string(r, body, "password", true, &pw, &plen))
        request_run_op(r, step(r->app, request_ctx(r), &id, pw, plen), data_done);
    json_decref(body);
}

/* POST /auth/mfa/totp {"password"}: start an enrolment. */
void api_totp_enroll(struct request *r)
{
    password_op(r, mfa_totp_enroll);
}

/* POST /auth/mfa/totp/confirm {"code"} -> {"recovery_codes": [...]} */
void api_totp_confirm(struct request *r)
{
    struct identity id;
    json_t *body = auth_body(r, &id, true);
    if (!body)
        return;
    const char *code;
    size_t clen;
    if (json_field_string(r, body, "code", true, &code, &clen)) {
        json_t *codes = NULL;
        struct svc_result res = mfa_totp_confirm(r->app, request_ctx(r), &id, code, clen, &codes);
        if (res.status == SVC_OK)
            respond_json(r, 200, json_pack("{s:o}", "recovery_codes", codes));
        else
            api_respond_failure(r, &res);
    }
    json_decref(body);
}

/* DELETE /auth/mfa/totp {"password"} */
void api_totp_remove(struct request *r)
{
    password_op(r, mfa_totp_remove);
}

/* POST /auth/mfa/recovery-codes {"password"} -> {"recovery_codes": [...]} */
void api_recovery_codes(struct request *r)
{
    password_op(r, mfa_recovery_renew);
}

/* ---------------------------------------------------------- passkeys --- */

/* GET /auth/passkeys -> {"passkeys": [...]} */
void api_passkeys_list(struct request *r)
{
    struct identity id;
    if (!request_authenticate(r, &id))
        return;
    json_t *list = NULL;
    struct svc_result res = passkeys_list(r->app, &id, &list);
    if (res.status != SVC_OK)
        api_respond_failure(r, &res);
    else
        respond_json(r, 200, json_pack("{s:o}", "passkeys", list));
}

/* DELETE /auth/passkeys {"id", "password"} */
void api_passkeys_delete(struct request *r)
{
    struct identity id;
    json_t *body = auth_body(r, &id, true);
    if (!body)
        return;
    const char *pk, *pw;
    size_t klen, plen;
    if (json_field_string(r, body, "id", true, &pk, &klen) &&
        json_field_string(r, body, "password", true, &pw, &plen))
        request_run_op(r, passkeys_remove(r->app, request_ctx(r), &id, pk, klen, pw, plen),
                       data_done);
    json_decref(body);
}

/* POST /auth/passkeys/register/options {"password"} -> {"publicKey": ...} */
void api_passkey_register_options(struct request *r)
{
    struct identity id;
    json_t *body = auth_body(r, &id, true);
    if (!body)
        return;
    const char *pw;
    size_t plen;
    if (json_field_string(r, body, "password", true, &pw, &plen))
        request_run_op(r, passkeys_register_begin(r->app, request_ctx(r), &id, pw, plen),
                       data_done);
    json_decref(body);
}

static json_t *credential_field(struct request *r, json_t *body)
{
    json_t *c = json_object_get(body, "credential");
    if (!json_is_object(c)) {
        respond_error(r, 400, "invalid_request",
                      "The field 'credential' (the PublicKeyCredential as JSON) is required.");
        return NULL;
    }
    return c;
}

/* POST /auth/passkeys/register {"credential", "name"} -> 201 {"passkey"} */
void api_passkey_register(struct request *r)
{
    struct identity id;
    json_t *body = auth_body(r, &id, true);
    if (!body)
        return;
    const char *name = NULL;
    size_t nlen = 0;
    json_t *cred = credential_field(r, body);
    if (cred && json_field_string(r, body, "name", false, &name, &nlen)) {
        json_t *pk = NULL;
        struct svc_result res =
            passkeys_register_finish(r->app, request_ctx(r), &id, cred, name, nlen, &pk);
        if (res.status == SVC_OK)
            respond_json(r, 201, json_pack("{s:o}", "passkey", pk));
        else
            api_respond_failure(r, &res);
    }
    json_decref(body);
}

/* POST /auth/passkeys/login/options {"mfa_ticket"?} -> {"publicKey": ...} */
void api_passkey_login_options(struct request *r)
{
    json_t *body = request_json(r, false);
    if (!body)
        return;
    const char *ticket = NULL;
    size_t tlen = 0;
    if (json_field_string(r, body, "mfa_ticket", false, &ticket, &tlen)) {
        json_t *opts = NULL;
        struct svc_result res = passkeys_login_begin(r->app, request_ctx(r), ticket, tlen, &opts);
        if (res.status == SVC_OK)
            respond_json(r, 200, opts);
        else
            api_respond_failure(r, &res);
    }
    json_decref(body);
}

/* POST /auth/passkeys/login {"credential", "mfa_ticket"?, "delivery"} */
void api_passkey_login(struct request *r)
{
    json_t *body = request_json(r, true);
    if (!body)
        return;
    const char *ticket = NULL;
    size_t tlen = 0;
    bool cookie = false;
    json_t *cred = credential_field(r, body);
    if (cred && json_field_string(r, body, "mfa_ticket", false, &ticket, &tlen) &&
        api_parse_delivery(r, body, &cookie)) {
        struct store_user u = {0};
        struct session_grant g = {0};
        struct svc_result res =
            passkeys_login_finish(r->app, request_ctx(r), cred, ticket, tlen, &u, &g);
        /* The passkey buttons of the pages sign in through here: their
         * sessions get the pages' renewal hint like any page sign-in. */
        if (res.status == SVC_OK && cookie)
            cookie_set_hint(r, g.refresh_ttl);
        if (res.status == SVC_OK)
            api_respond_grant(r, &u, &g, cookie);
        else
            api_respond_failure(r, &res);
        svc_grant_clear(&g);
        store_user_clear(&u);
    }
    json_decref(body);
}
