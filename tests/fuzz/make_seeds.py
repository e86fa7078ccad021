#!/usr/bin/env python3
"""Writes the seed corpora of the fuzz harnesses into tests/fuzz/corpus/.

Seeds are small valid (and a few nearly valid) inputs from which libFuzzer
mutates; most come from the test fixtures, the rest are written here with
numpy, scipy, torch (the reference model of tests/reference) and hand-made
PNG/BMP encoders, so that every branch a decoder takes on real files is
reachable. Run from anywhere:  /usr/bin/python3 tests/fuzz/make_seeds.py
(the committed corpus is its output; running it again rewrites it: the
.mat files differ only in the creation date scipy writes into their header,
the model files whenever tests/reference/lgh_model.py changes).
"""
import io
import json
import os
import shutil
import struct
import sys
import zlib

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
TESTS = os.path.dirname(HERE)
FIX = os.path.join(TESTS, "data", "fixtures")
OUT = os.path.join(HERE, "corpus")
sys.path.insert(0, os.path.join(TESTS, "reference"))


def put(name, rel, data):
    path = os.path.join(OUT, name, rel)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())


def read(path):
    with open(path, "rb") as f:
        return f.read()


# ---- safetensors -------------------------------------------------------------------
def safetensors_seeds():
    import safetensors_np as st
    import torch
    import lgh_model as L

    torch.manual_seed(0)
    for tag, cfg in [("k2_fusion", L.Config(S=64, F=2, P0=2, P1=2, K=2, hourglass_depth=2, hourglass_modules=1, J=3)),
                     ("k1", L.Config(S=64, F=4, P0=1, P1=2, K=1, hourglass_depth=1, hourglass_modules=1, J=2))]:
        # The neck's 128 channels make even these about 1 MB: one with the
        # config in the metadata, one whose config is inferred from shapes.
        tensors = L.state_dict_numpy(L.LearnableGroupsHandModel(cfg))
        meta = {"lgh.config": cfg.to_json()} if tag == "k2_fusion" else None
        put("safetensors", f"model_{tag}.safetensors", st.serialize(tensors, meta))
    mixed = {
        "f16": np.arange(6, dtype=np.float16).reshape(2, 3),
        "f64": np.linspace(-1, 1, 4),
        "i32": np.array([-5, 7], dtype=np.int32),
        "u8": np.array([[0, 255]], dtype=np.uint8),
        "flag": np.array([True, False]),
        "scalar": np.array(3.5, dtype=np.float32),
        "empty": np.zeros((0, 4), dtype=np.float32),
    }
    put("safetensors", "dtypes.safetensors", st.serialize(mixed, {"note": "x"}))
    header = b'{"__metadata__":{"lgh.config":"{\\"S\\":64}"}}'
    put("safetensors", "metadata_only.safetensors", struct.pack("<Q", len(header)) + header)


# ---- pickle (RHD) ---------------------------------------------------------------------
def pickle_seeds():
    for f in sorted(os.listdir(os.path.join(FIX, "pickle"))):
        if f.endswith(".pickle"):
            put("pickle", f, read(os.path.join(FIX, "pickle", f)))
    put("pickle", "rhd_anno_training.pickle", read(os.path.join(FIX, "rhd", "training", "anno_training.pickle")))
    for f in sorted(os.listdir(os.path.join(FIX, "rhd_bad_anno"))):
        put("pickle", "rhd_" + f, read(os.path.join(FIX, "rhd_bad_anno", f)))


# ---- FreiHAND -------------------------------------------------------------------------
def freihand_seeds():
    d = os.path.join(FIX, "freihand")
    K = read(os.path.join(d, "training_K.json"))
    xyz = read(os.path.join(d, "training_xyz.json"))
    vis = read(os.path.join(d, "training_vis.json"))
    sep = b"\n@@\n"
    put("freihand", "k_xyz_vis.txt", K + sep + xyz + sep + vis)
    put("freihand", "k_xyz.txt", K + sep + xyz)
    k1 = json.dumps(json.loads(K)[:1]).encode()
    x1 = json.dumps(json.loads(xyz)[:1]).encode()
    v1 = json.dumps([[1] * 21]).encode()
    put("freihand", "one_annotation_numeric_vis.txt", k1 + sep + x1 + sep + v1)


# ---- Dexter+Object --------------------------------------------------------------------
def dexter_seeds():
    lines = read(os.path.join(FIX, "dexter_object", "data", "Rigid", "annotations", "my_Rigid3D.txt")).decode().splitlines()
    put("dexter_object", "two_frames.txt", "\n".join(lines[:2]) + "\n")
    missing = lines[0].split(";")
    missing[2] = "32001, 32001, 32001"
    put("dexter_object", "missing_tip.txt", ";".join(missing) + "\r\n" + lines[1] + "\r\n\n")
    put("dexter_object", "trailing_semicolon.txt", lines[0] + ";\n" + lines[1] + ";  \n")


