/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Browser delivery of tokens as cookies (API.md "Browser (cookie)
 * delivery", docs/browser.md):
 * - the access cookie `__Host-jwtd_access` (HttpOnly; Secure;
 *   SameSite=Strict; Path=/), or `__Secure-jwtd_access` with
 *   Domain=JWTD_COOKIE_DOMAIN when apps on sibling hosts must see it;
 * - the refresh cookie `__Secure-jwtd_refresh` (Path=/auth/refresh, so it
 *   travels only to the refresh endpoints);
 * - for sessions opened by the pages only, `__Host-jwtd_session`, which
 *   holds no secret ("1") and only tells the sign-in page that a refresh
 *   cookie may be there to renew the session (the page cannot see that
 *   cookie: it is scoped to /auth/refresh). The JSON API sets exactly the
 *   two cookies of API.md.
 * SameSite is Strict, or Lax with JWTD_COOKIE_SAMESITE=lax.
 */
#ifndef JWTD_COOKIE_H
#define JWTD_COOKIE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct request;
struct config;

#define COOKIE_ACCESS_HOST "__Host-jwtd_access"
#define COOKIE_ACCESS_DOMAIN "__Secure-jwtd_access"
#define COOKIE_REFRESH "__Secure-jwtd_refresh"
#define COOKIE_SESSION_HINT "__Host-jwtd_session"

/* The access cookie's name under cfg. */
const char *cookie_access_name(const struct config *cfg);

/* The value of a request cookie (pointing into the Cookie header; not
 * NUL-terminated at *ret_len), or NULL. */
const char *cookie_get(struct request *r, const char *name, size_t *ret_len);

/* Add Set-Cookie headers carrying the tokens (max-age of each). */
bool cookie_set_tokens(struct request *r, const char *access, int64_t access_max_age,
                       const char *refresh, int64_t refresh_max_age);

/* Add Set-Cookie headers that clear both token cookies. */
bool cookie_clear_tokens(struct request *r);

/* Set (max_age > 0) or clear (0) the pages' session hint. */
bool cookie_set_hint(struct request *r, int64_t max_age);

#endif /* JWTD_COOKIE_H */
