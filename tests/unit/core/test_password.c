/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Passwords (src/core/password.c): argon2id hashing and verification with
 * the PHC string format, re-hash detection, bcrypt ($2a$/$2b$/$2y$)
 * verification of imported hashes (generated here with libxcrypt, plus the
 * published crypt_blowfish vectors), refusal of malformed hashes, the
 * username rule and the password policy of API.md. jwtd writes and reads
 * argon2id PHC strings itself (to hash in a per-thread work area): they are
 * cross-checked against libargon2's own encoder and decoder, including which
 * malformed strings are refused. argon2id at the default cost takes ~20 ms a
 * hash, so this file hashes at it only a few times.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <argon2.h>
#include <crypt.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
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

/* jwtd's PHC strings are libargon2's: what one writes the other verifies,
 * with every salt and tag length and parallelism tried. */
static void test_argon2id_strings_interoperate_with_libargon2(void **state)
{
    (void)state;
    const char *pw = "interop password";
    const size_t pwl = strlen(pw);
    static const struct password_params params[] = {{8, 1, 1}, {64, 2, 2}, {1024, 1, 4}};
    for (size_t i = 0; i < sizeof params / sizeof params[0]; i++) {
        char *h = NULL;
        assert_int_equal(password_hash(&params[i], pw, pwl, &h), PASSWORD_OK);
        assert_int_equal(argon2id_verify(h, pw, pwl), ARGON2_OK);
        assert_int_equal(argon2id_verify(h, "interop passwore", pwl), ARGON2_VERIFY_MISMATCH);
        password_hash_free(h);
    }
    static const size_t saltlens[] = {8, 16, 17, 33, 64};
    static const size_t taglens[] = {4, 16, 31, 32, 64};
    uint8_t salt[64];
    for (size_t i = 0; i < sizeof salt; i++)
        salt[i] = (uint8_t)(i * 37 + 11);
    for (size_t si = 0; si < sizeof saltlens / sizeof saltlens[0]; si++) {
        for (size_t ti = 0; ti < sizeof taglens / sizeof taglens[0]; ti++) {
            size_t n = argon2_encodedlen(1, 16, 1, (uint32_t)saltlens[si], (uint32_t)taglens[ti],
                                         Argon2_id);
            char *enc = malloc(n);
            assert_non_null(enc);
            assert_int_equal(argon2id_hash_encoded(1, 16, 1, pw, pwl, salt, saltlens[si],
                                                   taglens[ti], enc, n),
                             ARGON2_OK);
            bool rehash = false;
            const struct password_params mine = {16, 1, 1};
            assert_int_equal(password_verify(enc, pw, pwl, &mine, &rehash), PASSWORD_OK);
            assert_false(rehash);
            assert_int_equal(password_verify(enc, "interop passwore", pwl, &mine, &rehash),
                             PASSWORD_MISMATCH);
            assert_true(password_hash_supported(enc));
            free(enc);
        }
    }
}

/* Refused exactly where libargon2's decoder refuses: each variant of a good
 * string is an error for jwtd iff argon2id_verify answers neither OK nor
 * MISMATCH. */
