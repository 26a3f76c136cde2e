/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Names: the English phrase of every jwtd_err and the JOSE name of every
 * jwtd_alg, plus the one JSON parsing entry point every other file uses.
 *
 * Must not: put anything key- or token-dependent in a message (the strings
 * are shown to clients), or accept a JOSE name other than by exact match.
 */
#include "jwtd_lib.h"

#include <string.h>

const char *jwtd_strerror(jwtd_err err)
{
    switch (err) {
    case JWTD_OK: return "success";
    case JWTD_ERR_NOMEM: return "out of memory";
    case JWTD_ERR_INVALID_ARG: return "invalid argument";
    case JWTD_ERR_TOO_LARGE: return "input too large";
    case JWTD_ERR_MALFORMED: return "malformed token";
    case JWTD_ERR_BASE64: return "invalid base64url encoding";
    case JWTD_ERR_JSON: return "invalid JSON";
    case JWTD_ERR_ALG: return "algorithm not allowed";
    case JWTD_ERR_KID: return "unknown key id";
    case JWTD_ERR_HEADER: return "forbidden header parameter";
    case JWTD_ERR_CRIT: return "unsupported critical header";
    case JWTD_ERR_SIGNATURE: return "invalid signature";
    case JWTD_ERR_EXPIRED: return "token has expired";
    case JWTD_ERR_NOT_YET_VALID: return "token is not yet valid";
    case JWTD_ERR_ISSUED_IN_FUTURE: return "token issued in the future";
    case JWTD_ERR_MISSING_CLAIM: return "required claim missing";
    case JWTD_ERR_CLAIM_TYPE: return "claim has the wrong type";
    case JWTD_ERR_ISSUER: return "issuer mismatch";
    case JWTD_ERR_AUDIENCE: return "audience mismatch";
    case JWTD_ERR_KEY: return "unusable key";
    case JWTD_ERR_DUPLICATE_KID: return "duplicate key id";
    case JWTD_ERR_MIXED_KEYS: return "key set mixes secret and public keys";
    case JWTD_ERR_INTERNAL: return "internal crypto error";
    }
    return "unknown error";
}

/* The four names, in one table so the two lookups cannot disagree. */
static const struct {
    jwtd_alg alg;
    const char *name;
} alg_names[] = {
    {JWTD_ALG_HS256, "HS256"},
    {JWTD_ALG_ES256, "ES256"},
    {JWTD_ALG_EDDSA, "EdDSA"},
    {JWTD_ALG_RS256, "RS256"},
};

const char *jwtd_alg_name(jwtd_alg alg)
{
    for (size_t i = 0; i < sizeof(alg_names) / sizeof(alg_names[0]); i++)
        if (alg_names[i].alg == alg)
            return alg_names[i].name;
    return NULL;
}

jwtd_alg jwtd_alg_from_name(const char *name)
{
    if (name == NULL)
        return 0;
    /* Exact, case-sensitive match (RFC 7515 §4.1.1): "rs256" is not RS256,
     * and "none" is simply absent from the table. */
    for (size_t i = 0; i < sizeof(alg_names) / sizeof(alg_names[0]); i++)
        if (strcmp(alg_names[i].name, name) == 0)
            return alg_names[i].alg;
    return 0;
}

json_t *jwtd__json_parse(const void *text, size_t len)
{
    json_error_t jerr;

    /* Duplicate members are an ambiguity attackers exploit (two parsers, two
     * meanings), so they are refused everywhere. JSON_ALLOW_NUL is never
     * passed: a NUL inside a string would let C comparisons see a prefix. */
    return json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
}
