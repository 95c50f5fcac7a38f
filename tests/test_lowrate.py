"""A model's low-rate sibling (coding/lowrate.py): its decoder tuned for coarse --quality levels, the encoder, codes
and tables untouched, its files ordinary ones; the CLI's errors."""
from __future__ import annotations

import numpy as np
import pytest

import aezip
from aezip.cli.main import main
from aezip.coding.lowrate import low_rate_model, weight_bits
from aezip.errors import InputError
from aezip.files.modelfile import load_model


@pytest.fixture(scope="module")
def pair(tmp_path_factory, tiny_model_path, sample_images):
    """The tiny model and its sibling tuned for Q = 2 and 3 on the sample's first 200 images, saved."""
    mf = load_model(tiny_model_path)
    low = low_rate_model(mf, sample_images[:200], (2, 3), epochs=20, log=lambda m: None)
    path = tmp_path_factory.mktemp("low") / "low.aezm"
    low.save(path)
    return mf, load_model(path), path


def _error_at(mf, images: np.ndarray, quality: int) -> float:
    """The mean squared error of a file of images written with mf at quality (real bytes, decoded)."""
    back = aezip.decompress(aezip.compress(images, mf.path, quality=quality), model=mf.path)
    return float(np.mean((back.astype(float) - images) ** 2))


def test_the_sibling_keeps_the_encoder_and_tables_and_decodes_its_levels_closer(pair, sample_images) -> None:
    mf, low, _ = pair
    assert np.array_equal(low.tables, mf.tables) and low.id != mf.id
    for a, b in zip(mf.model.encoder.parameters(), low.model.encoder.parameters()):
        assert np.array_equal(a.detach().numpy(), b.detach().numpy())
    assert weight_bits(low) <= weight_bits(mf)
    info = low.info["low_rate"]
    assert info["from_model"] == mf.id and info["qualities"] == [2, 3] and set(info["forms"].values()) <= {"grid",
                                                                                                           "centroid"}
    images = sample_images[:200]
    for q in (2, 3):   # on the images it was tuned on: a decoder fitted to these codes decodes them closer
        assert _error_at(low, images, q) < _error_at(mf, images, q)


def test_its_files_are_ordinary_files_of_the_sibling(pair, sample_images, tmp_path) -> None:
    _, low, path = pair
    images = sample_images[200:260]
    blob = aezip.compress(images, path, quality=2, embed_model=True)
    back = aezip.decompress(blob)                    # the embedded decode side: no model file
    assert back.shape == images.shape
    exact = aezip.compress(images, path, quality=3, max_error=0)
    assert np.array_equal(aezip.decompress(exact, model=path), images)


def test_bad_levels_and_shapes_are_refused(tmp_path, tiny_model_path, sample_images, capsys) -> None:
    mf = load_model(tiny_model_path)
    with pytest.raises(InputError, match="each must lie in 2..7"):
        low_rate_model(mf, sample_images[:10], (2, 8))
    with pytest.raises(InputError, match="images of the model's training shape 28x28"):
        low_rate_model(mf, np.zeros((4, 8, 8), np.uint8))
    data = tmp_path / "d.npy"
    np.save(data, sample_images[:20])
    for args, message in ((["--qualities", "2,x"], "--qualities '2,x': expected comma-separated integers"),
                          (["--qualities", "1"], "--qualities 1: each must lie in 2..7"),
                          (["--epochs", "0"], "--epochs 0: must be at least 1")):
        with pytest.raises(SystemExit) as exit_:
            main(["model", "low-rate", str(tiny_model_path), "--data", str(data), "-o", str(tmp_path / "x.aezm"),
                  *args])
        assert exit_.value.code == 1
        err = capsys.readouterr().err
        assert err.startswith(f"aezip: error: {message}") and err.count("\n") == 1
    assert not (tmp_path / "x.aezm").exists()


def test_the_shipped_default_encodes_its_coarse_levels_with_its_sibling(tmp_path, tiny_model_path,
                                                                         sample_images) -> None:
    from aezip.errors import ModelMismatchError
    from aezip.files.modelfile import default_low_model, default_model, default_model_path
    from aezip.reader import Reader
    default, low = default_model(), default_low_model()
    assert low.info["low_rate"]["from_model"] == default.id   # rebuilt with the default (train_models.py)
    images = sample_images[:64]
    for q, author in ((3, low), (6, low), (7, default), (None, default)):
        blob = aezip.compress(images, quality=q)
        path = tmp_path / f"q{q}.aez"
        path.write_bytes(blob)
        with Reader(path) as r:
            assert r.info["model_id"] == author.id
        back = aezip.decompress(blob)                                                   # no model given
        assert np.array_equal(aezip.decompress(blob, model=default_model_path()), back)  # the default given
        if author is low:   # the same file as the sibling's own
            assert aezip.compress(images, low.path, quality=q) == blob
    with pytest.raises(ModelMismatchError, match="written with model"):
        aezip.decompress(aezip.compress(images, quality=3), model=tiny_model_path)
