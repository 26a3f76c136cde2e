/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Helpers the unit tests share: a scratch directory of their own and its
 * removal. Header-only (static functions), included after cmocka.h.
 */
#ifndef JWTD_TESTS_UNIT_UTIL_H
#define JWTD_TESTS_UNIT_UTIL_H

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Make "$TMPDIR/jwtd-ut-<what>-XXXXXX" (TMPDIR defaults to /tmp) into dir;
 * fails the test when it cannot. */
static inline void unit_tmpdir(char *dir, size_t cap, const char *what)
{
    const char *tmp = getenv("TMPDIR");
    snprintf(dir, cap, "%s/jwtd-ut-%s-XXXXXX", tmp && *tmp ? tmp : "/tmp", what);
    assert_non_null(mkdtemp(dir));
}

/* Remove dir and the files in it (a scratch directory holds no
 * subdirectories). */
static inline void unit_rm_dir(const char *dir)
{
    DIR *d = opendir(dir);
    if (d) {
        struct dirent *e;
        while ((e = readdir(d)) != NULL) {
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
                continue;
            char p[4096];
            snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
            unlink(p);
        }
        closedir(d);
    }
    rmdir(dir);
}

#endif
