#!/usr/bin/env python3
"""Minimal safetensors reader and writer on numpy arrays.

The format (DESIGN §3): an 8-byte little-endian u64 N, then N bytes of JSON
(an object mapping each tensor name to {"dtype", "shape", "data_offsets":
[begin, end]}, plus an optional "__metadata__" object of strings), padded
with spaces to a multiple of 8 bytes, then the data buffer. Offsets are
relative to the start of the buffer, data is little-endian and row-major,
and the tensors cover the buffer exactly: no holes, no overlaps.

    save_file({"image": np.zeros((1, 3, 64, 64), np.float32)}, "x.safetensors",
              metadata={"note": "anything"})
    tensors, metadata = load_file("x.safetensors")

Tensors are written in the order the mapping gives them (a state dict keeps
its module order). The write is atomic: a temporary file in the target's
folder, then a rename, so a crash never leaves a half-written file.
"""
import json
import os
import struct
import tempfile

import numpy as np

# safetensors dtype name -> little-endian numpy dtype. BF16 has no numpy
# type: it is read as its raw 16 bits and widened to float32 on load.
_DTYPES = {
    "F64": np.dtype("<f8"),
    "F32": np.dtype("<f4"),
    "F16": np.dtype("<f2"),
    "I64": np.dtype("<i8"),
    "I32": np.dtype("<i4"),
    "I16": np.dtype("<i2"),
    "I8": np.dtype("i1"),
    "U8": np.dtype("u1"),
    "BOOL": np.dtype("?"),
}

# The reference implementation refuses larger headers; a larger length field
# is corruption, not a real file.
MAX_HEADER_BYTES = 100 * 1024 * 1024


class SafetensorsError(ValueError):
    pass


def dtype_name(array):
    """The safetensors dtype name of a numpy array, or SafetensorsError."""
    dt = np.dtype(array.dtype)
    if dt.byteorder == ">":
        dt = dt.newbyteorder("<")
    for name, np_dtype in _DTYPES.items():
        if dt == np_dtype:
            return name
    raise SafetensorsError(f"unsupported numpy dtype {array.dtype}")


def serialize(tensors, metadata=None):
    """The bytes of a safetensors file holding `tensors` (name -> array)."""
    header = {}
    if metadata:
        for k, v in metadata.items():
            if not isinstance(k, str) or not isinstance(v, str):
                raise SafetensorsError("__metadata__ must map strings to strings")
        header["__metadata__"] = dict(metadata)
    chunks = []
    offset = 0
    for name, value in tensors.items():
        if not isinstance(name, str) or name == "__metadata__":
            raise SafetensorsError(f"invalid tensor name {name!r}")
        a = np.asarray(value)
        kind = dtype_name(a)
        data = np.ascontiguousarray(a, dtype=_DTYPES[kind]).tobytes()
        header[name] = {"dtype": kind, "shape": [int(d) for d in a.shape],
                        "data_offsets": [offset, offset + len(data)]}
        chunks.append(data)
        offset += len(data)
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 8)  # aligns the data buffer to 8 bytes
    return struct.pack("<Q", len(text)) + text + b"".join(chunks)


