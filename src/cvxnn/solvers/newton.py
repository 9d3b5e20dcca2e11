"""Newton's method on the active support of the gated program (a group lasso):

    min_U  f(U) = L(Σ_{i∈S} W_i X u_i) + β Σ_{i∈S} ‖u_i‖₂,

restricted to the blocks S that a first-order method left non-zero (W_i: the fit weights, D_i
for ReLU), for a loss of :data:`~cvxnn.solvers.fista.FISTA_LOSSES`. Where every u_i ≠ 0, f is
smooth with

    ∇_i f = (W_iX)ᵀ∇L(Bu) + β u_i/‖u_i‖,
    ∇²f  = Bᵀ∇²L(Bu)B + β · blockdiag_i (I − û_iû_iᵀ)/‖u_i‖,     B = [W_iX]_{i∈S}, û = u/‖u‖,

so a few damped Newton steps take a point near the solution to machine precision. That is what
makes the duality gap small: the dual point λ = −∇L(Bu) is only as accurate as the square root of
the primal error, so a gap of 1e-6 needs a primal error near 1e-12, which first-order methods reach
slowly. Newton stops if a block reaches zero (the support was wrong); the caller checks the gap on
*all* blocks afterwards and falls back to the first-order method.

**Vector outputs** (blocks U_i ∈ R^{d×c}). The unknowns are the active columns U_i[:, k] — the
nonzero ones ("per_output"), or every column of a nonzero block ("group") — ordered by output k.
Column j of output k_j has the design B_j = W_{i_j}X, the prediction is Z[:, k] = Σ_{j: k_j = k} B_j u_j,
and with the per-sample Hessian blocks H_s = ∇²_{z_s}L (c x c: I squared, diag(σ(1 − σ)) logistic,
diag(p_s) − p_sp_sᵀ cross-entropy) the fit Hessian has the blocks

    [Bᵀ∇²L B]_{jl} = B_jᵀ diag((H_s)_{k_j k_l}) B_l        (squared: B_jᵀB_l when k_j = k_l, else 0),

dense under the same :data:`MAX_NEWTON_DIM` on the number of unknowns. The penalty's groups are the
columns ("per_output") or the c columns of one block ("group"), each with the curvature
β(I − ûûᵀ)/‖u‖ on its entries. One output (U of shape (P, d)) is the case c = 1.
"""

from __future__ import annotations

import time

import torch

from ..data import check_memory
from ..operators import PatternOperator
from ..losses import SQUARED, Loss
from .fista import SmoothLoss, gated_gap, solve_gated_fista
from .result import SolverOutput

MAX_NEWTON_DIM = 4000  # unknowns (active columns x d) beyond which a dense Newton step costs too much
POLISH_FROM_GAP = 1e-3  # relative gap at which the first-order phase hands over to Newton


