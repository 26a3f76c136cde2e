/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The account page and its forms: profile and e-mail address, password,
 * two-step sign-in (TOTP with recovery codes, passkeys), sessions, sign
 * out. Every change is a POST that redirects back with a notice (or shows
 * the page again with the error); the rules are the services'.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/accounts.h"
#include "core/mail.h"
#include "core/mfa.h"
#include "core/passkeys.h"
#include "core/recovery.h"
#include "core/sessions.h"
#include "pages/page.h"
#include "pages/pages.h"

#define SHOWN_SESSIONS 50
#define UA_SHOWN 60 /* bytes of a browser's name in the table */

struct session_list {
    struct store_session s[SHOWN_SESSIONS];
    int n;
    int more;
};

static void collect_session(void *vctx, const struct store_session *s)
{
    struct session_list *l = vctx;
    if (l->n < SHOWN_SESSIONS)
        l->s[l->n++] = *s;
    else
        l->more++;
}

static const struct page_done DONE[] = {
    {"password_changed", "Your password is changed. Your other sessions were signed out."},
    {"email_changed", "Check your inbox: open the link we sent to confirm the new address."},
    {"email_removed", "The e-mail address is removed from your account."},
    {"email_verified", "Your e-mail address is confirmed."},
    {"verification_sent", "We sent a new confirmation message."},
    {"totp_removed", "The authenticator app is removed."},
    {"passkey_added", "The passkey is added: you can sign in with it."},
    {"passkey_removed", "The passkey is removed."},
    {"session_revoked", "That session is signed out."},
};

static void time_cell(struct page *p, int64_t t)
{
    char buf[RFC3339_LEN];
    if (!t) {
        page_raw(p, "<td>\xe2\x80\x94</td>");
        return;
    }
    util_rfc3339(t, buf);
    page_fmt(p, "<td><time datetime=\"%s\">", buf);
    buf[10] = ' '; /* 2026-12-05 10:00:00Z */
    page_text(p, buf);
    page_raw(p, "</time></td>");
}

/* The password that confirms one of the page's actions. The page has
 * several: each label names its action (a screen reader lists fields by
 * their labels; five times "Your password" says nothing). */
static void password_field(struct page *p, const char *id, const char *label)
{
    page_fmt(p, "<label for=\"%s\">%s</label>\n<input type=\"password\" id=\"%s\" "
                "name=\"password\" required autocomplete=\"current-password\"",
             id, label, id);
    page_input_aria(p, id, NULL, page_at_fault(p, id));
    page_raw(p, ">\n");
}

/* An input of the page's markup with its accessibility attributes: the
 * field at fault (if it is this one) also gets the focus. */
static void account_input(struct page *p, const char *id)
{
    page_input_aria(p, id, NULL, page_at_fault(p, id));
}

static void section_profile(struct page *p, const struct store_user *u)
{
    page_raw(p, "<section class=\"card\" aria-labelledby=\"h-profile\">\n<h2 id=\"h-profile\">"
                "Profile</h2>\n<table>\n<tr><th scope=\"row\">Username</th><td>");
    page_text(p, u->username);
    page_raw(p, "</td></tr>\n<tr><th scope=\"row\">E-mail address</th><td>");
    if (u->email[0]) {
        page_text(p, u->email);
        page_raw(p, u->email_verified ? " <span class=\"muted\">(confirmed)</span>"
                                      : " <span class=\"muted\">(not confirmed)</span>");
    } else {
        page_raw(p, "<span class=\"muted\">none</span>");
    }
    if (u->email_pending[0]) {
        page_raw(p, "<br><span class=\"muted\">Changing to ");
        page_text(p, u->email_pending);
        page_raw(p, ", waiting for confirmation</span>");
    }
    page_raw(p, "</td></tr>\n</table>\n");
    bool unconfirmed = u->email_pending[0] || (u->email[0] && !u->email_verified);
    if (unconfirmed && mail_configured(p->r->app)) {
        page_raw(p, "<form method=\"post\" action=\"/account/email/verify\">\n"
                    "<label for=\"verify-code\">Code from the confirmation message</label>\n"
                    "<div class=\"row\"><input type=\"text\" id=\"verify-code\" name=\"code\" "
                    "inputmode=\"numeric\" autocomplete=\"one-time-code\" required");
        account_input(p, "verify-code");
        page_raw(p, ">\n<button type=\"submit\" class=\"small\">Confirm</button></div>\n</form>\n"
                    "<form method=\"post\" action=\"/account/email/resend\">\n"
                    "<button type=\"submit\" class=\"secondary small\">Send the message again"
                    "</button>\n</form>\n");
    }
    if (mail_configured(p->r->app)) {
        page_raw(p, "<form method=\"post\" action=\"/account/email\">\n<label for=\"email\">"
                    "New e-mail address <span class=\"muted\">(empty to remove it)</span>"
                    "</label>\n<input type=\"email\" id=\"email\" name=\"email\" "
                    "autocomplete=\"email\"");
        account_input(p, "email");
        page_raw(p, ">\n");
        password_field(p, "email-password", "Your password, to change the address");
        page_raw(p, "<button type=\"submit\" class=\"secondary\">Change address</button>\n"
                    "</form>\n");
    }
    page_raw(p, "</section>\n");
}

