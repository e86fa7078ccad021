#!/usr/bin/env bash
# Builds the tests, the tool and the fuzz harnesses with clang under
# AddressSanitizer and UndefinedBehaviorSanitizer, and runs the whole test
# suite there (docs/reliability.md). Any sanitizer report fails the test
# that triggered it.
#
#   bash tools/sanitize.sh [CTEST ARGS...]
#
# The build folder (LGH_SANITIZE_BUILD_DIR, default build-asan) is also a
# fuzzing build: LGH_FUZZ_BUILD_DIR=build-asan bash tools/fuzz.sh reuses it.
# Code is compiled at -O1 (what the sanitizers are designed for) with line
# tables only, which keeps the build to about the cost of the ordinary one;
# examples, benchmarks and the CUDA backend are left out (no GPU code runs
# on the CPU), as are the header-alone compile check and the install test,
# which compile but run nothing of the library.
set -euo pipefail
cd "$(dirname "$0")/.."

build=${LGH_SANITIZE_BUILD_DIR:-build-asan}
cmake -S . -B "$build" -G Ninja -DCMAKE_CXX_COMPILER=clang++ \
  -DCMAKE_BUILD_TYPE=Sanitize -DCMAKE_CXX_FLAGS_SANITIZE="-O1 -gline-tables-only" \
  -DLGH_SANITIZE=address,undefined -DLGH_BUILD_FUZZERS=ON -DLGH_NATIVE_ARCH=ON \
  -DLGH_BUILD_EXAMPLES=OFF -DLGH_BUILD_BENCHMARKS=OFF -DLGH_CUDA=OFF
cmake --build "$build"

# Leaks are findings too; a finding stops the program with its report.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:check_initialization_order=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
ctest --test-dir "$build" --output-on-failure "$@"
