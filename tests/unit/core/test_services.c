/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The account and session services (src/core/accounts.c, sessions.c,
 * ratelimit.c) without HTTP: each test opens a real app (APP_SERVE, SQLite
 * in a fresh temporary directory, cheap argon2id parameters) and talks to
 * the services as the front ends do, through svc_ctx and svc_op_run().
 * Covers the sign-up rules (username rules, password policy, case-
 * insensitive uniqueness, JWTD_SIGNUP=closed for clients but not
 * operators), login (tokens that the access check and the refresh parser
 * accept, one answer for wrong passwords and unknown names, the back-off
 * and its end, the refund of an attempt whose password was never checked,
 * disabled accounts, the re-hash of imported bcrypt and argon2id hashes),
 * the refresh rotation (rotation, the reuse interval, theft detection,
 * expiry, revocation by disabling and by an operator's logout, with the
 * revoked set updated at once), the pure refresh decision as a table, and
 * the re-confirmed changes (password change, operator password set,
 * self-deletion). Time is moved with the test clock (util_test_clock), so
 * nothing sleeps.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <crypt.h>
#include <dirent.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <argon2.h>
#include <jansson.h>

#include "base/log.h"
#include "base/util.h"
#include "core/accounts.h"
#include "core/app.h"
#include "core/ratelimit.h"
#include "core/service.h"
#include "core/sessions.h"
#include "core/tokens.h"
#include "store/store.h"

extern char **environ;

#define DAY_MS INT64_C(86400000)

/* The argon2id prefix of a hash made with this test's settings (PHC string
 * format, argon2 reference implementation: version 0x13 = 19). */
static const char OUR_ARGON2[] = "$argon2id$v=19$m=7168,t=5,p=1$";

/* ---- the test clock: an offset (ms) added to util_now*() ---- */

static int g_clock_fd = -1;

static void clock_set(int64_t offset_ms)
{
    uint8_t le[8];
    for (int i = 0; i < 8; i++)
        le[i] = (uint8_t)((uint64_t)offset_ms >> (8 * i));
    assert_int_equal(pwrite(g_clock_fd, le, sizeof le, 0), (ssize_t)sizeof le);
}

static void clock_start(void)
{
    const char *tmp = getenv("TMPDIR");
    char path[300];
    snprintf(path, sizeof path, "%s/jwtd-ut-clock-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    g_clock_fd = mkstemp(path);
    if (g_clock_fd < 0) {
        fprintf(stderr, "cannot create the test clock file\n");
        exit(1);
    }
    static const uint8_t zero[8] = {0};
    if (pwrite(g_clock_fd, zero, sizeof zero, 0) != (ssize_t)sizeof zero ||
        !util_test_clock(path)) {
        fprintf(stderr, "cannot map the test clock\n");
        exit(1);
    }
    unlink(path); /* the mapping and the descriptor keep it alive */
}

/* ---- fixture ---- */

struct fx {
    char dir[256];
    struct config cfg;
    struct app app;
    struct svc_ctx client; /* SVC_ACTOR_CLIENT from 192.0.2.10 */
    struct svc_ctx oper;   /* svc_ctx_operator() */
};

/* Unset every JWTD_* variable (names collected first: unsetenv edits
 * environ), so that config_load reads only what the test set. */
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
    clock_set(0);
    clean_env();
    struct fx *f = calloc(1, sizeof *f);
    assert_non_null(f);
    const char *tmp = getenv("TMPDIR");
    snprintf(f->dir, sizeof f->dir, "%s/jwtd-ut-svc-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    assert_non_null(mkdtemp(f->dir));
    char url[400];
    snprintf(url, sizeof url, "sqlite:%s/jwtd.db", f->dir);

    config_defaults(&f->cfg);
    set(&f->cfg, "JWTD_DATABASE", url);
    set(&f->cfg, "JWTD_ARGON2_MEMORY", "7168");
    set(&f->cfg, "JWTD_ARGON2_ITERATIONS", "5");
    set(&f->cfg, "JWTD_HASH_WORKERS", "1");
    set(&f->cfg, "JWTD_IO_WORKERS", "1");
    set(&f->cfg, "JWTD_LOGIN_MAX_FAILURES", "3");
    set(&f->cfg, "JWTD_LOGIN_BACKOFF", "60s");
    set(&f->cfg, "JWTD_REFRESH_REUSE_INTERVAL", "2s");
    set(&f->cfg, "JWTD_SQLITE_SYNC", "normal"); /* no fsync per write: a throwaway file */
    char err[512] = "";
    if (!config_load(&f->cfg, 0, NULL, err, sizeof err))
        fail_msg("config_load: %s", err);
    if (!app_open(&f->app, &f->cfg, APP_SERVE, err, sizeof err))
        fail_msg("app_open: %s", err);

    f->client.actor = SVC_ACTOR_CLIENT;
    snprintf(f->client.client_addr, sizeof f->client.client_addr, "192.0.2.10");
    snprintf(f->client.user_agent, sizeof f->client.user_agent, "test_services/1.0");
    snprintf(f->client.request_id, sizeof f->client.request_id, "test-request");
    svc_ctx_operator(&f->oper);
    *state = f;
    return 0;
}

static void rm_dir(const char *dir)
{
    DIR *d = opendir(dir);
    if (d) {
        struct dirent *e;
        while ((e = readdir(d)) != NULL) {
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
                continue;
            char p[600];
            snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
            unlink(p);
        }
        closedir(d);
    }
    rmdir(dir);
}

static int fx_teardown(void **state)
{
    struct fx *f = *state;
    app_close(&f->app);
    config_free(&f->cfg);
    rm_dir(f->dir);
    free(f);
    clock_set(0);
    return 0;
}

/* ---- helpers ---- */

#define assert_status(got, want)                                                          \
    do {                                                                                  \
        enum svc_status got_ = (got), want_ = (want);                                     \
        if (got_ != want_)                                                                \
            fail_msg("status %s, expected %s", svc_status_name(got_), svc_status_name(want_)); \
    } while (0)

static struct svc_op *start_signup(struct fx *f, const struct svc_ctx *ctx, const char *user,
                                   const char *pw)
{
    struct svc_op *op = accounts_signup(&f->app, ctx, user, strlen(user), pw, strlen(pw), NULL, 0);
    assert_non_null(op);
    return op;
}

/* A whole sign-up; the result, and the new id in id_out (may be NULL). */
static struct svc_result signup(struct fx *f, const struct svc_ctx *ctx, const char *user,
                                const char *pw, char id_out[UUID_STR_LEN])
{
    struct svc_op *op = start_signup(f, ctx, user, pw);
    svc_op_run(op);
    struct svc_result r = op->res;
    if (r.status == SVC_OK) {
        assert_true(util_is_uuid(op->user.id));
        assert_string_equal(op->user.username, user);
        if (id_out)
            memcpy(id_out, op->user.id, UUID_STR_LEN);
    }
    svc_op_free(op);
    return r;
}

static void must_signup(struct fx *f, const char *user, const char *pw, char id[UUID_STR_LEN])
{
    struct svc_result r = signup(f, &f->client, user, pw, id);
    if (r.status != SVC_OK)
        fail_msg("signup %s: %s (%s)", user, svc_status_name(r.status), r.detail ? r.detail : "");
}

static struct svc_op *start_login(struct fx *f, const char *user, const char *pw)
{
    struct svc_op *op = accounts_login(&f->app, &f->client, user, strlen(user), pw, strlen(pw));
    assert_non_null(op);
    return op;
}

/* A whole login. On SVC_OK the grant moves to *ret (clear it with
 * svc_grant_clear); the user's id goes to id_out when not NULL. */
static struct svc_result login(struct fx *f, const char *user, const char *pw,
                               struct session_grant *ret, char id_out[UUID_STR_LEN])
{
    struct svc_op *op = start_login(f, user, pw);
    svc_op_run(op);
    struct svc_result r = op->res;
    if (r.status == SVC_OK) {
        assert_non_null(op->grant.access_token);
        if (ret) {
            *ret = op->grant;
            op->grant.access_token = NULL;
        }
        if (id_out)
            memcpy(id_out, op->user.id, UUID_STR_LEN);
    } else {
        assert_null(op->grant.access_token);
    }
    svc_op_free(op);
    return r;
}

static void must_login(struct fx *f, const char *user, const char *pw, struct session_grant *ret)
{
    struct svc_result r = login(f, user, pw, ret, NULL);
    if (r.status != SVC_OK)
        fail_msg("login %s: %s (%s)", user, svc_status_name(r.status), r.detail ? r.detail : "");
}

static struct svc_result refresh(struct fx *f, const char *token, struct session_grant *ret)
{
    struct session_grant g = {0};
    struct store_user u = {0};
    struct svc_result r =
        sessions_refresh(&f->app, &f->client, token, strlen(token), &g, &u);
    if (r.status == SVC_OK) {
        assert_non_null(g.access_token);
        assert_true(util_is_uuid(u.id));
        assert_null(u.password_hash);
        if (ret)
            *ret = g;
        else
            svc_grant_clear(&g);
    }
    store_user_clear(&u);
    return r;
}

static bool access_ok(struct fx *f, const char *token, struct identity *ret)
{
    struct identity id;
    const char *reason = NULL;
    bool ok = access_check(&f->app, token, strlen(token), util_now(), &id, &reason);
    if (ok && ret)
        *ret = id;
    if (!ok)
        assert_non_null(reason);
    return ok;
}

static struct account_info info(struct fx *f, const char *user)
{
    struct account_info ai;
    struct svc_result r = accounts_info(&f->app, user, &ai);
    if (r.status != SVC_OK)
        fail_msg("accounts_info %s: %s", user, svc_status_name(r.status));
    assert_null(ai.user.password_hash);
    return ai;
}

/* The stored hash of an account (copied into out). */
static void stored_hash(struct fx *f, const char *user, char *out, size_t cap)
{
    struct store_user u = {0};
    assert_int_equal(store_user_by_name(f->app.store, user, &u), STORE_OK);
    assert_non_null(u.password_hash);
    snprintf(out, cap, "%s", u.password_hash);
    store_user_clear(&u);
}

/* An independent reading of a JWT's payload: unpadded base64url decoded
 * here, parsed by jansson. */
static json_t *jwt_payload(const char *jwt)
{
    const char *a = strchr(jwt, '.');
    assert_non_null(a);
    const char *b = strchr(a + 1, '.');
    assert_non_null(b);
    size_t n = (size_t)(b - a - 1);
    unsigned char *out = malloc(n);
    assert_non_null(out);
    size_t o = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < n; i++) {
        char c = a[1 + i];
        int v = c >= 'A' && c <= 'Z'   ? c - 'A'
                : c >= 'a' && c <= 'z' ? c - 'a' + 26
                : c >= '0' && c <= '9' ? c - '0' + 52
                : c == '-'             ? 62
                : c == '_'             ? 63
                                       : -1;
        assert_true(v >= 0);
        acc = acc << 6 | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (unsigned char)(acc >> bits);
        }
    }
    json_error_t e;
    json_t *j = json_loadb((const char *)out, o, 0, &e);
    free(out);
    assert_non_null(j);
    return j;
}

