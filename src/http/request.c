/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Implementation of request.h: reading headers, cookies, the client address
 * and the JSON body, authenticating Bearer routes, and building every
 * response (security headers, CORS, error shape). The MHD life cycle of a
 * request is in server.c.
 */
#include "http/request.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include <microhttpd.h>

#include "base/log.h"
#include "http/cookie.h"
#include "http/cors.h"
#include "http/parse.h"

/* ------------------------------------------------------------ reading -- */

const char *request_header(struct request *r, const char *name)
{
    return MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, name);
}

bool request_same_origin(struct request *r, const char *origin)
{
    char pub[512];
    const struct config *cfg = r->app->cfg;
    bool have_pub = config_public_origin(cfg, pub, sizeof pub);
    /* RFC 9112, 3.2.2: with an absolute-form target, its authority is the
     * request's host, not Host. */
    return parse_same_origin(origin, r->authority ? r->authority : request_header(r, "Host"),
                             have_pub ? pub : NULL,
                             cfg->tls_cert_pem != NULL);
}

static bool sockaddr_text(const struct sockaddr *sa, char *out, size_t cap)
{
    if (!sa)
        return false;
    if (sa->sa_family == AF_INET)
        return inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, out, (socklen_t)cap);
    if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)sa;
        /* Show IPv4-mapped peers as plain IPv4. */
        if (IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr))
            return inet_ntop(AF_INET, &s6->sin6_addr.s6_addr[12], out, (socklen_t)cap);
        return inet_ntop(AF_INET6, &s6->sin6_addr, out, (socklen_t)cap);
    }
    return false;
}

static const struct sockaddr *peer_addr(struct request *r)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(r->conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    return ci ? ci->client_addr : NULL;
}

bool request_peer_is_loopback(struct request *r)
{
    const struct sockaddr *sa = peer_addr(r);
    if (!sa)
        return false;
    if (sa->sa_family == AF_INET)
        return (ntohl(((const struct sockaddr_in *)sa)->sin_addr.s_addr) >> 24) == 127;
    if (sa->sa_family == AF_INET6) {
        const struct in6_addr *a = &((const struct sockaddr_in6 *)sa)->sin6_addr;
        return IN6_IS_ADDR_LOOPBACK(a) || (IN6_IS_ADDR_V4MAPPED(a) && a->s6_addr[12] == 127);
    }
    return false;
}

bool request_forwarded(struct request *r)
{
    return request_header(r, "X-Forwarded-For") || request_header(r, "Forwarded") ||
           request_header(r, "X-Real-IP");
}

static bool addr_trusted(const struct config *cfg, const char *addr)
{
    for (size_t i = 0; i < cfg->n_trusted_proxies; i++)
        if (strcmp(cfg->trusted_proxies[i], addr) == 0)
            return true;
    return false;
}

static bool trusted_cb(void *ctx, const char *addr)
{
    return addr_trusted(ctx, addr);
}

const char *request_client_addr(struct request *r)
{
    if (r->addr_done)
        return r->addr;
    r->addr_done = true;
    if (!sockaddr_text(peer_addr(r), r->addr, sizeof r->addr))
        snprintf(r->addr, sizeof r->addr, "unknown");
    const struct config *cfg = r->app->cfg;
    if (cfg->n_trusted_proxies && addr_trusted(cfg, r->addr)) {
        const char *xff = request_header(r, "X-Forwarded-For");
        char client[64];
        /* Walk X-Forwarded-For from the right, skipping our trusted
         * proxies: the first other address is the client (only hops we
         * trust may have appended entries). */
        if (xff && parse_forwarded_client(xff, trusted_cb, (void *)cfg, client, sizeof client))
            snprintf(r->addr, sizeof r->addr, "%s", client);
    }
    return r->addr;
}

/* An id from outside is used only when a trusted proxy sent it and it is
 * short and made of characters that cannot break a log line. */
static bool request_id_ok(const char *v)
{
    size_t n = 0;
    for (; v[n]; n++)
        if (!((v[n] >= 'a' && v[n] <= 'z') || (v[n] >= 'A' && v[n] <= 'Z') ||
              (v[n] >= '0' && v[n] <= '9') || v[n] == '-' || v[n] == '_' || v[n] == '.' ||
              v[n] == ':'))
            return false;
    return n > 0 && n < 40;
}

