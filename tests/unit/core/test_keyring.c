/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The key ring (src/core/keyring.c) on a real SQLite store in a fresh
 * temporary directory: the first start generates an ES256 current key; a
 * token signed by the ring verifies through it, and also independently -
 * the JWKS key read here with jansson, its kid recomputed as the RFC 7638
 * thumbprint, the ES256 (RFC 7518 §3.4) or EdDSA (RFC 8037) signature
 * checked with OpenSSL directly - and the JWKS never carries a private
 * member. The life cycle: a rotation that publishes a next key ahead (in
 * the JWKS, not signing), an immediate one (signing moves, the old key
 * stays published until removed), retiring (the current key only with a
 * next key to take over; --purge distrusts a key at once, also for another
 * instance after its reload), the periodic duty (a due next key promoted,
 * an automatic rotation prepared and carried out, expired retired keys
 * removed), a change of JWTD_JWT_ALG (the old algorithm's keys retired but
 * still published, signing with the new one), and HS256 (a secret of at
 * least 32 bytes, an empty JWKS, an HMAC checked independently).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "../unit_util.h"

#include <dirent.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/param_build.h>
#include <openssl/sha.h>

#include "jwtd.h"
#include "base/log.h"
#include "base/util.h"
#include "core/config.h"
#include "core/keyring.h"
#include "store/store.h"

static const char ISS[] = "https://issuer.test";
static const char AUD[] = "aud.test";
static const char SID[] = "017f22e2-79b0-7cc3-98c4-dc0c0c07398f";

struct fx {
    char dir[256];
    struct store *store;
    struct config cfg;
    struct keyring *kr;
    jwtd_verifier *v;
};

static void set(struct config *cfg, const char *name, const char *value)
{
    char err[256] = "";
    if (!config_set(cfg, name, value, err, sizeof err))
        fail_msg("config_set %s=%s: %s", name, value, err);
}

static jwtd_verifier *verifier(unsigned algs)
{
    jwtd_verifier *v = NULL;
    assert_int_equal(jwtd_verifier_new(&v), JWTD_OK);
    assert_int_equal(jwtd_verifier_set_algs(v, algs), JWTD_OK);
    assert_int_equal(jwtd_verifier_set_issuer(v, ISS), JWTD_OK);
    assert_int_equal(jwtd_verifier_set_audience(v, AUD), JWTD_OK);
    return v;
}

static int fx_setup(void **state)
{
    struct fx *f = calloc(1, sizeof *f);
    assert_non_null(f);
    unit_tmpdir(f->dir, sizeof f->dir, "keyring");
    char url[400], err[256] = "";
    snprintf(url, sizeof url, "sqlite:%s/jwtd.db", f->dir);
    struct store_options opt = {.sqlite_sync_full = false};
    if (store_open(url, &opt, &f->store, err, sizeof err) != STORE_OK)
        fail_msg("store_open: %s", err);
    assert_int_equal(store_migrate(f->store), STORE_OK);
    config_defaults(&f->cfg); /* ES256, access 15 min, leeway 5 s */
    f->kr = keyring_new(&f->cfg, f->store);
    assert_non_null(f->kr);
    f->v = verifier(JWTD_ALGS_ASYMMETRIC);
    *state = f;
    return 0;
}

static int fx_teardown(void **state)
{
    struct fx *f = *state;
    keyring_free(f->kr);
    jwtd_verifier_free(f->v);
    store_close(f->store);
    config_free(&f->cfg);
    unit_rm_dir(f->dir);
    free(f);
    return 0;
}

static void start(struct keyring *kr)
{
    char err[256] = "";
    if (!keyring_start(kr, err, sizeof err))
        fail_msg("keyring_start: %s", err);
}

/* ---- independent JOSE helpers (jansson, OpenSSL; no libjwtd) ---- */

static const char B64URL[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static size_t b64url_decode(const char *in, size_t n, uint8_t *out, size_t cap)
{
    size_t o = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < n; i++) {
        const char *p = memchr(B64URL, in[i], 64);
        assert_non_null(p);
        acc = acc << 6 | (uint32_t)(p - B64URL);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            assert_true(o < cap);
            out[o++] = (uint8_t)(acc >> bits);
        }
    }
    return o;
}

static void b64url_encode(const uint8_t *in, size_t n, char *out)
{
    size_t o = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < n; i++) {
        acc = acc << 8 | in[i];
        bits += 8;
        while (bits >= 6) {
            bits -= 6;
            out[o++] = B64URL[(acc >> bits) & 63];
        }
    }
    if (bits > 0)
        out[o++] = B64URL[(acc << (6 - bits)) & 63];
    out[o] = '\0';
}

/* The three segments of a compact JWS. */
struct jws_parts {
    const char *h, *p, *s;
    size_t hlen, plen, slen;
};

static struct jws_parts split(const char *jws)
{
    struct jws_parts j;
    const char *d1 = strchr(jws, '.');
    assert_non_null(d1);
    const char *d2 = strchr(d1 + 1, '.');
    assert_non_null(d2);
    assert_null(strchr(d2 + 1, '.'));
    j.h = jws;
    j.hlen = (size_t)(d1 - jws);
    j.p = d1 + 1;
    j.plen = (size_t)(d2 - d1 - 1);
    j.s = d2 + 1;
    j.slen = strlen(d2 + 1);
    return j;
}

/* The protected header of a token, as JSON. */
static json_t *jws_header(const char *jws)
{
    struct jws_parts j = split(jws);
    uint8_t buf[512];
    size_t n = b64url_decode(j.h, j.hlen, buf, sizeof buf);
    json_t *h = json_loadb((const char *)buf, n, 0, NULL);
    assert_non_null(h);
    return h;
}

