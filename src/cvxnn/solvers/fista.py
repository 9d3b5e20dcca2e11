"""Accelerated proximal gradient for the gated program (a group lasso), with gap-safe screening
and working sets:

    min_U  F(U) = L(A(U)) + β Σ_i ‖u_i‖₂,      A(U) = Σ_i W_i X u_i,

for the squared loss L(z) = ½‖z − y‖² (the default), the logistic loss
L(z) = Σ_k log(1 + exp(−y_k z_k)), y_k ∈ {−1, +1}, the softmax cross-entropy
L(Z) = Σ_k [logsumexp(z_k) − z_kᵀy_k] (one-hot rows y_k; see :class:`SmoothLoss`), and the hinge
L(z) = Σ_k (1 − y_k z_k)_+ through its smoothing (below).

**Vector outputs** (targets Y of shape (n, c)): blocks U_i ∈ R^{d×c}, A(U) = Σ_i W_i X U_i ∈ R^{n×c},
and the groups of the penalty (:class:`GroupNorm`) are the columns U_i[:, k] (``"per_output"``,
β Σ_{i,k} ‖U_i[:, k]‖) or the blocks U_i (``"group"``, β Σ_i ‖U_i‖_F). Everything below holds with
λ, θ ∈ R^{n×c}, the dual constraints ‖(W_iX)ᵀθ_k‖ ≤ β for every (i, k) or ‖(W_iX)ᵀθ‖_F ≤ β for
every i, and prox steps that soft-threshold columns or whole blocks. Screening and working sets act
on patterns: the constraint value of pattern i is the largest over its groups (max_k ‖(W_iX)ᵀθ_k‖,
or ‖(W_iX)ᵀθ‖_F), and ‖(W_iX)ᵀ(θ − θ*)‖ ≤ ‖W_iX‖₂‖θ − θ*‖_F bounds each column and the block alike,
so the test below removes pattern i when all of its groups are proved zero.

**FISTA** with backtracking line search on the smooth part U ↦ L(A(U)) (gradient Aᵀ∇L(A(U)),
Lipschitz constant at most κ‖A‖₂² with κ the loss's ``curvature``) and gradient-based adaptive
restart (O'Donoghue & Candès). The prox of the group norm is block soft-thresholding
u_i ← max(0, 1 − tβ/‖u_i‖) u_i.

**Certificate.** The dual is max_θ d(θ) = −L*(−θ) s.t. ‖(W_iX)ᵀθ‖ ≤ β for every group i
(squared: d(θ) = θᵀy − ½‖θ‖²; logistic: d(θ) = Σ_k H(θ_k y_k), H the binary entropy, finite iff
every θ_k y_k ∈ [0, 1]; cross-entropy: d(Θ) = −Σ Q log Q with Q = Y − Θ, finite iff every row of Q is
in the simplex). With λ = −∇L(A(U)) and s = max_i ‖(W_iX)ᵀλ‖ (one adjoint product),
θ = tλ is feasible for every t ∈ [0, β/s] inside the loss's domain, and t maximizes d(tλ) there
(:meth:`~cvxnn.losses.Loss.best_scale`; squared: t = clip(λᵀy/‖λ‖², 0, β/s)), so d(θ) is a
lower bound; the solve stops when the relative gap (F(U) − d(θ)) / F(U) ≤ tol. The returned
certificate is always computed over **all** groups.

**Gap-safe screening** (Fercoq, Gramfort & Salmon 2015; Ndiaye et al. 2017). ∇L is κ-Lipschitz,
so L* is (1/κ)-strongly convex and d is (1/κ)-strongly concave (κ = 1 squared, κ = ¼ logistic:
ℓ'' = sigmoid·(1 − sigmoid) ≤ ¼, κ = ½ cross-entropy: diag(p) − ppᵀ ⪯ ½I). For a feasible θ,
optimality of θ* over the feasible set gives (1/(2κ))‖θ − θ*‖² ≤ d(θ*) − d(θ) ≤ G := F(U) − d(θ)
for any primal value F(U) ≥ d(θ*). The optimal dual point θ* = −∇L(A(U*)) is unique (the same for
every primal solution U*), and u_i* ≠ 0 forces ‖(W_iX)ᵀθ*‖ = β (KKT). Hence

    ‖(W_iX)ᵀθ‖ + ‖W_iX‖₂ √(2κG) < β   ⟹   u_i* = 0 in every solution,

and such a group is removed for good. ‖W_iX‖₂ is bounded above by min(‖W_iX‖_F, max(|a|, |b|)‖X‖₂),
both computed exactly. Removing groups that are zero at every optimum leaves the optimal value and
θ* unchanged, so the test stays valid on the reduced problem (checked at each of its gap
evaluations). Reported lower bounds are only those of dual points feasible for all groups: the
best dual point of each reduced solve is rescaled to be feasible for the groups left out.

**Working sets** (the celer / skglm strategy). The optimality violation of group i is the
distance of −∇_iF = (W_iX)ᵀλ to β∂‖u_i‖; for u_i = 0 it is (‖(W_iX)ᵀλ‖ − β)_+, so groups are ranked
by the score ‖(W_iX)ᵀλ‖/β. Each outer iteration computes the certificate on all groups, keeps the
current support plus the best-scored groups (at least twice the support; the set doubles when
an outer iteration did not halve the global gap), and runs FISTA on that set until its own gap
falls below a fraction ``inner_ratio`` of the global one (or below ``tol``). Once the set covers
every unscreened group the outer loop is plain FISTA, so the method terminates whenever FISTA does.

**The hinge** (nonsmooth). FISTA minimizes Nesterov's smoothing L_μ(z) = Σ_k ψ_μ(1 − y_k z_k),
ψ_μ(m) = max_{a∈[0,1]} am − (μ/2)a² (:class:`~cvxnn.solvers.smoothing.NesterovHinge`; ∇L_μ is
(1/μ)-Lipschitz), with continuation: an inner solve ends once the smoothed program's gap is at most
:data:`SMOOTHED_GAP_SHARE` of the true gap (the rest is the smoothing's, which only a smaller μ removes),
and μ ← μ/``continuation``, warm-started. Everything certified is the **true** hinge program's: the upper
bound is its objective at the iterate, and the lower bound d(tλ) = tΣ_k λ_k y_k at λ = −∇L_μ(A(U)) = y∘a,
a = clip((1 − y∘A(U))/μ, 0, 1) ∈ [0, 1]^n (the hinge conjugate's domain), t as above and t ≤ 1/max a.
The hinge dual is linear, hence not strongly concave, so **no gap-safe screening** for the hinge (the
smoothed dual is μ-strongly concave, but its optimum moves with μ). Working sets stay valid (they only pick
the groups solved; certificates are over all groups); an outer iteration limited by the smoothing does not
grow the set.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Callable

import torch

from ..losses import SQUARED, Loss
from ..operators import PatternOperator
from .result import NumericalBreakdown, SolverOutput, budget_status
from .smoothing import HingeSmoothing, NesterovHinge

SCREEN_FRACTION = 0.05  # shrink the operator once this share of its groups is screened
FISTA_LOSSES = ("squared", "logistic", "cross_entropy", "hinge")
HINGE_SMOOTHING = 1.0  # hinge: initial μ of Nesterov's smoothing (the margin is 1)
HINGE_CONTINUATION = 10.0  # hinge: μ ← μ / this at each decrease
SMOOTHED_GAP_SHARE = 0.5  # hinge: decrease μ once the smoothed program's gap is this share of the true gap or less


def _inner(a: torch.Tensor, b: torch.Tensor) -> float:
    """⟨a, b⟩ = Σ a ∘ b for tensors of any (equal) shape."""
    return float(torch.dot(a.reshape(-1), b.reshape(-1)))


class SmoothLoss:
    """A loss of :data:`FISTA_LOSSES` on torch tensors: what FISTA, Newton, the IPM and the certificates evaluate.

    squared:       L(z) = ½‖z − y‖²,                    ∇L(z) = z − y            (y: (n,) or (n, c));
    logistic:      L(z) = Σ_k log(1 + exp(−y_k z_k)),   ∇L(z) = −y ∘ sigmoid(−y ∘ z);
    cross-entropy: L(Z) = Σ_k logsumexp(z_k) − ⟨Y, Z⟩,  ∇L(Z) = softmax(Z) − Y    (rows z_k, one-hot Y);
    hinge:         L(z) = Σ_k (1 − y_k z_k)_+, nonsmooth: :meth:`value`, :meth:`value_and_gradient` and
                   :meth:`hessian_blocks` are those of its smoothing L_μ(z) = Σ_k ψ_μ(1 − y_k z_k)
                   (``smoothing``, a :class:`~cvxnn.solvers.smoothing.HingeSmoothing` whose μ the solver
                   changes in place; Nesterov's with μ = :data:`HINGE_SMOOTHING` by default).

    FISTA's values and gradients are in the dtype of z. The certificate's pieces are in float64 and
    always those of the loss itself: L(z) (:meth:`loss_value`; the true hinge), the dual direction
    λ = −∇L(z) (hinge: λ = −∇L_μ(z) = y ∘ ψ_μ'(1 − y ∘ z), inside the hinge conjugate's domain), and
    d(tλ) on that ray. For the squared loss they are closed forms on z's device; for the others the dual
    value and the best scale come from the :class:`~cvxnn.losses.Loss` (NumPy, one transfer of λ per
    certificate).
    """

    def __init__(self, loss: Loss, y: torch.Tensor, smoothing: HingeSmoothing | None = None) -> None:
        if loss.name not in FISTA_LOSSES:
            raise ValueError(f"the fast solvers support the losses {FISTA_LOSSES}, not {loss.name!r}.")
        self.loss, self.y, self.y64 = loss, y, y.double()
        self.squared = loss.name == "squared"
        self.softmax = loss.name == "cross_entropy"
        self.hinge = loss.name == "hinge"
        if smoothing is not None and not self.hinge:
            raise ValueError(f"a smoothing applies to the hinge loss only, not to the {loss.name!r} loss.")
        self.smoothing = (smoothing or NesterovHinge(HINGE_SMOOTHING)) if self.hinge else None
        self._y_np = None if self.squared else self.y64.cpu().numpy()

    @property
    def curvature(self) -> float:
        """κ: ∇L (∇L_μ for the hinge) is κ-Lipschitz."""
        return self.smoothing.max_curvature if self.hinge else float(self.loss.curvature)

    def _value(self, z: torch.Tensor, y: torch.Tensor) -> float:
        """L(z) (hinge: L_μ(z)) for targets y of z's dtype."""
        if self.squared:
            r = z - y
            return 0.5 * _inner(r, r)
        if self.softmax:
            return float(torch.logsumexp(z, dim=1).sum()) - _inner(y, z)
        if self.hinge:
            return float(self.smoothing.value(1 - y * z).sum())
        m = -y * z
        return float(torch.logaddexp(m, torch.zeros_like(m)).sum())

    def _gradient(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """∇L(z) (hinge: ∇L_μ(z)) for targets y of z's dtype."""
        if self.squared:
            return z - y
        if self.softmax:
            return torch.softmax(z, dim=1) - y
        if self.hinge:
            return -y * self.smoothing.slope(1 - y * z)
        return -y * torch.sigmoid(-y * z)

    def value(self, z: torch.Tensor) -> float:
        """L(z) (hinge: L_μ(z)), accumulated in z's dtype."""
        return self._value(z, self.y)

    def value_and_gradient(self, z: torch.Tensor) -> tuple[float, torch.Tensor]:
        """(L(z), ∇L(z)) in z's dtype (hinge: those of L_μ)."""
        if self.squared:
            r = z - self.y
            return 0.5 * _inner(r, r), r
        return self._value(z, self.y), self._gradient(z, self.y)

    def loss_value(self, z: torch.Tensor) -> float:
        """L(z) of the loss itself (the true hinge, not its smoothing) in float64."""
        z64 = z.double()
        if self.hinge:
            return float(torch.clamp(1 - self.y64 * z64, min=0.0).sum())
        return self._value(z64, self.y64)

    def hessian_blocks(self, z: torch.Tensor) -> torch.Tensor:
        """The per-sample Hessian blocks of L at z (n x c, or n for one output), an (n, c, c) tensor:
        I (squared), diag(σ(1 − σ)) with σ = sigmoid(−y ∘ z) (logistic), diag(p) − ppᵀ with
        p = softmax(z_k) (cross-entropy), diag(ψ_μ''(1 − y ∘ z)) (hinge: its smoothing)."""
        z2 = z.view(z.shape[0], -1)
        if self.softmax:
            p = self.probabilities(z2)
            return torch.diag_embed(p) - p[:, :, None] * p[:, None, :]
        if self.squared:
            return torch.diag_embed(torch.ones_like(z2))
        if self.hinge:
            return torch.diag_embed(self.smoothing.curvature(1 - self.y.view(z2.shape) * z2))
        q = torch.sigmoid(-self.y.view(z2.shape) * z2)
        return torch.diag_embed(q * (1 - q))

    def probabilities(self, z: torch.Tensor) -> torch.Tensor:
        """softmax(z_k) row by row (n, c): the cross-entropy's class probabilities."""
        return torch.softmax(z, dim=1)

    def hessian_roots(self, z: torch.Tensor) -> torch.Tensor:
        """r (n, c) with every Hessian block H_k = diag(r_k) Π_k diag(r_k) (:meth:`hessian_blocks`): Π_k = I and
        r_k = (H_k)_ii^½ for the losses with diagonal blocks; for the cross-entropy, H_k = diag(p) − ppᵀ gives
        r_k = √p and Π_k = I − √p√pᵀ, a projector since ‖√p‖ = 1."""
        if self.softmax:
            return self.probabilities(z.view(z.shape[0], -1)).sqrt()
        return self.hessian_blocks(z).diagonal(dim1=1, dim2=2).clamp(min=0.0).sqrt()

    def dual_direction(self, z: torch.Tensor) -> tuple[float, torch.Tensor]:
        """(L(z), λ) in float64, L the loss itself (:meth:`loss_value`) and λ = −∇L(z) (squared: y − z
        formed in z's dtype, then widened; hinge: λ = −∇L_μ(z), with λ_k y_k ∈ [0, 1])."""
        if self.squared:
            lam = (self.y - z).double()
            return 0.5 * _inner(lam, lam), lam
        z64 = z.double()
        return self.loss_value(z64), -self._gradient(z64, self.y64)

    def smoothed_gap(self, z: torch.Tensor, lam: torch.Tensor, t_max: float, penalty: float) -> float | None:
        """Hinge with Nesterov's smoothing: the gap of the smoothed program min L_μ(A(U)) + penalty at a point
        with prediction z and penalty value ``penalty``, against the best dual point tλ, t ≤ t_max (the dual
        constraints) and t ≤ 1/max_k λ_k y_k (the domain): L_μ(z) + penalty − max_t d_μ(tλ),
        d_μ(θ) = d(θ) − (μ/2)‖θ‖² (:meth:`~cvxnn.solvers.smoothing.NesterovHinge.best_dual_on_ray`).
        None for any other loss or smoothing."""
        if not isinstance(self.smoothing, NesterovHinge):
            return None
        upper = min(t_max, self.loss.domain_scale(lam.cpu().numpy(), self._y_np))
        return self._value(z.double(), self.y64) + penalty - self.smoothing.best_dual_on_ray(lam * self.y64, upper)

    def best_scale(self, lam: torch.Tensor, t_max: float) -> float:
        """argmax of t ↦ d(tλ) over [0, t_max] within the domain (squared: clip(⟨λ, y⟩/‖λ‖², 0, t_max))."""
        if self.squared:
            nrm2 = _inner(lam, lam)
            return 0.0 if nrm2 == 0 else min(max(_inner(lam, self.y64) / nrm2, 0.0), t_max)
        return self.loss.best_scale(lam.cpu().numpy(), self._y_np, t_max)

    def dual_on_ray(self, lam: torch.Tensor, t: float) -> float:
        """d(tλ) = −L*(−tλ) (squared: t⟨λ, y⟩ − ½t²‖λ‖²)."""
        if self.squared:
            return t * _inner(lam, self.y64) - 0.5 * t * t * _inner(lam, lam)
        return self.loss.dual_value(t * lam.cpu().numpy(), self._y_np)


def group_soft_threshold(U: torch.Tensor, thresh: float, dims: tuple[int, ...] = (1,)) -> torch.Tensor:
    """The prox of thresh·Σ_g ‖U_g‖: U_g ← max(0, 1 − thresh/‖U_g‖) U_g, the groups U_g being the
    slices of U over the axes ``dims`` (rows of a (P, d) U by default)."""
    norms = U.norm(dim=dims, keepdim=True)
    return U * torch.clamp(1 - thresh / torch.clamp(norms, min=1e-300), min=0.0)


@dataclass(frozen=True)
class GroupNorm:
    """The penalty Σ_g ‖U_g‖ of the gated program and its dual constraint values per pattern.

    Groups are the slices of U over the axes ``dims``: (1,) gives the rows u_i of a (P, d) U, or the
    columns U_i[:, k] of (P, d, c) blocks ("per_output"); (1, 2) the blocks U_i ("group", Frobenius).
    """

    dims: tuple[int, ...] = (1,)

    @classmethod
    def of(cls, vector_penalty: str, vector: bool) -> "GroupNorm":
        """The groups of the program: "group" with vector outputs → blocks; otherwise rows / columns."""
        return cls((1, 2) if vector and vector_penalty == "group" else (1,))

    def value(self, U: torch.Tensor) -> float:
        """Σ_g ‖U_g‖, accumulated in float64."""
        return float(U.double().norm(dim=self.dims).sum())

    def prox(self, U: torch.Tensor, thresh: float) -> torch.Tensor:
        """Group soft-thresholding, the prox of thresh·Σ_g ‖U_g‖."""
        return group_soft_threshold(U, thresh, self.dims)

    def pattern_values(self, G: torch.Tensor) -> torch.Tensor:
        """max over the groups g of pattern i of ‖G_g‖, for G = Aᵀ(λ) (float64, length P): pattern i's
        dual constraint value (‖(W_iX)ᵀλ‖; max_k ‖(W_iX)ᵀλ_k‖ per output; ‖(W_iX)ᵀλ‖_F per block)."""
        norms = G.double().norm(dim=self.dims)
        return norms if norms.ndim == 1 else norms.amax(dim=1)


@dataclass
class GatedCertificate:
    """A feasible dual point θ = tλ of the gated program for one pattern list.

    primal: F(U); dual: d(θ) ≤ optimal value; lam: λ = −∇L(A(U)) (squared: y − A(U); hinge: −∇L_μ(A(U));
    float64, shaped as y); scale: t; norms: the dual constraint value of every pattern of the operator at
    λ (:meth:`GroupNorm.pattern_values`; float64, length P); smoothed_gap: the gap of Nesterov's smoothed
    hinge program at U and the ray of λ (:meth:`SmoothLoss.smoothed_gap`; None for other losses).
    """

    primal: float
    dual: float
    lam: torch.Tensor
    scale: float
    norms: torch.Tensor
    smoothed_gap: float | None

    @property
    def gap(self) -> float:
        return self.primal - self.dual


def gated_certificate(op: PatternOperator, y: torch.Tensor, U: torch.Tensor, beta: float,
                      prediction: torch.Tensor | None = None, loss: Loss | SmoothLoss = SQUARED,
                      penalty: GroupNorm = GroupNorm()) -> GatedCertificate:
    """Primal value F(U) = L(A(U)) + β Σ_g ‖U_g‖, dual direction λ = −∇L(A(U)) and the best feasible
    multiple tλ, t ≤ β / max_i (pattern i's constraint value at λ) (accumulated in float64).

    For the hinge, F is the true hinge objective and λ = −∇L_μ(A(U)) is built from the smoothing of
    ``loss`` (a :class:`SmoothLoss`; a bare Loss gets the default smoothing). ``prediction``: A(U) when
    already computed."""
    smooth = loss if isinstance(loss, SmoothLoss) else SmoothLoss(loss, y)
    z = op.matvec(U) if prediction is None else prediction
    value, lam = smooth.dual_direction(z)
    primal = value + beta * penalty.value(U)
    norms = penalty.pattern_values(op.rmatvec(lam.to(op.dtype))) if op.P else \
        torch.zeros(0, dtype=torch.float64, device=op.device)
    s = float(norms.max()) if op.P else 0.0
    t_max = float("inf") if s <= 0 else beta / s
    t = smooth.best_scale(lam, t_max)
    return GatedCertificate(primal, smooth.dual_on_ray(lam, t), lam, t, norms,
                            smooth.smoothed_gap(z, lam, t_max, primal - value))


def gated_gap(op: PatternOperator, y: torch.Tensor, U: torch.Tensor, beta: float, loss: Loss | SmoothLoss = SQUARED,
              vector_penalty: str = "per_output") -> tuple[float, float, torch.Tensor]:
    """(primal, dual lower bound, dual direction λ = −∇L(A(U))); see :func:`gated_certificate`.
    For (P, d, c) blocks U, ``vector_penalty`` picks the groups (:meth:`GroupNorm.of`)."""
    c = gated_certificate(op, y, U, beta, loss=loss, penalty=GroupNorm.of(vector_penalty, U.ndim == 3))
    return c.primal, c.dual, c.lam


def group_norm_bounds(op: PatternOperator) -> torch.Tensor:
    """Upper bounds min(‖W_iX‖_F, max(|a|, |b|)‖X‖₂) ≥ ‖W_iX‖₂ for every group, in float64 on the
    operator's device, W_i = aD_i + b(I − D_i) the fit weights of the operator's activation.

    ‖W_iX‖_F² = a² Σ_k [D_i]_kk ‖x_k‖² + b² Σ_k (1 − [D_i]_kk) ‖x_k‖² (one product of the masks with
    the row norms); ‖X‖₂ from the eigenvalues of the d x d matrix XᵀX.
    """
    X64 = op.X.double()
    row2 = (X64 * X64).sum(dim=1)
    fro2 = torch.zeros(op.P, dtype=torch.float64, device=op.device)
    step = op.chunk_rows
    for start in range(0, op.n, step):
        fro2 += row2[start:start + step] @ op.masks[start:start + step].double()
    a, b = op.activation.a, op.activation.b
    fro2 = a * a * fro2 + b * b * (float(row2.sum()) - fro2)
    spec = max(abs(a), abs(b)) * float(torch.linalg.eigvalsh(X64.T @ X64).max().clamp(min=0.0)) ** 0.5
    return torch.clamp(fro2.clamp(min=0.0).sqrt(), max=spec)


def restrict(op: PatternOperator, idx: torch.Tensor) -> PatternOperator:
    """The operator of the groups ``idx`` only (masks[:, idx]); X is shared, not copied."""
    return PatternOperator(op.X, op.masks[:, idx], dtype=op.dtype, device=op.device, activation=op.activation)


class _GatedSolve:
    """State of one solve: the full iterate, the unscreened groups, the best certified bounds."""

    def __init__(self, op: PatternOperator, y: torch.Tensor, beta: float, U0: torch.Tensor | None,
                 max_iter: int, gap_every: int, time_limit: float | None, callback: Callable | None,
                 screening: bool, loss: Loss, vector_penalty: str, smoothing: HingeSmoothing | None) -> None:
        self.start = time.perf_counter()
        self.op, self.y, self.beta = op, y.to(op.dtype), float(beta)
        self.loss = SmoothLoss(loss, self.y, smoothing)
        self.penalty = GroupNorm.of(vector_penalty, y.ndim == 2)
        shape = (op.P, op.d, *y.shape[1:])  # blocks (P, d), or (P, d, c) for c outputs
        self.U = torch.zeros(shape, dtype=op.dtype, device=op.device) if U0 is None else \
            U0.to(dtype=op.dtype, device=op.device).reshape(shape).clone()
        self.best_U, self.best_primal, self.best_lower = self.U.clone(), float("inf"), -float("inf")
        self.max_iter, self.gap_every, self.time_limit, self.callback = max_iter, gap_every, time_limit, callback
        self.active = torch.ones(op.P, dtype=torch.bool, device=op.device)
        # Gap-safe screening needs a strongly concave dual. The hinge dual d(θ) = Σ θ_k y_k is linear, and the
        # smoothed dual (μ-strongly concave) has an optimum that moves as μ decreases, so a group it proves zero
        # at one μ may be nonzero at the hinge optimum: no screening for the hinge.
        self.bounds = group_norm_bounds(op) if screening and op.P and not self.loss.hinge else None
        # round-off allowance: screen only groups clearly inside the constraint
        self.margin = math.sqrt(torch.finfo(op.dtype).eps)
        self.history: list[tuple[float, float, float]] = []
        self.screen_events: list[tuple[float, int]] = []
        self.n_iter = 0
        self.L: float | None = None
        self.theta: torch.Tensor | None = None

    def elapsed(self) -> float:
        return time.perf_counter() - self.start

    def out_of_budget(self) -> str | None:
        return budget_status(self.n_iter, self.max_iter, self.start, self.time_limit)

    def relative_gap(self) -> float:
        return (self.best_primal - self.best_lower) / max(abs(self.best_primal), 1e-300)

    def record(self, primal: float, U: torch.Tensor | None, idx: torch.Tensor | None,
               lower: float | None, theta: torch.Tensor | None = None, notify: bool = True) -> None:
        """Log a primal value (of U on groups idx, zero elsewhere) and, when certified, a lower bound."""
        if primal < self.best_primal:  # U None: the value of best_U itself
            self.best_primal = primal
            if U is not None:
                self.best_U.zero_()
                self.best_U[idx] = U
        if lower is not None and lower > self.best_lower:
            self.best_lower, self.theta = lower, theta
        self.history.append((self.elapsed(), primal, self.best_lower))
        if notify and self.callback is not None:
            self.callback(self.n_iter, primal, self.best_lower)

    def certify(self, notify: bool = True) -> GatedCertificate:
        """The certificate of the best iterate over all groups (screened ones included)."""
        c = gated_certificate(self.op, self.y, self.best_U, self.beta, loss=self.loss, penalty=self.penalty)
        self.record(c.primal, None, None, c.dual, c.scale * c.lam, notify)
        return c

    def offer_dual(self, idx: torch.Tensor, lam: torch.Tensor, scale: float) -> None:
        """Make θ = scale·λ, feasible for the groups idx, feasible for all groups and keep it if it is the best.

        With s the largest constraint value at λ over the other patterns, t = min(scale, β/s) is feasible
        everywhere, and it maximizes the concave d(tλ) on that ray because scale already does on the ray's part
        feasible for idx (and inside the loss's domain).
        """
        rest = torch.ones(self.op.P, dtype=torch.bool, device=self.op.device)
        rest[idx] = False
        t = scale
        if bool(rest.any()):
            others = restrict(self.op, torch.nonzero(rest).flatten()).rmatvec(lam.to(self.op.dtype))
            s = float(self.penalty.pattern_values(others).max())
            t = min(t, self.beta / s) if s > 0 else t
        dual = self.loss.dual_on_ray(lam, t)
        if dual > self.best_lower:
            self.best_lower, self.theta = dual, t * lam

    def screen(self, idx: torch.Tensor, theta_norms: torch.Tensor, gap: float) -> torch.Tensor:
        """Patterns of idx (with constraint values theta_norms at θ) that the gap-safe sphere ‖θ − θ*‖ ≤ √(2κG)
        proves zero: theta_norms + ‖W_iX‖₂√(2κG) < β."""
        radius = math.sqrt(2.0 * max(gap, 0.0) * self.loss.curvature)
        return theta_norms + self.bounds[idx] * radius < self.beta * (1.0 - self.margin)

    def drop(self, idx: torch.Tensor, mask: torch.Tensor) -> None:
        gone = idx[mask]
        if gone.numel():
            self.active[gone] = False
            self.U[gone] = 0.0
            if bool((self.best_U[gone] != 0).any()):  # keep the returned point zero on removed groups
                self.best_U[gone] = 0.0
                self.best_primal = float("inf")  # re-evaluated at the next gap evaluation
            self.screen_events.append((self.elapsed(), int((~self.active).sum())))

    def fista(self, idx: torch.Tensor, stop_rel: float) -> str:
        """FISTA on the groups idx (the others held at zero) until their own relative gap ≤ stop_rel, or,
        for the hinge, until the smoothed program's gap is at most :data:`SMOOTHED_GAP_SHARE` of the true gap
        (the rest is the smoothing's: only a smaller μ reduces it).

        Two products per iteration: A(Y) = (1 + m)A(U_new) − mA(U) for the extrapolation
        Y = U_new + m(U_new − U); when the line search fails, A(Y) is first recomputed (round-off).
        With screening, groups proved zero at a gap evaluation are dropped from idx without
        restarting the momentum. Gap evaluations count as certificates only while idx holds every
        group. Returns "converged", "smoothing" (hinge: decrease μ), "max_iter" or "time_limit".
        """
        sub = restrict(self.op, idx)
        y, beta, loss, penalty = self.y, self.beta, self.loss, self.penalty
        U = self.U[idx].clone()
        if self.L is None:  # ∇(L∘A) is κ‖A‖₂²-Lipschitz
            self.L = max(loss.curvature * sub.lipschitz(iters=15), 1e-12)
        L = self.L
        slack = 10 * torch.finfo(sub.dtype).eps  # round-off allowance in the sufficient-decrease test
        AU = sub.matvec(U)
        Y, AY, theta = U.clone(), AU.clone(), 1.0
        best_primal, best_dual, k = float("inf"), -float("inf"), 0
        best_point: tuple[torch.Tensor, torch.Tensor, float] | None = None  # (idx, λ, t) of best_dual
        try:
            while True:
                reason = self.out_of_budget()
                if reason is not None:
                    return reason
                self.n_iter += 1
                k += 1
                fY, g = loss.value_and_gradient(AY)
                grad = sub.rmatvec(g)
                fresh = False
                while True:  # backtracking on the smooth part
                    U_new = penalty.prox(Y - grad / L, beta / L)
                    D = U_new - Y
                    AU_new = sub.matvec(U_new)
                    bound = fY + float((grad * D).sum()) + 0.5 * L * float((D * D).sum())
                    if loss.value(AU_new) <= bound + slack * abs(fY):
                        break
                    if not fresh:  # first rule out the round-off of the extrapolated A(Y)
                        fresh, AY = True, sub.matvec(Y)
                        fY, g = loss.value_and_gradient(AY)
                        grad = sub.rmatvec(g)
                        continue
                    L *= 2.0
                    if not math.isfinite(L):  # no step decreases a NaN or inf loss
                        raise NumericalBreakdown("FISTA's line search found no finite step")
                if float(((Y - U_new) * (U_new - U)).sum()) > 0:  # adaptive restart
                    theta = 1.0
                theta_next = 0.5 * (1 + (1 + 4 * theta * theta) ** 0.5)
                m = (theta - 1) / theta_next
                Y, AY = U_new + m * (U_new - U), AU_new + m * (AU_new - AU)
                U, AU, theta = U_new, AU_new, theta_next
                L *= 0.9  # let the step grow again
                if k % self.gap_every:
                    continue
                c = gated_certificate(sub, y, U, beta, prediction=AU, loss=loss, penalty=penalty)
                if c.dual > best_dual:
                    best_dual, best_point = c.dual, (idx, c.lam, c.scale)
                best_primal = min(best_primal, c.primal)
                certified = idx.numel() == self.op.P
                self.record(c.primal, U, idx, c.dual if certified else None, c.scale * c.lam if certified else None)
                if best_primal - best_dual <= stop_rel * max(abs(best_primal), 1e-300):
                    return "converged"
                if c.smoothed_gap is not None and c.smoothed_gap <= SMOOTHED_GAP_SHARE * c.gap:
                    return "smoothing"
                if self.bounds is not None:
                    # valid on the reduced problem: its θ* is the full θ* (screened groups are zero at the optimum)
                    out = self.screen(idx, c.scale * c.norms, best_primal - c.dual)
                    if int(out.sum()) >= max(1, SCREEN_FRACTION * idx.numel()):
                        U[out] = 0.0
                        self.U[idx] = U
                        self.drop(idx, out)
                        keep = ~out
                        idx, U, Y = idx[keep], U[keep], Y[keep]
                        sub = restrict(self.op, idx)
                        AU, AY = sub.matvec(U), sub.matvec(Y)
        finally:
            self.U[idx] = U
            self.L = L
            if best_point is not None and best_point[0].numel() < self.op.P:
                self.offer_dual(*best_point)


def solve_gated_fista(op: PatternOperator, y: torch.Tensor, beta: float, U0: torch.Tensor | None = None,
                      tol: float = 1e-6, max_iter: int = 20_000, gap_every: int = 10,
                      time_limit: float | None = None, callback: Callable | None = None,
                      screening: bool = True, working_set: bool = True, ws_start: int = 16,
                      inner_ratio: float = 0.1, loss: Loss = SQUARED, vector_penalty: str = "per_output",
                      smoothing: float = HINGE_SMOOTHING, continuation: float = HINGE_CONTINUATION) -> SolverOutput:
    """Minimize the gated program from U0 (zeros by default) until the relative gap ≤ tol.

    loss: a loss of :data:`FISTA_LOSSES` (as a :class:`~cvxnn.losses.Loss`); y holds its targets:
    (n,) for one output (labels in {−1, +1} for the logistic loss), (n, c) for c outputs (one-hot
    rows for the cross-entropy), then the blocks are (P, d, c) with the groups of ``vector_penalty``
    ("per_output": columns, "group": blocks; see :class:`GroupNorm`). Screening, working sets and
    ``info`` count patterns (a pattern's c columns together); with one output they are the groups.
    screening: remove groups proved zero by the gap-safe test (checked at every gap evaluation).
    working_set: solve on the support plus the best-scored groups (at least ``ws_start`` and twice
    the support; doubled when an outer iteration did not halve the gap), each inner solve to a
    relative gap of max(tol, inner_ratio · the current global relative gap).
    ``max_iter`` counts FISTA iterations over all inner solves. Ctrl-C stops the solve and returns
    the best iterate with its certificate; a line search that finds no finite step (a NaN or inf loss)
    stops it with status "stalled" and the best iterate. The returned U is the best iterate seen; ``history``
    holds (seconds, objective, best certified lower bound). ``info`` reports "screened" (groups
    removed), "screened_groups" (their indices), "screen_events" ((seconds, groups removed so
    far)), "working_sets" (sizes per outer iteration), "outer_iterations", "objective",
    "lower_bound" and "relative_gap" (certified over all groups) and "dual_point" (the θ of that
    lower bound, feasible for every group, as a NumPy array shaped as y).

    Hinge loss (module docstring): FISTA minimizes Nesterov's smoothing with μ = ``smoothing`` first,
    divided by ``continuation`` whenever an inner solve ends with the smoothed gap at most
    :data:`SMOOTHED_GAP_SHARE` of the true one; the certificate and the stopping test are the true hinge
    program's; no screening. ``info["smoothing"]`` is the final μ (None for a smooth loss), and the
    output's ``dual`` the certified dual point (as ``info["dual_point"]``).
    """
    if continuation <= 1:
        raise ValueError(f"continuation must be > 1 (μ is divided by it), got {continuation!r}.")
    s = _GatedSolve(op, y, beta, U0, max_iter, gap_every, time_limit, callback, screening, loss, vector_penalty,
                    None if loss.smooth else NesterovHinge(smoothing))
    ws_sizes: list[int] = []
    status, outer, previous_gap, inner = "max_iter", 0, float("inf"), ""
    try:
        while True:
            cert = s.certify()
            if s.relative_gap() <= tol:
                status = "optimal"
                break
            budget = s.out_of_budget()
            if budget is not None:
                status = budget
                break
            outer += 1
            if s.bounds is not None:
                s.drop(torch.arange(op.P, device=op.device), s.screen(torch.arange(op.P, device=op.device),
                                                                      cert.scale * cert.norms,
                                                                      s.best_primal - cert.dual) & s.active)
            idx = torch.nonzero(s.active).flatten()
            if working_set and idx.numel():
                support = s.U.flatten(1).norm(dim=1) > 0
                size = max(ws_start, 2 * int(support.sum()), ws_sizes[-1] if ws_sizes else 0)
                # too little progress: grow (not when the smoothing, not the set, limited the last inner solve)
                if ws_sizes and s.relative_gap() > 0.5 * previous_gap and inner != "smoothing":
                    size = max(size, 2 * ws_sizes[-1])
                if size < idx.numel():
                    score = torch.where(support, torch.inf, cert.norms.to(support.device))[idx]
                    idx = idx[torch.topk(score, size).indices].sort().values
            ws_sizes.append(int(idx.numel()))
            previous_gap = s.relative_gap()
            stop_rel = tol if idx.numel() == int(s.active.sum()) else max(tol, inner_ratio * s.relative_gap())
            inner = s.fista(idx, stop_rel)
            if inner == "smoothing":
                s.loss.smoothing.mu /= continuation
                s.L = None if s.L is None else s.L * continuation  # ∇L_μ is (1/μ)-Lipschitz
    except KeyboardInterrupt:
        status = "interrupted"
        s.certify(notify=False)
    except NumericalBreakdown:  # the best point so far, certified at its last gap evaluation
        status = "stalled"
    info = {"screened": int((~s.active).sum()),
            "screened_groups": torch.nonzero(~s.active).flatten().cpu().tolist(),
            "screen_events": s.screen_events, "working_sets": ws_sizes,
            "outer_iterations": outer, "objective": s.best_primal, "lower_bound": s.best_lower,
            "relative_gap": s.relative_gap(),
            "dual_point": None if s.theta is None else s.theta.cpu().numpy(),
            "smoothing": None if s.loss.smoothing is None else s.loss.smoothing.mu}
    return SolverOutput(s.best_U.detach().cpu().double().numpy(), torch.zeros_like(s.best_U).cpu().double().numpy(),
                        status, s.n_iter, s.elapsed(), s.history, dual=None if loss.smooth else info["dual_point"],
                        info=info)
