/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Implementation of keyring.h. Private keys are kept in storage as PKCS#8
 * PEM and in memory as jwtd keys (libjwtd); every kid is the RFC 7638
 * thumbprint of its public key and is checked against it on load. The JWKS
 * document is built once per ring change, not per request.
 */
#include "core/keyring.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "base/log.h"
#include "base/util.h"
#include "lib/jwtd_internal.h"

/* One immutable state of the ring; replaced whole on change. Readers hold
 * a reference while they use it, so the lock guards only the pointer. */
struct ring {
    atomic_int refs;
    jwtd_keyset *set;   /* every key that may verify */
    jwtd_key *signing;  /* the current key (also in set) */
    char *jwks;
    size_t jwks_len;
    unsigned algs;
    char *fingerprint;  /* "kid:state;" list, to notice changes cheaply */
};

struct keyring {
    const struct config *cfg;
    struct store *store;
    pthread_rwlock_t lock;
    struct ring *ring;
    /* Written under the exclusive lock, read without it on the hot path
     * (the verify cache asks for it on every request). */
    _Atomic uint64_t generation;
    pthread_mutex_t reload_lock; /* one reload at a time */
    /* Set by keyring_start: a server's ring, which signs. An operator
     * command's ring only reads and rotates, and has nothing to warn
     * about when the configured algorithm is not the current key's. */
    bool signs;
};

static void ring_unref(struct ring *r)
{
    if (!r || atomic_fetch_sub(&r->refs, 1) != 1)
        return;
    jwtd_keyset_free(r->set);
    jwtd_key_free(r->signing);
    free(r->jwks);
    free(r->fingerprint);
    free(r);
}

int64_t keyring_retire_window(const struct config *cfg)
{
    /* Tokens signed just before retirement live access_ttl more, plus the
     * leeway verifiers grant, plus a minute for clocks and caches. */
    return cfg->access_ttl + cfg->leeway + 60;
}

struct keyring *keyring_new(const struct config *cfg, struct store *store)
{
    struct keyring *kr = calloc(1, sizeof *kr);
    if (!kr)
        return NULL;
    kr->cfg = cfg;
    kr->store = store;
    pthread_rwlock_init(&kr->lock, NULL);
    pthread_mutex_init(&kr->reload_lock, NULL);
    return kr;
}

void keyring_free(struct keyring *kr)
{
    if (!kr)
        return;
    ring_unref(kr->ring);
    pthread_rwlock_destroy(&kr->lock);
    pthread_mutex_destroy(&kr->reload_lock);
    free(kr);
}

/* A reference on the ring in use, or NULL; release with ring_unref. */
static struct ring *ring_get(struct keyring *kr)
{
    pthread_rwlock_rdlock(&kr->lock);
    struct ring *r = kr->ring;
    if (r)
        atomic_fetch_add(&r->refs, 1);
    pthread_rwlock_unlock(&kr->lock);
    return r;
}

/* Install a new ring (takes ownership of the caller's reference). */
static void ring_swap(struct keyring *kr, struct ring *r)
{
    pthread_rwlock_wrlock(&kr->lock);
    struct ring *old = kr->ring;
    kr->ring = r;
    kr->generation++;
    pthread_rwlock_unlock(&kr->lock);
    ring_unref(old);
}

