/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The sign-in pages: /login (password, then a second factor when the
 * account has one), /signup, sign-out (/auth/refresh/signout, and /logout
 * before it), and /auth/refresh/continue, the hop that renews a page
 * session from the refresh cookie and returns to the app (the portal flow
 * of docs/pages.md).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/accounts.h"
#include "core/mail.h"
#include "core/mfa.h"
#include "core/passkeys.h"
#include "core/sessions.h"
#include "http/cookie.h"
#include "pages/page.h"
#include "pages/pages.h"

struct signin_hs {
    char rd[RD_MAX + 1];
    char username[USERNAME_MAX + 1];
};

static const char *next_of(const char *rd)
{
    return rd && rd[0] ? rd : "/account";
}

static void passkey_button(struct page *p, const char *ticket, const char *rd, const char *label)
{
    if (!passkeys_configured(p->r->app->cfg))
        return;
    page_raw(p, "<button type=\"button\" class=\"secondary\" data-passkey=\"signin\" hidden");
    if (ticket) {
        page_raw(p, " data-ticket=\"");
        page_text(p, ticket);
        page_raw(p, "\"");
    }
    page_raw(p, " data-next=\"");
    page_text(p, next_of(rd));
    page_raw(p, "\">");
    page_text(p, label);
    page_raw(p, "</button>\n<p id=\"passkey-status\" class=\"notice error\" role=\"alert\" "
                "hidden></p>\n");
}

static void render_login(struct request *r, unsigned status, const char *error,
                         const char *fault, const char *notice, const char *username,
                         const char *rd)
{
    const struct config *cfg = r->app->cfg;
    struct page p;
    page_begin(&p, r, "Sign in", false);
    p.fault = fault;
    if (error)
        page_notice(&p, false, error);
    if (notice)
        page_notice(&p, true, notice);
    bool typed = username && username[0];
    page_raw(&p, "<section class=\"card\">\n<form method=\"post\" action=\"/login\">\n");
    page_hidden(&p, "rd", rd);
    page_raw(&p, "<label for=\"username\">Username or e-mail address</label>\n"
                 "<input type=\"text\" id=\"username\" name=\"username\" required "
                 "autocomplete=\"username webauthn\" autocapitalize=\"none\" spellcheck=\"false\""
                 " value=\"");
    page_text(&p, username);
    page_raw(&p, "\"");
    /* Focus where typing goes on: the username, or the password once the
     * username is there (kept from the last try). */
    page_input_aria(&p, "username", NULL, !typed);
    page_raw(&p, ">\n<label for=\"password\">Password</label>\n"
                 "<input type=\"password\" id=\"password\" name=\"password\" required "
                 "autocomplete=\"current-password\"");
    page_input_aria(&p, "password", NULL, typed);
    page_raw(&p, ">\n<button type=\"submit\">Sign in</button>\n</form>\n");
    if (passkeys_configured(cfg)) {
        page_raw(&p, "<p class=\"or\" data-passkey=\"or\" hidden>or</p>\n");
        passkey_button(&p, NULL, rd, "Sign in with a passkey");
    }
    page_raw(&p, "</section>\n<p class=\"muted\">");
    if (mail_configured(r->app))
        page_raw(&p, "<a href=\"/forgot-password\">Forgot your password?</a> ");
    if (cfg->signup_open) {
        char enc[RD_MAX * 3 + 1];
        page_urlencode(rd ? rd : "", enc, sizeof enc);
        page_fmt(&p, "<a href=\"/signup%s%s\">Create an account</a>", rd && rd[0] ? "?rd=" : "",
                 rd && rd[0] ? enc : "");
    }
    page_raw(&p, "</p>\n");
    page_end(&p, status);
}

