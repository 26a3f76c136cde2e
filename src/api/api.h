/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What the JSON handlers share: the user object, token responses, and the
 * one mapping from service results (core/service.h) to HTTP statuses and
 * error bodies of API.md.
 */
#ifndef JWTD_API_H
#define JWTD_API_H

#include <stdbool.h>

#include <jansson.h>

#include "core/service.h"
#include "http/request.h"
#include "store/store.h"

/* {"id","username","created_at"} — never the hash. */
json_t *api_user_json(const struct store_user *u);

/* Answer a failed service result with the contract's status and error
 * body (SVC_OK is not a failure: 500). */
void api_respond_failure(struct request *r, const struct svc_result *res);

/* Answer 200 with the grant's tokens, in the body or (cookie) as cookies. */
void api_respond_grant(struct request *r, const struct store_user *u,
                       const struct session_grant *g, bool cookie);

/* Answer a login whose password was right but that needs a second factor:
 * 403 {"error":"mfa_required", ..., "mfa_ticket", "mfa_methods",
 * "expires_in"}. */
void api_respond_mfa_required(struct request *r, const struct svc_op *op);

/* Parse the optional "delivery" member: "body" (default) or "cookie".
 * Answers 400 and returns false when it is something else. */
bool api_parse_delivery(struct request *r, json_t *body, bool *ret_cookie);

#endif /* JWTD_API_H */
