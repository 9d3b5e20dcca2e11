"""The benchmark problems shared by the scripts in this folder (run them from the repository root:
``python benchmarks/NAME.py`` puts this folder on the import path)."""

from __future__ import annotations

import numpy as np

from cvxnn.data import load_bundled


def planted_problem(n: int, d: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """y = Σ_j a_j (x·t_j)_+ + 0.1·noise from a 5-neuron teacher, x ~ N(0, I_d); no bias column."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    teacher = rng.standard_normal((5, d))
    y = np.maximum(X @ teacher.T, 0) @ rng.standard_normal(5) + 0.1 * rng.standard_normal(n)
    return X, y


def standardized_with_bias(X: np.ndarray) -> np.ndarray:
    """Columns centred and scaled (constant columns kept at scale 1), then a ones column."""
    scale = X.std(0)
    Z = (X - X.mean(0)) / np.where(scale > 0, scale, 1.0)
    return np.c_[Z, np.ones(len(Z))]


def breast_cancer() -> tuple[np.ndarray, np.ndarray]:
    """Breast cancer (n = 569, 30 features): standardized with a bias column, ±1 targets."""
    ds = load_bundled("breast_cancer")
    return standardized_with_bias(ds.X), 2.0 * ds.y - 1


def digits_binary() -> tuple[np.ndarray, np.ndarray]:
    """Digits (n = 1797, 64 pixels): standardized with a bias column, ±1 for digit < 5 against ≥ 5."""
    ds = load_bundled("digits")
    return standardized_with_bias(ds.X), np.where(ds.y < 5, 1.0, -1.0)