static void test_argon2id_strings_refused_like_libargon2(void **state)
{
    (void)state;
    const char *pw = "variant password";
    char good[160];
    {
        uint8_t salt[16] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
        assert_int_equal(argon2id_hash_encoded(1, 16, 1, pw, strlen(pw), salt, sizeof salt, 32,
                                               good, sizeof good),
                         ARGON2_OK);
    }
    /* good: $argon2id$v=19$m=16,t=1,p=1$AQIDBAUGBwgJCgsMDQ4PEA$<43 chars> */
    const char *tag = strrchr(good, '$') + 1;
    char v[64][200];
    size_t nv = 0;
#define VARIANT(...) snprintf(v[nv++], sizeof v[0], __VA_ARGS__)
    VARIANT("%s", good);
    VARIANT("%sA", good);                                   /* one more character */
    VARIANT("%s=", good);                                   /* padding */
    VARIANT("%s$", good);                                   /* trailing separator */
    VARIANT("%.*s", (int)strlen(good) - 1, good);           /* one character short */
    VARIANT("%.*s", (int)strlen(good) - 2, good);
    VARIANT("$argon2id$v=19$m=016,t=1,p=1$AQIDBAUGBwgJCgsMDQ4PEA$%s", tag); /* leading zero */
    VARIANT("$argon2id$v=19$m=+16,t=1,p=1$AQIDBAUGBwgJCgsMDQ4PEA$%s", tag);
    VARIANT("$argon2id$v=19$m= 16,t=1,p=1$AQIDBAUGBwgJCgsMDQ4PEA$%s", tag);
    VARIANT("$argon2id$v=19$m=16,t=01,p=1$AQIDBAUGBwgJCgsMDQ4PEA$%s", tag);
    VARIANT("$argon2id$v=19$m=4294967296,t=1,p=1$AQIDBAUGBwgJCgsMDQ4PEA$%s", tag);
    VARIANT("$argon2id$v=19$m=16,t=0,p=1$AQIDBAUGBwgJCgsMDQ4PEA$%s", tag);
    VARIANT("$argon2id$v=19$m=16,t=1,p=0$AQIDBAUGBwgJCgsMDQ4PEA$%s", tag);
    VARIANT("$argon2id$v=19$m=7,t=1,p=1$AQIDBAUGBwgJCgsMDQ4PEA$%s", tag);  /* < 8 KiB */
    VARIANT("$argon2id$v=19$m=16,t=1,p=3$AQIDBAUGBwgJCgsMDQ4PEA$%s", tag); /* < 8 KiB a lane */
    VARIANT("$argon2id$v=19$m=16,t=1$AQIDBAUGBwgJCgsMDQ4PEA$%s", tag);     /* no p */
    VARIANT("$argon2id$v=19$t=1,m=16,p=1$AQIDBAUGBwgJCgsMDQ4PEA$%s", tag); /* order */
    VARIANT("$argon2id$v=19$m=16,t=1,p=1$AQIDBAUGBwc$%s", tag);           /* 7-byte salt */
    VARIANT("$argon2id$v=19$m=16,t=1,p=1$AQIDBAUGBwgJCgsMDQ4PEB$%s", tag); /* trailing bits */
    VARIANT("$argon2id$v=19$m=16,t=1,p=1$AQIDBAUGBwgJCgsMDQ4PE$%s", tag);  /* 1 mod 4 */
    VARIANT("$argon2id$v=19$m=16,t=1,p=1$AQIDBAUGBwgJCgsMDQ4PEA$AQID");    /* 3-byte tag */
    VARIANT("$argon2id$v=19$m=16,t=1,p=1$AQIDBAUGBwgJCgsMDQ4PEA$AQIDBA"); /* 4-byte tag */
    VARIANT("$argon2id$v=19$m=16,t=1,p=1$AQIDBAUGBwgJCgsMDQ4PEA$");       /* no tag */
    VARIANT("$argon2id$v=19$m=16,t=1,p=1$$%s", tag);                       /* no salt */
    VARIANT("$argon2id$v=19$m=16,t=1,p=1$AQID-AUGBwgJCgsMDQ4PEA$%s", tag); /* url alphabet */
    VARIANT("$argon2id$v=19$m=16,t=1,p=1$AQIDBAUGBwgJCgsMDQ4PEA==$%s", tag);
#undef VARIANT
    int bad = 0;
    for (size_t i = 0; i < nv; i++) {
        int lib = argon2id_verify(v[i], pw, strlen(pw));
        bool lib_error = lib != ARGON2_OK && lib != ARGON2_VERIFY_MISMATCH;
        bool rehash = false;
        const struct password_params mine = {16, 1, 1};
        enum password_rc rc = password_verify(v[i], pw, strlen(pw), &mine, &rehash);
        bool jwtd_error = rc == PASSWORD_ERROR;
        if (lib_error != jwtd_error || (!lib_error && (lib == ARGON2_OK) != (rc == PASSWORD_OK))) {
            print_error("'%s': libargon2 %d (%s), jwtd %d\n", v[i], lib,
                        argon2_error_message(lib), (int)rc);
            bad++;
        }
    }
    assert_int_equal(bad, 0);
    /* and the good one was good */
    bool rehash = false;
    const struct password_params mine = {16, 1, 1};
    assert_int_equal(password_verify(good, pw, strlen(pw), &mine, &rehash), PASSWORD_OK);
}

