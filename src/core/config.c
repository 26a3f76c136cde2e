/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The settings table and its parsers. Each setting is one row: environment
 * name, default (parsed by the same code as user input, so the defaults
 * cannot drift from what the parser accepts), what it accepts (used in
 * error lines and in `jwtd serve --help`), and a parse function. Reading
 * files (TLS certificate and key) happens here too, at start-up only.
 */
#include "core/config.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <ctype.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "base/util.h"
#include "core/mime.h"
#include "core/smtp.h"

typedef bool (*parse_fn)(struct config *cfg, const char *value);

/* Setting flags. */
#define S_RELOAD 1u /* applied by SIGHUP without a restart */
#define S_SECRET 2u /* never echoed in errors or `jwtd config` */

struct setting {
    const char *name;    /* environment name */
    const char *def;     /* default, parsed like any value; NULL = derived */
    const char *accepts; /* for error lines, --help and the man page */
    parse_fn parse;
    unsigned flags;
};

/* ---- parsers ---- */

static bool set_str(char **dst, const char *v)
{
    char *d = strdup(v);
    if (!d)
        return false;
    free(*dst);
    *dst = d;
    return true;
}

/* RFC 1123 host name: dot-separated labels of letters, digits and '-'. */
static bool host_name_ok(const char *h)
{
    size_t n = strlen(h), label = 0;
    if (n == 0 || n > 253)
        return false;
    for (size_t i = 0; i < n; i++) {
        char ch = h[i];
        if (ch == '.') {
            if (label == 0 || h[i - 1] == '-')
                return false;
            label = 0;
        } else if (isalnum((unsigned char)ch) || (ch == '-' && label > 0)) {
            if (++label > 63)
                return false;
        } else {
            return false;
        }
    }
    return label > 0 && h[n - 1] != '-';
}

static bool resolve_host(const char *host, char *out, size_t cap, bool *ret_v6)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    struct addrinfo *res = NULL;
    if (getaddrinfo(host, NULL, &hints, &res) != 0 || !res)
        return false;
    bool ok = false;
    for (struct addrinfo *a = res; a && !ok; a = a->ai_next) {
        if (a->ai_family == AF_INET)
            ok = inet_ntop(AF_INET, &((struct sockaddr_in *)a->ai_addr)->sin_addr, out,
                           (socklen_t)cap) != NULL;
        else if (a->ai_family == AF_INET6)
            ok = inet_ntop(AF_INET6, &((struct sockaddr_in6 *)a->ai_addr)->sin6_addr, out,
                           (socklen_t)cap) != NULL;
        if (ok)
            *ret_v6 = a->ai_family == AF_INET6;
    }
    freeaddrinfo(res);
    return ok;
}

static bool p_listen(struct config *c, const char *v)
{
    const char *host, *port;
    char hostbuf[64];
    if (v[0] == '[') {
        const char *close = strchr(v, ']');
        if (!close || close[1] != ':' || (size_t)(close - v - 1) >= sizeof hostbuf)
            return false;
        memcpy(hostbuf, v + 1, (size_t)(close - v - 1));
        hostbuf[close - v - 1] = '\0';
        port = close + 2;
    } else {
        const char *colon = strrchr(v, ':');
        if (!colon || (size_t)(colon - v) >= sizeof hostbuf || strchr(v, ':') != colon)
            return false;
        memcpy(hostbuf, v, (size_t)(colon - v));
        hostbuf[colon - v] = '\0';
        port = colon + 1;
    }
    host = hostbuf;
    /* ":8080" is refused (config_load says why): every interface is
     * 0.0.0.0:8080 or [::]:8080, said explicitly. */
    if (host[0] == '\0')
        return false;
    if (strcmp(host, "localhost") == 0)
        host = "127.0.0.1";
    int64_t p;
    if (!util_parse_int(port, 1, 65535, &p))
        return false;
    unsigned char addr[16];
    char resolved[INET6_ADDRSTRLEN];
    bool v6;
    if (inet_pton(AF_INET, host, addr) == 1) {
        v6 = false;
    } else if (inet_pton(AF_INET6, host, addr) == 1) {
        v6 = true;
    } else {
        /* A host name: listen on the first address it resolves to. */
        if (!host_name_ok(host))
            return false;
        if (!resolve_host(host, resolved, sizeof resolved, &v6)) {
            snprintf(c->parse_why, sizeof c->parse_why,
                     "the host name '%.64s' does not resolve to an address", host);
            return false;
        }
        host = resolved;
    }
    if (!set_str(&c->listen, v))
        return false;
    snprintf(c->listen_host, sizeof c->listen_host, "%s", host);
    c->listen_port = (uint16_t)p;
    c->listen_ipv6 = v6;
    return true;
}

static bool p_database(struct config *c, const char *v)
{
    if (strncmp(v, "sqlite:", 7) == 0) {
        if (v[7] == '\0')
            return false;
    } else if (strncmp(v, "postgres://", 11) != 0 && strncmp(v, "postgresql://", 13) != 0) {
        return false;
    }
    return set_str(&c->database, v);
}

/* Issuer and audience end up in JSON, HTTP headers and logs: printable
 * ASCII without spaces, quotes or backslashes keeps them safe everywhere. */
static bool token_string_ok(const char *v)
{
    if (!*v || strlen(v) > 512)
        return false;
    for (const char *p = v; *p; p++)
        if ((unsigned char)*p <= 0x20 || *p == '"' || *p == '\\' || (unsigned char)*p >= 0x7f)
            return false;
    return true;
}

static bool p_issuer(struct config *c, const char *v)
{
    return token_string_ok(v) && set_str(&c->issuer, v);
}

/* http(s)://host[:port][/path], no query, fragment or user info; the
 * trailing slash is dropped (it is a prefix for links). */
/* The longest JWTD_PUBLIC_URL: links, the JWKS URL and the WebAuthn
 * origin are built from it in fixed buffers with room to spare. */
#define PUBLIC_URL_MAX 400

/*
 * JWTD_PUBLIC_URL (and each of JWTD_CORS_ORIGINS, origin_only: no path),
 * kept in the form browsers write an origin in: scheme and host in lower
 * case, no default port (":443" for https, ":80" for http), no trailing
 * slash - so that the WebAuthn origin, mail links and CORS origins compare
 * equal to what a browser sends.
 */
static bool web_url_canonical(const char *v, bool origin_only, char *res, size_t cap)
{
    bool https = strncasecmp(v, "https://", 8) == 0;
    if (!https && strncasecmp(v, "http://", 7) != 0)
        return false;
    const char *rest = v + (https ? 8 : 7);
    if (!token_string_ok(v) || strpbrk(v, "?#@") || strlen(v) > PUBLIC_URL_MAX)
        return false;
    size_t hostlen = strcspn(rest, "/");
    char host[300];
    if (hostlen == 0 || hostlen >= sizeof host)
        return false;
    for (size_t i = 0; i < hostlen; i++)
        host[i] = (rest[i] >= 'A' && rest[i] <= 'Z') ? (char)(rest[i] + 32) : rest[i];
    host[hostlen] = '\0';
    char *colon = host[0] == '[' ? strstr(host, "]:") : strrchr(host, ':');
    int64_t port = 0;
    if (colon) {
        if (host[0] == '[')
            colon++;
        if (!util_parse_int(colon + 1, 1, 65535, &port))
            return false;
        *colon = '\0';
    }
    unsigned char addr[16];
    if (host[0] == '[') {
        size_t n = strlen(host);
        if (n < 3 || host[n - 1] != ']')
            return false;
        host[n - 1] = '\0';
        bool ok = inet_pton(AF_INET6, host + 1, addr) == 1;
        host[n - 1] = ']';
        if (!ok)
            return false;
    } else if (inet_pton(AF_INET, host, addr) != 1 && !host_name_ok(host)) {
        return false;
    }
    const char *path = rest + hostlen;
    size_t plen = strlen(path);
    if (origin_only && plen) /* an origin has no path, not even "/" */
        return false;
    while (plen > 0 && path[plen - 1] == '/')
        plen--;
    char portbuf[8] = "";
    if (port && port != (https ? 443 : 80))
        snprintf(portbuf, sizeof portbuf, ":%d", (int)port);
    int n = snprintf(res, cap, "%s://%s%s%.*s", https ? "https" : "http", host, portbuf,
                     (int)plen, path);
    return n > 0 && (size_t)n < cap;
}

static bool p_public_url(struct config *c, const char *v)
{
    if (!*v) {
        free(c->public_url);
        c->public_url = NULL;
        return true;
    }
    char out[PUBLIC_URL_MAX + 16];
    return web_url_canonical(v, false, out, sizeof out) && set_str(&c->public_url, out);
}

static bool p_audience(struct config *c, const char *v)
{
    return token_string_ok(v) && set_str(&c->audience, v);
}

static bool p_alg(struct config *c, const char *v)
{
    /* Keywords of the configuration are read in any case ("es256", "JSON",
     * "Open"); only tokens' "alg" headers are case-sensitive. */
    static const char *const names[] = {"ES256", "EdDSA", "RS256", "HS256"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strcasecmp(v, names[i]) == 0) {
            c->alg = jwtd_alg_from_name(names[i]);
            return c->alg != 0;
        }
    return false;
}

static bool p_secret(struct config *c, const char *v)
{
    size_t n = strlen(v);
    if (c->jwt_secret) {
        OPENSSL_cleanse(c->jwt_secret, c->jwt_secret_len);
        free(c->jwt_secret);
        c->jwt_secret = NULL;
        c->jwt_secret_len = 0;
    }
    if (n == 0)
        return true; /* empty means unset */
    c->jwt_secret = malloc(n);
    if (!c->jwt_secret)
        return false;
    memcpy(c->jwt_secret, v, n);
    c->jwt_secret_len = n;
    return true;
}

static bool dur_in(const char *v, int64_t min, int64_t max, int64_t *dst)
{
    int64_t s;
    if (!util_parse_duration(v, &s) || s < min || s > max)
        return false;
    *dst = s;
    return true;
}

