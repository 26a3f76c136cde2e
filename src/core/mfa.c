/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Implementation of mfa.h. TOTP secrets are kept as hex in storage (they
 * must be readable to check codes); recovery codes and tickets only as
 * hashes.
 */
#include "core/mfa.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "base/log.h"
#include "core/accounts.h"
#include "core/audit.h"
#include "core/mail.h"
#include "core/passkeys.h"
#include "core/qrsvg.h"
#include "core/ratelimit.h"
#include "core/sessions.h"
#include "core/totp.h"
#include "lib/jwtd_internal.h"

#define TICKET_MAX_ATTEMPTS 5

static const struct svc_result TICKET_BAD = {
    SVC_INVALID_GRANT, "The second-step ticket is unknown, used or expired; log in again.", 0};

/* ------------------------------------------------------------ tickets --- */

static bool ticket_key(const char *ticket, size_t len, char out[96])
{
    char h[SHA256_HEX_LEN];
    if (len == 0 || len > 128 || !mail_token_hash(ticket, len, h))
        return false;
    snprintf(out, 96, "mfa:%s", h);
    return true;
}

static void count_passkey(void *ctx, const struct store_passkey *p)
{
    (void)p;
    (*(int *)ctx)++;
}

unsigned mfa_methods(struct app *app, const char *user_id, struct svc_result *ret_res)
{
    unsigned m = 0;
    struct store_totp t;
    enum store_rc rc = store_totp_get(app->store, user_id, &t);
    if (rc == STORE_OK && t.confirmed)
        m |= MFA_TOTP | MFA_RECOVERY;
    OPENSSL_cleanse(&t, sizeof t);
    if (rc == STORE_OK || rc == STORE_NOT_FOUND) {
        int n = 0;
        rc = store_recovery_codes_left(app->store, user_id, &n);
        if (rc == STORE_OK && n == 0)
            m &= ~(unsigned)MFA_RECOVERY;
    }
    if (rc == STORE_OK || rc == STORE_NOT_FOUND) {
        int n = 0;
        rc = store_passkeys_list(app->store, user_id, count_passkey, &n);
        if (rc == STORE_OK && n > 0)
            m |= MFA_PASSKEY;
    }
    *ret_res = (rc == STORE_OK || rc == STORE_NOT_FOUND) ? svc_ok()
                                                         : svc_store_failure(app, rc, "mfa");
    return m;
}

json_t *mfa_methods_json(unsigned methods)
{
    json_t *a = json_array();
    if (methods & MFA_TOTP)
        json_array_append_new(a, json_string("totp"));
    if (methods & MFA_RECOVERY)
        json_array_append_new(a, json_string("recovery_code"));
    if (methods & MFA_PASSKEY)
        json_array_append_new(a, json_string("passkey"));
    return a;
}

/* A mark of the stored password hash (128 bits of its SHA-256, hex): a
 * ticket carries the mark of the hash its password was checked against, so
 * that a password change or reset in between voids it. */
static bool hash_mark(const char *hash, char out[33])
{
    uint8_t d[32];
    unsigned int n = 0;
    if (!hash || !EVP_Digest(hash, strlen(hash), d, &n, EVP_sha256(), NULL) || n != 32)
        return false;
    util_hex(d, 16, out);
    return true;
}

struct svc_result mfa_ticket_new(struct app *app, const struct store_user *u, unsigned amr,
                                 char out[MFA_TICKET_LEN + 1])
{
    uint8_t raw[32];
    struct store_ephemeral e;
    memset(&e, 0, sizeof e);
    char value[96], mark[33];
    if (!hash_mark(u->password_hash, mark))
        return svc_fail(SVC_ERROR, NULL);
    snprintf(value, sizeof value, "{\"amr\":%u,\"pw\":\"%s\"}", amr, mark);
    snprintf(e.kind, sizeof e.kind, "mfa");
    snprintf(e.user_id, sizeof e.user_id, "%s", u->id);
    e.value = value;
    e.expires_at = util_now() + app->cfg->mfa_ticket_ttl;
    bool ok = util_random(raw, sizeof raw) &&
              jwtd__b64url_encode(raw, sizeof raw, out, MFA_TICKET_LEN + 1) == MFA_TICKET_LEN &&
              ticket_key(out, MFA_TICKET_LEN, e.key);
    OPENSSL_cleanse(raw, sizeof raw);
    if (!ok)
        return svc_fail(SVC_ERROR, NULL);
    enum store_rc rc = store_ephemeral_put(app->store, &e);
    if (rc != STORE_OK) {
        OPENSSL_cleanse(out, MFA_TICKET_LEN + 1);
        return svc_store_failure(app, rc, "mfa_ticket");
    }
    return svc_ok();
}