void request_assign_id(struct request *r)
{
    const char *in = request_header(r, "X-Request-Id");
    if (in && r->app->cfg->n_trusted_proxies) {
        char peer[64];
        if (sockaddr_text(peer_addr(r), peer, sizeof peer) && addr_trusted(r->app->cfg, peer) &&
            request_id_ok(in)) {
            snprintf(r->request_id, sizeof r->request_id, "%s", in);
            return;
        }
    }
    util_uuid7_weak(r->request_id);
}

const struct svc_ctx *request_ctx(struct request *r)
{
    if (!r->ctx_done) {
        r->ctx.actor = SVC_ACTOR_CLIENT;
        snprintf(r->ctx.request_id, sizeof r->ctx.request_id, "%s", r->request_id);
        snprintf(r->ctx.client_addr, sizeof r->ctx.client_addr, "%s", request_client_addr(r));
        request_user_agent(r, r->ctx.user_agent, sizeof r->ctx.user_agent);
        r->ctx_done = true;
    }
    return &r->ctx;
}

void request_user_agent(struct request *r, char *out, size_t cap)
{
    const char *ua = request_header(r, "User-Agent");
    size_t o = 0;
    for (const char *p = ua ? ua : ""; *p && o + 1 < cap; p++)
        out[o++] = (*p >= 0x20 && *p < 0x7f) ? *p : '?';
    out[o] = '\0';
}

/* Whether a string anywhere in v holds a NUL byte (object keys never do:
 * jansson refuses them even with JSON_ALLOW_NUL). */
static bool json_holds_nul(const json_t *v)
{
    if (json_is_string(v))
        return memchr(json_string_value(v), '\0', json_string_length(v)) != NULL;
    if (json_is_array(v)) {
        for (size_t i = 0; i < json_array_size(v); i++)
            if (json_holds_nul(json_array_get(v, i)))
                return true;
    } else if (json_is_object(v)) {
        const char *k;
        json_t *m;
        json_object_foreach((json_t *)v, k, m)
        {
            if (json_holds_nul(m))
                return true;
        }
    }
    return false;
}

/* "\u0000" is valid JSON, but jwtd reads strings as C strings: a NUL is
 * refused anywhere but in the top-level "username", whose rule is a list of
 * allowed characters (API.md: anything else is 422 invalid_username, decided
 * by the service with the string's length). */
static bool nul_outside_username(json_t *doc)
{
    const char *key;
    json_t *v;
    json_object_foreach(doc, key, v)
    {
        if (!(strcmp(key, "username") == 0 && json_is_string(v)) && json_holds_nul(v))
            return true;
    }
    return false;
}

json_t *request_json(struct request *r, bool required)
{
    if (r->bad_content_type) {
        respond_error(r, 415, "unsupported_media_type",
                      "The request body must be application/json.");
        return NULL;
    }
    if (r->body.len == 0) {
        /* No body at all (and no media type: a declared non-JSON one was
         * refused above): the required fields are missing. */
        if (!required)
            return json_object();
        respond_error(r, 400, "invalid_request",
                      "The request needs a JSON object body (Content-Type: application/json).");
        return NULL;
    }
    json_error_t jerr;
    json_t *doc =
        json_loadb(r->body.data, r->body.len,
                   JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL | JSON_DECODE_ANY, &jerr);
    /* Read once: the raw body (a password, say) goes now, not when the
     * request's memory does, after its response was sent. */
    buf_wipe_free(&r->body);
    if (!doc) {
        respond_error(r, 400, "invalid_request", "The request body is not valid JSON.");
        return NULL;
    }
    if (!json_is_object(doc)) {
        json_decref(doc);
        respond_error(r, 400, "invalid_request", "The request body must be a JSON object.");
        return NULL;
    }
    if (nul_outside_username(doc)) {
        json_decref(doc);
        respond_error(r, 400, "invalid_request",
                      "The request body holds a NUL character (\\u0000) in a string.");
        return NULL;
    }
    return doc;
}

bool json_field_string(struct request *r, json_t *obj, const char *name, bool required,
                       const char **ret, size_t *ret_len)
{
    json_t *v = json_object_get(obj, name);
    char msg[128];
    if (!v) {
        if (!required) {
            *ret = NULL;
            if (ret_len)
                *ret_len = 0;
            return true;
        }
        snprintf(msg, sizeof msg, "The field '%s' is required.", name);
        respond_error(r, 400, "invalid_request", msg);
        return false;
    }
    if (!json_is_string(v)) {
        snprintf(msg, sizeof msg, "The field '%s' must be a string.", name);
        respond_error(r, 400, "invalid_request", msg);
        return false;
    }
    *ret = json_string_value(v);
    if (ret_len)
        *ret_len = json_string_length(v);
    return true;
}

