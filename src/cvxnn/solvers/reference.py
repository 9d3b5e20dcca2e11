"""Reference solver: cvxpy + Clarabel in float64 (accurate, for small problems).

ReLU program (THEORY (CVX)):
    min ½‖Σ_i D_iX(v_i − w_i) − y‖² + β Σ_i (‖v_i‖ + ‖w_i‖)  s.t. (2D_i − I)Xv_i ≥ 0, (2D_i − I)Xw_i ≥ 0.
Gated program (THEORY §1.5):
    min ½‖Σ_i D_iXu_i − y‖² + β Σ_i ‖u_i‖.
For a two-piece activation σ(t) = a(t)_+ + b(t)_- (THEORY §1.6) the fit term uses
(aD_i + b(I − D_i))X in place of D_iX; the cone constraints stay (2D_i − I)X· ≥ 0.
"""

from __future__ import annotations

import time

import numpy as np

from ..activations import RELU, Activation
from ..data import check_memory
from .result import SolverOutput

# Clarabel stops near these tolerances with status "optimal_inaccurate" (it cannot certify them in
# float64), yet its iterate is then far more accurate than at its defaults, which matters because
# the dual point built from the residual is only as accurate as the square root of the primal error.
CLARABEL_SETTINGS = dict(tol_gap_abs=1e-14, tol_gap_rel=1e-14, tol_feas=1e-14, tol_ktratio=1e-12, max_iter=500)
CLARABEL_FALLBACK = dict(tol_gap_abs=1e-10, tol_gap_rel=1e-10, tol_feas=1e-10, tol_ktratio=1e-8, max_iter=500)
ACCEPTED_STATUSES = ("optimal", "optimal_inaccurate")


def reference_memory_bytes(n: int, d: int, P: int, formulation: str) -> float:
    """Rough peak memory of cvxpy's canonicalization: about 200 bytes per entry of the n·d·P blocks."""
    return 200.0 * n * d * P * (2 if formulation == "relu" else 1)


def solve_reference(Xt: np.ndarray, y: np.ndarray, masks: np.ndarray, beta: float, formulation: str = "relu",
                    verbose: bool = False, activation: Activation = RELU) -> SolverOutput:
    import warnings

    import cvxpy as cp

    n, d = Xt.shape
    P = masks.shape[1]
    check_memory(reference_memory_bytes(n, d, P, formulation),
                 f"the reference solver on {n} samples x {d} features x {P} patterns",
                 "use fewer patterns or a smaller problem.")
    M = masks.astype(float)
    F = activation.fit_weights(masks)
    start = time.perf_counter()
    V = cp.Variable((d, P))
    if formulation == "relu":
        W = cp.Variable((d, P))
        pred = cp.sum(cp.multiply(F, Xt @ (V - W)), axis=1)
        S = 2 * M - 1
        constraints = [cp.multiply(S, Xt @ V) >= 0, cp.multiply(S, Xt @ W) >= 0]
        reg = cp.sum(cp.norm(V, 2, axis=0)) + cp.sum(cp.norm(W, 2, axis=0))
    elif formulation == "gated":
        W = None
        pred = cp.sum(cp.multiply(F, Xt @ V), axis=1)
        constraints = []
        reg = cp.sum(cp.norm(V, 2, axis=0))
    else:
        raise ValueError(f"formulation must be 'relu' or 'gated', got {formulation!r}.")
    problem = cp.Problem(cp.Minimize(0.5 * cp.sum_squares(pred - y) + beta * reg), constraints)
    for settings in (CLARABEL_SETTINGS, CLARABEL_FALLBACK):
        try:
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message="Solution may be inaccurate")
                problem.solve(solver=cp.CLARABEL, verbose=verbose, **settings)
            break
        except cp.error.SolverError:
            continue  # Clarabel can stop with a numerical error at the tight settings: relax once
    elapsed = time.perf_counter() - start
    if V.value is None or problem.status not in ACCEPTED_STATUSES:
        raise RuntimeError(f"the reference solver failed: status {problem.status}.")
    v = np.asarray(V.value).T.copy()
    w = np.zeros_like(v) if W is None else np.asarray(W.value).T.copy()
    iters = int(problem.solver_stats.num_iters or 0)
    return SolverOutput(v, w, str(problem.status), iters, elapsed)
