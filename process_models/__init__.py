"""Process models: declared once (casadi), simulated, fitted and looked up by unit kind.

Public names only; see the modules for details. Model modules (``mixing_tank``, ``crystallizer``,
``chromatography``) register their unit kinds in :mod:`process_models.registry` when imported;
:func:`model_for_kind` imports them on demand.
"""

from process_models.case_file import CaseFile, CaseFileError, cli_simulate, load_case, simulate_case
from process_models.declaration import (
    CompiledModel,
    DeclarationError,
    Equations,
    Input,
    InputRole,
    ModelDeclaration,
    Parameter,
    Symbols,
    Variable,
    compile_model,
)
from process_models.fitting import FitData, FitError, FitResult, fit_parameters
from process_models.registry import UnknownModelKindError, known_kinds, model_for_kind, register_model
from process_models.simulator import (
    InputProgram,
    InputSpec,
    Phase,
    SimulationCase,
    SimulationError,
    SimulationResult,
    TrajectorySensitivity,
    sensitivities,
    simulate,
    simulate_batch,
    simulate_phases,
    trajectory_sensitivity,
)

__all__ = [
    "CaseFile",
    "CaseFileError",
    "CompiledModel",
    "DeclarationError",
    "Equations",
    "FitData",
    "FitError",
    "FitResult",
    "Input",
    "InputProgram",
    "InputRole",
    "InputSpec",
    "ModelDeclaration",
    "Parameter",
    "Phase",
    "SimulationCase",
    "SimulationError",
    "SimulationResult",
    "Symbols",
    "TrajectorySensitivity",
    "UnknownModelKindError",
    "Variable",
    "cli_simulate",
    "compile_model",
    "fit_parameters",
    "known_kinds",
    "load_case",
    "model_for_kind",
    "register_model",
    "sensitivities",
    "simulate",
    "simulate_batch",
    "simulate_phases",
    "simulate_case",
    "trajectory_sensitivity",
]
