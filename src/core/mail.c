/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Implementation of mail.h. The worker never holds a lock while it talks to
 * the relay; it reads the configuration in force at each pass, so SIGHUP can
 * change the relay, the sender or the templates.
 */
#include "core/mail.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "base/log.h"
#include "base/util.h"
#include "core/mfa.h"
#include "core/mime.h"
#include "core/smtp.h"
#include "lib/jwtd_internal.h"

bool mail_configured(const struct app *app)
{
    const struct config *cfg = app->cfg;
    return cfg->smtp_url != NULL && cfg->mail_from != NULL;
}

bool mail_secret_add(json_t *params)
{
    uint8_t raw[16];
    char hex[2 * sizeof raw + 1];
    if (!util_random(raw, sizeof raw))
        return false;
    util_hex(raw, sizeof raw, hex);
    OPENSSL_cleanse(raw, sizeof raw);
    bool ok = json_object_set_new(params, MAIL_SECRET_PARAM, json_string(hex)) == 0;
    OPENSSL_cleanse(hex, sizeof hex);
    return ok;
}

const char *mail_secret_of(json_t *params)
{
    const char *s = json_string_value(json_object_get(params, MAIL_SECRET_PARAM));
    return s ? s : "";
}

/* The longest subject sent (bytes): longer ones are cut. */
#define SUBJECT_MAX 200

/* HMAC-SHA-256(mail key, label || 0 || id [|| 0 || secret]). */
static bool derive(const struct app *app, const char *label, const char *id, const char *secret,
                   uint8_t out[32])
{
    uint8_t msg[160];
    size_t a = strlen(label), b = strlen(id), c = strlen(secret);
    if (a + 1 + b + 1 + c > sizeof msg)
        return false;
    memcpy(msg, label, a);
    msg[a] = 0;
    memcpy(msg + a + 1, id, b);
    size_t n = a + 1 + b;
    if (c) { /* without one: a message queued before secrets existed */
        msg[n++] = 0;
        memcpy(msg + n, secret, c);
        n += c;
    }
    unsigned int len = 0;
    bool ok = HMAC(EVP_sha256(), app->mail_key, sizeof app->mail_key, msg, n, out, &len) &&
              len == 32;
    OPENSSL_cleanse(msg, sizeof msg);
    return ok;
}

bool mail_token(const struct app *app, const char *mail_id, const char *secret,
                char out[MAIL_TOKEN_LEN + 1])
{
    uint8_t d[32];
    bool ok = derive(app, "jwtd-mail-token", mail_id, secret, d) &&
              jwtd__b64url_encode(d, sizeof d, out, MAIL_TOKEN_LEN + 1) == MAIL_TOKEN_LEN;
    OPENSSL_cleanse(d, sizeof d);
    return ok;
}

bool mail_code(const struct app *app, const char *mail_id, const char *secret,
               char out[MAIL_CODE_LEN + 1])
{
    uint8_t d[32];
    if (!derive(app, "jwtd-mail-code", mail_id, secret, d))
        return false;
    /* 32 bits reduced mod 10^6: a bias of under 0.03%, harmless for a code
     * that may be tried five times. */
    uint32_t v = ((uint32_t)d[0] << 24 | (uint32_t)d[1] << 16 | (uint32_t)d[2] << 8 | d[3]) %
                 1000000u;
    snprintf(out, MAIL_CODE_LEN + 1, "%06u", v);
    OPENSSL_cleanse(d, sizeof d);
    return true;
}

bool mail_token_hash(const char *token, size_t len, char out[SHA256_HEX_LEN])
{
    uint8_t d[32];
    unsigned int n = 0;
    if (!EVP_Digest(token, len, d, &n, EVP_sha256(), NULL) || n != 32)
        return false;
    util_hex(d, 32, out);
    return true;
}

bool mail_key_hash(const struct app *app, const char *msg, size_t len, char out[SHA256_HEX_LEN])
{
    uint8_t d[32];
    unsigned int dl = 0;
    bool ok = HMAC(EVP_sha256(), app->mail_key, sizeof app->mail_key, (const uint8_t *)msg, len, d,
                   &dl) &&
              dl == 32;
    if (ok)
        util_hex(d, 32, out);
    OPENSSL_cleanse(d, sizeof d);
    return ok;
}

