"""Model files (.aezm): safetensors weights, a JSON config in the metadata, the entropy tables, the integer
decoder, the max-error coder's prior, (optionally) the learned pixel model and a bank of training codes for restoration.
No pickle anywhere: loading a model file never runs code. A model's id is the sha256 of its file."""
from __future__ import annotations

import functools
import hashlib
import json
import re
import struct
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from safetensors.numpy import load as st_load_numpy
from safetensors.numpy import save as st_save_numpy

from aezip import __version__
from aezip.files.atomic import atomic_path
from aezip.network.config import AEConfig
from aezip.errors import InputError, FormatError
from aezip.coding.intdecoder import IntegerDecoder
from aezip.files.modelcheck import check_config, check_tensors
from aezip.coding.pixelmodel import ALONE, WITH_LATENTS, PixelMLP
from aezip.coding.context import ContextModel
from aezip.coding.rasternet import RasterNet

if TYPE_CHECKING:
    from aezip.network.model import AutoEncoder

FORMAT = "aezip-model"
FORMAT_VERSION = 1
DEFAULT_MODEL_NAME = "default.aezm"
METADATA_KEY = "aezip"
MAX_MODEL_BYTES = 1 << 30


class CodecModel:
    """What every loaded model is: an MLP codec's ModelFile, or a convolutional codec's (aezip.conv.model): a
    config, an id, a path, an info dict, and float weights from which its torch network is built on first use (none
    in a decode-side model)."""

    _config: object
    _model: object
    _weights: dict[str, np.ndarray] | None
    id: str
    path: Path | None
    info: dict

    @property
    def decode_only(self) -> bool:
        """A decode-side model (decodemodel.py): integers only, no float network to encode or train with."""
        return self._model is None and not self._weights

    def _network(self):
        """An untrained torch network of this model's architecture."""
        raise NotImplementedError

    @property
    def model(self):
        """The float network (torch), built on first use from the stored weights."""
        if self.decode_only:
            raise InputError(f"{self.path or 'this model'}: a decode-side model holds no encoder; encoding needs "
                             "the model file (.aezm) it came from")
        if self._model is None:
            import torch
            model = self._network()
            model.load_state_dict({k: torch.from_numpy(v.copy()) for k, v in self._weights.items()})
            self._model = model.eval()
        return self._model

    def float_weights(self) -> dict[str, np.ndarray]:
        """The float weights (float32 numpy, state-dict names), from the network if it was built."""
        if self._model is None:
            return self._weights
        return {k: v.detach().cpu().float().numpy() for k, v in self._model.state_dict().items()}

    def save(self, path: str | Path, *, force: bool = False) -> str:
        """Write the model file atomically (an existing file only with force=True); sets and returns its id."""
        self.id = save_model(path, self, force=force)
        self.path = Path(path)
        return self.id


class ModelFile(CodecModel):
    """A codec model: the network, its entropy tables, integer decoder, residual prior, metadata; id once saved.

    Decoding needs only the numpy parts; the torch network (`model`) is built from the stored float weights the
    first time encode, training, embed or restore ask for it, so loading a model to decode never imports torch."""

    def __init__(self, model: AutoEncoder | None, tables: np.ndarray, intdec: IntegerDecoder,
                 residual_prior: np.ndarray | None, info: dict | None = None, bank: np.ndarray | None = None,
                 id: str = "", path: Path | None = None, *, config: AEConfig | None = None,
                 weights: dict[str, np.ndarray] | None = None, pixel: PixelMLP | None = None,
                 pixel_alone: PixelMLP | None = None, context: ContextModel | None = None,
                 raster: RasterNet | None = None) -> None:
        if model is None and (config is None or weights is None):
            raise ValueError("a ModelFile needs the network, or its config and float weights")
        self._model = model
        self._config = model.config if model is not None else config
        self._weights = weights
        self.tables = tables
        self.intdec = intdec
        self.residual_prior = residual_prior          # initial context counts of the max-error coder (None: a
                                                      # decode-side model of a lossy file, see decodemodel.py)
        self.info = info if info is not None else {}  # training summary: loss, data shape, held-out figures, ...
        self.bank = bank                              # latent codes of training images: restoration's start points
        self.id = id
        self.path = path
        self.pixel = pixel                            # the learned pixel model of the max-error coder (optional)
        self.pixel_alone = pixel_alone                # the same without latents: it predicts from its base image
        self.context = context                        # the latents' context entropy model (optional)
        self.raster = raster                          # the raster network the mixing coder with latents mixes in

    @property
    def config(self) -> AEConfig:
        return self._config

    def _network(self) -> AutoEncoder:
        from aezip.network.model import AutoEncoder
        return AutoEncoder(self._config)


