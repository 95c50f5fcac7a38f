"""Max-error bins, shared by every pixel coder: a pixel x is coded as its bin x // (2E+1) and decoded as
min(bin·(2E+1) + E, 255), which lies within E of x. E >= 128 leaves a single bin: nothing to code."""
from __future__ import annotations

import numpy as np


def geometry(max_error: int) -> tuple[int, int]:
    """(step, number of bins) for bins of width 2E+1 over 0..255."""
    step = 2 * max_error + 1
    return step, -(-256 // step)


def to_bins(x: np.ndarray, max_error: int) -> np.ndarray:
    """The bins of pixels x (int64: the step may exceed 255, so no uint8 arithmetic)."""
    return x.astype(np.int64) // (2 * max_error + 1)


def values(bins: np.ndarray, max_error: int) -> np.ndarray:
    """The decoded value of each bin (int64, 0..255)."""
    return np.minimum(bins.astype(np.int64) * (2 * max_error + 1) + max_error, 255)


def only_bin(data: bytes, shape: tuple[int, ...], max_error: int, what: str) -> np.ndarray:
    """The pixels (uint8, `shape`) of a `what` stream under an E that leaves a single bin: nothing is coded, so the
    stream must be empty, and every pixel is that bin's value."""
    if data:
        raise ValueError(f"a {what} stream where none is coded")
    return np.full(shape, values(np.zeros(1, np.int64), max_error)[0], np.uint8)


def sum_into_bins(rows: np.ndarray, max_error: int) -> np.ndarray:
    """Counts over the 256 pixel values (last axis) summed into the counts of their bins (a new int64 array), as
    differences of running sums (~3x faster than summing a padded array's short last axis)."""
    step, nbins = geometry(max_error)
    if step == 1:
        return rows.astype(np.int64)
    cum = np.zeros((*rows.shape[:-1], 257), np.int64)
    np.cumsum(rows, axis=-1, dtype=np.int64, out=cum[..., 1:])
    edges = np.minimum(np.arange(nbins + 1) * step, 256)
    return cum[..., edges[1:]] - cum[..., edges[:-1]]
