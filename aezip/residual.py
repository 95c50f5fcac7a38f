"""Max-error residual coding: every decoded pixel within E gray levels of the original (E = 0: lossless).

Given the decoder's integer prediction p (bit-identical everywhere, see intdecoder), each pixel x is coded as the
index q of its bin of width 2E+1 centred on p + q(2E+1); the decoded value is clip(p + q(2E+1), 0, 255), within E of
x. Pixels are coded in raster order, all images of a chunk at a time, with adaptive frequency counts per context.
The context is what the decoder already knows: the prediction p (bucketed) and the largest and smallest of the
already decoded neighbours W, N, NW, NE (bucketed). Counts are integers updated after each raster step, so both
sides build the same models; the symbols go through constriction's range coder.
"""
from __future__ import annotations

import numpy as np
import constriction

RESIDUAL_CODER = "context-adaptive-v1"
_PRED_EDGES = np.array([1, 16, 48, 96, 160, 208, 240, 255])       # 9 buckets: 0 and 255 stand alone
_NEIGH_EDGES = np.array([1, 32, 96, 160, 224, 255])               # 7 buckets
_N_CTX = (len(_PRED_EDGES) + 1) * (len(_NEIGH_EDGES) + 1) ** 2
_INCREMENT = 24
_MODEL_FAMILY = constriction.stream.model.Categorical(perfect=False)


def _layout(image_shape: tuple[int, ...]) -> tuple[int, int, int]:
    h, w = image_shape[0], image_shape[1]
    c = image_shape[2] if len(image_shape) == 3 else 1
    return h, w, c


class _Contexts:
    """Context indices for raster position `pos`, from the prediction and the decoded neighbours."""

    def __init__(self, image_shape: tuple[int, ...], pred: np.ndarray) -> None:
        self.h, self.w, self.c = _layout(image_shape)
        self.pred_bucket = np.searchsorted(_PRED_EDGES, pred, side="right").astype(np.int64)

    def at(self, pos: int, recon: np.ndarray) -> np.ndarray:
        pix, ch = divmod(pos, self.c)
        y, x = divmod(pix, self.w)
        stride_row = self.w * self.c
        neigh = []
        if x > 0:
            neigh.append(recon[:, pos - self.c])
        if y > 0:
            neigh.append(recon[:, pos - stride_row])
            if x > 0:
                neigh.append(recon[:, pos - stride_row - self.c])
            if x < self.w - 1:
                neigh.append(recon[:, pos - stride_row + self.c])
        if neigh:
            stack = np.stack(neigh)
            hi, lo = stack.max(0), stack.min(0)
        else:
            hi = lo = np.zeros(len(recon), np.uint8)
        nb = len(_NEIGH_EDGES) + 1
        return ((self.pred_bucket[:, pos] * nb + np.searchsorted(_NEIGH_EDGES, hi, side="right")) * nb
                + np.searchsorted(_NEIGH_EDGES, lo, side="right"))


def _alphabet(max_error: int) -> tuple[int, int]:
    """(step, qmax): bins of width step, indices q in [-qmax, qmax]."""
    step = 2 * max_error + 1
    return step, -(-255 // step)


def _probabilities(counts: np.ndarray, ctx: np.ndarray) -> np.ndarray:
    rows = counts[ctx].astype(np.float64)
    return rows / rows.sum(axis=1, keepdims=True)


def encode_residual(x: np.ndarray, pred: np.ndarray, image_shape: tuple[int, ...],
                    max_error: int) -> tuple[bytes, np.ndarray]:
    """Code x (n x D uint8) given the prediction; returns the bytes and the reconstruction the decoder will make."""
    step, qmax = _alphabet(max_error)
    n, d = x.shape
    ctxs = _Contexts(image_shape, pred)
    counts = np.ones((_N_CTX, 2 * qmax + 1), np.int64)
    recon = np.zeros((n, d), np.uint8)
    coder = constriction.stream.queue.RangeEncoder()
    r = x.astype(np.int64) - pred.astype(np.int64)
    q_all = np.sign(r) * ((np.abs(r) + max_error) // step)
    for pos in range(d):
        ctx = ctxs.at(pos, recon)
        sym = (q_all[:, pos] + qmax).astype(np.int32)
        coder.encode(sym, _MODEL_FAMILY, _probabilities(counts, ctx))
        np.add.at(counts, (ctx, sym), _INCREMENT)
        recon[:, pos] = np.clip(pred[:, pos].astype(np.int64) + q_all[:, pos] * step, 0, 255)
    return coder.get_compressed().astype("<u4").tobytes(), recon


def decode_residual(data: bytes, pred: np.ndarray, image_shape: tuple[int, ...], max_error: int) -> np.ndarray:
    """Inverse of `encode_residual`: the reconstruction (n x D uint8)."""
    step, qmax = _alphabet(max_error)
    n, d = pred.shape
    if len(data) % 4:
        raise ValueError("residual stream length is not a whole number of 32-bit words")
    ctxs = _Contexts(image_shape, pred)
    counts = np.ones((_N_CTX, 2 * qmax + 1), np.int64)
    recon = np.zeros((n, d), np.uint8)
    coder = constriction.stream.queue.RangeDecoder(np.frombuffer(data, dtype="<u4").astype(np.uint32))
    for pos in range(d):
        ctx = ctxs.at(pos, recon)
        sym = np.asarray(coder.decode(_MODEL_FAMILY, _probabilities(counts, ctx)), dtype=np.int64)
        np.add.at(counts, (ctx, sym), _INCREMENT)
        recon[:, pos] = np.clip(pred[:, pos].astype(np.int64) + (sym - qmax) * step, 0, 255)
    return recon
