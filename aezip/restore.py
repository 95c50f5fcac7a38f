"""Restoring damaged images with the autoencoder: denoising, and filling masked pixels by searching the latent
space for the code whose decoding best matches the known pixels (the nearest image on the learned manifold)."""
from __future__ import annotations

import numpy as np
import torch

from .errors import InputError
from .model import AutoEncoder
from .tensors import to_unit


def denoise(model: AutoEncoder, images: np.ndarray, backend: str | None = None) -> np.ndarray:
    """D(E(x)) with the float latents (a model trained with --denoise maps noisy images to clean ones)."""
    with torch.no_grad():
        y = torch.sigmoid(model.decode_logits(model.encode(to_unit(images), backend)))
    return _to_uint8(y, images.shape)


def _to_uint8(y: torch.Tensor, shape: tuple[int, ...]) -> np.ndarray:
    return torch.round(y * 255).clamp(0, 255).to(torch.uint8).numpy().reshape(shape)


def box_mask(image_shape: tuple[int, ...], spec: str) -> np.ndarray:
    """A boolean mask of one image (True = missing) from 'X,Y,W,H'."""
    try:
        x, y, w, h = (int(v) for v in spec.split(","))
    except ValueError:
        raise InputError(f"--mask-box {spec!r}: expected X,Y,W,H") from None
    rows, cols = image_shape[:2]
    if w < 1 or h < 1 or x < 0 or y < 0 or x + w > cols or y + h > rows:
        raise InputError(f"--mask-box {spec!r} does not fit images of {cols}x{rows}")
    mask = np.zeros(image_shape, bool)
    mask[y:y + h, x:x + w] = True
    return mask


def inpaint(model: AutoEncoder, images: np.ndarray, missing: np.ndarray, *, steps: int = 200, lr: float = 0.05,
            backend: str | None = None) -> np.ndarray:
    """Keep the known pixels; fill the missing ones from D(z*), z* = argmin_z ||known * (D(z) - x)||^2.

    The search starts from the encoder's code of the image with its missing pixels set to the mean of its known
    ones, and runs Adam on the latent's logit (so z stays in (0, 1)), all images of the batch at once."""
    missing = np.broadcast_to(missing, images.shape)
    x = to_unit(images)
    known = torch.from_numpy(~missing.reshape(len(images), -1)).float()
    fill = (x * known).sum(1, keepdim=True) / known.sum(1, keepdim=True).clamp_min(1)
    start = x * known + fill * (1 - known)
    with torch.no_grad():
        z0 = model.encode(start, backend).clamp(1e-4, 1 - 1e-4)
    logit = torch.logit(z0).detach().requires_grad_()
    opt = torch.optim.Adam([logit], lr=lr)
    for p in model.parameters():
        p.requires_grad_(False)
    try:
        for _ in range(steps):
            y = torch.sigmoid(model.decode_logits(torch.sigmoid(logit)))
            loss = (((y - x) * known) ** 2).sum()
            opt.zero_grad()
            loss.backward()
            opt.step()
    finally:
        for p in model.parameters():
            p.requires_grad_(True)
    with torch.no_grad():
        y = torch.sigmoid(model.decode_logits(torch.sigmoid(logit)))
        out = x * known + y * (1 - known)
    return _to_uint8(out, images.shape)
