"""`encode --embed-model`: files that decode with no model file (CLI, API, PyTorch dataset), to the bytes decoding
with the model gives; a damaged embedded model is detected; a -m that is not the file's model is refused."""
from __future__ import annotations

import json

import numpy as np
import pytest

import aezip
from aezip.cli.main import main
from aezip.files.container import ContainerReader
from aezip.errors import FormatError, ModelMismatchError
from tests import aezcraft


@pytest.fixture(scope="module")
def files(tmp_path_factory, sample_images, tiny_model_path):
    """The same 30 images lossy and at max error 2, each with and without the embedded model."""
    d = tmp_path_factory.mktemp("embed")
    np.save(d / "src.npy", sample_images[:30])
    out = {}
    for name, e in (("lossy", None), ("e2", 2)):
        for embed in (False, True):
            path = d / f"{name}{'-embedded' if embed else ''}.aez"
            aezip.encode(d / "src.npy", path, tiny_model_path, max_error=e, chunk_size=12, embed_model=embed)
            out[name, embed] = path
    return out


def _run(argv: list[str], capsys) -> tuple[int, str, str]:
    try:
        main(argv)
        code = 0
    except SystemExit as exc:
        code = exc.code
    cap = capsys.readouterr()
    return code, cap.out, cap.err


@pytest.mark.parametrize("name", ["lossy", "e2"])
def test_embedded_files_decode_without_a_model_to_the_same_bytes(tmp_path, files, tiny_model_path, name, capsys):
    plain, embedded = files[name, False], files[name, True]
    with ContainerReader(plain) as p, ContainerReader(embedded) as e:
        assert (p.version, e.version) == (2, 3) and p.model_bytes == 0 < e.model_bytes
        assert e.size == p.size + e.model_bytes + 8                # the model, its length and its CRC
        assert all(p.read_chunk(i) == e.read_chunk(i) for i in range(len(p.chunks)))
    want = aezip.decompress(plain.read_bytes(), tiny_model_path)
    assert np.array_equal(aezip.decompress(embedded.read_bytes()), want)                      # API, no model
    assert np.array_equal(aezip.decompress(embedded.read_bytes(), tiny_model_path), want)     # API, its model
    with aezip.open(embedded) as reader:
        assert np.array_equal(reader[3:25], want[3:25])
    for extra in ([], ["-m", str(tiny_model_path)]):                                          # CLI, without and with -m
        out = tmp_path / f"out{len(extra)}.npy"
        assert _run(["decode", str(embedded), "-o", str(out), *extra], capsys)[0] == 0
        assert np.array_equal(np.load(out), want)
    assert aezip.verify(embedded).images == 30
    code, out, _ = _run(["info", "--json", str(embedded)], capsys)
    info = json.loads(out)
    assert code == 0 and info["embedded_model_bytes"] == e.model_bytes and info["bytes"] == e.size
    assert info["bits_per_pixel"] == pytest.approx(e.size * 8 / (30 * 28 * 28))          # the model's bytes count
    assert f"embedded model: {e.model_bytes} bytes" in _run(["info", str(embedded)], capsys)[1]


def test_a_lossy_file_embeds_only_the_lossy_decoder(files) -> None:
    with ContainerReader(files["lossy", True]) as lossy, ContainerReader(files["e2", True]) as bounded:
        assert lossy.model_bytes < bounded.model_bytes                  # no max-error prior, no pixel model


def test_the_pytorch_dataset_reads_an_embedded_file_without_a_model(files, tiny_model_path) -> None:
    from aezip.torch import AezDataset
    with_model, alone = AezDataset(files["e2", False], model=tiny_model_path), AezDataset(files["e2", True])
    assert len(alone) == 30
    assert all(np.array_equal(alone[i].numpy(), with_model[i].numpy()) for i in (0, 11, 12, 29))


def test_a_model_that_did_not_write_the_file_is_refused(files, capsys) -> None:
    code, _, err = _run(["decode", str(files["lossy", True]), "-o", "-", "-m",
                         str(aezip.files.modelfile.default_model_path())], capsys)
    assert code == 1 and err.startswith("aezip: error: ") and "written with model" in err and err.count("\n") == 1
    with pytest.raises(ModelMismatchError):
        aezip.decompress(files["lossy", True].read_bytes(), aezip.load_model())


