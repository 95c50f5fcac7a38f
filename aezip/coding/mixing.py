"""The mixing coders: a chunk's pixels (their --max-error bins) coded without any model file or latents, as residuals
from a prediction made from the bins already decoded, each residual as a few binary decisions whose probabilities
mix fourteen adaptive contexts (context mixing, as the PAQ family of compressors does) instead of one count table per
context (the gradient coder).

Four variants, named by the stream's first byte. The prediction's base is LOCO-I's median of W, N and NW (MEDIAN),
or a blend of six predictors (the median, W + N - NW, (W + N) / 2, W + NE - N, N, W) weighted by the inverse square
of their errors at the four causal neighbours (BLEND: textures, where the median's edge rule misleads); in colour a
later channel adds the previous channel's residual from its base. Under max_error E the bins x // (2E + 1) are
predicted from bins and coded as residuals modulo the bin count (MEDIAN, BLEND), or, for E >= 1, the pixels are
predicted from the decoded pixels and the residual is quantized in steps of 2E + 1 (MEDIAN_STEPS, BLEND_STEPS, as
JPEG-LS's near-lossless mode: finer predictions, cheaper at larger E). The encoder codes each variant asked for and
keeps the shortest (pixelstream: all on the chooser's sample, the sample's choice on the whole chunk).
Decisions: is the residual 0; its sign; the bucket b of |e| (|e| in [2^(b-1), 2^b)) in unary; the b - 1 bits of
|e| below its top bit. Contexts: position-free order 0; local activity x the neighbours' residual energy; W and N,
NW and NE, and all four relative to the prediction; the W and N residuals; the texture WW - W, NN - N; NE - N and
the NW + NE residuals; in colour the previous channel's residual from its base and coded residual (two ways); the
prediction's value; (W + N) / 2 against it with the residual energy; the median, W + N - NW and W + NE - N against
it. Each context has a slow and a fast bit model; two mixers (weights selected by activity and by residual energy)
and an adaptive probability map give each decision's probability; every model adapts across the chunk, image after
image in raster order. The compiled loop (mixkernel.py) uses integer arithmetic only, so every machine writes and
reads the same bytes. The pixel stream's method 9 (pixelstream.py); it needs no latents. It codes one decision at a
time, so it is much slower than the gradient coder (README, "Error-bounded and lossless coding").

The mixing coder with latents (method 10, encode_mixing_latents) codes each bin's value itself, bit by bit from the
top, with the same bit models, mixers and probability map (mixcore.py) over eleven contexts of the autoencoder's
prediction around the pixel and the decoded neighbours (mixkernel.code_values). Since coder v6 its stream's head may
name the chunk's most frequent bin (MNIST's black), decided first: one decision instead of eight for most pixels
of such data, 2.3x faster and 0.9 % smaller on MNIST 0-999; and it says whether the model's raster network
(rasternet.py), a learned distribution of each pixel given its causal neighbours and the prediction, is mixed in
(one-channel images: 3.8 % smaller at E = 0 on MNIST 0-499, 4.7-6.8 % at E = 1..16).
"""
from __future__ import annotations

import numpy as np

from aezip.coding import bins
from aezip.coding.rasternet import RasterNet, no_plan

# the variants: the prediction's base (median or blend), and what is coded: the bins' residuals modulo the bin count,
# or (E >= 1) the pixels' residuals quantized in steps of 2E + 1, as JPEG-LS's near-lossless mode does
MEDIAN, BLEND, MEDIAN_STEPS, BLEND_STEPS = range(4)
VARIANTS = (MEDIAN, BLEND, MEDIAN_STEPS, BLEND_STEPS)
# the head of a method-10 stream (coder v6 on): a byte of flags, then with HEAD_MODE the mode's bin (a byte):
# HEAD_MODE, the decision "the bin is the mode" comes first; HEAD_NET, the model's raster network is mixed in
HEAD_MODE, HEAD_NET = 1, 2
# the mode decision where the mode holds at least this share of the bins. Training images: MNIST 0-999 (share
# 0.82) 0.9 % smaller and 2.3x faster; natural32-gray-train at E = 4, 8, 16 (shares 0.16-0.32) 0.3-0.5 % larger
MODE_SHARE = 1 / 2


def _planes(n: int, image_shape: tuple[int, ...]) -> tuple[int, int, int, int]:
    return (n, image_shape[0], image_shape[1], image_shape[2] if len(image_shape) == 3 else 1)


def encode_mixing(x: np.ndarray, image_shape: tuple[int, ...], max_error: int,
                  variants: tuple[int, ...] = VARIANTS) -> tuple[bytes, np.ndarray]:
    """Code x (n x D uint8) within max_error in the shortest of `variants` (its byte first; the quantized ones only
    for E >= 1); returns the bytes and the pixels the decoder will give."""
    nbins = bins.geometry(max_error)[1]
    if nbins == 1:   # E >= 128: one bin, nothing to code
        return b"", bins.values(bins.to_bins(x, max_error), max_error).astype(np.uint8)
    usable = [v for v in variants if max_error > 0 or v < MEDIAN_STEPS]
    return min((_encode_variant(x, image_shape, max_error, v) for v in usable), key=lambda s: len(s[0]))


