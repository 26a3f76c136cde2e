/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Implementation of status.h.
 */
#include "http/status.h"

unsigned http_status_of(enum svc_status s)
{
    switch (s) {
    case SVC_OK: return 200;
    case SVC_INVALID_USERNAME: return 422;
    case SVC_WEAK_PASSWORD: return 422;
    case SVC_USERNAME_TAKEN: return 409;
    case SVC_SIGNUP_CLOSED: return 403;
    case SVC_BAD_CREDENTIALS: return 401;
    case SVC_WRONG_PASSWORD: return 403;
    case SVC_ACCOUNT_DISABLED: return 403;
    case SVC_LIMITED: return 429;
    case SVC_BUSY: return 503;
    case SVC_UNAVAILABLE: return 503;
    case SVC_NOT_FOUND: return 404;
    case SVC_GONE: return 401;
    case SVC_INVALID_GRANT: return 401;
    case SVC_INVALID_INPUT: return 400;
    case SVC_INVALID_EMAIL: return 422;
    case SVC_EMAIL_TAKEN: return 409;
    case SVC_EMAIL_NOT_VERIFIED: return 403;
    case SVC_NOT_CONFIGURED: return 501;
    case SVC_NOTHING_TO_VERIFY: return 409;
    case SVC_INVALID_LINK: return 400;
    case SVC_INVALID_CODE: return 400;
    case SVC_MFA_REQUIRED: return 403;
    case SVC_BAD_SECOND_FACTOR: return 401;
    case SVC_ALREADY_ENABLED: return 409;
    case SVC_CONFLICT: return 409;
    case SVC_ERROR: return 500;
    }
    return 500;
}
