/* SPDX-License-Identifier: Apache-2.0 */
/*
 * argon2_rate: the raw argon2id hashing rate of this machine, the ceiling that
 * jwtd's login rate is compared with in bench/run.sh.
 *
 * Runs THREADS threads that each hash a fixed password with a fresh salt in a
 * loop for SECONDS seconds, with the given argon2id parameters (the same ones
 * jwtd is started with), then prints one line:
 *
 *     hashes=<n> seconds=<s> rate=<hashes per second>
 *
 * Usage: argon2_rate THREADS SECONDS MEMORY_KIB ITERATIONS PARALLELISM
 *
 * It is a benchmark helper, not product code: it is compiled by bench/run.sh
 * into a temporary directory and is not part of the meson build. The salt only
 * needs to vary (argon2 has no data-dependent shortcut worth defeating), so a
 * per-thread counter is enough; no CSPRNG is needed here.
 */
#define _POSIX_C_SOURCE 200809L

#include <argon2.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct params {
    uint32_t m_cost;      /* KiB */
    uint32_t t_cost;      /* passes */
    uint32_t lanes;       /* parallelism */
    double seconds;       /* how long every thread keeps hashing */
};

static struct params P;
static atomic_uint_fast64_t total_hashes;
static atomic_int failed;
static struct timespec t_start;

static double elapsed(const struct timespec *from)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)(now.tv_sec - from->tv_sec) + (double)(now.tv_nsec - from->tv_nsec) / 1e9;
}

static void *worker(void *arg)
{
    static const char password[] = "correct-horse-battery-staple";
    uint8_t salt[16] = {0};
    uint8_t hash[32];
    uint64_t n = 0;
    uintptr_t id = (uintptr_t)arg;

    memcpy(salt, &id, sizeof id < 8 ? sizeof id : 8);
    /* Every hash started before the deadline is finished and counted; the
     * total time is measured after the joins, so the rate stays honest. */
    while (elapsed(&t_start) < P.seconds) {
        memcpy(salt + 8, &n, sizeof n);
        int rc = argon2id_hash_raw(P.t_cost, P.m_cost, P.lanes, password, sizeof password - 1,
                                   salt, sizeof salt, hash, sizeof hash);
        if (rc != ARGON2_OK) {
            fprintf(stderr, "argon2_rate: %s\n", argon2_error_message(rc));
            atomic_store(&failed, 1);
            break;
        }
        n++;
    }
    atomic_fetch_add(&total_hashes, n);
    return NULL;
}

/* Parses a positive integer argument or exits with a message. */
static unsigned long parse_arg(const char *s, const char *what)
{
    char *end = NULL;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v == 0 || v > UINT32_MAX) {
        fprintf(stderr, "argon2_rate: bad %s: %s\n", what, s);
        exit(2);
    }
    return v;
}

int main(int argc, char **argv)
{
    if (argc != 6) {
        fprintf(stderr, "usage: %s THREADS SECONDS MEMORY_KIB ITERATIONS PARALLELISM\n", argv[0]);
        return 2;
    }
    unsigned long threads = parse_arg(argv[1], "THREADS");
    P.seconds = (double)parse_arg(argv[2], "SECONDS");
    P.m_cost = (uint32_t)parse_arg(argv[3], "MEMORY_KIB");
    P.t_cost = (uint32_t)parse_arg(argv[4], "ITERATIONS");
    P.lanes = (uint32_t)parse_arg(argv[5], "PARALLELISM");
    if (threads > 256) {
        fprintf(stderr, "argon2_rate: at most 256 threads\n");
        return 2;
    }

    pthread_t tid[256];
    clock_gettime(CLOCK_MONOTONIC, &t_start);
    for (unsigned long i = 0; i < threads; i++) {
        if (pthread_create(&tid[i], NULL, worker, (void *)(uintptr_t)i) != 0) {
            fprintf(stderr, "argon2_rate: cannot start thread %lu\n", i);
            return 1;
        }
    }
    for (unsigned long i = 0; i < threads; i++)
        pthread_join(tid[i], NULL);
    double secs = elapsed(&t_start);
    if (atomic_load(&failed))
        return 1;

    uint64_t n = atomic_load(&total_hashes);
    printf("hashes=%" PRIu64 " seconds=%.3f rate=%.2f\n", n, secs, (double)n / secs);
    return 0;
}
