/* SPDX-License-Identifier: Apache-2.0 */
/*
 * PostgreSQL backend of store.h, through libpq, for several jwtd instances
 * on one database. One connection per thread (opened on first use, reopened
 * after a failure, at most every 500 ms), every statement prepared once per
 * connection. Decisions are atomic across instances: the refresh rotation
 * locks the session row (SELECT ... FOR UPDATE), rate-limit counters are
 * single UPSERTs or locked rows, at most one current and one next key per
 * algorithm is enforced by a partial unique index, and migrations run under
 * an advisory lock so that instances starting together do not collide.
 *
 * A dead or unreachable database gives STORE_UNAVAILABLE (503 upstream);
 * a deadline on every round trip (JWTD_DB_TIMEOUT, also the session's
 * statement_timeout, lock_timeout and tcp_user_timeout) bounds how long a
 * request thread can wait on it. All SQL of this backend lives in this file.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>
#include <openssl/crypto.h>

#include "store/backends.h"
#include "store/store.h"

/* ------------------------------------------------------------ schema --- */

static const char *const migrations[] = {
    /* 1: users, sessions, revocations, keys, secrets, counters */
    "CREATE TABLE users ("
    "  id TEXT PRIMARY KEY,"
    "  username TEXT NOT NULL,"
    "  username_key TEXT NOT NULL UNIQUE,"
    "  password_hash TEXT NOT NULL,"
    "  created_at BIGINT NOT NULL,"
    "  updated_at BIGINT NOT NULL);"
    "CREATE TABLE sessions ("
    "  id TEXT PRIMARY KEY,"
    "  user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,"
    "  created_at BIGINT NOT NULL,"
    "  last_used_at BIGINT NOT NULL,"
    "  expires_at BIGINT NOT NULL,"
    "  refresh_gen BIGINT NOT NULL,"
    "  rotated_at_ms BIGINT NOT NULL,"
    "  revoked_at_ms BIGINT,"
    "  revoke_reason TEXT,"
    "  user_agent TEXT NOT NULL DEFAULT '',"
    "  client_addr TEXT NOT NULL DEFAULT '');"
    "CREATE INDEX sessions_user ON sessions(user_id);"
    "CREATE TABLE revocations ("
    "  session_id TEXT PRIMARY KEY,"
    "  revoked_at_ms BIGINT NOT NULL,"
    "  expires_at_ms BIGINT NOT NULL);"
    "CREATE INDEX revocations_time ON revocations(revoked_at_ms);"
    "CREATE TABLE signing_keys ("
    "  kid TEXT PRIMARY KEY,"
    "  alg TEXT NOT NULL,"
    "  state TEXT NOT NULL CHECK (state IN ('next','current','retired')),"
    "  private_key TEXT NOT NULL,"
    "  created_at BIGINT NOT NULL,"
    "  activate_at BIGINT NOT NULL,"
    "  retired_at BIGINT NOT NULL DEFAULT 0,"
    "  remove_at BIGINT NOT NULL DEFAULT 0);"
    "CREATE UNIQUE INDEX signing_keys_one_live ON signing_keys(alg, state)"
    "  WHERE state IN ('next', 'current');"
    "CREATE TABLE secrets ("
    "  name TEXT PRIMARY KEY,"
    "  value BYTEA NOT NULL,"
    "  created_at BIGINT NOT NULL);"
    "CREATE TABLE counters ("
    "  key TEXT PRIMARY KEY,"
    "  window_start BIGINT NOT NULL,"
    "  count BIGINT NOT NULL);"
    "CREATE TABLE login_failures ("
    "  key TEXT PRIMARY KEY,"
    "  failures BIGINT NOT NULL,"
    "  blocked_until BIGINT NOT NULL,"
    "  updated_at BIGINT NOT NULL);",
    /* 2: accounts an operator disabled */
    "ALTER TABLE users ADD COLUMN disabled_at BIGINT NOT NULL DEFAULT 0;"
    /* ... and login back-off in milliseconds (it was seconds) */
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
    "  created_at BIGINT NOT NULL,"
    "  expires_at BIGINT NOT NULL);"
    "CREATE UNIQUE INDEX email_tokens_user ON email_tokens(user_id, purpose);"
    "CREATE TABLE outbox ("
    "  id TEXT PRIMARY KEY,"
    "  kind TEXT NOT NULL,"
    "  user_id TEXT NOT NULL DEFAULT '',"
    "  to_addr TEXT NOT NULL DEFAULT '',"
    "  params TEXT NOT NULL DEFAULT '{}',"
    "  status TEXT NOT NULL,"
    "  attempts INTEGER NOT NULL DEFAULT 0,"
    "  next_attempt_ms BIGINT NOT NULL,"
    "  lease_until_ms BIGINT NOT NULL DEFAULT 0,"
    "  created_ms BIGINT NOT NULL,"
    "  give_up_ms BIGINT NOT NULL,"
    "  finished_ms BIGINT NOT NULL DEFAULT 0,"
    "  last_error TEXT NOT NULL DEFAULT '');"
    "CREATE INDEX outbox_due ON outbox(status, next_attempt_ms);"
    /* how each session signed in (the amr claim, kept across refreshes) */
    "ALTER TABLE sessions ADD COLUMN amr INTEGER NOT NULL DEFAULT 1;",
    /* 4: second factors (TOTP, recovery codes, passkeys) and short-lived state */
    "CREATE TABLE mfa_totp ("
    "  user_id TEXT PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,"
    "  secret TEXT NOT NULL,"
    "  confirmed INTEGER NOT NULL DEFAULT 0,"
    "  last_step BIGINT NOT NULL DEFAULT -1,"
    "  created_at BIGINT NOT NULL);"
    "CREATE TABLE recovery_codes ("
    "  user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,"
    "  code_hash TEXT NOT NULL,"
    "  used_at BIGINT NOT NULL DEFAULT 0,"
    "  PRIMARY KEY (user_id, code_hash));"
    "CREATE TABLE passkeys ("
    "  id TEXT PRIMARY KEY,"
    "  user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,"
    "  public_key TEXT NOT NULL,"
    "  alg INTEGER NOT NULL,"
    "  sign_count BIGINT NOT NULL,"
    "  name TEXT NOT NULL DEFAULT '',"
    "  backup_eligible INTEGER NOT NULL DEFAULT 0,"
    "  created_at BIGINT NOT NULL,"
    "  last_used_at BIGINT NOT NULL DEFAULT 0);"
    "CREATE INDEX passkeys_user ON passkeys(user_id);"
    "CREATE TABLE ephemeral ("
    "  key TEXT PRIMARY KEY,"
    "  kind TEXT NOT NULL,"
    "  user_id TEXT NOT NULL DEFAULT '',"
    "  value TEXT NOT NULL DEFAULT '{}',"
    "  attempts INTEGER NOT NULL DEFAULT 0,"
    "  expires_at BIGINT NOT NULL);",
    /* 5: one identifier names one account. Login takes a username or an
     * address, so no account's username may be another account's address.
     * Each is unique in its own column by an index; across the two columns
     * this trigger refuses the write with the index's own error (23505).
     * Under READ COMMITTED two transactions would not see each other's
     * uncommitted rows, so each first takes a transaction-long advisory
     * lock on every identifier it writes (in one order, no deadlock): the
     * second waits for the first to end, and its check, a new statement
     * with a new snapshot, then sees the first one's row. */
    "CREATE FUNCTION jwtd_one_identifier() RETURNS trigger LANGUAGE plpgsql AS $fn$"
    " DECLARE k TEXT;"
    " BEGIN"
    "  FOR k IN SELECT x FROM unnest(ARRAY["
    "      CASE WHEN TG_OP = 'INSERT' OR NEW.username_key IS DISTINCT FROM OLD.username_key"
    "           THEN NEW.username_key END,"
    "      CASE WHEN TG_OP = 'INSERT' OR NEW.email_key IS DISTINCT FROM OLD.email_key"
    "           THEN NEW.email_key END]) AS x"
    "    WHERE x IS NOT NULL ORDER BY hashtext(x), x LOOP"
    "   PERFORM pg_advisory_xact_lock(7274, hashtext(k));"
    "   IF k = NEW.username_key"
    "      AND EXISTS (SELECT 1 FROM users WHERE email_key = k AND id <> NEW.id)"
    "   OR k = NEW.email_key"
    "      AND EXISTS (SELECT 1 FROM users WHERE username_key = k AND id <> NEW.id) THEN"
    "    RAISE EXCEPTION 'identifier taken by another account' USING ERRCODE = 'unique_violation';"
    "   END IF;"
    "  END LOOP;"
    "  RETURN NEW;"
    " END $fn$;"
    "CREATE TRIGGER users_one_identifier BEFORE INSERT OR UPDATE OF username_key, email_key"
    " ON users FOR EACH ROW EXECUTE FUNCTION jwtd_one_identifier();",
    /* 6: recovery codes are renewed compare-and-set: two renewals at once
     * cannot both answer with codes when only one set is kept */
    "ALTER TABLE mfa_totp ADD COLUMN codes_gen BIGINT NOT NULL DEFAULT 0;",
    /* 7: the prune finds what is due by index, a batch at a time, instead
     * of scanning every table whole */
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

/* Any constant: the advisory lock that serializes migrations. */
#define MIGRATION_LOCK_ID 7274382501LL

/* -------------------------------------------------------- statements --- */

enum stmt {
    P_PING,
    P_USER_INSERT,
    P_USER_BY_KEY,
    P_USER_BY_ID,
    P_USER_SET_HASH,
    P_USER_SET_HASH_ANY,
    P_USER_SET_DISABLED,
    P_USER_BY_EMAIL,
    P_USER_SET_EMAIL,
    P_ETOK_PUT,
    P_ETOK_BY_HASH,
    P_ETOK_BY_USER,
    P_ETOK_ATTEMPT,
    P_ETOK_DELETE,
    P_ETOK_PRUNE,
    P_OUTBOX_INSERT,
    P_OUTBOX_CLAIM,
    P_OUTBOX_FINISH,
    P_OUTBOX_COUNT,
    P_OUTBOX_PRUNE,
    P_TOTP_GET,
    P_TOTP_PUT,
    P_TOTP_STEP,
    P_TOTP_DEL,
    P_TOTP_CODES_BUMP,
    P_RC_DEL,
    P_RC_INSERT,
    P_RC_USE,
    P_RC_LEFT,
    P_PK_INSERT,
    P_PK_LOCK_USER,
    P_PK_LIST,
    P_PK_GET,
    P_PK_USE,
    P_PK_DEL,
    P_EPH_PUT,
    P_EPH_GET,
    P_EPH_ATTEMPT,
    P_EPH_DEL,
    P_EPH_PRUNE,
    P_USER_DELETE,
    P_USER_LOCK,
    P_USER_LOCK_SHARE,
    P_OUTBOX_DROP_USER,
    P_OUTBOX_RESOLVE,
    P_USER_LIST,
    P_SESS_INSERT,
    P_SESS_GET_LOCK,
    P_SESS_LIST,
    P_SESS_ROTATE,
    P_SESS_REVOKE_ONE,
    P_SESS_REVOKE_USER,
    P_REV_SINCE,
    P_REV_PRUNE,
    P_SESS_PRUNE,
    P_SESS_REVOKED_PRUNE,
    P_COUNTERS_PRUNE,
    P_LOGIN_PRUNE,
    P_SECRET_INSERT,
    P_SECRET_GET,
    P_KEYS_LIST,
    P_KEY_INSERT,
    P_KEY_RETIRE_CURRENT,
    P_KEY_MAKE_CURRENT,
    P_KEY_RETIRE,
    P_KEYS_REMOVE,
    P_KEY_PURGE,
    P_COUNTER_ADD,
    P_LOGIN_ENSURE,
    P_LOGIN_GET_LOCK,
    P_LOGIN_GET,
    P_LOGIN_SET,
    P_LOGIN_RESET,
    P_LOGIN_REFUND,
    P_COUNT
};

static const char *const stmt_sql[P_COUNT] = {
    [P_PING] = "SELECT 1",
    [P_USER_INSERT] = "INSERT INTO users(id, username, username_key, password_hash, created_at,"
                      " updated_at, email, email_key, email_verified)"
                      " VALUES ($1, $2, $3, $4, $5, $5, $6, $6, $7)",
    [P_USER_BY_KEY] = "SELECT id, username, password_hash, created_at, disabled_at, COALESCE(email, ''),"
                      " email_verified, COALESCE(email_pending, '') FROM users WHERE username_key = $1",
    [P_USER_BY_ID] = "SELECT id, username, password_hash, created_at, disabled_at, COALESCE(email, ''),"
                      " email_verified, COALESCE(email_pending, '') FROM users WHERE id = $1",
    [P_USER_BY_EMAIL] = "SELECT id, username, password_hash, created_at, disabled_at, COALESCE(email, ''),"
                      " email_verified, COALESCE(email_pending, '') FROM users WHERE email_key = $1",
    [P_USER_SET_EMAIL] = "UPDATE users SET email = $2, email_key = $2, email_verified = $3,"
                         " email_pending = $4, updated_at = $5 WHERE id = $1",
    /* One statement: a delete then an insert let two puts at once (two
     * resend requests) collide on email_tokens_user. */
    [P_ETOK_PUT] = "INSERT INTO email_tokens(token_hash, user_id, purpose, email, code_hash,"
                   " attempts, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
                   " ON CONFLICT (user_id, purpose) DO UPDATE SET"
                   " token_hash = EXCLUDED.token_hash, email = EXCLUDED.email,"
                   " code_hash = EXCLUDED.code_hash, attempts = EXCLUDED.attempts,"
                   " created_at = EXCLUDED.created_at, expires_at = EXCLUDED.expires_at",
    [P_ETOK_BY_HASH] = "SELECT token_hash, user_id, purpose, email, code_hash, attempts,"
                       " created_at, expires_at FROM email_tokens WHERE token_hash = $1",
    [P_ETOK_BY_USER] = "SELECT token_hash, user_id, purpose, email, code_hash, attempts,"
                       " created_at, expires_at FROM email_tokens WHERE user_id = $1"
                       " AND purpose = $2",
    [P_ETOK_ATTEMPT] = "UPDATE email_tokens SET attempts = attempts + 1 WHERE user_id = $1"
                       " AND purpose = $2 RETURNING attempts",
    [P_ETOK_DELETE] = "DELETE FROM email_tokens WHERE user_id = $1 AND purpose = $2",
    [P_ETOK_PRUNE] = "DELETE FROM email_tokens WHERE token_hash IN (SELECT token_hash FROM"
                     " email_tokens WHERE expires_at < $1::bigint - 86400 LIMIT $2"
                     " FOR UPDATE SKIP LOCKED)",
    [P_OUTBOX_INSERT] = "INSERT INTO outbox(id, kind, user_id, to_addr, params, status, attempts,"
                        " next_attempt_ms, created_ms, give_up_ms)"
                        " VALUES ($1, $2, $3, $4, $5, 'queued', 0, $6, $7, $8)",
    /* SKIP LOCKED: instances claiming at once take different messages. */
    [P_OUTBOX_CLAIM] = "UPDATE outbox SET lease_until_ms = $2 WHERE id IN (SELECT id FROM outbox"
                       " WHERE status = 'queued' AND next_attempt_ms <= $1 AND lease_until_ms < $1"
                       " ORDER BY next_attempt_ms LIMIT $3 FOR UPDATE SKIP LOCKED)"
                       " RETURNING id, kind, user_id, to_addr, params, attempts, created_ms,"
                       " next_attempt_ms, give_up_ms",
    /* A finished message keeps no parameters: they held its secret. */
    [P_OUTBOX_FINISH] = "UPDATE outbox SET status = $2, attempts = $3, next_attempt_ms = $4,"
                        " last_error = $5, lease_until_ms = 0,"
                        " params = CASE WHEN $2 = 'queued' THEN params ELSE '{}' END,"
                        " finished_ms = CASE WHEN $2 = 'queued' THEN 0 ELSE $6::bigint END"
                        " WHERE id = $1",
    [P_OUTBOX_COUNT] = "SELECT count(*) FROM outbox WHERE status = $1",
    [P_OUTBOX_RESOLVE] = "UPDATE outbox SET kind = $2, user_id = $3, to_addr = $4, params = $5"
                         " WHERE id = $1 AND kind = 'forgot_password' AND status = 'queued'",
    [P_OUTBOX_PRUNE] = "DELETE FROM outbox WHERE id IN (SELECT id FROM outbox"
                       " WHERE status <> 'queued' AND finished_ms < ($1::bigint - 7 * 86400) * 1000"
                       " LIMIT $2 FOR UPDATE SKIP LOCKED)",
    [P_TOTP_GET] = "SELECT user_id, secret, confirmed, last_step, created_at, codes_gen FROM mfa_totp WHERE"
                   " user_id = $1",
    [P_TOTP_PUT] = "INSERT INTO mfa_totp(user_id, secret, confirmed, last_step, created_at) VALUES"
                   " ($1, $2, $3, $4, $5) ON CONFLICT (user_id) DO UPDATE SET secret ="
                   " excluded.secret, confirmed = excluded.confirmed, last_step ="
                   " excluded.last_step, created_at = excluded.created_at",
    /* A login's code needs a confirmed factor, a confirmation an
     * unconfirmed one (so that of two confirmations at once one wins). */
    [P_TOTP_STEP] = "UPDATE mfa_totp SET last_step = $2, confirmed = 1 WHERE user_id = $1 AND"
                    " last_step < $2 AND confirmed = 1 - $3::integer AND ($3::integer = 0 OR"
                    " secret = $4)",
    [P_TOTP_DEL] = "DELETE FROM mfa_totp WHERE user_id = $1",
    [P_TOTP_CODES_BUMP] = "UPDATE mfa_totp SET codes_gen = codes_gen + 1 WHERE user_id = $1 AND"
                          " confirmed = 1 AND codes_gen = $2",
    [P_RC_DEL] = "DELETE FROM recovery_codes WHERE user_id = $1",
    [P_RC_INSERT] = "INSERT INTO recovery_codes(user_id, code_hash) VALUES ($1, $2)",
    [P_RC_USE] = "UPDATE recovery_codes SET used_at = $3 WHERE user_id = $1 AND code_hash = $2 AND"
                 " used_at = 0",
    [P_RC_LEFT] = "SELECT count(*) FROM recovery_codes WHERE user_id = $1 AND used_at = 0",
    [P_PK_INSERT] = "INSERT INTO passkeys(id, user_id, public_key, alg, sign_count, name,"
                    " backup_eligible, created_at, last_used_at) SELECT $1, $2, $3, $4, $5, $6, $7,"
                    " $8, 0 WHERE (SELECT count(*) FROM passkeys WHERE user_id = $2) < $9",
    [P_PK_LOCK_USER] = "SELECT 1 FROM users WHERE id = $1 FOR UPDATE",
    [P_PK_LIST] = "SELECT id, user_id, public_key, alg, sign_count, name, backup_eligible,"
                  " created_at, last_used_at FROM passkeys WHERE user_id = $1 ORDER BY created_at,"
                  " id",
    [P_PK_GET] = "SELECT id, user_id, public_key, alg, sign_count, name, backup_eligible,"
                 " created_at, last_used_at FROM passkeys WHERE id = $1",
    [P_PK_USE] = "UPDATE passkeys SET sign_count = $2, last_used_at = $3 WHERE id = $1 AND"
                 " (sign_count < $2 OR (sign_count = 0 AND $2 = 0))",
    [P_PK_DEL] = "DELETE FROM passkeys WHERE user_id = $1 AND id = $2",
    [P_EPH_PUT] = "INSERT INTO ephemeral(key, kind, user_id, value, attempts, expires_at) VALUES"
                  " ($1, $2, $3, $4, $5, $6) ON CONFLICT (key) DO UPDATE SET kind = excluded.kind,"
                  " user_id = excluded.user_id, value = excluded.value, attempts ="
                  " excluded.attempts, expires_at = excluded.expires_at",
    /* FOR UPDATE: a take (get, then delete, in one transaction) must hold
     * what it read. Without it, a take that read a ticket, then deleted
     * the row another request had meanwhile taken and put back with one
     * more try, held the old count: a sixth wrong code got checked (seen
     * in the e2e suite: 30 codes sent at once). */
    [P_EPH_GET] = "SELECT key, kind, user_id, value, attempts, expires_at FROM ephemeral WHERE key"
                  " = $1 FOR UPDATE",
    [P_EPH_ATTEMPT] = "UPDATE ephemeral SET attempts = attempts + 1 WHERE key = $1 RETURNING attempts",
    [P_EPH_DEL] = "DELETE FROM ephemeral WHERE key = $1",
    [P_EPH_PRUNE] = "DELETE FROM ephemeral WHERE key IN (SELECT key FROM ephemeral"
                    " WHERE expires_at < $1::bigint - 3600 LIMIT $2 FOR UPDATE SKIP LOCKED)",
    [P_USER_SET_HASH] = "UPDATE users SET password_hash = $2, updated_at = $4"
                        " WHERE id = $1 AND password_hash = $3",
    [P_USER_SET_HASH_ANY] = "UPDATE users SET password_hash = $2, updated_at = $3 WHERE id = $1",
    [P_USER_SET_DISABLED] = "UPDATE users SET disabled_at = CASE WHEN $2::bigint <> 0 AND disabled_at <> 0"
                           " THEN disabled_at ELSE $2::bigint END, updated_at = $3 WHERE id = $1",
    [P_USER_DELETE] = "DELETE FROM users WHERE id = $1",
    /* NO KEY UPDATE, not UPDATE: it must not block the foreign-key
     * checks of rows inserted for the user meanwhile (a reset token put by
     * the mail worker), which take KEY SHARE, or the two deadlock. It still
     * conflicts with the SHARE of a session being opened. */
    [P_USER_LOCK] = "SELECT 1 FROM users WHERE id = $1 AND ($2::text IS NULL OR password_hash = $2)"
                    " FOR NO KEY UPDATE",
    [P_USER_LOCK_SHARE] = "SELECT 1 FROM users WHERE id = $1 AND ($2::text IS NULL OR"
                          " password_hash = $2) AND disabled_at = 0 FOR SHARE",
    [P_OUTBOX_DROP_USER] = "DELETE FROM outbox WHERE user_id = $1 AND status = 'queued' AND kind"
                           " IN ('verify_email', 'reset_password', 'forgot_password')",
    [P_USER_LIST] = "SELECT id, username, password_hash, created_at, disabled_at, COALESCE(email, ''),"
                      " email_verified, COALESCE(email_pending, '') FROM users"
                    " ORDER BY created_at, id",
    [P_SESS_INSERT] = "INSERT INTO sessions(id, user_id, created_at, last_used_at, expires_at,"
                      " refresh_gen, rotated_at_ms, user_agent, client_addr, amr)"
                      " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    [P_SESS_GET_LOCK] = "SELECT s.user_id, s.created_at, s.last_used_at, s.expires_at,"
                        " s.refresh_gen, s.rotated_at_ms, COALESCE(s.revoked_at_ms, 0),"
                        " s.user_agent, s.client_addr, u.username, u.created_at, u.disabled_at,"
                        " COALESCE(u.email, ''), u.email_verified, s.amr"
                        " FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.id = $1"
                        " FOR UPDATE OF s",
    [P_SESS_LIST] = "SELECT id, created_at, last_used_at, expires_at, refresh_gen,"
                    " rotated_at_ms, user_agent, client_addr FROM sessions"
                    " WHERE user_id = $1 AND revoked_at_ms IS NULL AND expires_at > $2"
                    " AND last_used_at + $3::bigint > $2 ORDER BY created_at DESC, id DESC",
    [P_SESS_ROTATE] = "UPDATE sessions SET refresh_gen = $2, rotated_at_ms = $3,"
                      " last_used_at = $4 WHERE id = $1",
    /* The session rows are marked first and fed from what was marked, in
     * one statement: every writer locks a session's row before it writes
     * the session's revocation row. (Feeding first let a password change
     * insert the feed row of a session whose row a refresh held, while the
     * refresh, revoking that session for reuse, waited on the same feed
     * row: a deadlock.) The count is the sessions marked. */
#define FEED_MARKED                                                                                \
    " RETURNING id) INSERT INTO revocations(session_id, revoked_at_ms, expires_at_ms)"            \
    " SELECT id, $3, $5 FROM marked ON CONFLICT (session_id) DO UPDATE SET"                      \
    " revoked_at_ms = EXCLUDED.revoked_at_ms, expires_at_ms = EXCLUDED.expires_at_ms"
    [P_SESS_REVOKE_ONE] = "WITH marked AS (UPDATE sessions SET revoked_at_ms = $3,"
                          " revoke_reason = $4 WHERE id = $1"
                          " AND ($2::text IS NULL OR user_id = $2) AND revoked_at_ms IS NULL"
                          FEED_MARKED,
    [P_SESS_REVOKE_USER] = "WITH marked AS (UPDATE sessions SET revoked_at_ms = $3,"
                           " revoke_reason = $4 WHERE user_id = $1"
                           " AND ($2::text IS NULL OR id <> $2) AND revoked_at_ms IS NULL"
                           FEED_MARKED,
#undef FEED_MARKED
    [P_REV_SINCE] = "SELECT session_id, revoked_at_ms, expires_at_ms FROM revocations"
                    " WHERE revoked_at_ms >= $1",
    /* Each prune statement removes at most $2 rows (one short statement
     * within the deadline whatever the backlog); SKIP LOCKED: instances
     * pruning at once take different rows, and a row a request holds is
     * left for the next pass rather than waited for. */
    [P_REV_PRUNE] = "DELETE FROM revocations WHERE session_id IN (SELECT session_id FROM"
                    " revocations WHERE expires_at_ms < $1 LIMIT $2 FOR UPDATE SKIP LOCKED)",
    /* Parameters in arithmetic are cast: PostgreSQL would type them int4
     * from the literals, and seconds * 1000 overflows that. */
    [P_SESS_PRUNE] = "DELETE FROM sessions WHERE id IN (SELECT id FROM sessions"
                     " WHERE expires_at < $1::bigint - 86400 LIMIT $2 FOR UPDATE SKIP LOCKED)",
    [P_SESS_REVOKED_PRUNE] = "DELETE FROM sessions WHERE id IN (SELECT id FROM sessions"
                             " WHERE revoked_at_ms < ($1::bigint - 86400) * 1000 LIMIT $2"
                             " FOR UPDATE SKIP LOCKED)",
    [P_COUNTERS_PRUNE] = "DELETE FROM counters WHERE key IN (SELECT key FROM counters"
                         " WHERE window_start < $1::bigint - 86400 LIMIT $2 FOR UPDATE SKIP LOCKED)",
    [P_LOGIN_PRUNE] = "DELETE FROM login_failures WHERE key IN (SELECT key FROM login_failures"
                      " WHERE updated_at < $1::bigint - 86400 AND blocked_until < $1::bigint * 1000"
                      " LIMIT $2 FOR UPDATE SKIP LOCKED)",
    [P_SECRET_INSERT] = "INSERT INTO secrets(name, value, created_at) VALUES ($1, $2, $3)"
                        " ON CONFLICT (name) DO NOTHING",
    [P_SECRET_GET] = "SELECT value FROM secrets WHERE name = $1",
    [P_KEYS_LIST] = "SELECT kid, alg, state, private_key, created_at, activate_at, retired_at,"
                    " remove_at FROM signing_keys ORDER BY created_at, kid",
    [P_KEY_INSERT] = "INSERT INTO signing_keys(kid, alg, state, private_key, created_at,"
                     " activate_at) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
    [P_KEY_RETIRE_CURRENT] = "UPDATE signing_keys SET state = 'retired', retired_at = $2,"
                             " remove_at = $3 WHERE kid = $1 AND state = 'current'",
    [P_KEY_MAKE_CURRENT] = "UPDATE signing_keys SET state = 'current', activate_at = $2"
                           " WHERE kid = $1 AND state = 'next'",
    [P_KEY_RETIRE] = "UPDATE signing_keys SET state = 'retired', retired_at = $2,"
                     " remove_at = $3 WHERE kid = $1 AND state <> 'retired'",
    [P_KEY_PURGE] = "UPDATE signing_keys SET remove_at = $2 WHERE kid = $1 AND state = 'retired'",
    [P_KEYS_REMOVE] = "DELETE FROM signing_keys WHERE state = 'retired' AND remove_at <= $1",
    /* Never below zero: a refund that lands in a new window (or after the
     * row was pruned) must not give an extra attempt. */
    [P_COUNTER_ADD] = "INSERT INTO counters AS c(key, window_start, count)"
                      " VALUES ($1, $2, GREATEST($4::bigint, 0))"
                      " ON CONFLICT (key) DO UPDATE SET"
                      " count = CASE WHEN c.window_start <= $2::bigint - $3::bigint"
                      " THEN GREATEST($4::bigint, 0)"
                      " ELSE GREATEST(c.count + $4::bigint, 0) END,"
                      " window_start = CASE WHEN c.window_start <= $2::bigint - $3::bigint"
                      " THEN $2"
                      " ELSE c.window_start END RETURNING count, window_start",
    [P_LOGIN_ENSURE] = "INSERT INTO login_failures(key, failures, blocked_until, updated_at)"
                       " VALUES ($1, 0, 0, $2) ON CONFLICT (key) DO NOTHING",
    [P_LOGIN_GET_LOCK] = "SELECT failures, blocked_until FROM login_failures WHERE key = $1"
                         " FOR UPDATE",
    [P_LOGIN_GET] = "SELECT failures, blocked_until FROM login_failures WHERE key = $1",
    [P_LOGIN_SET] = "UPDATE login_failures SET failures = $2, blocked_until = $3,"
                    " updated_at = $4 WHERE key = $1",
    [P_LOGIN_RESET] = "DELETE FROM login_failures WHERE key = $1",
    [P_LOGIN_REFUND] = "UPDATE login_failures SET failures = failures - 1,"
                       " blocked_until = CASE WHEN failures - 1 < $2"
                       " OR ($3::bigint > 0 AND blocked_until = $3::bigint)"
                       " THEN 0 ELSE blocked_until END"
                       " WHERE key = $1 AND failures > 0",
};

/* ------------------------------------------------------ connections --- */

struct pg_store;

struct pconn {
    struct pg_store *owner;
    PGconn *pg;
    bool prepared[P_COUNT]; /* prepared lazily: tables may not exist before migrating */
    int64_t last_attempt_ms;
    uint64_t epoch; /* the store's outage count when this connection was made */
    struct pconn *next;
};

struct pg_store {
    struct store base;
    char *url;
    pthread_key_t tls;
    pthread_mutex_t lock; /* guards `conns` */
    struct pconn *conns;
    /* Circuit breaker: set when a connection fails or a query misses its
     * deadline, cleared by a successful ping (the background thread pings
     * every second). While set, operations fail at once: during an outage,
     * requests get their 503 in microseconds instead of after timeouts. */
    atomic_bool down;
    /* Outages declared so far. A connection made before the last one is
     * presumed dead (a database that went away closed it, though libpq does
     * not know until it is used): it is replaced before its next use, so
     * that the first requests after a recovery do not each fail once and
     * trip the breaker again. */
    atomic_uint_fast64_t epoch;
    int timeout_ms; /* round-trip deadline; a little more than statement_timeout and lock_timeout */
};

#define SELF(b) ((struct pg_store *)(b))

/* Every round trip has a deadline on this side too (pg_store.timeout_ms,
 * JWTD_DB_TIMEOUT): the server's statement_timeout cannot help when the
 * server itself is frozen (a stopped process still has its kernel
 * acknowledge our packets, so TCP timeouts do not fire either). */
#define MIGRATION_DEADLINE_MS 120000

static void notice_to_owner(void *arg, const char *message)
{
    char line[256];
    snprintf(line, sizeof line, "%s", message);
    line[strcspn(line, "\r\n")] = '\0';
    store_report(arg, STORE_EV_NOTICE, line);
}

/* Wait until the socket is ready for `events` or the deadline passes. */
static bool wait_socket(PGconn *pg, short events, int64_t deadline_ms)
{
    int64_t left = deadline_ms - util_mono_ms();
    if (left <= 0)
        return false;
    struct pollfd pfd = {.fd = PQsocket(pg), .events = events};
    int n;
    do
        n = poll(&pfd, 1, (int)left);
    while (n < 0 && errno == EINTR);
    return n > 0;
}

/*
 * Collect the result of a command sent with PQsend*: the last result
 * (libpq may return several for a multi-statement string), or NULL when the
 * deadline passed or the connection broke.
 */
static PGresult *await_result(PGconn *pg, int64_t deadline_ms)
{
    /* Non-blocking mode: flush what is left of the command first. */
    int f;
    while ((f = PQflush(pg)) == 1)
        if (!wait_socket(pg, POLLOUT | POLLIN, deadline_ms))
            return NULL;
    if (f < 0)
        return NULL;
    PGresult *last = NULL;
    for (;;) {
        while (PQisBusy(pg)) {
            if (!wait_socket(pg, POLLIN, deadline_ms) || !PQconsumeInput(pg)) {
                PQclear(last);
                return NULL;
            }
        }
        PGresult *r = PQgetResult(pg);
        if (!r)
            return last;
        PQclear(last);
        last = r;
    }
}

/* The session settings that bound a statement, a lock wait and an open
 * transaction by the store's timeout (JWTD_DB_TIMEOUT). The server's own
 * limits end a little before this side's deadline (which also counts the
 * round trip): a long lock wait then ends as one statement's temporary
 * error, on a connection that stays usable, instead of a missed deadline
 * that drops the connection and fails the whole instance fast until the
 * next ping. */
static void timeouts_sql(const struct pg_store *s, char *out, size_t outlen)
{
    int t = s->timeout_ms;
    int margin = t / 4 < 250 ? t / 4 : 250;
    snprintf(out, outlen,
             "SET statement_timeout = %d; SET lock_timeout = %d;"
             " SET idle_in_transaction_session_timeout = %d",
             t - margin, t - margin, 2 * t);
}

static PGconn *connect_db(struct pg_store *owner, const char *url)
{
    /* Later keywords override earlier ones, and the URL (expanded from
     * dbname) comes last: an operator's own settings in the URL win. */
    const char *keys[] = {"connect_timeout", "application_name", "keepalives",
                          "keepalives_idle", "keepalives_interval", "keepalives_count",
                          "tcp_user_timeout", "dbname", NULL};
    char user_timeout[16];
    snprintf(user_timeout, sizeof user_timeout, "%d", owner->timeout_ms);
    const char *vals[] = {"3", "jwtd", "1", "5", "2", "3", user_timeout, url, NULL};
    PGconn *pg = PQconnectdbParams(keys, vals, 1);
    if (!pg)
        return NULL;
    if (PQstatus(pg) != CONNECTION_OK || PQsetnonblocking(pg, 1) != 0) {
        /* libpq's message names host and port; a URL it cannot parse it
         * quotes whole, password included: never passed on as it is. */
        char line[200], safe[180];
        util_redact_text(PQerrorMessage(pg), url, safe, sizeof safe);
        snprintf(line, sizeof line, "cannot connect: %s", safe);
        line[strcspn(line, "\r\n")] = '\0';
        store_report(&owner->base, STORE_EV_DOWN, line);
        PQfinish(pg);
        return NULL;
    }
    PQsetNoticeProcessor(pg, notice_to_owner, &owner->base);
    /* A stuck statement (lock wait on a sick database) must not hold a
     * thread: the server gives up too. */
    PGresult *res = NULL;
    char set[160];
    timeouts_sql(owner, set, sizeof set);
    if (PQsendQuery(pg, set))
        res = await_result(pg, util_mono_ms() + owner->timeout_ms);
    bool ok = res && PQresultStatus(res) == PGRES_COMMAND_OK;
    PQclear(res);
    if (!ok) {
        PQfinish(pg);
        return NULL;
    }
    return pg;
}

/* Open the circuit breaker; true when it was closed (a new outage, which
 * makes every connection opened so far one to replace). */
static bool breaker_open(struct pg_store *s)
{
    if (atomic_exchange(&s->down, true))
        return false;
    atomic_fetch_add(&s->epoch, 1);
    return true;
}

/* This thread's live connection, or NULL (storage unavailable). Only a
 * probe tries while the database is believed down. */
static struct pconn *conn_get_probe(struct pg_store *s, bool probe)
{
    if (!probe && atomic_load(&s->down))
        return NULL;
    struct pconn *c = pthread_getspecific(s->tls);
    if (!c) {
        c = calloc(1, sizeof *c);
        if (!c)
            return NULL;
        c->owner = s;
        pthread_mutex_lock(&s->lock);
        c->next = s->conns;
        s->conns = c;
        pthread_mutex_unlock(&s->lock);
        pthread_setspecific(s->tls, c);
    }
    if (c->pg && PQstatus(c->pg) == CONNECTION_OK) {
        /* Never replaced inside a transaction: there it fails on its own. */
        if (c->epoch == atomic_load(&s->epoch) || PQtransactionStatus(c->pg) != PQTRANS_IDLE)
            return c;
        /* From before the last outage: replace it now, without waiting. */
        PQfinish(c->pg);
        c->pg = NULL;
        c->last_attempt_ms = 0;
    }
    /* (Re)connect, but not in a tight loop against a dead server. */
    int64_t now = util_mono_ms();
    if (c->last_attempt_ms && now - c->last_attempt_ms < 500)
        return NULL;
    c->last_attempt_ms = now;
    if (c->pg) {
        PQfinish(c->pg);
        c->pg = NULL;
    }
    memset(c->prepared, 0, sizeof c->prepared);
    c->epoch = atomic_load(&s->epoch);
    c->pg = connect_db(s, s->url);
    if (!c->pg) {
        breaker_open(s);
        return NULL;
    }
    c->last_attempt_ms = 0;
    return c;
}

static struct pconn *conn_get(struct pg_store *s)
{
    return conn_get_probe(s, false);
}

/* A connection that missed a deadline or broke is dropped: a late answer
 * must never be read as the answer to the next command. */
static void drop_conn(struct pconn *c)
{
    if (breaker_open(c->owner))
        store_report(&c->owner->base, STORE_EV_DOWN, "failing fast until a ping succeeds");
    if (c->pg) {
        PQfinish(c->pg);
        c->pg = NULL;
    }
    memset(c->prepared, 0, sizeof c->prepared);
}

static enum store_rc map_result(struct pconn *c, PGresult *res)
{
    if (!res) {
        drop_conn(c);
        return STORE_UNAVAILABLE;
    }
    ExecStatusType st = PQresultStatus(res);
    if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK)
        return STORE_OK;
    const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
    if (PQstatus(c->pg) != CONNECTION_OK || !state) {
        drop_conn(c);
        return STORE_UNAVAILABLE;
    }
    if (strcmp(state, "23505") == 0 || strcmp(state, "23503") == 0)
        return STORE_CONFLICT;
    /* connection (08), resources (53), operator intervention (57), read-only
     * transaction (25006), serialization/deadlock (40), lock timeout (55P03),
     * statement timeout (57014 is in 57): temporary. */
    if (strncmp(state, "08", 2) == 0 || strncmp(state, "53", 2) == 0 ||
        strncmp(state, "57", 2) == 0 || strncmp(state, "40", 2) == 0 ||
        strcmp(state, "25006") == 0 || strcmp(state, "55P03") == 0 ||
        strcmp(state, "58030") == 0)
        return STORE_UNAVAILABLE;
    char detail[256];
    const char *msg = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
    snprintf(detail, sizeof detail, "sqlstate %s: %s", state, msg ? msg : "");
    store_report(&c->owner->base, STORE_EV_ERROR, detail);
    return STORE_ERROR;
}

