"""The learned pixel model: per-pass integer MLPs that code a chunk's pixels in (1 + 3L)*C parallel passes, exactly.

Passes, coarse to fine (schedule()): the grid of step 2^L first, then for g = 2^(L-1) .. 1 the three phases (g, g),
(0, g), (g, 0) of the grid of step 2g (L = 1 is the 2x2 interleave (0,0), (1,1), (0,1), (1,0)); within each the
channels in order. Each pass is one batched computation over every image and pixel of the chunk, so the number of
sequential steps is (1 + 3L)*C whatever the image size. A pixel's features (integers 0..255) are the 5x5 window,
dilated by the pass's g, of its channel on the canvas (decoded values where an earlier pass decoded them, the
autoencoder's prediction elsewhere, 0 outside the image), the 3x3 dilated window of the prediction itself, and for
channel c > 0 the 3x3 dilated window of channel c-1 on the canvas.

The network sees the features relative to a reference r, the nearest pixel of the channel an earlier pass decoded
(the prediction in the first pass), appended as the last feature (integers in -255..255, so a change of brightness
does not change its input), and its first output is the mean's offset from r.
The pass's MLP (ReLU hidden layers, two outputs) runs in integer arithmetic: weights are integers with a
power-of-two scale per layer (|w| <= WEIGHT_LIMIT), hidden activations keep ACT_FRAC_BITS fractional bits
(rounded half up, clamped to [0, ACT_LIMIT)), and the matmuls run in float64 on integers. Exactness bound: a layer's
accumulator is sum_j w_ij h_j + b_i with |h_j| <= in_limit (255 for the first layer, ACT_LIMIT after), so every
partial sum is at most sum_j |w_ij| in_limit + |b_i|, which the quantizer keeps below EXACT_LIMIT = 2^52 (and
modelcheck refuses a model file where it is not below 2^51): every partial sum is an integer below 2^53, exact in
float64 in any order, on any device or thread count. The outputs are turned into integers without float ambiguity:
mu_int = clamp(r + o, 0, 255) where o + 255 is the number of the 510 integer thresholds ceil((k - 1/2) 2^a),
k = -254..255, the offset accumulator reaches (o = clamp(round(offset), -255, 255)), and the scale class s = the
number of the S-1 integer thresholds (quantiles of the training accumulators) the log-scale accumulator reaches.

Distributions: two learned integer tables, counted on the training images with the integer network, scaled to
TABLE_TOTAL per row, plus 1, stored in the model file: T[s][mu_int >> 3][v] (v = 0..255, smoothed towards U; fits
bimodal data like MNIST) and the shift-invariant U[s][v - mu_int + 255] (renormalised over 0..255; generalises to new
images). For E > 0 a bin's frequency is the sum of its members'. Within a pass the pixels are grouped by key
((s, mu_int >> 3) for T, (s, mu_int) for U): keys ascending, raster order (image, row, column) inside a group, each
group coded with ONE Categorical model (its row divided by its integer total, one exact division per entry), so
both sides build identical models; the decoder rebuilds the same groups because the keys depend on earlier passes
only. After each pass both sides may add an increment to the counts of the symbols just coded (per-chunk
adaptation). The encoder codes every VARIANT (table x increment) in the same run of the networks and keeps the
shortest stream, whose first byte names it.

A model file may hold two pixel models: one given the autoencoder's prediction (tensors pixel.*, WITH_LATENTS) and
one that needs no latents (pixel0.*, ALONE), whose prediction is its base image, the rounded mean of its training
images, for every image; the code is the same.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import constriction

from . import bins
from .intdecoder import ACT_LIMIT

PIXEL_MLP = "pixel-mlp-v1"
MAX_PIXEL_LEVELS = 4
MU_BUCKET_BITS = 3
MU_BUCKETS = 256 >> MU_BUCKET_BITS
TABLE_TOTAL = 1 << 16
BUCKET, OFFSET = 0, 1
# (table, adaptation): the table T[s][mu >> 3][v] or U[s][v - mu]; the counts added per coded symbol after each pass
VARIANTS = ((BUCKET, 0), (BUCKET, 128), (OFFSET, 0), (OFFSET, 32))
INPUT_LIMIT = 255          # |feature - reference| <= 255
WITH_LATENTS, ALONE = "pixel.", "pixel0."   # model-file names of the two pixel models (alone: no latents needed)
_MODEL_FAMILY = constriction.stream.model.Categorical


def channels(image_shape: tuple[int, ...]) -> int:
    return image_shape[2] if len(image_shape) == 3 else 1


def schedule(levels: int) -> list[tuple[int, int, int, int]]:
    """Each pass's pixels (rows and columns start::step) and its window's dilation, coarse to fine: the grid of
    step 2^levels, then for g = 2^(levels-1) .. 1 the phases (g, g), (0, g), (g, 0) of the grid of step 2g."""
    top = 1 << levels
    out = [(top, 0, 0, top >> 1)]
    for g in (1 << i for i in range(levels - 1, -1, -1)):
        out += [(2 * g, g, g, g), (2 * g, 0, g, g), (2 * g, g, 0, g)]
    return out


def n_passes(image_shape: tuple[int, ...], levels: int) -> int:
    return len(schedule(levels)) * channels(image_shape)


def levels_of(passes: int, image_shape: tuple[int, ...]) -> int | None:
    """The number of levels a model with this many passes has, or None if no number fits."""
    per_channel, rest = divmod(passes, channels(image_shape))
    fits = not rest and per_channel % 3 == 1 and 1 <= per_channel // 3 <= MAX_PIXEL_LEVELS
    return per_channel // 3 if fits else None


def n_features(channel: int) -> int:
    """Inputs of a pass's MLP: 5x5 canvas + 3x3 prediction (+ 3x3 of the previous channel) + the reference."""
    return 25 + 9 + (9 if channel > 0 else 0) + 1


