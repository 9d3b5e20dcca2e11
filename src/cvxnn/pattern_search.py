"""Local search for violated dual constraints, search-based certificates and column generation.

The dual constraint of (NC) at λ is s(λ) = sup_{‖u‖≤1} |λᵀ(X̃u)_+| ≤ β (THEORY §2.1). It is a
maximum over all activation patterns D of σ^±(D) = ‖Π_K(D)(±X̃ᵀDλ)‖ (§2.2), far too many to
enumerate for most data. :func:`search_violations` looks for large values by local ascent over
patterns; every value it reports is an **exact** σ of the pattern of a real point (a cone
projection, :func:`~cvxnn.duality.cone_sigma`), hence a true value of |λᵀ(X̃u)_+| at a
unit u and a valid *lower* estimate of s(λ). A value above β proves that λ is infeasible (the
network or convex solution is not globally optimal); a search that finds nothing proves nothing.

* :func:`certify_with_search`: a certificate for a network whose data have too many patterns to
  enumerate: violations found by the search, the valid spectral bound for the lower bound.
* :func:`column_generation` (``fit(..., search=...)``): fit on a few patterns, add the violated
  patterns the search finds at the solution's dual point (for the gated program, whose constraint is a closed
  form, :mod:`cvxnn.gated_search`), refit, repeat;
  :func:`column_generation_fit` is the same loop with the classic settings, returning its log.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .activations import RELU, Activation
from .certificate import Certificate, _verdict
from .data import as_matrix, as_targets
from .duality import DualCheck, cone_sigma, gated_norms, group_cone_sigma, scaled_dual_value, spectral_dual_bound
from .losses import loss_from
from .network import TwoLayerNet, convex_from_network, convex_prediction
from .nonconvex import train_nonconvex
from .patterns import Patterns, enumerable
from .progress import FitProgress
from .training import AUTO_ENUMERATE_LIMIT, ConvexFit, Program, _check_beta, align_blocks, fit, nonconvex_init, \
    resolve_patterns, warm_start_blocks

DEFAULT_RANDOM_STARTS = 100
DEFAULT_MAX_ITER = 100
DEFAULT_SCREEN_STEPS = 30  # batched ascent steps of the random starts before any exact projection
SCREEN_STEP_DECAY = 3.0  # the batched ascent's k-th step has length 1/(1 + k/SCREEN_STEP_DECAY) on the unit sphere
DEFAULT_BEST_STARTS = 5  # random starts ascended exactly even when their screen cannot exceed β
BINDING_TOL = 1e-9  # a row is on the boundary of the cone when |x_kᵀu| ≤ BINDING_TOL·‖x_k‖ (unit u)
ASCENT_RTOL = 1e-12  # a neighbour must improve σ by this relative amount for the ascent to move
MOVE_PATIENCE = 2  # the search stops its Adam moves after this many in a row did not lower the objective
MOVE_LR_DECAY = 10.0  # a move that did not lower the objective is tried again with its step size divided by this


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
    n_starts: start directions × 2 signs; n_iter: exact ascent steps over all starts;
    n_projections: cone projections solved; wall_time: seconds;
    n_screened: patterns whose screen ‖X̃ᵀWλ‖ (W = aD + b(I − D), an upper bound on σ^±) was
        computed in batches to decide which ones need a projection.
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
    n_screened: int = 0

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
    """Exact σ per (pattern, sign), memoized, and the distinct patterns seen with their best value; counts the local
    maxima whose best value exceeds ``threshold`` (``n_violated``, kept as values and maxima are added)."""

    def __init__(self, Xt: np.ndarray, lam: np.ndarray, activation: Activation = RELU,
                 threshold: float = np.inf) -> None:
        self.Xt, self.lam, self.activation, self.threshold = Xt, lam, activation, threshold
        self.sigma: dict[tuple[bytes, int], tuple[float, np.ndarray]] = {}
        self.index: dict[bytes, int] = {}
        self.masks: list[np.ndarray] = []
        self.gates: list[np.ndarray] = []
        self.values: list[float] = []
        self.signs: list[int] = []
        self.directions: list[np.ndarray] = []
        self.local_maxima: set[bytes] = set()
        self.n_violated = 0
        self.n_screened = 0

    def screens(self, masks: np.ndarray) -> np.ndarray:
        """‖X̃ᵀW_jλ‖ (‖X̃ᵀW_jΛ‖_F) for the columns D_j of ``masks`` (one product): upper bounds on σ^±(D_j)."""
        self.n_screened += masks.shape[1]
        return gated_norms(self.Xt, self.activation.fit_weights(masks), self.lam)

    def evaluate(self, mask: np.ndarray, sign: int, gate: np.ndarray, active: np.ndarray | None = None
                 ) -> tuple[float, np.ndarray]:
        """σ^sign(D) = max{sign·λᵀWX̃u : u ∈ K(D), ‖u‖ ≤ 1}, W = aD + b(I − D), and its maximizer; ``gate`` has
        pattern D; ``active``: rows that start the projection's working set (:func:`~cvxnn.duality.cone_sigma`).
        For Λ (n, c), the "group" value (Σ_k σ^sign_k(D)²)^½ = max{⟨sign·X̃ᵀWΛ, V⟩ : columns of V in K(D),
        ‖V‖_F ≤ 1} (:func:`~cvxnn.duality.max_dual_constraint_vector`) and the maximizer of its largest column."""
        key = mask.tobytes()
        if (key, sign) in self.sigma:
            return self.sigma[(key, sign)]
        weights = self.activation.fit_weights(mask[:, None])[:, 0]
        if self.lam.ndim == 1:
            value, u = cone_sigma(self.Xt, mask, sign * (self.Xt.T @ (weights * self.lam)), active=active)
        else:
            value, u = group_cone_sigma(self.Xt, mask, sign * (self.Xt.T @ (weights[:, None] * self.lam)), active)
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
            if key in self.local_maxima and self.values[i] <= self.threshold < value:
                self.n_violated += 1
            self.values[i], self.signs[i], self.directions[i] = value, sign, u
        return value, u

    def mark_local_maximum(self, key: bytes) -> None:
        """Record the pattern ``key`` (already evaluated) as a local maximum."""
        if key not in self.local_maxima:
            self.local_maxima.add(key)
            self.n_violated += int(self.values[self.index[key]] > self.threshold)


def _neighbour_points(Xt: np.ndarray, u: np.ndarray, row_norms: np.ndarray) -> tuple[list[np.ndarray], np.ndarray]:
    """Points u + εδ in the cells adjacent to u across the hyperplanes u lies on, and those rows (B below).

    B = {k : |x_kᵀu| ≤ tol‖x_k‖} (binding rows). For each k ∈ B, and for all of B at once, δ
    solves X_B δ = t (least squares) with t the current signs of B, flipped on k (on all of B);
    ε keeps every non-binding sign: ε = ½ min_{k∉B}|x_kᵀu| / max_{k∉B}|x_kᵀδ|.
    """
    z = Xt @ u
    binding = np.abs(z) <= BINDING_TOL * row_norms
    if not binding.any():
        return [], np.flatnonzero(binding)
    signs = np.where(z[binding] >= 0, 1.0, -1.0)
    targets = signs[:, None] * (1.0 - 2.0 * np.eye(signs.size))  # column k: the signs with the k-th flipped
    if signs.size > 1:
        targets = np.c_[targets, -signs]
    deltas = np.linalg.pinv(Xt[binding]) @ targets  # one least-squares solution per column
    off = ~binding
    if off.any():
        margin, spreads = np.abs(z[off]).min(), np.abs(Xt[off] @ deltas).max(axis=0)
    else:
        margin, spreads = 1.0, np.linalg.norm(deltas, axis=0)
    return list((u[:, None] + deltas * (0.5 * margin / np.maximum(spreads, 1e-300))).T), np.flatnonzero(binding)


def _ascend(table: _PatternTable, start: np.ndarray, sign: int, row_norms: np.ndarray, expanded: set,
            max_iter: int, first_improvement: bool = False) -> int:
    """Monotone ascent of σ^sign over adjacent patterns from the pattern of ``start``; returns the steps.

    Step: u = argmax of sign·λᵀDX̃u on K(D) ∩ ball (the projected iterate
    Π_K(D)(sign·X̃ᵀDλ)/‖·‖); move to the adjacent pattern (across the faces u lies on) with the
    largest σ if it beats σ(D). σ never decreases: u lies in the closure of each adjacent cone and
    λᵀ(X̃u)_+ is the same linear function there. Stops at a local maximum, after ``max_iter``
    steps, or on reaching a (pattern, sign) already expanded (its continuation is known).

    The neighbours are screened in one product: σ(D') ≤ ‖X̃ᵀW'λ‖, so they are projected in
    decreasing order of the screen and the rest skipped once it falls below the best σ found;
    the step taken is the same as if every neighbour were projected. With ``first_improvement``
    the step goes to the first neighbour (in that order) that beats σ(D): fewer projections per
    step, the same stopping test (a local maximum needs every neighbour checked).
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
        points, binding = _neighbour_points(table.Xt, u, row_norms)
        if points:
            H = np.array(points)
            masks = table.Xt @ H.T >= 0
            screens = table.screens(masks)
            for j in np.argsort(-screens):
                if screens[j] <= best[0]:
                    break
                if not np.array_equal(masks[:, j], mask):
                    v, _ = table.evaluate(masks[:, j], sign, H[j], active=binding)
                    if v > best[0]:
                        best = (v, masks[:, j], H[j])
                        if first_improvement:
                            break
        if best[1] is None:
            table.mark_local_maximum(mask.tobytes())
            return step + 1
        mask, gate = best[1], best[2]
    return max_iter


def screened_ascent(Xt: np.ndarray, lam: np.ndarray, H: np.ndarray, signs: np.ndarray, steps: int,
                    activation: Activation = RELU) -> tuple[np.ndarray, np.ndarray]:
    """Batched ascent of g_j(u) = s_j·λᵀσ(X̃u) on the unit sphere from the columns of H (d × k); no projection.

    Step k, for all columns at once (two products with X̃): c = s_j·X̃ᵀW(u)λ, the gradient of g_j
    at u (W(u) = aD(u) + b(I − D(u))), and u ← (u + t_kc/‖c‖)/‖u + t_kc/‖c‖‖ with the diminishing
    length t_k = 1/(1 + k/SCREEN_STEP_DECAY): a constant t = 1 (a 45° turn) circles a maximum instead of
    reaching it. Measured on digits at a pattern search's dual point (``benchmarks/bench_search_steps.py``):
    after 30 such steps the exact ascents to 40 violated local maxima took 935 steps and 2915 projections
    (7.6 s), against 2060 steps and 4289 projections (10.6 s) after 10 steps of t = 1, and found larger
    maxima. Returns the unit points (d × k) with the largest value seen along each path and those
    values, each an exact value of s_j·λᵀσ(X̃u) at a unit u (a lower bound on σ^{s_j} of the point's
    pattern).
    """
    U = H / np.maximum(np.linalg.norm(H, axis=0), 1e-300)
    best_u, best_g = U.copy(), np.full(U.shape[1], -np.inf)
    for step in range(steps + 1):
        Z = Xt @ U
        g = signs * (lam @ activation(Z))
        better = g > best_g
        best_g[better], best_u[:, better] = g[better], U[:, better]
        if step == steps:
            break
        C = signs * (Xt.T @ (activation.fit_weights(Z >= 0) * lam[:, None]))
        U = U + C / (1.0 + step / SCREEN_STEP_DECAY) / np.maximum(np.linalg.norm(C, axis=0), 1e-300)
        U /= np.maximum(np.linalg.norm(U, axis=0), 1e-300)
    return best_u, best_g


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
                      max_iter: int = DEFAULT_MAX_ITER, activation: Activation = RELU,
                      screened_starts: np.ndarray | None = None, n_screen: int = 0,
                      screen_steps: int = DEFAULT_SCREEN_STEPS, n_best: int = DEFAULT_BEST_STARTS,
                      max_ascents: int | None = None, stop_after: int | None = None, viol_rtol: float = 0.0,
                      first_improvement: bool = False, time_limit: float | None = None) -> SearchResult:
    """Search for unit u with |λᵀσ(X̃u)| > β by local ascent over activation patterns (σ = ReLU by default).

    Args:
        Xt: the design matrix X̃ (n × d, with the bias column if any).
        lam: the dual point λ (n,), e.g. the residual y − f(X) of a network; or Λ (n, c) for the "group"
            constraint of vector outputs, (Σ_k σ^±_k(D)²)^½ ≤ β (:meth:`_PatternTable.evaluate`; ``achieved``
            is then ‖(±Λᵀσ(X̃u))_+‖ at the stored u, a lower bound on the value).
        beta: the weight decay (classifies violations, see :meth:`SearchResult.violating`, and
            decides which screened starts are worth an exact ascent).
        starts: (k, d) start directions (gate vectors, neuron directions), used with both signs.
        n_random: Gaussian start directions added to ``starts``.
        seed: seed of the Gaussian starts (``n_random`` first, then ``n_screen``).
        max_iter: exact ascent steps per start.
        screened_starts, n_screen: further directions (these and ``n_screen`` Gaussian ones,
            both signs) that are first moved by ``screen_steps`` steps of the batched ascent
            :func:`screened_ascent`, which needs no projection. An exact ascent then follows
            only from those whose pattern's screen ‖X̃ᵀWλ‖ ≥ σ^± exceeds β (the others cannot
            violate there) and from the ``n_best`` with the largest values; best value first,
            at most ``max_ascents`` of them (None: no limit).
        stop_after: no further ascent is started once this many local maxima with
            σ^± > β(1 + viol_rtol) have been found (None: run every ascent).
        first_improvement: each exact step moves to the first improving neighbour in screen
            order instead of the best one (see :func:`_ascend`).
        time_limit: seconds after which no further ascent is started.

    Each start u₀ gives the pattern D = 1[X̃u₀ ≥ 0]; the ascent (see :func:`_ascend`) maximizes
    ±λᵀ(X̃u)_+ from there. All values reported are exact σ^±(D) of visited patterns.
    """
    start_time = time.perf_counter()
    Xt = as_matrix(Xt, "Xt")
    lam = np.asarray(lam)
    lam = np.column_stack([as_targets(col, Xt.shape[0], "lam") for col in lam.T]) \
        if lam.ndim == 2 and lam.shape[1] > 1 else as_targets(lam, Xt.shape[0], "lam")
    beta = _check_beta(beta)
    for name, value in (("n_random", n_random), ("n_screen", n_screen), ("screen_steps", screen_steps),
                        ("n_best", n_best)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
            raise ValueError(f"{name} must be a non-negative integer, got {value!r}.")
    if max_ascents is not None and (isinstance(max_ascents, bool) or not isinstance(max_ascents, (int, np.integer))
                                    or max_ascents < 0):
        raise ValueError(f"max_ascents must be None or a non-negative integer, got {max_ascents!r}.")
    rng = np.random.default_rng(seed)
    d = Xt.shape[1]
    exact = np.vstack([_start_directions(starts, d), rng.standard_normal((int(n_random), d))])
    pool = np.vstack([_start_directions(screened_starts, d), rng.standard_normal((int(n_screen), d))])
    threshold = beta * (1 + viol_rtol)
    table = _PatternTable(Xt, lam, activation, threshold)
    ascents = [(g, sign) for g in exact for sign in (1, -1)]
    if pool.shape[0]:
        signs = np.tile(np.array([1.0, -1.0]), pool.shape[0])
        # "group": each column's ascent (σ_k(D) ≤ the group value), the starts of all columns together, then the
        # unmoved starts (their maxima combine the columns, which no single column's ascent finds)
        raw = np.repeat(pool, 2, axis=0).T
        moved = [screened_ascent(Xt, column, raw, signs, int(screen_steps), activation)
                 for column in (lam[:, None] if lam.ndim == 1 else lam).T]
        if lam.ndim == 2:
            moved.append((raw / np.linalg.norm(raw, axis=0), np.full(raw.shape[1], -np.inf)))
        U, values = np.hstack([m[0] for m in moved]), np.concatenate([m[1] for m in moved])
        signs = np.tile(signs, len(moved))
        screens = table.screens(Xt @ U >= 0)
        order = np.argsort(-values)
        order = order[(screens[order] > beta) | (np.arange(order.size) < n_best)]
        ascents += [(U[:, j], int(signs[j])) for j in order[:max_ascents]]
    n_starts = 2 * (exact.shape[0] + pool.shape[0] * (1 if lam.ndim == 1 else lam.shape[1] + 1))
    row_norms = np.linalg.norm(Xt, axis=1)
    expanded: set = set()
    n_iter = 0
    for g, sign in ascents:
        if time_limit is not None and time.perf_counter() - start_time > time_limit:
            break
        if stop_after is not None and table.n_violated >= stop_after:
            break
        n_iter += _ascend(table, g / np.linalg.norm(g), sign, row_norms, expanded, max_iter, first_improvement)
    n = Xt.shape[0]
    masks = np.array(table.masks, dtype=bool).T if table.masks else np.zeros((n, 0), dtype=bool)
    gates = np.array(table.gates).T if table.gates else np.zeros((d, 0))
    found_signs = np.array(table.signs, dtype=int)
    directions = np.array(table.directions).reshape(-1, d)
    outputs = activation(directions @ Xt.T) @ lam
    achieved = found_signs * outputs if lam.ndim == 1 else \
        np.linalg.norm(np.maximum(found_signs[:, None] * outputs, 0.0), axis=1)
    return SearchResult(
        patterns=Patterns(masks, gates, complete=False, method="search"),
        values=np.array(table.values, dtype=float), signs=found_signs, directions=directions,
        achieved=achieved,
        local_maxima=np.array([m.tobytes() in table.local_maxima for m in table.masks], dtype=bool), beta=beta,
        n_starts=n_starts, n_iter=n_iter, n_projections=len(table.sigma),
        wall_time=time.perf_counter() - start_time, n_screened=table.n_screened)


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
                        rtol: float = 1e-4, loss: Any = "squared") -> SearchCertificate:
    """Certify ``net`` (one output) without enumerating patterns: search from its dual point λ = −∇L(f(X))
    (y − f(X) for the squared loss; ``loss`` as in :func:`cvxnn.certify`).

    The search starts from the network's neuron directions u_j/‖u_j‖, any ``starts`` given, and
    ``n_random`` Gaussian directions. The lower bound d(tλ), t ≤ β/s, uses
    s = max(spectral bound, best found) ≥ sup_u |λᵀσ(X̃u)| (:func:`~cvxnn.duality.spectral_dual_bound`,
    σ = ``net.activation``), so it holds for every network of any width with that activation; the
    search alone can only prove suboptimality.
    """
    start = time.perf_counter()
    beta = _check_beta(beta)
    loss = loss_from(loss)
    if net.n_outputs != 1:
        raise ValueError(f"certify_with_search takes a network with one output, got {net.n_outputs}; use "
                         "cvxnn.certify for vector outputs.")
    Xt = net.design(X)
    yv = loss.targets(y, Xt.shape[0])
    objective = net.objective(X, yv, beta, loss)
    lam = loss.repair(loss.dual_direction(net.hidden(X) @ net.w2, yv), yv)
    neuron_starts = np.vstack([net.W1, _start_directions(starts, Xt.shape[1])])
    search = search_violations(Xt, lam, beta, starts=neuron_starts, n_random=n_random, seed=seed, max_iter=max_iter,
                               activation=net.activation)
    check = search.dual_check()
    s_valid = max(spectral_dual_bound(Xt, lam, net.activation), check.value)
    lower, _ = scaled_dual_value(lam, yv, s_valid, beta, loss)
    verdict, violated = _verdict(Xt, lam, objective, lower, check, beta, rtol, net.activation, loss.curvature)
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
class SearchOptions:
    """Budget and starts of the pattern search in ``fit(..., search=SearchOptions(...))``.

    max_rounds: programs solved at most (a search follows each solve). time_limit: seconds for
        the whole fit (nonconvex seed, solves, searches); checked between solves and between ascents.
    n_screen: Gaussian directions per round moved by the batched ascent (no projection) together
        with the current neurons and the list's gate vectors; exact ascents follow from the best
        (screen ‖X̃ᵀWλ‖ > β, or among the ``n_best`` largest values), at most ``max_ascents``;
        no further ascent starts once ``max_add`` violated local maxima are known (per output column; measured
        against 2·``max_add``, `fit` with search from a 1500-step Adam seed: breast cancer 20 rounds 55.5 → 51.7 s,
        NC 11.2836 → 11.2581; digits in 120 s NC 10.8350 → 10.8216; breast cancer with the logistic loss converged in
        56.5 → 45.2 s, NC 22.3367 → 22.3369; half the projections in each).
    n_random: Gaussian starts per round ascended exactly without screening (none by default: on digits their
        ascents from σ ≈ 0–0.5β took 100 steps each, 36 % of a round's search, and found the lowest maxima).
    exact_starts: ascend exactly from every neuron and gate instead of screening them.
    screen_steps, max_iter: batched and exact ascent steps.
    max_add: new patterns per round (largest violation first; None: all found).
    viol_rtol: a pattern is violated when σ^± > β(1 + viol_rtol).
    keep_inactive: keep patterns whose blocks are zero, and the round's list after an accepted move; by default
        they are dropped from the next list (the start stays feasible, so the objective still cannot increase).
    first_improvement: exact ascent steps take the first improving neighbour (fewer projections).
    nonconvex_steps, nonconvex_lr: after each round's search of the ReLU program, that many full-batch Adam steps
        (step size ``nonconvex_lr``) from the round's network (:func:`_nonconvex_move`). Gradient steps carry all
        the neurons across pattern boundaries at once, where the dual search adds patterns one constraint at a
        time. When the best iterate's Ψ lowers the program's objective by more than ``tol`` relative, it is the
        next start, and its patterns with the round's violated ones are the next list (the round's list stays too
        with ``keep_inactive`` or when it is complete). Ψ is feasible there, so the objective still cannot
        increase; and the patterns the moved network left go, which the ipm's interior solutions (weight on every
        listed pattern, no zero block) would otherwise keep. A move that did not help is tried again at once with
        its step size divided by MOVE_LR_DECAY = 10 (later rounds keep it); after MOVE_PATIENCE = 2 in a row the
        search stops moving (the round's network is then nearly stationary). No move follows the last round; 0
        steps turn it off. Measured (`benchmarks/bench_search.py`, one thread; BENCHMARKS, sixteenth and
        seventeenth sessions), final NC with no move, with 200-step moves that added to the round's list, and now
        with 1000 steps: from 10 sampled patterns on planted n = 2000, d = 20 (60 s) 416.97, 155.63 and 155.69
        (Adam's best run: 155.65); from 50 on breast cancer (60 s) 13.98, 11.22 and 11.17 (Adam: 11.59); on
        digits (120 s) 58.42, 20.04 and 10.96 (Adam: 10.66); from a 1500-step Adam seed (120 s) breast cancer
        11.2855, 11.16 and 11.16, digits 10.8181, 10.69 and 9.96.

    The gated program's search (:func:`~cvxnn.gated_search.search_gated_violations`) uses ``n_screen`` +
    ``n_random`` Gaussian starts with the neurons and gates, ``max_iter`` flip steps per start, ``max_add``,
    ``viol_rtol`` and ``keep_inactive``; the other options steer the ReLU program's ascent only.
    """

    max_rounds: int = 20
    time_limit: float | None = None
    n_screen: int = 1000
    n_random: int = 0
    n_best: int = DEFAULT_BEST_STARTS
    max_ascents: int | None = None
    exact_starts: bool = False
    screen_steps: int = DEFAULT_SCREEN_STEPS
    max_iter: int = DEFAULT_MAX_ITER
    max_add: int | None = 20
    viol_rtol: float = 1e-6
    keep_inactive: bool = False
    first_improvement: bool = True
    nonconvex_steps: int = 1000
    nonconvex_lr: float = 1e-2

    def __post_init__(self) -> None:
        for name in ("max_rounds", "n_screen", "n_random", "n_best", "screen_steps", "max_iter", "nonconvex_steps"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < (name == "max_rounds"):
                raise ValueError(f"SearchOptions.{name} must be an integer ≥ {int(name == 'max_rounds')}, "
                                 f"got {value!r}.")
        for name in ("max_ascents", "max_add"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, (int, np.integer))
                                      or value < 1):
                raise ValueError(f"SearchOptions.{name} must be None or a positive integer, got {value!r}.")
        if self.time_limit is not None and not self.time_limit > 0:
            raise ValueError(f"SearchOptions.time_limit must be None or positive, got {self.time_limit!r}.")
        lr = self.nonconvex_lr
        if isinstance(lr, bool) or not isinstance(lr, (int, float, np.floating, np.integer)) or not 0 < lr < np.inf:
            raise ValueError(f"SearchOptions.nonconvex_lr must be a positive finite number, got {lr!r}.")
        if not self.viol_rtol >= 0:
            raise ValueError(f"SearchOptions.viol_rtol must be non-negative, got {self.viol_rtol!r}.")


