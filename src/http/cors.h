/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Cross-origin rules. CORS is off unless JWTD_CORS_ORIGINS lists exact
 * origins; then only those get Access-Control-Allow-Origin (with
 * credentials). The CSRF defence for cookie-authenticated state changes
 * lives here too, because it is the same question: which origin is asking?
 */
#ifndef JWTD_CORS_H
#define JWTD_CORS_H

#include <stdbool.h>

struct request;
struct MHD_Response;

/* True when origin is in the allow-list. */
bool cors_origin_allowed(struct request *r, const char *origin);

/* Add the CORS headers a response to an allowed origin needs. */
void cors_add_headers(struct request *r, struct MHD_Response *resp);

/* Answer an OPTIONS request (preflight or not). */
void cors_preflight(struct request *r, unsigned allowed_methods);

/* CSRF check of a cookie-authenticated request; answers 403 and returns
 * false when refused. Safe methods always pass. */
bool csrf_check(struct request *r);

#endif /* JWTD_CORS_H */