static void render_mfa(struct request *r, unsigned status, const char *error, const char *fault,
                       const char *ticket, unsigned methods, const char *rd)
{
    struct page p;
    page_begin(&p, r, "Two-step sign-in", false);
    p.fault = fault;
    /* The code field has the focus, unless a recovery code was wrong. */
    bool recovery_first = !(methods & MFA_TOTP) || page_at_fault(&p, "recovery_code");
    if (error)
        page_notice(&p, false, error);
    if (methods & MFA_TOTP) {
        page_raw(&p, "<section class=\"card\">\n<h2>Code from your authenticator app</h2>\n"
                     "<form method=\"post\" action=\"/login/mfa\">\n");
        page_hidden(&p, "mfa_ticket", ticket);
        page_hidden(&p, "rd", rd);
        page_raw(&p, "<label for=\"code\">Six-digit code</label>\n"
                     "<input type=\"text\" id=\"code\" name=\"code\" required inputmode=\"numeric\""
                     " pattern=\"[0-9 ]{6,7}\" maxlength=\"7\" autocomplete=\"one-time-code\"");
        page_input_aria(&p, "code", NULL, !recovery_first);
        page_raw(&p, ">\n<button type=\"submit\">Verify</button>\n</form>\n</section>\n");
    }
    if (methods & MFA_PASSKEY) {
        page_raw(&p, "<section class=\"card\">\n<h2>Passkey</h2>\n"
                     "<p class=\"hint\">Use a passkey registered on this account.</p>\n");
        passkey_button(&p, ticket, rd, "Use a passkey");
        page_raw(&p, "<noscript><p class=\"hint\">Passkeys need JavaScript.</p></noscript>\n"
                     "</section>\n");
    }
    if (methods & MFA_RECOVERY) {
        page_raw(&p, "<section class=\"card\">\n<h2>Recovery code</h2>\n"
                     "<form method=\"post\" action=\"/login/mfa\">\n");
        page_hidden(&p, "mfa_ticket", ticket);
        page_hidden(&p, "rd", rd);
        page_raw(&p, "<label for=\"recovery_code\">One of your recovery codes</label>\n"
                     "<input type=\"text\" id=\"recovery_code\" name=\"recovery_code\" required "
                     "autocomplete=\"off\" autocapitalize=\"none\" spellcheck=\"false\"");
        page_input_aria(&p, "recovery_code", NULL, recovery_first);
        page_raw(&p, ">\n<button type=\"submit\" class=\"secondary\">Use recovery code</button>\n"
                     "</form>\n</section>\n");
    }
    page_raw(&p, "<p class=\"muted\"><a href=\"/login\">Start again</a></p>\n");
    page_end(&p, status);
}

/* ------------------------------------------------------------ /login --- */

/* The notices of /login?done=: a sign-out says no more than it did. */
static const struct page_done LOGIN_DONE[] = {
    {"signed_out", "You are signed out."},
    {"signed_out_everywhere", "You are signed out everywhere."},
    {"not_everywhere", "This browser is signed out, but your other sessions are not: its sign-in "
                       "had expired and could not vouch for them. Sign in again, then choose "
                       "Sign out everywhere."},
    {"no_session", "This browser is signed out. The server found no live session of it to end."},
    {"password_set", "Your password is set; sign in with it."},
};

static const char *login_notice(const char *done)
{
    return page_done_text(LOGIN_DONE, sizeof LOGIN_DONE / sizeof LOGIN_DONE[0], done);
}

void page_login(struct request *r)
{
    if (!pages_on(r))
        return;
    char rd[RD_MAX + 1];
    const char *want = request_query(r, "rd");
    bool rd_ok = page_rd_ok(r->app->cfg, want, rd);
    if (want && *want && !rd_ok) {
        render_login(r, 400, "The address to return to after signing in is not allowed here.",
                     NULL, NULL, NULL, NULL);
        return;
    }
    struct identity id;
    if (page_identity(r, &id)) {
        respond_redirect(r, next_of(rd));
        return;
    }
    size_t hl;
    if (cookie_get(r, COOKIE_SESSION_HINT, &hl) && hl > 0) {
        /* A page session may still be renewable: the refresh cookie only
         * travels to /auth/refresh..., so hop there and come back. */
        char enc[RD_MAX * 3 + 1], loc[RD_MAX * 3 + 64];
        page_urlencode(next_of(rd), enc, sizeof enc);
        snprintf(loc, sizeof loc, "/auth/refresh/continue?rd=%s", enc);
        respond_redirect(r, loc);
        return;
    }
    render_login(r, 200, NULL, NULL, login_notice(request_query(r, "done")), NULL, rd);
}

