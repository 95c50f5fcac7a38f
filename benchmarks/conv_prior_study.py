"""Feasibility study for issue #12: does a convolutional transform with a learned prior beat PCA + zstd on the
held-out photographs, given the same training patches and a GPU for a few minutes?

Not a codec: rates are ENTROPY ESTIMATES (-log2 of the prior's probability of each rounded latent, summed, per pixel
position), not file bytes, and nothing here is bit-exact. They say whether building that codec (an integer decoder
for convolutions, an entropy coder for the prior) can reach the bar; aezip's own figures stay real file bytes.

Model (after Balle et al. 2017/2018): three 5x5 stride-2 convolutions with GDN (32x32 -> 4x4 x M latents), the
mirror image with inverse GDN to decode, and one of two priors:
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
import torch.nn as nn
import torch.nn.functional as F

from aezip.coding.hyperprior import ESCAPE_LIMIT, MEAN_FRAC_BITS, decode, encode, make_tables
from aezip.coding.intconv import FloatLayer, IntegerConvNet, build_integer_net, integer_synthesize
from aezip.files.data import open_dataset
from aezip.metrics import psnr_from_mse
from aezip.network.augment import augment
from aezip.network.tiles import hwc

LOG2 = math.log(2.0)
LATENT_FRAC_BITS = MEAN_FRAC_BITS    # the integer synthesis's latents: round(y) exactly, q + mean to 1/256
Z_RADIUS = 64                        # the hyper-latents' tables cover -64..64 (an escape beyond)


class GDN(nn.Module):
    """Generalized divisive normalisation per group: y_i = x_i / sqrt(beta_i + sum_j gamma_ij x_j^2) (inverse: *)."""

    def __init__(self, channels: int, groups: int, inverse: bool = False):
        super().__init__()
        per = channels // groups
        self.groups, self.inverse = groups, inverse
        self.beta = nn.Parameter(torch.ones(channels))
        self.gamma = nn.Parameter(math.sqrt(0.1) * torch.eye(per).repeat(groups, 1).view(channels, per, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        norm = F.conv2d(x * x, self.gamma ** 2, self.beta ** 2 + 1e-6, groups=self.groups)
        return x * torch.sqrt(norm) if self.inverse else x * torch.rsqrt(norm)


def conv(cin: int, cout: int, groups: int, k: int = 5, stride: int = 2) -> nn.Conv2d:
    return nn.Conv2d(cin * groups, cout * groups, k, stride, k // 2, groups=groups)


def deconv(cin: int, cout: int, groups: int, k: int = 5, stride: int = 2) -> nn.ConvTranspose2d:
    return nn.ConvTranspose2d(cin * groups, cout * groups, k, stride, k // 2, output_padding=stride - 1,
                              groups=groups)


class LogisticMixture(nn.Module):
    """Factorized prior: per channel, a mixture of K logistics integrated over unit bins."""

    def __init__(self, channels: int, k: int = 3):
        super().__init__()
        self.logits = nn.Parameter(torch.zeros(channels, k))
        self.means = nn.Parameter(torch.linspace(-1, 1, k).repeat(channels, 1))
        self.log_scales = nn.Parameter(torch.zeros(channels, k))

    def likelihood(self, y: torch.Tensor) -> torch.Tensor:
        """P(bin around y) for y (B x C x H x W)."""
        w = torch.softmax(self.logits, -1)[None, :, None, None, :]
        mu, s = self.means[None, :, None, None, :], torch.exp(self.log_scales)[None, :, None, None, :]
        y = y.unsqueeze(-1)
        p = torch.sigmoid((y + 0.5 - mu) / s) - torch.sigmoid((y - 0.5 - mu) / s)
        return (w * p).sum(-1).clamp_min(1e-9)


def gaussian_likelihood(y: torch.Tensor, mean: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """P(unit bin around y) under N(mean, scale^2), the upper tail reflected for accuracy."""
    v = (y - mean).abs()
    upper = torch.special.ndtr((0.5 - v) / scale)
    lower = torch.special.ndtr((-0.5 - v) / scale)
    return (upper - lower).clamp_min(1e-9)


class ConvCodec(nn.Module):
    """G conv autoencoders with learned priors, trained as one grouped network."""

    def __init__(self, channels: int, groups: int, prior: str, n: int = 64, m: int = 64, z: int = 32):
        super().__init__()
        g = groups
        self.g, self.c, self.m, self.z, self.prior = g, channels, m, z, prior
        self.enc = nn.Sequential(conv(channels, n, g), GDN(n * g, g), conv(n, n, g), GDN(n * g, g), conv(n, m, g))
        self.dec = nn.Sequential(deconv(m, n, g), GDN(n * g, g, inverse=True), deconv(n, n, g),
                                 GDN(n * g, g, inverse=True), deconv(n, channels, g))
        if prior == "hyper":
            self.h_enc = nn.Sequential(conv(m, n, g, 3, 1), nn.ReLU(), conv(n, z, g))
            self.h_dec = nn.Sequential(deconv(z, n, g), nn.ReLU(), conv(n, 2 * m, g, 3, 1))
            self.z_prior = LogisticMixture(z * g)
        else:
            self.y_prior = LogisticMixture(m * g)

    @staticmethod
    def _quantize(y: torch.Tensor, training: bool, center: torch.Tensor | float = 0.0) -> torch.Tensor:
        if training:
            return y + torch.empty_like(y).uniform_(-0.5, 0.5)
        return torch.round(y - center) + center

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """x: B x C x H x W in [0, 1] -> (reconstructions B x G x C x H x W, bits per image B x G, the quantized
        latents the synthesis took, B x G*M x h x w)."""
        b = len(x)
        y = self.enc(x.repeat(1, self.g, 1, 1) - 0.5)
        if self.prior == "hyper":
            z = self.h_enc(y)
            z_hat = self._quantize(z, self.training)
            bits = -torch.log(self.z_prior.likelihood(z_hat)).view(b, self.g, -1).sum(-1) / LOG2
            params = self.h_dec(z_hat).view(b, self.g, 2, self.m, *y.shape[2:])
            mean = params[:, :, 0].reshape(y.shape)
            scale = F.softplus(params[:, :, 1].reshape(y.shape)).clamp_min(0.11)
            y_hat = self._quantize(y, self.training, mean)
            bits = bits - torch.log(gaussian_likelihood(y_hat, mean, scale)).view(b, self.g, -1).sum(-1) / LOG2
        else:
            y_hat = self._quantize(y, self.training)
            bits = -torch.log(self.y_prior.likelihood(y_hat)).view(b, self.g, -1).sum(-1) / LOG2
        x_hat = self.dec(y_hat).view(b, self.g, self.c, *x.shape[2:]) + 0.5
        return x_hat, bits, y_hat


def load(path: str) -> np.ndarray:
    """N x H x W x C uint8 images from any dataset aezip reads (.npy, .npz, IDX, an image folder)."""
    data = open_dataset(path)
    return data.read_all().reshape(data.shape[0], *hwc(data.image_shape))


def _group(t: torch.Tensor, g: int, rows: int) -> np.ndarray:
    """Model g's slice (rows g*rows .. (g+1)*rows along the first axis) of a grouped parameter, float64 numpy."""
    return t.detach().double().cpu()[g * rows:(g + 1) * rows].numpy()


