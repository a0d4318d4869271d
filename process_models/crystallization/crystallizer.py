"""Batch cooling crystallizer: the public entry point (model factories, seeding, registry factory).

Two resolutions of one process, sharing kinetics (:mod:`process_models.crystallization.kinetics`),
literature parameter sets (:mod:`process_models.crystallization.params`) and output names:

* :func:`crystallizer_moments_model` — method of moments (mu0..mu4), smooth, for NMPC/EKF;
* :func:`crystallizer_population_balance_model` — high-resolution finite-volume population balance (full CSD).

Basis: per kg of solvent (``solute_concentration`` kg/kg, ``mu_k`` m^k/kg, number density #/(m kg)); SI units.
Seeds are part of the initial state: :func:`seed_moments` / :func:`seed_number_density` turn a seed loading
(kg seed per kg solvent, Gaussian size distribution) into either model's initial state.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from process_models.crystallization.moments import (
    MOMENT_ORDERS,
    CrystallizerOptionError,
    crystallizer_moments_model,
)
from process_models.crystallization.params import PARAMETER_SETS, parameter_set
from process_models.crystallization.population_balance import (
    SizeGrid,
    crystallizer_population_balance_model,
    size_grid,
)
from process_models.declaration import ModelDeclaration

__all__ = [
    "RESOLUTIONS",
    "CrystallizerOptionError",
    "SizeGrid",
    "crystallizer_model",
    "crystallizer_moments_model",
    "crystallizer_population_balance_model",
    "discrete_moments",
    "moments_initial_state",
    "population_balance_initial_state",
    "seed_moments",
    "seed_number_density",
    "size_grid",
]

RESOLUTIONS = ("moments", "population_balance")
_OPTION_KEYS = {"resolution", "parameter_set", "thermal_mode", "n_bins", "size_max", "size_min", "limiter",
                "parameters", "volume_m3", "solvent_mass_kg"}


def seed_moments(seed_mass: float, mean_size: float, std_size: float, crystal_density: float,
                 volume_shape_factor: float = 1.0) -> np.ndarray:
    """mu0..mu4 (per kg solvent) of ``seed_mass`` kg seed/kg solvent with a Gaussian size distribution.

    Gaussian raw moments E[L^k] of N(mean, std^2); the truncation at L < 0 is neglected (mean > 3 std required).
    """
    if seed_mass < 0 or mean_size <= 0 or std_size < 0 or mean_size < 3 * std_size:
        raise ValueError(
            f"seed_moments: need seed_mass >= 0, mean_size > 0 and mean_size >= 3 std_size, got "
            f"{seed_mass}, {mean_size}, {std_size}"
        )
    m, s = mean_size, std_size
    raw = np.array([1.0, m, m * m + s * s, m**3 + 3 * m * s * s, m**4 + 6 * m * m * s * s + 3 * s**4])
    count = seed_mass / (crystal_density * volume_shape_factor * raw[3])
    return count * raw


def seed_number_density(grid: SizeGrid, seed_mass: float, mean_size: float, std_size: float,
                        crystal_density: float, volume_shape_factor: float = 1.0) -> np.ndarray:
    """Cell values (#/(m kg)) of a Gaussian seed CSD whose discrete crystal mass equals ``seed_mass``."""
    if seed_mass < 0 or mean_size <= 0 or std_size <= 0:
        raise ValueError(f"seed_number_density: need seed_mass >= 0, mean_size > 0, std_size > 0, got "
                         f"{seed_mass}, {mean_size}, {std_size}")
    shape = np.exp(-0.5 * ((grid.centres - mean_size) / std_size) ** 2)
    mass_per_unit = crystal_density * volume_shape_factor * float(np.sum(shape * grid.centres**3) * grid.width)
    return shape * (seed_mass / mass_per_unit) if mass_per_unit > 0 else shape * 0.0


def discrete_moments(grid: SizeGrid, number_density: np.ndarray) -> np.ndarray:
    """mu0..mu4 of a CSD on ``grid`` by the midpoint sums the finite-volume model uses.

    ``number_density``: (n_bins,) or (n_bins, n_times) -> (5,) or (5, n_times).
    """
    n = np.asarray(number_density, dtype=float)
    weights = np.stack([grid.centres**k * grid.width for k in MOMENT_ORDERS])
    return weights @ n


def moments_initial_state(solute_concentration: float, moments: np.ndarray,
                          temperature: float | None = None) -> dict[str, float]:
    """Initial state of the moment model; give ``temperature`` (K) for thermal_mode="jacket"."""
    state = {"solute_concentration": float(solute_concentration),
             **{f"mu{k}": float(moments[k]) for k in MOMENT_ORDERS}}
    if temperature is not None:
        state["temperature"] = float(temperature)
    return state


def population_balance_initial_state(solute_concentration: float, number_density: np.ndarray,
                                     temperature: float | None = None) -> dict[str, float | np.ndarray]:
    """Initial state of the finite-volume model; give ``temperature`` (K) for thermal_mode="jacket"."""
    state: dict[str, float | np.ndarray] = {"solute_concentration": float(solute_concentration),
                                            "number_density": np.asarray(number_density, dtype=float)}
    if temperature is not None:
        state["temperature"] = float(temperature)
    return state


def crystallizer_model(options: Mapping[str, Any]) -> ModelDeclaration:
    """Registry factory: a crystallizer declaration from a case/line ``[model]`` table.

    Keys: ``resolution`` ("moments" | "population_balance", default "moments"); ``parameter_set`` (default
    "kdp_water"); ``volume_m3`` (working volume, taken as solvent volume) or ``solvent_mass_kg`` (batch size for
    the ``crystal_mass`` output); ``thermal_mode`` ("jacket" | "slurry"); for the population balance ``n_bins``,
    ``size_max``/``size_min`` (m) and ``limiter`` ("van_leer" | "upwind"); ``parameters`` (a table of parameter
    overrides by name). Any other key is an error naming it.
    """
    unknown = sorted(set(options) - _OPTION_KEYS)
    if unknown:
        raise CrystallizerOptionError(
            f"crystallizer model option(s) {unknown} unknown; expected some of {sorted(_OPTION_KEYS)}"
        )
    resolution = options.get("resolution", "moments")
    set_name = str(options.get("parameter_set", "kdp_water"))
    if set_name not in PARAMETER_SETS:
        raise CrystallizerOptionError(
            f"crystallizer option 'parameter_set' = {set_name!r}; expected one of {sorted(PARAMETER_SETS)}"
        )
    overrides = options.get("parameters", {})
    if not isinstance(overrides, Mapping):
        raise CrystallizerOptionError(f"crystallizer option 'parameters' must be a table, got {overrides!r}")
    overrides = dict(overrides)
    batch = _solvent_mass(options, overrides, set_name)
    if batch is not None:
        overrides["solvent_mass"] = batch
    thermal_mode = str(options.get("thermal_mode", "jacket"))
    if resolution == "moments":
        extra = sorted({"n_bins", "size_max", "size_min", "limiter"} & set(options))
        if extra:
            raise CrystallizerOptionError(f"crystallizer option(s) {extra} apply only to resolution "
                                          f"'population_balance'")
        return crystallizer_moments_model(overrides, thermal_mode=thermal_mode, parameter_set=set_name)
    if resolution == "population_balance":
        return crystallizer_population_balance_model(
            overrides, n_bins=options.get("n_bins", 200), size_max=_number_option(options, "size_max", 1e-3),
            size_min=_number_option(options, "size_min", 0.0), thermal_mode=thermal_mode,
            limiter=str(options.get("limiter", "van_leer")), parameter_set=set_name,
        )
    raise CrystallizerOptionError(
        f"crystallizer option 'resolution' = {resolution!r}; expected one of {list(RESOLUTIONS)}"
    )


def _number_option(options: Mapping[str, Any], key: str, default: float) -> float:
    value = options.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise CrystallizerOptionError(f"crystallizer option '{key}' = {value!r}; expected a number (m)")
    return float(value)


def _solvent_mass(options: Mapping[str, Any], overrides: Mapping[str, Any], set_name: str) -> float | None:
    """Solvent mass (kg) from ``solvent_mass_kg``, else ``volume_m3`` x solvent density (the working volume taken
    as solvent volume, an approximation good to the dissolved-solute volume fraction)."""
    for key in ("solvent_mass_kg", "volume_m3"):
        value = options.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int | float) or not value > 0):
            raise CrystallizerOptionError(f"crystallizer option '{key}' = {value!r}; expected a number > 0")
    if options.get("solvent_mass_kg") is not None:
        return float(options["solvent_mass_kg"])
    if options.get("volume_m3") is not None:
        density = float(overrides.get("solvent_density", parameter_set(set_name).values["solvent_density"]))
        return float(options["volume_m3"]) * density
    return None


