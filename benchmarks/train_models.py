"""Train the shipped default model (and other named recipes) on MNIST test images 0-7999; anyone can rerun it.

    python benchmarks/train_models.py default                       # -> aezip/assets/default.aezm
    python benchmarks/train_models.py default --out /tmp/m.aezm     # elsewhere
    python benchmarks/train_models.py rate-l12 --out models/rate-l12.aezm
    TRITON_INTERPRET=1 python benchmarks/train_models.py default --backend triton --out models/default-triton.aezm

The default recipe is `aezip train` with its default options, so the shipped model is what a user gets from
`aezip train DATA --range 0:8000`. Training on the CPU is deterministic for a given seed and thread count.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MNIST = REPO.parent / "shared" / "data" / "mnist" / "t10k-images-idx3-ubyte.gz"
TRAIN_RANGE = "0:8000"

# name -> extra `aezip train` options (on top of its defaults)
RECIPES: dict[str, list[str]] = {
    "default": [],
    # rate points for `aezip bench codec` (smaller and larger latents around the default)
    "rate-l12": ["--latent", "12", "--levels", "16"],
    "rate-l16": ["--latent", "16", "--levels", "16"],
    "rate-l40": ["--latent", "40"],
    # the other uses: a denoising model, an inpainting one, and the adversarial prior beside the sparse-KL default
    "denoise": ["--denoise", "gaussian:0.3", "--loss", "mse", "--beta", "0.1"],
    "inpaint": ["--denoise", "box:14"],
    "adversarial": ["--prior", "adversarial:uniform", "--prior-weight", "0.1", "--sparsity", "0", "--latent", "32",
                    "--epochs", "80", "--patience", "15"],
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("recipe", choices=sorted(RECIPES))
    parser.add_argument("--data", type=Path, default=MNIST, help="MNIST test images (IDX, gz)")
    parser.add_argument("--out", type=Path, help="model file [default: aezip/assets/<recipe>.aezm]")
    parser.add_argument("--backend", choices=["auto", "triton", "torch"], default="auto",
                        help="kernel backend (triton on the CPU needs TRITON_INTERPRET=1)")
    args = parser.parse_args(argv)
    out = args.out or REPO / "aezip" / "assets" / f"{args.recipe}.aezm"
    from aezip.cli.main import main as aezip_main
    aezip_main(["train", str(args.data), "--range", TRAIN_RANGE, "-o", str(out), "--force", "--quiet",
                "--backend", args.backend, *RECIPES[args.recipe]])
    return 0


if __name__ == "__main__":
    sys.exit(main())
