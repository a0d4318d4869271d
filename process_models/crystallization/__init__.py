"""Crystallization: the batch cooling crystallizer (unit kind ``crystallizer``) — KDP kinetics and solubility,
method-of-moments and finite-volume population-balance models, the published parameter sets, and a scaled
simulation helper. Modules: ``kinetics``, ``params``, ``moments``, ``population_balance``, ``crystallizer``
(the declaration, registered as ``crystallizer``), ``simulation``."""

from process_models.crystallization.crystallizer import (
    crystallizer_model,
    discrete_moments,
    moments_initial_state,
    population_balance_initial_state,
    seed_moments,
    seed_number_density,
)
from process_models.crystallization.kinetics import solubility
from process_models.crystallization.params import PARAMETER_SETS, parameter_set

__all__ = [
    "PARAMETER_SETS",
    "crystallizer_model",
    "discrete_moments",
    "moments_initial_state",
    "parameter_set",
    "population_balance_initial_state",
    "seed_moments",
    "seed_number_density",
    "solubility",
]
