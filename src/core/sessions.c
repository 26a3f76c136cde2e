/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Implementation of sessions.h. Session lifetime, the refresh reuse policy,
 * what a sign-out with a refresh token may end and the revocation horizon
 * are decided here and nowhere else; storage applies the decisions
 * atomically (store_refresh, store_signout), and every revocation is
 * recorded in this instance's revoked set at once (other instances read the
 * storage feed within JWTD_REVOCATION_POLL).
 */
#include "core/sessions.h"

#include <stdio.h>
#include <string.h>

#include "base/log.h"
#include "core/audit.h"
#include "core/ratelimit.h"

struct revocation sessions_revocation_now(const struct app *app)
{
    int64_t now = util_now_ms();
    /* An access token of the session may live access_ttl + leeway more. */
    return (struct revocation){
        .now_ms = now,
        .expires_ms = now + (app->cfg->access_ttl + app->cfg->leeway + 5) * 1000,
    };
}

enum refresh_outcome sessions_refresh_decide(const struct store_session *row,
                                             const struct store_user *owner, uint32_t gen,
                                             const struct refresh_policy *p)
{
    /* A disabled account's sessions were revoked when it was disabled; the
     * flag is checked too, for a session that raced with the disabling. */
    if (row->revoked_at_ms || owner->disabled_at)
        return REFRESH_REVOKED;
    int64_t now = p->now_ms / 1000;
    if (now >= row->expires_at || now >= row->last_used_at + p->idle_ttl)
        return REFRESH_EXPIRED;
    if (gen == row->refresh_gen)
        /* Four billion rotations end a session rather than wrap around. */
        return gen == UINT32_MAX ? REFRESH_EXPIRED : REFRESH_ROTATED;
    /* Only the token retired last, and only briefly: two tabs that raced,
     * or a response lost on the way. Anything older is a stolen token. An
     * interval of 0 is strict single use, even for requests that raced. */
    if (p->reuse_interval_ms <= 0 || (uint64_t)gen + 1 != row->refresh_gen)
        return REFRESH_REUSED;
    int64_t since = row->rotated_at_ms;
    if (p->doubt_to_ms && since >= p->doubt_from_ms && since <= p->doubt_to_ms)
        since = p->doubt_to_ms;
    return p->now_ms - since <= p->reuse_interval_ms ? REFRESH_REPLAYED : REFRESH_REUSED;
}

/* Sign the access token and make the refresh token of (sid, gen). */
static struct svc_result issue(struct app *app, const struct store_user *u, const char *sid,
                               uint32_t gen, unsigned amr, int64_t now, struct session_grant *ret)
{
    struct session_grant g = {.gen = gen,
                              .access_ttl = app->cfg->access_ttl,
                              .refresh_ttl = app->cfg->refresh_ttl};
    snprintf(g.sid, sizeof g.sid, "%s", sid);
    if (access_token_issue(app->keys, app->cfg, u, sid, amr, now, &g.access_token) != JWTD_OK ||
        !refresh_token_make(app->refresh_key, sid, gen, g.refresh_token)) {
        svc_grant_clear(&g);
        LOG(LOG_ERROR, "token_issue_failed", LF_S("user_id", u->id));
        return svc_fail(SVC_ERROR, "The server could not sign a token.");
    }
    *ret = g;
    return svc_ok();
}

struct svc_result sessions_open(struct app *app, const struct svc_ctx *ctx,
                                const struct store_user *u, unsigned amr,
                                struct session_grant *ret)
{
    int64_t now = util_now();
    struct store_session s = {
        .created_at = now,
        .last_used_at = now,
        .expires_at = now + app->cfg->refresh_absolute_ttl,
        .refresh_gen = 0,
        .rotated_at_ms = util_now_ms(),
        .amr = amr ? amr : AMR_PWD,
    };
    if (!util_uuid7(s.id))
        return svc_fail(SVC_ERROR, "The server could not make an id.");
    memcpy(s.user_id, u->id, sizeof s.user_id);
    snprintf(s.user_agent, sizeof s.user_agent, "%s", ctx->user_agent);
    snprintf(s.client_addr, sizeof s.client_addr, "%s", ctx->client_addr);
    /* With the hash of the password that was checked, when the caller
     * still has it: a login racing a password change, reset or deletion
     * either opens its session before them (which then revoke it) or not
     * at all. */
    enum store_rc rc = store_session_create(app->store, &s, u->password_hash);
    if (rc == STORE_NOT_FOUND) {
        /* The account changed meanwhile: deleted, or its password changed
         * (the one checked is wrong now), or disabled - told as such, as
         * a login a moment later is, not as a wrong password. */
        struct store_user cur;
        memset(&cur, 0, sizeof cur);
        bool disabled = store_user_by_id(app->store, u->id, &cur) == STORE_OK &&
                        cur.disabled_at != 0 && cur.password_hash && u->password_hash &&
                        strcmp(cur.password_hash, u->password_hash) == 0;
        store_user_clear(&cur);
        if (disabled) {
            AUDIT(LOG_INFO, ctx, "login_failed", "refused", u->id,
                  LF_S("reason", "account_disabled"));
            return svc_fail(SVC_ACCOUNT_DISABLED, "This account is disabled.");
        }
        return svc_fail(SVC_BAD_CREDENTIALS, NULL);
    }
    if (rc != STORE_OK)
        return svc_store_failure(app, rc, "session_create");
    return issue(app, u, s.id, 0, s.amr, now, ret);
}

