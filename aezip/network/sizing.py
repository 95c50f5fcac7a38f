"""Training defaults picked from the data: the architecture (whole-image or tile model, widths, latent size), the
number of epochs and the rate training, from the images' shape and count. Anything the user gives is kept;
`describe` says what was picked, so `aezip train` can print it."""
from __future__ import annotations

import math
from dataclasses import dataclass

from aezip.network.tiles import hwc, tile_count
from aezip.options import TrainOptions

WHOLE_IMAGE = {"hidden": (512, 256), "latent": 24, "levels": 24, "patch": 0, "margin": 0, "context": 0}
WHOLE_IMAGE_MAX_SAMPLES = 784      # at most this many samples per image (MNIST's 28 x 28): the whole-image model
WHOLE_IMAGE_EPOCHS = 160
TILE_STEPS = 6000                  # a tile model trains for about this many optimizer steps ...
TILE_EPOCHS = (30, 400)            # ... within these bounds on the epochs
TILE_VARIABLE_RATE = 2             # a tile model trains for every --quality from 2 up ...
TILE_RATE_WEIGHT = 0.05            # ... with R + lambda D: this weight times the latents' bits (README, "Photographs")
TILE_ROWS = 1024                   # a tile model's batch holds about this many tiles
CROP_TILES = 4                     # a tile model trains on crops of this many tiles square, cut from larger images
# the TrainOptions fields pick() chooses where they are not given: its keyword arguments and Picked's attributes
PICKED_OPTIONS = ("epochs", "batch_size", "augment", "patience", "variable_rate", "rate_weight")


@dataclass(frozen=True)
class Picked:
    """An architecture, epochs and batch size, and which of them were picked (not given)."""

    arch: dict
    epochs: int
    batch_size: int
    augment: str
    picked: tuple[str, ...]
    crop: int = 0                  # train on the images cut into crops of this side (0: whole images)
    patience: int = TrainOptions.patience   # early stop after this many epochs without progress
    variable_rate: int = TrainOptions.variable_rate   # train for every --quality from this one up (0: the top only)
    rate_weight: float = TrainOptions.rate_weight     # weight of the latents' bits in the loss (0: none)

    def describe(self) -> str:
        """One line: what was picked."""
        a = self.arch
        kind = (f"{a['patch']}x{a['patch']} tiles, margin {a['margin']}, context {a['context']}" if a["patch"]
                else "whole-image MLP")
        kind += f" (trained on {self.crop}x{self.crop} crops)" if self.crop else ""
        return (f"architecture: {kind}, hidden {','.join(map(str, a['hidden']))}, latent {a['latent']}, "
                f"levels {a['levels']}, {self.epochs} epochs of batch {self.batch_size}"
                + (", no early stop" if self.patience >= self.epochs else f", early stop after {self.patience}")
                + f", augment {self.augment or 'none'}"
                + (f", every quality from {self.variable_rate}" if self.variable_rate else "")
                + (f", rate weight {self.rate_weight:g}" if self.rate_weight else "") +
                (f" (picked from the data: {', '.join(self.picked)})" if self.picked else ""))


def tile_architecture(image_shape: tuple[int, ...]) -> dict:
    """A tile model for images of this shape: 8 x 8 tiles (smaller images: one tile that covers them), margin
    4 pixels, a 3 x 3 neighbourhood of latents, widths 256-128, 4 latents per tile (8 in colour): the
    architecture measured on the natural-image sets (README, "Tile models")."""
    h, w, c = hwc(image_shape)
    return {"hidden": (256, 128), "latent": 4 if c == 1 else 8, "levels": 24, "patch": min(8, max(h, w)),
            "margin": 4, "context": 1}


def pick(shape: tuple[int, ...], given: dict, val_split: float, epochs: int | None = None,
         batch_size: int | None = None, augment: str | None = None, patience: int | None = None,
         variable_rate: int | None = None, rate_weight: float | None = None) -> Picked:
    """The architecture, epochs, batch size, augmentations, early-stop patience and rate training for n images of
    H x W[ x C] (shape = (n, H, W[, C])); `given` holds the architecture fields the user set (others are None or
    absent). A tile model trains for every quality of its ladder with the latents' bits in its loss. A tile
    model trains on crops of CROP_TILES x CROP_TILES tiles of images larger than that (many small samples: the one
    or two images of a large batch are too few), epochs and batch counted in crops, and all its epochs: its
    validation PSNR is noisy enough that 30 epochs without progress stopped natural32-gray at epoch 93 of 400,
    1.8 dB below the whole run (the best epoch's weights are kept either way)."""
    image_shape = tuple(shape[1:])
    given = {k: v for k, v in given.items() if v is not None}
    samples = math.prod(image_shape)
    tile = given.get("patch", 0 if samples <= WHOLE_IMAGE_MAX_SAMPLES else None) != 0
    base = tile_architecture(image_shape) if tile else WHOLE_IMAGE
    arch = {**base, **given}
    if not tile:      # a margin or context given without a patch stays, for AEConfig to refuse
        arch.update({k: 0 for k in ("patch", "margin", "context") if k not in given})
    picked = tuple(k for k in ("patch", "hidden", "latent", "levels", "margin", "context")
                   if k not in given and (tile or k in ("patch", "hidden", "latent", "levels")))
    crop = CROP_TILES * arch["patch"]
    h, w, c = hwc(image_shape)
    crop = crop if tile and h >= crop and w >= crop and h * w > crop * crop else 0
    if crop:
        shape = (shape[0] * (h // crop) * (w // crop), crop, crop, c)
        image_shape = shape[1:]
    if batch_size is None:
        picked += ("batch",)
        batch_size = max(1, round(TILE_ROWS / tile_count(image_shape, arch["patch"]))) if tile else 64
    if epochs is None:
        picked += ("epochs",)
        steps = math.ceil(shape[0] * (1 - val_split) / batch_size)
        epochs = (min(max(round(TILE_STEPS / max(steps, 1)), TILE_EPOCHS[0]), TILE_EPOCHS[1]) if tile
                  else WHOLE_IMAGE_EPOCHS)
    if augment is None:
        picked += ("augment",)
        augment = ("flip,invert" + (",channels,contrast,zoom" if hwc(image_shape)[2] > 1 else "")) if tile else ""
    if patience is None:
        picked += ("patience",)
        patience = epochs if tile else TrainOptions.patience
    if variable_rate is None:
        picked += ("variable rate",)
        variable_rate = TILE_VARIABLE_RATE if tile else TrainOptions.variable_rate
    if rate_weight is None:
        picked += ("rate weight",)
        rate_weight = TILE_RATE_WEIGHT if tile else TrainOptions.rate_weight
    return Picked(arch, epochs, batch_size, augment, picked, crop, patience, variable_rate, rate_weight)
