#!/usr/bin/env python3
"""An independent safetensors implementation (numpy, json and struct only),
used to check lgh's reader and writer against the format rather than against
themselves.

    safetensors_interop.py write FILE    write the interop tensor set to FILE
    safetensors_interop.py verify FILE   check that FILE (written by lgh) holds
                                         exactly the interop tensor set

Both sides build the same tensors from the same formulas (see expected()), so
every value is checked bit for bit. The file written here also holds, for each
16-bit float tensor, a companion "<name>.f64" with numpy's decoding of it, so
the C++ side can check its half/bfloat16 decoding against numpy's.

Exit status: 0 on success, 1 when the file differs from the expected set (each
difference is printed), 2 on a usage error.
"""
import json
import struct
import sys

import numpy as np

# safetensors dtype name -> little-endian numpy dtype of the stored bits.
STORAGE = {
    "F64": np.dtype("<f8"),
    "F32": np.dtype("<f4"),
    "F16": np.dtype("<f2"),
    "BF16": np.dtype("<u2"),  # numpy has no bfloat16: handled as raw bits
    "I64": np.dtype("<i8"),
    "I32": np.dtype("<i4"),
    "U8": np.dtype("u1"),
    "BOOL": np.dtype("u1"),
}

METADATA = {
    "format": "pt",
    "config": json.dumps({"groups": 3, "fusion": True}),
    "note": "gr\u00f6\u00dfe \u2713",
}


def float32_to_bf16_bits(x):
    """Round float32 values to bfloat16 bits, to nearest even (no NaNs here)."""
    u = np.asarray(x, dtype=np.float32).view(np.uint32).astype(np.uint64)
    return (((u + 0x7FFF + ((u >> 16) & 1)) >> 16) & 0xFFFF).astype(np.uint16)


def bf16_bits_to_float64(bits):
    return (np.asarray(bits, dtype=np.uint32) << 16).view(np.float32).astype(np.float64)


def expected():
    """name -> (dtype, array of the stored values; BF16 as uint16 bits)."""
    i = np.arange(24, dtype=np.int64)
    f32 = ((i - 7) * 0.37).astype(np.float32).reshape(2, 3, 4)
    f64 = (np.arange(5, dtype=np.int64) - 2) / 3.0
    # numpy converts float64 -> float16 directly (one rounding); the last value
    # is a trap for a double -> float -> half path, which would give 1.0.
    f16_src = np.append((np.arange(5, dtype=np.int64) - 3) * 0.1, 1.0 + 2.0**-11 + 2.0**-40)
    f16 = f16_src.astype(np.float16).reshape(3, 2)
    # bfloat16 from float32 values; the last two are exact ties (to even).
    bf16_src = np.append(((np.arange(5, dtype=np.int64) - 2) * 0.3).astype(np.float32),
                         np.array([1.0 + 2.0**-8, 1.0 + 3 * 2.0**-8], dtype=np.float32))
    bf16 = float32_to_bf16_bits(bf16_src)
    return {
        "f32": ("F32", f32),
        "f64": ("F64", f64),
        "f16": ("F16", f16),
        "bf16": ("BF16", bf16),
        "i64": ("I64", np.array([[-2**63, -1], [2**53 + 1, 2**63 - 1]], dtype=np.int64)),
        "i32": ("I32", np.array([-2**31, -7, 0, 2**31 - 1], dtype=np.int32)),
        "u8": ("U8", np.array([0, 128, 255], dtype=np.uint8)),
        "bool": ("BOOL", np.array([[1, 0], [0, 1]], dtype=np.uint8)),
        "scalar": ("F32", np.array(2.5, dtype=np.float32)),
        "empty": ("F32", np.zeros((0, 3), dtype=np.float32)),
    }


def companions(tensors):
    """numpy's own decoding of the 16-bit float tensors, as F64."""
    return {
        "f16.f64": ("F64", tensors["f16"][1].astype(np.float64)),
        "bf16.f64": ("F64", bf16_bits_to_float64(tensors["bf16"][1]).reshape(tensors["bf16"][1].shape)),
    }


# Buffer order of the file written here: deliberately neither alphabetical
# nor the header's key order, so a reader must follow data_offsets.
WRITE_ORDER = ["u8", "f64", "bool", "f16", "empty", "scalar", "i64", "bf16.f64", "f32", "i32",
               "f16.f64", "bf16"]


