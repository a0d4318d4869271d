"""Crystallization control: the NMPC objective for a batch cooling crystallizer (``objective``), the options of
its ``[units.<unit>.control]`` table (``control_options``) and the unit kind's control plan (``control_plan``),
named for kind ``crystallizer`` in the unit-kind table (:mod:`process_models.registry`)."""

from __future__ import annotations

from linetwin_lazy import lazy_exports

# public name -> module that defines it; imported on first use (linetwin_lazy), so importing the package is cheap
_EXPORTS: dict[str, str] = {
    "CrystallizationObjective": "controllers.crystallization.objective",
    "crystallizer_nmpc_config": "controllers.crystallization.objective",
    "linear_cooling_recipe": "controllers.crystallization.objective",
}

__all__ = sorted(_EXPORTS)

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