static void signed_in(struct request *r, const struct session_grant *g, const char *rd)
{
    if (!page_set_session(r, g)) {
        page_message(r, 500, "Sign in", false, "The server ran out of memory.", "/login",
                     "Try again");
        return;
    }
    respond_redirect(r, next_of(rd));
}

static void login_done(struct request *r, struct svc_op *op)
{
    struct signin_hs *hs = r->hs;
    if (op->res.status == SVC_OK) {
        signed_in(r, &op->grant, hs->rd);
        return;
    }
    if (op->res.status == SVC_MFA_REQUIRED) {
        render_mfa(r, 200, NULL, NULL, op->mfa_ticket, op->mfa_methods, hs->rd);
        return;
    }
    char buf[200];
    /* Wrong credentials: which of the two is wrong is not said, so both
     * fields are marked; other refusals are about no field. */
    render_login(r, page_failure_status(r, &op->res), page_failure_text(&op->res, buf, sizeof buf),
                 op->res.status == SVC_BAD_CREDENTIALS ? "username password" : NULL, NULL,
                 hs->username, hs->rd);
}

void page_login_post(struct request *r)
{
    if (!pages_on(r))
        return;
    struct form f;
    if (!page_post(r, &f))
        return;
    size_t ulen = 0, plen = 0;
    const char *u = form_get(&f, "username", &ulen), *pw = form_get(&f, "password", &plen);
    struct signin_hs *hs = calloc(1, sizeof *hs);
    if (!hs) {
        respond_error(r, 500, "internal_error", "The server ran out of memory.");
        goto out;
    }
    r->hs = hs;
    r->hs_free = free;
    if (u && ulen <= USERNAME_MAX)
        snprintf(hs->username, sizeof hs->username, "%s", u);
    const char *rd = form_get(&f, "rd", NULL);
    if (rd && *rd && !page_rd_ok(r->app->cfg, rd, hs->rd)) {
        /* The form again without the refused address, and with what was
         * typed: only the password is asked again. */
        render_login(r, 400, "The address to return to after signing in is not allowed here.",
                     NULL, NULL, hs->username, NULL);
        goto out;
    }
    if (!u || !pw || ulen == 0 || plen == 0) {
        render_login(r, 400, "Enter your username and password.",
                     hs->username[0] ? "password" : "username", NULL, hs->username, hs->rd);
        goto out;
    }
    request_run_op(r, accounts_login(r->app, request_ctx(r), u, ulen, pw, plen), login_done);
out:
    form_free(&f);
}

/* POST /login/mfa: the second step with a TOTP or recovery code. */
void page_login_mfa(struct request *r)
{
    if (!pages_on(r))
        return;
    struct form f;
    if (!page_post(r, &f))
        return;
    char rd[RD_MAX + 1] = "";
    size_t tlen = 0, clen = 0, rlen = 0;
    const char *ticket = form_get(&f, "mfa_ticket", &tlen);
    const char *code = form_get(&f, "code", &clen), *rcode = form_get(&f, "recovery_code", &rlen);
    const char *want = form_get(&f, "rd", NULL);
    if (want && *want && !page_rd_ok(r->app->cfg, want, rd)) {
        render_login(r, 400, "The address to return to after signing in is not allowed here.",
                     NULL, NULL, NULL, NULL);
        goto out;
    }
    if (!ticket || (!code && !rcode)) {
        render_login(r, 400, "The sign-in form was incomplete; start again.", NULL, NULL, NULL,
                     rd);
        goto out;
    }
    struct store_user u = {0};
    struct session_grant g = {0};
    struct svc_result res =
        mfa_complete(r->app, request_ctx(r), ticket, tlen, code ? MFA_TOTP : MFA_RECOVERY,
                     code ? code : rcode, code ? clen : rlen, &u, &g);
    char buf[200];
    if (res.status == SVC_OK) {
        signed_in(r, &g, rd);
    } else if (res.status == SVC_BAD_SECOND_FACTOR || res.status == SVC_LIMITED) {
        /* A wrong code: the ticket may have run out of tries, then start
         * again. While the account is blocked (back-off), the ticket went
         * back untried: the same step again, with when to try (not the
         * password form, which is blocked too). */
        bool limited = res.status == SVC_LIMITED;
        unsigned status = limited ? page_failure_status(r, &res) : 401;
        const char *text = limited ? page_failure_text(&res, buf, sizeof buf)
                                   : res.detail ? res.detail : "The code is wrong.";
        struct store_user tu = {0};
        unsigned amr;
        if (mfa_ticket_peek(r->app, ticket, tlen, &tu, &amr).status == SVC_OK) {
            struct svc_result mr;
            unsigned methods = mfa_methods(r->app, tu.id, &mr);
            store_user_clear(&tu);
            /* A wrong code is about the field it was typed in; a block
             * is about none. */
            render_mfa(r, status, text, limited ? NULL : code ? "code" : "recovery_code", ticket,
                       methods, rd);
        } else {
            render_login(r, status, limited ? text : "Too many wrong codes; sign in again.", NULL,
                         NULL, NULL, rd);
        }
    } else if (res.status == SVC_INVALID_GRANT) {
        render_login(r, 401, "The sign-in took too long or was already finished; start again.",
                     NULL, NULL, NULL, rd);
    } else {
        render_login(r, page_failure_status(r, &res), page_failure_text(&res, buf, sizeof buf), NULL,
                     NULL, NULL, rd);
    }
    svc_grant_clear(&g);
    store_user_clear(&u);
out:
    form_free(&f);
}

