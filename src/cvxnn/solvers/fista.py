"""Accelerated proximal gradient for the gated program (a group lasso), with gap-safe screening
and working sets:

    min_U  F(U) = L(A(U)) + β Σ_i ‖u_i‖₂,      A(U) = Σ_i W_i X u_i,

for the squared loss L(z) = ½‖z − y‖² (the default) and the logistic loss
L(z) = Σ_k log(1 + exp(−y_k z_k)), y_k ∈ {−1, +1} (see :class:`SmoothLoss`).

**FISTA** with backtracking line search on the smooth part U ↦ L(A(U)) (gradient Aᵀ∇L(A(U)),
Lipschitz constant at most κ‖A‖₂² with κ the loss's ``curvature``) and gradient-based adaptive
restart (O'Donoghue & Candès). The prox of the group norm is block soft-thresholding
u_i ← max(0, 1 − tβ/‖u_i‖) u_i.

**Certificate.** The dual is max_θ d(θ) = −L*(−θ) s.t. ‖(W_iX)ᵀθ‖ ≤ β for every group i
(squared: d(θ) = θᵀy − ½‖θ‖²; logistic: d(θ) = Σ_k H(θ_k y_k), H the binary entropy, finite iff
every θ_k y_k ∈ [0, 1]). With λ = −∇L(A(U)) and s = max_i ‖(W_iX)ᵀλ‖ (one adjoint product),
θ = tλ is feasible for every t ∈ [0, β/s] inside the loss's domain, and t maximizes d(tλ) there
(:meth:`~cvxnn.losses.Loss.best_scale`; squared: t = clip(λᵀy/‖λ‖², 0, β/s)), so d(θ) is a
lower bound; the solve stops when the relative gap (F(U) − d(θ)) / F(U) ≤ tol. The returned
certificate is always computed over **all** groups.

**Gap-safe screening** (Fercoq, Gramfort & Salmon 2015; Ndiaye et al. 2017). ∇L is κ-Lipschitz,
so L* is (1/κ)-strongly convex and d is (1/κ)-strongly concave (κ = 1 squared, κ = ¼ logistic:
ℓ'' = sigmoid·(1 − sigmoid) ≤ ¼). For a feasible θ, optimality of θ* over the feasible set gives
(1/(2κ))‖θ − θ*‖² ≤ d(θ*) − d(θ) ≤ G := F(U) − d(θ) for any primal value F(U) ≥ d(θ*). The optimal
dual point θ* = −∇L(A(U*)) is unique (the same for every primal solution U*), and u_i* ≠ 0 forces
‖(W_iX)ᵀθ*‖ = β (KKT). Hence

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
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Callable

import torch

from ..losses import SQUARED, Loss
from ..operators import PatternOperator
from .result import SolverOutput

SCREEN_FRACTION = 0.05  # shrink the operator once this share of its groups is screened
FISTA_LOSSES = ("squared", "logistic")


class SmoothLoss:
    """A loss of :data:`FISTA_LOSSES` on torch tensors: what FISTA and its certificate evaluate.

    squared:  L(z) = ½‖z − y‖²,                  ∇L(z) = z − y;
    logistic: L(z) = Σ_k log(1 + exp(−y_k z_k)),  ∇L(z) = −y ∘ sigmoid(−y ∘ z).

    FISTA's values and gradients are in the dtype of z. The certificate's pieces are in float64:
    the dual direction λ = −∇L(z) with L(z), and d(tλ) on that ray. For the squared loss they
    are closed forms on z's device; for the logistic loss the dual value and the best scale come
    from :class:`~cvxnn.losses.LogisticLoss` (NumPy, one transfer of λ per certificate).
    """

    def __init__(self, loss: Loss, y: torch.Tensor) -> None:
        if loss.name not in FISTA_LOSSES:
            raise ValueError(f"the gated FISTA solver supports the losses {FISTA_LOSSES}, not {loss.name!r}.")
        self.loss, self.y, self.y64 = loss, y, y.double()
        self.squared = loss.name == "squared"
        self.curvature = float(loss.curvature)  # κ: ∇L is κ-Lipschitz
        self._y_np = None if self.squared else self.y64.cpu().numpy()

    def value(self, z: torch.Tensor) -> float:
        """L(z), accumulated in z's dtype."""
        if self.squared:
            r = z - self.y
            return 0.5 * float(r @ r)
        m = -self.y * z
        return float(torch.logaddexp(m, torch.zeros_like(m)).sum())

    def value_and_gradient(self, z: torch.Tensor) -> tuple[float, torch.Tensor]:
        """(L(z), ∇L(z)) in z's dtype."""
        if self.squared:
            r = z - self.y
            return 0.5 * float(r @ r), r
        m = -self.y * z
        return float(torch.logaddexp(m, torch.zeros_like(m)).sum()), -self.y * torch.sigmoid(m)

    def curvature_diagonal(self, z: torch.Tensor) -> torch.Tensor:
        """The diagonal Hessian ∇²L(z) = diag(h): h = 1 (squared), h = σ(1 − σ) with σ = sigmoid(−y ∘ z) (logistic)."""
        if self.squared:
            return torch.ones_like(z)
        p = torch.sigmoid(-self.y * z)
        return p * (1 - p)

    def dual_direction(self, z: torch.Tensor) -> tuple[float, torch.Tensor]:
        """(L(z), λ = −∇L(z)) in float64 (squared: λ = y − z formed in z's dtype, then widened)."""
        if self.squared:
            lam = (self.y - z).double()
            return 0.5 * float(lam @ lam), lam
        m = -self.y64 * z.double()
        return float(torch.logaddexp(m, torch.zeros_like(m)).sum()), self.y64 * torch.sigmoid(m)

    def best_scale(self, lam: torch.Tensor, t_max: float) -> float:
        """argmax of t ↦ d(tλ) over [0, t_max] within the domain (squared: clip(λᵀy/‖λ‖², 0, t_max))."""
        if self.squared:
            nrm2 = float(lam @ lam)
            return 0.0 if nrm2 == 0 else min(max(float(lam @ self.y64) / nrm2, 0.0), t_max)
        return self.loss.best_scale(lam.cpu().numpy(), self._y_np, t_max)

    def dual_on_ray(self, lam: torch.Tensor, t: float) -> float:
        """d(tλ) = −L*(−tλ) (squared: t λᵀy − ½t²‖λ‖²)."""
        if self.squared:
            return t * float(lam @ self.y64) - 0.5 * t * t * float(lam @ lam)
        return self.loss.dual_value(t * lam.cpu().numpy(), self._y_np)


