"""The skid's bind-and-elute method as the pooling decision sees it: load, wash, linear salt gradient — and the
three ways a run departs from it that an online estimate must absorb (feed titre, gradient slope, isotherm).

The inlet is :func:`process_models.chromatography.inlet.load_wash_elute`: the feed (mol/m3 per protein) for
``load_duration_s``, the wash salt for ``wash_duration_s``, then a linear gradient from
``gradient_start_salt_mol_per_m3`` to ``gradient_end_salt_mol_per_m3`` over ``gradient_duration_s`` (s), held after.
The defaults are CADET-Core's load-wash-elute benchmark (``examples/cases/chromatography_sma_load_wash_elute.toml``
for the sources): 10 s load of 1 mM of each protein at 50 mM salt, wash to 90 s, gradient 100 -> 382 mM over 1410 s.

A run's departure from the method (:class:`MethodDeviation`): ``feed_factors`` scale each protein's feed titre
(a titre the upstream delivered, not the one the batch record states), ``gradient_slope_factor`` scales the
gradient's slope (a buffer-B proportioning error: the end salt becomes ``start + factor * (end - start)``), and
``adsorption_factors`` scale each protein's SMA adsorption rate ``k_a`` (with the fast kinetics of the case this is
the equilibrium constant ``k_a / k_d``; resin lot-to-lot variation shifts retention this way).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from process_models.chromatography.inlet import InletProgram, InletProgramError, load_wash_elute


@dataclass(frozen=True)
class MethodDeviation:
    """How a run departs from the method: factors (dimensionless, > 0) by protein name, and the gradient slope
    factor."""

    feed_factors: Mapping[str, float] = field(default_factory=dict)
    adsorption_factors: Mapping[str, float] = field(default_factory=dict)
    gradient_slope_factor: float = 1.0

    def __post_init__(self) -> None:
        for table, values in (("feed_factors", self.feed_factors), ("adsorption_factors", self.adsorption_factors)):
            for name, value in values.items():
                if not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
                    raise InletProgramError(f"method deviation: {table}['{name}'] = {value!r}, expected a number > 0")
        if not (math.isfinite(self.gradient_slope_factor) and self.gradient_slope_factor > 0):
            raise InletProgramError(f"method deviation: gradient_slope_factor = {self.gradient_slope_factor}, "
                                    f"expected > 0")


@dataclass(frozen=True)
class ElutionMethod:
    """Load-wash-gradient method (module docstring); salt concentrations mol/m3 (= mM), durations s."""

    feed_mol_per_m3: Mapping[str, float] = field(default_factory=lambda: {"lysozyme": 1.0, "cytochrome": 1.0,
                                                                           "ribonuclease": 1.0})
    salt: str = "salt"
    load_duration_s: float = 10.0
    wash_duration_s: float = 80.0
    wash_salt_mol_per_m3: float = 50.0
    gradient_start_salt_mol_per_m3: float = 100.0
    gradient_end_salt_mol_per_m3: float = 382.0
    gradient_duration_s: float = 1410.0

    @property
    def elution_start_s(self) -> float:
        """Start of the gradient, s."""
        return self.load_duration_s + self.wash_duration_s

    def program(self, components: Sequence[str], end_s: float,
                deviation: MethodDeviation | None = None) -> InletProgram:
        """The inlet program up to ``end_s`` (s) for the column's ``components`` (salt included), with a run's
        ``deviation`` applied. Raises InletProgramError naming a protein the column does not have."""
        dev = deviation if deviation is not None else MethodDeviation()
        unknown = sorted((set(self.feed_mol_per_m3) | set(dev.feed_factors) | {self.salt}) - set(components))
        if unknown:
            raise InletProgramError(f"elution method: component(s) {unknown} not in the column's {list(components)}")
        feed = {c: v * float(dev.feed_factors.get(c, 1.0)) for c, v in self.feed_mol_per_m3.items()}
        rise = (self.gradient_end_salt_mol_per_m3 - self.gradient_start_salt_mol_per_m3) * dev.gradient_slope_factor
        duration = min(self.gradient_duration_s, end_s - self.elution_start_s)
        end_salt = self.gradient_start_salt_mol_per_m3 + rise * duration / self.gradient_duration_s
        return load_wash_elute(components, feed, self.load_duration_s, self.wash_duration_s, end_s,
                               salt_component=self.salt, wash_salt_mol_per_m3=self.wash_salt_mol_per_m3,
                               elution_salt_start_mol_per_m3=self.gradient_start_salt_mol_per_m3,
                               elution_salt_end_mol_per_m3=end_salt, gradient_duration_s=duration)


def adsorption_overrides(nominal: Mapping[str, float], factors: Mapping[str, float]) -> dict[str, float]:
    """Column parameter overrides ``adsorption_rate_<protein>`` = nominal value x factor."""
    out = {}
    for protein, factor in factors.items():
        key = f"adsorption_rate_{protein}"
        if key not in nominal:
            raise InletProgramError(f"method deviation: the column has no parameter '{key}' (an SMA/Langmuir/linear "
                                    f"isotherm of '{protein}')")
        out[key] = float(nominal[key]) * float(factor)
    return out


_METHOD_NUMBERS = ("load_duration_s", "wash_duration_s", "wash_salt_mol_per_m3", "gradient_start_salt_mol_per_m3",
                   "gradient_end_salt_mol_per_m3", "gradient_duration_s")


def _factor_table(table: object, where: str) -> dict[str, float]:
    if not isinstance(table, Mapping):
        raise InletProgramError(f"{where}: expected a table of protein name -> number, got {table!r}")
    out = {}
    for name, value in table.items():
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise InletProgramError(f"{where}.{name}: expected a finite number, got {value!r}")
        out[str(name)] = float(value)
    return out


def elution_method_from_table(table: Mapping[str, object], where: str) -> ElutionMethod:
    """An :class:`ElutionMethod` from a config table (``feed_mol_per_m3`` a table by protein, ``salt`` the salt's
    component name, the durations in s and salts in mol/m3 as the field names say; omitted keys keep the defaults).
    Raises InletProgramError naming ``where`` and the key."""
    known = {"feed_mol_per_m3", "salt", *_METHOD_NUMBERS}
    unknown = sorted(set(table) - known)
    if unknown:
        raise InletProgramError(f"{where}: unknown key(s) {unknown}; expected some of {sorted(known)}")
    values: dict[str, object] = {}
    if "feed_mol_per_m3" in table:
        values["feed_mol_per_m3"] = _factor_table(table["feed_mol_per_m3"], f"{where}.feed_mol_per_m3")
    if "salt" in table:
        if not isinstance(table["salt"], str) or not table["salt"]:
            raise InletProgramError(f"{where}.salt: expected the salt's component name, got {table['salt']!r}")
        values["salt"] = table["salt"]
    for key in _METHOD_NUMBERS:
        if key in table:
            value = table[key]
            if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
                raise InletProgramError(f"{where}.{key}: expected a finite number >= 0, got {value!r}")
            values[key] = float(value)
    method = ElutionMethod(**values)  # type: ignore[arg-type]
    if not (method.load_duration_s > 0 and method.gradient_duration_s > 0):
        raise InletProgramError(f"{where}: load_duration_s and gradient_duration_s must be > 0")
    return method


def method_deviation_from_table(table: Mapping[str, object], where: str) -> MethodDeviation:
    """A :class:`MethodDeviation` from a config table (``feed_factors`` and ``adsorption_factors`` tables by
    protein, ``gradient_slope_factor``). Raises InletProgramError naming ``where`` and the key."""
    known = {"feed_factors", "adsorption_factors", "gradient_slope_factor"}
    unknown = sorted(set(table) - known)
    if unknown:
        raise InletProgramError(f"{where}: unknown key(s) {unknown}; expected some of {sorted(known)}")
    slope = table.get("gradient_slope_factor", 1.0)
    if isinstance(slope, bool) or not isinstance(slope, int | float):
        raise InletProgramError(f"{where}.gradient_slope_factor: expected a number > 0, got {slope!r}")
    return MethodDeviation(feed_factors=_factor_table(table.get("feed_factors", {}), f"{where}.feed_factors"),
                           adsorption_factors=_factor_table(table.get("adsorption_factors", {}),
                                                            f"{where}.adsorption_factors"),
                           gradient_slope_factor=float(slope))
