"""Newton's method on the active support of the gated program, and the FISTA + Newton solver."""

import numpy as np
import pytest
import torch

import cvxnn
from cvxnn.operators import PatternOperator
from cvxnn.solvers.fista import gated_gap, solve_gated_fista
from cvxnn.solvers.newton import newton_polish, solve_gated_polished


@pytest.fixture(scope="module")
def problem():
    rng = np.random.default_rng(3)
    X = rng.standard_normal((120, 6))
    y = np.maximum(X @ rng.standard_normal(6), 0) - np.maximum(X @ rng.standard_normal(6), 0)
    y += 0.1 * rng.standard_normal(120)
    pats = cvxnn.sample_patterns(X, 25, seed=1)
    return X, y, pats, 0.5


def _gap(op, y, U, beta):
    primal, dual, _ = gated_gap(op, y, U, beta)
    return primal, (primal - dual) / primal


def test_polish_turns_a_loose_solution_into_a_certified_one(problem):
    X, y, pats, beta = problem
    op = PatternOperator(X, pats.masks)
    yt = torch.as_tensor(y)
    loose = torch.as_tensor(solve_gated_fista(op, yt, beta, tol=1e-2).v)
    before_value, before_gap = _gap(op, yt, loose, beta)
    polished = newton_polish(op.X, op.masks.double(), yt, beta, loose)
    after_value, after_gap = _gap(op, yt, polished, beta)
    assert before_gap > 1e-4
    assert after_value <= before_value
    assert after_gap < 1e-8
    ref = cvxnn.fit(X, y, beta, patterns=pats, formulation="gated", solver="reference")
    assert after_value == pytest.approx(ref.objective, rel=1e-9)


def test_polish_with_a_wrong_support_is_caught_by_the_full_gap(problem):
    X, y, pats, beta = problem
    op = PatternOperator(X, pats.masks)
    yt = torch.as_tensor(y)
    dense = torch.as_tensor(np.random.default_rng(0).standard_normal((len(pats), X.shape[1])) * 1e-3)
    out = solve_gated_polished(op, yt, beta, op.masks.double(), tol=1e-9, U0=dense)
    value, gap = _gap(op, yt, torch.as_tensor(out.v), beta)
    assert out.status == "optimal" and gap <= 1e-9
    ref = cvxnn.fit(X, y, beta, patterns=pats, formulation="gated", solver="reference")
    assert value == pytest.approx(ref.objective, rel=1e-8)


@pytest.mark.parametrize("activation", ["relu", "leaky_relu", "abs"])
def test_fit_fista_reaches_tight_certified_gaps(problem, activation):
    X, y, pats, beta = problem
    fast = cvxnn.fit(X, y, beta, patterns=pats, formulation="gated", solver="fista", tol=1e-9, activation=activation)
    ref = cvxnn.fit(X, y, beta, patterns=pats, formulation="gated", solver="reference", activation=activation)
    assert fast.status == "optimal" and fast.relative_gap <= 1e-9
    assert fast.lower_bound <= ref.objective * (1 + 1e-12) and ref.lower_bound <= fast.objective * (1 + 1e-12)
    assert fast.objective == pytest.approx(ref.objective, rel=1e-8)


@pytest.mark.parametrize("h_kind", ["squared", "logistic"])
@pytest.mark.parametrize("curvature", ["penalty", "barrier"])
def test_support_newton_step_solves_the_dense_newton_system(h_kind, curvature):
    """The two-Woodbury step against the dense md x md Hessian BᵀΛB + blockdiag τ(I − ûûᵀ) + ρûûᵀ: the penalty's
    (τ = β/‖u‖, ρ = 0) and the barrier smoothing's (0 < ρ < τ, one block at u = 0 where ρ = τ)."""
    from cvxnn.solvers.newton import _support_newton_step
    from cvxnn.solvers.smoothing import BarrierNorm

    rng = np.random.default_rng(5)
    n, d, m, beta = 40, 4, 7, 0.7
    X = torch.as_tensor(rng.standard_normal((n, d)))
    Ws = torch.as_tensor(rng.random((n, m)) < 0.5, dtype=torch.float64)
    u = torch.as_tensor(rng.standard_normal((m, d)))
    norms = u.norm(dim=1)
    if curvature == "penalty":
        tangential, radial = beta / norms, torch.zeros(m, dtype=torch.float64)
    else:
        u[0] = 0.0
        norms = u.norm(dim=1)
        tangential, radial = BarrierNorm(beta, 0.05).coefficients(norms)
        assert 0 < float(radial[1:].min()) and bool((radial[1:] < tangential[1:]).all())
    unit = u / norms.clamp(min=1e-300)[:, None]
    h = torch.ones(n, dtype=torch.float64) if h_kind == "squared" else torch.as_tensor(rng.random(n) * 0.25)
    b = torch.as_tensor(rng.standard_normal((m, d)))
    B = (Ws[:, :, None] * X[:, None, :]).reshape(n, m * d)
    H = B.T @ (h[:, None] * B)
    for j in range(m):
        outer = torch.outer(unit[j], unit[j])
        H[j * d:(j + 1) * d, j * d:(j + 1) * d] += tangential[j] * (torch.eye(d, dtype=torch.float64) - outer) \
            + radial[j] * outer
    step = _support_newton_step(X, Ws, X @ X.T, h, tangential, radial, unit, b,
                                lambda V: (Ws * (X @ V.T)).sum(dim=1), lambda r: (Ws * r[:, None]).T @ X)
    expected = torch.linalg.solve(H, b.reshape(-1)).reshape(m, d)
    assert torch.allclose(step, expected, rtol=1e-9, atol=1e-9 * float(expected.abs().max()))


