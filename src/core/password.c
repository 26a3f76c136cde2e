/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Implementation of password.h on libargon2 (argon2id), libcrypt (bcrypt
 * verification only) and the compiled-in blocklist (core/blocklist.c). Secrets are wiped
 * from every buffer this file allocates; nothing is logged.
 */
#include "core/password.h"

#include <crypt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <argon2.h>
#include <openssl/crypto.h>

#include "base/util.h"
#include "core/blocklist.h"

#define SALT_LEN 16
#define TAG_LEN 32

enum password_rc password_hash(const struct password_params *p, const char *pw, size_t len,
                               char **ret_hash)
{
    uint8_t salt[SALT_LEN];
    if (!util_random(salt, sizeof salt))
        return PASSWORD_ERROR;
    size_t enclen = argon2_encodedlen(p->iterations, p->memory_kib, p->parallelism, SALT_LEN,
                                      TAG_LEN, Argon2_id);
    char *enc = malloc(enclen);
    if (!enc)
        return PASSWORD_ERROR;
    int rc = argon2id_hash_encoded(p->iterations, p->memory_kib, p->parallelism, pw, len, salt,
                                   SALT_LEN, TAG_LEN, enc, enclen);
    OPENSSL_cleanse(salt, sizeof salt);
    if (rc != ARGON2_OK) {
        free(enc);
        return PASSWORD_ERROR;
    }
    *ret_hash = enc;
    return PASSWORD_OK;
}

static bool is_bcrypt(const char *h)
{
    return strncmp(h, "$2a$", 4) == 0 || strncmp(h, "$2b$", 4) == 0 || strncmp(h, "$2y$", 4) == 0;
}

/* Parameters of an argon2id PHC string; false when it is not one. */
static bool argon2id_params(const char *h, struct password_params *out)
{
    unsigned v, m, t, par;
    int n = 0;
    if (sscanf(h, "$argon2id$v=%u$m=%u,t=%u,p=%u$%n", &v, &m, &t, &par, &n) != 4 || n == 0)
        return false;
    out->memory_kib = m;
    out->iterations = t;
    out->parallelism = par;
    return v == ARGON2_VERSION_13;
}

/* $2a$/$2b$/$2y$, two-digit cost, '$', 53 characters of bcrypt's base64. */
static bool bcrypt_well_formed(const char *h, int *ret_cost)
{
    if (!is_bcrypt(h) || strlen(h) != 60 || h[6] != '$' || h[4] < '0' || h[4] > '9' ||
        h[5] < '0' || h[5] > '9')
        return false;
    for (size_t i = 7; i < 60; i++) {
        char c = h[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '/'))
            return false;
    }
    *ret_cost = (h[4] - '0') * 10 + (h[5] - '0');
    return true;
}

/* Largest work factors accepted from imported hashes: each login pays them
 * (bcrypt 15 is about 1.6 s here; more would hold a hashing thread for
 * minutes, past any deadline). */
#define BCRYPT_MAX_COST 15
#define ARGON2_MAX_MEMORY_KIB (1024u * 1024u)
#define ARGON2_MAX_ITERATIONS 20
#define ARGON2_MAX_PARALLELISM 16

bool password_hash_supported(const char *hash)
{
    struct password_params p = {0};
    int cost = 0;
    if (argon2id_params(hash, &p)) {
        if (p.memory_kib < 8 || p.memory_kib > ARGON2_MAX_MEMORY_KIB || p.iterations < 1 ||
            p.iterations > ARGON2_MAX_ITERATIONS || p.parallelism < 1 ||
            p.parallelism > ARGON2_MAX_PARALLELISM)
            return false;
    } else if (!bcrypt_well_formed(hash, &cost) || cost < 4 || cost > BCRYPT_MAX_COST) {
        return false;
    }
    /* The decisive test: a trial verification must end in "mismatch", not
     * in a decoding error (bad salt, missing tag, bad characters). */
    bool unused;
    return password_verify(hash, "jwtd-import-probe", 17, &p, &unused) == PASSWORD_MISMATCH;
}

