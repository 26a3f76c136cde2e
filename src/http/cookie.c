/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Implementation of cookie.h. Values are base64url tokens (no characters
 * that need quoting in a cookie).
 */
#include "http/cookie.h"

#include <stdio.h>
#include <stdlib.h>

#include <microhttpd.h>

#include "core/config.h"
#include "http/parse.h"
#include "http/request.h"

const char *cookie_access_name(const struct config *cfg)
{
    return cfg->cookie_domain ? COOKIE_ACCESS_DOMAIN : COOKIE_ACCESS_HOST;
}

const char *cookie_get(struct request *r, const char *name, size_t *ret_len)
{
    const char *v;
    if (!parse_cookie(request_header(r, "Cookie"), name, &v, ret_len))
        return NULL;
    return v;
}

static bool set_cookie(struct request *r, const char *name, const char *value, const char *path,
                       const char *domain, int64_t max_age)
{
    const struct config *cfg = r->app->cfg;
    char *h = NULL;
    int n = asprintf(&h, "%s=%s; Path=%s%s%s; Max-Age=%lld; HttpOnly; Secure; SameSite=%s", name,
                     value, path, domain ? "; Domain=" : "", domain ? domain : "",
                     (long long)max_age, cfg->cookie_samesite_lax ? "Lax" : "Strict");
    if (n < 0)
        return false;
    bool ok = respond_header(r, "Set-Cookie", h);
    free(h);
    return ok;
}

bool cookie_set_tokens(struct request *r, const char *access, int64_t access_max_age,
                       const char *refresh, int64_t refresh_max_age)
{
    const struct config *cfg = r->app->cfg;
    return set_cookie(r, cookie_access_name(cfg), access, "/", cfg->cookie_domain,
                      access_max_age) &&
           set_cookie(r, COOKIE_REFRESH, refresh, "/auth/refresh", NULL, refresh_max_age);
}

bool cookie_set_hint(struct request *r, int64_t max_age)
{
    return set_cookie(r, COOKIE_SESSION_HINT, max_age > 0 ? "1" : "", "/", NULL, max_age);
}

bool cookie_clear_tokens(struct request *r)
{
    const struct config *cfg = r->app->cfg;
    return set_cookie(r, cookie_access_name(cfg), "", "/", cfg->cookie_domain, 0) &&
           set_cookie(r, COOKIE_REFRESH, "", "/auth/refresh", NULL, 0);
}
