/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Implementation of ratelimit.h.
 */
#include "core/ratelimit.h"

#include <arpa/inet.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <string.h>

#include "base/log.h"
#include "core/mail.h"

/* prefix + the client's network: an IPv4 address as it is, an IPv6 one as
 * its /64 (one subscriber's usual share: an address per request costs an
 * IPv6 client nothing, a new /64 does). */
static void addr_key(char *out, size_t cap, const char *prefix, const struct svc_ctx *ctx)
{
    struct in6_addr a;
    char net[INET6_ADDRSTRLEN];
    if (inet_pton(AF_INET6, ctx->client_addr, &a) == 1) {
        memset(a.s6_addr + 8, 0, 8);
        if (inet_ntop(AF_INET6, &a, net, sizeof net)) {
            snprintf(out, cap, "%s%s/64", prefix, net);
            return;
        }
    }
    snprintf(out, cap, "%s%s", prefix, ctx->client_addr);
}

static struct svc_result limited(int64_t retry_after, const char *detail)
{
    return (struct svc_result){SVC_LIMITED, detail, retry_after > 0 ? retry_after : 1};
}

/* Add one to a per-address window counter; over the limit, take it back. */
static struct svc_result window_take(struct app *app, const char *key, unsigned limit,
                                     const char *detail)
{
    int64_t now = util_now(), n = 0, start = now;
    enum store_rc rc = store_counter_add_in_window(app->store, key, now, app->cfg->rate_window, 1,
                                                   &n, &start);
    if (rc != STORE_OK)
        return svc_store_failure(app, rc, "rate_limit");
    if (n > (int64_t)limit) {
        int64_t unused;
        store_counter_add(app->store, key, now, app->cfg->rate_window, -1, &unused);
        LOG(LOG_WARN, "rate_limited", LF_S("key", key));
        /* Retry-After: what is left of the window, at least a second. */
        int64_t left = start + app->cfg->rate_window - now;
        return limited(left < 1 ? 1 : left > app->cfg->rate_window ? app->cfg->rate_window : left,
                       detail);
    }
    return svc_ok();
}

void ratelimit_user_key(const char *username, char *out, size_t cap)
{
    /* Usernames are unique case-insensitively: so are their counters. */
    size_t o = (size_t)snprintf(out, cap, "login:user:");
    for (const char *p = username; *p && o + 1 < cap; p++)
        out[o++] = (*p >= 'A' && *p <= 'Z') ? (char)(*p + 32) : *p;
    out[o] = '\0';
}

bool ratelimit_unknown_name(const struct app *app, const char *ident,
                            char out[RATELIMIT_UNKNOWN_LEN])
{
    char folded[EMAIL_MAX + 1], hex[SHA256_HEX_LEN];
    size_t n = 0;
    for (; ident[n] && n < EMAIL_MAX; n++)
        folded[n] = (ident[n] >= 'A' && ident[n] <= 'Z') ? (char)(ident[n] + 32) : ident[n];
    /* "login:" apart from the mail limits' messages under the same key. */
    char msg[EMAIL_MAX + 8];
    int m = snprintf(msg, sizeof msg, "login:%.*s", (int)n, folded);
    bool ok = m > 0 && mail_key_hash(app, msg, (size_t)m, hex);
    OPENSSL_cleanse(folded, sizeof folded);
    OPENSSL_cleanse(msg, sizeof msg);
    if (ok)
        snprintf(out, RATELIMIT_UNKNOWN_LEN, "#%.32s", hex);
    return ok;
}

/* One failure counted on a back-off counter (store_login_attempt);
 * *ret_retry: the whole seconds to wait when the counter is blocking (0
 * when the attempt may go on). */
