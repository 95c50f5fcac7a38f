"""The public Python API (re-exported by `aezip`): compress and decompress arrays in memory, encode and decode
files or streams, open a .aez file for random access, train, load and save models.

`model` arguments take a path to a .aezm file, a loaded `Model`, or None for the embedded default model.
Failures raise `aezip.AezipError` subclasses; a bad argument raises `ParameterError`, whose `param` names it."""
from __future__ import annotations

import dataclasses
import hashlib
import io
from pathlib import Path
from typing import BinaryIO, Callable

import numpy as np

from aezip.codec import CodecReport, decode_file, encode_dataset, iter_decoded, model_for, test_file
from aezip.effort import effort_settings
from aezip.fileinfo import file_info
from aezip.files.container import ContainerReader
from aezip.files.data import Dataset, array_dataset, open_dataset, read_stream
from aezip.errors import ParameterError
from aezip.files.modelfile import CodecModel, ModelFile, default_model, model_bytes
from aezip.files.modelfile import load_model as _load_model_file
from aezip.network.config import AEConfig
from aezip.errors import InputError
from aezip.options import TrainOptions
from aezip.reader import DEFAULT_CACHE_CHUNKS, Reader
from aezip.network.sizing import PICKED_OPTIONS, pick
from aezip.network.tiles import grid_crops

Model = ModelFile
Progress = Callable[[int], None]


def load_model(path: str | Path | None = None) -> ModelFile:
    """A model file (.aezm) or a decode-side model file (.aezd); None gives the embedded default model."""
    return default_model() if path is None else _load_model_file(path)


def _model(model: str | Path | ModelFile | None) -> ModelFile:
    """A loaded model; a trained one not yet saved gets the id its file will have (files name their model by it)."""
    mf = model if isinstance(model, CodecModel) else load_model(model)
    if not mf.id:
        mf.id = hashlib.sha256(model_bytes(mf)).hexdigest()
    return mf


def _decoding_model(model: str | Path | ModelFile | None) -> ModelFile | None:
    """The model a decode was given, or None: the file's embedded model if it has one, else the default."""
    return None if model is None else _model(model)


def open_data(src: str | Path | np.ndarray | BinaryIO | Dataset, key: str | None = None) -> Dataset:
    """A dataset from a path (file or folder), an array of images, or a binary stream holding a .npy or IDX."""
    if isinstance(src, Dataset):
        return src
    if isinstance(src, np.ndarray):
        return array_dataset(src)
    if hasattr(src, "read"):
        return read_stream(src, str(getattr(src, "name", "<stream>")))  # type: ignore[arg-type]
    return open_dataset(src, key=key) if key else open_dataset(src)


def compress(images: np.ndarray, model: str | Path | ModelFile | None = None, *, max_error: int | None = None,
             chunk_size: int | None = None, quality: int | None = None, embed_model: bool = False,
             effort: str = "best", psnr: float | None = None, adapt: int = 0, adapt_decoder: bool = False,
             per_chunk: bool = False) -> bytes:
    """The bytes of a .aez file holding `images` (uint8, N x H x W[ x C]); max_error bounds every pixel's error
    (0: lossless, None: the model's lossy reconstruction); quality (2..the model's levels; None: the model's own
    quantizer) trades size for quality; psnr instead asks for the smallest file of any quality or max_error whose
    PSNR reaches it (aezip.target); embed_model puts the decode-side model into the file; effort "fast" codes
    max_error chunks without the learned pixel models (faster, possibly larger), "max" also searches the latent
    codes for ones that decode closer (much slower to encode; the decoder is the same); adapt > 0 fine-tunes a
    convolutional model's encoder on the images for that many steps first (aezip.conv.adapt), adapt_decoder its
    synthesis biases with it (the file carries them: aezip.conv.patch); per_chunk (with psnr, a convolutional model)
    lets each chunk take its own rate point or bound (aezip.mixed)."""
    buf = io.BytesIO()
    _encode(array_dataset(images), _model(model), buf, psnr, chunk_size=chunk_size, max_error=max_error,
            quality=quality, embed_model=embed_model, adapt=adapt, adapt_decoder=adapt_decoder, per_chunk=per_chunk,
            **effort_settings(effort))
    return buf.getvalue()


