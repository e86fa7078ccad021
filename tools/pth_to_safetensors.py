#!/usr/bin/env python3
"""Converts a PyTorch checkpoint of the hand pose model to safetensors.

    pth_to_safetensors.py IN.pth OUT.safetensors [--config-metadata] [--trust-pickle]

IN.pth is either a bare state dict or a dict holding one under
"model_state_dict" (as the authors' release does) or "state_dict". A leading
"module." (from nn.DataParallel) is stripped from every key. Floating tensors
are written as F32, integer tensors (BN num_batches_tracked) as I64, in the
checkpoint's key order; the names are kept, so the file loads with the C++
loader (DESIGN §3). With --config-metadata the model config inferred from the
shapes is written into __metadata__ under "lgh.config" as JSON
({"F", "J", "K", "P0", "P1", "S", "fusion", "hourglass_depth",
"hourglass_modules"}); without it the file has no metadata and the loader
infers the same config itself.

A zip checkpoint (torch.save since PyTorch 1.6) is read without PyTorch by a
restricted unpickler that only rebuilds tensors, plain containers and numpy
values, so reading it cannot run code; an older non-zip file goes through
torch.load(weights_only=True). --trust-pickle loads with plain torch.load,
which accepts any pickled object (only for files from a trusted source). The output is written atomically.
Exit status: 0 on success, 1 with one "error: ..." line on any failure, 2 on
a usage error.
"""
import argparse
import collections
import io
import json
import os
import pickle
import re
import sys
import zipfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "reference"))


class ConversionError(Exception):
    pass


class LoadedTensor(np.ndarray):
    """A tensor rebuilt from a checkpoint (tells it apart from numpy arrays a
    training script may have stored next to the weights)."""


# torch storage class name -> numpy dtype of its elements.
_STORAGE_DTYPES = {
    "FloatStorage": "<f4", "DoubleStorage": "<f8", "HalfStorage": "<f2", "BFloat16Storage": "<u2",
    "LongStorage": "<i8", "IntStorage": "<i4", "ShortStorage": "<i2", "CharStorage": "i1",
    "ByteStorage": "u1", "BoolStorage": "?",
}


class _StorageType:
    def __init__(self, name):
        self.name = name
        self.dtype = np.dtype(_STORAGE_DTYPES[name])


def _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad=False, backward_hooks=None,
                       metadata=None):
    data, kind = storage
    itemsize = data.dtype.itemsize
    size, stride = tuple(int(d) for d in size), tuple(int(d) for d in stride)
    extent = storage_offset + sum((d - 1) * st for d, st in zip(size, stride)) + 1 if all(size) else storage_offset
    if storage_offset < 0 or extent > data.size:
        raise pickle.UnpicklingError("a tensor reaches past the end of its storage")
    view = np.lib.stride_tricks.as_strided(data[storage_offset:], shape=size,
                                           strides=tuple(st * itemsize for st in stride))
    arr = np.array(view)  # a contiguous copy
    if kind == "BFloat16Storage":  # widen bfloat16 bits to float32
        arr = (arr.astype(np.uint32) << 16).view(np.float32)
    return arr.view(LoadedTensor)


def _rebuild_parameter(data, requires_grad=False, backward_hooks=None, state=None):
    return data


class _CheckpointUnpickler(pickle.Unpickler):
    """Rebuilds tensors (as numpy arrays), plain containers and numpy values;
    every other global is refused, so reading a checkpoint cannot run code."""

    _ALLOWED = {
        ("collections", "OrderedDict"): collections.OrderedDict,
        ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2,
        ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
        ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter,
        ("builtins", "set"): set,
        ("builtins", "frozenset"): frozenset,
    }
    _NUMPY = {("numpy.core.multiarray", "scalar"), ("numpy.core.multiarray", "_reconstruct"),
              ("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode")}

    def __init__(self, file, zip_file, prefix):
        super().__init__(file, encoding="utf-8")
        self._zip, self._prefix = zip_file, prefix
        self._storages = {}

    def find_class(self, module, name):
        if (module, name) in self._ALLOWED:
            return self._ALLOWED[(module, name)]
        if module == "torch" and name in _STORAGE_DTYPES:
            return _StorageType(name)
        if (module, name) in self._NUMPY:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"it holds a pickled {module}.{name}, which is not part of a state dict")

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] == "storage"
                and isinstance(pid[1], _StorageType)):
            raise pickle.UnpicklingError(f"unsupported persistent id {pid!r:.80}")
        _, kind, key, _location, numel = pid
        if key not in self._storages:
            try:
                raw = self._zip.read(f"{self._prefix}data/{key}")
            except KeyError:
                raise pickle.UnpicklingError(f"storage record data/{key} is missing") from None
            if len(raw) < numel * kind.dtype.itemsize:
                raise pickle.UnpicklingError(f"storage data/{key} is shorter than its {numel} elements")
            count = len(raw) // kind.dtype.itemsize
            self._storages[key] = (np.frombuffer(raw[:count * kind.dtype.itemsize], dtype=kind.dtype), kind.name)
        return self._storages[key]


