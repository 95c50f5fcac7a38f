"""`aezip bench codec` and `aezip eval probe` on datasets of any size, with their default options: the last 20 %
held out, and the output says which images were used."""
from __future__ import annotations

import json

import numpy as np
import pytest

from aezip.bench.demo import sample_path
from tests.test_cli import run


def test_bench_codec_on_the_shipped_sample_with_defaults(tmp_path, capsys) -> None:
    code, out, _ = run(capsys, "bench", "codec", sample_path(), "-o", tmp_path / "r.json")
    assert code == 0, out
    assert out.splitlines()[0].startswith("60 images 240..299 measured (PCA fit on 0..239)")
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["test_range"] == [240, 300] and report["train_range"] == [0, 240]
    lossless = next(r for r in report["rows"] if r["setting"].endswith("--max-error 0"))
    assert lossless["max_abs_error"] == 0 and lossless["bytes"] < 60 * 784
    gap = report["psnr_gap_db"]["aezip default --quality vs PCA + zstd"]
    line = next(s for s in out.splitlines() if s.startswith("  aezip default --quality vs PCA + zstd: ") and " dB " in s)
    assert line.endswith(f"dB over {gap['inside']} of {len(gap['points'])} points")


@pytest.mark.slow
def test_bench_codec_on_a_1000_image_npy_with_defaults(tmp_path, capsys, sample_images) -> None:
    images = np.concatenate([sample_images] * 4)[:1000]
    np.save(tmp_path / "d.npy", images)
    code, out, _ = run(capsys, "bench", "codec", tmp_path / "d.npy", "--json")
    report = json.loads(out)
    assert code == 0 and report["images"] == 200 and report["test_range"] == [800, 1000]


def test_eval_probe_holds_out_the_last_fifth_by_default(tmp_path, capsys, sample_images) -> None:
    np.save(tmp_path / "d.npy", sample_images[:100])
    np.save(tmp_path / "y.npy", np.arange(100) % 3)
    code, out, _ = run(capsys, "eval", "probe", tmp_path / "d.npy", "--labels", tmp_path / "y.npy", "--json")
    r = json.loads(out)
    assert code == 0 and r["train_range"] == [0, 80] and r["test_range"] == [80, 100]
    assert all(0.0 <= a <= 1.0 for a in r["accuracy"].values()) and len(r["accuracy"]) == 3
    code, out, _ = run(capsys, "eval", "probe", tmp_path / "d.npy", "--labels", tmp_path / "y.npy",
                       "--test-range", "0:30")
    assert code == 0 and "fit on images 30..99, tested on 0..29" in out
