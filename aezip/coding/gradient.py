"""The gradient coder: a chunk's pixels (their --max-error bins) coded without any model, as residuals from a
prediction made from the bins already decoded, with counts that adapt to the chunk.

Each bin is predicted by LOCO-I's median predictor (JPEG-LS) of its west, north and north-west neighbours; in an
RGB image a later channel adds the previous channel's residual from its own median at the same pixel (colour
channels move together). The residual (bin - prediction, modulo the bin count) is range-coded in one of 32
contexts per channel: 8 classes of local activity |W-NW| + |NW-N| + |N-NE| times 4 of the previous channel's
residual. Counts start at 1 and grow by INCREMENT per coded symbol, after each raster position (all images of the
chunk at once), so the coder learns the chunk's own statistics: what a model trained on other images cannot do on
held-out photographs (benchmarks/results/development-notes.md, "The learned pixel model"). Integer arithmetic
throughout and the context coder's compiled range coder (contextkernel.py, `gradient=True`), so every machine
writes and reads the same bytes. Neighbours outside the image are 0. The pixel stream's method 8 (pixelstream.py);
it needs no latents.
"""
from __future__ import annotations

import numpy as np

from aezip.coding import bins

INCREMENT = 16   # added to a context's count of a coded residual


def _kernel_inputs(image_shape: tuple[int, ...], max_error: int) -> tuple[int, int, np.ndarray]:
    """(width, channels, initial counts) of the compiled loop for images of this shape."""
    from aezip.coding.contextkernel import GRADIENT_CONTEXTS
    w, c = image_shape[1], image_shape[2] if len(image_shape) == 3 else 1
    return w, c, np.ones((GRADIENT_CONTEXTS * c, bins.geometry(max_error)[1]), np.int64)


def _coder_args(x: np.ndarray, image_shape: tuple[int, ...], max_error: int) -> tuple[np.ndarray, tuple | None]:
    """The decoder's pixels for x and the compiled loop's arguments for coding it (None where E >= 128 leaves one
    bin: nothing to code)."""
    coded = bins.to_bins(x, max_error)
    recon = bins.values(coded, max_error).astype(np.uint8)
    if bins.geometry(max_error)[1] == 1:
        return recon, None
    w, c, counts = _kernel_inputs(image_shape, max_error)
    none = np.zeros((1, 1), np.int64)
    return recon, (coded, coded, none, none[0], w, c, counts, INCREMENT, True)


def encode_gradient(x: np.ndarray, image_shape: tuple[int, ...], max_error: int) -> tuple[bytes, np.ndarray]:
    """Code x (n x D uint8) within max_error; returns the bytes and the pixels the decoder will give."""
    recon, args = _coder_args(x, image_shape, max_error)
    if args is None:
        return b"", recon
    from aezip.coding import contextkernel       # numba: only --max-error coding needs it
    return contextkernel.encode(*args).astype("<u4").tobytes(), recon


def gradient_bits(x: np.ndarray, image_shape: tuple[int, ...], max_error: int) -> float:
    """encode_gradient's stream length as an ideal code length in bits (contextkernel.ideal_bits): an estimate."""
    _, args = _coder_args(x, image_shape, max_error)
    if args is None:
        return 0.0
    from aezip.coding import contextkernel
    return contextkernel.ideal_bits(*args)


def decode_gradient(data: bytes, shape: tuple[int, int], image_shape: tuple[int, ...], max_error: int) -> np.ndarray:
    """Inverse of encode_gradient: the pixels (shape = n x D, uint8)."""
    nbins = bins.geometry(max_error)[1]
    if nbins == 1:
        return bins.only_bin(data, shape, max_error, "gradient")
    if len(data) % 4:
        raise ValueError("gradient stream length is not a whole number of 32-bit words")
    from aezip.coding import contextkernel
    w, c, counts = _kernel_inputs(image_shape, max_error)
    planes = np.zeros(shape, np.int64)
    none = np.zeros((1, 1), np.int64)
    words = np.frombuffer(data, dtype="<u4").astype(np.uint32)
    if contextkernel.decode(words, planes, none, none[0], none[0], w, c, counts, INCREMENT, True):
        raise ValueError("gradient stream does not decode (a symbol outside its model)")
    return bins.values(planes, max_error).astype(np.uint8)
