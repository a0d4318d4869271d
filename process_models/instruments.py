"""Instrument (measurement) models added to a process model's outputs.

A PAT instrument rarely measures a model state directly: an FBRM probe counts chords, an ATR-FTIR
probe sees a concentration through a calibration. :func:`with_instruments` returns a new declaration
whose outputs include the instruments' readings, with the instruments' calibration constants as
ordinary parameters (so an estimator can use them as measured outputs, and a fit can calibrate them).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace

import casadi as ca

from process_models.declaration import Equations, ModelDeclaration, Parameter, Symbols, Variable


@dataclass(frozen=True)
class InstrumentOutput:
    """One instrument reading: an output computed from the base model's outputs and parameters."""

    output: Variable
    parameters: tuple[Parameter, ...]
    expression: Callable[[Mapping[str, ca.SX], Mapping[str, ca.SX]], ca.SX]
    """``(base_outputs, parameters) -> reading`` (casadi expression, SI unit of ``output``)."""


def with_instruments(declaration: ModelDeclaration, instruments: Sequence[InstrumentOutput]) -> ModelDeclaration:
    """``declaration`` with the instruments' readings as extra outputs and their constants as parameters."""
    base_equations = declaration.equations

    def equations(s: Symbols) -> Equations:
        eq = base_equations(s)
        outputs = dict(eq.outputs)
        for inst in instruments:
            outputs[inst.output.name] = inst.expression(eq.outputs, s.p)
        return Equations(eq.derivatives, outputs, eq.state_constraints)

    extra_parameters = tuple(p for inst in instruments for p in inst.parameters)
    return replace(
        declaration,
        name=f"{declaration.name}_with_instruments",
        parameters=declaration.parameters + extra_parameters,
        outputs=declaration.outputs + tuple(inst.output for inst in instruments),
        equations=equations,
    )


FBRM_SOURCE = (
    "chord count rate proportional to the first moment of the CSD (the beam's chance of cutting a particle "
    "grows with its size): Ruf, Worlitschek & Mazzotti, Part. Part. Syst. Charact. 17 (2000) 167-179; "
    "mean chord of a convex body 4V/S (Cauchy), 2L/3 for a cube of edge L"
)


def fbrm_instruments(count_coefficient_m2_per_s: float = 0.05, chord_length_factor: float = 2.0 / 3.0
                     ) -> tuple[InstrumentOutput, ...]:
    """FBRM-like readings for a crystallizer model with outputs ``mu1``, ``d32`` and parameter ``solvent_density``.

    * ``chord_count_rate`` [1/s] = ``fbrm_count_coefficient`` [m²/s] × μ1 [m/kg] × solvent density [kg/m³]
    * ``mean_chord_length`` [m] = ``fbrm_chord_length_factor`` × d32 (= μ3/μ2)

    A simple, stated measurement model (see :data:`FBRM_SOURCE`), not a fitted chord-length distribution; the
    HIL crystallizer plant uses the same form so the twin's estimator and the bench agree structurally.
    """
    count = Parameter("fbrm_count_coefficient", "m2/s", count_coefficient_m2_per_s,
                      "FBRM counts per second per metre of crystal length per m3 of slurry", 0.0, 1e6, FBRM_SOURCE)
    length = Parameter("fbrm_chord_length_factor", "1", chord_length_factor,
                       "mean chord length / Sauter mean size", 0.05, 5.0, FBRM_SOURCE)
    return (
        InstrumentOutput(Variable("chord_count_rate", "1/s", "FBRM chord counts per second", lower=0.0), (count,),
                         lambda y, p: p["fbrm_count_coefficient"] * y["mu1"] * p["solvent_density"]),
        InstrumentOutput(Variable("mean_chord_length", "m", "FBRM mean chord length", lower=0.0), (length,),
                         lambda y, p: p["fbrm_chord_length_factor"] * y["d32"]),
    )
