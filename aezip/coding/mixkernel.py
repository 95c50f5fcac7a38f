"""The mixing coders' compiled loops (numba), on the shared machinery of mixcore.py (bit models, mixers, probability
map, binary arithmetic coder; integer arithmetic only, so every machine and thread count writes and reads the same
bytes):
- encode/decode (method 9): each bin's residual from a prediction (LOCO-I's median, or a blend of six predictors
  weighted by their errors at the causal neighbours; for E >= 1 also each pixel's residual quantized in steps of
  2E + 1), coded as a few binary decisions (_decisions) in fourteen contexts;
- code_values (method 10): each bin's value, bit by bit from the top (after "is it the chunk's mode?" where the
  stream names one), in eleven contexts of the autoencoder's prediction around the pixel and the decoded neighbours.
The blend is sum_k w_k P_k / sum_k w_k rounded, w_k = 2^30 // s_k^2 with s_k = 1 + the predictor's absolute errors
at W, N, NW and NE (s_k <= 1021, so w_k >= 1030 and sum_k w_k P_k < 6 x 2^30 x 256 < 2^41). A damaged stream decodes
to other pixels (the chunk's pixel CRC refuses them) and never loops: a bin takes at most 16 decisions.
"""
from __future__ import annotations

import numba as nb
import numpy as np

from aezip.coding import rasterkernel, rasternet
from aezip.coding.mixcore import finish, get, new_state, predict, put, start, stretch, update

NODES = 37          # decisions: 0 zero?, 1 sign, 2..8 bucket unary, 9..36 mantissa bits (bucket, position)
N_INPUTS = 14       # contexts mixed per decision, each through a slow and a fast bit model
CONTEXT_SIZES = np.array([1, 64, 81, 81, 49, 81, 81, 81, 72, 256, 2401, 648, 648, 729], np.int64)
FAST = 4            # a fast bit model moves 1/16 of the way
COLOUR_CONTEXTS = (7, 8)   # the previous channel's: unused in channel 0
NO_EXT = np.zeros(0, np.int64)   # method 9 mixes no external input
N_PREDICTORS = 6    # the blend's: median, W + N - NW, (W + N) / 2, W + NE - N, N, W


@nb.njit(cache=True)
def _row(qa: int, qe: int) -> int:
    """The probability map's row of a decision: its residual-energy class, and whether the activity (or prediction)
    class is in the upper half."""
    return qe * 2 + (1 if qa > 3 else 0)


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
                        x1, x2, nout, out = put(x1, x2, nout, out, bits[d], predict(m, c, nodes[d], ctx, qa, qe,
                                                                                       _row(qa, qe), nchan, NO_EXT))
                        update(m, bits[d])
    return finish(x1, nout, out)


@nb.njit(cache=True)
def decode(data: np.ndarray, planes: np.ndarray, nbins: int, blend: bool, m: tuple, quant: int = 1) -> None:
    """Inverse of encode: fills planes (n x H x W x C, int64) with the decoded bins, or with quant > 1 the decoded
    pixels (bytes past the end read as 0)."""
    n, h, w, nchan = planes.shape
    cs = start(data)
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
                        bit = get(cs, data, predict(m, c, node, ctx, qa, qe, _row(qa, qe), nchan, NO_EXT))
                        update(m, bit)
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


def value_state(channels: int, nbins: int, net: bool = False) -> tuple:
    """Fresh model state of the value coder for bins below nbins: a decision node per prefix of a bin's bits, and
    node 0 for "the bin is the mode"; with net, the raster network's probability as two external inputs."""
    return new_state(channels, VALUE_SIZES, 1 << _depth(nbins), VALUE_COLOUR, VALUE_FAST, 2 * int(net))


def residual_state(channels: int) -> tuple:
    """Fresh model state of the residual coder (method 9)."""
    return new_state(channels, CONTEXT_SIZES, NODES, COLOUR_CONTEXTS, FAST)


@nb.njit(cache=True)
def _depth(nbins: int) -> int:
    """Bits of a bin below nbins."""
    d = 1
    while (1 << d) < nbins:
        d += 1
    return d