bool mail_code_hash(const struct app *app, const char *user_id, const char *code, size_t len,
                    char out[SHA256_HEX_LEN])
{
    char msg[UUID_STR_LEN + 16];
    if (len > 8 || strlen(user_id) >= UUID_STR_LEN)
        return false;
    int n = snprintf(msg, sizeof msg, "%s:%.*s", user_id, (int)len, code);
    bool ok = mail_key_hash(app, msg, (size_t)n, out);
    OPENSSL_cleanse(msg, sizeof msg);
    return ok;
}

void mail_link(const struct app *app, const char *path, const char *token, char *out, size_t cap)
{
    const struct config *cfg = app->cfg;
    const char *base = cfg->public_url ? cfg->public_url : cfg->issuer;
    size_t n = strlen(base);
    snprintf(out, cap, "%.*s%s?token=%s", (int)(n && base[n - 1] == '/' ? n - 1 : n), base, path,
             token);
}

/* ---------------------------------------------------------- templates --- */

struct builtin {
    const char *kind, *subject, *text, *html;
};

static const struct builtin builtins[] = {
    {MAIL_VERIFY, "Confirm your e-mail address for {{site}}",
     "Hello {{username}},\n\n"
     "to confirm that {{email}} is your address for {{site}}, open this link:\n\n"
     "{{link}}\n\n"
     "or enter this code where you were asked for it: {{code}}\n\n"
     "The link and the code work for {{expires}}. If you did not ask for this,\n"
     "you can ignore this message.\n",
     "<p>Hello {{username}},</p>\n"
     "<p>to confirm that {{email}} is your address for {{site}}, open this link:</p>\n"
     "<p><a href=\"{{link}}\">Confirm my address</a></p>\n"
     "<p>or enter this code where you were asked for it: <strong>{{code}}</strong></p>\n"
     "<p>The link and the code work for {{expires}}. If you did not ask for this, you can "
     "ignore this message.</p>\n"},
    {MAIL_RESET, "Reset your password for {{site}}",
     "Hello {{username}},\n\n"
     "someone (we hope you) asked to reset the password of your account on {{site}}.\n"
     "To choose a new password, open this link:\n\n"
     "{{link}}\n\n"
     "It works once, for {{expires}}, and stops working if the password is changed\n"
     "another way. If you did not ask for this, ignore this message: your password\n"
     "stays as it is.\n",
     "<p>Hello {{username}},</p>\n"
     "<p>someone (we hope you) asked to reset the password of your account on {{site}}. "
     "To choose a new password, open this link:</p>\n"
     "<p><a href=\"{{link}}\">Choose a new password</a></p>\n"
     "<p>It works once, for {{expires}}, and stops working if the password is changed another "
     "way. If you did not ask for this, ignore this message: your password stays as it "
     "is.</p>\n"},
    {MAIL_EMAIL_CHANGED, "Your e-mail address on {{site}} is being changed",
     "Hello {{username}},\n\n"
     "a change of the e-mail address of your account on {{site}} to {{new_email}}\n"
     "was requested. It takes effect once the new address is confirmed.\n\n"
     "If this was not you, change your password now, and tell the people who run\n"
     "{{site}}.\n",
     "<p>Hello {{username}},</p>\n"
     "<p>a change of the e-mail address of your account on {{site}} to {{new_email}} was "
     "requested. It takes effect once the new address is confirmed.</p>\n"
     "<p>If this was not you, change your password now, and tell the people who run "
     "{{site}}.</p>\n"},
    {MAIL_EMAIL_REMOVED, "Your e-mail address was removed from {{site}}",
     "Hello {{username}},\n\n"
     "this address ({{email}}) was removed from your account on {{site}}: password\n"
     "reset links can no longer be sent to it.\n\n"
     "If this was not you, change your password now, and tell the people who run\n"
     "{{site}}.\n",
     "<p>Hello {{username}},</p>\n"
     "<p>this address ({{email}}) was removed from your account on {{site}}: password reset "
     "links can no longer be sent to it.</p>\n"
     "<p>If this was not you, change your password now, and tell the people who run "
     "{{site}}.</p>\n"},
};

