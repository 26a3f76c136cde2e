/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The HTTP status of each service result: one table for both front ends
 * over HTTP (the JSON API's api/errors.c and the pages).
 */
#ifndef JWTD_HTTP_STATUS_H
#define JWTD_HTTP_STATUS_H

#include "core/service.h"

unsigned http_status_of(enum svc_status s);

#endif /* JWTD_HTTP_STATUS_H */