/* The account of a live ticket e, and the methods it proved so far: one
 * of kind "mfa", not expired, with fewer than TICKET_MAX_ATTEMPTS wrong
 * factors, given for the account's password as it is now. */
static struct svc_result ticket_user(struct app *app, const struct store_ephemeral *e,
                                     bool keep_hash, struct store_user *ret_user,
                                     unsigned *ret_amr)
{
    bool live = strcmp(e->kind, "mfa") == 0 && util_now() < e->expires_at &&
                e->attempts < TICKET_MAX_ATTEMPTS;
    json_t *v = live ? json_loads(e->value, 0, NULL) : NULL;
    unsigned amr = (unsigned)json_integer_value(json_object_get(v, "amr"));
    const char *pw_mark = json_string_value(json_object_get(v, "pw"));
    char want[33] = "";
    snprintf(want, sizeof want, "%s", pw_mark ? pw_mark : "");
    json_decref(v);
    if (!live)
        return TICKET_BAD;
    struct store_user u = {0};
    enum store_rc rc = store_user_by_id(app->store, e->user_id, &u);
    if (rc == STORE_NOT_FOUND)
        return TICKET_BAD;
    if (rc != STORE_OK)
        return svc_store_failure(app, rc, "user_read");
    char mark[33];
    bool same = hash_mark(u.password_hash, mark) && CRYPTO_memcmp(mark, want, sizeof mark) == 0;
    /* The hash stays here, but for a second step: its session is opened
     * only while the hash is still this one (store_session_create). */
    if (!same || !keep_hash)
        store_user_clear(&u);
    if (!same) /* the password changed since the ticket was made */
        return TICKET_BAD;
    *ret_user = u;
    if (ret_amr)
        *ret_amr = amr ? amr : AMR_PWD;
    return svc_ok();
}

/* The same for the ticket stored under key (left in place). */
static struct svc_result ticket_account(struct app *app, const char key[96], bool keep_hash,
                                        struct store_user *ret_user, unsigned *ret_amr)
{
    struct store_ephemeral e;
    enum store_rc rc = store_ephemeral_get(app->store, key, &e);
    if (rc == STORE_NOT_FOUND)
        return TICKET_BAD;
    if (rc != STORE_OK)
        return svc_store_failure(app, rc, "mfa_ticket");
    struct svc_result r = ticket_user(app, &e, keep_hash, ret_user, ret_amr);
    store_ephemeral_clear(&e);
    return r;
}

struct svc_result mfa_ticket_peek(struct app *app, const char *ticket, size_t len,
                                  struct store_user *ret_user, unsigned *ret_amr)
{
    char key[96];
    if (!ticket_key(ticket, len, key))
        return TICKET_BAD;
    return ticket_account(app, key, false, ret_user, ret_amr);
}