/* The kid and alg of a token's header (copied). */
static void header_of(const char *jws, char kid[KID_MAX + 1], char alg[16])
{
    json_t *h = jws_header(jws);
    const char *k = json_string_value(json_object_get(h, "kid"));
    const char *a = json_string_value(json_object_get(h, "alg"));
    assert_non_null(k);
    assert_non_null(a);
    snprintf(kid, KID_MAX + 1, "%s", k);
    snprintf(alg, 16, "%s", a);
    json_decref(h);
}

/* RFC 7638 §3: SHA-256 of the required members in lexicographic order,
 * no white space. */
static void thumbprint(const json_t *jwk, char out[64])
{
    const char *kty = json_string_value(json_object_get(jwk, "kty"));
    assert_non_null(kty);
    char canon[1024];
    if (strcmp(kty, "EC") == 0)
        snprintf(canon, sizeof canon, "{\"crv\":\"%s\",\"kty\":\"EC\",\"x\":\"%s\",\"y\":\"%s\"}",
                 json_string_value(json_object_get(jwk, "crv")),
                 json_string_value(json_object_get(jwk, "x")),
                 json_string_value(json_object_get(jwk, "y")));
    else if (strcmp(kty, "OKP") == 0)
        snprintf(canon, sizeof canon, "{\"crv\":\"%s\",\"kty\":\"OKP\",\"x\":\"%s\"}",
                 json_string_value(json_object_get(jwk, "crv")),
                 json_string_value(json_object_get(jwk, "x")));
    else
        fail_msg("unexpected kty %s", kty);
    uint8_t md[SHA256_DIGEST_LENGTH];
    SHA256((const uint8_t *)canon, strlen(canon), md);
    b64url_encode(md, sizeof md, out);
}

/* The JWKS of the ring, checked: every key public only, use "sig", kid
 * the thumbprint. Returns the parsed "keys" array (json_decref the doc). */
static json_t *jwks_checked(struct keyring *kr, json_t **ret_doc)
{
    size_t len = 0;
    char *text = keyring_jwks(kr, &len);
    assert_non_null(text);
    assert_int_equal(strlen(text), len);
    json_t *doc = json_loadb(text, len, JSON_REJECT_DUPLICATES, NULL);
    free(text);
    assert_non_null(doc);
    json_t *keys = json_object_get(doc, "keys");
    assert_true(json_is_array(keys));
    size_t i;
    json_t *k;
    json_array_foreach(keys, i, k) {
        /* RFC 7518 §6.2.2 / §6.3.2, RFC 8037 §2: private members. */
        static const char *priv[] = {"d", "p", "q", "dp", "dq", "qi", "oth", "k"};
        for (size_t m = 0; m < sizeof priv / sizeof priv[0]; m++)
            if (json_object_get(k, priv[m]))
                fail_msg("JWKS key has private member %s", priv[m]);
        assert_string_equal(json_string_value(json_object_get(k, "use")), "sig");
        char tp[64];
        thumbprint(k, tp);
        assert_string_equal(json_string_value(json_object_get(k, "kid")), tp);
    }
    *ret_doc = doc;
    return keys;
}

/* The JWK with that kid in the ring's JWKS (a new reference), or NULL. */
static json_t *jwks_find(struct keyring *kr, const char *kid)
{
    json_t *doc;
    json_t *keys = jwks_checked(kr, &doc);
    json_t *found = NULL;
    size_t i;
    json_t *k;
    json_array_foreach(keys, i, k) {
        if (strcmp(json_string_value(json_object_get(k, "kid")), kid) == 0)
            found = json_incref(k);
    }
    json_decref(doc);
    return found;
}

static size_t jwks_count(struct keyring *kr)
{
    json_t *doc;
    size_t n = json_array_size(jwks_checked(kr, &doc));
    json_decref(doc);
    return n;
}

static bool jwks_has(struct keyring *kr, const char *kid)
{
    json_t *k = jwks_find(kr, kid);
    json_decref(k);
    return k != NULL;
}

/* Check a token's signature with the public key of jwk, using OpenSSL
 * directly: ES256 as r||s (RFC 7518 §3.4), EdDSA over Ed25519. */