static bool has(const char *s, const char *part)
{
    return s && strstr(s, part) != NULL;
}

/* ---------------------------------------------------------- signup --- */

static void test_signup_username_rules(void **state)
{
    struct fx *f = *state;
    static const char *bad[] = {
        "",   "ab",      "has space", "tab\there", "semi;colon", "slash/name", "quote\"d",
        "caf\xc3\xa9", /* é: usernames are ASCII */
        "new\nline", "percent%", "<script>",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct svc_op *op = start_signup(f, &f->client, bad[i], "a fine long passphrase");
        if (op->res.status != SVC_INVALID_USERNAME)
            fail_msg("username '%s': %s", bad[i], svc_status_name(op->res.status));
        assert_non_null(op->res.detail);
        assert_null(op->slow); /* refused before any hashing */
        assert_null(op->finish);
        svc_op_free(op);
    }
    char longname[130];
    memset(longname, 'a', 129);
    longname[129] = '\0';
    assert_status(signup(f, &f->client, longname, "a fine long passphrase", NULL).status,
                  SVC_INVALID_USERNAME);
    /* The edges of the rule are accepted: 3 and 128 characters, every
     * allowed punctuation mark. */
    longname[128] = '\0';
    assert_status(signup(f, &f->client, longname, "a fine long passphrase", NULL).status, SVC_OK);
    assert_status(signup(f, &f->client, "abc", "a fine long passphrase", NULL).status, SVC_OK);
    assert_status(signup(f, &f->client, "A.b_c-d@e+F9", "a fine long passphrase", NULL).status,
                  SVC_OK);
}

static void test_signup_password_policy(void **state)
{
    struct fx *f = *state;
    static const struct {
        const char *user, *pw, *detail_part;
    } weak[] = {
        {"shorty", "seven77", "shorter than 8"},
        {"shorty", "", "shorter than 8"},
        {"Margarethe9", "Margarethe9", "username"},
        {"Margarethe9", "mARGARETHE9", "username"}, /* any case */
        {"lister", "password1234", "common"},       /* data/blocklist/passwords.txt */
        {"lister", "PassWord1234", "common"},       /* case folded */
        {"lister", "qwertyuiop", "common"},
        {"lister", "sunshine1", "common"},
    };
    for (size_t i = 0; i < sizeof weak / sizeof weak[0]; i++) {
        struct svc_op *op = start_signup(f, &f->client, weak[i].user, weak[i].pw);
        if (op->res.status != SVC_WEAK_PASSWORD)
            fail_msg("'%s': %s", weak[i].pw, svc_status_name(op->res.status));
        if (!has(op->res.detail, weak[i].detail_part))
            fail_msg("'%s': detail '%s'", weak[i].pw, op->res.detail ? op->res.detail : "(null)");
        assert_null(op->slow);
        svc_op_free(op);
    }
    char big[1026];
    memset(big, 'k', 1025);
    big[1025] = '\0';
    struct svc_result r = signup(f, &f->client, "bigpw", big, NULL);
    assert_status(r.status, SVC_WEAK_PASSWORD);
    assert_true(has(r.detail, "longer than 1024"));
    /* Exactly 1024 bytes and exactly 8 are fine. */
    big[1024] = '\0';
    assert_status(signup(f, &f->client, "bigpw", big, NULL).status, SVC_OK);
    assert_status(signup(f, &f->client, "eightpw", "x7#kQ2!z", NULL).status, SVC_OK);
    /* Not the username, but containing it, is allowed (exact match only). */
    assert_status(signup(f, &f->client, "Margarethe9", "Margarethe9 likes tea", NULL).status,
                  SVC_OK);
    /* None of the refused ones created an account. */
    struct store_user u;
    assert_status(accounts_find(&f->app, "lister", &u).status, SVC_NOT_FOUND);
    assert_status(accounts_find(&f->app, "shorty", &u).status, SVC_NOT_FOUND);
}

static void test_signup_stores_argon2id_and_is_unique(void **state)
{
    struct fx *f = *state;
    char id[UUID_STR_LEN];
    must_signup(f, "Alice.Example", "correct horse battery", id);
    char h[512];
    stored_hash(f, "alice.example", h, sizeof h);
    assert_int_equal(strncmp(h, OUR_ARGON2, strlen(OUR_ARGON2)), 0);
    assert_null(strstr(h, "correct horse"));
    struct account_info ai = info(f, "ALICE.EXAMPLE");
    assert_string_equal(ai.user.id, id);
    assert_string_equal(ai.user.username, "Alice.Example"); /* spelling kept */
    assert_string_equal(ai.hash_scheme, "argon2id");
    assert_int_equal(ai.live_sessions, 0);
    assert_int_equal(ai.failures, 0);

    /* Taken, whatever the case: known before hashing. */
    static const char *same[] = {"Alice.Example", "alice.example", "ALICE.EXAMPLE",
                                 "aLiCe.eXaMpLe"};
    for (size_t i = 0; i < sizeof same / sizeof same[0]; i++) {
        struct svc_op *op = start_signup(f, &f->client, same[i], "another fine passphrase");
        assert_status(op->res.status, SVC_USERNAME_TAKEN);
        assert_null(op->slow);
        svc_op_free(op);
    }
    /* A race lost between the check and the insert is caught by storage:
     * two sign-ups prepared before either finishes. */
    struct svc_op *a = start_signup(f, &f->client, "Racer", "racing passphrase 1");
    struct svc_op *b = start_signup(f, &f->client, "racer", "racing passphrase 2");
    assert_status(a->res.status, SVC_OK);
    assert_non_null(a->slow);
    assert_non_null(b->slow);
    svc_op_run(a);
    svc_op_run(b);
    assert_status(a->res.status, SVC_OK);
    assert_status(b->res.status, SVC_USERNAME_TAKEN);
    svc_op_free(a);
    svc_op_free(b);
    /* A sign-up whose hashing never ran is SVC_BUSY and creates nothing. */
    struct svc_op *c = start_signup(f, &f->client, "neverhashed", "a patient passphrase");
    c->finish(c, false);
    assert_status(c->res.status, SVC_BUSY);
    assert_true(c->res.retry_after > 0);
    svc_op_free(c);
    struct store_user u;
    assert_status(accounts_find(&f->app, "neverhashed", &u).status, SVC_NOT_FOUND);
}

