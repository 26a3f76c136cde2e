/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A tiny resource server that checks jwtd access tokens offline, with
 * libjwtd and libmicrohttpd: the pattern a C service follows to trust jwtd
 * without calling it on every request.
 *
 *   curl -s http://127.0.0.1:8080/.well-known/jwks.json > jwks.json
 *   ./resource_server --jwks jwks.json --issuer http://127.0.0.1:8080 \
 *                     --audience jwtd --port 9090
 *   curl -H "Authorization: Bearer $TOKEN" http://127.0.0.1:9090/hello
 *
 * GET /hello answers 200 {"hello": "<username>", "sub": "<user id>"} for a
 * valid token and 401 otherwise. The JWKS file is re-read when it changes
 * (checked at most once a second), so refreshing it after a key rotation
 * needs no restart. Offline verification cannot see revocations: tokens
 * stay valid until they expire (15 minutes by default), which is why they
 * are short-lived.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>

#include <microhttpd.h>

#include <jwtd.h>

struct state {
    const char *jwks_path;
    jwtd_verifier *verifier;
    pthread_mutex_t lock;   /* guards keys and mtime */
    jwtd_keyset *keys;
    struct timespec mtime;
    time_t checked;
};

/* Load the JWKS file into a new key set, or NULL (reason on stderr). */
static jwtd_keyset *load_jwks(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "resource_server: cannot open %s: %s\n", path, strerror(errno));
        return NULL;
    }
    char *buf = malloc(JWTD_MAX_JWKS_LEN);
    size_t n = buf ? fread(buf, 1, JWTD_MAX_JWKS_LEN, f) : 0;
    fclose(f);
    jwtd_keyset *ks = NULL;
    /* Skip keys this library cannot use (other key types in a shared JWKS). */
    jwtd_err e = buf ? jwtd_keyset_from_jwks(buf, n, JWTD_JWKS_SKIP_UNUSABLE, &ks) : JWTD_ERR_NOMEM;
    free(buf);
    if (e != JWTD_OK) {
        fprintf(stderr, "resource_server: %s: %s\n", path, jwtd_strerror(e));
        return NULL;
    }
    return ks;
}

/* Re-read the file when its modification time changed. */
static void maybe_reload(struct state *st)
{
    time_t now = time(NULL);
    pthread_mutex_lock(&st->lock);
    if (now == st->checked) {
        pthread_mutex_unlock(&st->lock);
        return;
    }
    st->checked = now;
    struct stat sb;
    if (stat(st->jwks_path, &sb) == 0 && (sb.st_mtim.tv_sec != st->mtime.tv_sec ||
                                          sb.st_mtim.tv_nsec != st->mtime.tv_nsec)) {
        jwtd_keyset *ks = load_jwks(st->jwks_path);
        if (ks) {
            jwtd_keyset_free(st->keys);
            st->keys = ks;
            st->mtime = sb.st_mtim;
        }
    }
    pthread_mutex_unlock(&st->lock);
}

