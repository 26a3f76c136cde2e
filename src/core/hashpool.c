/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Implementation of hashpool.h: a mutex-protected FIFO, a condition variable
 * and N worker threads. The queue is bounded by reservations (taken before
 * the HTTP connection is suspended), so a full pool costs a request nothing
 * but a fast 503.
 */
#include "core/hashpool.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "core/log.h"
#include "core/util.h"

struct hashpool {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    struct hash_job *head, *tail;
    unsigned reserved; /* places taken: queued + about to be queued + running */
    unsigned cap;      /* waiting places + one per worker */
    bool stopping;
    enum hash_priority prio;
    int64_t deadline_ms;
    bool pinned;
    cpu_set_t cpus;
    unsigned n_threads;
    pthread_t *threads;
    atomic_uint_fast64_t rejected;
    atomic_uint_fast64_t expired;
};

static void set_priority(enum hash_priority prio)
{
    struct sched_param sp = {.sched_priority = 0};
    switch (prio) {
    case HASH_PRIO_IDLE:
        /* Runs only when no normal thread wants the CPU; the bounded queue
         * and the deadline keep logins from waiting forever on a saturated
         * machine. (Measured on Linux 6.18: a woken request thread preempts
         * a SCHED_BATCH nice-19 thread faster than a SCHED_IDLE one, hence
         * batch is the default.) */
        if (sched_setscheduler(0, SCHED_IDLE, &sp) != 0)
            LOGE(LOG_WARN, "hashpool_priority", "wanted", "idle", "result", "unchanged");
        break;
    case HASH_PRIO_BATCH:
        /* Never preempts on wake-up, and nice 19 weighs 1/68 of a request
         * thread. */
        if (sched_setscheduler(0, SCHED_BATCH, &sp) != 0 ||
            setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), 19) != 0)
            LOGE(LOG_WARN, "hashpool_priority", "wanted", "batch", "result", "unchanged");
        break;
    case HASH_PRIO_IO_BATCH:
        if (sched_setscheduler(0, SCHED_BATCH, &sp) != 0)
            LOGE(LOG_WARN, "iopool_priority", "wanted", "batch", "result", "unchanged");
        break;
    case HASH_PRIO_NORMAL:
        break;
    }
}

static void *worker(void *arg)
{
    struct hashpool *hp = arg;
    set_priority(hp->prio);
    if (hp->pinned && pthread_setaffinity_np(pthread_self(), sizeof hp->cpus, &hp->cpus) != 0)
        LOGE(LOG_WARN, "hashpool_affinity", "result", "unchanged");
    pthread_mutex_lock(&hp->lock);
    for (;;) {
        while (!hp->head && !hp->stopping)
            pthread_cond_wait(&hp->cond, &hp->lock);
        if (!hp->head && hp->stopping)
            break;
        struct hash_job *job = hp->head;
        hp->head = job->next;
        if (!hp->head)
            hp->tail = NULL;
        bool drop = hp->stopping ||
                    (!job->exempt && util_mono_ms() - job->enqueued_ms > hp->deadline_ms);
        pthread_mutex_unlock(&hp->lock);
        if (drop) {
            atomic_fetch_add(&hp->expired, 1);
            job->complete(job, false);
        } else {
            job->run(job);
            job->complete(job, true);
        }
        pthread_mutex_lock(&hp->lock);
        hp->reserved--;
    }
    pthread_mutex_unlock(&hp->lock);
    return NULL;
}

struct hashpool *hashpool_new(unsigned workers, unsigned queue_cap, enum hash_priority prio,
                              int64_t deadline_ms, const cpu_set_t *cpus)
{
    struct hashpool *hp = calloc(1, sizeof *hp);
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
            hashpool_free(hp);
            return NULL;
        }
        hp->n_threads++;
    }
    return hp;
}

bool hashpool_reserve(struct hashpool *hp)
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

void hashpool_release(struct hashpool *hp)
{
    pthread_mutex_lock(&hp->lock);
    hp->reserved--;
    pthread_mutex_unlock(&hp->lock);
}

static void enqueue(struct hashpool *hp, struct hash_job *job)
{
    job->next = NULL;
    job->enqueued_ms = util_mono_ms();
    pthread_mutex_lock(&hp->lock);
    if (hp->tail)
        hp->tail->next = job;
    else
        hp->head = job;
    hp->tail = job;
    pthread_cond_signal(&hp->cond);
    pthread_mutex_unlock(&hp->lock);
}

void hashpool_submit(struct hashpool *hp, struct hash_job *job)
{
    job->exempt = false;
    enqueue(hp, job);
}

void hashpool_post(struct hashpool *hp, struct hash_job *job)
{
    pthread_mutex_lock(&hp->lock);
    hp->reserved++; /* counted in the depth, but past the cap */
    pthread_mutex_unlock(&hp->lock);
    job->exempt = true;
    enqueue(hp, job);
}

unsigned hashpool_depth(struct hashpool *hp)
{
    pthread_mutex_lock(&hp->lock);
    unsigned n = hp->reserved;
    pthread_mutex_unlock(&hp->lock);
    return n;
}

uint64_t hashpool_rejected(struct hashpool *hp)
{
    return atomic_load(&hp->rejected);
}

uint64_t hashpool_expired(struct hashpool *hp)
{
    return atomic_load(&hp->expired);
}

void hashpool_free(struct hashpool *hp)
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
        struct hash_job *job = hp->head;
        hp->head = job->next;
        job->complete(job, false);
    }
    pthread_cond_destroy(&hp->cond);
    pthread_mutex_destroy(&hp->lock);
    free(hp->threads);
    free(hp);
}
