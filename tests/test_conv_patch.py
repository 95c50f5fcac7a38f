"""Decoder patches (`aezip encode --adapt STEPS --adapt-decoder`, aezip.conv.patch): the rate point's synthesis biases
and betas tuned with its encoder, carried in the file (container version 4) and applied by the decoder with every
bound of a stored network checked; hostile patches are refused in one line."""
from __future__ import annotations

import struct

import numpy as np
import pytest

import aezip
from aezip.conv.adapt import adapt
from aezip.conv.model import ConvModel
from aezip.conv.patch import MAX_SHIFT, apply_patch
from aezip.errors import FormatError, ParameterError
from aezip.files.container import ContainerReader
from tests import aezcraft
from tests.test_cli import assert_one_line_error, run
from tests.test_conv_codec import TINY, _images


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> ConvModel:
    mf = aezip.train_conv(_images((32, 32, 3), 12), **TINY)
    mf.save(tmp_path_factory.mktemp("patch") / "rgb.aezm")
    return aezip.load_model(mf.path)


@pytest.fixture(scope="module")
def patched(model) -> tuple[np.ndarray, bytes]:
    """Images and their file, rate point 2 adapted with its decoder."""
    images = _images((37, 45, 3), 5, seed=6)
    return images, aezip.compress(images, model, quality=2, adapt=30, adapt_decoder=True)


def test_the_patch_changes_the_synthesis_biases_and_betas_alone(model) -> None:
    images = _images((37, 45, 3), 5, seed=6)
    adapted, patch = adapt(model, 1, images, 30, lr=0.01, decoder=True)     # a tiny model needs big steps to move
    assert patch is not None and adapted.id == model.id
    assert adapted.points[0] is model.points[0]                          # other rate points are the model's
    old, new = model.points[1], adapted.points[1]
    assert old.hyper is new.hyper and old.tables is new.tables
    moved = 0
    for a, b in zip(old.synthesis.layers, new.synthesis.layers):
        assert np.array_equal(a.weight, b.weight) and (a.acc_frac, a.gdn_frac) == (b.acc_frac, b.gdn_frac)
        assert a.gamma is None or np.array_equal(a.gamma, b.gamma)
        moved += int((a.bias != b.bias).sum()) + (0 if a.beta is None else int((a.beta != b.beta).sum()))
    assert moved > 0
    again = apply_patch(old, patch, 1)                                    # the bytes say exactly that network
    assert all(np.array_equal(x.bias, y.bias) for x, y in zip(again.synthesis.layers, new.synthesis.layers))
    assert adapt(model, 1, images, 5, lr=0.01)[1] is None                # without the decoder: no patch


def test_a_patched_file_decodes_to_what_the_encoder_measured_and_not_without_its_patch(model, patched, tmp_path,
                                                                                       capsys) -> None:
    images, blob = patched
    reader = ContainerReader(blob)
    assert reader.version == 4 and 0 < reader.patch_bytes < 200 and reader.model_bytes == 0
    decoded = aezip.decompress(blob, model)
    report = aezip.encode(images, tmp_path / "p.aez", model, quality=2, adapt=30, adapt_decoder=True)
    assert (tmp_path / "p.aez").read_bytes() == blob                      # seeded: the same bytes
    assert report.psnr_db == pytest.approx(aezip.metrics.psnr(images.reshape(5, -1), decoded.reshape(5, -1)))
    assert report.file_bytes == len(blob)                                 # the patch counts in the rate
    plain = aezcraft.parse(blob)
    plain.patch, plain.version = None, 2                                  # the same file without its patch
    with pytest.raises(FormatError, match="checksum"):
        aezip.decompress(aezcraft.build(plain), model)
    assert aezip.info(blob)["decoder_patch_bytes"] == reader.patch_bytes
    code, out, _ = run(capsys, "info", tmp_path / "p.aez")
    assert code == 0 and f"decoder patch: {reader.patch_bytes} bytes" in out
    code, _, _ = run(capsys, "decode", tmp_path / "p.aez", "-m", model.path, "-o", tmp_path / "p.npy")
    assert code == 0 and np.array_equal(np.load(tmp_path / "p.npy"), decoded)


def test_a_patched_file_with_its_model_embedded_decodes_alone(model, patched) -> None:
    images, blob = patched
    both = aezip.compress(images, model, quality=2, adapt=30, adapt_decoder=True, embed_model=True)
    reader = ContainerReader(both)
    assert reader.version == 4 and reader.model_bytes > 0 and reader.patch_bytes > 0
    assert np.array_equal(aezip.decompress(both), aezip.decompress(blob, model))


