"""Add the raster network (aezip/coding/rasternet.py) to an existing model file, keeping everything else (the default
model unless -m).

    python benchmarks/add_raster_net.py --out /tmp/default-raster.aezm                 # default AE, MNIST 0-7999

The network is trained on the model's integer predictions of the images at the latent qualities --effort max weighs
(codec.quality_predictions, rastertrain.fit_raster), exactly as `aezip train` does after its pixel models; the result has a new id, so files written with the old one still need
the old one (or its decode-side model).
"""
from __future__ import annotations

import argparse
from pathlib import Path

from aezip.codec import parse_range, quality_predictions
from aezip.coding.rastertrain import fit_raster, raster_applies
from aezip.files.data import open_dataset
from aezip.files.modelfile import load_model, save_model

MNIST = Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist" / "t10k-images-idx3-ubyte.gz"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-m", "--model", default=None, help="model file [default: the embedded one]")
    ap.add_argument("--data", default=str(MNIST))
    ap.add_argument("--range", default="0:8000", help="training images A:B")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    mf = load_model(args.model)
    images = open_dataset(args.data).read_all()
    lo, hi = parse_range(args.range, len(images))
    images = images[lo:hi]
    if not raster_applies(mf.config.image_shape):
        raise SystemExit("the raster network is for one-channel images")
    mf.raster = fit_raster(images.reshape(len(images), -1), quality_predictions(mf, images), mf.config.image_shape,
                           args.seed)
    mf.info["raster_net"] = {"data": Path(args.data).name, "range": [lo, hi], "seed": args.seed}
    print(f"wrote {args.out} (model id {save_model(args.out, mf, force=True)[:16]})")


if __name__ == "__main__":
    main()
