"""Entropy coding for a convolutional codec with a mean-scale hyperprior, bit-identical on every machine.

What is coded, per image: the hyper-latents z (integers, one frequency table per channel) and the latents' residuals
q = round(y - mean) (one table per scale class). The decoder gets z, runs the fixed-point hyper-synthesis
(`aezip.coding.intconv`) to the same raw integers the encoder had, and from them:
- the means, rounded to MEAN_FRAC_BITS fractional bits: the latents are y_hat = q + mean, in that fixed point;
- each latent's scale class: the number of integer thresholds at or below its raw scale accumulator. The scale is
  softplus(raw) clamped to SCALE_MIN (the training convention); class k covers the scales whose nearest of SCALES
  log-spaced values (SCALE_MIN..SCALE_MAX) is the k-th, so the thresholds are softplus^-1 of the geometric means
  between neighbours, rounded up onto the accumulator's fixed point once, when the tables are made.
Tables are integer counts made once from the float model and then kept (a codec stores them in its model file):
each class's discretized Gaussian over -radius..radius plus an escape symbol, every count >= 1. An escaped residual
follows as a 16-bit offset in a uniform model. The ANS coder (constriction) builds its models from count / total,
an exact IEEE division, so encoder and decoder agree everywhere (as `entropy` does for the MLP latents).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import constriction
import numpy as np

from aezip.coding.intconv import IntegerConvNet, integer_forward, round_shift

MEAN_FRAC_BITS = 8
SCALE_MIN, SCALE_MAX, SCALES = 0.11, 64.0, 64
TABLE_BITS = 20                 # every count >= 1: 2 radius + 2 symbols cost at most 2^-TABLE_BITS each
ESCAPE_LIMIT = 2 ** 15          # |escaped value| < this: coded as a 16-bit offset
_OFFSET = constriction.stream.model.Uniform(2 * ESCAPE_LIMIT)


@dataclass
class HyperTables:
    """Integer tables: z per channel (C x (zmax - zmin + 2), the last symbol the escape), residuals per scale class
    (SCALES x (2 radius + 2)), and the scale classes' thresholds on the raw accumulator."""

    z_counts: np.ndarray
    z_min: int
    y_counts: np.ndarray
    radius: int
    thresholds: np.ndarray


def table_scales() -> np.ndarray:
    """The SCALES log-spaced scales from SCALE_MIN to SCALE_MAX."""
    return np.exp(np.linspace(math.log(SCALE_MIN), math.log(SCALE_MAX), SCALES))


def _counts(pmf: np.ndarray) -> np.ndarray:
    """Integer counts of probability rows (the escape symbol's mass last) at 2^TABLE_BITS, each >= 1."""
    return np.maximum(np.floor(pmf * 2 ** TABLE_BITS), 1).astype(np.int64)


def make_tables(z_pmf: np.ndarray, z_min: int, raw_frac: int, radius: int = 160) -> HyperTables:
    """Tables from the float model: z_pmf (C x V) the hyper-latents' probabilities of z_min..z_min+V-1 per channel;
    raw_frac the fractional bits of the hyper-synthesis's scale accumulators."""
    z_pmf = np.asarray(z_pmf, np.float64)
    z_counts = _counts(np.concatenate([z_pmf, np.clip(1 - z_pmf.sum(1, keepdims=True), 0, 1)], axis=1))
    scales = table_scales()
    edges = np.arange(-radius, radius + 1, dtype=np.float64)[:, None] + np.array([-0.5, 0.5])   # each bin's ends
    cdf = 0.5 * np.vectorize(math.erfc)(-edges[None] / (scales[:, None, None] * math.sqrt(2)))   # Phi(edge / scale)
    pmf = cdf[..., 1] - cdf[..., 0]
    y_counts = _counts(np.concatenate([pmf, np.clip(1 - pmf.sum(1, keepdims=True), 0, 1)], axis=1))
    bounds = np.sqrt(scales[:-1] * scales[1:])
    raw = np.log(np.expm1(bounds))                       # softplus^-1
    thresholds = np.ceil(raw * 2.0 ** raw_frac).astype(np.int64)
    return HyperTables(z_counts, int(z_min), y_counts, radius, thresholds)


