/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The `jwtd` command: one binary, subcommands like git's. This is the only
 * file that decides exit codes for the whole process: 0 done, 1 failed, 2
 * usage or configuration error.
 */
#include <jansson.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "base/util.h"
#include "cli/cli.h"

#ifndef JWTD_VERSION
#define JWTD_VERSION "0.0.0"
#endif

static void usage(FILE *f)
{
    fprintf(f, "usage: jwtd <command> [arguments]   (jwtd <command> --help for each)\n\n"
               "commands:\n"
               "  serve                            run the server (jwtd serve --help: every setting)\n"
               "  migrate                          create or upgrade the database and exit\n"
               "  user add|import|list|show|delete|passwd|disable|enable|unlock|logout|\n"
               "       reset-link|mfa-reset\n"
               "                                   account administration (jwtd user --help)\n"
               "  keys list|rotate|retire          the signing-key life cycle\n"
               "  token inspect|verify TOKEN       decode or verify a token\n"
               "  config check|settings            show the configuration as jwtd reads it\n"
               "  version                          print the version\n\n"
               "Every command reads the same configuration as the server: --config PATH, else\n"
               "$JWTD_CONFIG, else " CONFIG_DEFAULT_FILE " when it exists" CONFIG_FALLBACK_HELP("") ";\n"
               "then JWTD_* variables, then --name=value flags.\n"
               "Exit status: 0 done, 1 failed, 2 usage or configuration error.\n");
}

int cmd_version(int argc, char **argv)
{
    static const struct cli_cmd version_cmd = {
        "jwtd version", "Print the version of jwtd (also: jwtd --version).", NULL, 0, 0, true};
    struct cli_args a;
    int rc = cli_parse(argc, argv, &version_cmd, &a);
    if (rc == 0 && a.help)
        cli_help(&version_cmd);
    else if (rc == 0)
        printf("jwtd %s\n", JWTD_VERSION);
    cli_args_free(&a);
    return rc;
}

/* Jansson's memory is wiped when it is freed: parsed request bodies hold
 * passwords, refresh tokens and one-time codes, and the copies of their
 * strings would otherwise stay in freed heap memory (the request buffer
 * itself is wiped by the server). */
static void json_wipe_free(void *p)
{
    if (p) {
        explicit_bzero(p, malloc_usable_size(p));
        free(p);
    }
}

int main(int argc, char **argv)
{
    json_set_alloc_funcs(malloc, json_wipe_free);
    /* What jwtd creates (the SQLite database and its journal) holds keys
     * and password hashes: nobody else's business, whatever the umask. */
    umask(077);
    /* Tests move time with a clock file (docs/testing.md); never in
     * production, and `jwtd serve` says so loudly. */
    const char *clock = getenv("JWTD_TEST_CLOCK");
    if (clock && *clock && !util_test_clock(clock)) {
        fprintf(stderr, "jwtd: JWTD_TEST_CLOCK: cannot map %s\n", clock);
        return 2;
    }
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "serve") == 0)
        return cmd_serve(argc - 2, argv + 2);
    if (strcmp(cmd, "user") == 0)
        return cmd_user(argc - 2, argv + 2);
    if (strcmp(cmd, "keys") == 0)
        return cmd_keys(argc - 2, argv + 2);
    if (strcmp(cmd, "token") == 0)
        return cmd_token(argc - 2, argv + 2);
    if (strcmp(cmd, "migrate") == 0)
        return cmd_migrate(argc - 2, argv + 2);
    if (strcmp(cmd, "config") == 0)
        return cmd_config(argc - 2, argv + 2);
    if (strcmp(cmd, "version") == 0 || strcmp(cmd, "--version") == 0)
        return cmd_version(argc - 2, argv + 2);
    if (strcmp(cmd, "help") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0) {
        usage(stdout);
        return 0;
    }
    fprintf(stderr, "jwtd: unknown command '%.40s'\n", cmd);
    usage(stderr);
    return 2;
}