const char *request_access_token(struct request *r, size_t *ret_len, bool *ret_from_cookie)
{
    if (r->authorization_twice) {
        /* Which one counts is up to the reader (the HTTP library takes the
         * first, others the last): neither, and no cookie instead. */
        *ret_len = 0;
        *ret_from_cookie = false;
        return "";
    }
    const char *h = request_header(r, "Authorization");
    /* RFC 6750 §2.1; the scheme is case-insensitive (RFC 7235). Another
     * scheme (Basic, ...) is not a token for us. */
    const char *t = parse_bearer(h, ret_len);
    if (t) {
        *ret_from_cookie = false;
        return t;
    }
    size_t clen;
    const char *c = cookie_get(r, cookie_access_name(r->app->cfg), &clen);
    if (c) {
        *ret_len = clen;
        *ret_from_cookie = true;
        return c;
    }
    return NULL;
}

const char *request_empty_token_reason(struct request *r)
{
    return r->authorization_twice ? "more than one Authorization header"
                                  : jwtd_strerror(JWTD_ERR_MALFORMED);
}

static bool authenticate(struct request *r, struct identity *ret_id, bool clear_on_refusal)
{
    size_t len = 0;
    bool from_cookie = false;
    const char *tok = request_access_token(r, &len, &from_cookie);
    const char *reason = NULL;
    bool ok = tok && len > 0 && access_check(r->app, tok, len, util_now(), ret_id, &reason);
    if (!ok) {
        if (clear_on_refusal && (!tok || from_cookie))
            cookie_clear_tokens(r);
        respond_unauthorized(r, !tok        ? NULL
                                : len == 0 ? request_empty_token_reason(r)
                                           : reason);
        return false;
    }
    if (from_cookie && !csrf_check(r))
        return false;
    return true;
}

bool request_authenticate(struct request *r, struct identity *ret_id)
{
    return authenticate(r, ret_id, false);
}

bool request_authenticate_logout(struct request *r, struct identity *ret_id)
{
    return authenticate(r, ret_id, true);
}

/* ---------------------------------------------------------- answering -- */

bool respond_header_value_ok(const char *value)
{
    for (const unsigned char *p = (const unsigned char *)value; *p; p++)
        if ((*p < 0x20 && *p != '\t') || *p == 0x7f)
            return false;
    return true;
}

bool respond_header(struct request *r, const char *name, const char *value)
{
    if (r->n_headers == REQ_MAX_HEADERS || !respond_header_value_ok(value))
        return false;
    char *n = strdup(name), *v = strdup(value);
    if (!n || !v) {
        free(n);
        free(v);
        return false;
    }
    r->hname[r->n_headers] = n;
    r->hvalue[r->n_headers] = v;
    r->n_headers++;
    return true;
}

/* Whether respond_header added name to this answer. */
static bool staged_header(const struct request *r, const char *name)
{
    for (unsigned i = 0; i < r->n_headers; i++)
        if (strcasecmp(r->hname[i], name) == 0)
            return true;
    return false;
}

void respond_retry_after(struct request *r, int64_t seconds)
{
    /* Once per answer: a page shown after a refusal may meet another. */
    if (staged_header(r, "Retry-After"))
        return;
    char ra[24];
    snprintf(ra, sizeof ra, "%lld", (long long)(seconds > 0 ? seconds : 1));
    respond_header(r, "Retry-After", ra);
}

static void queue(struct request *r, unsigned status, struct MHD_Response *resp, bool json)
{
    if (!resp) {
        LOG(LOG_ERROR, "response_failed", LF_S("reason", "out of memory"));
        r->answered = true;
        r->status = 500;
        return;
    }
    /* Security headers of API.md on every response. */
    MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
    /* Pages keep the origin on same-origin requests: a form post with
     * no-referrer would carry "Origin: null" and fail the CSRF check. */
    MHD_add_response_header(resp, "Referrer-Policy", r->csp ? "same-origin" : "no-referrer");
    MHD_add_response_header(resp, "Content-Security-Policy",
                            r->csp ? r->csp : "default-src 'none'; frame-ancestors 'none'");
    if (r->app->cfg->tls_cert_pem)
        MHD_add_response_header(resp, "Strict-Transport-Security",
                                "max-age=31536000; includeSubDomains");
    if (json)
        MHD_add_response_header(resp, "Content-Type", "application/json; charset=utf-8");
    /* Anything under /auth/ is about a person: never cached. Once: a page
     * or a redirect there says it already. */
    if (r->url && strncmp(r->url, "/auth/", 6) == 0 &&
        !MHD_get_response_header(resp, "Cache-Control") && !staged_header(r, "Cache-Control"))
        MHD_add_response_header(resp, "Cache-Control", "no-store");
    if (r->request_id[0])
        MHD_add_response_header(resp, "X-Request-Id", r->request_id);
    cors_add_headers(r, resp);
    for (unsigned i = 0; i < r->n_headers; i++)
        MHD_add_response_header(resp, r->hname[i], r->hvalue[i]);
    r->answered = true;
    r->status = status;
    /* Only the HTTP thread may queue: off it, keep it for the resume. */
    r->staged = resp;
    if (!r->offthread)
        request_queue_staged(r);
}

