"""Sharded encoding: `encode --shard K/N` writes the K-th of N parts, `merge` joins the parts into one .aez file.

Parts split the dataset at chunk boundaries (part K holds chunks K*C//N .. (K+1)*C//N - 1 of the C chunks), and
each part is itself a valid .aez file of its images whose header also records {"index": K, "count": N, "images":
[A, B], "total": T}. Chunks do not depend on each other, so the merged file is the file one encode writes, byte for
byte: the same header (the part's, with the whole shape and without "shard") and the same chunks.
"""
from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

from aezip.files.atomic import atomic_path
from aezip.codec import check_header, source_of
from aezip.files.container import ContainerReader, ContainerWriter
from aezip.network.distributed import world_from_env
from aezip.errors import FormatError, InputError

SHARD_KEY = "shard"


def parse_shard(spec: str, env: dict[str, str] | None = None) -> tuple[int, int]:
    """'K/N' (0 <= K < N) into (K, N); 'auto' takes them from torchrun's RANK and WORLD_SIZE."""
    if spec == "auto":
        world = world_from_env(os.environ if env is None else env)
        return world.rank, world.size
    k, sep, n = spec.partition("/")
    try:
        index, count = int(k), int(n)
    except ValueError:
        index, count = -1, 0
    if not sep or not 0 <= index < count:
        raise InputError(f"--shard {spec!r}: expected K/N with 0 <= K < N, or auto")
    return index, count


def shard_output(output: Path, shard: tuple[int, int]) -> Path:
    """The output path with {k} and {n} filled in (needed when N > 1 ranks of one torchrun share a command)."""
    return Path(str(output).replace("{k}", str(shard[0])).replace("{n}", str(shard[1])))


def shard_range(total: int, chunk_size: int, shard: tuple[int, int]) -> tuple[int, int]:
    """The images [A, B) of part K of N: whole chunks, as evenly spread as chunks allow."""
    k, n = shard
    chunks = -(-total // chunk_size)
    first, last = k * chunks // n, (k + 1) * chunks // n
    if first == last:
        raise InputError(f"--shard {k}/{n}: the dataset has only {chunks} chunk(s) of {chunk_size} images; use fewer "
                         f"shards or a smaller --chunk-size")
    return first * chunk_size, min(last * chunk_size, total)


def shard_entry(shard: tuple[int, int], lo: int, hi: int, total: int) -> dict:
    """The header's record of a part: shard K of N, holding images [A, B) of T."""
    return {"index": shard[0], "count": shard[1], "images": [lo, hi], "total": total}


def _whole_header(part: dict) -> dict:
    """What every part must agree on: the header without its shard, image count and names."""
    h = {k: v for k, v in part.items() if k != SHARD_KEY}
    h["shape"] = [None, *part["shape"][1:]]
    h["source"] = {k: v for k, v in part["source"].items() if k not in ("names", "names_zlib")}
    return h


def _ordered_parts(readers: list[ContainerReader]) -> list[ContainerReader]:
    """The parts sorted by index, after checking they are one complete, non-overlapping set from one encode."""
    for r in readers:
        check_header(r)
        s = r.header.get(SHARD_KEY)
        if not isinstance(s, dict) or not {"index", "count", "images", "total"} <= s.keys():
            raise InputError(f"{r.path}: not a part written by `aezip encode --shard`")
        images = s["images"]
        if not (isinstance(images, list) and len(images) == 2
                and all(type(v) is int for v in (s["index"], s["count"], s["total"], *images))):
            raise FormatError(f"{r.path}: damaged shard entry in the header")
    first = readers[0]
    model = first.embedded_model()        # read and CRC-checked once, compared with every other part's
    for r in readers[1:]:
        if r.header["model_id"] != first.header["model_id"]:
            raise InputError(f"{r.path}: written with model {r.header['model_id'][:16]}, {first.path} with "
                             f"{first.header['model_id'][:16]}; parts must come from one model")
        if _whole_header(r.header) != _whole_header(first.header) or r.embedded_model() != model or \
                (r.header[SHARD_KEY]["count"], r.header[SHARD_KEY]["total"]) != \
                (first.header[SHARD_KEY]["count"], first.header[SHARD_KEY]["total"]):
            raise InputError(f"{r.path}: its header differs from {first.path}'s (another dataset, shard count, "
                             f"chunk size or setting); parts must come from one encode")
    count, total = first.header[SHARD_KEY]["count"], first.header[SHARD_KEY]["total"]
    by_index: dict[int, ContainerReader] = {}
    for r in readers:
        k = r.header[SHARD_KEY]["index"]
        if k in by_index:
            raise InputError(f"{r.path} and {by_index[k].path} are both shard {k}/{count}")
        by_index[k] = r
    missing = [f"{k}/{count}" for k in range(count) if k not in by_index]
    if missing:
        raise InputError(f"missing shard(s) {', '.join(missing)}: a merge needs all {count} parts")
    parts = [by_index[k] for k in range(count)]
    end = 0
    for r in parts:
        lo, hi = r.header[SHARD_KEY]["images"]
        if lo != end or hi - lo != r.total_images or r.header["shape"][0] != hi - lo:
            raise InputError(f"{r.path}: holds images {lo}..{hi - 1}, expected a part starting at image {end} "
                             f"(overlapping or inconsistent parts)")
        end = hi
    if end != total:
        raise InputError(f"the parts end at image {end}, the dataset has {total}")
    return parts


def merge_parts(paths: list[str | Path], out: str | Path, *, force: bool = False) -> int:
    """Join the parts of a sharded encode into one .aez file; returns its image count. Every checksum of every
    part is verified first."""
    if not paths:
        raise InputError("merge needs at least one part")
    readers: list[ContainerReader] = []
    try:
        for p in paths:
            readers.append(ContainerReader(p))
            readers[-1].verify()
        parts = _ordered_parts(readers)
        header = _whole_header(parts[0].header)
        header["shape"][0] = parts[0].header[SHARD_KEY]["total"]
        sources = [source_of(r) for r in parts]
        header["source"] = replace(sources[0], names=[n for s in sources for n in s.names]).to_dict()
        with atomic_path(out, force=force, inputs=paths) as tmp:
            with open(tmp, "wb") as f:
                writer = ContainerWriter(f, header, parts[0].embedded_model())
                for r in parts:
                    for i, c in enumerate(r.chunks):
                        writer.add_chunk(r.read_chunk(i), c.images)
                writer.close()
        return header["shape"][0]
    except KeyError as exc:
        raise FormatError(f"a part's header lacks {exc}") from None
    finally:
        for r in readers:
            r.close()
