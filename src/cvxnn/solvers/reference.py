"""Reference solver: cvxpy + Clarabel in float64 (accurate, for small problems).

ReLU program (THEORY (CVX)):
    min ½‖Σ_i D_iX(v_i − w_i) − y‖² + β Σ_i (‖v_i‖ + ‖w_i‖)  s.t. (2D_i − I)Xv_i ≥ 0, (2D_i − I)Xw_i ≥ 0.
Gated program (THEORY §1.5):
    min ½‖Σ_i D_iXu_i − y‖² + β Σ_i ‖u_i‖.
For a two-piece activation σ(t) = a(t)_+ + b(t)_- (THEORY §1.6) the fit term uses
(aD_i + b(I − D_i))X in place of D_iX; the cone constraints stay (2D_i − I)X· ≥ 0.

Any convex loss L (``loss``, see :mod:`cvxnn.losses`) replaces ½‖· − y‖² (THEORY §1.4).
Vector outputs (y of shape (n, c)): blocks V_i, W_i ∈ R^{d×c} with every column in the cone of
pattern i, prediction Σ_i D_iX(V_i − W_i) ∈ R^{n×c}, and penalty
β Σ_{i,k}(‖V_i[:, k]‖ + ‖W_i[:, k]‖) ("per_output") or β Σ_i(‖V_i‖_F + ‖W_i‖_F) ("group");
see :mod:`cvxnn.training` for what each one is equivalent to.
For a nonsmooth loss (hinge) the prediction is a separate variable z with the constraint
z = Σ_i D_iX(v_i − w_i), whose multiplier (an optimal dual point λ, up to sign) is returned.
"""

from __future__ import annotations

import time

import numpy as np

from ..activations import RELU, Activation
from ..losses import SQUARED, Loss
from ..data import check_memory
from ..duality import cone_sigma
from .result import SolverOutput

# Clarabel stops near these tolerances with status "optimal_inaccurate" (it cannot certify them in
# float64), yet its iterate is then far more accurate than at its defaults, which matters because
# the dual point built from the residual is only as accurate as the square root of the primal error.
CLARABEL_SETTINGS = dict(tol_gap_abs=1e-14, tol_gap_rel=1e-14, tol_feas=1e-14, tol_ktratio=1e-12, max_iter=500)
CLARABEL_FALLBACK = dict(tol_gap_abs=1e-10, tol_gap_rel=1e-10, tol_feas=1e-10, tol_ktratio=1e-8, max_iter=500)
ACCEPTED_STATUSES = ("optimal", "optimal_inaccurate")


def reference_memory_bytes(n: int, d: int, P: int, formulation: str, c: int = 1) -> float:
    """Rough peak memory of cvxpy's canonicalization: about 200 bytes per entry of the n·d·P blocks, per output."""
    return 200.0 * n * d * P * c * (2 if formulation == "relu" else 1)


VECTOR_PENALTIES = ("per_output", "group")


