"""The quality ladder (`--quality Q`): the nested quantizers, derived tables, round trips, sizes and the header."""
from __future__ import annotations

import numpy as np
import pytest

import aezip
from aezip.codec import decode_file
from aezip.chunks import chunk_codes
from aezip.errors import FormatError, ParameterError
from aezip.coding.intdecoder import integer_decode
from aezip.files.modelfile import load_model, model_at_quality
from aezip.coding.chunktables import CENTROID_BIT, CHUNK_CODER_V2
from aezip.coding.quality import (LADDER_CODER, centroid_values, check_quality, coarse_codes, fine_values,
                                  ladder_tables, to_fine)
from tests import aezcraft
from tests.conftest import write_idx
from tests.test_chunktables import expected_pixels
from tests.test_cli import assert_one_line_error, run


@pytest.mark.parametrize("levels", [2, 3, 8, 24, 64, 257])
def test_fine_values_are_exact_strictly_increasing_and_span_the_fine_range(levels) -> None:
    assert np.array_equal(fine_values(levels, levels), np.arange(levels))
    for q in range(2, levels + 1, max(1, levels // 16)):
        f = fine_values(levels, q)
        assert f[0] == 0 and f[-1] == levels - 1 and np.all(np.diff(f) >= 1)
        exact = [(2 * c * (levels - 1) + q - 1) // (2 * (q - 1)) for c in range(q)]   # round half up
        assert f.tolist() == exact


@pytest.mark.parametrize("levels,quality", [(24, 2), (24, 7), (24, 23), (64, 5), (64, 33), (8, 8)])
def test_coarse_codes_pick_the_nearest_fine_value(levels, quality) -> None:
    z = np.concatenate([np.random.default_rng(0).random(5000), [0.0, 1.0, 0.5]])
    got = coarse_codes(z, levels, quality)
    dist = np.abs(fine_values(levels, quality)[None, :] - z[:, None] * (levels - 1))
    want = dist.argmin(axis=1)            # brute force over every coarse code, ties to the lower
    assert np.array_equal(got, want)
    assert np.array_equal(to_fine(got, levels, quality), fine_values(levels, quality)[want])


def test_derived_tables_keep_every_count_and_have_no_zero() -> None:
    fine = np.ones((5, 24), np.int64)          # the floor alone: the sparsest table training can give
    fine[2, 0] = 10_000
    for q in range(2, 25):
        t = ladder_tables(fine, q)
        assert t.shape == (5, q) and t.dtype == np.int64 and t.min() >= 1
        assert np.array_equal(t.sum(axis=1), fine.sum(axis=1))
    assert np.array_equal(ladder_tables(fine, 24), fine)


def test_derived_tables_are_the_sums_over_each_points_nearest_fine_codes() -> None:
    rng = np.random.default_rng(0)
    fine = rng.integers(1, 1000, (7, 24))
    for q in range(2, 25):
        owner = coarse_codes(np.arange(24) / 23, 24, q)
        want = np.stack([fine[:, owner == c].sum(axis=1) for c in range(q)], axis=1)
        assert np.array_equal(ladder_tables(fine, q), want), q


def test_centroids_are_the_rounded_weighted_means_of_each_bin() -> None:
    # L = 4, Q = 2: the grid is fine codes 0 and 3; 0 and 1 are nearest 0, 2 and 3 nearest 3
    t = np.array([[1, 1, 1, 1], [5, 1, 1, 7], [1, 9, 9, 1]])
    assert np.array_equal(centroid_values(t, 2), [[1, 3], [0, 3], [1, 2]])   # 0.5 -> 1, 2.5 -> 3 (halves up)
    # L = 6, Q = 2: bins {0, 1, 2} and {3, 4, 5}
    assert np.array_equal(centroid_values(np.array([[1, 3, 1, 1, 5, 1]]), 2), [[1, 4]])


@pytest.mark.parametrize("levels,quality", [(24, 2), (24, 5), (24, 23), (64, 7), (257, 16)])
def test_centroids_lie_in_their_own_bins_even_for_huge_counts(levels, quality) -> None:
    rng = np.random.default_rng(levels)
    for t in (rng.integers(1, 50, (6, levels)), rng.integers(1, 1 << 52, (6, levels)) // levels):
        cent = centroid_values(t, quality)
        owner = coarse_codes(np.arange(levels) / (levels - 1), levels, quality)
        for j in range(6):
            for c in range(quality):
                members = np.flatnonzero(owner == c)
                assert members[0] <= cent[j, c] <= members[-1]
                n, s = sum(int(t[j, f]) for f in members), sum(int(t[j, f]) * int(f) for f in members)
                assert cent[j, c] == (2 * s + n) // (2 * n)    # Python integers: exact


def test_a_quality_file_keeps_the_closer_of_grid_points_and_centroids_per_chunk(sample_images) -> None:
    mf = aezip.load_model()
    images, levels = sample_images[:96], mf.config.levels
    flat = images.reshape(len(images), -1).astype(np.int64)
    err = lambda a: int(((flat - a.reshape(len(images), -1)) ** 2).sum())  # noqa: E731
    for q in (2, 20):
        blob = aezip.compress(images, mf, quality=q, chunk_size=32)
        assert aezip.info(blob)["entropy"] == CHUNK_CODER_V2
        back = aezip.decompress(blob, mf)
        author = model_at_quality(mf, q)   # at Q = 2 the default's low-rate sibling writes the file
        assert np.array_equal(back.reshape(len(images), -1), expected_pixels(author, images, q, 32))
        codes = chunk_codes(author, images, "torch", "cpu", q)
        grid = integer_decode(author.intdec, to_fine(codes, levels, q))
        cent = integer_decode(author.intdec, to_fine(codes, levels, q, centroid_values(author.tables, q)))
        assert err(back) <= min(err(grid), err(cent))
        counts = aezip.info(blob)["reconstruction"]   # aezip info says which each chunk took
        assert sum(counts.values()) == 3 and set(counts) <= {"grid points", "centroids"}
        if q == 2:   # measured on held-out digits: 11.91 against 9.96 dB
            assert err(back) < 0.8 * err(grid) and counts.get("centroids", 0) >= 1


def test_a_flipped_centroid_bit_is_detected(tmp_path, sample_images) -> None:
    parts = aezcraft.parse(aezip.compress(sample_images[:20], aezip.load_model(), quality=3))
    n, latent, residual, crc = aezcraft.payload_parts(parts.payloads[0])
    latent = bytes([latent[0] ^ CENTROID_BIT]) + latent[1:]
    parts.payloads[0] = aezcraft.make_payload(n, latent, residual, crc)
    bad = tmp_path / "bad.aez"
    bad.write_bytes(aezcraft.build(parts))
    with pytest.raises(FormatError):
        decode_file(bad, tmp_path / "o.npy")


def test_bad_quality_is_a_parameter_error() -> None:
    assert check_quality(None, 24) is None and check_quality(24, 24) is None and check_quality(5, 24) == 5
    for bad in (1, 0, -3, 25, 2.5, "8", True):
        with pytest.raises(ParameterError, match=r"quality must be an integer in 2\.\.24"):
            check_quality(bad, 24)


def test_every_quality_round_trips_and_decodes_the_encoders_pixels(tiny_model_path, sample_images,
                                                                   legacy_coders) -> None:
    mf = load_model(tiny_model_path)
    images = sample_images[:40]
    levels = mf.config.levels
    for q in range(2, levels + 1):
        blob = aezip.compress(images, mf, quality=q, chunk_size=16)
        back = aezip.decompress(blob, mf)
        codes = chunk_codes(mf, images, "torch", "cpu", None if q == levels else q)
        fine = codes if q == levels else to_fine(codes, levels, q)
        want = integer_decode(mf.intdec, fine).reshape(images.shape)
        assert np.array_equal(back, want), q
        h = aezip.info(blob)
        assert h.get("quality") == (None if q == levels else q)
        assert h["entropy"] == ("ans-categorical-per-dim" if q == levels else LADDER_CODER)
    assert aezip.compress(images, mf, quality=levels) == aezip.compress(images, mf)   # Q = L: today's bytes


@pytest.mark.parametrize("max_error", [0, 3])
def test_quality_with_max_error_keeps_the_bound(tiny_model_path, sample_images, max_error) -> None:
    mf = load_model(tiny_model_path)
    images = sample_images[:30]
    back = aezip.decompress(aezip.compress(images, mf, quality=3, max_error=max_error), mf)
    assert np.abs(back.astype(int) - images).max() <= max_error


def test_lower_quality_never_gives_a_larger_file_on_held_out_digits(sample_images) -> None:
    """Measured, not proven: on the 300 shipped held-out images every step down the default model's ladder gives a
    smaller file (PSNR is not monotone step by step on so few images; the README says what is guaranteed)."""
    mf = aezip.load_model()
    sizes = [len(aezip.compress(sample_images, mf, quality=q)) for q in range(2, mf.config.levels + 1)]
    assert all(a < b for a, b in zip(sizes, sizes[1:])), sizes


def test_cli_quality_round_trip_and_errors(tmp_path, capsys, tiny_model_path, sample_images) -> None:
    src = write_idx(tmp_path / "d-idx3-ubyte", sample_images[:50])
    mf = load_model(tiny_model_path)
    code, out, _ = run(capsys, "encode", src, "-m", tiny_model_path, "--quality", 3, "-o", tmp_path / "q.aez")
    assert code == 0 and "bits/pixel" in out
    aezip.encode(src, tmp_path / "api.aez", mf, quality=3)
    assert (tmp_path / "q.aez").read_bytes() == (tmp_path / "api.aez").read_bytes()
    code, out, _ = run(capsys, "info", tmp_path / "q.aez")
    assert code == 0 and "quality: 3 of 8 levels" in out
    code, _, _ = run(capsys, "decode", tmp_path / "q.aez", "-m", tiny_model_path, "-o", tmp_path / "o-idx3-ubyte")
    assert code == 0
    assert np.array_equal(aezip.open_data(tmp_path / "o-idx3-ubyte").read_all(), aezip.decompress((tmp_path / "q.aez").read_bytes(), mf))
    for bad in ("1", "9", "-2"):
        code, _, err = run(capsys, "encode", src, "-m", tiny_model_path, "--quality", bad, "-o", tmp_path / "b.aez")
        assert_one_line_error(code, err, "--quality must be an integer in 2..8")
        assert not (tmp_path / "b.aez").exists()
    code, _, err = run(capsys, "encode", src, "--quality", "x", "-o", tmp_path / "b.aez")
    assert code == 2 and "Traceback" not in err


@pytest.mark.parametrize("edit,message", [
    (lambda h: h.update(quality=1), "header quality 1 outside 2..7"),
    (lambda h: h.update(quality=8), "header quality 8 outside 2..7"),
    (lambda h: h.update(quality="3"), "header quality '3' outside"),
    (lambda h: h.pop("quality"), "disagree"),
    (lambda h: h.update(entropy="ans-categorical-per-dim"), "disagree"),
    (lambda h: h.update(entropy="ans-categorical-per-dim-ladder-v9"), "latent coder"),
])
def test_crafted_quality_headers_are_refused(tmp_path, tiny_model_path, sample_images, edit, message,
                                             legacy_coders) -> None:
    parts = aezcraft.parse(aezip.compress(sample_images[:20], load_model(tiny_model_path), quality=3))
    h = parts.header_json
    edit(h)
    bad = tmp_path / "bad.aez"
    bad.write_bytes(aezcraft.build(parts.with_header(h)))
    with pytest.raises(FormatError, match=message):
        decode_file(bad, tmp_path / "o.npy", model_path=tiny_model_path)


def test_variable_rate_noise_has_the_step_of_each_samples_level() -> None:
    import torch
    from aezip.network.training import _quantization_noise
    h = torch.full((4000, 3), 0.5)
    gen = torch.Generator().manual_seed(0)
    noisy, step = _quantization_noise(h, 24, "uniform", gen, variable_rate=2)
    noise = noisy - h
    assert step.shape == (4000, 1) and float(step.max()) == 1.0 and abs(float(step.min()) - 1 / 23) < 1e-7
    spread = noise.abs().max(dim=1).values          # per sample: below half the step of its level, 1/(2(Q-1))
    assert spread.max() <= 0.5 + 1e-6 and spread.min() < 0.5 / 23 + 1e-6 and spread.max() > 0.4
    rounded, _ = _quantization_noise(torch.rand(500, 4, generator=gen), 24, "ste", gen, variable_rate=5)
    on_grid = [any(torch.allclose(row * (q - 1), torch.round(row * (q - 1)), atol=1e-4) for q in range(5, 25))
               for row in rounded]
    assert all(on_grid)     # each sample rounded to the grid of one level Q in 5..24


def test_variable_rate_training_records_it_and_bad_values_are_refused(tmp_path, capsys, sample_images) -> None:
    from aezip.network.config import AEConfig
    from aezip.options import TrainOptions
    from aezip.network.training import train_model
    config = AEConfig(image_shape=(28, 28), hidden=(16,), latent=4, levels=8)
    opts = dict(epochs=1, batch_size=32, device="cpu", backend="torch", pixel_model=False)
    plain = train_model(sample_images[:64], config, TrainOptions(**opts), progress=False, log=lambda m: None)
    varied = train_model(sample_images[:64], config, TrainOptions(variable_rate=2, **opts), progress=False,
                         log=lambda m: None)
    assert "variable_rate" not in plain.info["options"] and varied.info["options"]["variable_rate"] == 2
    with pytest.raises(ParameterError, match=r"variable_rate must lie in 2\.\.8"):
        train_model(sample_images[:64], config, TrainOptions(variable_rate=9, **opts), progress=False,
                    log=lambda m: None)
    src = write_idx(tmp_path / "d-idx3-ubyte", sample_images[:40])
    for bad in ("1", "-1", "30"):
        code, _, err = run(capsys, "train", src, "-o", tmp_path / "m.aezm", "--hidden", "8", "--latent", "2",
                           "--epochs", "1", "--no-pixel-model", "--variable-rate", bad)
        assert_one_line_error(code, err, "--variable-rate must")


def test_quality_with_jobs_and_shards_gives_the_bytes_of_one_encode(tmp_path, capsys, tiny_model_path,
                                                                     sample_images) -> None:
    from aezip.codec import encode_dataset
    from aezip.files.data import open_dataset
    src = write_idx(tmp_path / "d-idx3-ubyte", sample_images[:80])
    mf = load_model(tiny_model_path)
    one, two = tmp_path / "one.aez", tmp_path / "two.aez"
    encode_dataset(open_dataset(src), mf, one, chunk_size=16, quality=4)
    encode_dataset(open_dataset(src), mf, two, chunk_size=16, quality=4, jobs=2)   # the worker gets the quality
    assert one.read_bytes() == two.read_bytes()
    m = ["-m", tiny_model_path, "--chunk-size", "16", "--quality", "4"]
    for k in range(2):
        assert run(capsys, "encode", src, "-o", tmp_path / "part-{k}-of-{n}.aez", "--shard", f"{k}/2", *m)[0] == 0
    code, _, _ = run(capsys, "merge", tmp_path / "part-1-of-2.aez", tmp_path / "part-0-of-2.aez", "-o",
                     tmp_path / "merged.aez")
    assert code == 0
    code, _, _ = run(capsys, "encode", src, "-o", tmp_path / "whole.aez", *m)
    assert (tmp_path / "merged.aez").read_bytes() == (tmp_path / "whole.aez").read_bytes()
