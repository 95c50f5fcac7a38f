"""Never lose a user's files; treat every .aez as hostile. Each case here once lost data or crashed (issue #10)."""
from __future__ import annotations

import json
import os

import numpy as np
import pytest
from PIL import Image

from aezip.files.atomic import atomic_path, clean_stale_temps
from aezip.codec import decode_file, encode_dataset
from aezip.files.container import FORMAT_VERSION
from aezip.files.data import open_dataset
from aezip.files.source import Source
from aezip.errors import FormatError, InputError, OutputExistsError
from aezip.files.modelfile import load_model
from tests import aezcraft
from tests.conftest import write_idx
from tests.test_cli import assert_one_line_error, run


def _tree(root) -> dict[str, bytes]:
    """Every file under root (relative path -> bytes): what must stay untouched."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture
def folder_aez(tmp_path, tiny_model_path, sample_images):
    """A .aez of a PNG/JPEG folder whose names share a stem: a.png, a.jpg, b.png."""
    src = tmp_path / "src"
    src.mkdir()
    for name, img in zip(("a.png", "a.jpg", "b.png"), sample_images[:3]):
        Image.fromarray(img).save(src / name)
    aez = tmp_path / "f.aez"
    encode_dataset(open_dataset(src), load_model(tiny_model_path), aez)
    return src, aez


def _with_names(aez, tmp_path, names) -> os.PathLike:
    """The file with its stored names replaced by `names` (checksums recomputed)."""
    parts = aezcraft.parse(aez.read_bytes())
    h = parts.header_json
    h["source"].pop("names_zlib")
    h["source"]["names"] = names
    bad = tmp_path / "crafted.aez"
    bad.write_bytes(aezcraft.build(parts.with_header(h)))
    return bad


def test_same_stem_images_all_come_back(tmp_path, folder_aez, tiny_model_path) -> None:
    src, aez = folder_aez
    decode_file(aez, tmp_path / "out", model_path=tiny_model_path)
    assert sorted(os.listdir(tmp_path / "out")) == ["a.jpg.png", "a.png", "b.png"]
    assert open_dataset(tmp_path / "out").shape[0] == 3


def test_names_are_stored_compressed(folder_aez) -> None:
    _, aez = folder_aez
    h = aezcraft.parse(aez.read_bytes()).header_json
    assert "names" not in h["source"] and "names_zlib" in h["source"]


@pytest.mark.parametrize("names", [["../x.png", "b.png", "c.png"], ["/tmp/aezip-abs-x.png", "b.png", "c.png"],
                                   ["a.png", "a.png", "c.png"], ["sub/dir/a.png", "b.png", "c.png"],
                                   ["a\0.png", "b.png", "c.png"], ["..", "b.png", "c.png"], ["a.png", "b.png"],
                                   ["a\n.png", "b.png", "c.png"], [1, "b.png", "c.png"]])
def test_hostile_stored_names_are_refused(tmp_path, folder_aez, tiny_model_path, names) -> None:
    _, aez = folder_aez
    bad = _with_names(aez, tmp_path, names)
    before = _tree(tmp_path)
    with pytest.raises(FormatError, match="name"):
        decode_file(bad, tmp_path / "out", model_path=tiny_model_path)
    assert _tree(tmp_path) == before and not os.path.exists("/tmp/aezip-abs-x.png")


def test_names_clashing_by_case_get_distinct_outputs(tmp_path, folder_aez, tiny_model_path) -> None:
    _, aez = folder_aez
    decode_file(_with_names(aez, tmp_path, ["A.png", "a.png", "a.PNG"]), tmp_path / "out",
                model_path=tiny_model_path)
    names = sorted(os.listdir(tmp_path / "out"))
    assert len({n.casefold() for n in names}) == 3 and "A.png" in names


@pytest.mark.parametrize("target", [".", ".."])
def test_force_never_deletes_the_current_or_parent_folder(tmp_path, capsys, monkeypatch, tiny_model_path,
                                                          sample_images, target) -> None:
    work = tmp_path / "work"
    work.mkdir()
    src = write_idx(work / "d-idx3-ubyte", sample_images[:5])
    (work / "a.txt").write_text("a")
    (work / "b.txt").write_text("b")
    monkeypatch.chdir(work)
    before = _tree(tmp_path)
    code, _, err = run(capsys, "encode", src, "-m", tiny_model_path, "-o", target, "--force")
    assert_one_line_error(code, err, "not '.' or '..'")
    assert _tree(tmp_path) == before


def test_decode_into_a_folder_with_other_files_keeps_them(tmp_path, folder_aez, tiny_model_path) -> None:
    _, aez = folder_aez
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    (out / "a.png").write_text("old")
    with pytest.raises(OutputExistsError):
        decode_file(aez, out, model_path=tiny_model_path)
    assert (out / "a.png").read_text() == "old"
    decode_file(aez, out, model_path=tiny_model_path, force=True)
    assert (out / "notes.txt").read_text() == "mine"
    assert sorted(os.listdir(out)) == ["a.jpg.png", "a.png", "b.png", "notes.txt"]


def test_a_file_output_never_replaces_a_folder(tmp_path, capsys, tiny_model_path, sample_images) -> None:
    src = write_idx(tmp_path / "d-idx3-ubyte", sample_images[:5])
    (tmp_path / "dir").mkdir()
    (tmp_path / "dir" / "keep.txt").write_text("keep")
    code, _, err = run(capsys, "encode", src, "-m", tiny_model_path, "-o", tmp_path / "dir", "--force")
    assert_one_line_error(code, err, "is a folder")
    assert (tmp_path / "dir" / "keep.txt").read_text() == "keep"


def test_the_input_is_never_the_output(tmp_path, capsys, tiny_model_path, sample_images) -> None:
    src = write_idx(tmp_path / "d-idx3-ubyte", sample_images[:5])
    before = src.read_bytes()
    code, _, err = run(capsys, "encode", src, "-m", tiny_model_path, "-o", src, "--force")
    assert_one_line_error(code, err, "is the input")
    code, _, err = run(capsys, "encode", src, "-m", tiny_model_path, "-o", tiny_model_path, "--force")
    assert_one_line_error(code, err, "is the input")
    assert src.read_bytes() == before


def test_a_missing_parent_folder_is_not_created(tmp_path, capsys, tiny_model_path, sample_images) -> None:
    src = write_idx(tmp_path / "d-idx3-ubyte", sample_images[:5])
    code, _, err = run(capsys, "encode", src, "-m", tiny_model_path, "-o", tmp_path / "missing" / "dir" / "x.aez")
    assert_one_line_error(code, err, "does not exist")
    assert not (tmp_path / "missing").exists()


def test_an_output_created_during_the_write_is_kept(tmp_path) -> None:
    target = tmp_path / "out.bin"
    with pytest.raises(OutputExistsError, match="appeared"):
        with atomic_path(target) as tmp:
            tmp.write_bytes(b"new")
            target.write_bytes(b"someone else's")     # the race: created after aezip's check
    assert target.read_bytes() == b"someone else's"
    assert sorted(os.listdir(tmp_path)) == ["out.bin"]


def test_stale_temporaries_are_removed_and_reported(tmp_path, caplog) -> None:
    dead = 2 ** 22 + 12345          # above pid_max's default: no such process
    stale = tmp_path / f".out.bin.{dead}.0123abcd.aeztmp"
    stale.write_bytes(b"half")
    live = tmp_path / f".out.bin.{os.getpid()}.0123abcd.aeztmp"
    live.write_bytes(b"being written")
    other = tmp_path / ".out.bin.notes"
    other.write_bytes(b"not ours")
    assert clean_stale_temps(tmp_path / "out.bin") == [stale]
    assert not stale.exists() and live.exists() and other.exists()
    assert "interrupted" in caplog.text


@pytest.fixture
def idx_aez(tmp_path, tiny_model_path, sample_images):
    src = write_idx(tmp_path / "d-idx3-ubyte", sample_images[:40])
    aez = tmp_path / "d.aez"
    encode_dataset(open_dataset(src), load_model(tiny_model_path), aez, chunk_size=16)
    return aez


def _decode_crafted(tmp_path, tiny_model_path, parts) -> None:
    bad = tmp_path / "crafted.aez"
    bad.write_bytes(aezcraft.build(parts))
    decode_file(bad, tmp_path / "out-idx3-ubyte", model_path=tiny_model_path)


@pytest.mark.parametrize("field,value,message", [
    ("max_error", 100000, "max_error"), ("max_error", -1, "max_error"), ("max_error", True, "max_error"),
    ("shape", [10 ** 6, 28, 28], "chunk index holds"), ("shape", [0, 28, 28], "empty"),
    ("shape", [40, 1 << 20, 1 << 20], "larger than"), ("shape", "40x28x28", "shape"),
    ("dtype", "float32", "dtype"), ("chunk_size", 10 ** 9, "chunk_size"), ("model_id", 7, "model_id"),
    ("source", [1, 2], "source"), ("source", {"format": "exe"}, "source format"),
    ("source", {"format": "idx", "gzip": "yes"}, "true or false"), ("levels", 100000, "levels"),
    ("decoder", "float-v9", "decoder"), ("residual", "context-adaptive-v4", "residual"),
])
def test_hostile_header_fields_are_refused(tmp_path, idx_aez, tiny_model_path, field, value, message) -> None:
    parts = aezcraft.parse(idx_aez.read_bytes())
    h = parts.header_json
    h[field] = value
    with pytest.raises(FormatError, match=message):
        _decode_crafted(tmp_path, tiny_model_path, parts.with_header(h))


@pytest.mark.parametrize("body", [b"[" * 100000 + b"]" * 100000, b"\xff\xfe", b"[1, 2]", b"null"])
def test_headers_that_are_not_json_objects_are_refused(tmp_path, idx_aez, tiny_model_path, body) -> None:
    parts = aezcraft.parse(idx_aez.read_bytes())
    with pytest.raises(FormatError, match="header"):
        _decode_crafted(tmp_path, tiny_model_path, parts.with_header(body))


def test_repeated_index_rows_are_refused(tmp_path, idx_aez, tiny_model_path) -> None:
    parts = aezcraft.parse(idx_aez.read_bytes())
    first_chunk = 8 + 2 + 4 + len(parts.header) + 4
    parts.rows = [(first_chunk, len(parts.payloads[0]), parts.images[0])] * 50   # every row names chunk 0
    h = parts.header_json
    h["shape"][0] = 50 * parts.images[0]
    with pytest.raises(FormatError, match="chunk index"):
        _decode_crafted(tmp_path, tiny_model_path, parts.with_header(h))


def test_chunk_image_count_must_match_its_payload(tmp_path, idx_aez, tiny_model_path) -> None:
    parts = aezcraft.parse(idx_aez.read_bytes())
    parts.images[-1] += 1                  # the index claims one image more than the payload holds
    h = parts.header_json
    h["shape"][0] += 1
    with pytest.raises(FormatError, match="holds 8 images, the index says 9"):
        _decode_crafted(tmp_path, tiny_model_path, parts.with_header(h))
    assert not (tmp_path / "out-idx3-ubyte").exists()


def test_garbage_streams_are_one_line_errors(tmp_path, idx_aez, tiny_model_path) -> None:
    parts = aezcraft.parse(idx_aez.read_bytes())
    n, latent, residual, crc = aezcraft.payload_parts(parts.payloads[0])
    for garbage in (b"", b"\x00" * 3, b"\xff" * 4, bytes(range(256)) * 4):
        parts.payloads[0] = aezcraft.make_payload(n, garbage, residual, crc)
        with pytest.raises(FormatError):
            _decode_crafted(tmp_path, tiny_model_path, parts)


def test_version_1_files_still_decode(tmp_path, folder_aez, tiny_model_path) -> None:
    _, aez = folder_aez
    parts = aezcraft.parse(aez.read_bytes())
    assert parts.version == FORMAT_VERSION == 2
    names = Source.from_dict(parts.header_json["source"], 3).names
    assert names == ["a.jpg", "a.png", "b.png"]
    v1 = _with_names(aez, tmp_path, names)   # names in the clear, as version 1 stored them
    old = aezcraft.parse(v1.read_bytes())
    old.version = 1
    v1.write_bytes(aezcraft.build(old))
    decode_file(v1, tmp_path / "v1", model_path=tiny_model_path)
    decode_file(aez, tmp_path / "v2", model_path=tiny_model_path)
    assert _tree(tmp_path / "v1") == _tree(tmp_path / "v2")


@pytest.mark.parametrize("max_error", [128, 200, 255])
def test_large_max_errors_hold_their_bound(tmp_path, tiny_model_path, sample_images, max_error) -> None:
    src = write_idx(tmp_path / "d-idx3-ubyte", sample_images[:10])
    aez = tmp_path / "d.aez"
    report = encode_dataset(open_dataset(src), load_model(tiny_model_path), aez, max_error=max_error)
    decode_file(aez, tmp_path / "o-idx3-ubyte", model_path=tiny_model_path)
    back = open_dataset(tmp_path / "o-idx3-ubyte").read_all()
    err = np.abs(back.astype(int) - sample_images[:10].astype(int)).max()
    assert err <= max_error and report.max_abs_error == err


def _edit_model(src, dst, edit_meta=None, edit_header=None, edit_body=None):
    """A copy of a model file with its metadata, tensor table or tensor bytes edited."""
    from tests.fuzz import _join_safetensors, _split_safetensors
    header, body = _split_safetensors(src.read_bytes())
    meta = json.loads(header["__metadata__"]["aezip"])
    if edit_meta:
        edit_meta(meta)
    if edit_header:
        edit_header(header)
    if edit_body:
        body = edit_body(header, bytearray(body))
    header["__metadata__"] = {"aezip": json.dumps(meta)}
    dst.write_bytes(_join_safetensors(header, bytes(body)))
    return dst


def _set_int32(header, body, name, value):
    start, _ = header[name]["data_offsets"]
    body[start:start + 4] = np.int32(value).tobytes()
    return body


@pytest.mark.parametrize("edit,message", [
    (dict(edit_meta=lambda m: m["config"].update(hidden=[10 ** 6, 256])), "hidden"),
    (dict(edit_meta=lambda m: m["config"].update(hidden=[4096])), "expected float32"),
    (dict(edit_meta=lambda m: m["config"].update(latent=2 ** 40)), "latent"),
    (dict(edit_meta=lambda m: m["config"].update(levels=1)), "levels"),
    (dict(edit_meta=lambda m: m.update(config=[1])), "config"),
    (dict(edit_meta=lambda m: m.update(format_version="1")), "format version"),
    (dict(edit_header=lambda h: h.update(other=h.pop("intdec.thresholds"))), "intdec.thresholds is missing"),
    (dict(edit_header=lambda h: h.update({"evil": {"dtype": "U8", "shape": [0], "data_offsets": [0, 0]}})),
     "unknown tensors"),
    (dict(edit_body=lambda h, b: _set_int32(h, b, "intdec.w0", 2 ** 31 - 1)), "exceeds"),
])
def test_hostile_model_files_are_refused_before_anything_is_built(tmp_path, tiny_model_path, edit, message) -> None:
    bad = _edit_model(tiny_model_path, tmp_path / "bad.aezm", **edit)
    with pytest.raises(FormatError, match=message):
        load_model(bad)


def test_an_edited_model_that_passes_its_checks_still_loads(tmp_path, tiny_model_path) -> None:
    same = _edit_model(tiny_model_path, tmp_path / "same.aezm")
    assert load_model(same).config == load_model(tiny_model_path).config


def test_a_folder_name_that_could_not_be_stored_is_refused_at_encode(tmp_path, sample_images) -> None:
    src = tmp_path / "src"
    src.mkdir()
    Image.fromarray(sample_images[0]).save(src / "ok.png")
    Image.fromarray(sample_images[1]).save(src / "two\nlines.png")
    with pytest.raises(InputError, match="control characters"):
        open_dataset(src)


def test_extra_npz_arrays_in_a_header_cannot_expand_without_bound(tmp_path, tiny_model_path, sample_images,
                                                                  monkeypatch) -> None:
    import base64

    import zstandard

    from aezip.files import data
    src = tmp_path / "d.npz"
    np.savez(src, images=sample_images[:8], labels=np.arange(8))
    aez = tmp_path / "d.aez"
    encode_dataset(open_dataset(src), load_model(tiny_model_path), aez)
    monkeypatch.setattr(data, "NPZ_EXTRA_RAW_LIMIT", 1 << 20)
    parts = aezcraft.parse(aez.read_bytes())
    h = parts.header_json
    h["source"]["npz_extra"] = base64.b64encode(zstandard.ZstdCompressor().compress(bytes(2 << 20))).decode()
    bad = tmp_path / "bomb.aez"
    bad.write_bytes(aezcraft.build(parts.with_header(h)))
    with pytest.raises(InputError, match="more than they may"):
        decode_file(bad, tmp_path / "out.npz", model_path=tiny_model_path)
    assert not (tmp_path / "out.npz").exists()


@pytest.mark.parametrize("shard", [5, {"index": 0}, {"index": 0, "count": 10 ** 9, "images": [0, 40], "total": 40},
                                   {"index": 2, "count": 2, "images": [0, 40], "total": 40}])
def test_hostile_shard_entries_are_refused(tmp_path, capsys, idx_aez, shard) -> None:
    parts = aezcraft.parse(idx_aez.read_bytes())
    h = parts.header_json
    h["shard"] = shard
    bad = tmp_path / "part.aez"
    bad.write_bytes(aezcraft.build(parts.with_header(h)))
    code, _, err = run(capsys, "info", bad)
    assert_one_line_error(code, err, "shard")
