/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The one route table of the server: for every path, its name (metric label
 * and log value), where its handler runs (the HTTP thread for answers from
 * memory, the I/O pool for anything that waits on storage), and its
 * handler per method. Paths are matched exactly (no trailing-slash or case
 * folding); a path ending in '/' takes one id segment of 36 characters
 * (/auth/sessions/{id}).
 *
 * This directory sits above the front ends (api/, pages/), which sit above
 * the request layer (http/): the table is the only place that knows them
 * all, so that http/ never imports a front end.
 */
#ifndef JWTD_ROUTES_H
#define JWTD_ROUTES_H

#include <stdbool.h>

#include "http/request.h"

typedef void (*handler_fn)(struct request *r);

enum route_pool { ROUTE_INLINE, ROUTE_IO };

/* What a method's body is: none (ignored), JSON (API), or an HTML form. */
enum body_kind { BODY_NONE = 0, BODY_JSON = 1, BODY_FORM = 2 };

struct route_method {
    enum http_method method;
    handler_fn fn;
    enum body_kind body;
};

struct route {
    const char *path;
    const char *name;
    enum route_pool pool;
    struct route_method m[3];
};

/* Every route (index = metrics index), and how many. */
extern const struct route routes_table[];
extern const unsigned routes_count;

/* The route of a path (NULL when unknown); fills path_id for routes with
 * an id. */
const struct route *routes_match(const char *url, char path_id[UUID_STR_LEN]);

/* The index of a route in routes_table. */
unsigned routes_index(const struct route *route);

/* The handler of (route, method), or NULL; *ret_allowed gets the methods
 * the route answers (for 405 Allow) and *ret_body what body it reads. HEAD
 * is served by the GET handler, unless the route's GET changes state. */
handler_fn routes_handler(const struct route *route, enum http_method m, unsigned *ret_allowed,
                          enum body_kind *ret_body);

/* Whether the route's GET changes state (it rotates a session: only
 * /auth/refresh/continue). Such a GET does not serve HEAD, which is refused
 * with 405, so that a HEAD request (a link checker, a prefetch) never
 * spends a refresh token. */
bool routes_get_changes_state(const struct route *route);

/* Whether a method of the route takes a page's form: the route is a page's
 * (its refusals are pages too, for a browser shows them). */
bool routes_takes_form(const struct route *route);

/* The method bit of a method name (M_OTHER when unknown). */
enum http_method routes_method(const char *method);

#endif /* JWTD_ROUTES_H */
