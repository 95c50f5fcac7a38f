"""The encode and decode pipelines: dataset -> codes -> ANS bytes (+ residual) -> container, and back."""
from __future__ import annotations

import struct
import time
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from . import __version__
from .atomic import atomic_path
from .container import ContainerReader, ContainerWriter
from .data import Dataset, Source, output_names, write_dataset
from .entropy import LATENT_CODER, decode_codes, encode_codes
from .errors import AezipError, FormatError, InputError, ModelMismatchError
from .header import default_chunk_size, image_samples, max_chunk_size, validate_header
from .intdecoder import ARITHMETIC, integer_decode
from .metrics import psnr_from_mse
from .modelfile import ModelFile, load_model
from .pixelstream import METHOD_NAMES, PIXEL_CODER, decode_pixels, encode_pixels
from .residual import RESIDUAL_CODER, decode_residual
from .threads import block_pool, prefetch

_PAYLOAD = struct.Struct(">III")   # images, latent stream length, residual stream length


@dataclass
class CodecReport:
    """What an encode or decode did, with the figures a user asks for."""

    images: int
    pixels: int
    file_bytes: int
    seconds: float
    psnr_db: float | None = None
    max_abs_error: int | None = None

    @property
    def bits_per_pixel(self) -> float:
        return self.file_bytes * 8 / self.pixels


def _pack_payload(n: int, latent: bytes, residual: bytes, pixel_crc: int) -> bytes:
    return _PAYLOAD.pack(n, len(latent), len(residual)) + latent + residual + struct.pack(">I", pixel_crc)


def _unpack_payload(payload: bytes, where: str) -> tuple[int, bytes, bytes, int]:
    if len(payload) < _PAYLOAD.size + 4:
        raise FormatError(f"{where}: chunk payload too short")
    n, lat, res = _PAYLOAD.unpack_from(payload)
    if _PAYLOAD.size + lat + res + 4 != len(payload):
        raise FormatError(f"{where}: chunk payload lengths do not add up")
    body = payload[_PAYLOAD.size:]
    (crc,) = struct.unpack(">I", body[lat + res:])
    return n, body[:lat], body[lat:lat + res], crc


def check_fits(dataset_shape: tuple[int, ...], mf: ModelFile, what: str) -> None:
    """The model must have been made for images of this shape."""
    want = mf.config.image_shape
    if tuple(dataset_shape) != tuple(want):
        raise ModelMismatchError(f"{what}: images are {'x'.join(map(str, dataset_shape))} but the model expects "
                                 f"{'x'.join(map(str, want))}")


def encode_dataset(dataset: Dataset, mf: ModelFile, out: str | Path, *, chunk_size: int | None = None,
                   max_error: int | None = None, backend: str | None = None, device: str = "auto",
                   force: bool = False) -> CodecReport:
    """Write `dataset` to one .aez file; max_error bounds every pixel's error (0: lossless)."""
    from . import kernels                             # torch: only encoding needs it, decoding does not
    from .tensors import resolve_device, to_unit
    check_fits(dataset.image_shape, mf, str(dataset.path))
    if max_error is not None and not 0 <= max_error <= 255:
        raise InputError(f"--max-error must be an integer in 0..255, got {max_error}")
    samples = image_samples(dataset.shape)
    chunk_size = default_chunk_size(samples) if chunk_size is None else chunk_size
    if not 1 <= chunk_size <= max_chunk_size(samples):
        raise InputError(f"--chunk-size must lie in 1..{max_chunk_size(samples)} for images of {samples} samples, "
                         f"got {chunk_size}")
    dev = resolve_device(device)
    backend_used = kernels.resolve_backend(backend, dev)
    model = mf.model.to(dev)
    header = {
        "shape": list(dataset.shape), "dtype": "uint8", "source": dataset.source.to_dict(),
        "model_id": mf.id, "levels": mf.config.levels, "latent": mf.config.latent,
        "max_error": max_error, "backend": backend_used, "aezip_version": __version__,
        "chunk_size": chunk_size, "decoder": ARITHMETIC, "entropy": LATENT_CODER,
        "residual": PIXEL_CODER if max_error is not None else None,
    }
    start = time.perf_counter()
    sse, max_err, pixels = 0.0, 0, 0
    with atomic_path(out, force=force, inputs=(dataset.path, mf.path)) as tmp:
        with open(tmp, "wb") as f:
            writer = ContainerWriter(f, header)
            coded = ((c, model.codes(to_unit(c).to(dev), backend_used).cpu().numpy())
                     for c in dataset.chunks(chunk_size))
            for chunk, codes in prefetch(coded):
                flat = chunk.reshape(len(chunk), -1)
                recon = integer_decode(mf.intdec, codes, block_pool())
                latent, residual = encode_codes(codes, mf.tables), b""
                if max_error is not None:
                    stream = encode_pixels(flat, recon, dataset.image_shape, max_error, mf.residual_prior,
                                           len(latent))
                    residual, recon = stream.data, stream.recon
                    latent = latent if stream.needs_latents else b""
                writer.add_chunk(_pack_payload(len(chunk), latent, residual,
                                               zlib.crc32(recon.tobytes())), len(chunk))
                diff = flat.astype(np.int64) - recon
                sse += float((diff ** 2).sum())
                max_err = max(max_err, int(np.abs(diff).max()))
                pixels += flat.size
            writer.close()
        size = tmp.stat().st_size
    return CodecReport(dataset.shape[0], pixels, size, time.perf_counter() - start, psnr_from_mse(sse / pixels),
                       max_err)


