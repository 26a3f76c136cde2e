/* SPDX-License-Identifier: Apache-2.0 */
/*
 * `jwtd user add|import|list|delete`: account administration on the
 * configured database, applying the same rules as the API (username rules,
 * password policy, argon2id parameters). Passwords come from stdin, never
 * from the command line (where `ps` would show them).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "cli/cli.h"
#include "core/log.h"
#include "core/password.h"
#include "core/util.h"

static void usage(void)
{
    fprintf(stderr, "usage: jwtd user add USERNAME            (password on stdin)\n"
                    "       jwtd user import USERNAME --password-hash HASH\n"
                    "       jwtd user list\n"
                    "       jwtd user delete USERNAME\n");
}

static int create(struct store *store, const char *username, const char *hash)
{
    struct store_user u = {.created_at = util_now(), .password_hash = (char *)hash};
    if (!util_uuid7(u.id))
        return 1;
    snprintf(u.username, sizeof u.username, "%s", username);
    enum store_rc rc = STORE_CALL(store, user_create, &u);
    if (rc == STORE_CONFLICT) {
        fprintf(stderr, "jwtd: username '%s' is already taken\n", username);
        return 1;
    }
    if (rc != STORE_OK) {
        fprintf(stderr, "jwtd: cannot store the user (%s)\n", store_rc_name(rc));
        return 1;
    }
    printf("%s\t%s\n", u.id, u.username);
    return 0;
}

static int user_add(struct config *cfg, struct store *store, const char *username)
{
    char line[PASSWORD_MAX_BYTES + 4];
    if (!fgets(line, sizeof line, stdin)) {
        fprintf(stderr, "jwtd: give the password on stdin\n");
        return 2;
    }
    size_t n = strcspn(line, "\r\n");
    line[n] = '\0';
    struct password_policy *pp = password_policy_new();
    const char *weak = pp ? password_policy_check(pp, username, line, n) : "no memory";
    password_policy_free(pp);
    if (weak) {
        OPENSSL_cleanse(line, sizeof line);
        fprintf(stderr, "jwtd: weak password: %s\n", weak);
        return 1;
    }
    struct password_params p = {cfg->argon2_memory_kib, cfg->argon2_iterations,
                                cfg->argon2_parallelism};
    char *hash = NULL;
    enum password_rc prc = password_hash(&p, line, n, &hash);
    OPENSSL_cleanse(line, sizeof line);
    if (prc != PASSWORD_OK) {
        fprintf(stderr, "jwtd: cannot hash the password\n");
        return 1;
    }
    int rc = create(store, username, hash);
    password_hash_free(hash);
    return rc;
}

static void print_user(void *ctx, const struct store_user *u, const char *scheme)
{
    (void)ctx;
    char created[RFC3339_LEN];
    util_rfc3339(u->created_at, created);
    printf("%s\t%s\t%s\t%s\n", u->id, u->username, created, scheme);
}

static int user_delete(struct config *cfg, struct store *store, const char *username)
{
    struct store_user u = {0};
    enum store_rc rc = STORE_CALL(store, user_by_name, username, &u);
    if (rc == STORE_NOT_FOUND) {
        fprintf(stderr, "jwtd: no user '%s'\n", username);
        return 1;
    }
    if (rc != STORE_OK) {
        fprintf(stderr, "jwtd: cannot read the user (%s)\n", store_rc_name(rc));
        return 1;
    }
    int64_t now = util_now_ms();
    struct revocation rev = {now, now + (cfg->access_ttl + cfg->leeway + 5) * 1000};
    rc = STORE_CALL(store, user_delete, u.id, &rev);
    store_user_clear(&u);
    if (rc != STORE_OK) {
        fprintf(stderr, "jwtd: cannot delete the user (%s)\n", store_rc_name(rc));
        return 1;
    }
    printf("deleted %s\n", username);
    return 0;
}

int cmd_user(int argc, char **argv)
{
    if (argc < 1) {
        usage();
        return 2;
    }
    const char *sub = argv[0];
    const char *username = NULL, *hash = NULL;
    int first_flag = 1;
    if (strcmp(sub, "add") == 0 || strcmp(sub, "import") == 0 || strcmp(sub, "delete") == 0) {
        if (argc < 2 || strncmp(argv[1], "--", 2) == 0) {
            usage();
            return 2;
        }
        username = argv[1];
        first_flag = 2;
        if (!username_valid(username, strlen(username))) {
            fprintf(stderr, "jwtd: invalid username: 3-128 characters of letters, digits and . _ - @ +\n");
            return 2;
        }
    } else if (strcmp(sub, "list") != 0) {
        usage();
        return 2;
    }
    /* --password-hash belongs to import; everything else is a setting. */
    char **rest = calloc((size_t)argc + 1, sizeof *rest);
    int nrest = 0;
    if (!rest)
        return 1;
    for (int i = first_flag; i < argc; i++) {
        if (strcmp(argv[i], "--password-hash") == 0 && i + 1 < argc)
            hash = argv[++i];
        else if (strncmp(argv[i], "--password-hash=", 16) == 0)
            hash = argv[i] + 16;
        else
            rest[nrest++] = argv[i];
    }
    if (strcmp(sub, "import") == 0 && !hash) {
        free(rest);
        usage();
        return 2;
    }
    struct config cfg;
    struct store *store = NULL;
    int rc = 1;
    if (!cli_open(nrest, rest, &cfg, &store))
        goto out;
    if (strcmp(sub, "add") == 0) {
        rc = user_add(&cfg, store, username);
    } else if (strcmp(sub, "import") == 0) {
        if (!password_hash_supported(hash)) {
            fprintf(stderr, "jwtd: unsupported hash: give a bcrypt ($2a$/$2b$/$2y$) or "
                            "argon2id PHC string\n");
            rc = 2;
        } else {
            rc = create(store, username, hash);
        }
    } else if (strcmp(sub, "list") == 0) {
        enum store_rc src = STORE_CALL(store, user_list, print_user, NULL);
        rc = src == STORE_OK ? 0 : 1;
    } else {
        rc = user_delete(&cfg, store, username);
    }
out:
    store_close(store);
    config_free(&cfg);
    free(rest);
    return rc;
}
