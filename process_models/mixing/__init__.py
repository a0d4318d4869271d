"""Mixing: the jacketed stirred mixing tank (unit kind ``mixing_tank``) and residence-time models
(tanks in series, axial dispersion vessel ``axial_dispersion``)."""

from process_models.mixing.mixing_tank import KELVIN_OFFSET, mixing_tank_model, mixing_tank_steady_state

__all__ = ["KELVIN_OFFSET", "mixing_tank_model", "mixing_tank_steady_state"]