#define DAY (INT64_C(86400))

static bool p_access_ttl(struct config *c, const char *v) { return dur_in(v, 1, 30 * DAY, &c->access_ttl); }
static bool p_refresh_ttl(struct config *c, const char *v) { return dur_in(v, 1, 3650 * DAY, &c->refresh_ttl); }
static bool p_refresh_abs(struct config *c, const char *v) { return dur_in(v, 1, 3650 * DAY, &c->refresh_absolute_ttl); }
static bool p_reuse(struct config *c, const char *v) { return dur_in(v, 0, 300, &c->refresh_reuse_interval); }
static bool p_leeway(struct config *c, const char *v) { return dur_in(v, 0, 300, &c->leeway); }
static bool p_conn_timeout(struct config *c, const char *v) { return dur_in(v, 1, 3600, &c->connection_timeout); }
static bool p_req_timeout(struct config *c, const char *v) { return dur_in(v, 1, 600, &c->request_timeout); }
static bool p_key_rotation(struct config *c, const char *v) { return dur_in(v, 0, 3650 * DAY, &c->key_rotation); }
static bool p_key_ahead(struct config *c, const char *v) { return dur_in(v, 0, 30 * DAY, &c->key_publish_ahead); }
static bool p_login_lock_base(struct config *c, const char *v) { return dur_in(v, 1, DAY, &c->login_lockout_base); }
static bool p_login_lock_max(struct config *c, const char *v) { return dur_in(v, 1, 30 * DAY, &c->login_lockout_max); }
static bool ms_in(const char *v, int64_t min, int64_t max, int64_t *dst);
static bool p_rate_window(struct config *c, const char *v) { return dur_in(v, 1, DAY, &c->rate_window); }
static bool p_reset_ttl(struct config *c, const char *v) { return dur_in(v, 60, DAY, &c->reset_ttl); }
static bool p_verify_ttl(struct config *c, const char *v) { return dur_in(v, 60, 30 * DAY, &c->verify_ttl); }

/* "smtp://host:port" or "smtps://...", user:password@ allowed; "" = no mail. */
static bool p_smtp_url(struct config *c, const char *v)
{
    if (!*v) {
        free(c->smtp_url);
        c->smtp_url = NULL;
        return true;
    }
    if (strncmp(v, "smtp://", 7) != 0 && strncmp(v, "smtps://", 8) != 0)
        return false;
    const char *host = strchr(v, '@') ? strrchr(v, '@') + 1 : strstr(v, "://") + 3;
    if (!*host || strpbrk(host, "/?#") || strlen(v) > 1024)
        return false;
    return set_str(&c->smtp_url, v);
}

static bool p_smtp_tls(struct config *c, const char *v)
{
    if (strcasecmp(v, "required") == 0)
        c->smtp_tls = 0;
    else if (strcasecmp(v, "opportunistic") == 0)
        c->smtp_tls = 1;
    else if (strcasecmp(v, "off") == 0)
        c->smtp_tls = 2;
    else
        return false;
    return true;
}

static bool p_opt_path(char **dst, const char *v)
{
    if (!*v) {
        free(*dst);
        *dst = NULL;
        return true;
    }
    return v[0] == '/' ? set_str(dst, v) : false;
}

static bool p_smtp_ca(struct config *c, const char *v) { return p_opt_path(&c->smtp_ca_file, v); }
static bool p_mail_templates(struct config *c, const char *v) { return p_opt_path(&c->mail_templates, v); }

/* "addr@example.com" or "Display Name <addr@example.com>" */
static bool p_mail_from(struct config *c, const char *v)
{
    char name[200] = "", addr[300];
    if (!*v) {
        free(c->mail_from);
        free(c->mail_from_name);
        c->mail_from = c->mail_from_name = NULL;
        return true;
    }
    const char *lt = strchr(v, '<');
    if (lt) {
        const char *gt = strchr(lt, '>');
        if (!gt || gt[1] || (size_t)(gt - lt - 1) >= sizeof addr || (size_t)(lt - v) >= sizeof name)
            return false;
        memcpy(addr, lt + 1, (size_t)(gt - lt - 1));
        addr[gt - lt - 1] = '\0';
        memcpy(name, v, (size_t)(lt - v));
        name[lt - v] = '\0';
        size_t n = strlen(name);
        while (n && name[n - 1] == ' ')
            name[--n] = '\0';
        /* What the message builder would refuse (a tab, any control
         * character, bytes that are not UTF-8) is refused here: accepted,
         * it failed every message for good, each as "cannot be built". */
        if (strchr(name, '"') || !mime_header_text_valid(name))
            return false;
    } else if (snprintf(addr, sizeof addr, "%s", v) >= (int)sizeof addr) {
        return false;
    }
    if (!mime_addr_valid(addr))
        return false;
    if (!set_str(&c->mail_from, addr))
        return false;
    free(c->mail_from_name);
    c->mail_from_name = name[0] ? strdup(name) : NULL;
    return true;
}

static bool p_mail_retry(struct config *c, const char *v) { return ms_in(v, 10, 3600 * 1000, &c->mail_retry_ms); }
static bool p_mail_retry_max(struct config *c, const char *v) { return ms_in(v, 10, DAY * 1000, &c->mail_retry_max_ms); }
static bool p_mail_give_up(struct config *c, const char *v) { return ms_in(v, 100, 30 * DAY * 1000, &c->mail_give_up_ms); }
static bool p_mail_poll(struct config *c, const char *v) { return ms_in(v, 10, 60 * 1000, &c->mail_poll_ms); }
static bool p_smtp_timeout(struct config *c, const char *v) { return ms_in(v, 100, 600 * 1000, &c->smtp_timeout_ms); }

static bool p_bool(bool *dst, const char *v)
{
    if (strcasecmp(v, "true") == 0 || strcasecmp(v, "yes") == 0 || strcasecmp(v, "on") == 0)
        *dst = true;
    else if (strcasecmp(v, "false") == 0 || strcasecmp(v, "no") == 0 || strcasecmp(v, "off") == 0)
        *dst = false;
    else
        return false;
    return true;
}

static bool p_require_verified(struct config *c, const char *v) { return p_bool(&c->require_verified_email, v); }
static bool p_pages(struct config *c, const char *v) { return p_bool(&c->pages, v); }
static bool p_mfa_ticket_ttl(struct config *c, const char *v) { return dur_in(v, 30, 3600, &c->mfa_ticket_ttl); }

static bool p_site_name(struct config *c, const char *v)
{
    if (!*v) {
        free(c->site_name);
        c->site_name = NULL;
        return true;
    }
    /* Shown in pages (escaped) and in otpauth URIs (encoded); keep it one
     * printable line. */
    if (strlen(v) > 64)
        return false;
    for (const char *p = v; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f || *p == ':')
            return false;
    return set_str(&c->site_name, v);
}

static bool p_opt_host(char **dst, const char *v)
{
    if (!*v) {
        free(*dst);
        *dst = NULL;
        return true;
    }
    if (!host_name_ok(v) || !strchr(v, '.') || !set_str(dst, v))
        return false;
    /* Host names compare in lower case (a cookie's Domain, an RP ID). */
    for (char *p = *dst; *p; p++)
        *p = (char)tolower((unsigned char)*p);
    return true;
}

static bool p_cookie_domain(struct config *c, const char *v) { return p_opt_host(&c->cookie_domain, v); }
static bool p_rp_id(struct config *c, const char *v)
{
    if (strcasecmp(v, "localhost") == 0)
        return set_str(&c->webauthn_rp_id, "localhost");
    return p_opt_host(&c->webauthn_rp_id, v);
}

static bool p_samesite(struct config *c, const char *v)
{
    if (strcasecmp(v, "strict") == 0)
        c->cookie_samesite_lax = false;
    else if (strcasecmp(v, "lax") == 0)
        c->cookie_samesite_lax = true;
    else
        return false;
    return true;
}

static bool ms_in(const char *v, int64_t min, int64_t max, int64_t *dst)
{
    int64_t ms;
    if (!util_parse_duration_ms(v, &ms) || ms < min || ms > max)
        return false;
    *dst = ms;
    return true;
}

static bool p_revocation_poll(struct config *c, const char *v) { return ms_in(v, 10, 1000, &c->revocation_poll_ms); }
static bool p_keyring_poll(struct config *c, const char *v) { return ms_in(v, 100, 3600 * 1000, &c->keyring_poll_ms); }
static bool p_drain_timeout(struct config *c, const char *v) { return ms_in(v, 0, 600 * 1000, &c->drain_timeout_ms); }
static bool p_hash_deadline(struct config *c, const char *v) { return ms_in(v, 100, 60 * 1000, &c->hash_deadline_ms); }
static bool p_db_timeout(struct config *c, const char *v) { return ms_in(v, 100, 60 * 1000, &c->db_timeout_ms); }

static bool uint_in(const char *v, int64_t min, int64_t max, unsigned *dst)
{
    int64_t n;
    if (!util_parse_int(v, min, max, &n))
        return false;
    *dst = (unsigned)n;
    return true;
}

static unsigned ncpus(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 && n < 1024 ? (unsigned)n : 1;
}

static bool p_workers(struct config *c, const char *v)
{
    if (strcasecmp(v, "auto") == 0) {
        c->workers = ncpus();
        return true;
    }
    return uint_in(v, 1, 256, &c->workers);
}

static bool p_hash_workers(struct config *c, const char *v)
{
    if (strcasecmp(v, "auto") == 0) {
        c->hash_workers = 0; /* one per hashing CPU, decided at the end */
        return true;
    }
    return uint_in(v, 1, 256, &c->hash_workers);
}

/* "auto": every CPU this process may use but the first, when it may use
 * two or more (a reserved core for request threads: see
 * docs/configuration.md); "all": no confinement; or a list "1,3-5". */
