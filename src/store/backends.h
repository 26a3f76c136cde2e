/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Constructors of the storage backends, for store.c only.
 */
#ifndef JWTD_STORE_BACKENDS_H
#define JWTD_STORE_BACKENDS_H

#include "store/store.h"

enum store_rc sqlite_store_open(const char *path, const struct store_options *opt,
                                struct store **ret, char *err, size_t errlen);
enum store_rc pg_store_open(const char *url, const struct store_options *opt, struct store **ret,
                            char *err, size_t errlen);

#endif /* JWTD_STORE_BACKENDS_H */
