/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Structured logging for the server (never for libjwtd): one line per event
 * on stderr, either `ts=... level=... event=... key=value ...` or one JSON
 * object. Callers pass key/value string pairs; values are escaped here. The
 * rule every caller follows: never a password, hash, secret or whole token as
 * a value — log ids, usernames, addresses and reasons only.
 */
#ifndef JWTD_LOG_H
#define JWTD_LOG_H

#include <stdbool.h>

enum log_level { LOG_DEBUG = 0, LOG_INFO, LOG_WARN, LOG_ERROR };

/* Set the threshold and format. Called once at start-up, before threads. */
void log_setup(enum log_level threshold, bool json);

/* True when events at lvl are written (check before building values). */
bool log_enabled(enum log_level lvl);

/* Write one event: key, value, key, value, ..., NULL. A NULL value is
 * written as an empty string. */
void log_event(enum log_level lvl, const char *event, ...) __attribute__((sentinel));

#define LOGE(lvl, ...)                          \
    do {                                        \
        if (log_enabled(lvl))                   \
            log_event(lvl, __VA_ARGS__, NULL);  \
    } while (0)

#endif /* JWTD_LOG_H */
