/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Tests of blocklist.c. The expected answers come from the vendored text
 * files of data/blocklist/, read here at run time (directory from the
 * environment's BLOCKLIST_DIR, else the compile-time JWTD_BLOCKLIST_DIR),
 * never from the generated C table: a generator or lookup bug cannot agree
 * with itself here. Random passwords come from RAND_bytes. Prints the time
 * of 100,000 lookups.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/rand.h>

#include "core/blocklist.h"
#include "core/password.h"
#include "core/weakpattern.h"

#ifndef JWTD_BLOCKLIST_DIR
#define JWTD_BLOCKLIST_DIR "data/blocklist"
#endif

/* The lists the build feeds the generator (src/meson.build). A list added
 * there and not here makes test_table_is_the_lists fail on the size. */
static const char *const LIST_FILES[] = {"passwords.txt", "wikipedia.txt", "firstnames.txt"};
#define N_LISTS (sizeof LIST_FILES / sizeof LIST_FILES[0])
#define RANKED 0 /* passwords.txt: ranked, most common first */

#define MIN_BYTES 8 /* the rule stated in data/blocklist/README.md */

struct line {
    const char *s;
    size_t len;
};

struct list {
    char *buf;
    struct line *v;
    size_t n;
};

static struct list lists[N_LISTS];

/* ------------------------------------------------------------------ */
/* Reading the vendored files: whole file, split on '\n'.              */

static int load_list(const char *dir, const char *name, struct list *ret)
{
    char path[4096];
    int rc = -1;
    FILE *f = NULL;
    char *buf = NULL;
    struct line *v = NULL;

    if (snprintf(path, sizeof path, "%s/%s", dir, name) >= (int)sizeof path)
        goto out;
    f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "test_blocklist: cannot open %s (set BLOCKLIST_DIR)\n", path);
        goto out;
    }
    if (fseek(f, 0, SEEK_END) != 0)
        goto out;
    long size = ftell(f);
    if (size <= 0 || fseek(f, 0, SEEK_SET) != 0)
        goto out;
    buf = malloc((size_t)size);
    if (!buf || fread(buf, 1, (size_t)size, f) != (size_t)size)
        goto out;
    if (buf[size - 1] != '\n')
        goto out;
    size_t n = 0;
    for (long i = 0; i < size; i++)
        n += buf[i] == '\n';
    v = calloc(n, sizeof *v);
    if (!v)
        goto out;
    size_t k = 0;
    const char *start = buf;
    for (long i = 0; i < size; i++) {
        if (buf[i] == '\n') {
            v[k].s = start;
            v[k].len = (size_t)(buf + i - start);
            k++;
            start = buf + i + 1;
        }
    }
    ret->buf = buf;
    ret->v = v;
    ret->n = n;
    buf = NULL;
    v = NULL;
    rc = 0;
out:
    free(v);
    free(buf);
    if (f)
        fclose(f);
    return rc;
}

static int setup_lists(void **state)
{
    const char *dir = getenv("BLOCKLIST_DIR");
    if (!dir || !*dir)
        dir = JWTD_BLOCKLIST_DIR;
    for (size_t i = 0; i < N_LISTS; i++)
        if (load_list(dir, LIST_FILES[i], &lists[i]) != 0)
            return -1;
    return 0;
}