def save_file(tensors, path, metadata=None):
    """Writes `tensors` (name -> numpy array) to `path`, atomically."""
    blob = serialize(tensors, metadata)
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".safetensors", dir=folder)
    try:
        # mkstemp creates the file 0600; give it the mode a plain open() would.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        with os.fdopen(fd, "wb") as f:
            f.write(blob)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def deserialize(blob, where="<bytes>"):
    """(tensors, metadata) from the bytes of a safetensors file, checking the
    header against the buffer before any tensor is returned."""
    def fail(msg):
        raise SafetensorsError(f"{where}: {msg}")

    if len(blob) < 8:
        fail(f"file is {len(blob)} bytes, shorter than the 8-byte header length")
    (n,) = struct.unpack("<Q", blob[:8])
    if n > MAX_HEADER_BYTES:
        fail(f"header length {n} exceeds {MAX_HEADER_BYTES}")
    if 8 + n > len(blob):
        fail(f"header length {n} runs past the end of the file ({len(blob)} bytes)")
    try:
        header = json.loads(blob[8:8 + n].decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        fail(f"header is not valid JSON: {e}")
    if not isinstance(header, dict):
        fail("header is not a JSON object")
    buf = memoryview(blob)[8 + n:]
    metadata = header.pop("__metadata__", None)
    if metadata is not None and (not isinstance(metadata, dict) or
                                 not all(isinstance(v, str) for v in metadata.values())):
        fail("__metadata__ must be an object of strings")
    tensors = {}
    spans = []
    for name, rec in header.items():
        if not isinstance(rec, dict) or set(rec) != {"dtype", "shape", "data_offsets"}:
            fail(f"tensor '{name}': entry must have exactly dtype, shape and data_offsets")
        kind, shape, offs = rec["dtype"], rec["shape"], rec["data_offsets"]
        if kind != "BF16" and kind not in _DTYPES:
            fail(f"tensor '{name}': unsupported dtype {kind!r}")
        if not isinstance(shape, list) or not all(isinstance(d, int) and d >= 0 for d in shape):
            fail(f"tensor '{name}': shape must be a list of non-negative integers")
        if (not isinstance(offs, list) or len(offs) != 2 or not all(isinstance(o, int) for o in offs)
                or not 0 <= offs[0] <= offs[1] <= len(buf)):
            fail(f"tensor '{name}': data_offsets {offs} outside the {len(buf)}-byte buffer")
        itemsize = 2 if kind == "BF16" else _DTYPES[kind].itemsize
        count = int(np.prod(shape, dtype=np.int64)) if shape else 1
        if offs[1] - offs[0] != count * itemsize:
            fail(f"tensor '{name}': {offs[1] - offs[0]} bytes for shape {shape} of {kind} "
                 f"(expected {count * itemsize})")
        raw = bytes(buf[offs[0]:offs[1]])
        if kind == "BF16":
            bits = np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16
            arr = bits.view(np.float32)
        else:
            arr = np.frombuffer(raw, dtype=_DTYPES[kind]).copy()
        tensors[name] = arr.reshape(shape)
        spans.append((offs[0], offs[1], name))
    # Exact coverage: sorted spans must tile [0, len(buf)).
    pos = 0
    for begin, end, name in sorted(spans):
        if begin != pos:
            fail(f"tensor '{name}' starts at {begin}: "
                 + ("overlaps the previous tensor" if begin < pos else f"hole at [{pos}, {begin})"))
        pos = end
    if pos != len(buf):
        fail(f"data buffer has {len(buf) - pos} bytes after the last tensor")
    return tensors, metadata


def load_file(path):
    """(tensors, metadata) of the safetensors file at `path`; metadata is
    None when the file has no __metadata__."""
    with open(path, "rb") as f:
        blob = f.read()
    return deserialize(blob, where=path)


if __name__ == "__main__":
    # Round-trip self-check.
    rng = np.random.default_rng(0)
    src = {"a": rng.standard_normal((2, 3)).astype(np.float32), "n": np.array(7, dtype=np.int64),
           "d": rng.standard_normal(5), "e": np.zeros((0, 4), np.float32), "b": np.array([True, False])}
    blob = serialize(src, {"k": "v"})
    (n,) = struct.unpack("<Q", blob[:8])
    assert n % 8 == 0
    back, meta = deserialize(blob)
    assert meta == {"k": "v"} and list(back) == list(src)
    for k in src:
        assert back[k].dtype == np.asarray(src[k]).dtype and back[k].shape == np.asarray(src[k]).shape
        assert np.array_equal(back[k], src[k])
    try:
        deserialize(blob + b"\0")
        raise AssertionError("trailing byte accepted")
    except SafetensorsError:
        pass
    print("safetensors_np: ok")
