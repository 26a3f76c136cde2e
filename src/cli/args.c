/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Argument parsing shared by the subcommands, and the set-up every command
 * shares (configuration, app); password input is in prompt.c. Every
 * subcommand takes --help (usage on stdout, exit 0, nothing opened), its own
 * options, and any setting as --name=value (or --name value) plus --config
 * PATH, which go to config_load. After "--" every word is an argument.
 */
#include <sys/stat.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/log.h"
#include "base/util.h"
#include "cli/cli.h"

/* "--name" or "--name=value" with a name of lower-case letters, digits and
 * dashes: what options and settings look like. Anything else that starts
 * with "--" is an argument (a key id is base64url: one in 4,096 starts
 * with "--", and mixes cases). */
static bool flag_like(const char *a)
{
    size_t i = 2;
    for (; a[i] && a[i] != '='; i++)
        if (!((a[i] >= 'a' && a[i] <= 'z') || (a[i] >= '0' && a[i] <= '9') || a[i] == '-'))
            return false;
    return i > 2;
}

int cli_parse(int argc, char **argv, const struct cli_cmd *cmd, struct cli_args *ret)
{
    memset(ret, 0, sizeof *ret);
    ret->rest = calloc((size_t)argc + 1, sizeof *ret->rest);
    if (!ret->rest) {
        fprintf(stderr, "jwtd: out of memory\n");
        return 1;
    }
    bool options_end = false;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (!options_end && strcmp(a, "--") == 0) {
            options_end = true; /* what follows is arguments only */
            continue;
        }
        if (!options_end && (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0)) {
            ret->help = true;
            continue;
        }
        if (options_end || strncmp(a, "--", 2) != 0 || !flag_like(a)) {
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
           "  --config PATH          configuration file (default $JWTD_CONFIG, else\n"
           "                         " CONFIG_DEFAULT_FILE " when it exists"
           CONFIG_FALLBACK_HELP("                         ") ")\n"
           "  --NAME=VALUE           any setting of jwtd.conf(5) (see `jwtd serve --help`)\n"
           "  --help                 this text\n"
           "  --                     the words after it are arguments, not flags\n"
           "Exit status: 0 done, 1 failed, 2 usage or configuration error.\n");
}

static void warn_unknown_env(void *ctx, const char *name, const char *hint)
{
    bool as_log = *(bool *)ctx;
    char advice[160];
    if (hint)
        snprintf(advice, sizeof advice, "not a setting, ignored: did you mean %s?", hint);
    else
        snprintf(advice, sizeof advice, "not a setting, ignored (jwtd.conf(5) lists them)");
    if (as_log)
        LOG(LOG_WARN, "unknown_environment", LF_S("name", name), LF_S("advice", advice));
    else
        fprintf(stderr, "jwtd: warning: %s: %s\n", name, advice);
}

const char *cli_arg_or_stdin(const char *arg, const char *what, char *buf, size_t cap)
{
    if (strcmp(arg, "-") != 0)
        return arg;
    if (!fgets(buf, (int)cap, stdin)) {
        fprintf(stderr, "jwtd: %s: nothing on stdin\n", what);
        return NULL;
    }
    size_t n = strlen(buf);
    if (n == cap - 1 && buf[n - 1] != '\n') {
        fprintf(stderr, "jwtd: %s: too long\n", what);
        return NULL;
    }
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' '))
        buf[--n] = '\0';
    return buf;
}

void cli_warn_unknown_env(bool as_log)
{
    config_unknown_env(warn_unknown_env, &as_log);
}

/* Why an issuer derived from the listen address is a trap here (NULL when
 * it is not): clients beyond loopback see another URL, and instances
 * sharing a PostgreSQL database each derive their own issuer from their own
 * address, so each refuses the others' tokens ("issuer mismatch"). */
static const char *derived_issuer_trap(const struct config *cfg)
{
    if (cfg->public_url || cfg->source[config_setting_index("JWTD_ISSUER")] != CFG_DERIVED)
        return NULL;
    if (!config_listens_on_loopback(cfg))
        return "listening beyond loopback: set JWTD_PUBLIC_URL to the URL clients use, or the "
               "issuer follows the listen address and TLS setting";
    if (config_uses_postgres(cfg))
        return "the PostgreSQL database may be shared by several instances, and each derives "
               "its issuer from its own listen address: set JWTD_PUBLIC_URL, the same on every "
               "instance, or they refuse each other's tokens (issuer mismatch)";
    return NULL;
}

