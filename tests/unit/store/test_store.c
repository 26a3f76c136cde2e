/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The storage layer (src/store/) against a real database, the same cases
 * on both backends: SQLite (a file in a fresh temporary directory per test,
 * removed afterwards) or, with JWTD_TEST_BACKEND=postgres, a fresh database
 * per test on the PostgreSQL server of JWTD_TEST_PG_URL (started by
 * scripts/test.sh; without it the program exits 77, which meson counts as
 * skipped). Covers users (case-
 * insensitive uniqueness, compare-and-set of the hash, password change and
 * deletion feeding the revocation feed), sessions (listing, revocation
 * scoped to the owner), the refresh rotation (every outcome, its
 * boundaries, and 50 threads racing one token), the sign-out with a refresh
 * token (what each outcome ends), secrets, signing keys,
 * counters and the login back-off, including their atomicity under threads.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "../unit_util.h"

#include <dirent.h>
#include <malloc.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sqlite3.h>
#include <stdatomic.h>

#include "base/util.h"
#include "core/sessions.h"
#include "store/store.h"

#define NOW INT64_C(1800000000)
#define NOW_MS (NOW * 1000)
#define DAY INT64_C(86400)
#define IDLE (30 * DAY)
#define ABSOLUTE (90 * DAY)
#define REUSE_MS INT64_C(10000)

struct fx {
    char dir[256];
    char path[300];
    char url[512];
    char pg_db[64]; /* the database made for this test (PostgreSQL) */
    struct store *s;
};

static bool on_postgres(void)
{
    const char *b = getenv("JWTD_TEST_BACKEND");
    return b && strcmp(b, "postgres") == 0;
}

#ifdef JWTD_HAVE_POSTGRES
#include <libpq-fe.h>

/* Run one statement on the server's maintenance connection. */
static void pg_admin(const char *sql)
{
    PGconn *pg = PQconnectdb(getenv("JWTD_TEST_PG_URL"));
    if (PQstatus(pg) != CONNECTION_OK)
        fail_msg("cannot connect to JWTD_TEST_PG_URL: %s", PQerrorMessage(pg));
    PGresult *res = PQexec(pg, sql);
    if (PQresultStatus(res) != PGRES_COMMAND_OK)
        fail_msg("%s: %s", sql, PQerrorMessage(pg));
    PQclear(res);
    PQfinish(pg);
}

static void pg_fresh_database(struct fx *f)
{
    uint8_t r[6];
    assert_true(util_random(r, sizeof r));
    snprintf(f->pg_db, sizeof f->pg_db, "jwtd_ut_%02x%02x%02x%02x%02x%02x", r[0], r[1], r[2],
             r[3], r[4], r[5]);
    char sql[128];
    snprintf(sql, sizeof sql, "CREATE DATABASE %s", f->pg_db);
    pg_admin(sql);
    const char *base = getenv("JWTD_TEST_PG_URL");
    const char *slash = strrchr(base, '/');
    assert_non_null(slash);
    snprintf(f->url, sizeof f->url, "%.*s/%s", (int)(slash - base), base, f->pg_db);
}

static void pg_drop_database(struct fx *f)
{
    char sql[128];
    snprintf(sql, sizeof sql, "DROP DATABASE IF EXISTS %s WITH (FORCE)", f->pg_db);
    pg_admin(sql);
}
#else
static void pg_fresh_database(struct fx *f)
{
    (void)f;
    fail_msg("built without PostgreSQL support");
}

static void pg_drop_database(struct fx *f)
{
    (void)f;
}
#endif

/* free() of jwtd's objects is wrapped (-Wl,--wrap=free): while g_free_scan
 * is set, every block freed is checked for that text (a secret that should
 * have been wiped first). */
void __real_free(void *p);
void __wrap_free(void *p);
static const char *g_free_scan;
static int g_free_scan_hits;

void __wrap_free(void *p)
{
    if (p && g_free_scan && memmem(p, malloc_usable_size(p), g_free_scan, strlen(g_free_scan)))
        g_free_scan_hits++;
    __real_free(p);
}

/* What the backend reports goes to stderr, next to the failing test. */
static void print_event(void *ctx, enum store_event ev, const char *detail)
{
    (void)ctx;
    if (ev != STORE_EV_NOTICE)
        fprintf(stderr, "store event %d: %s\n", (int)ev, detail);
}

static int fx_setup(void **state)
{
    struct fx *f = calloc(1, sizeof *f);
    assert_non_null(f);
    unit_tmpdir(f->dir, sizeof f->dir, "store");
    snprintf(f->path, sizeof f->path, "%s/jwtd.db", f->dir);
    if (on_postgres())
        pg_fresh_database(f);
    else
        snprintf(f->url, sizeof f->url, "sqlite:%s", f->path);
    char err[256] = "";
    struct store_options opt = {.sqlite_sync_full = true, .on_event = print_event};
    enum store_rc rc = store_open(f->url, &opt, &f->s, err, sizeof err);
    if (rc != STORE_OK)
        fail_msg("store_open: %s (%s)", store_rc_name(rc), err);
    /* A fresh database has no schema; read without making one. */
    int current = -1, latest = -1;
    assert_int_equal(store_schema_version(f->s, &current, &latest), STORE_OK);
    assert_int_equal(current, 0);
    assert_true(latest >= 1);
    assert_int_equal(store_schema_version(f->s, &current, &latest), STORE_OK);
    assert_int_equal(current, 0); /* reading made no schema table */
    assert_int_equal(store_migrate(f->s), STORE_OK);
    assert_int_equal(store_migrate(f->s), STORE_OK); /* idempotent */
    int after = -1;
    assert_int_equal(store_schema_version(f->s, &after, &latest), STORE_OK);
    assert_int_equal(after, latest);
    assert_int_equal(store_ping(f->s), STORE_OK);
    *state = f;
    return 0;
}

static int fx_teardown(void **state)
{
    struct fx *f = *state;
    store_close(f->s);
    if (f->pg_db[0])
        pg_drop_database(f);
    unit_rm_dir(f->dir);
    if (access(f->dir, F_OK) == 0)
        fail_msg("temporary directory %s left behind", f->dir);
    free(f);
    return 0;
}

/* ---- helpers ---- */

/* Open this thread's connection, one thread at a time: the races below are
 * between operations, not between 100 PostgreSQL backends starting at once
 * on two cores (which can take longer than the connect timeout). */
static enum store_rc warm_up(struct store *s)
{
    static pthread_mutex_t one_at_a_time = PTHREAD_MUTEX_INITIALIZER;
    pthread_mutex_lock(&one_at_a_time);
    enum store_rc rc = store_ping(s);
    pthread_mutex_unlock(&one_at_a_time);
    return rc;
}

static void mkuser(struct store *s, const char *name, const char *hash, char id[UUID_STR_LEN])
{
    struct store_user u = {0};
    assert_true(util_uuid7(u.id));
    snprintf(u.username, sizeof u.username, "%s", name);
    u.password_hash = (char *)hash;
    u.created_at = NOW - 1000;
    assert_int_equal(store_user_create(s, &u), STORE_OK);
    memcpy(id, u.id, UUID_STR_LEN);
}

static void mksess(struct store *s, const char *user_id, int64_t created, int64_t last_used,
                   int64_t expires, uint32_t gen, int64_t rotated_ms, char sid[UUID_STR_LEN])
{
    struct store_session ss = {0};
    assert_true(util_uuid7(ss.id));
    snprintf(ss.user_id, sizeof ss.user_id, "%s", user_id);
    ss.created_at = created;
    ss.last_used_at = last_used;
    ss.expires_at = expires;
    ss.refresh_gen = gen;
    ss.rotated_at_ms = rotated_ms;
    snprintf(ss.user_agent, sizeof ss.user_agent, "test-agent/1.0");
    snprintf(ss.client_addr, sizeof ss.client_addr, "192.0.2.7");
    assert_int_equal(store_session_create(s, &ss, NULL), STORE_OK);
    memcpy(sid, ss.id, UUID_STR_LEN);
}

/* A live session created at `created`, used at NOW - 10. */
static void mklive(struct store *s, const char *user_id, int64_t created, char sid[UUID_STR_LEN])
{
    mksess(s, user_id, created, NOW - 10, created + ABSOLUTE, 0, (NOW - 10) * 1000, sid);
}

struct sess_list {
    int n;
    char id[32][UUID_STR_LEN];
    uint32_t gen[32];
    char ua[32][USER_AGENT_MAX + 1];
};

static void sess_cb(void *ctx, const struct store_session *s)
{
    struct sess_list *l = ctx;
    if (l->n < 32) {
        snprintf(l->id[l->n], UUID_STR_LEN, "%s", s->id);
        l->gen[l->n] = s->refresh_gen;
        snprintf(l->ua[l->n], sizeof l->ua[0], "%s", s->user_agent);
    }
    l->n++;
}

static struct sess_list list_at(struct store *s, const char *user_id, int64_t now)
{
    struct sess_list l;
    memset(&l, 0, sizeof l);
    assert_int_equal(store_session_list(s, user_id, now, IDLE, sess_cb, &l), STORE_OK);
    return l;
}

static int list_find(const struct sess_list *l, const char *sid)
{
    for (int i = 0; i < l->n && i < 32; i++)
        if (strcmp(l->id[i], sid) == 0)
            return i;
    return -1;
}

struct rev_list {
    int n;
    char sid[64][UUID_STR_LEN];
    int64_t revoked_ms[64], expires_ms[64];
};

static void rev_cb(void *ctx, const char *sid, int64_t revoked_ms, int64_t expires_ms)
{
    struct rev_list *l = ctx;
    if (l->n < 64) {
        snprintf(l->sid[l->n], UUID_STR_LEN, "%s", sid);
        l->revoked_ms[l->n] = revoked_ms;
        l->expires_ms[l->n] = expires_ms;
    }
    l->n++;
}

static struct rev_list revs_since(struct store *s, int64_t since_ms)
{
    struct rev_list l;
    memset(&l, 0, sizeof l);
    assert_int_equal(store_revocations_since(s, since_ms, rev_cb, &l), STORE_OK);
    return l;
}

static int rev_find(const struct rev_list *l, const char *sid)
{
    for (int i = 0; i < l->n && i < 64; i++)
        if (strcmp(l->sid[i], sid) == 0)
            return i;
    return -1;
}

static struct refresh_policy policy_at(int64_t now_ms)
{
    struct refresh_policy p = {
        .now_ms = now_ms,
        .idle_ttl = IDLE,
        .reuse_interval_ms = REUSE_MS,
        .rev = {.now_ms = now_ms, .expires_ms = now_ms + 910 * 1000},
        .decide = sessions_refresh_decide,
    };
    return p;
}

static enum refresh_outcome do_refresh(struct store *s, const char *sid, uint32_t gen,
                                       int64_t now_ms, struct store_session *ret_sess,
                                       struct store_user *ret_user)
{
    struct refresh_policy p = policy_at(now_ms);
    enum refresh_outcome out = (enum refresh_outcome)-1;
    assert_int_equal(store_refresh(s, sid, gen, &p, &out, ret_sess, ret_user), STORE_OK);
    return out;
}

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

#define assert_outcome(got, want)                                                               \
    do {                                                                                        \
        enum refresh_outcome got_ = (got), want_ = (want);                                      \
        if (got_ != want_)                                                                      \
            fail_msg("refresh outcome %s, expected %s", outcome_name(got_), outcome_name(want_)); \
    } while (0)

/* ---- opening and migrations ---- */

static void test_open_and_migrate(void **state)
{
    struct fx *f = *state;
    char id[UUID_STR_LEN];
    mkuser(f->s, "persist", "$argon2id$h", id);
    assert_int_equal(store_migrate(f->s), STORE_OK);

    /* A second store on the same database: migrations already applied, data
     * kept. */
    char err[256] = "";
    struct store *s2 = NULL;
    assert_int_equal(store_open(f->url, NULL, &s2, err, sizeof err), STORE_OK);
    assert_int_equal(store_migrate(s2), STORE_OK);
    struct store_user u = {0};
    assert_int_equal(store_user_by_name(s2, "persist", &u), STORE_OK);
    assert_string_equal(u.id, id);
    store_user_clear(&u);
    assert_null(u.password_hash);
    store_close(s2);
    store_close(NULL);

    err[0] = '\0';
    struct store *bad = NULL;
    enum store_rc rc = store_open("sqlite:/nonexistent-jwtd-dir/x/jwtd.db", NULL, &bad, err,
                                  sizeof err);
    assert_int_not_equal(rc, STORE_OK);
    assert_non_null(strstr(err, "/nonexistent-jwtd-dir/x/jwtd.db"));
    err[0] = '\0';
    assert_int_equal(store_open("mysql://db/jwtd", NULL, &bad, err, sizeof err), STORE_ERROR);
    assert_true(err[0] != '\0');

    assert_string_equal(store_rc_name(STORE_OK), "ok");
    assert_string_equal(store_rc_name(STORE_CONFLICT), "conflict");
    assert_string_equal(store_key_state_name(KEY_CURRENT), "current");
}

/* ---- users ---- */

struct user_list {
    int n;
    char name[8][USERNAME_MAX + 1];
    char scheme[8][16];
    bool hash_present;
};

static void user_cb(void *ctx, const struct store_user *u, const char *scheme)
{
    struct user_list *l = ctx;
    if (l->n < 8) {
        snprintf(l->name[l->n], sizeof l->name[0], "%s", u->username);
        snprintf(l->scheme[l->n], sizeof l->scheme[0], "%s", scheme);
    }
    if (u->password_hash)
        l->hash_present = true;
    l->n++;
}

/* account_takeover_by_case: "ALICE" must not become a second account next to
 * "Alice", and looking either up finds the one account. */
static void test_users_case_insensitive(void **state)
{
    struct fx *f = *state;
    struct store *s = f->s;
    char id[UUID_STR_LEN];
    mkuser(s, "Alice", "$argon2id$v=19$m=19456,t=2,p=1$salt$hash", id);

    struct store_user dup = {0};
    assert_true(util_uuid7(dup.id));
    snprintf(dup.username, sizeof dup.username, "ALICE");
    dup.password_hash = "$argon2id$other";
    dup.created_at = NOW;
    assert_int_equal(store_user_create(s, &dup), STORE_CONFLICT);
    snprintf(dup.username, sizeof dup.username, "alice");
    assert_int_equal(store_user_create(s, &dup), STORE_CONFLICT);
    /* The same id under another name. */
    memcpy(dup.id, id, sizeof dup.id);
    snprintf(dup.username, sizeof dup.username, "carol");
    assert_int_equal(store_user_create(s, &dup), STORE_CONFLICT);

    struct store_user u = {0};
    assert_int_equal(store_user_by_name(s, "aLiCe", &u), STORE_OK);
    assert_string_equal(u.id, id);
    assert_string_equal(u.username, "Alice"); /* kept as typed */
    assert_string_equal(u.password_hash, "$argon2id$v=19$m=19456,t=2,p=1$salt$hash");
    assert_int_equal(u.created_at, NOW - 1000);
    store_user_clear(&u);

    assert_int_equal(store_user_by_id(s, id, &u), STORE_OK);
    assert_string_equal(u.username, "Alice");
    assert_non_null(u.password_hash);
    store_user_clear(&u);

    struct store_user none = {0};
    assert_int_equal(store_user_by_name(s, "bob", &none), STORE_NOT_FOUND);
    assert_int_equal(store_user_by_name(s, "Alic", &none), STORE_NOT_FOUND);
    assert_int_equal(store_user_by_name(s, "Alice2", &none), STORE_NOT_FOUND);
    assert_int_equal(store_user_by_id(s, "018f0000-0000-7000-8000-000000000000", &none),
                     STORE_NOT_FOUND);
    assert_null(none.password_hash);

    char bob[UUID_STR_LEN];
    mkuser(s, "bob", "$2b$10$abcdefghijklmnopqrstuu5s2v8.iXieOjg/.AySBTTZIIVFJeBui", bob);
    struct user_list l;
    memset(&l, 0, sizeof l);
    assert_int_equal(store_user_list(s, user_cb, &l), STORE_OK);
    assert_int_equal(l.n, 2);
    assert_false(l.hash_present); /* lists never carry hashes */
    for (int i = 0; i < 2; i++) {
        if (strcmp(l.name[i], "Alice") == 0)
            assert_string_equal(l.scheme[i], "argon2id");
        else if (strcmp(l.name[i], "bob") == 0)
            assert_string_equal(l.scheme[i], "bcrypt");
        else
            fail_msg("unexpected user %s", l.name[i]);
    }
}

static void test_user_set_hash_compare_and_set(void **state)
{
    struct fx *f = *state;
    struct store *s = f->s;
    char id[UUID_STR_LEN];
    mkuser(s, "dave", "$old", id);
    struct store_user u = {0};

    assert_int_equal(store_user_set_hash(s, id, "$wrong", "$new"), STORE_NOT_FOUND);
    assert_int_equal(store_user_by_id(s, id, &u), STORE_OK);
    assert_string_equal(u.password_hash, "$old");
    store_user_clear(&u);

    assert_int_equal(store_user_set_hash(s, id, "$old", "$new"), STORE_OK);
    assert_int_equal(store_user_by_id(s, id, &u), STORE_OK);
    assert_string_equal(u.password_hash, "$new");
    store_user_clear(&u);

    /* A second re-hash based on the old hash lost the race. */
    assert_int_equal(store_user_set_hash(s, id, "$old", "$newer"), STORE_NOT_FOUND);
    assert_int_equal(store_user_by_id(s, id, &u), STORE_OK);
    assert_string_equal(u.password_hash, "$new");
    store_user_clear(&u);

    assert_int_equal(store_user_set_hash(s, id, NULL, "$any"), STORE_OK);
    assert_int_equal(store_user_by_id(s, id, &u), STORE_OK);
    assert_string_equal(u.password_hash, "$any");
    store_user_clear(&u);

    assert_int_equal(store_user_set_hash(s, "018f0000-0000-7000-8000-000000000000", NULL,
                                "$x"),
                     STORE_NOT_FOUND);
}

