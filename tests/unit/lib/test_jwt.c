/* SPDX-License-Identifier: Apache-2.0 */
/*
 * JWT claims: one test per rejection rule of jwtd_verify (time claims with
 * their leeway boundaries, required claims, types, issuer, audience, sid),
 * the verifier's configuration limits, and the claim accessors.
 */
#include "testutil.h"

#include <stdlib.h>
#include <string.h>

#define NOW INT64_C(1700000000)
#define ISS "https://auth.example"
#define AUD "api"

static EVP_PKEY *g_pkey;
static jwtd_key *g_key;    /* signs */
static jwtd_keyset *g_set; /* verifies */
static jwtd_verifier *g_v;

static int setup(void **state)
{
    (void)state;
    g_pkey = tu_keygen(JWTD_ALG_ES256);
    if (jwtd__key_from_pkey(g_pkey, JWTD_ALG_ES256, "k1", &g_key) != JWTD_OK)
        return -1;
    g_set = tu_set1(g_key);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    jwtd_keyset_free(g_set);
    jwtd_key_free(g_key);
    EVP_PKEY_free(g_pkey);
    return 0;
}

/* A fresh verifier per test: issuer, audience, default leeway (5 s). */
static int per_test_setup(void **state)
{
    (void)state;
    if (jwtd_verifier_new(&g_v) != JWTD_OK || jwtd_verifier_set_issuer(g_v, ISS) != JWTD_OK
        || jwtd_verifier_set_audience(g_v, AUD) != JWTD_OK)
        return -1;
    return 0;
}

static int per_test_teardown(void **state)
{
    (void)state;
    jwtd_verifier_free(g_v);
    g_v = NULL;
    return 0;
}

static jwtd_err verify_at(const char *payload, int64_t now, jwtd_claims **ret)
{
    char *token = NULL;
    jwtd_claims *c = (jwtd_claims *)0x1;
    jwtd_err err;

    assert_int_equal(jwtd__sign_compact(g_key, payload, strlen(payload), &token), JWTD_OK);
    err = jwtd_verify(g_v, g_set, token, strlen(token), now, &c);
    free(token);
    if (err != JWTD_OK) {
        assert_ptr_equal(c, (jwtd_claims *)0x1); /* untouched on failure */
        c = NULL;
    }
    if (ret != NULL)
        *ret = c;
    else
        jwtd_claims_free(c);
    return err;
}

/* The claims of a valid token with `extra` members spliced in front (a
 * member given in extra replaces the default, which is then left out). */
static char *claims_with(const char *extra, bool exp, bool iss, bool aud, bool sub, bool sid)
{
    return tu_fmt("{%s%s%s%s%s%s%s\"iat\":%lld}", extra, extra[0] != '\0' ? "," : "",
                  exp ? "\"exp\":1700000300," : "", iss ? "\"iss\":\"" ISS "\"," : "",
                  aud ? "\"aud\":\"" AUD "\"," : "", sub ? "\"sub\":\"user-1\"," : "",
                  sid ? "\"sid\":\"s-1\"," : "", (long long)(NOW - 10));
}

static jwtd_err check(const char *extra, bool exp, bool iss, bool aud, bool sub, bool sid)
{
    char *p = claims_with(extra, exp, iss, aud, sub, sid);
    jwtd_err err = verify_at(p, NOW, NULL);

    free(p);
    return err;
}

/* All defaults, plus extra (which must not repeat a default member). */
static jwtd_err check_extra(const char *extra)
{
    return check(extra, true, true, true, true, true);
}

/* Defaults with exp replaced by `exp_json`. */
static jwtd_err check_exp(const char *exp_json, int64_t now)
{
    char *p = tu_fmt("{\"exp\":%s,\"iss\":\"" ISS "\",\"aud\":\"" AUD "\",\"sub\":\"u\",\"sid\":\"s\"}",
                     exp_json);
    jwtd_err err = verify_at(p, now, NULL);

    free(p);
    return err;
}

