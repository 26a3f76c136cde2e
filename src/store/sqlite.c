/* SPDX-License-Identifier: Apache-2.0 */
/*
 * SQLite backend of store.h: the embedded default. One connection per
 * thread (opened on first use, closed with the store), WAL journal so that
 * readers never wait for the writer, synchronous=FULL by default so that a
 * commit that was acknowledged survives a crash, and BEGIN IMMEDIATE for
 * every read-decide-write sequence so that concurrent writers serialize
 * instead of deadlocking on a lock upgrade. All SQL of this backend lives in
 * this file.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sqlite3.h>

#include "store/backends.h"
#include "store/store.h"

/* ------------------------------------------------------------ schema --- */

/* Versioned migrations; never edit an applied one, append a new one. */
static const char *const migrations[] = {
    /* 1: users, sessions, revocations, keys, secrets, counters */
    "CREATE TABLE users ("
    "  id TEXT PRIMARY KEY,"
    "  username TEXT NOT NULL,"
    "  username_key TEXT NOT NULL UNIQUE,"
    "  password_hash TEXT NOT NULL,"
    "  created_at INTEGER NOT NULL,"
    "  updated_at INTEGER NOT NULL);"
    "CREATE TABLE sessions ("
    "  id TEXT PRIMARY KEY,"
    "  user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,"
    "  created_at INTEGER NOT NULL,"
    "  last_used_at INTEGER NOT NULL,"
    "  expires_at INTEGER NOT NULL,"
    "  refresh_gen INTEGER NOT NULL,"
    "  rotated_at_ms INTEGER NOT NULL,"
    "  revoked_at_ms INTEGER,"
    "  revoke_reason TEXT,"
    "  user_agent TEXT NOT NULL DEFAULT '',"
    "  client_addr TEXT NOT NULL DEFAULT '');"
    "CREATE INDEX sessions_user ON sessions(user_id);"
    "CREATE TABLE revocations ("
    "  session_id TEXT PRIMARY KEY,"
    "  revoked_at_ms INTEGER NOT NULL,"
    "  expires_at_ms INTEGER NOT NULL);"
    "CREATE INDEX revocations_time ON revocations(revoked_at_ms);"
    "CREATE TABLE signing_keys ("
    "  kid TEXT PRIMARY KEY,"
    "  alg TEXT NOT NULL,"
    "  state TEXT NOT NULL CHECK (state IN ('next','current','retired')),"
    "  private_key TEXT NOT NULL,"
    "  created_at INTEGER NOT NULL,"
    "  activate_at INTEGER NOT NULL,"
    "  retired_at INTEGER NOT NULL DEFAULT 0,"
    "  remove_at INTEGER NOT NULL DEFAULT 0);"
    "CREATE TABLE secrets ("
    "  name TEXT PRIMARY KEY,"
    "  value BLOB NOT NULL,"
    "  created_at INTEGER NOT NULL);"
    "CREATE TABLE counters ("
    "  key TEXT PRIMARY KEY,"
    "  window_start INTEGER NOT NULL,"
    "  count INTEGER NOT NULL);"
    "CREATE TABLE login_failures ("
    "  key TEXT PRIMARY KEY,"
    "  failures INTEGER NOT NULL,"
    "  blocked_until INTEGER NOT NULL,"
    "  updated_at INTEGER NOT NULL);",
    /* 2: accounts an operator disabled */
    "ALTER TABLE users ADD COLUMN disabled_at INTEGER NOT NULL DEFAULT 0;"
    /* ... and login back-off in milliseconds (it was seconds, and a block of
     * one second could end at once when it began late in a second) */
    "UPDATE login_failures SET blocked_until = blocked_until * 1000 WHERE blocked_until > 0;",
    /* 3: e-mail addresses, one-time e-mail tokens, the outbox */
    "ALTER TABLE users ADD COLUMN email TEXT;"
    "ALTER TABLE users ADD COLUMN email_key TEXT;"
    "ALTER TABLE users ADD COLUMN email_verified INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE users ADD COLUMN email_pending TEXT;"
    "CREATE UNIQUE INDEX users_email ON users(email_key);"
    "CREATE TABLE email_tokens ("
    "  token_hash TEXT PRIMARY KEY,"
    "  user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,"
    "  purpose INTEGER NOT NULL,"
    "  email TEXT NOT NULL DEFAULT '',"
    "  code_hash TEXT NOT NULL DEFAULT '',"
    "  attempts INTEGER NOT NULL DEFAULT 0,"
    "  created_at INTEGER NOT NULL,"
    "  expires_at INTEGER NOT NULL);"
    "CREATE UNIQUE INDEX email_tokens_user ON email_tokens(user_id, purpose);"
    "CREATE TABLE outbox ("
    "  id TEXT PRIMARY KEY,"
    "  kind TEXT NOT NULL,"
    "  user_id TEXT NOT NULL DEFAULT '',"
    "  to_addr TEXT NOT NULL DEFAULT '',"
    "  params TEXT NOT NULL DEFAULT '{}',"
    "  status TEXT NOT NULL,"
    "  attempts INTEGER NOT NULL DEFAULT 0,"
    "  next_attempt_ms INTEGER NOT NULL,"
    "  lease_until_ms INTEGER NOT NULL DEFAULT 0,"
    "  created_ms INTEGER NOT NULL,"
    "  give_up_ms INTEGER NOT NULL,"
    "  finished_ms INTEGER NOT NULL DEFAULT 0,"
    "  last_error TEXT NOT NULL DEFAULT '');"
    "CREATE INDEX outbox_due ON outbox(status, next_attempt_ms);"
    /* how each session signed in (the amr claim, kept across refreshes) */
    "ALTER TABLE sessions ADD COLUMN amr INTEGER NOT NULL DEFAULT 1;",
    /* 4: second factors (TOTP, recovery codes, passkeys) and short-lived state */
    "CREATE TABLE mfa_totp ("
    "  user_id TEXT PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,"
    "  secret TEXT NOT NULL,"
    "  confirmed INTEGER NOT NULL DEFAULT 0,"
    "  last_step INTEGER NOT NULL DEFAULT -1,"
    "  created_at INTEGER NOT NULL);"
    "CREATE TABLE recovery_codes ("
    "  user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,"
    "  code_hash TEXT NOT NULL,"
    "  used_at INTEGER NOT NULL DEFAULT 0,"
    "  PRIMARY KEY (user_id, code_hash));"
    "CREATE TABLE passkeys ("
    "  id TEXT PRIMARY KEY,"
    "  user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,"
    "  public_key TEXT NOT NULL,"
    "  alg INTEGER NOT NULL,"
    "  sign_count INTEGER NOT NULL,"
    "  name TEXT NOT NULL DEFAULT '',"
    "  backup_eligible INTEGER NOT NULL DEFAULT 0,"
    "  created_at INTEGER NOT NULL,"
    "  last_used_at INTEGER NOT NULL DEFAULT 0);"
    "CREATE INDEX passkeys_user ON passkeys(user_id);"
    "CREATE TABLE ephemeral ("
    "  key TEXT PRIMARY KEY,"
    "  kind TEXT NOT NULL,"
    "  user_id TEXT NOT NULL DEFAULT '',"
    "  value TEXT NOT NULL DEFAULT '{}',"
    "  attempts INTEGER NOT NULL DEFAULT 0,"
    "  expires_at INTEGER NOT NULL);",
    /* 5: one identifier names one account. Login takes a username or an
     * address, so no account's username may be another account's address.
     * Each is unique in its own column by an index; across the two columns
     * these triggers refuse the write (as a constraint, like the indexes).
     * SQLite runs one writer at a time and a writing statement holds the
     * lock from its start, so the check and the write cannot be split by
     * another account's write. Both keys are ASCII-lower-cased alike. */
    "CREATE TRIGGER users_one_identifier_insert BEFORE INSERT ON users"
    " WHEN EXISTS (SELECT 1 FROM users WHERE email_key = NEW.username_key)"
    "   OR EXISTS (SELECT 1 FROM users WHERE username_key = NEW.email_key)"
    " BEGIN SELECT RAISE(ABORT, 'identifier taken by another account'); END;"
    "CREATE TRIGGER users_one_identifier_update BEFORE UPDATE OF username_key, email_key ON users"
    " WHEN (NEW.username_key IS NOT OLD.username_key"
    "       AND EXISTS (SELECT 1 FROM users WHERE email_key = NEW.username_key AND id <> NEW.id))"
    "   OR (NEW.email_key IS NOT OLD.email_key"
    "       AND EXISTS (SELECT 1 FROM users WHERE username_key = NEW.email_key AND id <> NEW.id))"
    " BEGIN SELECT RAISE(ABORT, 'identifier taken by another account'); END;",
    /* 6: recovery codes are renewed compare-and-set: two renewals at once
     * cannot both answer with codes when only one set is kept */
    "ALTER TABLE mfa_totp ADD COLUMN codes_gen INTEGER NOT NULL DEFAULT 0;",
    /* 7: the prune finds what is due by index, a batch at a time, instead
     * of scanning every table whole under the write lock */
    "CREATE INDEX sessions_expires ON sessions(expires_at);"
    "CREATE INDEX sessions_revoked ON sessions(revoked_at_ms) WHERE revoked_at_ms IS NOT NULL;"
    "CREATE INDEX revocations_expires ON revocations(expires_at_ms);"
    "CREATE INDEX counters_window ON counters(window_start);"
    "CREATE INDEX login_failures_updated ON login_failures(updated_at);"
    "CREATE INDEX email_tokens_expires ON email_tokens(expires_at);"
    "CREATE INDEX outbox_finished ON outbox(finished_ms) WHERE status <> 'queued';"
    "CREATE INDEX ephemeral_expires ON ephemeral(expires_at);",
};

#define N_MIGRATIONS ((int)(sizeof migrations / sizeof migrations[0]))

/* -------------------------------------------------------- statements --- */

enum stmt {
    S_BEGIN,
    S_COMMIT,
    S_ROLLBACK,
    S_PING,
    S_USER_INSERT,
    S_USER_BY_KEY,
    S_USER_BY_ID,
    S_USER_SET_HASH,
    S_USER_SET_HASH_ANY,
    S_USER_SET_DISABLED,
    S_USER_BY_EMAIL,
    S_USER_SET_EMAIL,
    S_ETOK_PUT,
    S_ETOK_BY_HASH,
    S_ETOK_BY_USER,
    S_ETOK_ATTEMPT,
    S_ETOK_DELETE,
    S_ETOK_PRUNE,
    S_OUTBOX_INSERT,
    S_OUTBOX_CLAIM,
    S_OUTBOX_FINISH,
    S_OUTBOX_COUNT,
    S_OUTBOX_PRUNE,
    S_TOTP_GET,
    S_TOTP_PUT,
    S_TOTP_STEP,
    S_TOTP_DEL,
    S_TOTP_CODES_BUMP,
    S_RC_DEL,
    S_RC_INSERT,
    S_RC_USE,
    S_RC_LEFT,
    S_PK_INSERT,
    S_PK_LIST,
    S_PK_GET,
    S_PK_USE,
    S_PK_DEL,
    S_EPH_PUT,
    S_EPH_GET,
    S_EPH_ATTEMPT,
    S_EPH_DEL,
    S_EPH_PRUNE,
    S_USER_DELETE,
    S_USER_LOCK,
    S_OUTBOX_DROP_USER,
    S_OUTBOX_RESOLVE,
    S_USER_LIST,
    S_SESS_INSERT,
    S_SESS_GET_JOIN,
    S_SESS_LIST,
    S_SESS_ROTATE,
    S_SESS_FEED_ONE,
    S_SESS_REVOKE_ONE,
    S_SESS_FEED_USER,
    S_SESS_REVOKE_USER,
    S_REV_SINCE,
    S_REV_PRUNE,
    S_SESS_PRUNE,
    S_SESS_REVOKED_PRUNE,
    S_COUNTERS_PRUNE,
    S_LOGIN_PRUNE,
    S_SECRET_INSERT,
    S_SECRET_GET,
    S_KEYS_LIST,
    S_KEY_COUNT_STATE,
    S_KEY_INSERT,
    S_KEY_RETIRE_CURRENT,
    S_KEY_MAKE_CURRENT,
    S_KEY_RETIRE,
    S_KEYS_REMOVE,
    S_KEY_PURGE,
    S_COUNTER_ADD,
    S_LOGIN_GET,
    S_LOGIN_UPSERT,
    S_LOGIN_RESET,
    S_LOGIN_REFUND,
    S_COUNT
};