/*
 * A rotation whose COMMIT was on its way when storage stalled or went away
 * may have been made durable although its request was answered 503 (the
 * deadline passed, the connection broke): the client then retries with the
 * token that rotation retired, possibly on another instance, and possibly
 * longer than the reuse interval after the rotation. Treating that as theft
 * would end the session of anyone who refreshed at the wrong moment. So the
 * rotations made from DOUBT_LEAD_MS before this instance noticed the outage
 * until it ended get their reuse interval counted from the end of the
 * outage. DOUBT_LEAD_MS covers the detection delay: a statement deadline
 * (5 s) on the instance that rotated, a probe period and a deadline on this
 * one.
 */
#define DOUBT_LEAD_MS 12000

static void outage_doubt(struct app *app, int64_t now_ms, struct refresh_policy *p)
{
    int64_t down = atomic_load(&app->storage_down_ms);
    int64_t up = atomic_load(&app->storage_up_ms);
    if (!down)
        return;
    p->doubt_from_ms = down - DOUBT_LEAD_MS;
    p->doubt_to_ms = up >= down ? up : now_ms;
}

/* The refresh decision's inputs as of now. */
static struct refresh_policy refresh_policy_now(struct app *app)
{
    struct refresh_policy p = {
        .now_ms = util_now_ms(),
        .idle_ttl = app->cfg->refresh_ttl,
        .reuse_interval_ms = app->cfg->refresh_reuse_interval * 1000,
        .rev = sessions_revocation_now(app),
        .decide = sessions_refresh_decide,
    };
    outage_doubt(app, p.now_ms, &p);
    return p;
}

static const char *refusal_reason(enum refresh_outcome o)
{
    switch (o) {
    case REFRESH_UNKNOWN: return "The refresh token is unknown.";
    case REFRESH_EXPIRED: return "The refresh token has expired.";
    case REFRESH_REVOKED: return "The refresh token was revoked (the session has ended).";
    case REFRESH_REUSED:
        return "The refresh token was reused (it was retired already); the session has been "
               "revoked.";
    default: return "The refresh token was refused.";
    }
}

static const char *outcome_name(enum refresh_outcome o)
{
    switch (o) {
    case REFRESH_ROTATED: return "rotated";
    case REFRESH_REPLAYED: return "replayed_within_reuse_interval";
    case REFRESH_UNKNOWN: return "unknown";
    case REFRESH_EXPIRED: return "expired";
    case REFRESH_REVOKED: return "revoked";
    case REFRESH_REUSED: return "reused";
    }
    return "?";
}

