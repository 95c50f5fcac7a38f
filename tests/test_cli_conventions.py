"""Command-line conventions: '-' for stdin/stdout, -c, --json, -q, exit codes, `aezip test`, errors that name the
options, `info` on a model file, and the first-time hint when the default model does not fit."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.test_cli import assert_one_line_error, run

AEZIP = [sys.executable, "-c", "from aezip.cli.main import main; main()"]


def shell(args: list[str], stdin: bytes = b"") -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run([*AEZIP, *map(str, args)], input=stdin, capture_output=True, timeout=120, env=env)


def test_stdin_and_stdout_round_trip(tmp_path, sample_images, tiny_model_path) -> None:
    images = sample_images[:20]
    np.save(tmp_path / "x.npy", images)
    enc = shell(["encode", "-", "-o", tmp_path / "x.aez", "-m", tiny_model_path, "--max-error", "0"],
                stdin=(tmp_path / "x.npy").read_bytes())                      # cat x.npy | aezip encode - -o x.aez
    assert enc.returncode == 0 and b"wrote" in enc.stdout, enc.stderr
    dec = shell(["decode", tmp_path / "x.aez", "-o", "-", "-m", tiny_model_path])   # aezip decode x.aez -o - > y
    assert dec.returncode == 0 and b"wrote stdout" in dec.stderr
    (tmp_path / "y.npy").write_bytes(dec.stdout)
    np.testing.assert_array_equal(np.load(tmp_path / "y.npy"), images)
    piped = shell(["encode", tmp_path / "x.npy", "-c", "-m", tiny_model_path, "--max-error", "0"])
    assert piped.returncode == 0 and piped.stdout == (tmp_path / "x.aez").read_bytes()


def test_json_quiet_test_and_range(tmp_path, capsys, sample_images, tiny_model_path) -> None:
    np.save(tmp_path / "x.npy", sample_images[:50])
    code, out, _ = run(capsys, "encode", tmp_path / "x.npy", "-o", tmp_path / "x.aez", "-m", tiny_model_path,
                       "--range", "10:40", "--chunk-size", "8", "--json")
    r = json.loads(out)
    assert code == 0 and r["images"] == 30 and r["file_bytes"] == (tmp_path / "x.aez").stat().st_size
    code, out, err = run(capsys, "test", tmp_path / "x.aez", "-m", tiny_model_path, "-q")
    assert code == 0 and out == "" and err == ""
    code, out, _ = run(capsys, "test", tmp_path / "x.aez", "-m", tiny_model_path, "--json")
    assert code == 0 and json.loads(out)["images"] == 30 and json.loads(out)["ok"] is True
    code, out, _ = run(capsys, "decode", tmp_path / "x.aez", "-m", tiny_model_path, "-o", tmp_path / "y.npy",
                       "--json")
    assert code == 0 and json.loads(out)["images"] == 30 and np.load(tmp_path / "y.npy").shape == (30, 28, 28)
    code, out, _ = run(capsys, "info", tmp_path / "x.aez", "--json")
    assert code == 0 and json.loads(out)["chunks"] == 4
    bad = tmp_path / "bad.aez"
    data = bytearray((tmp_path / "x.aez").read_bytes())
    data[200] ^= 1
    bad.write_bytes(bytes(data))
    code, _, err = run(capsys, "test", bad, "-m", tiny_model_path)
    assert_one_line_error(code, err, "CRC mismatch")


@pytest.mark.parametrize("args,status,needle", [
    (["encode", "x.npy", "-o", "y.aez", "--max-error", "300"], 1, "--max-error must be an integer in 0..255"),
    (["encode", "x.npy", "-o", "y.aez", "--range", "5:2"], 1, "--range '5:2': expected A:B"),
    (["encode", "x.npy", "-o", "y.aez", "--chunk-size", "0"], 1, "--chunk-size must lie in 1..10699"),
    (["train", "x.npy", "-o", "m.aezm", "--sparsity", "2"], 1, "--sparsity must lie in (0, 1)"),
    (["train", "x.npy", "-o", "m.aezm", "--epochs", "0"], 1, "--epochs must be positive"),
    (["encode", "x.npy"], 2, "missing option -o/--output (or -c/--stdout)"),
    (["encode", "x.npy", "-o", "y.aez", "-c"], 2, "not both"),
    (["encode", "x.npy", "-c", "--json"], 2, "--json prints to stdout"),
    (["decode", "x.npy", "--bogus"], 2, "No such option"),
    (["restore", "x.npy", "-o", "y.npy"], 2, "exactly one of --denoise"),
])
def test_errors_name_options_and_exit_status(tmp_path, capsys, monkeypatch, args, status, needle) -> None:
    monkeypatch.chdir(tmp_path)
    np.save(tmp_path / "x.npy", np.zeros((6, 28, 28), np.uint8))
    code, _, err = run(capsys, *args)
    assert code == status
    assert_one_line_error(code, err, needle)


def test_first_encode_on_data_the_default_model_does_not_fit(tmp_path, capsys) -> None:
    np.save(tmp_path / "rgb.npy", np.zeros((3, 16, 16, 3), np.uint8))
    code, _, err = run(capsys, "encode", tmp_path / "rgb.npy", "-o", tmp_path / "x.aez")
    assert_one_line_error(code, err, "aezip train")
    assert "images are 16x16x3 but the model expects 28x28" in err


def test_info_describes_a_model_file(capsys, tiny_model_path) -> None:
    code, out, _ = run(capsys, "info", tiny_model_path)
    assert code == 0 and "784-32" not in out and "32-8, 8 levels" in out   # widths, not the input size
    assert "max-error parts: pixel model, pixel model alone, raster network" in out
    code, out, _ = run(capsys, "info", tiny_model_path, "--json")
    m = json.loads(out)
    assert code == 0 and m["latent"] == 8 and m["hidden"] == [32] and m["image_shape"] == [28, 28]
    assert m["max_error_parts"] == ["pixel model", "pixel model alone", "raster network"]


def test_plot_without_matplotlib_fails_before_work(tmp_path, capsys, monkeypatch) -> None:
    import importlib.util
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "matplotlib" else real(name, *a))
    code, _, err = run(capsys, "bench", "codec", tmp_path / "nowhere.npy", "--plot", tmp_path / "rd.png")
    assert_one_line_error(code, err, "needs matplotlib")          # before the missing data is even looked at
    assert not Path(tmp_path / "rd.png").exists()


def test_train_models_never_overwrites_the_shipped_model_by_accident() -> None:
    import importlib.util
    from aezip.files.modelfile import default_model_path
    path = Path(__file__).resolve().parents[1] / "benchmarks" / "train_models.py"
    spec = importlib.util.spec_from_file_location("train_models", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    before = default_model_path().stat().st_mtime_ns
    for argv in (["default", "--out", str(default_model_path())], ["rate-l12", "--replace-shipped"]):
        with pytest.raises(SystemExit) as exc:
            module.main(argv)
        assert exc.value.code == 2
    assert default_model_path().stat().st_mtime_ns == before
