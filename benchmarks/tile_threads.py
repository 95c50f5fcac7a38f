"""Seconds per training epoch of the picked tile model (sizing.py) with 1 and 2 CPU threads, interleaved.

    python benchmarks/tile_threads.py DATA.npy [--reps 2]

Each figure is the difference between a 3-epoch and a 1-epoch run (which cancels building tables and the integer
decoder), median of --reps, thread counts round-robin so that load from other processes hits both alike."""
from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch

from aezip.config import AEConfig
from aezip.options import TrainOptions
from aezip.sizing import pick
from aezip.training import train_model


def epoch_seconds(images: np.ndarray, threads: int) -> float:
    """One epoch's seconds: a 3-epoch run minus a 1-epoch run."""
    torch.set_num_threads(threads)
    choice = pick(images.shape, {}, TrainOptions.val_split)
    config = AEConfig(image_shape=images.shape[1:], **choice.arch)
    times = []
    for epochs in (1, 3):
        opts = TrainOptions(epochs=epochs, batch_size=choice.batch_size, augment=choice.augment, device="cpu",
                            backend="torch", pixel_model=False)
        t = time.perf_counter()
        train_model(images, config, opts, progress=False, log=lambda m: None)
        times.append(time.perf_counter() - t)
    return (times[1] - times[0]) / 2


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("data")
    ap.add_argument("--reps", type=int, default=2)
    args = ap.parse_args()
    images = np.load(args.data)
    print(pick(images.shape, {}, TrainOptions.val_split).describe())
    runs: dict[int, list[float]] = {1: [], 2: []}
    for _ in range(args.reps):
        for threads in runs:
            runs[threads].append(epoch_seconds(images, threads))
    for threads, ts in runs.items():
        print(f"{threads} thread(s): {statistics.median(ts):.2f} s per epoch (runs: {', '.join(f'{t:.2f}' for t in ts)})")


if __name__ == "__main__":
    main()
