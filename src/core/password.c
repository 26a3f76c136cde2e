/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Implementation of password.h on libargon2 (argon2id), libcrypt (bcrypt
 * verification only) and the compiled-in blocklist (core/blocklist.c). Secrets are wiped
 * from every buffer this file allocates; nothing is logged.
 *
 * argon2id runs through argon2_ctx() with jwtd's own PHC string encoding and
 * decoding (the format of libargon2's argon2id_hash_encoded(), checked
 * against it by the unit tests) so that the memory of the hash comes from
 * the calling thread's work area: mapped once, kept between hashes, wiped by
 * libargon2 after each. A hash thus costs no fresh mapping (19 MiB, about
 * 5,000 page faults) and no unmapping (TLB shootdowns on the CPUs serving
 * requests) whatever the allocator does with large blocks.
 */
#include "core/password.h"

#include <crypt.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>

#include <argon2.h>
#include <openssl/crypto.h>

#include "base/util.h"
#include "core/blocklist.h"
#include "core/weakpattern.h"

#define SALT_LEN 16
#define TAG_LEN 32

/* ---- the work area of a hashing thread ---- */

/* Largest area a thread keeps between hashes; a bigger one is mapped for
 * its hash only. (argon2_memory allows up to 4 GiB: kept areas are what the
 * hashing threads use anyway, hash_workers x argon2_memory, only not given
 * back between hashes.) */
#define AREA_KEEP_MAX ((size_t)1 << 30)

struct work_area {
    uint8_t *mem;
    size_t len;
};

static pthread_key_t area_key;
static bool area_key_ok;
static pthread_once_t area_once = PTHREAD_ONCE_INIT;

static void area_release(void *p)
{
    struct work_area *a = p;
    if (a->mem)
        munmap(a->mem, a->len);
    free(a);
}

static void area_key_init(void)
{
    area_key_ok = pthread_key_create(&area_key, area_release) == 0;
}

/* The calling thread's area record (created empty), NULL without memory. */
static struct work_area *area_get(void)
{
    pthread_once(&area_once, area_key_init);
    if (!area_key_ok)
        return NULL;
    struct work_area *a = pthread_getspecific(area_key);
    if (!a) {
        a = calloc(1, sizeof *a);
        if (a && pthread_setspecific(area_key, a) != 0) {
            free(a);
            a = NULL;
        }
    }
    return a;
}

static uint8_t *map_area(size_t bytes)
{
    void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return NULL;
#ifdef MADV_DONTDUMP
    (void)madvise(p, bytes, MADV_DONTDUMP); /* no password-derived blocks in a core file */
#endif
    return p;
}

/* libargon2's allocate_cbk: ignores the return value, reads *memory. The
 * area kept is the size of the thread's last hash (the configured cost, in
 * practice): a hash of another size (a stored hash made with older
 * parameters) replaces it, so one large imported hash does not stay
 * resident. */
static int area_alloc(uint8_t **memory, size_t bytes)
{
    struct work_area *a = area_get();
    if (a && a->mem && a->len == bytes) {
        *memory = a->mem;
        return ARGON2_OK;
    }
    *memory = map_area(bytes);
    if (!*memory)
        return ARGON2_MEMORY_ALLOCATION_ERROR;
    if (a && bytes <= AREA_KEEP_MAX) {
        if (a->mem)
            munmap(a->mem, a->len);
        a->mem = *memory;
        a->len = bytes;
    }
    return ARGON2_OK;
}

/* libargon2's free_cbk, called after it wiped the memory. */
static void area_free(uint8_t *memory, size_t bytes)
{
    struct work_area *a = area_get();
    if (a && memory == a->mem)
        return; /* kept for the next hash */
    munmap(memory, bytes);
}

void password_release_work_area(void)
{
    pthread_once(&area_once, area_key_init);
    struct work_area *a = area_key_ok ? pthread_getspecific(area_key) : NULL;
    if (a && a->mem) {
        munmap(a->mem, a->len);
        a->mem = NULL;
        a->len = 0;
    }
}

/* ---- PHC strings: $argon2id$v=19$m=M,t=T,p=P$<salt>$<tag> ---- */

#define PHC_PREFIX "$argon2id$v=19$m="
#define PHC_MAX_BYTES 512 /* longest salt or tag read from a stored hash */

