"""The convolutional codec as a product model kind (aezip.conv): `aezip train --arch conv` makes one model holding a
ladder of rate points for images of any H x W; encode / decode / info / --embed-model serve it; its decoder rebuilds
exactly the pixels the encoder measured (the file's pixel checksum), and hostile model files and headers are refused."""
from __future__ import annotations

import io

import numpy as np
import pytest
import torch

import aezip
from aezip.coding.intconv import WEIGHT_LIMIT, integer_synthesize
from aezip.conv.model import ConvConfig, ConvModel, build_model
from aezip.conv.network import ConvCodec, LogisticMixture, gaussian_likelihood
from aezip.conv.training import ConvTrainOptions, train_conv
from aezip.errors import FormatError, ModelMismatchError, ParameterError
from aezip.files.container import ContainerReader
from aezip.files.decodemodel import decoder_bytes, load_decoder_bytes
from aezip.files.header import validate_header
from aezip.files.modelfile import load_model
from tests.modeledit import rewrite, set_tensor
from tests.test_cli import assert_one_line_error, run

TINY = dict(widths=(8, 6, 4), steps=2, batch_size=4, lambdas=(0.001, 0.01), device="cpu")


def _images(shape: tuple[int, ...], n: int = 6, seed: int = 0) -> np.ndarray:
    """Smooth-ish random images (a blurred noise field), so a tiny model has something to code."""
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 256, (n, *shape), dtype=np.uint8).astype(np.float64)
    x = (x + np.roll(x, 1, 1) + np.roll(x, 1, 2)) / 3
    return x.astype(np.uint8)


@pytest.fixture(scope="module")
def rgb_model(tmp_path_factory) -> ConvModel:
    mf = aezip.train_conv(_images((32, 32, 3), 12), **TINY)
    mf.save(tmp_path_factory.mktemp("conv") / "rgb.aezm")
    return mf


@pytest.mark.parametrize("shape", [(5, 7), (8, 8), (28, 28), (32, 32, 3), (64, 48, 3), (256, 256, 3)])
def test_any_shape_trains_and_round_trips_at_every_rate(shape) -> None:
    images = _images(shape)
    mf = aezip.train_conv(images, **TINY)
    assert mf.config.channels == (shape[2] if len(shape) == 3 else 1) and mf.config.rates == 2
    for quality in (1, 2):
        blob = aezip.compress(images, mf, quality=quality)
        decoded = aezip.decompress(blob, mf)
        assert decoded.shape == images.shape and decoded.dtype == np.uint8   # padding cropped exactly
        with ContainerReader(blob) as reader:
            assert reader.header["quality"] == quality and reader.header["entropy"] == "conv-hyperprior-v1"


def test_the_decoder_rebuilds_the_encoders_pixels_and_the_report_measures_them(rgb_model) -> None:
    images = _images((37, 45, 3), 5, seed=3)                                 # neither side a multiple of 16
    buf = io.BytesIO()
    report = aezip.encode(images, buf, rgb_model, quality=1)
    decoded = aezip.decompress(buf.getvalue(), rgb_model)
    mse = ((decoded.astype(np.float64) - images) ** 2).mean()
    assert report.psnr_db == pytest.approx(10 * np.log10(255 ** 2 / mse), abs=1e-9)
    assert report.file_bytes == len(buf.getvalue()) and report.bits_per_pixel == len(buf.getvalue()) * 8 / (5 * 37 * 45)


@pytest.mark.parametrize("max_error", [0, 3])
def test_max_error_bounds_every_pixel_on_top_of_a_rate_point(rgb_model, max_error) -> None:
    images = _images((21, 19, 3), 6, seed=5)
    for quality in (1, 2):
        blob = aezip.compress(images, rgb_model, quality=quality, max_error=max_error, chunk_size=4)
        decoded = aezip.decompress(blob, rgb_model)
        assert np.abs(decoded.astype(int) - images).max() <= max_error
        embedded = aezip.compress(images, rgb_model, quality=quality, max_error=max_error, embed_model=True)
        assert np.array_equal(aezip.decompress(embedded), decoded)          # its prior travels with it
    lossy = aezip.compress(images, rgb_model, embed_model=True)
    with ContainerReader(lossy) as reader:
        assert "residual.prior" not in load_decoder_bytes(reader.embedded_model(), "e").tensors()


