"""Tile models: the geometry (padding and cropping exact, numpy and torch alike), training and round trips on any
H x W x C, the Triton encoder on tile rows, header and model-file checks, and one-line refusals."""
from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch

from aezip.network import tiles
from aezip.codec import decode_file, encode_dataset
from aezip.network.config import AEConfig
from aezip.files.data import array_dataset
from aezip.errors import FormatError, ModelMismatchError
from aezip.files.header import validate_header
from aezip.network.model import AutoEncoder
from aezip.files.modelfile import load_model, save_model
from aezip.network.sizing import pick
from aezip.network.training import TrainOptions, train_model
from tests.conftest import TINY_PIXEL
from tests.test_cli import assert_one_line_error, run
from tests.test_torch_free import assert_runs_without_torch


def _images(shape: tuple[int, ...], n: int, seed: int = 0) -> np.ndarray:
    """Smooth random images (a blurred noise field plus a gradient), so a tiny model learns something."""
    rng = np.random.default_rng(seed)
    h, w = shape[:2]
    base = rng.normal(size=(n, h + 4, w + 4, *shape[2:])).cumsum(1).cumsum(2)[:, 2:h + 2, 2:w + 2]
    base -= base.min(axis=(1, 2), keepdims=True)
    base /= base.max(axis=(1, 2), keepdims=True) + 1e-9
    return np.round(base * 255).astype(np.uint8)


def _tile_model(tmp_path, shape: tuple[int, ...], n: int = 48, pixel: bool = False, **options):
    """A tiny 4 x 4 tile model (margin 1, context 1) trained on `shape`, saved and loaded back."""
    config = AEConfig(image_shape=shape, hidden=(16,), latent=3, levels=8, patch=4, margin=1, context=1)
    opts = TrainOptions(epochs=2, batch_size=16, seed=2, device="cpu", backend="torch", pixel=TINY_PIXEL,
                        pixel_model=pixel, **options)
    path = tmp_path / "m.aezm"
    save_model(path, train_model(_images(shape, n), config, opts, progress=False, log=lambda m: None))
    return load_model(path)


@pytest.mark.parametrize("shape,patch,margin", [((5, 7), 4, 1), ((8, 8), 8, 0), ((28, 28), 7, 2),
                                                ((32, 32, 3), 8, 3), ((64, 48, 3), 16, 2), ((9, 13, 3), 4, 5)])
def test_tiles_cut_with_no_margin_fold_back_to_the_image_exactly(shape, patch, margin) -> None:
    x = _images(shape, 3).reshape(3, -1)
    cut = tiles.window_rows(x, shape, patch, 0)
    assert cut.shape == (3 * tiles.tile_count(shape, patch), patch * patch * (shape[2] if len(shape) == 3 else 1))
    assert np.array_equal(tiles.fold(cut, 3, shape, patch), x)
    # windows with a margin: numpy and torch agree, and the window's centre is the tile
    win = tiles.window_rows(x, shape, patch, margin)
    assert np.array_equal(tiles.window_rows(torch.from_numpy(x), shape, patch, margin).numpy(), win)
    c = shape[2] if len(shape) == 3 else 1
    side = patch + 2 * margin
    centre = win.reshape(-1, side, side, c)[:, margin:margin + patch, margin:margin + patch].reshape(len(win), -1)
    assert np.array_equal(centre, cut)


def test_neighbourhoods_repeat_the_edge_tiles() -> None:
    idx = tiles.neighbour_index(2, 3, 1)            # tiles 0 1 2 / 3 4 5
    assert idx.shape == (6, 9)
    assert idx[0].tolist() == [0, 0, 1, 0, 0, 1, 3, 3, 4]
    assert idx[4].tolist() == [0, 1, 2, 3, 4, 5, 3, 4, 5]
    z = np.arange(2 * 6 * 2).reshape(2, 12)
    rows = tiles.context_rows(z, (7, 11), 4, 1)     # a 2 x 3 grid, 2 latents per tile
    assert np.array_equal(rows, tiles.context_rows(torch.from_numpy(z), (7, 11), 4, 1).numpy())
    assert rows.shape == (12, 18) and rows[6 + 4].tolist() == (z[1].reshape(6, 2)[idx[4]]).reshape(-1).tolist()


