"""Control plans by unit kind: how to validate a kind's ``[units.<unit>.control]`` table and build its
:class:`~controllers.control_plan.ControlPlan`.

Which kinds have a control plan, and where it lives, is the ``control_plan`` column of the one unit-kind table
(:data:`process_models.registry.UNIT_KINDS`); a kind's control module defines a :class:`ControlPlanSpec` there
(e.g. :data:`controllers.crystallization.control_options.CRYSTALLIZER_CONTROL`), imported on first use. The twin
server looks plans up by kind and binds them to tags and nodes; it knows no unit kind itself.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from process_models.registry import UnknownModelKindError, controlled_kinds, resolve, unit_kind

if TYPE_CHECKING:
    from controllers.control_plan import ControlPlan

__all__ = [
    "ControlOptionIssue",
    "ControlPlanSpec",
    "UnknownControlKindError",
    "control_plan_for_kind",
    "controlled_kinds",
]

ControlOptionIssue = tuple[str, object, str]
"""One problem in a control table: (config key, what was found, what was expected)."""

OptionParser = Callable[[Mapping[str, Any], str, set[str]], tuple[Any, list[ControlOptionIssue]]]
"""``(control table, key prefix, the unit's tag names) -> (options, problems)``."""

PlanBuilder = Callable[[Mapping[str, Any], Mapping[str, Any], str, set[str]], "ControlPlan"]
"""``(model options, control table, key prefix, the unit's tag names) -> plan`` (raises ValueError on bad input)."""


class UnknownControlKindError(LookupError):
    """No control plan for a unit kind."""


PlanCheck = Callable[[Mapping[str, Any], Mapping[str, Any], str, set[str]], None]
"""As :data:`PlanBuilder`, but only checks what the builder would refuse, without building the NMPC (``check``)."""


@dataclass(frozen=True)
class ControlPlanSpec:
    """A kind's control-table parser, plan builder and (optional) plan check."""

    kind: str
    parse_options: OptionParser
    build_plan: PlanBuilder
    check_plan: PlanCheck | None = None


def control_plan_for_kind(kind: str) -> ControlPlanSpec:
    """The control plan of ``kind`` (importing its module on first use)."""
    try:
        path = unit_kind(kind).control_plan
    except UnknownModelKindError:
        path = None
    if path is None:
        raise UnknownControlKindError(
            f"no control plan for unit kind '{kind}'; expected one of {', '.join(controlled_kinds())}")
    spec: ControlPlanSpec = resolve(kind, path)
    return spec