def test_the_fixed_point_synthesis_follows_the_float_one(rgb_model) -> None:
    """Rate point g's integer synthesis of its rounded latents is the float decoder's output to within a level."""
    net = rgb_model.encoder(1)
    x = torch.from_numpy(_images((32, 32, 3), 4)).permute(0, 3, 1, 2).float() / 255
    with torch.no_grad():
        x_hat, _, y_hat = net(x)
    ints = integer_synthesize(rgb_model.points[1].synthesis,
                              np.round(y_hat.permute(0, 2, 3, 1).double().numpy() * 256))
    floats = torch.round(x_hat[:, 0].clamp(0, 1) * 255).permute(0, 2, 3, 1).numpy()
    assert np.abs(ints.astype(np.int64) - floats).max() <= 1


def test_prior_bin_probabilities_sum_to_one() -> None:
    """The rate the training minimises is honest only if each prior's bin probabilities sum to 1."""
    torch.manual_seed(0)
    prior = LogisticMixture(3)
    with torch.no_grad():
        prior.means.normal_(0, 3)
        prior.log_scales.uniform_(-1, 1)
    bins = torch.arange(-200, 201, dtype=torch.float32).view(-1, 1, 1, 1).expand(-1, 3, 1, 1)
    assert torch.allclose(prior.likelihood(bins).sum(0).flatten(), torch.ones(3), atol=1e-4)
    mean, scale = torch.tensor(0.3), torch.tensor([0.11, 1.0, 17.0]).view(1, 3)
    y = torch.arange(-200, 201, dtype=torch.float32).view(-1, 1) + mean
    assert torch.allclose(gaussian_likelihood(y, mean, scale).sum(0), torch.ones(3), atol=1e-4)


def test_one_group_of_the_grouped_network_is_that_rate_point_alone() -> None:
    torch.manual_seed(0)
    grouped = ConvCodec(3, 3, "hyper", 8, 6, 4).eval()
    x = torch.rand(2, 3, 32, 48)
    with torch.no_grad():
        x_hat, bits, _ = grouped(x)
        one_hat, one_bits, _ = grouped.single(2)(x)
    assert torch.allclose(x_hat[:, 2], one_hat[:, 0], atol=1e-5) and torch.allclose(bits[:, 2], one_bits[:, 0])
    assert {k: tuple(v.shape) for k, v in grouped.state_dict().items()} == ConvConfig(3, (1, 2, 3), 8, 6, 4).weight_shapes()


def test_model_file_round_trip_same_id_and_same_decoding(rgb_model, tmp_path) -> None:
    loaded = load_model(rgb_model.path)
    assert isinstance(loaded, ConvModel) and loaded.id == rgb_model.id and loaded.config == rgb_model.config
    assert loaded.save(tmp_path / "again.aezm") == rgb_model.id                  # deterministic bytes
    images = _images((32, 32, 3), 3)
    blob = aezip.compress(images, rgb_model, quality=2)
    assert np.array_equal(aezip.decompress(blob, loaded), aezip.decompress(blob, rgb_model))
    assert aezip.compress(images, loaded, quality=2) == blob                     # the stored float weights encode


def test_embedded_model_files_decode_without_the_model_and_hold_one_rate_point(rgb_model) -> None:
    images = _images((16, 20, 3), 4)
    blob = aezip.compress(images, rgb_model, quality=1, embed_model=True)
    with ContainerReader(blob) as reader:
        embedded = load_decoder_bytes(reader.embedded_model(), "embedded")
        assert reader.model_bytes == len(decoder_bytes(rgb_model, max_error_parts=False, rates=(0,)))
    assert reader.model_bytes < len(decoder_bytes(rgb_model))             # the file's rate point only
    assert np.array_equal(aezip.decompress(blob), aezip.decompress(aezip.compress(images, rgb_model, quality=1),
                                                                    rgb_model))
    assert embedded.decode_only and embedded.id == rgb_model.id and embedded.points[1] is None
    with pytest.raises(FormatError, match="no rate point 2"):
        aezip.decompress(aezip.compress(images, rgb_model, quality=2), embedded)


