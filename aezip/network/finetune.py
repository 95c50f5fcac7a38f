"""Decoder fine-tuning for coarse integer weights: quantization-aware training of the float decoder on fixed codes.

The integer decoder (coding/intdecoder.py) stores each layer's weights as signed B-bit integers under one
power-of-two scale per layer. At B = 16 their low bits carry nothing; at B = 8 plain rounding costs PSNR (the
first shipped MNIST model: 20.81 -> 20.72 dB on held-out digits, 20.48 at B = 7) and the stored integers still cost ~4.6
bits each after xz. `finetune_decoder` trains the float decoder with its weights rounded in the forward pass exactly
as `build_integer_decoder` will round them (same scale, `intdecoder.weight_shift`, straight-through gradients; in
float32, 30x faster here than float64, so a weight within float32's precision of a rounding tie may round the other
way in the float64 build than it did in training: a negligible difference, and decoding stays exact), on
the codes the encoder gives the training images, with the MSE of the sigmoid output (what PSNR measures) plus
`sparsity` x the mean |w| of each layer (an L1 penalty: more zero and small integers, which xz stores in fewer
bits). The encoder, the codes and the entropy tables are untouched, so the latent rate does not change; only the
decoded pixels do. Seeded: the same model, data and options give the same weights on a CPU with one thread.
"""
from __future__ import annotations

from typing import Callable

import numpy as np
import torch
from torch import nn
from torch.nn.utils import parametrize

from aezip.coding.intdecoder import IntegerDecoder, build_integer_decoder, layer_input, weight_shift
from aezip.coding.residual import context_prior
from aezip.network.augment import augment
from aezip.network.model import AutoEncoder
from aezip.network.tiles import predict
from aezip.options import FINETUNE_EPOCHS, FINETUNE_SPARSITY, LOW_RATE_EPOCHS
from aezip.tensors import to_unit

FINETUNE_LR = 1e-4
FINETUNE_BATCH = 64
LOW_RATE_LR = 1e-3       # tune_for_codes: the one-cycle learning rate's peak


class _Rounded(nn.Module):
    """A parametrization: the weight as the integer decoder will hold it at `bits`, with the identity's gradient."""

    def __init__(self, bias: torch.Tensor, divisor: float, in_limit: float, in_frac: int, bits: int) -> None:
        super().__init__()
        self.bias = (bias,)                  # a tuple: the layer's own parameter, not registered a second time here
        self.divisor, self.in_limit, self.in_frac = divisor, in_limit, in_frac
        self.limit = 2 ** (bits - 1) - 1

    def forward(self, w: torch.Tensor) -> torch.Tensor:
        scaled = w / self.divisor            # the first layer takes codes: 1 / (levels - 1) is folded into it
        s = weight_shift(scaled.detach().numpy(), self.bias[0].detach().numpy(), self.in_limit, self.in_frac,
                         self.limit)
        rounded = torch.round(scaled * 2.0 ** s) * (2.0 ** -s * self.divisor)
        return w + (rounded - w).detach()


def finetune_decoder(model: AutoEncoder, codes: np.ndarray, images: np.ndarray, weight_bits: int, *,
                     epochs: int = FINETUNE_EPOCHS, sparsity: float = FINETUNE_SPARSITY, seed: int = 0,
                     augmentations: tuple[str, ...] = (), log: Callable[[str], None] = print) -> None:
    """Fine-tune model's float decoder in place for weight_bits-bit integer weights, on images (uint8, n x H x W[ x C])
    and their integer codes (n x latents). With the model's training augmentations (augment.py: flips, inversion,
    channel orders) each batch is augmented and encoded afresh, so the decoder keeps the invariances it was trained
    for (without them, fine-tuning cost 0.7 dB on natural32-rgb's held-out photographs, whose colours the training
    photographs lack)."""
    cfg = model.config
    z = model.dequantize(torch.from_numpy(np.asarray(codes)))
    target = to_unit(images)
    layers = list(model.decoder)
    for i, layer in enumerate(layers):
        limit, frac = layer_input(i, float(cfg.levels - 1))
        parametrize.register_parametrization(
            layer, "weight", _Rounded(layer.bias, float(cfg.levels - 1) if i == 0 else 1.0, limit, frac, weight_bits))
    try:
        params = [p for layer in layers for p in layer.parameters()]
        optim = torch.optim.Adam(params, lr=FINETUNE_LR)
        gen = torch.Generator().manual_seed(seed)
        model.train()
        for _ in range(epochs):
            total = 0.0
            perm = torch.randperm(len(z), generator=gen)
            for i in range(0, len(perm), FINETUNE_BATCH):
                idx = perm[i:i + FINETUNE_BATCH]
                x, zb = target[idx], z[idx]
                if augmentations:
                    x = augment(x, cfg.image_shape, augmentations, gen)
                    with torch.no_grad():
                        zb = model.dequantize(model.codes(x, "torch"))
                with parametrize.cached():   # each layer's rounded weights made once a step, not once a use
                    out = torch.sigmoid(model.decode_logits(zb, cfg.image_shape))
                    loss = torch.mean((out - x) ** 2)
                    penalty = sparsity * sum(layer.weight.abs().mean() for layer in layers) if sparsity else 0.0
                optim.zero_grad(set_to_none=True)
                (loss + penalty).backward()
                optim.step()
                total += loss.item() * len(idx)
        log(f"decoder fine-tuned for {weight_bits}-bit integer weights: {epochs} epochs on {len(z)} images, "
            f"L1 {sparsity:g}, last epoch's MSE {total / max(len(z), 1):.6f}")
    finally:
        for layer in layers:
            parametrize.remove_parametrizations(layer, "weight", leave_parametrized=False)
        model.eval()