def test_polish_of_one_output_needs_no_dense_hessian(problem, monkeypatch):
    """(P, d) blocks are polished matrix-free, so MAX_NEWTON_DIM (the dense limit) does not stop them."""
    from cvxnn.solvers import newton

    X, y, pats, beta = problem
    op = PatternOperator(X, pats.masks)
    yt = torch.as_tensor(y)
    loose = torch.as_tensor(solve_gated_fista(op, yt, beta, tol=1e-2).v)
    monkeypatch.setattr(newton, "MAX_NEWTON_DIM", 1)
    polished = newton_polish(op.X, op.masks.double(), yt, beta, loose)
    value, gap = _gap(op, yt, polished, beta)
    assert gap < 1e-8
    ref = cvxnn.fit(X, y, beta, patterns=pats, formulation="gated", solver="reference")
    assert value == pytest.approx(ref.objective, rel=1e-9)


def test_the_scalar_polish_takes_the_cheaper_route_that_fits_in_memory(monkeypatch):
    """n x n Woodbury factors while n is small, the md x md matrix at large n (where n x n matrices cost ~n³ and
    memory), neither where neither fits."""
    import cvxnn.data
    from cvxnn.solvers.newton import scalar_route

    monkeypatch.setattr(cvxnn.data, "available_memory_bytes", lambda: 64 * 2**30)
    assert scalar_route(2000, 20, 100, True, "cpu") == "samples"
    assert scalar_route(10_000, 20, 100, True, "cpu") == "blocks"
    assert scalar_route(10_000, 65, 100, True, "cpu") == "samples"  # 6500 unknowns: beyond MAX_NEWTON_DIM
    assert scalar_route(40_000, 10, 20, False, "cpu") == "blocks"
    monkeypatch.setattr(cvxnn.data, "available_memory_bytes", lambda: 2**20)
    assert scalar_route(2000, 20, 100, True, "cpu") is None


@pytest.mark.parametrize("route", ["samples", "blocks"])
def test_both_routes_polish_to_the_same_certified_optimum(problem, monkeypatch, route):
    from cvxnn.solvers import newton

    X, y, pats, beta = problem
    op = PatternOperator(X, pats.masks)
    yt = torch.as_tensor(y)
    loose = torch.as_tensor(solve_gated_fista(op, yt, beta, tol=1e-2).v)
    monkeypatch.setattr(newton, "scalar_route", lambda *args: route)
    value, gap = _gap(op, yt, newton_polish(op.X, op.masks.double(), yt, beta, loose), beta)
    assert gap < 1e-8
    ref = cvxnn.fit(X, y, beta, patterns=pats, formulation="gated", solver="reference")
    assert value == pytest.approx(ref.objective, rel=1e-9)


def test_a_newton_system_too_large_for_memory_is_not_attempted(monkeypatch):
    """fit used to raise MemoryError wherever the n x n factors did not fit (n = 40 000 on this machine). Here
    n = 3000 and m·d ≤ 50: the md x md route is taken (and needs little memory); with room for no Newton system at
    all, FISTA alone reaches the gap."""
    import cvxnn.data
    from cvxnn.solvers import newton

    rng = np.random.default_rng(5)
    X = rng.standard_normal((3000, 5))
    y = np.maximum(X @ rng.standard_normal(5), 0) + 0.1 * rng.standard_normal(3000)
    pats = cvxnn.sample_patterns(X, 10, seed=0)
    calls = []
    monkeypatch.setattr(newton, "_polish_scalar", lambda *args: calls.append(1))
    monkeypatch.setattr(cvxnn.data, "available_memory_bytes", lambda: 20 * 2**20)  # 10 MB allowed
    blocks = cvxnn.fit(X, y, 1.0, patterns=pats, formulation="gated", solver="fista", tol=1e-8)
    assert not calls and blocks.status == "optimal" and blocks.relative_gap <= 1e-8
    monkeypatch.setattr(cvxnn.data, "available_memory_bytes", lambda: 2**20)  # 0.5 MB: no Newton system fits
    alone = cvxnn.fit(X, y, 1.0, patterns=pats, formulation="gated", solver="fista", tol=1e-6)
    assert not calls and alone.status == "optimal" and alone.relative_gap <= 1e-6
    assert alone.objective == pytest.approx(blocks.objective, rel=1e-6)