static void test_signup_closed(void **state)
{
    struct fx *f = *state;
    set(&f->cfg, "JWTD_SIGNUP", "closed");
    assert_status(accounts_signup_allowed(&f->app, &f->client).status, SVC_SIGNUP_CLOSED);
    assert_status(accounts_signup_allowed(&f->app, &f->oper).status, SVC_OK);
    struct svc_op *op = start_signup(f, &f->client, "hopeful", "a hopeful passphrase");
    assert_status(op->res.status, SVC_SIGNUP_CLOSED);
    assert_non_null(op->res.detail);
    assert_null(op->slow);
    svc_op_free(op);
    /* Closed is checked before anything else: even an invalid name. */
    assert_status(signup(f, &f->client, "x", "short", NULL).status, SVC_SIGNUP_CLOSED);
    struct store_user u;
    assert_status(accounts_find(&f->app, "hopeful", &u).status, SVC_NOT_FOUND);

    /* An operator may still create accounts, under the same rules. */
    char id[UUID_STR_LEN];
    assert_status(signup(f, &f->oper, "hopeful", "a hopeful passphrase", id).status, SVC_OK);
    assert_status(signup(f, &f->oper, "weakling", "password1234", NULL).status,
                  SVC_WEAK_PASSWORD);
    assert_status(accounts_find(&f->app, "HOPEFUL", &u).status, SVC_OK);
    assert_string_equal(u.id, id);
    store_user_clear(&u);
    /* And the new account may log in. */
    struct session_grant g;
    must_login(f, "hopeful", "a hopeful passphrase", &g);
    svc_grant_clear(&g);

    set(&f->cfg, "JWTD_SIGNUP", "open");
    assert_status(accounts_signup_allowed(&f->app, &f->client).status, SVC_OK);
}

/* ----------------------------------------------------------- login --- */

static void test_login_success_tokens(void **state)
{
    struct fx *f = *state;
    char id[UUID_STR_LEN];
    must_signup(f, "Bob.Smith", "bob's long passphrase", id);
    struct session_grant g;
    char got_id[UUID_STR_LEN];
    struct svc_result r = login(f, "bob.smith", "bob's long passphrase", &g, got_id);
    assert_status(r.status, SVC_OK);
    assert_string_equal(got_id, id);
    assert_true(util_is_uuid(g.sid));
    assert_int_equal(g.gen, 0);
    assert_int_equal(g.access_ttl, 900);          /* JWTD_ACCESS_TTL default 15m */
    assert_int_equal(g.refresh_ttl, 30 * 86400);  /* JWTD_REFRESH_TTL default 30d */

    /* The access token is accepted and names the user and the session. */
    struct identity who;
    assert_true(access_ok(f, g.access_token, &who));
    assert_string_equal(who.sub, id);
    assert_string_equal(who.sid, g.sid);
    assert_string_equal(who.username, "Bob.Smith");
    /* Read independently: the claims of API.md. */
    json_t *p = jwt_payload(g.access_token);
    assert_string_equal(json_string_value(json_object_get(p, "sub")), id);
    assert_string_equal(json_string_value(json_object_get(p, "sid")), g.sid);
    assert_string_equal(json_string_value(json_object_get(p, "aud")), "jwtd");
    assert_string_equal(json_string_value(json_object_get(p, "iss")), f->cfg.issuer);
    json_int_t iat = json_integer_value(json_object_get(p, "iat"));
    json_int_t exp = json_integer_value(json_object_get(p, "exp"));
    assert_int_equal(exp - iat, 900);
    assert_true(llabs((long long)(iat - util_now())) <= 2);
    assert_int_equal(who.exp, exp);
    json_decref(p);

    /* The refresh token is this server's, for this session, generation 0. */
    assert_int_equal(strlen(g.refresh_token), REFRESH_TOKEN_LEN);
    char sid[UUID_STR_LEN];
    uint32_t gen = 99;
    assert_true(refresh_token_parse(f->app.refresh_key, g.refresh_token, strlen(g.refresh_token),
                                    sid, &gen));
    assert_string_equal(sid, g.sid);
    assert_int_equal(gen, 0);

    /* A second login is a second session. */
    struct session_grant g2;
    must_login(f, "BOB.SMITH", "bob's long passphrase", &g2);
    assert_string_not_equal(g2.sid, g.sid);
    assert_int_equal(info(f, "bob.smith").live_sessions, 2);
    /* An access token altered in its signature is refused. */
    size_t n = strlen(g2.access_token);
    char *bad = strdup(g2.access_token);
    assert_non_null(bad);
    bad[n - 2] = bad[n - 2] == 'A' ? 'B' : 'A';
    assert_false(access_ok(f, bad, NULL));
    free(bad);
    svc_grant_clear(&g);
    svc_grant_clear(&g2);
}

static void test_login_wrong_password_and_unknown_user(void **state)
{
    struct fx *f = *state;
    must_signup(f, "carol", "carol's long passphrase", NULL);
    struct svc_result wrong = login(f, "carol", "carol's long passphrasE", NULL, NULL);
    struct svc_result unknown = login(f, "nobody-here", "carol's long passphrase", NULL, NULL);
    assert_status(wrong.status, SVC_BAD_CREDENTIALS);
    assert_status(unknown.status, SVC_BAD_CREDENTIALS);
    /* The same answer, word for word. */
    assert_non_null(wrong.detail);
    assert_string_equal(wrong.detail, unknown.detail);
    /* Unknown and implausible names still do the hashing work. */
    struct svc_op *op = start_login(f, "nobody-else", "whatever it is");
    assert_status(op->res.status, SVC_OK);
    assert_non_null(op->slow);
    assert_non_null(op->finish);
    svc_op_run(op);
    assert_status(op->res.status, SVC_BAD_CREDENTIALS);
    svc_op_free(op);
    op = start_login(f, "no such name!", "whatever it is");
    assert_non_null(op->slow);
    svc_op_run(op);
    assert_status(op->res.status, SVC_BAD_CREDENTIALS);
    svc_op_free(op);
    /* An empty password or username is just wrong. */
    assert_status(login(f, "carol", "", NULL, NULL).status, SVC_BAD_CREDENTIALS);
    assert_status(login(f, "", "carol's long passphrase", NULL, NULL).status,
                  SVC_BAD_CREDENTIALS);
    assert_int_equal(info(f, "carol").failures, 2); /* the empty name was not counted */
    assert_status(accounts_unlock(&f->app, &f->oper, "carol").status, SVC_OK);
    /* The prefix of the password, or the password with a suffix, is not it. */
    assert_status(login(f, "carol", "carol's long passphras", NULL, NULL).status,
                  SVC_BAD_CREDENTIALS);
    assert_status(login(f, "carol", "carol's long passphrase ", NULL, NULL).status,
                  SVC_BAD_CREDENTIALS);
    assert_int_equal(info(f, "carol").failures, 2);
    assert_int_equal(info(f, "carol").live_sessions, 0);
}

