"""The autoencoder's other uses: features and a linear probe, restoration, and the adversarial latent prior."""
from __future__ import annotations

import gzip
import struct

import numpy as np
import pytest
import torch

from aezip.files.data import open_dataset
from aezip.errors import InputError
from aezip.uses.features import embed, linear_probe, read_labels
from aezip.network.losses import LatentDiscriminator, adversarial_penalty, discriminator_loss, sample_prior
from aezip.network.model import AEConfig
from aezip.files.modelfile import load_model, save_model
from aezip.options import parse_prior
from aezip.uses.restore import BANK_MAX, box_mask, code_bank, inpaint
from aezip.network.training import TrainOptions, train_model
from tests.conftest import write_idx
from tests.test_cli import run


def test_embed_gives_n_by_latent_features(tmp_path, capsys, tiny_model_path, sample_images) -> None:
    src = write_idx(tmp_path / "d-idx3-ubyte", sample_images[:30])
    feats = embed(open_dataset(src), load_model(tiny_model_path))
    assert feats.shape == (30, 8) and feats.dtype == np.float32 and (0 < feats).all() and (feats < 1).all()
    code, out, _ = run(capsys, "embed", src, "-m", tiny_model_path, "-o", tmp_path / "f.npy", "--quantized")
    assert code == 0 and np.load(tmp_path / "f.npy").dtype == np.int32


def test_linear_probe_beats_chance_by_far() -> None:
    rng = np.random.default_rng(0)
    centers = rng.normal(size=(4, 6)) * 3
    y = rng.integers(0, 4, 400)
    x = centers[y] + rng.normal(size=(400, 6))
    assert linear_probe(x[:300], y[:300], x[300:], y[300:]) > 0.9


def test_labels_from_idx(tmp_path) -> None:
    path = tmp_path / "l-idx1-ubyte.gz"
    path.write_bytes(gzip.compress(b"\x00\x00\x08\x01" + struct.pack(">I", 3) + bytes([7, 1, 9])))
    assert read_labels(path).tolist() == [7, 1, 9]
    (tmp_path / "bad").write_bytes(b"\x00\x00\x08\x03rest")
    with pytest.raises(InputError, match="not an IDX label file"):
        read_labels(tmp_path / "bad")


def test_inpainting_improves_on_the_damaged_input(tiny_model_path, sample_images) -> None:
    mf = load_model(tiny_model_path)
    clean = sample_images[200:220]
    missing = box_mask((28, 28), "7,7,14,14")
    damaged = clean.copy()
    damaged[:, missing] = 0
    restored = inpaint(mf.model, damaged, missing, mf.bank)
    np.testing.assert_array_equal(restored[:, ~missing], clean[:, ~missing])   # known pixels are kept
    err = lambda a: np.mean((a[:, missing].astype(float) - clean[:, missing]) ** 2)  # noqa: E731
    assert err(restored) < err(damaged)


def test_model_file_keeps_a_bank_of_training_codes(tiny_model_path) -> None:
    mf = load_model(tiny_model_path)
    assert mf.bank is not None and mf.bank.dtype == np.uint8 and mf.bank.shape[1] == mf.config.latent
    assert len(mf.bank) == 270 and mf.bank.max() < mf.config.levels      # the 90 % training split of 300 images
    assert len(code_bank(np.zeros((BANK_MAX + 5, 3), np.int32), 300)) == BANK_MAX


def test_inpainting_finds_an_image_whose_code_is_in_the_bank(tiny_model_path) -> None:
    mf = load_model(tiny_model_path)
    with torch.no_grad():
        decoded = mf.model.decode(mf.model.dequantize(torch.from_numpy(mf.bank[:5].astype(int))))
    target = np.round(decoded.numpy() * 255).astype(np.uint8).reshape(5, 28, 28)
    missing = box_mask((28, 28), "6,6,16,16")
    damaged = target.copy()
    damaged[:, missing] = 0
    restored = inpaint(mf.model, damaged, missing, mf.bank, steps=0, estimate="nearest")
    assert np.abs(restored.astype(int) - target).max() <= 1


@pytest.mark.slow
def test_bank_candidates_improve_inpainting(sample_images) -> None:
    mf = load_model()                          # the shipped model (MNIST 0-7999); the sample is images 8000-8299
    clean = sample_images[:40]
    missing = np.zeros(clean.shape, bool)      # a 12 x 14 box, at a different height in every image
    for i in range(len(clean)):
        missing[i, i % 10 + 4:i % 10 + 16, 7:21] = True
    damaged = np.where(missing, 0, clean).astype(np.uint8)
    err = lambda a: np.mean((a[missing].astype(float) - clean[missing]) ** 2)  # noqa: E731
    encoder_only = inpaint(mf.model, damaged, missing, mf.bank, candidates=0)
    with_bank = inpaint(mf.model, damaged, missing, mf.bank, batch=16)
    nearest = inpaint(mf.model, damaged, missing, mf.bank, batch=16, estimate="nearest")
    assert err(with_bank) < 0.8 * err(encoder_only) and err(with_bank) < err(nearest) < err(damaged)
    with pytest.raises(InputError, match="^estimate .median. is not one of mean, nearest"):
        inpaint(mf.model, damaged, missing, mf.bank, estimate="median")


