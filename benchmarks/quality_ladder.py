"""Compare models' quality ladders (aezip encode --quality 2..L) on one set of images, from real file bytes.

    python benchmarks/quality_ladder.py DATA -m a.aezm -m b.aezm [--range 8000:10000 | --validation 0:8000]

--validation A:B measures on the validation images that `aezip train --range A:B` (default --val-split and --seed)
kept apart: the split the models did not train on, for choosing between training recipes without touching the
held-out images. Prints every ladder point and the BD-rate of each model's ladder against the first model's.
"""
from __future__ import annotations

import argparse
import json

import numpy as np

import aezip
from aezip.bench.bdrate import METHODS, bd_rate
from aezip.metrics import bits_per_pixel, psnr
from aezip.options import TrainOptions, parse_range


def ladder(images: np.ndarray, mf: aezip.Model) -> list[tuple[int, float, float]]:
    """(quality, bits/pixel, PSNR dB) of every ladder level of `mf` on `images`."""
    points = []
    for q in range(2, mf.config.levels + 1):
        blob = aezip.compress(images, mf, quality=q)
        points.append((q, bits_per_pixel(len(blob), images), psnr(images, aezip.decompress(blob, mf))))
    return points


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("data")
    ap.add_argument("-m", "--model", action="append", required=True)
    ap.add_argument("--range", help="images A:B to measure on")
    ap.add_argument("--validation", metavar="A:B", help="the validation split of a training run on images A:B")
    ap.add_argument("-o", "--output", help="write the points as JSON here")
    args = ap.parse_args()
    images = aezip.open_data(args.data).read_all()
    if args.validation:
        from aezip.network.training import _split
        lo, hi = parse_range(args.validation, len(images))
        _, val = _split(hi - lo, TrainOptions.val_split, TrainOptions.seed)
        images, where = images[lo:hi][val], f"the {len(val)} validation images of a training run on {lo}:{hi}"
    else:
        lo, hi = parse_range(args.range, len(images))
        images, where = images[lo:hi], f"images {lo}:{hi}"
    print(f"{args.data}, {where}; bits/pixel from file bytes")
    curves = {}
    for path in args.model:
        curves[path] = ladder(images, aezip.load_model(path))
        print(path + ": " + "  ".join(f"Q{q} {b:.4f}/{p:.2f}" for q, b, p in curves[path]))
    anchor = [(b, p) for _, b, p in curves[args.model[0]]]
    result = {"where": where, "curves": curves, "bd_rate_percent": {}}
    for path in args.model[1:]:
        test = [(b, p) for _, b, p in curves[path]]
        bd = {m: bd_rate(anchor, test, m) for m in METHODS}
        result["bd_rate_percent"][path] = bd
        print(f"BD-rate {path} vs {args.model[0]}: " + ", ".join(
            f"{m} {'n/a' if v is None else f'{v:+.1f} %'}" for m, v in bd.items()))
    if args.output:
        with open(args.output, "w") as f:
            json.dump(result, f, indent=1)


if __name__ == "__main__":
    main()