/* ----------------------------------------------------------- /signup --- */

static void render_signup(struct request *r, unsigned status, const char *error,
                          const char *fault, const char *username, const char *email,
                          const char *rd)
{
    struct page p;
    page_begin(&p, r, "Create an account", false);
    p.fault = fault;
    /* The first field has the focus, as on the sign-in page, or after a
     * refusal the field it is about. */
    const char *focus = fault ? fault : "username";
    if (error)
        page_notice(&p, false, error);
    page_raw(&p, "<section class=\"card\">\n<form method=\"post\" action=\"/signup\">\n");
    page_hidden(&p, "rd", rd);
    page_raw(&p, "<label for=\"username\">Username</label>\n"
                 "<input type=\"text\" id=\"username\" name=\"username\" required "
                 "autocomplete=\"username\" autocapitalize=\"none\" spellcheck=\"false\" "
                 "minlength=\"3\" maxlength=\"128\"");
    page_input_aria(&p, "username", "username-hint", strcmp(focus, "username") == 0);
    page_raw(&p, " value=\"");
    page_text(&p, username);
    page_raw(&p, "\">\n<p class=\"hint\" id=\"username-hint\">3 to 128 letters, digits, and . _ - @ "
                 "+</p>\n");
    if (mail_configured(r->app)) {
        page_raw(&p, "<label for=\"email\">E-mail address <span class=\"muted\">(to recover "
                     "your account)</span></label>\n<input type=\"email\" id=\"email\" "
                     "name=\"email\" autocomplete=\"email\"");
        page_raw(&p, r->app->cfg->require_verified_email ? " required" : "");
        page_input_aria(&p, "email", NULL, strcmp(focus, "email") == 0);
        page_raw(&p, " value=\"");
        page_text(&p, email);
        page_raw(&p, "\">\n");
    }
    page_raw(&p, "<label for=\"password\">Password</label>\n"
                 "<input type=\"password\" id=\"password\" name=\"password\" required "
                 "autocomplete=\"new-password\" minlength=\"8\"");
    page_input_aria(&p, "password", "password-hint", strcmp(focus, "password") == 0);
    page_raw(&p, ">\n<p class=\"hint\" id=\"password-hint\">At "
                 "least 8 characters; a few unrelated words make a strong one.</p>\n"
                 "<button type=\"submit\">Create account</button>\n</form>\n</section>\n"
                 "<p class=\"muted\">Have an account? <a href=\"/login\">Sign in</a></p>\n");
    page_end(&p, status);
}

void page_signup(struct request *r)
{
    if (!pages_on(r))
        return;
    if (!r->app->cfg->signup_open) {
        page_message(r, 403, "Create an account", false,
                     "Signing up is closed on this server; ask its administrator for an account.",
                     "/login", "Sign in");
        return;
    }
    char rd[RD_MAX + 1];
    page_rd_ok(r->app->cfg, request_query(r, "rd"), rd);
    render_signup(r, 200, NULL, NULL, NULL, NULL, rd);
}

