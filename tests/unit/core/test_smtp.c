/* SPDX-License-Identifier: Apache-2.0 */
/*
 * SMTP sending (src/core/smtp.c) against a real SMTP server: aiosmtpd, run
 * by tests/unit/core/smtp_server.py as a child process on a free loopback
 * port, once per server set-up. Checks delivery (the received bytes are the
 * bytes sent, the envelope is right, and Python's email package decodes the
 * subject, names and parts back to what mime_build was given), the
 * classification of 4xx/5xx replies, refused connections, authentication,
 * STARTTLS policies with a CA generated for the run, implicit TLS, input
 * refusals, and that no error text ever contains the password. Exits 77
 * (skipped) when /usr/bin/python3 or its aiosmtpd/cryptography modules are
 * missing. Only loopback addresses are contacted.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "../unit_util.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/mime.h"
#include "core/smtp.h"

#ifndef SMTP_SERVER_PY
#define SMTP_SERVER_PY "tests/unit/core/smtp_server.py"
#endif
#define PYTHON "/usr/bin/python3"

#define PASSWORD "S3cr3t-pw!x"
#define PASSWORD_URL "S3cr3t-pw%21x" /* the same, percent-encoded */
#define WRONG_PASSWORD "Wr0ng-pw-qz"

/* ---- the message ---- */

static const char SUBJECT[] = "R\xc3\xa9initialisation du mot de passe \xe2\x80\x94 jwtd \xf0\x9f\x94\x91";
static const char FROM_NAME[] = "Service jwtd";
static const char TO_NAME[] = "Zo\xc3\xab \xc3\x85str\xc3\xb6m";
static const char TEXT[] = "Bonjour,\n\nLien : https://auth.example.org/reset?t=a=b\n.\nFin.\n";
static const char TEXT_CRLF[] = "Bonjour,\r\n\r\nLien : https://auth.example.org/reset?t=a=b\r\n.\r\nFin.\r\n";
static const char HTML[] = "<p>Bonjour,</p>\n<p><a href=\"https://auth.example.org/reset?t=a=b\">R\xc3\xa9initialiser</a></p>\n";
static const char HTML_CRLF[] = "<p>Bonjour,</p>\r\n<p><a href=\"https://auth.example.org/reset?t=a=b\">R\xc3\xa9initialiser</a></p>\r\n";
#define FROM_ADDR "noreply@jwtd.example.org"
#define TO_ADDR "zoe@example.com"

static char *g_msg;
static size_t g_len;

static void build_message(void)
{
    struct mime_message m = {
        .from_name = FROM_NAME,
        .from_addr = FROM_ADDR,
        .to_name = TO_NAME,
        .to_addr = TO_ADDR,
        .subject = SUBJECT,
        .date = 1700000000,
        .message_id = "m1.1700000000@jwtd.example.org",
        .text = TEXT,
        .html = HTML,
    };
    assert_int_equal(mime_build(&m, &g_msg, &g_len), MIME_OK);
}

/* ---- the server child ---- */

struct server {
    pid_t pid;
    int to_child;   /* its stdin: closing it stops the server */
    int from_child; /* its stdout: the PORT line */
    int port;
    char root[64];
    char mail[96];
    char tls[96];
    char ca[128];
};

/* The server of the running test, stopped by the teardown even when the
 * test fails half-way (cmocka leaves the test function by longjmp, which is
 * why the tests keep their struct server in static storage). */
static struct server *g_active;