def group_soft_threshold(U: torch.Tensor, thresh: float) -> torch.Tensor:
    norms = U.norm(dim=1, keepdim=True)
    return U * torch.clamp(1 - thresh / torch.clamp(norms, min=1e-300), min=0.0)


@dataclass
class GatedCertificate:
    """A feasible dual point θ = tλ of the gated program for one pattern list.

    primal: F(U); dual: d(θ) ≤ optimal value; lam: λ = −∇L(A(U)) (squared: y − A(U); float64,
    length n); scale: t; norms: ‖(W_iX)ᵀλ‖ for every group of the operator (float64, length P).
    """

    primal: float
    dual: float
    lam: torch.Tensor
    scale: float
    norms: torch.Tensor

    @property
    def gap(self) -> float:
        return self.primal - self.dual


def gated_certificate(op: PatternOperator, y: torch.Tensor, U: torch.Tensor, beta: float,
                      prediction: torch.Tensor | None = None, loss: Loss | SmoothLoss = SQUARED
                      ) -> GatedCertificate:
    """Primal value, dual direction λ = −∇L(A(U)) and the best feasible multiple of λ (accumulated in float64).

    ``prediction``: A(U) when already computed."""
    smooth = loss if isinstance(loss, SmoothLoss) else SmoothLoss(loss, y)
    value, lam = smooth.dual_direction(op.matvec(U) if prediction is None else prediction)
    primal = value + beta * float(U.double().norm(dim=1).sum())
    norms = op.rmatvec(lam.to(op.dtype)).double().norm(dim=1) if op.P else torch.zeros(0, dtype=torch.float64)
    s = float(norms.max()) if op.P else 0.0
    t = smooth.best_scale(lam, float("inf") if s <= 0 else beta / s)
    return GatedCertificate(primal, smooth.dual_on_ray(lam, t), lam, t, norms)