static void test_change_password_revokes_other_sessions(void **state)
{
    struct fx *f = *state;
    struct store *s = f->s;
    char uid[UUID_STR_LEN], other[UUID_STR_LEN];
    mkuser(s, "erin", "$old", uid);
    mkuser(s, "frank", "$f", other);
    char a[UUID_STR_LEN], b[UUID_STR_LEN], c[UUID_STR_LEN], z[UUID_STR_LEN];
    mklive(s, uid, NOW - 300, a);
    mklive(s, uid, NOW - 200, b);
    mklive(s, uid, NOW - 100, c);
    mklive(s, other, NOW - 100, z);

    struct revocation rev = {.now_ms = NOW_MS + 5, .expires_ms = NOW_MS + 910000};
    int n = -1;
    /* Compare-and-set: with a hash that is not the stored one, nothing. */
    assert_int_equal(store_user_change_password(s, uid, "$not-it", "$new", a, &rev, &n),
                     STORE_NOT_FOUND);
    assert_int_equal(list_at(s, uid, NOW).n, 3);
    assert_int_equal(revs_since(s, NOW_MS).n, 0);
    assert_int_equal(store_user_change_password(s, uid, "$old", "$new", a, &rev, &n), STORE_OK);
    assert_int_equal(n, 2);

    struct store_user u = {0};
    assert_int_equal(store_user_by_id(s, uid, &u), STORE_OK);
    assert_string_equal(u.password_hash, "$new");
    store_user_clear(&u);

    struct sess_list l = list_at(s, uid, NOW);
    assert_int_equal(l.n, 1);
    assert_string_equal(l.id[0], a);
    l = list_at(s, other, NOW);
    assert_int_equal(l.n, 1);

    struct rev_list r = revs_since(s, NOW_MS);
    assert_int_equal(r.n, 2);
    int ib = rev_find(&r, b), ic = rev_find(&r, c);
    assert_true(ib >= 0 && ic >= 0);
    assert_int_equal(r.revoked_ms[ib], rev.now_ms);
    assert_int_equal(r.expires_ms[ib], rev.expires_ms);
    assert_int_equal(r.expires_ms[ic], rev.expires_ms);
    assert_int_equal(rev_find(&r, a), -1);
    assert_int_equal(rev_find(&r, z), -1);
    /* since is inclusive: a poll from exactly the revocation time sees it,
     * one millisecond later does not. */
    assert_int_equal(revs_since(s, rev.now_ms).n, 2);
    assert_int_equal(revs_since(s, rev.now_ms + 1).n, 0);

    /* The revoked sessions cannot refresh any more; the kept one can. */
    assert_outcome(do_refresh(s, b, 0, NOW_MS + 1000, NULL, NULL), REFRESH_REVOKED);
    assert_outcome(do_refresh(s, a, 0, NOW_MS + 1000, NULL, NULL), REFRESH_ROTATED);

    /* Without a session to keep (CLI reset): all of them. */
    rev.now_ms += 1000;
    assert_int_equal(store_user_change_password(s, uid, NULL, "$newer", NULL, &rev, &n),
                     STORE_OK);
    assert_int_equal(n, 1);
    assert_int_equal(list_at(s, uid, NOW).n, 0);

    assert_int_equal(store_user_change_password(s, "018f0000-0000-7000-8000-000000000000", NULL,
                                                "$x", NULL, &rev, &n),
                     STORE_NOT_FOUND);
}

static struct store_mail mail_of(const char *kind, const char *user_id, const char *to,
                                 int64_t due_ms);

static void test_user_delete_removes_sessions_and_feeds_revocations(void **state)
{
    struct fx *f = *state;
    struct store *s = f->s;
    char uid[UUID_STR_LEN], a[UUID_STR_LEN], b[UUID_STR_LEN];
    mkuser(s, "gina", "$h", uid);
    mklive(s, uid, NOW - 100, a);
    mklive(s, uid, NOW - 50, b);
    /* Mail still queued for the account goes with it; another's stays. */
    struct store_mail mine = mail_of("verify_email", uid, "gina@example.com", NOW_MS);
    struct store_mail theirs = mail_of("verify_email", "someone-else", "x@example.com", NOW_MS);
    assert_int_equal(store_outbox_insert(s, &mine), STORE_OK);
    assert_int_equal(store_outbox_insert(s, &theirs), STORE_OK);
    struct revocation rev = {.now_ms = NOW_MS, .expires_ms = NOW_MS + 910000};
    assert_int_equal(store_user_delete(s, uid, &rev), STORE_OK);
    int64_t queued = -1;
    assert_int_equal(store_outbox_count(s, MAIL_QUEUED, &queued), STORE_OK);
    assert_int_equal(queued, 1);

    struct store_user u = {0};
    assert_int_equal(store_user_by_id(s, uid, &u), STORE_NOT_FOUND);
    assert_int_equal(store_user_by_name(s, "gina", &u), STORE_NOT_FOUND);
    assert_int_equal(list_at(s, uid, NOW).n, 0);
    struct rev_list r = revs_since(s, 0);
    assert_int_equal(r.n, 2);
    assert_true(rev_find(&r, a) >= 0);
    assert_true(rev_find(&r, b) >= 0);
    /* The sessions are gone with the user. */
    assert_outcome(do_refresh(s, a, 0, NOW_MS, NULL, NULL), REFRESH_UNKNOWN);
    assert_int_equal(store_user_delete(s, uid, &rev), STORE_NOT_FOUND);

    /* The name is free again; a session for the deleted user cannot be made. */
    char again[UUID_STR_LEN];
    mkuser(s, "GINA", "$h2", again);
    struct store_session ss = {0};
    assert_true(util_uuid7(ss.id));
    snprintf(ss.user_id, sizeof ss.user_id, "%s", uid);
    ss.created_at = ss.last_used_at = NOW;
    ss.expires_at = NOW + ABSOLUTE;
    assert_int_equal(store_session_create(s, &ss, NULL), STORE_NOT_FOUND);
    /* A session of a login whose checked password is no longer the
     * account's: refused (a change, reset or deletion came in between). */
    snprintf(ss.user_id, sizeof ss.user_id, "%s", again);
    assert_int_equal(store_session_create(s, &ss, "$h-before"), STORE_NOT_FOUND);
    assert_int_equal(store_session_create(s, &ss, "$h2"), STORE_OK);
}

/* ---- sessions ---- */

static void test_session_list_live_newest_first(void **state)
{
    struct fx *f = *state;
    struct store *s = f->s;
    char uid[UUID_STR_LEN], other[UUID_STR_LEN];
    mkuser(s, "hank", "$h", uid);
    mkuser(s, "ivy", "$h", other);

    char old[UUID_STR_LEN], mid[UUID_STR_LEN], young[UUID_STR_LEN];
    mklive(s, uid, NOW - 3000, old);
    mklive(s, uid, NOW - 2000, young);
    mklive(s, uid, NOW - 2500, mid);

    char idle_gone[UUID_STR_LEN], idle_edge[UUID_STR_LEN], abs_gone[UUID_STR_LEN],
        abs_edge[UUID_STR_LEN], revoked[UUID_STR_LEN], theirs[UUID_STR_LEN];
    /* Last used exactly IDLE ago: over. One second less: live. */
    mksess(s, uid, NOW - IDLE - 100, NOW - IDLE, NOW + DAY, 0, 0, idle_gone);
    mksess(s, uid, NOW - IDLE - 200, NOW - IDLE + 1, NOW + DAY, 0, 0, idle_edge);
    /* Absolute end exactly now: over. One second later: live. */
    mksess(s, uid, NOW - 4000, NOW - 10, NOW, 0, 0, abs_gone);
    mksess(s, uid, NOW - 5000, NOW - 10, NOW + 1, 0, 0, abs_edge);
    mklive(s, uid, NOW - 100, revoked);
    mklive(s, other, NOW - 50, theirs);
    struct revocation rev = {.now_ms = NOW_MS, .expires_ms = NOW_MS + 1000};
    assert_int_equal(store_session_revoke(s, uid, revoked, "logout", &rev), STORE_OK);

    struct sess_list l = list_at(s, uid, NOW);
    assert_int_equal(l.n, 5);
    /* newest first */
    assert_string_equal(l.id[0], young);
    assert_string_equal(l.id[1], mid);
    assert_string_equal(l.id[2], old);
    assert_string_equal(l.id[3], abs_edge);
    assert_string_equal(l.id[4], idle_edge);
    assert_int_equal(list_find(&l, idle_gone), -1);
    assert_int_equal(list_find(&l, abs_gone), -1);
    assert_int_equal(list_find(&l, revoked), -1);
    assert_int_equal(list_find(&l, theirs), -1);
    assert_string_equal(l.ua[0], "test-agent/1.0");

    l = list_at(s, other, NOW);
    assert_int_equal(l.n, 1);
    assert_string_equal(l.id[0], theirs);
    assert_int_equal(list_at(s, "018f0000-0000-7000-8000-000000000000", NOW).n, 0);
}

/* session_idor: a user naming another user's session id gets NOT_FOUND and
 * the session lives on. */
static void test_session_idor_revoke_other_users_session(void **state)
{
    struct fx *f = *state;
    struct store *s = f->s;
    char alice[UUID_STR_LEN], mallory[UUID_STR_LEN], a[UUID_STR_LEN], m[UUID_STR_LEN];
    mkuser(s, "alice", "$h", alice);
    mkuser(s, "mallory", "$h", mallory);
    mklive(s, alice, NOW - 100, a);
    mklive(s, mallory, NOW - 100, m);
    struct revocation rev = {.now_ms = NOW_MS, .expires_ms = NOW_MS + 910000};

    assert_int_equal(store_session_revoke(s, mallory, a, "logout", &rev), STORE_NOT_FOUND);
    assert_int_equal(list_at(s, alice, NOW).n, 1);
    assert_int_equal(revs_since(s, 0).n, 0);
    assert_outcome(do_refresh(s, a, 0, NOW_MS, NULL, NULL), REFRESH_ROTATED);

    assert_int_equal(store_session_revoke(s, alice, a, "logout", &rev), STORE_OK);
    assert_int_equal(list_at(s, alice, NOW).n, 0);
    struct rev_list r = revs_since(s, 0);
    assert_int_equal(r.n, 1);
    assert_string_equal(r.sid[0], a);
    assert_int_equal(r.expires_ms[0], rev.expires_ms);
    /* Twice: already revoked. */
    assert_int_equal(store_session_revoke(s, alice, a, "logout", &rev), STORE_NOT_FOUND);
    assert_int_equal(store_session_revoke(s, alice, "018f0000-0000-7000-8000-000000000000",
                                "logout", &rev),
                     STORE_NOT_FOUND);
    /* Any user (admin CLI). */
    assert_int_equal(store_session_revoke(s, NULL, m, "admin", &rev), STORE_OK);
    assert_int_equal(list_at(s, mallory, NOW).n, 0);

    /* Log out everywhere but here. */
    char c1[UUID_STR_LEN], c2[UUID_STR_LEN], c3[UUID_STR_LEN];
    mklive(s, alice, NOW - 30, c1);
    mklive(s, alice, NOW - 20, c2);
    mklive(s, alice, NOW - 10, c3);
    int n = -1;
    assert_int_equal(store_session_revoke_user(s, alice, c1, "logout_all", &rev, &n),
                     STORE_OK);
    assert_int_equal(n, 2);
    struct sess_list l = list_at(s, alice, NOW);
    assert_int_equal(l.n, 1);
    assert_string_equal(l.id[0], c1);
}

/* ---- refresh ---- */

/* refresh_token_theft: the token retired last comes back within the reuse
 * interval (two tabs): the current pair again. Any later or older reuse is
 * theft: the session dies and every instance hears of it. */
static void test_refresh_token_theft_detection(void **state)
{
    struct fx *f = *state;
    struct store *s = f->s;
    char uid[UUID_STR_LEN], sid[UUID_STR_LEN];
    mkuser(s, "Judy", "$h", uid);
    const int64_t t0 = NOW_MS - 1000;
    mksess(s, uid, NOW - 100, NOW - 100, NOW + ABSOLUTE, 0, t0, sid);

    struct store_session ss;
    struct store_user u;
    memset(&ss, 0, sizeof ss);
    memset(&u, 0, sizeof u);
    const int64_t t1 = NOW_MS;
    assert_outcome(do_refresh(s, sid, 0, t1, &ss, &u), REFRESH_ROTATED);
    assert_string_equal(ss.id, sid);
    assert_string_equal(ss.user_id, uid);
    assert_int_equal(ss.refresh_gen, 1);
    assert_int_equal(ss.rotated_at_ms, t1);
    assert_int_equal(ss.last_used_at, t1 / 1000);
    assert_int_equal(ss.expires_at, NOW + ABSOLUTE);
    assert_string_equal(ss.user_agent, "test-agent/1.0");
    assert_string_equal(u.id, uid);
    assert_string_equal(u.username, "Judy");
    store_user_clear(&u);

    /* Same token again, 5 s later: replayed with the current generation. */
    memset(&ss, 0, sizeof ss);
    assert_outcome(do_refresh(s, sid, 0, t1 + 5000, &ss, &u), REFRESH_REPLAYED);
    assert_int_equal(ss.refresh_gen, 1);
    assert_int_equal(ss.rotated_at_ms, t1);
    assert_string_equal(ss.id, sid);
    /* Exactly at the end of the interval: still replayed. */
    assert_outcome(do_refresh(s, sid, 0, t1 + REUSE_MS, &ss, &u), REFRESH_REPLAYED);
    assert_int_equal(revs_since(s, 0).n, 0);
    assert_int_equal(list_at(s, uid, NOW).n, 1);

    /* Past the interval: theft. */
    const int64_t t2 = t1 + REUSE_MS + 1;
    memset(&ss, 0, sizeof ss);
    assert_outcome(do_refresh(s, sid, 0, t2, &ss, &u), REFRESH_REUSED);
    assert_int_equal(ss.refresh_gen, 0); /* nothing handed out */
    assert_string_equal(ss.user_id, uid); /* whose it was, for the audit line */
    assert_int_equal(list_at(s, uid, NOW).n, 0);
    struct rev_list r = revs_since(s, t2);
    assert_int_equal(r.n, 1);
    assert_string_equal(r.sid[0], sid);
    assert_int_equal(r.revoked_ms[0], t2);
    assert_int_equal(r.expires_ms[0], t2 + 910 * 1000);

    /* Now even the current token is refused. */
    assert_outcome(do_refresh(s, sid, 1, t2 + 1, NULL, NULL), REFRESH_REVOKED);
    assert_outcome(do_refresh(s, sid, 0, t2 + 2, NULL, NULL), REFRESH_REVOKED);
    assert_int_equal(revs_since(s, 0).n, 1);

    assert_outcome(do_refresh(s, "018f0000-0000-7000-8000-000000000000", 0, t2, NULL, NULL),
                   REFRESH_UNKNOWN);
}

static void test_refresh_old_generation_is_reuse(void **state)
{
    struct fx *f = *state;
    struct store *s = f->s;
    char uid[UUID_STR_LEN], sid[UUID_STR_LEN];
    mkuser(s, "kim", "$h", uid);
    mksess(s, uid, NOW - 100, NOW - 100, NOW + ABSOLUTE, 0, NOW_MS - 100000, sid);
    assert_outcome(do_refresh(s, sid, 0, NOW_MS, NULL, NULL), REFRESH_ROTATED);
    assert_outcome(do_refresh(s, sid, 1, NOW_MS + 1, NULL, NULL), REFRESH_ROTATED);
    /* gen 0 is two behind: theft even within the interval. */
    assert_outcome(do_refresh(s, sid, 0, NOW_MS + 2, NULL, NULL), REFRESH_REUSED);
    assert_outcome(do_refresh(s, sid, 2, NOW_MS + 3, NULL, NULL), REFRESH_REVOKED);
}

static void test_refresh_expired_changes_nothing(void **state)
{
    struct fx *f = *state;
    struct store *s = f->s;
    char uid[UUID_STR_LEN], sid[UUID_STR_LEN];
    mkuser(s, "lou", "$h", uid);
    /* Last used 30 days ago to the second. */
    mksess(s, uid, NOW - IDLE - 10, NOW - IDLE, NOW + DAY, 3, (NOW - IDLE) * 1000, sid);
    struct store_session ss;
    memset(&ss, 0, sizeof ss);
    assert_outcome(do_refresh(s, sid, 3, NOW_MS, &ss, NULL), REFRESH_EXPIRED);
    assert_int_equal(ss.refresh_gen, 0); /* not filled */
    assert_string_equal(ss.user_id, uid); /* but whose it was */
    assert_outcome(do_refresh(s, sid, 2, NOW_MS, NULL, NULL), REFRESH_EXPIRED);
    assert_int_equal(revs_since(s, 0).n, 0);
    /* One second earlier it was still usable, with generation 3 intact. */
    assert_outcome(do_refresh(s, sid, 3, NOW_MS - 1000, &ss, NULL), REFRESH_ROTATED);
    assert_int_equal(ss.refresh_gen, 4);
}

/* ---- sign-out with a refresh token ---- */

static struct signout_result do_signout(struct store *s, const char *sid, uint32_t gen,
                                        int64_t now_ms, bool all)
{
    struct signout_policy p = {
        .refresh = policy_at(now_ms),
        .all = all,
        .reach = sessions_signout_reach,
    };
    struct signout_result out;
    memset(&out, 0xAA, sizeof out);
    assert_int_equal(store_signout(s, sid, gen, &p, &out), STORE_OK);
    return out;
}

