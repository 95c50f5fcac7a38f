"""The compiled context coder (contextkernel.py) writes the bytes constriction wrote, and decodes them."""
from __future__ import annotations

import os
import subprocess
import sys
import zlib

import numpy as np
import pytest

from aezip.coding import bins
from aezip.coding.residual import N_CONTEXTS, decode_residual, encode_residual, residual_bits
from context_reference import reference_encode


def _case(shape: tuple[int, ...], kind: str, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Images, predictions and a prior: 'noise' (every symbol), 'sparse' (MNIST-like: mostly 0, some 255),
    'smooth' (predictions close to the pixels)."""
    rng = np.random.default_rng(seed)
    n, d = shape[0], int(np.prod(shape[1:]))
    if kind == "noise":
        x = rng.integers(0, 256, (n, d))
    elif kind == "sparse":
        x = np.where(rng.random((n, d)) < 0.8, 0, np.where(rng.random((n, d)) < 0.5, 255, rng.integers(0, 256, (n, d))))
    else:
        x = np.clip(np.cumsum(rng.integers(-6, 7, (n, d)), axis=1) + 128, 0, 255)
    pred = np.clip(x + rng.integers(-20, 21, x.shape), 0, 255).astype(np.uint8)
    prior = rng.integers(0, 40, (N_CONTEXTS, 256)) * rng.integers(0, 2, (N_CONTEXTS, 1))
    return x.astype(np.uint8), pred, prior.astype(np.int64)


@pytest.mark.parametrize("shape", [(37, 5, 7), (20, 8, 8, 3), (9, 1, 1), (3, 2, 9, 3)])
@pytest.mark.parametrize("max_error", [0, 1, 4, 255])
@pytest.mark.parametrize("kind", ["noise", "sparse", "smooth"])
def test_bytes_match_constriction_and_round_trip(shape: tuple[int, ...], max_error: int, kind: str) -> None:
    x, pred, prior = _case(shape, kind, seed=zlib.crc32(repr((shape, max_error, kind)).encode()))
    data, recon = encode_residual(x, pred, shape[1:], max_error, prior)
    assert data == reference_encode(x, pred, shape[1:], max_error, prior)
    assert np.abs(recon.astype(int) - x).max() <= max_error
    np.testing.assert_array_equal(decode_residual(data, pred, shape[1:], max_error, prior), recon)


@pytest.mark.parametrize("shape", [(37, 5, 7), (20, 8, 8, 3), (300, 6, 6)])
@pytest.mark.parametrize("max_error", [0, 1, 4, 255])
@pytest.mark.parametrize("kind", ["noise", "sparse", "smooth"])
def test_ideal_length_is_the_stream_without_the_coder(shape: tuple[int, ...], max_error: int, kind: str) -> None:
    """The chooser's estimate: the real stream is the ideal length plus the range coder's seal (<= 8 bytes, 4-byte
    words) and its 24-bit quantization, never less (a real stream is never shorter than its ideal length less a word)."""
    x, pred, prior = _case(shape, kind, seed=zlib.crc32(repr((shape, max_error, kind, "ideal")).encode()))
    data, _ = encode_residual(x, pred, shape[1:], max_error, prior)
    ideal = residual_bits(x, pred, shape[1:], max_error, prior) / 8
    assert ideal - 4 <= len(data) <= ideal * 1.002 + 12


def test_bins_sum_the_counts_of_their_members() -> None:
    rows = np.random.default_rng(3).integers(0, 1 << 40, (5, 7, 256))
    for e in (0, 1, 2, 4, 42, 127, 128, 255):
        step, nbins = bins.geometry(e)
        want = np.stack([rows[..., b * step:(b + 1) * step].sum(-1) for b in range(nbins)], axis=-1)
        np.testing.assert_array_equal(bins.sum_into_bins(rows, e), want)


def test_long_sparse_chunk_matches_constriction() -> None:
    """A chunk as large as the codec's (1,024 images), skewed like MNIST: long runs of one symbol, carries."""
    x, pred, prior = _case((1024, 6, 6), "sparse", seed=5)
    data, _ = encode_residual(x, pred, (6, 6), 0, prior)
    assert data == reference_encode(x, pred, (6, 6), 0, prior)


def test_damaged_stream_is_an_error_or_other_pixels() -> None:
    """Flipped bits either fail to decode (ValueError) or decode to other pixels, which the chunk CRC refuses."""
    x, pred, prior = _case((40, 5, 7), "smooth", seed=3)
    data, recon = encode_residual(x, pred, (5, 7), 0, prior)
    outcomes = set()
    for i in range(0, len(data), max(1, len(data) // 25)):
        bad = bytearray(data)
        bad[i] ^= 0x5A
        try:
            outcomes.add(bool((decode_residual(bytes(bad), pred, (5, 7), 0, prior) != recon).any()))
        except ValueError:
            outcomes.add("error")
    assert False not in outcomes
    with pytest.raises(ValueError, match="does not decode"):
        decode_residual(b"\xff" * 8, pred, (5, 7), 0, np.zeros_like(prior))


_SCRIPT = """
import sys, numpy as np
from aezip.coding.residual import decode_residual, encode_residual
t = np.load(sys.argv[1])
data, recon = encode_residual(t["x"], t["pred"], (8, 8, 3), 0, t["prior"])
assert (decode_residual(data, t["pred"], (8, 8, 3), 0, t["prior"]) == recon).all()
open(sys.argv[2], "wb").write(data)
"""


def test_identical_bytes_across_processes_and_thread_counts(tmp_path) -> None:
    x, pred, prior = _case((50, 8, 8, 3), "smooth", seed=11)
    np.savez(tmp_path / "case.npz", x=x, pred=pred, prior=prior)
    outs = []
    for threads in ("1", "2"):
        env = {**os.environ, "OMP_NUM_THREADS": threads, "OPENBLAS_NUM_THREADS": threads,
               "NUMBA_NUM_THREADS": threads}
        subprocess.run([sys.executable, "-c", _SCRIPT, str(tmp_path / "case.npz"), str(tmp_path / threads)],
                       check=True, env=env)
        outs.append((tmp_path / threads).read_bytes())
    assert outs[0] == outs[1] == reference_encode(x, pred, (8, 8, 3), 0, prior)


def test_lossy_paths_do_not_import_numba() -> None:
    """numba (and its compiled-code cache) is loaded by --max-error coding only."""
    code = "import sys, aezip.codec, aezip.cli.main; print('numba' in sys.modules)"
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert run.stdout.strip() == "False"


def test_context_prior_counts_the_reference_contexts() -> None:
    """Training's prior (context_prior, through the compiled contexts) counts what the searchsorted contexts give."""
    from aezip.coding.residual import PRIOR_TOTAL, _PRED_EDGES, context_prior
    from context_reference import _contexts
    x, pred, _ = _case((30, 6, 5, 3), "sparse", seed=8)
    counts = np.zeros((N_CONTEXTS, 256), np.int64)
    bucket = np.searchsorted(_PRED_EDGES, pred, side="right").astype(np.int64)
    for pos in range(x.shape[1]):
        np.add.at(counts, (_contexts(pos, (6, 5, 3), bucket, x), x[:, pos].astype(np.int64)), 1)
    expect = counts * PRIOR_TOTAL // np.maximum(counts.sum(axis=1, keepdims=True), 1)
    np.testing.assert_array_equal(context_prior(x, pred, (6, 5, 3)), expect)
