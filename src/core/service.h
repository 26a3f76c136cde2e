/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What every account service shares: who is asking (svc_ctx), the result
 * (svc_result, an enum that knows no HTTP), and the shape of an operation
 * that has to hash a password (svc_op).
 *
 * The rules of the product live in the services (accounts.c, sessions.c,
 * ratelimit.c); the front ends - the JSON API, the HTML pages, the operator
 * commands - only translate input to calls and results to answers, each in
 * one place (api/errors.c, pages/, cli/).
 *
 * Operations that need a password hashed are split around the slow part,
 * because the HTTP front end must not hold a thread while argon2id runs:
 *   1. the constructor (accounts_login, ...) does the quick checks and the
 *      storage reads, on the caller's thread;
 *   2. op->slow, when not NULL, is the CPU-heavy part (argon2id, bcrypt):
 *      the HTTP front end runs it on the hashing pool;
 *   3. op->finish(op, ran) writes the outcome to storage (ran = false when
 *      the pool could not take or run the job: the result becomes SVC_BUSY).
 * A front end that may block (the CLI) calls svc_op_run() to do 2 and 3 in
 * place. After that, op->res is final; svc_op_free() wipes and frees.
 */
#ifndef JWTD_SERVICE_H
#define JWTD_SERVICE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "core/app.h"

enum svc_actor {
    SVC_ACTOR_CLIENT,   /* someone over HTTP */
    SVC_ACTOR_OPERATOR  /* `jwtd user ...` on the server's host */
};

/* Who is asking: for rate limits, session records and the audit trail. */
struct svc_ctx {
    enum svc_actor actor;
    char operator_name[64];             /* the OS user running a command */
    char request_id[40];                /* also X-Request-Id */
    char client_addr[CLIENT_ADDR_MAX + 1];
    char user_agent[USER_AGENT_MAX + 1];
};

/* The context of an operator command (request id generated here). */
void svc_ctx_operator(struct svc_ctx *ctx);

enum svc_status {
    SVC_OK = 0,
    SVC_INVALID_USERNAME,  /* the username breaks the rules */
    SVC_WEAK_PASSWORD,     /* detail says why */
    SVC_USERNAME_TAKEN,
    SVC_SIGNUP_CLOSED,
    SVC_BAD_CREDENTIALS,   /* login: no such user, or a wrong password */
    SVC_WRONG_PASSWORD,    /* a password given to re-confirm an action is wrong */
    SVC_ACCOUNT_DISABLED,  /* the password was right, the account is disabled */
    SVC_LIMITED,           /* too many attempts: retry_after seconds */
    SVC_BUSY,              /* the hashing pool is full or dropped the job */
    SVC_UNAVAILABLE,       /* storage cannot be reached now */
    SVC_NOT_FOUND,         /* no such account / session (of the caller) */
    SVC_GONE,              /* the authenticated account no longer exists */
    SVC_INVALID_GRANT,     /* a refresh token refused: detail says why */
    SVC_INVALID_INPUT,     /* a value the service cannot take (detail) */
    SVC_INVALID_EMAIL,     /* not an e-mail address jwtd can send to */
    SVC_EMAIL_TAKEN,       /* another account has that address */
    SVC_EMAIL_NOT_VERIFIED,/* JWTD_REQUIRE_VERIFIED_EMAIL and the address is not verified */
    SVC_NOT_CONFIGURED,    /* mail is not set up (JWTD_SMTP_URL) */
    SVC_NOTHING_TO_VERIFY, /* no unverified address on the account */
    SVC_INVALID_LINK,      /* a reset or verification token: unknown, used or expired */
    SVC_INVALID_CODE,      /* a wrong verification code (detail: attempts left) */
    SVC_MFA_REQUIRED,      /* the password was right; a second factor is due (op->mfa_*) */
    SVC_BAD_SECOND_FACTOR, /* a wrong or replayed TOTP, recovery code or passkey */
    SVC_ALREADY_ENABLED,   /* the second factor is set up already */
    SVC_CONFLICT,          /* another request changed the same thing first */
    SVC_ERROR              /* a bug, corruption or out of memory */
};

struct svc_result {
    enum svc_status status;
    const char *detail;    /* static English sentence or phrase, or NULL */
    int64_t retry_after;   /* seconds, for SVC_LIMITED and SVC_BUSY */
};

/* Short name of a status, for logs and tests ("bad_credentials"). */
const char *svc_status_name(enum svc_status s);

/* The result of a storage failure: UNAVAILABLE or ERROR, counted. */
struct svc_result svc_store_failure(struct app *app, enum store_rc rc, const char *what);

static inline struct svc_result svc_ok(void)
{
    return (struct svc_result){SVC_OK, NULL, 0};
}

static inline struct svc_result svc_fail(enum svc_status s, const char *detail)
{
    return (struct svc_result){s, detail, 0};
}

/* Tokens handed out by login and refresh. */
struct session_grant {
    char sid[UUID_STR_LEN];
    uint32_t gen;
    char *access_token;                        /* heap; wiped by svc_grant_clear */
    char refresh_token[REFRESH_TOKEN_LEN + 1];
    int64_t access_ttl;                        /* seconds (expires_in, cookie max-age) */
    int64_t refresh_ttl;                       /* seconds (cookie max-age) */
};

void svc_grant_clear(struct session_grant *g);

struct svc_op {
    struct app *app;
    struct svc_ctx ctx;
    struct svc_result res;
    struct store_user user;       /* the account concerned, once known (hash cleared at the end) */
    struct session_grant grant;   /* login: the new session's tokens */
    int count;                    /* sessions revoked by the operation */
    char mfa_ticket[48];          /* SVC_MFA_REQUIRED: the ticket of the second step */
    unsigned mfa_methods;         /* SVC_MFA_REQUIRED: MFA_* of core/mfa.h */
    json_t *data;                 /* what else an operation hands back (TOTP enrolment, ...) */
    void (*slow)(struct svc_op *op);
    void (*finish)(struct svc_op *op, bool ran);
    void *priv;                   /* the operation's own state */
    void (*priv_free)(void *priv);
    /* Wipes the secrets of priv (passwords) once the slow part and finish
     * have run, before the answer is made: they are not kept until the
     * request's memory goes, after its response was sent. */
    void (*priv_wipe)(void *priv);
    void *arg;                    /* an argument of a re-confirmed action (accounts_reconfirm) */
    void (*arg_free)(void *arg);
};

/* A new operation for ctx (copied). NULL when out of memory. */
struct svc_op *svc_op_new(struct app *app, const struct svc_ctx *ctx);

/* Run the slow part and the finish in place (for callers that may block). */
/* Wipe the operation's secrets now (priv_wipe): after its slow part and
 * finish, before its answer. */
void svc_op_wipe(struct svc_op *op);

void svc_op_run(struct svc_op *op);

/* Wipe and free. NULL-safe. */
void svc_op_free(struct svc_op *op);

#endif /* JWTD_SERVICE_H */
