/* SPDX-License-Identifier: Apache-2.0 */
/*
 * `jwtd user ...`: account administration on the configured database,
 * through the same services as the HTTP API (username rules, password
 * policy, argon2id parameters, the revocation of sessions), each action an
 * audit event. Passwords never come from the command line (where `ps` shows
 * them): from the terminal without echo, or from stdin.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "base/log.h"
#include "base/util.h"
#include "cli/cli.h"
#include "core/accounts.h"
#include "core/audit.h"
#include "core/mfa.h"
#include "core/password.h"
#include "core/recovery.h"

static const char *password_hash_opt;
static const char *email_opt;
static bool password_stdin_opt;

static const struct cli_opt stdin_opts[] = {
    {"--password-stdin", NULL, &password_stdin_opt},
    {NULL, NULL, NULL},
};
static const struct cli_opt add_opts[] = {
    {"--password-stdin", NULL, &password_stdin_opt},
    {"--email", &email_opt, NULL},
    {NULL, NULL, NULL},
};
static const struct cli_opt import_opts[] = {
    {"--password-hash", &password_hash_opt, NULL},
    {NULL, NULL, NULL},
};

enum user_sub { U_ADD, U_IMPORT, U_LIST, U_SHOW, U_DELETE, U_PASSWD, U_DISABLE, U_ENABLE,
                U_UNLOCK, U_LOGOUT, U_RESET_LINK, U_MFA_RESET, U_COUNT };

static const struct {
    const char *name;
    enum app_mode mode;
    struct cli_cmd cmd;
} subs[U_COUNT] = {
    [U_ADD] = {"add", APP_COMMAND,
               {"jwtd user add USERNAME [--email ADDRESS] [--password-stdin]",
                "Create an account with the same rules as POST /auth/signup (even while sign-up\n"
                "is closed). The password is asked twice on a terminal, without echo; otherwise\n"
                "(or with --password-stdin) it is the first line of stdin. With --email, the\n"
                "address is verified by mail when mail is set up.\n"
                "Prints the new account's id and username.",
                add_opts, 1, 1, false}},
    [U_IMPORT] = {"import", APP_COMMAND,
                  {"jwtd user import USERNAME --password-hash HASH",
                   "Create an account with a password hash from another system: bcrypt\n"
                   "($2a$, $2b$, $2y$) or argon2id (PHC string). It is re-hashed to argon2id at\n"
                   "the account's next login. --password-hash - reads the hash from stdin (out\n"
                   "of ps and the shell's history).",
                   import_opts, 1, 1, false}},
    [U_LIST] = {"list", APP_READ_ONLY,
                {"jwtd user list",
                 "List accounts, oldest first: id, username, created, hash scheme (tab-\n"
                 "separated; `jwtd user show` tells whether an account is disabled).\n"
                 "Only reads: never creates a database.",
                 NULL, 0, 0, false}},
    [U_SHOW] = {"show", APP_READ_ONLY,
                {"jwtd user show USERNAME",
                 "Show one account: id, created, status (active, or disabled since when),\n"
                 "e-mail address and whether it is verified, a pending address, hash\n"
                 "scheme, second factors, live sessions and the login back-off. Only reads.",
                 NULL, 1, 1, false}},
    [U_DELETE] = {"delete", APP_EXISTING,
                  {"jwtd user delete USERNAME",
                   "Delete an account; its sessions end on every instance within a second.",
                   NULL, 1, 1, false}},
    [U_PASSWD] = {"passwd", APP_EXISTING,
                  {"jwtd user passwd USERNAME [--password-stdin]",
                   "Set an account's password (same policy as sign-up); every session of the\n"
                   "account ends. The id stays the same. The password is asked twice on a\n"
                   "terminal without echo, or read from stdin.",
                   stdin_opts, 1, 1, false}},
    [U_DISABLE] = {"disable", APP_EXISTING,
                   {"jwtd user disable USERNAME",
                    "Disable an account: its sessions end within a second, and logins and\n"
                    "refreshes are refused until `jwtd user enable`.",
                    NULL, 1, 1, false}},
    [U_ENABLE] = {"enable", APP_EXISTING,
                  {"jwtd user enable USERNAME", "Let a disabled account log in again.", NULL, 1,
                   1, false}},
    [U_UNLOCK] = {"unlock", APP_EXISTING,
                  {"jwtd user unlock USERNAME",
                   "Clear the login back-off of an account (after too many failed logins).",
                   NULL, 1, 1, false}},
    [U_LOGOUT] = {"logout", APP_EXISTING,
                  {"jwtd user logout USERNAME",
                   "End every session of an account (on every instance within a second).",
                   NULL, 1, 1, false}},
    [U_RESET_LINK] = {"reset-link", APP_EXISTING,
                      {"jwtd user reset-link USERNAME",
                       "Print a one-time password reset link for the account, for an operator\n"
                       "to hand over when no mail is set up. It works once, for JWTD_RESET_TTL,\n"
                       "and ends when the password changes any other way. The link's base is\n"
                       "JWTD_PUBLIC_URL: set it to the URL users reach jwtd at.",
                       NULL, 1, 1, false}},
    [U_MFA_RESET] = {"mfa-reset", APP_EXISTING,
                     {"jwtd user mfa-reset USERNAME",
                      "Remove every second factor of an account (authenticator app, recovery\n"
                      "codes, passkeys) for someone who lost them, and end every session of it\n"
                      "(a lost device often held both); the next login needs the password\n"
                      "only. Check who is asking first: this is what an attacker with the\n"
                      "password would want.",
                      NULL, 1, 1, false}},
};

static void usage(FILE *f)
{
    fprintf(f, "usage: jwtd user <command> [arguments]   (jwtd user <command> --help)\n\n");
    for (int i = 0; i < U_COUNT; i++)
        fprintf(f, "  %s\n", subs[i].cmd.usage);
}

/* The password of `user add`: read after the configuration and before the
 * database is opened, so that a missing password (a usage error) creates
 * nothing. Wiped by user_add or the caller. */