def decompress(blob: bytes, model: str | Path | ModelFile | None = None) -> np.ndarray:
    """The images stored in the bytes of a .aez file, as one uint8 array."""
    with ContainerReader(blob) as reader:
        reader.verify()
        mf = model_for(reader, _decoding_model(model))
        shape = tuple(reader.header["shape"])
        return np.concatenate(list(iter_decoded(reader, mf, 0, shape[0])))


def encode(src: str | Path | np.ndarray | BinaryIO | Dataset, dst: str | Path | BinaryIO,
           model: str | Path | ModelFile | None = None, *, max_error: int | None = None,
           chunk_size: int | None = None, image_range: str | tuple[int, int] | None = None, key: str | None = None,
           backend: str | None = None, device: str = "auto", force: bool = False,
           progress: Progress | None = None, jobs: int = 1, shard: tuple[int, int] | None = None,
           quality: int | None = None, embed_model: bool = False, effort: str = "best",
           psnr: float | None = None, adapt: int = 0, adapt_decoder: bool = False, per_chunk: bool = False,
           log: Callable[[str], None] | None = None) -> CodecReport:
    """Write a dataset (a path, an array, or a stream holding a .npy or IDX) to a .aez file or binary stream.
    image_range (A:B) keeps images A..B-1; key picks the image array of a .npz; jobs > 1 codes chunks in that many
    processes (same bytes); shard (K, N) writes the K-th of N parts (join them with `merge`); quality (2..the
    model's levels, None: its own quantizer) picks a level of the latent quantizer ladder; psnr instead writes the
    smallest file of any quality or max_error whose PSNR reaches it (aezip.target; `log` hears each trial, the
    report's `picked` names the setting); embed_model puts the decode-side model into the file, so it decodes
    without the model file; effort "fast" codes max_error chunks without the learned pixel models (faster,
    possibly larger; "best" tries every coder; "max" also searches the latent codes for ones that decode closer,
    much slower to encode); adapt > 0 fine-tunes a convolutional model's encoder on the first chunk for that many
    steps first (aezip.conv.adapt: smaller files for pictures unlike the model's training set), adapt_decoder its
    synthesis biases with it (the file carries them: aezip.conv.patch); per_chunk (with psnr, a convolutional
    model) writes the smallest file whose chunks each take their own rate point or bound (aezip.mixed)."""
    dataset = open_data(src, key)
    return _encode(dataset, _model(model), dst, psnr, chunk_size=chunk_size, max_error=max_error, backend=backend,
                   device=device, image_range=image_range, force=force, progress=progress, jobs=jobs, shard=shard,
                   quality=quality, embed_model=embed_model, adapt=adapt, adapt_decoder=adapt_decoder,
                   per_chunk=per_chunk, log=log, **effort_settings(effort))


def _encode(dataset: Dataset, mf: ModelFile, dst: str | Path | BinaryIO, psnr: float | None, *,
            log: Callable[[str], None] | None = None, per_chunk: bool = False, **args) -> CodecReport:
    """encode_dataset, or with a PSNR target the smallest setting that reaches it (quality, max_error and shard
    are then the target's to pick, and given ones an error), per chunk where asked."""
    if psnr is None:
        if per_chunk:
            raise ParameterError("per_chunk", "chooses each chunk's setting for a target: give --psnr")
        return encode_dataset(dataset, mf, dst, **args)
    for name in ("quality", "max_error", "shard"):
        if args.pop(name, None) is not None:
            raise ParameterError("psnr", "picks the setting itself; it does not combine with "
                                         f"--{name.replace('_', '-')}")
    if per_chunk:
        from aezip.mixed import encode_per_chunk
        return encode_per_chunk(dataset, mf, dst, psnr, log=log, **args)
    from aezip.target import smallest_at_psnr
    return smallest_at_psnr(dataset, mf, dst, psnr, force=args.pop("force", False), log=log, **args)


