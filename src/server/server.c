/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The libmicrohttpd daemon and the life cycle of a request: create on the
 * first call (never answer there: answering on the first call makes MHD
 * close keep-alive connections, a 4x throughput loss measured in DESIGN.md),
 * collect the body under its cap, dispatch, resume after async work, and
 * free on completion. Limits on connections, per-address connections,
 * memory per connection and idle time are MHD options set here.
 */
#include "server/server.h"

#include <arpa/inet.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/socket.h>
#include <time.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <gnutls/abstract.h>
#include <gnutls/gnutls.h>
#include <microhttpd.h>

#include "base/log.h"
#include "http/cors.h"
#include "http/parse.h"
#include "pages/page.h"
#include "server/routes.h"

/* A connection as the request-deadline watchdog sees it. */
struct tracked {
    int fd;
    _Atomic int64_t deadline_ms; /* 0: no request being received */
    struct tracked *prev, *next;
};

struct server {
    struct app *app;
    struct http_metrics *metrics;
    const char **route_names;
    struct MHD_Daemon *daemon;
    /* Set on SIGTERM: new connections are closed as soon as they are
     * accepted while requests in flight finish. MHD_quiesce_daemon() is not
     * used: with an epoll thread pool, libmicrohttpd 0.9.75 races its own
     * workers removing the listen socket from their epoll sets and aborts
     * the process ("Failed to remove listen FD from epoll set"). */
    atomic_bool draining;
    /* The watchdog closes connections whose request (line, headers, body)
     * takes longer than JWTD_REQUEST_TIMEOUT to arrive: a client trickling
     * a byte a second is never idle, so MHD's idle timeout alone would let
     * slowloris keep connections forever. */
    pthread_mutex_t lock; /* guards the list; held while shutting a socket down */
    struct tracked head;
    pthread_t watchdog;
    bool watchdog_running;
    pthread_mutex_t stop_lock;
    pthread_cond_t stop_cond;
    bool stopping;
};

/* RFC 9110 token characters: what a header name may consist of. */
static bool is_tchar(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c && strchr("!#$%&'*+-.^_`|~", c));
}

struct header_census {
    bool bad_name;
    bool folded;
    bool bad_value;
    int content_length, transfer_encoding, host, content_type, authorization;
    bool bad_host;
    bool te_not_chunked;
};

static enum MHD_Result check_header(void *cls, enum MHD_ValueKind kind, const char *key,
                                    const char *value)
{
    struct header_census *c = cls;
    (void)kind;
    if (!key || !*key) {
        c->bad_name = true;
        return MHD_NO;
    }
    for (const unsigned char *p = (const unsigned char *)key; *p; p++)
        if (!is_tchar(*p)) {
            c->bad_name = true;
            return MHD_NO;
        }
    /* RFC 9110, 5.5: no control characters but HTAB in a field value.
     * libmicrohttpd keeps a bare CR there ("X-A: a\rContent-Length: 0"),
     * where a proxy may end the line and see another header (RFC 9112,
     * 2.2 says: invalid, or a space). (A NUL ends the value in the
     * library, which hands over only what came before it.) */
    if (value && !parse_field_value_ok(value, strlen(value))) {
        c->bad_value = true;
        return MHD_NO;
    }
    /* A header continued on the next line (obs-fold, RFC 9112, 5.2):
     * libmicrohttpd 0.9.75 glues the continuation onto the header's name
     * ("Content-Length:" + " 5" becomes "Content-Length5" with an empty
     * value), so the header is lost, while a proxy that unfolds it frames
     * the body by it. For the two headers that frame a body, a name that
     * only begins like them is such a fold: refused. (Not for Host: names
     * like "Hostname" exist, and a lost Host is refused below anyway.) */
    static const char *const framing[] = {"Content-Length", "Transfer-Encoding"};
    for (size_t i = 0; i < sizeof framing / sizeof framing[0]; i++) {
        size_t n = strlen(framing[i]);
        if (strncasecmp(key, framing[i], n) == 0 && key[n]) {
            c->folded = true;
            return MHD_NO;
        }
    }
    if (strcasecmp(key, "Content-Length") == 0) {
        c->content_length++;
    } else if (strcasecmp(key, "Host") == 0) {
        c->host++;
        if (!parse_host_valid(value ? value : ""))
            c->bad_host = true;
    } else if (strcasecmp(key, "Content-Type") == 0) {
        c->content_type++;
    } else if (strcasecmp(key, "Authorization") == 0) {
        c->authorization++;
    } else if (strcasecmp(key, "Transfer-Encoding") == 0) {
        c->transfer_encoding++;
        /* MHD reads a body as chunked only for exactly this value; any
         * other coding (a list, "identity", "gzip, chunked") is framed
         * differently by one reader or another. */
        if (!value || strcasecmp(value, "chunked") != 0)
            c->te_not_chunked = true;
    }
    return MHD_YES;
}