def write(path):
    tensors = expected()
    tensors.update(companions(tensors))
    assert sorted(WRITE_ORDER) == sorted(tensors)
    header, chunks, offset = {"__metadata__": METADATA}, [], 0
    for name in WRITE_ORDER:
        dtype, arr = tensors[name]
        raw = np.ascontiguousarray(arr).astype(STORAGE[dtype]).tobytes()
        header[name] = {"dtype": dtype, "shape": list(arr.shape), "data_offsets": [offset, offset + len(raw)]}
        chunks.append(raw)
        offset += len(raw)
    text = json.dumps(dict(sorted(header.items())), ensure_ascii=False).encode("utf-8")
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for raw in chunks:
            f.write(raw)


def no_duplicates(pairs):
    keys = [k for k, _ in pairs]
    dups = sorted({k for k in keys if keys.count(k) > 1})
    if dups:
        raise ValueError("duplicate keys in the header: %s" % dups)
    return dict(pairs)


def read(path):
    """Parses FILE by the spec; returns (metadata, {name: (dtype, shape, raw bytes)})."""
    with open(path, "rb") as f:
        blob = f.read()
    if len(blob) < 8:
        raise ValueError("file shorter than 8 bytes")
    (n,) = struct.unpack("<Q", blob[:8])
    if 8 + n > len(blob):
        raise ValueError("header length %d runs past the end of the file" % n)
    header = json.loads(blob[8:8 + n].decode("utf-8"), object_pairs_hook=no_duplicates)
    buf = blob[8 + n:]
    metadata = header.pop("__metadata__", {})
    spans, out = [], {}
    for name, e in header.items():
        dtype, shape, (b, end) = e["dtype"], e["shape"], e["data_offsets"]
        size = STORAGE[dtype].itemsize * int(np.prod(shape, dtype=np.int64))
        if not (0 <= b <= end <= len(buf)) or end - b != size:
            raise ValueError("tensor %r: data_offsets %r do not fit shape %r of %s" % (name, [b, end], shape, dtype))
        spans.append((b, end, name))
        out[name] = (dtype, list(shape), buf[b:end])
    covered = 0
    for b, end, name in sorted(spans):
        if b != covered:
            raise ValueError("data buffer not tiled exactly at byte %d (tensor %r)" % (covered, name))
        covered = end
    if covered != len(buf):
        raise ValueError("bytes [%d, %d) of the buffer belong to no tensor" % (covered, len(buf)))
    return metadata, out


def verify(path):
    errors = []
    try:
        metadata, found = read(path)
    except (ValueError, KeyError, TypeError, UnicodeDecodeError, json.JSONDecodeError) as e:
        print("%s: not a valid safetensors file: %s" % (path, e))
        return 1
    if metadata != METADATA:
        errors.append("metadata is %r, expected %r" % (metadata, METADATA))
    want = expected()
    for name in sorted(set(found) - set(want)):
        errors.append("unexpected tensor %r" % name)
    for name, (dtype, arr) in want.items():
        if name not in found:
            errors.append("missing tensor %r" % name)
            continue
        fdtype, fshape, raw = found[name]
        if fdtype != dtype or fshape != list(arr.shape):
            errors.append("tensor %r: %s %r, expected %s %r" % (name, fdtype, fshape, dtype, list(arr.shape)))
            continue
        got = np.frombuffer(raw, dtype=STORAGE[dtype])
        exp = np.ascontiguousarray(arr).astype(STORAGE[dtype]).reshape(-1)
        # Bit-for-bit comparison (floats compared as their bits).
        got_bits = got.view("u%d" % got.itemsize) if got.size else got
        exp_bits = exp.view("u%d" % exp.itemsize) if exp.size else exp
        bad = np.nonzero(got_bits != exp_bits)[0]
        for k in bad[:5]:
            errors.append("tensor %r element %d: found %r, expected %r" % (name, k, got[k], exp[k]))
        if bad.size > 5:
            errors.append("tensor %r: %d elements differ" % (name, bad.size))
    for e in errors:
        print("%s: %s" % (path, e))
    if not errors:
        print("%s: all %d tensors and the metadata match" % (path, len(want)))
    return 1 if errors else 0


def main(argv):
    if len(argv) != 3 or argv[1] not in ("write", "verify"):
        print(__doc__)
        return 2
    if argv[1] == "write":
        write(argv[2])
        return 0
    return verify(argv[2])


if __name__ == "__main__":
    sys.exit(main(sys.argv))
