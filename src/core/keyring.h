/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The key ring: signing and verification keys of this server. In HS256 mode
 * it holds the one secret from the configuration. Otherwise keys live in
 * storage with a life cycle next (published, not signing) -> current
 * (signing) -> retired (published until its last token expired) -> removed;
 * the first start generates the current key, and every instance sharing the
 * storage re-reads the ring periodically (keyring_reload), so a rotation
 * done anywhere reaches everyone without a restart.
 *
 * Readers (sign, verify, JWKS) take a shared lock; a reload that found a
 * change swaps the whole ring under the exclusive lock.
 */
#ifndef JWTD_KEYRING_H
#define JWTD_KEYRING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "jwtd.h"
#include "core/config.h"
#include "store/store.h"

struct keyring;

/* A ring for cfg on store (both borrowed, must outlive the ring). */
struct keyring *keyring_new(const struct config *cfg, struct store *store);
void keyring_free(struct keyring *kr);

/* Prepare the ring at start-up: HS256 from the secret, or make sure storage
 * has a current key of the configured algorithm (generating one when none
 * exists; keys of another algorithm are retired), then load. On failure
 * writes a one-line reason to err. */
bool keyring_start(struct keyring *kr, char *err, size_t errlen);

/* Re-read the ring from storage; swaps it in when it changed. Returns false
 * when storage could not be read (the old ring stays in use). */
bool keyring_reload(struct keyring *kr);

/* Sign a JWT with the current key. *ret_token is new (free()). */
jwtd_err keyring_sign(struct keyring *kr, const char *payload, size_t len, char **ret_token);

/* Verify a token with the ring's keys. *ret_generation tells which ring
 * answered (for caches). */
jwtd_err keyring_verify(struct keyring *kr, const jwtd_verifier *v, const char *token, size_t len,
                        int64_t now, jwtd_claims **ret_claims, uint64_t *ret_generation);

/* Current generation (changes whenever the set of usable keys changes). */
uint64_t keyring_generation(struct keyring *kr);

/* A copy of the JWKS document (free()). NULL when out of memory. */
char *keyring_jwks(struct keyring *kr, size_t *ret_len);

/* True when a signing key is loaded. */
bool keyring_ready(struct keyring *kr);

/* Algorithms that may verify (the verifier's set). */
unsigned keyring_algs(struct keyring *kr);

/* Operator actions and the automatic schedule (issue: keys and rotation). */

/* Generate a next key now (if none exists) and promote it at once when
 * `immediate`, else after the publish-ahead period. Writes the new kid. */
bool keyring_rotate(struct keyring *kr, bool immediate, char kid_out[KID_MAX + 1], char *err,
                    size_t errlen);

/* Retire a key by kid: it stays published until its tokens expired, or,
 * with `purge`, is distrusted at once (a compromised key: its tokens are
 * refused from the next ring reload on). Retiring the current key requires a
 * next key to take over, and one whose publish-ahead time has passed unless
 * `at_once` or `purge` (verifiers that fetched the JWKS before the next key
 * was published would refuse its tokens). *ret_next gets the kid that took
 * over, "" when none did. */
bool keyring_retire(struct keyring *kr, const char *kid, bool purge, bool at_once,
                    char ret_next[KID_MAX + 1], char *err, size_t errlen);

/* The periodic duty: promote a due next key, create the next key of an
 * automatic rotation, remove expired retired keys. */
void keyring_maintain(struct keyring *kr, int64_t now);

/* How long (seconds) a retired key stays published: access TTL + leeway +
 * a margin. */
int64_t keyring_retire_window(const struct config *cfg);

#endif /* JWTD_KEYRING_H */
