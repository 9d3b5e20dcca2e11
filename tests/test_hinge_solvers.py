"""The hinge loss L(z) = Σ_k (1 − y_k z_k)_+ in the fast solvers: gated FISTA (Nesterov smoothing with
continuation, then a barrier path by Newton's method) and the ReLU program's interior-point method (primal-dual
epigraph slacks), both certified against the true hinge program; and the smoothings they are built on
(solvers/smoothing.py)."""

import math

import numpy as np
import pytest
import torch
from scipy.optimize import minimize_scalar

import cvxnn
from cvxnn.activations import activation_from
from cvxnn.data import add_bias
from cvxnn.duality import max_dual_constraint
from cvxnn.losses import HINGE
from cvxnn.network import convex_objective
from cvxnn.operators import PatternOperator
from cvxnn.solvers.fista import solve_gated_fista
from cvxnn.solvers.interior_point import solve_relu_interior
from cvxnn.solvers.newton import solve_gated_polished
from cvxnn.solvers.smoothing import BarrierHinge, BarrierNorm, NesterovHinge
from cvxnn.training import AUTO_FAST_SIZE

ACTIVATIONS = ["relu", "leaky_relu", "abs"]
SOLVERS = {"gated": "fista", "relu": "ipm"}
BETA = 0.5
RTOL = 1e-8  # slack for comparing two solvers' values of the same optimum (the reference's own accuracy)


