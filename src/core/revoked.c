/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Implementation of revoked.h: a chained hash table of 16-byte session ids
 * under a reader-writer lock, with an atomic size so that the common case
 * (nothing revoked lately) costs one atomic load.
 */
#include "core/revoked.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"

#define N_BUCKETS 4096

struct entry {
    uint8_t sid[16];
    int64_t expires_ms;
    struct entry *next;
};

struct revoked_set {
    pthread_rwlock_t lock;
    atomic_size_t size;
    struct entry *buckets[N_BUCKETS];
};

static size_t bucket_of(const uint8_t sid[16])
{
    /* UUIDv7 starts with a timestamp: hash the random tail. */
    uint32_t h = 2166136261u;
    for (int i = 8; i < 16; i++)
        h = (h ^ sid[i]) * 16777619u;
    return h % N_BUCKETS;
}

struct revoked_set *revoked_new(void)
{
    struct revoked_set *rs = calloc(1, sizeof *rs);
    if (!rs)
        return NULL;
    pthread_rwlock_init(&rs->lock, NULL);
    atomic_init(&rs->size, 0);
    return rs;
}

void revoked_free(struct revoked_set *rs)
{
    if (!rs)
        return;
    for (size_t i = 0; i < N_BUCKETS; i++) {
        struct entry *e = rs->buckets[i];
        while (e) {
            struct entry *n = e->next;
            free(e);
            e = n;
        }
    }
    pthread_rwlock_destroy(&rs->lock);
    free(rs);
}

bool revoked_add(struct revoked_set *rs, const char *sid, int64_t expires_ms)
{
    uint8_t b[16];
    if (!util_uuid_to_bytes(sid, b))
        return false;
    size_t k = bucket_of(b);
    pthread_rwlock_wrlock(&rs->lock);
    struct entry *e = rs->buckets[k];
    while (e && memcmp(e->sid, b, 16) != 0)
        e = e->next;
    bool ok = true;
    if (e) {
        if (expires_ms > e->expires_ms)
            e->expires_ms = expires_ms;
    } else if ((e = malloc(sizeof *e))) {
        memcpy(e->sid, b, 16);
        e->expires_ms = expires_ms;
        e->next = rs->buckets[k];
        rs->buckets[k] = e;
        atomic_fetch_add(&rs->size, 1);
    } else {
        ok = false;
    }
    pthread_rwlock_unlock(&rs->lock);
    return ok;
}

bool revoked_contains(struct revoked_set *rs, const char *sid)
{
    if (atomic_load_explicit(&rs->size, memory_order_acquire) == 0)
        return false;
    uint8_t b[16];
    if (!util_uuid_to_bytes(sid, b))
        return false;
    size_t k = bucket_of(b);
    pthread_rwlock_rdlock(&rs->lock);
    const struct entry *e = rs->buckets[k];
    while (e && memcmp(e->sid, b, 16) != 0)
        e = e->next;
    bool found = e != NULL;
    pthread_rwlock_unlock(&rs->lock);
    return found;
}

void revoked_prune(struct revoked_set *rs, int64_t now_ms)
{
    if (atomic_load(&rs->size) == 0)
        return;
    pthread_rwlock_wrlock(&rs->lock);
    for (size_t i = 0; i < N_BUCKETS; i++) {
        struct entry **pp = &rs->buckets[i];
        while (*pp) {
            struct entry *e = *pp;
            if (e->expires_ms < now_ms) {
                *pp = e->next;
                free(e);
                atomic_fetch_sub(&rs->size, 1);
            } else {
                pp = &e->next;
            }
        }
    }
    pthread_rwlock_unlock(&rs->lock);
}

size_t revoked_size(struct revoked_set *rs)
{
    return atomic_load(&rs->size);
}
