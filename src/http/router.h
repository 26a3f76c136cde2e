/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The route table: path and method to handler. Paths are matched exactly
 * (no trailing-slash or case folding); /auth/sessions/{id} takes a UUID.
 */
#ifndef JWTD_ROUTER_H
#define JWTD_ROUTER_H

#include <stdbool.h>

#include "http/request.h"

typedef void (*handler_fn)(struct request *r);

/* The route of a path (ROUTE_NONE when unknown); fills path_id for routes
 * with an id. */
enum route router_match(const char *url, char path_id[UUID_STR_LEN]);

/* The handler of (route, method), or NULL; *ret_allowed gets the methods
 * the route answers (for 405 Allow) and *ret_body whether it reads a JSON
 * body. HEAD is served by the GET handler. */
handler_fn router_handler(enum route route, enum http_method m, unsigned *ret_allowed,
                          bool *ret_body);

enum http_method router_method(const char *method);

/* True for routes that wait on storage: they run on the I/O pool. */
bool router_on_io_pool(enum route route);

#endif /* JWTD_ROUTER_H */