/* A template file of the override directory, or NULL. */
static char *read_override(const char *dir, const char *kind, const char *ext)
{
    if (!dir)
        return NULL;
    char path[4096];
    snprintf(path, sizeof path, "%s/%s.%s", dir, kind, ext);
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    struct buf b;
    buf_init(&b, 64 * 1024);
    char chunk[4096];
    size_t n;
    bool ok = true;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
        ok = ok && buf_append(&b, chunk, n);
    fclose(f);
    /* A NUL would end the template where it stands, silently. */
    const char *why = !ok ? "larger than 64 KiB" : b.data && memchr(b.data, 0, b.len) ? "holds a NUL byte" : NULL;
    if (why || !b.data) {
        if (why)
            LOG(LOG_WARN, "mail_template_unusable", LF_S("file", path), LF_S("reason", why));
        buf_free(&b);
        return NULL;
    }
    return buf_steal(&b);
}

static bool append_escaped(struct buf *b, const char *v, bool html)
{
    if (!html)
        return buf_appends(b, v);
    bool ok = true;
    for (const char *p = v; *p && ok; p++) {
        switch (*p) {
        case '&': ok = buf_appends(b, "&amp;"); break;
        case '<': ok = buf_appends(b, "&lt;"); break;
        case '>': ok = buf_appends(b, "&gt;"); break;
        case '"': ok = buf_appends(b, "&quot;"); break;
        case '\'': ok = buf_appends(b, "&#39;"); break;
        default: ok = buf_append(b, p, 1); break;
        }
    }
    return ok;
}

/* {{name}} replaced by params' string value (HTML-escaped in HTML);
 * unknown names by nothing. NULL when the result would pass the cap: a
 * message missing a part (its link, say) is never sent. The values hold
 * the link and the code: no copy is left in freed memory. */
static char *expand(const char *tpl, json_t *params, bool html, bool one_line)
{
    struct buf b;
    buf_init_secret(&b, 256 * 1024);
    bool ok = buf_appends(&b, ""); /* an empty template makes an empty text */
    for (const char *p = tpl; *p && ok;) {
        const char *open = strstr(p, "{{");
        const char *close = open ? strstr(open + 2, "}}") : NULL;
        if (!open || !close) {
            ok = buf_appends(&b, p);
            break;
        }
        ok = buf_append(&b, p, (size_t)(open - p));
        char name[64];
        size_t n = (size_t)(close - open - 2);
        if (ok && n < sizeof name) {
            memcpy(name, open + 2, n);
            name[n] = '\0';
            const char *v = json_string_value(json_object_get(params, name));
            if (v)
                ok = append_escaped(&b, v, html);
        }
        p = close + 2;
    }
    if (!ok) {
        buf_wipe_free(&b);
        return NULL;
    }
    char *out = buf_steal(&b);
    if (one_line) {
        /* A subject: no control character (a line break, a tab; C1's
         * U+0080-U+009F such as NEL; the line and paragraph separators
         * U+2028/U+2029) reaches the header, as a space; none trail; and at
         * most SUBJECT_MAX bytes, cut between UTF-8 characters, so that an
         * operator's long template still makes a header (lines of 998
         * bytes at most). */
        size_t n = 0;
        for (const unsigned char *q = (const unsigned char *)out; *q;) {
            size_t skip = *q < 0x20 || *q == 0x7f                       ? 1
                          : q[0] == 0xC2 && q[1] >= 0x80 && q[1] <= 0x9F ? 2
                          : q[0] == 0xE2 && q[1] == 0x80 && (q[2] == 0xA8 || q[2] == 0xA9)
                              ? 3
                              : 0;
            if (skip) {
                out[n++] = ' ';
                q += skip;
            } else {
                out[n++] = (char)*q++;
            }
        }
        out[n] = '\0';
        if (n > SUBJECT_MAX) {
            n = SUBJECT_MAX;
            while (n > 0 && ((unsigned char)out[n] & 0xC0) == 0x80)
                n--;
            out[n] = '\0';
        }
        while (n > 0 && out[n - 1] == ' ')
            out[--n] = '\0';
    }
    return out;
}

