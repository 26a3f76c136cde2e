# SPDX-License-Identifier: Apache-2.0
#
# Source this file for pg_start / pg_stop: a throwaway PostgreSQL cluster
# on a free loopback port, for tests and benchmarks. PostgreSQL refuses to
# run as root, so as root it runs as the `postgres` system user (created by
# Debian's package); as anyone else it runs as that user. Sets PG_URL,
# PG_PORT, PG_DIR, PG_BIN.

pg_bin_dir() {
  local d
  for d in /usr/lib/postgresql/*/bin; do [ -x "$d/initdb" ] && echo "$d"; done | sort -V | tail -1
}

pg_as() { # run a command as the cluster's owner
  if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

pg_free_port() {
  /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

pg_start() {
  PG_BIN=$(pg_bin_dir)
  [ -n "$PG_BIN" ] || { echo "pg: PostgreSQL binaries not found (apt-get install postgresql)" >&2; return 1; }
  PG_DIR=$(mktemp -d /tmp/jwtd-pg.XXXXXX)
  chmod 755 "$PG_DIR"
  [ "$(id -u)" -eq 0 ] && chown postgres: "$PG_DIR"
  PG_PORT=${PG_PORT:-$(pg_free_port)}
  pg_as "$PG_BIN/initdb" -D "$PG_DIR/data" -U postgres -A trust --no-sync >"$PG_DIR/initdb.log" 2>&1 || {
    cat "$PG_DIR/initdb.log" >&2; return 1; }
  pg_as "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/server.log" -w -t 60 \
    -o "-p $PG_PORT -k $PG_DIR -c listen_addresses=127.0.0.1 -c fsync=on -c max_connections=300" \
    start >/dev/null || { cat "$PG_DIR/server.log" >&2; return 1; }
  pg_as "$PG_BIN/psql" -h 127.0.0.1 -p "$PG_PORT" -U postgres -q -c "CREATE DATABASE jwtd" >/dev/null
  PG_URL="postgres://postgres@127.0.0.1:$PG_PORT/jwtd"
  export PG_URL PG_PORT PG_DIR PG_BIN
}

# A fresh database on the running cluster (name given); prints its URL.
pg_new_db() {
  pg_as "$PG_BIN/psql" -h 127.0.0.1 -p "$PG_PORT" -U postgres -q -c "CREATE DATABASE $1" >/dev/null
  echo "postgres://postgres@127.0.0.1:$PG_PORT/$1"
}

pg_stop() {
  [ -n "${PG_DIR:-}" ] || return 0
  pg_as "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -m fast -w stop >/dev/null 2>&1 || true
  rm -rf "$PG_DIR"
  PG_DIR=""
}
