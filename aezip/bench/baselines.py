"""Baseline codecs measured beside aezip on the same images: general-purpose compressors and PCA + zstd."""
from __future__ import annotations

import bz2
import gzip
import lzma
from dataclasses import dataclass
from typing import Callable

import numpy as np
import zstandard

from aezip.metrics import bits_per_pixel, psnr


def raw_compressors() -> dict[str, tuple[Callable[[bytes], bytes], Callable[[bytes], bytes]]]:
    """Lossless general-purpose compressors at their strongest common settings: name -> (compress, decompress)."""
    return {
        "gzip -9": (lambda b: gzip.compress(b, compresslevel=9, mtime=0), gzip.decompress),
        "bz2 -9": (lambda b: bz2.compress(b, compresslevel=9), bz2.decompress),
        "xz -9e": (lambda b: lzma.compress(b, preset=9 | lzma.PRESET_EXTREME), lzma.decompress),
        "zstd -19": (lambda b: zstandard.ZstdCompressor(level=19).compress(b),
                     lambda b: zstandard.ZstdDecompressor().decompress(b)),
    }


def jpegxl_lossless(effort: int) -> tuple[Callable[[np.ndarray], bytes], Callable[[bytes], np.ndarray]]:
    """JPEG-XL lossless at an effort (1..9; 9 is the strongest) through imagecodecs: (encode, decode)."""
    import imagecodecs   # imported here: a heavy import that only the baselines need

    return (lambda a: bytes(imagecodecs.jpegxl_encode(a, lossless=True, effort=effort)),
            lambda b: np.asarray(imagecodecs.jpegxl_decode(b)))


@dataclass
class PCACodec:
    """PCA fit on training images; coefficients quantized with one uniform step and packed with zstd -19."""

    mean: np.ndarray
    basis: np.ndarray      # components x D, orthonormal rows

    @classmethod
    def fit(cls, images: np.ndarray, components: int) -> "PCACodec":
        x = images.reshape(len(images), -1).astype(np.float64)
        mean = x.mean(0)
        _, _, vt = np.linalg.svd(x - mean, full_matrices=False)
        return cls(mean, vt[:components])

    def first(self, components: int) -> "PCACodec":
        """The codec of the first `components` components (the same as fitting that many: one SVD serves all)."""
        return PCACodec(self.mean, self.basis[:components])

    def compress(self, images: np.ndarray, step: float) -> bytes:
        """The file: a dtype byte, then the quantized coefficients (component-major) packed with zstd -19."""
        x = images.reshape(len(images), -1).astype(np.float64)
        q = np.round((x - self.mean) @ self.basis.T / step).astype(np.int64)
        dtype = np.int8 if np.abs(q).max() < 128 else np.int16
        body = np.ascontiguousarray(q.T.astype(dtype)).tobytes()
        return bytes([dtype().itemsize]) + zstandard.ZstdCompressor(level=19).compress(body)

    def decompress(self, blob: bytes, shape: tuple[int, ...], step: float) -> np.ndarray:
        """Images of `shape` back from `compress`'s bytes."""
        dtype = np.int8 if blob[0] == 1 else np.int16
        q = np.frombuffer(zstandard.ZstdDecompressor().decompress(blob[1:]), dtype).reshape(len(self.basis), -1).T
        recon = np.clip(np.round(q.astype(np.float64) * step @ self.basis + self.mean), 0, 255).astype(np.uint8)
        return recon.reshape(shape)


def more_components(k: int, rank: int) -> int:
    """The next PCA size past k: x1.5 from a power of two, else x4/3 (64, 96, 128, 192, 256, ...), at most rank."""
    return min(rank, k * 3 // 2 if k & (k - 1) == 0 else k * 4 // 3)


def pca_best_at_rate(train: np.ndarray, test: np.ndarray, max_bpp: float,
                     components: tuple[int, ...] = (8, 12, 16, 24, 32, 40, 48, 64),
                     steps: tuple[float, ...] = (16, 24, 32, 48, 64, 96, 128, 192)) -> dict | None:
    """The best PSNR PCA + quantization + zstd reaches on `test` at no more than max_bpp, searching the step and
    the number of components: those listed, then more (more_components, up to the data's rank) for as long as the
    largest one tried gives the best PSNR so far (at high rates 64 components are far from enough)."""
    rank = min(int(np.prod(test.shape[1:])), len(train))
    full = PCACodec.fit(train, rank)
    best: dict | None = None

    def search(k: int) -> None:
        """Every listed step with the first k components; keeps the best within max_bpp."""
        nonlocal best
        codec = full.first(k)
        for step in steps:
            payload = codec.compress(test, step)
            bpp = bits_per_pixel(len(payload), test)
            if bpp <= max_bpp:
                p = psnr(test, codec.decompress(payload, test.shape, step))
                if best is None or p > best["psnr_db"]:
                    best = {"components": k, "step": step, "bytes": len(payload), "bits_per_pixel": bpp,
                            "psnr_db": p}

    sizes = [k for k in components if k <= rank] or [rank]
    for k in sizes:
        search(k)
    k = sizes[-1]
    while k < rank and best is not None and best["components"] == k:
        k = more_components(k, rank)
        search(k)
    return best
