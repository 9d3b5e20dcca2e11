"""Gated FISTA with gap-safe screening and working sets (cvxnn.solvers.fista).

Every mode must reach the reference optimum to the requested gap, certify that gap with a dual
point feasible for *all* groups, and only screen groups that are zero at the optimum.
"""

import itertools

import numpy as np
import pytest
import torch

import cvxnn
from cvxnn.operators import PatternOperator
from cvxnn.solvers.fista import group_norm_bounds, solve_gated_fista

MODES = list(itertools.product([False, True], [False, True]))  # (screening, working_set)


def _problem(seed: int = 0, n: int = 60, d: int = 4, n_patterns: int = 60):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    y = np.maximum(X @ rng.standard_normal(d), 0) - 0.5 * np.maximum(X @ rng.standard_normal(d), 0) \
        + 0.1 * rng.standard_normal(n)
    pats = cvxnn.sample_patterns(X, n_patterns, seed=seed)
    return X, y, pats


def _beta_max(X, masks, y) -> float:
    """Smallest β at which U = 0 is optimal: max_i ‖XᵀD_iy‖."""
    return float(np.linalg.norm((masks * y[:, None]).T @ X, axis=1).max())


def _prediction(X, masks, U) -> np.ndarray:
    return ((X @ U.T) * masks).sum(axis=1)


def _objective(X, masks, y, U, beta) -> float:
    r = _prediction(X, masks, U) - y
    return 0.5 * float(r @ r) + beta * float(np.linalg.norm(U, axis=1).sum())


@pytest.fixture(scope="module")
def problem():
    """A problem with a sparse optimum (β = 0.3 β_max) and its reference solution."""
    X, y, pats = _problem()
    beta = 0.3 * _beta_max(X, pats.masks, y)
    ref = cvxnn.fit(X, y, beta, patterns=pats, formulation="gated", solver="reference")
    return X, y, pats.masks, beta, ref


def _solve(X, y, masks, beta, dtype=torch.float64, **kw):
    op = PatternOperator(X, masks, dtype=dtype)
    return solve_gated_fista(op, torch.as_tensor(y, dtype=dtype), beta, **kw)


@pytest.mark.parametrize("screening,working_set", MODES)
def test_every_mode_reaches_the_reference_optimum_to_the_gap(problem, screening, working_set):
    X, y, masks, beta, ref = problem
    tol = 1e-7
    out = _solve(X, y, masks, beta, tol=tol, screening=screening, working_set=working_set)
    assert out.status == "optimal"
    obj = _objective(X, masks, y, out.v, beta)
    assert obj == pytest.approx(out.info["objective"], rel=1e-12)
    assert out.info["relative_gap"] <= tol
    assert out.info["lower_bound"] <= ref.objective * (1 + 1e-9)  # a valid lower bound
    assert (obj - ref.objective) / ref.objective <= tol + 1e-9  # optimal to the gap
    assert np.all(out.w == 0)


def test_modes_agree_with_plain_fista_on_the_prediction(problem):
    """F(U) − F* ≥ ½‖A(U) − A(U*)‖², so two solutions with gaps G₁, G₂ have predictions within √(2G₁) + √(2G₂)."""
    X, y, masks, beta, _ = problem
    plain = _solve(X, y, masks, beta, tol=1e-8, screening=False, working_set=False)
    fast = _solve(X, y, masks, beta, tol=1e-8, screening=True, working_set=True)
    radius = sum(np.sqrt(2 * (o.info["objective"] - o.info["lower_bound"])) for o in (plain, fast))
    diff = np.linalg.norm(_prediction(X, masks, plain.v) - _prediction(X, masks, fast.v))
    assert diff <= radius
    assert fast.info["objective"] == pytest.approx(plain.info["objective"], rel=2e-8)


def test_screening_removes_groups_and_only_those_zero_at_the_optimum(problem):
    X, y, masks, beta, ref = problem
    out = _solve(X, y, masks, beta, tol=1e-8, screening=True, working_set=False)
    screened = out.info["screened_groups"]
    assert out.info["screened"] == len(screened) > masks.shape[1] // 4  # the test is not vacuous
    assert np.all(out.v[screened] == 0)
    ref_norms = np.linalg.norm(ref.v, axis=1)
    assert np.all(ref_norms[screened] <= 1e-7 * ref_norms.max())
    # the reason they are zero: the optimal dual point is strictly inside their constraints
    lam = y - _prediction(X, masks, ref.v)
    slack = np.linalg.norm((masks * lam[:, None]).T @ X, axis=1)
    assert np.all(slack[screened] < beta)
    events = out.info["screen_events"]
    assert events and events[-1][1] == len(screened)


def test_the_certificate_holds_for_all_groups(problem):
    """Recompute the returned dual point's feasibility and value over every group, screened ones included."""
    X, y, masks, beta, _ = problem
    out = _solve(X, y, masks, beta, tol=1e-6, screening=True, working_set=True)
    theta = out.info["dual_point"]
    assert np.linalg.norm((masks * theta[:, None]).T @ X, axis=1).max() <= beta * (1 + 1e-10)
    assert out.info["lower_bound"] == pytest.approx(theta @ y - 0.5 * theta @ theta, rel=1e-12)
    obj = _objective(X, masks, y, out.v, beta)
    assert (obj - out.info["lower_bound"]) <= 1e-6 * obj
    times, objectives, lowers = map(np.array, zip(*out.history))
    assert np.all(np.diff(times) >= 0) and np.all(np.diff(lowers) >= 0)
    assert np.all(lowers <= objectives.min() * (1 + 1e-12))


