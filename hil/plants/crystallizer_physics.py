"""Physics crystallizer plant for the HIL bench: the ``process_models`` crystallizer with its own "true" kinetics.

The plant is the same declared model the twin uses
(:func:`process_models.crystallization.crystallizer.crystallizer_model`),
by default at the finite-volume population-balance resolution (full CSD, hence a fines fraction), with

* **true kinetics** = the literature parameter set (and the unit's ``[model] parameters`` overrides, i.e. the
  twin's nominal values) times mismatch factors: ``growth_rate_factor`` multiplies ``growth_rate_constant``;
  ``nucleation_rate_factor`` multiplies every nucleation constant (secondary, primary, homogeneous);
  ``solubility_offset_kg_per_kg`` is added to the solubility polynomial's constant term;
* **a plant change** (optional): from plant time ``kinetics_change_at_s`` (plant seconds since the plant started;
  the first plant step at or after it) the mismatch factors become ``changed_growth_rate_factor``,
  ``changed_nucleation_rate_factor`` and ``changed_solubility_offset_kg_per_kg`` (each left out: unchanged) — a
  new raw-material lot or an impurity; the state carries on (:meth:`CrystallizerPhysics.change_kinetics` does it
  on demand);
* **jacket dynamics**: the thermostat's jacket temperature follows its setpoint as a first-order lag
  ``dT_j/dt = (T_sp - T_j)/tau_j`` (``jacket_time_constant_s``); the slurry follows the jacket through the
  model's own energy balance (``thermal_mode = "jacket"``);
* **integration**: classical RK4 (Hairer, Nørsett & Wanner, *Solving ODEs I*, 2nd ed., 1993, §II.1) as one
  casadi Function of the model's ``rhs`` built once, in equal substeps of at most ``integration_substep_s``;
* **sensors** (all in the tag map's engineering units): slurry and jacket temperature °C (Pt100, no delay);
  solute concentration kg/m³ = c [kg/kg solvent] × solvent density (ATR-FTIR, the model's
  ``solute_mass_concentration``); FBRM chord count rate and mean chord length. Gaussian noise from a seeded
  generator. The analyser tags (``solute_concentration``, ``chord_count_rate``, ``mean_chord_length``) are
  reported ``measurement_delay_s`` plant seconds late (a FIFO of past values: sampling line / spectral
  averaging); temperatures are not delayed.

FBRM measurement model — an ASSUMPTION, not a fitted chord-length-distribution model; it is
:func:`process_models.instruments.fbrm_instruments` (the same form the twin's estimator uses), with the plant's
own "true" calibration constants:

* chord count rate [1/s] = ``fbrm_count_coefficient_m2_per_s`` × mu1 × solvent density, i.e. proportional to the
  total crystal length per m³ (the chance that the scanning beam cuts a particle grows with its size; Ruf,
  Worlitschek & Mazzotti, Part. Part. Syst. Charact. 17 (2000) 167); the default coefficient gives a few
  thousand counts/s for the seed bed;
* mean chord length [µm] = ``fbrm_chord_length_factor`` × mu3/mu2 (Sauter mean size); the default 2/3 is
  Cauchy's mean chord 4V/S of a convex body evaluated for a cube of edge L (4L³/6L² = 2L/3).

The agitator speed setpoint is held and reported back only: the model has no agitation dependence.

Parameter names (the unit's ``[model]`` table merged with its ``[plant]`` table; see
:data:`MODEL_OPTION_NAMES` and :class:`CrystallizerPhysicsParameters`):

* model options, as for the twin's model: ``parameter_set``, ``volume_m3`` or ``solvent_mass_kg``,
  ``parameters`` (table of nominal overrides), ``thermal_mode`` (must be "jacket"), ``resolution`` (the
  twin's resolution; ignored by the plant, which uses ``plant_resolution``), ``n_bins``, ``size_max``,
  ``size_min`` (m), ``limiter`` (the plant's grid when ``plant_resolution = "population_balance"``);
* plant parameters: the fields of :class:`CrystallizerPhysicsParameters` (units in the names).

:meth:`CrystallizerPhysics.truth` exposes the TRUE state for KPIs (never seen by the twin).
"""

from __future__ import annotations