static void test_login_backoff(void **state)
{
    struct fx *f = *state;
    must_signup(f, "Dave", "dave's long passphrase", NULL);
    /* Three failures (JWTD_LOGIN_MAX_FAILURES=3), in any case of the name:
     * the counter is per account, not per spelling. */
    static const char *spellings[] = {"dave", "DAVE", "Dave"};
    for (int i = 0; i < 3; i++) {
        struct svc_op *op = start_login(f, spellings[i], "not dave's password");
        assert_status(op->res.status, SVC_OK); /* counted, not yet refused */
        assert_non_null(op->slow);
        svc_op_run(op);
        assert_status(op->res.status, SVC_BAD_CREDENTIALS);
        svc_op_free(op);
        assert_int_equal(info(f, "dave").failures, i + 1);
    }
    /* The third failure started a 60 s back-off (JWTD_LOGIN_BACKOFF). */
    struct account_info ai = info(f, "dave");
    int64_t now_ms = util_now_ms();
    assert_true(ai.blocked_until_ms > now_ms + 59000 && ai.blocked_until_ms <= now_ms + 60000);

    /* The fourth attempt is refused before its password is looked at -
     * even the right one. */
    struct svc_op *op = start_login(f, "dave", "dave's long passphrase");
    assert_status(op->res.status, SVC_LIMITED);
    assert_true(op->res.retry_after > 0 && op->res.retry_after <= 60);
    assert_null(op->slow);
    assert_null(op->finish);
    svc_op_run(op); /* nothing to run */
    assert_status(op->res.status, SVC_LIMITED);
    assert_null(op->grant.access_token);
    svc_op_free(op);
    assert_int_equal(info(f, "dave").failures, 3); /* refused attempts are not counted */

    /* Once the back-off ended, one more failure doubles it (120 s). */
    clock_set(61 * 1000);
    assert_status(login(f, "dave", "still not it", NULL, NULL).status, SVC_BAD_CREDENTIALS);
    ai = info(f, "dave");
    assert_int_equal(ai.failures, 4);
    now_ms = util_now_ms();
    assert_true(ai.blocked_until_ms > now_ms + 119000 && ai.blocked_until_ms <= now_ms + 120000);
    op = start_login(f, "dave", "dave's long passphrase");
    assert_status(op->res.status, SVC_LIMITED);
    assert_true(op->res.retry_after > 60 && op->res.retry_after <= 120);
    svc_op_free(op);

    /* An operator's unlock clears it; then the right password works. */
    assert_status(accounts_unlock(&f->app, &f->oper, "DAVE").status, SVC_OK);
    ai = info(f, "dave");
    assert_int_equal(ai.failures, 0);
    assert_int_equal(ai.blocked_until_ms, 0);
    struct session_grant g;
    must_login(f, "dave", "dave's long passphrase", &g);
    svc_grant_clear(&g);
    assert_status(accounts_unlock(&f->app, &f->oper, "nobody-here").status, SVC_NOT_FOUND);
}

static void test_login_success_resets_failures(void **state)
{
    struct fx *f = *state;
    must_signup(f, "erin", "erin's long passphrase", NULL);
    assert_status(login(f, "erin", "guess one", NULL, NULL).status, SVC_BAD_CREDENTIALS);
    assert_status(login(f, "erin", "guess two", NULL, NULL).status, SVC_BAD_CREDENTIALS);
    assert_int_equal(info(f, "erin").failures, 2);
    struct session_grant g;
    must_login(f, "ERIN", "erin's long passphrase", &g);
    svc_grant_clear(&g);
    struct account_info ai = info(f, "erin");
    assert_int_equal(ai.failures, 0);
    assert_int_equal(ai.blocked_until_ms, 0);
    /* So the count starts over: two more failures do not block. */
    assert_status(login(f, "erin", "guess three", NULL, NULL).status, SVC_BAD_CREDENTIALS);
    assert_status(login(f, "erin", "guess four", NULL, NULL).status, SVC_BAD_CREDENTIALS);
    assert_int_equal(info(f, "erin").blocked_until_ms, 0);
    must_login(f, "erin", "erin's long passphrase", &g);
    svc_grant_clear(&g);
}

static void test_login_busy_refunds_attempt(void **state)
{
    struct fx *f = *state;
    must_signup(f, "frank", "frank's long passphrase", NULL);
    assert_status(login(f, "frank", "guess one", NULL, NULL).status, SVC_BAD_CREDENTIALS);
    assert_int_equal(info(f, "frank").failures, 1);

    /* The hashing pool could not run the job: busy, and the attempt given
     * back - with the right password or a wrong one. */
    for (int i = 0; i < 5; i++) {
        struct svc_op *op = start_login(f, "frank", i % 2 ? "frank's long passphrase" : "nope");
        assert_status(op->res.status, SVC_OK);
        assert_non_null(op->finish);
        assert_int_equal(info(f, "frank").failures, 2); /* counted while it waits */
        op->finish(op, false);
        assert_status(op->res.status, SVC_BUSY);
        assert_true(op->res.retry_after > 0);
        assert_null(op->grant.access_token);
        svc_op_free(op);
        assert_int_equal(info(f, "frank").failures, 1);
    }
    assert_int_equal(info(f, "frank").live_sessions, 0);

    /* At the edge of the limit: the attempt that would start the back-off
     * is given back whole (count and block). */
    assert_status(login(f, "frank", "guess two", NULL, NULL).status, SVC_BAD_CREDENTIALS);
    struct svc_op *op = start_login(f, "frank", "frank's long passphrase");
    struct account_info ai = info(f, "frank");
    assert_int_equal(ai.failures, 3);
    assert_true(ai.blocked_until_ms > 0);
    op->finish(op, false);
    assert_status(op->res.status, SVC_BUSY);
    svc_op_free(op);
    ai = info(f, "frank");
    assert_int_equal(ai.failures, 2);
    assert_int_equal(ai.blocked_until_ms, 0);
    /* ...so the next attempt is checked, not refused. */
    struct session_grant g;
    must_login(f, "frank", "frank's long passphrase", &g);
    svc_grant_clear(&g);
}

static void test_login_disabled_account(void **state)
{
    struct fx *f = *state;
    must_signup(f, "grace", "grace's long passphrase", NULL);
    struct session_grant g;
    must_login(f, "grace", "grace's long passphrase", &g);
    int revoked = -1;
    assert_status(accounts_set_disabled(&f->app, &f->oper, "Grace", true, &revoked).status,
                  SVC_OK);
    assert_int_equal(revoked, 1);
    struct svc_result r = login(f, "grace", "grace's long passphrase", NULL, NULL);
    assert_status(r.status, SVC_ACCOUNT_DISABLED);
    assert_non_null(r.detail);
    /* A wrong password learns nothing about the account's state. */
    assert_status(login(f, "grace", "grace's wrong passphrase", NULL, NULL).status,
                  SVC_BAD_CREDENTIALS);
    /* The session that was open is over: refresh and access refused. */
    assert_status(refresh(f, g.refresh_token, NULL).status, SVC_INVALID_GRANT);
    assert_false(access_ok(f, g.access_token, NULL));
    assert_int_equal(info(f, "grace").live_sessions, 0);
    assert_true(info(f, "grace").user.disabled_at > 0);
    svc_grant_clear(&g);

    /* Enabled again: logins work, old sessions stay ended. */
    assert_status(accounts_set_disabled(&f->app, &f->oper, "grace", false, &revoked).status,
                  SVC_OK);
    assert_int_equal(revoked, 0);
    assert_int_equal(info(f, "grace").user.disabled_at, 0);
    must_login(f, "grace", "grace's long passphrase", &g);
    assert_true(access_ok(f, g.access_token, NULL));
    assert_status(refresh(f, g.refresh_token, NULL).status, SVC_OK);
    svc_grant_clear(&g);
    assert_status(accounts_set_disabled(&f->app, &f->oper, "nobody-here", true, NULL).status,
                  SVC_NOT_FOUND);
}