def test_the_size_of_a_tile_model_does_not_depend_on_the_image() -> None:
    small = AEConfig(image_shape=(28, 28), hidden=(64,), latent=4, patch=8, margin=2, context=1)
    large = dataclasses.replace(small, image_shape=(512, 384))
    assert small.weight_shapes() == large.weight_shapes()
    assert small.weight_shapes()["encoder.0.weight"] == (64, 12 * 12)
    assert small.weight_shapes()["decoder.0.weight"] == (64, 9 * 4)
    assert small.weight_shapes()["decoder.1.weight"] == (64, 64)


@pytest.mark.parametrize("shape", [(5, 7), (8, 8), (28, 28), (32, 32, 3), (64, 48, 3)])
def test_tile_models_train_and_round_trip_lossy_and_lossless(tmp_path, shape) -> None:
    mf = _tile_model(tmp_path, shape, n=8 if shape[0] > 32 else 32, pixel=shape == (28, 28))
    images = _images(shape, 11, seed=5)
    m = mf.model
    with torch.no_grad():
        codes = m.codes(torch.from_numpy(images.reshape(11, -1)).float() / 255, "torch", shape).numpy()
        float_decode = torch.round(m.decode(m.dequantize(torch.from_numpy(codes)), shape) * 255).numpy()
    want = tiles.predict(mf.config, mf.intdec, codes, shape)
    assert np.abs(want.astype(int) - float_decode).max() <= 1   # the integer decoder is the float one, quantized
    for max_error in (None, 0, 3):
        aez, out = tmp_path / f"x{max_error}.aez", tmp_path / f"x{max_error}.npy"
        report = encode_dataset(array_dataset(images), mf, aez, max_error=max_error, chunk_size=4)
        decode_file(aez, out, model_path=mf)
        got = np.load(out)
        assert got.shape == images.shape
        if max_error is None:
            assert np.array_equal(got.reshape(11, -1), want)
            assert report.max_abs_error == int(np.abs(images.reshape(11, -1).astype(int) - want).max())
        else:
            assert np.abs(got.astype(int) - images).max() <= max_error


def test_one_tile_model_codes_images_of_any_size_with_its_channels(tmp_path) -> None:
    mf = _tile_model(tmp_path, (8, 8))
    for shape in [(5, 7), (28, 28), (13, 40)]:
        images = _images(shape, 6, seed=3)
        aez, out = tmp_path / "x.aez", tmp_path / "x.npy"
        encode_dataset(array_dataset(images), mf, aez, max_error=0, force=True)
        decode_file(aez, out, model_path=mf, force=True)
        assert np.array_equal(np.load(out), images)
    with pytest.raises(ModelMismatchError, match="3 channel.*tile model for 1 channel"):
        encode_dataset(array_dataset(_images((8, 8, 3), 2)), mf, tmp_path / "y.aez")


def test_a_tile_model_for_another_channel_count_is_a_one_line_error(tmp_path, capsys) -> None:
    path = _tile_model(tmp_path, (8, 8)).path
    np.save(tmp_path / "rgb.npy", _images((16, 16, 3), 4))
    code, _, err = run(capsys, "encode", tmp_path / "rgb.npy", "-m", path, "-o", tmp_path / "x.aez")
    assert_one_line_error(code, err, "tile model for 1 channel")


def test_decoding_a_tile_model_file_imports_no_torch(tmp_path) -> None:
    path = _tile_model(tmp_path, (8, 8), pixel=True).path
    np.save(tmp_path / "x.npy", _images((11, 9), 5))
    aez = tmp_path / "x.aez"
    encode_dataset(array_dataset(np.load(tmp_path / "x.npy")), load_model(path), aez, max_error=2)
    assert_runs_without_torch(["decode", str(aez), "-o", str(tmp_path / "y.npy"), "-m", str(path)])
    assert np.abs(np.load(tmp_path / "y.npy").astype(int) - np.load(tmp_path / "x.npy")).max() <= 2


