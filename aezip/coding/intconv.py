"""Convolutional networks in fixed-point arithmetic, bit-identical on every machine: the synthesis transform of a
convolutional codec (transposed convolutions with inverse GDN, ending in pixels) and its hyper-synthesis
(convolutions with ReLU, ending in raw accumulators). `intdecoder` is the MLP counterpart.

Layout: activations are integers with ACT_FRAC_BITS fractional bits, NHWC. A layer is a convolution, either `up`
(transposed, stride 2, padding k // 2, output padding 1: H x W -> 2H x 2W) or `same` (stride 1, padding k // 2),
then an activation: `igdn` (y_i = x_i * sqrt(beta_i + sum_j gamma_ij x_j^2)), `relu`, or `none` (the last layer).
The last layer's accumulator is returned raw (`integer_forward`) or as pixels clip(round(255 * (v + 1/2)), 0, 255)
for its real value v (`integer_synthesize`: the model's output lies around 0, the image in [0, 1]).

Why it is exact. As in `intdecoder`, every sum runs in float64 on integers whose partial sums stay below
EXACT_LIMIT = 2^52, so no addition rounds, whatever the order (the k x k taps of a kernel are k^2 GEMMs added into
the output positions they reach; a partial sum is a sum of a subset of one output's products, and its bound is the
sum over all of that output's kernel taps):
- convolution: inputs are clamped to |x| <= ACT_CLAMP (the first layer's to the given limit), so
  |acc| <= sum_{ci,ky,kx} |w| * ACT_CLAMP + |b| < 2^52, which picks the weight scale (intdecoder's `weight_shift`
  over each output's Cin * k * k weights); the result is rounded half up to ACT_FRAC_BITS by
  floor(acc * 2^-s + 1/2) (`round_shift`);
- inverse GDN: x is clamped to GDN_CLAMP = 2^20 (|v| < 256) first; x^2 <= 2^40, floored to ACT_FRAC_BITS (<= 2^28);
  gamma's scale is picked so that sum_j |gamma_q| * 2^28 + beta_q < 2^52 (`_gdn_shift`, an even number of bits);
  the integer square root is float64 `sqrt` then floor: IEEE 754 rounds sqrt correctly, so every conforming CPU and
  GPU gives the same float and the same floor (not always the exact integer root near perfect squares, always the
  same one); x * root <= 2^20 * 2^26 < 2^52; rounding back to ACT_FRAC_BITS is a floor of an exact float;
- pixels: the last layer's weight scale keeps its accumulator below 2^52 / 512, so 255 * acc < 2^52 is exact, and
  round(255 * (acc 2^-frac + 1/2)) = floor(255 acc 2^-frac) + 128 needs only a power-of-two scaling and a floor.
Scaling by powers of two is exact (no underflow at these sizes). So the outputs are the same integers on every CPU,
GPU, BLAS and thread count. Decoding needs numpy only.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from aezip.coding.intdecoder import EXACT_LIMIT, WEIGHT_LIMIT, weight_shift

ACT_FRAC_BITS = 12
ACT_CLAMP = 2 ** 23          # |activation| entering a convolution, fixed point (2048.0)
GDN_CLAMP = 2 ** 20          # |activation| entering inverse GDN, fixed point (256.0)
_SQUARE_BOUND = GDN_CLAMP ** 2 >> ACT_FRAC_BITS   # x^2 after flooring to ACT_FRAC_BITS
KINDS = ("up", "same")
ACTIVATIONS = ("igdn", "relu", "none")


@dataclass
class FloatLayer:
    """A trained layer: weight Cin x Cout x k x k (torch's ConvTranspose2d layout; for `same`, Conv2d's Cout x Cin
    x k x k transposed to it), bias Cout, and inverse GDN's effective gamma (Cout x Cout) and beta (Cout)."""

    kind: str
    weight: np.ndarray
    bias: np.ndarray
    activation: str = "none"
    gamma: np.ndarray | None = None
    beta: np.ndarray | None = None


@dataclass
class IntConvLayer:
    """A layer in integers: weights Cin x Cout x k x k at 2^(acc_frac - input bits), bias at the accumulator's
    scale, and for `igdn` gamma at 2^gdn_frac and beta at 2^(ACT_FRAC_BITS + gdn_frac)."""

    kind: str
    weight: np.ndarray
    bias: np.ndarray
    acc_frac: int                     # fractional bits of the accumulator (weight bits + input bits)
    activation: str = "none"
    gamma: np.ndarray | None = None
    beta: np.ndarray | None = None
    gdn_frac: int = 0                 # gamma's fractional bits (even)


@dataclass
class IntegerConvNet:
    """The layers, the fractional bits of the integer inputs and the bound they are clamped to."""

    layers: list[IntConvLayer]
    in_frac: int
    in_limit: float

    @property
    def out_frac(self) -> int:
        """Fractional bits of the last layer's raw accumulator."""
        return self.layers[-1].acc_frac