/* -------------------------------------------------------------- valid --- */

static void test_valid_token_and_accessors(void **state)
{
    const char *p = "{\"iss\":\"" ISS "\",\"sub\":\"user-1\",\"aud\":[\"other\",\"" AUD "\"],"
                    "\"exp\":1700000300,\"iat\":1699999990,\"nbf\":1699999990,\"sid\":\"s-1\","
                    "\"jti\":\"j-1\",\"preferred_username\":\"alice\",\"role\":\"admin\","
                    "\"n\":42,\"f\":1.5}";
    jwtd_claims *c = NULL;
    int64_t n = 0;
    char *json;

    (void)state;
    assert_int_equal(verify_at(p, NOW, &c), JWTD_OK);
    assert_string_equal(jwtd_claims_sub(c), "user-1");
    assert_string_equal(jwtd_claims_sid(c), "s-1");
    assert_string_equal(jwtd_claims_iss(c), ISS);
    assert_string_equal(jwtd_claims_jti(c), "j-1");
    assert_string_equal(jwtd_claims_username(c), "alice");
    assert_int_equal(jwtd_claims_exp(c), 1700000300);
    assert_int_equal(jwtd_claims_iat(c), 1699999990);
    assert_string_equal(jwtd_claims_kid(c), "k1");
    assert_int_equal(jwtd_claims_alg(c), JWTD_ALG_ES256);
    assert_string_equal(jwtd_claims_string(c, "role"), "admin");
    assert_null(jwtd_claims_string(c, "n"));
    assert_null(jwtd_claims_string(c, "missing"));
    assert_true(jwtd_claims_integer(c, "n", &n));
    assert_int_equal(n, 42);
    assert_false(jwtd_claims_integer(c, "f", &n));
    assert_false(jwtd_claims_integer(c, "role", &n));
    assert_false(jwtd_claims_integer(c, "missing", &n));
    json = jwtd_claims_json(c);
    assert_string_equal(json, p);
    free(json);
    jwtd_claims_free(c);
    jwtd_claims_free(NULL);
}

static void test_optional_claims_absent(void **state)
{
    jwtd_claims *c = NULL;
    const char *p = "{\"exp\":1700000300,\"iss\":\"" ISS "\",\"aud\":\"" AUD "\",\"sub\":\"u\","
                    "\"sid\":\"s\"}";

    (void)state;
    assert_int_equal(verify_at(p, NOW, &c), JWTD_OK);
    assert_null(jwtd_claims_jti(c));
    assert_null(jwtd_claims_username(c));
    assert_int_equal(jwtd_claims_iat(c), 0);
    jwtd_claims_free(c);
}

static void test_kid_accessor_without_kid_header(void **state)
{
    jwtd_key *nokid = NULL;
    jwtd_keyset *set;
    jwtd_claims *c = NULL;
    char *token = NULL;
    const char *p = "{\"exp\":1700000300,\"iss\":\"" ISS "\",\"aud\":\"" AUD "\",\"sub\":\"u\","
                    "\"sid\":\"s\"}";

    (void)state;
    assert_int_equal(jwtd__key_from_pkey(g_pkey, JWTD_ALG_ES256, "", &nokid), JWTD_OK);
    set = tu_set1(nokid);
    assert_int_equal(jwtd__sign_compact(nokid, p, strlen(p), &token), JWTD_OK);
    assert_int_equal(jwtd_verify(g_v, set, token, strlen(token), NOW, &c), JWTD_OK);
    assert_string_equal(jwtd_claims_kid(c), "");
    jwtd_claims_free(c);
    free(token);
    jwtd_keyset_free(set);
    jwtd_key_free(nokid);
}

/* --------------------------------------------------------- time rules --- */