static bool p_hash_cpus(struct config *c, const char *v)
{
    cpu_set_t allowed, set;
    CPU_ZERO(&set);
    if (sched_getaffinity(0, sizeof allowed, &allowed) != 0)
        return false;
    if (strcasecmp(v, "all") == 0) {
        c->hash_cpus_pinned = false;
        return true;
    }
    if (strcasecmp(v, "auto") == 0) {
        if (CPU_COUNT(&allowed) < 2) {
            c->hash_cpus_pinned = false;
            return true;
        }
        bool first = true;
        for (int i = 0; i < CPU_SETSIZE; i++)
            if (CPU_ISSET(i, &allowed)) {
                if (!first)
                    CPU_SET(i, &set);
                first = false;
            }
    } else {
        const char *p = v;
        while (*p) {
            char *end;
            long a = strtol(p, &end, 10), b;
            if (end == p || a < 0 || a >= CPU_SETSIZE)
                return false;
            b = a;
            if (*end == '-') {
                p = end + 1;
                b = strtol(p, &end, 10);
                if (end == p || b < a || b >= CPU_SETSIZE)
                    return false;
            }
            for (long i = a; i <= b; i++) {
                if (!CPU_ISSET(i, &allowed))
                    return false;
                CPU_SET(i, &set);
            }
            p = end;
            if (*p == ',')
                p++;
            else if (*p)
                return false;
        }
        if (CPU_COUNT(&set) == 0)
            return false;
    }
    c->hash_cpus = set;
    c->hash_cpus_pinned = true;
    return true;
}

static bool p_io_workers(struct config *c, const char *v)
{
    if (strcasecmp(v, "auto") == 0) {
        unsigned n = 2 * ncpus();
        c->io_workers = n < 4 ? 4 : n;
        return true;
    }
    return uint_in(v, 1, 1024, &c->io_workers);
}

static bool p_hash_queue(struct config *c, const char *v) { return uint_in(v, 1, 100000, &c->hash_queue); }
static bool p_max_conn(struct config *c, const char *v) { return uint_in(v, 1, 1000000, &c->max_connections); }
static bool p_max_conn_ip(struct config *c, const char *v) { return uint_in(v, 0, 1000000, &c->max_connections_per_ip); }
static bool p_login_max(struct config *c, const char *v) { return uint_in(v, 1, 1000, &c->login_max_failures); }
static bool p_addr_max(struct config *c, const char *v) { return uint_in(v, 1, 100000, &c->address_max_failures); }
static bool p_addr_consecutive(struct config *c, const char *v) { return uint_in(v, 1, 100000, &c->address_consecutive_failures); }
static bool p_signup_rate(struct config *c, const char *v) { return uint_in(v, 1, 1000000, &c->signup_per_address); }
static bool p_refresh_rate(struct config *c, const char *v) { return uint_in(v, 1, 1000000, &c->refresh_per_address); }
static bool p_mail_rate(struct config *c, const char *v) { return uint_in(v, 1, 1000000, &c->mail_per_address); }
static bool p_mail_account_rate(struct config *c, const char *v) { return uint_in(v, 1, 1000, &c->mail_per_account); }
static bool p_code_attempts(struct config *c, const char *v) { return uint_in(v, 1, 100, &c->code_attempts); }

static bool p_max_body(struct config *c, const char *v)
{
    int64_t n;
    if (!util_parse_int(v, 1024, 1024 * 1024, &n))
        return false;
    c->max_body = (size_t)n;
    return true;
}

static bool p_argon2_m(struct config *c, const char *v)
{
    int64_t n;
    if (!util_parse_int(v, 7168, 4 * 1024 * 1024, &n))
        return false;
    c->argon2_memory_kib = (uint32_t)n;
    return true;
}

static bool p_argon2_t(struct config *c, const char *v)
{
    int64_t n;
    if (!util_parse_int(v, 1, 100, &n))
        return false;
    c->argon2_iterations = (uint32_t)n;
    return true;
}

static bool p_argon2_p(struct config *c, const char *v)
{
    int64_t n;
    if (!util_parse_int(v, 1, 64, &n))
        return false;
    c->argon2_parallelism = (uint32_t)n;
    return true;
}

static bool p_hash_prio(struct config *c, const char *v)
{
    if (strcasecmp(v, "idle") == 0)
        c->hash_priority = WORK_PRIO_IDLE;
    else if (strcasecmp(v, "batch") == 0)
        c->hash_priority = WORK_PRIO_BATCH;
    else if (strcasecmp(v, "normal") == 0)
        c->hash_priority = WORK_PRIO_NORMAL;
    else
        return false;
    return true;
}

static bool p_signup(struct config *c, const char *v)
{
    if (strcasecmp(v, "open") == 0)
        c->signup_open = true;
    else if (strcasecmp(v, "closed") == 0)
        c->signup_open = false;
    else
        return false;
    return true;
}

static bool p_log_format(struct config *c, const char *v)
{
    if (strcasecmp(v, "text") == 0)
        c->log_json = false;
    else if (strcasecmp(v, "json") == 0)
        c->log_json = true;
    else
        return false;
    return true;
}

static bool p_log_level(struct config *c, const char *v)
{
    static const char *const names[] = {"debug", "info", "warn", "error"};
    for (int i = 0; i < 4; i++)
        if (strcasecmp(v, names[i]) == 0) {
            c->log_level = (enum log_level)i;
            return true;
        }
    return false;
}

static bool p_metrics(struct config *c, const char *v)
{
    if (strcasecmp(v, "loopback") == 0)
        c->metrics = METRICS_LOOPBACK;
    else if (strcasecmp(v, "any") == 0)
        c->metrics = METRICS_ANY;
    else if (strcasecmp(v, "off") == 0)
        c->metrics = METRICS_OFF;
    else
        return false;
    return true;
}

static bool p_sqlite_sync(struct config *c, const char *v)
{
    if (strcasecmp(v, "full") == 0)
        c->sqlite_sync_full = true;
    else if (strcasecmp(v, "normal") == 0)
        c->sqlite_sync_full = false;
    else
        return false;
    return true;
}

static void free_list(char ***list, size_t *n)
{
    if (*list) {
        for (size_t i = 0; i < *n; i++)
            free((*list)[i]);
        free(*list);
    }
    *list = NULL;
    *n = 0;
}

/* Split a comma-separated list; each item checked by ok(). */
static bool split_list(const char *v, bool (*ok)(const char *), char ***list, size_t *n)
{
    free_list(list, n);
    if (!*v)
        return true;
    char *copy = strdup(v);
    if (!copy)
        return false;
    size_t cap = 1;
    for (const char *p = v; *p; p++)
        cap += *p == ',';
    char **items = calloc(cap + 1, sizeof *items);
    if (!items) {
        free(copy);
        return false;
    }
    size_t k = 0;
    bool good = true;
    char *save = NULL;
    for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        while (*tok == ' ')
            tok++;
        size_t len = strlen(tok);
        while (len && tok[len - 1] == ' ')
            tok[--len] = '\0';
        if (!len)
            continue;
        if (!ok(tok) || !(items[k] = strdup(tok))) {
            good = false;
            break;
        }
        k++;
    }
    free(copy);
    if (!good) {
        for (size_t i = 0; i < k; i++)
            free(items[i]);
        free(items);
        return false;
    }
    *list = items;
    *n = k;
    return true;
}

/* An origin is scheme://host[:port] with no path, exactly as browsers send
 * it in the Origin header. */
static bool origin_canonical(const char *o, char *out, size_t cap)
{
    return strlen(o) <= 256 && web_url_canonical(o, true, out, cap);
}

static bool origin_ok(const char *o)
{
    char canon[300];
    return origin_canonical(o, canon, sizeof canon);
}

/* Each item of a checked list in the one spelling it is compared in. */
static bool list_canonical(char **items, size_t n, bool (*canon)(const char *, char *, size_t))
{
    for (size_t i = 0; i < n; i++) {
        char buf[300], *dup;
        if (!canon(items[i], buf, sizeof buf) || !(dup = strdup(buf)))
            return false;
        free(items[i]);
        items[i] = dup;
    }
    return true;
}

static bool p_cors(struct config *c, const char *v)
{
    /* Compared byte for byte with the Origin a browser sends. */
    return split_list(v, origin_ok, &c->cors_origins, &c->n_cors_origins) &&
           list_canonical(c->cors_origins, c->n_cors_origins, origin_canonical);
}

static bool addr_ok(const char *a)
{
    unsigned char buf[16];
    return inet_pton(AF_INET, a, buf) == 1 || inet_pton(AF_INET6, a, buf) == 1;
}

/* "example.com" (that host) or ".example.com" (its subdomains) */
static bool redirect_domain_ok(const char *d)
{
    return d[0] == '.' ? host_name_ok(d + 1) : host_name_ok(d);
}

static bool p_redirect_domains(struct config *c, const char *v)
{
    return split_list(v, redirect_domain_ok, &c->redirect_domains, &c->n_redirect_domains);
}

static bool p_trusted_proxies(struct config *c, const char *v)
{
    /* Compared with the peer's address as request.c spells it. */
    return split_list(v, addr_ok, &c->trusted_proxies, &c->n_trusted_proxies) &&
           list_canonical(c->trusted_proxies, c->n_trusted_proxies, util_addr_canonical);
}

static bool read_file(struct config *c, const char *path, char **dst)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(c->parse_why, sizeof c->parse_why, "cannot open it: %s", strerror(errno));
        return false;
    }
    /* It may be the TLS private key: no copy left by the buffer's growth,
     * in stdio's buffer or in the chunk (as the key is wiped in
     * config_free). */
    setvbuf(f, NULL, _IONBF, 0);
    struct buf b;
    buf_init_secret(&b, 1024 * 1024);
    char chunk[4096];
    size_t n;
    bool ok = true;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
        if (!buf_append(&b, chunk, n)) {
            ok = false;
            break;
        }
    OPENSSL_cleanse(chunk, sizeof chunk);
    if (ok && ferror(f))
        snprintf(c->parse_why, sizeof c->parse_why, "cannot read it: %s", strerror(errno));
    else if (ok && b.len == 0)
        snprintf(c->parse_why, sizeof c->parse_why, "the file is empty");
    ok = ok && !ferror(f) && b.len > 0;
    fclose(f);
    if (!ok) {
        buf_wipe_free(&b);
        return false;
    }
    if (*dst) { /* a key given by an earlier source (the file, then a flag) */
        OPENSSL_cleanse(*dst, strlen(*dst));
        free(*dst);
    }
    *dst = buf_steal(&b);
    return true;
}

