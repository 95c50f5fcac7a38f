"""The compiled feature windows (pixelkernel.py) give pass_features the numbers a padded numpy gather gives."""
from __future__ import annotations

import numpy as np
import pytest

from aezip.coding.pixelmodel import n_features, pass_features, schedule


def _reference_features(canvas: np.ndarray, pred: np.ndarray, k: int, levels: int) -> np.ndarray:
    """The definition: dilated windows read from zero-padded planes at every pass position, then the reference."""
    (step, py, px, dil), c = schedule(levels)[k // canvas.shape[3]], k % canvas.shape[3]
    planes = [(canvas[..., c], 2), (pred[..., c], 1)] + ([(canvas[..., c - 1], 1)] if c else [])
    cols = []
    for plane, r in planes:
        pad = np.pad(plane, ((0, 0), (r * dil, r * dil), (r * dil, r * dil)))
        ys, xs = np.arange(py, plane.shape[1], step), np.arange(px, plane.shape[2], step)
        for dy in range(-r, r + 1):
            for dx in range(-r, r + 1):
                cols.append(pad[:, ys[:, None] + (dy + r) * dil, xs[None, :] + (dx + r) * dil].reshape(-1))
    dy, dx = -1 if py else 0, -1 if px else 0     # the nearest decoded pixel; the prediction in the first pass
    cols.append(cols[29] if (dy, dx) == (0, 0) else cols[(dy + 2) * 5 + dx + 2])
    return np.stack(cols, axis=1).astype(np.float64)


@pytest.mark.parametrize("shape", [(3, 5, 7, 1), (2, 8, 8, 3), (2, 9, 13, 3), (1, 1, 1, 1), (2, 28, 28, 1)])
@pytest.mark.parametrize("levels", [1, 3])
def test_features_match_the_padded_gather(shape: tuple[int, ...], levels: int) -> None:
    rng = np.random.default_rng(sum(shape) + levels)
    canvas, pred = rng.integers(0, 256, shape), rng.integers(0, 256, shape)
    for k in range(len(schedule(levels)) * shape[3]):
        feats = pass_features(canvas, pred, k, levels)
        assert feats.shape[1] == n_features(k % shape[3])
        np.testing.assert_array_equal(feats, _reference_features(canvas, pred, k, levels))
