/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The bounded hashing pool (src/core/workpool.c): jobs run and complete
 * exactly once; workers really run in parallel; a reservation fails at once
 * when every place is taken (workers held inside a job by a gate the test
 * controls) and the refusal is counted; a job that waited past the deadline
 * is completed without running and counted as expired; shutting down
 * completes waiting jobs without running them, at once even while every
 * worker is busy, but runs posted continuations; a stopped pool refuses reservations and completes a job
 * queued after its workers left on the caller's thread (none is stranded).
 * No job here hashes anything.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/workpool.h"
#include "base/util.h"

/* What the test controls and observes. */
struct ctl {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool gate_open; /* blocking jobs wait for this */
    int started;
    int completed;
};

struct tjob {
    struct work_job job; /* first: the pool hands this pointer back */
    struct ctl *ctl;
    bool blocks;
    atomic_int run_calls;
    atomic_int complete_calls;
    atomic_bool ran;
};

static void ctl_init(struct ctl *c)
{
    memset(c, 0, sizeof *c);
    pthread_mutex_init(&c->lock, NULL);
    pthread_cond_init(&c->cond, NULL);
}

static void ctl_destroy(struct ctl *c)
{
    pthread_cond_destroy(&c->cond);
    pthread_mutex_destroy(&c->lock);
}

static void job_run(struct work_job *hj)
{
    struct tjob *j = (struct tjob *)hj;
    atomic_fetch_add(&j->run_calls, 1);
    pthread_mutex_lock(&j->ctl->lock);
    j->ctl->started++;
    pthread_cond_broadcast(&j->ctl->cond);
    while (j->blocks && !j->ctl->gate_open)
        pthread_cond_wait(&j->ctl->cond, &j->ctl->lock);
    pthread_mutex_unlock(&j->ctl->lock);
}

static void job_complete(struct work_job *hj, bool ran)
{
    struct tjob *j = (struct tjob *)hj;
    atomic_store(&j->ran, ran);
    atomic_fetch_add(&j->complete_calls, 1);
    pthread_mutex_lock(&j->ctl->lock);
    j->ctl->completed++;
    pthread_cond_broadcast(&j->ctl->cond);
    pthread_mutex_unlock(&j->ctl->lock);
}

static void job_init(struct tjob *j, struct ctl *c, bool blocks)
{
    memset(j, 0, sizeof *j);
    j->job.run = job_run;
    j->job.complete = job_complete;
    j->ctl = c;
    j->blocks = blocks;
    atomic_init(&j->run_calls, 0);
    atomic_init(&j->complete_calls, 0);
    atomic_init(&j->ran, false);
}

/* Wait until *counter >= n, at most 5 s. */
static void wait_for(struct ctl *c, const int *counter, int n)
{
    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += 5;
    pthread_mutex_lock(&c->lock);
    int rc = 0;
    while (*counter < n && rc != ETIMEDOUT)
        rc = pthread_cond_timedwait(&c->cond, &c->lock, &deadline);
    int got = *counter;
    pthread_mutex_unlock(&c->lock);
    if (got < n)
        fail_msg("timed out: %d of %d", got, n);
}

static void open_gate(struct ctl *c)
{
    pthread_mutex_lock(&c->lock);
    c->gate_open = true;
    pthread_cond_broadcast(&c->cond);
    pthread_mutex_unlock(&c->lock);
}

/* Everything a test shares with the pool lives here, on the heap, so that
 * a failing assertion (which leaves the test function at once) cannot leave
 * a worker blocked on a gate that no longer exists: the teardown opens the
 * gate and stops the pool. */
struct fx {
    struct ctl c;
    struct workpool *hp;
    struct tjob jobs[16];
};

static int fx_setup(void **state)
{
    struct fx *f = calloc(1, sizeof *f);
    assert_non_null(f);
    ctl_init(&f->c);
    *state = f;
    return 0;
}

static void open_gate(struct ctl *c);

static int fx_teardown(void **state)
{
    struct fx *f = *state;
    open_gate(&f->c);
    workpool_free(f->hp);
    ctl_destroy(&f->c);
    free(f);
    return 0;
}

