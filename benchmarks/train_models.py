"""Train the shipped default model (and other named recipes) on MNIST test images 0-7999; anyone can rerun it.

The default recipe is four steps: `aezip train DATA --range 0:8000 --no-pixel-model --decoder-bits 16` (the
autoencoder, with `aezip train`'s other defaults), then `aezip model requantize --weight-bits 8 --finetune DATA
--range 0:8000` (its decoder fine-tuned for 8-bit integer weights on all 8,000 training images, where `aezip train`'s
own fine-tuning sees only its 7,200 training-split images: 20.81 against 20.79 dB held out), then
`benchmarks/add_pixel_model.py` (both learned pixel models, trained on the 8-bit decoder's predictions), then
`benchmarks/add_raster_net.py` (the raster network, on its predictions at the qualities --effort max weighs). Its
low-rate sibling follows: `aezip model low-rate` (one thread), written beside it as <name>-low.aezm (shipped:
aezip/assets/default-low.aezm), which encodes the default's coarse --quality levels.

    python benchmarks/train_models.py default --replace-shipped     # -> aezip/assets/default.aezm (the shipped one)
    python benchmarks/train_models.py default --out /tmp/m.aezm     # elsewhere
    python benchmarks/train_models.py rate-l12 --out models/rate-l12.aezm
    TRITON_INTERPRET=1 python benchmarks/train_models.py default --backend triton --out models/default-triton.aezm

Training on the CPU is deterministic for a given seed and thread count: one thread rewrites the shipped file byte
for byte.
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

from aezip.options import BACKENDS

REPO = Path(__file__).resolve().parents[1]
MNIST = REPO.parent / "shared" / "data" / "mnist" / "t10k-images-idx3-ubyte.gz"
TRAIN_RANGE = "0:8000"

# name -> extra `aezip train` options (on top of its defaults)
RECIPES: dict[str, list[str]] = {
    "default": ["--no-pixel-model", "--decoder-bits", "16"],     # then _finish (on all 8,000 images)
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


# recipes finished after `aezip train` by the decoder fine-tuned for 8-bit weights, then the pixel models on its
# predictions
FINISHED = {"default"}


def _finish(recipe: str, data: Path, trained: Path, out: Path) -> None:
    """Run the recipe's steps after training, from `trained` to `out`."""
    from aezip.cli.main import main as aezip_main
    if recipe not in FINISHED:
        trained.replace(out)
        return
    tuned, pixel = trained.with_name("tuned.aezm"), trained.with_name("pixel.aezm")
    aezip_main(["model", "requantize", str(trained), "--weight-bits", "8", "--finetune", str(data), "--range",
                TRAIN_RANGE, "-o", str(tuned)])
    for script, src, dst in (("add_pixel_model.py", tuned, pixel), ("add_raster_net.py", pixel, out)):
        subprocess.run([sys.executable, str(REPO / "benchmarks" / script), "-m", str(src), "--data", str(data),
                        "--range", TRAIN_RANGE, "--out", str(dst)], check=True)


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
    if out.exists() and not force:
        parser.error(f"{out} exists: pass --force to overwrite it")
    from aezip.cli.main import main as aezip_main
    with tempfile.TemporaryDirectory() as tmp:
        trained = Path(tmp) / "trained.aezm"
        aezip_main(["train", str(args.data), "--range", TRAIN_RANGE, "-o", str(trained), "--backend", args.backend,
                    *RECIPES[args.recipe]])     # progress bar and summary on the terminal
        out.parent.mkdir(parents=True, exist_ok=True)
        _finish(args.recipe, args.data, trained, out)
    if args.recipe in FINISHED:   # and its low-rate sibling, for the coarse --quality levels
        low = shipped.with_name("default-low.aezm") if args.replace_shipped else out.with_name(f"{out.stem}-low.aezm")
        aezip_main(["model", "low-rate", str(out), "--data", str(args.data), "--range", TRAIN_RANGE, "--threads", "1",
                    "-o", str(low), "--force"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
