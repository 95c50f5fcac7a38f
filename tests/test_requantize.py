"""`aezip model requantize`: a coarser integer decoder, exact like any other, with a smaller decode-side model."""
from __future__ import annotations

import numpy as np
import pytest

import aezip
from aezip.cli.main import main
from aezip.files.decodemodel import decoder_bytes, unpack
from aezip.errors import ParameterError
from aezip.files.modelfile import load_model
from aezip.coding.requantize import requantize


def test_the_bits_a_model_was_built_with_give_its_own_integers_back(tiny_model_path) -> None:
    mf = load_model(tiny_model_path)
    assert mf.info["options"]["decoder_bits"] == 8                  # aezip train's default
    again = requantize(mf, 8).intdec
    assert all(np.array_equal(a, b) for a, b in zip(again.weights + again.biases, mf.intdec.weights + mf.intdec.biases))
    assert again.shifts == mf.intdec.shifts and np.array_equal(again.thresholds, mf.intdec.thresholds)


def test_a_requantized_model_round_trips_and_stores_narrower_weights(tmp_path, tiny_model_path, sample_images):
    mf = load_model(tiny_model_path)
    small = requantize(mf, 6)
    assert max(int(np.abs(w).max()) for w in small.intdec.weights) <= 31
    assert min(small.intdec.shifts) < 0                  # a left shift: the coarse weights leave few fraction bits
    small.save(tmp_path / "q6.aezm")
    assert small.id != mf.id and small.info["requantized"] == {"from_model": mf.id, "decoder_weight_bits": 6}
    stored = {e[0]: e[2] for e in unpack(decoder_bytes(small))[0]["tensors"]}
    assert all(stored[f"intdec.w{i}"] == "int8" for i in range(len(small.intdec.weights)))
    assert len(decoder_bytes(small, max_error_parts=False)) < len(decoder_bytes(mf, max_error_parts=False))
    images = sample_images[:20]
    blob = aezip.compress(images, tmp_path / "q6.aezm", max_error=0, embed_model=True)
    assert np.array_equal(aezip.decompress(blob), images)


def test_weight_bits_out_of_range_are_refused(tmp_path, tiny_model_path, capsys) -> None:
    with pytest.raises(ParameterError, match="weight_bits must lie in 2..16"):
        requantize(load_model(tiny_model_path), 17)
    with pytest.raises(SystemExit) as exit_:
        main(["model", "requantize", str(tiny_model_path), "--weight-bits", "1", "-o", str(tmp_path / "x.aezm")])
    assert exit_.value.code == 1
    assert capsys.readouterr().err.startswith("aezip: error: --weight-bits must lie in 2..16")


def _psnr(mf, images: np.ndarray) -> float:
    """PSNR of the model's integer decoder on images (through their codes)."""
    from aezip.network.tiles import predict
    from aezip.network.training import image_codes
    codes = image_codes(mf.model, images, np.arange(len(images)))
    err = predict(mf.config, mf.intdec, codes, mf.config.image_shape).astype(float) - images.reshape(len(images), -1)
    return float(10 * np.log10(255.0 ** 2 / np.mean(err ** 2)))


@pytest.fixture(scope="module")
def trained_path(tmp_path_factory, sample_images):
    """A small model trained long enough (40 epochs) that rounding its decoder to 3 bits costs PSNR."""
    from aezip.network.config import AEConfig
    from aezip.network.training import train_model
    from aezip.options import TrainOptions
    opts = TrainOptions(epochs=40, batch_size=32, seed=1, device="cpu", backend="torch", pixel_model=False)
    mf = train_model(sample_images, AEConfig(image_shape=(28, 28), hidden=(32,), latent=8, levels=8), opts,
                     progress=False, log=lambda m: None)
    path = tmp_path_factory.mktemp("trained") / "m.aezm"
    mf.save(path)
    return path