bool mail_render(const struct app *app, const char *kind, const char *params_json,
                 char **ret_subject, char **ret_text, char **ret_html)
{
    const struct builtin *bi = NULL;
    for (size_t i = 0; i < sizeof builtins / sizeof builtins[0]; i++)
        if (strcmp(builtins[i].kind, kind) == 0)
            bi = &builtins[i];
    if (!bi)
        return false;
    json_t *params = json_loads(params_json, 0, NULL);
    if (!params)
        return false;
    const char *dir = app->cfg->mail_templates;
    char *o_subject = read_override(dir, kind, "subject");
    char *o_text = read_override(dir, kind, "txt");
    char *o_html = read_override(dir, kind, "html");
    char *subject = expand(o_subject ? o_subject : bi->subject, params, false, true);
    char *text = expand(o_text ? o_text : bi->text, params, false, false);
    char *html = expand(o_html ? o_html : bi->html, params, true, false);
    free(o_subject);
    free(o_text);
    free(o_html);
    json_decref(params);
    if (!subject || !text || !html) {
        char *parts[] = {subject, text, html};
        for (size_t i = 0; i < 3; i++) {
            if (parts[i])
                OPENSSL_cleanse(parts[i], strlen(parts[i]));
            free(parts[i]);
        }
        return false;
    }
    *ret_subject = subject;
    *ret_text = text;
    *ret_html = html;
    return true;
}

/* ------------------------------------------------------------- worker --- */

static void human_duration(int64_t s, char *out, size_t cap)
{
    if (s % 86400 == 0)
        snprintf(out, cap, "%lld day%s", (long long)(s / 86400), s == 86400 ? "" : "s");
    else if (s % 3600 == 0)
        snprintf(out, cap, "%lld hour%s", (long long)(s / 3600), s == 3600 ? "" : "s");
    else {
        long long m = (long long)((s + 59) / 60);
        snprintf(out, cap, "%lld minute%s", m, m == 1 ? "" : "s");
    }
}

/* Only the domain of a recipient goes to the log. */
static const char *domain_of(const char *addr)
{
    const char *at = strrchr(addr, '@');
    return at ? at + 1 : "";
}

struct job {
    struct store_mail m;
    bool valid;
};

/* Messages one pass of the worker sends at most (then it reads the
 * outbox's size again). */
#define MAIL_PASS_MAX 8

struct claim_ctx {
    struct job jobs[1];
    int n;
};

static void collect(void *vctx, const struct store_mail *m)
{
    struct claim_ctx *c = vctx;
    if (c->n >= (int)(sizeof c->jobs / sizeof c->jobs[0]))
        return;
    struct job *j = &c->jobs[c->n++];
    j->m = *m;
    j->m.params = strdup(m->params);
    j->valid = j->m.params != NULL;
}

static void finish(struct app *app, const struct store_mail *m, enum mail_status st,
                   int attempts, int64_t next_ms, const char *error, enum mail_result metric)
{
    enum store_rc rc = store_outbox_finish(app->store, m->id, st, attempts, next_ms, error,
                                           util_now_ms());
    enum log_level lvl = metric == MR_SENT || metric == MR_DROPPED ? LOG_INFO : LOG_WARN;
    LOG(lvl, "mail", LF_S("id", m->id), LF_S("kind", m->kind),
        LF_S("outcome", metrics_mail_name(metric)), LF_I("attempts", attempts),
        LF_S("to_domain", domain_of(m->to)), LF_S("error", error ? error : ""),
        LF_B("recorded", rc == STORE_OK));
    /* Counted last: whoever sees the count finds the row and the log line. */
    metrics_inc(&app->metrics.mail[metric]);
}

/* A forgotten password: find the account now (the request did the same work
 * for every address) and make its reset token. False: nothing to send. */