def tune_for_codes(model: AutoEncoder, code_sets: list[np.ndarray], images: np.ndarray, *,
                   epochs: int = LOW_RATE_EPOCHS, lr: float = LOW_RATE_LR, seed: int = 0,
                   log: Callable[[str], None] = print) -> None:
    """Fine-tune model's float decoder in place (the encoder untouched) to decode images (uint8, n x H x W[ x C])
    from each of code_sets (integer fine codes, n x latents each: what coarser quantizers give the same images), the
    sets mixed in every epoch: one decoder for codes the model was not trained on, such as coarse --quality levels'.
    Adam with a one-cycle learning rate peaking at lr, on the MSE of the sigmoid output (what PSNR measures);
    seeded, like finetune_decoder."""
    cfg = model.config
    z = torch.cat([model.dequantize(torch.from_numpy(np.asarray(c))) for c in code_sets])
    target = to_unit(images).repeat(len(code_sets), 1)
    params = [p for layer in model.decoder for p in layer.parameters()]
    optim = torch.optim.Adam(params, lr=lr)
    steps = epochs * -(-len(z) // FINETUNE_BATCH)
    sched = torch.optim.lr_scheduler.OneCycleLR(optim, max_lr=lr, total_steps=max(steps, 1), pct_start=0.1)
    gen = torch.Generator().manual_seed(seed)
    model.train()
    total = 0.0
    for _ in range(epochs):
        total = 0.0
        perm = torch.randperm(len(z), generator=gen)
        for i in range(0, len(perm), FINETUNE_BATCH):
            idx = perm[i:i + FINETUNE_BATCH]
            loss = torch.mean((torch.sigmoid(model.decode_logits(z[idx], cfg.image_shape)) - target[idx]) ** 2)
            optim.zero_grad(set_to_none=True)
            loss.backward()
            optim.step()
            sched.step()
            total += loss.item() * len(idx)
    model.eval()
    log(f"decoder tuned for {len(code_sets)} sets of codes: {epochs} epochs on {len(images)} images each, last "
        f"epoch's MSE {total / max(len(z), 1):.6f}")


def fit_decode_side(model: AutoEncoder, codes: np.ndarray, images: np.ndarray, weight_bits: int, *,
                    finetune: bool = True, augmentations: tuple[str, ...] = (), epochs: int = FINETUNE_EPOCHS,
                    sparsity: float = FINETUNE_SPARSITY, seed: int = 0, log: Callable[[str], None] = print
                    ) -> tuple[IntegerDecoder, np.ndarray, np.ndarray]:
    """The integer decoder at weight_bits (the float decoder fine-tuned for them first where `finetune`), its
    predictions of the training images (uint8, n x H x W[ x C], with their codes) and the max-error coder's prior
    counted on those predictions: what training and `requantize` build for decoding."""
    cfg = model.config
    if finetune:
        finetune_decoder(model, codes, images, weight_bits, epochs=epochs, sparsity=sparsity, seed=seed,
                         augmentations=augmentations, log=log)
    intdec = build_integer_decoder(model.decoder_layers(), cfg.levels, weight_bits)
    pred = predict(cfg, intdec, codes, cfg.image_shape)
    return intdec, pred, context_prior(images.reshape(len(images), -1), pred, cfg.image_shape)
