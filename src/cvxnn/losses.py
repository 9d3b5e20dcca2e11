"""Losses L(ŷ) = Σ_k ℓ(ŷ_k, y_k) with what duality needs (THEORY §2.1).

The dual of min L(ŷ) + β Σ‖·‖ over the convex program is max_λ −L*(−λ) subject to the
dual constraint; the natural dual point is λ = −∇L(ŷ), then scaled into feasibility.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class SquaredLoss:
    """L(ŷ) = ½‖ŷ − y‖²; dual value d(λ) = λᵀy − ½‖λ‖² (from L*(s) = ½‖s‖² + sᵀy)."""

    name: str = "squared"

    def value(self, pred: np.ndarray, y: np.ndarray) -> float:
        r = pred - y
        return 0.5 * float(r @ r)

    def dual_direction(self, pred: np.ndarray, y: np.ndarray) -> np.ndarray:
        """λ = −∇L(ŷ) = y − ŷ."""
        return y - pred

    def dual_value(self, lam: np.ndarray, y: np.ndarray) -> float:
        return float(lam @ y) - 0.5 * float(lam @ lam)

    def best_scale(self, lam: np.ndarray, y: np.ndarray, t_max: float) -> float:
        """argmax over t ∈ [0, t_max] of d(tλ) = t λᵀy − t²‖λ‖²/2."""
        nrm2 = float(lam @ lam)
        if nrm2 == 0.0:
            return 0.0
        return float(np.clip(float(lam @ y) / nrm2, 0.0, t_max))


SQUARED = SquaredLoss()