static const char B64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* Standard base64 without padding, as libargon2 writes it. */
static size_t b64_encode(char *out, const uint8_t *in, size_t n)
{
    size_t o = 0;
    uint32_t acc = 0;
    unsigned bits = 0;
    for (size_t i = 0; i < n; i++) {
        acc = ((acc << 8) | in[i]) & 0x3fff;
        bits += 8;
        while (bits >= 6) {
            bits -= 6;
            out[o++] = B64[(acc >> bits) & 63];
        }
    }
    if (bits > 0)
        out[o++] = B64[(acc << (6 - bits)) & 63];
    out[o] = '\0';
    return o;
}

static int b64_value(char c)
{
    const char *p = c ? strchr(B64, c) : NULL;
    return p ? (int)(p - B64) : -1;
}

/* Decode base64 up to the first character outside the alphabet, like
 * libargon2: at most max bytes, a length of 1 modulo 4 and non-zero
 * trailing bits refused. The end of the text, or NULL. */
static const char *b64_decode(const char *s, uint8_t *out, size_t max, size_t *ret_len)
{
    uint32_t acc = 0;
    unsigned bits = 0;
    size_t n = 0;
    int v;
    for (; (v = b64_value(*s)) >= 0; s++) {
        acc = ((acc << 6) | (uint32_t)v) & 0x3fff; /* at most 14 bits are pending */
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (n >= max)
                return NULL;
            out[n++] = (uint8_t)(acc >> bits);
        }
    }
    if (bits > 4 || (acc & ((1u << bits) - 1)) != 0)
        return NULL;
    *ret_len = n;
    return s;
}

/* A decimal as libargon2 reads one: digits, no leading zero, fits 32 bits. */
static const char *decimal_u32(const char *s, uint32_t *out)
{
    const char *start = s;
    uint64_t v = 0;
    for (; *s >= '0' && *s <= '9'; s++) {
        v = v * 10 + (uint64_t)(*s - '0');
        if (v > UINT32_MAX)
            return NULL;
    }
    if (s == start || (*start == '0' && s != start + 1))
        return NULL;
    *out = (uint32_t)v;
    return s;
}

struct phc {
    struct password_params p;
    uint8_t salt[PHC_MAX_BYTES];
    size_t saltlen;
    uint8_t tag[PHC_MAX_BYTES];
    size_t taglen;
};

/* Parse an argon2id v=19 PHC string; false when it is not exactly one. */
static bool phc_decode(const char *h, struct phc *out)
{
    if (strncmp(h, PHC_PREFIX, sizeof PHC_PREFIX - 1) != 0)
        return false;
    const char *s = decimal_u32(h + sizeof PHC_PREFIX - 1, &out->p.memory_kib);
    if (!s || strncmp(s, ",t=", 3) != 0 || !(s = decimal_u32(s + 3, &out->p.iterations)) ||
        strncmp(s, ",p=", 3) != 0 || !(s = decimal_u32(s + 3, &out->p.parallelism)) ||
        *s != '$' || !(s = b64_decode(s + 1, out->salt, sizeof out->salt, &out->saltlen)) ||
        *s != '$' || !(s = b64_decode(s + 1, out->tag, sizeof out->tag, &out->taglen)))
        return false;
    return *s == '\0';
}

/* argon2id of pw into out (outlen bytes) in the thread's work area. */
static int argon2id_raw(const struct password_params *p, const char *pw, size_t len,
                        const uint8_t *salt, size_t saltlen, uint8_t *out, size_t outlen)
{
    if (len > ARGON2_MAX_PWD_LENGTH || saltlen > UINT32_MAX || outlen > UINT32_MAX)
        return ARGON2_DECODING_FAIL;
    argon2_context ctx = {
        .out = out,
        .outlen = (uint32_t)outlen,
        .pwd = (uint8_t *)(uintptr_t)pw, /* read only: ARGON2_FLAG_CLEAR_PASSWORD is off */
        .pwdlen = (uint32_t)len,
        .salt = (uint8_t *)(uintptr_t)salt,
        .saltlen = (uint32_t)saltlen,
        .t_cost = p->iterations,
        .m_cost = p->memory_kib,
        .lanes = p->parallelism,
        .threads = p->parallelism,
        .version = ARGON2_VERSION_13,
        .allocate_cbk = area_alloc,
        .free_cbk = area_free,
        .flags = ARGON2_DEFAULT_FLAGS,
    };
    return argon2_ctx(&ctx, Argon2_id);
}

