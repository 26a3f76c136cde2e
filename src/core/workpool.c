/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Implementation of workpool.h: a mutex-protected FIFO, a condition variable
 * and N worker threads. The queue is bounded by reservations (taken before
 * the HTTP connection is suspended), so a full pool costs a request nothing
 * but a fast 503.
 *
 * Stopping keeps the struct: the HTTP threads still hold a pointer to it and
 * must get a refusal (503), not freed memory, until the daemon has stopped.
 * A job queued after every worker has left is completed on the caller's
 * thread, so that no job (and no suspended connection) is ever stranded.
 */
#include "core/workpool.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "base/histogram.h"
#include "base/log.h"
#include "base/util.h"

struct workpool {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    struct work_job *head, *tail;
    unsigned reserved; /* places taken: queued + about to be queued + running */
    unsigned cap;      /* waiting places + one per worker */
    bool stopping;
    bool joined;       /* workpool_stop has joined the threads */
    unsigned live;     /* workers that have not left: one of them takes a queued job */
    enum work_priority prio;
    int64_t deadline_ms;
    bool pinned;
    cpu_set_t cpus;
    unsigned n_threads;
    pthread_t *threads;
    atomic_uint_fast64_t rejected;
    atomic_uint_fast64_t expired;
    struct histogram wait; /* queue wait of admitted (not posted) jobs */
};

static void set_priority(enum work_priority prio)
{
    struct sched_param sp = {.sched_priority = 0};
    switch (prio) {
    case WORK_PRIO_IDLE:
        /* Runs only when no normal thread wants the CPU; the bounded queue
         * and the deadline keep logins from waiting forever on a saturated
         * machine. (Measured on Linux 6.18: a woken request thread preempts
         * a SCHED_BATCH nice-19 thread faster than a SCHED_IDLE one, hence
         * batch is the default.) */
        if (sched_setscheduler(0, SCHED_IDLE, &sp) != 0)
            LOG(LOG_WARN, "workpool_priority", LF_S("wanted", "idle"), LF_S("result", "unchanged"));
        break;
    case WORK_PRIO_BATCH:
        /* Never preempts on wake-up, and nice 19 weighs 1/68 of a request
         * thread. */
        if (sched_setscheduler(0, SCHED_BATCH, &sp) != 0 ||
            setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), 19) != 0)
            LOG(LOG_WARN, "workpool_priority", LF_S("wanted", "batch"), LF_S("result", "unchanged"));
        break;
    case WORK_PRIO_IO_BATCH:
        if (sched_setscheduler(0, SCHED_BATCH, &sp) != 0)
            LOG(LOG_WARN, "iopool_priority", LF_S("wanted", "batch"), LF_S("result", "unchanged"));
        break;
    case WORK_PRIO_NORMAL:
        break;
    }
}

/* A job that will not run and that no worker holds (never queued, or
 * taken out of the queue by workpool_stop): answered by its completion
 * (ran = false), its place given back here rather than by a worker. */
static void drop_unqueued(struct workpool *hp, struct work_job *job)
{
    job->complete(job, false);
    pthread_mutex_lock(&hp->lock);
    hp->reserved--;
    atomic_fetch_add(&hp->expired, 1);
    pthread_mutex_unlock(&hp->lock);
}

static void *worker(void *arg)
{
    struct workpool *hp = arg;
    set_priority(hp->prio);
    if (hp->pinned && pthread_setaffinity_np(pthread_self(), sizeof hp->cpus, &hp->cpus) != 0)
        LOG(LOG_WARN, "workpool_affinity", LF_S("result", "unchanged"));
    pthread_mutex_lock(&hp->lock);
    for (;;) {
        while (!hp->head && !hp->stopping)
            pthread_cond_wait(&hp->cond, &hp->lock);
        if (!hp->head && hp->stopping) {
            /* Decided under the lock that enqueue() reads: a job queued from
             * now on either finds another live worker or none at all. */
            hp->live--;
            break;
        }
        struct work_job *job = hp->head;
        hp->head = job->next;
        if (!hp->head)
            hp->tail = NULL;
        int64_t waited_us = util_mono_us() - job->enqueued_us;
        /* A continuation runs even while stopping: its admitted work (a
         * hash) is done, and only its finish gives the client the answer
         * it paid for. Fresh work is dropped: the client gets a 503. */
        bool drop = !job->exempt && (hp->stopping || waited_us > hp->deadline_ms * 1000);
        pthread_mutex_unlock(&hp->lock);
        if (drop) {
            atomic_fetch_add(&hp->expired, 1);
            job->complete(job, false);
        } else {
            if (!job->exempt)
                histogram_observe_us(&hp->wait, waited_us);
            job->run(job);
            job->complete(job, true);
        }
        pthread_mutex_lock(&hp->lock);
        hp->reserved--;
    }
    pthread_mutex_unlock(&hp->lock);
    return NULL;
}

