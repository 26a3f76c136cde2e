/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The endpoint handlers of API.md. Each translates HTTP to core calls and
 * core results to responses; the rules themselves live in core/.
 */
#ifndef JWTD_HANDLERS_H
#define JWTD_HANDLERS_H

#include "http/request.h"

void api_signup(struct request *r);
void api_login(struct request *r);
void api_refresh(struct request *r);
void api_logout(struct request *r);
void api_me(struct request *r);
void api_me_delete(struct request *r);
void api_me_patch(struct request *r);
void api_email_verify_request(struct request *r);
void api_email_verify(struct request *r);
void api_password_forgot(struct request *r);
void api_password_reset(struct request *r);
void api_password(struct request *r);
void api_sessions(struct request *r);
void api_session_delete(struct request *r);
void api_verify(struct request *r);
void api_mfa_status(struct request *r);
void api_mfa_verify(struct request *r);
void api_totp_enroll(struct request *r);
void api_totp_confirm(struct request *r);
void api_totp_remove(struct request *r);
void api_recovery_codes(struct request *r);
void api_passkeys_list(struct request *r);
void api_passkeys_delete(struct request *r);
void api_passkey_register_options(struct request *r);
void api_passkey_register(struct request *r);
void api_passkey_login_options(struct request *r);
void api_passkey_login(struct request *r);
void api_jwks(struct request *r);
void api_openid_configuration(struct request *r);
void api_healthz(struct request *r);
void api_readyz(struct request *r);
void api_metrics(struct request *r);

#endif /* JWTD_HANDLERS_H */
