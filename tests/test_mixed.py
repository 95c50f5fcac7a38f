"""`aezip encode --psnr T --per-chunk` (aezip.mixed): files whose chunks each take their own rate point or error
bound reach the target, decode exactly on their own settings, are never larger than one setting for every chunk,
and a damaged setting, patch section or header is refused."""
from __future__ import annotations

import io
import itertools
import json

import numpy as np
import pytest

import aezip
from aezip.chunks import setting_prefix
from aezip.coding.pixelstream import PIXEL_CODER
from aezip.conv.patch import pack_patches, unpack_patches
from aezip.errors import FormatError, ParameterError
from aezip.files.container import ContainerReader
from aezip.files.data import array_dataset
from aezip.files.decodemodel import decoder_bytes
from aezip.files.header import validate_header
from aezip.metrics import psnr, psnr_from_mse
from aezip.mixed import Candidate, Group, choose, choose_file, code_candidates, sse_budget, write_file
from tests import aezcraft
from tests.test_cli import assert_one_line_error, run
from tests.test_conv_codec import TINY, _images

CHUNK = 6


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    mf = aezip.train_conv(_images((16, 16), 12), **TINY)
    mf.save(tmp_path_factory.mktemp("mixed") / "gray.aezm")
    return mf


@pytest.fixture(scope="module")
def images() -> np.ndarray:
    return _images((16, 16), 20, seed=7)


def _per_chunk(images, model, target, **kw) -> tuple[bytes, aezip.CodecReport]:
    buf = io.BytesIO()
    report = aezip.encode(images, buf, model, psnr=target, per_chunk=True, chunk_size=CHUNK, **kw)
    return buf.getvalue(), report


def _settings(blob: bytes) -> list[tuple[int, int | None]]:
    """Each chunk's (rate point, bound) as its payload's first bytes say."""
    with ContainerReader(blob) as reader:
        out = []
        for i in range(len(reader.chunks)):
            p = reader.read_chunk(i)
            out.append((p[0] & 0x7F, p[1] if p[0] & 0x80 else None))
        return out


def _brute_force(cands: list[list[Candidate]], budget: int) -> int:
    return min(sum(x.size for x in combo) for combo in itertools.product(*cands) if sum(x.sse for x in combo) <= budget)


def test_the_budget_is_the_largest_error_that_reaches_the_target() -> None:
    for target, samples in ((20.0, 1000), (30.5, 12_345), (41.3, 7)):
        s = sse_budget(target, samples)
        assert psnr_from_mse(s / samples) >= target > psnr_from_mse((s + 1) / samples)
    assert sse_budget(float("inf"), 100) == 0


def test_the_choice_fits_the_budget_and_is_near_the_optimum() -> None:
    rng = np.random.default_rng(0)
    worse = []
    for _ in range(200):
        cands = [[Candidate(1, 0, b"x" * int(rng.integers(50, 80)), 0, 0, False)]
                 + [Candidate(1, None, b"x" * int(rng.integers(1, 60)), int(rng.integers(1, 500)), 1, True)
                    for _ in range(int(rng.integers(1, 5)))] for _ in range(int(rng.integers(2, 5)))]
        budget = int(rng.integers(0, 1000))
        chunks = choose([Group([], [cs], [1]) for cs in cands], budget)
        assert [n for _, n in chunks] == [1] * len(cands) and all(x in cs for (x, _), cs in zip(chunks, cands))
        assert sum(x.sse for x, _ in chunks) <= budget
        worse.append(sum(x.size for x, _ in chunks) / _brute_force(cands, budget) - 1)
    assert np.mean(worse) < 0.02 and np.mean(np.array(worse) == 0) > 0.8     # a heuristic: measured 0.9 %, 90 %


def test_per_chunk_files_reach_the_target_and_decode_on_each_chunks_setting(model, images) -> None:
    for target in (16.0, 22.0, 35.0, float("inf")):
        blob, report = _per_chunk(images, model, target)
        decoded = aezip.decompress(blob, model)
        assert report.psnr_db >= target and psnr(images, decoded) == pytest.approx(report.psnr_db)
        assert report.file_bytes == len(blob) and report.picked.startswith("per chunk (")
        settings = _settings(blob)
        with ContainerReader(blob) as reader:
            counts = [c.images for c in reader.chunks]
        assert counts in ([20], [6, 6, 6, 2])                             # the group whole, or its parts
        for (rate, bound), a, n in zip(settings, np.cumsum([0] + counts), counts):
            assert 1 <= rate <= 2
            err = np.abs(images[a:a + n].astype(int) - decoded[a:a + n]).max()
            assert bound is None or err <= bound                            # each chunk keeps its own bound
        if target == float("inf"):
            assert np.array_equal(decoded, images) and {b for _, b in settings} == {0}
        info = aezip.info(blob)
        assert sum(info["chunk_settings"].values()) == len(counts) and info["entropy"] == "conv-hyperprior-v1-per-chunk"


