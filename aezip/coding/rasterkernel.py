"""The raster network's compiled parts (numba; rasternet.py): one pixel's features from the decoded planes, the
network's integer counts of its 256 values, and those summed into --max-error bins, as mixkernel.code_values runs
them pixel by pixel in raster order. Only --max-error coding with a raster network needs them."""
from __future__ import annotations

import numba as nb
import numpy as np

from aezip.coding.intdecoder import ACT_LIMIT
from aezip.coding.rasternet import CAUSAL, EXP2, RADIUS, VALUES

_OFFSETS = np.array(CAUSAL, np.int64)


@nb.njit(cache=True)
def pixel_features(planes: np.ndarray, pred: np.ndarray, i: int, y: int, x: int, max_error: int,
                   f: np.ndarray) -> None:
    """Pixel (y, x) of image i's features into f (float64 integers): its decoded neighbours' values (planes hold
    bins of --max-error E, each decoded as min(bin (2E + 1) + E, 255)) and the prediction's values around it
    (n x H x W x 1; 0 outside the image)."""
    h, w = planes.shape[1], planes.shape[2]
    step = 2 * max_error + 1
    for k in range(_OFFSETS.shape[0]):
        yy, xx = y + _OFFSETS[k, 0], x + _OFFSETS[k, 1]
        f[k] = min(planes[i, yy, xx, 0] * step + max_error, 255) if 0 <= yy < h and 0 <= xx < w else 0
    k = _OFFSETS.shape[0]
    for dy in range(-RADIUS, RADIUS + 1):
        for dx in range(-RADIUS, RADIUS + 1):
            yy, xx = y + dy, x + dx
            f[k] = pred[i, yy, xx, 0] if 0 <= yy < h and 0 <= xx < w else 0
            k += 1


@nb.njit(cache=True)
def bin_counts(cum: np.ndarray, max_error: int, out: np.ndarray) -> None:
    """Cumulative counts of bins of width 2E + 1 (out[k] for k = 0..len(out)-1, bins past the last holding
    nothing) from the cumulative counts of the 256 values."""
    step = 2 * max_error + 1
    for k in range(out.shape[0]):
        out[k] = cum[min(k * step, VALUES)]


@nb.njit(cache=True)
def _layer(inp: np.ndarray, w: np.ndarray, b: np.ndarray, out: np.ndarray) -> None:
    """out = inp @ w + b, skipping zero inputs (exact integers: the order does not matter)."""
    out[:] = b
    for i in range(inp.shape[0]):
        v = inp[i]
        if v != 0.0:
            for j in range(out.shape[0]):
                out[j] += v * w[i, j]


@nb.njit(cache=True)
def _hidden(acc: np.ndarray, shift: int) -> None:
    """Round-half-up division by 2^shift (a multiplication when shift <= 0), clamped to [0, ACT_LIMIT), in place
    (exact: a power-of-two scaling of an integer below 2^52, then + 1/2)."""
    top, scale = float(ACT_LIMIT - 1), 2.0 ** -shift
    for j in range(acc.shape[0]):
        v = acc[j] * scale
        if shift > 0:
            v = np.floor(v + 0.5)
        acc[j] = min(max(v, 0.0), top)


@nb.njit(cache=True)
def counts(f: np.ndarray, net: tuple, h0: np.ndarray, h1: np.ndarray, logits: np.ndarray, cum: np.ndarray) -> None:
    """The network's integer counts of the 256 values for features f, as cumulative counts in cum (257 entries,
    cum[0] = 0), through scratch h0, h1 and logits."""
    w0, b0, w1, b1, w2, b2, params = net
    _layer(f, w0, b0, h0)
    _hidden(h0, params[1])
    _layer(h0, w1, b1, h1)
    _hidden(h1, params[2])
    _layer(h1, w2, b2, logits)
    top = logits.max()
    scale = 2.0 ** (4 - params[3])
    cum[0] = 0
    for v in range(VALUES):
        d = np.int64(np.floor((top - logits[v]) * scale))
        c = EXP2[d & 15] >> (d >> 4) if d < 16 * 17 else 0
        cum[v + 1] = cum[v] + max(c, 1)
