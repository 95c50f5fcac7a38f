"""The encoder's search for better latent codes (`--effort max`): greedy coordinate descent on the codes.

Rounding each latent to its nearest code is what a plain encoder does; the decoder is not linear, so other codes can
decode closer. For every latent dimension in turn the search tries the code one step down and one step up for all
images of a chunk at once, decodes them with the float decoder, and keeps a step where it lowers

    squared error (in 0..255 units, summed over the image) + lam x the code's bits under the model's static tables,

with lam = LAMBDA_PER_MSE x the image's mean squared error before the search: the trade between error and rate
scales with the error, as the slope of an RD curve does. Only the encoder changes: the decoder reads the codes as
always, so files keep decoding everywhere and their checksums and bounds hold. The codes a chunk stores are the
search's only where they lower that cost; the search can only lower it, estimate for estimate.
"""
from __future__ import annotations

import numpy as np
import torch

LAMBDA_PER_MSE = 8.0    # lam per unit of the image's mean squared error (picked on training images, README)
SWEEPS = 1              # passes over the dimensions (a second: +0.12-0.27 dB on MNIST training images, half the speed)


def search_codes(model: torch.nn.Module, x: torch.Tensor, codes: np.ndarray, values: np.ndarray, bits: np.ndarray,
                 image_shape: tuple[int, ...], sweeps: int = SWEEPS) -> np.ndarray:
    """Refined codes (rows x columns int32) for images x (rows x D in [0, 1]) from `codes`: values[j, c] is the
    latent value code c of column j decodes from, bits[j, c] its cost in bits (column j is latent j mod its
    width)."""
    q = values.shape[1]
    c = np.asarray(codes, dtype=np.int64).copy()
    dims = np.arange(c.shape[1]) % values.shape[0]

    def error(cc: np.ndarray) -> np.ndarray:
        return decoded_error(model, x, values[dims, cc], image_shape)

    sse = error(c)
    lam = LAMBDA_PER_MSE * sse / x.shape[1]
    cost = sse + lam * bits[dims, c].sum(1)
    rows = np.arange(len(c))
    for _ in range(sweeps):
        for j in range(c.shape[1]):
            for step in (-1, 1):
                trial = c.copy()
                trial[:, j] = np.clip(c[:, j] + step, 0, q - 1)
                moved = trial[:, j] != c[:, j]
                if not moved.any():
                    continue
                t_cost = error(trial) + lam * bits[dims, trial].sum(1)
                better = moved & (t_cost < cost)
                c[rows[better], j] = trial[better, j]
                cost = np.where(better, t_cost, cost)
    return c.astype(np.int32)


def decoded_error(model: torch.nn.Module, x: torch.Tensor, z: np.ndarray, image_shape: tuple[int, ...]) -> np.ndarray:
    """Each image's squared error (0..255 units) when latents z (rows x columns) are decoded by the float decoder."""
    with torch.no_grad():
        r = model.decode(torch.from_numpy(z).float().to(x.device), image_shape).double()
    return (((r - x.double()) * 255) ** 2).sum(1).cpu().numpy()


def code_bits(tables: np.ndarray) -> np.ndarray:
    """-log2 of each code's probability under frequency tables (latent x codes), with half a count added to each."""
    p = (tables + 0.5) / (tables + 0.5).sum(axis=1, keepdims=True)
    return -np.log2(p)


def refine(model: torch.nn.Module, tables: np.ndarray, levels: int, x: torch.Tensor, codes: np.ndarray,
           quality: int | None, image_shape: tuple[int, ...]) -> np.ndarray:
    """search_codes over the model's own codes (quality None) or a quality level's coarse codes; at a level, in
    whichever of the grid points and the bins' centroids decodes the plain codes closer (the encoder later keeps
    the closer of the two per chunk, as it does without the search)."""
    from aezip.coding.quality import centroid_values, fine_values, ladder_tables
    if quality is None:
        values = np.broadcast_to(np.arange(levels) / (levels - 1), tables.shape)
        return search_codes(model, x, codes, values, code_bits(tables), image_shape)
    grid = np.broadcast_to(fine_values(levels, quality) / (levels - 1), (tables.shape[0], quality))
    centroid = centroid_values(tables, quality) / (levels - 1)
    dims = np.arange(codes.shape[1]) % tables.shape[0]
    closer = (decoded_error(model, x, centroid[dims, codes], image_shape).sum()
              < decoded_error(model, x, grid[dims, codes], image_shape).sum())
    values = centroid if closer else grid
    return search_codes(model, x, codes, values, code_bits(ladder_tables(tables, quality)), image_shape)
