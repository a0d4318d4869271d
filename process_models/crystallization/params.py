"""Literature parameter sets for the batch cooling crystallizer models (SI units).

Every value carries its source. Conventions shared by the moment and population-balance models:

* concentrations on a solvent-mass basis: ``solute_concentration`` in kg solute per kg solvent;
* size distribution and moments per kg of solvent: ``mu_k`` in m^k/kg, number density in #/(m kg);
* the solubility is a polynomial in the slurry temperature in degrees Celsius (as the sources publish it),
  converted from kelvin inside the model;
* growth ``G = k_g exp(-E_g/(R T)) S^g`` with the relative supersaturation ``S = (c - c_sat)/c_sat``.

Potassium dihydrogen phosphate (KDP, KH2PO4) in water
------------------------------------------------------
Kinetics and solubility as tabulated for the KDP example of

* R. Gunawan, I. Fusman, R. D. Braatz, "High resolution algorithms for multidimensional population
  balance equations", AIChE J. 50 (2004) 2738-2749, doi:10.1002/aic.10228, Table 1, which takes them from
* R. Gunawan, D. L. Ma, M. Fujiwara, R. D. Braatz, "Identification of kinetic parameters in
  multidimensional crystallization processes", Int. J. Mod. Phys. B 16 (2002) 367-374; the same set is used in
  D. L. Ma, D. K. Tafti, R. D. Braatz, "High-resolution simulation of multidimensional crystal growth",
  Ind. Eng. Chem. Res. 41 (2002) 6217-6223, doi:10.1021/ie010680u:

  - solubility ``c_sat = 9.3027e-5 T^2 - 9.7629e-5 T + 0.2087`` g/g water, T in degC;
  - growth along the first internal coordinate ``G1 = 12.21 S^1.48`` um/s;
  - secondary nucleation ``B = 7.49e-8 S^2.04 * (crystal volume)`` #/(um^3 s), i.e. proportional to the
    crystal volume per unit suspension (here ``kv mu_3``);
  - crystal density 2.338e-12 g/um^3 = 2338 kg/m^3.

Reduction to one internal coordinate (a deviation from the 2-D source): the models here are 1-D, so
crystals are treated as cubes of edge ``L`` (``kv = 1``) growing with the first-coordinate law ``G1``;
the second-coordinate law (``G2 = 100.75 S^1.74`` um/s) is not used. The source kinetics are
temperature independent (``E_g = 0``).

Verification status (checked 2026-11 against what could be read; see tests/process_models/
test_crystallizer_published.py):

* first author corrected to R. (Rudiyanto) Gunawan (was "S. Gunawan"); DOIs added;
* crystal density 2338 kg/m3: agrees with the handbook density of KH2PO4, 2.338 g/cm3 (as quoted in the
  "Monopotassium phosphate" data box of Wikipedia);
* solubility basis: the polynomial gives 0.244 g/g at 20 degC, within 8 % of the handbook solubility
  22.6 g/100 mL water at 20 degC (same data box); read as g per g *solution* it would be 42 % off, so the
  per-kg-water basis used here is the consistent reading;
* kinetic constants (12.21, 1.48, 7.49e-8, 2.04) and the polynomial coefficients: NOT verified against the
  text of the papers, which could not be consulted; they are kept as the colleague recorded them.

Values without a literature source are marked "illustrative" (thermal lag of a pilot vessel, smoothing
width); they are engineering choices, not measurements.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from process_models.declaration import Parameter

KDP_SOURCE = (
    "R. Gunawan, Fusman & Braatz, AIChE J. 50 (2004) 2738, doi:10.1002/aic.10228, Table 1 (from Gunawan, Ma, "
    "Fujiwara & Braatz, Int. J. Mod. Phys. B 16 (2002) 367); also Ma, Tafti & Braatz, Ind. Eng. Chem. Res. 41 "
    "(2002) 6217, doi:10.1021/ie010680u"
)
KDP_HANDBOOK = "KH2PO4 handbook data (Wikipedia 'Monopotassium phosphate' data box): density 2.338 g/cm3"
ILLUSTRATIVE = "illustrative engineering value (no literature source)"


@dataclass(frozen=True, slots=True)
class CrystallizerParameterSet:
    """A named set of default parameter values (SI), each with its source."""

    name: str
    description: str
    values: Mapping[str, float]
    sources: Mapping[str, str]


def _kdp() -> CrystallizerParameterSet:
    um = 1e-6
    values = {
        # solubility polynomial in degC, kg/kg water (g/g in the source; same number)
        "solubility_coefficient_0": 0.2087,
        "solubility_coefficient_1": -9.7629e-5,
        "solubility_coefficient_2": 9.3027e-5,
        "crystal_density": 2.338e-12 * 1e-3 / um**3,  # g/um^3 -> kg/m^3 (= 2338)
        "volume_shape_factor": 1.0,
        "growth_rate_constant": 12.21 * um,  # um/s -> m/s
        "growth_order": 1.48,
        "growth_activation_energy": 0.0,
        "growth_size_coefficient": 0.0,
        "growth_size_exponent": 1.0,
        "dissolution_rate_constant": 0.0,
        "dissolution_order": 1.0,
        "secondary_nucleation_rate_constant": 7.49e-8 / um**3,  # #/(um^3 s) -> #/(m^3 s)
        "secondary_nucleation_order": 2.04,
        "secondary_nucleation_suspension_exponent": 1.0,
        "nucleation_activation_energy": 0.0,
        "primary_nucleation_rate_constant": 0.0,
        "primary_nucleation_order": 2.0,
        "homogeneous_nucleation_prefactor": 0.0,
        "homogeneous_nucleation_exponent": 1.0,
        "heat_transfer_rate_constant": 1.0 / 300.0,
        "crystallization_temperature_rise": 0.0,
        "supersaturation_smoothing": 1e-4,
        "solvent_density": 997.0,
        "solvent_mass": 1.0,
    }
    sources = {name: KDP_SOURCE for name in values}
    for name in ("growth_activation_energy", "nucleation_activation_energy"):
        sources[name] = KDP_SOURCE + " (temperature-independent kinetics)"
    for name in ("growth_size_coefficient", "growth_size_exponent", "dissolution_rate_constant", "dissolution_order",
                 "primary_nucleation_rate_constant", "primary_nucleation_order",
                 "homogeneous_nucleation_prefactor", "homogeneous_nucleation_exponent",
                 "secondary_nucleation_suspension_exponent"):
        sources[name] = KDP_SOURCE + " (mechanism absent from the source: off / neutral value)"
    for name in ("heat_transfer_rate_constant", "crystallization_temperature_rise", "supersaturation_smoothing"):
        sources[name] = ILLUSTRATIVE
    sources["crystal_density"] = f"{KDP_SOURCE}; agrees with {KDP_HANDBOOK}"
    sources["solvent_density"] = "water at 25 degC (IAPWS-95: 997.05 kg/m3)"
    sources["solvent_mass"] = "batch size: set per unit (factory option 'volume_m3' or 'solvent_mass_kg')"
    sources["volume_shape_factor"] = "cube of edge L (1-D reduction of the 2-D KDP model, see module docstring)"
    return CrystallizerParameterSet(
        name="kdp_water",
        description="potassium dihydrogen phosphate (KH2PO4) in water, 1-D reduction of the Braatz-group KDP set",
        values=values,
        sources=sources,
    )


PARAMETER_SETS: dict[str, CrystallizerParameterSet] = {"kdp_water": _kdp()}

# name -> (unit, description, lower, upper); shared by both model resolutions.
_SPECS: dict[str, tuple[str, str, float, float]] = {
    "solubility_coefficient_0": ("kg/kg", "solubility polynomial a0 (c_sat = a0 + a1 T + a2 T^2, T in degC)",
                                 -math.inf, math.inf),
    "solubility_coefficient_1": ("kg/kg/degC", "solubility polynomial a1", -math.inf, math.inf),
    "solubility_coefficient_2": ("kg/kg/degC2", "solubility polynomial a2", -math.inf, math.inf),
    "crystal_density": ("kg/m3", "crystal (solid) density", 1.0, 30000.0),
    "volume_shape_factor": ("1", "volume shape factor kv (crystal volume = kv L^3)", 1e-6, 10.0),
    "growth_rate_constant": ("m/s", "growth rate constant k_g", 0.0, 1.0),
    "growth_order": ("1", "growth order g in S^g", 0.0, 5.0),
    "growth_activation_energy": ("J/mol", "growth activation energy E_g", 0.0, 5e5),
    "growth_size_coefficient": ("1/m", "size-dependent growth gamma in G0 (1 + gamma L)^p (ASL form)", 0.0, 1e7),
    "growth_size_exponent": ("1", "size-dependent growth exponent p in G0 (1 + gamma L)^p; the moment model "
                                  "is closed only for p = 1 and does not declare it", 0.0, 1.0),
    "dissolution_rate_constant": ("m/s", "dissolution rate constant k_d (G = -k_d (-S)^d when S < 0)", 0.0, 1.0),
    "dissolution_order": ("1", "dissolution order d", 0.0, 5.0),
    "secondary_nucleation_rate_constant": ("1/(m3 s)", "secondary nucleation constant k_b in k_b S^b (kv mu3)^j",
                                           0.0, 1e30),
    "secondary_nucleation_order": ("1", "secondary nucleation supersaturation order b", 0.0, 10.0),
    "secondary_nucleation_suspension_exponent": ("1", "suspension-density exponent j on kv mu3", 0.0, 3.0),
    "nucleation_activation_energy": ("J/mol", "nucleation activation energy E_b (all mechanisms)", 0.0, 5e5),
    "primary_nucleation_rate_constant": ("1/(kg s)", "heterogeneous primary nucleation k_p in k_p S^p per kg solvent",
                                         0.0, 1e30),
    "primary_nucleation_order": ("1", "heterogeneous primary nucleation order p", 0.0, 20.0),
    "homogeneous_nucleation_prefactor": ("1/(kg s)", "homogeneous (classical) nucleation A in A exp(-B/ln^2(1+S))",
                                         0.0, 1e40),
    "homogeneous_nucleation_exponent": ("1", "homogeneous nucleation B in A exp(-B/ln^2(1+S))", 0.0, 1e3),
    "heat_transfer_rate_constant": ("1/s", "jacket heat transfer UA/(m cp) of the slurry", 0.0, 10.0),
    "crystallization_temperature_rise": ("K", "adiabatic temperature rise per kg crystallized per kg solvent "
                                              "(dH_cryst / cp_slurry), 0 to neglect", 0.0, 1e4),
    "solvent_density": ("kg/m3", "solvent density (converts kg/kg solvent to kg/m3 solvent)", 100.0, 5000.0),
    "solvent_mass": ("kg", "solvent mass in the batch (scales the per-kg results to the vessel)", 1e-9, 1e9),
    "supersaturation_smoothing": ("1", "width eps of the smooth positive part (S + sqrt(S^2 + eps^2))/2",
                                  1e-12, 1e-1),
}


class CrystallizerParameterError(ValueError):
    """Unknown parameter set or parameter name."""


def parameter_set(name: str) -> CrystallizerParameterSet:
    """The literature parameter set called ``name`` (see :data:`PARAMETER_SETS`)."""
    try:
        return PARAMETER_SETS[name]
    except KeyError:
        raise CrystallizerParameterError(
            f"crystallizer parameter_set '{name}' unknown; expected one of {sorted(PARAMETER_SETS)}"
        ) from None


def kinetic_parameters(set_name: str, names: tuple[str, ...],
                       overrides: Mapping[str, float] | None = None) -> tuple[Parameter, ...]:
    """``Parameter`` declarations for ``names`` with defaults from ``set_name`` and ``overrides`` applied."""
    pset = parameter_set(set_name)
    overrides = dict(overrides or {})
    unknown = sorted(set(overrides) - set(names))
    if unknown:
        raise CrystallizerParameterError(
            f"crystallizer parameter(s) {unknown} unknown; expected some of {sorted(names)}"
        )
    out = []
    for name in names:
        unit, description, lower, upper = _SPECS[name]
        value = float(overrides.get(name, pset.values[name]))
        if not (lower <= value <= upper):
            raise CrystallizerParameterError(
                f"crystallizer parameter '{name}' = {value} {unit} outside [{lower}, {upper}]"
            )
        source = "user override" if name in overrides else pset.sources[name]
        out.append(Parameter(name, unit, value, description, lower, upper, source))
    return tuple(out)


SHARED_PARAMETER_NAMES: tuple[str, ...] = tuple(_SPECS)
"""Parameters common to the moment and the finite-volume model (both declare all of them)."""
