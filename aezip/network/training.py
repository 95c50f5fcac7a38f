"""The training loop: denoising and quantization noise, latent penalties, validation, early stop, progress."""
from __future__ import annotations

import copy
import math
import time
from dataclasses import asdict

import numpy as np
import torch

from aezip import kernels
from aezip.network.augment import augment
from aezip.network.distributed import (World, all_sum, data_parallel, local_device, process_group, shard,
                                      world_from_env)
from aezip.coding.context import encode_context, fit_context
from aezip.coding.entropy import encode_codes, frequency_tables
from aezip.errors import InputError, ParameterError
from aezip.network.finetune import fit_decode_side
from aezip.network.losses import (LatentDensity, LatentDiscriminator, adversarial_penalty, discriminator_loss, l2_penalty, reconstruction_loss,
                     sample_prior, sparsity_penalty)
from aezip.metrics import psnr_from_mse
from aezip.coding.pixelmodel import PixelMLP
from aezip.coding.pixeltrain import fit_pixel_model, model_bits
from aezip.coding.rastertrain import fit_raster, raster_applies
from aezip.uses.restore import code_bank
from aezip.files.stream import ImageRows, batches
from aezip.tensors import resolve_device, to_unit
from aezip.network.tiles import predict
from aezip.network.model import AutoEncoder
from aezip.files.modelfile import ModelFile
from aezip.effort import quality_predictions
from aezip.network.config import AEConfig
from aezip.options import EXECUTION_OPTIONS, RECORDED_WHEN_SET, WEIGHT_BITS, TrainOptions, parse_augment, parse_denoise, parse_prior


def corrupt(x: torch.Tensor, denoise: tuple[str, float] | None, image_shape: tuple[int, ...],
            gen: torch.Generator) -> torch.Tensor:
    """The denoising corruption: Gaussian noise (clipped to [0, 1]), a random mask of pixels set to 0, or one
    S x S box per image, at a random place inside it, set to 0."""
    if denoise is None:
        return x
    kind, v = denoise
    if kind == "gaussian":
        noise = torch.randn(x.shape, generator=gen, device=x.device)
        return torch.clamp(x + v * noise, 0.0, 1.0)
    if kind == "mask":
        return x * (torch.rand(x.shape, generator=gen, device=x.device) >= v)
    b, (h, w) = x.shape[0], image_shape[:2]
    size_y, size_x = min(int(v), h), min(int(v), w)
    y0 = torch.randint(0, h - size_y + 1, (b, 1, 1), generator=gen, device=x.device)
    x0 = torch.randint(0, w - size_x + 1, (b, 1, 1), generator=gen, device=x.device)
    rows = torch.arange(h, device=x.device)[None, :, None]
    cols = torch.arange(w, device=x.device)[None, None, :]
    inside = (rows >= y0) & (rows < y0 + size_y) & (cols >= x0) & (cols < x0 + size_x)   # b x h x w
    return (x.view(b, h, w, -1) * ~inside[..., None]).reshape(x.shape)


def random_shift(x: torch.Tensor, image_shape: tuple[int, ...], max_shift: int, gen: torch.Generator) -> torch.Tensor:
    """Translate each image (rows of x) by a random offset of up to max_shift pixels, filling with zeros."""
    if max_shift == 0:
        return x
    b, (h, w) = x.shape[0], image_shape[:2]
    imgs = x.view(b, h, w, -1).permute(0, 3, 1, 2)
    padded = torch.nn.functional.pad(imgs, (max_shift,) * 4)
    dy = torch.randint(0, 2 * max_shift + 1, (b,), generator=gen, device=x.device)
    dx = torch.randint(0, 2 * max_shift + 1, (b,), generator=gen, device=x.device)
    rows = (dy[:, None] + torch.arange(h, device=x.device))[:, :, None]
    cols = (dx[:, None] + torch.arange(w, device=x.device))[:, None, :]
    batch = torch.arange(b, device=x.device)[:, None, None]
    return padded[batch, :, rows, cols].reshape(b, -1)   # advanced indices first: b x h x w x c


def _quantization_noise(h: torch.Tensor, levels: int, mode: str, gen: torch.Generator,
                        variable_rate: int = 0) -> tuple[torch.Tensor, torch.Tensor | float]:
    """The latents as training sees them quantized, and the quantization step: one step of the model's grid, or
    (variable_rate = Q >= 2) that of a quality level drawn per sample from Q..levels (B x 1; the ladder of
    quality.py, whose coarse points lie within half a fine step of the uniform grid of that many levels)."""
    if variable_rate:
        q = torch.randint(variable_rate, levels + 1, (h.shape[0], 1), generator=gen, device=h.device)
        step = 1.0 / (q - 1).to(h.dtype)
    else:
        step = 1.0 / (levels - 1)
    if mode == "ste":
        return h + (torch.round(h / step) * step - h).detach(), step
    return h + (torch.rand(h.shape, generator=gen, device=h.device) - 0.5) * step, step


