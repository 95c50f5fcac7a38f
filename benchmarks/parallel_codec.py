"""Time `aezip encode/decode --jobs 1` against `--jobs N` on MNIST tiled to 20,000 images, and check the bytes match.

    OMP_NUM_THREADS=1 python benchmarks/parallel_codec.py [--jobs 2] [--images 20000] [--max-error 0]

Each row runs the CLI in a fresh process (so --jobs N pays its workers' start-up, as a user does) and reports the
wall time; the files written with N jobs are compared byte for byte with the ones written with one.
"""
from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
MNIST = REPO.parent / "shared" / "data" / "mnist" / "t10k-images-idx3-ubyte.gz"


def _aezip(*args: str) -> tuple[float, float]:
    """Wall seconds and CPU seconds (user + system, the command and its workers) of one CLI run."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "aezip.cli.main", *args], check=True, capture_output=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--images", type=int, default=20000)
    parser.add_argument("--max-error", type=int, action="append", default=[],
                        help="also time this max error (repeatable); the lossy file is always timed")
    args = parser.parse_args(argv)
    from aezip.files.data import open_dataset
    test = open_dataset(MNIST).read_all()
    images = np.resize(test, (args.images, *test.shape[1:]))   # the test set tiled
    print(f"{args.images} MNIST test images (tiled), default model, --jobs 1 vs --jobs {args.jobs}: wall s (CPU s)")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        np.save(work / "data.npy", images)
        for max_error in [None, *args.max_error]:
            extra = [] if max_error is None else ["--max-error", str(max_error)]
            times = {}
            for jobs in (1, args.jobs):
                aez, out = work / f"{jobs}.aez", work / f"{jobs}.npy"
                times[jobs] = (_aezip("encode", str(work / "data.npy"), "-o", str(aez), "--jobs", str(jobs), "--force",
                                      *extra),
                               _aezip("decode", str(aez), "-o", str(out), "--jobs", str(jobs), "--force"))
            same = ((work / "1.aez").read_bytes() == (work / f"{args.jobs}.aez").read_bytes(),
                    (work / "1.npy").read_bytes() == (work / f"{args.jobs}.npy").read_bytes())
            label = "lossy" if max_error is None else f"--max-error {max_error}"
            cells = []
            for step, ((w1, c1), (wn, cn)) in zip(("encode", "decode"), zip(times[1], times[args.jobs])):
                cells.append(f"{step} {w1:5.2f} ({c1:5.2f}) -> {wn:5.2f} ({cn:5.2f}) x{w1 / wn:.2f}")
            print(f"{label:<14} " + ", ".join(cells) + f"; identical file {same[0]}, decoded images {same[1]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
