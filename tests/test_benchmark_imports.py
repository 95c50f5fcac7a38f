"""The benchmark scripts' imports from aezip resolve: they run rarely (some only on a GPU machine), so a renamed or
folded function must fail here, not in the one run that needed them."""
from __future__ import annotations

import ast
import importlib
import importlib.util
from pathlib import Path

import pytest

SCRIPTS = sorted((Path(__file__).resolve().parent.parent / "benchmarks").glob("*.py"))


def _aezip_imports(path: Path) -> list[tuple[str, str]]:
    """(module, name) of every `from aezip... import name` anywhere in the file, function bodies included."""
    return [(node.module, alias.name) for node in ast.walk(ast.parse(path.read_text()))
            if isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").split(".")[0] == "aezip"
            for alias in node.names]


@pytest.mark.parametrize("path", SCRIPTS, ids=[p.name for p in SCRIPTS])
def test_benchmark_imports_resolve(path: Path) -> None:
    for module, name in _aezip_imports(path):
        mod = importlib.import_module(module)
        assert hasattr(mod, name) or importlib.util.find_spec(f"{module}.{name}") is not None, \
            f"{path.name}: from {module} import {name}"


def test_a_folded_name_is_caught(tmp_path: Path) -> None:
    script = tmp_path / "old.py"
    script.write_text("def main():\n    from aezip.coding.pixelstream import effort_methods\n")
    (module, name), = _aezip_imports(script)
    assert not hasattr(importlib.import_module(module), name)
