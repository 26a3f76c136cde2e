/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Implementation of smtp.h on libcurl's SMTP client. Owns the mapping from
 * the operator's relay settings to libcurl options and from libcurl's
 * outcome to sent / try later / give up. Must not log, retry, sleep, or
 * touch process-wide state other than through smtp_global_init.
 *
 * The credentials are taken out of the URL here and handed to libcurl
 * separately (CURLOPT_USERNAME/PASSWORD), so that the URL libcurl sees, and
 * may quote in its messages, holds none; the password is also masked in
 * the final error text in case some path still echoes it.
 */
#include "core/smtp.h"

#include <arpa/inet.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>
#include <openssl/crypto.h>

#include "base/util.h"
#include "core/mime.h"

#define DEFAULT_CONNECT_TIMEOUT_MS 10000L
#define DEFAULT_TIMEOUT_MS 60000L
/* RFC 5321 section 4.5.3.1.6: 998 characters before the CRLF. */
#define LINE_MAX_BYTES 998
#define HELO_MAX_BYTES 253

/* ---- checks on what we are asked to send ---- */

/* CRLF lines only: a bare CR or LF is how SMTP smuggling hides a second
 * message in the first one, and relays treat them inconsistently. */
static bool message_valid(const char *m, size_t len)
{
    if (!m || len < 2 || len > SMTP_MAX_MESSAGE_BYTES || m[len - 2] != '\r' || m[len - 1] != '\n')
        return false;
    size_t line = 0;
    for (size_t i = 0; i < len; i++) {
        char c = m[i];
        if (c == '\0' || c == '\n')
            return false;
        if (c == '\r') {
            if (i + 1 == len || m[i + 1] != '\n')
                return false;
            i++;
            line = 0;
            continue;
        }
        if (++line > LINE_MAX_BYTES)
            return false;
    }
    return true;
}

static bool helo_valid(const char *h)
{
    size_t n = strnlen(h, HELO_MAX_BYTES + 1);
    if (n == 0 || n > HELO_MAX_BYTES)
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)h[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '.'))
            return false;
    }
    return true;
}

static bool credential_valid(const char *s)
{
    return strnlen(s, SMTP_CREDENTIAL_MAX_BYTES + 1) <= SMTP_CREDENTIAL_MAX_BYTES;
}

/* Where a plain-text password cannot be overheard: this machine. */
static bool host_is_loopback(const char *host)
{
    if (strcasecmp(host, "localhost") == 0)
        return true;
    struct in_addr a4;
    if (inet_pton(AF_INET, host, &a4) == 1)
        return (ntohl(a4.s_addr) >> 24) == 127;
    size_t n = strlen(host);
    if (n > 2 && host[0] == '[' && host[n - 1] == ']') {
        char inner[64];
        struct in6_addr a6;
        if (n - 2 >= sizeof inner)
            return false;
        memcpy(inner, host + 1, n - 2);
        inner[n - 2] = '\0';
        return inet_pton(AF_INET6, inner, &a6) == 1 && IN6_IS_ADDR_LOOPBACK(&a6);
    }
    return false;
}

/* ---- error text ---- */