static bool start_hs256(struct keyring *kr, char *err, size_t errlen)
{
    /* The kid names the secret without revealing anything useful about it:
     * a truncated hash under a fixed label. */
    unsigned char digest[32];
    unsigned int dlen = 0;
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    bool ok = md && EVP_DigestInit_ex(md, EVP_sha256(), NULL) == 1 &&
              EVP_DigestUpdate(md, "jwtd-hs256-kid:", 15) == 1 &&
              EVP_DigestUpdate(md, kr->cfg->jwt_secret, kr->cfg->jwt_secret_len) == 1 &&
              EVP_DigestFinal_ex(md, digest, &dlen) == 1;
    EVP_MD_CTX_free(md);
    char kid[32];
    if (!ok || jwtd__b64url_encode(digest, 12, kid, sizeof kid) == 0) {
        snprintf(err, errlen, "cannot derive the HS256 key id");
        return false;
    }
    struct ring *r = calloc(1, sizeof *r);
    if (r)
        atomic_init(&r->refs, 1);
    jwtd_key *key = NULL;
    if (!r || jwtd_key_new_hmac(kid, kr->cfg->jwt_secret, kr->cfg->jwt_secret_len, &key) != JWTD_OK ||
        jwtd_keyset_new(&r->set) != JWTD_OK || jwtd_keyset_add(r->set, key) != JWTD_OK ||
        !(r->jwks = strdup("{\"keys\":[]}")) || !(r->fingerprint = strdup(kid))) {
        jwtd_key_free(key);
        ring_unref(r);
        snprintf(err, errlen, "JWTD_JWT_SECRET: cannot build the HS256 key");
        return false;
    }
    r->signing = key;
    r->jwks_len = strlen(r->jwks);
    r->algs = JWTD_ALG_HS256;
    ring_swap(kr, r);
    return true;
}

static EVP_PKEY *generate_pkey(jwtd_alg alg)
{
    switch (alg) {
    case JWTD_ALG_ES256:
        return EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    case JWTD_ALG_EDDSA:
        return EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    case JWTD_ALG_RS256:
        return EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
    default:
        return NULL;
    }
}

static char *pkey_to_pem(EVP_PKEY *pkey)
{
    BIO *bio = BIO_new(BIO_s_mem());
    char *out = NULL;
    if (bio && PEM_write_bio_PrivateKey(bio, pkey, NULL, NULL, 0, NULL, NULL) == 1) {
        char *data;
        long n = BIO_get_mem_data(bio, &data);
        if (n > 0 && (out = malloc((size_t)n + 1))) {
            memcpy(out, data, (size_t)n);
            out[n] = '\0';
        }
    }
    BIO_free_all(bio); /* BIO_s_mem clears its buffer on free */
    return out;
}

/* A new key of alg as a store row (private_pem heap) in `state`. */
static bool make_key(jwtd_alg alg, enum key_state state, int64_t now, int64_t activate_at,
                     struct store_key *out)
{
    EVP_PKEY *pkey = generate_pkey(alg);
    jwtd_key *k = NULL;
    bool ok = false;
    memset(out, 0, sizeof *out);
    if (!pkey || jwtd__key_from_pkey(pkey, alg, NULL, &k) != JWTD_OK)
        goto done;
    snprintf(out->kid, sizeof out->kid, "%s", jwtd_key_kid(k));
    snprintf(out->alg, sizeof out->alg, "%s", jwtd_alg_name(alg));
    out->state = state;
    out->created_at = now;
    out->activate_at = activate_at;
    out->private_pem = pkey_to_pem(pkey);
    ok = out->private_pem != NULL;
done:
    jwtd_key_free(k);
    EVP_PKEY_free(pkey);
    return ok;
}

/* ---- loading ---- */

struct load_ctx {
    const struct config *cfg;
    struct ring *r;
    json_t *jwks_keys;
    struct buf fp;
    int64_t now;
    bool failed;
    int n_current;
    jwtd_key *other_current; /* the newest current key of another algorithm */
};

/* Whether a stored key belongs in the ring at `now`, and its algorithm. */
static jwtd_alg ring_member(const struct store_key *k, int64_t now)
{
    jwtd_alg alg = jwtd_alg_from_name(k->alg);
    if (!alg || alg == JWTD_ALG_HS256)
        return 0;
    /* A retired key past its removal time is on its way out: not trusted. */
    if (k->state == KEY_RETIRED && k->remove_at && k->remove_at <= now)
        return 0;
    return alg;
}

/* The ring's fingerprint: one "kid:state:remove_at;" per member, whether or
 * not its key loads (an unusable key is reported once per change of the
 * ring, not at every poll). */
