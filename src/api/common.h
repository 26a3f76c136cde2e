/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Helpers shared by the endpoint handlers: JSON of a user, secret string
 * copies, and the rate limits (api/ratelimit.c) as handlers apply them.
 */
#ifndef JWTD_API_COMMON_H
#define JWTD_API_COMMON_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "http/request.h"
#include "store/store.h"

/* {"id","username","created_at"} — never the hash. */
json_t *user_json(const struct store_user *u);

/* A NUL-terminated heap copy of n secret bytes; secret_free wipes it. */
char *secret_dup(const char *s, size_t n);
void secret_free(char *s, size_t n);

/*
 * Count a login attempt for this client address and, when username is not
 * NULL, this username, before the password is checked (so that parallel
 * guesses cannot slip past). On refusal answers 429 too_many_attempts +
 * Retry-After and returns false. The username key is written to key ("" when
 * none) for the two functions below.
 */
bool ratelimit_login_attempt(struct request *r, const char *username, char *key, size_t cap);

/* After a correct password: forget the username's failures and give the
 * address its attempt back. */
void ratelimit_login_succeeded(struct request *r, const char *key);

/* The password was never checked (the server was busy, storage failed):
 * give both counters their attempt back, so that overload never locks
 * anyone out. */
void ratelimit_login_refund(struct request *r, const char *key);

/* Per-address windows for signup and refresh; answer 429 when over. */
bool ratelimit_signup(struct request *r);
bool ratelimit_refresh(struct request *r);

#endif /* JWTD_API_COMMON_H */
