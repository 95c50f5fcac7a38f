"""Training: reproducible model files, every loss and penalty, denoising, and the Triton backend."""
from __future__ import annotations

import hashlib

import numpy as np
import pytest
import torch

from aezip.errors import InputError, ParameterError
from aezip.network.losses import reconstruction_loss
from aezip.network.model import AEConfig
from aezip.files.modelfile import load_model, model_bytes
from aezip.network.training import TrainOptions, corrupt, parse_denoise, train_model
from tests.conftest import TINY_PIXEL, write_idx
from tests.test_cli import assert_one_line_error, run

CONFIG = AEConfig(image_shape=(28, 28), hidden=(24,), latent=6, levels=8)


def _train(images: np.ndarray, **kw) -> bytes:
    opts = TrainOptions(**{"epochs": 2, "batch_size": 32, "device": "cpu", "backend": "torch", "pixel": TINY_PIXEL,
                           **kw})
    r = train_model(images, CONFIG, opts, progress=False, log=lambda m: None)
    return model_bytes(r)


def test_same_seed_same_data_same_model_file(sample_images) -> None:
    a = _train(sample_images[:100], seed=3)
    b = _train(sample_images[:100], seed=3)
    c = _train(sample_images[:100], seed=4)
    assert hashlib.sha256(a).digest() == hashlib.sha256(b).digest() != hashlib.sha256(c).digest()


@pytest.mark.parametrize("kw", [{"loss": "bce"}, {"loss": "cosine", "l2": 0.1}, {"quant_noise": "ste"},
                                {"denoise": "gaussian:0.3", "rho": None}])
def test_every_loss_and_option_trains(sample_images, kw, tmp_path) -> None:
    data = _train(sample_images[:64], **kw)
    path = tmp_path / "m.aezm"
    path.write_bytes(data)
    mf = load_model(path)
    assert mf.info["options"]["loss"] == kw.get("loss", TrainOptions.loss)
    assert all(torch.isfinite(p).all() for p in mf.model.parameters())


def test_training_with_the_triton_backend_under_the_interpreter(sample_images) -> None:
    opts = TrainOptions(epochs=1, batch_size=64, device="cpu", backend="triton")
    logs: list[str] = []
    cfg = AEConfig(image_shape=(28, 28), hidden=(16,), latent=4, levels=8)
    r = train_model(sample_images[:64], cfg, opts, progress=False, log=logs.append)
    assert "kernel backend triton" in logs[0]
    same = train_model(sample_images[:64], cfg, TrainOptions(epochs=1, batch_size=64, device="cpu", backend="torch"),
                       progress=False, log=lambda m: None)
    # same start, same data order: the backends differ only by float rounding
    assert abs(r.info["heldout"]["psnr_db"] - same.info["heldout"]["psnr_db"]) < 0.05


def test_losses_are_zero_or_minimal_at_the_target() -> None:
    x = torch.tensor([[0.0, 1.0, 0.5]])
    logits = torch.tensor([[-30.0, 30.0, 0.0]])
    assert reconstruction_loss(logits, x, "mse").item() == pytest.approx(0.0, abs=1e-9)
    assert reconstruction_loss(logits, x, "cosine").item() == pytest.approx(0.0, abs=1e-6)
    assert reconstruction_loss(logits, x, "bce").item() == pytest.approx(np.log(2), abs=1e-6)


def test_denoise_specs() -> None:
    assert parse_denoise("gaussian:0.3") == ("gaussian", 0.3)
    assert parse_denoise("mask:0.5") == ("mask", 0.5)
    assert parse_denoise("box:14") == ("box", 14.0)
    for bad in ("blur:1", "mask:1.5", "gaussian:x", "box:0", "box:2.5"):
        with pytest.raises(InputError, match="^denoise "):
            parse_denoise(bad)
    g = torch.Generator().manual_seed(0)
    x = torch.full((4, 1000), 0.5)
    masked = corrupt(x, ("mask", 0.25), (1000,), g)
    assert 0.2 < (masked == 0).float().mean().item() < 0.3
    noisy = corrupt(x, ("gaussian", 0.1), (1000,), g)
    assert 0.08 < (noisy - x).std().item() < 0.12 and noisy.min() >= 0 and noisy.max() <= 1


