#!/usr/bin/env python3
"""Regenerates fixtures/reference_torch.safetensors and
fixtures/interop_numpy.safetensors.

reference_torch.safetensors is written by the reference safetensors
implementation (the `safetensors` Python package) from PyTorch tensors, i.e.
exactly what a PyTorch user's `save_file` produces; interop_numpy.safetensors
by safetensors_interop.py. Both hold the interop tensor set of
safetensors_interop.py (with the "<name>.f64" companions), so
test_safetensors_interop.cpp checks the same values in both.

    python3 make_reference_fixture.py      (needs numpy, torch and safetensors)
"""
import os
import sys

import numpy as np
import torch
from safetensors.torch import save_file

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import safetensors_interop as interop  # noqa: E402


def main():
    want = interop.expected()
    tensors = {}
    for name, (dtype, arr) in want.items():
        if dtype == "BF16":
            # torch's float32 -> bfloat16 rounds to nearest even, independently
            # of the bit arithmetic in safetensors_interop.py; check they agree.
            src = interop.bf16_bits_to_float64(arr).astype(np.float32)
            t = torch.tensor(src).to(torch.bfloat16)
            assert np.array_equal(t.view(torch.int16).numpy().view(np.uint16), arr)
        elif dtype == "BOOL":
            t = torch.tensor(arr.astype(bool))
        else:
            t = torch.tensor(arr)
        tensors[name] = t.contiguous()
    tensors["f16.f64"] = tensors["f16"].to(torch.float64)
    tensors["bf16.f64"] = tensors["bf16"].to(torch.float64)
    fixtures = os.path.join(HERE, "fixtures")
    os.makedirs(fixtures, exist_ok=True)
    save_file(tensors, os.path.join(fixtures, "reference_torch.safetensors"), metadata=interop.METADATA)
    interop.write(os.path.join(fixtures, "interop_numpy.safetensors"))


if __name__ == "__main__":
    main()
