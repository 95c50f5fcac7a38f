"""Hostile .aez and model files (tests/fuzz.py crafts them): one-line errors only, nothing written outside."""
from __future__ import annotations

import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aezip.files.source import Source, output_names
from aezip.errors import FormatError, InputError
from aezip.files.header import REQUIRED_FIELDS, validate_header
from tests.fuzz import fuzz


def check_outcome(outcome) -> None:
    s = outcome.summary()
    assert s["tracebacks"] == 0, s["first_tracebacks"]
    assert s["outside_writes"] == 0, outcome.outside_writes[:3]
    assert s["over_time_limit"] == 0, outcome.slow[:3]
    assert set(s["exit_codes"]) <= {0, 1}
    assert s["exit_codes"].get(1, 0) > s["cases"] // 2     # most crafted files are refused, not decoded


def test_fuzz_quick(tmp_path) -> None:
    check_outcome(fuzz(aez_cases=250, model_cases=80, seed=1, workdir=tmp_path))


@pytest.mark.fuzz
def test_fuzz_long(tmp_path) -> None:
    cases = int(os.environ.get("AEZIP_FUZZ_CASES", "10000"))
    check_outcome(fuzz(aez_cases=cases, model_cases=max(1, cases // 10), seed=int(os.environ.get("AEZIP_FUZZ_SEED", "0")),
                workdir=tmp_path))


_json = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
                     lambda kids: st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=8), kids, max_size=4),
                     max_leaves=20)
_header_keys = st.sampled_from(sorted(REQUIRED_FIELDS) + ["names_zlib", "names", "format", "gzip"])


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(_header_keys, _json, max_size=14) | _json)
def test_any_json_header_is_accepted_or_refused_with_a_format_error(h) -> None:
    try:
        checked = validate_header(h, decoder="fixed-point-v1", entropy=("ans-categorical-per-dim",), residual=("r",))
    except FormatError:
        return
    assert checked is h and isinstance(h["shape"], list)


@settings(max_examples=300, deadline=None)
@given(_json, st.integers(0, 5))
def test_any_source_entry_gives_plain_names_or_an_input_error(d, images) -> None:
    try:
        source = Source.from_dict(d, images)
    except InputError:
        return
    for name in output_names(source.names):
        assert "/" not in name and "\\" not in name and name not in (".", "..") and name.endswith(".png")


@settings(max_examples=300, deadline=None)
@given(st.lists(st.text(min_size=1, max_size=12).filter(lambda n: "/" not in n), unique=True, max_size=12))
def test_output_names_are_distinct_plain_pngs(names) -> None:
    out = output_names(names)
    assert len({n.casefold() for n in out}) == len(names)
    assert all(n.endswith(".png") and "/" not in n and n not in (".", "..") for n in out)
