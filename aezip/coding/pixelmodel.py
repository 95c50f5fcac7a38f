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
power-of-two scale per layer (|w| <= WEIGHT_LIMIT), hidden activations are the accumulator shifted right by a
stored amount (rounded half up, clamped to [0, ACT_LIMIT)), and the matmuls run in float64 on integers.
Exactness bound: a layer's accumulator is sum_j w_ij h_j + b_i with |h_j| <= in_limit (255 for the first layer,
ACT_LIMIT after), so every partial sum is at most sum_j |w_ij| in_limit + |b_i|, which the quantizer keeps below
EXACT_LIMIT = 2^52 (and modelcheck refuses a model file where it is not below 2^51): every partial sum is an integer
below 2^53, exact in float64 in any order, on any device or thread count. The trainer quantizes for float32 instead
(intdecoder.quantize_mlp_float32: every accumulator below 2^23 for the inputs the layer can see), and a pass whose
network intdecoder.float32_exact proves exact in float32 (checked on load, per pass) runs there, ~4x faster, with
the same integers; other passes (older model files) run in float64. The outputs become integers without ambiguity:
mu_int = clamp(r + o, 0, 255) where o + 255 is the number of the 510 integer thresholds ceil((k - 1/2) 2^a),
k = -254..255, the offset accumulator reaches (o = clamp(round(offset), -255, 255)), and the scale class s = the
number of the S-1 integer thresholds (quantiles of the training accumulators) the log-scale accumulator reaches.

The tables a pass's classes index, their variants, and the range coding: pixelcoding.py.

A model file may hold two pixel models: one given the autoencoder's prediction (tensors pixel.*, WITH_LATENTS) and
one that needs no latents (pixel0.*, ALONE), whose prediction is its base image, the rounded mean of its training
images, for every image; the code is the same.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from aezip.coding import bins
from aezip.coding.intdecoder import ACT_LIMIT, float32_exact
from aezip.threads import block_pool

MAX_PIXEL_LEVELS = 4
MU_BUCKET_BITS = 3
MU_BUCKETS = 256 >> MU_BUCKET_BITS
TABLE_TOTAL = 1 << 16
ROW_BLOCK = 4096   # rows of a pass through features and the integer MLP at a time (pass_inputs)
REPEATS = 6   # repeat_context()'s classes (pixelcoding's REFERENCE rows split by them)
INPUT_LIMIT = 255          # |feature - reference| <= 255
# ... more precisely, features f and the reference r are 0..255, so for one r every input f - r lies in [-r, 255 - r];
# the float32 bounds (intdecoder._reach) are convex in r, so the boxes of r = 0 and r = 255 bound them all
INPUT_BOXES = [(0.0, float(INPUT_LIMIT)), (-float(INPUT_LIMIT), 0.0)]
WITH_LATENTS, ALONE = "pixel.", "pixel0."   # model-file names of the two pixel models (alone: no latents needed)


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


