/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Fuzz target: what the pages read from a browser before anyone signs in
 * (src/pages/form.c, src/pages/page.c): an application/x-www-form-urlencoded
 * body through form_parse, the return address (rd=) through page_rd_ok -
 * the form's "rd" field and the raw input as a query value would be -
 * under four configurations, page_urlencode, and the form Content-Type
 * check. Besides not crashing or leaking:
 *   - a parsed form has at most FORM_MAX_FIELDS fields, one per non-empty
 *     '&'-separated piece, unique names, values without NUL;
 *   - an accepted rd is a local path (not "//", no dot segment, also
 *     encoded) or an http(s) URL whose host is jwtd's own origin or one the
 *     configuration allows, checked here independently of page.c; a refused
 *     one leaves out empty;
 *   - page_urlencode stays inside its buffer and, when it fits, decodes back
 *     to its input.
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/config.h"
#include "fuzz_common.h"
#include "http/parse.h"
#include "pages/form.h"
#include "pages/page.h"

struct rd_conf {
    const char *public_url;    /* JWTD_PUBLIC_URL */
    const char *domains;       /* JWTD_REDIRECT_DOMAINS */
    const char *own_host;      /* its host, lowercase */
    long own_port;             /* its port */
    const char *allowed[2];    /* exact hosts; ".x" = any subdomain of x */
    struct config cfg;
};

static struct rd_conf confs[] = {
    {"https://auth.example.com", "app.example.com,.example.org", "auth.example.com", 443,
     {"app.example.com", ".example.org"}, {0}},
    {"http://localhost:8080", ".example.com", "localhost", 8080, {".example.com", NULL}, {0}},
    {"https://auth.example.com:8443/base", ".example.com", "auth.example.com", 8443,
     {".example.com", NULL}, {0}},
    {NULL, "app.example.com", NULL, 0, {"app.example.com", NULL}, {0}},
};
#define N_CONFS (sizeof confs / sizeof confs[0])

static void init(void)
{
    static bool done;
    if (done)
        return;
    done = true;
    char msg[256];
    for (size_t i = 0; i < N_CONFS; i++) {
        config_defaults(&confs[i].cfg);
        if ((confs[i].public_url &&
             !config_set(&confs[i].cfg, "JWTD_PUBLIC_URL", confs[i].public_url, msg, sizeof msg)) ||
            !config_set(&confs[i].cfg, "JWTD_REDIRECT_DOMAINS", confs[i].domains, msg, sizeof msg))
            abort();
    }
}

