"""The context coder's raster loop compiled with numba: the same bytes as constriction, ~10x faster.

`residual.py` codes each raster position's symbols (one per image) with constriction's `RangeEncoder` (32-bit words,
64-bit state) and the lazy `Categorical(perfect=False)` model family at 24-bit precision, fed one float64 row per
symbol: counts / total of the symbol's context. This module runs the same arithmetic in one compiled loop, so the
stream is bit-identical (tests compare it with constriction's on random rows and with the golden files):

- a row p (float64, p_v = counts_v / total, one correctly rounded division) is quantized as constriction's
  `LazyContiguousCategoricalEntropyModel::from_floating_point_probabilities_fast` does: scale = (2^24 - n) / S with S
  the sequential float64 sum of p, cdf[s] = trunc(P_s * scale) + s with P_s the sequential sum of p_0..p_{s-1}, and
  cdf[n] = 2^24; symbol s gets [cdf[s], cdf[s+1]). The decoder's quantile search returns the s with
  cdf[s] <= q < cdf[s+1], which is what constriction's lazy quantile function returns for every q < 2^24.
  A context's cdf is recomputed only when its counts changed since it was last used (not once per symbol).
- the range coder is `constriction::stream::queue::RangeEncoder<u32, u64>` / `RangeDecoder` step for step
  (carry handling through the "inverted" situation, the seal of one or two words).
All arithmetic on the coder state is uint64 (wrapping, as in Rust); no float decides anything but the quantization,
which is IEEE float64 in a fixed order (numba does not reassociate without fastmath).

The same loop runs the gradient coder (gradient.py) when `gradient` is set: its symbols are bins, each coded as its
residual from a prediction made from the bins already decoded (gradient_contexts), in contexts of local activity.
"""
from __future__ import annotations

import math

import numba as nb
import numpy as np

PRECISION = 24
_ONE = 1 << PRECISION
_LOW_WORD = np.uint64(0xFFFFFFFF)
_FULL = np.uint64(0xFFFFFFFFFFFFFFFF)
_BIG = np.uint64(1 << 32)
_N_NEIGH = 4
BAD_STREAM = -1   # decode status: a quantile outside the model (a damaged stream)
ACTIVITY_EDGES = np.array([1, 3, 7, 15, 31, 63, 127])   # gradient coder: |W-NW| + |NW-N| + |N-NE| -> 8 classes
GRADIENT_CONTEXTS = (len(ACTIVITY_EDGES) + 1) * 4       # per channel: activity x the previous channel's residual


@nb.njit(cache=True)
def _quantize(counts: np.ndarray, c: int, cdf: np.ndarray, prefix: np.ndarray) -> None:
    """cdf[c] (n + 1 entries) of context c's counts, as constriction quantizes counts[c] / counts[c].sum(); the
    prefix sums P_s are the partial sums of its normalization S, so one sequential pass gives both."""
    n = counts.shape[1]
    total = 0
    for v in range(n):
        total += counts[c, v]
    ft = float(total)
    acc = 0.0
    for v in range(n):
        prefix[v] = acc
        acc += counts[c, v] / ft
    scale = float(_ONE - n) / acc
    for v in range(n):
        cdf[c, v] = np.int64(prefix[v] * scale) + v
    cdf[c, n] = _ONE


