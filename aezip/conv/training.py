"""Training the convolutional codec: G rate points at once (one grouped network), each minimising its bits per pixel
position + lambda_g * MSE (8-bit units), uniform noise standing in for rounding; Adam, the learning rate dropped
tenfold for the last 15 % of the steps (or of the wall time)."""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from aezip.conv.layout import STRIDE, padded
from aezip.conv.network import ConvCodec
from aezip.network.augment import augment
from aezip.network.distributed import World, all_sum, data_parallel, local_device, process_group, world_from_env

DEFAULT_LAMBDAS = (0.00012, 0.00025, 0.0005, 0.001, 0.002, 0.004)


@dataclass(frozen=True)
class ConvTrainOptions:
    """What `aezip train --arch conv` sets: the rate ladder's lambdas (one rate point each, lowest rate first), the
    widths, the training budget (steps, or wall seconds when steps is 0), and the data it sees."""

    lambdas: tuple[float, ...] = DEFAULT_LAMBDAS
    n: int = 64                 # hidden channels per rate point
    m: int = 64                 # latent channels
    z: int = 32                 # hyper-latent channels
    steps: int = 0
    seconds: float = 3300.0
    batch: int = 64
    lr: float = 1e-3
    crop: int = 64              # larger (padded) images train on random crops of this side (a multiple of STRIDE)
    augment: tuple[str, ...] = ("flip",)
    seed: int = 0
    prior: str = "hyper"        # the product's; `factorized` for benchmarks/conv_prior_study.py


def pad_images(x: torch.Tensor) -> torch.Tensor:
    """B x C x H x W images padded right and bottom to multiples of STRIDE by repeating the edge pixels."""
    h, w = x.shape[2:]
    ph, pw = padded((h, w))
    return F.pad(x, (0, pw - w, 0, ph - h), mode="replicate")


def padded_data(images: np.ndarray, device: torch.device | str = "cpu") -> torch.Tensor:
    """uint8 images N x H x W[ x C] as one uint8 tensor N x H' x W' x C on `device`, edge-padded (pad_images)."""
    images = images[..., None] if images.ndim == 3 else images
    data = pad_images(torch.from_numpy(np.array(images)).permute(0, 3, 1, 2)).permute(0, 2, 3, 1)
    return data.contiguous().to(device)


def random_batch(data: torch.Tensor, crop: int, batch: int, gen: torch.Generator,
                 augments: tuple[str, ...] = ()) -> torch.Tensor:
    """A training batch B x C x h x w in [0, 1] from uint8 images N x H x W x C (padded_data): random images, random
    crops of side `crop` where larger, then the augmentations (aezip.network.augment)."""
    x = _crops(data, crop, batch, gen).float().div_(255.0)
    b, h, w, c = x.shape
    return augment(x.reshape(b, -1), (h, w, c), augments, gen).view(b, h, w, c).permute(0, 3, 1, 2)


def rd_loss(forward: Callable, x: torch.Tensor, lambdas: torch.Tensor) -> torch.Tensor:
    """The training objective of images x (B x C x H x W in [0, 1]): over the rate points, the sum of each one's
    batch mean of bits per pixel position + lambda * MSE (8-bit units); `forward` a ConvCodec (or its DDP)."""
    x_hat, bits, _ = forward(x)
    mse = ((x_hat - x[:, None]) ** 2).mean(dim=(2, 3, 4)) * 255 ** 2          # B x G, 8-bit units
    return (bits / (x.shape[2] * x.shape[3]) + lambdas * mse).mean(0).sum()


def _crops(data: torch.Tensor, crop: int, batch: int, gen: torch.Generator) -> torch.Tensor:
    """A batch of uint8 images N x H x W x C (already padded): random images, random crops where larger."""
    n, h, w, _ = data.shape
    dev = data.device
    idx = torch.randint(0, n, (batch,), device=dev, generator=gen)
    ch, cw = min(crop, h), min(crop, w)
    top = torch.randint(0, h - ch + 1, (batch,), device=dev, generator=gen)
    left = torch.randint(0, w - cw + 1, (batch,), device=dev, generator=gen)
    rows = top[:, None] + torch.arange(ch, device=dev)
    cols = left[:, None] + torch.arange(cw, device=dev)
    return data[idx[:, None, None], rows[:, :, None], cols[:, None, :]]


def train_conv(images: np.ndarray, opts: ConvTrainOptions, device: torch.device | str = "cpu",
               progress: Callable[[int, float], None] | None = None, init: ConvCodec | None = None,
               world: World | None = None) -> tuple[ConvCodec | None, int]:
    """A trained codec (eval mode, on the CPU) for uint8 images N x H x W[ x C], and the steps it took;
    progress(step, loss) every 100 steps. `init` (a network of the same architecture) is where training starts
    instead of random weights: the run continues or fine-tunes it (a fresh optimizer; the same schedule).

    Under torchrun (RANK/WORLD_SIZE set; or `world`) every process calls this: each draws its own batches, the
    gradients are averaged (DDP, gloo on the CPU, NCCL on GPUs), a wall-time budget and the learning-rate drop
    follow rank 0's clock so that every rank takes the same steps; rank 0 gets the model, the others None."""
    if opts.crop % STRIDE or opts.crop < STRIDE:
        raise ValueError(f"crop must be a positive multiple of {STRIDE}, got {opts.crop}")
    world = world_from_env() if world is None else world
    device = local_device(torch.device(device), world)
    with process_group(world, device):
        return _train(images, opts, device, progress if world.is_main else None, init, world)


