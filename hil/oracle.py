"""The ``oracle`` strategy of the stepped loop: the twin's NMPC given what only the plant knows.

An oracle run is an MPC run whose control plan is built on the TRUE plant parameters (the plant's kinetic
parameters as the twin model's ``[model] parameters`` overrides), under the true seed, with no parameter estimation,
and whose NMPC starts every solve from the TRUE state (no noise, no analyser delay, no estimator error). Same
objective, horizon, jacket limits, move limit and supervisor as the MPC: its KPIs are the best that NMPC can reach on
that plant under the same constraints, so a campaign can tell "the MPC missed the target" from "the target was
unreachable" (issue 18). What limits it: the NMPC's model is the method of moments while the plant resolves the
full CSD (fines are not in the moments), and the solve is local (IPOPT).

A plant offers an oracle by three methods (the physics crystallizer, :mod:`hil.plants.crystallizer_physics`):
``oracle_model_parameters()``, ``oracle_control_options()`` and ``true_model_state()``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from hil.scenario_runner import ScenarioRunError


@runtime_checkable
class OraclePlant(Protocol):
    """A plant that can tell an oracle its true parameters, seed and state."""

    def oracle_model_parameters(self) -> dict[str, float]: ...

    def oracle_control_options(self) -> dict[str, Any]: ...

    def true_model_state(self) -> dict[str, float]: ...


@dataclass(frozen=True)
class OracleKnowledge:
    """What the oracle's plan is built from and starts each solve from."""

    model_options: Mapping[str, Any]
    """The twin's ``[model]`` table with the true parameters as its ``parameters`` overrides."""
    control_options: Mapping[str, Any]
    """The scenario's control options with the plant's oracle options over them."""
    true_state: Callable[[], dict[str, float]]
    """The plant's true state in the NMPC model's names (SI), read at each decision."""


def oracle_knowledge(plant: object, unit: str, unit_model: Mapping[str, Any],
                     control_options: Mapping[str, Any]) -> OracleKnowledge:
    """The oracle's plan inputs for ``plant``; ScenarioRunError if the plant offers no oracle."""
    if not isinstance(plant, OraclePlant):
        raise ScenarioRunError(f"unit '{unit}': the plant '{type(plant).__name__}' offers no oracle (true parameters "
                               f"and state); use plant_model = \"physics\"")
    parameters = {**dict(unit_model.get("parameters", {})), **plant.oracle_model_parameters()}
    return OracleKnowledge(model_options={**dict(unit_model), "parameters": parameters},
                           control_options={**dict(control_options), **plant.oracle_control_options()},
                           true_state=plant.true_model_state)
