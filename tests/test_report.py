"""The codec report: real bytes, every codec row present, BD-rate arithmetic, mosaics that round-trip."""
from __future__ import annotations

import math

import numpy as np
import pytest

from aezip.metrics import psnr
from aezip.bench.report import (aezip_rows, bd_rates, image_codec_rows, mosaic, pca_rows, psnr_gap_summary, raw_rows,
                                unmosaic)


def test_mosaic_round_trips() -> None:
    imgs = np.random.default_rng(0).integers(0, 256, (11, 4, 5), dtype=np.uint8)
    big = mosaic(imgs)
    assert big.shape == (12, 20)
    np.testing.assert_array_equal(unmosaic(big, 11, (4, 5)), imgs)


def test_rows_are_measured_from_real_bytes(tmp_path, sample_images, tiny_model_path) -> None:
    test, train = sample_images[:24], sample_images[100:300]
    rows = aezip_rows(test, [("tiny", tiny_model_path)], [0, 4], tmp_path)
    rows += raw_rows(test) + image_codec_rows(test, qualities=(50,)) + pca_rows(train, test, sizes=(8,))
    by = {(r.codec, r.setting): r for r in rows}
    lossless = by[("aezip tiny", "latent 8, L 8, --max-error 0")]
    assert lossless.max_abs_error == 0 and lossless.psnr_db == float("inf")
    assert by[("aezip tiny", "latent 8, L 8, --max-error 4")].max_abs_error <= 4
    alone = by[("aezip tiny", "latent 8, L 8, --max-error 0, pixel model alone")]
    with_latents = by[("aezip tiny", "latent 8, L 8, --max-error 0, latents + pixel model")]
    assert alone.max_abs_error == with_latents.max_abs_error == 0
    assert lossless.bytes <= min(alone.bytes, with_latents.bytes)   # the lossless mode takes the cheaper per chunk
    for name in ("gzip -9", "bz2 -9", "xz -9e", "zstd -19"):
        r = by[(name, "raw bytes, whole set")]
        assert r.max_abs_error == 0 and r.bytes * 8 / test.size == pytest.approx(r.bits_per_pixel)
    assert by[("PNG", "lossless, per image")].max_abs_error == 0
    assert by[("WebP lossless", "lossless, mosaic")].max_abs_error == 0
    for setting in ("effort 7, per image", "effort 9, mosaic"):
        r = by[("JPEG-XL lossless", setting)]
        assert r.max_abs_error == 0 and 0 < r.bytes < test.size
    assert by[("JPEG", "q 50, per image")].max_abs_error > 0
    assert by[("PCA + zstd", "8 components, step 32")].model_bytes > 0
    ladder = [by[("aezip tiny", f"latent 8, L 8, --quality {q}")] for q in range(2, 9)]
    assert all(r.bytes > 0 and r.model_bytes > 0 for r in ladder)   # every ladder point, from real files
    bd = bd_rates(rows, ["tiny"])
    assert set(bd) >= {"aezip tiny --quality vs PCA + zstd", "aezip tiny --quality vs JPEG (mosaic)",
                       "aezip --max-error vs WebP (per image)"}
    assert all(set(v) == {"pchip", "cubic"} for v in bd.values())
    lossy, embedded = ladder[-1], by[("aezip tiny", "latent 8, L 8, --embed-model")]
    assert embedded.psnr_db == lossy.psnr_db and embedded.model_bytes == embedded.decoder_bytes == 0
    assert lossy.decoder_bytes < lossless.decoder_bytes < lossless.model_bytes    # lossy: no max-error coder
    assert embedded.bytes == lossy.bytes + lossy.decoder_bytes + 8                  # + its length and CRC
    for r in (lossy, lossless):
        assert r.bits_per_pixel_with_model == pytest.approx((r.bytes + r.model_bytes) * 8 / test.size)
        assert r.bits_per_pixel_with_decoder == pytest.approx((r.bytes + r.decoder_bytes) * 8 / test.size)
    assert by[("xz -9e", "raw bytes, whole set")].decoder_bytes is None


