/* SPDX-License-Identifier: Apache-2.0 */
/*
 * GET /auth/sessions and DELETE /auth/sessions/{id}: the caller's live
 * sessions, and ending one of them. A session id that is not one of the
 * caller's live sessions is 404, whether it exists or not (the rule is
 * sessions_revoke's).
 */
#include <stdio.h>
#include <string.h>

#include "api/api.h"
#include "api/handlers.h"
#include "core/sessions.h"

struct list_ctx {
    json_t *arr;
    const char *current_sid;
    bool failed;
};

static void add_session(void *vctx, const struct store_session *s)
{
    struct list_ctx *ctx = vctx;
    char created[RFC3339_LEN], used[RFC3339_LEN], expires[RFC3339_LEN];
    util_rfc3339(s->created_at, created);
    util_rfc3339(s->last_used_at, used);
    util_rfc3339(s->expires_at, expires);
    json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:b}", "id", s->id, "created_at",
                          created, "last_used_at", used, "expires_at", expires, "user_agent",
                          s->user_agent, "client_address", s->client_addr, "current",
                          strcmp(s->id, ctx->current_sid) == 0);
    if (!o || json_array_append_new(ctx->arr, o) != 0)
        ctx->failed = true;
}

void api_sessions(struct request *r)
{
    struct identity id;
    if (!request_authenticate(r, &id))
        return;
    struct list_ctx ctx = {.arr = json_array(), .current_sid = id.sid};
    if (!ctx.arr) {
        respond_error(r, 500, "internal_error", "The server ran out of memory.");
        return;
    }
    struct svc_result res = sessions_list(r->app, &id, add_session, &ctx);
    if (res.status != SVC_OK || ctx.failed) {
        json_decref(ctx.arr);
        if (res.status != SVC_OK)
            api_respond_failure(r, &res);
        else
            respond_error(r, 500, "internal_error", "The server ran out of memory.");
        return;
    }
    respond_json(r, 200, json_pack("{s:o}", "sessions", ctx.arr));
}

void api_session_delete(struct request *r)
{
    struct identity id;
    if (!request_authenticate(r, &id))
        return;
    struct svc_result res = sessions_revoke(r->app, request_ctx(r), &id, r->path_id);
    if (res.status != SVC_OK) {
        api_respond_failure(r, &res);
        return;
    }
    respond_empty(r, 204);
}