static void server_start(struct server *s, const char *const *extra)
{
    memset(s, 0, sizeof *s);
    g_active = s;
    snprintf(s->root, sizeof s->root, "/tmp/jwtd-smtp-test-XXXXXX");
    assert_non_null(mkdtemp(s->root));
    snprintf(s->mail, sizeof s->mail, "%s/mail", s->root);
    snprintf(s->tls, sizeof s->tls, "%s/tls", s->root);
    snprintf(s->ca, sizeof s->ca, "%s/ca.pem", s->tls);
    assert_int_equal(mkdir(s->mail, 0700), 0);
    assert_int_equal(mkdir(s->tls, 0700), 0);

    const char *argv[24];
    size_t n = 0;
    argv[n++] = PYTHON;
    argv[n++] = SMTP_SERVER_PY;
    argv[n++] = "--dir";
    argv[n++] = s->mail;
    argv[n++] = "--tls-dir";
    argv[n++] = s->tls;
    argv[n++] = "--watch-stdin";
    for (size_t i = 0; extra && extra[i]; i++) {
        assert_true(n < sizeof argv / sizeof argv[0] - 1);
        argv[n++] = extra[i];
    }
    argv[n] = NULL;

    int in[2], out[2];
    assert_int_equal(pipe2(in, O_CLOEXEC), 0);
    assert_int_equal(pipe2(out, O_CLOEXEC), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        dup2(in[0], STDIN_FILENO);
        dup2(out[1], STDOUT_FILENO);
        execv(PYTHON, (char *const *)argv);
        _exit(127);
    }
    close(in[0]);
    close(out[1]);
    s->pid = pid;
    s->to_child = in[1];
    s->from_child = out[0];

    /* "PORT <n>\n" once it listens; key generation included, well under a
     * second here, 20 s allowed for a loaded machine. */
    char line[64];
    size_t got = 0;
    while (got < sizeof line - 1 && !memchr(line, '\n', got)) {
        struct pollfd p = {.fd = s->from_child, .events = POLLIN};
        int pr = poll(&p, 1, 20000);
        if (pr <= 0)
            fail_msg("SMTP test server did not start (poll %d)", pr);
        ssize_t r = read(s->from_child, line + got, sizeof line - 1 - got);
        if (r <= 0)
            fail_msg("SMTP test server exited before listening");
        got += (size_t)r;
    }
    line[got] = '\0';
    assert_int_equal(sscanf(line, "PORT %d", &s->port), 1);
    assert_true(s->port > 0 && s->port < 65536);
}

static void server_stop(struct server *s)
{
    g_active = NULL;
    if (s->root[0] == '\0')
        return;
    if (s->pid > 0) {
        close(s->to_child);
        kill(s->pid, SIGTERM);
        int st;
        waitpid(s->pid, &st, 0);
        close(s->from_child);
        s->pid = 0;
    }
    unit_rm_dir(s->mail);
    unit_rm_dir(s->tls);
    rmdir(s->root);
    s->root[0] = '\0';
}

static int teardown_server(void **state)
{
    (void)state;
    if (g_active)
        server_stop(g_active);
    return 0;
}

static size_t mail_count(const struct server *s)
{
    size_t n = 0;
    DIR *d = opendir(s->mail);
    assert_non_null(d);
    struct dirent *e;
    while ((e = readdir(d)))
        if (strstr(e->d_name, ".eml") && !strstr(e->d_name, ".tmp"))
            n++;
    closedir(d);
    return n;
}

static char *slurp(const char *path, size_t *ret_len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        fail_msg("cannot open %s", path);
    char *buf = malloc(SMTP_MAX_MESSAGE_BYTES + 1);
    assert_non_null(buf);
    size_t n = fread(buf, 1, SMTP_MAX_MESSAGE_BYTES, f);
    fclose(f);
    buf[n] = '\0';
    *ret_len = n;
    return buf;
}

/* The value of key in message n's .env file (hex-decoded), or NULL. */
static char *env_get(const struct server *s, int n, const char *key)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/%d.env", s->mail, n);
    size_t len;
    char *env = slurp(path, &len);
    char *out = NULL;
    size_t klen = strlen(key);
    for (char *line = env; line && *line;) {
        char *nl = strchr(line, '\n');
        if (nl)
            *nl = '\0';
        if (strncmp(line, key, klen) == 0 && line[klen] == '=') {
            const char *hex = line + klen + 1;
            size_t hl = strlen(hex);
            out = malloc(hl / 2 + 1);
            assert_non_null(out);
            for (size_t i = 0; i < hl / 2; i++) {
                unsigned v;
                assert_int_equal(sscanf(hex + 2 * i, "%2x", &v), 1);
                out[i] = (char)v;
            }
            out[hl / 2] = '\0';
            break;
        }
        line = nl ? nl + 1 : NULL;
    }
    free(env);
    return out;
}