/* libmicrohttpd 0.9.75 can call the handler once before it takes a
 * response: after its "100 Continue" to a request without a body, with the
 * next request already read, it calls with no upload data and refuses what
 * is queued then. A refused response stays staged, and is queued again on
 * the library's next call (server.c), instead of the request staying
 * unanswered (and its connection stuck) for good. */
void request_queue_staged(struct request *r)
{
    if (!r->staged)
        return;
    if (MHD_queue_response(r->conn, r->status, r->staged) != MHD_YES) {
        LOG(LOG_DEBUG, "response_not_queued_yet", LF_S("route", r->route_name));
        return;
    }
    MHD_destroy_response(r->staged);
    r->staged = NULL;
}

void respond_json_text(struct request *r, unsigned status, const char *text, size_t len)
{
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(len, (void *)text, MHD_RESPMEM_MUST_COPY);
    queue(r, status, resp, true);
}

void respond_text(struct request *r, unsigned status, const char *text, size_t len)
{
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(len, (void *)text, MHD_RESPMEM_MUST_COPY);
    queue(r, status, resp, false);
}

void respond_json(struct request *r, unsigned status, json_t *body)
{
    char *text = body ? json_dumps(body, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    json_decref(body);
    if (!text) {
        /* Out of memory: a fixed body, not respond_error (which would come
         * back here through json_pack, again and again). */
        static const char oom[] = "{\"error\":\"internal_error\",\"error_description\":"
                                  "\"The server ran out of memory.\"}";
        queue(r, 500,
              MHD_create_response_from_buffer(sizeof oom - 1, (void *)oom,
                                              MHD_RESPMEM_PERSISTENT),
              true);
        return;
    }
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(strlen(text), text, MHD_RESPMEM_MUST_FREE);
    if (!resp)
        free(text);
    queue(r, status, resp, true);
}

void respond_empty(struct request *r, unsigned status)
{
    struct MHD_Response *resp = MHD_create_response_from_buffer(0, (void *)"",
                                                                MHD_RESPMEM_PERSISTENT);
    queue(r, status, resp, false);
}

const char *request_query(struct request *r, const char *name)
{
    return MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, name);
}

void respond_html(struct request *r, unsigned status, const char *html, size_t len)
{
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(len, (void *)html, MHD_RESPMEM_MUST_COPY);
    if (resp) {
        MHD_add_response_header(resp, "Content-Type", "text/html; charset=utf-8");
        MHD_add_response_header(resp, "Cache-Control", "no-store");
        MHD_add_response_header(resp, "X-Frame-Options", "DENY");
    }
    queue(r, status, resp, false);
}

void respond_asset(struct request *r, const char *content_type, const char *data, size_t len)
{
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(len, (void *)data, MHD_RESPMEM_PERSISTENT);
    if (resp) {
        MHD_add_response_header(resp, "Content-Type", content_type);
        MHD_add_response_header(resp, "Cache-Control", "public, max-age=3600");
    }
    queue(r, 200, resp, false);
}

static void redirect(struct request *r, const char *location, unsigned status)
{
    respond_header(r, "Location", location);
    respond_header(r, "Cache-Control", "no-store");
    respond_empty(r, status);
}

void respond_redirect(struct request *r, const char *location)
{
    redirect(r, location, 303);
}

void respond_redirect_repost(struct request *r, const char *location)
{
    redirect(r, location, 307);
}

void respond_error(struct request *r, unsigned status, const char *code, const char *description)
{
    json_t *body = json_pack("{s:s, s:s}", "error", code, "error_description", description);
    respond_json(r, status, body);
}

