/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Fuzz target: the configuration (src/core/config.c, src/base/util.c). The
 * input is read three ways:
 *   - as a jwtd.conf file (config_read_text), then every setting it set
 *     loaded again with the rules between settings (config_reload_merge);
 *   - as the value of every setting (config_set), as the environment or a
 *     flag would give it;
 *   - by the duration and integer parsers.
 * Besides not crashing or leaking:
 *   - an error is one line (no control character) that starts with the
 *     setting's name or the file's, and never repeats the value of a
 *     secret setting;
 *   - a value taken is kept as given (the text `jwtd config check` shows);
 *     a file line that set a setting is numbered within the file;
 *   - a duration or integer is taken exactly when it is a run of at most 12
 *     digits with one known unit, and its value is that number times the
 *     unit (checked in 128-bit arithmetic, so an overflow shows);
 *   - a listen address taken has a port and a numeric host; a public URL
 *     taken is canonical (reading it again gives it back).
 * What would leave the process - a TLS file named in the input (read at
 * load), a listen host that is a name (resolved) - is not fed in: an input
 * naming "tls" or "listen" skips the file reading, and JWTD_LISTEN gets
 * only values whose host is an IP address.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/util.h"
#include "core/config.h"
#include "fuzz_common.h"

#define FILE_NAME "fuzz.conf"

static bool contains_ci(const uint8_t *data, size_t size, const char *word)
{
    size_t n = strlen(word);
    for (size_t i = 0; i + n <= size; i++)
        if (strncasecmp((const char *)data + i, word, n) == 0)
            return true;
    return false;
}

