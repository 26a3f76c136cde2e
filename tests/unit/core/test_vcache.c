/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The verification cache (src/core/vcache.c): put/get, a miss under another
 * key-ring generation, a colliding token replacing the older entry, tokens
 * that share their tail (the hash input) never sharing an answer, the size
 * limit, a disabled cache, and four threads hammering a small cache for
 * half a second without ever reading a torn or foreign entry.
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

#include "base/util.h"
#include "core/vcache.h"

static struct vcache_value value(const char *sub, const char *sid, const char *user, int64_t exp)
{
    struct vcache_value v;
    memset(&v, 0, sizeof v);
    snprintf(v.sub, sizeof v.sub, "%s", sub);
    snprintf(v.sid, sizeof v.sid, "%s", sid);
    snprintf(v.username, sizeof v.username, "%s", user);
    v.exp = exp;
    return v;
}

static const char SUB[] = "017f22e2-79b0-7cc3-98c4-dc0c0c07398f";
static const char SID[] = "018f0000-0000-7000-8000-000000000001";

static void test_put_get(void **state)
{
    (void)state;
    struct vcache *vc = vcache_new(64);
    assert_non_null(vc);
    const char *tok = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJlLXBhcnQtMTIzNDU2";
    struct vcache_value out;
    assert_false(vcache_get(vc, tok, strlen(tok), 1, &out));

    struct vcache_value v = value(SUB, SID, "alice", 1800000000);
    vcache_put(vc, tok, strlen(tok), 1, &v);
    memset(&out, 0, sizeof out);
    assert_true(vcache_get(vc, tok, strlen(tok), 1, &out));
    assert_string_equal(out.sub, SUB);
    assert_string_equal(out.sid, SID);
    assert_string_equal(out.username, "alice");
    assert_int_equal(out.exp, 1800000000);

    /* Another ring generation: a miss (the key may be gone). */
    assert_false(vcache_get(vc, tok, strlen(tok), 2, &out));
    assert_false(vcache_get(vc, tok, strlen(tok), 0, &out));

    /* A prefix or an extension of the token is another token. */
    assert_false(vcache_get(vc, tok, strlen(tok) - 1, 1, &out));
    char longer[256];
    snprintf(longer, sizeof longer, "%sA", tok);
    assert_false(vcache_get(vc, longer, strlen(longer), 1, &out));
    assert_false(vcache_get(vc, tok, 0, 1, &out));

    /* Re-put under a new generation: the new answer wins. */
    struct vcache_value v2 = value(SUB, SID, "alice2", 1800000100);
    vcache_put(vc, tok, strlen(tok), 2, &v2);
    assert_true(vcache_get(vc, tok, strlen(tok), 2, &out));
    assert_string_equal(out.username, "alice2");
    assert_int_equal(out.exp, 1800000100);
    assert_false(vcache_get(vc, tok, strlen(tok), 1, &out));
    vcache_free(vc);
    vcache_free(NULL);
}

static void test_same_slot_replaced(void **state)
{
    (void)state;
    struct vcache *vc = vcache_new(1); /* one slot: every token collides */
    assert_non_null(vc);
    const char *t1 = "header.payload.signature-one-0001";
    const char *t2 = "header.payload.signature-two-0002";
    struct vcache_value v1 = value(SUB, SID, "one", 100), v2 = value(SUB, SID, "two", 200), out;
    vcache_put(vc, t1, strlen(t1), 1, &v1);
    vcache_put(vc, t2, strlen(t2), 1, &v2);
    assert_false(vcache_get(vc, t1, strlen(t1), 1, &out));
    assert_true(vcache_get(vc, t2, strlen(t2), 1, &out));
    assert_string_equal(out.username, "two");
    vcache_free(vc);
}

/* cache_confusion: the slot is chosen from the token's last 16 characters;
 * a token with the same tail but another header or payload (another user)
 * must miss, not get the cached identity. */
static void test_cache_confusion_same_tail(void **state)
{
    (void)state;
    struct vcache *vc = vcache_new(1024);
    assert_non_null(vc);
    const char *good = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.SAME-SIGNATURE-TAIL";
    const char *evil = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJtYWxsb3J5In0.SAME-SIGNATURE-TAIL";
    const char *evil2 = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJib2JieSJ9.SAME-SIGNATURE-TAIL";
    assert_int_equal(strlen(evil2), strlen(good)); /* same length too */
    struct vcache_value v = value(SUB, SID, "alice", 100), out;
    vcache_put(vc, good, strlen(good), 1, &v);
    assert_false(vcache_get(vc, evil, strlen(evil), 1, &out));
    assert_false(vcache_get(vc, evil2, strlen(evil2), 1, &out));
    assert_true(vcache_get(vc, good, strlen(good), 1, &out));
    vcache_free(vc);
}

/* One slot: every lookup compares against the cached token, so a token
 * that differs in any one byte (in the 8-byte steps and in the tail of the
 * comparison, at every length from 1 to 40) must miss. */
static void test_one_byte_difference_anywhere_misses(void **state)
{
    (void)state;
    struct vcache *vc = vcache_new(1);
    assert_non_null(vc);
    struct vcache_value v = value(SUB, SID, "alice", 100), out;
    char good[41], probe[41];
    for (size_t len = 1; len <= 40; len++) {
        for (size_t k = 0; k < len; k++)
            good[k] = (char)('A' + (k * 7 + len) % 26);
        good[len] = '\0';
        vcache_put(vc, good, len, 1, &v);
        for (size_t i = 0; i < len; i++) {
            for (unsigned bit = 0; bit < 8; bit += 7) {
                memcpy(probe, good, len + 1);
                probe[i] = (char)(probe[i] ^ (1u << bit));
                assert_false(vcache_get(vc, probe, len, 1, &out));
            }
        }
        assert_true(vcache_get(vc, good, len, 1, &out));
        assert_string_equal(out.username, "alice");
    }
    vcache_free(vc);
}

