/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The HTTP server (libmicrohttpd, epoll thread pool). Start it with a ready
 * app; stop it in two steps: quiesce (stop accepting, in-flight requests go
 * on), then, once the pools have stopped, stop (threads joined, connections
 * closed).
 */
#ifndef JWTD_SERVER_H
#define JWTD_SERVER_H

#include <stdbool.h>
#include <stddef.h>

#include "core/app.h"

struct server;

/* Whether cfg->listen can be bound now (a socket bound and closed at
 * once): so that `serve` on a taken port says so before it opens, creates
 * or migrates a database. False with a one-line reason. */
bool server_probe_listen(const struct config *cfg, char *err, size_t errlen);

/* Listen on cfg->listen and serve. NULL with a one-line reason on failure. */
struct server *server_start(struct app *app, char *err, size_t errlen);

/* Use this certificate chain and key (PEM) for new TLS handshakes (at
 * start-up, and on SIGHUP). On failure writes a reason naming the setting
 * and keeps the previous ones. */
bool server_set_tls(struct server *s, const char *cert_pem, const char *key_pem, char *err,
                    size_t errlen);

/* Stop accepting: connections opened from now on are closed at once (the
 * listen socket stays open until server_stop). */
void server_quiesce(struct server *s);

/* Stop the threads, close the connections and free. NULL-safe. Call only
 * once no connection is suspended, i.e. after app_pools_stop():
 * libmicrohttpd forbids stopping with suspended connections (0.9.75 aborts
 * the process), and a suspended request's memory is still its pool jobs'. */
void server_stop(struct server *s);

#endif /* JWTD_SERVER_H */
