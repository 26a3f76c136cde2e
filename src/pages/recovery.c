/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The recovery pages that e-mail links lead to: /forgot-password,
 * /reset-password?token=..., /verify-email?token=... Opening a link only
 * shows a form: the token is used by the POST that the person sends (mail
 * scanners that fetch links must not use them up). A link that no longer
 * works says so when it is opened (a read-only check in core), with the
 * way to a new one, rather than after the form is filled in.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/mail.h"
#include "core/recovery.h"
#include "pages/page.h"
#include "pages/pages.h"


/* ------------------------------------------------- /forgot-password --- */

static void render_forgot(struct request *r, unsigned status, const char *error, const char *fault)
{
    struct page p;
    page_begin(&p, r, "Forgot your password?", false);
    p.fault = fault;
    if (error)
        page_notice(&p, false, error);
    page_raw(&p, "<section class=\"card\">\n<form method=\"post\" action=\"/forgot-password\">\n"
                 "<label for=\"identifier\">Your e-mail address or username</label>\n"
                 "<input type=\"text\" id=\"identifier\" name=\"identifier\" required "
                 "autocomplete=\"username\" autocapitalize=\"none\" spellcheck=\"false\"");
    page_input_aria(&p, "identifier", "identifier-hint", true);
    page_raw(&p, ">\n<p class=\"hint\" id=\"identifier-hint\">If an account matches, we send a link "
                 "to choose a new password to its address.</p>\n<button type=\"submit\">Send the link"
                 "</button>\n</form>\n</section>\n<p class=\"muted\"><a href=\"/login\">Back to "
                 "sign in</a></p>\n");
    page_end(&p, status);
}

void page_forgot(struct request *r)
{
    if (!pages_on(r))
        return;
    if (!mail_configured(r->app)) {
        page_message(r, 501, "Forgot your password?", false,
                     "This server does not send e-mail: ask its administrator for a reset link.",
                     "/login", "Back to sign in");
        return;
    }
    render_forgot(r, 200, NULL, NULL);
}

void page_forgot_post(struct request *r)
{
    if (!pages_on(r))
        return;
    struct form f;
    if (!page_post(r, &f))
        return;
    size_t len = 0;
    const char *ident = form_get(&f, "identifier", &len);
    struct svc_result res = ident && len ? recovery_forgot(r->app, request_ctx(r), ident, len)
                                         : svc_fail(SVC_INVALID_INPUT, NULL);
    form_free(&f);
    if (res.status == SVC_OK) {
        /* The same answer whether the account exists or not. */
        page_message(r, 200, "Check your inbox", true,
                     "If an account matches, a message with a link is on its way. The link works "
                     "once and expires soon.",
                     "/login", "Back to sign in");
        return;
    }
    char buf[200];
    if (res.status == SVC_INVALID_INPUT)
        render_forgot(r, 400, "Enter your e-mail address or username.", "identifier");
    else if (res.status == SVC_NOT_CONFIGURED)
        page_message(r, 501, "Forgot your password?", false, page_failure_text(&res, buf, sizeof buf),
                     "/login", "Back to sign in");
    else
        render_forgot(r, page_failure_status(r, &res), page_failure_text(&res, buf, sizeof buf),
                      NULL);
}

/* -------------------------------------------------- /reset-password --- */

/* The reset form; fault: the password is what the error is about (weak,
 * or missing), not, say, a busy server. */
static void render_reset(struct request *r, unsigned status, const char *error, bool fault,
                         const char *token)
{
    struct page p;
    page_begin(&p, r, "Choose a new password", false);
    p.fault = fault ? "password" : NULL;
    if (error)
        page_notice(&p, false, error);
    page_raw(&p, "<section class=\"card\">\n<form method=\"post\" action=\"/reset-password\">\n");
    page_hidden(&p, "token", token);
    page_raw(&p, "<label for=\"password\">New password</label>\n<input type=\"password\" "
                 "id=\"password\" name=\"password\" required minlength=\"8\" "
                 "autocomplete=\"new-password\"");
    page_input_aria(&p, "password", "password-hint", true);
    page_raw(&p, ">\n<p class=\"hint\" id=\"password-hint\">Every session of the account is "
                 "signed out.</p>\n<button type=\"submit\">Set password</button>\n"
                 "</form>\n</section>\n");
    page_end(&p, status);
}

/* A link that does not work (any more), and the way to a new one: a reset
 * link is asked for again (or, without mail, from the administrator); a
 * verification message is sent again from the account page. */
