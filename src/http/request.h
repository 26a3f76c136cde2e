/* SPDX-License-Identifier: Apache-2.0 */
/*
 * One HTTP request as handlers see it, and every way to answer it. The
 * server (server.c) creates the request on the first libmicrohttpd call,
 * collects the body under its cap, routes it, and frees it when the
 * connection reports completion.
 *
 * Where handlers run: routes answered from memory (/auth/verify, /healthz,
 * JWKS, discovery, metrics) run on the HTTP threads. Every route that waits
 * on storage runs on the I/O pool, with the connection suspended, so that
 * an HTTP thread never blocks on a database; a handler there that needs a
 * password hashed hands a job to the hashing pool (request_run_job), whose
 * completion continues on the I/O pool (on_resume). A handler answers
 * exactly once with respond_*: on an I/O thread the response is staged and
 * queued by the HTTP thread when the connection resumes.
 *
 * Every response gets the security headers of API.md. Errors always have
 * the contract's shape {"error","error_description"}.
 */
#ifndef JWTD_REQUEST_H
#define JWTD_REQUEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdatomic.h>
#include <stdint.h>

#include <jansson.h>

#include "base/util.h"
#include "core/app.h"
#include "core/service.h"
#include "core/workpool.h"
#include "http/metrics.h"

struct MHD_Connection;

enum http_method {
    M_GET = 1 << 0,
    M_HEAD = 1 << 1,
    M_POST = 1 << 2,
    M_PUT = 1 << 3,
    M_DELETE = 1 << 4,
    M_PATCH = 1 << 5,
    M_OPTIONS = 1 << 6,
    M_OTHER = 1 << 7
};

#define REQ_MAX_HEADERS 12

struct request;
typedef void (*resume_fn)(struct request *r);
typedef void (*op_done_fn)(struct request *r, struct svc_op *op);

struct request {
    struct app *app;
    struct http_metrics *metrics;
    struct MHD_Connection *conn;
    const char *route_name;   /* "login", ...; "other" for unknown paths */
    unsigned route_index;     /* for metrics */
    enum http_method method;
    const char *url;          /* its path, owned by libmicrohttpd, valid until completion */
    char *authority;          /* an absolute-form target's host[:port] (heap), or NULL */
    bool authorization_twice; /* more than one Authorization header came */
    char path_id[UUID_STR_LEN]; /* {id} of /auth/sessions/{id} */
    char request_id[40];      /* also the X-Request-Id response header */

    /* body */
    struct buf body;
    bool body_expected;       /* Content-Length > 0 or chunked */
    bool body_too_large;
    size_t discarded;         /* bytes dropped after the cap */
    bool bad_content_type;    /* a Content-Type other than application/json */
    bool json_declared;       /* Content-Type: application/json was sent */
    bool form_declared;       /* Content-Type: application/x-www-form-urlencoded */
    char *csp;                /* a page's Content-Security-Policy (heap), or NULL: the API's */

    /* state */
    unsigned calls;
    bool answered;
    bool suspended;           /* the connection waits for the I/O pool */
    bool offthread;           /* running on an I/O thread: responses are staged */
    bool hash_pending;        /* a hashing job is out; on_resume follows */
    atomic_int handoff;       /* parties yet to finish before on_resume may run */
    _Atomic bool resumed;     /* the staged response is ready to queue */
    struct MHD_Response *staged;
    resume_fn step;           /* what the I/O pool runs next */
    resume_fn on_resume;      /* continuation after the hashing job */
    unsigned status;
    int64_t start_us;

    /* lazily computed client address */
    char addr[64];
    bool addr_done;

    /* who is asking, for the services (request_ctx) */
    struct svc_ctx ctx;
    bool ctx_done;

    /* a service operation in progress (request_run_op) */
    struct svc_op *op;
    op_done_fn op_done;

    /* extra response headers, heap strings */
    unsigned n_headers;
    char *hname[REQ_MAX_HEADERS];
    char *hvalue[REQ_MAX_HEADERS];

    /* handler state (owned by the handler, freed by its free function) */
    void *hs;
    void (*hs_free)(void *hs);
    struct work_job job;      /* embedded job for the hashing pool */
    struct work_job io_job;   /* embedded job for the I/O pool */
    bool job_ran;             /* false when the pool dropped the job (deadline, shutdown) */
};

/* Set up a request id: the incoming X-Request-Id when a trusted proxy sent
 * a well-formed one, else a new UUIDv7. Called by the server first thing. */
void request_assign_id(struct request *r);

/* The service context of the request: request id, client address, user
 * agent. */
const struct svc_ctx *request_ctx(struct request *r);

/* ---- reading ---- */

/* A request header (case-insensitive name), or NULL. */
const char *request_header(struct request *r, const char *name);

/* Whether origin (an Origin header) is this server's own: see
 * parse_same_origin (JWTD_PUBLIC_URL's origin, else the Host header by the
 * scheme the request came by). */
bool request_same_origin(struct request *r, const char *origin);

