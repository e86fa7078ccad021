#!/usr/bin/env bash
# The demo: installs what is needed (idempotently), builds the lgh tool and the
# examples, then on the built-in synthetic hands
#   1. writes a small synthetic data set in FreiHAND's layout with a contact sheet,
#   2. trains the `small` model with the paper's two stages (shortened to about
#      two minutes), evaluates it on held-out synthetic crops and draws the
#      predicted skeletons and the learned joint groups,
#   3. runs the trained weights through `lgh forward`,
#   4. times inference with `lgh bench`.
# Everything goes to demo_out/.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/setup.sh
cmake -S . -B build -G Ninja -DLGH_NATIVE_ARCH=ON >/dev/null
cmake --build build --target lgh_cli train_synthetic
mkdir -p demo_out
LGH=build/tools/lgh/lgh

echo "== 1. synthetic hands"
$LGH synth --out demo_out/synthetic --count 64 --size 128 --seed 1

echo "== 2. training on synthetic hands"
build/examples/train_synthetic --out demo_out/train

echo "== 3. lgh forward with the trained weights"
python_image=$(mktemp -d)/crops.safetensors
/usr/bin/python3 - "$python_image" <<'PY'
import json, struct, sys, numpy as np
# 4 random-noise crops in [0,1] in the forward input format (image [B,3,128,128]).
a = np.random.default_rng(0).random((4, 3, 128, 128), dtype=np.float32)
header = json.dumps({"image": {"dtype": "F32", "shape": list(a.shape), "data_offsets": [0, a.nbytes]}}).encode()
header += b" " * (-len(header) % 8)
with open(sys.argv[1], "wb") as f:
    f.write(struct.pack("<Q", len(header)) + header + a.tobytes())
PY
$LGH forward --weights demo_out/train/weights.safetensors --input "$python_image" --output demo_out/forward.safetensors

echo "== 4. lgh bench (small, batch 1, inference)"
$LGH bench --config small --batch 1 --mode infer --iters 10 --json demo_out/bench_small_infer.json

echo
echo "done: see demo_out/synthetic/contact_sheet.png, demo_out/train/predictions.png, demo_out/train/groups.png"