def test_bad_arguments_are_refused(rgb_model) -> None:
    images = _images((16, 16, 3), 2)
    for kw in ({"quality": 0}, {"quality": 3}, {"max_error": 256}):
        with pytest.raises(ParameterError):
            aezip.compress(images, rgb_model, **kw)
    with pytest.raises(ModelMismatchError, match="3 channel"):
        aezip.compress(_images((16, 16), 2), rgb_model)
    blob = aezip.compress(images, rgb_model)
    with pytest.raises(ModelMismatchError):
        aezip.decompress(blob, aezip.load_model())                               # the MLP default did not write it


@pytest.mark.parametrize("edit, needle", [
    (set_tensor("conv.rate0.synthesis.0.weight", lambda w: np.full_like(w, WEIGHT_LIMIT + 1)), "conv.rate0.synthesis.0"),
    (set_tensor("conv.rate1.synthesis.2.bias", lambda b: np.full_like(b, 1 << 62)), "conv.rate1.synthesis.2"),
    (set_tensor("conv.rate0.synthesis.1.gamma", lambda g: np.full_like(g, WEIGHT_LIMIT + 1)), "conv.rate0.synthesis.1"),
    (set_tensor("conv.rate0.synthesis.1.beta", lambda b: np.full_like(b, 1 << 60)), "conv.rate0.synthesis.1"),
    (set_tensor("conv.rate0.hyper.fracs", lambda f: f + 1001), "conv.rate0.hyper.fracs"),
    (set_tensor("conv.rate0.y_counts", lambda c: c * 0), "conv.rate0.y_counts"),
    (set_tensor("conv.rate1.thresholds", lambda t: t[::-1].copy()), "conv.rate1.thresholds"),
    (set_tensor("conv.rate0.z_counts", lambda c: c[:, :-1].copy()), "conv.rate0.z_counts"),
    (set_tensor("float.dec.0.weight", lambda w: w[:1].copy()), "float.dec.0.weight"),
    (lambda t: t.pop("conv.rate1.hyper.1.bias"), "conv.rate1.hyper.1.bias"),
    (lambda t: t.__setitem__("conv.rate2.extra", np.zeros(3, np.int64)), "unexpected tensors"),
    (set_tensor("residual.prior", lambda p: p - 1), "residual prior"),
    (lambda t: t.pop("residual.prior"), "residual.prior"),
])
def test_hostile_model_tensors_are_refused_in_one_line(rgb_model, tmp_path, edit, needle) -> None:
    bad = tmp_path / "bad.aezm"
    rewrite(rgb_model.path, bad, edit)
    with pytest.raises(FormatError, match="damaged aezip model file") as exc:
        load_model(bad)
    assert needle in str(exc.value) and "\n" not in str(exc.value)


def test_hostile_conv_headers_are_refused(rgb_model) -> None:
    with ContainerReader(aezip.compress(_images((16, 16, 3), 2), rgb_model)) as reader:
        good = dict(reader.header)
    check = dict(decoder="fixed-point-v1", entropy=("static",), residual=())
    assert validate_header(dict(good), **check)
    for change, needle in (({"quality": 3}, "quality"), ({"quality": None}, "quality"), ({"max_error": 2}, "residual"),
                           ({"max_error": 300}, "max_error"), ({"tiles": {"patch": 4, "context": 0}}, "tiles"),
                           ({"decoder": "fixed-point-v1"}, "decoder"), ({"levels": 17}, "rate points"),
                           ({"shape": [2, 8192, 8192, 3], "chunk_size": 1}, "samples"),
                           ({"chunk_size": 4096, "shape": [2, 1024, 1024, 1]}, "chunk_size")):
        with pytest.raises(FormatError, match=needle):
            validate_header({**good, **change}, **check)


