/* SPDX-License-Identifier: Apache-2.0 */
/*
 * JWT (RFC 7519): the verification policy (jwtd_verifier), the claim rules
 * applied after the signature verified, and the verified claims.
 *
 * Every rule fails closed: a claim the policy needs and the token lacks is a
 * refusal, never a pass. Time comes from the caller (`now`).
 *
 * Must not: read the clock, look at the payload before the signature
 * verified, or accept a registered claim of the wrong JSON type.
 */
#include "jwtd_lib.h"

#include <stdlib.h>
#include <string.h>

#define LEEWAY_DEFAULT 5
#define LEEWAY_MAX 3600

struct jwtd_verifier {
    unsigned algs;
    char *issuer;
    size_t issuer_len;
    char *audience;
    size_t audience_len;
    int64_t leeway;
    bool require_sid;
};

struct jwtd_claims {
    json_t *payload; /* owns every string below */
    const char *sub, *sid, *iss, *jti, *username;
    int64_t exp, iat;
    jwtd_alg alg;
    char kid[]; /* copy: the key set may go before the claims */
};

/* ------------------------------------------------------------ verifier -- */

jwtd_err jwtd_verifier_new(jwtd_verifier **ret_verifier)
{
    jwtd_verifier *v;

    if (ret_verifier == NULL)
        return JWTD_ERR_INVALID_ARG;
    v = calloc(1, sizeof(*v));
    if (v == NULL)
        return JWTD_ERR_NOMEM;
    v->algs = JWTD_ALGS_ASYMMETRIC;
    v->leeway = LEEWAY_DEFAULT;
    v->require_sid = true;
    *ret_verifier = v;
    return JWTD_OK;
}

void jwtd_verifier_free(jwtd_verifier *v)
{
    if (v == NULL)
        return;
    free(v->issuer);
    free(v->audience);
    free(v);
}

jwtd_err jwtd_verifier_set_algs(jwtd_verifier *v, unsigned algs)
{
    if (v == NULL || algs == 0 || (algs & ~(unsigned)JWTD__ALGS_ALL) != 0)
        return JWTD_ERR_INVALID_ARG;
    v->algs = algs;
    return JWTD_OK;
}

/* An empty issuer or audience would match a token's empty claim: refused as
 * a configuration mistake. */
static jwtd_err set_string(char **slot, size_t *slot_len, const char *value)
{
    size_t len;
    char *copy;

    if (value == NULL || value[0] == '\0')
        return JWTD_ERR_INVALID_ARG;
    len = strlen(value);
    copy = malloc(len + 1);
    if (copy == NULL)
        return JWTD_ERR_NOMEM;
    memcpy(copy, value, len + 1);
    free(*slot);
    *slot = copy;
    *slot_len = len;
    return JWTD_OK;
}

jwtd_err jwtd_verifier_set_issuer(jwtd_verifier *v, const char *issuer)
{
    if (v == NULL)
        return JWTD_ERR_INVALID_ARG;
    return set_string(&v->issuer, &v->issuer_len, issuer);
}

jwtd_err jwtd_verifier_set_audience(jwtd_verifier *v, const char *audience)
{
    if (v == NULL)
        return JWTD_ERR_INVALID_ARG;
    return set_string(&v->audience, &v->audience_len, audience);
}

jwtd_err jwtd_verifier_set_leeway(jwtd_verifier *v, int64_t seconds)
{
    if (v == NULL || seconds < 0 || seconds > LEEWAY_MAX)
        return JWTD_ERR_INVALID_ARG;
    v->leeway = seconds;
    return JWTD_OK;
}

void jwtd_verifier_require_sid(jwtd_verifier *v, bool required)
{
    if (v != NULL)
        v->require_sid = required;
}

/* -------------------------------------------------------------- claims -- */

/*
 * A NumericDate (RFC 7519 §2) as whole seconds. Fractions round up: with an
 * integer `now`, "now >= exp" and "nbf > now" hold for the real value exactly
 * when they hold for its ceiling, so rounding up keeps every comparison
 * exact. Values beyond int64 saturate (the comparisons below never
 * overflow).
 */
static bool numeric_date(const json_t *j, int64_t *out)
{
    double d, t;

    if (json_is_integer(j)) {
        *out = (int64_t)json_integer_value(j);
        return true;
    }
    if (!json_is_real(j))
        return false;
    d = json_real_value(j);
    if (d != d)
        return false; /* NaN cannot come out of the parser, but be sure */
    if (d >= 0x1p63) {
        *out = INT64_MAX;
        return true;
    }
    if (d < -0x1p63) {
        *out = INT64_MIN;
        return true;
    }
    t = (double)(int64_t)d; /* truncation toward zero, in range */
    *out = (int64_t)d + (t < d ? 1 : 0);
    return true;
}