static void fingerprint_add(struct buf *fp, const struct store_key *k)
{
    buf_printf(fp, "%s:%d:%lld;", k->kid, (int)k->state, (long long)k->remove_at);
}

struct fp_ctx {
    struct buf fp;
    int64_t now;
};

static void fingerprint_one(void *vctx, const struct store_key *k)
{
    struct fp_ctx *ctx = vctx;
    if (ring_member(k, ctx->now))
        fingerprint_add(&ctx->fp, k);
}

static void load_one(void *vctx, const struct store_key *k)
{
    struct load_ctx *ctx = vctx;
    if (ctx->failed)
        return;
    jwtd_alg alg = ring_member(k, ctx->now);
    if (!alg)
        return;
    fingerprint_add(&ctx->fp, k);
    BIO *bio = BIO_new_mem_buf(k->private_pem, -1);
    EVP_PKEY *pkey = bio ? PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL) : NULL;
    BIO_free(bio);
    jwtd_key *key = NULL;
    json_t *jwk = NULL;
    if (!pkey || jwtd__key_from_pkey(pkey, alg, NULL, &key) != JWTD_OK) {
        LOG(LOG_ERROR, "key_unusable", LF_S("kid", k->kid), LF_S("reason", "cannot load private key"));
        goto done;
    }
    if (strcmp(jwtd_key_kid(key), k->kid) != 0) {
        LOG(LOG_ERROR, "key_unusable", LF_S("kid", k->kid), LF_S("reason", "kid is not the key thumbprint"));
        goto done;
    }
    if (jwtd_keyset_add(ctx->r->set, key) != JWTD_OK ||
        jwtd__key_public_jwk(key, &jwk) != JWTD_OK) {
        ctx->failed = true;
        goto done;
    }
    /* json_array_append_new takes the reference whether or not it fails. */
    int appended = json_array_append_new(ctx->jwks_keys, jwk);
    jwk = NULL;
    if (appended != 0) {
        ctx->failed = true;
        goto done;
    }
    ctx->r->algs |= alg;
    if (k->state == KEY_CURRENT && alg == ctx->cfg->alg) {
        ctx->n_current++;
        /* Two current keys can only exist for a moment during a race of
         * instances; sign with the newest (the list is in creation order). */
        jwtd_key_free(ctx->r->signing);
        ctx->r->signing = jwtd__key_ref(key);
    } else if (k->state == KEY_CURRENT) {
        jwtd_key_free(ctx->other_current);
        ctx->other_current = jwtd__key_ref(key);
    }
done:
    json_decref(jwk);
    jwtd_key_free(key);
    EVP_PKEY_free(pkey);
}

