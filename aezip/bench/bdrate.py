"""Bjontegaard delta rate (BD-rate): the average rate difference of two rate-distortion curves at equal PSNR.

Each curve is a set of (bits/pixel, PSNR dB) points. Points with an infinite PSNR (lossless) are dropped, and so is
every point another point of the same curve beats (no more bits for at least as much PSNR): what is left is the
curve's efficient frontier, on which log(rate) increases with PSNR. Over the PSNR range both frontiers cover,
[max of the lowest PSNRs, min of the highest], log(rate) as a function of PSNR is integrated for each curve and the
difference of the averages gives BD-rate = (exp(mean log r_test - mean log r_anchor) - 1) x 100 %: negative means
the test codec needs fewer bits for the same PSNR. `psnr_gaps` answers the other question, point by point: how many
dB each test point has over the anchor at its own rate.

Two interpolations of log(rate) over PSNR:
- "pchip" (the default): the piecewise cubic Hermite interpolant through every frontier point with Fritsch-Carlson
  monotone slopes (as the piecewise-cubic BD-rate of VCEG-AL22 / JVET's common test conditions does), integrated
  exactly segment by segment. It passes through the measured points, so curves with many points (a quality ladder
  of 23 levels) are followed rather than smoothed.
- "cubic": Bjontegaard's original VCEG-M33 method, one least-squares polynomial of degree min(3, points - 1) per
  curve, integrated exactly. With the usual four points per curve it interpolates too; with many points it is a
  smooth fit that can miss the curve's ends.
"""
from __future__ import annotations

import math
from typing import Iterable

import numpy as np

METHODS = ("pchip", "cubic")


def frontier(points: Iterable[tuple[float, float]]) -> tuple[np.ndarray, np.ndarray]:
    """The efficient points (rate, PSNR) of a curve, sorted by PSNR: finite, positive rate, and no other point with
    at most its rate and at least its PSNR."""
    pts = sorted((float(r), float(p)) for r, p in points if math.isfinite(p) and r > 0)
    keep: list[tuple[float, float]] = []
    for r, p in pts:                     # by rate ascending: keep a point only if it beats every cheaper one
        if not keep or p > keep[-1][1]:
            if keep and r == keep[-1][0]:
                keep.pop()
            keep.append((r, p))
    return np.array([r for r, _ in keep]), np.array([p for _, p in keep])


def _pchip_slopes(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Fritsch-Carlson slopes: harmonic means of neighbouring secants, zero at a local extremum."""
    h, delta = np.diff(x), np.diff(y) / np.diff(x)
    d = np.zeros_like(y)
    if len(x) == 2:
        return np.full_like(y, delta[0])
    for k in range(1, len(x) - 1):
        if delta[k - 1] * delta[k] > 0:
            w1, w2 = 2 * h[k] + h[k - 1], h[k] + 2 * h[k - 1]
            d[k] = (w1 + w2) / (w1 / delta[k - 1] + w2 / delta[k])
    d[0] = _end_slope(h[0], h[1], delta[0], delta[1])
    d[-1] = _end_slope(h[-1], h[-2], delta[-1], delta[-2])
    return d


def _end_slope(h0: float, h1: float, d0: float, d1: float) -> float:
    """The one-sided three-point slope at an end, kept monotone (as Fritsch-Carlson / SciPy's PCHIP do)."""
    e = ((2 * h0 + h1) * d0 - h0 * d1) / (h0 + h1)
    if np.sign(e) != np.sign(d0):
        return 0.0
    if np.sign(d0) != np.sign(d1) and abs(e) > abs(3 * d0):
        return 3 * d0
    return e


def _pchip_integral(x: np.ndarray, y: np.ndarray, lo: float, hi: float) -> float:
    """The integral over [lo, hi] (inside x's range) of the monotone piecewise cubic Hermite interpolant."""
    d = _pchip_slopes(x, y)
    total = 0.0
    for k in range(len(x) - 1):
        a, b = max(lo, x[k]), min(hi, x[k + 1])
        if a >= b:
            continue
        h = x[k + 1] - x[k]
        # Hermite cubic on t in [0, 1]: y0 h00 + h d0 h10 + y1 h01 + h d1 h11; integrate its antiderivative
        total += _hermite_antiderivative(y[k], y[k + 1], d[k] * h, d[k + 1] * h, (b - x[k]) / h) * h
        total -= _hermite_antiderivative(y[k], y[k + 1], d[k] * h, d[k + 1] * h, (a - x[k]) / h) * h
    return total


def _hermite_antiderivative(y0: float, y1: float, m0: float, m1: float, t: float) -> float:
    """The integral from 0 to t of the cubic Hermite basis combination (unit interval)."""
    h00 = t ** 4 / 2 - t ** 3 + t
    h10 = t ** 4 / 4 - 2 * t ** 3 / 3 + t ** 2 / 2
    h01 = -t ** 4 / 2 + t ** 3
    h11 = t ** 4 / 4 - t ** 3 / 3
    return y0 * h00 + m0 * h10 + y1 * h01 + m1 * h11


def _cubic_integral(x: np.ndarray, y: np.ndarray, lo: float, hi: float) -> float:
    fit = np.polyint(np.polyfit(x, y, min(3, len(x) - 1)))
    return float(np.polyval(fit, hi) - np.polyval(fit, lo))


def bd_rate(anchor: Iterable[tuple[float, float]], test: Iterable[tuple[float, float]],
            method: str = "pchip") -> float | None:
    """BD-rate (%) of `test` against `anchor`, points (bits/pixel, PSNR dB); None where their frontiers have fewer
    than two points each or no common PSNR range."""
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    (ra, pa), (rt, pt) = frontier(anchor), frontier(test)
    if len(pa) < 2 or len(pt) < 2:
        return None
    lo, hi = max(pa[0], pt[0]), min(pa[-1], pt[-1])
    if lo >= hi:
        return None
    integral = _pchip_integral if method == "pchip" else _cubic_integral
    diff = (integral(pt, np.log(rt), lo, hi) - integral(pa, np.log(ra), lo, hi)) / (hi - lo)
    return float((math.exp(diff) - 1) * 100)


def psnr_gaps(anchor: Iterable[tuple[float, float]], test: Iterable[tuple[float, float]]
              ) -> list[tuple[float, float | None]]:
    """(rate, PSNR gap dB) for every finite test point, sorted by rate: its PSNR minus the anchor frontier's at its
    rate, linear in log(rate) between the anchor's efficient points; None outside the anchor's rates (no
    extrapolation) or where the anchor has no point."""
    ra, pa = frontier(anchor)
    gaps: list[tuple[float, float | None]] = []
    for r, p in sorted((float(r), float(p)) for r, p in test if math.isfinite(p) and r > 0):
        inside = len(ra) > 0 and ra[0] <= r <= ra[-1]
        gaps.append((r, p - float(np.interp(math.log(r), np.log(ra), pa)) if inside else None))
    return gaps
