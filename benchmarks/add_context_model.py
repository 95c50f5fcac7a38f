"""Add the latents' context entropy model (aezip/coding/context.py) to an existing model, counted on its training images.

    python benchmarks/add_context_model.py [-m MODEL] [--data D --range 0:8000] --out M.aezm

The network, tables and everything else are kept; only the context tensors are added (so files written with the
new model differ from the old one's in their latent streams only, and the new model has a new id). The tables are
counted on every image of --range, the training run's validation split included, so measure the result on held-out
images (8000-9999 for MNIST), not on that split.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from aezip.chunks import chunk_codes
from aezip.coding.context import fit_context
from model_parts import model_and_images, parser


def main() -> None:
    args = parser(__doc__).parse_args()
    mf, images, (lo, hi) = model_and_images(args)
    codes = np.concatenate([chunk_codes(mf, images[a:a + 4096], "torch", "cpu") for a in range(0, len(images), 4096)])
    mf.context = fit_context(codes, mf.config.levels)
    mf.info = {**mf.info, "context_model": {"fitted_on": f"{Path(args.data).name} {lo}:{hi}"}}
    print(f"wrote {args.out} (model id {mf.save(args.out)[:16]})")


if __name__ == "__main__":
    main()
