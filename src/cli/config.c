/* SPDX-License-Identifier: Apache-2.0 */
/*
 * `jwtd config check`: load the configuration exactly as `jwtd serve`
 * would (file, environment, flags) and show every setting's value and
 * where it came from, secrets hidden; exit 2 with the reason when it does
 * not load. `jwtd config settings --roff` writes the settings table of the
 * jwtd.conf(5) man page (the build generates the page with it).
 */
#include <stdio.h>
#include <string.h>

#include "base/util.h"
#include "cli/cli.h"

static bool roff_opt, markdown_opt;

static const struct cli_opt settings_opts[] = {
    {"--roff", NULL, &roff_opt},
    {"--markdown", NULL, &markdown_opt},
    {NULL, NULL, NULL},
};

static const struct cli_cmd check_cmd = {
    "jwtd config check",
    "Load the configuration as `jwtd serve` would (the file, then the environment,\n"
    "then flags) and print each setting, its value and its source; secrets are shown\n"
    "as (hidden). Nothing is opened: no database, no socket. Exit 2 when the\n"
    "configuration does not load, with the reason.",
    NULL, 0, 0, false};
static const struct cli_cmd settings_cmd = {
    "jwtd config settings [--roff | --markdown]",
    "Print the table of settings (name, default, what it accepts, reloadable on SIGHUP)\n"
    "as text, as roff for the man page, or as Markdown for the docs.",
    settings_opts, 0, 0, true};

/* Escape a text for roff: backslashes, and a leading dot or quote. */
static void roff_text(const char *s)
{
    if (*s == '.' || *s == '\'')
        fputs("\\&", stdout);
    for (; *s; s++) {
        if (*s == '\\')
            fputs("\\e", stdout);
        else if (*s == '-')
            fputs("\\-", stdout);
        else
            putchar(*s);
    }
}

static int print_settings(void)
{
    for (size_t i = 0; i < config_setting_count(); i++) {
        const struct config_setting_info *s = config_setting(i);
        char key[64];
        config_file_key(s->name, key, sizeof key);
        const char *def = s->def ? (s->def[0] ? s->def : "(unset)") : "(derived)";
        if (roff_opt) {
            printf(".TP\n.B %s\n(environment \\fB", key);
            roff_text(s->name);
            printf("\\fR, flag \\fB\\-\\-");
            for (const char *p = key; *p; p++)
                fputs(*p == '_' ? "\\-" : (char[]){*p, 0}, stdout);
            printf("\\fR)\n.br\nDefault: ");
            roff_text(def);
            printf(".%s\n.br\n", s->reloadable ? " Reloaded on SIGHUP." : "");
            roff_text(s->accepts);
            printf(".\n");
        } else if (markdown_opt) {
            printf("| `%s` | `%s` | %s | %s |\n", key, def, s->accepts,
                   s->reloadable ? "yes" : "");
        } else {
            printf("%-28s %-14s default %-18s %s%s\n", s->name, key, def, s->accepts,
                   s->reloadable ? " [reload]" : "");
        }
    }
    return 0;
}

static int check(int argc, char **argv)
{
    struct config cfg;
    char err[512];
    config_defaults(&cfg);
    int rc = 0;
    cli_warn_unknown_env(false);
    if (!config_load(&cfg, argc, argv, err, sizeof err)) {
        fprintf(stderr, "jwtd: %s\n", err);
        rc = 2;
        goto out;
    }
    cli_config_warnings(&cfg, false);
    printf("# configuration file: %s\n", cfg.config_path ? cfg.config_path : "(none)");
    for (size_t i = 0; i < config_setting_count(); i++) {
        const struct config_setting_info *s = config_setting(i);
        char src[300], key[64], shown[300];
        config_source_text(&cfg, i, src, sizeof src);
        config_file_key(s->name, key, sizeof key);
        const char *v = cfg.raw[i] ? cfg.raw[i] : "";
        /* The public URL as the server uses it (normalised: lower-case
         * host, no default port, no trailing slash). */
        if (strcmp(s->name, "JWTD_PUBLIC_URL") == 0 && cfg.public_url)
            v = cfg.public_url;
        if (s->secret && *v && strcmp(s->name, "JWTD_DATABASE") == 0)
            util_redact_url(v, shown, sizeof shown);
        else if (s->secret && *v)
            snprintf(shown, sizeof shown, "(hidden)");
        else
            snprintf(shown, sizeof shown, "%s", v);
        printf("%-26s = %-40s # %s\n", key, shown, src);
    }
out:
    config_free(&cfg);
    return rc;
}

int cmd_config(int argc, char **argv)
{
    static const char usage[] =
        "usage: jwtd config check | settings [--roff|--markdown]   (jwtd config <command> --help)\n";
    if (argc < 1 || strcmp(argv[0], "--help") == 0 || strcmp(argv[0], "-h") == 0) {
        fputs(usage, argc < 1 ? stderr : stdout);
        return argc < 1 ? 2 : 0;
    }
    const struct cli_cmd *cmd = strcmp(argv[0], "check") == 0      ? &check_cmd
                                : strcmp(argv[0], "settings") == 0 ? &settings_cmd
                                                                   : NULL;
    if (!cmd) {
        fprintf(stderr, "jwtd: unknown command 'config %.40s'\n%s", argv[0], usage);
        return 2;
    }
    roff_opt = markdown_opt = false;
    struct cli_args a;
    int rc = cli_parse(argc - 1, argv + 1, cmd, &a);
    if (rc == 0 && a.help)
        cli_help(cmd);
    else if (rc == 0 && cmd == &check_cmd)
        rc = check(a.nrest, a.rest);
    else if (rc == 0)
        rc = roff_opt && markdown_opt ? (fprintf(stderr, "usage: %s\n", cmd->usage), 2)
                                      : print_settings();
    cli_args_free(&a);
    return rc;
}
