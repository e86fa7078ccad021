#!/usr/bin/python3
"""Writes the small dataset fixtures under tests/data/fixtures/ with Python's
own pickle, json, scipy.io.savemat and PIL, so the C++ readers are tested on
files that the tools used by the real datasets produce. Each fixture comes
with an expected.json holding the values the C++ readers must return,
computed here independently (numpy) from the dataset conventions.

Run with a Python that has numpy, scipy and PIL:  python3 tests/data/make_fixtures.py
The output is deterministic (fixed seeds), so re-running changes nothing.
"""
import io
import json
import math
import os
import pickle
import shutil
import struct
import sys

import numpy as np
import scipy.io
from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "fixtures")

# Canonical order (RHD): 0 wrist, then thumb, index, middle, ring, little,
# each tip -> MCP: joint 1 + 4f + d, d = 0 at the tip.


def canonical_from_freihand(j):
    return 0 if j == 0 else 1 + 4 * ((j - 1) // 4) + (3 - (j - 1) % 4)


def stb_from_canonical(j):
    # STB: 0 palm, then little, ring, middle, index, thumb, each MCP -> tip.
    if j == 0:
        return 0
    f, d = (j - 1) // 4, (j - 1) % 4
    return 1 + 4 * (4 - f) + (3 - d)


def random_hand(rng, centre_mm):
    """21 canonical joints (mm) of a plausible, non-degenerate hand."""
    wrist = np.asarray(centre_mm, dtype=np.float64)
    joints = np.zeros((21, 3))
    joints[0] = wrist
    for f in range(5):
        angle = math.radians(-40 + 20 * f) + rng.uniform(-0.1, 0.1)
        direction = np.array([math.sin(angle), -math.cos(angle), rng.uniform(-0.3, 0.3)])
        direction /= np.linalg.norm(direction)
        mcp = wrist + direction * (60 + 10 * rng.uniform())
        for d in range(4):  # d = 3 is the MCP, d = 0 the tip
            joints[1 + 4 * f + d] = mcp + direction * (3 - d) * (22 + 5 * rng.uniform())
    return joints


def project(K, xyz):
    uvw = (K @ xyz.T).T
    return uvw[:, :2] / uvw[:, 2:3]


def write_json(path, obj):
    with open(path, "w") as f:
        json.dump(obj, f, indent=None, separators=(",", ":"))
        f.write("\n")


def flat_png(path, size, colour, mode="RGB", marks=()):
    """A flat image (compresses to a few hundred bytes) with optional
    rectangles (x0, y0, x1, y1, value)."""
    img = Image.new(mode, size, colour)
    for x0, y0, x1, y1, value in marks:
        img.paste(value, (x0, y0, x1, y1))
    os.makedirs(os.path.dirname(path), exist_ok=True)
    img.save(path, optimize=True)


def savemat(path, variables):
    """scipy.io.savemat with a fixed header text (scipy stamps the creation
    time into the first 116 bytes), so the fixtures are reproducible."""
    scipy.io.savemat(path, variables)
    with open(path, "r+b") as f:
        f.write(b"MATLAB 5.0 MAT-file, written by tests/data/make_fixtures.py".ljust(116, b" "))


def reset(path):
    if os.path.exists(path):
        shutil.rmtree(path)
    os.makedirs(path)


# ---------------------------------------------------------------------------
# Python 2 style pickles. Python 2 is not available to write them, so this
# emits the opcode stream cPickle (protocol 2) writes for a dict of dicts of
# numpy arrays: str keys and the arrays' raw data as byte strings
# (SHORT_BINSTRING / BINSTRING), globals memoised and fetched again with
# BINGET. Python 3 then reads each stream back (encoding='latin1', the usual
# way RHD's pickle is opened) to prove it is a valid pickle of the intended
# values.


class Py2Pickler:
    def __init__(self):
        self.out = bytearray(b"\x80\x02")
        self.memo = {}
        self.next_memo = 0

    def _put(self, key=None):
        i = self.next_memo
        self.next_memo += 1
        self.out += (b"q" + bytes([i])) if i < 256 else (b"r" + struct.pack("<I", i))
        if key is not None:
            self.memo[key] = i

    def _get(self, key):
        i = self.memo[key]
        self.out += (b"h" + bytes([i])) if i < 256 else (b"j" + struct.pack("<I", i))

    def str_(self, s):
        s = s.encode("latin1") if isinstance(s, str) else bytes(s)
        if len(s) < 256:
            self.out += b"U" + bytes([len(s)]) + s
        else:
            self.out += b"T" + struct.pack("<i", len(s)) + s
        self._put()

    def int_(self, i):
        if 0 <= i < 256:
            self.out += b"K" + bytes([i])
        elif 0 <= i < 65536:
            self.out += b"M" + struct.pack("<H", i)
        else:
            self.out += b"J" + struct.pack("<i", i)

    def global_(self, module, name):
        key = ("global", module, name)
        if key in self.memo:
            self._get(key)
        else:
            self.out += b"c" + module.encode() + b"\n" + name.encode() + b"\n"
            self._put(key)

    def dtype(self, dt):
        key = ("dtype", dt.str)
        if key in self.memo:
            self._get(key)
            return
        self.global_("numpy", "dtype")
        self.str_(dt.kind + str(dt.itemsize))
        self.int_(0)
        self.int_(1)
        self.out += b"\x87"  # TUPLE3
        self._put()
        self.out += b"R"
        self._put(key)
        order = "|" if dt.itemsize == 1 else ("<" if dt.byteorder in "<=" else ">")
        self.out += b"("
        self.int_(3)
        self.str_(order)
        self.out += b"NNN"
        self.out += b"J" + struct.pack("<i", -1) + b"J" + struct.pack("<i", -1)
        self.int_(0)
        self.out += b"t"
        self._put()
        self.out += b"b"

    def array(self, a, data_len=None):
        self.global_("numpy.core.multiarray", "_reconstruct")
        self.global_("numpy", "ndarray")
        self.int_(0)
        self.out += b"\x85"
        self._put()
        self.str_("b")
        self.out += b"\x87"
        self._put()
        self.out += b"R"
        self._put()
        self.out += b"("
        self.int_(1)
        for d in a.shape:
            self.int_(d)
        self.out += {0: b")", 1: b"\x85", 2: b"\x86", 3: b"\x87"}[a.ndim]
        self._put()
        self.dtype(a.dtype)
        self.out += b"\x89"  # NEWFALSE: C order
        raw = a.tobytes()
        self.str_(raw if data_len is None else raw[:data_len])
        self.out += b"t"
        self._put()
        self.out += b"b"

    def value(self, v):
        if isinstance(v, dict):
            self.out += b"}"
            self._put()
            if v:
                self.out += b"("
                for k, x in v.items():
                    self.value(k)
                    self.value(x)
                self.out += b"u"
        elif isinstance(v, np.ndarray):
            self.array(v)
        elif isinstance(v, (int, np.integer)):
            self.int_(int(v))
        elif isinstance(v, str):
            self.str_(v)
        else:
            raise TypeError(type(v))

    def dumps(self, v):
        self.value(v)
        self.out += b"."
        return bytes(self.out)


def same(a, b):
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, np.ndarray):
        # numpy reads big-endian data back in native order: compare kind,
        # size and values, not the byte order.
        return (isinstance(b, np.ndarray) and a.dtype.kind == b.dtype.kind and a.dtype.itemsize == b.dtype.itemsize
                and a.shape == b.shape and np.array_equal(a, b))
    if isinstance(a, (list, tuple)):
        return type(a) == type(b) and len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, float) and math.isnan(a):
        return isinstance(b, float) and math.isnan(b)
    return type(a) == type(b) and a == b