static void section_password(struct page *p)
{
    page_raw(p, "<section class=\"card\" aria-labelledby=\"h-password\">\n<h2 id=\"h-password\">"
                "Password</h2>\n<form method=\"post\" action=\"/account/password\">\n"
                "<label for=\"current_password\">Current password</label>\n"
                "<input type=\"password\" id=\"current_password\" name=\"current_password\" "
                "required autocomplete=\"current-password\"");
    account_input(p, "current_password");
    page_raw(p, ">\n<label for=\"new_password\">New password</label>\n"
                "<input type=\"password\" id=\"new_password\" name=\"new_password\" required "
                "minlength=\"8\" autocomplete=\"new-password\"");
    page_input_aria(p, "new_password", "new-password-hint", page_at_fault(p, "new_password"));
    page_raw(p, ">\n<p class=\"hint\" id=\"new-password-hint\">Changing it signs out your other "
                "sessions.</p>\n"
                "<button type=\"submit\" class=\"secondary\">Change password</button>\n"
                "</form>\n</section>\n");
}

static void section_factors(struct page *p, json_t *st, const char *fault_passkey)
{
    bool totp = json_is_true(json_object_get(st, "totp"));
    json_int_t left = json_integer_value(json_object_get(st, "recovery_codes_left"));
    json_t *pks = json_object_get(st, "passkeys");
    page_raw(p, "<section class=\"card\" aria-labelledby=\"h-mfa\">\n<h2 id=\"h-mfa\">Two-step "
                "sign-in</h2>\n");
    /* mfa_factor_added: the first factor ends the other sessions. */
    if (!totp && json_array_size(pks) == 0)
        page_raw(p, "<p class=\"hint\">Turning it on signs out your other sessions.</p>\n");
    page_raw(p, "<h3>Authenticator app</h3>\n");
    if (totp) {
        page_fmt(p, "<p>On. Recovery codes left: <strong>%lld</strong> of %d.</p>\n",
                 (long long)left, MFA_RECOVERY_CODES);
        page_raw(p, "<form method=\"post\" action=\"/account/recovery-codes\">\n");
        password_field(p, "rc-password", "Your password, for new recovery codes");
        page_raw(p, "<button type=\"submit\" class=\"secondary\">New recovery codes</button>\n"
                    "</form>\n<form method=\"post\" action=\"/account/totp/remove\">\n");
        password_field(p, "totp-off-password", "Your password, to turn the app off");
        page_raw(p, "<button type=\"submit\" class=\"danger\" aria-label=\"Turn off the "
                    "authenticator app\">Turn off</button>\n</form>\n");
    } else {
        page_raw(p, "<p class=\"hint\">Ask for a six-digit code from an app such as FreeOTP, "
                    "Aegis or Google Authenticator after your password.</p>\n"
                    "<form method=\"post\" action=\"/account/totp\">\n");
        password_field(p, "totp-password", "Your password, to set up an app");
        page_raw(p, "<button type=\"submit\">Set up an authenticator app</button>\n</form>\n");
    }
    page_raw(p, "<h3>Passkeys</h3>\n");
    if (json_array_size(pks) == 0) {
        page_raw(p, "<p class=\"hint\">No passkeys yet.</p>\n");
    } else {
        page_raw(p, "<table>\n<thead><tr><th scope=\"col\">Name</th><th scope=\"col\">Added"
                    "</th><th scope=\"col\">Last used</th><th scope=\"col\">Remove</th></tr>"
                    "</thead>\n<tbody>\n");
        size_t i;
        json_t *pk;
        json_array_foreach(pks, i, pk)
        {
            const char *name = json_string_value(json_object_get(pk, "name"));
            const char *pkid = json_string_value(json_object_get(pk, "id"));
            page_raw(p, "<tr><td>");
            page_text(p, name);
            page_raw(p, json_is_true(json_object_get(pk, "synced"))
                            ? " <span class=\"muted\">(synced)</span>"
                            : "");
            page_raw(p, "</td><td>");
            const char *c = json_string_value(json_object_get(pk, "created_at"));
            const char *l = json_string_value(json_object_get(pk, "last_used_at"));
            page_text(p, c ? c : "");
            page_raw(p, "</td><td>");
            page_text(p, l ? l : "\xe2\x80\x94");
            page_fmt(p, "</td><td><form method=\"post\" action=\"/account/passkeys/remove\" "
                        "class=\"row\">\n");
            page_hidden(p, "id", pkid);
            /* Every row has a "Password" field and a "Remove" button: their
             * accessible names say which passkey (the visible words first,
             * WCAG 2.5.3). The name is the user's: escaped. */
            char fid[32];
            snprintf(fid, sizeof fid, "pk-pw-%zu", i);
            bool bad = fault_passkey && pkid && strcmp(fault_passkey, pkid) == 0;
            page_fmt(p, "<label for=\"%s\" class=\"muted\">Password</label>"
                        "<input type=\"password\" id=\"%s\" name=\"password\" required "
                        "autocomplete=\"current-password\" aria-label=\"Password to remove the "
                        "passkey &#8220;",
                     fid, fid);
            page_text(p, name);
            page_raw(p, "&#8221;\"");
            if (bad)
                page_raw(p, " aria-invalid=\"true\" aria-describedby=\"" PAGE_ERROR_ID "\" "
                            "autofocus");
            page_raw(p, ">\n<button type=\"submit\" class=\"danger small\" aria-label=\"Remove "
                        "the passkey &#8220;");
            page_text(p, name);
            page_raw(p, "&#8221;\">Remove</button></form></td></tr>\n");
        }
        page_raw(p, "</tbody>\n</table>\n");
    }
    if (passkeys_configured(p->r->app->cfg)) {
        page_raw(p, "<form data-passkey=\"register\" hidden>\n<label for=\"pk-name\">Name "
                    "<span class=\"muted\">(optional)</span></label>\n<input type=\"text\" "
                    "id=\"pk-name\" name=\"name\" maxlength=\"64\" placeholder=\"Laptop\">\n");
        password_field(p, "pk-password", "Your password, to add a passkey");
        page_raw(p, "<button type=\"submit\">Add a passkey</button>\n</form>\n"
                    "<p id=\"passkey-status\" class=\"notice error\" role=\"alert\" hidden></p>\n"
                    "<noscript><p class=\"hint\">Adding a passkey needs JavaScript.</p>"
                    "</noscript>\n");
    }
    page_raw(p, "</section>\n");
}

