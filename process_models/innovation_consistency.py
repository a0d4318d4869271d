"""Does the model still fit the plant? The χ² consistency test of a Kalman filter's innovations.

When the model (with its deployed parameter set) and the noise it declares fit the plant, the normalised
innovation squared of an estimator step, NIS = νᵀS⁻¹ν (ν: measured − predicted, S = H P⁻ Hᵀ + R: the innovation
covariance the filter itself predicted), is χ²-distributed with as many degrees of freedom as measured values were
used (Bar-Shalom, Li & Kirubarajan, *Estimation with Applications to Tracking and Navigation*, Wiley 2001,
§5.4.2, "NIS test"). Its two-sided band at probability ``p`` is ``[χ²⁻¹((1−p)/2, dof), χ²⁻¹((1+p)/2, dof)]``.

- Above the band: the filter is more surprised than its own uncertainty allows — the model (parameters) no longer
  predicts the plant.
- Below the band: the filter is less surprised than it expects — its noise model is pessimistic (measurement
  noise set larger than the instruments'), which says nothing against the parameters.

:func:`nis_quantile` maps a NIS to its χ² cumulative probability, so one fixed band ``[(1−p)/2, (1+p)/2]`` holds
whatever the number of measurements used in a step (a missing analyser value lowers ``dof``).

The χ² distribution comes from ``scipy.special`` (``chdtr``: its CDF, ``chdtri``: the inverse of its survival
function), not ``scipy.stats``: the twin's server imports this module through its alarms, and ``scipy.stats`` costs
every process that starts a twin about a second of CPU at import.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from scipy import special


@dataclass(frozen=True, slots=True)
class NisBand:
    """The χ² band of the NIS at ``probability`` (0 < p < 1, two-sided: (1−p)/2 in each tail)."""

    probability: float = 0.95

    def __post_init__(self) -> None:
        if not (0.0 < self.probability < 1.0):
            raise ValueError(f"NIS band probability must be in (0, 1), got {self.probability!r}")

    @property
    def low_quantile(self) -> float:
        """Cumulative χ² probability of the band's lower edge, (1−p)/2."""
        return (1.0 - self.probability) / 2.0

    @property
    def high_quantile(self) -> float:
        """Cumulative χ² probability of the band's upper edge, (1+p)/2."""
        return (1.0 + self.probability) / 2.0

    def limits(self, dof: int) -> tuple[float, float]:
        """(lower, upper) NIS edges for ``dof`` degrees of freedom (dimensionless); ValueError unless dof ≥ 1."""
        if dof < 1:
            raise ValueError(f"NIS band needs at least one degree of freedom, got {dof}")
        return float(special.chdtri(dof, 1.0 - self.low_quantile)), float(special.chdtri(dof, 1.0 - self.high_quantile))


def nis_quantile(nis: float, dof: int) -> float:
    """Cumulative χ² probability of ``nis`` with ``dof`` degrees of freedom, in [0, 1] (NaN stays NaN)."""
    if dof < 1:
        raise ValueError(f"NIS quantile needs at least one degree of freedom, got {dof}")
    if math.isnan(nis):
        return math.nan
    return float(special.chdtr(dof, max(nis, 0.0)))
