/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Small helpers every server module uses: clocks, RFC 3339 time stamps,
 * CSPRNG bytes and UUIDv7 ids, strict number/duration parsing, and a byte
 * buffer that refuses to grow past a cap. Nothing here logs or exits.
 */
#ifndef JWTD_UTIL_H
#define JWTD_UTIL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define UUID_STR_LEN 37   /* 36 characters + NUL */
#define RFC3339_LEN 21    /* "2026-11-28T20:00:00Z" + NUL */

/* Wall-clock time in seconds / milliseconds since the Unix epoch (plus the
 * test clock's offset, when one is set). */
int64_t util_now(void);
int64_t util_now_ms(void);

/* Tests only (JWTD_TEST_CLOCK): map the file at path, whose first 8 bytes
 * are a little-endian offset in milliseconds added to the wall clock, so
 * that a test can move time forward without waiting. False when the file
 * cannot be mapped. Call before any thread starts. */
bool util_test_clock(const char *path);
bool util_test_clock_on(void);
/* Monotonic milliseconds / microseconds, for intervals. */
int64_t util_mono_ms(void);
int64_t util_mono_us(void);

/* Format t (seconds) as RFC 3339 UTC with second precision. */
void util_rfc3339(int64_t t, char out[RFC3339_LEN]);

/* Fill buf with n bytes from the CSPRNG. Returns false when it fails. */
bool util_random(void *buf, size_t n);

/* A new UUIDv7 (RFC 9562) string, lower-case hex. False on CSPRNG failure. */
bool util_uuid7(char out[UUID_STR_LEN]);

/* A UUIDv7 for correlation only (request ids): its random bits come from a
 * per-thread generator seeded once from the CSPRNG, so ids are unique but
 * not unpredictable. Costs no system call (util_uuid7 costs a CSPRNG call,
 * about 5% of an /auth/verify answer). Never for anything secret or
 * stored as an identifier. */
void util_uuid7_weak(char out[UUID_STR_LEN]);

/* True when s is a canonical lower- or upper-case UUID string. */
bool util_is_uuid(const char *s);

/* UUID text <-> 16 bytes. */
bool util_uuid_to_bytes(const char *s, uint8_t out[16]);
void util_uuid_from_bytes(const uint8_t in[16], char out[UUID_STR_LEN]);

/* Parse a whole decimal integer within [min, max]. No sign for min >= 0,
 * no spaces, no trailing characters. */
bool util_parse_int(const char *s, int64_t min, int64_t max, int64_t *ret_value);

/* Parse a duration: "900", "900s", "15m", "1h", "30d" (also "250ms" when
 * ret_ms is wanted). Result in seconds, or in milliseconds with _ms. */
bool util_parse_duration(const char *s, int64_t *ret_seconds);
bool util_parse_duration_ms(const char *s, int64_t *ret_ms);

/* strdup that returns NULL for NULL. */
char *util_strdup(const char *s);

/* Growable byte buffer with a hard cap (curl's dynbuf idea): appends that
 * would pass `limit` fail instead of growing. data is always NUL-terminated
 * after a successful append. */
struct buf {
    char *data;
    size_t len;
    size_t cap;
    size_t limit;
    bool secret; /* growth wipes the storage it leaves (buf_init_secret) */
};

void buf_init(struct buf *b, size_t limit);
/* For content that must not outlive the buffer: growing copies to new
 * storage and wipes the old (realloc would leave it behind, unwiped). Free
 * it with buf_wipe_free. */
void buf_init_secret(struct buf *b, size_t limit);
/* Append n bytes; false when the cap is reached or memory runs out (the
 * buffer keeps its previous content). */
bool buf_append(struct buf *b, const void *p, size_t n);
bool buf_appends(struct buf *b, const char *s);
bool buf_printf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
bool buf_vprintf(struct buf *b, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));
/* Free the storage and reset; secret buffers are wiped first with _wipe. */
void buf_free(struct buf *b);
void buf_wipe_free(struct buf *b);
/* Hand the storage to the caller (free() it); the buffer is reset. */
char *buf_steal(struct buf *b);

/* n bytes as 2n lower-case hex digits and a NUL (out holds 2n + 1). */
void util_hex(const uint8_t *d, size_t n, char *out);
/* Hex text (either case, even length) to at most cap bytes. */
bool util_unhex(const char *s, uint8_t *out, size_t cap, size_t *ret_len);

/* The UTF-8 sequence at s[0..n): its length, with its code point in
 * *ret_cp (may be NULL), or 0 when it is not valid UTF-8 (overlong forms,
 * surrogates and code points past U+10FFFF included). */
size_t util_utf8_decode(const char *s, size_t n, uint32_t *ret_cp);

/* Case-insensitive ASCII equality. */
bool util_ascii_ieq(const char *a, const char *b);

/*
 * Database URLs and connection strings carry passwords (postgres://u:PW@h/db,
 * ?password=PW, password=PW). util_redact_url writes the URL with each
 * password shown as ***; util_redact_text writes a message (a driver's
 * error, which may quote the URL) with every occurrence of those passwords
 * replaced by ***. Both truncate to cap. util_url_has_password: whether
 * the URL carries one.
 */
void util_redact_url(const char *url, char *out, size_t cap);

/* A numeric IP address in one spelling, for comparing and as a rate-limit
 * key: IPv4 dotted; IPv6 as inet_ntop writes it (lower case, compressed),
 * an IPv4-mapped one (::ffff:a.b.c.d) as the IPv4 address it is. False
 * when in is not a bare numeric address or out is too small. */
bool util_addr_canonical(const char *in, char *out, size_t cap);
bool util_url_has_password(const char *url);
void util_redact_text(const char *text, const char *url, char *out, size_t cap);

#endif /* JWTD_UTIL_H */