static void section_sessions(struct page *p, const struct session_list *l, const char *current)
{
    page_raw(p, "<section class=\"card\" aria-labelledby=\"h-sessions\">\n<h2 id=\"h-sessions\">"
                "Sessions</h2>\n<table>\n<thead><tr><th scope=\"col\">Signed in</th>"
                "<th scope=\"col\">Last used</th><th scope=\"col\">Address</th>"
                "<th scope=\"col\">Browser</th><th scope=\"col\"><span class=\"visually-hidden\">"
                "Sign out</span></th></tr></thead>\n<tbody>\n");
    for (int i = 0; i < l->n; i++) {
        const struct store_session *s = &l->s[i];
        page_raw(p, "<tr>");
        time_cell(p, s->created_at);
        time_cell(p, s->last_used_at);
        page_raw(p, "<td>");
        page_text(p, s->client_addr);
        /* A long browser name is cut to fit the table, visibly (an
         * ellipsis), and shown whole on hover. */
        size_t ua = strnlen(s->user_agent, UA_SHOWN);
        if (s->user_agent[ua]) {
            page_raw(p, "</td><td title=\"");
            page_text(p, s->user_agent);
            page_raw(p, "\">");
            page_textn(p, s->user_agent, ua);
            page_raw(p, "\xe2\x80\xa6");
        } else {
            page_raw(p, "</td><td>");
            page_text(p, s->user_agent);
        }
        page_raw(p, "</td><td>");
        if (strcmp(s->id, current) == 0) {
            page_raw(p, "<strong>This one</strong>");
        } else {
            page_raw(p, "<form method=\"post\" action=\"/account/sessions/revoke\">");
            page_hidden(p, "sid", s->id);
            /* Each row's button is "Sign out": its accessible name says
             * which session, by what the row shows (browser, address,
             * when it signed in). */
            page_raw(p, "<button type=\"submit\" class=\"danger small\" aria-label=\"Sign out "
                        "the session of ");
            if (s->user_agent[0])
                page_textn(p, s->user_agent, ua);
            else
                page_raw(p, "an unknown browser");
            page_raw(p, s->user_agent[ua] ? "\xe2\x80\xa6" : "");
            if (s->client_addr[0]) {
                page_raw(p, ", ");
                page_text(p, s->client_addr);
            }
            if (s->created_at) {
                char when[RFC3339_LEN];
                util_rfc3339(s->created_at, when);
                when[10] = ' ';
                page_raw(p, ", signed in ");
                page_text(p, when);
            }
            page_raw(p, "\">Sign out</button></form>");
        }
        page_raw(p, "</td></tr>\n");
    }
    page_raw(p, "</tbody>\n</table>\n");
    if (l->more)
        page_fmt(p, "<p class=\"hint\">And %d older sessions.</p>\n", l->more);
    /* Under /auth/refresh, so that the refresh cookie comes along: the
     * sign-out works when the access cookie has expired while the page was
     * open. */
    page_raw(p, "<div class=\"row\"><form method=\"post\" action=\"/auth/refresh/signout\">\n"
                "<button type=\"submit\" aria-label=\"Sign out of this browser\">Sign out"
                "</button></form>\n"
                "<form method=\"post\" action=\"/auth/refresh/signout\">\n"
                "<input type=\"hidden\" name=\"scope\" value=\"all\">\n"
                "<button type=\"submit\" class=\"secondary\">Sign out everywhere</button></form>"
                "</div>\n</section>\n");
}

