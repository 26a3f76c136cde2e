/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Configuration (src/core/config.c): the defaults of API.md, the duration
 * syntax and its refusals, environment and flag sources (flags win), the
 * one-line errors that name the setting, the HS256 secret rules (and that an
 * error line never repeats a secret), the derived issuer, CORS origins and
 * the argon2 cost floor, the file (a byte order mark, a jwtd.env beside it
 * refused), a PostgreSQL URL on a build without it, unknown JWTD_*
 * variables. Every test starts and ends with no JWTD_* variable in the
 * environment.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/config.h"
#include "base/util.h"
#include "../unit_util.h"

static int env_setup(void **state)
{
    (void)state;
    unit_clean_env();
    return 0;
}

static int env_teardown(void **state)
{
    (void)state;
    unit_clean_env();
    return 0;
}

/* config_defaults + config_load with the NULL-terminated flags given. */
static bool load(struct config *cfg, char *err, size_t errlen, ...)
{
    char *argv[16];
    int argc = 0;
    va_list ap;
    va_start(ap, errlen);
    for (const char *a; (a = va_arg(ap, const char *)) != NULL;) {
        assert_true(argc < 16);
        argv[argc] = strdup(a);
        assert_non_null(argv[argc]);
        argc++;
    }
    va_end(ap);
    config_defaults(cfg);
    err[0] = '\0';
    bool ok = config_load(cfg, argc, argv, err, errlen);
    for (int i = 0; i < argc; i++)
        free(argv[i]);
    return ok;
}

/* An error line: names the setting, is one line, is not empty. */
static void assert_error_names(const char *err, const char *setting)
{
    if (!strstr(err, setting))
        fail_msg("error line '%s' does not name %s", err, setting);
    assert_null(strchr(err, '\n'));
}

static void test_defaults(void **state)
{
    (void)state;
    struct config c;
    config_defaults(&c);
    assert_string_equal(c.listen, "127.0.0.1:8080");
    assert_string_equal(c.listen_host, "127.0.0.1");
    assert_int_equal(c.listen_port, 8080);
    assert_false(c.listen_ipv6);
    assert_string_equal(c.database, "sqlite:./jwtd.db");
    assert_string_equal(c.audience, "jwtd");
    assert_int_equal(c.access_ttl, 900);
    assert_int_equal(c.refresh_ttl, 30 * 86400);
    assert_int_equal(c.refresh_absolute_ttl, 90 * 86400);
    assert_int_equal(c.refresh_reuse_interval, 10);
    assert_int_equal(c.leeway, 5);
    assert_int_equal(c.alg, JWTD_ALG_ES256);
    assert_null(c.jwt_secret);
    assert_int_equal(c.jwt_secret_len, 0);
    assert_true(c.signup_open);
    assert_int_equal(c.argon2_memory_kib, 19456);
    assert_int_equal(c.argon2_iterations, 2);
    assert_int_equal(c.argon2_parallelism, 1);
    assert_null(c.cors_origins);
    assert_int_equal(c.n_cors_origins, 0);
    assert_int_equal(c.max_body, 16384);
    assert_int_equal(c.login_max_failures, 10);
    assert_null(c.issuer); /* derived by config_load */
    config_free(&c);

    /* Nothing set: load succeeds and keeps every default. */
    char err[256];
    assert_true(load(&c, err, sizeof err, NULL));
    assert_int_equal(c.access_ttl, 900);
    assert_int_equal(c.alg, JWTD_ALG_ES256);
    assert_string_equal(c.issuer, "http://127.0.0.1:8080");
    config_free(&c);
    config_free(NULL); /* NULL-safe */
}

static void test_durations_accepted(void **state)
{
    (void)state;
    static const struct {
        const char *v;
        int64_t s;
    } ok[] = {
        {"900", 900}, {"900s", 900}, {"15m", 900}, {"1h", 3600}, {"1d", 86400}, {"1", 1},
        {"30d", 30 * 86400}, /* API.md's examples apply to both lifetimes */
    };
    char err[256];
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        struct config c;
        config_defaults(&c);
        c.access_ttl = -1;
        if (!config_set(&c, "JWTD_ACCESS_TTL", ok[i].v, err, sizeof err))
            fail_msg("'%s' refused: %s", ok[i].v, err);
        assert_int_equal(c.access_ttl, ok[i].s);
        config_free(&c);

        int64_t s = -1;
        assert_true(util_parse_duration(ok[i].v, &s));
        assert_int_equal(s, ok[i].s);
    }
    struct config c;
    config_defaults(&c);
    assert_true(config_set(&c, "JWTD_REFRESH_TTL", "30d", err, sizeof err));
    assert_int_equal(c.refresh_ttl, 30 * 86400);
    assert_true(config_set(&c, "JWTD_REFRESH_TTL", "12h", err, sizeof err));
    assert_int_equal(c.refresh_ttl, 12 * 3600);
    assert_true(config_set(&c, "JWTD_REFRESH_REUSE_INTERVAL", "0", err, sizeof err));
    assert_int_equal(c.refresh_reuse_interval, 0);
    config_free(&c);

    int64_t ms = 0;
    assert_true(util_parse_duration_ms("250ms", &ms));
    assert_int_equal(ms, 250);
    assert_true(util_parse_duration_ms("2", &ms)); /* bare number: seconds */
    assert_int_equal(ms, 2000);
    int64_t s = 7;
    assert_false(util_parse_duration("250ms", &s)); /* not whole seconds */
    assert_int_equal(s, 7);
}

static const char *const bad_durations[] = {
    "15x", "-5", "", "1.5h", "15 m", " 15m", "15m ", "m", "s15", "0x10", "+5", "15mm",
    "999999999999999999999",      /* overflows int64 */
    "99999999999999",             /* too many digits */
    "999999999999d",              /* overflows once in milliseconds */
    "31d",                        /* past the 30-day maximum of access tokens */
    "0",                          /* below the 1-second minimum */
};

