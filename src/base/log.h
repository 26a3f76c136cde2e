/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Structured logging for the server (never for libjwtd or the storage
 * backends): one line per event on stderr, either `ts=... level=...
 * event=... key=value ...` or one JSON object whose values keep their types
 * (strings, integers, booleans). Callers pass typed fields built with LF_S,
 * LF_I and LF_B; values are escaped here. The rule every caller follows:
 * never a password, hash, secret or whole token as a value — log ids,
 * usernames, addresses and reasons only.
 *
 * Audit events (who did what to which account) are ordinary events with the
 * field audit=true; core/audit.h builds them.
 */
#ifndef JWTD_LOG_H
#define JWTD_LOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum log_level { LOG_DEBUG = 0, LOG_INFO, LOG_WARN, LOG_ERROR };

enum log_type { LOG_T_STR, LOG_T_INT, LOG_T_BOOL };

struct log_field {
    const char *key;
    enum log_type type;
    const char *s; /* LOG_T_STR; NULL is written as "" */
    int64_t i;     /* LOG_T_INT, LOG_T_BOOL */
};

#define LF_S(k, v) ((struct log_field){(k), LOG_T_STR, (v), 0})
#define LF_I(k, v) ((struct log_field){(k), LOG_T_INT, NULL, (int64_t)(v)})
#define LF_B(k, v) ((struct log_field){(k), LOG_T_BOOL, NULL, (v) ? 1 : 0})

/* Set the threshold and format. The threshold may change later (SIGHUP);
 * the format is chosen once at start-up, before threads. */
void log_setup(enum log_level threshold, bool json);

/* Also send every event (at info and above) to the system log under `tag`
 * (operator commands: their audit trail lands next to the server's). */
void log_to_syslog(const char *tag);
void log_set_level(enum log_level threshold);
enum log_level log_level_now(void);
const char *log_level_name(enum log_level lvl);

/* True when events at lvl are written (check before building values). */
bool log_enabled(enum log_level lvl);

/* Write one event with n fields. */
void log_fields(enum log_level lvl, const char *event, const struct log_field *f, size_t n);

/* LOG(level, "event", LF_S("key", value), LF_I("n", 3), ...): at least one
 * field; the fields are not evaluated when the level is off. */
#define LOG(lvl, event, ...)                                                       \
    do {                                                                           \
        if (log_enabled(lvl)) {                                                    \
            const struct log_field log_f_[] = {__VA_ARGS__};                       \
            log_fields(lvl, event, log_f_, sizeof log_f_ / sizeof log_f_[0]);      \
        }                                                                          \
    } while (0)

#endif /* JWTD_LOG_H */
