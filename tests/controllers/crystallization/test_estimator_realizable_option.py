"""The crystallizer's ``estimator_realizable_moments`` control option: it reaches the EKF (step truncation on the
moments' realizability, off by default), and a value that is not a boolean is refused naming the key."""

from __future__ import annotations

import controllers.crystallization  # noqa: F401 - registers the crystallizer plan
from controllers.plan_registry import control_plan_for_kind
from tests.hil.hil_helpers import pilot_line_unit

PREFIX = "units.crystallizer.control"


def test_the_option_reaches_the_estimator_and_is_off_by_default():
    _kind, model, tags = pilot_line_unit("crystallizer")
    spec = control_plan_for_kind("crystallizer")
    names = {t.name for t in tags}
    on = spec.build_plan(model, {"estimator_realizable_moments": True}, PREFIX, names)
    off = spec.build_plan(model, {}, PREFIX, names)
    assert on.make_estimator().keep_state_constraints is True
    assert off.make_estimator().keep_state_constraints is False
    assert on.make_estimator().model.state_constraint_names  # the moments declare their realizability


def test_a_non_boolean_value_is_refused_naming_the_key():
    _kind, _model, tags = pilot_line_unit("crystallizer")
    for bad in (1, "yes", 0.0):
        _options, issues = control_plan_for_kind("crystallizer").parse_options(
            {"estimator_realizable_moments": bad}, PREFIX, {t.name for t in tags})
        assert [key for key, _got, _expected in issues] == [f"{PREFIX}.estimator_realizable_moments"]
