"""The speed work's behaviour (not its timings: those live in `aezip bench speed`): thread policy, chunk-local
range decoding, and the speed report's rows."""
from __future__ import annotations

import numpy as np
import pytest

from aezip.codec import decode_file, encode_dataset
from aezip.files.container import ContainerReader
from aezip.files.data import open_dataset
from aezip.errors import InputError
from aezip.files.modelfile import load_model
from aezip import threads
from aezip.threads import AUTO_MAX, apply_threads, block_pool, default_threads, thread_count
from tests.conftest import write_idx


@pytest.fixture()
def keep_threads():
    """Put back the BLAS and torch thread counts and the block pool a test changed through apply_threads."""
    import torch
    from threadpoolctl import threadpool_limits
    n = torch.get_num_threads()
    with threadpool_limits(limits=None):     # restores every BLAS library's count on exit
        yield
        apply_threads("decode", 1)           # back to no block pool
    torch.set_num_threads(n)


def test_thread_count_takes_the_flag_then_omp_num_threads_then_the_idle_cores(monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    assert thread_count() == default_threads()
    assert thread_count(3) == 3
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert thread_count() == 3
    assert thread_count(1) == 1
    with pytest.raises(InputError, match="--threads must be a positive integer"):
        thread_count(0)
    monkeypatch.setenv("OMP_NUM_THREADS", "many")
    with pytest.raises(InputError, match="OMP_NUM_THREADS"):
        thread_count()


@pytest.mark.parametrize("idle, cores, expected", [(2.0, 2, 2), (1.8, 2, 2), (1.7, 2, 1), (1.0, 2, 1), (0.0, 2, 1),
                                                   (1.9, 1, 1), (3.8, 8, 4), (7.9, 8, 4)])
def test_the_default_is_the_idle_cores_between_1_and_the_measured_most(monkeypatch, idle, cores, expected):
    monkeypatch.setitem(threads._state, "idle", idle)
    monkeypatch.setattr(threads.os, "sched_getaffinity", lambda pid: set(range(cores)), raising=False)
    assert default_threads() == default_threads("decode") == expected
    assert default_threads("train") == min(expected, 2)     # training was measured up to 2 threads
    assert AUTO_MAX == {"encode": 4, "decode": 4, "train": 2}


def test_idle_cores_are_measured_once_and_lie_within_the_machine(monkeypatch):
    monkeypatch.setitem(threads._state, "idle", None)
    idle = threads.idle_cores()
    assert 0.0 <= idle <= (threads.os.cpu_count() or 1) + 1e-9
    monkeypatch.setattr(threads, "_cpu_times", lambda: pytest.fail("measured twice"))
    assert threads.idle_cores() == idle


@pytest.mark.parametrize("n", [1, 2, 3])
def test_block_pool_decodes_the_same_pixels_as_one_thread(n, keep_threads):
    from aezip.coding.intdecoder import integer_decode
    dec = load_model().intdec
    codes = np.random.default_rng(n).integers(0, 24, (1500, 24)).astype(np.int32)   # three blocks, one short
    apply_threads("decode", n)
    assert (block_pool() is None) == (n == 1)
    np.testing.assert_array_equal(integer_decode(dec, codes, block_pool()), integer_decode(dec, codes))


def test_range_decode_reads_only_the_chunks_it_needs(tmp_path, monkeypatch, tiny_model_path, sample_images):
    src = write_idx(tmp_path / "x-idx3-ubyte", sample_images[:100])
    aez = tmp_path / "x.aez"
    encode_dataset(open_dataset(src), load_model(tiny_model_path), aez, chunk_size=10)
    read = []
    original = ContainerReader.read_chunk
    monkeypatch.setattr(ContainerReader, "read_chunk", lambda self, i: read.append(i) or original(self, i))
    decode_file(aez, tmp_path / "part-idx3-ubyte", model_path=tiny_model_path, image_range="25:47")
    assert read == [2, 3, 4]
    full = tmp_path / "full-idx3-ubyte"
    decode_file(aez, full, model_path=tiny_model_path)
    np.testing.assert_array_equal(open_dataset(tmp_path / "part-idx3-ubyte").read_all(), open_dataset(full).read_all()[25:47])


def test_speed_report_times_every_codec_on_the_same_images(tiny_model_path, sample_images):
    from aezip.bench.speed import run_speed_report
    r = run_speed_report(sample_images[:40], reps=1, model_path=tiny_model_path, threads=1)
    got = {(row["codec"], row["op"], row["where"]) for row in r["rows"]}
    for codec in ("aezip lossy", "aezip lossless"):
        for op in ("encode", "decode"):
            assert {(codec, op, "in-process"), (codec, op, "whole process")} <= got
    assert {("xz -9e", "decode", "in-process"), ("zstd -3", "encode", "in-process")} <= got
    assert all(row["images_per_s"] > 0 for row in r["rows"])
    assert r["gemm_gflops"]["float64"] > 0 and r["ceilings"]["decoder_flops_per_image"] == 2 * (8 * 32 + 32 * 784)


def test_two_threads_encode_the_same_bytes(tmp_path, tiny_model_path, sample_images, keep_threads):
    """Two threads: the next chunk's codes are computed while this one is decoded, in order, to the same file."""
    src = write_idx(tmp_path / "x-idx3-ubyte", sample_images[:70])
    out = {}
    for n in (1, 2):
        apply_threads("encode", n)
        out[n] = tmp_path / f"{n}.aez"
        encode_dataset(open_dataset(src), load_model(tiny_model_path), out[n], chunk_size=16, max_error=1)
    assert out[1].read_bytes() == out[2].read_bytes()