def test_cli_train_encode_info_decode(tmp_path, capsys) -> None:
    np.save(tmp_path / "d.npy", _images((20, 24, 3), 8))
    model = tmp_path / "c.aezm"
    code, _, err = run(capsys, "train", tmp_path / "d.npy", "-o", model, "--arch", "conv", "--steps", "2",
                       "--rates", "0.001,0.004,0.01", "--batch-size", "4")
    assert code == 0 and "3 rate points" in err + capsys.readouterr().out or model.exists()
    code, out, _ = run(capsys, "info", model)
    assert code == 0 and "rate points: 3" in out
    code, out, _ = run(capsys, "encode", tmp_path / "d.npy", "-m", model, "--quality", "2", "-o", tmp_path / "d.aez")
    assert code == 0 and "bits/pixel" in out
    code, out, _ = run(capsys, "info", tmp_path / "d.aez")
    assert code == 0 and "2 of 3 rate points" in out
    code, _, _ = run(capsys, "decode", tmp_path / "d.aez", "-m", model, "-o", tmp_path / "back.npy")
    assert code == 0 and np.load(tmp_path / "back.npy").shape == (8, 20, 24, 3)
    for args, needle in ((("--hidden", "8"), "--hidden applies to --arch mlp only"),
                         (("--steps", "2", "--seconds", "1"), "not both"),
                         (("--rates", "a,b"), "--rates")):
        code, _, err = run(capsys, "train", tmp_path / "d.npy", "-o", tmp_path / "x.aezm", "--arch", "conv", *args)
        assert_one_line_error(code, err, needle)
    code, _, err = run(capsys, "train", tmp_path / "d.npy", "-o", tmp_path / "x.aezm", "--steps", "2")
    assert_one_line_error(code, err, "--steps applies to --arch conv only")
    code, out, _ = run(capsys, "encode", tmp_path / "d.npy", "-m", model, "--effort", "max", "-o", tmp_path / "e.aez")
    assert code == 0 and "bits/pixel" in out
    code, out, _ = run(capsys, "info", tmp_path / "e.aez")
    assert code == 0 and "conv-gradient-v1" in out


def test_training_budget_by_steps(rgb_model) -> None:
    model, steps = train_conv(_images((16, 16), 4), ConvTrainOptions(lambdas=(0.01,), n=4, m=4, z=2, steps=3, batch=2))
    assert steps == 3 and model.g == 1 and not model.training
    assert rgb_model.info["steps"] == 2 and rgb_model.info["lambdas"] == [0.001, 0.01]
    with pytest.raises(ValueError, match="lambdas"):
        build_model(model, {"lambdas": [0.1, 0.2]}, _images((16, 16), 4))


def test_effort_max_refines_the_latents_and_the_file_decodes_to_what_it_reports(rgb_model) -> None:
    from aezip.conv.refine import objective, refine_latents
    images = _images((37, 45, 3), 5, seed=4)                                 # padded to 48 x 48: MSE on 37 x 45 only
    net = rgb_model.encoder(1)
    x = torch.nn.functional.pad(torch.from_numpy(images).float().div(255).permute(0, 3, 1, 2), (0, 3, 0, 11),
                                mode="replicate")
    y, z = net.encode(x, "torch")
    of = objective(net, x, z, rgb_model.config.lambdas[1], (37, 45))
    refined = refine_latents(net, x, y, z, rgb_model.config.lambdas[1], (37, 45), steps=5, lr=0.2)
    with torch.no_grad():
        before, after = of(y), of(refined)
    assert (after <= before).all() and (after < before).any()              # never worse, here better somewhere
    assert not torch.equal(refined, y)
    buf = io.BytesIO()
    report = aezip.encode(images, buf, rgb_model, effort="max")
    decoded = aezip.decompress(buf.getvalue(), rgb_model)
    assert aezip.info(buf.getvalue())["latent_search"] == "conv-gradient-v1"
    assert report.psnr_db == pytest.approx(aezip.metrics.psnr(images.reshape(5, -1), decoded.reshape(5, -1)))
    assert buf.getvalue() != aezip.compress(images, rgb_model)


