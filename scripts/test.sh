#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Every test of jwtd, in the order that fails fastest:
#   1. packages (scripts/deps.sh test)
#   2. release build: unit tests (cmocka), end-to-end tests (pytest) on SQLite
#   3. the same end-to-end suite on a real PostgreSQL started here
#   4. ASan+UBSan build: unit and end-to-end tests again
#   5. libFuzzer targets, a bounded time each (JWTD_FUZZ_SECONDS, default 60)
# Steps can be chosen: scripts/test.sh unit e2e pg asan fuzz (default: all).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
PY=/usr/bin/python3          # Debian's interpreter, with python3-pytest/-jwt
STEPS=("$@")
[ ${#STEPS[@]} -eq 0 ] && STEPS=(unit e2e pg asan fuzz)

want() { local s; for s in "${STEPS[@]}"; do [ "$s" = "$1" ] && return 0; done; return 1; }
step() { printf '\n=== %s (%s)\n' "$1" "$(date +%H:%M:%S)"; }
T0=$(date +%s)

step "packages"
scripts/deps.sh test

build() { # dir, extra meson args...
  local dir=$1; shift
  [ -f "$dir/build.ninja" ] || meson setup "$dir" "$@" >/dev/null
  ninja -C "$dir" >/dev/null
}

step "release build"
build build

step "interop helpers (jose from npm)"
if [ ! -d tests/interop/node_modules/jose ]; then
  (cd tests/interop && npm ci --no-audit --no-fund --loglevel=error)
fi
[ -d tests/interop/node_modules/jose ] || { echo "npm did not install jose"; exit 1; }

if want unit; then
  step "unit tests (release)"
  meson test -C build --print-errorlogs --suite unit
fi

if want e2e; then
  step "end-to-end tests on SQLite (release)"
  JWTD_BIN=$ROOT/build/jwtd $PY -m pytest -q tests/e2e
fi

if want pg; then
  step "end-to-end tests on PostgreSQL (release)"
  # shellcheck source=scripts/pg.sh
  . scripts/pg.sh
  pg_start
  trap pg_stop EXIT
  JWTD_BIN=$ROOT/build/jwtd JWTD_E2E_DATABASE=$PG_URL $PY -m pytest -q tests/e2e
  pg_stop
  trap - EXIT
fi

if want asan; then
  step "ASan+UBSan build"
  build build-asan -Db_sanitize=address,undefined -Db_lundef=false -Dbuildtype=debug
  export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:halt_on_error=1
  export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
  step "unit tests (ASan+UBSan)"
  meson test -C build-asan --print-errorlogs --suite unit --timeout-multiplier 4
  step "end-to-end tests on SQLite (ASan+UBSan)"
  JWTD_BIN=$ROOT/build-asan/jwtd JWTD_E2E_SLOW=1 $PY -m pytest -q tests/e2e
fi

if want fuzz; then
  step "fuzzing (ASan+UBSan, ${JWTD_FUZZ_SECONDS:-60}s per target)"
  scripts/fuzz.sh
fi

printf '\n=== all tests passed in %ss\n' "$(( $(date +%s) - T0 ))"
