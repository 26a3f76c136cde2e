#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Build the libFuzzer targets (clang, ASan+UBSan) and run each for a bounded
# time: first over its committed seed corpus and past crashes
# (tests/fuzz/regressions/<target>/, which must all pass), then fuzzing for
# JWTD_FUZZ_SECONDS (default 60) into a scratch corpus. A crash fails the
# run; its input is kept in build-fuzz/crashes/ to be added to
# tests/fuzz/regressions/<target>/ once fixed. A libFuzzer process uses one
# CPU: JWTD_FUZZ_JOBS targets (default: one per CPU) run at a time, each
# for its full time (a last round with CPUs to spare shares them). `--build-only` builds the targets and stops.
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_EACH=${JWTD_FUZZ_SECONDS:-60}
B=build-fuzz
[ -f $B/build.ninja ] || CC=clang meson setup $B -Dfuzz=true -Db_sanitize=address,undefined \
  -Db_lundef=false >/dev/null
TARGETS=(fuzz_token fuzz_jwks fuzz_headers fuzz_body fuzz_webauthn fuzz_form fuzz_config)
JOBS=${JWTD_FUZZ_JOBS:-$(nproc)}
# Only the targets: the rest of the tree is built and tested elsewhere.
ninja -C $B "${TARGETS[@]/#/tests/fuzz/}" >/dev/null
# `scripts/fuzz.sh --build-only`: scripts/test.sh builds ahead of time.
[ "${1:-}" = --build-only ] && exit 0
export ASAN_OPTIONS=detect_leaks=1:halt_on_error=1
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
mkdir -p $B/crashes

# One target: replay, then fuzz with PROCS processes (default 1) sharing
# its corpus, each for its share of the time. Its verdict goes to
# $B/<target>.result (first line "ok" or "fail"), printed in target order
# once all are done.
run_target() {
  local target=$1 procs=${2:-1} bin=$B/tests/fuzz/$1 seeds=tests/fuzz/corpus/$1
  local regress=tests/fuzz/regressions/$1 work=$B/corpus/$1 out=$B/$1.result
  mkdir -p "$work" "$regress"
  # Replay: every seed and every past crash must run clean.
  if ! "$bin" -runs=0 "$regress" "$seeds" >"$B/$target.replay.log" 2>&1; then
    { echo fail; echo "fuzz: $target fails on a committed input:"
      tail -30 "$B/$target.replay.log"; } >"$out"
    return
  fi
  local secs=$(( (SECONDS_EACH + procs - 1) / procs )) i pids=() failed=()
  for ((i = 0; i < procs; i++)); do
    "$bin" -max_total_time="$secs" -max_len=8192 -timeout=10 -rss_limit_mb=2048 \
      -dict=tests/fuzz/jwt.dict -artifact_prefix="$B/crashes/$target-" \
      "$work" "$seeds" >"$B/$target.$i.log" 2>&1 &
    pids+=($!)
  done
  for i in "${!pids[@]}"; do
    wait "${pids[$i]}" || failed+=("$B/$target.$i.log")
  done
  if [ ${#failed[@]} -eq 0 ]; then
    local runs=0 n
    for ((i = 0; i < procs; i++)); do
      n=$(grep -o 'Done [0-9]* runs' "$B/$target.$i.log" | tail -1 | tr -dc 0-9)
      runs=$((runs + ${n:-0}))
    done
    local how="${SECONDS_EACH}s"
    [ "$procs" -gt 1 ] && how="$procs processes x ${secs}s"
    { echo ok; echo "fuzz: $target ok: $runs executions in $how," \
        "corpus $(ls "$work" | wc -l) inputs"; } >"$out"
  else
    { echo fail; echo "fuzz: $target FOUND A PROBLEM:"; tail -40 "${failed[0]}"; } >"$out"
  fi
}

# Targets run JOBS at a time, each for its full time. When the last round
# has fewer targets than CPUs (five targets on two, say), they share the idle
# CPUs: each runs as JOBS/left processes on one corpus for that share of
# the time (the same CPU time, the round takes less wall time).
n=${#TARGETS[@]}
left=$((n % JOBS))
split_from=$((left > 0 && n > JOBS ? n - left : n))
running=0
for idx in "${!TARGETS[@]}"; do
  target=${TARGETS[$idx]}
  rm -f "$B/$target.result"
  if [ "$idx" -ge "$split_from" ]; then
    [ "$idx" -eq "$split_from" ] && { wait || true; running=0; }
    run_target "$target" $((JOBS / left)) &
    continue
  fi
  if [ "$running" -ge "$JOBS" ]; then
    wait -n || true   # the verdict is in the result file
    running=$((running - 1))
  fi
  run_target "$target" &
  running=$((running + 1))
done
wait || true

status=0
for target in "${TARGETS[@]}"; do
  if [ -f "$B/$target.result" ]; then
    tail -n +2 "$B/$target.result"
    [ "$(head -1 "$B/$target.result")" = ok ] || status=1
  else
    echo "fuzz: $target left no result"; status=1
  fi
done
exit $status
