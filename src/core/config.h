/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Configuration of the server and of every operator command: each setting,
 * its default, what it accepts, and the parser that reads it from, in
 * rising order of precedence, the configuration file (jwtd.conf(5):
 * --config PATH, else $JWTD_CONFIG, else /etc/jwtd/jwtd.conf when it
 * exists), the environment (JWTD_*) and flags (--name=value). A bad value is
 * reported as one line naming the setting and what it accepts (and the
 * file and line); nothing here exits or logs.
 */
#ifndef JWTD_CONFIG_H
#define JWTD_CONFIG_H

#include <sched.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "jwtd.h"
#include "base/log.h"

/* Scheduling of pool threads. IO_BATCH is the I/O pool's: SCHED_BATCH at
 * nice 0, the same share of CPU as the HTTP threads, but a thread that
 * wakes up does not preempt one that is answering a request. */
enum work_priority { WORK_PRIO_IDLE, WORK_PRIO_BATCH, WORK_PRIO_NORMAL, WORK_PRIO_IO_BATCH };
enum metrics_access { METRICS_LOOPBACK, METRICS_ANY, METRICS_OFF };

/* The file read when none is named: this build's (<sysconfdir>/jwtd/), else
 * the system's when this build's does not exist. */
#define CONFIG_SYSTEM_FILE "/etc/jwtd/jwtd.conf"
#ifdef JWTD_CONFIG_FILE
#define CONFIG_DEFAULT_FILE JWTD_CONFIG_FILE
#else
#define CONFIG_DEFAULT_FILE CONFIG_SYSTEM_FILE
#endif
#ifdef JWTD_CONFIG_FALLBACK
#define CONFIG_FALLBACK_HELP(indent) ",\n" indent "else " CONFIG_SYSTEM_FILE " when it exists"
#else
#define CONFIG_FALLBACK_HELP(indent) ""
#endif
#define CONFIG_MAX_SETTINGS 96

/* Where a setting's value came from. */
enum config_source { CFG_DEFAULT, CFG_FILE, CFG_ENV, CFG_FLAG, CFG_DERIVED };

struct config {
    /* where the settings came from */
    char *config_path;       /* the file read, NULL when none */
    bool config_none;        /* `--config none` (or JWTD_CONFIG=none): no file, on purpose */
    bool file_holds_secret;  /* the file sets a secret (a stronger source may set it again) */
    char *raw[CONFIG_MAX_SETTINGS];     /* each setting's effective text (secrets wiped on free) */
    enum config_source source[CONFIG_MAX_SETTINGS];
    int file_line[CONFIG_MAX_SETTINGS]; /* line in config_path, for messages */
    char parse_why[160];     /* a parser's reason for refusing a value, when it has one */

    /* network */
    char *listen;            /* as given: "127.0.0.1:8080" */
    char listen_host[64];    /* numeric address */
    uint16_t listen_port;
    bool listen_ipv6;
    unsigned workers;        /* HTTP threads */
    unsigned max_connections;
    unsigned max_connections_per_ip;
    int64_t connection_timeout; /* seconds of inactivity before a connection is closed */
    int64_t request_timeout;    /* seconds a request (line, headers, body) may take to arrive */
    int64_t drain_timeout_ms;   /* on SIGTERM, how long requests in flight may take to finish */
    size_t max_body;
    char *tls_cert_pem;      /* file contents, when TLS is on */
    char *tls_key_pem;
    char *tls_cert_path;
    char *tls_key_path;
    char **cors_origins;     /* exact origins, NULL-terminated; NULL when CORS is off */
    size_t n_cors_origins;
    char **trusted_proxies;  /* numeric addresses whose X-Forwarded-For is believed */
    size_t n_trusted_proxies;
    enum metrics_access metrics;

    /* storage */
    char *database;          /* "sqlite:./jwtd.db" or "postgres://..." */
    bool sqlite_sync_full;   /* synchronous=FULL (default) or NORMAL */
    int64_t db_timeout_ms;   /* longest database round trip or lock wait */