def _encode_variant(x: np.ndarray, image_shape: tuple[int, ...], max_error: int,
                    variant: int) -> tuple[bytes, np.ndarray]:
    """One variant's stream (its byte first) and the pixels it decodes to."""
    from aezip.coding import mixkernel       # numba: only --max-error coding needs it
    shape = _planes(len(x), image_shape)
    if variant in (MEDIAN, BLEND):
        planes = bins.to_bins(x, max_error).reshape(shape)
        data = mixkernel.encode(planes, bins.geometry(max_error)[1], variant == BLEND,
                                mixkernel.residual_state(shape[3]))
        recon = bins.values(planes.reshape(x.shape), max_error).astype(np.uint8)
    else:   # the kernel replaces each pixel by the one the decoder rebuilds
        planes = x.astype(np.int64).reshape(shape)
        data = mixkernel.encode(planes, 256, variant == BLEND_STEPS, mixkernel.residual_state(shape[3]),
                                2 * max_error + 1)
        recon = planes.reshape(x.shape).astype(np.uint8)
    return bytes([variant]) + data.tobytes(), recon


def _uses_net(net: RasterNet | None, image_shape: tuple[int, ...]) -> bool:
    """Whether method 10 mixes the raster network in: the model has one, and the images one channel."""
    return net is not None and _planes(1, image_shape)[3] == 1


def encode_mixing_latents(x: np.ndarray, pred: np.ndarray, image_shape: tuple[int, ...], max_error: int,
                          net: RasterNet | None = None) -> tuple[bytes, np.ndarray]:
    """Code x (n x D uint8) within max_error given the autoencoder's prediction (n x D), each bin's value bit by
    bit with contexts of the prediction around it and the decoded neighbours (mixkernel.code_values), after the
    decision "it is the chunk's most frequent bin" where that bin holds at least MODE_SHARE of them, mixing in the
    model's raster network where it has one (one channel); returns the bytes (a head byte of flags HEAD_MODE,
    HEAD_NET, and the mode's bin with HEAD_MODE, first) and the pixels the decoder will give."""
    coded = bins.to_bins(x, max_error)
    recon = bins.values(coded, max_error).astype(np.uint8)
    nbins = bins.geometry(max_error)[1]
    if nbins == 1:
        return b"", recon
    from aezip.coding import mixkernel
    shape = _planes(len(x), image_shape)
    aux = bins.to_bins(pred, max_error).astype(np.int64).reshape(shape)
    counts = np.bincount(coded.reshape(-1), minlength=nbins)
    mode = int(counts.argmax()) if counts.max() >= MODE_SHARE * coded.size else -1
    use_net = _uses_net(net, image_shape)
    head = bytes([(HEAD_MODE if mode >= 0 else 0) | (HEAD_NET if use_net else 0)]) + bytes([mode] if mode >= 0 else [])
    data = mixkernel.code_values(coded.astype(np.int64).reshape(shape), aux, pred.astype(np.int64).reshape(shape),
                                 nbins, max_error, mixkernel.value_state(shape[3], nbins, use_net),
                                 np.zeros(0, np.uint8), True, mode, net.plan() if use_net else no_plan())
    return head + data.tobytes(), recon


def decode_mixing_latents(data: bytes, pred: np.ndarray, image_shape: tuple[int, ...], max_error: int,
                          net: RasterNet | None = None, headed: bool = True) -> np.ndarray:
    """Inverse of encode_mixing_latents: the pixels (n x D uint8). headed False: a stream of coder v5, which has
    no head (no mode, no network)."""
    nbins = bins.geometry(max_error)[1]
    if nbins == 1:
        return bins.only_bin(data, pred.shape, max_error, "mixing")
    mode, use_net = -1, False
    if headed:
        flags = data[0] if data else 255
        if flags > HEAD_MODE | HEAD_NET or (flags & HEAD_MODE and (len(data) < 2 or data[1] >= nbins)):
            raise ValueError("mixing-with-latents stream: no, an unknown or a bad head")
        use_net = bool(flags & HEAD_NET)
        if use_net and not _uses_net(net, image_shape):
            raise ValueError("mixing-with-latents stream: it mixes a raster network the model does not have (or not "
                             "for these images)")
        mode, data = (data[1], data[2:]) if flags & HEAD_MODE else (-1, data[1:])
    from aezip.coding import mixkernel
    shape = _planes(len(pred), image_shape)
    planes = np.zeros(shape, np.int64)
    aux = bins.to_bins(pred, max_error).astype(np.int64).reshape(shape)
    mixkernel.code_values(planes, aux, pred.astype(np.int64).reshape(shape), nbins, max_error,
                          mixkernel.value_state(shape[3], nbins, use_net), np.frombuffer(data, np.uint8), False, mode,
                          net.plan() if use_net else no_plan())
    return bins.values(planes.reshape(pred.shape), max_error).astype(np.uint8)


def decode_mixing(data: bytes, shape: tuple[int, int], image_shape: tuple[int, ...], max_error: int) -> np.ndarray:
    """Inverse of encode_mixing: the pixels (shape = n x D, uint8)."""
    nbins = bins.geometry(max_error)[1]
    if nbins == 1:
        return bins.only_bin(data, shape, max_error, "mixing")
    if not data or data[0] not in VARIANTS or (data[0] >= MEDIAN_STEPS and max_error == 0):
        raise ValueError("mixing stream: no, an unknown or (lossless) a quantized variant byte")
    from aezip.coding import mixkernel
    planes = np.zeros(_planes(shape[0], image_shape), np.int64)
    body, variant, state = np.frombuffer(data, np.uint8)[1:], data[0], mixkernel.residual_state(planes.shape[3])
    if variant in (MEDIAN, BLEND):
        mixkernel.decode(body, planes, nbins, variant == BLEND, state)
        return bins.values(planes.reshape(shape), max_error).astype(np.uint8)
    mixkernel.decode(body, planes, 256, variant == BLEND_STEPS, state, 2 * max_error + 1)
    return planes.reshape(shape).astype(np.uint8)
