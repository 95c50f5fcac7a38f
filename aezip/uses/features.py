"""The autoencoder as a feature extractor: latent codes for downstream models, and a linear probe to rate them."""
from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import torch

from aezip.files.data import Dataset
from aezip.errors import InputError
from aezip.conv.model import is_conv
from aezip.files.modelfile import CodecModel
from aezip.tensors import to_unit

CONV_CHUNK = 256     # images a convolutional model's features are computed for at once


def embed(dataset: Dataset, mf: CodecModel, *, quantized: bool = False, chunk_size: int = 4096,
          backend: str | None = None) -> np.ndarray:
    """Latent features: an MLP model's n x latent, float32 in (0, 1), or the int32 codes the codec stores; a
    convolutional model's n x (h * w * M) latents of its top rate point (aezip.conv.coding.features), float32, or
    the rounded ones its decoder synthesizes from."""
    if is_conv(mf):
        from aezip.conv.coding import features
        return np.concatenate([features(mf, mf.config.rates - 1, chunk, quantized, backend)
                               for chunk in dataset.chunks(min(chunk_size, CONV_CHUNK))])
    parts = []
    with torch.no_grad():
        for chunk in dataset.chunks(chunk_size):
            x = to_unit(chunk)
            parts.append(mf.model.codes(x, backend).numpy() if quantized else mf.model.encode(x, backend).numpy())
    return np.concatenate(parts)


def read_labels(path: str | Path) -> np.ndarray:
    """Integer class labels from an IDX label file (idx1-ubyte, .gz too) or a 1-D .npy."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such file")
    if path.suffix == ".npy":
        labels = np.load(path, allow_pickle=False)
    else:
        with open(path, "rb") as f:
            raw = f.read()
        if raw[:2] == b"\x1f\x8b":
            raw = gzip.decompress(raw)
        if len(raw) < 8 or raw[:4] != b"\x00\x00\x08\x01":
            raise InputError(f"{path}: not an IDX label file (expected magic 2049)")
        (n,) = struct.unpack(">I", raw[4:8])
        labels = np.frombuffer(raw, np.uint8, count=n, offset=8)
    if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
        raise InputError(f"{path}: labels must be a 1-D integer array, got {labels.dtype} {labels.shape}")
    return labels.astype(np.int64)


def linear_probe(train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray, test_y: np.ndarray,
                 *, l2: float = 1e-3, steps: int = 200, seed: int = 0) -> float:
    """Test accuracy of a multinomial logistic regression (L-BFGS, standardized features) fit on the train split."""
    torch.manual_seed(seed)
    xtr = torch.as_tensor(np.asarray(train_x, np.float64))
    xte = torch.as_tensor(np.asarray(test_x, np.float64))
    mean, std = xtr.mean(0), xtr.std(0).clamp_min(1e-6)
    xtr, xte = (xtr - mean) / std, (xte - mean) / std
    ytr = torch.as_tensor(train_y)
    classes = int(max(train_y.max(), test_y.max())) + 1
    w = torch.zeros(xtr.shape[1], classes, dtype=torch.float64, requires_grad=True)
    b = torch.zeros(classes, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([w, b], max_iter=steps, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(xtr @ w + b, ytr) + l2 * (w ** 2).sum()
        loss.backward()
        return loss

    opt.step(closure)
    with torch.no_grad():
        pred = (xte @ w + b).argmax(1).numpy()
    return float((pred == test_y).mean())


def probe_report(dataset: Dataset, labels: np.ndarray, mf: CodecModel, train: tuple[int, int],
                 test: tuple[int, int]) -> dict:
    """Linear-probe test accuracy of the model's features, the raw pixels, and PCA with as many components as the
    features have dimensions (at most the training images' count), fit on images train[0]..train[1]-1 and tested
    on test[0]..test[1]-1."""
    from aezip.bench.baselines import PCACodec

    if len(labels) != dataset.shape[0]:
        raise InputError(f"{len(labels)} labels for {dataset.shape[0]} images")
    (a, b), (c, d) = train, test
    images = dataset.read_all()
    flat = images.reshape(len(images), -1).astype("float64")
    ours = embed(dataset, mf)
    k = min(ours.shape[1], flat.shape[1], b - a)           # PCA of as many components, as far as the data allows
    pca = PCACodec.fit(images[a:b], k)
    features = {f"aezip ({ours.shape[1]} latents)": ours,
                "raw pixels": flat,
                f"PCA ({k} components)": (flat - pca.mean) @ pca.basis.T}
    return {"train_range": [a, b], "test_range": [c, d],
            "accuracy": {name: linear_probe(f[a:b], labels[a:b], f[c:d], labels[c:d]) for name, f in features.items()}}