def search_options(search: Any) -> SearchOptions | None:
    """``fit``'s ``search`` argument: None/False (no search), True (defaults) or a SearchOptions."""
    if search is None or search is False:
        return None
    if search is True:
        return SearchOptions()
    if isinstance(search, SearchOptions):
        return search
    raise TypeError(f"search must be None, a bool or a SearchOptions, got {search!r}.")


@dataclass(frozen=True)
class RoundLog:
    """One round of the pattern search: a solve, then a search at its dual point.

    n_patterns: patterns in the program solved this round; objective: its value (the optimum
    q*(list) up to the solver's tolerance); max_violation: best σ found by the search at the
    solution's dual point, divided by β (nan when no search ran); n_added: new violated patterns
    added for the next round; n_projections, n_screened: exact cone projections and screened
    patterns of the search (for the gated program, whose values need no projection: 0, and the patterns
    evaluated); nonconvex_objective: the program's objective at Ψ of the Adam move's network (the last one tried
    when a smaller step followed; nan when no move ran, :attr:`SearchOptions.nonconvex_steps`); n_moved: the
    patterns it added (0 unless it lowered the objective); nonconvex_time: the seconds of every move tried.
    """

    round: int
    n_patterns: int
    objective: float
    max_violation: float
    n_added: int
    solve_time: float
    search_time: float
    n_projections: int = 0
    n_screened: int = 0
    nonconvex_objective: float = float("nan")
    n_moved: int = 0
    nonconvex_time: float = 0.0