void respond_unauthorized(struct request *r, const char *reason)
{
    if (!reason) {
        respond_header(r, "WWW-Authenticate", "Bearer realm=\"jwtd\"");
        respond_error(r, 401, "invalid_token", "No access token was sent.");
        return;
    }
    char h[256];
    /* Reasons are fixed ASCII phrases without quotes (jwtd_strerror and
     * our own), safe inside a quoted-string. */
    snprintf(h, sizeof h, "Bearer realm=\"jwtd\", error=\"invalid_token\", error_description=\"%s\"",
             reason);
    respond_header(r, "WWW-Authenticate", h);
    char desc[160];
    snprintf(desc, sizeof desc, "The access token was refused: %s.", reason);
    respond_error(r, 401, "invalid_token", desc);
}

void respond_busy(struct request *r, const char *description)
{
    respond_retry_after(r, 1);
    respond_error(r, 503, "server_busy", description);
}

/* --------------------------------------------------------------- async -- */

static struct request *request_of_job(struct work_job *job)
{
    return (struct request *)((char *)job - offsetof(struct request, job));
}

static struct request *request_of_io_job(struct work_job *job)
{
    return (struct request *)((char *)job - offsetof(struct request, io_job));
}

/* Runs r->step on an I/O thread, then wakes the connection unless a
 * hashing job is out (its completion posts the next step). */
static void io_run(struct work_job *job)
{
    struct request *r = request_of_io_job(job);
    r->offthread = true;
    r->step(r);
    r->offthread = false;
    if (!r->answered && !r->hash_pending) {
        LOG(LOG_ERROR, "handler_did_not_answer", LF_S("route", r->route_name));
        r->offthread = true;
        respond_error(r, 500, "internal_error", "The server failed to answer.");
        r->offthread = false;
    }
}

/* The continuation after a hashing job may start only when both the step
 * that submitted it and the job itself are over: the last to finish posts
 * it (the io_job struct is then free for reuse). */
static void handoff_arrive(struct request *r)
{
    if (atomic_fetch_sub(&r->handoff, 1) == 1) {
        r->hash_pending = false;
        r->step = r->on_resume;
        workpool_post(r->app->io, &r->io_job);
    }
}

static void io_complete(struct work_job *job, bool ran)
{
    struct request *r = request_of_io_job(job);
    if (!ran && !r->answered) {
        /* Dropped (deadline or shutdown) before it started. */
        r->offthread = true;
        respond_busy(r, "The server is too busy; try again shortly.");
        r->offthread = false;
    }
    if (r->answered) {
        atomic_store(&r->resumed, true);
        MHD_resume_connection(r->conn);
    } else if (r->hash_pending) {
        handoff_arrive(r);
    }
}

void request_offload(struct request *r, resume_fn handler)
{
    if (!workpool_reserve(r->app->io)) {
        respond_busy(r, "The server is too busy; try again shortly.");
        return;
    }
    r->step = handler;
    r->io_job.run = io_run;
    r->io_job.complete = io_complete;
    r->suspended = true;
    atomic_store(&r->resumed, false);
    /* Suspend before submitting: the job may finish before this returns. */
    MHD_suspend_connection(r->conn);
    workpool_submit(r->app->io, &r->io_job);
}

/* The hashing job is done (hashing thread): continue on the I/O pool. */
static void job_complete(struct work_job *job, bool ran)
{
    struct request *r = request_of_job(job);
    r->job_ran = ran;
    handoff_arrive(r);
}

static void op_slow(struct work_job *job)
{
    struct request *r = request_of_job(job);
    r->op->slow(r->op);
}

/* On the I/O pool after the slow part (or instead of it). */
static void op_resume(struct request *r)
{
    struct svc_op *op = r->op;
    if (op->finish)
        op->finish(op, r->job_ran);
    op->slow = NULL;
    op->finish = NULL;
    svc_op_wipe(op);
    r->op_done(r, op);
}

void request_run_op(struct request *r, struct svc_op *op, op_done_fn done)
{
    if (!op) {
        respond_error(r, 500, "internal_error", "The server ran out of memory.");
        return;
    }
    r->op = op;
    r->op_done = done;
    if (!op->slow) {
        done(r, op);
        return;
    }
    if (!workpool_reserve(r->app->hash)) {
        r->job_ran = false;
        op_resume(r);
        return;
    }
    r->job.run = op_slow;
    r->job.complete = job_complete;
    r->on_resume = op_resume;
    r->hash_pending = true;
    atomic_store(&r->handoff, 2); /* this step, and the hashing job */
    workpool_submit(r->app->hash, &r->job);
}