/* Requests that proxies and this server could read differently are
 * refused (and their connection closed): a header name with spaces
 * ("Content-Length : 5" is not Content-Length here, but may be upstream),
 * a header value with a control character (a bare CR ends the line for
 * some), Content-Length or Transfer-Encoding folded onto the next line
 * (MHD loses it), both Content-Length and Transfer-Encoding, either of
 * them twice (MHD takes the first, others the last), a transfer coding
 * other than chunked, HTTP/1.1 without Host or with two, a Host that is not
 * host[:port] (RFC 9112, 3.2). */
static const char *smuggling_risk(struct MHD_Connection *conn, const char *version,
                                  struct header_census *ret_census)
{
    struct header_census c = {0};
    MHD_get_connection_values(conn, MHD_HEADER_KIND, check_header, &c);
    *ret_census = c;
    if (c.bad_name)
        return "A request header name is malformed.";
    if (c.bad_value)
        return "A request header value holds a control character.";
    if (c.folded)
        return "A Content-Length or Transfer-Encoding request header is continued "
               "on the next line.";
    if (c.content_length && c.transfer_encoding)
        return "Content-Length and Transfer-Encoding must not both be sent.";
    if (c.content_length > 1 || c.transfer_encoding > 1)
        return "Content-Length or Transfer-Encoding must not be sent twice.";
    if (c.te_not_chunked)
        return "The only transfer coding accepted is chunked.";
    if (c.host > 1)
        return "The request must have one Host header.";
    if (c.bad_host)
        return "The Host header is not a host name or address with an optional port.";
    if (strcmp(version, "HTTP/1.0") != 0 && c.host == 0)
        return "The request needs a Host header.";
    return NULL;
}

/*
 * One spare request per thread: the structure is over 1 KiB, and a fresh
 * calloc/free of that size per request made glibc consolidate its fast
 * bins on every /auth/verify (about 1.5% of the hot path). The spare is
 * freed when its thread ends.
 */
static pthread_key_t spare_key;
static pthread_once_t spare_once = PTHREAD_ONCE_INIT;

static void spare_init(void)
{
    if (pthread_key_create(&spare_key, free) != 0)
        abort(); /* out of thread-local keys at start-up */
}

static struct request *request_alloc(void)
{
    pthread_once(&spare_once, spare_init);
    struct request *r = pthread_getspecific(spare_key);
    if (!r)
        return calloc(1, sizeof *r);
    pthread_setspecific(spare_key, NULL);
    memset(r, 0, sizeof *r);
    return r;
}

static void request_release(struct request *r)
{
    if (!pthread_getspecific(spare_key) && pthread_setspecific(spare_key, r) == 0)
        return;
    free(r);
}

