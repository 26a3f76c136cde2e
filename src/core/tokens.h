/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The two tokens jwtd hands out. Access tokens are JWTs signed by the key
 * ring with the claims of API.md. Refresh tokens are opaque: base64url of
 * version || session id || generation || HMAC-SHA256 under the server's
 * refresh key (stored in the shared storage). Nothing about a refresh token
 * is stored in the clear: storage keeps only the session's current
 * generation, and the MAC makes tokens unforgeable and lets the server hand
 * the current token again to a client that raced (see API.md, reuse
 * interval).
 */
#ifndef JWTD_TOKENS_H
#define JWTD_TOKENS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "jwtd.h"
#include "core/config.h"
#include "core/keyring.h"
#include "store/store.h"
#include "base/util.h"

#define REFRESH_KEY_LEN 32
#define REFRESH_TOKEN_RAW 53  /* 1 + 16 + 4 + 32 */
#define REFRESH_TOKEN_LEN 71  /* base64url characters */

/* The refresh token of (sid, gen), NUL-terminated in out. */
bool refresh_token_make(const uint8_t key[REFRESH_KEY_LEN], const char *sid, uint32_t gen,
                        char out[REFRESH_TOKEN_LEN + 1]);

/* Check the MAC (constant time) and read the session id and generation.
 * False for anything that is not a token this server made. */
bool refresh_token_parse(const uint8_t key[REFRESH_KEY_LEN], const char *tok, size_t len,
                         char ret_sid[UUID_STR_LEN], uint32_t *ret_gen);

/* What an access token says beyond the session: the claims of API.md, and
 * email / email_verified when the account has an address, and amr (how the
 * user signed in: AMR_* bits; none: the claim is left out). */
enum { AMR_PWD = 1, AMR_OTP = 2, AMR_HWK = 4, AMR_SWK = 8 };

/* Sign an access token for the user and session, valid from now for
 * cfg->access_ttl. *ret_token is new (free()). */
jwtd_err access_token_issue(struct keyring *kr, const struct config *cfg,
                            const struct store_user *u, const char *sid, unsigned amr,
                            int64_t now, char **ret_token);

#endif /* JWTD_TOKENS_H */
