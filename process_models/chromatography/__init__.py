"""Chromatography: the packed column (unit kind ``chromatography_column``) — transport models (ED, LRMP, GRM),
isotherms (linear, Langmuir, SMA), inlet programmes (load / wash / elute), detectors, pooling, and case files
validated against CADET-Core. Modules: ``transport``, ``isotherms``, ``inlet``, ``detectors``, ``pooling``,
``rapid_equilibrium`` (what a rapid-equilibrium SMA run needs at its start), ``column`` (the declaration; unit kind
``chromatography_column`` in :mod:`process_models.registry`)."""

from __future__ import annotations

from linetwin_lazy import lazy_exports

# public name -> module that defines it; imported on first use (linetwin_lazy), so importing the package is cheap
_EXPORTS: dict[str, str] = {
    "ChromatographyCase": "process_models.chromatography.column",
    "ChromatographyColumn": "process_models.chromatography.column",
    "chromatography_model": "process_models.chromatography.column",
    "column_from_options": "process_models.chromatography.column",
    "load_case": "process_models.chromatography.column",
    "simulate_column": "process_models.chromatography.column",
}

__all__ = sorted(_EXPORTS)

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
