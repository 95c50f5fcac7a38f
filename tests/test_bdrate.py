"""BD-rate on synthetic curves whose answer is known in closed form."""
from __future__ import annotations

import math

import numpy as np
import pytest

from aezip.bench.bdrate import METHODS, bd_rate, frontier, psnr_gaps

PSNR = [20.0, 24.0, 28.0, 32.0, 36.0]


@pytest.mark.parametrize("method", METHODS)
def test_a_constant_rate_ratio_is_the_bd_rate(method) -> None:
    anchor = [(0.1 * math.exp(0.15 * p + 0.002 * p * p), p) for p in PSNR]
    test = [(0.8 * r, p) for r, p in anchor]
    assert bd_rate(anchor, test, method) == pytest.approx(-20.0, abs=1e-9)
    assert bd_rate(test, anchor, method) == pytest.approx(25.0, abs=1e-9)


@pytest.mark.parametrize("method", METHODS)
def test_a_psnr_shift_of_a_log_linear_curve(method) -> None:
    """log r = a + b p; the test curve reaches each PSNR 1.5 dB cheaper: BD-rate = exp(-1.5 b) - 1, over the common
    range only (the test's points extend beyond the anchor's)."""
    b = 0.2
    anchor = [(math.exp(-6 + b * p), p) for p in PSNR]
    test = [(math.exp(-6 + b * (p - 1.5)), p) for p in [18.0, *PSNR, 40.0]]
    assert bd_rate(anchor, test, method) == pytest.approx((math.exp(-1.5 * b) - 1) * 100, abs=1e-9)


def test_cubic_method_integrates_a_cubic_exactly() -> None:
    """Four points per curve: the cubic fit interpolates, so the answer is the closed-form integral."""
    fa = lambda p: -3 + 0.1 * p + 0.003 * (p - 25) ** 2 + 1e-4 * (p - 25) ** 3   # noqa: E731
    ft = lambda p: fa(p) - 0.05 * (p - 20)                                          # noqa: E731
    anchor = [(math.exp(fa(p)), p) for p in (20, 24, 28, 32)]
    test = [(math.exp(ft(p)), p) for p in (22, 26, 30, 34)]
    lo, hi = 22.0, 32.0
    mean_diff = -0.05 * ((hi - 20) ** 2 - (lo - 20) ** 2) / 2 / (hi - lo)
    assert bd_rate(anchor, test, "cubic") == pytest.approx((math.exp(mean_diff) - 1) * 100, abs=1e-7)
    assert bd_rate(anchor, test, "pchip") == pytest.approx((math.exp(mean_diff) - 1) * 100, abs=0.2)


def test_no_common_range_or_too_few_points_is_none() -> None:
    anchor = [(0.1, 20.0), (0.2, 22.0)]
    assert bd_rate(anchor, [(0.3, 25.0), (0.5, 28.0)]) is None
    assert bd_rate(anchor, [(0.15, 21.0)]) is None
    assert bd_rate(anchor, [(0.15, float("inf")), (0.2, float("inf"))]) is None
    with pytest.raises(ValueError, match="method"):
        bd_rate(anchor, anchor, "linear")


def test_frontier_drops_dominated_and_lossless_points() -> None:
    rates, psnrs = frontier([(0.3, 25.0), (0.1, 20.0), (0.2, 19.0), (0.4, float("inf")), (0.3, 26.0), (0.5, 24.0)])
    assert rates.tolist() == [0.1, 0.3] and psnrs.tolist() == [20.0, 26.0]
    assert np.all(np.diff(psnrs) > 0)


def test_psnr_gaps_are_measured_at_each_test_points_own_rate() -> None:
    """An anchor linear in log(rate): a test point's gap is its PSNR minus the line's at its rate; a point outside
    the anchor's rates, or with an infinite PSNR, has no gap; a dominated anchor point is not interpolated."""
    anchor = [(0.1, 20.0), (0.4, 24.0), (0.2, 19.5), (1.6, 28.0)]        # (0.2, 19.5) is dominated by (0.1, 20)
    test = [(0.2, 23.5), (0.8, 27.0), (0.05, 19.0), (3.2, 30.0), (0.3, float("inf"))]
    gaps = dict(psnr_gaps(anchor, test))
    assert list(gaps) == [0.05, 0.2, 0.8, 3.2]
    assert gaps[0.2] == pytest.approx(23.5 - 22.0, abs=1e-12)          # halfway (in log rate) from 20 to 24 dB
    assert gaps[0.8] == pytest.approx(27.0 - 26.0, abs=1e-12)
    assert gaps[0.05] is None and gaps[3.2] is None
    assert psnr_gaps([], test)[0] == (0.05, None)
