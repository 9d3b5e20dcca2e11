"""Figures: the dual constraint on the circle and objective-vs-iteration plots.

Each function returns a :class:`matplotlib.figure.Figure` and, given ``path``, also saves it.
Figures are built without pyplot (no global figure registry, no GUI backend: saving uses Agg),
so library calls never open windows or leak figures.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from .data import add_bias, as_matrix, as_targets
from .network import TwoLayerNet

DEFAULT_ANGLES = 1440


def circle_design(X: Any, bias: bool = False) -> np.ndarray:
    """The 2-D design X̃: X itself (n × 2, ``bias=False``) or [x, 1] (n × 1, ``bias=True``)."""
    Xt = add_bias(as_matrix(X)) if bias else as_matrix(X)
    if Xt.shape[1] != 2:
        raise ValueError(f"the circle plot needs a 2-D design X̃ (n × 2, or n × 1 with bias=True); got {Xt.shape}.")
    return Xt


def dual_constraint_curve(Xt: np.ndarray, lam: np.ndarray, thetas: np.ndarray) -> np.ndarray:
    """g(θ) = λᵀ(X̃u(θ))_+ with u(θ) = (cos θ, sin θ)."""
    U = np.stack([np.cos(thetas), np.sin(thetas)])  # 2 × T
    return lam @ np.maximum(Xt @ U, 0.0)


def neuron_angles(neurons: TwoLayerNet | np.ndarray) -> np.ndarray:
    """Angles in [0, 2π) of the nonzero neuron directions (rows of W1, or of a (m, 2) array)."""
    W = neurons.W1 if isinstance(neurons, TwoLayerNet) else as_matrix(neurons, "neurons")
    if W.shape[1] != 2:
        raise ValueError(f"neuron directions must be 2-D (m × 2), got {W.shape}.")
    W = W[np.linalg.norm(W, axis=1) > 0]
    return np.mod(np.arctan2(W[:, 1], W[:, 0]), 2 * np.pi)


def dual_constraint_circle(X: Any, lam: Any, beta: float, neurons: TwoLayerNet | np.ndarray | None = None,
                           bias: bool = False, n_angles: int = DEFAULT_ANGLES, path: str | os.PathLike | None = None
                           ) -> Figure:
    """Plot θ ↦ λᵀ(X̃u(θ))_+, u(θ) = (cos θ, sin θ), θ ∈ [0, 2π), with the lines ±β.

    The dual constraint |λᵀ(X̃u)_+| ≤ β holds for all θ at an optimal λ, and the optimal neurons'
    directions (vertical lines) sit where the curve touches ±β: the dual extreme points
    (Wang & Pilanci, THEORY §4). The first line of the axes is the curve (x: θ, y: g(θ)).
    """
    Xt = circle_design(X, bias)
    lam = as_targets(lam, Xt.shape[0], "lam")
    thetas = np.linspace(0.0, 2 * np.pi, int(n_angles), endpoint=False)
    fig = Figure(figsize=(7, 3.5))
    ax = fig.subplots()
    ax.plot(thetas, dual_constraint_curve(Xt, lam, thetas), color="C0", label=r"$\lambda^\top(\tilde X u(\theta))_+$")
    ax.axhline(beta, color="k", ls="--", lw=1, label=r"$\pm\beta$")
    ax.axhline(-beta, color="k", ls="--", lw=1)
    if neurons is not None:
        for k, angle in enumerate(neuron_angles(neurons)):
            ax.axvline(angle, color="C3", lw=0.8, alpha=0.7, label="neurons" if k == 0 else None)
    ax.set_xlim(0, 2 * np.pi)
    ax.set_xticks(np.linspace(0, 2 * np.pi, 5), ["0", r"$\pi/2$", r"$\pi$", r"$3\pi/2$", r"$2\pi$"])
    ax.set_xlabel(r"$\theta$")
    ax.set_title("dual constraint on the unit circle")
    ax.legend(loc="best", fontsize=8)
    fig.tight_layout()
    return _save(fig, path)


def _curve(history: Any) -> tuple[np.ndarray, np.ndarray]:
    """(steps, objectives) of an object with those attributes or of a (steps, objectives) pair."""
    if hasattr(history, "steps") and hasattr(history, "objectives"):
        return np.asarray(history.steps), np.asarray(history.objectives)
    steps, objectives = history
    return np.asarray(steps), np.asarray(objectives)


def objective_vs_iterations(histories: Mapping[str, Any] | Sequence[Any], certified_optimum: float,
                            lower_bound: float | None = None, envelope: Any = None, log_gap: bool = False,
                            path: str | os.PathLike | None = None) -> Figure:
    """Gradient-training objective vs iterations against the certified optimum.

    histories: a mapping label → history, or a sequence of histories; a history is anything with
        ``steps`` and ``objectives`` (TrainHistory, Trajectory) or a (steps, objectives) pair.
    certified_optimum: p* (e.g. ``fit(..., patterns="all").objective``), drawn horizontally.
    lower_bound: a certified lower bound, drawn dashed (linear scale only).
    envelope: a :class:`~cvxnn.trajectory.ConvexEnvelope` (q* on the patterns met so far), drawn as steps.
    log_gap: plot NC − p* on a log scale instead of NC (the optimum line is then omitted; values
        ≤ 0 are not drawn).
    """
    items = list(histories.items()) if isinstance(histories, Mapping) else [
        (f"run {k}", h) for k, h in enumerate(histories)]
    shift = certified_optimum if log_gap else 0.0
    fig = Figure(figsize=(6, 4))
    ax = fig.subplots()
    for label, history in items:
        steps, objectives = _curve(history)
        ax.plot(steps, _positive(objectives - shift, log_gap), label=label)
    if envelope is not None:
        ax.step(envelope.steps, _positive(envelope.convex_objectives - shift, log_gap), where="post", color="C7",
                label="q* on patterns met so far")
    if log_gap:
        ax.set_yscale("log")
        ax.set_ylabel("NC − certified optimum")
    else:
        ax.axhline(certified_optimum, color="k", lw=1.2, label="certified optimum")
        if lower_bound is not None:
            ax.axhline(lower_bound, color="k", ls="--", lw=1, label="certified lower bound")
        ax.set_ylabel("NC objective")
    ax.set_xlabel("iteration")
    ax.legend(loc="best", fontsize=8)
    fig.tight_layout()
    return _save(fig, path)


def _positive(values: np.ndarray, log_gap: bool) -> np.ndarray:
    """Values ≤ 0 become NaN (not drawn) on a log scale."""
    values = np.asarray(values, dtype=float)
    return np.where(values > 0, values, np.nan) if log_gap else values


def _save(fig: Figure, path: str | os.PathLike | None) -> Figure:
    if path is not None:
        fig.savefig(path, dpi=150)
    return fig
