"""The first NMPC solve of a batch started on a vessel that still holds the previous batch (issue #7).

Recorded in the HIL (physics crystallizer at 400x, pilot line, target 400 µm, 7200 s batch, jacket limits
15-40 °C): after a finished batch, StartBatch again; the EKF's first correction (fresh-seed initial estimate
against FBRM readings of the grown crystals) gave this estimate, with the jacket left at 20.8 °C. IPOPT
stopped at iteration 0 with ``Invalid_Number_Detected``: the crystallizer NMPC scaled its states by the
default floor of 1 while the moments are 1e-10..1e6 in SI units, so the d43 target's Hessian reached ~1e23
and overflowed at the first iterate. The plan now scales states by the seeded state's magnitudes.
"""

from __future__ import annotations

import controllers.crystallization  # noqa: F401 - registers the crystallizer plan
from controllers.plan_registry import control_plan_for_kind
from tests.hil.hil_helpers import pilot_line_unit

ESTIMATE = {"solute_concentration": 0.2614938860795226, "mu0": 490722.0142508015, "mu1": 425.219578774763,
            "mu2": 0.005771950914360208, "mu3": 2.857099723260131e-06, "mu4": 2.94783235981909e-10,
            "temperature": 295.84836229000524}
PARAMETERS = {"growth_rate_constant": 2.8157104285634464e-05,
              "secondary_nucleation_rate_constant": 75279119440.70515}
JACKET_K = 293.98205223083494


def test_first_solve_after_a_finished_batch_on_the_recorded_estimate_succeeds():
    _kind, model, tags = pilot_line_unit("crystallizer")
    control = {"time_scale": 400.0, "batch_duration_s": 7200.0, "jacket_limits_c": [15.0, 40.0],
               "target_d43_um": 400.0}
    plan = control_plan_for_kind("crystallizer").build_plan(model, control, "units.crystallizer.control",
                                                            {t.name for t in tags})
    result = plan.nmpc.step(60.0, ESTIMATE, {"jacket_temperature": JACKET_K}, {"d43": 400e-6},
                            parameters=PARAMETERS, batch_end_s=7200.0)
    assert result.success, result.status