def integer_synthesis(model: ConvCodec, g: int) -> IntegerConvNet:
    """Model g's synthesis in fixed point (aezip.coding.intconv), its latents with LATENT_FRAC_BITS fractional bits."""
    layers, modules = [], list(model.dec)
    for i, conv in enumerate(modules[0::2]):
        w, b = _group(conv.weight, g, conv.in_channels // model.g), _group(conv.bias, g, conv.out_channels // model.g)
        if 2 * i + 1 < len(modules):
            gdn = modules[2 * i + 1]
            c = len(gdn.beta) // model.g
            layers.append(FloatLayer("up", w, b, "igdn", _group(gdn.gamma, g, c)[..., 0, 0] ** 2,
                                     _group(gdn.beta, g, c) ** 2 + 1e-6))
        else:
            layers.append(FloatLayer("up", w, b))
    return build_integer_net(layers, in_frac=LATENT_FRAC_BITS)




def integer_hyper_synthesis(model: ConvCodec, g: int) -> IntegerConvNet:
    """Model g's hyper-synthesis in fixed point: means and raw scales from integer hyper-latents."""
    up, _, same = model.h_dec
    return build_integer_net([
        FloatLayer("up", _group(up.weight, g, model.z), _group(up.bias, g, up.out_channels // model.g), "relu"),
        FloatLayer("same", _group(same.weight, g, 2 * model.m).transpose(1, 0, 2, 3),
                   _group(same.bias, g, 2 * model.m))],
        in_limit=float(ESCAPE_LIMIT), pixels=False)


@torch.no_grad()
def real_bytes(model: ConvCodec, images: np.ndarray, device: torch.device) -> list[tuple[float, float]]:
    """(bits/pixel position from the coded bytes, PSNR) per `hyper` model: the held-out set coded as one stream by
    aezip.coding.hyperprior and decoded back through the fixed-point networks (checked to rebuild the encoder's
    latents exactly)."""
    model.eval()
    x = torch.from_numpy(images).to(device).permute(0, 3, 1, 2).float() / 255.0
    y = torch.cat([model.enc(x[i:i + 256].repeat(1, model.g, 1, 1) - 0.5) for i in range(0, len(x), 256)])
    z = torch.round(torch.cat([model.h_enc(y[i:i + 256]) for i in range(0, len(y), 256)]))
    values = torch.arange(-Z_RADIUS, Z_RADIUS + 1, dtype=torch.float32, device=device)
    z_pmf = model.z_prior.likelihood(values.view(-1, 1, 1, 1).expand(-1, model.g * model.z, 1, 1))[..., 0, 0].T
    n, h, w, _ = images.shape
    points = []
    for g in range(model.g):
        hyper = integer_hyper_synthesis(model, g)
        tables = make_tables(_group(z_pmf, g, model.z), -Z_RADIUS, hyper.out_frac)
        y_g = _group(y.transpose(0, 1), g, model.m).transpose(1, 2, 3, 0)
        z_g = _group(z.transpose(0, 1), g, model.z).transpose(1, 2, 3, 0)
        data, latents = encode(y_g, z_g, hyper, tables)
        decoded = decode(data, z_g.shape, hyper, tables)
        if not np.array_equal(decoded, latents):
            raise AssertionError(f"model {g}: the decoder rebuilt other latents than the encoder's")
        pixels = integer_synthesize(integer_synthesis(model, g), decoded)
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
    synths = [integer_synthesis(model, g) for g in range(model.g)] if integer else []
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
    torch.manual_seed(args.seed)
    gen = torch.Generator(device=device).manual_seed(args.seed)
    data, held = load(args.train), load(args.heldout)
    n, h, w, c = data.shape
    lambdas = torch.tensor(args.lambdas, device=device)
    model = ConvCodec(c, len(args.lambdas), args.prior, args.n, args.m).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    x_all = torch.from_numpy(data).to(device).float().div(255.0).reshape(n, -1)
    names = tuple(a for a in args.augment.split(",") if a)
    t0, step, lr_dropped = time.perf_counter(), 0, False
    while True:
        elapsed = time.perf_counter() - t0
        if (args.steps and step >= args.steps) or (not args.steps and elapsed >= args.seconds):
            break
        if not lr_dropped and (step >= 0.85 * args.steps if args.steps else elapsed >= 0.85 * args.seconds):
            for group in opt.param_groups:
                group["lr"] = args.lr / 10
            lr_dropped = True
        idx = torch.randint(0, n, (args.batch,), device=device, generator=gen)
        x = augment(x_all[idx], (h, w, c), names, gen).view(-1, h, w, c).permute(0, 3, 1, 2)
        x_hat, bits, _ = model(x)
        mse = ((x_hat - x[:, None]) ** 2).mean(dim=(2, 3, 4)) * 255 ** 2          # B x G, 8-bit units
        loss = (bits / (h * w) + lambdas * mse).mean(0).sum()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 10.0)
        opt.step()
        step += 1
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