struct svc_result sessions_refresh(struct app *app, const struct svc_ctx *ctx, const char *token,
                                   size_t len, struct session_grant *ret_grant,
                                   struct store_user *ret_user)
{
    struct svc_result res = ratelimit_take(app, ctx, RATE_REFRESH);
    if (res.status != SVC_OK)
        return res;
    char sid[UUID_STR_LEN];
    uint32_t gen;
    if (!refresh_token_parse(app->refresh_key, token, len, sid, &gen)) {
        metrics_inc(&app->metrics.refresh[RR_INVALID]);
        AUDIT(LOG_INFO, ctx, "refresh_refused", "refused", NULL, LF_S("reason", "not_a_token"));
        return svc_fail(SVC_INVALID_GRANT, refusal_reason(REFRESH_UNKNOWN));
    }
    struct refresh_policy p = refresh_policy_now(app);
    enum refresh_outcome out = REFRESH_UNKNOWN;
    struct store_session s = {0};
    struct store_user u = {0};
    enum store_rc rc = store_refresh(app->store, sid, gen, &p, &out, &s, &u);
    if (rc != STORE_OK)
        return svc_store_failure(app, rc, "refresh");
    static const enum refresh_result metric_of[] = {
        [REFRESH_ROTATED] = RR_ROTATED, [REFRESH_REPLAYED] = RR_REPLAYED,
        [REFRESH_UNKNOWN] = RR_UNKNOWN, [REFRESH_EXPIRED] = RR_EXPIRED,
        [REFRESH_REVOKED] = RR_REVOKED, [REFRESH_REUSED] = RR_REUSED};
    metrics_inc(&app->metrics.refresh[metric_of[out]]);
    switch (out) {
    case REFRESH_ROTATED:
    case REFRESH_REPLAYED:
        res = issue(app, &u, sid, s.refresh_gen, s.amr, p.now_ms / 1000, ret_grant);
        if (res.status != SVC_OK)
            return res;
        LOG(LOG_INFO, "refresh", LF_S("user_id", u.id), LF_S("sid", sid),
            LF_S("outcome", outcome_name(out)), LF_S("request_id", ctx->request_id));
        *ret_user = u;
        return svc_ok();
    case REFRESH_REUSED:
        app_note_revoked(app, sid, p.rev.expires_ms);
        /* The session's account, when its row was found (audit readers
         * filter by user). */
        AUDIT(LOG_WARN, ctx, "refresh_token_reuse", "session_revoked",
              s.user_id[0] ? s.user_id : NULL, LF_S("sid", sid));
        return svc_fail(SVC_INVALID_GRANT, refusal_reason(out));
    default:
        AUDIT(LOG_INFO, ctx, "refresh_refused", "refused", s.user_id[0] ? s.user_id : NULL,
              LF_S("sid", sid), LF_S("reason", outcome_name(out)));
        return svc_fail(SVC_INVALID_GRANT, refusal_reason(out));
    }
}

struct svc_result sessions_logout(struct app *app, const struct svc_ctx *ctx,
                                  const struct identity *who, bool all)
{
    struct revocation rev = sessions_revocation_now(app);
    enum store_rc rc;
    if (all)
        rc = store_session_revoke_user(app->store, who->sub, NULL, "logout_all", &rev, NULL);
    else
        rc = store_session_revoke(app->store, who->sub, who->sid, "logout", &rev);
    if (rc != STORE_OK && rc != STORE_NOT_FOUND)
        return svc_store_failure(app, rc, "logout");
    app_note_revoked(app, who->sid, rev.expires_ms);
    if (all)
        app_sync_revocations(app);
    AUDIT(LOG_INFO, ctx, "logout", "ok", who->sub, LF_S("sid", who->sid),
          LF_S("scope", all ? "all" : "session"));
    return svc_ok();
}

enum signout_reach sessions_signout_reach(enum refresh_outcome out, bool all)
{
    switch (out) {
    case REFRESH_ROTATED:
    case REFRESH_REPLAYED:
        /* /auth/refresh would honour the token: its holder could get an
         * access token and sign out everywhere with it, so a sign-out with
         * it reaches as far, and no further. */
        return all ? SIGNOUT_USER : SIGNOUT_SESSION;
    case REFRESH_REUSED:
        /* Theft assumed: the session ends, as /auth/refresh would end it
         * for this token; the token proves nothing about the other
         * sessions. */
        return SIGNOUT_SESSION;
    default:
        /* Unknown, expired, revoked: nothing left that this token could
         * end or renew. */
        return SIGNOUT_NOTHING;
    }
}

/* The revoked set and the audit trail after a sign-out with a refresh
 * token of session sid. */
