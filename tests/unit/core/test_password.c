/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Passwords (src/core/password.c): argon2id hashing and verification with
 * the PHC string format, re-hash detection, bcrypt ($2a$/$2b$/$2y$)
 * verification of imported hashes (generated here with libxcrypt, plus the
 * published crypt_blowfish vectors), refusal of malformed hashes, the
 * username rule and the password policy of API.md. argon2id at the default
 * cost takes ~20 ms a hash, so this file hashes only twice.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <crypt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "core/password.h"

static const struct password_params DEFAULT_PARAMS = {19456, 2, 1};

/* Published crypt_blowfish test vectors (Openwall, wrapper.c), checked on
 * this machine with /usr/bin/python3 -c 'import crypt; crypt.crypt(pw, h) == h'. */
static const struct {
    const char *pw, *hash;
} BCRYPT_VECTORS[] = {
    {"U*U", "$2a$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW"},
    {"U*U*", "$2a$05$CCCCCCCCCCCCCCCCCCCCC.VGOzA784oUp/Z0DY336zx7pLYAy0lwK"},
    /* Same salt and password under $2b$ and $2y$ (identical for ASCII). */
    {"U*U", "$2b$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW"},
    {"U*U", "$2y$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW"},
};

static char *bcrypt_make(const char *prefix, unsigned long cost, const char *pw)
{
    char salt[CRYPT_GENSALT_OUTPUT_SIZE];
    if (!crypt_gensalt_rn(prefix, cost, NULL, 0, salt, sizeof salt))
        fail_msg("libcrypt cannot make a %s salt", prefix);
    struct crypt_data *cd = calloc(1, sizeof *cd);
    assert_non_null(cd);
    /* crypt_rn: libxcrypt's crypt_r that answers NULL on failure (and that
     * the sanitizers do not intercept). */
    const char *h = crypt_rn(pw, salt, cd, (int)sizeof *cd);
    assert_non_null(h);
    assert_true(h[0] != '*');
    char *out = strdup(h);
    free(cd);
    assert_non_null(out);
    assert_int_equal(strlen(out), 60);
    assert_memory_equal(out, prefix, 4);
    return out;
}

/* ---- argon2id ---- */

static void test_argon2id_round_trip_and_phc_shape(void **state)
{
    (void)state;
    const char *pw = "correct horse battery staple";
    char *h = NULL;
    assert_int_equal(password_hash(&DEFAULT_PARAMS, pw, strlen(pw), &h), PASSWORD_OK);
    assert_non_null(h);

    /* $argon2id$v=19$m=19456,t=2,p=1$<22 chars of salt>$<43 chars of tag> */
    static const char prefix[] = "$argon2id$v=19$m=19456,t=2,p=1$";
    assert_memory_equal(h, prefix, sizeof prefix - 1);
    const char *salt = h + sizeof prefix - 1;
    const char *dollar = strchr(salt, '$');
    assert_non_null(dollar);
    assert_int_equal(dollar - salt, 22); /* 16 bytes, unpadded base64 */
    assert_int_equal(strlen(dollar + 1), 43); /* 32 bytes */
    assert_null(strchr(salt, '=')); /* no padding in salt or tag */
    assert_true(password_hash_supported(h));

    bool rehash = true;
    assert_int_equal(password_verify(h, pw, strlen(pw), &DEFAULT_PARAMS, &rehash), PASSWORD_OK);
    assert_false(rehash);

    /* Wrong password, and the same password one byte shorter / longer. */
    rehash = true;
    assert_int_equal(password_verify(h, "correct horse battery stapl", 27, &DEFAULT_PARAMS, &rehash),
                     PASSWORD_MISMATCH);
    assert_int_equal(password_verify(h, "correct horse battery staple!", 29, &DEFAULT_PARAMS,
                                     &rehash),
                     PASSWORD_MISMATCH);
    assert_int_equal(password_verify(h, "Correct horse battery staple", 28, &DEFAULT_PARAMS,
                                     &rehash),
                     PASSWORD_MISMATCH);
    assert_true(rehash); /* untouched on failure */

    /* needs_rehash whenever any parameter differs from the configured ones. */
    static const struct password_params other[] = {{12288, 3, 1}, {19456, 3, 1}, {19456, 2, 2},
                                                   {65536, 2, 1}};
    for (size_t i = 0; i < sizeof other / sizeof other[0]; i++) {
        rehash = false;
        assert_int_equal(password_verify(h, pw, strlen(pw), &other[i], &rehash), PASSWORD_OK);
        assert_true(rehash);
    }

    /* A second hash of the same password has a fresh salt. */
    char *h2 = NULL;
    assert_int_equal(password_hash(&DEFAULT_PARAMS, pw, strlen(pw), &h2), PASSWORD_OK);
    assert_string_not_equal(h, h2);
    password_hash_free(h);
    password_hash_free(h2);
    password_hash_free(NULL);
}

