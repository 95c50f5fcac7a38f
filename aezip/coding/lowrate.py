"""A model's low-rate sibling: the same encoder, codes and tables, its decoder tuned for coarse --quality levels.

One model's `--quality` ladder decodes every level with the decoder trained for its finest codes, and at the coarse
levels (Q = 2..6 of 24 on MNIST) that decoder is far from its best. `low_rate_model` copies a model and fine-tunes
the copy's float decoder on the fine codes the coarse levels give the training images (the encoder untouched:
network/finetune.tune_for_codes), then for the model's integer weight bits (quantization-aware, finetune_decoder)
and rebuilds its integer decoder and max-error prior. Each level's codes take the form the codec would pick for
them (grid points or their bins' centroids, whichever the model decodes closer on the training images). Both steps
see the training images as they are: a model's training augmentations (flips, inversion, channel orders) are not
applied.

The sibling is an ordinary model file: files written with it at those levels name its id and decode like any other
file (no new format), and the two models together are a ladder of models, the sibling for the coarse levels, the
parent for the rest (README: "A low-rate sibling"). At the parent's finest levels the sibling is worse.
"""
from __future__ import annotations

import copy
from typing import Callable

import numpy as np

from aezip.chunks import chunk_codes, chunk_prediction
from aezip.coding.latentcoder import fine_codes
from aezip.errors import InputError
from aezip.files.modelfile import ModelFile
from aezip.options import LOW_RATE_EPOCHS, LOW_RATE_QUALITIES

QAT_EPOCHS = 1                 # quantization-aware epochs over every level's codes


def weight_bits(mf: ModelFile) -> int:
    """The signed bits the model's integer decoder weights use (8 for the shipped default)."""
    return max(int(np.abs(w).max()) for w in mf.intdec.weights).bit_length() + 1


def low_rate_model(mf: ModelFile, images: np.ndarray, qualities: tuple[int, ...] = LOW_RATE_QUALITIES, *,
                   epochs: int | None = None, seed: int = 0, log: Callable[[str], None] = print) -> ModelFile:
    """mf's low-rate sibling, its decoder tuned on images (uint8, n x the model's image shape) coded at `qualities`
    (each 2..levels-1)."""
    from aezip.network.finetune import fit_decode_side, tune_for_codes
    from aezip.network.training import evenly_spaced

    cfg = mf.config
    levels = cfg.levels
    if not qualities or any(not 2 <= q < levels for q in qualities):
        raise InputError(f"--qualities {','.join(map(str, qualities)) or '(none)'}: each must lie in 2..{levels - 1} "
                         f"(the model has {levels} levels)")
    if tuple(images.shape[1:]) != cfg.image_shape:
        raise InputError(f"tuning takes images of the model's training shape {'x'.join(map(str, cfg.image_shape))}, "
                         f"got {'x'.join(map(str, images.shape[1:]))}")
    x = np.asarray(images[evenly_spaced(len(images))])
    sets, forms = [], {}
    for q in sorted(set(qualities)):   # the codec's codes and its choice of form, the training images as one chunk
        coarse = chunk_codes(mf, x, "torch", "cpu", q)
        _, centroid = chunk_prediction(mf, x, coarse, q)
        sets.append(fine_codes(mf, coarse, q, centroid).reshape(len(x), -1))
        forms[q] = "centroid" if centroid else "grid"
    model = copy.deepcopy(mf.model)
    epochs = LOW_RATE_EPOCHS if epochs is None else epochs
    tune_for_codes(model, sets, x, epochs=epochs, seed=seed, log=log)
    bits = weight_bits(mf)
    # no augmentations: finetune_decoder would re-encode augmented batches at the model's own levels, not these
    intdec, _, prior = fit_decode_side(model, np.concatenate(sets), np.concatenate([x] * len(sets)), bits,
                                       epochs=QAT_EPOCHS, seed=seed, log=log)
    info = {**mf.info, "low_rate": {"from_model": mf.id, "qualities": sorted(forms), "forms": forms,
                                    "tuned_on": len(x), "epochs": epochs, "decoder_weight_bits": bits, "seed": seed}}
    return ModelFile(model, mf.tables, intdec, prior, info, mf.bank, pixel=mf.pixel, pixel_alone=mf.pixel_alone,
                     context=mf.context, raster=mf.raster)