bool keyring_reload(struct keyring *kr)
{
    if (kr->cfg->alg == JWTD_ALG_HS256)
        return true;
    pthread_mutex_lock(&kr->reload_lock);
    int64_t now = util_now();
    /* Unchanged since the last load? Then nothing is decoded: a poll costs
     * one listing, not a PEM parse per key (OpenSSL 3's decoder takes
     * about a millisecond each). */
    struct fp_ctx quick = {.now = now};
    buf_init(&quick.fp, 1 << 20);
    if (store_keys_list(kr->store, fingerprint_one, &quick) == STORE_OK &&
        buf_appends(&quick.fp, "")) {
        struct ring *cur = ring_get(kr);
        bool same = cur && cur->fingerprint && strcmp(cur->fingerprint, quick.fp.data) == 0;
        ring_unref(cur);
        if (same) {
            buf_free(&quick.fp);
            pthread_mutex_unlock(&kr->reload_lock);
            return true;
        }
    }
    buf_free(&quick.fp);
    struct load_ctx ctx = {.cfg = kr->cfg, .now = now};
    buf_init(&ctx.fp, 1 << 20);
    ctx.r = calloc(1, sizeof *ctx.r);
    if (ctx.r)
        atomic_init(&ctx.r->refs, 1);
    ctx.jwks_keys = json_array();
    bool ok = false;
    if (!ctx.r || !ctx.jwks_keys || jwtd_keyset_new(&ctx.r->set) != JWTD_OK)
        goto done;
    enum store_rc rc = store_keys_list(kr->store, load_one, &ctx);
    if (rc != STORE_OK || ctx.failed || !buf_appends(&ctx.fp, ""))
        goto done;
    /* No current key of this instance's algorithm, but one of another: an
     * instance restarted with a new JWTD_JWT_ALG promoted its published
     * key (a rolling switch). Sign with that key - published, trusted by
     * every verifier - rather than mint one nobody has seen. */
    if (!ctx.r->signing && ctx.other_current) {
        ctx.r->signing = ctx.other_current;
        ctx.other_current = NULL;
        if (kr->signs)
            LOG(LOG_WARN, "signing_with_another_algorithm",
                LF_S("alg", jwtd_alg_name(jwtd_key_alg(ctx.r->signing))),
                LF_S("configured", jwtd_alg_name(kr->cfg->alg)),
                LF_S("advice", "another instance switched JWTD_JWT_ALG; set it here too"));
    }
    /* Unchanged? Keep the ring (and the verify caches keyed on it). */
    struct ring *cur = ring_get(kr);
    bool same = cur && cur->fingerprint && strcmp(cur->fingerprint, ctx.fp.data) == 0;
    bool first = cur == NULL;
    ring_unref(cur);
    if (same) {
        ok = true;
        goto done;
    }
    json_t *doc = json_pack("{s:O}", "keys", ctx.jwks_keys);
    ctx.r->jwks = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
    json_decref(doc);
    if (!ctx.r->jwks)
        goto done;
    ctx.r->jwks_len = strlen(ctx.r->jwks);
    ctx.r->fingerprint = buf_steal(&ctx.fp);
    ring_swap(kr, ctx.r);
    ctx.r = NULL;
    ok = true;
    /* A change is news; the first load (every command that reads keys,
     * every start) is not. */
    LOG(first ? LOG_DEBUG : LOG_INFO, "keyring_loaded", LF_S("keys", first ? "loaded" : "changed"));
done:
    jwtd_key_free(ctx.other_current);
    json_decref(ctx.jwks_keys);
    ring_unref(ctx.r);
    buf_free(&ctx.fp);
    pthread_mutex_unlock(&kr->reload_lock);
    return ok;
}

/* ---- schedule ---- */

struct key_list {
    struct store_key *k;
    size_t n, cap;
    bool failed;
};

static void collect(void *vctx, const struct store_key *k)
{
    struct key_list *l = vctx;
    if (l->failed)
        return;
    if (l->n == l->cap) {
        size_t ncap = l->cap ? l->cap * 2 : 8;
        struct store_key *nk = realloc(l->k, ncap * sizeof *nk);
        if (!nk) {
            l->failed = true;
            return;
        }
        l->k = nk;
        l->cap = ncap;
    }
    l->k[l->n] = *k;
    l->k[l->n].private_pem = NULL; /* the schedule never needs private keys */
    l->n++;
}

static void key_list_free(struct key_list *l)
{
    free(l->k);
    memset(l, 0, sizeof *l);
}

static bool list_keys(struct keyring *kr, struct key_list *l)
{
    memset(l, 0, sizeof *l);
    enum store_rc rc = store_keys_list(kr->store, collect, l);
    if (rc != STORE_OK || l->failed) {
        key_list_free(l);
        return false;
    }
    return true;
}

static const struct store_key *find_state(const struct key_list *l, const char *alg,
                                          enum key_state state)
{
    const struct store_key *best = NULL;
    for (size_t i = 0; i < l->n; i++)
        if (l->k[i].state == state && (!alg || strcmp(l->k[i].alg, alg) == 0))
            if (!best || l->k[i].activate_at > best->activate_at)
                best = &l->k[i];
    return best;
}