static bool independent_verify(const json_t *jwk, const char *jws)
{
    struct jws_parts j = split(jws);
    uint8_t sig[128];
    size_t slen = b64url_decode(j.s, j.slen, sig, sizeof sig);
    const char *kty = json_string_value(json_object_get(jwk, "kty"));
    EVP_PKEY *pkey = NULL;
    uint8_t der[80];
    const uint8_t *to_verify = sig;
    size_t to_verify_len = slen;
    const EVP_MD *md = NULL;
    if (strcmp(kty, "EC") == 0) {
        assert_string_equal(json_string_value(json_object_get(jwk, "crv")), "P-256");
        assert_string_equal(json_string_value(json_object_get(jwk, "alg")), "ES256");
        uint8_t pub[65];
        pub[0] = 0x04;
        const char *x = json_string_value(json_object_get(jwk, "x"));
        const char *y = json_string_value(json_object_get(jwk, "y"));
        assert_int_equal(b64url_decode(x, strlen(x), pub + 1, 32), 32);
        assert_int_equal(b64url_decode(y, strlen(y), pub + 33, 32), 32);
        OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
        assert_non_null(bld);
        assert_int_equal(OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME,
                                                         "prime256v1", 0),
                         1);
        assert_int_equal(
            OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, pub, sizeof pub), 1);
        OSSL_PARAM *params = OSSL_PARAM_BLD_to_param(bld);
        EVP_PKEY_CTX *pc = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
        assert_non_null(pc);
        assert_int_equal(EVP_PKEY_fromdata_init(pc), 1);
        assert_int_equal(EVP_PKEY_fromdata(pc, &pkey, EVP_PKEY_PUBLIC_KEY, params), 1);
        EVP_PKEY_CTX_free(pc);
        OSSL_PARAM_free(params);
        OSSL_PARAM_BLD_free(bld);
        /* r||s, 32 bytes each, to DER. */
        if (slen != 64) {
            EVP_PKEY_free(pkey);
            return false;
        }
        ECDSA_SIG *es = ECDSA_SIG_new();
        assert_non_null(es);
        BIGNUM *r = BN_bin2bn(sig, 32, NULL), *s = BN_bin2bn(sig + 32, 32, NULL);
        assert_true(r && s);
        assert_int_equal(ECDSA_SIG_set0(es, r, s), 1);
        unsigned char *dp = der;
        int dl = i2d_ECDSA_SIG(es, &dp);
        ECDSA_SIG_free(es);
        assert_true(dl > 0 && (size_t)dl <= sizeof der);
        to_verify = der;
        to_verify_len = (size_t)dl;
        md = EVP_sha256();
    } else if (strcmp(kty, "OKP") == 0) {
        assert_string_equal(json_string_value(json_object_get(jwk, "crv")), "Ed25519");
        uint8_t pub[32];
        const char *x = json_string_value(json_object_get(jwk, "x"));
        assert_int_equal(b64url_decode(x, strlen(x), pub, sizeof pub), 32);
        pkey = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, pub, sizeof pub);
        assert_non_null(pkey);
    } else {
        fail_msg("unexpected kty %s", kty);
    }
    EVP_MD_CTX *mc = EVP_MD_CTX_new();
    assert_non_null(mc);
    assert_int_equal(EVP_DigestVerifyInit(mc, NULL, md, NULL, pkey), 1);
    int rc = EVP_DigestVerify(mc, to_verify, to_verify_len, (const uint8_t *)jws,
                              j.hlen + 1 + j.plen);
    EVP_MD_CTX_free(mc);
    EVP_PKEY_free(pkey);
    return rc == 1;
}

/* ---- ring helpers ---- */

static char *sign(struct keyring *kr, const char *sub)
{
    int64_t now = util_now();
    char payload[512];
    snprintf(payload, sizeof payload,
             "{\"iss\":\"%s\",\"sub\":\"%s\",\"aud\":\"%s\",\"exp\":%lld,\"iat\":%lld,"
             "\"sid\":\"%s\"}",
             ISS, sub, AUD, (long long)(now + 600), (long long)now, SID);
    char *tok = NULL;
    assert_int_equal(keyring_sign(kr, payload, strlen(payload), &tok), JWTD_OK);
    assert_non_null(tok);
    return tok;
}

static jwtd_err verify(struct keyring *kr, const jwtd_verifier *v, const char *tok,
                       const char *want_sub)
{
    jwtd_claims *c = NULL;
    uint64_t gen = 0;
    jwtd_err e = keyring_verify(kr, v, tok, strlen(tok), util_now(), &c, &gen);
    if (e == JWTD_OK) {
        assert_non_null(c);
        assert_string_equal(jwtd_claims_sub(c), want_sub);
        assert_int_equal(gen, keyring_generation(kr));
    } else {
        assert_null(c);
    }
    jwtd_claims_free(c);
    return e;
}

static char *token_kid(const char *tok)
{
    static char kid[KID_MAX + 1];
    char alg[16];
    header_of(tok, kid, alg);
    return kid;
}

/* The rows of the keys table. */
struct rows {
    size_t n;
    struct store_key k[16];
};

static void collect(void *ctx, const struct store_key *k)
{
    struct rows *r = ctx;
    assert_true(r->n < 16);
    r->k[r->n] = *k;
    r->k[r->n].private_pem = NULL;
    r->n++;
}

static struct rows rows_of(struct store *s)
{
    struct rows r = {0};
    assert_int_equal(store_keys_list(s, collect, &r), STORE_OK);
    return r;
}

static const struct store_key *row(const struct rows *r, const char *kid)
{
    for (size_t i = 0; i < r->n; i++)
        if (strcmp(r->k[i].kid, kid) == 0)
            return &r->k[i];
    return NULL;
}

/* ------------------------------------------------------------ tests --- */