static const char *const stmt_sql[S_COUNT] = {
    [S_BEGIN] = "BEGIN IMMEDIATE",
    [S_COMMIT] = "COMMIT",
    [S_ROLLBACK] = "ROLLBACK",
    [S_PING] = "SELECT count(*) FROM schema_migrations",
    [S_USER_INSERT] = "INSERT INTO users(id, username, username_key, password_hash, created_at,"
                      " updated_at, email, email_key, email_verified)"
                      " VALUES (?1, ?2, ?3, ?4, ?5, ?5, ?6, ?6, ?7)",
    [S_USER_BY_KEY] = "SELECT id, username, password_hash, created_at, disabled_at, COALESCE(email, ''),"
                      " email_verified, COALESCE(email_pending, '') FROM users WHERE username_key = ?1",
    [S_USER_BY_ID] = "SELECT id, username, password_hash, created_at, disabled_at, COALESCE(email, ''),"
                      " email_verified, COALESCE(email_pending, '') FROM users WHERE id = ?1",
    [S_USER_BY_EMAIL] = "SELECT id, username, password_hash, created_at, disabled_at, COALESCE(email, ''),"
                      " email_verified, COALESCE(email_pending, '') FROM users WHERE email_key = ?1",
    [S_USER_SET_EMAIL] = "UPDATE users SET email = ?2, email_key = ?2, email_verified = ?3,"
                         " email_pending = ?4, updated_at = ?5 WHERE id = ?1",
    [S_USER_SET_HASH] = "UPDATE users SET password_hash = ?2, updated_at = ?4"
                        " WHERE id = ?1 AND password_hash = ?3",
    [S_USER_SET_HASH_ANY] = "UPDATE users SET password_hash = ?2, updated_at = ?3 WHERE id = ?1",
    [S_USER_SET_DISABLED] = "UPDATE users SET disabled_at = CASE WHEN ?2 <> 0 AND disabled_at <> 0"
                           " THEN disabled_at ELSE ?2 END, updated_at = ?3 WHERE id = ?1",
    [S_USER_DELETE] = "DELETE FROM users WHERE id = ?1",
    /* Inside a transaction (BEGIN IMMEDIATE: it is this process's and
     * file's only writer already), the check alone. */
    [S_USER_LOCK] = "SELECT 1 FROM users WHERE id = ?1 AND (?2 IS NULL OR password_hash = ?2)"
                    " AND (?3 = 1 OR disabled_at = 0)",
    [S_OUTBOX_DROP_USER] = "DELETE FROM outbox WHERE user_id = ?1 AND status = 'queued' AND kind"
                           " IN ('verify_email', 'reset_password', 'forgot_password')",
    [S_ETOK_PUT] = "INSERT INTO email_tokens(token_hash, user_id, purpose, email, code_hash,"
                   " attempts, created_at, expires_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"
                   " ON CONFLICT (user_id, purpose) DO UPDATE SET"
                   " token_hash = excluded.token_hash, email = excluded.email,"
                   " code_hash = excluded.code_hash, attempts = excluded.attempts,"
                   " created_at = excluded.created_at, expires_at = excluded.expires_at",
    [S_ETOK_BY_HASH] = "SELECT token_hash, user_id, purpose, email, code_hash, attempts,"
                       " created_at, expires_at FROM email_tokens WHERE token_hash = ?1",
    [S_ETOK_BY_USER] = "SELECT token_hash, user_id, purpose, email, code_hash, attempts,"
                       " created_at, expires_at FROM email_tokens WHERE user_id = ?1"
                       " AND purpose = ?2",
    [S_ETOK_ATTEMPT] = "UPDATE email_tokens SET attempts = attempts + 1 WHERE user_id = ?1"
                       " AND purpose = ?2 RETURNING attempts",
    [S_ETOK_DELETE] = "DELETE FROM email_tokens WHERE user_id = ?1 AND purpose = ?2",
    [S_ETOK_PRUNE] = "DELETE FROM email_tokens WHERE rowid IN (SELECT rowid FROM email_tokens"
                     " WHERE expires_at < ?1 - 86400 LIMIT ?2)",
    [S_OUTBOX_INSERT] = "INSERT INTO outbox(id, kind, user_id, to_addr, params, status, attempts,"
                        " next_attempt_ms, created_ms, give_up_ms)"
                        " VALUES (?1, ?2, ?3, ?4, ?5, 'queued', 0, ?6, ?7, ?8)",
    [S_OUTBOX_CLAIM] = "UPDATE outbox SET lease_until_ms = ?2 WHERE id IN (SELECT id FROM outbox"
                       " WHERE status = 'queued' AND next_attempt_ms <= ?1 AND lease_until_ms < ?1"
                       " ORDER BY next_attempt_ms LIMIT ?3) RETURNING id, kind, user_id, to_addr,"
                       " params, attempts, created_ms, next_attempt_ms, give_up_ms",
    /* A finished message keeps no parameters: they held its secret. */
    [S_OUTBOX_FINISH] = "UPDATE outbox SET status = ?2, attempts = ?3, next_attempt_ms = ?4,"
                        " last_error = ?5, lease_until_ms = 0,"
                        " params = CASE WHEN ?2 = 'queued' THEN params ELSE '{}' END,"
                        " finished_ms = CASE WHEN ?2 = 'queued' THEN 0 ELSE ?6 END WHERE id = ?1",
    [S_OUTBOX_COUNT] = "SELECT count(*) FROM outbox WHERE status = ?1",
    [S_OUTBOX_RESOLVE] = "UPDATE outbox SET kind = ?2, user_id = ?3, to_addr = ?4, params = ?5"
                         " WHERE id = ?1 AND kind = 'forgot_password' AND status = 'queued'",
    /* Finished messages are kept a week for the operator's questions. */
    [S_OUTBOX_PRUNE] = "DELETE FROM outbox WHERE rowid IN (SELECT rowid FROM outbox"
                       " WHERE status <> 'queued' AND finished_ms < (?1 - 7 * 86400) * 1000 LIMIT ?2)",
    [S_TOTP_GET] = "SELECT user_id, secret, confirmed, last_step, created_at, codes_gen FROM"
                   " mfa_totp WHERE user_id = ?1",
    [S_TOTP_PUT] = "INSERT INTO mfa_totp(user_id, secret, confirmed, last_step, created_at) VALUES"
                   " (?1, ?2, ?3, ?4, ?5) ON CONFLICT (user_id) DO UPDATE SET secret ="
                   " excluded.secret, confirmed = excluded.confirmed, last_step ="
                   " excluded.last_step, created_at = excluded.created_at",
    /* A login's code needs a confirmed factor, a confirmation an
     * unconfirmed one (so that of two confirmations at once one wins). */
    [S_TOTP_STEP] = "UPDATE mfa_totp SET last_step = ?2, confirmed = 1 WHERE user_id = ?1 AND"
                     " last_step < ?2 AND confirmed = 1 - ?3 AND (?3 = 0 OR secret = ?4)",
    [S_TOTP_DEL] = "DELETE FROM mfa_totp WHERE user_id = ?1",
    [S_TOTP_CODES_BUMP] = "UPDATE mfa_totp SET codes_gen = codes_gen + 1 WHERE user_id = ?1 AND"
                          " confirmed = 1 AND codes_gen = ?2",
    [S_RC_DEL] = "DELETE FROM recovery_codes WHERE user_id = ?1",
    [S_RC_INSERT] = "INSERT INTO recovery_codes(user_id, code_hash) VALUES (?1, ?2)",
    [S_RC_USE] = "UPDATE recovery_codes SET used_at = ?3 WHERE user_id = ?1 AND code_hash = ?2 AND"
                 " used_at = 0",
    [S_RC_LEFT] = "SELECT count(*) FROM recovery_codes WHERE user_id = ?1 AND used_at = 0",
    [S_PK_INSERT] = "INSERT INTO passkeys(id, user_id, public_key, alg, sign_count, name,"
                    " backup_eligible, created_at, last_used_at) SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7,"
                    " ?8, 0 WHERE (SELECT count(*) FROM passkeys WHERE user_id = ?2) < ?9",
    [S_PK_LIST] = "SELECT id, user_id, public_key, alg, sign_count, name, backup_eligible,"
                  " created_at, last_used_at FROM passkeys WHERE user_id = ?1 ORDER BY created_at,"
                  " id",
    [S_PK_GET] = "SELECT id, user_id, public_key, alg, sign_count, name, backup_eligible,"
                 " created_at, last_used_at FROM passkeys WHERE id = ?1",
    [S_PK_USE] = "UPDATE passkeys SET sign_count = ?2, last_used_at = ?3 WHERE id = ?1 AND"
                 " (sign_count < ?2 OR (sign_count = 0 AND ?2 = 0))",
    [S_PK_DEL] = "DELETE FROM passkeys WHERE user_id = ?1 AND id = ?2",
    [S_EPH_PUT] = "INSERT INTO ephemeral(key, kind, user_id, value, attempts, expires_at) VALUES"
                  " (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (key) DO UPDATE SET kind = excluded.kind,"
                  " user_id = excluded.user_id, value = excluded.value, attempts ="
                  " excluded.attempts, expires_at = excluded.expires_at",
    [S_EPH_GET] = "SELECT key, kind, user_id, value, attempts, expires_at FROM ephemeral WHERE key"
                  " = ?1",
    [S_EPH_ATTEMPT] = "UPDATE ephemeral SET attempts = attempts + 1 WHERE key = ?1 RETURNING attempts",
    [S_EPH_DEL] = "DELETE FROM ephemeral WHERE key = ?1",
    [S_EPH_PRUNE] = "DELETE FROM ephemeral WHERE rowid IN (SELECT rowid FROM ephemeral"
                    " WHERE expires_at < ?1 - 3600 LIMIT ?2)",
    [S_USER_LIST] = "SELECT id, username, password_hash, created_at, disabled_at, COALESCE(email, ''),"
                      " email_verified, COALESCE(email_pending, '') FROM users"
                    " ORDER BY created_at, id",
    [S_SESS_INSERT] = "INSERT INTO sessions(id, user_id, created_at, last_used_at, expires_at,"
                      " refresh_gen, rotated_at_ms, user_agent, client_addr, amr)"
                      " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
    [S_SESS_GET_JOIN] = "SELECT s.user_id, s.created_at, s.last_used_at, s.expires_at,"
                        " s.refresh_gen, s.rotated_at_ms, COALESCE(s.revoked_at_ms, 0),"
                        " s.user_agent, s.client_addr, u.username, u.created_at, u.disabled_at,"
                        " COALESCE(u.email, ''), u.email_verified, s.amr"
                        " FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.id = ?1",
    [S_SESS_LIST] = "SELECT id, created_at, last_used_at, expires_at, refresh_gen,"
                    " rotated_at_ms, user_agent, client_addr FROM sessions"
                    " WHERE user_id = ?1 AND revoked_at_ms IS NULL AND expires_at > ?2"
                    " AND last_used_at + ?3 > ?2 ORDER BY created_at DESC, id DESC",
    [S_SESS_ROTATE] = "UPDATE sessions SET refresh_gen = ?2, rotated_at_ms = ?3,"
                      " last_used_at = ?4 WHERE id = ?1",
    [S_SESS_FEED_ONE] = "INSERT OR REPLACE INTO revocations(session_id, revoked_at_ms,"
                        " expires_at_ms) SELECT id, ?3, ?4 FROM sessions WHERE id = ?1"
                        " AND (?2 IS NULL OR user_id = ?2) AND revoked_at_ms IS NULL",
    [S_SESS_REVOKE_ONE] = "UPDATE sessions SET revoked_at_ms = ?3, revoke_reason = ?4"
                          " WHERE id = ?1 AND (?2 IS NULL OR user_id = ?2)"
                          " AND revoked_at_ms IS NULL",
    [S_SESS_FEED_USER] = "INSERT OR REPLACE INTO revocations(session_id, revoked_at_ms,"
                         " expires_at_ms) SELECT id, ?3, ?4 FROM sessions WHERE user_id = ?1"
                         " AND (?2 IS NULL OR id <> ?2) AND revoked_at_ms IS NULL",
    [S_SESS_REVOKE_USER] = "UPDATE sessions SET revoked_at_ms = ?3, revoke_reason = ?4"
                           " WHERE user_id = ?1 AND (?2 IS NULL OR id <> ?2)"
                           " AND revoked_at_ms IS NULL",
    [S_REV_SINCE] = "SELECT session_id, revoked_at_ms, expires_at_ms FROM revocations"
                    " WHERE revoked_at_ms >= ?1",
    [S_REV_PRUNE] = "DELETE FROM revocations WHERE rowid IN (SELECT rowid FROM revocations"
                    " WHERE expires_at_ms < ?1 LIMIT ?2)",
    /* A session is kept a day past its end so that a late refresh can be told
     * "expired" or "revoked" rather than "unknown". */
    [S_SESS_PRUNE] = "DELETE FROM sessions WHERE rowid IN (SELECT rowid FROM sessions"
                     " WHERE expires_at < ?1 - 86400 LIMIT ?2)",
    [S_SESS_REVOKED_PRUNE] = "DELETE FROM sessions WHERE rowid IN (SELECT rowid FROM sessions"
                             " WHERE revoked_at_ms < (?1 - 86400) * 1000 LIMIT ?2)",
    [S_COUNTERS_PRUNE] = "DELETE FROM counters WHERE rowid IN (SELECT rowid FROM counters"
                         " WHERE window_start < ?1 - 86400 LIMIT ?2)",
    [S_LOGIN_PRUNE] = "DELETE FROM login_failures WHERE rowid IN (SELECT rowid FROM login_failures"
                      " WHERE updated_at < ?1 - 86400 AND blocked_until < ?1 * 1000 LIMIT ?2)",
    [S_SECRET_INSERT] = "INSERT INTO secrets(name, value, created_at) VALUES (?1, ?2, ?3)"
                        " ON CONFLICT(name) DO NOTHING",
    [S_SECRET_GET] = "SELECT value FROM secrets WHERE name = ?1",
    [S_KEYS_LIST] = "SELECT kid, alg, state, private_key, created_at, activate_at, retired_at,"
                    " remove_at FROM signing_keys ORDER BY created_at, kid",
    [S_KEY_COUNT_STATE] = "SELECT count(*) FROM signing_keys WHERE alg = ?1 AND state = ?2",
    [S_KEY_INSERT] = "INSERT INTO signing_keys(kid, alg, state, private_key, created_at,"
                     " activate_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    [S_KEY_RETIRE_CURRENT] = "UPDATE signing_keys SET state = 'retired', retired_at = ?2,"
                             " remove_at = ?3 WHERE kid = ?1 AND state = 'current'",
    [S_KEY_MAKE_CURRENT] = "UPDATE signing_keys SET state = 'current', activate_at = ?2"
                           " WHERE kid = ?1 AND state = 'next'",
    [S_KEY_RETIRE] = "UPDATE signing_keys SET state = 'retired', retired_at = ?2,"
                     " remove_at = ?3 WHERE kid = ?1 AND state <> 'retired'",
    [S_KEY_PURGE] = "UPDATE signing_keys SET remove_at = ?2 WHERE kid = ?1 AND state = 'retired'",
    [S_KEYS_REMOVE] = "DELETE FROM signing_keys WHERE state = 'retired' AND remove_at <= ?1",
    /* Never below zero: a refund that lands in a new window (or after the
     * row was pruned) must not give an extra attempt. */
    [S_COUNTER_ADD] = "INSERT INTO counters(key, window_start, count) VALUES (?1, ?2, MAX(?4, 0))"
                      " ON CONFLICT(key) DO UPDATE SET"
                      " count = CASE WHEN window_start <= ?2 - ?3 THEN MAX(?4, 0)"
                      " ELSE MAX(count + ?4, 0) END,"
                      " window_start = CASE WHEN window_start <= ?2 - ?3 THEN ?2"
                      " ELSE window_start END RETURNING count, window_start",
    [S_LOGIN_GET] = "SELECT failures, blocked_until FROM login_failures WHERE key = ?1",
    [S_LOGIN_UPSERT] = "INSERT INTO login_failures(key, failures, blocked_until, updated_at)"
                       " VALUES (?1, ?2, ?3, ?4) ON CONFLICT(key) DO UPDATE SET"
                       " failures = excluded.failures, blocked_until = excluded.blocked_until,"
                       " updated_at = excluded.updated_at",
    [S_LOGIN_RESET] = "DELETE FROM login_failures WHERE key = ?1",
    [S_LOGIN_REFUND] = "UPDATE login_failures SET failures = failures - 1,"
                       " blocked_until = CASE WHEN failures - 1 < ?2 OR (?3 > 0 AND blocked_until = ?3)"
                       " THEN 0 ELSE blocked_until END"
                       " WHERE key = ?1 AND failures > 0",
};