def test_a_tile_model_embedded_in_its_file_decodes_other_sizes_without_a_model(tmp_path) -> None:
    mf = _tile_model(tmp_path, (8, 8), pixel=True)
    for shape, max_error in [((13, 21), None), ((6, 5), 0)]:
        images = _images(shape, 5, seed=7)
        aez, out, ref = tmp_path / "x.aez", tmp_path / "x.npy", tmp_path / "r.npy"
        encode_dataset(array_dataset(images), mf, aez, max_error=max_error, embed_model=True, force=True)
        decode_file(aez, out, force=True)                  # no model: the file's own
        decode_file(aez, ref, model_path=mf, force=True)
        assert np.array_equal(np.load(out), np.load(ref))
        if max_error == 0:
            assert np.array_equal(np.load(out), images)


def _header(**extra) -> dict:
    h = {"shape": [4, 30, 20], "dtype": "uint8", "source": {}, "model_id": "0" * 64, "levels": 8, "latent": 3,
         "max_error": None, "backend": "torch", "aezip_version": "x", "chunk_size": 4, "decoder": "d",
         "entropy": "e", "residual": None}
    return {**h, **extra}


@pytest.mark.parametrize("tiles_entry,needle", [
    ({"patch": 0, "context": 1}, "is not {patch"), ({"patch": 4}, "is not {patch"),
    ({"patch": 4, "context": 99}, "is not {patch"), ({"patch": 4, "context": True}, "is not {patch"),
    ({"patch": 1, "context": 1, "x": 1}, "is not {patch")])
def test_bad_tiles_entries_in_a_header_are_refused(tiles_entry, needle) -> None:
    with pytest.raises(FormatError, match=needle):
        validate_header(_header(tiles=tiles_entry), decoder="d", entropy="e", residual=())
    validate_header(_header(tiles={"patch": 4, "context": 1}), decoder="d", entropy="e", residual=())
    big = _header(shape=[4, 8192, 8192], latent=4096, chunk_size=1, tiles={"patch": 1, "context": 0})
    with pytest.raises(FormatError, match="latent symbols per chunk"):
        validate_header(big, decoder="d", entropy="e", residual=())


def test_a_header_whose_tiles_contradict_the_model_is_refused(tmp_path) -> None:
    from aezip.files.container import ContainerReader
    from aezip.codec import model_for
    mf = _tile_model(tmp_path, (8, 8))
    aez = tmp_path / "x.aez"
    encode_dataset(array_dataset(_images((8, 8), 3)), mf, aez)
    with ContainerReader(aez) as reader:
        assert reader.header["tiles"] == {"patch": 4, "context": 1}
        model_for(reader, mf)
        reader.header["tiles"] = {"patch": 4, "context": 0}
        with pytest.raises(FormatError, match="contradict its model"):
            model_for(reader, mf)


def test_model_files_with_bad_tile_fields_are_refused(tmp_path) -> None:
    from aezip.files.modelcheck import check_config
    good = AEConfig(image_shape=(8, 8), hidden=(4,), latent=2, patch=4, margin=1, context=1).to_dict()
    stored = json.loads(json.dumps(good))
    assert check_config(stored) == stored
    for bad in ({"patch": -1}, {"patch": 0, "margin": 1}, {"context": 9}, {"margin": 65}, {"patch": 1.5}):
        with pytest.raises(FormatError, match="config patch, margin, context"):
            check_config({**good, **bad})
    whole = AEConfig(image_shape=(8, 8), hidden=(4,), latent=2).to_dict()
    assert "patch" not in whole      # whole-image models are stored as before tile models existed