static enum MHD_Result reply(struct MHD_Connection *c, unsigned status, const char *body,
                             const char *www_auth)
{
    struct MHD_Response *r =
        MHD_create_response_from_buffer(strlen(body), (void *)body, MHD_RESPMEM_MUST_COPY);
    MHD_add_response_header(r, "Content-Type", "application/json");
    if (www_auth)
        MHD_add_response_header(r, "WWW-Authenticate", www_auth);
    enum MHD_Result ret = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *c, const char *url,
                              const char *method, const char *version, const char *upload,
                              size_t *upload_size, void **con_cls)
{
    struct state *st = cls;
    if (!*con_cls) { /* first call: headers only (keeps keep-alive working) */
        *con_cls = (void *)1;
        return MHD_YES;
    }
    if (strcmp(url, "/hello") != 0)
        return reply(c, 404, "{\"error\":\"not_found\"}", NULL);
    if (strcmp(method, "GET") != 0)
        return reply(c, 405, "{\"error\":\"method_not_allowed\"}", NULL);

    const char *auth = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization");
    if (!auth || strncasecmp(auth, "Bearer ", 7) != 0)
        return reply(c, 401, "{\"error\":\"invalid_token\"}", "Bearer realm=\"example\"");
    const char *token = auth + 7;

    maybe_reload(st);
    /* Holding the lock while verifying keeps the example short. A busy
     * service would count its own references to each key set (libjwtd has
     * none): a verify holds one, a reload swaps the pointer under the lock,
     * and the last holder frees the old set with jwtd_keyset_free. A key
     * set is only read by jwtd_verify, so any number of threads may verify
     * with one at once. */
    pthread_mutex_lock(&st->lock);
    jwtd_claims *claims = NULL;
    jwtd_err e = st->keys ? jwtd_verify(st->verifier, st->keys, token, strlen(token),
                                        (int64_t)time(NULL), &claims)
                          : JWTD_ERR_KID;
    pthread_mutex_unlock(&st->lock);
    if (e != JWTD_OK) {
        char hdr[256];
        snprintf(hdr, sizeof hdr, "Bearer realm=\"example\", error=\"invalid_token\", "
                                  "error_description=\"%s\"", jwtd_strerror(e));
        return reply(c, 401, "{\"error\":\"invalid_token\"}", hdr);
    }
    /* Usernames are letters, digits and . _ - @ + : safe inside JSON. */
    char body[512];
    snprintf(body, sizeof body, "{\"hello\":\"%s\",\"sub\":\"%s\"}",
             jwtd_claims_username(claims) ? jwtd_claims_username(claims) : "",
             jwtd_claims_sub(claims));
    jwtd_claims_free(claims);
    return reply(c, 200, body, NULL);
}

static void usage(void)
{
    fprintf(stderr, "usage: resource_server --jwks FILE --issuer URL --audience AUD --port N\n");
}

int main(int argc, char **argv)
{
    const char *jwks = NULL, *issuer = NULL, *audience = NULL;
    int port = 0;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--jwks") == 0)
            jwks = argv[i + 1];
        else if (strcmp(argv[i], "--issuer") == 0)
            issuer = argv[i + 1];
        else if (strcmp(argv[i], "--audience") == 0)
            audience = argv[i + 1];
        else if (strcmp(argv[i], "--port") == 0)
            port = atoi(argv[i + 1]);
    }
    if (!jwks || !issuer || !audience || port <= 0 || port > 65535) {
        usage();
        return 2;
    }
    struct state st = {.jwks_path = jwks};
    pthread_mutex_init(&st.lock, NULL);
    if (jwtd_verifier_new(&st.verifier) != JWTD_OK ||
        jwtd_verifier_set_issuer(st.verifier, issuer) != JWTD_OK ||
        jwtd_verifier_set_audience(st.verifier, audience) != JWTD_OK) {
        fprintf(stderr, "resource_server: cannot configure the verifier\n");
        return 1;
    }
    maybe_reload(&st);
    if (!st.keys) {
        fprintf(stderr, "resource_server: no usable keys in %s\n", jwks);
        return 1;
    }
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    /* Loopback only: an example should not listen on every interface. */
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                              .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    struct MHD_Daemon *d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL,
                                            (uint16_t)port, NULL, NULL, handle, &st,
                                            MHD_OPTION_SOCK_ADDR, &sin,
                                            MHD_OPTION_THREAD_POOL_SIZE, 2, MHD_OPTION_END);
    if (!d) {
        fprintf(stderr, "resource_server: cannot listen on port %d\n", port);
        return 1;
    }
    fprintf(stderr, "resource_server: listening on port %d\n", port);
    int sig;
    sigwait(&sigs, &sig);
    MHD_stop_daemon(d);
    jwtd_keyset_free(st.keys);
    jwtd_verifier_free(st.verifier);
    pthread_mutex_destroy(&st.lock);
    return 0;
}
