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
     every dimension's sum >= 1), zero bits to the byte, then the ANS words.
The encoder writes the shortest, so a chunk never costs more than one byte over the static coder (or the context
coder, which carries its own method byte 0/1 with the same meaning). Files name the coder `ans-chunk-tables-v1`;
files of a --quality level name `ans-chunk-tables-v2`, the same stream whose method byte also carries CENTROID_BIT
where the chunk's coarse codes stand for their bins' centroids instead of their grid points (quality.py).
"""
from __future__ import annotations

import numpy as np
import constriction

from aezip.coding.context import ContextModel, decode_context, encode_context
from aezip.coding.entropy import decode_codes, encode_codes
from aezip.errors import FormatError

CHUNK_CODER = "ans-chunk-tables-v1"
CHUNK_CODER_V2 = "ans-chunk-tables-v2"   # v1 + CENTROID_BIT in the method byte; written for --quality levels
CENTROID_BIT = 0x80
MAX_SCALE = 16
STATIC, CONTEXT, CHUNK = 0, 1, 2
_MODEL_FAMILY = constriction.stream.model.Categorical(perfect=False)


def quantize_counts(counts: np.ndarray, rows: int, scale: int) -> np.ndarray:
    """Each dimension's counts (latent x Q) of `rows` codes quantized to about 2^scale: 0 stays 0, others >= 1."""
    q = np.floor(counts.astype(np.float64) * (1 << scale) / rows + 0.5).astype(np.int64)
    return np.where(counts > 0, np.maximum(q, 1), 0)


def _golomb_bits(values: np.ndarray) -> np.ndarray:
    """Bit length of each value's order-0 Exp-Golomb code."""
    return 2 * np.floor(np.log2(values.astype(np.float64) + 1)).astype(np.int64) + 1


def _estimate(counts: np.ndarray, q: np.ndarray) -> float:
    """Estimated bits of a chunk coded with tables q: the tables' Exp-Golomb codes plus the codes' ideal length."""
    used = counts > 0
    p = q / q.sum(axis=1, keepdims=True)
    return float(_golomb_bits(q).sum() - (counts[used] * np.log2(p[used])).sum())


def pick_scale(counts: np.ndarray, rows: int) -> int:
    """The scale 0..MAX_SCALE whose quantized tables give the smallest estimated chunk."""
    return min(range(MAX_SCALE + 1), key=lambda s: _estimate(counts, quantize_counts(counts, rows, s)))


def pack_counts(q: np.ndarray) -> bytes:
    """Order-0 Exp-Golomb codes of the counts (row-major), zero-padded to a whole byte."""
    bits: list[str] = []
    for v in q.reshape(-1).tolist():
        b = bin(v + 1)[2:]
        bits.append("0" * (len(b) - 1) + b)
    s = "".join(bits)
    s += "0" * (-len(s) % 8)
    return int(s, 2).to_bytes(len(s) // 8, "big") if s else b""


def unpack_counts(data: bytes, shape: tuple[int, int]) -> tuple[np.ndarray, int]:
    """Inverse of `pack_counts` for `shape` counts, each <= 2^MAX_SCALE (FormatError otherwise); also the bytes
    read."""
    need, out = shape[0] * shape[1], []
    bits = "".join(f"{b:08b}" for b in data[:need * (2 * MAX_SCALE + 3) // 8 + 1])
    pos = 0
    for _ in range(need):
        zeros = 0
        while pos + zeros < len(bits) and bits[pos + zeros] == "0" and zeros <= MAX_SCALE:
            zeros += 1
        if zeros > MAX_SCALE or pos + 2 * zeros + 1 > len(bits):
            raise FormatError("latent stream: a chunk table count is out of range or cut short")
        v = int(bits[pos + zeros:pos + 2 * zeros + 1], 2) - 1
        if v > 1 << MAX_SCALE:
            raise FormatError("latent stream: a chunk table count is out of range")
        out.append(v)
        pos += 2 * zeros + 1
    q = np.array(out, np.int64).reshape(shape)
    if not bool((q.sum(axis=1) >= 1).all()):
        raise FormatError("latent stream: a chunk table has no count")
    return q, (pos + 7) // 8


def _probabilities(q: np.ndarray, n: int) -> np.ndarray:
    p = q.astype(np.float64) / q.sum(axis=1, keepdims=True)
    return np.tile(p, (n, 1))


def encode_own(codes: np.ndarray, symbols: int) -> bytes:
    """Method CHUNK's stream (without its method byte): codes (rows x latent, values < symbols) with their own
    quantized tables."""
    rows, latent = codes.shape
    counts = np.stack([np.bincount(codes[:, j], minlength=symbols)[:symbols] for j in range(latent)])
    scale = pick_scale(counts, rows)
    q = quantize_counts(counts, rows, scale)
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
                         quality: int | None) -> bytes:
    """The shortest of the model's coder (static tables, or the context model where the model has one) and the
    chunk's own tables, after the method byte (module docstring)."""
    codes = np.ascontiguousarray(codes, np.int32)
    if codes.size == 0:
        return b""
    base = (encode_context(codes, static, cm, levels, quality) if cm is not None
            else bytes([STATIC]) + encode_codes(codes, static))
    own = bytes([CHUNK]) + encode_own(codes, static.shape[1])
    return own if len(own) < len(base) else base


def decode_chunk_latents(data: bytes, rows: int, static: np.ndarray, cm: ContextModel | None, levels: int,
                         quality: int | None) -> np.ndarray:
    """Inverse of `encode_chunk_latents`: rows x latent int32 codes (coarse codes of `quality`, or fine)."""
    latent, symbols = static.shape
    if rows == 0:
        return np.zeros((0, latent), np.int32)
    if not data or data[0] not in ((STATIC, CONTEXT, CHUNK) if cm is not None else (STATIC, CHUNK)):
        raise FormatError("latent stream has no valid method byte")
    if data[0] == CHUNK:
        return decode_own(data[1:], rows, latent, symbols)
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