static void test_expired(void **state)
{
    (void)state;
    assert_int_equal(check_exp("1699999000", NOW), JWTD_ERR_EXPIRED);
    assert_int_equal(check_exp("-1", NOW), JWTD_ERR_EXPIRED);
    assert_int_equal(check_exp("0", NOW), JWTD_ERR_EXPIRED);
}

static void test_expiry_boundary_with_leeway(void **state)
{
    (void)state;
    /* Leeway 5: expired exactly when exp + 5 <= now. */
    assert_int_equal(check_exp("1699999995", NOW), JWTD_ERR_EXPIRED); /* exp + 5 == now */
    assert_int_equal(check_exp("1699999996", NOW), JWTD_OK);
    assert_int_equal(jwtd_verifier_set_leeway(g_v, 0), JWTD_OK);
    assert_int_equal(check_exp("1700000000", NOW), JWTD_ERR_EXPIRED); /* exp == now */
    assert_int_equal(check_exp("1700000001", NOW), JWTD_OK);
    assert_int_equal(jwtd_verifier_set_leeway(g_v, 3600), JWTD_OK);
    assert_int_equal(check_exp("1699996400", NOW), JWTD_ERR_EXPIRED);
    assert_int_equal(check_exp("1699996401", NOW), JWTD_OK);
}

static void test_fractional_exp(void **state)
{
    jwtd_claims *c = NULL;
    char *p;

    (void)state;
    assert_int_equal(jwtd_verifier_set_leeway(g_v, 0), JWTD_OK);
    /* exp 1699999999.5 < now: expired; 1700000000.5 > now: valid. */
    assert_int_equal(check_exp("1699999999.5", NOW), JWTD_ERR_EXPIRED);
    assert_int_equal(check_exp("1700000000.0", NOW), JWTD_ERR_EXPIRED);
    p = tu_fmt("{\"exp\":1700000000.5,\"iss\":\"" ISS "\",\"aud\":\"" AUD "\",\"sub\":\"u\","
               "\"sid\":\"s\"}");
    assert_int_equal(verify_at(p, NOW, &c), JWTD_OK);
    assert_int_equal(jwtd_claims_exp(c), 1700000001); /* whole seconds, rounded up */
    jwtd_claims_free(c);
    free(p);
    assert_int_equal(check_exp("-0.5", 0), JWTD_ERR_EXPIRED);
    assert_int_equal(check_exp("0.5", 0), JWTD_OK);
}

static void test_extreme_exp_values(void **state)
{
    (void)state;
    /* No overflow anywhere (UBSan watches): huge values saturate. */
    assert_int_equal(check_exp("9223372036854775807", NOW), JWTD_OK);
    assert_int_equal(check_exp("-9223372036854775808", NOW), JWTD_ERR_EXPIRED);
    assert_int_equal(check_exp("1e300", NOW), JWTD_OK);
    assert_int_equal(check_exp("-1e300", NOW), JWTD_ERR_EXPIRED);
    assert_int_equal(check_exp("9223372036854775807", INT64_MAX), JWTD_OK);
    assert_int_equal(check_exp("1", INT64_MIN), JWTD_OK);
    /* Integers beyond int64 are not numbers jansson will carry: refused. */
    assert_int_equal(check_exp("92233720368547758070", NOW), JWTD_ERR_JSON);
}

static void test_nbf_in_future(void **state)
{
    (void)state;
    assert_int_equal(check_extra("\"nbf\":1700000006"), JWTD_ERR_NOT_YET_VALID);
    assert_int_equal(check_extra("\"nbf\":1700000005"), JWTD_OK); /* within the leeway */
    assert_int_equal(check_extra("\"nbf\":1700000000"), JWTD_OK);
    assert_int_equal(jwtd_verifier_set_leeway(g_v, 0), JWTD_OK);
    assert_int_equal(check_extra("\"nbf\":1700000001"), JWTD_ERR_NOT_YET_VALID);
    assert_int_equal(check_extra("\"nbf\":1700000000.5"), JWTD_ERR_NOT_YET_VALID);
}