static void test_durations_refused_by_config_set(void **state)
{
    (void)state;
    char err[256];
    for (size_t i = 0; i < sizeof bad_durations / sizeof bad_durations[0]; i++) {
        struct config c;
        config_defaults(&c);
        err[0] = '\0';
        if (config_set(&c, "JWTD_ACCESS_TTL", bad_durations[i], err, sizeof err))
            fail_msg("'%s' accepted as %lld", bad_durations[i], (long long)c.access_ttl);
        assert_error_names(err, "JWTD_ACCESS_TTL");
        assert_int_equal(c.access_ttl, 900); /* unchanged */
        config_free(&c);
    }
    int64_t s = 42;
    assert_false(util_parse_duration(NULL, &s));
    assert_false(util_parse_duration("1.5h", &s));
    assert_int_equal(s, 42);
}

static void test_durations_refused_from_env_and_flags(void **state)
{
    (void)state;
    char err[256];
    struct config c;
    for (size_t i = 0; i < sizeof bad_durations / sizeof bad_durations[0]; i++) {
        const char *v = bad_durations[i];

        setenv("JWTD_ACCESS_TTL", v, 1);
        if (load(&c, err, sizeof err, NULL))
            fail_msg("env '%s' accepted", v);
        assert_error_names(err, "JWTD_ACCESS_TTL");
        config_free(&c);
        unsetenv("JWTD_ACCESS_TTL");

        char flag[128];
        snprintf(flag, sizeof flag, "--access-ttl=%s", v);
        if (load(&c, err, sizeof err, flag, NULL))
            fail_msg("flag '%s' accepted", flag);
        assert_error_names(err, "JWTD_ACCESS_TTL");
        config_free(&c);

        if (load(&c, err, sizeof err, "--access-ttl", v, NULL))
            fail_msg("flag '--access-ttl %s' accepted", v);
        assert_error_names(err, "JWTD_ACCESS_TTL");
        config_free(&c);
    }
}

static void test_flags_both_forms(void **state)
{
    (void)state;
    char err[256];
    struct config c;
    assert_true(load(&c, err, sizeof err, "--access-ttl=60", NULL));
    assert_int_equal(c.access_ttl, 60);
    config_free(&c);
    assert_true(load(&c, err, sizeof err, "--access-ttl", "60", NULL));
    assert_int_equal(c.access_ttl, 60);
    config_free(&c);
    assert_true(load(&c, err, sizeof err, "--refresh-ttl", "2h", "--signup=closed", NULL));
    assert_int_equal(c.refresh_ttl, 7200);
    assert_false(c.signup_open);
    config_free(&c);
    /* A flag at the end without its value. */
    assert_false(load(&c, err, sizeof err, "--access-ttl", NULL));
    assert_error_names(err, "JWTD_ACCESS_TTL");
    config_free(&c);
}

static void test_env_read_and_flags_override_env(void **state)
{
    (void)state;
    char err[256];
    struct config c;
    setenv("JWTD_ACCESS_TTL", "120", 1);
    setenv("JWTD_SIGNUP", "closed", 1);
    assert_true(load(&c, err, sizeof err, NULL));
    assert_int_equal(c.access_ttl, 120);
    assert_false(c.signup_open);
    config_free(&c);

    assert_true(load(&c, err, sizeof err, "--access-ttl=60", "--signup", "open", NULL));
    assert_int_equal(c.access_ttl, 60);
    assert_true(c.signup_open);
    config_free(&c);
}

static void test_unknown_flag_and_setting(void **state)
{
    (void)state;
    char err[256];
    struct config c;
    assert_false(load(&c, err, sizeof err, "--no-such-setting=1", NULL));
    assert_non_null(strstr(err, "no-such-setting"));
    assert_null(strchr(err, '\n'));
    config_free(&c);
    assert_false(load(&c, err, sizeof err, "--access_ttl=60", NULL)); /* '_' is not a flag */
    config_free(&c);
    assert_false(load(&c, err, sizeof err, "--", NULL));
    config_free(&c);
    assert_false(load(&c, err, sizeof err, "access-ttl=60", NULL)); /* positional */
    config_free(&c);

    config_defaults(&c);
    assert_false(config_set(&c, "JWTD_NOPE", "1", err, sizeof err));
    assert_non_null(strstr(err, "JWTD_NOPE"));
    config_free(&c);
}

/* 31 and 32 printable bytes; distinctive so a leak is easy to spot. */
#define SECRET31 "Zq8#Secret-Value-Do-Not-Echo-31"
#define SECRET32 "Zq8#Secret-Value-Do-Not-Echo-32!"

static bool has_secret(const char *err)
{
    /* Neither the whole value nor a telling piece of it. */
    return strstr(err, "Secret-Value") || strstr(err, "Zq8#");
}

static void assert_secret_not_in(const char *err)
{
    if (has_secret(err))
        fail_msg("error line repeats the secret: %s", err);
}

static void test_hs256_requires_secret(void **state)
{
    (void)state;
    char err[256];
    struct config c;
    setenv("JWTD_JWT_ALG", "HS256", 1);
    assert_false(load(&c, err, sizeof err, NULL));
    assert_error_names(err, "JWTD_JWT_SECRET");
    config_free(&c);
    /* Empty means unset. */
    setenv("JWTD_JWT_SECRET", "", 1);
    assert_false(load(&c, err, sizeof err, NULL));
    assert_error_names(err, "JWTD_JWT_SECRET");
    config_free(&c);
}

