/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The access-token check of the hot path (/auth/verify, /auth/me and every
 * Bearer route): verify cache, then libjwtd, then the revoked-session set.
 * Never touches storage, nor waits on a lock held while storage is read (an
 * unknown kid only asks the background thread to re-read the ring). Also
 * the helper that records a revocation.
 */
#include "core/app.h"

#include <stdio.h>
#include <string.h>

#include "base/log.h"
#include "base/util.h"

static bool copy_claim(char *dst, size_t cap, const char *v)
{
    if (!v)
        return false;
    size_t n = strlen(v);
    if (n >= cap)
        return false;
    memcpy(dst, v, n + 1);
    return true;
}

bool access_check(struct app *app, const char *token, size_t len, int64_t now,
                  struct identity *ret_id, const char **ret_reason)
{
    if (len > JWTD_MAX_TOKEN_LEN) {
        *ret_reason = jwtd_strerror(JWTD_ERR_TOO_LARGE);
        return false;
    }
    struct vcache_value v;
    uint64_t gen = keyring_generation(app->keys);
    if (vcache_get(app->vcache, token, len, gen, &v)) {
        metrics_inc(&app->metrics.vcache_hits);
        /* As the library computes it (jwt.c): exp + leeway could overflow
         * for an exp near INT64_MAX, and a cached token would then read as
         * expired where the first check let it pass. */
        if (now >= INT64_MIN + app->cfg->leeway && v.exp <= now - app->cfg->leeway) {
            *ret_reason = jwtd_strerror(JWTD_ERR_EXPIRED);
            return false;
        }
    } else {
        metrics_inc(&app->metrics.vcache_misses);
        jwtd_claims *c = NULL;
        jwtd_err e = keyring_verify(app->keys, app->verifier, token, len, now, &c, &gen);
        /* An unknown kid may be a key another instance just started to sign
         * with. Re-reading the ring is a storage query, which this thread
         * (an HTTP one, for /auth/verify) must never wait on: the
         * background thread does it, and this token is refused now; the
         * client's next try, a moment later, finds the key. */
        if (e == JWTD_ERR_KID)
            app_request_ring_reload(app);
        if (e != JWTD_OK) {
            *ret_reason = jwtd_strerror(e);
            return false;
        }
        const char *name = jwtd_claims_username(c);
        bool ok = copy_claim(v.sub, sizeof v.sub, jwtd_claims_sub(c)) && util_is_uuid(v.sub) &&
                  copy_claim(v.sid, sizeof v.sid, jwtd_claims_sid(c)) && util_is_uuid(v.sid) &&
                  copy_claim(v.username, sizeof v.username, name ? name : "");
        v.exp = jwtd_claims_exp(c);
        jwtd_claims_free(c);
        if (!ok) {
            *ret_reason = "token subject or session is malformed";
            return false;
        }
        vcache_put(app->vcache, token, len, gen, &v);
    }
    if (revoked_contains(app->revoked, v.sid)) {
        *ret_reason = "token has been revoked";
        return false;
    }
    memcpy(ret_id->sub, v.sub, sizeof ret_id->sub);
    memcpy(ret_id->sid, v.sid, sizeof ret_id->sid);
    memcpy(ret_id->username, v.username, sizeof ret_id->username);
    ret_id->exp = v.exp;
    return true;
}

void app_note_revoked(struct app *app, const char *sid, int64_t expires_ms)
{
    if (!revoked_add(app->revoked, sid, expires_ms))
        LOG(LOG_ERROR, "revocation_not_recorded", LF_S("sid", sid), LF_S("reason", "out of memory"));
    metrics_inc(&app->metrics.revocations);
}