static void err_set(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void err_set(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || errlen == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* Overwrite every occurrence of secret in s with '*'. libcurl never
 * quotes the password (it is not in the URL it sees): this is a second
 * line. Secrets under 6 bytes are left alone - masking every "p" in a
 * message hides the message, not the secret. */
static void redact(char *s, const char *secret)
{
    if (!s || !secret || strlen(secret) < 6)
        return;
    size_t n = strlen(secret);
    for (char *p = strstr(s, secret); p; p = strstr(p + n, secret))
        memset(p, '*', n);
}

/* ---- the relay URL ---- */

struct relay {
    CURLU *url;
    char *scheme, *host, *port;
    char *url_user, *url_password; /* from the URL, decoded; wiped on free */
    char *clean;                   /* the URL libcurl gets: no credentials */
    bool implicit_tls;
};

static void curl_free_wiped(char *s)
{
    if (s) {
        OPENSSL_cleanse(s, strlen(s));
        curl_free(s);
    }
}

static void relay_free(struct relay *r)
{
    curl_free(r->scheme);
    curl_free(r->host);
    curl_free(r->port);
    curl_free_wiped(r->url_user);
    curl_free_wiped(r->url_password);
    curl_free(r->clean);
    curl_url_cleanup(r->url);
    memset(r, 0, sizeof *r);
}

/* Parse and check cfg->url into r. False with err set on a bad URL; r must
 * be released with relay_free either way. */
static bool relay_parse(const struct smtp_config *cfg, struct relay *r, char *err, size_t errlen)
{
    memset(r, 0, sizeof *r);
    if (!cfg->url || strnlen(cfg->url, SMTP_URL_MAX_BYTES + 1) > SMTP_URL_MAX_BYTES) {
        err_set(err, errlen, "smtp: relay URL missing or too long");
        return false;
    }
    r->url = curl_url();
    if (!r->url) {
        err_set(err, errlen, "smtp: out of memory");
        return false;
    }
    /* Never quote cfg->url in an error: it may carry the password. */
    if (curl_url_set(r->url, CURLUPART_URL, cfg->url, 0) != CURLUE_OK ||
        curl_url_get(r->url, CURLUPART_SCHEME, &r->scheme, 0) != CURLUE_OK ||
        curl_url_get(r->url, CURLUPART_HOST, &r->host, 0) != CURLUE_OK ||
        curl_url_get(r->url, CURLUPART_PORT, &r->port, CURLU_DEFAULT_PORT) != CURLUE_OK) {
        err_set(err, errlen, "smtp: relay URL cannot be parsed");
        return false;
    }
    if (strcmp(r->scheme, "smtps") == 0) {
        r->implicit_tls = true;
    } else if (strcmp(r->scheme, "smtp") != 0) {
        err_set(err, errlen, "smtp: relay URL scheme must be smtp or smtps");
        return false;
    }
    char *part = NULL;
    bool extra = false;
    if (curl_url_get(r->url, CURLUPART_PATH, &part, 0) == CURLUE_OK && part &&
        strcmp(part, "/") != 0 && part[0] != '\0')
        extra = true;
    curl_free(part);
    part = NULL;
    if (curl_url_get(r->url, CURLUPART_QUERY, &part, 0) == CURLUE_OK)
        extra = true;
    curl_free(part);
    part = NULL;
    if (curl_url_get(r->url, CURLUPART_FRAGMENT, &part, 0) == CURLUE_OK)
        extra = true;
    curl_free(part);
    part = NULL;
    if (curl_url_get(r->url, CURLUPART_OPTIONS, &part, 0) == CURLUE_OK)
        extra = true;
    curl_free(part);
    if (extra) {
        err_set(err, errlen, "smtp: relay URL %s://%s:%s has a path, query, fragment or login "
                "options (use helo_name for the EHLO name)", r->scheme, r->host, r->port);
        return false;
    }
    /* Decoded credentials; NO_USER / NO_PASSWORD are not errors. */
    CURLUcode uc = curl_url_get(r->url, CURLUPART_USER, &r->url_user, CURLU_URLDECODE);
    CURLUcode pc = curl_url_get(r->url, CURLUPART_PASSWORD, &r->url_password, CURLU_URLDECODE);
    if ((uc != CURLUE_OK && uc != CURLUE_NO_USER) ||
        (pc != CURLUE_OK && pc != CURLUE_NO_PASSWORD)) {
        err_set(err, errlen, "smtp: relay URL %s://%s:%s has undecodable credentials", r->scheme,
                r->host, r->port);
        return false;
    }
    if (curl_url_set(r->url, CURLUPART_USER, NULL, 0) != CURLUE_OK ||
        curl_url_set(r->url, CURLUPART_PASSWORD, NULL, 0) != CURLUE_OK ||
        (cfg->helo_name && curl_url_set(r->url, CURLUPART_PATH, cfg->helo_name, 0) != CURLUE_OK) ||
        curl_url_get(r->url, CURLUPART_URL, &r->clean, 0) != CURLUE_OK) {
        err_set(err, errlen, "smtp: relay URL %s://%s:%s cannot be rebuilt", r->scheme, r->host,
                r->port);
        return false;
    }
    return true;
}

/*
 * What can be checked of cfg without a connection: the TLS policy, the
 * EHLO name, the relay URL and its credentials (never sent in clear text
 * but to a loopback relay). Fills r (to be released with relay_free either
 * way) and the user and password to log in with. False with err set.
 */
static bool relay_setup(const struct smtp_config *cfg, struct relay *r, const char **ret_user,
                        const char **ret_password, char *err, size_t errlen)
{
    memset(r, 0, sizeof *r);
    if (cfg->tls != SMTP_TLS_REQUIRED && cfg->tls != SMTP_TLS_OPPORTUNISTIC &&
        cfg->tls != SMTP_TLS_OFF) {
        err_set(err, errlen, "smtp: unknown TLS policy %d", (int)cfg->tls);
        return false;
    }
    if (cfg->helo_name && !helo_valid(cfg->helo_name)) {
        err_set(err, errlen, "smtp: helo_name is not a host name");
        return false;
    }
    if ((cfg->username && !credential_valid(cfg->username)) ||
        (cfg->password && !credential_valid(cfg->password))) {
        err_set(err, errlen, "smtp: username or password longer than %d bytes",
                SMTP_CREDENTIAL_MAX_BYTES);
        return false;
    }

    if (!relay_parse(cfg, r, err, errlen))
        return false;

    const char *user = cfg->username ? cfg->username : r->url_user;
    const char *password = cfg->password ? cfg->password : r->url_password;
    if (user && !credential_valid(user)) {
        err_set(err, errlen, "smtp: username longer than %d bytes", SMTP_CREDENTIAL_MAX_BYTES);
        return false;
    }
    if (password && !credential_valid(password)) {
        err_set(err, errlen, "smtp: password longer than %d bytes", SMTP_CREDENTIAL_MAX_BYTES);
        return false;
    }
    bool has_credentials = user && user[0];
    if (!has_credentials && password && password[0]) {
        /* libcurl would silently skip AUTH: say so instead. */
        err_set(err, errlen, "smtp: %s://%s:%s: a password but no username", r->scheme, r->host,
                r->port);
        return false;
    }
    bool tls_sure = r->implicit_tls || cfg->tls == SMTP_TLS_REQUIRED;
    if (has_credentials && !tls_sure && !host_is_loopback(r->host)) {
        err_set(err, errlen, "smtp: %s://%s:%s: refusing to send credentials without TLS "
                "(use smtps:// or tls required)", r->scheme, r->host, r->port);
        return false;
    }
    *ret_user = user;
    *ret_password = password;
    return true;
}

bool smtp_config_check(const struct smtp_config *cfg, char *err, size_t errlen)
{
    struct relay r;
    const char *user, *password;
    bool ok = relay_setup(cfg, &r, &user, &password, err, errlen);
    redact(err, cfg->password);
    redact(err, r.url_password);
    relay_free(&r);
    return ok;
}

/* ---- the transfer ---- */

struct reader {
    const char *p;
    size_t len, off;
};

static size_t read_cb(char *buf, size_t size, size_t nitems, void *userdata)
{
    struct reader *r = userdata;
    size_t room = size * nitems;
    size_t n = r->len - r->off;
    if (n > room)
        n = room;
    memcpy(buf, r->p + r->off, n);
    r->off += n;
    return n;
}

/* The attempt's own deadline, and the caller's cancel flag. libcurl calls
 * this at least once a second in every step, its blocking waits for a
 * reply included: it is what bounds the wait for the reply to the end of
 * DATA and to QUIT, which CURLOPT_TIMEOUT does not (libcurl 7.88 waits
 * 120 s there; a relay that took the message and fell silent held the
 * mail worker, and the message's lease ran out under it). */
struct watch {
    const atomic_bool *cancel;
    const struct reader *rd; /* how much of the message libcurl has taken */
    int64_t deadline_ms;     /* util_mono_ms() */
    int64_t grace_end_ms;    /* a cancel's grace, once the message is all out */
    bool cancelled, expired;
};

/* A cancel that comes once the whole message is with the relay waits this
 * long (within the deadline) for its answer: a relay that scans what it
 * took answers the final dot after a second or so, and a message cut
 * there is sent again by the next start (its fate unknown). Short: the
 * stop as a whole must stay within the service manager's stop timeout
 * (docs/operations.md). */
#define STOP_GRACE_MS 2000

static int watch_cb(void *userdata, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                    curl_off_t ulnow)
{
    (void)dltotal;
    (void)dlnow;
    (void)ultotal;
    (void)ulnow;
    struct watch *w = userdata;
    int64_t now = util_mono_ms();
    if (w->cancel && atomic_load(w->cancel)) {
        if (w->rd->len > 0 && w->rd->off == w->rd->len && w->grace_end_ms == 0)
            w->grace_end_ms = now + STOP_GRACE_MS;
        if (w->grace_end_ms == 0 || now >= w->grace_end_ms)
            w->cancelled = true;
    }
    if (!w->cancelled && now >= w->deadline_ms)
        w->expired = true;
    return w->cancelled || w->expired;
}

/* See smtp.h for the reasoning. code is the last SMTP reply, 0 if none;
 * why is libcurl's error text, which names the step that failed. */
static enum smtp_rc classify(CURLcode rc, long code, const char *why)
{
    if (rc == CURLE_OK)
        return SMTP_SENT;
    if (rc == CURLE_LOGIN_DENIED || rc == CURLE_USE_SSL_FAILED || code == 530)
        return SMTP_TEMPORARY;
    /* A 5xx before any recipient is named - to the greeting, to EHLO
     * (libcurl: "remote access denied") or to MAIL FROM - refuses this
     * client or its sender address, not this message. */
    /* (552 to MAIL FROM is about this message: its declared SIZE.) */
    if (rc == CURLE_REMOTE_ACCESS_DENIED ||
        (strncmp(why, "MAIL failed", 11) == 0 && code != 552) ||
        strncmp(why, "Got unexpected smtp-server response", 35) == 0)
        return SMTP_TEMPORARY;
    if (code >= 500 && code <= 599)
        return SMTP_PERMANENT;
    return SMTP_TEMPORARY;
}

bool smtp_global_init(void)
{
    return curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK;
}

void smtp_global_cleanup(void)
{
    curl_global_cleanup();
}

#define SETOPT(h, opt, val)                                                                        \
    do {                                                                                           \
        if (curl_easy_setopt((h), (opt), (val)) != CURLE_OK) {                                     \
            setopt_failed = #opt;                                                                  \
            goto cleanup_curl;                                                                     \
        }                                                                                          \
    } while (0)

enum smtp_rc smtp_send(const struct smtp_config *cfg, const char *from_addr, const char *to_addr,
                       const char *message, size_t len, char *err, size_t errlen)
{
    enum smtp_rc ret = SMTP_TEMPORARY;
    err_set(err, errlen, "smtp: internal error");
    if (!cfg) {
        err_set(err, errlen, "smtp: no relay configured");
        return SMTP_TEMPORARY;
    }
    if (!mime_addr_valid(from_addr) || !mime_addr_valid(to_addr)) {
        err_set(err, errlen, "smtp: envelope sender or recipient is not a plain address");
        return SMTP_PERMANENT;
    }
    if (!message_valid(message, len)) {
        err_set(err, errlen, "smtp: message is empty, larger than %u bytes, or not made of "
                "CRLF lines of at most %d bytes", SMTP_MAX_MESSAGE_BYTES, LINE_MAX_BYTES);
        return SMTP_PERMANENT;
    }
    struct relay r;
    const char *user, *password;
    if (!relay_setup(cfg, &r, &user, &password, err, errlen))
        goto cleanup_relay;

    const char *setopt_failed = NULL;
    struct curl_slist *rcpt = NULL;
    struct reader rd = {.p = message, .len = len, .off = 0};
    char errbuf[CURL_ERROR_SIZE];
    errbuf[0] = '\0';
    CURL *h = curl_easy_init();
    if (!h) {
        err_set(err, errlen, "smtp: cannot create a libcurl handle");
        goto cleanup_relay;
    }
    rcpt = curl_slist_append(NULL, to_addr);
    if (!rcpt) {
        err_set(err, errlen, "smtp: out of memory");
        goto cleanup_curl;
    }

    long connect_ms = cfg->connect_timeout_ms > 0 ? cfg->connect_timeout_ms
                                                  : DEFAULT_CONNECT_TIMEOUT_MS;
    long total_ms = cfg->timeout_ms > 0 ? cfg->timeout_ms : DEFAULT_TIMEOUT_MS;
    long use_ssl = r.implicit_tls || cfg->tls == SMTP_TLS_REQUIRED ? (long)CURLUSESSL_ALL
                   : cfg->tls == SMTP_TLS_OPPORTUNISTIC            ? (long)CURLUSESSL_TRY
                                                                   : (long)CURLUSESSL_NONE;

    SETOPT(h, CURLOPT_ERRORBUFFER, errbuf);
    SETOPT(h, CURLOPT_URL, r.clean);
#if LIBCURL_VERSION_NUM >= 0x075500
    SETOPT(h, CURLOPT_PROTOCOLS_STR, "smtp,smtps");
#else
    SETOPT(h, CURLOPT_PROTOCOLS, (long)(CURLPROTO_SMTP | CURLPROTO_SMTPS));
#endif
    /* Threads: no SIGALRM for timeouts (the threaded resolver keeps DNS
     * within them). Environment: no *_proxy variable may divert the mail. */
    SETOPT(h, CURLOPT_NOSIGNAL, 1L);
    SETOPT(h, CURLOPT_PROXY, "");
    SETOPT(h, CURLOPT_FORBID_REUSE, 1L);
    SETOPT(h, CURLOPT_USE_SSL, use_ssl);
    SETOPT(h, CURLOPT_SSL_VERIFYPEER, 1L);
    SETOPT(h, CURLOPT_SSL_VERIFYHOST, 2L);
    SETOPT(h, CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
    if (cfg->ca_file)
        SETOPT(h, CURLOPT_CAINFO, cfg->ca_file);
    struct watch watch = {.cancel = cfg->cancel, .rd = &rd, .deadline_ms = util_mono_ms() + total_ms};
    SETOPT(h, CURLOPT_CONNECTTIMEOUT_MS, connect_ms);
    SETOPT(h, CURLOPT_TIMEOUT_MS, total_ms);
    /* Each reply wait too (whole seconds): a second line behind watch_cb. */
    SETOPT(h, CURLOPT_SERVER_RESPONSE_TIMEOUT, (total_ms + 999) / 1000);
    SETOPT(h, CURLOPT_NOPROGRESS, 0L);
    SETOPT(h, CURLOPT_XFERINFOFUNCTION, watch_cb);
    SETOPT(h, CURLOPT_XFERINFODATA, &watch);
    if (user && user[0]) { /* credentials: relay_setup checked them */
        SETOPT(h, CURLOPT_USERNAME, user);
        SETOPT(h, CURLOPT_PASSWORD, password ? password : "");
    }
    SETOPT(h, CURLOPT_MAIL_FROM, from_addr);
    SETOPT(h, CURLOPT_MAIL_RCPT, rcpt);
    SETOPT(h, CURLOPT_UPLOAD, 1L);
    SETOPT(h, CURLOPT_READFUNCTION, read_cb);
    SETOPT(h, CURLOPT_READDATA, &rd);
    SETOPT(h, CURLOPT_INFILESIZE_LARGE, (curl_off_t)len);

    CURLcode rc = curl_easy_perform(h);
    long code = 0;
    if (curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code) != CURLE_OK)
        code = 0;
    ret = classify(rc, code, errbuf);
    if (rc == CURLE_ABORTED_BY_CALLBACK && watch.cancelled)
        snprintf(errbuf, sizeof errbuf, "cut short: the sender is stopping");
    else if (rc == CURLE_ABORTED_BY_CALLBACK && watch.expired)
        snprintf(errbuf, sizeof errbuf, "timed out: no answer within %ld ms", total_ms);
    if (ret == SMTP_SENT) {
        err_set(err, errlen, "smtp: %s://%s:%s: sent (%ld)", r.scheme, r.host, r.port, code);
    } else {
        size_t el = strlen(errbuf);
        if (el > 0 && errbuf[el - 1] == '\n')
            errbuf[el - 1] = '\0';
        err_set(err, errlen, "smtp: %s://%s:%s: %s (curl %d: %s; last reply %ld)", r.scheme, r.host,
                r.port, errbuf[0] ? errbuf : "failed", (int)rc, curl_easy_strerror(rc), code);
    }

cleanup_curl:
    if (setopt_failed) {
        err_set(err, errlen, "smtp: libcurl refused %s", setopt_failed);
        ret = SMTP_TEMPORARY;
    }
    curl_easy_cleanup(h);
    curl_slist_free_all(rcpt);
cleanup_relay:
    redact(err, cfg->password);
    redact(err, r.url_password);
    relay_free(&r);
    return ret;
}