# ---- STB .mat -------------------------------------------------------------------------
def stb_mat_seeds():
    import scipy.io

    for f in sorted(os.listdir(os.path.join(FIX, "stb", "labels"))):
        put("stb_mat", f, read(os.path.join(FIX, "stb", "labels", f)))
    hand = np.arange(3 * 21 * 2, dtype=np.float64).reshape(3, 21, 2, order="F")
    for tag, kw, arr in [("v5_compressed", dict(do_compression=True), hand),
                         ("v5_single", dict(), hand.astype(np.float32)),
                         ("v4", dict(format="4"), hand[:, :, 0])]:
        buf = io.BytesIO()
        scipy.io.savemat(buf, {"handPara": arr}, **kw)
        put("stb_mat", f"{tag}.mat", buf.getvalue())
    buf = io.BytesIO()
    scipy.io.savemat(buf, {"other": np.zeros((2, 2)), "handPara": np.ones((3, 21, 1)) * 1j})
    put("stb_mat", "complex.mat", buf.getvalue())


# ---- images ---------------------------------------------------------------------------
def png(width, height, colour_type, bit_depth, rows, palette=None, trns=None):
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    raw = b"".join(b"\x00" + r for r in rows)
    out = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, bit_depth, colour_type, 0, 0, 0))
    if palette is not None:
        out += chunk(b"PLTE", palette)
    if trns is not None:
        out += chunk(b"tRNS", trns)
    return out + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


def bmp(width, height, bits, pixel_rows, palette=b""):
    stride = (width * bits // 8 + 3) & ~3
    data = b"".join(r.ljust(stride, b"\x00") for r in reversed(pixel_rows))
    offset = 14 + 40 + len(palette)
    header = struct.pack("<2sIHHI", b"BM", offset + len(data), 0, 0, offset)
    info = struct.pack("<IiiHHIIiiII", 40, width, height, 1, bits, 0, len(data), 2835, 2835, len(palette) // 4, 0)
    return header + info + palette + data


def image_seeds():
    for sub in ("rhd/training/color/00000.png", "rhd/training/mask/00001.png", "stb/images/B1Counting/SK_color_2.png",
                "freihand/training/rgb/00000000.jpg", "freihand/training/mask/00000000.jpg"):
        put("image", sub.replace("/", "_"), read(os.path.join(FIX, sub)))
    w, h = 5, 3
    put("image", "grey8.png", png(w, h, 0, 8, [bytes((x * 40 + y) % 256 for x in range(w)) for y in range(h)]))
    put("image", "grey16.png", png(w, h, 0, 16, [bytes(range(2 * w)) for _ in range(h)]))
    put("image", "grey2.png", png(w, h, 0, 2, [bytes([0b00011011, 0b11000000]) for _ in range(h)]))
    put("image", "rgba.png", png(w, h, 6, 8, [bytes(range(4 * w)) for _ in range(h)]))
    put("image", "grey_alpha.png", png(w, h, 4, 8, [bytes(range(2 * w)) for _ in range(h)]))
    put("image", "palette_trns.png", png(w, h, 3, 4, [bytes([0x01, 0x23, 0x40]) for _ in range(h)],
                                          palette=bytes(range(12)), trns=b"\x00\x80"))
    put("image", "rgb16.png", png(2, 2, 2, 16, [bytes(range(12)) for _ in range(2)]))
    put("image", "rgb24.bmp", bmp(w, h, 24, [bytes(range(3 * w)) for _ in range(h)]))
    put("image", "rgb32.bmp", bmp(w, h, 32, [bytes(range(4 * w)) for _ in range(h)]))
    put("image", "pal8.bmp", bmp(w, h, 8, [bytes([0, 1, 2, 3, 1]) for _ in range(h)], palette=bytes(range(16))))


# ---- lgh command lines ------------------------------------------------------------------
def cli_seeds():
    # One argument per line; the harness's sandbox holds w.safetensors,
    # x.safetensors, cfg.json and the FreiHAND-layout data set fh.
    seeds = {
        "forward.txt": ["forward", "--weights", "w.safetensors", "--input", "x.safetensors", "--output", "y.safetensors"],
        "forward_soft.txt": ["forward", "--weights=w.safetensors", "--input", "x.safetensors", "--output", "y.safetensors",
                             "--selector", "soft", "--tau", "0.5", "--threads", "1"],
        "forward_sample.txt": ["forward", "--weights", "w.safetensors", "--input", "w.safetensors", "--output", "o",
                               "--selector", "sample", "--seed", "3", "--device", "cpu"],
        "synth.txt": ["synth", "--out", "s", "--count", "2", "--quiet"],
        "synth_size.txt": ["synth", "--out", "s", "--count", "1", "--size", "64", "--seed", "1"],
        "bench.txt": ["bench", "--config", "cfg.json", "--batch", "1", "--mode", "infer", "--iters", "1", "--warmup", "0",
                      "--json", "b.json"],
        "bench_train.txt": ["bench", "--config", "cfg.json", "--batch", "1", "--mode", "train", "--iters", "1",
                            "--warmup", "0", "--json", "b.json"],
        "help.txt": ["--help"],
        "forward_help.txt": ["forward", "--help"],
        "version.txt": ["--version"],
        "unknown.txt": ["frobnicate", "--x"],
    }
    for name, args in seeds.items():
        put("cli", name, "\n".join(args) + "\n")


def main():
    if os.path.isdir(OUT):
        shutil.rmtree(OUT)
    safetensors_seeds()
    pickle_seeds()
    freihand_seeds()
    dexter_seeds()
    stb_mat_seeds()
    image_seeds()
    cli_seeds()
    print("seeds written to", OUT)


if __name__ == "__main__":
    main()
