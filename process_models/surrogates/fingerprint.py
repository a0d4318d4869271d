"""Fingerprints: a hash of a model's declaration (what a surrogate was trained from) and of a dataset's arrays.

A state-transition surrogate replaces only the *dynamics* of a model, so its declaration hash covers the
states (names, sizes, units, bounds), the inputs (names, sizes, units), the right-hand side expression and the
name, unit and default value of every parameter the right-hand side depends on. Adding outputs or instrument
parameters (:func:`process_models.instruments.with_instruments`) leaves it unchanged; changing an equation, a
state or a parameter default the dynamics use changes it. An outlet-curve surrogate also predicts outputs, so
``include_outputs=True`` adds the outputs' names, units and expressions.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping

import casadi as ca
import numpy as np

from process_models.declaration import CompiledModel

__all__ = ["array_hash", "declaration_hash"]


def _rhs_parameters(model: CompiledModel, include_outputs: bool) -> list[int]:
    exprs = [model.xdot_expr] + ([model.y_expr] if include_outputs and model.ny else [])
    used: set[int] = set()
    for expr in exprs:
        flags = ca.which_depends(expr, model.p_sym, 1, False)  # one flag per parameter
        used.update(i for i, f in enumerate(flags) if f)
    return sorted(used)


def declaration_hash(model: CompiledModel, include_outputs: bool = False) -> str:
    """SHA-256 (hex) of the model's dynamics (and outputs with ``include_outputs``); see the module docstring."""
    d = model.declaration
    params = {p.name: p for p in d.parameters}
    used = [model.parameter_names[i] for i in _rhs_parameters(model, include_outputs)]
    doc = {
        "states": [[v.name, v.size, v.unit, repr(v.lower), repr(v.upper)] for v in d.states],
        "inputs": [[v.name, v.size, v.unit] for v in d.inputs],
        "parameters": [[n, params[n].unit, repr(params[n].value), model.parameter_names.index(n)] for n in used],
        "rhs": str(model.xdot_expr),
    }
    if include_outputs:
        doc["outputs"] = [[v.name, v.size, v.unit] for v in d.outputs]
        doc["output_expr"] = str(model.y_expr)
    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()


def array_hash(arrays: Mapping[str, np.ndarray]) -> str:
    """SHA-256 (hex) of named arrays (name, dtype, shape and bytes, in name order)."""
    h = hashlib.sha256()
    for name in sorted(arrays):
        arr = np.ascontiguousarray(arrays[name])
        h.update(name.encode())
        h.update(str(arr.dtype).encode())
        h.update(repr(arr.shape).encode())
        h.update(arr.tobytes())
    return h.hexdigest()
