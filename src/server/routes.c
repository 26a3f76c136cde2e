/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Implementation of routes.h: a small static table, searched linearly (the
 * hot route, /auth/verify, is first).
 */
#include "server/routes.h"

#include <string.h>

#include "api/handlers.h"
#include "pages/pages.h"

const struct route routes_table[] = {
    {"/auth/verify", "verify", ROUTE_INLINE, {{M_GET, api_verify, BODY_NONE}}},
    {"/auth/me", "me", ROUTE_IO,
     {{M_GET, api_me, BODY_NONE}, {M_DELETE, api_me_delete, BODY_JSON}, {M_PATCH, api_me_patch, BODY_JSON}}},
    {"/auth/login", "login", ROUTE_IO, {{M_POST, api_login, BODY_JSON}}},
    {"/auth/refresh", "refresh", ROUTE_IO, {{M_POST, api_refresh, BODY_JSON}}},
    {"/auth/signup", "signup", ROUTE_IO, {{M_POST, api_signup, BODY_JSON}}},
    {"/auth/logout", "logout", ROUTE_IO, {{M_POST, api_logout, BODY_JSON}}},
    {"/auth/password", "password", ROUTE_IO, {{M_POST, api_password, BODY_JSON}}},
    {"/auth/sessions", "sessions", ROUTE_IO, {{M_GET, api_sessions, BODY_NONE}}},
    {"/auth/email/verify/request", "email_verify_request", ROUTE_IO,
     {{M_POST, api_email_verify_request, BODY_JSON}}},
    {"/auth/email/verify", "email_verify", ROUTE_IO, {{M_POST, api_email_verify, BODY_JSON}}},
    {"/auth/password/forgot", "password_forgot", ROUTE_IO, {{M_POST, api_password_forgot, BODY_JSON}}},
    {"/auth/password/reset", "password_reset", ROUTE_IO, {{M_POST, api_password_reset, BODY_JSON}}},
    {"/auth/mfa", "mfa", ROUTE_IO, {{M_GET, api_mfa_status, BODY_NONE}}},
    {"/auth/mfa/verify", "mfa_verify", ROUTE_IO, {{M_POST, api_mfa_verify, BODY_JSON}}},
    {"/auth/mfa/totp", "totp", ROUTE_IO,
     {{M_POST, api_totp_enroll, BODY_JSON}, {M_DELETE, api_totp_remove, BODY_JSON}}},
    {"/auth/mfa/totp/confirm", "totp_confirm", ROUTE_IO, {{M_POST, api_totp_confirm, BODY_JSON}}},
    {"/auth/mfa/recovery-codes", "recovery_codes", ROUTE_IO,
     {{M_POST, api_recovery_codes, BODY_JSON}}},
    {"/auth/passkeys", "passkeys", ROUTE_IO,
     {{M_GET, api_passkeys_list, BODY_NONE}, {M_DELETE, api_passkeys_delete, BODY_JSON}}},
    {"/auth/passkeys/register/options", "passkey_register_options", ROUTE_IO,
     {{M_POST, api_passkey_register_options, BODY_JSON}}},
    {"/auth/passkeys/register", "passkey_register", ROUTE_IO,
     {{M_POST, api_passkey_register, BODY_JSON}}},
    {"/auth/passkeys/login/options", "passkey_login_options", ROUTE_IO,
     {{M_POST, api_passkey_login_options, BODY_JSON}}},
    {"/auth/passkeys/login", "passkey_login", ROUTE_IO, {{M_POST, api_passkey_login, BODY_JSON}}},
    {"/auth/sessions/", "session", ROUTE_IO, {{M_DELETE, api_session_delete, BODY_NONE}}},
    {"/auth/refresh/continue", "refresh_continue", ROUTE_IO,
     {{M_GET, page_refresh_continue, BODY_NONE}}},
    {"/auth/refresh/signout", "page_signout", ROUTE_IO, {{M_POST, page_signout, BODY_FORM}}},
    /* pages (docs/pages.md) */
    {"/login", "page_login", ROUTE_IO,
     {{M_GET, page_login, BODY_NONE}, {M_POST, page_login_post, BODY_FORM}}},
    {"/login/mfa", "page_login_mfa", ROUTE_IO, {{M_POST, page_login_mfa, BODY_FORM}}},
    {"/signup", "page_signup", ROUTE_IO,
     {{M_GET, page_signup, BODY_NONE}, {M_POST, page_signup_post, BODY_FORM}}},
    {"/logout", "page_logout", ROUTE_IO, {{M_POST, page_logout, BODY_FORM}}},
    {"/account", "page_account", ROUTE_IO, {{M_GET, page_account, BODY_NONE}}},
    {"/account/password", "page_account_password", ROUTE_IO,
     {{M_POST, page_account_password, BODY_FORM}}},
    {"/account/email", "page_account_email", ROUTE_IO, {{M_POST, page_account_email, BODY_FORM}}},
    {"/account/email/verify", "page_account_email_verify", ROUTE_IO,
     {{M_POST, page_account_email_verify, BODY_FORM}}},
    {"/account/email/resend", "page_account_email_resend", ROUTE_IO,
     {{M_POST, page_account_email_resend, BODY_FORM}}},
    {"/account/sessions/revoke", "page_account_session_revoke", ROUTE_IO,
     {{M_POST, page_account_session_revoke, BODY_FORM}}},
    {"/account/totp", "page_account_totp", ROUTE_IO, {{M_POST, page_account_totp, BODY_FORM}}},
    {"/account/totp/confirm", "page_account_totp_confirm", ROUTE_IO,
     {{M_POST, page_account_totp_confirm, BODY_FORM}}},
    {"/account/totp/remove", "page_account_totp_remove", ROUTE_IO,
     {{M_POST, page_account_totp_remove, BODY_FORM}}},
    {"/account/recovery-codes", "page_account_recovery_codes", ROUTE_IO,
     {{M_POST, page_account_recovery_codes, BODY_FORM}}},
    {"/account/passkeys/remove", "page_account_passkey_remove", ROUTE_IO,
     {{M_POST, page_account_passkey_remove, BODY_FORM}}},
    {"/forgot-password", "page_forgot", ROUTE_IO,
     {{M_GET, page_forgot, BODY_NONE}, {M_POST, page_forgot_post, BODY_FORM}}},
    {"/reset-password", "page_reset", ROUTE_IO,
     {{M_GET, page_reset, BODY_NONE}, {M_POST, page_reset_post, BODY_FORM}}},
    {"/verify-email", "page_verify_email", ROUTE_IO,
     {{M_GET, page_verify_email, BODY_NONE}, {M_POST, page_verify_email_post, BODY_FORM}}},
    {"/static/jwtd.css", "static_css", ROUTE_INLINE, {{M_GET, page_static_css, BODY_NONE}}},
    {"/static/passkeys.js", "static_js", ROUTE_INLINE, {{M_GET, page_static_js, BODY_NONE}}},
    {"/.well-known/jwks.json", "jwks", ROUTE_INLINE, {{M_GET, api_jwks, BODY_NONE}}},
    {"/.well-known/openid-configuration", "openid_configuration", ROUTE_INLINE,
     {{M_GET, api_openid_configuration, BODY_NONE}}},
    {"/healthz", "healthz", ROUTE_INLINE, {{M_GET, api_healthz, BODY_NONE}}},
    {"/readyz", "readyz", ROUTE_INLINE, {{M_GET, api_readyz, BODY_NONE}}},
    {"/metrics", "metrics", ROUTE_INLINE, {{M_GET, api_metrics, BODY_NONE}}},
};

