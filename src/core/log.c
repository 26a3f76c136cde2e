/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Implementation of log.h. The threshold and format are process-wide (set
 * once at start-up); each event is formatted into a bounded stack buffer and
 * written with a single write(2) so that lines from different threads never
 * interleave. Overlong values are cut, never overflow.
 */
#include "core/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static enum log_level g_threshold = LOG_INFO;
static bool g_json = false;

static const char *const level_names[] = {"debug", "info", "warn", "error"};

void log_setup(enum log_level threshold, bool json)
{
    g_threshold = threshold;
    g_json = json;
}

bool log_enabled(enum log_level lvl)
{
    return lvl >= g_threshold;
}

struct line {
    char buf[4096];
    size_t len;
};

static void put(struct line *l, const char *s, size_t n)
{
    size_t room = sizeof l->buf - 2 - l->len; /* keep space for "\n" */
    if (n > room)
        n = room;
    memcpy(l->buf + l->len, s, n);
    l->len += n;
}

static void puts_(struct line *l, const char *s)
{
    put(l, s, strlen(s));
}

/* Escape a value for text (quoted when it has spaces, quotes or '=') or for
 * JSON. Control bytes become \u00XX in JSON and '?' in text. Values are cut
 * at 512 bytes: logs describe events, they do not carry payloads. */
static void put_value(struct line *l, const char *v, bool json)
{
    if (!v)
        v = "";
    size_t n = strnlen(v, 512);
    bool quote = json || n == 0;
    for (size_t i = 0; !quote && i < n; i++)
        if (v[i] == ' ' || v[i] == '"' || v[i] == '=' || (unsigned char)v[i] < 0x20)
            quote = true;
    if (quote)
        put(l, "\"", 1);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)v[i];
        if (c == '"' || c == '\\') {
            char esc[2] = {'\\', (char)c};
            put(l, esc, 2);
        } else if (c < 0x20 || c == 0x7f) {
            if (json) {
                char esc[8];
                snprintf(esc, sizeof esc, "\\u%04x", c);
                puts_(l, esc);
            } else {
                put(l, "?", 1);
            }
        } else {
            put(l, (const char *)&c, 1);
        }
    }
    if (quote)
        put(l, "\"", 1);
}

void log_event(enum log_level lvl, const char *event, ...)
{
    if (!log_enabled(lvl))
        return;
    struct line l = {.len = 0};
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    time_t sec = ts.tv_sec;
    gmtime_r(&sec, &tm);
    char tsbuf[64];
    snprintf(tsbuf, sizeof tsbuf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
             (int)(ts.tv_nsec / 1000000) % 1000);
    const char *lname = level_names[lvl];

    if (g_json) {
        puts_(&l, "{\"ts\":\"");
        puts_(&l, tsbuf);
        puts_(&l, "\",\"level\":\"");
        puts_(&l, lname);
        puts_(&l, "\",\"event\":");
        put_value(&l, event, true);
    } else {
        puts_(&l, "ts=");
        puts_(&l, tsbuf);
        puts_(&l, " level=");
        puts_(&l, lname);
        puts_(&l, " event=");
        put_value(&l, event, false);
    }
    va_list ap;
    va_start(ap, event);
    for (;;) {
        const char *k = va_arg(ap, const char *);
        if (!k)
            break;
        const char *v = va_arg(ap, const char *);
        if (g_json) {
            puts_(&l, ",");
            put_value(&l, k, true);
            puts_(&l, ":");
            put_value(&l, v, true);
        } else {
            puts_(&l, " ");
            puts_(&l, k);
            puts_(&l, "=");
            put_value(&l, v, false);
        }
    }
    va_end(ap);
    if (g_json)
        l.buf[l.len++] = '}';
    l.buf[l.len++] = '\n';
    ssize_t w = write(STDERR_FILENO, l.buf, l.len);
    (void)w;
}
