"""Decoding needs numpy and the entropy coder only: `aezip decode`, `aezip info` and `--help` never import torch."""
from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from aezip.codec import encode_dataset
from aezip.files.data import open_dataset
from aezip.files.modelfile import load_model
from tests.conftest import write_idx

GOLDEN = Path(__file__).parent / "data" / "golden-e3.aez"


def assert_runs_without_torch(argv: list[str]) -> None:
    """Run the CLI with `argv` in a fresh interpreter; it must succeed and leave torch unimported."""
    code = textwrap.dedent(f"""
        import sys
        from aezip.cli.main import main
        try:
            main({argv!r})
        except SystemExit as exc:
            assert not exc.code, exc.code
        print("TORCH", "torch" in sys.modules)
    """)
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip().splitlines()[-1] == "TORCH False"


@pytest.mark.parametrize("args", [["decode", str(GOLDEN), "-o", "{out}"], ["decode", str(GOLDEN), "-o", "{out}",
                                   "--range", "3:12"], ["info", str(GOLDEN)], ["info", "--json", str(GOLDEN)],
                                  ["--help"], ["decode", "--help"]])
def test_command_runs_without_importing_torch(tmp_path, args):
    assert_runs_without_torch([a.format(out=tmp_path / "out.npy") for a in args])
    if args[0] == "decode" and "--help" not in args:
        assert (tmp_path / "out.npy").exists()


def test_decoding_a_max_error_file_of_the_current_format_imports_no_torch(tmp_path, tiny_model_path, sample_images):
    src = write_idx(tmp_path / "x-idx3-ubyte", sample_images[:20])
    aez = tmp_path / "x.aez"
    encode_dataset(open_dataset(src), load_model(tiny_model_path), aez, max_error=2)
    assert_runs_without_torch(["decode", str(aez), "-o", str(tmp_path / "y-idx3-ubyte"), "-m", str(tiny_model_path)])
    assert (tmp_path / "y-idx3-ubyte").exists()
