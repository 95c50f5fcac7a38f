"""A convolutional codec's model: its architecture (ConvConfig), its float network (to encode and train) and the
integer decode side of each rate point (integer.RatePoint), stored in the same model-file format as the MLP codec
(aezip.files.modelfile: safetensors, config and info in the metadata, the config's "kind" "conv") and in the same
decode-side format (aezip.files.decodemodel), so `-m`, `--embed-model`, `aezip info` and `model export-decoder` serve
both. Every tensor of an untrusted file is checked against the config before it is used."""
from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np

from aezip.coding.intconv import expect_tensor
from aezip.conv.integer import RatePoint
from aezip.conv.layout import MAX_RATES
from aezip.errors import FormatError
from aezip.files.modelcheck import check_residual_prior
from aezip.files.modelfile import CodecModel

KIND = "conv"
MAX_WIDTH = 512
MAX_CHANNELS = 4


@dataclass(frozen=True)
class ConvConfig:
    """Architecture of a convolutional codec: image channels, the rate ladder's lambdas (one rate point each, lowest
    rate first) and the widths per rate point."""

    channels: int
    lambdas: tuple[float, ...]
    n: int = 64
    m: int = 64
    z: int = 32
    kind: ClassVar[str] = KIND

    def __post_init__(self) -> None:
        object.__setattr__(self, "lambdas", tuple(float(v) for v in self.lambdas))

    @property
    def rates(self) -> int:
        return len(self.lambdas)

    @property
    def levels(self) -> int:
        """What a .aez header's `levels` records for this model: its number of rate points (`--quality` 1..levels)."""
        return self.rates

    @property
    def latent(self) -> int:
        """Latent channels (a .aez header's `latent`)."""
        return self.m

    @property
    def image_shape(self) -> tuple[int, ...]:
        """The shape it was made for, as far as it has one: any H x W with its channel count."""
        return (0, 0, self.channels) if self.channels > 1 else (0, 0)

    def fits(self, image_shape: tuple[int, ...]) -> str | None:
        """None if the model codes images of this shape (any H x W with its channels), else why not."""
        c = int(image_shape[2]) if len(image_shape) == 3 else 1
        if len(image_shape) not in (2, 3) or c != self.channels:
            got = "x".join(map(str, image_shape))
            return f"images are {got}, but the model is a convolutional model for {self.channels} channel(s)"
        return None

    def to_dict(self) -> dict:
        return {"kind": KIND, "channels": self.channels, "lambdas": list(self.lambdas), "n": self.n, "m": self.m,
                "z": self.z}

    @classmethod
    def from_dict(cls, d: object) -> "ConvConfig":
        """A config from a model file's metadata, bounded; FormatError if it is not one."""
        def count(key: str, hi: int) -> int:
            v = d.get(key)
            if not isinstance(v, int) or isinstance(v, bool) or not 1 <= v <= hi:
                raise FormatError(f"config {key} {v!r} outside 1..{hi}")
            return v

        if not isinstance(d, dict) or d.get("kind") != KIND:
            raise FormatError("config is not a convolutional model's")
        lambdas = d.get("lambdas")
        if not isinstance(lambdas, list) or not 1 <= len(lambdas) <= MAX_RATES or not all(
                isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and v > 0
                for v in lambdas):
            raise FormatError(f"config lambdas {str(lambdas)[:60]} is not 1..{MAX_RATES} positive numbers")
        c = count("channels", MAX_CHANNELS)
        if c == 2:
            raise FormatError("config channels 2 is not gray, RGB or RGBA")
        return cls(c, tuple(lambdas), count("n", MAX_WIDTH), count("m", MAX_WIDTH), count("z", MAX_WIDTH))

    def weight_shapes(self) -> dict[str, tuple[int, ...]]:
        """The float network's state-dict names and shapes (aezip.conv.network.ConvCodec with prior `hyper`)."""
        g, c, n, m, z = self.rates, self.channels, self.n, self.m, self.z
        shapes: dict[str, tuple[int, ...]] = {}

        def layer(name: str, w: tuple[int, ...], bias: int) -> None:
            shapes[f"{name}.weight"], shapes[f"{name}.bias"] = w, (bias,)

        def gdn(name: str, ch: int) -> None:
            shapes[f"{name}.beta"], shapes[f"{name}.gamma"] = (g * ch,), (g * ch, ch, 1, 1)

        layer("enc.0", (g * n, c, 5, 5), g * n), gdn("enc.1", n), layer("enc.2", (g * n, n, 5, 5), g * n)
        gdn("enc.3", n), layer("enc.4", (g * m, n, 5, 5), g * m)
        layer("dec.0", (g * m, n, 5, 5), g * n), gdn("dec.1", n), layer("dec.2", (g * n, n, 5, 5), g * n)
        gdn("dec.3", n), layer("dec.4", (g * n, c, 5, 5), g * c)
        layer("h_enc.0", (g * n, m, 3, 3), g * n), layer("h_enc.2", (g * z, n, 5, 5), g * z)
        layer("h_dec.0", (g * z, n, 5, 5), g * n), layer("h_dec.2", (g * 2 * m, n, 3, 3), g * 2 * m)
        for k in ("logits", "means", "log_scales"):
            shapes[f"z_prior.{k}"] = (g * z, 3)
        return shapes