@pytest.mark.interpreter
def test_the_triton_encoder_gives_the_torch_codes_on_tile_rows() -> None:
    for shape, patch, margin in [((5, 7), 4, 1), ((9, 13, 3), 4, 3)]:
        model = AutoEncoder(AEConfig(image_shape=shape, hidden=(19, 11), latent=5, levels=16, patch=patch,
                                     margin=margin, context=1))
        x = torch.from_numpy(_images(shape, 3).reshape(3, -1)).float() / 255
        with torch.no_grad():
            z_t, z_r = model.encode(x, "triton"), model.encode(x, "torch")
            c_t, c_r = model.codes(x, "triton"), model.codes(x, "torch")
        torch.testing.assert_close(z_t, z_r, rtol=1e-5, atol=1e-5)
        near_tie = ((z_r * 15 - torch.floor(z_r * 15)) - 0.5).abs() < 1e-4
        assert c_t.shape == (3, tiles.tile_count(shape, patch) * 5) and torch.all((c_t == c_r) | near_tie)


def test_training_defaults_are_picked_from_the_data_and_overrides_kept() -> None:
    mnist = pick((8000, 28, 28), {}, 0.1)
    assert mnist.arch["patch"] == 0 and mnist.arch["hidden"] == (512, 256) and mnist.epochs == 160
    rgb = pick((64, 256, 256, 3), {}, 0.1)
    assert rgb.arch["patch"] == 8 and rgb.crop == 32 and rgb.batch_size == 64 and "32x32 crops" in rgb.describe()
    assert rgb.arch["latent"] == 8 and pick((1006, 32, 32), {}, 0.1).arch["latent"] == 4   # per 8 x 8 tile
    assert rgb.patience == rgb.epochs and "no early stop" in rgb.describe() and mnist.patience == 30
    assert pick((64, 256, 256, 3), {}, 0.1, patience=7).patience == 7
    # tile models train for the whole ladder with the latents' bits in the loss; the whole-image model does not
    assert (rgb.variable_rate, rgb.rate_weight, mnist.variable_rate, mnist.rate_weight) == (2, 0.05, 0, 0.0)
    assert "every quality from 2, rate weight 0.05" in rgb.describe() and "every quality" not in mnist.describe()
    mine_rate = pick((64, 256, 256, 3), {"levels": 8}, 0.1, variable_rate=0, rate_weight=0.2)
    assert (mine_rate.variable_rate, mine_rate.rate_weight) == (0, 0.2) and "rate weight" not in mine_rate.picked
    mine = pick((1000, 32, 32), {"patch": 4, "latent": 2, "hidden": (8,)}, 0.1, epochs=3, batch_size=5)
    assert (mine.arch["patch"], mine.arch["latent"], mine.arch["hidden"], mine.epochs, mine.batch_size) == \
        (4, 2, (8,), 3, 5)
    assert "patch" not in mine.picked and "margin" in mine.picked
    assert pick((1000, 32, 32, 3), {}, 0.1).augment == "flip,invert,channels,contrast,zoom"    # colour tile models
    assert pick((1000, 32, 32), {}, 0.1).augment == "flip,invert"


def test_augmentations_move_pixels_and_keep_their_values() -> None:
    from aezip.network.augment import augment
    from aezip.errors import ParameterError
    from aezip.options import parse_augment
    x = torch.from_numpy(_images((6, 6, 3), 16).reshape(16, -1)).float() / 255
    gen = torch.Generator().manual_seed(0)
    moved = augment(x, (6, 6, 3), ("flip", "channels"), gen)
    assert not torch.equal(moved, x)
    assert torch.equal(moved.sort(1).values, x.sort(1).values)          # the same values, elsewhere
    inverted = augment(x, (6, 6, 3), ("invert",), gen)
    assert all(torch.equal(a, b) or torch.allclose(a, 1 - b) for a, b in zip(inverted, x))
    flat = torch.full((4, 6 * 6 * 3), 0.5)
    flat[:, ::2] += 0.05                                                # deviations of +-0.05 that no gain clips
    scaled = augment(flat, (6, 6, 3), ("contrast",), gen)
    gains = ((scaled - scaled.mean(1, keepdim=True)).abs().amax(1)
             / (flat - flat.mean(1, keepdim=True)).abs().amax(1))
    assert torch.allclose(scaled.mean(1), flat.mean(1), atol=1e-6)      # about each image's mean
    assert torch.all(gains >= 1 / 3 - 1e-4) and torch.all(gains <= 3 + 1e-4) and len(set(gains.tolist())) == 4
    ramp = torch.linspace(0, 1, 8).repeat(8 * 1, 1).reshape(1, 8, 8, 1).expand(6, 8, 8, 1).reshape(6, -1)
    zoomed = augment(ramp, (8, 8), ("zoom",), gen).view(6, 8, 8)
    spans = zoomed.amax((1, 2)) - zoomed.amin((1, 2))                  # a magnified ramp spans less, never more
    assert torch.all(zoomed >= 0) and torch.all(zoomed <= 1) and torch.all(spans <= 1 + 1e-6)
    assert (spans < 0.99).any() and (spans > 1 - 1e-6).any()           # some magnified, some left alone
    assert parse_augment("none") == () and parse_augment("flip, invert") == ("flip", "invert")
    with pytest.raises(ParameterError, match="'rotate' is not one of"):
        parse_augment("flip,rotate")