static void test_hs256_short_secret_refused_without_echo(void **state)
{
    (void)state;
    char err[256];
    struct config c;
    assert_int_equal(strlen(SECRET31), 31);
    assert_int_equal(strlen(SECRET32), 32);

    setenv("JWTD_JWT_ALG", "HS256", 1);
    setenv("JWTD_JWT_SECRET", SECRET31, 1);
    assert_false(load(&c, err, sizeof err, NULL));
    assert_error_names(err, "JWTD_JWT_SECRET");
    assert_secret_not_in(err);
    config_free(&c);
    unit_clean_env();

    assert_false(load(&c, err, sizeof err, "--jwt-alg=HS256", "--jwt-secret=" SECRET31, NULL));
    assert_error_names(err, "JWTD_JWT_SECRET");
    assert_secret_not_in(err);
    config_free(&c);

    /* No algorithm: the secret asks for HS256, and is still too short. */
    setenv("JWTD_JWT_SECRET", SECRET31, 1);
    assert_false(load(&c, err, sizeof err, NULL));
    assert_error_names(err, "JWTD_JWT_SECRET");
    assert_secret_not_in(err);
    config_free(&c);
}

static void test_hs256_with_32_byte_secret(void **state)
{
    (void)state;
    char err[256];
    struct config c;
    setenv("JWTD_JWT_ALG", "HS256", 1);
    setenv("JWTD_JWT_SECRET", SECRET32, 1);
    if (!load(&c, err, sizeof err, NULL))
        fail_msg("refused: %s", err);
    assert_int_equal(c.alg, JWTD_ALG_HS256);
    assert_int_equal(c.jwt_secret_len, 32);
    assert_memory_equal(c.jwt_secret, SECRET32, 32);
    config_free(&c);
    assert_null(c.jwt_secret); /* freed and reset */
}

static void test_secret_alone_selects_hs256(void **state)
{
    (void)state;
    char err[256];
    struct config c;
    setenv("JWTD_JWT_SECRET", SECRET32, 1);
    if (!load(&c, err, sizeof err, NULL))
        fail_msg("refused: %s", err);
    assert_int_equal(c.alg, JWTD_ALG_HS256);
    config_free(&c);
    unit_clean_env();

    if (!load(&c, err, sizeof err, "--jwt-secret", SECRET32, NULL))
        fail_msg("refused: %s", err);
    assert_int_equal(c.alg, JWTD_ALG_HS256);
    config_free(&c);
}

/* alg_confusion: a secret configured next to an asymmetric algorithm is a
 * mistake that must stop start-up, not be silently ignored or used. */
static void test_secret_with_explicit_es256_refused(void **state)
{
    (void)state;
    char err[256];
    struct config c;
    setenv("JWTD_JWT_ALG", "ES256", 1);
    setenv("JWTD_JWT_SECRET", SECRET32, 1);
    assert_false(load(&c, err, sizeof err, NULL));
    assert_error_names(err, "JWTD_JWT_SECRET");
    assert_secret_not_in(err);
    config_free(&c);
    unit_clean_env();

    assert_false(load(&c, err, sizeof err, "--jwt-secret=" SECRET32, "--jwt-alg=ES256", NULL));
    assert_error_names(err, "JWTD_JWT_SECRET");
    assert_secret_not_in(err);
    config_free(&c);

    assert_false(load(&c, err, sizeof err, "--jwt-alg", "EdDSA", "--jwt-secret", SECRET32, NULL));
    assert_error_names(err, "JWTD_JWT_SECRET");
    config_free(&c);
}

/* secret_leak_via_error_line: a mistyped argument that carries the secret
 * (one dash instead of two) must not be copied into the start-up error,
 * which ends up in the journal. */
static void test_secret_leak_via_stray_argument_error(void **state)
{
    (void)state;
    char err[256];
    struct config c;
    bool ok = load(&c, err, sizeof err, "-jwt-secret=" SECRET32, NULL);
    config_free(&c); /* before failing: no leak reports from this test */
    assert_false(ok);
    assert_secret_not_in(err);
}

/* secret_leak_via_error_line: the database URL carries the database
 * password; a typo in its scheme must not print the password. */
static void test_database_password_leak_via_error_line(void **state)
{
    (void)state;
    char err[256];
    struct config c;
    config_defaults(&c);
    bool ok = config_set(&c, "JWTD_DATABASE", "postgress://jwtd:Hunter2-Db-Pass@db/jwtd", err,
                         sizeof err);
    config_free(&c);
    assert_false(ok);
    assert_error_names(err, "JWTD_DATABASE");
    if (strstr(err, "Hunter2-Db-Pass"))
        fail_msg("error line repeats the database password: %s", err);
}

static void test_issuer_default_follows_listen(void **state)
{
    (void)state;
    char err[256];
    struct config c;
    setenv("JWTD_LISTEN", "0.0.0.0:9000", 1);
    assert_true(load(&c, err, sizeof err, NULL));
    assert_string_equal(c.issuer, "http://0.0.0.0:9000");
    assert_int_equal(c.listen_port, 9000);
    config_free(&c);

    assert_true(load(&c, err, sizeof err, "--listen=[::1]:8443", NULL));
    assert_string_equal(c.issuer, "http://[::1]:8443");
    assert_true(c.listen_ipv6);
    assert_string_equal(c.listen_host, "::1");
    config_free(&c);

    setenv("JWTD_ISSUER", "https://auth.example.com", 1);
    assert_true(load(&c, err, sizeof err, NULL));
    assert_string_equal(c.issuer, "https://auth.example.com");
    config_free(&c);

    static const char *const bad_listen[] = {"127.0.0.1",       "127.0.0.1:0", "127.0.0.1:65536",
                                             "example.com:80",  "::1:8080",    "[::1]8080",
                                             "127.0.0.1:80x"};
    for (size_t i = 0; i < sizeof bad_listen / sizeof bad_listen[0]; i++) {
        config_defaults(&c);
        if (config_set(&c, "JWTD_LISTEN", bad_listen[i], err, sizeof err))
            fail_msg("listen '%s' accepted", bad_listen[i]);
        assert_error_names(err, "JWTD_LISTEN");
        config_free(&c);
    }
}

