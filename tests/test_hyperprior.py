"""The hyperprior's entropy coding: the decoder rebuilds exactly the encoder's integer latents (escapes included),
the bytes are what the integer tables say they should cost, and the scale classes pick the nearest table scale."""
from __future__ import annotations

import math

import numpy as np
import pytest

from aezip.coding.hyperprior import (ESCAPE_LIMIT, MEAN_FRAC_BITS, SCALE_MIN, TABLE_BITS, _means_and_classes,
                                     decode, encode, make_tables, table_scales)
from aezip.coding.intconv import FloatLayer, build_integer_net

M, CZ = 6, 4


def _hyper(rng: np.random.Generator):
    """A random fixed-point hyper-synthesis: CZ hyper-latent channels -> M means and M raw scales, 2x upsampled."""
    layers = [FloatLayer("up", rng.normal(0, 0.3, (CZ, 10, 5, 5)), rng.normal(0, 0.1, 10), "relu"),
              FloatLayer("same", rng.normal(0, 0.3, (10, 2 * M, 3, 3)), rng.normal(0, 0.5, 2 * M))]
    return build_integer_net(layers, in_limit=float(ESCAPE_LIMIT), pixels=False)


def _setup(seed: int = 0):
    rng = np.random.default_rng(seed)
    hyper = _hyper(rng)
    values = np.arange(-8, 9)
    z_pmf = np.exp(-np.abs(values)[None, :] / rng.uniform(0.5, 2, (CZ, 1)))
    z_pmf /= z_pmf.sum(1, keepdims=True) * 1.001                  # a little mass outside: the escape
    tables = make_tables(z_pmf, -8, hyper.out_frac, radius=20)
    z = rng.integers(-3, 4, (5, 2, 2, CZ))
    y = rng.normal(0, 4, (5, 4, 4, M))
    return hyper, tables, y, z


def test_the_decoder_rebuilds_the_encoders_latents() -> None:
    hyper, tables, y, z = _setup()
    data, latents = encode(y, z, hyper, tables)
    assert np.array_equal(decode(data, z.shape, hyper, tables), latents)
    assert np.array_equal(latents, np.round(latents))             # integers at MEAN_FRAC_BITS
    assert np.abs(latents * 2.0 ** -MEAN_FRAC_BITS - y).max() <= 0.5 + 2 ** -MEAN_FRAC_BITS


def test_values_beyond_the_tables_escape_and_come_back() -> None:
    hyper, tables, y, z = _setup(1)
    z[0, 0, 0, 0], z[1, 1, 1, 2] = 30, -ESCAPE_LIMIT - 5       # beyond the z table; beyond the escape range: clamped
    y[2, 3, 3, 5] = 1000.0                                        # a residual far beyond the radius
    data, latents = encode(y, z, hyper, tables)
    assert np.array_equal(decode(data, z.shape, hyper, tables), latents)
    assert abs(latents[2, 3, 3, 5] * 2.0 ** -MEAN_FRAC_BITS - 1000.0) <= 0.5 + 2 ** -MEAN_FRAC_BITS


def test_bytes_cost_what_the_tables_say() -> None:
    hyper, tables, y, z = _setup(2)
    data, latents = encode(y, z, hyper, tables)
    means, classes = _means_and_classes(hyper, tables, z)
    q = ((latents - means) * 2.0 ** -MEAN_FRAC_BITS).astype(int) + tables.radius
    p_y = tables.y_counts / tables.y_counts.sum(1, keepdims=True)
    assert (q >= 0).all() and (q < tables.y_counts.shape[1] - 1).all()   # no escapes in this draw
    p_z = tables.z_counts / tables.z_counts.sum(1, keepdims=True)
    ideal = -np.log2(p_y[classes, q]).sum() - np.log2(p_z[np.arange(CZ), z + 8]).sum()
    assert ideal / 8 - 8 <= len(data) <= ideal / 8 * 1.01 + 8


def test_scale_classes_pick_the_nearest_table_scale() -> None:
    tables = make_tables(np.full((1, 3), 1 / 3), -1, raw_frac=20)
    scales = table_scales()
    assert (np.diff(tables.thresholds) > 0).all() and (tables.y_counts >= 1).all()
    for sigma in (SCALE_MIN, 0.3, 1.0, 5.0, 50.0):
        raw = math.log(math.expm1(sigma))                         # softplus^-1
        k = int(np.searchsorted(tables.thresholds, math.floor(raw * 2 ** 20), side="right"))
        assert k == int(np.argmin(np.abs(np.log(scales) - math.log(sigma))))


@pytest.mark.parametrize("sigma_class", [0, 32, 63])
def test_every_residual_table_is_a_normalised_discretized_gaussian(sigma_class: int) -> None:
    tables = make_tables(np.full((1, 3), 1 / 3), -1, raw_frac=20, radius=200)
    counts = tables.y_counts[sigma_class]
    sigma = table_scales()[sigma_class]
    p = counts / counts.sum()
    centre = p[200]
    stolen = len(counts) / 2 ** TABLE_BITS                       # what the counts >= 1 and the floors can move
    assert abs(centre - math.erf(0.5 / (sigma * math.sqrt(2)))) < stolen
