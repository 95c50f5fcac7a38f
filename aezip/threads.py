"""How many CPU threads each path runs with: measured defaults, `--threads N` and OMP_NUM_THREADS override them.

Measured on this project's 2-core CPU (2026-11-29, see README "Threads"): the codec's matmuls are small per chunk
(1,024 images) and the machine is shared, so one thread is at least as fast as two for encode, decode and
training; a second thread pays only where a core is idle. Thread counts never change decoded bytes (the integer
decoder is exact in any summation order).
"""
from __future__ import annotations

import os

DEFAULT_THREADS = {"encode": 1, "decode": 1, "train": 1}


def thread_count(path: str, requested: int | None = None) -> int | None:
    """The threads for `path`: `requested`, else None when OMP_NUM_THREADS is set (left to it), else the default."""
    if requested is not None:
        if requested < 1:
            from .errors import InputError
            raise InputError(f"--threads must be a positive integer, got {requested}")
        return requested
    if os.environ.get("OMP_NUM_THREADS"):
        return None
    return DEFAULT_THREADS[path]


def apply_threads(path: str, requested: int | None = None) -> int | None:
    """Limit BLAS/OpenMP (and torch, where it is loaded) to the threads `thread_count` picks; returns that count."""
    n = thread_count(path, requested)
    if n is None:
        return None
    import numpy  # noqa: F401  (threadpoolctl limits only the libraries already loaded: numpy's BLAS)
    from threadpoolctl import threadpool_limits
    threadpool_limits(limits=n)
    if path != "decode":                 # encode and train run torch; decode never imports it
        import torch
        torch.set_num_threads(n)
    return n