static struct request *request_new(struct server *s, struct MHD_Connection *conn,
                                   const char *url, const char *method)
{
    struct app *app = s->app;
    struct request *r = request_alloc();
    if (!r)
        return NULL;
    r->app = app;
    r->metrics = s->metrics;
    r->conn = conn;
    /* An absolute-form target ("http://host/path", RFC 9112, 3.2.2: a
     * server MUST accept it) is routed by its path. */
    const char *authority;
    size_t alen;
    const char *path = parse_absolute_form(url, &authority, &alen);
    if (path) {
        r->authority = strndup(authority, alen);
        if (!r->authority) {
            request_release(r);
            return NULL;
        }
        url = path;
    }
    r->url = url;
    r->method = routes_method(method);
    const struct route *route = routes_match(url, r->path_id);
    r->route_index = route ? routes_index(route) : routes_count;
    r->route_name = route ? route->name : "other";
    r->start_us = util_mono_us();
    request_assign_id(r);
    buf_init_secret(&r->body, app->cfg->max_body); /* passwords: no copy left by growth */

    const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Length");
    const char *te = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Transfer-Encoding");
    int64_t n = 0;
    if (cl && util_parse_int(cl, 0, INT64_MAX, &n) && n > 0)
        r->body_expected = true;
    if (te)
        r->body_expected = true;
    if (n > (int64_t)app->cfg->max_body)
        r->body_too_large = true;
    const char *ct = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Type");
    /* A body needs a JSON media type; so does a declared one without body
     * (a cross-site form always declares a form type). */
    r->json_declared = ct && parse_content_type_json(ct);
    r->form_declared = ct && parse_content_type_form(ct);
    if ((ct && !r->json_declared) || (!ct && r->body_expected))
        r->bad_content_type = true;
    atomic_fetch_add(&app->in_flight, 1);
    return r;
}

static void request_free(struct request *r)
{
    if (!r)
        return;
    if (r->hs_free)
        r->hs_free(r->hs);
    svc_op_free(r->op);
    if (r->staged)
        MHD_destroy_response(r->staged);
    buf_wipe_free(&r->body); /* bodies carry passwords */
    free(r->csp);
    free(r->authority);
    for (unsigned i = 0; i < r->n_headers; i++) {
        free(r->hname[i]);
        free(r->hvalue[i]);
    }
    request_release(r);
}

/* A body over JWTD_MAX_BODY: 413 in the contract's JSON shape, or as a
 * page for a route that takes a page's form (a browser shows the answer). */
static void answer_too_large(struct request *r)
{
    if (r->route_index < routes_count) {
        unsigned allowed;
        enum body_kind takes_body;
        if (routes_handler(&routes_table[r->route_index], r->method, &allowed, &takes_body) &&
            takes_body == BODY_FORM) {
            page_form_too_large(r);
            return;
        }
    }
    respond_error(r, 413, "payload_too_large", "The request body is too large.");
}

