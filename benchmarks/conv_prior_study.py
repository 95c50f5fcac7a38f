"""Feasibility study for issue #12: does a convolutional transform with a learned prior beat PCA + zstd on the
held-out photographs, given the same training patches and a GPU for a few minutes?

Not a codec: rates are ENTROPY ESTIMATES (-log2 of the prior's probability of each rounded latent, summed, per pixel
position), not file bytes, and nothing here is bit-exact. They say whether building that codec (an integer decoder
for convolutions, an entropy coder for the prior) can reach the bar; aezip's own figures stay real file bytes.

Model: aezip.conv's (it became `aezip train --arch conv`; after Balle et al. 2017/2018): three 5x5 stride-2
convolutions with GDN (32x32 -> 4x4 x M latents), the mirror image with inverse GDN to decode, and one of two priors:
  factorized  a per-channel mixture of K discretized logistics;
  hyper       a mean-scale Gaussian conditioned on a 2x2 x Z hyper-latent that has a factorized prior.
G models with different lambdas train as one network (grouped convolutions), so one process and one set of kernel
launches trains the whole rate ladder. Loss per model: bits/pixel + lambda * MSE (8-bit units), uniform noise for
rounding during training; evaluation rounds (around the predicted mean with `hyper`).

    python benchmarks/conv_prior_study.py train TRAIN.npy HELDOUT.npy --prior hyper --seconds 240 --out study.jsonl
    python benchmarks/conv_prior_study.py compare study.jsonl --bench rgb=benchmarks/results/codec-rgb-zoom.json

(the H200 runs of 2026-11-30: benchmarks/results/gpu-h200-2026-11-30b.txt, sections 5-6; their command lines are in
README "Photographs: a convolutional transform with a learned prior").
"""
from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import numpy as np
import torch

from aezip.coding.hyperprior import decode, encode
from aezip.coding.intconv import integer_synthesize
from aezip.conv.integer import LATENT_FRAC_BITS, integer_synthesis, rate_point
from aezip.conv.network import ConvCodec
from aezip.conv.training import ConvTrainOptions, train_conv
from aezip.files.data import open_dataset
from aezip.metrics import psnr_from_mse
from aezip.network.tiles import hwc


def load(path: str) -> np.ndarray:
    """N x H x W x C uint8 images from any dataset aezip reads (.npy, .npz, IDX, an image folder)."""
    data = open_dataset(path)
    return data.read_all().reshape(data.shape[0], *hwc(data.image_shape))


@torch.no_grad()
def real_bytes(model: ConvCodec, images: np.ndarray, device: torch.device) -> list[tuple[float, float]]:
    """(bits/pixel position from the coded bytes, PSNR) per `hyper` model: the held-out set coded as one stream by
    aezip.coding.hyperprior and decoded back through the fixed-point networks (checked to rebuild the encoder's
    latents exactly)."""
    model.eval()
    x = torch.from_numpy(images).to(device).permute(0, 3, 1, 2).float() / 255.0
    y = torch.cat([model.analysis(x[i:i + 256]) for i in range(0, len(x), 256)])
    z = torch.round(torch.cat([model.h_enc(y[i:i + 256]) for i in range(0, len(y), 256)]))
    n, h, w, _ = images.shape
    points = []
    for g in range(model.g):
        point = rate_point(model.cpu(), g)
        model.to(device)
        y_g = y[:, g * model.m:(g + 1) * model.m].permute(0, 2, 3, 1).double().cpu().numpy()
        z_g = z[:, g * model.z:(g + 1) * model.z].permute(0, 2, 3, 1).double().cpu().numpy()
        data, latents = encode(y_g, z_g, point.hyper, point.tables)
        decoded = decode(data, z_g.shape, point.hyper, point.tables)
        if not np.array_equal(decoded, latents):
            raise AssertionError(f"model {g}: the decoder rebuilt other latents than the encoder's")
        pixels = integer_synthesize(point.synthesis, decoded)
        err = float(((pixels.astype(np.float64) - images) ** 2).sum())
        points.append((len(data) * 8 / (n * h * w), psnr_from_mse(err / images.size)))
    model.train()
    return points


