"""Peak memory of `aezip train` on a memory-mapped .npy of 1,000,000 images (MNIST test set tiled 100 times).

    OMP_NUM_THREADS=1 python benchmarks/train_memory.py [--images 1000000] [--work /tmp] [-- extra train options]

Writes the .npy (784 MB for 1 M images) under --work, runs one epoch of `aezip train` on it in a child process and
samples the child's /proc status every 0.2 s: peak resident set (VmHWM), and the peak of its anonymous part
(RssAnon: memory the process allocated, as opposed to file pages of the memory map, which the kernel can drop).
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
MNIST = REPO.parent / "shared" / "data" / "mnist" / "t10k-images-idx3-ubyte.gz"


def _status_kb(pid: int) -> dict[str, int]:
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("VmHWM", "VmRSS", "RssAnon", "RssFile"):
                out[key] = int(value.split()[0])
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=1_000_000)
    parser.add_argument("--work", type=Path, default=Path("/tmp"))
    parser.add_argument("extra", nargs="*", help="more `aezip train` options")
    args = parser.parse_args(argv)
    from aezip.files.data import open_dataset
    big = args.work / f"mnist-tiled-{args.images}.npy"
    if not big.exists():
        test = open_dataset(MNIST).read_all()
        out = np.lib.format.open_memmap(big, mode="w+", dtype=np.uint8, shape=(args.images, *test.shape[1:]))
        for i in range(0, args.images, len(test)):
            out[i:i + len(test)] = test[:args.images - i]
        out.flush()
        del out
    cmd = [sys.executable, "-m", "aezip.cli.main", "train", str(big), "-o", str(args.work / "big.aezm"), "--force",
           "--quiet", "--epochs", "1", *args.extra]
    start = time.perf_counter()
    child = subprocess.Popen(cmd)
    peak_anon = peak_file = hwm = 0
    while child.poll() is None:
        try:
            s = _status_kb(child.pid)
        except (FileNotFoundError, ProcessLookupError):
            break
        peak_anon, peak_file = max(peak_anon, s.get("RssAnon", 0)), max(peak_file, s.get("RssFile", 0))
        hwm = max(hwm, s.get("VmHWM", 0))
        time.sleep(0.2)
    if child.wait() != 0:
        return child.returncode
    print(f"{args.images} images ({big.stat().st_size / 1e6:.0f} MB .npy), one epoch in "
          f"{time.perf_counter() - start:.0f} s: peak RSS {hwm / 1024:.0f} MiB, of which at most "
          f"{peak_anon / 1024:.0f} MiB anonymous and {peak_file / 1024:.0f} MiB file pages (the map, libraries)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