/* ------------------------------------------------------ connections --- */

struct sqlite_store;

struct conn {
    struct sqlite_store *owner;
    bool holds_wlock;       /* inside a write transaction of this process */
    sqlite3 *db;
    sqlite3_stmt *stmt[S_COUNT];
    struct conn *next;
};

struct sqlite_store {
    struct store base;
    char *path;
    bool sync_full;
    bool must_exist; /* open without SQLITE_OPEN_CREATE */
    int busy_timeout_ms; /* longest wait for a lock (JWTD_DB_TIMEOUT) */
    pthread_key_t tls;
    pthread_key_t tls_counters; /* the rate-limit connection of each thread */
    pthread_mutex_t lock; /* guards `conns` */
    struct conn *conns;
    /* Writers of this process take turns here rather than in SQLite's busy
     * handler, which sleeps in growing steps (1, 2, 5, 10 ... 100 ms) and
     * turned a handful of concurrent refreshes into a 600 ms p99. A mutex
     * hands over at once; other processes on the file still meet the busy
     * timeout. */
    pthread_mutex_t wlock;
};

static enum store_rc map_rc(int rc)
{
    switch (rc & 0xff) {
    case SQLITE_OK:
    case SQLITE_DONE:
    case SQLITE_ROW:
        return STORE_OK;
    case SQLITE_CONSTRAINT:
        return STORE_CONFLICT;
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
    case SQLITE_READONLY:
    case SQLITE_FULL:
    case SQLITE_IOERR:
    case SQLITE_CANTOPEN:
    case SQLITE_NOMEM:
    case SQLITE_PROTOCOL:
        return STORE_UNAVAILABLE;
    default:
        return STORE_ERROR;
    }
}

static void conn_free(struct conn *c)
{
    if (!c)
        return;
    for (int i = 0; i < S_COUNT; i++)
        sqlite3_finalize(c->stmt[i]);
    sqlite3_close_v2(c->db);
    free(c);
}

/* counters: the connection for rate-limit counters, synchronous=NORMAL:
 * their commits skip the fsync (the next durable commit, or a checkpoint,
 * carries them to disk). Losing the last few counter updates to a power cut
 * is harmless; paying three fsyncs per login for them was not (they were
 * most of a login's I/O, and a login flood's I/O stretched the verify p99). */
/* Whether a query on the schema finds a row (reads only). */
static bool schema_has(sqlite3 *db, const char *where)
{
    char sql[160];
    snprintf(sql, sizeof sql, "SELECT 1 FROM sqlite_master WHERE type = 'table' AND %s", where);
    sqlite3_stmt *st = NULL;
    bool found = sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK &&
                 sqlite3_step(st) == SQLITE_ROW;
    sqlite3_finalize(st);
    return found;
}

/* Whether the file holds jwtd's migrations table. */
static bool has_jwtd_schema(sqlite3 *db)
{
    return schema_has(db, "name = 'schema_migrations'");
}

/* Tables, none of them jwtd's schema table: another application's file. */
static bool foreign_database(sqlite3 *db)
{
    return !has_jwtd_schema(db) && schema_has(db, "name NOT LIKE 'sqlite\\_%' ESCAPE '\\'");
}

static struct conn *conn_open(struct sqlite_store *s, bool counters)
{
    struct conn *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->owner = s;
    int rc = sqlite3_open_v2(s->path, &c->db,
                             SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX |
                                 (s->must_exist ? 0 : SQLITE_OPEN_CREATE),
                             NULL);
    if (rc != SQLITE_OK)
        goto fail;
    sqlite3_busy_timeout(c->db, s->busy_timeout_ms);
    sqlite3_extended_result_codes(c->db, 0);
    char pragmas[256];
    snprintf(pragmas, sizeof pragmas,
             "PRAGMA synchronous=%s; PRAGMA foreign_keys=ON; PRAGMA trusted_schema=OFF;",
             s->sync_full && !counters ? "FULL" : "NORMAL");
    /* journal_mode=WAL needs a write lock once per database; on a read-only
     * file it fails and the connection still serves reads. A command that
     * must not create a database must not change someone else's either:
     * switching the journal mode writes the file (an empty file gets a
     * header, another application's database a new mode), so it is left
     * to databases that already hold jwtd's schema, and to new (empty)
     * ones for a command that may create one; never another application's
     * (sq_migrate refuses to add to it). */
    if (s->must_exist ? has_jwtd_schema(c->db) : !foreign_database(c->db))
        sqlite3_exec(c->db, "PRAGMA journal_mode=WAL;", NULL, NULL, NULL);
    sqlite3_exec(c->db, pragmas, NULL, NULL, NULL);
    return c;
fail:
    conn_free(c);
    return NULL;
}

static struct conn *conn_get_kind(struct sqlite_store *s, bool counters)
{
    pthread_key_t key = counters ? s->tls_counters : s->tls;
    struct conn *c = pthread_getspecific(key);
    if (c)
        return c;
    c = conn_open(s, counters);
    if (!c)
        return NULL;
    pthread_mutex_lock(&s->lock);
    c->next = s->conns;
    s->conns = c;
    pthread_mutex_unlock(&s->lock);
    pthread_setspecific(key, c);
    return c;
}

static struct conn *conn_get(struct sqlite_store *s)
{
    return conn_get_kind(s, false);
}

/* A reset statement of this thread's connection, or NULL. */
static sqlite3_stmt *st(struct conn *c, enum stmt id)
{
    if (!c->stmt[id]) {
        if (sqlite3_prepare_v3(c->db, stmt_sql[id], -1, SQLITE_PREPARE_PERSISTENT, &c->stmt[id],
                               NULL) != SQLITE_OK)
            return NULL;
    } else {
        sqlite3_reset(c->stmt[id]);
        sqlite3_clear_bindings(c->stmt[id]);
    }
    return c->stmt[id];
}

