#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Every test of jwtd, in the order that fails fastest (docs/testing.md):
#   packages      scripts/deps.sh test
#   build         release build; what its `meson install` puts down
#                 (scripts/install_test.sh); a minimal build (no cmocka, no
#                 libpq) must configure and compile jwtd too: running never
#                 needs test libraries, and it refuses a PostgreSQL URL as
#                 a configuration error
#   unit          cmocka (release), the store suite on SQLite and on a real
#                 PostgreSQL, fuzz regressions replayed, the layering check
#   pg            the end-to-end suite, release build, on PostgreSQL, plus
#                 the modules that start their own PostgreSQL clusters
#   asan          ASan+UBSan build: unit tests, and the end-to-end suite on
#                 SQLite
#   fuzz          libFuzzer targets, JWTD_FUZZ_SECONDS each (default 24), one per
#                 CPU at a time
#   package       the Debian package: build, install, migrate, purge
# The end-to-end suites run in parallel (pytest-xdist) except the tests
# that measure time or load the machine, which run alone afterwards. The
# parallel part leaves a core idle about a fifth of the time (tests that
# wait): the next build (ASan during the PostgreSQL pass, the fuzz targets
# during the ASan pass) runs meanwhile at the lowest priority, and is
# finished before the tests that run alone start.
# Steps can be chosen: scripts/test.sh unit pg asan fuzz package (default:
# all; the build always runs).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
PY=/usr/bin/python3          # Debian's interpreter, with the python3-* test packages
STEPS=("$@")
[ ${#STEPS[@]} -eq 0 ] && STEPS=(unit pg asan fuzz package)
JOBS=${JWTD_E2E_JOBS:-3}

want() { local s; for s in "${STEPS[@]}"; do [ "$s" = "$1" ] && return 0; done; return 1; }
T0=$(date +%s)
LAST=$T0
step() {
  local now; now=$(date +%s)
  printf '\n=== %s (%s, +%ss)\n' "$1" "$(date +%H:%M:%S)" "$((now - LAST))"
  LAST=$now
}

# Background builds: `later NAME command...` starts a function or a program
# at nice 19; `await NAME` waits for it (its output shown on failure),
# `await_all` for every one; they are killed if this script exits first.
declare -A BG_PID=()
BG_DIR=$(mktemp -d /tmp/jwtd-test-bg.XXXXXX)
later() {
  local name=$1; shift
  ( renice -n 19 -p "$BASHPID" >/dev/null; "$@" ) >"$BG_DIR/$name.log" 2>&1 &
  BG_PID[$name]=$!
}
await() {
  local name=$1 rc=0
  [ -n "${BG_PID[$name]:-}" ] || return 0
  wait "${BG_PID[$name]}" || rc=$?
  unset "BG_PID[$name]"
  [ "$rc" = 0 ] && [ -s "$BG_DIR/$name.log" ] && sed "s/^/[$name] /" "$BG_DIR/$name.log" | tail -5
  if [ "$rc" != 0 ]; then
    echo "background step '$name' failed ($rc):"; tail -40 "$BG_DIR/$name.log"
    exit 1
  fi
}
await_all() { local n; for n in "${!BG_PID[@]}"; do await "$n"; done; }
cleanup() {
  local p
  for p in "${BG_PID[@]}"; do pkill -P "$p" 2>/dev/null || true; kill "$p" 2>/dev/null || true; done
  if [ "${PG_UP:-0}" = 1 ]; then pg_stop; fi
  rm -rf "$BG_DIR"
}
trap cleanup EXIT

step "packages"
scripts/deps.sh test

build() { # dir, extra meson args...
  local dir=$1; shift
  [ -f "$dir/build.ninja" ] || meson setup "$dir" "$@" >/dev/null
  ninja -C "$dir" >/dev/null
}

# A pkg-config directory with every .pc file but the test-only and optional
# ones: `meson setup` must succeed and jwtd must compile without them.
minimal_build() {
  local pcdir d f rc=0 out
  pcdir=$(mktemp -d /tmp/jwtd-pc.XXXXXX)
  for d in $(pkg-config --variable pc_path pkg-config | tr ':' ' '); do
    [ -d "$d" ] || continue
    for f in "$d"/*.pc; do
      case "$(basename "$f")" in cmocka.pc|libpq.pc) continue ;; esac
      [ -e "$pcdir/$(basename "$f")" ] || ln -s "$f" "$pcdir/"
    done
  done
  rm -rf build-min
  # --buildtype=release (-O3) too: its warnings (-Werror) differ from the
  # default build's, and packagers build so.
  PKG_CONFIG_LIBDIR=$pcdir PKG_CONFIG_PATH= meson setup build-min --buildtype=release >/dev/null
  grep -q "Run-time dependency cmocka found: NO" build-min/meson-logs/meson-log.txt
  ninja -C build-min jwtd >/dev/null
  ./build-min/jwtd version >/dev/null
  # Without libpq, `config check` refuses a PostgreSQL URL as `serve` does.
  out=$(./build-min/jwtd config check --config none --database=postgres://db/jwtd 2>&1) || rc=$?
  if [ "$rc" != 2 ] || ! grep -q "without PostgreSQL" <<<"$out"; then
    echo "a build without PostgreSQL: jwtd config check exited $rc for a postgres:// URL: $out"
    exit 1
  fi
  rm -rf "$pcdir" build-min
  echo "minimal build: configured without cmocka and libpq, jwtd compiled (-O3) and ran"
}

# While the sanitizer pass runs its parallel tests: the fuzz targets, then
# the Debian packages (installed and tried at the end).
prebuild() {
  if want fuzz; then scripts/fuzz.sh --build-only; fi
  if want package && [ "$(id -u)" -eq 0 ]; then
    scripts/package_test.sh --build-only "$BG_DIR/debs"
  fi
}

interop_helpers() {
  if [ ! -d tests/interop/node_modules/jose ]; then
    (cd tests/interop && npm ci --no-audit --no-fund --loglevel=error)
  fi
  [ -d tests/interop/node_modules/jose ] || { echo "npm did not install jose"; exit 1; }
}

step "release build (and, in the background: jose from npm for the interop tests)"
later interop interop_helpers
build build

step "meson install (into a scratch DESTDIR)"
scripts/install_test.sh build

# In the background until the first timing tests: a build with cmocka and
# libpq hidden from pkg-config.
later minimal minimal_build

# One PostgreSQL cluster for the store suite and the PostgreSQL pass.
PG_UP=0
if want unit || want pg; then
  # shellcheck source=scripts/pg.sh
  . scripts/pg.sh
  pg_start
  PG_UP=1
fi

e2e() { # label, binary, extra env..., -- pytest marker expression for the parallel part
  local label=$1 bin=$2; shift 2
  local envs=() marker_par marker_ser
  while [ "$1" != "--" ]; do envs+=("$1"); shift; done
  shift
  marker_par=$1 marker_ser=$2
  await interop
  step "end-to-end: $label, in parallel ($JOBS workers)"
  env "${envs[@]}" JWTD_BIN="$bin" $PY -m pytest -q -rs -p no:cacheprovider -n "$JOBS" \
    --dist loadfile -m "$marker_par" tests/e2e
  await_all   # nothing else may run during the timing tests
  step "end-to-end: $label, timing and load tests alone"
  env "${envs[@]}" JWTD_BIN="$bin" $PY -m pytest -q -rs -p no:cacheprovider -m "$marker_ser" tests/e2e
}

if want unit; then
  step "unit tests (release)"
  meson test -C build --print-errorlogs --suite unit
  JWTD_TEST_PG_URL=$PG_URL meson test -C build --print-errorlogs --suite store-pg
fi

ASAN_ARGS=(-Db_sanitize=address,undefined -Db_lundef=false -Dbuildtype=debugoptimized)
want asan && later asan-build build build-asan "${ASAN_ARGS[@]}"

if want pg; then
  # The browser tests run once, in the ASan pass (tests/e2e/conftest.py).
  e2e "release build on PostgreSQL" "$ROOT/build/jwtd" JWTD_E2E_DATABASE="$PG_URL" -- \
    "not serial and not browser" "serial and not browser"
fi
if [ "$PG_UP" = 1 ]; then
  pg_stop
  PG_UP=0
fi

if want asan; then
  step "ASan+UBSan build (the rest of it, when the PostgreSQL pass did not leave time)"
  await asan-build
  later prebuild prebuild
  export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:halt_on_error=1
  export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
  step "unit tests (ASan+UBSan)"
  meson test -C build-asan --print-errorlogs --suite unit --timeout-multiplier 4
  # The PostgreSQL-cluster modules ran in the PostgreSQL pass.
  e2e "ASan+UBSan build on SQLite" "$ROOT/build-asan/jwtd" JWTD_E2E_SLOW=1 -- \
    "not serial and not pgcluster" "serial and not pgcluster"
  unset ASAN_OPTIONS UBSAN_OPTIONS
fi

if want fuzz; then
  await prebuild
  step "fuzzing (ASan+UBSan, ${JWTD_FUZZ_SECONDS:-24}s per target)"
  JWTD_FUZZ_SECONDS=${JWTD_FUZZ_SECONDS:-24} scripts/fuzz.sh
fi

if want package; then
  step "Debian package"
  if [ "$(id -u)" -eq 0 ]; then
    await prebuild
    if [ -d "$BG_DIR/debs" ]; then
      scripts/package_test.sh --debs "$BG_DIR/debs"
    else
      scripts/package_test.sh
    fi
  else
    echo "package: skipped (needs root to install the package)"
  fi
fi

await_all
step "done"
printf '=== all tests passed in %ss\n' "$(( $(date +%s) - T0 ))"
