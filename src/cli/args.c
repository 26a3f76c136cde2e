/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Argument parsing shared by the subcommands, password input, and the
 * set-up every command shares (configuration, app). Every subcommand takes
 * --help (usage on stdout, exit 0, nothing opened), its own options, and
 * any setting as --name=value (or --name value) plus --config PATH, which
 * go to config_load.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "base/log.h"
#include "cli/cli.h"

int cli_parse(int argc, char **argv, const struct cli_cmd *cmd, struct cli_args *ret)
{
    memset(ret, 0, sizeof *ret);
    ret->rest = calloc((size_t)argc + 1, sizeof *ret->rest);
    if (!ret->rest) {
        fprintf(stderr, "jwtd: out of memory\n");
        return 1;
    }
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            ret->help = true;
            continue;
        }
        if (strncmp(a, "--", 2) != 0) {
            if (ret->npos == CLI_MAX_POS) {
                fprintf(stderr, "jwtd: unexpected argument '%.60s'\n", a);
                ret->error = true;
                continue;
            }
            ret->pos[ret->npos++] = a;
            continue;
        }
        const struct cli_opt *o = NULL;
        const char *eq = strchr(a, '=');
        size_t n = eq ? (size_t)(eq - a) : strlen(a);
        for (size_t k = 0; cmd->opts && cmd->opts[k].name; k++)
            if (strlen(cmd->opts[k].name) == n && strncmp(cmd->opts[k].name, a, n) == 0)
                o = &cmd->opts[k];
        if (o) {
            if (!o->value) {
                if (eq) {
                    fprintf(stderr, "jwtd: %s takes no value\n", o->name);
                    ret->error = true;
                }
                *o->present = true;
            } else if (eq) {
                *o->value = eq + 1;
            } else if (i + 1 < argc) {
                *o->value = argv[++i];
            } else {
                fprintf(stderr, "jwtd: %s needs a value\n", o->name);
                ret->error = true;
            }
            continue;
        }
        if (cmd->standalone) {
            fprintf(stderr, "jwtd: unknown flag '%.*s' (this command reads no configuration)\n",
                    (int)(n < 60 ? n : 60), a);
            ret->error = true;
            continue;
        }
        /* A setting or --config: handed to config_load with its value. */
        ret->rest[ret->nrest++] = argv[i];
        if (!eq && i + 1 < argc && strncmp(argv[i + 1], "--", 2) != 0)
            ret->rest[ret->nrest++] = argv[++i];
    }
    if (ret->help)
        return 0;
    if (ret->error)
        return 2;
    if (ret->npos < cmd->min_pos || ret->npos > cmd->max_pos) {
        fprintf(stderr, "usage: %s\n", cmd->usage);
        return 2;
    }
    return 0;
}

void cli_args_free(struct cli_args *a)
{
    free(a->rest);
    a->rest = NULL;
}

void cli_help(const struct cli_cmd *cmd)
{
    printf("usage: %s\n\n%s\n", cmd->usage, cmd->help);
    if (cmd->standalone) {
        printf("\nOptions:\n"
               "  --help                 this text\n"
               "Exit status: 0 done, 1 failed, 2 usage error.\n");
        return;
    }
    printf("\nCommon options:\n"
           "  --config PATH          configuration file (default " CONFIG_DEFAULT_FILE
           " when it exists)\n"
           "  --NAME=VALUE           any setting of jwtd.conf(5) (see `jwtd serve --help`)\n"
           "  --help                 this text\n"
           "Exit status: 0 done, 1 failed, 2 usage or configuration error.\n");
}

int cli_config(int argc, char **argv, struct config *cfg, struct app *app)
{
    char err[512];
    memset(app, 0, sizeof *app);
    config_defaults(cfg);
    if (!config_load(cfg, argc, argv, err, sizeof err)) {
        fprintf(stderr, "jwtd: %s\n", err);
        return 2;
    }
    /* Operator commands leave their audit trail in the system log too, next
     * to the server's (journalctl -t jwtd), as well as on stderr. */
    log_setup(cfg->log_level, cfg->log_json);
    log_to_syslog("jwtd");
    return 0;
}