/* Parameters as text; NULL entries are SQL NULL. */
struct params {
    const char *v[10];
    int n;
    char nums[10][24];
};

static void p_str(struct params *p, const char *s)
{
    p->v[p->n++] = s;
}

static void p_int(struct params *p, int64_t x)
{
    snprintf(p->nums[p->n], sizeof p->nums[p->n], "%lld", (long long)x);
    p->v[p->n] = p->nums[p->n];
    p->n++;
}

/* Run a prepared statement; *ret_res is set (caller PQclear) when OK. */
static enum store_rc run(struct pconn *c, enum stmt id, const struct params *p,
                         PGresult **ret_res)
{
    if (!c->pg)
        return STORE_UNAVAILABLE;
    char name[16];
    snprintf(name, sizeof name, "j%d", (int)id);
    int64_t deadline = util_mono_ms() + c->owner->timeout_ms;
    if (!c->prepared[id]) {
        PGresult *pres = PQsendPrepare(c->pg, name, stmt_sql[id], 0, NULL)
                             ? await_result(c->pg, deadline)
                             : NULL;
        enum store_rc prc = map_result(c, pres);
        PQclear(pres);
        if (prc != STORE_OK || !c->pg)
            return prc != STORE_OK ? prc : STORE_UNAVAILABLE;
        c->prepared[id] = true;
    }
    PGresult *res = PQsendQueryPrepared(c->pg, name, p ? p->n : 0, p ? p->v : NULL, NULL, NULL, 0)
                        ? await_result(c->pg, deadline)
                        : NULL;
    enum store_rc rc = map_result(c, res);
    if (rc == STORE_OK && ret_res)
        *ret_res = res;
    else
        PQclear(res);
    return rc;
}

