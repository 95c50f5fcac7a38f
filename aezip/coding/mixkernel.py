"""The mixing coders' compiled loops (numba). encode/decode (method 9): each bin's residual from a prediction
(LOCO-I's median, or a blend of six predictors weighted by their errors at the causal neighbours; for E >= 1 also
each pixel's residual quantized in steps of 2E + 1), coded as a few binary decisions. code_values (method 10): each
bin's value, bit by bit from the top, given the autoencoder's prediction. Both give every decision a probability
from adaptive bit models in their contexts (each a slow and a fast one), mixed in the logistic domain, refined by an
adaptive probability map, and range-coded by a binary arithmetic coder.

Integer arithmetic only, so every machine and thread count writes and reads the same bytes:
- probabilities are 12-bit integers p = P(bit = 1) in 1..4095; squash (logistic) interpolates 33 integer points,
  stretch (its inverse) is a table built from squash by an integer loop;
- a bit model is a 16-bit probability and a count n <= LIMIT; it moves towards the bit by (2^17 // (2n + 3)) / 2^16
  of the distance (exact integer shifts: numba's >> on int64 is an arithmetic shift, as Python's); its fast twin
  moves by 2^-FAST of it (2^-VALUE_FAST in the value coder);
- the blend is sum_k w_k P_k / sum_k w_k rounded, w_k = 2^30 // s_k^2 with s_k = 1 + the predictor's absolute
  errors at W, N, NW and NE (s_k <= 1021, so w_k >= 1030 and sum_k w_k P_k < 6 x 2^30 x 256 < 2^41);
- the mixers' weights are 16.16 fixed point; their update is (stretch x error x RATE) >> MIX_SHIFT;
- the coder keeps two 32-bit bounds x1 <= x2 and splits at x1 + ((x2 - x1) >> 12) * p: bit 1 takes the lower part
  (x1..mid), bit 0 the upper (mid + 1..x2); while both bounds share their top byte it is written out. After the
  shift x1 != x2, so mid < x2 and both parts are non-empty. The decoder mirrors every step; a damaged stream decodes
  to other pixels (the chunk's pixel CRC refuses them), never loops: each pixel takes at most 16 decisions.
Storage: a bit model's probability stays in 0..65535 (a step towards 1 moves by floor((65536 - p) d / 2^16) <
65536 - p, towards 0 floors at 0), so it is kept as uint16, and its count (<= LIMIT = 255) as uint8: a value coder's
state for a gray chunk is ~20 MB instead of ~90 MB with int64. Arithmetic is int64: every read widens.
Bounds (int64 arithmetic): |stretch| <= 2047, weights are clamped to +-2^40, so a mixer's sum of 2 N_INPUTS = 28
products stays below 2^56; a weight's step is below 2047 x 4095 x RATE < 2^26; a bit model's step below 2^16 x 2^16.
"""
from __future__ import annotations

import numba as nb
import numpy as np

# squash(d) = 4096 / (1 + e^(-d / 256)) at d = -2048, -1920, ..., 2048, rounded and kept in 1..4095
_SQUASH = np.array([1, 2, 4, 6, 10, 17, 27, 45, 74, 120, 194, 311, 488, 747, 1102, 1546, 2048, 2550, 2994, 3349,
                    3608, 3785, 3902, 3976, 4022, 4051, 4069, 4079, 4086, 4090, 4092, 4094, 4095], np.int64)