struct signup_hs {
    char rd[RD_MAX + 1];
    char username[USERNAME_MAX + 1];
    char email[EMAIL_MAX + 1];
};

/* The field a refused sign-up is about (NULL: none, as for a limit). */
static const char *signup_fault(enum svc_status status)
{
    switch (status) {
    case SVC_INVALID_USERNAME:
    case SVC_USERNAME_TAKEN:
        return "username";
    case SVC_WEAK_PASSWORD:
        return "password";
    case SVC_INVALID_EMAIL:
    case SVC_EMAIL_TAKEN:
        return "email";
    default:
        return NULL;
    }
}

static void signup_done(struct request *r, struct svc_op *op)
{
    struct signup_hs *hs = r->hs;
    if (op->res.status != SVC_OK) {
        char buf[200];
        render_signup(r, page_failure_status(r, &op->res),
                      page_failure_text(&op->res, buf, sizeof buf), signup_fault(op->res.status),
                      hs->username, hs->email, hs->rd);
        return;
    }
    /* Signed in at once, unless the address must be confirmed first. */
    struct session_grant g = {0};
    struct svc_result res = accounts_signup_session(r->app, request_ctx(r), &op->user, &g);
    if (res.status == SVC_EMAIL_NOT_VERIFIED) {
        page_message(r, 201, "Create an account", true,
                     "Your account is created. Open the link we sent to your e-mail address to "
                     "confirm it, then sign in.",
                     "/login", "Sign in");
        return;
    }
    if (res.status == SVC_OK)
        signed_in(r, &g, hs->rd);
    else
        page_message(r, 201, "Create an account", true, "Your account is created; sign in.",
                     "/login", "Sign in");
    svc_grant_clear(&g);
}

void page_signup_post(struct request *r)
{
    if (!pages_on(r))
        return;
    struct svc_result open = accounts_signup_allowed(r->app, request_ctx(r));
    if (open.status != SVC_OK) {
        char buf[200];
        page_message(r, page_failure_status(r, &open), "Create an account", false,
                     page_failure_text(&open, buf, sizeof buf), "/login", "Sign in");
        return;
    }
    struct form f;
    if (!page_post(r, &f))
        return;
    size_t ulen = 0, plen = 0, elen = 0;
    const char *u = form_get(&f, "username", &ulen), *pw = form_get(&f, "password", &plen);
    const char *email = form_get(&f, "email", &elen);
    struct signup_hs *hs = calloc(1, sizeof *hs);
    if (!hs) {
        respond_error(r, 500, "internal_error", "The server ran out of memory.");
        goto out;
    }
    r->hs = hs;
    r->hs_free = free;
    page_rd_ok(r->app->cfg, form_get(&f, "rd", NULL), hs->rd);
    if (u && ulen <= USERNAME_MAX)
        snprintf(hs->username, sizeof hs->username, "%s", u);
    if (email && elen <= EMAIL_MAX)
        snprintf(hs->email, sizeof hs->email, "%s", email);
    if (!u || !pw) {
        render_signup(r, 400, "Enter a username and a password.", u ? "password" : "username",
                      hs->username, hs->email, hs->rd);
        goto out;
    }
    if (email && elen == 0)
        email = NULL;
    request_run_op(r, accounts_signup(r->app, request_ctx(r), u, ulen, pw, plen, email, elen),
                   signup_done);
out:
    form_free(&f);
}

/* ------------------------------------- /logout, /auth/refresh/signout --- */

/* The /login notice after a sign-out that asked for every session (all)
 * or this one, and ended `ended`. */
static const char *signed_out_notice(bool all, enum signout_reach ended)
{
    if (ended == SIGNOUT_USER)
        return "signed_out_everywhere";
    if (all)
        return "not_everywhere";
    return ended == SIGNOUT_SESSION ? "signed_out" : "no_session";
}

/* A sign-out form's post: same-origin (page_post), and whether it asks for
 * every session (scope=all). Answers and returns false when refused. */
