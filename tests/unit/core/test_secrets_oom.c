/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Secrets on the failure paths of the services: a copy of a password (or a
 * message's secret) must be wiped before it is freed even when the
 * operation gives up half-way, as on its ordinary paths. An allocation or
 * the random generator is made to fail at one chosen point (malloc, free
 * and RAND_bytes are wrapped at link time, -Wl,--wrap, for the objects of
 * jwtd_core and this file), and every buffer freed with free() is checked
 * for the secret it may still hold. OPENSSL_cleanse is wrapped too, to see
 * that the copies a parser makes on its stack are wiped, and realloc, to
 * see what a growing buffer leaves behind.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "../unit_util.h"

#include <malloc.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "base/util.h"
#include "core/accounts.h"
#include "core/app.h"
#include "core/config.h"
#include "core/mail.h"
#include "core/recovery.h"
#include "core/service.h"
#include "core/smtp.h"
#include "core/tokens.h"
#include "lib/jwtd_internal.h"
#include "store/store.h"


/* ---- the wrapped allocator ---- */

void *__real_malloc(size_t n);
void __real_free(void *p);
int __real_RAND_bytes(unsigned char *buf, int num);
void *__wrap_malloc(size_t n);
void __wrap_free(void *p);
int __wrap_RAND_bytes(unsigned char *buf, int num);
void __real_OPENSSL_cleanse(void *p, size_t n);
void __wrap_OPENSSL_cleanse(void *p, size_t n);
void *__real_realloc(void *p, size_t n);
void *__wrap_realloc(void *p, size_t n);

static size_t g_fail_size;      /* malloc of this size fails (once); 0: none */
static int g_rand_fail_in;      /* the Nth RAND_bytes call from now fails; 0: none */
static size_t g_watch_size;     /* mallocs of this size are watched... */
static const char *g_watch;     /* ...for this secret when they are freed */
static void *g_watched[64];
static size_t g_n_watched;
static int g_unwiped;           /* watched buffers freed with the secret in them */
static const char *g_free_scan; /* every block freed is checked for this... */
static int g_free_scan_hits;    /* ...and counted here when it holds it */
static const char *g_free_scan_code; /* ...or this, followed by a digit */

/* Buffers jansson allocated (json_set_alloc_funcs): freed by jansson
 * through json_free_wiped (as `jwtd serve` sets it up), or by jwtd's code
 * with free(), when they are checked for a message's secret. */
struct jbuf {
    void *p;
    size_t n;
};
static struct jbuf g_json[4096];
static size_t g_n_json;
static int g_json_secret_freed; /* dumps holding a message secret freed unwiped */

void *__wrap_malloc(size_t n)
{
    if (g_fail_size && n == g_fail_size) {
        g_fail_size = 0;
        return NULL;
    }
    void *p = __real_malloc(n);
    if (p && g_watch && n == g_watch_size && g_n_watched < 64)
        g_watched[g_n_watched++] = p;
    return p;
}

static bool holds(const void *p, size_t n, const char *s)
{
    return memmem(p, n, s, strlen(s)) != NULL;
}

void __wrap_free(void *p)
{
    if (!p) {
        __real_free(p);
        return;
    }
    if (g_free_scan && holds(p, malloc_usable_size(p), g_free_scan))
        g_free_scan_hits++;
    if (g_free_scan_code) {
        size_t n = malloc_usable_size(p), k = strlen(g_free_scan_code);
        const char *b = p, *q = b;
        while ((q = memmem(q, n - (size_t)(q - b), g_free_scan_code, k)) &&
               (size_t)(q - b) + k < n) {
            if (q[k] >= '0' && q[k] <= '9') {
                g_free_scan_hits++;
                break;
            }
            q += k;
        }
    }
    for (size_t i = 0; i < g_n_watched; i++)
        if (g_watched[i] == p) {
            if (holds(p, g_watch_size, g_watch))
                g_unwiped++;
            g_watched[i] = g_watched[--g_n_watched];
            break;
        }
    for (size_t i = 0; i < g_n_json; i++)
        if (g_json[i].p == p) {
            if (holds(p, g_json[i].n, "\"" MAIL_SECRET_PARAM "\":\""))
                g_json_secret_freed++;
            g_json[i] = g_json[--g_n_json];
            break;
        }
    __real_free(p);
}

int __wrap_RAND_bytes(unsigned char *buf, int num)
{
    if (g_rand_fail_in && --g_rand_fail_in == 0)
        return 0;
    return __real_RAND_bytes(buf, num);
}

/* While g_realloc_watch is set, realloc always moves (as it may), and the
 * block it leaves is checked for that secret. */
static const char *g_realloc_watch;
static int g_realloc_left; /* blocks left behind holding it */

void *__wrap_realloc(void *p, size_t n)
{
    if (!g_realloc_watch)
        return __real_realloc(p, n);
    size_t old = p ? malloc_usable_size(p) : 0;
    void *q = __real_malloc(n ? n : 1);
    if (!q)
        return NULL;
    if (p) {
        memcpy(q, p, old < n ? old : n);
        if (holds(p, old, g_realloc_watch))
            g_realloc_left++;
        __real_free(p);
    }
    return q;
}

/* Buffers wiped with OPENSSL_cleanse are checked for this secret. */
static const uint8_t *g_cleanse_watch;
static size_t g_cleanse_watch_len;
static int g_cleansed; /* wipes that covered it */

void __wrap_OPENSSL_cleanse(void *p, size_t n)
{
    if (g_cleanse_watch && p && n >= g_cleanse_watch_len &&
        memmem(p, n, g_cleanse_watch, g_cleanse_watch_len))
        g_cleansed++;
    __real_OPENSSL_cleanse(p, n);
}

static void *json_malloc_tracked(size_t n)
{
    void *p = __real_malloc(n);
    if (p && g_n_json < sizeof g_json / sizeof g_json[0])
        g_json[g_n_json++] = (struct jbuf){p, n};
    return p;
}

static void json_free_wiped(void *p)
{
    if (!p)
        return;
    for (size_t i = 0; i < g_n_json; i++)
        if (g_json[i].p == p) {
            g_json[i] = g_json[--g_n_json];
            break;
        }
    explicit_bzero(p, malloc_usable_size(p));
    __real_free(p);
}

/* ---- fixture: an operator's app on a fresh SQLite file ---- */

struct fx {
    char dir[256];
    struct config cfg;
    struct app app;
    struct svc_ctx client;
    struct svc_ctx oper;
};

static void set(struct config *cfg, const char *name, const char *value)
{
    char err[256] = "";
    if (!config_set(cfg, name, value, err, sizeof err))
        fail_msg("config_set %s=%s: %s", name, value, err);
}

/* The app, with mail to a relay that refuses connections when `mail`
 * (templates from f->dir, where a test writes them). */
static int fx_open(void **state, bool mail)
{
    unit_clean_env();
    struct fx *f = calloc(1, sizeof *f);
    assert_non_null(f);
    unit_tmpdir(f->dir, sizeof f->dir, "oom");
    char url[400];
    snprintf(url, sizeof url, "sqlite:%s/jwtd.db", f->dir);
    config_defaults(&f->cfg);
    set(&f->cfg, "JWTD_DATABASE", url);
    set(&f->cfg, "JWTD_ARGON2_MEMORY", "7168");
    set(&f->cfg, "JWTD_ARGON2_ITERATIONS", "5");
    set(&f->cfg, "JWTD_SQLITE_SYNC", "normal");
    if (mail) {
        set(&f->cfg, "JWTD_SMTP_URL", "smtp://127.0.0.1:1");
        set(&f->cfg, "JWTD_SMTP_TLS", "off");
        set(&f->cfg, "JWTD_SMTP_TIMEOUT", "2s");
        set(&f->cfg, "JWTD_MAIL_FROM", "jwtd@example.com");
        set(&f->cfg, "JWTD_MAIL_TEMPLATES", f->dir);
    }
    char err[512] = "";
    if (!config_load(&f->cfg, 0, NULL, err, sizeof err))
        fail_msg("config_load: %s", err);
    if (!app_open(&f->app, &f->cfg, APP_COMMAND, err, sizeof err))
        fail_msg("app_open: %s", err);
    f->client.actor = SVC_ACTOR_CLIENT;
    snprintf(f->client.client_addr, sizeof f->client.client_addr, "192.0.2.10");
    snprintf(f->client.request_id, sizeof f->client.request_id, "test-request");
    svc_ctx_operator(&f->oper);
    *state = f;
    return 0;
}

static int fx_setup(void **state)
{
    return fx_open(state, false);
}

static int fx_setup_mail(void **state)
{
    return fx_open(state, true);
}

static int fx_teardown(void **state)
{
    struct fx *f = *state;
    g_fail_size = 0;
    g_rand_fail_in = 0;
    g_free_scan = NULL;
    g_free_scan_code = NULL;
    g_watch = NULL;
    g_n_watched = 0;
    app_close(&f->app);
    config_free(&f->cfg);
    unit_rm_dir(f->dir);
    free(f);
    return 0;
}

/* A new account; its id into id. */
static void make_user(struct fx *f, const char *name, const char *pw, char id[UUID_STR_LEN])
{
    struct svc_op *op = accounts_signup(&f->app, &f->oper, name, strlen(name), pw, strlen(pw),
                                        NULL, 0);
    assert_non_null(op);
    svc_op_run(op);
    if (op->res.status != SVC_OK)
        fail_msg("signup %s: %s", name, svc_status_name(op->res.status));
    memcpy(id, op->user.id, UUID_STR_LEN);
    svc_op_free(op);
}

/* ---- tests ---- */

/* A password change that runs out of memory copying the new password: the
 * copy of the current one, made just before, is wiped when the operation
 * is freed. */
static void test_change_password_oom_wipes_current(void **state)
{
    struct fx *f = *state;
    static const char cur[] = "Tr0ub4dor&3-Staple-Orbit-Lamp";            /* 29 bytes */
    static const char np[] = "Quartz-Lantern-Meadow-Falcon-Ribbon-7731"; /* 40 bytes */
    char id[UUID_STR_LEN];
    make_user(f, "alice", cur, id);
    struct identity who;
    memset(&who, 0, sizeof who);
    memcpy(who.sub, id, sizeof who.sub);
    snprintf(who.sid, sizeof who.sid, "00000000-0000-7000-8000-000000000001");

    g_watch = cur;
    g_watch_size = sizeof cur; /* the copy: strlen + 1 */
    g_unwiped = 0;
    g_fail_size = sizeof np;   /* the new password's copy */
    struct svc_op *op = accounts_change_password(&f->app, &f->client, &who, cur, strlen(cur), np,
                                                 strlen(np));
    g_fail_size = 0;
    assert_non_null(op);
    assert_int_equal(op->res.status, SVC_ERROR);
    assert_null(op->slow);
    svc_op_free(op);
    g_watch = NULL;
    g_n_watched = 0;
    assert_int_equal(g_unwiped, 0);
}

/* A verification mail whose id cannot be made (the random generator
 * fails): its parameters, which hold the message's secret, are wiped
 * before they are freed, as store_mail_clear does on the other paths. */
static void test_verification_mail_failure_wipes_secret(void **state)
{
    struct fx *f = *state;
    char id[UUID_STR_LEN];
    make_user(f, "bob", "Tr0ub4dor&3-Staple-Orbit-Lamp", id);
    struct store_user u = {0};
    assert_int_equal(store_user_by_id(f->app.store, id, &u), STORE_OK);
    store_user_clear(&u);

    json_set_alloc_funcs(json_malloc_tracked, json_free_wiped);
    g_json_secret_freed = 0;
    /* mail_secret_add's random bytes, then the message id's (util_uuid7):
     * the second call fails. */
    g_rand_fail_in = 2;
    struct svc_result r = recovery_send_verification(&f->app, &f->client, &u, "bob@example.com",
                                                     NULL);
    g_rand_fail_in = 0;
    json_set_alloc_funcs(malloc, free);
    g_n_json = 0;
    assert_int_not_equal(r.status, SVC_OK);
    assert_int_equal(g_json_secret_freed, 0);
}

/* A refresh token is a bearer credential: refresh_token_parse wipes its
 * decoded copy and the MAC it computed (the valid token's secret part,
 * also when the token given was a forgery), as refresh_token_make does. */
static void test_refresh_token_parse_wipes_token(void **state)
{
    (void)state;
    uint8_t key[REFRESH_KEY_LEN];
    memset(key, 0x5a, sizeof key);
    char tok[REFRESH_TOKEN_LEN + 1], sid[UUID_STR_LEN];
    uint32_t gen = 0;
    assert_true(refresh_token_make(key, "017f22e2-79b0-7cc3-98c4-dc0c0c07398e", 9, tok));
    uint8_t raw[REFRESH_TOKEN_RAW + 2];
    size_t n = 0;
    assert_int_equal(jwtd__b64url_decode(tok, REFRESH_TOKEN_LEN, raw, sizeof raw, &n), JWTD_OK);
    assert_int_equal(n, REFRESH_TOKEN_RAW);
    uint8_t mac[32];
    memcpy(mac, raw + REFRESH_TOKEN_RAW - 32, sizeof mac);

    g_cleanse_watch = mac;
    g_cleanse_watch_len = sizeof mac;
    g_cleansed = 0;
    assert_true(refresh_token_parse(key, tok, REFRESH_TOKEN_LEN, sid, &gen));
    assert_int_equal(gen, 9);
    int after_valid = g_cleansed;

    /* A forgery of the same session and generation: its MAC is wrong, the
     * one computed to refuse it is the real one. */
    char forged[REFRESH_TOKEN_LEN + 1];
    memcpy(forged, tok, sizeof forged);
    forged[40] = forged[40] == 'A' ? 'B' : 'A';
    g_cleansed = 0;
    assert_false(refresh_token_parse(key, forged, REFRESH_TOKEN_LEN, sid, &gen));
    int after_forged = g_cleansed;
    g_cleanse_watch = NULL;
    assert_true(after_valid >= 1);
    assert_true(after_forged >= 1);
}

/* A private key file: a marker line, then enough lines to make it larger
 * than one chunk of read_file (as a key with its chain, or an RSA-8192
 * key, is). */
static void write_key(const char *path, const char *marker)
{
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    fputs(marker, fp);
    for (int i = 0; i < 200; i++)
        fputs("\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", fp);
    fputs("\n-----END PRIVATE KEY-----\n", fp);
    assert_int_equal(fclose(fp), 0);
}

/* JWTD_TLS_KEY: the private key is read in chunks into a growing buffer,
 * and a later source (the environment, a flag) replaces the file's; no
 * copy of a key is left in freed memory either way. */
static void test_tls_key_read_leaves_no_copy(void **state)
{
    (void)state;
    char dir[256], path[300], path2[300];
    unit_tmpdir(dir, sizeof dir, "key");
    snprintf(path, sizeof path, "%s/key.pem", dir);
    snprintf(path2, sizeof path2, "%s/key2.pem", dir);
    static const char marker[] = "-----BEGIN PRIVATE KEY-----\nMIIJQgIBADANBgkqhkiG9w0BAQEF";
    static const char marker2[] = "-----BEGIN PRIVATE KEY-----\nMIIJQwIBADANBgkqhkiG9w0BAQEF";
    write_key(path, marker);
    write_key(path2, marker2);

    struct config cfg;
    config_defaults(&cfg);
    char err[512] = "";
    g_realloc_watch = marker;
    g_realloc_left = 0;
    bool ok = config_set(&cfg, "JWTD_TLS_KEY", path, err, sizeof err);
    g_realloc_watch = NULL;
    if (!ok)
        fail_msg("config_set JWTD_TLS_KEY: %s", err);
    assert_non_null(cfg.tls_key_pem);
    assert_true(strncmp(cfg.tls_key_pem, marker, strlen(marker)) == 0);

    /* The environment's key over the file's. */
    g_free_scan = marker;
    g_free_scan_hits = 0;
    ok = config_set(&cfg, "JWTD_TLS_KEY", path2, err, sizeof err);
    g_free_scan = NULL;
    if (!ok)
        fail_msg("config_set JWTD_TLS_KEY: %s", err);
    assert_true(strncmp(cfg.tls_key_pem, marker2, strlen(marker2)) == 0);
    config_free(&cfg);
    unit_rm_dir(dir);
    assert_int_equal(g_realloc_left, 0);
    assert_int_equal(g_free_scan_hits, 0);
}

/* A subject template may show the code ("{{code}} is your code"): the
 * rendered subject is wiped before it is freed, as the text and HTML
 * parts are, when the worker has tried to send it. */
static void test_mail_subject_with_code_wiped(void **state)
{
    struct fx *f = *state;
    char path[400];
    snprintf(path, sizeof path, "%s/verify_email.subject", f->dir);
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    fputs("Jwtd-Code-{{code}} confirms your address", fp);
    assert_int_equal(fclose(fp), 0);
    assert_true(smtp_global_init());
    char id[UUID_STR_LEN];
    make_user(f, "carol", "Tr0ub4dor&3-Staple-Orbit-Lamp", id);
    struct store_user u = {0};
    assert_int_equal(store_user_by_id(f->app.store, id, &u), STORE_OK);
    store_user_clear(&u);
    struct svc_result r = recovery_send_verification(&f->app, &f->client, &u, "carol@example.com",
                                                     NULL);
    assert_int_equal(r.status, SVC_OK);

    g_free_scan_code = "Jwtd-Code-";
    g_free_scan_hits = 0;
    int handled = mail_worker_pass(&f->app); /* the relay refuses: a retry later */
    g_free_scan_code = NULL;
    smtp_global_cleanup();
    assert_int_equal(handled, 1);
    assert_int_equal(g_free_scan_hits, 0);
}

/* The signature is what makes a token a credential: the copy that
 * jwtd__sign_compact computes on its stack is wiped, as verify_signature
 * wipes the HMAC tag it computes. HS256 is deterministic, so a first
 * signature tells what the second one's copy holds. */
static void test_sign_wipes_signature(void **state)
{
    (void)state;
    uint8_t secret[32];
    memset(secret, 0x42, sizeof secret);
    jwtd_key *k = NULL;
    assert_int_equal(jwtd_key_new_hmac("k1", secret, sizeof secret, &k), JWTD_OK);
    static const char payload[] = "{\"sub\":\"x\",\"exp\":4102444800}";
    char *tok = NULL;
    assert_int_equal(jwtd__sign_compact(k, payload, strlen(payload), &tok), JWTD_OK);
    const char *dot = strrchr(tok, '.');
    assert_non_null(dot);
    uint8_t sig[64];
    size_t n = 0;
    assert_int_equal(jwtd__b64url_decode(dot + 1, strlen(dot + 1), sig, sizeof sig, &n), JWTD_OK);
    assert_int_equal(n, 32);
    free(tok);

    g_cleanse_watch = sig;
    g_cleanse_watch_len = n;
    g_cleansed = 0;
    tok = NULL;
    jwtd_err e = jwtd__sign_compact(k, payload, strlen(payload), &tok);
    g_cleanse_watch = NULL;
    assert_int_equal(e, JWTD_OK);
    free(tok);
    jwtd_key_free(k);
    assert_true(g_cleansed >= 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_change_password_oom_wipes_current, fx_setup,
                                        fx_teardown),
        cmocka_unit_test_setup_teardown(test_verification_mail_failure_wipes_secret, fx_setup,
                                        fx_teardown),
        cmocka_unit_test(test_refresh_token_parse_wipes_token),
        cmocka_unit_test(test_tls_key_read_leaves_no_copy),
        cmocka_unit_test(test_sign_wipes_signature),
        cmocka_unit_test_setup_teardown(test_mail_subject_with_code_wiped, fx_setup_mail,
                                        fx_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
