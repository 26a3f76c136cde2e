/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The few patterns a password list leaves out because a strength estimator
 * catches them with rules instead (zxcvbn's repeat, sequence, keyboard and
 * date matchers), and that NIST SP 800-63B 5.1.1.2 names beside breached
 * passwords: "repetitive or sequential characters (e.g. 'aaaaaa',
 * '1234abcd')". They are among the most used passwords of all: 88888888,
 * 987654321, 123123123, qwertyqwerty, poiuytrewq, 19841984, 01012009.
 *
 * Only a whole password of fewer than WEAKPATTERN_MAX_BYTES bytes can match,
 * and only when all of it is one pattern: a random password of 16 bytes or
 * more is never refused, nor is a passphrase, nor anything for its
 * composition. (A random 8-15 byte password matches with a probability far
 * below one in a billion; tests/unit/core/test_password.c tries 100,000.)
 */
#ifndef JWTD_WEAKPATTERN_H
#define JWTD_WEAKPATTERN_H

#include <stddef.h>

#define WEAKPATTERN_MAX_BYTES 16

/* The pattern pw[0..len) is, in words ("a repeated sequence", ...), or
 * NULL when it is none of them. ASCII case does not matter. */
const char *weakpattern_of(const char *pw, size_t len);

#endif
