"""Decoding needs numpy and the entropy coder only: `aezip decode`, `aezip info` and `--help` never import torch."""
from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

GOLDEN = Path(__file__).parent / "data" / "golden-e3.aez"


@pytest.mark.parametrize("args", [["decode", str(GOLDEN), "-o", "{out}"], ["decode", str(GOLDEN), "-o", "{out}",
                                   "--range", "3:12"], ["info", str(GOLDEN)], ["info", "--json", str(GOLDEN)],
                                  ["--help"], ["decode", "--help"]])
def test_command_runs_without_importing_torch(tmp_path, args):
    argv = [a.format(out=tmp_path / "out.npy") for a in args]
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
    if args[0] == "decode" and "--help" not in args:
        assert (tmp_path / "out.npy").exists()