static void dispatch(struct request *r)
{
    if (r->route_index >= routes_count) {
        respond_error(r, 404, "not_found", "There is no such endpoint.");
        return;
    }
    unsigned allowed;
    enum body_kind takes_body;
    const struct route *route = &routes_table[r->route_index];
    handler_fn fn = routes_handler(route, r->method, &allowed, &takes_body);
    if (r->method == M_OPTIONS) {
        cors_preflight(r, allowed);
        return;
    }
    if (!fn) {
        char allow[96] = "";
        size_t o = 0;
        static const struct {
            unsigned bit;
            const char *name;
        } names[] = {{M_GET, "GET"}, {M_HEAD, "HEAD"}, {M_POST, "POST"}, {M_PATCH, "PATCH"}, {M_DELETE, "DELETE"},
                     {M_OPTIONS, "OPTIONS"}};
        allowed |= M_OPTIONS;
        for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
            if (allowed & names[i].bit)
                o += (size_t)snprintf(allow + o, sizeof allow - o, "%s%s", o ? ", " : "",
                                      names[i].name);
        respond_header(r, "Allow", allow);
        /* A form's address opened in the address bar (GET /logout, or
         * Enter on a page a form post showed): a page, not JSON. */
        if (routes_takes_form(route))
            page_method_not_allowed(r);
        else
            respond_error(r, 405, "method_not_allowed", "This endpoint does not take that method.");
        return;
    }
    if (takes_body == BODY_FORM) {
        /* A page's form: the form media type instead of JSON. */
        r->bad_content_type =
            (request_header(r, "Content-Type") && !r->form_declared) ||
            (!request_header(r, "Content-Type") && r->body_expected);
    }
    if (takes_body == BODY_NONE) {
        /* Routes without a body ignore one (and its type). */
        r->bad_content_type = false;
    }
    if (route->pool == ROUTE_IO) {
        request_offload(r, fn);
        return;
    }
    fn(r);
    if (!r->answered) {
        LOG(LOG_ERROR, "handler_did_not_answer", LF_S("route", r->route_name));
        respond_error(r, 500, "internal_error", "The server failed to answer.");
    }
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version,
                                  const char *upload_data, size_t *upload_data_size,
                                  void **con_cls)
{
    struct server *srv = cls;
    struct app *app = srv->app;
    struct request *r = *con_cls;
    if (!r) {
        r = request_new(srv, conn, url, method);
        if (!r)
            return MHD_NO; /* out of memory: MHD closes the connection */
        *con_cls = r;
        struct header_census census;
        const char *risk = smuggling_risk(conn, version, &census);
        if (risk) {
            respond_header(r, "Connection", "close");
            respond_error(r, 400, "invalid_request", risk);
            return MHD_YES;
        }
        /* Two Authorization headers: MHD hands over the first, an
         * application behind a proxy may read the last (request.c). */
        r->authorization_twice = census.authorization > 1;
        if (census.content_type > 1) {
            /* Two media types (MHD hands over the first): the body has
             * none that can be trusted, JSON or form. */
            r->json_declared = r->form_declared = false;
            r->bad_content_type = true;
        }
        /* A declared body over the cap is refused before it is read. MHD
         * accepts a response only now or after the whole body, and this
         * connection cannot be kept alive anyway (the body stays unread). */
        if (r->body_too_large)
            answer_too_large(r);
        return MHD_YES;
    }
    r->calls++;
    if (r->suspended) {
        if (!atomic_load(&r->resumed))
            return MHD_YES;
        r->suspended = false;
        request_queue_staged(r);
        return MHD_YES;
    }
    if (r->answered) {
        /* Answered early (413): drop the rest of the upload. Or answered
         * on a call where the library refused the response: again. */
        *upload_data_size = 0;
        request_queue_staged(r);
        return MHD_YES;
    }
    if (*upload_data_size) {
        size_t n = *upload_data_size;
        *upload_data_size = 0;
        if (!r->body_too_large && !buf_append(&r->body, upload_data, n))
            r->body_too_large = true;
        if (r->body_too_large) {
            /* A chunked body that outgrew the cap: its end is awaited (to
             * answer 413) only for a while; past 4x the cap the connection
             * is dropped. */
            r->discarded += n;
            if (r->discarded > 4 * app->cfg->max_body)
                return MHD_NO;
        }
        return MHD_YES;
    }
    if (r->body_too_large) {
        answer_too_large(r);
        return MHD_YES;
    }
    /* The whole request is in: the receive deadline is over. */
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    if (ci && ci->socket_context)
        atomic_store(&((struct tracked *)ci->socket_context)->deadline_ms, 0);
    dispatch(r);
    return MHD_YES;
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    struct server *srv = cls;
    struct app *app = srv->app;
    struct request *r = *con_cls;
    if (!r)
        return;
    *con_cls = NULL;
    unsigned status = r->answered ? r->status : 0;
    int64_t us = util_mono_us() - r->start_us;
    http_metrics_count(srv->metrics, r->route_index, status, us);
    /* The route only: no URL query strings, no headers, no bodies. */
    LOG(LOG_DEBUG, "http_request", LF_S("route", r->route_name), LF_I("status", status),
        LF_I("us", us), LF_B("completed", toe == MHD_REQUEST_TERMINATED_COMPLETED_OK),
        LF_S("request_id", r->request_id));
    request_free(r);
    atomic_fetch_sub(&app->in_flight, 1);
}

/* While draining, refuse every new connection (MHD closes it at once). */
static enum MHD_Result accept_policy(void *cls, const struct sockaddr *addr, socklen_t addrlen)
{
    (void)addr;
    (void)addrlen;
    const struct server *s = cls;
    return atomic_load_explicit(&s->draining, memory_order_relaxed) ? MHD_NO : MHD_YES;
}