def test_box_corruption_zeroes_one_box_per_image() -> None:
    g = torch.Generator().manual_seed(1)
    x = torch.ones(50, 9 * 7 * 2)
    boxed = corrupt(x, ("box", 3), (9, 7, 2), g).view(50, 9, 7, 2)
    assert torch.equal(boxed[..., 0], boxed[..., 1])            # channels share the box
    for img in boxed[..., 0]:
        rows, cols = torch.nonzero(img == 0, as_tuple=True)
        assert len(rows) == 9 and rows.max() - rows.min() == 2 and cols.max() - cols.min() == 2
    corners = {(int(torch.nonzero(i[..., 0] == 0)[0, 0]), int(torch.nonzero(i[..., 0] == 0)[0, 1])) for i in boxed}
    assert len(corners) > 10                                    # placed at random
    whole = corrupt(torch.ones(2, 16), ("box", 9), (4, 4), g)   # a box larger than the image covers it
    assert torch.all(whole == 0)


@torch.no_grad()
def test_latent_density_bits_are_the_mixture_mass_over_each_bin() -> None:
    from aezip.network.losses import LatentDensity
    density = LatentDensity(latent=2, components=3)
    with torch.no_grad():
        density.weight_logits.copy_(torch.tensor([[0.0, 1.0, -1.0], [2.0, 0.0, 0.0]]))
        density.log_scale.copy_(torch.log(torch.tensor([[0.05, 0.1, 0.2], [0.1, 0.1, 0.3]])))
    step = 1 / 7
    codes = torch.arange(8, dtype=torch.float64) * step
    z = torch.cartesian_prod(codes, codes).float()        # 64 "images" of one tile each: every pair of codes
    expected = 0.0
    for row in z.tolist():
        for j, v in enumerate(row):
            w = torch.softmax(density.weight_logits[j], 0)
            s, mu = torch.exp(density.log_scale[j]), density.loc[j]
            mass = torch.sigmoid((v + step / 2 - mu) / s) - torch.sigmoid((v - step / 2 - mu) / s)
            expected += -float(torch.log2((w * mass).sum()))
    assert float(density.bits(z, step)) == pytest.approx(expected / len(z), rel=1e-5)
    # two tiles per image: the same latents, twice the bits per image
    assert float(density.bits(z.reshape(32, 4), step)) == pytest.approx(2 * expected / len(z), rel=1e-5)
    # the masses of all bins (the grid's and beyond it) sum to at most 1, so the bits are a code's lengths
    one = LatentDensity(latent=1)
    bins = torch.arange(-60, 68, dtype=torch.float32)[:, None] * step
    p = torch.stack([torch.exp2(-one.bits(b[None], step)) for b in bins])
    assert 0.999 < float(p.sum()) <= 1.0 + 1e-5


def test_rate_weight_trains_fewer_latent_bits_and_is_recorded(sample_images, tmp_path, capsys) -> None:
    from aezip.files.modelfile import ModelFile
    opts = {"epochs": 4, "batch_size": 32, "device": "cpu", "backend": "torch", "pixel_model": False, "seed": 2}
    config = AEConfig(image_shape=(28, 28), hidden=(24,), latent=6, levels=8)
    runs: dict[float, ModelFile] = {}
    for w in (0.0, 4.0):
        runs[w] = train_model(sample_images[:200], config, TrainOptions(rate_weight=w, **opts), progress=False,
                              log=lambda m: None)
    bits = {w: r.info["heldout"]["latent_bits_per_pixel"] for w, r in runs.items()}
    assert bits[4.0] < 0.7 * bits[0.0]
    assert "rate_weight" not in runs[0.0].info["options"] and runs[4.0].info["options"]["rate_weight"] == 4.0
    with pytest.raises(ParameterError, match="rate_weight must not be negative"):
        TrainOptions(rate_weight=-1.0)
    src = write_idx(tmp_path / "d-idx3-ubyte", sample_images[:40])
    code, _, err = run(capsys, "train", src, "-o", tmp_path / "m.aezm", "--hidden", "8", "--latent", "2",
                       "--epochs", "1", "--no-pixel-model", "--rate-weight", "-0.5")
    assert_one_line_error(code, err, "--rate-weight must not be negative")
    assert not (tmp_path / "m.aezm").exists()