static void bind_text(sqlite3_stmt *q, int i, const char *v)
{
    if (v)
        sqlite3_bind_text(q, i, v, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(q, i);
}

/* Step a statement, holding the process's write lock for a write outside
 * a transaction (its own implicit transaction). */
static int step_locked(struct conn *c, sqlite3_stmt *q)
{
    bool lock = !c->holds_wlock && !sqlite3_stmt_readonly(q);
    if (lock)
        pthread_mutex_lock(&c->owner->wlock);
    int rc = sqlite3_step(q);
    if (lock)
        pthread_mutex_unlock(&c->owner->wlock);
    return rc;
}

/* Run a statement that returns no rows; the rc of the step. */
static int exec_done(struct conn *c, sqlite3_stmt *q)
{
    int rc = step_locked(c, q);
    sqlite3_reset(q);
    return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

static void copy_text(char *dst, size_t cap, sqlite3_stmt *q, int col)
{
    const unsigned char *t = sqlite3_column_text(q, col);
    snprintf(dst, cap, "%s", t ? (const char *)t : "");
}

static char *dup_text(sqlite3_stmt *q, int col)
{
    const unsigned char *t = sqlite3_column_text(q, col);
    return strdup(t ? (const char *)t : "");
}

#define SELF(base) ((struct sqlite_store *)(base))

static void release_wlock(struct conn *c)
{
    if (c->holds_wlock) {
        c->holds_wlock = false;
        pthread_mutex_unlock(&c->owner->wlock);
    }
}

static enum store_rc begin(struct conn *c)
{
    sqlite3_stmt *q = st(c, S_BEGIN);
    if (!q)
        return STORE_ERROR;
    pthread_mutex_lock(&c->owner->wlock);
    c->holds_wlock = true;
    enum store_rc rc = map_rc(exec_done(c, q));
    if (rc != STORE_OK)
        release_wlock(c);
    return rc;
}

static enum store_rc commit(struct conn *c)
{
    sqlite3_stmt *q = st(c, S_COMMIT);
    enum store_rc rc = q ? map_rc(exec_done(c, q)) : STORE_ERROR;
    if (rc != STORE_OK)
        sqlite3_exec(c->db, "ROLLBACK", NULL, NULL, NULL);
    release_wlock(c);
    return rc;
}

static void rollback(struct conn *c)
{
    if (!sqlite3_get_autocommit(c->db))
        sqlite3_exec(c->db, "ROLLBACK", NULL, NULL, NULL);
    release_wlock(c);
}

/* End a transaction: commit when rc is OK or a clean "no" answer, otherwise
 * roll back. */
static enum store_rc finish(struct conn *c, enum store_rc rc)
{
    if (rc == STORE_OK || rc == STORE_NOT_FOUND) {
        enum store_rc crc = commit(c);
        return crc == STORE_OK ? rc : crc;
    }
    rollback(c);
    return rc;
}

/* -------------------------------------------------------------- ops --- */

static void sq_close(struct store *base)
{
    struct sqlite_store *s = SELF(base);
    struct conn *c = s->conns;
    while (c) {
        struct conn *n = c->next;
        conn_free(c);
        c = n;
    }
    pthread_key_delete(s->tls);
    pthread_key_delete(s->tls_counters);
    pthread_mutex_destroy(&s->lock);
    pthread_mutex_destroy(&s->wlock);
    free(s->path);
    free(s);
}

static enum store_rc sq_migrate(struct store *base, int *ret_from)
{
    struct conn *c = conn_get(SELF(base));
    if (!c)
        return STORE_UNAVAILABLE;
    /* A file with tables but no jwtd schema is another application's: no
     * tables of ours are made beside its own (a mistyped JWTD_DATABASE would
     * otherwise fill it). A SQLite file is one application's by nature;
     * jwtd gets a file of its own. CONFLICT says so to the caller. */
    if (foreign_database(c->db)) {
        store_report(base, STORE_EV_ERROR,
                     "the file holds another application's tables and no jwtd schema");
        return STORE_CONFLICT;
    }
    int rc = sqlite3_exec(c->db,
                          "CREATE TABLE IF NOT EXISTS schema_migrations ("
                          " version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)",
                          NULL, NULL, NULL);
    if (rc != SQLITE_OK)
        return map_rc(rc);
    enum store_rc src = begin(c);
    if (src != STORE_OK)
        return src;
    sqlite3_stmt *q = NULL;
    int current = 0;
    rc = sqlite3_prepare_v2(c->db, "SELECT COALESCE(MAX(version), 0) FROM schema_migrations", -1,
                            &q, NULL);
    if (rc == SQLITE_OK && sqlite3_step(q) == SQLITE_ROW)
        current = sqlite3_column_int(q, 0);
    sqlite3_finalize(q);
    if (rc != SQLITE_OK)
        return finish(c, map_rc(rc));
    if (ret_from)
        *ret_from = current;
    if (current > N_MIGRATIONS)
        return finish(c, STORE_ERROR); /* written by a newer jwtd */
    for (int v = current + 1; v <= N_MIGRATIONS; v++) {
        rc = sqlite3_exec(c->db, migrations[v - 1], NULL, NULL, NULL);
        if (rc != SQLITE_OK)
            return finish(c, map_rc(rc) == STORE_CONFLICT ? STORE_ERROR : map_rc(rc));
        char ins[128];
        snprintf(ins, sizeof ins,
                 "INSERT INTO schema_migrations(version, applied_at) VALUES (%d, %lld)", v,
                 (long long)util_now());
        rc = sqlite3_exec(c->db, ins, NULL, NULL, NULL);
        if (rc != SQLITE_OK)
            return finish(c, STORE_ERROR);
    }
    return finish(c, STORE_OK);
}

static enum store_rc sq_schema_version(struct store *base, int *ret_current, int *ret_latest)
{
    struct conn *c = conn_get(SELF(base));
    if (!c)
        return STORE_UNAVAILABLE;
    sqlite3_stmt *q = NULL;
    int rc = sqlite3_prepare_v2(c->db,
                                "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND"
                                " name = 'schema_migrations'",
                                -1, &q, NULL);
    bool exists = rc == SQLITE_OK && sqlite3_step(q) == SQLITE_ROW && sqlite3_column_int(q, 0);
    sqlite3_finalize(q);
    if (rc != SQLITE_OK)
        return map_rc(rc);
    int current = 0;
    if (exists) {
        rc = sqlite3_prepare_v2(c->db, "SELECT COALESCE(MAX(version), 0) FROM schema_migrations",
                                -1, &q, NULL);
        if (rc == SQLITE_OK && sqlite3_step(q) == SQLITE_ROW)
            current = sqlite3_column_int(q, 0);
        sqlite3_finalize(q);
        if (rc != SQLITE_OK)
            return map_rc(rc);
    }
    *ret_current = current;
    *ret_latest = N_MIGRATIONS;
    return STORE_OK;
}

static enum store_rc sq_ping(struct store *base)
{
    struct conn *c = conn_get(SELF(base));
    if (!c)
        return STORE_UNAVAILABLE;
    sqlite3_stmt *q = st(c, S_PING);
    if (!q)
        return STORE_UNAVAILABLE;
    int rc = sqlite3_step(q);
    sqlite3_reset(q);
    return rc == SQLITE_ROW ? STORE_OK : STORE_UNAVAILABLE;
}

static enum store_rc sq_tx_begin(struct store *base)
{
    struct conn *c = conn_get(SELF(base));
    if (!c)
        return STORE_UNAVAILABLE;
    return begin(c);
}

static enum store_rc sq_tx_end(struct store *base, enum store_rc rc)
{
    struct conn *c = conn_get(SELF(base));
    if (!c)
        return STORE_UNAVAILABLE;
    return finish(c, rc);
}

static enum store_rc sq_user_insert(struct store *base, const struct store_user *u)
{
    struct conn *c = conn_get(SELF(base));
    if (!c)
        return STORE_UNAVAILABLE;
    sqlite3_stmt *q = st(c, S_USER_INSERT);
    if (!q)
        return STORE_ERROR;
    char key[USERNAME_MAX + 1];
    store_username_key(u->username, key);
    bind_text(q, 1, u->id);
    bind_text(q, 2, u->username);
    bind_text(q, 3, key);
    bind_text(q, 4, u->password_hash);
    sqlite3_bind_int64(q, 5, u->created_at);
    bind_text(q, 6, u->email[0] ? u->email : NULL);
    sqlite3_bind_int64(q, 7, u->email_verified);
    return map_rc(exec_done(c, q));
}

/* Columns: id, username, password_hash, created_at, disabled_at, email,
 * email_verified, email_pending. */
static void user_from_row(sqlite3_stmt *q, struct store_user *u)
{
    copy_text(u->id, sizeof u->id, q, 0);
    copy_text(u->username, sizeof u->username, q, 1);
    u->created_at = sqlite3_column_int64(q, 3);
    u->disabled_at = sqlite3_column_int64(q, 4);
    copy_text(u->email, sizeof u->email, q, 5);
    u->email_verified = sqlite3_column_int64(q, 6) != 0;
    copy_text(u->email_pending, sizeof u->email_pending, q, 7);
}

static enum store_rc read_user(sqlite3_stmt *q, struct store_user *ret)
{
    int rc = sqlite3_step(q);
    if (rc == SQLITE_DONE) {
        sqlite3_reset(q);
        return STORE_NOT_FOUND;
    }
    if (rc != SQLITE_ROW) {
        sqlite3_reset(q);
        return map_rc(rc) == STORE_OK ? STORE_ERROR : map_rc(rc);
    }
    struct store_user u = {0};
    user_from_row(q, &u);
    u.password_hash = dup_text(q, 2);
    sqlite3_reset(q);
    if (!u.password_hash)
        return STORE_UNAVAILABLE;
    *ret = u;
    return STORE_OK;
}

static enum store_rc sq_user_by_name(struct store *base, const char *username,
                                     struct store_user *ret)
{
    struct conn *c = conn_get(SELF(base));
    if (!c)
        return STORE_UNAVAILABLE;
    sqlite3_stmt *q = st(c, S_USER_BY_KEY);
    if (!q)
        return STORE_ERROR;
    char key[USERNAME_MAX + 1];
    store_username_key(username, key);
    bind_text(q, 1, key);
    return read_user(q, ret);
}

static enum store_rc sq_user_by_id(struct store *base, const char *id, struct store_user *ret)
{
    struct conn *c = conn_get(SELF(base));
    if (!c)
        return STORE_UNAVAILABLE;
    sqlite3_stmt *q = st(c, S_USER_BY_ID);
    if (!q)
        return STORE_ERROR;
    bind_text(q, 1, id);
    return read_user(q, ret);
}

static enum store_rc sq_user_update_hash(struct store *base, const char *id, const char *old_hash,
                                         const char *new_hash, int64_t now)
{
    struct conn *c = conn_get(SELF(base));
    if (!c)
        return STORE_UNAVAILABLE;
    sqlite3_stmt *q = st(c, old_hash ? S_USER_SET_HASH : S_USER_SET_HASH_ANY);
    if (!q)
        return STORE_ERROR;
    bind_text(q, 1, id);
    bind_text(q, 2, new_hash);
    if (old_hash) {
        bind_text(q, 3, old_hash);
        sqlite3_bind_int64(q, 4, now);
    } else {
        sqlite3_bind_int64(q, 3, now);
    }
    enum store_rc rc = map_rc(exec_done(c, q));
    if (rc == STORE_OK && sqlite3_changes(c->db) == 0)
        return STORE_NOT_FOUND;
    return rc;
}

static enum store_rc sq_user_update_disabled(struct store *base, const char *id,
                                             int64_t disabled_at, int64_t now)
{
    struct conn *c = conn_get(SELF(base));
    if (!c)
        return STORE_UNAVAILABLE;
    sqlite3_stmt *q = st(c, S_USER_SET_DISABLED);
    if (!q)
        return STORE_ERROR;
    bind_text(q, 1, id);
    sqlite3_bind_int64(q, 2, disabled_at);
    sqlite3_bind_int64(q, 3, now);
    enum store_rc rc = map_rc(exec_done(c, q));
    if (rc == STORE_OK && sqlite3_changes(c->db) == 0)
        return STORE_NOT_FOUND;
    return rc;
}

static enum store_rc sq_user_lock(struct store *base, const char *id, const char *hash,
                                  bool exclusive)
{
    struct conn *c = conn_get(SELF(base));
    if (!c)
        return STORE_UNAVAILABLE;
    sqlite3_stmt *q = st(c, S_USER_LOCK);
    if (!q)
        return STORE_ERROR;
    bind_text(q, 1, id);
    bind_text(q, 2, hash);
    sqlite3_bind_int(q, 3, exclusive);
    int rc = sqlite3_step(q);
    sqlite3_reset(q);
    return rc == SQLITE_ROW ? STORE_OK : rc == SQLITE_DONE ? STORE_NOT_FOUND : map_rc(rc);
}

static enum store_rc sq_user_delete_row(struct store *base, const char *id)
{
    struct conn *c = conn_get(SELF(base));
    if (!c)
        return STORE_UNAVAILABLE;
    /* Mail still queued for the account goes with it (its links would be
     * dead, its address no longer the account's business). */
    sqlite3_stmt *q = st(c, S_OUTBOX_DROP_USER);
    if (!q)
        return STORE_ERROR;
    bind_text(q, 1, id);
    enum store_rc drop = map_rc(exec_done(c, q));
    if (drop != STORE_OK)
        return drop;
    q = st(c, S_USER_DELETE);
    if (!q)
        return STORE_ERROR;
    bind_text(q, 1, id);
    enum store_rc rc = map_rc(exec_done(c, q));
    if (rc == STORE_OK && sqlite3_changes(c->db) == 0)
        return STORE_NOT_FOUND;
    return rc;
}

static enum store_rc sq_user_list(struct store *base, store_user_cb cb, void *ctx)
{
    struct conn *c = conn_get(SELF(base));
    if (!c)
        return STORE_UNAVAILABLE;
    sqlite3_stmt *q = st(c, S_USER_LIST);
    if (!q)
        return STORE_ERROR;
    int rc;
    while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
        struct store_user u = {0};
        user_from_row(q, &u);
        const unsigned char *h = sqlite3_column_text(q, 2);
        cb(ctx, &u, store_hash_scheme(h ? (const char *)h : ""));
    }
    sqlite3_reset(q);
    return rc == SQLITE_DONE ? STORE_OK : map_rc(rc);
}

static enum store_rc sq_session_insert(struct store *base, const struct store_session *s)
{
    struct conn *c = conn_get(SELF(base));
    if (!c)
        return STORE_UNAVAILABLE;
    sqlite3_stmt *q = st(c, S_SESS_INSERT);
    if (!q)
        return STORE_ERROR;
    bind_text(q, 1, s->id);
    bind_text(q, 2, s->user_id);
    sqlite3_bind_int64(q, 3, s->created_at);
    sqlite3_bind_int64(q, 4, s->last_used_at);
    sqlite3_bind_int64(q, 5, s->expires_at);
    sqlite3_bind_int64(q, 6, s->refresh_gen);
    sqlite3_bind_int64(q, 7, s->rotated_at_ms);
    bind_text(q, 8, s->user_agent);
    bind_text(q, 9, s->client_addr);
    sqlite3_bind_int64(q, 10, s->amr);
    enum store_rc rc = map_rc(exec_done(c, q));
    /* The user was deleted between password check and here. */
    return rc == STORE_CONFLICT ? STORE_NOT_FOUND : rc;
}

static enum store_rc sq_session_list(struct store *base, const char *user_id, int64_t now,
                                     int64_t idle_ttl, store_session_cb cb, void *ctx)
{
    struct conn *c = conn_get(SELF(base));
    if (!c)
        return STORE_UNAVAILABLE;
    sqlite3_stmt *q = st(c, S_SESS_LIST);
    if (!q)
        return STORE_ERROR;
    bind_text(q, 1, user_id);
    sqlite3_bind_int64(q, 2, now);
    sqlite3_bind_int64(q, 3, idle_ttl);
    int rc;
    while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
        struct store_session s = {0};
        copy_text(s.id, sizeof s.id, q, 0);
        snprintf(s.user_id, sizeof s.user_id, "%s", user_id);
        s.created_at = sqlite3_column_int64(q, 1);
        s.last_used_at = sqlite3_column_int64(q, 2);
        s.expires_at = sqlite3_column_int64(q, 3);
        s.refresh_gen = (uint32_t)sqlite3_column_int64(q, 4);
        s.rotated_at_ms = sqlite3_column_int64(q, 5);
        copy_text(s.user_agent, sizeof s.user_agent, q, 6);
        copy_text(s.client_addr, sizeof s.client_addr, q, 7);
        cb(ctx, &s);
    }
    sqlite3_reset(q);
    return rc == SQLITE_DONE ? STORE_OK : map_rc(rc);
}

/* Inside tx_begin (BEGIN IMMEDIATE: this connection alone writes until the
 * end, which is what locks the row). */
