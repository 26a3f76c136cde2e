#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# bench/run.sh — jwtd's benchmark harness. See bench/README.md for what the
# numbers mean; docs/benchmarks.md for the latest recorded run.
#
# Usage (from the repository root, after `meson setup build && ninja -C build`):
#
#   bench/run.sh [--quick] [--out FILE] [--rounds N] [--duration SECONDS] [--no-peer]
#                [--no-pg] [--no-flood]
#
# What it does, in order:
#   1. starts Debian's nginx (`return 200`, as many workers as jwtd has HTTP
#      threads, keep-alive on) and one jwtd per signing algorithm (ES256,
#      HS256, and EdDSA/RS256 when they start), each on its own fresh SQLite
#      file and loopback port; idle instances cost nothing measurable, and
#      running them side by side lets the rounds interleave;
#   2. optionally starts the NestJS reference peer (built once and cached
#      under bench/.cache/);
#   3. verify rounds: nginx, jwtd ES256, nginx, jwtd HS256, ... (the peer
#      next, then jwtd again with many distinct tokens: the "cold" path that
#      misses jwtd's verification cache), all with the same wrk settings, so
#      every target sees the same machine state; jwtd must answer 2xx only;
#   4. login rounds: raw argon2id rate (bench/argon2_rate.c), jwtd logins,
#      the peer's logins, jwtd refresh-token rotation;
#   5. verify latency idle and during a login flood (p99 ratio);
#   6. hot verify again with 10,000 revoked sessions in memory;
#   7. verify, login and refresh with jwtd on a throwaway PostgreSQL;
#   8. prints medians and ratios (bench/summarize.py) and writes JSON to --out.
#
# It installs nothing; it only checks for its tools and says what is missing.
# Every process it starts is stopped on exit, failure and Ctrl-C included.
#
# Tunables (environment): JWTD_WORKERS (2), JWTD_HASH_WORKERS and JWTD_HASH_CPUS (jwtd's defaults),
# JWTD_ARGON2_MEMORY/ITERATIONS/PARALLELISM (jwtd's defaults), WRK_THREADS (2),
# WRK_CONNECTIONS (32), LOGIN_CONNECTIONS (8), REFRESH_CONNECTIONS (4),
# COLD_TOKENS (24576), JWTD_ACCESS_TTL (12h: tokens must outlive the run),
# JWTD_BIN (build/jwtd), NEST_PEER_DIR (../shared/peers/nestjs),
# BENCH_CACHE (bench/.cache), BENCH_KEEP_TMP=1 (keep logs and databases),
# FLOOD_CLIENT_CPUS (0 with the reserved hashing core, else any).
# Other JWTD_* settings in the environment (e.g. JWTD_SQLITE_SYNC,
# JWTD_HASH_PRIORITY) are passed through to jwtd unchanged.

set -Eeuo pipefail
# set -e alone exits without a word; say which command failed, and where.
trap 'echo "run.sh: line $LINENO: command failed (status $?): $BASH_COMMAND" >&2' ERR

# ------------------------------------------------------------- settings --

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_DIR=$(cd "$BENCH_DIR/.." && pwd)
COMMAND_LINE="bench/run.sh${*:+ $*}"

ROUNDS=5
DURATION=5
QUICK=0
USE_PEER=1
USE_PG=1
USE_FLOOD=1
OUT="$BENCH_DIR/results/latest.json"

usage() {
    sed -n '/^# Usage/,/^# What it does/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'
    echo "  --quick        2 rounds x 2 s instead of 5 rounds x 5 s"
    echo "  --out FILE     JSON summary (default bench/results/latest.json)"
    echo "  --rounds N     rounds of every measurement"
    echo "  --duration S   seconds per wrk run"
    echo "  --no-peer      skip the NestJS peer even when node/npm are present"
    echo "  --no-pg        skip the PostgreSQL measurements"
    echo "  --no-flood     skip verify latency during a login flood"
}

rounds_set=0 duration_set=0
while (($#)); do
    case $1 in
        --quick) QUICK=1 ;;
        --out) OUT=${2:?--out needs a file}; shift ;;
        --out=*) OUT=${1#--out=} ;;
        --rounds) ROUNDS=${2:?--rounds needs a number}; rounds_set=1; shift ;;
        --duration) DURATION=${2:?--duration needs seconds}; duration_set=1; shift ;;
        --no-peer) USE_PEER=0 ;;
        --no-pg) USE_PG=0 ;;
        --no-flood) USE_FLOOD=0 ;;
        -h | --help) usage; exit 0 ;;
        *) echo "run.sh: unknown argument: $1 (see --help)" >&2; exit 2 ;;
    esac
    shift
done
if ((QUICK)); then
    ((rounds_set)) || ROUNDS=2
    ((duration_set)) || DURATION=2