static void test_es256_start_sign_verify(void **state)
{
    struct fx *f = *state;
    assert_false(keyring_ready(f->kr));
    start(f->kr);
    assert_true(keyring_ready(f->kr));
    assert_int_equal(keyring_algs(f->kr), JWTD_ALG_ES256);

    struct rows r = rows_of(f->store);
    assert_int_equal(r.n, 1);
    assert_string_equal(r.k[0].alg, "ES256");
    assert_int_equal(r.k[0].state, KEY_CURRENT);
    assert_int_equal(r.k[0].remove_at, 0);

    /* The JWKS publishes exactly that key, public part only. */
    assert_int_equal(jwks_count(f->kr), 1);
    json_t *jwk = jwks_find(f->kr, r.k[0].kid);
    assert_non_null(jwk);
    assert_string_equal(json_string_value(json_object_get(jwk, "kty")), "EC");
    assert_string_equal(json_string_value(json_object_get(jwk, "crv")), "P-256");
    assert_string_equal(json_string_value(json_object_get(jwk, "alg")), "ES256");

    char *tok = sign(f->kr, "user-1");
    char kid[KID_MAX + 1], alg[16];
    header_of(tok, kid, alg);
    assert_string_equal(kid, r.k[0].kid);
    assert_string_equal(alg, "ES256");
    assert_int_equal(verify(f->kr, f->v, tok, "user-1"), JWTD_OK);
    assert_true(independent_verify(jwk, tok));

    /* One changed bit of the payload or the signature: refused, both ways. */
    char *bad = strdup(tok);
    assert_non_null(bad);
    struct jws_parts j = split(bad);
    char *pc = (char *)j.p + 3;
    *pc = *pc == 'A' ? 'B' : 'A';
    assert_int_equal(verify(f->kr, f->v, bad, "user-1"), JWTD_ERR_SIGNATURE);
    assert_false(independent_verify(jwk, bad));
    free(bad);
    bad = strdup(tok);
    assert_non_null(bad);
    j = split(bad);
    char *sc = (char *)j.s + 10;
    *sc = *sc == 'A' ? 'B' : 'A';
    assert_int_equal(verify(f->kr, f->v, bad, "user-1"), JWTD_ERR_SIGNATURE);
    assert_false(independent_verify(jwk, bad));
    free(bad);

    /* A start on a ring that has its key keeps it. */
    start(f->kr);
    assert_int_equal(rows_of(f->store).n, 1);
    assert_int_equal(verify(f->kr, f->v, tok, "user-1"), JWTD_OK);
    json_decref(jwk);
    free(tok);
}

static void test_second_instance_shares_the_ring(void **state)
{
    struct fx *f = *state;
    start(f->kr);
    char *tok = sign(f->kr, "user-2");
    /* Another instance on the same storage: no new key, same JWKS. */
    struct keyring *other = keyring_new(&f->cfg, f->store);
    assert_non_null(other);
    start(other);
    assert_int_equal(rows_of(f->store).n, 1);
    assert_int_equal(verify(other, f->v, tok, "user-2"), JWTD_OK);
    char *tok2 = sign(other, "user-3");
    assert_string_equal(token_kid(tok2), rows_of(f->store).k[0].kid);
    assert_int_equal(verify(f->kr, f->v, tok2, "user-3"), JWTD_OK);
    /* A rotation made by one reaches the other at its reload. */
    char kid[KID_MAX + 1], err[256] = "";
    assert_true(keyring_rotate(f->kr, true, kid, err, sizeof err));
    assert_false(jwks_has(other, kid));
    uint64_t g = keyring_generation(other);
    assert_true(keyring_reload(other));
    assert_true(keyring_generation(other) != g);
    assert_true(jwks_has(other, kid));
    char *tok3 = sign(other, "user-4");
    assert_string_equal(token_kid(tok3), kid);
    /* A reload that finds nothing new keeps the generation (caches). */
    g = keyring_generation(other);
    assert_true(keyring_reload(other));
    assert_int_equal(keyring_generation(other), g);
    keyring_free(other);
    free(tok);
    free(tok2);
    free(tok3);
}

static void test_rotate_publishes_ahead(void **state)
{
    struct fx *f = *state;
    start(f->kr);
    char old_kid[KID_MAX + 1];
    snprintf(old_kid, sizeof old_kid, "%s", rows_of(f->store).k[0].kid);
    uint64_t g = keyring_generation(f->kr);
    int64_t now = util_now();

    char next[KID_MAX + 1], err[256] = "";
    assert_true(keyring_rotate(f->kr, false, next, err, sizeof err));
    assert_string_not_equal(next, old_kid);
    assert_true(keyring_generation(f->kr) != g);
    /* Published (verifiers can fetch it before it signs), not signing. */
    assert_int_equal(jwks_count(f->kr), 2);
    assert_true(jwks_has(f->kr, next));
    assert_true(jwks_has(f->kr, old_kid));
    char *tok = sign(f->kr, "user-5");
    assert_string_equal(token_kid(tok), old_kid);
    assert_int_equal(verify(f->kr, f->v, tok, "user-5"), JWTD_OK);
    struct rows r = rows_of(f->store);
    assert_int_equal(r.n, 2);
    assert_int_equal(row(&r, next)->state, KEY_NEXT);
    assert_int_equal(row(&r, old_kid)->state, KEY_CURRENT);
    /* Due after JWTD_KEY_PUBLISH_AHEAD (default 1 h). */
    int64_t due = row(&r, next)->activate_at;
    assert_true(due >= now + 3600 && due <= util_now() + 3600);

    /* A second rotation reuses the pending next key. */
    char again[KID_MAX + 1];
    assert_true(keyring_rotate(f->kr, false, again, err, sizeof err));
    assert_string_equal(again, next);
    assert_int_equal(rows_of(f->store).n, 2);
    /* The periodic duty leaves it alone until it is due... */
    keyring_maintain(f->kr, util_now());
    char *tok2 = sign(f->kr, "user-6");
    assert_string_equal(token_kid(tok2), old_kid);
    /* ...and promotes it when it is. */
    keyring_maintain(f->kr, due);
    char *tok3 = sign(f->kr, "user-7");
    assert_string_equal(token_kid(tok3), next);
    assert_int_equal(verify(f->kr, f->v, tok, "user-5"), JWTD_OK);
    free(tok);
    free(tok2);
    free(tok3);
}

