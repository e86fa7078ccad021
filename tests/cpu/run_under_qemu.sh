#!/bin/sh
# run_under_qemu.sh MODEL VARIANT BINARY [ARGS...]: runs BINARY under
# qemu-x86_64 emulating the processor MODEL, telling it (LGH_EXPECT_CPU_ISA)
# which variant the dispatch must pick there. Exits 77 (ctest: skipped) when
# qemu-x86_64 is not installed.
set -eu
model=$1
variant=$2
shift 2
if ! command -v qemu-x86_64 >/dev/null 2>&1; then
  echo "SKIPPED: qemu-x86_64 not found (Debian package qemu-user)"
  exit 77
fi
unset LGH_CPU_ISA
LGH_EXPECT_CPU_ISA=$variant exec qemu-x86_64 -cpu "$model" "$@"
