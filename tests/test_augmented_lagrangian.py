"""The augmented Lagrangian solver of the ReLU program (solvers/augmented_lagrangian.py) and the
activation-aware pattern operator: certified bounds bracket the reference optimum."""

import numpy as np
import pytest
import torch

import cvxnn
from cvxnn.activations import activation_from
from cvxnn.data import add_bias
from cvxnn.network import cone_violation, convex_objective
from cvxnn.operators import PatternOperator
from cvxnn.solvers.augmented_lagrangian import solve_relu_al
from cvxnn.training import _choose_solver

ACTIVATIONS = ["relu", "leaky_relu", "abs"]


def _problem(seed=0, n=14, d=3):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, d)), rng.standard_normal(n), 0.1


def _solve(X, y, beta, pats, act, dtype=torch.float64, **kw):
    op = PatternOperator(X, pats.masks, dtype=dtype, activation=activation_from(act))
    gates = None if pats.gates is None else pats.gates.T
    return solve_relu_al(op, torch.as_tensor(y, dtype=dtype), beta, interior=gates, design=X, **kw)


@pytest.mark.parametrize("act", ["leaky_relu", "abs"])
def test_fista_matches_the_reference_on_the_gated_program_for_activations(act):
    X, y, beta = _problem()
    P = cvxnn.sample_patterns(X, 30, seed=0)
    ref = cvxnn.fit(X, y, beta, patterns=P, formulation="gated", solver="reference", activation=act)
    fast = cvxnn.fit(X, y, beta, patterns=P, formulation="gated", solver="fista", tol=1e-5, activation=act)
    assert fast.status == "optimal"
    assert fast.objective == pytest.approx(ref.objective, rel=1e-5)
    assert fast.lower_bound <= ref.objective * (1 + 1e-9)


@pytest.mark.parametrize("act", ACTIVATIONS)
@pytest.mark.parametrize("patterns", ["sampled", "enumerated"])
def test_al_bounds_bracket_the_reference_optimum(act, patterns, theory_problem):
    if patterns == "sampled":
        X, y, beta = _problem()
        Xt = add_bias(X)
        pats = cvxnn.sample_patterns(Xt, 30, seed=0)
    else:
        X, y, beta = theory_problem
        Xt = add_bias(X)
        pats = cvxnn.enumerate_patterns(Xt)
    ref = cvxnn.fit(Xt, y, beta, patterns=pats, solver="reference", activation=act)
    out = _solve(Xt, y, beta, pats, act, max_iter=1500, tol=1e-6)
    _, primal, lower = out.history[-1]
    objective = convex_objective(Xt, y, pats.masks, out.v, out.w, beta, activation_from(act))
    assert lower <= ref.objective * (1 + 1e-9) and ref.objective <= objective * (1 + 1e-12)
    assert objective == pytest.approx(min(h[1] for h in out.history), rel=1e-10)
    assert (objective - ref.objective) / ref.objective < 2e-2
    scale = np.abs(Xt).max() * max(np.abs(out.v).max(), np.abs(out.w).max(), 1e-300)
    assert max(cone_violation(Xt, pats.masks, out.v), cone_violation(Xt, pats.masks, out.w)) <= 1e-12 * scale


def test_fit_with_al_reports_a_feasible_network_and_valid_bounds():
    X, y, beta = _problem(1, n=10, d=2)
    P = cvxnn.sample_patterns(add_bias(X), 12, seed=0)
    ref = cvxnn.fit(X, y, beta, patterns=P, bias=True, solver="reference")
    fast = cvxnn.fit(X, y, beta, patterns=P, bias=True, solver="al", tol=1e-4)
    assert fast.solver == "al" and fast.status in ("optimal", "max_iter")
    assert fast.lower_bound <= ref.objective * (1 + 1e-9) <= fast.objective * (1 + 2e-9)
    assert fast.network_objective == pytest.approx(fast.objective, rel=1e-9)
    if fast.status == "optimal":
        assert fast.relative_gap <= 1e-4 + 1e-12


@pytest.mark.parametrize("max_iter", [1, 20])
def test_the_certificate_is_valid_when_stopped_early(max_iter):
    X, y, beta = _problem(2)
    pats = cvxnn.sample_patterns(X, 20, seed=1)
    ref = cvxnn.fit(X, y, beta, patterns=pats, solver="reference")
    out = _solve(X, y, beta, pats, "relu", max_iter=max_iter, gap_every=5)
    assert out.status == "max_iter" and out.n_iter == max_iter
    for _, primal, lower in out.history:
        assert lower <= ref.objective * (1 + 1e-9) <= primal * (1 + 1e-12)