def parse_range(spec: str | None, total: int) -> tuple[int, int]:
    """'A:B' (either end may be empty) into 0 <= A < B <= total."""
    if not spec:
        return 0, total
    a, sep, b = spec.partition(":")
    try:
        lo = int(a) if a else 0
        hi = int(b) if b else total
    except ValueError:
        raise InputError(f"--range {spec!r}: expected A:B with integers") from None
    if not sep or not 0 <= lo < hi <= total:
        raise InputError(f"--range {spec!r}: expected A:B with 0 <= A < B <= {total}")
    return lo, hi


def model_for(reader: ContainerReader, model_path: str | Path | None) -> ModelFile:
    """The model that wrote the file: the one given, or the default; a different one is an error."""
    mf = load_model(model_path)
    want = reader.header["model_id"]
    if mf.id != want:
        hint = "pass the model that wrote it with -m" if model_path is None else "this is not the model that wrote it"
        raise ModelMismatchError(f"{reader.path}: written with model {want[:16]}, but model {mf.id[:16]} was given "
                                 f"({hint})")
    h = reader.header
    if (h["levels"], h["latent"]) != (mf.config.levels, mf.config.latent) or tuple(h["shape"][1:]) != tuple(
            mf.config.image_shape):
        raise FormatError(f"{reader.path}: the header's image shape, levels or latent size contradict its model")
    return mf


def check_header(reader: ContainerReader) -> dict:
    """Validate an opened file's header and chunk index against each other; returns the header."""
    h = reader.header
    try:
        validate_header(h, decoder=ARITHMETIC, entropy=LATENT_CODER, residual=(PIXEL_CODER, RESIDUAL_CODER))
    except FormatError as exc:
        raise FormatError(f"{reader.path}: {exc}") from None
    if reader.total_images != h["shape"][0]:
        raise FormatError(f"{reader.path}: the chunk index holds {reader.total_images} images, the header "
                          f"{h['shape'][0]}")
    if any(c.images > h["chunk_size"] for c in reader.chunks):
        raise FormatError(f"{reader.path}: a chunk holds more than the header's {h['chunk_size']} images")
    return h


def source_of(reader: ContainerReader) -> Source:
    """The header's source entry, checked (stored file names are untrusted: they become paths)."""
    try:
        return Source.from_dict(reader.header["source"], reader.header["shape"][0])
    except InputError as exc:
        raise FormatError(f"{reader.path}: {exc}") from None


