/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Fuzz target: the request-header parsers of src/http/parse.c
 * (Authorization, Cookie, Content-Type, X-Forwarded-For, Origin/Host). The
 * input is cut at newlines into the header values; every result must point
 * inside its input.
 */
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"
#include "http/parse.h"

static bool trust_some(void *ctx, const char *addr)
{
    (void)ctx;
    return strcmp(addr, "10.0.0.1") == 0 || strcmp(addr, "::1") == 0;
}

static void inside(const char *p, size_t n, const char *base, size_t blen)
{
    if (p < base || p + n > base + blen)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *buf = fuzz_text(data, size);
    if (!buf)
        return 0;
    char *fields[3] = {buf, buf, buf};
    char *nl = strchr(buf, '\n');
    if (nl) {
        *nl = '\0';
        fields[1] = fields[2] = nl + 1;
        char *nl2 = strchr(nl + 1, '\n');
        if (nl2) {
            *nl2 = '\0';
            fields[2] = nl2 + 1;
        }
    }
    size_t n = 0;
    const char *t = parse_bearer(fields[0], &n);
    if (t)
        inside(t, n, fields[0], strlen(fields[0]));
    const char *v = NULL;
    if (parse_cookie(fields[0], "__Host-jwtd_access", &v, &n))
        inside(v, n, fields[0], strlen(fields[0]));
    if (parse_cookie(fields[0], fields[1], &v, &n))
        inside(v, n, fields[0], strlen(fields[0]));
    (void)parse_content_type_json(fields[1]);
    char out[64];
    if (parse_forwarded_client(fields[2], trust_some, NULL, out, sizeof out) &&
        strlen(out) >= sizeof out)
        abort();
    /* The public origin as a browser would send it matches itself. */
    if (!parse_same_origin(fields[1], fields[2], fields[1], size && (data[0] & 1)))
        abort();
    (void)parse_same_origin(fields[1], fields[2], fields[0], size && (data[0] & 1));
    free(buf);
    return 0;
}
