"""The command line: each failure is one `aezip: error:` line with a non-zero exit, never a traceback."""
from __future__ import annotations

import json

import numpy as np
import pytest

from aezip.cli.main import main
from tests.conftest import write_idx


def run(capsys, *args: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exc:
        main([*map(str, args)])
        raise SystemExit(0)
    out = capsys.readouterr()
    return exc.value.code or 0, out.out, out.err


def assert_one_line_error(code: int, err: str, needle: str) -> None:
    assert code != 0
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("aezip: error: ") and needle in lines[0], err
    assert "Traceback" not in err


def test_train_encode_info_decode(tmp_path, capsys, sample_images) -> None:
    src = write_idx(tmp_path / "d-idx3-ubyte", sample_images[:120])
    model = tmp_path / "m.aezm"
    code, out, err = run(capsys, "train", src, "-o", model, "--hidden", "16", "--latent", "4", "--levels", "8",
                         "--epochs", "2", "--backend", "torch", "--l2", "0.01", "--denoise", "mask:0.1")
    assert code == 0 and "model id" in out and "held-out" in err and "kernel backend torch" in err
    code, out, _ = run(capsys, "encode", src, "-m", model, "-o", tmp_path / "d.aez")
    assert code == 0 and "bits/pixel" in out
    code, out, _ = run(capsys, "info", tmp_path / "d.aez", "--json")
    assert code == 0 and json.loads(out)["shape"] == [120, 28, 28]
    code, out, _ = run(capsys, "decode", tmp_path / "d.aez", "-m", model, "-o", tmp_path / "o-idx3-ubyte")
    assert code == 0 and (tmp_path / "o-idx3-ubyte").exists()
    code, _, err = run(capsys, "decode", tmp_path / "d.aez", "-m", model, "-o", tmp_path / "o-idx3-ubyte")
    assert_one_line_error(code, err, "exists; pass --force")
    code, _, err = run(capsys, "decode", tmp_path / "d.aez", "-o", tmp_path / "p-idx3-ubyte")
    assert_one_line_error(code, err, "written with model")


def test_model_that_does_not_fit_the_data(tmp_path, capsys, tiny_model_path) -> None:
    np.save(tmp_path / "rgb.npy", np.zeros((3, 8, 8, 3), np.uint8))
    code, _, err = run(capsys, "encode", tmp_path / "rgb.npy", "-m", tiny_model_path, "-o", tmp_path / "x.aez")
    assert_one_line_error(code, err, "images are 8x8x3 but the model expects 28x28")
    assert not (tmp_path / "x.aez").exists()


@pytest.mark.parametrize("args,needle", [
    (["encode", "nowhere.npy", "-o", "x.aez"], "no such file"),
    (["decode", "nowhere.aez", "-o", "y"], "no such file"),
    (["info", "garbage.aez"], "bad magic"),
    (["encode", "garbage.aez", "-o", "x.aez"], "unknown format"),
    (["encode", "empty.npy", "-o", "x.aez"], "empty"),
    (["train", "empty.npy", "-o", "m.aezm", "--loss", "huber"], "Invalid value for '--loss'"),
    (["encode", "ok.npy", "-o", "x.aez", "-m", "garbage.aez"], "not an aezip model file"),
])
def test_bad_input_is_one_line(tmp_path, capsys, monkeypatch, args, needle) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "garbage.aez").write_bytes(b"not a real file at all, just text" * 4)
    np.save(tmp_path / "empty.npy", np.zeros((0, 28, 28), np.uint8))
    np.save(tmp_path / "ok.npy", np.zeros((2, 28, 28), np.uint8))
    code, _, err = run(capsys, *args)
    assert_one_line_error(code, err, needle)


def test_triton_backend_where_it_cannot_run(tmp_path, capsys, monkeypatch, tiny_model_path) -> None:
    monkeypatch.setenv("TRITON_INTERPRET", "0")
    np.save(tmp_path / "ok.npy", np.zeros((2, 28, 28), np.uint8))
    code, _, err = run(capsys, "encode", tmp_path / "ok.npy", "-m", tiny_model_path, "-o", tmp_path / "x.aez",
                       "--backend", "triton", "--device", "cpu")
    assert_one_line_error(code, err, "backend 'triton' cannot run")


def test_demo_runs_on_the_shipped_sample(capsys) -> None:
    code, out, _ = run(capsys, "demo")
    assert code == 0
    assert "aezip (lossy)" in out and "xz -9e" in out and "zstd -19" in out and "JPEG-XL lossless" in out
    lossless = next(line for line in out.splitlines() if line.startswith("aezip --max-error 0"))
    assert lossless.split()[-1] == "0"   # max error 0: lossless
    best = float(lossless.split()[-4])
    top = next(line for line in out.splitlines() if line.startswith("  --effort max"))
    assert top.split()[-1] == "0" and float(top.split()[-4]) < best   # also lossless, and smaller


def test_train_with_the_triton_backend_under_the_interpreter(tmp_path, capsys, sample_images) -> None:
    src = write_idx(tmp_path / "d-idx3-ubyte", sample_images[:40])
    code, out, err = run(capsys, "train", src, "-o", tmp_path / "m.aezm", "--hidden", "8", "--latent", "4",
                         "--epochs", "1", "--backend", "triton", "--device", "cpu")
    assert code == 0 and "kernel backend triton" in err and (tmp_path / "m.aezm").exists()


def test_decode_to_a_npy_name_writes_a_npy_array(tmp_path, capsys, tiny_model_path, sample_images) -> None:
    """An IDX dataset decodes to IDX by default, and to a .npy array where -o names one (not IDX bytes in a .npy)."""
    src = write_idx(tmp_path / "d-idx3-ubyte", sample_images[:20])
    aez = tmp_path / "d.aez"
    assert run(capsys, "encode", src, "-m", tiny_model_path, "-o", aez, "--max-error", "0")[0] == 0
    assert run(capsys, "decode", aez, "-m", tiny_model_path, "-o", tmp_path / "o-idx3-ubyte")[0] == 0
    assert (tmp_path / "o-idx3-ubyte").read_bytes() == src.read_bytes()
    assert run(capsys, "decode", aez, "-m", tiny_model_path, "-o", tmp_path / "o.NPY", "--range", "3:9")[0] == 0
    np.testing.assert_array_equal(np.load(tmp_path / "o.NPY"), sample_images[3:9])


def test_bench_kernels_times_torch_and_says_why_triton_rows_are_missing(tmp_path, capsys, monkeypatch) -> None:
    monkeypatch.setenv("TRITON_INTERPRET", "0")     # a CPU without the interpreter: Triton rows carry the reason
    code, out, _ = run(capsys, "bench", "kernels", "--batch", "3", "--reps", "1", "--no-compile", "--device", "cpu",
                       "--json", "-o", tmp_path / "k.json")
    assert code == 0
    rows = json.loads(out)["rows"]
    assert json.loads((tmp_path / "k.json").read_text())["rows"] == rows
    torch_rows = [r for r in rows if r["impl"] == "torch eager"]
    assert len(torch_rows) == 7 and all(r["median_s"] > 0 for r in torch_rows)
    assert all("Triton timings need a GPU" in r["note"] for r in rows if r["impl"] == "triton")