def describe(a):
    """JSON description of an array: dtype, shape and values as doubles."""
    return {"dtype": a.dtype.kind + str(a.dtype.itemsize), "shape": list(a.shape),
            "values": [float(x) for x in np.asarray(a, dtype=np.float64).reshape(-1)]}


class Evil:
    """Pickles as a call of os.system: the reader must refuse it."""

    def __reduce__(self):
        return (os.system, ("true",))


class Evaluate:
    def __reduce__(self):
        return (eval, ("1+1",))


class UserClass:
    def __init__(self):
        self.x = 1


def make_pickles():
    out = os.path.join(OUT, "pickle")
    reset(out)
    rng = np.random.default_rng(1)
    content = {
        0: {"xyz": rng.normal(size=(42, 3)).astype(np.float32),
            "uv_vis": rng.normal(size=(42, 3)) * 100,
            "K": np.array([[320.0, 0, 160.5], [0, 321.0, 158.25], [0, 0, 1]])},
        7: {"xyz": rng.normal(size=(42, 3)).astype(np.float32),
            "uv_vis": rng.normal(size=(42, 3)) * 100,
            "K": np.eye(3)},
        "nested": {"a": {"b": np.arange(24, dtype=np.uint8).reshape(2, 3, 4)}},
        "fortran": np.asfortranarray(rng.normal(size=(3, 4))),
        "big_endian": np.array([[1.5, -2.25], [3.0, 1e-3]], dtype=">f8"),
        "int16": np.array([-32768, -1, 0, 1, 32767], dtype=np.int16),
        "int64": np.array([-(2 ** 40), 2 ** 40], dtype=np.int64),
        "bool": np.array([True, False, True]),
        "scalar": np.float32(2.5),
        "empty": np.zeros((0, 3)),
        "ints": [0, 1, -1, 255, 256, 65535, 65536, -(2 ** 31), 2 ** 31, 2 ** 40, -(2 ** 40)],
        "floats": (1.5, -0.25, 1e300),
        "flags": (True, False, None),
        "text": "h\u00e9llo",
        "raw": b"\x00\xff",
    }
    expected = {"arrays": {}, "ints": content["ints"], "floats": list(content["floats"])}
    expected["arrays"]["0/xyz"] = describe(content[0]["xyz"])
    expected["arrays"]["0/uv_vis"] = describe(content[0]["uv_vis"])
    expected["arrays"]["0/K"] = describe(content[0]["K"])
    expected["arrays"]["7/xyz"] = describe(content[7]["xyz"])
    expected["arrays"]["nested/a/b"] = describe(content["nested"]["a"]["b"])
    for k in ("fortran", "big_endian", "int16", "int64", "bool", "empty"):
        expected["arrays"][k] = describe(content[k])
    expected["arrays"]["scalar"] = describe(np.asarray(content["scalar"]))
    for proto in (2, 3, 4, 5):
        data = pickle.dumps(content, protocol=proto)
        assert same(pickle.loads(data), content)
        with open(os.path.join(out, "p%d.pickle" % proto), "wb") as f:
            f.write(data)

    # RHD-like Python 2 stream (str keys, byte-string array data, BINSTRING
    # for data of 256 bytes or more).
    py2 = {0: {"xyz": content[0]["xyz"], "uv_vis": content[0]["uv_vis"], "K": content[0]["K"]},
           7: {"xyz": content[7]["xyz"], "uv_vis": content[7]["uv_vis"], "K": content[7]["K"]},
           "small": np.array([1, 2, 3], dtype=np.uint8)}
    data = Py2Pickler().dumps(py2)
    assert same(pickle.loads(data, encoding="latin1"), py2)
    assert b"T" in data and b"U\x03xyz" in data
    with open(os.path.join(out, "py2.pickle"), "wb") as f:
        f.write(data)
    expected["py2_small"] = describe(py2["small"])

    # Arrays whose data does not match their shape: Python refuses them too.
    bad = Py2Pickler()
    bad.out += b"}"
    bad._put()
    bad.out += b"("
    bad.str_("xyz")
    bad.array(np.zeros((42, 3), dtype=np.float32), data_len=100)
    bad.out += b"u."
    bad_bytes = bytes(bad.out)
    try:
        pickle.loads(bad_bytes, encoding="latin1")
        raise AssertionError("python accepted the bad-shape pickle")
    except ValueError:
        pass
    with open(os.path.join(out, "bad_shape_py2.pickle"), "wb") as f:
        f.write(bad_bytes)

    # Pickles naming globals that must never be called.
    with open(os.path.join(out, "evil_system_p2.pickle"), "wb") as f:
        f.write(pickle.dumps({"a": Evil()}, protocol=2))
    with open(os.path.join(out, "evil_eval_p4.pickle"), "wb") as f:
        f.write(pickle.dumps([Evaluate()], protocol=4))
    with open(os.path.join(out, "user_class_p4.pickle"), "wb") as f:
        f.write(pickle.dumps({"k": UserClass()}, protocol=4))
    # Protocol 0 (text opcodes) is not supported: the reader must say so.
    with open(os.path.join(out, "p0.pickle"), "wb") as f:
        f.write(pickle.dumps({"a": 1}, protocol=0))
    # A list that contains itself, through the memo.
    cycle = []
    cycle.append(cycle)
    with open(os.path.join(out, "cycle_p2.pickle"), "wb") as f:
        f.write(pickle.dumps(cycle, protocol=2))
    write_json(os.path.join(out, "expected.json"), expected)


