"""The pixel model's compiled loops (numba): its feature windows (pixelmodel.pass_features: one image at a time, its
planes in cache, instead of a padded copy and a strided copy of the whole chunk per window entry; integer values
copied into float32 or float64, so the features are the same numbers either way), its hidden activations, its mean
and scale classes and repeat contexts, and its variants' ideal code lengths and count adaptation."""
from __future__ import annotations

import math

import numba as nb
import numpy as np

from aezip.coding.contextkernel import RENORMALIZE, renormalized


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
def window_bits(counts: np.ndarray, keys: np.ndarray, symbols: np.ndarray, step: int) -> float:
    """The symbols' ideal code length, sum of -log2 p, each p its symbol's share of its key's window of 256 over a
    row of counts (rows x classes x 511): key = (row · classes + class) · 256 + centre, the window starts at
    255 - centre, a bin spans `step` values (clipped at 256). A row's running sums are made when a key first needs
    them (a sample touches few of the rows); the p are multiplied (contextkernel.RENORMALIZE), not
    logged one by one."""
    rows, classes, width = counts.shape
    cum = np.empty((rows, classes, width + 1), np.int64)
    made = np.zeros((rows, classes), np.bool_)
    bits, prob = 0.0, 1.0
    for i in range(keys.shape[0]):
        sc, centre = divmod(keys[i], 256)
        s, cls = divmod(sc, classes)
        if not made[s, cls]:
            total = 0
            cum[s, cls, 0] = 0
            for v in range(width):
                total += counts[s, cls, v]
                cum[s, cls, v + 1] = total
            made[s, cls] = True
        start = 255 - centre
        lo = start + symbols[i] * step
        hi = start + min((symbols[i] + 1) * step, 256)
        prob *= (cum[s, cls, hi] - cum[s, cls, lo]) / (cum[s, cls, start + 256] - cum[s, cls, start])
        if prob < RENORMALIZE:
            bits, prob = renormalized(bits, prob)
    return bits - math.log2(prob)


@nb.njit(cache=True, nogil=True)
def row_bits(rows: np.ndarray, keys: np.ndarray, symbols: np.ndarray) -> float:
    """The symbols' ideal code length, sum of -log2 p, each p its symbol's count over its key's row total (a row's
    total made when a key first needs it: a sample touches few of a pass's rows, and a table of -log2 p for every
    row and bin took longer than the symbols at E = 1); the p are multiplied, not logged one by one."""
    totals = np.zeros(rows.shape[0], np.int64)
    bits, prob = 0.0, 1.0
    for i in range(keys.shape[0]):
        r = keys[i]
        if totals[r] == 0:   # every count is >= 1, so a made total is not 0
            for v in range(rows.shape[1]):
                totals[r] += rows[r, v]
        prob *= rows[r, symbols[i]] / totals[r]
        if prob < RENORMALIZE:
            bits, prob = renormalized(bits, prob)
    return bits - math.log2(prob)


@nb.njit(cache=True, nogil=True)
def add_counts(counts: np.ndarray, rows: np.ndarray, cols: np.ndarray, increment: int) -> None:
    """counts[rows[i], cols[i]] += increment for every i (repeats add up, as numpy's add.at)."""
    for i in range(rows.shape[0]):
        counts[rows[i], cols[i]] += increment


@nb.njit(cache=True, nogil=True)
def activate(acc: np.ndarray, bias: np.ndarray, scale: float, limit: float) -> None:
    """A hidden layer's activations in place: acc[i, j] = clamp(floor((acc[i, j] + bias[j]) * scale), 0, limit),
    in acc's float type. With the rounding half in the bias this rounds half up; exact wherever the sums are
    (intdecoder.float32_exact), as scale is a power of two."""
    rows, cols = acc.shape
    for i in range(rows):
        for j in range(cols):
            acc[i, j] = min(max(math.floor((acc[i, j] + bias[j]) * scale), 0.0), limit)


@nb.njit(cache=True, nogil=True)
def mu_offset(acc: float, a: int) -> int:
    """How many of pixelmodel.mu_thresholds(a) an integer accumulator |acc| < 2^52 reaches, minus 255, without a
    search: clamp(floor(acc 2^-a + 1/2), -255, 255). Proof: for an integer acc, ceil(t) <= acc iff t <= acc, so the
    threshold of k, ceil((k - 1/2) 2^a), is reached iff k <= acc 2^-a + 1/2 = x; of k = -254..255 that holds for
    clamp(floor(x) + 255, 0, 510). x is computed exactly: for 1 <= a <= MU_BITS_LIMIT it is (acc + 2^(a-1)) 2^-a,
    an integer of magnitude below 2^52 + 2^51 < 2^53 times a power of two, so scaling and adding 1/2 round nothing;
    for a = 0 it is acc itself."""
    x = acc * 2.0 ** -a + (0.5 if a > 0 else 0.0)
    return int(min(max(math.floor(x), -255.0), 255.0))


@nb.njit(cache=True, nogil=True)
def classes_into(acc: np.ndarray, ref: np.ndarray, a: int, s_thresholds: np.ndarray, mu: np.ndarray,
                 s: np.ndarray) -> None:
    """mu[i] = clamp(ref[i] + mu_offset(acc[i, 0], a), 0, 255) and s[i] = the number of s_thresholds <= acc[i, 1],
    in one pass; acc and the thresholds are integers below 2^52 in float64, so the comparisons are exact. The count
    is a branch-free sum over the thresholds (at most MAX_PIXEL_SCALES - 1 = 63, modelcheck): ~2.5x faster than a
    binary search's unpredictable branches for the trainer's 15."""
    m = s_thresholds.shape[0]
    for i in range(acc.shape[0]):
        mu[i] = min(max(int(ref[i]) + mu_offset(acc[i, 0], a), 0), 255)
        v, count = acc[i, 1], 0
        for j in range(m):
            count += s_thresholds[j] <= v
        s[i] = count


@nb.njit(cache=True, nogil=True)
def repeats_into(rows: np.ndarray, prev_at: int, prev_ref: int, q: np.ndarray) -> None:
    """pixelmodel.repeat_context over feature rows (features x pixels): of the 25 canvas window entries, how many
    equal the reference (the last row), as 0, 1 or 2 for at most 2, at most 6 or more; + 3 where row prev_at equals
    row prev_ref (the previous channel at the pixel and at the reference's place; prev_at < 0: not asked)."""
    last = rows.shape[0] - 1
    for p in range(rows.shape[1]):
        r = rows[last, p]
        equal = 0
        for j in range(25):
            if rows[j, p] == r:
                equal += 1
        v = (1 if equal > 2 else 0) + (1 if equal > 6 else 0)
        if prev_at >= 0 and rows[prev_at, p] == rows[prev_ref, p]:
            v += 3
        q[p] = v
