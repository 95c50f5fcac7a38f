"""kill -9 at random moments while aezip writes: every target is old-complete or new-complete, and the next run
removes what the killed one left behind. AEZIP_KILL_RUNS sets the kills per case (default 3)."""
from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from aezip.codec import encode_dataset
from aezip.files.data import open_dataset
from aezip.files.modelfile import load_model

KILLS = int(os.environ.get("AEZIP_KILL_RUNS", "3"))
_CLI = "from aezip.cli.main import main; main()"


def _aezip(*args: object) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-c", _CLI, *map(str, args)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, env=env)


def _run_until_writing(args: tuple, parent: Path) -> tuple[subprocess.Popen, float]:
    """Start aezip and return once its temporary output appears in `parent` (or it has ended)."""
    before = set(os.listdir(parent))
    proc = _aezip(*args)
    deadline = time.monotonic() + 120
    while proc.poll() is None and time.monotonic() < deadline:
        if any(n.endswith(".aeztmp") for n in set(os.listdir(parent)) - before):
            break
        time.sleep(0.002)
    return proc, time.monotonic()


def _write_phase(args: tuple, parent: Path) -> float:
    """Seconds from the temporary output's appearance to the end of a complete run."""
    proc, start = _run_until_writing(args, parent)
    proc.wait()
    assert proc.returncode == 0, proc.stderr.read()
    return time.monotonic() - start


def _kill_while_writing(args: tuple, parent: Path, delay: float) -> None:
    """kill -9 aezip `delay` seconds after its temporary output appears."""
    proc, _ = _run_until_writing(args, parent)
    time.sleep(delay)
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGKILL)
    proc.wait()


def _tree(root: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(root.iterdir())}


@pytest.fixture(scope="module")
def setting(tmp_path_factory, tiny_model_path, sample_images):
    """Inputs big enough that writing takes a while, and the bytes a complete run produces."""
    root = tmp_path_factory.mktemp("kill")
    data = root / "data.npy"
    np.save(data, np.tile(sample_images, (4, 1, 1)))
    folder = root / "folder"
    folder.mkdir()
    for i, img in enumerate(sample_images[:300]):
        Image.fromarray(img).save(folder / f"{i:04d}.png")
    folder_aez = root / "folder.aez"
    encode_dataset(open_dataset(folder), load_model(tiny_model_path), folder_aez)
    reference = root / "reference.aez"
    encode_dataset(open_dataset(data), load_model(tiny_model_path), reference, max_error=0)
    return root, data, folder_aez, reference


def test_a_replaced_file_is_old_or_new_after_kill_9(setting, tiny_model_path) -> None:
    root, data, _, reference = setting
    work = root / "file"
    work.mkdir()
    out = work / "out.aez"
    rng = random.Random(0)
    new = reference.read_bytes()
    args = ("encode", data, "-m", tiny_model_path, "--max-error", 0, "-o", out, "--force")
    phase = _write_phase(args, work)
    for _ in range(KILLS):
        out.write_bytes(b"old contents")
        _kill_while_writing(args, work, rng.uniform(0, 1.2 * phase))
        assert out.read_bytes() in (b"old contents", new)
    assert _write_phase(args, work) and out.read_bytes() == new
    assert os.listdir(work) == ["out.aez"], "the next run removes what killed runs left"


def test_a_new_folder_is_absent_or_complete_after_kill_9(setting, tiny_model_path) -> None:
    root, _, folder_aez, _ = setting
    work = root / "newfolder"
    work.mkdir()
    complete = work / "complete"
    phase = _write_phase(("decode", folder_aez, "-m", tiny_model_path, "-o", complete), work)
    want = _tree(complete)
    rng = random.Random(1)
    for k in range(KILLS):
        out = work / f"out{k}"
        _kill_while_writing(("decode", folder_aez, "-m", tiny_model_path, "-o", out), work,
                            rng.uniform(0, 1.2 * phase))
        assert not out.exists() or _tree(out) == want
    proc = _aezip("decode", folder_aez, "-m", tiny_model_path, "-o", work / "out0", "--force")
    proc.communicate()
    assert proc.returncode == 0 and not [n for n in os.listdir(work) if n.startswith(".out0.")]


def test_files_in_an_existing_folder_are_each_old_or_new_after_kill_9(setting, tiny_model_path) -> None:
    root, _, folder_aez, _ = setting
    work = root / "existing"
    work.mkdir()
    new_dir = work / "new"
    _write_phase(("decode", folder_aez, "-m", tiny_model_path, "-o", new_dir), work)
    new = _tree(new_dir)
    out = work / "out"
    out.mkdir()
    old = {name: b"old " + name.encode() for name in new}
    rng = random.Random(2)
    args = ("decode", folder_aez, "-m", tiny_model_path, "-o", out, "--force")
    phase = _write_phase(args, out)
    for _ in range(KILLS):
        for name, data in old.items():
            (out / name).write_bytes(data)
        (out / "mine.txt").write_text("not aezip's")
        _kill_while_writing(args, out, rng.uniform(0, 1.2 * phase))
        got = {n: b for n, b in _tree(out).items() if not n.endswith(".aeztmp")}
        assert got.pop("mine.txt") == b"not aezip's"
        assert set(got) == set(new) and all(got[n] in (old[n], new[n]) for n in got)