static void bad_link(struct request *r, bool reset)
{
    bool mail = mail_configured(r->app);
    page_message(r, 400, reset ? "Choose a new password" : "Confirm your e-mail address", false,
                 "This link is unknown, already used or expired.",
                 reset ? (mail ? "/forgot-password" : "/login") : "/account",
                 reset ? (mail ? "Ask for a new link" : "Back to sign in (ask the administrator "
                                                        "for a new link)")
                       : "Go to your account to send a new link");
}

/*
 * Whether the link opened (GET) still works, read only: the token is not
 * used (a scanner's GET must leave it for the person). Answers and returns
 * false when it does not, or when storage fails.
 */
static bool link_opens(struct request *r, const char *t, bool reset)
{
    if (!recovery_token_well_formed(t)) {
        bad_link(r, reset);
        return false;
    }
    struct svc_result res = reset ? recovery_reset_link_check(r->app, t, strlen(t))
                                  : recovery_verify_link_check(r->app, t, strlen(t));
    if (res.status == SVC_OK)
        return true;
    if (res.status == SVC_INVALID_LINK) {
        bad_link(r, reset);
    } else {
        char buf[200];
        page_message(r, page_failure_status(r, &res),
                     reset ? "Choose a new password" : "Confirm your e-mail address", false,
                     page_failure_text(&res, buf, sizeof buf), "/login", "Back to sign in");
    }
    return false;
}

void page_reset(struct request *r)
{
    if (!pages_on(r))
        return;
    const char *t = request_query(r, "token");
    if (link_opens(r, t, true))
        render_reset(r, 200, NULL, false, t);
}

struct reset_hs {
    char token[RECOVERY_TOKEN_MAX + 1];
};

static void reset_done(struct request *r, struct svc_op *op)
{
    struct reset_hs *hs = r->hs;
    if (op->res.status == SVC_OK) {
        page_clear_session(r);
        respond_redirect(r, "/login?done=password_set");
    } else if (op->res.status == SVC_INVALID_LINK) {
        bad_link(r, true);
    } else {
        char buf[200];
        render_reset(r, page_failure_status(r, &op->res), page_failure_text(&op->res, buf, sizeof buf),
                     op->res.status == SVC_WEAK_PASSWORD, hs->token);
    }
}

void page_reset_post(struct request *r)
{
    if (!pages_on(r))
        return;
    struct form f;
    if (!page_post(r, &f))
        return;
    size_t tlen = 0, plen = 0;
    const char *t = form_get(&f, "token", &tlen), *pw = form_get(&f, "password", &plen);
    struct reset_hs *hs = NULL;
    if (!recovery_token_well_formed(t)) {
        bad_link(r, true);
    } else if (!pw) {
        render_reset(r, 400, "Enter a new password.", true, t);
    } else if (!(hs = calloc(1, sizeof *hs))) {
        respond_error(r, 500, "internal_error", "The server ran out of memory.");
    } else {
        snprintf(hs->token, sizeof hs->token, "%s", t);
        r->hs = hs;
        r->hs_free = free;
        request_run_op(r, recovery_reset(r->app, request_ctx(r), t, tlen, pw, plen), reset_done);
    }
    form_free(&f);
}

/* ---------------------------------------------------- /verify-email --- */

void page_verify_email(struct request *r)
{
    if (!pages_on(r))
        return;
    const char *t = request_query(r, "token");
    if (!link_opens(r, t, false))
        return;
    struct page p;
    page_begin(&p, r, "Confirm your e-mail address", false);
    page_raw(&p, "<section class=\"card\">\n<form method=\"post\" action=\"/verify-email\">\n");
    page_hidden(&p, "token", t);
    page_raw(&p, "<p>Confirm that this address is yours.</p>\n<button type=\"submit\">Confirm "
                 "my address</button>\n</form>\n</section>\n");
    page_end(&p, 200);
}

void page_verify_email_post(struct request *r)
{
    if (!pages_on(r))
        return;
    struct form f;
    if (!page_post(r, &f))
        return;
    size_t tlen = 0;
    const char *t = form_get(&f, "token", &tlen);
    struct store_user u = {0};
    struct svc_result res = recovery_token_well_formed(t) ? recovery_confirm_link(r->app, request_ctx(r), t, tlen, &u)
                                        : svc_fail(SVC_INVALID_LINK, NULL);
    form_free(&f);
    if (res.status == SVC_OK) {
        char text[400];
        snprintf(text, sizeof text, "The address is confirmed for the account %s.", u.username);
        page_message(r, 200, "Address confirmed", true, text, "/account", "Go to your account");
    } else if (res.status == SVC_INVALID_LINK) {
        bad_link(r, false);
    } else {
        char buf[200];
        page_message(r, page_failure_status(r, &res), "Confirm your e-mail address", false,
                     page_failure_text(&res, buf, sizeof buf), "/login", "Back to sign in");
    }
    store_user_clear(&u);
}