static int teardown_lists(void **state)
{
    for (size_t i = 0; i < N_LISTS; i++) {
        free(lists[i].v);
        free(lists[i].buf);
        memset(&lists[i], 0, sizeof lists[i]);
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* An independent reference: a linear scan of the files.              */

static unsigned char fold(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') ? (unsigned char)(c + 32) : c;
}

static bool same_folded(const char *a, const char *b, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (fold((unsigned char)a[i]) != fold((unsigned char)b[i]))
            return false;
    return true;
}

/* What the policy says the answer is: some line of some list, 8 bytes or
 * more, equals s with ASCII case folded on both sides. */
static bool reference_contains(const char *s, size_t len)
{
    if (len < MIN_BYTES)
        return false;
    for (size_t l = 0; l < N_LISTS; l++)
        for (size_t i = 0; i < lists[l].n; i++)
            if (lists[l].v[i].len == len && same_folded(lists[l].v[i].s, s, len))
                return true;
    return false;
}

/* 1-based rank in passwords.txt, 0 when absent. */
static size_t rank_of(const char *s)
{
    size_t len = strlen(s);
    for (size_t i = 0; i < lists[RANKED].n; i++)
        if (lists[RANKED].v[i].len == len && memcmp(lists[RANKED].v[i].s, s, len) == 0)
            return i + 1;
    return 0;
}

static size_t longest_entry(void)
{
    size_t m = 0;
    for (size_t l = 0; l < N_LISTS; l++)
        for (size_t i = 0; i < lists[l].n; i++)
            if (lists[l].v[i].len > m)
                m = lists[l].v[i].len;
    return m;
}

static bool contains_str(const char *s)
{
    return blocklist_contains(s, strlen(s));
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ------------------------------------------------------------------ */
/* (a) the common passwords are refused                               */

static void test_top_10000_refused(void **state)
{
    const struct list *p = &lists[RANKED];
    assert_true(p->n >= 10000);
    char upper[64], mixed[64];
    size_t checked = 0;
    double t0 = now_s();
    for (size_t i = 0; i < 10000; i++) {
        const struct line *e = &p->v[i];
        if (e->len < MIN_BYTES)
            continue;
        assert_true(e->len < sizeof upper);
        for (size_t k = 0; k < e->len; k++) {
            unsigned char c = (unsigned char)e->s[k];
            unsigned char up = (c >= 'a' && c <= 'z') ? (unsigned char)(c - 32) : c;
            upper[k] = (char)up;
            mixed[k] = (char)(k % 2 ? up : c);
        }
        if (!blocklist_contains(e->s, e->len))
            fail_msg("rank %zu \"%.*s\" not refused", i + 1, (int)e->len, e->s);
        assert_true(blocklist_contains(upper, e->len));
        assert_true(blocklist_contains(mixed, e->len));
        checked++;
    }
    double t = now_s() - t0;
    /* 3,534 for language-common 4.1.3; a floor guards against a truncated
     * file without pinning the data version. */
    assert_true(checked > 2000);
    printf("[          ] %zu of the 10,000 most common passwords are >= 8 bytes: all refused, "
           "as typed, upper-cased and mixed (%.1f ms for %zu lookups)\n",
           checked, t * 1e3, checked * 3);
}

static void test_hand_typed(void **state)
{
    /* Ranks read from passwords.txt, so the literals are checked to be
     * really there (and within the top 10,000) before being looked up. */
    assert_int_equal(rank_of("password"), 2);
    assert_int_equal(rank_of("iloveyou"), 51);
    assert_int_equal(rank_of("sunshine1"), 8623);
    assert_int_equal(rank_of("12345678"), 3);
    assert_int_equal(rank_of("trustno1"), 37);

    assert_true(contains_str("password"));
    assert_true(contains_str("PassWord"));
    assert_true(contains_str("PASSWORD"));
    assert_true(contains_str("iloveyou"));
    assert_true(contains_str("ILoveYou"));
    assert_true(contains_str("sunshine1"));
    assert_true(contains_str("SUNSHINE1"));
    assert_true(contains_str("12345678"));
    assert_true(contains_str("TrustNo1"));

    /* Dictionary words and first names, from the other two lists only. */
    assert_int_equal(rank_of("encyclopedia"), 0);
    assert_true(reference_contains("encyclopedia", 12));
    assert_true(contains_str("Encyclopedia"));
    assert_int_equal(rank_of("wilhelmina"), 0);
    assert_true(reference_contains("wilhelmina", 10));
    assert_true(contains_str("Wilhelmina"));

    /* Near misses: exact match only, no substring, no stripping. */
    assert_false(contains_str("password "));
    assert_false(contains_str(" password"));
    assert_false(contains_str("passwor"));
    assert_false(contains_str("xpasswordx"));
}

/* Every kept line of every list is in the table, and the table holds
 * nothing else: its size is the number of distinct folded kept lines. */
static int cmp_line(const void *a, const void *b)
{
    const struct line *x = a, *y = b;
    size_t n = x->len < y->len ? x->len : y->len;
    int c = memcmp(x->s, y->s, n);
    if (c)
        return c;
    return (x->len > y->len) - (x->len < y->len);
}

static void test_table_is_the_lists(void **state)
{
    size_t total = 0;
    for (size_t l = 0; l < N_LISTS; l++)
        total += lists[l].n;
    struct line *all = calloc(total, sizeof *all);
    char *folded = NULL;
    size_t bytes = 0;
    for (size_t l = 0; l < N_LISTS; l++)
        for (size_t i = 0; i < lists[l].n; i++)
            bytes += lists[l].v[i].len;
    folded = malloc(bytes ? bytes : 1);
    assert_non_null(all);
    assert_non_null(folded);

    size_t n = 0, off = 0;
    for (size_t l = 0; l < N_LISTS; l++) {
        for (size_t i = 0; i < lists[l].n; i++) {
            const struct line *e = &lists[l].v[i];
            if (e->len < MIN_BYTES)
                continue;
            if (!blocklist_contains(e->s, e->len))
                fail_msg("%s line %zu \"%.*s\" not refused", LIST_FILES[l], i + 1, (int)e->len,
                         e->s);
            for (size_t k = 0; k < e->len; k++)
                folded[off + k] = (char)fold((unsigned char)e->s[k]);
            all[n].s = folded + off;
            all[n].len = e->len;
            off += e->len;
            n++;
        }
    }
    qsort(all, n, sizeof *all, cmp_line);
    size_t distinct = 0;
    for (size_t i = 0; i < n; i++)
        if (i == 0 || cmp_line(&all[i - 1], &all[i]) != 0)
            distinct++;
    assert_int_equal(blocklist_size(), distinct);
    free(folded);
    free(all);
}

/* ------------------------------------------------------------------ */
/* (b) random and patterned passwords are accepted                    */

struct rng {
    unsigned char pool[4096];
    size_t pos;
};

static unsigned char rng_byte(struct rng *r)
{
    if (r->pos == sizeof r->pool) {
        assert_int_equal(RAND_bytes(r->pool, (int)sizeof r->pool), 1);
        r->pos = 0;
    }
    return r->pool[r->pos++];
}

/* Uniform in [0, n) for n <= 256: reject the bytes past the last whole
 * multiple of n, so no value is favoured. */
static unsigned rng_below(struct rng *r, unsigned n)
{
    unsigned limit = 256 - 256 % n;
    for (;;) {
        unsigned b = rng_byte(r);
        if (b < limit)
            return b % n;
    }
}

static void test_random_accepted(void **state)
{
    enum { N = 100000, MINLEN = 16, MAXLEN = 64 };
    struct rng *r = calloc(1, sizeof *r);
    char(*pws)[MAXLEN] = malloc((size_t)N * MAXLEN);
    size_t *lens = malloc((size_t)N * sizeof *lens);
    assert_non_null(r);
    assert_non_null(pws);
    assert_non_null(lens);
    r->pos = sizeof r->pool;

    /* Drawn before timing, so the figure is the lookups alone. */
    for (size_t i = 0; i < N; i++) {
        lens[i] = MINLEN + rng_below(r, MAXLEN - MINLEN + 1);
        for (size_t k = 0; k < lens[i]; k++)
            pws[i][k] = (char)(0x21 + rng_below(r, 94)); /* '!' .. '~' */
    }
    size_t refused = 0;
    double t0 = now_s();
    for (size_t i = 0; i < N; i++)
        refused += blocklist_contains(pws[i], lens[i]);
    double t = now_s() - t0;
    assert_int_equal(refused, 0);

    /* The same count again, cut to the table's longest entry or shorter,
     * so every lookup runs the full binary search instead of the length
     * shortcut: the cost of a real check. */
    size_t longest = longest_entry();
    size_t refused_short = 0;
    double t1 = now_s();
    for (size_t i = 0; i < N; i++)
        refused_short += blocklist_contains(pws[i], MIN_BYTES + i % (longest - MIN_BYTES + 1));
    double t2 = now_s() - t1;
    assert_int_equal(refused_short, 0);

    /* The whole policy (list, patterns, length, username) on both sets:
     * the short pattern rules (core/weakpattern.h) refuse no random
     * password either. */
    size_t policy_refused = 0;
    for (size_t i = 0; i < N; i++) {
        size_t cut = MIN_BYTES + i % (WEAKPATTERN_MAX_BYTES - MIN_BYTES);
        const char *why = password_policy_check(NULL, "someone", pws[i], lens[i]);
        if (!why)
            why = password_policy_check(NULL, "someone", pws[i], cut);
        if (why) {
            print_message("refused: %.*s (%s)\n", (int)lens[i], pws[i], why);
            policy_refused++;
        }
    }
    assert_int_equal(policy_refused, 0);

    printf("[          ] 100,000 random passwords of 16-64 printable ASCII: 0 refused, "
           "%.2f ms (%.0f ns each)\n",
           t * 1e3, t * 1e9 / N);
    printf("[          ] 100,000 random passwords of 8-%zu bytes (full search): 0 refused, "
           "%.2f ms (%.0f ns each)\n",
           longest, t2 * 1e3, t2 * 1e9 / N);
    free(lens);
    free(pws);
    free(r);
}

/* The short repetitive, sequential, keyboard and date patterns that the
 * lists leave to rules: among the most used passwords of all (from the
 * first 10,000 entries of a large breach corpus that the vendored lists do
 * not hold). Refused by the policy. Long ones and near misses are not. */
static void test_short_patterns_refused(void **state)
{
    (void)state;
    static const char *const weak[] = {
        "88888888",   "aaaaaaaa",    "00000000",     "1111111111",  "xxxxxxxx",
        "123123123",  "12341234",    "1234512345",   "qwertyqwerty", "sexsexsex",
        "19841984",   "hahahaha",    "1q1q1q1q",     "987654321",   "87654321",
        "0123456789", "0987654321",  "9876543210",   "23456789",    "abcdefgh",
        "ABCDEFGH",   "poiuytrewq",  "lkjhgfdsa",    "poiuytre",    "asdfghjkl;",
        "zxcvbnm,./", "01012009",    "12251990",     "19870315",    "13071985"};
    for (size_t i = 0; i < sizeof weak / sizeof weak[0]; i++)
        if (!password_policy_check(NULL, "someone", weak[i], strlen(weak[i])))
            fail_msg("'%s' accepted", weak[i]);
    static const char *const fine[] = {
        "aaaaaaaaaaaaaaaa",   /* 16 bytes: out of the rules' reach */
        "123456789123456789", "abcabcabcabcabca", "qwertyuiopasdfghjkl",
        "88888889",           "12345608",         "qwertyuj",
        "32132099",           "99999998",         "purple tugboat sings",
        "x7#Kp2!q"};
    for (size_t i = 0; i < sizeof fine / sizeof fine[0]; i++) {
        const char *why = password_policy_check(NULL, "someone", fine[i], strlen(fine[i]));
        if (why)
            fail_msg("'%s' refused: %s", fine[i], why);
    }
}

static void fill_pattern(char *buf, size_t len, const char *pat)
{
    size_t plen = strlen(pat);
    for (size_t i = 0; i < len; i++)
        buf[i] = pat[i % plen];
}

static void test_patterns_accepted(void **state)
{
    /* 1,024-byte repeats: longer than any line of any list (checked here
     * from the files), so no list can hold them; "password" repeated shows
     * that a listed entry inside a password does not refuse it. */
    assert_true(longest_entry() < 1024);
    static const char *const long_pats[] = {"abc123", "a", "password", "Password1!", "1234567890",
                                            "qwerty"};
    char buf[1024];
    for (size_t i = 0; i < sizeof long_pats / sizeof long_pats[0]; i++) {
        fill_pattern(buf, sizeof buf, long_pats[i]);
        assert_false(blocklist_contains(buf, sizeof buf));
    }

    /* Short "systematic" strings: accepted exactly when no list holds them
     * (the answer comes from the files), never for their look. The first
     * four are not in the lists, the last two are. */
    static const char *const short_pats[] = {"aaaaaaaaaaaaaaaa", "abcabcabcabcabca",
                                             "abc123abc123abc1", "1234512345123451",
                                             "11111111",         "asdfasdf"};
    for (size_t i = 0; i < sizeof short_pats / sizeof short_pats[0]; i++) {
        size_t len = strlen(short_pats[i]);
        assert_int_equal(blocklist_contains(short_pats[i], len),
                         reference_contains(short_pats[i], len));
    }
    assert_false(contains_str("aaaaaaaaaaaaaaaa"));
    assert_false(contains_str("abcabcabcabcabca"));
    assert_true(contains_str("11111111"));
    assert_true(contains_str("asdfasdf"));
}

/* ------------------------------------------------------------------ */
/* (c) boundaries                                                     */

static void test_short_entries_absent(void **state)
{
    size_t seven = 0;
    for (size_t l = 0; l < N_LISTS; l++) {
        for (size_t i = 0; i < lists[l].n; i++) {
            const struct line *e = &lists[l].v[i];
            if (e->len >= MIN_BYTES)
                continue;
            seven += e->len == 7;
            if (blocklist_contains(e->s, e->len))
                fail_msg("%s line %zu \"%.*s\" (%zu bytes) refused", LIST_FILES[l], i + 1,
                         (int)e->len, e->s, e->len);
        }
    }
    assert_true(seven > 1000); /* there were 7-byte lines to test */
    assert_int_equal(rank_of("1234567"), 9);
    assert_false(contains_str("1234567"));
}

static void test_empty_and_null(void **state)
{
    assert_false(blocklist_contains("", 0));
    assert_false(blocklist_contains(NULL, 0));
    assert_false(blocklist_contains(NULL, 8));
    assert_false(blocklist_contains("password", 0));
}

static void test_lengths(void **state)
{
    /* The longest line of the lists is refused; one byte more is not. */
    size_t longest = longest_entry();
    const char *lp = NULL;
    for (size_t l = 0; l < N_LISTS && !lp; l++)
        for (size_t i = 0; i < lists[l].n; i++)
            if (lists[l].v[i].len == longest) {
                lp = lists[l].v[i].s;
                break;
            }
    assert_non_null(lp);
    char buf[1025];
    memcpy(buf, lp, longest);
    assert_true(blocklist_contains(buf, longest));
    buf[longest] = 'x';
    assert_false(blocklist_contains(buf, longest + 1));
    memset(buf + longest, 'x', sizeof buf - longest);
    assert_false(blocklist_contains(buf, 1024));
    assert_false(blocklist_contains(buf, sizeof buf));

    /* len is honoured, not a NUL: a prefix of a longer buffer matches, a
     * NUL inside does not end the password. */
    assert_true(blocklist_contains("passwordXYZ", 8));
    assert_false(blocklist_contains("password\0xyz", 12));
    assert_false(blocklist_contains("password\0", 9));
}

static void test_high_bytes(void **state)
{
    /* Every byte value in front of "assword": the answer comes from the
     * files, and only 'p' and 'P' may match. A lookup that folded with
     * tolower() under a Latin-1 locale, or masked the high bit, fails. */
    char buf[8];
    memcpy(buf + 1, "assword", 7);
    size_t refused = 0;
    for (unsigned b = 0; b < 256; b++) {
        buf[0] = (char)b;
        bool got = blocklist_contains(buf, 8);
        assert_int_equal(got, reference_contains(buf, 8));
        refused += got;
        if (b >= 0x80)
            assert_false(got);
    }
    assert_true(refused >= 2);

    /* "password" and "PASSWORD" with the high bit set on every byte. */
    char hi[8], hu[8];
    for (size_t k = 0; k < 8; k++) {
        hi[k] = (char)((unsigned char)"password"[k] | 0x80);
        hu[k] = (char)((unsigned char)"PASSWORD"[k] | 0x80);
    }
    assert_false(blocklist_contains(hi, 8));
    assert_false(blocklist_contains(hu, 8));

    /* Invalid UTF-8 and all-0xFF, at table lengths and at 1 KiB. */
    unsigned char ff[1024];
    memset(ff, 0xFF, sizeof ff);
    for (size_t len = 0; len <= sizeof ff; len++)
        assert_false(blocklist_contains((const char *)ff, len));
    unsigned char mixed[12] = {0xC3, 0x28, 'p', 'a', 's', 's', 0xE2, 0x82, 'w', 'o', 'r', 'd'};
    assert_false(blocklist_contains((const char *)mixed, sizeof mixed));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_top_10000_refused),
        cmocka_unit_test(test_hand_typed),
        cmocka_unit_test(test_table_is_the_lists),
        cmocka_unit_test(test_random_accepted),
        cmocka_unit_test(test_short_patterns_refused),
        cmocka_unit_test(test_patterns_accepted),
        cmocka_unit_test(test_short_entries_absent),
        cmocka_unit_test(test_empty_and_null),
        cmocka_unit_test(test_lengths),
        cmocka_unit_test(test_high_bytes),
    };
    return cmocka_run_group_tests(tests, setup_lists, teardown_lists);
}
