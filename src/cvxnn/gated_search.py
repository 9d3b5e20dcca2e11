"""Pattern search for the gated program: arrangement patterns whose dual constraint is violated.

The gated program's dual constraint at Λ (n × c) is, for every arrangement pattern D = 1[X̃g ≥ 0],

    ν(D) = ‖X̃ᵀW_DΛ‖_F ≤ β,   W_D = aD + b(I − D)

(one column of Λ per constraint for "per_output", all columns together for "group"). Unlike the ReLU
program's σ (a cone projection), ν is a closed form: a pattern is checked exactly by one product, so the
search can afford many starts. :func:`search_gated_violations` runs a monotone ascent over row flips from
each start, all starts at once (:func:`flip_ascent`): the gain of flipping one row k alone is known in closed
form, the gate is moved just across the hyperplanes of the rows with the largest gains, and the best move whose
exact pattern (every row it crosses) raises ν is taken.

Its maxima are often small cells of the arrangement: on 16 samples in R³ with a bias (1152 patterns) the
largest ν sat in a cell whose gate was within 0.004 of three hyperplanes, which none of 100 000 random gates
hit. The ascent from 2000 random gates reached it from 0.5 % of them. A smoothed ascent (the step 1[z ≥ 0]
replaced by a logistic) and an alternation with a weighted logistic fit of the ideal pattern were tried
there and reached only lower maxima: they drew every start into the same basin.

Every value reported is an exact ν of the pattern of a real gate, hence a lower estimate of the constraint's
maximum over all patterns: a value above β proves the list's optimum is not the all-pattern optimum. A search
that finds nothing proves nothing.
"""

from __future__ import annotations

import time

import numpy as np

from .activations import RELU, Activation
from .duality import gated_norms
from .pattern_search import SearchResult, _start_directions
from .patterns import Patterns

FLIP_CANDIDATES = 8  # rows of largest closed-form gain whose flips are tried per step
FLIP_OVERSHOOT = 1e-3  # a flip moves x_kᵀg to −FLIP_OVERSHOOT·x_kᵀg (just across the hyperplane)
ASCENT_RTOL = 1e-12  # a move must raise ν by this relative amount
CHUNK_ENTRIES = 1 << 22  # n × (gates) entries evaluated at once (32 MiB of float64 per array)


