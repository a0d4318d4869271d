"""Crystallization control: the NMPC objective for a batch cooling crystallizer (``objective``) and the unit
kind's control plan (``control_plan``, registered for kind ``crystallizer`` in :mod:`controllers.plan_registry`
when imported)."""

from controllers.crystallization.objective import (
    CrystallizationObjective,
    crystallizer_nmpc_config,
    linear_cooling_recipe,
)

__all__ = ["CrystallizationObjective", "crystallizer_nmpc_config", "linear_cooling_recipe"]
