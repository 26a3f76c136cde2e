/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Label names of metrics.h; the exposition itself is in api/health.c.
 */
#include "core/metrics.h"

const char *metrics_login_name(enum login_result r)
{
    static const char *const names[LOGIN_RESULT_COUNT] = {"ok", "failed", "rate_limited", "busy"};
    return (unsigned)r < LOGIN_RESULT_COUNT ? names[r] : "other";
}

const char *metrics_refresh_name(enum refresh_result r)
{
    static const char *const names[RR_COUNT] = {"rotated", "replayed", "unknown", "expired",
                                                "revoked", "reused",   "invalid"};
    return (unsigned)r < RR_COUNT ? names[r] : "other";
}

const char *metrics_mail_name(enum mail_result r)
{
    static const char *const names[MR_COUNT] = {"sent", "retry", "failed", "given_up", "dropped"};
    return (unsigned)r < MR_COUNT ? names[r] : "other";
}