static enum store_rc backoff_take(struct app *app, const char *key, unsigned max_failures,
                                  int64_t *ret_retry, int64_t *ret_block_ms)
{
    const struct config *cfg = app->cfg;
    int64_t retry_ms = 0;
    enum store_rc rc = store_login_attempt(app->store, key, util_now_ms(), max_failures,
                                           cfg->login_lockout_base * 1000,
                                           cfg->login_lockout_max * 1000, &retry_ms, ret_block_ms);
    /* Retry-After is whole seconds: round up, never tell a client to come
     * back before the block ends. */
    *ret_retry = rc == STORE_OK ? (retry_ms + 999) / 1000 : 0;
    return rc;
}

static void refund_address(struct app *app, const struct login_limit *l)
{
    int64_t unused;
    if (l->addr_key[0])
        store_counter_add(app->store, l->addr_key, util_now(), app->cfg->rate_window, -1,
                          &unused);
}

/* The attempt stops at a back-off counter: not attempted after all, so
 * the counters it took are given back. */
static struct svc_result login_limited(struct app *app, const struct svc_ctx *ctx,
                                       const struct login_limit *l, enum store_rc rc,
                                       int64_t retry, const char *scope, const char *username,
                                       const char *detail)
{
    refund_address(app, l);
    if (rc != STORE_OK)
        return svc_store_failure(app, rc, "rate_limit");
    metrics_inc(&app->metrics.logins[LOGIN_LIMITED]);
    /* Which account is under attack: its username (a name no account has
     * is its keyed hash, never the text typed). */
    LOG(LOG_WARN, "login_rate_limited", LF_S("scope", scope), LF_S("username", username),
        LF_S("addr", ctx->client_addr), LF_S("request_id", ctx->request_id));
    return limited(retry, detail);
}

struct svc_result ratelimit_login_attempt(struct app *app, const struct svc_ctx *ctx,
                                          const char *username, struct login_limit *ret)
{
    const struct config *cfg = app->cfg;
    struct login_limit l = {0};
    addr_key(l.addr_key, sizeof l.addr_key, "login:addr:", ctx);
    struct svc_result res = window_take(app, l.addr_key, cfg->address_max_failures,
                                        "failed logins from this address");
    if (res.status != SVC_OK) {
        if (res.status == SVC_LIMITED)
            metrics_inc(&app->metrics.logins[LOGIN_LIMITED]);
        return res;
    }
    /* API.md: failures per address are slowed down after at most 10 in a
     * row, like those per username - but counted once known to be
     * failures (ratelimit_login_failed), not before the check: a burst of
     * right passwords from one address (a NAT, a test rig) is no run of
     * failures. The per-username counter and the window above count
     * before, atomically; they bound what parallel guesses get. */
    char seq[sizeof l.seq_key];
    addr_key(seq, sizeof seq, "login:addrseq:", ctx);
    int64_t failures = 0, blocked_until_ms = 0, now_ms = util_now_ms();
    enum store_rc rc = store_login_get(app->store, seq, &failures, &blocked_until_ms);
    int64_t retry = blocked_until_ms > now_ms ? (blocked_until_ms - now_ms + 999) / 1000 : 0;
    if (rc != STORE_OK || retry > 0)
        return login_limited(app, ctx, &l, rc, retry, "address", NULL,
                             "failed logins from this address");
    memcpy(l.seq_key, seq, sizeof seq);
    if (username) {
        char ukey[sizeof l.user_key];
        ratelimit_user_key(username, ukey, sizeof ukey);
        rc = backoff_take(app, ukey, cfg->login_max_failures, &retry, &l.user_block_ms);
        if (rc != STORE_OK || retry > 0)
            return login_limited(app, ctx, &l, rc, retry, "username", username,
                                 "failed logins for this account");
        memcpy(l.user_key, ukey, sizeof ukey);
    }
    *ret = l;
    return svc_ok();
}

void ratelimit_login_succeeded(struct app *app, const struct login_limit *l)
{
    if (l->user_key[0])
        store_login_reset(app->store, l->user_key);
    if (l->seq_key[0])
        store_login_reset(app->store, l->seq_key);
    int64_t unused;
    if (l->addr_key[0])
        store_counter_add(app->store, l->addr_key, util_now(), app->cfg->rate_window, -1,
                          &unused);
}

