/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A bounded pool of worker threads with a deadline on queued jobs. jwtd
 * runs two: the hashing pool (password hashing and other CPU-heavy account
 * work, at JWTD_HASH_PRIORITY: SCHED_BATCH at nice 19 by default, on the
 * CPUs of JWTD_HASH_CPUS, so that token checks keep their latency during a
 * login flood) and the I/O pool (requests that wait on storage, SCHED_BATCH
 * at nice 0, so that the HTTP threads never block on a database and a woken
 * I/O thread does not preempt one answering /auth/verify).
 *
 * A new job is reserved first (fails at once when the queue is full: the
 * caller answers 503 server_busy), then submitted; a worker runs it and calls
 * its completion, or completes it without running when it waited past the
 * deadline or the pool is shutting down. A continuation of work already
 * admitted is posted instead: never refused, never dropped by the deadline
 * or by a stop that finds it queued (only one posted after every worker
 * left is completed as dropped).
 */
#ifndef JWTD_WORKPOOL_H
#define JWTD_WORKPOOL_H

#include <sched.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/config.h"

struct work_job {
    /* Runs on a worker thread. */
    void (*run)(struct work_job *job);
    /* Always called exactly once, on a worker thread, or, for a job queued
     * after the pool stopped, on the thread that queued it (before
     * workpool_submit/post returns): ran = false when the job was dropped
     * (deadline, shutdown). */
    void (*complete)(struct work_job *job, bool ran);
    int64_t enqueued_us; /* set by the pool */
    bool exempt;         /* posted continuation: no deadline (set by the pool) */
    struct work_job *next;
};

struct workpool;

/* Start `workers` threads with a queue of at most `queue_cap` waiting jobs,
 * confined to `cpus` when not NULL. NULL on failure. */
struct workpool *workpool_new(unsigned workers, unsigned queue_cap, enum work_priority prio,
                              int64_t deadline_ms, const cpu_set_t *cpus);

/* Reserve a place. False when the queue is full or the pool stopping. */
bool workpool_reserve(struct workpool *hp);

/* Give back a reservation that will not be used. */
void workpool_release(struct workpool *hp);

/* Queue a job on a reserved place (never fails). */
void workpool_submit(struct workpool *hp, struct work_job *job);

/* Queue a continuation of admitted work: no reservation, no deadline; it
 * runs even when the pool is stopping. */
void workpool_post(struct workpool *hp, struct work_job *job);

/* Jobs waiting or running, and jobs refused so far (for metrics). */
unsigned workpool_depth(struct workpool *hp);
uint64_t workpool_rejected(struct workpool *hp);
uint64_t workpool_expired(struct workpool *hp);

/* How long admitted jobs waited in the queue before a worker took them. */
struct histogram;
const struct histogram *workpool_wait(const struct workpool *hp);

/* Stop: new reservations are refused, waiting jobs are completed with
 * ran = false (posted continuations still run), running ones finish,
 * threads are joined. The pool stays
 * usable as a refusal: reserve fails, and a job queued from now on is
 * completed as dropped at once. Call from one thread; again is a no-op.
 * NULL-safe. */
void workpool_stop(struct workpool *hp);

/* workpool_stop, then free the memory. NULL-safe. */
void workpool_free(struct workpool *hp);

#endif /* JWTD_WORKPOOL_H */