static enum store_rc sq_session_lock(struct store *base, const char *sid,
                                     struct store_session *ret, struct store_user *ret_owner)
{
    struct conn *c = conn_get(SELF(base));
    if (!c)
        return STORE_UNAVAILABLE;
    sqlite3_stmt *q = st(c, S_SESS_GET_JOIN);
    if (!q)
        return STORE_ERROR;
    bind_text(q, 1, sid);
    int src = sqlite3_step(q);
    if (src == SQLITE_DONE) {
        sqlite3_reset(q);
        return STORE_NOT_FOUND;
    }
    if (src != SQLITE_ROW) {
        sqlite3_reset(q);
        return map_rc(src) == STORE_OK ? STORE_ERROR : map_rc(src);
    }
    struct store_session row = {0};
    struct store_user user = {0};
    snprintf(row.id, sizeof row.id, "%s", sid);
    copy_text(row.user_id, sizeof row.user_id, q, 0);
    row.created_at = sqlite3_column_int64(q, 1);
    row.last_used_at = sqlite3_column_int64(q, 2);
    row.expires_at = sqlite3_column_int64(q, 3);
    row.refresh_gen = (uint32_t)sqlite3_column_int64(q, 4);
    row.rotated_at_ms = sqlite3_column_int64(q, 5);
    row.revoked_at_ms = sqlite3_column_int64(q, 6);
    copy_text(row.user_agent, sizeof row.user_agent, q, 7);
    copy_text(row.client_addr, sizeof row.client_addr, q, 8);
    snprintf(user.id, sizeof user.id, "%s", row.user_id);
    copy_text(user.username, sizeof user.username, q, 9);
    user.created_at = sqlite3_column_int64(q, 10);
    user.disabled_at = sqlite3_column_int64(q, 11);
    copy_text(user.email, sizeof user.email, q, 12);
    user.email_verified = sqlite3_column_int64(q, 13) != 0;
    row.amr = (unsigned)sqlite3_column_int64(q, 14);
    sqlite3_reset(q);
    *ret = row;
    *ret_owner = user;
    return STORE_OK;
}

static enum store_rc sq_session_rotate(struct store *base, const struct store_session *row)
{
    struct conn *c = conn_get(SELF(base));
    if (!c)
        return STORE_UNAVAILABLE;
    sqlite3_stmt *q = st(c, S_SESS_ROTATE);
    if (!q)
        return STORE_ERROR;
    bind_text(q, 1, row->id);
    sqlite3_bind_int64(q, 2, row->refresh_gen);
    sqlite3_bind_int64(q, 3, row->rotated_at_ms);
    sqlite3_bind_int64(q, 4, row->last_used_at);
    return map_rc(exec_done(c, q));
}

/* Feed the revocations first, then mark the sessions: one session (sid) or
 * every live one of user_id but except_sid. */
static enum store_rc sq_session_revoke_rows(struct store *base, const char *user_id,
                                            const char *sid, const char *except_sid,
                                            const char *reason, const struct revocation *rev,
                                            int *ret_count)
{
    struct conn *c = conn_get(SELF(base));
    if (!c)
        return STORE_UNAVAILABLE;
    bool one = sid != NULL;
    sqlite3_stmt *q = st(c, one ? S_SESS_FEED_ONE : S_SESS_FEED_USER);
    if (!q)
        return STORE_ERROR;
    bind_text(q, 1, one ? sid : user_id);
    bind_text(q, 2, one ? user_id : except_sid);
    sqlite3_bind_int64(q, 3, rev->now_ms);
    sqlite3_bind_int64(q, 4, rev->expires_ms);
    enum store_rc rc = map_rc(exec_done(c, q));
    if (rc != STORE_OK)
        return rc;
    q = st(c, one ? S_SESS_REVOKE_ONE : S_SESS_REVOKE_USER);
    if (!q)
        return STORE_ERROR;
    bind_text(q, 1, one ? sid : user_id);
    bind_text(q, 2, one ? user_id : except_sid);
    sqlite3_bind_int64(q, 3, rev->now_ms);
    bind_text(q, 4, reason);
    rc = map_rc(exec_done(c, q));
    if (rc == STORE_OK && ret_count)
        *ret_count = sqlite3_changes(c->db);
    return rc;
}

static enum store_rc sq_revocations_since(struct store *base, int64_t since_ms,
                                          store_revocation_cb cb, void *ctx)
{
    struct conn *c = conn_get(SELF(base));
    if (!c)
        return STORE_UNAVAILABLE;
    sqlite3_stmt *q = st(c, S_REV_SINCE);
    if (!q)
        return STORE_UNAVAILABLE;
    sqlite3_bind_int64(q, 1, since_ms);
    int rc;
    while ((rc = sqlite3_step(q)) == SQLITE_ROW)
        cb(ctx, (const char *)sqlite3_column_text(q, 0), sqlite3_column_int64(q, 1),
           sqlite3_column_int64(q, 2));
    sqlite3_reset(q);
    return rc == SQLITE_DONE ? STORE_OK : map_rc(rc);
}

static enum store_rc sq_prune_some(struct store *base, int64_t now, int64_t now_ms, int limit,
                                   int64_t *ret_removed)
{
    struct conn *c = conn_get(SELF(base));
    if (!c)
        return STORE_UNAVAILABLE;
    enum store_rc rc = begin(c);
    if (rc != STORE_OK)
        return rc;
    static const enum stmt order[] = {S_REV_PRUNE,    S_SESS_PRUNE,  S_SESS_REVOKED_PRUNE,
                                      S_COUNTERS_PRUNE, S_LOGIN_PRUNE, S_ETOK_PRUNE,
                                      S_OUTBOX_PRUNE, S_EPH_PRUNE};
    int left = limit;
    for (size_t i = 0; i < sizeof order / sizeof order[0] && rc == STORE_OK && left > 0; i++) {
        sqlite3_stmt *q = st(c, order[i]);
        if (!q)
            return finish(c, STORE_ERROR);
        sqlite3_bind_int64(q, 1, order[i] == S_REV_PRUNE ? now_ms : now);
        sqlite3_bind_int(q, 2, left);
        rc = map_rc(exec_done(c, q));
        if (rc == STORE_OK)
            left -= sqlite3_changes(c->db);
    }
    rc = finish(c, rc);
    if (rc == STORE_OK)
        *ret_removed = limit - left;
    return rc;
}

static enum store_rc sq_secret_get_or_create(struct store *base, const char *name,
                                             const uint8_t *candidate, size_t len, uint8_t *out,
                                             size_t cap, size_t *ret_len)
{
    struct conn *c = conn_get(SELF(base));
    if (!c)
        return STORE_UNAVAILABLE;
    sqlite3_stmt *q = st(c, S_SECRET_INSERT);
    if (!q)
        return STORE_ERROR;
    bind_text(q, 1, name);
    sqlite3_bind_blob(q, 2, candidate, (int)len, SQLITE_STATIC);
    sqlite3_bind_int64(q, 3, util_now());
    enum store_rc rc = map_rc(exec_done(c, q));
    sqlite3_clear_bindings(q);
    if (rc != STORE_OK)
        return rc;
    q = st(c, S_SECRET_GET);
    if (!q)
        return STORE_ERROR;
    bind_text(q, 1, name);
    int src = sqlite3_step(q);
    if (src != SQLITE_ROW) {
        sqlite3_reset(q);
        return src == SQLITE_DONE ? STORE_ERROR : map_rc(src);
    }
    int n = sqlite3_column_bytes(q, 0);
    const void *v = sqlite3_column_blob(q, 0);
    if (n <= 0 || (size_t)n > cap || !v) {
        sqlite3_reset(q);
        return STORE_ERROR;
    }
    memcpy(out, v, (size_t)n);
    *ret_len = (size_t)n;
    sqlite3_reset(q);
    return STORE_OK;
}

static enum key_state parse_state(const char *s)
{
    if (strcmp(s, "current") == 0)
        return KEY_CURRENT;
    if (strcmp(s, "next") == 0)
        return KEY_NEXT;
    return KEY_RETIRED;
}

static enum store_rc sq_keys_list(struct store *base, store_key_cb cb, void *ctx)
{
    struct conn *c = conn_get(SELF(base));
    if (!c)
        return STORE_UNAVAILABLE;
    sqlite3_stmt *q = st(c, S_KEYS_LIST);
    if (!q)
        return STORE_UNAVAILABLE;
    int rc;
    while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
        struct store_key k = {0};
        copy_text(k.kid, sizeof k.kid, q, 0);
        copy_text(k.alg, sizeof k.alg, q, 1);
        const unsigned char *state = sqlite3_column_text(q, 2);
        k.state = parse_state(state ? (const char *)state : "");
        k.private_pem = dup_text(q, 3);
        k.created_at = sqlite3_column_int64(q, 4);
        k.activate_at = sqlite3_column_int64(q, 5);
        k.retired_at = sqlite3_column_int64(q, 6);
        k.remove_at = sqlite3_column_int64(q, 7);
        if (k.private_pem)
            cb(ctx, &k);
        store_key_clear(&k);
    }
    sqlite3_reset(q);
    return rc == SQLITE_DONE ? STORE_OK : map_rc(rc);
}

static enum store_rc sq_key_insert_unless(struct store *base, const struct store_key *k,
                                          bool *ret_inserted)
{
    struct conn *c = conn_get(SELF(base));
    if (!c)
        return STORE_UNAVAILABLE;
    enum store_rc rc = begin(c);
    if (rc != STORE_OK)
        return rc;
    sqlite3_stmt *q = st(c, S_KEY_COUNT_STATE);
    if (!q)
        return finish(c, STORE_ERROR);
    bind_text(q, 1, k->alg);
    bind_text(q, 2, store_key_state_name(k->state));
    int src = sqlite3_step(q);
    int64_t n = src == SQLITE_ROW ? sqlite3_column_int64(q, 0) : -1;
    sqlite3_reset(q);
    if (n < 0)
        return finish(c, map_rc(src) == STORE_OK ? STORE_ERROR : map_rc(src));
    bool inserted = false;
    if (n == 0) {
        q = st(c, S_KEY_INSERT);
        if (!q)
            return finish(c, STORE_ERROR);
        bind_text(q, 1, k->kid);
        bind_text(q, 2, k->alg);
        bind_text(q, 3, store_key_state_name(k->state));
        bind_text(q, 4, k->private_pem);
        sqlite3_bind_int64(q, 5, k->created_at);
        sqlite3_bind_int64(q, 6, k->activate_at);
        rc = map_rc(exec_done(c, q));
        inserted = rc == STORE_OK;
    }
    rc = finish(c, rc);
    if (rc == STORE_OK)
        *ret_inserted = inserted;
    return rc;
}

static enum store_rc sq_key_promote(struct store *base, const char *next_kid,
                                    const char *current_kid, int64_t now,
                                    int64_t retired_remove_at)
{
    struct conn *c = conn_get(SELF(base));
    if (!c)
        return STORE_UNAVAILABLE;
    enum store_rc rc = begin(c);
    if (rc != STORE_OK)
        return rc;
    if (current_kid) {
        sqlite3_stmt *q = st(c, S_KEY_RETIRE_CURRENT);
        if (!q)
            return finish(c, STORE_ERROR);
        bind_text(q, 1, current_kid);
        sqlite3_bind_int64(q, 2, now);
        sqlite3_bind_int64(q, 3, retired_remove_at);
        rc = map_rc(exec_done(c, q));
        if (rc == STORE_OK && sqlite3_changes(c->db) != 1)
            rc = STORE_NOT_FOUND;
    }
    if (rc == STORE_OK) {
        sqlite3_stmt *q = st(c, S_KEY_MAKE_CURRENT);
        if (!q)
            return finish(c, STORE_ERROR);
        bind_text(q, 1, next_kid);
        sqlite3_bind_int64(q, 2, now);
        rc = map_rc(exec_done(c, q));
        if (rc == STORE_OK && sqlite3_changes(c->db) != 1)
            rc = STORE_NOT_FOUND;
    }
    if (rc == STORE_NOT_FOUND) {
        rollback(c); /* lost a race: change nothing */
        return STORE_NOT_FOUND;
    }
    return finish(c, rc);
}

static enum store_rc sq_key_retire(struct store *base, const char *kid, int64_t now,
                                   int64_t remove_at)
{
    struct conn *c = conn_get(SELF(base));
    if (!c)
        return STORE_UNAVAILABLE;
    sqlite3_stmt *q = st(c, S_KEY_RETIRE);
    if (!q)
        return STORE_ERROR;
    bind_text(q, 1, kid);
    sqlite3_bind_int64(q, 2, now);
    sqlite3_bind_int64(q, 3, remove_at);
    enum store_rc rc = map_rc(exec_done(c, q));
    if (rc == STORE_OK && sqlite3_changes(c->db) == 0)
        return STORE_NOT_FOUND;
    return rc;
}

static enum store_rc sq_key_retire_purge(struct store *base, const char *kid, int64_t remove_at)
{
    struct conn *c = conn_get(SELF(base));
    if (!c)
        return STORE_UNAVAILABLE;
    sqlite3_stmt *q = st(c, S_KEY_PURGE);
    if (!q)
        return STORE_ERROR;
    bind_text(q, 1, kid);
    sqlite3_bind_int64(q, 2, remove_at);
    enum store_rc rc = map_rc(exec_done(c, q));
    if (rc == STORE_OK && sqlite3_changes(c->db) == 0)
        return STORE_NOT_FOUND;
    return rc;
}