/* Run a statement that changes rows; *ret_rows = affected rows. */
static enum store_rc run_count(struct pconn *c, enum stmt id, const struct params *p,
                               int *ret_rows)
{
    PGresult *res = NULL;
    enum store_rc rc = run(c, id, p, &res);
    if (rc == STORE_OK && ret_rows)
        *ret_rows = atoi(PQcmdTuples(res));
    PQclear(res);
    return rc;
}

static enum store_rc simple_deadline(struct pconn *c, const char *sql, int64_t ms,
                                     PGresult **ret_res)
{
    if (!c->pg)
        return STORE_UNAVAILABLE;
    PGresult *res = PQsendQuery(c->pg, sql) ? await_result(c->pg, util_mono_ms() + ms) : NULL;
    enum store_rc rc = map_result(c, res);
    if (rc == STORE_OK && ret_res)
        *ret_res = res;
    else
        PQclear(res);
    return rc;
}

static enum store_rc simple(struct pconn *c, const char *sql)
{
    return simple_deadline(c, sql, c->owner->timeout_ms, NULL);
}

static enum store_rc begin(struct pconn *c)
{
    return simple(c, "BEGIN");
}

static enum store_rc finish(struct pconn *c, enum store_rc rc)
{
    if (rc == STORE_OK || rc == STORE_NOT_FOUND) {
        enum store_rc crc = simple(c, "COMMIT");
        return crc == STORE_OK ? rc : crc;
    }
    if (c->pg && PQstatus(c->pg) == CONNECTION_OK)
        simple(c, "ROLLBACK");
    return rc;
}