static void test_argon2id_binary_password(void **state)
{
    (void)state;
    /* Cheap parameters: this checks length handling, not cost. */
    const struct password_params cheap = {8, 1, 1};
    const char pw[] = {'a', 'b', '\0', 'c', 'd', 'e', 'f', 'g', 'h'};
    char *h = NULL;
    assert_int_equal(password_hash(&cheap, pw, sizeof pw, &h), PASSWORD_OK);
    bool rehash = false;
    assert_int_equal(password_verify(h, pw, sizeof pw, &cheap, &rehash), PASSWORD_OK);
    assert_false(rehash);
    /* The bytes after the NUL count. */
    assert_int_equal(password_verify(h, "ab", 2, &cheap, &rehash), PASSWORD_MISMATCH);
    const char other[] = {'a', 'b', '\0', 'c', 'd', 'e', 'f', 'g', 'X'};
    assert_int_equal(password_verify(h, other, sizeof other, &cheap, &rehash), PASSWORD_MISMATCH);
    /* Against the default parameters it verifies and asks for a re-hash. */
    assert_int_equal(password_verify(h, pw, sizeof pw, &DEFAULT_PARAMS, &rehash), PASSWORD_OK);
    assert_true(rehash);
    password_hash_free(h);
}

/* ---- bcrypt ---- */

static void test_bcrypt_generated_hashes_verify(void **state)
{
    (void)state;
    static const struct {
        const char *prefix;
        unsigned long cost;
    } kinds[] = {{"$2b$", 10}, {"$2a$", 5}, {"$2y$", 5}};
    const char *pw = "imported-Passw0rd";
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
        char *h = bcrypt_make(kinds[i].prefix, kinds[i].cost, pw);
        assert_true(password_hash_supported(h));
        bool rehash = false;
        if (password_verify(h, pw, strlen(pw), &DEFAULT_PARAMS, &rehash) != PASSWORD_OK)
            fail_msg("%s hash does not verify", kinds[i].prefix);
        assert_true(rehash); /* always moved to argon2id */
        rehash = false;
        assert_int_equal(password_verify(h, "imported-Passw0rD", 17, &DEFAULT_PARAMS, &rehash),
                         PASSWORD_MISMATCH);
        assert_false(rehash);
        free(h);
    }
}

static void test_bcrypt_published_vectors(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof BCRYPT_VECTORS / sizeof BCRYPT_VECTORS[0]; i++) {
        const char *pw = BCRYPT_VECTORS[i].pw, *h = BCRYPT_VECTORS[i].hash;
        assert_true(password_hash_supported(h));
        bool rehash = false;
        if (password_verify(h, pw, strlen(pw), &DEFAULT_PARAMS, &rehash) != PASSWORD_OK)
            fail_msg("vector %zu (%s) does not verify", i, h);
        assert_true(rehash);
        /* A neighbouring password does not. */
        assert_int_equal(password_verify(h, "U*U*U", 5, &DEFAULT_PARAMS, &rehash),
                         PASSWORD_MISMATCH);
    }
}