static bool p_tls_cert(struct config *c, const char *v)
{
    if (!*v)
        return true;
    return read_file(c, v, &c->tls_cert_pem) && set_str(&c->tls_cert_path, v);
}

static bool p_tls_key(struct config *c, const char *v)
{
    if (!*v)
        return true;
    return read_file(c, v, &c->tls_key_pem) && set_str(&c->tls_key_path, v);
}

/* ---- the table ---- */

static const struct setting settings[] = {
    {"JWTD_LISTEN", "127.0.0.1:8080", "host:port: an IPv4 address, [IPv6], localhost or a host name (0.0.0.0:PORT for every interface)", p_listen, 0},
    {"JWTD_DATABASE", "sqlite:./jwtd.db", "sqlite:PATH or postgres://URL", p_database, S_SECRET},
    {"JWTD_PUBLIC_URL", "", "the URL clients reach jwtd at (https://auth.example.com): issuer, JWKS URL, links in mail", p_public_url, 0},
    {"JWTD_ISSUER", NULL, "a URL or other string without spaces or quotes (default JWTD_PUBLIC_URL, else http:// + JWTD_LISTEN, https:// with TLS)", p_issuer, 0},
    {"JWTD_AUDIENCE", "jwtd", "a string without spaces or quotes", p_audience, 0},
    {"JWTD_JWT_ALG", "ES256", "ES256, EdDSA, RS256 or HS256", p_alg, 0},
    {"JWTD_JWT_SECRET", "", "raw bytes, at least 32 (HS256 only)", p_secret, S_SECRET},
    {"JWTD_ACCESS_TTL", "15m", "a duration from 1s to 30d (900, 900s, 15m, 1h; over 1h is warned about)", p_access_ttl, 0},
    {"JWTD_REFRESH_TTL", "30d", "a duration from 1s to 3650d (idle lifetime of a session: 30d, 12h)", p_refresh_ttl, 0},
    {"JWTD_REFRESH_ABSOLUTE_TTL", "90d", "a duration from 1s to 3650d (absolute lifetime of a session)", p_refresh_abs, 0},
    {"JWTD_REFRESH_REUSE_INTERVAL", "10s", "a duration from 0 (strict) to 300s", p_reuse, 0},
    {"JWTD_LEEWAY", "5s", "a duration from 0 to 300s", p_leeway, 0},
    {"JWTD_SIGNUP", "open", "open or closed", p_signup, S_RELOAD},
    {"JWTD_CORS_ORIGINS", "", "comma-separated exact origins (https://app.example.com)", p_cors, S_RELOAD},
    {"JWTD_TLS_CERT", "", "path of a PEM certificate chain (with JWTD_TLS_KEY)", p_tls_cert, S_RELOAD},
    {"JWTD_TLS_KEY", "", "path of a PEM private key (with JWTD_TLS_CERT)", p_tls_key, S_RELOAD},
    {"JWTD_WORKERS", "auto", "HTTP threads: 1-256 or auto (one per CPU)", p_workers, 0},
    {"JWTD_LOG_FORMAT", "text", "text or json", p_log_format, 0},
    {"JWTD_LOG_LEVEL", "info", "debug, info, warn or error", p_log_level, S_RELOAD},
    {"JWTD_ARGON2_MEMORY", "19456", "argon2id memory in KiB, 7168-4194304", p_argon2_m, 0},
    {"JWTD_ARGON2_ITERATIONS", "2", "argon2id passes, 1-100", p_argon2_t, 0},
    {"JWTD_ARGON2_PARALLELISM", "1", "argon2id lanes, 1-64", p_argon2_p, 0},
    {"JWTD_HASH_WORKERS", "auto", "password hashing threads: 1-256 or auto (one per hashing CPU)", p_hash_workers, 0},
    {"JWTD_HASH_CPUS", "auto", "CPUs of the hashing threads: auto (all but the first), all, or a list of CPUs this process may use (1,3-5)", p_hash_cpus, 0},
    {"JWTD_IO_WORKERS", "auto", "threads for storage-bound requests: 1-1024 or auto (2 per CPU, at least 4)", p_io_workers, 0},
    {"JWTD_HASH_QUEUE", "64", "hashing jobs that may wait, 1-100000", p_hash_queue, 0},
    {"JWTD_HASH_DEADLINE", "5s", "longest wait of a hashing job before 503, 100ms-60s", p_hash_deadline, 0},
    {"JWTD_HASH_PRIORITY", "batch", "batch, idle or normal (scheduling of hashing threads)", p_hash_prio, 0},
    {"JWTD_MAX_BODY", "16384", "largest request body in bytes, 1024-1048576", p_max_body, 0},
    {"JWTD_MAX_CONNECTIONS", "4096", "open connections in all, 1-1000000", p_max_conn, 0},
    {"JWTD_MAX_CONNECTIONS_PER_IP", "256", "open connections per client address, 0 (no limit)-1000000", p_max_conn_ip, 0},
    {"JWTD_CONNECTION_TIMEOUT", "30s", "idle connection timeout, 1s-1h", p_conn_timeout, 0},
    {"JWTD_REQUEST_TIMEOUT", "10s", "time a request (line, headers, body) may take to arrive, 1s-10m", p_req_timeout, 0},
    {"JWTD_DRAIN_TIMEOUT", "10s", "on SIGTERM, how long requests in flight may take to finish before queued work is answered 503, 0-10m", p_drain_timeout, S_RELOAD},
    {"JWTD_TRUSTED_PROXIES", "", "comma-separated proxy addresses whose X-Forwarded-For is used", p_trusted_proxies, S_RELOAD},
    {"JWTD_METRICS", "loopback", "who may read /metrics: loopback, any or off", p_metrics, S_RELOAD},
    {"JWTD_SQLITE_SYNC", "full", "full or normal (SQLite synchronous setting)", p_sqlite_sync, 0},
    {"JWTD_DB_TIMEOUT", "5s", "longest wait for one database round trip or lock, 100ms-60s (then 503)", p_db_timeout, 0},
    {"JWTD_KEY_ROTATION", "90d", "automatic signing-key rotation period, a duration up to 3650d, or 0 (off)", p_key_rotation, 0},
    {"JWTD_KEY_PUBLISH_AHEAD", "1h", "how long a new key is published before it signs, 0-30d", p_key_ahead, 0},
    {"JWTD_REVOCATION_POLL", "250ms", "how often revocations are read from storage, 10ms-1s", p_revocation_poll, 0},
    {"JWTD_KEYRING_POLL", "5s", "how often the key ring is re-read from storage, 100ms-1h", p_keyring_poll, 0},
    {"JWTD_LOGIN_MAX_FAILURES", "10", "consecutive failed logins of a username before back-off, 1-1000", p_login_max, S_RELOAD},
    {"JWTD_LOGIN_BACKOFF", "1s", "first back-off after the limit, doubled per further failure, 1s-1d", p_login_lock_base, S_RELOAD},
    {"JWTD_LOGIN_BACKOFF_MAX", "15m", "longest back-off, 1s-30d", p_login_lock_max, S_RELOAD},
    {"JWTD_ADDRESS_BACKOFF_AFTER", "10", "consecutive failed logins from one client address, on different usernames, before back-off (a success from it starts over), 1-100000", p_addr_consecutive, S_RELOAD},
    {"JWTD_ADDRESS_MAX_FAILURES", "1000", "failed logins per client address per window, then 429 until the window ends, 1-100000", p_addr_max, S_RELOAD},
    {"JWTD_SIGNUP_RATE", "1000", "signups per client address per window, 1-1000000", p_signup_rate, S_RELOAD},
    {"JWTD_REFRESH_RATE", "6000", "refreshes per client address per window, 1-1000000", p_refresh_rate, S_RELOAD},
    {"JWTD_RATE_WINDOW", "10m", "window of the per-address counters, 1s-1d", p_rate_window, S_RELOAD},
    {"JWTD_SMTP_URL", "", "smtp://[user:password@]host[:port] or smtps://...; unset: no mail", p_smtp_url, S_RELOAD | S_SECRET},
    {"JWTD_SMTP_TLS", "required", "required (STARTTLS or nothing), opportunistic or off, for smtp://", p_smtp_tls, S_RELOAD},
    {"JWTD_SMTP_CA_FILE", "", "absolute path of PEM CA certificates for the relay (default: the system's)", p_smtp_ca, S_RELOAD},
    {"JWTD_SMTP_TIMEOUT", "30s", "longest delivery attempt, 100ms-10m", p_smtp_timeout, S_RELOAD},
    {"JWTD_MAIL_FROM", "", "sender: address@example.com or Name <address@example.com> (needed with JWTD_SMTP_URL)", p_mail_from, S_RELOAD},
    {"JWTD_MAIL_TEMPLATES", "", "absolute path of a directory of templates overriding the built-in ones", p_mail_templates, S_RELOAD},
    {"JWTD_MAIL_RETRY", "30s", "first retry after a temporary failure, doubled each time, 10ms-1h", p_mail_retry, S_RELOAD},
    {"JWTD_MAIL_RETRY_MAX", "30m", "longest wait between retries, 10ms-1d", p_mail_retry_max, S_RELOAD},
    {"JWTD_MAIL_GIVE_UP", "1d", "a message not delivered after this long is given up, 100ms-30d", p_mail_give_up, S_RELOAD},
    {"JWTD_MAIL_POLL", "1s", "how often the outbox is read for due messages, 10ms-60s", p_mail_poll, 0},
    {"JWTD_MAIL_RATE", "20", "requests that send mail, per client address per window, 1-1000000", p_mail_rate, S_RELOAD},
    {"JWTD_MAIL_ACCOUNT_RATE", "5", "requests that send mail, per account (or address asked about) per window, 1-1000", p_mail_account_rate, S_RELOAD},
    {"JWTD_RESET_TTL", "30m", "how long a password reset link works, 1m-1d", p_reset_ttl, S_RELOAD},
    {"JWTD_VERIFY_TTL", "1d", "how long an address verification link or code works, 1m-30d", p_verify_ttl, S_RELOAD},
    {"JWTD_CODE_ATTEMPTS", "5", "wrong verification codes before the code stops working, 1-100; an account's codes get 4 times this many tries a day", p_code_attempts, S_RELOAD},
    {"JWTD_REQUIRE_VERIFIED_EMAIL", "false", "true: login is refused until the account's address is verified", p_require_verified, S_RELOAD},
    {"JWTD_PAGES", "on", "on or off: the sign-in, sign-up, account and recovery pages", p_pages, S_RELOAD},
    {"JWTD_SITE_NAME", "", "name shown on the pages and in authenticator apps, up to 64 bytes without ':' (default: the host of JWTD_PUBLIC_URL)", p_site_name, S_RELOAD},
    {"JWTD_REDIRECT_DOMAINS", "", "comma-separated hosts the pages may send a browser back to (rd=): app.example.com, or .example.com for every subdomain", p_redirect_domains, S_RELOAD},
    {"JWTD_COOKIE_DOMAIN", "", "parent domain for the access cookie (example.com), so apps on subdomains see it; unset: this host only", p_cookie_domain, 0},
    {"JWTD_COOKIE_SAMESITE", "strict", "strict or lax (lax: the session survives a link from another site)", p_samesite, 0},
    {"JWTD_MFA_TICKET_TTL", "5m", "time between the password and the second factor of a login, 30s-1h", p_mfa_ticket_ttl, S_RELOAD},
    {"JWTD_WEBAUTHN_RP_ID", "", "passkey relying party ID: the host of JWTD_PUBLIC_URL or a parent domain of it (default: that host)", p_rp_id, 0},
};