static long thread_minor_faults(void)
{
    struct rusage ru;
    assert_int_equal(getrusage(RUSAGE_THREAD, &ru), 0);
    return ru.ru_minflt;
}

static long rss_kib(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    assert_non_null(f);
    char line[256];
    long kib = -1;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "VmRSS: %ld kB", &kib) == 1)
            break;
    fclose(f);
    return kib;
}

static void *hash_once(void *arg)
{
    (void)arg;
    char *h = NULL;
    if (password_hash(&DEFAULT_PARAMS, "thread password", 15, &h) != PASSWORD_OK)
        return (void *)1;
    password_hash_free(h);
    return NULL;
}

/* A thread hashes in the same work area every time: after its first hash,
 * the 19 MiB of argon2id memory are not mapped (and faulted in) again -
 * 4,864 pages - whatever malloc would do with such a block. A hash of
 * another size replaces the area; the area goes when its thread ends. */
static void test_argon2id_work_area_is_kept_by_its_thread(void **state)
{
    (void)state;
    char *h = NULL;
    assert_int_equal(password_hash(&DEFAULT_PARAMS, "first", 5, &h), PASSWORD_OK);
    password_hash_free(h);
    long before = thread_minor_faults();
    assert_int_equal(password_hash(&DEFAULT_PARAMS, "second", 6, &h), PASSWORD_OK);
    long hash_faults = thread_minor_faults() - before;
    before = thread_minor_faults();
    bool rehash = true;
    assert_int_equal(password_verify(h, "second", 6, &DEFAULT_PARAMS, &rehash), PASSWORD_OK);
    long verify_faults = thread_minor_faults() - before;
    password_hash_free(h);
    print_message("page faults: hash %ld, verify %ld (19 MiB is 4864 pages)\n", hash_faults,
                  verify_faults);
    assert_true(hash_faults < 500);
    assert_true(verify_faults < 500);

    /* a hash of another size replaces the area: 64 MiB used once do not
     * stay resident behind the usual 19 MiB */
    long rss_usual = rss_kib();
    const struct password_params big = {65536, 1, 1};
    assert_int_equal(password_hash(&big, "big", 3, &h), PASSWORD_OK);
    password_hash_free(h);
    assert_int_equal(password_hash(&DEFAULT_PARAMS, "usual", 5, &h), PASSWORD_OK);
    password_hash_free(h);
    long rss_after_big = rss_kib();
    print_message("resident: %ld KiB, %ld KiB after a 64 MiB hash and a usual one\n", rss_usual,
                  rss_after_big);
    assert_true(rss_after_big - rss_usual < 19456);

    /* given back on request */
    long rss_kept = rss_kib();
    password_release_work_area();
    password_release_work_area(); /* twice is harmless */
    long rss_released = rss_kib();
    print_message("resident: %ld KiB with the area, %ld KiB without\n", rss_kept, rss_released);
    assert_true(rss_kept - rss_released > 19456 / 2);
    assert_int_equal(password_hash(&DEFAULT_PARAMS, "again", 5, &h), PASSWORD_OK);
    assert_int_equal(password_verify(h, "again", 5, &DEFAULT_PARAMS, &rehash), PASSWORD_OK);
    password_hash_free(h);

    /* another thread: its own area, given back at its end */
    long rss0 = rss_kib();
    pthread_t t;
    void *ret = (void *)2;
    assert_int_equal(pthread_create(&t, NULL, hash_once, NULL), 0);
    assert_int_equal(pthread_join(t, &ret), 0);
    assert_null(ret);
    long rss1 = rss_kib();
    print_message("resident: %ld KiB before the thread, %ld KiB after it\n", rss0, rss1);
    assert_true(rss1 - rss0 < 19456 / 2);
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
        cmocka_unit_test(test_argon2id_strings_interoperate_with_libargon2),
        cmocka_unit_test(test_argon2id_strings_refused_like_libargon2),
        cmocka_unit_test(test_argon2id_work_area_is_kept_by_its_thread),
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
