/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Public documents for resource servers: the JWK Set and a subset of the
 * OpenID Connect discovery document (what a verifier needs: issuer,
 * jwks_uri, algorithms). jwtd is not an OAuth authorization server, so
 * authorization/token endpoints are not advertised.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/handlers.h"

void api_jwks(struct request *r)
{
    size_t len = 0;
    char *doc = keyring_jwks(r->app->keys, &len);
    if (!doc) {
        respond_error(r, 500, "internal_error", "The server ran out of memory.");
        return;
    }
    /* Caches may keep the set for less time than a new key is published
     * before it signs, so every verifier sees a key before its first token. */
    const struct config *cfg = r->app->cfg;
    int64_t max_age = 300;
    if (cfg->key_publish_ahead / 2 < max_age)
        max_age = cfg->key_publish_ahead / 2;
    char cc[64];
    snprintf(cc, sizeof cc, "public, max-age=%lld", (long long)max_age);
    respond_header(r, "Cache-Control", cc);
    respond_json_text(r, 200, doc, len);
    free(doc);
}

void api_openid_configuration(struct request *r)
{
    const struct config *cfg = r->app->cfg;
    /* The keys are where clients reach jwtd: the public URL when set,
     * else the issuer when it is a web address (it is the public one behind
     * a proxy), else the listen address. An issuer may be any string
     * (RFC 7519: "my-service"); it is no base for a URL. */
    char listen_base[300];
    const char *base = cfg->public_url;
    if (!base && (strncmp(cfg->issuer, "https://", 8) == 0 ||
                  strncmp(cfg->issuer, "http://", 7) == 0))
        base = cfg->issuer;
    if (!base) {
        snprintf(listen_base, sizeof listen_base, "%s://%s", cfg->tls_cert_pem ? "https" : "http",
                 cfg->listen);
        base = listen_base;
    }
    size_t n = strlen(base);
    const char *slash = (n && base[n - 1] == '/') ? "" : "/";
    char jwks_uri[640];
    snprintf(jwks_uri, sizeof jwks_uri, "%s%s.well-known/jwks.json", base, slash);
    json_t *algs = json_array();
    json_array_append_new(algs, json_string(config_alg_name(cfg->alg)));
    json_t *doc = json_pack(
        "{s:s, s:s, s:O, s:O, s:[s], s:[s,s,s,s,s,s,s,s,s,s,s]}", "issuer", cfg->issuer,
        "jwks_uri", jwks_uri, "id_token_signing_alg_values_supported", algs,
        "access_token_signing_alg_values_supported", algs, "subject_types_supported", "public",
        "claims_supported", "iss", "sub", "aud", "exp", "iat", "jti", "sid", "preferred_username",
        "email", "email_verified", "amr");
    json_decref(algs);
    respond_header(r, "Cache-Control", "public, max-age=300");
    respond_json(r, 200, doc);
}