void ratelimit_login_failed(struct app *app, const struct login_limit *l)
{
    const struct config *cfg = app->cfg;
    if (!l->seq_key[0])
        return;
    /* The address's run counts the accounts it failed on: only a
     * username's first failure in a row adds to it. Guesses at one account
     * are that account's back-off; counting them here too would let ten
     * wrong passwords for one name lock everyone behind the same address
     * (a NAT, an office) out of every other account. */
    int64_t failures = 0, blocked_until = 0, unused;
    if (l->user_key[0] &&
        (store_login_get(app->store, l->user_key, &failures, &blocked_until) != STORE_OK ||
         failures > 1))
        return;
    store_login_attempt(app->store, l->seq_key, util_now_ms(), cfg->address_consecutive_failures,
                        cfg->login_lockout_base * 1000, cfg->login_lockout_max * 1000, &unused,
                        NULL);
}

void ratelimit_login_refund(struct app *app, const struct login_limit *l)
{
    if (l->user_key[0])
        store_login_refund(app->store, l->user_key, app->cfg->login_max_failures,
                           l->user_block_ms);
    refund_address(app, l);
}

void ratelimit_login_first_factor_ok(struct app *app, const struct login_limit *l)
{
    ratelimit_login_refund(app, l);
}

struct svc_result ratelimit_take(struct app *app, const struct svc_ctx *ctx, enum rate_kind kind)
{
    char key[128];
    switch (kind) {
    case RATE_SIGNUP:
        addr_key(key, sizeof key, "signup:addr:", ctx);
        return window_take(app, key, app->cfg->signup_per_address, "signups from this address");
    case RATE_REFRESH:
        addr_key(key, sizeof key, "refresh:addr:", ctx);
        return window_take(app, key, app->cfg->refresh_per_address, "refreshes from this address");
    case RATE_CHALLENGE: /* passkey challenges, stored until they expire */
        addr_key(key, sizeof key, "challenge:addr:", ctx);
        return window_take(app, key, app->cfg->refresh_per_address,
                           "passkey challenges from this address");
    }
    return svc_fail(SVC_ERROR, NULL);
}

struct svc_result ratelimit_mail(struct app *app, const struct svc_ctx *ctx,
                                 enum mail_subject kind, const char *subject)
{
    char key[128];
    addr_key(key, sizeof key, "mail:addr:", ctx);
    struct svc_result r =
        window_take(app, key, app->cfg->mail_per_address, "mail requests from this address");
    if (r.status != SVC_OK || !subject)
        return r;
    /* The subject may be an address someone typed: only a hash keyed with
     * a server secret is kept (and logged), which no one can match against
     * a guessed address without the database's secrets. */
    static const char *const kinds[] = {"account", "identifier", "signup"};
    char msg[320], hex[SHA256_HEX_LEN];
    int m = snprintf(msg, sizeof msg, "ratelimit%c%s%c", 0, kinds[kind], 0);
    for (size_t i = 0; subject[i] && (size_t)m + 1 < sizeof msg; i++)
        msg[m++] = (subject[i] >= 'A' && subject[i] <= 'Z') ? (char)(subject[i] + 32) : subject[i];
    if (!mail_key_hash(app, msg, (size_t)m, hex))
        return svc_fail(SVC_ERROR, NULL);
    snprintf(key, sizeof key, "mail:subject:%.32s", hex);
    r = window_take(app, key, app->cfg->mail_per_account, "mail requests for this account");
    if (r.status != SVC_OK) {
        /* Not sent after all: the address gets its request back. */
        int64_t unused;
        addr_key(key, sizeof key, "mail:addr:", ctx);
        store_counter_add(app->store, key, util_now(), app->cfg->rate_window, -1, &unused);
    }
    return r;
}
