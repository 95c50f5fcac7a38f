"""A coder run in fresh processes with 1 and 2 BLAS/OpenMP/numba threads, for the tests that its bytes are the same
across processes and thread counts."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np

_SCRIPT = """
import importlib, sys, numpy as np
x, shape = np.load(sys.argv[1]), tuple(int(v) for v in sys.argv[5].split(","))
open(sys.argv[2], "wb").write(getattr(importlib.import_module(sys.argv[3]), sys.argv[4])(x, shape, 0)[0])
"""


def bytes_in_processes(tmp_path: Path, x: np.ndarray, module: str, function: str,
                       image_shape: tuple[int, ...]) -> list[bytes]:
    """The bytes `module.function(x, image_shape, 0)` returns first, from a fresh process with 1 and one with 2
    threads."""
    np.save(tmp_path / "x.npy", x)
    outs = []
    for threads in ("1", "2"):
        env = {**os.environ, "OMP_NUM_THREADS": threads, "NUMBA_NUM_THREADS": threads}
        subprocess.run([sys.executable, "-c", _SCRIPT, str(tmp_path / "x.npy"), str(tmp_path / threads), module,
                        function, ",".join(map(str, image_shape))], check=True, env=env)
        outs.append((tmp_path / threads).read_bytes())
    return outs
