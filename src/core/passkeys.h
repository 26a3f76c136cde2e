/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Passkeys (WebAuthn Level 2 credentials) on accounts: registration from a
 * signed-in session, sign-in with a passkey alone, and a passkey as the
 * second step of a password login (core/mfa.h tickets).
 *
 * The rules:
 * - the relying party is JWTD_WEBAUTHN_RP_ID (default: the host of
 *   JWTD_PUBLIC_URL) and the one accepted origin is that of
 *   JWTD_PUBLIC_URL; without JWTD_PUBLIC_URL passkeys are not configured;
 * - registering re-confirms the password (like TOTP), asks for a
 *   discoverable credential with user verification, attestation "none";
 * - every challenge is random, stored hashed, single use, five minutes
 *   long, bound to the account it was made for (registration, second
 *   step) or to none (passwordless sign-in); challenges per client address
 *   are rate limited;
 * - the signature counter must go up when either side is not zero; a
 *   counter that does not is refused and audited as a possible clone;
 * - a passkey session's amr is "hwk" for a device-bound credential and
 *   "swk" for one that may be synced (the BE flag), with "pwd" when it was
 *   the second step after a password.
 */
#ifndef JWTD_PASSKEYS_H
#define JWTD_PASSKEYS_H

#include <stdbool.h>
#include <stddef.h>

#include "core/service.h"

#define PASSKEYS_PER_ACCOUNT 20

/* Whether passkeys are usable with this configuration (JWTD_PUBLIC_URL). */
bool passkeys_configured(const struct config *cfg);

/* Start a registration (password re-confirmed): op->data gets
 * {"publicKey": PublicKeyCredentialCreationOptions as JSON}. */
struct svc_op *passkeys_register_begin(struct app *app, const struct svc_ctx *ctx,
                                       const struct identity *who, const char *password,
                                       size_t plen);

/* Finish a registration with the browser's credential (the JSON of a
 * PublicKeyCredential: id, rawId, type, response.clientDataJSON,
 * response.attestationObject) and a name (NULL: "Passkey"). *ret is the new
 * passkey's public description (caller decrefs). */
struct svc_result passkeys_register_finish(struct app *app, const struct svc_ctx *ctx,
                                           const struct identity *who, json_t *credential,
                                           const char *name, size_t nlen, json_t **ret);

/* Options for navigator.credentials.get(): for the account of an MFA
 * ticket (its passkeys listed), or for any discoverable passkey (ticket
 * NULL). *ret = {"publicKey": PublicKeyCredentialRequestOptions}. */
struct svc_result passkeys_login_begin(struct app *app, const struct svc_ctx *ctx,
                                       const char *ticket, size_t tlen, json_t **ret);

/* Check an assertion and open a session: with ticket (the second step of
 * a password login; the ticket is used up) or without (a passkey alone). */
struct svc_result passkeys_login_finish(struct app *app, const struct svc_ctx *ctx,
                                        json_t *credential, const char *ticket, size_t tlen,
                                        struct store_user *ret_user,
                                        struct session_grant *ret_grant);

/* The caller's passkeys: [{"id","name","created_at","last_used_at","synced"}]. */
struct svc_result passkeys_list(struct app *app, const struct identity *who, json_t **ret);

/* Remove one of the caller's passkeys (password re-confirmed). */
struct svc_op *passkeys_remove(struct app *app, const struct svc_ctx *ctx,
                               const struct identity *who, const char *id, size_t idlen,
                               const char *password, size_t plen);

/* The description of one passkey, as listed. */
json_t *passkeys_describe(const struct store_passkey *p);

#endif /* JWTD_PASSKEYS_H */
