/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The account rules: who may sign up (username rules, password policy,
 * JWTD_SIGNUP), who may log in (password check against argon2id or an
 * imported bcrypt hash, the same work for unknown names, back-off, re-hash
 * to argon2id), re-confirming a password for a sensitive change, and the
 * operator's actions on accounts. Operations that hash follow the svc_op
 * shape of service.h; the others answer at once.
 */
#ifndef JWTD_ACCOUNTS_H
#define JWTD_ACCOUNTS_H

#include <stdbool.h>
#include <stddef.h>

#include "core/service.h"

/* SVC_SIGNUP_CLOSED when ctx may not sign up now (JWTD_SIGNUP=closed and
 * not an operator). */
struct svc_result accounts_signup_allowed(struct app *app, const struct svc_ctx *ctx);

/* A new account; op->user on success. An operator (ctx->actor) may create
 * accounts while sign-up is closed, and without the per-address limit.
 * email (NULL: none) must be an address no account answers to; when mail is
 * set up, its verification is sent. */
struct svc_op *accounts_signup(struct app *app, const struct svc_ctx *ctx, const char *username,
                               size_t ulen, const char *password, size_t plen, const char *email,
                               size_t elen);

/* The form jwtd keeps addresses in (trimmed, lower case, a plain
 * addr-spec); false when in is not an address mail can go to. */
bool accounts_email_normalize(const char *in, size_t len, char out[EMAIL_MAX + 1]);

/*
 * The caller changes (or with email NULL removes) their e-mail address,
 * re-confirming the password. A verified address stays until the new one
 * is verified (the new one is pending; the old one is told); an unverified
 * or missing one is replaced at once. Verification is sent to the new
 * address. op->user is the account after the change.
 */
struct svc_op *accounts_change_email(struct app *app, const struct svc_ctx *ctx,
                                     const struct identity *who, const char *email, size_t elen,
                                     const char *password, size_t plen);

/* A login: op->user and op->grant (a new session) on success. Unknown
 * names cost the same work as wrong passwords and answer the same. */
struct svc_op *accounts_login(struct app *app, const struct svc_ctx *ctx, const char *username,
                              size_t ulen, const char *password, size_t plen);

/* The caller changes their password (current one re-confirmed); their other
 * sessions end. op->count = sessions ended. */
struct svc_op *accounts_change_password(struct app *app, const struct svc_ctx *ctx,
                                        const struct identity *who, const char *current,
                                        size_t clen, const char *new_password, size_t nlen);

/* Any other service's action that re-confirms the password: after a right
 * password, then(op) runs (op->user is the account, hash still set) and
 * sets op->res. `what` names the action in the audit trail. */
struct svc_op *accounts_reconfirm(struct app *app, const struct svc_ctx *ctx,
                                  const struct identity *who, const char *password, size_t plen,
                                  void (*then)(struct svc_op *op), const char *what);

/* The caller deletes their account (password re-confirmed). */
struct svc_op *accounts_delete_self(struct app *app, const struct svc_ctx *ctx,
                                    const struct identity *who, const char *password,
                                    size_t plen);

/* An operator sets a user's password; every session of the user ends. */
struct svc_op *accounts_set_password(struct app *app, const struct svc_ctx *ctx,
                                     const char *username, const char *password, size_t plen);

/* Whether u may get a session now that it proved who it is (any factor):
 * not disabled, address verified when JWTD_REQUIRE_VERIFIED_EMAIL. A
 * refusal is counted and audited here. */
/* The session a sign-up opens at once (the sign-up page signs the new
 * account in; amr pwd): SVC_EMAIL_NOT_VERIFIED, and none, while the
 * address must be confirmed first (JWTD_REQUIRE_VERIFIED_EMAIL). */
struct session_grant;
struct svc_result accounts_signup_session(struct app *app, const struct svc_ctx *ctx,
                                          const struct store_user *u,
                                          struct session_grant *ret_grant);

struct svc_result accounts_may_sign_in(struct app *app, const struct svc_ctx *ctx,
                                       const struct store_user *u);

/* The account of an authenticated caller (SVC_GONE when deleted). */
struct svc_result accounts_get(struct app *app, const struct identity *who,
                               struct store_user *ret);

/* The account named username (SVC_NOT_FOUND when none). */
struct svc_result accounts_find(struct app *app, const char *username, struct store_user *ret);

/* An operator imports an account with an existing bcrypt or argon2id hash. */
struct svc_result accounts_import(struct app *app, const struct svc_ctx *ctx,
                                  const char *username, const char *hash,
                                  struct store_user *ret);

/* An operator deletes an account and ends its sessions. */
struct svc_result accounts_delete(struct app *app, const struct svc_ctx *ctx,
                                  const char *username);

/* An operator disables (every session ends within a second, logins and
 * refreshes are refused) or enables an account. *ret_revoked: sessions
 * ended. */
struct svc_result accounts_set_disabled(struct app *app, const struct svc_ctx *ctx,
                                        const char *username, bool disabled, int *ret_revoked);

/* An operator clears the login back-off of an account. */
struct svc_result accounts_unlock(struct app *app, const struct svc_ctx *ctx,
                                  const char *username);

/* An operator ends every session of an account. */
struct svc_result accounts_logout(struct app *app, const struct svc_ctx *ctx,
                                  const char *username, int *ret_revoked);

/* What `jwtd user show` prints. */
struct account_info {
    struct store_user user;       /* without hash */
    const char *hash_scheme;      /* "argon2id", "bcrypt", "unknown" */
    int live_sessions;
    int64_t failures;             /* consecutive failed logins counted */
    int64_t blocked_until_ms;     /* 0 when not backed off */
};

struct svc_result accounts_info(struct app *app, const char *username,
                                struct account_info *ret);

#endif /* JWTD_ACCOUNTS_H */
