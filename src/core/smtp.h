/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Handing one finished message (see mime.h) to an SMTP relay with libcurl,
 * and saying whether to try again. No queue, no retry policy, no logging:
 * jwtd's mail thread owns those and calls smtp_send once per attempt.
 * Peers are always verified (there is no switch to turn it off), and the
 * relay password never appears in an error text.
 */
#ifndef JWTD_SMTP_H
#define JWTD_SMTP_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

/* The largest message smtp_send takes (the same cap as mime.h's output). */
#define SMTP_MAX_MESSAGE_BYTES (256u * 1024u)
/* Username and password, each (bytes). */
#define SMTP_CREDENTIAL_MAX_BYTES 256
/* The relay URL (bytes). */
#define SMTP_URL_MAX_BYTES 2048

/* TLS for smtp:// URLs. An smtps:// URL is TLS from the first byte whatever
 * this says. Zero, the default of a zeroed config, is the safe one. */
enum smtp_tls {
    SMTP_TLS_REQUIRED = 0,      /* STARTTLS, or fail without sending anything */
    SMTP_TLS_OPPORTUNISTIC = 1, /* STARTTLS when offered, else plain text */
    SMTP_TLS_OFF = 2,           /* plain text */
};

struct smtp_config {
    /* smtp://host[:port] or smtps://host[:port], optionally with
     * user:password@ (percent-encoded) before the host. Path, query and
     * fragment are refused. */
    const char *url;
    /* When non-NULL they replace the URL's user and password. Credentials
     * are only ever sent under TLS (smtps://, or SMTP_TLS_REQUIRED), or to a
     * loopback relay (localhost, 127.0.0.0/8, [::1]); otherwise smtp_send
     * refuses before connecting. A password without a username is refused
     * too. If the relay offers no AUTH, libcurl sends without logging in. */
    const char *username;
    const char *password;
    enum smtp_tls tls;
    const char *ca_file;     /* PEM bundle of trusted CAs; NULL: the system store */
    long connect_timeout_ms; /* <= 0: 10 s */
    /* The whole exchange, DNS and connect included, up to the reply to QUIT;
     * <= 0: 60 s. Enforced here, checked at least once a second: libcurl's
     * own CURLOPT_TIMEOUT does not cover its waits for the reply to the end
     * of DATA or to QUIT (120 s each, whatever the setting). */
    long timeout_ms;
    /* When non-NULL: the attempt ends (SMTP_TEMPORARY) within about a second
     * of *cancel becoming true, whatever step it is at (a stopping server
     * must not wait out a silent relay) - but once the whole message is
     * out, the relay's answer to it is awaited up to 2 s more (cut there,
     * the message would go out twice). */
    const atomic_bool *cancel;
    /* The name announced in EHLO; NULL: libcurl's default (this machine's
     * host name). Letters, digits, '-' and '.', at most 253 bytes. */
    const char *helo_name;
};

enum smtp_rc {
    SMTP_SENT = 0,      /* the relay took the message (250 after DATA) */
    SMTP_TEMPORARY = 1, /* not sent; the same message may succeed later */
    SMTP_PERMANENT = 2, /* not sent; sending it again will fail again */
};

/* Call once at program start-up, before any thread calls smtp_send (it runs
 * curl_global_init, which is not thread-safe with every libcurl build).
 * False when libcurl could not initialise. */
bool smtp_global_init(void);

/* The matching clean-up at exit, after the last smtp_send. */
void smtp_global_cleanup(void);

/* What smtp_send would refuse of cfg before connecting (the TLS policy,
 * the EHLO name, the relay URL, credentials that would go out without TLS),
 * said ahead: the configuration checks the relay with it at load, so that
 * a URL no message could go out through stops the start. False with one
 * line in err (never the password); no connection is made. */
bool smtp_config_check(const struct smtp_config *cfg, char *err, size_t errlen);

/* Send message[0..len) from from_addr to to_addr (the envelope: MAIL FROM
 * and one RCPT TO; both must pass mime_addr_valid) through the relay of
 * cfg. The message must be CRLF-terminated lines only (no bare CR or LF, no
 * NUL, lines of at most 998 bytes, RFC 5321 section 4.5.3.1.6), which also
 * rules out SMTP smuggling; libcurl does the dot-stuffing.
 *
 * Classification:
 *   SMTP_SENT      - 250 to the end of DATA.
 *   SMTP_TEMPORARY - no connection (refused, DNS, timeouts), a dropped
 *                    connection, a TLS failure (no STARTTLS when required,
 *                    handshake or certificate failure), any 4xx reply,
 *                    refused authentication (535 and the like) and a
 *                    530 "authentication required", a 5xx to the
 *                    greeting, to EHLO or to MAIL FROM but 552 (the relay
 *                    refuses this client or the sender address), and configuration
 *                    faults (bad URL or CA file, credentials without TLS).
 *                    These are faults of the relay or of its set-up, not
 *                    of the message: the message is kept and may go out
 *                    once the operator fixes them; the caller's retry limit
 *                    ends it otherwise.
 *   SMTP_PERMANENT - any other 5xx reply (to RCPT TO or DATA: 550 no such
 *                    user, 554, 552 ...),
 *                    and a message or envelope address smtp_send refuses to
 *                    send (malformed, too large).
 * err (errlen bytes, may be NULL/0) receives one line for the operator:
 * the relay's scheme://host:port, what failed and the last reply code. It
 * never contains the password.
 *
 * Thread-safe: every call uses its own libcurl easy handle and connection
 * (no connection reuse between calls), so calls may run in parallel. It
 * blocks for at most about timeout_ms (connecting included). The caller
 * keeps ownership of everything it passes; nothing is retained. libcurl
 * keeps its own copies of the password and of message chunks while the
 * call runs and frees them without wiping them (outside this module's
 * reach). */
enum smtp_rc smtp_send(const struct smtp_config *cfg, const char *from_addr, const char *to_addr,
                       const char *message, size_t len, char *err, size_t errlen);

#endif