static void to_login(struct request *r)
{
    respond_redirect(r, "/login?rd=/account");
}

/*
 * The account page; after a refused action, error says why, fault names
 * the field it is about (NULL: none) and fault_passkey the passkey whose
 * row's password it is (NULL: none).
 */
static void render_account(struct request *r, const struct identity *id, unsigned status,
                           const char *error, const char *fault, const char *fault_passkey)
{
    struct store_user u = {0}; /* cleared below whatever accounts_get answers */
    struct svc_result res = accounts_get(r->app, id, &u);
    if (res.status == SVC_GONE) {
        page_clear_session(r);
        to_login(r);
        return;
    }
    json_t *st = NULL;
    struct session_list *l = calloc(1, sizeof *l);
    if (res.status == SVC_OK)
        res = l ? mfa_status(r->app, id, &st) : svc_fail(SVC_ERROR, NULL);
    if (res.status == SVC_OK)
        res = sessions_list(r->app, id, collect_session, l);
    if (res.status != SVC_OK) {
        char buf[200];
        page_message(r, page_failure_status(r, &res), "Your account", false,
                     page_failure_text(&res, buf, sizeof buf), "/account", "Try again");
    } else {
        struct page p;
        page_begin(&p, r, "Your account", true);
        p.fault = fault;
        if (error)
            page_notice(&p, false, error);
        const char *done =
            page_done_text(DONE, sizeof DONE / sizeof DONE[0], request_query(r, "done"));
        if (done && !error)
            page_notice(&p, true, done);
        section_profile(&p, &u);
        section_password(&p);
        section_factors(&p, st, fault_passkey);
        section_sessions(&p, l, id->sid);
        page_end(&p, status);
    }
    json_decref(st);
    free(l);
    store_user_clear(&u);
}

void page_account(struct request *r)
{
    if (!pages_on(r))
        return;
    struct identity id;
    if (!page_identity(r, &id)) {
        to_login(r);
        return;
    }
    render_account(r, &id, 200, NULL, NULL, NULL);
}

/* ----------------------------------------------------------- actions --- */

