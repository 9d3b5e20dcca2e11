"""Newton's method on the active support of the gated program (a group lasso):

    min_U  f(U) = L(Σ_{i∈S} W_i X u_i) + β Σ_{i∈S} ‖u_i‖₂,

restricted to the blocks S that a first-order method left non-zero (W_i: the fit weights, D_i
for ReLU), for a loss of :data:`~cvxnn.solvers.fista.FISTA_LOSSES` with diagonal Hessian
∇²L(z) = diag(h(z)) (squared: L = ½‖z − y‖², h = 1; logistic: h = σ(1 − σ), σ = sigmoid(−y ∘ z)).
Where every u_i ≠ 0, f is smooth with

    ∇_i f = (W_iX)ᵀ∇L(Bu) + β u_i/‖u_i‖,
    ∇²f  = Bᵀdiag(h(Bu))B + β · blockdiag_i (I − û_iû_iᵀ)/‖u_i‖,     B = [W_iX]_{i∈S}, û = u/‖u‖,

(squared: BᵀB, formed once), so a few damped Newton steps take a point near the solution to
machine precision. That is what makes the duality gap small: the dual point λ = −∇L(Bu) is only
as accurate as the square root of the primal error, so a gap of 1e-6 needs a primal error near 1e-12, which first-order
methods reach slowly. Newton stops if a block reaches zero (the support was wrong); the caller
checks the gap on *all* blocks afterwards and falls back to the first-order method.
"""

from __future__ import annotations

import time

import torch

from ..data import check_memory
from ..operators import PatternOperator
from ..losses import SQUARED, Loss
from .fista import SmoothLoss, gated_gap, solve_gated_fista
from .result import SolverOutput

MAX_NEWTON_DIM = 4000  # unknowns (active blocks x d) beyond which a dense Newton step costs too much
POLISH_FROM_GAP = 1e-3  # relative gap at which the first-order phase hands over to Newton


def newton_polish(X: torch.Tensor, weights: torch.Tensor, y: torch.Tensor, beta: float, U: torch.Tensor,
                  max_iter: int = 30, rtol: float = 1e-13, loss: Loss = SQUARED) -> torch.Tensor:
    """Polish U (P, d) by damped Newton steps on its support; returns a new (P, d) tensor in U's dtype.

    X: (n, d), weights: (n, P) fit weights, y: (n,) targets of ``loss``. Computed in float64 on U's
    device. Stops when ‖∇f‖ ≤ rtol · max(‖Bᵀ∇L(0)‖, β), when no damped step decreases f, or when a
    block reaches zero.
    """
    support = torch.nonzero(U.norm(dim=1) > 0).flatten()
    n, d = X.shape
    k = int(support.numel())
    if k == 0 or k * d > MAX_NEWTON_DIM:
        return U.clone()
    check_memory(8.0 * (n * k * d + (k * d) ** 2), f"Newton's method on {k} active blocks of dimension {d}",
                 "pass a looser tol or fewer patterns.")
    f64 = dict(dtype=torch.float64, device=U.device)
    X64, y64 = X.to(**f64), y.to(**f64)
    B = (weights[:, support].to(**f64)[:, :, None] * X64[:, None, :]).reshape(n, k * d)
    smooth = SmoothLoss(loss, y64)
    u = U[support].to(**f64).reshape(k * d)
    if smooth.squared:
        G, Bty = B.T @ B, B.T @ y64

    def fit_terms(v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(Bᵀ∇L(Bv), Bᵀdiag(h(Bv))B): gradient and Hessian of the fit term."""
        if smooth.squared:
            return G @ v - Bty, G
        z = B @ v
        return B.T @ smooth.value_and_gradient(z)[1], B.T @ (smooth.curvature_diagonal(z)[:, None] * B)

    def value(v: torch.Tensor) -> float:
        return smooth.value(B @ v) + beta * float(v.reshape(k, d).norm(dim=1).sum())

    f = value(u)
    scale = max(float((B.T @ smooth.value_and_gradient(torch.zeros(n, **f64))[1]).norm()), beta, 1e-300)
    eye = torch.eye(d, **f64)
    for _ in range(max_iter):
        blocks = u.reshape(k, d)
        norms = blocks.norm(dim=1)
        if bool((norms == 0).any()):
            break
        unit = blocks / norms[:, None]
        fit_grad, fit_hess = fit_terms(u)
        grad = fit_grad + beta * unit.reshape(-1)
        if float(grad.norm()) <= rtol * scale:
            break
        curv = beta * (eye[None] - unit[:, :, None] * unit[:, None, :]) / norms[:, None, None]
        H = fit_hess + torch.block_diag(*curv)
        H.diagonal().add_(1e-14 * float(H.diagonal().max()))  # BᵀB may be singular
        step = torch.linalg.solve(H, -grad)
        t, improved = 1.0, False
        while t > 1e-8:
            trial = u + t * step
            f_trial = value(trial)
            if f_trial < f:
                u, f, improved = trial, f_trial, True
                break
            t *= 0.5
        if not improved:
            break
    out = torch.zeros_like(U)
    out[support] = u.reshape(k, d).to(U.dtype)
    return out



def solve_gated_polished(op: PatternOperator, y: torch.Tensor, beta: float, weights: torch.Tensor,
                         tol: float = 1e-6, U0: torch.Tensor | None = None, loss: Loss = SQUARED,
                         **fista_options) -> SolverOutput:
    """FISTA to a relative gap of max(tol, 1e-3), Newton on the support, then FISTA again from the
    polished point if the gap over *all* blocks is still above ``tol`` (the support was not yet right).

    weights: (n, P) fit weights of the operator's patterns; loss: a loss of
    :data:`~cvxnn.solvers.fista.FISTA_LOSSES`. The certificate is always FISTA's
    (:func:`~cvxnn.solvers.fista.gated_gap` over every pattern).
    """
    start = time.perf_counter()
    first = solve_gated_fista(op, y, beta, U0=U0, tol=max(tol, POLISH_FROM_GAP), loss=loss, **fista_options)
    if first.status != "optimal" or tol >= POLISH_FROM_GAP:
        return first
    U = torch.as_tensor(first.v, dtype=op.dtype, device=op.device)
    polished = newton_polish(op.X, weights, y, beta, U, loss=loss)
    primal, dual, _ = gated_gap(op, y.to(op.dtype), polished, beta, loss=loss)
    history = first.history + [(time.perf_counter() - start, primal, dual)]
    if primal - dual <= tol * max(abs(primal), 1e-300):
        return SolverOutput(polished.cpu().double().numpy(), 0.0 * first.w, "optimal", first.n_iter,
                            time.perf_counter() - start, history)
    rest = solve_gated_fista(op, y, beta, U0=polished, tol=tol, loss=loss, **fista_options)
    offset = history[-1][0]
    return SolverOutput(rest.v, rest.w, rest.status, first.n_iter + rest.n_iter, time.perf_counter() - start,
                        history + [(offset + t, p, d) for t, p, d in rest.history])
