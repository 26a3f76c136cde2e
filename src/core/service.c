/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The shared parts of the services: operation objects, results, the
 * operator's context, and the audit writer (audit.h).
 */
#include "core/service.h"

#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "base/log.h"
#include "core/audit.h"

void svc_ctx_operator(struct svc_ctx *ctx)
{
    memset(ctx, 0, sizeof *ctx);
    ctx->actor = SVC_ACTOR_OPERATOR;
    struct passwd pw, *found = NULL;
    char buf[1024];
    if (getpwuid_r(getuid(), &pw, buf, sizeof buf, &found) == 0 && found)
        snprintf(ctx->operator_name, sizeof ctx->operator_name, "%s", found->pw_name);
    else
        snprintf(ctx->operator_name, sizeof ctx->operator_name, "uid:%u", (unsigned)getuid());
    char id[UUID_STR_LEN];
    if (util_uuid7(id))
        snprintf(ctx->request_id, sizeof ctx->request_id, "%s", id);
}

const char *svc_status_name(enum svc_status s)
{
    switch (s) {
    case SVC_OK: return "ok";
    case SVC_INVALID_USERNAME: return "invalid_username";
    case SVC_WEAK_PASSWORD: return "weak_password";
    case SVC_USERNAME_TAKEN: return "username_taken";
    case SVC_SIGNUP_CLOSED: return "signup_disabled";
    case SVC_BAD_CREDENTIALS: return "bad_credentials";
    case SVC_WRONG_PASSWORD: return "wrong_password";
    case SVC_ACCOUNT_DISABLED: return "account_disabled";
    case SVC_LIMITED: return "rate_limited";
    case SVC_BUSY: return "busy";
    case SVC_UNAVAILABLE: return "storage_unavailable";
    case SVC_NOT_FOUND: return "not_found";
    case SVC_GONE: return "account_gone";
    case SVC_INVALID_GRANT: return "invalid_grant";
    case SVC_INVALID_INPUT: return "invalid_input";
    case SVC_INVALID_EMAIL: return "invalid_email";
    case SVC_EMAIL_TAKEN: return "email_taken";
    case SVC_EMAIL_NOT_VERIFIED: return "email_not_verified";
    case SVC_NOT_CONFIGURED: return "not_configured";
    case SVC_NOTHING_TO_VERIFY: return "nothing_to_verify";
    case SVC_INVALID_LINK: return "invalid_link";
    case SVC_INVALID_CODE: return "invalid_code";
    case SVC_MFA_REQUIRED: return "mfa_required";
    case SVC_BAD_SECOND_FACTOR: return "bad_second_factor";
    case SVC_ALREADY_ENABLED: return "already_enabled";
    case SVC_CONFLICT: return "conflict";
    case SVC_ERROR: return "error";
    }
    return "?";
}

struct svc_result svc_store_failure(struct app *app, enum store_rc rc, const char *what)
{
    metrics_inc(&app->metrics.storage_errors);
    if (rc == STORE_UNAVAILABLE) {
        app_storage_state(app, false);
        LOG(LOG_WARN, "storage_unavailable", LF_S("during", what));
        return (struct svc_result){SVC_UNAVAILABLE, "Storage is unavailable; try again shortly.", 1};
    }
    LOG(LOG_ERROR, "storage_error", LF_S("during", what), LF_S("rc", store_rc_name(rc)));
    return svc_fail(SVC_ERROR, NULL);
}

void svc_grant_clear(struct session_grant *g)
{
    if (!g)
        return;
    if (g->access_token) {
        OPENSSL_cleanse(g->access_token, strlen(g->access_token));
        free(g->access_token);
        g->access_token = NULL;
    }
    OPENSSL_cleanse(g->refresh_token, sizeof g->refresh_token);
}

struct svc_op *svc_op_new(struct app *app, const struct svc_ctx *ctx)
{
    struct svc_op *op = calloc(1, sizeof *op);
    if (!op)
        return NULL;
    op->app = app;
    op->ctx = *ctx;
    op->res = svc_ok();
    return op;
}

void svc_op_run(struct svc_op *op)
{
    if (op->slow)
        op->slow(op);
    if (op->finish)
        op->finish(op, true);
    op->slow = NULL;
    op->finish = NULL;
    svc_op_wipe(op);
}

void svc_op_wipe(struct svc_op *op)
{
    if (op->priv_wipe && op->priv)
        op->priv_wipe(op->priv);
}

void svc_op_free(struct svc_op *op)
{
    if (!op)
        return;
    if (op->priv_free)
        op->priv_free(op->priv);
    if (op->arg_free)
        op->arg_free(op->arg);
    store_user_clear(&op->user);
    svc_grant_clear(&op->grant);
    json_decref(op->data);
    OPENSSL_cleanse(op->mfa_ticket, sizeof op->mfa_ticket);
    free(op);
}

/* ------------------------------------------------------------- audit --- */

void audit_write(enum log_level lvl, const struct svc_ctx *ctx, const char *event,
                 const char *outcome, const char *user_id, const struct log_field *extra,
                 size_t n)
{
    struct log_field f[24];
    size_t k = 0;
    f[k++] = LF_B("audit", true);
    f[k++] = LF_S("outcome", outcome);
    if (user_id && *user_id)
        f[k++] = LF_S("user_id", user_id);
    for (size_t i = 0; i < n && k < sizeof f / sizeof f[0] - 4; i++)
        f[k++] = extra[i];
    if (ctx->actor == SVC_ACTOR_OPERATOR) {
        f[k++] = LF_S("actor", "operator");
        f[k++] = LF_S("operator", ctx->operator_name);
    } else {
        f[k++] = LF_S("actor", "client");
        f[k++] = LF_S("addr", ctx->client_addr);
    }
    f[k++] = LF_S("request_id", ctx->request_id);
    log_fields(lvl, event, f, k);
}
