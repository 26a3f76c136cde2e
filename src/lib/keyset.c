/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Key sets: a small array of referenced keys, filled once (from a JWKS
 * document or key by key) and then only read. Lookup is a linear scan: sets
 * hold a handful of keys, and a scan of a few kids beats any index.
 *
 * Must not: hold two keys with one kid (which would make the choice of key
 * depend on order), mix secret and public keys (the HS/RS confusion starts
 * there), or change while readers may be verifying.
 */
#include "jwtd_lib.h"

#include <openssl/err.h>

#include <stdlib.h>
#include <string.h>

jwtd_err jwtd_keyset_new(jwtd_keyset **ret_set)
{
    jwtd_keyset *set;

    if (ret_set == NULL)
        return JWTD_ERR_INVALID_ARG;
    set = calloc(1, sizeof(*set));
    if (set == NULL)
        return JWTD_ERR_NOMEM;
    *ret_set = set;
    return JWTD_OK;
}

void jwtd_keyset_free(jwtd_keyset *set)
{
    if (set == NULL)
        return;
    for (size_t i = 0; i < set->count; i++)
        jwtd_key_free(set->keys[i]);
    free(set->keys);
    free(set);
}

size_t jwtd_keyset_count(const jwtd_keyset *set)
{
    return set != NULL ? set->count : 0;
}

static const jwtd_key *find_kid(const jwtd_keyset *set, const char *kid, size_t kid_len)
{
    for (size_t i = 0; i < set->count; i++) {
        const jwtd_key *k = set->keys[i];
        if (k->kid_len == kid_len && memcmp(k->kid, kid, kid_len) == 0)
            return k;
    }
    return NULL;
}

const jwtd_key *jwtd_keyset_find(const jwtd_keyset *set, const char *kid)
{
    if (set == NULL || kid == NULL)
        return NULL;
    return find_kid(set, kid, strlen(kid));
}

const jwtd_key *jwtd__keyset_select(const jwtd_keyset *set, jwtd_alg alg, bool has_kid,
                                    const char *kid, size_t kid_len)
{
    const jwtd_key *found = NULL;

    if (has_kid)
        return find_kid(set, kid, kid_len);
    /* No kid: only an unambiguous choice is acceptable. */
    for (size_t i = 0; i < set->count; i++) {
        if (set->keys[i]->alg != alg)
            continue;
        if (found != NULL)
            return NULL;
        found = set->keys[i];
    }
    return found;
}

jwtd_err jwtd_keyset_add(jwtd_keyset *set, jwtd_key *key)
{
    bool secret;

    if (set == NULL || key == NULL)
        return JWTD_ERR_INVALID_ARG;
    if (find_kid(set, key->kid, key->kid_len) != NULL)
        return JWTD_ERR_DUPLICATE_KID;
    secret = key->alg == JWTD_ALG_HS256;
    if ((secret && set->has_public) || (!secret && set->has_secret))
        return JWTD_ERR_MIXED_KEYS;
    if (set->count == set->cap) {
        size_t cap = set->cap != 0 ? set->cap * 2 : 4;
        jwtd_key **keys;

        if (cap > SIZE_MAX / sizeof(*keys))
            return JWTD_ERR_NOMEM;
        keys = realloc(set->keys, cap * sizeof(*keys));
        if (keys == NULL)
            return JWTD_ERR_NOMEM;
        set->keys = keys;
        set->cap = cap;
    }
    set->keys[set->count++] = jwtd__key_ref(key);
    if (secret)
        set->has_secret = true;
    else
        set->has_public = true;
    return JWTD_OK;
}

static jwtd_err fill_from_jwks(jwtd_keyset *set, const json_t *doc, unsigned flags)
{
    const json_t *keys, *jwk;
    size_t i;

    if (!json_is_object(doc))
        return JWTD_ERR_JSON;
    keys = json_object_get(doc, "keys");
    if (!json_is_array(keys))
        return JWTD_ERR_JSON;
    json_array_foreach(keys, i, jwk) {
        jwtd_key *key = NULL;
        bool unusable = false;
        jwtd_err err;

        err = jwtd__key_from_json(jwk, flags, &key, &unusable);
        if (err == JWTD_ERR_KEY && unusable && (flags & JWTD_JWKS_SKIP_UNUSABLE))
            continue;
        if (err != JWTD_OK)
            return err;
        err = jwtd_keyset_add(set, key);
        jwtd_key_free(key);
        if (err != JWTD_OK)
            return err;
    }
    return JWTD_OK;
}

jwtd_err jwtd_keyset_from_jwks(const char *json, size_t len, unsigned flags,
                               jwtd_keyset **ret_set)
{
    jwtd_keyset *set = NULL;
    json_t *doc;
    jwtd_err err;

    if (json == NULL || ret_set == NULL)
        return JWTD_ERR_INVALID_ARG;
    if (len > JWTD_MAX_JWKS_LEN)
        return JWTD_ERR_TOO_LARGE;
    doc = jwtd__json_parse(json, len);
    if (doc == NULL)
        return JWTD_ERR_JSON;
    err = jwtd_keyset_new(&set);
    if (err != JWTD_OK)
        goto free_doc;
    ERR_set_mark();
    err = fill_from_jwks(set, doc, flags);
    ERR_pop_to_mark();
    if (err != JWTD_OK) {
        jwtd_keyset_free(set);
        goto free_doc;
    }
    *ret_set = set;
free_doc:
    json_decref(doc);
    return err;
}
