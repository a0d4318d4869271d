"""Residence-time distributions (RTD) of continuous blending: analytic references and a dispersion model.

* Tanks in series (Levenspiel, *Chemical Reaction Engineering*, 3rd ed., Wiley 1999, ch. 14):
  ``E(t) = (N/tau)^N t^(N-1) exp(-N t/tau) / (N-1)!``, mean ``tau``, variance ``tau^2/N``.
  The mixing tank's ``concentration_compartments = N`` option realises this model.
* Axial dispersion (Levenspiel 1999, ch. 13), Peclet number ``Pe = u L / D``:

  - closed-closed vessel (Danckwerts boundaries): mean ``tau``,
    ``sigma^2/tau^2 = 2/Pe - 2/Pe^2 (1 - exp(-Pe))``;
  - open-open vessel: mean ``tau (1 + 2/Pe)``, ``sigma^2/tau^2 = 2/Pe + 8/Pe^2``.

  :func:`axial_dispersion_model` declares the closed-closed vessel discretised by finite volumes:
  Danckwerts inlet (the total flux entering is exactly ``u c_in``), zero-gradient outlet, second-order
  central fluxes for convection and dispersion between cells. Central convection needs the cell
  Peclet number ``Pe/n_cells`` below 2 for a monotone solution; the factory refuses coarser grids.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import casadi as ca
import numpy as np

from process_models.declaration import (
    DeclarationError,
    Equations,
    Input,
    InputRole,
    ModelDeclaration,
    Parameter,
    Symbols,
    Variable,
)
from process_models.model_keys import ModelKey

_LEVENSPIEL_14 = "Levenspiel, Chemical Reaction Engineering, 3rd ed., 1999, ch. 14"
_LEVENSPIEL_13 = "Levenspiel, Chemical Reaction Engineering, 3rd ed., 1999, ch. 13"


def tanks_in_series_e_curve(t_s: np.ndarray, mean_residence_time_s: float, n_tanks: int) -> np.ndarray:
    """Exit-age distribution E(t) (1/s) of N equal ideal tanks in series (Levenspiel 1999, ch. 14)."""
    tau, n = float(mean_residence_time_s), int(n_tanks)
    t = np.asarray(t_s, dtype=float)
    log_e = n * math.log(n / tau) + (n - 1) * np.log(np.maximum(t, 1e-300)) - n * t / tau - math.lgamma(n)
    return np.where(t > 0, np.exp(log_e), 0.0 if n > 1 else n / tau)


def tanks_in_series_moments(mean_residence_time_s: float, n_tanks: int) -> tuple[float, float]:
    """(mean s, variance s^2) = (tau, tau^2/N) (Levenspiel 1999, ch. 14)."""
    return float(mean_residence_time_s), float(mean_residence_time_s) ** 2 / int(n_tanks)


def dispersion_moments(mean_residence_time_s: float, peclet_number: float,
                       boundary: str = "closed") -> tuple[float, float]:
    """(mean s, variance s^2) of the axial dispersion model (Levenspiel 1999, ch. 13).

    ``boundary = "closed"``: closed-closed vessel; ``"open"``: open-open vessel.
    """
    tau, pe = float(mean_residence_time_s), float(peclet_number)
    if pe <= 0:
        raise ValueError(f"peclet_number must be > 0, got {pe}")
    if boundary == "closed":
        return tau, tau**2 * (2.0 / pe - 2.0 / pe**2 * (1.0 - math.exp(-pe)))
    if boundary == "open":
        return tau * (1.0 + 2.0 / pe), tau**2 * (2.0 / pe + 8.0 / pe**2)
    raise ValueError(f"boundary must be 'closed' or 'open', got {boundary!r}")


def moments_from_response(t_s: np.ndarray, outlet_concentration: np.ndarray) -> tuple[float, float]:
    """Mean (s) and variance (s^2) of a pulse response sampled at ``t_s`` (trapezoid quadrature)."""
    t = np.asarray(t_s, dtype=float)
    c = np.asarray(outlet_concentration, dtype=float)
    area = np.trapezoid(c, t)
    mean = np.trapezoid(t * c, t) / area
    variance = np.trapezoid((t - mean) ** 2 * c, t) / area
    return float(mean), float(variance)


def axial_dispersion_model(n_cells: int = 200, volume_m3: float = 0.1, peclet_number: float = 10.0) -> ModelDeclaration:
    """Closed-closed axial dispersion vessel (tracer only), ``n_cells`` finite volumes; see the module docstring.

    States: ``tracer_concentration`` (vector, inlet first). Inputs: ``flow`` (m3/s), ``inlet_tracer_concentration``.
    Parameters: ``volume`` (m3), ``peclet_number`` (u L / D).
    """
    if isinstance(n_cells, bool) or not isinstance(n_cells, int) or n_cells < 2:
        raise DeclarationError(f"axial_dispersion: n_cells must be an integer >= 2, got {n_cells!r}")
    if not peclet_number > 0 or peclet_number / n_cells >= 2.0:
        raise DeclarationError(
            f"axial_dispersion: peclet_number must be > 0 and below 2*n_cells = {2 * n_cells} "
            f"(cell Peclet < 2), got {peclet_number}"
        )
    n = n_cells

    def equations(s: Symbols) -> Equations:
        c = s.x["tracer_concentration"]
        q = s.u["flow"]
        v_cell = s.p["volume"] / n
        # per unit cross-section: u = q/A, D = u L / Pe; flux*A between cells i, i+1:
        # q (c_i + c_{i+1})/2 - (q L / Pe) (c_{i+1} - c_i)/dz   with dz = L/n  ->  q n / Pe (c_{i+1} - c_i)
        disp = q * n / s.p["peclet_number"]
        faces = [q * s.u["inlet_tracer_concentration"]]          # Danckwerts: total flux in = q c_in
        for i in range(n - 1):
            faces.append(q * (c[i] + c[i + 1]) / 2 - disp * (c[i + 1] - c[i]))
        faces.append(q * c[n - 1])                                # zero gradient at the outlet
        dc = [(faces[i] - faces[i + 1]) / v_cell for i in range(n)]
        return Equations(derivatives={"tracer_concentration": ca.vertcat(*dc)},
                         outputs={"outlet_tracer_concentration": c[n - 1]})

    return ModelDeclaration(
        name="axial_dispersion",
        description=f"closed-closed axial dispersion vessel, {n} finite volumes",
        states=(Variable("tracer_concentration", "kg/m3", "tracer concentration per cell (inlet first)", size=n),),
        inputs=(
            Input("flow", "m3/s", "volumetric flow through the vessel", InputRole.MANIPULATED, lower=0.0),
            Input("inlet_tracer_concentration", "kg/m3", "tracer concentration at the inlet", InputRole.DISTURBANCE),
        ),
        parameters=(
            Parameter("volume", "m3", float(volume_m3), "vessel volume", lower=1e-12, source="case"),
            Parameter("peclet_number", "1", float(peclet_number), "axial Peclet number u L / D",
                      lower=1e-9, upper=2.0 * n * (1 - 1e-12), source=_LEVENSPIEL_13),
        ),
        outputs=(Variable("outlet_tracer_concentration", "kg/m3", "tracer concentration leaving the vessel"),),
        equations=equations,
        reference=_LEVENSPIEL_13,
    )


def axial_dispersion_from_options(options: Mapping[str, Any]) -> ModelDeclaration:
    """Unit-kind factory (:mod:`process_models.registry`): the declaration from a case file's ``[model]`` table."""
    allowed = ("n_cells", "volume_m3", "peclet_number")
    unknown = sorted(k for k in options if k not in allowed)
    if unknown:
        raise DeclarationError(f"axial_dispersion: unknown option(s) {unknown}; expected any of {list(allowed)}")
    return axial_dispersion_model(**options)




def model_keys() -> tuple[ModelKey, ...]:
    """The ``[model]`` keys of :func:`axial_dispersion_from_options`, with units and defaults."""
    return (
        ModelKey("n_cells", "", "200", "finite volumes along the vessel (cell Peclet number must stay below 2)"),
        ModelKey("volume_m3", "m3", "0.1", "vessel volume"),
        ModelKey("peclet_number", "1", "10", "vessel Peclet number u L / D"),
    )