struct svc_result mfa_step_begin(struct app *app, const struct svc_ctx *ctx, const char *ticket,
                                 size_t len, struct mfa_step *st)
{
    memset(st, 0, sizeof *st);
    if (!ticket_key(ticket, len, st->key))
        return TICKET_BAD;
    /* Taken out of storage first, atomically, and held while its factor
     * is checked: another try with it meanwhile (codes sent in parallel,
     * a form sent twice) finds none - nothing of it checked, spent or
     * counted - and parallel guesses get one factor checked at a time.
     * Only a wrong factor counts as a try (mfa_step_fail). */
    enum store_rc rc = store_ephemeral_take(app->store, st->key, &st->held);
    if (rc == STORE_NOT_FOUND)
        return TICKET_BAD;
    if (rc != STORE_OK)
        return svc_store_failure(app, rc, "mfa_ticket");
    st->holding = true;
    /* Expired, out of tries, or given for a password the account no
     * longer has: void (not put back). */
    struct svc_result r = ticket_user(app, &st->held, true, &st->user, NULL);
    if (r.status != SVC_OK) {
        if (r.status == SVC_INVALID_GRANT)
            st->holding = false;
        return r;
    }
    /* A disabled account is refused before its factor is checked, so that
     * a recovery code is not spent on a sign-in that cannot happen; the
     * ticket is void all the same. */
    r = accounts_may_sign_in(app, ctx, &st->user);
    if (r.status != SVC_OK) {
        st->holding = false;
        return r;
    }
    /* Second-step guesses count like password guesses, whatever the
     * factor: while the account is blocked, no factor is checked (and the
     * ticket goes back, untried). */
    r = ratelimit_login_attempt(app, ctx, st->user.username, &st->limit);
    if (r.status != SVC_OK)
        return r;
    return svc_ok();
}

/* The ticket goes back to storage: after a try that reached no verdict,
 * as it was; after a wrong factor, with that try counted, unless it was
 * its last. */
static void step_release(struct app *app, struct mfa_step *st, bool wrong)
{
    if (st->holding && wrong)
        st->held.attempts++;
    if (st->holding && st->held.attempts < TICKET_MAX_ATTEMPTS)
        store_ephemeral_put(app->store, &st->held);
    st->holding = false;
}

struct svc_result mfa_step_fail(struct app *app, const struct svc_ctx *ctx, struct mfa_step *st,
                                const char *why)
{
    /* The back-off counts it (the attempt stays counted). */
    ratelimit_login_failed(app, &st->limit);
    memset(&st->limit, 0, sizeof st->limit);
    step_release(app, st, true);
    int attempts = st->held.attempts;
    metrics_inc(&app->metrics.logins[LOGIN_FAILED]);
    /* The account is known (the ticket's): right password, wrong second
     * factor is the sign of a stolen password, to be seen per account. */
    AUDIT(LOG_INFO, ctx, "login_failed", "refused", st->user.id[0] ? st->user.id : NULL,
          LF_S("step", "second_factor"), LF_S("reason", why), LF_I("ticket_attempts", attempts));
    bool code = strcmp(why, "totp") == 0 || strcmp(why, "recovery") == 0;
    if (attempts >= TICKET_MAX_ATTEMPTS)
        return svc_fail(SVC_BAD_SECOND_FACTOR,
                        code ? "The code is wrong; too many tries, log in again."
                             : "The passkey was refused; too many tries, log in again.");
    return svc_fail(SVC_BAD_SECOND_FACTOR, code ? "The code is wrong." : "The passkey was refused.");
}

struct svc_result mfa_step_finish(struct app *app, const struct svc_ctx *ctx,
                                  struct mfa_step *st, unsigned amr,
                                  struct store_user *ret_user, struct session_grant *ret_grant)
{
    json_t *v = json_loads(st->held.value, 0, NULL);
    unsigned first = (unsigned)json_integer_value(json_object_get(v, "amr"));
    json_decref(v);
    st->holding = false; /* used up, whatever comes next */
    ratelimit_login_succeeded(app, &st->limit);
    memset(&st->limit, 0, sizeof st->limit);
    struct svc_result r =
        sessions_open(app, ctx, &st->user, (first ? first : AMR_PWD) | amr, ret_grant);
    store_user_clear(&st->user); /* the hash: not the caller's */
    if (r.status == SVC_BAD_CREDENTIALS) /* the password changed meanwhile */
        return TICKET_BAD;
    if (r.status != SVC_OK)
        return r;
    metrics_inc(&app->metrics.logins[LOGIN_OK]);
    AUDIT(LOG_INFO, ctx, "login", "ok", st->user.id, LF_S("sid", ret_grant->sid),
          LF_S("second_factor", (amr & AMR_OTP) ? "otp" : "passkey"));
    *ret_user = st->user;
    memset(&st->user, 0, sizeof st->user); /* now the caller's */
    return svc_ok();
}

