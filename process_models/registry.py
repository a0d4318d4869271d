"""Model registry: a unit kind name (``"mixing_tank"``, ``"crystallizer"`` ...) -> a factory that builds the
unit's :class:`~process_models.declaration.ModelDeclaration` from its ``[units.<unit>.model]`` options.

A model module registers itself when imported::

    register_model("crystallizer", lambda options: crystallizer_model(**options), "batch cooling crystallizer")

The kinds shipped with linetwin are listed in :data:`KNOWN_KIND_MODULES`; :func:`model_for_kind` imports
the module of a kind on first use, so importing ``process_models`` stays cheap and a line config that
names only a mixing tank never imports the chromatography code.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from process_models.declaration import ModelDeclaration

__all__ = [
    "KNOWN_KIND_MODULES",
    "ModelFactory",
    "RegisteredModel",
    "UnknownModelKindError",
    "known_kinds",
    "model_for_kind",
    "register_model",
    "registered_model",
    "unit_kinds",
]

_log = logging.getLogger(__name__)

ModelFactory = Callable[[Mapping[str, Any]], ModelDeclaration]

#: unit kind -> module that registers it when imported
KNOWN_KIND_MODULES: Mapping[str, str] = {
    "mixing_tank": "process_models.mixing.mixing_tank",
    "crystallizer": "process_models.crystallization.crystallizer",
    "chromatography_column": "process_models.chromatography.column",
    "axial_dispersion": "process_models.mixing.rtd",
}


class UnknownModelKindError(LookupError):
    """No model is registered for a unit kind (or the module that provides it cannot be imported)."""


@dataclass(frozen=True)
class RegisteredModel:
    kind: str
    factory: ModelFactory
    description: str
    line_unit: bool = True
    """True: a process unit a line config may name (``[units.X] kind``); False: a model only (case files)."""


_REGISTRY: dict[str, RegisteredModel] = {}


def register_model(kind: str, factory: ModelFactory, description: str, *, line_unit: bool = True) -> None:
    """Register ``factory`` for unit kind ``kind``. Registering the same kind again from the same
    module (a reload) replaces the entry; a different module claiming a taken kind is refused."""
    if not kind or not isinstance(kind, str):
        raise ValueError(f"register_model: kind must be a non-empty string, got {kind!r}")
    if not callable(factory):
        raise TypeError(f"register_model('{kind}'): factory must be callable, got {factory!r}")
    existing = _REGISTRY.get(kind)
    if existing is not None and getattr(existing.factory, "__module__", None) != getattr(factory, "__module__", None):
        raise ValueError(
            f"register_model: kind '{kind}' is already registered by module "
            f"{getattr(existing.factory, '__module__', '?')}"
        )
    _REGISTRY[kind] = RegisteredModel(kind, factory, description, line_unit)


def _ensure_imported(kind: str) -> None:
    if kind in _REGISTRY or kind not in KNOWN_KIND_MODULES:
        return
    module = KNOWN_KIND_MODULES[kind]
    try:
        importlib.import_module(module)
    except ImportError as exc:
        raise UnknownModelKindError(
            f"model kind '{kind}' is provided by module '{module}', which could not be imported: {exc}"
        ) from exc
    if kind not in _REGISTRY:
        raise UnknownModelKindError(f"module '{module}' was imported but did not register model kind '{kind}'")


def registered_model(kind: str) -> RegisteredModel:
    """The registry entry of ``kind`` (importing its module if it is a known kind)."""
    _ensure_imported(kind)
    if kind not in _REGISTRY:
        raise UnknownModelKindError(
            f"unknown model kind '{kind}'; expected one of {sorted(set(_REGISTRY) | set(KNOWN_KIND_MODULES))}"
        )
    return _REGISTRY[kind]


def model_for_kind(kind: str, options: Mapping[str, Any] | None = None) -> ModelDeclaration:
    """Build the declaration of a unit of kind ``kind`` from its model options (line config / case file)."""
    return registered_model(kind).factory(dict(options or {}))


def known_kinds() -> dict[str, str]:
    """kind -> description of every registered kind, importing the known modules first. A known module
    that cannot be imported is left out with a warning naming it and the import error."""
    for kind, module in KNOWN_KIND_MODULES.items():
        if kind in _REGISTRY:
            continue
        try:
            _ensure_imported(kind)
        except UnknownModelKindError as exc:
            _log.warning("model kind '%s' unavailable (module %s): %s", kind, module, exc)
    return {k: v.description for k, v in sorted(_REGISTRY.items())}


def unit_kinds() -> dict[str, str]:
    """kind -> description of the kinds a line config may give a unit (models such as ``axial_dispersion``,
    used only in case files, are left out)."""
    known_kinds()
    return {k: v.description for k, v in sorted(_REGISTRY.items()) if v.line_unit}