static void test_login_rehashes_imported_hashes(void **state)
{
    struct fx *f = *state;
    /* bcrypt made here by libxcrypt, cost 10 ($2b$10$, 22 salt characters). */
    struct crypt_data cd;
    memset(&cd, 0, sizeof cd);
    const char *bc = crypt_rn("helen's long passphrase", "$2b$10$abcdefghijklmnopqrstuu", &cd,
                              (int)sizeof cd);
    assert_non_null(bc);
    assert_int_equal(strncmp(bc, "$2b$10$", 7), 0);
    assert_int_equal(strlen(bc), 60);
    char bcrypt_hash[61];
    snprintf(bcrypt_hash, sizeof bcrypt_hash, "%s", bc);

    struct store_user u;
    assert_status(accounts_import(&f->app, &f->oper, "Helen", bcrypt_hash, &u).status, SVC_OK);
    assert_null(u.password_hash);
    assert_string_equal(info(f, "helen").hash_scheme, "bcrypt");
    /* A wrong password does not touch the hash. */
    assert_status(login(f, "helen", "helen's wrong passphrase", NULL, NULL).status,
                  SVC_BAD_CREDENTIALS);
    char h[512];
    stored_hash(f, "helen", h, sizeof h);
    assert_string_equal(h, bcrypt_hash);

    struct session_grant g;
    must_login(f, "helen", "helen's long passphrase", &g);
    svc_grant_clear(&g);
    stored_hash(f, "helen", h, sizeof h);
    assert_string_equal(store_hash_scheme(h), "argon2id");
    assert_int_equal(strncmp(h, OUR_ARGON2, strlen(OUR_ARGON2)), 0);
    assert_string_equal(info(f, "helen").hash_scheme, "argon2id");
    /* The new hash is of the same password. */
    must_login(f, "helen", "helen's long passphrase", &g);
    svc_grant_clear(&g);
    assert_status(login(f, "helen", "helen's wrong passphrase", NULL, NULL).status,
                  SVC_BAD_CREDENTIALS);

    /* A published bcrypt vector (Openwall crypt_blowfish's test suite,
     * $2a$, cost 5): bcrypt reads 72 bytes, so a password that differs
     * only after them was accepted by the old system and is here too -
     * once; the re-hash then keeps what was typed, all of it. */
    static const char vec_pw[] =
        "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
        "chars after 72 are ignored";
    static const char vec_hash[] = "$2a$05$abcdefghijklmnopqrstuu5s2v8.iXieOjg/.AySBTTZIIVFJeBui";
    assert_status(accounts_import(&f->app, &f->oper, "ivan", vec_hash, &u).status, SVC_OK);
    assert_status(accounts_import(&f->app, &f->oper, "IVAN", vec_hash, &u).status,
                  SVC_USERNAME_TAKEN);
    must_login(f, "ivan", vec_pw, &g);
    svc_grant_clear(&g);
    stored_hash(f, "ivan", h, sizeof h);
    assert_int_equal(strncmp(h, OUR_ARGON2, strlen(OUR_ARGON2)), 0);
    must_login(f, "ivan", vec_pw, &g);
    svc_grant_clear(&g);
    char other[sizeof vec_pw];
    memcpy(other, vec_pw, sizeof vec_pw);
    other[80] = 'X'; /* after byte 72: argon2id sees it */
    assert_status(login(f, "ivan", other, NULL, NULL).status, SVC_BAD_CREDENTIALS);

    /* argon2id with other parameters (made by libargon2 directly) is
     * re-hashed to the configured ones. */
    char enc[256];
    static const uint8_t salt[16] = "0123456789abcdef";
    assert_int_equal(argon2id_hash_encoded(2, 8192, 1, "judy's long passphrase", 22, salt,
                                           sizeof salt, 32, enc, sizeof enc),
                     ARGON2_OK);
    assert_int_equal(strncmp(enc, "$argon2id$v=19$m=8192,t=2,p=1$", 30), 0);
    assert_status(accounts_import(&f->app, &f->oper, "judy", enc, &u).status, SVC_OK);
    must_login(f, "judy", "judy's long passphrase", &g);
    svc_grant_clear(&g);
    stored_hash(f, "judy", h, sizeof h);
    assert_int_equal(strncmp(h, OUR_ARGON2, strlen(OUR_ARGON2)), 0);
    /* With the configured parameters already: left alone. */
    char same[512];
    snprintf(same, sizeof same, "%s", h);
    must_login(f, "judy", "judy's long passphrase", &g);
    svc_grant_clear(&g);
    stored_hash(f, "judy", h, sizeof h);
    assert_string_equal(h, same);

    /* Imports refuse what could never verify. */
    assert_status(accounts_import(&f->app, &f->oper, "kim", "plaintext", &u).status,
                  SVC_INVALID_INPUT);
    assert_status(accounts_import(&f->app, &f->oper, "kim", "$1$abcdefgh$abcdefghijklmnopqrstuv",
                                  &u)
                      .status,
                  SVC_INVALID_INPUT); /* md5-crypt */
    assert_status(accounts_import(&f->app, &f->oper, "k m", vec_hash, &u).status,
                  SVC_INVALID_USERNAME);
}

/* --------------------------------------------------------- refresh --- */

static void test_refresh_rotation_and_reuse(void **state)
{
    struct fx *f = *state;
    char id[UUID_STR_LEN];
    must_signup(f, "kate", "kate's long passphrase", id);
    struct session_grant g0, g1, again, g2;
    must_login(f, "kate", "kate's long passphrase", &g0);

    /* The current token rotates: same session, next generation. */
    assert_status(refresh(f, g0.refresh_token, &g1).status, SVC_OK);
    assert_string_equal(g1.sid, g0.sid);
    assert_int_equal(g1.gen, 1);
    assert_string_not_equal(g1.refresh_token, g0.refresh_token);
    char sid[UUID_STR_LEN];
    uint32_t gen;
    assert_true(refresh_token_parse(f->app.refresh_key, g1.refresh_token,
                                    strlen(g1.refresh_token), sid, &gen));
    assert_string_equal(sid, g0.sid);
    assert_int_equal(gen, 1);
    struct identity who;
    assert_true(access_ok(f, g1.access_token, &who));
    assert_string_equal(who.sub, id);
    assert_string_equal(who.sid, g0.sid);

    /* The previous token within the interval (2 s): the current pair again
     * - same generation, same refresh token. */
    assert_status(refresh(f, g0.refresh_token, &again).status, SVC_OK);
    assert_int_equal(again.gen, 1);
    assert_string_equal(again.sid, g0.sid);
    assert_string_equal(again.refresh_token, g1.refresh_token);
    assert_true(access_ok(f, again.access_token, NULL));
    svc_grant_clear(&again);

    /* Rotate again; now g0 is two generations back: theft. */
    assert_status(refresh(f, g1.refresh_token, &g2).status, SVC_OK);
    assert_int_equal(g2.gen, 2);
    struct svc_result r = refresh(f, g0.refresh_token, NULL);
    assert_status(r.status, SVC_INVALID_GRANT);
    assert_true(has(r.detail, "already used"));
    /* The whole session is over: the current token and access tokens too. */
    r = refresh(f, g2.refresh_token, NULL);
    assert_status(r.status, SVC_INVALID_GRANT);
    assert_true(has(r.detail, "revoked"));
    assert_false(access_ok(f, g2.access_token, NULL));
    assert_false(access_ok(f, g0.access_token, NULL));
    assert_int_equal(info(f, "kate").live_sessions, 0);

    /* Garbage, truncated and empty tokens. */
    r = refresh(f, "not a token at all", NULL);
    assert_status(r.status, SVC_INVALID_GRANT);
    assert_non_null(r.detail);
    char cut[REFRESH_TOKEN_LEN + 1];
    memcpy(cut, g2.refresh_token, sizeof cut);
    cut[REFRESH_TOKEN_LEN - 1] = '\0';
    assert_status(refresh(f, cut, NULL).status, SVC_INVALID_GRANT);
    assert_status(refresh(f, "", NULL).status, SVC_INVALID_GRANT);
    /* A well-formed token of an unknown session. */
    char other_sid[UUID_STR_LEN], forged[REFRESH_TOKEN_LEN + 1];
    assert_true(util_uuid7(other_sid));
    assert_true(refresh_token_make(f->app.refresh_key, other_sid, 0, forged));
    r = refresh(f, forged, NULL);
    assert_status(r.status, SVC_INVALID_GRANT);
    assert_true(has(r.detail, "unknown"));
    svc_grant_clear(&g0);
    svc_grant_clear(&g1);
    svc_grant_clear(&g2);
}