def _train(images: np.ndarray, opts: ConvTrainOptions, device: torch.device,
           progress: Callable[[int, float], None] | None, init: ConvCodec | None,
           world: World) -> tuple[ConvCodec | None, int]:
    torch.manual_seed(opts.seed)                      # the same initial weights on every rank
    gen = torch.Generator(device=device).manual_seed(opts.seed + world.rank)   # batches and noise: per rank
    data = padded_data(images, device)
    model = ConvCodec(data.shape[3], len(opts.lambdas), opts.prior, opts.n, opts.m, opts.z)
    if init is not None:
        model.load_state_dict(init.state_dict())
    model = model.to(device).train()
    forward = data_parallel(model, world, device)
    optimizer = torch.optim.Adam(model.parameters(), lr=opts.lr)
    lambdas = torch.tensor(opts.lambdas, device=device)
    t0, step, dropped = time.perf_counter(), 0, False
    while True:
        elapsed = time.perf_counter() - t0
        done = step >= opts.steps if opts.steps else elapsed >= opts.seconds
        drop = step >= 0.85 * opts.steps if opts.steps else elapsed >= 0.85 * opts.seconds
        if world.distributed and not opts.steps:      # rank 0's clock decides for everyone
            done, drop = (v > 0 for v in all_sum([float(done and world.is_main), float(drop and world.is_main)],
                                                 world))
        if done:
            break
        if drop and not dropped:
            for group in optimizer.param_groups:
                group["lr"] = opts.lr / 10
            dropped = True
        loss = rd_loss(forward, random_batch(data, opts.crop, opts.batch, gen, opts.augment), lambdas)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 10.0)
        optimizer.step()
        step += 1
        if progress and step % 100 == 0:
            progress(step, loss.item())
    return (model.cpu().eval() if world.is_main else None), step


def default_augment(channels: int) -> tuple[str, ...]:
    """The augmentations picked for images of this many channels: flips and inversions, and in colour also channel
    orders, contrasts and magnifications (the MLP tile models' picks, README "Photographs")."""
    return ("flip", "invert", "channels", "contrast", "zoom") if channels > 1 else ("flip", "invert")


def train_conv_model(images: np.ndarray, opts: ConvTrainOptions, device: torch.device | str = "cpu",
                     log: Callable[[str], None] | None = None, source: dict | None = None, init=None):
    """A convolutional codec model (aezip.conv.model.ConvModel, its decode side made) trained on uint8 images
    N x H x W[ x C], from the float network of the ConvModel `init` if given; `source` goes into its info with the
    training summary, and `init`'s id and own training summary too. Under torchrun, None on ranks other than 0."""
    from aezip.conv.model import build_model

    world = world_from_env()
    log = log if log and world.is_main else (lambda m: None)
    budget = f"{opts.steps} steps" if opts.steps else f"{opts.seconds:g} s"
    procs = f", {world.size} processes x batch {opts.batch}" if world.distributed else ""
    start = f"continuing model {init.id[:16]} ({init.info.get('steps', '?')} steps): " if init is not None else ""
    log(f"{start}training a convolutional codec: {len(opts.lambdas)} rate points (lambda {', '.join(map(str, opts.lambdas))}),"
        f" widths n={opts.n} m={opts.m} z={opts.z}, {budget}, batch {opts.batch}, augment "
        f"{','.join(opts.augment) or 'none'}, on {device}{procs}")
    t0 = time.perf_counter()
    model, steps = train_conv(images, opts, device, lambda step, loss: log(f"step {step}: loss {loss:.4f}"),
                              None if init is None else init.model, world)
    seconds = time.perf_counter() - t0
    if model is None:                  # a torchrun rank other than 0: rank 0 makes the model
        return None
    info = {"arch": "conv", "lambdas": list(opts.lambdas), "steps": steps, "processes": world.size,
            "seconds": round(seconds, 1), "batch": opts.batch, "lr": opts.lr, "crop": opts.crop,
            "augment": list(opts.augment), "seed": opts.seed,
            "data": {**(source or {}), "shape": list(images.shape)}}   # N x H x W[ x C], as given
    if init is not None:
        info["init"] = {"model_id": init.id, "info": {k: v for k, v in init.info.items() if k != "init"},
                        "total_steps": steps + _total_steps(init.info)}
    return build_model(model, info, images)


def _total_steps(info: dict) -> int:
    """The steps a conv model's float network has trained, over its chain of `init` models."""
    return int(info.get("init", {}).get("total_steps", info.get("steps", 0)))