void mfa_step_end(struct app *app, struct mfa_step *st)
{
    if (st->holding) {
        ratelimit_login_refund(app, &st->limit);
        step_release(app, st, false);
    }
    store_ephemeral_clear(&st->held);
    store_user_clear(&st->user);
}

/* ------------------------------------------------------- second step --- */

/* What storage keeps of a recovery code: keyed (HMAC under the mail key)
 * since codes have some 50 bits, within reach of an offline search of a
 * plain hash; codes made before are found by their plain SHA-256
 * (legacy). */
static bool recovery_hash(const struct app *app, const char *user_id, const char *code,
                          size_t len, bool legacy, char out[SHA256_HEX_LEN])
{
    /* Codes are shown as xxxxx-xxxxx; spaces, dashes and case do not
     * matter when typed. */
    char norm[64], msg[UUID_STR_LEN + 64];
    size_t n = 0;
    for (size_t i = 0; i < len && n + 1 < sizeof norm; i++) {
        char c = code[i];
        if (c == '-' || c == ' ')
            continue;
        norm[n++] = (c >= 'A' && c <= 'Z') ? (char)(c + 32) : c;
    }
    norm[n] = '\0';
    int m = snprintf(msg, sizeof msg, "%s%s:%s", legacy ? "" : "jwtd-recovery:", user_id, norm);
    bool ok = n > 0 && m > 0 && (size_t)m < sizeof msg &&
              (legacy ? mail_token_hash(msg, (size_t)m, out)
                      : mail_key_hash(app, msg, (size_t)m, out));
    OPENSSL_cleanse(norm, sizeof norm);
    OPENSSL_cleanse(msg, sizeof msg);
    return ok;
}

/* Check a TOTP code for user_id and record its step (used once). */
static struct svc_result totp_check(struct app *app, const char *user_id, const char *code,
                                    size_t len, bool confirming,
                                    const char (*codes)[SHA256_HEX_LEN], int ncodes)
{
    struct store_totp t;
    enum store_rc rc = store_totp_get(app->store, user_id, &t);
    if (rc != STORE_OK && rc != STORE_NOT_FOUND)
        return svc_store_failure(app, rc, "totp");
    bool found = rc == STORE_OK, on = found && t.confirmed;
    bool pending = found && !on && util_now() < t.created_at + MFA_ENROLMENT_TTL;
    if (confirming && !pending) {
        OPENSSL_cleanse(&t, sizeof t);
        return on ? svc_fail(SVC_ALREADY_ENABLED, "TOTP is set up already.")
                  : svc_fail(SVC_NOT_FOUND, "There is no authenticator set-up to confirm (none "
                                            "was started, or it expired): start it again.");
    }
    if (!confirming && !on) {
        OPENSSL_cleanse(&t, sizeof t);
        return svc_fail(SVC_BAD_SECOND_FACTOR, "No TOTP is set up.");
    }
    uint8_t secret[64];
    size_t slen = 0;
    char digits[8];
    size_t dn = 0;
    for (size_t i = 0; i < len && dn < sizeof digits - 1; i++)
        if (code[i] != ' ')
            digits[dn++] = code[i];
    digits[dn] = '\0';
    int64_t step = 0;
    bool ok = util_unhex(t.secret_hex, secret, sizeof secret, &slen) &&
              totp_verify(secret, slen, digits, dn, util_now(), 1, t.last_step, &step) == TOTP_OK;
    OPENSSL_cleanse(secret, sizeof secret);
    OPENSSL_cleanse(digits, sizeof digits);
    if (!ok) {
        OPENSSL_cleanse(&t, sizeof t);
        return svc_fail(SVC_BAD_SECOND_FACTOR, "The code is wrong.");
    }
    /* The set-up the code was checked against, by its secret: a set-up
     * begun again in the same second has another. Only a confirmation
     * names it; a login's query carries no secret (a database's statement
     * log would keep it). */
    rc = store_totp_accept(app->store, user_id, step, confirming,
                           confirming ? t.secret_hex : NULL, codes, ncodes);
    OPENSSL_cleanse(&t, sizeof t);
    if (rc == STORE_NOT_FOUND && confirming) {
        /* Another confirmation came first, or the set-up was removed. */
        struct store_totp now;
        bool now_on = store_totp_get(app->store, user_id, &now) == STORE_OK && now.confirmed;
        OPENSSL_cleanse(&now, sizeof now);
        return now_on ? svc_fail(SVC_ALREADY_ENABLED,
                             "TOTP was confirmed a moment ago by another request, which showed "
                             "its recovery codes.")
                  : svc_fail(SVC_NOT_FOUND, "There is no authenticator set-up to confirm: "
                                            "start it again.");
    }
    if (rc == STORE_NOT_FOUND) /* another request used this step a moment ago */
        return svc_fail(SVC_BAD_SECOND_FACTOR, "The code was used already.");
    if (rc != STORE_OK)
        return svc_store_failure(app, rc, "totp");
    return svc_ok();
}

