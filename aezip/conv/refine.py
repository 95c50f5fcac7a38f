"""`--effort max` for a convolutional model: the encoder refines each image's latents for its rate point's own
objective before they are coded.

The analysis transform is amortised: one network guesses latents for every image, and its guess is not the best
code for a given image. Starting from it, with the hyper-latents z held at their rounded values (so the means and
scales the decoder derives from them stay put), gradient steps on y lower bits(y_hat | z) / pixels + lambda * MSE,
where y_hat = mean + round(y - mean) is exactly what the coder stores (rounding passed straight through for the
gradient) and the MSE is over the image's own pixels (not its edge padding). Each image keeps the latents of its
lowest objective seen, the starting ones included, so no image's estimated objective gets worse.

Only the encoder changes: the file's bytes say which latents to decode, and the decoder (integers) is the same.
The header records `latent_search` for provenance."""
from __future__ import annotations

from typing import Callable

import torch

from aezip.conv.network import ConvCodec

LATENT_SEARCH = "conv-gradient-v1"   # what the header of a file written with the refinement records
STEPS = 40                           # gradient steps per image
LR = 0.01                            # Adam's step, decaying linearly to 0


def objective(net: ConvCodec, x: torch.Tensor, z: torch.Tensor, lam: float, size: tuple[int, int],
              known: torch.Tensor | None = None) -> Callable[[torch.Tensor], torch.Tensor]:
    """The rate point's objective per image as a function of latents y: bits of (y_hat, z) per pixel + lam * MSE
    (8-bit units) over the top-left `size` of images x (only where `known`, B x C x H x W of 0 / 1, is 1: restore),
    y_hat = mean + round(y - mean) (rounding straight through for the gradient), the means and scales those of the
    rounded hyper-latents z."""
    h, w = size
    with torch.no_grad():
        mean, scale, z_bits = net.hyper_prior(z)
    target = x[:, :, :h, :w]
    weight = torch.ones_like(target) if known is None else known[:, :, :h, :w]
    counted = weight.sum((1, 2, 3)).clamp_min(1)

    def of(y: torch.Tensor) -> torch.Tensor:
        y_hat = y + (net.quantize(y, False, mean) - y).detach()
        bits = (z_bits + net.latent_bits(y_hat, mean, scale))[:, 0]
        x_hat = net.dec(y_hat)[:, :, :h, :w] + 0.5
        return bits / (h * w) + lam * (((x_hat - target) * weight) ** 2).sum((1, 2, 3)) / counted * 255 ** 2
    return of


def refine_latents(net: ConvCodec, x: torch.Tensor, y: torch.Tensor, z: torch.Tensor, lam: float,
                   size: tuple[int, int], steps: int = STEPS, lr: float = LR,
                   known: torch.Tensor | None = None) -> torch.Tensor:
    """Latents y (B x M x h x w) refined for images x (B x C x H x W in [0, 1], edge-padded) of a one-group codec
    `net` with rounded hyper-latents z, for `objective` over the top-left `size` (the images' H x W before
    padding; `known`: only those pixels); the picked y never has a higher objective than the given one."""
    of = objective(net, x, z, lam, size, known)
    best, best_y = torch.full((len(x),), float("inf"), device=x.device), y.detach().clone()
    y = y.detach().clone().requires_grad_(True)
    opt = torch.optim.Adam([y], lr=lr)
    for step in range(steps + 1):
        with torch.enable_grad():
            value = of(y)
            total = value.sum()
        with torch.no_grad():
            better = value < best
            best = torch.where(better, value, best)
            best_y[better] = y[better]
        if step == steps:
            break
        (y.grad,) = torch.autograd.grad(total, y)     # the weights need no gradient
        for group in opt.param_groups:
            group["lr"] = lr * (1 - step / steps)
        opt.step()
    return best_y
