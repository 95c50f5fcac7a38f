"""The raster network: a small learned model of each pixel's value given what a raster-order decoder has, mixed into
the mixing coder with latents (method 10, mixkernel.code_values) for one-channel images, at any --max-error.

Inputs (FEATURES integers 0..255, 0 outside the image): the CAUSAL decoded neighbours of the pixel (under E, their
bins' values) and the autoencoder's prediction in the 5x5 window around it. A ReLU MLP (rastertrain.py) gives 256 logits in bits (log2;
out_bits fractional bits), a softmax over the pixel's 256 values.

Integer arithmetic, as the pixel model's (pixelmodel.py): integer weights with a power-of-two scale per layer
(intdecoder.quantize_mlp), hidden activations with ACT_FRAC_BITS fractional bits rounded half up and clamped to
[0, ACT_LIMIT), every accumulator an integer whose partial sums stay below 2^52 (checked when a model file is read),
so the float64 products and sums are exact in any order, on any machine. The logits become integer counts without
a float function: d = floor((max - logit) * 2^(4 - out_bits)) sixteenths of a bit below the largest, count =
EXP2[d & 15] >> (d >> 4), at least 1 (EXP2 the 16 integers round(2^16 * 2^(-k/16)), written out below); at most
256 x 2^16 = 2^24 in all, summed into the bins of E. A decision's probability is its bins' counts' share in 12 bits
(one integer division), which the coder mixes as two more inputs (mixcore.predict's ext).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from aezip.coding.intdecoder import ACT_LIMIT, EXACT_LIMIT

CAUSAL = ((0, -1), (0, -2), (0, -3), (-1, -2), (-1, -1), (-1, 0), (-1, 1), (-1, 2), (-2, -1), (-2, 0), (-2, 1),
          (-3, 0))   # (dy, dx) of the decoded neighbours a pixel's features start with
RADIUS = 2           # then the prediction's (2r+1)^2 window, in raster order
FEATURES = len(CAUSAL) + (2 * RADIUS + 1) ** 2
VALUES = 256
PREFIX = "raster."
EXP2 = np.array([65536, 62757, 60097, 57549, 55109, 52773, 50535, 48393, 46341, 44376, 42495, 40693, 38968, 37316,
                 35734, 34219], np.int64)   # round(2^16 * 2^(-k/16)), k = 0..15


@dataclass
class RasterNet:
    """Integer weights (out x in) and biases per layer, hidden right shifts, and the logits' fractional bits."""

    weights: list[np.ndarray]   # int32
    biases: list[np.ndarray]    # int64
    shifts: np.ndarray          # hidden layers, int64
    out_bits: int

    def tensors(self) -> dict[str, np.ndarray]:
        """Flat arrays for the model file, named raster.*."""
        out = {"shifts": np.asarray(self.shifts, np.int64), "out_bits": np.array([self.out_bits], np.int64)}
        for i, (w, b) in enumerate(zip(self.weights, self.biases)):
            out[f"w{i}"], out[f"b{i}"] = w, b
        return {PREFIX + k: np.ascontiguousarray(v) for k, v in out.items()}

    @classmethod
    def from_tensors(cls, t: dict[str, np.ndarray]) -> "RasterNet | None":
        """The raster network in a model file's tensors, or None if it has none."""
        if PREFIX + "out_bits" not in t:
            return None
        layers = sum(1 for k in t if k.startswith(PREFIX + "w"))
        return cls([t[f"{PREFIX}w{i}"] for i in range(layers)], [t[f"{PREFIX}b{i}"] for i in range(layers)],
                   np.asarray(t[PREFIX + "shifts"], np.int64), int(t[PREFIX + "out_bits"][0]))

    def plan(self) -> tuple:
        """What the compiled coder takes: float64 weights (in x out) and biases of three layers, and [1, shift 0,
        shift 1, out_bits]."""
        w = [np.ascontiguousarray(np.asarray(a, np.float64).T) for a in self.weights]
        b = [np.asarray(a, np.float64) for a in self.biases]
        return (w[0], b[0], w[1], b[1], w[2], b[2],
                np.array([1, int(self.shifts[0]), int(self.shifts[1]), self.out_bits], np.int64))


def no_plan() -> tuple:
    """The compiled coder's argument where there is no raster network."""
    z2, z1 = np.zeros((1, 1)), np.zeros(1)
    return z2, z1, z2, z1, z2, z1, np.zeros(4, np.int64)


def exactness_bound(net: RasterNet) -> float:
    """The largest possible |partial sum| of any layer's accumulator: inputs <= 255, then < ACT_LIMIT."""
    worst, limit = 0.0, 255.0
    for w, b in zip(net.weights, net.biases):
        worst = max(worst, float((np.abs(w.astype(np.float64)).sum(axis=1) * limit + np.abs(b)).max()))
        limit = float(ACT_LIMIT)
    return worst


def is_exact(net: RasterNet) -> bool:
    """Whether the network has the promised shape and stays in exact float64 integer arithmetic."""
    shapes = [w.shape for w in net.weights]
    return (len(shapes) == 3 and shapes[0][1] == FEATURES and shapes[1][1] == shapes[0][0]
            and shapes[2] == (VALUES, shapes[1][0]) and len(net.shifts) == 2
            and all(b.shape == (w.shape[0],) for w, b in zip(net.weights, net.biases))
            and exactness_bound(net) < EXACT_LIMIT / 2 and 0 <= net.out_bits <= 40
            and bool((np.abs(net.shifts) <= 60).all()))


def features(planes: np.ndarray, aux: np.ndarray) -> np.ndarray:
    """Every pixel's features (n*H*W x FEATURES, float32 for training) of images (n x H x W integers) and their
    predictions, as the coder sees them losslessly: the true pixels are the decoded ones."""
    n, h, w = planes.shape
    p = np.pad(planes, ((0, 0), (3, 3), (3, 3)))
    a = np.pad(aux, ((0, 0), (RADIUS, RADIUS), (RADIUS, RADIUS)))
    cols = [p[:, 3 + dy:3 + dy + h, 3 + dx:3 + dx + w] for dy, dx in CAUSAL]
    cols += [a[:, RADIUS + dy:RADIUS + dy + h, RADIUS + dx:RADIUS + dx + w]
             for dy in range(-RADIUS, RADIUS + 1) for dx in range(-RADIUS, RADIUS + 1)]
    return np.stack(cols, -1).reshape(-1, FEATURES).astype(np.float32)