static void assert_env(const struct server *s, int n, const char *key, const char *want)
{
    char *v = env_get(s, n, key);
    if (!v)
        fail_msg("message %d: no %s", n, key);
    if (strcmp(v, want) != 0)
        fail_msg("message %d: %s is \"%s\", want \"%s\"", n, key, v, want);
    free(v);
}

/* ---- sending ---- */

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1000.0 + (double)ts.tv_nsec / 1e6;
}

static char g_url[256];

static struct smtp_config config(const struct server *s, const char *scheme, enum smtp_tls tls)
{
    snprintf(g_url, sizeof g_url, "%s://127.0.0.1:%d", scheme, s ? s->port : 1);
    struct smtp_config c = {
        .url = g_url,
        .tls = tls,
        .connect_timeout_ms = 2000,
        .timeout_ms = 10000,
    };
    return c;
}

static char g_err[512];

/* Send the test message; check that err never holds a password. */
static enum smtp_rc send_timed(const struct smtp_config *c, const char *what)
{
    memset(g_err, 'Z', sizeof g_err);
    double t0 = now_ms();
    enum smtp_rc rc = smtp_send(c, FROM_ADDR, TO_ADDR, g_msg, g_len, g_err, sizeof g_err);
    double dt = now_ms() - t0;
    assert_non_null(memchr(g_err, '\0', sizeof g_err));
    assert_null(strstr(g_err, PASSWORD));
    assert_null(strstr(g_err, PASSWORD_URL));
    assert_null(strstr(g_err, WRONG_PASSWORD));
    print_message("    %-44s rc=%d %7.1f ms  %s\n", what, (int)rc, dt, g_err);
    return rc;
}

static void check_delivered(const struct server *s, int n, const char *tls, const char *login)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/%d.eml", s->mail, n);
    size_t len;
    char *got = slurp(path, &len);
    assert_int_equal(len, g_len);
    assert_memory_equal(got, g_msg, g_len);
    free(got);
    assert_env(s, n, "mail_from", FROM_ADDR);
    assert_env(s, n, "rcpt_to", TO_ADDR);
    assert_env(s, n, "tls", tls);
    assert_env(s, n, "auth_login", login);
    assert_env(s, n, "subject", SUBJECT);
    assert_env(s, n, "from_name", FROM_NAME);
    assert_env(s, n, "to_name", TO_NAME);
    assert_env(s, n, "text", TEXT_CRLF);
    assert_env(s, n, "html", HTML_CRLF);
    assert_null(env_get(s, n, "parse_error"));
}

/* ---- scenarios ---- */