def test_restore_cli_reports_psnr(tmp_path, capsys, tiny_model_path, sample_images) -> None:
    clean = write_idx(tmp_path / "c-idx3-ubyte", sample_images[:10])
    damaged = sample_images[:10].copy()
    damaged[:, 10:20, 10:20] = 255
    src = write_idx(tmp_path / "d-idx3-ubyte", damaged)
    code, out, _ = run(capsys, "restore", src, "-m", tiny_model_path, "-o", tmp_path / "r-idx3-ubyte",
                       "--mask-box", "10,10,10,10", "--steps", "20", "--original", clean)
    assert code == 0 and "damaged region" in out and open_dataset(tmp_path / "r-idx3-ubyte").shape == (10, 28, 28)
    code, _, err = run(capsys, "restore", src, "-m", tiny_model_path, "-o", tmp_path / "x", "--mask-box", "20,20,9,9")
    assert code != 0 and "does not fit" in err


def test_restore_cli_with_a_mask_file(tmp_path, capsys, tiny_model_path, sample_images) -> None:
    images = sample_images[:6].copy()
    mask = np.zeros(images.shape, np.uint8)
    mask[np.arange(6), 5:9, np.arange(6) + 3] = 1                       # a different stroke in every image
    np.save(tmp_path / "mask.npy", mask)
    np.save(tmp_path / "d.npy", np.where(mask, 0, images).astype(np.uint8))
    code, out, _ = run(capsys, "restore", tmp_path / "d.npy", "-m", tiny_model_path, "-o", tmp_path / "r.npy",
                       "--mask", tmp_path / "mask.npy", "--estimate", "nearest", "--steps", "3")
    restored = np.load(tmp_path / "r.npy")
    assert code == 0 and restored.shape == images.shape
    np.testing.assert_array_equal(restored[mask == 0], images[mask == 0])
    np.save(tmp_path / "bad.npy", mask[:, :20])
    code, _, err = run(capsys, "restore", tmp_path / "d.npy", "-m", tiny_model_path, "-o", tmp_path / "x.npy",
                       "--mask", tmp_path / "bad.npy")
    assert code != 0 and "does not fit" in err and "Traceback" not in err
    code, _, err = run(capsys, "restore", tmp_path / "d.npy", "-m", tiny_model_path, "-o", tmp_path / "x.npy",
                       "--mask", tmp_path / "mask.npy", "--temperature", "0")
    assert code != 0 and "--temperature must be positive" in err and not (tmp_path / "x.npy").exists()


def test_restore_without_a_bank_says_so(tmp_path, capsys, tiny_model_path, sample_images) -> None:
    mf = load_model(tiny_model_path)
    mf.bank = None
    save_model(tmp_path / "old.aezm", mf)
    np.save(tmp_path / "d.npy", sample_images[:3])
    code, out, _ = run(capsys, "restore", tmp_path / "d.npy", "-m", tmp_path / "old.aezm", "-o", tmp_path / "r.npy",
                       "--mask-box", "7,7,14,14", "--steps", "2")
    assert code == 0 and "has no bank of training codes" in out and load_model(tmp_path / "old.aezm").bank is None


def test_prior_specs() -> None:
    assert parse_prior("adversarial") == ("uniform", 0.0)
    assert parse_prior("adversarial:bernoulli:0.1") == ("bernoulli", 0.1)
    for bad in ("gan", "adversarial:bernoulli", "adversarial:bernoulli:2"):
        with pytest.raises(ValueError, match="^prior "):
            parse_prior(bad)


def _distance_to_uniform(h: torch.Tensor) -> float:
    """1-Wasserstein distance between the values of h (all dimensions pooled) and U(0, 1)."""
    v = np.sort(h.detach().numpy().ravel())
    return float(np.abs(v - (np.arange(v.size) + 0.5) / v.size).mean())


@pytest.mark.slow
@pytest.mark.parametrize("prior", [("uniform", 0.0), ("bernoulli", 0.2)])
def test_adversarial_prior_moves_codes_towards_it(prior) -> None:
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(0)
    logits = (0.01 * torch.randn(256, 4)).requires_grad_()     # codes start near 0.5, far from either prior
    disc = LatentDiscriminator(4)
    d_opt = torch.optim.Adam(disc.parameters(), 1e-3, betas=(0.5, 0.999))
    opt = torch.optim.Adam([logits], 0.05)
    for _ in range(250):
        h = torch.sigmoid(logits)
        d_opt.zero_grad()
        discriminator_loss(disc, h, sample_prior(prior, tuple(h.shape), gen, torch.device("cpu"))).backward()
        d_opt.step()
        opt.zero_grad()
        adversarial_penalty(disc, h, 1.0).backward()
        opt.step()
    h = torch.sigmoid(logits).detach()
    if prior[0] == "uniform":
        assert _distance_to_uniform(h) < 0.8 * 0.2479   # it starts at 0.248
    else:
        assert abs((h > 0.5).float().mean().item() - 0.2) < 0.05
        assert (h - torch.round(h)).abs().mean().item() < 0.05    # nearly binary codes


def test_training_with_the_adversarial_prior_stays_finite(sample_images) -> None:
    config = AEConfig(image_shape=(28, 28), hidden=(16,), latent=4, levels=8)
    opts = TrainOptions(epochs=2, batch_size=32, device="cpu", backend="torch", prior="adversarial:bernoulli:0.1",
                        pixel_model=False)
    r = train_model(sample_images[:96], config, opts, progress=False, log=lambda m: None)
    assert all(torch.isfinite(p).all() for p in r.model.parameters())
    assert r.info["options"]["prior"] == "adversarial:bernoulli:0.1"
