"""What a .aez file holds, for `aezip info` and the API: its header and sizes, and how many chunks took each latent
coder (a chunk-tables file), each pixel coder (a --max-error file), each reconstruction of its coarse codes (a
--quality file) or each setting (a per-chunk file, aezip.mixed)."""
from __future__ import annotations

from pathlib import Path
from typing import BinaryIO, Callable

import numpy as np

from aezip.codec import check_header, image_channels, source_of
from aezip.chunks import read_setting, setting_name, unpack_payload
from aezip.coding.chunktables import CENTROID_BIT, CHUNK_CODER, CHUNK_CODER_V2, CHUNK_CODER_V3, LATENT_METHODS
from aezip.coding.latentcoder import marks_centroids
from aezip.coding.pixelstream import CODER_METHODS, METHOD_NAMES
from aezip.conv.layout import PER_CHUNK_CODER
from aezip.files.container import ContainerReader

Setting = tuple[int, "int | None"] | None    # a per-chunk file's chunk: (rate point, bound); other files: None


def _count_chunks(reader: ContainerReader, name_of: Callable[[bytes, bytes, Setting], str | None]) -> dict[str, int]:
    """How many chunks get each name that name_of(latent stream, pixel stream, setting) gives (None: not counted)."""
    counts: dict[str, int] = {}
    for i in range(len(reader.chunks)):
        payload, where, setting = reader.read_chunk(i), f"{reader.path} chunk {i}", None
        if reader.header["entropy"] == PER_CHUNK_CODER:
            quality, max_error, payload = read_setting(payload, where)
            setting = quality, max_error
        _, latent, residual, _ = unpack_payload(payload, where)
        name = name_of(latent, residual, setting)
        if name is not None:
            counts[name] = counts.get(name, 0) + 1
    return counts


def pixel_methods(reader: ContainerReader) -> dict[str, int]:
    """How many chunks of a --max-error file (or bounded chunks of a per-chunk file) use each pixel coder (the
    first byte of each pixel stream)."""
    if reader.header["residual"] not in CODER_METHODS:
        return {}
    return _count_chunks(reader, lambda _, res, setting: None if setting and setting[1] is None else
                         METHOD_NAMES.get(res[0], "unknown") if res else "empty")


def chunk_settings(reader: ContainerReader) -> dict[str, int]:
    """How many chunks of a per-chunk file take each setting."""
    if reader.header["entropy"] != PER_CHUNK_CODER:
        return {}

    return _count_chunks(reader, lambda latent, _, setting: setting_name(*setting, bool(latent)))


def latent_methods(reader: ContainerReader) -> dict[str, int]:
    """How many chunks of a chunk-tables file code their latents with each method (chunktables.py)."""
    if reader.header["entropy"] not in (CHUNK_CODER, CHUNK_CODER_V2, CHUNK_CODER_V3):
        return {}
    return _count_chunks(reader, lambda lat, _, __: LATENT_METHODS.get(lat[0] & ~CENTROID_BIT, "unknown") if lat
                         else "no latents")


def reconstructions(reader: ContainerReader) -> dict[str, int]:
    """How many chunks of a --quality file decode their coarse codes as grid points, as centroids, or store no
    latents (quality.py; the latent method byte's CENTROID_BIT)."""
    if "quality" not in reader.header or not marks_centroids(reader.header["entropy"]):
        return {}
    return _count_chunks(reader, lambda lat, _, __: ("centroids" if lat[0] & CENTROID_BIT else "grid points") if lat
                         else "no latents")


def file_info(path: str | Path | bytes | BinaryIO) -> dict:
    """The header of a .aez file and what it costs, after checking every checksum."""
    with ContainerReader(path) as reader:
        reader.verify()
        h = dict(check_header(reader))
        h["source"] = source_of(reader).to_dict()
        h["latent_coders"] = latent_methods(reader)
        if h["residual"] is not None:
            h["pixel_coders"] = pixel_methods(reader)
        if h["entropy"] == PER_CHUNK_CODER:
            h["chunk_settings"] = chunk_settings(reader)
        if "quality" in h and marks_centroids(h["entropy"]):
            h["reconstruction"] = reconstructions(reader)
        pixels = int(np.prod(h["shape"][:3]))                 # positions: N x H x W
        h.update({"path": str(reader.path), "format_version": reader.version, "chunks": len(reader.chunks),
                  "bytes": reader.size, "embedded_model_bytes": reader.model_bytes,
                  "decoder_patch_bytes": reader.patch_bytes,
                  "bits_per_pixel": reader.size * 8 / pixels,
                  "bits_per_sample": reader.size * 8 / pixels / image_channels(h["shape"])})
    return h
