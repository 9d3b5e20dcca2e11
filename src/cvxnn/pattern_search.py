"""Local search for violated dual constraints, search-based certificates and column generation.

The dual constraint of (NC) at λ is s(λ) = sup_{‖u‖≤1} |λᵀ(X̃u)_+| ≤ β (THEORY §2.1). It is a
maximum over all activation patterns D of σ^±(D) = ‖Π_K(D)(±X̃ᵀDλ)‖ (§2.2), far too many to
enumerate for most data. :func:`search_violations` looks for large values by local ascent over
patterns; every value it reports is an **exact** σ of the pattern of a real point (a cone
projection by NNLS, :func:`~cvxnn.duality.cone_sigma`), hence a true value of |λᵀ(X̃u)_+| at a
unit u and a valid *lower* estimate of s(λ). A value above β proves that λ is infeasible (the
network or convex solution is not globally optimal); a search that finds nothing proves nothing.

* :func:`certify_with_search`: a certificate for a network whose data have too many patterns to
  enumerate: violations found by the search, the valid spectral bound for the lower bound.
* :func:`column_generation_fit`: fit on a few patterns, add the violated patterns the search
  finds at the solution's dual point, refit, repeat.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .activations import RELU, Activation
from .certificate import Certificate, _verdict
from .data import add_bias, as_matrix, as_targets
from .duality import DualCheck, cone_sigma, scaled_dual_value, spectral_dual_bound
from .network import TwoLayerNet, convex_prediction
from .patterns import Patterns
from .training import ConvexFit, _check_beta, fit, resolve_patterns

DEFAULT_RANDOM_STARTS = 100
DEFAULT_MAX_ITER = 100
BINDING_TOL = 1e-9  # a row is on the boundary of the cone when |x_kᵀu| ≤ BINDING_TOL·‖x_k‖ (unit u)
ASCENT_RTOL = 1e-12  # a neighbour must improve σ by this relative amount for the ascent to move


@dataclass
class SearchResult:
    """What :func:`search_violations` found.

    patterns: the distinct patterns at which σ was evaluated; ``gates`` holds a point of each
        (D_i = 1[X̃ gate_i ≥ 0]), so every pattern is the pattern of a real vector.
    values: values[i] = max over the signs evaluated of σ^±(D_i) = ‖Π_K(D_i)(±X̃ᵀD_iλ)‖ (exact).
    signs: the sign (+1 / −1) attaining values[i].
    directions: (P, d) unit maximizers u_i ∈ K(D_i).
    achieved: achieved[i] = signs[i]·λᵀ(X̃u_i)_+, the function evaluated at the unit vector u_i;
        it equals values[i] up to round-off and is what proofs of suboptimality use (a value of
        |λᵀ(X̃u)_+| at a real unit u is a rigorous lower bound on the supremum).
    local_maxima: local_maxima[i] is True when an ascent stopped at pattern i because no adjacent
        pattern has a larger σ (a local maximum of |λᵀ(X̃u)_+| on the sphere).
    best: index of the largest value (−1 when nothing was evaluated).
    n_starts: ascents run (start directions × 2 signs); n_iter: ascent steps over all starts;
    n_projections: cone projections (NNLS) solved; wall_time: seconds.
    """

    patterns: Patterns
    values: np.ndarray
    signs: np.ndarray
    directions: np.ndarray
    achieved: np.ndarray
    local_maxima: np.ndarray
    beta: float
    n_starts: int
    n_iter: int
    n_projections: int
    wall_time: float

    @property
    def best(self) -> int:
        return int(np.argmax(self.values)) if self.values.size else -1

    @property
    def best_value(self) -> float:
        return float(self.values[self.best]) if self.values.size else 0.0

    @property
    def best_sign(self) -> int:
        return int(self.signs[self.best]) if self.values.size else 1

    @property
    def best_direction(self) -> np.ndarray:
        return self.directions[self.best] if self.values.size else np.zeros(self.directions.shape[1])

    def violating(self, rtol: float = 0.0, local_maxima_only: bool = False) -> np.ndarray:
        """Indices i with values[i] > β(1 + rtol) (and a local maximum if asked), largest first."""
        idx = np.flatnonzero((self.values > self.beta * (1 + rtol)) & (self.local_maxima | (not local_maxima_only)))
        return idx[np.argsort(-self.values[idx])]

    def dual_check(self) -> DualCheck:
        """The best value, as achieved at its unit direction, as a :class:`~cvxnn.duality.DualCheck`."""
        value = float(self.achieved[self.best]) if self.values.size else 0.0
        return DualCheck(value, self.best, self.best_sign, self.best_direction, self.n_projections)


class _PatternTable:
    """Exact σ per (pattern, sign), memoized, and the distinct patterns seen with their best value."""

    def __init__(self, Xt: np.ndarray, lam: np.ndarray, activation: Activation = RELU) -> None:
        self.Xt, self.lam, self.activation = Xt, lam, activation
        self.sigma: dict[tuple[bytes, int], tuple[float, np.ndarray]] = {}
        self.index: dict[bytes, int] = {}
        self.masks: list[np.ndarray] = []
        self.gates: list[np.ndarray] = []
        self.values: list[float] = []
        self.signs: list[int] = []
        self.directions: list[np.ndarray] = []
        self.local_maxima: set[bytes] = set()

    def evaluate(self, mask: np.ndarray, sign: int, gate: np.ndarray) -> tuple[float, np.ndarray]:
        """σ^sign(D) = max{sign·λᵀWX̃u : u ∈ K(D), ‖u‖ ≤ 1}, W = aD + b(I − D), and its maximizer; ``gate`` has pattern D."""
        key = mask.tobytes()
        if (key, sign) in self.sigma:
            return self.sigma[(key, sign)]
        weights = self.activation.fit_weights(mask[:, None])[:, 0]
        value, u = cone_sigma(self.Xt, mask, sign * (self.Xt.T @ (weights * self.lam)))
        self.sigma[(key, sign)] = (value, u)
        if key not in self.index:
            self.index[key] = len(self.masks)
            self.masks.append(mask)
            self.gates.append(gate)
            self.values.append(-np.inf)
            self.signs.append(sign)
            self.directions.append(u)
        i = self.index[key]
        if value > self.values[i]:
            self.values[i], self.signs[i], self.directions[i] = value, sign, u
        return value, u


def _neighbour_points(Xt: np.ndarray, u: np.ndarray, row_norms: np.ndarray) -> list[np.ndarray]:
    """Points u + εδ in the cells adjacent to u across the hyperplanes u lies on.

    B = {k : |x_kᵀu| ≤ tol‖x_k‖} (binding rows). For each k ∈ B, and for all of B at once, δ
    solves X_B δ = t (least squares) with t the current signs of B, flipped on k (on all of B);
    ε keeps every non-binding sign: ε = ½ min_{k∉B}|x_kᵀu| / max_{k∉B}|x_kᵀδ|.
    """
    z = Xt @ u
    binding = np.abs(z) <= BINDING_TOL * row_norms
    if not binding.any():
        return []
    XB = Xt[binding]
    signs = np.where(z[binding] >= 0, 1.0, -1.0)
    targets = [signs * np.where(np.arange(signs.size) == k, -1.0, 1.0) for k in range(signs.size)]
    if signs.size > 1:
        targets.append(-signs)
    pinv = np.linalg.pinv(XB)
    off = ~binding
    margin = np.abs(z[off]).min() if off.any() else 1.0
    points = []
    for t in targets:
        delta = pinv @ t
        spread = np.abs(Xt[off] @ delta).max() if off.any() else np.linalg.norm(delta)
        points.append(u + 0.5 * margin / max(spread, 1e-300) * delta)
    return points


def _ascend(table: _PatternTable, start: np.ndarray, sign: int, row_norms: np.ndarray, expanded: set,
            max_iter: int) -> int:
    """Monotone ascent of σ^sign over adjacent patterns from the pattern of ``start``; returns the steps.

    Step: u = argmax of sign·λᵀDX̃u on K(D) ∩ ball (the projected iterate
    Π_K(D)(sign·X̃ᵀDλ)/‖·‖); move to the adjacent pattern (across the faces u lies on) with the
    largest σ if it beats σ(D). σ never decreases: u lies in the closure of each adjacent cone and
    λᵀ(X̃u)_+ is the same linear function there. Stops at a local maximum, after ``max_iter``
    steps, or on reaching a (pattern, sign) already expanded (its continuation is known).
    """
    mask, gate = _pattern_of(table.Xt, start), start
    for step in range(max_iter):
        key = (mask.tobytes(), sign)
        if key in expanded:
            return step
        expanded.add(key)
        value, u = table.evaluate(mask, sign, gate)
        if value <= 0:
            return step + 1
        best = (value * (1 + ASCENT_RTOL), None, None)
        for p in _neighbour_points(table.Xt, u, row_norms):
            m = _pattern_of(table.Xt, p)
            if not np.array_equal(m, mask):
                v, _ = table.evaluate(m, sign, p)
                if v > best[0]:
                    best = (v, m, p)
        if best[1] is None:
            table.local_maxima.add(mask.tobytes())
            return step + 1
        mask, gate = best[1], best[2]
    return max_iter


def _pattern_of(Xt: np.ndarray, h: np.ndarray) -> np.ndarray:
    """The pattern 1[X̃h ≥ 0] of a point h."""
    return Xt @ h >= 0


def _start_directions(starts: Any, d: int) -> np.ndarray:
    """The nonzero rows of ``starts`` as a (k, d) float array (k may be 0)."""
    if starts is None:
        return np.zeros((0, d))
    arr = np.asarray(starts, dtype=float)
    if arr.size == 0:
        return np.zeros((0, d))
    if arr.ndim != 2 or arr.shape[1] != d:
        raise ValueError(f"starts must be a (k, {d}) array of directions, got shape {arr.shape}.")
    if not np.all(np.isfinite(arr)):
        raise ValueError("starts contain NaN or inf.")
    return arr[np.linalg.norm(arr, axis=1) > 0]


def search_violations(Xt: Any, lam: Any, beta: float, starts: np.ndarray | None = None,
                      n_random: int = DEFAULT_RANDOM_STARTS, seed: int | None = 0,
                      max_iter: int = DEFAULT_MAX_ITER, activation: Activation = RELU) -> SearchResult:
    """Search for unit u with |λᵀσ(X̃u)| > β by local ascent over activation patterns (σ = ReLU by default).

    Args:
        Xt: the design matrix X̃ (n × d, with the bias column if any).
        lam: the dual point λ (n,), e.g. the residual y − f(X) of a network.
        beta: the weight decay (only used to classify violations, see :meth:`SearchResult.violating`).
        starts: (k, d) start directions (gate vectors, neuron directions), used with both signs.
        n_random: Gaussian start directions added to ``starts``.
        seed: seed of the Gaussian starts.
        max_iter: ascent steps per start.

    Each start u₀ gives the pattern D = 1[X̃u₀ ≥ 0]; the ascent (see :func:`_ascend`) maximizes
    ±λᵀ(X̃u)_+ from there, both signs. All values reported are exact σ^±(D) of visited patterns.
    """
    start_time = time.perf_counter()
    Xt = as_matrix(Xt, "Xt")
    lam = as_targets(lam, Xt.shape[0], "lam")
    beta = _check_beta(beta)
    if isinstance(n_random, bool) or not isinstance(n_random, (int, np.integer)) or n_random < 0:
        raise ValueError(f"n_random must be a non-negative integer, got {n_random!r}.")
    rng = np.random.default_rng(seed)
    given = _start_directions(starts, Xt.shape[1])
    all_starts = np.vstack([given, rng.standard_normal((int(n_random), Xt.shape[1]))])
    table = _PatternTable(Xt, lam, activation)
    row_norms = np.linalg.norm(Xt, axis=1)
    expanded: set = set()
    n_iter = 0
    for g in all_starts:
        for sign in (1, -1):
            n_iter += _ascend(table, g / np.linalg.norm(g), sign, row_norms, expanded, max_iter)
    d, n = Xt.shape[1], Xt.shape[0]
    masks = np.array(table.masks, dtype=bool).T if table.masks else np.zeros((n, 0), dtype=bool)
    gates = np.array(table.gates).T if table.gates else np.zeros((d, 0))
    signs = np.array(table.signs, dtype=int)
    directions = np.array(table.directions).reshape(-1, d)
    return SearchResult(
        patterns=Patterns(masks, gates, complete=False, method="search"),
        values=np.array(table.values, dtype=float), signs=signs, directions=directions,
        achieved=signs * (activation(directions @ Xt.T) @ lam),
        local_maxima=np.array([m.tobytes() in table.local_maxima for m in table.masks], dtype=bool), beta=beta,
        n_starts=2 * all_starts.shape[0], n_iter=n_iter, n_projections=len(table.sigma),
        wall_time=time.perf_counter() - start_time)


# ---------------------------------------------------------------------- certificate


@dataclass
class SearchCertificate(Certificate):
    """A :class:`~cvxnn.certificate.Certificate` from a pattern search, with the search beside it.

    lower_bound uses s = max(spectral bound, best value found) (valid for every network);
    globally_optimal is True only when that bound closes the gap, False when a violation found
    proves a decrease (s − β)²/(2‖(X̃u)_+‖²) larger than rtol, None otherwise.
    improving_direction: the unit u of the best value and improving_sign its sign: the neuron
    (√a u, improving_sign·√a) with a = (s − β)/‖(X̃u)_+‖² lowers NC when s > β.
    """

    improving_sign: int = 1
    search: SearchResult | None = field(default=None, repr=False)


def certify_with_search(net: TwoLayerNet, X: Any, y: Any, beta: float, n_random: int = DEFAULT_RANDOM_STARTS,
                        seed: int | None = 0, max_iter: int = DEFAULT_MAX_ITER, starts: np.ndarray | None = None,
                        rtol: float = 1e-4) -> SearchCertificate:
    """Certify ``net`` without enumerating patterns: search from its dual point λ = y − f(X).

    The search starts from the network's neuron directions u_j/‖u_j‖, any ``starts`` given, and
    ``n_random`` Gaussian directions. The lower bound d(tλ), t ≤ β/s, uses
    s = max(spectral bound, best found) ≥ sup_u |λᵀσ(X̃u)| (:func:`~cvxnn.duality.spectral_dual_bound`,
    σ = ``net.activation``), so it holds for every network of any width with that activation; the
    search alone can only prove suboptimality.
    """
    start = time.perf_counter()
    beta = _check_beta(beta)
    Xt = net.design(X)
    yv = as_targets(y, Xt.shape[0])
    objective = net.objective(X, yv, beta)
    lam = yv - net.hidden(X) @ net.w2
    neuron_starts = np.vstack([net.W1, _start_directions(starts, Xt.shape[1])])
    search = search_violations(Xt, lam, beta, starts=neuron_starts, n_random=n_random, seed=seed, max_iter=max_iter,
                               activation=net.activation)
    check = search.dual_check()
    s_valid = max(spectral_dual_bound(Xt, lam, net.activation), check.value)
    lower, _ = scaled_dual_value(lam, yv, s_valid, beta)
    verdict, violated = _verdict(Xt, lam, objective, lower, check, beta, rtol, net.activation)
    return SearchCertificate(
        objective, lower, verdict, "pattern search + spectral bound", len(search.patterns), False,
        check.value / beta, rtol, time.perf_counter() - start,
        checked=(f"{len(search.patterns)} patterns visited by local ascent from {search.n_starts} starts "
                 f"({search.n_iter} steps), each by an exact cone projection; the certified bound uses "
                 f"s = {s_valid:.4g} (spectral bound max ‖λ±‖‖X̃±‖₂ or the best value found)"),
        not_checked="patterns the ascent did not reach; a larger violation there is not excluded",
        improving_direction=check.direction if violated else None,
        improving_sign=check.sign, search=search)


# ---------------------------------------------------------------------- column generation


@dataclass(frozen=True)
class RoundLog:
    """One round of :func:`column_generation_fit`.

    n_patterns: patterns in the program solved this round; objective: its optimum q*(list);
    max_violation: best σ found by the search at the solution's dual point, divided by β;
    n_added: new violated patterns added for the next round.
    """

    round: int
    n_patterns: int
    objective: float
    max_violation: float
    n_added: int
    solve_time: float
    search_time: float


@dataclass
class ColumnGenerationResult:
    """The last fit, one :class:`RoundLog` per round, and whether the search ran dry.

    converged: True when the last search found no violated pattern outside the list (a search
        result, not a proof: certify the network to know whether it is globally optimal).
    """

    fit: ConvexFit
    log: list[RoundLog]
    converged: bool

    @property
    def objectives(self) -> np.ndarray:
        return np.array([r.objective for r in self.log])


def column_generation_fit(X: Any, y: Any, beta: float, patterns0: Any = 5, max_rounds: int = 20,
                          n_random: int = DEFAULT_RANDOM_STARTS, seed: int | None = 0, bias: bool = False,
                          max_add: int | None = None, viol_rtol: float = 1e-6,
                          max_iter: int = DEFAULT_MAX_ITER) -> ColumnGenerationResult:
    """Fit (CVX) on a growing pattern list: patterns0, then the violated patterns found by search.

    Round k: solve (CVX) on the list 𝒟_k; λ = y − Σ_i D_iX̃(v_i − w_i); search from the solution's
    neuron directions and ``n_random`` Gaussian starts (seed + k); add the patterns outside 𝒟_k
    where an ascent stopped (local maxima) with σ^± > β(1 + viol_rtol) (largest first, at most
    ``max_add``); every violated pattern visited ascends to such a local maximum. q*(𝒟_k) is non-increasing
    since 𝒟_k ⊆ 𝒟_{k+1}. Stops when no new violated pattern is found or after ``max_rounds``.

    patterns0: an int (that many Gaussian samples), a Patterns object or an (n, P) mask array.
    """
    beta = _check_beta(beta)
    Xm = as_matrix(X)
    yv = as_targets(y, Xm.shape[0])
    Xt = add_bias(Xm) if bias else Xm
    pats = resolve_patterns(Xt, patterns0, seed=seed)
    log: list[RoundLog] = []
    for k in range(max_rounds):
        res = fit(Xm, yv, beta, patterns=pats, bias=bias)
        lam = yv - convex_prediction(Xt, pats.masks, res.v, res.w)
        search = search_violations(Xt, lam, beta, starts=res.network.W1, n_random=n_random,
                                   seed=None if seed is None else seed + k, max_iter=max_iter)
        new = _new_patterns(pats, search, viol_rtol, max_add)
        log.append(RoundLog(k, len(pats), res.objective, search.best_value / beta, len(new), res.solve_time,
                            search.wall_time))
        if len(new) == 0:
            return ColumnGenerationResult(res, log, True)
        pats = pats.merge(new)
    return ColumnGenerationResult(res, log, False)


def _new_patterns(pats: Patterns, search: SearchResult, viol_rtol: float, max_add: int | None) -> Patterns:
    """The violated local maxima of ``search`` that are not in ``pats`` (largest σ first)."""
    known = {pats.masks[:, i].tobytes() for i in range(len(pats))}
    idx = [i for i in search.violating(viol_rtol, local_maxima_only=True)
           if search.patterns.masks[:, i].tobytes() not in known]
    idx = idx[:max_add] if max_add is not None else idx
    gates = None if search.patterns.gates is None else search.patterns.gates[:, idx]
    return Patterns(search.patterns.masks[:, idx], gates, complete=False, method="search")
