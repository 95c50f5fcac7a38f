"""Throughput of a training loop fed from a .aez file (aezip.torch.AezDataset + ChunkSampler) beside the same
loop fed from the images in memory (a .npy loaded whole), on held-out MNIST (test images 8000-9999).

    OMP_NUM_THREADS=1 python benchmarks/dataset_loop.py [--epochs 3] [--json out.json]

The loop is a small MLP autoencoder step (784-256-784, Adam, batch 64) so that the data path is a visible share of
the time; every row runs the same steps on the same images in the same process, so read them as ratios."""
from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, TensorDataset

import aezip
from aezip.files.data import open_dataset
from aezip.torch import AezDataset, ChunkSampler

MNIST = Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist" / "t10k-images-idx3-ubyte.gz"


def to_unit(x: torch.Tensor) -> torch.Tensor:
    return x.float().div(255).flatten()


def run_loop(loader: DataLoader, epochs: int, sampler: ChunkSampler | None = None) -> float:
    """Images per second of `epochs` epochs of training steps over the loader."""
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(784, 256), torch.nn.ReLU(), torch.nn.Linear(256, 784))
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    seen, start = 0, time.perf_counter()
    for epoch in range(epochs):
        if sampler is not None:
            sampler.set_epoch(epoch)
        for x in loader:
            x = x[0] if isinstance(x, list) else x          # TensorDataset yields [x]
            loss = torch.nn.functional.mse_loss(torch.sigmoid(net(x)), x)
            opt.zero_grad()
            loss.backward()
            opt.step()
            seen += len(x)
    return seen / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", type=Path, default=MNIST)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    torch.set_num_threads(1)
    images = open_dataset(args.data).read_all()[8000:10000]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        npy = Path(tmp) / "heldout.npy"
        np.save(npy, images)
        mem = torch.from_numpy(np.load(npy)).reshape(len(images), -1).float() / 255
        rows.append(("in-memory .npy (TensorDataset, shuffle)", run_loop(
            DataLoader(TensorDataset(mem), batch_size=64, shuffle=True), args.epochs)))
        for label, max_error in (("lossy", None), ("lossless, --max-error 0", 0)):
            aez = Path(tmp) / f"heldout-{max_error}.aez"
            r = aezip.encode(npy, aez, max_error=max_error)
            for workers in (0, 2):
                ds = AezDataset(aez, transform=to_unit)
                sampler = ChunkSampler(ds, seed=0)
                loader = DataLoader(ds, batch_size=64, sampler=sampler, num_workers=workers,
                                    persistent_workers=workers > 0)
                rows.append((f".aez {label} ({r.file_bytes} bytes), {workers} workers",
                             run_loop(loader, args.epochs, sampler)))
    for name, rate in rows:
        print(f"{name:<55}{rate:>10.0f} images/s")
    if args.json:
        args.json.write_text(json.dumps([{"source": n, "images_per_s": r} for n, r in rows], indent=1))


if __name__ == "__main__":
    main()
