"""The encoder's choice of pixel coder (pixelstream.choose_finalists): ideal code lengths match the range coder, the
sampled choice round-trips bit-exactly and matches the exhaustive search on a fixture, noise still falls back."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from aezip.coding.pixelcoding import VARIANTS, code_variant, ideal_bytes
from aezip.coding.pixelmodel import pass_classes
from aezip.coding.pixelstream import SAMPLE_MIN, SAMPLE_STEP, SECONDARY_THIN, XZ, ZSTD, decode_pixels, encode_pixels
from aezip.coding.pixeltrain import fit_pixel_model
from tests.test_pixelmodel import PRIOR, SMALL, _smooth

TINY = dataclasses.replace(SMALL, samples=1000, epochs=2)

CHUNK = SAMPLE_STEP * SAMPLE_MIN   # the smallest chunk the chooser samples


@pytest.fixture(scope="module", params=[(5, 7), (8, 8, 3)], ids=["gray5x7", "rgb8x8x3"])
def models(request):
    shape = request.param
    x, pred = _smooth(200, shape, 0)
    mlp = fit_pixel_model(x, pred, shape, TINY, 1, seed=3, log=lambda m: None)
    return mlp, dataclasses.replace(mlp, base=pred[0]), shape   # the same network also serves as the one alone


@pytest.mark.parametrize("e", [0, 4])
def test_ideal_length_matches_the_range_coder(models, e) -> None:
    mlp, _, shape = models
    x, pred = _smooth(60, shape, 7)
    passes, _ = pass_classes(mlp, x, pred, shape, e)
    for v in range(len(VARIANTS)):
        real = len(code_variant(mlp, passes, e, v))
        assert abs(ideal_bytes(mlp, passes, e, v) + 1 - real) <= 0.002 * real + 8   # + 1: the variant byte


@pytest.mark.parametrize("e", [0, 4])
def test_sampled_choice_round_trips_and_matches_the_exhaustive_one(models, e) -> None:
    mlp, alone, shape = models
    x, pred = _smooth(CHUNK, shape, 8)
    chosen = encode_pixels(x, pred, shape, e, PRIOR, 40, mlp, alone)
    full = encode_pixels(x, pred, shape, e, PRIOR, 40, mlp, alone, exhaustive=True)
    assert chosen.method == full.method
    assert len(chosen.data) <= 1.005 * len(full.data)
    back = decode_pixels(chosen.data, pred if chosen.needs_latents else None, x.shape, shape, e, PRIOR, mlp, alone)
    np.testing.assert_array_equal(back, chosen.recon)
    assert np.abs(back.astype(int) - x.astype(int)).max() <= e


def test_noise_falls_back_to_a_generic_coder_when_sampled(models) -> None:
    mlp, alone, shape = models
    x = np.random.default_rng(9).integers(0, 256, (CHUNK, int(np.prod(shape))), dtype=np.uint8)
    s = encode_pixels(x, np.zeros_like(x), shape, 0, PRIOR, 0, mlp, alone)
    assert s.method in (ZSTD, XZ)
    np.testing.assert_array_equal(decode_pixels(s.data, None, x.shape, shape, 0, PRIOR, mlp, alone), x)


def test_effort_fast_skips_the_learned_pixel_models(tmp_path, sample_images) -> None:
    """The shipped default's pixel model wins E = 4 chunks; --effort fast never runs it, and the file still keeps the
    bound and decodes."""
    import aezip
    from aezip.cli.main import main
    from aezip.errors import ParameterError
    images = sample_images[:64]
    coders = {}
    for effort in ("best", "fast"):
        blob = aezip.compress(images, max_error=4, chunk_size=32, effort=effort)
        coders[effort] = aezip.info(blob)["pixel_coders"]
        assert np.abs(aezip.decompress(blob).astype(int) - images.astype(int)).max() <= 4
    assert "pixel-mlp" in coders["best"]
    assert set(coders["fast"]) <= {"context", "context, exact", "zstd -19", "xz -9e", "gradient", "gradient, exact"}
    with pytest.raises(ParameterError, match="effort 'turbo' is not one of best, fast"):
        aezip.compress(images, max_error=0, effort="turbo")
    with pytest.raises(SystemExit) as exit_:
        main(["encode", "-", "--effort", "turbo", "-o", str(tmp_path / "x.aez")])
    assert exit_.value.code == 2 and not (tmp_path / "x.aez").exists()


@pytest.mark.parametrize("e", [0, 4])
def test_only_the_samples_best_method_runs_its_network_on_the_whole_chunk(models, monkeypatch, e) -> None:
    """The chooser runs the pixel model with latents on the sample and the others on every SECONDARY_THIN-th image of
    it (at E > 0 the exact forms only where the context coder's bins bought little), and on the whole chunk only the
    method whose sampled estimate is best (CLOSE = 1), on the images its sample did not hold (merge_classes)."""
    from aezip.coding import pixelstream
    mlp, alone, shape = models
    x, pred = _smooth(CHUNK, shape, 8)
    runs: list[int] = []
    real = pixelstream.pass_classes

    def counted(model, xs, *args):
        runs.append(len(xs))
        return real(model, xs, *args)
    monkeypatch.setattr(pixelstream, "pass_classes", counted)
    chosen = encode_pixels(x, pred, shape, e, PRIOR, 40, mlp, alone)
    thin = SAMPLE_MIN // SECONDARY_THIN
    samples, whole = [n for n in runs if n <= SAMPLE_MIN], [n for n in runs if n > SAMPLE_MIN]
    assert sorted(samples) == [thin] * (len(samples) - 1) + [SAMPLE_MIN]
    assert len(samples) in ((2,) if e == 0 else (2, 4))
    assert len(whole) <= 1 and set(whole) <= {CHUNK - SAMPLE_MIN, CHUNK - thin}
    back = decode_pixels(chosen.data, pred if chosen.needs_latents else None, x.shape, shape, e, PRIOR, mlp, alone)
    assert np.abs(back.astype(int) - x.astype(int)).max() <= e
