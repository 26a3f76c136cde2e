/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Allocation-failure torture test of libjwtd (curl's idea): every
 * allocation an operation makes — libjwtd's own (malloc/calloc/realloc/
 * strdup are wrapped at link time, -Wl,--wrap), jansson's
 * (json_set_alloc_funcs) and OpenSSL's (CRYPTO_set_mem_functions) — is made
 * to fail in turn, the Nth on the Nth run, until a run completes without
 * any failure injected. Each failing run must end in an error code, never in
 * a crash, a success with missing data, or a leak (the sanitizer build
 * checks the last two).
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "testutil.h"

/* ---- the failure switch ---- */

static long fail_at = -1; /* fail the allocation with this index; -1: never */
static long counter;
static long injected;

static bool should_fail(void)
{
    if (fail_at < 0)
        return false;
    if (counter++ == fail_at) {
        injected++;
        return true;
    }
    return false;
}

void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t m);
void *__real_realloc(void *p, size_t n);
char *__real_strdup(const char *s);
void *__wrap_malloc(size_t n);
void *__wrap_calloc(size_t n, size_t m);
void *__wrap_realloc(void *p, size_t n);
char *__wrap_strdup(const char *s);

void *__wrap_malloc(size_t n)
{
    return should_fail() ? NULL : __real_malloc(n);
}

void *__wrap_calloc(size_t n, size_t m)
{
    return should_fail() ? NULL : __real_calloc(n, m);
}

void *__wrap_realloc(void *p, size_t n)
{
    return should_fail() ? NULL : __real_realloc(p, n);
}

char *__wrap_strdup(const char *s)
{
    return should_fail() ? NULL : __real_strdup(s);
}

static void *j_malloc(size_t n)
{
    return should_fail() ? NULL : __real_malloc(n);
}

static void j_free(void *p)
{
    free(p);
}

static void *o_malloc(size_t n, const char *file, int line)
{
    (void)file;
    (void)line;
    return should_fail() ? NULL : __real_malloc(n);
}

static void *o_realloc(void *p, size_t n, const char *file, int line)
{
    (void)file;
    (void)line;
    return should_fail() ? NULL : __real_realloc(p, n);
}

static void o_free(void *p, const char *file, int line)
{
    (void)file;
    (void)line;
    free(p);
}

/* ---- fixtures: built with injection off ---- */

struct fx {
    char *jwks;
    char *token;
    uint8_t secret[32];
    char *hs_token;
};

static struct fx F;

static const char issuer[] = "https://issuer.example";

static char *claims_json(void)
{
    char *s = NULL;
    if (asprintf(&s,
                 "{\"iss\":\"%s\",\"sub\":\"01a22405-041e-7c56-93cf-2f1407cb273d\",\"aud\":"
                 "[\"x\",\"jwtd\"],\"exp\":4000000000,\"iat\":1700000000,\"jti\":\"j\",\"sid\":"
                 "\"01a22405-0448-7065-a653-6387170a3431\",\"preferred_username\":\"alice\"}",
                 issuer) < 0)
        return NULL;
    return s;
}

static int setup(void **state)
{
    (void)state;
    EVP_PKEY *pkey = tu_keygen(JWTD_ALG_ES256);
    jwtd_key *k = NULL;
    json_t *jwk = NULL;
    char *payload = claims_json();
    assert_int_equal(jwtd__key_from_pkey(pkey, JWTD_ALG_ES256, NULL, &k), JWTD_OK);
    assert_int_equal(jwtd__key_public_jwk(k, &jwk), JWTD_OK);
    json_t *doc = json_pack("{s:[o]}", "keys", jwk);
    F.jwks = json_dumps(doc, JSON_COMPACT);
    json_decref(doc);
    assert_int_equal(jwtd__sign_compact(k, payload, strlen(payload), &F.token), JWTD_OK);
    memset(F.secret, 7, sizeof F.secret);
    jwtd_key *hk = NULL;
    assert_int_equal(jwtd_key_new_hmac("h", F.secret, sizeof F.secret, &hk), JWTD_OK);
    assert_int_equal(jwtd__sign_compact(hk, payload, strlen(payload), &F.hs_token), JWTD_OK);
    jwtd_key_free(hk);
    jwtd_key_free(k);
    EVP_PKEY_free(pkey);
    free(payload);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    free(F.jwks);
    free(F.token);
    free(F.hs_token);
    return 0;
}