struct svc_result mfa_complete(struct app *app, const struct svc_ctx *ctx, const char *ticket,
                               size_t tlen, enum mfa_method method, const char *code, size_t clen,
                               struct store_user *ret_user, struct session_grant *ret_grant)
{
    struct mfa_step st;
    struct svc_result r = mfa_step_begin(app, ctx, ticket, tlen, &st);
    if (r.status == SVC_OK && method == MFA_TOTP) {
        r = totp_check(app, st.user.id, code, clen, false, NULL, 0);
    } else if (r.status == SVC_OK) {
        char h[SHA256_HEX_LEN];
        enum store_rc rc = STORE_NOT_FOUND;
        for (int legacy = 0; legacy <= 1 && rc == STORE_NOT_FOUND; legacy++)
            if (recovery_hash(app, st.user.id, code, clen, legacy, h))
                rc = store_recovery_code_use(app->store, st.user.id, h);
        r = rc == STORE_OK          ? svc_ok()
            : rc == STORE_NOT_FOUND ? svc_fail(SVC_BAD_SECOND_FACTOR, "The code is wrong.")
                                    : svc_store_failure(app, rc, "recovery_code");
        if (rc == STORE_OK) {
            int left = 0;
            store_recovery_codes_left(app->store, st.user.id, &left);
            AUDIT(LOG_INFO, ctx, "recovery_code_used", "ok", st.user.id, LF_I("left", left));
        }
    }
    if (r.status == SVC_BAD_SECOND_FACTOR && st.holding)
        r = mfa_step_fail(app, ctx, &st, method == MFA_TOTP ? "totp" : "recovery");
    else if (r.status == SVC_OK)
        r = mfa_step_finish(app, ctx, &st, AMR_OTP, ret_user, ret_grant);
    mfa_step_end(app, &st);
    return r;
}

/* ------------------------------------------------------------- TOTP --- */

const char *mfa_site_name(const struct config *cfg, char *buf, size_t cap)
{
    if (cfg->site_name)
        return cfg->site_name;
    if (config_public_host(cfg, buf, cap))
        return buf;
    const char *host = strstr(cfg->issuer, "://");
    host = host ? host + 3 : cfg->issuer;
    snprintf(buf, cap, "%.*s", (int)strcspn(host, "/:"), host);
    return buf;
}