static void test_refresh_previous_after_interval_is_reuse(void **state)
{
    struct fx *f = *state;
    must_signup(f, "liam", "liam's long passphrase", NULL);
    struct session_grant g0, g1, other;
    must_login(f, "liam", "liam's long passphrase", &g0);
    must_login(f, "liam", "liam's long passphrase", &other);
    assert_status(refresh(f, g0.refresh_token, &g1).status, SVC_OK);
    /* 2.5 s later the previous token is past JWTD_REFRESH_REUSE_INTERVAL. */
    clock_set(2500);
    assert_status(refresh(f, g0.refresh_token, NULL).status, SVC_INVALID_GRANT);
    assert_status(refresh(f, g1.refresh_token, NULL).status, SVC_INVALID_GRANT);
    assert_false(access_ok(f, g1.access_token, NULL));
    /* Only that session: the user's other one lives on. */
    assert_true(access_ok(f, other.access_token, NULL));
    assert_status(refresh(f, other.refresh_token, NULL).status, SVC_OK);
    assert_int_equal(info(f, "liam").live_sessions, 1);
    svc_grant_clear(&g0);
    svc_grant_clear(&g1);
    svc_grant_clear(&other);
}

static void test_refresh_expiry(void **state)
{
    struct fx *f = *state;
    must_signup(f, "mia", "mia's long passphrase", NULL);
    struct session_grant g, g2;
    must_login(f, "mia", "mia's long passphrase", &g);
    /* Used within the idle lifetime (30 d): it lives on. */
    clock_set(29 * DAY_MS);
    assert_status(refresh(f, g.refresh_token, &g2).status, SVC_OK);
    /* Idle for 30 days and a second: expired - not theft. */
    clock_set(59 * DAY_MS + 1000);
    struct svc_result r = refresh(f, g2.refresh_token, NULL);
    assert_status(r.status, SVC_INVALID_GRANT);
    assert_true(has(r.detail, "expired"));
    /* Expiry is not revocation: the old token is "expired" too, and
     * nothing was revoked by it. */
    r = refresh(f, g.refresh_token, NULL);
    assert_status(r.status, SVC_INVALID_GRANT);
    assert_true(has(r.detail, "expired"));
    svc_grant_clear(&g);
    svc_grant_clear(&g2);

    /* The absolute end (JWTD_REFRESH_ABSOLUTE_TTL 90 d) even when used
     * every few weeks. */
    clock_set(0);
    must_login(f, "mia", "mia's long passphrase", &g);
    for (int day = 25; day < 90; day += 25) {
        clock_set(day * DAY_MS);
        assert_status(refresh(f, g.refresh_token, &g2).status, SVC_OK);
        svc_grant_clear(&g);
        g = g2;
    }
    clock_set(90 * DAY_MS + 1000);
    r = refresh(f, g.refresh_token, NULL);
    assert_status(r.status, SVC_INVALID_GRANT);
    assert_true(has(r.detail, "expired"));
    svc_grant_clear(&g);
}

static void test_refresh_operator_logout(void **state)
{
    struct fx *f = *state;
    must_signup(f, "noah", "noah's long passphrase", NULL);
    must_signup(f, "olga", "olga's long passphrase", NULL);
    struct session_grant a, b, c;
    must_login(f, "noah", "noah's long passphrase", &a);
    must_login(f, "noah", "noah's long passphrase", &b);
    must_login(f, "olga", "olga's long passphrase", &c);
    assert_true(access_ok(f, a.access_token, NULL)); /* now in the verify cache */
    int n = -1;
    assert_status(accounts_logout(&f->app, &f->oper, "NOAH", &n).status, SVC_OK);
    assert_int_equal(n, 2);
    /* Refused at once on this instance: the revoked set was updated. */
    assert_false(access_ok(f, a.access_token, NULL));
    assert_false(access_ok(f, b.access_token, NULL));
    struct identity who;
    const char *reason = NULL;
    assert_false(access_check(&f->app, a.access_token, strlen(a.access_token), util_now(), &who,
                              &reason));
    assert_true(has(reason, "revoked"));
    assert_status(refresh(f, a.refresh_token, NULL).status, SVC_INVALID_GRANT);
    assert_status(refresh(f, b.refresh_token, NULL).status, SVC_INVALID_GRANT);
    assert_int_equal(info(f, "noah").live_sessions, 0);
    /* Another user is untouched. */
    assert_true(access_ok(f, c.access_token, NULL));
    assert_status(refresh(f, c.refresh_token, NULL).status, SVC_OK);
    /* Logging out again ends nothing more; the account still logs in. */
    assert_status(accounts_logout(&f->app, &f->oper, "noah", &n).status, SVC_OK);
    assert_int_equal(n, 0);
    assert_status(accounts_logout(&f->app, &f->oper, "nobody-here", &n).status, SVC_NOT_FOUND);
    svc_grant_clear(&a);
    must_login(f, "noah", "noah's long passphrase", &a);
    assert_true(access_ok(f, a.access_token, NULL));
    svc_grant_clear(&a);
    svc_grant_clear(&b);
    svc_grant_clear(&c);
}

/* ------------------------------------------------ refresh decision --- */

#define NOW INT64_C(1800000000)
#define NOW_MS (NOW * 1000)
#define DAY INT64_C(86400)

static const char *outcome_name(enum refresh_outcome o)
{
    switch (o) {
    case REFRESH_ROTATED: return "ROTATED";
    case REFRESH_REPLAYED: return "REPLAYED";
    case REFRESH_UNKNOWN: return "UNKNOWN";
    case REFRESH_EXPIRED: return "EXPIRED";
    case REFRESH_REVOKED: return "REVOKED";
    case REFRESH_REUSED: return "REUSED";
    }
    return "?";
}

