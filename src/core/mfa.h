/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Second factors: TOTP (RFC 6238: SHA-1, 6 digits, 30 s, one step either
 * side), ten single-use recovery codes, and the MFA ticket that joins the
 * password step of a login to its second step. Passkeys (passkeys.h) use
 * the same tickets.
 *
 * The rules:
 * - enrolling or removing a factor re-confirms the password; a TOTP factor
 *   counts once a first code confirmed it, and then the recovery codes are
 *   shown, once (only their hashes are kept);
 * - a code is accepted once: its time step must be later than the last one
 *   accepted (compare-and-set in storage, so two requests cannot both win);
 * - a login whose password is right, for an account with a factor, gets a
 *   ticket instead of tokens: random, stored as a hash, single use,
 *   JWTD_MFA_TICKET_TTL long, five wrong codes void it, one try at a time
 *   (mfa_step_*); second-step attempts count against the account's login
 *   back-off like passwords do, and so do the codes that confirm a TOTP
 *   set-up (which waits MFA_ENROLMENT_TTL for one).
 */
#ifndef JWTD_MFA_H
#define JWTD_MFA_H

#include <stdbool.h>
#include <stddef.h>

#include "core/ratelimit.h"
#include "core/service.h"
#include "store/store.h"

enum mfa_method { MFA_TOTP = 1, MFA_RECOVERY = 2, MFA_PASSKEY = 4 };

#define MFA_RECOVERY_CODES 10
#define MFA_TICKET_LEN 43
/* Seconds an authenticator set-up waits for its first code (then it is
 * void: start again). */
#define MFA_ENROLMENT_TTL 600

/* The second factors an account has (MFA_* bits; 0: none). */
unsigned mfa_methods(struct app *app, const char *user_id, struct svc_result *ret_res);

/* The name shown to people: JWTD_SITE_NAME, else the public host. */
struct config;
const char *mfa_site_name(const struct config *cfg, char *buf, size_t cap);

/* JSON names of the methods: ["totp", "recovery_code", "passkey"]. */
json_t *mfa_methods_json(unsigned methods);

/* A new ticket for u after a right password (amr so far). */
struct svc_result mfa_ticket_new(struct app *app, const struct store_user *u, unsigned amr,
                                 char out[MFA_TICKET_LEN + 1]);

/* The account a ticket stands for (not used up). */
struct svc_result mfa_ticket_peek(struct app *app, const char *ticket, size_t len,
                                  struct store_user *ret_user, unsigned *ret_amr);

/*
 * The second step with a TOTP or recovery code (method MFA_TOTP or
 * MFA_RECOVERY): on SVC_OK the ticket is used up and op-like results are
 * written: *ret_user, *ret_grant (a new session, amr pwd+otp).
 */
struct svc_result mfa_complete(struct app *app, const struct svc_ctx *ctx, const char *ticket,
                               size_t tlen, enum mfa_method method, const char *code, size_t clen,
                               struct store_user *ret_user, struct session_grant *ret_grant);

/*
 * One try of a second step with a ticket, in up to four calls:
 * - mfa_step_begin takes the ticket out of storage, atomically, and holds
 *   it while the factor is checked: of two factors sent at once with one
 *   ticket, one is checked (and, a recovery code, spent), the other gets
 *   SVC_INVALID_GRANT and costs nothing; then it checks that the account
 *   may still sign in and that its login back-off does not block it (429).
 *   A used, expired or voided ticket (five wrong factors) is
 *   SVC_INVALID_GRANT. On SVC_OK st->user is the account, and exactly one
 *   of the next two may follow:
 * - mfa_step_fail: the factor was wrong: counted in the back-off and on the
 *   ticket, logged, the ticket put back unless that was its fifth wrong
 *   factor; SVC_BAD_SECOND_FACTOR;
 * - mfa_step_finish: the factor was right: the session is opened with the
 *   ticket's amr plus amr (*ret_user, *ret_grant);
 * - mfa_step_end, always last (also after a failed begin): when neither
 *   came (storage failed meanwhile), puts the ticket back (its try stays
 *   counted) and refunds the back-off's attempt; frees st.
 */
struct mfa_step {
    char key[96];
    struct store_ephemeral held;   /* the ticket, out of storage */
    bool holding;
    struct store_user user;
    struct login_limit limit;
};

struct svc_result mfa_step_begin(struct app *app, const struct svc_ctx *ctx, const char *ticket,
                                 size_t len, struct mfa_step *st);
struct svc_result mfa_step_fail(struct app *app, const struct svc_ctx *ctx, struct mfa_step *st,
                                const char *why);
struct svc_result mfa_step_finish(struct app *app, const struct svc_ctx *ctx,
                                  struct mfa_step *st, unsigned amr,
                                  struct store_user *ret_user, struct session_grant *ret_grant);
void mfa_step_end(struct app *app, struct mfa_step *st);

/*
 * Start a TOTP enrolment (password re-confirmed): op->data gets
 * {"secret": base32, "otpauth_uri": ..., "qr_svg": ...}. SVC_ALREADY_ENABLED
 * when a confirmed factor exists.
 */
struct svc_op *mfa_totp_enroll(struct app *app, const struct svc_ctx *ctx,
                               const struct identity *who, const char *password, size_t plen);

/* Confirm the enrolment with a first code: *ret_codes (a JSON array of ten
 * recovery codes, the only time they are shown; caller decrefs). */
struct svc_result mfa_totp_confirm(struct app *app, const struct svc_ctx *ctx,
                                   const struct identity *who, const char *code, size_t len,
                                   json_t **ret_codes);

/* Remove TOTP and the recovery codes (password re-confirmed). */
struct svc_op *mfa_totp_remove(struct app *app, const struct svc_ctx *ctx,
                               const struct identity *who, const char *password, size_t plen);

/* New recovery codes (password re-confirmed): op->data = {"recovery_codes": [...]}. */
struct svc_op *mfa_recovery_renew(struct app *app, const struct svc_ctx *ctx,
                                  const struct identity *who, const char *password,
                                  size_t plen);

/* What the account page shows: {"totp": bool, "totp_pending": bool,
 * "recovery_codes_left": n, "passkeys": [{"id","name","created_at",
 * "last_used_at"}]} into *ret (caller decrefs). */
struct svc_result mfa_status(struct app *app, const struct identity *who, json_t **ret);

/* An operator removes every second factor of an account (TOTP, recovery
 * codes, passkeys), for someone who lost them all - often with the device
 * that held them, so every session ends too; *ret_passkeys counts the
 * passkeys removed, *ret_sessions the sessions ended (-1: ending them
 * failed, the factors are removed all the same). The password stays. */
struct svc_result mfa_operator_reset(struct app *app, const struct svc_ctx *ctx,
                                     const char *username, bool *ret_totp, int *ret_passkeys,
                                     int *ret_sessions);

/* A second factor was just added by who's session (TOTP confirmed, a
 * passkey registered): when the account had none before (had_methods 0),
 * every other session ends - they were opened with the password alone,
 * perhaps by whoever the owner turns the factor on against. */
void mfa_factor_added(struct app *app, const struct svc_ctx *ctx, const struct identity *who,
                      unsigned had_methods);

#endif /* JWTD_MFA_H */