/* logout_with_refresh_token: the token is never rotated; a current one ends
 * its session (or, asked for all, every session of its owner and no one
 * else's), a reused one only its own session, an expired, revoked or
 * unknown one nothing. */
static void test_signout_with_refresh_token(void **state)
{
    struct fx *f = *state;
    struct store *s = f->s;
    char uid[UUID_STR_LEN], other[UUID_STR_LEN], a[UUID_STR_LEN], b[UUID_STR_LEN],
        c[UUID_STR_LEN], theirs[UUID_STR_LEN];
    mkuser(s, "ned", "$h", uid);
    mkuser(s, "ola", "$h", other);
    mksess(s, uid, NOW - 100, NOW - 100, NOW + ABSOLUTE, 3, NOW_MS - 100000, a);
    mklive(s, uid, NOW - 50, b);
    mklive(s, uid, NOW - 40, c);
    mklive(s, other, NOW - 100, theirs);

    /* The current token of a, this session only: a ends, not rotated. */
    struct signout_result r = do_signout(s, a, 3, NOW_MS, false);
    assert_outcome(r.outcome, REFRESH_ROTATED);
    assert_int_equal(r.reach, SIGNOUT_SESSION);
    assert_int_equal(r.revoked, 1);
    assert_string_equal(r.user_id, uid);
    struct rev_list rv = revs_since(s, 0);
    assert_int_equal(rv.n, 1);
    assert_string_equal(rv.sid[0], a);
    assert_int_equal(rv.expires_ms[0], NOW_MS + 910 * 1000);
    assert_int_equal(list_at(s, uid, NOW).n, 2);
    assert_outcome(do_refresh(s, a, 3, NOW_MS + 1, NULL, NULL), REFRESH_REVOKED);

    /* Its token again, even asking for all: the session is over, nothing
     * more ends. */
    r = do_signout(s, a, 3, NOW_MS + 2, true);
    assert_outcome(r.outcome, REFRESH_REVOKED);
    assert_int_equal(r.reach, SIGNOUT_NOTHING);
    assert_int_equal(r.revoked, 0);
    assert_int_equal(list_at(s, uid, NOW).n, 2);

    /* A reused token of b (gen 0 after two rotations), asking for all:
     * b ends as /auth/refresh would end it, c lives on. */
    assert_outcome(do_refresh(s, b, 0, NOW_MS, NULL, NULL), REFRESH_ROTATED);
    assert_outcome(do_refresh(s, b, 1, NOW_MS + 1, NULL, NULL), REFRESH_ROTATED);
    r = do_signout(s, b, 0, NOW_MS + 2, true);
    assert_outcome(r.outcome, REFRESH_REUSED);
    assert_int_equal(r.reach, SIGNOUT_SESSION);
    assert_int_equal(r.revoked, 1);
    struct sess_list l = list_at(s, uid, NOW);
    assert_int_equal(l.n, 1);
    assert_string_equal(l.id[0], c);

    /* The token c retired last, within the reuse interval, asking for all:
     * /auth/refresh would honour it, so every session of its owner ends -
     * and only its owner's. */
    mklive(s, uid, NOW - 30, b);
    assert_outcome(do_refresh(s, c, 0, NOW_MS, NULL, NULL), REFRESH_ROTATED);
    r = do_signout(s, c, 0, NOW_MS + 1000, true);
    assert_outcome(r.outcome, REFRESH_REPLAYED);
    assert_int_equal(r.reach, SIGNOUT_USER);
    assert_int_equal(r.revoked, 2);
    assert_int_equal(list_at(s, uid, NOW).n, 0);
    assert_int_equal(list_at(s, other, NOW).n, 1);
    rv = revs_since(s, 0);
    assert_int_equal(rv.n, 4);
    assert_true(rev_find(&rv, b) >= 0 && rev_find(&rv, c) >= 0);
    assert_int_equal(rev_find(&rv, theirs), -1);

    /* Expired (idle 30 days): nothing ends, nothing is written. */
    char old[UUID_STR_LEN];
    mksess(s, other, NOW - IDLE - 10, NOW - IDLE, NOW + DAY, 0, (NOW - IDLE) * 1000, old);
    r = do_signout(s, old, 0, NOW_MS, true);
    assert_outcome(r.outcome, REFRESH_EXPIRED);
    assert_int_equal(r.reach, SIGNOUT_NOTHING);
    assert_int_equal(list_at(s, other, NOW).n, 1);
    assert_int_equal(revs_since(s, 0).n, 4);

    /* Unknown. */
    r = do_signout(s, "018f0000-0000-7000-8000-000000000000", 0, NOW_MS, true);
    assert_outcome(r.outcome, REFRESH_UNKNOWN);
    assert_int_equal(r.reach, SIGNOUT_NOTHING);
    assert_int_equal(r.revoked, 0);
    assert_string_equal(r.user_id, "");
    assert_int_equal(list_at(s, other, NOW).n, 1);
}

/* ---- the race ---- */

enum { RACERS = 50, ROUNDS = 5 };

struct racer {
    struct store *s;
    pthread_barrier_t *barrier;
    const char *sid;
    uint32_t gen;
    int64_t now_ms;
    enum store_rc rc;
    enum refresh_outcome out;
    uint32_t got_gen;
};

static void *race_run(void *arg)
{
    struct racer *r = arg;
    struct refresh_policy p = policy_at(r->now_ms);
    struct store_session ss;
    memset(&ss, 0, sizeof ss);
    warm_up(r->s); /* connect before the race */
    pthread_barrier_wait(r->barrier);
    r->rc = store_refresh(r->s, r->sid, r->gen, &p, &r->out, &ss, NULL);
    r->got_gen = ss.refresh_gen;
    return NULL;
}

/* double_mint: concurrent refreshes of one token never mint two live
 * tokens: exactly one rotation, everyone else gets the same new pair. */
static void test_double_mint_50_threads_one_token(void **state)
{
    struct fx *f = *state;
    struct store *s = f->s;
    char uid[UUID_STR_LEN], sid[UUID_STR_LEN];
    mkuser(s, "racer", "$h", uid);
    mksess(s, uid, NOW - 100, NOW - 100, NOW + ABSOLUTE, 0, NOW_MS - 100000, sid);

    for (uint32_t round = 0; round < ROUNDS; round++) {
        pthread_barrier_t barrier;
        assert_int_equal(pthread_barrier_init(&barrier, NULL, RACERS), 0);
        struct racer r[RACERS];
        pthread_t th[RACERS];
        for (int i = 0; i < RACERS; i++) {
            r[i] = (struct racer){.s = s, .barrier = &barrier, .sid = sid, .gen = round,
                                  .now_ms = NOW_MS + round * 1000};
            assert_int_equal(pthread_create(&th[i], NULL, race_run, &r[i]), 0);
        }
        int rotated = 0, replayed = 0;
        for (int i = 0; i < RACERS; i++) {
            pthread_join(th[i], NULL);
            if (r[i].rc != STORE_OK)
                fail_msg("round %u thread %d: %s", round, i, store_rc_name(r[i].rc));
            if (r[i].out == REFRESH_ROTATED)
                rotated++;
            else if (r[i].out == REFRESH_REPLAYED)
                replayed++;
            else
                fail_msg("round %u thread %d: %s", round, i, outcome_name(r[i].out));
            assert_int_equal(r[i].got_gen, round + 1);
        }
        pthread_barrier_destroy(&barrier);
        assert_int_equal(rotated, 1);
        assert_int_equal(replayed, RACERS - 1);
        struct sess_list l = list_at(s, uid, NOW + round);
        assert_int_equal(l.n, 1);
        assert_int_equal(l.gen[0], round + 1);
    }
    assert_int_equal(revs_since(s, 0).n, 0);
}

/* signout_everywhere_race: every way to end all of a user's sessions at
 * once - signing out everywhere with several of its refresh tokens, an
 * access token's "all", an operator's `user logout`, a password change,
 * disabling - run together on one user, each from a connection of its own:
 * none fails (on PostgreSQL, two of them taking the session rows in
 * different orders would deadlock, and one of them answer 503), and every
 * session ends. */
enum { ENDERS = 8, END_ROUNDS = 6 };

struct ender {
    struct store *s;
    pthread_barrier_t *barrier;
    const char *uid;
    const char *sid;
    int kind;
    int64_t now_ms;
    enum store_rc rc;
};

static void *ender_run(void *arg)
{
    struct ender *e = arg;
    struct revocation rev = {.now_ms = e->now_ms, .expires_ms = e->now_ms + 910 * 1000};
    warm_up(e->s);
    pthread_barrier_wait(e->barrier);
    switch (e->kind) {
    case 0: { /* a refresh token's sign-out everywhere */
        struct signout_policy p = {
            .refresh = policy_at(e->now_ms), .all = true, .reach = sessions_signout_reach};
        struct signout_result out;
        e->rc = store_signout(e->s, e->sid, 0, &p, &out);
        break;
    }
    case 1: /* an access token's "all", or an operator's `user logout` */
        e->rc = store_session_revoke_user(e->s, e->uid, NULL, "logout_all", &rev, NULL);
        break;
    case 2: /* one session */
        e->rc = store_session_revoke(e->s, e->uid, e->sid, "logout", &rev);
        if (e->rc == STORE_NOT_FOUND) /* another one ended it first */
            e->rc = STORE_OK;
        break;
    default: /* a password change keeping this session, then the rest ends */
        e->rc = store_user_change_password(e->s, e->uid, NULL, "$h", e->sid, &rev, NULL);
        break;
    }
    return NULL;
}

static void test_signout_everywhere_race(void **state)
{
    struct fx *f = *state;
    struct store *s = f->s;
    char uid[UUID_STR_LEN];
    mkuser(s, "everywhere", "$h", uid);
    for (int round = 0; round < END_ROUNDS; round++) {
        char sid[ENDERS][UUID_STR_LEN];
        for (int i = 0; i < ENDERS; i++)
            mklive(s, uid, NOW - 100 + i, sid[i]);
        pthread_barrier_t barrier;
        assert_int_equal(pthread_barrier_init(&barrier, NULL, ENDERS), 0);
        struct ender e[ENDERS];
        pthread_t th[ENDERS];
        for (int i = 0; i < ENDERS; i++) {
            /* three refresh-token sign-outs, two "all", two single, one
             * password change, in an order that moves each round */
            static const int kinds[ENDERS] = {0, 1, 0, 2, 3, 0, 1, 2};
            e[i] = (struct ender){.s = s, .barrier = &barrier, .uid = uid,
                                  .sid = sid[(i + round) % ENDERS],
                                  .kind = kinds[i], .now_ms = NOW_MS + round * 1000};
            assert_int_equal(pthread_create(&th[i], NULL, ender_run, &e[i]), 0);
        }
        for (int i = 0; i < ENDERS; i++) {
            pthread_join(th[i], NULL);
            if (e[i].rc != STORE_OK)
                fail_msg("round %d thread %d (kind %d): %s", round, i, e[i].kind,
                         store_rc_name(e[i].rc));
        }
        pthread_barrier_destroy(&barrier);
        /* At most the session the password change kept, if it came last. */
        assert_true(list_at(s, uid, NOW).n <= 1);
        struct revocation rev = {.now_ms = NOW_MS, .expires_ms = NOW_MS + 1000};
        assert_int_equal(store_session_revoke_user(s, uid, NULL, "cleanup", &rev, NULL), STORE_OK);
        assert_int_equal(list_at(s, uid, NOW).n, 0);
    }
}

/* ---- secrets ---- */

struct secret_racer {
    struct store *s;
    pthread_barrier_t *barrier;
    uint8_t candidate[32];
    uint8_t got[32];
    size_t len;
    enum store_rc rc;
};

static void *secret_run(void *arg)
{
    struct secret_racer *r = arg;
    warm_up(r->s); /* connect before the race */
    pthread_barrier_wait(r->barrier);
    r->rc = store_secret_get_or_create(r->s, "raced", r->candidate, 32, r->got,
                       sizeof r->got, &r->len);
    return NULL;
}

/* A candidate secret may be the one that is kept (the first instance's):
 * what a backend makes of it to send it (PostgreSQL: bytea as hex text) is
 * wiped before it is freed. */
static void test_secret_candidate_text_wiped(void **state)
{
    struct fx *f = *state;
    uint8_t cand[32], out[64];
    for (size_t i = 0; i < sizeof cand; i++)
        cand[i] = (uint8_t)(0x91 + 7 * i);
    char hex[2 * sizeof cand + 1];
    util_hex(cand, sizeof cand, hex);
    size_t len = 0;
    g_free_scan = hex;
    g_free_scan_hits = 0;
    enum store_rc rc = store_secret_get_or_create(f->s, "wiped", cand, sizeof cand, out,
                                                  sizeof out, &len);
    g_free_scan = NULL;
    assert_int_equal(rc, STORE_OK);
    assert_int_equal(len, sizeof cand);
    assert_memory_equal(out, cand, sizeof cand);
    assert_int_equal(g_free_scan_hits, 0);
}

static void test_secret_first_writer_wins(void **state)
{
    struct fx *f = *state;
    struct store *s = f->s;
    uint8_t a[32], b[32], out[64];
    memset(a, 0xa1, sizeof a);
    memset(b, 0xb2, sizeof b);
    size_t len = 0;
    assert_int_equal(store_secret_get_or_create(s, "refresh_key", a, 32, out, sizeof out,
                                &len),
                     STORE_OK);
    assert_int_equal(len, 32);
    assert_memory_equal(out, a, 32);
    memset(out, 0, sizeof out);
    assert_int_equal(store_secret_get_or_create(s, "refresh_key", b, 32, out, sizeof out,
                                &len),
                     STORE_OK);
    assert_int_equal(len, 32);
    assert_memory_equal(out, a, 32); /* the first one stays */
    /* Another name is another secret. */
    assert_int_equal(store_secret_get_or_create(s, "other", b, 32, out, sizeof out, &len),
                     STORE_OK);
    assert_memory_equal(out, b, 32);
    /* No room for it: an error, not a truncated secret. */
    len = 99;
    assert_int_not_equal(store_secret_get_or_create(s, "refresh_key", b, 32, out, 16, &len),
                         STORE_OK);
    assert_int_equal(len, 99);

    /* Eight instances starting at once agree on one secret. */
    enum { N = 8 };
    pthread_barrier_t barrier;
    assert_int_equal(pthread_barrier_init(&barrier, NULL, N), 0);
    struct secret_racer r[N];
    pthread_t th[N];
    for (int i = 0; i < N; i++) {
        memset(&r[i], 0, sizeof r[i]);
        r[i].s = s;
        r[i].barrier = &barrier;
        memset(r[i].candidate, 0x10 + i, sizeof r[i].candidate);
        assert_int_equal(pthread_create(&th[i], NULL, secret_run, &r[i]), 0);
    }
    for (int i = 0; i < N; i++)
        pthread_join(th[i], NULL);
    pthread_barrier_destroy(&barrier);
    bool is_a_candidate = false;
    for (int i = 0; i < N; i++) {
        if (r[i].rc != STORE_OK)
            fail_msg("thread %d: %s", i, store_rc_name(r[i].rc));
        assert_int_equal(r[i].len, 32);
        assert_memory_equal(r[i].got, r[0].got, 32);
        if (memcmp(r[0].got, r[i].candidate, 32) == 0)
            is_a_candidate = true;
    }
    assert_true(is_a_candidate);
}

/* ---- keys ---- */

struct key_list {
    int n;
    char kid[8][KID_MAX + 1];
    enum key_state state[8];
    int64_t remove_at[8];
    bool pem_ok[8];
};

static void key_cb(void *ctx, const struct store_key *k)
{
    struct key_list *l = ctx;
    if (l->n < 8) {
        snprintf(l->kid[l->n], sizeof l->kid[0], "%s", k->kid);
        l->state[l->n] = k->state;
        l->remove_at[l->n] = k->remove_at;
        l->pem_ok[l->n] = k->private_pem && strstr(k->private_pem, "PRIVATE KEY") != NULL;
    }
    l->n++;
}

static struct key_list keys(struct store *s)
{
    struct key_list l;
    memset(&l, 0, sizeof l);
    assert_int_equal(store_keys_list(s, key_cb, &l), STORE_OK);
    return l;
}

/* State of kid, or -1 when absent. */
static int key_state_of(struct store *s, const char *kid)
{
    struct key_list l = keys(s);
    for (int i = 0; i < l.n && i < 8; i++)
        if (strcmp(l.kid[i], kid) == 0)
            return (int)l.state[i];
    return -1;
}

static bool insert_key(struct store *s, const char *kid, const char *alg, enum key_state st,
                       int64_t created)
{
    struct store_key k = {0};
    snprintf(k.kid, sizeof k.kid, "%s", kid);
    snprintf(k.alg, sizeof k.alg, "%s", alg);
    k.state = st;
    k.private_pem = "-----BEGIN PRIVATE KEY-----\nMC4CAQ\n-----END PRIVATE KEY-----\n";
    k.created_at = created;
    k.activate_at = created;
    bool inserted = false;
    assert_int_equal(store_key_insert_unless(s, &k, &inserted), STORE_OK);
    return inserted;
}

