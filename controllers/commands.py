"""Setpoint commands: what a controller hands to the line runtime (which writes them through an adapter).

Controllers never write to a PLC; they return :class:`SetpointCommand` records.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class ControlMode(str, Enum):
    """Who decides a unit's setpoints."""

    MANUAL = "manual"
    """Operator value, held until changed."""
    AUTO = "auto"
    """Recipe profile: a programme of setpoints over batch time."""
    MPC = "mpc"
    """Nonlinear model-predictive controller."""


@dataclass(frozen=True, slots=True)
class SetpointCommand:
    """One setpoint to write.

    ``name`` is the model input (or tag) name, ``value`` is in ``unit`` (the model's SI unit),
    ``time_s`` the controller time (s) at which it was decided, ``reason`` a short human-readable
    justification and ``source_mode`` the mode that produced it.
    """

    name: str
    value: float
    unit: str
    reason: str
    source_mode: ControlMode
    time_s: float = 0.0

    def __post_init__(self) -> None:
        if not self.name:
            raise ValueError("SetpointCommand.name must be a non-empty input/tag name")
        if not isinstance(self.source_mode, ControlMode):
            raise ValueError(f"SetpointCommand '{self.name}': source_mode must be a ControlMode, "
                             f"got {self.source_mode!r}")
