"""The decoder in fixed-point arithmetic, so that its prediction is bit-identical on every machine.

Float matmuls differ across devices, libraries and thread counts (summation order), so a float decoder cannot be
reproduced exactly by another machine. Here every weight, bias and activation is an integer. Hidden activations
keep ACT_FRAC_BITS fractional bits (rounded half up, clamped to [0, ACT_LIMIT)); the output pixel is the number of
integer thresholds T_k (k = 1..255, T_k = ceil(logit((k - 1/2) / 255) * scale)) the final accumulator reaches,
which equals round(255 * sigmoid(logit)). The integers are made once, when a model is saved, and stored in the
model file, so no float computation takes part in decoding. Decoding needs numpy only (no torch).

Why float64 GEMM is exact. A float64 holds every integer of magnitude <= 2^53. Each layer's weight scale is chosen
(`weight_shift`) so that sum_k |w_jk| * max|h_k| + |b_j| + 1 < EXACT_LIMIT = 2^52 for every output j. Whatever
order a BLAS adds the products in, every partial sum is a sum of a subset of the products, so its magnitude is
below 2^52: every product (|w| <= 2^15, |h| < 2^24 or the code < levels) and every partial sum is an integer
below 2^53, hence represented exactly, hence every rounding step of the GEMM is exact. Adding the bias, the
rounding half (2^(s-1)), multiplying by 2^-s and taking the floor are exact too (integers below 2^53, a power of
two). So the result is the same integer on every CPU, GPU, BLAS and thread count.

Why there is no exact float32 path. float32 holds integers up to 2^24 only. The default model's decoder (8-bit
weights, see network/finetune.py) has |w| up to 2^6.9 and hidden inputs up to 2^24 (ACT_LIMIT): a single product
reaches 2^30.9, and the accumulator bound of its two large layers is 2^35.9 and 2^35.0 (tests/test_intdecoder.py
computes them; 2^43.9 and 2^43.3 for the first default's 16-bit weights), so a float32 GEMM would round. Making it
exact needs every partial sum below 2^24 for K = 512 inputs: split h into 4 pieces of 6 bits (512 * 63 * 127 <
2^24), i.e. 4 float32 GEMMs for one float64 GEMM (8 for 16-bit weights); float32 GEMM is ~2.2x float64 here, so
that would be ~1.8x slower, and fewer fixed-point bits would change decoded bytes. So decoding stays float64.

The output thresholds are found without a binary search: the last layer's accumulator, shifted by the lowest
threshold less one bucket, is multiplied by 2^-e (exact) and truncated into a bucket of width 2^e no wider than
the smallest gap between thresholds, so each bucket holds at most one threshold; a table gives the count of
thresholds at or below the bucket's start and the next threshold, and one comparison finishes the count. This is
the same integer `searchsorted(T, acc, side="right")` gives (tests compare both on extreme codes).
"""
from __future__ import annotations

from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from aezip.network.model import DecoderLayers

ARITHMETIC = "fixed-point-v1"   # recorded in every .aez header: what the decoder must reproduce
ACT_FRAC_BITS = 12
ACT_LIMIT = 2 ** 24             # hidden activations are clamped to [0, ACT_LIMIT) in fixed point (4096.0)
WEIGHT_LIMIT = 2 ** 15 - 1
EXACT_LIMIT = 2 ** 52           # bound on |accumulator| that keeps every float64 partial sum exact
FLOAT32_LIMIT = 2 ** 24         # the same for float32 (pixel models quantized for it: quantize_mlp_float32)
SHIFT_LIMIT = 62                # |hidden right shift| a model file may hold (modelcheck)
_MAX_BUCKETS = 1 << 16          # threshold buckets beyond this fall back to a binary search
ROW_BLOCK = 512                 # rows decoded together (one task of a thread pool)


@dataclass
class _Layer:
    """One layer ready to run: float64 weights (in x out), and the bias with the rounding half folded in."""

    w: np.ndarray
    b: np.ndarray
    scale: float      # 2^-shift (hidden layers; 1.0 for the last)
    floor: bool       # hidden layer with a right shift: round half up by floor((acc + half) * 2^-shift)


@dataclass
class _Thresholds:
    """Bucketed output thresholds: pixel = count[bucket] + (acc >= next[bucket]) for acc shifted by the base."""

    inv_width: float
    count: np.ndarray    # uint8, thresholds <= the bucket's start
    next: np.ndarray     # float64, the first threshold above the bucket's start (shifted), +inf past the last


