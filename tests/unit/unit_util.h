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

extern char **environ;

/* Unset every JWTD_* variable (names collected first: unsetenv edits
 * environ), so that what a test sets is all a configuration reads. */
static inline void unit_clean_env(void)
{
    char *names[256];
    size_t n = 0;
    for (char **e = environ; e && *e && n < 256; e++) {
        if (strncmp(*e, "JWTD_", 5) != 0)
            continue;
        const char *eq = strchr(*e, '=');
        names[n] = strndup(*e, eq ? (size_t)(eq - *e) : strlen(*e));
        assert_non_null(names[n]);
        n++;
    }
    for (size_t i = 0; i < n; i++) {
        unsetenv(names[i]);
        free(names[i]);
    }
}

#endif
