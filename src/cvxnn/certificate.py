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
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from .activations import DEFAULT_NEGATIVE_SLOPE, RELU, Activation, activation_from
from .data import as_targets
from .duality import GapReport, max_dual_constraint, scaled_dual_value, spectral_dual_bound
from .losses import SQUARED
from .network import TwoLayerNet
from .patterns import Patterns, count_patterns_bound, data_rank, enumerate_patterns, network_patterns, \
    sample_patterns

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
            negative_slope: float = DEFAULT_NEGATIVE_SLOPE) -> Certificate:
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

    Verdict: True when the certified relative gap is at most ``rtol``; False when a violated
    dual constraint proves a decrease of more than ``rtol`` relative (adding the neuron along
    the maximizer u with mass m = (s − β)/‖σ(Xu)‖² lowers NC by (s − β)²/(2‖σ(Xu)‖²));
    None otherwise.
    """
    from .training import _check_beta, _for_activation, check_patterns_for

    start = time.perf_counter()
    beta = _check_beta(beta)
    if activation is not None:
        net = replace(net, activation=activation_from(activation, negative_slope))
    act = net.activation
    Xt = net.design(X)
    yv = as_targets(y, Xt.shape[0])
    objective = net.objective(X, yv, beta)
    lam = SQUARED.dual_direction(net.hidden(X) @ net.w2, yv)
    if patterns is None and count_patterns_bound(Xt.shape[0], data_rank(Xt)) <= max_patterns:
        patterns = _for_activation(enumerate_patterns(Xt, max_patterns=max_patterns), act)
    if patterns is not None:
        check_patterns_for(patterns, act)
    if patterns is not None and patterns.complete:
        check = max_dual_constraint(Xt, patterns.masks, lam, "relu", act)
        lower, _ = scaled_dual_value(lam, yv, check.value, beta)
        verdict, violated = _verdict(Xt, lam, objective, lower, check, beta, rtol, act)
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
    lower, _ = scaled_dual_value(lam, yv, s_valid, beta)
    verdict, violated = _verdict(Xt, lam, objective, lower, check, beta, rtol, act)
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
             activation: Activation = RELU) -> tuple[bool | None, bool]:
    """(globally_optimal, violated): see :func:`certify`.

    The proved decrease uses the value s = sign·λᵀσ(Xu) attained at the reported direction u
    (not the computed maximum), so it holds whatever the accuracy of the projections: adding the
    neuron (√m u, sign·√m) (‖u‖ = 1, so its penalty is βm) changes NC by
    −m(s − β) + ½m²‖σ(Xu)‖², by positive homogeneity of σ; m = (s − β)/‖σ(Xu)‖² gives
    −(s − β)²/(2‖σ(Xu)‖²).
    """
    scale = rtol * max(abs(objective), 1e-300)
    q = activation(Xt @ check.direction)
    excess = check.sign * float(lam @ q) - beta
    proved_decrease = excess**2 / (2 * float(q @ q)) if excess > 0 and float(q @ q) > 0 else 0.0
    if objective - lower <= scale:
        return True, excess > 0
    if proved_decrease > scale:
        return False, True
    return None, excess > 0
