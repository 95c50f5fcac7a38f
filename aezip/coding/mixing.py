"""The mixing coder: a chunk's pixels (their --max-error bins) coded without any model file or latents, as the
gradient coder codes them (a median prediction from the bins already decoded, plus in colour the previous channel's
residual), but each residual as a few binary decisions whose probabilities mix ten adaptive contexts (context
mixing, as the PAQ family of compressors does) instead of one count table per context.

Decisions: is the residual 0; its sign; the bucket b of |e| (|e| in [2^(b-1), 2^b)) in unary; the b - 1 bits of
|e| below its top bit. Contexts: none (order 0); local activity x the neighbours' residual energy; W and N relative
to the prediction; NW and NE relative to it; the W and N residuals; the texture WW - W, NN - N; NE - N and the NW +
NE residuals; in colour the previous channel's residual from its median and coded residual at the same pixel (two
ways); the prediction's value. Two mixers (weights selected by activity and by residual energy) and an adaptive
probability map give each decision's probability; every model adapts across the chunk, image after image in raster
order. The compiled loop (mixkernel.py) uses integer arithmetic only, so every machine writes and reads the same
bytes. The pixel stream's method 9 (pixelstream.py); it needs no latents. It codes one decision at a time, so it is
slower than the gradient coder (README, "The mixing coder").
"""
from __future__ import annotations

import numpy as np

from aezip.coding import bins


def _planes(n: int, image_shape: tuple[int, ...]) -> tuple[int, int, int, int]:
    return (n, image_shape[0], image_shape[1], image_shape[2] if len(image_shape) == 3 else 1)


def encode_mixing(x: np.ndarray, image_shape: tuple[int, ...], max_error: int) -> tuple[bytes, np.ndarray]:
    """Code x (n x D uint8) within max_error; returns the bytes and the pixels the decoder will give."""
    coded = bins.to_bins(x, max_error)
    recon = bins.values(coded, max_error).astype(np.uint8)
    nbins = bins.geometry(max_error)[1]
    if nbins == 1:   # E >= 128: one bin, nothing to code
        return b"", recon
    from aezip.coding import mixkernel       # numba: only --max-error coding needs it
    shape = _planes(len(x), image_shape)
    data = mixkernel.encode(coded.astype(np.int64).reshape(shape), nbins, mixkernel.new_state(shape[3]))
    return data.tobytes(), recon


def decode_mixing(data: bytes, shape: tuple[int, int], image_shape: tuple[int, ...], max_error: int) -> np.ndarray:
    """Inverse of encode_mixing: the pixels (shape = n x D, uint8)."""
    nbins = bins.geometry(max_error)[1]
    if nbins == 1:
        if data:
            raise ValueError("a mixing stream where none is coded")
        return np.full(shape, bins.values(np.zeros(1, np.int64), max_error)[0], np.uint8)
    from aezip.coding import mixkernel
    planes = np.zeros(_planes(shape[0], image_shape), np.int64)
    mixkernel.decode(np.frombuffer(data, np.uint8), planes, nbins, mixkernel.new_state(planes.shape[3]))
    return bins.values(planes.reshape(shape), max_error).astype(np.uint8)