def load_zip_checkpoint(path):
    """The object in a checkpoint written by torch.save (zip format, PyTorch
    >= 1.6), read without PyTorch and without running pickled code."""
    with zipfile.ZipFile(path) as zf:
        pkl = [n for n in zf.namelist() if n.endswith("/data.pkl") and n.count("/") == 1]
        if len(pkl) != 1:
            raise ConversionError(f"{path}: a zip file, but not a torch.save checkpoint (no <archive>/data.pkl)")
        prefix = pkl[0][:-len("data.pkl")]
        if f"{prefix}byteorder" in zf.namelist() and zf.read(f"{prefix}byteorder").strip() != b"little":
            raise ConversionError(f"{path}: big-endian checkpoints are not supported")
        with zf.open(pkl[0]) as f:
            return _CheckpointUnpickler(io.BytesIO(f.read()), zf, prefix).load()


def extract_state_dict(obj, path):
    """The state dict (name -> numpy array) inside a loaded checkpoint, or
    ConversionError."""
    if type(obj).__module__.startswith("torch.nn") or hasattr(obj, "state_dict"):
        raise ConversionError(f"{path} holds a pickled {type(obj).__name__} module, not a state dict "
                              "(save module.state_dict() instead)")
    if not isinstance(obj, dict):
        raise ConversionError(f"{path} holds a {type(obj).__name__}, not a state dict")
    for wrapper in ("model_state_dict", "state_dict"):
        if wrapper in obj and isinstance(obj[wrapper], dict):
            obj = obj[wrapper]
            break
    if not obj:
        raise ConversionError(f"{path}: the state dict is empty")
    out = {}
    for key, value in obj.items():
        if not isinstance(key, str):
            raise ConversionError(f"{path}: key {key!r} is not a string; not a state dict")
        arr = as_array(key, value)
        if arr is None:
            raise ConversionError(f"{path}: entry '{key}' is a {type(value).__name__}, not a tensor; "
                                  "not a state dict (nor a dict with 'model_state_dict')")
        name = key[len("module."):] if key.startswith("module.") else key
        if name in out:
            raise ConversionError(f"{path}: '{key}' and another key both map to '{name}'")
        out[name] = arr
    return out


def as_array(name, value):
    """The tensor as float32 (floating) / int64 (integer) / bool numpy, or None
    when it is not a tensor."""
    if isinstance(value, LoadedTensor):
        arr = np.asarray(value)
    elif type(value).__module__.startswith("torch") and hasattr(value, "detach"):
        t = value.detach().cpu()
        if t.is_complex():
            raise ConversionError(f"tensor '{name}' is complex; the model has no complex tensors")
        arr = (t.float() if t.is_floating_point() else t).contiguous().numpy()
    else:
        return None
    if arr.dtype.kind == "f":
        return arr.astype(np.float32)
    if arr.dtype.kind == "b":
        return arr.astype(np.bool_)
    return arr.astype(np.int64)


def infer_config(sd):
    """The model config from the state-dict shapes (see lgh_model.Config)."""
    def shape(key):
        if key not in sd:
            raise ConversionError(f"cannot infer the config: tensor '{key}' is missing")
        return tuple(sd[key].shape)

    J, K = shape("meta_S.weight")
    wx = shape("b_get_uv.0.wx")
    if len(wx) != 2 or wx[0] != wx[1]:
        raise ConversionError(f"cannot infer the config: b_get_uv.0.wx has shape {list(wx)}, expected square")
    hg = [k for k in sd if k.startswith("backbone.hourglass.0.")]
    if not hg:
        raise ConversionError("cannot infer the config: no backbone.hourglass.0.* tensors")
    # Each nesting level adds one "low2." to the innermost keys.
    depth = 1 + max(k.split(".").count("low2") for k in hg)
    modules = {int(m.group(1)) for k in hg for m in [re.match(r"backbone\.hourglass\.0\.up1_\.(\d+)\.", k)] if m}
    if not modules or modules != set(range(len(modules))):
        raise ConversionError("cannot infer the config: backbone.hourglass.0.up1_.* is missing or not numbered 0..n-1")
    return {
        "S": 4 * wx[0],
        "F": shape("backbone.r5.conv3.weight")[0],
        "P0": shape("b_conv0.0.block.0.weight")[0],
        "P1": shape("b_conv1.0.res_branch.0.weight")[0],
        "K": K,
        "J": J,
        "fusion": any(k.startswith("nddr_layer0.") for k in sd),
        "hourglass_depth": depth,
        "hourglass_modules": len(modules),
    }