static int64_t col_int(PGresult *res, int row, int col)
{
    return PQgetisnull(res, row, col) ? 0 : strtoll(PQgetvalue(res, row, col), NULL, 10);
}

static void col_copy(char *dst, size_t cap, PGresult *res, int row, int col)
{
    snprintf(dst, cap, "%s", PQgetisnull(res, row, col) ? "" : PQgetvalue(res, row, col));
}

/* -------------------------------------------------------------- ops --- */

static void pg_close(struct store *base)
{
    struct pg_store *s = SELF(base);
    struct pconn *c = s->conns;
    while (c) {
        struct pconn *n = c->next;
        if (c->pg)
            PQfinish(c->pg);
        free(c);
        c = n;
    }
    pthread_key_delete(s->tls);
    pthread_mutex_destroy(&s->lock);
    free(s->url);
    free(s);
}

/* A statement of a migration: bound by the migration deadline, not by
 * JWTD_DB_TIMEOUT (a first migration's fsyncs took 5 s on a busy disk). */
static enum store_rc migration_step(struct pconn *c, const char *sql, PGresult **ret_res)
{
    return simple_deadline(c, sql, MIGRATION_DEADLINE_MS, ret_res);
}

static enum store_rc pg_migrate(struct store *base, int *ret_from)
{
    struct pconn *c = conn_get(SELF(base));
    if (!c)
        return STORE_UNAVAILABLE;
    /* Another instance may be migrating: wait for its advisory lock as long
     * as a migration may take, without the per-request timeouts. */
    enum store_rc rc = simple(c, "SET statement_timeout = 0; SET lock_timeout = 0;"
                                 " SET idle_in_transaction_session_timeout = 0");
    char sql[128];
    snprintf(sql, sizeof sql, "SELECT pg_advisory_lock(%lld)", MIGRATION_LOCK_ID);
    if (rc == STORE_OK)
        rc = migration_step(c, sql, NULL);
    if (rc != STORE_OK)
        return rc;
    rc = migration_step(c, "CREATE TABLE IF NOT EXISTS schema_migrations ("
                           " version INTEGER PRIMARY KEY, applied_at BIGINT NOT NULL)", NULL);
    int current = 0;
    if (rc == STORE_OK) {
        PGresult *res = NULL;
        rc = migration_step(c, "SELECT COALESCE(MAX(version), 0) FROM schema_migrations", &res);
        if (rc == STORE_OK)
            current = (int)col_int(res, 0, 0);
        PQclear(res);
    }
    if (ret_from)
        *ret_from = current;
    if (rc == STORE_OK && current > N_MIGRATIONS)
        rc = STORE_ERROR; /* written by a newer jwtd */
    for (int v = current + 1; rc == STORE_OK && v <= N_MIGRATIONS; v++) {
        rc = migration_step(c, "BEGIN", NULL);
        if (rc != STORE_OK)
            break;
        rc = migration_step(c, migrations[v - 1], NULL);
        if (rc == STORE_OK) {
            char ins[128];
            snprintf(ins, sizeof ins,
                     "INSERT INTO schema_migrations(version, applied_at) VALUES (%d, %lld)", v,
                     (long long)util_now());
            rc = migration_step(c, ins, NULL);
        }
        if (rc == STORE_OK)
            rc = migration_step(c, "COMMIT", NULL);
        else if (c->pg && PQstatus(c->pg) == CONNECTION_OK)
            simple(c, "ROLLBACK");
        if (rc == STORE_CONFLICT)
            rc = STORE_ERROR;
    }
    if (c->pg) {
        snprintf(sql, sizeof sql, "SELECT pg_advisory_unlock(%lld)", MIGRATION_LOCK_ID);
        simple(c, sql);
        char set[160];
        timeouts_sql(c->owner, set, sizeof set);
        simple(c, set);
    }
    return rc;
}

static enum store_rc pg_schema_version(struct store *base, int *ret_current, int *ret_latest)
{
    struct pconn *c = conn_get(SELF(base));
    if (!c)
        return STORE_UNAVAILABLE;
    PGresult *res = NULL;
    enum store_rc rc = simple_deadline(
        c, "SELECT to_regclass('schema_migrations') IS NOT NULL", c->owner->timeout_ms, &res);
    bool exists = rc == STORE_OK && PQntuples(res) == 1 && strcmp(PQgetvalue(res, 0, 0), "t") == 0;
    PQclear(res);
    if (rc != STORE_OK)
        return rc;
    int current = 0;
    if (exists) {
        res = NULL;
        rc = simple_deadline(c, "SELECT COALESCE(MAX(version), 0) FROM schema_migrations",
                             c->owner->timeout_ms, &res);
        if (rc == STORE_OK)
            current = (int)col_int(res, 0, 0);
        PQclear(res);
        if (rc != STORE_OK)
            return rc;
    }
    *ret_current = current;
    *ret_latest = N_MIGRATIONS;
    return STORE_OK;
}

static enum store_rc pg_ping(struct store *base)
{
    struct pg_store *s = SELF(base);
    struct pconn *c = conn_get_probe(s, true);
    if (!c)
        return STORE_UNAVAILABLE;
    enum store_rc rc = run(c, P_PING, NULL, NULL);
    if (rc == STORE_OK && atomic_exchange(&s->down, false))
        store_report(&s->base, STORE_EV_UP, "serving again");
    return rc;
}

static bool pg_healthy(struct store *base)
{
    return !atomic_load(&SELF(base)->down);
}