/* JWTD_PUBLIC_URL is kept as a browser writes an origin, so that the
 * WebAuthn origin and mail links compare equal to what browsers send. */
static void test_public_url_normalized(void **state)
{
    (void)state;
    char err[256];
    struct config c;
    static const struct {
        const char *in, *out;
    } cases[] = {
        {"https://LocalHost", "https://localhost"},
        {"https://localhost:443", "https://localhost"},
        {"HTTPS://Auth.Example.COM/", "https://auth.example.com"},
        {"http://auth.example.com:80/", "http://auth.example.com"},
        {"http://auth.example.com:443", "http://auth.example.com:443"},
        {"https://auth.example.com:80", "https://auth.example.com:80"},
        {"https://a.example:8443/Auth//", "https://a.example:8443/Auth"},
        {"http://[::1]:8080", "http://[::1]:8080"},
        {"http://[::1]:80/x", "http://[::1]/x"},
        {"http://127.0.0.1:8080/", "http://127.0.0.1:8080"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        config_defaults(&c);
        if (!config_set(&c, "JWTD_PUBLIC_URL", cases[i].in, err, sizeof err))
            fail_msg("'%s' refused: %s", cases[i].in, err);
        assert_string_equal(c.public_url, cases[i].out);
        config_free(&c);
    }
    char longer[512];
    snprintf(longer, sizeof longer, "https://auth.example.com/%0400d", 0);
    static const char *bad[] = {":8080", "auth.example.com", "ftp://x.example",
                                "https://x.example?q", "https://u@x.example", "https://",
                                "https://x.example:0", "https://[::1"};
    for (size_t i = 0; i <= sizeof bad / sizeof bad[0]; i++) {
        const char *v = i < sizeof bad / sizeof bad[0] ? bad[i] : longer;
        config_defaults(&c);
        if (config_set(&c, "JWTD_PUBLIC_URL", v, err, sizeof err))
            fail_msg("'%s' accepted", v);
        assert_error_names(err, "JWTD_PUBLIC_URL");
        config_free(&c);
    }
}

static void test_cors_origins(void **state)
{
    (void)state;
    char err[256];
    struct config c;
    setenv("JWTD_CORS_ORIGINS", "https://app.example.com, http://localhost:3000", 1);
    assert_true(load(&c, err, sizeof err, NULL));
    assert_int_equal(c.n_cors_origins, 2);
    assert_string_equal(c.cors_origins[0], "https://app.example.com");
    assert_string_equal(c.cors_origins[1], "http://localhost:3000");
    assert_null(c.cors_origins[2]); /* NULL-terminated */
    config_free(&c);
    unit_clean_env();

    /* Proxies compare in the spelling request.c gives a peer. */
    setenv("JWTD_TRUSTED_PROXIES", "::FFFF:10.0.0.1, 2001:DB8:0::FE,127.0.0.1", 1);
    assert_true(load(&c, err, sizeof err, NULL));
    assert_int_equal(c.n_trusted_proxies, 3);
    assert_string_equal(c.trusted_proxies[0], "10.0.0.1");
    assert_string_equal(c.trusted_proxies[1], "2001:db8::fe");
    assert_string_equal(c.trusted_proxies[2], "127.0.0.1");
    config_free(&c);
    unit_clean_env();

    /* Kept as a browser writes an Origin: lower case, no default port. */
    setenv("JWTD_CORS_ORIGINS", "HTTPS://App.Example.com:443,http://[::1]:80,http://x.test:8080", 1);
    assert_true(load(&c, err, sizeof err, NULL));
    assert_string_equal(c.cors_origins[0], "https://app.example.com");
    assert_string_equal(c.cors_origins[1], "http://[::1]");
    assert_string_equal(c.cors_origins[2], "http://x.test:8080");
    config_free(&c);
    unit_clean_env();

    /* Off unless configured. */
    assert_true(load(&c, err, sizeof err, NULL));
    assert_null(c.cors_origins);
    assert_int_equal(c.n_cors_origins, 0);
    config_free(&c);

    static const char *const bad[] = {
        "*",
        "https://app.example.com/",
        "https://app.example.com/path",
        "app.example.com",
        "https://*.example.com",
        "ftp://app.example.com",
        "https://",
        "null",
        "https://user@app.example.com",
        "https://app.example.com, *",
        "https://app.example.com?x=1",
        "http://app.example.com:99999",
        "http://app.example.com:0",
        "http://app.example.com:",
        "https://app..example.com",
        "http://[::1",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        config_defaults(&c);
        if (config_set(&c, "JWTD_CORS_ORIGINS", bad[i], err, sizeof err))
            fail_msg("origin list '%s' accepted", bad[i]);
        assert_error_names(err, "JWTD_CORS_ORIGINS");
        assert_null(c.cors_origins);
        config_free(&c);
    }
}

static void test_argon2_cost_floor(void **state)
{
    (void)state;
    char err[512];
    struct config c;
    static const struct {
        const char *m, *t;
        bool ok;
    } cases[] = {
        {"19456", "2", true},  {"12288", "3", true},  {"9216", "4", true},
        {"7168", "5", true},   {"17920", "2", true},  /* exactly 35840 */
        {"17919", "2", false}, {"7168", "4", false},  {"7168", "2", false},
        {"12288", "2", false},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        setenv("JWTD_ARGON2_MEMORY", cases[i].m, 1);
        setenv("JWTD_ARGON2_ITERATIONS", cases[i].t, 1);
        bool ok = load(&c, err, sizeof err, NULL);
        if (ok != cases[i].ok)
            fail_msg("m=%s t=%s: expected %s, got %s (%s)", cases[i].m, cases[i].t,
                     cases[i].ok ? "accept" : "refuse", ok ? "accept" : "refuse", err);
        if (!ok)
            assert_error_names(err, "JWTD_ARGON2_MEMORY");
        else
            assert_int_equal(c.argon2_memory_kib, (uint32_t)atoi(cases[i].m));
        config_free(&c);
    }
    /* Below the per-setting minimum. */
    config_defaults(&c);
    assert_false(config_set(&c, "JWTD_ARGON2_MEMORY", "7167", err, sizeof err));
    assert_error_names(err, "JWTD_ARGON2_MEMORY");
    assert_false(config_set(&c, "JWTD_ARGON2_ITERATIONS", "0", err, sizeof err));
    assert_error_names(err, "JWTD_ARGON2_ITERATIONS");
    config_free(&c);
}

static void test_other_values(void **state)
{
    (void)state;
    char err[256];
    struct config c;
    config_defaults(&c);
    assert_true(config_set(&c, "JWTD_DATABASE", "postgres://db/jwtd", err, sizeof err));
    assert_string_equal(c.database, "postgres://db/jwtd");
    assert_false(config_set(&c, "JWTD_DATABASE", "sqlite:", err, sizeof err));
    assert_error_names(err, "JWTD_DATABASE");
    assert_false(config_set(&c, "JWTD_SIGNUP", "yes", err, sizeof err));
    assert_error_names(err, "JWTD_SIGNUP");
    assert_false(config_set(&c, "JWTD_JWT_ALG", "none", err, sizeof err));
    assert_error_names(err, "JWTD_JWT_ALG");
    assert_int_equal(c.alg, JWTD_ALG_ES256);
    assert_false(config_set(&c, "JWTD_ISSUER", "http://a b", err, sizeof err));
    assert_error_names(err, "JWTD_ISSUER");
    assert_false(config_set(&c, "JWTD_LEEWAY", "301", err, sizeof err));
    assert_error_names(err, "JWTD_LEEWAY");
    config_free(&c);

    /* Cross-setting rule: absolute lifetime not shorter than idle. */
    setenv("JWTD_REFRESH_TTL", "60d", 1);
    setenv("JWTD_REFRESH_ABSOLUTE_TTL", "30d", 1);
    assert_false(load(&c, err, sizeof err, NULL));
    assert_error_names(err, "JWTD_REFRESH_ABSOLUTE_TTL");
    config_free(&c);
}

/* Trap: a display name with a tab (or another control character, or bytes
 * that are not UTF-8) was accepted, and the message builder then refused
 * every message for good ("the message cannot be built"): nothing was
 * ever sent, and nothing said why at start-up. */
static void test_mail_from(void **state)
{
    (void)state;
    char err[256];
    struct config c;
    config_defaults(&c);
    static const struct {
        const char *v, *addr, *name;
    } ok[] = {
        {"a@example.com", "a@example.com", NULL},
        {"<a@example.com>", "a@example.com", NULL},
        {"Example <a@example.com>", "a@example.com", "Example"},
        {"Ex\xc3\xa4mple Ltd. (no reply) <a@example.com>", "a@example.com",
         "Ex\xc3\xa4mple Ltd. (no reply)"},
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        if (!config_set(&c, "JWTD_MAIL_FROM", ok[i].v, err, sizeof err))
            fail_msg("'%s' refused: %s", ok[i].v, err);
        assert_string_equal(c.mail_from, ok[i].addr);
        if (ok[i].name)
            assert_string_equal(c.mail_from_name, ok[i].name);
        else
            assert_null(c.mail_from_name);
    }
    static const char *const bad[] = {
        "Ex\tample <a@example.com>",
        "Ex\x01 <a@example.com>",
        "Ex\x7f <a@example.com>",
        "Ex\xff <a@example.com>",
        "Ex\xc3 <a@example.com>",
        "Ex\rBcc: b@example.com <a@example.com>",
        "Ex\n <a@example.com>",
        "\"Ex\" <a@example.com>",
        "Ex <a@example.com",
        "Ex <a b@example.com>",
        "Ex <a@example.com> x",
        "a@example.com\r\n",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (config_set(&c, "JWTD_MAIL_FROM", bad[i], err, sizeof err))
            fail_msg("JWTD_MAIL_FROM #%zu accepted", i);
        assert_error_names(err, "JWTD_MAIL_FROM");
    }
    config_free(&c);
}

/* A configuration directory of its own: mkdtemp, with jwtd.conf holding
 * text. The path of jwtd.conf is written to conf. */
static void make_conf_dir(char dir[64], char conf[96], const char *text)
{
    snprintf(dir, 64, "/tmp/jwtd-unit-conf-XXXXXX");
    assert_non_null(mkdtemp(dir));
    snprintf(conf, 96, "%s/jwtd.conf", dir);
    FILE *f = fopen(conf, "w");
    assert_non_null(f);
    assert_true(fputs(text, f) >= 0);
    assert_int_equal(fclose(f), 0);
}

static void remove_conf_dir(const char *dir)
{
    char path[128];
    snprintf(path, sizeof path, "%s/jwtd.conf", dir);
    unlink(path);
    snprintf(path, sizeof path, "%s/jwtd.env", dir);
    unlink(path);
    assert_int_equal(rmdir(dir), 0);
}

/* Trap: a file saved by Notepad starts with a UTF-8 byte order mark, and
 * its first setting was "unknown setting '\ufeffaccess_ttl'". */
static void test_file_with_byte_order_mark(void **state)
{
    (void)state;
    char dir[64], conf[96], err[512];
    make_conf_dir(dir, conf, "\xEF\xBB\xBF" "access_ttl = 10m\nsignup = closed\n");
    struct config c;
    if (!load(&c, err, sizeof err, "--config", conf, NULL))
        fail_msg("%s", err);
    assert_int_equal(c.access_ttl, 600);
    assert_false(c.signup_open);
    config_free(&c);
    remove_conf_dir(dir);
}

/* Trap: JWTD_SMTP_URL was checked for its scheme and no path only; a port
 * that is no number, a host with a space, or a password bound for a relay
 * without TLS loaded fine, and every message then failed at delivery
 * (a configuration fault, retried until given up) with the start-up
 * silent. What the mail thread would refuse is refused at load, without
 * repeating the password. */
static void test_smtp_url_checked_as_the_mail_thread_would(void **state)
{
    (void)state;
    char err[512];
    struct config c;
    static const struct {
        const char *url, *tls, *says;
    } bad[] = {
        {"smtp://mail.example.com:25x", "required", "cannot be parsed"},
        {"smtp://mail.example.com:99999", "required", "cannot be parsed"},
        {"smtp://mail example.com", "required", "cannot be parsed"},
        {"smtp://jwtd:Hunter2Secret@mail.example.com", "off", "without TLS"},
        {"smtp://jwtd:Hunter2Secret@mail.example.com", "opportunistic", "without TLS"},
        {"smtp://:Hunter2Secret@mail.example.com", "required", "a password but no username"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        setenv("JWTD_MAIL_FROM", "no-reply@example.com", 1);
        setenv("JWTD_SMTP_URL", bad[i].url, 1);
        setenv("JWTD_SMTP_TLS", bad[i].tls, 1);
        if (load(&c, err, sizeof err, "--config", "none", NULL))
            fail_msg("%s (tls %s) was taken", bad[i].url, bad[i].tls);
        assert_error_names(err, "JWTD_SMTP_URL");
        if (!strstr(err, bad[i].says))
            fail_msg("%s: error '%s' lacks '%s'", bad[i].url, err, bad[i].says);
        assert_null(strstr(err, "Hunter2"));
        config_free(&c);
    }
    /* With TLS, or to a relay on this machine, credentials are fine. */
    static const struct {
        const char *url, *tls;
    } good[] = {
        {"smtp://jwtd:Hunter2Secret@mail.example.com:587", "required"},
        {"smtps://jwtd:Hunter2Secret@mail.example.com", "off"},
        {"smtp://jwtd:Hunter2Secret@127.0.0.1:2525", "off"},
        {"smtp://mail.example.com", "opportunistic"},
    };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        setenv("JWTD_SMTP_URL", good[i].url, 1);
        setenv("JWTD_SMTP_TLS", good[i].tls, 1);
        if (!load(&c, err, sizeof err, "--config", "none", NULL))
            fail_msg("%s (tls %s): %s", good[i].url, good[i].tls, err);
        config_free(&c);
    }
}

/* config_load on a file holding len bytes of text (NULs included). */
static bool load_file_bytes(struct config *c, char *err, size_t errlen, const char *text,
                            size_t len)
{
    char dir[64], conf[96];
    make_conf_dir(dir, conf, "");
    FILE *f = fopen(conf, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(text, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
    bool ok = load(c, err, errlen, "--config", conf, NULL);
    remove_conf_dir(dir);
    return ok;
}

/* Trap: a NUL byte ended the line for the parser (fgets and strlen): the
 * rest of the value was dropped without a word, and past a NUL a line
 * over 8 KiB was not "too long" but went on as a line of its own, one
 * that set a setting. A NUL is an error naming the line. */
static void test_file_nul_byte_refused(void **state)
{
    (void)state;
    char err[512];
    struct config c;
    static const char cut[] = "access_ttl = 1h\0 and the rest\n";
    assert_false(load_file_bytes(&c, err, sizeof err, cut, sizeof cut - 1));
    assert_non_null(strstr(err, "line 1: a NUL byte"));
    assert_null(strchr(err, '\n'));
    config_free(&c);

    char smuggle[9000];
    size_t n = (size_t)snprintf(smuggle, sizeof smuggle, "site_name = x");
    smuggle[n++] = '\0';
    memset(smuggle + n, 'A', 8180);
    n += 8180;
    n += (size_t)snprintf(smuggle + n, sizeof smuggle - n, "leeway = 7\n");
    assert_false(load_file_bytes(&c, err, sizeof err, smuggle, n));
    assert_non_null(strstr(err, "line 1: line too long")); /* the NUL hid nothing */
    config_free(&c);

    /* A UTF-16 file (Notepad's "Unicode") says so on its first line. */
    static const char utf16[] = "\xFF\xFE" "a\0c\0c\0e\0s\0s\0_\0t\0t\0l\0=\0" "5\0\n\0";
    assert_false(load_file_bytes(&c, err, sizeof err, utf16, sizeof utf16 - 1));
    assert_non_null(strstr(err, "line 1: a NUL byte"));
    assert_non_null(strstr(err, "UTF-16"));
    config_free(&c);
}

/* Trap: the "(FILE line N)" of a bad value was cut at 64 bytes: under a
 * longer path the error lost the line number. */
static void test_file_error_names_the_line_under_a_long_path(void **state)
{
    (void)state;
    char dir[160], conf[200], err[1024];
    snprintf(dir, sizeof dir, "/tmp/jwtd-unit-a-configuration-directory-with-a-rather-long-"
                              "name-XXXXXX");
    assert_non_null(mkdtemp(dir));
    snprintf(conf, sizeof conf, "%s/jwtd.conf", dir);
    FILE *f = fopen(conf, "w");
    assert_non_null(f);
    fputs("# a comment\naccess_ttl = abc\n", f);
    assert_int_equal(fclose(f), 0);
    struct config c;
    assert_false(load(&c, err, sizeof err, "--config", conf, NULL));
    char where[256];
    snprintf(where, sizeof where, "JWTD_ACCESS_TTL (%s line 2): bad value 'abc'", conf);
    if (!strstr(err, where))
        fail_msg("error line '%s' lacks '%s'", err, where);
    config_free(&c);
    assert_int_equal(unlink(conf), 0);
    assert_int_equal(rmdir(dir), 0);
}

/* config_read_text: the file format of jwtd.conf(5), line by line. */
static bool read_text(struct config *c, char *err, size_t errlen, const char *text)
{
    config_defaults(c);
    err[0] = '\0';
    return config_read_text(c, "t.conf", text, strlen(text), err, errlen);
}

static void test_file_format_edges(void **state)
{
    (void)state;
    char err[512];
    struct config c;
    /* CR LF endings, any case and '-' in names, JWTD_ names, quotes,
     * comment lines, blank lines, an empty optional value. */
    if (!read_text(&c, err, sizeof err,
                   "# comment\r\n\r\n  ACCESS-TTL = 10m\r\nJWTD_LEEWAY=0\r\n"
                   "site_name = \"  Spaced  \"\r\n\t# indented comment\r\nmail_templates =\r\n"
                   "audience = a#b\n"))
        fail_msg("%s", err);
    assert_int_equal(c.access_ttl, 600);
    assert_int_equal(c.leeway, 0);
    assert_string_equal(c.site_name, "  Spaced  ");
    assert_null(c.mail_templates);
    assert_string_equal(c.audience, "a#b"); /* '#' inside a value is the value's */
    assert_int_equal(c.file_line[config_setting_index("JWTD_LEEWAY")], 4);
    config_free(&c);

    static const struct {
        const char *text, *says;
    } bad[] = {
        {"access_ttl = 5m\nACCESS_TTL = 6m\n", "t.conf line 2: JWTD_ACCESS_TTL is set twice"},
        {"access_ttl = 5m\njwtd_access-ttl = 5m\n", "line 2: JWTD_ACCESS_TTL is set twice"},
        {"access_ttl 5m\n", "t.conf line 1: expected name = value"},
        {"access_ttl = 15m # fifteen minutes\n", "JWTD_ACCESS_TTL (t.conf line 1): bad value"},
        {"access_ttl =\n", "JWTD_ACCESS_TTL (t.conf line 1): bad value ''"},
        {"access_ttl = \"5m\n", "JWTD_ACCESS_TTL (t.conf line 1): bad value '\"5m'"},
        {"acces_ttl = 5m\n", "unknown setting 'acces_ttl'; did you mean access_ttl?"},
        {"config = /etc/other.conf\n", "t.conf line 1: 'config' is not a setting of the file"},
        {"Test-Clock = /tmp/c\n", "line 1: 'Test-Clock' is not a setting of the file (JWTD_TEST_CLOCK"},
        {"access ttl = 5m\n", "expected name = value (a name is"},
        {"access_ttl = 5m\rleeway = 1\r", "JWTD_ACCESS_TTL (t.conf line 1): bad value"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (read_text(&c, err, sizeof err, bad[i].text))
            fail_msg("'%s' was taken", bad[i].text);
        if (!strstr(err, bad[i].says))
            fail_msg("'%s': error '%s' lacks '%s'", bad[i].text, err, bad[i].says);
        assert_null(strchr(err, '\n'));
        config_free(&c);
    }

    /* 8 KiB of line, CR LF not counted; one byte more is too long. */
    /* static, not malloc'd: GCC 12's -Warray-bounds under ASan took the
     * heap block for an empty one. */
    static char line[8192 + 8];
    memcpy(line, "site_name = ", 12);
    memset(line + 12, '#', 8192 - 12);
    memcpy(line + 8192, "\r\n", 3);
    assert_false(read_text(&c, err, sizeof err, line)); /* too long a site name, */
    assert_non_null(strstr(err, "JWTD_SITE_NAME (t.conf line 1)")); /* but read */
    config_free(&c);
    memcpy(line + 8192, "#\n", 3);
    assert_false(read_text(&c, err, sizeof err, line));
    assert_string_equal(err, "t.conf line 1: line too long");
    config_free(&c);
}

/* Trap: secrets in jwtd.env beside jwtd.conf (read by the systemd unit,
 * not by the commands) sent `jwtd user add` to another database. Every
 * command refuses a configuration with a jwtd.env beside its file. */
static void test_env_file_beside_the_config_file_refused(void **state)
{
    (void)state;
    char dir[64], conf[96], err[512], env_file[128];
    make_conf_dir(dir, conf, "database = sqlite:/var/lib/jwtd/jwtd.db\n");
    struct config c;
    assert_true(load(&c, err, sizeof err, "--config", conf, NULL));
    config_free(&c);

    snprintf(env_file, sizeof env_file, "%s/jwtd.env", dir);
    FILE *f = fopen(env_file, "w");
    assert_non_null(f);
    fputs("JWTD_DATABASE=postgres://jwtd:Zq8#pw@db/jwtd\n", f);
    fclose(f);
    assert_false(load(&c, err, sizeof err, "--config", conf, NULL));
    assert_non_null(strstr(err, env_file));
    assert_non_null(strstr(err, conf));
    assert_null(strstr(err, "Zq8#"));
    assert_null(strchr(err, '\n'));
    config_free(&c);
    setenv("JWTD_CONFIG", conf, 1);
    assert_false(load(&c, err, sizeof err, NULL));
    config_free(&c);
    assert_true(load(&c, err, sizeof err, "--config", "none", NULL));
    config_free(&c);
    remove_conf_dir(dir);
}

/* Trap: `jwtd config check` passed a postgres:// URL that `jwtd serve` of
 * the same build (without libpq) then refused. The rule is the
 * configuration's, so both say it, exit 2. */
static void test_postgres_url_needs_a_build_with_postgres(void **state)
{
    (void)state;
    char err[512];
    struct config c;
    setenv("JWTD_DATABASE", "postgres://jwtd@db.example.com/jwtd", 1);
    bool ok = load(&c, err, sizeof err, NULL);
#ifdef JWTD_HAVE_POSTGRES
    if (!ok)
        fail_msg("%s", err);
#else
    assert_false(ok);
    assert_error_names(err, "JWTD_DATABASE");
    assert_non_null(strstr(err, "without PostgreSQL"));
#endif
    config_free(&c);
}

struct unknown_seen {
    char names[8][96], hints[8][96];
    size_t n;
};

static void note_unknown(void *ctx, const char *name, const char *hint)
{
    struct unknown_seen *u = ctx;
    assert_true(u->n < 8);
    snprintf(u->names[u->n], 96, "%s", name);
    snprintf(u->hints[u->n], 96, "%s", hint ? hint : "");
    u->n++;
}

static const char *hint_for(const struct unknown_seen *u, const char *name)
{
    for (size_t i = 0; i < u->n; i++)
        if (strcmp(u->names[i], name) == 0)
            return u->hints[i];
    return NULL;
}

/* Trap: JWTD_DATBASE=... was ignored without a word and `jwtd user add`
 * made ./jwtd.db. Unknown JWTD_* variables are reported, with the setting
 * they are likely a typo of; settings, JWTD_CONFIG and JWTD_TEST_CLOCK are
 * not. */
static void test_unknown_environment_variables_reported(void **state)
{
    (void)state;
    setenv("JWTD_DATBASE", "sqlite:/tmp/x.db", 1);
    setenv("JWTD_CONFG", "/etc/jwtd/jwtd.conf", 1);
    setenv("JWTD_SOMETHING_ELSE_ENTIRELY", "1", 1);
    setenv("JWTD_ACCESS_TTL", "60", 1);
    setenv("JWTD_CONFIG", "none", 1);
    setenv("JWTD_TEST_CLOCK", "/nonexistent", 1);
    struct unknown_seen u = {.n = 0};
    config_unknown_env(note_unknown, &u);
    assert_int_equal(u.n, 3);
    assert_string_equal(hint_for(&u, "JWTD_DATBASE"), "JWTD_DATABASE");
    assert_string_equal(hint_for(&u, "JWTD_CONFG"), "JWTD_CONFIG");
    assert_string_equal(hint_for(&u, "JWTD_SOMETHING_ELSE_ENTIRELY"), "");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_defaults, env_setup, env_teardown),
        cmocka_unit_test_setup_teardown(test_durations_accepted, env_setup, env_teardown),
        cmocka_unit_test_setup_teardown(test_durations_refused_by_config_set, env_setup,
                                        env_teardown),
        cmocka_unit_test_setup_teardown(test_durations_refused_from_env_and_flags, env_setup,
                                        env_teardown),
        cmocka_unit_test_setup_teardown(test_flags_both_forms, env_setup, env_teardown),
        cmocka_unit_test_setup_teardown(test_env_read_and_flags_override_env, env_setup,
                                        env_teardown),
        cmocka_unit_test_setup_teardown(test_unknown_flag_and_setting, env_setup, env_teardown),
        cmocka_unit_test_setup_teardown(test_hs256_requires_secret, env_setup, env_teardown),
        cmocka_unit_test_setup_teardown(test_hs256_short_secret_refused_without_echo, env_setup,
                                        env_teardown),
        cmocka_unit_test_setup_teardown(test_hs256_with_32_byte_secret, env_setup, env_teardown),
        cmocka_unit_test_setup_teardown(test_secret_alone_selects_hs256, env_setup, env_teardown),
        cmocka_unit_test_setup_teardown(test_secret_with_explicit_es256_refused, env_setup,
                                        env_teardown),
        cmocka_unit_test_setup_teardown(test_secret_leak_via_stray_argument_error, env_setup,
                                        env_teardown),
        cmocka_unit_test_setup_teardown(test_database_password_leak_via_error_line, env_setup,
                                        env_teardown),
        cmocka_unit_test_setup_teardown(test_issuer_default_follows_listen, env_setup,
                                        env_teardown),
        cmocka_unit_test_setup_teardown(test_public_url_normalized, env_setup, env_teardown),
        cmocka_unit_test_setup_teardown(test_cors_origins, env_setup, env_teardown),
        cmocka_unit_test_setup_teardown(test_argon2_cost_floor, env_setup, env_teardown),
        cmocka_unit_test_setup_teardown(test_other_values, env_setup, env_teardown),
        cmocka_unit_test_setup_teardown(test_mail_from, env_setup, env_teardown),
        cmocka_unit_test_setup_teardown(test_file_with_byte_order_mark, env_setup, env_teardown),
        cmocka_unit_test_setup_teardown(test_smtp_url_checked_as_the_mail_thread_would, env_setup,
                                        env_teardown),
        cmocka_unit_test_setup_teardown(test_file_nul_byte_refused, env_setup, env_teardown),
        cmocka_unit_test_setup_teardown(test_file_error_names_the_line_under_a_long_path,
                                        env_setup, env_teardown),
        cmocka_unit_test_setup_teardown(test_file_format_edges, env_setup, env_teardown),
        cmocka_unit_test_setup_teardown(test_env_file_beside_the_config_file_refused, env_setup,
                                        env_teardown),
        cmocka_unit_test_setup_teardown(test_postgres_url_needs_a_build_with_postgres, env_setup,
                                        env_teardown),
        cmocka_unit_test_setup_teardown(test_unknown_environment_variables_reported, env_setup,
                                        env_teardown),
    };
    return cmocka_run_group_tests_name("core_config", tests, NULL, NULL);
}