static void test_refresh_decide_table(void **state)
{
    (void)state;
    const int64_t R = NOW_MS - 60000; /* last rotation */
    const int64_t L = NOW - 60;       /* last use */
    const int64_t E = NOW + 3600;     /* absolute end */
    struct store_session row = {0};
    row.refresh_gen = 5;
    row.rotated_at_ms = R;
    row.last_used_at = L;
    row.expires_at = E;
    row.created_at = NOW - DAY;
    struct store_user owner = {0};
    snprintf(owner.username, sizeof owner.username, "owner");

    enum { IDLE_1H, IDLE_10D };
    static const struct {
        const char *what;
        uint32_t gen;
        int64_t now_ms;
        int64_t reuse_ms;
        int64_t revoked_at_ms;
        int64_t disabled_at;
        int idle;
        enum refresh_outcome want;
    } cases[] = {
        {"current", 5, NOW_MS, 10000, 0, 0, IDLE_1H, REFRESH_ROTATED},
        {"previous, at rotation", 4, R, 10000, 0, 0, IDLE_1H, REFRESH_REPLAYED},
        {"previous, 1 ms in", 4, R + 1, 10000, 0, 0, IDLE_1H, REFRESH_REPLAYED},
        {"previous, at the interval", 4, R + 10000, 10000, 0, 0, IDLE_1H, REFRESH_REPLAYED},
        /* A request that waited for the winner may carry an older clock. */
        {"previous, clock behind the rotation", 4, R - 5, 10000, 0, 0, IDLE_1H, REFRESH_REPLAYED},
        {"previous, 1 ms past", 4, R + 10001, 10000, 0, 0, IDLE_1H, REFRESH_REUSED},
        {"previous, long after", 4, NOW_MS, 10000, 0, 0, IDLE_1H, REFRESH_REUSED},
        /* Interval 0 is strict single use, even within the same ms. */
        {"previous, strict interval, same ms", 4, R, 0, 0, 0, IDLE_1H, REFRESH_REUSED},
        {"previous, strict interval, 1 ms past", 4, R + 1, 0, 0, 0, IDLE_1H, REFRESH_REUSED},
        {"current, strict interval", 5, R + 1, 0, 0, 0, IDLE_1H, REFRESH_ROTATED},
        {"two back, immediately", 3, R, 10000, 0, 0, IDLE_1H, REFRESH_REUSED},
        {"first ever", 0, R + 1, 10000, 0, 0, IDLE_1H, REFRESH_REUSED},
        {"future generation", 6, R + 1, 10000, 0, 0, IDLE_1H, REFRESH_REUSED},
        {"far future generation", 0xffffffffu, R + 1, 10000, 0, 0, IDLE_1H, REFRESH_REUSED},
        {"revoked, current gen", 5, NOW_MS, 10000, NOW_MS - 1, 0, IDLE_1H, REFRESH_REVOKED},
        {"revoked, previous gen", 4, R + 1, 10000, NOW_MS - 1, 0, IDLE_1H, REFRESH_REVOKED},
        {"revoked, two back", 3, R + 1, 10000, NOW_MS - 1, 0, IDLE_1H, REFRESH_REVOKED},
        {"revoked and expired", 5, (E + 10) * 1000, 10000, NOW_MS - 1, 0, IDLE_10D,
         REFRESH_REVOKED},
        {"absolute end minus 1 ms", 5, E * 1000 - 1, 10000, 0, 0, IDLE_10D, REFRESH_ROTATED},
        {"absolute end", 5, E * 1000, 10000, 0, 0, IDLE_10D, REFRESH_EXPIRED},
        {"past absolute end", 5, (E + 1) * 1000, 10000, 0, 0, IDLE_10D, REFRESH_EXPIRED},
        {"old token after the end: expired, not theft", 3, E * 1000, 10000, 0, 0, IDLE_10D,
         REFRESH_EXPIRED},
        {"idle end minus 1 ms", 5, (L + 3600) * 1000 - 1, 10000, 0, 0, IDLE_1H, REFRESH_ROTATED},
        {"idle end", 5, (L + 3600) * 1000, 10000, 0, 0, IDLE_1H, REFRESH_EXPIRED},
        {"old token after the idle end", 2, (L + 3600) * 1000, 10000, 0, 0, IDLE_1H,
         REFRESH_EXPIRED},
        /* A disabled owner ends every session, whatever the token. */
        {"disabled owner, current gen", 5, NOW_MS, 10000, 0, NOW - 1, IDLE_1H, REFRESH_REVOKED},
        {"disabled owner, previous gen in the interval", 4, R + 1, 10000, 0, NOW - 1, IDLE_1H,
         REFRESH_REVOKED},
        {"disabled owner, two back", 3, R + 1, 10000, 0, NOW - 1, IDLE_1H, REFRESH_REVOKED},
        {"disabled owner, expired", 5, (E + 1) * 1000, 10000, 0, NOW - 1, IDLE_10D,
         REFRESH_REVOKED},
        {"disabled and revoked", 5, NOW_MS, 10000, NOW_MS - 1, NOW - 1, IDLE_1H, REFRESH_REVOKED},
    };
    size_t failed = 0;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        row.revoked_at_ms = cases[i].revoked_at_ms;
        owner.disabled_at = cases[i].disabled_at;
        struct refresh_policy p = {
            .now_ms = cases[i].now_ms,
            /* The idle end (L + 1 h) comes before the absolute end (E). */
            .idle_ttl = cases[i].idle == IDLE_1H ? 3600 : 10 * DAY,
            .reuse_interval_ms = cases[i].reuse_ms,
        };
        enum refresh_outcome got = sessions_refresh_decide(&row, &owner, cases[i].gen, &p);
        if (got != cases[i].want) {
            print_error("%s: got %s, expected %s\n", cases[i].what, outcome_name(got),
                        outcome_name(cases[i].want));
            failed++;
        }
    }
    assert_int_equal(failed, 0);
    /* The decision is pure: the inputs are unchanged. */
    assert_int_equal(row.refresh_gen, 5);
    assert_int_equal(row.rotated_at_ms, R);
    assert_int_equal(row.last_used_at, L);
}

/* ------------------------------------------------ account changes --- */

static void test_change_password(void **state)
{
    struct fx *f = *state;
    char id[UUID_STR_LEN];
    must_signup(f, "Paula-Smith", "paula's long passphrase", id);
    struct session_grant mine, other, third;
    must_login(f, "paula-smith", "paula's long passphrase", &mine);
    must_login(f, "paula-smith", "paula's long passphrase", &other);
    must_login(f, "paula-smith", "paula's long passphrase", &third);
    struct identity who;
    assert_true(access_ok(f, mine.access_token, &who));
    assert_string_equal(who.sub, id);
    const char *cur = "paula's long passphrase";

    /* Wrong current password. */
    const char *np = "paula's brand new passphrase";
    struct svc_op *op = accounts_change_password(&f->app, &f->client, &who, "not it", 6, np,
                                                 strlen(np));
    assert_non_null(op);
    assert_non_null(op->slow);
    svc_op_run(op);
    assert_status(op->res.status, SVC_WRONG_PASSWORD);
    svc_op_free(op);
    /* A short new password is refused before any hashing. */
    op = accounts_change_password(&f->app, &f->client, &who, cur, strlen(cur), "short", 5);
    assert_status(op->res.status, SVC_WEAK_PASSWORD);
    assert_true(has(op->res.detail, "shorter"));
    assert_null(op->slow);
    svc_op_free(op);
    /* Blocklisted, and the username in another case: refused after the
     * current password was confirmed. */
    static const char *weak[] = {"password1234", "PAULA-SMITH"};
    for (size_t i = 0; i < 2; i++) {
        op = accounts_change_password(&f->app, &f->client, &who, cur, strlen(cur), weak[i],
                                      strlen(weak[i]));
        svc_op_run(op);
        assert_status(op->res.status, SVC_WEAK_PASSWORD);
        assert_non_null(op->res.detail);
        svc_op_free(op);
    }
    /* A blocklisted one with a wrong current password: the current one is
     * what is reported. */
    op = accounts_change_password(&f->app, &f->client, &who, "not it", 6, "password1234", 12);
    svc_op_run(op);
    assert_status(op->res.status, SVC_WRONG_PASSWORD);
    svc_op_free(op);
    /* Not run (pool busy): nothing changed. */
    op = accounts_change_password(&f->app, &f->client, &who, cur, strlen(cur), np, strlen(np));
    op->finish(op, false);
    assert_status(op->res.status, SVC_BUSY);
    svc_op_free(op);
    assert_int_equal(info(f, "paula-smith").live_sessions, 3);

    /* Success: the other sessions end, the caller's does not. */
    op = accounts_change_password(&f->app, &f->client, &who, cur, strlen(cur), np, strlen(np));
    svc_op_run(op);
    assert_status(op->res.status, SVC_OK);
    assert_int_equal(op->count, 2);
    svc_op_free(op);
    assert_true(access_ok(f, mine.access_token, NULL));
    assert_false(access_ok(f, other.access_token, NULL));
    assert_false(access_ok(f, third.access_token, NULL));
    assert_status(refresh(f, other.refresh_token, NULL).status, SVC_INVALID_GRANT);
    assert_status(refresh(f, third.refresh_token, NULL).status, SVC_INVALID_GRANT);
    struct session_grant next;
    assert_status(refresh(f, mine.refresh_token, &next).status, SVC_OK);
    svc_grant_clear(&next);
    assert_int_equal(info(f, "paula-smith").live_sessions, 1);
    /* The old password is gone, the new one works. */
    assert_status(login(f, "paula-smith", cur, NULL, NULL).status, SVC_BAD_CREDENTIALS);
    struct session_grant g;
    must_login(f, "paula-smith", np, &g);
    svc_grant_clear(&g);
    char h[512];
    stored_hash(f, "paula-smith", h, sizeof h);
    assert_int_equal(strncmp(h, OUR_ARGON2, strlen(OUR_ARGON2)), 0);
    svc_grant_clear(&mine);
    svc_grant_clear(&other);
    svc_grant_clear(&third);
}

