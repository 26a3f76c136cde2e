/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The session rules: opening a session after a successful sign-in, the
 * refresh rotation with its reuse interval (API.md "Sessions and refresh
 * tokens"), logout (with an access token, or with a refresh token when the
 * access token has expired), the list of a user's sessions, revoking one or all, and
 * the revocation horizon (how long a revoked session's access tokens could
 * still circulate). Every front end calls these; none decides by itself.
 */
#ifndef JWTD_SESSIONS_H
#define JWTD_SESSIONS_H

#include <stdbool.h>

#include "core/service.h"

/* The revocation record for a revocation made now: its access tokens may
 * live access_ttl + leeway more (plus a margin). */
struct revocation sessions_revocation_now(const struct app *app);

/* The refresh decision (pure): what a refresh token of generation `gen`
 * gets, given the locked session row and its owner. */
enum refresh_outcome sessions_refresh_decide(const struct store_session *row,
                                             const struct store_user *owner, uint32_t gen,
                                             const struct refresh_policy *p);

/*
 * Open a session for u (after its credentials were checked: amr says how,
 * AMR_* of tokens.h; 0 means a password) and issue its first token pair
 * into *ret. SVC_BAD_CREDENTIALS when the account was deleted meanwhile.
 */
struct svc_result sessions_open(struct app *app, const struct svc_ctx *ctx,
                                const struct store_user *u, unsigned amr,
                                struct session_grant *ret);

/*
 * Take back a session that sessions_open just opened, whose tokens were
 * never handed out (the sign-in found it must not have one after all):
 * the session ends and *g is wiped. Best effort: a storage failure leaves
 * a session whose tokens nobody holds.
 */
void sessions_withdraw(struct app *app, const char *user_id, const char *reason,
                       struct session_grant *g);

/*
 * Rotate a refresh token. On SVC_OK, *ret_grant holds the new pair (or the
 * current pair again for a token retired within the reuse interval) and
 * *ret_user the owner. SVC_INVALID_GRANT says why in detail (unknown,
 * expired, revoked, reused - reuse revokes the whole session).
 */
struct svc_result sessions_refresh(struct app *app, const struct svc_ctx *ctx, const char *token,
                                   size_t len, struct session_grant *ret_grant,
                                   struct store_user *ret_user);

/* End the caller's session, or all of the user's sessions. */
struct svc_result sessions_logout(struct app *app, const struct svc_ctx *ctx,
                                  const struct identity *who, bool all);

/*
 * How far a sign-out with a refresh token may reach (pure), given the
 * decision /auth/refresh would make for that token and whether every
 * session was asked for (`all`): a token /auth/refresh would honour
 * (REFRESH_ROTATED, REFRESH_REPLAYED) ends its session, or with `all` every
 * session of its owner; a reused one (REFRESH_REUSED) ends its session, as
 * the refresh would, and nothing more; any other ends nothing.
 */
enum signout_reach sessions_signout_reach(enum refresh_outcome out, bool all);

/*
 * Sign out with a refresh token, without rotating it: what a page uses
 * when its access cookie has expired. The token's session ends, or with
 * `all` every session of its owner, as far as sessions_signout_reach
 * allows. SVC_OK with *ret_ended saying what ended (SIGNOUT_NOTHING for a
 * token that is not this server's, or of a session that is unknown,
 * expired or revoked); storage failures otherwise.
 */
struct svc_result sessions_logout_refresh(struct app *app, const struct svc_ctx *ctx,
                                          const char *token, size_t len, bool all,
                                          enum signout_reach *ret_ended);

/* The caller's live sessions, newest first. */
struct svc_result sessions_list(struct app *app, const struct identity *who,
                                store_session_cb cb, void *cbctx);

/* End one of the caller's sessions; SVC_NOT_FOUND unless sid (any case) is
 * one of the caller's live sessions. */
struct svc_result sessions_revoke(struct app *app, const struct svc_ctx *ctx,
                                  const struct identity *who, const char *sid);

/* End every session of a user but except_sid (NULL: all; an operator's
 * `user logout`, or an account change); *ret_count tells how many.
 * `reason` is recorded with them. */
struct svc_result sessions_revoke_all(struct app *app, const struct svc_ctx *ctx,
                                      const char *user_id, const char *except_sid,
                                      const char *reason, int *ret_count);

#endif /* JWTD_SESSIONS_H */
