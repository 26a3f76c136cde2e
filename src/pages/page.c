/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Implementation of page.h.
 */
#include "pages/page.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/mfa.h"
#include "http/cookie.h"
#include "http/parse.h"
#include "http/status.h"

#define PAGE_MAX (512 * 1024)

void page_begin(struct page *p, struct request *r, const char *title, bool wide)
{
    char site[300];
    p->r = r;
    p->broken = false;
    p->fault = NULL;
    buf_init_secret(&p->b, PAGE_MAX); /* TOTP keys, recovery codes */
    const char *name = mfa_site_name(r->app->cfg, site, sizeof site);
    page_raw(p, "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
                "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
                "<meta name=\"referrer\" content=\"same-origin\">\n<title>");
    page_text(p, title);
    page_raw(p, " \xe2\x80\x94 ");
    page_text(p, name);
    page_raw(p, "</title>\n<link rel=\"stylesheet\" href=\"/static/jwtd.css\">\n"
                "<script src=\"/static/passkeys.js\" defer></script>\n</head>\n<body>\n"
                "<header class=\"site\"><a href=\"/account\">");
    page_text(p, name);
    page_fmt(p, "</a></header>\n<main%s>\n<h1>", wide ? " class=\"wide\"" : "");
    page_text(p, title);
    page_raw(p, "</h1>\n");
}

void page_raw(struct page *p, const char *html)
{
    if (!buf_appends(&p->b, html))
        p->broken = true;
}

void page_textn(struct page *p, const char *t, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const char *rep = NULL;
        switch (t[i]) {
        case '&': rep = "&amp;"; break;
        case '<': rep = "&lt;"; break;
        case '>': rep = "&gt;"; break;
        case '"': rep = "&quot;"; break;
        case '\'': rep = "&#39;"; break;
        default:
            /* A control character (HTML allows none but tab and line
             * breaks in text) shows as the replacement character. */
            if (((unsigned char)t[i] < 0x20 && t[i] != '\t' && t[i] != '\n' && t[i] != '\r') ||
                t[i] == 0x7f)
                rep = "\xEF\xBF\xBD";
            break;
        }
        if (!(rep ? buf_appends(&p->b, rep) : buf_append(&p->b, &t[i], 1)))
            p->broken = true;
    }
}

void page_text(struct page *p, const char *t)
{
    if (t)
        page_textn(p, t, strlen(t));
}

void page_fmt(struct page *p, const char *fmt, ...)
{
    /* Whole or not at all: a cut attribute (seen: a long rd in a link)
     * would swallow the rest of the page. */
    va_list ap;
    va_start(ap, fmt);
    if (!buf_vprintf(&p->b, fmt, ap))
        p->broken = true;
    va_end(ap);
}

void page_notice(struct page *p, bool ok, const char *text)
{
    page_raw(p, ok ? "<p class=\"notice ok\" role=\"status\">"
                   : "<p id=\"" PAGE_ERROR_ID "\" class=\"notice error\" role=\"alert\">");
    page_text(p, text);
    page_raw(p, "</p>\n");
}

bool page_at_fault(const struct page *p, const char *id)
{
    size_t n = strlen(id);
    for (const char *f = p->fault; f && *f; f += strcspn(f, " "), f += *f == ' ') {
        if (strncmp(f, id, n) == 0 && (f[n] == ' ' || f[n] == '\0'))
            return true;
    }
    return false;
}

void page_input_aria(struct page *p, const char *id, const char *hint, bool focus)
{
    /* A screen reader then says, on the field, that it is invalid and
     * why (WCAG 3.3.1), not only in the alert at the top. */
    bool bad = page_at_fault(p, id);
    if (bad)
        page_raw(p, " aria-invalid=\"true\"");
    if (bad || hint)
        page_fmt(p, " aria-describedby=\"%s%s%s\"", bad ? PAGE_ERROR_ID : "",
                 bad && hint ? " " : "", hint ? hint : "");
    if (focus)
        page_raw(p, " autofocus");
}