struct workpool *workpool_new(unsigned workers, unsigned queue_cap, enum work_priority prio,
                              int64_t deadline_ms, const cpu_set_t *cpus)
{
    struct workpool *hp = calloc(1, sizeof *hp);
    if (!hp)
        return NULL;
    hp->threads = calloc(workers, sizeof *hp->threads);
    if (!hp->threads) {
        free(hp);
        return NULL;
    }
    pthread_mutex_init(&hp->lock, NULL);
    pthread_cond_init(&hp->cond, NULL);
    hp->cap = queue_cap + workers;
    hp->prio = prio;
    hp->deadline_ms = deadline_ms;
    if (cpus) {
        hp->pinned = true;
        hp->cpus = *cpus;
    }
    for (unsigned i = 0; i < workers; i++) {
        hp->live++; /* before the thread runs: it may leave at once (workpool_free below) */
        if (pthread_create(&hp->threads[i], NULL, worker, hp) != 0) {
            hp->live--;
            workpool_free(hp);
            return NULL;
        }
        hp->n_threads++;
    }
    return hp;
}

bool workpool_reserve(struct workpool *hp)
{
    pthread_mutex_lock(&hp->lock);
    bool ok = !hp->stopping && hp->reserved < hp->cap;
    if (ok)
        hp->reserved++;
    pthread_mutex_unlock(&hp->lock);
    if (!ok)
        atomic_fetch_add(&hp->rejected, 1);
    return ok;
}

void workpool_release(struct workpool *hp)
{
    pthread_mutex_lock(&hp->lock);
    hp->reserved--;
    pthread_mutex_unlock(&hp->lock);
}

static void list_append(struct work_job **head, struct work_job **tail, struct work_job *job)
{
    job->next = NULL;
    if (*tail)
        (*tail)->next = job;
    else
        *head = job;
    *tail = job;
}

/* Queue a job whose place is already counted in `reserved`. False when
 * every worker has left (the pool stopped between a reservation and its
 * submit, or a continuation is posted to a stopped pool): nobody would ever
 * take it, and the caller completes it as dropped, on its own thread. */
static bool enqueue(struct workpool *hp, struct work_job *job)
{
    job->enqueued_us = util_mono_us();
    pthread_mutex_lock(&hp->lock);
    bool queued = hp->live > 0;
    if (queued) {
        list_append(&hp->head, &hp->tail, job);
        pthread_cond_signal(&hp->cond);
    }
    pthread_mutex_unlock(&hp->lock);
    return queued;
}

void workpool_submit(struct workpool *hp, struct work_job *job)
{
    job->exempt = false;
    if (!enqueue(hp, job))
        drop_unqueued(hp, job);
}

void workpool_post(struct workpool *hp, struct work_job *job)
{
    pthread_mutex_lock(&hp->lock);
    hp->reserved++; /* counted in the depth, but past the cap */
    pthread_mutex_unlock(&hp->lock);
    job->exempt = true;
    if (!enqueue(hp, job))
        drop_unqueued(hp, job);
}

unsigned workpool_depth(struct workpool *hp)
{
    pthread_mutex_lock(&hp->lock);
    unsigned n = hp->reserved;
    pthread_mutex_unlock(&hp->lock);
    return n;
}

uint64_t workpool_rejected(struct workpool *hp)
{
    return atomic_load(&hp->rejected);
}

uint64_t workpool_expired(struct workpool *hp)
{
    return atomic_load(&hp->expired);
}

const struct histogram *workpool_wait(const struct workpool *hp)
{
    return &hp->wait;
}

/* Take the jobs not yet started that may be dropped (not continuations)
 * out of the queue; the caller holds the lock. Returns them as a chain. */
static struct work_job *unlink_fresh(struct workpool *hp)
{
    struct work_job *fresh = NULL, *fresh_tail = NULL;
    struct work_job *job = hp->head;
    hp->head = hp->tail = NULL;
    while (job) {
        struct work_job *next = job->next;
        if (job->exempt)
            list_append(&hp->head, &hp->tail, job);
        else
            list_append(&fresh, &fresh_tail, job);
        job = next;
    }
    return fresh;
}

void workpool_stop(struct workpool *hp)
{
    if (!hp)
        return;
    pthread_mutex_lock(&hp->lock);
    hp->stopping = true;
    /* Waiting jobs are answered now, on this thread: the workers may all
     * be inside jobs that wait on storage for seconds. */
    struct work_job *fresh = unlink_fresh(hp);
    pthread_cond_broadcast(&hp->cond);
    bool join = !hp->joined;
    hp->joined = true;
    pthread_mutex_unlock(&hp->lock);
    for (struct work_job *job = fresh, *next; job; job = next) {
        next = job->next;
        drop_unqueued(hp, job);
    }
    if (!join)
        return;
    /* The last worker leaves only with an empty queue, and enqueue() no
     * longer queues once none is left: nothing waits after this. */
    for (unsigned i = 0; i < hp->n_threads; i++)
        pthread_join(hp->threads[i], NULL);
}

void workpool_free(struct workpool *hp)
{
    if (!hp)
        return;
    workpool_stop(hp);
    pthread_cond_destroy(&hp->cond);
    pthread_mutex_destroy(&hp->lock);
    free(hp->threads);
    free(hp);
}
