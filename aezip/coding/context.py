"""A context entropy model for the latent codes: each dimension's table conditioned on already-coded dimensions.

Latent j is coded with the table of its context: the buckets (K = 4, of the fine code: min(v K // L, K - 1)) of up
to P = 3 "parent" dimensions coded before it (parents < j), so the context index is sum_i bucket(parent_i) K^i
and a dimension has up to K^P = 64 tables of L counts. Training picks each dimension's parents greedily (the parent
that most lowers the ideal code length of that dimension on the training codes, then the next) and counts the
tables on the training codes, plus a floor of 1 (no zero probability). They are stored in the model file as
`entropy.context.parents` (J x P, -1 where a dimension has fewer parents) and `entropy.context.tables`
(J x K^P x L); unused contexts hold their floor.

The stream is dimension-major (every image's latent 0, then every image's latent 1, ...), so the decoder decodes a
whole dimension of the chunk in one call, its contexts known from the dimensions decoded before. A method byte
starts each chunk's stream: 1 for the context coder, 0 for the per-dimension static coder, whichever the encoder
found shorter for that chunk. A file of a
quality level Q < L codes coarse codes with tables derived as quality.py derives the static ones (each context's
row summed into the coarse points); contexts are always bucketed from the fine values the decoder sees. Files name
the coder `ans-categorical-context-v1`; models without context tables keep the per-dimension coder.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import constriction

from aezip.coding.entropy import TABLE_FLOOR, decode_codes, encode_codes
from aezip.errors import FormatError
from aezip.coding.quality import ladder_tables, to_fine

CONTEXT_CODER = "ans-categorical-context-v1"
BUCKETS = 4
PARENTS = 3
_MODEL_FAMILY = constriction.stream.model.Categorical(perfect=False)


@dataclass
class ContextModel:
    """Each latent dimension's parents and its tables, one per context (see the module docstring)."""

    parents: np.ndarray     # latent x PARENTS, int64; -1: no parent
    tables: np.ndarray      # latent x BUCKETS^PARENTS x levels, int64, >= 1

    def tensors(self) -> dict[str, np.ndarray]:
        return {"entropy.context.parents": np.ascontiguousarray(self.parents, np.int64),
                "entropy.context.tables": np.ascontiguousarray(self.tables, np.int64)}

    @classmethod
    def from_tensors(cls, tensors: dict[str, np.ndarray]) -> "ContextModel | None":
        """The context model of a model file's (checked) tensors, None where it has none."""
        if "entropy.context.parents" not in tensors:
            return None
        return cls(tensors["entropy.context.parents"], tensors["entropy.context.tables"])


def check_context_tensors(latent: int, levels: int, tensors: dict[str, np.ndarray], max_total: float) -> set[str]:
    """The names of a model file's context tensors, after checking their dtype, shape and bounds (FormatError)."""
    names = {"entropy.context.parents", "entropy.context.tables"}
    if not names & set(tensors):
        return set()
    parents, tables = tensors.get("entropy.context.parents"), tensors.get("entropy.context.tables")
    ok = (parents is not None and tables is not None and parents.dtype == np.int64 and tables.dtype == np.int64
          and parents.shape == (latent, PARENTS) and tables.shape == (latent, BUCKETS ** PARENTS, levels))
    if not ok:
        raise FormatError(f"context tensors must be int64 {(latent, PARENTS)} and "
                          f"{(latent, BUCKETS ** PARENTS, levels)}")
    below = np.arange(latent)[:, None]
    if not bool(((parents == -1) | ((parents >= 0) & (parents < below))).all()):
        raise FormatError("context parents must be earlier dimensions (or -1)")
    if not (bool((tables >= 1).all()) and bool((tables.sum(axis=2, dtype=np.float64) < max_total).all())):
        raise FormatError("context tables must hold positive counts with bounded totals")
    return names