static enum store_rc pg_tx_begin(struct store *base)
{
    struct pconn *c = conn_get(SELF(base));
    if (!c)
        return STORE_UNAVAILABLE;
    return begin(c);
}

static enum store_rc pg_tx_end(struct store *base, enum store_rc rc)
{
    struct pconn *c = pthread_getspecific(SELF(base)->tls);
    if (!c)
        return STORE_UNAVAILABLE;
    return finish(c, rc);
}

static enum store_rc pg_user_insert(struct store *base, const struct store_user *u)
{
    struct pconn *c = conn_get(SELF(base));
    if (!c)
        return STORE_UNAVAILABLE;
    char key[USERNAME_MAX + 1];
    store_username_key(u->username, key);
    struct params p = {0};
    p_str(&p, u->id);
    p_str(&p, u->username);
    p_str(&p, key);
    p_str(&p, u->password_hash);
    p_int(&p, u->created_at);
    p_str(&p, u->email[0] ? u->email : NULL);
    p_int(&p, u->email_verified);
    return run(c, P_USER_INSERT, &p, NULL);
}

/* Columns: id, username, password_hash, created_at, disabled_at. */
static void user_from_row(PGresult *res, int row, struct store_user *u)
{
    col_copy(u->id, sizeof u->id, res, row, 0);
    col_copy(u->username, sizeof u->username, res, row, 1);
    u->created_at = col_int(res, row, 3);
    u->disabled_at = col_int(res, row, 4);
    col_copy(u->email, sizeof u->email, res, row, 5);
    u->email_verified = col_int(res, row, 6) != 0;
    col_copy(u->email_pending, sizeof u->email_pending, res, row, 7);
}

static enum store_rc read_user(struct pconn *c, enum stmt id, const char *arg,
                               struct store_user *ret)
{
    struct params p = {0};
    p_str(&p, arg);
    PGresult *res = NULL;
    enum store_rc rc = run(c, id, &p, &res);
    if (rc != STORE_OK)
        return rc;
    if (PQntuples(res) == 0) {
        PQclear(res);
        return STORE_NOT_FOUND;
    }
    struct store_user u = {0};
    user_from_row(res, 0, &u);
    u.password_hash = strdup(PQgetvalue(res, 0, 2));
    PQclear(res);
    if (!u.password_hash)
        return STORE_UNAVAILABLE;
    *ret = u;
    return STORE_OK;
}

static enum store_rc pg_user_by_name(struct store *base, const char *username,
                                     struct store_user *ret)
{
    struct pconn *c = conn_get(SELF(base));
    if (!c)
        return STORE_UNAVAILABLE;
    char key[USERNAME_MAX + 1];
    store_username_key(username, key);
    return read_user(c, P_USER_BY_KEY, key, ret);
}

static enum store_rc pg_user_by_id(struct store *base, const char *id, struct store_user *ret)
{
    struct pconn *c = conn_get(SELF(base));
    if (!c)
        return STORE_UNAVAILABLE;
    return read_user(c, P_USER_BY_ID, id, ret);
}

static enum store_rc pg_user_update_hash(struct store *base, const char *id, const char *old_hash,
                                         const char *new_hash, int64_t now)
{
    struct pconn *c = conn_get(SELF(base));
    if (!c)
        return STORE_UNAVAILABLE;
    struct params p = {0};
    p_str(&p, id);
    p_str(&p, new_hash);
    if (old_hash)
        p_str(&p, old_hash);
    p_int(&p, now);
    int rows = 0;
    enum store_rc rc = run_count(c, old_hash ? P_USER_SET_HASH : P_USER_SET_HASH_ANY, &p, &rows);
    return rc == STORE_OK && rows == 0 ? STORE_NOT_FOUND : rc;
}

static enum store_rc pg_user_update_disabled(struct store *base, const char *id,
                                             int64_t disabled_at, int64_t now)
{
    struct pconn *c = conn_get(SELF(base));
    if (!c)
        return STORE_UNAVAILABLE;
    struct params p = {0};
    p_str(&p, id);
    p_int(&p, disabled_at);
    p_int(&p, now);
    int rows = 0;
    enum store_rc rc = run_count(c, P_USER_SET_DISABLED, &p, &rows);
    return rc == STORE_OK && rows == 0 ? STORE_NOT_FOUND : rc;
}

static enum store_rc pg_user_lock(struct store *base, const char *id, const char *hash,
                                  bool exclusive)
{
    struct pconn *c = conn_get(SELF(base));
    if (!c)
        return STORE_UNAVAILABLE;
    struct params p = {0};
    p_str(&p, id);
    p_str(&p, hash);
    PGresult *res = NULL;
    enum store_rc rc = run(c, exclusive ? P_USER_LOCK : P_USER_LOCK_SHARE, &p, &res);
    if (rc == STORE_OK && PQntuples(res) == 0)
        rc = STORE_NOT_FOUND;
    PQclear(res);
    return rc;
}

static enum store_rc pg_user_delete_row(struct store *base, const char *id)
{
    struct pconn *c = conn_get(SELF(base));
    if (!c)
        return STORE_UNAVAILABLE;
    struct params p = {0};
    p_str(&p, id);
    /* Mail still queued for the account goes with it (its links would be
     * dead, its address no longer the account's business). */
    enum store_rc rc = run(c, P_OUTBOX_DROP_USER, &p, NULL);
    if (rc != STORE_OK)
        return rc;
    int rows = 0;
    rc = run_count(c, P_USER_DELETE, &p, &rows);
    return rc == STORE_OK && rows == 0 ? STORE_NOT_FOUND : rc;
}

static enum store_rc pg_user_list(struct store *base, store_user_cb cb, void *ctx)
{
    struct pconn *c = conn_get(SELF(base));
    if (!c)
        return STORE_UNAVAILABLE;
    PGresult *res = NULL;
    enum store_rc rc = run(c, P_USER_LIST, NULL, &res);
    if (rc != STORE_OK)
        return rc;
    for (int i = 0; i < PQntuples(res); i++) {
        struct store_user u = {0};
        user_from_row(res, i, &u);
        cb(ctx, &u, store_hash_scheme(PQgetvalue(res, i, 2)));
    }
    PQclear(res);
    return STORE_OK;
}

static enum store_rc pg_session_insert(struct store *base, const struct store_session *s)
{
    struct pconn *c = conn_get(SELF(base));
    if (!c)
        return STORE_UNAVAILABLE;
    struct params p = {0};
    p_str(&p, s->id);
    p_str(&p, s->user_id);
    p_int(&p, s->created_at);
    p_int(&p, s->last_used_at);
    p_int(&p, s->expires_at);
    p_int(&p, s->refresh_gen);
    p_int(&p, s->rotated_at_ms);
    p_str(&p, s->user_agent);
    p_str(&p, s->client_addr);
    p_int(&p, s->amr);
    enum store_rc rc = run(c, P_SESS_INSERT, &p, NULL);
    /* The user was deleted between password check and here. */
    return rc == STORE_CONFLICT ? STORE_NOT_FOUND : rc;
}

static enum store_rc pg_session_list(struct store *base, const char *user_id, int64_t now,
                                     int64_t idle_ttl, store_session_cb cb, void *ctx)
{
    struct pconn *c = conn_get(SELF(base));
    if (!c)
        return STORE_UNAVAILABLE;
    struct params p = {0};
    p_str(&p, user_id);
    p_int(&p, now);
    p_int(&p, idle_ttl);
    PGresult *res = NULL;
    enum store_rc rc = run(c, P_SESS_LIST, &p, &res);
    if (rc != STORE_OK)
        return rc;
    for (int i = 0; i < PQntuples(res); i++) {
        struct store_session s = {0};
        col_copy(s.id, sizeof s.id, res, i, 0);
        snprintf(s.user_id, sizeof s.user_id, "%s", user_id);
        s.created_at = col_int(res, i, 1);
        s.last_used_at = col_int(res, i, 2);
        s.expires_at = col_int(res, i, 3);
        s.refresh_gen = (uint32_t)col_int(res, i, 4);
        s.rotated_at_ms = col_int(res, i, 5);
        col_copy(s.user_agent, sizeof s.user_agent, res, i, 6);
        col_copy(s.client_addr, sizeof s.client_addr, res, i, 7);
        cb(ctx, &s);
    }
    PQclear(res);
    return STORE_OK;
}

/* Inside tx_begin: SELECT ... FOR UPDATE locks the session row until the
 * transaction ends, on every instance. */
static enum store_rc pg_session_lock(struct store *base, const char *sid,
                                     struct store_session *ret, struct store_user *ret_owner)
{
    struct pconn *c = conn_get(SELF(base));
    if (!c)
        return STORE_UNAVAILABLE;
    struct params p = {0};
    p_str(&p, sid);
    PGresult *res = NULL;
    enum store_rc rc = run(c, P_SESS_GET_LOCK, &p, &res);
    if (rc != STORE_OK)
        return rc;
    if (PQntuples(res) == 0) {
        PQclear(res);
        return STORE_NOT_FOUND;
    }
    struct store_session row = {0};
    struct store_user user = {0};
    snprintf(row.id, sizeof row.id, "%s", sid);
    col_copy(row.user_id, sizeof row.user_id, res, 0, 0);
    row.created_at = col_int(res, 0, 1);
    row.last_used_at = col_int(res, 0, 2);
    row.expires_at = col_int(res, 0, 3);
    row.refresh_gen = (uint32_t)col_int(res, 0, 4);
    row.rotated_at_ms = col_int(res, 0, 5);
    row.revoked_at_ms = col_int(res, 0, 6);
    col_copy(row.user_agent, sizeof row.user_agent, res, 0, 7);
    col_copy(row.client_addr, sizeof row.client_addr, res, 0, 8);
    snprintf(user.id, sizeof user.id, "%s", row.user_id);
    col_copy(user.username, sizeof user.username, res, 0, 9);
    user.created_at = col_int(res, 0, 10);
    user.disabled_at = col_int(res, 0, 11);
    col_copy(user.email, sizeof user.email, res, 0, 12);
    user.email_verified = col_int(res, 0, 13) != 0;
    row.amr = (unsigned)col_int(res, 0, 14);
    PQclear(res);
    *ret = row;
    *ret_owner = user;
    return STORE_OK;
}

static enum store_rc pg_session_rotate(struct store *base, const struct store_session *row)
{
    struct pconn *c = conn_get(SELF(base));
    if (!c)
        return STORE_UNAVAILABLE;
    struct params q = {0};
    p_str(&q, row->id);
    p_int(&q, row->refresh_gen);
    p_int(&q, row->rotated_at_ms);
    p_int(&q, row->last_used_at);
    return run(c, P_SESS_ROTATE, &q, NULL);
}

/* Feed the revocations first, then mark the sessions: one session (sid) or
 * every live one of user_id but except_sid. */
static enum store_rc pg_session_revoke_rows(struct store *base, const char *user_id,
                                            const char *sid, const char *except_sid,
                                            const char *reason, const struct revocation *rev,
                                            int *ret_count)
{
    struct pconn *c = conn_get(SELF(base));
    if (!c)
        return STORE_UNAVAILABLE;
    bool one = sid != NULL;
    struct params q = {0};
    p_str(&q, one ? sid : user_id);
    p_str(&q, one ? user_id : except_sid);
    p_int(&q, rev->now_ms);
    p_str(&q, reason);
    p_int(&q, rev->expires_ms);
    int rows = 0;
    enum store_rc rc = run_count(c, one ? P_SESS_REVOKE_ONE : P_SESS_REVOKE_USER, &q, &rows);
    if (rc == STORE_OK && ret_count)
        *ret_count = rows;
    return rc;
}

static enum store_rc pg_revocations_since(struct store *base, int64_t since_ms,
                                          store_revocation_cb cb, void *ctx)
{
    struct pconn *c = conn_get(SELF(base));
    if (!c)
        return STORE_UNAVAILABLE;
    struct params p = {0};
    p_int(&p, since_ms);
    PGresult *res = NULL;
    enum store_rc rc = run(c, P_REV_SINCE, &p, &res);
    if (rc != STORE_OK)
        return rc;
    for (int i = 0; i < PQntuples(res); i++)
        cb(ctx, PQgetvalue(res, i, 0), col_int(res, i, 1), col_int(res, i, 2));
    PQclear(res);
    return STORE_OK;
}

