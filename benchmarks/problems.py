"""The benchmark problems shared by the scripts in this folder (run them from the repository root:
``python benchmarks/NAME.py`` puts this folder on the import path)."""

from __future__ import annotations

import time
from contextlib import ExitStack
from typing import Any
from unittest import mock

import numpy as np
import torch

from cvxnn.data import load_bundled
from cvxnn.losses import loss_from
from cvxnn.operators import PatternOperator
from cvxnn.solvers import interior_point


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


def timed_relu_ipm(X: np.ndarray, y: np.ndarray, pats: Any, beta: float, tol: float, loss: str = "squared",
                   **replaced: Any) -> tuple[float, Any]:
    """(seconds, SolverOutput) of the ReLU ipm on the patterns ``pats`` (gates as interior directions), with the
    attributes ``replaced`` of :mod:`cvxnn.solvers.interior_point` swapped for the call (e.g. ``polish`` or
    ``_sample_side``, to compare the solver with and without one of its parts)."""
    with ExitStack() as stack:
        for name, value in replaced.items():
            stack.enter_context(mock.patch.object(interior_point, name, value))
        op = PatternOperator(X, pats.masks)
        start = time.perf_counter()
        out = interior_point.solve_relu_interior(op, torch.as_tensor(y), beta, tol=tol, loss=loss_from(loss),
                                                 interior=torch.as_tensor(pats.gates.T))
        return time.perf_counter() - start, out


def relative_gap(out: Any) -> float:
    """The certified relative gap (objective − lower bound)/|objective| of an ipm's SolverOutput."""
    return (out.info["objective"] - out.info["lower_bound"]) / abs(out.info["objective"])
