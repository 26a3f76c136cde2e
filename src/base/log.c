/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Implementation of log.h. The threshold and format are process-wide
 * (atomics: SIGHUP may change the level while threads log); each event is formatted into a bounded stack buffer and
 * written with a single write(2) so that lines from different threads never
 * interleave. Overlong values are cut, never overflow.
 */
#include "base/log.h"

#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static _Atomic int g_threshold = LOG_INFO;
static atomic_bool g_json = false;

static const char *const level_names[] = {"debug", "info", "warn", "error"};

void log_setup(enum log_level threshold, bool json)
{
    atomic_store(&g_threshold, (int)threshold);
    atomic_store(&g_json, json);
}

static atomic_bool g_syslog = false;

/* In syslog.c: <syslog.h> defines LOG_INFO and friends, which this file's
 * enum also names. */
void log_syslog_open(const char *tag);
void log_syslog_write(int level, const char *line, size_t len);

void log_to_syslog(const char *tag)
{
    log_syslog_open(tag);
    atomic_store(&g_syslog, true);
}

void log_set_level(enum log_level threshold)
{
    atomic_store(&g_threshold, (int)threshold);
}

enum log_level log_level_now(void)
{
    return (enum log_level)atomic_load(&g_threshold);
}

const char *log_level_name(enum log_level lvl)
{
    return (unsigned)lvl < 4 ? level_names[lvl] : "?";
}

bool log_enabled(enum log_level lvl)
{
    return (int)lvl >= atomic_load_explicit(&g_threshold, memory_order_relaxed);
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

void log_fields(enum log_level lvl, const char *event, const struct log_field *f, size_t n)
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
    bool json = atomic_load_explicit(&g_json, memory_order_relaxed);

    if (json) {
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
    for (size_t i = 0; i < n; i++) {
        puts_(&l, json ? "," : " ");
        if (json) {
            put_value(&l, f[i].key, true);
            puts_(&l, ":");
        } else {
            puts_(&l, f[i].key);
            puts_(&l, "=");
        }
        char num[24];
        switch (f[i].type) {
        case LOG_T_INT:
            snprintf(num, sizeof num, "%lld", (long long)f[i].i);
            puts_(&l, num);
            break;
        case LOG_T_BOOL:
            puts_(&l, f[i].i ? "true" : "false");
            break;
        default:
            put_value(&l, f[i].s, json);
            break;
        }
    }
    if (json)
        l.buf[l.len++] = '}';
    l.buf[l.len++] = '\n';
    ssize_t w = write(STDERR_FILENO, l.buf, l.len);
    (void)w;
    if (atomic_load_explicit(&g_syslog, memory_order_relaxed) && lvl >= LOG_INFO)
        log_syslog_write((int)lvl, l.buf, l.len - 1);
}
