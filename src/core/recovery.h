/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Account recovery by e-mail: verifying an address (a link or a six-digit
 * code), "forgot my password" and the reset it leads to, and the operator's
 * reset link when no mail is set up. The rules:
 * - a reset link works once, for JWTD_RESET_TTL, and stops working when the
 *   password changes any other way; using it ends every session;
 * - a verification code may be tried JWTD_CODE_ATTEMPTS times;
 * - "forgot" answers the same, after the same work, whether the account
 *   exists or not: the request only queues a message, and the mail worker
 *   decides later, out of the requester's sight, whether to send it;
 * - every request that sends mail is limited per client address and per
 *   account (or address asked about).
 * Tokens are stored only as hashes (see mail.h for how they are made).
 */
#ifndef JWTD_RECOVERY_H
#define JWTD_RECOVERY_H

#include <stddef.h>

#include "core/service.h"

/* Queue the verification of `address` for account u (a new address, or a
 * pending one), and when notify_old is not NULL a notice to that old
 * address. No limits: callers apply them. */
struct svc_result recovery_send_verification(struct app *app, const struct svc_ctx *ctx,
                                             const struct store_user *u, const char *address,
                                             const char *notify_old);

/* Queue a notice to a verified address that was removed from account u. */
struct svc_result recovery_send_removal_notice(struct app *app, const struct svc_ctx *ctx,
                                               const struct store_user *u, const char *address);

/* The caller asks for (another) verification of their unverified or pending
 * address. SVC_NOT_CONFIGURED without mail, SVC_NOTHING_TO_VERIFY without
 * such an address. */
struct svc_result recovery_request_verification(struct app *app, const struct svc_ctx *ctx,
                                                const struct identity *who);

/* The longest link token taken (jwtd's own are MAIL_TOKEN_LEN). */
#define RECOVERY_TOKEN_MAX 128

/* Could t be a link token at all (1..RECOVERY_TOKEN_MAX base64url
 * characters)? A page opened with anything else says so at once. */
bool recovery_token_well_formed(const char *t);

/*
 * Whether a reset (or verification) link's token would work now, read
 * only: nothing is used, counted or changed, so the page a link opens can
 * say at once that it is spent or expired, and a mail gateway's scanner
 * that fetches the link spends nothing. The same lookup as using it (by
 * the token's SHA-256, and the same rules as store_reset_token_live and
 * store_verify_token_live), so it tells no more than trying the link
 * would: SVC_OK, SVC_INVALID_LINK, or a storage failure.
 */
struct svc_result recovery_reset_link_check(struct app *app, const char *token, size_t len);
struct svc_result recovery_verify_link_check(struct app *app, const char *token, size_t len);

/* Confirm an address with the link's token (anyone holding the link), or
 * with the code (the signed-in account). *ret is the account after. */
struct svc_result recovery_confirm_link(struct app *app, const struct svc_ctx *ctx,
                                        const char *token, size_t len, struct store_user *ret);
struct svc_result recovery_confirm_code(struct app *app, const struct svc_ctx *ctx,
                                        const struct identity *who, const char *code, size_t len,
                                        struct store_user *ret);

/* "I forgot my password": identifier is an address or a username. SVC_OK
 * whether or not it names an account (or SVC_LIMITED, SVC_NOT_CONFIGURED). */
struct svc_result recovery_forgot(struct app *app, const struct svc_ctx *ctx,
                                  const char *identifier, size_t len);

/* Set a new password with a reset link's token (hashing: a svc_op).
 * op->user is the account; op->count the sessions ended. */
struct svc_op *recovery_reset(struct app *app, const struct svc_ctx *ctx, const char *token,
                              size_t tlen, const char *password, size_t plen);

/* An operator makes a one-time reset link for username (no mail needed):
 * the URL of the reset page with a fresh token, into out. */
struct svc_result recovery_reset_link(struct app *app, const struct svc_ctx *ctx,
                                      const char *username, char *out, size_t cap);

#endif /* JWTD_RECOVERY_H */
