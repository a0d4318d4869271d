"""The ``[model]`` keys of a ``chromatography_column``
(:func:`~process_models.chromatography.column.column_from_options`), with units and defaults: the reference
``linetwin models describe chromatography_column`` prints. SI units as in
:class:`~process_models.chromatography.transport.ColumnSpec` (CADET's conventions: Leweke & von Lieres,
Comput. Chem. Eng. 113 (2018) 274, and the CADET-Core documentation)."""

from __future__ import annotations

from process_models.model_keys import REQUIRED, ModelKey

_KEYS: tuple[ModelKey, ...] = (
    ModelKey("case", "", "none", "a case file (short name or path) whose `[model]` is used; the keys given here "
             "override it"),
    ModelKey("name", "", "chromatography_column", "model name"),
    ModelKey("transport", "", REQUIRED, "equilibrium_dispersive | lumped_rate_with_pores | general_rate"),
    ModelKey("binding", "", "kinetic", "kinetic | rapid_equilibrium"),
    ModelKey("components", "", REQUIRED, "component names, salt first for SMA binding"),
    ModelKey("length_m", "m", REQUIRED, "packed-bed length"),
    ModelKey("interstitial_velocity_m_per_s", "m/s", "required unless a flow rate is given",
             "interstitial velocity u"),
    ModelKey("column_diameter_m", "m", "none", "packed-bed diameter d (needed for flow rates: u = Q / (A eps), "
             "A = pi d^2 / 4)"),
    ModelKey("flow_rate_ml_per_min", "mL/min", "none", "volumetric flow Q instead of the velocity; process "
             "steps ([[steps]]) may set their own"),
    ModelKey("flow_rate_m3_per_s", "m3/s", "none", "the same in m3/s (give one flow key)"),
    ModelKey("axial_dispersion_m2_per_s", "m2/s", REQUIRED, "axial dispersion coefficient D_ax"),
    ModelKey("column_porosity", "1", "0 (required for LRMP, GRM)", "interstitial porosity eps_c"),
    ModelKey("total_porosity", "1", "0 (required for ED)", "total porosity eps_t"),
    ModelKey("particle_porosity", "1", "0 (required for LRMP, GRM)", "particle porosity eps_p"),
    ModelKey("particle_radius_m", "m", "0 (required for LRMP, GRM)", "particle radius r_p"),
    ModelKey("film_diffusion_m_per_s", "m/s", "[] (LRMP, GRM: one per component)", "film mass transfer k_f"),
    ModelKey("pore_diffusion_m2_per_s", "m2/s", "[] (GRM: one per component)", "pore diffusion D_p"),
    ModelKey("isotherm", "", REQUIRED, "table: kind = linear | langmuir | sma and its values "
             "(process_models.chromatography.isotherms)"),
    ModelKey("detector", "", "all zero", "table: uv_absorptivity_m2_per_mol, uv_path_length_m (2e-3), "
             "molar_conductivity_s_m2_per_mol, viscosity_pa_s (1e-3)"),
    ModelKey("discretisation", "", "method fv, axial_cells 50, particle_cells 4, weno_order 2",
             "table: method fv | dg, axial_cells (>= 3), particle_cells (GRM shells; dg: collocation points), "
             "weno_order 1 (upwind) | 2 (WENO3) | 3 (WENO5), weno_epsilon; dg: polynomial_degree, elements"),
    ModelKey("method", "", "fv", "shortcut for discretisation.method: fv (finite volumes) | dg (spectral elements)"),
    ModelKey("polynomial_degree", "", "4", "shortcut for discretisation.polynomial_degree (dg only)"),
    ModelKey("elements", "", "8", "shortcut for discretisation.elements (dg only)"),
    ModelKey("axial_cells", "", "50", "shortcut for discretisation.axial_cells"),
    ModelKey("particle_cells", "", "4", "shortcut for discretisation.particle_cells"),
    ModelKey("weno_order", "", "2", "shortcut for discretisation.weno_order"),
    ModelKey("parameters", "", "{}", "table of parameter overrides by name (below)"),
    ModelKey("column_volume_ml", "mL", "none", "informational: the equations are per unit cross-section"),
)


def model_keys() -> tuple[ModelKey, ...]:
    return _KEYS