NODES = 37          # decisions: 0 zero?, 1 sign, 2..8 bucket unary, 9..36 mantissa bits (bucket, position)
N_INPUTS = 14       # contexts mixed per decision, each through a slow and a fast bit model
CONTEXT_SIZES = np.array([1, 64, 81, 81, 49, 81, 81, 81, 72, 256, 2401, 648, 648, 729], np.int64)
LIMIT = 255         # a slow bit model's count stops here: it keeps adapting at rate ~1/256
FAST = 4            # a fast bit model moves 1/16 of the way (the value coder's: 1/4, VALUE_FAST)
RATE, MIX_SHIFT = 6, 14
APM_ROWS = 16       # per channel and node: error-energy class x 2 activity halves
APM_SHIFT = 7
COLOUR_CONTEXTS = (7, 8)   # the previous channel's: unused in channel 0
N_PREDICTORS = 6    # the blend's: median, W + N - NW, (W + N) / 2, W + NE - N, N, W
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
_DELTA = np.array([(1 << 17) // (2 * n + 3) for n in range(LIMIT + 1)], np.int64)


@nb.njit(cache=True)
def _q9(d: int) -> int:
    """A signed difference in 9 classes: 0, +-(1..2), +-(3..6), +-(7..14), +-(15..)."""
    a = abs(d)
    k = 0 if a == 0 else (1 if a <= 2 else (2 if a <= 6 else (3 if a <= 14 else 4)))
    return 4 + k if d > 0 else 4 - k


@nb.njit(cache=True)
def _q7(d: int) -> int:
    """A signed residual in 7 classes: 0, +-(1..3), +-(4..12), +-(13..)."""
    a = abs(d)
    k = 0 if a == 0 else (1 if a <= 3 else (2 if a <= 12 else 3))
    return 3 + k if d > 0 else 3 - k


def new_state(channels: int, sizes: np.ndarray = CONTEXT_SIZES, nodes: int = NODES,
              colour: tuple[int, ...] = COLOUR_CONTEXTS, fast: int = FAST) -> tuple:
    """Fresh model state for images of `channels` channels, contexts of these sizes (those in `colour` unused in
    channel 0), this many decision nodes and fast bit models moving by 2^-fast: bit models (16-bit probabilities,
    slow then fast; the slow ones' counts), the two mixers' weights, the probability map, table offsets, [nodes,
    fast], the colour mask, and scratch."""
    k = len(sizes)
    off = np.zeros(k + 1, np.int64)
    off[1:] = np.cumsum(sizes * channels * nodes)
    sets = channels * nodes * 8
    apm = np.empty((channels * nodes * APM_ROWS, 33), np.int64)
    apm[:] = np.array([squash((j - 16) * 128) * 16 for j in range(33)], np.int64)
    mask = np.array([j in colour for j in range(k)], np.int64)
    return (np.full(2 * off[-1], 1 << 15, np.uint16), np.zeros(off[-1], np.uint8),
            np.full((sets, 2 * k), 1 << 12, np.int64), np.full((sets, 2 * k), 1 << 12, np.int64),
            apm, off, np.array([nodes, fast]), mask,
            np.zeros(k, np.int64), np.zeros(2 * k, np.int64), np.zeros(6, np.int64))


@nb.njit(cache=True)
def _predict(m: tuple, c: int, node: int, ctx: np.ndarray, qa: int, qe: int, nchan: int) -> int:
    """P(bit = 1) of decision `node` of channel c's pixel: the bit models of its contexts mixed by two weight sets
    (selected by activity and by error energy), averaged in the stretched domain, then averaged with the probability
    map's answer; what _update needs is left in the scratch. Channel 0 has no previous channel: its contexts 7 and 8
    are left out."""
    prob, _, w1, w2, apm, off, cfg, colour, idx, st, sc = m
    n, nodes = idx.shape[0], cfg[0]
    for k in range(n):
        ix = off[k] + (ctx[k] * nchan + c) * nodes + node
        idx[k] = ix
        used = c > 0 or colour[k] == 0
        st[k] = _STRETCH[np.int64(prob[ix]) >> 4] if used else 0
        st[n + k] = _STRETCH[np.int64(prob[off[n] + ix]) >> 4] if used else 0
    s1 = (c * nodes + node) * 8 + qa
    s2 = (c * nodes + node) * 8 + qe
    d1 = 0
    d2 = 0
    for k in range(2 * n):
        d1 += w1[s1, k] * st[k]
        d2 += w2[s2, k] * st[k]
    d1 >>= 16
    d2 >>= 16
    dm = min(max((d1 + d2) >> 1, -2047), 2047) + 2048
    row = (c * nodes + node) * APM_ROWS + qe * 2 + (1 if qa > 3 else 0)
    lo, wgt = dm >> 7, dm & 127
    pa = (apm[row, lo] * (128 - wgt) + apm[row, lo + 1] * wgt) >> 11
    p = min(max((squash(dm - 2048) + pa + 1) >> 1, 1), 4095)
    sc[0], sc[1], sc[2], sc[3], sc[4], sc[5] = d1, d2, s1, s2, row, lo + (1 if wgt > 64 else 0)
    return p


@nb.njit(cache=True)
def _update(m: tuple, bit: int) -> None:
    """Teach the models of the last _predict the bit: both mixers (each towards its own prediction's error), the
    probability map's nearer point, every bit model used."""
    prob, cnt, w1, w2, apm, off, cfg, _, idx, st, sc = m
    n, fast = idx.shape[0], cfg[1]
    e1 = ((bit << 12) - squash(sc[0])) * RATE
    e2 = ((bit << 12) - squash(sc[1])) * RATE
    s1, s2 = sc[2], sc[3]
    for k in range(2 * n):
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
def _context(planes: np.ndarray, medres: np.ndarray, coded: np.ndarray, perr: np.ndarray, i: int, y: int, x: int,
             c: int, nbins: int, blend: bool, ctx: np.ndarray, pk: np.ndarray) -> tuple:
    """(prediction, base, activity class, error-energy class) of bin (y, x, c) of image i, its contexts in ctx and
    the six predictors in pk, from what is decoded: planes (bins; 0 outside the image), and of this image medres
    (each decoded bin minus its base), coded (each decoded bin's coded residual) and perr (each predictor's absolute
    error at each decoded bin, kept where blend). The base is the median, or with blend the predictors' blend; in
    colour the prediction adds the previous channel's residual from its base."""
    w = planes.shape[2]
    wv = planes[i, y, x - 1, c] if x > 0 else 0
    nv = planes[i, y - 1, x, c] if y > 0 else 0
    nw = planes[i, y - 1, x - 1, c] if x > 0 and y > 0 else 0
    ne = planes[i, y - 1, x + 1, c] if y > 0 and x < w - 1 else 0
    ww = planes[i, y, x - 2, c] if x > 1 else 0
    nn = planes[i, y - 2, x, c] if y > 1 else 0
    hi, lo = max(wv, nv), min(wv, nv)
    pk[0] = lo if nw >= hi else (hi if nw <= lo else wv + nv - nw)
    pk[1] = min(max(wv + nv - nw, 0), nbins - 1)
    pk[2] = (wv + nv + 1) >> 1
    pk[3] = min(max(wv + ne - nv, 0), nbins - 1)
    pk[4] = nv
    pk[5] = wv
    med = pk[0]
    if blend:
        total, acc = 0, 0
        for k in range(N_PREDICTORS):
            s = 1
            if x > 0:
                s += perr[y, x - 1, c, k]
            if y > 0:
                s += perr[y - 1, x, c, k]
                if x > 0:
                    s += perr[y - 1, x - 1, c, k]
                if x < w - 1:
                    s += perr[y - 1, x + 1, c, k]
            wk = (1 << 30) // (s * s)
            total += wk
            acc += wk * pk[k]
        med = (acc + total // 2) // total
    pred, rp, ep = med, 0, 0
    if c > 0:
        rp, ep = medres[y, x, c - 1], coded[y, x, c - 1]
        pred = min(max(med + rp, 0), nbins - 1)
    act = abs(wv - nw) + abs(nw - nv) + abs(nv - ne)
    qa = 0
    while qa < 7 and act >= (1 << qa):
        qa += 1
    ew = coded[y, x - 1, c] if x > 0 else 0
    en = coded[y - 1, x, c] if y > 0 else 0
    enw = coded[y - 1, x - 1, c] if x > 0 and y > 0 else 0
    ene = coded[y - 1, x + 1, c] if y > 0 and x < w - 1 else 0
    energy = abs(ew) + abs(en) + (abs(enw) + abs(ene)) // 2
    qe = 0
    while qe < 7 and energy >= (2 << qe):
        qe += 1
    ctx[0] = 0
    ctx[1] = qa * 8 + qe
    ctx[2] = _q9(wv - pred) * 9 + _q9(nv - pred)
    ctx[3] = _q9(nw - pred) * 9 + _q9(ne - pred)
    ctx[4] = _q7(ew) * 7 + _q7(en)
    ctx[5] = _q9(ww - wv) * 9 + _q9(nn - nv)
    ctx[6] = _q9(ne - nv) * 9 + _q9(enw + ene)
    ctx[7] = _q9(rp) * 9 + _q9(ep)
    ctx[8] = _q9(rp) * 8 + qa
    ctx[9] = pred * 256 // nbins
    ctx[10] = ((_q7(wv - pred) * 7 + _q7(nv - pred)) * 7 + _q7(nw - pred)) * 7 + _q7(ne - pred)
    ctx[11] = (_q9(wv - pred) * 9 + _q9(nv - pred)) * 8 + qe
    ctx[12] = (_q9(((wv + nv + 1) >> 1) - pred) * 9 + _q9(ew + en)) * 8 + qe
    ctx[13] = (_q9(pk[0] - pred) * 9 + _q9(pk[3] - pred)) * 9 + _q9(pk[1] - pred)
    return pred, med, qa, qe


@nb.njit(cache=True)
def _decoded(medres: np.ndarray, coded: np.ndarray, perr: np.ndarray, pk: np.ndarray, y: int, x: int, c: int, v: int,
             med: int, e: int, blend: bool) -> None:
    """Record bin v (y, x, c), decoded: its residual from the base and coded residual, and with blend each
    predictor's error."""
    medres[y, x, c], coded[y, x, c] = v - med, e
    if blend:
        for k in range(N_PREDICTORS):
            perr[y, x, c, k] = abs(v - pk[k])


@nb.njit(cache=True)
def _decisions(e: int, nodes: np.ndarray, bits: np.ndarray) -> int:
    """The binary decisions of residual e (|e| <= 128): zero?, sign, the bucket b of |e| (|e| in [2^(b-1), 2^b))
    in unary, then the b - 1 bits of |e| below its top bit; returns how many."""
    nodes[0], bits[0] = 0, 1 if e != 0 else 0
    if e == 0:
        return 1
    nodes[1], bits[1] = 1, 1 if e < 0 else 0
    a = abs(e)
    b = 1
    while (1 << b) <= a:
        b += 1
    nd = 2
    for t in range(1, 8):
        nodes[nd], bits[nd] = 1 + t, 1 if b > t else 0
        nd += 1
        if b <= t:
            break
    for j in range(b - 1):
        nodes[nd], bits[nd] = 9 + (b - 2) * (b - 1) // 2 + j, (a >> (b - 2 - j)) & 1
        nd += 1
    return nd


@nb.njit(cache=True)
def _put(x1: int, x2: int, nout: int, out: np.ndarray, bit: int, p: int) -> tuple:
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
def _finish(x1: int, nout: int, out: np.ndarray) -> np.ndarray:
    """The coded bytes: the nout written, then x1's four bytes."""
    full = np.empty(nout + 4, np.uint8)
    full[:nout] = out[:nout]
    for k in range(4):
        full[nout + k] = (x1 >> (24 - 8 * k)) & 255
    return full


@nb.njit(cache=True)
def _get(cs: np.ndarray, data: np.ndarray, p: int) -> int:
    """Decode one bit whose probability of being 1 is p / 4096, as _put coded it; cs = [x1, x2, x, bytes read]
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
def _start(data: np.ndarray) -> np.ndarray:
    """_get's state after the first four bytes."""
    cs = np.array([0, 0xFFFFFFFF, 0, 0], np.int64)
    for _ in range(4):
        cs[2] = (cs[2] << 8) | (data[cs[3]] if cs[3] < data.shape[0] else 0)
        cs[3] += 1
    return cs


@nb.njit(cache=True)
def encode(planes: np.ndarray, nbins: int, blend: bool, m: tuple, quant: int = 1) -> np.ndarray:
    """The coded bytes of planes (n x H x W x C), image by image in raster order, channels innermost, from the
    median (or with blend the predictors' blend); the models (new_state) adapt across the whole chunk. quant 1:
    planes are bins below nbins, each coded as its residual modulo nbins. quant = 2E + 1 > 1: planes are pixels
    (nbins 256), each coded as its residual from the prediction quantized to quant (rounded to the nearest multiple,
    halves away from zero: |q| <= (255 + E) // quant <= 85) and replaced in planes by the pixel the decoder
    rebuilds, clamp(prediction + q quant, 0, 255), within E of the original (clamping only moves it closer)."""
    n, h, w, nchan = planes.shape
    x1, x2, nout, out = 0, 0xFFFFFFFF, 0, np.empty(planes.size + 16, np.uint8)   # about a byte a bin at first
    ctx, nodes, bits = np.zeros(N_INPUTS, np.int64), np.zeros(16, np.int64), np.zeros(16, np.int64)
    medres, coded = np.zeros((h, w, nchan), np.int64), np.zeros((h, w, nchan), np.int64)
    perr = np.zeros((h, w, nchan, N_PREDICTORS) if blend else (1, 1, 1, 1), np.int64)
    pk = np.zeros(N_PREDICTORS, np.int64)
    half = nbins // 2
    for i in range(n):
        for y in range(h):
            for x in range(w):
                for c in range(nchan):
                    pred, med, qa, qe = _context(planes, medres, coded, perr, i, y, x, c, nbins, blend, ctx, pk)
                    v = planes[i, y, x, c]
                    if quant == 1:
                        e = ((v - pred + half) % nbins) - half
                    else:
                        e = (v - pred + quant // 2) // quant if v >= pred else -((pred - v + quant // 2) // quant)
                        v = min(max(pred + e * quant, 0), 255)
                        planes[i, y, x, c] = v
                    _decoded(medres, coded, perr, pk, y, x, c, v, med, e, blend)
                    for d in range(_decisions(e, nodes, bits)):
                        x1, x2, nout, out = _put(x1, x2, nout, out, bits[d], _predict(m, c, nodes[d], ctx, qa, qe,
                                                                                       nchan))
                        _update(m, bits[d])
    return _finish(x1, nout, out)


@nb.njit(cache=True)
def decode(data: np.ndarray, planes: np.ndarray, nbins: int, blend: bool, m: tuple, quant: int = 1) -> None:
    """Inverse of encode: fills planes (n x H x W x C, int64) with the decoded bins, or with quant > 1 the decoded
    pixels (bytes past the end read as 0)."""
    n, h, w, nchan = planes.shape
    cs = _start(data)
    ctx = np.zeros(N_INPUTS, np.int64)
    medres, coded = np.zeros((h, w, nchan), np.int64), np.zeros((h, w, nchan), np.int64)
    perr = np.zeros((h, w, nchan, N_PREDICTORS) if blend else (1, 1, 1, 1), np.int64)
    pk = np.zeros(N_PREDICTORS, np.int64)
    for i in range(n):
        for y in range(h):
            for x in range(w):
                for c in range(nchan):
                    pred, med, qa, qe = _context(planes, medres, coded, perr, i, y, x, c, nbins, blend, ctx, pk)
                    e, a, sign, b, node, step = 0, 0, 0, 0, 0, 0
                    while True:   # the decisions of _decisions, in order, each decoded before the next is known
                        bit = _get(cs, data, _predict(m, c, node, ctx, qa, qe, nchan))
                        _update(m, bit)
                        if node == 0:
                            if not bit:
                                break
                            node = 1
                        elif node == 1:
                            sign, node = bit, 2
                        elif node <= 8:
                            if bit and node < 8:
                                node += 1
                            else:
                                b = node - 1 + bit   # "b > t" failed at t = node - 1, or passed at t = 7: b = 8
                                a, step = 1, 0
                                if b == 1:
                                    break
                                node = 9 + (b - 2) * (b - 1) // 2
                        else:
                            a = (a << 1) | bit
                            step += 1
                            if step == b - 1:
                                break
                            node += 1
                    if node != 0:
                        e = -a if sign else a
                    v = (pred + e) % nbins if quant == 1 else min(max(pred + e * quant, 0), 255)
                    planes[i, y, x, c] = v
                    _decoded(medres, coded, perr, pk, y, x, c, v, med, e, blend)


# The mixing coder with latents: each bin's value itself, bit by bit from the top, given the autoencoder's prediction
VALUE_SIZES = np.array([1, 256, 256, 256, 512, 1024, 4096, 1024, 256, 4096, 4096], np.int64)
VALUE_COLOUR = (8,)
VALUE_FAST = 2      # on MNIST 0-999: 1.0028 bits/pixel with 4, 0.9959 with 3, 0.9942 with 2


@nb.njit(cache=True)
def _level(t: int, nbins: int) -> int:
    """A bin's level: 0, dark (below half), bright, saturated (within 1/64 of the top)."""
    return 0 if t == 0 else (1 if 2 * t < nbins else (2 if t < nbins - 1 - (nbins >> 6) else 3))


@nb.njit(cache=True)
def _value_context(planes: np.ndarray, aux: np.ndarray, i: int, y: int, x: int, c: int, nbins: int,
                   ctx: np.ndarray) -> tuple:
    """(prediction class, neighbour class) of bin (y, x, c) of image i and its eleven contexts in ctx, from the
    decoded bins (planes, 0 outside the image) and the prediction's bins (aux, n x H x W x C): order 0; the
    prediction; its 16ths with the levels of W and N; with those of NW and NE; the median's 32nds with the
    prediction's 16ths; the prediction's quarters here, east and south with the levels of W and N; W's and N's 16ths
    with the prediction's; the four neighbours' levels with whether the prediction changes around here and whether
    W departs from its prediction; in colour the previous channel's 16ths here with the prediction's; the eighths of
    W, N, NW and NE; the levels of WW, NN, W and N with the prediction's 16ths."""
    h, w = planes.shape[1], planes.shape[2]
    wv = planes[i, y, x - 1, c] if x > 0 else 0
    nv = planes[i, y - 1, x, c] if y > 0 else 0
    nw = planes[i, y - 1, x - 1, c] if x > 0 and y > 0 else 0
    ne = planes[i, y - 1, x + 1, c] if y > 0 and x < w - 1 else 0
    a = aux[i, y, x, c]
    ae = aux[i, y, x + 1, c] if x < w - 1 else 0
    asouth = aux[i, y + 1, x, c] if y < h - 1 else 0
    aw = aux[i, y, x - 1, c] if x > 0 else 0
    an = aux[i, y - 1, x, c] if y > 0 else 0
    hi, lo = max(wv, nv), min(wv, nv)
    med = lo if nw >= hi else (hi if nw <= lo else wv + nv - nw)
    a16 = a * 16 // nbins
    lw, ln = _level(wv, nbins), _level(nv, nbins)
    ctx[0] = 0
    ctx[1] = a * 256 // nbins
    ctx[2] = a16 * 16 + lw * 4 + ln
    ctx[3] = a16 * 16 + _level(nw, nbins) * 4 + _level(ne, nbins)
    ctx[4] = (med * 32 // nbins) * 16 + a16
    ctx[5] = (((a * 4 // nbins) * 4 + ae * 4 // nbins) * 4 + asouth * 4 // nbins) * 16 + lw * 4 + ln
    ctx[6] = ((wv * 16 // nbins) * 16 + nv * 16 // nbins) * 16 + a16
    ctx[7] = ((lw * 4 + ln) * 16 + _level(nw, nbins) * 4 + _level(ne, nbins)) * 4 + \
        (1 if 4 * (abs(a - aw) + abs(a - an)) > nbins else 0) + (2 if 8 * abs(wv - aw) > nbins else 0)
    ctx[8] = (planes[i, y, x, c - 1] * 16 // nbins) * 16 + a16 if c > 0 else 0
    ctx[9] = (((wv * 8 // nbins) * 8 + nv * 8 // nbins) * 8 + nw * 8 // nbins) * 8 + ne * 8 // nbins
    ww = planes[i, y, x - 2, c] if x > 1 else 0
    nn = planes[i, y - 2, x, c] if y > 1 else 0
    ctx[10] = ((_level(ww, nbins) * 4 + _level(nn, nbins)) * 16 + lw * 4 + ln) * 16 + a16
    return a * 8 // nbins, lw * 2 + (1 if nv > 0 else 0)


def value_state(channels: int, nbins: int) -> tuple:
    """Fresh model state of the value coder for bins below nbins: a decision node per prefix of a bin's bits."""
    return new_state(channels, VALUE_SIZES, 1 << _depth(nbins), VALUE_COLOUR, VALUE_FAST)


@nb.njit(cache=True)
def _depth(nbins: int) -> int:
    """Bits of a bin below nbins."""
    d = 1
    while (1 << d) < nbins:
        d += 1
    return d


@nb.njit(cache=True)
def code_values(planes: np.ndarray, aux: np.ndarray, nbins: int, m: tuple, data: np.ndarray,
                encoding: bool) -> np.ndarray:
    """The value coder, image by image in raster order, channels innermost, each bin's bits from the top (the node
    is the prefix coded so far) given the prediction's bins aux. Encoding: codes planes (n x H x W x C bins below
    nbins) and returns the bytes. Decoding: reads data (bytes past the end read as 0) into planes (int64), a damaged
    stream's values above the last bin clamped to it (the chunk's pixel CRC refuses them), and returns no bytes."""
    n, h, w, nchan = planes.shape
    depth = _depth(nbins)
    x1, x2, nout, out = 0, 0xFFFFFFFF, 0, np.empty(planes.size + 16 if encoding else 0, np.uint8)
    cs = _start(data)
    ctx = np.zeros(VALUE_SIZES.shape[0], np.int64)
    for i in range(n):
        for y in range(h):
            for x in range(w):
                for c in range(nchan):
                    qa, qe = _value_context(planes, aux, i, y, x, c, nbins, ctx)
                    node = 1
                    for b in range(depth - 1, -1, -1):
                        p = _predict(m, c, node, ctx, qa, qe, nchan)
                        if encoding:
                            bit = (planes[i, y, x, c] >> b) & 1
                            x1, x2, nout, out = _put(x1, x2, nout, out, bit, p)
                        else:
                            bit = _get(cs, data, p)
                        _update(m, bit)
                        node = 2 * node + bit
                    if not encoding:
                        planes[i, y, x, c] = min(node - (1 << depth), nbins - 1)
    return _finish(x1, nout, out) if encoding else out