static void test_keys_lifecycle(void **state)
{
    struct fx *f = *state;
    struct store *s = f->s;
    /* Two instances generating the first key at once: only one lands. */
    assert_true(insert_key(s, "es-1", "ES256", KEY_CURRENT, NOW - 100));
    assert_false(insert_key(s, "es-2", "ES256", KEY_CURRENT, NOW - 99));
    assert_true(insert_key(s, "ed-1", "EdDSA", KEY_CURRENT, NOW - 98)); /* other alg */
    assert_true(insert_key(s, "es-3", "ES256", KEY_NEXT, NOW - 97));
    assert_false(insert_key(s, "es-4", "ES256", KEY_NEXT, NOW - 96));

    struct key_list l = keys(s);
    assert_int_equal(l.n, 3);
    for (int i = 0; i < 3; i++)
        assert_true(l.pem_ok[i]);
    assert_int_equal(key_state_of(s, "es-1"), KEY_CURRENT);
    assert_int_equal(key_state_of(s, "es-3"), KEY_NEXT);
    assert_int_equal(key_state_of(s, "es-2"), -1);

    /* Promotion is atomic and compare-and-set. */
    assert_int_equal(store_key_promote(s, "es-3", "es-1", NOW, NOW + 3600), STORE_OK);
    assert_int_equal(key_state_of(s, "es-3"), KEY_CURRENT);
    assert_int_equal(key_state_of(s, "es-1"), KEY_RETIRED);
    /* A second instance doing the same promotion loses, changing nothing. */
    assert_int_equal(store_key_promote(s, "es-3", "es-1", NOW, NOW + 3600),
                     STORE_NOT_FOUND);
    assert_int_equal(key_state_of(s, "es-3"), KEY_CURRENT);
    /* The current key is retired first inside the transaction; when the next
     * key then turns out to be gone, the retirement is rolled back. */
    assert_int_equal(store_key_promote(s, "no-such-kid", "es-3", NOW, NOW + 3600),
                     STORE_NOT_FOUND);
    assert_int_equal(key_state_of(s, "es-3"), KEY_CURRENT);

    /* No current key (first promotion of a next key). */
    assert_true(insert_key(s, "ed-2", "EdDSA", KEY_NEXT, NOW));
    assert_int_equal(store_key_retire(s, "ed-1", NOW, NOW + 60), STORE_OK);
    assert_int_equal(store_key_retire(s, "ed-1", NOW, NOW + 60), STORE_NOT_FOUND);
    assert_int_equal(key_state_of(s, "ed-1"), KEY_RETIRED);
    assert_int_equal(store_key_promote(s, "ed-2", NULL, NOW, 0), STORE_OK);
    assert_int_equal(key_state_of(s, "ed-2"), KEY_CURRENT);
    assert_int_equal(store_key_retire(s, "missing", NOW, NOW + 60), STORE_NOT_FOUND);

    /* Removal: retired keys whose remove_at has come; never others. */
    assert_int_equal(store_keys_remove_expired(s, NOW + 59), STORE_OK);
    assert_int_equal(keys(s).n, 4);
    assert_int_equal(store_keys_remove_expired(s, NOW + 60), STORE_OK);
    assert_int_equal(key_state_of(s, "ed-1"), -1);
    assert_int_equal(keys(s).n, 3);
    assert_int_equal(store_keys_remove_expired(s, NOW + 3600), STORE_OK);
    assert_int_equal(key_state_of(s, "es-1"), -1);
    assert_int_equal(store_keys_remove_expired(s, NOW + 100 * DAY), STORE_OK);
    l = keys(s);
    assert_int_equal(l.n, 2); /* the two current keys stay */
    assert_int_equal(key_state_of(s, "es-3"), KEY_CURRENT);
    assert_int_equal(key_state_of(s, "ed-2"), KEY_CURRENT);
}

/* ---- counters ---- */

enum { PER_COUNTER_THREAD = 25 };

struct counter_racer {
    struct store *s;
    pthread_barrier_t *barrier;
    int failures;
};

static void *counter_run(void *arg)
{
    struct counter_racer *r = arg;
    warm_up(r->s); /* connect before the race */
    pthread_barrier_wait(r->barrier);
    for (int i = 0; i < PER_COUNTER_THREAD; i++) {
        int64_t n = 0;
        if (store_counter_add(r->s, "parallel", NOW, 3600, 1, &n) != STORE_OK || n < 1)
            r->failures++;
    }
    return NULL;
}

static void test_counter_windows_and_parallel_sum(void **state)
{
    struct fx *f = *state;
    struct store *s = f->s;
    int64_t n = -1;
    assert_int_equal(store_counter_add(s, "signup:192.0.2.1", 1000, 60, 1, &n), STORE_OK);
    assert_int_equal(n, 1);
    assert_int_equal(store_counter_add(s, "signup:192.0.2.1", 1030, 60, 1, &n), STORE_OK);
    assert_int_equal(n, 2);
    assert_int_equal(store_counter_add(s, "signup:192.0.2.1", 1059, 60, 5, &n), STORE_OK);
    assert_int_equal(n, 7);
    assert_int_equal(store_counter_add(s, "signup:192.0.2.2", 1059, 60, 1, &n), STORE_OK);
    assert_int_equal(n, 1); /* keys are separate */
    /* 60 s after the first hit a new window starts at zero. */
    assert_int_equal(store_counter_add(s, "signup:192.0.2.1", 1060, 60, 1, &n), STORE_OK);
    assert_int_equal(n, 1);
    /* The new window runs from 1060 (what a refusal's Retry-After counts
     * from). */
    int64_t start = -1;
    assert_int_equal(
        store_counter_add_in_window(s, "signup:192.0.2.1", 1119, 60, 1, &n, &start), STORE_OK);
    assert_int_equal(n, 2);
    assert_int_equal(start, 1060);
    assert_int_equal(store_counter_add(s, "signup:192.0.2.1", 1120, 60, 1, &n), STORE_OK);
    assert_int_equal(n, 1);
    /* Reading without counting. */
    assert_int_equal(store_counter_add(s, "signup:192.0.2.1", 1121, 60, 0, &n), STORE_OK);
    assert_int_equal(n, 1);
    /* Never below zero: a refund of an attempt counted in the last window
     * (or on an unknown key) gives no extra attempt in this one. */
    assert_int_equal(store_counter_add(s, "signup:192.0.2.1", 1121, 60, -1, &n), STORE_OK);
    assert_int_equal(n, 0);
    assert_int_equal(store_counter_add(s, "signup:192.0.2.1", 1122, 60, -1, &n), STORE_OK);
    assert_int_equal(n, 0);
    assert_int_equal(store_counter_add(s, "signup:192.0.2.1", 1180, 60, -1, &n), STORE_OK);
    assert_int_equal(n, 0); /* a new window */
    assert_int_equal(store_counter_add(s, "signup:192.0.2.9", 1180, 60, -1, &n), STORE_OK);
    assert_int_equal(n, 0); /* a new key */
    assert_int_equal(store_counter_add(s, "signup:192.0.2.1", 1181, 60, 1, &n), STORE_OK);
    assert_int_equal(n, 1);

    enum { N = 20 };
    pthread_barrier_t barrier;
    assert_int_equal(pthread_barrier_init(&barrier, NULL, N), 0);
    struct counter_racer r[N];
    pthread_t th[N];
    for (int i = 0; i < N; i++) {
        r[i] = (struct counter_racer){.s = s, .barrier = &barrier};
        assert_int_equal(pthread_create(&th[i], NULL, counter_run, &r[i]), 0);
    }
    for (int i = 0; i < N; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(r[i].failures, 0);
    }
    pthread_barrier_destroy(&barrier);
    assert_int_equal(store_counter_add(s, "parallel", NOW, 3600, 0, &n), STORE_OK);
    assert_int_equal(n, N * PER_COUNTER_THREAD);
}

/* ---- login back-off ---- */

static int64_t attempt(struct store *s, const char *key, int64_t now)
{
    int64_t retry_ms = -1;
    assert_int_equal(store_login_attempt(s, key, now * 1000, 3, 2000, 8000, &retry_ms, NULL), STORE_OK);
    assert_int_equal(retry_ms % 1000, 0);
    return retry_ms / 1000;
}

/* password_guessing: after max failures the key is blocked for base,
 * doubling per further failure up to max; a blocked attempt changes
 * nothing. */
static void test_password_guessing_backoff(void **state)
{
    struct fx *f = *state;
    struct store *s = f->s;
    const char *k = "user:victim";
    int64_t t = NOW;
    assert_int_equal(attempt(s, k, t), 0);
    assert_int_equal(attempt(s, k, t), 0);
    assert_int_equal(attempt(s, k, t), 0); /* the third is allowed and starts the block */
    assert_int_equal(attempt(s, k, t), 2);
    assert_int_equal(attempt(s, k, t + 1), 1); /* still blocked, counting down */
    assert_int_equal(attempt(s, k, t + 1), 1); /* blocked attempts do not extend it */

    t += 2; /* block over: one more try, then 4 s */
    assert_int_equal(attempt(s, k, t), 0);
    assert_int_equal(attempt(s, k, t), 4);
    t += 4;
    assert_int_equal(attempt(s, k, t), 0);
    assert_int_equal(attempt(s, k, t), 8);
    t += 8;
    assert_int_equal(attempt(s, k, t), 0);
    assert_int_equal(attempt(s, k, t), 8); /* capped */
    t += 8;
    assert_int_equal(attempt(s, k, t), 0);
    assert_int_equal(attempt(s, k, t), 8);

    /* Other keys are independent. */
    assert_int_equal(attempt(s, "user:someone-else", t), 0);

    /* A success resets the key. */
    assert_int_equal(store_login_reset(s, k), STORE_OK);
    assert_int_equal(attempt(s, k, t), 0);
    assert_int_equal(attempt(s, k, t), 0);
    assert_int_equal(attempt(s, k, t), 0);
    assert_int_equal(attempt(s, k, t), 2);
    assert_int_equal(store_login_reset(s, "user:never-seen"), STORE_OK);
}

struct login_racer {
    struct store *s;
    pthread_barrier_t *barrier;
    enum store_rc rc;
    int64_t retry;
};

static void *login_run(void *arg)
{
    struct login_racer *r = arg;
    /* Connect first (PostgreSQL: a connection per thread), so that the
     * race below is between the attempts, not between connection set-ups
     * of 100 backends on two cores. */
    r->rc = warm_up(r->s);
    pthread_barrier_wait(r->barrier);
    if (r->rc != STORE_OK)
        return NULL;
    r->retry = -1;
    r->rc = store_login_attempt(r->s, "user:flooded", NOW_MS, 10, 60000, 900000, &r->retry, NULL);
    return NULL;
}

/* parallel_guessing: 100 guesses at once cannot slip past a limit of 10. */
static void test_parallel_guessing_100_threads(void **state)
{
    struct fx *f = *state;
    struct store *s = f->s;
    enum { N = 100 };
    pthread_barrier_t barrier;
    assert_int_equal(pthread_barrier_init(&barrier, NULL, N), 0);
    struct login_racer *r = calloc(N, sizeof *r);
    pthread_t th[N];
    assert_non_null(r);
    for (int i = 0; i < N; i++) {
        r[i].s = s;
        r[i].barrier = &barrier;
        assert_int_equal(pthread_create(&th[i], NULL, login_run, &r[i]), 0);
    }
    int allowed = 0, blocked = 0;
    for (int i = 0; i < N; i++) {
        pthread_join(th[i], NULL);
        if (r[i].rc != STORE_OK)
            fail_msg("thread %d: %s", i, store_rc_name(r[i].rc));
        if (r[i].retry == 0)
            allowed++;
        else if (r[i].retry == 60000)
            blocked++;
        else
            fail_msg("thread %d: retry_after %lld", i, (long long)r[i].retry);
    }
    pthread_barrier_destroy(&barrier);
    free(r);
    assert_int_equal(allowed, 10);
    assert_int_equal(blocked, N - 10);
}

/* ---- prune ---- */

static void test_prune(void **state)
{
    struct fx *f = *state;
    struct store *s = f->s;
    char uid[UUID_STR_LEN], a[UUID_STR_LEN], b[UUID_STR_LEN], old[UUID_STR_LEN],
        recent[UUID_STR_LEN];
    mkuser(s, "pat", "$h", uid);
    mklive(s, uid, NOW - 100, a);
    mklive(s, uid, NOW - 90, b);
    struct revocation r1 = {.now_ms = NOW_MS, .expires_ms = NOW_MS + 1000};
    struct revocation r2 = {.now_ms = NOW_MS, .expires_ms = NOW_MS + 5000};
    assert_int_equal(store_session_revoke(s, uid, a, "logout", &r1), STORE_OK);
    assert_int_equal(store_session_revoke(s, uid, b, "logout", &r2), STORE_OK);
    /* Sessions that ended two days ago, and one second ago. */
    mksess(s, uid, NOW - 10 * DAY, NOW - 3 * DAY, NOW - 2 * DAY, 0, 0, old);
    mksess(s, uid, NOW - 10 * DAY, NOW - 3 * DAY, NOW - 1, 0, 0, recent);

    assert_int_equal(store_prune(s, NOW, NOW_MS + 1000), STORE_OK);
    assert_int_equal(revs_since(s, 0).n, 2); /* expiring exactly now: kept */
    assert_int_equal(store_prune(s, NOW, NOW_MS + 1001), STORE_OK);
    struct rev_list r = revs_since(s, 0);
    assert_int_equal(r.n, 1);
    assert_string_equal(r.sid[0], b);
    assert_int_equal(store_prune(s, NOW, NOW_MS + 5001), STORE_OK);
    assert_int_equal(revs_since(s, 0).n, 0);

    /* A session long over is forgotten; a recent one is still known, so a
     * late refresh is told "expired" rather than "unknown". */
    assert_outcome(do_refresh(s, old, 0, NOW_MS, NULL, NULL), REFRESH_UNKNOWN);
    assert_outcome(do_refresh(s, recent, 0, NOW_MS, NULL, NULL), REFRESH_EXPIRED);
    assert_outcome(do_refresh(s, a, 0, NOW_MS, NULL, NULL), REFRESH_REVOKED);

    /* Stale login failures and counters go; the store keeps working. */
    int64_t retry = -1;
    assert_int_equal(
        store_login_attempt(s, "user:old", (NOW - 3 * DAY) * 1000, 1, 60000, 3600000, &retry, NULL),
        STORE_OK);
    assert_int_equal(retry, 0);
    assert_int_equal(store_prune(s, NOW, NOW_MS), STORE_OK);
    /* Forgotten: this is failure 1 again (a 60 s block), not failure 2 (120 s). */
    assert_int_equal(store_login_attempt(s, "user:old", NOW_MS, 1, 60000, 3600000, &retry, NULL),
                     STORE_OK);
    assert_int_equal(retry, 0);
    assert_int_equal(store_login_attempt(s, "user:old", NOW_MS, 1, 60000, 3600000, &retry, NULL),
                     STORE_OK);
    assert_int_equal(retry, 60000);
}


/* ---- accounts an operator disabled ---- */

/* Run SQL on the test's database directly (a backlog far larger than the
 * API could write in a unit test's time); the first column of the last
 * row, as a number (0 without rows). */
static long long raw_sql(const struct fx *f, const char *sql)
{
    long long v = 0;
    if (on_postgres()) {
#ifdef JWTD_HAVE_POSTGRES
        PGconn *pg = PQconnectdb(f->url);
        if (PQstatus(pg) != CONNECTION_OK)
            fail_msg("cannot connect: %s", PQerrorMessage(pg));
        PGresult *res = PQexec(pg, sql);
        if (PQresultStatus(res) != PGRES_COMMAND_OK && PQresultStatus(res) != PGRES_TUPLES_OK)
            fail_msg("%s: %s", sql, PQerrorMessage(pg));
        if (PQntuples(res) > 0)
            v = atoll(PQgetvalue(res, PQntuples(res) - 1, 0));
        PQclear(res);
        PQfinish(pg);
#endif
        return v;
    }
    sqlite3 *db = NULL;
    if (sqlite3_open(f->path, &db) != SQLITE_OK)
        fail_msg("sqlite3_open: %s", sqlite3_errmsg(db));
    sqlite3_busy_timeout(db, 5000);
    const char *tail = sql;
    while (tail && *tail) {
        sqlite3_stmt *q = NULL;
        if (sqlite3_prepare_v2(db, tail, -1, &q, &tail) != SQLITE_OK)
            fail_msg("%s: %s", sql, sqlite3_errmsg(db));
        int rc;
        while ((rc = sqlite3_step(q)) == SQLITE_ROW)
            v = sqlite3_column_int64(q, 0);
        if (rc != SQLITE_DONE)
            fail_msg("%s: %s", sql, sqlite3_errmsg(db));
        sqlite3_finalize(q);
    }
    sqlite3_close(db);
    return v;
}

struct prune_writer {
    struct store *s;
    atomic_bool done;
    int writes, failed;
    int64_t longest_ms;
};

/* Rate-limit writes, one every few milliseconds, timed, until the prune
 * is over. */
static void *prune_writer(void *arg)
{
    struct prune_writer *w = arg;
    while (!atomic_load(&w->done)) {
        int64_t n = 0, start = 0, t0 = util_mono_ms();
        if (store_counter_add_in_window(w->s, "login:addr:192.0.2.1", NOW, 600, 1, &n, &start) !=
            STORE_OK)
            w->failed++;
        int64_t ms = util_mono_ms() - t0;
        if (ms > w->longest_ms)
            w->longest_ms = ms;
        w->writes++;
        usleep(2000);
    }
    return NULL;
}

/* A backlog (a day of random usernames guessed, a server stopped for a
 * week) is pruned in short transactions: within each backend's deadline
 * (JWTD_DB_TIMEOUT: PostgreSQL cancelled the one DELETE over it, every 10
 * minutes, so the backlog only grew), and never holding the write lock so
 * long that a login's counters wait for the whole of it (SQLite). */
