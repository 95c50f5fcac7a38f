"""Build photos256-{train,heldout}.npy: 64 crops of 256 x 256 RGB from scikit-image's photographs, 8 per photograph,
split by photograph (6 for training: 48 crops; rocket and colorwheel held out: 16 crops). Nothing is downloaded:
the photographs ship with scikit-image (pip install scikit-image). Deterministic (seed 0).

    python benchmarks/make_photos256.py data/photos256
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import skimage.data as sd

TRAIN = ["astronaut", "coffee", "chelsea", "immunohistochemistry", "hubble_deep_field", "retina"]
HELDOUT = ["rocket", "colorwheel"]
SIZE, PER_PHOTO = 256, 8


def crops(name: str, rng: np.random.Generator) -> np.ndarray:
    """PER_PHOTO random SIZE x SIZE crops of one photograph."""
    img = np.asarray(getattr(sd, name)(), dtype=np.uint8)[..., :3]
    ys = rng.integers(0, img.shape[0] - SIZE + 1, PER_PHOTO)
    xs = rng.integers(0, img.shape[1] - SIZE + 1, PER_PHOTO)
    return np.stack([img[y:y + SIZE, x:x + SIZE] for y, x in zip(ys, xs)])


def main(out: Path) -> None:
    rng = np.random.default_rng(0)
    out.mkdir(parents=True, exist_ok=True)
    for part, names in (("train", TRAIN), ("heldout", HELDOUT)):
        x = np.concatenate([crops(n, rng) for n in names])
        np.save(out / f"photos256-{part}.npy", x)
        print(f"{out / f'photos256-{part}.npy'}: {x.shape}")


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "data/photos256"))