def decode(src: str | Path | bytes | BinaryIO, dst: str | Path | BinaryIO,
           model: str | Path | ModelFile | None = None, *, image_range: str | tuple[int, int] | None = None,
           force: bool = False, progress: Progress | None = None, jobs: int = 1) -> CodecReport:
    """Write the dataset stored in a .aez file (a path, its bytes or a binary stream) back in the format it came
    in, to a path or (formats that are one file) a binary stream; image_range (A:B) decodes only those images;
    jobs > 1 decodes chunks in that many processes."""
    if hasattr(src, "read") and not _seekable(src):
        src = src.read()  # type: ignore[union-attr]
    return decode_file(src, dst, model_path=_decoding_model(model), image_range=image_range, force=force,
                       progress=progress, jobs=jobs)


def verify(src: str | Path | bytes | BinaryIO, model: str | Path | ModelFile | None = None,
           progress: Progress | None = None) -> CodecReport:
    """Decode every chunk of a .aez file and check every checksum, writing nothing."""
    return test_file(src, _decoding_model(model), progress)


def info(src: str | Path | bytes | BinaryIO) -> dict:
    """The header of a .aez file and what it costs (every checksum checked)."""
    return file_info(src)


def open(path: str | Path | bytes | BinaryIO, model: str | Path | ModelFile | None = None, *,  # noqa: A001
         cache_chunks: int = DEFAULT_CACHE_CHUNKS) -> Reader:
    """Open a .aez file for random access: len(r), r.shape, r.info, r[i], r[a:b]; only needed chunks decode."""
    return Reader(path, _decoding_model(model), cache_chunks=cache_chunks)


def train(images: np.ndarray, *, hidden: tuple[int, ...] | None = None, latent: int | None = None,
          levels: int | None = None, patch: int | None = None, margin: int | None = None,
          context: int | None = None, progress: bool = False, log: Callable[[str], None] | None = None,
          source: dict | None = None, **options) -> ModelFile | None:
    """Train a codec model on uint8 images (N x H x W[ x C]); options are TrainOptions' fields (loss, rho, beta,
    epochs, seed, ...); the architecture (hidden, latent, levels; patch > 0: a tile model with its margin and
    context, 0: the whole-image model), the epochs and the rate training are picked from the data where not given
    (sizing.py, the choice is logged); `source` (e.g. the data's name and range) is recorded in the model's info
    with the shape. Save the result with `model.save(path)`. Under torchrun every process calls this: rank 0 gets the model, the
    others None. A memory-mapped array (np.load(..., mmap_mode="r")) is read batch by batch, never whole."""
    from aezip.network.training import train_model

    from aezip.files.stream import FolderImages
    if not isinstance(images, FolderImages):
        images = np.asanyarray(images)   # a memory map stays one
    if images.dtype != np.uint8 or images.ndim not in (3, 4):
        raise ParameterError("images", f"must be a uint8 array N x H x W[ x C], got {images.dtype} {images.shape}")
    unknown = sorted(set(options) - set(TrainOptions.__dataclass_fields__))
    if unknown:
        known = ", ".join(TrainOptions.__dataclass_fields__)
        raise ParameterError(unknown[0], f"is not a training option (those are {known})")
    log = log or (lambda m: None)
    given = {k: options.pop(k, None) for k in PICKED_OPTIONS}
    opts = TrainOptions(**options, **{k: v for k, v in given.items() if v is not None})
    choice = pick(images.shape, {"hidden": hidden and tuple(hidden), "latent": latent, "levels": levels,
                                 "patch": patch, "margin": margin, "context": context}, opts.val_split, **given)
    try:
        config = AEConfig(image_shape=images.shape[1:], **choice.arch)
    except ValueError as exc:
        raise InputError(str(exc)) from None
    log = _after(choice.describe(), log)   # printed once training has checked its options and starts
    data_shape = list(images.shape)
    if choice.crop:
        images = grid_crops(np.asarray(images[np.arange(len(images))]), choice.crop)
        config = dataclasses.replace(config, image_shape=images.shape[1:])
    opts = dataclasses.replace(opts, **{k: getattr(choice, k) for k in PICKED_OPTIONS})
    model = train_model(images, config, opts, progress=progress, log=log)
    if model is None:   # a torchrun rank other than 0
        return None
    model.info["data"] = {**(source or {}), "shape": data_shape}
    return model


