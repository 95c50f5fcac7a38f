"""`--jobs N`: encode or decode chunks in N worker processes, results taken back in chunk order.

Workers are forked where the platform can (they inherit the loaded model: nothing is re-imported or re-read) and
spawned elsewhere (the model is sent once to each); like torch's DataLoader workers, each runs one thread (and
starts its own thread state: no pool inherited from the parent). A chunk's
bytes do not depend on which process coded it, so the file is the one `--jobs 1` writes. At most 2 x N chunks are
in flight, so memory stays bounded.
"""
from __future__ import annotations

import multiprocessing
from collections import deque
from concurrent.futures import Future, ProcessPoolExecutor
from typing import Callable, Iterable, Iterator

import numpy as np

from aezip.conv.model import is_conv
from aezip.errors import InputError
from aezip.files.modelfile import ModelFile

_worker: dict = {}   # in a worker process: the model and the coding settings


def _start_worker(mf: ModelFile, settings: dict) -> None:
    from aezip.threads import apply_threads
    apply_threads(settings["path"], 1)   # one thread, and no thread pool inherited from the parent
    if settings["path"] == "encode":
        mf.model.to(settings["device"])
    _worker.update(settings, mf=mf)


def _encode_in_worker(chunk: np.ndarray) -> tuple[tuple[bytes, float, int], int]:
    from aezip.chunks import chunk_codes, encode_chunk, encode_conv_chunk
    w = _worker
    if is_conv(w["mf"]):
        return encode_conv_chunk(w["mf"], chunk, w["quality"], w["backend"], w["device"], w["max_error"],
                                 w["pixel_methods"], w["search"]), len(chunk)
    codes = chunk_codes(w["mf"], chunk, w["backend"], w["device"], w["quality"], w["search"])
    return encode_chunk(w["mf"], chunk, codes, w["max_error"], w["quality"], w["pixel_methods"]), len(chunk)


def _decode_in_worker(item: tuple[bytes, int, str]) -> np.ndarray:
    from aezip.chunks import decode_payload
    payload, images, where = item
    return decode_payload(_worker["mf"], payload, images, _worker["header"], where)


def ordered_map(fn: Callable, items: Iterable, jobs: int, mf: ModelFile, settings: dict) -> Iterator:
    """fn over items in `jobs` worker processes (each with the model and `settings`), results in input order."""
    method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
    with ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context(method), initializer=_start_worker,
                             initargs=(mf, settings)) as pool:
        window: deque[Future] = deque()
        for item in items:
            window.append(pool.submit(fn, item))
            if len(window) >= 2 * jobs:
                yield window.popleft().result()
        while window:
            yield window.popleft().result()


def _check_jobs(jobs: int) -> None:
    if jobs < 1:
        raise InputError(f"--jobs must be at least 1, got {jobs}")


def encode_chunks(mf: ModelFile, chunks: Iterable[np.ndarray], max_error: int | None, backend: str,
                  device, jobs: int, quality: int | None = None, pixel_methods: tuple[int, ...] | None = None,
                  search: bool = False) -> Iterator[tuple[tuple[bytes, float, int], int]]:
    """(payload, squared error, max error) and image count of each chunk (codes of `quality`, refined by the
    encoder's search with `search`), in order (pixel_methods: see chunks.encode_chunk)."""
    from aezip.chunks import chunk_codes, encode_chunk
    from aezip.threads import prefetch
    _check_jobs(jobs)
    if jobs == 1 and is_conv(mf):
        from aezip.chunks import encode_conv_chunk
        return ((encode_conv_chunk(mf, c, quality, backend, device, max_error, pixel_methods, search), len(c))
                for c in chunks)
    if jobs == 1:
        mf.model.to(device)
        coded = ((c, chunk_codes(mf, c, backend, device, quality, search)) for c in chunks)
        # the next chunk's codes are computed while this one is coded (with more than one thread)
        return ((encode_chunk(mf, c, codes, max_error, quality, pixel_methods), len(c))
                for c, codes in prefetch(coded))
    settings = {"path": "encode", "max_error": max_error, "backend": backend, "device": str(device),
                "quality": quality, "pixel_methods": pixel_methods, "search": search}
    return ordered_map(_encode_in_worker, chunks, jobs, mf, settings)


def decode_chunks(mf: ModelFile, payloads: Iterable[tuple[bytes, int, str]], header: dict,
                  jobs: int) -> Iterator[np.ndarray]:
    """The images (uint8, n x the image shape) of each (payload, image count, where) of a file with this header,
    in order."""
    from aezip.chunks import decode_payload
    _check_jobs(jobs)
    if jobs == 1:
        return (decode_payload(mf, p, n, header, where) for p, n, where in payloads)
    return ordered_map(_decode_in_worker, payloads, jobs, mf, {"path": "decode", "header": header})