static void test_iat_in_future(void **state)
{
    char *p;

    (void)state;
    p = tu_fmt("{\"iat\":1700000006,\"exp\":1700000300,\"iss\":\"" ISS "\",\"aud\":\"" AUD
               "\",\"sub\":\"u\",\"sid\":\"s\"}");
    assert_int_equal(verify_at(p, NOW, NULL), JWTD_ERR_ISSUED_IN_FUTURE);
    free(p);
    p = tu_fmt("{\"iat\":1700000005,\"exp\":1700000300,\"iss\":\"" ISS "\",\"aud\":\"" AUD
               "\",\"sub\":\"u\",\"sid\":\"s\"}");
    assert_int_equal(verify_at(p, NOW, NULL), JWTD_OK);
    free(p);
}

/* ----------------------------------------------------- required claims --- */

static void test_missing_exp(void **state)
{
    (void)state;
    assert_int_equal(check("", false, true, true, true, true), JWTD_ERR_MISSING_CLAIM);
}

static void test_missing_iss(void **state)
{
    (void)state;
    assert_int_equal(check("", true, false, true, true, true), JWTD_ERR_MISSING_CLAIM);
}

static void test_missing_aud(void **state)
{
    (void)state;
    assert_int_equal(check("", true, true, false, true, true), JWTD_ERR_MISSING_CLAIM);
}

static void test_missing_sub(void **state)
{
    (void)state;
    assert_int_equal(check("", true, true, true, false, true), JWTD_ERR_MISSING_CLAIM);
}

static void test_empty_sub(void **state)
{
    (void)state;
    assert_int_equal(check("\"sub\":\"\"", true, true, true, false, true), JWTD_ERR_MISSING_CLAIM);
}

static void test_missing_sid(void **state)
{
    (void)state;
    assert_int_equal(check("", true, true, true, true, false), JWTD_ERR_MISSING_CLAIM);
    assert_int_equal(check("\"sid\":\"\"", true, true, true, true, false), JWTD_ERR_MISSING_CLAIM);
}

static void test_require_sid_false(void **state)
{
    jwtd_claims *c = NULL;
    char *p = claims_with("", true, true, true, true, false);

    (void)state;
    jwtd_verifier_require_sid(g_v, false);
    assert_int_equal(verify_at(p, NOW, &c), JWTD_OK);
    assert_null(jwtd_claims_sid(c));
    jwtd_claims_free(c);
    free(p);
    /* A present sid is still type-checked. */
    assert_int_equal(check("\"sid\":5", true, true, true, true, false), JWTD_ERR_CLAIM_TYPE);
    jwtd_verifier_require_sid(g_v, true);
    assert_int_equal(check("", true, true, true, true, false), JWTD_ERR_MISSING_CLAIM);
}

/* ------------------------------------------------------ issuer, aud ---- */

static void test_wrong_iss(void **state)
{
    (void)state;
    assert_int_equal(check("\"iss\":\"https://evil.example\"", true, false, true, true, true),
                     JWTD_ERR_ISSUER);
    assert_int_equal(check("\"iss\":\"" ISS "/\"", true, false, true, true, true), JWTD_ERR_ISSUER);
    assert_int_equal(check("\"iss\":\"https://auth.exampl\"", true, false, true, true, true),
                     JWTD_ERR_ISSUER);
    assert_int_equal(check("\"iss\":\"HTTPS://AUTH.EXAMPLE\"", true, false, true, true, true),
                     JWTD_ERR_ISSUER);
    assert_int_equal(check("\"iss\":\"\"", true, false, true, true, true), JWTD_ERR_ISSUER);
}

static void test_wrong_aud(void **state)
{
    (void)state;
    assert_int_equal(check("\"aud\":\"other\"", true, true, false, true, true), JWTD_ERR_AUDIENCE);
    assert_int_equal(check("\"aud\":\"ap\"", true, true, false, true, true), JWTD_ERR_AUDIENCE);
    assert_int_equal(check("\"aud\":\"api \"", true, true, false, true, true), JWTD_ERR_AUDIENCE);
}

