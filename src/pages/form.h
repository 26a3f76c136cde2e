/* SPDX-License-Identifier: Apache-2.0 */
/*
 * application/x-www-form-urlencoded bodies of the pages' forms, decoded
 * into name/value pairs. Values may be passwords: form_free wipes them.
 */
#ifndef JWTD_PAGES_FORM_H
#define JWTD_PAGES_FORM_H

#include <stdbool.h>
#include <stddef.h>

#define FORM_MAX_FIELDS 16

struct form {
    size_t n;
    char *name[FORM_MAX_FIELDS];
    char *value[FORM_MAX_FIELDS];
    size_t len[FORM_MAX_FIELDS];
};

/* Decode body (len bytes). False when malformed: a bad escape, a NUL, a
 * repeated name, more than FORM_MAX_FIELDS fields; f is then empty. */
bool form_parse(const char *body, size_t len, struct form *f);

/* A field's value (NUL-terminated, *ret_len bytes), or NULL. */
const char *form_get(const struct form *f, const char *name, size_t *ret_len);

/* Wipe and free. */
void form_free(struct form *f);

#endif /* JWTD_PAGES_FORM_H */