def _gdn_shift(gamma: np.ndarray, beta: np.ndarray) -> int:
    """The largest even number of fractional bits for gamma with |gamma_q| <= WEIGHT_LIMIT and an exact norm."""
    g = int(np.floor(np.log2(WEIGHT_LIMIT / max(float(np.abs(gamma).max()), 1e-30))))
    g -= g % 2
    while True:
        norm = np.abs(np.round(gamma * 2.0 ** g)).sum(1) * _SQUARE_BOUND + np.abs(beta) * 2.0 ** (ACT_FRAC_BITS + g)
        if norm.max() + 1 < EXACT_LIMIT:
            return g
        g -= 2


def build_integer_net(layers: list[FloatLayer], in_frac: int = 0, in_limit: float = float(ACT_CLAMP),
                      pixels: bool = True) -> IntegerConvNet:
    """Quantize a float network whose integer inputs have in_frac fractional bits and |x| <= in_limit; with
    `pixels` the last layer keeps room for the pixel mapping (integer_synthesize)."""
    out, frac, limit = [], in_frac, in_limit
    for i, f in enumerate(layers):
        if f.kind not in KINDS or f.activation not in ACTIVATIONS:
            raise ValueError(f"layer {i}: kind {f.kind!r} / activation {f.activation!r} unknown")
        if (i == len(layers) - 1) != (f.activation == "none"):
            raise ValueError("the last layer, and only it, has no activation")
        w, b = np.asarray(f.weight, np.float64), np.asarray(f.bias, np.float64)
        room = EXACT_LIMIT / 512 if pixels and i == len(layers) - 1 else EXACT_LIMIT
        s = weight_shift(w.transpose(1, 0, 2, 3).reshape(w.shape[1], -1), b, limit, frac, acc_limit=room)
        layer = IntConvLayer(f.kind, np.round(w * 2.0 ** s).astype(np.int32),
                             np.round(b * 2.0 ** (s + frac)).astype(np.int64), s + frac, f.activation)
        if f.activation == "igdn":
            gamma, beta = np.asarray(f.gamma, np.float64), np.asarray(f.beta, np.float64)
            g = _gdn_shift(gamma, beta)
            layer.gamma = np.round(gamma * 2.0 ** g).astype(np.int32)
            layer.beta = np.round(beta * 2.0 ** (ACT_FRAC_BITS + g)).astype(np.int64)
            layer.gdn_frac = g
        out.append(layer)
        frac, limit = ACT_FRAC_BITS, float(ACT_CLAMP)
    if not out:
        raise ValueError("a network needs at least one layer")
    return IntegerConvNet(out, in_frac, in_limit)


def round_shift(acc: np.ndarray, bits: int) -> np.ndarray:
    """floor(acc * 2^-bits + 1/2) for float64 integers |acc| < 2^52 (a left shift where bits <= 0), in place; exact:
    scaling by a power of two is, and acc * 2^-bits spans bits 2^-bits .. 2^(52-bits), room for + 1/2."""
    acc *= 2.0 ** -bits
    if bits > 0:
        acc += 0.5
    return np.floor(acc, out=acc)


def _convolve(x: np.ndarray, kind: str, weight: np.ndarray, bias: np.ndarray) -> np.ndarray:
    """One convolution of integer activations (N x H x W x Cin, float64): one GEMM per kernel tap, added into the
    output positions it reaches (strided for `up`)."""
    n, h, w, _ = x.shape
    k = weight.shape[2]
    pad = k // 2
    taps = weight.astype(np.float64)
    if kind == "up":
        full = np.zeros((n, 2 * h + k - 1, 2 * w + k - 1, weight.shape[1]))
        for ky in range(k):
            for kx in range(k):
                full[:, ky:ky + 2 * h:2, kx:kx + 2 * w:2, :] += x @ taps[:, :, ky, kx]
        out = full[:, pad:pad + 2 * h, pad:pad + 2 * w, :]
    else:
        padded = np.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)))
        out = np.zeros((n, h, w, weight.shape[1]))
        for ky in range(k):
            for kx in range(k):
                out += padded[:, ky:ky + h, kx:kx + w, :] @ taps[:, :, ky, kx]
    out += bias.astype(np.float64)
    return out


