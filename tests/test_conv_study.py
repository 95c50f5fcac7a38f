"""benchmarks/conv_prior_study.py: a run must give one finite point per lambda, its fixed-point synthesis following
the float one, its held-out set coded to bytes and decoded back (its priors' bins: tests/test_conv_codec.py)."""
from __future__ import annotations

import importlib.util
import json
from argparse import Namespace
from pathlib import Path

import numpy as np

SCRIPT = Path(__file__).resolve().parent.parent / "benchmarks" / "conv_prior_study.py"
spec = importlib.util.spec_from_file_location("conv_prior_study", SCRIPT)
study = importlib.util.module_from_spec(spec)
spec.loader.exec_module(study)


def test_a_short_run_gives_one_finite_point_per_lambda_and_compares(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    for name, shape in (("gray-train", (20, 32, 32)), ("gray-heldout", (5, 32, 32))):
        np.save(tmp_path / f"natural32-{name}.npy", rng.integers(0, 256, shape, dtype=np.uint8))
    args = Namespace(train=str(tmp_path / "natural32-gray-train.npy"),
                     heldout=str(tmp_path / "natural32-gray-heldout.npy"), prior="hyper", lambdas=[0.001, 0.01], seconds=0, steps=2, batch=4, lr=1e-3, n=8, m=8,
                     augment="flip", device="cpu", seed=0, integer=True, real_bytes=True)
    rows = study.train(args)
    assert [r["lambda"] for r in rows] == [0.001, 0.01] and all(r["steps"] == 2 for r in rows)
    assert all(abs(r["psnr_integer_synthesis"] - r["psnr"]) < 0.05 for r in rows)   # the fixed-point synthesis
    assert all(abs(r["real_psnr"] - r["psnr"]) < 0.05 and r["real_bpp"] > 0 for r in rows)  # coded and decoded
    assert all(np.isfinite(r["estimated_bpp"]) and r["estimated_bpp"] > 0 and np.isfinite(r["psnr"]) for r in rows)
    (tmp_path / "s.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    anchor = [[r["estimated_bpp"] * f, r["psnr"]] for r in rows for f in (0.5, 2.0)]
    (tmp_path / "anchor.json").write_text(json.dumps(anchor))
    lines = study.compare(str(tmp_path / "s.jsonl"), {"gray": str(tmp_path / "anchor.json")})
    assert lines[0].startswith("== gray hyper n8") and "vs anchor" in lines[1]
    real = study.compare(str(tmp_path / "s.jsonl"), {"gray": str(tmp_path / "anchor.json")}, real=True)
    assert f"{rows[0]['real_bpp']:.4f}@" in real[0]
