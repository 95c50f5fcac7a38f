"""Quantized latents and their entropy model: integer frequency tables per latent dimension, coded with ANS.

The tables are counted on the training latents (plus a floor, so no symbol has zero probability) and stored in the
model file. Coding goes through `constriction`'s ANS coder with `Categorical` models built from those integers;
the division count / total is exact IEEE arithmetic, so encoder and decoder build identical models everywhere.
"""
from __future__ import annotations

import numpy as np
import constriction

LATENT_CODER = "ans-categorical-per-dim"   # recorded in every .aez header
TABLE_FLOOR = 1
_MODEL_FAMILY = constriction.stream.model.Categorical(perfect=False)


def frequency_tables(codes: np.ndarray, levels: int, floor: int = TABLE_FLOOR, latent: int | None = None
                     ) -> np.ndarray:
    """Counts (latent x levels, int64) of each code value per latent dimension, plus `floor`; codes are
    n x latent (or, for a tile model, n x (tiles * latent) with `latent` given)."""
    codes = np.asarray(codes).reshape(-1, latent or codes.shape[1])
    return np.stack([np.bincount(codes[:, j], minlength=levels)[:levels] + floor
                     for j in range(codes.shape[1])]).astype(np.int64)


def _probabilities(tables: np.ndarray, n: int) -> np.ndarray:
    """Per-symbol probability rows for n images, in the order the codes are flattened (row-major)."""
    p = tables.astype(np.float64) / tables.sum(axis=1, keepdims=True)
    return np.tile(p, (n, 1))


def encode_codes(codes: np.ndarray, tables: np.ndarray) -> bytes:
    """ANS-code integer codes (n x latent, or n x (tiles * latent): every tile with the same tables) with the
    per-dimension tables."""
    codes = np.asarray(codes, dtype=np.int32)
    if codes.size == 0:
        return b""
    coder = constriction.stream.stack.AnsCoder()
    coder.encode_reverse(codes.reshape(-1), _MODEL_FAMILY, _probabilities(tables, codes.size // tables.shape[0]))
    return coder.get_compressed().astype("<u4").tobytes()


def decode_codes(data: bytes, n: int, tables: np.ndarray) -> np.ndarray:
    """Inverse of `encode_codes`: n x latent int32 codes."""
    latent = tables.shape[0]
    if n == 0:
        return np.zeros((0, latent), np.int32)
    if len(data) % 4:
        raise ValueError("latent stream length is not a whole number of 32-bit words")
    coder = constriction.stream.stack.AnsCoder(np.frombuffer(data, dtype="<u4").astype(np.uint32))
    out = coder.decode(_MODEL_FAMILY, _probabilities(tables, n))
    return np.asarray(out, dtype=np.int32).reshape(n, latent)