def _means_and_classes(hyper: IntegerConvNet, tables: HyperTables, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(means at MEAN_FRAC_BITS, scale classes) per latent from integer hyper-latents z (N x h x w x Cz)."""
    raw = integer_forward(hyper, z)
    m = raw.shape[-1] // 2
    means = round_shift(raw[..., :m].copy(), hyper.out_frac - MEAN_FRAC_BITS)
    classes = np.searchsorted(tables.thresholds.astype(np.float64), raw[..., m:], side="right")
    return means, classes


def _groups(keys: np.ndarray) -> tuple[np.ndarray, list[tuple[int, int, int]]]:
    """The order that sorts elements by key (stable), and (key, start, stop) of each key's run in it."""
    order = np.argsort(keys, kind="stable")
    sorted_keys = keys[order]
    edges = np.flatnonzero(np.diff(sorted_keys)) + 1
    starts, stops = np.r_[0, edges], np.r_[edges, len(keys)]
    return order, [(int(sorted_keys[a]), int(a), int(b)) for a, b in zip(starts, stops) if b > a]


def _model(counts: np.ndarray):
    """constriction's categorical model of one row of counts (count / total: exact IEEE division)."""
    return constriction.stream.model.Categorical(counts.astype(np.float64) / counts.sum(), perfect=False)


def _push(coder, values: np.ndarray, keys: np.ndarray, counts: np.ndarray, low: int) -> None:
    """Push values grouped by key (each group with its row of counts; escapes after all groups) onto the stack, so
    that `_pop` reads them in group order."""
    escape = counts.shape[1] - 1
    order, groups = _groups(keys)
    sym = values[order].astype(np.int64) - low
    out = (sym < 0) | (sym >= escape)
    escaped = values[order][out].astype(np.int64)
    sym[out] = escape
    if len(escaped):
        coder.encode_reverse((escaped + ESCAPE_LIMIT).astype(np.int32), _OFFSET)
    for key, a, b in reversed(groups):
        coder.encode_reverse(sym[a:b].astype(np.int32), _model(counts[key]))


def _pop(coder, keys: np.ndarray, counts: np.ndarray, low: int) -> np.ndarray:
    """Values pushed by `_push` with the same keys, in their original order."""
    escape = counts.shape[1] - 1
    order, groups = _groups(keys)
    sym = np.empty(len(keys), np.int64)
    for key, a, b in groups:
        sym[a:b] = coder.decode(_model(counts[key]), b - a)
    values = sym + low
    out = sym == escape
    if out.any():
        values[out] = np.asarray(coder.decode(_OFFSET, int(out.sum()))) - ESCAPE_LIMIT
    result = np.empty(len(keys), np.float64)
    result[order] = values
    return result


def _z_keys(z_shape: tuple[int, ...]) -> np.ndarray:
    """Each hyper-latent's channel (its table), flattened."""
    return np.broadcast_to(np.arange(z_shape[-1]), z_shape).reshape(-1)


def _quantize(y: np.ndarray, z: np.ndarray, hyper: IntegerConvNet, tables: HyperTables
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(z as coded, the residuals q = round(y - mean) as coded, the means, the scale classes) of float latents y and
    integer hyper-latents z."""
    z = np.clip(z, -(ESCAPE_LIMIT - 1), ESCAPE_LIMIT - 1)
    means, classes = _means_and_classes(hyper, tables, z)
    q = np.clip(np.round(y - means * 2.0 ** -MEAN_FRAC_BITS), -(ESCAPE_LIMIT - 1), ESCAPE_LIMIT - 1)
    return z, q, means, classes


def rounded_latents(y: np.ndarray, z: np.ndarray, hyper: IntegerConvNet, tables: HyperTables) -> np.ndarray:
    """The integer latents (MEAN_FRAC_BITS fractional bits) `encode` would code for y and z, without coding them."""
    _, q, means, _ = _quantize(y, z, hyper, tables)
    return q * 2 ** MEAN_FRAC_BITS + means


def encode(y: np.ndarray, z: np.ndarray, hyper: IntegerConvNet, tables: HyperTables
           ) -> tuple[bytes, np.ndarray]:
    """Bytes for float latents y (N x h x w x M) and integer hyper-latents z (N x h' x w' x Cz), and the integer
    latents (MEAN_FRAC_BITS fractional bits) the decoder will rebuild."""
    z, q, means, classes = _quantize(y, z, hyper, tables)
    coder = constriction.stream.stack.AnsCoder()
    _push(coder, q.reshape(-1), classes.reshape(-1), tables.y_counts, -tables.radius)   # decoded second
    _push(coder, z.reshape(-1), _z_keys(z.shape), tables.z_counts, tables.z_min)        # decoded first
    return coder.get_compressed().astype("<u4").tobytes(), q * 2 ** MEAN_FRAC_BITS + means


def decode(data: bytes, z_shape: tuple[int, ...], hyper: IntegerConvNet, tables: HyperTables) -> np.ndarray:
    """The integer latents (MEAN_FRAC_BITS fractional bits, N x h x w x M) from `encode`'s bytes."""
    coder = constriction.stream.stack.AnsCoder(np.frombuffer(data, dtype="<u4").astype(np.uint32))
    z = _pop(coder, _z_keys(z_shape), tables.z_counts, tables.z_min).reshape(z_shape)
    means, classes = _means_and_classes(hyper, tables, z)
    q = _pop(coder, classes.reshape(-1), tables.y_counts, -tables.radius).reshape(means.shape)
    return q * 2 ** MEAN_FRAC_BITS + means