def gated_values(Xt: np.ndarray, lam: np.ndarray, G: np.ndarray, activation: Activation = RELU) -> np.ndarray:
    """ν(D_j) = ‖X̃ᵀW_jΛ‖_F for the patterns D_j = 1[X̃g_j ≥ 0] of the columns of G (d × k), Λ (n × c);
    in chunks of CHUNK_ENTRIES entries of X̃G."""
    out = np.empty(G.shape[1])
    step = max(1, CHUNK_ENTRIES // max(Xt.shape[0], 1))
    for lo in range(0, G.shape[1], step):
        weights = activation.fit_weights(Xt @ G[:, lo:lo + step] >= 0)
        out[lo:lo + step] = gated_norms(Xt, weights, lam)
    return out


def _unit_direction(M: np.ndarray) -> np.ndarray:
    """The unit u maximizing ‖Mᵀu‖ for M = X̃ᵀW_DΛ (d × c): M/‖M‖ for one column, else the top left singular
    vector (zero for M = 0)."""
    norm = float(np.linalg.norm(M))
    if norm == 0:
        return np.zeros(M.shape[0])
    return M[:, 0] / norm if M.shape[1] == 1 else np.linalg.svd(M)[0][:, 0]


def flip_ascent(Xt: np.ndarray, lam: np.ndarray, G: np.ndarray, activation: Activation = RELU,
                max_iter: int = 100, deadline: float | None = None
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """Monotone ascent of ν over row flips from every column of G (d × S) at once.

    At gate g with pattern D and M = X̃ᵀW_DΛ (d × c), flipping row k alone changes W_D by δ_k = ±(a − b) at k:
    ‖M + δ_kx_kΛ_kᵀ‖² − ν² = 2δ_k(X̃M)_k·Λ_k + δ_k²‖x_k‖²‖Λ_k‖². The FLIP_CANDIDATES rows of largest positive
    gain are tried by moving g just across their hyperplanes (g + (t′ − t)x_k/‖x_k‖², t = x_kᵀg,
    t′ = −FLIP_OVERSHOOT·t, then back to the unit sphere); each move's exact ν (every row it crosses) is
    computed and the best is taken if it raises ν. A path stops when none does (a local maximum over these
    moves), after ``max_iter`` steps, or at ``deadline`` (perf_counter seconds).

    Returns the final unit gates (d × S), their exact ν, whether each path stopped at a local maximum, and
    the steps taken over all paths.
    """
    a, b = activation.a, activation.b
    n, d = Xt.shape
    U = G / np.maximum(np.linalg.norm(G, axis=0), 1e-300)
    values = gated_values(Xt, lam, U, activation)
    local = np.zeros(U.shape[1], dtype=bool)
    active = np.ones(U.shape[1], dtype=bool) if a != b else np.zeros(U.shape[1], dtype=bool)
    row_sq = np.maximum(np.sum(Xt ** 2, axis=1), 1e-300)
    lam_sq = np.sum(lam ** 2, axis=1)
    q = min(FLIP_CANDIDATES, n)
    steps = 0
    for _ in range(max_iter):
        idx = np.flatnonzero(active)
        if idx.size == 0 or (deadline is not None and time.perf_counter() > deadline):
            break
        Gs = U[:, idx]
        Z = Xt @ Gs
        mask = Z >= 0
        weights = activation.fit_weights(mask)
        inner = sum(lam[:, [k]] * (Xt @ (Xt.T @ (weights * lam[:, [k]]))) for k in range(lam.shape[1]))
        delta = np.where(mask, b - a, a - b)
        gains = 2 * delta * inner + delta ** 2 * (row_sq * lam_sq)[:, None]
        rows = np.argpartition(-gains, q - 1, axis=0)[:q]  # (q, s)
        z = np.take_along_axis(Z, rows, axis=0)
        target = -FLIP_OVERSHOOT * z - np.where(z >= 0, 1e-12, -1e-12) * np.sqrt(row_sq[rows])
        H = Gs[:, None, :] + np.moveaxis(Xt[rows], 2, 0) * ((target - z) / row_sq[rows])[None]  # (d, q, s)
        H /= np.maximum(np.linalg.norm(H, axis=0, keepdims=True), 1e-300)
        cand = gated_values(Xt, lam, H.reshape(d, -1), activation).reshape(q, -1)
        cand[np.take_along_axis(gains, rows, axis=0) <= 0] = -np.inf
        j = np.argmax(cand, axis=0)
        best = cand[j, np.arange(idx.size)]
        move = best > values[idx] * (1 + ASCENT_RTOL)
        U[:, idx[move]] = H[:, j[move], np.flatnonzero(move)]
        values[idx[move]] = best[move]
        local[idx[~move]] = True
        active[idx[~move]] = False
        steps += idx.size
    return U, values, local, steps


def search_gated_violations(Xt: np.ndarray, lam: np.ndarray, beta: float, starts: np.ndarray | None = None,
                            n_random: int = 1000, seed: int | None = 0, max_iter: int = 100,
                            activation: Activation = RELU, time_limit: float | None = None) -> SearchResult:
    """Search for arrangement patterns D = 1[X̃g ≥ 0] with ν(D) = ‖X̃ᵀW_DΛ‖_F > β (see the module docstring).

    Args:
        Xt: the design matrix X̃ (n × d, with the bias column if any).
        lam: the dual point Λ, (n,) or (n, c) (all its columns together: the "group" constraint).
        beta: the weight decay (classifies violations, :meth:`SearchResult.violating`).
        starts: (k, d) gates to start from (the list's gates, the current neurons), with ``n_random`` Gaussian
            ones (``seed``). max_iter: flip steps per path. time_limit: seconds; the paths still moving then
            stop where they are.

    The result holds each distinct pattern where a path ended: ``values`` and ``achieved`` are ν (exact),
    ``local_maxima`` is True where no flip tried improves, ``signs`` are +1 (ν is even in Λ) and ``directions``
    the unit u maximizing ‖ΛᵀW_DX̃u‖ (the top left singular vector of X̃ᵀW_DΛ). ``n_iter`` counts the flip
    steps over all paths, ``n_screened`` the patterns evaluated, ``n_projections`` is 0.
    """
    start_time = time.perf_counter()
    lam = np.asarray(lam, dtype=float)
    lam = lam[:, None] if lam.ndim == 1 else lam
    n, d = Xt.shape
    rng = np.random.default_rng(seed)
    G = np.vstack([_start_directions(starts, d), rng.standard_normal((int(n_random), d))]).T
    deadline = None if time_limit is None else start_time + time_limit
    width = max(1, CHUNK_ENTRIES // max(n, 1))  # starts ascended together: a few n × width arrays at a time
    parts = [flip_ascent(Xt, lam, G[:, lo:lo + width], activation, max_iter, deadline)
             for lo in range(0, max(G.shape[1], 1), width)]
    gates, values, local = (np.concatenate([part[k] for part in parts], axis=-1) for k in range(3))
    steps = sum(part[3] for part in parts)
    masks = Xt @ gates >= 0
    _, first = np.unique(np.packbits(masks, axis=0), axis=1, return_index=True)
    keep = first[np.argsort(-values[first])]
    return _result(Xt, lam, beta, Patterns(masks[:, keep], gates[:, keep], complete=False, method="search"),
                   values[keep], local[keep], activation, start_time, n_starts=G.shape[1], n_iter=steps,
                   n_screened=G.shape[1] + steps * min(FLIP_CANDIDATES, n))


def price_patterns(Xt: np.ndarray, lam: np.ndarray, beta: float, candidates: Patterns,
                   activation: Activation = RELU) -> SearchResult:
    """Exact pricing: ν of every pattern of ``candidates`` (all of them when the arrangement is enumerated), in one
    product. Every candidate counts as a local maximum, so each violated one may join the list."""
    start_time = time.perf_counter()
    lam = np.asarray(lam, dtype=float)
    lam = lam[:, None] if lam.ndim == 1 else lam
    values = gated_norms(Xt, activation.fit_weights(candidates.masks), lam)
    return _result(Xt, lam, beta, candidates, values, np.ones(values.size, dtype=bool), activation, start_time,
                   n_starts=0, n_iter=0, n_screened=values.size)


def _result(Xt: np.ndarray, lam: np.ndarray, beta: float, patterns: Patterns, values: np.ndarray,
            local_maxima: np.ndarray, activation: Activation, start_time: float, n_starts: int, n_iter: int,
            n_screened: int) -> SearchResult:
    """A :class:`SearchResult` of the gated program: ν exact (``achieved`` = ``values``), signs +1, no projection,
    and per pattern the unit u maximizing ‖ΛᵀW_DX̃u‖ (:func:`_unit_direction`)."""
    weights = activation.fit_weights(patterns.masks)
    directions = np.array([_unit_direction(Xt.T @ (weights[:, [i]] * lam))
                           for i in range(len(patterns))]).reshape(-1, Xt.shape[1])
    return SearchResult(
        patterns=patterns, values=values, signs=np.ones(values.size, dtype=int), directions=directions,
        achieved=values.copy(), local_maxima=local_maxima, beta=beta, n_starts=n_starts, n_iter=n_iter,
        n_projections=0, wall_time=time.perf_counter() - start_time, n_screened=n_screened)
