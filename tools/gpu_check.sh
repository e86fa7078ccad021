#!/usr/bin/env bash
# The GPU verification of lgh in one command, on a machine with an NVIDIA GPU,
# from a checkout of the repository with the folder tools/gpu_bundle.sh made:
#
#   bash tools/gpu_check.sh [--bundle DIR] [--out DIR] [--budget SECONDS]
#
#   --bundle DIR   binaries from tools/gpu_bundle.sh (default gpu-bundle)
#   --out DIR      where logs and JSON results go (default gpu-check-out)
#   --budget S     wall-clock budget of the whole run (default 450 s); every
#                  step has its own timeout, cut to what is left, and a step
#                  with under 20 s left is skipped and says so
#
# Steps, each with a timeout:
#   1. find the GPU, then CUDA's runtime, cuBLAS and cuDNN on this machine
#      (the system's libraries, or those of Python's nvidia-* packages) and
#      put them on LD_LIBRARY_PATH;
#   2. check that the carried binaries load and run; if they do not, build
#      them here (CMake, the carried header dependencies, this machine's nvcc);
#   3. the GPU tests: every test_cuda* executable (test_cuda, test_cuda_fused,
#      test_cuda_model, test_cuda_train, ...), then `lgh train`, `lgh eval`
#      and `lgh infer` with --device cuda on a four-step `small` run;
#   4. compute-sanitizer memcheck on the GPU tests (but test_cuda_train, whose
#      kernels are test_cuda_model's and whose CPU-side runs would not fit
#      the budget under the tool), racecheck on the fused kernels' tests;
#   5. the kernel microbenchmarks (bench_kernels) against the unfused PyTorch
#      sequences, eager and torch.compile (benchmarks/torch_fused_ops.py);
#   6. `lgh bench --device cuda` (paper config: training step at batch 32,
#      inference at batch 1) against the same model in PyTorch
#      (tests/reference/lgh_model.py via benchmarks/torch_model.py), eager and
#      torch.compile.
# The last thing printed is a table of every step with its result.
#
# Exit status: 0 when every step that ran passed, 1 when one failed,
# 3 when there is no GPU (nothing was checked), 2 for a usage error.
set -uo pipefail
cd "$(dirname "$0")/.."

bundle=gpu-bundle
out=gpu-check-out
budget=450
while [ $# -gt 0 ]; do
  case "$1" in
    --bundle) bundle=${2:?}; shift 2 ;;
    --out) out=${2:?}; shift 2 ;;
    --budget) budget=${2:?}; shift 2 ;;
    -h|--help) sed -n '2,30p' "$0"; exit 0 ;;
    *) echo "gpu_check: error: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done
case "$budget" in (*[!0-9]*|'') echo "gpu_check: error: --budget must be a number of seconds, got '$budget'" >&2; exit 2 ;; esac
mkdir -p "$out"
out=$(cd "$out" && pwd)
bundle_abs=$(cd "$bundle" 2>/dev/null && pwd || echo "$bundle")
start=$SECONDS
declare -a rows=()
failed=0

row() {  # step, result, seconds, detail
  rows+=("$(printf '| %-34s | %-7s | %5s | %s |' "$1" "$2" "$3" "$4")")
  [ "$2" = "FAIL" ] && failed=1
  echo "gpu_check: $1: $2 ($3 s) $4" >&2
}
left() { echo $((budget - (SECONDS - start))); }
print_table() {
  echo
  echo "lgh GPU check ($(date -u +%Y-%m-%dT%H:%M:%SZ), $(( SECONDS - start )) s, logs in $out)"
  printf '| %-34s | %-7s | %5s | %s |\n' "step" "result" "s" "detail"
  printf '|%s|%s|%s|%s|\n' "------------------------------------" "---------" "-------" "---"
  for r in "${rows[@]}"; do echo "$r"; done
}

