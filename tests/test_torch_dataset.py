"""aezip.torch: a DataLoader with two workers yields every image of a .aez exactly once per epoch, bit-identical to
the decoded file, and the chunk sampler decodes each chunk once per epoch."""
from __future__ import annotations

import pickle

import numpy as np
import torch
from torch.utils.data import DataLoader

import aezip
from aezip.torch import AezDataset, ChunkSampler


def test_dataloader_with_two_workers_yields_each_image_once(tmp_path, sample_images, tiny_model_path) -> None:
    path = tmp_path / "d.aez"
    aezip.encode(sample_images[:90], path, tiny_model_path, chunk_size=16)
    decoded = aezip.decompress(path.read_bytes(), tiny_model_path)
    ds = AezDataset(path, model=tiny_model_path)
    assert len(ds) == 90 and ds[5].dtype == torch.uint8 and ds[5].shape == (28, 28)   # opens a reader here
    sampler = ChunkSampler(ds, seed=3)
    loader = DataLoader(ds, batch_size=8, sampler=sampler, num_workers=2)
    orders = []
    for epoch in range(2):
        sampler.set_epoch(epoch)
        order = list(sampler)
        assert sorted(order) == list(range(90))
        batches = torch.cat(list(loader)).numpy()
        np.testing.assert_array_equal(batches, decoded[order])
        orders.append(order)
    assert orders[0] != orders[1]


def test_sampler_keeps_chunks_together_so_each_decodes_once(tmp_path, sample_images, tiny_model_path) -> None:
    path = tmp_path / "d.aez"
    aezip.encode(sample_images[:100], path, tiny_model_path, chunk_size=16)
    ds = AezDataset(path, transform=lambda x: x.float() / 255, model=tiny_model_path, cache_chunks=1)
    order = list(ChunkSampler(ds, seed=0))
    chunk_runs = [ds.reader.chunk_of(i) for i in order]
    assert sum(a != b for a, b in zip(chunk_runs, chunk_runs[1:])) == len(ds.chunks) - 1   # one run per chunk
    assert order[:16] != sorted(order[:16])                                               # shuffled within it
    for i in order:
        ds[i]
    assert ds.reader.chunks_decoded == len(ds.chunks) == 7
    assert float(ds[0].max()) <= 1.0
    plain = AezDataset(path, model=tiny_model_path)
    plain[0]
    clone = pickle.loads(pickle.dumps(plain))             # what a spawned worker receives: no open file inside
    assert clone._reader is None and torch.equal(clone[42], plain[42])
    assert list(ChunkSampler(ds, shuffle=False)) == list(range(100))