def check_against_reference(sd, config):
    """When the reference model is importable, the inferred config must rebuild
    exactly these names and shapes; a mismatch means this is not our model."""
    try:
        import lgh_model
    except ImportError:
        return
    try:
        cfg = lgh_model.Config(**config)
    except ValueError as e:
        raise ConversionError(f"inferred config {json.dumps(config, sort_keys=True)} is invalid: {e}")
    expected = {k: tuple(v.shape) for k, v in lgh_model.LearnableGroupsHandModel(cfg).state_dict().items()}
    got = {k: tuple(v.shape) for k, v in sd.items()}
    missing = [k for k in expected if k not in got]
    extra = [k for k in got if k not in expected]
    wrong = [k for k in expected if k in got and got[k] != expected[k]]
    if missing or extra or wrong:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing (first: {missing[0]})")
        if extra:
            parts.append(f"{len(extra)} unexpected (first: {extra[0]})")
        if wrong:
            parts.append(f"{len(wrong)} with other shapes (first: {wrong[0]} {list(got[wrong[0]])}, "
                         f"expected {list(expected[wrong[0]])})")
        raise ConversionError(f"the tensors do not form the model of config {json.dumps(config, sort_keys=True)}: "
                              + "; ".join(parts))


def load_checkpoint(src, trust_pickle):
    if trust_pickle:
        import torch
        try:
            return torch.load(src, map_location="cpu")
        except Exception as e:  # torch.load raises many types for bad input
            raise ConversionError(f"{src}: cannot read it as a PyTorch checkpoint: {first_line(e)}")
    if zipfile.is_zipfile(src):
        try:
            return load_zip_checkpoint(src)
        except (pickle.UnpicklingError, zipfile.BadZipFile, EOFError, ValueError, TypeError, KeyError) as e:
            raise ConversionError(f"{src}: cannot read it as a state-dict checkpoint: {first_line(e)} "
                                  "(for a pickled module or other objects from a trusted source: --trust-pickle)")
    # The pre-1.6 (non-zip) format: PyTorch's own restricted loader.
    try:
        import torch
    except ImportError:
        raise ConversionError(f"{src}: not a zip checkpoint; reading the legacy format needs PyTorch") from None
    try:
        return torch.load(src, map_location="cpu", weights_only=True)
    except Exception as e:
        reason = first_line(e).split("WeightsUnpickler error: ")[-1]
        raise ConversionError(f"{src}: not a zip checkpoint, and PyTorch's restricted loader cannot read it "
                              f"({reason}; for a file from a trusted source: --trust-pickle)")


def first_line(e):
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__


def convert(src, dst, config_metadata=False, trust_pickle=False):
    import safetensors_np as st

    if not os.path.isfile(src):
        raise ConversionError(f"{src}: no such file")
    sd = extract_state_dict(load_checkpoint(src, trust_pickle), src)
    metadata = None
    if config_metadata:
        config = infer_config(sd)
        check_against_reference(sd, config)
        metadata = {"lgh.config": json.dumps(config, sort_keys=True)}
    st.save_file(sd, dst, metadata=metadata)
    return len(sd), metadata


def main(argv=None):
    ap = argparse.ArgumentParser(description="Convert a PyTorch checkpoint (state dict) to safetensors.")
    ap.add_argument("input", metavar="IN.pth")
    ap.add_argument("output", metavar="OUT.safetensors")
    ap.add_argument("--config-metadata", action="store_true",
                    help='write the config inferred from the shapes into __metadata__ ("lgh.config")')
    ap.add_argument("--trust-pickle", action="store_true",
                    help="unpickle arbitrary objects (only for checkpoints from a trusted source)")
    args = ap.parse_args(argv)
    try:
        n, metadata = convert(args.input, args.output, args.config_metadata, args.trust_pickle)
    except (ConversionError, OSError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except Exception as e:  # never a traceback for a bad input file
        print(f"error: {args.input}: {type(e).__name__}: {first_line(e)}", file=sys.stderr)
        return 1
    note = f" with lgh.config {metadata['lgh.config']}" if metadata else ""
    print(f"wrote {args.output}: {n} tensors{note}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