/* a + b for b in [0, LEEWAY_MAX], saturating at INT64_MAX (exact for the
 * "t > now + leeway" tests: no int64 t exceeds a saturated sum). */
static int64_t add_sat(int64_t a, int64_t b)
{
    return a > INT64_MAX - b ? INT64_MAX : a + b;
}

/* Optional string member; -1 when present with another type. */
static int claim_string(const json_t *payload, const char *name, const char **ret, size_t *ret_len)
{
    const json_t *j = json_object_get(payload, name);

    if (j == NULL) {
        *ret = NULL;
        *ret_len = 0;
        return 0;
    }
    if (!json_is_string(j))
        return -1;
    *ret = json_string_value(j);
    *ret_len = json_string_length(j);
    return 1;
}

static bool str_equal(const char *a, size_t alen, const char *b, size_t blen)
{
    return alen == blen && memcmp(a, b, alen) == 0;
}

static jwtd_err check_audience(const jwtd_verifier *v, const json_t *aud)
{
    const json_t *item;
    size_t i;
    bool found = false;

    if (aud == NULL)
        return JWTD_ERR_MISSING_CLAIM;
    if (json_is_string(aud))
        return str_equal(json_string_value(aud), json_string_length(aud), v->audience,
                         v->audience_len)
                   ? JWTD_OK
                   : JWTD_ERR_AUDIENCE;
    if (!json_is_array(aud))
        return JWTD_ERR_CLAIM_TYPE;
    /* Every member must be a string, even after a match: a malformed claim is
     * refused whatever else it holds. */
    json_array_foreach(aud, i, item) {
        if (!json_is_string(item))
            return JWTD_ERR_CLAIM_TYPE;
        if (str_equal(json_string_value(item), json_string_length(item), v->audience,
                      v->audience_len))
            found = true;
    }
    return found ? JWTD_OK : JWTD_ERR_AUDIENCE;
}

static jwtd_err check_claims(const jwtd_verifier *v, const json_t *payload, int64_t now,
                             jwtd_claims *c)
{
    const json_t *j;
    const char *s;
    size_t len;
    int64_t t, horizon = add_sat(now, v->leeway);
    jwtd_err err;
    int rc;

    /* exp: required. Expired when exp + leeway <= now (RFC 7519 §4.1.4:
     * "on or after" the expiration time the token must not be accepted),
     * computed as exp <= now - leeway so that no value can overflow. */
    j = json_object_get(payload, "exp");
    if (j == NULL)
        return JWTD_ERR_MISSING_CLAIM;
    if (!numeric_date(j, &c->exp))
        return JWTD_ERR_CLAIM_TYPE;
    if (now >= INT64_MIN + v->leeway && c->exp <= now - v->leeway)
        return JWTD_ERR_EXPIRED;

    /* nbf, iat: optional; refused when later than now + leeway. */
    j = json_object_get(payload, "nbf");
    if (j != NULL) {
        if (!numeric_date(j, &t))
            return JWTD_ERR_CLAIM_TYPE;
        if (t > horizon)
            return JWTD_ERR_NOT_YET_VALID;
    }
    j = json_object_get(payload, "iat");
    if (j != NULL) {
        if (!numeric_date(j, &c->iat))
            return JWTD_ERR_CLAIM_TYPE;
        if (c->iat > horizon)
            return JWTD_ERR_ISSUED_IN_FUTURE;
    }

    rc = claim_string(payload, "iss", &c->iss, &len);
    if (rc == 0)
        return JWTD_ERR_MISSING_CLAIM;
    if (rc < 0)
        return JWTD_ERR_CLAIM_TYPE;
    if (!str_equal(c->iss, len, v->issuer, v->issuer_len))
        return JWTD_ERR_ISSUER;

    err = check_audience(v, json_object_get(payload, "aud"));
    if (err != JWTD_OK)
        return err;

    /* sub: a non-empty string; an empty subject names nobody. */
    rc = claim_string(payload, "sub", &c->sub, &len);
    if (rc < 0)
        return JWTD_ERR_CLAIM_TYPE;
    if (rc == 0 || len == 0)
        return JWTD_ERR_MISSING_CLAIM;

    /* sid: type-checked whenever present, required non-empty by default. */
    rc = claim_string(payload, "sid", &c->sid, &len);
    if (rc < 0)
        return JWTD_ERR_CLAIM_TYPE;
    if (v->require_sid && (rc == 0 || len == 0))
        return JWTD_ERR_MISSING_CLAIM;

    if (claim_string(payload, "jti", &c->jti, &len) < 0)
        return JWTD_ERR_CLAIM_TYPE;
    if (claim_string(payload, "preferred_username", &s, &len) < 0)
        return JWTD_ERR_CLAIM_TYPE;
    c->username = s;
    return JWTD_OK;
}