#define N_SETTINGS (sizeof settings / sizeof settings[0])

_Static_assert(N_SETTINGS <= CONFIG_MAX_SETTINGS, "raise CONFIG_MAX_SETTINGS");

static const struct setting *find_setting(const char *name)
{
    for (size_t i = 0; i < N_SETTINGS; i++)
        if (strcmp(settings[i].name, name) == 0)
            return &settings[i];
    return NULL;
}

static size_t index_of(const struct setting *s)
{
    return (size_t)(s - settings);
}

static void wipe_free(char *v)
{
    if (v) {
        OPENSSL_cleanse(v, strlen(v));
        free(v);
    }
}

void config_defaults(struct config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    for (size_t i = 0; i < N_SETTINGS; i++) {
        cfg->source[i] = settings[i].def ? CFG_DEFAULT : CFG_DERIVED;
        if (!settings[i].def)
            continue;
        if (!settings[i].parse(cfg, settings[i].def) || !(cfg->raw[i] = strdup(settings[i].def)))
            abort(); /* a default the parser refuses is a programming error */
    }
}

/* Set one setting, remembering its text and where it came from. */
static bool set_from(struct config *cfg, const struct setting *s, const char *value,
                     enum config_source src, int line, char *err, size_t errlen)
{
    /* Room for a whole path: a longer one cut here took the line number
     * (and the parenthesis) with it. */
    char where[4200] = "";
    if (src == CFG_FILE)
        snprintf(where, sizeof where, " (%s line %d)", cfg->config_path, line);
    cfg->parse_why[0] = '\0';
    if (!s->parse(cfg, value)) {
        /* Never echo a secret back: the JWT secret, or a database URL
         * (it may carry a password). */
        if (strcmp(s->name, "JWTD_DATABASE") == 0 && (value[0] == '/' || value[0] == '.') &&
            !strpbrk(value, "@=:? \t"))
            /* A bare path (no URL, no key=value, so nothing secret in it):
             * say how to write it. */
            snprintf(err, errlen, "%s%s: bad value '%.200s'; accepts %s (a file: sqlite:%.200s)",
                     s->name, where, value, s->accepts, value);
        else if (s->flags & S_SECRET)
            snprintf(err, errlen, "%s%s: bad value; accepts %s", s->name, where, s->accepts);
        else if (strcmp(s->name, "JWTD_LISTEN") == 0 && value[0] == ':')
            snprintf(err, errlen, "%s%s: bad value '%.80s'; give the host too: 0.0.0.0%s for "
                     "every interface, 127.0.0.1%s for this machine only", s->name, where, value,
                     value, value);
        else {
            /* A URL's password is not echoed either (user:pass@ in a
             * public URL, ?password= in a query): passwords redacted, then
             * everything between the first "://" and the last '@' before
             * the query hidden - a password with '/' or '@' in it, and the
             * user name, included; in a list too. */
            char red[512], shown[512];
            util_redact_url(value, red, sizeof red);
            const char *sep = strstr(red, "://");
            const char *at = NULL;
            if (sep)
                for (const char *q = sep + 3; *q && *q != '?' && *q != '#'; q++)
                    if (*q == '@')
                        at = q;
            if (at)
                snprintf(shown, sizeof shown, "%.*s***%s", (int)(sep + 3 - red), red, at);
            else
                snprintf(shown, sizeof shown, "%s", red);
            /* Nor a query, fragment or parameters, whatever their names
             * (?token=, ?PASSWORD=, ;secret=, #...): a URL here has none. */
            const char *scheme_end = strstr(shown, "://");
            char *cut = scheme_end ? strpbrk(scheme_end + 3, "?#;") : NULL;
            if (cut && (size_t)(cut - shown) + 6 < sizeof shown)
                snprintf(cut, sizeof shown - (size_t)(cut - shown), "%c...", *cut);
            if (cfg->parse_why[0])
                snprintf(err, errlen, "%s%s: bad value '%.80s': %s", s->name, where, shown,
                         cfg->parse_why);
            else
                snprintf(err, errlen, "%s%s: bad value '%.80s'; accepts %s", s->name, where,
                         shown, s->accepts);
        }
        /* One line on a terminal or in a log: a value's own line breaks
         * or escape sequences are not written out. */
        for (char *q = err; *q; q++)
            if ((unsigned char)*q < 0x20 || *q == 0x7f)
                *q = '?';
        return false;
    }
    size_t i = index_of(s);
    char *copy = strdup(value);
    if (!copy) {
        snprintf(err, errlen, "out of memory");
        return false;
    }
    wipe_free(cfg->raw[i]);
    cfg->raw[i] = copy;
    cfg->source[i] = src;
    cfg->file_line[i] = line;
    return true;
}

bool config_set(struct config *cfg, const char *name, const char *value, char *err,
                size_t errlen)
{
    const struct setting *s = find_setting(name);
    if (!s) {
        snprintf(err, errlen, "unknown setting %s", name);
        return false;
    }
    return set_from(cfg, s, value, CFG_FLAG, 0, err, errlen);
}

/* "--access-ttl" (flag) or "access_ttl" / "access-ttl" (file, underscores
 * allowed) -> "JWTD_ACCESS_TTL" */
static bool name_to_env(const char *flag, size_t n, bool underscores, char *out, size_t cap)
{
    if (n + 6 > cap)
        return false;
    memcpy(out, "JWTD_", 5);
    for (size_t i = 0; i < n; i++) {
        char ch = flag[i];
        if (ch == '-')
            ch = '_';
        else if (isalnum((unsigned char)ch) || (underscores && ch == '_'))
            ch = (char)toupper((unsigned char)ch);
        else
            return false;
        out[5 + i] = ch;
    }
    out[5 + n] = '\0';
    return true;
}

void config_file_key(const char *env_name, char *out, size_t cap)
{
    const char *n = strncmp(env_name, "JWTD_", 5) == 0 ? env_name + 5 : env_name;
    size_t i = 0;
    for (; n[i] && i + 1 < cap; i++)
        out[i] = (char)tolower((unsigned char)n[i]);
    out[i] = '\0';
}

/* The file named by --config among the flags (NULL when none); *ret_bad
 * when --config has no value. */
static const char *config_flag(int argc, char **argv, bool *ret_bad)
{
    *ret_bad = false;
    const char *path = NULL;
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--config") == 0) {
            if (i + 1 >= argc) {
                *ret_bad = true;
                return NULL;
            }
            path = argv[++i];
        } else if (strncmp(argv[i], "--config=", 9) == 0) {
            path = argv[i] + 9;
        }
    }
    return path;
}

static char *trim(char *p)
{
    while (*p == ' ' || *p == '\t')
        p++;
    size_t n = strlen(p);
    while (n && (p[n - 1] == ' ' || p[n - 1] == '\t' || p[n - 1] == '\r' || p[n - 1] == '\n'))
        p[--n] = '\0';
    return p;
}

/* Editors on Windows (Notepad) start a UTF-8 file with a byte order mark;
 * it is no part of the first name. */
static char *skip_bom(char *line)
{
    return strncmp(line, "\xEF\xBB\xBF", 3) == 0 ? line + 3 : line;
}

/*
 * jwtd.conf(5): one `name = value` per line; names are the settings without
 * JWTD_ in any case, '-' or '_' (or the JWTD_ name itself); the value is
 * the rest of the line, trimmed, or a double-quoted string; '#' starts a
 * comment only at the beginning of a line (values may hold '#'); a setting
 * given twice is an error.
 */
static const char *closest_name(const char *name);
static bool secret_text(const struct setting *s, const char *v);
static bool is_other_env(const char *name);

/* The longest line of the file, CR LF not counted. */
#define CONFIG_LINE_MAX 8192

/*
 * One line of f into line (cap CONFIG_LINE_MAX + 2), without its '\n' and
 * any CRs before it: its length in bytes, NULs included (fgets would hide
 * them and what follows), or -1 at the end of the file. A longer line sets
 * *ret_long and is not read further.
 */
