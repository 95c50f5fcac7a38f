"""Method 3 of the chunk-tables coder: a tile model's codes coded with per-chunk tables conditioned on the codes of
the tiles to their left and above (a causal context over neighbouring latents, as learned image codecs use).

Neighbouring tiles of a photograph share its colours and textures, so a tile's code in dimension j says much about
its neighbours' codes in dimension j (on the held-out RGB photographs with the picked tile model, 2026-11-30: the
ideal length with the tables' cost falls by ~40 % against the chunk's own per-dimension tables; on the validation
photograph, by ~11 %; on the gray textures, not at all, where the chooser keeps method 2).

The context of the code at tile (r, c), dimension j, is the pair (b(left), b(up)) of the neighbours' codes in
dimension j bucketed by the chunk's per-dimension edges e_j (bucket of v = how many edges are below v, 0..K-1), or
K where the neighbour lies outside the image: (K+1)^2 contexts per dimension. Each context's histogram is
quantized to about 2^s (count c of the row's n codes -> round(c 2^s / n), at least 1 where c > 0).

Stream, after the method byte: K (NEIGHBOUR_BUCKETS), s (0..MAX_SCALE), a bitmap of the latent x (K+1)^2 tables
that hold counts (most of the rarer contexts hold none: half of them at K = 6 on photographs), then order-0
Exp-Golomb codes of the latent x (K-1) edges (each < the symbol count, nondecreasing in each dimension) and of the
marked tables' counts (each <= 2^MAX_SCALE), zero bits to the byte, then the ANS words.

Codes are coded wavefront by wavefront: anti-diagonal d holds the tiles r + c = d, whose left and upper neighbours
lie on d - 1, so the decoder decodes each anti-diagonal of every image of the chunk in one call (image, then tile
row, then dimension), after the one before it. Probabilities are integer counts over their integer total (one
exact IEEE division), so every machine rebuilds the same models. A damaged stream is a FormatError: a count or
edge out of range, tables larger than the stream could hold, or a context row without counts that a code needs.
"""
from __future__ import annotations

import numpy as np
import constriction

from aezip.coding.counts import MAX_SCALE, best_scale, golomb_bits, pack_counts, quantize_counts, unpack_counts
from aezip.errors import FormatError

NEIGHBOUR_BUCKETS = (2, 3, 4, 6)   # K the encoder tries (picked on a validation photograph and training photographs)
MAX_BUCKETS = 8                    # K a stream may name
MAX_TABLE_RATIO = 4                # tried only where the tables hold at most this many counts per code
SEARCH_BUCKETS = 4                 # K of the tables the encoder's search prices codes with (context_bits)
_MODEL_FAMILY = constriction.stream.model.Categorical(perfect=False)


def _order(images: int, grid: tuple[int, int]) -> list[np.ndarray]:
    """Tile rows of the chunk (image i, tile r, c -> i*th*tw + r*tw + c) anti-diagonal by anti-diagonal."""
    th, tw = grid
    out = []
    for d in range(th + tw - 1):
        r = np.arange(max(0, d - tw + 1), min(th, d + 1))
        tiles = r * tw + (d - r)
        out.append((np.arange(images)[:, None] * (th * tw) + tiles[None, :]).reshape(-1))
    return out