def test_a_per_chunk_file_is_never_larger_than_one_setting_for_every_chunk(model, images) -> None:
    target = 20.0
    blob, _ = _per_chunk(images, model, target)
    for chunk_size, chunks in ((CHUNK, 4), (None, 1)):                # the parts, or the group whole
        for setting in ({"quality": 1}, {"quality": 2}, {"max_error": 16}, {"max_error": 32}):
            one = aezip.compress(images, model, chunk_size=chunk_size, **setting)
            if psnr(images, aezip.decompress(one, model)) >= target:   # a uniform choice pays its settings' bytes
                assert len(blob) <= len(one) + len(setting_prefix(1, setting.get("max_error"))) * chunks


def test_mixtures_beat_single_settings_between_rate_points() -> None:
    """Two chunks, two rate points: halfway in error, mixing costs less than the finer point for both."""
    lo = [Candidate(1, None, b"a" * 10, 900, 9, True), Candidate(2, None, b"b" * 40, 100, 3, True),
          Candidate(1, 0, b"c" * 90, 0, 0, False)]
    assert sorted(x.rate for x, _ in choose([Group([], [lo, list(lo)], [1, 1])], 1000)) == [1, 2]


def test_a_group_goes_whole_where_that_is_smaller() -> None:
    """A group of two parts: coded whole it takes fewer bytes at the same error, and the choice takes it."""
    part = [Candidate(1, None, b"p" * 30, 100, 3, True), Candidate(1, 0, b"q" * 90, 0, 0, False)]
    whole = [Candidate(1, None, b"w" * 50, 200, 3, True), Candidate(1, 0, b"z" * 170, 0, 0, False)]
    assert [(x.body[:1], n) for x, n in choose([Group(whole, [part, list(part)], [4, 3])], 200)] == [(b"w", 7)]
    assert [(x.body[:1], n) for x, n in choose([Group(whole, [part, list(part)], [4, 3])], 199)] == [(b"p", 4),
                                                                                                      (b"q", 3)]


def test_embedded_and_adapted_per_chunk_files_decode_without_help(model, images) -> None:
    blob, report = _per_chunk(images, model, 18.0, embed_model=True)
    with ContainerReader(blob) as reader:
        h = reader.header
        rates = sorted({r for r, _ in _settings(blob)})
        bounded = any(b is not None for _, b in _settings(blob))
        assert reader.model_bytes == report.model_bytes == len(
            decoder_bytes(model, max_error_parts=bounded, rates=[r - 1 for r in rates]))
    assert "quality" not in h and h["max_error"] is None
    assert psnr(images, aezip.decompress(blob)) == pytest.approx(report.psnr_db)     # no model given
    blob, report = _per_chunk(images, model, 18.0, adapt=2, adapt_decoder=True)
    with ContainerReader(blob) as reader:
        patched = set(unpack_patches(reader.decoder_patch()))
        assert reader.header["adapted"] == {"steps": 2, "images": len(images)}
    assert patched <= {r - 1 for r, _ in _settings(blob)}
    assert psnr(images, aezip.decompress(blob, model)) == pytest.approx(report.psnr_db)


def test_bench_rows_hold_real_per_chunk_files(model, images, tmp_path) -> None:
    from aezip.bench.report import per_chunk_rows, Row
    own = [Row("aezip m", "q", 0, 0.0, 17.2, 9, 0, 0), Row("aezip m", "e", 0, 0.0, 19.9, 2, 0, 0)]
    rows = per_chunk_rows(images, "m", model, own, tmp_path)
    assert [r.setting.split(", ")[-1] for r in rows] == ["--psnr 18 --per-chunk", "--psnr 19 --per-chunk"]
    cands = code_candidates(array_dataset(images), model)
    buf = io.BytesIO()
    write_file(buf, cands, choose_file(cands, 18.0), array_dataset(images).source)
    assert rows[0].bytes == len(buf.getvalue()) and rows[0].psnr_db >= 18.0


