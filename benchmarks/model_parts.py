"""What the scripts that add a part to an existing model file share (add_context_model.py, add_pixel_model.py,
add_raster_net.py): their common arguments, and the model with its training images."""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from aezip.codec import parse_range
from aezip.files.data import open_dataset
from aezip.files.modelfile import ModelFile, load_model

MNIST = Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist" / "t10k-images-idx3-ubyte.gz"


def parser(doc: str) -> argparse.ArgumentParser:
    """-m/--model, --data, --range and --out, described by the script's docstring."""
    ap = argparse.ArgumentParser(description=doc.splitlines()[0])
    ap.add_argument("-m", "--model", default=None, help="model file [default: the embedded one]")
    ap.add_argument("--data", default=str(MNIST), help="its training data")
    ap.add_argument("--range", default="0:8000", help="training images A:B")
    ap.add_argument("--out", required=True)
    return ap


def model_and_images(args: argparse.Namespace) -> tuple[ModelFile, np.ndarray, tuple[int, int]]:
    """The model, the images of --range of --data, and that range."""
    mf = load_model(args.model)
    images = open_dataset(args.data).read_all()
    lo, hi = parse_range(args.range, len(images))
    return mf, images[lo:hi], (lo, hi)