static bool signout_form(struct request *r, bool *ret_all)
{
    struct form f;
    if (!pages_on(r) || !page_post(r, &f))
        return false;
    const char *scope = form_get(&f, "scope", NULL);
    *ret_all = scope && strcmp(scope, "all") == 0;
    form_free(&f);
    return true;
}

/*
 * End the session that the access cookie names (id), else the one of the
 * refresh cookie (which the browser sends only to /auth/refresh/...), then
 * clear the cookies and go to /login with a notice of what ended. With
 * neither, nothing ends on the server and the notice says so.
 */
static void sign_out(struct request *r, const struct identity *id, bool all)
{
    enum signout_reach ended = SIGNOUT_NOTHING;
    struct svc_result res = svc_ok();
    size_t len = 0;
    const char *tok = id ? NULL : cookie_get(r, COOKIE_REFRESH, &len);
    if (id) {
        res = sessions_logout(r->app, request_ctx(r), id, all);
        ended = all ? SIGNOUT_USER : SIGNOUT_SESSION;
    } else if (tok && len) {
        res = sessions_logout_refresh(r->app, request_ctx(r), tok, len, all, &ended);
    }
    if (res.status != SVC_OK && res.status != SVC_GONE) {
        char buf[200];
        page_message(r, page_failure_status(r, &res), "Sign out", false,
                     page_failure_text(&res, buf, sizeof buf), "/account", "Back");
        return;
    }
    page_clear_session(r);
    char loc[64];
    snprintf(loc, sizeof loc, "/login?done=%s", signed_out_notice(all, ended));
    respond_redirect(r, loc);
}

/* POST /logout: kept for pages and links made before
 * /auth/refresh/signout. The refresh cookie never comes here (its Path is
 * /auth/refresh): without a valid access cookie the form is handed on (307
 * keeps the method and body) to where the browser sends it. */
void page_logout(struct request *r)
{
    bool all;
    if (!signout_form(r, &all))
        return;
    struct identity id;
    if (page_identity(r, &id))
        sign_out(r, &id, all);
    else
        respond_redirect_repost(r, "/auth/refresh/signout");
}

/* POST /auth/refresh/signout: the account page's sign-out forms. */
void page_signout(struct request *r)
{
    bool all;
    if (!signout_form(r, &all))
        return;
    struct identity id;
    sign_out(r, page_identity(r, &id) ? &id : NULL, all);
}

/* ------------------------------------------- /auth/refresh/continue --- */

void page_refresh_continue(struct request *r)
{
    if (!pages_on(r))
        return;
    char rd[RD_MAX + 1];
    const char *want = request_query(r, "rd");
    /* Called every time: it writes rd ("" without one), which next_of()
     * and the way back to /login read. */
    if (!page_rd_ok(r->app->cfg, want, rd) && want && *want) {
        page_message(r, 400, "Sign in", false,
                     "The address to return to after signing in is not allowed here.", "/login",
                     "Sign in");
        return;
    }
    size_t len = 0;
    const char *tok = cookie_get(r, COOKIE_REFRESH, &len);
    struct session_grant g = {0};
    struct store_user u = {0};
    struct svc_result res = tok && len ? sessions_refresh(r->app, request_ctx(r), tok, len, &g, &u)
                                       : svc_fail(SVC_INVALID_GRANT, NULL);
    if (res.status == SVC_OK) {
        signed_in(r, &g, rd);
    } else if (res.status == SVC_LIMITED || res.status == SVC_BUSY ||
               res.status == SVC_UNAVAILABLE || res.status == SVC_ERROR) {
        char buf[200];
        page_message(r, page_failure_status(r, &res), "Sign in", false,
                     page_failure_text(&res, buf, sizeof buf), "/login", "Sign in");
    } else {
        /* Nothing to renew: forget the hint and ask for a sign-in. */
        page_clear_session(r);
        char enc[RD_MAX * 3 + 1], loc[RD_MAX * 3 + 32];
        page_urlencode(rd, enc, sizeof enc);
        snprintf(loc, sizeof loc, "/login%s%s", rd[0] ? "?rd=" : "", rd[0] ? enc : "");
        respond_redirect(r, loc);
    }
    svc_grant_clear(&g);
    store_user_clear(&u);
}