static void test_aud_array_containing(void **state)
{
    (void)state;
    assert_int_equal(check("\"aud\":[\"x\",\"api\",\"y\"]", true, true, false, true, true), JWTD_OK);
    assert_int_equal(check("\"aud\":[\"api\"]", true, true, false, true, true), JWTD_OK);
}

static void test_aud_array_not_containing(void **state)
{
    (void)state;
    assert_int_equal(check("\"aud\":[\"x\",\"y\"]", true, true, false, true, true),
                     JWTD_ERR_AUDIENCE);
    assert_int_equal(check("\"aud\":[]", true, true, false, true, true), JWTD_ERR_AUDIENCE);
    assert_int_equal(check("\"aud\":[[\"api\"]]", true, true, false, true, true),
                     JWTD_ERR_CLAIM_TYPE);
}

static void test_aud_array_with_non_string(void **state)
{
    (void)state;
    assert_int_equal(check("\"aud\":[\"api\",1]", true, true, false, true, true),
                     JWTD_ERR_CLAIM_TYPE);
    assert_int_equal(check("\"aud\":[null,\"api\"]", true, true, false, true, true),
                     JWTD_ERR_CLAIM_TYPE);
}

/* ------------------------------------------------------------- types --- */

static void test_string_exp(void **state)
{
    (void)state;
    assert_int_equal(check_exp("\"1700000300\"", NOW), JWTD_ERR_CLAIM_TYPE);
}

static void test_non_numeric_exp(void **state)
{
    (void)state;
    assert_int_equal(check_exp("true", NOW), JWTD_ERR_CLAIM_TYPE);
    assert_int_equal(check_exp("null", NOW), JWTD_ERR_CLAIM_TYPE);
    assert_int_equal(check_exp("[1700000300]", NOW), JWTD_ERR_CLAIM_TYPE);
    assert_int_equal(check_exp("{}", NOW), JWTD_ERR_CLAIM_TYPE);
}

static void test_non_numeric_nbf_iat(void **state)
{
    (void)state;
    assert_int_equal(check_extra("\"nbf\":\"0\""), JWTD_ERR_CLAIM_TYPE);
    assert_int_equal(check_extra("\"nbf\":false"), JWTD_ERR_CLAIM_TYPE);
    {
        char *p = tu_fmt("{\"iat\":\"1\",\"exp\":1700000300,\"iss\":\"" ISS "\",\"aud\":\"" AUD
                         "\",\"sub\":\"u\",\"sid\":\"s\"}");
        assert_int_equal(verify_at(p, NOW, NULL), JWTD_ERR_CLAIM_TYPE);
        free(p);
    }
}

static void test_array_sub(void **state)
{
    (void)state;
    assert_int_equal(check("\"sub\":[\"user-1\"]", true, true, true, false, true),
                     JWTD_ERR_CLAIM_TYPE);
    assert_int_equal(check("\"sub\":1", true, true, true, false, true), JWTD_ERR_CLAIM_TYPE);
    assert_int_equal(check("\"sub\":null", true, true, true, false, true), JWTD_ERR_CLAIM_TYPE);
}

static void test_wrong_types_of_string_claims(void **state)
{
    (void)state;
    assert_int_equal(check("\"iss\":1", true, false, true, true, true), JWTD_ERR_CLAIM_TYPE);
    assert_int_equal(check("\"aud\":1", true, true, false, true, true), JWTD_ERR_CLAIM_TYPE);
    assert_int_equal(check("\"aud\":{\"api\":1}", true, true, false, true, true),
                     JWTD_ERR_CLAIM_TYPE);
    assert_int_equal(check("\"sid\":[\"s\"]", true, true, true, true, false), JWTD_ERR_CLAIM_TYPE);
    assert_int_equal(check_extra("\"jti\":7"), JWTD_ERR_CLAIM_TYPE);
    assert_int_equal(check_extra("\"preferred_username\":[\"a\"]"), JWTD_ERR_CLAIM_TYPE);
}

