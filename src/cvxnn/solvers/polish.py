"""Active-set Newton polish of the ReLU program's interior-point iterates: an exact solve on the optimal face.

The interior-point method (:mod:`~cvxnn.solvers.interior_point`) certifies with Λ = −∇L(A(U)) at its iterate,
and a group's dual value ‖Π_K(s_jXᵀW_iΛ)‖ moves with ‖X‖ ~ √n times the error in the prediction. So the
lower bound needs an iterate far more accurate than its objective: on a planted problem with n = 8000, P = 20
the iterate was 5e-9 above the optimum, yet Λ exceeded β by 3.9e-4 and the certified gap stayed at 1e-4
while the Newton systems (barrier curvatures m/g up to 1e18) had lost the accuracy to go further.

Near the solution the iterate shows which cone rows are binding and which groups are zero. With those
fixed, the program is smooth and well conditioned, and Newton's method solves it to round-off in a
step or two:

* a row k of column (j, k') is **active** when its scaled slack is below its scaled multiplier,
  g_k/(‖x_k‖‖U_g‖) < m_k‖x_k‖/β (both are dimensionless, and their product tends to 0); a group is **zero**
  when ‖U_g‖ ≤ ZERO_GROUP · max_g ‖U_g‖;
* on the face {x_kᵀu = 0, k active} each column of a nonzero group is u = Bz, B an orthonormal basis of
  the null space of X_A (the eigenvectors of X_AᵀX_A with eigenvalue ≤ NULL_TOL · the largest);
* the face's program min_z F(z) = L(Zz) + β Σ_g ‖z_g‖ (Z: the columns s_jW_iXb, one per free
  coordinate, into the output of its column; ‖u_g‖ = ‖z_g‖ as B is orthonormal) has the gradient
  Zᵀ∇L + βz_g/‖z_g‖ and the Hessian ZᵀHZ + (β/‖z_g‖)(I − ẑ_gẑ_gᵀ) per group (H the per-sample Hessian
  blocks of L): damped Newton steps;
* the active set is repaired as it goes: a step that reaches an inactive row stops there (a ratio test: the
  cone values are linear in z) and the row joins the active set; at the face's optimum an active row whose
  multiplier (below) is negative leaves it; each change starts a new face, up to ROUNDS (planted n = 100 000,
  P = 20: 10 faces, two of them fixing a near-zero group at zero by all its rows at once);
* at the face's optimum the stationarity on each nonzero column, v + X_AᵀS_Am = βu/‖U_g‖ with
  v = s_jXᵀW_iΛ, is solved by the least-norm multipliers m_A = S_AX_A(X_AᵀX_A)⁺(βu/‖U_g‖ − v) (X_AᵀX_A
  inverted on its range), clipped at 0. With the multipliers of the zero groups kept from the iterate, the
  interior-point certificate (‖v + XᵀS_im‖ per group, exact cone projections where above β) applies as it is.

Nothing here is trusted: a wrong active set gives a point that is feasible but not optimal, or multipliers
whose bounds exceed β, and the certificate then says so. The same problem at n = 8000 certifies 5e-12.
"""

from __future__ import annotations

import math

import torch

from ..operators import PatternOperator
from .fista import SmoothLoss
from .newton import _damped_step, fit_hessian, output_spans
from .result import RESOLUTION

ZERO_GROUP = 1e-7  # groups with ‖U_g‖ below this fraction of the largest are held at zero
NULL_TOL = 1e-11  # eigenvalues of X_AᵀX_A up to this fraction of the largest span the face's directions
START_SLACK = 1e-12  # inactive rows may start at −this · ‖x_k‖‖U_g‖ (those in the span of the active rows sit at 0)
NEGATIVE = 1e-9  # a multiplier with m_k‖x_k‖/β below −this leaves the active set
ROUNDS = 20  # faces tried at most (each change of the active set starts a new one)
STEPS = 10  # Newton steps per face at most
MEMORY_BYTES = 256 * 2**20  # the Hessian (free coordinates squared) at most: larger faces are not polished
CHUNK_BYTES = 64 * 2**20  # the rows of the design Z formed at once


