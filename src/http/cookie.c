/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Implementation of cookie.h. Values are base64url tokens (no characters
 * that need quoting in a cookie).
 */
#include "http/cookie.h"

#include <stdio.h>
#include <stdlib.h>

#include <microhttpd.h>

#include "http/parse.h"
#include "http/request.h"

const char *cookie_get(struct request *r, const char *name, size_t *ret_len)
{
    const char *v;
    if (!parse_cookie(request_header(r, "Cookie"), name, &v, ret_len))
        return NULL;
    return v;
}

static bool set_cookie(struct request *r, const char *name, const char *value, const char *path,
                       int64_t max_age)
{
    char *h = NULL;
    int n = asprintf(&h, "%s=%s; Path=%s; Max-Age=%lld; HttpOnly; Secure; SameSite=Strict", name,
                     value, path, (long long)max_age);
    if (n < 0)
        return false;
    bool ok = respond_header(r, "Set-Cookie", h);
    free(h);
    return ok;
}

bool cookie_set_tokens(struct request *r, const char *access, int64_t access_max_age,
                       const char *refresh, int64_t refresh_max_age)
{
    return set_cookie(r, COOKIE_ACCESS, access, "/", access_max_age) &&
           set_cookie(r, COOKIE_REFRESH, refresh, "/auth/refresh", refresh_max_age);
}

bool cookie_clear_tokens(struct request *r)
{
    return set_cookie(r, COOKIE_ACCESS, "", "/", 0) &&
           set_cookie(r, COOKIE_REFRESH, "", "/auth/refresh", 0);
}
