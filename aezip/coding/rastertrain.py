"""Training the raster network (rasternet.py): a float softmax MLP over each pixel's 256 values given its causal
neighbours and the autoencoder's prediction around it, then integer weights (intdecoder.quantize_mlp) with the
logits in bits. Same images, prediction and seed: same bytes.

Choices made on MNIST training images (the network fitted on 2000-7999, measured on 0-499 with the default model's
predictions): hidden 32-32 (float: 1.0256 bits/pixel alone after 4 epochs, 64-64 after 2 epochs 1.0271); mixed into
the mixing coder with latents, 0.9565 against 0.9846 without it, 0.9533 after 8 epochs, 0.9527 with 64-64 and 0.9507
with 128-128 (3 epochs) at 1.2-1.6x the decoding time; then as two inputs selecting the first mixer and the
probability map's row, 0.9472. Predictions at the qualities --effort max weighs rather than the model's own: held-out
MNIST at --effort max 1.1009 -> 1.0957 bits/pixel (with the encoder's latent search on those predictions: 1.0961).
It learns from exact pixels only: one that saw its neighbours as their decoded values at a random --max-error was no
better under E >= 1 (MNIST 0-499: +0.3 to +0.5 % at E = 0..4, -0.5 % at E = 16).
"""
from __future__ import annotations

import math
import time
from typing import Callable

import numpy as np
import torch

from aezip.coding.intdecoder import quantize_mlp
from aezip.coding.rasternet import FEATURES, VALUES, RasterNet, features, is_exact

HIDDEN = (32, 32)
EPOCHS = 4
BATCH = 1024
LR = 2e-3
MAX_ROWS = 3_000_000   # pixels sampled for training at most (each a row of FEATURES inputs)
_BLOCK_IMAGES = 1024   # images whose features are built at once while sampling


def raster_applies(image_shape: tuple[int, ...]) -> bool:
    """Whether images of this shape can have a raster network: one channel (the coder mixes it for those only)."""
    return len(image_shape) == 2 or image_shape[2] == 1


def _sampled_rows(images: np.ndarray, pred: np.ndarray, image_shape: tuple[int, ...],
                  rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """The features and values of at most MAX_ROWS pixels drawn without replacement (raster order), built a block
    of images at a time: never every pixel's features at once (16,384 32x32 images would take 2.5 GB)."""
    h, w = image_shape[:2]
    planes, preds = images.reshape(-1, h, w), pred.reshape(-1, h, w)
    total = planes.size
    keep = np.sort(rng.choice(total, MAX_ROWS, replace=False)) if total > MAX_ROWS else np.arange(total)
    xs, ys = [], []
    for a in range(0, len(planes), _BLOCK_IMAGES):
        block = planes[a:a + _BLOCK_IMAGES].astype(np.int64)
        lo, hi = np.searchsorted(keep, [a * h * w, (a + len(block)) * h * w])
        rows = keep[lo:hi] - a * h * w
        xs.append(features(block, preds[a:a + _BLOCK_IMAGES].astype(np.int64))[rows])
        ys.append(block.reshape(-1)[rows])
    return np.concatenate(xs), np.concatenate(ys)


def fit_raster(images: np.ndarray, pred: np.ndarray, image_shape: tuple[int, ...], seed: int,
               log: Callable[[str], None] = print, hidden: tuple[int, ...] = HIDDEN,
               epochs: int = EPOCHS) -> RasterNet:
    """The raster network of one-channel uint8 images (n x D) given the autoencoder's integer predictions of them
    (n x D; effort.quality_predictions: at the qualities --effort max weighs)."""
    start = time.perf_counter()
    x, y = _sampled_rows(images, pred, image_shape, np.random.default_rng(seed))
    torch.manual_seed(seed)
    layers: list[torch.nn.Module] = []
    width = FEATURES
    for out in hidden:
        layers += [torch.nn.Linear(width, out), torch.nn.ReLU()]
        width = out
    net = torch.nn.Sequential(*layers, torch.nn.Linear(width, VALUES))
    xt, yt = torch.from_numpy(x / np.float32(255.0)), torch.from_numpy(y)
    optim = torch.optim.Adam(net.parameters(), lr=LR)
    steps = max(1, epochs * (len(xt) // BATCH))
    sched = torch.optim.lr_scheduler.OneCycleLR(optim, max_lr=LR, total_steps=steps)
    gen = torch.Generator().manual_seed(seed)
    done = 0
    for _ in range(epochs):
        perm = torch.randperm(len(xt), generator=gen)
        for i in range(0, len(xt) - BATCH + 1, BATCH):
            if done == steps:
                break
            idx = perm[i:i + BATCH]
            loss = torch.nn.functional.cross_entropy(net(xt[idx]), yt[idx])
            optim.zero_grad(set_to_none=True)
            loss.backward()
            optim.step()
            sched.step()
            done += 1
    linears = [m for m in net if isinstance(m, torch.nn.Linear)]
    ws = [m.weight.detach().double().numpy().copy() for m in linears]
    bs = [m.bias.detach().double().numpy().copy() for m in linears]
    ws[0] = ws[0] / 255.0                                  # integer inputs 0..255
    ws[-1], bs[-1] = ws[-1] * math.log2(math.e), bs[-1] * math.log2(math.e)   # logits in bits
    qw, qb, shifts, out_bits = quantize_mlp(ws, bs, 255.0)
    raster = RasterNet(qw, qb, np.asarray(shifts, np.int64), out_bits)
    if not is_exact(raster):   # quantize_mlp keeps every layer exact; a failure here is a bug, not bad data
        raise AssertionError("the raster network's quantization left exact arithmetic")
    log(f"raster network: {FEATURES}-{'-'.join(map(str, hidden))}-{VALUES}, {len(xt)} pixels, {epochs} epochs, "
        f"{time.perf_counter() - start:.0f} s")
    return raster