def _labels(seed: int, n: int, d: int) -> tuple[np.ndarray, np.ndarray]:
    """Gaussian inputs, ±1 labels from a two-neuron teacher with label noise (not separable)."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    score = np.maximum(X @ rng.standard_normal(d), 0) - 0.5 * np.maximum(X @ rng.standard_normal(d), 0) - 0.2
    return X, np.where(score + 0.3 * rng.standard_normal(n) >= 0, 1.0, -1.0)


def _check_history(history: list, optimum: float) -> None:
    """Every recorded (seconds, objective, lower bound) brackets the optimum."""
    assert history
    for _, upper, lower in history:
        assert lower <= optimum * (1 + RTOL) and optimum <= upper * (1 + RTOL)


# ----------------------------------------------------------------------------- the smoothings


@pytest.mark.parametrize("mu", [1.0, 1e-3, 1e-7])
def test_barrier_hinge_is_the_minimized_barrier_with_its_derivatives(mu):
    """ψ_μ(m) = min_s s − μ log s − μ log(s − m): value against a numerical minimization, slope and curvature
    against finite differences, slope in (0, 1), and |ψ_μ(m) − (m)_+| ≤ 2μ + μ max(|log 4μ²|, |log μ(|m| + 4μ)|)
    (from (r − |m|)/2 ∈ [0, μ] and r + 2μ ∈ [4μ, |m| + 4μ])."""
    smooth = BarrierHinge(mu)
    m = mu * torch.tensor([-300.0, -2.0, -0.3, 0.0, 0.1, 1.0, 5.0, 400.0], dtype=torch.float64)
    for mk, value, s in zip(m.tolist(), smooth.value(m).tolist(), smooth.slack(m).tolist()):
        low = max(mk, 0.0)
        res = minimize_scalar(lambda x: low + math.exp(x) - mu * math.log(low + math.exp(x))
                              - mu * math.log(low + math.exp(x) - mk), bounds=(math.log(mu) - 30, math.log(mu) + 30),
                              method="bounded", options={"xatol": 1e-12})
        assert value == pytest.approx(res.fun, rel=1e-9, abs=1e-12 * mu)
        assert s > low and s == pytest.approx(low + math.exp(res.x), rel=1e-5)
    h = 1e-6 * torch.maximum(m.abs(), torch.tensor(mu))
    slope, curvature = smooth.slope(m), smooth.curvature(m)
    torch.testing.assert_close(slope, (smooth.value(m + h) - smooth.value(m - h)) / (2 * h), rtol=1e-6, atol=1e-7)
    torch.testing.assert_close(curvature, (smooth.slope(m + h) - smooth.slope(m - h)) / (2 * h), rtol=1e-5, atol=0.0)
    assert bool(((slope > 0) & (slope < 1)).all()) and float(curvature.max()) <= smooth.max_curvature * (1 + 1e-12)
    bound = 2 * mu + mu * torch.maximum(torch.tensor(abs(math.log(4 * mu * mu))),
                                        torch.log(mu * (m.abs() + 4 * mu)).abs())
    assert bool(((smooth.value(m) - m.clamp(min=0)).abs() <= bound).all())


def test_nesterov_hinge_and_its_smoothed_dual():
    """ψ_μ(m) = max_{a∈[0,1]} am − (μ/2)a² on a grid of a, slope clip(m/μ, 0, 1), 0 ≤ (m)_+ − ψ_μ ≤ μ/2, and
    max_t tΣp − (μ/2)t²Σp² over [0, upper] on a grid of t."""
    mu = 0.3
    smooth = NesterovHinge(mu)
    m = torch.linspace(-1.0, 1.5, 41, dtype=torch.float64)
    a = torch.linspace(0.0, 1.0, 20001, dtype=torch.float64)
    brute = (a[None, :] * m[:, None] - 0.5 * mu * a[None, :] ** 2).amax(dim=1)
    torch.testing.assert_close(smooth.value(m), brute, rtol=0.0, atol=1e-8)
    torch.testing.assert_close(smooth.slope(m), (m / mu).clamp(0, 1))
    gap = m.clamp(min=0) - smooth.value(m)
    assert float(gap.min()) >= 0 and float(gap.max()) <= mu / 2 + 1e-15
    p = torch.tensor([0.2, 0.9, 0.5, 0.0], dtype=torch.float64)
    t = torch.linspace(0.0, 1.7, 170001, dtype=torch.float64)
    for upper in (1.7, 0.4):
        ts = t[t <= upper]
        grid = (ts * p.sum() - 0.5 * mu * ts ** 2 * (p * p).sum()).max()
        assert smooth.best_dual_on_ray(p, upper) == pytest.approx(float(grid), abs=1e-9)


def test_barrier_norm_is_the_minimized_cone_barrier_with_its_derivatives():
    """φ_μ(r) = min_t βt − μ log(t² − r²) with |φ_μ(r) − βr| ≤ μ(2 + |log(2μt_μ/β)|), and the coefficients of
    its Hessian against finite differences of its gradient (β/t_μ)u along and across u."""
    beta, mu = 0.7, 1e-2
    norm = BarrierNorm(beta, mu)
    for r in (0.0, 1e-3, 0.2, 3.0):
        res = minimize_scalar(lambda x: beta * (r + math.exp(x)) - mu * math.log((r + math.exp(x)) ** 2 - r * r),
                              bounds=(-40, 5), method="bounded", options={"xatol": 1e-12})
        value = float(norm.value(torch.tensor(r, dtype=torch.float64)))
        assert value == pytest.approx(res.fun, rel=1e-9, abs=1e-12)
        t = (mu + math.sqrt(mu * mu + (beta * r) ** 2)) / beta
        assert abs(value - beta * r) <= mu * (2 + abs(math.log(2 * mu * t / beta))) * (1 + 1e-12)  # equality at r = 0
    u = torch.tensor([0.3, -0.4], dtype=torch.float64)  # r = 0.5
    unit, across = u / u.norm(), torch.tensor([0.8, 0.6], dtype=torch.float64)

    def gradient(v: torch.Tensor) -> torch.Tensor:
        return norm.coefficients(v.norm())[0] * v

    tangential, radial = norm.coefficients(u.norm())
    h = 1e-6
    along = (gradient(u + h * unit) - gradient(u - h * unit)) / (2 * h)
    sideways = (gradient(u + h * across) - gradient(u - h * across)) / (2 * h)
    torch.testing.assert_close(along, radial * unit, rtol=1e-6, atol=1e-9)
    torch.testing.assert_close(sideways, tangential * across, rtol=1e-6, atol=1e-9)


# ----------------------------------------------------------------------------- both solvers against the reference


@pytest.mark.parametrize("formulation", ["gated", "relu"])
@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("patterns", ["sampled", "enumerated"])
@pytest.mark.parametrize("bias", [False, True])
def test_fast_solver_reaches_the_reference_optimum_to_a_certified_gap(formulation, activation, patterns, bias):
    X, y = _labels(seed=3, n=12 if patterns == "enumerated" else 40, d=2 if patterns == "enumerated" else 3)
    kw = dict(formulation=formulation, activation=activation, bias=bias, loss="hinge")
    fast = cvxnn.fit(X, y, BETA, patterns="all" if patterns == "enumerated" else 20, solver=SOLVERS[formulation],
                     tol=1e-6, **kw)
    ref = cvxnn.fit(X, y, BETA, patterns=fast.patterns, solver="reference", **kw)
    assert fast.solver == SOLVERS[formulation] and fast.status == "optimal" and fast.relative_gap <= 1e-6
    assert fast.patterns.complete == (patterns == "enumerated")
    # both bound the same optimum: each lower bound is below the other's objective, so they agree to the gaps
    assert fast.lower_bound <= ref.objective * (1 + RTOL) and ref.lower_bound <= fast.objective * (1 + RTOL)
    assert abs(fast.objective - ref.objective) <= max(fast.gap, ref.gap) + RTOL * ref.objective
    _check_history(fast.history, ref.objective)
    assert fast.network_objective >= fast.objective * (1 - 1e-9)  # Φ (and the cone decomposition, gated)


@pytest.mark.parametrize("formulation", ["gated", "relu"])
def test_vector_outputs(formulation):
    """Two ±1 output columns, both vector penalties."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((40, 3))
    Y = np.where(np.column_stack([X[:, 0] * X[:, 1] > 0, X[:, 2] + 0.3 * X[:, 0] > 0]), 1.0, -1.0)
    pats = cvxnn.sample_patterns(add_bias(X), 20, seed=0)
    for penalty in ("per_output", "group"):
        kw = dict(patterns=pats, formulation=formulation, loss="hinge", vector_penalty=penalty, bias=True)
        fast = cvxnn.fit(X, Y, 0.3, solver=SOLVERS[formulation], **kw)
        ref = cvxnn.fit(X, Y, 0.3, solver="reference", **kw)
        assert fast.status == "optimal" and fast.relative_gap <= 1e-6
        assert fast.lower_bound <= ref.objective * (1 + RTOL) and ref.lower_bound <= fast.objective * (1 + RTOL)
        _check_history(fast.history, ref.objective)


