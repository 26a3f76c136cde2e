/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Browser delivery of tokens as cookies (API.md "Browser (cookie)
 * delivery"): the access cookie `__Host-jwtd_access` (HttpOnly; Secure;
 * SameSite=Strict; Path=/) and the refresh cookie `__Secure-jwtd_refresh`
 * (same, Path=/auth/refresh, so it travels only to the refresh endpoint).
 */
#ifndef JWTD_COOKIE_H
#define JWTD_COOKIE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct request;

#define COOKIE_ACCESS "__Host-jwtd_access"
#define COOKIE_REFRESH "__Secure-jwtd_refresh"

/* The value of a request cookie (pointing into the Cookie header; not
 * NUL-terminated at *ret_len), or NULL. */
const char *cookie_get(struct request *r, const char *name, size_t *ret_len);

/* Add Set-Cookie headers carrying the tokens (max-age of each). */
bool cookie_set_tokens(struct request *r, const char *access, int64_t access_max_age,
                       const char *refresh, int64_t refresh_max_age);

/* Add Set-Cookie headers that clear both cookies. */
bool cookie_clear_tokens(struct request *r);

#endif /* JWTD_COOKIE_H */
