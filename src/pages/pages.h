/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The HTML pages (docs/pages.md): the handlers server/routes.c lists.
 */
#ifndef JWTD_PAGES_H
#define JWTD_PAGES_H

#include "http/request.h"

void page_login(struct request *r);
void page_login_post(struct request *r);
void page_login_mfa(struct request *r);
void page_signup(struct request *r);
void page_signup_post(struct request *r);
void page_logout(struct request *r);
void page_signout(struct request *r);
void page_refresh_continue(struct request *r);
void page_account(struct request *r);
void page_account_password(struct request *r);
void page_account_email(struct request *r);
void page_account_email_verify(struct request *r);
void page_account_email_resend(struct request *r);
void page_account_session_revoke(struct request *r);
void page_account_totp(struct request *r);
void page_account_totp_confirm(struct request *r);
void page_account_totp_remove(struct request *r);
void page_account_recovery_codes(struct request *r);
void page_account_passkey_remove(struct request *r);
void page_forgot(struct request *r);
void page_forgot_post(struct request *r);
void page_reset(struct request *r);
void page_reset_post(struct request *r);
void page_verify_email(struct request *r);
void page_verify_email_post(struct request *r);
void page_static_css(struct request *r);
void page_static_js(struct request *r);

#endif /* JWTD_PAGES_H */