static char add_pw[PASSWORD_MAX_BYTES + 2];
static size_t add_pw_len;

static int read_add_password(const char *username)
{
    char prompt[200];
    snprintf(prompt, sizeof prompt, "Password for %s: ", username);
    return cli_read_password(prompt, password_stdin_opt, true, add_pw, sizeof add_pw,
                             &add_pw_len);
}

static int user_add(struct app *app, const struct svc_ctx *ctx, const char *username)
{
    struct svc_op *op = accounts_signup(app, ctx, username, strlen(username), add_pw,
                                        add_pw_len, email_opt, email_opt ? strlen(email_opt) : 0);
    OPENSSL_cleanse(add_pw, sizeof add_pw);
    if (!op) {
        fprintf(stderr, "jwtd: out of memory\n");
        return 1;
    }
    svc_op_run(op);
    if (op->res.status == SVC_OK)
        printf("%s\t%s\n", op->user.id, op->user.username);
    int rc = op->res.status == SVC_OK ? 0 : cli_fail(&op->res);
    svc_op_free(op);
    return rc;
}

static int user_passwd(struct app *app, const struct svc_ctx *ctx, const char *username)
{
    /* An unknown name is said before a password is asked for. */
    struct store_user u;
    struct svc_result res = accounts_find(app, username, &u);
    if (res.status != SVC_OK)
        return cli_fail(&res);
    store_user_clear(&u);
    char pw[PASSWORD_MAX_BYTES + 2];
    size_t n = 0;
    char prompt[200];
    snprintf(prompt, sizeof prompt, "New password for %s: ", username);
    int rc = cli_read_password(prompt, password_stdin_opt, true, pw, sizeof pw, &n);
    if (rc != 0)
        return rc;
    struct svc_op *op = accounts_set_password(app, ctx, username, pw, n);
    OPENSSL_cleanse(pw, sizeof pw);
    if (!op) {
        fprintf(stderr, "jwtd: out of memory\n");
        return 1;
    }
    svc_op_run(op);
    if (op->res.status == SVC_OK)
        printf("password of %s set; %d session(s) ended\n", username, op->count);
    rc = op->res.status == SVC_OK ? 0 : cli_fail(&op->res);
    svc_op_free(op);
    return rc;
}

static void print_user(void *ctx, const struct store_user *u, const char *scheme)
{
    (void)ctx;
    char created[RFC3339_LEN];
    util_rfc3339(u->created_at, created);
    printf("%s\t%s\t%s\t%s\n", u->id, u->username, created, scheme);
}