void page_hidden(struct page *p, const char *name, const char *value)
{
    page_fmt(p, "<input type=\"hidden\" name=\"%s\" value=\"", name);
    page_text(p, value ? value : "");
    page_raw(p, "\">\n");
}

/* The pages' policy: own scripts, styles and images only; forms may post
 * here and be redirected to the allowed return hosts. */
static char *page_csp(const struct config *cfg)
{
    struct buf b;
    buf_init(&b, 16384);
    buf_appends(&b, "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                    "connect-src 'self'; base-uri 'none'; frame-ancestors 'none'; "
                    "form-action 'self'");
    bool http = cfg->public_url && strncmp(cfg->public_url, "http://", 7) == 0;
    for (size_t i = 0; i < cfg->n_redirect_domains; i++) {
        const char *d = cfg->redirect_domains[i];
        bool sub = d[0] == '.';
        buf_printf(&b, " https://%s%s:*", sub ? "*" : "", d);
        if (http)
            buf_printf(&b, " http://%s%s:*", sub ? "*" : "", d);
    }
    return buf_steal(&b);
}

void page_end(struct page *p, unsigned status)
{
    page_raw(p, "</main>\n</body>\n</html>\n");
    struct request *r = p->r;
    free(r->csp);
    r->csp = page_csp(r->app->cfg);
    if (!p->b.data || p->broken) {
        buf_wipe_free(&p->b);
        respond_error(r, 500, "internal_error", "The page could not be built.");
        return;
    }
    respond_html(r, status, p->b.data, p->b.len);
    buf_wipe_free(&p->b); /* pages may show secrets (TOTP keys, recovery codes) */
}

const char *page_done_text(const struct page_done *table, size_t n, const char *key)
{
    for (size_t i = 0; key && i < n; i++)
        if (strcmp(key, table[i].key) == 0)
            return table[i].text;
    return NULL;
}

void page_message(struct request *r, unsigned status, const char *title, bool ok,
                  const char *text, const char *link, const char *link_text)
{
    struct page p;
    page_begin(&p, r, title, false);
    page_raw(&p, "<section class=\"card\">\n");
    page_notice(&p, ok, text);
    if (link) {
        page_fmt(&p, "<p><a href=\"%s\">", link);
        page_text(&p, link_text);
        page_raw(&p, "</a></p>\n");
    }
    page_raw(&p, "</section>\n");
    page_end(&p, status);
}

bool pages_on(struct request *r)
{
    if (r->app->cfg->pages)
        return true;
    respond_error(r, 404, "not_found", "There is no such endpoint.");
    return false;
}

bool page_post(struct request *r, struct form *f)
{
    memset(f, 0, sizeof *f);
    const char *origin = request_header(r, "Origin");
    const char *site = request_header(r, "Sec-Fetch-Site");
    /* Origin, when sent, is this server's (request_same_origin: the
     * public URL's origin, else this host by the scheme the request came
     * by); Sec-Fetch-Site, when sent, says same-origin ("none", a
     * navigation the user started, only beside a matching Origin); one of
     * the two must vouch for the form. */
    bool origin_ok = origin && request_same_origin(r, origin);
    bool site_same = site && strcasecmp(site, "same-origin") == 0;
    bool site_none = site && strcasecmp(site, "none") == 0;
    bool ok = origin ? origin_ok && (!site || site_same || site_none) : site_same;
    if (!ok) {
        page_message(r, 403, "Request refused", false,
                     "This form was sent from another site (or without the Origin header browsers "
                     "send), so it was refused.",
                     "/login", "Go to the sign-in page");
        return false;
    }
    if (r->body_too_large) {
        page_form_too_large(r);
        return false;
    }
    bool parsed = !r->bad_content_type &&
                  form_parse(r->body.data ? r->body.data : "", r->body.len, f);
    buf_wipe_free(&r->body); /* read once: a password goes now */
    if (!parsed) {
        page_message(r, 400, "Request refused", false, "The form could not be read.", "/login",
                     "Go to the sign-in page");
        return false;
    }
    return true;
}