static int hex(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = (char)tolower((unsigned char)c);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* A "." or ".." segment in the path part of a local rd, "%2e" read as '.'. */
static bool dot_segment(const char *rd)
{
    size_t end = strcspn(rd, "?#");
    for (size_t i = 0; i < end;) {
        size_t j = i + 1, dots = 0;
        bool other = false;
        while (j < end && rd[j] != '/') {
            if (rd[j] == '.') {
                dots++;
                j++;
            } else if (rd[j] == '%' && j + 2 < end && rd[j + 1] == '2' &&
                       tolower((unsigned char)rd[j + 2]) == 'e') {
                dots++;
                j += 3;
            } else {
                other = true;
                j++;
            }
        }
        if (!other && (dots == 1 || dots == 2))
            return true;
        i = j;
    }
    return false;
}

static bool host_allowed(const struct rd_conf *c, const char *host)
{
    for (size_t i = 0; i < 2 && c->allowed[i]; i++) {
        const char *d = c->allowed[i];
        size_t dl = strlen(d), hl = strlen(host);
        if (d[0] == '.' ? hl > dl && strcasecmp(host + hl - dl, d) == 0 && host[hl - dl - 1] != '.'
                        : strcasecmp(host, d) == 0)
            return true;
    }
    return false;
}

/* What an accepted return address must be, decided without page.c. */
static void check_rd(const struct rd_conf *c, const char *out)
{
    size_t n = strlen(out);
    if (n == 0 || n > RD_MAX)
        abort();
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)out[i];
        if (ch == '%') {
            if (hex(out[i + 1]) < 0 || hex(out[i + 2]) < 0)
                abort();
        } else if (!isalnum(ch) && !strchr("-._~:/?#@!$&()*+,;=", ch)) {
            abort();
        }
    }
    if (out[0] == '/') {
        if (out[1] == '/' || dot_segment(out))
            abort();
        return;
    }
    const char *rest;
    bool https = strncasecmp(out, "https://", 8) == 0;
    if (https)
        rest = out + 8;
    else if (strncasecmp(out, "http://", 7) == 0 && c->public_url &&
             strncmp(c->public_url, "http://", 7) == 0)
        rest = out + 7;
    else
        abort();
    size_t alen = strcspn(rest, "/?#");
    char host[RD_MAX + 1];
    memcpy(host, rest, alen);
    host[alen] = '\0';
    if (alen == 0 || strspn(host, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.:") != alen)
        abort();
    long port = https ? 443 : 80;
    char *colon = strchr(host, ':');
    if (colon) {
        char *e;
        if (!colon[1] || colon[1] == '0' || strspn(colon + 1, "0123456789") != strlen(colon + 1))
            abort();
        port = strtol(colon + 1, &e, 10);
        if (port < 1 || port > 65535)
            abort();
        *colon = '\0';
    }
    if (c->own_host && strcasecmp(host, c->own_host) == 0) {
        bool own_https = strncmp(c->public_url, "https://", 8) == 0;
        if (own_https != https || port != c->own_port)
            abort();
        return;
    }
    if (!host_allowed(c, host))
        abort();
}

static void rd(const char *given)
{
    for (size_t i = 0; i < N_CONFS; i++) {
        char out[RD_MAX + 1];
        memset(out, 'x', sizeof out);
        if (page_rd_ok(&confs[i].cfg, given, out))
            check_rd(&confs[i], out);
        else if (out[0] != '\0')
            abort();
    }
}

static void urlencode(const char *in, size_t len, size_t cap)
{
    char *out = malloc(cap);
    if (!out)
        return;
    page_urlencode(in, out, cap);
    size_t n = strlen(out);
    if (n >= cap)
        abort();
    char *back = malloc(n + 1);
    size_t blen = 0;
    if (back && parse_form_component(out, n, back, n + 1, &blen)) {
        /* A prefix of the input; all of it when there was room. */
        if (blen > len || memcmp(back, in, blen) != 0 || (cap > 3 * len && blen != len))
            abort();
    } else if (back && len > 0) {
        abort();
    }
    free(back);
    free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    init();
    const char *body = (const char *)data;

    struct form f;
    if (form_parse(body, size, &f)) {
        size_t pieces = 0;
        for (size_t i = 0; i < size;) {
            size_t end = i;
            while (end < size && body[end] != '&')
                end++;
            pieces += end > i;
            i = end + 1;
        }
        if (f.n > FORM_MAX_FIELDS || f.n != pieces)
            abort();
        for (size_t i = 0; i < f.n; i++) {
            if (strlen(f.value[i]) != f.len[i] || form_get(&f, f.name[i], NULL) != f.value[i])
                abort();
            for (size_t j = i + 1; j < f.n; j++)
                if (strcmp(f.name[i], f.name[j]) == 0)
                    abort();
        }
        const char *v = form_get(&f, "rd", NULL);
        if (v)
            rd(v);
        form_free(&f);
    } else if (f.n != 0) {
        abort();
    }

    /* The raw input as a decoded query value, a Content-Type, and text to
     * percent-encode. */
    if (size <= RD_MAX + 16 && !memchr(data, '\0', size)) {
        char *s = fuzz_text(data, size);
        if (!s)
            return 0;
        rd(s);
        (void)parse_content_type_form(s);
        urlencode(s, size, 3 * size + 1); /* what the callers give: RD_MAX * 3 + 1 */
        urlencode(s, size, size % 17 + 1);
        free(s);
    }
    return 0;
}