static void on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
                          enum MHD_ConnectionNotificationCode toe)
{
    struct server *s = cls;
    if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
        struct tracked *t = calloc(1, sizeof *t);
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
        if (!t || !ci) {
            free(t);
            *socket_context = NULL;
            return;
        }
        t->fd = ci->connect_fd;
        /* The first request line must come within the deadline too. */
        atomic_init(&t->deadline_ms, util_mono_ms() + s->app->cfg->request_timeout * 1000);
        pthread_mutex_lock(&s->lock);
        t->next = s->head.next;
        t->prev = &s->head;
        s->head.next->prev = t;
        s->head.next = t;
        pthread_mutex_unlock(&s->lock);
        *socket_context = t;
    } else if (toe == MHD_CONNECTION_NOTIFY_CLOSED && *socket_context) {
        /* MHD calls this before it closes the socket, so the watchdog,
         * which shuts sockets down under the same lock, never touches a
         * descriptor that was reused. */
        struct tracked *t = *socket_context;
        pthread_mutex_lock(&s->lock);
        t->prev->next = t->next;
        t->next->prev = t->prev;
        pthread_mutex_unlock(&s->lock);
        free(t);
        *socket_context = NULL;
    }
}

/* Called when a request line has arrived: its headers and body now have
 * JWTD_REQUEST_TIMEOUT to follow. The return value is the initial con_cls
 * (NULL: request_new runs on the first access-handler call). */
static void *on_request_line(void *cls, const char *uri, struct MHD_Connection *conn)
{
    struct server *s = cls;
    (void)uri;
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    if (ci && ci->socket_context)
        atomic_store(&((struct tracked *)ci->socket_context)->deadline_ms,
                     util_mono_ms() + s->app->cfg->request_timeout * 1000);
    return NULL;
}

static void *watchdog(void *arg)
{
    struct server *s = arg;
    pthread_mutex_lock(&s->stop_lock);
    while (!s->stopping) {
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_nsec += 250 * 1000000L;
        if (until.tv_nsec >= 1000000000L) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&s->stop_cond, &s->stop_lock, &until);
        if (s->stopping)
            break;
        int64_t now = util_mono_ms();
        unsigned closed = 0;
        pthread_mutex_lock(&s->lock);
        for (struct tracked *t = s->head.next; t != &s->head; t = t->next) {
            int64_t d = atomic_load(&t->deadline_ms);
            if (d && d < now) {
                /* MHD sees the end of the stream and closes the connection
                 * on its own thread. */
                shutdown(t->fd, SHUT_RDWR);
                atomic_store(&t->deadline_ms, 0);
                closed++;
            }
        }
        pthread_mutex_unlock(&s->lock);
        if (closed)
            LOG(LOG_INFO, "request_timeout", LF_I("connections_closed", closed));
    }
    pthread_mutex_unlock(&s->stop_lock);
    return NULL;
}

/* The path and query of every request, %-decoded but for %00: the
 * library's own decoding turns it into a NUL, and the path ended there
 * ("/healthz%00/x" answered as /healthz). */
static size_t unescape(void *cls, struct MHD_Connection *conn, char *s)
{
    (void)cls;
    (void)conn;
    return parse_unescape_url(s);
}

