"""A codec model's architecture and quantization, and the shapes of its float weights (no torch needed)."""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class AEConfig:
    """Architecture and quantization of a codec model."""

    image_shape: tuple[int, ...]           # H x W or H x W x C of one image
    hidden: tuple[int, ...] = (512, 256)   # encoder widths; the decoder mirrors them
    latent: int = 24
    levels: int = 24                       # latent codes are integers 0 .. levels-1

    def __post_init__(self) -> None:
        object.__setattr__(self, "image_shape", tuple(int(s) for s in self.image_shape))
        object.__setattr__(self, "hidden", tuple(int(s) for s in self.hidden))
        if self.latent < 1 or any(h < 1 for h in self.hidden):
            raise ValueError("layer widths must be positive")
        if not 2 <= self.levels <= 65536:
            raise ValueError(f"levels must lie in 2..65536, got {self.levels}")

    @property
    def input_dim(self) -> int:
        return math.prod(self.image_shape)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "AEConfig":
        return cls(image_shape=tuple(d["image_shape"]), hidden=tuple(d["hidden"]), latent=int(d["latent"]),
                   levels=int(d["levels"]))

    def weight_shapes(self) -> dict[str, tuple[int, ...]]:
        """The float weights' names and shapes, as the network's state dict has them."""
        dims = [self.input_dim, *self.hidden, self.latent]
        shapes: dict[str, tuple[int, ...]] = {}
        for part, ds in (("encoder", dims), ("decoder", dims[::-1])):
            for i, (a, b) in enumerate(zip(ds[:-1], ds[1:])):
                shapes[f"{part}.{i}.weight"] = (b, a)
                shapes[f"{part}.{i}.bias"] = (b,)
        return shapes
