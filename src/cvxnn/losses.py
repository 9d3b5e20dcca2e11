"""Losses L(ŷ) = Σ_k ℓ(ŷ_k, y_k) with what duality needs (THEORY §1.4, §2.1).

The dual of min_ŷ L(ŷ) + β Σ‖·‖ over a convex program (with cone constraints) is

    max_λ d(λ) := −L*(−λ)   s.t.   per-pattern constraints σ_i^±(λ) ≤ β,

where L*(s) = sup_z sᵀz − L(z) is the convex conjugate. For every λ and every prediction z,
Fenchel–Young gives L(z) ≥ −L*(−λ) − λᵀz, which is what makes d(λ) a lower bound. The
natural dual point is λ = −∇L(ŷ) (a subgradient for the hinge loss).

**Scaling into feasibility.** The constraints are positively homogeneous: if s is the largest
constraint value at λ, tλ is feasible for every t ∈ [0, β/s]. The loss adds its own domain:
d(tλ) > −∞ only where −tλ ∈ dom L*. Each loss's :meth:`Loss.best_scale` maximizes the concave
function t ↦ d(tλ) over t ∈ [0, min(β/s, T_dom(λ))], with T_dom the largest t keeping tλ in
the domain (derived in each class). d is concave, so this is a 1-D concave maximization: exact
in closed form for the squared and hinge losses, a safeguarded bisection on the (monotone)
derivative for the logistic and cross-entropy losses.

Shapes: scalar losses act entrywise on arrays of any shape ((n,) or (n, c)); cross-entropy
takes predictions of shape (n, c) and one-hot targets of the same shape (integer labels are
converted by :meth:`Loss.targets`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
from scipy.special import expit, logsumexp, softmax, xlogy

LOSS_NAMES = ("squared", "logistic", "hinge", "cross_entropy")
_BISECTION_STEPS = 200


def _maximize_concave(derivative: Callable[[float], float], upper: float) -> float:
    """argmax over t ∈ [0, upper] of a concave φ given its (non-increasing) derivative φ'.

    ``upper`` is finite. Returns ``upper`` when φ'(upper) ≥ 0, 0 when φ'(0⁺) ≤ 0, else bisects
    on the sign of φ' (``_BISECTION_STEPS`` halvings, i.e. to machine precision).
    """
    if upper <= 0:
        return 0.0
    with np.errstate(divide="ignore", invalid="ignore"):
        if derivative(upper) >= 0:
            return float(upper)
        lo, hi = 0.0, float(upper)
        for _ in range(_BISECTION_STEPS):
            mid = 0.5 * (lo + hi)
            if mid <= lo or mid >= hi:
                break
            if derivative(mid) > 0:
                lo = mid
            else:
                hi = mid
    return lo


class Loss:
    """Interface of a convex loss L(ŷ) = Σ_k ℓ(ŷ_k, y_k) (see the module docstring).

    Attributes:
        name: the name :func:`loss_from` accepts.
        smooth: whether ∇L is single-valued (then λ = −∇L(ŷ*) is the unique optimal dual point;
            for a nonsmooth loss the solver's own dual point is used as well).
        vector: whether targets are per-class (cross-entropy: predictions of shape (n, c)).
        curvature: a Lipschitz constant κ of ∇L (∞ for a nonsmooth loss); used to prove decreases.
    """

    name: str = ""
    smooth: bool = True
    vector: bool = False
    curvature: float = 1.0

    def targets(self, y: Any, n_samples: int) -> np.ndarray:
        """Validate labels and return them in the form the other methods take."""
        raise NotImplementedError

    def value(self, pred: np.ndarray, y: np.ndarray) -> float:
        raise NotImplementedError

    def gradient(self, pred: np.ndarray, y: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def dual_direction(self, pred: np.ndarray, y: np.ndarray) -> np.ndarray:
        """λ = −∇L(ŷ) (a subgradient's negative for nonsmooth losses)."""
        return -self.gradient(pred, y)

    def dual_value(self, lam: np.ndarray, y: np.ndarray) -> float:
        """d(λ) = −L*(−λ); −inf outside the conjugate's domain."""
        raise NotImplementedError

    def domain_scale(self, lam: np.ndarray, y: np.ndarray) -> float:
        """T_dom(λ) = sup{t ≥ 0 : d(tλ) > −∞} (0 when only t = 0 works)."""
        raise NotImplementedError

    def best_scale(self, lam: np.ndarray, y: np.ndarray, t_max: float) -> float:
        """argmax of d(tλ) over t ∈ [0, min(t_max, T_dom(λ))]."""
        raise NotImplementedError

    def free_duals(self, pred: np.ndarray, y: np.ndarray, tol: float) -> np.ndarray | None:
        """Entries where −∂L(ŷ) is not a single point (within ``tol``), None for a smooth loss."""
        return None

    def repair(self, lam: np.ndarray, y: np.ndarray) -> np.ndarray:
        """A nearby direction whose ray {tλ : t ≥ 0} meets dom(−L*(−·)) beyond 0 (for solver duals
        that satisfy the domain only up to round-off). The identity where every direction works."""
        return lam

    def cvxpy(self, pred: Any, y: np.ndarray) -> Any:
        """L(pred) as a cvxpy expression (pred a cvxpy expression of y's shape)."""
        raise NotImplementedError

    def torch(self, pred: Any, y: Any) -> Any:
        """L(pred) for torch tensors (differentiable); y as returned by :meth:`targets`."""
        raise NotImplementedError


def _numeric_targets(y: Any, n_samples: int, name: str, allow_matrix: bool) -> np.ndarray:
    """y as a finite float64 array with n_samples rows, (n,) or (if allowed) (n, c)."""
    from .data import as_targets

    arr = np.asarray(y.detach().cpu().numpy() if hasattr(y, "detach") else y)
    if allow_matrix and arr.ndim == 2 and arr.shape[1] > 1:
        cols = [as_targets(arr[:, k], n_samples, name) for k in range(arr.shape[1])]
        return np.column_stack(cols)
    return as_targets(arr, n_samples, name)


@dataclass(frozen=True)
class SquaredLoss(Loss):
    """L(ŷ) = ½‖ŷ − y‖² (Frobenius for (n, c) targets).

    L*(s) = ½‖s‖² + ⟨s, y⟩, so d(λ) = ⟨λ, y⟩ − ½‖λ‖², finite everywhere (T_dom = ∞);
    λ = −∇L(ŷ) = y − ŷ.
    """

    name: str = "squared"

    def targets(self, y: Any, n_samples: int) -> np.ndarray:
        return _numeric_targets(y, n_samples, "y", allow_matrix=True)

    def value(self, pred: np.ndarray, y: np.ndarray) -> float:
        r = np.asarray(pred) - y
        return 0.5 * float(np.vdot(r, r))

    def gradient(self, pred: np.ndarray, y: np.ndarray) -> np.ndarray:
        return np.asarray(pred) - y

    def dual_value(self, lam: np.ndarray, y: np.ndarray) -> float:
        return float(np.vdot(lam, y)) - 0.5 * float(np.vdot(lam, lam))

    def domain_scale(self, lam: np.ndarray, y: np.ndarray) -> float:
        return np.inf

    def best_scale(self, lam: np.ndarray, y: np.ndarray, t_max: float) -> float:
        """argmax over t ∈ [0, t_max] of t⟨λ, y⟩ − t²‖λ‖²/2: clip(⟨λ, y⟩/‖λ‖², 0, t_max)."""
        nrm2 = float(np.vdot(lam, lam))
        if nrm2 == 0.0:
            return 0.0
        return float(np.clip(float(np.vdot(lam, y)) / nrm2, 0.0, t_max))

    def cvxpy(self, pred: Any, y: np.ndarray) -> Any:
        import cvxpy as cp

        return 0.5 * cp.sum_squares(pred - y)

    def torch(self, pred: Any, y: Any) -> Any:
        return 0.5 * ((pred - y) ** 2).sum()


def _sign_labels(y: Any, n_samples: int, loss: str) -> np.ndarray:
    arr = _numeric_targets(y, n_samples, "y", allow_matrix=True)
    bad = ~np.isin(arr, (-1.0, 1.0))
    if bad.any():
        seen = np.unique(arr)
        shown = ", ".join(f"{v:g}" for v in seen[:6]) + (", ..." if seen.size > 6 else "")
        hint = " (map 0/1 labels with y = 2*y - 1)" if set(seen.tolist()) <= {0.0, 1.0} else ""
        raise ValueError(f"the {loss} loss needs labels in {{-1, +1}}, but y has the values {shown}{hint}.")
    return arr


def _sign_domain_scale(lam: np.ndarray, y: np.ndarray) -> float:
    """sup{t ≥ 0 : t·λ_k y_k ∈ [0, 1] ∀k}: 1/max_k λ_k y_k if all λ_k y_k ≥ 0 (∞ if all are 0), else 0."""
    p = lam * y
    if p.size == 0 or p.min() < 0:
        return 0.0
    top = float(p.max())
    return np.inf if top == 0 else 1.0 / top


@dataclass(frozen=True)
class LogisticLoss(Loss):
    """L(ŷ) = Σ_k log(1 + exp(−y_k ŷ_k)), labels y_k ∈ {−1, +1}.

    Conjugate: with p = −s y (so p_k = λ_k y_k at s = −λ),
    ℓ*(s) = p log p + (1 − p) log(1 − p) for p ∈ [0, 1], +∞ otherwise. Hence

        d(λ) = Σ_k H(λ_k y_k),   H(p) = −p log p − (1 − p) log(1 − p)   (0 log 0 = 0),

    finite iff every p_k = λ_k y_k ∈ [0, 1]. λ = −∇L(ŷ) has λ_k = y_k·sigmoid(−y_k ŷ_k), so
    p_k ∈ (0, 1). Scaling: tλ stays in the domain iff t·p_k ∈ [0, 1] for all k, i.e.
    T_dom = 1/max_k p_k when all p_k ≥ 0 (T_dom ≥ 1 for λ = −∇L), and T_dom = 0 if some p_k < 0.
    d(tλ) = Σ H(t p_k) is concave with derivative Σ_k p_k log((1 − t p_k)/(t p_k)).
    """

    name: str = "logistic"
    curvature: float = 0.25

    def targets(self, y: Any, n_samples: int) -> np.ndarray:
        return _sign_labels(y, n_samples, "logistic")

    def value(self, pred: np.ndarray, y: np.ndarray) -> float:
        return float(np.sum(np.logaddexp(0.0, -y * pred)))

    def gradient(self, pred: np.ndarray, y: np.ndarray) -> np.ndarray:
        return -y * expit(-y * np.asarray(pred))

    def dual_value(self, lam: np.ndarray, y: np.ndarray) -> float:
        p = lam * y
        if p.size and (p.min() < 0 or p.max() > 1):
            return -np.inf
        return float(-np.sum(xlogy(p, p) + xlogy(1 - p, 1 - p)))

    def domain_scale(self, lam: np.ndarray, y: np.ndarray) -> float:
        return _sign_domain_scale(lam, y)

    def best_scale(self, lam: np.ndarray, y: np.ndarray, t_max: float) -> float:
        """Bisection on Σ_k p_k log((1 − t p_k)/(t p_k)) over [0, min(t_max, T_dom)]."""
        upper = min(t_max, self.domain_scale(lam, y))
        p = (lam * y).ravel()
        p = p[p > 0]
        if p.size == 0 or not np.isfinite(upper):
            return 0.0
        return _maximize_concave(lambda t: float(np.sum(p * (np.log1p(-t * p) - np.log(t * p)))), upper)

    def repair(self, lam: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Clip λ_k y_k into [0, 1]."""
        return y * np.clip(lam * y, 0.0, 1.0)

    def cvxpy(self, pred: Any, y: np.ndarray) -> Any:
        import cvxpy as cp

        return cp.sum(cp.logistic(-cp.multiply(y, pred)))

    def torch(self, pred: Any, y: Any) -> Any:
        import torch

        return torch.nn.functional.softplus(-y * pred).sum()


@dataclass(frozen=True)
class HingeLoss(Loss):
    """L(ŷ) = Σ_k max(0, 1 − y_k ŷ_k), labels y_k ∈ {−1, +1}.

    Conjugate: ℓ*(s) = s y for s y ∈ [−1, 0], +∞ otherwise. Hence d(λ) = Σ_k λ_k y_k, finite iff
    every p_k = λ_k y_k ∈ [0, 1]. Subgradient: λ_k = y_k·1[y_k ŷ_k < 1] (p_k = 1 inside the
    margin, 0 outside; at y_k ŷ_k = 1 any p_k ∈ [0, 1] is valid and 0 is taken). Scaling:
    d(tλ) = t Σ_k p_k is linear, so the best t is the upper end min(t_max, 1/max_k p_k) when
    Σ p_k > 0 (and all p_k ≥ 0), else 0.
    """

    name: str = "hinge"
    smooth: bool = False
    curvature: float = np.inf

    def free_duals(self, pred: np.ndarray, y: np.ndarray, tol: float) -> np.ndarray:
        """Margin points |1 − y_k ŷ_k| ≤ tol, where λ_k y_k may be anything in [0, 1]."""
        return np.abs(1.0 - y * np.asarray(pred)) <= tol

    def targets(self, y: Any, n_samples: int) -> np.ndarray:
        return _sign_labels(y, n_samples, "hinge")

    def value(self, pred: np.ndarray, y: np.ndarray) -> float:
        return float(np.sum(np.maximum(0.0, 1.0 - y * pred)))

    def gradient(self, pred: np.ndarray, y: np.ndarray) -> np.ndarray:
        return -y * (y * np.asarray(pred) < 1.0)

    def dual_value(self, lam: np.ndarray, y: np.ndarray) -> float:
        p = lam * y
        if p.size and (p.min() < 0 or p.max() > 1):
            return -np.inf
        return float(np.sum(p))

    def domain_scale(self, lam: np.ndarray, y: np.ndarray) -> float:
        return _sign_domain_scale(lam, y)

    def best_scale(self, lam: np.ndarray, y: np.ndarray, t_max: float) -> float:
        upper = min(t_max, self.domain_scale(lam, y))
        if float(np.sum(lam * y)) <= 0 or not np.isfinite(upper):
            return 0.0
        return float(upper)

    def repair(self, lam: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Clip λ_k y_k into [0, 1]."""
        return y * np.clip(lam * y, 0.0, 1.0)

    def cvxpy(self, pred: Any, y: np.ndarray) -> Any:
        import cvxpy as cp

        return cp.sum(cp.pos(1 - cp.multiply(y, pred)))

    def torch(self, pred: Any, y: Any) -> Any:
        import torch

        return torch.clamp(1 - y * pred, min=0.0).sum()


@dataclass(frozen=True)
class CrossEntropyLoss(Loss):
    """Softmax cross-entropy L(Ŷ) = Σ_k [logsumexp(ŷ_k) − ŷ_kᵀ y_k], Ŷ of shape (n, c), rows y_k one-hot.

    Conjugate of lse is the negative entropy on the simplex Δ, so per row
    ℓ*(s) = Σ_j q_j log q_j with q = s + y_k ∈ Δ, +∞ otherwise. Hence, with Q = Y − Λ,

        d(Λ) = −Σ_{k,j} Q_kj log Q_kj   (0 log 0 = 0),   finite iff every row of Q is in Δ,

    i.e. the rows of Λ sum to 0 and Y − Λ ≥ 0. Λ = −∇L(Ŷ) = Y − softmax(Ŷ), Q = softmax(Ŷ).
    Scaling: Y − tΛ keeps row sums 1 and stays ≥ 0 iff t ≤ T_dom = min{Y_kj/Λ_kj : Λ_kj > 0}
    (0 if some Λ_kj > 0 where Y_kj = 0; for Λ = Y − softmax, T_dom = min_k 1/(1 − softmax_k,y_k) ≥ 1).
    d(tΛ) is concave with derivative Σ Λ_kj log(Y_kj − tΛ_kj) (the +1 terms cancel: rows sum to 0).
    """

    name: str = "cross_entropy"
    vector: bool = True
    curvature: float = 0.5  # the Hessian diag(p) − ppᵀ of logsumexp has eigenvalues ≤ 1/2

    def targets(self, y: Any, n_samples: int) -> np.ndarray:
        """Integer labels 0..c−1 (shape (n,)) or a one-hot (n, c) matrix → one-hot float (n, c).

        c is the largest label + 1 (at least 2).
        """
        arr = np.asarray(y.detach().cpu().numpy() if hasattr(y, "detach") else y)
        if arr.ndim == 2 and arr.shape[1] > 1:
            Y = _numeric_targets(arr, n_samples, "y", allow_matrix=True)
            if not (np.isin(Y, (0.0, 1.0)).all() and np.all(Y.sum(axis=1) == 1)):
                raise ValueError("the cross_entropy loss takes integer class labels 0..c-1 or a one-hot "
                                 "(n, c) matrix; this 2-D y has rows that are not one-hot.")
            return Y
        labels = _numeric_targets(arr, n_samples, "y", allow_matrix=False)
        if labels.size and (labels.min() < 0 or np.any(labels != np.round(labels))):
            seen = ", ".join(f"{v:g}" for v in np.unique(labels)[:6])
            raise ValueError(f"the cross_entropy loss needs integer class labels 0..c-1, but y has the values "
                             f"{seen}; encode classes with sklearn.preprocessing.LabelEncoder.")
        c = max(int(labels.max()) + 1, 2)
        return np.eye(c)[labels.astype(int)]

    def value(self, pred: np.ndarray, y: np.ndarray) -> float:
        return float(np.sum(logsumexp(pred, axis=1)) - np.vdot(pred, y))

    def gradient(self, pred: np.ndarray, y: np.ndarray) -> np.ndarray:
        return softmax(pred, axis=1) - y

    def dual_value(self, lam: np.ndarray, y: np.ndarray) -> float:
        Q = y - lam
        scale = 1.0 + float(np.abs(lam).max(initial=0.0))
        if Q.size and (Q.min() < 0 or np.abs(lam.sum(axis=1)).max() > 1e-12 * scale):
            return -np.inf
        return float(-np.sum(xlogy(Q, Q)))

    def domain_scale(self, lam: np.ndarray, y: np.ndarray) -> float:
        scale = 1.0 + float(np.abs(lam).max(initial=0.0))
        if lam.size and np.abs(lam.sum(axis=1)).max() > 1e-12 * scale:
            return 0.0
        pos = lam > 0
        if not pos.any():
            return np.inf
        return float(np.min(y[pos] / lam[pos]))

    def best_scale(self, lam: np.ndarray, y: np.ndarray, t_max: float) -> float:
        """Bisection on Σ Λ_kj log(Y_kj − tΛ_kj) over [0, min(t_max, T_dom)]."""
        upper = min(t_max, self.domain_scale(lam, y))
        nz = lam != 0
        if not nz.any() or not np.isfinite(upper):
            return 0.0
        L, Y = lam[nz], y[nz]
        return _maximize_concave(lambda t: float(np.sum(L * np.log(np.maximum(Y - t * L, 0.0)))), upper)

    def repair(self, lam: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Centre the rows of Λ (row sums 0) and clip Y − Λ at 0 row-wise, keeping row sums."""
        Q = np.clip(y - (lam - lam.mean(axis=1, keepdims=True)), 0.0, None)  # row sums ≥ 1 before clipping
        return y - Q / Q.sum(axis=1, keepdims=True)

    def cvxpy(self, pred: Any, y: np.ndarray) -> Any:
        import cvxpy as cp

        return cp.sum(cp.log_sum_exp(pred, axis=1)) - cp.sum(cp.multiply(y, pred))

    def torch(self, pred: Any, y: Any) -> Any:
        import torch

        return (torch.logsumexp(pred, dim=1) - (y * pred).sum(dim=1)).sum()


SQUARED = SquaredLoss()
LOGISTIC = LogisticLoss()
HINGE = HingeLoss()
CROSS_ENTROPY = CrossEntropyLoss()
_LOSSES = {loss.name: loss for loss in (SQUARED, LOGISTIC, HINGE, CROSS_ENTROPY)}


def loss_from(spec: Any = "squared") -> Loss:
    """A :class:`Loss` from its name ("squared", "logistic", "hinge", "cross_entropy") or itself."""
    if isinstance(spec, Loss):
        return spec
    if isinstance(spec, str) and spec in _LOSSES:
        return _LOSSES[spec]
    raise ValueError(f"loss must be one of {LOSS_NAMES} or a Loss; got {spec!r}.")
