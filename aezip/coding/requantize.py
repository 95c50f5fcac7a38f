"""Coarser integer decoder weights: the same encoder, codes and tables with a smaller decode-side model.

The integer decoder's weights get a power-of-two scale per layer chosen so the largest is WEIGHT_LIMIT = 2^15 - 1
(16 signed bits); their low bits carry almost nothing (on the default model, 10-bit weights decode held-out MNIST to
the same PSNR to 0.01 dB, see README), and they are what the decode-side model stores. `requantize` rebuilds the
integer decoder from the float one at fewer bits. Given training images, it first fine-tunes the float decoder for
those bits (network/finetune.py: what wins back the PSNR that plain rounding loses at 7-8 bits) and recounts the
max-error coder's prior on the new predictions. The result is a new model (new integers, so a new id and new
decoded bytes) that decodes exactly like any other; its pixel models are kept (trained on the earlier decoder's
predictions: still exact, possibly a little less tight).
"""
from __future__ import annotations

import copy
from typing import Callable

import numpy as np

from aezip.coding.intdecoder import build_integer_decoder
from aezip.errors import InputError
from aezip.files.modelfile import ModelFile
from aezip.options import FINETUNE_EPOCHS, FINETUNE_SPARSITY, check_weight_bits, parse_augment


def requantize(mf: ModelFile, weight_bits: int, images: np.ndarray | None = None, *, epochs: int | None = None,
               sparsity: float | None = None, seed: int = 0, log: Callable[[str], None] = print) -> ModelFile:
    """mf with its integer decoder rebuilt at signed weight_bits-bit weights (16 gives mf's own integers back); with
    training images (uint8, n x the model's image shape) its float decoder is fine-tuned for them first."""
    check_weight_bits("weight_bits", weight_bits)
    info = {**mf.info, "requantized": {"from_model": mf.id, "decoder_weight_bits": weight_bits}}
    if images is None:
        intdec = build_integer_decoder(mf.model.decoder_layers(), mf.config.levels, weight_bits)
        return ModelFile(mf.model, mf.tables, intdec, mf.residual_prior, info, mf.bank, pixel=mf.pixel,
                         pixel_alone=mf.pixel_alone, context=mf.context, raster=mf.raster)
    from aezip.network.finetune import fit_decode_side
    from aezip.network.training import evenly_spaced, image_codes

    cfg = mf.config
    if tuple(images.shape[1:]) != cfg.image_shape:
        raise InputError(f"fine-tuning takes images of the model's training shape {'x'.join(map(str, cfg.image_shape))}"
                         f" (a tile model's: crops of that size), got {'x'.join(map(str, images.shape[1:]))}")
    x = np.asarray(images[evenly_spaced(len(images))])
    model = copy.deepcopy(mf.model)
    epochs = FINETUNE_EPOCHS if epochs is None else epochs
    sparsity = FINETUNE_SPARSITY if sparsity is None else sparsity
    intdec, _, prior = fit_decode_side(model, image_codes(model, x, np.arange(len(x))), x, weight_bits,
                                       augmentations=parse_augment(mf.info.get("options", {}).get("augment")),
                                       epochs=epochs, sparsity=sparsity, seed=seed, log=log)
    info["requantized"].update(finetuned_on=len(x), epochs=epochs, sparsity=sparsity, seed=seed)
    return ModelFile(model, mf.tables, intdec, prior, info, mf.bank, pixel=mf.pixel, pixel_alone=mf.pixel_alone,
                     context=mf.context, raster=mf.raster)
