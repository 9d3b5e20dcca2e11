"""Accelerated proximal gradient for the gated program (a group lasso):

    min_U  ½‖A(U) − y‖² + β Σ_i ‖u_i‖₂,      A(U) = Σ_i D_i X u_i.

FISTA with backtracking line search and gradient-based adaptive restart (O'Donoghue &
Candès). The prox of the group norm is block soft-thresholding
u_i ← max(0, 1 − tβ/‖u_i‖) u_i. It stops on the relative duality gap: with
λ = y − A(U) and s = max_i ‖XᵀD_iλ‖ (one adjoint product), the point tλ with t ≤ β/s is
dual feasible and d(tλ) = tλᵀy − t²‖λ‖²/2 is a lower bound.
"""

from __future__ import annotations

import time

import torch

from ..operators import PatternOperator
from .result import SolverOutput


def group_soft_threshold(U: torch.Tensor, thresh: float) -> torch.Tensor:
    norms = U.norm(dim=1, keepdim=True)
    return U * torch.clamp(1 - thresh / torch.clamp(norms, min=1e-300), min=0.0)


def gated_gap(op: PatternOperator, y: torch.Tensor, U: torch.Tensor, beta: float
              ) -> tuple[float, float, torch.Tensor]:
    """(primal, dual lower bound, residual λ = y − A(U)); the certificate is accumulated in float64."""
    lam = (y - op.matvec(U)).double()
    y64 = y.double()
    primal = 0.5 * float(lam @ lam) + beta * float(U.double().norm(dim=1).sum())
    s = float(op.rmatvec(lam.to(op.dtype)).double().norm(dim=1).max()) if op.P else 0.0
    nrm2 = float(lam @ lam)
    t_max = float("inf") if s <= 0 else beta / s
    t = 0.0 if nrm2 == 0 else min(max(float(lam @ y64) / nrm2, 0.0), t_max)
    dual = t * float(lam @ y64) - 0.5 * t * t * nrm2
    return primal, dual, lam


def solve_gated_fista(op: PatternOperator, y: torch.Tensor, beta: float, U0: torch.Tensor | None = None,
                      tol: float = 1e-6, max_iter: int = 20_000, gap_every: int = 10,
                      time_limit: float | None = None, callback=None) -> SolverOutput:
    """Minimize the gated program from U0 (zeros by default) until the relative gap ≤ tol."""
    start = time.perf_counter()
    y = y.to(op.dtype)
    U = torch.zeros(op.P, op.d, dtype=op.dtype, device=op.device) if U0 is None else U0.clone()
    L = max(op.lipschitz(iters=15), 1e-12)
    slack = 10 * torch.finfo(op.dtype).eps  # round-off allowance in the sufficient-decrease test
    Y, U_prev, theta = U.clone(), U.clone(), 1.0
    history: list[tuple[float, float, float]] = []
    best = (float("inf"), -float("inf"))
    status, it = "max_iter", 0
    try:
        for it in range(1, max_iter + 1):
            r = op.matvec(Y) - y
            grad = op.rmatvec(r)
            fY = 0.5 * float(r @ r)
            while True:  # backtracking on the smooth part
                U_new = group_soft_threshold(Y - grad / L, beta / L)
                D = U_new - Y
                r_new = op.matvec(U_new) - y
                bound = fY + float((grad * D).sum()) + 0.5 * L * float((D * D).sum())
                if 0.5 * float(r_new @ r_new) <= bound + slack * abs(fY):
                    break
                L *= 2.0
            if float(((Y - U_new) * (U_new - U)).sum()) > 0:  # adaptive restart
                theta = 1.0
            theta_next = 0.5 * (1 + (1 + 4 * theta * theta) ** 0.5)
            Y = U_new + ((theta - 1) / theta_next) * (U_new - U)
            U_prev, U, theta = U, U_new, theta_next
            L *= 0.9  # let the step grow again
            if it % gap_every == 0 or it == max_iter:
                primal, dual, _ = gated_gap(op, y, U, beta)
                best = (min(best[0], primal), max(best[1], dual))
                elapsed = time.perf_counter() - start
                history.append((elapsed, primal, best[1]))
                if callback is not None:
                    callback(it, primal, best[1])
                if best[0] - best[1] <= tol * max(abs(best[0]), 1e-300):
                    status = "optimal"
                    break
                if time_limit is not None and elapsed > time_limit:
                    status = "time_limit"
                    break
    except KeyboardInterrupt:
        status = "interrupted"
    del U_prev
    return SolverOutput(U.detach().cpu().double().numpy(), torch.zeros_like(U).cpu().double().numpy(), status, it,
                        time.perf_counter() - start, history)