@nb.njit(cache=True)
def contexts(pos: int, w: int, ch: int, bucket: np.ndarray, recon: np.ndarray, level: np.ndarray,
              ctx: np.ndarray) -> None:
    """Every image's context at raster position pos: prediction bucket, then the levels of W, N, NW, NE."""
    y, x = divmod(pos // ch, w)
    row = w * ch
    offsets = (ch, row, row + ch, row - ch)
    present = (x > 0, y > 0, x > 0 and y > 0, y > 0 and x < w - 1)
    for i in range(bucket.shape[0]):
        c = bucket[i, pos]
        for k in range(4):
            c = c * _N_NEIGH + (level[recon[i, pos - offsets[k]]] if present[k] else 0)
        ctx[i] = c


@nb.njit(cache=True)
def gradient_contexts(pos: int, w: int, ch: int, nbins: int, planes: np.ndarray, res: np.ndarray, ctx: np.ndarray,
                      pred: np.ndarray, med: np.ndarray) -> None:
    """Every image's gradient-coder context, prediction and median prediction at raster position pos, from the bins
    decoded so far (planes, n x D; 0 outside the image). med is LOCO-I's median of W, N and W + N - NW; channel 0
    predicts med, a later channel med plus the previous channel's residual from its own med at the same pixel
    (res), clamped to the bins. The context is (channel, activity class of |W-NW| + |NW-N| + |N-NE|, class of
    |that residual|: 0, < 4, < 16, more)."""
    y, x = divmod(pos // ch, w)
    c = pos % ch
    row = w * ch
    for i in range(planes.shape[0]):
        wv = np.int64(planes[i, pos - ch]) if x > 0 else np.int64(0)
        nv = np.int64(planes[i, pos - row]) if y > 0 else np.int64(0)
        nw = np.int64(planes[i, pos - row - ch]) if x > 0 and y > 0 else np.int64(0)
        ne = np.int64(planes[i, pos - row + ch]) if y > 0 and x < w - 1 else np.int64(0)
        hi, lo = max(wv, nv), min(wv, nv)
        m = lo if nw >= hi else (hi if nw <= lo else wv + nv - nw)
        act = abs(wv - nw) + abs(nw - nv) + abs(nv - ne)
        q = 0
        while q < ACTIVITY_EDGES.shape[0] and act >= ACTIVITY_EDGES[q]:
            q += 1
        p, k = m, 0
        if c > 0:
            r = res[i, pos - 1]
            p = min(max(m + r, 0), nbins - 1)
            a = abs(r)
            k = 0 if a < 1 else (1 if a < 4 else (2 if a < 16 else 3))
        pred[i], med[i] = p, m
        ctx[i] = (c * (ACTIVITY_EDGES.shape[0] + 1) + q) * 4 + k


@nb.njit(cache=True)
def _position_contexts(gradient: bool, pos: int, w: int, ch: int, nsym: int, bucket: np.ndarray, level: np.ndarray,
                       planes: np.ndarray, res: np.ndarray, ctx: np.ndarray, pred: np.ndarray, med: np.ndarray) -> None:
    """Every image's context at raster position pos, for encode and decode alike: the context coder's (contexts),
    or the gradient coder's with its predictions (gradient_contexts); planes holds what is decoded so far."""
    if gradient:
        gradient_contexts(pos, w, ch, nsym, planes, res, ctx, pred, med)
    else:
        contexts(pos, w, ch, bucket, planes, level, ctx)


@nb.njit(cache=True)
def _update(counts: np.ndarray, dirty: np.ndarray, ctx: np.ndarray, symbols: np.ndarray, pos: int,
            increment: int) -> None:
    for i in range(ctx.shape[0]):
        counts[ctx[i], symbols[i, pos]] += increment
        dirty[ctx[i]] = True


@nb.njit(cache=True)
def encode(symbols: np.ndarray, recon: np.ndarray, bucket: np.ndarray, level: np.ndarray, w: int, ch: int,
           counts: np.ndarray, increment: int, gradient: bool = False) -> np.ndarray:
    """The range-coded words of symbols (n x D bins) in raster order, all images at a position, counts adapting
    after each position; recon holds the decoded values of the symbols (for the neighbours' levels). gradient:
    code each bin as its residual from gradient_contexts' prediction instead (recon then holds the bins, which the
    decoder rebuilds exactly; bucket and level unused)."""
    n, d = symbols.shape
    nsym = counts.shape[1]
    cdf = np.empty((counts.shape[0], counts.shape[1] + 1), np.int64)   # every context's, stale at first
    dirty = np.ones(counts.shape[0], np.bool_)
    prefix, ctx = np.empty(counts.shape[1], np.float64), np.empty(n, np.int64)
    shape = (n, d) if gradient else (1, 1)
    coded, res = np.empty(shape, np.int64), np.empty(shape, np.int64)   # gradient: residual symbols, own-med residuals
    pred, med = np.empty(n, np.int64), np.empty(n, np.int64)
    out = np.empty(n * d + 4, np.uint32)
    nout = 0
    lower = np.uint64(0)
    rng = _FULL
    inverted = 0
    first_inv = np.uint64(0)
    for pos in range(d):
        _position_contexts(gradient, pos, w, ch, nsym, bucket, level, recon, res, ctx, pred, med)
        for i in range(n):
            c = ctx[i]
            if dirty[c]:   # inline, as in decode: a helper (even inline="always") made both loops ~1.5x slower
                _quantize(counts, c, cdf, prefix)
                dirty[c] = False
            s = np.int64(symbols[i, pos])
            if gradient:
                res[i, pos] = s - med[i]
                s = (s - pred[i]) % nsym
                coded[i, pos] = s
            left = np.uint64(cdf[c, s])
            prob = np.uint64(cdf[c, s + 1]) - left
            scale = rng >> np.uint64(PRECISION)
            rng = scale * prob
            new_lower = lower + scale * left
            if inverted > 0 and new_lower + rng > new_lower:
                if new_lower < lower:
                    first, rest = (first_inv + np.uint64(1)) & _LOW_WORD, np.uint64(0)
                else:
                    first, rest = first_inv, _LOW_WORD
                out[nout] = first
                nout += 1
                for _ in range(1, inverted):
                    out[nout] = rest
                    nout += 1
                inverted = 0
            lower = new_lower
            if rng < _BIG:
                rng = rng << np.uint64(32)
                word = lower >> np.uint64(32)
                lower = lower << np.uint64(32)
                if inverted > 0:
                    inverted += 1
                elif lower + rng > lower:
                    out[nout] = word
                    nout += 1
                else:
                    inverted, first_inv = 1, word
        if gradient:
            _update(counts, dirty, ctx, coded, pos, increment)
        else:
            _update(counts, dirty, ctx, symbols, pos, increment)
    if rng != _FULL:                                   # seal, as constriction's get_compressed()
        point = lower + _LOW_WORD
        if inverted > 0:
            if point >= lower:
                first, rest = first_inv, _LOW_WORD
            else:
                first, rest = (first_inv + np.uint64(1)) & _LOW_WORD, np.uint64(0)
            out[nout] = first
            nout += 1
            for _ in range(1, inverted):
                out[nout] = rest
                nout += 1
        point_word = point >> np.uint64(32)
        out[nout] = point_word
        nout += 1
        if (lower + rng) >> np.uint64(32) == point_word:
            out[nout] = 0
            nout += 1
    return out[:nout]


# A product of probabilities p >= 1 / total > 2^-63 is kept as prob * 2^-bits, prob renormalized into [1/2, 1) once
# below 2^-900, so it stays a normal float64 (> 2^-1022) however many symbols it spans: the code length is
# bits - log2(prob), one log per ~15 symbols instead of one each (the context coder's estimate ran ~2x faster).
RENORMALIZE = 2.0 ** -900


@nb.njit(cache=True, inline="always")
def renormalized(bits: float, prob: float) -> tuple[float, float]:
    mantissa, exponent = math.frexp(prob)
    return bits - exponent, mantissa


@nb.njit(cache=True)
def ideal_bits(symbols: np.ndarray, recon: np.ndarray, bucket: np.ndarray, level: np.ndarray, w: int, ch: int,
               counts: np.ndarray, increment: int, gradient: bool = False) -> float:
    """The ideal length in bits of encode's stream (same arguments): each symbol's -log2 of its count over its
    context's total, the counts adapting as encode's do, with no quantization and no range coder. The chooser's
    estimate on a sample (encode re-quantizes a context's 256 counts whenever they change, most of its time on a
    small sample); encode's real stream exceeds it by the range coder's seal and its 24-bit quantization."""
    n, d = symbols.shape
    nsym = counts.shape[1]
    totals = np.zeros(counts.shape[0], np.int64)
    for c in range(counts.shape[0]):
        for v in range(nsym):
            totals[c] += counts[c, v]
    ctx = np.empty(n, np.int64)
    shape = (n, d) if gradient else (1, 1)
    coded, res = np.empty(shape, np.int64), np.empty(shape, np.int64)
    pred, med = np.empty(n, np.int64), np.empty(n, np.int64)
    bits, prob = 0.0, 1.0   # the product of the p: prob * 2^-bits (RENORMALIZE)
    for pos in range(d):
        _position_contexts(gradient, pos, w, ch, nsym, bucket, level, recon, res, ctx, pred, med)
        for i in range(n):
            c = ctx[i]
            s = np.int64(symbols[i, pos])
            if gradient:
                res[i, pos] = s - med[i]
                s = (s - pred[i]) % nsym
                coded[i, pos] = s
            prob *= counts[c, s] / totals[c]
            if prob < RENORMALIZE:
                bits, prob = renormalized(bits, prob)
        for i in range(n):
            c = ctx[i]
            counts[c, coded[i, pos] if gradient else symbols[i, pos]] += increment
            totals[c] += increment
    return bits - math.log2(prob)


@nb.njit(cache=True)
def decode(words: np.ndarray, recon: np.ndarray, bucket: np.ndarray, level: np.ndarray, value: np.ndarray, w: int,
           ch: int, counts: np.ndarray, increment: int, gradient: bool = False) -> int:
    """Inverse of encode: fills recon (n x D) with the decoded values (value[bin]; with gradient, the bins
    themselves); returns 0, or BAD_STREAM."""
    n, d = recon.shape
    res = np.empty((n, d) if gradient else (1, 1), np.int64)
    pred, med = np.empty(n, np.int64), np.empty(n, np.int64)
    nsym = counts.shape[1]
    cdf = np.empty((counts.shape[0], counts.shape[1] + 1), np.int64)   # every context's, stale at first
    dirty = np.ones(counts.shape[0], np.bool_)
    prefix, ctx = np.empty(counts.shape[1], np.float64), np.empty(n, np.int64)
    symbols = np.empty((n, d), np.int64)
    nwords = words.shape[0]
    point = np.uint64(0)
    read = 0
    while read < min(2, nwords):
        point = (point << np.uint64(32)) | np.uint64(words[read])
        read += 1
    if read == 1:
        point = point << np.uint64(32)
    lower = np.uint64(0)
    rng = _FULL
    for pos in range(d):
        _position_contexts(gradient, pos, w, ch, nsym, bucket, level, recon, res, ctx, pred, med)
        for i in range(n):
            c = ctx[i]
            if dirty[c]:
                _quantize(counts, c, cdf, prefix)
                dirty[c] = False
            scale = rng >> np.uint64(PRECISION)
            q = (point - lower) // scale
            if q >= np.uint64(_ONE):
                return BAD_STREAM
            lo, hi = 0, nsym - 1                        # the s with cdf[s] <= q < cdf[s + 1]
            while lo < hi:
                mid = (lo + hi + 1) >> 1
                if np.uint64(cdf[c, mid]) <= q:
                    lo = mid
                else:
                    hi = mid - 1
            left = np.uint64(cdf[c, lo])
            lower = lower + scale * left
            rng = scale * (np.uint64(cdf[c, lo + 1]) - left)
            if rng < _BIG:
                lower = lower << np.uint64(32)
                rng = rng << np.uint64(32)
                point = point << np.uint64(32)
                if read < nwords:
                    point = point | np.uint64(words[read])
                    read += 1
            symbols[i, pos] = lo
            if gradient:
                b = (pred[i] + lo) % nsym
                recon[i, pos] = b
                res[i, pos] = b - med[i]
            else:
                recon[i, pos] = value[lo]
        _update(counts, dirty, ctx, symbols, pos, increment)
    return 0
