/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Implementation of cors.h.
 *
 * CSRF: a cross-site form post cannot pass, because (1) the cookies are
 * SameSite=Strict, so a browser does not attach them to cross-site
 * requests at all; (2) a form can only send form content types, and every
 * route that takes a body answers 415 to anything but application/json;
 * (3) a cookie-authenticated unsafe request (POST, PUT, PATCH, DELETE) is
 * refused with 403 when its Origin is neither the server's own origin nor
 * an allowed CORS origin, or when Sec-Fetch-Site says cross-site from an
 * origin not allowed, or - with neither header - when a Referer names
 * another origin; (4) a JSON request from another origin needs a CORS
 * preflight, which only allowed origins pass.
 */
#include "http/cors.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <microhttpd.h>

#include "http/parse.h"
#include "http/request.h"

bool cors_origin_allowed(struct request *r, const char *origin)
{
    const struct config *cfg = r->app->cfg;
    if (!origin)
        return false;
    for (size_t i = 0; i < cfg->n_cors_origins; i++)
        if (strcmp(cfg->cors_origins[i], origin) == 0)
            return true;
    return false;
}

void cors_add_headers(struct request *r, struct MHD_Response *resp)
{
    if (!r->app->cfg->n_cors_origins)
        return;
    const char *origin = request_header(r, "Origin");
    /* Vary even when refused: a cache must not hand one origin's answer to
     * another. */
    MHD_add_response_header(resp, "Vary", "Origin");
    if (!cors_origin_allowed(r, origin))
        return;
    MHD_add_response_header(resp, "Access-Control-Allow-Origin", origin);
    MHD_add_response_header(resp, "Access-Control-Allow-Credentials", "true");
    MHD_add_response_header(resp, "Access-Control-Expose-Headers",
                            "WWW-Authenticate, Retry-After");
}

static void allow_list(unsigned methods, char *out, size_t cap)
{
    static const struct {
        unsigned bit;
        const char *name;
    } names[] = {{M_GET, "GET"},       {M_HEAD, "HEAD"},     {M_POST, "POST"},
                 {M_PUT, "PUT"},       {M_DELETE, "DELETE"}, {M_PATCH, "PATCH"},
                 {M_OPTIONS, "OPTIONS"}};
    size_t o = 0;
    out[0] = '\0';
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (methods & names[i].bit) {
            int n = snprintf(out + o, cap - o, "%s%s", o ? ", " : "", names[i].name);
            if (n < 0 || (size_t)n >= cap - o)
                break;
            o += (size_t)n;
        }
}

void cors_preflight(struct request *r, unsigned allowed_methods)
{
    char allow[96];
    allow_list(allowed_methods | M_OPTIONS, allow, sizeof allow);
    respond_header(r, "Allow", allow);
    const char *origin = request_header(r, "Origin");
    const char *want = request_header(r, "Access-Control-Request-Method");
    if (origin && want && cors_origin_allowed(r, origin)) {
        respond_header(r, "Access-Control-Allow-Methods", allow);
        respond_header(r, "Access-Control-Allow-Headers",
                       "Authorization, Content-Type, X-Requested-With");
        respond_header(r, "Access-Control-Max-Age", "600");
    }
    /* A refused origin gets no Access-Control-* headers: the browser then
     * blocks the real request. */
    respond_empty(r, 204);
}

bool csrf_check(struct request *r)
{
    if (r->method & (M_GET | M_HEAD | M_OPTIONS))
        return true;
    const char *origin = request_header(r, "Origin");
    const char *site = request_header(r, "Sec-Fetch-Site");
    bool origin_ok = !origin || request_same_origin(r, origin) || cors_origin_allowed(r, origin);
    bool site_ok = !site || strcasecmp(site, "cross-site") != 0 ||
                   (origin && cors_origin_allowed(r, origin));
    /* Neither header (an old browser, or one told to omit Origin): a
     * Referer, when one came, must name this origin or a listed one too.
     * Without any of the three it is a client that is not a browser. */
    const char *referer = origin || site ? NULL : request_header(r, "Referer");
    if (referer) {
        char from[512];
        origin_ok = parse_referer_origin(referer, from, sizeof from) &&
                    (request_same_origin(r, from) || cors_origin_allowed(r, from));
    }
    if (origin_ok && site_ok)
        return true;
    respond_error(r, 403, "csrf_rejected",
                  "A cookie-authenticated request from another site was refused.");
    return false;
}
