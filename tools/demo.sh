#!/usr/bin/env bash
# The demo: installs what the build needs (idempotently), builds the lgh tool,
# then on the built-in synthetic hands
#   1. evaluates the shipped model (models/lgh_small_synthetic.safetensors) on
#      held-out synthetic hands: EPE, AUC 20-50 and the PCK curve;
#   2. runs `lgh infer` on held-out synthetic images (no ground truth used)
#      and draws the skeletons over them;
#   3. trains stage 2 (Eq. 10) for a few minutes, starting from the shipped
#      model's stage-1 backbone (models/lgh_small_synthetic_stage1.safetensors:
#      the backbone trained on the 2D loss; the joint-group selector, the
#      regressors and the fusion start random), and prints the held-out EPE
#      before and after;
# and draws the joint groups the shipped model learned.
# Everything goes to demo_out/; on 2 cores, about 4 minutes, the build included.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/setup.sh build
cmake -S . -B build-demo -G Ninja -DLGH_NATIVE_ARCH=ON -DLGH_CUDA=OFF -DLGH_BUILD_TESTS=OFF -DLGH_BUILD_EXAMPLES=OFF >/dev/null
cmake --build build-demo --target lgh_cli
LGH=build-demo/tools/lgh/lgh
OUT=demo_out
MODEL=models/lgh_small_synthetic.safetensors
rm -rf "$OUT/train" "$OUT/overlays"
mkdir -p "$OUT"

echo
echo "== 1. the shipped model on 256 held-out synthetic hands (ground-truth root and scale, as the RHD protocol),"
echo "      and the joint groups it learned"
$LGH eval --weights $MODEL --data synthetic --samples 256 --json $OUT/eval.json --plot $OUT/pck.png --groups $OUT/groups.png

echo
echo "== 2. lgh infer on 8 held-out synthetic images: 2D in image pixels, 3D with the root depth recovered"
$LGH synth --out $OUT/heldout --count 8 --size 224 --seed 2024 --quiet
$LGH infer --image $OUT/heldout/training/rgb --json $OUT/infer.json --overlay $OUT/overlays

echo
echo "== 3. training stage 2 (Eq. 10) for a few minutes from the shipped model's stage-1 backbone"
echo "      (the groups, regressors and fusion start random)"
$LGH train --data synthetic --config small --init models/lgh_small_synthetic_stage1.safetensors --stage full \
  --out $OUT/train --steps 200 --batch 8 --beta 1 --lr-rest 1e-3 --tau-interval 4 --augment off --eval-every 100 \
  --eval-samples 128 --log-every 25 --checkpoint-every 100 --seed 7
awk -F, 'NR > 1 && $9 != "" { if (first == "") first = $9; last = $9; step = $1 }
         END { printf "held-out EPE: %.1f mm before training, %.1f mm after %d steps\n", first, last, step }' $OUT/train/log.csv

echo
echo "done: $OUT/pck.png (PCK curve), $OUT/overlays/*.png (lgh infer), $OUT/train/ (the short training run),"
echo "      $OUT/groups.png (learned groups), $OUT/eval.json, $OUT/infer.json"