def test_float32_gives_valid_bounds_and_feasible_float64_blocks():
    X, y, beta = _problem()
    pats = cvxnn.sample_patterns(X, 20, seed=0)
    ref = cvxnn.fit(X, y, beta, patterns=pats, solver="reference")
    out = _solve(X, y, beta, pats, "relu", dtype=torch.float32, max_iter=800)
    assert out.v.dtype == np.float64
    objective = convex_objective(X, y, pats.masks, out.v, out.w, beta)
    assert ref.objective <= objective * (1 + 1e-12)
    assert out.history[-1][2] <= ref.objective * (1 + 1e-5)
    assert (objective - ref.objective) / ref.objective < 1e-1
    assert max(cone_violation(X, pats.masks, out.v), cone_violation(X, pats.masks, out.w)) <= 1e-12


def test_interrupt_and_time_limit_return_a_result():
    X, y, beta = _problem()
    pats = cvxnn.sample_patterns(X, 20, seed=0)

    def stop(it, primal, dual):
        if it >= 20:
            raise KeyboardInterrupt

    out = _solve(X, y, beta, pats, "relu", callback=stop, gap_every=10)
    assert out.status == "interrupted" and out.n_iter == 20 and np.isfinite(out.history[-1][1])
    timed = _solve(X, y, beta, pats, "relu", time_limit=0.0, gap_every=5)
    # the clock is read at every step, not only at the gap checks; the last iterate is still certified
    assert timed.status == "time_limit" and timed.n_iter == 1 and len(timed.history) == 1
    assert np.isfinite(timed.history[-1][1]) and timed.history[-1][2] <= timed.history[-1][1]
    warm = _solve(X, y, beta, pats, "relu", V0=torch.tensor(out.v), W0=torch.tensor(out.w),
                  multipliers=tuple(torch.tensor(m) for m in out.multipliers), rho=out.rho, max_iter=10)
    assert warm.history[0][1] <= out.history[-1][1] * 1.5


def test_auto_choice_and_capabilities():
    act = activation_from("relu")
    assert _choose_solver("auto", "relu", 60_000, act, design_shape=(600, 10)) == "ipm"  # never al: slow to small gaps
    assert _choose_solver("auto", "gated", 60_000, activation_from("abs")) == "fista"
    assert _choose_solver("auto", "relu", 1_000, act) == "reference"
    X, y, beta = _problem()
    with pytest.raises(ValueError, match="'al' does not support the 'gated' program"):
        cvxnn.fit(X, y, beta, patterns=5, formulation="gated", solver="al")


def test_a_residual_that_turns_nan_stops_the_line_search_with_the_best_point(monkeypatch):
    """No step decreases a NaN objective: the backtracking used to double L forever. Now the solve stops as
    "stalled" with its best cone-feasible point, which cannot beat the reference optimum."""
    from cvxnn.solvers import augmented_lagrangian

    X, y, beta = _problem(n=40)
    pats = cvxnn.sample_patterns(X, 10, seed=0)
    ref = cvxnn.fit(X, y, beta, patterns=pats, solver="reference")
    forward, calls = augmented_lagrangian._Certifier.forward, []

    def turns_nan(self, U):
        calls.append(1)
        r, G = forward(self, U)
        return (r * float("nan"), G) if len(calls) > 50 else (r, G)

    monkeypatch.setattr(augmented_lagrangian._Certifier, "forward", turns_nan)
    out = _solve(X, y, beta, pats, "relu", tol=1e-10)
    assert out.status == "stalled" and len(calls) > 50
    assert np.isfinite(out.v).all() and np.isfinite(out.w).all()
    assert max(cone_violation(X, pats.masks, out.v), cone_violation(X, pats.masks, out.w)) <= 1e-12
    assert convex_objective(X, y, pats.masks, out.v, out.w, beta) >= ref.objective * (1 - 1e-9)


def test_float32_stops_at_its_precision_floor_instead_of_running_to_max_iter():
    """In float32 the certified gap levels off near 1e-5 (round-off in the residual dual point): once below √ε ≈ 3e-4
    it no longer halves, and the solve stops "stalled" within the float32 target of 1e-4, long before its
    20 000 iterations; float64 on the same problem reaches tol as before."""
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((50, 4)), rng.standard_normal(50)
    single = cvxnn.fit(X, y, 1.0, patterns=20, solver="al", dtype=torch.float32, tol=1e-6)
    double = cvxnn.fit(X, y, 1.0, patterns=20, solver="al", tol=1e-6)
    assert single.status == "stalled" and single.n_iter < 5000
    assert 1e-6 < single.relative_gap <= 1e-4
    assert double.status == "optimal" and double.relative_gap <= 1e-6
    assert single.objective == pytest.approx(double.objective, rel=1e-4)