void page_form_too_large(struct request *r)
{
    page_message(r, 413, "Request refused", false, "The form is too large.", "/login",
                 "Go to the sign-in page");
}

void page_method_not_allowed(struct request *r)
{
    if (pages_on(r))
        page_message(r, 405, "Nothing to show here", false,
                     "This address takes a form sent from one of the pages; it cannot be opened "
                     "on its own.",
                     "/account", "Go to your account");
}

bool page_identity(struct request *r, struct identity *ret)
{
    size_t len;
    const char *tok = cookie_get(r, cookie_access_name(r->app->cfg), &len);
    const char *reason = NULL;
    return tok && len > 0 && access_check(r->app, tok, len, util_now(), ret, &reason);
}

/* A DNS host name: labels of letters, digits, '-' and '_' (not at a
 * label's ends for '-'), none empty, at most 253 bytes. */
static bool host_name_ok(const char *host)
{
    size_t n = strlen(host), label = 0;
    if (n == 0 || n > 253)
        return false;
    for (size_t i = 0; i <= n; i++) {
        char c = host[i];
        if (c == '.' || c == '\0') {
            if (label == 0 || label > 63 || host[i - 1] == '-')
                return false;
            label = 0;
        } else if (isalnum((unsigned char)c) || c == '_' || (c == '-' && label > 0)) {
            label++;
        } else {
            return false;
        }
    }
    return true;
}

static bool host_allowed(const struct config *cfg, const char *host)
{
    if (!host_name_ok(host))
        return false;
    for (size_t i = 0; i < cfg->n_redirect_domains; i++) {
        const char *d = cfg->redirect_domains[i];
        if (d[0] == '.') {
            size_t dl = strlen(d), hl = strlen(host);
            if (hl > dl && strcasecmp(host + hl - dl, d) == 0)
                return true;
        } else if (strcasecmp(host, d) == 0) {
            return true;
        }
    }
    return false;
}

/* A character a return address may hold: RFC 3986's, less quotes and
 * brackets; '%' only as %XX. */
static bool rd_char_ok(const char *c)
{
    if (isalnum((unsigned char)*c) || strchr("-._~:/?#@!$&()*+,;=", *c))
        return *c != '\0';
    return *c == '%' && isxdigit((unsigned char)c[1]) && isxdigit((unsigned char)c[2]);
}

/* Whether a path (up to '?' or '#') has a "." or ".." segment, also
 * percent-encoded ("%2e"). */
static bool has_dot_segment(const char *path)
{
    size_t end = strcspn(path, "?#");
    for (size_t i = 0; i < end; i++) {
        if (path[i] != '/')
            continue;
        size_t j = i + 1, dots = 0;
        while (j < end) {
            if (path[j] == '.') {
                j++;
            } else if (path[j] == '%' && j + 2 < end && path[j + 1] == '2' &&
                       (path[j + 2] == 'e' || path[j + 2] == 'E')) {
                j += 3;
            } else {
                break;
            }
            dots++;
        }
        if ((dots == 1 || dots == 2) && (j == end || path[j] == '/'))
            return true;
    }
    return false;
}

/* The port of an authority ("host", "host:8443") for a scheme. */
static int64_t authority_port(const char *authority, size_t len, bool https)
{
    const char *colon = memchr(authority, ':', len);
    int64_t port = https ? 443 : 80;
    if (colon) {
        char digits[8];
        size_t n = len - (size_t)(colon + 1 - authority);
        if (n == 0 || n >= sizeof digits || colon[1] == '0')
            return -1;
        memcpy(digits, colon + 1, n);
        digits[n] = '\0';
        if (!util_parse_int(digits, 1, 65535, &port))
            return -1;
    }
    return port;
}