@dataclass
class SearchReport:
    """How ``fit(..., search=...)`` built its pattern list.

    rounds: one :class:`RoundLog` per solve.
    stopped: "converged" (the last search found no violated pattern outside the list — a search
        result, not a proof), "max_rounds", "time_limit", "interrupted" or "no_search".
    max_violation: the largest |λ_kᵀσ(X̃u)|/β found at the returned fit's dual point Λ = −∇L(ŷ) (y − ŷ for
        the squared loss, the solver's for the hinge; over its columns k for vector outputs), each value an exact
        cone projection at a real pattern: above 1 proves the returned network is not globally optimal; at most
        1 proves nothing beyond the list (nan if no search ran or the time limit left it no projection). For the
        gated program the largest ‖X̃ᵀW_DΛ_k‖/β (Frobenius over k for "group"): above 1 proves the fit is not
        the all-pattern gated optimum; at most 1 after pricing every pattern, the list's dual point is feasible
        for all patterns, so its lower bound holds for the all-pattern program.
    n_starts, n_screened, n_projections: totals over the rounds (start directions × signs,
        patterns screened by ‖X̃ᵀWλ‖, exact projections).
    init_objective, init_time: NC of the best nonconvex seed run and the seconds of all of them (None without one).
    total_time: seconds of the whole fit.
    """

    rounds: list[RoundLog]
    stopped: str
    max_violation: float
    n_starts: int
    n_screened: int
    n_projections: int
    init_objective: float | None
    init_time: float
    total_time: float

    @property
    def converged(self) -> bool:
        return self.stopped == "converged"

    @property
    def objectives(self) -> np.ndarray:
        return np.array([r.objective for r in self.rounds])