@torch.no_grad()
def evaluate(model: ConvCodec, images: np.ndarray, device: torch.device, integer: bool = False
             ) -> list[tuple[float, float, float | None]]:
    """(estimated bits/pixel position, PSNR over all pixels, PSNR of the fixed-point synthesis or None) per model
    on uint8 images N x H x W x C."""
    model.eval()
    sq = torch.zeros(model.g, dtype=torch.float64)
    sq_int = torch.zeros(model.g, dtype=torch.float64)
    bits = torch.zeros(model.g, dtype=torch.float64)
    synths = [integer_synthesis(model.cpu(), g) for g in range(model.g)] if integer else []
    model.to(device)
    for i in range(0, len(images), 256):
        x = torch.from_numpy(images[i:i + 256]).to(device).permute(0, 3, 1, 2).float()
        x_hat, b, y = model(x / 255.0)
        rec = torch.round(x_hat.clamp(0, 1) * 255)
        sq += ((rec - x[:, None]) ** 2).sum(dim=(0, 2, 3, 4)).double().cpu()
        bits += b.sum(0).double().cpu()
        y = y.double().cpu()
        target = images[i:i + 256].astype(np.float64)
        for g, syn in enumerate(synths):
            part = y[:, g * model.m:(g + 1) * model.m].permute(0, 2, 3, 1).numpy()
            pixels = integer_synthesize(syn, np.round(part * 2.0 ** LATENT_FRAC_BITS))
            sq_int[g] += float(((pixels - target) ** 2).sum())
    n, h, w, _ = images.shape
    model.train()

    return [(float(bits[g]) / (n * h * w), psnr_from_mse(float(sq[g]) / images.size),
             psnr_from_mse(float(sq_int[g]) / images.size) if integer else None)
            for g in range(model.g)]


def train(args: argparse.Namespace) -> list[dict]:
    device = torch.device(args.device)
    data, held = load(args.train), load(args.heldout)
    opts = ConvTrainOptions(lambdas=tuple(args.lambdas), n=args.n, m=args.m, steps=args.steps, seconds=args.seconds,
                            batch=args.batch, lr=args.lr, augment=tuple(a for a in args.augment.split(",") if a),
                            seed=args.seed, prior=args.prior)
    t0 = time.perf_counter()
    model, step = train_conv(data, opts, device)
    model.to(device)
    seconds = time.perf_counter() - t0
    points = evaluate(model, held, device, integer=args.integer)
    coded = real_bytes(model, held, device) if args.real_bytes else [None] * len(points)
    rows = []
    for lam, (bpp, psnr, psnr_int), real in zip(args.lambdas, points, coded):
        row = {"train": args.train, "heldout": args.heldout, "prior": args.prior, "lambda": lam, "n": args.n,
               "m": args.m, "steps": step, "batch": args.batch, "seconds": round(seconds, 1),
               "augment": args.augment, "estimated_bpp": round(bpp, 5), "psnr": round(psnr, 3)}
        if psnr_int is not None:
            row["psnr_integer_synthesis"] = round(psnr_int, 3)
        if real is not None:
            row["real_bpp"], row["real_psnr"] = round(real[0], 5), round(real[1], 3)
        rows.append(row)
    return rows