/* One warning: a log event (serve), or a line on stderr (config check). */
static void warn(bool as_log, const char *event, struct log_field what, const char *advice)
{
    if (as_log) {
        LOG(LOG_WARN, event, what, LF_S("advice", advice));
    } else if (what.type == LOG_T_INT) {
        fprintf(stderr, "jwtd: warning: %s (%s %lld): %s\n", event, what.key,
                (long long)what.i, advice);
    } else {
        fprintf(stderr, "jwtd: warning: %s (%s %s): %s\n", event, what.key,
                what.s ? what.s : "", advice);
    }
}

void cli_config_warnings(const struct config *cfg, bool as_log)
{
    const char *trap = derived_issuer_trap(cfg);
    if (trap)
        warn(as_log, "public_url_unset", LF_S("issuer", cfg->issuer), trap);
    /* API.md takes durations up to days for both lifetimes; a long-lived
     * access token is allowed, and said to be what it is. */
    if (cfg->access_ttl > 3600)
        warn(as_log, "access_ttl_long", LF_I("access_ttl", cfg->access_ttl),
             "resource servers that verify offline (JWKS, libjwtd) cannot see a logout or "
             "revocation until the token expires; keep JWTD_ACCESS_TTL at minutes and let the "
             "refresh token carry the session");
    if (as_log)
        cli_warn_unknown_env(true);
    if (cfg->config_path) {
        /* The file's own secrets, whether or not the environment or a flag
         * overrides them: who may read the file may read them. */
        struct stat sb;
        if (cfg->file_holds_secret && stat(cfg->config_path, &sb) == 0 && (sb.st_mode & 004))
            warn(as_log, "config_file_readable", LF_S("file", cfg->config_path),
                 "it holds a secret setting: chmod 640 and chown root:jwtd");
    }
    if (util_test_clock_on())
        warn(as_log, "test_clock", LF_S("variable", "JWTD_TEST_CLOCK"), "it is for tests only");
}

int cli_config(int argc, char **argv, struct config *cfg, struct app *app)
{
    char err[512];
    memset(app, 0, sizeof *app);
    config_defaults(cfg);
    cli_warn_unknown_env(false);
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

/* A command about to create a database that no setting named: most likely
 * run where the service's configuration was not found. Said, not refused
 * (a first `jwtd user add` in a test directory is fine). */
static void warn_new_default_database(const struct config *cfg)
{
    size_t db = config_setting_index("JWTD_DATABASE");
    if (cfg->config_path || cfg->source[db] != CFG_DEFAULT ||
        strncmp(cfg->database, "sqlite:", 7) != 0 || access(cfg->database + 7, F_OK) == 0)
        return;
    if (cfg->config_none)
        fprintf(stderr, "jwtd: warning: no configuration file (--config none) and no "
                        "JWTD_DATABASE: creating a new database, %s, in this directory\n",
                cfg->database + 7);
    else
        fprintf(stderr, "jwtd: warning: no configuration file (%s%s%s) and no JWTD_DATABASE: "
                        "creating a new database, %s, in this directory\n",
                CONFIG_DEFAULT_FILE, strcmp(CONFIG_DEFAULT_FILE, CONFIG_SYSTEM_FILE) ? " or " : "",
                strcmp(CONFIG_DEFAULT_FILE, CONFIG_SYSTEM_FILE) ? CONFIG_SYSTEM_FILE : "",
                cfg->database + 7);
}

int cli_open_app(struct config *cfg, struct app *app, enum app_mode mode)
{
    char err[512];
    if (mode == APP_COMMAND)
        warn_new_default_database(cfg);
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

static enum svc_status last_failure = SVC_OK;

const char *cli_last_failure(void)
{
    return last_failure == SVC_OK ? "failed" : svc_status_name(last_failure);
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
    fprintf(stderr, "jwtd: %s%s\n", res->status == SVC_WEAK_PASSWORD ? "weak password: " : "",
            say);
    last_failure = res->status;
    switch (res->status) {
    case SVC_INVALID_USERNAME:
    case SVC_INVALID_INPUT:
        return 2;
    default:
        return 1;
    }
}
