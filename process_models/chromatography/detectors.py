"""What a chromatography skid measures at the column: outlet UV absorbance, outlet conductivity, pressure drop.

Simple, documented measurement models computed from the column model's outlet (so the twin can compare them
with the skid's UV, conductivity and pressure tags):

* UV absorbance (Beer–Lambert law): ``A = L_cell * sum_i eps_i c_i`` (dimensionless absorbance units, AU;
  1 AU = 1000 mAU) with molar absorptivity ``eps_i`` in m2/mol (1 L/(mol cm) = 0.1 m2/mol) and flow-cell path
  length ``L_cell`` (m).
* Conductivity in the dilute limit (Kohlrausch): ``kappa = sum_i Lambda_i c_i`` (S/m) with molar conductivity
  ``Lambda_i`` in S m2/mol (NaCl at infinite dilution, 25 degC: 126.4e-4 S m2/mol, CRC Handbook of Chemistry and
  Physics, "Equivalent conductivity of electrolytes in aqueous solution"); it overestimates by ~15 % at 0.1 M.
* Pressure drop of the packed bed (Blake–Kozeny): ``dp = 150 mu v_s L (1 - eps_c)^2 / (d_p^2 eps_c^3)`` (Pa) with
  superficial velocity ``v_s = eps_c u`` and particle diameter ``d_p = 2 r_p`` (R. B. Bird, W. E. Stewart,
  E. N. Lightfoot, *Transport Phenomena*, 2nd ed., Wiley 2002, eq. 6.4-9). Not defined for the ED model (no
  particle size).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import casadi as ca

from process_models.declaration import DeclarationError, Parameter, Variable

_SOURCES = {
    "uv": "Beer-Lambert law; absorptivities from the case file",
    "conductivity": "Kohlrausch dilute limit; NaCl: CRC Handbook (126.4e-4 S m2/mol at 25 degC)",
    "pressure": "Blake-Kozeny, Bird, Stewart & Lightfoot, Transport Phenomena 2002, eq. 6.4-9",
}


@dataclass(frozen=True)
class DetectorSpec:
    """Detector constants. Per-component tuples follow the column's components (empty: all zero)."""

    uv_absorptivity_m2_per_mol: tuple[float, ...] = ()
    uv_path_length_m: float = 2.0e-3
    molar_conductivity_s_m2_per_mol: tuple[float, ...] = ()
    viscosity_pa_s: float = 1.0e-3

    def values(self, key: str, components: Sequence[str]) -> tuple[float, ...]:
        vals = tuple(float(v) for v in getattr(self, key)) or tuple(0.0 for _ in components)
        if len(vals) != len(components) or not all(math.isfinite(v) and v >= 0 for v in vals):
            raise DeclarationError(f"detector: '{key}' needs one finite value >= 0 per component {list(components)}, "
                                   f"got {list(vals)}")
        return vals

    def check(self, components: Sequence[str]) -> None:
        self.values("uv_absorptivity_m2_per_mol", components)
        self.values("molar_conductivity_s_m2_per_mol", components)
        for key in ("uv_path_length_m", "viscosity_pa_s"):
            v = float(getattr(self, key))
            if not (math.isfinite(v) and v > 0):
                raise DeclarationError(f"detector: '{key}' = {v}, expected a finite value > 0")


def detector_from_mapping(table: Mapping[str, object]) -> DetectorSpec:
    allowed = set(DetectorSpec.__dataclass_fields__)
    unknown = sorted(set(table) - allowed)
    if unknown:
        raise DeclarationError(f"detector: unknown key(s) {unknown}; expected some of {sorted(allowed)}")
    return DetectorSpec(**{k: tuple(v) if isinstance(v, list) else v for k, v in table.items()})  # type: ignore[arg-type]


def detector_parameters(spec: DetectorSpec, components: Sequence[str]) -> list[Parameter]:
    spec.check(components)
    uv = spec.values("uv_absorptivity_m2_per_mol", components)
    cond = spec.values("molar_conductivity_s_m2_per_mol", components)
    out = [Parameter("uv_path_length", "m", float(spec.uv_path_length_m), "UV flow-cell path length", lower=0.0,
                     source=_SOURCES["uv"]),
           Parameter("viscosity", "Pa*s", float(spec.viscosity_pa_s), "mobile-phase dynamic viscosity", lower=0.0,
                     source=_SOURCES["pressure"])]
    for comp, e, lam in zip(components, uv, cond, strict=True):
        out.append(Parameter(f"uv_absorptivity_{comp}", "m2/mol", e, f"molar absorptivity of {comp} at the UV "
                             "wavelength", lower=0.0, source=_SOURCES["uv"]))
        out.append(Parameter(f"molar_conductivity_{comp}", "S*m2/mol", lam, f"molar conductivity of {comp}",
                             lower=0.0, source=_SOURCES["conductivity"]))
    return out


def detector_variables(with_pressure: bool) -> tuple[Variable, ...]:
    out = [Variable("outlet_uv_absorbance", "1", "outlet UV absorbance (AU; 1 AU = 1000 mAU)"),
           Variable("outlet_conductivity", "S/m", "outlet conductivity (dilute limit)")]
    if with_pressure:
        out.append(Variable("column_pressure_drop", "Pa", "packed-bed pressure drop (Blake-Kozeny)"))
    return tuple(out)


def detector_outputs(outlet: Sequence[ca.SX], p: Mapping[str, ca.SX], components: Sequence[str],
                     with_pressure: bool) -> dict[str, ca.SX]:
    """Expressions of :func:`detector_variables` from outlet concentrations (mol/m3) and parameters."""
    out = {
        "outlet_uv_absorbance": p["uv_path_length"] * sum(p[f"uv_absorptivity_{c}"] * outlet[k]
                                                          for k, c in enumerate(components)),
        "outlet_conductivity": sum(p[f"molar_conductivity_{c}"] * outlet[k] for k, c in enumerate(components)),
    }
    if with_pressure:
        eps = p["column_porosity"]
        superficial = eps * p["interstitial_velocity"]
        diameter = 2.0 * p["particle_radius"]
        out["column_pressure_drop"] = (150.0 * p["viscosity"] * superficial * p["column_length"] * (1.0 - eps) ** 2
                                       / (diameter**2 * eps**3))
    return out