import dataclasses
import math
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import casadi as ca
import numpy as np

from hil.plants.parameters import PlantParameterError, hold_commands
from process_models.crystallization.crystallizer import (
    crystallizer_model,
    moments_initial_state,
    population_balance_initial_state,
    seed_moments,
    seed_number_density,
    size_grid,
)
from process_models.crystallization.kinetics import ZERO_CELSIUS, solubility
from process_models.crystallization.params import PARAMETER_SETS
from process_models.declaration import CompiledModel, compile_model
from process_models.instruments import fbrm_instruments, with_instruments

KIND = "crystallizer"
PLANT_RESOLUTIONS = ("population_balance", "moments")
MODEL_OPTION_NAMES = ("parameter_set", "volume_m3", "solvent_mass_kg", "parameters", "thermal_mode", "resolution",
                      "n_bins", "size_max", "size_min", "limiter")
_NUCLEATION_CONSTANTS = ("secondary_nucleation_rate_constant", "primary_nucleation_rate_constant",
                         "homogeneous_nucleation_prefactor")
_ANALYSER_TAGS = ("solute_concentration", "chord_count_rate", "mean_chord_length")
_UM = 1e-6
_MAX_UNROLLED_SUBSTEPS = 10  # longer PLC steps call the 10-substep Function repeatedly


@dataclass(frozen=True, slots=True)
class CrystallizerPhysicsParameters:
    """Plant parameters (units in the names). Model options come separately (see module docstring)."""

    plant_resolution: str = "population_balance"
    growth_rate_factor: float = 1.0
    nucleation_rate_factor: float = 1.0
    solubility_offset_kg_per_kg: float = 0.0
    jacket_time_constant_s: float = 30.0
    initial_temperature_c: float = 40.0
    initial_concentration_kg_per_kg: float | None = None  # None: saturated (true solubility) at the start
    seed_loading_kg_per_kg: float = 0.0035  # kg seed per kg solvent
    seed_mean_size_um: float = 150.0
    seed_std_size_um: float = 15.0
    initial_agitator_speed_rpm: float = 300.0
    measurement_delay_s: float = 0.0
    temperature_noise_std_c: float = 0.02
    jacket_temperature_noise_std_c: float = 0.02
    solute_concentration_noise_std_kg_per_m3: float = 0.3
    chord_count_rate_noise_std: float = 20.0
    mean_chord_length_noise_std_um: float = 1.0
    fbrm_count_coefficient_m2_per_s: float = 0.05
    fbrm_chord_length_factor: float = 2.0 / 3.0
    fines_size_um: float = 100.0
    integration_substep_s: float = 0.5
    kinetics_change_at_s: float | None = None  # plant seconds since the plant started; None: no change
    changed_growth_rate_factor: float | None = None  # None: unchanged at the change
    changed_nucleation_rate_factor: float | None = None
    changed_solubility_offset_kg_per_kg: float | None = None


@dataclass(frozen=True, slots=True)
class CrystallizerModelOptions:
    """The ``process_models`` crystallizer options the plant uses (names as in the unit's ``[model]``)."""

    parameter_set: str = "kdp_water"
    volume_m3: float | None = 0.02
    solvent_mass_kg: float | None = None
    parameters: Mapping[str, float] = field(default_factory=dict)
    n_bins: int = 200
    size_max: float = 1e-3
    size_min: float = 0.0
    limiter: str = "van_leer"


_POSITIVE = ("jacket_time_constant_s", "seed_mean_size_um", "fbrm_chord_length_factor", "fines_size_um",
             "integration_substep_s")
_NON_NEGATIVE = ("growth_rate_factor", "nucleation_rate_factor", "seed_loading_kg_per_kg", "seed_std_size_um",
                 "initial_agitator_speed_rpm", "measurement_delay_s", "fbrm_count_coefficient_m2_per_s",
                 "kinetics_change_at_s", "changed_growth_rate_factor", "changed_nucleation_rate_factor")
_CHANGED = ("changed_growth_rate_factor", "changed_nucleation_rate_factor", "changed_solubility_offset_kg_per_kg")


