"""What a convolutional codec's files and models are made of, with no imports (the .aez header checks read it): the
header's coder and decoder names, the padding stride and the bound on rate points."""
from __future__ import annotations

CODER = "conv-hyperprior-v1"           # a .aez header's `entropy` for these files (aezip.conv.coding)
PER_CHUNK_CODER = "conv-hyperprior-v1-per-chunk"   # and for files whose chunks each name their setting
#                                        (aezip.mixed: a rate point, and an error bound or none, per chunk)
CODERS = (CODER, PER_CHUNK_CODER)
ARITHMETIC = "fixed-point-conv-v1"     # and its `decoder`: aezip.coding.intconv's fixed point
STRIDE = 16                            # images are padded to a multiple of this (three stride-2 layers, then the
#                                        hyper-latents' one)
MAX_RATES = 16                         # rate points one model holds


def padded(image_shape: tuple[int, ...]) -> tuple[int, int]:
    """(H, W) of images of this shape (H x W[ x C]) padded right and bottom to multiples of STRIDE."""
    return -(-int(image_shape[0]) // STRIDE) * STRIDE, -(-int(image_shape[1]) // STRIDE) * STRIDE
