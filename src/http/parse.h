/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Pure parsers of request headers (no libmicrohttpd, no allocation), kept
 * apart so that they can be fuzzed and unit-tested directly: Authorization
 * (Bearer), Cookie, Content-Type, X-Forwarded-For, Origin. Every input is
 * treated as hostile; outputs point into the input or are copied under a cap.
 */
#ifndef JWTD_PARSE_H
#define JWTD_PARSE_H

#include <stdbool.h>
#include <stddef.h>

/* The token of `Authorization: Bearer <token>` (scheme case-insensitive,
 * spaces/tabs trimmed), pointing into the header; NULL for another scheme
 * or a header without a token separator. *ret_len may be 0. */
const char *parse_bearer(const char *authorization, size_t *ret_len);

/* The value of cookie `name` in a Cookie header (RFC 6265 §5.4 pairs,
 * "; "-separated), pointing into the header. False when absent, and when
 * the name comes twice: a browser sends two cookies of one name when a
 * sibling subdomain set one for the parent domain (or a longer path) beside
 * ours (RFC 6265 §8.6, "cookie tossing"), and taking either could sign the
 * browser into someone else's session. */
bool parse_cookie(const char *header, const char *name, const char **ret_value,
                  size_t *ret_len);

/* True when a Content-Type is application/json, optionally with a UTF-8
 * charset parameter (case-insensitive). */
bool parse_content_type_json(const char *content_type);

/* True when a Content-Type is application/x-www-form-urlencoded (with
 * optional parameters, case-insensitive). */
bool parse_content_type_form(const char *content_type);

/* Decode one application/x-www-form-urlencoded component ('+' is a space,
 * %XX a byte) into out (cap bytes with the NUL). False when malformed
 * (a bad escape, a NUL byte) or too long. */
bool parse_form_component(const char *in, size_t len, char *out, size_t cap, size_t *ret_len);

/* True when the len bytes of a header field value hold no control
 * character but HTAB (RFC 9110, 5.5: no CTL; a bare CR or LF inside a value
 * may end the line for another reader). */
bool parse_field_value_ok(const char *value, size_t len);

/* Decode %XX escapes of a request path or query component in place (the
 * HTTP library's unescaping, MHD_OPTION_UNESCAPE_CALLBACK): a bad escape
 * is kept as it is, and so is %00, which would otherwise end the string
 * early ("/healthz%00/x" is not "/healthz"). Returns the new length. */
size_t parse_unescape_url(char *s);

/* For a request target in absolute-form (RFC 9112, 3.2.2:
 * "http://host[:port]/path", scheme http or https, case-insensitive): its
 * path ("/" when it has none), and in *ret_authority / *ret_len its
 * authority, pointing into the target. NULL for any other target (origin
 * form "/path", "*", an empty authority). */
const char *parse_absolute_form(const char *target, const char **ret_authority,
                                size_t *ret_len);

/* True when a Host header value is uri-host [":" port] (RFC 9112 §3.2,
 * RFC 3986 §3.2.2): a reg-name (unreserved, %XX, sub-delims; may be
 * empty) or an IP literal in brackets, and a port of digits. */
bool parse_host_valid(const char *host);

/* The client of an X-Forwarded-For list: walking from the right, the first
 * address that `trusted` does not accept (or the leftmost). Every entry
 * walked must be a numeric IPv4/IPv6 address (entries left of the answer are
 * never read, whatever their length); false (use the socket peer)
 * otherwise. */
bool parse_forwarded_client(const char *xff, bool (*trusted)(void *ctx, const char *addr),
                            void *ctx, char *out, size_t cap);

/*
 * True when origin (an Origin header, "scheme://host[:port]") is this
 * server's own: public_origin (JWTD_PUBLIC_URL's scheme://host[:port],
 * NULL when unset) exactly; else the authority of the Host header
 * (case-insensitive) with the scheme the request came by - https with TLS
 * on (tls), http or https without (a proxy may have ended TLS) - but never
 * public_origin's host by another scheme or port.
 */
bool parse_same_origin(const char *origin, const char *host, const char *public_origin, bool tls);

/*
 * The origin ("scheme://authority") of a Referer header's absolute http or
 * https URL, into out (NUL-terminated). False for anything else: another
 * scheme, a relative reference, no or an empty authority, userinfo (a
 * browser never sends one), or an origin longer than cap.
 */
bool parse_referer_origin(const char *referer, char *out, size_t cap);

#endif /* JWTD_PARSE_H */