static int user_show(struct app *app, const char *username)
{
    struct account_info info;
    struct svc_result res = accounts_info(app, username, &info);
    if (res.status != SVC_OK)
        return cli_fail(&res);
    char created[RFC3339_LEN], when[RFC3339_LEN];
    util_rfc3339(info.user.created_at, created);
    printf("id:             %s\n", info.user.id);
    printf("username:       %s\n", info.user.username);
    printf("created:        %s\n", created);
    if (info.user.disabled_at) {
        util_rfc3339(info.user.disabled_at, when);
        printf("status:         disabled since %s\n", when);
    } else {
        printf("status:         active\n");
    }
    if (info.user.email[0])
        printf("e-mail:         %s (%s)\n", info.user.email,
               info.user.email_verified ? "verified" : "not verified");
    else
        printf("e-mail:         none\n");
    if (info.user.email_pending[0])
        printf("pending e-mail: %s (waits for verification)\n", info.user.email_pending);
    printf("password hash:  %s\n", info.hash_scheme);
    struct identity who = {0};
    snprintf(who.sub, sizeof who.sub, "%s", info.user.id);
    json_t *st = NULL;
    if (mfa_status(app, &who, &st).status == SVC_OK) {
        printf("second factors: authenticator app %s, %lld recovery code(s) left, %zu "
               "passkey(s)\n",
               json_is_true(json_object_get(st, "totp")) ? "on" : "off",
               (long long)json_integer_value(json_object_get(st, "recovery_codes_left")),
               json_array_size(json_object_get(st, "passkeys")));
        json_decref(st);
    }
    printf("live sessions:  %d\n", info.live_sessions);
    if (info.blocked_until_ms > util_now_ms()) {
        util_rfc3339((info.blocked_until_ms + 999) / 1000, when);
        printf("login back-off: %lld failed logins, blocked until %s\n",
               (long long)info.failures, when);
    } else {
        printf("login back-off: %lld failed logins, not blocked\n", (long long)info.failures);
    }
    return 0;
}

static int run(enum user_sub sub, struct app *app, const struct svc_ctx *ctx, const char *name)
{
    struct svc_result res = svc_ok();
    int n = 0;
    bool rc_sessions_failed = false;
    switch (sub) {
    case U_ADD:
        return user_add(app, ctx, name);
    case U_PASSWD:
        return user_passwd(app, ctx, name);
    case U_SHOW:
        return user_show(app, name);
    case U_LIST:
        return store_user_list(app->store, print_user, NULL) == STORE_OK ? 0 : 1;
    case U_IMPORT: {
        struct store_user u;
        res = accounts_import(app, ctx, name, password_hash_opt, &u);
        if (res.status == SVC_OK)
            printf("%s\t%s\n", u.id, u.username);
        break;
    }
    case U_DELETE: {
        /* Said with the name as stored and the id, not as typed (names
         * match case-insensitively: "BOB" deletes "bob"). */
        struct store_user u;
        res = accounts_find(app, name, &u);
        if (res.status == SVC_OK) {
            res = accounts_delete(app, ctx, u.username);
            if (res.status == SVC_OK)
                printf("deleted %s\t%s\n", u.id, u.username);
            store_user_clear(&u);
        }
        break;
    }
    case U_DISABLE:
    case U_ENABLE:
        res = accounts_set_disabled(app, ctx, name, sub == U_DISABLE, &n);
        if (res.status == SVC_OK && sub == U_DISABLE)
            printf("disabled %s; %d session(s) ended\n", name, n);
        else if (res.status == SVC_OK)
            printf("enabled %s\n", name);
        break;
    case U_UNLOCK:
        res = accounts_unlock(app, ctx, name);
        if (res.status == SVC_OK)
            printf("unlocked %s\n", name);
        break;
    case U_LOGOUT:
        res = accounts_logout(app, ctx, name, &n);
        if (res.status == SVC_OK)
            printf("%d session(s) of %s ended\n", n, name);
        break;
    case U_RESET_LINK: {
        char link[1200];
        res = recovery_reset_link(app, ctx, name, link, sizeof link);
        if (res.status == SVC_OK)
            printf("%s\n", link);
        if (res.status == SVC_OK && !app->cfg->public_url)
            fprintf(stderr, "jwtd: warning: JWTD_PUBLIC_URL is not set, so the link starts with "
                            "the issuer (%s): check that the person can reach jwtd there\n",
                    app->cfg->issuer);
        break;
    }
    case U_MFA_RESET: {
        bool totp = false;
        int ended = 0;
        res = mfa_operator_reset(app, ctx, name, &totp, &n, &ended);
        if (res.status == SVC_OK && ended >= 0)
            printf("second factors of %s removed: authenticator app %s, %d passkey(s); "
                   "%d session(s) ended\n",
                   name, totp ? "yes" : "none", n, ended);
        else if (res.status == SVC_OK) {
            printf("second factors of %s removed: authenticator app %s, %d passkey(s)\n", name,
                   totp ? "yes" : "none", n);
            fprintf(stderr, "jwtd: ending the account's sessions failed: run `jwtd user logout "
                            "%s`\n", name);
            rc_sessions_failed = true;
        }
        break;
    }
    case U_COUNT:
        break;
    }
    if (res.status == SVC_OK)
        return rc_sessions_failed ? 1 : 0;
    return cli_fail(&res);
}

