"""The public Python API: the README's example as written, in-memory round trips, random access that decodes only
the chunks it needs, errors that name parameters, and `import aezip` without torch."""
from __future__ import annotations

import io
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import aezip
from aezip.errors import ModelMismatchError, ParameterError

README = Path(__file__).resolve().parents[1] / "README.md"


def readme_block(heading: str) -> str:
    """The first ```python block after `heading` in the README."""
    text = README.read_text()
    start = text.index(heading)
    return re.search(r"```python\n(.*?)```", text[start:], re.S).group(1)


def test_readme_python_api_example_runs_as_written(tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    exec(compile(readme_block("## Python API"), "README.md", "exec"), {})
    out = capsys.readouterr().out
    assert "bytes for 235200 bytes of pixels" in out and "300 (300, 28, 28) None" in out
    assert (tmp_path / "sample.aez").exists() and (tmp_path / "tiny.aezm").exists()


def test_compress_round_trips_in_memory(sample_images, tiny_model_path) -> None:
    images = sample_images[:40]
    blob = aezip.compress(images, tiny_model_path, max_error=0, chunk_size=16)
    assert blob[:4] == b"\x89AEZ"
    np.testing.assert_array_equal(aezip.decompress(blob, tiny_model_path), images)
    lossy = aezip.decompress(aezip.compress(images, tiny_model_path, max_error=3), tiny_model_path)
    assert np.abs(lossy.astype(int) - images).max() <= 3
    with pytest.raises(ModelMismatchError, match="written with model"):
        aezip.decompress(blob)                       # the embedded model did not write it


def test_open_slices_decode_only_the_chunks_they_need(sample_images, tiny_model_path) -> None:
    blob = aezip.compress(sample_images[:100], tiny_model_path, chunk_size=16)     # 7 chunks: 16 x 6 + 4
    full = aezip.decompress(blob, tiny_model_path)
    with aezip.open(blob, tiny_model_path, cache_chunks=2) as r:
        assert len(r) == 100 and r.shape == (100, 28, 28) and r.info["chunks"] == 7
        np.testing.assert_array_equal(r[20:40], full[20:40])          # images 20..39: chunks 1 and 2
        assert r.chunks_decoded == 2
        np.testing.assert_array_equal(r[33], full[33])                # chunk 2, cached
        assert r.chunks_decoded == 2
        np.testing.assert_array_equal(r[-1], full[99])                # chunk 6
        np.testing.assert_array_equal(r[90:3:-7], full[90:3:-7])
        np.testing.assert_array_equal(r[[5, 97, 5]], full[[5, 97, 5]])
        assert r[50:50].shape == (0, 28, 28)
        with pytest.raises(IndexError):
            r[100]
    reader = aezip.open(blob, tiny_model_path)
    np.testing.assert_array_equal(np.stack(list(reader)), full)
    assert reader.chunks_decoded == 7


def test_encode_and_decode_streams_and_ranges(tmp_path, sample_images, tiny_model_path) -> None:
    src = io.BytesIO()
    np.save(src, sample_images[:30])
    src.seek(0)
    aez = io.BytesIO()
    report = aezip.encode(src, aez, tiny_model_path, chunk_size=8, image_range="5:25", max_error=0)
    assert report.images == 20 and report.file_bytes == len(aez.getvalue())
    out = io.BytesIO()
    aezip.decode(io.BytesIO(aez.getvalue()), out, tiny_model_path)
    np.testing.assert_array_equal(np.load(io.BytesIO(out.getvalue())), sample_images[5:25])
    assert aezip.verify(aez.getvalue(), tiny_model_path).images == 20


@pytest.mark.parametrize("call,param", [
    (lambda m: aezip.compress(np.zeros((2, 28, 28), np.uint8), m, max_error=256), "max_error"),
    (lambda m: aezip.compress(np.zeros((2, 28, 28), np.uint8), m, chunk_size=0), "chunk_size"),
    (lambda m: aezip.encode(np.zeros((2, 28, 28), np.uint8), io.BytesIO(), m, image_range="1:9"), "image_range"),
    (lambda m: aezip.train(np.zeros((4, 8, 8), np.uint8), epochs=0), "epochs"),
    (lambda m: aezip.train(np.zeros((4, 8, 8), np.uint8), rho=2.0), "rho"),
    (lambda m: aezip.train(np.zeros((4, 8, 8), np.uint8), epoch=3), "epoch"),
    (lambda m: aezip.train(np.zeros((4, 8, 8), np.float32)), "images"),
])
def test_errors_name_the_parameter(tiny_model_path, call, param) -> None:
    with pytest.raises(ParameterError) as exc:
        call(tiny_model_path)
    assert exc.value.param == param and str(exc.value).startswith(param + " ") and "--" not in str(exc.value)


def test_import_aezip_and_cli_help_load_no_torch() -> None:
    code = """
import sys
import aezip
assert "torch" not in sys.modules, "import aezip"
from aezip.cli.main import cli, main
commands = [[]] + [[c] for c in cli.commands] + [["bench", "codec"], ["bench", "kernels"], ["eval", "probe"]]
for args in commands + [["--version"]]:
    try:
        main([*args, "--help"] if args != ["--version"] else args)
    except SystemExit as exc:
        assert exc.code == 0, (args, exc.code)
    assert "torch" not in sys.modules, args
print("ok", len(commands))
"""
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0 and "ok" in run.stdout, run.stderr[-2000:]