def solve_reference(Xt: np.ndarray, y: np.ndarray, masks: np.ndarray, beta: float, formulation: str = "relu",
                    verbose: bool = False, activation: Activation = RELU, loss: Loss = SQUARED,
                    vector_penalty: str = "per_output", time_limit: float | None = None) -> SolverOutput:
    """Solve the program; y is (n,) (blocks returned as (P, d)) or (n, c) (blocks (P, d, c)).

    time_limit: seconds for Clarabel (its ``time_limit`` setting, checked every iteration; cvxpy's
    canonicalization before it is not interrupted). When it runs out the status is "time_limit" and the
    blocks are Clarabel's last iterate, each block of the ReLU program projected onto its pattern's cone
    (:func:`_into_cones`), so the point is feasible and its certificate valid (zero blocks when Clarabel
    returned no iterate).
    """
    import warnings

    import cvxpy as cp

    n, d = Xt.shape
    P = masks.shape[1]
    c = 1 if y.ndim == 1 else y.shape[1]
    check_memory(reference_memory_bytes(n, d, P, formulation, c),
                 f"the reference solver on {n} samples x {d} features x {P} patterns x {c} outputs",
                 "use fewer patterns or a smaller problem.")
    if formulation not in ("relu", "gated"):
        raise ValueError(f"formulation must be 'relu' or 'gated', got {formulation!r}.")
    if vector_penalty not in VECTOR_PENALTIES:
        raise ValueError(f"vector_penalty must be one of {VECTOR_PENALTIES}, got {vector_penalty!r}.")
    M = masks.astype(float)
    F = activation.fit_weights(masks)
    S = 2 * M - 1
    start = time.perf_counter()
    Vs = [cp.Variable((d, P)) for _ in range(c)]
    Ws = [cp.Variable((d, P)) for _ in range(c)] if formulation == "relu" else []
    constraints = [cp.multiply(S, Xt @ B) >= 0 for B in Vs + Ws] if formulation == "relu" else []
    if formulation == "relu":
        preds = [cp.sum(cp.multiply(F, Xt @ (V - W)), axis=1) for V, W in zip(Vs, Ws)]
    else:
        preds = [cp.sum(cp.multiply(F, Xt @ V), axis=1) for V in Vs]
    if c == 1 or vector_penalty == "per_output":
        reg = sum(cp.sum(cp.norm(B, 2, axis=0)) for B in Vs + Ws)
    else:  # column norms of the stacked (c·d) x P matrix are the blocks' Frobenius norms
        reg = sum(cp.sum(cp.norm(cp.vstack(group), 2, axis=0)) for group in (Vs, Ws) if group)
    pred = preds[0] if y.ndim == 1 else cp.vstack(preds).T
    link = None
    if not loss.smooth:
        z = cp.Variable(y.shape)
        link = z == pred
        constraints.append(link)
        pred = z
    problem = cp.Problem(cp.Minimize(loss.cvxpy(pred, y) + beta * reg), constraints)
    for settings in (CLARABEL_SETTINGS, CLARABEL_FALLBACK, {}):
        limit = {} if time_limit is None else {"time_limit": max(time_limit - (time.perf_counter() - start), 0.0)}
        try:
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message="Solution may be inaccurate")
                problem.solve(solver=cp.CLARABEL, verbose=verbose, **settings, **limit)
            break
        except cp.error.SolverError:
            continue  # Clarabel can stop with a numerical error at tight settings (exp cones more often): relax
    elapsed = time.perf_counter() - start
    timed_out = time_limit is not None and elapsed >= time_limit and problem.status not in ACCEPTED_STATUSES
    if not timed_out and (Vs[0].value is None or problem.status not in ACCEPTED_STATUSES):
        raise RuntimeError(f"the reference solver failed: status {problem.status} (None: Clarabel stopped with a "
                           "numerical error at every setting, seen with exponential-cone losses and very small "
                           "beta); try a larger beta or fewer patterns.")
    blocks = [np.zeros((d, P)) if B.value is None else np.asarray(B.value) for B in Vs + Ws]
    if timed_out and formulation == "relu":  # Clarabel's last iterate, moved into the cones
        blocks = [_into_cones(Xt, masks, B) for B in blocks]
    v = np.stack([B.T for B in blocks[:c]], axis=-1)
    w = np.stack([B.T for B in blocks[c:]], axis=-1) if Ws else np.zeros_like(v)
    if y.ndim == 1:
        v, w = v[..., 0].copy(), w[..., 0].copy()
    dual = None if link is None or link.dual_value is None else np.asarray(link.dual_value, dtype=float)
    iters = int(problem.solver_stats.num_iters or 0) if problem.solver_stats is not None else 0
    status = "time_limit" if timed_out else str(problem.status)
    return SolverOutput(v, w, status, iters, elapsed, dual=dual)


def _into_cones(Xt: np.ndarray, masks: np.ndarray, B: np.ndarray) -> np.ndarray:
    """Columns b_i of B (d, P) moved into their cones K(D_i) = {u : (2D_i − I)X̃u ≥ 0}: those that violate a row are
    replaced by their projection Π_K(b_i) (:func:`~cvxnn.duality.cone_sigma`: σ·u* = Π_K(b_i))."""
    out = B.copy()
    signs = np.where(masks, 1.0, -1.0)
    violated = np.any(signs * (Xt @ B) < 0, axis=0)
    for i in np.flatnonzero(violated):
        sigma, direction = cone_sigma(Xt, masks[:, i], B[:, i])
        out[:, i] = sigma * direction
    return out
