"""`aezip demo`: the main job on the shipped sample with the embedded model, beside xz and zstd."""
from __future__ import annotations

import tempfile
from importlib import resources
from pathlib import Path
from typing import Iterator

import numpy as np

from aezip.bench.baselines import jpegxl_lossless, raw_compressors
from aezip.codec import decode_file, encode_dataset
from aezip.effort import effort_settings
from aezip.files.data import open_dataset
from aezip.metrics import psnr
from aezip.files.modelfile import load_model
from aezip.bench.report import mosaic

SAMPLE_NAME = "mnist-sample-8000-8299-idx3-ubyte.gz"


def sample_path() -> Path:
    """The shipped sample: MNIST test images 8000-8299 (held out from the default model's training)."""
    return Path(str(resources.files("aezip") / "assets" / SAMPLE_NAME))


def run_demo(workdir: Path | None = None) -> Iterator[str]:
    """Encode the sample lossy and lossless (by default and with --effort max), decode each, check them, and yield
    the report lines."""
    with tempfile.TemporaryDirectory(prefix="aezip-demo-") as tmp:
        work = Path(workdir) if workdir else Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        dataset = open_dataset(sample_path())
        original = dataset.read_all()
        mf = load_model()
        pixels = original.size
        yield (f"sample: {dataset.shape[0]} MNIST images {dataset.shape[1]}x{dataset.shape[2]} "
               f"(held-out test images 8000-8299); model {mf.id[:16]} (embedded default)")
        yield f"{'codec':<28}{'bytes':>9}{'bits/pixel':>12}{'PSNR dB':>10}{'max err':>9}"
        for label, name, max_error, effort in (("aezip (lossy)", "sample", None, "best"),
                                               ("aezip --max-error 0", "sample-lossless", 0, "best"),
                                               ("  --effort max", "sample-lossless-max", 0, "max")):
            aez, out = work / f"{name}.aez", work / f"decoded-{name}.idx3-ubyte.gz"
            r = encode_dataset(dataset, mf, aez, max_error=max_error, force=True, **effort_settings(effort))
            decode_file(aez, out, force=True)
            decoded = open_dataset(out).read_all()
            err = int(np.abs(decoded.astype(int) - original.astype(int)).max())
            yield (f"{label:<28}{r.file_bytes:>9}{r.bits_per_pixel:>12.4f}{psnr(original, decoded):>10.2f}"
                   f"{err:>9}")
        sizes = {f"{name} (lossless)": len(raw_compressors()[name][0](original.tobytes()))
                 for name in ("xz -9e", "zstd -19")}
        encode_jxl, _ = jpegxl_lossless(9)
        sizes["JPEG-XL lossless e9, mosaic"] = len(encode_jxl(mosaic(original)))
        for name, size in sizes.items():
            yield f"{name:<28}{size:>9}{size * 8 / pixels:>12.4f}{'inf':>10}{0:>9}"
        yield f"raw pixels: {pixels} bytes; bits/pixel = file bytes x 8 / {pixels} pixels"
        if workdir:
            yield f"files kept in {work}"