def crystallizer_physics_parameters(
    values: Mapping[str, Any],
) -> tuple[CrystallizerModelOptions, CrystallizerPhysicsParameters]:
    """Split and check a merged ``[model]`` + ``[plant]`` table.

    Raises:
        PlantParameterError: every problem at once (unknown name with the allowed ones, wrong type, out of range).
    """
    errors: list[str] = []
    plant_fields = {f.name: f for f in dataclasses.fields(CrystallizerPhysicsParameters)}
    allowed = (*MODEL_OPTION_NAMES, *plant_fields)
    unknown = sorted(name for name in values if name not in allowed)
    if unknown:
        errors.append(f"unknown parameter(s) {', '.join(repr(n) for n in unknown)}; allowed: {', '.join(allowed)}")
    plant: dict[str, Any] = {}
    for name in plant_fields:
        if name not in values:
            continue
        value = values[name]
        if name == "plant_resolution":
            if value not in PLANT_RESOLUTIONS:
                errors.append(f"parameter 'plant_resolution' must be one of {list(PLANT_RESOLUTIONS)}, got {value!r}")
            plant[name] = value
            continue
        if not _is_finite_number(value):
            errors.append(f"parameter '{name}' must be a finite number, got {value!r}")
            continue
        plant[name] = float(value)
        if name in _POSITIVE and not value > 0:
            errors.append(f"parameter '{name}' must be > 0, got {value!r}")
        if (name in _NON_NEGATIVE or "_noise_std" in name) and not value >= 0:
            errors.append(f"parameter '{name}' must be >= 0, got {value!r}")
    options = _model_options(values, errors)
    if ("kinetics_change_at_s" in values) != any(name in values for name in _CHANGED):
        errors.append("parameters 'kinetics_change_at_s' and at least one of "
                      f"{', '.join(repr(n) for n in _CHANGED)} go together (a change needs a time and what changes)")
    if "seed_mean_size_um" in plant or "seed_std_size_um" in plant:
        mean = plant.get("seed_mean_size_um", CrystallizerPhysicsParameters.seed_mean_size_um)
        std = plant.get("seed_std_size_um", CrystallizerPhysicsParameters.seed_std_size_um)
        if isinstance(mean, float) and isinstance(std, float) and mean < 3.0 * std:
            errors.append(f"parameters 'seed_mean_size_um' ({mean}) must be >= 3 x 'seed_std_size_um' ({std})")
    if errors:
        raise PlantParameterError(f"plant '{KIND}' (physics): " + "; ".join(errors))
    return options, CrystallizerPhysicsParameters(**plant)


def _is_finite_number(value: object) -> bool:
    return not isinstance(value, bool) and isinstance(value, int | float) and math.isfinite(value)


def _model_options(values: Mapping[str, Any], errors: list[str]) -> CrystallizerModelOptions:
    options: dict[str, Any] = {}
    set_name = values.get("parameter_set", "kdp_water")
    if set_name not in PARAMETER_SETS:
        errors.append(f"parameter 'parameter_set' must be one of {sorted(PARAMETER_SETS)}, got {set_name!r}")
    else:
        options["parameter_set"] = set_name
    for name in ("volume_m3", "solvent_mass_kg", "size_max", "size_min"):
        if name in values:
            value = values[name]
            if not _is_finite_number(value) or (value < 0 if name == "size_min" else value <= 0):
                errors.append(f"parameter '{name}' must be a number {'>= 0' if name == 'size_min' else '> 0'}, "
                              f"got {value!r}")
            else:
                options[name] = float(value)
    if "n_bins" in values:
        n_bins = values["n_bins"]
        if isinstance(n_bins, bool) or not isinstance(n_bins, int) or n_bins < 10:
            errors.append(f"parameter 'n_bins' must be an integer >= 10, got {n_bins!r}")
        else:
            options["n_bins"] = n_bins
    if "limiter" in values:
        options["limiter"] = str(values["limiter"])
    thermal_mode = values.get("thermal_mode", "jacket")
    if thermal_mode != "jacket":
        errors.append(f"parameter 'thermal_mode' must be 'jacket' for the physics plant, got {thermal_mode!r}")
    overrides = values.get("parameters", {})
    if not isinstance(overrides, Mapping) or not all(_is_finite_number(v) for v in overrides.values()):
        errors.append(f"parameter 'parameters' must be a table of finite numbers, got {overrides!r}")
    else:
        options["parameters"] = {str(k): float(v) for k, v in overrides.items()}
    return CrystallizerModelOptions(**options)


