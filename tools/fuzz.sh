#!/usr/bin/env bash
# Builds the libFuzzer targets (fuzz/*_fuzzer.cc) with clang, ASan and UBSan in build-fuzz/ and
# runs each for SECONDS (default 60) from its corpus (fuzz/corpus/TARGET, plus workflows/ for the
# loader). A finding is written to build-fuzz/findings/TARGET/ and the script exits non-zero;
# copy it into fuzz/findings/TARGET/ with the fix, and the test suite replays it from then on.
#   tools/fuzz.sh 30       what the test suite runs
#   tools/fuzz.sh 3600     a longer run (docs/fuzzing.md)
set -euo pipefail
seconds=${1:-60}
cd "$(dirname "$0")/.."
mkdir -p build-fuzz
cmake -S . -B build-fuzz -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DFLOWRUN_FUZZ=ON -DFLOWRUN_BUILD_TESTS=OFF > build-fuzz/configure.log 2>&1 || {
  cat build-fuzz/configure.log
  exit 1
}
cmake --build build-fuzz -j2 --target fuzz_loader fuzz_expression fuzz_json_body fuzz_log_scanner
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1
for target in loader expression json_body log_scanner; do
  corpus=build-fuzz/corpus/$target
  findings=build-fuzz/findings/$target
  mkdir -p "$corpus" "$findings"
  seeds=(fuzz/corpus/$target)
  [[ $target == loader ]] && seeds+=(workflows)
  echo "fuzz_$target: ${seconds}s"
  build-fuzz/fuzz_$target "$corpus" "${seeds[@]}" -max_total_time="$seconds" -max_len=4096 -timeout=10 \
    -rss_limit_mb=2048 -artifact_prefix="$findings/" -print_final_stats=1 2>&1 | tail -n 25
  status=${PIPESTATUS[0]}
  if ((status != 0)); then
    echo "fuzz_$target found a problem (exit $status); inputs in $findings/"
    exit 1
  fi
done
