/* SPDX-License-Identifier: Apache-2.0 */
/*
 * `jwtd token inspect|verify TOKEN`: decode a token for a human (inspect
 * claims nothing about validity), or verify it against this server's keys
 * and settings, printing the reason when it fails.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include <jansson.h>

#include "cli/cli.h"
#include "core/keyring.h"
#include "base/util.h"
#include "lib/jwtd_internal.h"

static json_t *decode_segment(const char *s, size_t n)
{
    size_t cap = jwtd__b64url_decoded_max(n) + 1;
    uint8_t *buf = malloc(cap);
    size_t len = 0;
    json_t *j = NULL;
    if (buf && jwtd__b64url_decode(s, n, buf, cap, &len) == JWTD_OK)
        j = json_loadb((const char *)buf, len, JSON_REJECT_DUPLICATES, NULL);
    free(buf);
    return j;
}

/* The payload of a compact token, unverified (NULL when it is none). */
static json_t *payload_of(const char *tok)
{
    size_t n = strlen(tok);
    const char *d1 = memchr(tok, '.', n);
    const char *d2 = d1 ? memchr(d1 + 1, '.', n - (size_t)(d1 + 1 - tok)) : NULL;
    return d2 ? decode_segment(d1 + 1, (size_t)(d2 - d1 - 1)) : NULL;
}

/* An issuer or audience mismatch names both sides: which configuration
 * the command read is the usual question (a server started with other
 * settings than the shell's). */
static void explain_mismatch(jwtd_err e, const char *tok, const struct config *cfg)
{
    const char *claim = e == JWTD_ERR_ISSUER ? "iss" : "aud";
    json_t *p = payload_of(tok);
    json_t *v = p ? json_object_get(p, claim) : NULL;
    char *said = v ? json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT) : NULL;
    printf("the token's %s is %.200s; this configuration expects \"%s\" (JWTD_%s; is it the "
           "server's configuration?)\n",
           claim, said ? said : "missing", e == JWTD_ERR_ISSUER ? cfg->issuer : cfg->audience,
           e == JWTD_ERR_ISSUER ? "ISSUER, from JWTD_PUBLIC_URL or JWTD_LISTEN" : "AUDIENCE");
    free(said);
    json_decref(p);
}

