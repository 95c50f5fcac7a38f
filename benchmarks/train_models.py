"""Train the shipped default model (and other named recipes) on MNIST test images 0-7999; anyone can rerun it.

    python benchmarks/train_models.py default --replace-shipped     # -> aezip/assets/default.aezm (the shipped one)
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

from aezip.options import BACKENDS

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
    parser.add_argument("--out", type=Path, help="model file [default: models/<recipe>.aezm]")
    parser.add_argument("--replace-shipped", action="store_true",
                        help="write the default recipe over the shipped aezip/assets/default.aezm")
    parser.add_argument("--force", action="store_true", help="overwrite an existing --out")
    parser.add_argument("--backend", choices=BACKENDS, default="auto",
                        help="kernel backend (triton on the CPU needs TRITON_INTERPRET=1)")
    args = parser.parse_args(argv)
    shipped = REPO / "aezip" / "assets" / "default.aezm"
    if args.replace_shipped:
        if args.recipe != "default" or args.out:
            parser.error("--replace-shipped writes the default recipe to the shipped model; it takes no --out")
        out, force = shipped, True
    else:
        out, force = args.out or REPO / "models" / f"{args.recipe}.aezm", args.force
        if out.resolve() == shipped.resolve():
            parser.error(f"{out} is the shipped model: pass --replace-shipped to overwrite it")
    from aezip.cli.main import main as aezip_main
    aezip_main(["train", str(args.data), "--range", TRAIN_RANGE, "-o", str(out), *(["--force"] if force else []),
                "--backend", args.backend, *RECIPES[args.recipe]])     # progress bar and summary on the terminal
    return 0


if __name__ == "__main__":
    sys.exit(main())