static void test_prune_backlog_in_short_transactions(void **state)
{
    struct fx *f = *state;
    raw_sql(f, on_postgres()
                   ? "INSERT INTO login_failures(key, failures, blocked_until, updated_at)"
                     " SELECT '#' || md5(i::text), 1, 0, 1000 FROM generate_series(1, 300000) i;"
                     "INSERT INTO counters(key, window_start, count)"
                     " SELECT 'login:addr:' || i, 1000, 1 FROM generate_series(1, 100000) i;"
                     "INSERT INTO login_failures(key, failures, blocked_until, updated_at)"
                     " VALUES ('user:live', 1, 0, 1800000000)"
                   : "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 300000)"
                     " INSERT INTO login_failures(key, failures, blocked_until, updated_at)"
                     " SELECT '#' || hex(randomblob(16)), 1, 0, 1000 FROM n;"
                     "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 100000)"
                     " INSERT INTO counters(key, window_start, count)"
                     " SELECT 'login:addr:' || i, 1000, 1 FROM n;"
                     "INSERT INTO login_failures(key, failures, blocked_until, updated_at)"
                     " VALUES ('user:live', 1, 0, 1800000000)");
    /* A deadline of 60 ms: each of the prune's statements must fit. */
    struct store *s2 = NULL;
    char err[256] = "";
    struct store_options opt = {.timeout_ms = 60, .on_event = print_event};
    assert_int_equal(store_open(f->url, &opt, &s2, err, sizeof err), STORE_OK);
    struct prune_writer w = {.s = s2};
    atomic_init(&w.done, false);
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, prune_writer, &w), 0);
    usleep(20000);
    int64_t t0 = util_mono_ms();
    enum store_rc rc = store_prune(s2, NOW, NOW_MS);
    int64_t took = util_mono_ms() - t0;
    atomic_store(&w.done, true);
    pthread_join(t, NULL);
    fprintf(stderr, "prune: %s in %lld ms; writes %d (%d failed), longest %lld ms\n",
            store_rc_name(rc), (long long)took, w.writes, w.failed, (long long)w.longest_ms);
    assert_int_equal(rc, STORE_OK);
    assert_int_equal(w.failed, 0);
    /* The writes went on during the prune: none waited for a quarter of
     * it (one transaction made a write wait for all of it: 1,473 of about
     * 1,500 ms here). Relative, not in milliseconds: a sanitizer build on
     * a busy machine takes ten times as long for everything. */
    assert_true(w.longest_ms * 4 < took);
    store_close(s2);

    /* All of it gone, what is not due kept. */
    int64_t failures = 0, blocked = 0;
    assert_int_equal(store_login_get(f->s, "user:live", &failures, &blocked), STORE_OK);
    assert_int_equal(failures, 1);
    int64_t n = 0, start = 0;
    assert_int_equal(store_counter_add_in_window(f->s, "login:addr:7", NOW, 600, 1, &n, &start),
                     STORE_OK);
    assert_int_equal(n, 1);
    assert_int_equal(start, NOW);
    assert_int_equal(raw_sql(f, "SELECT count(*) FROM login_failures"), 1);
    assert_int_equal(raw_sql(f, "SELECT count(*) FROM counters"), 2);
}

static void test_disable_revokes_and_refuses_refresh(void **state)
{
    struct fx *f = *state;
    struct store *s = f->s;
    char uid[UUID_STR_LEN], other[UUID_STR_LEN], s1[UUID_STR_LEN], s2[UUID_STR_LEN],
        s3[UUID_STR_LEN];
    mkuser(s, "Mallory", "$h", uid);
    mkuser(s, "Bystander", "$h", other);
    mklive(s, uid, NOW - 100, s1);
    mklive(s, uid, NOW - 50, s2);
    mklive(s, other, NOW - 50, s3);
    struct revocation rev = {.now_ms = NOW_MS, .expires_ms = NOW_MS + 910 * 1000};
    int n = -1;
    assert_int_equal(store_user_set_disabled(s, uid, true, &rev, &n), STORE_OK);
    assert_int_equal(n, 2);
    struct store_user u = {0};
    assert_int_equal(store_user_by_name(s, "mallory", &u), STORE_OK);
    assert_true(u.disabled_at > 0);
    store_user_clear(&u);
    /* Both sessions are fed to every instance; the bystander's is not. */
    struct rev_list rl = revs_since(s, NOW_MS);
    assert_true(rev_find(&rl, s1) >= 0);
    assert_true(rev_find(&rl, s2) >= 0);
    assert_int_equal(rev_find(&rl, s3), -1);
    assert_int_equal(list_at(s, uid, NOW).n, 0);
    assert_int_equal(list_at(s, other, NOW).n, 1);
    assert_outcome(do_refresh(s, s1, 0, NOW_MS + 1000, NULL, NULL), REFRESH_REVOKED);
    assert_outcome(do_refresh(s, s3, 0, NOW_MS + 1000, NULL, NULL), REFRESH_ROTATED);

    /* A login that raced the disabling opens no session (the row is held
     * and must be enabled)... */
    struct store_session ss = {.created_at = NOW - 5, .last_used_at = NOW - 5,
                               .expires_at = NOW + ABSOLUTE};
    assert_true(util_uuid7(ss.id));
    snprintf(ss.user_id, sizeof ss.user_id, "%s", uid);
    assert_int_equal(store_session_create(s, &ss, NULL), STORE_NOT_FOUND);
    /* ... and a session that slipped in anyway (written by an older jwtd
     * on the same database) is refused by the owner's flag. */
    char late[UUID_STR_LEN];
    memcpy(late, ss.id, UUID_STR_LEN);
    assert_int_equal(s->ops->session_insert(s, &ss), STORE_OK);
    assert_outcome(do_refresh(s, late, 0, NOW_MS + 1000, NULL, NULL), REFRESH_REVOKED);

    /* Enabling lets the account in again; ended sessions stay ended. */
    assert_int_equal(store_user_set_disabled(s, uid, false, &rev, &n), STORE_OK);
    assert_int_equal(n, 0);
    assert_int_equal(store_user_by_id(s, uid, &u), STORE_OK);
    assert_int_equal(u.disabled_at, 0);
    store_user_clear(&u);
    assert_outcome(do_refresh(s, s2, 0, NOW_MS + 2000, NULL, NULL), REFRESH_REVOKED);
    assert_outcome(do_refresh(s, late, 0, NOW_MS + 2000, NULL, NULL), REFRESH_ROTATED);

    char nobody[UUID_STR_LEN];
    assert_true(util_uuid7(nobody));
    assert_int_equal(store_user_set_disabled(s, nobody, true, &rev, &n), STORE_NOT_FOUND);
}

static void test_login_state_read_and_reset(void **state)
{
    struct fx *f = *state;
    struct store *s = f->s;
    int64_t failures = -1, until = -1;
    assert_int_equal(store_login_get(s, "login:user:nobody", &failures, &until), STORE_OK);
    assert_int_equal(failures, 0);
    assert_int_equal(until, 0);
    int64_t retry = 0;
    for (int i = 0; i < 3; i++) {
        assert_int_equal(
            store_login_attempt(s, "login:user:carol", NOW_MS, 3, 60000, 3600000, &retry, NULL),
            STORE_OK);
        assert_int_equal(retry, 0);
    }
    assert_int_equal(store_login_get(s, "login:user:carol", &failures, &until), STORE_OK);
    assert_int_equal(failures, 3);
    assert_int_equal(until, NOW_MS + 60000);
    /* Milliseconds count: a block is as long as it says whenever it began. */
    assert_int_equal(
        store_login_attempt(s, "login:user:carol", NOW_MS + 999, 3, 60000, 3600000, &retry, NULL),
        STORE_OK);
    assert_int_equal(retry, 59001);
    /* An operator's unlock. */
    assert_int_equal(store_login_reset(s, "login:user:carol"), STORE_OK);
    assert_int_equal(store_login_get(s, "login:user:carol", &failures, &until), STORE_OK);
    assert_int_equal(failures, 0);
    assert_int_equal(
        store_login_attempt(s, "login:user:carol", NOW_MS + 2000, 3, 60000, 3600000, &retry, NULL),
        STORE_OK);
    assert_int_equal(retry, 0);
}

/* A refunded attempt (a right password while a second factor is due, or a
 * password never checked) lifts the block it set, even when earlier
 * failures keep the count at the limit; a block set by another attempt
 * stays. */
static void test_login_refund_lifts_its_own_block(void **state)
{
    struct fx *f = *state;
    struct store *s = f->s;
    const char *key = "login:user:dave";
    int64_t retry = 0, set = -1, failures = 0, until = 0, t = NOW_MS;
    for (int i = 0; i < 2; i++) /* max 2: the second failure blocks for 1 s */
        assert_int_equal(store_login_attempt(s, key, t, 2, 1000, 60000, &retry, &set), STORE_OK);
    assert_int_equal(set, t + 1000);
    t += 1000; /* the block is over: the user tries again */
    assert_int_equal(store_login_attempt(s, key, t, 2, 1000, 60000, &retry, &set), STORE_OK);
    assert_int_equal(retry, 0);
    assert_int_equal(set, t + 2000); /* this attempt doubled the block */
    assert_int_equal(store_login_refund(s, key, 2, set), STORE_OK);
    assert_int_equal(store_login_get(s, key, &failures, &until), STORE_OK);
    assert_int_equal(failures, 2); /* the earlier failures stay */
    assert_int_equal(until, 0);    /* but its own block is gone */
    /* The next failure blocks as the third would have. */
    assert_int_equal(store_login_attempt(s, key, t + 1, 2, 1000, 60000, &retry, &set), STORE_OK);
    assert_int_equal(set, t + 1 + 2000);
    /* A refund carrying another attempt's block leaves this one. */
    assert_int_equal(store_login_refund(s, key, 2, t + 5), STORE_OK);
    assert_int_equal(store_login_get(s, key, &failures, &until), STORE_OK);
    assert_int_equal(failures, 2);
    assert_int_equal(until, t + 1 + 2000);
}

struct events {
    int warnings;
    char last[512];
};

static void on_event(void *ctx, enum store_event ev, const char *detail)
{
    struct events *e = ctx;
    if (ev == STORE_EV_WARNING) {
        e->warnings++;
        snprintf(e->last, sizeof e->last, "%s", detail);
    }
}

static mode_t mode_of(const char *path)
{
    struct stat sb;
    assert_int_equal(stat(path, &sb), 0);
    return sb.st_mode & 0777;
}

/* The database file holds private keys and hashes: created 0600 whatever
 * the umask, and so are its WAL and shared-memory files; a file others can
 * read, or a world-writable directory, is reported; a command that only
 * reads never creates a database. */
static void test_sqlite_files_are_private(void **state)
{
    struct fx *f = *state;
    if (on_postgres())
        skip();
    assert_int_equal(mode_of(f->path) & 077, 0);
    char id[UUID_STR_LEN];
    mkuser(f->s, "Filemode", "$h", id); /* a write: the WAL exists now */
    char wal[320], shm[320];
    snprintf(wal, sizeof wal, "%s-wal", f->path);
    snprintf(shm, sizeof shm, "%s-shm", f->path);
    assert_int_equal(mode_of(wal) & 077, 0);
    assert_int_equal(mode_of(shm) & 077, 0);

    mode_t old = umask(0);
    char p2[320], url[340], err[256];
    snprintf(p2, sizeof p2, "%s/other.db", f->dir);
    snprintf(url, sizeof url, "sqlite:%s", p2);
    struct events ev = {0};
    struct store_options opt = {.sqlite_sync_full = true, .on_event = on_event, .event_ctx = &ev};
    struct store *s2 = NULL;
    assert_int_equal(store_open(url, &opt, &s2, err, sizeof err), STORE_OK);
    umask(old);
    assert_int_equal(mode_of(p2), 0600);
    assert_int_equal(ev.warnings, 0);
    store_close(s2);

    /* Made readable by others behind our back: reported when opened. */
    assert_int_equal(chmod(p2, 0644), 0);
    assert_int_equal(store_open(url, &opt, &s2, err, sizeof err), STORE_OK);
    assert_int_equal(ev.warnings, 1);
    assert_non_null(strstr(ev.last, "644"));
    store_close(s2);

    /* A world-writable directory (without the sticky bit) is reported. */
    assert_int_equal(chmod(f->dir, 0777), 0);
    ev.warnings = 0;
    assert_int_equal(chmod(p2, 0600), 0);
    assert_int_equal(store_open(url, &opt, &s2, err, sizeof err), STORE_OK);
    assert_int_equal(ev.warnings, 1);
    assert_non_null(strstr(ev.last, "writable by every user"));
    store_close(s2);
    assert_int_equal(chmod(f->dir, 0700), 0);

    /* must_exist: a mistyped path is an error, and nothing is created. */
    char p3[320], url3[340];
    snprintf(p3, sizeof p3, "%s/typo.db", f->dir);
    snprintf(url3, sizeof url3, "sqlite:%s", p3);
    struct store_options ro = {.must_exist = true};
    err[0] = '\0';
    assert_int_equal(store_open(url3, &ro, &s2, err, sizeof err), STORE_NOT_FOUND);
    assert_non_null(strstr(err, "no database"));
    assert_int_equal(access(p3, F_OK), -1);
    /* ... and an existing one opens. */
    assert_int_equal(store_open(url, &ro, &s2, err, sizeof err), STORE_OK);
    store_close(s2);
}

/* ---- e-mail addresses, one-time tokens, the outbox ---- */

static void mkuser_email(struct store *s, const char *name, const char *email, bool verified,
                         char id[UUID_STR_LEN])
{
    struct store_user u = {0};
    assert_true(util_uuid7(u.id));
    snprintf(u.username, sizeof u.username, "%s", name);
    snprintf(u.email, sizeof u.email, "%s", email);
    u.email_verified = verified;
    u.password_hash = "$h-old";
    u.created_at = NOW - 1000;
    assert_int_equal(store_user_create(s, &u), STORE_OK);
    memcpy(id, u.id, UUID_STR_LEN);
}

/* Try to create an account (email may be NULL): the store's answer. */
static enum store_rc try_create(struct store *s, const char *name, const char *email)
{
    struct store_user u = {.password_hash = "$h", .created_at = NOW};
    if (!util_uuid7(u.id))
        return STORE_ERROR;
    snprintf(u.username, sizeof u.username, "%s", name);
    snprintf(u.email, sizeof u.email, "%s", email ? email : "");
    return store_user_create(s, &u);
}

static struct store_email_token token_of(const char *user_id, enum email_purpose purpose,
                                         const char *hash, const char *email)
{
    struct store_email_token t = {0};
    snprintf(t.token_hash, sizeof t.token_hash, "%s", hash);
    snprintf(t.user_id, sizeof t.user_id, "%s", user_id);
    t.purpose = purpose;
    snprintf(t.email, sizeof t.email, "%s", email);
    snprintf(t.code_hash, sizeof t.code_hash, "code-%s", hash);
    t.created_at = NOW;
    t.expires_at = NOW + 1800;
    return t;
}

static struct store_mail mail_of(const char *kind, const char *user_id, const char *to,
                                 int64_t due_ms)
{
    struct store_mail m = {0};
    assert_true(util_uuid7(m.id));
    snprintf(m.kind, sizeof m.kind, "%s", kind);
    snprintf(m.user_id, sizeof m.user_id, "%s", user_id);
    snprintf(m.to, sizeof m.to, "%s", to);
    m.params = "{\"username\":\"x\"}";
    m.created_ms = due_ms;
    m.next_attempt_ms = due_ms;
    m.give_up_ms = due_ms + 86400000;
    return m;
}

static void test_user_email_columns(void **state)
{
    struct fx *f = *state;
    struct store *s = f->s;
    char a[UUID_STR_LEN], b[UUID_STR_LEN], c[UUID_STR_LEN];
    mkuser_email(s, "Eve", "eve@example.com", false, a);
    mkuser(s, "Noemail", "$h", c);
    struct store_user u = {0};
    assert_int_equal(store_user_by_email(s, "eve@example.com", &u), STORE_OK);
    assert_string_equal(u.id, a);
    assert_string_equal(u.email, "eve@example.com");
    assert_false(u.email_verified);
    assert_string_equal(u.email_pending, "");
    store_user_clear(&u);
    assert_int_equal(store_user_by_id(s, c, &u), STORE_OK);
    assert_string_equal(u.email, "");
    store_user_clear(&u);
    /* An address belongs to one account. */
    assert_int_equal(try_create(s, "Eve2", "eve@example.com"), STORE_CONFLICT);
    mkuser_email(s, "Fay", "fay@example.com", true, b);
    assert_int_equal(store_user_set_email(s, b, "eve@example.com", true, NULL), STORE_CONFLICT);
    /* A pending address is not an address yet. */
    assert_int_equal(store_user_set_email(s, b, "fay@example.com", true, "new@example.com"),
                     STORE_OK);
    assert_int_equal(store_user_by_email(s, "new@example.com", &u), STORE_NOT_FOUND);
    assert_int_equal(store_user_by_id(s, b, &u), STORE_OK);
    assert_true(u.email_verified);
    assert_string_equal(u.email_pending, "new@example.com");
    store_user_clear(&u);
    /* Removing the address frees it, and "verified" goes with it. */
    assert_int_equal(store_user_set_email(s, a, NULL, true, NULL), STORE_OK);
    assert_int_equal(store_user_by_id(s, a, &u), STORE_OK);
    assert_string_equal(u.email, "");
    assert_false(u.email_verified);
    store_user_clear(&u);
    assert_int_equal(store_user_set_email(s, c, "eve@example.com", false, NULL), STORE_OK);
}

/* Compare and set of the e-mail columns: written only while they are what
 * the caller read; a confirmation that came in between (the pending
 * address became the address) makes the stale write lose, unchanged. */