def _reference(geometry: tuple[int, int, int, int]) -> tuple[int, int]:
    """Where the reference lies in the pass's dilated 5x5 canvas window: the nearest pixel an earlier pass decoded
    (up-left, left or up for the phases (g, g), (0, g), (g, 0)); the first pass has none (its caller uses the
    prediction)."""
    _, py, px, _ = geometry
    return (-1 if py else 0, -1 if px else 0)


def _windows(plane: np.ndarray, geometry: tuple[int, int, int, int], radius: int) -> list[np.ndarray]:
    """The (2r+1)^2 neighbours (dilated) of every pass position (n x H x W plane, 0 outside): n x h x w each."""
    step, py, px, dil = geometry
    n, hgt, wid = plane.shape
    hh, ww, pad = len(range(py, hgt, step)), len(range(px, wid, step)), radius * dil
    padded = np.zeros((n, hgt + 2 * pad, wid + 2 * pad), plane.dtype)
    padded[:, pad:pad + hgt, pad:pad + wid] = plane
    out = []
    for dy in range(-radius, radius + 1):
        for dx in range(-radius, radius + 1):
            y0, x0 = py + dy * dil + pad, px + dx * dil + pad
            out.append(padded[:, y0:y0 + step * hh:step, x0:x0 + step * ww:step][:, :hh, :ww])
    return out


