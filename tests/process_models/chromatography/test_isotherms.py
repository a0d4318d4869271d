"""Isotherms: kinetic forms vanish at equilibrium; rapid-equilibrium derivatives solve (I + F dq*/dc) dc/dt = R."""

from __future__ import annotations

import casadi as ca
import numpy as np
import pytest

from process_models.chromatography.isotherms import (
    IsothermError,
    LangmuirIsotherm,
    LinearIsotherm,
    StericMassActionIsotherm,
    isotherm_from_mapping,
)

COMPS = ("a", "b", "c")


def _params(iso, comps):
    return {p.name: ca.SX(p.value) for p in iso.parameters(comps)}


def _evaluate(exprs):
    return np.array([float(ca.evalf(e)) for e in exprs])


@pytest.mark.parametrize("iso", [
    LinearIsotherm((1.5, 2.0, 0.5), (1.0, 2.0, 4.0)),
    LangmuirIsotherm((1.0, 3.0, 0.2), (2.0, 1.0, 1.0), (10.0, 12.0, 8.0)),
])
def test_kinetic_rates_vanish_at_the_equilibrium_loading(iso):
    liquid = [0.7, 1.3, 2.1]
    bound = iso.equilibrium_bound(liquid, COMPS)
    rates = _evaluate(iso.binding_rates([ca.SX(v) for v in liquid], [ca.SX(v) for v in bound], _params(iso, COMPS),
                                        COMPS))
    assert np.max(np.abs(rates)) < 1e-12
    off = iso.binding_rates([ca.SX(v) for v in liquid], [ca.SX(v * 0.5) for v in bound], _params(iso, COMPS), COMPS)
    assert np.all(_evaluate(off) > 0)  # below equilibrium loading the solid takes up solute


@pytest.mark.parametrize("iso", [
    LinearIsotherm((1.5, 2.0, 0.5), (1.0, 2.0, 4.0)),
    LangmuirIsotherm((1.0, 3.0, 0.2), (2.0, 1.0, 1.0), (10.0, 12.0, 8.0)),
])
def test_rapid_equilibrium_derivatives_solve_the_capacity_system(iso):
    phase_ratio = 1.7
    c = ca.SX.sym("c", 3)
    p = _params(iso, COMPS)
    q = ca.vertcat(*[ca.SX(v) if isinstance(v, float) else v for v in
                     _equilibrium_symbolic(iso, [c[i] for i in range(3)], p)])
    jac = ca.Function("j", [c], [ca.jacobian(q, c)])
    point = np.array([0.4, 1.1, 2.5])
    transport = np.array([0.3, -0.8, 1.2])
    expected = np.linalg.solve(np.eye(3) + phase_ratio * np.asarray(jac(point)), transport)
    got = _evaluate(iso.rapid_equilibrium_derivatives([ca.SX(v) for v in point], [ca.SX(v) for v in transport],
                                                      ca.SX(phase_ratio), p, COMPS))
    np.testing.assert_allclose(got, expected, rtol=1e-12)


def _equilibrium_symbolic(iso, c, p):
    if isinstance(iso, LinearIsotherm):
        return [p[f"adsorption_rate_{n}"] / p[f"desorption_rate_{n}"] * c[i] for i, n in enumerate(COMPS)]
    k = [p[f"adsorption_rate_{n}"] / p[f"desorption_rate_{n}"] for n in COMPS]
    s = 1 + sum(k[i] * c[i] for i in range(3))
    return [p[f"capacity_{n}"] * k[i] * c[i] / s for i, n in enumerate(COMPS)]


def test_sma_conserves_ionic_capacity_and_follows_brooks_cramer_equilibrium():
    comps = ("salt", "p1", "p2")
    iso = StericMassActionIsotherm((0.0, 4.7, 5.29), (0.0, 11.83, 10.6), (0.0, 35.5, 1.59), (0.0, 1000.0, 1000.0),
                                   1200.0)
    p = _params(iso, comps)
    salt, c1, c2 = 80.0, 0.01, 0.02
    q1, q2 = 3.0, 1.0
    q_salt = 1200.0 - 4.7 * q1 - 5.29 * q2
    rates = _evaluate(iso.binding_rates([ca.SX(salt), ca.SX(c1), ca.SX(c2)], [ca.SX(q_salt), ca.SX(q1), ca.SX(q2)],
                                        p, comps))
    # bound salt moves against the proteins' charges: d/dt (q_salt + sum nu_i q_i) = 0
    assert rates[0] + 4.7 * rates[1] + 5.29 * rates[2] == pytest.approx(0.0, abs=1e-9 * np.max(np.abs(rates)))
    # Brooks & Cramer equilibrium: q_i = (k_a/k_d) c_i (qbar_0 / c_salt)^nu_i
    free = 1200.0 - (4.7 + 11.83) * q1 - (5.29 + 10.6) * q2
    expected1 = 35.5 * c1 * free**4.7 - 1000.0 * q1 * salt**4.7
    assert rates[1] == pytest.approx(expected1, rel=1e-12)


def test_isotherm_from_mapping_validates_keys_and_sizes():
    iso = isotherm_from_mapping({"kind": "langmuir", "adsorption_rate_m3_per_mol_s": [1.0],
                                 "desorption_rate_per_s": [1.0], "capacity_mol_per_m3": [5.0]}, ("x",))
    assert isinstance(iso, LangmuirIsotherm)
    with pytest.raises(IsothermError, match="kind"):
        isotherm_from_mapping({"kind": "freundlich"}, ("x",))
    with pytest.raises(IsothermError, match="unknown key"):
        isotherm_from_mapping({"kind": "linear", "adsorption_rate_per_s": [1.0], "desorption_rate_per_s": [1.0],
                               "henry": 2}, ("x",))
    with pytest.raises(IsothermError, match="one value per component"):
        isotherm_from_mapping({"kind": "linear", "adsorption_rate_per_s": [1.0, 2.0],
                               "desorption_rate_per_s": [1.0]}, ("x",))
    with pytest.raises(IsothermError, match="salt"):
        StericMassActionIsotherm((0.0,), (0.0,), (0.0,), (0.0,), 1200.0).check(("salt",))