/* The start of every account form: signed in, same-origin, readable. */
static bool action_start(struct request *r, struct identity *id, struct form *f)
{
    if (!pages_on(r))
        return false;
    if (!page_post(r, f))
        return false;
    if (!page_identity(r, id)) {
        form_free(f);
        to_login(r);
        return false;
    }
    return true;
}

struct action_hs {
    struct identity id;
    const char *done; /* the notice key on success */
    /* The form's fields (ids) a refusal may be about: the password that
     * confirms it, and the value it sets (NULL: none). */
    const char *pw_field;
    const char *value_field;
    char passkey[PASSKEY_ID_MAX + 1]; /* the passkey a removal names */
};

/* The field of the posted form that a refusal is about: the password
 * (wrong), the new value (weak, not an address, taken, a wrong code), or
 * none (a limit, a busy server). */
static const char *action_fault(const struct action_hs *hs, enum svc_status status)
{
    switch (status) {
    case SVC_WRONG_PASSWORD:
    case SVC_BAD_CREDENTIALS:
        return hs->pw_field;
    case SVC_WEAK_PASSWORD:
    case SVC_INVALID_EMAIL:
    case SVC_EMAIL_TAKEN:
    case SVC_INVALID_CODE:
        return hs->value_field;
    default:
        return NULL;
    }
}

static bool hs_new(struct request *r, const struct identity *id, const char *done,
                   const char *pw_field, const char *value_field)
{
    struct action_hs *hs = calloc(1, sizeof *hs);
    if (!hs) {
        respond_error(r, 500, "internal_error", "The server ran out of memory.");
        return false;
    }
    hs->id = *id;
    hs->done = done;
    hs->pw_field = pw_field;
    hs->value_field = value_field;
    r->hs = hs;
    r->hs_free = free;
    return true;
}

static void back_with(struct request *r, const char *done)
{
    char loc[96];
    snprintf(loc, sizeof loc, "/account?done=%s", done);
    respond_redirect(r, loc);
}

/* After an operation: back to the page with a notice, or the page with
 * the error. */
static void action_done(struct request *r, struct svc_op *op)
{
    struct action_hs *hs = r->hs;
    if (op->res.status == SVC_OK) {
        back_with(r, hs->done);
        return;
    }
    char buf[200];
    const char *fault = action_fault(hs, op->res.status);
    render_account(r, &hs->id, page_failure_status(r, &op->res),
                   page_failure_text(&op->res, buf, sizeof buf), fault,
                   fault && hs->passkey[0] ? hs->passkey : NULL);
}

/* The same for an action answered at once; fault as action_fault's. */
static void action_result(struct request *r, const struct identity *id,
                          const struct svc_result *res, const char *done, const char *fault)
{
    if (res->status == SVC_OK) {
        back_with(r, done);
        return;
    }
    char buf[200];
    render_account(r, id, page_failure_status(r, res), page_failure_text(res, buf, sizeof buf),
                   fault, NULL);
}

void page_account_password(struct request *r)
{
    struct identity id;
    struct form f;
    if (!action_start(r, &id, &f))
        return;
    size_t clen = 0, nlen = 0;
    const char *cur = form_get(&f, "current_password", &clen);
    const char *nw = form_get(&f, "new_password", &nlen);
    if (!cur || !nw)
        render_account(r, &id, 400, "Enter your current and your new password.",
                       !cur ? "current_password" : "new_password", NULL);
    else if (hs_new(r, &id, "password_changed", "current_password", "new_password"))
        request_run_op(r, accounts_change_password(r->app, request_ctx(r), &id, cur, clen, nw, nlen),
                       action_done);
    form_free(&f);
}

static void email_done(struct request *r, struct svc_op *op)
{
    struct action_hs *hs = r->hs;
    if (op->res.status == SVC_OK && !op->user.email[0] && !op->user.email_pending[0])
        hs->done = "email_removed";
    action_done(r, op);
}

void page_account_email(struct request *r)
{
    struct identity id;
    struct form f;
    if (!action_start(r, &id, &f))
        return;
    size_t elen = 0, plen = 0;
    const char *email = form_get(&f, "email", &elen), *pw = form_get(&f, "password", &plen);
    if (!pw)
        render_account(r, &id, 400, "Enter your password to change the address.", "email-password",
                       NULL);
    else if (hs_new(r, &id, "email_changed", "email-password", "email"))
        request_run_op(r, accounts_change_email(r->app, request_ctx(r), &id,
                                                email && elen ? email : NULL, elen, pw, plen),
                       email_done);
    form_free(&f);
}

