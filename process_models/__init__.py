"""Process models: declared once (casadi), simulated, fitted and looked up by unit kind.

Public names only, imported on first use; see the modules for details. The unit kinds are one declared table,
:mod:`process_models.registry`; :func:`model_for_kind` imports a kind's model module on demand.
"""

from __future__ import annotations

from linetwin_lazy import lazy_exports

# public name -> module that defines it; imported on first use (linetwin_lazy), so importing the package is cheap
_EXPORTS: dict[str, str] = {
    "CaseFile": "process_models.case_file",
    "CaseFileError": "process_models.case_file",
    "CompiledModel": "process_models.declaration",
    "DeclarationError": "process_models.declaration",
    "Equations": "process_models.declaration",
    "FitData": "process_models.fitting",
    "FitError": "process_models.fitting",
    "FitResult": "process_models.fitting",
    "Input": "process_models.declaration",
    "InputProgram": "process_models.simulator",
    "InputRole": "process_models.declaration",
    "InputSpec": "process_models.simulator",
    "ModelDeclaration": "process_models.declaration",
    "Parameter": "process_models.declaration",
    "ParameterSet": "process_models.parameter_sets",
    "ParameterSetError": "process_models.parameter_sets",
    "ParameterSetStore": "process_models.parameter_sets",
    "Phase": "process_models.simulator",
    "SimulationCase": "process_models.simulator",
    "SimulationError": "process_models.simulator",
    "SimulationResult": "process_models.simulator",
    "Symbols": "process_models.declaration",
    "TrajectorySensitivity": "process_models.simulator",
    "UnknownModelKindError": "process_models.registry",
    "Variable": "process_models.declaration",
    "compile_model": "process_models.declaration",
    "declaration_hash": "process_models.parameter_sets",
    "fit_parameters": "process_models.fitting",
    "known_kinds": "process_models.registry",
    "load_case": "process_models.case_file",
    "model_for_kind": "process_models.registry",
    "nominal_parameter_set": "process_models.parameter_sets",
    "sensitivities": "process_models.simulator",
    "simulate": "process_models.simulator",
    "simulate_batch": "process_models.simulator",
    "simulate_case": "process_models.case_file",
    "simulate_phases": "process_models.simulator",
    "trajectory_sensitivity": "process_models.simulator",
}

__all__ = sorted(_EXPORTS)

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