# run_step NAME LIMIT LOG CMD...: runs CMD under `timeout`, cut to the time
# left; records PASS (exit 0), SKIP (77: the tests found no device), TIMEOUT
# (124) or FAIL. Sets $step_rc.
run_step() {
  local name=$1 limit=$2 log=$3
  shift 3
  local l
  l=$(left)
  if [ "$l" -lt 20 ]; then
    row "$name" "SKIP" 0 "out of time (budget ${budget} s)"
    step_rc=125
    return
  fi
  [ "$limit" -gt "$l" ] && limit=$l
  local t0=$SECONDS
  timeout --kill-after=10 "$limit" "$@" >"$log" 2>&1
  step_rc=$?
  local dt=$((SECONDS - t0))
  case $step_rc in
    0) row "$name" "PASS" "$dt" "$(tail -n 1 "$log" | cut -c1-90)" ;;
    77) row "$name" "SKIP" "$dt" "no device: $(tail -n 1 "$log" | cut -c1-70)" ;;
    124|137) row "$name" "TIMEOUT" "$dt" "after ${limit} s, see $(basename "$log")" ;;
    *) row "$name" "FAIL" "$dt" "exit $step_rc, see $(basename "$log"): $(grep -m1 -iE 'error|fail' "$log" | cut -c1-70)" ;;
  esac
}

# ---- 1. the GPU and its libraries -------------------------------------------------
if ! command -v nvidia-smi >/dev/null 2>&1 || ! nvidia-smi -L >"$out/nvidia-smi.txt" 2>&1 ||
   ! grep -q "GPU" "$out/nvidia-smi.txt"; then
  row "GPU" "NONE" 0 "no NVIDIA GPU found (nvidia-smi -L): nothing was checked"
  print_table
  exit 3
fi
row "GPU" "FOUND" 0 "$(head -n 1 "$out/nvidia-smi.txt" | cut -c1-80)"

py=python3
command -v "$py" >/dev/null 2>&1 || py=""
libdirs=()
add_dir() { [ -d "$1" ] && libdirs+=("$1"); }
for d in /usr/local/cuda/lib64 /usr/local/cuda/targets/x86_64-linux/lib /usr/lib/x86_64-linux-gnu; do add_dir "$d"; done
if [ -n "$py" ]; then
  # Python's nvidia-* wheels (cuDNN may live only there): nvidia.cudnn/lib, nvidia.cublas/lib, ...
  while IFS= read -r d; do add_dir "$d"; done < <(timeout 60 "$py" - <<'EOF' 2>/dev/null
import importlib, os
for name in ("nvidia.cudnn", "nvidia.cublas", "nvidia.cuda_runtime", "nvidia.cu13", "nvidia"):
    try:
        m = importlib.import_module(name)
    except Exception:
        continue
    for base in list(getattr(m, "__path__", [])):
        for root, dirs, files in os.walk(base):
            if any(f.startswith(("libcudnn.so", "libcublas.so", "libcudart.so")) for f in files):
                print(root)
EOF
)
fi
find_lib() {  # prints the directory holding $1 (a soname prefix), searching libdirs then ldconfig
  local d
  for d in "${libdirs[@]}"; do compgen -G "$d/$1*" >/dev/null && { echo "$d"; return 0; }; done
  ldconfig -p 2>/dev/null | awk -v n="$1" '$1 ~ "^"n {print $NF; exit}' | xargs -r dirname
}
missing=""
ld_path=""
for lib in libcudart.so libcublas.so libcublasLt.so libcudnn.so; do
  d=$(find_lib "$lib")
  if [ -z "$d" ]; then missing="$missing $lib"; else case ":$ld_path:" in *":$d:"*) ;; *) ld_path="$ld_path:$d" ;; esac; fi
done
export LD_LIBRARY_PATH="${ld_path#:}${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
if [ -n "$missing" ]; then
  row "CUDA libraries" "FAIL" 0 "not found:$missing"
