"""Data-parallel training across processes launched by torchrun: the process group, rank helpers, sharding.

torchrun sets RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR and MASTER_PORT in each process's environment; a process
started any other way is a world of one and never touches torch.distributed.
"""
from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from typing import Iterator

import numpy as np
import torch
import torch.distributed as dist

from aezip.errors import InputError


@dataclass(frozen=True)
class World:
    """This process's place among the training processes."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def distributed(self) -> bool:
        return self.size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def world_from_env(env: dict[str, str] | None = None) -> World:
    """The rank and world size torchrun gave this process (a world of one outside torchrun)."""
    env = os.environ if env is None else env
    if "WORLD_SIZE" not in env:
        return World()
    try:
        world = World(int(env.get("RANK", "0")), int(env["WORLD_SIZE"]), int(env.get("LOCAL_RANK", "0")))
    except ValueError:
        raise InputError(f"RANK/WORLD_SIZE/LOCAL_RANK must be integers, got {env.get('RANK')!r}/"
                         f"{env.get('WORLD_SIZE')!r}/{env.get('LOCAL_RANK')!r}") from None
    if world.size < 1 or not 0 <= world.rank < world.size:
        raise InputError(f"RANK {world.rank} does not lie in 0..WORLD_SIZE-1 (WORLD_SIZE {world.size})")
    return world


def local_device(device: torch.device, world: World) -> torch.device:
    """One GPU per process on a node (cuda:LOCAL_RANK); the CPU stays the CPU."""
    if device.type == "cuda" and world.distributed:
        torch.cuda.set_device(world.local_rank)
        return torch.device("cuda", world.local_rank)
    return device


@contextlib.contextmanager
def process_group(world: World, device: torch.device) -> Iterator[None]:
    """Join the process group for the duration (nccl on CUDA, gloo on the CPU); nothing for a world of one or
    when the caller already initialised one. Ranks leave together (a barrier): a gloo rank that tore its group down
    while rank 0 still wrote the model was seen to abort ("terminate called without an active exception")."""
    if not world.distributed or dist.is_initialized():
        yield
        return
    dist.init_process_group("nccl" if device.type == "cuda" else "gloo", rank=world.rank, world_size=world.size)
    try:
        yield
        dist.barrier()
    finally:
        dist.destroy_process_group()


def shard(indices: np.ndarray | torch.Tensor, world: World):
    """This rank's share of an index list, as DistributedSampler deals it: every size-th entry from `rank`, the
    list first padded by wrapping round so that every rank gets the same number (and takes the same steps)."""
    if not world.distributed:
        return indices
    n = len(indices)
    per_rank = -(-n // world.size)
    pad = per_rank * world.size - n
    if pad:
        extra = indices[:pad] if pad <= n else indices[np.arange(pad) % n]
        indices = torch.cat([indices, extra]) if torch.is_tensor(indices) else np.concatenate([indices, extra])
    return indices[world.rank::world.size]


def all_sum(values: list[float], world: World) -> list[float]:
    """Element-wise sum of `values` over every rank (float64; the values themselves for a world of one)."""
    if not world.distributed:
        return values
    t = torch.tensor(values, dtype=torch.float64)
    if dist.get_backend() == "nccl":
        t = t.cuda()
    dist.all_reduce(t)
    return t.cpu().tolist()


def data_parallel(module: torch.nn.Module, world: World, device: torch.device) -> torch.nn.Module:
    """The module wrapped in DistributedDataParallel across the world (itself for a world of one)."""
    if not world.distributed:
        return module
    from torch.nn.parallel import DistributedDataParallel
    return DistributedDataParallel(module, device_ids=[device.index] if device.type == "cuda" else None)