def _active_columns(U: torch.Tensor, vector_penalty: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(outputs k_j, patterns i_j, penalty groups) of the unknown columns of (P, d, c) blocks U.

    Columns are ordered by output, then pattern. Groups: (G, s) positions into the column list —
    one column each ("per_output"), or the c columns of each nonzero block ("group", s = c).
    """
    nonzero = U.norm(dim=1) > 0  # (P, c)
    if vector_penalty == "group":
        nonzero = nonzero.any(dim=1, keepdim=True).expand_as(nonzero)
    outputs, patterns = torch.nonzero(nonzero.T, as_tuple=True)
    m = int(outputs.numel())
    if vector_penalty == "group":
        groups = torch.arange(m, device=U.device).view(U.shape[2], -1).T
    else:
        groups = torch.arange(m, device=U.device)[:, None]
    return outputs, patterns, groups


def newton_polish(X: torch.Tensor, weights: torch.Tensor, y: torch.Tensor, beta: float, U: torch.Tensor,
                  max_iter: int = 30, rtol: float = 1e-13, loss: Loss = SQUARED,
                  vector_penalty: str = "per_output") -> torch.Tensor:
    """Polish U, (P, d) or (P, d, c) blocks, by damped Newton steps on its support; returns a new
    tensor of U's shape and dtype.

    X: (n, d), weights: (n, P) fit weights, y: targets of ``loss``, (n,) or (n, c). Computed in
    float64 on U's device. A damped step is taken when it decreases f, or (full step only) when it
    leaves f unchanged to round-off and halves ‖∇f‖. Stops when ‖∇f‖ ≤ rtol · max(‖Bᵀ∇L(0)‖, β),
    when no step is taken, or when a penalty group reaches zero.
    """
    U3 = U if U.ndim == 3 else U[:, :, None]
    n, d = X.shape
    c = U3.shape[2]
    outputs, patterns, groups = _active_columns(U3, vector_penalty)
    m = int(outputs.numel())
    if m == 0 or m * d > MAX_NEWTON_DIM:
        return U.clone()
    check_memory(8.0 * (n * m * d + (m * d) ** 2), f"Newton's method on {m} active columns of dimension {d}",
                 "pass a looser tol or fewer patterns.")
    f64 = dict(dtype=torch.float64, device=U.device)
    B = weights[:, patterns].to(**f64)[:, :, None] * X.to(**f64)[:, None, :]  # (n, m, d): column j's W_iX
    spans = [slice(int(lo) * d, int(hi) * d) for lo, hi in
             zip(torch.searchsorted(outputs, torch.arange(c, device=U.device)).tolist(),
                 torch.searchsorted(outputs, torch.arange(1, c + 1, device=U.device)).tolist())]
    smooth = SmoothLoss(loss, y.to(**f64).reshape(n, c))
    entries = (groups[:, :, None] * d + torch.arange(d, device=U.device)).reshape(groups.shape[0], -1)

    def predict(v: torch.Tensor) -> torch.Tensor:
        """Z[:, k] = Σ_{j: k_j = k} B_j u_j, an (n, c) tensor."""
        cols = (B * v.view(1, m, d)).sum(dim=2)  # (n, m)
        return torch.zeros(n, c, **f64).index_add_(1, outputs, cols)

    def fit_gradient(G: torch.Tensor) -> torch.Tensor:
        """[B_jᵀ G[:, k_j]]_j for G = ∇L(Z), flattened."""
        return (B * G[:, outputs, None]).sum(dim=0).reshape(m * d)

    def fit_hessian(H: torch.Tensor) -> torch.Tensor:
        """Bᵀ∇²L B from the per-sample blocks H (n, c, c); zero blocks are skipped."""
        Bf = B.reshape(n, m * d)
        out = torch.zeros(m * d, m * d, **f64)
        for k, rows in enumerate(spans):
            for k2, cols in enumerate(spans):
                h = H[:, k, k2]
                if rows.stop > rows.start and cols.stop > cols.start and bool(h.any()):
                    out[rows, cols] = Bf[:, rows].T @ (h[:, None] * Bf[:, cols])
        return out

    def value(v: torch.Tensor) -> float:
        return smooth.value(predict(v)) + beta * float(v[entries].norm(dim=1).sum())

    def gradient(v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """(∇f(v), Z, ‖group‖, unit groups): fit gradient plus β û on each group's entries (NaN at a zero group)."""
        blocks = v[entries]
        norms = blocks.norm(dim=1)
        unit = blocks / norms[:, None]
        Z = predict(v)
        grad = fit_gradient(smooth.value_and_gradient(Z)[1])
        grad[entries] += beta * unit
        return grad, Z, norms, unit

    u = U3[patterns, :, outputs].to(**f64).reshape(m * d)
    constant_hessian = fit_hessian(smooth.hessian_blocks(torch.zeros(n, c, **f64))) if smooth.squared else None
    f = value(u)
    scale = max(float(fit_gradient(smooth.value_and_gradient(torch.zeros(n, c, **f64))[1]).norm()), beta, 1e-300)
    size = entries.shape[1]  # entries per penalty group
    eye = torch.eye(size, **f64)
    group_index = (entries[:, :, None].expand(-1, -1, size), entries[:, None, :].expand(-1, size, -1))
    round_off = 4 * torch.finfo(torch.float64).eps
    for _ in range(max_iter):
        grad, Z, norms, unit = gradient(u)
        grad_norm = float(grad.norm())
        if bool((norms == 0).any()) or grad_norm <= rtol * scale:
            break
        H = constant_hessian.clone() if constant_hessian is not None else fit_hessian(smooth.hessian_blocks(Z))
        curv = beta * (eye[None] - unit[:, :, None] * unit[:, None, :]) / norms[:, None, None]
        H.index_put_(group_index, curv, accumulate=True)
        H.diagonal().add_(1e-14 * float(H.diagonal().max()))  # BᵀB may be singular
        step = torch.linalg.solve(H, -grad)
        t, improved = 1.0, False
        while t > 1e-8:
            trial = u + t * step
            f_trial = value(trial)
            # near the optimum f changes by less than its round-off: take the full step if it halves ‖∇f‖
            if f_trial < f or (t == 1.0 and f_trial <= f + round_off * abs(f)
                               and float(gradient(trial)[0].norm()) < 0.5 * grad_norm):
                u, f, improved = trial, f_trial, True
                break
            t *= 0.5
        if not improved:
            break
    out = torch.zeros_like(U3)
    out[patterns, :, outputs] = u.view(m, d).to(U.dtype)
    return out if U.ndim == 3 else out[:, :, 0]


def solve_gated_polished(op: PatternOperator, y: torch.Tensor, beta: float, weights: torch.Tensor,
                         tol: float = 1e-6, U0: torch.Tensor | None = None, loss: Loss = SQUARED,
                         vector_penalty: str = "per_output", **fista_options) -> SolverOutput:
    """FISTA to a relative gap of max(tol, 1e-3), Newton on the support, then FISTA again from the
    polished point if the gap over *all* blocks is still above ``tol`` (the support was not yet right).

    weights: (n, P) fit weights of the operator's patterns; loss: a loss of
    :data:`~cvxnn.solvers.fista.FISTA_LOSSES`; y of shape (n, c) gives (P, d, c) blocks with the
    groups of ``vector_penalty``. Newton is skipped (the second FISTA run then continues from the
    first one's point) when the active columns hold more than :data:`MAX_NEWTON_DIM` unknowns. The
    certificate is always FISTA's (:func:`~cvxnn.solvers.fista.gated_gap` over every pattern).
    """
    start = time.perf_counter()
    options = dict(loss=loss, vector_penalty=vector_penalty, **fista_options)
    first = solve_gated_fista(op, y, beta, U0=U0, tol=max(tol, POLISH_FROM_GAP), **options)
    if first.status != "optimal" or tol >= POLISH_FROM_GAP:
        return first
    U = torch.as_tensor(first.v, dtype=op.dtype, device=op.device)
    polished = newton_polish(op.X, weights, y, beta, U, loss=loss, vector_penalty=vector_penalty)
    primal, dual, _ = gated_gap(op, y.to(op.dtype), polished, beta, loss=loss, vector_penalty=vector_penalty)
    history = first.history + [(time.perf_counter() - start, primal, dual)]
    if primal - dual <= tol * max(abs(primal), 1e-300):
        return SolverOutput(polished.cpu().double().numpy(), 0.0 * first.w, "optimal", first.n_iter,
                            time.perf_counter() - start, history)
    rest = solve_gated_fista(op, y, beta, U0=polished, tol=tol, **options)
    offset = history[-1][0]
    return SolverOutput(rest.v, rest.w, rest.status, first.n_iter + rest.n_iter, time.perf_counter() - start,
                        history + [(offset + t, p, d) for t, p, d in rest.history])
