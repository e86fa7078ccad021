#!/usr/bin/env bash
# Builds, on a machine with the CUDA toolkit (no GPU needed), everything
# tools/gpu_check.sh runs on a GPU machine, and fills one folder with it:
#
#   bash tools/gpu_bundle.sh [BUNDLE_DIR]        (default gpu-bundle/, git-ignored)
#
#   BUNDLE_DIR/bin/     every GPU test executable of tests/cuda (test_cuda*), bench_kernels, lgh
#                       (stripped; CUDA code for sm_90, host code without -march=native)
#   BUNDLE_DIR/deps.tar.gz  the header-only build dependencies (Eigen, Catch2,
#                       nlohmann-json, CLI11, stb) with their CMake package files,
#                       for gpu_check.sh's fallback build on the GPU machine
#   BUNDLE_DIR/MANIFEST the commit, the toolkit and the sizes
#
# The sources themselves are not copied: gpu_check.sh runs from a checkout
# of the repository. The folder must stay within 64 MiB (checked here), the
# most a GPU machine is handed in one piece. The build directory is
# build-gpu/ (LGH_GPU_BUILD_DIR), built with -j${JOBS:-2}.
set -euo pipefail
cd "$(dirname "$0")/.."

bundle=${1:-gpu-bundle}
build=${LGH_GPU_BUILD_DIR:-build-gpu}
jobs=${JOBS:-2}
limit_mib=64

if [ ! -x /usr/local/cuda/bin/nvcc ] && ! command -v nvcc >/dev/null; then
  echo "gpu_bundle: error: no CUDA compiler (nvcc) found; the bundle needs the CUDA toolkit" >&2
  exit 1
fi

# Release, CUDA for sm_90 only, no host-specific vector instructions (the GPU
# machine's CPU is another), and no compiled image or .mat libraries, so the
# binaries need nothing beyond the C++ runtime, CUDA, cuBLAS and cuDNN. The
# benchmarks stay off (Google Benchmark is not needed): tests/cuda then
# defines bench_kernels itself.
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DLGH_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=90 \
  -DLGH_NATIVE_ARCH=OFF -DLGH_BUILD_TESTS=ON -DLGH_BUILD_TOOLS=ON -DLGH_BUILD_BENCHMARKS=OFF \
  -DLGH_BUILD_EXAMPLES=OFF -DLGH_IMAGE_LIBS=OFF -DCMAKE_DISABLE_FIND_PACKAGE_PkgConfig=ON >/dev/null
# Every GPU test executable the build defines (tests/cuda/test_cuda*).
mapfile -t gpu_tests < <(ninja -C "$build" -t targets all | sed -n 's|^tests/cuda/\(test_cuda[A-Za-z0-9_]*\): .*|\1|p' | sort -u)
if [ "${#gpu_tests[@]}" -eq 0 ]; then
  echo "gpu_bundle: error: the build in $build defines no GPU test (tests/cuda/test_cuda*)" >&2
  exit 1
fi
cmake --build "$build" -j "$jobs" --target "${gpu_tests[@]}" bench_kernels lgh_cli

rm -rf "$bundle"
mkdir -p "$bundle/bin"
for t in "${gpu_tests[@]}"; do cp "$build/tests/cuda/$t" "$bundle/bin/"; done
cp "$build/tests/cuda/bench_kernels" "$build/tools/lgh/lgh" "$bundle/bin/"  # bench_kernels: tests/cuda defines it
strip --strip-unneeded "$bundle"/bin/*

# Header-only dependencies, laid out as under /usr so that their CMake
# package files (relocatable) find them under -DCMAKE_PREFIX_PATH=<dir>/usr.
deps=(usr/include/eigen3 usr/share/eigen3/cmake usr/include/catch2 usr/lib/cmake/Catch2 usr/include/nlohmann
      usr/share/cmake/nlohmann_json usr/include/CLI usr/share/cmake/CLI11 usr/include/stb)
present=()
for d in "${deps[@]}"; do [ -e "/$d" ] && present+=("$d"); done
tar -C / -czf "$bundle/deps.tar.gz" "${present[@]}"

{
  echo "commit $(git rev-parse HEAD)$(git diff --quiet HEAD -- . 2>/dev/null || echo ' (with uncommitted changes)')"
  echo "nvcc $( (/usr/local/cuda/bin/nvcc --version 2>/dev/null || nvcc --version) | tail -n 2 | head -n 1)"
  echo "architectures 90"
  (cd "$bundle" && du -k bin/* deps.tar.gz)
} >"$bundle/MANIFEST"

size_mib=$(du -sm "$bundle" | cut -f1)
echo "gpu_bundle: $bundle is ${size_mib} MiB (limit ${limit_mib} MiB)"
if [ "$size_mib" -gt "$limit_mib" ]; then
  echo "gpu_bundle: error: $bundle is ${size_mib} MiB, over the ${limit_mib} MiB a GPU machine takes" >&2
  exit 1
fi