fi
[[ $ROUNDS =~ ^[1-9][0-9]*$ && $DURATION =~ ^[1-9][0-9]*$ ]] || {
    echo "run.sh: --rounds and --duration take positive integers" >&2
    exit 2
}
case $OUT in /*) ;; *) OUT="$PWD/$OUT" ;; esac

# The binary is build/jwtd (build/src/jwtd in older trees); JWTD_BIN overrides.
JWTD=${JWTD_BIN:-}
if [[ -z $JWTD ]]; then
    JWTD=$REPO_DIR/build/jwtd
    [[ -x $JWTD || ! -x $REPO_DIR/build/src/jwtd ]] || JWTD=$REPO_DIR/build/src/jwtd
fi
WORKERS=${JWTD_WORKERS:-2}
# jwtd's default confines password hashing to every CPU but the first (a
# reserved core for request threads); the raw argon2id rate is measured on
# the same CPUs with as many threads, so that the ratio compares like with
# like.
NCPU=$(nproc)
if ((NCPU >= 2)); then
    HASH_CPUS=${JWTD_HASH_CPUS:-1-$((NCPU - 1))}
    HASH_WORKERS=${JWTD_HASH_WORKERS:-$((NCPU - 1))}
else
    HASH_CPUS=${JWTD_HASH_CPUS:-all}
    HASH_WORKERS=${JWTD_HASH_WORKERS:-1}
fi
ARGON2_M=${JWTD_ARGON2_MEMORY:-19456}
ARGON2_T=${JWTD_ARGON2_ITERATIONS:-2}
ARGON2_P=${JWTD_ARGON2_PARALLELISM:-1}
# wrk shares the two cores with the server. Two threads let the client use
# whichever core the server leaves idle; 32 connections (16 per wrk thread,
# 16 per server worker) keep both servers saturated without piling up queue
# latency (in trials 64 gave the same throughput with twice the median
# latency and, for jwtd, 6x the p99).
WRK_THREADS=${WRK_THREADS:-2}
WRK_CONNECTIONS=${WRK_CONNECTIONS:-32}
# Logins: enough concurrent requests to keep every hashing thread busy (jwtd:
# JWTD_HASH_WORKERS; the peer: libuv's 4 threads), far below jwtd's default
# hashing queue (64), so no 503 server_busy is ever provoked.
LOGIN_CONNECTIONS=${LOGIN_CONNECTIONS:-8}
# Refresh chains: one connection per wrk thread (see refresh.lua).
REFRESH_CONNECTIONS=${REFRESH_CONNECTIONS:-4}
# Distinct access tokens for the cold verify path: 3x the 8192 slots of
# jwtd's direct-mapped verification cache, so cycling through them hits the
# cache only ~e^-3 = 5% of the time (the real rate is read from /metrics).
COLD_TOKENS=${COLD_TOKENS:-24576}
# The tokens are minted before the rounds and must stay valid to the end.
ACCESS_TTL=${JWTD_ACCESS_TTL:-12h}
NEST_SRC=${NEST_PEER_DIR:-$REPO_DIR/../shared/peers/nestjs}
CACHE_DIR=${BENCH_CACHE:-$BENCH_DIR/.cache}
NGINX=/usr/sbin/nginx

log() { printf '[bench %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# ---------------------------------------------------------- tool checks --

missing=()
command -v wrk >/dev/null || missing+=("wrk (apt-get install wrk)")
[[ -x $NGINX ]] || missing+=("nginx ($NGINX; apt-get install nginx-light or nginx)")
command -v curl >/dev/null || missing+=("curl")
command -v python3 >/dev/null || missing+=("python3")
command -v cc >/dev/null || missing+=("cc (apt-get install gcc)")
[[ -r /usr/include/argon2.h ]] || missing+=("argon2.h (apt-get install libargon2-dev)")
[[ -x $JWTD ]] || missing+=("jwtd binary at $JWTD (meson setup build && ninja -C build)")
if ((${#missing[@]})); then
    printf 'run.sh: missing: %s\n' "${missing[@]}" >&2
    exit 1
fi
PEER_NOTE=""
if ((USE_PEER)); then
    if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
        log "node/npm not found: the NestJS peer comparison is skipped (apt-get install nodejs npm)"
        PEER_NOTE="node/npm not installed"
        USE_PEER=0
    elif [[ ! -f $NEST_SRC/package-lock.json ]]; then
        log "no NestJS peer at $NEST_SRC: its comparison is skipped"
        PEER_NOTE="peer sources not found at $NEST_SRC"
        USE_PEER=0
    fi
else
    PEER_NOTE="skipped with --no-peer"
fi

# ------------------------------------------------- processes and cleanup --

TMP=$(mktemp -d "${TMPDIR:-/tmp}/jwtd-bench.XXXXXX")
PIDS=()          # every background process this script started
OK=0             # set at the very end; decides whether TMP is kept

cleanup() {
    set +e
    trap - ERR   # failures while stopping things are expected and harmless
    local pid i
    for pid in "${PIDS[@]}"; do
        kill -TERM "$pid" 2>/dev/null
    done
    for pid in "${PIDS[@]}"; do
        # Give each process up to 5 s to shut down cleanly, then insist.
        for ((i = 0; i < 50; i++)); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
    done
    [[ ${PG_STARTED:-0} != 1 ]] || pg_stop
    if ((OK)) && [[ ${BENCH_KEEP_TMP:-0} != 1 ]]; then
        rm -rf "$TMP"
    else
        log "logs and databases kept in $TMP"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# wait_http URL PID LOG: wait until URL answers any HTTP status (max 15 s).
# Returns 1 if the process died or never answered.
wait_http() {
    local url=$1 pid=$2 i
    for ((i = 0; i < 150; i++)); do
        kill -0 "$pid" 2>/dev/null || return 1
        if curl -s -o /dev/null --max-time 1 "$url"; then
            return 0
        fi
        sleep 0.1
    done
    return 1
}

# json_field FIELD: print a top-level string field of the JSON on stdin.
json_field() {
    python3 -c 'import json, sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"
}

# post URL JSON EXPECTED_STATUS: POST a JSON body, print the response body,
# fail unless the status is the expected one.
post() {
    local url=$1 body=$2 want=$3 out status
    out=$(curl -s -w '\n%{http_code}' -X POST -H 'Content-Type: application/json' \
        --data "$body" "$url") || die "POST $url: connection failed"
    status=${out##*$'\n'}
    out=${out%$'\n'*}
    [[ $status == "$want" ]] || die "POST $url answered $status (wanted $want): $out"
    printf '%s\n' "$out"
}

# ------------------------------------------------------------ nginx --

start_nginx() {
    local dir=$TMP/nginx
    mkdir -p "$dir/logs" "$dir/temp"
    NGINX_PORT=$(free_port)
    cat >"$dir/nginx.conf" <<EOF
# Generated by bench/run.sh: the baseline, an empty 200 from nginx.
daemon off;
worker_processes $WORKERS;
pid $dir/nginx.pid;
error_log $dir/logs/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path $dir/temp/body;
    proxy_temp_path $dir/temp/proxy;
    fastcgi_temp_path $dir/temp/fastcgi;
    uwsgi_temp_path $dir/temp/uwsgi;
    scgi_temp_path $dir/temp/scgi;
    keepalive_requests 1000000;
    keepalive_timeout 75s;
    server {
        listen 127.0.0.1:$NGINX_PORT;
        location / { return 200; }
    }
}
EOF
    "$NGINX" -e "$dir/logs/error.log" -p "$dir" -c "$dir/nginx.conf" \
        >"$dir/logs/stdout.log" 2>&1 &
    PIDS+=($!)
    wait_http "http://127.0.0.1:$NGINX_PORT/" "$!" ||
        die "nginx did not start: $(tail -n 3 "$dir/logs/error.log" 2>/dev/null)"
    local status
    status=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$NGINX_PORT/")
    [[ $status == 200 ]] || die "nginx answered $status instead of 200"
    log "nginx: $WORKERS workers on 127.0.0.1:$NGINX_PORT"
}

# ------------------------------------------------------------- jwtd --

BENCH_USER=bench_user
# Random, so no dictionary check (libpwquality) can object to it; base64url
# characters only, so it needs no JSON escaping.
BENCH_PASSWORD=$(python3 -c "import secrets; print(secrets.token_urlsafe(24))")
declare -A JWTD_PORT=() JWTD_TOKEN=()
ALGS=()          # algorithms that started, in benchmark order
declare -A SKIPPED=()

# start_jwtd ALG: start an instance on a fresh database, sign up and log in
# the bench user. Returns 1 (with the reason in SKIPPED[ALG]) when jwtd does
# not start with this algorithm.
start_jwtd() {
    local alg=$1 name=${2:-$1} database=${3:-} dir=$TMP/jwtd-${2:-$1} port pid reason
    mkdir -p "$dir"
    port=$(free_port)
    local -a env_args=(env -u JWTD_JWT_SECRET)
    if [[ $alg == HS256 ]]; then
        # 48 random bytes, base64: a secret of 64 bytes (jwtd takes it raw).
        env_args+=("JWTD_JWT_SECRET=$(head -c 48 /dev/urandom | base64 -w0)")
    fi
    "${env_args[@]}" \
        JWTD_LISTEN="127.0.0.1:$port" \
        JWTD_DATABASE="${database:-sqlite:$dir/jwtd.db}" \
        JWTD_JWT_ALG="$alg" \
        JWTD_ACCESS_TTL="$ACCESS_TTL" \
        JWTD_WORKERS="$WORKERS" \
        JWTD_HASH_WORKERS="$HASH_WORKERS" \
        JWTD_HASH_CPUS="$HASH_CPUS" \
        JWTD_ARGON2_MEMORY="$ARGON2_M" \
        JWTD_ARGON2_ITERATIONS="$ARGON2_T" \
        JWTD_ARGON2_PARALLELISM="$ARGON2_P" \
        JWTD_LOG_LEVEL="${JWTD_LOG_LEVEL:-warn}" \
        JWTD_SIGNUP_RATE=1000000 \
        JWTD_REFRESH_RATE=1000000 \
        "$JWTD" serve >"$dir/jwtd.log" 2>&1 &
    pid=$!
    PIDS+=("$pid")
    if ! wait_http "http://127.0.0.1:$port/healthz" "$pid"; then
        reason=$(grep -m1 -v '^$' "$dir/jwtd.log" 2>/dev/null || true)
        SKIPPED[$name]="start-up failed: ${reason:-no output}"
        return 1
    fi
    # From here on every failure is fatal (explicit `|| die`: set -e does not
    # apply inside a function called as `start_jwtd ... || ...`).
    local base="http://127.0.0.1:$port" creds login
    creds=$(printf '{"username":"%s","password":"%s"}' "$BENCH_USER" "$BENCH_PASSWORD")
    post "$base/auth/signup" "$creds" 201 >/dev/null || die "jwtd $name: signup failed"
    login=$(post "$base/auth/login" "$creds" 200) || die "jwtd $name: login failed"
    JWTD_TOKEN[$name]=$(json_field access_token <<<"$login") || die "jwtd $name: no access_token"
    JWTD_PORT[$name]=$port
    # One check by hand before any load: the token must verify.
    local status
    status=$(curl -s -o /dev/null -w '%{http_code}' \
        -H "Authorization: Bearer ${JWTD_TOKEN[$name]}" "$base/auth/verify")
    [[ $status == 200 ]] || die "jwtd $name: /auth/verify answered $status to a fresh token"
    [[ $name == "$alg" ]] && ALGS+=("$alg")
    log "jwtd $name: 127.0.0.1:$port (workers=$WORKERS, hash workers=$HASH_WORKERS)"
}

# ------------------------------------------------------ NestJS peer --

# prepare_peer: copy the peer into the cache, `npm ci`, compile it. Reused
# while the peer's sources and lock file are unchanged (stamp = their hash).
prepare_peer() {
    local dest=$CACHE_DIR/nestjs-peer stamp
    stamp=$(cd "$NEST_SRC" && find package.json package-lock.json tsconfig.json src -type f \
        -print0 | sort -z | xargs -0 sha256sum | sha256sum | cut -d' ' -f1)
    if [[ -f $dest/.bench-stamp && $(cat "$dest/.bench-stamp") == "$stamp" &&
        -f $dest/dist/main.js ]]; then
        log "NestJS peer: reusing the build in $dest"
        return 0
    fi
    log "NestJS peer: building in $dest (npm ci compiles better-sqlite3, ~1 min)"
    rm -rf "$dest"
    mkdir -p "$CACHE_DIR"
    cp -r "$NEST_SRC" "$dest"
    chmod -R u+w "$dest"   # shared/ may be read-only; the copy must not be
    rm -rf "$dest/node_modules" "$dest/dist"
    if ! (cd "$dest" && npm ci --no-audit --no-fund && npx tsc &&
        node -e "require('bcrypt'); require('better-sqlite3')(':memory:')") \
        >"$TMP/peer-build.log" 2>&1; then
        tail -n 20 "$TMP/peer-build.log" >&2
        PEER_NOTE="npm ci / tsc failed (see the output above)"
        return 1
    fi
    echo "$stamp" >"$dest/.bench-stamp"
}

NEST_PORT="" NEST_TOKEN=""
start_peer() {
    local dir=$CACHE_DIR/nestjs-peer pid base creds login
    NEST_PORT=$(free_port)
    (cd "$dir" && exec env PORT="$NEST_PORT" HOST=127.0.0.1 QUIET=1 JWT_EXPIRES=12h \
        JWT_SECRET="$(head -c 48 /dev/urandom | base64 -w0)" DB_PATH="$TMP/nest-peer.db" \
        node dist/main.js) >"$TMP/nest-peer.log" 2>&1 &
    pid=$!
    PIDS+=("$pid")
    if ! wait_http "http://127.0.0.1:$NEST_PORT/protected" "$pid"; then
        tail -n 20 "$TMP/nest-peer.log" >&2
        PEER_NOTE="the peer did not start"
        return 1
    fi
    base="http://127.0.0.1:$NEST_PORT"
    creds=$(printf '{"username":"%s","password":"%s"}' "$BENCH_USER" "$BENCH_PASSWORD")
    post "$base/users/signup" "$creds" 201 >/dev/null || die "NestJS peer: signup failed"
    login=$(post "$base/auth/login" "$creds" 201) || die "NestJS peer: login failed"
    NEST_TOKEN=$(json_field access_token <<<"$login") || die "NestJS peer: no access_token"
    local status
    status=$(curl -s -o /dev/null -w '%{http_code}' \
        -H "Authorization: Bearer $NEST_TOKEN" "$base/protected")
    [[ $status == 200 ]] || die "NestJS peer: /protected answered $status to a fresh token"
    log "NestJS peer: 127.0.0.1:$NEST_PORT (node $(node --version), single process)"
}

# ------------------------------------------------------------ wrk --

RESULTS=$TMP/results.tsv
mkdir -p "$TMP/wrk"
: >"$RESULTS"

# parse_wrk FILE: "rps p50 p75 p90 p99 requests non2xx socket_errors",
# latencies in microseconds.
parse_wrk() {
    awk '
        function us(s, v) {
            v = s + 0
            if (s ~ /us$/) return v
            if (s ~ /ms$/) return v * 1e3
            if (s ~ /m$/) return v * 60e6
            if (s ~ /h$/) return v * 3600e6
            if (s ~ /s$/) return v * 1e6
            return v
        }
        /^Requests\/sec:/ { rps = $2 }
        /^ +50% / { p50 = us($2) }
        /^ +75% / { p75 = us($2) }
        /^ +90% / { p90 = us($2) }
        /^ +99% / { p99 = us($2) }
        / requests in / { reqs = $1 }
        /Non-2xx or 3xx responses:/ { non2xx = $NF }
        /Socket errors:/ { gsub(",", ""); errs = $4 + $6 + $8 + $10 }
        END {
            if (rps == "") exit 1
            printf "%s %.1f %.1f %.1f %.1f %d %d %d\n", rps, p50, p75, p90, p99, reqs, non2xx, errs
        }' "$1"
}

# cache_counts BASE_URL: "hits misses" of jwtd's verification cache.
cache_counts() {
    curl -s --max-time 5 "$1/metrics" | awk '
        /^jwtd_verify_cache_hits_total/ { h = $2 }
        /^jwtd_verify_cache_misses_total/ { m = $2 }
        END { printf "%d %d\n", h, m }'
}

# bench GROUP TARGET ROUND JWTD_URL|- WRK_ARGS...: run wrk, keep its output,
# append a result row. With a jwtd base URL, the verification cache's hit
# ratio during the run (from /metrics) is recorded too. Any non-2xx answer or
# socket error fails the whole run: a fast error page would inflate the rate,
# and a benchmark of errors is worthless.
bench() {
    local group=$1 target=$2 round=$3 jwtd_url=$4 file row hit_ratio="" h0 m0 h1 m1
    shift 4
    file="$TMP/wrk/$group-$target-$round.txt"
    [[ $jwtd_url == - ]] || read -r h0 m0 < <(cache_counts "$jwtd_url")
    "${wrk_prefix[@]}" wrk "$@" >"$file" 2>&1 || { cat "$file" >&2; die "wrk failed ($group $target)"; }
    if [[ $jwtd_url != - ]]; then
        read -r h1 m1 < <(cache_counts "$jwtd_url")
        if ((h1 + m1 > h0 + m0)); then
            hit_ratio=$(awk -v h=$((h1 - h0)) -v m=$((m1 - m0)) 'BEGIN { printf "%.4f", h / (h + m) }')
        fi
    fi
    row=$(parse_wrk "$file") || { cat "$file" >&2; die "cannot read wrk's output ($group $target)"; }
    local -a f
    read -r -a f <<<"$row"
    if ((f[6] > 0 || f[7] > 0)); then
        cat "$file" >&2
        die "$group $target round $round: ${f[6]} non-2xx answers, ${f[7]} socket errors"
    fi
    printf '%s\t%s\t%s\t%s\t%s\n' "$group" "$target" "$round" "${row// /$'\t'}" "$hit_ratio" \
        >>"$RESULTS"
    log "$(printf '%-11s %-12s round %s: %10.1f req/s  p50 %8.0f us  p99 %8.0f us%s' \
        "$group" "$target" "$round" "${f[0]}" "${f[1]}" "${f[4]}" \
        "${hit_ratio:+  cache hits $hit_ratio}")"
}

wrk_prefix=()   # e.g. (taskset -c 0): how bench() starts wrk

wrk_load() { echo -t"$WRK_THREADS" -c"$WRK_CONNECTIONS" -d"${1}s" --latency; }

verify_nginx() {
    # shellcheck disable=SC2046  # wrk_load is a word list on purpose
    bench verify nginx "$1" - $(wrk_load "$2") "http://127.0.0.1:$NGINX_PORT/"
}
verify_jwtd() {
    local alg=$1
    # shellcheck disable=SC2046
    bench verify "jwtd-$alg" "$2" "http://127.0.0.1:${JWTD_PORT[$alg]}" $(wrk_load "$3") \
        -H "Authorization: Bearer ${JWTD_TOKEN[$alg]}" \
        "http://127.0.0.1:${JWTD_PORT[$alg]}/auth/verify"
}
verify_cold() {
    local alg=$1
    # shellcheck disable=SC2046
    bench verify_cold "jwtd-$alg" "$2" "http://127.0.0.1:${JWTD_PORT[$alg]}" $(wrk_load "$3") \
        -s "$BENCH_DIR/verify_cold.lua" "http://127.0.0.1:${JWTD_PORT[$alg]}/auth/verify" \
        -- "$TMP/jwtd-$alg/access-tokens.txt" "$WRK_THREADS"
}
verify_peer() {
    # shellcheck disable=SC2046
    bench verify nestjs "$1" - $(wrk_load "$2") \
        -H "Authorization: Bearer $NEST_TOKEN" "http://127.0.0.1:$NEST_PORT/protected"
}

# ------------------------------------------------------------- main --

log "rounds=$ROUNDS duration=${DURATION}s wrk -t$WRK_THREADS -c$WRK_CONNECTIONS; tmp $TMP"
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
log "load average before: $LOAD_BEFORE"

log "compiling bench/argon2_rate.c"
cc -std=c11 -O2 -Wall -Wextra -o "$TMP/argon2_rate" "$BENCH_DIR/argon2_rate.c" -largon2 -lpthread

start_nginx
start_jwtd ES256 || die "jwtd ES256 (the default) did not start: ${SKIPPED[ES256]}"
start_jwtd HS256 || die "jwtd HS256 did not start: ${SKIPPED[HS256]}"
for alg in EdDSA RS256; do
    start_jwtd "$alg" || log "jwtd $alg skipped: ${SKIPPED[$alg]}"
done
if ((USE_PEER)); then
    if prepare_peer && start_peer; then :; else
        log "NestJS peer skipped: $PEER_NOTE"
        USE_PEER=0
    fi
fi

# mint_tokens ALG: COLD_TOKENS distinct access tokens for the cold verify
# path, minted by refresh chains (~100x faster than logins) with
# refresh.lua's ACCESS_PREFIX option, into jwtd-ALG/access-tokens.txt.
mint_tokens() {
    local alg=$1 dir=$TMP/jwtd-$1 base="http://127.0.0.1:${JWTD_PORT[$1]}" creds count=0 try i
    creds=$(printf '{"username":"%s","password":"%s"}' "$BENCH_USER" "$BENCH_PASSWORD")
    for ((try = 1; try <= 20 && count < COLD_TOKENS; try++)); do
        : >"$dir/seed-tokens.txt"
        for ((i = 0; i < REFRESH_CONNECTIONS; i++)); do
            post "$base/auth/login" "$creds" 200 | json_field refresh_token >>"$dir/seed-tokens.txt"
        done
        wrk -t"$REFRESH_CONNECTIONS" -c"$REFRESH_CONNECTIONS" -d3s -s "$BENCH_DIR/refresh.lua" \
            "$base/auth/refresh" -- "$dir/seed-tokens.txt" "$dir/minted-" >"$dir/mint-$try.txt" 2>&1 ||
            { cat "$dir/mint-$try.txt" >&2; die "jwtd $alg: minting tokens failed"; }
        if grep -q 'Non-2xx' "$dir/mint-$try.txt"; then
            cat "$dir/mint-$try.txt" >&2
            die "jwtd $alg: refresh refused while minting tokens"
        fi
        count=$(cat "$dir"/minted-* | wc -l)
    done
    ((count >= COLD_TOKENS)) || die "jwtd $alg: only $count tokens minted"
    awk -v n="$COLD_TOKENS" 'NR > n { exit } { print }' "$dir"/minted-* >"$dir/access-tokens.txt"
    log "jwtd $alg: $COLD_TOKENS distinct access tokens minted for the cold path"
}
for alg in "${ALGS[@]}"; do
    mint_tokens "$alg"
done

# Warm-up, not recorded: first-touch page faults, CPU frequency, caches.
log "warm-up (1 s per target, not recorded)"
targets=(nginx "${ALGS[@]}")
((USE_PEER)) && targets+=(nestjs)
for target in "${targets[@]}"; do
    case $target in
        nginx) wrk -t1 -c8 -d1s "http://127.0.0.1:$NGINX_PORT/" >/dev/null ;;
        nestjs) wrk -t1 -c8 -d1s -H "Authorization: Bearer $NEST_TOKEN" \
            "http://127.0.0.1:$NEST_PORT/protected" >/dev/null ;;
        *) wrk -t1 -c8 -d1s -H "Authorization: Bearer ${JWTD_TOKEN[$target]}" \
            "http://127.0.0.1:${JWTD_PORT[$target]}/auth/verify" >/dev/null ;;
    esac
done

# Verify rounds: nginx before every other target, so each jwtd (and peer)
# run has a baseline run taken moments earlier. Hot path (one token, always
# in jwtd's verification cache), the peer, then the cold path (many tokens).
for ((r = 1; r <= ROUNDS; r++)); do
    for alg in "${ALGS[@]}"; do
        verify_nginx "$r" "$DURATION"
        verify_jwtd "$alg" "$r" "$DURATION"
    done
    if ((USE_PEER)); then
        verify_nginx "$r" "$DURATION"
        verify_peer "$r" "$DURATION"
    fi
    for alg in "${ALGS[@]}"; do
        verify_nginx "$r" "$DURATION"
        verify_cold "$alg" "$r" "$DURATION"
    done
done

# Login rounds. Logins go to the ES256 instance (the default configuration).
creds_args=(/auth/login "$BENCH_USER" "$BENCH_PASSWORD")
ES256_URL="http://127.0.0.1:${JWTD_PORT[ES256]}"
for ((r = 1; r <= ROUNDS; r++)); do
    # Raw argon2id: as many threads as jwtd's hashing pool, same parameters.
    if [[ $HASH_CPUS == all ]]; then
        out=$("$TMP/argon2_rate" "$HASH_WORKERS" "$DURATION" "$ARGON2_M" "$ARGON2_T" "$ARGON2_P")
    else
        out=$(taskset -c "$HASH_CPUS" "$TMP/argon2_rate" "$HASH_WORKERS" "$DURATION" \
            "$ARGON2_M" "$ARGON2_T" "$ARGON2_P")
    fi
    rate=${out##*rate=}
    hashes=${out%% *}
    hashes=${hashes#hashes=}
    printf 'argon2\targon2id\t%s\t%s\t\t\t\t\t%s\t0\t0\t\n' "$r" "$rate" "$hashes" >>"$RESULTS"
    log "$(printf '%-11s %-12s round %s: %10.1f hashes/s (%s threads)' argon2 argon2id "$r" "$rate" "$HASH_WORKERS")"
    sleep 1

    bench login jwtd "$r" - -t1 -c"$LOGIN_CONNECTIONS" -d"${DURATION}s" --latency \
        -s "$BENCH_DIR/login.lua" "$ES256_URL/auth/login" -- "${creds_args[@]}"
    sleep 1   # let queued hashing jobs drain before the next measurement

    if ((USE_PEER)); then
        bench login nestjs "$r" - -t1 -c"$LOGIN_CONNECTIONS" -d"${DURATION}s" --latency \
            -s "$BENCH_DIR/login.lua" "http://127.0.0.1:$NEST_PORT/auth/login" -- "${creds_args[@]}"
        sleep 1
    fi

    # Refresh: one fresh session (login) per chain, then rotate for DURATION.
    tokens=$TMP/refresh-tokens-$r.txt
    : >"$tokens"
    creds=$(printf '{"username":"%s","password":"%s"}' "$BENCH_USER" "$BENCH_PASSWORD")
    for ((i = 0; i < REFRESH_CONNECTIONS; i++)); do
        post "$ES256_URL/auth/login" "$creds" 200 | json_field refresh_token >>"$tokens"
    done
    bench refresh jwtd "$r" - -t"$REFRESH_CONNECTIONS" -c"$REFRESH_CONNECTIONS" \
        -d"${DURATION}s" --latency -s "$BENCH_DIR/refresh.lua" "$ES256_URL/auth/refresh" -- "$tokens"
    # refresh.lua's own check: every token presented once (the chains held).
    check=$(grep '^refresh.lua:' "$TMP/wrk/refresh-jwtd-$r.txt") ||
        die "refresh round $r: refresh.lua printed no self-check"
    [[ $check == *" repeated=0" && $check == *"chains=$REFRESH_CONNECTIONS "* ]] ||
        die "refresh round $r: token chains broke ($check)"
done


# ------------------------------------------- verify during a login flood --
# The p99 of /auth/verify while clients flood logins, against its p99 idle
# in the same round (goal: at most 2x). Latency, not throughput: two verify
# connections (-t1 -c2) leave the server unsaturated, so the p99 shows how
# long a token check waits for the CPU, not a queue of its own. The flood is
# 8 connections of successful logins (8 in flight for one account stays
# under the per-username limit of 10), as many as the hashing pool takes.
# With jwtd's reserved core (the default), the verify client runs on that
# core, idle and flooded alike: a load generator scheduled onto the hashing
# core waits behind the hashing thread for up to a scheduler tick (4 ms at
# HZ=250, seen with `perf sched`), which is the client's delay, not
# jwtd's. A real client sits on another machine. FLOOD_CLIENT_CPUS=any
# turns this off.
FLOOD_CLIENT_CPUS=${FLOOD_CLIENT_CPUS:-}
if [[ -z $FLOOD_CLIENT_CPUS ]]; then
    if ((NCPU >= 2)) && [[ $HASH_CPUS == "1-$((NCPU - 1))" ]]; then FLOOD_CLIENT_CPUS=0; else FLOOD_CLIENT_CPUS=any; fi
fi
if ((USE_FLOOD)); then
    [[ $FLOOD_CLIENT_CPUS == any ]] || wrk_prefix=(taskset -c "$FLOOD_CLIENT_CPUS")
    for ((r = 1; r <= ROUNDS; r++)); do
        bench flood idle "$r" - -t1 -c2 -d"${DURATION}s" --latency \
            -H "Authorization: Bearer ${JWTD_TOKEN[ES256]}" "$ES256_URL/auth/verify"
        wrk -t1 -c8 -d"$((DURATION + 2))s" -s "$BENCH_DIR/login.lua" "$ES256_URL/auth/login" \
            -- "${creds_args[@]}" >"$TMP/wrk/flood-logins-$r.txt" 2>&1 &
        flood_pid=$!
        sleep 1
        bench flood during_login_flood "$r" - -t1 -c2 -d"${DURATION}s" --latency \
            -H "Authorization: Bearer ${JWTD_TOKEN[ES256]}" "$ES256_URL/auth/verify"
        wait "$flood_pid" || true
        logins=$(awk '/^Requests\/sec:/{print $2}' "$TMP/wrk/flood-logins-$r.txt")
        log "flood round $r: ${logins:-?} logins/s during the flood"
        printf 'flood\tlogins_per_s\t%s\t%s\t\t\t\t\t0\t0\t0\t\n' "$r" "${logins:-0}" >>"$RESULTS"
        sleep 2   # drain the hashing queue
    done
    wrk_prefix=()
fi

# ------------------------------------------- a populated revoked set --
# The revocation check costs one atomic load while nothing is revoked; with
# revocations in memory it is a hash lookup under a read lock. 10,000 fake
# revocations are written straight into the ES256 instance's revocation feed
# (a benchmark shortcut; the server reads them on its next poll), then the
# hot verify path runs again beside nginx.
REVOKED_N=10000
python3 - "$TMP/jwtd-ES256/jwtd.db" "$REVOKED_N" <<'PY'
import sqlite3, sys, time, uuid
db, n = sys.argv[1], int(sys.argv[2])
now = int(time.time() * 1000)
con = sqlite3.connect(db, timeout=30)
con.executemany("INSERT OR REPLACE INTO revocations(session_id, revoked_at_ms, expires_at_ms)"
                " VALUES (?, ?, ?)", [(str(uuid.uuid4()), now, now + 3600 * 1000) for _ in range(n)])
con.commit()
con.close()
PY
sleep 1
revoked_now=$(curl -s "$ES256_URL/metrics" | awk '/^jwtd_revoked_sessions /{print $2}')
log "jwtd ES256: $revoked_now revoked sessions in memory"
for ((r = 1; r <= ROUNDS; r++)); do
    verify_nginx "$r" "$DURATION"
    # shellcheck disable=SC2046
    bench verify_revoked jwtd-ES256 "$r" "$ES256_URL" $(wrk_load "$DURATION") \
        -H "Authorization: Bearer ${JWTD_TOKEN[ES256]}" "$ES256_URL/auth/verify"
done

# ------------------------------------------------------- PostgreSQL --
# The same login, refresh and verify measurements with jwtd on PostgreSQL
# (a throwaway cluster on loopback, scripts/pg.sh), beside SQLite.
PG_NOTE=""
if ((USE_PG)); then
    # shellcheck source=scripts/pg.sh
    if . "$REPO_DIR/scripts/pg.sh" && pg_start >"$TMP/pg-start.log" 2>&1; then
        PG_STARTED=1
        if start_jwtd ES256 pg "$PG_URL"; then
            PG_URL_BASE="http://127.0.0.1:${JWTD_PORT[pg]}"
            for ((r = 1; r <= ROUNDS; r++)); do
                verify_nginx "$r" "$DURATION"
                # shellcheck disable=SC2046
                bench verify_pg jwtd-ES256 "$r" "$PG_URL_BASE" $(wrk_load "$DURATION") \
                    -H "Authorization: Bearer ${JWTD_TOKEN[pg]}" "$PG_URL_BASE/auth/verify"
                bench login_pg jwtd "$r" - -t1 -c"$LOGIN_CONNECTIONS" -d"${DURATION}s" --latency \
                    -s "$BENCH_DIR/login.lua" "$PG_URL_BASE/auth/login" -- "${creds_args[@]}"
                sleep 1
                tokens=$TMP/refresh-pg-tokens-$r.txt
                : >"$tokens"
                for ((i = 0; i < REFRESH_CONNECTIONS; i++)); do
                    post "$PG_URL_BASE/auth/login" "$creds" 200 | json_field refresh_token >>"$tokens"
                done
                bench refresh_pg jwtd "$r" - -t"$REFRESH_CONNECTIONS" -c"$REFRESH_CONNECTIONS" \
                    -d"${DURATION}s" --latency -s "$BENCH_DIR/refresh.lua" \
                    "$PG_URL_BASE/auth/refresh" -- "$tokens"
                check=$(grep '^refresh.lua:' "$TMP/wrk/refresh_pg-jwtd-$r.txt") ||
                    die "refresh_pg round $r: refresh.lua printed no self-check"
                [[ $check == *" repeated=0"* ]] || die "refresh_pg round $r: chains broke ($check)"
            done
        else
            PG_NOTE="jwtd on PostgreSQL did not start: ${SKIPPED[pg]}"
        fi
    else
        PG_NOTE="PostgreSQL could not be started ($(tail -1 "$TMP/pg-start.log" 2>/dev/null))"
    fi
    [[ -z $PG_NOTE ]] || log "PostgreSQL measurements skipped: $PG_NOTE"
fi

LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)
log "load average after: $LOAD_AFTER"

# ---------------------------------------------------------- summary --

META=$TMP/meta.tsv
{
    printf 'command\t%s\n' "$COMMAND_LINE"
    printf 'quick\t%s\n' "$QUICK"
    printf 'rounds\t%s\n' "$ROUNDS"
    printf 'duration_s\t%s\n' "$DURATION"
    printf 'load_before\t%s\n' "$LOAD_BEFORE"
    printf 'load_after\t%s\n' "$LOAD_AFTER"
    printf 'nproc\t%s\n' "$(nproc)"
    printf 'cpu_model\t%s\n' "$(grep -m1 '^model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
    printf 'kernel\t%s\n' "$(uname -srm)"
    printf 'jwtd_version\t%s\n' "$("$JWTD" --version 2>&1 | head -n1)"
    printf 'jwtd_commit\t%s\n' "$(git -C "$REPO_DIR" rev-parse --short HEAD 2>/dev/null || echo none)"
    printf 'jwtd_workers\t%s\n' "$WORKERS"
    printf 'hash_workers\t%s\n' "$HASH_WORKERS"
    printf 'argon2\tm=%s,t=%s,p=%s\n' "$ARGON2_M" "$ARGON2_T" "$ARGON2_P"
    printf 'wrk\t-t%s -c%s\n' "$WRK_THREADS" "$WRK_CONNECTIONS"
    printf 'login_connections\t%s\n' "$LOGIN_CONNECTIONS"
    printf 'refresh_connections\t%s\n' "$REFRESH_CONNECTIONS"
    printf 'cold_tokens\t%s\n' "$COLD_TOKENS"
    printf 'access_ttl\t%s\n' "$ACCESS_TTL"
    printf 'nginx_version\t%s\n' "$("$NGINX" -v 2>&1 | sed 's/^nginx version: //')"
    printf 'wrk_version\t%s\n' "$({ wrk -v 2>&1 || true; } | head -n1 | cut -d' ' -f2)"
    printf 'jwtd_sqlite_sync\t%s\n' "${JWTD_SQLITE_SYNC:-full}"
    printf 'jwtd_hash_priority\t%s\n' "${JWTD_HASH_PRIORITY:-batch}"
    printf 'jwtd_hash_cpus\t%s\n' "$HASH_CPUS"
    printf 'flood_client_cpus\t%s\n' "$FLOOD_CLIENT_CPUS"
    printf 'revoked_sessions\t%s\n' "${revoked_now:-0}"
    [[ -z $PG_NOTE ]] || printf 'pg_skipped\t%s\n' "$PG_NOTE"
    if ((USE_PEER)); then
        printf 'node_version\t%s\n' "$(node --version)"
    else
        printf 'peer_skipped\t%s\n' "$PEER_NOTE"
    fi
    for alg in "${!SKIPPED[@]}"; do
        printf 'skipped_%s\t%s\n' "$alg" "${SKIPPED[$alg]}"
    done
} >"$META"

mkdir -p "$(dirname "$OUT")"
python3 "$BENCH_DIR/summarize.py" "$META" "$RESULTS" "$OUT"
log "JSON summary written to $OUT"
OK=1