static bool insert_generated(struct keyring *kr, enum key_state state, int64_t now,
                             int64_t activate_at, char kid_out[KID_MAX + 1], bool *ret_inserted)
{
    struct store_key k;
    if (!make_key(kr->cfg->alg, state, now, activate_at, &k))
        return false;
    bool inserted = false;
    enum store_rc rc = store_key_insert_unless(kr->store, &k, &inserted);
    if (rc == STORE_OK && inserted) {
        if (kid_out)
            snprintf(kid_out, KID_MAX + 1, "%s", k.kid);
        LOG(LOG_INFO, "key_created", LF_S("kid", k.kid), LF_S("alg", k.alg), LF_S("state", store_key_state_name(state)));
    }
    store_key_clear(&k);
    if (ret_inserted)
        *ret_inserted = inserted;
    return rc == STORE_OK;
}

static bool promote(struct keyring *kr, const char *next_kid, const char *current_kid,
                    int64_t now)
{
    enum store_rc rc = store_key_promote(kr->store, next_kid, current_kid, now,
                                  now + keyring_retire_window(kr->cfg));
    if (rc == STORE_OK)
        LOG(LOG_INFO, "key_promoted", LF_S("kid", next_kid), LF_S("retired", current_kid ? current_kid : ""));
    /* NOT_FOUND: another instance promoted first; the reload shows its work. */
    return rc == STORE_OK || rc == STORE_NOT_FOUND;
}

bool keyring_start(struct keyring *kr, char *err, size_t errlen)
{
    kr->signs = true;
    if (kr->cfg->alg == JWTD_ALG_HS256)
        return start_hs256(kr, err, errlen);
    int64_t now = util_now();
    struct key_list l;
    if (!list_keys(kr, &l)) {
        snprintf(err, errlen, "cannot read signing keys from storage");
        return false;
    }
    const char *alg = jwtd_alg_name(kr->cfg->alg);
    /* The current key of another algorithm stops signing when the operator
     * changes JWTD_JWT_ALG; it stays published until its tokens expired. A
     * key of another algorithm published ahead (`jwtd keys rotate --alg`)
     * is waiting for that change: it stays as it is. */
    for (size_t i = 0; i < l.n; i++)
        if (l.k[i].state == KEY_CURRENT && strcmp(l.k[i].alg, alg) != 0) {
            enum store_rc rc = store_key_retire(kr->store, l.k[i].kid, now,
                                                now + keyring_retire_window(kr->cfg));
            if (rc == STORE_OK)
                LOG(LOG_INFO, "key_retired", LF_S("kid", l.k[i].kid),
                    LF_S("reason", "algorithm changed"));
            else /* tried again at the next start-up */
                LOG(LOG_WARN, "key_retire_failed", LF_S("kid", l.k[i].kid),
                    LF_S("reason", "algorithm changed"));
        }
    bool have_current = find_state(&l, alg, KEY_CURRENT) != NULL;
    /* A key of the new algorithm published ahead (`jwtd keys rotate --alg`)
     * takes over at once: verifiers have had it in the JWKS. */
    const struct store_key *ahead = have_current ? NULL : find_state(&l, alg, KEY_NEXT);
    char ahead_kid[KID_MAX + 1] = "";
    if (ahead)
        snprintf(ahead_kid, sizeof ahead_kid, "%s", ahead->kid);
    bool first_start = l.n == 0;
    key_list_free(&l);
    if (ahead_kid[0] && promote(kr, ahead_kid, NULL, now)) {
        have_current = true;
    } else if (!have_current && !first_start) {
        LOG(LOG_WARN, "key_not_published_ahead", LF_S("alg", alg),
            LF_S("advice", "a new signing key signs at once: verifiers that cache the JWKS may "
                           "refuse its tokens until they fetch it (jwtd keys rotate --alg "
                           "publishes one ahead)"));
    }
    if (!have_current && !insert_generated(kr, KEY_CURRENT, now, now, NULL, NULL)) {
        snprintf(err, errlen, "cannot create a %s signing key in storage", alg);
        return false;
    }
    if (!keyring_reload(kr) || !keyring_ready(kr)) {
        snprintf(err, errlen, "cannot load the %s signing key from storage", alg);
        return false;
    }
    return true;
}

