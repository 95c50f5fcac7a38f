"""Add the latents' context entropy model (aezip/coding/context.py) to an existing model, counted on its training images.

    python benchmarks/add_context_model.py [-m MODEL] [--data D --range 0:8000] --out M.aezm

The network, tables and everything else are kept; only the context tensors are added (so files written with the
new model differ from the old one's in their latent streams only, and the new model has a new id). The tables are
counted on every image of --range, the training run's validation split included, so measure the result on held-out
images (8000-9999 for MNIST), not on that split.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from aezip.codec import chunk_codes
from aezip.coding.context import fit_context
from aezip.files.data import open_dataset
from aezip.files.modelfile import load_model
from aezip.options import parse_range

MNIST = Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist" / "t10k-images-idx3-ubyte.gz"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-m", "--model", help="the model [default: the embedded one]")
    ap.add_argument("--data", default=str(MNIST), help="its training data")
    ap.add_argument("--range", default="0:8000", help="its training images A:B")
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    mf = load_model(args.model)
    images = open_dataset(args.data).read_all()
    lo, hi = parse_range(args.range, len(images))
    codes = np.concatenate([chunk_codes(mf, images[a:a + 4096], "torch", "cpu") for a in range(lo, hi, 4096)])
    mf.context = fit_context(codes, mf.config.levels)
    mf.info = {**mf.info, "context_model": {"fitted_on": f"{Path(args.data).name} {lo}:{hi}"}}
    print(f"wrote {args.out} (model id {mf.save(args.out)[:16]})")


if __name__ == "__main__":
    main()
