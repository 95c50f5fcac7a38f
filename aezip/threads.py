"""How many CPU threads each path runs with: picked from the cores idle now, `--threads N` and OMP_NUM_THREADS override.

Encode and decode split each chunk's integer decoding into row blocks and run them on a pool of N threads, each
with single-threaded BLAS, and encode computes the next chunk's codes on a thread of its own meanwhile (the matmuls
per block are small: BLAS's own threads synchronise on every one of them); the torch encoder runs on one thread.
Training runs torch with N threads. The default is measured, not assumed (README, "Speed"): on this project's 2-core
CPU a second thread made lossy encode 1.5x, lossy decode 1.7x and training 1.5x faster when the machine was idle,
and training 2.3x slower when one other process kept a core busy (5-10x under heavier load). So the default is the
number of cores idle right now (read from /proc/stat over IDLE_WINDOW seconds; elsewhere the cores less the 1-minute
load average), rounded down after adding IDLE_SLACK, between 1 and the path's AUTO_MAX: on a 16-core machine (the
H200 machine, README "On a GPU") 4 threads beat 2 by 5 % (lossy encode), 9 % (lossy decode) and 26 % (lossless
encode), 8 beat 4 in none by more than 4 %; training was measured up to 2.
Thread counts never change encoded or decoded bytes (the integer decoder is exact in any summation order and each
row is decoded on its own; the encoder's codes come from one torch thread). A trained model can differ in its last
bits between thread counts (BLAS splits some matmul shapes across threads), so train prints the count it used.
"""
from __future__ import annotations

import math
import os
import time
from concurrent.futures import Executor, ThreadPoolExecutor
from typing import Iterator, TypeVar

T = TypeVar("T")

AUTO_MAX = {"encode": 4, "decode": 4, "train": 2}   # the default's most threads per path, as measured (docstring)
IDLE_WINDOW = 0.05   # seconds over which /proc/stat's idle time is sampled (10 ticks of 2 cores at 100 Hz)
IDLE_SLACK = 0.25    # a core counts as idle from 75 % idle: a thread on a shared core loses more than it gains
_state: dict = {"workers": 1, "pool": None, "ahead": None, "idle": None}


def _cpu_times() -> tuple[int, int] | None:
    """(idle, total) jiffies of all CPUs from /proc/stat, or None where there is none."""
    try:
        with open("/proc/stat") as f:
            fields = [int(v) for v in f.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    return fields[3] + (fields[4] if len(fields) > 4 else 0), sum(fields[:8])


def idle_cores() -> float:
    """How many of the machine's cores are idle now (measured once per process: IDLE_WINDOW seconds)."""
    if _state["idle"] is None:
        cores = os.cpu_count() or 1
        before = _cpu_times()
        time.sleep(IDLE_WINDOW if before else 0)
        after = _cpu_times()
        if before and after and after[1] > before[1]:
            _state["idle"] = cores * (after[0] - before[0]) / (after[1] - before[1])
        else:
            _state["idle"] = max(0.0, cores - os.getloadavg()[0]) if hasattr(os, "getloadavg") else 1.0
    return _state["idle"]


def default_threads(path: str = "encode") -> int:
    """The threads `path` gets unless told: the idle cores (plus IDLE_SLACK, rounded down), 1..AUTO_MAX[path] and
    at most the cores this process may run on."""
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, min(AUTO_MAX[path], usable, math.floor(idle_cores() + IDLE_SLACK)))


def thread_count(requested: int | None = None, path: str = "encode") -> int:
    """The threads `path` uses: `requested`, else OMP_NUM_THREADS, else default_threads(path)."""
    from aezip.errors import InputError
    if requested is None:
        env = os.environ.get("OMP_NUM_THREADS", "").strip()
        if not env:
            return default_threads(path)
        try:
            requested = int(env)
        except ValueError:
            raise InputError(f"OMP_NUM_THREADS={env!r} is not a positive integer") from None
    if requested < 1:
        raise InputError(f"--threads must be a positive integer, got {requested}")
    return requested


def apply_threads(path: str, requested: int | None = None) -> int:
    """Set BLAS, torch and the block pool for `path` ("encode", "decode" or "train"); returns the thread count."""
    n = thread_count(requested, path)
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
