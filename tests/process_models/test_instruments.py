"""Instrument models add readings to a declared model without touching its dynamics."""

import numpy as np
import pytest

from process_models.crystallization.crystallizer import crystallizer_moments_model, moments_initial_state, seed_moments
from process_models.declaration import compile_model
from process_models.instruments import fbrm_instruments, with_instruments


def test_fbrm_readings_follow_their_stated_measurement_model():
    base = compile_model(crystallizer_moments_model())
    model = compile_model(with_instruments(crystallizer_moments_model(), fbrm_instruments(0.05, 2.0 / 3.0)))
    p = base.declaration.parameter_values()
    x = base.pack_states(moments_initial_state(0.3, seed_moments(0.0035, 150e-6, 15e-6, p["crystal_density"]), 313.0))
    u = base.pack_inputs({"jacket_temperature": 300.0})
    y_base = base.unpack_outputs(np.asarray(base.output(x, u, base.pack_parameters(), 0.0)).ravel())
    y = model.unpack_outputs(np.asarray(model.output(x, u, model.pack_parameters(), 0.0)).ravel())
    assert y["chord_count_rate"][0] == pytest.approx(0.05 * y_base["mu1"][0] * p["solvent_density"])
    assert y["mean_chord_length"][0] == pytest.approx(2.0 / 3.0 * y_base["d32"][0])
    xdot_base = np.asarray(base.rhs(x, u, base.pack_parameters(), 0.0)).ravel()
    xdot = np.asarray(model.rhs(x, u, model.pack_parameters(), 0.0)).ravel()
    assert xdot == pytest.approx(xdot_base)
    assert "fbrm_count_coefficient" in model.parameter_names
