"""Chromatography: the packed column (unit kind ``chromatography_column``) — transport models (ED, LRMP, GRM),
isotherms (linear, Langmuir, SMA), inlet programmes (load / wash / elute), detectors, pooling, and case files
validated against CADET-Core. Modules: ``transport``, ``isotherms``, ``inlet``, ``detectors``, ``pooling``,
``column`` (the declaration, registered as ``chromatography_column``)."""

from process_models.chromatography.column import (
    ChromatographyCase,
    ChromatographyColumn,
    chromatography_model,
    column_from_options,
    load_case,
    simulate_column,
)

__all__ = [
    "ChromatographyCase",
    "ChromatographyColumn",
    "chromatography_model",
    "column_from_options",
    "load_case",
    "simulate_column",
]