def test_adapt_fine_tunes_the_encoder_alone_and_the_file_decodes_with_the_same_model(rgb_model, tmp_path,
                                                                                     capsys) -> None:
    from aezip.conv.adapt import adapt
    from aezip.conv.refine import objective
    images = _images((37, 45, 3), 5, seed=6)
    before = {k: v.clone() for k, v in rgb_model.model.state_dict().items()}
    adapted, patch = adapt(rgb_model, 1, images, 30, lr=0.01)        # a tiny model needs big steps to move
    assert patch is None
    assert all(torch.equal(v, rgb_model.model.state_dict()[k]) for k, v in before.items())   # the model is kept
    assert adapted.points is rgb_model.points and adapted.id == rgb_model.id                # the decode side too
    old, new = rgb_model.encoder(1).state_dict(), adapted.encoder(1).state_dict()
    changed = {k for k in old if not torch.equal(old[k], new[k])}
    assert changed and all(k.startswith(("enc.", "h_enc.")) for k in changed)               # the encoder alone
    x = torch.nn.functional.pad(torch.from_numpy(images).float().div(255).permute(0, 3, 1, 2), (0, 3, 0, 11),
                                mode="replicate")
    with torch.no_grad():
        costs = []
        for net in (rgb_model.encoder(1), adapted.encoder(1)):
            y, z = net.encode(x, "torch")
            costs.append(objective(net, x, z, rgb_model.config.lambdas[1], (37, 45))(y).mean().item())
    assert costs[1] < costs[0]                                 # the objective it was tuned for, measured rounded
    buf = io.BytesIO()
    report = aezip.encode(images, buf, rgb_model, quality=2, adapt=30)
    blob = buf.getvalue()
    decoded = aezip.decompress(blob, rgb_model)
    assert report.psnr_db == pytest.approx(aezip.metrics.psnr(images.reshape(5, -1), decoded.reshape(5, -1)))
    assert aezip.info(blob)["adapted"] == {"steps": 30, "images": 5}
    assert blob != aezip.compress(images, rgb_model, quality=2)
    assert aezip.compress(images, rgb_model, quality=2, adapt=30) == blob                  # seeded: the same bytes
    (tmp_path / "a.aez").write_bytes(blob)
    code, out, _ = run(capsys, "info", tmp_path / "a.aez")
    assert code == 0 and "encoder adapted: 30 steps on the first 5 images" in out


def test_info_reads_an_untrusted_adapted_record_without_failing() -> None:
    from cli.info import _adapted
    assert _adapted(None) == "no" and _adapted({"steps": 5, "images": 2}).startswith("5 steps on the first 2 ")
    for hostile in ({"steps": "5", "images": 2}, {"steps": True, "images": 1}, [1, 2], "x" * 10_000, 7):
        assert _adapted(hostile) == "yes (a record this aezip does not read)"


def test_adapt_is_refused_where_it_cannot_serve(rgb_model, tmp_path, capsys) -> None:
    images = _images((16, 16, 3), 2)
    for steps in (-1, 100_001, 2.5, True):
        with pytest.raises(ParameterError, match="adapt"):
            aezip.compress(images, rgb_model, adapt=steps)
    with pytest.raises(ParameterError, match="convolutional"):
        aezip.compress(_images((28, 28), 2), aezip.load_model(), adapt=5)
    np.save(tmp_path / "d.npy", _images((28, 28), 2))
    assert_one_line_error(*run(capsys, "encode", tmp_path / "d.npy", "-o", tmp_path / "d.aez", "--adapt", "5")[::2],
                          "convolutional")
    assert not (tmp_path / "d.aez").exists()


def test_features_are_the_top_rate_points_latents_and_denoising_is_refused(rgb_model, tmp_path, capsys) -> None:
    from aezip.conv.coding import analyse
    images = _images((20, 24, 3), 7, seed=5)                                 # padded to 32 x 32: 4 x 4 latents
    np.save(tmp_path / "d.npy", images)
    code, out, _ = run(capsys, "embed", tmp_path / "d.npy", "-m", rgb_model.path, "-o", tmp_path / "f.npy")
    feats = np.load(tmp_path / "f.npy")
    y, _ = analyse(rgb_model, 1, images)
    assert code == 0 and "7 x 96 float32" in out and feats.shape == (7, 4 * 4 * 6)
    np.testing.assert_allclose(feats, y.reshape(7, -1), rtol=1e-6, atol=1e-6)
    code, _, _ = run(capsys, "embed", tmp_path / "d.npy", "-m", rgb_model.path, "-o", tmp_path / "q.npy",
                     "--quantized")
    q = np.load(tmp_path / "q.npy")
    assert code == 0 and q.shape == feats.shape and np.abs(q - feats).max() <= 0.5 + 1e-6   # rounded about the mean
    assert not np.array_equal(q, feats)
    np.save(tmp_path / "labels.npy", np.arange(7) % 2)
    code, out, _ = run(capsys, "eval", "probe", tmp_path / "d.npy", "-m", rgb_model.path, "--labels",
                       tmp_path / "labels.npy")
    assert code == 0 and "aezip (96 latents)" in out and "PCA (6 components)" in out     # 6 training images
    code, _, err = run(capsys, "restore", tmp_path / "d.npy", "-m", rgb_model.path, "-o", tmp_path / "r.npy",
                       "--denoise")
    assert_one_line_error(code, err, "--denoise needs an MLP model")
    code, _, err = run(capsys, "embed", tmp_path / "d.npy", "-m", rgb_model.path, "-o", tmp_path / "f.npy")
    assert_one_line_error(code, err, "exists")


