#!/usr/bin/env bash
# The demo: installs what the build needs (idempotently), builds the lgh tool,
# then on the built-in synthetic hands
#   1. evaluates the shipped model (models/lgh_small_synthetic.safetensors) on
#      held-out synthetic hands: EPE, AUC 20-50 and the PCK curve;
#   2. runs `lgh infer` on held-out synthetic images (no ground truth used)
#      and draws the skeletons over them;
#   3. trains the `small` model from scratch for a few minutes and prints the
#      held-out EPE before and after;
# and draws the joint groups the shipped model learned.
# Everything goes to demo_out/; about 10 minutes on a fresh 2-core machine.
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
echo "== 3. training the small model from scratch for a few minutes (stage 1: 2D, then stage 2: Eq. 10)"
$LGH train --data synthetic --config small --out $OUT/train --steps 700 --stage1-steps 500 --batch 8 \
  --lr-2d 2e-3 --lr-rest 1e-3 --tau-interval 10 --augment off --eval-every 350 --eval-samples 128 --log-every 25 \
  --checkpoint-every 350 --seed 7
awk -F, 'NR > 1 && $9 != "" { if (first == "") first = $9; last = $9; step = $1 }
         END { printf "held-out EPE: %.1f mm before training, %.1f mm after %d steps\n", first, last, step }' $OUT/train/log.csv

echo
echo "done: $OUT/pck.png (PCK curve), $OUT/overlays/*.png (lgh infer), $OUT/train/ (the short training run),"
echo "      $OUT/groups.png (learned groups), $OUT/eval.json, $OUT/infer.json"