def test_float32_fista_agrees_with_the_reference():
    X, y = _labels(seed=0, n=60, d=4)
    pats = cvxnn.sample_patterns(X, 50, seed=0)
    for activation in ("relu", "leaky_relu"):
        kw = dict(patterns=pats, formulation="gated", loss="hinge", activation=activation)
        ref = cvxnn.fit(X, y, BETA, solver="reference", **kw)
        fit32 = cvxnn.fit(X, y, BETA, solver="fista", dtype=torch.float32, tol=1e-5, **kw)
        assert fit32.status == "optimal" and abs(fit32.objective - ref.objective) <= 1e-4 * ref.objective
        assert fit32.lower_bound <= ref.objective * (1 + 1e-7)


# ----------------------------------------------------------------------------- the certificates themselves


def _gated(X, y, pats, activation="relu", **kw):
    op = PatternOperator(X, pats.masks, activation=activation_from(activation))
    weights = torch.as_tensor(activation_from(activation).fit_weights(pats.masks), dtype=torch.float64)
    return solve_gated_polished(op, torch.as_tensor(y), BETA, weights, loss=HINGE, **kw), op


def _relu(X, y, pats, **kw):
    op = PatternOperator(X, pats.masks)
    return solve_relu_interior(op, torch.as_tensor(y), BETA, interior=torch.as_tensor(pats.gates.T), loss=HINGE, **kw)


@pytest.fixture(scope="module")
def problem():
    X, y = _labels(seed=1, n=50, d=4)
    Xt = add_bias(X)
    pats = cvxnn.sample_patterns(Xt, 30, seed=2)
    gated = cvxnn.fit(Xt, y, BETA, patterns=pats, formulation="gated", solver="reference", loss="hinge")
    relu = cvxnn.fit(Xt, y, BETA, patterns=pats, solver="reference", loss="hinge")
    return Xt, y, pats, gated.objective, relu.objective


def test_the_dual_points_are_feasible_for_the_true_hinge_program(problem):
    """θ_k y_k ∈ [0, 1] (the hinge conjugate's domain), every dual constraint ≤ β (plain norms for the gated
    program, exact cone values for the ReLU program), and the reported lower bound is d(θ) = Σ θ_k y_k."""
    Xt, y, pats, gated_opt, relu_opt = problem
    gated, _ = _gated(Xt, y, pats, tol=1e-6)
    relu = _relu(Xt, y, pats, tol=1e-6)
    for out, formulation in ((gated, "gated"), (relu, "relu")):
        theta = out.dual
        assert out.status == "optimal" and theta is not None
        p = theta * y
        assert p.min() >= 0 and p.max() <= 1
        assert max_dual_constraint(Xt, pats.masks, theta, formulation).value <= BETA * (1 + 1e-7)
        assert max(h[2] for h in out.history) == pytest.approx(HINGE.dual_value(theta, y), rel=1e-12)
    assert max(h[2] for h in gated.history) <= gated_opt * (1 + RTOL)
    assert max(h[2] for h in relu.history) <= relu_opt * (1 + RTOL)