static void test_set_email_if(void **state)
{
    struct fx *f = *state;
    struct store *s = f->s;
    char a[UUID_STR_LEN];
    mkuser_email(s, "Cas", "cas@example.com", true, a);
    struct store_user seen = {0};
    assert_int_equal(store_user_by_id(s, a, &seen), STORE_OK);
    store_user_clear(&seen);
    /* a pending change, written against what was read */
    assert_int_equal(store_user_set_email_if(s, &seen, "cas@example.com", true, "new@example.com"),
                     STORE_OK);
    /* the same reading is stale now: refused, nothing written */
    assert_int_equal(store_user_set_email_if(s, &seen, NULL, false, NULL), STORE_NOT_FOUND);
    struct store_user u = {0};
    assert_int_equal(store_user_by_id(s, a, &u), STORE_OK);
    assert_string_equal(u.email, "cas@example.com");
    assert_string_equal(u.email_pending, "new@example.com");
    /* a fresh reading wins; a verified flag alone differing is a change too */
    assert_int_equal(store_user_set_email_if(s, &u, "new@example.com", false, NULL), STORE_OK);
    struct store_user v = u;
    assert_int_equal(store_user_by_id(s, a, &v), STORE_OK);
    store_user_clear(&v);
    assert_int_equal(store_user_set_email_if(s, &v, "new@example.com", true, NULL), STORE_OK);
    assert_int_equal(store_user_set_email_if(s, &v, NULL, false, NULL), STORE_NOT_FOUND);
    store_user_clear(&u);
    /* a conflict is still a conflict; a missing account is not found */
    char b[UUID_STR_LEN];
    mkuser_email(s, "Other", "other@example.com", true, b);
    assert_int_equal(store_user_by_id(s, b, &u), STORE_OK);
    store_user_clear(&u);
    assert_int_equal(store_user_set_email_if(s, &u, "new@example.com", true, NULL), STORE_CONFLICT);
    snprintf(u.id, sizeof u.id, "01a00000-0000-7000-8000-000000000000");
    assert_int_equal(store_user_set_email_if(s, &u, NULL, false, NULL), STORE_NOT_FOUND);
}

/* One identifier names one account: login takes a username or an address,
 * so no account's username may be another's address, whichever is written
 * first, and the database itself refuses it (not only the service's check
 * before the write, which two requests at once could both pass). */
static void test_one_identifier_per_account(void **state)
{
    struct fx *f = *state;
    struct store *s = f->s;
    char a[UUID_STR_LEN], b[UUID_STR_LEN], c[UUID_STR_LEN];
    mkuser(s, "x@example.com", "$h", a);
    mkuser_email(s, "Bo", "bo@example.com", false, b);
    /* an address that is another account's username: at sign-up ... */
    assert_int_equal(try_create(s, "Cy", "x@example.com"), STORE_CONFLICT);
    /* ... or later, as the address or on confirming a pending one */
    assert_int_equal(store_user_set_email(s, b, "x@example.com", true, NULL), STORE_CONFLICT);
    assert_int_equal(store_user_set_email(s, b, "bo@example.com", true, "x@example.com"),
                     STORE_OK);
    assert_int_equal(store_user_set_email(s, b, "x@example.com", true, NULL), STORE_CONFLICT);
    /* a username that is another account's address (keys fold case alike) */
    assert_int_equal(try_create(s, "BO@Example.com", NULL), STORE_CONFLICT);
    /* nothing was written by the refusals */
    struct store_user u = {0};
    assert_int_equal(store_user_by_name(s, "Cy", &u), STORE_NOT_FOUND);
    assert_int_equal(store_user_by_id(s, b, &u), STORE_OK);
    assert_string_equal(u.email, "bo@example.com");
    store_user_clear(&u);
    /* An account's own username may be its address, and an unchanged
     * address may be written again (the refused pairs above are across
     * accounts only). */
    mkuser_email(s, "cy@example.com", "cy@example.com", true, c);
    assert_int_equal(store_user_set_email(s, c, "cy@example.com", true, NULL), STORE_OK);
    /* Freed, an identifier can be taken by another account. */
    assert_int_equal(store_user_set_email(s, b, NULL, false, NULL), STORE_OK);
    char d[UUID_STR_LEN];
    mkuser(s, "bo@example.com", "$h", d);
}

enum { IDENT_ROUNDS = 40 };

struct ident_racer {
    struct store *s;
    pthread_barrier_t *barrier;
    bool takes_address; /* else signs up with the identifier as username */
    const char *holder_id; /* the account whose address it would become */
    enum store_rc rc[IDENT_ROUNDS];
};

static void *ident_run(void *arg)
{
    struct ident_racer *r = arg;
    warm_up(r->s);
    for (int i = 0; i < IDENT_ROUNDS; i++) {
        char ident[64];
        snprintf(ident, sizeof ident, "race-%d@example.com", i);
        pthread_barrier_wait(r->barrier);
        char holder[32];
        snprintf(holder, sizeof holder, "holder-%d", i);
        if (!r->takes_address)
            r->rc[i] = try_create(r->s, ident, NULL);
        else if (i % 2 == 0) /* an existing account takes it as its address */
            r->rc[i] = store_user_set_email(r->s, r->holder_id, ident, false, NULL);
        else /* a new account signs up with it as its address */
            r->rc[i] = try_create(r->s, holder, ident);
    }
    return NULL;
}

/* The same identifier as one account's username and another's address, at
 * the same instant, in 40 rounds: each round exactly one write wins. */
static void test_one_identifier_race(void **state)
{
    struct fx *f = *state;
    char holder[UUID_STR_LEN];
    mkuser(f->s, "holder", "$h", holder);
    pthread_barrier_t barrier;
    assert_int_equal(pthread_barrier_init(&barrier, NULL, 2), 0);
    struct ident_racer r[2] = {
        {.s = f->s, .barrier = &barrier, .takes_address = false},
        {.s = f->s, .barrier = &barrier, .takes_address = true, .holder_id = holder},
    };
    pthread_t th[2];
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_create(&th[i], NULL, ident_run, &r[i]), 0);
    for (int i = 0; i < 2; i++)
        pthread_join(th[i], NULL);
    pthread_barrier_destroy(&barrier);
    int name_won = 0;
    for (int i = 0; i < IDENT_ROUNDS; i++) {
        enum store_rc n = r[0].rc[i], e = r[1].rc[i];
        if (!((n == STORE_OK && e == STORE_CONFLICT) || (n == STORE_CONFLICT && e == STORE_OK)))
            fail_msg("round %d: username write %s, address write %s (want one of each)", i,
                     store_rc_name(n), store_rc_name(e));
        name_won += n == STORE_OK;
        /* and the database agrees with the answers */
        char ident[64];
        snprintf(ident, sizeof ident, "race-%d@example.com", i);
        struct store_user u = {0};
        assert_int_equal(store_user_by_name(f->s, ident, &u), n == STORE_OK ? STORE_OK
                                                                            : STORE_NOT_FOUND);
        store_user_clear(&u);
        enum store_rc by_email = store_user_by_email(f->s, ident, &u);
        store_user_clear(&u);
        if (i % 2 == 1)
            assert_int_equal(by_email, e == STORE_OK ? STORE_OK : STORE_NOT_FOUND);
    }
    print_message("username won %d of %d rounds\n", name_won, IDENT_ROUNDS);
}

static void test_email_tokens(void **state)
{
    struct fx *f = *state;
    struct store *s = f->s;
    char uid[UUID_STR_LEN];
    mkuser_email(s, "Tok", "tok@example.com", false, uid);
    struct store_email_token t1 = token_of(uid, EMAIL_VERIFY, "h1", "tok@example.com");
    struct store_mail m = mail_of("verify_email", uid, "tok@example.com", NOW_MS);
    assert_int_equal(store_mail_enqueue(s, &t1, &m, 1), STORE_OK);
    struct store_email_token got;
    assert_int_equal(store_email_token_by_hash(s, "h1", &got), STORE_OK);
    assert_string_equal(got.user_id, uid);
    assert_int_equal(got.purpose, EMAIL_VERIFY);
    assert_string_equal(got.code_hash, "code-h1");
    assert_int_equal(got.expires_at, NOW + 1800);
    /* A newer token of the purpose replaces the older one. */
    struct store_email_token t2 = token_of(uid, EMAIL_VERIFY, "h2", "tok@example.com");
    assert_int_equal(store_mail_enqueue(s, &t2, NULL, 0), STORE_OK);
    assert_int_equal(store_email_token_by_hash(s, "h1", &got), STORE_NOT_FOUND);
    assert_int_equal(store_email_token_by_user(s, uid, EMAIL_VERIFY, &got), STORE_OK);
    assert_string_equal(got.token_hash, "h2");
    int n = 0;
    assert_int_equal(store_email_token_attempt(s, uid, EMAIL_VERIFY, &n), STORE_OK);
    assert_int_equal(n, 1);
    assert_int_equal(store_email_token_attempt(s, uid, EMAIL_VERIFY, &n), STORE_OK);
    assert_int_equal(n, 2);
    assert_int_equal(store_email_token_attempt(s, uid, EMAIL_RESET, &n), STORE_NOT_FOUND);
    /* Expired (checked inside the transaction, at the time given): refused
     * and kept, for the caller to say so. */
    assert_int_equal(store_email_confirm(s, &t2, NOW + 1800), STORE_NOT_FOUND);
    assert_int_equal(store_email_token_by_hash(s, "h2", &got), STORE_OK);
    /* Confirming moves the address in and uses the token up. */
    assert_int_equal(store_email_confirm(s, &t2, NOW + 1799), STORE_OK);
    struct store_user u = {0};
    assert_int_equal(store_user_by_id(s, uid, &u), STORE_OK);
    assert_true(u.email_verified);
    store_user_clear(&u);
    assert_int_equal(store_email_confirm(s, &t2, NOW), STORE_NOT_FOUND);

    /* A pending address confirmed: it becomes the address. */
    assert_int_equal(store_user_set_email(s, uid, "tok@example.com", true, "tok2@example.com"),
                     STORE_OK);
    struct store_email_token t3 = token_of(uid, EMAIL_VERIFY, "h3", "tok2@example.com");
    assert_int_equal(store_mail_enqueue(s, &t3, NULL, 0), STORE_OK);
    assert_int_equal(store_email_confirm(s, &t3, NOW), STORE_OK);
    assert_int_equal(store_user_by_email(s, "tok2@example.com", &u), STORE_OK);
    assert_string_equal(u.email_pending, "");
    assert_true(u.email_verified);
    store_user_clear(&u);
    assert_int_equal(store_user_by_email(s, "tok@example.com", &u), STORE_NOT_FOUND);
    /* A link for an address the account no longer waits for (removed or
     * replaced since) is void. */
    struct store_email_token t5 = token_of(uid, EMAIL_VERIFY, "h5", "gone@example.com");
    assert_int_equal(store_mail_enqueue(s, &t5, NULL, 0), STORE_OK);
    assert_int_equal(store_email_confirm(s, &t5, NOW), STORE_NOT_FOUND);
    assert_int_equal(store_user_by_id(s, uid, &u), STORE_OK);
    assert_string_equal(u.email, "tok2@example.com");
    store_user_clear(&u);
    /* A pending address another account took meanwhile: refused. */
    char other[UUID_STR_LEN];
    mkuser_email(s, "Taker", "taken@example.com", true, other);
    assert_int_equal(store_user_set_email(s, uid, "tok2@example.com", true, "taken@example.com"),
                     STORE_OK);
    struct store_email_token t4 = token_of(uid, EMAIL_VERIFY, "h4", "taken@example.com");
    assert_int_equal(store_mail_enqueue(s, &t4, NULL, 0), STORE_OK);
    assert_int_equal(store_email_confirm(s, &t4, NOW), STORE_CONFLICT);
    assert_int_equal(store_email_token_by_hash(s, "h4", &got), STORE_OK); /* rolled back */
}

static void test_password_reset_flow(void **state)
{
    struct fx *f = *state;
    struct store *s = f->s;
    char uid[UUID_STR_LEN], s1[UUID_STR_LEN], s2[UUID_STR_LEN];
    mkuser_email(s, "Rita", "rita@example.com", false, uid);
    mklive(s, uid, NOW - 100, s1);
    mklive(s, uid, NOW - 50, s2);
    /* A verification of the address is outstanding (its link and code). */
    struct store_email_token pend = token_of(uid, EMAIL_VERIFY, "v0", "rita@example.com");
    assert_int_equal(store_mail_enqueue(s, &pend, NULL, 0), STORE_OK);
    struct store_email_token t = token_of(uid, EMAIL_RESET, "r1", "rita@example.com");
    assert_int_equal(store_mail_enqueue(s, &t, NULL, 0), STORE_OK);
    int n = -1;
    struct store_user u = {0};
    /* Expired by the time the new password was hashed: refused, nothing
     * changed, the link still there (the caller says it expired). */
    struct revocation late = {.now_ms = (NOW + 1800) * 1000, .expires_ms = NOW_MS + 910000};
    assert_int_equal(store_password_reset(s, &t, "$h-late", &late, &n, &u), STORE_NOT_FOUND);
    struct store_email_token kept;
    assert_int_equal(store_email_token_by_hash(s, "r1", &kept), STORE_OK);
    struct revocation rev = {.now_ms = NOW_MS, .expires_ms = NOW_MS + 910000};
    assert_int_equal(store_password_reset(s, &t, "$h-new", &rev, &n, &u), STORE_OK);
    assert_int_equal(n, 2);
    assert_string_equal(u.id, uid);
    assert_null(u.password_hash);
    assert_true(u.email_verified); /* the link reached the address */
    /* ... which ends its verification: nothing left to check a code with */
    struct store_email_token left;
    assert_int_equal(store_email_token_by_user(s, uid, EMAIL_VERIFY, &left), STORE_NOT_FOUND);
    assert_int_equal(store_user_by_id(s, uid, &u), STORE_OK);
    assert_string_equal(u.password_hash, "$h-new");
    store_user_clear(&u);
    struct rev_list rl = revs_since(s, NOW_MS);
    assert_true(rev_find(&rl, s1) >= 0 && rev_find(&rl, s2) >= 0);
    /* Single use. */
    assert_int_equal(store_password_reset(s, &t, "$h-again", &rev, &n, &u), STORE_NOT_FOUND);

    /* Any later password change ends a reset link. */
    struct store_email_token t2 = token_of(uid, EMAIL_RESET, "r2", "rita@example.com");
    assert_int_equal(store_mail_enqueue(s, &t2, NULL, 0), STORE_OK);
    assert_int_equal(store_user_change_password(s, uid, NULL, "$h-changed", NULL, &rev, NULL),
                     STORE_OK);
    assert_int_equal(store_password_reset(s, &t2, "$h-late", &rev, &n, &u), STORE_NOT_FOUND);
    assert_int_equal(store_user_by_id(s, uid, &u), STORE_OK);
    assert_string_equal(u.password_hash, "$h-changed");
    store_user_clear(&u);
    /* A verification token is not a reset token. */
    struct store_email_token v = token_of(uid, EMAIL_VERIFY, "v1", "rita@example.com");
    assert_int_equal(store_mail_enqueue(s, &v, NULL, 0), STORE_OK);
    assert_int_equal(store_password_reset(s, &v, "$h-x", &rev, &n, &u), STORE_NOT_FOUND);
}

struct claimed {
    int n;
    char id[16][UUID_STR_LEN];
    int attempts[16];
    char params[16][64];
    char kind[16][32];
    char to[16][EMAIL_MAX + 1];
};

static void claim_cb(void *ctx, const struct store_mail *m)
{
    struct claimed *c = ctx;
    if (c->n < 16) {
        snprintf(c->id[c->n], UUID_STR_LEN, "%s", m->id);
        c->attempts[c->n] = m->attempts;
        snprintf(c->params[c->n], sizeof c->params[0], "%s", m->params);
        snprintf(c->kind[c->n], sizeof c->kind[0], "%s", m->kind);
        snprintf(c->to[c->n], sizeof c->to[0], "%s", m->to);
    }
    c->n++;
}

/* A "forgot" resolves once: the row becomes the reset mail and the token
 * is stored, together; a second resolution (a retry after a crash) finds
 * no "forgot" left and stores nothing - a token ended meanwhile stays
 * ended. */
static void test_outbox_forgot_resolves_once(void **state)
{
    struct fx *f = *state;
    struct store *s = f->s;
    char uid[UUID_STR_LEN];
    mkuser(s, "forgetful", "$h", uid);
    struct store_mail m = mail_of("forgot_password", "", "", NOW_MS);
    m.params = "{\"identifier\":\"forgetful\"}";
    assert_int_equal(store_outbox_insert(s, &m), STORE_OK);
    struct store_email_token t = token_of(uid, EMAIL_RESET, "h-resolve", "f@example.com");
    struct store_mail r = m;
    snprintf(r.kind, sizeof r.kind, "reset_password");
    snprintf(r.user_id, sizeof r.user_id, "%s", uid);
    snprintf(r.to, sizeof r.to, "f@example.com");
    r.params = "{\"username\":\"forgetful\"}";
    assert_int_equal(store_mail_resolve(s, &t, &r), STORE_OK);
    struct store_email_token got;
    assert_int_equal(store_email_token_by_hash(s, "h-resolve", &got), STORE_OK);
    struct claimed c = {0};
    assert_int_equal(store_outbox_claim(s, NOW_MS, NOW_MS + 60000, 8, claim_cb, &c), STORE_OK);
    assert_int_equal(c.n, 1);
    assert_string_equal(c.kind[0], "reset_password");
    assert_string_equal(c.to[0], "f@example.com");
    assert_string_equal(c.params[0], "{\"username\":\"forgetful\"}");
    /* The link is used (or a password change ends it); a retry resolves
     * again: nothing is stored. */
    assert_int_equal(store_email_token_delete(s, uid, EMAIL_RESET), STORE_OK);
    assert_int_equal(store_mail_resolve(s, &t, &r), STORE_NOT_FOUND);
    assert_int_equal(store_email_token_by_hash(s, "h-resolve", &got), STORE_NOT_FOUND);
    /* An unknown message stores nothing either. */
    struct store_mail none = mail_of("reset_password", uid, "f@example.com", NOW_MS);
    assert_int_equal(store_mail_resolve(s, &t, &none), STORE_NOT_FOUND);
    assert_int_equal(store_email_token_by_hash(s, "h-resolve", &got), STORE_NOT_FOUND);
}

