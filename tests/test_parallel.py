"""--jobs gives the bytes of --jobs 1; --shard K/N parts merge into the file one encode writes."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from aezip.codec import decode_file, encode_dataset
from aezip.files.container import ContainerReader, ContainerWriter
from aezip.files.data import open_dataset
from aezip.errors import InputError
from aezip.files.modelfile import load_model
from aezip.files.shards import parse_shard, shard_range
from tests.conftest import write_idx
from tests.test_cli import assert_one_line_error, run


def test_jobs_encode_and_decode_give_the_bytes_of_one_job(tmp_path, tiny_model_path, sample_images) -> None:
    src = write_idx(tmp_path / "d-idx3-ubyte", sample_images[:150])
    mf = load_model(tiny_model_path)
    one, two = tmp_path / "one.aez", tmp_path / "two.aez"   # latents and the max-error residual
    a = encode_dataset(open_dataset(src), mf, one, chunk_size=16, max_error=3)
    b = encode_dataset(open_dataset(src), mf, two, chunk_size=16, max_error=3, jobs=2)
    assert one.read_bytes() == two.read_bytes() and (a.psnr_db, a.max_abs_error) == (b.psnr_db, b.max_abs_error)
    decode_file(one, tmp_path / "o1-idx3-ubyte", model_path=tiny_model_path, image_range="5:140")
    decode_file(one, tmp_path / "o2-idx3-ubyte", model_path=tiny_model_path, image_range="5:140", jobs=2)
    assert (tmp_path / "o1-idx3-ubyte").read_bytes() == (tmp_path / "o2-idx3-ubyte").read_bytes()
    assert open_dataset(tmp_path / "o2-idx3-ubyte").shape == (135, 28, 28)


def test_shards_split_at_chunk_boundaries() -> None:
    assert [shard_range(300, 64, (k, 3)) for k in range(3)] == [(0, 64), (64, 192), (192, 300)]
    assert [shard_range(10, 1, (k, 4)) for k in range(4)] == [(0, 2), (2, 5), (5, 7), (7, 10)]
    with pytest.raises(InputError, match="only 2 chunk"):
        shard_range(100, 64, (0, 3))
    assert parse_shard("2/5") == (2, 5)
    assert parse_shard("auto", {"RANK": "1", "WORLD_SIZE": "4"}) == (1, 4)
    assert parse_shard("auto", {}) == (0, 1)
    for bad in ("3/3", "-1/2", "1", "a/b", "1/0"):
        with pytest.raises(InputError, match="--shard"):
            parse_shard(bad)


@pytest.mark.parametrize("fmt", ["idx", "images"])
def test_three_shards_merge_into_the_file_of_one_encode(tmp_path, capsys, tiny_model_path, sample_images,
                                                        fmt) -> None:
    if fmt == "idx":
        src = write_idx(tmp_path / "d-idx3-ubyte", sample_images[:100])
    else:
        src = tmp_path / "pngs"
        src.mkdir()
        for i, img in enumerate(sample_images[:100]):
            Image.fromarray(img).save(src / f"img{i:03d}.png")
    m = ["-m", tiny_model_path, "--chunk-size", "16", "--max-error", "4"]
    for k in range(3):
        code, out, _ = run(capsys, "encode", src, "-o", tmp_path / "part-{k}-of-{n}.aez", "--shard", f"{k}/3", *m)
        assert code == 0, out
    code, _, _ = run(capsys, "encode", src, "-o", tmp_path / "whole.aez", *m)
    parts = [tmp_path / f"part-{k}-of-3.aez" for k in (2, 0, 1)]          # any order
    code, out, _ = run(capsys, "merge", *parts, "-o", tmp_path / "merged.aez")
    assert code == 0 and "100 images from 3 parts" in out
    assert (tmp_path / "merged.aez").read_bytes() == (tmp_path / "whole.aez").read_bytes()
    code, _, _ = run(capsys, "decode", tmp_path / "merged.aez", "-m", tiny_model_path, "-o", tmp_path / "back")
    back = open_dataset(tmp_path / "back").read_all()
    assert code == 0 and back.shape == (100, 28, 28) and np.abs(back.astype(int) - sample_images[:100]).max() <= 4
    code, _, _ = run(capsys, "decode", parts[2], "-m", tiny_model_path, "-o", tmp_path / "p1")   # a part alone
    np.testing.assert_array_equal(open_dataset(tmp_path / "p1").read_all(), back[32:64])   # chunks 2 and 3


def test_merging_wrong_parts_is_a_one_line_error(tmp_path, capsys, tiny_model_path, sample_images) -> None:
    src = write_idx(tmp_path / "d-idx3-ubyte", sample_images[:64])
    mf = load_model(tiny_model_path)
    ds = open_dataset(src)
    p = {k: tmp_path / f"p{k}.aez" for k in range(3)}
    for k in range(3):
        encode_dataset(ds, mf, p[k], chunk_size=16, shard=(k, 3))
    encode_dataset(ds, load_model(None), tmp_path / "other1.aez", chunk_size=16, shard=(1, 3))
    encode_dataset(ds, mf, tmp_path / "half1.aez", chunk_size=16, shard=(1, 2))
    encode_dataset(ds, mf, tmp_path / "whole.aez", chunk_size=16)
    cases = [([p[0], p[2]], "missing shard(s) 1/3"),
             ([p[0], p[1], p[1], p[2]], "both shard 1/3"),
             ([p[0], tmp_path / "other1.aez", p[2]], "parts must come from one model"),
             ([p[0], tmp_path / "half1.aez", p[2]], "parts must come from one encode"),
             ([p[0], p[1], tmp_path / "whole.aez"], "not a part written by"),
             ([p[0], p[1], tmp_path / "nowhere.aez"], "no such file")]
    damaged = bytearray(p[2].read_bytes())
    damaged[len(damaged) // 2] ^= 1
    (tmp_path / "bad2.aez").write_bytes(bytes(damaged))
    cases.append(([p[0], p[1], tmp_path / "bad2.aez"], "CRC mismatch"))
    for parts, needle in cases:
        code, _, err = run(capsys, "merge", *parts, "-o", tmp_path / "m.aez")
        assert_one_line_error(code, err, needle)
        assert not (tmp_path / "m.aez").exists()
    overlapping = tmp_path / "overlap1.aez"   # a part whose header says it starts inside the part before it
    with ContainerReader(p[1]) as r, open(overlapping, "wb") as f:
        header = dict(r.header, shard={**r.header["shard"], "images": [8, 24]})
        w = ContainerWriter(f, header)
        for i, c in enumerate(r.chunks):
            w.add_chunk(r.read_chunk(i), c.images)
        w.close()
    code, _, err = run(capsys, "merge", p[0], overlapping, p[2], "-o", tmp_path / "m.aez")
    assert_one_line_error(code, err, "overlapping or inconsistent parts")


def test_shard_auto_takes_the_torchrun_rank(tmp_path, capsys, monkeypatch, tiny_model_path, sample_images) -> None:
    np.save(tmp_path / "d.npy", sample_images[:40])
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "2")
    args = ["encode", tmp_path / "d.npy", "-m", tiny_model_path, "--chunk-size", "16", "--shard", "auto"]
    code, _, err = run(capsys, *args, "-o", tmp_path / "x.aez")
    assert_one_line_error(code, err, "put {k} in -o")
    code, out, _ = run(capsys, *args, "-o", tmp_path / "x-{k}-of-{n}.aez")
    assert code == 0 and "x-1-of-2.aez: 24 images" in out
    code, out, _ = run(capsys, "info", tmp_path / "x-1-of-2.aez")
    assert "1/2: images 16..39 of 40" in out
    code, _, err = run(capsys, "encode", tmp_path / "d.npy", "-m", tiny_model_path, "-o", tmp_path / "y.aez",
                       "--jobs", "0")
    assert_one_line_error(code, err, "--jobs must be at least 1")
    assert not (tmp_path / "y.aez").exists()