class ConvModel(CodecModel):
    """A convolutional codec model: config, the decode side of every rate point (a decode-side model embedded in a
    file may hold only the one its file uses: the others None), and (unless decode-side only) the float network's
    weights, from which the torch network is built on first use."""

    pixel = pixel_alone = raster = None     # the MLP models' learned pixel models: a conv model has none yet

    def __init__(self, config: ConvConfig, points: list[RatePoint | None], weights: dict[str, np.ndarray] | None = None,
                 info: dict | None = None, id: str = "", path: Path | None = None, model=None,
                 residual_prior: np.ndarray | None = None) -> None:
        self._config = config
        self.points = points
        self.residual_prior = residual_prior       # the max-error coder's initial context counts (None: a lossy
        #                                            file's decode-side model)
        self._weights = weights or {}
        self._model = model
        self._encoders: dict[int, object] = {}
        self.info = info if info is not None else {}
        self.id = id
        self.path = path

    @property
    def config(self) -> ConvConfig:
        return self._config

    def _network(self):
        """An untrained aezip.conv.network.ConvCodec of this config."""
        from aezip.conv.network import ConvCodec
        cfg = self._config
        return ConvCodec(cfg.channels, cfg.rates, "hyper", cfg.n, cfg.m, cfg.z)

    def encoder(self, rate: int):
        """Rate point `rate` (0-based) of the float network alone (a one-group ConvCodec), built once."""
        if rate not in self._encoders:
            self._encoders[rate] = self.model.single(rate)
        return self._encoders[rate]

    def with_encoder(self, rate: int, net) -> "ConvModel":
        """This model with rate point `rate`'s encoder (a one-group ConvCodec) replaced by `net` (aezip.conv.adapt);
        everything decoding reads is shared, unchanged."""
        other = copy.copy(self)
        other._encoders = {**self._encoders, rate: net}
        return other

    def with_point(self, rate: int, point: RatePoint) -> "ConvModel":
        """This model with rate point `rate`'s decode side replaced by `point` (a decoder patch, aezip.conv.patch)."""
        other = copy.copy(self)
        other.points = [point if g == rate else p for g, p in enumerate(self.points)]
        return other

    def tensors(self) -> dict[str, np.ndarray]:
        """Every tensor of the model file: `float.*` the network, `conv.rate<g>.*` rate point g's decode side (those
        it holds), `residual.prior` the max-error coder's prior."""
        out = {f"float.{k}": np.ascontiguousarray(v, np.float32) for k, v in self.float_weights().items()}
        for g, point in enumerate(self.points):
            if point is not None:
                out.update(point.tensors(f"conv.rate{g}"))
        if self.residual_prior is not None:
            out["residual.prior"] = np.ascontiguousarray(self.residual_prior, np.int16)   # rows sum to <= 4096
        return out

    @classmethod
    def from_tensors(cls, config: dict, tensors: dict[str, np.ndarray], info: dict, id: str, path: Path | None,
                     *, decode_only: bool = False) -> "ConvModel":
        """A model from an untrusted file's config and tensors, every one checked; FormatError otherwise."""
        cfg = ConvConfig.from_dict(config)
        expected = set()
        weights = {}
        points: list[RatePoint | None] = []
        try:
            for name, shape in cfg.weight_shapes().items() if not decode_only else ():
                weights[name] = expect_tensor(tensors, f"float.{name}", "float32", shape)
                expected.add(f"float.{name}")
            for g in range(cfg.rates):
                if decode_only and not any(k.startswith(f"conv.rate{g}.") for k in tensors):
                    points.append(None)
                    continue
                point = RatePoint.from_tensors(tensors, f"conv.rate{g}", cfg.channels, cfg.n, cfg.m, cfg.z)
                expected.update(point.tensors(f"conv.rate{g}"))
                points.append(point)
        except ValueError as exc:
            raise FormatError(str(exc)) from None
        if not any(points):
            raise FormatError("no rate point")
        expected |= check_residual_prior(tensors, required=not decode_only)
        extra = sorted(set(tensors) - expected)
        if extra:
            raise FormatError(f"unexpected tensors: {', '.join(extra[:5])}")
        prior = tensors.get("residual.prior")
        return cls(cfg, points, weights, info, id, path, residual_prior=None if prior is None else prior.astype(np.int64))


PRIOR_IMAGES = 2000     # training images the max-error coder's prior is counted on


def build_model(model, info: dict, images: np.ndarray) -> ConvModel:
    """A ConvModel from a trained float ConvCodec (prior `hyper`) and its uint8 training images (N x H x W[ x C]):
    its decode side made in integers rate by rate, and the max-error coder's prior counted on the top rate point's
    reconstructions of up to PRIOR_IMAGES of the images."""
    from aezip.coding.residual import context_prior
    from aezip.conv.coding import encode_images
    from aezip.conv.integer import rate_point
    cfg = ConvConfig(model.c, tuple(info.get("lambdas", ())), model.n, model.m, model.z)
    if cfg.rates != model.g:
        raise ValueError(f"info must list the model's {model.g} lambdas")
    mf = ConvModel(cfg, [rate_point(model, g) for g in range(model.g)], info=info, model=model.eval())
    sample = np.asarray(images[np.linspace(0, len(images) - 1, min(len(images), PRIOR_IMAGES)).astype(np.int64)])
    _, recon = encode_images(mf, cfg.rates - 1, sample)
    mf.residual_prior = context_prior(sample.reshape(len(sample), -1), recon, sample.shape[1:])
    return mf


def is_conv(mf: object) -> bool:
    """Whether a loaded model is a convolutional codec's."""
    return isinstance(mf, ConvModel)
