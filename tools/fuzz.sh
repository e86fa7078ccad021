#!/usr/bin/env bash
# Builds the fuzz harnesses of tests/fuzz with clang's libFuzzer (ASan and
# UBSan) and runs each for a given time (docs/reliability.md).
#
#   bash tools/fuzz.sh [SECONDS] [HARNESS...]      (default: 60 s each, every harness)
#
# Each harness starts from a scratch copy of its seed corpus and its
# regression inputs (the committed ones are never modified). An input that
# crashes, hangs or trips a sanitizer is kept in $LGH_FUZZ_BUILD_DIR/findings/
# and the script exits 1 after running the rest; commit such an input under
# tests/fuzz/regressions/<harness>/ with the fix. Environment:
#   LGH_FUZZ_BUILD_DIR  build folder (default build-fuzz)
#   LGH_FUZZ_JOBS       parallel compile jobs (default 2)
#   LGH_FUZZ_PARALLEL   harnesses run at the same time (default LGH_FUZZ_JOBS)
#   LGH_FUZZ_TIMEOUT    seconds one input may take before it counts as a hang (default 60)
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${1:-60}
shift || true
build=${LGH_FUZZ_BUILD_DIR:-build-fuzz}
jobs=${LGH_FUZZ_JOBS:-2}
parallel=${LGH_FUZZ_PARALLEL:-$jobs}
timeout=${LGH_FUZZ_TIMEOUT:-60}

all=()
for f in tests/fuzz/fuzz_*.cpp; do
  n=$(basename "$f" .cpp)
  all+=("${n#fuzz_}")
done
harnesses=("$@")
((${#harnesses[@]})) || harnesses=("${all[@]}")

# A build folder configured before (e.g. by tools/sanitize.sh with
# LGH_BUILD_FUZZERS=ON) is reused as it is.
if [ ! -f "$build/CMakeCache.txt" ]; then
  cmake -S . -B "$build" -G Ninja -DCMAKE_CXX_COMPILER=clang++ \
    -DCMAKE_BUILD_TYPE=Fuzz -DCMAKE_CXX_FLAGS_FUZZ="-O1 -gline-tables-only" \
    -DLGH_BUILD_FUZZERS=ON -DLGH_BUILD_TESTS=OFF -DLGH_BUILD_EXAMPLES=OFF -DLGH_BUILD_BENCHMARKS=OFF \
    -DLGH_CUDA=OFF >/dev/null
fi
grep -q "LGH_BUILD_FUZZERS:BOOL=ON" "$build/CMakeCache.txt" || { echo "fuzz: $build is not a LGH_BUILD_FUZZERS=ON build" >&2; exit 2; }
targets=()
for h in "${harnesses[@]}"; do targets+=("fuzz_$h"); done
cmake --build "$build" -j "$jobs" --target "${targets[@]}"

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:allocator_may_return_null=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
# One harness: its scratch corpus, its run, its verdict in $work/verdict.
run_harness() {
  local h=$1 work="$build/fuzz-work/$1" findings="$build/findings/$1"
  rm -rf "$work"
  mkdir -p "$work/corpus" "$findings"
  for d in "tests/fuzz/corpus/$h" "tests/fuzz/regressions/$h"; do
    [ -d "$d" ] && cp -r "$d/." "$work/corpus/"
  done
  if "$build/tests/fuzz/fuzz_$h" "$work/corpus" -max_total_time="$seconds" -timeout="$timeout" \
      -rss_limit_mb=4096 -artifact_prefix="$findings/" -print_final_stats=1 -close_fd_mask=1 \
      >"$work/log.txt" 2>&1; then
    echo ok >"$work/verdict"
  else
    echo failed >"$work/verdict"
  fi
}

# The harnesses run $parallel at a time (each is single-threaded).
echo "fuzz: ${#harnesses[@]} harnesses, ${seconds} s each, $parallel at a time"
running=0
for h in "${harnesses[@]}"; do
  if ((running >= parallel)); then
    wait -n || true
    running=$((running - 1))
  fi
  run_harness "$h" &
  running=$((running + 1))
done
wait
failed=()
for h in "${harnesses[@]}"; do
  work="$build/fuzz-work/$h"
  if [ "$(cat "$work/verdict" 2>/dev/null)" = ok ]; then
    echo "fuzz: $h: $(grep -m1 -o 'stat::number_of_executed_units: [0-9]*' "$work/log.txt" | grep -o '[0-9]*$') inputs, no finding"
  else
    echo "fuzz: $h FAILED; the last lines of its log ($work/log.txt):"
    tail -n 40 "$work/log.txt"
    failed+=("$h")
  fi
done
if ((${#failed[@]})); then
  echo "fuzz: findings in ${failed[*]} (inputs in $build/findings/)"
  exit 1
fi
echo "fuzz: ${#harnesses[@]} harnesses ran ${seconds} s each without a finding"
