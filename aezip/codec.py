"""The encode and decode pipelines: a dataset's chunks (aezip.chunks: images <-> payloads) into a container, and
back.

`encode_to` writes any binary stream and `decode_chunk` reads one chunk of a ContainerReader over a file or bytes;
thin file functions sit over them (`encode_dataset`, `decode_file`, `test_file`)."""
from __future__ import annotations

import dataclasses
import itertools
import time
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Callable, Iterable, Iterator

import numpy as np

from aezip import __version__
from aezip.chunks import decode_payload
from aezip.files.atomic import atomic_path
from aezip.files.container import ContainerReader, ContainerWriter
from aezip.files.data import Dataset, write_dataset
from aezip.files.source import Source, output_names
from aezip.coding.entropy import LATENT_CODER
from aezip.errors import FormatError, InputError, ModelMismatchError, ParameterError
from aezip.files.header import default_chunk_size, image_samples, max_chunk_size, validate_header
from aezip.coding.intdecoder import ARITHMETIC
from aezip.metrics import psnr_from_mse
from aezip.files.modelfile import (CodecModel, default_model, ladder_model, load_model, model_at_quality,
                                  shipped_model)
from aezip.options import parse_range
from aezip.coding.chunktables import CHUNK_CODER, CHUNK_CODER_V2, CHUNK_CODER_V3
from aezip.coding.context import CONTEXT_CODER
from aezip.coding.latentcoder import latent_coder
from aezip.coding.quality import LADDER_CODER, check_quality
from aezip.coding.pixelstream import CODER_METHODS, PIXEL_CODER
from aezip.coding.residual import RESIDUAL_CODER
from aezip.conv import coding as conv_coding
from aezip.conv.layout import (ARITHMETIC as CONV_ARITHMETIC, CODER as CONV_CODER, CODERS as CONV_CODERS,
                               PER_CHUNK_CODER)
from aezip.conv.model import is_conv

Progress = Callable[[int], None]   # called with the number of images just done
MAX_ADAPT_STEPS = 100_000          # --adapt: more would be a training run (aezip train --init)


@dataclass
class CodecReport:
    """What an encode or decode did, with the figures a user asks for."""

    images: int
    pixels: int                       # pixel positions, N x H x W (the field's convention for bits/pixel)
    file_bytes: int
    seconds: float
    psnr_db: float | None = None
    max_abs_error: int | None = None
    channels: int = 1                 # samples per pixel (3 for RGB)
    model_bytes: int = 0              # of file_bytes, the embedded decode-side model's (--embed-model)
    picked: str | None = None         # --psnr: the setting picked (aezip.target), after `trials` encodes
    trials: int = 0

    @property
    def bits_per_pixel(self) -> float:
        return self.file_bytes * 8 / self.pixels

    @property
    def bits_per_sample(self) -> float:
        return self.bits_per_pixel / self.channels

    def to_dict(self) -> dict:
        """The figures as JSON-ready values (an infinite PSNR as the string "inf")."""
        d = dataclasses.asdict(self)
        d["bits_per_pixel"] = self.bits_per_pixel
        d["bits_per_sample"] = self.bits_per_sample
        d["images_per_s"] = self.images / max(self.seconds, 1e-9)
        if self.picked is None:
            del d["picked"], d["trials"]
        if d["psnr_db"] == float("inf"):
            d["psnr_db"] = "inf"
        return d


def check_fits(dataset_shape: tuple[int, ...], mf: CodecModel, what: str, *, any_size: bool = False,
               conv: bool = False) -> None:
    """The model must have been made for images of this shape; with any_size, a tile model takes any H x W of its
    channel count (the codec), otherwise only its training shape (the autoencoder's other uses); a convolutional
    model takes any H x W of its channel count, and serves a use other than the codec only where `conv` says it
    does (features)."""
    cfg = mf.config
    if is_conv(mf) and not (any_size or conv):
        raise ModelMismatchError(f"{what}: a convolutional model codes images and gives features; this needs an MLP "
                                 "model")
    why = cfg.fits(tuple(dataset_shape)) if any_size or is_conv(mf) else \
        dataclasses.replace(cfg, patch=0, margin=0, context=0).fits(tuple(dataset_shape))
    if why:
        raise ModelMismatchError(f"{what}: {why}")


def image_channels(shape: tuple[int, ...] | list[int]) -> int:
    """Samples per pixel of a dataset of this shape (N x H x W is 1, N x H x W x C is C)."""
    return int(shape[3]) if len(shape) == 4 else 1