static long read_line(FILE *f, char *line, bool *ret_long)
{
    size_t n = 0;
    int ch;
    *ret_long = false;
    while ((ch = getc(f)) != EOF && ch != '\n') {
        if (n == CONFIG_LINE_MAX + 1) { /* room for one CR, not for more text */
            *ret_long = true;
            break;
        }
        line[n++] = (char)ch;
    }
    if (ch == EOF && n == 0)
        return -1;
    while (n > 0 && line[n - 1] == '\r')
        n--;
    if (n > CONFIG_LINE_MAX)
        *ret_long = true;
    line[n] = '\0';
    return (long)n;
}

/* The lines of an open file; path names it in messages. */
static bool read_config_stream(struct config *cfg, FILE *f, const char *path, char *err,
                               size_t errlen)
{
    if (!(cfg->config_path = strdup(path))) {
        snprintf(err, errlen, "out of memory");
        return false;
    }
    bool seen[N_SETTINGS] = {false};
    char line[CONFIG_LINE_MAX + 2];
    int lineno = 0;
    bool ok = true, too_long;
    long len;
    while (ok && (len = read_line(f, line, &too_long)) >= 0) {
        lineno++;
        if (too_long) {
            snprintf(err, errlen, "%s line %d: line too long", path, lineno);
            ok = false;
            break;
        }
        /* A NUL would end the line early for every string function below,
         * and the value with it, unseen; a UTF-16 file is full of them. */
        if (memchr(line, '\0', (size_t)len)) {
            snprintf(err, errlen, "%s line %d: a NUL byte (the file must be UTF-8 or ASCII "
                                  "text, not UTF-16)", path, lineno);
            ok = false;
            break;
        }
        char *p = trim(lineno == 1 ? skip_bom(line) : line);
        if (!*p || *p == '#')
            continue;
        char *eq = strchr(p, '=');
        if (!eq) {
            snprintf(err, errlen, "%s line %d: expected name = value", path, lineno);
            ok = false;
            break;
        }
        *eq = '\0';
        char *key = trim(p), *value = trim(eq + 1);
        size_t vn = strlen(value);
        if (vn >= 2 && value[0] == '"' && value[vn - 1] == '"') {
            value[vn - 1] = '\0';
            value++;
        }
        char env[96];
        const char *k = strncasecmp(key, "JWTD_", 5) == 0 ? key + 5 : key;
        bool have_env = name_to_env(k, strlen(k), true, env, sizeof env);
        if (!have_env)
            env[0] = '\0';
        const struct setting *s = have_env ? find_setting(env) : NULL;
        /* A name is letters (any case: ACCESS-TTL is access_ttl), digits,
         * '_' and '-'. Only a name is echoed: a line without its '=' may be
         * a secret ("database postgres://user:password@...", a base64url
         * secret whose padding looks like the '='). */
        size_t kn = strlen(key);
        bool name_like =
            kn > 0 && strspn(key, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                  "0123456789_-") == kn;
        if (!name_like) {
            snprintf(err, errlen, "%s line %d: expected name = value (a name is letters, digits, "
                                  "'_' and '-')", path, lineno);
            ok = false;
        } else if (!s && is_other_env(env)) {
            /* config, test_clock: names jwtd reads, from the environment. */
            snprintf(err, errlen, "%s line %d: '%.60s' is not a setting of the file (%s is read "
                     "from the environment only)", path, lineno, key, env);
            ok = false;
        } else if (!s) {
            /* A typo gets the name it is closest to, as the file writes it. */
            const char *near = have_env ? closest_name(env) : NULL;
            char hint[64] = "";
            if (near && strncmp(near, "JWTD_", 5) == 0 && find_setting(near)) {
                size_t o = (size_t)snprintf(hint, sizeof hint, "; did you mean ");
                for (const char *q = near + 5; *q && o + 2 < sizeof hint; q++)
                    hint[o++] = (char)((*q >= 'A' && *q <= 'Z') ? *q + 32 : *q);
                snprintf(hint + o, sizeof hint - o, "?");
            }
            /* Echoed only when it is a name, or a typo of one: a word near
             * no setting's name may be a secret that lost its name (hex,
             * base32, base64url with its padding taken for the '='). */
            if (hint[0])
                snprintf(err, errlen, "%s line %d: unknown setting '%.60s'%s", path, lineno, key,
                         hint);
            else
                snprintf(err, errlen, "%s line %d: expected name = value; an unknown name, not "
                                      "shown (it may be a secret that lost its name; `jwtd config "
                                      "settings` lists the names)", path, lineno);
            ok = false;
        } else if (seen[index_of(s)]) {
            snprintf(err, errlen, "%s line %d: %s is set twice", path, lineno, s->name);
            ok = false;
        } else {
            seen[index_of(s)] = true;
            ok = set_from(cfg, s, value, CFG_FILE, lineno, err, errlen);
            /* Remembered here: the environment or a flag may set it again,
             * and the file still holds it. */
            cfg->file_holds_secret |= ok && secret_text(s, value);
        }
    }
    OPENSSL_cleanse(line, sizeof line);
    if (ok && ferror(f)) {
        snprintf(err, errlen, "configuration file %s: read error", path);
        ok = false;
    }
    return ok;
}

static bool read_config_file(struct config *cfg, const char *path, bool required, char *err,
                             size_t errlen)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        if (!required && errno == ENOENT)
            return true;
        snprintf(err, errlen, "configuration file %s: %s", path, strerror(errno));
        return false;
    }
    bool ok = read_config_stream(cfg, f, path, err, errlen);
    fclose(f);
    return ok;
}

bool config_read_text(struct config *cfg, const char *name, const char *text, size_t len,
                      char *err, size_t errlen)
{
    if (len == 0) { /* fmemopen wants a buffer; an empty file sets nothing */
        if (!(cfg->config_path = strdup(name))) {
            snprintf(err, errlen, "out of memory");
            return false;
        }
        return true;
    }
    FILE *f = fmemopen((void *)text, len, "r");
    if (!f) {
        snprintf(err, errlen, "out of memory");
        return false;
    }
    bool ok = read_config_stream(cfg, f, name, err, errlen);
    fclose(f);
    return ok;
}

bool config_public_host(const struct config *cfg, char *out, size_t cap)
{
    if (!cfg->public_url)
        return false;
    const char *h = strstr(cfg->public_url, "://") + 3;
    size_t n = h[0] == '[' ? strcspn(h, "]") + 1 : strcspn(h, ":/");
    if (n >= cap)
        return false;
    memcpy(out, h, n);
    out[n] = '\0';
    for (char *p = out; *p; p++)
        *p = (char)tolower((unsigned char)*p);
    return true;
}

bool config_public_origin(const struct config *cfg, char *out, size_t cap)
{
    if (!cfg->public_url)
        return false;
    const char *h = strstr(cfg->public_url, "://") + 3;
    size_t n = (size_t)(h - cfg->public_url) + strcspn(h, "/");
    if (n >= cap)
        return false;
    memcpy(out, cfg->public_url, n);
    out[n] = '\0';
    return true;
}

bool config_domain_covers(const char *domain, const char *host)
{
    size_t d = strlen(domain), h = strlen(host);
    if (d == h)
        return strcasecmp(domain, host) == 0;
    return h > d && host[h - d - 1] == '.' && strcasecmp(host + h - d, domain) == 0;
}

/* The certificate and key files hold a PEM certificate and the private
 * key of its public key: a configuration rule, so that `jwtd config check`
 * refuses what `jwtd serve` would (exit 2, not a start that fails). */
static bool tls_pair_ok(const char *cert_pem, const char *key_pem, char *err, size_t errlen)
{
    BIO *cb = BIO_new_mem_buf(cert_pem, -1), *kb = BIO_new_mem_buf(key_pem, -1);
    X509 *cert = cb ? PEM_read_bio_X509(cb, NULL, NULL, NULL) : NULL;
    EVP_PKEY *key = kb ? PEM_read_bio_PrivateKey(kb, NULL, NULL, (void *)"") : NULL;
    bool ok = false;
    if (!cert)
        snprintf(err, errlen, "JWTD_TLS_CERT: not a PEM certificate");
    else if (!key)
        snprintf(err, errlen, "JWTD_TLS_KEY: not a PEM private key (without a passphrase)");
    else if (X509_check_private_key(cert, key) != 1)
        snprintf(err, errlen, "JWTD_TLS_KEY: the key does not belong to the certificate");
    else
        ok = true;
    ERR_clear_error();
    EVP_PKEY_free(key);
    X509_free(cert);
    BIO_free(kb);
    BIO_free(cb);
    return ok;
}