static void enroll_then(struct svc_op *op)
{
    struct app *app = op->app;
    uint8_t secret[TOTP_SECRET_BYTES];
    char b32[64], uri[1024], sitebuf[300];
    struct store_totp t = {.confirmed = false, .last_step = -1, .created_at = util_now()};
    snprintf(t.user_id, sizeof t.user_id, "%s", op->user.id);
    bool ok = totp_secret_new(secret) && totp_base32_encode(secret, sizeof secret, b32, sizeof b32) &&
              totp_uri(secret, sizeof secret, mfa_site_name(app->cfg, sitebuf, sizeof sitebuf),
                       op->user.username, uri, sizeof uri);
    util_hex(secret, sizeof secret, t.secret_hex);
    OPENSSL_cleanse(secret, sizeof secret);
    char *svg = NULL;
    size_t svglen = 0;
    if (ok)
        ok = qrsvg_render(uri, "QR code to scan with an authenticator app", &svg, &svglen);
    enum store_rc rc = ok ? store_totp_begin(app->store, &t) : STORE_ERROR;
    OPENSSL_cleanse(&t, sizeof t);
    if (rc == STORE_OK)
        op->data = json_pack("{s:s, s:s, s:s}", "secret", b32, "otpauth_uri", uri, "qr_svg", svg);
    OPENSSL_cleanse(b32, sizeof b32);
    OPENSSL_cleanse(uri, sizeof uri);
    if (svg) {
        OPENSSL_cleanse(svg, svglen);
        free(svg);
    }
    if (rc == STORE_CONFLICT)
        op->res = svc_fail(SVC_ALREADY_ENABLED, "TOTP is set up already; remove it first.");
    else if (rc != STORE_OK)
        op->res = ok ? svc_store_failure(app, rc, "totp") : svc_fail(SVC_ERROR, NULL);
    else if (!op->data)
        op->res = svc_fail(SVC_ERROR, NULL);
    else
        AUDIT0(LOG_INFO, &op->ctx, "totp_enrolment_started", "ok", op->user.id);
}

struct svc_op *mfa_totp_enroll(struct app *app, const struct svc_ctx *ctx,
                               const struct identity *who, const char *password, size_t plen)
{
    return accounts_reconfirm(app, ctx, who, password, plen, enroll_then, "totp_enrolment");
}

/* Ten fresh recovery codes: the shown text into the array, the hashes to
 * store into hashes. */
static bool new_codes(const struct app *app, const char *user_id, json_t *shown,
                      char hashes[][SHA256_HEX_LEN])
{
    static const char alphabet[] = "abcdefghjkmnpqrstuvwxyz23456789"; /* no 0/o, 1/l/i */
    for (int i = 0; i < MFA_RECOVERY_CODES; i++) {
        uint8_t raw[10];
        char code[12];
        if (!util_random(raw, sizeof raw))
            return false;
        for (int k = 0, o = 0; k < 10; k++) {
            code[o++] = alphabet[raw[k] % (sizeof alphabet - 1)];
            if (k == 4)
                code[o++] = '-';
        }
        code[11] = '\0';
        bool ok = recovery_hash(app, user_id, code, 11, false, hashes[i]) &&
                  json_array_append_new(shown, json_string(code)) == 0;
        OPENSSL_cleanse(raw, sizeof raw);
        OPENSSL_cleanse(code, sizeof code);
        if (!ok)
            return false;
    }
    return true;
}

struct svc_result mfa_totp_confirm(struct app *app, const struct svc_ctx *ctx,
                                   const struct identity *who, const char *code, size_t len,
                                   json_t **ret_codes)
{
    /* Only the holder of the new secret knows the code, but whoever holds
     * a stolen access token may guess: each guess counts against the
     * account's login back-off, like a password (and the set-up expires,
     * MFA_ENROLMENT_TTL). */
    struct store_user u;
    struct svc_result r = accounts_get(app, who, &u);
    if (r.status != SVC_OK)
        return r;
    struct login_limit lim;
    r = ratelimit_login_attempt(app, ctx, u.username, &lim);
    store_user_clear(&u);
    if (r.status != SVC_OK)
        return r;
    struct svc_result mr;
    unsigned had = mfa_methods(app, who->sub, &mr);
    if (mr.status != SVC_OK) {
        ratelimit_login_refund(app, &lim);
        return mr;
    }
    json_t *shown = json_array();
    char hashes[MFA_RECOVERY_CODES][SHA256_HEX_LEN];
    if (!shown || !new_codes(app, who->sub, shown, hashes)) {
        json_decref(shown);
        ratelimit_login_refund(app, &lim);
        return svc_fail(SVC_ERROR, NULL);
    }
    r = totp_check(app, who->sub, code, len, true, (const char(*)[SHA256_HEX_LEN])hashes,
                   MFA_RECOVERY_CODES);
    OPENSSL_cleanse(hashes, sizeof hashes);
    if (r.status == SVC_BAD_SECOND_FACTOR)
        ratelimit_login_failed(app, &lim);
    else
        ratelimit_login_refund(app, &lim); /* no guess, or a right one: no login either */
    if (r.status != SVC_OK) {
        json_decref(shown);
        return r;
    }
    AUDIT0(LOG_INFO, ctx, "totp_enabled", "ok", who->sub);
    mfa_factor_added(app, ctx, who, had);
    *ret_codes = shown;
    return svc_ok();
}