static void test_rotate_immediate_then_removed(void **state)
{
    struct fx *f = *state;
    start(f->kr);
    char old_kid[KID_MAX + 1];
    snprintf(old_kid, sizeof old_kid, "%s", rows_of(f->store).k[0].kid);
    char *before = sign(f->kr, "user-8");
    json_t *old_jwk = jwks_find(f->kr, old_kid);
    assert_non_null(old_jwk);

    char kid[KID_MAX + 1], err[256] = "";
    int64_t t0 = util_now();
    assert_true(keyring_rotate(f->kr, true, kid, err, sizeof err));
    assert_string_not_equal(kid, old_kid);
    char *after = sign(f->kr, "user-9");
    assert_string_equal(token_kid(after), kid);
    json_t *new_jwk = jwks_find(f->kr, kid);
    assert_non_null(new_jwk);
    assert_true(independent_verify(new_jwk, after));
    assert_false(independent_verify(old_jwk, after));
    assert_int_equal(verify(f->kr, f->v, after, "user-9"), JWTD_OK);
    /* The old key stays published and trusted: its tokens still live. */
    assert_true(jwks_has(f->kr, old_kid));
    assert_int_equal(verify(f->kr, f->v, before, "user-8"), JWTD_OK);
    struct rows r = rows_of(f->store);
    const struct store_key *o = row(&r, old_kid);
    assert_int_equal(o->state, KEY_RETIRED);
    assert_int_equal(row(&r, kid)->state, KEY_CURRENT);
    /* Published for as long as its last token can be accepted: access TTL
     * plus leeway at least. */
    int64_t window = keyring_retire_window(&f->cfg);
    assert_true(window >= f->cfg.access_ttl + f->cfg.leeway);
    assert_true(o->retired_at >= t0 && o->retired_at <= util_now());
    assert_int_equal(o->remove_at, o->retired_at + window);

    /* Still there just before its removal time... */
    keyring_maintain(f->kr, o->remove_at - 1);
    assert_true(jwks_has(f->kr, old_kid));
    assert_int_equal(rows_of(f->store).n, 2);
    /* ...gone from storage, the JWKS and the trusted set after it. */
    keyring_maintain(f->kr, o->remove_at);
    r = rows_of(f->store);
    assert_int_equal(r.n, 1);
    assert_string_equal(r.k[0].kid, kid);
    assert_false(jwks_has(f->kr, old_kid));
    assert_int_equal(jwks_count(f->kr), 1);
    assert_int_equal(verify(f->kr, f->v, before, "user-8"), JWTD_ERR_KID);
    assert_int_equal(verify(f->kr, f->v, after, "user-9"), JWTD_OK);
    json_decref(old_jwk);
    json_decref(new_jwk);
    free(before);
    free(after);
}

static void test_retire_rules(void **state)
{
    struct fx *f = *state;
    start(f->kr);
    char cur[KID_MAX + 1], nx[KID_MAX + 1];
    snprintf(cur, sizeof cur, "%s", rows_of(f->store).k[0].kid);
    char err[512] = "";

    /* The current key cannot go without a next key to take over. */
    assert_false(keyring_retire(f->kr, cur, false, false, nx, err, sizeof err));
    assert_true(strlen(err) > 0);
    assert_non_null(strstr(err, cur));
    assert_non_null(strstr(err, "rotate"));
    err[0] = '\0';
    assert_false(keyring_retire(f->kr, cur, true, false, nx, err, sizeof err));
    assert_true(strlen(err) > 0);
    struct rows r = rows_of(f->store);
    assert_int_equal(r.n, 1);
    assert_int_equal(r.k[0].state, KEY_CURRENT);
    assert_true(keyring_ready(f->kr));

    /* An unknown kid. */
    err[0] = '\0';
    assert_false(keyring_retire(f->kr, "no-such-kid", false, false, nx, err, sizeof err));
    assert_non_null(strstr(err, "no-such-kid"));

    /* With a next key still published ahead: refused unless at once (found
     * by an audit: the hour of publish-ahead was skipped without a word). */
    char next[KID_MAX + 1];
    assert_true(keyring_rotate(f->kr, false, next, err, sizeof err));
    err[0] = '\0';
    assert_false(keyring_retire(f->kr, cur, false, false, nx, err, sizeof err));
    assert_non_null(strstr(err, next));
    assert_non_null(strstr(err, "--now"));
    assert_string_equal(nx, "");
    r = rows_of(f->store);
    assert_int_equal(row(&r, cur)->state, KEY_CURRENT);
    assert_int_equal(row(&r, next)->state, KEY_NEXT);
    /* At once: the next key takes over. */
    assert_true(keyring_retire(f->kr, cur, false, true, nx, err, sizeof err));
    assert_string_equal(nx, next);
    r = rows_of(f->store);
    assert_int_equal(row(&r, cur)->state, KEY_RETIRED);
    assert_int_equal(row(&r, next)->state, KEY_CURRENT);
    char *tok = sign(f->kr, "user-10");
    assert_string_equal(token_kid(tok), next);
    assert_true(jwks_has(f->kr, cur)); /* still published */
    /* Retiring it twice is an error; purging it is not. */
    err[0] = '\0';
    assert_false(keyring_retire(f->kr, cur, false, false, nx, err, sizeof err));
    assert_non_null(strstr(err, "already retired"));
    assert_true(keyring_retire(f->kr, cur, true, false, nx, err, sizeof err));
    assert_false(jwks_has(f->kr, cur));
    free(tok);
}

