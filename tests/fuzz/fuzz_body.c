/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Fuzz target: request-body decoding as the handlers do it (strict JSON
 * object with duplicate keys refused, NUL only in "username", then string
 * fields), the account rules applied to the fields, opaque refresh-token
 * parsing and UUIDs. The configuration's value parsers have their own
 * target, fuzz_config.
 */
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "base/util.h"
#include "core/password.h"
#include "core/tokens.h"
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_error_t err;
    json_t *doc =
        json_loadb((const char *)data, size,
                   JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL | JSON_DECODE_ANY, &err);
    if (doc && json_is_object(doc)) {
        json_t *u = json_object_get(doc, "username");
        json_t *p = json_object_get(doc, "password");
        if (json_is_string(u))
            (void)username_valid(json_string_value(u), json_string_length(u));
        if (json_is_string(p) && json_string_length(p) < PASSWORD_MIN_BYTES &&
            strlen(json_string_value(p)) == json_string_length(p))
            (void)password_policy_check(NULL, json_is_string(u) ? json_string_value(u) : NULL,
                                        json_string_value(p), json_string_length(p));
        json_t *d = json_object_get(doc, "delivery");
        if (json_is_string(d))
            (void)strcmp(json_string_value(d), "cookie");
    }
    json_decref(doc);

    static const uint8_t key[REFRESH_KEY_LEN] = "refresh-key-for-fuzzing-32bytes";
    char sid[UUID_STR_LEN];
    uint32_t gen;
    if (refresh_token_parse(key, (const char *)data, size, sid, &gen) && strlen(sid) != 36)
        abort();

    if (size < 512 && !memchr(data, '\0', size)) {
        char value[512];
        memcpy(value, data, size);
        value[size] = '\0';
        uint8_t b[16];
        (void)util_uuid_to_bytes(value, b);
    }
    return 0;
}
