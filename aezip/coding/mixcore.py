"""The context-mixing machinery the mixing coders (mixkernel.py) share, compiled with numba: bit models, two mixers,
an adaptive probability map and a binary arithmetic coder, in integer arithmetic only, so every machine and thread
count writes and reads the same bytes:
- probabilities are 12-bit integers p = P(bit = 1) in 1..4095; squash (logistic) interpolates 33 integer points,
  stretch (its inverse) is a table built from squash by an integer loop;
- a bit model is a 16-bit probability and a count n <= LIMIT; it moves towards the bit by (2^17 // (2n + 3)) / 2^16
  of the distance (exact integer shifts: numba's >> on int64 is an arithmetic shift, as Python's); its fast twin
  moves by 2^-fast of it (a state's setting);
- the mixers' weights are 16.16 fixed point; their update is (stretch x error x RATE) >> MIX_SHIFT;
- the coder keeps two 32-bit bounds x1 <= x2 and splits at x1 + ((x2 - x1) >> 12) * p: bit 1 takes the lower part
  (x1..mid), bit 0 the upper (mid + 1..x2); while both bounds share their top byte it is written out. After the
  shift x1 != x2, so mid < x2 and both parts are non-empty. The decoder mirrors every step.
Storage: a bit model's probability stays in 0..65535 (a step towards 1 moves by floor((65536 - p) d / 2^16) <
65536 - p, towards 0 floors at 0), so it is kept as uint16, and its count (<= LIMIT = 255) as uint8: a value coder's
state for a gray chunk is ~20 MB instead of ~90 MB with int64. Arithmetic is int64: every read widens.
Bounds (int64 arithmetic): |stretch| <= 2047, weights are clamped to +-2^40, so a mixer's sum of at most 32
products stays below 2^56; a weight's step is below 2047 x 4095 x RATE < 2^26; a bit model's step below 2^16 x 2^16.
"""
from __future__ import annotations

import numba as nb
import numpy as np

# squash(d) = 4096 / (1 + e^(-d / 256)) at d = -2048, -1920, ..., 2048, rounded and kept in 1..4095
_SQUASH = np.array([1, 2, 4, 6, 10, 17, 27, 45, 74, 120, 194, 311, 488, 747, 1102, 1546, 2048, 2550, 2994, 3349,
                    3608, 3785, 3902, 3976, 4022, 4051, 4069, 4079, 4086, 4090, 4092, 4094, 4095], np.int64)
LIMIT = 255         # a slow bit model's count stops here: it keeps adapting at rate ~1/256
RATE, MIX_SHIFT = 6, 14
APM_ROWS = 16       # per channel and node (the coder's choice of rows)
APM_SHIFT = 7
WEIGHT_LIMIT = 1 << 40


@nb.njit(cache=True)
def squash(d: int) -> int:
    """The logistic 4096 / (1 + e^(-d/256)) by integer interpolation, in 1..4095."""
    if d > 2047:
        return 4095
    if d < -2047:
        return 1
    j = (d + 2048) >> 7
    return _SQUASH[j] + (((_SQUASH[j + 1] - _SQUASH[j]) * ((d + 2048) & 127) + 64) >> 7)


@nb.njit(cache=True)
def _stretch_table() -> np.ndarray:
    """stretch(p): the least d with squash(d) >= p, for p = 0..4095 (an integer loop: the same table everywhere)."""
    out = np.full(4096, 2047, np.int64)
    p = 0
    for d in range(-2047, 2048):
        v = squash(d)
        while p <= v and p < 4096:
            out[p] = d
            p += 1
    return out


_STRETCH = _stretch_table()


@nb.njit(cache=True)
def stretch(p: int) -> int:
    """ln(p / (1 - p)) in squash's units for a 12-bit probability p (0..4095): the table's entry."""
    return _STRETCH[p]
