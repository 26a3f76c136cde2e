/* SPDX-License-Identifier: Apache-2.0 */
/*
 * `jwtd keys list|rotate|retire`: the signing-key life cycle, on the
 * configured database. Running servers pick changes up within
 * JWTD_KEYRING_POLL (or at once when they meet a token with a new kid).
 */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "core/keyring.h"
#include "core/util.h"

static void print_key(void *ctx, const struct store_key *k)
{
    (void)ctx;
    char created[RFC3339_LEN], act[RFC3339_LEN], rem[RFC3339_LEN];
    util_rfc3339(k->created_at, created);
    util_rfc3339(k->activate_at, act);
    if (k->remove_at)
        util_rfc3339(k->remove_at, rem);
    else
        snprintf(rem, sizeof rem, "-");
    printf("%s\t%s\t%s\tcreated=%s\tactive_from=%s\tremoved_at=%s\n", k->kid, k->alg,
           store_key_state_name(k->state), created, act, rem);
}

int cmd_keys(int argc, char **argv)
{
    if (argc < 1) {
        fprintf(stderr, "usage: jwtd keys list | rotate [--now] | retire KID [--purge]\n");
        return 2;
    }
    const char *sub = argv[0];
    bool now = false, purge = false;
    const char *kid = NULL;
    char *rest[64];
    int nrest = 0;
    for (int i = 1; i < argc && nrest < 64; i++) {
        if (strcmp(sub, "rotate") == 0 && strcmp(argv[i], "--now") == 0)
            now = true;
        else if (strcmp(sub, "retire") == 0 && strcmp(argv[i], "--purge") == 0)
            purge = true;
        else if (strcmp(sub, "retire") == 0 && !kid && strncmp(argv[i], "--", 2) != 0)
            kid = argv[i];
        else
            rest[nrest++] = argv[i];
    }
    if ((strcmp(sub, "retire") == 0 && !kid) ||
        (strcmp(sub, "list") != 0 && strcmp(sub, "rotate") != 0 && strcmp(sub, "retire") != 0)) {
        fprintf(stderr, "usage: jwtd keys list | rotate [--now] | retire KID [--purge]\n");
        return 2;
    }
    struct config cfg;
    struct store *store = NULL;
    int rc = 1;
    if (!cli_open(nrest, rest, &cfg, &store))
        goto out;
    if (strcmp(sub, "list") == 0) {
        rc = STORE_CALL(store, keys_list, print_key, NULL) == STORE_OK ? 0 : 1;
        goto out;
    }
    struct keyring *kr = keyring_new(&cfg, store);
    char err[256];
    if (!kr || !keyring_start(kr, err, sizeof err)) {
        fprintf(stderr, "jwtd: %s\n", kr ? err : "out of memory");
        keyring_free(kr);
        goto out;
    }
    if (strcmp(sub, "rotate") == 0) {
        char newkid[KID_MAX + 1];
        if (keyring_rotate(kr, now, newkid, err, sizeof err)) {
            if (now)
                printf("%s\tcurrent (signing now)\n", newkid);
            else
                printf("%s\tnext (signs from %lld s from now)\n", newkid,
                       (long long)cfg.key_publish_ahead);
            rc = 0;
        } else {
            fprintf(stderr, "jwtd: %s\n", err);
        }
    } else {
        if (keyring_retire(kr, kid, purge, err, sizeof err)) {
            printf("%s\t%s\n", kid, purge ? "retired and distrusted now" : "retired");
            rc = 0;
        } else {
            fprintf(stderr, "jwtd: %s\n", err);
        }
    }
    keyring_free(kr);
out:
    store_close(store);
    config_free(&cfg);
    return rc;
}
