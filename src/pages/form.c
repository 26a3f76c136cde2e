/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Implementation of form.h, on parse_form_component of http/parse.h.
 */
#include "pages/form.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "http/parse.h"

static char *decode(const char *in, size_t len, size_t *ret_len)
{
    char *out = malloc(len + 1);
    if (out && !parse_form_component(in, len, out, len + 1, ret_len)) {
        OPENSSL_cleanse(out, len + 1);
        free(out);
        return NULL;
    }
    return out;
}

bool form_parse(const char *body, size_t len, struct form *f)
{
    memset(f, 0, sizeof *f);
    size_t i = 0;
    while (i < len) {
        size_t end = i;
        while (end < len && body[end] != '&')
            end++;
        if (end > i) {
            const char *eq = memchr(body + i, '=', end - i);
            size_t nlen = eq ? (size_t)(eq - (body + i)) : end - i;
            size_t vstart = eq ? (size_t)(eq - body) + 1 : end;
            size_t dummy;
            if (f->n == FORM_MAX_FIELDS)
                goto bad;
            char *name = decode(body + i, nlen, &dummy);
            char *value = name ? decode(body + vstart, end - vstart, &f->len[f->n]) : NULL;
            if (!name || !value || form_get(f, name, NULL)) {
                free(name);
                if (value) {
                    OPENSSL_cleanse(value, f->len[f->n]);
                    free(value);
                }
                goto bad;
            }
            f->name[f->n] = name;
            f->value[f->n] = value;
            f->n++;
        }
        i = end + 1;
    }
    return true;
bad:
    form_free(f);
    return false;
}

const char *form_get(const struct form *f, const char *name, size_t *ret_len)
{
    for (size_t i = 0; i < f->n; i++)
        if (strcmp(f->name[i], name) == 0) {
            if (ret_len)
                *ret_len = f->len[i];
            return f->value[i];
        }
    return NULL;
}

void form_free(struct form *f)
{
    for (size_t i = 0; i < f->n; i++) {
        free(f->name[i]);
        OPENSSL_cleanse(f->value[i], f->len[i]);
        free(f->value[i]);
    }
    memset(f, 0, sizeof *f);
}
