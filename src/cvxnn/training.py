"""`cvxnn.fit`: train a two-layer ReLU network by solving its convex program (THEORY §1).

    fit(X, y, beta, patterns=..., formulation="relu" | "gated", solver="auto" | "reference" | "fista" | "al",
        activation="relu" | "leaky_relu" | "abs" | (a, b))

ReLU ("relu"): the exact cone-constrained program (CVX) on the given patterns; with all
patterns (``patterns="all"``) its optimum equals the best NC objective of any width.
Gated ("gated"): the group-lasso relaxation; its solution is turned into a ReLU network by
the cone decomposition, so ``network_objective`` may exceed ``objective``.
Activation σ(t) = a(t)_+ + b(t)_- (THEORY §1.6): both programs use the fit weights
aD_i + b(I − D_i) in place of D_i in the fit term; cones, penalty and Φ are unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

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
from .operators import PatternOperator
from .solvers.augmented_lagrangian import solve_relu_al
from .solvers.newton import solve_gated_polished
from .solvers.reference import solve_reference

FORMULATIONS = ("relu", "gated")
SOLVERS = ("auto", "reference", "fista", "al")
# solver capabilities: which formulations and which activations (by name) each solver handles
SOLVER_FORMULATIONS = {"reference": ("relu", "gated"), "fista": ("gated",), "al": ("relu",)}
SOLVER_ACTIVATIONS = {name: ("relu", "leaky_relu", "abs", "two_piece") for name in ("reference", "fista", "al")}
AUTO_FAST_SIZE = 50_000  # n·P above which "auto" uses a first-order solver
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


def fit(X: Any, y: Any, beta: float, patterns: Any = None, formulation: str = "relu", solver: str = "auto",
        bias: bool = False, seed: int | None = 0, max_patterns: int = AUTO_ENUMERATE_LIMIT,
        prune_network: bool = True, verbose: bool = False, tol: float = 1e-6,
        dtype: torch.dtype = torch.float64, device: str = "cpu", activation: Any = "relu",
        negative_slope: float = DEFAULT_NEGATIVE_SLOPE) -> ConvexFit:
    """Solve the convex program of a two-layer network with weight decay β.

    The objective matched is NC = ½‖f(X) − y‖² + (β/2)Σ_j(‖u_j‖² + α_j²) (sum over samples).
    ``bias=True`` appends a ones column to X, so each neuron gets a (penalized) bias.

    activation: σ(t) = a(t)_+ + b(t)_- — "relu", "leaky_relu" (slope ``negative_slope``), "abs",
    a pair (a, b) or an :class:`~cvxnn.activations.Activation` (THEORY §1.6). The program is
    (CVX) with (aD_i + b(I − D_i))X in place of D_iX in the fit term.

    solver: "reference" (cvxpy + Clarabel, float64, both formulations), "fista" (accelerated
    proximal gradient in PyTorch on ``device``/``dtype``, then Newton on the active blocks
    (:mod:`cvxnn.solvers.newton`); gated program; stops at relative duality gap ``tol``), "al"
    (augmented Lagrangian in PyTorch, ReLU program, stops at a certified relative gap ``tol``; slow
    to reach small gaps, so never chosen automatically), or "auto" (fista for gated programs with
    n·P > 50 000, else reference).
    """
    Xm = as_matrix(X)
    yv = as_targets(y, Xm.shape[0])
    beta = _check_beta(beta)
    if formulation not in FORMULATIONS:
        raise ValueError(f"formulation must be one of {FORMULATIONS}, got {formulation!r}.")
    if solver not in SOLVERS:
        raise ValueError(f"solver must be one of {SOLVERS}, got {solver!r}.")
    act = activation_from(activation, negative_slope)
    Xt = add_bias(Xm) if bias else Xm
    pats = resolve_patterns(Xt, patterns, seed=seed, max_patterns=max_patterns, activation=act)
    solver = _choose_solver(solver, formulation, Xt.shape[0] * len(pats), act)
    if solver in ("fista", "al"):
        op = PatternOperator(Xt, pats.masks, dtype=dtype, device=device, activation=act)
        yt = torch.as_tensor(yv, dtype=dtype, device=device)
        if solver == "fista":
            weights = torch.as_tensor(act.fit_weights(pats.masks), dtype=dtype, device=device)
            out = solve_gated_polished(op, yt, beta, weights, tol=tol)
        else:  # returns cone-feasible blocks (repaired in float64), so no polishing
            out = solve_relu_al(op, yt, beta, tol=tol, interior=None if pats.gates is None else pats.gates.T,
                                design=Xt)
    else:
        out = solve_reference(Xt, yv, pats.masks, beta, formulation, verbose=verbose, activation=act)
    if solver == "reference":  # interior-point dust; proximal methods return exact zeros
        v, w = _polish(Xt, yv, pats.masks, out.v, out.w, beta, formulation, act)
    else:
        v, w = out.v, out.w
    objective = _program_objective(Xt, yv, pats.masks, v, w, beta, formulation, act)
    # Any λ gives a valid bound once scaled: keep the better of the raw and the polished residual.
    lower, check = -np.inf, None
    for bv, bw in ((out.v, out.w), (v, w)):
        lam = SQUARED.dual_direction(convex_prediction(Xt, pats.masks, bv, bw, act), yv)
        c = max_dual_constraint(Xt, pats.masks, lam, formulation, act)
        value, _ = scaled_dual_value(lam, yv, c.value, beta)
        if value > lower:
            lower, check = value, c
    if solver == "al" and out.history:  # the solver's own certificate is valid for the same program
        lower = max(lower, out.history[-1][2])
    if formulation == "gated":
        nv, nw = _decompose_all(Xt, pats, v)
    else:
        nv, nw = v, w
    if prune_network:
        nv, nw = prune(Xt, pats.masks, nv, nw, activation=act)
    net = network_from_convex(nv, nw, bias=bias, activation=act)
    return ConvexFit(objective=objective, lower_bound=lower, network=net,
                     network_objective=net.objective(Xm, yv, beta), v=v, w=w, patterns=pats, beta=beta,
                     formulation=formulation, solver=solver, status=out.status, n_iter=out.n_iter,
                     solve_time=out.time, dual_check=check, bias=bias, history=out.history, activation=act)


def _choose_solver(solver: str, formulation: str, size: int, activation: Activation = RELU) -> str:
    """Resolve "auto" and refuse combinations a solver does not declare (SOLVER_FORMULATIONS, SOLVER_ACTIVATIONS)."""
    if solver == "auto":
        return "fista" if formulation == "gated" and size > AUTO_FAST_SIZE else "reference"
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