def check_encode_args(max_error: int | None, chunk_size: int | None, shape: tuple[int, ...],
                       mf: CodecModel, adapt: int = 0, adapt_decoder: bool = False, sharded: bool = False) -> int:
    """Check the encoder's arguments; returns the chunk size (None: the default for images of this size)."""
    if max_error is not None and not 0 <= max_error <= 255:
        raise ParameterError("max_error", f"must be an integer in 0..255 (or None: lossy), got {max_error}")
    if isinstance(adapt, bool) or not isinstance(adapt, (int, np.integer)) or not 0 <= adapt <= MAX_ADAPT_STEPS:
        raise ParameterError("adapt", f"must be a number of steps in 0..{MAX_ADAPT_STEPS}, got {adapt}")
    if adapt and not is_conv(mf):
        raise ParameterError("adapt", "fine-tunes a convolutional model's encoder (aezip train --arch conv); this "
                                      "model is an MLP's")
    if adapt_decoder and not adapt:
        raise ParameterError("adapt_decoder", "adapts the decoder with the encoder: give adapt a number of steps")
    if adapt_decoder and sharded:
        raise ParameterError("adapt_decoder", "gives each part of a sharded encode its own decoder, and parts that "
                                              "merge share one: encode without shards")
    samples = image_samples(shape)
    most = max_chunk_size(samples)
    if is_conv(mf):
        most = min(most, conv_coding.chunk_limit(mf.config, tuple(shape[1:])))
    if chunk_size is None:
        return min(default_chunk_size(samples), most)
    if not 1 <= chunk_size <= most:
        raise ParameterError("chunk_size", f"must lie in 1..{most} for images of {samples} samples, got "
                                           f"{chunk_size}")
    return chunk_size


def peek(chunks: Iterable[np.ndarray]) -> tuple[np.ndarray | None, Iterator[np.ndarray]]:
    """The first chunk of a stream (None: it is empty) and the whole stream again."""
    chunks = iter(chunks)
    first = next(chunks, None)
    return first, (chunks if first is None else itertools.chain([first], chunks))


def rechunk(parts: Iterable[np.ndarray], size: int, lo: int = 0, hi: int | None = None) -> Iterator[np.ndarray]:
    """Images lo..hi-1 of a stream of arrays of consecutive images, regrouped `size` at a time."""
    pending: list[np.ndarray] = []
    held = seen = 0
    for part in parts:
        a, b = max(lo - seen, 0), len(part) if hi is None else min(len(part), hi - seen)
        seen += len(part)
        if a < b:
            pending.append(part[a:b])
            held += b - a
        while held >= size:
            block = np.concatenate(pending) if len(pending) > 1 else pending[0]
            yield block[:size]
            pending, held = ([block[size:]] if held > size else []), held - size
        if hi is not None and seen >= hi:
            break
    if held:
        yield np.concatenate(pending)


def file_header(mf: CodecModel, shape: tuple[int, ...], source: Source, chunk_size: int, backend: str, entropy: str,
                max_error: int | None, bounded: bool, search: bool, adapted: dict | None) -> dict:
    """A .aez header's fields every encode writes (aezip.files.header): the images, the model, the coders (a pixel
    coder where chunks are `bounded`), and where the encoder searched or adapted (provenance: decoding reads the
    bytes as always)."""
    conv = is_conv(mf)
    header = {
        "shape": [int(s) for s in shape], "dtype": "uint8", "source": source.to_dict(),
        "model_id": mf.id, "levels": mf.config.levels, "latent": mf.config.latent,
        "max_error": max_error, "backend": backend, "aezip_version": __version__,
        "chunk_size": chunk_size, "decoder": CONV_ARITHMETIC if conv else ARITHMETIC,
        "entropy": entropy, "residual": PIXEL_CODER if bounded else None,
    }
    if not conv and mf.config.patch:
        header["tiles"] = {"patch": mf.config.patch, "context": mf.config.context}
    if search:
        from aezip.conv.refine import LATENT_SEARCH as CONV_SEARCH
        from aezip.network.search import LATENT_SEARCH
        header["latent_search"] = CONV_SEARCH if conv else LATENT_SEARCH
    if adapted is not None:
        header["adapted"] = adapted
    return header