    /* tokens */
    char *public_url;        /* https://auth.example.com: issuer, JWKS and links; NULL when unset */
    char *issuer;
    char *audience;
    jwtd_alg alg;
    uint8_t *jwt_secret;     /* HS256 only; wiped on free */
    size_t jwt_secret_len;
    int64_t access_ttl;      /* seconds */
    int64_t refresh_ttl;     /* idle lifetime, seconds */
    int64_t refresh_absolute_ttl;
    int64_t refresh_reuse_interval;
    int64_t leeway;
    int64_t key_rotation;    /* seconds between automatic rotations; 0 = off */
    int64_t key_publish_ahead; /* how long a next key is published before it signs */
    int64_t revocation_poll_ms;
    int64_t keyring_poll_ms;

    /* accounts */
    bool signup_open;
    uint32_t argon2_memory_kib;
    uint32_t argon2_iterations;
    uint32_t argon2_parallelism;
    unsigned hash_workers;   /* 0 while "auto": derived from hash_cpus at the end of loading */
    bool hash_cpus_pinned;   /* hashing threads confined to hash_cpus */
    cpu_set_t hash_cpus;
    unsigned io_workers;     /* threads that run storage-bound handlers */
    unsigned hash_queue;
    int64_t hash_deadline_ms; /* a job waiting longer than this is answered 503 */
    enum work_priority hash_priority;

    /* abuse limits */
    unsigned login_max_failures;     /* consecutive failures before back-off */
    int64_t login_lockout_base;      /* first back-off, seconds, doubled after each further failure */
    int64_t login_lockout_max;       /* longest back-off */
    unsigned address_max_failures;   /* per client address and window */
    unsigned address_consecutive_failures; /* per client address, before back-off */
    unsigned signup_per_address;     /* signups per address per window */
    unsigned refresh_per_address;    /* refreshes per address per window */
    int64_t rate_window;             /* seconds */

    /* e-mail: verification and password reset (docs/mail.md) */
    char *smtp_url;              /* NULL: no mail; the endpoints that send answer 501 */
    int smtp_tls;                /* enum smtp_tls (core/smtp.h) */
    char *smtp_ca_file;          /* NULL: the system's CA store */
    int64_t smtp_timeout_ms;     /* one delivery attempt, DNS to the last reply */
    char *mail_from;             /* the sender's address */
    char *mail_from_name;        /* its display name, or NULL */
    char *mail_templates;        /* directory of template files overriding the built-in ones */
    int64_t mail_retry_ms;       /* first retry after a temporary failure, doubled each time */
    int64_t mail_retry_max_ms;
    int64_t mail_give_up_ms;     /* a message not sent after this long is given up */
    int64_t mail_poll_ms;        /* how often the outbox is read for due messages */
    int64_t reset_ttl;           /* seconds a reset link works */
    int64_t verify_ttl;          /* seconds a verification link or code works */
    bool require_verified_email; /* login refused until the address is verified */
    unsigned mail_per_address;   /* requests that send mail, per client address per window */
    unsigned mail_per_account;   /* ... per account (or address asked about) per window */
    unsigned code_attempts;      /* wrong verification codes before the code is void */

    /* pages, portal and second factors (docs/pages.md, docs/mfa.md) */
    bool pages;                  /* serve /login, /signup, /account, ... */
    char *site_name;             /* shown on pages and in authenticator apps; NULL: the host */
    char **redirect_domains;     /* hosts rd= may point at ("example.com", ".example.com": any subdomain) */
    size_t n_redirect_domains;
    char *cookie_domain;         /* NULL: host-only __Host- access cookie */
    bool cookie_samesite_lax;    /* SameSite=Lax instead of Strict */
    int64_t mfa_ticket_ttl;      /* seconds between the password and the second step */
    char *webauthn_rp_id;        /* NULL: the host of JWTD_PUBLIC_URL */

    /* logging */
    enum log_level log_level;
    bool log_json;
};

/* The host of JWTD_PUBLIC_URL, lower case (false when unset). */
bool config_public_host(const struct config *cfg, char *out, size_t cap);

/* The origin of JWTD_PUBLIC_URL (scheme://host[:port], no path), as a
 * browser writes it (false when unset). */
bool config_public_origin(const struct config *cfg, char *out, size_t cap);

/* Whether host is domain or one of its subdomains (case-insensitive). */
bool config_domain_covers(const char *domain, const char *host);

