"""Would a spatial context over a conv model's latents pay? A probe on a frozen model, before building one.

For each rate point of a conv model (`aezip train --arch conv`), the latents of every image are rounded about the
hyperprior's means as the coder rounds them. A checkerboard context head (a 5x5 convolution over the decoded anchor
latents, half the grid, and the hyperprior's means and log-scales, then a 1x1 convolution) corrects the means and
scales of the other half; it starts at zero (the hyperprior alone) and trains with Adam on the training images
(plus their flips and inversion). The bits of the SAME symbols under the corrected Gaussians are then compared with
the hyperprior's on held-out images: an ENTROPY ESTIMATE (file bytes come only from a built codec), at unchanged
pixels, so it is an entropy-model gain only. The codec is frozen, so joint training could do better.

    python benchmarks/latent_context_probe.py grayconv3.aezm natural32-gray-train.npy natural32-gray-heldout.npy
"""
from __future__ import annotations

import argparse

import numpy as np
import torch
import torch.nn as nn

from aezip.conv.network import SCALE_FLOOR, gaussian_likelihood
from aezip.files.modelfile import load_model
from aezip.network.tiles import hwc
from aezip.tensors import to_unit


def _unit(path: str) -> torch.Tensor:
    """A .npy of uint8 images (N x H x W[ x C], H and W multiples of 16) as N x C x H x W in [0, 1]."""
    images = np.load(path)
    h, w, c = hwc(images.shape[1:])
    return to_unit(images).view(-1, h, w, c).permute(0, 3, 1, 2)


def _symbols(net, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """(the coded latents, the hyperprior's means and scales, the hyper-latents' bits per image)."""
    with torch.no_grad():
        y, z = net.encode(x)
        mean, scale, z_bits = net.hyper_prior(z)
        return net.quantize(y, False, mean), mean, scale, z_bits[:, 0]


def probe(net, train: torch.Tensor, test: torch.Tensor, steps: int, batch: int = 256) -> tuple[float, float, float,
                                                                                                  float]:
    """(train bits before, after, held-out bits before, after), per image, for one rate point `net`."""
    m = net.m
    a, b = _symbols(net, train), _symbols(net, test)
    h, w = a[0].shape[2:]
    anchor = ((torch.arange(h)[:, None] + torch.arange(w)[None]) % 2 == 0).float()[None, None]
    head = nn.Sequential(nn.Conv2d(3 * m, 128, 5, padding=2), nn.LeakyReLU(), nn.Conv2d(128, 2 * m, 1))
    nn.init.zeros_(head[2].weight)
    nn.init.zeros_(head[2].bias)

    def bits(y_hat, mean, scale, z_bits):
        d = head(torch.cat([y_hat * anchor, mean, scale.log()], 1)) * (1 - anchor)
        scale = (scale * torch.exp(d[:, m:])).clamp_min(SCALE_FLOOR)
        return -torch.log2(gaussian_likelihood(y_hat, mean + d[:, :m], scale)).sum((1, 2, 3)) + z_bits

    def mean_bits(symbols, every: int = 1) -> float:
        with torch.no_grad():
            return bits(*(t[::every] for t in symbols)).mean().item()

    before = mean_bits(a, 4), mean_bits(b)
    opt = torch.optim.Adam(head.parameters(), 2e-3)
    gen = torch.Generator().manual_seed(0)
    for _ in range(steps):
        idx = torch.randint(0, len(a[0]), (batch,), generator=gen)
        loss = bits(*(t[idx] for t in a)).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    return before[0], mean_bits(a, 4), before[1], mean_bits(b)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("model")
    ap.add_argument("train")
    ap.add_argument("heldout")
    ap.add_argument("--steps", type=int, default=400)
    args = ap.parse_args()
    torch.manual_seed(0)
    torch.set_num_threads(1)
    mf = load_model(args.model)
    train, test = _unit(args.train), _unit(args.heldout)
    train = torch.cat([train, train.flip(3), train.flip(2), 1 - train])
    pixels = test.shape[2] * test.shape[3]
    print("rate point: latent + hyper-latent bits/pixel (estimates), hyperprior -> with the context head")
    for r in range(mf.config.rates):
        tb, ta, hb, ha = probe(mf.encoder(r), train, test, args.steps)
        print(f"{r + 1}: training images (every 4th) {tb / pixels:.4f} -> {ta / pixels:.4f} "
              f"({(ta / tb - 1) * 100:+.1f} %); held out {hb / pixels:.4f} -> {ha / pixels:.4f} "
              f"({(ha / hb - 1) * 100:+.1f} %)", flush=True)


if __name__ == "__main__":
    main()