def test_pca_rows_extend_past_aezips_top_rate(sample_images) -> None:
    test, train = sample_images[:20], sample_images[100:160]                  # rank 60 (train) of 784 dimensions
    plain = pca_rows(train, test, sizes=(2, 4))
    assert [r.setting for r in plain] == ["2 components, step 32", "4 components, step 32"]
    rows = pca_rows(train, test, sizes=(2, 4), reach=0.5)
    assert [r.bytes for r in rows[:2]] == [r.bytes for r in plain]
    assert rows[-1].bits_per_pixel >= 0.5 > rows[-2].bits_per_pixel          # stops at the first past it
    assert [r.setting for r in rows[2:5]] == ["6 components, step 32", "8 components, step 32",
                                              "12 components, step 32"]
    assert any(r.setting == "60 components, step 16" for r in rows)          # the rank, then finer steps
    assert rows[-1].psnr_db > plain[-1].psnr_db + 3
    out_of_reach = pca_rows(train, test, sizes=(2, 4), reach=50.0)            # ends at the rank and step 2
    assert out_of_reach[-1].setting == "60 components, step 2" and out_of_reach[-1].bits_per_pixel < 50


def test_pca_at_a_high_rate_searches_past_64_components(sample_images) -> None:
    """At a rate 64 components cannot use well, the search goes on to more (here up to the rank, 100) and beats
    the best of the listed counts; at a low rate it stops at the listed counts' best."""
    from aezip.bench.baselines import PCACodec, pca_best_at_rate
    test, train = sample_images[:20], sample_images[100:200]
    full = PCACodec.fit(train, 64)
    listed = max(psnr(test, full.first(k).decompress(full.first(k).compress(test, s), test.shape, s))
                 for k in (8, 16, 64) for s in (16, 64))
    grown = pca_best_at_rate(train, test, 1.0, components=(8, 16, 64), steps=(16, 64))
    assert grown["components"] in (96, 100) and grown["bits_per_pixel"] <= 1.0
    assert grown["psnr_db"] > listed + 0.5
    low = pca_best_at_rate(train, test, 0.3, components=(8, 16, 64), steps=(16, 64))
    assert low["components"] < 64 and low["bits_per_pixel"] <= 0.3


def test_a_ladder_of_models_is_measured_as_the_frontier_of_their_points() -> None:
    """Two models over the same PSNR range, one better below 0.05 bits/pixel, the other above: together (their
    frontier) they beat each alone."""
    from aezip.bench.report import Row

    def ladder(name: str, points: list[tuple[float, float]]) -> list[Row]:
        return [Row(f"aezip {name}", f"latent 8, L 8, --quality {q}", 1, r, p, 1, 1.0, 1.0)
                for q, (r, p) in enumerate(points, 2)]

    low = ladder("low", [(0.005, 12.0), (0.01, 14.0), (0.03, 17.0), (0.06, 18.0), (0.15, 21.0)])
    high = ladder("high", [(0.01, 12.0), (0.03, 15.5), (0.06, 19.0), (0.10, 21.0)])
    pca = [Row("PCA + zstd", f"{k} components", 1, r, p, 255, 1.0, 1.0)
           for k, (r, p) in enumerate([(0.02, 12.0), (0.06, 14.0), (0.2, 18.0), (0.4, 21.0)])]
    bd = bd_rates(low + high + pca, ["low", "high"])
    together = bd["aezip models together --quality vs PCA + zstd"]["pchip"]
    assert together < min(bd["aezip low --quality vs PCA + zstd"]["pchip"],
                          bd["aezip high --quality vs PCA + zstd"]["pchip"])
    assert "aezip models together --quality vs PCA + zstd" not in bd_rates(high + pca, ["high"])
    gaps = psnr_gap_summary(high + pca, ["high"])["aezip high --quality vs PCA + zstd"]
    assert gaps["inside"] == 3 and len(gaps["points"]) == 4          # 0.01 bits/pixel is below PCA's rates
    assert gaps["min_db"] == pytest.approx(15.5 - 12.0 - 2 * math.log(1.5) / math.log(3), abs=1e-9)
    assert gaps["max_db"] == pytest.approx(21.0 - 14.0 - 4 * math.log(0.10 / 0.06) / math.log(0.2 / 0.06), abs=1e-9)


