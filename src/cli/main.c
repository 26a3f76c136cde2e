/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The `jwtd` command: one binary, subcommands like git's. This is the only
 * file that decides exit codes for the whole process.
 */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"

#ifndef JWTD_VERSION
#define JWTD_VERSION "0.0.0"
#endif

static void usage(FILE *f)
{
    fprintf(f, "usage: jwtd <command> [arguments]\n\n"
               "commands:\n"
               "  serve [--setting=value ...]      run the server (see jwtd serve --help)\n"
               "  migrate                          apply database migrations and exit\n"
               "  user add USERNAME                create a user (password read from stdin)\n"
               "  user import USERNAME --password-hash HASH\n"
               "                                   import a user with a bcrypt or argon2id hash\n"
               "  user list                        list users (id, username, created, hash scheme)\n"
               "  user delete USERNAME             delete a user and end its sessions\n"
               "  keys list                        list signing keys and their states\n"
               "  keys rotate [--now]              create the next signing key (promote now)\n"
               "  keys retire KID [--purge]        retire a key (published until its tokens expire;\n"
               "                                   --purge: distrust it now, for a compromised key)\n"
               "  token inspect TOKEN              decode a token (no verification)\n"
               "  token verify TOKEN               verify a token against this server's keys\n"
               "  version                          print the version\n\n"
               "Every command reads the JWTD_* settings from the environment\n"
               "(JWTD_DATABASE in particular) and accepts them as --flags.\n");
}

int main(int argc, char **argv)
{
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
    if (strcmp(cmd, "version") == 0 || strcmp(cmd, "--version") == 0) {
        printf("jwtd %s\n", JWTD_VERSION);
        return 0;
    }
    if (strcmp(cmd, "help") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0) {
        usage(stdout);
        return 0;
    }
    fprintf(stderr, "jwtd: unknown command '%s'\n", cmd);
    usage(stderr);
    return 2;
}
