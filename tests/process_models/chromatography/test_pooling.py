"""Pooling: yield and purity between cut points, on curves with known integrals."""

from __future__ import annotations

import numpy as np
import pytest

from process_models.chromatography.pooling import PoolingError, cut_points_by_threshold, pool_fraction

TIMES = np.linspace(0.0, 100.0, 1001)


def _box(start: float, end: float, height: float) -> np.ndarray:
    return np.where((TIMES >= start) & (TIMES <= end), height, 0.0)


def test_yield_and_purity_of_overlapping_boxes():
    curves = {"product": _box(20.0, 40.0, 1.0), "impurity": _box(35.0, 55.0, 0.5), "salt": np.full_like(TIMES, 50.0)}
    pool = pool_fraction(TIMES, curves, "product", 22.0, 38.0, ignore=("salt",))
    # product 16 of 20.1 collected (trapezoids of the sampled box add a 0.1 s ramp); impurity ~3 s * 0.5 inside
    assert pool.yield_fraction == pytest.approx(16.0 / 20.1, rel=1e-9)
    assert pool.purity_fraction == pytest.approx(16.0 / (16.0 + 1.5), rel=2e-3)
    assert pool.amounts_mol["salt"] == pytest.approx(50.0 * 16.0, rel=1e-9)
    with_flow = pool_fraction(TIMES, curves, "product", 22.0, 38.0, ignore=("salt",), flow_rate_m3_per_s=2e-8)
    assert with_flow.amounts_mol["product"] == pytest.approx(2e-8 * pool.amounts_mol["product"])
    loaded = pool_fraction(TIMES, curves, "product", 22.0, 38.0, ignore=("salt",),
                           reference_amounts={"product": 32.0})
    assert loaded.yield_fraction == pytest.approx(0.5, rel=2e-3)


def test_cut_points_between_samples_are_interpolated():
    ramp = {"p": TIMES.copy()}
    pool = pool_fraction(TIMES, ramp, "p", 10.05, 20.05)
    assert pool.amounts_mol["p"] == pytest.approx(0.5 * (20.05**2 - 10.05**2), rel=1e-9)


def test_threshold_cut_points_bracket_a_gaussian_peak():
    peak = np.exp(-0.5 * ((TIMES - 50.0) / 5.0) ** 2)
    start, end = cut_points_by_threshold(TIMES, peak, 0.5)
    half_width = 5.0 * np.sqrt(2 * np.log(2))
    assert start == pytest.approx(50.0 - half_width, abs=1e-3)
    assert end == pytest.approx(50.0 + half_width, abs=1e-3)


def test_bad_requests_are_refused():
    curves = {"p": _box(10, 20, 1.0), "s": np.ones_like(TIMES)}
    with pytest.raises(PoolingError, match="cut points"):
        pool_fraction(TIMES, curves, "p", 30.0, 20.0)
    with pytest.raises(PoolingError, match="unknown target"):
        pool_fraction(TIMES, curves, "q", 10.0, 20.0)
    with pytest.raises(PoolingError, match="shape"):
        pool_fraction(TIMES, {"p": np.ones(3)}, "p", 10.0, 20.0)
    with pytest.raises(PoolingError, match="ignore"):
        pool_fraction(TIMES, curves, "p", 10.0, 20.0, ignore=("p",))