/* One line, readable, and about what it says it is about. */
static void check_error(const char *err, const char *starts)
{
    if (!err[0])
        abort();
    for (const char *p = err; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            abort();
    if (strncmp(err, starts, strlen(starts)) != 0 && strcmp(err, "out of memory") != 0)
        abort();
}

static void read_as_file(const uint8_t *data, size_t size)
{
    if (contains_ci(data, size, "tls") || contains_ci(data, size, "listen"))
        return;
    size_t lines = 1;
    for (size_t i = 0; i < size; i++)
        lines += data[i] == '\n';
    struct config c;
    char err[512];
    config_defaults(&c);
    if (!config_read_text(&c, FILE_NAME, (const char *)data, size, err, sizeof err)) {
        /* "fuzz.conf line N: ..." or "JWTD_NAME (fuzz.conf line N): ..." */
        if (strncmp(err, "JWTD_", 5) == 0)
            check_error(err, "JWTD_");
        else
            check_error(err, FILE_NAME " line ");
        config_free(&c);
        return;
    }
    for (size_t i = 0; i < config_setting_count(); i++) {
        if (c.source[i] != CFG_FILE)
            continue;
        if (!c.raw[i] || c.file_line[i] < 1 || (size_t)c.file_line[i] > lines)
            abort();
    }
    struct config m;
    if (config_reload_merge(&c, &c, &m, err, sizeof err)) {
        for (size_t i = 0; i < config_setting_count(); i++)
            if (c.source[i] == CFG_FILE && (!m.raw[i] || strcmp(c.raw[i], m.raw[i]) != 0))
                abort();
    } else {
        check_error(err, "JWTD_");
    }
    config_free(&m);
    config_free(&c);
}

/* A host the listen parser takes without asking a resolver. */
static bool numeric_listen(const char *v)
{
    unsigned char a[16];
    char host[64];
    const char *colon = strrchr(v, ':');
    if (!colon || (size_t)(colon - v) >= sizeof host)
        return false;
    memcpy(host, v, (size_t)(colon - v));
    host[colon - v] = '\0';
    if (host[0] == '[') /* "[x]" goes to the resolver unless x has a ':' */
        return strchr(host + 1, ':') != NULL;
    return strcmp(host, "localhost") == 0 || inet_pton(AF_INET, host, a) == 1;
}

static void check_accepted(struct config *c, const char *name, size_t i, const char *v)
{
    if (!c->raw[i] || strcmp(c->raw[i], v) != 0)
        abort();
    if (strcmp(name, "JWTD_LISTEN") == 0) {
        unsigned char a[16];
        if (c->listen_port == 0 ||
            inet_pton(c->listen_ipv6 ? AF_INET6 : AF_INET, c->listen_host, a) != 1)
            abort();
    } else if (strcmp(name, "JWTD_PUBLIC_URL") == 0 && c->public_url) {
        char *canon = strdup(c->public_url), err[512];
        if (!canon)
            return;
        if (!config_set(c, name, canon, err, sizeof err) || strcmp(c->public_url, canon) != 0)
            abort();
        free(canon);
    }
}

static void set_everywhere(const char *v)
{
    struct config c;
    config_defaults(&c);
    for (size_t i = 0; i < config_setting_count(); i++) {
        const struct config_setting_info *s = config_setting(i);
        if (strncmp(s->name, "JWTD_TLS_", 9) == 0 ||
            (strcmp(s->name, "JWTD_LISTEN") == 0 && !numeric_listen(v)))
            continue;
        char err[512];
        if (config_set(&c, s->name, v, err, sizeof err)) {
            check_accepted(&c, s->name, i, v);
            continue;
        }
        check_error(err, s->name);
        /* A secret is not repeated (found in the line, not in its fixed
         * words); JWTD_DATABASE names a bare path back ("sqlite:PATH"),
         * which is no secret. */
        char fixed[600];
        snprintf(fixed, sizeof fixed, "%s: bad value; accepts %s", s->name, s->accepts);
        if (s->secret && strlen(v) >= 8 && !strstr(fixed, v) &&
            !(strcmp(s->name, "JWTD_DATABASE") == 0 && (v[0] == '/' || v[0] == '.')) &&
            strstr(err, v))
            abort();
    }
    config_free(&c);
}

/* What the duration and integer parsers must decide, worked out here. */
static void check_numbers(const char *v)
{
    size_t digits = strspn(v, "0123456789");
    const char *unit = v + digits;
    __int128 n = 0, mult = -1;
    for (size_t i = 0; i < digits && i < 13; i++)
        n = n * 10 + (v[i] - '0');
    if (!*unit)
        mult = 1000;
    else if (strcmp(unit, "ms") == 0)
        mult = 1;
    else if (strcmp(unit, "s") == 0)
        mult = 1000;
    else if (strcmp(unit, "m") == 0)
        mult = 60000;
    else if (strcmp(unit, "h") == 0)
        mult = 3600000;
    else if (strcmp(unit, "d") == 0)
        mult = 86400000;
    bool form = digits >= 1 && digits <= 12 && mult > 0 && n * mult <= INT64_MAX;
    int64_t got;
    bool ok = util_parse_duration_ms(v, &got);
    if (ok != form || (ok && got != n * mult))
        abort();
    ok = util_parse_duration(v, &got);
    if (ok != (form && (n * mult) % 1000 == 0) || (ok && (__int128)got * 1000 != n * mult))
        abort();

    /* Integers: an optional '-', then digits only. */
    const char *d = v + (v[0] == '-');
    size_t dn = strspn(d, "0123456789");
    __int128 iv = 0, big = (__int128)INT64_MAX * 10;
    for (size_t i = 0; i < dn; i++) /* leading zeros count for nothing */
        if ((iv = iv * 10 + (d[i] - '0')) > big)
            iv = big;
    if (v[0] == '-')
        iv = -iv;
    bool int_form = dn >= 1 && dn == strlen(d) && iv <= INT64_MAX && iv >= -INT64_MAX;
    ok = util_parse_int(v, -INT64_MAX, INT64_MAX, &got);
    if (ok != int_form || (ok && got != iv))
        abort();
    ok = util_parse_int(v, 1, 65535, &got);
    if (ok != (int_form && iv >= 1 && iv <= 65535))
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    read_as_file(data, size);
    if (size > 4096 || memchr(data, '\0', size))
        return 0;
    char *v = fuzz_text(data, size);
    if (!v)
        return 0;
    set_everywhere(v);
    check_numbers(v);
    free(v);
    return 0;
}
