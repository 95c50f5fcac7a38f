"""Which coder a chunk's latents take and how: new files use the chunk-tables coder (chunktables.py: per chunk,
the shortest of the static tables, the context model, the chunk's own tables and, for tile models (v3), tables
conditioned on neighbouring tiles; v2 and v3 also say whether a --quality level's coarse codes stand for grid points
or centroids, quality.py); files written before it name the
static per-dimension tables (entropy.py), their coarse versions for a --quality level (quality.py), or the model's
context model (context.py), and decode as they did."""
from __future__ import annotations

import numpy as np

from aezip.coding.chunktables import (CHUNK_CODER, CHUNK_CODER_V2, CHUNK_CODER_V3, decode_chunk_latents,
                                      encode_chunk_latents, mark_centroid, split_centroid)
from aezip.coding.context import CONTEXT_CODER, decode_context, encode_context
from aezip.coding.entropy import LATENT_CODER, decode_codes, encode_codes
from aezip.errors import FormatError
from aezip.files.modelfile import ModelFile
from aezip.network.tiles import tile_grid
from aezip.coding.quality import LADDER_CODER, centroid_values, ladder_tables, to_fine


def fine_codes(mf: ModelFile, codes: np.ndarray, quality: int | None, centroid: bool = False) -> np.ndarray:
    """The fine codes the integer decoder consumes for codes of `quality` (None: they already are): the coarse
    points' grid values, or their bins' centroids under the model's tables."""
    if quality is None:
        return codes
    return to_fine(codes, mf.config.levels, quality, centroid_values(mf.tables, quality) if centroid else None)


def latent_coder(mf: ModelFile, quality: int | None) -> str:
    """The latent coder new files name: the chunk-tables coder; v3 (neighbour tables, the centroid choice) for tile
    models, else v2 (the centroid choice) at a quality level."""
    return CHUNK_CODER_V3 if mf.config.patch else CHUNK_CODER if quality is None else CHUNK_CODER_V2


def marks_centroids(coder: str) -> bool:
    """Whether a coder's method byte says if a quality level's codes stand for their bins' centroids."""
    return coder in (CHUNK_CODER_V2, CHUNK_CODER_V3)



def legacy_coder(mf: ModelFile, quality: int | None) -> str:
    """The latent coder files of this model and quality named before the chunk-tables coder (tests write such
    files to pin their decoding)."""
    return CONTEXT_CODER if mf.context is not None else LATENT_CODER if quality is None else LADDER_CODER


def _static_tables(mf: ModelFile, quality: int | None) -> np.ndarray:
    return mf.tables if quality is None else ladder_tables(mf.tables, quality)


def encode_latents(mf: ModelFile, codes: np.ndarray, quality: int | None, image_shape: tuple[int, ...],
                   coder: str | None = None, centroid: bool = False) -> bytes:
    """A chunk's latent stream: its codes (of `quality`; one row per image, or a tile model's tiles one after the
    other in each row) of images of `image_shape` by `coder` (default: latent_coder's), which for v2 and v3 also
    says whether they stand for their bins' centroids; a tile is coded as a row."""
    coder = latent_coder(mf, quality) if coder is None else coder
    codes = np.asarray(codes).reshape(-1, mf.config.latent)
    if coder in (CHUNK_CODER, CHUNK_CODER_V2, CHUNK_CODER_V3):
        data = encode_chunk_latents(codes, _static_tables(mf, quality), mf.context, mf.config.levels, quality,
                                    tile_grid(image_shape, mf.config.patch) if coder == CHUNK_CODER_V3 else None)
        return mark_centroid(data, centroid) if marks_centroids(coder) else data
    if coder == CONTEXT_CODER:
        return encode_context(codes, _static_tables(mf, quality), mf.context, mf.config.levels, quality)
    return encode_codes(codes, _static_tables(mf, quality))


def decode_latents(mf: ModelFile, header: dict, latent: bytes, n: int) -> np.ndarray:
    """A chunk's fine codes (n x latent, or n x tiles * latent) from its latent stream, by the coder and quality its
    header names."""
    quality, centroid = header.get("quality"), False
    images, n = n, n * mf.config.rows(tuple(header["shape"][1:]))
    coder = header["entropy"]
    if marks_centroids(coder):
        latent, centroid = split_centroid(latent)
    if coder in (CHUNK_CODER, CHUNK_CODER_V2, CHUNK_CODER_V3):
        codes = decode_chunk_latents(latent, n, _static_tables(mf, quality), mf.context, mf.config.levels, quality,
                                     tile_grid(tuple(header["shape"][1:]), mf.config.patch) if coder == CHUNK_CODER_V3 else None)
    elif coder == CONTEXT_CODER:
        if mf.context is None:
            raise FormatError("the file's latents use the context coder, but its model has no context tables")
        codes = decode_context(latent, n, _static_tables(mf, quality), mf.context, mf.config.levels, quality)
    else:
        codes = decode_codes(latent, n, _static_tables(mf, quality))
    return fine_codes(mf, codes, quality, centroid).reshape(images, -1)