enum password_rc password_hash(const struct password_params *p, const char *pw, size_t len,
                               char **ret_hash)
{
    uint8_t salt[SALT_LEN], tag[TAG_LEN];
    enum password_rc out = PASSWORD_ERROR;
    char *enc = NULL;
    if (!util_random(salt, sizeof salt) ||
        argon2id_raw(p, pw, len, salt, sizeof salt, tag, sizeof tag) != ARGON2_OK)
        goto done;
    /* prefix, three decimals of at most 10 digits, ",t=" ",p=" "$" "$",
     * both base64 texts and the NUL */
    size_t cap = sizeof PHC_PREFIX + 3 * 10 + 8 + (SALT_LEN + TAG_LEN) * 4 / 3 + 4;
    enc = malloc(cap);
    if (!enc)
        goto done;
    int n = snprintf(enc, cap, PHC_PREFIX "%u,t=%u,p=%u$", (unsigned)p->memory_kib,
                     (unsigned)p->iterations, (unsigned)p->parallelism);
    if (n < 0 || (size_t)n + (SALT_LEN + TAG_LEN) * 4 / 3 + 4 > cap) {
        free(enc);
        enc = NULL;
        goto done;
    }
    n += (int)b64_encode(enc + n, salt, sizeof salt);
    enc[n++] = '$';
    b64_encode(enc + n, tag, sizeof tag);
    *ret_hash = enc;
    out = PASSWORD_OK;
done:
    OPENSSL_cleanse(salt, sizeof salt);
    OPENSSL_cleanse(tag, sizeof tag);
    return out;
}

static bool is_bcrypt(const char *h)
{
    return strncmp(h, "$2a$", 4) == 0 || strncmp(h, "$2b$", 4) == 0 || strncmp(h, "$2y$", 4) == 0;
}

/* $2a$/$2b$/$2y$, two-digit cost, '$', 53 characters of bcrypt's base64. */
static bool bcrypt_well_formed(const char *h, int *ret_cost)
{
    if (!is_bcrypt(h) || strlen(h) != 60 || h[6] != '$' || h[4] < '0' || h[4] > '9' ||
        h[5] < '0' || h[5] > '9')
        return false;
    for (size_t i = 7; i < 60; i++) {
        char c = h[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '/'))
            return false;
    }
    *ret_cost = (h[4] - '0') * 10 + (h[5] - '0');
    return true;
}

/* Largest work factors accepted from imported hashes: each login pays them
 * (bcrypt 15 is about 1.6 s here; more would hold a hashing thread for
 * minutes, past any deadline). */
#define BCRYPT_MAX_COST 15
#define ARGON2_MAX_MEMORY_KIB (1024u * 1024u)
#define ARGON2_MAX_ITERATIONS 20
#define ARGON2_MAX_PARALLELISM 16

bool password_hash_supported(const char *hash)
{
    struct phc phc;
    struct password_params p = {0};
    int cost = 0;
    if (phc_decode(hash, &phc)) {
        p = phc.p;
        if (p.memory_kib < 8 || p.memory_kib > ARGON2_MAX_MEMORY_KIB || p.iterations < 1 ||
            p.iterations > ARGON2_MAX_ITERATIONS || p.parallelism < 1 ||
            p.parallelism > ARGON2_MAX_PARALLELISM)
            return false;
    } else if (!bcrypt_well_formed(hash, &cost) || cost < 4 || cost > BCRYPT_MAX_COST) {
        return false;
    }
    /* The decisive test: a trial verification must end in "mismatch", not
     * in a decoding error (bad salt, missing tag, bad characters). */
    bool unused;
    return password_verify(hash, "jwtd-import-probe", 17, &p, &unused) == PASSWORD_MISMATCH;
}

bool password_hash_is_current(const char *hash, const struct password_params *p)
{
    struct phc phc;
    return phc_decode(hash, &phc) && phc.p.memory_kib == p->memory_kib &&
           phc.p.iterations == p->iterations && phc.p.parallelism == p->parallelism;
}

