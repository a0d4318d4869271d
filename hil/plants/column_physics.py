"""HIL chromatography skid running the declared, CADET-validated column model
(``process_models.chromatography.column``).

The column is the case the line's ``[model] case`` names (default, and in the shipped lines: the
``sma_load_wash_elute`` case (general rate model, steric mass action binding, salt + lysozyme, cytochrome c,
ribonuclease A; CADET-Core's load-wash-elute benchmark, see ``examples/cases/chromatography_sma_load_wash_elute.toml``
for the sources), with a **coarse discretisation** for real time: ``axial_cells = 10``, ``particle_cells = 2`` (WENO k
= 2), 200 states, instead of the case's 32 x 8. What the skid adds around the column:

* **pump**: the actual flow follows ``flow_rate_setpoint`` (mL/min, saturated at >= 0) as a first-order lag
  (``pump_time_constant_s``), integrated exactly; each step's mean flow sets the model's ``interstitial_velocity``
  ``u = Q / (A eps_c)`` with the bed cross-section ``A = V_col / L`` (``column_volume_ml``, the model's
  ``column_length``) and interstitial porosity ``eps_c`` (the model's ``column_porosity``);
* **mixer**: ``buffer_b_fraction_setpoint`` (%, clipped to 0-100) sets the inlet salt concentration
  ``c_salt = c_A + (c_B - c_A) b / 100`` between ``buffer_a_salt_mol_per_m3`` and ``buffer_b_salt_mol_per_m3``
  (no mixer or system dead volume);
* **the skid's own program** (repeats by pumped volume; the phase is a function of the volume pumped since start):
  1. *load*: ``load_volume_ml`` of feed, every protein at ``feed_protein_concentration_mol_per_m3``;
  2. *wash*: ``wash_volume_ml`` without protein;
  3. *elute*: ``elution_volume_ml`` without protein; elution follows whatever buffer B fraction the twin or the
     operator commands (the salt always follows the command, in every phase), then the next cycle loads again.
  A phase boundary inside a PLC step splits the step at the volume where it falls;
* **measurements** from the model's detector outputs (:mod:`process_models.chromatography.detectors`): UV
  absorbance AU -> mAU (x 1000), conductivity S/m -> mS/cm (x 10), Blake-Kozeny pressure drop Pa -> bar (x 1e-5,
  plus an optional constant ``system_back_pressure_bar``), the pump's actual flow in mL/min; each with Gaussian
  noise from one seeded generator.

Integration: the binding is stiff (SMA desorption ``k_d (c_salt)^nu`` ~ 1e11 1/s at 50 mM), so an explicit RK4
substep would need picoseconds; each step is one CVODES run (BDF, sparse direct solver; casadi ``integrator``)
of ``dx/dtau = h f(x, u, p)`` over ``tau in [0, 1]``, built once per plant, with the step length ``h``, the inlet
``u`` and the parameters ``p`` (flow included) as its parameter vector, so all three may change at every call.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import casadi as ca
import numpy as np

from hil.plants.parameters import PlantParameterError, build_parameters, check_ranges, hold_commands
from process_models.chromatography.column import DEFAULT_CASE, ChromatographyColumn, column_from_options
from process_models.declaration import CompiledModel

KIND = "chromatography_column"
_SECONDS_PER_MINUTE = 60.0
_M3_PER_ML = 1e-6
_MAU_PER_AU = 1000.0
_MS_PER_CM_PER_S_PER_M = 10.0
_BAR_PER_PA = 1e-5
_PHASES = ("load", "wash", "elute")
_RTOL, _ATOL = 1e-6, 1e-8


@dataclass(frozen=True, slots=True)
class ColumnPhysicsParameters:
    """Skid parameters (units in the names). Concentrations in mol/m3 (= mM). ``axial_cells``/``particle_cells``:
    the plant's discretisation of the declared column (integers)."""

    column_volume_ml: float = 1.0
    axial_cells: float = 10.0
    particle_cells: float = 2.0
    pump_time_constant_s: float = 2.0
    initial_flow_rate_ml_per_min: float = 1.0
    buffer_a_salt_mol_per_m3: float = 50.0
    buffer_b_salt_mol_per_m3: float = 500.0
    feed_protein_concentration_mol_per_m3: float = 0.05
    load_volume_ml: float = 0.5
    wash_volume_ml: float = 2.0
    elution_volume_ml: float = 5.0
    system_back_pressure_bar: float = 0.0
    uv_noise_std_mau: float = 0.5
    conductivity_noise_std_ms_per_cm: float = 0.05
    pressure_noise_std_bar: float = 0.0001
    flow_rate_noise_std_ml_per_min: float = 0.005

    def __post_init__(self) -> None:
        check_ranges(
            KIND,
            self,
            positive=("column_volume_ml", "pump_time_constant_s", "load_volume_ml", "wash_volume_ml",
                      "elution_volume_ml"),
            non_negative=("initial_flow_rate_ml_per_min", "buffer_a_salt_mol_per_m3", "buffer_b_salt_mol_per_m3",
                          "feed_protein_concentration_mol_per_m3", "system_back_pressure_bar"),
        )
        for name, minimum in (("axial_cells", 3), ("particle_cells", 1)):
            value = getattr(self, name)
            if value != int(value) or value < minimum:
                raise PlantParameterError(f"plant '{KIND}': parameter '{name}' must be an integer >= {minimum}, "
                                          f"got {value!r}")