jwtd_err jwtd_verify(const jwtd_verifier *v, const jwtd_keyset *set, const char *token,
                     size_t len, int64_t now, jwtd_claims **ret_claims)
{
    uint8_t buf[JWTD__MAX_SEGMENT];
    size_t plen = 0, kid_len;
    const char *kid = "";
    jwtd_alg alg = 0;
    jwtd_claims *c;
    json_t *payload;
    jwtd_err err;

    if (v == NULL || set == NULL || token == NULL || ret_claims == NULL)
        return JWTD_ERR_INVALID_ARG;
    /* A verifier without issuer or audience would check neither: misuse. */
    if (v->issuer == NULL || v->audience == NULL)
        return JWTD_ERR_INVALID_ARG;

    err = jwtd__jws_verify_into(set, v->algs, token, len, buf, sizeof(buf), &plen, &alg, &kid);
    if (err != JWTD_OK)
        return err;
    payload = jwtd__json_parse(buf, plen);
    if (payload == NULL)
        return JWTD_ERR_JSON;
    if (!json_is_object(payload)) {
        json_decref(payload);
        return JWTD_ERR_JSON;
    }
    kid_len = strlen(kid);
    c = calloc(1, sizeof(*c) + kid_len + 1);
    if (c == NULL) {
        json_decref(payload);
        return JWTD_ERR_NOMEM;
    }
    memcpy(c->kid, kid, kid_len + 1);
    c->payload = payload;
    c->alg = alg;
    err = check_claims(v, payload, now, c);
    if (err != JWTD_OK) {
        jwtd_claims_free(c);
        return err;
    }
    *ret_claims = c;
    return JWTD_OK;
}

void jwtd_claims_free(jwtd_claims *c)
{
    if (c == NULL)
        return;
    json_decref(c->payload);
    free(c);
}

const char *jwtd_claims_sub(const jwtd_claims *c)
{
    return c != NULL ? c->sub : NULL;
}

const char *jwtd_claims_sid(const jwtd_claims *c)
{
    return c != NULL ? c->sid : NULL;
}

const char *jwtd_claims_iss(const jwtd_claims *c)
{
    return c != NULL ? c->iss : NULL;
}

const char *jwtd_claims_jti(const jwtd_claims *c)
{
    return c != NULL ? c->jti : NULL;
}

const char *jwtd_claims_username(const jwtd_claims *c)
{
    return c != NULL ? c->username : NULL;
}

int64_t jwtd_claims_exp(const jwtd_claims *c)
{
    return c != NULL ? c->exp : 0;
}

int64_t jwtd_claims_iat(const jwtd_claims *c)
{
    return c != NULL ? c->iat : 0;
}

const char *jwtd_claims_kid(const jwtd_claims *c)
{
    return c != NULL ? c->kid : NULL;
}

jwtd_alg jwtd_claims_alg(const jwtd_claims *c)
{
    return c != NULL ? c->alg : 0;
}

const char *jwtd_claims_string(const jwtd_claims *c, const char *name)
{
    const json_t *j;

    if (c == NULL || name == NULL)
        return NULL;
    j = json_object_get(c->payload, name);
    return json_is_string(j) ? json_string_value(j) : NULL;
}

bool jwtd_claims_integer(const jwtd_claims *c, const char *name, int64_t *ret_value)
{
    const json_t *j;

    if (c == NULL || name == NULL || ret_value == NULL)
        return false;
    j = json_object_get(c->payload, name);
    if (!json_is_integer(j))
        return false;
    *ret_value = (int64_t)json_integer_value(j);
    return true;
}

char *jwtd_claims_json(const jwtd_claims *c)
{
    size_t len;
    char *text;

    if (c == NULL)
        return NULL;
    /* Sized, then written into our own malloc() so the caller's free() is
     * right whatever allocator jansson was configured with. */
    len = json_dumpb(c->payload, NULL, 0, JSON_COMPACT);
    if (len == 0)
        return NULL;
    text = malloc(len + 1);
    if (text == NULL)
        return NULL;
    if (json_dumpb(c->payload, text, len, JSON_COMPACT) != len) {
        free(text);
        return NULL;
    }
    text[len] = '\0';
    return text;
}
