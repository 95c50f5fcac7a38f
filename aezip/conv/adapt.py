"""`aezip encode --adapt STEPS`: a convolutional model's rate point fine-tuned, before coding, on the images it is
about to code.

A model's analysis transform is amortised over its training photographs; on other pictures (the held-out grass and
gravel of natural32-gray) the latents it guesses are not the ones its own decoder codes best. Adapting fine-tunes the
rate point's analysis and hyper-analysis — the encoder's float networks, which decoding never reads — for STEPS Adam
steps of the rate point's own training objective (bits per pixel position + lambda * MSE, uniform noise for
rounding; aezip.conv.training.rd_loss) on random batches of the first chunk's images. The decoder is untouched: the
file names the same model and decodes to the pixels its bytes say, exactly, on every machine (the checksum in each
chunk is of those pixels). `--effort max` then refines each image's latents from the adapted guess.

The steps draw their batches and noise from generators seeded with 0 (the global RNG is left as it was), so on a CPU
one machine and thread count write the same bytes every time (tested); float training can differ in its last bits
between machines, thread counts and GPU runs, and so can the bytes, never the pixels that given bytes decode to.
Where it pays: on the held-out gray photographs a 500-step adaptation (~2.5 min on one thread here) moved the conv
ladder's BD-rate against WebP on a mosaic from +13.1 % to +9.3 % (README "Convolutional models").

With `decoder` (`--adapt-decoder`) the synthesis biases and inverse-GDN betas train with the encoder, and the file
carries what changed as a decoder patch (aezip.conv.patch): a few hundred bytes, counted in the file's rate.
"""
from __future__ import annotations

import time
from typing import Callable

import numpy as np
import torch

from aezip.conv.model import ConvModel
from aezip.conv.patch import PATCHED, make_patch
from aezip.conv.training import padded_data, random_batch, rd_loss

LR = 2e-4          # Adam's step: a fifth of training's default (10^-3), as for a fine-tune
BATCH = 64         # images (or crops) per step
CROP = 64          # larger images train on random crops of this side, as in training
ADAPTED = ("enc.", "h_enc.")   # the parameters adapted: the analysis and hyper-analysis, encode side only


def fine_tune(net, images: np.ndarray, lambdas: tuple[float, ...], trainable: Callable[[str], bool], steps: int,
              device: torch.device | str = "cpu", lr: float = LR, seconds: float | None = None) -> int:
    """Fine-tune the ConvCodec `net` (its G rate points' `lambdas`) in place on uint8 images N x H x W[ x C]: Adam
    steps of size `lr` on rd_loss over seeded random batches, only the parameters whose names `trainable` accepts,
    for `steps` steps or, where given, until `seconds` have passed, whichever comes first; returns the steps taken.
    The global RNG is left as it was; net ends in eval mode with no parameter requiring a gradient."""
    net.to(device).train()
    for name, p in net.named_parameters():
        p.requires_grad_(trainable(name))
    optimizer = torch.optim.Adam([p for p in net.parameters() if p.requires_grad], lr=lr)
    data = padded_data(images, device)
    lam = torch.tensor(lambdas, device=device)
    gen = torch.Generator(device=device).manual_seed(0)
    start, done = time.perf_counter(), 0
    with torch.random.fork_rng(devices=[device] if torch.device(device).type == "cuda" else []):
        torch.manual_seed(0)                          # the training noise (ConvCodec.quantize)
        while done < steps and (seconds is None or time.perf_counter() - start < seconds):
            loss = rd_loss(net, random_batch(data, CROP, BATCH, gen), lam)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            done += 1
    net.requires_grad_(False)
    net.eval()
    return done


def adapt(mf: ConvModel, rate: int, images: np.ndarray, steps: int, device: torch.device | str = "cpu",
          lr: float = LR, decoder: bool = False) -> tuple[ConvModel, bytes | None]:
    """(`mf` with rate point `rate`'s (0-based) encoder fine-tuned for `steps` Adam steps of size `lr` on uint8
    images N x H x W[ x C] (the module docstring) and, with `decoder`, its synthesis biases and betas with it; the
    decoder patch the file must carry then (aezip.conv.patch), else None). The model itself is not changed."""
    net = mf.model.single(rate)
    parts = ADAPTED + (PATCHED if decoder else ())
    fine_tune(net, images, (mf.config.lambdas[rate],), lambda name: name.startswith(parts), steps, device, lr)
    adapted = mf.with_encoder(rate, net)
    if not decoder:
        return adapted, None
    point, patch = make_patch(mf.points[rate], net, rate)
    return adapted.with_point(rate, point), patch
