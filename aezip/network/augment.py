"""Training augmentations that widen what a model sees beyond its training photographs: random flips (and
transposes of square images), intensity inversion, channel permutations, contrast changes and magnification,
each drawn per image."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from aezip.network.tiles import hwc

CONTRAST_GAIN = 3.0   # "contrast": deviations from an image's mean scaled by a gain log-uniform in [1/3, 3]
ZOOM = 2.0            # "zoom": half the images magnified by a factor log-uniform in [1, 2]


def augment(x: torch.Tensor, image_shape: tuple[int, ...], names: tuple[str, ...],
            gen: torch.Generator) -> torch.Tensor:
    """Rows of images x (B x H*W*C in [0, 1]), each flipped / inverted / channel-permuted / contrast-scaled (about
    its mean, clipped to [0, 1]) / magnified (a random crop resized back to H x W, bilinear) at random."""
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
    if "zoom" in names:
        imgs = _magnify(imgs, coin().view(b), gen)
    return imgs.reshape(b, -1)


def _magnify(imgs: torch.Tensor, chosen: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """The chosen images (B x H x W x C) magnified: a crop of 1/ZOOM to all of each side, at a random place,
    resized back bilinearly; the others unchanged."""
    b, h, w, c = imgs.shape
    side = torch.exp(-torch.rand(b, generator=gen, device=imgs.device) * math.log(ZOOM))   # crop side in [1/ZOOM, 1]
    side = torch.where(chosen, side, torch.ones_like(side))
    shift = torch.rand(b, 2, generator=gen, device=imgs.device) * 2 - 1                  # where the crop lies
    theta = torch.zeros(b, 2, 3, device=imgs.device, dtype=imgs.dtype)
    theta[:, 0, 0] = theta[:, 1, 1] = side
    theta[:, :, 2] = (1 - side)[:, None] * shift
    grid = F.affine_grid(theta, [b, c, h, w], align_corners=False)
    out = F.grid_sample(imgs.permute(0, 3, 1, 2), grid, mode="bilinear", padding_mode="border", align_corners=False)
    return out.permute(0, 2, 3, 1)