class ColumnPhysics:
    """The capture-column skid on the declared column model (see the module docstring)."""

    kind = KIND
    measured_names = ("outlet_uv_absorbance", "outlet_conductivity", "column_pressure", "flow_rate")
    commanded_names = ("flow_rate_setpoint", "buffer_b_fraction_setpoint")

    def __init__(self, parameters: ColumnPhysicsParameters | None = None, seed: int | None = None,
                 case: str = DEFAULT_CASE) -> None:
        self.parameters = parameters if parameters is not None else ColumnPhysicsParameters()
        s = self.parameters
        self.column: ChromatographyColumn = column_from_options(
            {"case": case, "axial_cells": int(s.axial_cells), "particle_cells": int(s.particle_cells)},
            where=f"plant '{KIND}' column")
        model = self.column.model
        self.model = model
        components = self.column.components
        if "column_porosity" not in model.parameter_names:
            raise PlantParameterError(f"plant '{KIND}': the column model has no 'column_porosity' (needs LRMP/GRM)")
        self._p = model.pack_parameters(None)
        # the declaration's parameter values (SI); the plant's interstitial velocity follows the pump instead
        self.parameter_values = dict(zip(model.parameter_names, self._p.tolist(), strict=True))
        self._velocity_index = model.parameter_names.index("interstitial_velocity")
        self._velocity_per_ml_per_min = (_M3_PER_ML / _SECONDS_PER_MINUTE) / (
            s.column_volume_ml * _M3_PER_ML / self.parameter_values["column_length"]
            * self.parameter_values["column_porosity"])
        self._salt = components[0]
        self._proteins = components[1:]
        self._u = np.zeros(model.nu)
        self._output_index = {name: model.output_slices[name].start for name in
                              ("outlet_uv_absorbance", "outlet_conductivity", "column_pressure_drop")}
        self._integrator = _column_step_integrator(model)
        self._rng = np.random.default_rng(seed)
        self._commands = self.initial_commands()
        self._flow_ml_per_min = s.initial_flow_rate_ml_per_min
        self._p[self._velocity_index] = self._flow_ml_per_min * self._velocity_per_ml_per_min
        self._volume_ml = 0.0  # pumped since start
        self._time_s = 0.0
        self._x = np.asarray(model.pack_states(self.column.initial_state(
            [s.buffer_a_salt_mol_per_m3] + [0.0] * len(self._proteins))), dtype=float)
        self._set_inlet()
        self._y = self._outputs()

    # ------------------------------------------------------------------ Plant protocol
    def initial_commands(self) -> dict[str, float]:
        """Initial flow (mL/min) and 0 % buffer B."""
        return {"flow_rate_setpoint": self.parameters.initial_flow_rate_ml_per_min, "buffer_b_fraction_setpoint": 0.0}

    def step(self, dt_s: float, commands: Mapping[str, float]) -> None:
        """Advance by ``dt_s`` s holding ``commands`` (mL/min, %). Missing or non-finite commands keep the last
        value; the flow is saturated at >= 0 and the B fraction to 0-100 %, as a pump and a mixer would.

        Raises:
            KeyError: a command names no commanded tag (the message lists them).
            FloatingPointError: the integration failed (the plant keeps its last state).
        """
        hold_commands(KIND, self._commands, commands)
        if dt_s <= 0.0:
            self._set_inlet()
            self._y = self._outputs()
            return
        tau = self.parameters.pump_time_constant_s
        setpoint = max(self._commands["flow_rate_setpoint"], 0.0)
        decay = math.exp(-dt_s / tau)
        mean_flow = setpoint + (self._flow_ml_per_min - setpoint) * tau / dt_s * (1.0 - decay)
        flow_end = setpoint + (self._flow_ml_per_min - setpoint) * decay
        self._p[self._velocity_index] = mean_flow * self._velocity_per_ml_per_min
        x, volume, remaining = self._x.copy(), self._volume_ml, dt_s
        while remaining > 0.0:
            self._set_inlet(volume)
            h = remaining
            to_boundary_ml = self._volume_to_phase_end(volume)
            if mean_flow > 0.0 and to_boundary_ml < mean_flow * remaining / _SECONDS_PER_MINUTE:
                h = max(to_boundary_ml / mean_flow * _SECONDS_PER_MINUTE, 1e-9)
            try:
                result = self._integrator(x0=x, p=np.concatenate([self._u, self._p, [h]]))["xf"]
            except RuntimeError as exc:
                raise FloatingPointError(f"plant '{KIND}': column integration failed in the step from plant time "
                                         f"{self._time_s:.3f} s: {str(exc).strip().splitlines()[-1]}") from exc
            x = np.asarray(result, dtype=float).ravel()
            if not np.all(np.isfinite(x)):
                raise FloatingPointError(f"plant '{KIND}': non-finite column state in the step from plant time "
                                         f"{self._time_s:.3f} s")
            volume += mean_flow * h / _SECONDS_PER_MINUTE
            remaining -= h
        self._x, self._volume_ml = x, volume
        self._flow_ml_per_min = flow_end
        self._time_s += dt_s
        self._set_inlet()
        self._y = self._outputs()

    def measurements(self) -> dict[str, float]:
        """UV mAU, conductivity mS/cm, pressure bar, flow mL/min, with Gaussian noise."""
        s = self.parameters
        true = self.true_measurements()
        noise = self._rng.standard_normal(4) * (s.uv_noise_std_mau, s.conductivity_noise_std_ms_per_cm,
                                                s.pressure_noise_std_bar, s.flow_rate_noise_std_ml_per_min)
        return {name: true[name] + float(n) for name, n in zip(self.measured_names, noise, strict=True)}

    # ------------------------------------------------------------------ true values (tests, benches, KPIs)
    def true_measurements(self) -> dict[str, float]:
        """Noise-free measured values (engineering units)."""
        y = self._y
        return {
            "outlet_uv_absorbance": _MAU_PER_AU * float(y[self._output_index["outlet_uv_absorbance"]]),
            "outlet_conductivity": _MS_PER_CM_PER_S_PER_M * float(y[self._output_index["outlet_conductivity"]]),
            "column_pressure": _BAR_PER_PA * float(y[self._output_index["column_pressure_drop"]])
            + self.parameters.system_back_pressure_bar,
            "flow_rate": self._flow_ml_per_min,
        }

    @property
    def time_s(self) -> float:
        """Plant time advanced by step(), s."""
        return self._time_s

    @property
    def interstitial_velocity_m_per_s(self) -> float:
        """The model's interstitial velocity in the last step (the mean pump flow over it), m/s."""
        return float(self._p[self._velocity_index])

    @property
    def pumped_volume_ml(self) -> float:
        """Volume pumped through the column since start, mL."""
        return self._volume_ml

    @property
    def phase(self) -> str:
        """The skid program's phase now: ``"load"``, ``"wash"`` or ``"elute"``."""
        return _PHASES[self._phase_index(self._volume_ml)]

    @property
    def bound_protein_mol_per_m3(self) -> float:
        """Mean bound protein (all proteins) over the column's solid, mol/m3 solid (kinetic binding)."""
        return float(sum(np.mean(self.state_value(f"bound_concentration_{c}")) for c in self._proteins))

    def state_value(self, name: str) -> np.ndarray:
        """TRUE value of model state ``name`` (SI; a copy)."""
        return self._x[self.model.state_slices[name]].copy()

    # ------------------------------------------------------------------ internals
    def _phase_index(self, volume_ml: float) -> int:
        s = self.parameters
        within = volume_ml % (s.load_volume_ml + s.wash_volume_ml + s.elution_volume_ml)
        if within < s.load_volume_ml:
            return 0
        return 1 if within < s.load_volume_ml + s.wash_volume_ml else 2

    def _volume_to_phase_end(self, volume_ml: float) -> float:
        s = self.parameters
        cycle = s.load_volume_ml + s.wash_volume_ml + s.elution_volume_ml
        within = volume_ml % cycle
        ends = (s.load_volume_ml, s.load_volume_ml + s.wash_volume_ml, cycle)
        return max(ends[self._phase_index(volume_ml)] - within, 0.0)

    def _set_inlet(self, volume_ml: float | None = None) -> None:
        s = self.parameters
        b = min(max(self._commands["buffer_b_fraction_setpoint"], 0.0), 100.0) / 100.0
        loading = self._phase_index(self._volume_ml if volume_ml is None else volume_ml) == 0
        self._u[0] = s.buffer_a_salt_mol_per_m3 + (s.buffer_b_salt_mol_per_m3 - s.buffer_a_salt_mol_per_m3) * b
        self._u[1:] = s.feed_protein_concentration_mol_per_m3 if loading else 0.0

    def _outputs(self) -> np.ndarray:
        return np.asarray(self.model.output(self._x, self._u, self._p, self._time_s), dtype=float).ravel()