def test_restore_fills_masked_pixels_with_the_most_probable_latents(rgb_model, tmp_path, capsys) -> None:
    """Known pixels come back unchanged, the box is filled from the model, and the refinement never raises the
    objective on the known pixels; --candidates is the MLP models' and refused here."""
    from aezip.conv.refine import objective, refine_latents
    from aezip.uses.restore import box_mask, inpaint_conv

    images = _images((21, 19, 3), 5, seed=9)
    missing = box_mask(images.shape[1:], "4,5,8,7")
    damaged = images.copy()
    damaged[:, missing] = 0
    restored = inpaint_conv(rgb_model, damaged, missing, steps=3, rounds=2)
    assert restored.shape == images.shape and restored.dtype == np.uint8
    np.testing.assert_array_equal(restored[:, ~missing], images[:, ~missing])
    assert not np.array_equal(restored[:, missing], damaged[:, missing])
    np.testing.assert_array_equal(inpaint_conv(rgb_model, damaged, missing, steps=3, rounds=2), restored)

    net = rgb_model.encoder(1)
    x = torch.nn.functional.pad(torch.from_numpy(damaged).float().permute(0, 3, 1, 2) / 255, (0, 13, 0, 11),
                                mode="replicate")
    known = torch.nn.functional.pad(torch.from_numpy(~missing).float().permute(2, 0, 1)[None].repeat(5, 1, 1, 1),
                                    (0, 13, 0, 11))
    y, z = net.encode(x)
    of = objective(net, x, z, rgb_model.config.lambdas[1], (21, 19), known)
    refined = refine_latents(net, x, y, z, rgb_model.config.lambdas[1], (21, 19), 5, known=known)
    with torch.no_grad():
        assert (of(refined) <= of(y)).all()

    np.save(tmp_path / "d.npy", damaged)
    np.save(tmp_path / "clean.npy", images)
    code, out, _ = run(capsys, "restore", tmp_path / "d.npy", "-m", rgb_model.path, "-o", tmp_path / "r.npy",
                       "--mask-box", "4,5,8,7", "--steps", "3", "--original", tmp_path / "clean.npy")
    assert code == 0 and "restored" in out
    np.testing.assert_array_equal(np.load(tmp_path / "r.npy")[:, ~missing], images[:, ~missing])
    code, _, err = run(capsys, "restore", tmp_path / "d.npy", "-m", rgb_model.path, "-o", tmp_path / "s.npy",
                       "--mask-box", "4,5,8,7", "--candidates", "5")
    assert_one_line_error(code, err, "--candidates")
    assert not (tmp_path / "s.npy").exists()


def test_training_continues_from_a_model_and_records_the_chain(rgb_model, tmp_path, capsys) -> None:
    images = _images((32, 32, 3), 12)
    same = aezip.train_conv(images, **{**TINY, "steps": 0, "seconds": 0.0}, init=rgb_model)     # no step taken
    assert same.float_weights().keys() == rgb_model.float_weights().keys()
    assert all(np.array_equal(v, rgb_model.float_weights()[k]) for k, v in same.float_weights().items())
    more = aezip.train_conv(images, steps=1, batch_size=4, lambdas=(0.002, 0.02), init=rgb_model.path)
    assert more.config.lambdas == (0.002, 0.02) and (more.config.n, more.config.m) == (8, 6)
    assert more.info["init"]["model_id"] == rgb_model.id and more.info["init"]["total_steps"] == 3
    assert not np.array_equal(more.float_weights()["dec.0.weight"], rgb_model.float_weights()["dec.0.weight"])
    again = aezip.train_conv(images, steps=2, batch_size=4, init=more)
    assert again.config.lambdas == (0.002, 0.02) and again.info["init"]["total_steps"] == 5
    for kw, needle in (({"lambdas": (0.1,)}, "2 rate points"), ({"widths": (8, 8, 4)}, "widths"),
                       ({"init": aezip.load_model()}, "not a convolutional model")):
        with pytest.raises(aezip.InputError, match=needle):
            aezip.train_conv(images, steps=1, **{"init": rgb_model, **kw})
    with pytest.raises(aezip.InputError, match="3 channel"):
        aezip.train_conv(_images((32, 32), 4), steps=1, init=rgb_model)
    np.save(tmp_path / "d.npy", images)
    code, _, err = run(capsys, "train", tmp_path / "d.npy", "-o", tmp_path / "c.aezm", "--arch", "conv",
                       "--init", rgb_model.path, "--steps", "1", "--batch-size", "4")
    assert code == 0 and f"continuing model {rgb_model.id[:16]}" in err
    assert load_model(tmp_path / "c.aezm").info["init"]["total_steps"] == 3
    code, out, _ = run(capsys, "info", tmp_path / "c.aezm")
    assert code == 0 and f"1 steps, batch 4, augment flip,invert,channels,contrast,zoom; continued model " \
                         f"{rgb_model.id[:16]}, 3 steps in all" in out
    code, _, err = run(capsys, "train", tmp_path / "d.npy", "-o", tmp_path / "x.aezm", "--init", rgb_model.path)
    assert_one_line_error(code, err, "--init applies to --arch conv only")
    dec = tmp_path / "c.aezd"
    dec.write_bytes(decoder_bytes(rgb_model, rates=(0,)))
    code, _, err = run(capsys, "train", tmp_path / "d.npy", "-o", tmp_path / "x.aezm", "--arch", "conv",
                       "--init", dec, "--steps", "1")
    assert_one_line_error(code, err, "decode-side model")


