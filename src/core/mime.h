/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The format of the e-mails jwtd sends (account recovery): one RFC 5322
 * message with a multipart/alternative body (text/plain and text/html, both
 * UTF-8 and quoted-printable), RFC 2047 encoded-words for non-ASCII subjects
 * and display names, CRLF line endings throughout. Pure: no clock (the
 * caller passes the Date), no I/O, no logging; the only outside input is
 * RAND_bytes for the multipart boundary. Every header input is checked so
 * that nothing the caller passes can add a header or a recipient.
 */
#ifndef JWTD_MIME_H
#define JWTD_MIME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The whole message, headers and both parts, may not exceed this. */
#define MIME_MAX_BYTES (256u * 1024u)
/* An addr-spec: RFC 5321 section 4.5.3.1.3 (path of 256 minus the <>). */
#define MIME_ADDR_MAX_BYTES 254
/* Subject and display names (UTF-8 bytes, before encoding). */
#define MIME_TEXT_MAX_BYTES 512
/* The Message-ID without its angle brackets. */
#define MIME_MSGID_MAX_BYTES 250
/* RFC 2046 section 5.1.1: a boundary is 1 to 70 characters. */
#define MIME_BOUNDARY_MAX_BYTES 70

enum mime_rc {
    MIME_OK = 0,
    MIME_INVALID = -1, /* a field is missing, malformed or would inject a header */
    MIME_TOO_BIG = -2, /* an input or the output passes its cap */
    MIME_ERROR = -3,   /* out of memory or RAND_bytes failed */
};

/* What one message says. The strings are NUL-terminated UTF-8 and belong to
 * the caller; mime_build only reads them. */
struct mime_message {
    const char *from_name; /* display name, NULL or "" for none */
    const char *from_addr; /* addr-spec, as for mime_addr_valid */
    const char *to_name;   /* display name, NULL or "" for none */
    const char *to_addr;   /* addr-spec */
    const char *subject;   /* may be "" */
    int64_t date;          /* Unix time of the Date header (shown in UTC) */
    /* id-left@id-right without the angle brackets (mime_build adds them).
     * jwtd keeps it stable for a queued message so that a resend after a
     * crash carries the same Message-ID and receivers can fold duplicates. */
    const char *message_id;
    const char *text; /* the text/plain part; LF or CRLF line ends */
    const char *html; /* the text/html part; LF or CRLF line ends */
    /* NULL in production: a fresh "=_jwtd_" + 32 hex digits from RAND_bytes.
     * Tests set a fixed one, which must be 1-70 RFC 2046 bchars, not end in
     * a space, and contain "=_" (see mime.c for why). */
    const char *boundary;
};

/* Build the message m into a new buffer: *ret_buf (NUL-terminated for
 * convenience) holds *ret_len bytes, CRLF line endings, at most
 * MIME_MAX_BYTES. Refuses (MIME_INVALID) CR, LF or other control characters
 * in any header input, invalid UTF-8 anywhere, addresses that fail
 * mime_addr_valid, a Message-ID that is not dot-atom@dot-atom, a date
 * outside years 1970-9999 and a bad test boundary. The message carries the
 * recovery secret, so the caller frees it with mime_free, which wipes it.
 * On failure nothing is returned and every intermediate buffer is wiped. */
enum mime_rc mime_build(const struct mime_message *m, char **ret_buf, size_t *ret_len);

/* Wipe len bytes of buf and free it. NULL-safe. */
void mime_free(char *buf, size_t len);

/* A plausible addr-spec, and one that is safe to put in a header or an SMTP
 * command: at most MIME_ADDR_MAX_BYTES, exactly one '@', a dot-atom local
 * part of 1-64 printable ASCII characters (RFC 5322 atext and inner dots),
 * a domain of dot-separated labels of letters, digits and inner hyphens.
 * Quoted local parts, address literals and non-ASCII (SMTPUTF8) addresses
 * are refused. */
bool mime_addr_valid(const char *addr);

/* Whether mime_build takes s as a display name or a subject: at most
 * MIME_TEXT_MAX_BYTES, well-formed UTF-8, no control character (C0, DEL).
 * For settings checked when they are read rather than at each message. */
bool mime_header_text_valid(const char *s);

/* Whether s[0..n) is well-formed UTF-8 (no overlong forms, surrogates or
 * code points beyond U+10FFFF). */
bool mime_utf8_valid(const char *s, size_t n);

#endif
