#!/usr/bin/env bash
# Builds the libFuzzer harnesses (fuzz/*_fuzzer.cc, the `fuzz` preset: clang 14, ASan + UBSan)
# and runs each for SECONDS (default 60), one after the other, starting from its committed seeds
# (fuzz/corpus/<target>, never written to) and the inputs earlier runs found
# (build/fuzz/corpus/<target>). A crash, leak, hang (an input running over 10 s) or
# out-of-memory (over 2 GiB) stops that target and leaves the input in
# build/fuzz/artifacts/<target>/; the script then exits 1. SECONDS=0 replays the corpora once
# (a quick regression check). Prints executions and exec/s per target at the end.
# Usage: scripts/fuzz.sh [SECONDS] [TARGET...]   (targets: the fuzz/*_fuzzer.cc names without
#        _fuzzer, e.g. http_json; default all)
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_PER_TARGET=${1:-60}
shift || true
bash scripts/setup-fuzz.sh >/dev/null
if [ -x scripts/fetch-fixtures.sh ]; then bash scripts/fetch-fixtures.sh; fi
cmake --preset fuzz >/dev/null
cmake --build --preset fuzz -j "$(nproc)"

declare -A DICT=([chat_template]=jinja [http_framing]=http [tokenizer_text]= [gguf]=)
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  for f in fuzz/*_fuzzer.cc; do targets+=("$(basename "$f" _fuzzer.cc)"); done
fi
# The file-reading targets write each input to a scratch folder: on tmpfs when there is one.
if [ -z "${TMPDIR:-}" ] && [ -d /dev/shm ] && [ -w /dev/shm ]; then export TMPDIR=/dev/shm; fi
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
summary=()
failed=0
for t in "${targets[@]}"; do
  bin=build/fuzz/${t}_fuzzer
  [ -x "$bin" ] || { echo "fuzz.sh: no target $t (fuzz/${t}_fuzzer.cc)" >&2; exit 2; }
  mkdir -p "build/fuzz/corpus/$t" "build/fuzz/artifacts/$t"
  args=(-timeout=10 -rss_limit_mb=2048 -max_len=16384 -print_final_stats=1
        "-artifact_prefix=build/fuzz/artifacts/$t/")
  dict=${DICT[$t]-json}
  [ -n "$dict" ] && args+=("-dict=fuzz/dict/$dict.dict")
  if [ "$SECONDS_PER_TARGET" -eq 0 ]; then
    args+=(-runs=0)
  else
    args+=("-max_total_time=$SECONDS_PER_TARGET")
  fi
  log=build/fuzz/$t.log
  echo "fuzz.sh: $t for ${SECONDS_PER_TARGET}s (log $log)"
  rc=0
  "$bin" "${args[@]}" "build/fuzz/corpus/$t" "fuzz/corpus/$t" >"$log" 2>&1 || rc=$?
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
  rss=$(sed -n 's/^stat::peak_rss_mb: *//p' "$log" | tail -1)
  result=ok
  if [ "$rc" -ne 0 ]; then
    failed=1
    result="FAILED (exit $rc): $(grep -m1 -E 'ERROR: |SUMMARY: |runtime error' "$log" || true)"
  fi
  summary+=("$(printf '%-20s %12s execs %8s exec/s %6s MB  %s' "$t" "${execs:-?}" "${rate:-?}" \
    "${rss:-?}" "$result")")
done
printf '%s\n' "${summary[@]}"
exit $failed
