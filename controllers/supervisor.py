"""Supervisory logic: modes (MANUAL / AUTO recipe / MPC), limits, rate limits, bumpless transfer, safe fallback.

Every scan the supervisor turns the active mode's request into setpoint commands:

* MANUAL: the operator's value (held at the last written value until the operator sets one);
* AUTO: the recipe profile (piecewise-linear programme of batch time);
* MPC: the NMPC's first move.

Guards, in this order, per input: a request that is missing, from a failed solve, from a solve slower than
``solve_deadline_s``, non-finite, or outside [lower, upper] is never used; the configured fallback (hold the last
written value, or follow the recipe) replaces it and a :class:`SupervisorEvent` records why. The value finally
emitted is always moved from the last written value by at most ``max_rate_per_s`` x elapsed time (so a mode
switch never jumps the setpoint: bumpless transfer) and always inside the limits. Events are kept in
:attr:`Supervisor.events` and logged.

Values are SI (the model's units) throughout; log lines, event descriptions and command reasons show them in
each input's display unit (``display_units``, e.g. the tag's °C for a jacket temperature the model holds in K).
"""

from __future__ import annotations

import bisect
import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Protocol

from controllers.commands import ControlMode, SetpointCommand
from controllers.nmpc import NmpcResult

_LOG = logging.getLogger(__name__)


class SupervisorError(ValueError):
    """Bad supervisor configuration or call (unknown input, limits, recipe)."""


class DisplayUnit(Protocol):
    """How an operator reads an input's value: ``from_si`` converts an SI value, ``symbol`` names the unit
    (:class:`process_models.engineering_units.EngineeringUnit` is one)."""

    @property
    def symbol(self) -> str: ...

    def from_si(self, value_si: float) -> float: ...


@dataclass(frozen=True, slots=True)
class _SiUnit:
    symbol: str

    def from_si(self, value_si: float) -> float:
        return value_si


class Fallback(str, Enum):
    HOLD_LAST = "hold_last"
    """Keep the last written setpoint."""
    RECIPE = "recipe"
    """Follow the recipe profile (rate-limited from the last written value)."""


@dataclass(frozen=True, slots=True)
class SetpointLimits:
    """Limits of one commanded input: ``lower``/``upper`` in ``unit``; ``max_rate_per_s``: largest change per
    second (unit/s) between two written values."""

    name: str
    unit: str
    lower: float
    upper: float
    max_rate_per_s: float = math.inf

    def __post_init__(self) -> None:
        if not (math.isfinite(self.lower) and math.isfinite(self.upper) and self.lower < self.upper):
            raise SupervisorError(f"limits of '{self.name}': need finite lower < upper, got "
                                  f"[{self.lower}, {self.upper}] {self.unit}")
        if not self.max_rate_per_s > 0:
            raise SupervisorError(f"limits of '{self.name}': max_rate_per_s must be > 0 {self.unit}/s")


@dataclass(frozen=True)
class RecipeProfile:
    """Piecewise-linear setpoint programme per input: ``points[name]`` = ((time_s, value), ...) with strictly
    increasing times; held constant before the first and after the last point."""

    points: Mapping[str, tuple[tuple[float, float], ...]]

    def __post_init__(self) -> None:
        for name, pts in self.points.items():
            if not pts:
                raise SupervisorError(f"recipe for '{name}' has no points")
            times = [float(t) for t, _ in pts]
            if any(b <= a for a, b in zip(times, times[1:], strict=False)):
                raise SupervisorError(f"recipe for '{name}': times must be strictly increasing, got {times}")

    def value(self, name: str, time_s: float) -> float:
        """Recipe value of input ``name`` at ``time_s`` (s)."""
        if name not in self.points:
            raise SupervisorError(f"recipe has no programme for '{name}'; it has {sorted(self.points)}")
        pts = self.points[name]
        times = [float(t) for t, _ in pts]
        if time_s <= times[0]:
            return float(pts[0][1])
        if time_s >= times[-1]:
            return float(pts[-1][1])
        i = bisect.bisect_right(times, time_s)
        (t0, v0), (t1, v1) = pts[i - 1], pts[i]
        return float(v0) + (float(v1) - float(v0)) * (time_s - float(t0)) / (float(t1) - float(t0))

    @staticmethod
    def linear_ramp(name: str, start_s: float, start_value: float, end_s: float, end_value: float
                    ) -> RecipeProfile:
        """A single linear ramp (e.g. linear cooling) for one input."""
        return RecipeProfile({name: ((start_s, start_value), (end_s, end_value))})


@dataclass(frozen=True)
class SupervisorConfig:
    """Limits per commanded input, fallback policy, optional recipe and the NMPC solve deadline (s)."""

    limits: tuple[SetpointLimits, ...]
    fallback: Fallback = Fallback.HOLD_LAST
    recipe: RecipeProfile | None = None
    solve_deadline_s: float = math.inf

    def __post_init__(self) -> None:
        names = [lim.name for lim in self.limits]
        if not names or len(set(names)) != len(names):
            raise SupervisorError(f"supervisor needs unique limits per input, got {names}")
        if self.fallback is Fallback.RECIPE and self.recipe is None:
            raise SupervisorError("fallback RECIPE needs a recipe profile")
        if self.recipe is not None:
            missing = [n for n in names if n not in self.recipe.points]
            if missing:
                raise SupervisorError(f"recipe has no programme for inputs {missing}")


