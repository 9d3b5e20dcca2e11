"""Smooth approximations of the hinge loss (and of the group norm) for the fast solvers, and why they still
certify the hinge.

With the margin violations m = 1 − y ∘ z (labels y_k ∈ {−1, +1}) the hinge loss is L(z) = Σ_k (m_k)_+.
Both smoothings below replace (m)_+ by a smooth convex ψ_μ(m) with slope a = ψ_μ'(m) ∈ [0, 1], so

    L_μ(z) = Σ_k ψ_μ(m_k),   ∇L_μ(z) = −y ∘ a,   ∇²L_μ(z) = diag(ψ_μ''(m)),

and the dual direction λ = −∇L_μ(z) = y ∘ a has λ_k y_k = a_k ∈ [0, 1]: it lies in the domain of the
hinge conjugate, where the hinge dual is d(λ) = Σ_k λ_k y_k (:class:`~cvxnn.losses.HingeLoss`). Scaled
into the dual constraints (and t ≤ 1/max_k a_k), tλ gives a lower bound on the **true** hinge program,
while the true hinge objective of the iterate is the upper bound; no error of the smoothing enters
the certificate.

**Nesterov** (:class:`NesterovHinge`, for FISTA): ψ_μ(m) = max_{a ∈ [0, 1]} am − (μ/2)a², i.e.

    ψ_μ(m) = 0 (m ≤ 0),   m²/(2μ) (0 < m < μ),   m − μ/2 (m ≥ μ);   a = clip(m/μ, 0, 1);
    ψ_μ'' = 1/μ on (0, μ), 0 elsewhere (∇L_μ is (1/μ)-Lipschitz);   0 ≤ (m)_+ − ψ_μ(m) ≤ μ/2.

Its conjugate is the hinge conjugate plus (μ/2)‖·‖², so the smoothed dual is d_μ(θ) = d(θ) − (μ/2)‖θ‖²:
strongly concave with modulus μ, while the hinge dual d itself is linear (not strongly concave).

**Barrier** (:class:`BarrierHinge`, for the gated program's barrier path in newton.py, and the start of the
interior-point method's hinge slacks): (m)_+ = min{s : s ≥ 0, s ≥ m}; with log barriers on both constraints
and s minimized in closed form,

    ψ_μ(m) = min_{s > max(0, m)} s − μ log s − μ log(s − m).

Stationarity 1 = μ/s + μ/(s − m) is the quadratic s² − (m + 2μ)s + μm = 0, whose root above max(0, m) is
s = (m + 2μ + r)/2 with r = √(m² + 4μ²); then s(s − m) = μ(r + 2μ), and

    ψ_μ(m)   = (m + r)/2 + μ − μ log(μ(r + 2μ)),
    ψ_μ'(m)  = a = μ/(s − m) = 1 − μ/s = (r + m)/(r + m + 2μ)  ∈ (0, 1),
    ψ_μ''(m) = a(1 − a)/r  ≤  1/(8μ)  (largest at m = 0, where a = 1/2, r = 2μ).

As μ → 0, ψ_μ(m) → (m)_+ and a → 1[m > 0]. Numerically, with q = r + |m| (no cancellation),
r + m = q and r − m = 4μ²/q for m ≥ 0 (swapped for m < 0), so a = q/(q + 2μ), 1 − a = 2μ/(q + 2μ) for
m ≥ 0 and the two swap for m < 0.

:class:`BarrierNorm` is the same construction for β‖u‖ (the cone barrier of ‖u‖ ≤ t, t eliminated), shared by
the interior-point method and the barrier path.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch


@dataclass
class HingeSmoothing:
    """A smooth ψ_μ ≈ (·)_+ acting entrywise on margin violations m = 1 − y ∘ z (module docstring).

    ``mu`` is changed in place by the solvers (continuation in FISTA, the barrier parameter in the IPM).
    """

    mu: float

    def __post_init__(self) -> None:
        if not (math.isfinite(self.mu) and self.mu > 0):
            raise ValueError(f"the hinge smoothing parameter mu must be positive and finite, got {self.mu!r}.")

    def value(self, m: torch.Tensor) -> torch.Tensor:
        """ψ_μ(m) entrywise."""
        raise NotImplementedError

    def slope(self, m: torch.Tensor) -> torch.Tensor:
        """a = ψ_μ'(m) ∈ [0, 1] entrywise."""
        raise NotImplementedError

    def curvature(self, m: torch.Tensor) -> torch.Tensor:
        """ψ_μ''(m) entrywise."""
        raise NotImplementedError

    @property
    def max_curvature(self) -> float:
        """sup_m ψ_μ''(m): the Lipschitz constant of ∇L_μ (labels ±1)."""
        raise NotImplementedError


