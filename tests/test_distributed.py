"""Data-parallel training: two gloo processes on the CPU, launched by torchrun or torch.multiprocessing."""
from __future__ import annotations

import copy
import hashlib
import os
import socket
import subprocess
import sys

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

import aezip
from aezip.codec import decode_file, encode_dataset
from aezip.files.data import open_dataset
from aezip.network.distributed import World, shard, world_from_env
from aezip.errors import InputError
from aezip.network.losses import LatentDensity, reconstruction_loss, sparsity_penalty
from aezip.network.model import AEConfig, AutoEncoder
from aezip.files.modelfile import load_model, model_bytes
from aezip.network.training import TrainOptions, _TrainForward, train_model


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_world_from_the_torchrun_environment() -> None:
    assert world_from_env({}) == World(0, 1, 0)
    w = world_from_env({"RANK": "3", "WORLD_SIZE": "4", "LOCAL_RANK": "1"})
    assert (w.rank, w.size, w.local_rank, w.distributed, w.is_main) == (3, 4, 1, True, False)
    for bad in ({"RANK": "4", "WORLD_SIZE": "4"}, {"RANK": "x", "WORLD_SIZE": "2"}):
        with pytest.raises(InputError):
            world_from_env(bad)


def test_shards_cover_every_index_with_equal_counts() -> None:
    idx = np.arange(10)
    parts = [shard(idx, World(r, 3)) for r in range(3)]
    assert [len(p) for p in parts] == [4, 4, 4]
    assert sorted(np.concatenate(parts).tolist()) == sorted([*range(10), 0, 1])   # padded by wrapping round
    assert shard(idx, World()) is idx
    assert torch.equal(shard(torch.arange(5), World(1, 2)), torch.tensor([1, 3, 0]))


def _loss(forward: torch.nn.Module, x: torch.Tensor, backend: str) -> torch.Tensor:
    h, logits, bits = forward(x, None)   # straight-through rounding: no random numbers
    return reconstruction_loss(logits, x, "bce") + sparsity_penalty(h, 0.05, 1.0, backend) + 0.1 * bits


def _worker(rank: int, port: int, images: np.ndarray, out: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=2)
    from torch.nn.parallel import DistributedDataParallel
    for backend in ("torch", "triton"):
        torch.manual_seed(0)
        model = AutoEncoder(AEConfig((28, 28), (16,), 4, 8))
        x = torch.rand(14, 784)
        density = LatentDensity(4)
        reference = _TrainForward(copy.deepcopy(model), backend, "ste", density=copy.deepcopy(density))
        grads = []
        for half in (x[:7], x[7:]):
            reference.zero_grad()
            _loss(reference, half, backend).backward()
            grads.append([p.grad.clone() for p in reference.parameters()])
        forward = _TrainForward(model, backend, "ste", density=density)
        ddp = DistributedDataParallel(forward)
        _loss(ddp, x[7 * rank:7 * rank + 7], backend).backward()
        for p, a, b in zip(forward.parameters(), *grads):   # each rank holds the mean of both ranks' gradients
            torch.testing.assert_close(p.grad, (a + b) / 2, rtol=1e-5, atol=1e-6)
    opts = TrainOptions(epochs=2, batch_size=16, seed=5, device="cpu", backend="torch", prior="adversarial",
                        shift=1, denoise="mask:0.1")
    cfg = AEConfig((28, 28), (16,), 4, 8)
    runs = [train_model(images, cfg, opts, progress=False, log=lambda m: None, world=World(rank, 2))
            for _ in range(2)]
    dist.barrier()                 # leave together, as aezip.network.distributed.process_group does
    dist.destroy_process_group()
    if rank == 0:
        with open(out, "w") as f:
            f.write(" ".join(hashlib.sha256(model_bytes(r)).hexdigest() for r in runs))
    else:
        assert runs == [None, None]


def test_ddp_all_reduces_the_custom_autograd_gradients_and_training_is_deterministic(tmp_path,
                                                                                      sample_images) -> None:
    out = tmp_path / "hashes"
    mp.spawn(_worker, args=(_free_port(), sample_images[:96], str(out)), nprocs=2)
    first, second = out.read_text().split()
    assert first == second


def test_torchrun_training_rank_zero_alone_writes_a_valid_model(tmp_path, sample_images) -> None:
    np.save(tmp_path / "train.npy", sample_images[:200])
    models = tmp_path / "models"
    models.mkdir()
    env = {**os.environ, "OMP_NUM_THREADS": "1", "AEZIP_BACKEND": "torch"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "aezip.cli.main", "train", str(tmp_path / "train.npy"), "-o", str(models / "m.aezm"),
           "--hidden", "16", "--latent", "4", "--levels", "8", "--epochs", "2", "--batch-size", "16"]
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in models.iterdir()) == ["m.aezm"]          # nothing else, no stray temp files
    assert r.stdout.count("wrote") == 1 and "2 processes x batch 16" in r.stderr
    mf = load_model(models / "m.aezm")
    assert mf.info["train_images"] == 180
    np.save(tmp_path / "few.npy", sample_images[200:220])
    report = encode_dataset(open_dataset(tmp_path / "few.npy"), mf, tmp_path / "few.aez")
    decode_file(tmp_path / "few.aez", tmp_path / "back.npy", model_path=models / "m.aezm")
    back = np.load(tmp_path / "back.npy")
    assert back.shape == (20, 28, 28) and report.psnr_db > 5


def test_torchrun_trains_a_conv_model_with_a_wall_time_budget_the_ranks_agree_on(tmp_path) -> None:
    """Each rank draws its own batches; the wall-time budget and the learning-rate drop follow rank 0's clock, so
    both take the same steps (otherwise DDP would wait forever on the rank that stopped) and rank 0 writes."""
    rng = np.random.default_rng(0)
    np.save(tmp_path / "train.npy", rng.integers(0, 256, (40, 20, 24, 3), dtype=np.uint8))
    models = tmp_path / "models"
    models.mkdir()
    env = {**os.environ, "OMP_NUM_THREADS": "1", "AEZIP_BACKEND": "torch"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "aezip.cli.main", "train", str(tmp_path / "train.npy"), "-o", str(models / "c.aezm"),
           "--arch", "conv", "--rates", "0.001,0.01", "--seconds", "4", "--batch-size", "4"]
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in models.iterdir()) == ["c.aezm"]
    assert r.stdout.count("wrote") == 1 and "2 processes x batch 4" in r.stderr
    mf = load_model(models / "c.aezm")
    assert mf.info["processes"] == 2 and mf.info["steps"] > 0 and mf.config.rates == 2
    back = aezip.decompress(aezip.compress(np.load(tmp_path / "train.npy")[:5], mf, quality=1), mf)
    assert back.shape == (5, 20, 24, 3)