class _Face:
    """The face {S_iXu = 0 on the active rows} of the blocks (2, P, d, c): its coordinates z (one per free direction
    b_v of a nonzero column, ordered by output), their design Z = [s_jW_iXb_v] (formed CHUNK_BYTES of samples at a
    time, never whole) and penalty groups."""

    def __init__(self, op: PatternOperator, weights: torch.Tensor, XX: torch.Tensor, active: torch.Tensor,
                 nonzero: torch.Tensor, shape: torch.Size, grouped: bool) -> None:
        two, P, d, c = self.shape = shape
        self.op, self.weights = op, weights
        gram = (active.permute(0, 2, 3, 1).reshape(-1, op.n).to(op.dtype) @ XX).view(two, P, c, d, d)  # X_AᵀX_A
        self.evals, self.evecs = torch.linalg.eigh(gram)
        free = (self.evals <= NULL_TOL * self.evals[..., -1:]) & nonzero[..., None]  # (2, P, c, d)
        self.column, self.side, self.pattern, e = torch.nonzero(free.permute(2, 0, 1, 3), as_tuple=True)
        self.q = int(self.side.numel())
        self.spans = output_spans(self.column, c, 1)
        self.has_free = free.any(dim=3)  # (2, P, c): columns with a free direction
        self.solvable = 0 < self.q and 8.0 * self.q ** 2 <= MEMORY_BYTES
        self.basis = self.evecs[self.side, self.pattern, self.column, :, e]  # (q, d): b_v
        self.sign = 1.0 - 2.0 * self.side.to(op.dtype)
        step = max(1, CHUNK_BYTES // (8 * max(self.q, 1)))
        self.chunks = [slice(a, min(a + step, op.n)) for a in range(0, op.n, step)]
        key = self.side * P + self.pattern
        self.group = torch.unique(key if grouped else key * c + self.column, return_inverse=True)[1]
        self.same = self.group[:, None] == self.group[None, :]

    def design(self, rows: slice) -> torch.Tensor:
        """Z on the samples ``rows``: (rows, q)."""
        return (self.op.X[rows] @ self.basis.T).mul_(self.weights[rows][:, self.pattern] * self.sign)

    def blocks(self, z: torch.Tensor) -> torch.Tensor:
        """U (2, P, d, c) with columns Σ_v z_vb_v."""
        two, P, d, c = self.shape
        index = (self.side * P + self.pattern) * c + self.column
        cols = torch.zeros(two * P * c, d, dtype=z.dtype, device=z.device).index_add_(0, index, z[:, None] * self.basis)
        return cols.view(two, P, c, d).transpose(2, 3).contiguous()

    def coordinates(self, U: torch.Tensor) -> torch.Tensor:
        """z = bᵀu: U's orthogonal projection onto the face."""
        return (self.basis * U[self.side, self.pattern, :, self.column]).sum(dim=1)

    def cone(self, z: torch.Tensor) -> torch.Tensor:
        """The cone values (2, n, P, c) of the blocks of z."""
        U = self.blocks(z)
        return torch.stack([self.op.cone_products(U[s]) for s in range(U.shape[0])])

    def predict(self, z: torch.Tensor) -> torch.Tensor:
        """Zz as the (n, c) prediction."""
        out = torch.empty(self.op.n, self.shape[3], dtype=z.dtype, device=z.device)
        for rows in self.chunks:
            Z = self.design(rows)
            for k, span in enumerate(self.spans):
                out[rows, k] = Z[:, span] @ z[span]
        return out

    def radii(self, z: torch.Tensor) -> torch.Tensor:
        """‖z_g‖ per group."""
        sums = torch.zeros(int(self.group.max()) + 1, dtype=z.dtype, device=z.device)
        return sums.index_add_(0, self.group, z * z).sqrt()

    def value(self, z: torch.Tensor, smooth: SmoothLoss, beta: float) -> float:
        """F(z) = L(Zz) + β Σ_g ‖z_g‖."""
        return smooth.loss_value(self.predict(z)) + beta * float(self.radii(z).sum())

    def derivatives(self, z: torch.Tensor, smooth: SmoothLoss, beta: float, curvature: bool = False
                    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(∇F(z) = Zᵀ∇L(Zz) + βz_g/‖z_g‖, and with ``curvature`` the fit part ZᵀHZ of ∇²F), from one pass over
        the chunks of Z."""
        pred = self.predict(z)
        grad_loss = smooth.value_and_gradient(pred)[1]
        H = smooth.hessian_blocks(pred) if curvature else None
        grad = beta * z / self.radii(z)[self.group]
        fit = torch.zeros(self.q, self.q, dtype=z.dtype, device=z.device) if curvature else None
        for rows in self.chunks:
            Z = self.design(rows)
            for k, span in enumerate(self.spans):
                grad[span] += Z[:, span].T @ grad_loss[rows, k]
            if curvature:
                fit += fit_hessian(Z, self.spans, H[rows])
        return grad, fit

    def newton_step(self, z: torch.Tensor, grad: torch.Tensor, fit: torch.Tensor, beta: float) -> torch.Tensor | None:
        """−∇²F(z)⁻¹∇F(z), ∇²F = ZᵀHZ (``fit``) + (β/‖z_g‖)(I − ẑ_gẑ_gᵀ) per group; None where it does not
        factor."""
        r = self.radii(z)[self.group]
        scaled = z * (beta / r ** 3).sqrt()
        hessian = fit + torch.diag(beta / r) - self.same * (scaled[:, None] * scaled[None, :])
        hessian.diagonal().add_(1e-14 * float(hessian.diagonal().max()))
        L, info = torch.linalg.cholesky_ex(hessian)
        return None if int(info) != 0 else torch.cholesky_solve(-grad[:, None], L)[:, 0]


def polish(op: PatternOperator, weights: torch.Tensor, live: torch.Tensor, XX: torch.Tensor, U: torch.Tensor,
           G: torch.Tensor, m: torch.Tensor, smooth: SmoothLoss, beta: float, grouped: bool, budget: float = math.inf
           ) -> tuple[torch.Tensor, torch.Tensor] | None:
    """(U, m) solved on the face of the iterate U (2, P, d, c) with cone values G and multipliers m (2, n, P, c)
    (module docstring), or None where no face within ROUNDS could be solved (a face too large for MEMORY_BYTES, an
    iterate whose projection onto the face leaves an inactive row negative, a singular Newton matrix, a group that
    reaches zero) or the Newton steps would exceed ``budget`` multiply-adds (a step on a face of q free coordinates
    costs about q²n + q³/3: the design's Gram matrix and its factor). ``weights`` (n, P):
    the fit weights w_i; ``XX`` (n, d²): the products x_kx_kᵀ; ``grouped``: Frobenius groups U_j (else columns).
    The returned U may leave active rows at −1e-13 relative (round-off); the multipliers are those of the
    returned U's Λ."""
    two, P, d, c = U.shape
    group_norms = U.norm(dim=(2, 3)) if grouped else U.norm(dim=2)
    top = float(group_norms.max()) if group_norms.numel() else 0.0
    if top == 0.0:
        return None
    column_norms = group_norms[:, :, None].expand(two, P, c) if grouped else group_norms  # ‖U_g‖ per column
    nonzero = column_norms > ZERO_GROUP * top
    xn = op.X.norm(dim=1)[None, :, None, None]
    scale = (xn * column_norms[:, None]).clamp(min=1e-300)  # (2, n, P, c)
    live = live[None, :, None, None]
    active = live & (G / scale < m * xn / beta)
    for _ in range(ROUNDS):
        face = _Face(op, weights, XX, active, nonzero, U.shape, grouped)
        if not face.solvable:
            return None
        step_cost = face.q ** 2 * op.n + face.q ** 3 / 3.0
        steps = STEPS if budget >= STEPS * step_cost else int(budget // step_cost)
        if steps == 0:
            return None
        inactive = live & ~active
        z = face.coordinates(U)
        if bool((face.cone(z) < -START_SLACK * scale)[inactive].any()):
            return None
        solved = _solve_face(face, z, inactive, smooth, beta, steps)
        if solved is None:
            return None
        z, blocking, taken = solved
        budget -= taken * step_cost
        U = face.blocks(z)
        if blocking is not None:
            active = active | blocking
            continue
        nonzero = nonzero & (face.has_free.any(dim=2, keepdim=True) if grouped else face.has_free)
        multipliers, negative = _multipliers(op, U, smooth, beta, grouped, face, active, nonzero, m, xn / beta)
        if not bool(negative.any()):
            return U, multipliers
        active = active & ~negative
    return None


def _solve_face(face: _Face, z: torch.Tensor, inactive: torch.Tensor, smooth: SmoothLoss, beta: float, steps: int
                ) -> tuple[torch.Tensor, torch.Tensor | None, int] | None:
    """At most ``steps`` damped Newton steps on the face from z (:func:`~cvxnn.solvers.newton._damped_step`) until
    none makes progress: (its minimizer, None, the Newton matrices formed), or (the point where a step first reaches
    an inactive row, those rows, the matrices formed) — a ratio test on the cone values, which are linear in z —, or
    None where a group reaches zero or the Newton matrix does not factor."""
    F = face.value(z, smooth, beta)
    for taken in range(1, steps + 1):
        if bool((face.radii(z) == 0).any()):
            return None
        grad, fit = face.derivatives(z, smooth, beta, curvature=True)
        step = face.newton_step(z, grad, fit, beta)
        if step is None:
            return None
        here, along = face.cone(z), face.cone(step)
        ratio = torch.where(inactive & (along < 0), here.clamp(min=0.0) / -along, math.inf)
        reach = float(ratio.min())
        if reach < 1.0:  # F is convex along the step, with its minimum near t = 1: it decreases up to the row
            return z + reach * step, inactive & (ratio <= reach * (1 + 1e-9)), taken
        # a decrease predicted below F's round-off cannot be measured: only the full step is tried (it must halve ‖∇F‖)
        measurable = -float(grad @ step) > RESOLUTION * abs(F)
        moved = _damped_step(z, F, step, float(grad.norm()), lambda v: face.value(v, smooth, beta),
                             lambda v: float(face.derivatives(v, smooth, beta)[0].norm()), 1e-8 if measurable else 0.5)
        if moved is None:  # no step decreases F or, at round-off, halves ‖∇F‖: solved as far as arithmetic goes
            return z, None, taken
        z, F = moved
    return z, None, steps


def _multipliers(op: PatternOperator, U: torch.Tensor, smooth: SmoothLoss, beta: float, grouped: bool, face: _Face,
                 active: torch.Tensor, nonzero: torch.Tensor, m: torch.Tensor, unit: torch.Tensor
                 ) -> tuple[torch.Tensor, torch.Tensor]:
    """Multipliers (2, n, P, c) for the certificate at U, and the active rows whose multiplier is negative: on the
    ``nonzero`` columns (2, P, c) the least-norm solution of X_AᵀS_Am_A = βu/‖U_g‖ − v on the ``active`` rows
    (module docstring), clipped at 0, and 0 on the others; elsewhere the iterate's m. ``unit``: ‖x_k‖/β, which makes
    a multiplier dimensionless."""
    lam = -smooth.value_and_gradient(op.matvec(U[0]) - op.matvec(U[1]))[1]
    fit = op.rmatvec(lam)  # XᵀW_iΛ (P, d, c)
    norms = U.norm(dim=(2, 3), keepdim=True) if grouped else U.norm(dim=2, keepdim=True)
    target = beta * U / norms.clamp(min=1e-300) - torch.stack([fit, -fit])  # βu/‖U_g‖ − v
    evals, evecs = face.evals, face.evecs
    inverse = torch.where(evals > NULL_TOL * evals[..., -1:], 1.0 / evals.clamp(min=1e-300), 0.0)  # (X_AᵀX_A)⁺
    cols = target.transpose(2, 3)[..., None]  # (2, P, c, d, 1)
    w = (evecs @ (inverse[..., None] * (evecs.transpose(-1, -2) @ cols)))[..., 0].transpose(2, 3)
    solved = torch.stack([op.cone_products(w[0]), op.cone_products(w[1])])  # S_iXw on every row
    rows = active & nonzero[:, None]
    out = torch.where(rows, solved.clamp(min=0.0), torch.where(nonzero[:, None], 0.0, m))
    return out, rows & (solved * unit < -NEGATIVE)