/* nul_byte_truncation: crypt() stops at the first NUL, so "U*U\0anything"
 * would match the hash of "U*U" if the length were ignored. */
static void test_bcrypt_nul_byte_truncation(void **state)
{
    (void)state;
    const char pw[] = {'U', '*', 'U', '\0', 'x', 'y', 'z'};
    bool rehash = false;
    assert_int_equal(password_verify(BCRYPT_VECTORS[0].hash, pw, sizeof pw, &DEFAULT_PARAMS,
                                     &rehash),
                     PASSWORD_MISMATCH);
    assert_false(rehash);
    /* ... while the first three bytes alone match. */
    assert_int_equal(password_verify(BCRYPT_VECTORS[0].hash, pw, 3, &DEFAULT_PARAMS, &rehash),
                     PASSWORD_OK);
}

/* ---- malformed and unsupported hashes ---- */

static const char *const MALFORMED[] = {
    "",
    "plaintext-password",
    "$argon2id$",
    "$argon2id$v=19$m=19456,t=2,p=1$",                /* no salt, no tag */
    "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ",     /* no tag */
    "$argon2id$v=19$m=19456,t=2,p=1$!!!!$!!!!",       /* not base64 */
    "$argon2id$v=16$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaGhhc2g",
    "$argon2i$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaGhhc2g",
    "$argon2d$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaGhhc2g",
    "$2b$",
    "$2b$05$short",
    "$2b$05$!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!", /* bad alphabet */
    "$2x$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW",
    "$1$saltsalt$qjXMvbEw8oaL.CzflDugX/",                      /* md5-crypt */
    "$6$saltsalt$abcdefghijklmnopqrstuv",                      /* sha512-crypt */
};

static void test_malformed_hashes_are_errors(void **state)
{
    (void)state;
    int bad = 0;
    for (size_t i = 0; i < sizeof MALFORMED / sizeof MALFORMED[0]; i++) {
        bool rehash = false;
        enum password_rc rc = password_verify(MALFORMED[i], "U*U", 3, &DEFAULT_PARAMS, &rehash);
        if (rc != PASSWORD_ERROR) {
            print_error("'%s' gave %d, not PASSWORD_ERROR\n", MALFORMED[i], (int)rc);
            bad++;
        }
        assert_false(rehash);
    }
    assert_int_equal(bad, 0);
}

/* A bcrypt hash cut short by one character (a truncated column, a bad
 * export) is malformed: PASSWORD_ERROR as password.h says, not a plain
 * mismatch that hides the corruption behind "wrong password". */
static void test_truncated_bcrypt_hash_is_error(void **state)
{
    (void)state;
    const char *h = "$2b$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOe"; /* 59 */
    assert_int_equal(strlen(h), 59);
    assert_false(password_hash_supported(h));
    bool rehash = false;
    assert_int_equal(password_verify(h, "U*U", 3, &DEFAULT_PARAMS, &rehash), PASSWORD_ERROR);
}

/* imported_hash_cost_dos: bcrypt's cost is a power of two. An imported
 * "$2b$31$" hash takes 2^21 times longer than cost 10 (tens of hours)
 * and would pin a hashing worker for each login of that user, which the
 * queue deadline cannot stop once the job runs. The import check must
 * refuse costs no server would use (argon2id parameters are bounded the
 * same way). */
static void test_imported_hash_cost_dos(void **state)
{
    (void)state;
    assert_true(password_hash_supported(
        "$2b$12$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW"));
    assert_false(password_hash_supported(
        "$2b$31$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW"));
}

/* An import check that says yes to a hash verify() can never accept lets a
 * broken account in: each of its logins would fail as a server error. */
static void test_hash_supported_refuses_what_verify_cannot_use(void **state)
{
    (void)state;
    int bad = 0;
    for (size_t i = 0; i < sizeof MALFORMED / sizeof MALFORMED[0]; i++)
        if (password_hash_supported(MALFORMED[i])) {
            print_error("password_hash_supported('%s') is true but password_verify gives "
                        "PASSWORD_ERROR\n",
                        MALFORMED[i]);
            bad++;
        }
    assert_int_equal(bad, 0);
}

