"""`aezip model requantize`: a coarser integer decoder, exact like any other, with a smaller decode-side model."""
from __future__ import annotations

import numpy as np
import pytest

import aezip
from aezip.cli.main import main
from aezip.files.decodemodel import decoder_bytes, unpack
from aezip.errors import ParameterError
from aezip.files.modelfile import load_model
from aezip.coding.requantize import requantize


def test_sixteen_bits_give_the_models_own_integers_back(tiny_model_path) -> None:
    mf = load_model(tiny_model_path)
    again = requantize(mf, 16).intdec
    assert all(np.array_equal(a, b) for a, b in zip(again.weights + again.biases, mf.intdec.weights + mf.intdec.biases))
    assert again.shifts == mf.intdec.shifts and np.array_equal(again.thresholds, mf.intdec.thresholds)


def test_a_requantized_model_round_trips_and_stores_narrower_weights(tmp_path, tiny_model_path, sample_images):
    mf = load_model(tiny_model_path)
    small = requantize(mf, 6)
    assert max(int(np.abs(w).max()) for w in small.intdec.weights) <= 31
    assert min(small.intdec.shifts) < 0                  # a left shift: the coarse weights leave few fraction bits
    small.save(tmp_path / "q6.aezm")
    assert small.id != mf.id and small.info["requantized"] == {"from_model": mf.id, "decoder_weight_bits": 6}
    stored = {e[0]: e[2] for e in unpack(decoder_bytes(small))[0]["tensors"]}
    assert all(stored[f"intdec.w{i}"] == "int8" for i in range(len(small.intdec.weights)))
    assert len(decoder_bytes(small, max_error_parts=False)) < len(decoder_bytes(mf, max_error_parts=False))
    images = sample_images[:20]
    blob = aezip.compress(images, tmp_path / "q6.aezm", max_error=0, embed_model=True)
    assert np.array_equal(aezip.decompress(blob), images)


def test_weight_bits_out_of_range_are_refused(tmp_path, tiny_model_path, capsys) -> None:
    with pytest.raises(ParameterError, match="weight_bits must lie in 2..16"):
        requantize(load_model(tiny_model_path), 17)
    with pytest.raises(SystemExit) as exit_:
        main(["model", "requantize", str(tiny_model_path), "--weight-bits", "1", "-o", str(tmp_path / "x.aezm")])
    assert exit_.value.code == 1
    assert capsys.readouterr().err.startswith("aezip: error: --weight-bits must lie in 2..16")
