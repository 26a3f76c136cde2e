/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A bounded pool of worker threads. jwtd runs two: the hashing pool
 * (password hashing, at the configured scheduling priority, SCHED_IDLE by
 * default, so that token checks keep their latency during a login flood)
 * and the I/O pool (handlers that wait on storage, at normal priority, so
 * that the HTTP threads never block on a database).
 *
 * A new job is reserved first (fails at once when the queue is full: the
 * caller answers 503 server_busy), then submitted; a worker runs it and calls
 * its completion, or completes it without running when it waited past the
 * deadline or the pool is shutting down. A continuation of work already
 * admitted is posted instead: never refused, never dropped by the deadline.
 */
#ifndef JWTD_HASHPOOL_H
#define JWTD_HASHPOOL_H

#include <sched.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/config.h"

struct hash_job {
    /* Runs on a worker thread. */
    void (*run)(struct hash_job *job);
    /* Always called exactly once, on a worker thread (or in hashpool_free):
     * ran = false when the job was dropped (deadline, shutdown). */
    void (*complete)(struct hash_job *job, bool ran);
    int64_t enqueued_ms; /* set by the pool */
    bool exempt;         /* posted continuation: no deadline (set by the pool) */
    struct hash_job *next;
};

struct hashpool;

/* Start `workers` threads with a queue of at most `queue_cap` waiting jobs,
 * confined to `cpus` when not NULL. NULL on failure. */
struct hashpool *hashpool_new(unsigned workers, unsigned queue_cap, enum hash_priority prio,
                              int64_t deadline_ms, const cpu_set_t *cpus);

/* Reserve a place. False when the queue is full or the pool stopping. */
bool hashpool_reserve(struct hashpool *hp);

/* Give back a reservation that will not be used. */
void hashpool_release(struct hashpool *hp);

/* Queue a job on a reserved place (never fails). */
void hashpool_submit(struct hashpool *hp, struct hash_job *job);

/* Queue a continuation of admitted work: no reservation, no deadline. */
void hashpool_post(struct hashpool *hp, struct hash_job *job);

/* Jobs waiting or running, and jobs refused so far (for metrics). */
unsigned hashpool_depth(struct hashpool *hp);
uint64_t hashpool_rejected(struct hashpool *hp);
uint64_t hashpool_expired(struct hashpool *hp);

/* Stop: waiting jobs are completed with ran = false, running ones finish,
 * threads are joined, memory freed. NULL-safe. */
void hashpool_free(struct hashpool *hp);

#endif /* JWTD_HASHPOOL_H */
