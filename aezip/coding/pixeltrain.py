"""Training the pixel model (pixelmodel.py): per-pass float MLPs, then integer weights, thresholds and the table.

Each pass's MLP learns, on the training images coded losslessly (earlier passes hold the true pixels, the rest the
autoencoder's prediction, as the decoder will see them), a mean and a log-scale under the discretized logistic NLL
over 0..255. The float network is then quantized (intdecoder.quantize_mlp); the scale thresholds are quantiles
of the integer log-scale accumulators, and the table T[s][mu >> 3][v] is counted with the integer network over
every training pixel, smoothed towards its scale class's histogram of v - mu (PRIOR_WEIGHT counts), scaled to
TABLE_TOTAL and given + 1. Same images, prediction and seed: same bytes.
"""
from __future__ import annotations

import dataclasses
from typing import Callable, Iterator

import numpy as np
import torch

from aezip.coding.intdecoder import quantize_mlp_float32
from aezip.options import PixelOptions
from aezip.coding.pixelmodel import (INPUT_BOXES, MU_BUCKET_BITS, MU_BUCKETS, TABLE_TOTAL, PixelMLP, channels,
                                     mu_thresholds, n_features, n_passes, pass_features, pass_slice)

PRIOR_WEIGHT = 32.0
_BATCH_IMAGES = 512


def _pass_batches(images: np.ndarray, pred: np.ndarray, image_shape: tuple[int, ...], levels: int
                  ) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
    """(pass, features, true values) for batches of images coded losslessly, pass by pass."""
    shape = (len(images), image_shape[0], image_shape[1], channels(image_shape))
    truth = images.reshape(shape).astype(np.int64)
    predc = pred.reshape(shape).astype(np.int64)
    for i in range(0, len(images), _BATCH_IMAGES):
        canvas, p, t = predc[i:i + _BATCH_IMAGES].copy(), predc[i:i + _BATCH_IMAGES], truth[i:i + _BATCH_IMAGES]
        for k in range(n_passes(image_shape, levels)):
            ys, xs, c = pass_slice(k, shape[3], levels)
            yield k, pass_features(canvas, p, k, levels), t[:, ys, xs, c].reshape(-1)
            canvas[:, ys, xs, c] = t[:, ys, xs, c]


def _net(features: int, hidden: tuple[int, ...]) -> torch.nn.Sequential:
    layers: list[torch.nn.Module] = []
    for width in hidden:
        layers += [torch.nn.Linear(features, width), torch.nn.ReLU()]
        features = width
    return torch.nn.Sequential(*layers, torch.nn.Linear(features, 2))


