"""The decoder in fixed-point arithmetic, so that its prediction is bit-identical on every machine.

Float matmuls differ across devices, libraries and thread counts (summation order), so a float decoder cannot be
reproduced exactly by another machine. Here every weight, bias and activation is an integer, and the matmuls run in
float64 on integers whose partial sums stay below 2^53: every such sum is exact, whatever the order, the device or
the BLAS. Hidden activations keep ACT_FRAC_BITS fractional bits (rounded, clamped to ACT_LIMIT); the output pixel
is the number of integer thresholds T_k (k = 1..255, T_k = ceil(logit((k - 1/2) / 255) * scale)) the final
accumulator reaches, which equals round(255 * sigmoid(logit)). The integers are made once, when a model is saved,
and stored in the model file, so no float computation takes part in decoding.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .model import DecoderLayers

ARITHMETIC = "fixed-point-v1"   # recorded in every .aez header: what the decoder must reproduce
ACT_FRAC_BITS = 12
ACT_LIMIT = 2 ** 24             # hidden activations are clamped to [0, ACT_LIMIT) in fixed point (4096.0)
WEIGHT_LIMIT = 2 ** 15 - 1
EXACT_LIMIT = 2 ** 52           # bound on |accumulator| that keeps every float64 partial sum exact


@dataclass
class IntegerDecoder:
    """Integer weights (out x in), biases and right shifts per layer, and the output thresholds."""

    weights: list[np.ndarray]
    biases: list[np.ndarray]
    shifts: list[int]            # hidden layers: accumulator >> shift gives ACT_FRAC_BITS fractional bits
    thresholds: np.ndarray       # 255 sorted int64 thresholds on the last accumulator

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


def weight_shift(w: np.ndarray, b: np.ndarray, in_limit: float, in_frac: int) -> int:
    """The largest power-of-two weight scale with |w_q| <= WEIGHT_LIMIT and an exact accumulator."""
    s = int(np.floor(np.log2(WEIGHT_LIMIT / max(float(np.abs(w).max()), 1e-30))))
    while True:
        bound = (np.abs(np.round(w * 2.0 ** s)).sum(1) * in_limit + np.abs(b) * 2.0 ** (s + in_frac) + 1).max()
        if bound < EXACT_LIMIT:
            return s
        s -= 1


def build_integer_decoder(layers: DecoderLayers, levels: int) -> IntegerDecoder:
    """Quantize a float decoder; its first layer takes the integer codes directly (1/(levels-1) folded in)."""
    weights, biases, shifts = [], [], []
    in_frac, in_limit = 0, float(levels - 1)
    n = len(layers.weights)
    for i, (w_t, b_t) in enumerate(zip(layers.weights, layers.biases)):
        w = w_t.double().cpu().numpy()
        b = b_t.double().cpu().numpy()
        if i == 0:
            w = w / (levels - 1)
        s = weight_shift(w, b, in_limit, in_frac)
        acc_bits = s + in_frac
        weights.append(np.round(w * 2.0 ** s).astype(np.int32))
        biases.append(np.round(b * 2.0 ** acc_bits).astype(np.int64))
        if i < n - 1:
            shifts.append(acc_bits - ACT_FRAC_BITS)
            in_frac, in_limit = ACT_FRAC_BITS, float(ACT_LIMIT)
        else:
            k = np.arange(1, 256, dtype=np.float64)
            p = (k - 0.5) / 255.0
            thresholds = np.ceil(np.log(p / (1.0 - p)) * 2.0 ** acc_bits).astype(np.int64)
    return IntegerDecoder(weights, biases, shifts, thresholds)


def _rescale(acc: torch.Tensor, shift: int) -> torch.Tensor:
    """Round-half-up division by 2^shift (multiplication when shift < 0), exact in float64."""
    if shift <= 0:
        return acc * float(2 ** -shift)
    return torch.floor((acc + float(2 ** (shift - 1))) / float(2 ** shift))


def integer_decode(dec: IntegerDecoder, codes: np.ndarray | torch.Tensor, device: str = "cpu") -> np.ndarray:
    """Pixels (uint8, n x D) from integer codes (n x latent); identical on every machine."""
    h = torch.as_tensor(np.asarray(codes), device=device).to(torch.float64)
    n = len(dec.weights)
    for i in range(n):
        w = torch.as_tensor(dec.weights[i], device=device).to(torch.float64)
        b = torch.as_tensor(dec.biases[i], device=device).to(torch.float64)
        acc = h @ w.t() + b
        if i < n - 1:
            h = torch.clamp(_rescale(acc, dec.shifts[i]), 0.0, float(ACT_LIMIT - 1))
    thresholds = torch.as_tensor(dec.thresholds, device=device).to(torch.float64)
    pixels = torch.searchsorted(thresholds, acc.contiguous(), right=True)
    return pixels.to(torch.uint8).cpu().numpy()
