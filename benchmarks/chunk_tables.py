"""Held-out file bytes of the chunk-tables latent coder against the static coder that files named before it.

    python -m benchmarks.chunk_tables DATA -m MODEL.aezm --range A:B [--quality Q]   (from the repository root)

Writes the images of A:B with the model twice, in memory, at the default chunk size: as today (chunk tables,
chosen per chunk) and as before (the static per-dimension tables, the ladder's or the model's context model, as
latentcoder.legacy_coder names them), and prints both files' bits/pixel, the PSNR (the same codes, so the same
pixels) and how many chunks took each method.
"""
from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np

import aezip
from aezip.chunks import unpack_payload
from aezip.files.container import ContainerReader
from aezip.files.data import open_dataset
from aezip.metrics import psnr
from aezip.files.modelfile import load_model
from tests.legacy import legacy_files


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("data")
    ap.add_argument("-m", "--model", required=True)
    ap.add_argument("--range", required=True, help="A:B, the held-out images")
    ap.add_argument("--quality", type=int, default=None)
    a = ap.parse_args()
    lo, hi = (int(v) for v in a.range.split(":"))
    images = open_dataset(a.data).read_all()[lo:hi]
    mf = load_model(a.model)
    pixels = images.shape[0] * images.shape[1] * images.shape[2]
    new = aezip.compress(images, mf, quality=a.quality)
    with legacy_files():
        old = aezip.compress(images, mf, quality=a.quality)
    assert np.array_equal(aezip.decompress(new, mf), aezip.decompress(old, mf))
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "new.aez"
        path.write_bytes(new)
        with ContainerReader(path) as r:
            methods = [unpack_payload(r.read_chunk(i), "")[1][0] for i in range(len(r.chunks))]
    print(f"{a.data} [{lo}:{hi}] {a.model} quality {a.quality or mf.config.levels}: "
          f"PSNR {psnr(aezip.decompress(new, mf), images):.2f} dB; static coder {len(old) * 8 / pixels:.4f} "
          f"bits/pixel ({len(old)} bytes), chunk tables {len(new) * 8 / pixels:.4f} ({len(new)} bytes), "
          f"{len(methods)} chunks, methods {dict(zip(*(v.tolist() for v in np.unique(methods, return_counts=True))))} "
          f"(0 static, 1 context, 2 chunk tables)")


if __name__ == "__main__":
    main()