static void remove_then(struct svc_op *op)
{
    enum store_rc rc = store_totp_delete(op->app->store, op->user.id);
    if (rc != STORE_OK) {
        op->res = svc_store_failure(op->app, rc, "totp");
        return;
    }
    AUDIT0(LOG_INFO, &op->ctx, "totp_removed", "ok", op->user.id);
}

struct svc_op *mfa_totp_remove(struct app *app, const struct svc_ctx *ctx,
                               const struct identity *who, const char *password, size_t plen)
{
    return accounts_reconfirm(app, ctx, who, password, plen, remove_then, "totp_removal");
}

static void renew_then(struct svc_op *op)
{
    struct store_totp t;
    enum store_rc rc = store_totp_get(op->app->store, op->user.id, &t);
    bool on = rc == STORE_OK && t.confirmed;
    OPENSSL_cleanse(&t, sizeof t);
    int64_t gen = op->arg ? *(const int64_t *)op->arg : -1;
    if (!on) {
        op->res = rc == STORE_OK || rc == STORE_NOT_FOUND
                      ? svc_fail(SVC_NOT_FOUND, "Recovery codes come with TOTP, which is not set up.")
                      : svc_store_failure(op->app, rc, "totp");
        return;
    }
    json_t *shown = json_array();
    char hashes[MFA_RECOVERY_CODES][SHA256_HEX_LEN];
    if (!shown || !new_codes(op->app, op->user.id, shown, hashes)) {
        json_decref(shown);
        op->res = svc_fail(SVC_ERROR, NULL);
        return;
    }
    /* Compare-and-set against the codes as they were when the renewal was
     * asked for: of renewals asked for at once (a form sent twice), one
     * answers with the codes that are kept, the others with a conflict -
     * never two answers with codes of which only one set works. */
    rc = store_recovery_codes_renew(op->app->store, op->user.id, gen,
                                    (const char(*)[SHA256_HEX_LEN])hashes, MFA_RECOVERY_CODES);
    OPENSSL_cleanse(hashes, sizeof hashes);
    if (rc != STORE_OK) {
        json_decref(shown);
        if (rc == STORE_NOT_FOUND) {
            /* Another renewal came first, or TOTP was removed meanwhile. */
            rc = store_totp_get(op->app->store, op->user.id, &t);
            on = rc == STORE_OK && t.confirmed;
            OPENSSL_cleanse(&t, sizeof t);
            op->res = on ? svc_fail(SVC_CONFLICT, "The recovery codes were changed a moment ago "
                                                  "by another request; renew them again to see "
                                                  "a set that works.")
                         : svc_fail(SVC_NOT_FOUND,
                                    "Recovery codes come with TOTP, which is not set up.");
            return;
        }
        op->res = svc_store_failure(op->app, rc, "recovery_code");
        return;
    }
    op->data = json_pack("{s:o}", "recovery_codes", shown);
    AUDIT0(LOG_INFO, &op->ctx, "recovery_codes_renewed", "ok", op->user.id);
}

