"""NMPC objective for a batch cooling crystallizer (PAT-style control of the crystal size distribution).

Goal at batch end (shrinking horizon to ``batch_end_s``): volume-weighted mean size ``d43`` at a target, as few
fines as possible (minimise the crystal number ``mu0``: nuclei are the fines of a seeded batch), and a number-based
``cv`` no larger than the baseline recipe's (soft terminal constraint); optionally a supersaturation band along the
path (soft) to stay inside the metastable zone. The manipulated input is ``jacket_temperature`` (K), bounded and
rate-limited. Seeded-batch control of this kind: Z. K. Nagy, R. D. Braatz, "Advances and new directions in
crystallization control", Annu. Rev. Chem. Biomol. Eng. 3 (2012) 55-75.

The output names are those of :func:`process_models.crystallization.crystallizer.crystallizer_moments_model`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from controllers.nmpc import (
    EconomicTerm,
    HorizonMode,
    ManipulatedInput,
    NmpcConfig,
    OutputConstraint,
    TerminalTarget,
)
from controllers.supervisor import RecipeProfile

JACKET_TEMPERATURE = "jacket_temperature"


@dataclass(frozen=True, slots=True)
class CrystallizationObjective:
    """Batch-end quality goal. ``seed_count_per_kg`` (#/kg solvent) normalises the fines term; ``max_cv`` is the
    baseline recipe's final CV; ``max_supersaturation`` (relative, optional) bounds S along the path."""

    target_d43_m: float
    seed_count_per_kg: float
    max_cv: float = math.inf
    max_supersaturation: float = math.inf
    d43_weight: float = 1000.0
    d43_scale_m: float = 10e-6
    fines_weight: float = 1.0
    cv_weight: float = 100.0
    supersaturation_weight: float = 100.0

    def __post_init__(self) -> None:
        if not (self.target_d43_m > 0 and self.seed_count_per_kg > 0):
            raise ValueError("CrystallizationObjective: target_d43_m (m) and seed_count_per_kg (#/kg) must be > 0")


def crystallizer_nmpc_config(objective: CrystallizationObjective, sample_period_s: float, horizon: int,
                             jacket_lower_k: float, jacket_upper_k: float, max_move_k: float,
                             move_weight: float = 0.01, substeps: int = 2, max_cpu_time_s: float = 2.0,
                             horizon_mode: HorizonMode = HorizonMode.SHRINKING,
                             state_scales: Mapping[str, float] | None = None) -> NmpcConfig:
    """NMPC configuration for ``objective``: jacket temperature in [lower, upper] K, at most ``max_move_k`` K per
    sample period; horizon of ``horizon`` intervals to batch end (SHRINKING) or of one sample each (RECEDING).
    ``state_scales``: nominal magnitude per state (e.g. the seeded initial state); moments span 1e-10..1e6 in
    SI units, and scaling them by the default floor of 1 leaves Hessian entries near 1e23 that can overflow
    at IPOPT's first iterate (``Invalid_Number_Detected``)."""
    constraints = []
    if math.isfinite(objective.max_cv):
        constraints.append(OutputConstraint("cv", upper=objective.max_cv, scale=0.1, weight=objective.cv_weight,
                                            terminal=True))
    if math.isfinite(objective.max_supersaturation):
        constraints.append(OutputConstraint("supersaturation", upper=objective.max_supersaturation, scale=0.01,
                                            weight=objective.supersaturation_weight))
    return NmpcConfig(
        sample_period_s=sample_period_s,
        horizon=horizon,
        horizon_mode=horizon_mode,
        inputs=(ManipulatedInput(JACKET_TEMPERATURE, jacket_lower_k, jacket_upper_k, max_move=max_move_k,
                                 move_weight=move_weight),),
        terminal_targets=(TerminalTarget("d43", objective.d43_weight, objective.d43_scale_m),),
        economic=(EconomicTerm("mu0", objective.fines_weight, objective.seed_count_per_kg, terminal=True),),
        constraints=tuple(constraints),
        substeps=substeps,
        max_cpu_time_s=max_cpu_time_s,
        state_scales=dict(state_scales or {}),
    )


def linear_cooling_recipe(start_temperature_k: float, end_temperature_k: float, batch_end_s: float,
                          start_s: float = 0.0) -> RecipeProfile:
    """The baseline recipe: jacket temperature ramped linearly from start to end over the batch."""
    return RecipeProfile.linear_ramp(JACKET_TEMPERATURE, start_s, start_temperature_k, batch_end_s,
                                     end_temperature_k)