/* The pool gives a place back just after complete() returns. */
static void wait_depth(struct workpool *hp, unsigned want)
{
    for (int i = 0; i < 5000 && workpool_depth(hp) != want; i++)
        usleep(1000);
    assert_int_equal(workpool_depth(hp), want);
}

/* A pool of one worker, held inside f->jobs[0] until the gate opens. */
static struct workpool *held_pool(struct fx *f, unsigned queue_cap, int64_t deadline_ms)
{
    f->hp = workpool_new(1, queue_cap, WORK_PRIO_NORMAL, deadline_ms, NULL);
    assert_non_null(f->hp);
    job_init(&f->jobs[0], &f->c, true);
    assert_true(workpool_reserve(f->hp));
    workpool_submit(f->hp, &f->jobs[0].job);
    wait_for(&f->c, &f->c.started, 1);
    return f->hp;
}

/* Reserve a place and submit f->jobs[i], a job that does not block. */
static struct tjob *submit_new(struct fx *f, int i)
{
    struct tjob *j = &f->jobs[i];
    job_init(j, &f->c, false);
    assert_true(workpool_reserve(f->hp));
    workpool_submit(f->hp, &j->job);
    return j;
}

/* Completed once, without running. */
static void assert_dropped(struct tjob *j)
{
    assert_int_equal(atomic_load(&j->complete_calls), 1);
    assert_false(atomic_load(&j->ran));
    assert_int_equal(atomic_load(&j->run_calls), 0);
}

static void test_jobs_run_and_complete(void **state)
{
    struct fx *f = *state;
    struct ctl *c = &f->c;
    f->hp = workpool_new(2, 8, WORK_PRIO_NORMAL, 5000, NULL);
    assert_non_null(f->hp);
    enum { N = 10 }; /* = 8 waiting + 2 running: every place */
    struct tjob *jobs = f->jobs;
    for (int i = 0; i < N; i++) {
        job_init(&jobs[i], c, i < 2); /* the first two hold both workers */
        assert_true(workpool_reserve(f->hp));
        workpool_submit(f->hp, &jobs[i].job);
    }
    /* Both workers are inside a job at once: two threads, not one. */
    wait_for(c, &c->started, 2);
    pthread_mutex_lock(&c->lock);
    int completed = c->completed;
    pthread_mutex_unlock(&c->lock);
    assert_int_equal(completed, 0);
    assert_int_equal(workpool_depth(f->hp), N);
    open_gate(c);
    wait_for(c, &c->completed, N);
    for (int i = 0; i < N; i++) {
        assert_int_equal(atomic_load(&jobs[i].run_calls), 1);
        assert_int_equal(atomic_load(&jobs[i].complete_calls), 1);
        assert_true(atomic_load(&jobs[i].ran));
        assert_true(jobs[i].job.enqueued_us > 0);
    }
    wait_depth(f->hp, 0);
    assert_int_equal(workpool_rejected(f->hp), 0);
    assert_int_equal(workpool_expired(f->hp), 0);
    workpool_free(NULL);
}

/* queue_flood: when every place is taken the next reservation fails at once
 * (the caller answers 503) instead of queueing without bound. */
