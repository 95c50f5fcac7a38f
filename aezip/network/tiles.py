"""The geometry of tile (patch) models, the same for numpy arrays and torch tensors.

An image of H x W x C is cut into a grid of p x p tiles (ceil(H/p) x ceil(W/p)); the encoder reads the (p+2m) x
(p+2m) window around each tile (its margin m), the decoder reads the latent vectors of the (2r+1)^2 tiles around
each tile (its context r) and writes the tile's p*p*C samples. Past the image's edge, windows repeat the edge
pixels and neighbourhoods repeat the edge tiles; the decoded tiles are cropped back to H x W exactly.

Every function here is index arithmetic in numpy, applied by indexing, reshaping and permuting, so it runs on a
numpy array (the decoder, torch-free) and on a torch tensor (training and the encoder) with the same result.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from aezip.network.config import AEConfig
    from aezip.coding.intdecoder import IntegerDecoder


def grid(height: int, width: int, patch: int) -> tuple[int, int]:
    """Tile rows and columns covering an H x W image."""
    return -(-height // patch), -(-width // patch)


def hwc(image_shape: tuple[int, ...]) -> tuple[int, int, int]:
    """(H, W, C) of an image shape H x W or H x W x C."""
    return int(image_shape[0]), int(image_shape[1]), int(image_shape[2]) if len(image_shape) == 3 else 1


def tile_grid(image_shape: tuple[int, ...], patch: int) -> tuple[int, int]:
    """Tile rows and columns of images of this shape ((1, 1) for a whole-image model, patch 0)."""
    return grid(*hwc(image_shape)[:2], patch) if patch else (1, 1)


def tile_count(image_shape: tuple[int, ...], patch: int) -> int:
    """Tiles per image."""
    th, tw = tile_grid(image_shape, patch)
    return th * tw


def _index(a: Any, idx: np.ndarray) -> Any:
    """idx as an index of a (a torch tensor needs a tensor on its device)."""
    if isinstance(a, np.ndarray):
        return idx
    import torch
    return torch.as_tensor(idx, device=a.device)


def _permute(a: Any, axes: tuple[int, ...]) -> Any:
    return a.transpose(axes) if isinstance(a, np.ndarray) else a.permute(axes)


def grid_crops(images: np.ndarray, side: int) -> np.ndarray:
    """n x H x W[ x C] images cut into side x side crops on a grid (the remainder past the last whole crop of each
    row and column is left out): (n * (H // side) * (W // side)) x side x side[ x C]."""
    n, h, w = images.shape[:3]
    rest = images.shape[3:]
    a = images[:, :h // side * side, :w // side * side]
    a = a.reshape(n, h // side, side, w // side, side, *rest).swapaxes(2, 3)
    return np.ascontiguousarray(a).reshape(-1, side, side, *rest)


def window_rows(images: Any, image_shape: tuple[int, ...], patch: int, margin: int) -> Any:
    """Each tile's encoder window, flattened: (n * tiles) x ((p + 2m)^2 * C), tiles in row-major order, a window's
    samples in H x W x C order; images are n x (H * W * C) rows."""
    h, w, c = hwc(image_shape)
    th, tw = grid(h, w, patch)
    span = np.arange(-margin, patch + margin)
    rows = np.clip(np.arange(th)[:, None] * patch + span, 0, h - 1)        # th x (p + 2m)
    cols = np.clip(np.arange(tw)[:, None] * patch + span, 0, w - 1)        # tw x (p + 2m)
    x = images.reshape(len(images), h, w, c)
    win = x[:, _index(x, rows[:, None, :, None]), _index(x, cols[None, :, None, :])]   # n x th x tw x s x s x c
    return win.reshape(len(images) * th * tw, -1)


def neighbour_index(th: int, tw: int, context: int) -> np.ndarray:
    """For each tile (row-major), the flat indices of the (2r+1)^2 tiles around it, edge tiles repeated."""
    d = np.arange(-context, context + 1)
    r = np.clip(np.arange(th)[:, None] + d, 0, th - 1)                    # th x k
    c = np.clip(np.arange(tw)[:, None] + d, 0, tw - 1)                    # tw x k
    flat = r[:, None, :, None] * tw + c[None, :, None, :]                  # th x tw x k x k
    return flat.reshape(th * tw, -1)


def context_rows(latents: Any, image_shape: tuple[int, ...], patch: int, context: int) -> Any:
    """The decoder's input rows: latents n x (tiles * L) into (n * tiles) x ((2r+1)^2 * L)."""
    th, tw = grid(*hwc(image_shape)[:2], patch)
    n = len(latents)
    z = latents.reshape(n, th * tw, -1)
    return z[:, _index(z, neighbour_index(th, tw, context))].reshape(n * th * tw, -1)


def fold(tile_rows: Any, n: int, image_shape: tuple[int, ...], patch: int) -> Any:
    """Decoded tiles (n * tiles) x (p * p * C) into n x (H * W * C) images, cropped to H x W."""
    h, w, c = hwc(image_shape)
    th, tw = grid(h, w, patch)
    t = _permute(tile_rows.reshape(n, th, tw, patch, patch, c), (0, 1, 3, 2, 4, 5))
    return t.reshape(n, th * patch, tw * patch, c)[:, :h, :w].reshape(n, h * w * c)


def predict(config: AEConfig, intdec: IntegerDecoder, codes: np.ndarray, image_shape: tuple[int, ...],
            pool=None) -> np.ndarray:
    """The integer decoder's pixels (uint8, n x H*W*C) for each image's codes: one row per image for a
    whole-image model, the codes of every tile for a tile model (decoded tile by tile, then folded)."""
    from aezip.coding.intdecoder import integer_decode
    if not config.patch:
        return integer_decode(intdec, codes, pool)
    codes = np.asarray(codes)
    rows = context_rows(codes, image_shape, config.patch, config.context)
    return fold(integer_decode(intdec, rows, pool), len(codes), image_shape, config.patch)