static enum store_rc sq_keys_remove_expired(struct store *base, int64_t now)
{
    struct conn *c = conn_get(SELF(base));
    if (!c)
        return STORE_UNAVAILABLE;
    sqlite3_stmt *q = st(c, S_KEYS_REMOVE);
    if (!q)
        return STORE_ERROR;
    sqlite3_bind_int64(q, 1, now);
    return map_rc(exec_done(c, q));
}

static enum store_rc sq_counter_add(struct store *base, const char *key, int64_t now,
                                    int64_t window, int64_t delta, int64_t *ret_count,
                                    int64_t *ret_window_start)
{
    struct conn *c = conn_get_kind(SELF(base), true);
    if (!c)
        return STORE_UNAVAILABLE;
    sqlite3_stmt *q = st(c, S_COUNTER_ADD);
    if (!q)
        return STORE_ERROR;
    bind_text(q, 1, key);
    sqlite3_bind_int64(q, 2, now);
    sqlite3_bind_int64(q, 3, window);
    sqlite3_bind_int64(q, 4, delta);
    pthread_mutex_lock(&c->owner->wlock);
    int rc = sqlite3_step(q);
    int64_t n = rc == SQLITE_ROW ? sqlite3_column_int64(q, 0) : 0;
    int64_t start = rc == SQLITE_ROW ? sqlite3_column_int64(q, 1) : now;
    if (rc == SQLITE_ROW)
        rc = sqlite3_step(q);
    sqlite3_reset(q);
    pthread_mutex_unlock(&c->owner->wlock);
    if (rc != SQLITE_DONE)
        return map_rc(rc) == STORE_OK ? STORE_ERROR : map_rc(rc);
    *ret_count = n;
    if (ret_window_start)
        *ret_window_start = start;
    return STORE_OK;
}

static enum store_rc sq_login_attempt(struct store *base, const char *key, int64_t now_ms,
                                      unsigned max_failures, int64_t base_ms, int64_t max_ms,
                                      int64_t *ret_retry_after_ms, int64_t *ret_set_until_ms)
{
    if (ret_set_until_ms)
        *ret_set_until_ms = 0;
    struct conn *c = conn_get_kind(SELF(base), true);
    if (!c)
        return STORE_UNAVAILABLE;
    enum store_rc rc = begin(c);
    if (rc != STORE_OK)
        return rc;
    sqlite3_stmt *q = st(c, S_LOGIN_GET);
    if (!q)
        return finish(c, STORE_ERROR);
    bind_text(q, 1, key);
    int64_t failures = 0, until = 0;
    int src = sqlite3_step(q);
    if (src == SQLITE_ROW) {
        failures = sqlite3_column_int64(q, 0);
        until = sqlite3_column_int64(q, 1);
    }
    sqlite3_reset(q);
    if (src != SQLITE_ROW && src != SQLITE_DONE)
        return finish(c, map_rc(src) == STORE_OK ? STORE_ERROR : map_rc(src));
    if (until > now_ms) {
        rc = finish(c, STORE_OK);
        if (rc == STORE_OK)
            *ret_retry_after_ms = until - now_ms;
        return rc;
    }
    failures++;
    int64_t wait = store_login_backoff(failures, max_failures, base_ms, max_ms);
    q = st(c, S_LOGIN_UPSERT);
    if (!q)
        return finish(c, STORE_ERROR);
    bind_text(q, 1, key);
    sqlite3_bind_int64(q, 2, failures);
    sqlite3_bind_int64(q, 3, wait ? now_ms + wait : 0);
    sqlite3_bind_int64(q, 4, now_ms / 1000);
    rc = finish(c, map_rc(exec_done(c, q)));
    if (rc == STORE_OK) {
        *ret_retry_after_ms = 0;
        if (ret_set_until_ms)
            *ret_set_until_ms = wait ? now_ms + wait : 0;
    }
    return rc;
}

static enum store_rc sq_login_get(struct store *base, const char *key, int64_t *ret_failures,
                                  int64_t *ret_blocked_until)
{
    struct conn *c = conn_get_kind(SELF(base), true);
    if (!c)
        return STORE_UNAVAILABLE;
    sqlite3_stmt *q = st(c, S_LOGIN_GET);
    if (!q)
        return STORE_ERROR;
    bind_text(q, 1, key);
    int64_t failures = 0, until = 0;
    int src = sqlite3_step(q);
    if (src == SQLITE_ROW) {
        failures = sqlite3_column_int64(q, 0);
        until = sqlite3_column_int64(q, 1);
    }
    sqlite3_reset(q);
    if (src != SQLITE_ROW && src != SQLITE_DONE)
        return map_rc(src) == STORE_OK ? STORE_ERROR : map_rc(src);
    *ret_failures = failures;
    *ret_blocked_until = until;
    return STORE_OK;
}

static enum store_rc sq_login_reset(struct store *base, const char *key)
{
    struct conn *c = conn_get_kind(SELF(base), true);
    if (!c)
        return STORE_UNAVAILABLE;
    sqlite3_stmt *q = st(c, S_LOGIN_RESET);
    if (!q)
        return STORE_ERROR;
    bind_text(q, 1, key);
    return map_rc(exec_done(c, q));
}

static enum store_rc sq_login_refund(struct store *base, const char *key, unsigned max_failures,
                                     int64_t set_until_ms)
{
    struct conn *c = conn_get_kind(SELF(base), true);
    if (!c)
        return STORE_UNAVAILABLE;
    sqlite3_stmt *q = st(c, S_LOGIN_REFUND);
    if (!q)
        return STORE_ERROR;
    bind_text(q, 1, key);
    sqlite3_bind_int64(q, 2, max_failures);
    sqlite3_bind_int64(q, 3, set_until_ms);
    return map_rc(exec_done(c, q));
}

static enum store_rc sq_user_by_email(struct store *base, const char *email,
                                      struct store_user *ret)
{
    struct conn *c = conn_get(SELF(base));
    if (!c)
        return STORE_UNAVAILABLE;
    sqlite3_stmt *q = st(c, S_USER_BY_EMAIL);
    if (!q)
        return STORE_ERROR;
    bind_text(q, 1, email);
    return read_user(q, ret);
}

static enum store_rc sq_user_update_email(struct store *base, const char *id, const char *email,
                                          bool verified, const char *pending, int64_t now)
{
    struct conn *c = conn_get(SELF(base));
    if (!c)
        return STORE_UNAVAILABLE;
    sqlite3_stmt *q = st(c, S_USER_SET_EMAIL);
    if (!q)
        return STORE_ERROR;
    bind_text(q, 1, id);
    bind_text(q, 2, email && *email ? email : NULL);
    sqlite3_bind_int64(q, 3, verified && email && *email);
    bind_text(q, 4, pending && *pending ? pending : NULL);
    sqlite3_bind_int64(q, 5, now);
    enum store_rc rc = map_rc(exec_done(c, q));
    if (rc == STORE_OK && sqlite3_changes(c->db) == 0)
        return STORE_NOT_FOUND;
    return rc;
}

static enum store_rc sq_email_token_put(struct store *base, const struct store_email_token *t)
{
    struct conn *c = conn_get(SELF(base));
    if (!c)
        return STORE_UNAVAILABLE;
    sqlite3_stmt *q = st(c, S_ETOK_PUT);
    if (!q)
        return STORE_ERROR;
    bind_text(q, 1, t->token_hash);
    bind_text(q, 2, t->user_id);
    sqlite3_bind_int64(q, 3, t->purpose);
    bind_text(q, 4, t->email);
    bind_text(q, 5, t->code_hash);
    sqlite3_bind_int64(q, 6, t->attempts);
    sqlite3_bind_int64(q, 7, t->created_at);
    sqlite3_bind_int64(q, 8, t->expires_at);
    return map_rc(exec_done(c, q));
}

static enum store_rc read_token(sqlite3_stmt *q, struct store_email_token *ret)
{
    int rc = sqlite3_step(q);
    if (rc != SQLITE_ROW) {
        sqlite3_reset(q);
        return rc == SQLITE_DONE ? STORE_NOT_FOUND
                                 : (map_rc(rc) == STORE_OK ? STORE_ERROR : map_rc(rc));
    }
    struct store_email_token t = {0};
    copy_text(t.token_hash, sizeof t.token_hash, q, 0);
    copy_text(t.user_id, sizeof t.user_id, q, 1);
    t.purpose = (enum email_purpose)sqlite3_column_int(q, 2);
    copy_text(t.email, sizeof t.email, q, 3);
    copy_text(t.code_hash, sizeof t.code_hash, q, 4);
    t.attempts = sqlite3_column_int(q, 5);
    t.created_at = sqlite3_column_int64(q, 6);
    t.expires_at = sqlite3_column_int64(q, 7);
    sqlite3_reset(q);
    *ret = t;
    return STORE_OK;
}

static enum store_rc sq_email_token_by_hash(struct store *base, const char *token_hash,
                                            struct store_email_token *ret)
{
    struct conn *c = conn_get(SELF(base));
    if (!c)
        return STORE_UNAVAILABLE;
    sqlite3_stmt *q = st(c, S_ETOK_BY_HASH);
    if (!q)
        return STORE_ERROR;
    bind_text(q, 1, token_hash);
    return read_token(q, ret);
}

static enum store_rc sq_email_token_by_user(struct store *base, const char *user_id,
                                            enum email_purpose purpose,
                                            struct store_email_token *ret)
{
    struct conn *c = conn_get(SELF(base));
    if (!c)
        return STORE_UNAVAILABLE;
    sqlite3_stmt *q = st(c, S_ETOK_BY_USER);
    if (!q)
        return STORE_ERROR;
    bind_text(q, 1, user_id);
    sqlite3_bind_int64(q, 2, purpose);
    return read_token(q, ret);
}

static enum store_rc sq_email_token_attempt(struct store *base, const char *user_id,
                                            enum email_purpose purpose, int *ret_attempts)
{
    struct conn *c = conn_get(SELF(base));
    if (!c)
        return STORE_UNAVAILABLE;
    sqlite3_stmt *q = st(c, S_ETOK_ATTEMPT);
    if (!q)
        return STORE_ERROR;
    bind_text(q, 1, user_id);
    sqlite3_bind_int64(q, 2, purpose);
    bool lock = !c->holds_wlock;
    if (lock)
        pthread_mutex_lock(&c->owner->wlock);
    int rc = sqlite3_step(q);
    int n = rc == SQLITE_ROW ? sqlite3_column_int(q, 0) : -1;
    if (rc == SQLITE_ROW)
        rc = sqlite3_step(q);
    sqlite3_reset(q);
    if (lock)
        pthread_mutex_unlock(&c->owner->wlock);
    if (rc != SQLITE_DONE)
        return map_rc(rc) == STORE_OK ? STORE_ERROR : map_rc(rc);
    if (n < 0)
        return STORE_NOT_FOUND;
    *ret_attempts = n;
    return STORE_OK;
}

static enum store_rc sq_email_token_delete(struct store *base, const char *user_id,
                                           enum email_purpose purpose)
{
    struct conn *c = conn_get(SELF(base));
    if (!c)
        return STORE_UNAVAILABLE;
    sqlite3_stmt *q = st(c, S_ETOK_DELETE);
    if (!q)
        return STORE_ERROR;
    bind_text(q, 1, user_id);
    sqlite3_bind_int64(q, 2, purpose);
    return map_rc(exec_done(c, q));
}

/* ?1..?5: a message's id, kind, user, recipient and parameters. */
static void bind_mail(sqlite3_stmt *q, const struct store_mail *m)
{
    bind_text(q, 1, m->id);
    bind_text(q, 2, m->kind);
    bind_text(q, 3, m->user_id);
    bind_text(q, 4, m->to);
    bind_text(q, 5, m->params ? m->params : "{}");
}

static enum store_rc sq_outbox_insert(struct store *base, const struct store_mail *m)
{
    struct conn *c = conn_get(SELF(base));
    if (!c)
        return STORE_UNAVAILABLE;
    sqlite3_stmt *q = st(c, S_OUTBOX_INSERT);
    if (!q)
        return STORE_ERROR;
    bind_mail(q, m);
    sqlite3_bind_int64(q, 6, m->next_attempt_ms);
    sqlite3_bind_int64(q, 7, m->created_ms);
    sqlite3_bind_int64(q, 8, m->give_up_ms);
    return map_rc(exec_done(c, q));
}