static void test_queue_flood_reserve_fails_when_full(void **state)
{
    struct fx *f = *state;
    struct ctl *c = &f->c;
    f->hp = workpool_new(1, 2, WORK_PRIO_NORMAL, 5000, NULL);
    struct workpool *hp = f->hp;
    assert_non_null(hp);
    struct tjob *a = &f->jobs[0], *b = &f->jobs[1], *d = &f->jobs[2];
    job_init(a, c, true);
    job_init(b, c, false);
    job_init(d, c, false);
    assert_true(workpool_reserve(hp));
    workpool_submit(hp, &a->job);
    wait_for(c, &c->started, 1); /* the only worker is held */

    assert_true(workpool_reserve(hp)); /* b */
    assert_true(workpool_reserve(hp)); /* d */
    assert_int_equal(workpool_depth(hp), 3);
    int64_t t0 = util_mono_ms();
    assert_false(workpool_reserve(hp));
    assert_false(workpool_reserve(hp));
    assert_true(util_mono_ms() - t0 < 1000); /* refused at once, not after a wait */
    assert_int_equal(workpool_rejected(hp), 2);
    assert_int_equal(workpool_depth(hp), 3);

    /* A released place can be taken again. */
    workpool_release(hp);
    assert_int_equal(workpool_depth(hp), 2);
    assert_true(workpool_reserve(hp));
    assert_false(workpool_reserve(hp));
    assert_int_equal(workpool_rejected(hp), 3);

    workpool_submit(hp, &b->job);
    workpool_submit(hp, &d->job);
    open_gate(c);
    wait_for(c, &c->completed, 3);
    assert_true(atomic_load(&a->ran));
    assert_true(atomic_load(&b->ran));
    assert_true(atomic_load(&d->ran));
    wait_depth(hp, 0);
    assert_true(workpool_reserve(hp)); /* room again */
    workpool_release(hp);
    assert_int_equal(workpool_expired(hp), 0);
}

/* stale_job_runs_late: a job that waited past the deadline is answered
 * (complete with ran = false) without burning a hash on a client that has
 * given up. */
static void test_deadline_drops_stale_job(void **state)
{
    struct fx *f = *state;
    struct ctl *c = &f->c;
    struct workpool *hp = held_pool(f, 4, 100);
    struct tjob *a = &f->jobs[0], *b = submit_new(f, 1);
    usleep(300 * 1000); /* b waits three deadlines */
    open_gate(c);
    wait_for(c, &c->completed, 2);
    assert_true(atomic_load(&a->ran));
    assert_dropped(b);
    assert_int_equal(workpool_expired(hp), 1);

    /* A fresh job is not affected. */
    struct tjob *late = submit_new(f, 2);
    wait_for(c, &c->completed, 3);
    assert_true(atomic_load(&late->ran));
    assert_int_equal(workpool_expired(hp), 1);
    assert_int_equal(workpool_rejected(hp), 0);
    wait_depth(hp, 0);
}

struct opener {
    struct workpool *hp;
    struct ctl *ctl;
};

/* Open the gate once the pool refuses reservations for stopping (the queue
 * is not full, so a refusal means workpool_free has begun). */
static void *open_when_stopping(void *arg)
{
    struct opener *o = arg;
    for (int i = 0; i < 5000; i++) {
        if (!workpool_reserve(o->hp))
            break;
        workpool_release(o->hp);
        usleep(1000);
    }
    open_gate(o->ctl);
    return NULL;
}

static void test_free_completes_waiting_jobs_unrun(void **state)
{
    struct fx *f = *state;
    struct ctl *c = &f->c;
    struct workpool *hp = held_pool(f, 8, 60000);
    struct tjob *a = &f->jobs[0], *b = submit_new(f, 1), *d = submit_new(f, 2);

    struct opener o = {hp, c};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, open_when_stopping, &o), 0);
    f->hp = NULL;
    workpool_free(hp); /* returns once a has finished */
    pthread_join(th, NULL);

    assert_int_equal(atomic_load(&a->complete_calls), 1);
    assert_true(atomic_load(&a->ran));
    assert_dropped(b);
    assert_dropped(d);
    assert_int_equal(c->completed, 3);
}

/* shutdown_keeps_continuations: a posted continuation (the finish of a
 * hashed login) that waits when the pool stops still runs; fresh work
 * waiting beside it is dropped. */
static void test_stop_runs_posted_continuations(void **state)
{
    struct fx *f = *state;
    struct ctl *c = &f->c;
    struct workpool *hp = held_pool(f, 8, 60000);
    struct tjob *a = &f->jobs[0], *fresh = submit_new(f, 1), *cont = &f->jobs[2];
    job_init(cont, c, false);
    workpool_post(hp, &cont->job);

    struct opener o = {hp, c};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, open_when_stopping, &o), 0);
    workpool_stop(hp); /* returns once every queued job is completed */
    pthread_join(th, NULL);

    assert_true(atomic_load(&a->ran));
    assert_dropped(fresh);
    assert_int_equal(atomic_load(&cont->complete_calls), 1);
    assert_true(atomic_load(&cont->ran));
    assert_int_equal(atomic_load(&cont->run_calls), 1);
    assert_int_equal(workpool_depth(hp), 0);
    workpool_stop(hp); /* again: nothing happens */
}