static bool resolve_forgot(struct app *app, struct store_mail *m, json_t *params,
                           const char **ret_why)
{
    const char *ident = json_string_value(json_object_get(params, "identifier"));
    struct store_user u = {0};
    enum store_rc rc = STORE_NOT_FOUND;
    if (ident && strchr(ident, '@'))
        rc = store_user_by_email(app->store, ident, &u);
    if (rc == STORE_NOT_FOUND && ident)
        rc = store_user_by_name(app->store, ident, &u);
    store_user_clear(&u);
    if (rc != STORE_OK) {
        *ret_why = rc == STORE_NOT_FOUND ? "no such account" : "storage unavailable";
        return false;
    }
    if (!u.email[0] || u.disabled_at) {
        *ret_why = u.disabled_at ? "account disabled" : "account has no address";
        return false;
    }
    int64_t created = m->created_ms / 1000;
    if (util_now() >= created + app->cfg->reset_ttl) {
        *ret_why = "the link would have expired";
        return false;
    }
    char token[MAIL_TOKEN_LEN + 1];
    struct store_email_token t = {.purpose = EMAIL_RESET,
                                  .created_at = created,
                                  .expires_at = created + app->cfg->reset_ttl};
    snprintf(t.user_id, sizeof t.user_id, "%s", u.id);
    snprintf(t.email, sizeof t.email, "%s", u.email);
    bool ok = mail_token(app, m->id, mail_secret_of(params), token) &&
              mail_token_hash(token, strlen(token), t.token_hash);
    OPENSSL_cleanse(token, sizeof token);
    /* The message becomes a reset mail to this account, and its token the
     * account's reset token, at once and for good: a retry (after an SMTP
     * failure, or a crash before the outcome was written) sends that mail
     * again and stores nothing, so it cannot bring back a link that a
     * reset or a password change ended meanwhile. */
    json_object_set_new(params, "username", json_string(u.username));
    json_object_set_new(params, "email", json_string(u.email));
    json_object_del(params, "identifier");
    struct store_mail resolved = *m;
    snprintf(resolved.kind, sizeof resolved.kind, "%s", MAIL_RESET);
    snprintf(resolved.user_id, sizeof resolved.user_id, "%s", u.id);
    snprintf(resolved.to, sizeof resolved.to, "%s", u.email);
    resolved.params = ok ? json_dumps(params, JSON_COMPACT) : NULL;
    ok = resolved.params && store_mail_resolve(app->store, &t, &resolved) == STORE_OK;
    if (resolved.params) {
        OPENSSL_cleanse(resolved.params, strlen(resolved.params)); /* holds the secret */
        free(resolved.params);
    }
    if (!ok) {
        *ret_why = "storage unavailable";
        return false;
    }
    snprintf(m->kind, sizeof m->kind, "%s", MAIL_RESET);
    snprintf(m->user_id, sizeof m->user_id, "%s", u.id);
    snprintf(m->to, sizeof m->to, "%s", u.email);
    return true;
}