def test_a_flipped_byte_in_the_embedded_model_is_detected(tmp_path, files, capsys) -> None:
    data = files["e2", True].read_bytes()
    with ContainerReader(files["e2", True]) as r:
        start, n = r.chunks[0].offset - 4 - r.model_bytes, r.model_bytes       # the model section's first byte
    parts = aezcraft.parse(data)
    bad = tmp_path / "bad.aez"
    for i in (0, 20, n // 2, n - 1):
        raw = bytearray(data)
        raw[start + i] ^= 4
        bad.write_bytes(bytes(raw))                                  # caught by the section's CRC
        code, _, err = _run(["decode", str(bad), "-o", str(tmp_path / "x.npy")], capsys)
        assert code == 1 and err.count("\n") == 1 and "whole-file CRC mismatch" in err, err
        code, _, err = _run(["decode", str(bad), "-o", str(tmp_path / "x.npy"), "--range", "0:5"], capsys)
        assert code == 1 and err.count("\n") == 1 and "damaged embedded model (CRC mismatch)" in err, err
        parts.model = bytes(raw[start:start + n])
        bad.write_bytes(aezcraft.build(parts))                       # every CRC of the container recomputed
        with pytest.raises(FormatError, match="embedded model: (not an aezip|damaged)"):
            aezip.decompress(bad.read_bytes())


def test_decoding_an_embedded_file_imports_no_torch(tmp_path, files) -> None:
    from tests.test_torch_free import assert_runs_without_torch
    assert_runs_without_torch(["decode", str(files["e2", True]), "-o", str(tmp_path / "y.npy")])
    assert (tmp_path / "y.npy").exists()
    assert_runs_without_torch(["info", str(files["e2", True])])


def test_sharded_embedded_parts_merge_into_the_file_one_encode_writes(tmp_path, sample_images,
                                                                      tiny_model_path) -> None:
    np.save(tmp_path / "src.npy", sample_images[:30])
    whole = tmp_path / "whole.aez"
    aezip.encode(tmp_path / "src.npy", whole, tiny_model_path, chunk_size=10, embed_model=True)
    names = []
    for k in range(3):
        names.append(tmp_path / f"part{k}.aez")
        aezip.encode(tmp_path / "src.npy", names[-1], tiny_model_path, chunk_size=10, embed_model=True, shard=(k, 3))
    from aezip.files.shards import merge_parts
    merge_parts(names, tmp_path / "merged.aez")
    assert (tmp_path / "merged.aez").read_bytes() == whole.read_bytes()


def test_export_decoder_gives_a_model_file_that_decodes(tmp_path, files, tiny_model_path, capsys) -> None:
    dec = tmp_path / "tiny.aezd"
    code, out, _ = _run(["model", "export-decoder", str(tiny_model_path), "-o", str(dec)], capsys)
    assert code == 0 and out.startswith(f"wrote {dec}: {dec.stat().st_size} bytes")
    plain = files["e2", False]
    assert np.array_equal(aezip.decompress(plain.read_bytes(), dec),
                          aezip.decompress(plain.read_bytes(), tiny_model_path))
    code, out, _ = _run(["info", "--json", str(dec)], capsys)
    assert code == 0 and json.loads(out)["decode_only"] and json.loads(out)["decode_side_bytes"] == dec.stat().st_size
    code, _, err = _run(["encode", str(tmp_path / "tiny.aezd"), "-o", str(tmp_path / "x.aez"), "-m", str(dec)],
                        capsys)
    assert code == 1 and err.startswith("aezip: error: ")
    assert _run(["model", "export-decoder", str(tiny_model_path), "-o", str(dec)], capsys)[0] == 1   # no --force


def test_a_lossy_files_model_in_a_max_error_file_is_refused(files) -> None:
    lossy, bounded = aezcraft.parse(files["lossy", True].read_bytes()), aezcraft.parse(files["e2", True].read_bytes())
    bounded.model = lossy.model                              # same model id, but no max-error coder
    with pytest.raises(FormatError, match="its decode-side model holds no max-error coder"):
        aezip.decompress(aezcraft.build(bounded))