static void signout_note(struct app *app, const struct svc_ctx *ctx, const char *sid, bool all,
                         const struct revocation *rev, const struct signout_result *out)
{
    const char *uid = out->user_id[0] ? out->user_id : NULL;
    if (out->reach != SIGNOUT_NOTHING)
        app_note_revoked(app, sid, rev->expires_ms);
    if (out->reach == SIGNOUT_USER)
        app_sync_revocations(app);
    if (out->outcome == REFRESH_REUSED)
        AUDIT(LOG_WARN, ctx, "refresh_token_reuse", "session_revoked", uid, LF_S("sid", sid),
              LF_S("via", "logout"));
    else if (out->reach != SIGNOUT_NOTHING)
        AUDIT(LOG_INFO, ctx, "logout", "ok", uid, LF_S("sid", sid),
              LF_S("scope", out->reach == SIGNOUT_USER ? "all" : "session"),
              LF_S("via", "refresh_token"));
    else
        AUDIT(LOG_INFO, ctx, "logout", "refused", uid, LF_S("sid", sid),
              LF_S("scope", all ? "all" : "session"), LF_S("reason", outcome_name(out->outcome)),
              LF_S("via", "refresh_token"));
}

struct svc_result sessions_logout_refresh(struct app *app, const struct svc_ctx *ctx,
                                          const char *token, size_t len, bool all,
                                          enum signout_reach *ret_ended)
{
    char sid[UUID_STR_LEN];
    uint32_t gen;
    if (!refresh_token_parse(app->refresh_key, token, len, sid, &gen)) {
        AUDIT(LOG_INFO, ctx, "logout", "refused", NULL, LF_S("reason", "not_a_token"),
              LF_S("via", "refresh_token"));
        *ret_ended = SIGNOUT_NOTHING;
        return svc_ok();
    }
    struct signout_policy p = {
        .refresh = refresh_policy_now(app),
        .all = all,
        .reach = sessions_signout_reach,
    };
    struct signout_result out;
    enum store_rc rc = store_signout(app->store, sid, gen, &p, &out);
    if (rc != STORE_OK)
        return svc_store_failure(app, rc, "logout");
    signout_note(app, ctx, sid, all, &p.refresh.rev, &out);
    *ret_ended = out.reach;
    return svc_ok();
}

struct svc_result sessions_list(struct app *app, const struct identity *who,
                                store_session_cb cb, void *cbctx)
{
    enum store_rc rc =
        store_session_list(app->store, who->sub, util_now(), app->cfg->refresh_ttl, cb, cbctx);
    if (rc != STORE_OK)
        return svc_store_failure(app, rc, "session_list");
    return svc_ok();
}

struct svc_result sessions_revoke(struct app *app, const struct svc_ctx *ctx,
                                  const struct identity *who, const char *path_sid)
{
    if (!util_is_uuid(path_sid))
        return svc_fail(SVC_NOT_FOUND, "There is no such session.");
    /* Ids are stored lower-case (util_uuid7). */
    char sid[UUID_STR_LEN];
    for (size_t i = 0; i < sizeof sid; i++)
        sid[i] = (path_sid[i] >= 'A' && path_sid[i] <= 'F') ? (char)(path_sid[i] + 32)
                                                             : path_sid[i];
    struct revocation rev = sessions_revocation_now(app);
    enum store_rc rc = store_session_revoke(app->store, who->sub, sid, "session_deleted", &rev);
    if (rc == STORE_NOT_FOUND)
        return svc_fail(SVC_NOT_FOUND, "There is no such session.");
    if (rc != STORE_OK)
        return svc_store_failure(app, rc, "session_revoke");
    app_note_revoked(app, sid, rev.expires_ms);
    AUDIT(LOG_INFO, ctx, "session_revoked", "ok", who->sub, LF_S("sid", sid),
          LF_S("by_sid", who->sid));
    return svc_ok();
}

void sessions_withdraw(struct app *app, const char *user_id, const char *reason,
                       struct session_grant *g)
{
    struct revocation rev = sessions_revocation_now(app);
    if (store_session_revoke(app->store, user_id, g->sid, reason, &rev) == STORE_OK)
        app_note_revoked(app, g->sid, rev.expires_ms);
    svc_grant_clear(g);
}

struct svc_result sessions_revoke_all(struct app *app, const struct svc_ctx *ctx,
                                      const char *user_id, const char *except_sid,
                                      const char *reason, int *ret_count)
{
    struct revocation rev = sessions_revocation_now(app);
    int n = 0;
    enum store_rc rc =
        store_session_revoke_user(app->store, user_id, except_sid, reason, &rev, &n);
    if (rc != STORE_OK)
        return svc_store_failure(app, rc, "session_revoke_all");
    if (app->revoked)
        app_sync_revocations(app);
    AUDIT(LOG_INFO, ctx, "sessions_revoked", "ok", user_id, LF_S("reason", reason),
          LF_I("sessions", n));
    if (ret_count)
        *ret_count = n;
    return svc_ok();
}