int cli_open(int argc, char **argv, struct config *cfg, struct app *app, enum app_mode mode)
{
    int rc = cli_config(argc, argv, cfg, app);
    return rc ? rc : cli_open_app(cfg, app, mode);
}

int cli_open_app(struct config *cfg, struct app *app, enum app_mode mode)
{
    char err[512];
    if (!app_open(app, cfg, mode, err, sizeof err)) {
        fprintf(stderr, "jwtd: %s\n", err);
        return 1;
    }
    return 0;
}

void cli_close(struct config *cfg, struct app *app)
{
    app_close(app);
    config_free(cfg);
}

static bool read_line(int fd, char *out, size_t cap, size_t *ret_len)
{
    size_t n = 0;
    bool too_long = false;
    for (;;) {
        char ch;
        ssize_t r = read(fd, &ch, 1);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        if (ch == '\n')
            break;
        if (n + 1 < cap)
            out[n++] = ch;
        else
            too_long = true;
    }
    if (n && out[n - 1] == '\r')
        n--;
    out[n] = '\0';
    *ret_len = n;
    return !too_long;
}

int cli_read_password(const char *prompt, bool force_stdin, bool confirm, char *out, size_t cap,
                      size_t *ret_len)
{
    size_t n = 0;
    if (force_stdin || !isatty(STDIN_FILENO)) {
        if (!read_line(STDIN_FILENO, out, cap, &n)) {
            OPENSSL_cleanse(out, cap);
            fprintf(stderr, "jwtd: the password is too long\n");
            return 1;
        }
        if (n == 0) {
            fprintf(stderr, "jwtd: give the password on stdin (one line)\n");
            return 2;
        }
        *ret_len = n;
        return 0;
    }
    /* A terminal: no echo, asked twice. */
    struct termios old, quiet;
    if (tcgetattr(STDIN_FILENO, &old) != 0) {
        fprintf(stderr, "jwtd: cannot turn off the terminal's echo\n");
        return 1;
    }
    quiet = old;
    quiet.c_lflag &= ~(tcflag_t)(ECHO | ECHONL);
    quiet.c_lflag |= ICANON;
    char again[1100];
    size_t m = 0;
    int rc = 0;
    for (int tries = 0; tries < (confirm ? 2 : 1); tries++) {
        /* Echo off first, then the prompt: what is typed the moment the
         * prompt shows is neither echoed nor discarded. */
        tcsetattr(STDIN_FILENO, TCSANOW, &quiet);
        fprintf(stderr, "%s", tries ? "Again: " : prompt);
        fflush(stderr);
        bool fits = tries ? read_line(STDIN_FILENO, again, sizeof again, &m)
                          : read_line(STDIN_FILENO, out, cap, &n);
        tcsetattr(STDIN_FILENO, TCSANOW, &old);
        fprintf(stderr, "\n");
        if (!fits) {
            fprintf(stderr, "jwtd: the password is too long\n");
            rc = 1;
            break;
        }
    }
    if (rc == 0 && n == 0) {
        fprintf(stderr, "jwtd: no password given\n");
        rc = 2;
    }
    if (rc == 0 && confirm && (m != n || CRYPTO_memcmp(out, again, n) != 0)) {
        fprintf(stderr, "jwtd: the passwords differ; nothing changed\n");
        rc = 1;
    }
    OPENSSL_cleanse(again, sizeof again);
    if (rc != 0)
        OPENSSL_cleanse(out, cap);
    else
        *ret_len = n;
    return rc;
}

int cli_fail(const struct svc_result *res)
{
    const char *say = res->detail;
    if (!say) {
        switch (res->status) {
        case SVC_EMAIL_TAKEN: say = "That e-mail address belongs to another account."; break;
        case SVC_INVALID_EMAIL: say = "That is not an e-mail address jwtd accepts."; break;
        case SVC_ERROR: say = "Internal error; the log says more."; break;
        default: say = svc_status_name(res->status); break;
        }
    }
    fprintf(stderr, "jwtd: %s\n", say);
    switch (res->status) {
    case SVC_INVALID_USERNAME:
    case SVC_INVALID_INPUT:
        return 2;
    default:
        return 1;
    }
}
