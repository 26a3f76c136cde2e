/* SPDX-License-Identifier: Apache-2.0 */
/*
 * `jwtd keys list|rotate|retire`: the signing-key life cycle, on the
 * configured database. Running servers pick changes up within
 * JWTD_KEYRING_POLL (or at once when they meet a token with a new kid).
 *
 * Commands only load the ring: they never make keys current or retire keys
 * of another algorithm at start the way `jwtd serve` does, and the signing
 * algorithm changes only when --alg says so.
 */
#include <stdio.h>
#include <string.h>

#include "base/util.h"
#include "cli/cli.h"
#include "core/audit.h"
#include "core/keyring.h"

static bool now_opt, purge_opt;
static const char *alg_opt;

static const struct cli_opt rotate_opts[] = {
    {"--now", NULL, &now_opt},
    {"--alg", &alg_opt, NULL},
    {NULL, NULL, NULL},
};
static const struct cli_opt retire_opts[] = {
    {"--purge", NULL, &purge_opt},
    {"--now", NULL, &now_opt},
    {NULL, NULL, NULL},
};

static const struct cli_cmd list_cmd = {
    "jwtd keys list",
    "List signing keys: kid, algorithm, state (next, current, retired, removed) and\n"
    "dates.\n"
    "Only reads: never creates a database.",
    NULL, 0, 0, false};
static const struct cli_cmd rotate_cmd = {
    "jwtd keys rotate [--now] [--alg ALG]",
    "Create the next signing key. It is published in the JWKS at once and starts signing\n"
    "after JWTD_KEY_PUBLISH_AHEAD, so that every verifier has it first; --now makes it\n"
    "sign at once (verifiers that cache the JWKS may refuse its tokens until they\n"
    "fetch it again).\n"
    "The algorithm is the configuration's (JWTD_JWT_ALG). When the current key has\n"
    "another algorithm the command stops rather than change it; --alg ALG publishes a\n"
    "key of ALG ahead, which servers sign with once their JWTD_JWT_ALG says ALG.",
    rotate_opts, 0, 0, false};
static const struct cli_cmd retire_cmd = {
    "jwtd keys retire KID [--now] [--purge]",
    "Retire a key: it stops signing (a next key takes over) and stays in the JWKS until\n"
    "the tokens it signed expired. The current key is retired only when a next key\n"
    "(jwtd keys rotate) has been published for JWTD_KEY_PUBLISH_AHEAD, unless --now.\n"
    "--purge distrusts it at once, for a compromised key (and implies --now).",
    retire_opts, 1, 1, false};

static void print_key(void *ctx, const struct store_key *k)
{
    ++*(int *)ctx;
    char created[RFC3339_LEN], act[RFC3339_LEN], rem[RFC3339_LEN];
    util_rfc3339(k->created_at, created);
    util_rfc3339(k->activate_at, act);
    if (k->remove_at)
        util_rfc3339(k->remove_at, rem);
    else
        snprintf(rem, sizeof rem, "-");
    /* A retired key past its removal time (its tokens expired, or purged)
     * is trusted by no one any more: "removed", as docs/operations.md
     * names the state, until the server deletes the row. */
    bool removed = k->state == KEY_RETIRED && k->remove_at && k->remove_at <= util_now();
    printf("%s\t%s\t%s\tcreated=%s\tactive_from=%s\tremoved_at=%s\n", k->kid, k->alg,
           removed ? "removed" : store_key_state_name(k->state), created, act, rem);
}

struct current_alg {
    char alg[16];
    bool found;
    /* the next keys already published (one per algorithm at most) */
    struct {
        char kid[KID_MAX + 1];
        int64_t created_at, activate_at;
    } next[4];
    int n_next;
};

static void find_current(void *ctx, const struct store_key *k)
{
    struct current_alg *c = ctx;
    if (k->state == KEY_CURRENT) {
        snprintf(c->alg, sizeof c->alg, "%s", k->alg);
        c->found = true;
    } else if (k->state == KEY_NEXT && c->n_next < 4) {
        snprintf(c->next[c->n_next].kid, sizeof c->next[0].kid, "%s", k->kid);
        c->next[c->n_next].created_at = k->created_at;
        c->next[c->n_next].activate_at = k->activate_at;
        c->n_next++;
    }
}

/* What rotate checks before anything is opened (a usage error creates no
 * database). The algorithm to rotate, or 0 with the exit status in *rc. */