def pass_features(canvas: np.ndarray, pred: np.ndarray, k: int, levels: int) -> np.ndarray:
    """Features of pass k's pixels (float64 rows in raster order over n x h x w), from canvas and prediction
    (n x H x W x C)."""
    geometry, c = schedule(levels)[k // canvas.shape[3]], k % canvas.shape[3]
    parts = _windows(canvas[..., c], geometry, 2) + _windows(pred[..., c], geometry, 1)
    if c > 0:
        parts += _windows(canvas[..., c - 1], geometry, 1)
    dy, dx = _reference(geometry)
    parts.append(parts[25 + 4] if (dy, dx) == (0, 0) else parts[(dy + 2) * 5 + dx + 2])
    feats = np.empty((parts[0].size, len(parts)), np.float64)
    for j, p in enumerate(parts):
        feats[:, j] = p.reshape(-1)
    return feats


def pass_slice(k: int, nchan: int, levels: int) -> tuple[slice, slice, int]:
    """Where pass k's pixels lie in an n x H x W x C array: rows, columns, channel."""
    (step, py, px, _), c = schedule(levels)[k // nchan], k % nchan
    return slice(py, None, step), slice(px, None, step), c


@dataclass
class PixelMLP:
    """Integer weights (out x in), biases and shifts per pass and layer, output thresholds, and the table."""

    weights: list[list[np.ndarray]]    # [pass][layer] int32
    biases: list[list[np.ndarray]]     # [pass][layer] int64
    shifts: np.ndarray                 # passes x hidden layers, int64
    mu_thresholds: np.ndarray          # passes x 510, int64, sorted
    s_thresholds: np.ndarray           # passes x (S-1), int64, sorted
    table: np.ndarray                  # S x MU_BUCKETS x 256, int32, every entry >= 1: T[s][mu >> 3][v]
    offset_table: np.ndarray           # S x 511, int32, every entry >= 1: U[s][v - mu + 255]
    base: np.ndarray | None = None     # D uint8: the prediction of a model that codes without latents (else None)

    @property
    def scales(self) -> int:
        return self.table.shape[0]

    def levels(self, image_shape: tuple[int, ...]) -> int:
        """Coarse-to-fine levels of the pass schedule (the model file's pass count implies it; checked on load)."""
        return (len(self.weights) // channels(image_shape) - 1) // 3

    def tensors(self, prefix: str = WITH_LATENTS) -> dict[str, np.ndarray]:
        """Flat arrays for the model file, named prefix + name."""
        out = {"shifts": self.shifts, "mu_thresholds": self.mu_thresholds, "s_thresholds": self.s_thresholds,
               "table": self.table, "offset_table": self.offset_table}
        if self.base is not None:
            out["base"] = self.base
        for k, (ws, bs) in enumerate(zip(self.weights, self.biases)):
            for i, (w, b) in enumerate(zip(ws, bs)):
                out[f"p{k}.w{i}"] = w
                out[f"p{k}.b{i}"] = b
        return {prefix + k: np.ascontiguousarray(v) for k, v in out.items()}   # safetensors stores the raw buffer

    @classmethod
    def from_tensors(cls, t: dict[str, np.ndarray], prefix: str = WITH_LATENTS) -> "PixelMLP | None":
        """The pixel model named prefix + ... in a model file's tensors, or None if it has none."""
        if prefix + "table" not in t:
            return None
        t = {k[len(prefix):]: v for k, v in t.items() if k.startswith(prefix)}
        passes, layers = t["mu_thresholds"].shape[0], t["shifts"].shape[1] + 1
        return cls([[t[f"p{k}.w{i}"] for i in range(layers)] for k in range(passes)],
                   [[t[f"p{k}.b{i}"] for i in range(layers)] for k in range(passes)],
                   t["shifts"], t["mu_thresholds"], t["s_thresholds"], t["table"], t["offset_table"], t.get("base"))

    def prediction(self, n: int) -> np.ndarray:
        """What a model without latents sees as the prediction of n images: its base image each (n x D int64)."""
        return np.broadcast_to(self.base.astype(np.int64), (n, self.base.size))

    def accumulators(self, k: int, feats: np.ndarray) -> np.ndarray:
        """Pass k's integer output accumulators (rows x 2: mean offset from the reference, log-scale) for integer
        features; the network sees them relative to the reference r (exact: integers in -255..255)."""
        h = feats - feats[:, -1:]   # the reference is the last feature
        ws, bs = self.weights[k], self.biases[k]
        for i, (w, b) in enumerate(zip(ws, bs)):
            acc = h @ w.astype(np.float64).T
            acc += b.astype(np.float64)
            if i < len(ws) - 1:
                h = np.clip(rescale(acc, int(self.shifts[k][i])), 0.0, float(ACT_LIMIT - 1), out=acc)
        return acc

    def classes(self, k: int, feats: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Each pixel's integer mean mu_int = clamp(r + round(offset), 0, 255) and scale class s (0..S-1) in pass k."""
        acc = self.accumulators(k, feats)
        offset = np.searchsorted(self.mu_thresholds[k].astype(np.float64), acc[:, 0], side="right") - 255
        mu = np.clip(feats[:, -1].astype(np.int64) + offset, 0, 255)
        s = np.searchsorted(self.s_thresholds[k].astype(np.float64), acc[:, 1], side="right")
        return mu, s

    def keys(self, k: int, feats: np.ndarray) -> np.ndarray:
        """Each pixel's table row: s * MU_BUCKETS + (mu_int >> MU_BUCKET_BITS)."""
        mu, s = self.classes(k, feats)
        return s * MU_BUCKETS + (mu >> MU_BUCKET_BITS)


def rescale(acc: np.ndarray, shift: int) -> np.ndarray:
    """Round-half-up division by 2^shift (multiplication when shift < 0), in place. Exact in float64: scaling an
    integer below 2^52 by a power of two is exact, and so is adding 1/2 to the result (it keeps < 53 bits)."""
    acc *= float(2.0 ** -shift)
    if shift > 0:
        acc += 0.5
        np.floor(acc, out=acc)
    return acc


def mu_thresholds(acc_bits: int) -> np.ndarray:
    """Integer thresholds whose count reached by an accumulator, minus 255, is clamp(round(offset), -255, 255)."""
    return np.ceil((np.arange(-254, 256, dtype=np.float64) - 0.5) * 2.0 ** acc_bits).astype(np.int64)


class _Rows:
    """One variant's integer frequency rows over the bins, keyed by (s, mu >> 3) or (s, mu), and their adaptation."""

    def __init__(self, mlp: PixelMLP, variant: int, max_error: int) -> None:
        self.kind, self.increment = VARIANTS[variant]
        self.max_error = max_error
        if self.kind == BUCKET:
            self.rows = bins.sum_into_bins(mlp.table.reshape(-1, 256), max_error)
        else:
            self.counts = mlp.offset_table.astype(np.int64)

    def keys(self, mu: np.ndarray, s: np.ndarray) -> np.ndarray:
        return s * MU_BUCKETS + (mu >> MU_BUCKET_BITS) if self.kind == BUCKET else s * 256 + mu

    def model(self, key: int):
        """The Categorical of one key: its row divided by its integer total (one exact division per entry)."""
        if self.kind == BUCKET:
            row = self.rows[key]
        else:
            s, mu = divmod(key, 256)
            row = bins.sum_into_bins(self.counts[s, 255 - mu:511 - mu], self.max_error)
        return _MODEL_FAMILY(row / row.sum(), perfect=False)

    def adapt(self, keys: np.ndarray, symbols: np.ndarray) -> None:
        """After a pass, both sides add the increment per coded symbol (integer counts, identical everywhere): later
        passes learn the chunk's own statistics. The offset table counts a bin at its decoded value."""
        if not self.increment:
            return
        if self.kind == BUCKET:
            np.add.at(self.rows, (keys, symbols), self.increment)
        else:
            s, mu = np.divmod(keys, 256)
            value = bins.values(symbols, self.max_error)
            np.add.at(self.counts, (s, value - mu + 255), self.increment)


def _groups(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pixel order (keys ascending, raster inside), distinct keys and where each group starts/ends."""
    order = np.argsort(keys, kind="stable")
    uniq, counts = np.unique(keys[order], return_counts=True)
    return order, uniq, np.concatenate([[0], np.cumsum(counts)])


def _canvas(pred: np.ndarray | None, n: int, image_shape: tuple[int, ...]) -> np.ndarray:
    shape = (n, image_shape[0], image_shape[1], channels(image_shape))
    return np.zeros(shape, np.int64) if pred is None else pred.reshape(shape).astype(np.int64)


def encode_mlp(mlp: PixelMLP, x: np.ndarray, pred: np.ndarray, image_shape: tuple[int, ...],
               max_error: int) -> tuple[bytes, np.ndarray]:
    """Code x (n x D uint8) pass by pass given the prediction; returns the bytes and the decoder's pixels. The
    stream is the shortest over VARIANTS (its first byte names the one used): mu and s do not depend on it, so every
    variant shares one run of the networks."""
    _, nbins = bins.geometry(max_error)
    canvas = _canvas(pred, len(x), image_shape)
    predc = canvas.copy()
    target = bins.to_bins(x.reshape(canvas.shape), max_error)
    recon = bins.values(target, max_error)
    if nbins == 1:
        return b"", recon.reshape(x.shape).astype(np.uint8)
    rows = [_Rows(mlp, v, max_error) for v in range(len(VARIANTS))]
    coders = [constriction.stream.queue.RangeEncoder() for _ in VARIANTS]
    levels = mlp.levels(image_shape)
    for k in range(n_passes(image_shape, levels)):
        ys, xs, c = pass_slice(k, canvas.shape[3], levels)
        mu, s = mlp.classes(k, pass_features(canvas, predc, k, levels))
        values = target[:, ys, xs, c].reshape(-1)
        for coder, row in zip(coders, rows):
            keys = row.keys(mu, s)
            order, uniq, bounds = _groups(keys)
            symbols = values[order].astype(np.int32)
            for g, key in enumerate(uniq):
                coder.encode(symbols[bounds[g]:bounds[g + 1]], row.model(int(key)))
            row.adapt(keys, values)
        canvas[:, ys, xs, c] = recon[:, ys, xs, c]
    streams = [bytes([i]) + coder.get_compressed().astype("<u4").tobytes() for i, coder in enumerate(coders)]
    return min(streams, key=len), recon.reshape(x.shape).astype(np.uint8)


def decode_mlp(mlp: PixelMLP, data: bytes, pred: np.ndarray, image_shape: tuple[int, ...],
               max_error: int) -> np.ndarray:
    """Inverse of encode_mlp: the decoded pixels (n x D uint8)."""
    _, nbins = bins.geometry(max_error)
    canvas = _canvas(pred, len(pred), image_shape)
    predc = canvas.copy()
    if nbins == 1:
        if data:
            raise ValueError("a pixel-model stream where none is coded")
        return np.full(pred.shape, min(max_error, 255), np.uint8)
    if len(data) % 4 != 1 or data[0] >= len(VARIANTS):
        raise ValueError("pixel-model stream: bad variant byte or not a whole number of 32-bit words")
    row = _Rows(mlp, data[0], max_error)
    coder = constriction.stream.queue.RangeDecoder(np.frombuffer(data[1:], dtype="<u4").astype(np.uint32))
    levels = mlp.levels(image_shape)
    for k in range(n_passes(image_shape, levels)):
        ys, xs, c = pass_slice(k, canvas.shape[3], levels)
        keys = row.keys(*mlp.classes(k, pass_features(canvas, predc, k, levels)))
        order, uniq, bounds = _groups(keys)
        symbols = np.empty(len(order), np.int64)
        for g, key in enumerate(uniq):
            symbols[bounds[g]:bounds[g + 1]] = coder.decode(row.model(int(key)), int(bounds[g + 1] - bounds[g]))
        values = np.empty(len(order), np.int64)
        values[order] = symbols
        row.adapt(keys, values)
        view = canvas[:, ys, xs, c]
        canvas[:, ys, xs, c] = bins.values(values.reshape(view.shape), max_error)
    return canvas.reshape(pred.shape).astype(np.uint8)
