"""Coarser integer decoder weights: the same encoder, codes and tables with a smaller decode-side model.

The integer decoder's weights get a power-of-two scale per layer chosen so the largest is WEIGHT_LIMIT = 2^15 - 1
(16 signed bits); their low bits carry almost nothing (on the default model, 10-bit weights decode held-out MNIST to
the same PSNR to 0.01 dB, see README), and they are what the decode-side model stores. `requantize` rebuilds the
integer decoder from the float one at fewer bits. The result is a new model (new integers, so a new id and new
decoded bytes) that decodes exactly like any other; its max-error prior and pixel model are kept (trained on the
finer decoder's predictions: still exact, possibly a little less tight).
"""
from __future__ import annotations

from aezip.errors import ParameterError
from aezip.coding.intdecoder import build_integer_decoder
from aezip.files.modelfile import ModelFile

MIN_WEIGHT_BITS, MAX_WEIGHT_BITS = 2, 16


def requantize(mf: ModelFile, weight_bits: int) -> ModelFile:
    """mf with its integer decoder rebuilt at signed weight_bits-bit weights (16 gives mf's own integers back)."""
    if not MIN_WEIGHT_BITS <= weight_bits <= MAX_WEIGHT_BITS:
        raise ParameterError("weight_bits", f"must lie in {MIN_WEIGHT_BITS}..{MAX_WEIGHT_BITS}, got {weight_bits}")
    intdec = build_integer_decoder(mf.model.decoder_layers(), mf.config.levels, weight_bits)
    info = {**mf.info, "requantized": {"from_model": mf.id, "decoder_weight_bits": weight_bits}}
    return ModelFile(mf.model, mf.tables, intdec, mf.residual_prior, info, mf.bank, pixel=mf.pixel)
