"""Bytes and encode speed of the sampled pixel-coder choice against the exhaustive search, on the same images.

    python benchmarks/pixel_chooser.py -m M.aezm DATA --range 8000:10000 --max-error 0,4

Both encodes go through aezip.codec.encode_dataset; the exhaustive one swaps in encode_pixels(exhaustive=True) for
this process only. The sampled file is decoded back and checked against the bound.
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from aezip import codec

from aezip.coding import pixelstream
from aezip.files.data import open_dataset, write_dataset
from aezip.files.modelfile import load_model
from aezip.options import parse_range
from aezip.files.source import Source


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("data")
    ap.add_argument("-m", "--model", required=True)
    ap.add_argument("--range", default=None, help="images A:B")
    ap.add_argument("--max-error", default="0,4", help="comma-separated E values")
    args = ap.parse_args()
    mf = load_model(Path(args.model))
    images = np.concatenate(list(open_dataset(args.data).chunks(4096)))
    lo, hi = parse_range(args.range, len(images))
    images = images[lo:hi]
    sampled = pixelstream.encode_pixels
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        src = work / "x.npy"
        write_dataset(iter([images]), images.shape, Source("npy"), src, force=True)
        dataset = open_dataset(src)
        codec.encode_dataset(dataset, mf, work / "warm.aez", max_error=0, force=True)   # first-call costs untimed
        for e in (int(v) for v in args.max_error.split(",")):
            size = {}
            for mode in ("sampled", "exhaustive"):
                codec.encode_pixels = (sampled if mode == "sampled"
                                       else lambda *a, **k: sampled(*a, **k, exhaustive=True))
                out = work / f"{mode}.aez"
                t = time.perf_counter()
                codec.encode_dataset(dataset, mf, out, max_error=e, force=True)
                secs = time.perf_counter() - t
                size[mode] = out.stat().st_size
                print(f"E={e} {mode}: {size[mode]} bytes, encode {len(images) / secs:.0f} images/s", flush=True)
            codec.encode_pixels = sampled
            t = time.perf_counter()
            codec.decode_file(work / "sampled.aez", work / "back.npy", model_path=mf.path, force=True)
            secs = time.perf_counter() - t
            assert np.abs(np.load(work / "back.npy").astype(int) - images).max() <= e
            print(f"E={e} sampled / exhaustive bytes {size['sampled'] / size['exhaustive']:.5f}; sampled file "
                  f"decodes at {len(images) / secs:.0f} images/s within E", flush=True)


if __name__ == "__main__":
    main()