static void test_plain_server(void **state)
{
    (void)state;
    static struct server s;
    server_start(&s, NULL);

    struct smtp_config c = config(&s, "smtp", SMTP_TLS_OFF);
    c.helo_name = "client.jwtd.test";
    assert_int_equal(send_timed(&c, "plain, delivery"), SMTP_SENT);
    assert_int_equal(mail_count(&s), 1);
    check_delivered(&s, 1, "0", "");
    assert_env(&s, 1, "helo", "client.jwtd.test");

    /* STARTTLS required, not offered: nothing is sent, try later. */
    c = config(&s, "smtp", SMTP_TLS_REQUIRED);
    assert_int_equal(send_timed(&c, "plain, TLS required"), SMTP_TEMPORARY);
    assert_non_null(strstr(g_err, "127.0.0.1"));
    assert_int_equal(mail_count(&s), 1);

    /* Opportunistic falls back to plain text. */
    c = config(&s, "smtp", SMTP_TLS_OPPORTUNISTIC);
    assert_int_equal(send_timed(&c, "plain, TLS opportunistic"), SMTP_SENT);
    assert_int_equal(mail_count(&s), 2);
    check_delivered(&s, 2, "0", "");

    /* Credentials for a relay that offers no AUTH at all: libcurl sends the
     * mail without authenticating (the password never leaves). */
    c = config(&s, "smtp", SMTP_TLS_OFF);
    c.username = "jwtd";
    c.password = PASSWORD;
    assert_int_equal(send_timed(&c, "plain, credentials, no AUTH offered"), SMTP_SENT);
    check_delivered(&s, 3, "0", "");

    /* Lines that start with a dot go through intact: libcurl dot-stuffs,
     * the server unstuffs, and a lone "." does not end the data early. */
    static const char dots[] = "From: noreply@jwtd.example.org\r\nTo: zoe@example.com\r\n"
                               "Subject: dots\r\n\r\n.\r\n..\r\n.a\r\nend\r\n";
    assert_int_equal(smtp_send(&c, FROM_ADDR, TO_ADDR, dots, sizeof dots - 1, g_err, sizeof g_err),
                     SMTP_SENT);
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/4.eml", s.mail);
    size_t len;
    char *got = slurp(path, &len);
    assert_int_equal(len, sizeof dots - 1);
    assert_memory_equal(got, dots, len);
    free(got);
    server_stop(&s);
}

static void reply_case(const char *opt, const char *code, enum smtp_rc want, const char *what)
{
    static struct server s;
    const char *const extra[] = {opt, code, NULL};
    server_start(&s, extra);
    struct smtp_config c = config(&s, "smtp", SMTP_TLS_OFF);
    assert_int_equal(send_timed(&c, what), want);
    char reply[32];
    snprintf(reply, sizeof reply, "last reply %s", code);
    if (!strstr(g_err, reply))
        fail_msg("err lacks \"%s\": %s", reply, g_err);
    assert_int_equal(mail_count(&s), 0);
    server_stop(&s);
}

static void test_rcpt_451(void **state)
{
    (void)state;
    reply_case("--rcpt-code", "451", SMTP_TEMPORARY, "RCPT 451");
}

static void test_rcpt_550(void **state)
{
    (void)state;
    reply_case("--rcpt-code", "550", SMTP_PERMANENT, "RCPT 550");
}

/* The relay refusing the envelope sender (a JWTD_MAIL_FROM it does not
 * accept from this client) is a fault of the set-up, not of the message:
 * kept for later, as a refused login is. */
static void test_mail_from_553(void **state)
{
    (void)state;
    reply_case("--mail-code", "553", SMTP_TEMPORARY, "MAIL 553");
}

/* ...but a 552 to MAIL FROM refuses the message's declared size: kept
 * for later it would fail again. */
static void test_mail_from_552(void **state)
{
    (void)state;
    reply_case("--mail-code", "552", SMTP_PERMANENT, "MAIL 552");
}

static void test_mail_from_451(void **state)
{
    (void)state;
    reply_case("--mail-code", "451", SMTP_TEMPORARY, "MAIL 451");
}

static void test_data_451(void **state)
{
    (void)state;
    reply_case("--data-code", "451", SMTP_TEMPORARY, "DATA 451");
}

static void test_data_554(void **state)
{
    (void)state;
    reply_case("--data-code", "554", SMTP_PERMANENT, "DATA 554");
}

static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    socklen_t al = sizeof a;
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &al), 0);
    close(fd); /* bound, never listening: connections are refused */
    return ntohs(a.sin_port);
}

static void test_connection_refused(void **state)
{
    (void)state;
    struct server fake = {.port = free_port()};
    struct smtp_config c = config(&fake, "smtp", SMTP_TLS_OFF);
    char url[160];
    snprintf(url, sizeof url, "smtp://jwtd:%s@127.0.0.1:%d", PASSWORD_URL, fake.port);
    c.url = url;
    double t0 = now_ms();
    assert_int_equal(send_timed(&c, "nothing listening"), SMTP_TEMPORARY);
    assert_true(now_ms() - t0 < 1000.0);
    assert_non_null(strstr(g_err, "last reply 0"));
}

