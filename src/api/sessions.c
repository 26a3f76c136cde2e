/* SPDX-License-Identifier: Apache-2.0 */
/*
 * GET /auth/sessions and DELETE /auth/sessions/{id}: the caller's live
 * sessions, and ending one of them. A session id that is not one of the
 * caller's live sessions is 404, whether it exists or not.
 */
#include <stdio.h>
#include <string.h>

#include "api/common.h"
#include "api/handlers.h"
#include "core/log.h"

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
    enum store_rc rc = STORE_CALL(r->app->store, session_list, id.sub, util_now(),
                                  r->app->cfg->refresh_ttl, add_session, &ctx);
    if (rc != STORE_OK || ctx.failed) {
        json_decref(ctx.arr);
        if (rc != STORE_OK)
            respond_store_error(r, rc);
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
    if (!util_is_uuid(r->path_id)) {
        respond_error(r, 404, "not_found", "There is no such session.");
        return;
    }
    /* Ids are stored lower-case (util_uuid7). */
    char sid[UUID_STR_LEN];
    for (size_t i = 0; i < sizeof sid; i++)
        sid[i] = (r->path_id[i] >= 'A' && r->path_id[i] <= 'F') ? (char)(r->path_id[i] + 32)
                                                                  : r->path_id[i];
    struct revocation rev = app_revocation_now(r->app);
    enum store_rc rc = STORE_CALL(r->app->store, session_revoke, id.sub, sid, "session_deleted",
                                  &rev);
    if (rc == STORE_NOT_FOUND) {
        respond_error(r, 404, "not_found", "There is no such session.");
        return;
    }
    if (rc != STORE_OK) {
        respond_store_error(r, rc);
        return;
    }
    app_note_revoked(r->app, sid, rev.expires_ms);
    LOGE(LOG_INFO, "session_revoked", "user_id", id.sub, "sid", sid, "by_sid", id.sid);
    respond_empty(r, 204);
}