def rhd_mask(i):
    """Mask with a person region and two hands; hand i decides which wins:
    0: right larger, 1: left larger, 2: a tie (the right hand wins)."""
    m = np.zeros((320, 320), dtype=np.uint8)
    m[200:300, 0:320] = 1  # person
    left_side, right_side = [(20, 20), (40, 30), (20, 20)][i], [(30, 30), (10, 10), (20, 20)][i]
    h, w = left_side
    m[20:20 + h, 20:20 + w] = (2 + np.arange(h * w) % 16).reshape(h, w)
    h, w = right_side
    m[100:100 + h, 150:150 + w] = (18 + np.arange(h * w) % 16).reshape(h, w)
    return m, left_side[0] * left_side[1], right_side[0] * right_side[1]


def make_rhd():
    out = os.path.join(OUT, "rhd")
    reset(out)
    rng = np.random.default_rng(2)
    expected = {}
    for set_name, keys in (("training", [0, 1, 2]), ("evaluation", [0, 2])):
        anno = {}
        exp = []
        for n, key in enumerate(keys):
            K = np.array([[280.0 + 10 * n, 0, 160.0 + n], [0, 282.0 + 10 * n, 158.5], [0, 0, 1]])
            left = random_hand(rng, [-60, 10, 600])
            right = random_hand(rng, [70, 0, 650])
            xyz_m = (np.concatenate([left, right]) / 1000.0).astype(np.float32)
            uv = project(K, xyz_m.astype(np.float64))
            vis = (rng.uniform(size=42) > 0.3).astype(np.float64)
            # The real training pickle stores float32; use float64 elsewhere
            # to cover both.
            dt = np.float32 if set_name == "training" else np.float64
            anno[key] = {"xyz": xyz_m, "uv_vis": np.concatenate([uv, vis[:, None]], axis=1).astype(dt),
                         "K": K.astype(dt)}
            mask, n_left, n_right = rhd_mask(key)
            is_left = n_left > n_right
            num = "%05d" % key
            pixel = [10 + 40 * key, 77, 99 if set_name == "training" else 155]
            flat_png(os.path.join(out, set_name, "color", num + ".png"), (320, 320), (30, 30, 30),
                     marks=[(0, 0, 1, 1, tuple(pixel))])
            os.makedirs(os.path.join(out, set_name, "mask"), exist_ok=True)
            Image.fromarray(mask, mode="L").save(os.path.join(out, set_name, "mask", num + ".png"), optimize=True)
            base = 0 if is_left else 21
            stored = anno[key]
            exp.append({
                "key": key, "id": "rhd/%s/%s" % (set_name, num), "is_left": bool(is_left),
                "xyz_mm": (stored["xyz"][base:base + 21].astype(np.float64) * 1000.0).tolist(),
                "uv": stored["uv_vis"][base:base + 21, :2].astype(np.float64).tolist(),
                "visible": [bool(v == 1) for v in stored["uv_vis"][base:base + 21, 2]],
                "K": [float(K[0, 0]), float(K[1, 1]), float(K[0, 2]), float(K[1, 2])],
                "mask_pixels": int(n_left if is_left else n_right), "pixel00": pixel})
        path = os.path.join(out, set_name, "anno_%s.pickle" % set_name)
        if set_name == "training":
            data = Py2Pickler().dumps(anno)  # as the real file: Python 2, protocol 2
            assert same(pickle.loads(data, encoding="latin1"), anno)
        else:
            data = pickle.dumps(anno, protocol=4)
        with open(path, "wb") as f:
            f.write(data)
        expected[set_name] = exp
    write_json(os.path.join(out, "expected.json"), expected)

    # Annotation files with a missing field and a wrong shape, to replace the
    # good one in error tests.
    bad = os.path.join(OUT, "rhd_bad_anno")
    reset(bad)
    entry = {"xyz": np.zeros((42, 3), np.float32), "uv_vis": np.zeros((42, 3), np.float32),
             "K": np.eye(3, dtype=np.float32)}
    with open(os.path.join(bad, "missing_K.pickle"), "wb") as f:
        f.write(pickle.dumps({0: entry, 5: {k: v for k, v in entry.items() if k != "K"}}, protocol=2))
    with open(os.path.join(bad, "short_xyz.pickle"), "wb") as f:
        f.write(pickle.dumps({0: dict(entry, xyz=np.zeros((21, 3), np.float32))}, protocol=2))