/* The client address (socket peer, or the first untrusted hop of
 * X-Forwarded-For when the peer is a trusted proxy). */
const char *request_client_addr(struct request *r);

/* True when the socket peer is a loopback address. */
bool request_peer_is_loopback(struct request *r);

/* True when a proxy says it forwarded the request (X-Forwarded-For,
 * Forwarded or X-Real-IP): its socket peer is then the proxy, not the
 * client. */
bool request_forwarded(struct request *r);

/* The User-Agent, cut to 256 printable ASCII characters (static "" when
 * absent), copied into out. */
void request_user_agent(struct request *r, char *out, size_t cap);

/*
 * Parse the body as a JSON object. When the body is required and missing,
 * or malformed, answers 400 (or 415) itself and returns NULL. When not
 * required and absent, returns an empty object. The caller owns the result.
 */
json_t *request_json(struct request *r, bool required);

/*
 * Read a string member. Missing: when required, answers 400 and returns
 * false; otherwise *ret = NULL and true. Not a string: 400, false.
 */
bool json_field_string(struct request *r, json_t *obj, const char *name, bool required,
                       const char **ret, size_t *ret_len);

/* The access token of the request: Bearer header first, then the access
 * cookie. *ret_from_cookie tells which. NULL when none. */
const char *request_access_token(struct request *r, size_t *ret_len, bool *ret_from_cookie);

/* Why an access token of length 0 (from request_access_token) is refused:
 * two Authorization headers, or an empty token. */
const char *request_empty_token_reason(struct request *r);

/*
 * Authenticate a Bearer route. On failure answers 401 (with
 * WWW-Authenticate) and returns false. For cookie-authenticated requests
 * with an unsafe method, the CSRF rules are checked too (403).
 */
bool request_authenticate(struct request *r, struct identity *ret_id);

/* The same for /auth/logout, which "always clears the cookies": a 401 for
 * a request that used no Authorization header (its access cookie revoked,
 * expired, or gone) clears them too - the browser keeps no dead cookie.
 * The session itself is ended by POST /auth/refresh/signout, which takes
 * the refresh cookie (docs/browser.md). */
bool request_authenticate_logout(struct request *r, struct identity *ret_id);

/* ---- answering ---- */

/* True when value can be a header value: no control character but tab. */
bool respond_header_value_ok(const char *value);

/* Add a response header (copied). False when the table is full, or the
 * value is not one (respond_header_value_ok). */
bool respond_header(struct request *r, const char *name, const char *value);

/* Add Retry-After: whole seconds, at least 1 (a refusal for now: too many
 * attempts, busy), unless the answer has one. The JSON API and the pages
 * say it alike. */
void respond_retry_after(struct request *r, int64_t seconds);

/* Answer with a JSON body (stolen) and status. */
void respond_json(struct request *r, unsigned status, json_t *body);

/* Answer with JSON text (copied). */
void respond_json_text(struct request *r, unsigned status, const char *text, size_t len);

/* Answer with a non-JSON body (copied); set Content-Type with
 * respond_header first. */
void respond_text(struct request *r, unsigned status, const char *text, size_t len);

/* Answer with an empty body. */
void respond_empty(struct request *r, unsigned status);

/* A query-string argument of the request URL (decoded), or NULL. */
const char *request_query(struct request *r, const char *name);

/* Answer with an HTML page (copied): text/html, no-store, the request's
 * r->csp (which the page set) instead of the API's policy. */
void respond_html(struct request *r, unsigned status, const char *html, size_t len);

/* Answer with a static asset (not copied: static storage), cached for an
 * hour. */
void respond_asset(struct request *r, const char *content_type, const char *data, size_t len);

/* Answer 303 See Other to location (a path or an absolute URL the caller
 * has checked). */
void respond_redirect(struct request *r, const char *location);

/* Answer 307 Temporary Redirect to location: the browser sends the same
 * method and body there (a form post handed on to another path). */
void respond_redirect_repost(struct request *r, const char *location);

/* Answer with the contract's error shape. */
void respond_error(struct request *r, unsigned status, const char *code, const char *description);

/* 401 for a Bearer route: reason NULL means "no token came". */
void respond_unauthorized(struct request *r, const char *reason);

/* 503 server_busy + Retry-After (storage or pool unavailable). */
void respond_busy(struct request *r, const char *description);


/* ---- async ---- */

/*
 * From an HTTP thread: suspend the connection and run `handler` on the I/O
 * pool. When the pool is full, answers 503 server_busy at once.
 */
void request_offload(struct request *r, resume_fn handler);

/* From the HTTP thread, when the connection was resumed: queue the staged
 * response. */
void request_queue_staged(struct request *r);

/*
 * From an I/O-pool handler: carry a service operation (service.h) to its
 * end and call done(r, op) on the I/O pool. When op has a slow part, it runs
 * on the hashing pool (a full pool makes it finish as SVC_BUSY). op is
 * owned by the request from here on (freed with it); NULL answers 500.
 */
void request_run_op(struct request *r, struct svc_op *op, op_done_fn done);

#endif /* JWTD_REQUEST_H */
