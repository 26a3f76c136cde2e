/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Backend-independent parts of the storage layer: choosing a backend from
 * the database URL, the refresh decision both backends apply inside their
 * transactions, and the small destructors of result structs.
 */
#include "store/store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "store/backends.h"

enum store_rc store_open(const char *url, const struct store_options *opt, struct store **ret,
                         char *err, size_t errlen)
{
    if (strncmp(url, "sqlite:", 7) == 0)
        return sqlite_store_open(url + 7, opt, ret, err, errlen);
    if (strncmp(url, "postgres://", 11) == 0 || strncmp(url, "postgresql://", 13) == 0)
        return pg_store_open(url, opt, ret, err, errlen);
    snprintf(err, errlen, "unsupported database URL (sqlite:PATH or postgres://...)");
    return STORE_ERROR;
}

void store_close(struct store *s)
{
    if (s)
        s->ops->close(s);
}

const char *store_rc_name(enum store_rc rc)
{
    switch (rc) {
    case STORE_OK: return "ok";
    case STORE_NOT_FOUND: return "not_found";
    case STORE_CONFLICT: return "conflict";
    case STORE_UNAVAILABLE: return "unavailable";
    case STORE_ERROR: return "error";
    }
    return "?";
}

enum refresh_outcome store_refresh_decide(const struct store_session *row, uint32_t gen,
                                          const struct refresh_policy *p)
{
    if (row->revoked_at_ms)
        return REFRESH_REVOKED;
    int64_t now = p->now_ms / 1000;
    if (now >= row->expires_at || now >= row->last_used_at + p->idle_ttl)
        return REFRESH_EXPIRED;
    if (gen == row->refresh_gen)
        return REFRESH_ROTATED;
    /* Only the token retired last, and only briefly: two tabs that raced,
     * or a response lost on the way. Anything older is a stolen token. An
     * interval of 0 is strict single use, even for requests that raced. */
    if (p->reuse_interval_ms > 0 && gen + 1 == row->refresh_gen &&
        p->now_ms - row->rotated_at_ms <= p->reuse_interval_ms)
        return REFRESH_REPLAYED;
    return REFRESH_REUSED;
}

void store_username_key(const char *u, char *out)
{
    size_t i = 0;
    for (; u[i] && i < USERNAME_MAX; i++)
        out[i] = (u[i] >= 'A' && u[i] <= 'Z') ? (char)(u[i] + 32) : u[i];
    out[i] = '\0';
}

const char *store_hash_scheme(const char *h)
{
    if (strncmp(h, "$argon2id$", 10) == 0)
        return "argon2id";
    if (strncmp(h, "$2a$", 4) == 0 || strncmp(h, "$2b$", 4) == 0 || strncmp(h, "$2y$", 4) == 0)
        return "bcrypt";
    return "unknown";
}

int64_t store_login_backoff(int64_t failures, unsigned max_failures, int64_t base, int64_t max)
{
    if (failures < (int64_t)max_failures)
        return 0;
    int64_t b = base;
    for (int64_t i = 0; i < failures - (int64_t)max_failures && b < max; i++)
        b *= 2;
    return b < max ? b : max;
}

void store_user_clear(struct store_user *u)
{
    if (!u)
        return;
    if (u->password_hash) {
        OPENSSL_cleanse(u->password_hash, strlen(u->password_hash));
        free(u->password_hash);
        u->password_hash = NULL;
    }
}

void store_key_clear(struct store_key *k)
{
    if (!k)
        return;
    if (k->private_pem) {
        OPENSSL_cleanse(k->private_pem, strlen(k->private_pem));
        free(k->private_pem);
        k->private_pem = NULL;
    }
}

const char *store_key_state_name(enum key_state s)
{
    switch (s) {
    case KEY_NEXT: return "next";
    case KEY_CURRENT: return "current";
    case KEY_RETIRED: return "retired";
    }
    return "?";
}