static void test_auth_plain_text_loopback(void **state)
{
    (void)state;
    static struct server s;
    const char *const extra[] = {"--auth-user", "jwtd", "--auth-password", PASSWORD, NULL};
    server_start(&s, extra);

    /* Separate fields. */
    struct smtp_config c = config(&s, "smtp", SMTP_TLS_OFF);
    c.username = "jwtd";
    c.password = PASSWORD;
    assert_int_equal(send_timed(&c, "AUTH, right password (fields)"), SMTP_SENT);
    check_delivered(&s, 1, "0", "jwtd");

    /* In the URL, percent-encoded. */
    char url[160];
    snprintf(url, sizeof url, "smtp://jwtd:%s@127.0.0.1:%d", PASSWORD_URL, s.port);
    c = config(&s, "smtp", SMTP_TLS_OFF);
    c.url = url;
    assert_int_equal(send_timed(&c, "AUTH, right password (URL)"), SMTP_SENT);
    check_delivered(&s, 2, "0", "jwtd");

    /* Wrong password: 535, a set-up fault: try later. */
    c = config(&s, "smtp", SMTP_TLS_OFF);
    c.username = "jwtd";
    c.password = WRONG_PASSWORD;
    assert_int_equal(send_timed(&c, "AUTH, wrong password (fields)"), SMTP_TEMPORARY);
    assert_non_null(strstr(g_err, "last reply 535"));
    snprintf(url, sizeof url, "smtp://jwtd:%s@127.0.0.1:%d", WRONG_PASSWORD, s.port);
    c = config(&s, "smtp", SMTP_TLS_OFF);
    c.url = url;
    assert_int_equal(send_timed(&c, "AUTH, wrong password (URL)"), SMTP_TEMPORARY);

    /* No credentials where AUTH is required: 530 to MAIL, also set-up. */
    c = config(&s, "smtp", SMTP_TLS_OFF);
    assert_int_equal(send_timed(&c, "AUTH required, none given"), SMTP_TEMPORARY);
    assert_non_null(strstr(g_err, "last reply 530"));
    assert_int_equal(mail_count(&s), 2);
    server_stop(&s);
}

static void test_credentials_need_tls(void **state)
{
    (void)state;
    /* A non-loopback relay without TLS never gets the password: refused
     * before any connection (192.0.2.1 is TEST-NET-1, never contacted). */
    static const enum smtp_tls policies[] = {SMTP_TLS_OFF, SMTP_TLS_OPPORTUNISTIC};
    for (size_t i = 0; i < 2; i++) {
        struct smtp_config c = {.url = "smtp://192.0.2.1:25", .tls = policies[i],
                                .username = "jwtd", .password = PASSWORD,
                                .connect_timeout_ms = 2000, .timeout_ms = 10000};
        double t0 = now_ms();
        assert_int_equal(send_timed(&c, "credentials, no TLS, remote"), SMTP_TEMPORARY);
        assert_true(now_ms() - t0 < 100.0);
        assert_non_null(strstr(g_err, "without TLS"));
        c.url = "smtp://jwtd:" PASSWORD_URL "@192.0.2.1:25";
        c.username = NULL;
        c.password = NULL;
        assert_int_equal(send_timed(&c, "credentials in URL, no TLS, remote"), SMTP_TEMPORARY);
        assert_non_null(strstr(g_err, "without TLS"));
    }
}

