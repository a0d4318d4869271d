"""The ``[model]`` keys of a ``crystallizer`` (:func:`~process_models.crystallization.crystallizer.crystallizer_model`),
with units and defaults: the reference ``linetwin models describe crystallizer`` prints."""

from __future__ import annotations

from process_models.model_keys import ModelKey

_KEYS: tuple[ModelKey, ...] = (
    ModelKey("resolution", "", "moments", "moments (method of moments) | population_balance (finite volumes)"),
    ModelKey("parameter_set", "", "kdp_water", "named kinetic/thermodynamic parameter set "
             "(process_models.crystallization.params)"),
    ModelKey("thermal_mode", "", "jacket", "jacket: slurry temperature follows the jacket input | slurry: the "
             "slurry temperature is an input"),
    ModelKey("volume_m3", "m3", "none", "working volume, taken as solvent volume (sets solvent_mass from the "
             "set's solvent_density)"),
    ModelKey("solvent_mass_kg", "kg", "none (the set's solvent_mass)", "batch size: solvent mass (wins over "
             "volume_m3)"),
    ModelKey("n_bins", "", "200", "population_balance: number of size classes"),
    ModelKey("size_max", "m", "0.001", "population_balance: largest crystal size of the grid"),
    ModelKey("size_min", "m", "0", "population_balance: smallest crystal size of the grid"),
    ModelKey("limiter", "", "van_leer", "population_balance: flux limiter van_leer | upwind"),
    ModelKey("parameters", "", "{}", "table of parameter overrides by name (below)"),
)


def model_keys() -> tuple[ModelKey, ...]:
    return _KEYS