static jwtd_alg rotate_target(const struct config *cfg, int *rc)
{
    jwtd_alg target = cfg->alg;
    if (alg_opt && (!(target = jwtd_alg_from_name(alg_opt)) || target == JWTD_ALG_HS256)) {
        fprintf(stderr, "jwtd: --alg: ES256, EdDSA or RS256\n");
        *rc = 2;
        return 0;
    }
    if (target == JWTD_ALG_HS256) {
        fprintf(stderr, "jwtd: HS256 uses JWTD_JWT_SECRET: rotate it by changing the setting\n");
        *rc = 1;
        return 0;
    }
    return target;
}

static int rotate(struct config *cfg, struct app *app, const struct svc_ctx *ctx, jwtd_alg target)
{
    struct current_alg cur = {0};
    if (store_keys_list(app->store, find_current, &cur) != STORE_OK) {
        fprintf(stderr, "jwtd: cannot read signing keys from storage\n");
        return 1;
    }
    /* A change of algorithm: from the current key's, or on a database
     * without one, from the configuration's (a key of another algorithm
     * made current there would sign under a server configured for its
     * own). */
    const char *from = cur.found ? cur.alg : jwtd_alg_name(cfg->alg);
    bool change = strcmp(from, jwtd_alg_name(target)) != 0;
    if (change && !alg_opt) {
        char src[200];
        config_source_text(cfg, config_setting_index("JWTD_JWT_ALG"), src, sizeof src);
        fprintf(stderr,
                "jwtd: the current signing key is %s but this configuration says %s "
                "(JWTD_JWT_ALG, %s).\n"
                "      Nothing changed. Is this the server's configuration (--config)? To rotate "
                "the %s key: --alg %s; to change the algorithm on purpose: --alg %s.\n",
                cur.alg, jwtd_alg_name(target), src, cur.alg, cur.alg, jwtd_alg_name(target));
        AUDIT(LOG_WARN, ctx, "keys_rotate", "refused", NULL, LF_S("alg", jwtd_alg_name(target)),
              LF_S("current_alg", cur.alg), LF_S("reason", "algorithm change without --alg"));
        return 1;
    }
    if (change && now_opt) {
        fprintf(stderr, "jwtd: an algorithm change is published ahead, never --now: servers "
                        "switch to it when their JWTD_JWT_ALG says %s\n",
                jwtd_alg_name(target));
        return 2;
    }
    cfg->alg = target; /* the ring rotates keys of this algorithm */
    struct keyring *kr = keyring_new(cfg, app->store);
    char err[256], newkid[KID_MAX + 1];
    int rc = 1;
    if (!kr || !keyring_reload(kr)) {
        fprintf(stderr, "jwtd: cannot read signing keys from storage\n");
    } else if (!keyring_rotate(kr, now_opt, newkid, err, sizeof err)) {
        fprintf(stderr, "jwtd: %s\n", err);
        AUDIT(LOG_WARN, ctx, "keys_rotate", "failed", NULL, LF_S("alg", jwtd_alg_name(target)),
              LF_S("reason", err));
    } else {
        AUDIT(LOG_INFO, ctx, "keys_rotate", "ok", NULL, LF_S("kid", newkid),
              LF_S("alg", jwtd_alg_name(target)), LF_S("state", now_opt ? "current" : "next"),
              LF_B("algorithm_change", change));
        /* rotate makes a next key only when none is published yet; the
         * one that is keeps its own time (and, after a compromise of the
         * database, is as compromised as the current one). */
        int existed = -1;
        for (int i = 0; i < cur.n_next; i++)
            if (strcmp(cur.next[i].kid, newkid) == 0)
                existed = i;
        char created[RFC3339_LEN];
        if (existed >= 0)
            util_rfc3339(cur.next[existed].created_at, created);
        if (now_opt)
            printf("%s\tcurrent (signing now)\n", newkid);
        else if (existed >= 0) {
            int64_t left = cur.next[existed].activate_at - util_now();
            printf("%s\tnext (signs from %lld s from now)\n", newkid,
                   (long long)(left > 0 ? left : 0));
        } else if (change)
            printf("%s\tnext, %s (published now; servers sign with it once JWTD_JWT_ALG=%s and "
                   "they restart, no sooner than %lld s from now)\n",
                   newkid, jwtd_alg_name(target), jwtd_alg_name(target),
                   (long long)cfg->key_publish_ahead);
        else
            printf("%s\tnext (signs from %lld s from now)\n", newkid,
                   (long long)cfg->key_publish_ahead);
        if (existed >= 0 && now_opt)
            fprintf(stderr, "jwtd: no new key was made: %s, published ahead at %s, signs from "
                            "now. After a compromise of the database it is as exposed as the "
                            "old one: `jwtd keys rotate --now` again makes a new key.\n",
                    newkid, created);
        else if (existed >= 0)
            fprintf(stderr, "jwtd: no new key was made: %s was published ahead at %s. After a "
                            "compromise of the database: `jwtd keys retire %s --purge`, then "
                            "rotate again.\n",
                    newkid, created, newkid);
        rc = 0;
    }
    keyring_free(kr);
    return rc;
}

