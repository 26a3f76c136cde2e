/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Mail: the outbox worker, the templates, and the one-time secrets a
 * message carries.
 *
 * Messages are rows of the outbox table (store.h), written in the same
 * transaction as whatever they announce, so that an acknowledged request
 * never loses its mail and a crash never leaves a token without its
 * message. A worker thread per instance leases due rows, renders them,
 * hands them to the SMTP relay (core/smtp.c) and writes the outcome: sent,
 * a retry with a doubling delay after a temporary failure, failed after a
 * permanent one or when JWTD_MAIL_GIVE_UP passes. A message is sent at
 * least once; it is sent twice only when the process dies between the
 * relay's "250 OK" and the row's update (the Message-ID is the same, so
 * receivers can fold the two).
 *
 * Links and codes are never stored: a message's token and code are derived
 * from its id under the server's mail key (HMAC-SHA-256, the key in the
 * shared storage like the refresh-token key); storage keeps only the
 * token's SHA-256 and the code's keyed hash.
 */
#ifndef JWTD_MAIL_H
#define JWTD_MAIL_H

#include <stdbool.h>

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "core/app.h"

#define MAIL_TOKEN_LEN 43 /* base64url of 32 bytes */
#define MAIL_CODE_LEN 6

/* Template kinds. */
#define MAIL_VERIFY "verify_email"
#define MAIL_RESET "reset_password"
#define MAIL_FORGOT "forgot_password"      /* resolved by the worker into a reset */
#define MAIL_EMAIL_CHANGED "email_changed" /* notice to the old address */
#define MAIL_EMAIL_REMOVED "email_removed" /* notice to the address removed */

/* True when mail can be sent (JWTD_SMTP_URL is set). */
bool mail_configured(const struct app *app);

/*
 * A message that carries a link or a code gets a random secret of its own,
 * kept in its parameters (MAIL_SECRET_PARAM) while it waits in the outbox;
 * the outbox wipes the parameters once the message is sent or given up.
 * Link token and code derive from the mail key, the message id and that
 * secret: the message can be sent after a restart, and once it is sent
 * nothing in storage yields them (storage keeps only their hashes).
 */
#define MAIL_SECRET_PARAM "secret"
bool mail_secret_add(json_t *params);
const char *mail_secret_of(json_t *params); /* "" for messages queued before secrets */

/* The link token and the code of the message with that id and secret. */
bool mail_token(const struct app *app, const char *mail_id, const char *secret,
                char out[MAIL_TOKEN_LEN + 1]);
bool mail_code(const struct app *app, const char *mail_id, const char *secret,
               char out[MAIL_CODE_LEN + 1]);

/* What storage keeps of a token: its SHA-256, hex. */
bool mail_token_hash(const char *token, size_t len, char out[SHA256_HEX_LEN]);

/* HMAC-SHA-256 under the mail key, hex: what storage keeps of a short
 * secret that a plain hash would not hide from whoever copies the
 * database without the key. */
bool mail_key_hash(const struct app *app, const char *msg, size_t len, char out[SHA256_HEX_LEN]);

/* What storage keeps of a code: HMAC(mail key, user id, code), hex (a six-
 * digit code alone could be found from its plain hash). */
bool mail_code_hash(const struct app *app, const char *user_id, const char *code, size_t len,
                    char out[SHA256_HEX_LEN]);

/* The URL of a page of this server with ?token=...: JWTD_PUBLIC_URL (or the
 * issuer) + path. */
void mail_link(const struct app *app, const char *path, const char *token, char *out, size_t cap);

/* Wake this instance's worker (a message was just queued). */
void mail_wake(struct app *app);

/* The worker thread: started with the background duties of `jwtd serve`. */
bool mail_worker_start(struct app *app);
void mail_worker_stop(struct app *app);

/* One pass of the worker (claim, send, record), for tests and the thread:
 * the number of messages handled. */
int mail_worker_pass(struct app *app);

/*
 * Render a message of `kind` with the template values in params (a JSON
 * object: username, email, new_email, link, code, ...). Built-in templates
 * unless JWTD_MAIL_TEMPLATES has <kind>.subject / <kind>.txt / <kind>.html.
 * The three results are heap strings (free()); false when out of memory or
 * the kind is unknown.
 */
bool mail_render(const struct app *app, const char *kind, const char *params_json,
                 char **ret_subject, char **ret_text, char **ret_html);

#endif /* JWTD_MAIL_H */
