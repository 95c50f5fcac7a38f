"""Image-quality figures."""
from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import torch


def _as_float64(a: torch.Tensor | np.ndarray) -> np.ndarray:
    """float64 numpy of an array or a torch tensor (duck-typed, so this module never imports torch)."""
    return a.detach().cpu().double().numpy() if hasattr(a, "detach") else np.asarray(a, dtype=np.float64)


def psnr(a: torch.Tensor | np.ndarray, b: torch.Tensor | np.ndarray, peak: float = 255.0) -> float:
    """Peak signal-to-noise ratio in dB over all pixels (inf when identical)."""
    return psnr_from_mse(float(np.mean((_as_float64(a) - _as_float64(b)) ** 2)), peak)


def psnr_from_mse(mse: float, peak: float = 255.0) -> float:
    """PSNR in dB for a mean squared error (inf when it is 0)."""
    return math.inf if mse == 0 else 10.0 * math.log10(peak * peak / mse)


def bits_per_pixel(size: int, images: np.ndarray) -> float:
    """File bytes x 8 per pixel position (N x H x W), the field's convention: an RGB pixel counts once."""
    return size * 8 / (images.shape[0] * images.shape[1] * images.shape[2])