def test_bench_rows_cover_the_rate_ladder_with_real_files(rgb_model, tmp_path) -> None:
    from aezip.bench.report import aezip_rows
    images = _images((32, 32, 3), 4)
    rows = aezip_rows(images, [("c", rgb_model.path)], [0, 4], tmp_path)
    assert [r.setting.split(", ")[-1] for r in rows[:5]] == ["--quality 1", "--quality 2", "--embed-model",
                                                             "--max-error 0", "--max-error 4"]
    targets = [int(r.setting.split("--psnr ")[1].split()[0]) for r in rows[5:]]     # then per-chunk files
    assert targets == list(range(targets[0], targets[-1] + 1))
    assert all(r.psnr_db >= t for r, t in zip(rows[5:], targets))
    assert targets[0] == int(np.ceil(min(r.psnr_db for r in rows[:2]))) and targets[-1] == int(rows[4].psnr_db)
    assert rows[3].max_abs_error == 0 and rows[4].max_abs_error <= 4
    for q, row in zip((1, 2), rows):
        assert row.bytes == len(aezip.compress(images, rgb_model, quality=q))          # the file's bytes
        assert row.decoder_bytes == len(decoder_bytes(rgb_model, max_error_parts=False, rates=(q - 1,)))
    assert rows[3].decoder_bytes == len(decoder_bytes(rgb_model, rates=(1,)))         # the prior included
    adapted = aezip_rows(images, [("c", rgb_model.path)], [], tmp_path, adapt=3)
    assert [r.setting.split(", ")[-2:] for r in adapted[:2]] == [["--quality 1", "--adapt 3"],
                                                                 ["--quality 2", "--adapt 3"]]
    assert adapted[1].bytes == len(aezip.compress(images, rgb_model, quality=2, adapt=3))


def test_decoding_is_the_same_in_processes_with_1_and_2_threads(rgb_model, tmp_path) -> None:
    """The fixed-point synthesis's float64 GEMMs run multi-threaded in BLAS; their integers must not change."""
    import os
    import subprocess
    import sys
    images = _images((48, 40, 3), 24, seed=9)
    (tmp_path / "x.aez").write_bytes(aezip.compress(images, rgb_model, quality=2))
    script = ("import sys, numpy as np, aezip; np.save(sys.argv[2], aezip.decompress(open(sys.argv[1], 'rb').read(), "
              "aezip.load_model(sys.argv[3])))")
    outs = []
    for threads in ("1", "2"):
        env = {**os.environ, "OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads, "OPENBLAS_NUM_THREADS": threads}
        subprocess.run([sys.executable, "-c", script, str(tmp_path / "x.aez"), str(tmp_path / f"{threads}.npy"),
                        str(rgb_model.path)], check=True, env=env)
        outs.append(np.load(tmp_path / f"{threads}.npy"))
    assert np.array_equal(outs[0], outs[1])
    assert np.array_equal(outs[0], aezip.decompress((tmp_path / "x.aez").read_bytes(), rgb_model))
