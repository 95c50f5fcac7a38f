"""Integer frequency tables stored in a stream, shared by the chunk-tables coder's methods (chunktables.py,
neighbours.py): histograms quantized to a scale, their estimated cost, and their order-0 Exp-Golomb packing."""
from __future__ import annotations

import numpy as np

from aezip.errors import FormatError

MAX_SCALE = 16


def quantize_counts(counts: np.ndarray, scale: int) -> np.ndarray:
    """Each histogram (last axis) quantized to about 2^scale of its own total: 0 stays 0, others >= 1."""
    total = np.maximum(counts.sum(axis=-1, keepdims=True), 1)
    q = np.floor(counts.astype(np.float64) * (1 << scale) / total + 0.5).astype(np.int64)
    return np.where(counts > 0, np.maximum(q, 1), 0)


def golomb_bits(values: np.ndarray) -> np.ndarray:
    """Bit length of each value's order-0 Exp-Golomb code."""
    return 2 * np.floor(np.log2(values.astype(np.float64) + 1)).astype(np.int64) + 1


def estimate_bits(counts: np.ndarray, q: np.ndarray) -> float:
    """Estimated bits of codes with histograms `counts` coded with tables q: the tables' Exp-Golomb codes plus the
    codes' ideal length under them."""
    used = counts > 0
    p = q / np.maximum(q.sum(axis=-1, keepdims=True), 1)
    return float(golomb_bits(q).sum() - (counts[used] * np.log2(p[used])).sum())


def best_scale(counts: np.ndarray) -> tuple[float, int]:
    """The least estimated bits over the scales 0..MAX_SCALE, and that scale."""
    return min((estimate_bits(counts, quantize_counts(counts, s)), s) for s in range(MAX_SCALE + 1))


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
    """Inverse of `pack_counts` for `shape` counts, each <= 2^MAX_SCALE, every row's sum >= 1 (FormatError
    otherwise); also the bytes read."""
    need, out = shape[0] * shape[1], []
    head = data[:need * (2 * MAX_SCALE + 3) // 8 + 1]
    bits = bin(int.from_bytes(head, "big"))[2:].zfill(8 * len(head)) if head else ""
    pos = 0
    for _ in range(need):
        one = bits.find("1", pos, pos + MAX_SCALE + 1)
        zeros = one - pos
        if one < 0 or pos + 2 * zeros + 1 > len(bits):
            raise FormatError("latent stream: a chunk table count is out of range or cut short")
        v = int(bits[one:one + zeros + 1], 2) - 1
        if v > 1 << MAX_SCALE:
            raise FormatError("latent stream: a chunk table count is out of range")
        out.append(v)
        pos += 2 * zeros + 1
    q = np.array(out, np.int64).reshape(shape)
    if not bool((q.sum(axis=1) >= 1).all()):
        raise FormatError("latent stream: a chunk table has no count")
    return q, (pos + 7) // 8
