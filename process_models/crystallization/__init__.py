"""Crystallization: the batch cooling crystallizer (unit kind ``crystallizer``) — KDP kinetics and solubility,
method-of-moments and finite-volume population-balance models, the published parameter sets, and a scaled
simulation helper. Modules: ``kinetics``, ``params``, ``moments``, ``population_balance``, ``crystallizer``
(the declaration; unit kind ``crystallizer`` in :mod:`process_models.registry`), ``simulation``."""

from __future__ import annotations

from linetwin_lazy import lazy_exports

# public name -> module that defines it; imported on first use (linetwin_lazy), so importing the package is cheap
_EXPORTS: dict[str, str] = {
    "PARAMETER_SETS": "process_models.crystallization.params",
    "crystallizer_model": "process_models.crystallization.crystallizer",
    "discrete_moments": "process_models.crystallization.crystallizer",
    "moments_initial_state": "process_models.crystallization.crystallizer",
    "parameter_set": "process_models.crystallization.params",
    "population_balance_initial_state": "process_models.crystallization.crystallizer",
    "seed_moments": "process_models.crystallization.crystallizer",
    "seed_number_density": "process_models.crystallization.crystallizer",
    "solubility": "process_models.crystallization.kinetics",
}

__all__ = sorted(_EXPORTS)

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