def test_per_chunk_is_refused_where_it_does_not_apply(model, images) -> None:
    with pytest.raises(ParameterError, match="give --psnr"):
        aezip.compress(images, model, per_chunk=True)
    with pytest.raises(ParameterError, match="MLP"):
        aezip.compress(np.zeros((2, 28, 28), np.uint8), None, psnr=20, per_chunk=True)   # the default
    with pytest.raises(ParameterError, match="--jobs must be 1"):
        aezip.encode(images, io.BytesIO(), model, psnr=20, per_chunk=True, jobs=2)
    with pytest.raises(ParameterError, match="quality"):
        aezip.compress(images, model, psnr=20, per_chunk=True, quality=1)


def test_the_cli_writes_and_describes_a_per_chunk_file(model, images, tmp_path, capsys) -> None:
    np.save(tmp_path / "d.npy", images)
    code, out, err = run(capsys, "encode", tmp_path / "d.npy", "-o", tmp_path / "d.aez", "-m", model.path,
                         "--psnr", "20", "--per-chunk", "--chunk-size", str(CHUNK))
    assert code == 0, err
    assert "picked per chunk (" in out and " images in " in out
    code, out, _ = run(capsys, "info", tmp_path / "d.aez")
    assert code == 0 and "quality: per chunk: --" in out and "max error: per chunk (above)" in out
    code, _, err = run(capsys, "encode", tmp_path / "d.npy", "-o", tmp_path / "e.aez", "-m", model.path,
                       "--per-chunk")
    assert_one_line_error(code, err, "give --psnr")


def _rewrite_chunk(blob: bytes, k: int, prefix: bytes) -> bytes:
    parts = aezcraft.parse(blob)
    old = parts.payloads[k]
    parts.payloads[k] = prefix + old[2 if old[0] & 0x80 else 1:]
    return aezcraft.build(parts)


def test_damaged_settings_and_headers_are_refused(model, images) -> None:
    blob, _ = _per_chunk(images, model, 18.0)
    for prefix, message in ((b"\x00", "rate point 0"), (b"\x03", r"rate point 3 is outside 1\.\.2")):
        with pytest.raises(FormatError, match=message):
            aezip.decompress(_rewrite_chunk(blob, 0, prefix), model)
    parts = aezcraft.parse(blob)
    parts.payloads[0] = b"\x81"
    with pytest.raises(FormatError, match="too short"):
        aezip.decompress(aezcraft.build(parts), model)
    lossy, _ = _per_chunk(images, model, 10.0)                            # no pixel coder named in the header
    assert all(b is None for _, b in _settings(lossy))
    with pytest.raises(FormatError, match="names no pixel coder"):
        aezip.decompress(_rewrite_chunk(lossy, 0, setting_prefix(1, 4)), model)
    rate = _settings(lossy)[0][0]
    with pytest.raises(FormatError, match="checksum"):                    # latents read at another rate point
        aezip.decompress(_rewrite_chunk(lossy, 0, setting_prefix(3 - rate, None)), model)
    h = json.loads(aezcraft.parse(blob).header)
    for bad in ({**h, "quality": 1}, {**h, "max_error": 3}, {**h, "residual": "nope"}):
        with pytest.raises(FormatError):
            validate_header(bad, decoder="x", entropy=(), residual=(PIXEL_CODER,))


def test_patch_sections_are_checked(model, images) -> None:
    blob, _ = _per_chunk(images, model, 18.0, adapt=1, adapt_decoder=True)
    with ContainerReader(blob) as reader:
        section = reader.decoder_patch()
    (patch,) = unpack_patches(section).values()
    for bad, message in ((b"", "empty"), (b"\x01\x00", "truncated"), (pack_patches([b"AEZP"]), "truncated"),
                         (pack_patches([patch, patch]), "twice"), (section + b"x", "1 bytes follow")):
        with pytest.raises(FormatError, match=message):
            unpack_patches(bad)
    parts = aezcraft.parse(blob)
    parts.patch = pack_patches([patch, patch])
    with pytest.raises(FormatError, match="twice"):
        aezip.decompress(aezcraft.build(parts), model)