def _vector(layer: int, kind: int, shift: int, width: int, values: list[int]) -> bytes:
    return struct.pack(">BBBBH", layer, kind, shift, width, len(values)) + np.array(values, f">i{width}").tobytes()


@pytest.mark.parametrize("edit, needle", [
    (lambda p, n: p[:5], "not one aezip writes"),
    (lambda p, n: b"XXXX" + p[4:], "not an aezip decoder patch"),
    (lambda p, n: p[:4] + b"\x02" + p[5:], "not an aezip decoder patch"),
    (lambda p, n: p[:5] + b"\x00" + p[6:], "for rate point 1, the file's is 2"),
    (lambda p, n: p[:6] + bytes([p[6] + 1]) + p[7:], "truncated"),
    (lambda p, n: p[:6] + b"\x01" + _vector(7, 0, 0, 1, [1] * n), "unknown or repeated"),
    (lambda p, n: p[:6] + b"\x01" + _vector(2, 1, 0, 1, [1] * 3), "unknown or repeated"),   # the last layer: no beta
    (lambda p, n: p[:6] + b"\x02" + _vector(0, 0, 0, 1, [1] * n) * 2, "unknown or repeated"),
    (lambda p, n: p[:6] + b"\x01" + struct.pack(">BBBBH", 0, 0, 0, 3, n) + bytes(3 * n), "unknown or repeated"),
    (lambda p, n: p[:6] + b"\x01" + _vector(0, 0, 0, 1, [1] * (n + 1)), "has"),
    (lambda p, n: p[:6] + b"\x01" + _vector(0, 0, MAX_SHIFT + 1, 1, [1] * n), "shift"),
    (lambda p, n: p + b"\x00", "bytes follow"),
    (lambda p, n: p[:6] + b"\x01" + _vector(2, 0, MAX_SHIFT, 2, [32767] * 3), "breaks a bound"),
])
def test_hostile_patches_are_refused(model, patched, tmp_path, capsys, edit, needle) -> None:
    _, blob = patched
    n = model.config.n
    parts = aezcraft.parse(blob)
    hostile = edit(parts.patch, n)
    with pytest.raises(FormatError, match=needle):
        apply_patch(model.points[1], hostile, 1)
    parts.patch = hostile
    (tmp_path / "h.aez").write_bytes(aezcraft.build(parts))
    code, _, err = run(capsys, "decode", tmp_path / "h.aez", "-m", model.path, "-o", tmp_path / "h.npy")
    assert_one_line_error(code, err, "h.aez")
    assert not (tmp_path / "h.npy").exists()


def test_an_empty_or_oversized_patch_section_is_damage(model, patched) -> None:
    parts = aezcraft.parse(patched[1])
    parts.patch = b""
    with pytest.raises(FormatError, match="decoder patch's length is out of range"):
        ContainerReader(aezcraft.build(parts))
    parts.patch = bytes(70_000)
    with pytest.raises(FormatError, match="decoder patch's length is out of range"):
        ContainerReader(aezcraft.build(parts))


def test_adapt_decoder_is_refused_where_it_cannot_serve(model, tmp_path, capsys) -> None:
    images = _images((16, 16, 3), 4)
    with pytest.raises(ParameterError, match="adapt_decoder .*give adapt a number of steps"):
        aezip.compress(images, model, adapt_decoder=True)
    np.save(tmp_path / "d.npy", images)
    with pytest.raises(ParameterError, match="adapt_decoder .*without shards"):
        aezip.encode(tmp_path / "d.npy", tmp_path / "s.aez", model, adapt=5, adapt_decoder=True, shard=(0, 2),
                     chunk_size=2)
    code, _, err = run(capsys, "encode", tmp_path / "d.npy", "-m", model.path, "-o", tmp_path / "d.aez",
                       "--adapt-decoder")
    assert_one_line_error(code, err, "--adapt-decoder")
    assert not (tmp_path / "d.aez").exists()


def test_bench_rows_measure_patched_files(model, tmp_path) -> None:
    from aezip.bench.report import aezip_rows
    images = _images((32, 32, 3), 4)
    rows = aezip_rows(images, [("c", model.path)], [], tmp_path, adapt=3, adapt_decoder=True)
    assert rows[1].setting.endswith("--quality 2, --adapt 3 --adapt-decoder")
    assert rows[1].bytes == len(aezip.compress(images, model, quality=2, adapt=3, adapt_decoder=True))
