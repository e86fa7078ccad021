#!/usr/bin/env bash
# The paper's ablation of its grouping module (Table 2) in miniature, on
# synthetic hands: the `small` model trained four ways with the same data
# stream, seed, steps and learning rates, then scored on the same held-out
# synthetic hands (docs/ablation.md):
#   k1              no groups (K = 1; the fusion is omitted)
#   manual          K = 3 fixed groups: thumb, index, other fingers; no fusion
#   learned         K = 3 learned groups (Eq. 8); no fusion
#   learned_fusion  K = 3 learned groups and the fusion of Eq. (9) (the paper's model)
#
#   bash tools/ablation.sh [OUT] [STEPS] [STAGE1_STEPS]      (defaults: ablation_out 2000 600)
#
# LGH (default build/tools/lgh/lgh) is the tool, THREADS (default 1) its thread
# count, SAMPLES (default 512) the held-out hands. Runs are checkpointed: run the
# script again after an interruption and each run resumes where it stopped.
set -euo pipefail
cd "$(dirname "$0")/.."
LGH=${LGH:-build/tools/lgh/lgh}
OUT=${1:-ablation_out}
STEPS=${2:-2000}
STAGE1=${3:-600}
THREADS=${THREADS:-1}
SAMPLES=${SAMPLES:-512}
# τ falls from 5 to its floor 0.1 over stage 2.
TAU_INTERVAL=$(( (STEPS - STAGE1) / 50 > 0 ? (STEPS - STAGE1) / 50 : 1 ))
common=(--data synthetic --config small --steps "$STEPS" --stage1-steps "$STAGE1" --batch 8 --lr-rest 1e-3
        --tau-interval "$TAU_INTERVAL" --augment off --eval-every 200 --eval-samples 256 --checkpoint-every 100
        --log-every 50 --seed 1 --threads "$THREADS")
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

run k1 --groups 1
run manual --manual-groups --fusion off
run learned --fusion off
run learned_fusion

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
