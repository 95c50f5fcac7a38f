"""The training loop: denoising and quantization noise, latent penalties, validation, early stop, progress."""
from __future__ import annotations

import copy
import math
from dataclasses import asdict

import numpy as np
import torch

from . import kernels
from .entropy import encode_codes, frequency_tables
from .errors import InputError
from .intdecoder import build_integer_decoder, integer_decode
from .losses import (LatentDiscriminator, adversarial_penalty, discriminator_loss, l2_penalty, reconstruction_loss,
                     sample_prior, sparsity_penalty)
from .metrics import psnr
from .residual import context_prior
from .restore import code_bank
from .tensors import resolve_device, to_unit
from .model import AutoEncoder
from .modelfile import ModelFile
from .config import AEConfig
from .options import EXECUTION_OPTIONS, TrainOptions, parse_denoise, parse_prior


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


def _quantization_noise(h: torch.Tensor, levels: int, mode: str, gen: torch.Generator) -> torch.Tensor:
    step = 1.0 / (levels - 1)
    if mode == "ste":
        return h + (torch.round(h / step) * step - h).detach()
    return h + (torch.rand(h.shape, generator=gen, device=h.device) - 0.5) * step


def _split(n: int, val_split: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    perm = np.random.default_rng(seed).permutation(n)
    n_val = max(1, int(round(n * val_split)))
    if n - n_val < 1:
        raise InputError(f"too few images to train ({n}); need at least 2")
    return np.sort(perm[n_val:]), np.sort(perm[:n_val])


def _float_psnr(model: AutoEncoder, x: torch.Tensor, backend: str) -> float:
    with torch.no_grad():
        codes = model.codes(x, backend)
        y = torch.round(model.decode(model.dequantize(codes)) * 255)
    return psnr(x * 255, y)


def train_model(images: np.ndarray, config: AEConfig, opts: TrainOptions, *, progress: bool = True,
                log=print) -> ModelFile:
    """Train a codec on uint8 images (n x H x W[ x C]); returns the model, its tables and a summary."""
    if tuple(images.shape[1:]) != config.image_shape:
        raise InputError(f"images are {images.shape[1:]}, the config expects {config.image_shape}")
    device = resolve_device(opts.device)
    backend = kernels.resolve_backend(opts.backend, device)
    log(f"aezip train: {len(images)} images of {'x'.join(map(str, config.image_shape))}, device {device}, "
        f"kernel backend {backend}")
    torch.manual_seed(opts.seed)
    gen = torch.Generator(device=device).manual_seed(opts.seed)
    train_idx, val_idx = _split(len(images), opts.val_split, opts.seed)
    x_train = to_unit(images[train_idx]).to(device)
    x_val = to_unit(images[val_idx]).to(device)
    model = AutoEncoder(config).to(device)
    # foreach: one multi-tensor step, the same bits as the single-tensor loop; fused changes the last bits (opt-in)
    optim = torch.optim.AdamW(model.parameters(), lr=opts.lr, weight_decay=opts.weight_decay,
                              **({"fused": True} if opts.fused_optimizer else {"foreach": True}))
    steps_per_epoch = math.ceil(len(x_train) / opts.batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(optim, max_lr=opts.lr, total_steps=opts.epochs * steps_per_epoch)
    denoise = parse_denoise(opts.denoise)
    prior = parse_prior(opts.prior)
    disc = LatentDiscriminator(config.latent).to(device) if prior else None
    disc_optim = torch.optim.Adam(disc.parameters(), lr=opts.lr / 2, betas=(0.5, 0.999)) if disc else None
    best = (-math.inf, copy.deepcopy(model.state_dict()), 0)
    bar = _progress(opts.epochs, progress)
    for epoch in range(opts.epochs):
        model.train()
        perm = torch.randperm(len(x_train), generator=gen, device=device)
        total = 0.0
        for i in range(0, len(x_train), opts.batch_size):
            x = random_shift(x_train[perm[i:i + opts.batch_size]], config.image_shape, opts.shift, gen)
            h = model.encode(corrupt(x, denoise, config.image_shape, gen), backend)
            logits = model.decode_logits(_quantization_noise(h, config.levels, opts.quant_noise, gen))
            loss = reconstruction_loss(logits, x, opts.loss)
            if opts.rho is not None and opts.beta > 0:
                loss = loss + sparsity_penalty(h, opts.rho, opts.beta, backend)
            if opts.l2 > 0:
                loss = loss + l2_penalty(h, opts.l2)
            if disc is not None:
                disc_optim.zero_grad(set_to_none=True)
                discriminator_loss(disc, h, sample_prior(prior, tuple(h.shape), gen, device)).backward()
                disc_optim.step()
                loss = loss + adversarial_penalty(disc, h, opts.prior_weight)
            optim.zero_grad(set_to_none=True)
            loss.backward()
            optim.step()
            sched.step()
            total += loss.item() * len(x)
        model.eval()
        val_psnr = _float_psnr(model, x_val, backend)
        if val_psnr > best[0]:
            best = (val_psnr, copy.deepcopy(model.state_dict()), epoch)
        bar.update(1)
        bar.set_postfix(loss=f"{total / len(x_train):.3f}", val_psnr=f"{val_psnr:.2f}")
        if epoch - best[2] >= opts.patience:
            log(f"early stop after epoch {epoch + 1}: no better validation PSNR for {opts.patience} epochs")
            break
    bar.close()
    model.load_state_dict(best[1])
    model = model.cpu().eval()
    return _finish(model, images[train_idx], images[val_idx], opts, backend, log)


def _finish(model: AutoEncoder, train_images: np.ndarray, val_images: np.ndarray, opts: TrainOptions,
            backend: str, log) -> ModelFile:
    """Count the entropy tables, build the integer decoder, keep the training codes for restoration, and measure the
    held-out figures the codec will give."""
    cfg = model.config
    with torch.no_grad():
        train_codes = model.codes(to_unit(train_images), "torch").numpy()
        val_codes = model.codes(to_unit(val_images), "torch").numpy()
    tables = frequency_tables(train_codes, cfg.levels)
    intdec = build_integer_decoder(model.decoder_layers(), cfg.levels)
    recon = integer_decode(intdec, val_codes)
    flat_train = train_images.reshape(len(train_images), -1)
    prior = context_prior(flat_train, integer_decode(intdec, train_codes), cfg.image_shape)
    pixels = val_images.size
    latent_bytes = len(encode_codes(val_codes, tables))
    val_psnr = psnr(val_images.reshape(len(val_images), -1), recon)
    info = {
        "options": {k: v for k, v in asdict(opts).items() if k not in EXECUTION_OPTIONS},
        "train_images": int(len(train_images)),
        "heldout": {"images": int(len(val_images)), "psnr_db": round(val_psnr, 3),
                    "latent_bits_per_pixel": round(latent_bytes * 8 / pixels, 5)},
    }
    log(f"held-out ({len(val_images)} validation images): PSNR {val_psnr:.2f} dB at "
        f"{latent_bytes * 8 / pixels:.4f} bits/pixel (latent stream bytes, before the container)")
    return ModelFile(model, tables, intdec, prior, info, bank=code_bank(train_codes, cfg.levels))


def _progress(total: int, enabled: bool):
    from tqdm import tqdm
    return tqdm(total=total, desc="epochs", disable=None if enabled else True, leave=False, dynamic_ncols=True)
