"""A codec model's architecture and quantization, and the shapes of its float weights (no torch needed).

Two layouts: a whole-image model (patch 0) is an MLP over the flattened image, for images of exactly its
image_shape; a tile model (patch p > 0) shares one encoder and one decoder across the p x p tiles of an image (see
tiles.py), so its size does not depend on H x W and it codes images of any H x W with its channel count."""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import ClassVar

from aezip.network.tiles import hwc, tile_count

MAX_PATCH = 256
MAX_MARGIN = 64
MAX_CONTEXT = 8


@dataclass(frozen=True)
class AEConfig:
    """Architecture and quantization of a codec model."""

    image_shape: tuple[int, ...]           # H x W or H x W x C of one (training) image
    hidden: tuple[int, ...] = (512, 256)   # encoder widths; the decoder mirrors them
    latent: int = 24                       # latents per image (whole-image model) or per tile (tile model)
    levels: int = 24                       # latent codes are integers 0 .. levels-1
    patch: int = 0                         # tile side p; 0: the whole-image model
    margin: int = 0                        # tile model: the encoder sees p + 2*margin pixels square per tile
    context: int = 0                       # tile model: the decoder sees the latents of (2*context+1)^2 tiles
    kind: ClassVar[str] = "mlp"            # aezip.conv.model.ConvConfig's is "conv"

    def __post_init__(self) -> None:
        object.__setattr__(self, "image_shape", tuple(int(s) for s in self.image_shape))
        object.__setattr__(self, "hidden", tuple(int(s) for s in self.hidden))
        if self.latent < 1 or any(h < 1 for h in self.hidden):
            raise ValueError("layer widths must be positive")
        if not 2 <= self.levels <= 65536:
            raise ValueError(f"levels must lie in 2..65536, got {self.levels}")
        if not 0 <= self.patch <= MAX_PATCH:
            raise ValueError(f"patch must lie in 0..{MAX_PATCH} (0: the whole-image model), got {self.patch}")
        if not 0 <= self.margin <= MAX_MARGIN or not 0 <= self.context <= MAX_CONTEXT:
            raise ValueError(f"margin must lie in 0..{MAX_MARGIN} and context in 0..{MAX_CONTEXT}")
        if not self.patch and (self.margin or self.context):
            raise ValueError("margin and context apply to tile models (patch > 0) only")

    @property
    def channels(self) -> int:
        return hwc(self.image_shape)[2]

    @property
    def input_dim(self) -> int:
        """Samples of one training image."""
        return math.prod(self.image_shape)

    @property
    def encoder_in(self) -> int:
        """Samples the encoder reads per row: the image, or a tile's window."""
        return (self.patch + 2 * self.margin) ** 2 * self.channels if self.patch else self.input_dim

    @property
    def decoder_in(self) -> int:
        """Latents the decoder reads per row: the image's, or those of a tile's neighbourhood."""
        return (2 * self.context + 1) ** 2 * self.latent if self.patch else self.latent

    @property
    def decoder_out(self) -> int:
        """Samples the decoder writes per row: the image, or one tile."""
        return self.patch ** 2 * self.channels if self.patch else self.input_dim

    def rows(self, image_shape: tuple[int, ...] | None = None) -> int:
        """Rows of latent codes per image (of the training shape by default): 1, or its tiles."""
        return tile_count(image_shape or self.image_shape, self.patch) if self.patch else 1

    def fits(self, image_shape: tuple[int, ...]) -> str | None:
        """None if the model codes images of this shape, else why not (one line)."""
        want, got = "x".join(map(str, self.image_shape)), "x".join(map(str, image_shape))
        if self.patch:
            if len(image_shape) not in (2, 3) or hwc(image_shape)[2] != self.channels:
                return (f"images are {got} with {hwc(image_shape)[2] if len(image_shape) in (2, 3) else '?'} "
                        f"channel(s), but the model is a {self.patch}x{self.patch} tile model for "
                        f"{self.channels} channel(s)")
            return None
        if tuple(image_shape) != self.image_shape:
            return f"images are {got} but the model expects {want}"
        return None

    def to_dict(self) -> dict:
        """The config as stored; a whole-image model's has no tile fields (as before tile models existed)."""
        d = asdict(self)
        if not self.patch:
            for k in ("patch", "margin", "context"):
                d.pop(k)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "AEConfig":
        return cls(image_shape=tuple(d["image_shape"]), hidden=tuple(d["hidden"]), latent=int(d["latent"]),
                   levels=int(d["levels"]), patch=int(d.get("patch", 0)), margin=int(d.get("margin", 0)),
                   context=int(d.get("context", 0)))

    def layer_dims(self) -> tuple[list[int], list[int]]:
        """The encoder's and the decoder's widths, input first."""
        return ([self.encoder_in, *self.hidden, self.latent],
                [self.decoder_in, *self.hidden[::-1], self.decoder_out])

    def weight_shapes(self) -> dict[str, tuple[int, ...]]:
        """The float weights' names and shapes, as the network's state dict has them."""
        shapes: dict[str, tuple[int, ...]] = {}
        for part, ds in zip(("encoder", "decoder"), self.layer_dims()):
            for i, (a, b) in enumerate(zip(ds[:-1], ds[1:])):
                shapes[f"{part}.{i}.weight"] = (b, a)
                shapes[f"{part}.{i}.bias"] = (b,)
        return shapes
