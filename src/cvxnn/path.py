"""`cvxnn.path`: the convex program along a decreasing sequence of weight decays β, with warm starts.

As scikit-learn's ``lasso_path``: β sorted from the largest, each solve started from the solution at the
previous β. The largest useful value is the dual constraint at λ₀ = −∇L(0), the dual point of the zero
network (y for the squared loss; :meth:`~cvxnn.training.Program.zero_dual_point`):

    β_max = max_{i ∈ 𝒟} max(σ_i^+(λ₀), σ_i^-(λ₀))     (ReLU program; cone projections, THEORY §2.2)
    β_max = max_{i ∈ 𝒟} ‖XᵀW_iλ₀‖                   (gated program),

(for c outputs the program's vector constraint at Λ₀). For β ≥ β_max the scaled dual point is λ₀ itself and
d(λ₀) = L(0), the objective at zero, so the zero network is optimal with gap 0.

Without a search one pattern list 𝒟 serves the whole path. With ``search`` each β runs the column generation of
``fit(..., search=...)`` (:func:`~cvxnn.pattern_search.column_generation`) from the previous β's list and
solution, so the list grows along the path as smaller penalties activate more patterns; before the first
solve a search at λ₀ adds the patterns that violate the list's β_max, so the grid starts where the zero
network is optimal on the searched list too.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from .network import TwoLayerNet
from .patterns import Patterns
from .progress import FitProgress
from .training import AUTO_ENUMERATE_LIMIT, ConvexFit, Program, check_time_limit, make_program, resolve_patterns

DEFAULT_N_BETAS = 10
DEFAULT_EPS = 1e-2
PROGRAM_OPTIONS = ("activation", "negative_slope", "loss", "vector_penalty", "tol", "dtype", "device", "verbose",
                   "prune_network")  # the arguments of cvxnn.fit that path passes on (fit_options)


@dataclass
class PathResult:
    """Fits along the path: ``fits[k]`` solves the program at ``betas[k]`` (decreasing).

    beta_max: the smallest β at which the zero network is optimal on the first list (after the search at λ₀,
        with a search).
    patterns: the list of the last fit (without a search, the list of every fit).
    status: "complete", or "time_limit" / "interrupted" (Ctrl-C) when the path stopped early: ``betas`` and
        ``fits`` then hold the values reached, the last fit being the stopped solve's best point.
    The arrays below are read from the fits: objective, lower bound (a dual value for the fit's
    list), relative duality gap, width of the network Φ(v, w), solver iterations and list size.
    """

    betas: np.ndarray
    fits: list[ConvexFit]
    beta_max: float
    patterns: Patterns
    status: str = "complete"

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
    def n_patterns(self) -> np.ndarray:
        return np.array([len(f.patterns) for f in self.fits])

    @property
    def networks(self) -> list[TwoLayerNet]:
        return [f.network for f in self.fits]


def path(X: Any, y: Any, betas: Any = None, patterns: Any = None, formulation: str = "relu", solver: str = "auto",
         bias: bool = False, seed: int | None = 0, n_betas: int = DEFAULT_N_BETAS, eps: float = DEFAULT_EPS,
         max_patterns: int = AUTO_ENUMERATE_LIMIT, search: Any = None, time_limit: float | None = None,
         progress: bool = False, **fit_options: Any) -> PathResult:
    """Solve the convex program for each β in ``betas`` (largest first), each from the previous solution.

    betas: positive values (sorted decreasing here), or None for ``n_betas`` values spaced
        geometrically from β_max down to ``eps``·β_max, as ``lasso_path`` does.
    patterns, formulation, solver, bias, seed, max_patterns: as in :func:`cvxnn.fit`; the list
        is resolved once.
    search: as in :func:`cvxnn.fit` (None/False, True or a :class:`~cvxnn.pattern_search.SearchOptions`, whose
        budget applies per β): each β runs the pattern search from the previous β's list and solution
        (module docstring); ``fits[k].search`` reports its rounds.
    time_limit: seconds for the whole path; the β reached when it runs out returns its best point and the path
        stops there (status "time_limit"). Ctrl-C stops it the same way (status "interrupted").
    progress: show the β done, the search rounds and the running solve with rich on stderr.
    fit_options: further arguments of :func:`cvxnn.fit` that describe the program or the solver
        (activation, negative_slope, loss, vector_penalty, tol, dtype, device, verbose, prune_network).

    For β ≥ β_max the zero network is returned without a solve (optimal, gap 0); below it each
    solve starts from the previous solution (used by the solvers that warm-start).
    """
    from .pattern_search import pricing_list, round_patterns, search_options

    unknown = sorted(set(fit_options) - set(PROGRAM_OPTIONS))
    if unknown:
        raise TypeError(f"path() got unexpected argument(s) {', '.join(unknown)}; besides its own it takes the "
                        f"program's and solver's arguments of fit: {', '.join(PROGRAM_OPTIONS)}.")
    started = time.perf_counter()
    time_limit = check_time_limit(time_limit)
    deadline = None if time_limit is None else started + time_limit
    options = search_options(search)
    program = make_program(X, y, 1.0, formulation, solver, bias, **fit_options)
    pats = resolve_patterns(program.Xt, patterns, seed=seed, max_patterns=max_patterns,
                            activation=program.activation)
    lam0 = program.zero_dual_point()
    beta_max = program.dual_check(pats, lam0).value
    if options is not None and beta_max > 0:  # the patterns beyond the list's β_max, found at the zero network
        at_max = dataclasses.replace(program, beta=float(beta_max))
        try:
            new, _ = round_patterns(at_max, _zero_fit(at_max, pats), pats, options, seed, deadline,
                                    pricing_list(program, max_patterns))
        except KeyboardInterrupt:  # before the first β: no fit yet, as when the time limit ends here
            return PathResult(np.empty(0), [], float(beta_max), pats, "interrupted")
        pats = pats.merge(new)
        beta_max = program.dual_check(pats, lam0).value
    grid = _betas(betas, beta_max, n_betas, eps)
    with FitProgress(progress, None if options is None else options.max_rounds, len(grid)) as bar:
        fits, status = _follow(program, grid, beta_max, pats, options, deadline, max_patterns, seed, bar)
    return PathResult(grid[:len(fits)], fits, float(beta_max), fits[-1].patterns if fits else pats, status)


def _follow(program: Program, grid: np.ndarray, beta_max: float, pats: Patterns, options: Any,
            deadline: float | None, max_patterns: int, seed: int | None, bar: FitProgress
            ) -> tuple[list[ConvexFit], str]:
    """Solve along ``grid``; the fits reached and the path's status."""
    from .pattern_search import column_generation

    fits: list[ConvexFit] = []
    try:
        for beta in grid:
            remaining = None if deadline is None else deadline - time.perf_counter()
            if remaining is not None and remaining <= 0:
                return fits, "time_limit"
            at_beta = dataclasses.replace(program, beta=float(beta))
            if beta >= beta_max:
                res = _zero_fit(at_beta, pats)
            elif options is None:
                res = at_beta.solve(pats, start=None if not fits else (fits[-1].v, fits[-1].w),
                                    callback=bar.solver, time_limit=remaining)
            else:
                res = column_generation(at_beta, pats, options, warm_start=fits[-1] if fits else None, seed=seed,
                                        max_patterns=max_patterns, callback=bar.round, time_limit=remaining)
                pats = res.patterns
            fits.append(res)
            bar.path_step(res)
            if res.status == "interrupted" or (res.status == "time_limit" and deadline is not None
                                               and time.perf_counter() >= deadline):  # not a search's own limit
                return fits, res.status
    except KeyboardInterrupt:  # a solver that does not catch it (the reference): the fits so far
        return fits, "interrupted"
    return fits, "complete"


def _zero_fit(program: Program, pats: Patterns) -> ConvexFit:
    """The zero network on ``pats`` with its certificate (optimal when β ≥ β_max)."""
    return program.at(pats, *program.zero_blocks(pats), "optimal")


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