def _outputs(net: torch.nn.Sequential, feats: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean (pixel units) and log-scale; inputs relative to the reference, scaled by 1/128 (folded in when
    quantized); the mean is the reference plus the first output."""
    ref = feats[:, -1:]   # the reference is the last feature
    o = net((feats - ref) / 128.0)
    return ref[:, 0] + 64.0 * o[:, 0], o[:, 1]


def logistic_nll(mu: torch.Tensor, log_scale: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Mean bits of the integers v under a logistic discretized to 0..255 (the ends take the tails)."""
    inv = torch.exp(-log_scale.clamp(min=-4.0))
    upper = torch.where(v >= 255, torch.full_like(mu, 1e4), (v + 0.5 - mu) * inv)
    lower = torch.where(v <= 0, torch.full_like(mu, -1e4), (v - 0.5 - mu) * inv)
    p = torch.sigmoid(upper) - torch.sigmoid(lower)
    return -torch.log2(p.clamp(min=1e-12)).mean()


def _fit(feats: np.ndarray, target: np.ndarray, opts: PixelOptions, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Train one pass's float MLP; returns its layers (weight, bias) in float64 with the scalings folded in."""
    torch.manual_seed(seed)
    net = _net(feats.shape[1], opts.hidden)
    optim = torch.optim.Adam(net.parameters(), lr=opts.lr)
    x, y = torch.from_numpy(feats.astype(np.float32)), torch.from_numpy(target.astype(np.float32))
    gen = torch.Generator().manual_seed(seed)
    steps = opts.epochs * -(-len(x) // opts.batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(optim, max_lr=opts.lr, total_steps=max(steps, 1))
    for _ in range(opts.epochs):
        perm = torch.randperm(len(x), generator=gen)
        for i in range(0, len(x), opts.batch_size):
            idx = perm[i:i + opts.batch_size]
            loss = logistic_nll(*_outputs(net, x[idx]), y[idx])
            optim.zero_grad(set_to_none=True)
            loss.backward()
            optim.step()
            sched.step()
    linears = [m for m in net if isinstance(m, torch.nn.Linear)]
    layers = [(m.weight.detach().double().numpy().copy(), m.bias.detach().double().numpy().copy()) for m in linears]
    w0, b0 = layers[0]
    layers[0] = (w0 / 128.0, b0)
    wl, bl = layers[-1]
    wl[0], bl[0] = wl[0] * 64.0, bl[0] * 64.0
    return layers


def _samples(images: np.ndarray, pred: np.ndarray, image_shape: tuple[int, ...], opts: PixelOptions, levels: int,
             rng: np.random.Generator) -> list[tuple[np.ndarray, np.ndarray]]:
    """A random subset of about opts.samples (features, value) rows per pass."""
    per_channel = images[0].size // channels(image_shape) * len(images)
    parts: list[list] = [[] for _ in range(n_passes(image_shape, levels))]
    for k, feats, target in _pass_batches(images, pred, image_shape, levels):
        mask = rng.random(len(target)) < min(1.0, opts.samples / per_channel * 4)
        parts[k].append((feats[mask].astype(np.float32), target[mask]))
    return [(np.concatenate([f for f, _ in p]), np.concatenate([t for _, t in p])) for p in parts]


def _count(mlp: PixelMLP, images: np.ndarray, pred: np.ndarray, image_shape: tuple[int, ...]
           ) -> tuple[np.ndarray, np.ndarray]:
    """Counts per (key, value) and per (scale class, value - mu + 255) over every pixel, integer network."""
    rows = mlp.scales * MU_BUCKETS
    counts = np.zeros(rows * 256, np.int64)
    pooled = np.zeros(mlp.scales * 511, np.int64)
    for k, feats, target in _pass_batches(images, pred, image_shape, mlp.levels(image_shape)):
        mu, s = mlp.classes(k, feats)
        counts += np.bincount((s * MU_BUCKETS + (mu >> MU_BUCKET_BITS)) * 256 + target, minlength=rows * 256)
        pooled += np.bincount(s * 511 + target - mu + 255, minlength=mlp.scales * 511)
    return counts.reshape(mlp.scales, MU_BUCKETS, 256), pooled.reshape(mlp.scales, 511)


def _table(counts: np.ndarray, pooled: np.ndarray) -> np.ndarray:
    """Counts smoothed towards each scale class's residual histogram at the bucket's centre, scaled, + 1."""
    scales = counts.shape[0]
    centre = (np.arange(MU_BUCKETS) << MU_BUCKET_BITS) + (1 << (MU_BUCKET_BITS - 1))
    idx = np.arange(256)[None, :] - centre[:, None] + 255                  # MU_BUCKETS x 256
    prior = pooled[:, idx].astype(np.float64) + 1.0                        # scales x MU_BUCKETS x 256
    prior /= prior.sum(axis=2, keepdims=True)
    smoothed = counts + PRIOR_WEIGHT * prior
    table = np.floor(smoothed * TABLE_TOTAL / smoothed.sum(axis=2, keepdims=True)) + 1
    return np.ascontiguousarray(table.reshape(scales, MU_BUCKETS, 256), np.int32)


def fit_pixel_model(images: np.ndarray, pred: np.ndarray | None, image_shape: tuple[int, ...], opts: PixelOptions,
                    levels: int, seed: int, log: Callable[[str], None] = print) -> PixelMLP:
    """Train the pixel model of `levels` coarse-to-fine levels on uint8 images (n x D) given the autoencoder's
    integer predictions (n x D), or without latents (pred None): then every image's prediction is the base image,
    the rounded mean of the training images."""
    base = None
    if pred is None:
        base = np.floor(images.mean(axis=0, dtype=np.float64) + 0.5).astype(np.uint8)
        pred = np.broadcast_to(base.astype(np.int64), images.shape)
    rng = np.random.default_rng(seed)
    data = _samples(images, pred, image_shape, opts, levels, rng)
    weights, biases, shifts, mu_t, s_t = [], [], [], [], []
    for k, (feats, target) in enumerate(data):
        assert feats.shape[1] == n_features(k % channels(image_shape))
        ws, bs = zip(*_fit(feats, target, opts, seed + k))
        qw, qb, sh, acc_bits = quantize_mlp_float32(list(ws), list(bs), INPUT_BOXES)
        weights.append(qw)
        biases.append(qb)
        shifts.append(sh)
        mu_t.append(mu_thresholds(acc_bits))
        s_t.append(np.zeros(opts.scales - 1, np.int64))
    empty = np.ones((opts.scales, MU_BUCKETS, 256), np.int32)
    mlp = PixelMLP(weights, biases, np.asarray(shifts, np.int64).reshape(len(data), -1), np.stack(mu_t),
                   np.stack(s_t), empty, np.ones((opts.scales, 511), np.int32), base)
    for k, (feats, _) in enumerate(data):   # scale classes: quantiles of the integer log-scale accumulator
        acc = mlp.accumulators(k, feats.astype(np.float64))[:, 1]
        if len(acc):   # a pass can be empty on tiny images
            q = np.quantile(acc, np.linspace(0, 1, opts.scales + 1)[1:-1], method="lower")
            mlp.s_thresholds[k] = np.maximum.accumulate(q.astype(np.int64))
    counts, pooled = _count(mlp, images, pred, image_shape)
    offset = pooled.astype(np.float64) + 1.0
    mlp = dataclasses.replace(mlp, table=_table(counts, pooled),   # a new model: nothing cached from the empty one
                              offset_table=np.floor(offset * TABLE_TOTAL / offset.sum(axis=1, keepdims=True)
                                                    ).astype(np.int32) + 1)
    log(f"pixel model{' without latents' if base is not None else ''}: {n_passes(image_shape, levels)} passes, "
        f"hidden {list(opts.hidden)}, {opts.scales} scale classes")
    return mlp


def model_bits(mlp: PixelMLP, images: np.ndarray, pred: np.ndarray | None, image_shape: tuple[int, ...]) -> float:
    """The pixel model's ideal lossless cost on images (bits per sample): its mu-bucket table, no adaptation; pred
    None for a model without latents."""
    if pred is None:
        pred = mlp.prediction(len(images))
    rows = mlp.table.reshape(-1, 256).astype(np.float64)
    totals = rows.sum(axis=1)
    bits = 0.0
    for k, feats, target in _pass_batches(images, pred, image_shape, mlp.levels(image_shape)):
        key = mlp.keys(k, feats)
        bits -= float(np.log2(rows[key, target] / totals[key]).sum())
    return bits / images.size