const unsigned routes_count = sizeof routes_table / sizeof routes_table[0];

const struct route *routes_match(const char *url, char path_id[UUID_STR_LEN])
{
    for (unsigned i = 0; i < routes_count; i++) {
        const char *p = routes_table[i].path;
        size_t n = strlen(p);
        if (p[n - 1] != '/') {
            if (strcmp(url, p) == 0)
                return &routes_table[i];
        } else if (strncmp(url, p, n) == 0 && url[n] && !strchr(url + n, '/')) {
            /* Any one segment routes here, so that authentication comes
             * first (401 without a token); the handler answers 404 for ids
             * that are not UUIDs (path_id is then empty) or not the
             * caller's. */
            size_t len = strlen(url + n);
            if (len == UUID_STR_LEN - 1)
                memcpy(path_id, url + n, UUID_STR_LEN);
            else
                path_id[0] = '\0';
            return &routes_table[i];
        }
    }
    return NULL;
}

unsigned routes_index(const struct route *route)
{
    return (unsigned)(route - routes_table);
}

bool routes_get_changes_state(const struct route *route)
{
    return route->m[0].fn == page_refresh_continue;
}

bool routes_takes_form(const struct route *route)
{
    for (size_t i = 0; i < sizeof route->m / sizeof route->m[0] && route->m[i].fn; i++)
        if (route->m[i].body == BODY_FORM)
            return true;
    return false;
}

handler_fn routes_handler(const struct route *route, enum http_method m, unsigned *ret_allowed,
                          enum body_kind *ret_body)
{
    *ret_allowed = 0;
    *ret_body = BODY_NONE;
    handler_fn found = NULL;
    for (size_t i = 0; i < sizeof route->m / sizeof route->m[0] && route->m[i].fn; i++) {
        *ret_allowed |= route->m[i].method;
        bool head = route->m[i].method == M_GET && !routes_get_changes_state(route);
        if (head)
            *ret_allowed |= M_HEAD;
        if (route->m[i].method == m || (m == M_HEAD && head)) {
            found = route->m[i].fn;
            *ret_body = route->m[i].body;
        }
    }
    return found;
}

enum http_method routes_method(const char *method)
{
    static const struct {
        const char *name;
        enum http_method m;
    } methods[] = {{"GET", M_GET},       {"HEAD", M_HEAD},   {"POST", M_POST},
                   {"PUT", M_PUT},       {"DELETE", M_DELETE}, {"PATCH", M_PATCH},
                   {"OPTIONS", M_OPTIONS}};
    for (size_t i = 0; i < sizeof methods / sizeof methods[0]; i++)
        if (strcmp(method, methods[i].name) == 0)
            return methods[i].m;
    return M_OTHER;
}