static void test_retire_purge(void **state)
{
    struct fx *f = *state;
    start(f->kr);
    char cur[KID_MAX + 1];
    snprintf(cur, sizeof cur, "%s", rows_of(f->store).k[0].kid);
    char *compromised = sign(f->kr, "user-11");
    struct keyring *other = keyring_new(&f->cfg, f->store);
    assert_non_null(other);
    start(other);
    assert_int_equal(verify(other, f->v, compromised, "user-11"), JWTD_OK);

    char next[KID_MAX + 1], nx[KID_MAX + 1], err[512] = "";
    assert_true(keyring_rotate(f->kr, false, next, err, sizeof err));
    assert_true(keyring_retire(f->kr, cur, true, false, nx, err, sizeof err)); /* purge: at once */
    /* Distrusted at once here (the retire reloads)... */
    assert_true(keyring_reload(f->kr));
    assert_int_equal(verify(f->kr, f->v, compromised, "user-11"), JWTD_ERR_KID);
    assert_false(jwks_has(f->kr, cur));
    assert_int_equal(jwks_count(f->kr), 1);
    char *tok = sign(f->kr, "user-12");
    assert_string_equal(token_kid(tok), next);
    assert_int_equal(verify(f->kr, f->v, tok, "user-12"), JWTD_OK);
    /* ...and by another instance from its next reload. */
    assert_int_equal(verify(other, f->v, compromised, "user-11"), JWTD_OK);
    assert_true(keyring_reload(other));
    assert_int_equal(verify(other, f->v, compromised, "user-11"), JWTD_ERR_KID);
    assert_int_equal(verify(other, f->v, tok, "user-12"), JWTD_OK);
    char *tok2 = sign(other, "user-13");
    assert_string_equal(token_kid(tok2), next);
    /* The row is removed by the periodic duty. */
    keyring_maintain(f->kr, util_now());
    struct rows r = rows_of(f->store);
    assert_int_equal(r.n, 1);
    assert_string_equal(r.k[0].kid, next);
    keyring_free(other);
    free(compromised);
    free(tok);
    free(tok2);
}

static void test_maintain_promotes_due_next_key(void **state)
{
    struct fx *f = *state;
    set(&f->cfg, "JWTD_KEY_PUBLISH_AHEAD", "0s");
    assert_int_equal(f->cfg.key_publish_ahead, 0);
    start(f->kr);
    char cur[KID_MAX + 1];
    snprintf(cur, sizeof cur, "%s", rows_of(f->store).k[0].kid);
    char *before = sign(f->kr, "user-14");

    char next[KID_MAX + 1], err[256] = "";
    assert_true(keyring_rotate(f->kr, false, next, err, sizeof err));
    /* Due now, but only the periodic duty promotes it. */
    char *t = sign(f->kr, "user-15");
    assert_string_equal(token_kid(t), cur);
    free(t);
    int64_t now = util_now();
    keyring_maintain(f->kr, now);
    t = sign(f->kr, "user-16");
    assert_string_equal(token_kid(t), next);
    struct rows r = rows_of(f->store);
    assert_int_equal(r.n, 2);
    assert_int_equal(row(&r, next)->state, KEY_CURRENT);
    const struct store_key *o = row(&r, cur);
    assert_int_equal(o->state, KEY_RETIRED);
    assert_true(o->remove_at > now);
    assert_true(jwks_has(f->kr, cur));
    assert_int_equal(verify(f->kr, f->v, before, "user-14"), JWTD_OK);
    /* Maintenance again changes nothing until the retired key expires. */
    keyring_maintain(f->kr, now + 1);
    assert_int_equal(rows_of(f->store).n, 2);
    keyring_maintain(f->kr, o->remove_at);
    r = rows_of(f->store);
    assert_int_equal(r.n, 1);
    assert_string_equal(r.k[0].kid, next);
    assert_false(jwks_has(f->kr, cur));
    assert_int_equal(verify(f->kr, f->v, before, "user-14"), JWTD_ERR_KID);
    assert_int_equal(verify(f->kr, f->v, t, "user-16"), JWTD_OK);
    free(t);
    free(before);
}

static void test_maintain_automatic_rotation(void **state)
{
    struct fx *f = *state;
    set(&f->cfg, "JWTD_KEY_ROTATION", "1d");
    set(&f->cfg, "JWTD_KEY_PUBLISH_AHEAD", "1h");
    start(f->kr);
    struct rows r = rows_of(f->store);
    char cur[KID_MAX + 1];
    snprintf(cur, sizeof cur, "%s", r.k[0].kid);
    int64_t due = r.k[0].activate_at + 86400;
    /* Before the publish-ahead window: nothing. */
    keyring_maintain(f->kr, due - 3601);
    assert_int_equal(rows_of(f->store).n, 1);
    /* In it: a next key, published, due at the rotation time. */
    keyring_maintain(f->kr, due - 3600);
    r = rows_of(f->store);
    assert_int_equal(r.n, 2);
    const struct store_key *n = NULL;
    for (size_t i = 0; i < r.n; i++)
        if (r.k[i].state == KEY_NEXT)
            n = &r.k[i];
    assert_non_null(n);
    assert_int_equal(n->activate_at, due);
    char next[KID_MAX + 1];
    snprintf(next, sizeof next, "%s", n->kid);
    assert_true(jwks_has(f->kr, next));
    char *t = sign(f->kr, "user-17");
    assert_string_equal(token_kid(t), cur);
    free(t);
    /* Not again while it waits. */
    keyring_maintain(f->kr, due - 1);
    assert_int_equal(rows_of(f->store).n, 2);
    /* At the rotation time it signs. */
    keyring_maintain(f->kr, due);
    t = sign(f->kr, "user-18");
    assert_string_equal(token_kid(t), next);
    free(t);
    r = rows_of(f->store);
    assert_int_equal(row(&r, cur)->state, KEY_RETIRED);
    assert_int_equal(row(&r, next)->state, KEY_CURRENT);
}