def compare(conv_jsonl: str, benches: dict[str, str], real: bool = False) -> list[str]:
    """Lines: each study curve's PSNR at equal rate and BD-rate against the lossy rows of `aezip bench codec` JSONs
    and against [[rate, PSNR], ...] point lists named by their file (set name -> comma-separated paths; a study row
    belongs to a set when its training file's name contains "<set>-train"); `real`: the coded bytes' points
    (--real-bytes runs), else the entropy estimates."""
    from aezip.bench.bdrate import bd_rate, psnr_gaps

    rows = [json.loads(line) for line in open(conv_jsonl)]
    lines = []
    for name, paths in benches.items():
        baselines: dict[str, list[tuple[float, float]]] = {}
        for path in paths.split(","):
            data = json.load(open(path))
            if isinstance(data, list):
                baselines[Path(path).stem] = [(float(b), float(q)) for b, q in data]
                continue
            for r in data["rows"]:
                if r.get("psnr_db") is None or not math.isfinite(r["psnr_db"]) or r.get("bits_per_pixel") is None:
                    continue
                key = r["codec"] + (" mosaic" if "mosaic" in str(r["setting"]) else "")
                baselines.setdefault(key, []).append((r["bits_per_pixel"], r["psnr_db"]))
        mine = [r for r in rows if f"{name}-train" in Path(r["train"]).name]
        for prior, n in sorted({(r["prior"], r["n"]) for r in mine}):
            rate, quality = ("real_bpp", "real_psnr") if real else ("estimated_bpp", "psnr")
            pts = sorted((r[rate], r[quality]) for r in mine if (r["prior"], r["n"]) == (prior, n))
            lines.append(f"== {name} {prior} n{n}: " + ", ".join(f"{b:.4f}@{q:.2f}" for b, q in pts))
            for key, anchor in baselines.items():
                gaps = [g for _, g in psnr_gaps(anchor, pts) if g is not None]
                span = f"{min(gaps):+.2f}..{max(gaps):+.2f} dB over {len(gaps)}/{len(pts)}" if gaps else "no overlap"
                bd = bd_rate(anchor, pts)
                lines.append(f"   vs {key:28s} {span:32s} BD {'-' if bd is None else f'{bd:+.1f} %'}")
    return lines


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    t = sub.add_parser("train", help="train G models (one per lambda) and append their held-out points")
    t.add_argument("train")
    t.add_argument("heldout")
    t.add_argument("--prior", choices=("factorized", "hyper"), default="hyper")
    t.add_argument("--lambdas", type=lambda s: [float(v) for v in s.split(",")],
                   default=[0.00012, 0.00025, 0.0005, 0.001, 0.002, 0.004])
    t.add_argument("--seconds", type=float, default=60.0, help="training wall time (unless --steps)")
    t.add_argument("--steps", type=int, default=0)
    t.add_argument("--batch", type=int, default=64)
    t.add_argument("--lr", type=float, default=1e-3)
    t.add_argument("--n", type=int, default=64, help="channels of the hidden layers")
    t.add_argument("--m", type=int, default=64, help="latent channels")
    t.add_argument("--augment", default="flip", help="aezip augmentations, comma-separated")
    t.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--integer", action="store_true",
                   help="also decode the held-out images through the fixed-point synthesis (aezip.coding.intconv)")
    t.add_argument("--real-bytes", action="store_true",
                   help="`hyper` only: also code the held-out set into bytes and decode it (aezip.coding.hyperprior)")
    t.add_argument("--out", help="append one JSON line per model")
    c = sub.add_parser("compare", help="the points against `aezip bench codec` rows at equal rate")
    c.add_argument("jsonl")
    c.add_argument("--real", action="store_true", help="compare the coded bytes (--real-bytes runs)")
    c.add_argument("--bench", action="append", required=True, metavar="SET=JSON",
                   help="e.g. rgb=benchmarks/results/codec-rgb-zoom.json,benchmarks/results/pca-wide-rgb-heldout.json "
                        "(repeatable)")
    args = p.parse_args()
    if args.command == "train" and args.real_bytes and args.prior != "hyper":
        p.error("--real-bytes needs --prior hyper")
    if args.command == "compare":
        print("\n".join(compare(args.jsonl, dict(b.split("=", 1) for b in args.bench), args.real)))
        return
    rows = train(args)
    for row in rows:
        print(json.dumps(row))
    if args.out:
        with open(args.out, "a") as f:
            f.writelines(json.dumps(row) + "\n" for row in rows)


if __name__ == "__main__":
    main()
