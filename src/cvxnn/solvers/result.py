"""What every solver returns."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np


RESOLUTION = 64 * 2.0 ** -52  # relative changes of an objective this small are round-off


class NumericalBreakdown(ArithmeticError):
    """A step the arithmetic cannot resolve: a Newton matrix that no shift makes positive definite, or a line search
    that finds no finite step (the loss is NaN or inf). The solvers stop with status "stalled" and their best point."""


@dataclass
class SolverOutput:
    """Primal blocks (P, d): ``v`` and ``w`` for the ReLU program; for the gated program u is in
    ``v`` and ``w`` is zero; for vector outputs the blocks are (P, d, c). ``history`` holds
    (seconds, objective, best lower bound) triples. ``dual``: an optimal dual point of the loss
    (±λ, sign unknown) when the solver reports one, else None. ``info`` holds solver-specific
    diagnostics (e.g. how many pattern groups were screened)."""

    v: np.ndarray
    w: np.ndarray
    status: str
    n_iter: int
    time: float
    history: list[tuple[float, float, float]] = field(default_factory=list)
    dual: np.ndarray | None = None
    info: dict[str, Any] = field(default_factory=dict)


def budget_status(iterations: int, max_iter: int, start: float, time_limit: float | None) -> str | None:
    """"max_iter" once ``iterations`` ≥ ``max_iter``, "time_limit" once more than ``time_limit`` seconds have passed
    since ``start`` (a :func:`time.perf_counter` reading), else None: an iterative solver's stopping status."""
    if iterations >= max_iter:
        return "max_iter"
    if time_limit is not None and time.perf_counter() - start > time_limit:
        return "time_limit"
    return None