static enum store_rc pg_prune_some(struct store *base, int64_t now, int64_t now_ms, int limit,
                                   int64_t *ret_removed)
{
    struct pconn *c = conn_get(SELF(base));
    if (!c)
        return STORE_UNAVAILABLE;
    static const enum stmt order[] = {P_REV_PRUNE,    P_SESS_PRUNE,  P_SESS_REVOKED_PRUNE,
                                      P_COUNTERS_PRUNE, P_LOGIN_PRUNE, P_ETOK_PRUNE,
                                      P_OUTBOX_PRUNE, P_EPH_PRUNE};
    enum store_rc rc = STORE_OK;
    int left = limit;
    for (size_t i = 0; i < sizeof order / sizeof order[0] && rc == STORE_OK && left > 0; i++) {
        struct params p = {0};
        p_int(&p, order[i] == P_REV_PRUNE ? now_ms : now);
        p_int(&p, left);
        int n = 0;
        rc = run_count(c, order[i], &p, &n);
        if (rc == STORE_OK)
            left -= n;
    }
    if (rc == STORE_OK)
        *ret_removed = limit - left;
    return rc;
}

static enum store_rc pg_secret_get_or_create(struct store *base, const char *name,
                                             const uint8_t *candidate, size_t len, uint8_t *out,
                                             size_t cap, size_t *ret_len)
{
    struct pconn *c = conn_get(SELF(base));
    if (!c)
        return STORE_UNAVAILABLE;
    /* bytea in hex text form: \x0011... */
    char *hex = malloc(2 * len + 3);
    if (!hex)
        return STORE_UNAVAILABLE;
    static const char digits[] = "0123456789abcdef";
    hex[0] = '\\';
    hex[1] = 'x';
    for (size_t i = 0; i < len; i++) {
        hex[2 + 2 * i] = digits[candidate[i] >> 4];
        hex[3 + 2 * i] = digits[candidate[i] & 15];
    }
    hex[2 + 2 * len] = '\0';
    struct params p = {0};
    p_str(&p, name);
    p_str(&p, hex);
    p_int(&p, util_now());
    enum store_rc rc = run(c, P_SECRET_INSERT, &p, NULL);
    /* OPENSSL_cleanse, not memset: a memset right before free() is a dead
     * store the compiler removes (it did, at -O2). */
    OPENSSL_cleanse(hex, 2 * len + 3);
    free(hex);
    if (rc != STORE_OK)
        return rc;
    struct params q = {0};
    p_str(&q, name);
    PGresult *res = NULL;
    rc = run(c, P_SECRET_GET, &q, &res);
    if (rc != STORE_OK)
        return rc;
    rc = STORE_ERROR;
    if (PQntuples(res) == 1) {
        size_t n = 0;
        unsigned char *bin = PQunescapeBytea((const unsigned char *)PQgetvalue(res, 0, 0), &n);
        if (bin && n > 0 && n <= cap) {
            memcpy(out, bin, n);
            *ret_len = n;
            rc = STORE_OK;
        }
        if (bin) {
            OPENSSL_cleanse(bin, n);
            PQfreemem(bin);
        }
    }
    PQclear(res);
    return rc;
}

static enum key_state parse_state(const char *s)
{
    if (strcmp(s, "current") == 0)
        return KEY_CURRENT;
    if (strcmp(s, "next") == 0)
        return KEY_NEXT;
    return KEY_RETIRED;
}

static enum store_rc pg_keys_list(struct store *base, store_key_cb cb, void *ctx)
{
    struct pconn *c = conn_get(SELF(base));
    if (!c)
        return STORE_UNAVAILABLE;
    PGresult *res = NULL;
    enum store_rc rc = run(c, P_KEYS_LIST, NULL, &res);
    if (rc != STORE_OK)
        return rc;
    for (int i = 0; i < PQntuples(res); i++) {
        struct store_key k = {0};
        col_copy(k.kid, sizeof k.kid, res, i, 0);
        col_copy(k.alg, sizeof k.alg, res, i, 1);
        k.state = parse_state(PQgetvalue(res, i, 2));
        k.private_pem = strdup(PQgetvalue(res, i, 3));
        k.created_at = col_int(res, i, 4);
        k.activate_at = col_int(res, i, 5);
        k.retired_at = col_int(res, i, 6);
        k.remove_at = col_int(res, i, 7);
        if (k.private_pem)
            cb(ctx, &k);
        store_key_clear(&k);
    }
    PQclear(res);
    return STORE_OK;
}

static enum store_rc pg_key_insert_unless(struct store *base, const struct store_key *k,
                                          bool *ret_inserted)
{
    struct pconn *c = conn_get(SELF(base));
    if (!c)
        return STORE_UNAVAILABLE;
    /* The partial unique index on (alg, state) for next/current makes a
     * second live key of a kind a conflict, which DO NOTHING skips. */
    struct params p = {0};
    p_str(&p, k->kid);
    p_str(&p, k->alg);
    p_str(&p, store_key_state_name(k->state));
    p_str(&p, k->private_pem);
    p_int(&p, k->created_at);
    p_int(&p, k->activate_at);
    int rows = 0;
    enum store_rc rc = run_count(c, P_KEY_INSERT, &p, &rows);
    if (rc == STORE_OK)
        *ret_inserted = rows == 1;
    return rc;
}

static enum store_rc pg_key_promote(struct store *base, const char *next_kid,
                                    const char *current_kid, int64_t now,
                                    int64_t retired_remove_at)
{
    struct pconn *c = conn_get(SELF(base));
    if (!c)
        return STORE_UNAVAILABLE;
    enum store_rc rc = begin(c);
    if (rc != STORE_OK)
        return rc;
    int rows = 1;
    if (current_kid) {
        struct params p = {0};
        p_str(&p, current_kid);
        p_int(&p, now);
        p_int(&p, retired_remove_at);
        rc = run_count(c, P_KEY_RETIRE_CURRENT, &p, &rows);
    }
    if (rc == STORE_OK && rows == 1) {
        struct params q = {0};
        p_str(&q, next_kid);
        p_int(&q, now);
        rc = run_count(c, P_KEY_MAKE_CURRENT, &q, &rows);
    }
    if (rc == STORE_OK && rows != 1) {
        simple(c, "ROLLBACK");
        return STORE_NOT_FOUND;
    }
    /* Another instance promoting at the same moment hits the unique index. */
    if (rc == STORE_CONFLICT) {
        simple(c, "ROLLBACK");
        return STORE_NOT_FOUND;
    }
    return finish(c, rc);
}

static enum store_rc pg_key_retire(struct store *base, const char *kid, int64_t now,
                                   int64_t remove_at)
{
    struct pconn *c = conn_get(SELF(base));
    if (!c)
        return STORE_UNAVAILABLE;
    struct params p = {0};
    p_str(&p, kid);
    p_int(&p, now);
    p_int(&p, remove_at);
    int rows = 0;
    enum store_rc rc = run_count(c, P_KEY_RETIRE, &p, &rows);
    return rc == STORE_OK && rows == 0 ? STORE_NOT_FOUND : rc;
}

static enum store_rc pg_key_retire_purge(struct store *base, const char *kid, int64_t remove_at)
{
    struct pconn *c = conn_get(SELF(base));
    if (!c)
        return STORE_UNAVAILABLE;
    struct params p = {0};
    p_str(&p, kid);
    p_int(&p, remove_at);
    int rows = 0;
    enum store_rc rc = run_count(c, P_KEY_PURGE, &p, &rows);
    return rc == STORE_OK && rows == 0 ? STORE_NOT_FOUND : rc;
}

static enum store_rc pg_keys_remove_expired(struct store *base, int64_t now)
{
    struct pconn *c = conn_get(SELF(base));
    if (!c)
        return STORE_UNAVAILABLE;
    struct params p = {0};
    p_int(&p, now);
    return run(c, P_KEYS_REMOVE, &p, NULL);
}

static enum store_rc pg_counter_add(struct store *base, const char *key, int64_t now,
                                    int64_t window, int64_t delta, int64_t *ret_count,
                                    int64_t *ret_window_start)
{
    struct pconn *c = conn_get(SELF(base));
    if (!c)
        return STORE_UNAVAILABLE;
    struct params p = {0};
    p_str(&p, key);
    p_int(&p, now);
    p_int(&p, window);
    p_int(&p, delta);
    PGresult *res = NULL;
    enum store_rc rc = run(c, P_COUNTER_ADD, &p, &res);
    if (rc != STORE_OK)
        return rc;
    *ret_count = PQntuples(res) == 1 ? col_int(res, 0, 0) : 0;
    if (ret_window_start)
        *ret_window_start = PQntuples(res) == 1 ? col_int(res, 0, 1) : now;
    PQclear(res);
    return STORE_OK;
}

static enum store_rc pg_login_attempt(struct store *base, const char *key, int64_t now_ms,
                                      unsigned max_failures, int64_t base_ms, int64_t max_ms,
                                      int64_t *ret_retry_after_ms, int64_t *ret_set_until_ms)
{
    if (ret_set_until_ms)
        *ret_set_until_ms = 0;
    struct pconn *c = conn_get(SELF(base));
    if (!c)
        return STORE_UNAVAILABLE;
    enum store_rc rc = begin(c);
    if (rc != STORE_OK)
        return rc;
    struct params p = {0};
    p_str(&p, key);
    p_int(&p, now_ms / 1000);
    rc = run(c, P_LOGIN_ENSURE, &p, NULL);
    PGresult *res = NULL;
    struct params q = {0};
    p_str(&q, key);
    if (rc == STORE_OK)
        rc = run(c, P_LOGIN_GET_LOCK, &q, &res);
    if (rc != STORE_OK)
        return finish(c, rc);
    int64_t failures = PQntuples(res) ? col_int(res, 0, 0) : 0;
    int64_t until = PQntuples(res) ? col_int(res, 0, 1) : 0;
    PQclear(res);
    if (until > now_ms) {
        rc = finish(c, STORE_OK);
        if (rc == STORE_OK)
            *ret_retry_after_ms = until - now_ms;
        return rc;
    }
    failures++;
    int64_t wait = store_login_backoff(failures, max_failures, base_ms, max_ms);
    struct params u = {0};
    p_str(&u, key);
    p_int(&u, failures);
    p_int(&u, wait ? now_ms + wait : 0);
    p_int(&u, now_ms / 1000);
    rc = finish(c, run(c, P_LOGIN_SET, &u, NULL));
    if (rc == STORE_OK) {
        *ret_retry_after_ms = 0;
        if (ret_set_until_ms)
            *ret_set_until_ms = wait ? now_ms + wait : 0;
    }
    return rc;
}

static enum store_rc pg_login_get(struct store *base, const char *key, int64_t *ret_failures,
                                  int64_t *ret_blocked_until)
{
    struct pconn *c = conn_get(SELF(base));
    if (!c)
        return STORE_UNAVAILABLE;
    struct params p = {0};
    p_str(&p, key);
    PGresult *res = NULL;
    enum store_rc rc = run(c, P_LOGIN_GET, &p, &res);
    if (rc != STORE_OK)
        return rc;
    *ret_failures = PQntuples(res) ? col_int(res, 0, 0) : 0;
    *ret_blocked_until = PQntuples(res) ? col_int(res, 0, 1) : 0;
    PQclear(res);
    return STORE_OK;
}

static enum store_rc pg_login_reset(struct store *base, const char *key)
{
    struct pconn *c = conn_get(SELF(base));
    if (!c)
        return STORE_UNAVAILABLE;
    struct params p = {0};
    p_str(&p, key);
    return run(c, P_LOGIN_RESET, &p, NULL);
}

static enum store_rc pg_login_refund(struct store *base, const char *key, unsigned max_failures,
                                     int64_t set_until_ms)
{
    struct pconn *c = conn_get(SELF(base));
    if (!c)
        return STORE_UNAVAILABLE;
    struct params p = {0};
    p_str(&p, key);
    p_int(&p, max_failures);
    p_int(&p, set_until_ms);
    return run(c, P_LOGIN_REFUND, &p, NULL);
}

