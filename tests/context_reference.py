"""The context coder as aezip wrote it before the compiled loop (contextkernel.py): constriction's RangeEncoder with
one float64 probability row per symbol, contexts by searchsorted. Tests pin the compiled coder's bytes to it."""
from __future__ import annotations

import constriction
import numpy as np

from aezip.coding import bins
from aezip.coding.residual import _INCREMENT, _N_NEIGH, _NEIGH_EDGES, _PRED_EDGES, _initial_counts

_FAMILY = constriction.stream.model.Categorical(perfect=False)


def _contexts(pos: int, image_shape: tuple[int, ...], bucket: np.ndarray, recon: np.ndarray) -> np.ndarray:
    w, c = image_shape[1], image_shape[2] if len(image_shape) == 3 else 1
    y, x = divmod(pos // c, w)
    row = w * c
    ctx = bucket[:, pos]
    for offset, present in ((c, x > 0), (row, y > 0), (row + c, x > 0 and y > 0), (row - c, y > 0 and x < w - 1)):
        level = np.searchsorted(_NEIGH_EDGES, recon[:, pos - offset], side="right") if present else 0
        ctx = ctx * _N_NEIGH + level
    return ctx


def reference_encode(x: np.ndarray, pred: np.ndarray, image_shape: tuple[int, ...], max_error: int,
                     prior: np.ndarray) -> bytes:
    """The context coder's stream for x (n x D uint8), computed the pre-compiled way."""
    counts = _initial_counts(prior, max_error)
    coded = bins.to_bins(x, max_error)
    recon = bins.values(coded, max_error).astype(np.uint8)
    if bins.geometry(max_error)[1] == 1:
        return b""
    bucket = np.searchsorted(_PRED_EDGES, pred, side="right").astype(np.int64)
    coder = constriction.stream.queue.RangeEncoder()
    for pos in range(x.shape[1]):
        ctx = _contexts(pos, image_shape, bucket, recon)
        rows = counts[ctx]
        coder.encode(coded[:, pos].astype(np.int32), _FAMILY, rows / rows.sum(axis=1, keepdims=True))
        np.add.at(counts, (ctx, coded[:, pos]), _INCREMENT)
    return coder.get_compressed().astype("<u4").tobytes()
