/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Rate limits. Counters live in the shared storage and change by single
 * atomic operations there, so limits hold across threads and instances:
 * - per username: consecutive failed logins; from the Nth on, exponential
 *   back-off (JWTD_LOGIN_MAX_FAILURES, JWTD_LOGIN_BACKOFF[_MAX]);
 * - per client address: consecutive failed logins on different usernames
 *   (counted once known to be failures), with the same back-off from the
 *   Nth on (JWTD_ADDRESS_BACKOFF_AFTER; a success from the address starts
 *   over), failed logins per window whatever succeeded in
 *   between (JWTD_ADDRESS_MAX_FAILURES, JWTD_RATE_WINDOW), and signups and
 *   refreshes per window.
 * Attempts are counted before the password is checked and given back after
 * a success, which is what makes 100 parallel guesses count as 100. When
 * storage is unavailable a limit cannot be checked and the answer is
 * SVC_UNAVAILABLE (fail closed).
 */
#ifndef JWTD_RATELIMIT_H
#define JWTD_RATELIMIT_H

#include <stdbool.h>

#include "core/service.h"

enum rate_kind { RATE_SIGNUP, RATE_REFRESH, RATE_CHALLENGE };

/* The counters one login attempt took, to settle after the check. */
struct login_limit {
    char addr_key[96];
    char seq_key[96];              /* the address's consecutive failures */
    char user_key[EMAIL_MAX + 16]; /* "" when the username was not counted */
    int64_t user_block_ms;         /* the block this attempt set (0: none) */
};

/*
 * Count a login attempt for ctx's address and, when username is not NULL,
 * that username; check the address's run of failures. SVC_OK, or
 * SVC_LIMITED with retry_after (nothing counted), or a storage failure.
 */
struct svc_result ratelimit_login_attempt(struct app *app, const struct svc_ctx *ctx,
                                          const char *username, struct login_limit *ret);

/* After a correct password: forget the username's failures and give the
 * address its attempt back. */
void ratelimit_login_succeeded(struct app *app, const struct login_limit *l);

/* A correct password when a second factor is still due, or a correct
 * re-confirmation: both counters get the attempt back (with any block it
 * set), but the username's earlier failures stay - a known password does
 * not reset the back-off on codes, and a correct password never extends
 * the back-off that gates its own second step. */
void ratelimit_login_first_factor_ok(struct app *app, const struct login_limit *l);

/* The password (or second factor) was checked and wrong: a failure in the
 * address's run (the username's and the window's attempts were counted
 * before, and stay). */
void ratelimit_login_failed(struct app *app, const struct login_limit *l);

/* The password was never checked (the server was busy, storage failed):
 * give both counters their attempt back (and lift the block it set), so
 * that overload never locks anyone out. */
void ratelimit_login_refund(struct app *app, const struct login_limit *l);

/* One request of a per-address window (signup, refresh): SVC_OK or
 * SVC_LIMITED. */
struct svc_result ratelimit_take(struct app *app, const struct svc_ctx *ctx, enum rate_kind kind);

/* What a mail limit's subject names. Each kind counts apart: a typed
 * identifier cannot use up an account's counter by being its id, nor tell
 * a signup's counter by being "signup:" and an address. */
enum mail_subject {
    MAIL_SUBJECT_ACCOUNT,    /* an account id: its verification, a new address */
    MAIL_SUBJECT_IDENTIFIER, /* what a "forgot" typed, known or not */
    MAIL_SUBJECT_SIGNUP,     /* the address a sign-up gave */
};

/* A request that sends mail: at most JWTD_MAIL_RATE per client address and
 * JWTD_MAIL_ACCOUNT_RATE per subject (an account, or the address or name
 * asked about - known or not, so that the limit tells nothing) per window.
 * The subject is kept (and logged) only as a keyed hash. SVC_OK or
 * SVC_LIMITED. */
struct svc_result ratelimit_mail(struct app *app, const struct svc_ctx *ctx,
                                 enum mail_subject kind, const char *subject);

/* The username's back-off key (for unlock and show). */
void ratelimit_user_key(const char *username, char *out, size_t cap);

/* The name a login back-off counts under for an identifier no account has
 * (a mistyped name, an address, a password typed in the wrong box): '#'
 * and a keyed hash of it, ASCII case folded - never the text itself in the
 * storage. False when the hash fails. */
#define RATELIMIT_UNKNOWN_LEN 34
bool ratelimit_unknown_name(const struct app *app, const char *ident,
                            char out[RATELIMIT_UNKNOWN_LEN]);

#endif /* JWTD_RATELIMIT_H */
