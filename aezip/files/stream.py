"""Training data larger than memory: memory-mapped inputs, folders read image by image, batch-by-batch gathering.

An in-memory array is held once (on the training device, as uint8) and batches are gathered there; a memory-mapped
array (.npy, uncompressed IDX) or a folder of images is never read whole: each batch gathers its rows through the
page cache, or reads its image files, so the memory training needs does not grow with the number of images beyond
a few index arrays (8 bytes per image).
"""
from __future__ import annotations

from typing import Iterator

import numpy as np
import torch

from aezip.files.data import Dataset
from aezip.files.imagefolder import read_image
from aezip.tensors import to_unit

IDX_HEADER = 4   # magic bytes before the dimensions (4 bytes each)


class FolderImages:
    """Images lo..hi-1 of a folder dataset as an array-like whose rows are read from their files when indexed."""

    dtype = np.dtype(np.uint8)

    def __init__(self, dataset: Dataset, lo: int, hi: int) -> None:
        self.path, self.names = dataset.path, dataset.source.names[lo:hi]
        self.shape = (hi - lo, *dataset.image_shape)
        self.ndim = len(self.shape)
        self._channels = self.shape[3] if self.ndim == 4 else 1

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, idx: np.ndarray) -> np.ndarray:
        """The images at an index array (in its order), read from their files."""
        idx = np.asarray(idx)
        if not len(idx):
            return np.zeros((0, *self.shape[1:]), np.uint8)
        return np.stack([read_image(self.path / self.names[i], self._channels) for i in idx])


def training_array(dataset: Dataset, lo: int, hi: int) -> np.ndarray | FolderImages:
    """Images lo..hi-1 of a dataset: a memory map for .npy and uncompressed IDX files, the files themselves for a
    folder of images, else read into memory."""
    fmt = dataset.source.format
    if dataset.array is not None:   # already in memory (read from a stream, or given as an array)
        return dataset.array[lo:hi]
    if fmt == "images":
        return FolderImages(dataset, lo, hi)
    if fmt == "npy":
        return np.load(dataset.path, mmap_mode="r")[lo:hi]
    if fmt == "idx" and not dataset.source.gzip:
        offset = IDX_HEADER + 4 * len(dataset.shape)
        return np.memmap(dataset.path, np.uint8, "r", offset=offset, shape=dataset.shape)[lo:hi]
    return dataset.read_all()[lo:hi]


class ImageRows:
    """Rows of a uint8 image array (n x H x W[ x C]) as float tensors (b x D, in [0, 1]) on a device."""

    def __init__(self, images: np.ndarray | FolderImages, device: torch.device) -> None:
        self.images = images
        self.device = device
        self.mapped = isinstance(images, (np.memmap, FolderImages))   # gathered batch by batch, never held
        self._held = None if self.mapped else torch.from_numpy(np.ascontiguousarray(images)).to(device)

    def take(self, idx: torch.Tensor | np.ndarray) -> torch.Tensor:
        """The rows at these indices, in this order."""
        if self.mapped:
            rows = idx.cpu().numpy() if torch.is_tensor(idx) else idx
            return to_unit(self.images[rows]).to(self.device)
        rows = torch.as_tensor(idx, device=self.device)
        return self._held[rows].reshape(len(rows), -1).float() / 255.0


def batches(indices: np.ndarray, size: int) -> Iterator[np.ndarray]:
    """Consecutive slices of at most `size` indices."""
    for i in range(0, len(indices), size):
        yield indices[i:i + size]
