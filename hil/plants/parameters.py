"""Building a plant's frozen parameter dataclass from a plain name → value mapping.

Every plant declares its parameters as a frozen dataclass whose field names carry the unit
(``tank_cross_section_m2``) and whose defaults describe the demo line. This module turns the
``[units.<unit>.model]`` table of a line configuration into that dataclass, refusing unknown
names and non-numbers with a message that names the parameter and the allowed ones.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Any, TypeVar

ParametersT = TypeVar("ParametersT")


class PlantParameterError(ValueError):
    """A plant parameter is unknown, not a finite number, or outside its physical range."""


def build_parameters(kind: str, parameters_type: type[ParametersT], values: Mapping[str, Any]) -> ParametersT:
    """Return ``parameters_type(**values)`` after checking every name and value.

    Raises:
        PlantParameterError: a name is not a field of ``parameters_type`` (the message lists the allowed
            names), or a value is not a finite real number.
    """
    allowed = [field.name for field in dataclasses.fields(parameters_type)]  # type: ignore[arg-type]
    unknown = sorted(name for name in values if name not in allowed)
    if unknown:
        raise PlantParameterError(
            f"plant '{kind}': unknown parameter(s) {', '.join(repr(n) for n in unknown)}; "
            f"allowed: {', '.join(allowed)}"
        )
    checked: dict[str, float] = {}
    for name, value in values.items():
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise PlantParameterError(f"plant '{kind}': parameter '{name}' must be a finite number, got {value!r}")
        checked[name] = float(value)
    return parameters_type(**checked)


def require_positive(kind: str, name: str, value: float) -> None:
    """Raise PlantParameterError unless ``value`` > 0."""
    if not value > 0.0:
        raise PlantParameterError(f"plant '{kind}': parameter '{name}' must be > 0, got {value!r}")


def require_non_negative(kind: str, name: str, value: float) -> None:
    """Raise PlantParameterError unless ``value`` >= 0."""
    if not value >= 0.0:
        raise PlantParameterError(f"plant '{kind}': parameter '{name}' must be >= 0, got {value!r}")


def check_ranges(
    kind: str, instance: object, positive: tuple[str, ...] = (), non_negative: tuple[str, ...] = ()
) -> None:
    """Check that fields named in ``positive`` are > 0, and those in ``non_negative`` or named ``*_noise_std*``
    are >= 0."""
    for field in dataclasses.fields(instance):  # type: ignore[arg-type]
        value = getattr(instance, field.name)
        if field.name in positive:
            require_positive(kind, field.name, value)
        elif "_noise_std" in field.name or field.name in non_negative:
            require_non_negative(kind, field.name, value)


def hold_commands(kind: str, held: dict[str, float], commands: Mapping[str, float]) -> None:
    """Update the commands in force (``held``, keyed by commanded tag) from a PLC scan's ``commands``.

    An unknown name raises ``KeyError`` naming it and the plant's commands; a non-finite value is ignored, so the
    plant keeps the last good command, as a drive or thermostat keeps its last valid setpoint.
    """
    for name, value in commands.items():
        if name not in held:
            raise KeyError(f"plant '{kind}': unknown command '{name}'; commands: {', '.join(held)}")
        if math.isfinite(value):
            held[name] = float(value)