else
  row "CUDA libraries" "FOUND" 0 "$(echo "${ld_path#:}" | cut -c1-90)"
fi

# ---- 2. binaries: the carried ones, else built here ------------------------------
bin="$bundle_abs/bin"
loads() {
  [ -x "$bin/test_cuda" ] || return 1
  for b in test_cuda test_cuda_fused test_cuda_model bench_kernels lgh "$bin"/test_cuda*; do
    b=$(basename "$b")
    [ -x "$bin/$b" ] || return 1
    ldd "$bin/$b" 2>&1 | grep -q "not found" && return 1
  done
  timeout 60 "$bin/test_cuda" "[cuda-host]" >"$out/load_check.log" 2>&1
}
if loads; then
  row "carried binaries" "PASS" 0 "$bin ($(grep -m1 commit "$bundle_abs/MANIFEST" 2>/dev/null | cut -c1-50))"
else
  echo "gpu_check: the carried binaries do not load here; building on this machine" >&2
  fb="$out/fallback"
  mkdir -p "$fb"
  prefix=""
  if [ -f "$bundle_abs/deps.tar.gz" ]; then
    tar -C "$fb" -xzf "$bundle_abs/deps.tar.gz" && prefix="-DCMAKE_PREFIX_PATH=$fb/usr -DCMAKE_CXX_FLAGS=-I$fb/usr/include/stb"
  fi
  nvcc_bin=$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)
  # cuDNN where step 1 found it (perhaps only inside Python's nvidia.cudnn):
  # the library by its full name (a wheel ships libcudnn.so.9 without the
  # unversioned link) and its headers beside it.
  cudnn_args=""
  cudnn_dir=$(find_lib libcudnn.so)
  if [ -n "$cudnn_dir" ]; then
    cudnn_lib=$(ls "$cudnn_dir"/libcudnn.so* 2>/dev/null | head -n 1)
    cudnn_args="-DLGH_CUDNN_LIBRARY=$cudnn_lib"
    [ -f "$cudnn_dir/../include/cudnn.h" ] && cudnn_args="$cudnn_args -DCMAKE_CUDA_FLAGS=-I$(cd "$cudnn_dir/../include" && pwd)"
  fi
  # shellcheck disable=SC2086
  run_step "fallback build (configure)" 120 "$out/fallback_configure.log" \
    cmake -S . -B "$fb/build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DLGH_CUDA=ON -DCMAKE_CUDA_COMPILER="$nvcc_bin" \
    -DCMAKE_CUDA_ARCHITECTURES=native -DLGH_BUILD_BENCHMARKS=OFF -DLGH_BUILD_EXAMPLES=OFF -DLGH_IMAGE_LIBS=OFF \
    -DCMAKE_DISABLE_FIND_PACKAGE_PkgConfig=ON $prefix $cudnn_args
  if [ "$step_rc" = 0 ]; then
    # Every GPU test, the kernel microbenchmark (tests/cuda defines it when
    # the benchmarks are off) and the tool.
    run_step "fallback build (compile)" 360 "$out/fallback_build.log" \
      sh -c "cmake --build \"$fb/build\" -j $(nproc) --target \$(ninja -C \"$fb/build\" -t targets all | sed -n 's|^tests/cuda/\(test_cuda[A-Za-z0-9_]*\): .*|\1|p' | sort -u) bench_kernels lgh_cli"
    bin="$fb/bin"
    mkdir -p "$bin"
    for b in "$fb"/build/tests/cuda/test_cuda* "$fb/build/tests/cuda/bench_kernels" "$fb/build/tools/lgh/lgh"; do
      [ -f "$b" ] && [ -x "$b" ] && cp "$b" "$bin/"
    done
  fi
fi

# ---- 3. GPU tests -----------------------------------------------------------------
tests=()
for b in "$bin"/test_cuda*; do [ -x "$b" ] && tests+=("$(basename "$b")"); done
for t in test_cuda test_cuda_fused test_cuda_model test_cuda_train; do
  [ -x "$bin/$t" ] || row "$t" "FAIL" 0 "binary missing"
done
for t in "${tests[@]}"; do
  run_step "$t" 120 "$out/$t.log" "$bin/$t"
done
# The commands on the device, end to end: a short training (both stages, a
# checkpoint, a held-out evaluation), then its weights evaluated and run on
# an image (test_cuda_train compares the same code paths with the CPU).
if [ -x "$bin/lgh" ]; then
  cli="$out/cli_cuda"
  rm -rf "$cli"
  mkdir -p "$cli"
  run_step "lgh train/eval/infer --device cuda" 90 "$out/lgh_cli_cuda.log" sh -c "
    set -e
    \"$bin/lgh\" train --data synthetic --config small --out \"$cli/run\" --steps 4 --batch 4 --stage1-steps 2 \
      --log-every 2 --checkpoint-every 2 --eval-every 4 --eval-samples 8 --device cuda
    \"$bin/lgh\" eval --weights \"$cli/run/last.safetensors\" --data synthetic --samples 8 --json \"$cli/eval.json\" --device cuda
    \"$bin/lgh\" infer --weights \"$cli/run/last.safetensors\" --image tests/data/fixtures/rhd/evaluation/color/00000.png \
      --json \"$cli/infer.json\" --device cuda
    echo \"train, eval and infer on cuda: exit 0\""
fi

# ---- 4. compute-sanitizer ---------------------------------------------------------
cs=$(command -v compute-sanitizer || ls /usr/local/cuda/bin/compute-sanitizer 2>/dev/null || true)
if [ -z "$cs" ]; then
  row "compute-sanitizer" "SKIP" 0 "compute-sanitizer not found"