static void test_hash_supported(void **state)
{
    (void)state;
    assert_true(password_hash_supported(
        "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0c2FsdA$"
        "aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g"));
    assert_true(password_hash_supported(BCRYPT_VECTORS[0].hash));
    assert_true(password_hash_supported(BCRYPT_VECTORS[3].hash));
    /* Parameters outside what jwtd would run. */
    assert_false(password_hash_supported(
        "$argon2id$v=19$m=4,t=2,p=1$c2FsdHNhbHRzYWx0c2FsdA$"
        "aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g"));
    assert_false(password_hash_supported(
        "$argon2id$v=19$m=19456,t=0,p=1$c2FsdHNhbHRzYWx0c2FsdA$"
        "aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g"));
    assert_false(password_hash_supported(
        "$argon2id$v=19$m=19456,t=2,p=65$c2FsdHNhbHRzYWx0c2FsdA$"
        "aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g"));
    assert_false(password_hash_supported("$argon2i$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0c2FsdA$"
                                         "aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g"));
    assert_false(password_hash_supported(""));
    assert_false(password_hash_supported("$2b$05$CCCC"));
}

/* ---- usernames ---- */

static bool uv(const char *s)
{
    return username_valid(s, strlen(s));
}

static void test_username_rule(void **state)
{
    (void)state;
    char buf[200];
    memset(buf, 'a', sizeof buf);
    assert_true(username_valid(buf, 3));
    assert_true(username_valid(buf, 128));
    assert_false(username_valid(buf, 2));
    assert_false(username_valid(buf, 129));
    assert_false(username_valid(buf, 0));
    assert_false(uv(""));

    assert_true(uv("Alice"));
    assert_true(uv("bob.smith"));
    assert_true(uv("bob_smith"));
    assert_true(uv("bob-smith"));
    assert_true(uv("bob@example.com"));
    assert_true(uv("bob+tag"));
    assert_true(uv("A1.b2_C3-d4@e5+F6"));
    assert_true(uv("007"));

    static const char *const bad[] = {
        "bob smith", "bob/smith", "bob\\smith", "bob\tsmith", "bob:smith", "bob'smith",
        "bob\"smith", "bob<x>", "bob%20", "bob#1", "bob!", "caf\xc3\xa9", /* é in UTF-8 */
        "\xff\xfe\xfd", "ab\x7f", "abc\n",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (uv(bad[i]))
            fail_msg("username '%s' accepted", bad[i]);
    /* A NUL inside the counted length is refused, not a terminator. */
    assert_false(username_valid("abc\0def", 7));
}

/* ---- password policy ---- */

static void test_password_policy(void **state)
{
    (void)state;
    struct password_policy *pp = password_policy_new();
    assert_non_null(pp);

    assert_non_null(password_policy_check(pp, "someone", "x7#Kp2!", 7));
    assert_null(password_policy_check(pp, "someone", "x7#Kp2!q", 8));

    char *big = malloc(1026);
    assert_non_null(big);
    /* Varied text that no dictionary holds. */
    uint32_t x = 2463534242u;
    for (int i = 0; i < 1025; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        big[i] = (char)('!' + x % 94);
    }
    big[1025] = '\0';
    assert_non_null(password_policy_check(pp, "someone", big, 1025));
    big[1024] = '\0';
    const char *why = password_policy_check(pp, "someone", big, 1024);
    if (why)
        fail_msg("1024-byte password refused: %s", why);
    free(big);

    /* Equal to the username, in any case. */
    assert_non_null(password_policy_check(pp, "Quintessa77", "Quintessa77", 11));
    assert_non_null(password_policy_check(pp, "Quintessa77", "qUINTESSA77", 11));
    assert_null(password_policy_check(pp, "Quintessa77", "Quintessa77!", 12));
    assert_null(password_policy_check(pp, NULL, "Quintessa77", 11));

    static const char *const common[] = {"password", "12345678", "qwertyuiop", "letmein123",
                                         "Password1", "iloveyou"};
    for (size_t i = 0; i < sizeof common / sizeof common[0]; i++)
        if (!password_policy_check(pp, "someone", common[i], strlen(common[i])))
            fail_msg("dictionary password '%s' accepted", common[i]);

    const char *phrase = "purple tugboat sings at midnight";
    why = password_policy_check(pp, "someone", phrase, strlen(phrase));
    if (why)
        fail_msg("passphrase refused: %s", why);

    /* A NUL byte inside the counted length. */
    assert_non_null(password_policy_check(pp, "someone", "x7#Kp2!q\0zz", 11));
    password_policy_free(pp);
    password_policy_free(NULL);
}

/* The policy takes pw as (pointer, length) and must read only those bytes.
 * Each password below is put at the very end of a page followed by an
 * inaccessible page, so a read of pw[len] faults in any build. */
struct guarded {
    char *map;
    size_t size;
    struct password_policy *pp;
};

static int guarded_setup(void **state)
{
    struct guarded *g = calloc(1, sizeof *g);
    assert_non_null(g);
    long page = sysconf(_SC_PAGESIZE);
    assert_true(page > 0);
    g->size = (size_t)page * 2;
    g->map = mmap(NULL, g->size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    assert_true(g->map != MAP_FAILED);
    assert_int_equal(mprotect(g->map + page, (size_t)page, PROT_NONE), 0);
    g->pp = password_policy_new();
    assert_non_null(g->pp);
    *state = g;
    return 0;
}

static int guarded_teardown(void **state)
{
    struct guarded *g = *state;
    password_policy_free(g->pp);
    munmap(g->map, g->size);
    free(g);
    return 0;
}

/* len bytes of s placed right before the guard page, not NUL-terminated. */
static const char *guarded_copy(struct guarded *g, const char *s, size_t len)
{
    char *p = g->map + g->size / 2 - len;
    memcpy(p, s, len);
    return p;
}

/* The username comparison (password.c, util_ascii_ieq) walks both strings
 * to a NUL: with the password equal to the username it reads pw[len] to
 * compare terminators. (This case answers before the dictionary check, so
 * it fails only for the comparison.) */
static void test_policy_username_check_reads_past_len(void **state)
{
    struct guarded *g = *state;
    const char *pw = guarded_copy(g, "Quintessa77", 11);
    /* Reaching the assertion without a fault is the test. */
    assert_non_null(password_policy_check(g->pp, "quintessa77", pw, 11));
}

/* The blocklist check must read pw as (pointer, len), never to a NUL. */
static void test_policy_dictionary_check_reads_past_len(void **state)
{
    struct guarded *g = *state;
    const char *pw = guarded_copy(g, "x7#Kp2!q", 8);
    assert_null(password_policy_check(g->pp, "someone", pw, 8));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_argon2id_round_trip_and_phc_shape),
        cmocka_unit_test(test_argon2id_binary_password),
        cmocka_unit_test(test_bcrypt_generated_hashes_verify),
        cmocka_unit_test(test_bcrypt_published_vectors),
        cmocka_unit_test(test_bcrypt_nul_byte_truncation),
        cmocka_unit_test(test_malformed_hashes_are_errors),
        cmocka_unit_test(test_truncated_bcrypt_hash_is_error),
        cmocka_unit_test(test_hash_supported_refuses_what_verify_cannot_use),
        cmocka_unit_test(test_hash_supported),
        cmocka_unit_test(test_imported_hash_cost_dos),
        cmocka_unit_test(test_username_rule),
        cmocka_unit_test(test_password_policy),
        cmocka_unit_test_setup_teardown(test_policy_username_check_reads_past_len, guarded_setup,
                                        guarded_teardown),
        cmocka_unit_test_setup_teardown(test_policy_dictionary_check_reads_past_len,
                                        guarded_setup, guarded_teardown),
    };
    return cmocka_run_group_tests_name("core_password", tests, NULL, NULL);
}
