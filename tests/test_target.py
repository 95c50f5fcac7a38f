"""`--psnr` (aezip.target): the file written reaches the target, is the smallest of the settings tried that do, is
byte for byte the file of the setting it names, and bad targets or combinations are one-line errors."""
from __future__ import annotations

import io
import math
import re

import numpy as np
import pytest

import aezip
from aezip.errors import ParameterError
from aezip.metrics import psnr
from aezip.target import ladder_levels
from tests.test_cli import assert_one_line_error, run
from tests.test_conv_codec import TINY, _images

TRIAL = re.compile(r"^--(quality|max-error) (\d+): (\d+) bytes, PSNR (\S+) dB$")


def _trials(lines: list[str]) -> dict[tuple[str, int], tuple[int, float]]:
    """The log's trials: (flag, value) -> (bytes, PSNR)."""
    out = {}
    for line in lines:
        flag, value, size, db = TRIAL.match(line).groups()
        out[(flag, int(value))] = (int(size), float(db))
    return out


def _check_pick(images: np.ndarray, model, target: float) -> tuple[str, dict]:
    """Encode at the target (effort fast: quicker trials); check the file against every trial and against a plain
    encode of the pick."""
    lines: list[str] = []
    buf = io.BytesIO()
    report = aezip.encode(images, buf, model, psnr=target, log=lines.append, effort="fast")
    trials = _trials(lines)
    assert report.trials == len(trials) >= 2
    decoded = aezip.decompress(buf.getvalue(), model)
    assert psnr(images, decoded) == pytest.approx(report.psnr_db, abs=1e-9) and report.psnr_db >= target
    reaching = [size for size, db in trials.values() if db >= target]
    assert report.file_bytes == len(buf.getvalue()) == min(reaching)
    flag, value = report.picked.split()
    kwargs = {flag[2:].replace("-", "_"): int(value)}
    assert aezip.compress(images, model, effort="fast", **kwargs) == buf.getvalue()   # the file of that setting
    return flag, trials


def test_a_target_between_ladder_levels_gets_the_smallest_file_that_reaches_it(sample_images,
                                                                               tiny_model_path) -> None:
    images = sample_images[:24]
    model = aezip.load_model(tiny_model_path)
    levels = ladder_levels(model)
    assert levels == list(range(2, model.config.levels + 1))
    db = [psnr(images, aezip.decompress(aezip.compress(images, model, quality=q), model)) for q in levels]
    target = (db[2] + db[3]) / 2                      # between the 3rd and 4th level
    flag, trials = _check_pick(images, model, target)
    assert {k[0] for k in trials} == {"quality", "max-error"}   # both kinds were tried


def test_an_infinite_target_is_lossless_and_an_unreachable_ladder_falls_to_the_error_bound(
        sample_images, tiny_model_path) -> None:
    images = sample_images[:24]
    report = aezip.encode(images, io.BytesIO(), tiny_model_path, psnr=math.inf)
    assert report.picked == "--max-error 0" and report.psnr_db == math.inf and report.max_abs_error == 0
    flag, trials = _check_pick(images, aezip.load_model(tiny_model_path), 45.0)   # far above the lossy ladder
    assert flag == "--max-error"


def test_a_conv_model_picks_among_its_rate_points_and_bounds() -> None:
    images = _images((16, 20), 8)
    model = aezip.train_conv(images, **TINY)
    assert ladder_levels(model) == [1, 2]
    db = [psnr(images, aezip.decompress(aezip.compress(images, model, quality=q), model)) for q in (1, 2)]
    _check_pick(images, model, min(db) - 0.5)
    _check_pick(images, model, max(db) + 3.0)


@pytest.mark.parametrize("kwargs, needle", [
    (dict(psnr=0.0), "positive number"), (dict(psnr=float("nan")), "positive number"), (dict(psnr="30"), "positive"),
    (dict(psnr=30.0, quality=3), "--quality"), (dict(psnr=30.0, max_error=4), "--max-error"),
    (dict(psnr=30.0, shard=(0, 2)), "--shard")])
def test_bad_targets_and_combinations_are_refused(sample_images, tiny_model_path, kwargs, needle) -> None:
    with pytest.raises(ParameterError, match=re.escape(needle)):
        aezip.encode(sample_images[:8], io.BytesIO(), tiny_model_path, **kwargs)


def test_cli_reports_the_pick_and_refuses_an_existing_output_before_any_trial(tmp_path, capsys, sample_images,
                                                                              tiny_model_path) -> None:
    src = tmp_path / "d.npy"
    np.save(src, sample_images[:24])
    out = tmp_path / "d.aez"
    code, stdout, err = run(capsys, "encode", src, "-m", tiny_model_path, "--psnr", "20", "-o", out, "-v")
    assert code == 0 and re.search(r"picked --(quality|max-error) \d+ of \d+ settings tried", stdout), stdout + err
    assert TRIAL.match(err.strip().splitlines()[-1]), err
    before = out.read_bytes()
    code, stdout, err = run(capsys, "encode", src, "-m", tiny_model_path, "--psnr", "20", "-o", out, "-v")
    assert_one_line_error(code, err, "exists")
    assert out.read_bytes() == before
    code, _, err = run(capsys, "encode", src, "-m", tiny_model_path, "--psnr", "20", "--max-error", "2", "-o",
                       tmp_path / "e.aez")
    assert_one_line_error(code, err, "--max-error")
    assert not (tmp_path / "e.aez").exists()
