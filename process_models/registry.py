"""The unit kinds linetwin knows, in one declared table: kind -> model factory, control plan, HIL plants,
description.

Each entry names its implementations by ``"module:attribute"`` path and nothing is imported until a kind is used,
so importing ``process_models`` stays cheap and a line config that names only a mixing tank never imports the
chromatography code. Every layer resolves only its own column: :func:`model_for_kind` (here) the model factory,
:func:`controllers.plan_registry.control_plan_for_kind` the control plan, :func:`hil.plant.make_plant` the HIL
plants. The table is data (strings), so this module depends on none of those layers. Adding a kind is one entry
here plus its modules (docs/architecture.md, "Unit kinds").
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from process_models.declaration import ModelDeclaration

__all__ = [
    "UNIT_KINDS",
    "ModelFactory",
    "UnitKind",
    "UnknownModelKindError",
    "controlled_kinds",
    "known_kinds",
    "model_for_kind",
    "resolve",
    "unit_kind",
    "unit_kinds",
]

ModelFactory = Callable[[Mapping[str, Any]], "ModelDeclaration"]


class UnknownModelKindError(LookupError):
    """No unit kind of that name (or the module that implements it cannot be imported)."""


@dataclass(frozen=True, slots=True)
class UnitKind:
    """One unit kind. Paths are ``"module:attribute"``; ``None``: the kind has no such part."""

    name: str
    description: str
    model: str
    """A :data:`ModelFactory`: ``[model]`` options -> :class:`~process_models.declaration.ModelDeclaration`."""
    control_plan: str | None = None
    """A :class:`controllers.plan_registry.ControlPlanSpec` (control-table parser and plan builder)."""
    hil_plants: str | None = None
    """A mapping plant model name -> plant builder (:mod:`hil.plant`; the first is the default)."""
    line_unit: bool = True
    """True: a process unit a line config may name (``[units.X] kind``); False: a model only (case files)."""
    case_loader: str | None = None
    """``path -> process_models.case_file.CaseFile`` for case files with ``[[steps]]`` (the kind's own loader and
    simulator); None: the kind has no process steps."""
    model_keys: str | None = None
    """A :data:`process_models.model_keys.ModelKeys`: the ``[model]`` keys with units and defaults (the reference
    ``linetwin models describe`` prints)."""


UNIT_KINDS: Mapping[str, UnitKind] = {k.name: k for k in (
    UnitKind("axial_dispersion", "closed-closed axial dispersion vessel (tracer RTD)",
             model="process_models.mixing.rtd:axial_dispersion_from_options", line_unit=False,
             model_keys="process_models.mixing.rtd:model_keys"),
    UnitKind("chromatography_column",
             "packed-bed chromatography column (ED, LRMP or GRM; linear, Langmuir or SMA binding)",
             model="process_models.chromatography.column:chromatography_model",
             control_plan="controllers.chromatography.pooling_plan:POOLING_CONTROL",
             hil_plants="hil.plant:COLUMN_PLANTS",
             case_loader="process_models.chromatography.column:case_file_with_steps",
             model_keys="process_models.chromatography.model_keys:model_keys"),
    UnitKind("crystallizer", "batch cooling crystallizer (method of moments or finite-volume population balance)",
             model="process_models.crystallization.crystallizer:crystallizer_model",
             control_plan="controllers.crystallization.control_options:CRYSTALLIZER_CONTROL",
             hil_plants="hil.plant:CRYSTALLIZER_PLANTS",
             model_keys="process_models.crystallization.model_keys:model_keys"),
    UnitKind("mixing_tank", "jacketed stirred mixing tank (level, solute, energy, jacket, agitator power)",
             model="process_models.mixing.mixing_tank:mixing_tank_from_options",
             hil_plants="hil.plant:MIXING_TANK_PLANTS",
             model_keys="process_models.mixing.mixing_tank:model_keys"),
)}


def unit_kind(kind: str) -> UnitKind:
    """The table entry of ``kind``; :class:`UnknownModelKindError` listing the known kinds."""
    try:
        return UNIT_KINDS[kind]
    except (KeyError, TypeError):
        raise UnknownModelKindError(f"unknown model kind {kind!r}; expected one of {sorted(UNIT_KINDS)}") from None


def resolve(kind: str, path: str) -> Any:
    """Import ``"module:attribute"`` (a part of unit kind ``kind``) and return the attribute."""
    module, _, attribute = path.partition(":")
    try:
        return getattr(importlib.import_module(module), attribute)
    except (ImportError, AttributeError) as exc:
        raise UnknownModelKindError(f"unit kind '{kind}' is implemented by '{path}', which could not be "
                                    f"imported: {exc}") from exc


def model_for_kind(kind: str, options: Mapping[str, Any] | None = None) -> ModelDeclaration:
    """Build the declaration of a unit of kind ``kind`` from its model options (line config / case file)."""
    entry = unit_kind(kind)
    factory: ModelFactory = resolve(kind, entry.model)
    return factory(dict(options or {}))


def known_kinds() -> dict[str, str]:
    """kind -> description of every kind (models used only in case files included)."""
    return {k: v.description for k, v in sorted(UNIT_KINDS.items())}


def unit_kinds() -> dict[str, str]:
    """kind -> description of the kinds a line config may give a unit (models such as ``axial_dispersion``,
    used only in case files, are left out)."""
    return {k: v.description for k, v in sorted(UNIT_KINDS.items()) if v.line_unit}


def controlled_kinds() -> tuple[str, ...]:
    """Unit kinds that can have a ``[units.<unit>.control]`` table."""
    return tuple(sorted(k for k, v in UNIT_KINDS.items() if v.control_plan is not None))