struct resetter {
    struct store *s;
    pthread_barrier_t *barrier;
    struct store_email_token t;
    char hash[32];
    enum store_rc rc;
};

static void *reset_run(void *arg)
{
    struct resetter *r = arg;
    warm_up(r->s);
    struct revocation rev = {.now_ms = NOW_MS, .expires_ms = NOW_MS + 910000};
    struct store_user u = {0};
    pthread_barrier_wait(r->barrier);
    r->rc = store_password_reset(r->s, &r->t, r->hash, &rev, NULL, &u);
    return NULL;
}

/* One reset link used by eight requests at once (on PostgreSQL, eight
 * connections, as two instances would): one sets its password, the others
 * find the link gone - and the password kept is the winner's. */
static void test_password_reset_link_once_under_a_race(void **state)
{
    struct fx *f = *state;
    char uid[UUID_STR_LEN];
    mkuser(f->s, "Rory", "$h-old", uid);
    for (int round = 0; round < 5; round++) {
        char th_name[8];
        snprintf(th_name, sizeof th_name, "race%d", round);
        struct store_email_token t = token_of(uid, EMAIL_RESET, th_name, "");
        assert_int_equal(store_mail_enqueue(f->s, &t, NULL, 0), STORE_OK);
        enum { N = 8 };
        pthread_barrier_t barrier;
        assert_int_equal(pthread_barrier_init(&barrier, NULL, N), 0);
        struct resetter r[N];
        pthread_t th[N];
        for (int i = 0; i < N; i++) {
            r[i] = (struct resetter){.s = f->s, .barrier = &barrier, .t = t};
            snprintf(r[i].hash, sizeof r[i].hash, "$h-%d-%d", round, i);
            assert_int_equal(pthread_create(&th[i], NULL, reset_run, &r[i]), 0);
        }
        int winner = -1;
        for (int i = 0; i < N; i++) {
            pthread_join(th[i], NULL);
            if (r[i].rc == STORE_OK) {
                if (winner >= 0)
                    fail_msg("round %d: the link worked for %d and %d", round, winner, i);
                winner = i;
            } else {
                assert_int_equal(r[i].rc, STORE_NOT_FOUND);
            }
        }
        pthread_barrier_destroy(&barrier);
        assert_true(winner >= 0);
        struct store_user u = {0};
        assert_int_equal(store_user_by_id(f->s, uid, &u), STORE_OK);
        assert_string_equal(u.password_hash, r[winner].hash);
        store_user_clear(&u);
    }
}

/* Reuse detection on each of a user's sessions while the password changes
 * (which revokes them all): each side ends its transaction, neither is
 * refused. Found by an audit: on PostgreSQL the password change fed the
 * revocation row of a session whose row a refresh held, while the refresh,
 * revoking that session for reuse, waited on the same revocation row - a
 * deadlock, answered 503. Rows are now marked before they are fed. */
enum { REVOKERS = 4 };

struct revoker {
    struct store *s;
    pthread_barrier_t *barrier;
    const char *uid;       /* the password changer: the user */
    const char *sid;       /* a reuser: the session */
    int64_t at;            /* when (ms): past the reuse interval */
    enum store_rc rc;
    enum refresh_outcome out;
};

static void *revoker_run(void *arg)
{
    struct revoker *r = arg;
    warm_up(r->s);
    struct refresh_policy p = policy_at(r->at);
    pthread_barrier_wait(r->barrier);
    if (r->sid) {
        r->rc = store_refresh(r->s, r->sid, 0, &p, &r->out, NULL, NULL);
    } else {
        r->rc = store_user_change_password(r->s, r->uid, NULL, "$h-changed", NULL, &p.rev, NULL);
    }
    return NULL;
}

static void test_reuse_and_password_change_at_once(void **state)
{
    struct fx *f = *state;
    struct store *s = f->s;
    for (int round = 0; round < 20; round++) {
        char name[16], uid[UUID_STR_LEN], sid[REVOKERS][UUID_STR_LEN];
        snprintf(name, sizeof name, "Race%d", round);
        mkuser(s, name, "$h-old", uid);
        for (int i = 0; i < REVOKERS; i++) {
            mklive(s, uid, NOW - 100 + i, sid[i]);
            /* rotated once: generation 0 is retired, presented again
             * past the reuse interval it is theft */
            assert_outcome(do_refresh(s, sid[i], 0, NOW_MS, NULL, NULL), REFRESH_ROTATED);
        }
        pthread_barrier_t barrier;
        assert_int_equal(pthread_barrier_init(&barrier, NULL, REVOKERS + 1), 0);
        struct revoker r[REVOKERS + 1];
        pthread_t th[REVOKERS + 1];
        for (int i = 0; i <= REVOKERS; i++) {
            r[i] = (struct revoker){.s = s, .barrier = &barrier, .uid = uid,
                                    .sid = i < REVOKERS ? sid[i] : NULL,
                                    .at = NOW_MS + 2 * REUSE_MS + round * 1000};
            assert_int_equal(pthread_create(&th[i], NULL, revoker_run, &r[i]), 0);
        }
        for (int i = 0; i <= REVOKERS; i++)
            pthread_join(th[i], NULL);
        pthread_barrier_destroy(&barrier);
        for (int i = 0; i <= REVOKERS; i++) {
            if (r[i].rc != STORE_OK)
                fail_msg("round %d, %s: %s", round, i < REVOKERS ? "reuse" : "password change",
                         store_rc_name(r[i].rc));
            /* reuse found the session live, or already ended by the change */
            if (i < REVOKERS && r[i].out != REFRESH_REUSED && r[i].out != REFRESH_REVOKED)
                fail_msg("round %d: reuse answered %s", round, outcome_name(r[i].out));
        }
        /* every session ended, and each in the feed */
        assert_int_equal(list_at(s, uid, NOW).n, 0);
        struct rev_list rl = revs_since(s, r[0].at);
        for (int i = 0; i < REVOKERS; i++)
            assert_true(rev_find(&rl, sid[i]) >= 0);
    }
}

static void test_outbox(void **state)
{
    struct fx *f = *state;
    struct store *s = f->s;
    struct store_mail m1 = mail_of("verify_email", "", "a@example.com", NOW_MS);
    struct store_mail m2 = mail_of("reset_password", "", "b@example.com", NOW_MS + 5000);
    assert_int_equal(store_outbox_insert(s, &m1), STORE_OK);
    assert_int_equal(store_outbox_insert(s, &m2), STORE_OK);
    int64_t n = -1;
    assert_int_equal(store_outbox_count(s, MAIL_QUEUED, &n), STORE_OK);
    assert_int_equal(n, 2);
    /* Only what is due; leased messages are not handed out twice. */
    struct claimed c = {0};
    assert_int_equal(store_outbox_claim(s, NOW_MS, NOW_MS + 60000, 8, claim_cb, &c), STORE_OK);
    assert_int_equal(c.n, 1);
    assert_string_equal(c.id[0], m1.id);
    assert_string_equal(c.params[0], "{\"username\":\"x\"}");
    struct claimed c2 = {0};
    assert_int_equal(store_outbox_claim(s, NOW_MS + 1, NOW_MS + 60000, 8, claim_cb, &c2),
                     STORE_OK);
    assert_int_equal(c2.n, 0);
    /* A retry: the lease goes, the message waits until its new time. */
    assert_int_equal(store_outbox_finish(s, m1.id, MAIL_QUEUED, 1, NOW_MS + 10000, "421 busy",
                                         NOW_MS + 2),
                     STORE_OK);
    memset(&c, 0, sizeof c);
    assert_int_equal(store_outbox_claim(s, NOW_MS + 6000, NOW_MS + 66000, 8, claim_cb, &c),
                     STORE_OK);
    assert_int_equal(c.n, 1);
    assert_string_equal(c.id[0], m2.id);
    memset(&c, 0, sizeof c);
    assert_int_equal(store_outbox_claim(s, NOW_MS + 10000, NOW_MS + 70000, 8, claim_cb, &c),
                     STORE_OK);
    assert_int_equal(c.n, 1);
    assert_string_equal(c.id[0], m1.id);
    assert_int_equal(c.attempts[0], 1);
    /* A lease that ran out (a worker died) hands the message out again. */
    memset(&c, 0, sizeof c);
    assert_int_equal(store_outbox_claim(s, NOW_MS + 70001, NOW_MS + 130000, 8, claim_cb, &c),
                     STORE_OK);
    assert_int_equal(c.n, 2);
    assert_int_equal(store_outbox_finish(s, m1.id, MAIL_SENT, 2, 0, "", NOW_MS + 70002),
                     STORE_OK);
    assert_int_equal(store_outbox_finish(s, m2.id, MAIL_FAILED, 1, 0, "550 no", NOW_MS + 70002),
                     STORE_OK);
    memset(&c, 0, sizeof c);
    assert_int_equal(store_outbox_claim(s, NOW_MS + 999999999, NOW_MS + 999999999 + 1, 8,
                                        claim_cb, &c),
                     STORE_OK);
    assert_int_equal(c.n, 0);
    assert_int_equal(store_outbox_count(s, MAIL_SENT, &n), STORE_OK);
    assert_int_equal(n, 1);
    assert_int_equal(store_outbox_count(s, MAIL_FAILED, &n), STORE_OK);
    assert_int_equal(n, 1);
    assert_int_equal(store_outbox_count(s, MAIL_QUEUED, &n), STORE_OK);
    assert_int_equal(n, 0);
}

struct claimer {
    struct store *s;
    pthread_barrier_t *barrier;
    struct claimed got;
    enum store_rc rc;
};

static void *claim_run(void *arg)
{
    struct claimer *c = arg;
    warm_up(c->s);
    pthread_barrier_wait(c->barrier);
    for (int round = 0; round < 20 && c->rc == STORE_OK; round++)
        c->rc = store_outbox_claim(c->s, NOW_MS, NOW_MS + 60000, 2, claim_cb, &c->got);
    return NULL;
}

/* Workers of several instances claiming at once never get one message
 * twice (a mail sent twice). */
static void test_outbox_claims_are_exclusive(void **state)
{
    struct fx *f = *state;
    enum { N = 6, MAILS = 12 };
    for (int i = 0; i < MAILS; i++) {
        struct store_mail m = mail_of("verify_email", "", "x@example.com", NOW_MS - i);
        assert_int_equal(store_outbox_insert(f->s, &m), STORE_OK);
    }
    pthread_barrier_t barrier;
    assert_int_equal(pthread_barrier_init(&barrier, NULL, N), 0);
    struct claimer cl[N];
    pthread_t th[N];
    memset(cl, 0, sizeof cl);
    for (int i = 0; i < N; i++) {
        cl[i].s = f->s;
        cl[i].barrier = &barrier;
        assert_int_equal(pthread_create(&th[i], NULL, claim_run, &cl[i]), 0);
    }
    int total = 0;
    char seen[MAILS][UUID_STR_LEN];
    for (int i = 0; i < N; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(cl[i].rc, STORE_OK);
        for (int k = 0; k < cl[i].got.n && k < 16; k++) {
            for (int j = 0; j < total; j++)
                if (strcmp(seen[j], cl[i].got.id[k]) == 0)
                    fail_msg("message %s claimed twice", seen[j]);
            assert_true(total < MAILS);
            snprintf(seen[total++], UUID_STR_LEN, "%s", cl[i].got.id[k]);
        }
    }
    pthread_barrier_destroy(&barrier);
    assert_int_equal(total, MAILS);
}

/* ---- second factors ---- */

static void test_totp_factor(void **state)
{
    struct fx *f = *state;
    struct store *s = f->s;
    char uid[UUID_STR_LEN];
    mkuser(s, "Otto", "$h", uid);
    struct store_totp t = {.confirmed = false, .last_step = -1, .created_at = NOW};
    snprintf(t.user_id, sizeof t.user_id, "%s", uid);
    snprintf(t.secret_hex, sizeof t.secret_hex, "00112233");
    assert_int_equal(store_totp_begin(s, &t), STORE_OK);
    /* An unconfirmed factor takes no code but the confirming one. */
    assert_int_equal(store_totp_accept(s, uid, 100, false, NULL, NULL, 0), STORE_NOT_FOUND);
    char hashes[3][SHA256_HEX_LEN] = {"h-a", "h-b", "h-c"};
    /* The confirmation names its set-up (by its secret): one begun again
     * meanwhile - in the same second too - with another secret, is not
     * confirmed by the old code. */
    assert_int_equal(store_totp_accept(s, uid, 100, true, "44556677",
                                       (const char(*)[SHA256_HEX_LEN])hashes, 3),
                     STORE_NOT_FOUND);
    assert_int_equal(store_totp_accept(s, uid, 100, true, "00112233",
                                       (const char(*)[SHA256_HEX_LEN])hashes, 3),
                     STORE_OK);
    struct store_totp got;
    assert_int_equal(store_totp_get(s, uid, &got), STORE_OK);
    assert_true(got.confirmed);
    assert_int_equal(got.last_step, 100);
    assert_int_equal(got.codes_gen, 0);
    /* Confirmed once: a second confirmation (two at once, with codes of
     * two steps) finds nothing to confirm and keeps the first's codes. */
    char other[1][SHA256_HEX_LEN] = {"h-other"};
    assert_int_equal(store_totp_accept(s, uid, 101, true, "00112233",
                                       (const char(*)[SHA256_HEX_LEN])other, 1),
                     STORE_NOT_FOUND);
    /* A step is accepted once, and never an older one. */
    assert_int_equal(store_totp_accept(s, uid, 100, false, NULL, NULL, 0), STORE_NOT_FOUND);
    assert_int_equal(store_totp_accept(s, uid, 99, false, NULL, NULL, 0), STORE_NOT_FOUND);
    assert_int_equal(store_totp_accept(s, uid, 101, false, NULL, NULL, 0), STORE_OK);
    /* A confirmed factor is not replaced by a new enrolment. */
    assert_int_equal(store_totp_begin(s, &t), STORE_CONFLICT);
    int left = -1;
    assert_int_equal(store_recovery_codes_left(s, uid, &left), STORE_OK);
    assert_int_equal(left, 3);
    assert_int_equal(store_recovery_code_use(s, uid, "h-b"), STORE_OK);
    assert_int_equal(store_recovery_code_use(s, uid, "h-b"), STORE_NOT_FOUND);
    assert_int_equal(store_recovery_code_use(s, uid, "h-zz"), STORE_NOT_FOUND);
    assert_int_equal(store_recovery_codes_left(s, uid, &left), STORE_OK);
    assert_int_equal(left, 2);
    /* Renewal is compare-and-set on codes_gen: with the generation read
     * before, once; a second renewal from the same reading changes
     * nothing. */
    char fresh[2][SHA256_HEX_LEN] = {"h-x", "h-y"};
    assert_int_equal(store_recovery_codes_renew(s, uid, 0, (const char(*)[SHA256_HEX_LEN])fresh, 2),
                     STORE_OK);
    assert_int_equal(store_recovery_codes_renew(s, uid, 0, (const char(*)[SHA256_HEX_LEN])other, 1),
                     STORE_NOT_FOUND);
    assert_int_equal(store_totp_get(s, uid, &got), STORE_OK);
    assert_int_equal(got.codes_gen, 1);
    assert_int_equal(store_recovery_codes_left(s, uid, &left), STORE_OK);
    assert_int_equal(left, 2);
    assert_int_equal(store_recovery_code_use(s, uid, "h-a"), STORE_NOT_FOUND); /* replaced */
    assert_int_equal(store_recovery_code_use(s, uid, "h-other"), STORE_NOT_FOUND);
    assert_int_equal(store_recovery_code_use(s, uid, "h-x"), STORE_OK);
    assert_int_equal(store_totp_delete(s, uid), STORE_OK);
    assert_int_equal(store_totp_get(s, uid, &got), STORE_NOT_FOUND);
    assert_int_equal(store_recovery_codes_left(s, uid, &left), STORE_OK);
    assert_int_equal(left, 0);
}

struct renewer {
    struct store *s;
    pthread_barrier_t *barrier;
    const char *user_id;
    char hashes[2][SHA256_HEX_LEN];
    enum store_rc rc;
};

static void *renew_run(void *arg)
{
    struct renewer *r = arg;
    warm_up(r->s);
    pthread_barrier_wait(r->barrier);
    r->rc = store_recovery_codes_renew(r->s, r->user_id, 0,
                                       (const char(*)[SHA256_HEX_LEN])r->hashes, 2);
    return NULL;
}

/* Eight renewals of one account's codes at once, all from the same
 * reading: one wins, and exactly its codes are kept (never a mix, never
 * two sets). */