enum password_rc password_verify(const char *hash, const char *pw, size_t len,
                                 const struct password_params *p, bool *ret_needs_rehash)
{
    struct password_params hp;
    if (argon2id_params(hash, &hp)) {
        int rc = argon2id_verify(hash, pw, len);
        if (rc == ARGON2_VERIFY_MISMATCH)
            return PASSWORD_MISMATCH;
        if (rc != ARGON2_OK)
            return PASSWORD_ERROR;
        *ret_needs_rehash = hp.memory_kib != p->memory_kib || hp.iterations != p->iterations ||
                            hp.parallelism != p->parallelism;
        return PASSWORD_OK;
    }
    int cost;
    if (!bcrypt_well_formed(hash, &cost) || cost > BCRYPT_MAX_COST)
        return PASSWORD_ERROR;
    /* crypt wants a C string; a password with a NUL byte cannot match a
     * bcrypt hash made by any other system, so refuse it outright. */
    if (memchr(pw, '\0', len))
        return PASSWORD_MISMATCH;
    char *copy = malloc(len + 1);
    struct crypt_data *cd = calloc(1, sizeof *cd);
    enum password_rc out = PASSWORD_ERROR;
    if (!copy || !cd)
        goto done;
    memcpy(copy, pw, len);
    copy[len] = '\0';
    /* crypt_rn (libxcrypt) rather than crypt_r: same function, but never
     * answers with a "*0" failure token, and not intercepted by the
     * sanitizers (whose crypt_r interceptor breaks on libxcrypt). */
    const char *res = crypt_rn(copy, hash, cd, (int)sizeof *cd);
    size_t hl = strlen(hash);
    if (!res || res[0] == '*' || strlen(res) != hl)
        goto done; /* a hash libcrypt cannot use: an error, not a wrong password */
    out = CRYPTO_memcmp(res, hash, hl) == 0 ? PASSWORD_OK : PASSWORD_MISMATCH;
    if (out == PASSWORD_OK)
        *ret_needs_rehash = true;
done:
    if (copy) {
        OPENSSL_cleanse(copy, len + 1);
        free(copy);
    }
    if (cd) {
        OPENSSL_cleanse(cd, sizeof *cd);
        free(cd);
    }
    return out;
}

void password_hash_free(char *hash)
{
    if (hash) {
        OPENSSL_cleanse(hash, strlen(hash));
        free(hash);
    }
}

bool username_valid(const char *u, size_t len)
{
    if (len < USERNAME_MIN_CHARS || len > USERNAME_MAX_CHARS)
        return false;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)u[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '.' || c == '_' || c == '-' || c == '@' || c == '+';
        if (!ok)
            return false;
    }
    return true;
}

struct password_policy {
    /* Nothing yet: the blocklist is compiled in. The object stays so that a
     * configurable list has a home. */
    int unused;
};

struct password_policy *password_policy_new(void)
{
    return calloc(1, sizeof(struct password_policy));
}

void password_policy_free(struct password_policy *pp)
{
    free(pp);
}

const char *password_policy_check(struct password_policy *pp, const char *username,
                                  const char *pw, size_t len)
{
    (void)pp;
    if (len < PASSWORD_MIN_BYTES)
        return "password is shorter than 8 bytes";
    if (len > PASSWORD_MAX_BYTES)
        return "password is longer than 1024 bytes";
    if (username && strlen(username) == len && strncasecmp(username, pw, len) == 0)
        return "password must not be the username";
    /* bcrypt (libcrypt) reads C strings: a NUL would cut the password. */
    if (memchr(pw, '\0', len))
        return "password contains a NUL byte";
    /* NIST SP 800-63B 5.1.1.2: a list of common and breached passwords and
     * dictionary words, and nothing else - no composition rules, no
     * guessing at what looks "systematic". */
    if (blocklist_contains(pw, len))
        return "password is in a list of common or breached passwords";
    return NULL;
}
