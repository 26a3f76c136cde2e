/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A main() for the fuzz targets in builds without libFuzzer: feed every file
 * named on the command line (directories: every file inside, sorted) to
 * LLVMFuzzerTestOneInput once. `meson test` runs each target this way over
 * its seed corpus and past crashes (tests/fuzz/regressions/), so a fixed
 * crash stays fixed in every build, sanitizers or not.
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz_common.h"

static int run_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "replay: cannot open %s\n", path);
        return 1;
    }
    size_t cap = 1 << 16, len = 0;
    uint8_t *buf = malloc(cap);
    size_t n;
    while (buf && (n = fread(buf + len, 1, cap - len, f)) > 0) {
        len += n;
        if (len == cap) {
            uint8_t *nb = realloc(buf, cap * 2);
            if (!nb) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = nb;
            cap *= 2;
        }
    }
    fclose(f);
    if (!buf)
        return 1;
    LLVMFuzzerTestOneInput(buf, len);
    free(buf);
    return 0;
}

static int cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int run_dir(const char *dir, unsigned *count)
{
    DIR *d = opendir(dir);
    if (!d)
        return 0; /* a target without regressions yet */
    char **names = NULL;
    size_t n = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 64;
            char **nn = realloc(names, cap * sizeof *nn);
            if (!nn)
                break;
            names = nn;
        }
        names[n++] = strdup(e->d_name);
    }
    closedir(d);
    if (n > 1)
        qsort(names, n, sizeof *names, cmp);
    int status = 0;
    for (size_t i = 0; i < n; i++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        struct stat sb;
        if (names[i] && stat(path, &sb) == 0 && S_ISREG(sb.st_mode)) {
            status |= run_file(path);
            (*count)++;
        }
        free(names[i]);
    }
    free(names);
    return status;
}

int main(int argc, char **argv)
{
    unsigned count = 0;
    int status = 0;
    for (int i = 1; i < argc; i++) {
        struct stat sb;
        if (stat(argv[i], &sb) != 0) {
            /* git keeps no empty directory: a target without past
             * crashes has no regressions/<target> in a fresh clone. */
            printf("replay: %s absent, skipped\n", argv[i]);
        } else if (S_ISDIR(sb.st_mode)) {
            status |= run_dir(argv[i], &count);
        } else {
            status |= run_file(argv[i]);
            count++;
        }
    }
    if (count == 0) {
        fprintf(stderr, "replay: no inputs (is the seed corpus missing?)\n");
        return 1;
    }
    printf("replay: %u inputs, all returned\n", count);
    return status;
}
