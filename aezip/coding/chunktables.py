"""Per-chunk entropy tables: a chunk's latent codes coded with tables counted on the chunk itself.

The model's static tables (entropy.py) are counted on the training latents; on other data (held-out photographs)
the latents are less sparse and those tables cost far more than the codes' own statistics. This coder counts the
chunk's codes per latent dimension, quantizes each dimension's histogram to a small scale T = 2^s (a count c of
the chunk's n rows becomes round(c T / n), at least 1 where c > 0, 0 where c = 0), writes those integers into the
stream (order-0 Exp-Golomb codes), and ANS-codes the codes with them (probabilities q / sum q, exact IEEE division
of integers, as entropy.py does, so every machine rebuilds the same models). The encoder picks the scale whose
estimated total (tables + codes) is smallest.

A method byte starts each chunk's latent stream:
  0  the model's static per-dimension tables (of the chunk's quality level), the rest as entropy.encode_codes;
  1  the model's context model (context.py), only for models that have one;
  2  the chunk's own tables: a byte s (0..MAX_SCALE), the latent x Q counts (row-major, each <= 2^MAX_SCALE,
     every dimension's sum >= 1), zero bits to the byte, then the ANS words;
  3  a tile model's codes with per-chunk tables conditioned on the left and upper tiles' codes (neighbours.py).
The encoder writes the shortest, so a chunk never costs more than one byte over the static coder (or the context
coder, which carries its own method byte 0/1 with the same meaning). Files of whole-image models name the coder
`ans-chunk-tables-v1`, or at a --quality level `ans-chunk-tables-v2`, the same stream whose method byte also
carries CENTROID_BIT where the chunk's coarse codes stand for their bins' centroids instead of their grid points
(quality.py). Files of tile models name `ans-chunk-tables-v3`, with or without a quality: v2's stream, which may
also take method 3 (an older aezip refuses such files by the coder's name).
"""
from __future__ import annotations

import numpy as np
import constriction

from aezip.coding.context import ContextModel, decode_context, encode_context
from aezip.coding.counts import MAX_SCALE, best_scale, pack_counts, quantize_counts, unpack_counts
from aezip.coding.entropy import decode_codes, encode_codes
from aezip.coding.neighbours import decode_neighbours, encode_neighbours
from aezip.errors import FormatError

CHUNK_CODER = "ans-chunk-tables-v1"
CHUNK_CODER_V2 = "ans-chunk-tables-v2"   # v1 + CENTROID_BIT in the method byte; written for --quality levels
CHUNK_CODER_V3 = "ans-chunk-tables-v3"   # v2 + method 3 (neighbours.py), with or without a quality: tile models
CENTROID_BIT = 0x80
STATIC, CONTEXT, CHUNK, NEIGHBOURS = 0, 1, 2, 3
LATENT_METHODS = {STATIC: "static tables", CONTEXT: "context model", CHUNK: "chunk tables",
                  NEIGHBOURS: "neighbour tables"}
_MODEL_FAMILY = constriction.stream.model.Categorical(perfect=False)


def _probabilities(q: np.ndarray, n: int) -> np.ndarray:
    p = q.astype(np.float64) / q.sum(axis=1, keepdims=True)
    return np.tile(p, (n, 1))


def encode_own(codes: np.ndarray, symbols: int) -> bytes:
    """Method CHUNK's stream (without its method byte): codes (rows x latent, values < symbols) with their own
    quantized tables."""
    rows, latent = codes.shape
    counts = np.stack([np.bincount(codes[:, j], minlength=symbols)[:symbols] for j in range(latent)])
    scale = best_scale(counts)[1]
    q = quantize_counts(counts, scale)
    coder = constriction.stream.stack.AnsCoder()
    coder.encode_reverse(codes.reshape(-1), _MODEL_FAMILY, _probabilities(q, rows))
    return bytes([scale]) + pack_counts(q) + coder.get_compressed().astype("<u4").tobytes()


def decode_own(data: bytes, rows: int, latent: int, symbols: int) -> np.ndarray:
    """Inverse of `encode_own`: rows x latent int32 codes."""
    if not data or data[0] > MAX_SCALE:
        raise FormatError("latent stream: the chunk tables' scale is missing or out of range")
    q, used = unpack_counts(data[1:], (latent, symbols))
    words = data[1 + used:]
    if len(words) % 4:
        raise FormatError("latent stream length is not a whole number of 32-bit words")
    coder = constriction.stream.stack.AnsCoder(np.frombuffer(words, dtype="<u4").astype(np.uint32))
    return np.asarray(coder.decode(_MODEL_FAMILY, _probabilities(q, rows)), np.int32).reshape(rows, latent)


def encode_chunk_latents(codes: np.ndarray, static: np.ndarray, cm: ContextModel | None, levels: int,
                         quality: int | None, grid: tuple[int, int] | None = None) -> bytes:
    """The shortest of the model's coder (static tables, or the context model where the model has one), the
    chunk's own tables and, given a tile grid (v3 files), the neighbour-context tables, after the method byte
    (module docstring)."""
    codes = np.ascontiguousarray(codes, np.int32)
    if codes.size == 0:
        return b""
    base = (encode_context(codes, static, cm, levels, quality) if cm is not None
            else bytes([STATIC]) + encode_codes(codes, static))
    streams = [base, bytes([CHUNK]) + encode_own(codes, static.shape[1])]
    near = encode_neighbours(codes, grid, static.shape[1]) if grid is not None else None
    if near is not None:
        streams.append(bytes([NEIGHBOURS]) + near)
    return min(streams, key=len)                  # ties keep the earlier method


def decode_chunk_latents(data: bytes, rows: int, static: np.ndarray, cm: ContextModel | None, levels: int,
                         quality: int | None, grid: tuple[int, int] | None = None) -> np.ndarray:
    """Inverse of `encode_chunk_latents`: rows x latent int32 codes (coarse codes of `quality`, or fine); `grid`
    (the images' tile rows and columns) where the file's coder allows the neighbour-context tables."""
    latent, symbols = static.shape
    if rows == 0:
        return np.zeros((0, latent), np.int32)
    methods = (STATIC, CHUNK) + ((CONTEXT,) if cm is not None else ()) + ((NEIGHBOURS,) if grid is not None else ())
    if not data or data[0] not in methods:
        raise FormatError("latent stream has no valid method byte")
    if data[0] == CHUNK:
        return decode_own(data[1:], rows, latent, symbols)
    if data[0] == NEIGHBOURS:
        return decode_neighbours(data[1:], rows, grid, latent, symbols)
    if cm is not None:
        return decode_context(data, rows, static, cm, levels, quality)
    return decode_codes(data[1:], rows, static)


def mark_centroid(data: bytes, centroid: bool) -> bytes:
    """A v2 stream: the v1 stream with CENTROID_BIT set in its method byte where the codes stand for centroids (an
    empty stream, a chunk without latents, stays empty)."""
    return bytes([data[0] | CENTROID_BIT]) + data[1:] if centroid and data else data


def split_centroid(data: bytes) -> tuple[bytes, bool]:
    """Inverse of mark_centroid: the v1 stream and whether the codes stand for centroids."""
    if data and data[0] & CENTROID_BIT:
        return bytes([data[0] & ~CENTROID_BIT & 0xFF]) + data[1:], True
    return data, False
