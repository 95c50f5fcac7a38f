"""Dataset readers and writers: every format round-trips; bad inputs give clear errors."""
from __future__ import annotations

import gzip
import os

import numpy as np
import pytest
from PIL import Image

from aezip.files.data import open_dataset, write_dataset
from aezip.errors import InputError, OutputExistsError
from tests.conftest import write_idx


def _images(n: int = 5, shape: tuple[int, ...] = (6, 4)) -> np.ndarray:
    return np.random.default_rng(n).integers(0, 256, (n, *shape), dtype=np.uint8)


def _round_trip(path, tmp_path, chunk: int = 2):
    ds = open_dataset(path)
    out = tmp_path / ("out" + "".join(path.suffixes) if path.is_file() else "out")
    write_dataset(ds.chunks(chunk), ds.shape, ds.source, out)
    return ds, open_dataset(out), out


def test_idx_and_idx_gz_round_trip(tmp_path) -> None:
    imgs = _images()
    raw = write_idx(tmp_path / "a-idx3-ubyte", imgs)
    gz = tmp_path / "b-idx3-ubyte.gz"
    gz.write_bytes(gzip.compress(raw.read_bytes()))
    for path in (raw, gz):
        ds, back, out = _round_trip(path, tmp_path)
        assert ds.source.format == "idx" and back.source.gzip == ds.source.gzip
        np.testing.assert_array_equal(back.read_all(), imgs)
        data = out.read_bytes()
        assert (gzip.decompress(data) if ds.source.gzip else data) == raw.read_bytes()


def test_npy_and_npz_round_trip(tmp_path) -> None:
    imgs = _images(7, (5, 3, 3))
    np.save(tmp_path / "x.npy", imgs)
    np.savez_compressed(tmp_path / "x.npz", images=imgs, labels=np.arange(7))
    for name in ("x.npy", "x.npz"):
        ds, back, _ = _round_trip(tmp_path / name, tmp_path)
        assert ds.shape == (7, 5, 3, 3)
        np.testing.assert_array_equal(back.read_all(), imgs)
    assert np.load(tmp_path / "out.npz")["images"].shape == (7, 5, 3, 3)


@pytest.mark.parametrize("mode,shape", [("L", (6, 4)), ("RGB", (6, 4, 3))])
def test_image_folder_round_trip_keeps_names(tmp_path, mode: str, shape: tuple[int, ...]) -> None:
    imgs = _images(3, shape)
    src = tmp_path / "src"
    src.mkdir()
    names = ["b.png", "a.png", "c.png"]
    for name, img in zip(names, imgs):
        Image.fromarray(img, mode).save(src / name)
    ds, back, out = _round_trip(src, tmp_path)
    assert ds.source.names == sorted(names)
    assert sorted(p.name for p in out.iterdir()) == sorted(names)
    np.testing.assert_array_equal(np.asarray(Image.open(out / "b.png")), imgs[0])
    np.testing.assert_array_equal(back.read_all(), ds.read_all())


def test_errors_name_the_problem(tmp_path) -> None:
    with pytest.raises(InputError, match="no such file"):
        open_dataset(tmp_path / "missing.npy")
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(InputError, match="unknown format"):
        open_dataset(tmp_path / "notes.txt")
    np.save(tmp_path / "f.npy", np.zeros((2, 3, 3), np.float32))
    with pytest.raises(InputError, match="uint8"):
        open_dataset(tmp_path / "f.npy")
    np.save(tmp_path / "e.npy", np.zeros((0, 3, 3), np.uint8))
    with pytest.raises(InputError, match="empty"):
        open_dataset(tmp_path / "e.npy")
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    Image.fromarray(np.zeros((4, 4), np.uint8)).save(mixed / "a.png")
    Image.fromarray(np.zeros((5, 4), np.uint8)).save(mixed / "b.png")
    with pytest.raises(InputError, match="mixed sizes"):
        open_dataset(mixed)
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="holds no images"):
        open_dataset(tmp_path / "empty")
    trunc = write_idx(tmp_path / "t-idx3-ubyte", _images(4))
    trunc.write_bytes(trunc.read_bytes()[:-10])
    with pytest.raises(InputError, match="truncated"):
        open_dataset(trunc).read_all()


def test_existing_output_is_kept_without_force(tmp_path) -> None:
    imgs = _images()
    np.save(tmp_path / "x.npy", imgs)
    ds = open_dataset(tmp_path / "x.npy")
    out = tmp_path / "y.npy"
    out.write_bytes(b"precious")
    with pytest.raises(OutputExistsError, match="--force"):
        write_dataset(ds.chunks(2), ds.shape, ds.source, out)
    assert out.read_bytes() == b"precious"
    write_dataset(ds.chunks(2), ds.shape, ds.source, out, force=True)
    np.testing.assert_array_equal(np.load(out), imgs)
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


def test_outputs_get_ordinary_permissions(tmp_path) -> None:
    np.save(tmp_path / "x.npy", _images())
    ds = open_dataset(tmp_path / "x.npy")
    write_dataset(ds.chunks(2), ds.shape, ds.source, tmp_path / "y.npy")
    umask = os.umask(0)
    os.umask(umask)
    assert (tmp_path / "y.npy").stat().st_mode & 0o777 == 0o666 & ~umask