def default_model_path() -> Path:
    """The model shipped inside the package."""
    return Path(str(resources.files("aezip") / "assets" / DEFAULT_MODEL_NAME))


@functools.lru_cache(maxsize=1)
def default_model() -> ModelFile:
    """The model shipped inside the package, loaded once per process."""
    return load_model(default_model_path())


DEFAULT_LOW_NAME = "default-low.aezm"   # the default's low-rate sibling (coding/lowrate.py): its coarse levels


@functools.lru_cache(maxsize=1)
def default_low_model() -> ModelFile:
    """The shipped default's low-rate sibling, loaded once per process."""
    return load_model(Path(str(resources.files("aezip") / "assets" / DEFAULT_LOW_NAME)))


def _is_default(mf: ModelFile) -> bool:
    return mf.id == default_model().id


def model_at_quality(mf: ModelFile, quality: int | None) -> ModelFile:
    """The model that encodes at `quality`: for the shipped default, its low-rate sibling at the levels up to the
    highest it was tuned for (the two are a ladder of models, README "A low-rate sibling"), else mf itself."""
    if quality is None or not mf.id or not _is_default(mf):
        return mf
    low = default_low_model()
    return low if quality <= max(low.info["low_rate"]["qualities"]) else mf


def ladder_model(mf: ModelFile, model_id: str) -> ModelFile | None:
    """The shipped default's low-rate sibling where a file names it and mf is the default (files encoded with the
    default at a coarse level name the sibling), else None."""
    if mf.id and _is_default(mf) and model_id == default_low_model().id:
        return default_low_model()
    return None


PREVIOUS_DEFAULT = "previous-{}.aezd"   # decode-side models of earlier shipped defaults, by the first 16 hex of the id


@functools.lru_cache(maxsize=4)
def shipped_model(model_id: str) -> ModelFile | None:
    """The decode-side model of an earlier shipped default model with this id (files written with it decode with no
    -m after the default moved on), or None; the id comes from a file's header, so it is checked before use."""
    if not isinstance(model_id, str) or not re.fullmatch(r"[0-9a-f]{64}", model_id):
        return None
    path = Path(str(resources.files("aezip") / "assets" / PREVIOUS_DEFAULT.format(model_id[:16])))
    if not path.is_file():
        return None
    mf = load_model(path)
    return mf if mf.id == model_id else None


def model_tensors(mf: ModelFile) -> dict[str, np.ndarray]:
    """Every tensor of the model file, by name (`float.*` the network, `restore.bank` the codes; the rest decodes)."""
    if getattr(mf.config, "kind", None) == "conv":      # aezip.conv.model.ConvModel: its own layout
        return mf.tensors()
    tensors = {f"float.{k}": v for k, v in mf.float_weights().items()}
    tensors["entropy.tables"] = np.ascontiguousarray(mf.tables, np.int64)
    if mf.residual_prior is not None:                # None only in a lossy file's decode-side model
        tensors["residual.prior"] = np.ascontiguousarray(mf.residual_prior, np.int16)   # each row sums to <= 4096
    tensors.update(mf.intdec.tensors())
    if mf.pixel is not None:
        tensors.update(mf.pixel.tensors(WITH_LATENTS))
    if mf.pixel_alone is not None:
        tensors.update(mf.pixel_alone.tensors(ALONE))
    if mf.context is not None:
        tensors.update(mf.context.tensors())
    if mf.raster is not None:
        tensors.update(mf.raster.tensors())
    if mf.bank is not None:
        tensors["restore.bank"] = np.ascontiguousarray(mf.bank)
    return tensors


def model_bytes(mf: ModelFile) -> bytes:
    """Serialize deterministically: same inputs, same bytes (so same seed and data give the same model id)."""
    if mf.decode_only:
        raise InputError(f"{mf.path}: a decode-side model cannot be saved as a model file (.aezm)")
    tensors = model_tensors(mf)
    meta = {"format": FORMAT, "format_version": FORMAT_VERSION, "aezip_version": __version__,
            "config": mf.config.to_dict(), "info": mf.info}
    # One metadata key: safetensors writes a map's keys in no fixed order, and the file must be reproducible.
    return st_save_numpy(tensors, metadata={METADATA_KEY: json.dumps(meta, sort_keys=True)})


def save_model(path: str | Path, mf: ModelFile, *, force: bool = False) -> str:
    """Write a model file atomically; returns its id."""
    data = model_bytes(mf)
    with atomic_path(path, force=force) as tmp:
        tmp.write_bytes(data)
    return hashlib.sha256(data).hexdigest()


