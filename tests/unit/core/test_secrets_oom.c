/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Secrets on the failure paths of the services: a copy of a password must
 * be wiped before it is freed even when the operation gives up half-way,
 * as on its ordinary paths. An allocation is made to fail at one chosen
 * point (malloc and free are wrapped at link time, -Wl,--wrap, for the
 * objects of jwtd_core and this file), and every buffer freed with free()
 * is checked for the secret it may still hold.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "../unit_util.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"
#include "core/accounts.h"
#include "core/app.h"
#include "core/service.h"
#include "store/store.h"

extern char **environ;

/* ---- the wrapped allocator ---- */

void *__real_malloc(size_t n);
void __real_free(void *p);
void *__wrap_malloc(size_t n);
void __wrap_free(void *p);

static size_t g_fail_size;      /* malloc of this size fails (once); 0: none */
static size_t g_watch_size;     /* mallocs of this size are watched... */
static const char *g_watch;     /* ...for this secret when they are freed */
static void *g_watched[64];
static size_t g_n_watched;
static int g_unwiped;           /* watched buffers freed with the secret in them */

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
    for (size_t i = 0; i < g_n_watched; i++)
        if (g_watched[i] == p) {
            if (holds(p, g_watch_size, g_watch))
                g_unwiped++;
            g_watched[i] = g_watched[--g_n_watched];
            break;
        }
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

static void clean_env(void)
{
    char *names[256];
    size_t n = 0;
    for (char **e = environ; e && *e && n < 256; e++) {
        if (strncmp(*e, "JWTD_", 5) != 0)
            continue;
        const char *eq = strchr(*e, '=');
        names[n] = strndup(*e, eq ? (size_t)(eq - *e) : strlen(*e));
        assert_non_null(names[n]);
        n++;
    }
    for (size_t i = 0; i < n; i++) {
        unsetenv(names[i]);
        free(names[i]);
    }
}

static void set(struct config *cfg, const char *name, const char *value)
{
    char err[256] = "";
    if (!config_set(cfg, name, value, err, sizeof err))
        fail_msg("config_set %s=%s: %s", name, value, err);
}

static int fx_setup(void **state)
{
    clean_env();
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

static int fx_teardown(void **state)
{
    struct fx *f = *state;
    g_fail_size = 0;
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_change_password_oom_wipes_current, fx_setup,
                                        fx_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
