#!/usr/bin/env bash
# The paper's ablation of its grouping module (Table 2) in miniature, on
# synthetic hands: the `small` model's stage 2 (Eq. 10) trained four ways from
# the same stage-1 backbone, with the same data stream, seed, steps and
# learning rates, then scored on the same held-out synthetic hands
# (docs/ablation.md):
#   k1              no groups (K = 1; the fusion is omitted)
#   manual          K = 3 fixed groups: thumb, index, other fingers; no fusion
#   learned         K = 3 learned groups (Eq. 8); no fusion
#   learned_fusion  K = 3 learned groups and the fusion of Eq. (9) (the paper's model)
# Stage 1 trains the backbone alone on the 2D loss, the same for all four, so
# it is done once: INIT (default: the shipped model's stage-1 backbone) holds
# it. INIT=none trains stage 1 in each run instead (STAGE1_STEPS of STEPS).
#
#   bash tools/ablation.sh [OUT] [STEPS] [STAGE1_STEPS]      (defaults: ablation_out 250 0)
#
# The defaults are CPU-sized: a few minutes a variant on one idle core.
# LGH (default build/tools/lgh/lgh) is the tool, THREADS (default 1) its thread
# count, SAMPLES (default 512) the held-out hands; PARALLEL=1 (the default) runs
# the four variants at once, each with its log in OUT/NAME.log, PARALLEL=0 one
# after the other. Runs are checkpointed: run the
# script again after an interruption and each run resumes where it stopped.
set -euo pipefail
cd "$(dirname "$0")/.."
LGH=${LGH:-build/tools/lgh/lgh}
OUT=${1:-ablation_out}
STEPS=${2:-250}
STAGE1=${3:-0}
THREADS=${THREADS:-1}
SAMPLES=${SAMPLES:-512}
PARALLEL=${PARALLEL:-1}
INIT=${INIT:-models/lgh_small_synthetic_stage1.safetensors}
# τ falls from 5 to its floor 0.1 over stage 2.
TAU_INTERVAL=$(( (STEPS - STAGE1) / 50 > 0 ? (STEPS - STAGE1) / 50 : 1 ))
common=(--data synthetic --config small --steps "$STEPS" --batch 8 --beta 1 --lr-rest 1e-3
        --tau-interval "$TAU_INTERVAL" --augment off --eval-every 0 --eval-samples 128 --checkpoint-every 50
        --log-every 25 --seed 1 --threads "$THREADS")
if [ "$INIT" = none ]; then
  common+=(--stage both --stage1-steps "$STAGE1")
else
  [ "$STAGE1" = 0 ] || { echo "error: STAGE1_STEPS needs INIT=none" >&2; exit 2; }
  common+=(--stage full --init "$INIT")
fi
mkdir -p "$OUT"

run() {
  local name=$1
  shift
  local resume=()
  [ -f "$OUT/$name/last.state.safetensors" ] && resume=(--resume)
  echo "== $name: lgh train ${common[*]} $* ${resume[*]}"
  "$LGH" train "${common[@]}" --out "$OUT/$name" "${resume[@]}" "$@"
  "$LGH" eval --weights "$OUT/$name/last.safetensors" --data synthetic --samples "$SAMPLES" --threads "$THREADS" \
    --json "$OUT/$name/eval.json" --plot "$OUT/$name/pck.svg"
}

variants=("k1 --groups 1" "manual --manual-groups --fusion off" "learned --fusion off" "learned_fusion")
if [ "$PARALLEL" = 1 ]; then
  pids=()
  for v in "${variants[@]}"; do
    # shellcheck disable=SC2086  # a variant is its name and its flags
    run $v >"$OUT/${v%% *}.log" 2>&1 &
    pids+=($!)
  done
  failed=0
  for i in "${!pids[@]}"; do
    wait "${pids[$i]}" || { echo "error: ${variants[$i]%% *} failed: see $OUT/${variants[$i]%% *}.log" >&2; failed=1; }
  done
  [ "$failed" = 0 ] || exit 1
else
  # shellcheck disable=SC2086
  for v in "${variants[@]}"; do run $v; done
fi

echo
echo "| variant | groups | fusion | EPE mean (mm) | EPE median (mm) | AUC 20-50 | AUC 20-50 (true grid) | 2D EPE (px) |"
echo "|---|---|---|---|---|---|---|---|"
for v in "k1|1 (none)|-" "manual|3 manual|-" "learned|3 learned|-" "learned_fusion|3 learned|yes"; do
  IFS='|' read -r name groups fusion <<<"$v"
  /usr/bin/python3 - "$OUT/$name/eval.json" "$name" "$groups" "$fusion" <<'PY'
import json, sys
j = json.load(open(sys.argv[1]))
print("| %s | %s | %s | %.2f | %.2f | %.3f | %.3f | %.2f |" % (sys.argv[2], sys.argv[3], sys.argv[4], j["epe_mean_mm"],
      j["epe_median_mm"], j["auc_20_50"], j["auc_20_50_exact"], j["uv"]["epe_mean_px"]))
PY
done