static void test_starttls(void **state)
{
    (void)state;
    static struct server s;
    const char *const extra[] = {"--starttls", NULL};
    server_start(&s, extra);

    struct smtp_config c = config(&s, "smtp", SMTP_TLS_REQUIRED);
    c.ca_file = s.ca;
    assert_int_equal(send_timed(&c, "STARTTLS required, test CA"), SMTP_SENT);
    check_delivered(&s, 1, "1", "");

    /* The same server through the name in its certificate. */
    char url[96];
    snprintf(url, sizeof url, "smtp://localhost:%d", s.port);
    c.url = url;
    assert_int_equal(send_timed(&c, "STARTTLS required, test CA, localhost"), SMTP_SENT);
    check_delivered(&s, 2, "1", "");

    c = config(&s, "smtp", SMTP_TLS_OPPORTUNISTIC);
    c.ca_file = s.ca;
    assert_int_equal(send_timed(&c, "STARTTLS opportunistic, test CA"), SMTP_SENT);
    check_delivered(&s, 3, "1", "");

    /* The system store does not trust the test CA: verification fails and
     * nothing is sent, also in opportunistic mode (no silent downgrade). */
    c = config(&s, "smtp", SMTP_TLS_REQUIRED);
    assert_int_equal(send_timed(&c, "STARTTLS required, system CAs"), SMTP_TEMPORARY);
    c = config(&s, "smtp", SMTP_TLS_OPPORTUNISTIC);
    assert_int_equal(send_timed(&c, "STARTTLS opportunistic, system CAs"), SMTP_TEMPORARY);

    /* A CA file that does not exist. */
    c = config(&s, "smtp", SMTP_TLS_REQUIRED);
    c.ca_file = "/nonexistent/ca.pem";
    assert_int_equal(send_timed(&c, "STARTTLS, missing CA file"), SMTP_TEMPORARY);

    /* TLS off against a server that requires STARTTLS: 530 to MAIL. */
    c = config(&s, "smtp", SMTP_TLS_OFF);
    assert_int_equal(send_timed(&c, "TLS off, server requires STARTTLS"), SMTP_TEMPORARY);
    assert_non_null(strstr(g_err, "last reply 530"));
    assert_int_equal(mail_count(&s), 3);
    server_stop(&s);
}

static void test_starttls_auth(void **state)
{
    (void)state;
    static struct server s;
    const char *const extra[] = {"--starttls", "--auth-user", "jwtd", "--auth-password", PASSWORD,
                                 NULL};
    server_start(&s, extra);
    char url[160];
    snprintf(url, sizeof url, "smtp://jwtd:%s@127.0.0.1:%d", PASSWORD_URL, s.port);
    struct smtp_config c = config(&s, "smtp", SMTP_TLS_REQUIRED);
    c.url = url;
    c.ca_file = s.ca;
    assert_int_equal(send_timed(&c, "STARTTLS + AUTH, right password"), SMTP_SENT);
    check_delivered(&s, 1, "1", "jwtd");

    /* The fields win over the URL's credentials. */
    c.username = "jwtd";
    c.password = WRONG_PASSWORD;
    assert_int_equal(send_timed(&c, "STARTTLS + AUTH, wrong password"), SMTP_TEMPORARY);
    assert_int_equal(mail_count(&s), 1);
    server_stop(&s);
}

static void test_implicit_tls(void **state)
{
    (void)state;
    static struct server s;
    const char *const extra[] = {"--implicit-tls", NULL};
    server_start(&s, extra);
    /* smtps is TLS whatever the policy field says. */
    struct smtp_config c = config(&s, "smtps", SMTP_TLS_OFF);
    c.ca_file = s.ca;
    assert_int_equal(send_timed(&c, "smtps, test CA"), SMTP_SENT);
    check_delivered(&s, 1, "1", "");
    c.ca_file = NULL;
    assert_int_equal(send_timed(&c, "smtps, system CAs"), SMTP_TEMPORARY);
    /* smtp:// to a TLS-only port: no greeting it can read. */
    c = config(&s, "smtp", SMTP_TLS_REQUIRED);
    c.ca_file = s.ca;
    c.timeout_ms = 500;
    assert_int_equal(send_timed(&c, "smtp:// to an smtps port"), SMTP_TEMPORARY);
    assert_non_null(strstr(g_err, "timed out"));
    assert_int_equal(mail_count(&s), 1);
    server_stop(&s);
}

