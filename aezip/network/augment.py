"""Training augmentations that widen what a model sees beyond its training photographs: random flips (and
transposes of square images), intensity inversion, channel permutations and contrast changes, each drawn per
image."""
from __future__ import annotations

import math

import torch

from aezip.network.tiles import hwc

CONTRAST_GAIN = 3.0   # "contrast": deviations from an image's mean scaled by a gain log-uniform in [1/3, 3]


def augment(x: torch.Tensor, image_shape: tuple[int, ...], names: tuple[str, ...],
            gen: torch.Generator) -> torch.Tensor:
    """Rows of images x (B x H*W*C in [0, 1]), each flipped / inverted / channel-permuted / contrast-scaled (about
    its mean, clipped to [0, 1]) at random."""
    if not names:
        return x
    b, (h, w, c) = len(x), hwc(image_shape)
    imgs = x.view(b, h, w, c)

    def coin() -> torch.Tensor:
        return (torch.rand(b, generator=gen, device=x.device) < 0.5).view(b, 1, 1, 1)

    if "flip" in names:
        imgs = torch.where(coin(), imgs.flip(1), imgs)
        imgs = torch.where(coin(), imgs.flip(2), imgs)
        if h == w:
            imgs = torch.where(coin(), imgs.transpose(1, 2), imgs)
    if "invert" in names:
        imgs = torch.where(coin(), 1.0 - imgs, imgs)
    if "channels" in names and c > 1:
        perm = torch.argsort(torch.rand(b, c, generator=gen, device=x.device), dim=1)
        imgs = imgs.gather(3, perm.view(b, 1, 1, c).expand(b, h, w, c))
    if "contrast" in names:
        log_gain = (torch.rand(b, generator=gen, device=x.device) * 2 - 1) * math.log(CONTRAST_GAIN)
        gain = torch.exp(log_gain).view(b, 1, 1, 1)
        mean = imgs.mean(dim=(1, 2, 3), keepdim=True)
        imgs = ((imgs - mean) * gain + mean).clamp(0, 1)
    return imgs.reshape(b, -1)