static void test_algorithm_change(void **state)
{
    struct fx *f = *state;
    start(f->kr);
    char es_kid[KID_MAX + 1];
    snprintf(es_kid, sizeof es_kid, "%s", rows_of(f->store).k[0].kid);
    char *es_tok = sign(f->kr, "user-19");

    /* Restarted with JWTD_JWT_ALG=EdDSA on the same storage. */
    struct config cfg2;
    config_defaults(&cfg2);
    set(&cfg2, "JWTD_JWT_ALG", "EdDSA");
    struct keyring *kr2 = keyring_new(&cfg2, f->store);
    assert_non_null(kr2);
    int64_t t0 = util_now();
    start(kr2);
    struct rows r = rows_of(f->store);
    assert_int_equal(r.n, 2);
    const struct store_key *es = row(&r, es_kid);
    assert_int_equal(es->state, KEY_RETIRED);
    assert_true(es->remove_at >= t0 + keyring_retire_window(&cfg2));
    const struct store_key *ed = NULL;
    for (size_t i = 0; i < r.n; i++)
        if (strcmp(r.k[i].alg, "EdDSA") == 0)
            ed = &r.k[i];
    assert_non_null(ed);
    assert_int_equal(ed->state, KEY_CURRENT);
    char ed_kid[KID_MAX + 1];
    snprintf(ed_kid, sizeof ed_kid, "%s", ed->kid);

    /* Signing with the new algorithm; both published and trusted. */
    char *ed_tok = sign(kr2, "user-20");
    char kid[KID_MAX + 1], alg[16];
    header_of(ed_tok, kid, alg);
    assert_string_equal(alg, "EdDSA");
    assert_string_equal(kid, ed_kid);
    assert_int_equal(keyring_algs(kr2), JWTD_ALG_ES256 | JWTD_ALG_EDDSA);
    assert_int_equal(jwks_count(kr2), 2);
    json_t *ed_jwk = jwks_find(kr2, ed_kid);
    assert_non_null(ed_jwk);
    assert_string_equal(json_string_value(json_object_get(ed_jwk, "kty")), "OKP");
    assert_string_equal(json_string_value(json_object_get(ed_jwk, "crv")), "Ed25519");
    assert_true(independent_verify(ed_jwk, ed_tok));
    json_t *es_jwk = jwks_find(kr2, es_kid);
    assert_non_null(es_jwk);
    assert_true(independent_verify(es_jwk, es_tok));
    assert_int_equal(verify(kr2, f->v, es_tok, "user-19"), JWTD_OK);
    assert_int_equal(verify(kr2, f->v, ed_tok, "user-20"), JWTD_OK);
    /* A verifier that allows only ES256 refuses the EdDSA token. */
    jwtd_verifier *es_only = verifier(JWTD_ALG_ES256);
    assert_int_equal(verify(kr2, es_only, ed_tok, "user-20"), JWTD_ERR_ALG);
    jwtd_verifier_free(es_only);

    /* Starting again with EdDSA makes no further key. */
    start(kr2);
    assert_int_equal(rows_of(f->store).n, 2);
    /* The old algorithm's key leaves with its window. */
    keyring_maintain(kr2, es->remove_at);
    assert_false(jwks_has(kr2, es_kid));
    assert_int_equal(verify(kr2, f->v, es_tok, "user-19"), JWTD_ERR_KID);
    assert_int_equal(keyring_algs(kr2), JWTD_ALG_EDDSA);
    json_decref(ed_jwk);
    json_decref(es_jwk);
    keyring_free(kr2);
    config_free(&cfg2);
    free(es_tok);
    free(ed_tok);
}

/* An algorithm switch published ahead (`jwtd keys rotate --alg ES256` on
 * an EdDSA server): a restart before the switch keeps the key published
 * ahead; the first instance restarted with the new algorithm promotes it;
 * an instance still on the old one then signs with it (published) instead
 * of minting a key nobody has seen. */
static void test_algorithm_switch_published_ahead(void **state)
{
    struct fx *f = *state;
    struct config ed_cfg;
    config_defaults(&ed_cfg);
    set(&ed_cfg, "JWTD_JWT_ALG", "EdDSA");
    struct keyring *ed = keyring_new(&ed_cfg, f->store);
    assert_non_null(ed);
    start(ed);
    char ed_kid[KID_MAX + 1], es_kid[KID_MAX + 1], err[256] = "";
    snprintf(ed_kid, sizeof ed_kid, "%s", rows_of(f->store).k[0].kid);
    assert_true(keyring_rotate(f->kr, false, es_kid, err, sizeof err)); /* f->kr: ES256 */
    struct rows r = rows_of(f->store);
    assert_int_equal(row(&r, es_kid)->state, KEY_NEXT);

    /* A restart still on EdDSA: the ES256 key stays published ahead. */
    start(ed);
    r = rows_of(f->store);
    assert_int_equal(r.n, 2);
    assert_int_equal(row(&r, es_kid)->state, KEY_NEXT);
    assert_int_equal(row(&r, ed_kid)->state, KEY_CURRENT);
    assert_true(jwks_has(ed, es_kid));

    /* One instance restarted with ES256 promotes it. */
    start(f->kr);
    r = rows_of(f->store);
    assert_int_equal(r.n, 2);
    assert_int_equal(row(&r, es_kid)->state, KEY_CURRENT);
    assert_int_equal(row(&r, ed_kid)->state, KEY_RETIRED);

    /* The one still on EdDSA signs with the published ES256 key. */
    keyring_maintain(ed, util_now());
    assert_int_equal(rows_of(f->store).n, 2);
    char *tok = sign(ed, "user-rolling");
    char kid[KID_MAX + 1], alg[16];
    header_of(tok, kid, alg);
    assert_string_equal(alg, "ES256");
    assert_string_equal(kid, es_kid);
    assert_int_equal(verify(f->kr, f->v, tok, "user-rolling"), JWTD_OK);
    free(tok);
    keyring_free(ed);
    config_free(&ed_cfg);
}

