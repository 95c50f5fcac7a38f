"""The encoder's search for better latent codes (`--effort max`): greedy coordinate descent on the codes.

Rounding each latent to its nearest code is what a plain encoder does; the decoder is not linear, so other codes can
decode closer. For every latent dimension in turn the search tries the code one step down and one step up for all
images of a chunk at once, decodes them with the float decoder, and keeps a step where it lowers

    squared error (in 0..255 units) + lam x the code's bits under the model's static tables,

with lam = LAMBDA_PER_MSE x the image's mean squared error before the search: the trade between error and rate
scales with the error, as the slope of an RD curve does.

A tile model's tile decodes from the latents of the tiles within its context r, so a tile's code moves the error of
those (2r+1)^2 tiles only. The search therefore steps every tile of a group at once, the tiles whose row and column
are equal modulo 2r+1: their neighbourhoods are disjoint, so one decode gives each tile's own change of error, and
each step is kept or not per tile. The decodes a sweep takes are (2r+1)^2 x latent x 2, whatever the image's size
(a whole-image model is the case of one tile and r = 0).

Only the encoder changes: the decoder reads the codes as always, so files keep decoding everywhere and their
checksums and bounds hold. The search can only lower its cost, estimate for estimate.
"""
from __future__ import annotations

import numpy as np
import torch

from aezip.network import tiles

LATENT_SEARCH = "greedy-coordinate-v1"   # what the header of a file written with the search records
LAMBDA_PER_MSE = 8.0    # lam per unit of the image's mean squared error (picked on training images, README)
SWEEPS = 1              # passes over the dimensions (a second: +0.12-0.27 dB on MNIST training images, half the speed)


class _TileGrid:
    """Where the codes of a chunk sit: n images x th x tw tiles (th = tw = 1 for a whole-image model), and each
    tile's squared error."""

    def __init__(self, image_shape: tuple[int, ...], patch: int, context: int) -> None:
        self.image_shape, self.patch, self.context = image_shape, patch, context
        self.th, self.tw = tiles.tile_grid(image_shape, patch)

    def decoded_error(self, model: torch.nn.Module, z: np.ndarray, x: torch.Tensor) -> np.ndarray:
        """n x th x tw squared error of latents z (n x columns) decoded by the float decoder, against x."""
        with torch.no_grad():
            decoded = model.decode(torch.from_numpy(z).float().to(x.device), self.image_shape)
        return self.tile_error(decoded, x)

    def tile_error(self, decoded: torch.Tensor, x: torch.Tensor) -> np.ndarray:
        """n x th x tw squared error (0..255 units) of decoded images against x (both n x D in [0, 1])."""
        e = (((decoded.double() - x.double()) * 255) ** 2).cpu().numpy()
        if not self.patch:
            return e.sum(1).reshape(-1, 1, 1)
        h, w, c = tiles.hwc(self.image_shape)
        p = self.patch
        full = np.zeros((len(e), self.th * p, self.tw * p, c))
        full[:, :h, :w] = e.reshape(-1, h, w, c)
        return full.reshape(len(e), self.th, p, self.tw, p, c).sum(axis=(2, 4, 5))

    def around(self, a: np.ndarray) -> np.ndarray:
        """Each tile's sum of `a` (n x th x tw) over the tiles within the context around it."""
        r = self.context
        if not r:
            return a
        padded = np.pad(a, ((0, 0), (r, r), (r, r)))
        cs = padded.cumsum(1).cumsum(2)
        cs = np.pad(cs, ((0, 0), (1, 0), (1, 0)))
        k = 2 * r + 1
        return cs[:, k:, k:] - cs[:, :-k, k:] - cs[:, k:, :-k] + cs[:, :-k, :-k]

    def groups(self) -> list[np.ndarray]:
        """th x tw masks of the tiles stepped together: row and column equal modulo 2r + 1."""
        k = 2 * self.context + 1
        ty, tx = np.meshgrid(np.arange(self.th), np.arange(self.tw), indexing="ij")
        return [(ty % k == gy) & (tx % k == gx) for gy in range(min(k, self.th)) for gx in range(min(k, self.tw))]


class _StaticRate:
    """Codes priced by the model's static tables: bits[k, c] for code c of latent k, whatever its neighbours."""

    def __init__(self, bits: np.ndarray) -> None:
        self.bits = bits

    def delta(self, c: np.ndarray, k: int, new: np.ndarray) -> np.ndarray:
        """n x th x tw change of bits if latent k of each tile moved from c[..., k] to new."""
        return self.bits[k, new] - self.bits[k, c[..., k]]


class _NeighbourRate:
    """Codes priced by the chunk's neighbour tables (neighbours.py: a code's context is its left and upper tiles'
    codes in the same latent), so a step also changes what its right and lower neighbours cost. Tiles stepped
    together are 2r+1 >= 3 apart, so neither neighbour moves with them."""

    def __init__(self, c: np.ndarray, symbols: int) -> None:
        from aezip.coding.neighbours import SEARCH_BUCKETS, context_bits
        n, th, tw, latent = c.shape
        self.k = SEARCH_BUCKETS
        luts, self.bits = context_bits(c.reshape(-1, latent).astype(np.int32), (th, tw), symbols, self.k)
        self.luts = np.concatenate([luts, np.full((latent, 1), self.k)], axis=1)   # code -1: outside the image

    def delta(self, c: np.ndarray, k: int, new: np.ndarray) -> np.ndarray:
        """n x th x tw change of bits if latent k of each tile moved from c[..., k] to new: its own code's, and
        its right and lower neighbours', whose contexts it is part of."""
        old, lut, bits = c[..., k], self.luts[k], self.bits[k]

        def cost(left: np.ndarray, up: np.ndarray, codes: np.ndarray) -> np.ndarray:
            return bits[left * (self.k + 1) + up, codes]

        pad = np.pad(old, ((0, 0), (1, 1), (1, 1)), constant_values=-1)
        left, up = lut[pad[:, 1:-1, :-2]], lut[pad[:, :-2, 1:-1]]
        right, below = pad[:, 1:-1, 2:], pad[:, 2:, 1:-1]
        up_of_right, left_of_below = lut[pad[:, :-2, 2:]], lut[pad[:, 2:, :-2]]
        on_right = np.where(right >= 0, cost(lut[new], up_of_right, right) - cost(lut[old], up_of_right, right), 0)
        on_below = np.where(below >= 0, cost(left_of_below, lut[new], below) - cost(left_of_below, lut[old], below), 0)
        return cost(left, up, new) - cost(left, up, old) + on_right + on_below