static void test_duplicate_keys_in_payload(void **state)
{
    (void)state;
    /* Two parsers, two subjects: refused. */
    assert_int_equal(check("\"sub\":\"admin\"", true, true, true, true, true), JWTD_ERR_JSON);
    assert_int_equal(check("\"exp\":1", true, true, true, true, true), JWTD_ERR_JSON);
}

static void test_payload_not_a_json_object(void **state)
{
    (void)state;
    assert_int_equal(verify_at("[]", NOW, NULL), JWTD_ERR_JSON);
    assert_int_equal(verify_at("\"x\"", NOW, NULL), JWTD_ERR_JSON);
    assert_int_equal(verify_at("{\"exp\":", NOW, NULL), JWTD_ERR_JSON);
    assert_int_equal(verify_at("", NOW, NULL), JWTD_ERR_JSON);
}

static void test_signature_checked_before_claims(void **state)
{
    char *token = NULL, *bad;
    uint8_t zero[64] = {0};
    jwtd_claims *c = NULL;

    (void)state;
    /* An expired token with a broken signature reports the signature:
     * nothing in the payload is read before it verifies. */
    assert_int_equal(jwtd__sign_compact(g_key, "{\"exp\":1}", 9, &token), JWTD_OK);
    bad = tu_with_sig(token, zero, sizeof(zero));
    assert_int_equal(jwtd_verify(g_v, g_set, bad, strlen(bad), NOW, &c), JWTD_ERR_SIGNATURE);
    free(bad);
    free(token);
}

/* ----------------------------------------------------------- verifier --- */

static void test_verifier_without_issuer_or_audience(void **state)
{
    jwtd_verifier *v = NULL;
    jwtd_claims *c = NULL;
    char *token = NULL;
    char *p = claims_with("", true, true, true, true, true);

    (void)state;
    assert_int_equal(jwtd__sign_compact(g_key, p, strlen(p), &token), JWTD_OK);
    assert_int_equal(jwtd_verifier_new(&v), JWTD_OK);
    assert_int_equal(jwtd_verify(v, g_set, token, strlen(token), NOW, &c), JWTD_ERR_INVALID_ARG);
    assert_int_equal(jwtd_verifier_set_issuer(v, ISS), JWTD_OK);
    assert_int_equal(jwtd_verify(v, g_set, token, strlen(token), NOW, &c), JWTD_ERR_INVALID_ARG);
    jwtd_verifier_free(v);
    assert_int_equal(jwtd_verifier_new(&v), JWTD_OK);
    assert_int_equal(jwtd_verifier_set_audience(v, AUD), JWTD_OK);
    assert_int_equal(jwtd_verify(v, g_set, token, strlen(token), NOW, &c), JWTD_ERR_INVALID_ARG);
    assert_int_equal(jwtd_verifier_set_issuer(v, ISS), JWTD_OK);
    assert_int_equal(jwtd_verify(v, g_set, token, strlen(token), NOW, &c), JWTD_OK);
    jwtd_claims_free(c);
    jwtd_verifier_free(v);
    jwtd_verifier_free(NULL);
    assert_int_equal(jwtd_verify(NULL, g_set, token, strlen(token), NOW, &c), JWTD_ERR_INVALID_ARG);
    assert_int_equal(jwtd_verify(g_v, NULL, token, strlen(token), NOW, &c), JWTD_ERR_INVALID_ARG);
    free(token);
    free(p);
}

