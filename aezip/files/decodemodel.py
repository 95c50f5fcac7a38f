"""The decode-side model: exactly what decoding reads, stored compactly, so a .aez file can carry it
(`aezip encode --embed-model`) and a decoder can be shipped without the model file (`aezip model export-decoder`).

A model file (.aezm) also holds the float encoder and decoder, which decoding never uses. The decode-side model holds
the integer tensors the decoder reads — the integer decoder's weights, biases, shifts and thresholds, the latents'
entropy tables and, for --max-error files, the max-error coder's prior and the learned pixel model — with the
architecture and the id of the model file they came from (so a file names one model whichever form decodes it).

Format (`aezip-decoder`, version 1; integers big-endian):
    magic (8) | version u16 | payload length u32 | CRC32 of the payload u32 | the payload, xz-compressed (-9e)
    payload: manifest length u32 | manifest JSON | tensor data
    manifest: {"format", "format_version", "model_id", "config", "tensors": [[name, dtype, stored, shape], ...]}

Storage is generic: the manifest names each tensor, its dtype in the model file and the narrow type it is stored in,
so any architecture's integers fit; what a model must hold is modelcheck's rule, applied to the loaded tensors (shapes,
dtypes, exactness bounds) as to a model file. Each tensor is stored in the narrowest integer type that holds its
values and casts safely back to its dtype, as little-endian byte planes (every value's lowest byte, then the next
...). The integer decoder's and the pixel model's weights are int32 in a model file but bounded by WEIGHT_LIMIT =
2^15 - 1 (the quantizer's choice, refused otherwise by modelcheck), so they are always stored as int16 or narrower.
Measured on the default model's whole decode side (2.66 MB of narrowed integers; 2026-11-29): byte planes with
xz -9e 954,196 bytes, zstd -22 991,940, zstd -19 993,559, zlib -9 1,010,675; the same integers without planes with
xz -9e 1,004,280. With planes xz stores the three weight matrices in 841 kB, 1 % above their order-0 entropy.

Loading never runs code (JSON and raw integers only) and checks before it allocates: the payload's stated length is
bounded and must be what xz gives back (and its CRC32 must match), every manifest entry must be a known integer type
whose values fit its dtype, and the data must be exactly the tensors the manifest lists.
"""
from __future__ import annotations

import json
import lzma
import math
import re
import struct
import zlib
from pathlib import Path
from typing import Collection

import numpy as np

from aezip.network.config import AEConfig
from aezip.errors import FormatError
from aezip.coding.intdecoder import IntegerDecoder
from aezip.files.modelcheck import check_config, check_tensors
from aezip.files.modelfile import ModelFile, model_tensors
from aezip.coding.pixelmodel import ALONE, WITH_LATENTS, PixelMLP
from aezip.coding.context import ContextModel
from aezip.coding.rasternet import PREFIX as RASTER, RasterNet

MAGIC = b"\x89AEZD\r\n\x1a"
FORMAT = "aezip-decoder"
FORMAT_VERSION = 1
MAX_PAYLOAD = 256 << 20      # a decode-side model larger than this is not one aezip writes
MAX_TENSORS = 4096
_PREFIX = struct.Struct(">8sHII")
_U32 = struct.Struct(">I")
XZ_PRESET = 9 | lzma.PRESET_EXTREME   # -9e: 0.35 % smaller than -6 on the default model
# narrowest first; at equal width signed first (a dtype's values cast back safely only from a narrower or equal kind)
STORED_TYPES = ("int8", "uint8", "int16", "uint16", "int32", "uint32", "int64")
_MODEL_ID = re.compile(r"[0-9a-f]{64}")
ENCODE_SIDE = ("float.", "restore.")        # the float network and the restoration bank: decoding reads neither
MAX_ERROR_PARTS = ("residual.", WITH_LATENTS, ALONE, RASTER)   # the max-error coder's prior, pixel models and
#                                                                raster network: only --max-error files