_DELTA = np.array([(1 << 17) // (2 * n + 3) for n in range(LIMIT + 1)], np.int64)


def new_state(channels: int, sizes: np.ndarray, nodes: int, colour: tuple[int, ...], fast: int,
              externals: int = 0) -> tuple:
    """Fresh model state for images of `channels` channels, contexts of these sizes (those in `colour` unused in
    channel 0), this many decision nodes, fast bit models moving by 2^-fast and `externals` stretched probabilities
    from outside (predict's ext) as further mixer inputs: bit models (16-bit probabilities, slow then fast; the slow
    ones' counts), the two mixers' weights, the probability map, table offsets, [nodes, fast], the colour mask, and
    scratch."""
    k = len(sizes)
    off = np.zeros(k + 1, np.int64)
    off[1:] = np.cumsum(sizes * channels * nodes)
    sets = channels * nodes * 8
    apm = np.empty((channels * nodes * APM_ROWS, 33), np.int64)
    apm[:] = np.array([squash((j - 16) * 128) * 16 for j in range(33)], np.int64)
    mask = np.array([j in colour for j in range(k)], np.int64)
    return (np.full(2 * off[-1], 1 << 15, np.uint16), np.zeros(off[-1], np.uint8),
            np.full((sets, 2 * k + externals), 1 << 12, np.int64), np.full((sets, 2 * k + externals), 1 << 12, np.int64),
            apm, off, np.array([nodes, fast]), mask,
            np.zeros(k, np.int64), np.zeros(2 * k + externals, np.int64), np.zeros(6, np.int64))


@nb.njit(cache=True)
def predict(m: tuple, c: int, node: int, ctx: np.ndarray, sel1: int, sel2: int, row: int, nchan: int,
            ext: np.ndarray) -> int:
    """P(bit = 1) of decision `node` of channel c's pixel: the bit models of its contexts and the state's external
    inputs ext (|ext| <= 2047) mixed by two weight sets (the caller's selectors sel1, sel2 in 0..7: the coders' local
    activity and error energy), averaged in the stretched domain, then averaged with the answer of the probability
    map's row `row` (0..APM_ROWS-1); what update needs is left in the scratch. Channel 0 has no previous channel:
    the state's colour contexts are left out there."""
    prob, _, w1, w2, apm, off, cfg, colour, idx, st, sc = m
    n, nodes = idx.shape[0], cfg[0]
    for j in range(st.shape[0] - 2 * n):
        st[2 * n + j] = ext[j]
    for k in range(n):
        ix = off[k] + (ctx[k] * nchan + c) * nodes + node
        idx[k] = ix
        used = c > 0 or colour[k] == 0
        st[k] = _STRETCH[np.int64(prob[ix]) >> 4] if used else 0
        st[n + k] = _STRETCH[np.int64(prob[off[n] + ix]) >> 4] if used else 0
    s1 = (c * nodes + node) * 8 + sel1
    s2 = (c * nodes + node) * 8 + sel2
    d1 = 0
    d2 = 0
    for k in range(st.shape[0]):
        d1 += w1[s1, k] * st[k]
        d2 += w2[s2, k] * st[k]
    d1 >>= 16
    d2 >>= 16
    dm = min(max((d1 + d2) >> 1, -2047), 2047) + 2048
    row = (c * nodes + node) * APM_ROWS + row
    lo, wgt = dm >> 7, dm & 127
    pa = (apm[row, lo] * (128 - wgt) + apm[row, lo + 1] * wgt) >> 11
    p = min(max((squash(dm - 2048) + pa + 1) >> 1, 1), 4095)
    sc[0], sc[1], sc[2], sc[3], sc[4], sc[5] = d1, d2, s1, s2, row, lo + (1 if wgt > 64 else 0)
    return p


@nb.njit(cache=True)
def update(m: tuple, bit: int) -> None:
    """Teach the models of the last predict the bit: both mixers (each towards its own prediction's error), the
    probability map's nearer point, every bit model used."""
    prob, cnt, w1, w2, apm, off, cfg, _, idx, st, sc = m
    n, fast = idx.shape[0], cfg[1]
    e1 = ((bit << 12) - squash(sc[0])) * RATE
    e2 = ((bit << 12) - squash(sc[1])) * RATE
    s1, s2 = sc[2], sc[3]
    for k in range(st.shape[0]):
        w1[s1, k] = min(max(w1[s1, k] + ((st[k] * e1) >> MIX_SHIFT), -WEIGHT_LIMIT), WEIGHT_LIMIT)
        w2[s2, k] = min(max(w2[s2, k] + ((st[k] * e2) >> MIX_SHIFT), -WEIGHT_LIMIT), WEIGHT_LIMIT)
    for k in range(n):
        ix = idx[k]
        j = off[n] + ix
        pf, ps, seen = np.int64(prob[j]), np.int64(prob[ix]), np.int64(cnt[ix])
        prob[j] = pf + (((bit << 16) - pf) >> fast)
        prob[ix] = ps + ((((bit << 16) - ps) * _DELTA[seen]) >> 16)
        if seen < LIMIT:
            cnt[ix] = seen + 1
    apm[sc[4], sc[5]] += ((bit << 16) - apm[sc[4], sc[5]]) >> APM_SHIFT


@nb.njit(cache=True)
def put(x1: int, x2: int, nout: int, out: np.ndarray, bit: int, p: int) -> tuple:
    """Code one bit whose probability of being 1 is p / 4096 into the bounds x1 <= x2 and out (nout bytes written);
    returns the new (x1, x2, nout, out), out grown where it was full."""
    if nout + 4 > out.shape[0]:   # a bit writes at most 4 bytes
        grown = np.empty(2 * out.shape[0], np.uint8)
        grown[:nout] = out[:nout]
        out = grown
    mid = x1 + ((x2 - x1) >> 12) * p
    if bit:
        x2 = mid
    else:
        x1 = mid + 1
    while ((x1 ^ x2) & 0xFF000000) == 0:
        out[nout] = x2 >> 24
        nout += 1
        x1 = (x1 << 8) & 0xFFFFFFFF
        x2 = ((x2 << 8) & 0xFFFFFFFF) | 255
    return x1, x2, nout, out


@nb.njit(cache=True)
def finish(x1: int, nout: int, out: np.ndarray) -> np.ndarray:
    """The coded bytes: the nout written, then x1's four bytes."""
    full = np.empty(nout + 4, np.uint8)
    full[:nout] = out[:nout]
    for k in range(4):
        full[nout + k] = (x1 >> (24 - 8 * k)) & 255
    return full


@nb.njit(cache=True)
def get(cs: np.ndarray, data: np.ndarray, p: int) -> int:
    """Decode one bit whose probability of being 1 is p / 4096, as put coded it; cs = [x1, x2, x, bytes read]
    (bytes past the end read as 0)."""
    mid = cs[0] + ((cs[1] - cs[0]) >> 12) * p
    bit = 1 if cs[2] <= mid else 0
    if bit:
        cs[1] = mid
    else:
        cs[0] = mid + 1
    while ((cs[0] ^ cs[1]) & 0xFF000000) == 0:
        cs[0] = (cs[0] << 8) & 0xFFFFFFFF
        cs[1] = ((cs[1] << 8) & 0xFFFFFFFF) | 255
        cs[2] = ((cs[2] << 8) & 0xFFFFFFFF) | (data[cs[3]] if cs[3] < data.shape[0] else 0)
        cs[3] += 1
    return bit


@nb.njit(cache=True)
def start(data: np.ndarray) -> np.ndarray:
    """get's state after the first four bytes."""
    cs = np.array([0, 0xFFFFFFFF, 0, 0], np.int64)
    for _ in range(4):
        cs[2] = (cs[2] << 8) | (data[cs[3]] if cs[3] < data.shape[0] else 0)
        cs[3] += 1
    return cs