@dataclass(frozen=True, slots=True)
class SupervisorEvent:
    """Why the supervisor did not use a request. ``proposed`` is the rejected value (NaN when missing),
    ``used`` the value emitted instead, ``used_source`` where it came from (``hold_last`` / ``recipe``)."""

    time_s: float
    mode: ControlMode
    name: str
    reason: str
    proposed: float
    used: float
    used_source: str


@dataclass
class _InputState:
    limits: SetpointLimits
    last_value: float
    manual_value: float | None = None
    history: list[float] = field(default_factory=list)


class Supervisor:
    """Turns the active mode's requests into guarded setpoint commands (one per configured input per update).

    ``initial_setpoints``: the values in force now (must lie inside the limits); ``start_time_s``: when they were
    written (s) — the first update may move them by ``max_rate_per_s`` x (its time - ``start_time_s``).
    ``display_units``: per input, the unit its values are shown in (logs, event descriptions, command reasons);
    inputs without one are shown in the unit of their limits.
    """

    def __init__(self, config: SupervisorConfig, initial_setpoints: Mapping[str, float],
                 mode: ControlMode = ControlMode.MANUAL, start_time_s: float = 0.0,
                 display_units: Mapping[str, DisplayUnit] | None = None) -> None:
        self.config = config
        self._display: dict[str, DisplayUnit] = {lim.name: _SiUnit(lim.unit) for lim in config.limits}
        unknown_display = sorted(set(display_units or {}) - set(self._display))
        if unknown_display:
            raise SupervisorError(f"display_units for unknown inputs {unknown_display}; configured "
                                  f"{list(self._display)}")
        self._display.update(display_units or {})
        self._inputs: dict[str, _InputState] = {}
        for lim in config.limits:
            if lim.name not in initial_setpoints:
                raise SupervisorError(f"initial_setpoints missing '{lim.name}'")
            v = float(initial_setpoints[lim.name])
            if not (math.isfinite(v) and lim.lower <= v <= lim.upper):
                raise SupervisorError(f"initial setpoint of '{lim.name}' = {self.show(lim.name, v)} outside "
                                      f"{self._show_limits(lim)}")
            self._inputs[lim.name] = _InputState(lim, v)
        unknown = sorted(set(initial_setpoints) - set(self._inputs))
        if unknown:
            raise SupervisorError(f"initial_setpoints for unknown inputs {unknown}; configured {list(self._inputs)}")
        if mode is ControlMode.AUTO and config.recipe is None:
            raise SupervisorError("mode AUTO needs a recipe profile in the supervisor config")
        self._mode = mode
        self._last_time_s = float(start_time_s)
        self.events: list[SupervisorEvent] = []

    # -- mode and operator ----------------------------------------------------------------------
    @property
    def mode(self) -> ControlMode:
        return self._mode

    @property
    def last_written(self) -> dict[str, float]:
        """Last emitted value per input (unit of its limits)."""
        return {n: s.last_value for n, s in self._inputs.items()}

    def set_mode(self, mode: ControlMode, time_s: float, reason: str = "operator") -> None:
        """Switch mode (bumpless: the next value is rate-limited from the last written one). Entering MANUAL
        holds the last written value until :meth:`set_manual` is called."""
        if mode is ControlMode.AUTO and self.config.recipe is None:
            raise SupervisorError("mode AUTO needs a recipe profile in the supervisor config")
        if mode is self._mode:
            return
        for name, st in self._inputs.items():
            if mode is ControlMode.MANUAL:
                st.manual_value = None
            self._record(SupervisorEvent(time_s=float(time_s), mode=mode, name=name,
                                         reason=f"mode {self._mode.value} -> {mode.value} ({reason})",
                                         proposed=math.nan, used=st.last_value, used_source="hold_last"))
        self._mode = mode

    def set_manual(self, name: str, value: float) -> None:
        """Operator value for ``name`` (used in MANUAL mode, still limit- and rate-checked)."""
        if name not in self._inputs:
            raise SupervisorError(f"unknown input '{name}'; configured {list(self._inputs)}")
        self._inputs[name].manual_value = float(value)

    # -- the scan --------------------------------------------------------------------------------
    def update(self, time_s: float, nmpc_result: NmpcResult | None = None) -> tuple[SetpointCommand, ...]:
        """One scan at ``time_s`` (s): guarded commands for every configured input. ``nmpc_result`` is used in
        MPC mode (``None`` there means the solve did not return in time)."""
        time_s = float(time_s)
        elapsed = max(time_s - self._last_time_s, 0.0)
        proposals = self._proposals(time_s, nmpc_result)
        commands = []
        for name, st in self._inputs.items():
            lim = st.limits
            proposed, source, problem = proposals[name]
            if problem is None:
                if not math.isfinite(proposed):
                    problem = "not a finite number"
                elif not lim.lower <= proposed <= lim.upper:
                    problem = f"outside limits {self._show_limits(lim)}"
            if problem is not None:
                target, used_source = self._fallback_value(name, time_s)
                self._record(SupervisorEvent(time_s=time_s, mode=self._mode, name=name, reason=problem,
                                             proposed=proposed, used=target, used_source=used_source))
                reason = f"fallback {used_source}: {problem}"
                source_mode = self._mode
            else:
                target = proposed
                reason = source
                source_mode = self._mode
            value = self._rate_limited(st, target, elapsed)
            if value != target:
                reason += f" (rate-limited to {self._show_rate(name, lim.max_rate_per_s)})"
            st.last_value = value
            st.history.append(value)
            commands.append(SetpointCommand(name=name, value=value, unit=lim.unit, reason=reason,
                                            source_mode=source_mode, time_s=time_s))
        self._last_time_s = time_s
        return tuple(commands)

    # -- helpers ---------------------------------------------------------------------------------
    def _proposals(self, time_s: float, result: NmpcResult | None) -> dict[str, tuple[float, str, str | None]]:
        out: dict[str, tuple[float, str, str | None]] = {}
        if self._mode is ControlMode.MANUAL:
            for name, st in self._inputs.items():
                if st.manual_value is None:
                    out[name] = (st.last_value, "manual (holding last value)", None)
                else:
                    out[name] = (st.manual_value, "manual", None)
            return out
        if self._mode is ControlMode.AUTO:
            assert self.config.recipe is not None
            for name in self._inputs:
                out[name] = (self.config.recipe.value(name, time_s), "recipe", None)
            return out
        by_name = {c.name: c for c in result.commands} if result is not None else {}
        for name in self._inputs:
            if result is None:
                out[name] = (math.nan, "", "no NMPC result (solve missing or late)")
            elif not result.success:
                value = by_name[name].value if name in by_name else math.nan
                out[name] = (value, "", f"NMPC solve failed: {result.status}")
            elif result.solve_time_s > self.config.solve_deadline_s:
                value = by_name[name].value if name in by_name else math.nan
                out[name] = (value, "", f"NMPC solve late: {result.solve_time_s:.3f} s > deadline "
                                        f"{self.config.solve_deadline_s:.3f} s")
            elif name not in by_name:
                out[name] = (math.nan, "", "NMPC result has no command for this input")
            else:
                out[name] = (by_name[name].value, f"nmpc ({result.status})", None)
        return out

    def _fallback_value(self, name: str, time_s: float) -> tuple[float, str]:
        st = self._inputs[name]
        if self.config.fallback is Fallback.RECIPE and self.config.recipe is not None:
            v = self.config.recipe.value(name, time_s)
            if math.isfinite(v) and st.limits.lower <= v <= st.limits.upper:
                return v, "recipe"
        return st.last_value, "hold_last"

    @staticmethod
    def _rate_limited(st: _InputState, target: float, elapsed_s: float) -> float:
        lim = st.limits
        step = math.inf if math.isinf(lim.max_rate_per_s) else lim.max_rate_per_s * elapsed_s
        value = min(max(target, st.last_value - step), st.last_value + step)
        return min(max(value, lim.lower), lim.upper)

    def show(self, name: str, value_si: float) -> str:
        """An SI value of input ``name`` as the operator reads it, e.g. ``25.5 °C`` (``none`` if NaN)."""
        if math.isnan(value_si):
            return "none"
        unit = self._display[name]
        return f"{unit.from_si(value_si):.4g} {unit.symbol}"

    def _show_limits(self, lim: SetpointLimits) -> str:
        unit = self._display[lim.name]
        return f"[{unit.from_si(lim.lower):.4g}, {unit.from_si(lim.upper):.4g}] {unit.symbol}"

    def _show_rate(self, name: str, rate_si_per_s: float) -> str:
        unit = self._display[name]  # a difference: the offset of an affine unit (°C) cancels
        return f"{unit.from_si(rate_si_per_s) - unit.from_si(0.0):.4g} {unit.symbol}/s"

    def describe(self, event: SupervisorEvent) -> str:
        """One line for logs and the twin's ``last_event``, in the input's display unit."""
        return (f"{event.name}: {event.reason}; proposed {self.show(event.name, event.proposed)}, "
                f"used {self.show(event.name, event.used)} ({event.used_source})")

    def _record(self, event: SupervisorEvent) -> None:
        self.events.append(event)
        _LOG.warning("supervisor t=%.1f s mode=%s %s", event.time_s, event.mode.value, self.describe(event))

    def history(self, name: str) -> Sequence[float]:
        """Every value emitted for ``name`` so far."""
        return tuple(self._inputs[name].history)
