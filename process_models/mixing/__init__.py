"""Mixing: the jacketed stirred mixing tank (unit kind ``mixing_tank``) and residence-time models
(tanks in series, axial dispersion vessel ``axial_dispersion``)."""

from __future__ import annotations

from linetwin_lazy import lazy_exports

# public name -> module that defines it; imported on first use (linetwin_lazy), so importing the package is cheap
_EXPORTS: dict[str, str] = {
    "KELVIN_OFFSET": "process_models.mixing.mixing_tank",
    "mixing_tank_model": "process_models.mixing.mixing_tank",
    "mixing_tank_steady_state": "process_models.mixing.mixing_tank",
}

__all__ = sorted(_EXPORTS)

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