def true_kinetic_parameters(options: CrystallizerModelOptions,
                            parameters: CrystallizerPhysicsParameters) -> dict[str, float]:
    """The plant's kinetic parameter overrides: nominal values (set + ``options.parameters``) × mismatch."""
    nominal = dict(PARAMETER_SETS[options.parameter_set].values)
    nominal.update(options.parameters)
    true = dict(options.parameters)
    true["growth_rate_constant"] = nominal["growth_rate_constant"] * parameters.growth_rate_factor
    for name in _NUCLEATION_CONSTANTS:
        true[name] = nominal[name] * parameters.nucleation_rate_factor
    true["solubility_coefficient_0"] = nominal["solubility_coefficient_0"] + parameters.solubility_offset_kg_per_kg
    return true


class CrystallizerPhysics:
    """Batch cooling crystallizer plant on the ``process_models`` physics (see module docstring)."""

    kind = KIND
    measured_names = (
        "temperature", "jacket_temperature", "solute_concentration", "chord_count_rate", "mean_chord_length",
    )
    commanded_names = ("jacket_temperature_setpoint", "agitator_speed_setpoint")

    def __init__(self, options: CrystallizerModelOptions | None = None,
                 parameters: CrystallizerPhysicsParameters | None = None, seed: int | None = None) -> None:
        self.options = options if options is not None else CrystallizerModelOptions()
        self.parameters = parameters if parameters is not None else CrystallizerPhysicsParameters()
        o, p = self.options, self.parameters
        self.true_parameters = true_kinetic_parameters(o, p)
        model_options: dict[str, Any] = {"resolution": p.plant_resolution, "parameter_set": o.parameter_set,
                                         "thermal_mode": "jacket", "parameters": self.true_parameters}
        if o.solvent_mass_kg is not None:
            model_options["solvent_mass_kg"] = o.solvent_mass_kg
        elif o.volume_m3 is not None:
            model_options["volume_m3"] = o.volume_m3
        if p.plant_resolution == "population_balance":
            model_options.update(n_bins=o.n_bins, size_max=o.size_max, size_min=o.size_min, limiter=o.limiter)
        try:
            declaration = with_instruments(crystallizer_model(model_options), fbrm_instruments(
                p.fbrm_count_coefficient_m2_per_s, p.fbrm_chord_length_factor))
            self.model: CompiledModel = compile_model(declaration)
        except ValueError as exc:
            raise PlantParameterError(f"plant '{KIND}' (physics): {exc}") from exc
        values = self.model.declaration.parameter_values({})
        self._solvent_density = float(values["solvent_density"])
        self._crystal_density = float(values["crystal_density"])
        self._shape_factor = float(values["volume_shape_factor"])
        self.grid = size_grid(o.n_bins, o.size_max, o.size_min) if p.plant_resolution == "population_balance" \
            else None
        self._rng = np.random.default_rng(seed)
        initial_state = self._initial_state(values)
        self._jacket_k = p.initial_temperature_c + ZERO_CELSIUS
        self._time_s = 0.0
        self._changed = False
        """Whether the scheduled kinetics change (``kinetics_change_at_s``) has happened."""
        self._commands = self.initial_commands()
        self._integrator = _Integrator(self.model, p.jacket_time_constant_s)
        self._xa = ca.DM(np.append(initial_state, self._jacket_k))
        self._p_dm = ca.DM(self.model.pack_parameters({}))
        self._y = self._integrator.outputs(self._xa, self._p_dm)
        self.initial_concentration_kg_per_kg = float(self._y["solute_concentration"])
        self._history: deque[tuple[float, dict[str, float]]] = deque([(0.0, self._analyser_values())])

    # ------------------------------------------------------------------ Plant protocol
    def initial_commands(self) -> dict[str, float]:
        """Jacket setpoint = initial temperature (°C), initial agitator speed (rpm)."""
        p = self.parameters
        return {"jacket_temperature_setpoint": p.initial_temperature_c,
                "agitator_speed_setpoint": p.initial_agitator_speed_rpm}

    def step(self, dt_s: float, commands: Mapping[str, float]) -> None:
        """Advance by ``dt_s`` plant seconds holding ``commands`` (°C, rpm); non-finite commands are ignored."""
        hold_commands(KIND, self._commands, commands)
        if dt_s <= 0.0:
            return
        n = max(1, math.ceil(dt_s / self.parameters.integration_substep_s - 1e-9))
        setpoint_k = self._commands["jacket_temperature_setpoint"] + ZERO_CELSIUS
        xa, y = self._integrator.advance(self._xa, setpoint_k, self._p_dm, dt_s, n)
        if not all(math.isfinite(v) for v in y.values()):
            raise FloatingPointError(f"plant '{KIND}': state became non-finite at plant time {self._time_s:.1f} s "
                                     f"(reduce integration_substep_s)")
        self._xa, self._y = xa, y
        self._jacket_k = float(xa[-1])
        self._time_s += dt_s
        change_at = self.parameters.kinetics_change_at_s
        if change_at is not None and not self._changed and self._time_s >= change_at - 1e-9:
            p = self.parameters
            self.change_kinetics(p.changed_growth_rate_factor, p.changed_nucleation_rate_factor,
                                 p.changed_solubility_offset_kg_per_kg)
            self._changed = True
        self._history.append((self._time_s, self._analyser_values()))
        horizon = self._time_s - self.parameters.measurement_delay_s
        while len(self._history) > 1 and self._history[1][0] <= horizon + 1e-9:
            self._history.popleft()

    def measurements(self) -> dict[str, float]:
        """Temperatures °C, solute kg/m³, chord counts 1/s, mean chord length µm, with noise; analyser tags
        delayed by ``measurement_delay_s``."""
        p = self.parameters
        noise = self._rng.normal
        delayed = self._history[0][1]
        return {
            "temperature": float(self._y["temperature"]) - ZERO_CELSIUS + noise(0.0, p.temperature_noise_std_c),
            "jacket_temperature": self._jacket_k - ZERO_CELSIUS + noise(0.0, p.jacket_temperature_noise_std_c),
            "solute_concentration": delayed["solute_concentration"]
            + noise(0.0, p.solute_concentration_noise_std_kg_per_m3),
            "chord_count_rate": max(delayed["chord_count_rate"] + noise(0.0, p.chord_count_rate_noise_std), 0.0),
            "mean_chord_length": max(delayed["mean_chord_length"] + noise(0.0, p.mean_chord_length_noise_std_um),
                                     0.0),
        }

    # ------------------------------------------------------------------ truth (for KPIs only)
    @property
    def time_s(self) -> float:
        """Plant time advanced by step(), s."""
        return self._time_s

    def truth(self, include_csd: bool = False) -> dict[str, Any]:
        """The TRUE state (no noise, no delay). Sizes in µm, temperatures in °C, concentrations in kg/kg solvent
        and kg/m³; ``yield`` = crystallized fraction of the initially dissolved solute (c0 - c)/c0;
        ``fines_fraction`` = crystal mass fraction below ``fines_size_um`` (None for the moment resolution);
        ``csd`` (only with ``include_csd`` and the population balance): cell centres µm and number density
        #/(m kg solvent)."""
        y = self._y
        c = float(y["solute_concentration"])
        c_sat = float(y["saturation_concentration"])
        out: dict[str, Any] = {
            "time_s": self._time_s,
            "temperature_c": float(y["temperature"]) - ZERO_CELSIUS,
            "jacket_temperature_c": self._jacket_k - ZERO_CELSIUS,
            "jacket_temperature_setpoint_c": self._commands["jacket_temperature_setpoint"],
            "solute_concentration_kg_per_kg": c,
            "solute_concentration_kg_per_m3": c * self._solvent_density,
            "saturation_concentration_kg_per_m3": c_sat * self._solvent_density,
            "supersaturation": float(y["supersaturation"]),
            **{f"mu{k}": float(y[f"mu{k}"]) for k in range(5)},
            "d10_um": float(y["d10"]) / _UM,
            "d32_um": float(y["d32"]) / _UM,
            "d43_um": float(y["d43"]) / _UM,
            "cv": float(y["cv"]),
            "yield": (self.initial_concentration_kg_per_kg - c) / self.initial_concentration_kg_per_kg,
            "yield_fraction": float(y["yield_fraction"]),
            "crystal_mass_kg": float(y["crystal_mass"]),
            "fines_fraction": self._fines_fraction(),
        }
        if include_csd and self.grid is not None:
            out["csd"] = {"size_um": (self.grid.centres / _UM).tolist(),
                          "number_density_per_m_per_kg": self._number_density().tolist()}
        return out

    def change_kinetics(self, growth_rate_factor: float | None = None, nucleation_rate_factor: float | None = None,
                        solubility_offset_kg_per_kg: float | None = None) -> None:
        """The plant changes from now on (an impurity, a new raw-material lot): new mismatch factors against the
        nominal set (same meaning as the constructor's; None keeps the current one). The state is kept; the true
        parameters (:meth:`oracle_model_parameters`) follow. ValueError for a negative factor."""
        changes = {k: v for k, v in (("growth_rate_factor", growth_rate_factor),
                                     ("nucleation_rate_factor", nucleation_rate_factor),
                                     ("solubility_offset_kg_per_kg", solubility_offset_kg_per_kg)) if v is not None}
        bad = {k: v for k, v in changes.items() if k != "solubility_offset_kg_per_kg" and not v >= 0.0}
        if bad or not all(math.isfinite(v) for v in changes.values()):
            raise ValueError(f"plant '{KIND}': change_kinetics needs finite factors >= 0, got {changes}")
        self.parameters = replace(self.parameters, **changes)
        self.true_parameters = true_kinetic_parameters(self.options, self.parameters)
        self._p_dm = ca.DM(self.model.pack_parameters(self.true_parameters))

    # ------------------------------------------------------------------ oracle knowledge (hil.oracle)
    def oracle_model_parameters(self) -> dict[str, float]:
        """The TRUE kinetic parameters as ``[model] parameters`` overrides of the twin's model (growth, every
        nucleation constant, the solubility polynomial's a0 with the plant's offset): what an oracle NMPC knows."""
        return dict(self.true_parameters)

    def oracle_control_options(self) -> dict[str, Any]:
        """``[control]`` options an oracle runs under: the true seed (kg/kg, µm) and no parameter estimation
        (the parameters are known)."""
        p = self.parameters
        return {"seed_loading_kg_per_kg": p.seed_loading_kg_per_kg, "seed_mean_size_um": p.seed_mean_size_um,
                "seed_std_size_um": p.seed_std_size_um, "estimate_parameters": []}

    def true_model_state(self) -> dict[str, float]:
        """The TRUE state in the twin's moment model's names and SI units: solute concentration kg/kg solvent,
        moments mu0..mu4 of the number density per kg solvent (m^k/kg; of the population balance when the plant
        resolves the CSD), slurry temperature K. No noise, no analyser delay."""
        y = self._y
        return {"solute_concentration": float(y["solute_concentration"]), "temperature": float(y["temperature"]),
                **{f"mu{k}": float(y[f"mu{k}"]) for k in range(5)}}

    # ------------------------------------------------------------------ internals
    def _initial_state(self, values: Mapping[str, float]) -> np.ndarray:
        p = self.parameters
        t0_k = p.initial_temperature_c + ZERO_CELSIUS
        c0 = p.initial_concentration_kg_per_kg
        if c0 is None:
            c0 = float(solubility(t0_k, values))
        mean, std = p.seed_mean_size_um * _UM, p.seed_std_size_um * _UM
        if self.grid is None:
            mu = seed_moments(p.seed_loading_kg_per_kg, mean, std, self._crystal_density, self._shape_factor)
            state: Mapping[str, Any] = moments_initial_state(c0, mu, t0_k)
        else:
            n = seed_number_density(self.grid, p.seed_loading_kg_per_kg, mean, max(std, 1e-9),
                                    self._crystal_density, self._shape_factor)
            state = population_balance_initial_state(c0, n, t0_k)
        return self.model.pack_states(state)

    def _number_density(self) -> np.ndarray:
        x = np.asarray(self._xa.full(), dtype=float).ravel()
        return x[self.model.state_slices["number_density"]]

    def _fines_fraction(self) -> float | None:
        if self.grid is None:
            return None
        volume = np.clip(self._number_density(), 0.0, None) * self.grid.centres**3
        total = float(volume.sum())
        if total <= 0.0:
            return 0.0
        return float(volume[self.grid.centres < self.parameters.fines_size_um * _UM].sum()) / total

    def _analyser_values(self) -> dict[str, float]:
        y = self._y
        return {
            "solute_concentration": y["solute_mass_concentration"],
            "chord_count_rate": max(y["chord_count_rate"], 0.0),
            "mean_chord_length": max(y["mean_chord_length"], 0.0) / _UM,
        }


