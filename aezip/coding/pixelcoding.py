"""How a pixel model's passes are coded (pixelmodel.py makes their classes): its tables, their variants, and the
range coder, exactly.

Distributions: two learned integer tables, counted on the training images with the integer network, scaled to
TABLE_TOTAL per row, plus 1, stored in the model file: T[s][mu_int >> 3][v] (v = 0..255, smoothed towards U; fits
bimodal data like MNIST) and the shift-invariant U[s][v - mu_int + 255] (renormalised over 0..255; generalises to new
images). A third kind of rows re-centres U on the reference r, for photographs whose flat areas repeat it
exactly (a network's smooth mean misses those): where |mu_int - r| <= NEAR, the row of (s, q, mu_int - r) lies over
v - r and starts as U shifted by mu_int - r, q = repeat_context() (how many of the 25 window entries equal r, and for
c > 0 whether channel c-1 repeated its own reference at this pixel); farther, U's row over v - mu_int. With
adaptation these rows learn the chunk's rate of exact repeats per context. For E > 0 a bin's frequency is the sum
of its members'. Within a pass the pixels are grouped by key ((s, mu_int >> 3) for T, (s, mu_int) for U, (s, q,
class, centre) for the re-centred rows): keys ascending, raster order (image, row, column) inside a group, each
group coded with ONE Categorical model (its row divided by its integer total, one exact division per entry), so
both sides build identical models; the decoder rebuilds the same groups because the keys depend on earlier passes
only. After each pass both sides may add an increment to the counts of the symbols just coded (per-chunk
adaptation). A VARIANT (table x increment) is named by the stream's first byte; mu and s do not depend on it, so
one run of the networks (pass_classes) serves every variant: code_variant codes one, ideal_bytes gives its ideal
length (sum of -log2 p over the same integer rows) without the range coder, for pixelstream's chooser.
"""
from __future__ import annotations

import numpy as np
import constriction

from aezip.coding import bins
from aezip.coding.pixelmodel import (MU_BUCKET_BITS, MU_BUCKETS, REPEATS, Pass, PixelMLP, n_passes, pass_classes,
                                     pass_inputs, pass_slice, start_canvas)

BUCKET, OFFSET, REFERENCE = 0, 1, 2
NEAR = 8   # REFERENCE rows: |mu - r| <= NEAR gives a row over v - r per (s, mu - r); farther, U's row over v - mu
# (table, adaptation): the table T[s][mu >> 3][v], U[s][v - mu] or U re-centred on the reference r; the counts added
# per coded symbol after each pass
VARIANTS = ((BUCKET, 0), (BUCKET, 128), (OFFSET, 0), (OFFSET, 32), (REFERENCE, 32), (REFERENCE, 512))
_MODEL_FAMILY = constriction.stream.model.Categorical


class _Rows:
    """One variant's integer frequency rows over the bins, keyed by (s, mu >> 3), (s, mu) or (s, q, class, centre),
    and their adaptation. REFERENCE rows start as U (for every repeat context q): for |mu - r| <= NEAR the row of
    class mu - r + NEAR lies over v - r (so its counts at v = r learn how often the chunk repeats the reference),
    the last class is U's row over v - mu."""

    def __init__(self, mlp: PixelMLP, variant: int, max_error: int) -> None:
        self.kind, self.increment = VARIANTS[variant]
        self.max_error = max_error
        start = _start_rows(mlp, self.kind, max_error).copy()   # adapt() adds to it
        if self.kind == BUCKET:
            self.rows = start
        else:
            self.counts = start

    def keys(self, mu: np.ndarray, s: np.ndarray, r: np.ndarray, q: np.ndarray) -> np.ndarray:
        """Each pixel's row given its mean, scale class, reference and repeat context."""
        if self.kind == BUCKET:
            return s * MU_BUCKETS + (mu >> MU_BUCKET_BITS)
        if self.kind == OFFSET:
            return s * 256 + mu
        d = mu - r
        near = np.abs(d) <= NEAR
        cls = np.where(near, d + NEAR, 2 * NEAR + 1)
        return ((s * REPEATS + q) * (2 * NEAR + 2) + cls) * 256 + np.where(near, r, mu)

    def model(self, key: int):
        """The Categorical of one key: its row divided by its integer total (one exact division per entry)."""
        if self.kind == BUCKET:
            row = self.rows[key]
        else:
            sc, c = divmod(key, 256)
            s, cls = divmod(sc, self.counts.shape[1])
            row = self.counts[s, cls, 255 - c:511 - c]
            row = bins.sum_into_bins(row, self.max_error) if self.max_error else row
        return _MODEL_FAMILY(row / row.sum(), perfect=False)

    def bits(self, keys: np.ndarray, symbols: np.ndarray) -> float:
        """The symbols' ideal code length in their keys' rows (-log2 of the probability model() gives each, up to
        the coder's quantization)."""
        from aezip.coding.pixelkernel import row_bits, window_bits   # numba: only --max-error coding needs them
        if self.kind == BUCKET:
            return row_bits(self.rows, keys, symbols)
        return window_bits(self.counts, keys, symbols, bins.geometry(self.max_error)[0])

    def adapt(self, keys: np.ndarray, symbols: np.ndarray) -> None:
        """After a pass, both sides add the increment per coded symbol (integer counts, identical everywhere): later
        passes learn the chunk's own statistics. U-based rows count a bin at its decoded value."""
        from aezip.coding.pixelkernel import add_counts
        if not self.increment:
            return
        if self.kind == BUCKET:
            add_counts(self.rows, keys, symbols, self.increment)
        else:
            sc, c = np.divmod(keys, 256)   # row s (or s * REPEATS + q) and class, as one index; centre
            flat = self.counts.reshape(-1, self.counts.shape[2])
            add_counts(flat, sc, bins.values(symbols, self.max_error) - c + 255, self.increment)