def encode_to(f: BinaryIO, chunks: Iterable[np.ndarray], shape: tuple[int, ...], source: Source, mf: CodecModel, *,
              chunk_size: int | None = None, max_error: int | None = None, backend: str | None = None,
              device: str = "auto", progress: Progress | None = None, jobs: int = 1,
              shard: dict | None = None, quality: int | None = None, embed_model: bool = False,
              pixel_methods: tuple[int, ...] | None = None, search: bool = False, adapt: int = 0,
              adapt_decoder: bool = False) -> CodecReport:
    """Write images (`chunks` of `chunk_size`, `shape` together) as one .aez container to the binary stream f;
    jobs > 1 codes chunks in that many processes (same bytes); `shard` marks the container as one part of a
    sharded encode (see shards.py); `quality` (2..the model's levels) picks a level of the quantizer ladder;
    embed_model writes the decode-side model the file needs into it; search refines the latent codes (search.py)
    and, for a --max-error file without a quality that is not a shard's part, picks one on the first chunk
    (pixel_quality; the parts of a sharded encode are coded apart and must agree on it); adapt > 0 fine-tunes a
    convolutional model's encoder for that many steps on the first chunk first (aezip.conv.adapt), and with
    adapt_decoder its synthesis biases too, the file carrying them as a decoder patch (aezip.conv.patch)."""
    from aezip import kernels                             # torch: only encoding needs it, decoding does not
    from aezip.files.parallel import encode_chunks
    from aezip.files.decodemodel import decoder_bytes
    from aezip.tensors import resolve_device
    check_fits(tuple(shape[1:]), mf, str(source.format), any_size=True)
    if mf.decode_only:
        raise InputError(f"{mf.path}: a decode-side model holds no encoder; encode with the model file (.aezm)")
    chunk_size = check_encode_args(max_error, chunk_size, shape, mf, adapt, adapt_decoder, shard is not None)
    conv = is_conv(mf)
    quality = conv_coding.check_rate(quality, mf.config) if conv else check_quality(quality, mf.config.levels)
    dev = resolve_device(device)
    backend_used = kernels.resolve_backend(backend, dev)
    if search and max_error is not None and quality is None and shard is None:   # parts of a shard must agree
        first, chunks = peek(chunks)
        if first is not None:
            from aezip.effort import pixel_quality
            mf.model.to(dev)
            quality = pixel_quality(mf, first, max_error, backend_used, dev, pixel_methods)
    model = decoder_bytes(mf, max_error_parts=max_error is not None, rates=(quality - 1,) if conv else None) \
        if embed_model else None                  # the model file's own decode side: a decoder patch applies to it
    adapted = patch = None
    if adapt:
        first, chunks = peek(chunks)
        if first is not None:
            from aezip.conv.adapt import adapt as adapt_codec
            mf, patch = adapt_codec(mf, quality - 1, first, adapt, dev, decoder=adapt_decoder)
            adapted = {"steps": adapt, "images": len(first)}
    header = file_header(mf, shape, source, chunk_size, backend_used, CONV_CODER if conv else latent_coder(mf, quality),
                         max_error, max_error is not None, search, adapted)
    if quality is not None:
        header["quality"] = quality
    if shard is not None:
        header["shard"] = shard
    start = time.perf_counter()
    sse, max_err, samples, images = 0.0, 0, 0, 0
    writer = ContainerWriter(f, header, model, patch)
    per_image = image_samples(shape)
    for (payload, chunk_sse, chunk_max), n in encode_chunks(mf, chunks, max_error, backend_used, dev, jobs,
                                                            quality, pixel_methods, search):
        writer.add_chunk(payload, n)
        sse += chunk_sse
        max_err = max(max_err, chunk_max)
        samples += n * per_image
        images += n
        if progress:
            progress(n)
    if images != shape[0]:
        raise InputError(f"the data held {images} images where {shape[0]} were announced")
    size = writer.close()
    channels = image_channels(shape)
    return CodecReport(images, samples // channels, size, time.perf_counter() - start, psnr_from_mse(sse / samples),
                       max_err, channels, len(model or b""))


