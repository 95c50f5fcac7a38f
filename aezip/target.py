"""`--psnr`: the smallest file whose PSNR over the dataset reaches a target, among a model's lossy settings.

A model writes lossy files two ways: a `--quality` level of its ladder (conv rate points 1..R; MLP quantizer levels
2..L), or a `--max-error` bound E (the pixel coders, with or without the model's latents). Which is smaller at a
given PSNR depends on the data and the model: on noisy gray photographs the error-bounded coder wins above ~29-30
dB, on MNIST digits the ladder up to its top (~20.8 dB) and the bound above it. `smallest_at_psnr` encodes
candidates into memory and keeps the smallest whose *measured* PSNR (the one `aezip encode` reports:
10 log10(255^2 / MSE over every sample)) is at least the target:
- on the ladder, the lowest level that reaches it, found by bisection (PSNR rises with the level);
- on the error bound, the largest E in 1..255 that reaches it, by bisection (PSNR falls as E grows), else E = 0;
then writes the smallest of every file tried that reaches it. That is 2 + log2 of the ladder's length plus 9
encodes at most, each one measured: the file written always reaches the target, and no file tried that reaches it
is smaller, whether or not PSNR is monotone in a setting (where it is not, bisection may miss a smaller one)."""
from __future__ import annotations

import dataclasses
import io
import math
from pathlib import Path
from typing import BinaryIO, Callable

from aezip.codec import CodecReport, encode_dataset
from aezip.conv.model import is_conv
from aezip.errors import ParameterError
from aezip.files.atomic import atomic_path, check_output
from aezip.files.data import Dataset
from aezip.files.modelfile import CodecModel

Trial = tuple[bytes, CodecReport]


def check_target(psnr: object) -> float:
    """The target in dB: a positive number (inf: lossless)."""
    if isinstance(psnr, bool) or not isinstance(psnr, (int, float)) or math.isnan(psnr) or psnr <= 0:
        raise ParameterError("psnr", f"must be a positive number of dB (inf: lossless), got {psnr!r}")
    return float(psnr)


def ladder_levels(mf: CodecModel) -> list[int]:
    """The --quality levels of a model's lossy ladder, lowest rate first: its rate points (conv), or its quantizer
    levels 2..L."""
    return list(range(1, mf.config.rates + 1)) if is_conv(mf) else list(range(2, mf.config.levels + 1))


def _first_reaching(candidates: list, reaches: Callable[[object], bool]) -> object | None:
    """The first candidate that reaches the target, by bisection, if the last one does; None otherwise."""
    if not candidates or not reaches(candidates[-1]):
        return None
    lo, hi = 0, len(candidates) - 1          # candidates[hi] reaches it
    while lo < hi:
        mid = (lo + hi) // 2
        if reaches(candidates[mid]):
            hi = mid
        else:
            lo = mid + 1
    return candidates[hi]


def smallest_at_psnr(dataset: Dataset, mf: CodecModel, out: str | Path | BinaryIO, psnr: float, *,
                     force: bool = False, log: Callable[[str], None] | None = None, **encode_args) -> CodecReport:
    """Write the smallest file of `dataset` at PSNR >= `psnr` dB that the model's settings give (module docstring)
    to `out`; encode_args go to each trial (image_range, chunk_size, jobs, embed_model, effort's settings...). The
    report's `picked` says which setting, its `trials` how many encodes it took, its `seconds` their sum;
    `progress` (among encode_args) hears every trial's images."""
    target = check_target(psnr)
    if not hasattr(out, "write"):
        check_output(out, force, inputs=(dataset.path, mf.path))     # before the trials, not after them
    trials: dict[tuple, Trial] = {}

    def trial(quality: int | None, max_error: int | None) -> Trial:
        key = (quality, max_error)
        if key not in trials:
            buf = io.BytesIO()
            report = encode_dataset(dataset, mf, buf, quality=quality, max_error=max_error, **encode_args)
            trials[key] = buf.getvalue(), report
            if log:
                log(f"{_setting(quality, max_error)}: {report.file_bytes} bytes, PSNR {report.psnr_db:.2f} dB")
        return trials[key]

    def reaches(quality: int | None, max_error: int | None) -> bool:
        return trial(quality, max_error)[1].psnr_db >= target

    if math.isfinite(target):
        _first_reaching(ladder_levels(mf), lambda q: reaches(q, None))
        if _first_reaching(list(range(255, 0, -1)), lambda e: reaches(None, e)) is None:
            trial(None, 0)
    else:
        trial(None, 0)
    key = min((k for k, (_, r) in trials.items() if r.psnr_db >= target), key=lambda k: trials[k][1].file_bytes)
    data, report = trial(*key)
    if hasattr(out, "write"):
        out.write(data)
    else:
        with atomic_path(out, force=force, inputs=(dataset.path, mf.path)) as tmp:
            Path(tmp).write_bytes(data)
    return dataclasses.replace(report, seconds=sum(r.seconds for _, r in trials.values()), picked=_setting(*key),
                               trials=len(trials))


def _setting(quality: int | None, max_error: int | None) -> str:
    return f"--quality {quality}" if max_error is None else f"--max-error {max_error}"