struct svc_op *mfa_recovery_renew(struct app *app, const struct svc_ctx *ctx,
                                  const struct identity *who, const char *password, size_t plen)
{
    /* Which codes this renewal replaces: those of now, before the
     * password is checked (requests sent together all read the same). */
    struct store_totp t;
    enum store_rc rc = store_totp_get(app->store, who->sub, &t);
    int64_t gen = rc == STORE_OK && t.confirmed ? t.codes_gen : -1;
    OPENSSL_cleanse(&t, sizeof t);
    if (rc != STORE_OK && rc != STORE_NOT_FOUND) {
        struct svc_op *op = svc_op_new(app, ctx);
        if (op)
            op->res = svc_store_failure(app, rc, "totp");
        return op;
    }
    int64_t *arg = malloc(sizeof *arg);
    if (!arg)
        return NULL; /* out of memory, as svc_op_new says */
    *arg = gen;
    struct svc_op *op =
        accounts_reconfirm(app, ctx, who, password, plen, renew_then, "recovery_codes");
    if (!op) {
        free(arg);
        return NULL;
    }
    op->arg = arg;
    op->arg_free = free;
    return op;
}

static void add_passkey(void *vctx, const struct store_passkey *p)
{
    json_array_append_new(vctx, passkeys_describe(p));
}

struct svc_result mfa_status(struct app *app, const struct identity *who, json_t **ret)
{
    struct store_totp t;
    enum store_rc rc = store_totp_get(app->store, who->sub, &t);
    bool totp = rc == STORE_OK && t.confirmed;
    bool pending = rc == STORE_OK && !t.confirmed && util_now() < t.created_at + MFA_ENROLMENT_TTL;
    OPENSSL_cleanse(&t, sizeof t);
    int left = 0;
    json_t *list = json_array();
    if (rc == STORE_OK || rc == STORE_NOT_FOUND)
        rc = store_recovery_codes_left(app->store, who->sub, &left);
    if (rc == STORE_OK)
        rc = store_passkeys_list(app->store, who->sub, add_passkey, list);
    if (rc != STORE_OK) {
        json_decref(list);
        return svc_store_failure(app, rc, "mfa_status");
    }
    *ret = json_pack("{s:b, s:b, s:i, s:o}", "totp", totp, "totp_pending", pending,
                     "recovery_codes_left", left, "passkeys", list);
    return *ret ? svc_ok() : svc_fail(SVC_ERROR, NULL);
}

/* ---------------------------------------------------------- operator --- */

void mfa_factor_added(struct app *app, const struct svc_ctx *ctx, const struct identity *who,
                      unsigned had_methods)
{
    if (had_methods & (MFA_TOTP | MFA_PASSKEY))
        return;
    /* Best effort: the factor is in place either way; a storage failure
     * is logged by the store and the owner can end sessions by hand. */
    sessions_revoke_all(app, ctx, who->sub, who->sid, "second_factor_added", NULL);
}

struct svc_result mfa_operator_reset(struct app *app, const struct svc_ctx *ctx,
                                     const char *username, bool *ret_totp, int *ret_passkeys,
                                     int *ret_sessions)
{
    struct store_user u;
    struct svc_result r = accounts_find(app, username, &u);
    if (r.status != SVC_OK)
        return r;
    int removed = 0;
    enum store_rc rc = store_mfa_clear(app->store, u.id, ret_totp, &removed);
    *ret_passkeys = removed;
    if (rc != STORE_OK) {
        store_user_clear(&u);
        return rc == STORE_NOT_FOUND ? svc_fail(SVC_NOT_FOUND, "There is no such user.")
                                     : svc_store_failure(app, rc, "mfa_reset");
    }
    AUDIT(LOG_INFO, ctx, "mfa_reset", "ok", u.id, LF_B("totp", *ret_totp),
          LF_I("passkeys", removed));
    /* The factors are gone either way: a failure to end the sessions is
     * told as such (*ret_sessions -1), not as a failed reset. */
    r = sessions_revoke_all(app, ctx, u.id, NULL, "mfa_reset", ret_sessions);
    if (r.status != SVC_OK)
        *ret_sessions = -1;
    store_user_clear(&u);
    return svc_ok();
}