static enum store_rc pg_user_by_email(struct store *base, const char *email,
                                      struct store_user *ret)
{
    struct pconn *c = conn_get(SELF(base));
    if (!c)
        return STORE_UNAVAILABLE;
    return read_user(c, P_USER_BY_EMAIL, email, ret);
}

static enum store_rc pg_user_update_email(struct store *base, const char *id, const char *email,
                                          bool verified, const char *pending, int64_t now)
{
    struct pconn *c = conn_get(SELF(base));
    if (!c)
        return STORE_UNAVAILABLE;
    struct params p = {0};
    p_str(&p, id);
    p_str(&p, email && *email ? email : NULL);
    p_int(&p, verified && email && *email);
    p_str(&p, pending && *pending ? pending : NULL);
    p_int(&p, now);
    int rows = 0;
    enum store_rc rc = run_count(c, P_USER_SET_EMAIL, &p, &rows);
    return rc == STORE_OK && rows == 0 ? STORE_NOT_FOUND : rc;
}

static enum store_rc pg_email_token_put(struct store *base, const struct store_email_token *t)
{
    struct pconn *c = conn_get(SELF(base));
    if (!c)
        return STORE_UNAVAILABLE;
    struct params p = {0};
    p_str(&p, t->token_hash);
    p_str(&p, t->user_id);
    p_int(&p, t->purpose);
    p_str(&p, t->email);
    p_str(&p, t->code_hash);
    p_int(&p, t->attempts);
    p_int(&p, t->created_at);
    p_int(&p, t->expires_at);
    return run(c, P_ETOK_PUT, &p, NULL);
}

static enum store_rc read_token(struct pconn *c, enum stmt id, const struct params *p,
                                struct store_email_token *ret)
{
    PGresult *res = NULL;
    enum store_rc rc = run(c, id, p, &res);
    if (rc != STORE_OK)
        return rc;
    if (PQntuples(res) == 0) {
        PQclear(res);
        return STORE_NOT_FOUND;
    }
    struct store_email_token t = {0};
    col_copy(t.token_hash, sizeof t.token_hash, res, 0, 0);
    col_copy(t.user_id, sizeof t.user_id, res, 0, 1);
    t.purpose = (enum email_purpose)col_int(res, 0, 2);
    col_copy(t.email, sizeof t.email, res, 0, 3);
    col_copy(t.code_hash, sizeof t.code_hash, res, 0, 4);
    t.attempts = (int)col_int(res, 0, 5);
    t.created_at = col_int(res, 0, 6);
    t.expires_at = col_int(res, 0, 7);
    PQclear(res);
    *ret = t;
    return STORE_OK;
}

static enum store_rc pg_email_token_by_hash(struct store *base, const char *token_hash,
                                            struct store_email_token *ret)
{
    struct pconn *c = conn_get(SELF(base));
    if (!c)
        return STORE_UNAVAILABLE;
    struct params p = {0};
    p_str(&p, token_hash);
    return read_token(c, P_ETOK_BY_HASH, &p, ret);
}

static enum store_rc pg_email_token_by_user(struct store *base, const char *user_id,
                                            enum email_purpose purpose,
                                            struct store_email_token *ret)
{
    struct pconn *c = conn_get(SELF(base));
    if (!c)
        return STORE_UNAVAILABLE;
    struct params p = {0};
    p_str(&p, user_id);
    p_int(&p, purpose);
    return read_token(c, P_ETOK_BY_USER, &p, ret);
}

static enum store_rc pg_email_token_attempt(struct store *base, const char *user_id,
                                            enum email_purpose purpose, int *ret_attempts)
{
    struct pconn *c = conn_get(SELF(base));
    if (!c)
        return STORE_UNAVAILABLE;
    struct params p = {0};
    p_str(&p, user_id);
    p_int(&p, purpose);
    PGresult *res = NULL;
    enum store_rc rc = run(c, P_ETOK_ATTEMPT, &p, &res);
    if (rc != STORE_OK)
        return rc;
    if (PQntuples(res) == 0) {
        PQclear(res);
        return STORE_NOT_FOUND;
    }
    *ret_attempts = (int)col_int(res, 0, 0);
    PQclear(res);
    return STORE_OK;
}

static enum store_rc pg_email_token_delete(struct store *base, const char *user_id,
                                           enum email_purpose purpose)
{
    struct pconn *c = conn_get(SELF(base));
    if (!c)
        return STORE_UNAVAILABLE;
    struct params p = {0};
    p_str(&p, user_id);
    p_int(&p, purpose);
    return run(c, P_ETOK_DELETE, &p, NULL);
}

/* $1..$5: a message's id, kind, user, recipient and parameters. */
static void p_mail(struct params *p, const struct store_mail *m)
{
    p_str(p, m->id);
    p_str(p, m->kind);
    p_str(p, m->user_id);
    p_str(p, m->to);
    p_str(p, m->params ? m->params : "{}");
}

static enum store_rc pg_outbox_insert(struct store *base, const struct store_mail *m)
{
    struct pconn *c = conn_get(SELF(base));
    if (!c)
        return STORE_UNAVAILABLE;
    struct params p = {0};
    p_mail(&p, m);
    p_int(&p, m->next_attempt_ms);
    p_int(&p, m->created_ms);
    p_int(&p, m->give_up_ms);
    return run(c, P_OUTBOX_INSERT, &p, NULL);
}

static enum store_rc pg_outbox_claim(struct store *base, int64_t now_ms, int64_t lease_until_ms,
                                     int max, store_mail_cb cb, void *ctx)
{
    struct pconn *c = conn_get(SELF(base));
    if (!c)
        return STORE_UNAVAILABLE;
    struct params p = {0};
    p_int(&p, now_ms);
    p_int(&p, lease_until_ms);
    p_int(&p, max);
    PGresult *res = NULL;
    enum store_rc rc = run(c, P_OUTBOX_CLAIM, &p, &res);
    if (rc != STORE_OK)
        return rc;
    for (int i = 0; i < PQntuples(res); i++) {
        struct store_mail m = {0};
        col_copy(m.id, sizeof m.id, res, i, 0);
        col_copy(m.kind, sizeof m.kind, res, i, 1);
        col_copy(m.user_id, sizeof m.user_id, res, i, 2);
        col_copy(m.to, sizeof m.to, res, i, 3);
        m.params = strdup(PQgetvalue(res, i, 4));
        m.attempts = (int)col_int(res, i, 5);
        m.created_ms = col_int(res, i, 6);
        m.next_attempt_ms = col_int(res, i, 7);
        m.give_up_ms = col_int(res, i, 8);
        if (m.params)
            cb(ctx, &m);
        store_mail_clear(&m);
    }
    PQclear(res);
    return STORE_OK;
}

static enum store_rc pg_outbox_finish(struct store *base, const char *id, enum mail_status status,
                                      int attempts, int64_t next_attempt_ms, const char *error,
                                      int64_t now_ms)
{
    struct pconn *c = conn_get(SELF(base));
    if (!c)
        return STORE_UNAVAILABLE;
    struct params p = {0};
    p_str(&p, id);
    p_str(&p, store_mail_status_name(status));
    p_int(&p, attempts);
    p_int(&p, next_attempt_ms);
    p_str(&p, error ? error : "");
    p_int(&p, now_ms);
    return run(c, P_OUTBOX_FINISH, &p, NULL);
}

static enum store_rc pg_outbox_resolve(struct store *base, const struct store_mail *m)
{
    struct pconn *c = conn_get(SELF(base));
    if (!c)
        return STORE_UNAVAILABLE;
    struct params p = {0};
    p_mail(&p, m);
    int rows = 0;
    enum store_rc rc = run_count(c, P_OUTBOX_RESOLVE, &p, &rows);
    return rc == STORE_OK && rows == 0 ? STORE_NOT_FOUND : rc;
}

static enum store_rc pg_outbox_count(struct store *base, enum mail_status status, int64_t *ret_n)
{
    struct pconn *c = conn_get(SELF(base));
    if (!c)
        return STORE_UNAVAILABLE;
    struct params p = {0};
    p_str(&p, store_mail_status_name(status));
    PGresult *res = NULL;
    enum store_rc rc = run(c, P_OUTBOX_COUNT, &p, &res);
    if (rc != STORE_OK)
        return rc;
    *ret_n = PQntuples(res) ? col_int(res, 0, 0) : 0;
    PQclear(res);
    return STORE_OK;
}

/* ---- second factors ---- */

/* Run a statement that changes one row: NOT_FOUND when it changed none. */
static enum store_rc run_changed(struct pconn *c, enum stmt id, const struct params *p)
{
    int rows = 0;
    enum store_rc rc = run_count(c, id, p, &rows);
    return rc == STORE_OK && rows == 0 ? STORE_NOT_FOUND : rc;
}

static enum store_rc pg_totp_get(struct store *base, const char *user_id, struct store_totp *ret)
{
    struct pconn *c = conn_get(SELF(base));
    if (!c)
        return STORE_UNAVAILABLE;
    struct params p = {0};
    p_str(&p, user_id);
    PGresult *res = NULL;
    enum store_rc rc = run(c, P_TOTP_GET, &p, &res);
    if (rc != STORE_OK)
        return rc;
    if (PQntuples(res) == 0) {
        PQclear(res);
        return STORE_NOT_FOUND;
    }
    struct store_totp t = {0};
    col_copy(t.user_id, sizeof t.user_id, res, 0, 0);
    col_copy(t.secret_hex, sizeof t.secret_hex, res, 0, 1);
    t.confirmed = col_int(res, 0, 2) != 0;
    t.last_step = col_int(res, 0, 3);
    t.created_at = col_int(res, 0, 4);
    t.codes_gen = col_int(res, 0, 5);
    PQclear(res);
    *ret = t;
    return STORE_OK;
}

static enum store_rc pg_totp_put(struct store *base, const struct store_totp *t)
{
    struct pconn *c = conn_get(SELF(base));
    if (!c)
        return STORE_UNAVAILABLE;
    struct params p = {0};
    p_str(&p, t->user_id);
    p_str(&p, t->secret_hex);
    p_int(&p, t->confirmed);
    p_int(&p, t->last_step);
    p_int(&p, t->created_at);
    return run(c, P_TOTP_PUT, &p, NULL);
}

static enum store_rc pg_totp_step(struct store *base, const char *user_id, int64_t step,
                                  bool confirm, const char *pending_secret_hex)
{
    struct pconn *c = conn_get(SELF(base));
    if (!c)
        return STORE_UNAVAILABLE;
    struct params p = {0};
    p_str(&p, user_id);
    p_int(&p, step);
    p_int(&p, confirm);
    p_str(&p, pending_secret_hex ? pending_secret_hex : "");
    return run_changed(c, P_TOTP_STEP, &p);
}

static enum store_rc pg_totp_codes_bump(struct store *base, const char *user_id, int64_t gen)
{
    struct pconn *c = conn_get(SELF(base));
    if (!c)
        return STORE_UNAVAILABLE;
    struct params p = {0};
    p_str(&p, user_id);
    p_int(&p, gen);
    return run_changed(c, P_TOTP_CODES_BUMP, &p);
}

static enum store_rc by_user(struct pconn *c, enum stmt id, const char *user_id)
{
    struct params p = {0};
    p_str(&p, user_id);
    return run(c, id, &p, NULL);
}

static enum store_rc pg_totp_delete(struct store *base, const char *user_id)
{
    struct pconn *c = conn_get(SELF(base));
    if (!c)
        return STORE_UNAVAILABLE;
    enum store_rc rc = by_user(c, P_TOTP_DEL, user_id);
    return rc == STORE_OK ? by_user(c, P_RC_DEL, user_id) : rc;
}

static enum store_rc pg_recovery_codes_put(struct store *base, const char *user_id,
                                           const char (*hashes)[SHA256_HEX_LEN], int n)
{
    struct pconn *c = conn_get(SELF(base));
    if (!c)
        return STORE_UNAVAILABLE;
    enum store_rc rc = by_user(c, P_RC_DEL, user_id);
    for (int i = 0; i < n && rc == STORE_OK; i++) {
        struct params p = {0};
        p_str(&p, user_id);
        p_str(&p, hashes[i]);
        rc = run(c, P_RC_INSERT, &p, NULL);
    }
    return rc;
}

