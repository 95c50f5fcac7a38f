"""What each `--effort` level does: the pixel coders it tries and whether it searches the latent codes
(effort_settings); under `max`, for a --max-error file, the latent quality whose sample codes smallest
(pixel_quality); and the predictions at those qualities that the raster network learns from (quality_predictions)."""
from __future__ import annotations

import numpy as np

from aezip.chunks import chunk_codes, chunk_prediction, encode_chunk
from aezip.coding.pixelstream import ALL_METHODS, FAST_METHODS
from aezip.coding.quality import check_quality
from aezip.errors import ParameterError
from aezip.files.modelfile import ModelFile
from aezip.options import EFFORTS


def effort_settings(effort: str) -> dict:
    """encode_dataset's pixel_methods and search for an `--effort` level: "fast" tries FAST_METHODS (no pixel model,
    no context mixing), "best" every pixel coder the model has but the mixing coder with latents, "max" every one
    and the latent search (search.py)."""
    if effort not in EFFORTS:
        raise ParameterError("effort", f"{effort!r} is not one of {', '.join(EFFORTS)}")
    methods = {"fast": FAST_METHODS, "best": None, "max": ALL_METHODS}[effort]
    return {"pixel_methods": methods, "search": effort == "max"}


def pixel_qualities(levels: int) -> list[int | None]:
    """The latent qualities --effort max weighs for a --max-error file, finest first: the model's own levels (None),
    then 3/4, 1/2 and 1/4 of them (at least 2), without repeats."""
    return list(dict.fromkeys(check_quality(max(2, levels * k // 4), levels) for k in (4, 3, 2, 1)))


def quality_predictions(mf: ModelFile, images: np.ndarray, block: int = 500) -> np.ndarray:
    """The decoder's predictions (n x D) of images (n x the model's image shape) at each of pixel_qualities in turn,
    a block of images at a time, from their plain codes (grid points or centroids, as a chunk picks): what the
    raster network learns from, since --effort max may code at any of them."""
    qualities = pixel_qualities(mf.config.levels)
    parts = []
    for k, a in enumerate(range(0, len(images), block)):
        q = qualities[k % len(qualities)]
        chunk = np.asarray(images[a:a + block])
        parts.append(chunk_prediction(mf, chunk, chunk_codes(mf, chunk, "torch", "cpu", q), q)[0])
    return np.concatenate(parts) if parts else np.zeros((0, int(np.prod(images.shape[1:]))), np.int64)


def pixel_quality(mf: ModelFile, chunk: np.ndarray, max_error: int, backend: str, device,
                  pixel_methods: tuple[int, ...] | None) -> int | None:
    """The latent quality for a --max-error file under --effort max: of the model's own levels and 3/4, 1/2 and 1/4
    of them (at least 2), the one whose coded sample of `chunk` (the pixel chooser's) is smallest, latents and
    pixels together: coarser latents cost fewer bytes and can leave the pixel coders little more to code. None is
    the model's own; ties go to the finer."""
    from aezip.coding.pixelstream import sample_step
    sample = chunk[::sample_step(len(chunk))]
    sizes = {}
    for q in pixel_qualities(mf.config.levels):
        codes = chunk_codes(mf, sample, backend, device, q)
        sizes[q] = len(encode_chunk(mf, sample, codes, max_error, q, pixel_methods)[0])
    return min(sizes, key=sizes.__getitem__)   # the candidates run finest first: min keeps the first of equals