def pass_features(canvas: np.ndarray, pred: np.ndarray, k: int, levels: int,
                  dtype: type = np.float64) -> np.ndarray:
    """Features of pass k's pixels (float rows in raster order over n x h x w), from canvas and prediction
    (n x H x W x C): the dilated 5x5 canvas window of channel c, the 3x3 prediction window, for c > 0 the 3x3 canvas
    window of channel c - 1 (0 outside the image), and the reference."""
    from aezip.coding.pixelkernel import windows_into   # numba: only --max-error coding needs it
    (step, py, px, dil), c = schedule(levels)[k // canvas.shape[3]], k % canvas.shape[3]
    n, hgt, wid = canvas.shape[:3]
    size = n * len(range(py, hgt, step)) * len(range(px, wid, step))
    feats = np.empty((n_features(c), size), dtype)   # one contiguous row per feature
    windows_into(feats, 0, canvas[..., c], step, py, px, dil, 2)
    windows_into(feats, 25, pred[..., c], step, py, px, dil, 1)
    if c > 0:
        windows_into(feats, 34, canvas[..., c - 1], step, py, px, dil, 1)
    dy, dx = _reference((step, py, px, dil))
    feats[-1] = feats[25 + 4] if (dy, dx) == (0, 0) else feats[(dy + 2) * 5 + dx + 2]
    return feats.T


def repeat_context(feats: np.ndarray, k: int, nchan: int, levels: int, out: np.ndarray | None = None) -> np.ndarray:
    """How much pass k's neighbourhoods repeat the reference r (0..REPEATS-1, from pass_features' rows): 0, 1 or 2
    as at most 2, at most 6 or more of the 25 canvas window entries equal r, + 3 where the previous channel of the
    same pixel equals the previous channel at r's place (channels > 0, passes after the first)."""
    from aezip.coding.pixelkernel import repeats_into   # numba: only --max-error coding needs it
    dy, dx = _reference(schedule(levels)[k // nchan])
    prev = 25 + 9   # the previous channel's 3x3 window follows the 5x5 canvas and the 3x3 prediction
    at, ref = (prev + 4, prev + (dy + 1) * 3 + dx + 1) if k % nchan and (dy, dx) != (0, 0) else (-1, -1)
    q = np.empty(len(feats), np.int64) if out is None else out
    repeats_into(np.ascontiguousarray(feats.T), at, ref, q)   # pass_features' rows: already contiguous
    return q


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
    mu_bits: list[int | None] = field(init=False, repr=False, compare=False)   # per pass: mu_bits(mu_thresholds)
    dtypes: list[type] = field(init=False, repr=False, compare=False)   # per pass: float32 where exact, else float64
    _plan: dict = field(init=False, repr=False, compare=False)          # per pass: _layers()
    tables: dict = field(init=False, repr=False, compare=False)         # what coders derive from the tables, kept

    def __post_init__(self) -> None:
        self.mu_bits = [mu_bits(t) for t in self.mu_thresholds]
        self.dtypes = [np.float32 if float32_exact(ws, bs, sh, INPUT_BOXES) else np.float64
                       for ws, bs, sh in zip(self.weights, self.biases, self.shifts)]
        self._plan, self.tables = {}, {}

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
        features; the network sees them relative to the reference r (exact: integers in -255..255). Rows go
        through all layers ROW_BLOCK at a time (the activations stay in cache: ~2x faster than whole layers);
        every row's result is exact, so the blocking changes no bit. A pass whose network is exact in float32
        (intdecoder.float32_exact) runs in float32, ~4x faster here, with the same integers."""
        from aezip.coding.pixelkernel import activate   # numba: only --max-error coding needs it
        ws, bs, scales = self._layers(k)
        out = np.empty((len(feats), ws[-1].shape[1]))
        for a in range(0, len(feats), ROW_BLOCK):
            h = feats[a:a + ROW_BLOCK].astype(self.dtypes[k], copy=False)
            for w, b, scale in zip(ws[:-1], bs, scales):
                h = h @ w
                activate(h, b, scale, float(ACT_LIMIT - 1))
            acc = h @ ws[-1]
            acc += bs[-1]
            out[a:a + ROW_BLOCK] = acc
        return out

    def _layers(self, k: int) -> tuple[list[np.ndarray], list[np.ndarray], list[float]]:
        """Pass k's weights (in x out) and biases in its dtype, a hidden layer's bias with the rounding half 2^(s-1)
        of its right shift s folded in (exact: the checked bounds include it), and each hidden layer's 2^-s.

        The reference is folded into the first layer too, so the network reads the features as they are: r is the
        last feature, so sum_j w_j (f_j - r) = sum_j w'_j f_j with w'_L = w_L - S, S = sum_j w_j. Still exact: with
        P and N the sums of the positive and negative weights (S = P - N), inputs f - r in the boxes of r = 0 and 255
        bound partial sums by 255 max(P, N), which float32_exact (or, in float64, modelcheck's sum |w| 255) checks;
        over features 0..255 the folded row's partial sums are bounded by 255 max(P', N'), and P', N' <= max(P, N):
        for S >= w_L, P' = P - max(w_L, 0) <= P and N' = P - max(-w_L, 0) - w_L <= P; for S < w_L, P' = N + min(w_L, 0)
        <= N and N' <= N."""
        if k not in self._plan:
            dtype = self.dtypes[k]
            shifts = [int(s) for s in self.shifts[k]]
            first = self.weights[k][0].astype(np.int64)
            first[:, -1] -= first.sum(axis=1)
            ws = [np.ascontiguousarray(w.astype(dtype).T) for w in [first] + self.weights[k][1:]]
            bs = [(b.astype(np.float64) + (2.0 ** (s - 1) if s > 0 else 0.0)).astype(dtype)
                  for b, s in zip(self.biases[k], shifts)] + [self.biases[k][-1].astype(dtype)]
            self._plan[k] = ws, bs, [2.0 ** -s for s in shifts]
        return self._plan[k]

    def classes(self, k: int, feats: np.ndarray, out: tuple[np.ndarray, np.ndarray] | None = None
                ) -> tuple[np.ndarray, np.ndarray]:
        """Each pixel's integer mean mu_int = clamp(r + round(offset), 0, 255) and scale class s (0..S-1) in pass k
        (written into `out`'s two int64 arrays where given)."""
        acc = self.accumulators(k, feats)
        mu, s = out if out is not None else (np.empty(len(acc), np.int64), np.empty(len(acc), np.int64))
        a = self.mu_bits[k]
        if a is not None:   # the same counts by arithmetic (pixelkernel.mu_offset) and a compiled search, in one pass
            from aezip.coding.pixelkernel import classes_into
            classes_into(acc, feats[:, -1], a, self.s_thresholds[k].astype(np.float64), mu, s)
            return mu, s
        offset = np.searchsorted(self.mu_thresholds[k].astype(np.float64), acc[:, 0], side="right") - 255
        mu[:] = np.clip(feats[:, -1].astype(np.int64) + offset, 0, 255)
        s[:] = np.searchsorted(self.s_thresholds[k].astype(np.float64), acc[:, 1], side="right")
        return mu, s

    def keys(self, k: int, feats: np.ndarray) -> np.ndarray:
        """Each pixel's table row: s * MU_BUCKETS + (mu_int >> MU_BUCKET_BITS)."""
        mu, s = self.classes(k, feats)
        return s * MU_BUCKETS + (mu >> MU_BUCKET_BITS)


def mu_thresholds(acc_bits: int) -> np.ndarray:
    """Integer thresholds whose count reached by an accumulator, minus 255, is clamp(round(offset), -255, 255)."""
    return np.ceil((np.arange(-254, 256, dtype=np.float64) - 0.5) * 2.0 ** acc_bits).astype(np.int64)


MU_BITS_LIMIT = 52   # the largest a for which pixelkernel.mu_offset is exact


def mu_bits(thresholds: np.ndarray) -> int | None:
    """The a in 0..MU_BITS_LIMIT with thresholds == mu_thresholds(a), if any (the trainer's thresholds; a model
    file's may be any sorted integers): ceil(2^(a-1)) - ceil(-2^(a-1)) = 2^a names the only candidate."""
    d = int(thresholds[255]) - int(thresholds[254])
    a = d.bit_length() - 1
    if d <= 0 or d != 1 << a or a > MU_BITS_LIMIT or not np.array_equal(thresholds, mu_thresholds(a)):
        return None
    return a


@dataclass
class Pass:
    """One pass's pixels in raster order: integer mean, scale class, reference, repeat context and bin."""

    mu: np.ndarray
    s: np.ndarray
    ref: np.ndarray
    q: np.ndarray
    values: np.ndarray


def start_canvas(pred: np.ndarray | None, n: int, image_shape: tuple[int, ...]) -> np.ndarray:
    """The canvas before the first pass (n x H x W x C int64): the prediction everywhere (zeros without one)."""
    shape = (n, image_shape[0], image_shape[1], channels(image_shape))
    return np.zeros(shape, np.int64) if pred is None else pred.reshape(shape).astype(np.int64)


def pass_inputs(mlp: PixelMLP, canvas: np.ndarray, predc: np.ndarray, k: int, levels: int) -> tuple[np.ndarray, ...]:
    """Pass k's mu, s, reference and repeat context (rows in raster order), a block of images at a time (about
    ROW_BLOCK rows: the features stay in cache instead of a chunk-sized float64 matrix), the blocks spread over the
    block pool's threads where there is one; every row's values depend on its own features only, so neither the
    blocking nor the threads change a bit."""
    step, py, px, _ = schedule(levels)[k // canvas.shape[3]]
    per_image = len(range(py, canvas.shape[1], step)) * len(range(px, canvas.shape[2], step))
    block = max(1, ROW_BLOCK // max(per_image, 1))

    out = tuple(np.empty(len(canvas) * per_image, np.int64) for _ in range(4))   # mu, s, reference, repeats

    def inputs(a: int) -> None:
        feats = pass_features(canvas[a:a + block], predc[a:a + block], k, levels, mlp.dtypes[k])
        rows = slice(a * per_image, a * per_image + len(feats))
        mlp.classes(k, feats, (out[0][rows], out[1][rows]))
        out[2][rows] = feats[:, -1]
        repeat_context(feats, k, canvas.shape[3], levels, out[3][rows])

    starts, pool = range(0, len(canvas), block), block_pool()
    list(pool.map(inputs, starts) if pool is not None and len(starts) > 1 else map(inputs, starts))
    return out


def pass_classes(mlp: PixelMLP, x: np.ndarray, pred: np.ndarray, image_shape: tuple[int, ...],
                 max_error: int) -> tuple[list[Pass], np.ndarray]:
    """Each pass's classes for x (n x D uint8; [] where E leaves one bin) and the decoder's pixels: mu and s do not
    depend on the variant, so every variant codes from one run of the networks."""
    _, nbins = bins.geometry(max_error)
    canvas = start_canvas(pred, len(x), image_shape)
    predc = canvas.copy()
    target = bins.to_bins(x.reshape(canvas.shape), max_error)
    recon = bins.values(target, max_error)
    passes = []
    levels = mlp.levels(image_shape)
    for k in range(n_passes(image_shape, levels) if nbins > 1 else 0):
        ys, xs, c = pass_slice(k, canvas.shape[3], levels)
        passes.append(Pass(*pass_inputs(mlp, canvas, predc, k, levels), target[:, ys, xs, c].reshape(-1)))
        canvas[:, ys, xs, c] = recon[:, ys, xs, c]
    return passes, recon.reshape(x.shape).astype(np.uint8)


def outside_sample(n: int, step: int) -> np.ndarray:
    """The images of n that every step-th image leaves out, in order."""
    return np.setdiff1d(np.arange(n), np.arange(0, n, step))


def merge_classes(sample: tuple[list[Pass], np.ndarray], rest: tuple[list[Pass], np.ndarray], step: int, n: int
                  ) -> tuple[list[Pass], np.ndarray]:
    """pass_classes of n images from those of every step-th image (sample) and of the others (rest,
    outside_sample): a pass's rows are image by image, so each image's rows move as a block."""
    take, others = len(range(0, n, step)), n - len(range(0, n, step))

    def merged(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        out = np.empty((n, *a.shape[1:]), a.dtype)
        out[::step] = a
        if n % step:
            out[outside_sample(n, step)] = b
        else:   # the others are the last step - 1 of every step images: slices, no index arrays
            out.reshape(n // step, step, -1)[:, 1:] = b.reshape(n // step, step - 1, -1)
        return out

    passes = [Pass(*(merged(getattr(p, f).reshape(take, -1), getattr(q, f).reshape(others, -1)).reshape(-1)
                     for f in ("mu", "s", "ref", "q", "values")))
              for p, q in zip(sample[0], rest[0])]
    return passes, merged(sample[1], rest[1])