static enum store_rc pg_recovery_code_use(struct store *base, const char *user_id,
                                          const char *hash, int64_t now)
{
    struct pconn *c = conn_get(SELF(base));
    if (!c)
        return STORE_UNAVAILABLE;
    struct params p = {0};
    p_str(&p, user_id);
    p_str(&p, hash);
    p_int(&p, now);
    return run_changed(c, P_RC_USE, &p);
}

static enum store_rc pg_recovery_codes_left(struct store *base, const char *user_id, int *ret_n)
{
    struct pconn *c = conn_get(SELF(base));
    if (!c)
        return STORE_UNAVAILABLE;
    struct params p = {0};
    p_str(&p, user_id);
    PGresult *res = NULL;
    enum store_rc rc = run(c, P_RC_LEFT, &p, &res);
    if (rc != STORE_OK)
        return rc;
    *ret_n = PQntuples(res) ? (int)col_int(res, 0, 0) : 0;
    PQclear(res);
    return STORE_OK;
}

static void passkey_from_row(PGresult *res, int i, struct store_passkey *p)
{
    col_copy(p->id, sizeof p->id, res, i, 0);
    col_copy(p->user_id, sizeof p->user_id, res, i, 1);
    col_copy(p->public_key_hex, sizeof p->public_key_hex, res, i, 2);
    p->alg = (int)col_int(res, i, 3);
    p->sign_count = (uint32_t)col_int(res, i, 4);
    col_copy(p->name, sizeof p->name, res, i, 5);
    p->backup_eligible = col_int(res, i, 6) != 0;
    p->created_at = col_int(res, i, 7);
    p->last_used_at = col_int(res, i, 8);
}

static enum store_rc pg_passkey_insert(struct store *base, const struct store_passkey *pk, int max)
{
    struct pconn *c = conn_get(SELF(base));
    if (!c)
        return STORE_UNAVAILABLE;
    /* The user's row is locked first: a second registration finishing at
     * the same moment waits, and its INSERT (a new snapshot under READ
     * COMMITTED) counts this one's passkey. */
    struct params lock = {0};
    p_str(&lock, pk->user_id);
    enum store_rc rc = begin(c);
    if (rc == STORE_OK)
        rc = run(c, P_PK_LOCK_USER, &lock, NULL);
    if (rc != STORE_OK)
        return finish(c, rc);
    struct params p = {0};
    p_str(&p, pk->id);
    p_str(&p, pk->user_id);
    p_str(&p, pk->public_key_hex);
    p_int(&p, pk->alg);
    p_int(&p, pk->sign_count);
    p_str(&p, pk->name);
    p_int(&p, pk->backup_eligible);
    p_int(&p, pk->created_at);
    p_int(&p, max);
    int rows = 0;
    rc = run_count(c, P_PK_INSERT, &p, &rows);
    if (rc == STORE_OK && rows == 0)
        rc = STORE_NOT_FOUND;
    return finish(c, rc);
}

static enum store_rc pg_passkeys_list(struct store *base, const char *user_id,
                                      store_passkey_cb cb, void *ctx)
{
    struct pconn *c = conn_get(SELF(base));
    if (!c)
        return STORE_UNAVAILABLE;
    struct params p = {0};
    p_str(&p, user_id);
    PGresult *res = NULL;
    enum store_rc rc = run(c, P_PK_LIST, &p, &res);
    if (rc != STORE_OK)
        return rc;
    for (int i = 0; i < PQntuples(res); i++) {
        struct store_passkey pk = {0};
        passkey_from_row(res, i, &pk);
        cb(ctx, &pk);
    }
    PQclear(res);
    return STORE_OK;
}

static enum store_rc pg_passkey_get(struct store *base, const char *id, struct store_passkey *ret)
{
    struct pconn *c = conn_get(SELF(base));
    if (!c)
        return STORE_UNAVAILABLE;
    struct params p = {0};
    p_str(&p, id);
    PGresult *res = NULL;
    enum store_rc rc = run(c, P_PK_GET, &p, &res);
    if (rc != STORE_OK)
        return rc;
    if (PQntuples(res) == 0) {
        PQclear(res);
        return STORE_NOT_FOUND;
    }
    passkey_from_row(res, 0, ret);
    PQclear(res);
    return STORE_OK;
}

static enum store_rc pg_passkey_use(struct store *base, const char *id, uint32_t new_count,
                                    int64_t now)
{
    struct pconn *c = conn_get(SELF(base));
    if (!c)
        return STORE_UNAVAILABLE;
    struct params p = {0};
    p_str(&p, id);
    p_int(&p, new_count);
    p_int(&p, now);
    return run_changed(c, P_PK_USE, &p);
}

static enum store_rc pg_passkey_delete(struct store *base, const char *user_id, const char *id)
{
    struct pconn *c = conn_get(SELF(base));
    if (!c)
        return STORE_UNAVAILABLE;
    struct params p = {0};
    p_str(&p, user_id);
    p_str(&p, id);
    return run_changed(c, P_PK_DEL, &p);
}

static enum store_rc pg_ephemeral_put(struct store *base, const struct store_ephemeral *e)
{
    struct pconn *c = conn_get(SELF(base));
    if (!c)
        return STORE_UNAVAILABLE;
    struct params p = {0};
    p_str(&p, e->key);
    p_str(&p, e->kind);
    p_str(&p, e->user_id);
    p_str(&p, e->value ? e->value : "{}");
    p_int(&p, e->attempts);
    p_int(&p, e->expires_at);
    return run(c, P_EPH_PUT, &p, NULL);
}

static enum store_rc pg_ephemeral_get(struct store *base, const char *key,
                                      struct store_ephemeral *ret)
{
    struct pconn *c = conn_get(SELF(base));
    if (!c)
        return STORE_UNAVAILABLE;
    struct params p = {0};
    p_str(&p, key);
    PGresult *res = NULL;
    enum store_rc rc = run(c, P_EPH_GET, &p, &res);
    if (rc != STORE_OK)
        return rc;
    if (PQntuples(res) == 0) {
        PQclear(res);
        return STORE_NOT_FOUND;
    }
    struct store_ephemeral e;
    memset(&e, 0, sizeof e);
    col_copy(e.key, sizeof e.key, res, 0, 0);
    col_copy(e.kind, sizeof e.kind, res, 0, 1);
    col_copy(e.user_id, sizeof e.user_id, res, 0, 2);
    e.value = strdup(PQgetvalue(res, 0, 3));
    e.attempts = (int)col_int(res, 0, 4);
    e.expires_at = col_int(res, 0, 5);
    PQclear(res);
    if (!e.value)
        return STORE_UNAVAILABLE;
    *ret = e;
    return STORE_OK;
}

static enum store_rc pg_ephemeral_attempt(struct store *base, const char *key, int *ret_attempts)
{
    struct pconn *c = conn_get(SELF(base));
    if (!c)
        return STORE_UNAVAILABLE;
    struct params p = {0};
    p_str(&p, key);
    PGresult *res = NULL;
    enum store_rc rc = run(c, P_EPH_ATTEMPT, &p, &res);
    if (rc != STORE_OK)
        return rc;
    if (PQntuples(res) == 0) {
        PQclear(res);
        return STORE_NOT_FOUND;
    }
    *ret_attempts = (int)col_int(res, 0, 0);
    PQclear(res);
    return STORE_OK;
}

static enum store_rc pg_ephemeral_delete(struct store *base, const char *key)
{
    struct pconn *c = conn_get(SELF(base));
    if (!c)
        return STORE_UNAVAILABLE;
    struct params p = {0};
    p_str(&p, key);
    return run_changed(c, P_EPH_DEL, &p);
}

static const struct store_ops pg_ops = {
    .name = "postgres",
    .close = pg_close,
    .migrate = pg_migrate,
    .schema_version = pg_schema_version,
    .ping = pg_ping,
    .healthy = pg_healthy,
    .tx_begin = pg_tx_begin,
    .tx_end = pg_tx_end,
    .user_insert = pg_user_insert,
    .user_by_name = pg_user_by_name,
    .user_by_id = pg_user_by_id,
    .user_by_email = pg_user_by_email,
    .user_update_email = pg_user_update_email,
    .user_update_hash = pg_user_update_hash,
    .user_update_disabled = pg_user_update_disabled,
    .user_delete_row = pg_user_delete_row,
    .user_lock = pg_user_lock,
    .user_list = pg_user_list,
    .session_insert = pg_session_insert,
    .session_list = pg_session_list,
    .session_lock = pg_session_lock,
    .session_rotate = pg_session_rotate,
    .session_revoke_rows = pg_session_revoke_rows,
    .revocations_since = pg_revocations_since,
    .prune_some = pg_prune_some,
    .secret_get_or_create = pg_secret_get_or_create,
    .keys_list = pg_keys_list,
    .key_insert_unless = pg_key_insert_unless,
    .key_promote = pg_key_promote,
    .key_retire = pg_key_retire,
    .key_retire_purge = pg_key_retire_purge,
    .keys_remove_expired = pg_keys_remove_expired,
    .counter_add = pg_counter_add,
    .login_attempt = pg_login_attempt,
    .login_get = pg_login_get,
    .login_reset = pg_login_reset,
    .login_refund = pg_login_refund,
    .email_token_put = pg_email_token_put,
    .email_token_by_hash = pg_email_token_by_hash,
    .email_token_by_user = pg_email_token_by_user,
    .email_token_attempt = pg_email_token_attempt,
    .email_token_delete = pg_email_token_delete,
    .outbox_insert = pg_outbox_insert,
    .outbox_claim = pg_outbox_claim,
    .outbox_finish = pg_outbox_finish,
    .outbox_resolve = pg_outbox_resolve,
    .outbox_count = pg_outbox_count,
    .totp_get = pg_totp_get,
    .totp_put = pg_totp_put,
    .totp_step = pg_totp_step,
    .totp_codes_bump = pg_totp_codes_bump,
    .totp_delete = pg_totp_delete,
    .recovery_codes_put = pg_recovery_codes_put,
    .recovery_code_use = pg_recovery_code_use,
    .recovery_codes_left = pg_recovery_codes_left,
    .passkey_insert = pg_passkey_insert,
    .passkeys_list = pg_passkeys_list,
    .passkey_get = pg_passkey_get,
    .passkey_use = pg_passkey_use,
    .passkey_delete = pg_passkey_delete,
    .ephemeral_put = pg_ephemeral_put,
    .ephemeral_get = pg_ephemeral_get,
    .ephemeral_attempt = pg_ephemeral_attempt,
    .ephemeral_delete = pg_ephemeral_delete,
};

enum store_rc pg_store_open(const char *url, const struct store_options *opt, struct store **ret,
                            char *err, size_t errlen)
{
    struct pg_store *s = calloc(1, sizeof *s);
    if (!s || !(s->url = strdup(url))) {
        free(s);
        snprintf(err, errlen, "out of memory");
        return STORE_ERROR;
    }
    s->base.ops = &pg_ops;
    s->timeout_ms = opt && opt->timeout_ms > 0 ? opt->timeout_ms : STORE_DEFAULT_TIMEOUT_MS;
    if (opt) {
        s->base.on_event = opt->on_event;
        s->base.event_ctx = opt->event_ctx;
    }
    pthread_mutex_init(&s->lock, NULL);
    if (pthread_key_create(&s->tls, NULL) != 0) {
        pthread_mutex_destroy(&s->lock);
        free(s->url);
        free(s);
        snprintf(err, errlen, "out of thread-local keys");
        return STORE_ERROR;
    }
    /* Connect now, so that a wrong URL fails at start-up with its reason.
     * (Prepared statements follow after the migrations.) */
    PGconn *probe = PQconnectdb(url);
    if (!probe || PQstatus(probe) != CONNECTION_OK) {
        const char *msg = probe ? PQerrorMessage(probe) : "out of memory";
        char line[200];
        util_redact_text(msg, url, line, sizeof line);
        line[strcspn(line, "\r\n")] = '\0';
        snprintf(err, errlen, "cannot connect to PostgreSQL: %s", line);
        PQfinish(probe);
        pg_close(&s->base);
        return STORE_UNAVAILABLE;
    }
    PQfinish(probe);
    *ret = &s->base;
    return STORE_OK;
}
