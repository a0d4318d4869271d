"""Lazy exports for linetwin's packages (PEP 562): a package names its public names and the module of each, and
imports a module only when one of its names is first used.

So importing a package imports none of its modules: ``linetwin --version`` and ``linetwin check`` import neither
torch nor the NMPC, and loading a line config imports neither ``hil``, casadi, torch nor asyncua. Each package's
``__init__.py`` states only its export table::

    _EXPORTS = {"Scenario": "hil.scenario", "load_scenario": "hil.scenario"}
    __all__ = sorted(_EXPORTS)
    __getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

This package is the bottom layer of the code (docs/architecture.md, "Layers"): it imports the standard library only.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["lazy_exports"]


def lazy_exports(package: str, exports: Mapping[str, str]) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """The module ``__getattr__`` and ``__dir__`` of ``package`` for ``exports`` (public name → the module that
    defines it). A name is imported on first use and then kept in the package's namespace; an unknown name raises
    ``AttributeError`` as for any module."""

    def __getattr__(name: str) -> Any:
        if name not in exports:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(exports[name]), name)
        setattr(sys.modules[package], name, value)
        return value

    def __dir__() -> list[str]:
        return sorted(set(vars(sys.modules[package])) | set(exports))

    return __getattr__, __dir__
