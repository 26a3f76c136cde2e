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
 * revoked set updated at once), the sign-out with a refresh token (what each
 * kind of token ends), the pure refresh decision as a table, and
 * the re-confirmed changes (password change, operator password set,
 * self-deletion). The second factors (src/core/mfa.c) are driven the same
 * way, with TOTP codes computed here from the enrolment's secret (RFC 6238
 * with OpenSSL's HMAC, checked against the RFC's vectors): enrolment and
 * confirmation, the login's ticket and its second step (amr pwd+otp, the
 * one-step window, replays, single use, expiry, five wrong codes, the
 * account back-off, an account disabled or deleted meanwhile), recovery
 * codes and their renewal, removal and the operator's reset; and of
 * passkeys (src/core/passkeys.c) what needs no authenticator: listing,
 * removal, and the ticket side of a passkey step. Time is moved with the
 * test clock (util_test_clock), so nothing sleeps - except the one test of
 * the background thread: a token of a key another instance just made is
 * refused at once while the ring is re-read behind it (never waiting on
 * storage, which a gate holds), then accepted.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "../unit_util.h"

#include <crypt.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <argon2.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "base/log.h"
#include "base/util.h"
#include "core/accounts.h"
#include "core/app.h"
#include "core/mfa.h"
#include "core/passkeys.h"
#include "core/ratelimit.h"
#include "core/service.h"
#include "core/sessions.h"
#include "core/tokens.h"
#include "jwtd.h"
#include "store/store.h"


#define DAY_MS INT64_C(86400000)

/* The argon2id prefix of a hash made with this test's settings (PHC string
 * format, argon2 reference implementation: version 0x13 = 19). */
static const char OUR_ARGON2[] = "$argon2id$v=19$m=7168,t=5,p=1$";

/* ---- the test clock: an offset (ms) added to util_now*() ---- */

static int g_clock_fd = -1;
static int64_t g_clock_offset_ms; /* what clock_set wrote last */