static int inspect(const char *tok)
{
    size_t n = strlen(tok);
    const char *d1 = memchr(tok, '.', n);
    const char *d2 = d1 ? memchr(d1 + 1, '.', n - (size_t)(d1 + 1 - tok)) : NULL;
    if (!d1 || !d2 || n > JWTD_MAX_TOKEN_LEN) {
        fprintf(stderr, "jwtd: not a compact JWT (three base64url parts)\n");
        return 1;
    }
    json_t *h = decode_segment(tok, (size_t)(d1 - tok));
    json_t *p = decode_segment(d1 + 1, (size_t)(d2 - d1 - 1));
    if (!h || !p) {
        fprintf(stderr, "jwtd: header or payload is not base64url JSON\n");
        json_decref(h);
        json_decref(p);
        return 1;
    }
    char *hs = json_dumps(h, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    char *ps = json_dumps(p, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    printf("header:\n%s\npayload:\n%s\n", hs ? hs : "", ps ? ps : "");
    json_t *exp = json_object_get(p, "exp");
    if (json_is_integer(exp)) {
        char when[RFC3339_LEN];
        util_rfc3339(json_integer_value(exp), when);
        printf("expires: %s (%s)\n", when, json_integer_value(exp) <= util_now() ? "past" : "future");
    }
    printf("signature: not verified (use `jwtd token verify`)\n");
    free(hs);
    free(ps);
    json_decref(h);
    json_decref(p);
    return 0;
}

static int verify(int argc, char **argv, const char *tok)
{
    struct config cfg;
    struct app app;
    struct keyring *kr = NULL;
    jwtd_verifier *v = NULL;
    jwtd_claims *c = NULL;
    int rc = cli_open(argc, argv, &cfg, &app, APP_READ_ONLY);
    if (rc != 0)
        goto out;
    rc = 1;
    char err[256];
    kr = keyring_new(&cfg, app.store);
    bool loaded = kr && (cfg.alg == JWTD_ALG_HS256 ? keyring_start(kr, err, sizeof err)
                                                   : keyring_reload(kr));
    if (!loaded) {
        fprintf(stderr, "jwtd: cannot load the signing keys\n");
        goto out;
    }
    if (jwtd_verifier_new(&v) != JWTD_OK ||
        jwtd_verifier_set_algs(v, cfg.alg == JWTD_ALG_HS256 ? JWTD_ALG_HS256
                                                            : JWTD_ALGS_ASYMMETRIC) != JWTD_OK ||
        jwtd_verifier_set_issuer(v, cfg.issuer) != JWTD_OK ||
        jwtd_verifier_set_audience(v, cfg.audience) != JWTD_OK ||
        jwtd_verifier_set_leeway(v, cfg.leeway) != JWTD_OK) {
        fprintf(stderr, "jwtd: cannot configure the verifier\n");
        goto out;
    }
    jwtd_err e = keyring_verify(kr, v, tok, strlen(tok), util_now(), &c, NULL);
    if (e != JWTD_OK) {
        printf("invalid: %s\n", jwtd_strerror(e));
        if (e == JWTD_ERR_ISSUER || e == JWTD_ERR_AUDIENCE)
            explain_mismatch(e, tok, &cfg);
        goto out;
    }
    char *json = jwtd_claims_json(c);
    printf("valid: kid=%s alg=%s sub=%s sid=%s\n%s\n", jwtd_claims_kid(c),
           jwtd_alg_name(jwtd_claims_alg(c)), jwtd_claims_sub(c), jwtd_claims_sid(c),
           json ? json : "");
    free(json);
    printf("note: revocation is not checked here (a running server checks it)\n");
    rc = 0;
out:
    jwtd_claims_free(c);
    jwtd_verifier_free(v);
    keyring_free(kr);
    cli_close(&cfg, &app);
    return rc;
}

static const struct cli_cmd inspect_cmd = {
    "jwtd token inspect TOKEN",
    "Decode a token's header and claims for a human. Nothing is verified, and nothing\n"
    "is opened: no configuration, no database. TOKEN - reads it from stdin (out of\n"
    "ps and the shell's history).",
    NULL, 1, 1, true};
static const struct cli_cmd verify_cmd = {
    "jwtd token verify TOKEN",
    "Verify a token with this server's keys and settings (issuer, audience, leeway,\n"
    "algorithms) and print its claims, or why it is refused. Revocation is not checked\n"
    "(a running server checks it). Only reads: never creates a database. TOKEN - reads\n"
    "it from stdin.",
    NULL, 1, 1, false};

int cmd_token(int argc, char **argv)
{
    static const char usage[] =
        "usage: jwtd token inspect TOKEN | verify TOKEN   (jwtd token <command> --help)\n";
    if (argc < 1 || strcmp(argv[0], "--help") == 0 || strcmp(argv[0], "-h") == 0) {
        fputs(usage, argc < 1 ? stderr : stdout);
        return argc < 1 ? 2 : 0;
    }
    const struct cli_cmd *cmd = strcmp(argv[0], "inspect") == 0  ? &inspect_cmd
                                : strcmp(argv[0], "verify") == 0 ? &verify_cmd
                                                                 : NULL;
    if (!cmd) {
        fprintf(stderr, "jwtd: unknown command 'token %.40s'\n%s", argv[0], usage);
        return 2;
    }
    struct cli_args a;
    int rc = cli_parse(argc - 1, argv + 1, cmd, &a);
    if (rc == 0 && a.help)
        cli_help(cmd);
    char line[JWTD_MAX_TOKEN_LEN + 8];
    if (rc == 0 && !a.help) {
        const char *tok = cli_arg_or_stdin(a.pos[0], "TOKEN", line, sizeof line);
        if (!tok)
            rc = 2;
        else if (cmd == &inspect_cmd)
            rc = inspect(tok);
        else
            rc = verify(a.nrest, a.rest, tok);
        OPENSSL_cleanse(line, sizeof line);
    }
    cli_args_free(&a);
    return rc;
}
