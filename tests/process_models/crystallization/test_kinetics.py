"""Crystallization kinetics: smooth supersaturation handling, SI conversion of the KDP set, rate-law behaviour."""

import math

import casadi as ca
import numpy as np
import pytest

from process_models.crystallization.kinetics import (
    growth_rate,
    nucleation_rate,
    relative_supersaturation,
    size_dependence,
    smooth_positive_part,
    solubility,
)
from process_models.crystallization.params import (
    CrystallizerParameterError,
    kinetic_parameters,
    parameter_set,
)

KDP = dict(parameter_set("kdp_water").values)


def test_smooth_positive_part_stays_within_half_width_of_max():
    eps = 1e-4
    for x in np.linspace(-0.05, 0.05, 1001):
        value = smooth_positive_part(float(x), eps)
        assert max(x, 0.0) < value <= max(x, 0.0) + eps / 2 + 1e-18
        if abs(x) > 100 * eps:
            assert abs(value - max(x, 0.0)) <= eps**2 / (4 * abs(x)) * 1.0001


def test_smooth_positive_part_has_finite_derivative_everywhere():
    x = ca.SX.sym("x")
    d = ca.Function("d", [x], [ca.jacobian(smooth_positive_part(x, 1e-4), x)])
    for value in (-1.0, -1e-4, 0.0, 1e-4, 1.0):
        assert 0.0 <= float(d(value)) <= 1.0


def test_kdp_literature_values_are_converted_to_si():
    """Gunawan et al. 2004 Table 1 units: um/s, #/(um^3 s), g/um^3 -> m/s, #/(m^3 s), kg/m^3."""
    assert KDP["growth_rate_constant"] == pytest.approx(12.21e-6, rel=1e-12)
    assert KDP["secondary_nucleation_rate_constant"] == pytest.approx(7.49e10, rel=1e-12)
    assert KDP["crystal_density"] == pytest.approx(2338.0, rel=1e-12)
    # c_sat(T) = 9.3027e-5 T^2 - 9.7629e-5 T + 0.2087 (T in degC): 25 degC -> 0.26439 g/g
    expected = 9.3027e-5 * 25.0**2 - 9.7629e-5 * 25.0 + 0.2087
    assert solubility(298.15, KDP) == pytest.approx(expected, rel=1e-12)


def test_supersaturation_is_relative_to_solubility():
    c_sat = solubility(300.0, KDP)
    assert relative_supersaturation(1.1 * c_sat, 300.0, KDP) == pytest.approx(0.1)
    assert relative_supersaturation(0.9 * c_sat, 300.0, KDP) == pytest.approx(-0.1)


def test_growth_follows_power_law_and_dissolution_only_when_undersaturated():
    p = dict(KDP, dissolution_rate_constant=1e-6, supersaturation_smoothing=1e-8)
    growth, dissolution = growth_rate(0.05, 300.0, p)
    assert growth == pytest.approx(12.21e-6 * 0.05**1.48, rel=1e-6)
    assert dissolution < 1e-12
    growth, dissolution = growth_rate(-0.05, 300.0, p)
    assert growth < 1e-15
    assert dissolution == pytest.approx(1e-6 * 0.05, rel=1e-6)


def test_growth_activation_energy_slows_growth_when_colder():
    p = dict(KDP, growth_activation_energy=40e3)
    warm, _ = growth_rate(0.05, 310.0, p)
    cold, _ = growth_rate(0.05, 290.0, p)
    assert cold / warm == pytest.approx(math.exp(-40e3 / 8.314462618 * (1 / 290.0 - 1 / 310.0)), rel=1e-9)


def test_asl_size_dependence():
    p = dict(KDP, growth_size_coefficient=1e4)
    assert size_dependence(0.0, p, 0.5) == 1.0
    assert size_dependence(3e-4, p, 0.5) == pytest.approx(2.0)


def test_secondary_nucleation_is_proportional_to_suspension_density():
    b1 = nucleation_rate(0.05, 300.0, 1e-6, KDP)
    b2 = nucleation_rate(0.05, 300.0, 2e-6, KDP)
    assert b1 == pytest.approx(7.49e10 * 0.05**2.04 * 1e-6, rel=1e-4)
    assert b2 == pytest.approx(2 * b1, rel=1e-9)
    assert nucleation_rate(-0.05, 300.0, 1e-6, KDP) < 1e-6 * b1


def test_primary_nucleation_needs_no_crystals():
    p = dict(KDP, primary_nucleation_rate_constant=1e8, primary_nucleation_order=3.0,
             homogeneous_nucleation_prefactor=1e12, homogeneous_nucleation_exponent=0.05)
    rate = nucleation_rate(0.1, 300.0, 0.0, p)
    expected = 1e8 * 0.1**3 + 1e12 * math.exp(-0.05 / math.log(1.1) ** 2)
    assert rate == pytest.approx(expected, rel=1e-5)


def test_unknown_or_out_of_range_parameter_is_named():
    names = ("growth_order", "growth_rate_constant")
    with pytest.raises(CrystallizerParameterError, match="growth_ordr"):
        kinetic_parameters("kdp_water", names, {"growth_ordr": 1.0})
    with pytest.raises(CrystallizerParameterError, match="'growth_order' = -1.0"):
        kinetic_parameters("kdp_water", names, {"growth_order": -1.0})
    with pytest.raises(CrystallizerParameterError, match="parameter_set 'sugar'"):
        parameter_set("sugar")