static void clock_set(int64_t offset_ms)
{
    g_clock_offset_ms = offset_ms;
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

static void set(struct config *cfg, const char *name, const char *value)
{
    char err[256] = "";
    if (!config_set(cfg, name, value, err, sizeof err))
        fail_msg("config_set %s=%s: %s", name, value, err);
}

static int fx_setup(void **state)
{
    clock_set(0);
    unit_clean_env();
    struct fx *f = calloc(1, sizeof *f);
    assert_non_null(f);
    unit_tmpdir(f->dir, sizeof f->dir, "svc");
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

static int fx_teardown(void **state)
{
    struct fx *f = *state;
    app_close(&f->app);
    config_free(&f->cfg);
    unit_rm_dir(f->dir);
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

/* A login whose password was checked while an operator disabled the
 * account: its session is not opened (the store checks), and the answer
 * says why - account_disabled, as a login a moment later gets - not "wrong
 * password". A password changed meanwhile is still a wrong password. */
static void test_login_racing_disable_says_disabled(void **state)
{
    struct fx *f = *state;
    char id[UUID_STR_LEN];
    must_signup(f, "hollis", "hollis's long passphrase", id);
    struct store_user u;
    memset(&u, 0, sizeof u);
    assert_int_equal(store_user_by_id(f->app.store, id, &u), STORE_OK); /* as the login read it */
    assert_status(accounts_set_disabled(&f->app, &f->oper, "hollis", true, NULL).status, SVC_OK);
    struct session_grant g;
    memset(&g, 0, sizeof g);
    assert_status(sessions_open(&f->app, &f->client, &u, AMR_PWD, &g).status,
                  SVC_ACCOUNT_DISABLED);
    assert_status(accounts_set_disabled(&f->app, &f->oper, "hollis", false, NULL).status, SVC_OK);
    const char *np = "hollis's new passphrase";
    struct svc_op *op = accounts_set_password(&f->app, &f->oper, "hollis", np, strlen(np));
    svc_op_run(op);
    assert_status(op->res.status, SVC_OK);
    svc_op_free(op);
    assert_status(sessions_open(&f->app, &f->client, &u, AMR_PWD, &g).status,
                  SVC_BAD_CREDENTIALS);
    store_user_clear(&u);
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
    assert_true(has(r.detail, "reused"));
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

/* ------------------------------------------ logout with a refresh token --- */

/* A sign-out with a refresh token; what it ended. */
static enum signout_reach logout_refresh(struct fx *f, const char *token, bool all)
{
    enum signout_reach ended = (enum signout_reach)-1;
    struct svc_result r =
        sessions_logout_refresh(&f->app, &f->client, token, strlen(token), all, &ended);
    assert_status(r.status, SVC_OK);
    return ended;
}

/* What a page whose access cookie has expired can still end: with the
 * refresh token (not rotated), its session, or every session of its owner
 * when /auth/refresh would honour the token; a reused token only its own
 * session (as the refresh would); an expired, revoked, unknown or forged
 * one nothing. The revoked set knows at once. */
static void test_logout_with_refresh_token(void **state)
{
    struct fx *f = *state;
    must_signup(f, "pia", "pia's long passphrase", NULL);
    must_signup(f, "quin", "quin's long passphrase", NULL);
    struct session_grant a, b, c, q, b1;
    must_login(f, "pia", "pia's long passphrase", &a);
    must_login(f, "pia", "pia's long passphrase", &b);
    must_login(f, "pia", "pia's long passphrase", &c);
    must_login(f, "quin", "quin's long passphrase", &q);

    /* This session: a ends, at once; b and c live on. */
    assert_true(access_ok(f, a.access_token, NULL));
    assert_int_equal(logout_refresh(f, a.refresh_token, false), SIGNOUT_SESSION);
    assert_false(access_ok(f, a.access_token, NULL));
    assert_status(refresh(f, a.refresh_token, NULL).status, SVC_INVALID_GRANT);
    assert_int_equal(info(f, "pia").live_sessions, 2);
    /* Its token again, asking for all: that session is over; nothing
     * more ends. */
    assert_int_equal(logout_refresh(f, a.refresh_token, true), SIGNOUT_NOTHING);
    assert_int_equal(info(f, "pia").live_sessions, 2);

    /* b's token retired past the reuse interval (2 s), asking for all:
     * theft assumed - b ends, as the refresh would end it, c lives on. */
    assert_status(refresh(f, b.refresh_token, &b1).status, SVC_OK);
    clock_set(2500);
    assert_int_equal(logout_refresh(f, b.refresh_token, true), SIGNOUT_SESSION);
    assert_false(access_ok(f, b1.access_token, NULL));
    assert_status(refresh(f, b1.refresh_token, NULL).status, SVC_INVALID_GRANT);
    assert_true(access_ok(f, c.access_token, NULL));
    assert_int_equal(info(f, "pia").live_sessions, 1);

    /* Not tokens of this server: nothing. */
    assert_int_equal(logout_refresh(f, "not a token", true), SIGNOUT_NOTHING);
    char sid[UUID_STR_LEN], forged[REFRESH_TOKEN_LEN + 1];
    assert_true(util_uuid7(sid));
    assert_true(refresh_token_make(f->app.refresh_key, sid, 0, forged));
    assert_int_equal(logout_refresh(f, forged, true), SIGNOUT_NOTHING);
    assert_int_equal(info(f, "pia").live_sessions, 1);

    /* c's current token, asking for all: every session of pia (a new one
     * too), none of quin's. */
    struct session_grant d;
    must_login(f, "pia", "pia's long passphrase", &d);
    assert_int_equal(logout_refresh(f, c.refresh_token, true), SIGNOUT_USER);
    assert_false(access_ok(f, c.access_token, NULL));
    assert_false(access_ok(f, d.access_token, NULL));
    assert_int_equal(info(f, "pia").live_sessions, 0);
    assert_true(access_ok(f, q.access_token, NULL));
    assert_int_equal(info(f, "quin").live_sessions, 1);

    /* Idle past the refresh lifetime: expired, nothing ends. */
    clock_set(31 * DAY_MS);
    assert_int_equal(logout_refresh(f, q.refresh_token, false), SIGNOUT_NOTHING);
    svc_grant_clear(&a);
    svc_grant_clear(&b);
    svc_grant_clear(&b1);
    svc_grant_clear(&c);
    svc_grant_clear(&d);
    svc_grant_clear(&q);
}

/* The reach of a sign-out with a refresh token, for every refresh outcome
 * (pure). */
static void test_logout_refresh_reach_table(void **state)
{
    (void)state;
    static const struct {
        enum refresh_outcome out;
        enum signout_reach session, all;
    } cases[] = {
        {REFRESH_ROTATED, SIGNOUT_SESSION, SIGNOUT_USER},
        {REFRESH_REPLAYED, SIGNOUT_SESSION, SIGNOUT_USER},
        {REFRESH_REUSED, SIGNOUT_SESSION, SIGNOUT_SESSION},
        {REFRESH_UNKNOWN, SIGNOUT_NOTHING, SIGNOUT_NOTHING},
        {REFRESH_EXPIRED, SIGNOUT_NOTHING, SIGNOUT_NOTHING},
        {REFRESH_REVOKED, SIGNOUT_NOTHING, SIGNOUT_NOTHING},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        assert_int_equal(sessions_signout_reach(cases[i].out, false), cases[i].session);
        assert_int_equal(sessions_signout_reach(cases[i].out, true), cases[i].all);
    }
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

/* One row of a decision table: true when the decision is `want`. */
static bool decided_as(const struct store_session *row, const struct store_user *owner,
                       uint32_t gen, const struct refresh_policy *p, const char *what,
                       enum refresh_outcome want)
{
    enum refresh_outcome got = sessions_refresh_decide(row, owner, gen, p);
    if (got != want)
        print_error("%s: got %s, expected %s\n", what, outcome_name(got), outcome_name(want));
    return got == want;
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
        failed += !decided_as(&row, &owner, cases[i].gen, &p, cases[i].what, cases[i].want);
    }
    assert_int_equal(failed, 0);
    /* The decision is pure: the inputs are unchanged. */
    assert_int_equal(row.refresh_gen, 5);
    assert_int_equal(row.rotated_at_ms, R);
    assert_int_equal(row.last_used_at, L);
}

/* A rotation made just before or during a storage outage may have committed
 * although its request got a 503; the retry with the retired token is a
 * replay within the reuse interval of the outage's end - and only such a
 * rotation, only the token retired last, only that long. */
static void test_refresh_decide_outage_doubt(void **state)
{
    (void)state;
    const int64_t down = NOW_MS - 30000, up = NOW_MS - 20000; /* outage seen: 10 s */
    struct store_session row = {0};
    row.refresh_gen = 5;
    row.last_used_at = NOW - 60;
    row.expires_at = NOW + 3600;
    struct store_user owner = {0};
    static const struct {
        const char *what;
        int64_t rotated_at_ms;
        uint32_t gen;
        int64_t now_ms;
        bool outage;
        enum refresh_outcome want;
    } cases[] = {
        {"rotated 1 s before the outage was seen, retried 5 s after it ended",
         NOW_MS - 31000, 4, NOW_MS - 15000, true, REFRESH_REPLAYED},
        {"same without an outage: 16 s after the rotation is theft",
         NOW_MS - 31000, 4, NOW_MS - 15000, false, REFRESH_REUSED},
        {"rotated during the outage, retried at the interval's end",
         NOW_MS - 25000, 4, up + 10000, true, REFRESH_REPLAYED},
        {"rotated during the outage, retried 1 ms past the interval",
         NOW_MS - 25000, 4, up + 10001, true, REFRESH_REUSED},
        {"rotated long before the outage: not in doubt",
         down - 60000, 4, up + 1000, true, REFRESH_REUSED},
        {"rotated after the outage ended: its own interval",
         up + 1, 4, up + 5000, true, REFRESH_REPLAYED},
        {"rotated after the outage ended, retried past its interval",
         up + 1, 4, up + 10002, true, REFRESH_REUSED},
        {"two generations back, rotated in doubt", NOW_MS - 25000, 3, up + 1000, true,
         REFRESH_REUSED},
        {"current token, rotated in doubt", NOW_MS - 25000, 5, up + 1000, true,
         REFRESH_ROTATED},
    };
    size_t failed = 0;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        row.rotated_at_ms = cases[i].rotated_at_ms;
        struct refresh_policy p = {
            .now_ms = cases[i].now_ms,
            .idle_ttl = 3600,
            .reuse_interval_ms = 10000,
            .doubt_from_ms = cases[i].outage ? down - 12000 : 0,
            .doubt_to_ms = cases[i].outage ? up : 0,
        };
        failed += !decided_as(&row, &owner, cases[i].gen, &p, cases[i].what, cases[i].want);
    }
    assert_int_equal(failed, 0);
    /* A strict interval stays strict, outage or not. */
    row.rotated_at_ms = NOW_MS - 25000;
    struct refresh_policy strict = {.now_ms = up + 1, .idle_ttl = 3600, .reuse_interval_ms = 0,
                                    .doubt_from_ms = down - 12000, .doubt_to_ms = up};
    assert_int_equal(sessions_refresh_decide(&row, &owner, 4, &strict), REFRESH_REUSED);
}

/* ------------------------------------------------ account changes --- */

static void test_change_password(void **state)
{
    struct fx *f = *state;
    char id[UUID_STR_LEN];
    set(&f->cfg, "JWTD_LOGIN_MAX_FAILURES", "100"); /* the back-off has its own test */
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
    /* Each wrong re-confirmation was a failed login of the account; the
     * right ones were none. */
    assert_int_equal(info(f, "paula-smith").failures, 2);
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

/* An address change confirmed with the password while the password changes
 * (a reset, or the owner locking out whoever knew the old one): the
 * confirmation is void, nothing is written, and the answer is a wrong
 * password, as the same request a moment later gets. */
static void test_change_email_racing_password_change(void **state)
{
    struct fx *f = *state;
    char id[UUID_STR_LEN];
    must_signup(f, "rosa", "rosa's long passphrase", id);
    struct session_grant g;
    must_login(f, "rosa", "rosa's long passphrase", &g);
    struct identity who;
    assert_true(access_ok(f, g.access_token, &who));
    const char *pw = "rosa's long passphrase", *mail = "intruder@example.net";
    struct svc_op *op = accounts_change_email(&f->app, &f->client, &who, mail, strlen(mail), pw,
                                              strlen(pw));
    assert_non_null(op);
    assert_non_null(op->slow);
    op->slow(op); /* the password checked against the hash of that moment */
    const char *np = "rosa's passphrase after that";
    struct svc_op *set = accounts_set_password(&f->app, &f->oper, "rosa", np, strlen(np));
    svc_op_run(set);
    assert_status(set->res.status, SVC_OK);
    svc_op_free(set);
    op->finish(op, true);
    op->slow = NULL;
    op->finish = NULL;
    assert_status(op->res.status, SVC_WRONG_PASSWORD);
    svc_op_free(op);
    struct store_user u;
    memset(&u, 0, sizeof u);
    assert_int_equal(store_user_by_id(f->app.store, id, &u), STORE_OK);
    assert_string_equal(u.email, "");
    assert_string_equal(u.email_pending, "");
    store_user_clear(&u);
    svc_grant_clear(&g);
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

/* -------------------------------------------------- second factors --- */

/* The test's own TOTP, written from RFC 4226 (HOTP: HMAC-SHA-1 over the
 * big-endian counter, dynamic truncation) and RFC 6238 (30 s steps from
 * T0 = 0, 6 digits) with OpenSSL's HMAC, not with core/totp.c. */
static void hotp6(const uint8_t *key, size_t klen, int64_t counter, char out[7])
{
    uint8_t msg[8];
    for (int i = 0; i < 8; i++)
        msg[i] = (uint8_t)((uint64_t)counter >> (56 - 8 * i));
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    assert_non_null(HMAC(EVP_sha1(), key, (int)klen, msg, sizeof msg, md, &mdlen));
    assert_int_equal(mdlen, 20);
    unsigned off = md[19] & 0x0fu;
    uint32_t bin = (uint32_t)(md[off] & 0x7f) << 24 | (uint32_t)md[off + 1] << 16 |
                   (uint32_t)md[off + 2] << 8 | (uint32_t)md[off + 3];
    snprintf(out, 7, "%06u", (unsigned)(bin % 1000000u));
}

/* RFC 4648 base32 as the enrolment shows it (upper case, unpadded),
 * decoded here; the number of bytes. */
static size_t base32_decode(const char *s, uint8_t *out, size_t cap)
{
    uint32_t acc = 0;
    int bits = 0;
    size_t n = 0;
    for (; *s; s++) {
        int v = *s >= 'A' && *s <= 'Z' ? *s - 'A' : *s >= '2' && *s <= '7' ? *s - '2' + 26 : -1;
        if (v < 0)
            fail_msg("not base32: '%c'", *s);
        acc = acc << 5 | (uint32_t)v;
        bits += 5;
        if (bits >= 8) {
            bits -= 8;
            assert_true(n < cap);
            out[n++] = (uint8_t)(acc >> bits);
        }
    }
    assert_int_equal(acc & ((1u << bits) - 1), 0); /* no stray trailing bits */
    return n;
}

/* Move the test clock forward to one second into a TOTP step: the first
 * step that starts after now, plus `ahead` more. Returns that step. A test
 * that computes a code from it then has 29 s before the step changes,
 * however slow the machine. */
static int64_t clock_to_step(int ahead)
{
    int64_t now_ms = util_now_ms();
    int64_t target = (now_ms / 30000 + 1 + ahead) * 30000 + 1000;
    clock_set(g_clock_offset_ms + (target - now_ms));
    int64_t step = util_now() / 30;
    assert_int_equal(step, target / 30000);
    return step;
}

/* An account with a second factor, as the test knows it. */
struct mfa_acct {
    const char *user, *pw;
    char id[UUID_STR_LEN];
    struct identity who;     /* what an access token of the account says */
    uint8_t secret[64];      /* the TOTP secret shown at enrolment */
    size_t slen;
    int64_t confirmed_step;  /* the step of the code that confirmed it */
    char codes[MFA_RECOVERY_CODES][16];
};

static void code_at(const struct mfa_acct *a, int64_t step, char out[7])
{
    hotp6(a->secret, a->slen, step, out);
}

/* A well-formed code that no step of the window around `step` has. */
static void not_a_code(const struct mfa_acct *a, int64_t step, char out[7])
{
    char c[3][7];
    for (int d = -1; d <= 1; d++)
        code_at(a, step + d, c[d + 1]);
    for (unsigned v = (unsigned)strtoul(c[1], NULL, 10) + 1;; v++) {
        snprintf(out, 7, "%06u", v % 1000000u);
        if (strcmp(out, c[0]) != 0 && strcmp(out, c[1]) != 0 && strcmp(out, c[2]) != 0)
            return;
    }
}

static void acct_init(struct mfa_acct *a, const char *user, const char *pw, const char *id)
{
    memset(a, 0, sizeof *a);
    a->user = user;
    a->pw = pw;
    snprintf(a->id, sizeof a->id, "%s", id);
    snprintf(a->who.sub, sizeof a->who.sub, "%s", id);
    snprintf(a->who.username, sizeof a->who.username, "%s", user);
}

/* Start a TOTP enrolment with the right password: the secret shown goes to
 * a->secret, after checking what else is shown with it. */
static void enrol_start(struct fx *f, struct mfa_acct *a)
{
    struct svc_op *op = mfa_totp_enroll(&f->app, &f->client, &a->who, a->pw, strlen(a->pw));
    assert_non_null(op);
    assert_non_null(op->slow); /* the password is checked on the hashing side */
    svc_op_run(op);
    assert_status(op->res.status, SVC_OK);
    assert_non_null(op->data);
    const char *b32 = json_string_value(json_object_get(op->data, "secret"));
    const char *uri = json_string_value(json_object_get(op->data, "otpauth_uri"));
    const char *svg = json_string_value(json_object_get(op->data, "qr_svg"));
    assert_non_null(b32);
    assert_non_null(uri);
    assert_non_null(svg);
    assert_int_equal(strlen(b32), 32); /* 160 bits */
    a->slen = base32_decode(b32, a->secret, sizeof a->secret);
    assert_int_equal(a->slen, 20);
    char want[64];
    snprintf(want, sizeof want, "secret=%s&", b32);
    assert_int_equal(strncmp(uri, "otpauth://totp/", 15), 0);
    assert_true(has(uri, want));
    assert_true(has(uri, a->user));
    assert_true(has(uri, "algorithm=SHA1&digits=6&period=30"));
    assert_true(has(svg, "<svg"));
    svc_op_free(op);
}

/* The recovery codes are shown as xxxxx-xxxxx, of an alphabet without
 * look-alikes (no 0/o, 1/l/i), all different; copied to a->codes. */
static void take_codes(struct mfa_acct *a, json_t *codes)
{
    assert_true(json_is_array(codes));
    assert_int_equal(json_array_size(codes), MFA_RECOVERY_CODES);
    for (size_t i = 0; i < MFA_RECOVERY_CODES; i++) {
        const char *c = json_string_value(json_array_get(codes, i));
        assert_non_null(c);
        assert_int_equal(strlen(c), 11);
        for (int k = 0; k < 11; k++) {
            if (k == 5)
                assert_int_equal(c[k], '-');
            else if (!strchr("abcdefghjkmnpqrstuvwxyz23456789", c[k]))
                fail_msg("recovery code '%s': character '%c'", c, c[k]);
        }
        for (size_t j = 0; j < i; j++)
            assert_string_not_equal(a->codes[j], c);
        snprintf(a->codes[i], sizeof a->codes[i], "%s", c);
    }
}

/* Sign up a->user and turn TOTP on: enrol, then confirm with the code of a
 * fresh step (a->confirmed_step); the recovery codes go to a->codes. The
 * account back-off is raised to 100 failures so that the wrong codes a
 * test sends on purpose do not block the account (the back-off on codes
 * has its own test). */
static void mfa_user(struct fx *f, struct mfa_acct *a, const char *user, const char *pw)
{
    set(&f->cfg, "JWTD_LOGIN_MAX_FAILURES", "100");
    char id[UUID_STR_LEN];
    must_signup(f, user, pw, id);
    acct_init(a, user, pw, id);
    enrol_start(f, a);
    a->confirmed_step = clock_to_step(0);
    char code[7];
    code_at(a, a->confirmed_step, code);
    json_t *codes = NULL;
    struct svc_result r = mfa_totp_confirm(&f->app, &f->client, &a->who, code, 6, &codes);
    assert_status(r.status, SVC_OK);
    take_codes(a, codes);
    json_decref(codes);
}

/* A login whose password is right, for an account with a second factor:
 * no tokens, a ticket (copied to ticket); returns the methods offered. */
static unsigned login_ticket(struct fx *f, const char *user, const char *pw,
                             char ticket[MFA_TICKET_LEN + 1])
{
    struct svc_op *op = start_login(f, user, pw);
    svc_op_run(op);
    if (op->res.status != SVC_MFA_REQUIRED)
        fail_msg("login %s: %s, expected mfa_required", user, svc_status_name(op->res.status));
    assert_null(op->grant.access_token);
    assert_int_equal(strlen(op->mfa_ticket), MFA_TICKET_LEN);
    memcpy(ticket, op->mfa_ticket, MFA_TICKET_LEN + 1);
    unsigned m = op->mfa_methods;
    svc_op_free(op);
    return m;
}

/* The second step with a code. On SVC_OK the grant moves to *ret (NULL:
 * cleared) and the account's id to id_out (may be NULL). */
static struct svc_result complete(struct fx *f, const char *ticket, enum mfa_method method,
                                  const char *code, struct session_grant *ret,
                                  char id_out[UUID_STR_LEN])
{
    struct store_user u = {0};
    struct session_grant g = {0};
    struct svc_result r = mfa_complete(&f->app, &f->client, ticket, strlen(ticket), method, code,
                                       strlen(code), &u, &g);
    if (r.status == SVC_OK) {
        assert_non_null(g.access_token);
        assert_true(util_is_uuid(u.id));
        assert_null(u.password_hash);
        if (id_out)
            memcpy(id_out, u.id, UUID_STR_LEN);
        if (ret)
            *ret = g;
        else
            svc_grant_clear(&g);
    } else {
        assert_null(g.access_token);
    }
    store_user_clear(&u);
    return r;
}

/* The amr claim of an access token, read independently, as "pwd,otp"
 * ("-" when there is none). */
static void amr_of(const char *jwt, char *out, size_t cap)
{
    json_t *p = jwt_payload(jwt);
    json_t *a = json_object_get(p, "amr");
    snprintf(out, cap, "%s", a ? "" : "-");
    if (a) {
        assert_true(json_is_array(a));
        size_t i;
        json_t *v;
        json_array_foreach(a, i, v) {
            assert_true(json_is_string(v));
            size_t n = strlen(out);
            snprintf(out + n, cap - n, "%s%s", i ? "," : "", json_string_value(v));
        }
    }
    json_decref(p);
}

#define assert_amr(jwt, want)                                                             \
    do {                                                                                  \
        char amr_[64];                                                                    \
        amr_of((jwt), amr_, sizeof amr_);                                                 \
        assert_string_equal(amr_, (want));                                                \
    } while (0)

/* What the account page shows (mfa_status). */
struct mfa_state {
    bool totp, pending;
    json_int_t left;
    size_t passkeys;
};

static struct mfa_state status_of(struct fx *f, const struct identity *who)
{
    json_t *j = NULL;
    assert_status(mfa_status(&f->app, who, &j).status, SVC_OK);
    assert_true(json_is_boolean(json_object_get(j, "totp")));
    assert_true(json_is_boolean(json_object_get(j, "totp_pending")));
    assert_true(json_is_integer(json_object_get(j, "recovery_codes_left")));
    assert_true(json_is_array(json_object_get(j, "passkeys")));
    struct mfa_state s = {
        .totp = json_is_true(json_object_get(j, "totp")),
        .pending = json_is_true(json_object_get(j, "totp_pending")),
        .left = json_integer_value(json_object_get(j, "recovery_codes_left")),
        .passkeys = json_array_size(json_object_get(j, "passkeys")),
    };
    json_decref(j);
    return s;
}

/* A password-confirmed operation run in place; its status. */
static enum svc_status run_op(struct svc_op *op, json_t **ret_data)
{
    assert_non_null(op);
    svc_op_run(op);
    enum svc_status st = op->res.status;
    if (ret_data) {
        *ret_data = op->data;
        op->data = NULL;
    } else if (st != SVC_OK) {
        assert_null(op->data);
    }
    svc_op_free(op);
    return st;
}

static void test_mfa_totp_enrol_confirm(void **state)
{
    struct fx *f = *state;
    /* First the test's own TOTP, against RFC 6238 appendix B (SHA-1 key
     * "12345678901234567890"; the last 6 of the 8 digits shown there). */
    static const struct {
        int64_t t;
        const char *code;
    } vec[] = {{59, "287082"}, {1111111109, "081804"}, {1234567890, "005924"},
               {2000000000, "279037"}};
    for (size_t i = 0; i < sizeof vec / sizeof vec[0]; i++) {
        char c[7];
        hotp6((const uint8_t *)"12345678901234567890", 20, vec[i].t / 30, c);
        assert_string_equal(c, vec[i].code);
    }

    char id[UUID_STR_LEN];
    must_signup(f, "ursula", "ursula's long passphrase", id);
    struct mfa_acct a;
    acct_init(&a, "ursula", "ursula's long passphrase", id);

    /* A wrong password: refused after the hashing, nothing started. */
    struct svc_op *op = mfa_totp_enroll(&f->app, &f->client, &a.who, "not ursula's", 12);
    assert_non_null(op->slow);
    assert_status(run_op(op, NULL), SVC_WRONG_PASSWORD);
    struct mfa_state st = status_of(f, &a.who);
    assert_false(st.totp);
    assert_false(st.pending);

    /* The right one: an enrolment that does not count until confirmed. */
    enrol_start(f, &a);
    st = status_of(f, &a.who);
    assert_false(st.totp);
    assert_true(st.pending);
    assert_int_equal(st.left, 0);
    struct session_grant g;
    must_login(f, a.user, a.pw, &g); /* no second step yet */
    assert_amr(g.access_token, "pwd");
    svc_grant_clear(&g);

    /* Enrolling again while pending replaces the secret: the first one's
     * codes confirm nothing. */
    struct mfa_acct first = a;
    enrol_start(f, &a);
    assert_memory_not_equal(first.secret, a.secret, 20);
    int64_t s = clock_to_step(0);
    char code[7], c[7];
    code_at(&a, s, code);
    json_t *codes = NULL;
    code_at(&first, s, c);
    if (strcmp(c, code) != 0) /* one chance in a million that they agree */
        assert_status(mfa_totp_confirm(&f->app, &f->client, &a.who, c, 6, &codes).status,
                      SVC_BAD_SECOND_FACTOR);
    assert_null(codes);

    /* Wrong, malformed and out-of-window codes: refused, still pending. */
    char wrong[7];
    not_a_code(&a, s, wrong);
    const char *bad[] = {wrong, "", "12345", "1234567", "12345a", "abcdef"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        /* (each counts in the back-off, as below: one at a time here) */
        assert_status(accounts_unlock(&f->app, &f->oper, a.user).status, SVC_OK);
        struct svc_result r =
            mfa_totp_confirm(&f->app, &f->client, &a.who, bad[i], strlen(bad[i]), &codes);
        if (r.status != SVC_BAD_SECOND_FACTOR)
            fail_msg("confirm '%s': %s", bad[i], svc_status_name(r.status));
        assert_null(codes);
    }
    for (int d = -2; d <= 2; d += 4) {
        assert_status(accounts_unlock(&f->app, &f->oper, a.user).status, SVC_OK);
        code_at(&a, s + d, c);
        char w[3][7];
        for (int k = -1; k <= 1; k++)
            code_at(&a, s + k, w[k + 1]);
        if (strcmp(c, w[0]) && strcmp(c, w[1]) && strcmp(c, w[2]))
            assert_status(mfa_totp_confirm(&f->app, &f->client, &a.who, c, 6, &codes).status,
                          SVC_BAD_SECOND_FACTOR);
        assert_null(codes);
    }
    st = status_of(f, &a.who);
    assert_false(st.totp);
    assert_true(st.pending);
    must_login(f, a.user, a.pw, &g);
    svc_grant_clear(&g);

    /* Guesses count like passwords (a stolen access token must not buy
     * unlimited tries at the set-up's code): three wrong codes
     * (JWTD_LOGIN_MAX_FAILURES=3), then even the right one waits, and so
     * does a login. */
    for (int i = 0; i < 3; i++)
        assert_status(mfa_totp_confirm(&f->app, &f->client, &a.who, wrong, 6, &codes).status,
                      SVC_BAD_SECOND_FACTOR);
    assert_status(mfa_totp_confirm(&f->app, &f->client, &a.who, code, 6, &codes).status,
                  SVC_LIMITED);
    assert_null(codes);
    assert_status(login(f, a.user, a.pw, NULL, NULL).status, SVC_LIMITED);
    assert_status(accounts_unlock(&f->app, &f->oper, a.user).status, SVC_OK);

    /* The right code, spaced as apps show it: TOTP on, ten recovery
     * codes shown (the only time). */
    char spaced[8];
    snprintf(spaced, sizeof spaced, "%.3s %s", code, code + 3);
    assert_status(mfa_totp_confirm(&f->app, &f->client, &a.who, spaced, strlen(spaced), &codes)
                      .status,
                  SVC_OK);
    take_codes(&a, codes);
    json_decref(codes);
    codes = NULL;
    st = status_of(f, &a.who);
    assert_true(st.totp);
    assert_false(st.pending);
    assert_int_equal(st.left, MFA_RECOVERY_CODES);

    /* Nothing is left to confirm, and no new enrolment while it is on. */
    code_at(&a, s + 1, c);
    assert_status(mfa_totp_confirm(&f->app, &f->client, &a.who, c, 6, &codes).status,
                  SVC_ALREADY_ENABLED);
    assert_null(codes);
    op = mfa_totp_enroll(&f->app, &f->client, &a.who, a.pw, strlen(a.pw));
    assert_status(run_op(op, NULL), SVC_ALREADY_ENABLED);
    assert_true(status_of(f, &a.who).totp);

    /* A login now stops after the password: a ticket, no session. */
    int sessions = info(f, a.user).live_sessions;
    char t1[MFA_TICKET_LEN + 1], t2[MFA_TICKET_LEN + 1];
    assert_int_equal(login_ticket(f, a.user, a.pw, t1), MFA_TOTP | MFA_RECOVERY);
    assert_int_equal(login_ticket(f, "URSULA", a.pw, t2), MFA_TOTP | MFA_RECOVERY);
    assert_string_not_equal(t1, t2);
    assert_int_equal(info(f, a.user).live_sessions, sessions);
    /* A wrong password is still just that: no ticket. */
    assert_status(login(f, a.user, "not ursula's", NULL, NULL).status, SVC_BAD_CREDENTIALS);
}

static void test_mfa_login_with_totp(void **state)
{
    struct fx *f = *state;
    struct mfa_acct a;
    mfa_user(f, &a, "victor", "victor's long passphrase");
    int64_t s = clock_to_step(0);
    char t[MFA_TICKET_LEN + 1];
    assert_int_equal(login_ticket(f, a.user, a.pw, t), MFA_TOTP | MFA_RECOVERY);
    struct store_user u = {0};
    unsigned amr = 0;
    assert_status(mfa_ticket_peek(&f->app, t, strlen(t), &u, &amr).status, SVC_OK);
    assert_string_equal(u.id, a.id);
    assert_int_equal(amr, AMR_PWD);
    store_user_clear(&u);

    /* The right code: a session whose tokens say pwd and otp. */
    char code[7], next[7];
    code_at(&a, s, code);
    code_at(&a, s + 1, next);
    struct session_grant g;
    char id[UUID_STR_LEN];
    assert_status(complete(f, t, MFA_TOTP, code, &g, id).status, SVC_OK);
    assert_string_equal(id, a.id);
    struct identity who;
    assert_true(access_ok(f, g.access_token, &who));
    assert_string_equal(who.sub, a.id);
    assert_string_equal(who.sid, g.sid);
    assert_amr(g.access_token, "pwd,otp");
    /* The session keeps how it began: a refreshed token says the same. */
    struct session_grant g2;
    assert_status(refresh(f, g.refresh_token, &g2).status, SVC_OK);
    assert_amr(g2.access_token, "pwd,otp");
    assert_int_equal(info(f, a.user).live_sessions, 1);
    assert_int_equal(info(f, a.user).failures, 0);

    /* The ticket is used up, whatever code comes with it. */
    assert_status(complete(f, t, MFA_TOTP, next, NULL, NULL).status, SVC_INVALID_GRANT);
    assert_status(mfa_ticket_peek(&f->app, t, strlen(t), &u, &amr).status, SVC_INVALID_GRANT);

    /* The same code again, with a new login and a new ticket: a replay. */
    char t2[MFA_TICKET_LEN + 1];
    login_ticket(f, a.user, a.pw, t2);
    assert_string_not_equal(t2, t);
    struct svc_result r = complete(f, t2, MFA_TOTP, code, NULL, NULL);
    assert_status(r.status, SVC_BAD_SECOND_FACTOR);
    assert_non_null(r.detail);
    /* The ticket outlives one wrong code; the next step's code (not spent
     * by the refused ticket above) finishes it. */
    assert_status(complete(f, t2, MFA_TOTP, next, NULL, NULL).status, SVC_OK);
    assert_int_equal(info(f, a.user).live_sessions, 2);
    assert_int_equal(info(f, a.user).failures, 0);
    svc_grant_clear(&g);
    svc_grant_clear(&g2);
}

static void test_mfa_totp_window(void **state)
{
    struct fx *f = *state;
    struct mfa_acct a;
    mfa_user(f, &a, "wanda", "wanda's long passphrase");
    /* Three steps on: every step of the window is later than the one that
     * confirmed the factor, so nothing below is refused as a replay. */
    int64_t s = clock_to_step(2);
    assert_true(s - 2 > a.confirmed_step);
    char w[3][7], c[7];
    for (int k = -1; k <= 1; k++)
        code_at(&a, s + k, w[k + 1]);
    char t[MFA_TICKET_LEN + 1];
    login_ticket(f, a.user, a.pw, t);
    /* Two steps either side: out of the window (unless the code happens to
     * be one of the window's, one chance in 300 000). */
    for (int d = -2; d <= 2; d += 4) {
        assert_status(accounts_unlock(&f->app, &f->oper, a.user).status, SVC_OK);
        code_at(&a, s + d, c);
        if (strcmp(c, w[0]) && strcmp(c, w[1]) && strcmp(c, w[2]))
            assert_status(complete(f, t, MFA_TOTP, c, NULL, NULL).status,
                          SVC_BAD_SECOND_FACTOR);
    }
    /* One step back (a phone whose clock is slow): accepted. */
    struct session_grant g;
    assert_status(complete(f, t, MFA_TOTP, w[0], &g, NULL).status, SVC_OK);
    assert_amr(g.access_token, "pwd,otp");
    svc_grant_clear(&g);
    /* One step ahead (a fast one): accepted, on a new ticket. */
    login_ticket(f, a.user, a.pw, t);
    assert_status(complete(f, t, MFA_TOTP, w[2], NULL, NULL).status, SVC_OK);
    /* Now the current step's code is older than the last one accepted. */
    login_ticket(f, a.user, a.pw, t);
    assert_status(complete(f, t, MFA_TOTP, w[1], NULL, NULL).status, SVC_BAD_SECOND_FACTOR);
    /* A step later the window has moved: s + 2 is in it and accepted. */
    int64_t s2 = clock_to_step(0);
    assert_int_equal(s2, s + 1);
    code_at(&a, s + 2, c);
    assert_status(complete(f, t, MFA_TOTP, c, NULL, NULL).status, SVC_OK);
    assert_int_equal(info(f, a.user).live_sessions, 3);
}

static void test_mfa_ticket_single_use_and_expiry(void **state)
{
    struct fx *f = *state;
    struct mfa_acct a;
    mfa_user(f, &a, "xenia", "xenia's long passphrase");
    set(&f->cfg, "JWTD_MFA_TICKET_TTL", "90s");
    assert_int_equal(f->cfg.mfa_ticket_ttl, 90);
    int64_t s = clock_to_step(0);
    char t[MFA_TICKET_LEN + 1], code[7];
    code_at(&a, s, code);
    login_ticket(f, a.user, a.pw, t);

    /* What is not a ticket: refused as one, the code not looked at. */
    char altered[MFA_TICKET_LEN + 1];
    memcpy(altered, t, sizeof altered);
    altered[10] = altered[10] == 'A' ? 'B' : 'A';
    char longer[MFA_TICKET_LEN + 2];
    snprintf(longer, sizeof longer, "%sA", t);
    const char *junk[] = {"", "x", altered, longer, "mfa:not-a-ticket"};
    for (size_t i = 0; i < sizeof junk / sizeof junk[0]; i++) {
        struct svc_result r = complete(f, junk[i], MFA_TOTP, code, NULL, NULL);
        if (r.status != SVC_INVALID_GRANT)
            fail_msg("ticket '%s': %s", junk[i], svc_status_name(r.status));
    }
    assert_int_equal(info(f, a.user).failures, 0); /* a right password is no failure */

    /* 2 s before the end of its 90 s the ticket is good... */
    struct store_user u = {0};
    clock_set(g_clock_offset_ms + 88 * 1000);
    assert_status(mfa_ticket_peek(&f->app, t, strlen(t), &u, NULL).status, SVC_OK);
    assert_string_equal(u.id, a.id);
    store_user_clear(&u);
    /* ...at the end it is not, even with the right code of the moment. */
    clock_set(g_clock_offset_ms + 2 * 1000);
    int64_t s2 = util_now() / 30;
    assert_int_equal(s2, s + 3);
    code_at(&a, s2, code);
    assert_status(complete(f, t, MFA_TOTP, code, NULL, NULL).status, SVC_INVALID_GRANT);
    assert_status(mfa_ticket_peek(&f->app, t, strlen(t), &u, NULL).status, SVC_INVALID_GRANT);

    /* That code was not spent: a new login's ticket takes it, once. */
    login_ticket(f, a.user, a.pw, t);
    assert_status(complete(f, t, MFA_TOTP, code, NULL, NULL).status, SVC_OK);
    code_at(&a, s2 + 1, code);
    assert_status(complete(f, t, MFA_TOTP, code, NULL, NULL).status, SVC_INVALID_GRANT);
    /* A used ticket does not come back with the clock either. */
    clock_set(g_clock_offset_ms - 60 * 1000);
    assert_status(mfa_ticket_peek(&f->app, t, strlen(t), &u, NULL).status, SVC_INVALID_GRANT);
    assert_int_equal(info(f, a.user).live_sessions, 1);
}

static void test_mfa_ticket_account_changes(void **state)
{
    struct fx *f = *state;
    struct mfa_acct a;
    mfa_user(f, &a, "edgar", "edgar's long passphrase");
    int64_t s = clock_to_step(0);
    char code[7], t[MFA_TICKET_LEN + 1];
    code_at(&a, s, code);
    login_ticket(f, a.user, a.pw, t);
    /* Disabled between the two steps: the second one opens no session,
     * and the ticket is spent like any other - but not the factor (a
     * recovery code stays unused; see test_mfa_recovery_code_kept_when_disabled). */
    int revoked = -1;
    assert_status(accounts_set_disabled(&f->app, &f->oper, a.user, true, &revoked).status,
                  SVC_OK);
    assert_status(complete(f, t, MFA_TOTP, code, NULL, NULL).status, SVC_ACCOUNT_DISABLED);
    assert_int_equal(info(f, a.user).live_sessions, 0);
    assert_status(accounts_set_disabled(&f->app, &f->oper, a.user, false, &revoked).status,
                  SVC_OK);
    code_at(&a, s + 1, code);
    assert_status(complete(f, t, MFA_TOTP, code, NULL, NULL).status, SVC_INVALID_GRANT);
    /* Deleted between the two steps: the ticket stands for nobody. */
    login_ticket(f, a.user, a.pw, t);
    assert_status(accounts_delete(&f->app, &f->oper, a.user).status, SVC_OK);
    assert_status(complete(f, t, MFA_TOTP, code, NULL, NULL).status, SVC_INVALID_GRANT);
    struct store_user u = {0};
    assert_status(mfa_ticket_peek(&f->app, t, strlen(t), &u, NULL).status, SVC_INVALID_GRANT);
    struct mfa_step st;
    assert_status(mfa_step_begin(&f->app, &f->client, t, strlen(t), &st).status,
                  SVC_INVALID_GRANT);
    mfa_step_end(&f->app, &st);
}

/* A TOTP account and a ticket of its password step. */
static void mfa_user_at_second_step(struct fx *f, struct mfa_acct *a, const char *name,
                                    const char *pw, char t[MFA_TICKET_LEN + 1])
{
    mfa_user(f, a, name, pw);
    login_ticket(f, a->user, a->pw, t);
}

static void test_mfa_recovery_code_kept_when_disabled(void **state)
{
    struct fx *f = *state;
    struct mfa_acct a;
    char t[MFA_TICKET_LEN + 1];
    mfa_user_at_second_step(f, &a, "konrad", "konrad's long passphrase", t);
    int revoked = -1;
    assert_status(accounts_set_disabled(&f->app, &f->oper, a.user, true, &revoked).status,
                  SVC_OK);
    /* Refused before the code is looked at: the code stays unused. */
    assert_status(complete(f, t, MFA_RECOVERY, a.codes[0], NULL, NULL).status,
                  SVC_ACCOUNT_DISABLED);
    assert_int_equal(status_of(f, &a.who).left, MFA_RECOVERY_CODES);
    assert_status(accounts_set_disabled(&f->app, &f->oper, a.user, false, &revoked).status,
                  SVC_OK);
    login_ticket(f, a.user, a.pw, t);
    assert_status(complete(f, t, MFA_RECOVERY, a.codes[0], NULL, NULL).status, SVC_OK);
    assert_int_equal(status_of(f, &a.who).left, MFA_RECOVERY_CODES - 1);
}

/* A ticket stands for the password it was given for: a password set in
 * between (an operator, a reset, a change elsewhere) voids it. */
static void test_mfa_ticket_void_after_password_change(void **state)
{
    struct fx *f = *state;
    struct mfa_acct a;
    char t[MFA_TICKET_LEN + 1];
    mfa_user_at_second_step(f, &a, "petra", "petra's long passphrase", t);
    const char *np = "petra's new long passphrase";
    struct svc_op *op = accounts_set_password(&f->app, &f->oper, "petra", np, strlen(np));
    assert_status(op->res.status, SVC_OK);
    svc_op_run(op);
    assert_status(op->res.status, SVC_OK);
    svc_op_free(op);
    assert_status(complete(f, t, MFA_RECOVERY, a.codes[0], NULL, NULL).status, SVC_INVALID_GRANT);
    assert_int_equal(status_of(f, &a.who).left, MFA_RECOVERY_CODES); /* nothing spent */
    /* A ticket of the new password works. */
    login_ticket(f, a.user, np, t);
    assert_status(complete(f, t, MFA_RECOVERY, a.codes[0], NULL, NULL).status, SVC_OK);
}

/* Recovery codes are kept as HMACs under the mail key; codes made before
 * (kept as plain SHA-256 of "user id:code") still work, once. */
static void test_mfa_legacy_recovery_codes_still_work(void **state)
{
    struct fx *f = *state;
    struct mfa_acct a;
    char t[MFA_TICKET_LEN + 1];
    mfa_user_at_second_step(f, &a, "leonie", "leonie's long passphrase", t);
    /* The codes as an older jwtd stored them. */
    static const char *const old_codes[] = {"abcde-fghjk", "mnpqr-stuvw"};
    char hashes[2][SHA256_HEX_LEN];
    for (int i = 0; i < 2; i++) {
        char msg[96], norm[16];
        snprintf(norm, sizeof norm, "%.5s%.5s", old_codes[i], old_codes[i] + 6);
        int n = snprintf(msg, sizeof msg, "%s:%s", a.id, norm);
        uint8_t d[32];
        unsigned int dl = 0;
        assert_true(EVP_Digest(msg, (size_t)n, d, &dl, EVP_sha256(), NULL));
        util_hex(d, 32, hashes[i]);
    }
    assert_int_equal(store_recovery_codes_put(f->app.store, a.id, hashes, 2), STORE_OK);
    assert_int_equal(status_of(f, &a.who).left, 2);
    assert_status(complete(f, t, MFA_RECOVERY, "ABCDE-FGHJK", NULL, NULL).status, SVC_OK);
    assert_int_equal(status_of(f, &a.who).left, 1);
    login_ticket(f, a.user, a.pw, t);
    assert_status(complete(f, t, MFA_RECOVERY, old_codes[0], NULL, NULL).status,
                  SVC_BAD_SECOND_FACTOR);
    /* The codes shown at enrolment were replaced by the two above. */
    assert_status(complete(f, t, MFA_RECOVERY, a.codes[0], NULL, NULL).status,
                  SVC_BAD_SECOND_FACTOR);
}

/* One try at a time: a try holds the ticket while its factor is checked,
 * and another try with it meanwhile is refused whatever its code, even the
 * right one, without spending it (what parallel guesses would need to get
 * more codes checked, or a recovery code spent beside a TOTP code that
 * wins). A try that reaches no verdict (storage failed) gives it back. */
static void test_mfa_ticket_one_try_at_a_time(void **state)
{
    struct fx *f = *state;
    struct mfa_acct a;
    char t[MFA_TICKET_LEN + 1];
    mfa_user_at_second_step(f, &a, "quinn", "quinn's long passphrase", t);
    struct mfa_step held, other;
    assert_status(mfa_step_begin(&f->app, &f->client, t, strlen(t), &held).status, SVC_OK);
    assert_string_equal(held.user.username, "quinn");
    assert_status(mfa_step_begin(&f->app, &f->client, t, strlen(t), &other).status,
                  SVC_INVALID_GRANT);
    mfa_step_end(&f->app, &other);
    int64_t s = clock_to_step(0);
    char good[7];
    code_at(&a, s, good);
    assert_status(complete(f, t, MFA_RECOVERY, a.codes[0], NULL, NULL).status, SVC_INVALID_GRANT);
    assert_int_equal(status_of(f, &a.who).left, MFA_RECOVERY_CODES); /* not spent */
    assert_status(complete(f, t, MFA_TOTP, good, NULL, NULL).status, SVC_INVALID_GRANT);
    mfa_step_end(&f->app, &held); /* no verdict: the ticket is back, untried */
    /* Neither the try without a verdict nor those refused while it was
     * held counted: four wrong codes still leave the fifth try. */
    char wrong[7];
    not_a_code(&a, s, wrong);
    for (int i = 0; i < 4; i++)
        assert_status(complete(f, t, MFA_TOTP, wrong, NULL, NULL).status, SVC_BAD_SECOND_FACTOR);
    assert_status(complete(f, t, MFA_TOTP, good, NULL, NULL).status, SVC_OK);
    assert_status(complete(f, t, MFA_TOTP, good, NULL, NULL).status, SVC_INVALID_GRANT);
}

/* The second step waits out the login back-off whatever the factor (a
 * passkey's too: mfa_step_begin is the gate of both). */
static void test_mfa_second_step_waits_for_the_back_off(void **state)
{
    struct fx *f = *state;
    struct mfa_acct a;
    char t[MFA_TICKET_LEN + 1];
    mfa_user_at_second_step(f, &a, "blanca", "blanca's long passphrase", t);
    int64_t s = clock_to_step(0);
    char good[7];
    code_at(&a, s, good);
    set(&f->cfg, "JWTD_LOGIN_MAX_FAILURES", "3");
    for (int i = 0; i < 3; i++)
        assert_status(login(f, a.user, "not blanca's", NULL, NULL).status, SVC_BAD_CREDENTIALS);
    struct mfa_step st;
    assert_status(mfa_step_begin(&f->app, &f->client, t, strlen(t), &st).status, SVC_LIMITED);
    mfa_step_end(&f->app, &st);
    assert_status(complete(f, t, MFA_TOTP, good, NULL, NULL).status, SVC_LIMITED);
    assert_status(accounts_unlock(&f->app, &f->oper, a.user).status, SVC_OK);
    assert_status(complete(f, t, MFA_TOTP, good, NULL, NULL).status, SVC_OK);
}

/* An authenticator set-up waits MFA_ENROLMENT_TTL for its first code; with
 * none started (or one expired) there is nothing to confirm: 404, not a
 * wrong code. */
static void test_mfa_enrolment_expires(void **state)
{
    struct fx *f = *state;
    struct mfa_acct a;
    set(&f->cfg, "JWTD_LOGIN_MAX_FAILURES", "100");
    char id[UUID_STR_LEN];
    must_signup(f, "esme", "esme's long passphrase", id);
    acct_init(&a, "esme", "esme's long passphrase", id);
    json_t *codes = NULL;
    assert_status(mfa_totp_confirm(&f->app, &f->client, &a.who, "123456", 6, &codes).status,
                  SVC_NOT_FOUND);
    enrol_start(f, &a);
    clock_set(g_clock_offset_ms + (MFA_ENROLMENT_TTL - 40) * 1000);
    assert_true(status_of(f, &a.who).pending);
    clock_set(g_clock_offset_ms + 40 * 1000);
    int64_t s = clock_to_step(0);
    char good[7];
    code_at(&a, s, good);
    assert_false(status_of(f, &a.who).pending);
    assert_status(mfa_totp_confirm(&f->app, &f->client, &a.who, good, 6, &codes).status,
                  SVC_NOT_FOUND);
    assert_null(codes);
    assert_false(status_of(f, &a.who).totp);
    /* Started again, confirmed in time. */
    enrol_start(f, &a);
    code_at(&a, s, good);
    assert_status(mfa_totp_confirm(&f->app, &f->client, &a.who, good, 6, &codes).status, SVC_OK);
    take_codes(&a, codes);
    json_decref(codes);
    assert_true(status_of(f, &a.who).totp);
}

static void test_mfa_ticket_burned_by_wrong_codes(void **state)
{
    struct fx *f = *state;
    struct mfa_acct a;
    mfa_user(f, &a, "yusuf", "yusuf's long passphrase");
    int64_t s = clock_to_step(0);
    char good[7], wrong[7];
    code_at(&a, s, good);
    not_a_code(&a, s, wrong);
    char t[MFA_TICKET_LEN + 1];
    login_ticket(f, a.user, a.pw, t);
    /* Four wrong codes: the ticket lives on. */
    for (int i = 1; i < 5; i++) {
        struct svc_result r = complete(f, t, MFA_TOTP, wrong, NULL, NULL);
        assert_status(r.status, SVC_BAD_SECOND_FACTOR);
        assert_false(has(r.detail, "too many"));
        assert_status(mfa_ticket_peek(&f->app, t, strlen(t), &(struct store_user){0}, NULL).status,
                      SVC_OK);
    }
    /* The fifth (TICKET_MAX_ATTEMPTS) burns it: the right code comes too
     * late. */
    struct svc_result r = complete(f, t, MFA_TOTP, wrong, NULL, NULL);
    assert_status(r.status, SVC_BAD_SECOND_FACTOR);
    assert_true(has(r.detail, "too many tries"));
    assert_status(complete(f, t, MFA_TOTP, good, NULL, NULL).status, SVC_INVALID_GRANT);
    struct store_user u = {0};
    assert_status(mfa_ticket_peek(&f->app, t, strlen(t), &u, NULL).status, SVC_INVALID_GRANT);
    /* Each wrong code counted against the account as well (the right
     * password's step did not). */
    assert_int_equal(info(f, a.user).failures, 5);

    /* A new ticket: the right code (not spent on the burned one) works and
     * clears the count. */
    login_ticket(f, a.user, a.pw, t);
    assert_status(complete(f, t, MFA_TOTP, good, NULL, NULL).status, SVC_OK);
    assert_int_equal(info(f, a.user).failures, 0);

    /* Wrong recovery codes count on the ticket the same way. */
    login_ticket(f, a.user, a.pw, t);
    for (int i = 1; i <= 5; i++) {
        r = complete(f, t, MFA_RECOVERY, "aaaaa-aaaaa", NULL, NULL);
        assert_status(r.status, SVC_BAD_SECOND_FACTOR);
        assert_int_equal(has(r.detail, "too many tries"), i == 5);
    }
    assert_status(complete(f, t, MFA_RECOVERY, a.codes[0], NULL, NULL).status,
                  SVC_INVALID_GRANT);
    assert_int_equal(status_of(f, &a.who).left, MFA_RECOVERY_CODES); /* not spent */
}

static void test_mfa_second_step_backoff(void **state)
{
    struct fx *f = *state;
    struct mfa_acct a;
    mfa_user(f, &a, "zelda", "zelda's long passphrase");
    set(&f->cfg, "JWTD_LOGIN_MAX_FAILURES", "3"); /* the fixture's: then 60 s */
    int64_t s = clock_to_step(0);
    char good[7], wrong[7];
    code_at(&a, s, good);
    not_a_code(&a, s, wrong);
    char t[MFA_TICKET_LEN + 1];
    login_ticket(f, a.user, a.pw, t);
    assert_int_equal(info(f, a.user).failures, 0);
    for (int i = 0; i < 3; i++)
        assert_status(complete(f, t, MFA_TOTP, wrong, NULL, NULL).status, SVC_BAD_SECOND_FACTOR);
    /* The third failure of the account started the back-off: the right
     * code is refused before it is looked at, and so is the password. */
    struct account_info ai = info(f, a.user);
    assert_int_equal(ai.failures, 3);
    assert_true(ai.blocked_until_ms > util_now_ms() + 59000);
    struct svc_result r = complete(f, t, MFA_TOTP, good, NULL, NULL);
    assert_status(r.status, SVC_LIMITED);
    assert_true(r.retry_after > 0 && r.retry_after <= 60);
    struct svc_op *op = start_login(f, a.user, a.pw);
    assert_status(op->res.status, SVC_LIMITED);
    svc_op_free(op);
    assert_int_equal(info(f, a.user).failures, 3); /* refused attempts are not counted */

    /* After the back-off the same ticket (three wrong codes on it, within
     * its five minutes) takes a code of the moment, and the count is
     * cleared. */
    int64_t s2 = clock_to_step(2);
    assert_true(util_now_ms() > ai.blocked_until_ms);
    code_at(&a, s2, good);
    assert_status(complete(f, t, MFA_TOTP, good, NULL, NULL).status, SVC_OK);
    ai = info(f, a.user);
    assert_int_equal(ai.failures, 0);
    assert_int_equal(ai.blocked_until_ms, 0);

    /* A stranger's wrong passwords block the account for 60 s, then 120 s;
     * the user who waits it out gets in: the right password does not
     * extend the block that gates its own second step. */
    for (int i = 0; i < 3; i++)
        assert_status(login(f, a.user, "not zelda's passphrase", NULL, NULL).status,
                      SVC_BAD_CREDENTIALS);
    clock_set(g_clock_offset_ms + 61 * 1000);
    assert_status(login(f, a.user, "still not zelda's", NULL, NULL).status, SVC_BAD_CREDENTIALS);
    ai = info(f, a.user);
    assert_int_equal(ai.failures, 4);
    clock_set(g_clock_offset_ms + (ai.blocked_until_ms - util_now_ms()) + 1000);
    login_ticket(f, a.user, a.pw, t);
    ai = info(f, a.user);
    assert_int_equal(ai.failures, 4);
    assert_true(ai.blocked_until_ms <= util_now_ms());
    code_at(&a, util_now() / 30, good);
    assert_status(complete(f, t, MFA_TOTP, good, NULL, NULL).status, SVC_OK);
    assert_int_equal(info(f, a.user).failures, 0);
}

static void test_mfa_recovery_codes(void **state)
{
    struct fx *f = *state;
    struct mfa_acct a;
    mfa_user(f, &a, "amelie", "amelie's long passphrase");
    char t[MFA_TICKET_LEN + 1];
    login_ticket(f, a.user, a.pw, t);
    /* Typed in capitals without the dash: the same code (mfa.c ignores
     * case, spaces and dashes). It opens a session like a TOTP code. */
    char typed[16];
    size_t n = 0;
    for (const char *p = a.codes[0]; *p; p++)
        if (*p != '-')
            typed[n++] = (char)(*p >= 'a' && *p <= 'z' ? *p - 32 : *p);
    typed[n] = '\0';
    struct session_grant g;
    assert_status(complete(f, t, MFA_RECOVERY, typed, &g, NULL).status, SVC_OK);
    assert_amr(g.access_token, "pwd,otp");
    svc_grant_clear(&g);
    assert_int_equal(status_of(f, &a.who).left, MFA_RECOVERY_CODES - 1);

    /* Once only: as shown, on a new ticket, it is refused. */
    login_ticket(f, a.user, a.pw, t);
    assert_status(complete(f, t, MFA_RECOVERY, a.codes[0], NULL, NULL).status,
                  SVC_BAD_SECOND_FACTOR);
    /* Another, spaced instead of dashed: accepted. */
    char spaced[16];
    snprintf(spaced, sizeof spaced, "%.5s %.5s", a.codes[1], a.codes[1] + 6);
    assert_status(complete(f, t, MFA_RECOVERY, spaced, NULL, NULL).status, SVC_OK);
    assert_int_equal(status_of(f, &a.who).left, MFA_RECOVERY_CODES - 2);
    /* A recovery code is no TOTP code, nor the other way round; neither
     * refusal spends anything. */
    int64_t s = clock_to_step(0);
    char code[7];
    code_at(&a, s, code);
    login_ticket(f, a.user, a.pw, t);
    assert_status(complete(f, t, MFA_TOTP, a.codes[2], NULL, NULL).status, SVC_BAD_SECOND_FACTOR);
    assert_status(complete(f, t, MFA_RECOVERY, code, NULL, NULL).status, SVC_BAD_SECOND_FACTOR);
    assert_int_equal(status_of(f, &a.who).left, MFA_RECOVERY_CODES - 2);

    /* New codes: the password re-confirmed first. */
    json_t *data = NULL;
    assert_status(run_op(mfa_recovery_renew(&f->app, &f->client, &a.who, "not amelie's", 12),
                         &data),
                  SVC_WRONG_PASSWORD);
    assert_null(data);
    assert_int_equal(status_of(f, &a.who).left, MFA_RECOVERY_CODES - 2);
    assert_status(run_op(mfa_recovery_renew(&f->app, &f->client, &a.who, a.pw, strlen(a.pw)),
                         &data),
                  SVC_OK);
    struct mfa_acct renewed = a;
    take_codes(&renewed, json_object_get(data, "recovery_codes"));
    json_decref(data);
    for (int i = 0; i < MFA_RECOVERY_CODES; i++)
        for (int j = 0; j < MFA_RECOVERY_CODES; j++)
            assert_string_not_equal(renewed.codes[i], a.codes[j]);
    assert_int_equal(status_of(f, &a.who).left, MFA_RECOVERY_CODES);
    /* The old ones are void, used or not; the new ones work. */
    assert_status(complete(f, t, MFA_RECOVERY, a.codes[2], NULL, NULL).status,
                  SVC_BAD_SECOND_FACTOR);
    assert_status(complete(f, t, MFA_RECOVERY, renewed.codes[0], NULL, NULL).status, SVC_OK);

    /* Spend them all: then the login offers TOTP alone. */
    for (int i = 1; i < MFA_RECOVERY_CODES; i++) {
        assert_int_equal(login_ticket(f, a.user, a.pw, t), MFA_TOTP | MFA_RECOVERY);
        assert_status(complete(f, t, MFA_RECOVERY, renewed.codes[i], NULL, NULL).status, SVC_OK);
    }
    assert_int_equal(status_of(f, &a.who).left, 0);
    assert_int_equal(login_ticket(f, a.user, a.pw, t), MFA_TOTP);
    assert_status(complete(f, t, MFA_RECOVERY, renewed.codes[9], NULL, NULL).status,
                  SVC_BAD_SECOND_FACTOR);
    code_at(&a, clock_to_step(0), code);
    assert_status(complete(f, t, MFA_TOTP, code, NULL, NULL).status, SVC_OK);
}

static void test_mfa_totp_remove(void **state)
{
    struct fx *f = *state;
    struct mfa_acct a;
    mfa_user(f, &a, "bruno", "bruno's long passphrase");
    int64_t s = clock_to_step(0);
    char before[MFA_TICKET_LEN + 1], t[MFA_TICKET_LEN + 1];
    login_ticket(f, a.user, a.pw, before);

    /* A wrong password removes nothing. */
    assert_status(run_op(mfa_totp_remove(&f->app, &f->client, &a.who, "not bruno's", 11), NULL),
                  SVC_WRONG_PASSWORD);
    struct mfa_state st = status_of(f, &a.who);
    assert_true(st.totp);
    assert_int_equal(st.left, MFA_RECOVERY_CODES);
    assert_int_equal(login_ticket(f, a.user, a.pw, t), MFA_TOTP | MFA_RECOVERY);

    /* The right one: TOTP and recovery codes gone, logins in one step. */
    assert_status(run_op(mfa_totp_remove(&f->app, &f->client, &a.who, a.pw, strlen(a.pw)), NULL),
                  SVC_OK);
    st = status_of(f, &a.who);
    assert_false(st.totp);
    assert_false(st.pending);
    assert_int_equal(st.left, 0);
    struct session_grant g;
    assert_status(login(f, a.user, a.pw, &g, NULL).status, SVC_OK);
    assert_amr(g.access_token, "pwd");
    svc_grant_clear(&g);
    /* A ticket from before cannot be finished with a code any more. */
    char code[7];
    code_at(&a, s, code);
    assert_status(complete(f, before, MFA_TOTP, code, NULL, NULL).status, SVC_BAD_SECOND_FACTOR);
    assert_status(complete(f, before, MFA_RECOVERY, a.codes[0], NULL, NULL).status,
                  SVC_BAD_SECOND_FACTOR);
    /* No recovery codes without TOTP. */
    json_t *data = NULL;
    assert_status(run_op(mfa_recovery_renew(&f->app, &f->client, &a.who, a.pw, strlen(a.pw)),
                         &data),
                  SVC_NOT_FOUND);
    assert_null(data);
    /* It can be set up again, with a new secret. */
    struct mfa_acct again = a;
    enrol_start(f, &again);
    assert_memory_not_equal(again.secret, a.secret, 20);
    assert_true(status_of(f, &a.who).pending);
}

/* A passkey row as registration would leave it (the key is not looked at
 * by listing, removal or the ticket code). */
static void add_passkey(struct fx *f, const char *user_id, const char *id, const char *name,
                        int64_t created, bool synced)
{
    struct store_passkey p;
    memset(&p, 0, sizeof p);
    snprintf(p.id, sizeof p.id, "%s", id);
    snprintf(p.user_id, sizeof p.user_id, "%s", user_id);
    snprintf(p.public_key_hex, sizeof p.public_key_hex, "3059301306072a8648ce3d0201");
    p.alg = -7;
    snprintf(p.name, sizeof p.name, "%s", name);
    p.backup_eligible = synced;
    p.created_at = created;
    assert_int_equal(store_passkey_insert(f->app.store, &p, PASSKEYS_PER_ACCOUNT), STORE_OK);
}

static size_t passkeys_of(struct fx *f, const struct identity *who, json_t **ret)
{
    json_t *l = NULL;
    assert_status(passkeys_list(&f->app, who, &l).status, SVC_OK);
    assert_true(json_is_array(l));
    size_t n = json_array_size(l);
    if (ret)
        *ret = l;
    else
        json_decref(l);
    return n;
}

static void test_mfa_operator_reset(void **state)
{
    struct fx *f = *state;
    struct mfa_acct a;
    mfa_user(f, &a, "carmen", "carmen's long passphrase");
    add_passkey(f, a.id, "carmen-key", "Laptop", util_now(), false);
    char t[MFA_TICKET_LEN + 1];
    assert_int_equal(login_ticket(f, a.user, a.pw, t), MFA_TOTP | MFA_RECOVERY | MFA_PASSKEY);

    bool totp = false;
    int passkeys = -1, ended = -1;
    assert_status(mfa_operator_reset(&f->app, &f->oper, "nobody-here", &totp, &passkeys, &ended).status,
                  SVC_NOT_FOUND);
    assert_true(status_of(f, &a.who).totp);
    assert_status(mfa_operator_reset(&f->app, &f->oper, "CARMEN", &totp, &passkeys, &ended).status,
                  SVC_OK);
    assert_true(totp);
    assert_int_equal(passkeys, 1);
    struct mfa_state st = status_of(f, &a.who);
    assert_false(st.totp);
    assert_false(st.pending);
    assert_int_equal(st.left, 0);
    assert_int_equal(st.passkeys, 0);
    assert_int_equal(passkeys_of(f, &a.who, NULL), 0);
    /* The password stays, and is enough again. */
    struct session_grant g;
    assert_status(login(f, a.user, a.pw, &g, NULL).status, SVC_OK);
    assert_amr(g.access_token, "pwd");
    svc_grant_clear(&g);
    /* Nothing left: a second reset reports so; it ends the session just
     * opened (a lost device's sessions end with its factors). */
    totp = true;
    assert_status(mfa_operator_reset(&f->app, &f->oper, "carmen", &totp, &passkeys, &ended).status,
                  SVC_OK);
    assert_false(totp);
    assert_int_equal(passkeys, 0);
    assert_int_equal(ended, 1);

    /* A pending enrolment is no TOTP, and is cleared too. */
    char id[UUID_STR_LEN];
    must_signup(f, "dimitri", "dimitri's long passphrase", id);
    struct mfa_acct d;
    acct_init(&d, "dimitri", "dimitri's long passphrase", id);
    enrol_start(f, &d);
    assert_true(status_of(f, &d.who).pending);
    totp = true;
    assert_status(mfa_operator_reset(&f->app, &f->oper, "dimitri", &totp, &passkeys, &ended).status,
                  SVC_OK);
    assert_false(totp);
    assert_false(status_of(f, &d.who).pending);
}

static void test_passkeys_list_and_remove(void **state)
{
    struct fx *f = *state;
    char id[UUID_STR_LEN], other_id[UUID_STR_LEN];
    must_signup(f, "petra", "petra's long passphrase", id);
    must_signup(f, "quentin", "quentin's long passphrase", other_id);
    struct mfa_acct p, q;
    acct_init(&p, "petra", "petra's long passphrase", id);
    acct_init(&q, "quentin", "quentin's long passphrase", other_id);
    int64_t t0 = util_now();
    add_passkey(f, id, "cred-one", "Laptop", t0, false);
    add_passkey(f, id, "cred-two", "Phone", t0 + 10, true);
    add_passkey(f, other_id, "cred-other", "Other", t0, false);

    /* Listing: the caller's own, oldest first, as documented. */
    json_t *l = NULL;
    assert_int_equal(passkeys_of(f, &p.who, &l), 2);
    json_t *k0 = json_array_get(l, 0), *k1 = json_array_get(l, 1);
    assert_string_equal(json_string_value(json_object_get(k0, "id")), "cred-one");
    assert_string_equal(json_string_value(json_object_get(k0, "name")), "Laptop");
    char when[RFC3339_LEN];
    util_rfc3339(t0, when);
    assert_string_equal(json_string_value(json_object_get(k0, "created_at")), when);
    assert_true(json_is_null(json_object_get(k0, "last_used_at"))); /* never used */
    assert_true(json_is_false(json_object_get(k0, "synced")));
    assert_string_equal(json_string_value(json_object_get(k1, "id")), "cred-two");
    assert_true(json_is_true(json_object_get(k1, "synced")));
    json_decref(l);
    assert_int_equal(status_of(f, &p.who).passkeys, 2);

    /* A passkey alone is a second factor: the password gets a ticket. */
    char t[MFA_TICKET_LEN + 1];
    assert_int_equal(login_ticket(f, p.user, p.pw, t), MFA_PASSKEY);
    /* No TOTP to finish it with. */
    assert_status(complete(f, t, MFA_TOTP, "123456", NULL, NULL).status, SVC_BAD_SECOND_FACTOR);
    /* The ticket side of a passkey step (the assertion itself is
     * core/webauthn.c's): a refusal is counted and logged (the ticket back
     * for its next try), a success uses it up. */
    struct mfa_step st;
    assert_status(mfa_step_begin(&f->app, &f->client, t, strlen(t), &st).status, SVC_OK);
    assert_string_equal(st.user.id, id);
    assert_int_equal(st.held.attempts, 1); /* the wrong TOTP code above */
    struct svc_result r = mfa_step_fail(&f->app, &f->client, &st, "passkey");
    mfa_step_end(&f->app, &st);
    assert_status(r.status, SVC_BAD_SECOND_FACTOR);
    assert_string_equal(r.detail, "The passkey was refused.");
    struct store_user u = {0};
    struct session_grant g = {0};
    assert_status(mfa_step_begin(&f->app, &f->client, t, strlen(t), &st).status, SVC_OK);
    assert_int_equal(st.held.attempts, 2);
    assert_status(mfa_step_finish(&f->app, &f->client, &st, AMR_HWK, &u, &g).status, SVC_OK);
    mfa_step_end(&f->app, &st);
    assert_string_equal(u.id, id);
    assert_amr(g.access_token, "pwd,hwk");
    assert_true(access_ok(f, g.access_token, NULL));
    svc_grant_clear(&g);
    store_user_clear(&u);
    assert_status(mfa_step_begin(&f->app, &f->client, t, strlen(t), &st).status,
                  SVC_INVALID_GRANT);
    mfa_step_end(&f->app, &st);

    /* Removal re-confirms the password. */
    struct svc_op *op = passkeys_remove(&f->app, &f->client, &p.who, "cred-one", 8, "not it", 6);
    assert_non_null(op->slow);
    assert_status(run_op(op, NULL), SVC_WRONG_PASSWORD);
    assert_int_equal(passkeys_of(f, &p.who, NULL), 2);
    /* No id: refused at once. */
    op = passkeys_remove(&f->app, &f->client, &p.who, "", 0, p.pw, strlen(p.pw));
    assert_null(op->slow);
    assert_status(run_op(op, NULL), SVC_NOT_FOUND);
    /* Someone else's passkey: not the caller's to remove. */
    op = passkeys_remove(&f->app, &f->client, &p.who, "cred-other", 10, p.pw, strlen(p.pw));
    assert_status(run_op(op, NULL), SVC_NOT_FOUND);
    assert_int_equal(passkeys_of(f, &q.who, NULL), 1);
    /* The id is the idlen bytes given. */
    op = passkeys_remove(&f->app, &f->client, &p.who, "cred-one-and-more", 8, p.pw,
                         strlen(p.pw));
    assert_status(run_op(op, NULL), SVC_OK);
    assert_int_equal(passkeys_of(f, &p.who, &l), 1);
    assert_string_equal(json_string_value(json_object_get(json_array_get(l, 0), "id")),
                        "cred-two");
    json_decref(l);
    op = passkeys_remove(&f->app, &f->client, &p.who, "cred-one", 8, p.pw, strlen(p.pw));
    assert_status(run_op(op, NULL), SVC_NOT_FOUND); /* gone already */
    op = passkeys_remove(&f->app, &f->client, &p.who, "cred-two", 8, p.pw, strlen(p.pw));
    assert_status(run_op(op, NULL), SVC_OK);
    assert_int_equal(passkeys_of(f, &p.who, NULL), 0);
    /* Without one, the password is enough again; the other account keeps its own. */
    struct session_grant g2;
    assert_status(login(f, p.user, p.pw, &g2, NULL).status, SVC_OK);
    assert_amr(g2.access_token, "pwd");
    svc_grant_clear(&g2);
    assert_int_equal(login_ticket(f, q.user, q.pw, t), MFA_PASSKEY);
}

/* ------------------------------------------- unknown kid, slow storage --- */

/* Slow storage for the key ring: store_keys_list waits (at most 5 s) until
 * the test opens the gate. Every other primitive is the real backend's. */
static struct {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool open;
    int calls;
    const struct store_ops *real;
    struct store_ops gated;
} key_gate = {.lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER};

static enum store_rc gated_keys_list(struct store *st, store_key_cb cb, void *ctx)
{
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += 5;
    pthread_mutex_lock(&key_gate.lock);
    key_gate.calls++;
    pthread_cond_broadcast(&key_gate.cond);
    int rc = 0;
    while (!key_gate.open && rc != ETIMEDOUT)
        rc = pthread_cond_timedwait(&key_gate.cond, &key_gate.lock, &until);
    pthread_mutex_unlock(&key_gate.lock);
    return key_gate.real->keys_list(st, cb, ctx);
}

static void key_gate_set(bool open)
{
    pthread_mutex_lock(&key_gate.lock);
    key_gate.open = open;
    if (!open)
        key_gate.calls = 0;
    pthread_cond_broadcast(&key_gate.cond);
    pthread_mutex_unlock(&key_gate.lock);
}

static int key_gate_calls(void)
{
    pthread_mutex_lock(&key_gate.lock);
    int n = key_gate.calls;
    pthread_mutex_unlock(&key_gate.lock);
    return n;
}

/* The check of one token: its result, the reason, and how long it took. */
static bool timed_check(struct fx *f, const char *token, const char **reason, int64_t *ms)
{
    struct identity id;
    int64_t t0 = util_mono_ms();
    bool ok = access_check(&f->app, token, strlen(token), util_now(), &id, reason);
    *ms = util_mono_ms() - t0;
    return ok;
}

/* A token signed by a key this instance has not loaded: another instance
 * on the same storage rotated (`jwtd keys rotate --now`) and signed with
 * the new key. */
static char *token_of_another_instance(struct fx *f, const char *username)
{
    char err[256] = "", kid[KID_MAX + 1];
    struct keyring *other = keyring_new(&f->cfg, f->app.store);
    assert_non_null(other);
    if (!keyring_start(other, err, sizeof err) ||
        !keyring_rotate(other, true, kid, err, sizeof err))
        fail_msg("the other instance's ring: %s", err);
    struct store_user u = {0};
    assert_int_equal(store_user_by_name(f->app.store, username, &u), STORE_OK);
    char sid[UUID_STR_LEN], *token = NULL;
    assert_true(util_uuid7(sid));
    assert_int_equal(access_token_issue(other, &f->cfg, &u, sid, AMR_PWD, util_now(), &token),
                     JWTD_OK);
    store_user_clear(&u);
    keyring_free(other);
    return token;
}

/* unknown_kid_waits_on_storage: a token with a kid the ring does not have
 * is refused at once, even while the ring's storage hangs (the hot path
 * only asks the background thread to re-read it); once storage answers,
 * the key is picked up without the 1 h ring poll, within a second. */
static void test_unknown_kid_reloads_ring_in_background(void **state)
{
    struct fx *f = *state;
    set(&f->cfg, "JWTD_KEYRING_POLL", "1h"); /* only the request can explain a reload */
    must_signup(f, "ulrike", "ulrike's long passphrase", NULL);
    key_gate.real = f->app.store->ops;
    key_gate.gated = *key_gate.real;
    key_gate.gated.keys_list = gated_keys_list;
    key_gate_set(true);
    f->app.store->ops = &key_gate.gated;
    char *token = token_of_another_instance(f, "ulrike");
    assert_true(app_background_start(&f->app));

    key_gate_set(false); /* storage hangs from now on */
    const char *reason = NULL;
    int64_t ms = 0;
    assert_false(timed_check(f, token, &reason, &ms));
    assert_string_equal(reason, jwtd_strerror(JWTD_ERR_KID));
    assert_true(ms < 500); /* 5 s when the check waits for the ring query */
    for (int i = 0; i < 200 && key_gate_calls() == 0; i++)
        usleep(10 * 1000);
    assert_int_equal(key_gate_calls(), 1); /* the background thread asked storage */
    /* Asked again while that read hangs: refused at once, no second query. */
    assert_false(timed_check(f, token, &reason, &ms));
    assert_true(ms < 500);
    assert_int_equal(key_gate_calls(), 1);

    key_gate_set(true);
    int64_t t0 = util_mono_ms();
    bool ok = false;
    while (!ok && util_mono_ms() - t0 < 1000) {
        ok = timed_check(f, token, &reason, &ms);
        if (!ok)
            usleep(10 * 1000);
    }
    if (!ok)
        fail_msg("the new key's token still refused 1 s after storage answered: %s", reason);
    free(token);
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
        T(test_login_racing_disable_says_disabled),
        T(test_login_disabled_account),
        T(test_login_rehashes_imported_hashes),
        T(test_refresh_rotation_and_reuse),
        T(test_refresh_previous_after_interval_is_reuse),
        T(test_refresh_expiry),
        T(test_refresh_operator_logout),
        T(test_logout_with_refresh_token),
        cmocka_unit_test(test_logout_refresh_reach_table),
        T(test_unknown_kid_reloads_ring_in_background),
        cmocka_unit_test(test_refresh_decide_table),
        cmocka_unit_test(test_refresh_decide_outage_doubt),
        cmocka_unit_test(test_refresh_generation_never_wraps),
        T(test_username_is_exactly_ulen_bytes),
        T(test_change_password),
        T(test_operator_set_password),
        T(test_change_email_racing_password_change),
        T(test_delete_self),
        T(test_operator_delete),
        T(test_mfa_totp_enrol_confirm),
        T(test_mfa_login_with_totp),
        T(test_mfa_totp_window),
        T(test_mfa_ticket_single_use_and_expiry),
        T(test_mfa_ticket_account_changes),
        T(test_mfa_ticket_burned_by_wrong_codes),
        T(test_mfa_recovery_code_kept_when_disabled),
        T(test_mfa_ticket_one_try_at_a_time),
        T(test_mfa_second_step_waits_for_the_back_off),
        T(test_mfa_enrolment_expires),
        T(test_mfa_ticket_void_after_password_change),
        T(test_mfa_legacy_recovery_codes_still_work),
        T(test_mfa_second_step_backoff),
        T(test_mfa_recovery_codes),
        T(test_mfa_totp_remove),
        T(test_mfa_operator_reset),
        T(test_passkeys_list_and_remove),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    close(g_clock_fd);
    return rc;
}