def _metadata(data: bytes) -> object:
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    return json.loads((header.get("__metadata__") or {}).get(METADATA_KEY, "{}"))


def load_model(path: str | Path | None = None) -> ModelFile:
    """Load a model file (the packaged default when path is None) or a decode-side model file (.aezd, see
    decodemodel.py), checking every part before building on it."""
    path = Path(path) if path is not None else default_model_path()
    try:
        if path.stat().st_size > MAX_MODEL_BYTES:
            raise InputError(f"{path}: larger than {MAX_MODEL_BYTES >> 20} MiB; not an aezip model file")
        data = path.read_bytes()
    except FileNotFoundError:
        raise InputError(f"{path}: no such model file") from None
    except IsADirectoryError:
        raise InputError(f"{path}: is a folder, not a model file") from None
    except OSError as exc:
        raise InputError(f"{path}: cannot read model file ({exc.strerror})") from None
    from aezip.files.decodemodel import is_decoder, load_decoder
    if is_decoder(data):
        return load_decoder(path, data)
    try:
        meta = _metadata(data)
        tensors = st_load_numpy(data)
    except Exception:   # safetensors raises its own error types; any of them means the same to a user
        raise FormatError(f"{path}: not an aezip model file (not valid safetensors)") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise FormatError(f"{path}: not an aezip model file (no aezip metadata)")
    if meta.get("format_version") != FORMAT_VERSION:
        raise FormatError(f"{path}: model format version {meta.get('format_version')!r} is not supported "
                          f"(this aezip reads version {FORMAT_VERSION})")
    config = meta.get("config")
    if isinstance(config, dict) and config.get("kind") == "conv":
        from aezip.conv.model import ConvModel
        info = meta.get("info", {})
        try:
            return ConvModel.from_tensors(config, tensors, info if isinstance(info, dict) else {},
                                          hashlib.sha256(data).hexdigest(), path)
        except FormatError as exc:
            raise FormatError(f"{path}: damaged aezip model file ({exc})") from None
    try:
        config_dict = check_config(config)
        check_tensors(config_dict, tensors)
        info = meta.get("info", {})
        if not isinstance(info, dict):
            raise FormatError("info is not a mapping")
    except FormatError as exc:
        raise FormatError(f"{path}: damaged aezip model file ({exc})") from None
    config = AEConfig.from_dict(config_dict)
    weights = {k[len("float."):]: v for k, v in tensors.items() if k.startswith("float.")}   # the network: lazily
    intdec = IntegerDecoder.from_tensors({k: v for k, v in tensors.items() if k.startswith("intdec.")})
    return ModelFile(None, tensors["entropy.tables"], intdec, tensors["residual.prior"].astype(np.int64), info,
                     tensors.get("restore.bank"), hashlib.sha256(data).hexdigest(), path, config=config,
                     weights=weights, pixel=PixelMLP.from_tensors(tensors, WITH_LATENTS),
                     pixel_alone=PixelMLP.from_tensors(tensors, ALONE), context=ContextModel.from_tensors(tensors),
                     raster=RasterNet.from_tensors(tensors))


def describe(mf: ModelFile) -> dict:
    """What a model file holds, JSON-ready: its id, architecture, training summary and sizes (its decode-side model's
    too: all of it, and the part a lossy file embeds)."""
    from aezip.files.decodemodel import decoder_bytes
    cfg = mf.config
    if cfg.kind == "conv":
        return {"path": str(mf.path), "model_id": mf.id, "bytes": mf.path.stat().st_size if mf.path else None,
                "decode_only": mf.decode_only, "decode_side_bytes": len(decoder_bytes(mf)),
                "decode_side_rate_bytes": [len(decoder_bytes(mf, rates=(g,))) if p is not None else None
                                           for g, p in enumerate(mf.points)], **cfg.to_dict(), "training": mf.info}
    return {"path": str(mf.path), "model_id": mf.id, "bytes": mf.path.stat().st_size if mf.path else None,
            "decode_only": mf.decode_only, "decode_side_bytes": len(decoder_bytes(mf)),
            "decode_side_lossy_bytes": len(decoder_bytes(mf, max_error_parts=False)),
            "image_shape": list(cfg.image_shape), "hidden": list(cfg.hidden), "latent": cfg.latent,
            "levels": cfg.levels, "tiles": {"patch": cfg.patch, "margin": cfg.margin, "context": cfg.context}
            if cfg.patch else None, "code_bank_images": 0 if mf.bank is None else int(len(mf.bank)),
            "max_error_parts": [name for name, part in (("pixel model", mf.pixel), ("pixel model alone", mf.pixel_alone),
                                                        ("raster network", mf.raster)) if part is not None],
            "training": mf.info}
