/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Subcommands of the `jwtd` binary. Each returns the process exit status:
 * 0 success, 1 runtime failure, 2 usage or configuration error.
 */
#ifndef JWTD_CLI_H
#define JWTD_CLI_H

#include "core/config.h"
#include "store/store.h"

int cmd_serve(int argc, char **argv);
int cmd_user(int argc, char **argv);
int cmd_keys(int argc, char **argv);
int cmd_token(int argc, char **argv);
int cmd_migrate(int argc, char **argv);

/*
 * Shared set-up of the operator commands: load the configuration from the
 * environment and the given flags, open and migrate the database. Prints
 * the reason and returns false on failure.
 */
bool cli_open(int argc, char **argv, struct config *cfg, struct store **ret_store);

/* A database URL safe to print (password removed). */
void cli_redact_url(const char *url, char *out, size_t cap);

#endif /* JWTD_CLI_H */
