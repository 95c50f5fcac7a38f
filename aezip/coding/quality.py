"""The rate knob: a ladder of nested latent quantizers served by one model (`aezip encode --quality Q`).

A model quantizes each latent z in (0, 1) to one of its L levels, the fine code v = round(z (L-1)), which its
integer decoder consumes. Quality Q (2 <= Q <= L) quantizes to a coarser grid of Q points c = 0..Q-1 that stand for
the fine codes

    fine(c) = round(c (L-1) / (Q-1))      (exact integer arithmetic; strictly increasing for Q <= L),

so the decoder, the integer decoder and their exactness bounds are unchanged: a coarse file decodes through the
same integer network, only its entropy stream carries Q symbols per latent instead of L. The encoder picks the
coarse code whose fine value is nearest the latent (ties to the lower code). Q = L is the model's own quantizer:
such files carry no quality field and are byte-identical to those written before the ladder existed.

The entropy tables of a coarse level are derived exactly from the model's fine tables, with no training data:
each fine code is assigned to the coarse point whose fine value is nearest it (the same rule as the encoder's),
and the coarse count is the sum of its fine codes' counts (integers). Every coarse point receives at least its own
fine code, whose count is >= the table floor (1), so no derived count is zero. The fine codes a coarse point owns
are a contiguous range (the nearest point never decreases as the fine code grows), so each sum is one reduceat.

A coarse code may also stand for its bin's CENTROID instead of its grid point: per latent dimension, the mean of
the fine codes the point owns weighted by the model's fine counts, rounded half up, in exact integer arithmetic
(Python integers where the products could pass 2^62). The mean of values in [a, b] lies in [a, b], and rounding
half up keeps it there, so a centroid is a fine code of its own bin: the integer decoder's bounds are unchanged.
At coarse levels the grid points lie far from where the latents fall (a sparse model's latents crowd near 0, a
tile model's near the middle), and the decoder gives far better pixels from the centroids; at fine levels the grid
can be better. The encoder decodes each chunk both ways and keeps the one with the smaller squared error (the codes
and so the rate are the same); files of a quality level name the latent coder ans-chunk-tables-v2, whose method
byte carries the choice (chunktables.py).
"""
from __future__ import annotations

import numpy as np

from aezip.errors import ParameterError

LADDER_CODER = "ans-categorical-per-dim-ladder-v1"   # the header's latent coder for a file of quality Q < L


def check_quality(quality: object, levels: int) -> int | None:
    """The quality to code with, None for the model's own quantizer (quality None or equal to levels)."""
    if quality is None:
        return None
    if not isinstance(quality, (int, np.integer)) or isinstance(quality, bool) or not 2 <= quality <= levels:
        raise ParameterError("quality", f"must be an integer in 2..{levels} (the model's latent levels; lower is "
                                        f"smaller and coarser), got {quality!r}")
    return None if quality == levels else int(quality)


def fine_values(levels: int, quality: int) -> np.ndarray:
    """fine(c) = round(c (L-1) / (Q-1)) for c = 0..Q-1, rounding halves up, in int64."""
    c = np.arange(quality, dtype=np.int64)
    return (2 * c * (levels - 1) + (quality - 1)) // (2 * (quality - 1))


def _nearest(y: np.ndarray, levels: int, quality: int) -> np.ndarray:
    """The coarse code whose fine value is nearest y (a position on the fine scale 0..L-1; ties to the lower).

    fine(c) lies within 1/2 of c s (s = (L-1)/(Q-1) >= 1) and increases strictly, so with c0 = floor(y / s) the
    nearest is one of c0-1 .. c0+2: every code below c0-1 maps at or below fine(c0-1) <= y, every code above c0+2
    maps at or above fine(c0+2) > y."""
    fine = fine_values(levels, quality)
    c0 = np.floor(y * ((quality - 1) / (levels - 1))).astype(np.int64)
    cand = np.clip(c0[..., None] + np.arange(-1, 3), 0, quality - 1)
    best = np.argmin(np.abs(fine[cand] - y[..., None]), axis=-1)     # first minimum: the lower code on a tie
    return np.take_along_axis(cand, best[..., None], axis=-1)[..., 0].astype(np.int32)


def coarse_codes(z: np.ndarray, levels: int, quality: int) -> np.ndarray:
    """Coarse codes 0..Q-1 (int32) of latents z in [0, 1]: the code whose fine value is nearest z (L-1)."""
    y = np.clip(np.asarray(z, dtype=np.float64), 0.0, 1.0) * (levels - 1)
    return _nearest(y, levels, quality)


def to_fine(codes: np.ndarray, levels: int, quality: int, centroids: np.ndarray | None = None) -> np.ndarray:
    """The fine codes (int32) the integer decoder consumes for coarse codes (rows x columns; column j is latent
    dimension j mod latent): the grid points, or the bins' centroids (latent x Q, from centroid_values)."""
    codes = np.asarray(codes, dtype=np.int64)
    if centroids is None:
        return fine_values(levels, quality)[codes].astype(np.int32)
    dims = np.arange(codes.shape[-1]) % centroids.shape[0]
    return centroids[dims, codes].astype(np.int32)


def _bin_starts(levels: int, quality: int) -> np.ndarray:
    """The first fine code each coarse point owns (the fine codes nearest it form a contiguous range)."""
    owner = _nearest(np.arange(levels, dtype=np.float64), levels, quality)
    return np.searchsorted(owner, np.arange(quality))


def ladder_tables(tables: np.ndarray, quality: int) -> np.ndarray:
    """The coarse level's frequency tables (latent x Q, int64) derived from the fine ones (latent x L): the sum of
    the counts of the fine codes nearest each coarse point."""
    return np.add.reduceat(tables.astype(np.int64), _bin_starts(tables.shape[1], quality), axis=1)


def centroid_values(tables: np.ndarray, quality: int) -> np.ndarray:
    """Each coarse point's centroid per latent dimension (latent x Q, int64 fine codes): round half up of
    sum(f n_f) / sum(n_f) over the fine codes f it owns, n_f the model's fine counts (all >= 1)."""
    levels = tables.shape[1]
    starts = _bin_starts(levels, quality)
    exact = tables.astype(np.int64)
    if int(exact.sum(axis=1).max()) >= (1 << 62) // max(2 * levels, 1):   # 2 sum(f n) + n could pass int64
        exact = exact.astype(object)
    n = np.add.reduceat(exact, starts, axis=1)
    weighted = np.add.reduceat(exact * np.arange(levels), starts, axis=1)
    return ((2 * weighted + n) // (2 * n)).astype(np.int64)