class _Integrator:
    """RK4 steps of the model plus the jacket lag (last state element), as casadi Functions built once per substep
    count and returning the scalar outputs of the new state in the same call (one call per PLC step)."""

    def __init__(self, model: CompiledModel, jacket_time_constant_s: float) -> None:
        self.model = model
        self.xa = ca.SX.sym("x", model.nx + 1)
        self.setpoint = ca.SX.sym("setpoint")
        self.p = ca.SX.sym("p", model.np)
        self.h = ca.SX.sym("h")
        self.tau = jacket_time_constant_s
        rows: list[int] = []
        self.output_names: list[str] = []
        for name, sl in model.output_slices.items():
            if sl.stop - sl.start == 1:
                self.output_names.append(name)
                rows.append(sl.start)
        self._rows = rows
        self._output_fn = ca.Function("plant_outputs", [self.xa, self.p], [self._selected_outputs(self.xa)])
        self._advance: dict[int, ca.Function] = {}

    def _selected_outputs(self, xa: ca.SX) -> ca.SX:
        nx = self.model.nx
        y = self.model.output(xa[:nx], xa[nx], self.p, 0.0)
        return y[self._rows]

    def _rhs(self, z: ca.SX) -> ca.SX:
        nx = self.model.nx
        jacket = z[nx]
        return ca.vertcat(self.model.rhs(z[:nx], jacket, self.p, 0.0), (self.setpoint - jacket) / self.tau)

    def _function(self, n: int) -> ca.Function:
        if n not in self._advance:
            z = self.xa
            sub = self.h / n
            for _ in range(n):
                k1 = self._rhs(z)
                k2 = self._rhs(z + 0.5 * sub * k1)
                k3 = self._rhs(z + 0.5 * sub * k2)
                k4 = self._rhs(z + sub * k3)
                z = z + sub / 6.0 * (k1 + 2 * k2 + 2 * k3 + k4)
            self._advance[n] = ca.Function(f"crystallizer_plant_rk4_{n}", [self.xa, self.setpoint, self.p, self.h],
                                           [z, self._selected_outputs(z)])
        return self._advance[n]

    def advance(self, xa: ca.DM, setpoint_k: float, p: ca.DM, dt_s: float, n: int) -> tuple[ca.DM, dict[str, float]]:
        """State after ``dt_s`` s in ``n`` RK4 substeps holding the jacket setpoint, and its scalar outputs."""
        if n > _MAX_UNROLLED_SUBSTEPS:
            for _ in range(n // _MAX_UNROLLED_SUBSTEPS):
                xa, _ = self._function(_MAX_UNROLLED_SUBSTEPS)(xa, setpoint_k, p, dt_s * _MAX_UNROLLED_SUBSTEPS / n)
            n_rest = n % _MAX_UNROLLED_SUBSTEPS
            if n_rest == 0:
                return xa, self.outputs(xa, p)
            dt_s, n = dt_s * n_rest / n, n_rest
        xa, y = self._function(n)(xa, setpoint_k, p, dt_s)
        return xa, dict(zip(self.output_names, y.nonzeros(), strict=True))

    def outputs(self, xa: ca.DM, p: ca.DM) -> dict[str, float]:
        return dict(zip(self.output_names, self._output_fn(xa, p).nonzeros(), strict=True))


def make_crystallizer_physics(values: Mapping[str, Any], seed: int | None = None) -> CrystallizerPhysics:
    """Build the physics plant from a merged ``[model]`` + ``[plant]`` table (``plant_model`` already removed)."""
    options, parameters = crystallizer_physics_parameters(values)
    return CrystallizerPhysics(options, parameters, seed=seed)