static void test_verifier_configuration_limits(void **state)
{
    (void)state;
    assert_int_equal(jwtd_verifier_set_leeway(g_v, -1), JWTD_ERR_INVALID_ARG);
    assert_int_equal(jwtd_verifier_set_leeway(g_v, 3601), JWTD_ERR_INVALID_ARG);
    assert_int_equal(jwtd_verifier_set_leeway(g_v, 0), JWTD_OK);
    assert_int_equal(jwtd_verifier_set_leeway(g_v, 3600), JWTD_OK);
    assert_int_equal(jwtd_verifier_set_algs(g_v, 0), JWTD_ERR_INVALID_ARG);
    assert_int_equal(jwtd_verifier_set_algs(g_v, 1u << 9), JWTD_ERR_INVALID_ARG);
    assert_int_equal(jwtd_verifier_set_issuer(g_v, NULL), JWTD_ERR_INVALID_ARG);
    assert_int_equal(jwtd_verifier_set_issuer(g_v, ""), JWTD_ERR_INVALID_ARG);
    assert_int_equal(jwtd_verifier_set_audience(g_v, ""), JWTD_ERR_INVALID_ARG);
    assert_int_equal(jwtd_verifier_set_issuer(NULL, ISS), JWTD_ERR_INVALID_ARG);
    jwtd_verifier_require_sid(NULL, false);
    /* Replacing the issuer takes effect. */
    assert_int_equal(jwtd_verifier_set_issuer(g_v, "https://other.example"), JWTD_OK);
    assert_int_equal(check_extra(""), JWTD_ERR_ISSUER);
}

static void test_verifier_algs_default_excludes_hs256(void **state)
{
    uint8_t secret[32] = {4};
    jwtd_key *hkey = NULL;
    jwtd_keyset *hset;
    jwtd_claims *c = NULL;
    char *token = NULL, *p = claims_with("", true, true, true, true, true);

    (void)state;
    assert_int_equal(jwtd_key_new_hmac("h", secret, sizeof(secret), &hkey), JWTD_OK);
    hset = tu_set1(hkey);
    assert_int_equal(jwtd__sign_compact(hkey, p, strlen(p), &token), JWTD_OK);
    assert_int_equal(jwtd_verify(g_v, hset, token, strlen(token), NOW, &c), JWTD_ERR_ALG);
    assert_int_equal(jwtd_verifier_set_algs(g_v, JWTD_ALG_HS256), JWTD_OK);
    assert_int_equal(jwtd_verify(g_v, hset, token, strlen(token), NOW, &c), JWTD_OK);
    assert_int_equal(jwtd_claims_alg(c), JWTD_ALG_HS256);
    jwtd_claims_free(c);
    /* And now ES256 tokens are outside the set. */
    assert_int_equal(check_extra(""), JWTD_ERR_ALG);
    free(token);
    free(p);
    jwtd_keyset_free(hset);
    jwtd_key_free(hkey);
}

#define T(f) cmocka_unit_test_setup_teardown(f, per_test_setup, per_test_teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_valid_token_and_accessors),
        T(test_optional_claims_absent),
        T(test_kid_accessor_without_kid_header),
        T(test_expired),
        T(test_expiry_boundary_with_leeway),
        T(test_fractional_exp),
        T(test_extreme_exp_values),
        T(test_nbf_in_future),
        T(test_iat_in_future),
        T(test_missing_exp),
        T(test_missing_iss),
        T(test_missing_aud),
        T(test_missing_sub),
        T(test_empty_sub),
        T(test_missing_sid),
        T(test_require_sid_false),
        T(test_wrong_iss),
        T(test_wrong_aud),
        T(test_aud_array_containing),
        T(test_aud_array_not_containing),
        T(test_aud_array_with_non_string),
        T(test_string_exp),
        T(test_non_numeric_exp),
        T(test_non_numeric_nbf_iat),
        T(test_array_sub),
        T(test_wrong_types_of_string_claims),
        T(test_duplicate_keys_in_payload),
        T(test_payload_not_a_json_object),
        T(test_signature_checked_before_claims),
        T(test_verifier_without_issuer_or_audience),
        T(test_verifier_configuration_limits),
        T(test_verifier_algs_default_excludes_hs256),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