# STB's colour -> depth extrinsics (dataset readme).
STB_ROT = np.array([0.00531, -0.01196, 0.00301])
STB_T = np.array([-24.0381, -0.4563, -1.2326])
STB_SK = (607.92271, 607.88192, 314.78337, 236.42484)
STB_BB = (822.79041, 822.79041, 318.47345, 250.31296)


def make_stb():
    from scipy.spatial.transform import Rotation
    out = os.path.join(OUT, "stb")
    reset(out)
    R = Rotation.from_rotvec(STB_ROT).as_matrix()
    rng = np.random.default_rng(3)
    expected = {}
    for seq, frames, cameras in (("B1Counting", 3, ("SK", "BB")), ("B1Random", 2, ("SK", "BB")),
                                 ("B2Counting", 2, ("SK",))):
        for cam in cameras:
            fx, fy, cx, cy = STB_SK if cam == "SK" else STB_BB
            K = np.array([[fx, 0, cx], [0, fy, cy], [0, 0, 1]])
            hand_para = np.zeros((3, 21, frames))
            exp = []
            for n in range(frames):
                hand = random_hand(rng, [rng.uniform(-40, 40), rng.uniform(-30, 30), rng.uniform(450, 650)])
                # Joint 0 is the palm centre: between wrist and middle MCP.
                hand[0] = 0.5 * (hand[0] + hand[12])
                # Stored in STB's order; SK labels in the depth camera frame.
                raw = np.zeros((21, 3))
                for j in range(21):
                    raw[stb_from_canonical(j)] = hand[j]
                if cam == "SK":
                    raw = (R @ raw.T).T + STB_T
                hand_para[:, :, n] = raw.T
                # What the reader must return, from the stored numbers.
                xyz = np.array([raw[stb_from_canonical(j)] for j in range(21)])
                if cam == "SK":
                    xyz = (R.T @ (xyz - STB_T).T).T
                wrist = xyz[12] + 2.0 * (xyz[0] - xyz[12])
                uv = project(K, xyz)
                name = ("SK_color_%d" if cam == "SK" else "BB_left_%d") % n
                pixel = [20 + 50 * n, 100 if cam == "SK" else 200, 7 + len(exp)]
                flat_png(os.path.join(out, "images", seq, name + ".png"), (640, 480), (90, 60, 50),
                         marks=[(0, 0, 1, 1, tuple(pixel))])
                visible = [bool(-0.5 <= u < 639.5 and -0.5 <= v < 479.5) for u, v in uv]
                exp.append({"id": "stb/%s/%s" % (seq, name), "xyz_mm": xyz.tolist(), "wrist_mm": wrist.tolist(),
                            "uv": uv.tolist(), "visible": visible, "K": [fx, fy, cx, cy], "pixel00": pixel})
            os.makedirs(os.path.join(out, "labels"), exist_ok=True)
            savemat(os.path.join(out, "labels", "%s_%s.mat" % (seq, cam)), {"handPara": hand_para})
            expected["%s_%s" % (seq, cam)] = exp
    write_json(os.path.join(out, "expected.json"), expected)

    # Label files that must be refused.
    bad = os.path.join(OUT, "stb_bad")
    reset(bad)
    os.makedirs(os.path.join(bad, "labels"))
    savemat(os.path.join(bad, "labels", "B1Counting_SK.mat"), {"handPara": np.zeros((2, 21, 3))})
    savemat(os.path.join(bad, "labels", "B1Random_SK.mat"), {"other": np.zeros((3, 21, 3))})
    savemat(os.path.join(bad, "labels", "B2Counting_SK.mat"), {"handPara": np.zeros((3, 21, 2)) * 1j})
    with open(os.path.join(bad, "labels", "B2Random_SK.mat"), "wb") as f:
        f.write(b"this is not a MATLAB file\n")


