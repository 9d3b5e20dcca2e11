"""Activation patterns D(h) = diag(1[Xh ≥ 0]) (THEORY §3).

* :func:`sample_patterns` draws Gaussian gate vectors h ~ N(0, I) and removes duplicates.
* :func:`enumerate_patterns` lists **all** patterns of data of small rank exactly, from the
  extreme rays of the hyperplane arrangement {x_k^T h = 0} (see :func:`_arrangement_cells`).
* :func:`network_patterns` gives the patterns of a network's neurons.
* :func:`drop_complements` keeps one pattern of each pair (D, I − D), enough for an even
  activation such as abs (THEORY §1.6).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from math import comb

import numpy as np

from .data import as_matrix, check_memory

TIE_RULES = (">=", ">")


@dataclass(frozen=True)
class Patterns:
    """A list of P activation patterns of n samples.

    Attributes:
        masks: (n, P) boolean; column i is the diagonal of D_i.
        gates: (d, P) gate vectors h_i with D_i = D(h_i), or None when unknown.
        complete: True when the list is known to contain every pattern of X
            (what a global certificate needs, THEORY §2.4).
        method: how the list was made ("sampled", "enumerated", "network", "given").
    """

    masks: np.ndarray
    gates: np.ndarray | None = None
    complete: bool = False
    method: str = "given"
    info: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.masks.ndim != 2 or self.masks.dtype != bool:
            raise ValueError("Patterns.masks must be an (n, P) boolean array.")
        if self.gates is not None and self.gates.shape[1] != self.masks.shape[1]:
            raise ValueError("Patterns.gates must have one column per pattern.")

    def __len__(self) -> int:
        return self.masks.shape[1]

    @property
    def n_samples(self) -> int:
        return self.masks.shape[0]

    def merge(self, other: "Patterns") -> "Patterns":
        """The union of two pattern lists (duplicates removed, first occurrence kept)."""
        masks = np.hstack([self.masks, other.masks])
        gates = None
        if self.gates is not None and other.gates is not None:
            gates = np.hstack([self.gates, other.gates])
        keep = _unique_columns(masks)
        return Patterns(
            masks[:, keep],
            None if gates is None else gates[:, keep],
            complete=self.complete or other.complete,
            method=f"{self.method}+{other.method}",
        )


def _unique_columns(masks: np.ndarray) -> np.ndarray:
    """Indices of the first occurrence of each distinct column, in original order."""
    if masks.shape[1] == 0:
        return np.arange(0)
    packed = np.packbits(masks, axis=0)
    _, first = np.unique(packed, axis=1, return_index=True)
    return np.sort(first)


def _masks_from_gates(X: np.ndarray, gates: np.ndarray, tie: str) -> np.ndarray:
    if tie not in TIE_RULES:
        raise ValueError(f"tie must be one of {TIE_RULES}, got {tie!r}.")
    Z = X @ gates
    return Z >= 0 if tie == ">=" else Z > 0


def sample_patterns(
    X, n_patterns: int, seed: int | np.random.Generator | None = 0, tie: str = ">=", drop_zero: bool = True
) -> Patterns:
    """Sample patterns D(h) from Gaussian gates h ~ N(0, I_d), duplicates removed.

    Cells of the arrangement are hit with probability equal to their solid angle, so small
    cells may be missed; the result is never marked complete.
    """
    X = as_matrix(X)
    if not isinstance(n_patterns, (int, np.integer)) or n_patterns < 1:
        raise ValueError(f"n_patterns must be a positive integer, got {n_patterns!r}.")
    n, d = X.shape
    check_memory(
        n * n_patterns * 9.0 + d * n_patterns * 8.0,
        f"sampling {n_patterns} patterns of {n} samples (n x P masks and products)",
        "ask for fewer patterns.",
    )
    rng = np.random.default_rng(seed)
    gates = rng.standard_normal((d, int(n_patterns)))
    masks = _masks_from_gates(X, gates, tie)
    keep = _unique_columns(masks)
    if drop_zero:
        keep = keep[masks[:, keep].any(axis=0)]
    return Patterns(masks[:, keep], gates[:, keep], complete=False, method="sampled",
                    info={"requested": int(n_patterns), "tie": tie})


def count_patterns_bound(n: int, rank: int) -> int:
    """Exact count 2 Σ_{k<r} C(n-1, k) for rows in general position; an upper bound otherwise."""
    if n <= 0 or rank <= 0:
        return 1
    return 2 * sum(comb(n - 1, k) for k in range(min(rank, n)))


def data_rank(X: np.ndarray, rtol: float = 1e-10) -> int:
    s = np.linalg.svd(X, compute_uv=False)
    return int(np.sum(s > rtol * max(s[0], 1e-300))) if s.size else 0


def enumerable(X: np.ndarray, max_patterns: int) -> bool:
    """True when enumerating every pattern of X is predicted (:func:`count_patterns_bound` at its rank) to give
    at most ``max_patterns``."""
    return count_patterns_bound(X.shape[0], data_rank(X)) <= max_patterns


def enumerate_patterns(X, max_patterns: int = 100_000, tie: str = ">=") -> Patterns:
    """All activation patterns 1[Xh ≥ 0] of full-dimensional cells, computed exactly.

    The count is predicted first (2 Σ_{k<r} C(n-1, k), exact in general position and an
    upper bound otherwise); when it exceeds ``max_patterns`` a ValueError names it.
    Patterns of lower-dimensional cells are not listed: every u lies in the closure of
    a full-dimensional cell whose pattern gives the same (Xu)_+ (THEORY §3.3).
    The returned gates are interior points of their cells.
    """
    X = as_matrix(X)
    n, d = X.shape
    row_norms = np.linalg.norm(X, axis=1)
    nonzero = row_norms > 1e-12 * max(row_norms.max(), 1e-300)
    U, s, Vt = np.linalg.svd(X, full_matrices=False)
    r = int(np.sum(s > 1e-10 * max(s[0], 1e-300)))
    predicted = count_patterns_bound(int(nonzero.sum()), r)
    if predicted > max_patterns:
        raise ValueError(
            f"enumerating all patterns of {n} samples of rank {r} may give up to {predicted:,} patterns, "
            f"more than max_patterns={max_patterns:,}; raise max_patterns, reduce the rank, "
            "or use sample_patterns instead."
        )
    n_subsets = comb(int(nonzero.sum()), r - 1) if r >= 1 else 0
    check_memory(n_subsets * 2.0 * n * 8 / 64, f"enumerating patterns through {n_subsets:,} vertex subsets",
                 "reduce the number of samples or the rank.")
    basis = Vt[:r].T  # d x r, orthonormal basis of the row space
    V = X @ basis  # n x r coordinates, rank r
    if r == 0:
        gates = np.zeros((d, 1))
        gates[0, 0] = 1.0
    else:
        cells = _arrangement_cells(V)
        gates = basis @ cells.T
    masks = _masks_from_gates(X, gates, tie)
    keep = _unique_columns(masks)
    return Patterns(masks[:, keep], gates[:, keep], complete=True, method="enumerated",
                    info={"rank": r, "predicted_max": predicted, "tie": tie})


def _arrangement_cells(V: np.ndarray, tol: float = 1e-9) -> np.ndarray:
    """Interior points of every full-dimensional cell of the central arrangement {v_k^T h = 0}.

    V is n x r of rank r. Each cell is a pointed polyhedral cone, so it has an extreme ray;
    a ray lies on r-1 independent hyperplanes. For each independent (r-1)-subset of rows,
    the ray h = ±null(V_S); the cells around h are, near h, the cells of the arrangement of
    the rows Z vanishing on h, restricted to h^⊥ (all 2^{r-1} orthants in general position,
    a recursive call otherwise). A cell of that local arrangement with interior direction g
    gives the interior point h + ε g, with ε small enough to keep the signs off Z.
    Returns an array (P, r) of points, possibly with repeats.
    """
    n, r = V.shape
    if r == 1:
        return np.array([[1.0], [-1.0]])
    norms = np.linalg.norm(V, axis=1)
    scale = norms.max()
    rows = np.flatnonzero(norms > 1e-12 * scale)
    Vn = V / np.where(norms > 0, norms, 1.0)[:, None]
    out: list[np.ndarray] = []
    seen: set[tuple] = set()
    sign_cube = np.array(list(itertools.product((1.0, -1.0), repeat=r - 1)))  # 2^{r-1} x (r-1)
    for S in itertools.combinations(rows, r - 1):
        A = Vn[list(S)]
        _, sv, Wt = np.linalg.svd(A, full_matrices=True)
        if sv[-1] < 1e-8 * sv[0]:
            continue  # dependent rows: not a ray
        h0 = Wt[-1]
        z0 = Vn @ h0
        Z = tuple(int(k) for k in rows if abs(z0[k]) <= tol)
        for sgn in (1.0, -1.0):
            key = (sgn, Z)
            if key in seen:
                continue
            seen.add(key)
            h = sgn * h0
            z = sgn * z0
            if len(Z) == r - 1:
                G = np.linalg.pinv(Vn[list(Z)]) @ sign_cube.T  # r x 2^{r-1}, V_Z g = s
            else:
                Q = Wt[:-1].T  # r x (r-1) basis of h^⊥
                local = _arrangement_cells(Vn[list(Z)] @ Q, tol)
                G = Q @ local.T
            off = np.setdiff1d(rows, Z)
            if off.size:
                margin = np.abs(z[off]).min()
                spread = np.abs(Vn[off] @ G).max(axis=0)
                eps = 0.5 * margin / np.maximum(spread, 1e-300)
            else:
                eps = np.ones(G.shape[1])
            eps = np.minimum(eps, 1.0)
            out.append((h[:, None] + G * eps[None, :]).T)
    return np.vstack(out)


def drop_complements(patterns: Patterns) -> Patterns:
    """Keep the first pattern of each complementary pair (D, I − D).

    For an even activation (σ(−t) = σ(t), e.g. abs) u ∈ K(D) iff −u ∈ K(I − D) and σ(Xu) = σ(X(−u)),
    so the pattern I − D adds no neuron and no dual constraint that D does not give: a complete
    list stays complete *for even activations only* (``info["complements_dropped"]`` records it).
    In general position the enumerated list is closed under complements, so this halves it.
    """
    masks = patterns.masks
    seen: set[bytes] = set()
    keep = []
    for i in range(masks.shape[1]):
        key = np.packbits(masks[:, i]).tobytes()
        if key in seen:
            continue
        keep.append(i)
        seen.add(key)
        seen.add(np.packbits(~masks[:, i]).tobytes())
    keep_idx = np.array(keep, dtype=int)
    return Patterns(masks[:, keep_idx], None if patterns.gates is None else patterns.gates[:, keep_idx],
                    complete=patterns.complete, method=patterns.method,
                    info={**patterns.info, "complements_dropped": True})


def network_patterns(W1, X, tie: str = ">=") -> Patterns:
    """Patterns D(u_j) of the neurons u_j (rows of W1), duplicates removed."""
    X = as_matrix(X)
    if np.size(W1) == 0:  # no neurons: no patterns
        return Patterns(np.zeros((X.shape[0], 0), dtype=bool), np.zeros((X.shape[1], 0)), method="network",
                        info={"tie": tie})
    W1 = as_matrix(W1, "W1")
    if W1.shape[1] != X.shape[1]:
        raise ValueError(f"W1 has {W1.shape[1]} input weights per neuron but X has {X.shape[1]} features.")
    gates = W1.T
    masks = _masks_from_gates(X, gates, tie)
    keep = _unique_columns(masks)
    return Patterns(masks[:, keep], gates[:, keep], complete=False, method="network", info={"tie": tie})