static enum store_rc sq_outbox_claim(struct store *base, int64_t now_ms, int64_t lease_until_ms,
                                     int max, store_mail_cb cb, void *ctx)
{
    struct conn *c = conn_get(SELF(base));
    if (!c)
        return STORE_UNAVAILABLE;
    sqlite3_stmt *q = st(c, S_OUTBOX_CLAIM);
    if (!q)
        return STORE_ERROR;
    sqlite3_bind_int64(q, 1, now_ms);
    sqlite3_bind_int64(q, 2, lease_until_ms);
    sqlite3_bind_int64(q, 3, max);
    /* The rows are read whole before the callbacks run: the statement (a
     * write) must end before the callback uses the store. */
    struct store_mail rows[32];
    int n = 0;
    pthread_mutex_lock(&c->owner->wlock);
    int rc;
    while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
        if (n == (int)(sizeof rows / sizeof rows[0]))
            continue;
        struct store_mail *m = &rows[n];
        memset(m, 0, sizeof *m);
        copy_text(m->id, sizeof m->id, q, 0);
        copy_text(m->kind, sizeof m->kind, q, 1);
        copy_text(m->user_id, sizeof m->user_id, q, 2);
        copy_text(m->to, sizeof m->to, q, 3);
        m->params = dup_text(q, 4);
        m->attempts = sqlite3_column_int(q, 5);
        m->created_ms = sqlite3_column_int64(q, 6);
        m->next_attempt_ms = sqlite3_column_int64(q, 7);
        m->give_up_ms = sqlite3_column_int64(q, 8);
        n++;
    }
    sqlite3_reset(q);
    pthread_mutex_unlock(&c->owner->wlock);
    for (int i = 0; i < n; i++) {
        if (rc == SQLITE_DONE && rows[i].params)
            cb(ctx, &rows[i]);
        store_mail_clear(&rows[i]);
    }
    return rc == SQLITE_DONE ? STORE_OK : (map_rc(rc) == STORE_OK ? STORE_ERROR : map_rc(rc));
}

static enum store_rc sq_outbox_finish(struct store *base, const char *id, enum mail_status status,
                                      int attempts, int64_t next_attempt_ms, const char *error,
                                      int64_t now_ms)
{
    struct conn *c = conn_get(SELF(base));
    if (!c)
        return STORE_UNAVAILABLE;
    sqlite3_stmt *q = st(c, S_OUTBOX_FINISH);
    if (!q)
        return STORE_ERROR;
    bind_text(q, 1, id);
    bind_text(q, 2, store_mail_status_name(status));
    sqlite3_bind_int64(q, 3, attempts);
    sqlite3_bind_int64(q, 4, next_attempt_ms);
    bind_text(q, 5, error ? error : "");
    sqlite3_bind_int64(q, 6, now_ms);
    return map_rc(exec_done(c, q));
}

static enum store_rc sq_outbox_resolve(struct store *base, const struct store_mail *m)
{
    struct conn *c = conn_get(SELF(base));
    if (!c)
        return STORE_UNAVAILABLE;
    sqlite3_stmt *q = st(c, S_OUTBOX_RESOLVE);
    if (!q)
        return STORE_ERROR;
    bind_mail(q, m);
    enum store_rc rc = map_rc(exec_done(c, q));
    if (rc == STORE_OK && sqlite3_changes(c->db) == 0)
        rc = STORE_NOT_FOUND;
    return rc;
}

static enum store_rc sq_outbox_count(struct store *base, enum mail_status status, int64_t *ret_n)
{
    struct conn *c = conn_get(SELF(base));
    if (!c)
        return STORE_UNAVAILABLE;
    sqlite3_stmt *q = st(c, S_OUTBOX_COUNT);
    if (!q)
        return STORE_ERROR;
    bind_text(q, 1, store_mail_status_name(status));
    int rc = sqlite3_step(q);
    int64_t n = rc == SQLITE_ROW ? sqlite3_column_int64(q, 0) : 0;
    sqlite3_reset(q);
    if (rc != SQLITE_ROW)
        return map_rc(rc) == STORE_OK ? STORE_ERROR : map_rc(rc);
    *ret_n = n;
    return STORE_OK;
}

/* ---- second factors ---- */

/* Run a one-row-changing statement: NOT_FOUND when it changed nothing. */
static enum store_rc exec_changed(struct conn *c, sqlite3_stmt *q)
{
    enum store_rc rc = map_rc(exec_done(c, q));
    if (rc == STORE_OK && sqlite3_changes(c->db) == 0)
        return STORE_NOT_FOUND;
    return rc;
}

static enum store_rc sq_totp_get(struct store *base, const char *user_id, struct store_totp *ret)
{
    struct conn *c = conn_get(SELF(base));
    if (!c)
        return STORE_UNAVAILABLE;
    sqlite3_stmt *q = st(c, S_TOTP_GET);
    if (!q)
        return STORE_ERROR;
    bind_text(q, 1, user_id);
    int rc = sqlite3_step(q);
    if (rc != SQLITE_ROW) {
        sqlite3_reset(q);
        return rc == SQLITE_DONE ? STORE_NOT_FOUND
                                 : (map_rc(rc) == STORE_OK ? STORE_ERROR : map_rc(rc));
    }
    struct store_totp t = {0};
    copy_text(t.user_id, sizeof t.user_id, q, 0);
    copy_text(t.secret_hex, sizeof t.secret_hex, q, 1);
    t.confirmed = sqlite3_column_int(q, 2) != 0;
    t.last_step = sqlite3_column_int64(q, 3);
    t.created_at = sqlite3_column_int64(q, 4);
    t.codes_gen = sqlite3_column_int64(q, 5);
    sqlite3_reset(q);
    *ret = t;
    return STORE_OK;
}

static enum store_rc sq_totp_put(struct store *base, const struct store_totp *t)
{
    struct conn *c = conn_get(SELF(base));
    if (!c)
        return STORE_UNAVAILABLE;
    sqlite3_stmt *q = st(c, S_TOTP_PUT);
    if (!q)
        return STORE_ERROR;
    bind_text(q, 1, t->user_id);
    bind_text(q, 2, t->secret_hex);
    sqlite3_bind_int(q, 3, t->confirmed);
    sqlite3_bind_int64(q, 4, t->last_step);
    sqlite3_bind_int64(q, 5, t->created_at);
    return map_rc(exec_done(c, q));
}

static enum store_rc sq_totp_step(struct store *base, const char *user_id, int64_t step,
                                  bool confirm, const char *pending_secret_hex)
{
    struct conn *c = conn_get(SELF(base));
    if (!c)
        return STORE_UNAVAILABLE;
    sqlite3_stmt *q = st(c, S_TOTP_STEP);
    if (!q)
        return STORE_ERROR;
    bind_text(q, 1, user_id);
    sqlite3_bind_int64(q, 2, step);
    sqlite3_bind_int(q, 3, confirm);
    bind_text(q, 4, pending_secret_hex ? pending_secret_hex : "");
    return exec_changed(c, q);
}

static enum store_rc sq_totp_codes_bump(struct store *base, const char *user_id, int64_t gen)
{
    struct conn *c = conn_get(SELF(base));
    if (!c)
        return STORE_UNAVAILABLE;
    sqlite3_stmt *q = st(c, S_TOTP_CODES_BUMP);
    if (!q)
        return STORE_ERROR;
    bind_text(q, 1, user_id);
    sqlite3_bind_int64(q, 2, gen);
    return exec_changed(c, q);
}

/* The user's id in one statement's slot 1: DELETE ... WHERE user_id = ?1. */
static enum store_rc by_user(struct conn *c, enum stmt id, const char *user_id)
{
    sqlite3_stmt *q = st(c, id);
    if (!q)
        return STORE_ERROR;
    bind_text(q, 1, user_id);
    return map_rc(exec_done(c, q));
}

static enum store_rc sq_totp_delete(struct store *base, const char *user_id)
{
    struct conn *c = conn_get(SELF(base));
    if (!c)
        return STORE_UNAVAILABLE;
    enum store_rc rc = by_user(c, S_TOTP_DEL, user_id);
    return rc == STORE_OK ? by_user(c, S_RC_DEL, user_id) : rc;
}

static enum store_rc sq_recovery_codes_put(struct store *base, const char *user_id,
                                           const char (*hashes)[SHA256_HEX_LEN], int n)
{
    struct conn *c = conn_get(SELF(base));
    if (!c)
        return STORE_UNAVAILABLE;
    enum store_rc rc = by_user(c, S_RC_DEL, user_id);
    for (int i = 0; i < n && rc == STORE_OK; i++) {
        sqlite3_stmt *q = st(c, S_RC_INSERT);
        if (!q)
            return STORE_ERROR;
        bind_text(q, 1, user_id);
        bind_text(q, 2, hashes[i]);
        rc = map_rc(exec_done(c, q));
    }
    return rc;
}

static enum store_rc sq_recovery_code_use(struct store *base, const char *user_id,
                                          const char *hash, int64_t now)
{
    struct conn *c = conn_get(SELF(base));
    if (!c)
        return STORE_UNAVAILABLE;
    sqlite3_stmt *q = st(c, S_RC_USE);
    if (!q)
        return STORE_ERROR;
    bind_text(q, 1, user_id);
    bind_text(q, 2, hash);
    sqlite3_bind_int64(q, 3, now);
    return exec_changed(c, q);
}

static enum store_rc sq_recovery_codes_left(struct store *base, const char *user_id, int *ret_n)
{
    struct conn *c = conn_get(SELF(base));
    if (!c)
        return STORE_UNAVAILABLE;
    sqlite3_stmt *q = st(c, S_RC_LEFT);
    if (!q)
        return STORE_ERROR;
    bind_text(q, 1, user_id);
    int rc = sqlite3_step(q);
    int n = rc == SQLITE_ROW ? sqlite3_column_int(q, 0) : 0;
    sqlite3_reset(q);
    if (rc != SQLITE_ROW)
        return map_rc(rc) == STORE_OK ? STORE_ERROR : map_rc(rc);
    *ret_n = n;
    return STORE_OK;
}

static void passkey_from_row(sqlite3_stmt *q, struct store_passkey *p)
{
    copy_text(p->id, sizeof p->id, q, 0);
    copy_text(p->user_id, sizeof p->user_id, q, 1);
    copy_text(p->public_key_hex, sizeof p->public_key_hex, q, 2);
    p->alg = sqlite3_column_int(q, 3);
    p->sign_count = (uint32_t)sqlite3_column_int64(q, 4);
    copy_text(p->name, sizeof p->name, q, 5);
    p->backup_eligible = sqlite3_column_int(q, 6) != 0;
    p->created_at = sqlite3_column_int64(q, 7);
    p->last_used_at = sqlite3_column_int64(q, 8);
}

static enum store_rc sq_passkey_insert(struct store *base, const struct store_passkey *p, int max)
{
    struct conn *c = conn_get(SELF(base));
    if (!c)
        return STORE_UNAVAILABLE;
    sqlite3_stmt *q = st(c, S_PK_INSERT);
    if (!q)
        return STORE_ERROR;
    bind_text(q, 1, p->id);
    bind_text(q, 2, p->user_id);
    bind_text(q, 3, p->public_key_hex);
    sqlite3_bind_int(q, 4, p->alg);
    sqlite3_bind_int64(q, 5, p->sign_count);
    bind_text(q, 6, p->name);
    sqlite3_bind_int(q, 7, p->backup_eligible);
    sqlite3_bind_int64(q, 8, p->created_at);
    sqlite3_bind_int(q, 9, max);
    /* One statement: SQLite has one writer at a time, so the count and
     * the insert see the same rows. */
    enum store_rc rc = map_rc(exec_done(c, q));
    if (rc == STORE_OK && sqlite3_changes(c->db) == 0)
        return STORE_NOT_FOUND;
    return rc;
}

static enum store_rc sq_passkeys_list(struct store *base, const char *user_id,
                                      store_passkey_cb cb, void *ctx)
{
    struct conn *c = conn_get(SELF(base));
    if (!c)
        return STORE_UNAVAILABLE;
    sqlite3_stmt *q = st(c, S_PK_LIST);
    if (!q)
        return STORE_ERROR;
    bind_text(q, 1, user_id);
    int rc;
    while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
        struct store_passkey p = {0};
        passkey_from_row(q, &p);
        cb(ctx, &p);
    }
    sqlite3_reset(q);
    return rc == SQLITE_DONE ? STORE_OK : map_rc(rc);
}

static enum store_rc sq_passkey_get(struct store *base, const char *id, struct store_passkey *ret)
{
    struct conn *c = conn_get(SELF(base));
    if (!c)
        return STORE_UNAVAILABLE;
    sqlite3_stmt *q = st(c, S_PK_GET);
    if (!q)
        return STORE_ERROR;
    bind_text(q, 1, id);
    int rc = sqlite3_step(q);
    if (rc != SQLITE_ROW) {
        sqlite3_reset(q);
        return rc == SQLITE_DONE ? STORE_NOT_FOUND
                                 : (map_rc(rc) == STORE_OK ? STORE_ERROR : map_rc(rc));
    }
    passkey_from_row(q, ret);
    sqlite3_reset(q);
    return STORE_OK;
}

static enum store_rc sq_passkey_use(struct store *base, const char *id, uint32_t new_count,
                                    int64_t now)
{
    struct conn *c = conn_get(SELF(base));
    if (!c)
        return STORE_UNAVAILABLE;
    sqlite3_stmt *q = st(c, S_PK_USE);
    if (!q)
        return STORE_ERROR;
    bind_text(q, 1, id);
    sqlite3_bind_int64(q, 2, new_count);
    sqlite3_bind_int64(q, 3, now);
    return exec_changed(c, q);
}

