"""The crystallizer's ``cv_weight`` control option (issue 18 item 6): it weights the NMPC's soft batch-end bound
CV <= the recipe's CV, and a value that is not a positive number is refused naming the key."""

from __future__ import annotations

import controllers.crystallization  # noqa: F401 - registers the crystallizer plan
from controllers.plan_registry import control_plan_for_kind
from tests.hil.hil_helpers import pilot_line_unit

PREFIX = "units.crystallizer.control"


def test_cv_weight_reaches_the_nmpc_cv_bound():
    _kind, model, tags = pilot_line_unit("crystallizer")
    spec = control_plan_for_kind("crystallizer")
    plan = spec.build_plan(model, {"cv_weight": 2500.0, "jacket_limits_c": [15.0, 40.0]}, PREFIX,
                           {t.name for t in tags})
    (cv_bound,) = [c for c in plan.nmpc.config.constraints if c.output == "cv"]
    assert cv_bound.weight == 2500.0 and cv_bound.terminal and 0 < cv_bound.upper < 2
    options, issues = spec.parse_options({}, PREFIX, {t.name for t in tags})
    assert not issues and options.cv_weight == 100.0, "default unchanged"


def test_a_non_positive_cv_weight_is_refused_naming_the_key():
    _kind, _model, tags = pilot_line_unit("crystallizer")
    for bad in (0, -5.0, "high"):
        _options, issues = control_plan_for_kind("crystallizer").parse_options({"cv_weight": bad}, PREFIX,
                                                                                {t.name for t in tags})
        assert [key for key, _got, _expected in issues] == [f"{PREFIX}.cv_weight"]
