"""Control-plan registry: a unit kind (``"crystallizer"``) -> how to validate its ``[units.<unit>.control]`` table
and build its :class:`~controllers.control_plan.ControlPlan`.

A kind's control module registers itself when imported, as model modules do in
:mod:`process_models.registry`::

    register_control_plan("crystallizer", parse_options, build_crystallizer_plan)

The twin server looks plans up by kind and binds them to tags and nodes; it knows no unit kind itself.
The kinds shipped with linetwin are in :data:`KNOWN_PLAN_MODULES` and are imported on first use.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from controllers.control_plan import ControlPlan

__all__ = [
    "KNOWN_PLAN_MODULES",
    "ControlOptionIssue",
    "RegisteredControlPlan",
    "UnknownControlKindError",
    "control_plan_for_kind",
    "controlled_kinds",
    "register_control_plan",
]

ControlOptionIssue = tuple[str, object, str]
"""One problem in a control table: (config key, what was found, what was expected)."""

OptionParser = Callable[[Mapping[str, Any], str, set[str]], tuple[Any, list[ControlOptionIssue]]]
"""``(control table, key prefix, the unit's tag names) -> (options, problems)``."""

PlanBuilder = Callable[[Mapping[str, Any], Mapping[str, Any], str, set[str]], ControlPlan]
"""``(model options, control table, key prefix, the unit's tag names) -> plan`` (raises ValueError on bad input)."""

#: unit kind -> module that registers its control plan when imported
KNOWN_PLAN_MODULES: Mapping[str, str] = {
    "crystallizer": "controllers.crystallization.control_plan",
}


class UnknownControlKindError(LookupError):
    """No control plan is registered for a unit kind."""


@dataclass(frozen=True)
class RegisteredControlPlan:
    kind: str
    parse_options: OptionParser
    build_plan: PlanBuilder


_REGISTRY: dict[str, RegisteredControlPlan] = {}


def register_control_plan(kind: str, parse_options: OptionParser, build_plan: PlanBuilder) -> None:
    """Register the control-table parser and plan builder of unit kind ``kind`` (a re-import replaces it)."""
    if not kind or not isinstance(kind, str):
        raise ValueError(f"register_control_plan: kind must be a non-empty string, got {kind!r}")
    _REGISTRY[kind] = RegisteredControlPlan(kind, parse_options, build_plan)


def controlled_kinds() -> tuple[str, ...]:
    """Unit kinds that can have a ``[units.<unit>.control]`` table."""
    return tuple(sorted(set(_REGISTRY) | set(KNOWN_PLAN_MODULES)))


def control_plan_for_kind(kind: str) -> RegisteredControlPlan:
    """The registered control plan of ``kind`` (importing its module on first use)."""
    if kind not in _REGISTRY and kind in KNOWN_PLAN_MODULES:
        importlib.import_module(KNOWN_PLAN_MODULES[kind])
    if kind not in _REGISTRY:
        raise UnknownControlKindError(
            f"no control plan for unit kind '{kind}'; expected one of {', '.join(controlled_kinds())}")
    return _REGISTRY[kind]
