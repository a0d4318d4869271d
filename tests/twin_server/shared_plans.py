"""The control plans of a test's line, built once per test process for the same unit options and shared by the
twins the tests start, as ``serve`` builds its plans once and hands them to :class:`~twin_server.server.TwinServer`
(a plan's NMPC takes seconds of CPU to build; StartBatch resets what a batch changes in it: a fresh EKF, the NMPC's
warm start).

Two twins of one process never run a batch on one plan at the same time: the tests start one twin at a time (a
module-scoped line and a test's own line hold different options, or the test runs none of them in MPC mode).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from twin_server.config import LineConfig, UnitConfig
from twin_server.line_build import build_units

if TYPE_CHECKING:
    from controllers.control_plan import ControlPlan

__all__ = ["shared_plans"]

_BUILT: dict[str, ControlPlan] = {}


def _key(unit: UnitConfig) -> str:
    """What a plan is built from (:func:`twin_server.line_build.build_units`): kind, ``[model]``, ``[control]`` and
    the tag names; not the PLC connection (each bench has its own ports)."""
    return json.dumps([unit.kind, dict(unit.model), dict(unit.control), sorted(t.name for t in unit.tags)],
                      sort_keys=True, default=str)


def shared_plans(config: LineConfig) -> dict[str, ControlPlan]:
    """The plans of ``config``'s controlled units (unit name -> plan), each built at most once per process; a
    unit's build failure raises :class:`~twin_server.config.ConfigError` as the twin's own build would."""
    plans: dict[str, ControlPlan] = {}
    missing = [u for u in config.units if u.control and _key(u) not in _BUILT]
    if missing:
        from plc_adapters.config_issues import ConfigError

        built = build_units(missing, config.source)
        if built.issues:
            raise ConfigError(built.issues)
        for unit in missing:
            if unit.name in built.plans:  # a kind without a control plan builds none
                _BUILT[_key(unit)] = built.plans[unit.name]
    for unit in config.units:
        if unit.control and _key(unit) in _BUILT:
            plans[unit.name] = _BUILT[_key(unit)]
    return plans