def _column_step_integrator(model: CompiledModel) -> ca.Function:
    """casadi CVODES integrator ``(x0, p = [u; p; h]) -> x(h)``: ``dx/dtau = h f(x, u, p, tau h)``, tau in [0, 1]."""
    x, u, p = ca.SX.sym("x", model.nx), ca.SX.sym("u", model.nu), ca.SX.sym("p", model.np)
    h, tau = ca.SX.sym("h"), ca.SX.sym("tau")
    ode = h * model.rhs(x, u, p, tau * h)
    options = {"abstol": _ATOL, "reltol": _RTOL, "max_num_steps": 200000, "disable_internal_warnings": True}
    return ca.integrator("column_plant_step", "cvodes", {"x": x, "p": ca.vertcat(u, p, h), "t": tau, "ode": ode},
                         0.0, 1.0, options)


def make_column_physics(parameters: Mapping[str, Any], seed: int | None = None) -> ColumnPhysics:
    """Build the skid from a name -> value table (``[units.<unit>.model]`` merged with ``[units.<unit>.plant]``);
    ``case``: the column's case file (a path made absolute by the config loader, or a shipped case's short name).

    Raises:
        PlantParameterError: unknown name (lists the allowed ones), non-number, or a value out of range.
    """
    values = dict(parameters)
    case = values.pop("case", DEFAULT_CASE)
    if not isinstance(case, str):
        raise PlantParameterError(f"plant '{KIND}': parameter 'case' must be a case file path or name, got {case!r}")
    return ColumnPhysics(build_parameters(KIND, ColumnPhysicsParameters, values), seed=seed, case=case)