static void *stop_pool(void *arg)
{
    workpool_stop(arg);
    return NULL;
}

/* shutdown_behind_slow_job: the stop answers the waiting jobs at once, on
 * its own thread, while every worker is still inside a job (a storage wait
 * of seconds); the running job finishes normally. */
static void test_stop_answers_waiting_jobs_while_workers_are_busy(void **state)
{
    struct fx *f = *state;
    struct ctl *c = &f->c;
    struct workpool *hp = held_pool(f, 8, 60000);
    struct tjob *a = &f->jobs[0], *b = submit_new(f, 1), *d = submit_new(f, 2);

    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, stop_pool, hp), 0);
    wait_for(c, &c->completed, 2); /* b and d, with a still held */
    assert_int_equal(atomic_load(&a->complete_calls), 0);
    assert_dropped(b);
    assert_dropped(d);
    wait_depth(hp, 1); /* a's place only (the others are given back after complete) */
    open_gate(c);
    pthread_join(th, NULL);
    assert_true(atomic_load(&a->ran));
    assert_int_equal(workpool_depth(hp), 0);
    assert_int_equal(workpool_expired(hp), 2);
}

/* stopped_pool_strands_nothing: a reservation taken just before the stop
 * and submitted after it, or a continuation posted to a stopped pool, has
 * no worker left to take it: it is completed as dropped before submit or
 * post returns (else its suspended connection would never be resumed). A
 * stopped pool refuses reservations at once. */
static void test_stopped_pool_completes_late_jobs_at_once(void **state)
{
    struct fx *f = *state;
    struct ctl *c = &f->c;
    f->hp = workpool_new(2, 8, WORK_PRIO_NORMAL, 60000, NULL);
    struct workpool *hp = f->hp;
    assert_non_null(hp);
    struct tjob *late = &f->jobs[0], *posted = &f->jobs[1];
    job_init(late, c, false);
    job_init(posted, c, false);
    assert_true(workpool_reserve(hp));
    workpool_stop(hp);
    assert_int_equal(workpool_depth(hp), 1); /* the reservation is still out */

    workpool_submit(hp, &late->job);
    assert_dropped(late);

    workpool_post(hp, &posted->job);
    assert_dropped(posted);
    assert_int_equal(workpool_depth(hp), 0);
    assert_int_equal(workpool_expired(hp), 2);

    assert_false(workpool_reserve(hp));
    assert_int_equal(workpool_rejected(hp), 1);
    assert_int_equal(workpool_depth(hp), 0);
}

static void test_low_priority_workers_still_run(void **state)
{
    struct fx *f = *state;
    struct ctl *c = &f->c;
    static const enum work_priority prios[] = {WORK_PRIO_IDLE, WORK_PRIO_BATCH};
    for (int i = 0; i < 2; i++) {
        f->hp = workpool_new(1, 1, prios[i], 5000, NULL);
        assert_non_null(f->hp);
        struct tjob *j = &f->jobs[i];
        job_init(j, c, false);
        assert_true(workpool_reserve(f->hp));
        workpool_submit(f->hp, &j->job);
        wait_for(c, &c->completed, i + 1);
        assert_true(atomic_load(&j->ran));
        workpool_free(f->hp);
        f->hp = NULL;
    }
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, fx_setup, fx_teardown)
    const struct CMUnitTest tests[] = {
        T(test_jobs_run_and_complete),
        T(test_queue_flood_reserve_fails_when_full),
        T(test_deadline_drops_stale_job),
        T(test_free_completes_waiting_jobs_unrun),
        T(test_stop_runs_posted_continuations),
        T(test_stop_answers_waiting_jobs_while_workers_are_busy),
        T(test_stopped_pool_completes_late_jobs_at_once),
        T(test_low_priority_workers_still_run),
    };
#undef T
    return cmocka_run_group_tests_name("core_workpool", tests, NULL, NULL);
}