void page_account_email_verify(struct request *r)
{
    struct identity id;
    struct form f;
    if (!action_start(r, &id, &f))
        return;
    size_t clen = 0;
    const char *code = form_get(&f, "code", &clen);
    struct store_user u = {0};
    struct svc_result res = code ? recovery_confirm_code(r->app, request_ctx(r), &id, code, clen, &u)
                                 : svc_fail(SVC_INVALID_CODE, "Enter the code.");
    store_user_clear(&u);
    action_result(r, &id, &res, "email_verified",
                  res.status == SVC_INVALID_CODE ? "verify-code" : NULL);
    form_free(&f);
}

void page_account_email_resend(struct request *r)
{
    struct identity id;
    struct form f;
    if (!action_start(r, &id, &f))
        return;
    struct svc_result res = recovery_request_verification(r->app, request_ctx(r), &id);
    action_result(r, &id, &res, "verification_sent", NULL);
    form_free(&f);
}

void page_account_session_revoke(struct request *r)
{
    struct identity id;
    struct form f;
    if (!action_start(r, &id, &f))
        return;
    const char *sid = form_get(&f, "sid", NULL);
    struct svc_result res = sid ? sessions_revoke(r->app, request_ctx(r), &id, sid)
                                : svc_fail(SVC_NOT_FOUND, NULL);
    if (res.status == SVC_NOT_FOUND)
        res.detail = "That session is not one of yours, or it ended already.";
    action_result(r, &id, &res, "session_revoked", NULL);
    form_free(&f);
}

/* ------------------------------------------------------------- TOTP --- */

static void render_codes(struct request *r, json_t *codes, const char *intro)
{
    struct page p;
    page_begin(&p, r, "Recovery codes", false);
    page_raw(&p, "<section class=\"card\">\n");
    page_notice(&p, true, intro);
    page_raw(&p, "<p>Keep these codes somewhere safe. Each one signs you in once when your "
                 "authenticator is not at hand. They are shown only now.</p>\n"
                 "<ul class=\"codes\" aria-label=\"Recovery codes\">\n");
    size_t i;
    json_t *c;
    json_array_foreach(codes, i, c)
    {
        page_raw(&p, "<li><code>");
        page_text(&p, json_string_value(c));
        page_raw(&p, "</code></li>\n");
    }
    page_raw(&p, "</ul>\n<p><a href=\"/account\">Back to your account</a></p>\n</section>\n");
    page_end(&p, 200);
}

static void render_enrol(struct request *r, json_t *data, const char *error)
{
    struct page p;
    page_begin(&p, r, "Set up an authenticator app", false);
    if (error)
        page_notice(&p, false, error);
    page_raw(&p, "<section class=\"card\">\n<ol>\n<li>Scan this code with your authenticator "
                 "app:<br><span class=\"qr\">");
    /* The SVG comes from qrsvg (no script, no style); it is markup. */
    const char *svg = json_string_value(json_object_get(data, "qr_svg"));
    page_raw(&p, svg ? svg : "");
    page_raw(&p, "</span></li>\n<li>Or type this key into it: <code id=\"totp-secret\">");
    page_text(&p, json_string_value(json_object_get(data, "secret")));
    page_raw(&p, "</code></li>\n<li>Enter the six-digit code it shows.</li>\n</ol>\n"
                 "<form method=\"post\" action=\"/account/totp/confirm\">\n"
                 "<label for=\"code\">Six-digit code</label>\n<input type=\"text\" id=\"code\" "
                 "name=\"code\" required inputmode=\"numeric\" pattern=\"[0-9 ]{6,7}\" "
                 "maxlength=\"7\" autocomplete=\"one-time-code\" autofocus>\n"
                 "<button type=\"submit\">Turn on</button>\n</form>\n</section>\n"
                 "<p class=\"muted\"><a href=\"/account\">Cancel</a></p>\n");
    page_end(&p, error ? 401 : 200);
}

static void enrol_done(struct request *r, struct svc_op *op)
{
    if (op->res.status != SVC_OK) {
        action_done(r, op); /* the account page with the error */
        return;
    }
    render_enrol(r, op->data, NULL);
}

/* The actions that only re-confirm the password. */
typedef struct svc_op *password_step(struct app *app, const struct svc_ctx *ctx,
                                     const struct identity *id, const char *pw, size_t plen);