def gated_gap(op: PatternOperator, y: torch.Tensor, U: torch.Tensor, beta: float, loss: Loss = SQUARED
              ) -> tuple[float, float, torch.Tensor]:
    """(primal, dual lower bound, dual direction λ = −∇L(A(U))); see :func:`gated_certificate`."""
    c = gated_certificate(op, y, U, beta, loss=loss)
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
                 screening: bool, loss: Loss) -> None:
        self.start = time.perf_counter()
        self.op, self.y, self.beta = op, y.to(op.dtype), float(beta)
        self.loss = SmoothLoss(loss, self.y)
        self.U = torch.zeros(op.P, op.d, dtype=op.dtype, device=op.device) if U0 is None else \
            U0.to(dtype=op.dtype, device=op.device).clone()
        self.best_U, self.best_primal, self.best_lower = self.U.clone(), float("inf"), -float("inf")
        self.max_iter, self.gap_every, self.time_limit, self.callback = max_iter, gap_every, time_limit, callback
        self.active = torch.ones(op.P, dtype=torch.bool, device=op.device)
        self.bounds = group_norm_bounds(op) if screening and op.P else None
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
        if self.n_iter >= self.max_iter:
            return "max_iter"
        if self.time_limit is not None and self.elapsed() > self.time_limit:
            return "time_limit"
        return None

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
        c = gated_certificate(self.op, self.y, self.best_U, self.beta, loss=self.loss)
        self.record(c.primal, None, None, c.dual, c.scale * c.lam, notify)
        return c

    def offer_dual(self, idx: torch.Tensor, lam: torch.Tensor, scale: float) -> None:
        """Make θ = scale·λ, feasible for the groups idx, feasible for all groups and keep it if it is the best.

        With s = max ‖(W_iX)ᵀλ‖ over the other groups, t = min(scale, β/s) is feasible everywhere, and
        it maximizes the concave d(tλ) on that ray because scale already does on the ray's part
        feasible for idx (and inside the loss's domain).
        """
        rest = torch.ones(self.op.P, dtype=torch.bool, device=self.op.device)
        rest[idx] = False
        t = scale
        if bool(rest.any()):
            others = restrict(self.op, torch.nonzero(rest).flatten()).rmatvec(lam.to(self.op.dtype))
            s = float(others.double().norm(dim=1).max())
            t = min(t, self.beta / s) if s > 0 else t
        dual = self.loss.dual_on_ray(lam, t)
        if dual > self.best_lower:
            self.best_lower, self.theta = dual, t * lam

    def screen(self, idx: torch.Tensor, theta_norms: torch.Tensor, gap: float) -> torch.Tensor:
        """Groups of idx (with ‖(W_iX)ᵀθ‖ = theta_norms) that the gap-safe sphere ‖θ − θ*‖ ≤ √(2κG) proves zero."""
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
        """FISTA on the groups idx (the others held at zero) until their own relative gap ≤ stop_rel.

        Two products per iteration: A(Y) = (1 + m)A(U_new) − mA(U) for the extrapolation
        Y = U_new + m(U_new − U); when the line search fails, A(Y) is first recomputed (round-off).
        With screening, groups proved zero at a gap evaluation are dropped from idx without
        restarting the momentum. Gap evaluations count as certificates only while idx holds every
        group. Returns "converged", "max_iter" or "time_limit".
        """
        sub = restrict(self.op, idx)
        y, beta, loss = self.y, self.beta, self.loss
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
                    U_new = group_soft_threshold(Y - grad / L, beta / L)
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
                if float(((Y - U_new) * (U_new - U)).sum()) > 0:  # adaptive restart
                    theta = 1.0
                theta_next = 0.5 * (1 + (1 + 4 * theta * theta) ** 0.5)
                m = (theta - 1) / theta_next
                Y, AY = U_new + m * (U_new - U), AU_new + m * (AU_new - AU)
                U, AU, theta = U_new, AU_new, theta_next
                L *= 0.9  # let the step grow again
                if k % self.gap_every:
                    continue
                c = gated_certificate(sub, y, U, beta, prediction=AU, loss=loss)
                if c.dual > best_dual:
                    best_dual, best_point = c.dual, (idx, c.lam, c.scale)
                best_primal = min(best_primal, c.primal)
                certified = idx.numel() == self.op.P
                self.record(c.primal, U, idx, c.dual if certified else None, c.scale * c.lam if certified else None)
                if best_primal - best_dual <= stop_rel * max(abs(best_primal), 1e-300):
                    return "converged"
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
                      inner_ratio: float = 0.1, loss: Loss = SQUARED) -> SolverOutput:
    """Minimize the gated program from U0 (zeros by default) until the relative gap ≤ tol.

    loss: a loss of :data:`FISTA_LOSSES` ("squared" or "logistic", as a :class:`~cvxnn.losses.Loss`);
    y holds its targets (labels in {−1, +1} for the logistic loss).
    screening: remove groups proved zero by the gap-safe test (checked at every gap evaluation).
    working_set: solve on the support plus the best-scored groups (at least ``ws_start`` and twice
    the support; doubled when an outer iteration did not halve the gap), each inner solve to a relative gap of
    max(tol, inner_ratio · the current global relative gap).
    ``max_iter`` counts FISTA iterations over all inner solves. Ctrl-C stops the solve and returns
    the best iterate with its certificate. The returned U is the best iterate seen; ``history``
    holds (seconds, objective, best certified lower bound). ``info`` reports "screened" (groups
    removed), "screened_groups" (their indices), "screen_events" ((seconds, groups removed so
    far)), "working_sets" (sizes per outer iteration), "outer_iterations", "objective",
    "lower_bound" and "relative_gap" (certified over all groups) and "dual_point" (the θ of that
    lower bound, feasible for every group, as a NumPy vector).
    """
    s = _GatedSolve(op, y, beta, U0, max_iter, gap_every, time_limit, callback, screening, loss)
    ws_sizes: list[int] = []
    status, outer, previous_gap = "max_iter", 0, float("inf")
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
                support = s.U.norm(dim=1) > 0
                size = max(ws_start, 2 * int(support.sum()), ws_sizes[-1] if ws_sizes else 0)
                if ws_sizes and s.relative_gap() > 0.5 * previous_gap:  # too little progress: grow
                    size = max(size, 2 * ws_sizes[-1])
                if size < idx.numel():
                    score = torch.where(support, torch.inf, cert.norms.to(support.device))[idx]
                    idx = idx[torch.topk(score, size).indices].sort().values
            ws_sizes.append(int(idx.numel()))
            previous_gap = s.relative_gap()
            stop_rel = tol if idx.numel() == int(s.active.sum()) else max(tol, inner_ratio * s.relative_gap())
            s.fista(idx, stop_rel)
    except KeyboardInterrupt:
        status = "interrupted"
        s.certify(notify=False)
    info = {"screened": int((~s.active).sum()),
            "screened_groups": torch.nonzero(~s.active).flatten().cpu().tolist(),
            "screen_events": s.screen_events, "working_sets": ws_sizes,
            "outer_iterations": outer, "objective": s.best_primal, "lower_bound": s.best_lower,
            "relative_gap": s.relative_gap(),
            "dual_point": None if s.theta is None else s.theta.cpu().numpy()}
    return SolverOutput(s.best_U.detach().cpu().double().numpy(), torch.zeros_like(s.best_U).cpu().double().numpy(),
                        status, s.n_iter, s.elapsed(), s.history, info=info)
