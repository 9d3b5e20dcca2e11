"""`cvxnn.fit`: train a two-layer ReLU network by solving its convex program (THEORY §1).

    fit(X, y, beta, patterns=..., formulation="relu" | "gated", solver="auto" | "reference" | "fista",
        activation="relu" | "leaky_relu" | "abs" | (a, b), search=False | True | SearchOptions(...),
        init_nonconvex=None | epochs | NonconvexInit(...), warm_start=None | ConvexFit | (v, w))

ReLU ("relu"): the exact cone-constrained program (CVX) on the given patterns; with all
patterns (``patterns="all"``) its optimum equals the best NC objective of any width.
Gated ("gated"): the group-lasso relaxation; its solution is turned into a ReLU network by
the cone decomposition, so ``network_objective`` may exceed ``objective``.
Activation σ(t) = a(t)_+ + b(t)_- (THEORY §1.6): both programs use the fit weights
aD_i + b(I − D_i) in place of D_i in the fit term; cones, penalty and Φ are unchanged.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from .activations import DEFAULT_NEGATIVE_SLOPE, RELU, Activation, activation_from
from .cones import decompose
from .data import add_bias, as_matrix, as_targets
from .duality import DualCheck, GapReport, cone_sigma, max_dual_constraint, scaled_dual_value
from .losses import SQUARED
from .network import TwoLayerNet, convex_objective, convex_prediction, network_from_convex, prune
from .patterns import Patterns, count_patterns_bound, data_rank, drop_complements, enumerate_patterns, \
    sample_patterns
from .progress import FitProgress
from .operators import PatternOperator
from .solvers.fista import solve_gated_fista
from .solvers.reference import solve_reference
from .solvers.result import SolverOutput

if TYPE_CHECKING:
    from .pattern_search import SearchReport

FORMULATIONS = ("relu", "gated")
SOLVERS = ("auto", "reference", "fista")
# solver capabilities: which formulations and which activations (by name) each solver handles
SOLVER_FORMULATIONS = {"reference": ("relu", "gated"), "fista": ("gated",)}
SOLVER_ACTIVATIONS = {"reference": ("relu", "leaky_relu", "abs", "two_piece"), "fista": ("relu",)}
SOLVER_WARM_STARTS = ("fista",)  # solvers that start from a given point (the others ignore it)
AUTO_ENUMERATE_LIMIT = 1000
DEFAULT_SAMPLED_PATTERNS = 100


@dataclass
class ConvexFit(GapReport):
    """The solution of a convex program and what it certifies.

    objective: value of the convex program at the returned variables.
    lower_bound: d(tλ) for a feasible dual point of *this pattern list* (λ = y − ŷ scaled by t).
        A lower bound on the program's optimum; a bound on every network only when
        ``patterns.complete`` (then ``certified_global`` is True).
    gap, relative_gap: objective − lower_bound and its ratio to max(objective, tiny).
    network: the network Φ(v, w) with the fit's activation (after pruning to at most n + 1 neurons).
    network_objective: its NC objective (equals ``objective`` for "relu").
    v, w: (P, d) convex blocks; for "gated", u = v with w = 0 and ``decomposed`` holds (v, w)
        after the cone decomposition.
    search: with ``fit(..., search=...)`` or ``init_nonconvex``: how the pattern list was built
        (:class:`~cvxnn.pattern_search.SearchReport`: rounds, largest violation found, starts,
        projections); None otherwise.
    """

    objective: float
    lower_bound: float
    network: TwoLayerNet
    network_objective: float
    v: np.ndarray
    w: np.ndarray
    patterns: Patterns
    beta: float
    formulation: str
    solver: str
    status: str
    n_iter: int
    solve_time: float
    dual_check: DualCheck
    bias: bool = False
    history: list = field(default_factory=list)
    activation: Activation = RELU
    search: SearchReport | None = None

    @property
    def certified_global(self) -> bool:
        """True when the lower bound holds for every network of any width (all patterns listed, cone program)."""
        return self.patterns.complete and self.formulation == "relu"

    @property
    def n_neurons(self) -> int:
        return self.network.width

    def predict(self, X: Any) -> np.ndarray:
        return self.network.predict(X)


def resolve_patterns(Xt: np.ndarray, patterns: Any, seed: int | None = 0,
                     max_patterns: int = AUTO_ENUMERATE_LIMIT, activation: Activation = RELU) -> Patterns:
    """Turn the ``patterns`` argument into a :class:`Patterns` list for the design matrix Xt.

    None: all patterns if at most ``max_patterns`` are predicted, else 100 sampled ones.
    "all": enumerate (error if more than ``max_patterns`` are predicted).
    int: that many Gaussian samples. A Patterns object or (n, P) boolean array: used as given.
    For an even activation (abs) the lists made here keep one pattern of each complementary
    pair; the all-zero pattern is dropped from samples only when it is useless (b = 0).
    """
    n = Xt.shape[0]
    if patterns is None:
        if count_patterns_bound(n, data_rank(Xt)) <= max_patterns:
            return _for_activation(enumerate_patterns(Xt, max_patterns=max_patterns), activation)
        patterns = DEFAULT_SAMPLED_PATTERNS
    if isinstance(patterns, str):
        if patterns != "all":
            raise ValueError(f"patterns must be None, 'all', an int, or a Patterns object; got {patterns!r}.")
        return _for_activation(enumerate_patterns(Xt, max_patterns=max_patterns), activation)
    if isinstance(patterns, (int, np.integer)) and not isinstance(patterns, bool):
        sampled = sample_patterns(Xt, int(patterns), seed=seed, drop_zero=activation.zero_pattern_useless)
        return _for_activation(sampled, activation)
    if isinstance(patterns, Patterns):
        if patterns.n_samples != n:
            raise ValueError(f"the patterns are for {patterns.n_samples} samples but X has {n}.")
        check_patterns_for(patterns, activation)
        return patterns
    masks = np.asarray(patterns)
    if masks.dtype != bool or masks.ndim != 2 or masks.shape[0] != n:
        raise ValueError(f"patterns given as an array must be ({n}, P) boolean, got {masks.dtype} {masks.shape}.")
    return Patterns(masks, method="given")


def _for_activation(patterns: Patterns, activation: Activation) -> Patterns:
    """Drop complementary patterns for an even activation (they give the same neurons)."""
    return drop_complements(patterns) if activation.even else patterns


def check_patterns_for(patterns: Patterns, activation: Activation) -> None:
    """Refuse a list halved by :func:`~cvxnn.patterns.drop_complements` for an activation that is not even."""
    if patterns.info.get("complements_dropped") and not activation.even:
        raise ValueError(f"these patterns keep one of each complementary pair, enough only for an even "
                         f"activation (abs); the {activation.name!r} activation needs both.")


@dataclass(frozen=True)
class NonconvexInit:
    """A short nonconvex run whose neuron patterns seed the pattern list (``fit(..., init_nonconvex=...)``).

    :func:`cvxnn.nonconvex.train_nonconvex` with these settings (``seed`` None: fit's seed); its
    network θ maps by Ψ to a feasible point of the program on a list holding its patterns, so the
    fit's objective is at most NC(θ) (THEORY §1.2).
    """

    epochs: int = 200
    width: int = 50
    lr: float = 1e-2
    optimizer: str = "adam"
    seed: int | None = None


@dataclass(frozen=True)
class Program:
    """One convex program (data, β, formulation, activation) and how to solve it, on any pattern list.

    Used by :func:`fit`, by its pattern search (one solve per round) and by :func:`cvxnn.path`.
    """

    Xm: np.ndarray
    y: np.ndarray
    Xt: np.ndarray
    beta: float
    formulation: str = "relu"
    solver: str = "auto"
    activation: Activation = RELU
    bias: bool = False
    tol: float = 1e-6
    dtype: torch.dtype = torch.float64
    device: str = "cpu"
    verbose: bool = False
    prune_network: bool = True

    def solve(self, pats: Patterns, start: tuple[np.ndarray, np.ndarray] | None = None,
              callback: Callable[[int, float, float], Any] | None = None,
              time_limit: float | None = None) -> ConvexFit:
        """Solve the program on ``pats``; solvers in SOLVER_WARM_STARTS start from ``start`` = (v, w).

        ``callback(iteration, objective, lower_bound)`` and ``time_limit`` (seconds) reach the
        solvers that report progress (fista). If ``start`` has a lower objective than the solver's
        answer (an inexact stop), ``start`` is returned: the fit is never worse than its start.
        """
        solver = _choose_solver(self.solver, self.formulation, self.Xt.shape[0] * len(pats), self.activation)
        if solver == "fista":
            op = PatternOperator(self.Xt, pats.masks, dtype=self.dtype, device=self.device)
            U0 = None if start is None else torch.as_tensor(start[0] - start[1], dtype=self.dtype,
                                                            device=self.device)
            out = solve_gated_fista(op, torch.as_tensor(self.y, dtype=self.dtype, device=self.device), self.beta,
                                    U0=U0, tol=self.tol, callback=callback, time_limit=time_limit)
        else:
            out = solve_reference(self.Xt, self.y, pats.masks, self.beta, self.formulation, verbose=self.verbose,
                                  activation=self.activation)
        res = self._finish(pats, out, solver, polish=solver == "reference")
        if start is not None:
            begin = self.at(pats, start[0], start[1], out.status)
            if begin.objective < res.objective:
                return begin
        return res

    def at(self, pats: Patterns, v: np.ndarray, w: np.ndarray, status: str) -> ConvexFit:
        """The fit at a given feasible point (v, w) on ``pats``, with its certificate; nothing is solved."""
        return self._finish(pats, SolverOutput(v, w, status, 0, 0.0), "none", polish=False)

    def _finish(self, pats: Patterns, out: SolverOutput, solver: str, polish: bool) -> ConvexFit:
        Xt, yv, beta, act = self.Xt, self.y, self.beta, self.activation
        if polish:  # interior-point dust; proximal methods return exact zeros
            v, w = _polish(Xt, yv, pats.masks, out.v, out.w, beta, self.formulation, act)
        else:
            v, w = out.v, out.w
        objective = _program_objective(Xt, yv, pats.masks, v, w, beta, self.formulation, act)
        # Any λ gives a valid bound once scaled: keep the better of the raw and the polished residual.
        lower, check = -np.inf, None
        for bv, bw in ((out.v, out.w), (v, w)):
            lam = SQUARED.dual_direction(convex_prediction(Xt, pats.masks, bv, bw, act), yv)
            c = max_dual_constraint(Xt, pats.masks, lam, self.formulation, act)
            value, _ = scaled_dual_value(lam, yv, c.value, beta)
            if value > lower:
                lower, check = value, c
        if self.formulation == "gated":
            nv, nw = _decompose_all(Xt, pats, v)
        else:
            nv, nw = v, w
        if self.prune_network:
            nv, nw = prune(Xt, pats.masks, nv, nw, activation=act)
        net = network_from_convex(nv, nw, bias=self.bias, activation=act)
        return ConvexFit(objective=objective, lower_bound=lower, network=net,
                         network_objective=net.objective(self.Xm, yv, beta), v=v, w=w, patterns=pats, beta=beta,
                         formulation=self.formulation, solver=solver, status=out.status, n_iter=out.n_iter,
                         solve_time=out.time, dual_check=check, bias=self.bias, history=out.history, activation=act)


def fit(X: Any, y: Any, beta: float, patterns: Any = None, formulation: str = "relu", solver: str = "auto",
        bias: bool = False, seed: int | None = 0, max_patterns: int = AUTO_ENUMERATE_LIMIT,
        prune_network: bool = True, verbose: bool = False, tol: float = 1e-6,
        dtype: torch.dtype = torch.float64, device: str = "cpu", activation: Any = "relu",
        negative_slope: float = DEFAULT_NEGATIVE_SLOPE, search: Any = None, init_nonconvex: Any = None,
        warm_start: Any = None, progress: bool = False, callback: Callable[[Any], Any] | None = None) -> ConvexFit:
    """Solve the convex program of a two-layer network with weight decay β.

    The objective matched is NC = ½‖f(X) − y‖² + (β/2)Σ_j(‖u_j‖² + α_j²) (sum over samples).
    ``bias=True`` appends a ones column to X, so each neuron gets a (penalized) bias.

    activation: σ(t) = a(t)_+ + b(t)_- — "relu", "leaky_relu" (slope ``negative_slope``), "abs",
    a pair (a, b) or an :class:`~cvxnn.activations.Activation` (THEORY §1.6). The program is
    (CVX) with (aD_i + b(I − D_i))X in place of D_iX in the fit term.

    solver: "reference" (cvxpy + Clarabel, float64, both formulations), "fista" (accelerated
    proximal gradient in PyTorch on ``device``/``dtype``, gated program and ReLU only, stops at
    relative duality gap ``tol``), or "auto" (fista for large gated ReLU problems, else reference).

    search: False/None (solve once on ``patterns``), True (default
    :class:`~cvxnn.pattern_search.SearchOptions`) or a SearchOptions: column generation
    (:func:`cvxnn.pattern_search.column_generation`) — solve, search for patterns violating the
    dual constraint |λᵀσ(X̃u)| ≤ β at λ = y − ŷ, add them, re-solve, until none is found or the
    budget is spent. ReLU program only. ``fit.search`` reports the rounds and the largest
    violation found; without a complete list ``certified_global`` stays False.
    init_nonconvex: an int (Adam epochs) or a :class:`NonconvexInit`: the patterns of a short
        nonconvex run seed the list (alone when ``patterns`` is None, else merged with it), and
        its network (by Ψ) is the starting point, so the objective is at most the run's NC.
    warm_start: a previous :class:`ConvexFit` (its blocks are matched to this list by pattern; its
        list is used when ``patterns`` is None) or blocks (v, w) of shape (P, d) for this list.
        Solvers in SOLVER_WARM_STARTS start there; the fit is never worse than the start.
    progress: show the search rounds and the iterative solvers' progress (objective, gap) with rich
        on stderr (the reference solver prints its own log when ``verbose``).
    callback: with a search, called with each round's :class:`~cvxnn.pattern_search.RoundLog`;
        raising KeyboardInterrupt there (or Ctrl-C) ends the search with the best fit so far
        (status "interrupted").
    """
    program = make_program(X, y, beta, formulation, solver, bias, activation, negative_slope, tol, dtype, device,
                           verbose, prune_network)
    Xt, act = program.Xt, program.activation
    if patterns is None and isinstance(warm_start, ConvexFit):
        patterns = warm_start.patterns
    if init_nonconvex is None and not search:
        pats = resolve_patterns(Xt, patterns, seed=seed, max_patterns=max_patterns, activation=act)
        with FitProgress(progress, None) as bar:
            return program.solve(pats, start=warm_start_blocks(warm_start, pats, Xt.shape[1]), callback=bar.solver)
    from .pattern_search import column_generation, search_options

    options = search_options(search)
    if options is not None and formulation != "relu":
        raise ValueError("the pattern search solves the ReLU program (formulation='relu'); "
                         f"got formulation={formulation!r}.")
    return column_generation(program, patterns, options, init_nonconvex=init_nonconvex, warm_start=warm_start,
                             seed=seed, max_patterns=max_patterns, progress=progress or verbose, callback=callback)


def make_program(X: Any, y: Any, beta: float, formulation: str = "relu", solver: str = "auto", bias: bool = False,
                 activation: Any = "relu", negative_slope: float = DEFAULT_NEGATIVE_SLOPE, tol: float = 1e-6,
                 dtype: torch.dtype = torch.float64, device: str = "cpu", verbose: bool = False,
                 prune_network: bool = True) -> Program:
    """Validate ``fit``'s arguments and return the :class:`Program` they describe."""
    Xm = as_matrix(X)
    yv = as_targets(y, Xm.shape[0])
    beta = _check_beta(beta)
    if formulation not in FORMULATIONS:
        raise ValueError(f"formulation must be one of {FORMULATIONS}, got {formulation!r}.")
    if solver not in SOLVERS:
        raise ValueError(f"solver must be one of {SOLVERS}, got {solver!r}.")
    act = activation_from(activation, negative_slope)
    Xt = add_bias(Xm) if bias else Xm
    return Program(Xm, yv, Xt, beta, formulation, solver, act, bias, tol, dtype, device, verbose, prune_network)


def warm_start_blocks(warm_start: Any, pats: Patterns, d: int) -> tuple[np.ndarray, np.ndarray] | None:
    """The blocks (v, w) of ``warm_start`` on the list ``pats``: a ConvexFit's blocks matched by pattern
    (zero for patterns it lacks), or a pair of (P, d) arrays checked against the list; None stays None."""
    if warm_start is None:
        return None
    if isinstance(warm_start, ConvexFit):
        return align_blocks(warm_start.patterns, warm_start.v, warm_start.w, pats)
    try:
        v, w = (np.asarray(b, dtype=float) for b in warm_start)
    except (TypeError, ValueError):
        raise TypeError("warm_start must be a ConvexFit, a pair (v, w) of arrays or None.") from None
    if v.shape != (len(pats), d) or w.shape != (len(pats), d):
        raise ValueError(f"warm_start blocks must have shape ({len(pats)}, {d}) for this pattern list, "
                         f"got {v.shape} and {w.shape}.")
    if not (np.all(np.isfinite(v)) and np.all(np.isfinite(w))):
        raise ValueError("warm_start blocks contain NaN or inf.")
    return v, w


def align_blocks(source: Patterns, v: np.ndarray, w: np.ndarray, target: Patterns
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Blocks for the list ``target``: the block of each pattern also in ``source``, zero for the others."""
    index = {source.masks[:, i].tobytes(): i for i in range(len(source))}
    nv, nw = np.zeros((len(target), v.shape[1])), np.zeros((len(target), v.shape[1]))
    for j in range(len(target)):
        i = index.get(target.masks[:, j].tobytes())
        if i is not None:
            nv[j], nw[j] = v[i], w[i]
    return nv, nw


def _choose_solver(solver: str, formulation: str, size: int, activation: Activation = RELU) -> str:
    """Resolve "auto" and refuse combinations a solver does not declare (SOLVER_FORMULATIONS, SOLVER_ACTIVATIONS)."""
    if solver == "auto":
        fista_ok = activation.name in SOLVER_ACTIVATIONS["fista"]
        return "fista" if formulation == "gated" and size > 50_000 and fista_ok else "reference"
    if formulation not in SOLVER_FORMULATIONS[solver]:
        raise ValueError(f"solver {solver!r} does not support the {formulation!r} program; "
                         f"it supports {', '.join(SOLVER_FORMULATIONS[solver])}. Use solver='reference'.")
    if activation.name not in SOLVER_ACTIVATIONS[solver]:
        raise ValueError(f"solver {solver!r} does not support the {activation.name!r} activation; "
                         f"it supports {', '.join(SOLVER_ACTIVATIONS[solver])}. Use solver='reference'.")
    return solver


def _check_beta(beta: Any) -> float:
    try:
        b = float(beta)
    except (TypeError, ValueError):
        raise TypeError(f"beta must be a number, got {beta!r}.") from None
    if not np.isfinite(b) or b <= 0:
        raise ValueError(f"beta must be a positive finite number (the weight decay), got {beta!r}.")
    return b


def _polish(Xt: np.ndarray, y: np.ndarray, masks: np.ndarray, v: np.ndarray, w: np.ndarray, beta: float,
            formulation: str, activation: Activation = RELU, rtol: float = 1e-10, kkt_rtol: float = 1e-6,
            cone_rtol: float = 1e-6) -> tuple[np.ndarray, np.ndarray]:
    """Zero the round-off "dust" an interior-point solver leaves in every block.

    A block is dust when (a) its norm is below ``rtol`` times the largest; or (b) its dual
    constraint at λ = y − ŷ is clearly inactive, σ(λ) < β(1 − kkt_rtol), which by the KKT
    conditions forces the block to zero at the optimum; or (c, ReLU) it violates its cone by
    more than ``cone_rtol`` relative to its own size (numerically a zero block: rescaling it
    while pruning would turn the violation into a real error).
    """
    lam = y - convex_prediction(Xt, masks, v, w, activation)
    weights = activation.fit_weights(masks)
    S = np.where(masks, 1.0, -1.0)
    scale = np.linalg.norm(Xt, axis=1).max()
    out = []
    for blocks, sign in ((v, 1.0), (w, -1.0)):
        b = blocks.copy()
        norms = np.linalg.norm(b, axis=1)
        b[norms <= rtol * max(norms.max(initial=0.0), 1e-300)] = 0.0
        for i in np.flatnonzero(np.linalg.norm(b, axis=1) > 0):
            c = sign * (Xt.T @ (weights[:, i] * lam))
            sigma = cone_sigma(Xt, masks[:, i], c)[0] if formulation == "relu" else float(np.linalg.norm(c))
            if sigma < beta * (1 - kkt_rtol):
                b[i] = 0.0
        if formulation == "relu":
            viol = np.max(-(S * (Xt @ b.T)), axis=0, initial=0.0)
            b[viol > cone_rtol * scale * np.maximum(norms, 1e-300)] = 0.0
        out.append(b)
    return out[0], out[1]


def _program_objective(Xt, y, masks, v, w, beta, formulation, activation: Activation = RELU) -> float:
    if formulation == "relu":
        return convex_objective(Xt, y, masks, v, w, beta, activation)
    r = convex_prediction(Xt, masks, v, np.zeros_like(v), activation) - y
    return 0.5 * float(r @ r) + beta * float(np.linalg.norm(v, axis=1).sum())


def _decompose_all(Xt: np.ndarray, pats: Patterns, u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    v, w = np.zeros_like(u), np.zeros_like(u)
    for i in np.flatnonzero(np.linalg.norm(u, axis=1) > 0):
        gate = None if pats.gates is None else pats.gates[:, i]
        v[i], w[i] = decompose(Xt, pats.masks[:, i], u[i], gate)
    return v, w