def train_conv(images: np.ndarray, *, lambdas: tuple[float, ...] | None = None, steps: int = 0,
               seconds: float | None = None, batch_size: int | None = None, lr: float | None = None,
               augment: tuple[str, ...] | None = None, seed: int = 0, widths: tuple[int, int, int] | None = None,
               device: str = "auto", log: Callable[[str], None] | None = None, source: dict | None = None,
               init: str | Path | ModelFile | None = None):
    """Train a convolutional codec (aezip.conv: one model, a ladder of rate points, `quality` 1..len(lambdas) when
    encoding; any H x W with the data's channel count) on uint8 images N x H x W[ x C]. Training runs `steps` steps,
    or `seconds` of wall time where steps is 0 (default: 5,000 steps); widths (n, m, z) default to 64, 64, 32;
    augment defaults to flip,invert (gray) or all five augmentations (colour). `init`, a conv model (.aezm or
    loaded), is where training starts: it continues that model, or fine-tunes it on new data or lambdas; its widths,
    rate-point count and (unless given) lambdas are kept. Save the result with `model.save(path)`."""
    from aezip.conv.training import ConvTrainOptions, default_augment, train_conv_model
    from aezip.tensors import resolve_device

    images = np.asarray(images)
    if images.dtype != np.uint8 or images.ndim not in (3, 4) or not len(images):
        raise ParameterError("images", f"must be a uint8 array N x H x W[ x C], got {images.dtype} {images.shape}")
    base = ConvTrainOptions()
    start = _conv_init(init, images, lambdas, widths) if init is not None else None
    if start is not None:
        lambdas, widths = lambdas or start.config.lambdas, (start.config.n, start.config.m, start.config.z)
    kw = {"lambdas": tuple(lambdas) if lambdas else base.lambdas, "steps": int(steps),
          "seconds": float(seconds) if seconds is not None else base.seconds,
          "batch": batch_size or base.batch, "lr": lr or base.lr, "seed": int(seed),
          "augment": tuple(augment) if augment is not None else default_augment(
              images.shape[3] if images.ndim == 4 else 1)}
    if not kw["steps"] and seconds is None:
        kw["steps"] = DEFAULT_CONV_STEPS
    if widths:
        kw.update(zip(("n", "m", "z"), widths))
    if not 1 <= len(kw["lambdas"]) <= 16 or min(kw["lambdas"]) <= 0:
        raise ParameterError("lambdas", f"must be 1..16 positive numbers, got {kw['lambdas']}")
    opts = ConvTrainOptions(**kw)
    return train_conv_model(images, opts, resolve_device(device), log, source, start)


def _conv_init(init: str | Path | ModelFile, images: np.ndarray, lambdas: tuple[float, ...] | None,
               widths: tuple[int, int, int] | None):
    """The conv model train_conv(init=...) starts from, checked against the data and the options given."""
    from aezip.conv.model import is_conv
    start = _model(init)
    name = start.path or "init"
    if not is_conv(start):
        raise InputError(f"{name}: not a convolutional model (--arch conv continues only those)")
    if start.decode_only:
        raise InputError(f"{name}: a decode-side model holds no float network to train; give the .aezm")
    why = start.config.fits(images.shape[1:])
    if why:
        raise InputError(f"{name}: {why}")
    if lambdas and len(lambdas) != start.config.rates:
        raise InputError(f"{name} has {start.config.rates} rate points: give as many lambdas, got {len(lambdas)}")
    if widths and tuple(widths) != (start.config.n, start.config.m, start.config.z):
        raise InputError(f"{name} has widths {start.config.n},{start.config.m},{start.config.z}: they cannot change")
    return start


DEFAULT_CONV_STEPS = 5000   # the conv study's real-bytes runs took 5,185 (RGB) and 5,368 (gray) steps


def _after(first: str, log: Callable[[str], None]) -> Callable[[str], None]:
    """`log`, which prints `first` before its first message."""
    pending = [first]

    def logged(message: str) -> None:
        while pending:
            log(pending.pop())
        log(message)
    return logged


def _seekable(f: object) -> bool:
    try:
        return bool(f.seekable())  # type: ignore[attr-defined]
    except (AttributeError, OSError, ValueError):
        return False


__all__ = ["compress", "decompress", "encode", "decode", "verify", "info", "open", "train", "train_conv", "load_model",
           "Model",
           "Reader", "CodecReport", "open_data"]