def _split(n: int, val_split: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    perm = np.random.default_rng(seed).permutation(n)
    n_val = max(1, int(round(n * val_split)))
    if n - n_val < 1:
        raise InputError(f"too few images to train ({n}); need at least 2")
    return np.sort(perm[n_val:]), np.sort(perm[:n_val])


class _TrainForward(torch.nn.Module):
    """One training forward pass (encoder, quantization noise, decoder logits, and the latents' bits under the
    learned density where there is one) as a module, so that DistributedDataParallel sees the call and all-reduces
    the gradients of everything it used."""

    def __init__(self, model: AutoEncoder, backend: str, quant_noise: str, variable_rate: int = 0,
                 density: LatentDensity | None = None) -> None:
        super().__init__()
        self.model, self.backend, self.quant_noise, self.variable_rate = model, backend, quant_noise, variable_rate
        self.density = density

    def forward(self, x_in: torch.Tensor, gen: torch.Generator
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        h = self.model.encode(x_in, self.backend)
        noisy, step = _quantization_noise(h, self.model.config.levels, self.quant_noise, gen, self.variable_rate)
        bits = self.density.bits(noisy, step) if self.density is not None else None
        return h, self.model.decode_logits(noisy), bits


VAL_BATCH = 8192   # validation and the final measurements run this many images at a time


def _val_psnr(model: AutoEncoder, rows: ImageRows, val_idx: np.ndarray, backend: str, world: World) -> float:
    """Validation PSNR of the quantized float model: each rank measures its share, the squared errors are summed
    over every rank, so every rank gets the same figure (and early stopping agrees)."""
    sse, count = 0.0, 0
    with torch.no_grad():
        for idx in batches(val_idx[world.rank::world.size], VAL_BATCH):
            x = rows.take(idx)
            y = torch.round(model.decode(model.dequantize(model.codes(x, backend))) * 255)
            diff = (x * 255).double().cpu().numpy()
            diff -= y.double().cpu().numpy()
            sse += float(np.sum(diff * diff))
            count += x.numel()
    sse, count = all_sum([sse, float(count)], world)
    return psnr_from_mse(sse / count)


def train_model(images: np.ndarray, config: AEConfig, opts: TrainOptions, *, progress: bool = True,
                log=print, world: World | None = None) -> ModelFile | None:
    """Train a codec on uint8 images (n x H x W[ x C], in memory or memory-mapped); returns the model, its tables
    and a summary. Under torchrun (RANK/WORLD_SIZE set) every process calls this; rank 0 gets the model, the
    others None."""
    world = world_from_env() if world is None else world
    device = local_device(resolve_device(opts.device), world)
    with process_group(world, device):
        return _train(images, config, opts, progress and world.is_main, log if world.is_main else _quiet,
                      world, device)


def _quiet(_: str) -> None:
    """Ranks other than 0 print nothing."""


def _train(images: np.ndarray, config: AEConfig, opts: TrainOptions, progress: bool, log, world: World,
           device: torch.device) -> ModelFile | None:
    if tuple(images.shape[1:]) != config.image_shape:
        raise InputError(f"images are {images.shape[1:]}, the config expects {config.image_shape}")
    if opts.variable_rate > config.levels:
        raise ParameterError("variable_rate", f"must lie in 2..{config.levels} (the latent levels) or be 0, got "
                                              f"{opts.variable_rate}")
    backend = kernels.resolve_backend(opts.backend, device)
    n = torch.get_num_threads()
    threads = f" ({n} thread{'s' if n > 1 else ''})" if device.type == "cpu" else ""
    log(f"aezip train: {len(images)} images of {'x'.join(map(str, config.image_shape))}, device {device}{threads}, "
        f"kernel backend {backend}" + (f", {world.size} processes x batch {opts.batch_size}" if world.distributed
                                       else ""))
    torch.manual_seed(opts.seed)
    gen = torch.Generator(device=device).manual_seed(opts.seed + world.rank)   # augmentation and noise: per rank
    # the epoch's order is the same on every rank, which takes its share; one process keeps the original stream
    order_gen = torch.Generator(device=device).manual_seed(opts.seed) if world.distributed else gen
    train_idx, val_idx = _split(len(images), opts.val_split, opts.seed)
    rows = ImageRows(images, device)
    train_rows = torch.from_numpy(train_idx).to(device)
    model = AutoEncoder(config).to(device)
    density = LatentDensity(config.latent).to(device) if opts.rate_weight > 0 else None
    forward = data_parallel(_TrainForward(model, backend, opts.quant_noise, opts.variable_rate, density), world, device)
    # foreach: one multi-tensor step, the same bits as the single-tensor loop; fused changes the last bits (opt-in)
    groups = [{"params": list(model.parameters())}]
    if density is not None:
        groups.append({"params": list(density.parameters()), "weight_decay": 0.0})
    optim = torch.optim.AdamW(groups, lr=opts.lr, weight_decay=opts.weight_decay,
                              **({"fused": True} if opts.fused_optimizer else {"foreach": True}))
    per_rank = -(-len(train_idx) // world.size)
    steps_per_epoch = math.ceil(per_rank / opts.batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(optim, max_lr=opts.lr, total_steps=opts.epochs * steps_per_epoch)
    denoise = parse_denoise(opts.denoise)
    prior = parse_prior(opts.prior)
    augmentations = parse_augment(opts.augment)
    disc = LatentDiscriminator(config.latent).to(device) if prior else None
    disc_ddp = data_parallel(disc, world, device) if disc else None
    disc_optim = torch.optim.Adam(disc.parameters(), lr=opts.lr / 2, betas=(0.5, 0.999)) if disc else None
    best = (-math.inf, copy.deepcopy(model.state_dict()), 0)
    bar = _progress(opts.epochs, progress)
    start, epochs_run = time.perf_counter(), 0
    for epoch in range(opts.epochs):
        model.train()
        perm = shard(torch.randperm(len(train_idx), generator=order_gen, device=device), world)
        total = 0.0
        for i in range(0, len(perm), opts.batch_size):
            x = random_shift(rows.take(train_rows[perm[i:i + opts.batch_size]]), config.image_shape, opts.shift, gen)
            x = augment(x, config.image_shape, augmentations, gen)
            h, logits, bits = forward(corrupt(x, denoise, config.image_shape, gen), gen)
            loss = reconstruction_loss(logits, x, opts.loss)
            if bits is not None:
                loss = loss + opts.rate_weight * bits
            if opts.rho is not None and opts.beta > 0:
                loss = loss + sparsity_penalty(h, opts.rho, opts.beta, backend)
            if opts.l2 > 0:
                loss = loss + l2_penalty(h, opts.l2)
            if disc is not None:
                disc_optim.zero_grad(set_to_none=True)
                discriminator_loss(disc_ddp, h, sample_prior(prior, tuple(h.shape), gen, device)).backward()
                disc_optim.step()
                loss = loss + adversarial_penalty(disc, h, opts.prior_weight)
            optim.zero_grad(set_to_none=True)
            loss.backward()
            optim.step()
            sched.step()
            total += loss.item() * len(x)
        model.eval()
        val_psnr = _val_psnr(model, rows, val_idx, backend, world)
        epochs_run += 1
        if val_psnr > best[0]:
            best = (val_psnr, copy.deepcopy(model.state_dict()), epoch)
        bar.update(1)
        bar.set_postfix(loss=f"{all_sum([total], world)[0] / (len(perm) * world.size):.3f}",
                        val_psnr=f"{val_psnr:.2f}")
        if epoch - best[2] >= opts.patience:
            log(f"early stop after epoch {epoch + 1}: no better validation PSNR for {opts.patience} epochs")
            break
    bar.close()
    seconds = time.perf_counter() - start
    log(f"trained {epochs_run} epochs in {seconds:.1f} s: {epochs_run * per_rank * world.size / seconds:.0f} "
        f"samples/s over {world.size} process{'es' if world.distributed else ''} (validation included)")
    if not world.is_main:
        return None
    model.load_state_dict(best[1])
    model = model.cpu().eval()
    return _finish(model, images, train_idx, val_idx, opts, log)


PRIOR_IMAGES = 16384   # at most this many (evenly spaced) training images: decoder fine-tuning and the prior


def evenly_spaced(n: int) -> np.ndarray:
    """Indices of at most PRIOR_IMAGES of n images, evenly spaced."""
    return np.linspace(0, n - 1, min(n, PRIOR_IMAGES)).round().astype(int)


def image_codes(model: AutoEncoder, images: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """Integer codes of images[idx], VAL_BATCH images at a time (so memory does not grow with the data)."""
    with torch.no_grad():
        parts = [model.codes(to_unit(images[i]), "torch").numpy() for i in batches(idx, VAL_BATCH)]
    return np.concatenate(parts)


def _pixel_model(train_images: np.ndarray, train_pred: np.ndarray | None, val: np.ndarray,
                 val_pred: np.ndarray | None, image_shape: tuple[int, ...], opts: TrainOptions, log) -> PixelMLP:
    """The pixel model (with latents, or without them where the predictions are None) for each of
    opts.pixel.levels; the one with the lowest cost on the validation images is kept."""
    best = None
    for levels in opts.pixel.levels:
        pixel = fit_pixel_model(train_images, train_pred, image_shape, opts.pixel, levels, opts.seed, log)
        bits = model_bits(pixel, val, val_pred, image_shape)
        log(f"pixel model{' without latents' if train_pred is None else ''} with {levels} level(s): {bits:.4f} "
            f"bits/sample on validation images")
        if best is None or bits < best[0]:
            best = (bits, pixel)
    return best[1]


def _finish(model: AutoEncoder, images: np.ndarray, train_idx: np.ndarray, val_idx: np.ndarray,
            opts: TrainOptions, log) -> ModelFile:
    """Count the entropy tables, build the integer decoder, keep the training codes for restoration, and measure the
    held-out figures the codec will give (chunk by chunk: the images may be memory-mapped)."""
    cfg = model.config
    train_codes = image_codes(model, images, train_idx)
    tables = frequency_tables(train_codes, cfg.levels, latent=cfg.latent)
    context = fit_context(train_codes.reshape(-1, cfg.latent), cfg.levels) if opts.context_model else None
    some = evenly_spaced(len(train_idx))
    some_images = images[train_idx[some]].reshape(len(some), -1)
    intdec, some_pred, prior = fit_decode_side(model, train_codes[some], some_images, opts.decoder_bits,
                                               finetune=opts.decoder_bits < WEIGHT_BITS[1], seed=opts.seed,
                                               augmentations=parse_augment(opts.augment), log=log)
    pixel = alone = None
    if opts.pixel_model:
        idx = val_idx[:VAL_BATCH]
        val, val_pred = images[idx].reshape(len(idx), -1), predict(cfg, intdec, image_codes(model, images, idx),
                                                                   cfg.image_shape)
        pixel = _pixel_model(some_images, some_pred, val, val_pred, cfg.image_shape, opts, log)
        alone = _pixel_model(some_images, None, val, None, cfg.image_shape, opts, log)
    sse, latent_bytes, pixel_bits, alone_bits = 0.0, 0, 0.0, 0.0
    for idx in batches(val_idx, VAL_BATCH):
        codes = image_codes(model, images, idx)
        latent_bytes += len(encode_codes(codes, tables) if context is None else
                            encode_context(codes.reshape(-1, cfg.latent), tables, context, cfg.levels, None))
        val, pred = images[idx].reshape(len(idx), -1), predict(cfg, intdec, codes, cfg.image_shape)
        diff = val.astype(np.float64) - pred
        sse += float(np.sum(diff * diff))
        if pixel is not None:
            pixel_bits += model_bits(pixel, val, pred, cfg.image_shape) * val.size
            alone_bits += model_bits(alone, val, None, cfg.image_shape) * val.size
    pixels = len(val_idx) * cfg.input_dim
    val_psnr = psnr_from_mse(sse / pixels)
    info = {
        "options": {k: v for k, v in asdict(opts).items()
                    if k not in EXECUTION_OPTIONS and not (k in RECORDED_WHEN_SET and not v)},
        "train_images": int(len(train_idx)),
        "heldout": {"images": int(len(val_idx)), "psnr_db": round(val_psnr, 3),
                    "latent_bits_per_pixel": round(latent_bytes * 8 / pixels, 5)},
    }
    log(f"held-out ({len(val_idx)} validation images): PSNR {val_psnr:.2f} dB at "
        f"{latent_bytes * 8 / pixels:.4f} bits/pixel (latent stream bytes, before the container)")
    if pixel is not None:
        info["heldout"]["pixel_model_bits_per_sample"] = round(pixel_bits / pixels, 5)
        info["heldout"]["pixel_model_alone_bits_per_sample"] = round(alone_bits / pixels, 5)
        log(f"held-out: pixel model {pixel_bits / pixels:.4f} bits/sample lossless + the latents, "
            f"{alone_bits / pixels:.4f} without latents (ideal, from its integer tables)")
    mf = ModelFile(model, tables, intdec, prior, info, bank=code_bank(train_codes, cfg.levels), pixel=pixel,
                   pixel_alone=alone, context=context)
    if opts.pixel_model and raster_applies(cfg.image_shape):
        mf.raster = fit_raster(some_images, quality_predictions(mf, some_images.reshape(len(some), *cfg.image_shape)),
                               cfg.image_shape, opts.seed, log)
    return mf


def _progress(total: int, enabled: bool):
    from tqdm import tqdm
    return tqdm(total=total, desc="epochs", disable=None if enabled else True, leave=False, dynamic_ncols=True)
