"""Discrete PID controller: the simple fallback loop when the NMPC is not in service.

Position form with derivative on measurement (no derivative kick on setpoint steps), a first-order filter on
the derivative, output clamping and back-calculation anti-windup (K. J. Astrom & T. Hagglund, *Advanced PID
Control*, ISA 2006, sec. 3.5: the integrator is corrected by (u_sat - u) / tracking_time_s).
"""

from __future__ import annotations

import math
from dataclasses import dataclass


class PidConfigError(ValueError):
    """Bad PID tuning or limits."""


@dataclass(frozen=True, slots=True)
class PidTuning:
    """Gains of a PID loop.

    ``gain``: proportional gain (output unit per measurement unit); ``integral_time_s`` (s, ``inf`` = no
    integral action); ``derivative_time_s`` (s); ``derivative_filter``: filter time as a fraction of the
    derivative time; ``tracking_time_s``: anti-windup back-calculation time (s, default sqrt(Ti * Td) or Ti);
    ``reverse_acting``: True when raising the output lowers the measurement (e.g. cooling).
    """

    gain: float
    integral_time_s: float = math.inf
    derivative_time_s: float = 0.0
    derivative_filter: float = 0.1
    tracking_time_s: float | None = None
    reverse_acting: bool = False


class PidController:
    """PID with output limits [``output_lower``, ``output_upper``] (output unit) and anti-windup."""

    def __init__(self, tuning: PidTuning, output_lower: float, output_upper: float, sample_period_s: float,
                 initial_output: float | None = None) -> None:
        if not (math.isfinite(output_lower) and math.isfinite(output_upper) and output_lower < output_upper):
            raise PidConfigError(f"PID output limits need finite lower < upper, got [{output_lower}, {output_upper}]")
        if not (sample_period_s > 0 and math.isfinite(sample_period_s)):
            raise PidConfigError(f"PID sample_period_s must be > 0 s, got {sample_period_s}")
        if not (math.isfinite(tuning.gain) and tuning.gain != 0):
            raise PidConfigError(f"PID gain must be finite and non-zero, got {tuning.gain}")
        if not tuning.integral_time_s > 0 or tuning.derivative_time_s < 0:
            raise PidConfigError("PID integral_time_s must be > 0 s and derivative_time_s >= 0 s")
        self.tuning = tuning
        self.output_lower = float(output_lower)
        self.output_upper = float(output_upper)
        self.sample_period_s = float(sample_period_s)
        ti, td = tuning.integral_time_s, tuning.derivative_time_s
        if tuning.tracking_time_s is not None:
            self._tt = tuning.tracking_time_s
        elif math.isfinite(ti):
            self._tt = math.sqrt(ti * td) if td > 0 else ti
        else:
            self._tt = math.inf
        self._integral = 0.0
        self._derivative = 0.0
        self._last_measurement: float | None = None
        self.reset(initial_output if initial_output is not None else (output_lower + output_upper) / 2)

    def reset(self, output: float) -> None:
        """Bumpless start: set the integral so that the next output (at zero error) equals ``output``."""
        self._integral = min(max(float(output), self.output_lower), self.output_upper)
        self._derivative = 0.0
        self._last_measurement = None

    def update(self, setpoint: float, measurement: float) -> float:
        """One sample: returns the clamped output. A non-finite measurement or setpoint holds the last output."""
        if not (math.isfinite(setpoint) and math.isfinite(measurement)):
            return self._integral_output()
        tn = self.tuning
        sign = -1.0 if tn.reverse_acting else 1.0
        k = sign * tn.gain
        h = self.sample_period_s
        error = setpoint - measurement
        if self._last_measurement is not None and tn.derivative_time_s > 0:
            tf = tn.derivative_filter * tn.derivative_time_s
            raw = -k * tn.derivative_time_s * (measurement - self._last_measurement) / h
            self._derivative = (tf * self._derivative + h * raw) / (tf + h)
        self._last_measurement = measurement
        unclamped = self._integral + k * error + self._derivative
        output = min(max(unclamped, self.output_lower), self.output_upper)
        if math.isfinite(tn.integral_time_s):
            self._integral += k * h / tn.integral_time_s * error
            if math.isfinite(self._tt):
                self._integral += h / self._tt * (output - unclamped)
        self._integral = min(max(self._integral, self.output_lower), self.output_upper)
        return output

    def _integral_output(self) -> float:
        return min(max(self._integral, self.output_lower), self.output_upper)