static void test_hs256(void **state)
{
    struct fx *f = *state;
    static const char secret[] = "0123456789abcdef0123456789ABCDEF"; /* 32 bytes */
    struct config cfg;
    config_defaults(&cfg);
    set(&cfg, "JWTD_JWT_ALG", "HS256");
    set(&cfg, "JWTD_JWT_SECRET", secret);
    struct keyring *kr = keyring_new(&cfg, f->store);
    assert_non_null(kr);
    start(kr);
    assert_true(keyring_ready(kr));
    assert_int_equal(keyring_algs(kr), JWTD_ALG_HS256);
    /* Nothing public to publish, nothing stored. */
    size_t len = 0;
    char *jwks = keyring_jwks(kr, &len);
    assert_non_null(jwks);
    json_t *doc = json_loads(jwks, 0, NULL);
    assert_non_null(doc);
    assert_true(json_is_array(json_object_get(doc, "keys")));
    assert_int_equal(json_array_size(json_object_get(doc, "keys")), 0);
    assert_int_equal(json_object_size(doc), 1);
    json_decref(doc);
    free(jwks);
    assert_int_equal(rows_of(f->store).n, 0);

    char *tok = sign(kr, "user-21");
    json_t *h = jws_header(tok);
    assert_string_equal(json_string_value(json_object_get(h, "alg")), "HS256");
    /* The kid names the secret without being it. */
    const char *kid = json_string_value(json_object_get(h, "kid"));
    assert_non_null(kid);
    assert_null(strstr(kid, "0123456789"));
    json_decref(h);
    /* HMAC-SHA256 over "header.payload" (RFC 7518 §3.2), checked here. */
    struct jws_parts j = split(tok);
    uint8_t mac[32];
    unsigned int maclen = 0;
    assert_non_null(HMAC(EVP_sha256(), secret, 32, (const uint8_t *)tok, j.hlen + 1 + j.plen,
                         mac, &maclen));
    assert_int_equal(maclen, 32);
    char want[64];
    b64url_encode(mac, sizeof mac, want);
    assert_int_equal(j.slen, strlen(want));
    assert_memory_equal(j.s, want, j.slen);
    jwtd_verifier *hv = verifier(JWTD_ALG_HS256);
    assert_int_equal(verify(kr, hv, tok, "user-21"), JWTD_OK);
    /* The asymmetric verifier refuses it (no algorithm confusion). */
    assert_int_equal(verify(kr, f->v, tok, "user-21"), JWTD_ERR_ALG);

    /* Rotation is changing the setting; maintenance does nothing. */
    char nk[KID_MAX + 1], err[256] = "";
    assert_false(keyring_rotate(kr, false, nk, err, sizeof err));
    assert_non_null(strstr(err, "JWTD_JWT_SECRET"));
    keyring_maintain(kr, util_now() + 365 * 86400);
    assert_int_equal(rows_of(f->store).n, 0);
    assert_int_equal(verify(kr, hv, tok, "user-21"), JWTD_OK);

    /* Another secret: its tokens are not ours. */
    struct config cfg2;
    config_defaults(&cfg2);
    set(&cfg2, "JWTD_JWT_ALG", "HS256");
    set(&cfg2, "JWTD_JWT_SECRET", "0123456789abcdef0123456789ABCDEG");
    struct keyring *kr2 = keyring_new(&cfg2, f->store);
    assert_non_null(kr2);
    start(kr2);
    char *tok2 = sign(kr2, "user-22");
    char kid1[KID_MAX + 1];
    snprintf(kid1, sizeof kid1, "%s", token_kid(tok));
    assert_string_not_equal(token_kid(tok2), kid1);
    assert_true(verify(kr, hv, tok2, "user-22") != JWTD_OK);
    keyring_free(kr2);
    config_free(&cfg2);

    /* A secret shorter than 32 bytes cannot start. */
    struct config cfg3;
    config_defaults(&cfg3);
    set(&cfg3, "JWTD_JWT_ALG", "HS256");
    set(&cfg3, "JWTD_JWT_SECRET", "0123456789abcdef0123456789ABCDE"); /* 31 */
    struct keyring *kr3 = keyring_new(&cfg3, f->store);
    assert_non_null(kr3);
    err[0] = '\0';
    assert_false(keyring_start(kr3, err, sizeof err));
    assert_true(strlen(err) > 0);
    assert_false(keyring_ready(kr3));
    keyring_free(kr3);
    config_free(&cfg3);

    jwtd_verifier_free(hv);
    keyring_free(kr);
    config_free(&cfg);
    free(tok);
    free(tok2);
}

int main(void)
{
    log_setup(LOG_ERROR, false);
#define T(fn) cmocka_unit_test_setup_teardown(fn, fx_setup, fx_teardown)
    const struct CMUnitTest tests[] = {
        T(test_es256_start_sign_verify),
        T(test_second_instance_shares_the_ring),
        T(test_rotate_publishes_ahead),
        T(test_rotate_immediate_then_removed),
        T(test_retire_rules),
        T(test_retire_purge),
        T(test_maintain_promotes_due_next_key),
        T(test_maintain_automatic_rotation),
        T(test_algorithm_change),
        T(test_algorithm_switch_published_ahead),
        T(test_hs256),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