static void test_size_limit(void **state)
{
    (void)state;
    struct vcache *vc = vcache_new(16);
    assert_non_null(vc);
    char *tok = malloc(VCACHE_TOKEN_MAX + 2);
    assert_non_null(tok);
    for (size_t i = 0; i < VCACHE_TOKEN_MAX + 1; i++)
        tok[i] = "abcdefghijklmnopqrstuvwxyz0123456789"[i % 36];
    tok[VCACHE_TOKEN_MAX + 1] = '\0';
    struct vcache_value v = value(SUB, SID, "big", 100), out;

    /* Exactly the limit: cached. */
    vcache_put(vc, tok, VCACHE_TOKEN_MAX, 1, &v);
    assert_true(vcache_get(vc, tok, VCACHE_TOKEN_MAX, 1, &out));
    /* One more: neither cached nor looked up. */
    tok[VCACHE_TOKEN_MAX] = 'Z';
    vcache_put(vc, tok, VCACHE_TOKEN_MAX + 1, 1, &v);
    assert_false(vcache_get(vc, tok, VCACHE_TOKEN_MAX + 1, 1, &out));
    /* Empty token: not cached. */
    vcache_put(vc, "", 0, 1, &v);
    assert_false(vcache_get(vc, "", 0, 1, &out));
    free(tok);
    vcache_free(vc);
}

static void test_disabled(void **state)
{
    (void)state;
    struct vcache *vc = vcache_new(0);
    assert_null(vc);
    struct vcache_value v = value(SUB, SID, "x", 1), out;
    vcache_put(NULL, "abc", 3, 1, &v);
    assert_false(vcache_get(NULL, "abc", 3, 1, &out));
}

/* ---- threads ---- */

enum { THREADS = 4, TOKENS = 64 };

struct stress {
    struct vcache *vc;
    int index;
    int64_t end_ms;
    atomic_int *errors;
    unsigned long hits, ops;
};

/* Token i of the shared pool, and the value that belongs to it only. */
static void token_of(int i, char out[96])
{
    snprintf(out, 96, "eyJhbGciOiJFUzI1NiJ9.payload-%04d.sig-%04d-%08x", i, i,
             (unsigned)i * 2654435761u);
}

static struct vcache_value value_of(int i)
{
    char sub[UUID_STR_LEN], name[64];
    snprintf(sub, sizeof sub, "00000000-0000-7000-8000-%012d", i);
    snprintf(name, sizeof name, "user-%d-%s", i, "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx");
    return value(sub, sub, name, 1000000 + i);
}

static void *stress_run(void *arg)
{
    struct stress *st = arg;
    unsigned x = (unsigned)st->index * 7919u + 17u;
    char tok[96];
    while (util_mono_ms() < st->end_ms) {
        x = x * 1103515245u + 12345u;
        int i = (int)((x >> 8) % TOKENS);
        token_of(i, tok);
        uint64_t gen = (x >> 20) % 2; /* two generations in play */
        if ((x >> 16) % 3 == 0) {
            struct vcache_value v = value_of(i);
            v.exp += (int64_t)gen;
            vcache_put(st->vc, tok, strlen(tok), gen, &v);
        } else {
            struct vcache_value out;
            if (vcache_get(st->vc, tok, strlen(tok), gen, &out)) {
                struct vcache_value want = value_of(i);
                want.exp += (int64_t)gen;
                if (strcmp(out.sub, want.sub) != 0 || strcmp(out.sid, want.sid) != 0 ||
                    strcmp(out.username, want.username) != 0 || out.exp != want.exp)
                    atomic_fetch_add(st->errors, 1);
                st->hits++;
            }
        }
        st->ops++;
    }
    return NULL;
}

static void test_threaded_consistency(void **state)
{
    (void)state;
    struct vcache *vc = vcache_new(16); /* fewer slots than tokens: constant replacement */
    assert_non_null(vc);
    atomic_int errors = 0;
    struct stress st[THREADS];
    pthread_t th[THREADS];
    int64_t end = util_mono_ms() + 500;
    for (int i = 0; i < THREADS; i++) {
        st[i] = (struct stress){.vc = vc, .index = i, .end_ms = end, .errors = &errors};
        assert_int_equal(pthread_create(&th[i], NULL, stress_run, &st[i]), 0);
    }
    unsigned long hits = 0, ops = 0;
    for (int i = 0; i < THREADS; i++) {
        pthread_join(th[i], NULL);
        hits += st[i].hits;
        ops += st[i].ops;
    }
    assert_int_equal(atomic_load(&errors), 0);
    assert_true(ops > 1000);
    assert_true(hits > 0); /* the comparison above really ran */
    vcache_free(vc);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_put_get),
        cmocka_unit_test(test_same_slot_replaced),
        cmocka_unit_test(test_cache_confusion_same_tail),
        cmocka_unit_test(test_one_byte_difference_anywhere_misses),
        cmocka_unit_test(test_size_limit),
        cmocka_unit_test(test_disabled),
        cmocka_unit_test(test_threaded_consistency),
    };
    return cmocka_run_group_tests_name("core_vcache", tests, NULL, NULL);
}