def test_every_lossy_setting_is_compared_as_the_frontier_of_quality_and_max_error_points() -> None:
    """A ladder that wins at low rates and --max-error points that win at high rates: the curve of every setting
    keeps only the points no other beats, and is compared with PCA too."""
    from aezip.bench.bdrate import bd_rate
    from aezip.bench.report import EVERY_SETTING, Row

    ladder = [Row("aezip m", f"conv, --quality {q}", 1, r, p, 90, 1.0, 1.0)
              for q, (r, p) in enumerate([(0.5, 24.0), (0.9, 26.5), (1.4, 28.0), (2.0, 29.0)], 1)]
    bounded = [Row("aezip m", f"conv, --max-error {e}", 1, r, p, e, 1.0, 1.0)
               for e, (r, p) in ((16, (1.3, 28.8)), (8, (2.0, 34.4)), (4, (2.8, 39.9)))]
    lossless = Row("aezip m", "conv, --max-error 0", 1, 5.0, float("inf"), 0, 1.0, 1.0)
    webp = [Row("WebP", f"q {q}, mosaic", 1, r, p, 60, 1.0, 1.0)
            for q, (r, p) in ((1, (0.4, 23.2)), (10, (0.7, 26.0)), (50, (1.6, 31.4)), (90, (3.4, 41.5)))]
    pca = [Row("PCA + zstd", f"{k} components", 1, r, p, 255, 1.0, 1.0)
           for k, (r, p) in enumerate([(0.3, 21.0), (1.0, 25.0), (2.0, 29.0), (3.0, 34.0)])]
    rows = ladder + bounded + [lossless] + webp + pca
    bd = bd_rates(rows, ["m"])
    every = bd[f"{EVERY_SETTING} vs WebP (mosaic)"]["pchip"]
    frontier = [(0.5, 24.0), (0.9, 26.5), (1.3, 28.8), (2.0, 34.4), (2.8, 39.9)]
    assert every == pytest.approx(bd_rate([(r.bits_per_pixel, r.psnr_db) for r in webp], frontier, "pchip"))
    assert every < bd["aezip m --quality vs WebP (mosaic)"]["pchip"]      # over a wider PSNR range, and lower
    gaps = psnr_gap_summary(rows, ["m"])[f"{EVERY_SETTING} vs PCA + zstd"]
    assert [r for r, _ in gaps["points"]] == [0.5, 0.9, 1.3, 2.0, 2.8]   # 1.4 and the ladder's 2.0 are beaten
    assert gaps["inside"] == 5 and gaps["min_db"] == pytest.approx(24.0 - 21.0 - 4 * math.log(0.5 / 0.3)
                                                                  / math.log(1.0 / 0.3), abs=1e-9)


def test_rows_at_effort_max_are_labelled_and_decode(tmp_path, sample_images, tiny_model_path) -> None:
    test = sample_images[:24]
    rows = aezip_rows(test, [("tiny", tiny_model_path)], [4], tmp_path, effort="max")
    assert rows and all(r.setting.endswith(", --effort max") for r in rows)
    by = {r.setting: r for r in rows}
    assert by["latent 8, L 8, --max-error 4, --effort max"].max_abs_error <= 4
    assert by["latent 8, L 8, --max-error 0, pixel model alone, --effort max"].max_abs_error == 0


def test_pca_round_trips_its_own_bytes(sample_images) -> None:
    from aezip.bench.baselines import PCACodec
    codec = PCACodec.fit(sample_images[:200], 12)
    test = sample_images[200:]
    mean_image = np.broadcast_to(sample_images[:200].mean(0).round(), test.shape)      # 11.5 dB
    for step in (2, 64):                         # int8 and int16 coefficients, integer steps
        blob = codec.compress(test, step)
        recon = codec.decompress(blob, test.shape, step)
        assert recon.shape == (100, 28, 28) and recon.dtype == np.uint8
        assert psnr(test, recon) > psnr(test, mean_image) + 2                              # 14.6 dB both


def test_rgb_rates_count_pixel_positions_not_samples() -> None:
    rgb = np.random.default_rng(3).integers(0, 256, (6, 8, 8, 3), dtype=np.uint8)
    rows = {(r.codec, r.setting): r for r in raw_rows(rgb)}
    r = rows[("xz -9e", "raw bytes, whole set")]
    assert r.bits_per_pixel == pytest.approx(r.bytes * 8 / (6 * 8 * 8))   # not / (6 * 8 * 8 * 3)