@dataclass
class IntegerDecoder:
    """Integer weights (out x in), biases and right shifts per layer, and the output thresholds."""

    weights: list[np.ndarray]
    biases: list[np.ndarray]
    shifts: list[int]            # hidden layers: accumulator >> shift gives ACT_FRAC_BITS fractional bits
    thresholds: np.ndarray       # 255 sorted int64 thresholds on the last accumulator
    _plan: tuple[list[_Layer], _Thresholds | None, float] | None = field(default=None, repr=False, compare=False)

    def tensors(self) -> dict[str, np.ndarray]:
        """Flat arrays for the model file."""
        out: dict[str, np.ndarray] = {"intdec.thresholds": self.thresholds,
                                      "intdec.shifts": np.asarray(self.shifts, np.int64)}
        for i, (w, b) in enumerate(zip(self.weights, self.biases)):
            out[f"intdec.w{i}"] = w
            out[f"intdec.b{i}"] = b
        return out

    @classmethod
    def from_tensors(cls, t: dict[str, np.ndarray]) -> "IntegerDecoder":
        n = sum(1 for k in t if k.startswith("intdec.w"))
        return cls([t[f"intdec.w{i}"] for i in range(n)], [t[f"intdec.b{i}"] for i in range(n)],
                   [int(s) for s in t["intdec.shifts"]], t["intdec.thresholds"])

    def plan(self) -> tuple[list[_Layer], _Thresholds | None, float]:
        """The float64 layers and threshold buckets, made on first use and kept."""
        if self._plan is None:
            self._plan = _make_plan(self)
        return self._plan


def weight_shift(w: np.ndarray, b: np.ndarray, in_limit: float, in_frac: int, limit: int = WEIGHT_LIMIT,
                 acc_limit: float = EXACT_LIMIT) -> int:
    """The largest power-of-two weight scale with |w_q| <= limit (<= WEIGHT_LIMIT) and every accumulator of the
    layer (out x in weights) below acc_limit (EXACT_LIMIT: exact)."""
    s = int(np.floor(np.log2(limit / max(float(np.abs(w).max()), 1e-30))))
    while True:
        bound = (np.abs(np.round(w * 2.0 ** s)).sum(1) * in_limit + np.abs(b) * 2.0 ** (s + in_frac) + 1).max()
        if bound < acc_limit:
            return s
        s -= 1


def layer_input(i: int, first_limit: float) -> tuple[float, int]:
    """(bound on |input|, its fractional bits) of layer i of a quantized MLP whose first layer's integer inputs stay
    within first_limit: later layers take hidden activations (< ACT_LIMIT, ACT_FRAC_BITS fractional bits)."""
    return (first_limit, 0) if i == 0 else (float(ACT_LIMIT), ACT_FRAC_BITS)


def quantize_mlp(weights: list[np.ndarray], biases: list[np.ndarray], in_limit: float,
                 weight_limit: int = WEIGHT_LIMIT) -> tuple[list[np.ndarray], list[np.ndarray], list[int], int]:
    """Integer weights (|w| <= weight_limit), biases and hidden right shifts of a float ReLU MLP whose integer inputs
    stay within in_limit, and the fractional bits of its last accumulator: every layer exact (weight_shift), hidden
    activations with ACT_FRAC_BITS fractional bits, clamped to ACT_LIMIT. A shift may be negative (a left shift,
    exact too) where a small weight_limit leaves the accumulator fewer than ACT_FRAC_BITS fractional bits."""
    qw, qb, shifts = [], [], []
    for i, (w, b) in enumerate(zip(weights, biases)):
        layer_limit, in_frac = layer_input(i, in_limit)
        s = weight_shift(w, b, layer_limit, in_frac, weight_limit)
        acc_bits = s + in_frac
        qw.append(np.round(w * 2.0 ** s).astype(np.int32))
        qb.append(np.round(b * 2.0 ** acc_bits).astype(np.int64))
        if i < len(weights) - 1:
            shifts.append(acc_bits - ACT_FRAC_BITS)
    return qw, qb, shifts, acc_bits


Box = tuple[float, float | np.ndarray]   # every input of a layer within [lo, hi] (hi: one bound, or one per input)