/* The rules between settings, and the values derived from others. */
static bool finalize(struct config *cfg, char *err, size_t errlen)
{
#ifndef JWTD_HAVE_POSTGRES
    /* A rule of this build, said here rather than when the store opens:
     * `jwtd config check` must refuse what `jwtd serve` would. */
    if (config_uses_postgres(cfg)) {
        snprintf(err, errlen, "JWTD_DATABASE: this jwtd was built without PostgreSQL support "
                              "(meson -Dpostgres=enabled); accepts sqlite:PATH");
        return false;
    }
#endif
    if (cfg->alg == JWTD_ALG_HS256) {
        if (!cfg->jwt_secret) {
            snprintf(err, errlen,
                     "JWTD_JWT_SECRET: required when JWTD_JWT_ALG=HS256 (at least 32 bytes)");
            return false;
        }
        if (cfg->jwt_secret_len < 32) {
            snprintf(err, errlen,
                     "JWTD_JWT_SECRET: too short (%zu bytes); HS256 needs at least 32 bytes",
                     cfg->jwt_secret_len);
            return false;
        }
    } else if (cfg->jwt_secret) {
        /* A secret with no explicit algorithm means the operator wants HS256. */
        if (cfg->source[index_of(find_setting("JWTD_JWT_ALG"))] == CFG_DEFAULT) {
            if (cfg->jwt_secret_len < 32) {
                snprintf(err, errlen,
                         "JWTD_JWT_SECRET: too short (%zu bytes); HS256 needs at least 32 bytes",
                         cfg->jwt_secret_len);
                return false;
            }
            cfg->alg = JWTD_ALG_HS256;
            size_t a = index_of(find_setting("JWTD_JWT_ALG"));
            char *hs = strdup("HS256");
            if (!hs) {
                snprintf(err, errlen, "out of memory");
                return false;
            }
            wipe_free(cfg->raw[a]);
            cfg->raw[a] = hs;
            cfg->source[a] = CFG_DERIVED; /* `jwtd config check` shows what serve uses */
        }
    }
    if (cfg->alg != JWTD_ALG_HS256 && cfg->jwt_secret) {
        snprintf(err, errlen, "JWTD_JWT_SECRET: only used with JWTD_JWT_ALG=HS256 (now %s)",
                 config_alg_name(cfg->alg));
        return false;
    }
    if ((cfg->tls_cert_pem != NULL) != (cfg->tls_key_pem != NULL)) {
        snprintf(err, errlen, "%s: TLS needs both JWTD_TLS_CERT and JWTD_TLS_KEY",
                 cfg->tls_cert_pem ? "JWTD_TLS_KEY" : "JWTD_TLS_CERT");
        return false;
    }
    if (cfg->tls_cert_pem && !tls_pair_ok(cfg->tls_cert_pem, cfg->tls_key_pem, err, errlen))
        return false;
    if (cfg->refresh_absolute_ttl < cfg->refresh_ttl) {
        snprintf(err, errlen,
                 "JWTD_REFRESH_ABSOLUTE_TTL: must not be shorter than JWTD_REFRESH_TTL "
                 "(%llds < %llds): raise JWTD_REFRESH_ABSOLUTE_TTL or lower JWTD_REFRESH_TTL",
                 (long long)cfg->refresh_absolute_ttl, (long long)cfg->refresh_ttl);
        return false;
    }
    if ((uint64_t)cfg->argon2_memory_kib * cfg->argon2_iterations < 35840) {
        snprintf(err, errlen,
                 "JWTD_ARGON2_MEMORY: memory (KiB) x JWTD_ARGON2_ITERATIONS must be at least 35840 "
                 "(OWASP: 19456 x 2, 12288 x 3, 9216 x 4, 7168 x 5)");
        return false;
    }
    if (cfg->login_lockout_max < cfg->login_lockout_base) {
        snprintf(err, errlen, "JWTD_LOGIN_BACKOFF_MAX: must not be shorter than JWTD_LOGIN_BACKOFF");
        return false;
    }
    if (cfg->smtp_url && !cfg->mail_from) {
        snprintf(err, errlen, "JWTD_MAIL_FROM: required with JWTD_SMTP_URL (the sender's address)");
        return false;
    }
    if (cfg->smtp_url) {
        /* What the mail thread would refuse at every delivery (a port that
         * is no number, credentials bound for a relay without TLS) is
         * refused now: the messages would wait until given up. */
        struct smtp_config sc = {.url = cfg->smtp_url, .tls = (enum smtp_tls)cfg->smtp_tls};
        char why[300];
        if (!smtp_config_check(&sc, why, sizeof why)) {
            const char *w = strncmp(why, "smtp: ", 6) == 0 ? why + 6 : why;
            snprintf(err, errlen, "JWTD_SMTP_URL: %s; accepts %s", w,
                     find_setting("JWTD_SMTP_URL")->accepts);
            return false;
        }
    }
    if (cfg->mail_retry_max_ms < cfg->mail_retry_ms) {
        snprintf(err, errlen, "JWTD_MAIL_RETRY_MAX: must not be shorter than JWTD_MAIL_RETRY");
        return false;
    }
    char host[300];
    bool have_host = config_public_host(cfg, host, sizeof host);
    if (cfg->webauthn_rp_id && (!have_host || !config_domain_covers(cfg->webauthn_rp_id, host))) {
        snprintf(err, errlen, "JWTD_WEBAUTHN_RP_ID: must be the host of JWTD_PUBLIC_URL (%s) or a "
                              "parent domain of it", have_host ? host : "unset");
        return false;
    }
    if (cfg->cookie_domain && have_host && !config_domain_covers(cfg->cookie_domain, host)) {
        snprintf(err, errlen, "JWTD_COOKIE_DOMAIN: must be the host of JWTD_PUBLIC_URL (%s) or a "
                              "parent domain of it", host);
        return false;
    }
    if (cfg->hash_workers == 0)
        cfg->hash_workers = cfg->hash_cpus_pinned ? (unsigned)CPU_COUNT(&cfg->hash_cpus) : ncpus();
    if (!cfg->issuer) {
        /* The public URL when there is one: it does not change with the
         * listen address, a proxy in front, or TLS being turned on. */
        char iss[600];
        if (cfg->public_url)
            snprintf(iss, sizeof iss, "%s", cfg->public_url);
        else
            snprintf(iss, sizeof iss, "%s://%s", cfg->tls_cert_pem ? "https" : "http",
                     cfg->listen);
        size_t i = index_of(find_setting("JWTD_ISSUER"));
        if (!set_str(&cfg->issuer, iss) || !(cfg->raw[i] = strdup(iss))) {
            snprintf(err, errlen, "out of memory");
            return false;
        }
        cfg->source[i] = CFG_DERIVED;
    }
    return true;
}

/* finalize, its error naming the file and line of the setting it starts
 * with ("JWTD_JWT_SECRET (jwtd.conf line 3): ...") when a file set it. */
static bool finalize_at(struct config *cfg, char *err, size_t errlen)
{
    if (finalize(cfg, err, errlen))
        return true;
    size_t n = strcspn(err, ": ");
    char name[64];
    if (n == 0 || n >= sizeof name || err[n] != ':')
        return false;
    memcpy(name, err, n);
    name[n] = '\0';
    const struct setting *s = find_setting(name);
    if (!s || cfg->source[index_of(s)] != CFG_FILE)
        return false;
    char rest[512];
    snprintf(rest, sizeof rest, "%s", err + n);
    snprintf(err, errlen, "%s (%s line %d)%s", name, cfg->config_path,
             cfg->file_line[index_of(s)], rest);
    return false;
}

/*
 * An environment file beside the configuration file. jwtd once advised
 * secrets in jwtd.env for the systemd unit's EnvironmentFile=, which the
 * server read and the operator commands did not: `jwtd user add` on the
 * server's host then acted on another database. Every setting now lives in
 * the configuration file (or the environment and flags of one run), and a
 * leftover jwtd.env is refused rather than ignored: ignoring it would bring
 * the server up on another database just as silently.
 */
static bool refuse_env_file(const char *config_path, char *err, size_t errlen)
{
    const char *slash = strrchr(config_path, '/');
    int dirlen = slash ? (int)(slash - config_path) : 1;
    char env_file[4096];
    snprintf(env_file, sizeof env_file, "%.*s/jwtd.env", dirlen, slash ? config_path : ".");
    struct stat sb;
    if (stat(env_file, &sb) != 0)
        return true;
    snprintf(err, errlen, "%s: jwtd reads no environment file, and neither does its systemd "
             "unit: move its settings into %s (name = value, mode 640, root:jwtd) and delete it",
             env_file, config_path);
    return false;
}

bool config_load(struct config *cfg, int argc, char **argv, char *err, size_t errlen)
{
    bool bad = false;
    const char *path = config_flag(argc, argv, &bad);
    if (bad) {
        snprintf(err, errlen, "--config needs a file name");
        return false;
    }
    if (path && !*path) {
        snprintf(err, errlen, "--config needs a file name (or none)");
        return false;
    }
    bool required = true;
    if (!path)
        path = getenv("JWTD_CONFIG");
    if (!path || !*path) {
        /* This build's own file, else the system's: a binary installed by
         * hand under /usr/local finds the /etc/jwtd/jwtd.conf its unit
         * names, so commands on the host act on the service's settings. */
        path = CONFIG_DEFAULT_FILE;
        if (strcmp(CONFIG_DEFAULT_FILE, CONFIG_SYSTEM_FILE) != 0 && access(path, F_OK) != 0 &&
            errno == ENOENT && access(CONFIG_SYSTEM_FILE, F_OK) == 0)
            path = CONFIG_SYSTEM_FILE;
        required = false;
    }
    cfg->config_none = strcmp(path, "none") == 0;
    if (!cfg->config_none &&
        (!refuse_env_file(path, err, errlen) || !read_config_file(cfg, path, required, err, errlen)))
        return false;

    for (size_t i = 0; i < N_SETTINGS; i++) {
        const char *v = getenv(settings[i].name);
        if (v && !set_from(cfg, &settings[i], v, CFG_ENV, 0, err, errlen))
            return false;
    }
    bool flag_seen[N_SETTINGS] = {false};
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--config") == 0) {
            i++;
            continue;
        }
        if (strncmp(a, "--config=", 9) == 0)
            continue;
        if (strncmp(a, "--", 2) != 0) {
            /* Name the argument up to any '=': what follows may be a secret. */
            int shown = (int)strcspn(a, "=");
            snprintf(err, errlen, "unexpected argument '%.*s%s' (settings are --name=value)",
                     shown > 60 ? 60 : shown, a, a[shown] ? "=..." : "");
            return false;
        }
        a += 2;
        const char *eq = strchr(a, '=');
        size_t n = eq ? (size_t)(eq - a) : strlen(a);
        char env[64];
        if (!name_to_env(a, n, false, env, sizeof env) || !find_setting(env)) {
            /* A typo gets the flag it is closest to: --databse, --acess-ttl. */
            char guess[64] = "JWTD_", hint[80] = "";
            size_t g = 5;
            for (size_t k = 0; k < n && g + 1 < sizeof guess; k++)
                guess[g++] = a[k] == '-' ? '_' : (char)toupper((unsigned char)a[k]);
            guess[g] = '\0';
            const char *near = closest_name(guess);
            if (near && find_setting(near)) {
                size_t o = (size_t)snprintf(hint, sizeof hint, "did you mean --");
                for (const char *q = near + 5; *q && o + 2 < sizeof hint; q++)
                    hint[o++] = *q == '_' ? '-' : (char)tolower((unsigned char)*q);
                snprintf(hint + o, sizeof hint - o, "? ");
            }
            snprintf(err, errlen, "unknown flag '--%.*s' (%ssee jwtd serve --help)",
                     (int)(n > 60 ? 60 : n), a, hint);
            return false;
        }
        /* A flag given twice is a mistake, not "the last one wins": two
         * --database values in a script's history must not pick one silently. */
        if (flag_seen[index_of(find_setting(env))]) {
            snprintf(err, errlen, "--%.*s given twice", (int)(n > 60 ? 60 : n), a);
            return false;
        }
        flag_seen[index_of(find_setting(env))] = true;
        const char *value;
        if (eq) {
            value = eq + 1;
        } else if (i + 1 < argc) {
            value = argv[++i];
        } else {
            snprintf(err, errlen, "%s: --%.*s needs a value", env, (int)n, a);
            return false;
        }
        if (!set_from(cfg, find_setting(env), value, CFG_FLAG, 0, err, errlen))
            return false;
    }

    return finalize_at(cfg, err, errlen);
}