class NesterovHinge(HingeSmoothing):
    """ψ_μ(m) = max_{a ∈ [0, 1]} am − (μ/2)a²: a Huber-like function, slope clip(m/μ, 0, 1)."""

    def value(self, m: torch.Tensor) -> torch.Tensor:
        a = self.slope(m)
        return a * m - 0.5 * self.mu * a * a

    def slope(self, m: torch.Tensor) -> torch.Tensor:
        return torch.clamp(m / self.mu, 0.0, 1.0)

    def curvature(self, m: torch.Tensor) -> torch.Tensor:
        return ((m > 0) & (m < self.mu)).to(m.dtype) / self.mu

    @property
    def max_curvature(self) -> float:
        return 1.0 / self.mu

    def best_dual_on_ray(self, p: torch.Tensor, upper: float) -> float:
        """max over t ∈ [0, upper] of the smoothed dual d_μ(tλ) = tΣ_k p_k − (μ/2)t²Σ_k p_k² at p = λ ∘ y:
        attained at t = clip(Σp/(μΣp²), 0, upper)."""
        s1, s2 = float(p.sum()), float((p * p).sum())
        if s2 == 0.0:
            return 0.0
        t = min(max(s1 / (self.mu * s2), 0.0), upper)
        return t * s1 - 0.5 * self.mu * t * t * s2


class BarrierHinge(HingeSmoothing):
    """ψ_μ(m) = min_s s − μ log s − μ log(s − m): the log-barrier smoothing of (m)_+ = min{s ≥ 0, s ≥ m}."""

    def _parts(self, m: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(r, a, 1 − a) with r = √(m² + 4μ²), computed without cancellation (module docstring)."""
        two_mu = 2.0 * self.mu
        r = torch.hypot(m, torch.full_like(m, two_mu))
        q = r + m.abs()
        up = m >= 0
        a = torch.where(up, q, two_mu) / (q + two_mu)
        return r, a, torch.where(up, two_mu, q) / (q + two_mu)

    def _r_plus_m(self, m: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(r, r + m) without cancellation."""
        r = torch.hypot(m, torch.full_like(m, 2.0 * self.mu))
        q = r + m.abs()
        return r, torch.where(m >= 0, q, 4.0 * self.mu * self.mu / q)

    def value(self, m: torch.Tensor) -> torch.Tensor:
        r, r_plus_m = self._r_plus_m(m)
        return 0.5 * r_plus_m + self.mu - self.mu * torch.log(self.mu * (r + 2.0 * self.mu))

    def slack(self, m: torch.Tensor) -> torch.Tensor:
        """The minimizing s = (m + r)/2 + μ > max(0, m)."""
        return 0.5 * self._r_plus_m(m)[1] + self.mu

    def slope(self, m: torch.Tensor) -> torch.Tensor:
        return self._parts(m)[1]

    def curvature(self, m: torch.Tensor) -> torch.Tensor:
        r, a, b = self._parts(m)
        return a * b / r

    @property
    def max_curvature(self) -> float:
        return 1.0 / (8.0 * self.mu)


@dataclass
class BarrierNorm:
    """The cone barrier's smoothing of β‖u‖ (r = ‖u‖): writing ‖u‖ ≤ t with the barrier −μ log(t² − r²),

        φ_μ(r) = min_t βt − μ log(t² − r²) = βt_μ − μ log(2μt_μ/β),   t_μ = (μ + √(μ² + β²r²))/β,
        ∇φ_μ(u) = βu/t_μ,   ∇²φ_μ(u) = (β/t_μ)(I − ûûᵀ) + (β/t_μ − β²r²/(t_μ²√(μ² + β²r²))) ûûᵀ,

    smooth at u = 0, and φ_μ → β‖u‖ as μ → 0: |φ_μ(r) − βr| ≤ μ(2 + |log(2μt_μ/β)|), since β(t_μ − r) ∈ [0, 2μ].
    """

    beta: float
    mu: float

    def _t(self, r: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(t_μ(r), √(μ² + β²r²))."""
        root = torch.sqrt(self.mu * self.mu + (self.beta * r) ** 2)
        return (self.mu + root) / self.beta, root

    def value(self, r: torch.Tensor) -> torch.Tensor:
        """φ_μ(r) entrywise."""
        t = self._t(r)[0]
        return self.beta * t - self.mu * torch.log(2.0 * self.mu * t / self.beta)

    def coefficients(self, r: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(β/t_μ, φ_μ''): the coefficients of I − ûûᵀ and ûûᵀ in ∇²φ_μ; ∇φ_μ(u) = (β/t_μ) u."""
        t, root = self._t(r)
        tangential = self.beta / t
        return tangential, tangential - (self.beta * r) ** 2 / (t * t * root)
