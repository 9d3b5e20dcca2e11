"""Small planted problems shared by the pattern-search tests (pytest puts this folder on the import path)."""

import numpy as np


def planted_two_neuron(seed: int, n: int = 15, d: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """Gaussian X (no bias) and targets from a planted two-neuron net plus noise."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    y = np.maximum(X @ rng.standard_normal(d), 0) - np.maximum(X @ rng.standard_normal(d), 0)
    return X, y + 0.1 * rng.standard_normal(n)
