"""PyTorch access to a .aez file: `AezDataset` decodes images on demand, and `ChunkSampler` shuffles chunk by chunk
so that shuffled training decodes each chunk once per epoch (per DataLoader worker), not once per image.

Safe with DataLoader(num_workers > 0): the dataset holds only the path and the model argument; each process
(the main one, and every worker) opens its own reader the first time it reads."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import numpy as np
import torch   # absolute import: PyTorch itself, not this module
from torch.utils.data import Dataset, Sampler

from aezip.files.container import ContainerReader
from aezip.files.modelfile import ModelFile
from aezip.reader import DEFAULT_CACHE_CHUNKS, Reader


def _chunk_ranges(path: str | Path) -> tuple[tuple[int, ...], list[range]]:
    with ContainerReader(path) as f:
        return tuple(f.header["shape"]), [range(c.first_image, c.first_image + c.images) for c in f.chunks]


class AezDataset(Dataset):
    """The images of a .aez file as uint8 tensors (H x W or H x W x C), decoded on demand; `transform` is applied
    to each. Decoded chunks are kept in an LRU of `cache_chunks` per process."""

    def __init__(self, path: str | Path, transform: Callable[[torch.Tensor], Any] | None = None,
                 model: str | Path | ModelFile | None = None, *, cache_chunks: int = DEFAULT_CACHE_CHUNKS) -> None:
        self.path = Path(path)
        self.transform = transform
        self.model = model
        self.cache_chunks = cache_chunks
        self.shape, self.chunks = _chunk_ranges(self.path)
        self._reader: Reader | None = None
        self._pid: int | None = None

    def __len__(self) -> int:
        return self.shape[0]

    @property
    def reader(self) -> Reader:
        """This process's reader, opened on first use (a forked worker opens its own: no shared file offset)."""
        if self._reader is None or self._pid != os.getpid():
            from aezip.api import open as open_aez
            self._reader = open_aez(self.path, self.model, cache_chunks=self.cache_chunks)
            self._pid = os.getpid()
        return self._reader

    def _sample(self, image: np.ndarray) -> Any:
        t = torch.from_numpy(np.array(image))
        return self.transform(t) if self.transform else t

    def __getitem__(self, index: int) -> Any:
        return self._sample(self.reader[int(index)])

    def __getitems__(self, indices: Sequence[int]) -> list[Any]:
        """A whole batch at once (the DataLoader uses this when it exists)."""
        return [self._sample(img) for img in self.reader[list(indices)]]

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_reader"] = state["_pid"] = None   # a file handle and decoded chunks stay in their process
        return state


class ChunkSampler(Sampler[int]):
    """Shuffled indices that visit the chunks in a random order and each chunk's images in a random order: a
    reader decodes each chunk once per epoch. `set_epoch(e)` gives epoch e its own order (same seed, same
    orders); without shuffle the indices are in file order."""

    def __init__(self, data: AezDataset | Sequence[range], *, shuffle: bool = True, seed: int = 0) -> None:
        self.chunks = list(data.chunks if isinstance(data, AezDataset) else data)
        self.shuffle, self.seed, self.epoch = shuffle, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return sum(len(c) for c in self.chunks)

    def __iter__(self) -> Iterator[int]:
        if not self.shuffle:
            for c in self.chunks:
                yield from c
            return
        rng = np.random.default_rng((self.seed, self.epoch))
        for k in rng.permutation(len(self.chunks)):
            c = self.chunks[k]
            yield from (c.start + i for i in rng.permutation(len(c)).tolist())