static enum store_rc sq_passkey_delete(struct store *base, const char *user_id, const char *id)
{
    struct conn *c = conn_get(SELF(base));
    if (!c)
        return STORE_UNAVAILABLE;
    sqlite3_stmt *q = st(c, S_PK_DEL);
    if (!q)
        return STORE_ERROR;
    bind_text(q, 1, user_id);
    bind_text(q, 2, id);
    return exec_changed(c, q);
}

static enum store_rc sq_ephemeral_put(struct store *base, const struct store_ephemeral *e)
{
    struct conn *c = conn_get(SELF(base));
    if (!c)
        return STORE_UNAVAILABLE;
    sqlite3_stmt *q = st(c, S_EPH_PUT);
    if (!q)
        return STORE_ERROR;
    bind_text(q, 1, e->key);
    bind_text(q, 2, e->kind);
    bind_text(q, 3, e->user_id);
    bind_text(q, 4, e->value ? e->value : "{}");
    sqlite3_bind_int(q, 5, e->attempts);
    sqlite3_bind_int64(q, 6, e->expires_at);
    return map_rc(exec_done(c, q));
}

static enum store_rc sq_ephemeral_get(struct store *base, const char *key,
                                      struct store_ephemeral *ret)
{
    struct conn *c = conn_get(SELF(base));
    if (!c)
        return STORE_UNAVAILABLE;
    sqlite3_stmt *q = st(c, S_EPH_GET);
    if (!q)
        return STORE_ERROR;
    bind_text(q, 1, key);
    int rc = sqlite3_step(q);
    if (rc != SQLITE_ROW) {
        sqlite3_reset(q);
        return rc == SQLITE_DONE ? STORE_NOT_FOUND
                                 : (map_rc(rc) == STORE_OK ? STORE_ERROR : map_rc(rc));
    }
    struct store_ephemeral e;
    memset(&e, 0, sizeof e);
    copy_text(e.key, sizeof e.key, q, 0);
    copy_text(e.kind, sizeof e.kind, q, 1);
    copy_text(e.user_id, sizeof e.user_id, q, 2);
    e.value = dup_text(q, 3);
    e.attempts = sqlite3_column_int(q, 4);
    e.expires_at = sqlite3_column_int64(q, 5);
    sqlite3_reset(q);
    if (!e.value)
        return STORE_UNAVAILABLE;
    *ret = e;
    return STORE_OK;
}

static enum store_rc sq_ephemeral_attempt(struct store *base, const char *key, int *ret_attempts)
{
    struct conn *c = conn_get(SELF(base));
    if (!c)
        return STORE_UNAVAILABLE;
    sqlite3_stmt *q = st(c, S_EPH_ATTEMPT);
    if (!q)
        return STORE_ERROR;
    bind_text(q, 1, key);
    bool lock = !c->holds_wlock;
    if (lock)
        pthread_mutex_lock(&c->owner->wlock);
    int rc = sqlite3_step(q);
    int n = rc == SQLITE_ROW ? sqlite3_column_int(q, 0) : -1;
    if (rc == SQLITE_ROW)
        rc = sqlite3_step(q);
    sqlite3_reset(q);
    if (lock)
        pthread_mutex_unlock(&c->owner->wlock);
    if (rc != SQLITE_DONE)
        return map_rc(rc) == STORE_OK ? STORE_ERROR : map_rc(rc);
    if (n < 0)
        return STORE_NOT_FOUND;
    *ret_attempts = n;
    return STORE_OK;
}

static enum store_rc sq_ephemeral_delete(struct store *base, const char *key)
{
    struct conn *c = conn_get(SELF(base));
    if (!c)
        return STORE_UNAVAILABLE;
    sqlite3_stmt *q = st(c, S_EPH_DEL);
    if (!q)
        return STORE_ERROR;
    bind_text(q, 1, key);
    return exec_changed(c, q);
}

/* A local file is never "down" as a whole: a full disk fails writes, and
 * reads go on. */
static bool sq_healthy(struct store *base)
{
    (void)base;
    return true;
}

static const struct store_ops sqlite_ops = {
    .name = "sqlite",
    .close = sq_close,
    .migrate = sq_migrate,
    .schema_version = sq_schema_version,
    .ping = sq_ping,
    .healthy = sq_healthy,
    .tx_begin = sq_tx_begin,
    .tx_end = sq_tx_end,
    .user_insert = sq_user_insert,
    .user_by_name = sq_user_by_name,
    .user_by_id = sq_user_by_id,
    .user_by_email = sq_user_by_email,
    .user_update_email = sq_user_update_email,
    .user_update_hash = sq_user_update_hash,
    .user_update_disabled = sq_user_update_disabled,
    .user_delete_row = sq_user_delete_row,
    .user_lock = sq_user_lock,
    .user_list = sq_user_list,
    .session_insert = sq_session_insert,
    .session_list = sq_session_list,
    .session_lock = sq_session_lock,
    .session_rotate = sq_session_rotate,
    .session_revoke_rows = sq_session_revoke_rows,
    .revocations_since = sq_revocations_since,
    .prune_some = sq_prune_some,
    .secret_get_or_create = sq_secret_get_or_create,
    .keys_list = sq_keys_list,
    .key_insert_unless = sq_key_insert_unless,
    .key_promote = sq_key_promote,
    .key_retire = sq_key_retire,
    .key_retire_purge = sq_key_retire_purge,
    .keys_remove_expired = sq_keys_remove_expired,
    .counter_add = sq_counter_add,
    .login_attempt = sq_login_attempt,
    .login_get = sq_login_get,
    .login_reset = sq_login_reset,
    .login_refund = sq_login_refund,
    .email_token_put = sq_email_token_put,
    .email_token_by_hash = sq_email_token_by_hash,
    .email_token_by_user = sq_email_token_by_user,
    .email_token_attempt = sq_email_token_attempt,
    .email_token_delete = sq_email_token_delete,
    .outbox_insert = sq_outbox_insert,
    .outbox_claim = sq_outbox_claim,
    .outbox_finish = sq_outbox_finish,
    .outbox_resolve = sq_outbox_resolve,
    .outbox_count = sq_outbox_count,
    .totp_get = sq_totp_get,
    .totp_put = sq_totp_put,
    .totp_step = sq_totp_step,
    .totp_codes_bump = sq_totp_codes_bump,
    .totp_delete = sq_totp_delete,
    .recovery_codes_put = sq_recovery_codes_put,
    .recovery_code_use = sq_recovery_code_use,
    .recovery_codes_left = sq_recovery_codes_left,
    .passkey_insert = sq_passkey_insert,
    .passkeys_list = sq_passkeys_list,
    .passkey_get = sq_passkey_get,
    .passkey_use = sq_passkey_use,
    .passkey_delete = sq_passkey_delete,
    .ephemeral_put = sq_ephemeral_put,
    .ephemeral_get = sq_ephemeral_get,
    .ephemeral_attempt = sq_ephemeral_attempt,
    .ephemeral_delete = sq_ephemeral_delete,
};

/* The database holds private keys and password hashes: a new file is
 * created 0600 before SQLite opens it (its -wal and -shm files then get the
 * same mode), and an existing file or a directory others may write to is
 * reported. */
static enum store_rc prepare_file(struct sqlite_store *s, const char *path, bool must_exist,
                                  char *err, size_t errlen)
{
    if (strcmp(path, ":memory:") == 0)
        return STORE_OK;
    char dir[4096];
    const char *slash = strrchr(path, '/');
    if (!slash)
        snprintf(dir, sizeof dir, ".");
    else if (slash == path)
        snprintf(dir, sizeof dir, "/");
    else
        snprintf(dir, sizeof dir, "%.*s", (int)(slash - path), path);
    char msg[4400];
    struct stat sb;
    if (stat(path, &sb) == 0) {
        if (!S_ISREG(sb.st_mode)) {
            snprintf(err, errlen, "'%s' is not a regular file", path);
            return STORE_ERROR;
        }
        if (sb.st_mode & 077) {
            snprintf(msg, sizeof msg, "database file %s has mode %03o: other users may read "
                     "private keys and password hashes (chmod 600 it)", path,
                     (unsigned)(sb.st_mode & 0777));
            store_report(&s->base, STORE_EV_WARNING, msg);
        }
    } else if (errno != ENOENT) {
        snprintf(err, errlen, "cannot read '%s': %s", path, strerror(errno));
        return STORE_UNAVAILABLE;
    } else if (must_exist) {
        snprintf(err, errlen, "no database at '%s' (check JWTD_DATABASE)", path);
        return STORE_NOT_FOUND;
    } else {
        struct stat db;
        if (stat(dir, &db) != 0 || !S_ISDIR(db.st_mode)) {
            snprintf(err, errlen, "cannot create SQLite database '%s': directory '%s' does not exist",
                     path, dir);
            return STORE_UNAVAILABLE;
        }
        int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (fd < 0 && errno != EEXIST) {
            snprintf(err, errlen, "cannot create '%s': %s", path, strerror(errno));
            return STORE_UNAVAILABLE;
        }
        if (fd >= 0)
            close(fd);
    }
    struct stat db;
    if (stat(dir, &db) == 0 && (db.st_mode & S_IWOTH) && !(db.st_mode & S_ISVTX)) {
        snprintf(msg, sizeof msg, "directory %s of the database is writable by every user", dir);
        store_report(&s->base, STORE_EV_WARNING, msg);
    }
    return STORE_OK;
}

/* Why this process may not use an existing database file: SQLite's own
 * words ("attempt to write a readonly database", or none) do not say that
 * reading a WAL database needs write access to the file and to its
 * directory (the -shm and -wal files). Appended to err; nothing when the
 * permissions are not the cause. */
static void explain_access(const char *path, char *err, size_t errlen)
{
    if (strcmp(path, ":memory:") == 0)
        return;
    char dir[4096];
    const char *slash = strrchr(path, '/');
    snprintf(dir, sizeof dir, "%.*s", !slash ? 1 : slash == path ? 1 : (int)(slash - path),
             !slash ? "." : path);
    const char *what = access(path, R_OK) != 0   ? "read the file"
                       : access(path, W_OK) != 0 ? "write the file"
                       : access(dir, W_OK | X_OK) != 0 ? "create files in its directory"
                                                       : NULL;
    if (!what)
        return;
    bool wal = strcmp(what, "read the file") != 0;
    size_t n = strlen(err);
    if (n + 1 < errlen)
        snprintf(err + n, errlen - n, " (this user, uid %u, cannot %s%s; run the command as the "
                 "service's user, e.g. sudo -u jwtd)", (unsigned)geteuid(), what,
                 wal ? ": even reading needs write access to the file and its directory for "
                       "SQLite's -wal and -shm files" : "");
}

enum store_rc sqlite_store_open(const char *path, const struct store_options *opt,
                                struct store **ret, char *err, size_t errlen)
{
    if (!sqlite3_threadsafe()) {
        snprintf(err, errlen, "this SQLite library was built without thread support");
        return STORE_ERROR;
    }
    struct sqlite_store *s = calloc(1, sizeof *s);
    if (!s || !(s->path = strdup(path))) {
        free(s);
        snprintf(err, errlen, "out of memory");
        return STORE_ERROR;
    }
    s->base.ops = &sqlite_ops;
    s->sync_full = opt ? opt->sqlite_sync_full : true;
    s->must_exist = opt && opt->must_exist;
    s->busy_timeout_ms = opt && opt->timeout_ms > 0 ? opt->timeout_ms : STORE_DEFAULT_TIMEOUT_MS;
    if (opt) {
        s->base.on_event = opt->on_event;
        s->base.event_ctx = opt->event_ctx;
    }
    enum store_rc prc = prepare_file(s, path, s->must_exist, err, errlen);
    if (prc != STORE_OK) {
        free(s->path);
        free(s);
        return prc;
    }
    pthread_mutex_init(&s->lock, NULL);
    pthread_mutex_init(&s->wlock, NULL);
    if (pthread_key_create(&s->tls, NULL) != 0 ||
        pthread_key_create(&s->tls_counters, NULL) != 0) {
        pthread_mutex_destroy(&s->lock);
        free(s->path);
        free(s);
        snprintf(err, errlen, "out of thread-local keys");
        return STORE_ERROR;
    }
    /* Open this thread's connection now so that a bad path fails at start-up
     * with a clear reason rather than at the first request. */
    struct conn *c = conn_get(s);
    if (!c) {
        snprintf(err, errlen, "cannot open SQLite database '%s'", path);
        explain_access(path, err, errlen);
        sq_close(&s->base);
        return STORE_UNAVAILABLE;
    }
    int rc = sqlite3_exec(c->db, "SELECT count(*) FROM sqlite_master", NULL, NULL, NULL);
    if (rc != SQLITE_OK) {
        snprintf(err, errlen, "cannot read SQLite database '%s': %s", path, sqlite3_errmsg(c->db));
        explain_access(path, err, errlen);
        sq_close(&s->base);
        return STORE_UNAVAILABLE;
    }
    *ret = &s->base;
    return STORE_OK;
}