bool keyring_rotate(struct keyring *kr, bool immediate, char kid_out[KID_MAX + 1], char *err,
                    size_t errlen)
{
    if (kr->cfg->alg == JWTD_ALG_HS256) {
        snprintf(err, errlen, "HS256 uses JWTD_JWT_SECRET: rotate it by changing the setting");
        return false;
    }
    int64_t now = util_now();
    const char *alg = jwtd_alg_name(kr->cfg->alg);
    struct key_list l;
    if (!list_keys(kr, &l)) {
        snprintf(err, errlen, "cannot read signing keys from storage");
        return false;
    }
    bool ok = true;
    const struct store_key *next = find_state(&l, alg, KEY_NEXT);
    char next_kid[KID_MAX + 1] = "";
    if (next) {
        snprintf(next_kid, sizeof next_kid, "%s", next->kid);
    } else {
        bool inserted = false;
        ok = insert_generated(kr, KEY_NEXT, now, now + kr->cfg->key_publish_ahead, next_kid,
                              &inserted);
        if (ok && !inserted) {
            /* Another instance made one a moment ago: use it. */
            key_list_free(&l);
            if (!list_keys(kr, &l) || !(next = find_state(&l, alg, KEY_NEXT))) {
                snprintf(err, errlen, "cannot read signing keys from storage");
                key_list_free(&l);
                return false;
            }
            snprintf(next_kid, sizeof next_kid, "%s", next->kid);
        }
    }
    if (ok && immediate) {
        const struct store_key *cur = find_state(&l, alg, KEY_CURRENT);
        ok = promote(kr, next_kid, cur ? cur->kid : NULL, now);
    }
    key_list_free(&l);
    if (!ok) {
        snprintf(err, errlen, "cannot store the new key");
        return false;
    }
    snprintf(kid_out, KID_MAX + 1, "%s", next_kid);
    keyring_reload(kr);
    return true;
}

bool keyring_retire(struct keyring *kr, const char *kid, bool purge, bool at_once,
                    char ret_next[KID_MAX + 1], char *err, size_t errlen)
{
    ret_next[0] = '\0';
    int64_t now = util_now();
    int64_t remove_at = purge ? now : now + keyring_retire_window(kr->cfg);
    struct key_list l;
    if (!list_keys(kr, &l)) {
        snprintf(err, errlen, "cannot read signing keys from storage");
        return false;
    }
    const struct store_key *k = NULL;
    for (size_t i = 0; i < l.n; i++)
        if (strcmp(l.k[i].kid, kid) == 0)
            k = &l.k[i];
    bool ok = false;
    if (!k) {
        snprintf(err, errlen, "no key with kid %s", kid);
    } else if (k->state == KEY_RETIRED && !purge) {
        snprintf(err, errlen, "key %s is already retired", kid);
    } else if (k->state == KEY_RETIRED) {
        /* Already retired: bring its removal forward to now. */
        ok = store_key_retire_purge(kr->store, kid, now) == STORE_OK;
        if (!ok)
            snprintf(err, errlen, "cannot purge %s", kid);
    } else if (k->state == KEY_CURRENT) {
        const struct store_key *next = find_state(&l, k->alg, KEY_NEXT);
        if (!next)
            snprintf(err, errlen,
                     "key %s is the current signing key: run `jwtd keys rotate` first (its new "
                     "key takes over once published ahead), or `jwtd keys rotate --now` to "
                     "switch at once",
                     kid);
        else if (next->activate_at > now && !at_once && !purge)
            snprintf(err, errlen,
                     "key %s is the current signing key, and the next key %s is published "
                     "ahead until %lld s from now (then it takes over by itself): add --now to "
                     "switch at once (verifiers that fetched the JWKS before %s was published "
                     "refuse its tokens until they fetch it again)",
                     kid, next->kid, (long long)(next->activate_at - now), next->kid);
        else if (!(ok = store_key_promote(kr->store, next->kid, k->kid, now, remove_at) ==
                        STORE_OK))
            snprintf(err, errlen, "cannot promote %s", next->kid);
        else
            snprintf(ret_next, KID_MAX + 1, "%s", next->kid);
    } else {
        ok = store_key_retire(kr->store, kid, now, remove_at) == STORE_OK;
        if (!ok)
            snprintf(err, errlen, "cannot retire %s", kid);
    }
    key_list_free(&l);
    if (ok)
        keyring_reload(kr);
    return ok;
}

