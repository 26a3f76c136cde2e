/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Passwords for `jwtd user add` and `user passwd`: from a terminal, typed
 * blind and asked twice, or one line of stdin. Never from the command line,
 * where `ps` shows them.
 *
 * While the echo is off, the signals that end or stop a process from the
 * terminal (Ctrl-C, Ctrl-\, Ctrl-Z, a hang-up, kill) are caught: the echo
 * is turned back on before the signal takes its course, so the shell never
 * gets back a terminal that hides what is typed. Then the signal is raised
 * again with its own disposition: the process dies of it (a script sees
 * why), or stops and, once continued, asks again.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "cli/cli.h"

enum line_result { LINE_OK, LINE_TOO_LONG, LINE_INTERRUPTED };

static const int prompt_signals[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGTSTP, SIGTTIN, SIGTTOU};
#define N_PROMPT_SIGNALS (sizeof prompt_signals / sizeof prompt_signals[0])

static volatile sig_atomic_t prompt_caught;
/* Written by the handler. Any thread may take a process signal (the
 * hashing threads of the open app do not block them), so the pipe, not
 * EINTR, is what wakes the thread waiting at the prompt. Made once and
 * never closed: a handler running late on another thread must not write to
 * a closed or reused descriptor. */
static int prompt_wake[2] = {-1, -1};

static void on_prompt_signal(int sig)
{
    int saved = errno;
    prompt_caught = sig;
    ssize_t w = write(prompt_wake[1], "", 1);
    (void)w;
    errno = saved;
}

static void drain_wake(void)
{
    char drain[16];
    while (read(prompt_wake[0], drain, sizeof drain) > 0) {
    }
}

/* Catch the prompt signals; saved[] gets their dispositions. A signal the
 * process ignores (nohup) stays ignored. */
static bool prompt_catch(struct sigaction saved[N_PROMPT_SIGNALS])
{
    if (prompt_wake[0] < 0 && pipe2(prompt_wake, O_CLOEXEC | O_NONBLOCK) != 0)
        return false;
    drain_wake();
    prompt_caught = 0;
    struct sigaction sa = {.sa_handler = on_prompt_signal};
    sigemptyset(&sa.sa_mask);
    for (size_t i = 0; i < N_PROMPT_SIGNALS; i++)
        sigaddset(&sa.sa_mask, prompt_signals[i]);
    for (size_t i = 0; i < N_PROMPT_SIGNALS; i++) {
        sigaction(prompt_signals[i], NULL, &saved[i]);
        if (saved[i].sa_handler != SIG_IGN)
            sigaction(prompt_signals[i], &sa, NULL);
    }
    return true;
}

static void prompt_release(const struct sigaction saved[N_PROMPT_SIGNALS])
{
    for (size_t i = 0; i < N_PROMPT_SIGNALS; i++)
        sigaction(prompt_signals[i], &saved[i], NULL);
}

/* Wait for input on fd; false when a prompt signal came first. */
static bool wait_input(int fd)
{
    struct pollfd p[2] = {{.fd = fd, .events = POLLIN}, {.fd = prompt_wake[0], .events = POLLIN}};
    while (!prompt_caught) {
        int r = poll(p, 2, -1);
        if (r > 0 && !(p[1].revents & POLLIN))
            return true; /* input, or the end of it: read says which */
        if (r < 0 && errno != EINTR)
            return true; /* cannot wait: read blocks, as it would anyway */
        if (r > 0 && !prompt_caught)
            drain_wake(); /* a late write of an earlier prompt's handler */
    }
    return false;
}

/* One line of fd into out (without its newline); with wait, a prompt
 * signal ends it early. */
static enum line_result read_line(int fd, bool wait, char *out, size_t cap, size_t *ret_len)
{
    size_t n = 0;
    bool too_long = false;
    for (;;) {
        if (wait && !wait_input(fd)) {
            out[0] = '\0';
            return LINE_INTERRUPTED;
        }
        char ch;
        ssize_t r = read(fd, &ch, 1);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0 || ch == '\n')
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
    return too_long ? LINE_TOO_LONG : LINE_OK;
}

