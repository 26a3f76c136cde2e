/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Password hashing, verification and policy. Hashes are argon2id PHC
 * strings; bcrypt hashes imported from other systems ($2a$/$2b$/$2y$) verify
 * through libcrypt and are reported as needing a re-hash. These functions
 * are slow on purpose (tens of milliseconds): call them only from the
 * hashing pool, never from an HTTP thread.
 */
#ifndef JWTD_PASSWORD_H
#define JWTD_PASSWORD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PASSWORD_MIN_BYTES 8
#define PASSWORD_MAX_BYTES 1024
#define USERNAME_MIN_CHARS 3
#define USERNAME_MAX_CHARS 128

struct password_params {
    uint32_t memory_kib;
    uint32_t iterations;
    uint32_t parallelism;
};

enum password_rc { PASSWORD_OK = 0, PASSWORD_MISMATCH = 1, PASSWORD_ERROR = -1 };

/* Hash pw (len bytes) as argon2id with a fresh 16-byte salt. *ret_hash is a
 * new PHC string (free with password_hash_free). */
enum password_rc password_hash(const struct password_params *p, const char *pw, size_t len,
                               char **ret_hash);

/* True when hash is argon2id with exactly the parameters p (what a
 * verification of it costs is what the dummy hash of unknown users costs). */
bool password_hash_is_current(const char *hash, const struct password_params *p);

/* Verify pw against an argon2id or bcrypt hash, in constant time with
 * respect to the password. On PASSWORD_OK, *ret_needs_rehash tells whether
 * the hash is not argon2id with exactly the parameters p. An unsupported or
 * malformed hash is PASSWORD_ERROR. */
enum password_rc password_verify(const char *hash, const char *pw, size_t len,
                                 const struct password_params *p, bool *ret_needs_rehash);

/* True when hash is a hash jwtd can verify (for imports). */
bool password_hash_supported(const char *hash);

/* Hashing and verifying use a work area of the calling thread (the argon2id
 * memory), kept for its next hash and given back when the thread ends. A
 * thread that hashed once and will not again (start-up) gives it back now. */
void password_release_work_area(void);

/* Wipe and free a hash string. NULL-safe. */
void password_hash_free(char *hash);

/* Username rule of API.md: 3-128 characters of ASCII letters, digits and
 * . _ - @ + */
bool username_valid(const char *u, size_t len);

/* The password policy (NIST SP 800-63B): 8-1024 bytes, no NUL, not the
 * username, not in the blocklist of common and breached passwords and
 * dictionary words (data/blocklist/). No composition rules. */
struct password_policy;

struct password_policy *password_policy_new(void);
void password_policy_free(struct password_policy *pp);

/* NULL when acceptable, else a static human sentence saying why not.
 * Thread-safe, cheap (a binary search): callable on any thread. */
const char *password_policy_check(struct password_policy *pp, const char *username,
                                  const char *pw, size_t len);

#endif /* JWTD_PASSWORD_H */
