"""Add the learned pixel models to an existing model file, keeping its autoencoder (the default one unless -m).

    python benchmarks/add_pixel_model.py --out /tmp/default-pixel.aezm                 # default AE, MNIST 0-7999
    python benchmarks/add_pixel_model.py -m gray.aezm --data natural32-gray-train.npy --out gray-pixel.aezm

The pixel model is trained on the model's own integer predictions of the images (pixeltrain.fit_pixel_model),
exactly as `aezip train` does after its autoencoder, and so is the pixel model without latents (its prediction is
the training images' mean); the result has a new id, so files written with the old one still need the old one.
"""
from __future__ import annotations

from pathlib import Path

import torch

from aezip.coding.intdecoder import integer_decode
from aezip.files.modelfile import save_model
from aezip.options import PixelOptions
from aezip.coding.pixeltrain import fit_pixel_model
from aezip.tensors import to_unit
from model_parts import model_and_images, parser


def main() -> None:
    ap = parser(__doc__)
    ap.add_argument("--hidden", default="32,32")
    ap.add_argument("--scales", type=int, default=PixelOptions.scales)
    ap.add_argument("--levels", type=int, default=1)
    ap.add_argument("--alone-levels", type=int, default=3, help="levels of the model without latents (0: none)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    mf, images, (lo, hi) = model_and_images(args)
    with torch.no_grad():
        pred = integer_decode(mf.intdec, mf.model.codes(to_unit(images), "torch").numpy())
    opts = PixelOptions(hidden=tuple(int(h) for h in args.hidden.split(",")), scales=args.scales)
    mf.pixel = fit_pixel_model(images.reshape(len(images), -1), pred, mf.config.image_shape, opts, args.levels,
                               args.seed)
    if args.alone_levels:
        mf.pixel_alone = fit_pixel_model(images.reshape(len(images), -1), None, mf.config.image_shape, opts,
                                         args.alone_levels, args.seed)
    mf.info["pixel_model"] = {"data": Path(args.data).name, "range": [lo, hi], "hidden": list(opts.hidden),
                              "scales": opts.scales, "levels": args.levels, "alone_levels": args.alone_levels,
                              "seed": args.seed}
    print(f"wrote {args.out} (model id {save_model(args.out, mf, force=True)[:16]})")


if __name__ == "__main__":
    main()
