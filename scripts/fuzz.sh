#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Build the libFuzzer targets (clang, ASan+UBSan) and run each for a bounded
# time: first over its committed seed corpus and past crashes
# (tests/fuzz/regressions/<target>/, which must all pass), then fuzzing for
# JWTD_FUZZ_SECONDS (default 60) into a scratch corpus. A crash fails the
# run; its input is kept in build-fuzz/crashes/ to be added to
# tests/fuzz/regressions/<target>/ once fixed.
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_EACH=${JWTD_FUZZ_SECONDS:-60}
B=build-fuzz
[ -f $B/build.ninja ] || CC=clang meson setup $B -Dfuzz=true -Db_sanitize=address,undefined \
  -Db_lundef=false >/dev/null
ninja -C $B >/dev/null
export ASAN_OPTIONS=detect_leaks=1:halt_on_error=1
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
mkdir -p $B/crashes
status=0
for target in fuzz_token fuzz_jwks fuzz_headers fuzz_body fuzz_webauthn; do
  bin=$B/tests/fuzz/$target
  seeds=tests/fuzz/corpus/$target
  regress=tests/fuzz/regressions/$target
  work=$B/corpus/$target
  mkdir -p "$work" "$regress"
  # Replay: every seed and every past crash must run clean.
  "$bin" -runs=0 "$regress" "$seeds" >"$B/$target.replay.log" 2>&1 || {
    echo "fuzz: $target fails on a committed input:"; tail -30 "$B/$target.replay.log"; status=1; continue; }
  if "$bin" -max_total_time="$SECONDS_EACH" -max_len=8192 -timeout=10 -rss_limit_mb=2048 \
       -dict=tests/fuzz/jwt.dict -artifact_prefix="$B/crashes/$target-" \
       "$work" "$seeds" >"$B/$target.log" 2>&1; then
    runs=$(grep -o 'Done [0-9]* runs' "$B/$target.log" | tail -1 | tr -dc 0-9)
    echo "fuzz: $target ok: ${runs:-?} executions in ${SECONDS_EACH}s, corpus $(ls "$work" | wc -l) inputs"
  else
    echo "fuzz: $target FOUND A PROBLEM:"; tail -40 "$B/$target.log"; status=1
  fi
done
exit $status
