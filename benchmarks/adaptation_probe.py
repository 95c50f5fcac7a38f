"""Which parts of a conv model pay when fine-tuned on the very images it codes? A probe before building more of
`aezip encode --adapt` (aezip/conv/adapt.py, which adapts the encoder alone).

The whole model (every rate point) is fine-tuned on the images to be coded for a wall-time budget
(aezip.conv.adapt.fine_tune: what `--adapt` runs, Adam on the training objective, no augmentation), with only the
named parts trainable:
  enc         the analysis and hyper-analysis: encode side only, free (what `--adapt` does)
  dec-bias    the synthesis' biases and inverse-GDN betas
  hyper-bias  the hyper-synthesis' biases
  zprior      the hyper-latents' logistic mixtures
  all         every parameter
Then the model's decode side is rebuilt in integers (aezip.conv.model.build_model) and the ladder is measured with
REAL BYTES on the same images, with its BD-rate against the WebP-mosaic rows of a `bench codec` JSON of the same
images. Decode-side parts would have to travel in the file; their parameter count is printed, their bytes are NOT in
the rates (so those rows, and `all` above all, are upper bounds no file carries as such).

    python benchmarks/adaptation_probe.py grayconv3.aezm gray-heldout.npy codec-gray-conv3.json enc,dec-bias 600
"""
from __future__ import annotations

import argparse
import json

import numpy as np
import torch

import aezip
from aezip.bench.bdrate import bd_rate
from aezip.conv.adapt import fine_tune
from aezip.conv.model import build_model
from aezip.metrics import psnr

PARTS = {"enc": ("enc.", "h_enc."), "dec-bias": ("dec.",), "hyper-bias": ("h_dec.",), "zprior": ("z_prior.",)}


def trainable(name: str, parts: list[str]) -> bool:
    """Whether parameter `name` of a ConvCodec is one of the named parts."""
    if "all" in parts:
        return True
    if name.startswith(("dec.", "h_dec.")) and not name.endswith((".bias", ".beta")):
        return False                                     # of the synthesis networks, biases and betas only
    return any(name.startswith(PARTS[p]) for p in parts)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("model")
    ap.add_argument("images", help=".npy of the uint8 images to fine-tune on and code")
    ap.add_argument("report", help="bench codec JSON of the same images (its WebP-mosaic rows)")
    ap.add_argument("parts", help=f"comma-separated: {', '.join(PARTS)}, all")
    ap.add_argument("seconds", type=float)
    ap.add_argument("--lr", type=float, default=2e-4)
    args = ap.parse_args()
    parts = args.parts.split(",")
    if not set(parts) <= {*PARTS, "all"}:
        ap.error(f"parts: {args.parts}")
    torch.set_num_threads(1)
    images = np.load(args.images)
    mf = aezip.load_model(args.model)
    model = mf.model
    decode_side = sum(p.numel() for n, p in model.named_parameters()
                      if trainable(n, parts) and not n.startswith(PARTS["enc"]))
    steps = fine_tune(model, images, mf.config.lambdas, lambda name: trainable(name, parts), 10 ** 9,
                      lr=args.lr, seconds=args.seconds)
    adapted = build_model(model, dict(mf.info), images)
    webp = [(r["bits_per_pixel"], r["psnr_db"]) for r in json.load(open(args.report))["rows"]
            if r["codec"] == "WebP" and "mosaic" in r["setting"]]
    points = []
    for q in range(1, adapted.config.rates + 1):
        blob = aezip.compress(images, adapted, quality=q)
        points.append((len(blob) * 8 / images.size, psnr(images, aezip.decompress(blob, adapted))))
    print(f"{args.parts}: {steps} steps in {args.seconds:g} s, {decode_side} decode-side parameters over "
          f"{mf.config.rates} rate points (not in the rates); ladder "
          + " ".join(f"{r:.4f}@{p:.2f}" for r, p in points)
          + f"; BD-rate vs WebP mosaic {bd_rate(webp, points, 'pchip'):+.1f} %")


if __name__ == "__main__":
    main()