def integer_forward(net: IntegerConvNet, inputs: np.ndarray) -> np.ndarray:
    """The last layer's raw accumulator (float64 integers, net.out_frac fractional bits) for integer inputs
    N x h x w x C (net.in_frac fractional bits); identical on every machine."""
    x = np.clip(np.asarray(inputs, np.float64), -net.in_limit, net.in_limit)
    for layer in net.layers:
        acc = _convolve(x, layer.kind, layer.weight, layer.bias)
        if layer.activation == "none":
            return acc
        x = round_shift(acc, layer.acc_frac - ACT_FRAC_BITS)
        if layer.activation == "relu":
            np.clip(x, 0.0, ACT_CLAMP, out=x)
            continue
        np.clip(x, -GDN_CLAMP, GDN_CLAMP, out=x)
        squares = np.floor(x * x * 2.0 ** -ACT_FRAC_BITS)
        norm = squares @ layer.gamma.T.astype(np.float64) + layer.beta.astype(np.float64)
        root = np.floor(np.sqrt(np.maximum(norm, 0.0)))
        x = round_shift(x * root, (ACT_FRAC_BITS + layer.gdn_frac) // 2)
        np.clip(x, -ACT_CLAMP, ACT_CLAMP, out=x)
    raise AssertionError("unreachable: build_integer_net ends every network with a layer without activation")


def integer_synthesize(net: IntegerConvNet, latents: np.ndarray) -> np.ndarray:
    """uint8 images N x H x W x C from integer latents: clip(round(255 * (v + 1/2)), 0, 255) of the output v, exact
    as floor(255 acc 2^-frac) + 128."""
    v = integer_forward(net, latents) * 255.0
    v *= 2.0 ** -net.out_frac
    v = np.floor(v, out=v) + 128.0
    return np.clip(v, 0, 255).astype(np.uint8)


FRAC_RANGE = (-64, 128)      # acc_frac and gdn_frac a stored network may hold (round_shift's power of two stays exact)


def expect_tensor(tensors: dict[str, np.ndarray], name: str, dtype: str, shape: tuple[int, ...]) -> np.ndarray:
    """tensors[name], which an untrusted file must hold with this dtype and shape; ValueError naming it otherwise."""
    t = tensors.get(name)
    if t is None or t.dtype != np.dtype(dtype) or t.shape != shape:
        raise ValueError(f"tensor {name} is {'missing' if t is None else f'{t.dtype} {t.shape}'}, expected "
                         f"{dtype} {shape}")
    return t


def net_tensors(net: IntegerConvNet, prefix: str) -> dict[str, np.ndarray]:
    """The integers of a network as named tensors (its layer kinds and activations are the architecture's, not
    stored): per layer weight, bias, and for `igdn` gamma and beta; `fracs` (layers x 2) its acc_frac and gdn_frac."""
    out = {f"{prefix}.fracs": np.array([[l.acc_frac, l.gdn_frac] for l in net.layers], np.int64)}
    for i, layer in enumerate(net.layers):
        out[f"{prefix}.{i}.weight"] = np.ascontiguousarray(layer.weight, np.int32)
        out[f"{prefix}.{i}.bias"] = np.ascontiguousarray(layer.bias, np.int64)
        if layer.activation == "igdn":
            out[f"{prefix}.{i}.gamma"] = np.ascontiguousarray(layer.gamma, np.int32)
            out[f"{prefix}.{i}.beta"] = np.ascontiguousarray(layer.beta, np.int64)
    return out


def net_from_tensors(tensors: dict[str, np.ndarray], prefix: str, plan: list[tuple[str, str, int, int, int]],
                     in_frac: int, in_limit: float, pixels: bool) -> IntegerConvNet:
    """A network of the architecture `plan` ((kind, activation, Cin, Cout, k) per layer) from untrusted tensors:
    every tensor of the dtype and shape the plan implies, and every bound of the module docstring kept (so decoding
    stays exact); ValueError naming the tensor otherwise."""
    fracs = expect_tensor(tensors, f"{prefix}.fracs", "int64", (len(plan), 2))
    if not ((fracs >= FRAC_RANGE[0]) & (fracs <= FRAC_RANGE[1])).all() or (fracs[:, 1] % 2).any():
        raise ValueError(f"tensor {prefix}.fracs: fractional bits outside {FRAC_RANGE} or an odd GDN scale")
    layers, limit = [], float(in_limit)
    for i, (kind, activation, cin, cout, k) in enumerate(plan):
        p = f"{prefix}.{i}"
        w, b = expect_tensor(tensors, f"{p}.weight", "int32", (cin, cout, k, k)), expect_tensor(tensors, f"{p}.bias", "int64", (cout,))
        room = EXACT_LIMIT / 512 if pixels and i == len(plan) - 1 else EXACT_LIMIT
        bound = np.abs(w.astype(np.float64)).sum(axis=(0, 2, 3)) * limit + np.abs(b.astype(np.float64)) + 1
        if np.abs(w).max(initial=0) > WEIGHT_LIMIT or bound.max() >= room:
            raise ValueError(f"layer {p}: weights beyond {WEIGHT_LIMIT} or an accumulator that may not be exact")
        layer = IntConvLayer(kind, w, b, int(fracs[i, 0]), activation)
        if activation == "igdn":
            gamma, beta = expect_tensor(tensors, f"{p}.gamma", "int32", (cout, cout)), expect_tensor(tensors, f"{p}.beta", "int64", (cout,))
            norm = np.abs(gamma.astype(np.float64)).sum(1) * _SQUARE_BOUND + np.abs(beta.astype(np.float64)) + 1
            if np.abs(gamma).max(initial=0) > WEIGHT_LIMIT or norm.max() >= EXACT_LIMIT:
                raise ValueError(f"layer {p}: GDN weights beyond {WEIGHT_LIMIT} or a norm that may not be exact")
            layer.gamma, layer.beta, layer.gdn_frac = gamma, beta, int(fracs[i, 1])
        layers.append(layer)
        limit = float(ACT_CLAMP)
    return IntegerConvNet(layers, in_frac, float(in_limit))