static void test_operator_set_password(void **state)
{
    struct fx *f = *state;
    must_signup(f, "quinn", "quinn's long passphrase", NULL);
    struct session_grant a, b;
    must_login(f, "quinn", "quinn's long passphrase", &a);
    must_login(f, "quinn", "quinn's long passphrase", &b);
    const char *np = "set by the operator, long";

    struct svc_op *op = accounts_set_password(&f->app, &f->oper, "nobody-here", np, strlen(np));
    assert_status(op->res.status, SVC_NOT_FOUND);
    svc_op_free(op);
    op = accounts_set_password(&f->app, &f->oper, "quinn", "password1234", 12);
    assert_status(op->res.status, SVC_WEAK_PASSWORD);
    assert_null(op->slow);
    svc_op_free(op);
    op = accounts_set_password(&f->app, &f->oper, "quinn", "QUINN", 5);
    assert_status(op->res.status, SVC_WEAK_PASSWORD);
    svc_op_free(op);

    op = accounts_set_password(&f->app, &f->oper, "QUINN", np, strlen(np));
    assert_status(op->res.status, SVC_OK);
    assert_non_null(op->slow);
    svc_op_run(op);
    assert_status(op->res.status, SVC_OK);
    assert_int_equal(op->count, 2); /* every session, none kept */
    svc_op_free(op);
    assert_false(access_ok(f, a.access_token, NULL));
    assert_false(access_ok(f, b.access_token, NULL));
    assert_status(refresh(f, a.refresh_token, NULL).status, SVC_INVALID_GRANT);
    assert_status(refresh(f, b.refresh_token, NULL).status, SVC_INVALID_GRANT);
    assert_status(login(f, "quinn", "quinn's long passphrase", NULL, NULL).status,
                  SVC_BAD_CREDENTIALS);
    struct session_grant g;
    must_login(f, "quinn", np, &g);
    svc_grant_clear(&g);
    svc_grant_clear(&a);
    svc_grant_clear(&b);
}

static void test_delete_self(void **state)
{
    struct fx *f = *state;
    char id[UUID_STR_LEN];
    must_signup(f, "rosa", "rosa's long passphrase", id);
    must_signup(f, "sam", "sam's long passphrase", NULL);
    struct session_grant a, b, s;
    must_login(f, "rosa", "rosa's long passphrase", &a);
    must_login(f, "rosa", "rosa's long passphrase", &b);
    must_login(f, "sam", "sam's long passphrase", &s);
    struct identity who;
    assert_true(access_ok(f, a.access_token, &who));

    struct svc_op *op = accounts_delete_self(&f->app, &f->client, &who, "not it", 6);
    assert_non_null(op->slow);
    svc_op_run(op);
    assert_status(op->res.status, SVC_WRONG_PASSWORD);
    svc_op_free(op);
    struct store_user u;
    assert_status(accounts_find(&f->app, "rosa", &u).status, SVC_OK);
    store_user_clear(&u);
    /* Not run: nothing deleted. */
    op = accounts_delete_self(&f->app, &f->client, &who, "rosa's long passphrase", 22);
    op->finish(op, false);
    assert_status(op->res.status, SVC_BUSY);
    svc_op_free(op);
    assert_status(accounts_find(&f->app, "rosa", &u).status, SVC_OK);
    store_user_clear(&u);

    op = accounts_delete_self(&f->app, &f->client, &who, "rosa's long passphrase", 22);
    svc_op_run(op);
    assert_status(op->res.status, SVC_OK);
    svc_op_free(op);
    assert_status(accounts_find(&f->app, "rosa", &u).status, SVC_NOT_FOUND);
    assert_status(accounts_get(&f->app, &who, &u).status, SVC_GONE);
    /* Every session of the account is over, on this instance at once. */
    assert_false(access_ok(f, a.access_token, NULL));
    assert_false(access_ok(f, b.access_token, NULL));
    assert_status(refresh(f, a.refresh_token, NULL).status, SVC_INVALID_GRANT);
    assert_status(refresh(f, b.refresh_token, NULL).status, SVC_INVALID_GRANT);
    assert_status(login(f, "rosa", "rosa's long passphrase", NULL, NULL).status,
                  SVC_BAD_CREDENTIALS);
    /* A second deletion with the same identity: the account is gone. */
    op = accounts_delete_self(&f->app, &f->client, &who, "rosa's long passphrase", 22);
    assert_status(op->res.status, SVC_GONE);
    assert_null(op->slow);
    svc_op_free(op);
    /* Another user is untouched; the name is free again. */
    assert_true(access_ok(f, s.access_token, NULL));
    char id2[UUID_STR_LEN];
    must_signup(f, "Rosa", "rosa's second passphrase", id2);
    assert_string_not_equal(id2, id);
    svc_grant_clear(&a);
    svc_grant_clear(&b);
    svc_grant_clear(&s);
}

static void test_operator_delete(void **state)
{
    struct fx *f = *state;
    must_signup(f, "tara", "tara's long passphrase", NULL);
    struct session_grant g;
    must_login(f, "tara", "tara's long passphrase", &g);
    assert_status(accounts_delete(&f->app, &f->oper, "nobody-here").status, SVC_NOT_FOUND);
    assert_status(accounts_delete(&f->app, &f->oper, "TARA").status, SVC_OK);
    struct store_user u;
    assert_status(accounts_find(&f->app, "tara", &u).status, SVC_NOT_FOUND);
    assert_false(access_ok(f, g.access_token, NULL));
    assert_status(refresh(f, g.refresh_token, NULL).status, SVC_INVALID_GRANT);
    assert_status(accounts_delete(&f->app, &f->oper, "tara").status, SVC_NOT_FOUND);
    svc_grant_clear(&g);
}

/* The username is the ulen bytes given, never what follows them: a caller
 * holding a longer buffer gets exactly the name it validated. */
static void test_username_is_exactly_ulen_bytes(void **state)
{
    struct fx *f = *state;
    const char *buf = "carla-and-more";
    struct svc_op *op = accounts_signup(&f->app, &f->client, buf, 5, "Vermilion-Otter-42",
                                        strlen("Vermilion-Otter-42"), NULL, 0);
    assert_non_null(op);
    svc_op_run(op);
    assert_status(op->res.status, SVC_OK);
    assert_string_equal(op->user.username, "carla");
    svc_op_free(op);
    struct store_user u;
    assert_status(accounts_find(&f->app, "carla", &u).status, SVC_OK);
    store_user_clear(&u);
    assert_status(accounts_find(&f->app, "carla-and-more", &u).status, SVC_NOT_FOUND);
    op = accounts_login(&f->app, &f->client, buf, 5, "Vermilion-Otter-42",
                        strlen("Vermilion-Otter-42"));
    assert_non_null(op);
    svc_op_run(op);
    assert_status(op->res.status, SVC_OK);
    svc_op_free(op);
}

/* The generation counter never wraps: the last generation expires the
 * session, and the token before generation 0 is not "the previous one". */
static void test_refresh_generation_never_wraps(void **state)
{
    (void)state;
    struct store_session row = {.refresh_gen = 0, .rotated_at_ms = NOW_MS,
                                .last_used_at = NOW, .expires_at = NOW + 3600};
    struct store_user owner = {0};
    struct refresh_policy p = {.now_ms = NOW_MS + 1, .idle_ttl = 3600,
                               .reuse_interval_ms = 10000};
    assert_int_equal(sessions_refresh_decide(&row, &owner, UINT32_MAX, &p), REFRESH_REUSED);
    row.refresh_gen = UINT32_MAX;
    assert_int_equal(sessions_refresh_decide(&row, &owner, UINT32_MAX, &p), REFRESH_EXPIRED);
    assert_int_equal(sessions_refresh_decide(&row, &owner, UINT32_MAX - 1, &p),
                     REFRESH_REPLAYED);
}

int main(void)
{
    log_setup(LOG_ERROR, false);
    clock_start();
#define T(fn) cmocka_unit_test_setup_teardown(fn, fx_setup, fx_teardown)
    const struct CMUnitTest tests[] = {
        T(test_signup_username_rules),
        T(test_signup_password_policy),
        T(test_signup_stores_argon2id_and_is_unique),
        T(test_signup_closed),
        T(test_login_success_tokens),
        T(test_login_wrong_password_and_unknown_user),
        T(test_login_backoff),
        T(test_login_success_resets_failures),
        T(test_login_busy_refunds_attempt),
        T(test_login_disabled_account),
        T(test_login_rehashes_imported_hashes),
        T(test_refresh_rotation_and_reuse),
        T(test_refresh_previous_after_interval_is_reuse),
        T(test_refresh_expiry),
        T(test_refresh_operator_logout),
        cmocka_unit_test(test_refresh_decide_table),
        cmocka_unit_test(test_refresh_generation_never_wraps),
        T(test_username_is_exactly_ulen_bytes),
        T(test_change_password),
        T(test_operator_set_password),
        T(test_delete_self),
        T(test_operator_delete),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    close(g_clock_fd);
    return rc;
}
