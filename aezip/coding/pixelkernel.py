"""The pixel model's feature windows, compiled with numba (pixelmodel.pass_features): one image at a time (its
planes stay in cache) instead of a padded copy and a strided copy of the whole chunk per window entry. Integer
values copied into float64, so the features are the same numbers either way."""
from __future__ import annotations

import math

import numba as nb
import numpy as np


@nb.njit(cache=True, nogil=True)
def windows_into(out: np.ndarray, row0: int, plane: np.ndarray, step: int, py: int, px: int, dil: int,
                 radius: int) -> None:
    """out[row0 + j, p] = plane[i, y + dy·dil, x + dx·dil] (0 outside the plane) for the j-th (dy, dx) of the
    (2r+1)^2 window in raster order and every pass position p = (i, y, x), y = py, py + step, ..., x likewise,
    in raster order; plane is n x H x W."""
    n, hgt, wid = plane.shape
    hh, ww = (hgt - py + step - 1) // step, (wid - px + step - 1) // step
    for i in range(n):
        base = i * hh * ww
        j = row0
        for dy in range(-radius, radius + 1):
            for dx in range(-radius, radius + 1):
                x0 = px + dx * dil
                b_lo = min(ww, max(0, (-x0 + step - 1) // step))      # first b with x >= 0
                b_hi = max(b_lo, min(ww, (wid - x0 + step - 1) // step))   # first b with x >= wid
                for a in range(hh):
                    y = py + a * step + dy * dil
                    p = base + a * ww
                    if 0 <= y < hgt:
                        for b in range(b_lo):
                            out[j, p + b] = 0.0
                        for b in range(b_lo, b_hi):
                            out[j, p + b] = plane[i, y, x0 + b * step]
                        for b in range(b_hi, ww):
                            out[j, p + b] = 0.0
                    else:
                        for b in range(ww):
                            out[j, p + b] = 0.0
                j += 1


@nb.njit(cache=True, nogil=True)
def window_probabilities(cum: np.ndarray, keys: np.ndarray, symbols: np.ndarray, step: int) -> np.ndarray:
    """Each symbol's probability in its key's window of 256 over a row of cumulative counts (rows x classes x 512):
    key = (row · classes + class) · 256 + centre, the window starts at 255 - centre, a bin spans `step` values
    (clipped at 256). The same float64 divisions as numpy's, one per symbol."""
    classes = cum.shape[1]
    out = np.empty(keys.shape[0])
    for i in range(keys.shape[0]):
        sc, centre = divmod(keys[i], 256)
        s, cls = divmod(sc, classes)
        start = 255 - centre
        lo = start + symbols[i] * step
        hi = start + min((symbols[i] + 1) * step, 256)
        out[i] = (cum[s, cls, hi] - cum[s, cls, lo]) / (cum[s, cls, start + 256] - cum[s, cls, start])
    return out


@nb.njit(cache=True, nogil=True)
def add_counts(counts: np.ndarray, rows: np.ndarray, cols: np.ndarray, increment: int) -> None:
    """counts[rows[i], cols[i]] += increment for every i (repeats add up, as numpy's add.at)."""
    for i in range(rows.shape[0]):
        counts[rows[i], cols[i]] += increment


@nb.njit(cache=True, nogil=True)
def activate(acc: np.ndarray, bias: np.ndarray, scale: float, limit: float) -> None:
    """A hidden layer's activations in place: acc[i, j] = clamp(floor((acc[i, j] + bias[j]) * scale), 0, limit),
    in acc's float type. With the rounding half in the bias this is pixelmodel.rescale's round half up; exact
    wherever the sums are (intdecoder.float32_exact), as scale is a power of two."""
    rows, cols = acc.shape
    for i in range(rows):
        for j in range(cols):
            acc[i, j] = min(max(math.floor((acc[i, j] + bias[j]) * scale), 0.0), limit)
