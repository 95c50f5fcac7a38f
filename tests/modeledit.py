"""Model files with their tensors edited (metadata kept), for the tests that hostile tensors are refused."""
from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Callable

import numpy as np
from safetensors.numpy import load_file, save_file

Edit = Callable[[dict[str, np.ndarray]], object]


def rewrite(src: Path, dst: Path, edit: Edit) -> None:
    """Copy the model file src to dst with edit applied to its tensors."""
    raw = open(src, "rb").read()
    (n,) = struct.unpack("<Q", raw[:8])
    meta = json.loads(raw[8:8 + n]).get("__metadata__")
    tensors = load_file(str(src))
    edit(tensors)
    save_file(tensors, str(dst), metadata=meta)


def set_tensor(key: str, fn: Callable[[np.ndarray], np.ndarray]) -> Edit:
    """An edit replacing tensor `key` by fn of a copy of it."""
    def edit(t: dict[str, np.ndarray]) -> None:
        t[key] = fn(t[key].copy())
    return edit
