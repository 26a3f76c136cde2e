/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Subcommands of the `jwtd` binary. Each returns the process exit status:
 * 0 success, 1 runtime failure, 2 usage or configuration error.
 */
#ifndef JWTD_CLI_H
#define JWTD_CLI_H

#include <stdbool.h>
#include <stddef.h>

#include "core/app.h"
#include "core/config.h"
#include "core/service.h"

int cmd_serve(int argc, char **argv);
int cmd_user(int argc, char **argv);
int cmd_keys(int argc, char **argv);
int cmd_token(int argc, char **argv);
int cmd_migrate(int argc, char **argv);
int cmd_config(int argc, char **argv);
int cmd_version(int argc, char **argv);

/* An option of a subcommand: a flag (value NULL, *present set) or an
 * option with a value (*value set). */
struct cli_opt {
    const char *name; /* "--now" */
    const char **value;
    bool *present;
};

struct cli_cmd {
    const char *usage;            /* "jwtd user add USERNAME [--password-stdin]" */
    const char *help;             /* what it does, and its options */
    const struct cli_opt *opts;   /* NULL-name terminated, or NULL */
    int min_pos, max_pos;         /* positional arguments after the subcommand */
    bool standalone;              /* reads no configuration: no --config, no settings */
};

#define CLI_MAX_POS 4

struct cli_args {
    const char *pos[CLI_MAX_POS];
    int npos;
    char **rest;                  /* settings and --config, for config_load */
    int nrest;
    bool help;
    bool error;
};

/* Split argv (after the subcommand's name) into positional arguments, the
 * command's options and the rest. 0 when fine (or --help: ret->help), 2 for
 * a usage error (printed). cli_args_free afterwards. */
int cli_parse(int argc, char **argv, const struct cli_cmd *cmd, struct cli_args *ret);
void cli_args_free(struct cli_args *a);

/* Print a command's usage and help to stdout. */
void cli_help(const struct cli_cmd *cmd);

/*
 * Shared set-up of the operator commands: load the configuration (file,
 * environment, the given flags), then open the app in `mode` (database
 * opened and migrated; APP_READ_ONLY never creates one). Prints the reason
 * and returns 2 (configuration) or 1 (runtime) on failure, 0 on success;
 * cli_close undoes either.
 */
int cli_open(int argc, char **argv, struct config *cfg, struct app *app, enum app_mode mode);
/* The two halves of cli_open, for a command that checks the configuration
 * before it opens anything. cli_close after either. */
int cli_config(int argc, char **argv, struct config *cfg, struct app *app);
int cli_open_app(struct config *cfg, struct app *app, enum app_mode mode);
void cli_close(struct config *cfg, struct app *app);

/* Say which JWTD_* variables of the environment jwtd ignores (a typo:
 * JWTD_DATBASE), as log events (as_log: `jwtd serve`, whose stderr is its
 * log) or as "jwtd: warning:" lines on stderr. Every command does, once. */
void cli_warn_unknown_env(bool as_log);

/* An argument that may be a secret (a token, a password hash): "-" reads it
 * from the first line of stdin into buf (so that `ps` and the shell's
 * history never see it), anything else is the value itself. NULL, said on
 * stderr as `what`, when stdin has no line or too long a one. */
const char *cli_arg_or_stdin(const char *arg, const char *what, char *buf, size_t cap);

/* What an operator should hear about a configuration that loads: the
 * issuer trap, a long access lifetime, a secret in a readable file, the
 * test clock (and, as_log, unknown JWTD_* variables): log events at start-up
 * (as_log), lines on stderr for `jwtd config check`. */
void cli_config_warnings(const struct config *cfg, bool as_log);

/*
 * Read a password: from a terminal with echo off (prompt on stderr, asked
 * twice when confirm), otherwise (or with force_stdin) one line of stdin.
 * The result is in out (NUL-terminated, wiped on failure). Exit status.
 */
int cli_read_password(const char *prompt, bool force_stdin, bool confirm, char *out, size_t cap,
                      size_t *ret_len);

/* Print a failed service result as one line; its exit status. */
int cli_fail(const struct svc_result *res);

/* The status name of the last cli_fail ("failed" when none): the reason of
 * a failed command's audit event. */
const char *cli_last_failure(void);

#endif /* JWTD_CLI_H */