def encode_dataset(dataset: Dataset, mf: CodecModel, out: str | Path | BinaryIO, *, chunk_size: int | None = None,
                   max_error: int | None = None, backend: str | None = None, device: str = "auto",
                   image_range: str | tuple[int, int] | None = None, force: bool = False,
                   progress: Progress | None = None, jobs: int = 1,
                   shard: tuple[int, int] | None = None, quality: int | None = None,
                   embed_model: bool = False, pixel_methods: tuple[int, ...] | None = None,
                   search: bool = False, adapt: int = 0, adapt_decoder: bool = False) -> CodecReport:
    """Write `dataset` (or its images in image_range, A:B) to one .aez file, or to a binary stream; max_error
    bounds every pixel's error (0: lossless); quality (2..the model's levels, None: its own quantizer) trades
    size for quality. jobs > 1 codes chunks in that many processes (same bytes); shard (K, N) writes only the
    K-th of N parts of the whole dataset (join them with shards.merge_parts); embed_model writes the decode-side
    model into the file (see decodemodel.py); pixel_methods limits the pixel coders tried under max_error (bench
    rows); search refines the latent codes by the encoder's search (`--effort max`, search.py); adapt fine-tunes a
    convolutional model's encoder on the first chunk for that many steps (aezip.conv.adapt), adapt_decoder its
    synthesis biases with it (the file carries them)."""
    from aezip.files.shards import shard_entry, shard_range

    check_fits(dataset.image_shape, mf, str(dataset.path), any_size=True)
    chunk_size = check_encode_args(max_error, chunk_size, dataset.shape, mf, adapt, adapt_decoder, shard is not None)
    if is_conv(mf):
        conv_coding.check_rate(quality, mf.config)
    else:
        check_quality(quality, mf.config.levels)
        mf = model_at_quality(mf, quality)
    if shard is not None and image_range is not None:
        raise ParameterError("shard", "a shard is a part of the whole dataset; it does not combine with a range")
    lo, hi = shard_range(dataset.shape[0], chunk_size, shard) if shard else parse_range(image_range, dataset.shape[0])
    source = dataset.source
    if source.names:
        source = dataclasses.replace(source, names=source.names[lo:hi])
    chunks = rechunk(dataset.chunks(chunk_size), chunk_size, lo, hi)
    args = dict(chunk_size=chunk_size, max_error=max_error, backend=backend, device=device, progress=progress,
                jobs=jobs, shard=shard_entry(shard, lo, hi, dataset.shape[0]) if shard else None, quality=quality,
                embed_model=embed_model, pixel_methods=pixel_methods, search=search, adapt=adapt,
                adapt_decoder=adapt_decoder)
    shape = (hi - lo, *dataset.image_shape)
    if hasattr(out, "write"):
        return encode_to(out, chunks, shape, source, mf, **args)
    with atomic_path(out, force=force, inputs=(dataset.path, mf.path)) as tmp:
        with open(tmp, "wb") as f:
            return encode_to(f, chunks, shape, source, mf, **args)


def model_for(reader: ContainerReader, model: str | Path | CodecModel | None) -> CodecModel:
    """The model that wrote the file: the one given (a path or a loaded model), else the file's embedded
    decode-side model, else the default (or for files it wrote at a coarse level, its low-rate sibling); a different
    one is an error."""
    from aezip.files.decodemodel import load_decoder_bytes
    embedded = reader.embedded_model() if model is None else None
    if embedded is not None:
        mf = load_decoder_bytes(embedded, f"{reader.path}: embedded model")
    else:
        mf = model if isinstance(model, CodecModel) else default_model() if model is None else load_model(model)
    want = reader.header["model_id"]
    if embedded is None and mf.id != want:
        mf = ladder_model(mf, want) or mf   # a coarse level of the default: its low-rate sibling wrote it
    if model is None and embedded is None and mf.id != want:
        mf = shipped_model(want) or mf      # a file written with an earlier default model
    if embedded is not None and mf.id != want:
        raise FormatError(f"{reader.path}: the embedded model is for model {mf.id[:16]}, the header names {want[:16]} "
                          "(damaged file)")
    if mf.id != want:
        hint = "pass the model that wrote it" if model is None else "this is not the model that wrote it"
        raise ModelMismatchError(f"{reader.path}: written with model {want[:16]}, but model {mf.id[:16]} was given "
                                 f"({hint})")
    h, cfg, conv = reader.header, mf.config, is_conv(mf)
    tiles = {"patch": cfg.patch, "context": cfg.context} if not conv and cfg.patch else None
    if (h["levels"], h["latent"], h.get("tiles")) != (cfg.levels, cfg.latent, tiles) or cfg.fits(
            tuple(h["shape"][1:])) or conv != (h["entropy"] in CONV_CODERS):
        raise FormatError(f"{reader.path}: the header's image shape, tiles, levels, latent size or coder contradict "
                          f"its model")
    if h["max_error"] is not None and mf.residual_prior is None:
        raise FormatError(f"{reader.path}: a --max-error file, but its decode-side model holds no max-error coder")
    section = reader.decoder_patch()
    if section is not None:
        if not conv:
            raise FormatError(f"{reader.path}: a decoder patch in a file of an MLP model (damaged file)")
        from aezip.conv.patch import apply_patch, unpack_patches
        try:
            patches = unpack_patches(section) if h["entropy"] == PER_CHUNK_CODER else {h["quality"] - 1: section}
            for rate, patch in patches.items():
                if rate >= cfg.rates:
                    raise FormatError(f"a decoder patch for rate point {rate + 1} of a model of {cfg.rates}")
                if mf.points[rate] is not None:   # else decoding says the decode-side model lacks the rate point
                    mf = mf.with_point(rate, apply_patch(mf.points[rate], patch, rate))
        except FormatError as exc:
            raise FormatError(f"{reader.path}: {exc}") from None
    return mf


