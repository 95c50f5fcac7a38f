"""Max-error coding: every decoded pixel within E gray levels of the original (E = 0: lossless).

Each pixel x is coded as its bin v = x // (2E+1) of width 2E+1 and decoded as min(v (2E+1) + E, 255), which lies
within E of x. Pixels are coded in raster order, all images of a chunk at a time, with adaptive frequency counts
per context. The context is what the decoder already knows: the autoencoder's prediction p (bit-identical
everywhere, see intdecoder; 12 buckets) and the level of each already decoded neighbour W, N, NW, NE (0, dark,
bright, saturated): 3,072 contexts. The counts start from a prior learned on the training images and stored in
the model file (each context's histogram of pixel values, scaled to PRIOR_TOTAL, summed into bins for E > 0,
plus 1), so small chunks code well from their first pixel. Counts are integers, updated after each raster step,
and turned into probabilities by one exact division, so both sides build the same models on any machine; the
symbols go through a range coder. The raster loop is compiled (contextkernel.py, numba): it writes the bytes that
constriction's RangeEncoder with one Categorical(perfect=False) row per symbol wrote (tests pin them); lossless
encode and decode of held-out MNIST went 2.7x and 3.2x faster (README, Speed). On held-out MNIST (2026-11-28) the
residual costs 1.19 bits/pixel lossless, 1.22 with the earlier context (max and min of the four neighbours).
"""
from __future__ import annotations

import numpy as np

from aezip.coding import bins

RESIDUAL_CODER = "context-adaptive-v4"
PRIOR_TOTAL = 4096
_PRED_EDGES = np.array([1, 8, 32, 64, 96, 128, 160, 192, 224, 248, 255])   # 12 buckets; 0 and 255 alone
_NEIGH_EDGES = np.array([1, 128, 250])                                    # 4 levels: 0, dark, bright, saturated
_N_NEIGH = len(_NEIGH_EDGES) + 1
N_CONTEXTS = (len(_PRED_EDGES) + 1) * _N_NEIGH ** 4
_INCREMENT = 4
_PRED_LUT = np.searchsorted(_PRED_EDGES, np.arange(256), side="right").astype(np.int64)   # value -> bucket
_NEIGH_LUT = np.searchsorted(_NEIGH_EDGES, np.arange(256), side="right").astype(np.int64)  # value -> level


def _geometry(image_shape: tuple[int, ...]) -> tuple[int, int]:
    """(width, channels) of images of this shape, as the raster loop walks them."""
    return image_shape[1], image_shape[2] if len(image_shape) == 3 else 1


def context_prior(x: np.ndarray, pred: np.ndarray, image_shape: tuple[int, ...]) -> np.ndarray:
    """Per-context pixel-value counts (contexts x 256, int64) on training images, scaled to PRIOR_TOTAL a row."""
    from aezip.coding.contextkernel import contexts
    w, c = _geometry(image_shape)
    bucket, values = _PRED_LUT[pred], np.ascontiguousarray(x, np.uint8)
    counts = np.zeros((N_CONTEXTS, 256), np.int64)
    ctx = np.empty(len(x), np.int64)
    for pos in range(x.shape[1]):
        contexts(pos, w, c, bucket, values, _NEIGH_LUT, ctx)
        np.add.at(counts, (ctx, values[:, pos].astype(np.int64)), 1)
    totals = counts.sum(axis=1, keepdims=True)
    return counts * PRIOR_TOTAL // np.maximum(totals, 1)


def _initial_counts(prior: np.ndarray, max_error: int) -> np.ndarray:
    """The prior summed into bins of width 2E+1, plus 1 so no bin has zero probability."""
    return bins.sum_into_bins(prior, max_error) + 1


def _kernel_inputs(pred: np.ndarray, max_error: int, prior: np.ndarray) -> tuple:
    """The compiled coder's prediction buckets and initial counts (its own copy: the coder adapts it)."""
    return _PRED_LUT[pred], np.ascontiguousarray(_initial_counts(prior, max_error))


def _coder_args(x: np.ndarray, pred: np.ndarray, image_shape: tuple[int, ...], max_error: int,
                prior: np.ndarray) -> tuple[np.ndarray, tuple | None]:
    """The decoder's reconstruction of x and the compiled loop's arguments for coding it (None where E >= 128
    leaves one bin: the value E is within E of every pixel, nothing to code)."""
    coded = bins.to_bins(x, max_error)
    recon = bins.values(coded, max_error).astype(np.uint8)
    if bins.geometry(max_error)[1] == 1:
        return recon, None
    bucket, counts = _kernel_inputs(pred, max_error, prior)
    w, c = _geometry(image_shape)
    return recon, (coded, recon, bucket, _NEIGH_LUT, w, c, counts, _INCREMENT)


def encode_residual(x: np.ndarray, pred: np.ndarray, image_shape: tuple[int, ...], max_error: int,
                    prior: np.ndarray) -> tuple[bytes, np.ndarray]:
    """Code x (n x D uint8) given the prediction; returns the bytes and the reconstruction the decoder will make."""
    recon, args = _coder_args(x, pred, image_shape, max_error, prior)
    if args is None:
        return b"", recon
    from aezip.coding import contextkernel           # numba: only --max-error coding needs it
    return contextkernel.encode(*args).astype("<u4").tobytes(), recon


def residual_bits(x: np.ndarray, pred: np.ndarray, image_shape: tuple[int, ...], max_error: int,
                  prior: np.ndarray) -> float:
    """encode_residual's stream length as an ideal code length in bits (contextkernel.ideal_bits): an estimate."""
    _, args = _coder_args(x, pred, image_shape, max_error, prior)
    if args is None:
        return 0.0
    from aezip.coding import contextkernel
    return contextkernel.ideal_bits(*args)


def decode_residual(data: bytes, pred: np.ndarray, image_shape: tuple[int, ...], max_error: int,
                    prior: np.ndarray) -> np.ndarray:
    """Inverse of `encode_residual`: the reconstruction (n x D uint8)."""
    _, nbins = bins.geometry(max_error)
    if len(data) % 4:
        raise ValueError("residual stream length is not a whole number of 32-bit words")
    if nbins == 1:
        return bins.only_bin(data, pred.shape, max_error, "residual")
    recon = np.zeros(pred.shape, np.uint8)
    from aezip.coding import contextkernel
    bucket, counts = _kernel_inputs(pred, max_error, prior)
    w, c = _geometry(image_shape)
    values = bins.values(np.arange(nbins), max_error).astype(np.uint8)
    words = np.frombuffer(data, dtype="<u4").astype(np.uint32)
    if contextkernel.decode(words, recon, bucket, _NEIGH_LUT, values, w, c, counts, _INCREMENT):
        raise ValueError("residual stream does not decode (a symbol outside its model)")
    return recon