static void deliver(struct app *app, struct store_mail *m)
{
    const struct config *cfg = app->cfg;
    json_t *params = json_loads(m->params, 0, NULL);
    if (!params) {
        finish(app, m, MAIL_FAILED, m->attempts, 0, "unreadable parameters", MR_FAILED);
        return;
    }
    const char *why = NULL;
    if (strcmp(m->kind, MAIL_FORGOT) == 0 && !resolve_forgot(app, m, params, &why)) {
        json_decref(params);
        if (strcmp(why, "storage unavailable") == 0)
            finish(app, m, MAIL_QUEUED, m->attempts, util_now_ms() + cfg->mail_retry_ms, why,
                   MR_RETRY);
        else
            finish(app, m, MAIL_DROPPED, m->attempts, 0, why, MR_DROPPED);
        return;
    }
    char token[MAIL_TOKEN_LEN + 1] = "", code[MAIL_CODE_LEN + 1] = "", link[1200], site[300],
         expires[64];
    bool reset = strcmp(m->kind, MAIL_RESET) == 0;
    if (reset || strcmp(m->kind, MAIL_VERIFY) == 0) {
        /* Retried past its link's life (an SMTP outage): nothing to send. */
        if (util_now() >= m->created_ms / 1000 + (reset ? cfg->reset_ttl : cfg->verify_ttl)) {
            json_decref(params);
            finish(app, m, MAIL_DROPPED, m->attempts, 0, "the link would have expired",
                   MR_DROPPED);
            return;
        }
        const char *secret = mail_secret_of(params);
        if (!mail_token(app, m->id, secret, token) || !mail_code(app, m->id, secret, code)) {
            json_decref(params);
            finish(app, m, MAIL_QUEUED, m->attempts, util_now_ms() + cfg->mail_retry_ms,
                   "cannot derive the link", MR_RETRY);
            return;
        }
        mail_link(app, reset ? "/reset-password" : "/verify-email", token, link, sizeof link);
        json_object_set_new(params, "link", json_string(link));
        if (!reset)
            json_object_set_new(params, "code", json_string(code));
        human_duration(reset ? cfg->reset_ttl : cfg->verify_ttl, expires, sizeof expires);
        json_object_set_new(params, "expires", json_string(expires));
    }
    json_object_set_new(params, "site", json_string(mfa_site_name(cfg, site, sizeof site)));
    json_object_del(params, MAIL_SECRET_PARAM); /* no template shows it */
    char *pjson = json_dumps(params, JSON_COMPACT);
    json_decref(params);
    char *subject = NULL, *text = NULL, *html = NULL, *msg = NULL;
    size_t msglen = 0;
    bool rendered = pjson && mail_render(app, m->kind, pjson, &subject, &text, &html);
    if (pjson) {
        OPENSSL_cleanse(pjson, strlen(pjson));
        free(pjson);
    }
    OPENSSL_cleanse(token, sizeof token);
    OPENSSL_cleanse(code, sizeof code);
    OPENSSL_cleanse(link, sizeof link);
    char message_id[UUID_STR_LEN + 300];
    snprintf(message_id, sizeof message_id, "%s@%s", m->id, domain_of(cfg->mail_from));
    struct mime_message mm = {.from_name = cfg->mail_from_name,
                              .from_addr = cfg->mail_from,
                              .to_addr = m->to,
                              .subject = subject,
                              .date = m->created_ms / 1000,
                              .message_id = message_id,
                              .text = text,
                              .html = html};
    enum mime_rc mrc = rendered ? mime_build(&mm, &msg, &msglen) : MIME_INVALID;
    /* The subject too: an operator's template may show the code in it. */
    if (subject)
        OPENSSL_cleanse(subject, strlen(subject));
    if (text)
        OPENSSL_cleanse(text, strlen(text));
    if (html)
        OPENSSL_cleanse(html, strlen(html));
    free(subject);
    free(text);
    free(html);
    if (mrc != MIME_OK) {
        finish(app, m, MAIL_FAILED, m->attempts, 0,
               rendered ? "the message cannot be built (address or template)"
                        : "the template cannot be filled in (unknown, or over 256 KiB filled in)",
               MR_FAILED);
        return;
    }
    struct smtp_config sc = {.url = cfg->smtp_url,
                             .tls = (enum smtp_tls)cfg->smtp_tls,
                             .ca_file = cfg->smtp_ca_file,
                             .timeout_ms = (long)cfg->smtp_timeout_ms,
                             .connect_timeout_ms = (long)(cfg->smtp_timeout_ms < 10000
                                                              ? cfg->smtp_timeout_ms
                                                              : 10000),
                             .cancel = &app->mail_stop};
    char err[300] = "";
    enum smtp_rc src = smtp_send(&sc, cfg->mail_from, m->to, msg, msglen, err, sizeof err);
    mime_free(msg, msglen);
    int attempts = m->attempts + 1;
    if (src == SMTP_SENT) {
        finish(app, m, MAIL_SENT, attempts, 0, "", MR_SENT);
        return;
    }
    if (src == SMTP_TEMPORARY && atomic_load(&app->mail_stop)) {
        /* Cut short by a stop (SIGTERM): no fault of the relay's, so no
         * attempt counted and no back-off; due at once, for the next
         * instance or start, rather than after the lease. */
        finish(app, m, MAIL_QUEUED, m->attempts, util_now_ms(), err, MR_RETRY);
        return;
    }
    if (src == SMTP_PERMANENT) {
        finish(app, m, MAIL_FAILED, attempts, 0, err, MR_FAILED);
        return;
    }
    int64_t wait = cfg->mail_retry_ms;
    for (int i = 1; i < attempts && wait < cfg->mail_retry_max_ms; i++)
        wait *= 2;
    if (wait > cfg->mail_retry_max_ms)
        wait = cfg->mail_retry_max_ms;
    int64_t next = util_now_ms() + wait;
    if (next > m->give_up_ms)
        finish(app, m, MAIL_FAILED, attempts, 0, err, MR_GIVEN_UP);
    else
        finish(app, m, MAIL_QUEUED, attempts, next, err, MR_RETRY);
}