def check_header(reader: ContainerReader) -> dict:
    """Validate an opened file's header and chunk index against each other; returns the header."""
    h = reader.header
    try:
        validate_header(h, decoder=ARITHMETIC, residual=(*CODER_METHODS, RESIDUAL_CODER),
                        entropy=(LATENT_CODER, LADDER_CODER, CONTEXT_CODER, CHUNK_CODER, CHUNK_CODER_V2,
                                 CHUNK_CODER_V3))
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


def decode_chunk(reader: ContainerReader, i: int, mf: CodecModel) -> np.ndarray:
    """Chunk i's images as uint8 (n x the header's image shape), its pixel checksum checked."""
    return decode_payload(mf, reader.read_chunk(i), reader.chunks[i].images, reader.header,
                          f"{reader.path} chunk {i}")


def iter_decoded(reader: ContainerReader, mf: CodecModel, lo: int, hi: int,
                 progress: Progress | None = None, jobs: int = 1) -> Iterator[np.ndarray]:
    """Decoded images lo..hi-1 as uint8 arrays of the header's image shape, chunk by chunk, each one checked;
    jobs > 1 decodes chunks in that many processes."""
    from aezip.files.parallel import decode_chunks

    check_header(reader)
    wanted = [(i, c) for i, c in enumerate(reader.chunks) if c.first_image + c.images > lo and c.first_image < hi]
    payloads = ((reader.read_chunk(i), c.images, f"{reader.path} chunk {i}") for i, c in wanted)
    for (_, c), images in zip(wanted, decode_chunks(mf, payloads, reader.header, jobs)):
        a, b = max(lo, c.first_image) - c.first_image, min(hi, c.first_image + len(images)) - c.first_image
        if progress:
            progress(b - a)
        yield images[a:b]


def decode_file(path: str | Path | bytes | BinaryIO, out: str | Path | BinaryIO, *,
                model_path: str | Path | CodecModel | None = None, image_range: str | tuple[int, int] | None = None,
                force: bool = False, progress: Progress | None = None, jobs: int = 1) -> CodecReport:
    """Decode a .aez file (all of it, or image_range A:B) into its source format at `out` (a .npy array where `out`
    is a path ending in .npy): a path, or a binary stream where the format is one file; jobs > 1 decodes chunks in
    that many processes."""
    start = time.perf_counter()
    with ContainerReader(path) as reader:
        check_header(reader)
        lo, hi = parse_range(image_range, reader.header["shape"][0])
        if image_range is None:
            reader.verify()
        source = source_of(reader).for_output(out)
        mf = model_for(reader, model_path)
        if source.names:   # the names the whole file decodes to, so a range gets the same ones
            source.names = output_names(source.names)[lo:hi]
        shape = (hi - lo, *reader.header["shape"][1:])
        inputs = (path if isinstance(path, (str, Path)) else None, mf.path)
        write_dataset(iter_decoded(reader, mf, lo, hi, progress, jobs), shape, source, out, force=force,
                      inputs=inputs)
        size = reader.size
    channels = image_channels(shape)
    return CodecReport(hi - lo, int(np.prod(shape)) // channels, size, time.perf_counter() - start,
                       channels=channels)


def test_file(path: str | Path | bytes | BinaryIO, model: str | Path | CodecModel | None = None,
              progress: Progress | None = None) -> CodecReport:
    """Decode every chunk of a .aez file and check every checksum, writing nothing."""
    start = time.perf_counter()
    with ContainerReader(path) as reader:
        reader.verify()
        check_header(reader)
        source_of(reader)
        mf = model_for(reader, model)
        shape = reader.header["shape"]
        n = sum(len(c) for c in iter_decoded(reader, mf, 0, shape[0], progress))
        size = reader.size
    channels = image_channels(shape)
    return CodecReport(n, n * int(np.prod(shape[1:])) // channels, size, time.perf_counter() - start,
                       channels=channels)


test_file.__test__ = False   # not a pytest test, despite its name