def make_freihand():
    out = os.path.join(OUT, "freihand")
    reset(out)
    rng = np.random.default_rng(4)
    n_ann, versions = 3, 2
    Ks, xyzs, scales, vis = [], [], [], []
    for a in range(n_ann):
        K = np.array([[480.0 + 20 * a, 0, 112.0 + a], [0, 481.5 + 20 * a, 111.5 - a], [0, 0, 1]])
        hand = random_hand(rng, [rng.uniform(-20, 20), rng.uniform(-20, 20), rng.uniform(700, 800)])
        # Stored in FreiHAND's order (root -> tip), metres.
        frei = np.zeros((21, 3))
        for j in range(21):
            frei[j if j == 0 else next(f for f in range(21) if canonical_from_freihand(f) == j)] = hand[j] / 1000.0
        Ks.append(K.tolist())
        xyzs.append(frei.tolist())
        scales.append(float(np.linalg.norm(frei[9] - frei[10])))
        vis.append([bool(v) for v in rng.uniform(size=21) > 0.2])
    for name, obj in (("K", Ks), ("xyz", xyzs), ("scale", scales), ("vis", vis)):
        write_json(os.path.join(out, "training_%s.json" % name), obj)
    os.makedirs(os.path.join(out, "training", "rgb"))
    os.makedirs(os.path.join(out, "training", "mask"))
    expected = []
    for i in range(n_ann * versions):
        a = i % n_ann
        colour = (40 + 40 * i, 200 - 30 * i, 90)
        Image.new("RGB", (224, 224), colour).save(os.path.join(out, "training", "rgb", "%08d.jpg" % i), quality=95)
        K = np.array(Ks[a])
        frei = np.array(xyzs[a])
        xyz = np.array([frei[canonical_from_freihand(j)] for j in range(21)]) * 1000.0
        uv = project(K, xyz)
        visible = [bool(vis[a][canonical_from_freihand(j)] and -0.5 <= uv[j][0] < 223.5 and -0.5 <= uv[j][1] < 223.5)
                   for j in range(21)]
        box = [8 * (a + 1), 16, 8 * (a + 1) + 40 + 8 * a, 120]  # x0, y0, x1, y1 (exclusive), 8-aligned
        expected.append({"id": "freihand/training/%08d" % i, "annotation": a, "xyz_mm": xyz.tolist(),
                         "uv": uv.tolist(), "visible": visible,
                         "K": [K[0][0], K[1][1], K[0][2], K[1][2]], "colour": list(colour), "mask_box": box})
        if i < n_ann:
            m = Image.new("L", (224, 224), 0)
            m.paste(255, tuple(box))
            m.save(os.path.join(out, "training", "mask", "%08d.jpg" % i), quality=95)
    write_json(os.path.join(out, "expected.json"), expected)


