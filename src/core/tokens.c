/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Implementation of tokens.h.
 */
#include "core/tokens.h"

#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/hmac.h>

#include "lib/jwtd_internal.h"

#define REFRESH_VERSION 1
static const char refresh_label[] = "jwtd-refresh-token";

static bool refresh_mac(const uint8_t key[REFRESH_KEY_LEN], const uint8_t *msg, size_t n,
                        uint8_t out[32])
{
    /* The label keeps this key's MACs from meaning anything elsewhere. */
    uint8_t buf[sizeof refresh_label + 32];
    if (n > 32)
        return false;
    memcpy(buf, refresh_label, sizeof refresh_label);
    memcpy(buf + sizeof refresh_label, msg, n);
    unsigned int len = 0;
    bool ok = HMAC(EVP_sha256(), key, REFRESH_KEY_LEN, buf, sizeof refresh_label + n, out, &len) &&
              len == 32;
    OPENSSL_cleanse(buf, sizeof buf);
    return ok;
}

bool refresh_token_make(const uint8_t key[REFRESH_KEY_LEN], const char *sid, uint32_t gen,
                        char out[REFRESH_TOKEN_LEN + 1])
{
    uint8_t raw[REFRESH_TOKEN_RAW];
    raw[0] = REFRESH_VERSION;
    if (!util_uuid_to_bytes(sid, raw + 1))
        return false;
    raw[17] = (uint8_t)(gen >> 24);
    raw[18] = (uint8_t)(gen >> 16);
    raw[19] = (uint8_t)(gen >> 8);
    raw[20] = (uint8_t)gen;
    if (!refresh_mac(key, raw, 21, raw + 21))
        return false;
    bool ok = jwtd__b64url_encode(raw, sizeof raw, out, REFRESH_TOKEN_LEN + 1) == REFRESH_TOKEN_LEN;
    OPENSSL_cleanse(raw, sizeof raw);
    return ok;
}

bool refresh_token_parse(const uint8_t key[REFRESH_KEY_LEN], const char *tok, size_t len,
                         char ret_sid[UUID_STR_LEN], uint32_t *ret_gen)
{
    if (len != REFRESH_TOKEN_LEN)
        return false;
    uint8_t raw[REFRESH_TOKEN_RAW + 2], mac[32];
    size_t n = 0;
    /* raw is the token, mac the valid token's secret part (also for a
     * forgery): both wiped on every path, as refresh_token_make does. */
    bool ok = jwtd__b64url_decode(tok, len, raw, sizeof raw, &n) == JWTD_OK &&
              n == REFRESH_TOKEN_RAW && raw[0] == REFRESH_VERSION &&
              refresh_mac(key, raw, 21, mac) && CRYPTO_memcmp(mac, raw + 21, 32) == 0;
    if (ok) {
        util_uuid_from_bytes(raw + 1, ret_sid);
        *ret_gen =
            (uint32_t)raw[17] << 24 | (uint32_t)raw[18] << 16 | (uint32_t)raw[19] << 8 | raw[20];
    }
    OPENSSL_cleanse(raw, sizeof raw);
    OPENSSL_cleanse(mac, sizeof mac);
    return ok;
}

jwtd_err access_token_issue(struct keyring *kr, const struct config *cfg,
                            const struct store_user *u, const char *sid, unsigned amr,
                            int64_t now, char **ret_token)
{
    char jti[UUID_STR_LEN];
    if (!util_uuid7(jti))
        return JWTD_ERR_INTERNAL;
    /* Claim order is fixed (iss first) so tokens read well when decoded. */
    json_t *claims = json_pack("{s:s, s:s, s:s, s:I, s:I, s:s, s:s, s:s}", "iss", cfg->issuer,
                               "sub", u->id, "aud", cfg->audience, "exp",
                               (json_int_t)(now + cfg->access_ttl), "iat", (json_int_t)now, "jti",
                               jti, "sid", sid, "preferred_username", u->username);
    if (!claims)
        return JWTD_ERR_NOMEM;
    if (u->email[0] && (json_object_set_new(claims, "email", json_string(u->email)) ||
                        json_object_set_new(claims, "email_verified",
                                            json_boolean(u->email_verified)))) {
        json_decref(claims);
        return JWTD_ERR_NOMEM;
    }
    if (amr) {
        /* RFC 8176 values: pwd, otp, hwk (a passkey bound to hardware), swk. */
        json_t *a = json_array();
        static const struct {
            unsigned bit;
            const char *name;
        } names[] = {{AMR_PWD, "pwd"}, {AMR_OTP, "otp"}, {AMR_HWK, "hwk"}, {AMR_SWK, "swk"}};
        for (size_t i = 0; a && i < sizeof names / sizeof names[0]; i++)
            if (amr & names[i].bit)
                json_array_append_new(a, json_string(names[i].name));
        if (!a || json_object_set_new(claims, "amr", a)) {
            json_decref(claims);
            return JWTD_ERR_NOMEM;
        }
    }
    char *payload = json_dumps(claims, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(claims);
    if (!payload)
        return JWTD_ERR_NOMEM;
    jwtd_err e = keyring_sign(kr, payload, strlen(payload), ret_token);
    free(payload);
    return e;
}
