"""Augmented Lagrangian solver of the cone-constrained program (CVX) with a certified stopping rule.

Program, with fit weights W_i = aD_i + b(I − D_i) (THEORY §1.6) and S_i = 2D_i − I:

    min_{v,w}  ½‖Σ_i W_iX(v_i − w_i) − y‖² + β Σ_i (‖v_i‖ + ‖w_i‖)   s.t.  S_iXv_i ≥ 0,  S_iXw_i ≥ 0.

Write A(U) = Σ_i W_iXu_i and G(U) = [S_iXu_i]_i (:class:`~cvxnn.operators.PatternOperator`).

**Augmented Lagrangian.** With multipliers μ^v, μ^w ≥ 0 (n x P each) and penalty ρ > 0 the
subproblem is min f_ρ(v, w; μ) + β Σ_i (‖v_i‖ + ‖w_i‖) with the smooth part

    f_ρ = ½‖A(v) − A(w) − y‖² + (1/2ρ) Σ_{u ∈ {v, w}} (‖(μ^u − ρG(u))_+‖² − ‖μ^u‖²),
    ∇_v f_ρ = Aᵀ(r) − Gᵀ((μ^v − ρG(v))_+),   ∇_w f_ρ = −Aᵀ(r) − Gᵀ((μ^w − ρG(w))_+),   r = A(v − w) − y.

It is solved by accelerated proximal gradient (FISTA, backtracking, gradient-based adaptive restart)
with the prox of the group norm, block soft-thresholding. The affine maps r and G of the
extrapolated point are combined from those of the last two iterates, so a step costs two
forward and two adjoint products. The multipliers are updated, μ^u ← (μ^u − ρG(u))_+, once the
prox-gradient residual L‖y_k − u_{k+1}‖ falls below ``inner_ratio`` · ‖X‖₂ · ‖Δμ‖ (the change the
update would make), or after ``max_inner`` steps; ρ is doubled (up to ``rho_max_factor`` · ρ₀)
when the infeasibility ‖Δμ‖/ρ did not drop below half its previous value.

**Lower bound (certificate).** Let λ = y − ŷ at the iterate. For every pattern and any
m_i^± ≥ 0, Moreau's decomposition (duality.py: ‖Π_K(c)‖ = min_{m ≥ 0} ‖c + XᵀS_im‖) gives

    σ_i^+(λ) ≤ ‖XᵀW_iλ + XᵀS_im_i^+‖,    σ_i^−(λ) ≤ ‖−XᵀW_iλ + XᵀS_im_i^−‖,

i.e. the norms of the rows of Aᵀ(λ) + Gᵀ(m^+) and −Aᵀ(λ) + Gᵀ(m^−): one combined adjoint each.
We take m^± = (μ^{v,w} − ρG)_+, the multiplier estimate of the current iterate: at a minimizer
of the subproblem, stationarity reads Aᵀλ + Gᵀ(m^+) ∈ β∂‖v_i‖ blockwise, so the bounds are
at most β there, and at the KKT point they are exact. ``dual_steps`` > 0 then lowers each bound
by projected-gradient steps on the batched NNLS min_{m ≥ 0} ½‖c_i + XᵀS_im_i‖² (step 1/‖X‖₂²,
each step one G and one Gᵀ product), keeping the smallest norm seen per pattern. With s the
largest bound, t = clip(λᵀy/‖λ‖², 0, β/s) makes tλ dual feasible and d(tλ) = tλᵀy − t²‖λ‖²/2
is a lower bound on the program's optimum (accumulated in float64).

**Upper bound (honest primal).** The iterate is only approximately cone feasible, so its
objective is no bound. The objective is instead evaluated at a *repaired* point that satisfies
every cone constraint: each block u_i with (S_iXu_i)_k < 0 for some k is moved along a direction
c_i interior to K(D_i) (S_iXc_i > 0 on the nonzero rows of X):

    u_i ← u_i + τ_i c_i,   τ_i = (1 + 10⁻⁶) max_k [−(S_iXu_i)_k / (S_iXc_i)_k]_+,

which puts every row on the right side (a convex cone is closed under addition). The repaired
point is feasible for (CVX), so its objective, computed exactly, is ≥ the program's optimum; the
violations vanish as the iterate converges and so does the cost of the repair. The interior
directions are the pattern gates when given and interior (``interior``), else the
maximally sharp point of :func:`~cvxnn.cones.interior_point` (an LP, solved once per pattern and
only for blocks that need repair); a violating block of a cone with empty interior is set to zero
(also feasible). The returned blocks are the repaired point of the best upper bound, repaired
once more in float64 so that float32 runs also return blocks feasible up to float64 round-off.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np
import torch

from ..cones import interior_point
from ..duality import cone_sigma
from ..operators import PatternOperator
from .fista import group_soft_threshold
from .result import NumericalBreakdown, SolverOutput

REPAIR_MARGIN = 1e-6
INTERIOR_RTOL = 1e-9  # a given direction c is interior when s_kx_kᵀc > this · ‖x_k‖‖c‖ on every live row; a gate from
#                       the pattern search's ascent can sit on its cone's boundary up to round-off (iris: a margin of
#                       1.1e-16 made the ipm's centering Hessian singular), and then the LP finds a central one
STALL_CHECKS = 50  # gap checks without a halving, below √ε of the working precision, that stop a solve ("stalled")


@dataclass
class ALOutput(SolverOutput):
    """A :class:`SolverOutput` plus the final multipliers (μ^v, μ^w), each (n, P), and penalty ρ, for warm starts."""

    multipliers: tuple[np.ndarray, np.ndarray] | None = None
    rho: float = 0.0


class ConeRepair:
    """Moves blocks into their cones along interior directions c_i: u_i ← u_i + τ_i c_i (see module docstring)."""

    def __init__(self, op: PatternOperator, interior: torch.Tensor | None = None) -> None:
        self.op = op
        self.nonzero_rows = op.X.norm(dim=1) > 0
        self.C = torch.zeros(op.P, op.d, dtype=op.dtype, device=op.device)
        if interior is not None:
            self.C.copy_(torch.as_tensor(interior, dtype=op.dtype, device=op.device))
        self.SXC = op.cone_products(self.C)
        margin = INTERIOR_RTOL * op.X.norm(dim=1)[:, None] * self.C.norm(dim=1)[None, :]
        self.ok = ((self.SXC > margin) | ~self.nonzero_rows[:, None]).all(dim=0) & (self.C.norm(dim=1) > 0)
        self.tried = self.ok.clone()

    def find_interior(self, patterns: torch.Tensor) -> None:
        """Solve the interior-point LP for the listed patterns not yet tried."""
        todo = patterns[~self.tried[patterns]].tolist()
        if not todo:
            return
        Xn = self.op.X.double().cpu().numpy()
        for i in todo:
            c, tau = interior_point(Xn, self.op.masks[:, i].cpu().numpy())
            self.tried[i] = True
            if tau > 0:
                self.C[i] = torch.as_tensor(c, dtype=self.op.dtype, device=self.op.device)
                xc = self.op.X @ self.C[i]
                self.SXC[:, i] = torch.where(self.op.masks[:, i], xc, -xc)
                self.ok[i] = True

    def _project(self, U: torch.Tensor, bad: torch.Tensor) -> torch.Tensor:
        """U with each flagged block replaced by its projection Π_K(u) onto its cone, in float64: the value and
        direction of :func:`~cvxnn.duality.cone_sigma` (DAQP's multipliers, verified; NNLS where they fail).
        SciPy's NNLS on the violated rows alone took 29 ms a block at n = 20 000, 93 % of a solve."""
        U = U.clone()
        Xn = self.op.X.double().cpu().numpy()
        masks = self.op.masks.cpu().numpy()
        for side, i in torch.nonzero(bad).tolist():
            value, direction = cone_sigma(Xn, masks[:, i], U[side, i].double().cpu().numpy())
            U[side, i] = torch.as_tensor(value * direction, dtype=self.op.dtype, device=self.op.device)
        return U

    def step(self, U: torch.Tensor, G: torch.Tensor) -> torch.Tensor:
        """A point near U = (2, P, d) with every block in its cone, given G = G(U) (2, n, P).

        Violating blocks are projected onto their cones (:meth:`_project`); what round-off
        leaves is removed by the interior shift u_i ← u_i + τ_i c_i, or by zeroing the
        block when its cone has no known interior point or the shift would be longer than the block.
        """
        bad = ((G < 0) & self.nonzero_rows[None, :, None]).any(dim=1)
        if not bool(bad.any()):
            return U
        U = self._project(U, bad)
        G = torch.stack([self.op.cone_products(U[0]), self.op.cone_products(U[1])])
        viol = (G < 0) & self.nonzero_rows[None, :, None]
        bad = viol.any(dim=1)
        if not bool(bad.any()):
            return U
        self.find_interior(torch.nonzero(bad.any(dim=0)).flatten())
        ratio = torch.where(viol & self.ok[None, None, :], -G / torch.where(self.SXC > 0, self.SXC, 1.0), 0.0)
        tau = ratio.amax(dim=1) * (1 + REPAIR_MARGIN)
        shift = tau[..., None] * self.C[None]
        zero = bad & (~self.ok[None, :] | (shift.norm(dim=2) > U.norm(dim=2)))
        U = U + shift
        U[zero] = 0.0
        return U


class _Certifier:
    """Upper and lower bounds at an iterate (module docstring), accumulated in float64."""

    def __init__(self, op: PatternOperator, y: torch.Tensor, beta: float, repair: ConeRepair, x_norm2: float,
                 dual_steps: int) -> None:
        self.op, self.y, self.beta, self.repair = op, y, beta, repair
        self.x_norm2, self.dual_steps = x_norm2, dual_steps

    def forward(self, U: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(r, G) = (A(v) − A(w) − y, stack(G(v), G(w)))."""
        fv, Gv = self.op.matvec_and_cone(U[0])
        fw, Gw = self.op.matvec_and_cone(U[1])
        return fv - fw - self.y, torch.stack([Gv, Gw])

    def dual_bound(self, lam: torch.Tensor, M: torch.Tensor) -> float:
        """max_i max(‖Aᵀλ + Gᵀm^+‖, ‖−Aᵀλ + Gᵀm^−‖), lowered by ``dual_steps`` projected-gradient NNLS steps."""
        s = 0.0
        for sign, m in ((1.0, M[0]), (-1.0, M[1])):
            R = self.op.rmatvec(sign * lam, m)
            best = R.norm(dim=1)
            for _ in range(self.dual_steps):
                m = torch.clamp(m - self.op.cone_products(R) / self.x_norm2, min=0.0)
                R = self.op.rmatvec(sign * lam, m)
                best = torch.minimum(best, R.norm(dim=1))
            s = max(s, float(best.max()) if best.numel() else 0.0)
        return s

    def __call__(self, U: torch.Tensor, mu: torch.Tensor, rho: float) -> tuple[float, float, torch.Tensor]:
        """(primal at the repaired point, lower bound d(tλ), repaired U)."""
        r, G = self.forward(U)
        lam64 = (-r).double()
        y64 = self.y.double()
        s = self.dual_bound(-r, torch.clamp(mu - rho * G, min=0.0))
        nrm2, ly = float(lam64 @ lam64), float(lam64 @ y64)
        t = 0.0 if nrm2 == 0 else min(max(ly / nrm2, 0.0), float("inf") if s <= 0 else self.beta / s)
        dual = t * ly - 0.5 * t * t * nrm2
        U_f = self.repair.step(U, G)
        if U_f is not U:
            dU = U_f - U
            U = U_f
            r = r + self.op.matvec(dU[0]) - self.op.matvec(dU[1])
        r64 = r.double()
        primal = 0.5 * float(r64 @ r64) + self.beta * float(U.double().norm(dim=2).sum())
        return primal, dual, U


def solve_relu_al(op: PatternOperator, y: torch.Tensor, beta: float, tol: float = 1e-6,
                  V0: torch.Tensor | None = None, W0: torch.Tensor | None = None,
                  multipliers: tuple[torch.Tensor, torch.Tensor] | None = None, rho: float | None = None,
                  interior: torch.Tensor | None = None, max_iter: int = 20_000, gap_every: int = 10,
                  time_limit: float | None = None, callback=None, inner_ratio: float = 0.5, max_inner: int = 200,
                  rho_max_factor: float = 100.0, dual_steps: int = 0, design: np.ndarray | None = None) -> ALOutput:
    """Minimize (CVX) from (V0, W0) (zeros by default) until the certified relative gap ≤ tol.

    multipliers: initial (μ^v, μ^w) ≥ 0, each (n, P) (zeros by default); rho: initial penalty
    (default ‖A‖₂²/(P‖X‖₂²): the penalty's curvature ρ‖X‖₂² is the fit's per pattern).
    interior: (P, d) directions c_i interior to the cones for the repair (e.g. the pattern gates).
    design: the float64 design matrix, for the final float64 repair when ``op`` holds a float32 copy
    (without it the repair is exact only for that rounded copy).
    Stops with status "optimal" (gap ≤ tol · |primal|), "max_iter", "time_limit" (checked at every step: once the
    time spent plus the last gap check's would exceed it, so the final check fits the budget as far as its cost
    repeats), "stalled" (a line search that finds no finite step, or a certified gap below √ε of the working
    precision that has not halved over the last :data:`STALL_CHECKS` checks: round-off, not the method, then
    limits it — float32 levels off near 1e-5 on small problems and would run to ``max_iter``) or "interrupted"
    (Ctrl-C);
    ``callback(it, primal, dual)`` is called at every gap check (every ``gap_every`` steps).
    """
    start = time.perf_counter()
    y = y.to(op.dtype)
    P, d = op.P, op.d
    U = torch.zeros(2, P, d, dtype=op.dtype, device=op.device)
    for k, block in enumerate((V0, W0)):
        if block is not None:
            U[k] = torch.as_tensor(block, dtype=op.dtype, device=op.device)
    mu = torch.zeros(2, op.n, P, dtype=op.dtype, device=op.device)
    if multipliers is not None:
        for k in range(2):
            mu[k] = torch.clamp(torch.as_tensor(multipliers[k], dtype=op.dtype, device=op.device), min=0.0)
    x_norm2 = max(float(torch.linalg.matrix_norm(op.X, ord=2)) ** 2, 1e-300)
    fit_L = max(op.lipschitz(iters=15), 1e-12)
    rho = float(rho) if rho is not None else fit_L / (max(P, 1) * x_norm2)
    rho_max = rho * rho_max_factor
    L = 2 * fit_L + rho * x_norm2
    cert = _Certifier(op, y, beta, ConeRepair(op, interior), x_norm2, dual_steps)
    slack = 10 * torch.finfo(op.dtype).eps  # round-off allowance in the sufficient-decrease test

    def smooth(r: torch.Tensor, G: torch.Tensor) -> tuple[float, torch.Tensor]:
        """f_ρ and the multiplier estimate (μ − ρG)_+."""
        Mt = torch.clamp(mu - rho * G, min=0.0)
        return 0.5 * float(r @ r) + (float((Mt * Mt).sum()) - float((mu * mu).sum())) / (2 * rho), Mt

    def prox(Z: torch.Tensor, step: float) -> torch.Tensor:
        return group_soft_threshold(Z.reshape(2 * P, d), beta * step).reshape(2, P, d)

    r_U, G_U = cert.forward(U)
    Y, r_Y, G_Y, theta = U.clone(), r_U, G_U, 1.0
    history: list[tuple[float, float, float]] = []
    best_primal, best_dual, best_U = float("inf"), -float("inf"), None
    infeas_prev, inner = float("inf"), 0
    status, it, checked, check_cost = "max_iter", 0, -1, 0.0

    gaps: list[float] = []  # the certified relative gap after each check
    floor = math.sqrt(torch.finfo(op.dtype).eps)

    def check(it: int) -> bool:
        nonlocal best_primal, best_dual, best_U, check_cost
        started = time.perf_counter()
        primal, dual, U_f = cert(U, mu, rho)
        check_cost = time.perf_counter() - started
        if primal < best_primal:
            best_primal, best_U = primal, U_f.clone()
        best_dual = max(best_dual, dual)
        history.append((time.perf_counter() - start, primal, best_dual))
        if callback is not None:
            callback(it, primal, best_dual)
        gaps.append((best_primal - best_dual) / max(abs(best_primal), 1e-300))
        return gaps[-1] <= tol

    def at_precision_floor() -> bool:
        return len(gaps) > STALL_CHECKS and floor >= gaps[-1] > 0.5 * gaps[-1 - STALL_CHECKS]

    try:
        for it in range(1, max_iter + 1):
            fY, Mt_Y = smooth(r_Y, G_Y)
            grad = torch.stack([op.rmatvec(r_Y, -Mt_Y[0]), op.rmatvec(-r_Y, -Mt_Y[1])])
            while True:  # backtracking on the smooth part
                U_new = prox(Y - grad / L, 1 / L)
                r_new, G_new = cert.forward(U_new)
                f_new, Mt_new = smooth(r_new, G_new)
                D = U_new - Y
                if f_new <= fY + float((grad * D).sum()) + 0.5 * L * float((D * D).sum()) + slack * abs(fY):
                    break
                L *= 2.0
                if not math.isfinite(L):  # no step decreases a NaN or inf objective
                    raise NumericalBreakdown("the augmented Lagrangian's line search found no finite step")
            grad_map = L * float(D.norm())
            if float(((Y - U_new) * (U_new - U)).sum()) > 0:  # adaptive restart
                theta = 1.0
            theta_next = 0.5 * (1 + (1 + 4 * theta * theta) ** 0.5)
            mom = (theta - 1) / theta_next
            Y = U_new + mom * (U_new - U)
            r_Y, G_Y = r_new + mom * (r_new - r_U), G_new + mom * (G_new - G_U)
            U, r_U, G_U, theta = U_new, r_new, G_new, theta_next
            L *= 0.9  # let the step grow again
            inner += 1
            d_mu = float((Mt_new - mu).norm())
            if grad_map <= inner_ratio * x_norm2 ** 0.5 * d_mu or inner >= max_inner:  # multiplier update
                mu, inner, theta = Mt_new, 0, 1.0
                Y, r_Y, G_Y = U, r_U, G_U
                infeas = d_mu / rho
                if infeas > 0.5 * infeas_prev and rho < rho_max:
                    L += rho * x_norm2
                    rho *= 2.0
                infeas_prev = infeas
            if it % gap_every == 0 or it == max_iter:
                checked = it
                if check(it):
                    status = "optimal"
                    break
                if at_precision_floor():
                    status = "stalled"
                    break
            if time_limit is not None and time.perf_counter() - start + check_cost > time_limit:
                status = "time_limit"  # the certificate of the last iterate, still to come, fits the budget
                break
    except KeyboardInterrupt:
        status = "interrupted"
    except NumericalBreakdown:
        status = "stalled"
    if checked != it or best_U is None:
        check(it)
    v, w = _final_repair(cert.repair, best_U, design)
    return ALOutput(v, w, status, it, time.perf_counter() - start, history,
                    multipliers=(mu[0].cpu().double().numpy(), mu[1].cpu().double().numpy()), rho=rho)


def _final_repair(repair: ConeRepair, U: torch.Tensor, design: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """The blocks of the repaired point U as float64 arrays; a float32 or GPU point is repaired once
    more in float64 on the CPU (its own round-off can leave violations at the float32 level)."""
    op = repair.op
    if op.dtype == torch.float64 and op.device.type == "cpu":
        return U[0].numpy().copy(), U[1].numpy().copy()
    X64 = op.X.cpu().double() if design is None else torch.as_tensor(design, dtype=torch.float64, device="cpu")
    op64 = PatternOperator(X64, op.masks.cpu(), activation=op.activation)
    repair64 = ConeRepair(op64, repair.C.cpu().double() * repair.ok.cpu()[:, None])
    repair64.tried |= repair.tried.cpu()
    U64 = U.detach().cpu().double()
    U64 = repair64.step(U64, torch.stack([op64.cone_products(U64[0]), op64.cone_products(U64[1])]))
    return U64[0].numpy(), U64[1].numpy()