/* Whether rd's scheme, host and port are JWTD_PUBLIC_URL's. */
static bool own_origin(const struct config *cfg, bool https, const char *host, int64_t port)
{
    char own[300];
    const char *pub = cfg->public_url;
    if (!pub || !config_public_host(cfg, own, sizeof own) || strcasecmp(own, host) != 0)
        return false;
    bool pub_https = strncasecmp(pub, "https://", 8) == 0;
    const char *auth = pub + (pub_https ? 8 : 7);
    return pub_https == https && authority_port(auth, strcspn(auth, "/?#"), pub_https) == port;
}

/*
 * Percent-encode, after the scheme and authority, what a proxy's
 * unencoded return address loses to the query's decoding: nginx sends
 * /login?rd=https://$host$request_uri as is, so an original "/a%20b" or
 * "/caf%C3%A9" arrives decoded, as a space or raw UTF-8. Spaces, bytes of
 * 0x80 and above, and a '%' not followed by two hex digits (a decoded
 * "%25") are encoded back; nothing else changes, and the scheme and host
 * are never touched (a space or raw byte there is refused below).
 */
static bool rd_reencode(const char *rd, char out[RD_MAX + 1])
{
    static const char hexd[] = "0123456789ABCDEF";
    size_t start = 0, o = 0;
    if (strncasecmp(rd, "https://", 8) == 0 || strncasecmp(rd, "http://", 7) == 0) {
        start = (size_t)(strstr(rd, "://") - rd) + 3;
        start += strcspn(rd + start, "/?#");
    } else if (rd[0] != '/') {
        start = strlen(rd);
    }
    for (size_t i = 0; rd[i]; i++) {
        unsigned char c = (unsigned char)rd[i];
        bool lone_pct = c == '%' && !(isxdigit((unsigned char)rd[i + 1]) &&
                                      isxdigit((unsigned char)rd[i + 2]));
        if (i >= start && (c == ' ' || c >= 0x80 || lone_pct)) {
            if (o + 3 > RD_MAX)
                return false;
            out[o++] = '%';
            out[o++] = hexd[c >> 4];
            out[o++] = hexd[c & 15];
        } else {
            if (o + 1 > RD_MAX)
                return false;
            out[o++] = (char)c;
        }
    }
    out[o] = '\0';
    return true;
}

bool page_rd_ok(const struct config *cfg, const char *given, char out[RD_MAX + 1])
{
    out[0] = '\0';
    char rd[RD_MAX + 1];
    if (!given || !*given || strlen(given) > RD_MAX || !rd_reencode(given, rd))
        return false;
    for (const char *c = rd; *c; c++)
        if (!rd_char_ok(c))
            return false;
    if (rd[0] == '/') {
        /* A path here: not "//host" (protocol-relative), not "/\host",
         * and no dot segment (".." or "." between slashes, which a
         * browser resolves before it goes: "/a/../..//evil.test"). */
        if (rd[1] == '/' || has_dot_segment(rd))
            return false;
        snprintf(out, RD_MAX + 1, "%s", rd);
        return true;
    }
    const char *rest;
    bool http_ok = cfg->public_url && strncmp(cfg->public_url, "http://", 7) == 0;
    bool https = strncasecmp(rd, "https://", 8) == 0;
    if (https)
        rest = rd + 8;
    else if (http_ok && strncasecmp(rd, "http://", 7) == 0)
        rest = rd + 7;
    else
        return false;
    size_t alen = strcspn(rest, "/?#");
    char host[300];
    if (alen == 0 || alen >= sizeof host)
        return false;
    memcpy(host, rest, alen);
    host[alen] = '\0';
    if (strchr(host, '@') || strchr(host, '%'))
        return false;
    int64_t port = authority_port(host, alen, https); /* canonical: no leading zeros */
    if (port < 0)
        return false;
    host[strcspn(host, ":")] = '\0';
    /* An allowed domain on any port; jwtd's own host only at jwtd's own
     * origin (another port of that host is another site), even when a
     * listed parent domain covers it. */
    char own[300];
    bool own_host = config_public_host(cfg, own, sizeof own) && strcasecmp(own, host) == 0;
    bool ok = own_host ? own_origin(cfg, https, host, port) : host_allowed(cfg, host);
    if (ok)
        snprintf(out, RD_MAX + 1, "%s", rd);
    return ok;
}