static void test_refused_inputs(void **state)
{
    (void)state;
    /* None of these reach the network (port 1 on loopback would refuse
     * anyway, and a refusal would say so). */
    struct smtp_config c = config(NULL, "smtp", SMTP_TLS_OFF);
    char err[256];

    assert_int_equal(smtp_send(&c, "no-at-sign", TO_ADDR, g_msg, g_len, err, sizeof err),
                     SMTP_PERMANENT);
    assert_int_equal(smtp_send(&c, FROM_ADDR, "a@b\r\nRCPT TO:<x@y>", g_msg, g_len, err, sizeof err),
                     SMTP_PERMANENT);
    assert_int_equal(smtp_send(&c, FROM_ADDR, "<zoe@example.com>", g_msg, g_len, err, sizeof err),
                     SMTP_PERMANENT);

    /* Bare LF, bare CR, NUL, no final CRLF, a 999-byte line, too big. */
    static const char *const bad[] = {"a\r\nb\n.\r\n", "a\rb\r\n", "a\r\n", "abc"};
    const size_t bad_len[] = {9, 6, 3, 3};
    for (size_t i = 0; i < 4; i++) {
        char buf[16];
        memcpy(buf, bad[i], bad_len[i]);
        if (i == 2)
            buf[0] = '\0';
        assert_int_equal(smtp_send(&c, FROM_ADDR, TO_ADDR, buf, bad_len[i], err, sizeof err),
                         SMTP_PERMANENT);
        assert_non_null(strstr(err, "CRLF"));
    }
    char *line = malloc(1001);
    assert_non_null(line);
    memset(line, 'a', 999);
    memcpy(line + 999, "\r\n", 2);
    assert_int_equal(smtp_send(&c, FROM_ADDR, TO_ADDR, line, 1001, err, sizeof err),
                     SMTP_PERMANENT);
    free(line);
    assert_int_equal(smtp_send(&c, FROM_ADDR, TO_ADDR, g_msg, SMTP_MAX_MESSAGE_BYTES + 1, err,
                               sizeof err),
                     SMTP_PERMANENT);
    assert_int_equal(smtp_send(&c, FROM_ADDR, TO_ADDR, NULL, 0, err, sizeof err), SMTP_PERMANENT);

    /* Relay set-up faults: not the message's fault, so temporary. */
    static const char *const bad_url[] = {
        "http://127.0.0.1:1", "smtp://127.0.0.1:1/helo.example", "smtp://127.0.0.1:1/?x=1",
        "smtp://127.0.0.1:1/#frag", "smtp://user;AUTH=PLAIN@127.0.0.1:1", "not a url", "",
        "file:///etc/passwd",
    };
    for (size_t i = 0; i < sizeof bad_url / sizeof bad_url[0]; i++) {
        c = config(NULL, "smtp", SMTP_TLS_OFF);
        c.url = bad_url[i];
        if (smtp_send(&c, FROM_ADDR, TO_ADDR, g_msg, g_len, err, sizeof err) != SMTP_TEMPORARY)
            fail_msg("URL %s not refused", bad_url[i]);
        assert_null(strstr(err, "Connection refused"));
        assert_null(strstr(err, "Couldn't connect"));
    }
    c = config(NULL, "smtp", SMTP_TLS_OFF);
    c.url = NULL;
    assert_int_equal(smtp_send(&c, FROM_ADDR, TO_ADDR, g_msg, g_len, err, sizeof err),
                     SMTP_TEMPORARY);
    c = config(NULL, "smtp", (enum smtp_tls)7);
    assert_int_equal(smtp_send(&c, FROM_ADDR, TO_ADDR, g_msg, g_len, err, sizeof err),
                     SMTP_TEMPORARY);
    c = config(NULL, "smtp", SMTP_TLS_OFF);
    c.helo_name = "bad helo\r\nRSET";
    assert_int_equal(smtp_send(&c, FROM_ADDR, TO_ADDR, g_msg, g_len, err, sizeof err),
                     SMTP_TEMPORARY);
    assert_non_null(strstr(err, "helo_name"));
    assert_int_equal(smtp_send(NULL, FROM_ADDR, TO_ADDR, g_msg, g_len, err, sizeof err),
                     SMTP_TEMPORARY);

    c = config(NULL, "smtp", SMTP_TLS_OFF);
    c.password = PASSWORD;
    assert_int_equal(smtp_send(&c, FROM_ADDR, TO_ADDR, g_msg, g_len, err, sizeof err),
                     SMTP_TEMPORARY);
    assert_non_null(strstr(err, "no username"));
    assert_null(strstr(err, PASSWORD));

    /* A password in a URL that fails to parse is not quoted back. */
    c = config(NULL, "smtp", SMTP_TLS_OFF);
    c.url = "smtp://jwtd:" PASSWORD "@127.0.0.1:99999";
    assert_int_equal(smtp_send(&c, FROM_ADDR, TO_ADDR, g_msg, g_len, err, sizeof err),
                     SMTP_TEMPORARY);
    assert_null(strstr(err, PASSWORD));

    /* err may be NULL or tiny. */
    c = config(NULL, "smtp", SMTP_TLS_OFF);
    assert_int_equal(smtp_send(&c, "bad", TO_ADDR, g_msg, g_len, NULL, 0), SMTP_PERMANENT);
    char tiny[4];
    assert_int_equal(smtp_send(&c, "bad", TO_ADDR, g_msg, g_len, tiny, sizeof tiny),
                     SMTP_PERMANENT);
    assert_int_equal(strlen(tiny), 3);
}