void keyring_maintain(struct keyring *kr, int64_t now)
{
    if (kr->cfg->alg == JWTD_ALG_HS256)
        return;
    const char *alg = jwtd_alg_name(kr->cfg->alg);
    struct key_list l;
    if (!list_keys(kr, &l))
        return;
    const struct store_key *cur = find_state(&l, alg, KEY_CURRENT);
    const struct store_key *next = find_state(&l, alg, KEY_NEXT);
    if (next && next->activate_at <= now) {
        promote(kr, next->kid, cur ? cur->kid : NULL, now);
    } else if (!next && cur && kr->cfg->key_rotation > 0) {
        int64_t due = cur->activate_at + kr->cfg->key_rotation;
        if (now >= due - kr->cfg->key_publish_ahead)
            insert_generated(kr, KEY_NEXT, now, due > now ? due : now, NULL, NULL);
    } else if (!cur && !find_state(&l, NULL, KEY_CURRENT)) {
        /* (With another algorithm's key current, keyring_reload signs with
         * it: a rolling switch of JWTD_JWT_ALG mints no unpublished key.) */
        insert_generated(kr, KEY_CURRENT, now, now, NULL, NULL);
    }
    key_list_free(&l);
    store_keys_remove_expired(kr->store, now);
    keyring_reload(kr);
}

/* ---- readers ---- */

jwtd_err keyring_sign(struct keyring *kr, const char *payload, size_t len, char **ret_token)
{
    struct ring *r = ring_get(kr);
    jwtd_err e = r && r->signing ? jwtd__sign_compact(r->signing, payload, len, ret_token)
                                 : JWTD_ERR_KID;
    ring_unref(r);
    return e;
}

jwtd_err keyring_verify(struct keyring *kr, const jwtd_verifier *v, const char *token, size_t len,
                        int64_t now, jwtd_claims **ret_claims, uint64_t *ret_generation)
{
    pthread_rwlock_rdlock(&kr->lock);
    struct ring *r = kr->ring;
    uint64_t gen = kr->generation;
    if (r)
        atomic_fetch_add(&r->refs, 1);
    pthread_rwlock_unlock(&kr->lock);
    jwtd_err e = r ? jwtd_verify(v, r->set, token, len, now, ret_claims) : JWTD_ERR_KID;
    if (e == JWTD_OK && ret_generation)
        *ret_generation = gen;
    ring_unref(r);
    return e;
}

uint64_t keyring_generation(struct keyring *kr)
{
    return atomic_load_explicit(&kr->generation, memory_order_acquire);
}

char *keyring_jwks(struct keyring *kr, size_t *ret_len)
{
    struct ring *r = ring_get(kr);
    char *copy = NULL;
    if (r && (copy = malloc(r->jwks_len + 1))) {
        memcpy(copy, r->jwks, r->jwks_len + 1);
        *ret_len = r->jwks_len;
    }
    ring_unref(r);
    return copy;
}

bool keyring_ready(struct keyring *kr)
{
    struct ring *r = ring_get(kr);
    bool ok = r && r->signing;
    ring_unref(r);
    return ok;
}

unsigned keyring_algs(struct keyring *kr)
{
    struct ring *r = ring_get(kr);
    unsigned a = r ? r->algs : 0;
    ring_unref(r);
    return a;
}