def buckets(fine: np.ndarray, levels: int) -> np.ndarray:
    """The context bucket 0..BUCKETS-1 of fine codes."""
    return np.minimum(np.asarray(fine, np.int64) * BUCKETS // levels, BUCKETS - 1)


def context_index(fine: np.ndarray, parents: np.ndarray, j: int, levels: int) -> np.ndarray:
    """Each image's context for dimension j (n,), from its fine codes (n x J) of j's parents."""
    idx = np.zeros(len(fine), np.int64)
    for i, p in enumerate(parents[j]):
        if p >= 0:
            idx += buckets(fine[:, p], levels) * BUCKETS ** i
    return idx


def _cost(counts: np.ndarray, ctx: np.ndarray, codes: np.ndarray) -> float:
    p = counts / counts.sum(axis=1, keepdims=True)
    return float(-np.log2(p[ctx, codes]).sum())


def fit_context(codes: np.ndarray, levels: int, floor: int = TABLE_FLOOR) -> ContextModel:
    """Each dimension's parents (chosen greedily) and its tables, counted on training codes (n x latent)."""
    codes = np.asarray(codes, np.int64)
    n, latent = codes.shape
    parents = np.full((latent, PARENTS), -1, np.int64)
    tables = np.zeros((latent, BUCKETS ** PARENTS, levels), np.int64)
    for j in range(latent):
        ctx = np.zeros(n, np.int64)
        for i in range(min(PARENTS, j)):
            best = None
            for p in range(j):
                if p in parents[j]:
                    continue
                trial = ctx + buckets(codes[:, p], levels) * BUCKETS ** i
                counts = np.full((BUCKETS ** (i + 1), levels), floor, np.int64)
                np.add.at(counts, (trial, codes[:, j]), 1)
                cost = _cost(counts, trial, codes[:, j])
                if best is None or cost < best[0]:
                    best = (cost, p, trial)
            parents[j, i], ctx = best[1], best[2]
        np.add.at(tables[j], (ctx, codes[:, j]), 1)
    return ContextModel(parents, tables + floor)


def _level_tables(tables: np.ndarray, quality: int | None) -> np.ndarray:
    """The context tables of a quality level: each row summed into the coarse points."""
    if quality is None:
        return tables
    latent, contexts, levels = tables.shape
    return ladder_tables(tables.reshape(-1, levels), quality).reshape(latent, contexts, quality)


def _rows(tables: np.ndarray, j: int, ctx: np.ndarray) -> np.ndarray:
    t = tables[j][ctx].astype(np.float64)
    return t / t.sum(axis=1, keepdims=True)


def _encode_dims(codes: np.ndarray, cm: ContextModel, levels: int, quality: int | None) -> bytes:
    """ANS-code codes (n x latent; coarse codes of `quality`, or fine) dimension-major with the context tables."""
    fine = codes if quality is None else to_fine(codes, levels, quality)
    t = _level_tables(cm.tables, quality)
    probs = np.concatenate([_rows(t, j, context_index(fine, cm.parents, j, levels)) for j in range(codes.shape[1])])
    coder = constriction.stream.stack.AnsCoder()
    coder.encode_reverse(np.ascontiguousarray(codes.T).reshape(-1), _MODEL_FAMILY, probs)
    return coder.get_compressed().astype("<u4").tobytes()


def _decode_dims(words: np.ndarray, n: int, cm: ContextModel, levels: int, quality: int | None) -> np.ndarray:
    latent = cm.tables.shape[0]
    codes = np.zeros((n, latent), np.int32)
    fine = np.zeros((n, latent), np.int64)
    t = _level_tables(cm.tables, quality)
    coder = constriction.stream.stack.AnsCoder(words)
    for j in range(latent):
        codes[:, j] = coder.decode(_MODEL_FAMILY, _rows(t, j, context_index(fine, cm.parents, j, levels)))
        fine[:, j] = codes[:, j] if quality is None else to_fine(codes[:, j], levels, quality)
    return codes


def encode_context(codes: np.ndarray, static: np.ndarray, cm: ContextModel, levels: int,
                   quality: int | None) -> bytes:
    """The shorter of the context coder's stream and the per-dimension coder's (with the `static` tables), after
    a method byte (1: context, 0: per dimension), so a chunk never costs more than one byte over the static
    floor (the context tables can fit a coarse level worse than the static ones)."""
    codes = np.asarray(codes, np.int32)
    if codes.size == 0:
        return b""
    ctx, plain = _encode_dims(codes, cm, levels, quality), encode_codes(codes, static)
    return b"\x01" + ctx if len(ctx) < len(plain) else b"\x00" + plain


def decode_context(data: bytes, n: int, static: np.ndarray, cm: ContextModel, levels: int,
                   quality: int | None) -> np.ndarray:
    """Inverse of `encode_context`: n x latent int32 codes (coarse codes of `quality`, or fine)."""
    if n == 0:
        return np.zeros((n, cm.tables.shape[0]), np.int32)
    if not data or data[0] not in (0, 1):
        raise ValueError("latent stream has no valid method byte")
    if data[0] == 0:
        return decode_codes(data[1:], n, static)
    if (len(data) - 1) % 4:
        raise ValueError("latent stream length is not a whole number of 32-bit words")
    return _decode_dims(np.frombuffer(data[1:], dtype="<u4").astype(np.uint32), n, cm, levels, quality)