def column_generation(program: Program, patterns: Any, options: SearchOptions | None, init_nonconvex: Any = None,
                      warm_start: Any = None, seed: int | None = 0, max_patterns: int = AUTO_ENUMERATE_LIMIT,
                      progress: bool = False, callback: Callable[[RoundLog], Any] | None = None,
                      time_limit: float | None = None) -> ConvexFit:
    """``fit`` with a pattern search: solve (CVX) on a growing list, adding violated patterns.

    List 𝒟_0: ``patterns`` (resolved as by ``fit``), merged with the patterns of the nonconvex seed
    run θ when ``init_nonconvex`` is given (then ``patterns`` None means θ's alone); start Ψ(θ) or
    ``warm_start``. Round k: solve on 𝒟_k from the previous solution (zero blocks for new patterns;
    used by solvers that warm-start); Λ = −∇L(ŷ) (a smooth loss; for the hinge the fit's ``dual_point``, the
    solver's multiplier); :func:`search_violations` at each of its columns
    (one for a scalar output; at all of them at once for "group") from the current neurons, the gates of 𝒟_k and
    random directions (see
    :class:`SearchOptions`); the local maxima outside
    𝒟_k with σ^± > β(1 + viol_rtol), largest first, at most ``max_add``, join the list (and, unless
    ``keep_inactive``, the patterns with zero blocks leave it). The previous solution stays feasible,
    so the objective never increases; a violated pattern added makes it decrease. For the ReLU program a short
    Adam run from the round's network follows (:func:`_nonconvex_move`); when Ψ of its network is better, it is
    the next start, and its patterns with the new ones make the next list (with the round's list as well when
    ``keep_inactive`` or complete). Stops when neither adds a
    pattern, after ``max_rounds`` solves, at ``time_limit``, or on KeyboardInterrupt
    (from Ctrl-C or ``callback``): then the best fit so far is returned with status "interrupted".
    ``options`` None: one solve, no search (a nonconvex seed only). ``time_limit``: seconds for the whole call
    (with ``options.time_limit``, the smaller of the two).

    The gated program searches its own constraint ‖X̃ᵀW_DΛ_k‖ ≤ β (:mod:`cvxnn.gated_search`); when at most
    ``max_patterns`` patterns are predicted it prices all of them each round instead (one product). Its rounds
    let "auto" choose the solver as for a cold start (``Program.solve(near_start=False)``): breast cancer from
    100 sampled patterns, 60 s of search rounds reached 2.2836 with the barrier method (0.3–0.6 s per solve)
    against 3.0086 with FISTA continuing from each round's start (1.7–3.8 s per solve).
    """
    start_time = time.perf_counter()
    limits = [t for t in (time_limit, None if options is None else options.time_limit) if t is not None]
    deadline = start_time + min(limits) if limits else None
    Xt, beta, act = program.Xt, program.beta, program.activation
    init_objective, init_time, start = None, 0.0, None
    rounds: list[RoundLog] = []
    totals = np.zeros(3, dtype=int)  # starts, screened, projections
    best: ConvexFit | None = None
    stopped, max_violation = "no_search" if options is None else "max_rounds", float("nan")
    if init_nonconvex is not None:
        nets, init_objective, init_time = _nonconvex_seeds(program, init_nonconvex, seed)
        best_pats, sv, sw = convex_from_network(nets[0], program.Xm)
        seed_pats = best_pats
        for net in nets[1:]:
            seed_pats = seed_pats.merge(convex_from_network(net, program.Xm)[0])
        pats = seed_pats if patterns is None else resolve_patterns(
            Xt, patterns, seed=seed, max_patterns=max_patterns, activation=act).merge(seed_pats)
        start = align_blocks(best_pats, sv, sw, pats)
    else:
        pats = resolve_patterns(Xt, patterns, seed=seed, max_patterns=max_patterns, activation=act)
        start = warm_start_blocks(warm_start, pats, Xt.shape[1], program.y.shape[1:])
    max_rounds = 1 if options is None else options.max_rounds
    candidates = None if options is None else pricing_list(program, max_patterns)
    rejected, move_lr = 0, None if options is None else options.nonconvex_lr  # moves in a row that did not help
    with FitProgress(progress, max_rounds) as bar:

        def log_round(entry: RoundLog) -> None:
            rounds.append(entry)
            bar.round(entry)
            if callback is not None:
                callback(entry)

        try:
            for k in range(max_rounds):
                remaining = None if deadline is None else deadline - time.perf_counter()
                res = program.solve(pats, start=start, callback=bar.solver, time_limit=remaining, near_start=False)
                best = res
                if options is None:
                    rounds.append(RoundLog(k, len(pats), res.objective, float("nan"), 0, res.solve_time, 0.0))
                    break
                remaining = None if deadline is None else deadline - time.perf_counter()
                if remaining is not None and remaining <= 0:  # the solve used the budget: no search at its point
                    stopped, max_violation = "time_limit", float("nan")
                    log_round(RoundLog(k, len(pats), res.objective, max_violation, 0, res.solve_time, 0.0))
                    break
                new, found = round_patterns(program, res, pats, options, None if seed is None else seed + k,
                                            deadline, candidates)
                values = [f.best_value for f in found if f.values.size]
                max_violation = max(values) / beta if values else float("nan")
                counts = [sum(getattr(f, name) for f in found) for name in ("n_starts", "n_screened", "n_projections")]
                totals += counts
                following, start = _next_list(pats, res, new, options.keep_inactive)
                base = following if options.keep_inactive or pats.complete else new  # what the move's list keeps
                move, spent = NonconvexMove(), 0.0
                while rejected < MOVE_PATIENCE and k + 1 < max_rounds:  # none after the last round
                    attempt = _nonconvex_move(program, res, base, options.nonconvex_steps, move_lr, deadline)
                    spent += attempt.seconds
                    if attempt.ran or attempt.interrupted:  # (not at the deadline: the last one that ran is kept)
                        move = attempt
                    if attempt.accepted or not attempt.ran:
                        break
                    rejected, move_lr = rejected + 1, move_lr / MOVE_LR_DECAY  # again at once, a smaller step
                move.seconds = spent
                if move.accepted:
                    following, start, rejected = move.patterns, move.start, 0
                log_round(RoundLog(k, len(pats), res.objective, max_violation, len(new), res.solve_time,
                                   sum(f.wall_time for f in found), counts[2], counts[1], move.objective,
                                   move.n_added, move.seconds))
                if move.interrupted:
                    raise KeyboardInterrupt
                if deadline is not None and time.perf_counter() > deadline:  # the search may have been cut
                    stopped = "time_limit"
                    break
                if len(new) == 0 and not move.accepted:
                    stopped = "converged"
                    break
                pats = following
        except KeyboardInterrupt:
            stopped = "interrupted"
    if best is None:  # interrupted during the first solve: the starting point (or zero) with its certificate
        v0, w0 = start if start is not None else program.zero_blocks(pats)
        best = program.at(pats, v0, w0, "interrupted")
    if stopped == "interrupted":
        best.status = "interrupted"
    best.search = SearchReport(rounds, stopped, max_violation, int(totals[0]), int(totals[1]), int(totals[2]),
                               init_objective, init_time, time.perf_counter() - start_time)
    return best