def test_finetuning_for_coarse_weights_wins_back_psnr_and_keeps_the_codes(tmp_path, trained_path, sample_images):
    mf = load_model(trained_path)
    images = sample_images[:120]
    plain = requantize(mf, 3)
    tuned = requantize(mf, 3, images, epochs=60, sparsity=0.0, log=lambda m: None)
    assert _psnr(plain, images) < _psnr(mf, images) - 0.2                # rounding to 3 bits costs PSNR ...
    assert _psnr(tuned, images) > _psnr(plain, images) + 0.15             # ... which fine-tuning wins back
    assert max(int(np.abs(w).max()) for w in tuned.intdec.weights) <= 3
    for a, b in zip(mf.model.encoder.parameters(), tuned.model.encoder.parameters()):
        assert a.data_ptr() != b.data_ptr() and np.array_equal(a.detach().numpy(), b.detach().numpy())
    assert np.array_equal(load_model(trained_path).model.decoder[0].weight.detach().numpy(),
                          mf.model.decoder[0].weight.detach().numpy())     # the given model is left as it was
    assert not np.array_equal(tuned.residual_prior, mf.residual_prior)     # recounted on the new predictions
    assert tuned.info["requantized"] == {"from_model": mf.id, "decoder_weight_bits": 3, "finetuned_on": 120,
                                         "epochs": 60, "sparsity": 0.0, "seed": 0}
    tuned.save(tmp_path / "a.aezm")
    requantize(mf, 3, images, epochs=60, sparsity=0.0, log=lambda m: None).save(tmp_path / "b.aezm")
    assert (tmp_path / "a.aezm").read_bytes() == (tmp_path / "b.aezm").read_bytes()   # seeded: same bytes
    blob = aezip.compress(images[:30], tmp_path / "a.aezm", max_error=0, embed_model=True)
    assert np.array_equal(aezip.decompress(blob), images[:30])


def test_the_l1_penalty_shrinks_the_stored_decoder(trained_path, sample_images):
    mf = load_model(trained_path)
    images = sample_images[:120]
    sizes = [len(decoder_bytes(_saved(requantize(mf, 8, images, epochs=4, sparsity=s, log=lambda m: None)),
                               max_error_parts=False)) for s in (0.0, 0.2)]
    assert sizes[1] < sizes[0]


def _saved(mf):
    """mf with the id that saving gives it (a decode-side model names its model file)."""
    import tempfile
    from pathlib import Path
    with tempfile.TemporaryDirectory() as d:
        mf.save(Path(d) / "m.aezm")
        return load_model(Path(d) / "m.aezm")


def test_training_can_fine_tune_its_decoder_for_coarse_weights(sample_images):
    from aezip.network.config import AEConfig
    from aezip.network.training import train_model
    from aezip.options import TrainOptions
    opts = TrainOptions(epochs=2, batch_size=32, seed=1, device="cpu", backend="torch", pixel_model=False,
                        decoder_bits=5)
    mf = train_model(sample_images[:100], AEConfig(image_shape=(28, 28), hidden=(32,), latent=8, levels=8), opts,
                     progress=False, log=lambda m: None)
    assert max(int(np.abs(w).max()) for w in mf.intdec.weights) <= 15
    assert mf.info["options"]["decoder_bits"] == 5
    with pytest.raises(ParameterError, match="decoder_bits must lie in 2..16"):
        TrainOptions(decoder_bits=17)


def test_finetuning_refuses_images_of_another_shape_and_stray_options(tmp_path, tiny_model_path, capsys):
    rgb = tmp_path / "rgb.npy"
    np.save(rgb, np.zeros((4, 8, 8, 3), np.uint8))
    for args, message in ((["--finetune", str(rgb)], "fine-tuning takes images of the model's training shape 28x28"),
                          (["--range", "0:10"], "--range, --epochs and --sparsity go with --finetune DATA")):
        with pytest.raises(SystemExit) as exit_:
            main(["model", "requantize", str(tiny_model_path), "--weight-bits", "8", "-o", str(tmp_path / "x.aezm"),
                  *args])
        assert exit_.value.code == 1
        err = capsys.readouterr().err
        assert err.startswith(f"aezip: error: {message}") and err.count("\n") == 1
    assert not (tmp_path / "x.aezm").exists()
