/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Implementation of workpool.h: a mutex-protected FIFO, a condition variable
 * and N worker threads. The queue is bounded by reservations (taken before
 * the HTTP connection is suspended), so a full pool costs a request nothing
 * but a fast 503.
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
        if (!hp->head && hp->stopping)
            break;
        struct work_job *job = hp->head;
        hp->head = job->next;
        if (!hp->head)
            hp->tail = NULL;
        int64_t waited_us = util_mono_us() - job->enqueued_us;
        bool drop = hp->stopping || (!job->exempt && waited_us > hp->deadline_ms * 1000);
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
        if (pthread_create(&hp->threads[i], NULL, worker, hp) != 0) {
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

static void enqueue(struct workpool *hp, struct work_job *job)
{
    job->next = NULL;
    job->enqueued_us = util_mono_us();
    pthread_mutex_lock(&hp->lock);
    if (hp->tail)
        hp->tail->next = job;
    else
        hp->head = job;
    hp->tail = job;
    pthread_cond_signal(&hp->cond);
    pthread_mutex_unlock(&hp->lock);
}

void workpool_submit(struct workpool *hp, struct work_job *job)
{
    job->exempt = false;
    enqueue(hp, job);
}

void workpool_post(struct workpool *hp, struct work_job *job)
{
    pthread_mutex_lock(&hp->lock);
    hp->reserved++; /* counted in the depth, but past the cap */
    pthread_mutex_unlock(&hp->lock);
    job->exempt = true;
    enqueue(hp, job);
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

void workpool_free(struct workpool *hp)
{
    if (!hp)
        return;
    pthread_mutex_lock(&hp->lock);
    hp->stopping = true;
    pthread_cond_broadcast(&hp->cond);
    pthread_mutex_unlock(&hp->lock);
    for (unsigned i = 0; i < hp->n_threads; i++)
        pthread_join(hp->threads[i], NULL);
    /* Jobs queued after the workers left (cannot happen once stopping is
     * set, but stay safe): complete them as dropped. */
    while (hp->head) {
        struct work_job *job = hp->head;
        hp->head = job->next;
        job->complete(job, false);
    }
    pthread_cond_destroy(&hp->cond);
    pthread_mutex_destroy(&hp->lock);
    free(hp->threads);
    free(hp);
}