@dataclass
class NonconvexMove:
    """What :func:`_nonconvex_move` did: the program's objective at Ψ of its network (nan when it did not run),
    whether that beat the round's fit, then the next list (the base list and its patterns) and the start on it,
    the patterns it added to the base list, the
    seconds spent, and whether Ctrl-C stopped it (then nothing else is set)."""

    objective: float = float("nan")
    accepted: bool = False
    patterns: Patterns | None = None
    start: tuple[np.ndarray, np.ndarray] | None = None
    n_added: int = 0
    seconds: float = 0.0
    interrupted: bool = False

    @property
    def ran(self) -> bool:
        """Whether Adam ran to its end (or to the deadline) and its network was evaluated."""
        return not np.isnan(self.objective)


def _nonconvex_move(program: Program, res: ConvexFit, base: Patterns, steps: int, lr: float,
                    deadline: float | None) -> NonconvexMove:
    """``steps`` full-batch Adam steps of size ``lr`` on NC from the fit's network θ (ReLU program only; stopped
    at ``deadline``). Its best iterate θ' has Ψ(θ') feasible on its own patterns with objective at most NC(θ')
    (THEORY §1.2), as on ``base`` ∪ patterns(θ'), the list it proposes; the move is accepted when that objective is
    below the fit's by more than ``program.tol`` relative. Ctrl-C during the run is reported (the search then
    returns its best fit)."""
    if (steps == 0 or program.formulation != "relu" or res.network.width == 0
            or (deadline is not None and time.perf_counter() >= deadline)):
        return NonconvexMove()
    begin = time.perf_counter()
    timed_out = False

    def stop_at_deadline(step: int, objective: float) -> None:
        nonlocal timed_out
        if deadline is not None and time.perf_counter() >= deadline:
            timed_out = True
            raise KeyboardInterrupt

    run = train_nonconvex(program.Xm, program.y, program.beta, res.network.width, lr=lr,
                          epochs=steps, bias=program.bias, record_every=max(1, steps // 10), init=res.network,
                          activation=program.activation, loss=program.loss, device=program.device,
                          callback=stop_at_deadline)
    if run.interrupted and not timed_out:
        return NonconvexMove(seconds=time.perf_counter() - begin, interrupted=True)
    moved, v, w = convex_from_network(run.network, program.Xm)
    merged = base.merge(moved)
    start = align_blocks(moved, v, w, merged)
    objective = program.objective(merged, *start)
    accepted = objective < res.objective - program.tol * abs(res.objective)
    return NonconvexMove(objective, accepted, merged, start, len(merged) - len(base) if accepted else 0,
                         time.perf_counter() - begin)


def _nonconvex_seeds(program: Program, spec: Any, seed: int | None) -> tuple[list[TwoLayerNet], float, float]:
    """Run the short nonconvex trainings of ``init_nonconvex`` (an int: Adam epochs, one run): their nets, the one
    with the lowest NC first, that NC, and the seconds of all runs. Ctrl-C during a run keeps the runs so far
    (the interrupted one's best iterate included) and starts no further one."""
    spec = nonconvex_init(spec)
    run_seed = spec.seed if spec.seed is not None else (0 if seed is None else seed)
    nets, objectives, seconds = [], [], 0.0
    for k in range(spec.restarts):
        run = train_nonconvex(program.Xm, program.y, program.beta, spec.width, optimizer=spec.optimizer, lr=spec.lr,
                              epochs=spec.epochs, seed=run_seed + k, bias=program.bias,
                              record_every=max(1, spec.epochs // 20), activation=program.activation, loss=program.loss,
                              device=program.device)
        nets.append(run.network)
        objectives.append(run.network.objective(program.Xm, program.y, program.beta, program.loss))
        seconds += run.wall_time
        if run.interrupted:
            break
    best = int(np.argmin(objectives))
    return [nets[best]] + nets[:best] + nets[best + 1:], objectives[best], seconds


def pricing_list(program: Program, max_patterns: int) -> Patterns | None:
    """Every pattern of the arrangement, which the gated program's search prices exactly each round, when at most
    ``max_patterns`` are predicted (:func:`~cvxnn.patterns.enumerable`); None otherwise and for the ReLU program."""
    if program.formulation != "gated" or not enumerable(program.Xt, max_patterns):
        return None
    return resolve_patterns(program.Xt, "all", max_patterns=max_patterns, activation=program.activation)


def round_patterns(program: Program, res: ConvexFit, pats: Patterns, options: SearchOptions, seed: int | None,
                   deadline: float | None, candidates: Patterns | None = None) -> tuple[Patterns, list[SearchResult]]:
    """One round's searches at the fit ``res`` (:func:`_search_round`) and the patterns they add to ``pats``: the
    violated local maxima outside it, largest first, at most ``options.max_add``."""
    found = _search_round(program, res, pats, options, seed, deadline, candidates)
    return _new_patterns(pats, found, options.viol_rtol, options.max_add), found


def _search_round(program: Program, res: ConvexFit, pats: Patterns, options: SearchOptions, seed: int | None,
                  deadline: float | None, candidates: Patterns | None = None) -> list[SearchResult]:
    """The searches of one round at the fit's dual point Λ = −∇L(ŷ) (:meth:`~cvxnn.losses.Loss.dual_direction`,
    y − ŷ for the squared loss; the hinge, whose subgradient is not unique at margin points, takes the solver's
    multiplier, ``res.dual_point``): one per output column k for the dual constraints of the "per_output" program
    (one for a scalar output), |Λ_kᵀσ(X̃u)| ≤ β, or one for the "group" constraint (Σ_k σ^±_k(D)²)^½ ≤ β with all
    columns; each until ``deadline``. The gated program's constraints ‖X̃ᵀW_DΛ_k‖ ≤ β (‖X̃ᵀW_DΛ‖_F ≤ β for
    "group") are priced on every pattern of ``candidates`` when given (the enumerated arrangement), else searched
    by :func:`~cvxnn.gated_search.search_gated_violations`."""
    Xt, act, loss = program.Xt, program.activation, program.loss
    lam = loss.repair(loss.dual_direction(convex_prediction(Xt, pats.masks, res.v, res.w, act), program.y), program.y) \
        if loss.smooth else res.dual_point
    starts = _round_starts(res, pats)
    groups = [lam] if program.vector and program.vector_penalty == "group" else \
        list((lam[:, None] if lam.ndim == 1 else lam).T)
    if program.formulation == "gated":
        from .gated_search import price_patterns, search_gated_violations

        if candidates is not None:
            return [price_patterns(Xt, group, program.beta, candidates, act) for group in groups]
        return [search_gated_violations(
            Xt, group, program.beta, starts=starts, n_random=options.n_screen + options.n_random, seed=seed,
            max_iter=options.max_iter, activation=act,
            time_limit=None if deadline is None else max(deadline - time.perf_counter(), 0.0)) for group in groups]
    found = []
    for group in groups:
        remaining = None if deadline is None else max(deadline - time.perf_counter(), 0.0)
        found.append(search_violations(
            Xt, group, program.beta, starts=starts if options.exact_starts else None, n_random=options.n_random,
            seed=seed, max_iter=options.max_iter, activation=act,
            screened_starts=None if options.exact_starts else starts, n_screen=options.n_screen,
            screen_steps=options.screen_steps, n_best=options.n_best, max_ascents=options.max_ascents,
            viol_rtol=options.viol_rtol, time_limit=remaining, stop_after=options.max_add,
            first_improvement=options.first_improvement))
    return found


def _round_starts(res: ConvexFit, pats: Patterns) -> np.ndarray:
    """The fit's neuron directions and the list's gate vectors, as rows."""
    gates = np.zeros((0, res.network.W1.shape[1])) if pats.gates is None else pats.gates.T
    return np.vstack([res.network.W1, gates])


def _next_list(pats: Patterns, res: ConvexFit, new: Patterns, keep_inactive: bool
               ) -> tuple[Patterns, tuple[np.ndarray, np.ndarray]]:
    """The next list (active patterns, or all, then the new ones) and the solution padded with zero blocks."""
    if not keep_inactive and not pats.complete:
        active = np.any(res.v.reshape(len(pats), -1) != 0, axis=1) | np.any(res.w.reshape(len(pats), -1) != 0, axis=1)
        pats = Patterns(pats.masks[:, active], None if pats.gates is None else pats.gates[:, active],
                        complete=False, method=pats.method)
    merged = pats.merge(new)
    return merged, align_blocks(res.patterns, res.v, res.w, merged)


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
    """``fit(X, y, beta, patterns=patterns0, search=...)`` with the classic settings, as a log.

    Each round ascends exactly from the solution's neurons, the list's gates and ``n_random``
    Gaussian starts (no screening), adds every violated local maximum (at most ``max_add``) and
    keeps every pattern; see :func:`column_generation`.
    """
    options = SearchOptions(max_rounds=max_rounds, n_screen=0, n_random=n_random, exact_starts=True,
                            max_ascents=None, max_iter=max_iter, max_add=max_add, viol_rtol=viol_rtol,
                            keep_inactive=True, first_improvement=False)
    res = fit(X, y, beta, patterns=patterns0, bias=bias, seed=seed, search=options)
    return ColumnGenerationResult(res, res.search.rounds, res.search.converged)


def _new_patterns(pats: Patterns, searches: list[SearchResult], viol_rtol: float, max_add: int | None) -> Patterns:
    """The violated local maxima of the ``searches`` (one per output column) that are not in ``pats``, each once,
    largest σ first, at most ``max_add``."""
    known = {pats.masks[:, i].tobytes() for i in range(len(pats))}
    found = sorted(((float(s.values[i]), s, i) for s in searches
                    for i in s.violating(viol_rtol, local_maxima_only=True)), key=lambda item: -item[0])
    masks, gates = [], []
    for _, search, i in found:
        key = search.patterns.masks[:, i].tobytes()
        if key in known:
            continue
        known.add(key)
        masks.append(search.patterns.masks[:, i])
        gates.append(search.patterns.gates[:, i])
        if max_add is not None and len(masks) == max_add:
            break
    n, d = pats.masks.shape[0], searches[0].directions.shape[1]
    return Patterns(np.array(masks, dtype=bool).T.reshape(n, len(masks)), np.array(gates).T.reshape(d, len(gates)),
                    complete=False, method="search")
