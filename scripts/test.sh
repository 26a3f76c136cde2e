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
# that measure time or load the machine, which run alone afterwards.
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

step "packages"
scripts/deps.sh test

build() { # dir, extra meson args...
  local dir=$1; shift
  [ -f "$dir/build.ninja" ] || meson setup "$dir" "$@" >/dev/null
  ninja -C "$dir" >/dev/null
}

step "release build"
build build

step "meson install (into a scratch DESTDIR)"
scripts/install_test.sh build

step "minimal build (cmocka and libpq hidden from pkg-config)"
# A pkg-config directory with every .pc file but the test-only and optional
# ones: `meson setup` must succeed and jwtd must compile without them.
PCDIR=$(mktemp -d /tmp/jwtd-pc.XXXXXX)
for d in $(pkg-config --variable pc_path pkg-config | tr ':' ' '); do
  [ -d "$d" ] || continue
  for f in "$d"/*.pc; do
    case "$(basename "$f")" in cmocka.pc|libpq.pc) continue ;; esac
    [ -e "$PCDIR/$(basename "$f")" ] || ln -s "$f" "$PCDIR/"
  done
done
rm -rf build-min
PKG_CONFIG_LIBDIR=$PCDIR PKG_CONFIG_PATH= meson setup build-min >/dev/null
grep -q "Run-time dependency cmocka found: NO" build-min/meson-logs/meson-log.txt
ninja -C build-min jwtd >/dev/null
./build-min/jwtd version >/dev/null
# Without libpq, `config check` refuses a PostgreSQL URL as `serve` does.
rc=0
out=$(./build-min/jwtd config check --config none --database=postgres://db/jwtd 2>&1) || rc=$?
if [ "$rc" != 2 ] || ! grep -q "without PostgreSQL" <<<"$out"; then
  echo "a build without PostgreSQL: jwtd config check exited $rc for a postgres:// URL: $out"
  exit 1
fi
rm -rf "$PCDIR" build-min

step "interop helpers (jose from npm)"
if [ ! -d tests/interop/node_modules/jose ]; then
  (cd tests/interop && npm ci --no-audit --no-fund --loglevel=error)
fi
[ -d tests/interop/node_modules/jose ] || { echo "npm did not install jose"; exit 1; }

# One PostgreSQL cluster for the store suite and the PostgreSQL pass.
PG_UP=0
if want unit || want pg; then
  # shellcheck source=scripts/pg.sh
  . scripts/pg.sh
  pg_start
  PG_UP=1
  trap 'pg_stop' EXIT
fi

e2e() { # label, binary, extra env..., -- pytest marker expression for the parallel part
  local label=$1 bin=$2; shift 2
  local envs=() marker_par marker_ser
  while [ "$1" != "--" ]; do envs+=("$1"); shift; done
  shift
  marker_par=$1 marker_ser=$2
  step "end-to-end: $label, in parallel ($JOBS workers)"
  env "${envs[@]}" JWTD_BIN="$bin" $PY -m pytest -q -rs -p no:cacheprovider -n "$JOBS" \
    --dist loadfile -m "$marker_par" tests/e2e
  step "end-to-end: $label, timing and load tests alone"
  env "${envs[@]}" JWTD_BIN="$bin" $PY -m pytest -q -rs -p no:cacheprovider -m "$marker_ser" tests/e2e
}

if want unit; then
  step "unit tests (release)"
  meson test -C build --print-errorlogs --suite unit
  JWTD_TEST_PG_URL=$PG_URL meson test -C build --print-errorlogs --suite store-pg
fi

if want pg; then
  e2e "release build on PostgreSQL" "$ROOT/build/jwtd" JWTD_E2E_DATABASE="$PG_URL" -- \
    "not serial" "serial"
fi
if [ "$PG_UP" = 1 ]; then
  pg_stop
  trap - EXIT
fi

if want asan; then
  step "ASan+UBSan build"
  build build-asan -Db_sanitize=address,undefined -Db_lundef=false -Dbuildtype=debugoptimized
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
  step "fuzzing (ASan+UBSan, ${JWTD_FUZZ_SECONDS:-24}s per target)"
  JWTD_FUZZ_SECONDS=${JWTD_FUZZ_SECONDS:-24} scripts/fuzz.sh
fi

if want package; then
  step "Debian package"
  if [ "$(id -u)" -eq 0 ]; then
    scripts/package_test.sh
  else
    echo "package: skipped (needs root to install the package)"
  fi
fi

step "done"
printf '=== all tests passed in %ss\n' "$(( $(date +%s) - T0 ))"
