/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The audit trail: one log event per security-relevant action (sign-up,
 * login and failed login, refresh refusal, reuse detection, logout,
 * password change, account change, every operator command), with the field
 * audit=true and who asked: request id, actor (client or operator and the
 * operator's OS user), client address. Services call it; front ends never
 * need to. It is an ordinary log line, so it goes where the log goes, and
 * it follows the log's rule: ids, usernames of existing accounts, reasons -
 * never a password, hash, token or secret.
 */
#ifndef JWTD_AUDIT_H
#define JWTD_AUDIT_H

#include <stddef.h>

#include "base/log.h"
#include "core/service.h"

/* Write the audit event `event` with outcome ("ok", "refused", ...), the
 * account id (NULL when none) and n extra fields. */
void audit_write(enum log_level lvl, const struct svc_ctx *ctx, const char *event,
                 const char *outcome, const char *user_id, const struct log_field *extra,
                 size_t n);

#define AUDIT(lvl, ctx, event, outcome, user_id, ...)                                    \
    do {                                                                                 \
        if (log_enabled(lvl)) {                                                          \
            const struct log_field audit_f_[] = {__VA_ARGS__};                           \
            audit_write(lvl, ctx, event, outcome, user_id, audit_f_,                     \
                        sizeof audit_f_ / sizeof audit_f_[0]);                           \
        }                                                                                \
    } while (0)

#define AUDIT0(lvl, ctx, event, outcome, user_id) \
    audit_write(lvl, ctx, event, outcome, user_id, NULL, 0)

#endif /* JWTD_AUDIT_H */