static void password_action(struct request *r, password_step *step, const char *missing,
                            const char *pw_field, const char *done_notice, op_done_fn done)
{
    struct identity id;
    struct form f;
    if (!action_start(r, &id, &f))
        return;
    size_t plen = 0;
    const char *pw = form_get(&f, "password", &plen);
    if (!pw)
        render_account(r, &id, 400, missing, pw_field, NULL);
    else if (hs_new(r, &id, done_notice, pw_field, NULL))
        request_run_op(r, step(r->app, request_ctx(r), &id, pw, plen), done);
    form_free(&f);
}

void page_account_totp(struct request *r)
{
    password_action(r, mfa_totp_enroll, "Enter your password to set up an authenticator app.",
                    "totp-password", "", enrol_done);
}

void page_account_totp_confirm(struct request *r)
{
    struct identity id;
    struct form f;
    if (!action_start(r, &id, &f))
        return;
    size_t clen = 0;
    const char *code = form_get(&f, "code", &clen);
    json_t *codes = NULL;
    struct svc_result res = code ? mfa_totp_confirm(r->app, request_ctx(r), &id, code, clen, &codes)
                                 : svc_fail(SVC_BAD_SECOND_FACTOR, "Enter the code.");
    if (res.status == SVC_OK) {
        render_codes(r, codes, "Two-step sign-in is on.");
    } else if (res.status == SVC_BAD_SECOND_FACTOR) {
        /* The enrolment stays pending for the app that scanned the key;
         * the key itself is not shown again: it was shown after the
         * password, and anyone holding only this session (a cookie, no
         * password) must not read it and confirm with an app of theirs.
         * Someone who never scanned it starts again (password first). */
        struct page p;
        page_begin(&p, r, "Set up an authenticator app", false);
        page_notice(&p, false, res.detail ? res.detail : "The code is wrong.");
        page_raw(&p, "<p class=\"muted\">Enter the code your authenticator app shows now. "
                     "If you have not added the key to an app yet, cancel and set it up "
                     "again.</p>\n");
        page_raw(&p, "<section class=\"card\">\n<form method=\"post\" "
                     "action=\"/account/totp/confirm\">\n<label for=\"code\">Six-digit code"
                     "</label>\n<input type=\"text\" id=\"code\" name=\"code\" required "
                     "inputmode=\"numeric\" pattern=\"[0-9 ]{6,7}\" maxlength=\"7\" "
                     "autocomplete=\"one-time-code\" autofocus>\n<button type=\"submit\">Turn on"
                     "</button>\n</form>\n</section>\n<p class=\"muted\"><a href=\"/account\">"
                     "Cancel</a></p>\n");
        page_end(&p, 401);
    } else {
        action_result(r, &id, &res, "", NULL);
    }
    json_decref(codes);
    form_free(&f);
}

void page_account_totp_remove(struct request *r)
{
    password_action(r, mfa_totp_remove, "Enter your password.", "totp-off-password",
                    "totp_removed", action_done);
}

static void codes_done(struct request *r, struct svc_op *op)
{
    if (op->res.status != SVC_OK) {
        action_done(r, op); /* the account page with the error */
        return;
    }
    render_codes(r, json_object_get(op->data, "recovery_codes"),
                 "New recovery codes: the old ones no longer work.");
}

void page_account_recovery_codes(struct request *r)
{
    password_action(r, mfa_recovery_renew, "Enter your password.", "rc-password", "",
                    codes_done);
}

void page_account_passkey_remove(struct request *r)
{
    struct identity id;
    struct form f;
    if (!action_start(r, &id, &f))
        return;
    size_t klen = 0, plen = 0;
    const char *pk = form_get(&f, "id", &klen), *pw = form_get(&f, "password", &plen);
    if (!pk || !pw) {
        render_account(r, &id, 400, "Enter your password to remove a passkey.", pk ? "row" : NULL,
                       pk);
    } else if (hs_new(r, &id, "passkey_removed", "row", NULL)) {
        /* The row's password field: the passkey names the row. */
        struct action_hs *hs = r->hs;
        snprintf(hs->passkey, sizeof hs->passkey, "%s", pk);
        request_run_op(r, passkeys_remove(r->app, request_ctx(r), &id, pk, klen, pw, plen),
                       action_done);
    }
    form_free(&f);
}