else
  for t in "${tests[@]}"; do
    [ "$t" = test_cuda_train ] && continue
    [ -x "$bin/$t" ] && run_step "memcheck $t" 75 "$out/memcheck_$t.log" \
      "$cs" --tool memcheck --error-exitcode 1 --leak-check no "$bin/$t"
  done
  # The kernels with shared memory and barriers: the fused ones and the model's.
  [ -x "$bin/test_cuda_fused" ] && run_step "racecheck test_cuda_fused" 60 "$out/racecheck_test_cuda_fused.log" \
    "$cs" --tool racecheck --error-exitcode 1 "$bin/test_cuda_fused" "[fused]"
fi

# ---- 5. kernel microbenchmarks ------------------------------------------------------
if [ -x "$bin/bench_kernels" ]; then
  run_step "bench_kernels" 45 "$out/bench_kernels.log" \
    "$bin/bench_kernels" --json "$out/bench_kernels.json" --iters 30 --warmup 5 --batches 1,64
  if [ -n "$py" ]; then
    run_step "PyTorch unfused ops (eager, compile)" 100 "$out/torch_fused_ops.log" \
      "$py" benchmarks/torch_fused_ops.py --json "$out/torch_fused_ops.json" --iters 30 --warmup 5 --batches 1,64
    if [ -f "$out/bench_kernels.json" ] && [ -f "$out/torch_fused_ops.json" ]; then
      "$py" benchmarks/compare_fused.py "$out/bench_kernels.json" "$out/torch_fused_ops.json" \
        >"$out/fused_table.md" 2>&1 && row "fused kernels vs PyTorch" "TABLE" 0 "fused_table.md"
    fi
  fi
else
  row "bench_kernels" "FAIL" 0 "binary missing"
fi

# ---- 6. the model: lgh bench against PyTorch eager and torch.compile ------------------
model_cases=("paper:32:train" "paper:1:infer")
for c in "${model_cases[@]}"; do
  IFS=: read -r cfg batch mode <<<"$c"
  tag="${cfg}_b${batch}_${mode}"
  if [ -x "$bin/lgh" ]; then
    run_step "lgh bench $tag" 90 "$out/lgh_$tag.log" \
      "$bin/lgh" bench --config "$cfg" --batch "$batch" --mode "$mode" --device cuda --iters 20 --warmup 3 \
      --json "$out/lgh_$tag.json"
  fi
  if [ -n "$py" ]; then
    run_step "PyTorch eager $tag" 90 "$out/torch_eager_$tag.log" \
      sh -c "\"$py\" benchmarks/torch_model.py --config $cfg --batch $batch --mode $mode --device cuda --iters 20 --warmup 3 > \"$out/torch_eager_$tag.json\""
    run_step "PyTorch compile $tag" 150 "$out/torch_compile_$tag.log" \
      sh -c "\"$py\" benchmarks/torch_model.py --config $cfg --batch $batch --mode $mode --device cuda --compile --iters 20 --warmup 3 > \"$out/torch_compile_$tag.json\""
  fi
done

# Medians side by side (ms), from whichever of the JSON files exist.
if [ -n "$py" ]; then
  "$py" - "$out" >"$out/model_table.md" 2>/dev/null <<'EOF'
import json, os, sys
out = sys.argv[1]
def med(name):
    try:
        with open(os.path.join(out, name)) as f:
            return json.load(f)["median_ms"]
    except Exception:
        return None
print("| case | lgh (ms) | PyTorch eager (ms) | torch.compile (ms) | eager / lgh | compile / lgh |")
print("|---|---|---|---|---|---|")
for tag in ("paper_b32_train", "paper_b1_infer"):
    a, e, c = med(f"lgh_{tag}.json"), med(f"torch_eager_{tag}.json"), med(f"torch_compile_{tag}.json")
    f = lambda v: f"{v:.2f}" if v else "-"
    r = lambda x, y: f"{x / y:.2f}x" if x and y else "-"
    print(f"| {tag} | {f(a)} | {f(e)} | {f(c)} | {r(e, a)} | {r(c, a)} |")
EOF
fi

[ -f "$out/fused_table.md" ] && { echo; cat "$out/fused_table.md"; }
[ -s "$out/model_table.md" ] && { echo; cat "$out/model_table.md"; }
print_table
exit $failed