def test_fista_alone_continues_the_smoothing_and_never_screens(problem):
    """Without the Newton phase FISTA reaches a loose gap by decreasing μ; the gap-safe test is off for the
    hinge even when screening is asked for (the hinge dual is linear, not strongly concave)."""
    Xt, y, pats, gated_opt, _ = problem
    out = solve_gated_fista(PatternOperator(Xt, pats.masks), torch.as_tensor(y), BETA, loss=HINGE, tol=2e-2,
                            screening=True)
    assert out.status == "optimal" and out.info["relative_gap"] <= 2e-2
    assert out.info["smoothing"] < 1.0 and out.info["screened"] == 0
    _check_history(out.history, gated_opt)


@pytest.mark.parametrize("stop", [dict(max_iter=5), dict(time_limit=0.0)])
def test_a_stopped_solve_returns_a_valid_bound(problem, stop):
    Xt, y, pats, gated_opt, relu_opt = problem
    gated, op = _gated(Xt, y, pats, tol=1e-6, **stop)
    relu = _relu(Xt, y, pats, tol=1e-6, **stop)
    assert gated.status == relu.status == next(iter(stop))
    for out, optimum, objective in (
            (gated, gated_opt, HINGE.value(op.matvec(torch.as_tensor(gated.v)).numpy(), y)
             + BETA * np.linalg.norm(gated.v, axis=1).sum()),
            (relu, relu_opt, convex_objective(Xt, y, pats.masks, relu.v, relu.w, BETA, loss=HINGE))):
        _check_history(out.history, optimum)
        assert objective == pytest.approx(min(h[1] for h in out.history), rel=1e-12)
        assert objective > optimum * (1 + 1e-6)  # stopped early: the checks above mean something


def test_an_unreachable_tolerance_stops_the_barrier_path_as_stalled(problem):
    """Its gap is about nμ and its Newton steps lose accuracy near μ ~ 1e-9: asked for 1e-13 the path stops when
    decreasing μ no longer halves the gap, and returns its best certified point (not FISTA's 20 000 iterations)."""
    Xt, y, pats, gated_opt, _ = problem
    out, op = _gated(Xt, y, pats, tol=1e-13)
    _, upper, lower = out.history[-1]
    assert out.status == "stalled" and upper - lower > 1e-13 * upper and upper - lower < 1e-6 * upper
    _check_history(out.history, gated_opt)
    objective = HINGE.value(op.matvec(torch.as_tensor(out.v)).numpy(), y) + BETA * np.linalg.norm(out.v, axis=1).sum()
    assert objective == pytest.approx(min(h[1] for h in out.history), rel=1e-12)


def test_auto_picks_the_fast_solver_above_the_size_threshold():
    X, y = _labels(seed=4, n=260, d=3)
    P = 2 * AUTO_FAST_SIZE // 260  # sampled patterns are de-duplicated: ask for more than the threshold needs
    for formulation, solver in SOLVERS.items():
        fit = cvxnn.fit(X, y, 2.0, patterns=P, formulation=formulation, loss="hinge")
        assert len(fit.patterns) * len(y) > AUTO_FAST_SIZE
        assert fit.solver == solver and fit.status == "optimal" and fit.relative_gap <= 1e-6
    small = cvxnn.fit(X[:30], y[:30], 2.0, patterns=10, loss="hinge")
    assert small.solver == "reference"


def test_the_woodbury_newton_step_solves_the_dense_system():
    """(AᵀHA + R)⁻¹b with a wide range of h (as near the barrier's end) and block-diagonal R with a nearly
    singular direction per block, against the dense solve."""
    from cvxnn.solvers.newton import _woodbury_step

    gen = torch.Generator().manual_seed(0)
    n, groups, size = 30, 12, 4
    A = torch.randn(n, groups * size, generator=gen, dtype=torch.float64)
    h = 10.0 ** torch.empty(n, dtype=torch.float64).uniform_(-6, 6, generator=gen)
    Q = torch.linalg.qr(torch.randn(groups, size, size, generator=gen, dtype=torch.float64))[0]
    eig = torch.tensor([1e-6, 1.0, 2.0, 5.0], dtype=torch.float64)
    curv = Q @ torch.diag(eig) @ Q.transpose(1, 2)
    entries = torch.arange(groups * size).view(groups, size)
    b = torch.randn(groups * size, generator=gen, dtype=torch.float64)
    dense = A.T @ (h[:, None] * A) + torch.block_diag(*curv)
    x = _woodbury_step(A, h, curv, entries, b)
    reference = torch.linalg.solve(dense, b)
    assert x is not None  # accepted: backward error (as it computes it) ≤ 1e-10
    # as accurate as the dense solve: backward error within a few times LU's, forward error within cond(dense)·eps
    assert float((dense @ x - b).norm()) <= 10 * float((dense @ reference - b).norm())
    torch.testing.assert_close(x, reference, rtol=1e-6, atol=0.0)