static void test_recovery_codes_renew_race(void **state)
{
    struct fx *f = *state;
    char uid[UUID_STR_LEN];
    mkuser(f->s, "Rena", "$h", uid);
    struct store_totp t = {.confirmed = false, .last_step = -1, .created_at = NOW};
    snprintf(t.user_id, sizeof t.user_id, "%s", uid);
    snprintf(t.secret_hex, sizeof t.secret_hex, "00112233");
    assert_int_equal(store_totp_begin(f->s, &t), STORE_OK);
    char first[1][SHA256_HEX_LEN] = {"first"};
    assert_int_equal(store_totp_accept(f->s, uid, 1, true, "00112233",
                                       (const char(*)[SHA256_HEX_LEN])first, 1),
                     STORE_OK);
    enum { N = 8 };
    pthread_barrier_t barrier;
    assert_int_equal(pthread_barrier_init(&barrier, NULL, N), 0);
    struct renewer r[N];
    pthread_t th[N];
    for (int i = 0; i < N; i++) {
        r[i] = (struct renewer){.s = f->s, .barrier = &barrier, .user_id = uid};
        snprintf(r[i].hashes[0], SHA256_HEX_LEN, "set-%d-a", i);
        snprintf(r[i].hashes[1], SHA256_HEX_LEN, "set-%d-b", i);
        assert_int_equal(pthread_create(&th[i], NULL, renew_run, &r[i]), 0);
    }
    int winner = -1;
    for (int i = 0; i < N; i++) {
        pthread_join(th[i], NULL);
        if (r[i].rc == STORE_OK) {
            assert_int_equal(winner, -1);
            winner = i;
        } else {
            assert_int_equal(r[i].rc, STORE_NOT_FOUND);
        }
    }
    pthread_barrier_destroy(&barrier);
    assert_true(winner >= 0);
    int left = -1;
    assert_int_equal(store_recovery_codes_left(f->s, uid, &left), STORE_OK);
    assert_int_equal(left, 2);
    assert_int_equal(store_recovery_code_use(f->s, uid, r[winner].hashes[0]), STORE_OK);
    assert_int_equal(store_recovery_code_use(f->s, uid, r[winner].hashes[1]), STORE_OK);
}

struct pk_list {
    int n;
    char id[4][64];
};

static void pk_cb(void *ctx, const struct store_passkey *p)
{
    struct pk_list *l = ctx;
    if (l->n < 4)
        snprintf(l->id[l->n], sizeof l->id[0], "%.60s", p->id);
    l->n++;
}

static void test_passkeys(void **state)
{
    struct fx *f = *state;
    struct store *s = f->s;
    char uid[UUID_STR_LEN], other[UUID_STR_LEN];
    mkuser(s, "Pia", "$h", uid);
    mkuser(s, "Quin", "$h", other);
    struct store_passkey p = {.alg = -7, .sign_count = 5, .created_at = NOW};
    snprintf(p.id, sizeof p.id, "cred-1");
    snprintf(p.user_id, sizeof p.user_id, "%s", uid);
    snprintf(p.public_key_hex, sizeof p.public_key_hex, "3059");
    snprintf(p.name, sizeof p.name, "laptop");
    assert_int_equal(store_passkey_insert(s, &p, 20), STORE_OK);
    assert_int_equal(store_passkey_insert(s, &p, 20), STORE_CONFLICT);
    struct pk_list l = {0};
    assert_int_equal(store_passkeys_list(s, uid, pk_cb, &l), STORE_OK);
    assert_int_equal(l.n, 1);
    struct store_passkey got;
    assert_int_equal(store_passkey_get(s, "cred-1", &got), STORE_OK);
    assert_int_equal(got.sign_count, 5);
    assert_int_equal(got.alg, -7);
    assert_string_equal(got.name, "laptop");
    /* The counter only goes up. */
    assert_int_equal(store_passkey_use(s, "cred-1", 5), STORE_NOT_FOUND);
    assert_int_equal(store_passkey_use(s, "cred-1", 4), STORE_NOT_FOUND);
    assert_int_equal(store_passkey_use(s, "cred-1", 6), STORE_OK);
    /* An authenticator without a counter (always 0) may sign again. */
    struct store_passkey z = p;
    snprintf(z.id, sizeof z.id, "cred-0");
    z.sign_count = 0;
    assert_int_equal(store_passkey_insert(s, &z, 20), STORE_OK);
    assert_int_equal(store_passkey_use(s, "cred-0", 0), STORE_OK);
    assert_int_equal(store_passkey_use(s, "cred-0", 0), STORE_OK);
    /* Only the owner removes it. */
    assert_int_equal(store_passkey_delete(s, other, "cred-1"), STORE_NOT_FOUND);
    assert_int_equal(store_passkey_delete(s, uid, "cred-1"), STORE_OK);
    assert_int_equal(store_passkey_get(s, "cred-1", &got), STORE_NOT_FOUND);
}

/* An operator's reset of the second factors takes the TOTP factor, its
 * recovery codes and every passkey (more than one listing's worth) in one
 * go, and nothing of another account. */
static void test_mfa_clear(void **state)
{
    struct fx *f = *state;
    struct store *s = f->s;
    char uid[UUID_STR_LEN], other[UUID_STR_LEN];
    mkuser(s, "Reset-Me", "$h", uid);
    mkuser(s, "Keep-Me", "$h", other);
    for (int who = 0; who < 2; who++) {
        const char *id = who ? other : uid;
        struct store_totp t = {.confirmed = false, .last_step = -1, .created_at = NOW};
        snprintf(t.user_id, sizeof t.user_id, "%s", id);
        snprintf(t.secret_hex, sizeof t.secret_hex, "00112233");
        assert_int_equal(store_totp_begin(s, &t), STORE_OK);
        char codes[2][SHA256_HEX_LEN] = {"code-a", "code-b"};
        assert_int_equal(store_totp_accept(s, id, 1, true, "00112233",
                                           (const char(*)[SHA256_HEX_LEN])codes, 2),
                         STORE_OK);
        for (int i = 0; i < (who ? 1 : 20); i++) {
            struct store_passkey p = {.alg = -7, .sign_count = 0, .created_at = NOW};
            snprintf(p.id, sizeof p.id, "clear-%d-%d", who, i);
            snprintf(p.user_id, sizeof p.user_id, "%s", id);
            snprintf(p.public_key_hex, sizeof p.public_key_hex, "3059");
            assert_int_equal(store_passkey_insert(s, &p, 100), STORE_OK);
        }
    }
    bool totp = false;
    int removed = -1;
    assert_int_equal(store_mfa_clear(s, uid, &totp, &removed), STORE_OK);
    assert_true(totp);
    assert_int_equal(removed, 20);
    struct store_totp got;
    assert_int_equal(store_totp_get(s, uid, &got), STORE_NOT_FOUND);
    int left = -1;
    assert_int_equal(store_recovery_codes_left(s, uid, &left), STORE_OK);
    assert_int_equal(left, 0);
    struct pk_list l = {0};
    assert_int_equal(store_passkeys_list(s, uid, pk_cb, &l), STORE_OK);
    assert_int_equal(l.n, 0);
    /* the other account keeps everything */
    assert_int_equal(store_totp_get(s, other, &got), STORE_OK);
    assert_true(got.confirmed);
    assert_int_equal(store_recovery_codes_left(s, other, &left), STORE_OK);
    assert_int_equal(left, 2);
    l.n = 0;
    assert_int_equal(store_passkeys_list(s, other, pk_cb, &l), STORE_OK);
    assert_int_equal(l.n, 1);
    /* again: nothing left, nothing said */
    assert_int_equal(store_mfa_clear(s, uid, &totp, &removed), STORE_OK);
    assert_false(totp);
    assert_int_equal(removed, 0);
    assert_int_equal(store_mfa_clear(s, "01a00000-0000-7000-8000-000000000000", &totp, &removed),
                     STORE_NOT_FOUND);
}

struct taker {
    struct store *s;
    pthread_barrier_t *barrier;
    enum store_rc rc;
};

struct pk_adder {
    struct store *s;
    pthread_barrier_t *barrier;
    struct store_passkey p;
    enum store_rc rc;
};

static void *pk_add_run(void *arg)
{
    struct pk_adder *a = arg;
    warm_up(a->s);
    pthread_barrier_wait(a->barrier);
    a->rc = store_passkey_insert(a->s, &a->p, 5);
    return NULL;
}

/* The passkey limit is counted with the insert: one at a time, and eight
 * registrations finishing at once, end with the limit, not above it. */
static void test_passkey_limit(void **state)
{
    struct fx *f = *state;
    struct store *s = f->s;
    char uid[UUID_STR_LEN], other[UUID_STR_LEN];
    mkuser(s, "Rae", "$h", uid);
    mkuser(s, "Sol", "$h", other);
    struct store_passkey p = {.alg = -7, .created_at = NOW};
    snprintf(p.user_id, sizeof p.user_id, "%s", uid);
    snprintf(p.public_key_hex, sizeof p.public_key_hex, "3059");
    snprintf(p.name, sizeof p.name, "key");
    for (int i = 0; i < 3; i++) {
        snprintf(p.id, sizeof p.id, "seq-%d", i);
        assert_int_equal(store_passkey_insert(s, &p, 3), STORE_OK);
    }
    snprintf(p.id, sizeof p.id, "seq-3");
    assert_int_equal(store_passkey_insert(s, &p, 3), STORE_NOT_FOUND);
    struct store_passkey got;
    assert_int_equal(store_passkey_get(s, "seq-3", &got), STORE_NOT_FOUND);
    /* another account's limit is its own */
    snprintf(p.user_id, sizeof p.user_id, "%s", other);
    assert_int_equal(store_passkey_insert(s, &p, 3), STORE_OK);

    enum { N = 8 };
    char racer[UUID_STR_LEN];
    mkuser(s, "Tam", "$h", racer);
    pthread_barrier_t barrier;
    assert_int_equal(pthread_barrier_init(&barrier, NULL, N), 0);
    struct pk_adder ad[N];
    pthread_t th[N];
    for (int i = 0; i < N; i++) {
        ad[i] = (struct pk_adder){.s = s, .barrier = &barrier, .p = p};
        snprintf(ad[i].p.id, sizeof ad[i].p.id, "race-%d", i);
        snprintf(ad[i].p.user_id, sizeof ad[i].p.user_id, "%s", racer);
        assert_int_equal(pthread_create(&th[i], NULL, pk_add_run, &ad[i]), 0);
    }
    int added = 0;
    for (int i = 0; i < N; i++) {
        pthread_join(th[i], NULL);
        if (ad[i].rc == STORE_OK)
            added++;
        else
            assert_int_equal(ad[i].rc, STORE_NOT_FOUND);
    }
    pthread_barrier_destroy(&barrier);
    assert_int_equal(added, 5);
    struct pk_list l = {0};
    assert_int_equal(store_passkeys_list(s, racer, pk_cb, &l), STORE_OK);
    assert_int_equal(l.n, 5);
}

static void *take_run(void *arg)
{
    struct taker *t = arg;
    warm_up(t->s);
    pthread_barrier_wait(t->barrier);
    struct store_ephemeral e;
    memset(&e, 0, sizeof e);
    t->rc = store_ephemeral_take(t->s, "ticket:x", &e);
    store_ephemeral_clear(&e);
    return NULL;
}

/* A single-use value (an MFA ticket, a WebAuthn challenge) is taken by one
 * of many requests racing for it. */
static void test_ephemeral_single_use(void **state)
{
    struct fx *f = *state;
    struct store *s = f->s;
    struct store_ephemeral e = {.key = "ticket:x", .kind = "mfa", .value = "{\"a\":1}",
                                .expires_at = NOW + 300};
    assert_int_equal(store_ephemeral_put(s, &e), STORE_OK);
    int n = 0;
    assert_int_equal(store_ephemeral_attempt(s, "ticket:x", &n), STORE_OK);
    assert_int_equal(n, 1);
    struct store_ephemeral got;
    memset(&got, 0, sizeof got);
    assert_int_equal(store_ephemeral_get(s, "ticket:x", &got), STORE_OK);
    assert_string_equal(got.value, "{\"a\":1}");
    assert_int_equal(got.attempts, 1);
    store_ephemeral_clear(&got);
    enum { N = 8 };
    pthread_barrier_t barrier;
    assert_int_equal(pthread_barrier_init(&barrier, NULL, N), 0);
    struct taker tk[N];
    pthread_t th[N];
    for (int i = 0; i < N; i++) {
        tk[i] = (struct taker){.s = s, .barrier = &barrier};
        assert_int_equal(pthread_create(&th[i], NULL, take_run, &tk[i]), 0);
    }
    int won = 0;
    for (int i = 0; i < N; i++) {
        pthread_join(th[i], NULL);
        if (tk[i].rc == STORE_OK)
            won++;
        else
            assert_int_equal(tk[i].rc, STORE_NOT_FOUND);
    }
    pthread_barrier_destroy(&barrier);
    assert_int_equal(won, 1);
    assert_int_equal(store_ephemeral_attempt(s, "ticket:x", &n), STORE_NOT_FOUND);
}

/* Takes and put-backs racing (a ticket tried by many requests at once: each
 * try takes it, and puts it back with one more try counted). Every take
 * must see the count the last put-back wrote: no two takes see the same
 * count. Found in the e2e suite on PostgreSQL: a take read the row, then
 * deleted the one another request had put back meanwhile, and so held a
 * stale count (a sixth wrong code got checked). */
enum { PUTBACK_THREADS = 6, PUTBACK_ROUNDS = 60 };

struct putbacker {
    struct store *s;
    pthread_barrier_t *barrier;
    int seen[PUTBACK_ROUNDS];
    int n;
    enum store_rc rc;
};

static void *putback_run(void *arg)
{
    struct putbacker *t = arg;
    warm_up(t->s);
    pthread_barrier_wait(t->barrier);
    t->rc = STORE_OK;
    for (int i = 0; i < 20000 && t->n < PUTBACK_ROUNDS; i++) {
        struct store_ephemeral e;
        memset(&e, 0, sizeof e);
        enum store_rc rc = store_ephemeral_take(t->s, "ticket:pb", &e);
        if (rc == STORE_NOT_FOUND)
            continue;
        if (rc != STORE_OK) {
            t->rc = rc;
            break;
        }
        t->seen[t->n++] = e.attempts;
        int done = e.attempts + 1 >= PUTBACK_ROUNDS;
        e.attempts++;
        if (!done)
            rc = store_ephemeral_put(t->s, &e);
        store_ephemeral_clear(&e);
        if (done || rc != STORE_OK) {
            t->rc = rc;
            break;
        }
    }
    return NULL;
}

static void test_ephemeral_take_and_put_back_race(void **state)
{
    struct fx *f = *state;
    struct store_ephemeral e = {.key = "ticket:pb", .kind = "mfa", .value = "{}",
                                .expires_at = NOW + 300};
    assert_int_equal(store_ephemeral_put(f->s, &e), STORE_OK);
    pthread_barrier_t barrier;
    assert_int_equal(pthread_barrier_init(&barrier, NULL, PUTBACK_THREADS), 0);
    static struct putbacker t[PUTBACK_THREADS];
    pthread_t th[PUTBACK_THREADS];
    for (int i = 0; i < PUTBACK_THREADS; i++) {
        t[i] = (struct putbacker){.s = f->s, .barrier = &barrier};
        assert_int_equal(pthread_create(&th[i], NULL, putback_run, &t[i]), 0);
    }
    for (int i = 0; i < PUTBACK_THREADS; i++)
        pthread_join(th[i], NULL);
    pthread_barrier_destroy(&barrier);
    int count[PUTBACK_ROUNDS] = {0}, total = 0;
    for (int i = 0; i < PUTBACK_THREADS; i++) {
        assert_int_equal(t[i].rc, STORE_OK);
        for (int j = 0; j < t[i].n; j++) {
            assert_true(t[i].seen[j] >= 0 && t[i].seen[j] < PUTBACK_ROUNDS);
            if (++count[t[i].seen[j]] > 1)
                fail_msg("two takes saw try count %d", t[i].seen[j]);
            total++;
        }
    }
    assert_int_equal(total, PUTBACK_ROUNDS); /* each count seen once, the last one ends it */
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, fx_setup, fx_teardown)
    const struct CMUnitTest tests[] = {
        T(test_open_and_migrate),
        T(test_users_case_insensitive),
        T(test_user_set_hash_compare_and_set),
        T(test_change_password_revokes_other_sessions),
        T(test_user_delete_removes_sessions_and_feeds_revocations),
        T(test_session_list_live_newest_first),
        T(test_session_idor_revoke_other_users_session),
        T(test_refresh_token_theft_detection),
        T(test_refresh_old_generation_is_reuse),
        T(test_refresh_expired_changes_nothing),
        T(test_signout_with_refresh_token),
        T(test_double_mint_50_threads_one_token),
        T(test_signout_everywhere_race),
        T(test_secret_first_writer_wins),
        T(test_secret_candidate_text_wiped),
        T(test_keys_lifecycle),
        T(test_counter_windows_and_parallel_sum),
        T(test_password_guessing_backoff),
        T(test_parallel_guessing_100_threads),
        T(test_prune),
        T(test_prune_backlog_in_short_transactions),
        T(test_disable_revokes_and_refuses_refresh),
        T(test_login_state_read_and_reset),
        T(test_login_refund_lifts_its_own_block),
        T(test_sqlite_files_are_private),
        T(test_user_email_columns),
        T(test_one_identifier_per_account),
        T(test_one_identifier_race),
        T(test_email_tokens),
        T(test_password_reset_flow),
        T(test_password_reset_link_once_under_a_race),
        T(test_reuse_and_password_change_at_once),
        T(test_ephemeral_take_and_put_back_race),
        T(test_outbox),
        T(test_outbox_forgot_resolves_once),
        T(test_outbox_claims_are_exclusive),
        T(test_totp_factor),
        T(test_recovery_codes_renew_race),
        T(test_passkeys),
        T(test_mfa_clear),
        T(test_set_email_if),
        T(test_passkey_limit),
        T(test_ephemeral_single_use),
    };
#undef T
    /* TEST_FILTER=test_prune runs one test (a cmocka glob). */
    if (getenv("TEST_FILTER"))
        cmocka_set_test_filter(getenv("TEST_FILTER"));
    if (on_postgres()) {
        if (!getenv("JWTD_TEST_PG_URL") || !*getenv("JWTD_TEST_PG_URL")) {
            fprintf(stderr, "skipped: JWTD_TEST_PG_URL is not set (scripts/test.sh pg sets it)\n");
            return 77;
        }
        return cmocka_run_group_tests_name("store_postgres", tests, NULL, NULL);
    }
    return cmocka_run_group_tests_name("store_sqlite", tests, NULL, NULL);
}
