/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Rate limits as the handlers apply them. Counters live in the shared
 * storage and are changed by single atomic operations there, so limits hold
 * across threads and instances:
 * - per username: consecutive failed logins; from the Nth on, exponential
 *   back-off (JWTD_LOGIN_MAX_FAILURES, JWTD_LOGIN_BACKOFF[_MAX]);
 * - per client address: failed logins per window (JWTD_ADDRESS_MAX_FAILURES,
 *   JWTD_RATE_WINDOW), signups and refreshes per window.
 * Attempts are counted before the password is checked and given back after
 * a success, which is what makes 100 parallel guesses count as 100.
 * When storage is unavailable the limit cannot be checked and the request
 * is answered 503 (fail closed).
 */
#include <stdio.h>
#include <string.h>

#include "api/common.h"
#include "core/log.h"

static void too_many(struct request *r, int64_t retry_after, const char *what)
{
    char ra[24];
    snprintf(ra, sizeof ra, "%lld", (long long)(retry_after > 0 ? retry_after : 1));
    respond_header(r, "Retry-After", ra);
    char msg[160];
    snprintf(msg, sizeof msg, "Too many %s; try again in %s seconds.", what, ra);
    respond_error(r, 429, "too_many_attempts", msg);
}

static void addr_key(struct request *r, const char *kind, char *out, size_t cap)
{
    snprintf(out, cap, "%s:addr:%s", kind, request_client_addr(r));
}

/* Add one to a per-address window counter; over the limit, take it back
 * and answer 429. */
static bool window_take(struct request *r, const char *key, unsigned limit, const char *what)
{
    struct app *app = r->app;
    int64_t now = util_now(), n = 0;
    enum store_rc rc = STORE_CALL(app->store, counter_add, key, now, app->cfg->rate_window, 1, &n);
    if (rc != STORE_OK) {
        respond_store_error(r, rc);
        return false;
    }
    if (n > (int64_t)limit) {
        int64_t unused;
        STORE_CALL(app->store, counter_add, key, now, app->cfg->rate_window, -1, &unused);
        LOGE(LOG_WARN, "rate_limited", "key", key);
        too_many(r, app->cfg->rate_window, what);
        return false;
    }
    return true;
}

bool ratelimit_login_attempt(struct request *r, const char *username, char *key, size_t cap)
{
    struct app *app = r->app;
    const struct config *cfg = app->cfg;
    key[0] = '\0';
    char akey[96];
    addr_key(r, "login", akey, sizeof akey);
    if (!window_take(r, akey, cfg->address_max_failures, "failed logins from this address")) {
        if (r->status == 429)
            metrics_inc(&app->metrics.logins[LOGIN_LIMITED]);
        return false;
    }
    if (!username)
        return true;
    /* Usernames are unique case-insensitively: so are their counters. */
    size_t o = (size_t)snprintf(key, cap, "login:user:");
    for (const char *p = username; *p && o + 1 < cap; p++)
        key[o++] = (*p >= 'A' && *p <= 'Z') ? (char)(*p + 32) : *p;
    key[o] = '\0';
    int64_t retry = 0;
    enum store_rc rc = STORE_CALL(app->store, login_attempt, key, util_now(),
                                  cfg->login_max_failures, cfg->login_lockout_base,
                                  cfg->login_lockout_max, &retry);
    if (rc != STORE_OK || retry > 0) {
        /* Not attempted after all: the address keeps its attempt. */
        int64_t unused;
        STORE_CALL(app->store, counter_add, akey, util_now(), cfg->rate_window, -1, &unused);
        key[0] = '\0';
    }
    if (rc != STORE_OK) {
        respond_store_error(r, rc);
        return false;
    }
    if (retry > 0) {
        metrics_inc(&app->metrics.logins[LOGIN_LIMITED]);
        LOGE(LOG_WARN, "login_rate_limited", "scope", "username", "addr", request_client_addr(r));
        too_many(r, retry, "failed logins for this account");
        return false;
    }
    return true;
}

static void refund_address(struct request *r)
{
    char akey[96];
    int64_t unused;
    addr_key(r, "login", akey, sizeof akey);
    STORE_CALL(r->app->store, counter_add, akey, util_now(), r->app->cfg->rate_window, -1,
               &unused);
}

void ratelimit_login_succeeded(struct request *r, const char *key)
{
    if (key[0])
        STORE_CALL(r->app->store, login_reset, key);
    refund_address(r);
}

void ratelimit_login_refund(struct request *r, const char *key)
{
    if (key[0])
        STORE_CALL(r->app->store, login_refund, key, r->app->cfg->login_max_failures);
    refund_address(r);
}

bool ratelimit_signup(struct request *r)
{
    char key[96];
    addr_key(r, "signup", key, sizeof key);
    return window_take(r, key, r->app->cfg->signup_per_address, "signups from this address");
}

bool ratelimit_refresh(struct request *r)
{
    char key[96];
    addr_key(r, "refresh", key, sizeof key);
    return window_take(r, key, r->app->cfg->refresh_per_address, "refreshes from this address");
}
