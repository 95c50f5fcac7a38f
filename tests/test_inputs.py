"""Inputs users have: ImageFolder layouts (with labels for eval probe), WebP/TIFF, RGBA, gray and RGB mixed in one
folder (converted, with a note), and an .npz with several arrays (decode gives every one back)."""
from __future__ import annotations

import json

import numpy as np
from PIL import Image

import aezip
from aezip.files.data import open_dataset
from tests.test_cli import run


def _save(folder, name, array) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(folder / name)


def test_image_folder_layout_round_trips_with_labels(tmp_path, capsys, sample_images, tiny_model_path) -> None:
    root = tmp_path / "digits"
    for i, img in enumerate(sample_images[:30]):
        _save(root / f"class{i % 3}", f"{i:03d}.tiff" if i % 2 else f"{i:03d}.png", img)
    ds = open_dataset(root)
    assert ds.shape == (30, 28, 28) and ds.classes == ["class0", "class1", "class2"]
    assert list(ds.labels[:10]) == [0] * 10 and ds.source.names[0].startswith("class0/")
    code, _, _ = run(capsys, "encode", root, "-o", tmp_path / "d.aez", "-m", tiny_model_path, "--max-error", "0")
    code2, _, _ = run(capsys, "decode", tmp_path / "d.aez", "-o", tmp_path / "back", "-m", tiny_model_path)
    assert code == code2 == 0
    back = open_dataset(tmp_path / "back")
    assert back.classes == ds.classes and list(back.labels) == list(ds.labels)
    np.testing.assert_array_equal(back.read_all(), ds.read_all())
    code, out, _ = run(capsys, "eval", "probe", root, "-m", tiny_model_path, "--json")
    assert code == 0 and json.loads(out)["test_range"] == [24, 30]


def test_mixed_modes_are_converted_and_said(tmp_path, capsys) -> None:
    gray, rgb = np.full((6, 5), 90, np.uint8), np.zeros((6, 5, 3), np.uint8)
    rgba = np.dstack([rgb, np.full((6, 5), 200, np.uint8)])
    _save(tmp_path / "mix", "a.png", gray)
    Image.fromarray(rgb).save(tmp_path / "mix" / "b.webp", lossless=True)
    ds = open_dataset(tmp_path / "mix")
    assert ds.shape == (2, 6, 5, 3) and "mixes image modes (1 L, 1 RGB)" in ds.notes[0]
    np.testing.assert_array_equal(ds.read_all()[0], np.dstack([gray] * 3))
    _save(tmp_path / "mix", "c.png", rgba)
    ds = open_dataset(tmp_path / "mix")
    assert ds.shape == (3, 6, 5, 4) and ds.read_all()[2, 0, 0, 3] == 200 and ds.read_all()[0, 0, 0, 3] == 255
    code, _, err = run(capsys, "encode", tmp_path / "mix", "-o", tmp_path / "x.aez")
    assert code == 1 and "aezip: note: " in err and "all are read as RGBA" in err


def test_npz_with_several_arrays_gives_every_array_back(tmp_path, capsys, sample_images, tiny_model_path) -> None:
    labels, ids = np.arange(40) % 10, np.array(["a", "b"])
    np.savez(tmp_path / "d.npz", x=sample_images[:40], y=labels, names=ids, x_small=sample_images[:2, :4, :4])
    code, _, err = run(capsys, "encode", tmp_path / "d.npz", "-o", tmp_path / "d.aez", "-m", tiny_model_path,
                       "--key", "x", "--max-error", "0")
    assert code == 0 and "the other arrays (y, names, x_small) are kept whole" in err
    aezip.decode(tmp_path / "d.aez", tmp_path / "back.npz", tiny_model_path)
    with np.load(tmp_path / "back.npz") as z:
        assert sorted(z.files) == ["names", "x", "x_small", "y"]
        np.testing.assert_array_equal(z["x"], sample_images[:40])
        np.testing.assert_array_equal(z["y"], labels)
        np.testing.assert_array_equal(z["names"], ids)
        np.testing.assert_array_equal(z["x_small"], sample_images[:2, :4, :4])
    code, _, err = run(capsys, "encode", tmp_path / "d.npz", "-o", tmp_path / "e.aez", "-m", tiny_model_path)
    assert code == 1 and "--key must name the image array" in err


def test_bits_per_pixel_counts_pixel_positions_with_bits_per_sample_beside(tmp_path, capsys) -> None:
    rgb = np.random.default_rng(0).integers(0, 256, (4, 8, 8, 3), dtype=np.uint8)
    mf = aezip.train(rgb, hidden=(8,), latent=2, levels=4, epochs=1, device="cpu")
    report = aezip.encode(rgb, tmp_path / "x.aez", mf, max_error=0)       # an unsaved model: the id of its file
    mf.save(tmp_path / "m.aezm")
    np.testing.assert_array_equal(aezip.decompress((tmp_path / "x.aez").read_bytes(), tmp_path / "m.aezm"), rgb)
    size = (tmp_path / "x.aez").stat().st_size
    assert report.pixels == 4 * 8 * 8 and report.bits_per_pixel == size * 8 / 256
    assert report.bits_per_sample == size * 8 / 768
    code, out, _ = run(capsys, "info", tmp_path / "x.aez")
    assert code == 0 and f"{size * 8 / 256:.4f} ({size * 8 / 768:.4f} bits/sample)" in out