/* One complete use of the library: parse the JWKS, configure a verifier,
 * verify the ES256 token and read its claims; the same for HS256. Returns
 * JWTD_OK only when every step succeeded and the claims are all there. */
static jwtd_err scenario(void)
{
    jwtd_keyset *ks = NULL, *hs = NULL;
    jwtd_key *hk = NULL;
    jwtd_verifier *v = NULL;
    jwtd_claims *c = NULL;
    char *json = NULL;
    jwtd_err e = jwtd_keyset_from_jwks(F.jwks, strlen(F.jwks), 0, &ks);
    if (e == JWTD_OK)
        e = jwtd_verifier_new(&v);
    if (e == JWTD_OK)
        e = jwtd_verifier_set_issuer(v, issuer);
    if (e == JWTD_OK)
        e = jwtd_verifier_set_audience(v, "jwtd");
    if (e == JWTD_OK)
        e = jwtd_verify(v, ks, F.token, strlen(F.token), 1800000000, &c);
    if (e == JWTD_OK) {
        json = jwtd_claims_json(c);
        if (!json)
            e = JWTD_ERR_NOMEM;
        else if (!jwtd_claims_sub(c) || !jwtd_claims_sid(c) || !jwtd_claims_username(c) ||
                 strcmp(jwtd_claims_iss(c), issuer) != 0)
            fail_msg("verified claims are incomplete under allocation failures");
    }
    jwtd_claims_free(c);
    c = NULL;
    if (e == JWTD_OK)
        e = jwtd_key_new_hmac("h", F.secret, sizeof F.secret, &hk);
    if (e == JWTD_OK)
        e = jwtd_keyset_new(&hs);
    if (e == JWTD_OK)
        e = jwtd_keyset_add(hs, hk);
    if (e == JWTD_OK)
        e = jwtd_verifier_set_algs(v, JWTD_ALG_HS256);
    if (e == JWTD_OK)
        e = jwtd_verify(v, hs, F.hs_token, strlen(F.hs_token), 1800000000, &c);
    jwtd_claims_free(c);
    free(json);
    jwtd_key_free(hk);
    jwtd_keyset_free(hs);
    jwtd_keyset_free(ks);
    jwtd_verifier_free(v);
    return e;
}

static void test_every_allocation_failure_is_an_error(void **state)
{
    (void)state;
    json_set_alloc_funcs(j_malloc, j_free);
    long n;
    long errors = 0;
    for (n = 0; n < 100000; n++) {
        counter = 0;
        injected = 0;
        fail_at = n;
        jwtd_err e = scenario();
        fail_at = -1;
        if (!injected) {
            /* Every allocation succeeded: the scenario must too. */
            assert_int_equal(e, JWTD_OK);
            break;
        }
        /* A failure was injected: either it was absorbed (OpenSSL, for one,
         * retries some allocations) or it surfaced as an error. */
        if (e != JWTD_OK)
            errors++;
    }
    json_set_alloc_funcs(malloc, free);
    print_message("allocation failures injected: %ld (one per run), surfaced as errors: %ld\n", n,
                  errors);
    assert_true(n > 20);       /* the scenario does allocate */
    assert_true(errors > n / 2); /* and failures do reach the caller */
}

int main(void)
{
    /* Before OpenSSL allocates anything. */
    if (!CRYPTO_set_mem_functions(o_malloc, o_realloc, o_free))
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_every_allocation_failure_is_an_error, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