static bool python_ready(void)
{
    if (access(PYTHON, X_OK) != 0 || access(SMTP_SERVER_PY, R_OK) != 0)
        return false;
    pid_t pid = fork();
    if (pid < 0)
        return false;
    if (pid == 0) {
        int null = open("/dev/null", O_WRONLY);
        if (null >= 0) {
            dup2(null, STDOUT_FILENO);
            dup2(null, STDERR_FILENO);
        }
        execl(PYTHON, PYTHON, "-c", "import aiosmtpd.smtp, cryptography.x509", (char *)NULL);
        _exit(127);
    }
    int st;
    if (waitpid(pid, &st, 0) != pid)
        return false;
    return WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

int main(void)
{
    if (!python_ready()) {
        fprintf(stderr, "SKIP: needs %s with aiosmtpd and cryptography, and %s\n", PYTHON,
                SMTP_SERVER_PY);
        return 77;
    }
    /* A broken pipe to a dead server child must fail a test, not kill us. */
    signal(SIGPIPE, SIG_IGN);
    if (!smtp_global_init()) {
        fprintf(stderr, "curl_global_init failed\n");
        return 1;
    }
    build_message();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_plain_server, teardown_server),
        cmocka_unit_test_teardown(test_rcpt_451, teardown_server),
        cmocka_unit_test_teardown(test_rcpt_550, teardown_server),
        cmocka_unit_test_teardown(test_mail_from_553, teardown_server),
        cmocka_unit_test_teardown(test_mail_from_451, teardown_server),
        cmocka_unit_test_teardown(test_mail_from_552, teardown_server),
        cmocka_unit_test_teardown(test_data_451, teardown_server),
        cmocka_unit_test_teardown(test_data_554, teardown_server),
        cmocka_unit_test_teardown(test_connection_refused, teardown_server),
        cmocka_unit_test_teardown(test_auth_plain_text_loopback, teardown_server),
        cmocka_unit_test_teardown(test_credentials_need_tls, teardown_server),
        cmocka_unit_test_teardown(test_starttls, teardown_server),
        cmocka_unit_test_teardown(test_starttls_auth, teardown_server),
        cmocka_unit_test_teardown(test_implicit_tls, teardown_server),
        cmocka_unit_test_teardown(test_refused_inputs, teardown_server),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    mime_free(g_msg, g_len);
    smtp_global_cleanup();
    return rc;
}