enum password_rc password_verify(const char *hash, const char *pw, size_t len,
                                 const struct password_params *p, bool *ret_needs_rehash)
{
    struct phc phc;
    if (phc_decode(hash, &phc)) {
        enum password_rc out = PASSWORD_ERROR;
        uint8_t got[PHC_MAX_BYTES];
        /* argon2_ctx checks the rest (salt of 8 bytes or more, tag of 4 or
         * more, memory of 8 KiB per lane or more, ...), as argon2id_verify did */
        if (argon2id_raw(&phc.p, pw, len, phc.salt, phc.saltlen, got, phc.taglen) ==
            ARGON2_OK) {
            out = CRYPTO_memcmp(got, phc.tag, phc.taglen) == 0 ? PASSWORD_OK : PASSWORD_MISMATCH;
            if (out == PASSWORD_OK)
                *ret_needs_rehash = phc.p.memory_kib != p->memory_kib ||
                                    phc.p.iterations != p->iterations ||
                                    phc.p.parallelism != p->parallelism;
        }
        OPENSSL_cleanse(got, sizeof got);
        return out;
    }
    int cost;
    if (!bcrypt_well_formed(hash, &cost) || cost > BCRYPT_MAX_COST)
        return PASSWORD_ERROR;
    /* crypt wants a C string; a password with a NUL byte cannot match a
     * bcrypt hash made by any other system, so refuse it outright. */
    if (memchr(pw, '\0', len))
        return PASSWORD_MISMATCH;
    char *copy = malloc(len + 1);
    struct crypt_data *cd = calloc(1, sizeof *cd);
    enum password_rc out = PASSWORD_ERROR;
    if (!copy || !cd)
        goto done;
    memcpy(copy, pw, len);
    copy[len] = '\0';
    /* crypt_rn (libxcrypt) rather than crypt_r: same function, but never
     * answers with a "*0" failure token, and not intercepted by the
     * sanitizers (whose crypt_r interceptor breaks on libxcrypt). */
    const char *res = crypt_rn(copy, hash, cd, (int)sizeof *cd);
    size_t hl = strlen(hash);
    if (!res || res[0] == '*' || strlen(res) != hl)
        goto done; /* a hash libcrypt cannot use: an error, not a wrong password */
    out = CRYPTO_memcmp(res, hash, hl) == 0 ? PASSWORD_OK : PASSWORD_MISMATCH;
    if (out == PASSWORD_OK)
        *ret_needs_rehash = true;
done:
    if (copy) {
        OPENSSL_cleanse(copy, len + 1);
        free(copy);
    }
    if (cd) {
        OPENSSL_cleanse(cd, sizeof *cd);
        free(cd);
    }
    return out;
}

void password_hash_free(char *hash)
{
    if (hash) {
        OPENSSL_cleanse(hash, strlen(hash));
        free(hash);
    }
}

bool username_valid(const char *u, size_t len)
{
    if (len < USERNAME_MIN_CHARS || len > USERNAME_MAX_CHARS)
        return false;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)u[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '.' || c == '_' || c == '-' || c == '@' || c == '+';
        if (!ok)
            return false;
    }
    return true;
}

struct password_policy {
    /* Nothing yet: the blocklist is compiled in. The object stays so that a
     * configurable list has a home. */
    int unused;
};

struct password_policy *password_policy_new(void)
{
    return calloc(1, sizeof(struct password_policy));
}

void password_policy_free(struct password_policy *pp)
{
    free(pp);
}

const char *password_policy_check(struct password_policy *pp, const char *username,
                                  const char *pw, size_t len)
{
    (void)pp;
    if (len < PASSWORD_MIN_BYTES)
        return "password is shorter than 8 bytes";
    if (len > PASSWORD_MAX_BYTES)
        return "password is longer than 1024 bytes";
    if (username && strlen(username) == len && strncasecmp(username, pw, len) == 0)
        return "password must not be the username";
    /* bcrypt (libcrypt) reads C strings: a NUL would cut the password. */
    if (memchr(pw, '\0', len))
        return "password contains a NUL byte";
    /* NIST SP 800-63B 5.1.1.2: a list of common and breached passwords and
     * dictionary words, and the short repetitive or sequential ones such
     * lists leave to rules (core/weakpattern.h) - no composition rules, no
     * guessing at what looks "systematic" in a long or random password. */
    if (blocklist_contains(pw, len))
        return "password is in a list of common or breached passwords";
    if (weakpattern_of(pw, len))
        return "password is a common pattern (a repetition, a sequence, a keyboard row or a date)";
    return NULL;
}
