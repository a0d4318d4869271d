"""High-order column operators: a nodal discontinuous Galerkin spectral element method (DGSEM) along the column and
orthogonal collocation in the spherical particle (GRM).

Axial (``-u dc/dz + D_ax d2c/dz2`` with Danckwerts boundaries), after Hesthaven & Warburton, *Nodal Discontinuous
Galerkin Methods*, Springer 2008, ch. 3 and 7, and the chromatography DG of Breuer, Leweke, Schmölder, Gassner,
von Lieres, Comput. Chem. Eng. 177 (2023) 108340: ``elements`` equal elements, Lagrange polynomials of degree ``p``
on the ``p + 1`` Legendre–Gauss–Lobatto (LGL) nodes of each element, LGL quadrature (collocated, diagonal mass
matrix), strong form. The dispersive flux uses the auxiliary ``g = dc/dz`` with central numerical fluxes (Bassi &
Rebay 1997, "BR1"); the convective flux is upwind (``u > 0``). Boundaries: the inlet face carries the total flux
``u c_in`` (Danckwerts), the outlet face ``u c`` (``dc/dz = 0``); ``g`` takes the interior trace on both ends.

Particle (GRM, ``D_p / r^2 d/dr (r^2 dc/dr)`` on ``0 <= r <= r_p``), after Villadsen & Michelsen, *Solution of
Differential Equation Models by Polynomial Approximation*, Prentice-Hall 1978, ch. 4: a polynomial in ``x = (r/r_p)^2``
(symmetric, so ``dc/dr(0) = 0`` holds by construction) collocated at the ``N`` roots of the Jacobi polynomial
``P_N^(1, 1/2)`` mapped to ``0 < x < 1`` plus the surface ``x = 1``; there the Laplacian is ``4 x c_xx + 6 c_x``
(per ``r_p^2``) and ``dc/dr(r_p) = 2 c_x / r_p``. The surface value is eliminated with the film condition
``eps_p D_p dc/dr(r_p) = k_f (c - c_s)``, so the states are the ``N`` interior values.
"""

from __future__ import annotations

from functools import lru_cache

import casadi as ca
import numpy as np
from numpy.polynomial import legendre
from scipy.special import roots_jacobi


@lru_cache(maxsize=32)
def lgl_nodes_weights(degree: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``degree + 1`` Legendre–Gauss–Lobatto nodes on [-1, 1] (ascending) and their quadrature weights
    ``2 / (p (p + 1) P_p(x)^2)``."""
    p = int(degree)
    coeffs = np.zeros(p + 1)
    coeffs[p] = 1.0
    interior = np.sort(np.real(legendre.legroots(legendre.legder(coeffs)))) if p > 1 else np.array([])
    nodes = np.concatenate([[-1.0], interior, [1.0]])
    weights = 2.0 / (p * (p + 1) * legendre.legval(nodes, coeffs) ** 2)
    return nodes, weights


def differentiation_matrix(nodes: np.ndarray) -> np.ndarray:
    """``D[i, j] = l_j'(x_i)`` of the Lagrange basis on ``nodes`` (barycentric form, Berrut & Trefethen, SIAM Rev.
    46 (2004) 501)."""
    x = np.asarray(nodes, dtype=float)
    diff = x[:, None] - x[None, :]
    np.fill_diagonal(diff, 1.0)
    bary = 1.0 / diff.prod(axis=1)
    d = (bary[None, :] / bary[:, None]) / diff
    np.fill_diagonal(d, 0.0)
    np.fill_diagonal(d, -d.sum(axis=1))
    return d


def dg_axial_transport(c: ca.SX, c_in: ca.SX, velocity: ca.SX, dispersion: ca.SX, column_length: ca.SX,
                       degree: int, elements: int) -> ca.SX:
    """``-u dc/dz + D_ax d2c/dz2`` (mol/(m3 s)) at every node (``elements * (degree + 1)``, element-major, node 0 at
    the inlet, the last node at the outlet) by DGSEM with Danckwerts boundaries (see the module docstring)."""
    nodes, weights = lgl_nodes_weights(degree)
    npts = degree + 1
    scale = 2.0 / (column_length / elements)          # d xi / dz
    dmat = ca.DM(differentiation_matrix(nodes))
    lift_left, lift_right = scale / weights[0], scale / weights[-1]
    conc = ca.reshape(c, npts, elements)              # column e holds element e

    def star(left: ca.SX, right: ca.SX, inlet: ca.SX, outlet: ca.SX) -> tuple[ca.SX, ca.SX]:
        """Numerical traces on each element's left and right faces from the interface values."""
        inner = (right[:, :-1] + left[:, 1:]) / 2 if elements > 1 else ca.SX(1, 0)
        return ca.horzcat(inlet, inner), ca.horzcat(inner, outlet)

    left, right = conc[0, :], conc[npts - 1, :]
    c_left, c_right = star(left, right, left[:, 0], right[:, elements - 1])
    grad = scale * ca.mtimes(dmat, conc)
    grad[0, :] = grad[0, :] - lift_left * (c_left - left)
    grad[npts - 1, :] = grad[npts - 1, :] + lift_right * (c_right - right)
    flux = velocity * conc - dispersion * grad
    f_left, f_right = flux[0, :], flux[npts - 1, :]
    g_left, g_right = grad[0, :], grad[npts - 1, :]
    upwind = velocity * right[:, :-1] if elements > 1 else ca.SX(1, 0)
    inner_flux = upwind - dispersion * (g_right[:, :-1] + g_left[:, 1:]) / 2 if elements > 1 else ca.SX(1, 0)
    fs_left = ca.horzcat(velocity * c_in, inner_flux)
    fs_right = ca.horzcat(inner_flux, velocity * right[:, elements - 1])
    rate = -scale * ca.mtimes(dmat, flux)
    rate[0, :] = rate[0, :] + lift_left * (fs_left - f_left)
    rate[npts - 1, :] = rate[npts - 1, :] - lift_right * (fs_right - f_right)
    return ca.reshape(rate, npts * elements, 1)


@lru_cache(maxsize=32)
def particle_collocation(points: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Orthogonal collocation in the sphere with ``points`` interior nodes: ``x = (r/r_p)^2`` of the interior nodes
    (ascending), the Laplacian matrix ``(points, points + 1)`` (``r_p^2 * laplacian`` at each interior node from the
    values at all nodes, the surface last) and the surface row of ``dc/dx`` ``(points + 1,)``."""
    roots, _ = roots_jacobi(int(points), 1.0, 0.5)
    x = np.concatenate([np.sort((roots + 1.0) / 2.0), [1.0]])
    d1 = differentiation_matrix(x)
    d2 = d1 @ d1
    laplacian = 4.0 * x[:, None] * d2 + 6.0 * d1
    return x[:-1], laplacian[:-1, :], d1[-1, :]
