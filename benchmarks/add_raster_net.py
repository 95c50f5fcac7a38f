"""Add the raster network (aezip/coding/rasternet.py) to an existing model file, keeping everything else (the default
model unless -m).

    python benchmarks/add_raster_net.py --out /tmp/default-raster.aezm                 # default AE, MNIST 0-7999

The network is trained on the model's integer predictions of the images at the latent qualities --effort max weighs
(effort.quality_predictions, rastertrain.fit_raster), exactly as `aezip train` does after its pixel models; the result has a new id, so files written with the old one still need
the old one (or its decode-side model).
"""
from __future__ import annotations

from pathlib import Path

from aezip.effort import quality_predictions
from aezip.coding.rastertrain import fit_raster, raster_applies
from aezip.files.modelfile import save_model
from model_parts import model_and_images, parser


def main() -> None:
    ap = parser(__doc__)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    mf, images, (lo, hi) = model_and_images(args)
    if not raster_applies(mf.config.image_shape):
        raise SystemExit("the raster network is for one-channel images")
    mf.raster = fit_raster(images.reshape(len(images), -1), quality_predictions(mf, images), mf.config.image_shape,
                           args.seed)
    mf.info["raster_net"] = {"data": Path(args.data).name, "range": [lo, hi], "seed": args.seed}
    print(f"wrote {args.out} (model id {save_model(args.out, mf, force=True)[:16]})")


if __name__ == "__main__":
    main()
