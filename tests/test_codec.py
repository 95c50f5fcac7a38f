"""Encode/decode round trips, the .aez container's checks, determinism and the max-error bound."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aezip.codec import decode_file, encode_dataset
from aezip.fileinfo import file_info
from aezip.files.container import FORMAT_VERSION
from aezip.files.data import open_dataset
from aezip.errors import FormatError, ModelMismatchError
from aezip.files.modelfile import load_model
from aezip.coding.residual import N_CONTEXTS, decode_residual, encode_residual
from tests.conftest import write_idx


@pytest.fixture()
def encoded(tmp_path, tiny_model_path, sample_images):
    src = write_idx(tmp_path / "data-idx3-ubyte", sample_images[:50])
    out = tmp_path / "data.aez"
    encode_dataset(open_dataset(src), load_model(tiny_model_path), out, chunk_size=16)
    return src, out


def test_round_trip_keeps_shape_dtype_format_and_is_deterministic(tmp_path, encoded, tiny_model_path) -> None:
    src, aez = encoded
    a, b = tmp_path / "a-idx3-ubyte", tmp_path / "b-idx3-ubyte"
    decode_file(aez, a, model_path=tiny_model_path)
    decode_file(aez, b, model_path=tiny_model_path)
    ds = open_dataset(a)
    assert ds.shape == open_dataset(src).shape and ds.source.format == "idx"
    assert ds.read_all().dtype == np.uint8
    assert a.read_bytes() == b.read_bytes()
    again = tmp_path / "again.aez"
    encode_dataset(open_dataset(src), load_model(tiny_model_path), again, chunk_size=16)
    assert again.read_bytes() == aez.read_bytes()


def test_range_decodes_only_those_images(tmp_path, encoded, tiny_model_path) -> None:
    _, aez = encoded
    full, part = tmp_path / "full-idx3-ubyte", tmp_path / "part-idx3-ubyte"
    decode_file(aez, full, model_path=tiny_model_path)
    decode_file(aez, part, model_path=tiny_model_path, image_range="13:37")
    np.testing.assert_array_equal(open_dataset(part).read_all(), open_dataset(full).read_all()[13:37])


def test_info_reports_the_header(encoded) -> None:
    _, aez = encoded
    h = file_info(aez)
    assert h["shape"] == [50, 28, 28] and h["source"]["format"] == "idx" and h["chunks"] == 4
    assert h["bits_per_pixel"] == pytest.approx(aez.stat().st_size * 8 / (50 * 784))
    assert h["decoder"] == "fixed-point-v1" and h["backend"] == "torch"


def _damaged(tmp_path, aez, edit) -> str:
    bad = tmp_path / "bad.aez"
    bad.write_bytes(edit(bytearray(aez.read_bytes())))
    return bad


@pytest.mark.parametrize("edit,message", [
    (lambda b: b"PK\x03\x04" + b[4:], "bad magic"),
    (lambda b: b[:8] + bytes([0, 9]) + b[10:], "unsupported .aez format version 9"),
    (lambda b: b[:len(b) // 2], "truncated"),
    (lambda b: b[:-1], "truncated"),
    (lambda b: b[:300] + bytes([b[300] ^ 0x10]) + b[301:], "CRC mismatch"),
])
def test_damaged_files_are_detected(tmp_path, encoded, tiny_model_path, edit, message) -> None:
    _, aez = encoded
    bad = _damaged(tmp_path, aez, edit)
    with pytest.raises(FormatError, match=message):
        decode_file(bad, tmp_path / "out-idx3-ubyte", model_path=tiny_model_path)
    assert not (tmp_path / "out-idx3-ubyte").exists()
    assert aez.read_bytes()[8:10] == FORMAT_VERSION.to_bytes(2, "big")   # the intact file carries the version


def test_every_single_byte_flip_is_detected(tmp_path, encoded, tiny_model_path) -> None:
    _, aez = encoded
    data = aez.read_bytes()
    for pos in range(0, len(data), max(1, len(data) // 60)):
        bad = _damaged(tmp_path, aez, lambda b: b[:pos] + bytes([b[pos] ^ 0x01]) + b[pos + 1:])
        with pytest.raises(FormatError):
            decode_file(bad, tmp_path / "o-idx3-ubyte", model_path=tiny_model_path)


def test_decoding_with_another_model_is_refused(tmp_path, encoded) -> None:
    _, aez = encoded
    with pytest.raises(ModelMismatchError, match="written with model"):
        decode_file(aez, tmp_path / "out-idx3-ubyte")   # the embedded default model did not write it


@pytest.mark.parametrize("max_error", [0, 1, 4])
def test_max_error_bound_holds_through_the_file(tmp_path, tiny_model_path, sample_images, max_error) -> None:
    src = write_idx(tmp_path / "d-idx3-ubyte", sample_images[:20])
    aez, out = tmp_path / "d.aez", tmp_path / "o-idx3-ubyte"
    report = encode_dataset(open_dataset(src), load_model(tiny_model_path), aez, max_error=max_error)
    decode_file(aez, out, model_path=tiny_model_path)
    err = np.abs(open_dataset(out).read_all().astype(int) - sample_images[:20].astype(int))
    assert err.max() <= max_error and report.max_abs_error == err.max()
    if max_error == 0:
        assert out.read_bytes() == src.read_bytes()


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.integers(0, 16), st.sampled_from(["zeros", "full", "noise", "bars"]), st.integers(0, 2 ** 16))
def test_residual_bound_on_generated_images(max_error: int, kind: str, seed: int) -> None:
    rng = np.random.default_rng(seed)
    shape = (5, 7, 3) if seed % 2 else (6, 9)
    d = int(np.prod(shape))
    x = {"zeros": np.zeros((4, d)), "full": np.full((4, d), 255), "noise": rng.integers(0, 256, (4, d)),
         "bars": np.tile(np.arange(d) % 256, (4, 1))}[kind].astype(np.uint8)
    pred = rng.integers(0, 256, (4, d)).astype(np.uint8)
    prior = np.random.default_rng(seed).integers(0, 50, (N_CONTEXTS, 256))
    data, recon = encode_residual(x, pred, shape, max_error, prior)
    assert np.abs(recon.astype(int) - x.astype(int)).max() <= max_error
    np.testing.assert_array_equal(decode_residual(data, pred, shape, max_error, prior), recon)


def test_decoding_is_identical_across_processes_and_thread_counts(tmp_path, tiny_model_path, sample_images) -> None:
    src = write_idx(tmp_path / "d-idx3-ubyte", sample_images[:40])
    script = textwrap.dedent("""
        import sys
        from aezip.threads import apply_threads
        apply_threads(sys.argv[2], int(sys.argv[1]))   # numpy's BLAS (decode), and torch too (encode)
        from aezip.codec import encode_dataset, decode_file
        from aezip.files.data import open_dataset
        from aezip.files.modelfile import load_model
        if sys.argv[2] == "encode":
            encode_dataset(open_dataset(sys.argv[3]), load_model(sys.argv[5]), sys.argv[4], max_error=2)
        else:
            decode_file(sys.argv[3], sys.argv[4], model_path=sys.argv[5])
    """)
    env = dict(os.environ)
    run = lambda *a: subprocess.run([sys.executable, "-c", script, *map(str, a)], check=True, env=env)  # noqa: E731
    run(2, "encode", src, tmp_path / "x.aez", tiny_model_path)
    run(1, "decode", tmp_path / "x.aez", tmp_path / "one-idx3-ubyte", tiny_model_path)
    run(2, "decode", tmp_path / "x.aez", tmp_path / "two-idx3-ubyte", tiny_model_path)
    assert (tmp_path / "one-idx3-ubyte").read_bytes() == (tmp_path / "two-idx3-ubyte").read_bytes()


def test_lossless_through_the_triton_encoder_decodes_to_the_same_bytes(tmp_path, tiny_model_path, sample_images):
    src = write_idx(tmp_path / "d-idx3-ubyte", sample_images[:9])
    for backend in ("triton", "torch"):
        aez, out = tmp_path / f"{backend}.aez", tmp_path / f"{backend}-idx3-ubyte"
        encode_dataset(open_dataset(src), load_model(tiny_model_path), aez, max_error=0, backend=backend)
        assert file_info(aez)["backend"] == backend
        decode_file(aez, out, model_path=tiny_model_path)
        assert out.read_bytes() == src.read_bytes()
