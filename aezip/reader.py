"""Random access to the images of a .aez file: `len`, `shape`, `reader[i]`, `reader[a:b]`, decoding only the chunks
an access needs and keeping the most recently decoded ones (an LRU of chunks)."""
from __future__ import annotations

import bisect
from collections import OrderedDict
from pathlib import Path
from typing import BinaryIO, Iterator, Sequence

import numpy as np

from aezip.codec import check_header, decode_chunk, model_for
from aezip.files.container import ContainerReader
from aezip.files.modelfile import ModelFile

DEFAULT_CACHE_CHUNKS = 4


class Reader:
    """A .aez file opened for random access (what `aezip.open` returns). Images come back as uint8 arrays of the
    stored shape; `chunks_decoded` counts the chunks decoded so far (cache hits excluded)."""

    def __init__(self, source: str | Path | bytes | BinaryIO, model: str | Path | ModelFile | None = None, *,
                 cache_chunks: int = DEFAULT_CACHE_CHUNKS) -> None:
        self._file = ContainerReader(source)
        try:
            check_header(self._file)
            self.model = model_for(self._file, model)
        except BaseException:
            self._file.close()
            raise
        self._starts = [c.first_image for c in self._file.chunks]
        self._cache: OrderedDict[int, np.ndarray] = OrderedDict()
        self._cache_chunks = max(1, cache_chunks)
        self.chunks_decoded = 0

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self._file.header["shape"])

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(np.uint8)

    @property
    def info(self) -> dict:
        """The file's header, with its size and chunk count."""
        return {**self._file.header, "bytes": self._file.size, "chunks": len(self._file.chunks)}

    def __len__(self) -> int:
        return self.shape[0]

    def chunk_ranges(self) -> list[range]:
        """The image indices each chunk holds, in file order (the unit that is decoded at once)."""
        return [range(c.first_image, c.first_image + c.images) for c in self._file.chunks]

    def chunk_of(self, index: int) -> int:
        """The chunk that holds image `index`."""
        return bisect.bisect_right(self._starts, index) - 1

    def _chunk(self, i: int) -> np.ndarray:
        if i in self._cache:
            self._cache.move_to_end(i)
            return self._cache[i]
        images = decode_chunk(self._file, i, self.model)
        images.flags.writeable = False      # cached: callers get copies or read-only views
        self.chunks_decoded += 1
        self._cache[i] = images
        if len(self._cache) > self._cache_chunks:
            self._cache.popitem(last=False)
        return images

    def _image(self, index: int) -> np.ndarray:
        c = self.chunk_of(index)
        return self._chunk(c)[index - self._starts[c]]

    def _contiguous(self, lo: int, hi: int) -> np.ndarray:
        """Images lo..hi-1, from the chunks that hold them."""
        if lo >= hi:
            return np.zeros((0, *self.shape[1:]), np.uint8)
        parts = []
        for c in range(self.chunk_of(lo), self.chunk_of(hi - 1) + 1):
            images, start = self._chunk(c), self._starts[c]
            parts.append(images[max(lo, start) - start:min(hi, start + len(images)) - start])
        return np.concatenate(parts) if len(parts) > 1 else parts[0].copy()

    def _index(self, i: int) -> int:
        n = len(self)
        if not -n <= i < n:
            raise IndexError(f"image index {i} is out of range for {n} images")
        return i % n

    def __getitem__(self, key: int | slice | Sequence[int] | np.ndarray) -> np.ndarray:
        """reader[i] is one image; reader[a:b] (any step) and reader[[i, j, ...]] are stacked images."""
        if isinstance(key, slice):
            lo, hi, step = key.indices(len(self))
            if step == 1:
                return self._contiguous(lo, hi)
            key = range(lo, hi, step)
        if isinstance(key, (int, np.integer)):
            return self._image(self._index(int(key))).copy()
        indices = [self._index(int(i)) for i in key]
        if not indices:
            return np.zeros((0, *self.shape[1:]), np.uint8)
        return np.stack([self._image(i) for i in indices])

    def __iter__(self) -> Iterator[np.ndarray]:
        for c in range(len(self._starts)):
            yield from self._chunk(c)

    def close(self) -> None:
        self._file.close()
        self._cache.clear()

    def __enter__(self) -> "Reader":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