int cmd_user(int argc, char **argv)
{
    if (argc < 1 || strcmp(argv[0], "--help") == 0 || strcmp(argv[0], "-h") == 0) {
        usage(argc < 1 ? stderr : stdout);
        return argc < 1 ? 2 : 0;
    }
    int sub = 0;
    while (sub < U_COUNT && strcmp(argv[0], subs[sub].name) != 0)
        sub++;
    if (sub == U_COUNT) {
        fprintf(stderr, "jwtd: unknown command 'user %.40s'\n", argv[0]);
        usage(stderr);
        return 2;
    }
    password_hash_opt = NULL;
    email_opt = NULL;
    password_stdin_opt = false;
    struct cli_args a;
    int rc = cli_parse(argc - 1, argv + 1, &subs[sub].cmd, &a);
    if (rc == 0 && a.help)
        cli_help(&subs[sub].cmd);
    if (rc != 0 || a.help)
        goto out_args;
    const char *name = a.npos ? a.pos[0] : NULL;
    if (sub == U_IMPORT && !password_hash_opt) {
        fprintf(stderr, "usage: %s\n", subs[sub].cmd.usage);
        rc = 2;
        goto out_args;
    }
    if (name && !username_valid(name, strlen(name))) {
        fprintf(stderr, "jwtd: invalid username: 3-128 characters of letters, digits and . _ - @ +\n");
        rc = 2;
        goto out_args;
    }
    /* What can be checked without the database is, before it is opened
     * (or created). */
    char email_norm[EMAIL_MAX + 1], hash_line[1024];
    if (sub == U_IMPORT && !(password_hash_opt = cli_arg_or_stdin(
                                 password_hash_opt, "--password-hash", hash_line,
                                 sizeof hash_line))) {
        rc = 2;
        goto out_args;
    }
    if (sub == U_IMPORT && !password_hash_supported(password_hash_opt)) {
        fprintf(stderr, "jwtd: unsupported hash: give a bcrypt ($2a$/$2b$/$2y$) or argon2id PHC "
                        "string\n");
        rc = 2;
        goto out_args;
    }
    if (sub == U_ADD && email_opt &&
        !accounts_email_normalize(email_opt, strlen(email_opt), email_norm)) {
        fprintf(stderr, "jwtd: --email: not an e-mail address jwtd accepts\n");
        rc = 2;
        goto out_args;
    }
    struct config cfg;
    struct app app;
    struct svc_ctx ctx;
    svc_ctx_operator(&ctx);
    rc = cli_config(a.nrest, a.rest, &cfg, &app);
    if (rc == 0 && sub == U_ADD)
        rc = read_add_password(name);
    if (rc == 0)
        rc = cli_open_app(&cfg, &app, subs[sub].mode);
    if (rc == 0) {
        rc = run((enum user_sub)sub, &app, &ctx, name);
        /* A refused operator action is part of the trail too (a taken
         * name, a weak password, no such account). */
        if (rc != 0)
            AUDIT(LOG_WARN, &ctx, "operator_command_failed", "refused", NULL,
                  LF_S("command", subs[sub].name), LF_S("reason", cli_last_failure()),
                  LF_I("exit", rc));
    }
    OPENSSL_cleanse(add_pw, sizeof add_pw);
    cli_close(&cfg, &app);
out_args:
    OPENSSL_cleanse(hash_line, sizeof hash_line); /* an imported hash read from stdin */
    cli_args_free(&a);
    return rc;
}
