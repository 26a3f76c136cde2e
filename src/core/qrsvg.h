/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A string as a QR code in SVG (through libqrencode), for the TOTP
 * enrolment page. The SVG is meant to be inlined in a page served under a
 * strict Content-Security-Policy: it has no style attribute, no <style> and
 * no <script>, only presentation attributes. Pure: no I/O, no logging.
 */
#ifndef JWTD_QRSVG_H
#define JWTD_QRSVG_H

#include <stdbool.h>
#include <stddef.h>

/* Longer texts are refused (an otpauth URI is ~150 bytes). */
#define QRSVG_MAX_TEXT_BYTES 1024
/* Longer titles are refused. */
#define QRSVG_MAX_TITLE_BYTES 256
/* White border, in modules, that scanners need around the symbol. */
#define QRSVG_QUIET_MODULES 4
/* Default rendered size of one module (width and height attributes). */
#define QRSVG_PX_PER_MODULE 4

/* Encode text (NUL-terminated, 1 to QRSVG_MAX_TEXT_BYTES bytes) in 8-bit
 * mode at error correction level M, smallest version that fits, and draw
 * it as a standalone <svg> element whose <title> is `title` (non-empty
 * UTF-8 without control characters, at most QRSVG_MAX_TITLE_BYTES bytes;
 * escaped here). On success *ret_svg is a new NUL-terminated string of
 * *ret_len bytes that the caller frees with free(). When text is a secret
 * (an otpauth URI is), the SVG spells it too: wipe it with
 * OPENSSL_cleanse(svg, len) before free(). False (outputs untouched) on
 * bad arguments or when memory runs out. */
bool qrsvg_render(const char *text, const char *title, char **ret_svg, size_t *ret_len);

#endif /* JWTD_QRSVG_H */