def test_large_images_train_on_crops_and_the_model_codes_them_whole(tmp_path) -> None:
    import aezip
    a = np.arange(2 * 64 * 70 * 3).reshape(2, 64, 70, 3)
    crops = tiles.grid_crops(a, 32)
    assert crops.shape == (8, 32, 32, 3) and np.array_equal(crops[1], a[0, :32, 32:64])
    assert np.array_equal(crops[4], a[1, :32, :32])
    assert pick((48, 256, 256, 3), {}, 0.1).crop == 32 and pick((9, 32, 32), {}, 0.1).crop == 0
    images = _images((40, 36), 6)
    logs: list[str] = []
    mf = aezip.train(images, patch=4, hidden=(8,), latent=2, epochs=1, device="cpu", pixel_model=False,
                     log=logs.append)
    assert "trained on 16x16 crops" in logs[0] and mf.config.image_shape == (16, 16)
    assert mf.info["data"]["shape"] == [6, 40, 36]
    mf.save(tmp_path / "m.aezm")
    aez, out = tmp_path / "x.aez", tmp_path / "x.npy"
    encode_dataset(array_dataset(images), load_model(tmp_path / "m.aezm"), aez, max_error=0)
    decode_file(aez, out, model_path=load_model(tmp_path / "m.aezm"))
    assert np.array_equal(np.load(out), images)


def test_a_whole_image_model_is_trained_and_stored_as_before_tile_models(sample_images) -> None:
    import aezip
    mf = aezip.train(sample_images[:40], hidden=(8,), latent=2, epochs=1, device="cpu", pixel_model=False)
    assert mf.config.patch == 0 and "patch" not in mf.config.to_dict()
    assert "augment" not in mf.info["options"] and mf.info["options"]["batch_size"] == 64


@pytest.mark.parametrize("args,needle", [(["--patch", "300"], "patch must lie in 0..256"),
                                         (["--margin", "2"], "margin and context apply to tile models"),
                                         (["--patch", "4", "--augment", "rotate"], "'rotate' is not one of")])
def test_bad_tile_options_are_one_line_errors(tmp_path, capsys, args, needle) -> None:
    np.save(tmp_path / "d.npy", _images((28, 28), 4))
    code, _, err = run(capsys, "train", tmp_path / "d.npy", "-o", tmp_path / "m.aezm", "--epochs", "1", *args)
    assert_one_line_error(code, err, needle)


def test_a_tile_model_takes_the_quality_ladder_and_the_context_coder(tmp_path, legacy_coders) -> None:
    mf = _tile_model(tmp_path, (8, 8), context_model=True, variable_rate=3)
    assert mf.context is not None
    images = _images((12, 10), 6, seed=9)
    from aezip.fileinfo import file_info
    from aezip.metrics import psnr
    for quality in (None, 3):
        aez, out = tmp_path / f"q{quality}.aez", tmp_path / f"q{quality}.npy"
        report = encode_dataset(array_dataset(images), mf, aez, quality=quality)
        decode_file(aez, out, model_path=mf)
        info = file_info(aez)
        assert info["entropy"] == "ans-categorical-context-v1" and info.get("quality") == quality
        assert np.load(out).shape == images.shape and psnr(np.load(out), images) == pytest.approx(report.psnr_db)