/* One entry typed blind: echo off, the prompt, a line, the echo back. */
static enum line_result ask_blind(const struct termios *old, const char *prompt, char *out,
                                  size_t cap, size_t *ret_len)
{
    struct termios quiet = *old;
    quiet.c_lflag &= ~(tcflag_t)(ECHO | ECHONL);
    quiet.c_lflag |= ICANON;
    /* Echo off first, then the prompt: what is typed the moment the prompt
     * shows is neither echoed nor discarded. */
    tcsetattr(STDIN_FILENO, TCSANOW, &quiet);
    fprintf(stderr, "%s", prompt);
    fflush(stderr);
    enum line_result r = read_line(STDIN_FILENO, true, out, cap, ret_len);
    tcsetattr(STDIN_FILENO, TCSANOW, old);
    fprintf(stderr, "\n");
    return r;
}

struct entries {
    char *first, *again;
    size_t first_cap, again_cap, first_len, again_len;
};

/* The password, and its confirmation when confirm, with the prompt signals
 * caught. LINE_INTERRUPTED with *ret_sig the signal, the echo back on. */
static enum line_result ask_tty(const struct termios *old, const char *prompt, bool confirm,
                                struct entries *e, int *ret_sig)
{
    struct sigaction saved[N_PROMPT_SIGNALS];
    *ret_sig = 0;
    if (!prompt_catch(saved))
        return LINE_INTERRUPTED; /* no pipe: *ret_sig stays 0 */
    enum line_result r = ask_blind(old, prompt, e->first, e->first_cap, &e->first_len);
    if (r == LINE_OK && confirm)
        r = ask_blind(old, "Again: ", e->again, e->again_cap, &e->again_len);
    *ret_sig = prompt_caught;
    prompt_release(saved);
    return r;
}

/* The interrupting signal takes its course now that the echo is back: true
 * when the process was stopped and continued (ask again), false when it
 * lives on (the signal is ignored, or no signal). */
static bool pass_signal_on(int sig)
{
    if (sig == 0)
        return false;
    raise(sig);
    return sig == SIGTSTP || sig == SIGTTIN || sig == SIGTTOU;
}

static int read_stdin(char *out, size_t cap, size_t *ret_len)
{
    size_t n = 0;
    if (read_line(STDIN_FILENO, false, out, cap, &n) != LINE_OK) {
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

static int read_tty(const char *prompt, bool confirm, char *out, size_t cap, size_t *ret_len)
{
    struct termios old;
    if (tcgetattr(STDIN_FILENO, &old) != 0) {
        fprintf(stderr, "jwtd: cannot turn off the terminal's echo\n");
        return 1;
    }
    char again[1100];
    struct entries e = {out, again, cap, sizeof again, 0, 0};
    enum line_result r;
    int sig = 0, rc = 0;
    while ((r = ask_tty(&old, prompt, confirm, &e, &sig)) == LINE_INTERRUPTED) {
        OPENSSL_cleanse(out, cap);
        OPENSSL_cleanse(again, sizeof again);
        if (!pass_signal_on(sig))
            break;
    }
    if (r == LINE_INTERRUPTED) {
        fprintf(stderr, "jwtd: interrupted; nothing changed\n");
        rc = 1;
    } else if (r == LINE_TOO_LONG) {
        fprintf(stderr, "jwtd: the password is too long\n");
        rc = 1;
    } else if (e.first_len == 0) {
        fprintf(stderr, "jwtd: no password given\n");
        rc = 2;
    } else if (confirm && (e.again_len != e.first_len ||
                           CRYPTO_memcmp(out, again, e.first_len) != 0)) {
        fprintf(stderr, "jwtd: the passwords differ; nothing changed\n");
        rc = 1;
    }
    OPENSSL_cleanse(again, sizeof again);
    if (rc != 0)
        OPENSSL_cleanse(out, cap);
    else
        *ret_len = e.first_len;
    return rc;
}

int cli_read_password(const char *prompt, bool force_stdin, bool confirm, char *out, size_t cap,
                      size_t *ret_len)
{
    if (!isatty(STDIN_FILENO))
        return read_stdin(out, cap, ret_len);
    /* --password-stdin typed at a terminal: one line all the same, but
     * not shown on the screen. */
    return read_tty(prompt, confirm && !force_stdin, out, cap, ret_len);
}