def _start_rows(mlp: PixelMLP, kind: int, max_error: int) -> np.ndarray:
    """A variant kind's rows before any adaptation, made once per model (and E for BUCKET) and kept in mlp.tables:
    BUCKET, T's rows summed into the bins (S * MU_BUCKETS x bins); OFFSET, U (S x 1 x 511); REFERENCE, for every
    repeat context q (row s * REPEATS + q), class d + NEAR holding U shifted by d (v - r = (v - mu) + d), ones where
    U has no entry, and U itself as the last class."""
    key = (kind, max_error if kind == BUCKET else None)
    if key not in mlp.tables:
        if kind == BUCKET:
            rows = bins.sum_into_bins(mlp.table.reshape(-1, 256), max_error)
        elif kind == OFFSET:
            rows = np.ascontiguousarray(mlp.offset_table.astype(np.int64)[:, None, :])
        else:
            u = np.repeat(mlp.offset_table.astype(np.int64), REPEATS, axis=0)
            rows = np.ones((u.shape[0], 2 * NEAR + 2, 511), np.int64)
            for d in range(-NEAR, NEAR + 1):
                lo, hi = max(0, d), min(511, 511 + d)
                rows[:, d + NEAR, lo:hi] = u[:, lo - d:hi - d]
            rows[:, 2 * NEAR + 1] = u
        mlp.tables[key] = rows
    return mlp.tables[key]


def _groups(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pixel order (keys ascending, raster inside), distinct keys and where each group starts/ends. A stable sort
    has one answer; keys that fit in 16 bits get numpy's radix sort for it (~5x faster than the merge sort)."""
    if not len(keys):
        return np.zeros(0, np.intp), keys, np.zeros(1, np.intp)
    narrow = keys.astype(np.int16) if 0 <= keys.min() and keys.max() < 1 << 15 else keys
    order = np.argsort(narrow, kind="stable")
    ordered = keys[order]
    starts = np.flatnonzero(np.concatenate([[True], ordered[1:] != ordered[:-1]]))
    return order, ordered[starts], np.append(starts, len(keys))


def encode_mlp(mlp: PixelMLP, x: np.ndarray, pred: np.ndarray, image_shape: tuple[int, ...],
               max_error: int) -> tuple[bytes, np.ndarray]:
    """Code x (n x D uint8) pass by pass given the prediction; returns the bytes and the decoder's pixels: the
    shortest stream over all VARIANTS (its first byte names the one used), from one run of the networks."""
    passes, recon = pass_classes(mlp, x, pred, image_shape, max_error)
    return min((code_variant(mlp, passes, max_error, v) for v in range(len(VARIANTS))), key=len), recon


def code_variant(mlp: PixelMLP, passes: list[Pass], max_error: int, variant: int) -> bytes:
    """The stream of one variant (its byte first) from pass_classes' passes; b"" where there are none."""
    if not passes:
        return b""
    row, coder = _Rows(mlp, variant, max_error), constriction.stream.queue.RangeEncoder()
    for p in passes:
        keys = row.keys(p.mu, p.s, p.ref, p.q)
        order, uniq, bounds = _groups(keys)
        symbols = p.values[order].astype(np.int32)
        for g, key in enumerate(uniq):
            coder.encode(symbols[bounds[g]:bounds[g + 1]], row.model(int(key)))
        row.adapt(keys, p.values)
    return bytes([variant]) + coder.get_compressed().astype("<u4").tobytes()


def ideal_bytes(mlp: PixelMLP, passes: list[Pass], max_error: int, variant: int) -> float:
    """The ideal length (sum of -log2 p over the integer tables, /8, + the variant byte) of code_variant's stream,
    without the range coder."""
    if not passes:
        return 0.0
    row, bits = _Rows(mlp, variant, max_error), 0.0
    for p in passes:
        keys = row.keys(p.mu, p.s, p.ref, p.q)
        bits += row.bits(keys, p.values)
        row.adapt(keys, p.values)
    return bits / 8 + 1


def decode_mlp(mlp: PixelMLP, data: bytes, pred: np.ndarray, image_shape: tuple[int, ...],
               max_error: int) -> np.ndarray:
    """Inverse of encode_mlp: the decoded pixels (n x D uint8)."""
    _, nbins = bins.geometry(max_error)
    if nbins == 1:
        return bins.only_bin(data, pred.shape, max_error, "pixel-model")
    canvas = start_canvas(pred, len(pred), image_shape)
    predc = canvas.copy()
    if len(data) % 4 != 1 or data[0] >= len(VARIANTS):
        raise ValueError("pixel-model stream: bad variant byte or not a whole number of 32-bit words")
    row = _Rows(mlp, data[0], max_error)
    coder = constriction.stream.queue.RangeDecoder(np.frombuffer(data[1:], dtype="<u4").astype(np.uint32))
    levels = mlp.levels(image_shape)
    for k in range(n_passes(image_shape, levels)):
        ys, xs, c = pass_slice(k, canvas.shape[3], levels)
        keys = row.keys(*pass_inputs(mlp, canvas, predc, k, levels))
        order, uniq, bounds = _groups(keys)
        symbols = np.empty(len(order), np.int64)
        for g, key in enumerate(uniq):
            symbols[bounds[g]:bounds[g + 1]] = coder.decode(row.model(int(key)), int(bounds[g + 1] - bounds[g]))
        values = np.empty(len(order), np.int64)
        values[order] = symbols
        row.adapt(keys, values)
        view = canvas[:, ys, xs, c]
        canvas[:, ys, xs, c] = bins.values(values.reshape(view.shape), max_error)
    return canvas.reshape(pred.shape).astype(np.uint8)