def _neighbours_pay(c: np.ndarray, symbols: int) -> bool:
    """Whether the chunk-tables coder would take the neighbour tables (method 3) for these codes (n x th x tw x
    latent): then the search prices codes with them, else with the static tables."""
    from aezip.coding.chunktables import encode_own
    from aezip.coding.neighbours import encode_neighbours
    n, th, tw, latent = c.shape
    codes = c.reshape(-1, latent).astype(np.int32)
    near = encode_neighbours(codes, (th, tw), symbols)
    return near is not None and len(near) < len(encode_own(codes, symbols))


def search_codes(model: torch.nn.Module, x: torch.Tensor, codes: np.ndarray, values: np.ndarray, bits: np.ndarray,
                 image_shape: tuple[int, ...], patch: int = 0, context: int = 0,
                 sweeps: int = SWEEPS) -> np.ndarray:
    """Refined codes (n x columns int32) for images x (n x D in [0, 1]) from `codes`: values[k, c] is the latent
    value code c of latent k decodes from, bits[k, c] its cost in bits (column j is latent j mod its width; a tile
    model's columns are its tiles' latents, tile by tile in row-major order). Where the model has a context (r >= 1)
    and the chunk's codes would take the neighbour tables, codes are priced by those tables instead of `bits`."""
    latent, q = values.shape
    g = _TileGrid(image_shape, patch, context)
    c = np.asarray(codes, dtype=np.int64).reshape(len(codes), g.th, g.tw, latent).copy()
    ks = np.arange(latent)
    rate = _NeighbourRate(c, q) if context and _neighbours_pay(c, q) else _StaticRate(bits)

    def error(cc: np.ndarray, rows: np.ndarray | slice = slice(None)) -> np.ndarray:
        """Per-tile squared error of the images `rows` decoded from codes cc (theirs only)."""
        return g.decoded_error(model, values[ks, cc].reshape(len(cc), -1), x[rows])

    err = error(c)
    lam = (LAMBDA_PER_MSE * err.sum(axis=(1, 2)) / x.shape[1]).reshape(-1, 1, 1)
    for _ in range(sweeps):
        for group in g.groups():
            for k in range(latent):
                for step in (-1, 1):
                    trial = c.copy()
                    trial[:, group, k] = np.clip(c[:, group, k] + step, 0, q - 1)
                    moved = trial[..., k] != c[..., k]
                    rows = np.nonzero(moved.any(axis=(1, 2)))[0]   # images a step moves (not those at an end)
                    if not len(rows):
                        continue
                    t_err = err.copy()
                    t_err[rows] = error(trial[rows], rows)
                    gain = g.around(t_err - err) + lam * rate.delta(c, k, trial[..., k])
                    keep = moved & (gain < 0)
                    c[..., k] = np.where(keep, trial[..., k], c[..., k])
                    err = np.where(g.around(keep.astype(np.int64)) > 0, t_err, err)
    return c.reshape(len(c), -1).astype(np.int32)


def code_bits(tables: np.ndarray) -> np.ndarray:
    """-log2 of each code's probability under frequency tables (latent x codes), with half a count added to each."""
    p = (tables + 0.5) / (tables + 0.5).sum(axis=1, keepdims=True)
    return -np.log2(p)


def refine(model: torch.nn.Module, tables: np.ndarray, levels: int, x: torch.Tensor, codes: np.ndarray,
           quality: int | None, image_shape: tuple[int, ...], patch: int = 0, context: int = 0) -> np.ndarray:
    """search_codes over the model's own codes (quality None) or a quality level's coarse codes; at a level, in
    whichever of the grid points and the bins' centroids decodes the plain codes closer (the encoder later keeps
    the closer of the two per chunk, as it does without the search)."""
    from aezip.coding.quality import centroid_values, fine_values, ladder_tables
    geometry = dict(patch=patch, context=context)
    if quality is None:
        values = np.broadcast_to(np.arange(levels) / (levels - 1), tables.shape)
        return search_codes(model, x, codes, values, code_bits(tables), image_shape, **geometry)
    grid = np.broadcast_to(fine_values(levels, quality) / (levels - 1), (tables.shape[0], quality))
    centroid = centroid_values(tables, quality) / (levels - 1)
    dims, g = np.arange(codes.shape[1]) % tables.shape[0], _TileGrid(image_shape, patch, context)
    closer = g.decoded_error(model, centroid[dims, codes], x).sum() < g.decoded_error(model, grid[dims, codes], x).sum()
    values = centroid if closer else grid
    return search_codes(model, x, codes, values, code_bits(ladder_tables(tables, quality)), image_shape, **geometry)