def quantize_mlp_float32(weights: list[np.ndarray], biases: list[np.ndarray], boxes: list[Box]
                         ) -> tuple[list[np.ndarray], list[np.ndarray], list[int], int]:
    """quantize_mlp's integers for a float ReLU MLP whose integer inputs lie in one of `boxes`, but exact in float32
    (float32_exact): each layer's weight scale the largest that keeps every accumulator below 2^23 for the inputs the
    previous layer can reach, and each hidden layer's fractional bits chosen to split the next layer's room evenly
    between its weights' and its inputs' precision. The weight scale is at most 2^38 and the fractional bits stay in
    0..24, so every shift s + in_frac - frac stays within SHIFT_LIMIT even for degenerate layers (all but zero)."""
    qw, qb, shifts, acc_bits, in_frac = [], [], [], 0, 0
    for i, (w, b) in enumerate(zip(weights, biases)):
        s = min(int(np.floor(np.log2(WEIGHT_LIMIT / max(float(np.abs(w).max()), 1e-30)))), 38)
        while True:
            qw_i, qb_i = np.round(w * 2.0 ** s), np.round(b * 2.0 ** (s + in_frac))
            reach, top = _reach(qw_i, qb_i, boxes)
            if reach.max() < FLOAT32_LIMIT // 2:
                break
            s -= 1
        acc_bits = s + in_frac
        qw.append(qw_i.astype(np.int32))
        qb.append(qb_i.astype(np.int64))
        if i == len(weights) - 1:
            break
        real = np.maximum(top * 2.0 ** -acc_bits, 1e-30)     # the largest activation of each unit, real units
        nxt = weights[i + 1]
        room = np.log2(FLOAT32_LIMIT / 2 / max(float(_reach(nxt, np.zeros(len(nxt)), [(0.0, real)])[0].max()), 1e-30))
        frac = int(np.floor((room + np.log2(max(float(np.abs(nxt).max()), 1e-30)) - np.log2(float(real.max()))) / 2))
        frac = min(max(frac, 0), 24)
        shifts.append(acc_bits - frac)
        boxes, in_frac = [(0.0, _activation_limit(top, shifts[-1]))], frac
    return qw, qb, shifts, acc_bits


def _reach(w: np.ndarray, b: np.ndarray, boxes: list[Box]) -> tuple[np.ndarray, np.ndarray]:
    """For a layer (out x in) whose inputs lie in one of the boxes: the largest |partial sum| a GEMM can form in any
    order, bias included at the end, and the largest accumulator, per output (float64: exact for these sizes)."""
    w = np.asarray(w, np.float64)
    reach, top = np.zeros(len(w)), np.full(len(w), -np.inf)
    for lo, hi in boxes:
        wl, wh = w * lo, w * hi
        pos = np.maximum(np.maximum(wl, wh), 0.0).sum(1)
        neg = -np.minimum(np.minimum(wl, wh), 0.0).sum(1)
        reach = np.maximum(reach, np.maximum(pos, neg) + np.abs(b))
        top = np.maximum(top, np.maximum(wl, wh).sum(1) + b)
    return reach, top


def _activation_limit(top: np.ndarray, shift: int) -> np.ndarray:
    """The largest activation each hidden unit can output from accumulators up to top: rounded half up by 2^shift,
    clamped to [0, ACT_LIMIT)."""
    half = 2.0 ** (shift - 1) if shift > 0 else 0.0
    return np.clip(np.floor((top + half) * 2.0 ** -shift), 0.0, float(ACT_LIMIT - 1))


def float32_exact(weights: list[np.ndarray], biases: list[np.ndarray], shifts: list[int] | np.ndarray,
                  boxes: list[Box]) -> bool:
    """Whether an integer MLP (quantize_mlp's layout) whose inputs lie in one of `boxes` gives the same integers in
    float32 as in float64. Proof where it returns True: each layer's inputs are integers in a box (the first layer's
    given; a hidden layer's [0, the largest activation the previous layer can reach]), so every partial sum of its
    GEMM, and the sum with the bias, is an integer of magnitude at most _reach's bound < 2^24, held exactly by a
    float32; scaling by 2^-s is exact, and for s > 0 adding 1/2 gives (acc + 2^(s-1)) 2^-s, exact because
    reach + 2^(s-1) < 2^24 is checked too; floor and the clamp to ACT_LIMIT - 1 = 2^24 - 1 are exact. The last
    layer needs only reach < 2^24 (its accumulator then goes to float64 exactly)."""
    for i, (w, b) in enumerate(zip(weights, biases)):
        reach, top = _reach(w, np.asarray(b, np.float64), boxes)
        if i == len(weights) - 1:
            return bool((reach < FLOAT32_LIMIT).all())
        s = int(shifts[i])
        if not (reach + (2.0 ** (s - 1) if s > 0 else 0.0) < FLOAT32_LIMIT).all():
            return False
        boxes = [(0.0, _activation_limit(top, s))]
    return True


