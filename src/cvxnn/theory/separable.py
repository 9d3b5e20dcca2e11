"""Orthogonally separable data (THEORY.md §4, §8.1).

Definition (Phuong & Lampert): labels y_k ∈ {±1} and

    x_kᵀx_k' > 0  if y_k = y_k',        x_kᵀx_k' ≤ 0  if y_k ≠ y_k'        (all pairs, k = k' included).

Two generators, each returning (X, y) with the positives first:

* :func:`block_support` — positives U(low, high) on coordinates 1–3, negatives on 4–6, zeros elsewhere
  (cross products exactly 0). ``block_support(5, 4, seed=3)`` is the §8.2b data set.
* :func:`double_cone` — class ±1 within an angle < 45° of ±e_1 (cross products < 0).
"""

from __future__ import annotations

import numpy as np

from ..data import as_matrix

SeedLike = int | np.random.Generator

BLOCK = 3  # coordinates per class in the block-support data


def _labels(n_pos: int, n_neg: int) -> np.ndarray:
    if n_pos < 1 or n_neg < 1:
        raise ValueError(f"need at least one point per class, got n_pos={n_pos}, n_neg={n_neg}.")
    return np.r_[np.ones(n_pos), -np.ones(n_neg)]


def block_support(n_pos: int = 5, n_neg: int = 4, d: int = 6, low: float = 0.2, high: float = 1.0,
                  seed: SeedLike = 0) -> tuple[np.ndarray, np.ndarray]:
    """Positives U(low, high) on coordinates 1–3, negatives on 4–6, zeros elsewhere (d ≥ 6, 0 < low < high).

    Draw order: the (n_pos, 3) positive block, then the (n_neg, 3) negative block, from ``default_rng(seed)``.
    """
    y = _labels(n_pos, n_neg)
    if d < 2 * BLOCK:
        raise ValueError(f"block-support data needs d ≥ {2 * BLOCK}, got d={d}.")
    if not 0 < low < high:
        raise ValueError(f"need 0 < low < high, got low={low}, high={high}.")
    rng = np.random.default_rng(seed)
    X = np.zeros((n_pos + n_neg, d))
    X[:n_pos, :BLOCK] = rng.uniform(low, high, (n_pos, BLOCK))
    X[n_pos:, BLOCK:2 * BLOCK] = rng.uniform(low, high, (n_neg, BLOCK))
    return X, y


def double_cone(n_pos: int = 5, n_neg: int = 4, d: int = 6, max_angle_deg: float = 40.0,
                radius: tuple[float, float] = (0.5, 1.5), seed: SeedLike = 0) -> tuple[np.ndarray, np.ndarray]:
    """x_k = y_k ρ_k (cos θ_k e_1 + sin θ_k s_k), θ_k ~ U(0, max_angle), s_k uniform on the unit sphere of e_1^⊥,
    ρ_k ~ U(radius). Two points of one class are < 2·max_angle < 90° apart (product > 0), and a point is
    > 180° − 2·max_angle > 90° from the other class (product < 0). Needs d ≥ 2 and 0 < max_angle < 45.

    Draw order from ``default_rng(seed)``: θ (n), then the Gaussian for s (n, d − 1), then ρ (n).
    """
    y = _labels(n_pos, n_neg)
    if d < 2:
        raise ValueError(f"double-cone data needs d ≥ 2, got d={d}.")
    if not 0 < max_angle_deg < 45:
        raise ValueError(f"max_angle_deg must lie in (0, 45), got {max_angle_deg}.")
    if not 0 < radius[0] <= radius[1]:
        raise ValueError(f"need 0 < radius[0] ≤ radius[1], got {radius}.")
    n = y.size
    rng = np.random.default_rng(seed)
    theta = rng.uniform(0.0, np.deg2rad(max_angle_deg), n)
    s = rng.standard_normal((n, d - 1))
    s /= np.linalg.norm(s, axis=1, keepdims=True)
    rho = rng.uniform(radius[0], radius[1], n)
    X = np.hstack([np.cos(theta)[:, None], np.sin(theta)[:, None] * s])
    return (y * rho)[:, None] * X, y


def as_signs(y, n: int) -> np.ndarray:
    """``y`` as a float vector of n labels, each ±1 (ValueError otherwise)."""
    y = np.asarray(y, dtype=np.float64).reshape(-1)
    if y.size != n:
        raise ValueError(f"y has {y.size} labels but X has {n} rows.")
    if not np.all(np.abs(y) == 1):
        raise ValueError("labels must be ±1.")
    return y


def is_orthogonally_separable(X, y, return_pair: bool = False):
    """Whether x_kᵀx_k' > 0 for every same-label pair and ≤ 0 for every opposite-label pair.

    With ``return_pair`` returns (bool, pair), where pair = (k, k') is the worst violating pair —
    largest −x_kᵀx_k' among same-label violations and largest x_kᵀx_k' among opposite-label ones,
    compared on one scale — or None when there is no violation.
    """
    Xm = as_matrix(X)
    yv = as_signs(y, Xm.shape[0])
    G = Xm @ Xm.T
    same = np.equal.outer(yv, yv)
    score = np.where(same, -G, G)  # violation amount: same label needs −G < 0, opposite needs G ≤ 0
    violated = np.where(same, score >= 0, score > 0)
    ok = not violated.any()
    if not return_pair:
        return ok
    if ok:
        return True, None
    k, kp = np.unravel_index(np.argmax(np.where(violated, score, -np.inf)), G.shape)
    return False, (int(k), int(kp))
