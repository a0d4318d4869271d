"""HIL chromatography skid running the declared, CADET-validated column model
(``process_models.chromatography.column``).

The column is the case the line's ``[model] case`` names (default, and in the shipped lines: the
``sma_load_wash_elute`` case (general rate model, steric mass action binding, salt + lysozyme, cytochrome c,
ribonuclease A; CADET-Core's load-wash-elute benchmark, see ``examples/cases/chromatography_sma_load_wash_elute.toml``
for the sources), discretised for real time. Default (``scheme = "dg"``): discontinuous Galerkin spectral elements
(:mod:`process_models.chromatography.spectral`; Breuer et al., Comput. Chem. Eng. 2023) with ``elements = 3`` of
``polynomial_degree = 3`` in the bulk and ``particle_cells = 3`` collocation points in the particle: one plant
second ~2.7 ms of CPU on the shared 2-core machine (~370x real time on one core), UV within 0.13 % (relative L2)
of the converged 4 x 6 + 4 grid on the pooling method; 4 x 4 + 4 (the pooling scenarios' true plant) is within
1e-5 of it at ~6 ms. ``scheme = "fv"``: the finite volumes (WENO) with ``axial_cells = 10`` (``particle_cells`` as
given). The column is integrated at most every ``integration_step_s`` (default 1 s) of plant time: shorter PLC
steps accumulate (the outputs hold in between, the commands at the step that completes the interval apply to the
whole interval) — the per-call cost of the stiff solver, not the span, dominates a 0.1-s step. What the skid adds
around the column:

* **pump**: the actual flow follows ``flow_rate_setpoint`` (mL/min, saturated at >= 0) as a first-order lag
  (``pump_time_constant_s``), integrated exactly; each step's mean flow sets the model's ``interstitial_velocity``
  ``u = Q / (A eps_c)`` with the bed cross-section ``A = V_col / L`` (``column_volume_ml``, the model's
  ``column_length``) and interstitial porosity ``eps_c`` (the model's ``column_porosity``);
* **mixer**: ``buffer_b_fraction_setpoint`` (%, clipped to 0-100) sets the inlet salt concentration
  ``c_salt = c_A + (c_B - c_A) b / 100`` between ``buffer_a_salt_mol_per_m3`` and ``buffer_b_salt_mol_per_m3``
  (no mixer or system dead volume);
* **the skid's own program**, one of two:

  **by volume** (default; repeats; the phase is a function of the volume pumped since start):
  1. *load*: ``load_volume_ml`` of feed, every protein at ``feed_protein_concentration_mol_per_m3``;
  2. *wash*: ``wash_volume_ml`` without protein;
  3. *elute*: ``elution_volume_ml`` without protein; elution follows whatever buffer B fraction the twin or the
     operator commands (the salt always follows the command, in every phase), then the next cycle loads again.
  A phase boundary inside a PLC step splits the step at the volume where it falls.

  **a method** (``method`` table given, :func:`process_models.chromatography.elution_method.elution_method_from_table`;
  the same programme the pooling loop's model runs): its process steps by run time, once
  (:class:`~process_models.chromatography.elution_method.ElutionMethod`: load / wash / elute / strip /
  re-equilibration, each with its inlet and flow rate), with the run's departure from it (``deviation`` table:
  feed titre, gradient slope and adsorption factors,
  :class:`~process_models.chromatography.elution_method.MethodDeviation`) — the TRUE plant of a pooling scenario.
  The pump runs each step's flow (a step without one: the case's interstitial velocity through this column,
  ``Q = u A eps_c``) from the step's start, as the model's section-wise simulator does; the flow and buffer-B
  commands are not used (the method sets flow and salt); the column starts clean, as the method's model does
  (:func:`~process_models.chromatography.column.simulate_column`). After the last step the inlet holds its end
  values until the run is over. Each PLC step takes the inlet at its midpoint (exact for constant steps; second
  order in a gradient) and is split at the steps' starts. A ``column_diameter_m`` of the method must match this
  skid's bed (``column_volume_ml`` over the column length, within 1 %);
* **method status** (:data:`METHOD_STEP`, :data:`METHOD_STEP_REMAINING`): the step running now (1 = the first;
  the volume program's phase 1 load, 2 wash, 3 elute) and the run time left in it (s; by volume: at the current
  flow; 0 after the method's last step);
* **fractionation** (:mod:`hil.plants.fractionation`): ``run_time`` (s since the current run's load started), the
  collection valve open while ``cut_start_time <= run_time < cut_stop_time`` (setpoints, s of run time), one pool per
  run; :meth:`ColumnPhysics.pool` is the pool's truth (amounts, purity, yield);
* **measurements** from the model's detector outputs (:mod:`process_models.chromatography.detectors`): UV
  absorbance AU -> mAU (x 1000), conductivity S/m -> mS/cm (x 10), Blake-Kozeny pressure drop Pa -> bar (x 1e-5,
  plus an optional constant ``system_back_pressure_bar``), the pump's actual flow in mL/min; each with Gaussian
  noise from one seeded generator; the run time (s) and the valve's position (1/0) exactly.

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

from hil.plants import fractionation
from hil.plants.fractionation import FractionCollector
from hil.plants.parameters import PlantParameterError, build_parameters, check_ranges, hold_commands
from process_models.chromatography.column import DEFAULT_CASE, ChromatographyColumn, column_from_options
from process_models.chromatography.elution_method import (
    ElutionMethod,
    MethodDeviation,
    adsorption_overrides,
    elution_method_from_table,
    method_deviation_from_table,
)
from process_models.chromatography.inlet import InletProgram, InletProgramError
from process_models.declaration import CompiledModel

KIND = "chromatography_column"
_SECONDS_PER_MINUTE = 60.0
_M3_PER_ML = 1e-6
_MAU_PER_AU = 1000.0
_MS_PER_CM_PER_S_PER_M = 10.0
_BAR_PER_PA = 1e-5
_PHASES = ("load", "wash", "elute")
METHOD_STEP = "method_step"
"""Measured: the number of the method step running now (1 = the first)."""
METHOD_STEP_REMAINING = "method_step_remaining_time"
"""Measured: run time left in the current method step, s."""
_RTOL, _ATOL = 1e-6, 1e-8
SCHEMES = ("dg", "fv")
_METHOD_HORIZON_S = 1e7
"""The end of a method run's inlet program (the gradient's end salt is held after it), s."""


@dataclass(frozen=True, slots=True)
class ColumnPhysicsParameters:
    """Skid parameters (units in the names). Concentrations in mol/m3 (= mM). ``polynomial_degree``/``elements``
    (DG) or ``axial_cells`` (FV), and ``particle_cells``: the plant's discretisation of the declared column
    (integers)."""

    column_volume_ml: float = 1.0
    axial_cells: float = 10.0
    particle_cells: float = 3.0
    polynomial_degree: float = 3.0
    elements: float = 3.0
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
    integration_step_s: float = 1.0

    def __post_init__(self) -> None:
        check_ranges(
            KIND,
            self,
            positive=("column_volume_ml", "pump_time_constant_s", "load_volume_ml", "wash_volume_ml",
                      "elution_volume_ml", "integration_step_s"),
            non_negative=("initial_flow_rate_ml_per_min", "buffer_a_salt_mol_per_m3", "buffer_b_salt_mol_per_m3",
                          "feed_protein_concentration_mol_per_m3", "system_back_pressure_bar"),
        )
        for name, minimum in (("axial_cells", 3), ("particle_cells", 1), ("polynomial_degree", 1), ("elements", 1)):
            value = getattr(self, name)
            if value != int(value) or value < minimum:
                raise PlantParameterError(f"plant '{KIND}': parameter '{name}' must be an integer >= {minimum}, "
                                          f"got {value!r}")


class ColumnPhysics:
    """The capture-column skid on the declared column model (see the module docstring)."""

    kind = KIND
    measured_names = ("outlet_uv_absorbance", "outlet_conductivity", "column_pressure", "flow_rate",
                      *fractionation.MEASUREMENTS, METHOD_STEP, METHOD_STEP_REMAINING)
    commanded_names = ("flow_rate_setpoint", "buffer_b_fraction_setpoint", *fractionation.COMMANDS)

    def __init__(self, parameters: ColumnPhysicsParameters | None = None, seed: int | None = None,
                 case: str = DEFAULT_CASE, scheme: str = "dg", method: ElutionMethod | None = None,
                 deviation: MethodDeviation | None = None) -> None:
        self.parameters = parameters if parameters is not None else ColumnPhysicsParameters()
        s = self.parameters
        if scheme not in SCHEMES:
            raise PlantParameterError(f"plant '{KIND}': parameter 'scheme' = {scheme!r}; expected one of "
                                      f"{', '.join(SCHEMES)}")
        discretisation: dict[str, object] = {"particle_cells": int(s.particle_cells)}
        if scheme == "dg":
            discretisation.update(method="dg", polynomial_degree=int(s.polynomial_degree), elements=int(s.elements))
        else:
            discretisation["axial_cells"] = int(s.axial_cells)
        self.column: ChromatographyColumn = column_from_options({"case": case, **discretisation},
                                                                where=f"plant '{KIND}' column")
        model = self.column.model
        self.model = model
        components = self.column.components
        if "column_porosity" not in model.parameter_names:
            raise PlantParameterError(f"plant '{KIND}': the column model has no 'column_porosity' (needs LRMP/GRM)")
        self.method = method
        self.deviation = deviation if deviation is not None else MethodDeviation()
        self._program: InletProgram | None = None
        overrides: dict[str, float] = {}
        self._step_bounds_s: tuple[tuple[float, float], ...] = ()
        if method is not None:
            try:
                self._program = method.program(components, _METHOD_HORIZON_S, self.deviation,
                                               porosity=self.column.spec.flow_porosity)
                overrides = adsorption_overrides(self.column.declaration.parameter_values(None),
                                                 self.deviation.adsorption_factors)
            except InletProgramError as exc:
                raise PlantParameterError(f"plant '{KIND}': parameter 'method': {exc}") from None
            self._step_bounds_s = method.step_bounds_s()
        self._p = model.pack_parameters(overrides or None)
        # the declaration's parameter values (SI); the plant's interstitial velocity follows the pump instead
        self.parameter_values = dict(zip(model.parameter_names, self._p.tolist(), strict=True))
        self._velocity_index = model.parameter_names.index("interstitial_velocity")
        area_m2 = s.column_volume_ml * _M3_PER_ML / self.parameter_values["column_length"]
        self._velocity_per_ml_per_min = (_M3_PER_ML / _SECONDS_PER_MINUTE) / (
            area_m2 * self.parameter_values["column_porosity"])
        if method is not None and method.column_diameter_m is not None:
            stated = math.pi * method.column_diameter_m ** 2 / 4.0
            if abs(stated / area_m2 - 1.0) > 0.01:
                raise PlantParameterError(
                    f"plant '{KIND}': parameter 'method': method.column_diameter_m = {method.column_diameter_m:g} m "
                    f"is a bed of "
                    f"{stated * self.parameter_values['column_length'] / _M3_PER_ML:.4g} mL over the column's length "
                    f"{self.parameter_values['column_length']:g} m; expected this skid's column_volume_ml = "
                    f"{s.column_volume_ml:g} mL (a diameter of {math.sqrt(4.0 * area_m2 / math.pi):.5g} m)")
        self._declared_velocity = self.parameter_values["interstitial_velocity"]
        self._salt = components[0]
        self._proteins = components[1:]
        self._u = np.zeros(model.nu)
        self._output_index = {name: model.output_slices[name].start for name in
                              ("outlet_uv_absorbance", "outlet_conductivity", "column_pressure_drop")}
        self._outlet_index = {c: model.output_slices[f"outlet_concentration_{c}"].start for c in components}
        self._integrator = _column_step_integrator(model)
        self._rng = np.random.default_rng(seed)
        if self._program is not None:  # the pump starts at the first step's flow
            self._method_flow_ml_per_min = self._method_velocity(0.0) / self._velocity_per_ml_per_min
        self._commands = self.initial_commands()
        self._flow_ml_per_min = self._commands["flow_rate_setpoint"]
        self.fractions = FractionCollector()
        """The collection valve and the pool of the current run."""
        self._eluted_mol: dict[str, float] = {}
        self._run_start_s = 0.0
        self._cycle = 0
        self._pending_s = 0.0  # plant seconds since the last integration
        self._integrated_s = 0.0  # plant time the column state is at
        self._mean_flow_ml_per_min = self._flow_ml_per_min
        self._p[self._velocity_index] = self._flow_ml_per_min * self._velocity_per_ml_per_min
        self._volume_ml = 0.0  # pumped since start
        self._time_s = 0.0
        # a method run starts as its model does (simulate_column, CADET's load-wash-elute benchmark: a clean
        # column); the volume program starts equilibrated with buffer A
        salt = 0.0 if method is not None else s.buffer_a_salt_mol_per_m3
        self._x = np.asarray(model.pack_states(self.column.initial_state([salt] + [0.0] * len(self._proteins))),
                             dtype=float)
        self._set_inlet()
        self._y = self._outputs()

    # ------------------------------------------------------------------ Plant protocol
    def initial_commands(self) -> dict[str, float]:
        """Initial flow (mL/min; a method's own flow when running one), 0 % buffer B, no cuts armed (0, 0 s)."""
        flow = (self._method_flow_ml_per_min if self._program is not None
                else self.parameters.initial_flow_rate_ml_per_min)
        return {"flow_rate_setpoint": flow, "buffer_b_fraction_setpoint": 0.0, fractionation.CUT_START: 0.0,
                fractionation.CUT_STOP: 0.0}

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
        self._pending_s += dt_s
        self._time_s += dt_s
        if self._pending_s >= self.parameters.integration_step_s - 1e-9:
            self._integrate(self._pending_s)
            self._pending_s = 0.0
        flow_m3_per_s = self._mean_flow_ml_per_min * _M3_PER_ML / _SECONDS_PER_MINUTE
        outlet = self.outlet_mol_per_m3()
        for name, c in outlet.items():
            self._eluted_mol[name] = self._eluted_mol.get(name, 0.0) + max(c, 0.0) * flow_m3_per_s * dt_s
        self.fractions.update(self.run_time_s, self._commands)
        self.fractions.collect(outlet, flow_m3_per_s, dt_s)

    def _integrate(self, dt_s: float) -> None:
        """The column over the ``dt_s`` (s) since the last integration, holding the commands now."""
        tau = self.parameters.pump_time_constant_s
        setpoint = max(self._commands["flow_rate_setpoint"], 0.0)
        decay = math.exp(-dt_s / tau)
        mean_flow = setpoint + (self._flow_ml_per_min - setpoint) * tau / dt_s * (1.0 - decay)
        flow_end = setpoint + (self._flow_ml_per_min - setpoint) * decay
        self._p[self._velocity_index] = mean_flow * self._velocity_per_ml_per_min
        x, volume, remaining, t = self._x.copy(), self._volume_ml, dt_s, self._integrated_s
        while remaining > 0.0:
            h = remaining
            if self._program is not None:  # the method's step sets the flow (no pump lag) and the inlet
                later = [b for b in self._program.switching_times() if t + 1e-9 < b < t + remaining - 1e-9]
                h = min(later) - t if later else remaining
                self._set_inlet(time_s=t + 0.5 * h)
                mean_flow = self._method_velocity(t + 0.5 * h) / self._velocity_per_ml_per_min
                self._p[self._velocity_index] = mean_flow * self._velocity_per_ml_per_min
            else:
                self._set_inlet(volume)
                to_boundary_ml = self._volume_to_phase_end(volume)
                if mean_flow > 0.0 and to_boundary_ml < mean_flow * remaining / _SECONDS_PER_MINUTE:
                    h = max(to_boundary_ml / mean_flow * _SECONDS_PER_MINUTE, 1e-9)
            try:
                result = self._integrator(x0=x, p=np.concatenate([self._u, self._p, [h]]))["xf"]
            except RuntimeError as exc:
                raise FloatingPointError(f"plant '{KIND}': column integration failed in the step from plant time "
                                         f"{self._integrated_s:.3f} s: {str(exc).strip().splitlines()[-1]}") from exc
            x = np.asarray(result, dtype=float).ravel()
            if not np.all(np.isfinite(x)):
                raise FloatingPointError(f"plant '{KIND}': non-finite column state in the step from plant time "
                                         f"{self._integrated_s:.3f} s")
            volume += mean_flow * h / _SECONDS_PER_MINUTE
            remaining -= h
            t += h
        cycle = int(volume // self._cycle_volume_ml) if self._program is None else 0
        if self._program is not None:  # the flow of the interval (steps may change it inside) and the one now
            mean_flow = (volume - self._volume_ml) / dt_s * _SECONDS_PER_MINUTE
            flow_end = self._method_velocity(self._time_s) / self._velocity_per_ml_per_min
        self._x, self._volume_ml = x, volume
        self._flow_ml_per_min, self._mean_flow_ml_per_min = flow_end, mean_flow
        self._integrated_s = self._time_s
        self._set_inlet()
        self._y = self._outputs()
        if cycle != self._cycle:  # the skid's program started its next run: a new pool
            self._cycle, self._run_start_s = cycle, self._time_s
            self.fractions.new_run()
            self._eluted_mol = {}

    def measurements(self) -> dict[str, float]:
        """UV mAU, conductivity mS/cm, pressure bar, flow mL/min, with Gaussian noise; run time s and valve 1/0."""
        s = self.parameters
        true = self.true_measurements()
        noise = self._rng.standard_normal(4) * (s.uv_noise_std_mau, s.conductivity_noise_std_ms_per_cm,
                                                s.pressure_noise_std_bar, s.flow_rate_noise_std_ml_per_min)
        noisy = {name: true[name] + float(n) for name, n in zip(self.measured_names[:4], noise, strict=True)}
        return {**true, **noisy}

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
            fractionation.RUN_TIME: self.run_time_s,
            fractionation.VALVE: 1.0 if self.fractions.open else 0.0,
            **dict(zip((METHOD_STEP, METHOD_STEP_REMAINING), self.method_step(), strict=True)),
        }

    @property
    def run_time_s(self) -> float:
        """Seconds since the current run's load started (the method's time; by volume: the cycle's)."""
        return self._time_s - self._run_start_s

    def outlet_mol_per_m3(self) -> dict[str, float]:
        """TRUE outlet concentration of every protein now, mol/m3."""
        return {c: float(self._y[self._outlet_index[c]]) for c in self._proteins}

    def pool(self, target: str, impurities: tuple[str, ...]) -> dict[str, float]:
        """The TRUE pool of the current run: ``amount_<c>_mol`` per protein, ``purity`` of ``target`` against
        ``impurities`` and ``yield`` (the target pooled over the target that left the column in this run so far;
        fractions), ``start_s``/``stop_s`` (run time the valve opened and closed; NaN if not yet)."""
        f = self.fractions
        eluted = self._eluted_mol.get(target, 0.0)
        out = {f"amount_{c}_mol": f.amounts_mol.get(c, 0.0) for c in self._proteins}
        out.update(purity=f.purity(target, impurities),
                   **{"yield": f.amounts_mol.get(target, 0.0) / eluted if eluted > 0 else 0.0},
                   start_s=math.nan if f.opened_s is None else f.opened_s,
                   stop_s=math.nan if f.closed_s is None else f.closed_s)
        return out

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

    def method_step(self) -> tuple[float, float]:
        """``(step number, run time left in it in s)`` now: the method's step (1 = the first; after the last step:
        the last, 0 s), or without a method the volume program's phase (1 load, 2 wash, 3 elute) and the time its
        remaining volume takes at the current flow (0 when the pump stands)."""
        if self._program is not None:
            t = self.run_time_s
            for k, (_, end) in enumerate(self._step_bounds_s, start=1):
                if t < end - 1e-9:
                    return float(k), end - t
            return float(len(self._step_bounds_s)), 0.0
        flow = self._flow_ml_per_min
        left_ml = self._volume_to_phase_end(self._volume_ml)
        return float(self._phase_index(self._volume_ml) + 1), (left_ml / flow * _SECONDS_PER_MINUTE
                                                               if flow > 1e-12 else 0.0)

    @property
    def bound_protein_mol_per_m3(self) -> float:
        """Mean bound protein (all proteins) over the column's solid, mol/m3 solid (kinetic binding)."""
        return float(sum(np.mean(self.state_value(f"bound_concentration_{c}")) for c in self._proteins))

    def state_value(self, name: str) -> np.ndarray:
        """TRUE value of model state ``name`` (SI; a copy)."""
        return self._x[self.model.state_slices[name]].copy()

    # ------------------------------------------------------------------ internals
    def _method_velocity(self, time_s: float) -> float:
        """The method's interstitial velocity (m/s) at run time ``time_s``: its step's, else the declared one."""
        assert self._program is not None
        return float(self._program.velocity_at(np.array([time_s]), self._declared_velocity)[0])

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

    @property
    def _cycle_volume_ml(self) -> float:
        s = self.parameters
        return s.load_volume_ml + s.wash_volume_ml + s.elution_volume_ml

    def _set_inlet(self, volume_ml: float | None = None, time_s: float | None = None) -> None:
        s = self.parameters
        if self._program is not None:
            self._u[:] = self._program.concentration_at(self._time_s if time_s is None else time_s)
            return
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
    ``case``: the column's case file (a path made absolute by the config loader, or a shipped case's short name);
    ``scheme``: ``"dg"`` (default) or ``"fv"``; ``method``/``deviation``: tables of the method program (module
    docstring).

    Raises:
        PlantParameterError: unknown name (lists the allowed ones), non-number, a value out of range, a
            discretisation key of the other scheme, a malformed method or deviation table.
    """
    values = dict(parameters)
    case = values.pop("case", DEFAULT_CASE)
    if not isinstance(case, str):
        raise PlantParameterError(f"plant '{KIND}': parameter 'case' must be a case file path or name, got {case!r}")
    scheme = values.pop("scheme", "dg")
    method_table, deviation_table = values.pop("method", None), values.pop("deviation", None)
    built = build_parameters(KIND, ColumnPhysicsParameters, values)
    other = {"dg": ("axial_cells",), "fv": ("polynomial_degree", "elements")}.get(str(scheme), ())
    wrong = sorted(set(other) & set(values))
    if wrong:
        raise PlantParameterError(f"plant '{KIND}': parameter(s) {wrong} do not apply to scheme {scheme!r}")
    method = deviation = None
    try:
        if method_table is not None:
            if not isinstance(method_table, Mapping):
                raise InletProgramError(f"method: expected a table, got {method_table!r}")
            method = elution_method_from_table(method_table, "method")
    except InletProgramError as exc:
        raise PlantParameterError(f"plant '{KIND}': parameter 'method': {exc}") from None
    try:
        if deviation_table is not None:
            if method is None:
                raise InletProgramError("needs a 'method' table (the method the run departs from)")
            if not isinstance(deviation_table, Mapping):
                raise InletProgramError(f"deviation: expected a table, got {deviation_table!r}")
            deviation = method_deviation_from_table(deviation_table, "deviation")
    except InletProgramError as exc:
        raise PlantParameterError(f"plant '{KIND}': parameter 'deviation': {exc}") from None
    return ColumnPhysics(built, seed=seed, case=case, scheme=str(scheme), method=method, deviation=deviation)
