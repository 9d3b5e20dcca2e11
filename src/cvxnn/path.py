"""`cvxnn.path`: the convex program along a decreasing sequence of weight decays β, with warm starts.

As scikit-learn's ``lasso_path``: one pattern list 𝒟 for the whole path, β sorted from the largest,
each solve started from the solution at the previous β. The largest useful value is

    β_max = max_{i ∈ 𝒟} max(σ_i^+(y), σ_i^-(y))     (ReLU program; cone projections, THEORY §2.2)
    β_max = max_{i ∈ 𝒟} ‖XᵀW_i y‖                  (gated program),

the dual constraint at λ = y, the dual point of the zero network: for β ≥ β_max the scaled dual
point is y itself, d(y) = ½‖y‖² equals the objective at zero, so the zero network is optimal with gap 0.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np

from .duality import max_dual_constraint
from .network import TwoLayerNet
from .patterns import Patterns
from .training import AUTO_ENUMERATE_LIMIT, ConvexFit, make_program, resolve_patterns

DEFAULT_N_BETAS = 10
DEFAULT_EPS = 1e-2


@dataclass
class PathResult:
    """Fits along the path: ``fits[k]`` solves the program at ``betas[k]`` (decreasing) on ``patterns``.

    beta_max: the smallest β at which the zero network is optimal on ``patterns``.
    The arrays below are read from the fits: objective, lower bound (a dual value for this
    list), relative duality gap, width of the network Φ(v, w) and solver iterations.
    """

    betas: np.ndarray
    fits: list[ConvexFit]
    beta_max: float
    patterns: Patterns

    @property
    def objectives(self) -> np.ndarray:
        return np.array([f.objective for f in self.fits])

    @property
    def lower_bounds(self) -> np.ndarray:
        return np.array([f.lower_bound for f in self.fits])

    @property
    def gaps(self) -> np.ndarray:
        return np.array([f.relative_gap for f in self.fits])

    @property
    def n_neurons(self) -> np.ndarray:
        return np.array([f.n_neurons for f in self.fits])

    @property
    def n_iter(self) -> np.ndarray:
        return np.array([f.n_iter for f in self.fits])

    @property
    def networks(self) -> list[TwoLayerNet]:
        return [f.network for f in self.fits]


def path(X: Any, y: Any, betas: Any = None, patterns: Any = None, formulation: str = "relu", solver: str = "auto",
         bias: bool = False, seed: int | None = 0, n_betas: int = DEFAULT_N_BETAS, eps: float = DEFAULT_EPS,
         max_patterns: int = AUTO_ENUMERATE_LIMIT, **fit_options: Any) -> PathResult:
    """Solve the convex program for each β in ``betas`` (largest first) on one pattern list, with warm starts.

    betas: positive values (sorted decreasing here), or None for ``n_betas`` values spaced
        geometrically from β_max down to ``eps``·β_max, as ``lasso_path`` does.
    patterns, formulation, solver, bias, seed, max_patterns: as in :func:`cvxnn.fit`; the list
        is resolved once and used at every β.
    fit_options: further arguments of :func:`cvxnn.fit` that describe the program or the solver
        (activation, negative_slope, tol, dtype, device, verbose, prune_network).

    For β ≥ β_max the zero network is returned without a solve (optimal, gap 0); below it each
    solve starts from the previous solution (used by the solvers that warm-start).
    """
    program = make_program(X, y, 1.0, formulation, solver, bias, **fit_options)
    pats = resolve_patterns(program.Xt, patterns, seed=seed, max_patterns=max_patterns,
                            activation=program.activation)
    beta_max = max_dual_constraint(program.Xt, pats.masks, program.y, formulation, program.activation).value
    grid = _betas(betas, beta_max, n_betas, eps)
    zeros = np.zeros((len(pats), program.Xt.shape[1]))
    fits: list[ConvexFit] = []
    start = None
    for beta in grid:
        at_beta = dataclasses.replace(program, beta=float(beta))
        if beta >= beta_max:
            res = at_beta.at(pats, zeros, zeros, "optimal")
        else:
            res = at_beta.solve(pats, start=start)
        fits.append(res)
        start = (res.v, res.w)
    return PathResult(grid, fits, float(beta_max), pats)


def _betas(betas: Any, beta_max: float, n_betas: int, eps: float) -> np.ndarray:
    """The β grid, decreasing."""
    if betas is None:
        if isinstance(n_betas, bool) or not isinstance(n_betas, (int, np.integer)) or n_betas < 1:
            raise ValueError(f"n_betas must be a positive integer, got {n_betas!r}.")
        if not 0 < eps < 1:
            raise ValueError(f"eps must lie in (0, 1), got {eps!r}.")
        if beta_max <= 0:
            raise ValueError("β_max is 0 (y is orthogonal to every pattern's features): give betas explicitly.")
        return np.geomspace(beta_max, eps * beta_max, int(n_betas))
    grid = np.atleast_1d(np.asarray(betas, dtype=float))
    if grid.ndim != 1 or grid.size == 0 or not np.all(np.isfinite(grid)) or np.any(grid <= 0):
        raise ValueError(f"betas must be a non-empty sequence of positive finite numbers, got {betas!r}.")
    return np.sort(grid)[::-1]