/* Fill cfg with the defaults. */
void config_defaults(struct config *cfg);

/*
 * Read the configuration file (--config PATH among the flags, else
 * $JWTD_CONFIG, else CONFIG_DEFAULT_FILE when it exists; "none" reads no
 * file), then JWTD_* variables from the environment, then the flags in argv
 * (argv[0..argc-1], each "--name=value" or "--name value"). Derived values
 * (issuer default, listen address) are computed at the end. A jwtd.env
 * beside the file is an error: settings belong in the file, which every
 * command reads (docs/operations.md, "Secrets"). On failure
 * writes one line (without newline) to err naming the setting and returns
 * false; cfg may then be partly filled and must still be freed.
 */
bool config_load(struct config *cfg, int argc, char **argv, char *err, size_t errlen);

/*
 * Read text[0..len) as the configuration file `name` (jwtd.conf(5)), as
 * config_load reads the file, into cfg (after config_defaults): the same
 * rules and error lines, nothing from the environment or flags, no derived
 * values. For tests and the fuzzer: config_load reads a named file.
 */
bool config_read_text(struct config *cfg, const char *name, const char *text, size_t len,
                      char *err, size_t errlen);

/*
 * The JWTD_* variables of the environment that jwtd does not read (neither a
 * setting nor JWTD_CONFIG or JWTD_TEST_CLOCK): config_load ignores them, so
 * a typo (JWTD_DATBASE) would go unnoticed. Calls found(ctx, name, hint)
 * for each; hint is the name it is likely a typo of (two edits at most), or
 * NULL. Both strings are valid during the call only.
 */
void config_unknown_env(void (*found)(void *ctx, const char *name, const char *hint), void *ctx);

/* A setting of the table, for `jwtd config`, SIGHUP and the man page. */
struct config_setting_info {
    const char *name;     /* JWTD_ACCESS_TTL */
    const char *def;      /* NULL when derived */
    const char *accepts;
    bool reloadable;      /* SIGHUP applies it without a restart */
    bool secret;          /* never printed */
};

size_t config_setting_count(void);
/* The index of a setting by its JWTD_ name (config_setting_count() when
 * there is none). */
size_t config_setting_index(const char *name);
const struct config_setting_info *config_setting(size_t i);

/* The setting's name in the configuration file: "access_ttl". */
void config_file_key(const char *env_name, char *out, size_t cap);

/*
 * Compare a running configuration with a freshly loaded one (SIGHUP): calls
 * changed(ctx, i, reloadable) for every setting whose value differs (a TLS
 * file counts as changed when its contents did).
 */
void config_diff(const struct config *old, const struct config *fresh,
                 void (*changed)(void *ctx, size_t i, bool reloadable), void *ctx);

/*
 * The configuration SIGHUP installs: the reloadable settings from `fresh`
 * (just loaded from the same file, environment and flags), every other one
 * as `running` has it (a change there needs a restart). TLS turned on or
 * off is such a change. On failure writes a reason; ret must still be
 * freed.
 */
bool config_reload_merge(const struct config *running, const struct config *fresh,
                         struct config *ret, char *err, size_t errlen);

/* Human text of a source ("default", "file /etc/jwtd/jwtd.conf:12", ...). */
void config_source_text(const struct config *cfg, size_t i, char *out, size_t cap);

/* True when the database is PostgreSQL, which several instances may share
 * (JWTD_DATABASE accepts sqlite:PATH or a PostgreSQL URL). */
bool config_uses_postgres(const struct config *cfg);

/* True when the listen address is a loopback one. */
bool config_listens_on_loopback(const struct config *cfg);

/* Set one setting by its environment name (e.g. "JWTD_ACCESS_TTL"). */
bool config_set(struct config *cfg, const char *name, const char *value, char *err,
                size_t errlen);

/* Free everything cfg owns (secrets wiped). NULL-safe. */
void config_free(struct config *cfg);

/* Print the settings table (name, default, accepted values) to stdout. */
void config_print_help(void);

/* Name of an algorithm setting value, e.g. "ES256". */
const char *config_alg_name(jwtd_alg alg);

#endif /* JWTD_CONFIG_H */