def _chunk_pixels(header: dict, latent: bytes, residual: bytes, n: int, mf: ModelFile) -> np.ndarray:
    """One chunk's pixels (n x D uint8) from its latent and pixel streams."""
    image_shape, max_error = tuple(header["shape"][1:]), header["max_error"]
    pred = (integer_decode(mf.intdec, decode_codes(latent, n, mf.tables), block_pool())
            if latent or max_error is None else None)
    if max_error is None:
        return pred
    if header["residual"] == RESIDUAL_CODER:    # files before the tagged pixel stream: the context coder alone
        if pred is None:
            raise ValueError("a pixel stream without latents")
        return decode_residual(residual, pred, image_shape, max_error, mf.residual_prior)
    return decode_pixels(residual, pred, (n, image_samples(header["shape"])), image_shape, max_error,
                         mf.residual_prior)


def pixel_methods(reader: ContainerReader) -> dict[str, int]:
    """How many chunks of a --max-error file use each pixel coder (the first byte of each pixel stream)."""
    counts: dict[str, int] = {}
    if reader.header["residual"] != PIXEL_CODER:
        return counts
    for i in range(len(reader.chunks)):
        _, _, residual, _ = _unpack_payload(reader.read_chunk(i), f"{reader.path} chunk {i}")
        name = METHOD_NAMES.get(residual[0], "unknown") if residual else "empty"
        counts[name] = counts.get(name, 0) + 1
    return counts


def iter_decoded(reader: ContainerReader, mf: ModelFile, lo: int, hi: int) -> Iterator[np.ndarray]:
    """Decoded images lo..hi-1 as uint8 arrays of the header's image shape, chunk by chunk, each one checked."""
    check_header(reader)
    image_shape = tuple(reader.header["shape"][1:])
    for i, c in enumerate(reader.chunks):
        if c.first_image + c.images <= lo or c.first_image >= hi:
            continue
        where = f"{reader.path} chunk {i}"
        n, latent, residual, crc = _unpack_payload(reader.read_chunk(i), where)
        if n != c.images:
            raise FormatError(f"{where}: the chunk holds {n} images, the index says {c.images}")
        try:
            recon = _chunk_pixels(reader.header, latent, residual, n, mf)
        except AezipError:
            raise
        except (ValueError, RuntimeError, OverflowError, AssertionError, TypeError, IndexError) as exc:
            # constriction signals a stream that does not decode with AssertionError or ValueError
            detail = (str(exc).splitlines() or [type(exc).__name__])[0]
            raise FormatError(f"{where}: undecodable stream ({detail})") from None
        if zlib.crc32(recon.tobytes()) != crc:
            raise FormatError(f"{where}: decoded pixels fail their checksum (damaged file or wrong model)")
        a, b = max(lo, c.first_image) - c.first_image, min(hi, c.first_image + n) - c.first_image
        yield recon[a:b].reshape((b - a, *image_shape))


def decode_file(path: str | Path, out: str | Path, *, model_path: str | Path | None = None,
                image_range: str | None = None, force: bool = False) -> CodecReport:
    """Decode a .aez file (all of it, or --range A:B) into its source format at `out`."""
    start = time.perf_counter()
    with ContainerReader(path) as reader:
        check_header(reader)
        lo, hi = parse_range(image_range, reader.header["shape"][0])
        if image_range is None:
            reader.verify()
        source = source_of(reader)
        mf = model_for(reader, model_path)
        if source.names:   # the names the whole file decodes to, so a range gets the same ones
            source.names = output_names(source.names)[lo:hi]
        shape = (hi - lo, *reader.header["shape"][1:])
        write_dataset(iter_decoded(reader, mf, lo, hi), shape, source, out, force=force,
                      inputs=(path, mf.path))
        size = reader.size
    pixels = int(np.prod(shape))
    return CodecReport(hi - lo, pixels, size, time.perf_counter() - start)


def file_info(path: str | Path) -> dict:
    """The header of a .aez file and what it costs, after checking every checksum."""
    with ContainerReader(path) as reader:
        reader.verify()
        h = dict(check_header(reader))
        h["source"] = source_of(reader).to_dict()
        if h["max_error"] is not None:
            h["pixel_coders"] = pixel_methods(reader)
        pixels = int(np.prod(h["shape"]))
        h.update({"path": str(path), "format_version": reader.version, "chunks": len(reader.chunks),
                  "bytes": reader.size, "bits_per_pixel": reader.size * 8 / pixels})
    return h
