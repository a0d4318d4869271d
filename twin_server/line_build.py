"""Building what a (parsed, valid) line config names: each unit's model declaration, its HIL plant (where the
caller passes a plant builder) and, with a ``[units.X.control]`` table, its control plan — once.

``linetwin check`` builds everything to report what ``serve`` / ``hil serve`` would crash on; ``serve`` and
``demo`` build the control plans here once and hand them to :class:`~twin_server.server.TwinServer`. Every
failure becomes a config issue on ``units.UNIT.model`` / ``.plant`` / ``.control`` (the key the exception names,
else the table), with the exception's text, shortened. The twin does not import :mod:`hil`: a caller that wants
the plants checked passes :func:`hil.plant.make_plant`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from plc_adapters.config_issues import ConfigError, ConfigIssue, IssueCollector, brief
from process_models.registry import model_for_kind, unit_kind
from twin_server.config import LineConfig, UnitConfig

if TYPE_CHECKING:
    from controllers.control_plan import ControlPlan

__all__ = ["BuiltLine", "PlantBuilder", "build_line", "build_line_or_raise", "build_units"]

PlantBuilder = Callable[[str, Mapping[str, Any], int | None], object]
"""``(kind, parameters, seed) -> plant`` (:func:`hil.plant.make_plant`)."""


@dataclass(frozen=True)
class BuiltLine:
    """The control plans built (unit name -> plan) and the issues found."""

    plans: dict[str, ControlPlan] = field(default_factory=dict)
    issues: list[ConfigIssue] = field(default_factory=list)


def build_line(config: LineConfig, plant_builder: PlantBuilder | None = None, with_plans: bool = True) -> BuiltLine:
    """Build every unit's model, plant (with ``plant_builder``) and control plan (with ``with_plans``; without,
    only the kind's plan check runs, which builds no NMPC)."""
    return build_units(config.units, config.source, plant_builder, with_plans)


def build_units(units: Sequence[UnitConfig], source: str, plant_builder: PlantBuilder | None = None,
                with_plans: bool = True) -> BuiltLine:
    """:func:`build_line` for some units of the config file ``source`` (e.g.
    :attr:`~plc_adapters.config_issues.ConfigError.buildable_units` of a file with other problems)."""
    c = IssueCollector(source)
    plans: dict[str, ControlPlan] = {}
    for unit in units:
        plan, found = _build_unit(unit, plant_builder, with_plans)
        c.extend((f"units.{unit.name}.{key}", got, expected) for key, got, expected in found)
        if plan is not None:
            plans[unit.name] = plan
    return BuiltLine(plans, c.issues)


def build_line_or_raise(config: LineConfig, plant_builder: PlantBuilder | None = None,
                        with_plans: bool = True) -> dict[str, ControlPlan]:
    """:func:`build_line`; :class:`ConfigError` listing the issues if there is one, else the plans."""
    built = build_line(config, plant_builder, with_plans)
    if built.issues:
        raise ConfigError(built.issues)
    return built.plans


def _build_unit(unit: UnitConfig, plant_builder: PlantBuilder | None,
                with_plans: bool) -> tuple[ControlPlan | None, list[tuple[str, object, str]]]:
    from process_models.registry import UnknownModelKindError

    found: list[tuple[str, object, str]] = []
    kind, model, plant = unit.kind, dict(unit.model), dict(unit.plant)
    try:
        model_for_kind(kind, model)
        model_ok = True
    except Exception as exc:  # noqa: BLE001 - whatever the factory raises, serve would crash on it
        model_ok = False
        found.append(_blame("model", model, exc, f"parameters the {kind} model accepts"))
    try:
        entry = unit_kind(kind)
    except UnknownModelKindError:
        entry = None
    if plant_builder is not None and entry is not None and entry.hil_plants is not None and (model_ok or plant):
        try:
            plant_builder(kind, unit.plant_parameters(), 0)
        except Exception as exc:  # noqa: BLE001
            section, table = ("plant", plant) if plant else ("model", model)
            if plant and _named_key(model, exc) is not None and _named_key(plant, exc) is None:
                section, table = "model", model
            if model_ok or section == "plant":  # else the model's issue already names that key
                found.append(_blame(section, table, exc, f"parameters the HIL plant of a {kind} accepts"))
    plan = None
    if unit.control and model_ok and entry is not None and entry.control_plan is not None:
        from controllers.plan_registry import control_plan_for_kind

        spec = control_plan_for_kind(kind)
        args = (model, unit.control, f"units.{unit.name}.control", {t.name for t in unit.tags})
        try:
            if with_plans:
                plan = spec.build_plan(*args)
            elif spec.check_plan is not None:
                spec.check_plan(*args)
        except Exception as exc:  # noqa: BLE001
            found.append(_blame("control", dict(unit.control), exc,
                                f"options the {kind} control plan can be built from with this [model]"))
    return plan, found


def _named_key(table: Mapping[str, Any], exc: BaseException) -> str | None:
    """The one key of ``table`` that the exception's text names in quotes, if exactly one."""
    text = brief(exc, 10_000)
    named = [k for k in table if f"'{k}'" in text or f'"{k}"' in text]
    return named[0] if len(named) == 1 else None


def _blame(section: str, table: Mapping[str, Any], exc: BaseException, expected: str) -> tuple[str, object, str]:
    """An issue on the key the exception names (else on the whole table), with the exception's text."""
    key = _named_key(table, exc)
    if key is None:
        return section, dict(table), f"{expected} ({brief(exc)})"
    return f"{section}.{key}", table[key], f"{expected} ({brief(exc)})"