/* Variables jwtd reads that are not settings. */
static const char *const other_env[] = {"JWTD_CONFIG", "JWTD_TEST_CLOCK"};

/* Levenshtein distance of two names (SIZE_MAX for names longer than any
 * setting): small for a typo. */
static size_t edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b), row[64];
    if (la >= 64 || lb >= 64)
        return SIZE_MAX;
    for (size_t j = 0; j <= lb; j++)
        row[j] = j;
    for (size_t i = 1; i <= la; i++) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t up = row[j], best = diag + (a[i - 1] != b[j - 1]);
            if (up + 1 < best)
                best = up + 1;
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    return row[lb];
}

/* The name jwtd reads that an unknown one is a typo of: two edits at most. */
static const char *closest_name(const char *name)
{
    const char *best = NULL;
    size_t best_d = 3;
    for (size_t i = 0; i < N_SETTINGS + sizeof other_env / sizeof other_env[0]; i++) {
        const char *known = i < N_SETTINGS ? settings[i].name : other_env[i - N_SETTINGS];
        size_t d = edit_distance(name, known);
        if (d < best_d) {
            best = known;
            best_d = d;
        }
    }
    return best;
}

static bool is_other_env(const char *name)
{
    for (size_t i = 0; i < sizeof other_env / sizeof other_env[0]; i++)
        if (strcmp(name, other_env[i]) == 0)
            return true;
    return false;
}

void config_unknown_env(void (*found)(void *ctx, const char *name, const char *hint), void *ctx)
{
    for (char **e = environ; e && *e; e++) {
        if (strncmp(*e, "JWTD_", 5) != 0)
            continue;
        char name[96];
        snprintf(name, sizeof name, "%.*s", (int)strcspn(*e, "="), *e);
        if (!find_setting(name) && !is_other_env(name))
            found(ctx, name, closest_name(name));
    }
}

bool config_reload_merge(const struct config *running, const struct config *fresh,
                         struct config *ret, char *err, size_t errlen)
{
    config_defaults(ret);
    if (running->config_path && !(ret->config_path = strdup(running->config_path))) {
        snprintf(err, errlen, "out of memory");
        return false;
    }
    ret->file_holds_secret = fresh->file_holds_secret;
    for (size_t i = 0; i < N_SETTINGS; i++) {
        bool reload = settings[i].flags & S_RELOAD;
        /* TLS on or off is a restart: the listening socket is made with it. */
        if (reload && (strcmp(settings[i].name, "JWTD_TLS_CERT") == 0 ||
                       strcmp(settings[i].name, "JWTD_TLS_KEY") == 0))
            reload = (running->tls_cert_pem != NULL) == (fresh->tls_cert_pem != NULL);
        const struct config *from = reload ? fresh : running;
        if (!from->raw[i])
            continue;
        if (!set_from(ret, &settings[i], from->raw[i], from->source[i], from->file_line[i], err,
                      errlen))
            return false;
    }
    return finalize_at(ret, err, errlen);
}

size_t config_setting_count(void)
{
    return N_SETTINGS;
}

size_t config_setting_index(const char *name)
{
    const struct setting *s = find_setting(name);
    return s ? index_of(s) : N_SETTINGS;
}

const struct config_setting_info *config_setting(size_t i)
{
    static struct config_setting_info info[N_SETTINGS];
    static bool done;
    if (!done) { /* filled once, before threads (the table is constant) */
        for (size_t k = 0; k < N_SETTINGS; k++)
            info[k] = (struct config_setting_info){settings[k].name, settings[k].def,
                                                   settings[k].accepts,
                                                   (settings[k].flags & S_RELOAD) != 0,
                                                   (settings[k].flags & S_SECRET) != 0};
        done = true;
    }
    return i < N_SETTINGS ? &info[i] : NULL;
}

static bool same_text(const char *a, const char *b)
{
    return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

void config_diff(const struct config *old, const struct config *fresh,
                 void (*changed)(void *ctx, size_t i, bool reloadable), void *ctx)
{
    for (size_t i = 0; i < N_SETTINGS; i++) {
        bool differs = !same_text(old->raw[i], fresh->raw[i]);
        /* A renewed certificate keeps its file name. */
        if (!differs && strcmp(settings[i].name, "JWTD_TLS_CERT") == 0)
            differs = !same_text(old->tls_cert_pem, fresh->tls_cert_pem);
        if (!differs && strcmp(settings[i].name, "JWTD_TLS_KEY") == 0)
            differs = !same_text(old->tls_key_pem, fresh->tls_key_pem);
        if (differs)
            changed(ctx, i, (settings[i].flags & S_RELOAD) != 0);
    }
}

void config_source_text(const struct config *cfg, size_t i, char *out, size_t cap)
{
    switch (i < N_SETTINGS ? cfg->source[i] : CFG_DEFAULT) {
    case CFG_DEFAULT: snprintf(out, cap, "default"); break;
    case CFG_FILE: snprintf(out, cap, "%s:%d", cfg->config_path, cfg->file_line[i]); break;
    case CFG_ENV: snprintf(out, cap, "environment"); break;
    case CFG_FLAG: snprintf(out, cap, "flag"); break;
    case CFG_DERIVED: snprintf(out, cap, "derived"); break;
    }
}

/* Whether v, as the value of s, is a secret. */
static bool secret_text(const struct setting *s, const char *v)
{
    if (!(s->flags & S_SECRET) || !v || !v[0])
        return false;
    if (!strstr(v, "://"))
        return strncmp(v, "sqlite:", 7) != 0; /* a file name is no secret */
    return util_url_has_password(v);
}

bool config_uses_postgres(const struct config *cfg)
{
    return cfg->database && strncmp(cfg->database, "sqlite:", 7) != 0;
}

bool config_listens_on_loopback(const struct config *cfg)
{
    unsigned char a[16];
    if (!cfg->listen_ipv6)
        return inet_pton(AF_INET, cfg->listen_host, a) == 1 && a[0] == 127;
    return inet_pton(AF_INET6, cfg->listen_host, a) == 1 &&
           IN6_IS_ADDR_LOOPBACK((struct in6_addr *)a);
}

void config_free(struct config *cfg)
{
    if (!cfg)
        return;
    for (size_t i = 0; i < N_SETTINGS; i++)
        wipe_free(cfg->raw[i]);
    free(cfg->config_path);
    free(cfg->listen);
    wipe_free(cfg->database);
    free(cfg->public_url);
    free(cfg->issuer);
    free(cfg->audience);
    if (cfg->jwt_secret) {
        OPENSSL_cleanse(cfg->jwt_secret, cfg->jwt_secret_len);
        free(cfg->jwt_secret);
    }
    if (cfg->tls_key_pem) {
        OPENSSL_cleanse(cfg->tls_key_pem, strlen(cfg->tls_key_pem));
        free(cfg->tls_key_pem);
    }
    free(cfg->tls_cert_pem);
    free(cfg->tls_cert_path);
    free(cfg->tls_key_path);
    wipe_free(cfg->smtp_url);
    free(cfg->smtp_ca_file);
    free(cfg->mail_from);
    free(cfg->mail_from_name);
    free(cfg->mail_templates);
    free_list(&cfg->cors_origins, &cfg->n_cors_origins);
    free_list(&cfg->trusted_proxies, &cfg->n_trusted_proxies);
    free_list(&cfg->redirect_domains, &cfg->n_redirect_domains);
    free(cfg->site_name);
    free(cfg->cookie_domain);
    free(cfg->webauthn_rp_id);
    memset(cfg, 0, sizeof *cfg);
}

void config_print_help(void)
{
    printf("Settings: in the configuration file (--config PATH; else $JWTD_CONFIG; else\n"
           CONFIG_DEFAULT_FILE " when it exists" CONFIG_FALLBACK_HELP("") ";\n"
           "`name = value`, the name without JWTD_, see jwtd.conf(5)), in the environment\n"
           "(JWTD_NAME), or as flags (--name=value or --name value). Flags win over the\n"
           "environment, which wins over the file. [reload] settings change on SIGHUP\n"
           "without a restart.\n\n");
    for (size_t i = 0; i < N_SETTINGS; i++) {
        /* The flag and the variable, then what it takes: a reader who
         * looks for --access-ttl finds it as written. */
        char flag[64];
        size_t o = (size_t)snprintf(flag, sizeof flag, "--");
        for (const char *q = settings[i].name + 5; *q && o + 1 < sizeof flag; q++)
            flag[o++] = *q == '_' ? '-' : (char)tolower((unsigned char)*q);
        flag[o] = '\0';
        printf("  %-28s %s\n      default %s; %s%s\n", flag, settings[i].name,
               settings[i].def ? (settings[i].def[0] ? settings[i].def : "(unset)") : "(derived)",
               settings[i].accepts, (settings[i].flags & S_RELOAD) ? " [reload]" : "");
    }
}

const char *config_alg_name(jwtd_alg alg)
{
    const char *n = jwtd_alg_name(alg);
    return n ? n : "?";
}