@nb.njit(cache=True)
def _net_inputs(part: int, total: int, ext: np.ndarray) -> int:
    """The raster network's mixer inputs for a decision whose 1 has part of total counts: the stretch of its 12-bit
    probability p (rounded, kept in 1..4095) and p - 2048; returns the stretch's class 0..7 (the selector of the
    first mixer's weights and of the probability map's row)."""
    total = max(total, 1)
    p = min(max((part * 4096 + total // 2) // total, 1), 4095)
    ext[0], ext[1] = stretch(p), p - 2048
    return min((ext[0] + 2048) >> 9, 7)


@nb.njit(cache=True)
def _share(cum: np.ndarray, lo: int, mid: int, hi: int, mode: int, ext: np.ndarray) -> int:
    """_net_inputs for "a value in [lo, hi), not mode where mode >= 0, lies in [mid, hi)", from cumulative
    counts."""
    a1, a0 = cum[hi] - cum[mid], cum[mid] - cum[lo]
    if lo <= mode < mid:
        a0 -= cum[mode + 1] - cum[mode]
    elif mid <= mode < hi:
        a1 -= cum[mode + 1] - cum[mode]
    return _net_inputs(a1, a0 + a1, ext)


@nb.njit(cache=True)
def code_values(planes: np.ndarray, aux: np.ndarray, pred: np.ndarray, nbins: int, max_error: int, m: tuple,
                data: np.ndarray, encoding: bool, mode: int, net: tuple) -> np.ndarray:
    """The value coder, image by image in raster order, channels innermost, given the prediction's bins aux: with
    mode >= 0 first the decision "the bin is mode" (node 0), then, where it is not, the bin's bits from the top
    (the node is the prefix coded so far, 1..2^depth - 1). With a raster network (net's params[0] = 1: one channel)
    every decision also mixes the network's probability of it, from its counts of the 256 values (given the decoded
    neighbours' values and the prediction's, pred) summed into the bins of max_error (rasterkernel; _net_inputs:
    the state has two external inputs), whose class then selects the first mixer's weights and the probability
    map's row in place of the prediction's class; a pixel whose features equal the previous pixel's reuses its
    counts. Encoding: codes planes (n x H x W x C bins below nbins) and returns the bytes. Decoding: reads data
    (bytes past the end read as 0) into planes (int64), a damaged stream's values above the last bin clamped to it
    (the chunk's pixel CRC refuses them), and returns no bytes."""
    n, h, w, nchan = planes.shape
    depth = _depth(nbins)
    x1, x2, nout, out = 0, 0xFFFFFFFF, 0, np.empty(planes.size + 16 if encoding else 0, np.uint8)
    cs = start(data)
    ctx = np.zeros(VALUE_SIZES.shape[0], np.int64)
    use_net = net[6][0] == 1
    ext = np.zeros(2 if use_net else 0, np.int64)
    f, last = np.zeros(rasternet.FEATURES), np.full(rasternet.FEATURES, -1.0)
    h0, h1 = np.zeros(net[1].shape[0]), np.zeros(net[3].shape[0])
    logits, cum = np.zeros(rasternet.VALUES), np.zeros(rasternet.VALUES + 1, np.int64)
    cumb = np.zeros((1 << depth) + 1, np.int64)
    for i in range(n):
        for y in range(h):
            for x in range(w):
                for c in range(nchan):
                    qa, qe = _value_context(planes, aux, i, y, x, c, nbins, ctx)
                    sel, row = qa, _row(qa, qe)
                    if use_net:
                        rasterkernel.pixel_features(planes, pred, i, y, x, max_error, f)
                        if not np.array_equal(f, last):
                            rasterkernel.counts(f, net, h0, h1, logits, cum)
                            rasterkernel.bin_counts(cum, max_error, cumb)
                            last[:] = f
                    if mode >= 0:
                        if use_net:
                            sel = _net_inputs(cumb[mode + 1] - cumb[mode], cumb[-1], ext)
                            row = _row(qa, sel)
                        p = predict(m, c, 0, ctx, sel, qe, row, nchan, ext)
                        if encoding:
                            bit = 1 if planes[i, y, x, c] == mode else 0
                            x1, x2, nout, out = put(x1, x2, nout, out, bit, p)
                        else:
                            bit = get(cs, data, p)
                        update(m, bit)
                        if bit:
                            if not encoding:
                                planes[i, y, x, c] = mode
                            continue
                    node, lo, hi = 1, 0, 1 << depth
                    for b in range(depth - 1, -1, -1):
                        mid = lo + (1 << b)
                        if use_net:
                            sel = _share(cumb, lo, mid, hi, mode, ext)
                            row = _row(qa, sel)
                        p = predict(m, c, node, ctx, sel, qe, row, nchan, ext)
                        if encoding:
                            bit = (planes[i, y, x, c] >> b) & 1
                            x1, x2, nout, out = put(x1, x2, nout, out, bit, p)
                        else:
                            bit = get(cs, data, p)
                        update(m, bit)
                        node = 2 * node + bit
                        lo, hi = (mid, hi) if bit else (lo, mid)
                    if not encoding:
                        planes[i, y, x, c] = min(node - (1 << depth), nbins - 1)
    return finish(x1, nout, out) if encoding else out
