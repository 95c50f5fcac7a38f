"""Measure 1 vs 2 CPU threads for lossy encode, decode and training (and the AdamW step variants) in one run.

    python benchmarks/thread_policy.py [--images 20000] [--reps 3] [--busy N]

Encode and decode: in-process images/s on MNIST test images repeated to --images, median of --reps, thread counts
interleaved so that load from other processes hits both alike. Training: seconds per epoch of the default recipe
on images 0-7999 (median of --reps, round-robin), from the difference between a 3-epoch and a 1-epoch run (which
cancels the fixed cost of building tables and the integer decoder; no decoder fine-tuning or pixel models), for the
single-tensor AdamW step (before), foreach (the default now) and fused. --busy N keeps N other processes spinning meanwhile (a loaded machine, reproducibly). It prints the idle
cores aezip.threads measured at the start and the thread count its default would pick. The policy in
aezip/threads.py comes from this script's output, idle and with --busy 1.
"""
from __future__ import annotations

import argparse
import multiprocessing
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from aezip.codec import decode_file, encode_dataset
from aezip.network.config import AEConfig
from aezip.files.data import open_dataset
from aezip.files.modelfile import load_model
from aezip.options import TrainOptions
from aezip.threads import apply_threads
from aezip.network.training import train_model

MNIST = Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist" / "t10k-images-idx3-ubyte.gz"


def _seconds(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def codec_rates(images: np.ndarray, reps: int, work: Path) -> dict[tuple[str, int], float]:
    """Median images/s of lossy encode and decode with 1 and 2 threads, interleaved."""
    src, aez, out = work / "x.npy", work / "x.aez", work / "y.npy"
    np.save(src, images)
    ds, mf = open_dataset(src), load_model()
    times: dict[tuple[str, int], list[float]] = {}
    for _ in range(reps):
        for n in (1, 2):
            apply_threads("encode", n)
            times.setdefault(("encode", n), []).append(_seconds(lambda: encode_dataset(ds, mf, aez, force=True)))
            apply_threads("decode", n)
            times.setdefault(("decode", n), []).append(_seconds(lambda: decode_file(aez, out, force=True)))
    return {k: len(images) / statistics.median(v) for k, v in times.items()}


def epoch_seconds(images: np.ndarray, threads: int, step: str) -> float:
    """Seconds per epoch of the default recipe with one AdamW step variant: (3-epoch run - 1-epoch run) / 2."""
    apply_threads("train", threads)
    real_adamw = torch.optim.AdamW
    if step == "single":   # the loop before: AdamW's single-tensor step
        torch.optim.AdamW = lambda params, **kw: real_adamw(params, **{**kw, "foreach": False})
    try:
        config = AEConfig(image_shape=images.shape[1:])
        opts = lambda e: TrainOptions(epochs=e, device="cpu", backend="torch", fused_optimizer=step == "fused",  # noqa
                                      pixel_model=False, decoder_bits=16)   # the loop only
        run = lambda e: train_model(images, config, opts(e), progress=False, log=lambda m: None)  # noqa: E731
        return (_seconds(lambda: run(3)) - _seconds(lambda: run(1))) / 2
    finally:
        torch.optim.AdamW = real_adamw


def _spin() -> None:
    while True:
        pass


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--images", type=int, default=20000)
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--data", type=Path, default=MNIST)
    p.add_argument("--busy", type=int, default=0, help="processes kept spinning during the measurement")
    args = p.parse_args(argv)
    spinners = [multiprocessing.Process(target=_spin, daemon=True) for _ in range(args.busy)]
    for proc in spinners:
        proc.start()
    try:
        return _measure(args)
    finally:
        for proc in spinners:
            proc.terminate()


def _measure(args: argparse.Namespace) -> int:
    from aezip.threads import default_threads, idle_cores
    time.sleep(1.0 if args.busy else 0.0)   # let the spinners start before the idle cores are read
    print(f"idle cores {idle_cores():.2f} with {args.busy} spinning process(es): the default picks "
          f"{default_threads()} thread(s)")
    x = open_dataset(args.data).read_all()
    many = np.concatenate([x] * -(-args.images // len(x)))[:args.images]
    with tempfile.TemporaryDirectory() as tmp:
        for (path, n), rate in sorted(codec_rates(many, args.reps, Path(tmp)).items()):
            print(f"lossy {path:<7} threads {n}: {rate:8.0f} images/s")
    variants = [("single-tensor AdamW (before)", 1, "single"), ("foreach AdamW (default)", 1, "foreach"),
                ("foreach AdamW (default)", 2, "foreach"), ("fused AdamW (--fused-optimizer)", 1, "fused")]
    secs: dict[int, list[float]] = {}
    for _ in range(args.reps):                      # round-robin, so drifting load hits every variant alike
        for i, (_, n, step) in enumerate(variants):
            secs.setdefault(i, []).append(epoch_seconds(x[:8000], n, step))
    for i, (name, n, _) in enumerate(variants):
        print(f"train {name:<32} threads {n}: {statistics.median(secs[i]):6.2f} s/epoch "
              f"(runs: {', '.join(f'{v:.2f}' for v in secs[i])})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
