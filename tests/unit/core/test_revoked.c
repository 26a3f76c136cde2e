/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The in-memory set of revoked sessions (src/core/revoked.c): add,
 * contains, prune and size; an added entry's expiry only ever grows; ids
 * are compared as UUIDs (case does not matter), non-UUIDs are refused;
 * entries that share a hash bucket are kept apart; and four threads adding
 * and looking up at once for half a second never see a wrong answer.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/revoked.h"
#include "base/util.h"

static const char A[] = "017f22e2-79b0-7cc3-98c4-dc0c0c07398f";
static const char B[] = "018f0000-0000-7000-8000-000000000001";
static const char C[] = "018f0000-0000-7000-8000-000000000002";

static void test_add_contains_prune_size(void **state)
{
    (void)state;
    struct revoked_set *rs = revoked_new();
    assert_non_null(rs);
    assert_int_equal(revoked_size(rs), 0);
    assert_false(revoked_contains(rs, A));

    assert_true(revoked_add(rs, A, 1000));
    assert_true(revoked_add(rs, B, 2000));
    assert_true(revoked_add(rs, C, 3000));
    assert_int_equal(revoked_size(rs), 3);
    assert_true(revoked_contains(rs, A));
    assert_true(revoked_contains(rs, B));
    assert_true(revoked_contains(rs, C));
    assert_false(revoked_contains(rs, "018f0000-0000-7000-8000-000000000003"));

    /* Entries expiring before now go; one expiring exactly now stays. */
    revoked_prune(rs, 1000);
    assert_int_equal(revoked_size(rs), 3);
    revoked_prune(rs, 1001);
    assert_int_equal(revoked_size(rs), 2);
    assert_false(revoked_contains(rs, A));
    assert_true(revoked_contains(rs, B));
    revoked_prune(rs, 5000);
    assert_int_equal(revoked_size(rs), 0);
    assert_false(revoked_contains(rs, B));
    assert_false(revoked_contains(rs, C));
    revoked_prune(rs, 6000); /* empty: nothing to do */
    assert_int_equal(revoked_size(rs), 0);

    /* Re-added after pruning. */
    assert_true(revoked_add(rs, A, 9000));
    assert_true(revoked_contains(rs, A));
    revoked_free(rs);
    revoked_free(NULL);
}

static void test_expiry_only_extends(void **state)
{
    (void)state;
    struct revoked_set *rs = revoked_new();
    assert_non_null(rs);
    assert_true(revoked_add(rs, A, 1000));
    assert_true(revoked_add(rs, A, 5000)); /* extend */
    assert_int_equal(revoked_size(rs), 1);
    revoked_prune(rs, 2000);
    assert_true(revoked_contains(rs, A));

    /* A later, shorter revocation (e.g. a stale feed row) never shortens. */
    assert_true(revoked_add(rs, A, 1500));
    assert_int_equal(revoked_size(rs), 1);
    revoked_prune(rs, 4000);
    assert_true(revoked_contains(rs, A));
    revoked_prune(rs, 5001);
    assert_false(revoked_contains(rs, A));
    assert_int_equal(revoked_size(rs), 0);
    revoked_free(rs);
}

/* revocation_bypass_by_case: the same session id in upper case is the same
 * session, both when recorded and when looked up. */
static void test_revocation_bypass_by_case(void **state)
{
    (void)state;
    struct revoked_set *rs = revoked_new();
    assert_non_null(rs);
    assert_true(revoked_add(rs, "017F22E2-79B0-7CC3-98C4-DC0C0C07398F", 1000));
    assert_true(revoked_contains(rs, A));
    assert_true(revoked_contains(rs, "017F22E2-79B0-7CC3-98C4-DC0C0C07398F"));
    assert_true(revoked_add(rs, A, 2000));
    assert_int_equal(revoked_size(rs), 1);
    revoked_free(rs);
}