static int retire(struct config *cfg, struct app *app, const struct svc_ctx *ctx, const char *kid)
{
    struct keyring *kr = keyring_new(cfg, app->store);
    char err[512], next[KID_MAX + 1] = "";
    int rc = 1;
    if (!kr || !keyring_reload(kr)) {
        fprintf(stderr, "jwtd: cannot read signing keys from storage\n");
    } else if (!keyring_retire(kr, kid, purge_opt, now_opt, next, err, sizeof err)) {
        fprintf(stderr, "jwtd: %s\n", err);
        AUDIT(LOG_WARN, ctx, "keys_retire", "failed", NULL, LF_S("kid", kid),
              LF_B("purge", purge_opt), LF_S("reason", err));
    } else {
        AUDIT(LOG_INFO, ctx, "keys_retire", "ok", NULL, LF_S("kid", kid), LF_B("purge", purge_opt));
        printf("%s\t%s\n", kid, purge_opt ? "retired and distrusted now" : "retired");
        if (next[0])
            printf("%s\tcurrent: signs from now\n", next);
        rc = 0;
    }
    keyring_free(kr);
    return rc;
}

int cmd_keys(int argc, char **argv)
{
    static const char usage[] = "usage: jwtd keys list | rotate [--now] [--alg ALG] | "
                                "retire KID [--now] [--purge]   (jwtd keys <command> --help)\n";
    if (argc < 1 || strcmp(argv[0], "--help") == 0 || strcmp(argv[0], "-h") == 0) {
        fputs(usage, argc < 1 ? stderr : stdout);
        return argc < 1 ? 2 : 0;
    }
    const struct cli_cmd *cmd = strcmp(argv[0], "list") == 0     ? &list_cmd
                                : strcmp(argv[0], "rotate") == 0 ? &rotate_cmd
                                : strcmp(argv[0], "retire") == 0 ? &retire_cmd
                                                                 : NULL;
    if (!cmd) {
        fprintf(stderr, "jwtd: unknown command 'keys %.40s'\n%s", argv[0], usage);
        return 2;
    }
    now_opt = purge_opt = false;
    alg_opt = NULL;
    struct cli_args a;
    int rc = cli_parse(argc - 1, argv + 1, cmd, &a);
    if (rc == 0 && a.help)
        cli_help(cmd);
    if (rc != 0 || a.help) {
        cli_args_free(&a);
        return rc;
    }
    struct config cfg;
    struct app app;
    struct svc_ctx ctx;
    svc_ctx_operator(&ctx);
    jwtd_alg target = 0;
    rc = cli_config(a.nrest, a.rest, &cfg, &app);
    if (rc == 0 && cmd == &rotate_cmd)
        target = rotate_target(&cfg, &rc);
    /* Rotation may make the database (keys before the first start); the
     * others act on what exists. */
    if (rc == 0)
        rc = cli_open_app(&cfg, &app, cmd == &list_cmd     ? APP_READ_ONLY
                                      : cmd == &rotate_cmd ? APP_COMMAND
                                                           : APP_EXISTING);
    if (rc == 0) {
        int listed = 0;
        if (cmd == &list_cmd) {
            rc = store_keys_list(app.store, print_key, &listed) == STORE_OK ? 0 : 1;
            /* After the list, so it reads as a remark on what was listed. */
            if (rc == 0 && cfg.alg == JWTD_ALG_HS256)
                fprintf(stderr, "jwtd: HS256: tokens are signed with JWTD_JWT_SECRET and no key "
                                "is published%s\n",
                        listed ? "; the keys above are not used while it is set" : "");
            else if (rc == 0 && !listed)
                /* Nothing on stdout for a script; a word for a person. */
                fprintf(stderr, "jwtd: no signing keys yet: `jwtd serve` makes one on its first "
                                "start, `jwtd keys rotate` makes one now\n");
        } else if (cmd == &rotate_cmd) {
            rc = rotate(&cfg, &app, &ctx, target);
        } else {
            rc = retire(&cfg, &app, &ctx, a.pos[0]);
        }
    }
    cli_close(&cfg, &app);
    cli_args_free(&a);
    return rc;
}