int mail_worker_pass(struct app *app)
{
    int64_t queued = 0;
    if (store_outbox_count(app->store, MAIL_QUEUED, &queued) == STORE_OK)
        atomic_store(&app->metrics.mail_queued, queued);
    if (!mail_configured(app) || queued == 0)
        return 0;
    /* Leased for a delivery attempt and then some: another instance takes
     * the message only when this one died in the middle. One message per
     * lease, taken when its attempt starts: a lease taken on a batch ran
     * out for the batch's last messages while the first ones were sent
     * (a slow relay), and another instance sent them too. */
    int64_t lease = 2 * app->cfg->smtp_timeout_ms + 10000;
    int handled = 0;
    /* A stop ends the pass between two messages too: each would otherwise
     * get its attempt, up to JWTD_SMTP_TIMEOUT apiece with a silent relay. */
    while (handled < MAIL_PASS_MAX && !atomic_load(&app->mail_stop)) {
        int64_t now = util_now_ms();
        struct claim_ctx c = {.n = 0};
        if (store_outbox_claim(app->store, now, now + lease, 1, collect, &c) != STORE_OK ||
            c.n == 0)
            break;
        if (c.jobs[0].valid)
            deliver(app, &c.jobs[0].m);
        store_mail_clear(&c.jobs[0].m);
        handled++;
    }
    return handled;
}

static void *worker(void *arg)
{
    struct app *app = arg;
    pthread_mutex_lock(&app->mail_lock);
    while (!app->mail_stop) {
        app->mail_kick = false;
        pthread_mutex_unlock(&app->mail_lock);
        int handled = mail_worker_pass(app);
        pthread_mutex_lock(&app->mail_lock);
        if (handled > 0 || app->mail_stop || app->mail_kick)
            continue; /* more may be due */
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        int64_t ms = app->cfg->mail_poll_ms;
        int64_t ns = until.tv_nsec + (ms % 1000) * 1000000;
        until.tv_sec += ms / 1000 + ns / 1000000000;
        until.tv_nsec = ns % 1000000000;
        pthread_cond_timedwait(&app->mail_cond, &app->mail_lock, &until);
    }
    pthread_mutex_unlock(&app->mail_lock);
    return NULL;
}

void mail_wake(struct app *app)
{
    /* Operator commands have no worker. While serving, the flag is true
     * from before the first request to after the pools stopped
     * (app_close), so the lock below still exists when it is true. */
    if (!atomic_load(&app->mail_running))
        return;
    pthread_mutex_lock(&app->mail_lock);
    app->mail_kick = true;
    pthread_cond_signal(&app->mail_cond);
    pthread_mutex_unlock(&app->mail_lock);
}

bool mail_worker_start(struct app *app)
{
    if (!smtp_global_init())
        return false;
    pthread_mutex_init(&app->mail_lock, NULL);
    pthread_cond_init(&app->mail_cond, NULL);
    app->mail_stop = false;
    if (pthread_create(&app->mail_thread, NULL, worker, app) != 0) {
        pthread_cond_destroy(&app->mail_cond);
        pthread_mutex_destroy(&app->mail_lock);
        return false;
    }
    atomic_store(&app->mail_running, true);
    return true;
}

void mail_worker_stop(struct app *app)
{
    if (!atomic_exchange(&app->mail_running, false))
        return;
    pthread_mutex_lock(&app->mail_lock);
    app->mail_stop = true;
    pthread_cond_signal(&app->mail_cond);
    pthread_mutex_unlock(&app->mail_lock);
    pthread_join(app->mail_thread, NULL);
    pthread_cond_destroy(&app->mail_cond);
    pthread_mutex_destroy(&app->mail_lock);
    smtp_global_cleanup();
}
