#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# bench/ab.sh — a paired A/B of the hot /auth/verify path of two jwtd
# binaries (say, two commits), to tell a change of the code from a change of
# the machine: both serve side by side (HS256, fresh SQLite files, cheap
# argon2id), and wrk alternates between them, A then B, N times.
#
# Usage: bench/ab.sh BINARY_A BINARY_B [PAIRS (10)] [SECONDS (4)]
# Prints each run, then the medians and the median of the B/A ratios.
set -euo pipefail

A=$(realpath "${1:?usage: bench/ab.sh BINARY_A BINARY_B [PAIRS] [SECONDS]}")
B=$(realpath "${2:?usage: bench/ab.sh BINARY_A BINARY_B [PAIRS] [SECONDS]}")
PAIRS=${3:-10}
SECS=${4:-4}
PY=/usr/bin/python3
command -v wrk >/dev/null || { echo "ab.sh: wrk is needed (apt-get install wrk)" >&2; exit 1; }

dir=$(mktemp -d /tmp/jwtd-ab.XXXXXX)
cleanup() {
    for f in "$dir"/*/pid; do [ -f "$f" ] && kill "$(cat "$f")" 2>/dev/null; done
    wait 2>/dev/null || true
    rm -rf "$dir"
}
trap cleanup EXIT

free_port() { $PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

start() { # name binary -> $dir/name/port
    local port; port=$(free_port)
    mkdir -p "$dir/$1"
    (cd "$dir/$1" && JWTD_LISTEN=127.0.0.1:$port JWTD_DATABASE=sqlite:$dir/$1/jwtd.db \
        JWTD_JWT_ALG=HS256 JWTD_JWT_SECRET=ab-benchmark-secret-of-at-least-32-bytes \
        JWTD_ARGON2_MEMORY=7168 JWTD_ARGON2_ITERATIONS=5 JWTD_ACCESS_TTL=1h \
        exec "$2" serve >"$dir/$1/log" 2>&1) &
    echo $! >"$dir/$1/pid"
    for _ in $(seq 100); do
        curl -fs "http://127.0.0.1:$port/readyz" >/dev/null 2>&1 && { echo "$port" >"$dir/$1/port"; return; }
        sleep 0.1
    done
    echo "ab.sh: $2 did not start; its log:" >&2; cat "$dir/$1/log" >&2; exit 1
}

token() { # port -> an access token
    local body='{"username":"abbench","password":"correct horse battery staple 9"}'
    curl -fs -XPOST -H 'Content-Type: application/json' -d "$body" \
        "http://127.0.0.1:$1/auth/signup" >/dev/null
    curl -fs -XPOST -H 'Content-Type: application/json' -d "$body" \
        "http://127.0.0.1:$1/auth/login" |
        $PY -c 'import json, sys; print(json.load(sys.stdin)["access_token"])'
}

start a "$A"; start b "$B"
pa=$(cat "$dir/a/port"); pb=$(cat "$dir/b/port")
ta=$(token "$pa"); tb=$(token "$pb")
out="$dir/runs"
for i in $(seq "$PAIRS"); do
    for side in a b; do
        if [ $side = a ]; then port=$pa tok=$ta; else port=$pb tok=$tb; fi
        rate=$(wrk -t2 -c32 -d"${SECS}s" -H "Authorization: Bearer $tok" \
            "http://127.0.0.1:$port/auth/verify" | awk '/Non-2xx/{bad=1} /Requests\/sec/{r=$2} END{print bad ? "bad" : r}')
        [ "$rate" != bad ] || { echo "ab.sh: $side answered non-2xx" >&2; exit 1; }
        echo "pair $i $side $rate" | tee -a "$out"
    done
done
$PY - "$out" <<'EOF'
import statistics, sys
runs = {"a": [], "b": []}
for line in open(sys.argv[1]):
    _, _, side, rate = line.split()
    runs[side].append(float(rate))
for side in "ab":
    print("%s: median %.0f req/s (%.0f-%.0f)" % (side.upper(), statistics.median(runs[side]),
                                                 min(runs[side]), max(runs[side])))
print("paired median B/A: %.3f" % statistics.median(b / a for a, b in zip(runs["a"], runs["b"])))
EOF