static void test_non_uuid_refused(void **state)
{
    (void)state;
    struct revoked_set *rs = revoked_new();
    assert_non_null(rs);
    static const char *const bad[] = {"", "not-a-uuid", "017f22e2-79b0-7cc3-98c4-dc0c0c07398",
                                      "017f22e2-79b0-7cc3-98c4-dc0c0c07398fx",
                                      "017f22e279b07cc398c4dc0c0c07398f0000"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_false(revoked_add(rs, bad[i], 1000));
    assert_int_equal(revoked_size(rs), 0);
    assert_true(revoked_add(rs, A, 1000));
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_false(revoked_contains(rs, bad[i]));
    revoked_free(rs);
}

/* Ids that differ only in their first eight bytes (the UUIDv7 timestamp)
 * land in one bucket: the chain must keep them apart. */
static void test_same_bucket_chain(void **state)
{
    (void)state;
    struct revoked_set *rs = revoked_new();
    assert_non_null(rs);
    static const char *const ids[] = {
        "00000001-0000-7000-8123-456789abcdef",
        "00000002-0000-7000-8123-456789abcdef",
        "00000003-0000-7000-8123-456789abcdef",
        "00000004-0000-7000-8123-456789abcdef",
    };
    for (size_t i = 0; i < 4; i++)
        assert_true(revoked_add(rs, ids[i], (int64_t)(i + 1) * 1000));
    assert_int_equal(revoked_size(rs), 4);
    assert_false(revoked_contains(rs, "00000005-0000-7000-8123-456789abcdef"));
    /* Prune the first and the third from the middle of the chain. */
    assert_true(revoked_add(rs, ids[1], 10000));
    assert_true(revoked_add(rs, ids[3], 10000));
    revoked_prune(rs, 3500);
    assert_int_equal(revoked_size(rs), 2);
    assert_false(revoked_contains(rs, ids[0]));
    assert_true(revoked_contains(rs, ids[1]));
    assert_false(revoked_contains(rs, ids[2]));
    assert_true(revoked_contains(rs, ids[3]));
    revoked_free(rs);
}

/* ---- threads ---- */

enum { THREADS = 4, PER_THREAD = 512 };

struct stress {
    struct revoked_set *rs;
    int index;
    int64_t end_ms;
    atomic_int *errors;
    unsigned long ops;
};

static void stress_id(int thread, int i, bool added, char out[UUID_STR_LEN])
{
    /* Distinct per thread and index; the never-added ids differ in one
     * byte of the random tail. */
    snprintf(out, UUID_STR_LEN, "%08x-0000-7000-8%03x-%012x", (unsigned)i, (unsigned)thread,
             (unsigned)(added ? 0xaaaa : 0xbbbb) + (unsigned)i);
}

static void *stress_run(void *arg)
{
    struct stress *st = arg;
    char id[UUID_STR_LEN], absent[UUID_STR_LEN];
    int added = 0;
    unsigned x = (unsigned)st->index * 2654435761u + 1;
    while (util_mono_ms() < st->end_ms) {
        x = x * 1103515245u + 12345u;
        unsigned op = (x >> 16) % 8;
        if (op == 0 && added < PER_THREAD) {
            stress_id(st->index, added, true, id);
            if (!revoked_add(st->rs, id, 1000000))
                atomic_fetch_add(st->errors, 1);
            added++;
        } else if (op == 1) {
            revoked_prune(st->rs, 1); /* removes nothing, takes the write lock */
        } else if (added > 0) {
            int i = (int)((x >> 8) % (unsigned)added);
            stress_id(st->index, i, true, id);
            stress_id(st->index, i, false, absent);
            if (!revoked_contains(st->rs, id) || revoked_contains(st->rs, absent))
                atomic_fetch_add(st->errors, 1);
        }
        st->ops++;
    }
    /* Make the final count known: add the rest. */
    for (; added < PER_THREAD; added++) {
        stress_id(st->index, added, true, id);
        if (!revoked_add(st->rs, id, 1000000))
            atomic_fetch_add(st->errors, 1);
    }
    return NULL;
}

static void test_threaded_consistency(void **state)
{
    (void)state;
    struct revoked_set *rs = revoked_new();
    assert_non_null(rs);
    atomic_int errors = 0;
    struct stress st[THREADS];
    pthread_t th[THREADS];
    int64_t end = util_mono_ms() + 500;
    for (int i = 0; i < THREADS; i++) {
        st[i] = (struct stress){.rs = rs, .index = i, .end_ms = end, .errors = &errors};
        assert_int_equal(pthread_create(&th[i], NULL, stress_run, &st[i]), 0);
    }
    unsigned long ops = 0;
    for (int i = 0; i < THREADS; i++) {
        pthread_join(th[i], NULL);
        ops += st[i].ops;
    }
    assert_int_equal(atomic_load(&errors), 0);
    assert_true(ops > 1000); /* the threads really ran */
    assert_int_equal(revoked_size(rs), THREADS * PER_THREAD);
    char id[UUID_STR_LEN];
    for (int t = 0; t < THREADS; t++)
        for (int i = 0; i < PER_THREAD; i++) {
            stress_id(t, i, true, id);
            assert_true(revoked_contains(rs, id));
            stress_id(t, i, false, id);
            assert_false(revoked_contains(rs, id));
        }
    revoked_prune(rs, 1000001);
    assert_int_equal(revoked_size(rs), 0);
    revoked_free(rs);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_add_contains_prune_size),
        cmocka_unit_test(test_expiry_only_extends),
        cmocka_unit_test(test_revocation_bypass_by_case),
        cmocka_unit_test(test_non_uuid_refused),
        cmocka_unit_test(test_same_bucket_chain),
        cmocka_unit_test(test_threaded_consistency),
    };
    return cmocka_run_group_tests_name("core_revoked", tests, NULL, NULL);
}
