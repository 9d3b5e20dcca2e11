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

**The hinge** is nonsmooth, and Newton on Nesterov's smoothing (FISTA's) fails: its Hessian vanishes off the
margin band, so the Newton matrix is singular. Its second-order phase is a barrier path instead
(:func:`hinge_barrier_path`): the log-barrier smoothings of the hinge and of the group norms, both with
curvature everywhere, minimized by this Newton method for decreasing μ, certified against the true hinge
program at every stage.
"""

from __future__ import annotations

import math
import time
from typing import Any, Callable

import torch

from ..data import check_memory, fits_memory
from ..operators import PatternOperator
from ..losses import HINGE, SQUARED, Loss
from .fista import GroupNorm, SmoothLoss, gated_certificate, gated_gap, solve_gated_fista
from .gram import cholesky_solve
from .smoothing import BarrierHinge, BarrierNorm, HingeSmoothing, NesterovHinge
from .result import SolverOutput

MAX_NEWTON_DIM = 4000  # unknowns (active columns x d) beyond which a dense Newton step (vector outputs) costs too much
NEWTON_STEPS_ESTIMATE = 3  # Newton steps assumed when comparing the costs of two routes (scalar_route)
POLISH_FROM_GAP = 1e-3  # relative gap at which the first-order phase hands over to Newton
HINGE_POLISH_FROM_GAP = 0.2  # the same for the hinge, whose smoothed FISTA slows down as μ decreases (see
#                              _solve_hinge_polished)
BARRIER_DECREASE = 10.0  # hinge barrier path: μ ← μ / this per stage
BARRIER_NEAR = 0.05  # hinge barrier path: patterns within this fraction of their dual constraint join the set
BARRIER_GROW_MIN = 8  # hinge barrier path: patterns that may join at once, at least (else as many as the set has)
BARRIER_STAGES = 40  # hinge barrier path: most stages (Newton solves)
BARRIER_STALLS = 2  # hinge barrier path: stop after this many decreases of μ in a row that do not halve the gap
BARRIER_RTOL = 1e-10  # hinge barrier path: Newton's gradient tolerance per stage (as rtol of newton_polish) ...
BARRIER_RTOL_GAP = 1e-4  # ... or this fraction of the relative gap so far, when larger
WOODBURY_SHIFT = 1e-13  # relative shift of the blocks in _woodbury_step, removed by refinement
WOODBURY_REFINEMENTS = 4  # most refinement steps in _woodbury_step
WOODBURY_RTOL = 1e-10  # normwise backward error above which _woodbury_step hands over to the dense solve


def _active_columns(U: torch.Tensor, vector_penalty: str, include: torch.Tensor | None = None
                    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(outputs k_j, patterns i_j, penalty groups) of the unknown columns of (P, d, c) blocks U: the nonzero
    ones, and every column of the patterns ``include`` ((P,) boolean) when given.

    Columns are ordered by output, then pattern. Groups: (G, s) positions into the column list —
    one column each ("per_output"), or the c columns of each nonzero block ("group", s = c).
    """
    nonzero = U.norm(dim=1) > 0  # (P, c)
    if include is not None:
        nonzero = nonzero | include[:, None]
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
                  vector_penalty: str = "per_output", smoothing: HingeSmoothing | None = None,
                  norm_barrier: BarrierNorm | None = None, include: torch.Tensor | None = None) -> torch.Tensor:
    """Polish U, (P, d) or (P, d, c) blocks, by damped Newton steps on its support; returns a new
    tensor of U's shape and dtype.

    X: (n, d), weights: (n, P) fit weights, y: targets of ``loss``, (n,) or (n, c). Computed in
    float64 on U's device. A damped step is taken when it decreases f, or (full step only) when it
    leaves f unchanged to round-off and halves ‖∇f‖. Stops when ‖∇f‖ ≤ rtol · max(‖Bᵀ∇L(0)‖, β),
    when no step is taken, or when a penalty group reaches zero.

    Barrier path (the hinge, :func:`hinge_barrier_path`): ``smoothing`` replaces the loss by its smoothing
    (:class:`~cvxnn.solvers.fista.SmoothLoss`), ``norm_barrier`` each group's β‖·‖ by the smooth
    φ_μ(‖·‖) of :class:`~cvxnn.solvers.smoothing.BarrierNorm` (value, gradient (β/t_μ)u, curvature
    (β/t_μ)(I − ûûᵀ) + φ_μ''ûûᵀ), which lets groups pass through zero; then the patterns ``include`` are
    unknowns even where U is zero.

    (P, d) blocks with a smooth loss (no barrier) on m active blocks take the cheaper of two routes
    (:func:`scalar_route`): :func:`_polish_scalar`, which never forms the md x md matrix but factors n x n ones,
    or the md x md matrix below; where neither fits in memory, U is returned unpolished (the caller's
    first-order method then continues). The rest forms the md x md matrix and skips Newton beyond
    :data:`MAX_NEWTON_DIM` unknowns.
    """
    if U.ndim == 2 and norm_barrier is None and smoothing is None and loss.smooth:
        route = scalar_route(X.shape[0], X.shape[1], int((U.norm(dim=1) > 0).sum()), loss.name == "squared",
                             U.device)
        if route == "samples":
            return _polish_scalar(X, weights, y, beta, U, max_iter, rtol, loss)
        if route is None:
            return U.clone()
    U3 = U if U.ndim == 3 else U[:, :, None]
    n, d = X.shape
    c = U3.shape[2]
    outputs, patterns, groups = _active_columns(U3, vector_penalty, None if norm_barrier is None else include)
    m = int(outputs.numel())
    if m == 0 or m * d > MAX_NEWTON_DIM:
        return U.clone()
    check_memory(8.0 * (n * m * d + (m * d) ** 2), f"Newton's method on {m} active columns of dimension {d}",
                 "pass a looser tol or fewer patterns.", device=U.device)
    f64 = dict(dtype=torch.float64, device=U.device)
    B = weights[:, patterns].to(**f64)[:, :, None] * X.to(**f64)[:, None, :]  # (n, m, d): column j's W_iX
    spans = output_spans(outputs, c, d)
    smooth = SmoothLoss(loss, y.to(**f64).reshape(n, c), smoothing)
    entries = (groups[:, :, None] * d + torch.arange(d, device=U.device)).reshape(groups.shape[0], -1)

    def predict(v: torch.Tensor) -> torch.Tensor:
        """Z[:, k] = Σ_{j: k_j = k} B_j u_j, an (n, c) tensor."""
        cols = (B * v.view(1, m, d)).sum(dim=2)  # (n, m)
        return torch.zeros(n, c, **f64).index_add_(1, outputs, cols)

    def fit_gradient(G: torch.Tensor) -> torch.Tensor:
        """[B_jᵀ G[:, k_j]]_j for G = ∇L(Z), flattened."""
        return (B * G[:, outputs, None]).sum(dim=0).reshape(m * d)

    def value(v: torch.Tensor) -> float:
        norms = v[entries].norm(dim=1)
        penalty = beta * norms.sum() if norm_barrier is None else norm_barrier.value(norms).sum()
        return smooth.value(predict(v)) + float(penalty)

    def gradient(v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """(∇f(v), Z, ‖group‖, unit groups): fit gradient plus the penalty's, β û on each group's entries
        (NaN at a zero group) or (β/t_μ) u with the norm barrier."""
        blocks = v[entries]
        norms = blocks.norm(dim=1)
        unit = blocks / (norms[:, None] if norm_barrier is None else norms.clamp(min=1e-300)[:, None])
        Z = predict(v)
        grad = fit_gradient(smooth.value_and_gradient(Z)[1])
        grad[entries] += beta * unit if norm_barrier is None else norm_barrier.coefficients(norms)[0][:, None] * blocks
        return grad, Z, norms, unit

    u = U3[patterns, :, outputs].to(**f64).reshape(m * d)
    constant_hessian = fit_hessian(B.reshape(n, m * d), spans, smooth.hessian_blocks(torch.zeros(n, c, **f64))) \
        if smooth.squared else None
    f = value(u)
    scale = max(float(fit_gradient(smooth.value_and_gradient(torch.zeros(n, c, **f64))[1]).norm()), beta, 1e-300)
    size = entries.shape[1]  # entries per penalty group
    eye = torch.eye(size, **f64)
    group_index = (entries[:, :, None].expand(-1, -1, size), entries[:, None, :].expand(-1, size, -1))
    # with the barriers (hinge: diagonal loss curvature) and fewer fit rows than unknowns, Woodbury is cheaper
    design = None
    if norm_barrier is not None and smooth.hinge and n * c < m * d:
        design = torch.zeros(n, c, m, d, **f64)
        design[:, outputs, torch.arange(m, device=U.device)] = B
        design = design.reshape(n * c, m * d)
    for _ in range(max_iter):
        grad, Z, norms, unit = gradient(u)
        grad_norm = float(grad.norm())
        if (norm_barrier is None and bool((norms == 0).any())) or grad_norm <= rtol * scale:
            break
        radial_part = unit[:, :, None] * unit[:, None, :]
        if norm_barrier is None:
            curv = beta * (eye[None] - radial_part) / norms[:, None, None]
        else:
            tangential, radial = norm_barrier.coefficients(norms)
            curv = tangential[:, None, None] * (eye[None] - radial_part) + radial[:, None, None] * radial_part
        step = None if design is None else \
            _woodbury_step(design, smooth.hessian_blocks(Z).diagonal(dim1=1, dim2=2).reshape(-1), curv, entries, -grad)
        if step is None:
            H = constant_hessian.clone() if constant_hessian is not None else \
                fit_hessian(B.reshape(n, m * d), spans, smooth.hessian_blocks(Z))
            H.index_put_(group_index, curv, accumulate=True)
            H.diagonal().add_(1e-14 * float(H.diagonal().max()))  # BᵀB may be singular
            step = torch.linalg.solve(H, -grad)
        taken = _damped_step(u, f, step, grad_norm, value, lambda v: float(gradient(v)[0].norm()))
        if taken is None:
            break
        u, f = taken
    out = torch.zeros_like(U3)
    out[patterns, :, outputs] = u.view(m, d).to(U.dtype)
    return out if U.ndim == 3 else out[:, :, 0]


def scalar_route(n: int, d: int, m: int, squared: bool, device: Any, steps: int = NEWTON_STEPS_ESTIMATE
                 ) -> str | None:
    """How :func:`newton_polish` solves the Newton systems of m active (d-dimensional) blocks of one output on n
    samples: "samples" (:func:`_polish_scalar`: per step an n x n Woodbury matrix, about n²m + n³/3 multiply-adds,
    in 2n² + 4nm floats), "blocks" (the md x md matrix: its fit part n(md)², once for the squared loss and
    otherwise per step, plus (md)³/3 per step, in 2nmd + 2(md)² floats; at most :data:`MAX_NEWTON_DIM`
    unknowns), whichever costs less over ``steps`` steps among those that fit in memory, or None where neither
    does. The samples route wins while n is small (planted n = 2000, P = 100: 9e9 against 2e10), the blocks route
    at large n (n = 10 000, P = 100, d = 20: 5e10 against 1e12, and n x n matrices of 0.8 GB)."""
    q = m * d
    blocks = (n * q * q * (1 if squared else steps) + steps * q ** 3 / 3.0
              if q <= MAX_NEWTON_DIM and fits_memory(8.0 * (2 * n * q + 2 * q * q), device) else math.inf)
    samples = steps * (n * n * m + n ** 3 / 3.0) if fits_memory(8.0 * (2 * n * n + 4 * n * m), device) else math.inf
    if min(blocks, samples) == math.inf:
        return None
    return "samples" if samples <= blocks else "blocks"


def output_spans(outputs: torch.Tensor, c: int, width: int) -> list[slice]:
    """The unknowns of each output k, for unknowns ordered by their output ``outputs`` (sorted) in groups of
    ``width`` entries: slices into the flattened unknowns."""
    ends = torch.searchsorted(outputs, torch.arange(c + 1, device=outputs.device)).tolist()
    return [slice(lo * width, hi * width) for lo, hi in zip(ends[:-1], ends[1:])]


def fit_hessian(B: torch.Tensor, spans: list[slice], H: torch.Tensor) -> torch.Tensor:
    """Bᵀ∇²L B for the design B (n, unknowns) whose unknowns of output k are ``spans[k]``, from the per-sample
    Hessian blocks H (n, c, c): block (k, k') is B_kᵀ diag(H[:, k, k']) B_k'; zero blocks are skipped."""
    q = B.shape[1]
    out = torch.zeros(q, q, dtype=B.dtype, device=B.device)
    for k, rows in enumerate(spans):
        for k2, cols in enumerate(spans):
            h = H[:, k, k2]
            if rows.stop > rows.start and cols.stop > cols.start and bool(h.any()):
                out[rows, cols] = B[:, rows].T @ (h[:, None] * B[:, cols])
    return out


def _damped_step(u: torch.Tensor, f: float, step: torch.Tensor, grad_norm: float, value: Callable,
                 gradient_norm: Callable, smallest: float = 1e-8) -> tuple[torch.Tensor, float] | None:
    """(u + t·step, f(u + t·step)) for the first t = 1, ½, ¼, ... (t > ``smallest``) that decreases f, or at t = 1
    leaves f unchanged to round-off (near the optimum f changes by less than that) and halves ‖∇f‖; None if none
    does."""
    round_off = 4 * torch.finfo(torch.float64).eps
    t = 1.0
    while t > smallest:
        trial = u + t * step
        f_trial = value(trial)
        if f_trial < f or (t == 1.0 and f_trial <= f + round_off * abs(f) and gradient_norm(trial) < 0.5 * grad_norm):
            return trial, f_trial
        t *= 0.5
    return None


def _polish_scalar(X: torch.Tensor, weights: torch.Tensor, y: torch.Tensor, beta: float, U: torch.Tensor,
                   max_iter: int, rtol: float, loss: Loss) -> torch.Tensor:
    """:func:`newton_polish` for (P, d) blocks and a smooth loss of one output, matrix-free: the Newton system is
    solved by :func:`_support_newton_step` (n x n and m x m factors), never as an md x md matrix, so no
    :data:`MAX_NEWTON_DIM` applies. Stops as :func:`newton_polish`, or when the Newton system is singular."""
    f64 = dict(dtype=torch.float64, device=U.device)
    support = torch.nonzero(U.norm(dim=1) > 0).flatten()
    n, m = X.shape[0], int(support.numel())
    if m == 0:
        return U.clone()
    check_memory(8.0 * (2 * n * n + 4 * n * m), f"Newton's method on {m} active blocks", "pass a looser tol.",
                 device=U.device)
    X64, Ws = X.to(**f64), weights[:, support].to(**f64)
    smooth = SmoothLoss(loss, y.to(**f64))
    gram = X64 @ X64.T

    def predict(V: torch.Tensor) -> torch.Tensor:
        """Σ_j W_jXv_j = rowsum(W_S ∘ XVᵀ)."""
        return (Ws * (X64 @ V.T)).sum(dim=1)

    def adjoint(r: torch.Tensor) -> torch.Tensor:
        """[(W_jX)ᵀr]_j = (W_S ∘ r1ᵀ)ᵀX, an (m, d) tensor."""
        return (Ws * r[:, None]).T @ X64

    def value(V: torch.Tensor) -> float:
        return smooth.value(predict(V)) + beta * float(V.norm(dim=1).sum())

    def gradient(V: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(∇f(V), the prediction)."""
        z = predict(V)
        return adjoint(smooth.value_and_gradient(z)[1]) + beta * V / V.norm(dim=1, keepdim=True), z

    u = U[support].to(**f64)
    f = value(u)
    scale = max(float(adjoint(smooth.value_and_gradient(torch.zeros(n, **f64))[1]).norm()), beta, 1e-300)
    for _ in range(max_iter):
        grad, z = gradient(u)
        grad_norm = float(grad.norm())
        if bool((u.norm(dim=1) == 0).any()) or grad_norm <= rtol * scale:
            break
        norms = u.norm(dim=1)
        step = _support_newton_step(X64, Ws, gram, smooth.hessian_blocks(z).reshape(n), beta / norms,
                                    torch.zeros_like(norms), u / norms[:, None], -grad, predict, adjoint)
        if step is None:
            break
        taken = _damped_step(u, f, step, grad_norm, value, lambda V: float(gradient(V)[0].norm()))
        if taken is None:
            break
        u, f = taken
    out = torch.zeros_like(U)
    out[support] = u.to(U.dtype)
    return out


def _support_newton_step(X: torch.Tensor, Ws: torch.Tensor, gram: torch.Tensor, h: torch.Tensor,
                         tangential: torch.Tensor, radial: torch.Tensor, unit: torch.Tensor, b: torch.Tensor,
                         predict: Callable, adjoint: Callable) -> torch.Tensor | None:
    """H⁻¹b for the Hessian H = BᵀΛB + R of a gated program on m blocks (rows of b), by two Woodbury identities;
    None when H is numerically singular.

    B = [W_jX]_j (n x md, applied by ``predict`` and ``adjoint``), Λ = diag(h) the loss curvature and
    R = blockdiag_j τ_j(I − û_jû_jᵀ) + ρ_jû_jû_jᵀ with τ = ``tangential`` > 0, 0 ≤ ρ = ``radial`` ≤ τ and the unit
    vectors û = ``unit`` (rows; zero rows allowed where ρ = τ): the penalty's curvature, β(I − ûûᵀ)/‖u‖ for β‖u‖
    (ρ = 0), or the barrier smoothing's (:class:`~cvxnn.solvers.smoothing.BarrierNorm`). Writing
    R = D − ÛCÛᵀ with D = blockdiag_j τ_jI, Û = blockdiag_j û_j (md x m), C = diag_j (τ_j − ρ_j), and
    H_D = BᵀΛB + D (positive definite):

        H_D⁻¹ = D⁻¹ − D⁻¹BᵀΛ^½ K⁻¹ Λ^½BD⁻¹,  K = I + Λ^½BD⁻¹BᵀΛ^½ = I + Λ^½[(W_S diag(1/τ) W_Sᵀ) ∘ XXᵀ]Λ^½  (n x n)
        H⁻¹   = H_D⁻¹ + H_D⁻¹Û S⁻¹ ÛᵀH_D⁻¹,   S = C⁻¹ − ÛᵀH_D⁻¹Û = diag(ρ/(τ(τ − ρ))) + GᵀK⁻¹G,
        G = Λ^½BD⁻¹Û  (column j: Λ^½(W_jXû_j)/τ_j),

    (ÛᵀD⁻¹Û = diag(1/τ), and C⁻¹ − 1/τ = ρ/(τ(τ − ρ)), so S is formed without cancellation); blocks with
    τ − ρ ≤ 1e-12·τ (a barrier's nearly isotropic curvature at u ≈ 0) keep R = D, which the refinement corrects.
    With ρ = 0, S is singular exactly when H is: Sa = 0 iff Ga = 0 iff Σ_j a_jû_j lies in the null spaces of
    both B and R. Cost O(n²m + n³ + nm² + m³), against (md)³ for the dense matrix. One step of iterative
    refinement against the exact H (applied matrix-free) follows.
    """
    root = h.clamp(min=0.0).sqrt()
    inv_d = 1.0 / tangential  # D⁻¹ per block
    K = (Ws * inv_d) @ Ws.T
    K.mul_(gram).mul_(root[:, None] * root[None, :]).diagonal().add_(1.0)
    LK, info = torch.linalg.cholesky_ex(K)
    if int(info):
        return None
    rank_one = torch.nonzero(tangential - radial > 1e-12 * tangential).flatten()
    Us = unit[rank_one]
    LS = None
    if rank_one.numel():
        G = root[:, None] * Ws[:, rank_one] * (X @ Us.T) * inv_d[rank_one]
        half = torch.linalg.solve_triangular(LK, G, upper=False)  # K⁻¹ = L⁻ᵀL⁻¹: S = (L⁻¹G)ᵀ(L⁻¹G)
        S = half.T @ half
        S.diagonal().add_(radial[rank_one] / (tangential[rank_one] * (tangential - radial)[rank_one])
                          + 1e-14 * float(S.diagonal().max()))  # G may be (numerically) rank deficient
        LS, info = torch.linalg.cholesky_ex(S)
        if int(info):
            return None

    def solve_d(v: torch.Tensor) -> torch.Tensor:
        """H_D⁻¹v for v of shape (m, d)."""
        w = inv_d[:, None] * v
        q = cholesky_solve(LK, (root * predict(w))[:, None])[:, 0]
        return w - inv_d[:, None] * adjoint(root * q)

    def solve(v: torch.Tensor) -> torch.Tensor:
        x = solve_d(v)
        if LS is None:
            return x
        a = cholesky_solve(LS, (Us * x[rank_one]).sum(dim=1)[:, None])
        return x + solve_d(torch.zeros_like(v).index_copy_(0, rank_one, a * Us))

    def hessian(v: torch.Tensor) -> torch.Tensor:
        along = (unit * v).sum(dim=1, keepdim=True)
        return adjoint(h * predict(v)) + tangential[:, None] * (v - unit * along) + radial[:, None] * unit * along

    x = solve(b)
    x = x + solve(b - hessian(x))
    return x if bool(torch.isfinite(x).all()) else None


def _woodbury_step(A: torch.Tensor, h: torch.Tensor, curv: torch.Tensor, entries: torch.Tensor, b: torch.Tensor
                   ) -> torch.Tensor | None:
    """(AᵀHA + R)⁻¹ b for H = diag(h) ≥ 0 and R block diagonal (blocks ``curv`` on the unknowns ``entries``, each
    positive definite), by Woodbury: R⁻¹ − R⁻¹Aᵀ√H K⁻¹ √HAR⁻¹ with K = I + √HAR⁻¹Aᵀ√H (A's rows, not unknowns);
    None when that is not accurate.

    As in the interior-point method, R's blocks are nearly singular along u near the solution (barrier curvature
    ~μ/‖u‖²), so they are factored with a relative shift of :data:`WOODBURY_SHIFT` and the solution is refined
    against the exact matrix (at most :data:`WOODBURY_REFINEMENTS` steps, while each at least halves the residual).
    Small μ still defeats it (measured: near μ ~ 1e-8 the residual stays large), so a normwise backward error
    ‖b − Mx‖/(‖M‖‖x‖ + ‖b‖) above :data:`WOODBURY_RTOL` returns None and the caller solves the dense system
    (‖M‖ bounded by max(h)‖A‖_F² + max_j‖R_j‖_F). The backward error, not ‖b − Mx‖/‖b‖, is what a dense solve
    guarantees: on a test system of condition 4e8 the dense LU solve itself leaves ‖b − Mx‖/‖b‖ = 1.6e-9 on
    one machine (AVX-512 MKL kernels) and below 1e-10 on another.
    """
    size = curv.shape[-1]
    shift = WOODBURY_SHIFT * curv.diagonal(dim1=-2, dim2=-1).amax(dim=-1)[:, None, None]
    L = torch.linalg.cholesky(curv + shift * torch.eye(size, dtype=curv.dtype, device=curv.device))

    def block_solve(v: torch.Tensor) -> torch.Tensor:
        """R_shifted⁻¹ v for v of shape (N,) or (N, k)."""
        out = torch.zeros_like(v)
        out[entries] = torch.cholesky_solve(v[entries].reshape(*entries.shape, -1), L).reshape(out[entries].shape)
        return out

    root = h.clamp(min=0.0).sqrt()
    K = torch.eye(A.shape[0], dtype=A.dtype, device=A.device) + root[:, None] * (A @ block_solve(A.T)) * root
    LK = torch.linalg.cholesky(K)

    def woodbury(v: torch.Tensor) -> torch.Tensor:
        r = block_solve(v)
        q = torch.cholesky_solve((root * (A @ r))[:, None], LK)[:, 0]
        return r - block_solve(A.T @ (root * q))

    def matvec(x: torch.Tensor) -> torch.Tensor:
        out = A.T @ (h * (A @ x))
        out[entries] += (curv @ x[entries][..., None])[..., 0]
        return out

    x, scale = woodbury(b), float(b.norm())
    bound = float(h.max()) * float(A.norm()) ** 2 + float(curv.norm(dim=(-2, -1)).max())  # ≥ ‖M‖₂
    best, best_size = x, math.inf
    for _ in range(WOODBURY_REFINEMENTS + 1):
        residual = b - matvec(x)
        size_r = float(residual.norm())
        if size_r > 0.5 * best_size:
            break
        best, best_size = x, size_r
        if size_r <= torch.finfo(b.dtype).eps * scale:
            break
        x = x + woodbury(residual)
    return best if best_size <= WOODBURY_RTOL * (bound * float(best.norm()) + scale) else None


def hinge_barrier_path(op: PatternOperator, y: torch.Tensor, beta: float, weights: torch.Tensor, U: torch.Tensor,
                       include: torch.Tensor, tol: float, mu: float, vector_penalty: str = "per_output",
                       time_limit: float | None = None, callback: Callable | None = None
                       ) -> tuple[torch.Tensor, list, torch.Tensor | None, str]:
    """Second-order phase of the gated program with the hinge: barrier path following on a set S of patterns.

    Minimizes Σ_k ψ_μ(1 − y_k z_k) + Σ_g φ_μ(‖U_g‖) (:class:`~cvxnn.solvers.smoothing.BarrierHinge`,
    :class:`~cvxnn.solvers.smoothing.BarrierNorm`: both smooth with curvature everywhere, unlike Nesterov's
    smoothing, whose Newton matrix is singular off the margin band) by :func:`newton_polish` over the blocks of
    S (``include``, (P,) boolean; the other blocks are set to zero), then divides μ by :data:`BARRIER_DECREASE`. After
    each Newton solve the certificate of the true hinge program is computed over *every* pattern (λ = y∘ψ_μ',
    scaled into the constraints; :func:`~cvxnn.solvers.fista.gated_certificate`). Patterns outside S whose
    constraint reaches (1 − :data:`BARRIER_NEAR`)β join S (the most violated ones, at most max(|S|,
    :data:`BARRIER_GROW_MIN`) at a time), and μ
    stays for one more solve (the restricted problem's dual point need not satisfy their constraints). S only
    grows, so at most P solves keep μ. Status "optimal" when the relative gap ≤ tol; "stalled" when
    :data:`BARRIER_STALLS` decreases of μ in a row did not halve the gap (the gap is about nμ, and near
    μ ~ 1e-9 the Newton steps lose the accuracy the certificate needs: measured floor ≈ 2e-7 on breast cancer,
    P = 100); "incomplete" after :data:`BARRIER_STAGES` solves, at ``time_limit`` seconds, or when S holds more
    than :data:`MAX_NEWTON_DIM` unknowns.

    Returns (the best iterate, its history (seconds from the call, objective, best lower bound), the dual point
    θ of the best lower bound, the status). ``callback(stage, objective, lower_bound)``.
    """
    start = time.perf_counter()
    smoothing = BarrierHinge(mu)
    smooth = SmoothLoss(HINGE, y, smoothing)
    penalty = GroupNorm.of(vector_penalty, U.ndim == 3)
    columns = op.d * (1 if U.ndim == 2 else U.shape[2])
    U = torch.where(include.view(-1, *[1] * (U.ndim - 1)), U, 0.0)
    best_U, best_primal, best_lower, theta = U, math.inf, -math.inf, None
    history: list[tuple[float, float, float]] = []
    decreased, gap_before, stalls = False, math.inf, 0
    for stage in range(BARRIER_STAGES):
        if int(include.sum()) * columns > MAX_NEWTON_DIM or \
                (time_limit is not None and time.perf_counter() - start > time_limit):
            break
        # a stage needs its gradient small against the gap it can certify, not more (measured: 6.3 s instead of
        # 8.0 s on breast cancer; 1e-2 instead of 1e-4 stalled the path)
        rtol = BARRIER_RTOL if not history else \
            max(BARRIER_RTOL, BARRIER_RTOL_GAP * (best_primal - best_lower) / max(abs(best_primal), 1e-300))
        U = newton_polish(op.X, weights, y, beta, U, rtol=rtol, loss=HINGE, vector_penalty=vector_penalty,
                          smoothing=smoothing, norm_barrier=BarrierNorm(beta, smoothing.mu), include=include)
        cert = gated_certificate(op, y, U, beta, loss=smooth, penalty=penalty)
        if cert.primal < best_primal:
            best_U, best_primal = U, cert.primal
        if cert.dual > best_lower:
            best_lower, theta = cert.dual, cert.scale * cert.lam
        history.append((time.perf_counter() - start, cert.primal, best_lower))
        if callback is not None:
            callback(stage, best_primal, best_lower)
        gap = best_primal - best_lower
        if gap <= tol * max(abs(best_primal), 1e-300):
            return best_U, history, theta, "optimal"
        if decreased:
            stalls = stalls + 1 if gap > 0.5 * gap_before else 0
            if stalls >= BARRIER_STALLS:
                return best_U, history, theta, "stalled"
        norms = cert.norms.to(include.device)
        grow = (norms >= (1 - BARRIER_NEAR) * beta) & ~include
        limit = max(int(include.sum()), BARRIER_GROW_MIN)
        if int(grow.sum()) > limit:  # the most violated ones
            top = torch.topk(torch.where(grow, norms, -1.0), limit).indices
            grow = torch.zeros_like(grow).index_fill_(0, top, True)
        decreased = not bool(grow.any())
        if decreased:
            gap_before = gap
            smoothing.mu /= BARRIER_DECREASE
        include = include | grow
    return best_U, history, theta, "incomplete"


def solve_gated_polished(op: PatternOperator, y: torch.Tensor, beta: float, weights: torch.Tensor,
                         tol: float = 1e-6, U0: torch.Tensor | None = None, loss: Loss = SQUARED,
                         vector_penalty: str = "per_output", **fista_options) -> SolverOutput:
    """FISTA to a relative gap of max(tol, 1e-3), Newton on the support, then FISTA again from the
    polished point if the gap over *all* blocks is still above ``tol`` (the support was not yet right).

    weights: (n, P) fit weights of the operator's patterns; loss: a loss of
    :data:`~cvxnn.solvers.fista.FISTA_LOSSES`; y of shape (n, c) gives (P, d, c) blocks with the
    groups of ``vector_penalty``. With vector outputs Newton is skipped (the second FISTA run then continues
    from the first one's point) when the active columns hold more than :data:`MAX_NEWTON_DIM` unknowns. The
    certificate is always FISTA's (:func:`~cvxnn.solvers.fista.gated_gap` over every pattern).
    The hinge takes :func:`_solve_hinge_polished` (FISTA on its smoothing, then a barrier path).
    """
    start = time.perf_counter()
    options = dict(loss=loss, vector_penalty=vector_penalty, **fista_options)
    if not loss.smooth:
        return _solve_hinge_polished(op, y, beta, tol, U0, options)
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


def _solve_hinge_polished(op: PatternOperator, y: torch.Tensor, beta: float, tol: float, U0: torch.Tensor | None,
                          options: dict) -> SolverOutput:
    """The hinge in :func:`solve_gated_polished`: FISTA with Nesterov smoothing and continuation to a relative gap of
    max(tol, :data:`HINGE_POLISH_FROM_GAP`), the barrier path (:func:`hinge_barrier_path`) from μ = gap/n, then,
    if the path ended "incomplete", FISTA again (from the better point, with the first run's final smoothing);
    a "stalled" path returns its best point with that status.
    ``time_limit`` covers the three phases; the returned ``dual`` is the dual point of the best lower bound.

    The path starts from the patterns near their constraint at FISTA's own dual point. Measured (tol 1e-6,
    float64, one thread): handing over at a relative gap of 0.2 took 0.15-0.5 s on six problems with n = 60,
    P = 50 (FISTA needs 200-2000 iterations for it), against 0.8-3.0 s at 1e-2 (4500-18000 iterations);
    breast cancer (P = 100), 6 s against 31 s. Most of the rest is the path's Newton steps."""
    start = time.perf_counter()
    time_limit, callback = options.get("time_limit"), options.get("callback")

    def remaining() -> dict:
        left = None if time_limit is None else max(time_limit - (time.perf_counter() - start), 0.0)
        return dict(options, time_limit=left)

    first = solve_gated_fista(op, y, beta, U0=U0, tol=max(tol, HINGE_POLISH_FROM_GAP), **options)
    if first.status != "optimal" or tol >= HINGE_POLISH_FROM_GAP:
        return first
    primal, lower = first.info["objective"], first.info["lower_bound"]
    op64 = op if op.dtype == torch.float64 else \
        PatternOperator(op.X.double(), op.masks, device=op.device, activation=op.activation)
    U, y64 = torch.as_tensor(first.v, dtype=torch.float64, device=op.device), y.double()
    # the candidates: patterns near their dual constraint at FISTA's own (Nesterov) dual point
    cert = gated_certificate(op64, y64, U, beta,
                             loss=SmoothLoss(options["loss"], y64, NesterovHinge(first.info["smoothing"])),
                             penalty=GroupNorm.of(options["vector_penalty"], U.ndim == 3))
    include = (cert.scale * cert.norms >= (1 - BARRIER_NEAR) * beta).to(op.device)
    weights64 = torch.as_tensor(op.activation.fit_weights(op.masks.cpu().numpy()), dtype=torch.float64,
                                device=op.device)  # exact, not rounded to op.dtype
    U, path, theta, status = hinge_barrier_path(
        op64, y64, beta, weights64, U, include, tol, max(primal - lower, 0.0) / y.numel(),
        options["vector_penalty"], remaining()["time_limit"],
        None if callback is None else lambda stage, upper, lower: callback(first.n_iter + stage, upper, lower))
    offset = time.perf_counter() - start - (path[-1][0] if path else 0.0)  # when the path started
    history = first.history + [(offset + t, p, max(d, lower)) for t, p, d in path]
    dual = theta.cpu().numpy() if path and path[-1][2] > lower else first.dual
    V = U.cpu().numpy() if path and min(h[1] for h in path) < primal else first.v
    if status != "incomplete":  # optimal, or stalled at a gap that FISTA would not improve
        return SolverOutput(V, 0.0 * first.w, status, first.n_iter, time.perf_counter() - start, history, dual=dual)
    rest = solve_gated_fista(op, y, beta, U0=torch.as_tensor(V, dtype=op.dtype, device=op.device), tol=tol,
                             smoothing=first.info["smoothing"], **remaining())
    offset, lower = history[-1][0], history[-1][2]
    history += [(offset + t, p, max(d, lower)) for t, p, d in rest.history]
    if rest.info["lower_bound"] > lower:
        dual = rest.dual
    return SolverOutput(rest.v, rest.w, rest.status, first.n_iter + rest.n_iter, time.perf_counter() - start,
                        history, dual=dual, info=rest.info)