def decode_tensors(mf: ModelFile, *, max_error_parts: bool = True,
                   rates: Collection[int] | None = None) -> dict[str, np.ndarray]:
    """The tensors decoding reads: the model file's, named as there, but the float network and the bank; without
    the max-error coder's prior and pixel model when max_error_parts is False (enough for lossy files); of a
    convolutional model only the rate points `rates` (0-based; what a file of those --quality settings needs) where
    they are given."""
    drop = ENCODE_SIDE + (() if max_error_parts else MAX_ERROR_PARTS)
    if rates is not None:
        drop += tuple(f"conv.rate{g}." for g in range(mf.config.rates) if g not in rates)
    return {k: v for k, v in model_tensors(mf).items() if not k.startswith(drop)}


def narrow(a: np.ndarray) -> np.ndarray:
    """The values of integer array `a` in the narrowest STORED_TYPES type that holds them and casts back to a.dtype."""
    lo, hi = (int(a.min()), int(a.max())) if a.size else (0, 0)
    for name in STORED_TYPES:
        t = np.dtype(name)
        if np.can_cast(t, a.dtype, "safe") and np.iinfo(t).min <= lo and hi <= np.iinfo(t).max:
            return a.astype(t)
    raise ValueError(f"{a.dtype} holds no integers aezip stores")


def _planes(a: np.ndarray) -> bytes:
    """Little-endian byte planes: every value's lowest byte, then every value's next byte, ..."""
    raw = np.ascontiguousarray(a, a.dtype.newbyteorder("<")).view(np.uint8).reshape(-1, a.dtype.itemsize)
    return np.ascontiguousarray(raw.T).tobytes()


def _from_planes(data: bytes, stored: np.dtype, shape: tuple[int, ...]) -> np.ndarray:
    width = stored.itemsize
    raw = np.frombuffer(data, np.uint8).reshape(width, -1)
    return np.ascontiguousarray(raw.T).view(stored.newbyteorder("<")).reshape(shape).astype(stored)


def pack(manifest: dict, data: bytes, preset: int = XZ_PRESET) -> bytes:
    """A decode-side model's bytes from its manifest and tensor data (the inverse of unpack); a lower xz preset is
    faster and a little larger (tests craft blobs with 0), and reads the same."""
    body = json.dumps(manifest, sort_keys=True, separators=(",", ":")).encode()
    payload = _U32.pack(len(body)) + body + data
    return _PREFIX.pack(MAGIC, FORMAT_VERSION, len(payload), zlib.crc32(payload)) + lzma.compress(
        payload, preset=preset)


def decoder_bytes(mf: ModelFile, *, max_error_parts: bool = True, rates: Collection[int] | None = None) -> bytes:
    """The decode-side model of `mf` (see decode_tensors), same bytes for the same model."""
    if not mf.id:
        raise ValueError("a decode-side model names its model file: save the model first")
    entries, data = [], []
    for name, t in sorted(decode_tensors(mf, max_error_parts=max_error_parts, rates=rates).items()):
        small = narrow(np.asarray(t))
        entries.append([name, t.dtype.name, small.dtype.name, list(t.shape)])
        data.append(_planes(small))
    manifest = {"format": FORMAT, "format_version": FORMAT_VERSION, "model_id": mf.id,
                "config": mf.config.to_dict(), "tensors": entries}
    return pack(manifest, b"".join(data))


def is_decoder(data: bytes) -> bool:
    return data[:len(MAGIC)] == MAGIC


def unpack(blob: bytes) -> tuple[dict, bytes]:
    """(manifest, tensor data) of a decode-side model's bytes, checked for size and damage; FormatError if not."""
    if len(blob) < _PREFIX.size or not is_decoder(blob):
        raise FormatError("not an aezip decode-side model (bad magic)")
    _, version, length, crc = _PREFIX.unpack_from(blob)
    if version != FORMAT_VERSION:
        raise FormatError(f"decode-side model version {version} is not supported (this aezip reads "
                          f"{FORMAT_VERSION})")
    if not 4 <= length <= MAX_PAYLOAD:
        raise FormatError(f"stated size {length} is out of range")
    dec = lzma.LZMADecompressor(lzma.FORMAT_XZ)
    try:
        payload = dec.decompress(blob[_PREFIX.size:], max_length=length + 1)
    except lzma.LZMAError as exc:
        raise FormatError(f"damaged compressed data ({exc})") from None
    if len(payload) != length or not dec.eof or dec.unused_data:
        raise FormatError("damaged compressed data (not the stated size)")
    if zlib.crc32(payload) != crc:
        raise FormatError("damaged data (CRC mismatch)")
    (n,) = _U32.unpack_from(payload)
    if n > length - 4:
        raise FormatError("damaged manifest (longer than the data)")
    try:
        manifest = json.loads(payload[4:4 + n])
    except (ValueError, RecursionError):
        raise FormatError("damaged manifest (not valid JSON)") from None
    if not isinstance(manifest, dict):
        raise FormatError("damaged manifest (not a JSON object)")
    return manifest, payload[4 + n:]