def test_working_sets_grow_until_the_global_gap_is_met():
    X, y, pats = _problem(seed=1, n=80, n_patterns=120)
    beta = 0.4 * _beta_max(X, pats.masks, y)
    out = _solve(X, y, pats.masks, beta, tol=1e-7, screening=False, working_set=True, ws_start=4)
    sizes = out.info["working_sets"]
    assert sizes[0] < len(pats) and all(b >= a for a, b in zip(sizes, sizes[1:]))
    support = int((np.linalg.norm(out.v, axis=1) > 0).sum())
    assert 0 < support <= sizes[-1]
    assert out.status == "optimal" and out.info["relative_gap"] <= 1e-7


@pytest.mark.parametrize("screening,working_set", [(False, False), (True, True)])
def test_float32_agrees_with_float64(problem, screening, working_set):
    X, y, masks, beta, ref = problem
    out = _solve(X, y, masks, beta, dtype=torch.float32, tol=1e-5, screening=screening, working_set=working_set)
    assert out.status == "optimal"
    assert abs(_objective(X, masks, y, out.v, beta) - ref.objective) <= 1e-4 * ref.objective


def test_group_norm_bounds_are_upper_bounds_on_the_spectral_norms(problem):
    X, _, masks, _, _ = problem
    bounds = group_norm_bounds(PatternOperator(X, masks)).numpy()
    exact = np.array([np.linalg.norm(X[masks[:, i]], 2) if masks[:, i].any() else 0.0 for i in range(masks.shape[1])])
    assert np.all(exact <= bounds * (1 + 1e-12))


def test_budget_and_interrupt_return_the_best_point_with_a_certificate(problem):
    X, y, masks, beta, ref = problem
    out = _solve(X, y, masks, beta, tol=1e-12, max_iter=30)
    assert out.status == "max_iter" and out.n_iter == 30
    assert out.info["lower_bound"] <= ref.objective * (1 + 1e-9) <= out.info["objective"] * (1 + 1e-9)

    def stop(it, primal, lower):
        if it >= 20:
            raise KeyboardInterrupt

    out = _solve(X, y, masks, beta, tol=1e-12, callback=stop)
    assert out.status == "interrupted"
    assert out.info["lower_bound"] <= ref.objective * (1 + 1e-9) <= out.info["objective"] * (1 + 1e-9)


def test_warm_start_from_the_solution_stops_at_once(problem):
    X, y, masks, beta, _ = problem
    first = _solve(X, y, masks, beta, tol=1e-8)
    again = _solve(X, y, masks, beta, tol=1e-8, U0=torch.as_tensor(first.v))
    assert again.status == "optimal" and again.n_iter <= first.n_iter // 2


@pytest.mark.parametrize("cached", [True, False])
@pytest.mark.parametrize("activation", ["relu", "leaky_relu"])
def test_operator_products_match_the_dense_formulas_in_chunks(monkeypatch, cached, activation):
    """A(U) = Σ_i W_iXu_i and Aᵀ(r) = [XᵀW_ir]_i, W_i = aD_i + b(I − D_i), against dense NumPy, chunked."""
    import cvxnn.operators as operators

    if not cached:
        monkeypatch.setattr(operators, "MASK_CACHE_BYTES", 0)
    X, _, pats = _problem(seed=2, n=37, d=3, n_patterns=9)
    act = cvxnn.activation_from(activation)
    op = PatternOperator(X, pats.masks, chunk_rows=8, activation=act)
    assert (op._mask_values is not None) == cached
    rng = np.random.default_rng(3)
    U, r = rng.standard_normal((len(pats), 3)), rng.standard_normal(37)
    W = act.a * pats.masks + act.b * (~pats.masks)
    np.testing.assert_allclose(op.matvec(torch.as_tensor(U)).numpy(), ((X @ U.T) * W).sum(axis=1), rtol=1e-12)
    np.testing.assert_allclose(op.rmatvec(torch.as_tensor(r)).numpy(), (W * r[:, None]).T @ X, rtol=1e-12)


def test_a_loss_that_turns_nan_stops_the_line_search_with_the_best_point(problem, monkeypatch):
    """No step decreases a NaN loss: the line search used to double L forever. Now the solve stops as "stalled"
    and returns its best iterate, with a certificate that still brackets the optimum."""
    from cvxnn.solvers import fista

    X, y, masks, beta, ref = problem
    value, calls = fista.SmoothLoss.value, []

    def turns_nan(self, z):
        calls.append(1)
        return float("nan") if len(calls) > 60 else value(self, z)

    monkeypatch.setattr(fista.SmoothLoss, "value", turns_nan)
    out = _solve(X, y, masks, beta, tol=1e-12)
    assert out.status == "stalled" and len(calls) > 60
    assert np.isfinite(out.v).all()
    objective = _objective(X, masks, y, out.v, beta)
    assert ref.objective * (1 - 1e-9) <= objective == pytest.approx(out.info["objective"], rel=1e-12)
    assert out.info["lower_bound"] <= ref.objective * (1 + 1e-9)
