"""Seconds per training epoch of the picked tile model (sizing.py) with 1 and 2 CPU threads, interleaved.

    python benchmarks/tile_threads.py DATA.npy [--reps 2]

Each figure is the training loop's own time over 3 epochs (validation included, as `aezip train` reports it; not
the tables and integer decoder built after it) / 3, median of --reps, thread counts round-robin so that load from
other processes hits both alike."""
from __future__ import annotations

import argparse
import re
import statistics

import numpy as np
import torch

from aezip.network.config import AEConfig
from aezip.options import TrainOptions
from aezip.network.sizing import pick
from aezip.network.training import train_model


def epoch_seconds(images: np.ndarray, threads: int, epochs: int = 3) -> float:
    """Seconds per epoch of the training loop, from its own report."""
    torch.set_num_threads(threads)
    choice = pick(images.shape, {}, TrainOptions.val_split)
    config = AEConfig(image_shape=images.shape[1:], **choice.arch)
    opts = TrainOptions(epochs=epochs, batch_size=choice.batch_size, augment=choice.augment, device="cpu",
                        backend="torch", pixel_model=False)
    lines: list[str] = []
    train_model(images, config, opts, progress=False, log=lines.append)
    seconds = next(float(m.group(1)) for m in map(re.compile(r"trained \d+ epochs in ([0-9.]+) s").match, lines) if m)
    return seconds / epochs


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
        each = ", ".join(f"{t:.2f}" for t in ts)
        print(f"{threads} thread(s): {statistics.median(ts):.2f} s per epoch (runs: {each})")


if __name__ == "__main__":
    main()