def build_integer_decoder(layers: DecoderLayers, levels: int, weight_bits: int = 16) -> IntegerDecoder:
    """Quantize a float decoder to signed weight_bits-bit weights (16: |w| <= WEIGHT_LIMIT); its first layer takes
    the integer codes directly (1/(levels-1) folded in)."""
    weights = [w.double().cpu().numpy() for w in layers.weights]
    weights[0] = weights[0] / (levels - 1)
    biases = [b.double().cpu().numpy() for b in layers.biases]
    qw, qb, shifts, acc_bits = quantize_mlp(weights, biases, float(levels - 1), 2 ** (weight_bits - 1) - 1)
    p = (np.arange(1, 256, dtype=np.float64) - 0.5) / 255.0
    thresholds = np.ceil(np.log(p / (1.0 - p)) * 2.0 ** acc_bits).astype(np.int64)
    return IntegerDecoder(qw, qb, shifts, thresholds)


def _bucket_thresholds(t: np.ndarray) -> tuple[float, _Thresholds] | None:
    """(base, buckets) for sorted distinct int64 thresholds, or None where buckets would not pay."""
    gaps = np.diff(t)
    if len(t) == 0 or (gaps <= 0).any() or np.abs(t).max() >= EXACT_LIMIT // 2:
        return None
    width = 1 << max(int(np.floor(np.log2(gaps.min()))), 0) if len(gaps) else 1
    base = int(t[0]) - width
    n = (int(t[-1]) - base) // width + 2
    if n > _MAX_BUCKETS:
        return None
    starts = base + width * np.arange(n, dtype=np.int64)
    count = np.searchsorted(t, starts, side="right")
    nxt = np.append(t - base, np.inf).astype(np.float64)[count]
    return float(base), _Thresholds(1.0 / width, count.astype(np.uint8), nxt)


def _make_plan(dec: IntegerDecoder) -> tuple[list[_Layer], _Thresholds | None, float]:
    """Weights as float64 (in x out), biases with the rounding half and the threshold base folded in."""
    buckets = _bucket_thresholds(np.asarray(dec.thresholds, np.int64))
    base, table = buckets if buckets else (0.0, None)
    layers = []
    for i, (w, b) in enumerate(zip(dec.weights, dec.biases)):
        w64 = np.ascontiguousarray(np.asarray(w, np.float64).T)
        b64 = np.asarray(b, np.float64)
        if i < len(dec.shifts):
            s = dec.shifts[i]
            layers.append(_Layer(w64, b64 + (2.0 ** (s - 1) if s > 0 else 0.0), 2.0 ** -s, s > 0))
        else:
            layers.append(_Layer(w64, b64 - base, 1.0, False))
    return layers, table, base


def integer_decode(dec: IntegerDecoder, codes: np.ndarray, pool: Executor | None = None) -> np.ndarray:
    """Pixels (uint8, n x D) from integer codes (n x latent); identical on every machine.

    Rows go through in blocks of ROW_BLOCK (their activations stay in cache: ~20 % faster than 1,024 at once); with
    a thread pool the blocks run on its threads, each with single-threaded BLAS. Each row's pixels depend on that
    row alone and every sum is exact, so blocking and threads never change a pixel."""
    codes = np.asarray(codes)
    dec.plan()                              # made once, before any thread needs it
    blocks = [codes[i:i + ROW_BLOCK] for i in range(0, len(codes), ROW_BLOCK)]
    if len(blocks) <= 1:
        return _decode_rows(dec, codes)
    parts = pool.map(lambda b: _decode_rows(dec, b), blocks) if pool is not None else \
        (_decode_rows(dec, b) for b in blocks)
    return np.concatenate(list(parts))


def _decode_rows(dec: IntegerDecoder, codes: np.ndarray) -> np.ndarray:
    """integer_decode on one block of rows."""
    layers, table, base = dec.plan()
    h = np.asarray(codes, dtype=np.float64)
    for layer in layers[:-1]:
        acc = h @ layer.w
        acc += layer.b
        if layer.scale != 1.0:
            acc *= layer.scale
        if layer.floor:
            np.floor(acc, out=acc)
        h = np.clip(acc, 0.0, float(ACT_LIMIT - 1), out=acc)
    acc = h @ layers[-1].w
    acc += layers[-1].b                     # acc - base: the shifted accumulator
    if table is None:
        return np.searchsorted(np.asarray(dec.thresholds, np.float64) - base, acc, side="right").astype(np.uint8)
    idx = np.multiply(acc, table.inv_width)
    np.clip(idx, 0.0, float(len(table.count) - 1), out=idx)
    idx = idx.astype(np.intp)               # truncation is the floor: idx >= 0
    pixels = np.take(table.count, idx)
    pixels += acc >= np.take(table.next, idx)
    return pixels
