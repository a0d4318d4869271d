"""STAND-IN chromatography (ion-exchange capture) column for the HIL bench — not the physics model.

The real transport-dispersive / isotherm column model is written in ``process_models``; this stand-in gives
the virtual PLC plausible signals with the tag names of the demo line:

* pump: actual flow follows the setpoint as a first-order lag (τ = 2 s);
* gradient: the buffer-B fraction reaching the outlet follows the mixer setpoint as a first-order lag whose
  time constant is the residence time of column plus system dead volume, (V_col + V_dead)/Q;
* conductivity: linear mixing of buffer A and B conductivities at the outlet fraction;
* pressure: Darcy's law, Δp ∝ Q·μ (Darcy 1856; e.g. Guiochon et al., *Fundamentals of Preparative and
  Nonlinear Chromatography*, 2nd ed., Academic Press 2006, §2.5) with the viscosity rising linearly with
  the salt fraction, plus a constant system back pressure;
* elution: protein bound at start (mg) desorbs per volume passed, at a rate that switches on as a
  logistic function of the buffer-B fraction (salt step/gradient elution); UV absorbance = ε · outlet
  protein concentration;
* fractionation (:mod:`hil.plants.fractionation`): run time since start, the collection valve from the cut
  setpoints (the stand-in keeps no pool);
* method status: no method runs — ``method_step`` and ``method_step_remaining_time`` read 0 (the physics column
  publishes its method's step, :mod:`hil.plants.column_physics`).

State clearly: none of these numbers is fitted to a real column.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from hil.plants import fractionation
from hil.plants.fractionation import FractionCollector
from hil.plants.integration import rk4
from hil.plants.parameters import check_ranges, hold_commands

KIND = "chromatography_column"
_MAX_SUBSTEP_S = 0.2
_SECONDS_PER_MINUTE = 60.0


@dataclass(frozen=True, slots=True)
class ColumnStandInParameters:
    """Stand-in parameters (units in the names)."""

    column_volume_ml: float = 1.0
    system_dead_volume_ml: float = 0.5
    pump_time_constant_s: float = 2.0
    pressure_drop_bar_per_ml_per_min: float = 1.2
    system_back_pressure_bar: float = 0.3
    buffer_b_viscosity_increase: float = 0.3  # relative viscosity rise at 100 % B
    buffer_a_conductivity_ms_per_cm: float = 5.0
    buffer_b_conductivity_ms_per_cm: float = 90.0
    initial_bound_protein_mg: float = 5.0
    elution_midpoint_b_percent: float = 30.0
    elution_width_b_percent: float = 5.0
    elution_volume_ml: float = 2.0
    uv_mau_per_mg_per_ml: float = 500.0
    initial_flow_rate_ml_per_min: float = 1.0
    uv_noise_std_mau: float = 0.5
    conductivity_noise_std_ms_per_cm: float = 0.05
    pressure_noise_std_bar: float = 0.005
    flow_rate_noise_std_ml_per_min: float = 0.005

    def __post_init__(self) -> None:
        check_ranges(
            KIND,
            self,
            positive=(
                "column_volume_ml", "pump_time_constant_s", "elution_width_b_percent", "elution_volume_ml",
            ),
            non_negative=(
                "system_dead_volume_ml", "pressure_drop_bar_per_ml_per_min", "system_back_pressure_bar",
                "buffer_b_viscosity_increase", "buffer_a_conductivity_ms_per_cm", "buffer_b_conductivity_ms_per_cm",
                "initial_bound_protein_mg", "uv_mau_per_mg_per_ml", "initial_flow_rate_ml_per_min",
            ),
        )


class ColumnStandIn:
    """Stand-in capture column (see module docstring: NOT the physics model)."""

    kind = KIND
    measured_names = ("outlet_uv_absorbance", "outlet_conductivity", "column_pressure", "flow_rate",
                      *fractionation.MEASUREMENTS, "method_step", "method_step_remaining_time")
    commanded_names = ("flow_rate_setpoint", "buffer_b_fraction_setpoint", *fractionation.COMMANDS)

    def __init__(self, parameters: ColumnStandInParameters | None = None, seed: int | None = None) -> None:
        self.parameters = parameters if parameters is not None else ColumnStandInParameters()
        p = self.parameters
        self._rng = np.random.default_rng(seed)
        # state: flow mL/min, outlet buffer-B fraction %, bound protein mg
        self._state = [p.initial_flow_rate_ml_per_min, 0.0, p.initial_bound_protein_mg]
        self._commands = self.initial_commands()
        self._time_s = 0.0
        self.fractions = FractionCollector()

    def initial_commands(self) -> dict[str, float]:
        """Initial flow (mL/min), 0 % buffer B, no cuts armed (0, 0 s)."""
        return {"flow_rate_setpoint": self.parameters.initial_flow_rate_ml_per_min, "buffer_b_fraction_setpoint": 0.0,
                fractionation.CUT_START: 0.0, fractionation.CUT_STOP: 0.0}

    def step(self, dt_s: float, commands: Mapping[str, float]) -> None:
        """Advance by ``dt_s`` s holding ``commands`` (mL/min, %); non-finite commands are ignored,
        flow is saturated at >= 0 and the B fraction to 0–100 % as a pump and mixer would."""
        hold_commands(KIND, self._commands, commands)
        x = rk4(self._rhs, self._state, dt_s, _MAX_SUBSTEP_S)
        x[0] = max(x[0], 0.0)
        x[2] = max(x[2], 0.0)
        self._state = x
        self._time_s += max(dt_s, 0.0)
        self.fractions.update(self._time_s, self._commands)

    def measurements(self) -> dict[str, float]:
        """UV mAU, conductivity mS/cm, pressure bar, flow mL/min, with Gaussian noise."""
        p = self.parameters
        flow, b_percent, _bound = self._state
        noise = self._rng.normal
        viscosity_factor = 1.0 + p.buffer_b_viscosity_increase * b_percent / 100.0
        pressure = p.system_back_pressure_bar + p.pressure_drop_bar_per_ml_per_min * flow * viscosity_factor
        conductivity = p.buffer_a_conductivity_ms_per_cm + (
            p.buffer_b_conductivity_ms_per_cm - p.buffer_a_conductivity_ms_per_cm
        ) * b_percent / 100.0
        return {
            "outlet_uv_absorbance": p.uv_mau_per_mg_per_ml * self.outlet_protein_mg_per_ml
            + noise(0.0, p.uv_noise_std_mau),
            "outlet_conductivity": conductivity + noise(0.0, p.conductivity_noise_std_ms_per_cm),
            "column_pressure": pressure + noise(0.0, p.pressure_noise_std_bar),
            "flow_rate": flow + noise(0.0, p.flow_rate_noise_std_ml_per_min),
            fractionation.RUN_TIME: self._time_s,
            fractionation.VALVE: 1.0 if self.fractions.open else 0.0,
            "method_step": 0.0,  # the stand-in runs no method: no step
            "method_step_remaining_time": 0.0,
        }

    @property
    def bound_protein_mg(self) -> float:
        """Protein still bound on the column, mg."""
        return self._state[2]

    @property
    def outlet_protein_mg_per_ml(self) -> float:
        """Protein concentration leaving the column, mg/mL (0 when the flow stops)."""
        return self._elution_fraction(self._state[1]) * self._state[2] / self.parameters.elution_volume_ml

    def _elution_fraction(self, b_percent: float) -> float:
        p = self.parameters
        z = (b_percent - p.elution_midpoint_b_percent) / p.elution_width_b_percent
        return 1.0 / (1.0 + math.exp(-max(min(z, 50.0), -50.0)))

    def _rhs(self, x: Sequence[float]) -> list[float]:
        p = self.parameters
        flow, b_percent, bound = max(x[0], 0.0), x[1], max(x[2], 0.0)
        flow_ml_per_s = flow / _SECONDS_PER_MINUTE
        b_setpoint = min(max(self._commands["buffer_b_fraction_setpoint"], 0.0), 100.0)
        flow_setpoint = max(self._commands["flow_rate_setpoint"], 0.0)
        holdup_ml = p.column_volume_ml + p.system_dead_volume_ml
        desorption_mg_per_s = flow_ml_per_s / p.elution_volume_ml * self._elution_fraction(b_percent) * bound
        return [
            (flow_setpoint - flow) / p.pump_time_constant_s,
            (b_setpoint - b_percent) * flow_ml_per_s / holdup_ml,
            -desorption_mg_per_s,
        ]