def _need(ok: bool, what: str) -> None:
    if not ok:
        raise FormatError(what)


def _tensors(entries: object, data: bytes) -> dict[str, np.ndarray]:
    """The manifest's tensors read from data, each widened back to its dtype."""
    _need(isinstance(entries, list) and len(entries) <= MAX_TENSORS, "manifest tensors is not a list of entries")
    tensors: dict[str, np.ndarray] = {}
    pos = 0
    for e in entries:
        _need(isinstance(e, list) and len(e) == 4 and isinstance(e[0], str) and len(e[0]) <= 64,
              f"manifest entry {str(e)[:60]} is not [name, dtype, stored, shape]")
        name, dtype, stored, shape = e
        _need(name not in tensors, f"tensor {name} is listed twice")
        _need(dtype in STORED_TYPES and stored in STORED_TYPES and np.can_cast(stored, dtype, "safe"),
              f"tensor {name}: {dtype!r} stored as {stored!r} is not an integer type aezip stores")
        _need(isinstance(shape, list) and len(shape) <= 4 and all(type(s) is int and 0 <= s <= MAX_PAYLOAD
                                                                  for s in shape), f"tensor {name}: bad shape")
        size = math.prod(shape) * np.dtype(stored).itemsize
        _need(size <= len(data) - pos, f"tensor {name} runs past the data")
        small = _from_planes(data[pos:pos + size], np.dtype(stored), tuple(shape))
        tensors[name] = small.astype(dtype)
        pos += size
    _need(pos == len(data), f"{len(data) - pos} bytes of data follow the last tensor")
    return tensors


def load_decoder_bytes(blob: bytes, where: str, path: Path | None = None) -> ModelFile:
    """A decode-only ModelFile from a decode-side model's bytes, every part checked; FormatError names `where`."""
    try:
        manifest, data = unpack(blob)
        _need(manifest.get("format") == FORMAT and manifest.get("format_version") == FORMAT_VERSION,
              "manifest is not an aezip-decoder manifest of version 1")
        model_id = manifest.get("model_id")
        _need(isinstance(model_id, str) and bool(_MODEL_ID.fullmatch(model_id)), "model_id is not a sha256 digest")
        config = manifest.get("config")
        tensors = _tensors(manifest.get("tensors"), data)
        if isinstance(config, dict) and config.get("kind") == "conv":
            from aezip.conv.model import ConvModel
            return ConvModel.from_tensors(config, tensors, {"decode_only": True}, model_id, path, decode_only=True)
        config = check_config(config)
        check_tensors(config, tensors, decode_only=True)
    except FormatError as exc:
        raise FormatError(f"{where}: damaged decode-side model ({exc})") from None
    prior = tensors.get("residual.prior")
    return ModelFile(None, tensors["entropy.tables"],
                     IntegerDecoder.from_tensors({k: v for k, v in tensors.items() if k.startswith("intdec.")}),
                     None if prior is None else prior.astype(np.int64), {"decode_only": True}, None, model_id, path,
                     config=AEConfig.from_dict(config), weights={}, pixel=PixelMLP.from_tensors(tensors, WITH_LATENTS),
                     pixel_alone=PixelMLP.from_tensors(tensors, ALONE), context=ContextModel.from_tensors(tensors),
                     raster=RasterNet.from_tensors(tensors))


def load_decoder(path: Path, data: bytes) -> ModelFile:
    """A decode-side model file (.aezd) already read from `path`."""
    return load_decoder_bytes(data, str(path), path)


def save_decoder(mf: ModelFile, path: str | Path, *, force: bool = False) -> int:
    """Write mf's decode-side model (all of it) to a file atomically; returns its size in bytes."""
    from aezip.files.atomic import atomic_path
    data = decoder_bytes(mf)
    with atomic_path(path, force=force, inputs=(mf.path,)) as tmp:
        tmp.write_bytes(data)
    return len(data)