def _neighbours(images: int, grid: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """For each tile row of the chunk, the rows of its left and upper neighbours (-1 outside the image)."""
    th, tw = grid
    r, c = np.divmod(np.arange(th * tw), tw)
    left = np.where(c > 0, np.arange(th * tw) - 1, -1)
    up = np.where(r > 0, np.arange(th * tw) - tw, -1)
    base = (np.arange(images) * th * tw)[:, None]
    return (np.where(left >= 0, base + left, -1).reshape(-1), np.where(up >= 0, base + up, -1).reshape(-1))


def _buckets(edges: np.ndarray, values: np.ndarray) -> np.ndarray:
    """The bucket of each value (... x latent; column j in dimension j): how many of its dimension's edges (latent x
    (k-1)) lie below it."""
    return (edges < values[..., None]).sum(axis=-1)


def _contexts(codes: np.ndarray, rows: np.ndarray, left: np.ndarray, up: np.ndarray, edges: np.ndarray,
              k: int) -> np.ndarray:
    """Context index (len(rows) x latent, in 0..(k+1)^2-1) of the codes at `rows` from their neighbours' codes."""

    def bucket(nb: np.ndarray) -> np.ndarray:
        inside = nb[rows] >= 0
        return np.where(inside[:, None], _buckets(edges, codes[np.maximum(nb[rows], 0)]), k)

    return bucket(left) * (k + 1) + bucket(up)


def _plan(codes: np.ndarray, left: np.ndarray, up: np.ndarray, symbols: int,
          k: int) -> tuple[np.ndarray, np.ndarray, int, float]:
    """Edges, context counts (latent x (k+1)^2 x symbols), best scale and estimated bits for K = k, the codes'
    neighbours given by `_neighbours`."""
    rows, latent = codes.shape
    qs = np.linspace(0, 1, k + 1)[1:-1]
    edges = np.quantile(codes, qs, axis=0, method="lower").T.astype(np.int64)        # latent x (k-1)
    ctx = _contexts(codes, np.arange(rows), left, up, edges, k)
    n_ctx = (k + 1) ** 2
    index = (np.arange(latent)[None, :] * n_ctx + ctx) * symbols + codes
    counts = np.bincount(index.reshape(-1), minlength=latent * n_ctx * symbols).reshape(latent, n_ctx, symbols)
    bits, scale = best_scale(counts)
    empty = int((counts.sum(axis=-1) == 0).sum())          # the bitmap leaves their zeros out
    return edges, counts, scale, bits - empty * symbols + counts.shape[0] * n_ctx + float(golomb_bits(edges).sum()) + 16


def context_bits(codes: np.ndarray, grid: tuple[int, int], symbols: int,
                 k: int = SEARCH_BUCKETS) -> tuple[np.ndarray, np.ndarray]:
    """What a code costs under a chunk's neighbour tables, for the encoder's search: each dimension's bucket of
    every value (latent x symbols, in 0..k-1; k stands for outside the image) and the bits of each value in each
    context (latent x (k+1)^2 x symbols), counted on the codes (images * tiles x latent) with half a count added."""
    edges, counts, _, _ = _plan(codes, *_neighbours(len(codes) // (grid[0] * grid[1]), grid), symbols, k)
    p = (counts + 0.5) / (counts.sum(axis=-1, keepdims=True) + 0.5 * symbols)
    values = np.broadcast_to(np.arange(symbols)[:, None], (symbols, len(edges)))
    return _buckets(edges, values).T, -np.log2(p)


def encode_neighbours(codes: np.ndarray, grid: tuple[int, int], symbols: int) -> bytes | None:
    """Method 3's stream (without its method byte) of a chunk's codes (images * tiles x latent, tiles row-major),
    with the K of least estimated size; None where the chunk has no neighbouring tiles or the tables cannot pay."""
    rows, latent = codes.shape
    if grid[0] * grid[1] < 2 or rows % (grid[0] * grid[1]):
        return None
    candidates = [k for k in NEIGHBOUR_BUCKETS if latent * (k + 1) ** 2 * symbols <= MAX_TABLE_RATIO * codes.size]
    if not candidates:
        return None
    images = rows // (grid[0] * grid[1])
    left, up = _neighbours(images, grid)
    k, (edges, counts, scale, _) = min(((k, _plan(codes, left, up, symbols, k)) for k in candidates),
                                       key=lambda kp: kp[1][3])
    q = quantize_counts(counts, scale)
    p = q.astype(np.float64) / np.maximum(q.sum(axis=-1, keepdims=True), 1)
    order = np.concatenate(_order(images, grid))
    ctx = _contexts(codes, order, left, up, edges, k)
    probs = p[np.arange(latent)[None, :], ctx].reshape(-1, symbols)
    coder = constriction.stream.stack.AnsCoder()
    coder.encode_reverse(codes[order].reshape(-1), _MODEL_FAMILY, probs)
    used = q.reshape(-1, symbols).sum(axis=1) > 0
    values = np.concatenate([edges.reshape(-1), q.reshape(-1, symbols)[used].reshape(-1)])
    return (bytes([k, scale]) + np.packbits(used).tobytes() + pack_counts(values[None, :])
            + coder.get_compressed().astype("<u4").tobytes())


def decode_neighbours(data: bytes, rows: int, grid: tuple[int, int], latent: int, symbols: int) -> np.ndarray:
    """Inverse of `encode_neighbours`: rows x latent int32 codes."""
    tiles = grid[0] * grid[1]
    if len(data) < 2 or not 2 <= data[0] <= MAX_BUCKETS or data[1] > MAX_SCALE or rows % tiles:
        raise FormatError("latent stream: the neighbour tables' buckets or scale are missing or out of range")
    k, n_ctx = data[0], (data[0] + 1) ** 2
    flags = -(-latent * n_ctx // 8)
    if 2 + flags > len(data):
        raise FormatError("latent stream: the neighbour tables are cut short")
    used = np.unpackbits(np.frombuffer(data[2:2 + flags], np.uint8))[:latent * n_ctx].astype(bool)
    need = latent * (k - 1) + int(used.sum()) * symbols
    if need > 8 * (len(data) - 2 - flags):
        raise FormatError("latent stream: the neighbour tables are cut short")
    values, read = unpack_counts(data[2 + flags:], (1, need))
    edges = values[0, :latent * (k - 1)].reshape(latent, k - 1)
    if (edges >= symbols).any() or (np.diff(edges, axis=1) < 0).any():
        raise FormatError("latent stream: a neighbour table edge is out of range")
    words = data[2 + flags + read:]
    if len(words) % 4:
        raise FormatError("latent stream length is not a whole number of 32-bit words")
    q = values[0, latent * (k - 1):].reshape(-1, symbols)          # the marked tables only, as the stream holds them
    totals = q.sum(axis=1)
    p = q.astype(np.float64) / np.maximum(totals, 1)[:, None]
    table = np.where(used, np.cumsum(used) - 1, -1).reshape(latent, n_ctx)   # (dimension, context) -> row of q
    images = rows // tiles
    left, up = _neighbours(images, grid)
    codes = np.zeros((rows, latent), np.int32)
    try:
        coder = constriction.stream.stack.AnsCoder(np.frombuffer(words, dtype="<u4").astype(np.uint32))
    except ValueError as exc:
        raise FormatError(f"latent stream: {exc}") from None
    dims = np.arange(latent)[None, :]
    for part in _order(images, grid):
        row = table[dims, _contexts(codes, part, left, up, edges, k)]
        if (row < 0).any() or (totals[row] == 0).any():
            raise FormatError("latent stream: a neighbour table a code needs has no count")
        codes[part] = np.asarray(coder.decode(_MODEL_FAMILY, p[row].reshape(-1, symbols)),
                                 np.int32).reshape(len(part), latent)
    return codes