void page_urlencode(const char *in, char *out, size_t cap)
{
    static const char hexd[] = "0123456789ABCDEF";
    size_t o = 0;
    if (cap == 0)
        return;
    for (const unsigned char *c = (const unsigned char *)in; *c; c++) {
        bool plain = (*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') ||
                     (*c >= '0' && *c <= '9') || *c == '-' || *c == '_' || *c == '.' ||
                     *c == '~' || *c == '/';
        /* A character, and the NUL after it, must fit: 3 * strlen(in) + 1
         * bytes hold any input whole. */
        if (o + (plain ? 1 : 3) >= cap)
            break;
        if (plain) {
            out[o++] = (char)*c;
        } else {
            out[o++] = '%';
            out[o++] = hexd[*c >> 4];
            out[o++] = hexd[*c & 15];
        }
    }
    out[o] = '\0';
}

bool page_set_session(struct request *r, const struct session_grant *g)
{
    return cookie_set_tokens(r, g->access_token, g->access_ttl, g->refresh_token,
                             g->refresh_ttl) &&
           cookie_set_hint(r, g->refresh_ttl);
}

void page_clear_session(struct request *r)
{
    cookie_clear_tokens(r);
    cookie_set_hint(r, 0);
}

const char *page_failure_text(const struct svc_result *res, char *buf, size_t cap)
{
    const char *d = res->detail;
    switch (res->status) {
    case SVC_INVALID_USERNAME:
        return d ? d : "That username is not allowed.";
    case SVC_WEAK_PASSWORD:
        snprintf(buf, cap, "That password is too weak: %s.", d ? d : "it breaks the rules");
        return buf;
    case SVC_USERNAME_TAKEN:
        return "That username is already taken.";
    case SVC_SIGNUP_CLOSED:
        return "Signing up is closed on this server.";
    case SVC_BAD_CREDENTIALS:
        return d ? d : "The username or password is wrong.";
    case SVC_WRONG_PASSWORD:
        return "The password is wrong.";
    case SVC_ACCOUNT_DISABLED:
        return "This account is disabled.";
    case SVC_LIMITED:
        snprintf(buf, cap, "Too many %s; try again in %lld second%s.", d ? d : "attempts",
                 (long long)(res->retry_after > 0 ? res->retry_after : 1),
                 res->retry_after > 1 ? "s" : "");
        return buf;
    case SVC_BUSY:
    case SVC_UNAVAILABLE:
        return "The server is too busy; try again in a moment.";
    case SVC_EMAIL_NOT_VERIFIED:
        return "Confirm your e-mail address first: open the link we sent you.";
    case SVC_NOT_CONFIGURED:
        return d ? d : "This server does not send e-mail.";
    case SVC_INVALID_LINK:
        return "This link is unknown, already used or expired.";
    case SVC_EMAIL_TAKEN:
        return "That e-mail address belongs to another account.";
    case SVC_INVALID_EMAIL:
        return d ? d : "That is not an e-mail address this server accepts.";
    case SVC_ERROR:
        return "Something went wrong on the server.";
    default:
        return d ? d : "That did not work.";
    }
}

unsigned page_failure_status(struct request *r, const struct svc_result *res)
{
    if (res->status == SVC_LIMITED)
        respond_retry_after(r, res->retry_after);
    else if (res->status == SVC_BUSY || res->status == SVC_UNAVAILABLE)
        respond_retry_after(r, 1);
    return http_status_of(res->status);
}
