"""`cvxnn.certify`: where does a two-layer ReLU network stand relative to the global optimum?

For a network θ with residual λ = y − f_θ(X) (THEORY §2.3–2.4):

* with **all** patterns enumerated, s = max_i max(σ_i^+, σ_i^-) equals sup_{‖u‖≤1}|λᵀ(Xu)_+|,
  so tλ with t ≤ β/s is feasible for the full dual and d(tλ) ≤ p*_m for **every** width m;
* otherwise the sampled patterns (and the network's own) only give a lower estimate of s:
  a value above β proves the network is not optimal (adding a small neuron along the
  maximizer lowers NC), a value below β proves nothing. The certified bound then uses the
  valid but loose spectral bound of :func:`~cvxnn.duality.spectral_dual_bound`.

For a network with a two-piece activation σ(t) = a(t)_+ + b(t)_- (THEORY §1.6) everything above
holds with (Xu)_+ replaced by σ(Xu): the cones are the same, the per-pattern constraint is
‖Π_K(D)(±Xᵀ(aD + b(I − D))λ)‖, and the spectral bound is re-derived for σ.

Losses (``loss=``): λ = −∇L(f_θ(X)) and the bound is d(tλ) = −L*(−tλ) (:mod:`cvxnn.losses`). For
the hinge loss the subgradient is not unique at margin points (y_k f_k = 1): there the free
λ_k y_k ∈ [0, 1] are chosen by bounded least squares on the stationarity conditions of the
network's neurons, sign(α_j)·Xᵀ W_j λ = β u_j/‖u_j‖ (any choice gives a valid bound).

Vector outputs (an (m, c) output layer): Λ ∈ R^{n×c}. ``output_norm="l2"`` certifies against every
network with ℓ2 weight decay, using sup_u ‖Λᵀσ(Xu)‖ ≤ max_i (Σ_k σ_ik^{+2} + σ_ik^{-2})^{1/2}
(:func:`~cvxnn.duality.max_dual_constraint_vector`, "l2"; valid but possibly loose);
``output_norm="l1"`` certifies against every network with the output penalty ‖α_j‖₁² (the class
of the exact per-output program), with the per-output constraint max_{i,k,±} σ_ik^±.
Without a complete pattern list, the per-column spectral bounds are combined the same way.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from .activations import DEFAULT_NEGATIVE_SLOPE, RELU, Activation, activation_from
from .duality import GapReport, max_dual_constraint, max_dual_constraint_vector, scaled_dual_value, \
    spectral_dual_bound
from .losses import Loss, loss_from
from .network import TwoLayerNet
from .patterns import Patterns, count_patterns_bound, data_rank, enumerable, enumerate_patterns, \
    network_patterns, sample_patterns

DEFAULT_MAX_ENUMERATED = 20_000
DEFAULT_SAMPLES = 2_000
DEFAULT_SEARCH_STARTS = 20


@dataclass
class Certificate(GapReport):
    """A certificate for one network on one dataset.

    objective: the network's NC objective.
    lower_bound: a certified lower bound on the NC objective of any two-layer network with the
        same activation, of any width, on these data (with the same β and bias convention).
    globally_optimal: True (gap within ``rtol``), False (proved suboptimal), None (undecided).
    max_dual_violation: the largest |λᵀσ(Xu)|/β found over the checked patterns.
    improving_direction, improving_sign: when a violation was found, the unit u and sign s with
        s·λᵀσ(Xu) > β: the neuron (√m u, s√m), m = (s·λᵀσ(Xu) − β)/‖σ(Xu)‖², lowers NC.
    """

    objective: float
    lower_bound: float
    globally_optimal: bool | None
    method: str
    patterns_checked: int
    complete: bool
    max_dual_violation: float
    rtol: float
    elapsed: float
    checked: str
    not_checked: str
    improving_direction: np.ndarray | None = field(default=None, repr=False)
    improving_sign: int = 1

    def summary(self) -> dict:
        return {"objective": self.objective, "lower_bound": self.lower_bound, "gap": self.gap,
                "relative_gap": self.relative_gap, "globally_optimal": self.globally_optimal,
                "method": self.method, "patterns_checked": self.patterns_checked, "complete": self.complete,
                "max_dual_violation": self.max_dual_violation, "checked": self.checked,
                "not_checked": self.not_checked, "elapsed_s": self.elapsed}


def certify(net: TwoLayerNet, X: Any, y: Any, beta: float, patterns: Patterns | None = None,
            max_patterns: int = DEFAULT_MAX_ENUMERATED, n_samples: int = DEFAULT_SAMPLES, seed: int | None = 0,
            rtol: float = 1e-4, n_search_starts: int = DEFAULT_SEARCH_STARTS, activation: Any = None,
            negative_slope: float = DEFAULT_NEGATIVE_SLOPE, loss: Any = "squared",
            output_norm: str = "l2") -> Certificate:
    """Certify ``net`` on (X, y) with weight decay β, against every network with its activation σ.

    patterns: a complete list to use, or None to enumerate when at most ``max_patterns`` are
        predicted and otherwise to sample ``n_samples`` Gaussian gates plus the net's own patterns,
        then to run a local ascent over patterns (:func:`cvxnn.pattern_search.search_violations`)
        from the net's neurons and ``n_search_starts`` Gaussian directions (0: no search). The
        search costs about (m + n_search_starts) ascents of a few exact projections each.
    rtol: relative tolerance of the verdict. The dual point is built from the network's residual,
        whose error is about the square root of the network's suboptimality, so a network that is
        optimal to 1e-10 typically certifies to 1e-8..1e-5; hence the default 1e-4.

    activation: σ; None uses ``net.activation``. Given (with ``negative_slope`` for "leaky_relu"),
        it replaces the net's, e.g. for a net read from a state dict, which does not record it.
    loss: the loss of NC = L(f(X)) + (β/2)Σ_j(‖u_j‖² + ‖α_j‖²) (name or :class:`~cvxnn.losses.Loss`).
    output_norm: vector outputs only — "l2" (ℓ2 weight decay, every network) or "l1" (output
        penalty ‖α_j‖₁², the per-output program's class); see the module docstring.

    Verdict: True when the certified relative gap is at most ``rtol``; False when a violated
    dual constraint proves a decrease of more than ``rtol`` relative (adding the neuron along
    the maximizer u with mass m = (s − β)/(κ‖σ(Xu)‖²) lowers NC by at least (s − β)²/(2κ‖σ(Xu)‖²),
    κ the Lipschitz constant of ∇L; scalar outputs and smooth losses only); None otherwise.
    """
    from .training import _check_beta, _for_activation, check_patterns_for

    start = time.perf_counter()
    beta = _check_beta(beta)
    if activation is not None:
        net = replace(net, activation=activation_from(activation, negative_slope))
    act = net.activation
    loss = loss_from(loss)
    Xt = net.design(X)
    yv = loss.targets(y, Xt.shape[0])
    objective = net.objective(X, yv, beta, loss, output_norm)
    pred = net.hidden(X) @ net.w2
    lam = loss.repair(loss.dual_direction(pred, yv), yv)
    if lam.ndim == 1:
        lam = _refine_free_duals(net, Xt, pred, yv, lam, beta, loss)
    if lam.ndim == 2:
        return _certify_vector(net, Xt, yv, lam, objective, beta, loss, output_norm, patterns, max_patterns,
                               n_samples, seed, rtol, start)
    if patterns is None and enumerable(Xt, max_patterns):
        patterns = _for_activation(enumerate_patterns(Xt, max_patterns=max_patterns), act)
    if patterns is not None:
        check_patterns_for(patterns, act)
    if patterns is not None and patterns.complete:
        check = max_dual_constraint(Xt, patterns.masks, lam, "relu", act)
        lower, _ = scaled_dual_value(lam, yv, check.value, beta, loss)
        verdict, violated = _verdict(Xt, lam, objective, lower, check, beta, rtol, act, loss.curvature)
        return Certificate(
            objective, lower, verdict, "enumerated patterns (exact dual constraint)",
            len(patterns), True, check.value / beta, rtol, time.perf_counter() - start,
            checked=f"all {len(patterns)} activation patterns of the data, each by an exact cone projection",
            not_checked="nothing: the bound holds for every network of any width",
            improving_direction=check.direction if violated else None, improving_sign=check.sign)

    from .pattern_search import search_violations

    searched = sample_patterns(Xt, n_samples, seed=seed, drop_zero=act.zero_pattern_useless).merge(
        network_patterns(net.W1, Xt))
    if patterns is not None:
        searched = searched.merge(patterns)
    check = max_dual_constraint(Xt, searched.masks, lam, "relu", act)
    if n_search_starts > 0:
        found = search_violations(Xt, lam, beta, starts=net.W1, n_random=n_search_starts, seed=seed,
                                  activation=act)
        searched = searched.merge(found.patterns)
        if found.best_value > check.value:
            check = found.dual_check()
    s_valid = max(spectral_dual_bound(Xt, lam, act), check.value)
    lower, _ = scaled_dual_value(lam, yv, s_valid, beta, loss)
    verdict, violated = _verdict(Xt, lam, objective, lower, check, beta, rtol, act, loss.curvature)
    predicted = count_patterns_bound(Xt.shape[0], data_rank(Xt))
    return Certificate(
        objective, lower, verdict, "sampled patterns + spectral bound", len(searched), False,
        check.value / beta, rtol, time.perf_counter() - start,
        checked=(f"{len(searched)} patterns ({n_samples} Gaussian samples, the network's own"
                 + (f" and those visited by local ascent from its neurons and {n_search_starts} random starts"
                    if n_search_starts > 0 else "") + "), "
                 "each by an exact cone projection; the certified bound uses the spectral bound "
                 f"{s_valid:.4g} on the dual constraint"),
        not_checked=(f"the other patterns (up to {predicted:,}); a violation there is not excluded, "
                     "so global optimality is not decided by the search"),
        improving_direction=check.direction if violated else None, improving_sign=check.sign)


def _verdict(Xt: np.ndarray, lam: np.ndarray, objective: float, lower: float, check, beta: float, rtol: float,
             activation: Activation = RELU, curvature: float = 1.0) -> tuple[bool | None, bool]:
    """(globally_optimal, violated): see :func:`certify`.

    The proved decrease uses the value s = sign·λᵀσ(Xu) attained at the reported direction u
    (not the computed maximum), so it holds whatever the accuracy of the projections: adding the
    neuron (√m u, sign·√m) (‖u‖ = 1, so its penalty is βm) changes NC by at most
    −m(s − β) + (κ/2)m²‖σ(Xu)‖² (λ = −∇L, ∇L κ-Lipschitz, σ positively homogeneous);
    m = (s − β)/(κ‖σ(Xu)‖²) gives −(s − β)²/(2κ‖σ(Xu)‖²). No decrease is claimed for κ = ∞ (hinge).
    """
    scale = rtol * max(abs(objective), 1e-300)
    q = activation(Xt @ check.direction)
    excess = check.sign * float(lam @ q) - beta
    smooth = np.isfinite(curvature) and excess > 0 and float(q @ q) > 0
    proved_decrease = excess**2 / (2 * curvature * float(q @ q)) if smooth else 0.0
    if objective - lower <= scale:
        return True, excess > 0
    if proved_decrease > scale:
        return False, True
    return None, excess > 0


def _refine_free_duals(net: TwoLayerNet, Xt: np.ndarray, pred: np.ndarray, y: np.ndarray, lam: np.ndarray,
                       beta: float, loss: Loss, tol: float = 1e-7) -> np.ndarray:
    """For a loss with a set-valued subgradient (hinge), choose the free entries of λ from the
    stationarity conditions of the active neurons (λ unchanged when nothing is free).

    At an optimum each neuron j, in the cone program, satisfies
    sign(α_j)·XᵀW_jλ + Σ_{k tied} γ_jk x_k = β u_j/‖u_j‖, the γ_jk accounting for the cone constraints
    active at rows with x_kᵀu_j = 0 (and for the tie's side). Bounded least squares over the free
    λ_k y_k ∈ [0, 1] (margin points) and unbounded γ picks λ; any choice gives a valid bound.
    """
    free = loss.free_duals(pred, y, tol)
    active = np.flatnonzero((net.w2 != 0) & (np.linalg.norm(net.W1, axis=1) > 0))
    if free is None or not free.any() or active.size == 0:
        return lam
    from scipy.optimize import lsq_linear

    d, n_free = Xt.shape[1], int(free.sum())
    row_norms = np.linalg.norm(Xt, axis=1)
    blocks, ties, rhs = [], [], []
    for j in active:
        u = net.W1[j]
        z = Xt @ u
        weights = net.activation.fit_weights((z >= 0)[:, None])[:, 0]
        A = np.sign(net.w2[j]) * (Xt.T * weights)  # d x n: sign(α_j) Xᵀ W_j
        blocks.append(A[:, free] * y[free])
        ties.append(Xt[np.abs(z) <= 1e3 * tol * row_norms * np.linalg.norm(u)].T)
        rhs.append(beta * u / np.linalg.norm(u) - A[:, ~free] @ lam[~free])
    n_ties = sum(t.shape[1] for t in ties)
    M = np.zeros((d * active.size, n_free + n_ties))
    col = n_free
    for r, (B, T) in enumerate(zip(blocks, ties)):
        M[r * d:(r + 1) * d, :n_free] = B
        M[r * d:(r + 1) * d, col:col + T.shape[1]] = T
        col += T.shape[1]
    lo = np.r_[np.zeros(n_free), np.full(n_ties, -np.inf)]
    hi = np.r_[np.ones(n_free), np.full(n_ties, np.inf)]
    p = lsq_linear(M, np.concatenate(rhs), bounds=(lo, hi)).x[:n_free]
    out = lam.copy()
    out[free] = y[free] * p
    return out


def _certify_vector(net: TwoLayerNet, Xt: np.ndarray, y: np.ndarray, lam: np.ndarray, objective: float, beta: float,
                    loss: Loss, output_norm: str, patterns: Patterns | None, max_patterns: int, n_samples: int,
                    seed: int | None, rtol: float, start: float) -> Certificate:
    """:func:`certify` for an (m, c) output layer (see the module docstring); verdict True or None."""
    from .training import _for_activation, check_patterns_for

    act = net.activation
    kind = "per_output" if output_norm == "l1" else "l2"
    which = ("networks with output penalty ||alpha_j||_1^2" if kind == "per_output"
             else "networks with l2 weight decay")
    if patterns is None and enumerable(Xt, max_patterns):
        patterns = _for_activation(enumerate_patterns(Xt, max_patterns=max_patterns), act)
    if patterns is not None:
        check_patterns_for(patterns, act)
    if patterns is not None and patterns.complete:
        s = max_dual_constraint_vector(Xt, patterns.masks, lam, kind, act).value
        method, n_checked, complete = "enumerated patterns (exact per-column projections)", len(patterns), True
        checked = f"all {len(patterns)} activation patterns, {lam.shape[1]} output columns each"
        not_checked = f"nothing: the bound holds for all {which}, of any width"
    else:
        cols = np.array([spectral_dual_bound(Xt, lam[:, k], act) for k in range(lam.shape[1])])
        s = float(cols.max()) if kind == "per_output" else float(np.sqrt(np.sum(cols**2)))
        method, n_checked, complete = "spectral bound per output column", 0, False
        checked = f"the spectral bound on each of the {lam.shape[1]} output columns"
        not_checked = "no pattern was checked: the bound is valid but loose"
    lower, _ = scaled_dual_value(lam, y, s, beta, loss)
    verdict = True if objective - lower <= rtol * max(abs(objective), 1e-300) else None
    return Certificate(objective, lower, verdict, method, n_checked, complete, s / beta, rtol,
                       time.perf_counter() - start, checked=checked, not_checked=not_checked)
