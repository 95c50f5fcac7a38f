"""How many CPU threads each path runs with: measured defaults, `--threads N` and OMP_NUM_THREADS override them.

Encode and decode split each chunk's integer decoding into row blocks and run them on a pool of N threads, each
with single-threaded BLAS, and encode computes the next chunk's codes on a thread of its own meanwhile (the matmuls per block are small: BLAS's own threads synchronise on every one of them,
which loses to one thread on this shared machine); the torch encoder runs on one thread. Training runs torch with
N threads. The defaults are measured on this project's 2-core CPU, shared with other jobs (README, "Speed"):
one thread was as fast or faster on every path under that load (two block threads doubled the integer decoder
only when the machine was idle). Thread counts never change decoded bytes (the integer decoder is exact in any
summation order and each row is decoded on its own).
"""
from __future__ import annotations

import os
from concurrent.futures import Executor, ThreadPoolExecutor
from typing import Iterator, TypeVar

T = TypeVar("T")

DEFAULT_THREADS = {"encode": 1, "decode": 1, "train": 1}
_state: dict = {"workers": 1, "pool": None, "ahead": None}


def thread_count(path: str, requested: int | None = None) -> int:
    """The threads for `path`: `requested`, else OMP_NUM_THREADS, else the measured default."""
    from aezip.errors import InputError
    if requested is None:
        env = os.environ.get("OMP_NUM_THREADS", "").strip()
        if not env:
            return DEFAULT_THREADS[path]
        try:
            requested = int(env)
        except ValueError:
            raise InputError(f"OMP_NUM_THREADS={env!r} is not a positive integer") from None
    if requested < 1:
        raise InputError(f"--threads must be a positive integer, got {requested}")
    return requested


def apply_threads(path: str, requested: int | None = None) -> int:
    """Set BLAS, torch and the block pool for `path` ("encode", "decode" or "train"); returns the thread count."""
    n = thread_count(path, requested)
    import numpy  # noqa: F401  (threadpoolctl limits only the libraries already loaded: numpy's BLAS)
    from threadpoolctl import threadpool_limits
    threadpool_limits(limits=n if path == "train" else 1)
    if path != "decode":                 # encode and train run torch; decode never imports it
        import torch
        torch.set_num_threads(n if path == "train" else 1)
    _state["workers"] = 1 if path == "train" else n
    return n


def block_pool() -> Executor | None:
    """The thread pool integer decoding spreads its row blocks over (None: one thread)."""
    n = _state["workers"]
    if n <= 1:
        return None
    if _state["pool"] is None or _state["pool"][0] != n:
        _state["pool"] = (n, ThreadPoolExecutor(n, thread_name_prefix="aezip-decode"))
    return _state["pool"][1]


def prefetch(items: Iterator[T]) -> Iterator[T]:
    """`items` in order; with more than one thread, the next item is computed on a thread of its own meanwhile
    (encode: the torch encoder of the next chunk runs beside the integer decoder of this one)."""
    if _state["workers"] <= 1:
        yield from items
        return
    if _state["ahead"] is None:
        _state["ahead"] = ThreadPoolExecutor(1, thread_name_prefix="aezip-prefetch")
    done = object()
    it = iter(items)
    future = _state["ahead"].submit(next, it, done)
    while (item := future.result()) is not done:
        future = _state["ahead"].submit(next, it, done)
        yield item