DO_K = np.array([[587.45209, 0, 325], [0, 600.67456, 249], [0, 0, 1]])
DO_RT = np.array([[0.9999, 0.0034, 0.0161, 19.0473],
                  [-0.0033, 1.0000, -0.0079, -1.8514],
                  [-0.0162, 0.0079, 0.9998, -4.7501]])


def make_dexter_object():
    out = os.path.join(OUT, "dexter_object")
    reset(out)
    rng = np.random.default_rng(5)
    expected = []
    tips = [1, 5, 9, 13, 17]  # canonical fingertips: thumb, index, middle, ring, little
    for seq, frames, annotation, trailing in (("Grasp1", 3, "Grasp13D.txt", ";"), ("Rigid", 2, "my_Rigid3D.txt", "")):
        lines = []
        for n in range(frames):
            hand = random_hand(rng, [rng.uniform(-30, 30), rng.uniform(-30, 30), rng.uniform(400, 500)])
            # Written in the annotation frame: x and y negated.
            raw = [[-hand[j][0], -hand[j][1], hand[j][2]] for j in tips]
            if seq == "Grasp1" and n == 1:
                raw[3] = [32001, 32001, 32001]  # ring fingertip not annotated
            lines.append(";".join("%.4f, %.4f, %.4f" % tuple(p) for p in raw) + trailing)
            image = "image_%04d.png" % (n * 7)  # any names; frames follow name order
            pixel = [30 + 60 * n, 10 if seq == "Grasp1" else 250, 40]
            flat_png(os.path.join(out, "data", seq, "color", image), (640, 480), (70, 70, 70),
                     marks=[(0, 0, 1, 1, tuple(pixel))])
            # What the reader must return, from the written text.
            parsed = [[float(v) for v in f.split(",")] for f in lines[-1].rstrip(";").split(";")]
            xyz = []
            for p in parsed:
                if 32001 in p:
                    xyz.append(None)
                    continue
                q = np.array([-p[0], -p[1], p[2], 1.0])
                xyz.append((DO_RT @ q).tolist())
            uv = [None if p is None else project(DO_K, np.array([p]))[0].tolist() for p in xyz]
            expected.append({"id": "dexter_object/%s/%s" % (seq, image[:-4]), "tips_xyz": xyz, "tips_uv": uv,
                             "pixel00": pixel})
        os.makedirs(os.path.join(out, "data", seq, "annotations"), exist_ok=True)
        with open(os.path.join(out, "data", seq, "annotations", annotation), "w") as f:
            f.write("\n".join(lines) + "\n")
    # A decoy with other values: the revised my_ file must win over it.
    with open(os.path.join(out, "data", "Rigid", "annotations", "Rigid3D.txt"), "w") as f:
        f.write("1, 2, 300;1, 2, 300;1, 2, 300;1, 2, 300;1, 2, 300\n" * 2)
    write_json(os.path.join(out, "expected.json"), expected)


def main():
    np.set_printoptions(precision=17)
    make_pickles()
    make_rhd()
    make_stb()
    make_freihand()
    make_dexter_object()
    print("fixtures written to", OUT)


if __name__ == "__main__":
    sys.exit(main())