__attribute__((format(printf, 2, 0))) static void mhd_logger(void *cls, const char *fmt,
                                                            va_list ap)
{
    char msg[256];
    vsnprintf(msg, sizeof msg, fmt, ap);
    size_t n = strlen(msg);
    while (n && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
        msg[--n] = '\0';
    /* libmicrohttpd's own diagnostics (malformed requests, socket errors)
     * are debugging aids: they never carry request bodies. */
    LOG(LOG_DEBUG, "http_library", LF_S("message", msg));
}

/* ------------------------------------------------------------- TLS --- */

/* A certificate chain and its key, as GnuTLS hands them to a handshake.
 * Replaced ones are kept until the server stops: a handshake that took a
 * pointer a moment before a reload must not see it freed. */
struct tls_creds {
    gnutls_pcert_st pcert[16];
    unsigned n;
    gnutls_privkey_t key;
    struct tls_creds *older;
};

/* The retrieve callback of GnuTLS has no context pointer: the credentials
 * in use live here (one server per process). */
static struct tls_creds *_Atomic g_tls;

static int tls_retrieve(gnutls_session_t session, const gnutls_datum_t *req_ca_dn, int nreqs,
                        const gnutls_pk_algorithm_t *pk_algos, int pk_algos_length,
                        gnutls_pcert_st **pcert, unsigned int *pcert_length,
                        gnutls_privkey_t *pkey)
{
    (void)session, (void)req_ca_dn, (void)nreqs, (void)pk_algos, (void)pk_algos_length;
    struct tls_creds *c = atomic_load(&g_tls);
    if (!c)
        return -1;
    *pcert = c->pcert;
    *pcert_length = c->n;
    *pkey = c->key;
    return 0;
}

static void tls_creds_free(struct tls_creds *c)
{
    while (c) {
        struct tls_creds *older = c->older;
        for (unsigned i = 0; i < c->n; i++)
            gnutls_pcert_deinit(&c->pcert[i]);
        gnutls_privkey_deinit(c->key);
        free(c);
        c = older;
    }
}

bool server_set_tls(struct server *s, const char *cert_pem, const char *key_pem, char *err,
                    size_t errlen)
{
    (void)s;
    struct tls_creds *c = calloc(1, sizeof *c);
    if (!c) {
        snprintf(err, errlen, "out of memory");
        return false;
    }
    gnutls_datum_t cd = {(unsigned char *)cert_pem, (unsigned int)strlen(cert_pem)};
    gnutls_datum_t kd = {(unsigned char *)key_pem, (unsigned int)strlen(key_pem)};
    c->n = sizeof c->pcert / sizeof c->pcert[0];
    int rc = gnutls_pcert_list_import_x509_raw(c->pcert, &c->n, &cd, GNUTLS_X509_FMT_PEM, 0);
    if (rc < 0 || c->n == 0) {
        c->n = 0;
        tls_creds_free(c);
        snprintf(err, errlen, "JWTD_TLS_CERT: not a PEM certificate chain (%s)",
                 gnutls_strerror(rc));
        return false;
    }
    if (gnutls_privkey_init(&c->key) < 0 ||
        (rc = gnutls_privkey_import_x509_raw(c->key, &kd, GNUTLS_X509_FMT_PEM, NULL, 0)) < 0) {
        tls_creds_free(c);
        snprintf(err, errlen, "JWTD_TLS_KEY: not a PEM private key (%s)", gnutls_strerror(rc));
        return false;
    }
    /* The key must be the certificate's: sign and verify a probe. */
    gnutls_pubkey_t pub = c->pcert[0].pubkey;
    gnutls_datum_t probe = {(unsigned char *)"jwtd-tls-key-check", 18}, sig = {NULL, 0};
    bool match = false;
    if (pub) {
        int pk = gnutls_pubkey_get_pk_algorithm(pub, NULL);
        gnutls_sign_algorithm_t alg = gnutls_pk_to_sign(
            (gnutls_pk_algorithm_t)pk,
            pk == GNUTLS_PK_EDDSA_ED25519 ? GNUTLS_DIG_SHA512 : GNUTLS_DIG_SHA256);
        match = alg != GNUTLS_SIGN_UNKNOWN &&
                gnutls_privkey_sign_data2(c->key, alg, 0, &probe, &sig) >= 0 &&
                gnutls_pubkey_verify_data2(pub, alg, 0, &probe, &sig) >= 0;
    }
    gnutls_free(sig.data);
    if (!match) {
        tls_creds_free(c);
        snprintf(err, errlen, "JWTD_TLS_KEY: the key does not belong to the certificate");
        return false;
    }
    c->older = atomic_exchange(&g_tls, c);
    return true;
}

/* cfg->listen as a socket address, in *sin or *sin6. */
static const struct sockaddr *listen_sockaddr(const struct config *cfg, struct sockaddr_in *sin,
                                              struct sockaddr_in6 *sin6, socklen_t *len)
{
    memset(sin, 0, sizeof *sin);
    memset(sin6, 0, sizeof *sin6);
    if (cfg->listen_ipv6) {
        sin6->sin6_family = AF_INET6;
        sin6->sin6_port = htons(cfg->listen_port);
        inet_pton(AF_INET6, cfg->listen_host, &sin6->sin6_addr);
        *len = sizeof *sin6;
        return (const struct sockaddr *)sin6;
    }
    sin->sin_family = AF_INET;
    sin->sin_port = htons(cfg->listen_port);
    inet_pton(AF_INET, cfg->listen_host, &sin->sin_addr);
    *len = sizeof *sin;
    return (const struct sockaddr *)sin;
}

bool server_probe_listen(const struct config *cfg, char *err, size_t errlen)
{
    struct sockaddr_in sin;
    struct sockaddr_in6 sin6;
    socklen_t len;
    const struct sockaddr *sa = listen_sockaddr(cfg, &sin, &sin6, &len);
    int fd = socket(sa->sa_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return true; /* no verdict: the listener will say */
    int one = 1;
    /* As the listener will: a port in TIME_WAIT is free, a listening one
     * is not. */
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (cfg->listen_ipv6)
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
    bool ok = bind(fd, sa, len) == 0;
    int e = errno;
    close(fd);
    if (!ok)
        snprintf(err, errlen, "JWTD_LISTEN: cannot listen on %s (%s)", cfg->listen, strerror(e));
    return ok;
}

struct server *server_start(struct app *app, char *err, size_t errlen)
{
    const struct config *cfg = app->cfg;
    struct server *s = calloc(1, sizeof *s);
    if (!s) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    s->app = app;
    s->head.next = s->head.prev = &s->head;
    pthread_mutex_init(&s->lock, NULL);
    pthread_mutex_init(&s->stop_lock, NULL);
    pthread_cond_init(&s->stop_cond, NULL);
    s->route_names = calloc(routes_count, sizeof *s->route_names);
    if (s->route_names)
        for (unsigned i = 0; i < routes_count; i++)
            s->route_names[i] = routes_table[i].name;
    s->metrics = s->route_names ? http_metrics_new(routes_count, s->route_names) : NULL;
    if (!s->metrics) {
        snprintf(err, errlen, "out of memory");
        server_stop(s);
        return NULL;
    }

    struct sockaddr_in sin;
    struct sockaddr_in6 sin6;
    socklen_t salen;
    const struct sockaddr *sa = listen_sockaddr(cfg, &sin, &sin6, &salen);
    unsigned int flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL |
                         MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG | MHD_USE_TURBO;
    if (cfg->listen_ipv6)
        flags |= MHD_USE_IPv6;
    if (cfg->tls_cert_pem)
        flags |= MHD_USE_TLS;

    struct MHD_OptionItem opts[20];
    size_t k = 0;
    /* The logger first: the library reads options in order, and what it
     * says about the later ones goes to jwtd's log, in its format. */
    opts[k++] = (struct MHD_OptionItem){MHD_OPTION_EXTERNAL_LOGGER, (intptr_t)mhd_logger, NULL};
    opts[k++] = (struct MHD_OptionItem){MHD_OPTION_SOCK_ADDR, 0, (void *)sa};
    /* One worker is the polling thread itself (a pool of 1 is refused
     * with a warning). */
    if (cfg->workers > 1)
        opts[k++] = (struct MHD_OptionItem){MHD_OPTION_THREAD_POOL_SIZE, (intptr_t)cfg->workers,
                                            NULL};
    opts[k++] = (struct MHD_OptionItem){MHD_OPTION_CONNECTION_LIMIT,
                                        (intptr_t)cfg->max_connections, NULL};
    if (cfg->max_connections_per_ip)
        opts[k++] = (struct MHD_OptionItem){MHD_OPTION_PER_IP_CONNECTION_LIMIT,
                                            (intptr_t)cfg->max_connections_per_ip, NULL};
    opts[k++] = (struct MHD_OptionItem){MHD_OPTION_CONNECTION_TIMEOUT,
                                        (intptr_t)cfg->connection_timeout, NULL};
    /* Headers up to 16 KiB in all must fit (an 8 KiB token in a cookie or
     * header), request line and blank line included, beside MHD's read and
     * write buffers and its header list, with a body arriving in the same
     * packets: 36 KiB does (tested at exactly 16,384 bytes, as one cookie -
     * which MHD copies once more to parse - and as 200 headers). 32 KiB did
     * not (one 16,000-byte cookie before a POST body got no answer). Not
     * much more: MHD zeroes the pool between requests, and at 48 KiB that
     * memset alone was 5% of the CPU time of /auth/verify. */
    opts[k++] = (struct MHD_OptionItem){MHD_OPTION_CONNECTION_MEMORY_LIMIT,
                                        (intptr_t)(36 * 1024), NULL};
    opts[k++] = (struct MHD_OptionItem){MHD_OPTION_LISTEN_BACKLOG_SIZE, 1024, NULL};
    opts[k++] = (struct MHD_OptionItem){MHD_OPTION_NOTIFY_COMPLETED, (intptr_t)on_completed, s};
    opts[k++] = (struct MHD_OptionItem){MHD_OPTION_NOTIFY_CONNECTION, (intptr_t)on_connection, s};
    opts[k++] = (struct MHD_OptionItem){MHD_OPTION_URI_LOG_CALLBACK, (intptr_t)on_request_line, s};
    opts[k++] = (struct MHD_OptionItem){MHD_OPTION_UNESCAPE_CALLBACK, (intptr_t)unescape, NULL};
    /* Host is checked here (smuggling_risk), with a proper JSON 400: the
     * library's own strict mode answers with a malformed response. */
    opts[k++] = (struct MHD_OptionItem){MHD_OPTION_STRICT_FOR_CLIENT, 0, NULL};
    if (cfg->tls_cert_pem) {
        /* The certificate is handed out per handshake, so that SIGHUP can
         * replace it without restarting the daemon. */
        if (!server_set_tls(s, cfg->tls_cert_pem, cfg->tls_key_pem, err, errlen)) {
            server_stop(s);
            return NULL;
        }
        opts[k++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_CERT_CALLBACK, 0,
                                            (void *)tls_retrieve};
    }
    opts[k++] = (struct MHD_OptionItem){MHD_OPTION_END, 0, NULL};

    s->daemon = MHD_start_daemon(flags, cfg->listen_port, accept_policy, s, on_request, s,
                                 MHD_OPTION_ARRAY, opts, MHD_OPTION_END);
    if (!s->daemon) {
        snprintf(err, errlen, "JWTD_LISTEN: cannot listen on %s (%s)", cfg->listen,
                 errno ? strerror(errno) : "address in use or TLS files invalid");
        server_stop(s);
        return NULL;
    }
    if (pthread_create(&s->watchdog, NULL, watchdog, s) != 0) {
        snprintf(err, errlen, "cannot start the request watchdog");
        server_stop(s);
        return NULL;
    }
    s->watchdog_running = true;
    return s;
}

void server_quiesce(struct server *s)
{
    if (s)
        atomic_store(&s->draining, true);
}

void server_stop(struct server *s)
{
    if (!s)
        return;
    if (s->watchdog_running) {
        pthread_mutex_lock(&s->stop_lock);
        s->stopping = true;
        pthread_cond_signal(&s->stop_cond);
        pthread_mutex_unlock(&s->stop_lock);
        pthread_join(s->watchdog, NULL);
    }
    if (s->daemon)
        MHD_stop_daemon(s->daemon);
    pthread_cond_destroy(&s->stop_cond);
    pthread_mutex_destroy(&s->stop_lock);
    pthread_mutex_destroy(&s->lock);
    http_metrics_free(s->metrics);
    free(s->route_names);
    free(s);
    tls_creds_free(atomic_exchange(&g_tls, NULL));
}
