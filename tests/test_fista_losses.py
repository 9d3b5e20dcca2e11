"""Gated FISTA (and its Newton polish) with the logistic loss, against the reference solver.

The program is min_U L(A(U)) + β Σ‖u_i‖ with L(z) = Σ_k log(1 + exp(−y_k z_k)); the certificate is
d(tλ) = Σ_k H(tλ_k y_k) at λ = −∇L(A(U)) scaled into the dual constraints ‖(W_iX)ᵀθ‖ ≤ β.
"""

import dataclasses
import itertools

import numpy as np
import pytest
import torch

import cvxnn
from cvxnn.activations import activation_from
from cvxnn.losses import LOGISTIC, SQUARED
from cvxnn.operators import PatternOperator
from cvxnn.solvers.fista import gated_gap, solve_gated_fista
from cvxnn.solvers.newton import newton_polish
from cvxnn.training import _choose_solver

MODES = list(itertools.product([False, True], [False, True]))  # (screening, working_set)
ACTIVATIONS = ["relu", "leaky_relu"]


def _labels(seed: int = 0, n: int = 60, d: int = 4, n_patterns: int = 50):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    score = np.maximum(X @ rng.standard_normal(d), 0) - 0.5 * np.maximum(X @ rng.standard_normal(d), 0) - 0.2
    y = np.where(score + 0.3 * rng.standard_normal(n) >= 0, 1.0, -1.0)
    return X, y, cvxnn.sample_patterns(X, n_patterns, seed=seed)


def _weights(masks, activation):
    act = activation_from(activation)
    return act.a * masks + act.b * (~masks)


def _objective(X, W, y, U, beta) -> float:
    z = ((X @ U.T) * W).sum(axis=1)
    return LOGISTIC.value(z, y) + beta * float(np.linalg.norm(U, axis=1).sum())


def _beta_max(X, W, y) -> float:
    """Smallest β at which U = 0 is optimal: max_i ‖(W_iX)ᵀλ₀‖ with λ₀ = −∇L(0) = y/2."""
    return float(np.linalg.norm((W * (0.5 * y)[:, None]).T @ X, axis=1).max())


@pytest.fixture(scope="module", params=ACTIVATIONS)
def problem(request):
    """A problem with a sparse optimum (β = 0.3 β_max) and its reference solution."""
    X, y, pats = _labels()
    W = _weights(pats.masks, request.param)
    beta = 0.3 * _beta_max(X, W, y)
    ref = cvxnn.fit(X, y, beta, patterns=pats, formulation="gated", solver="reference", loss="logistic",
                    activation=request.param)
    return X, y, pats, W, beta, request.param, ref


def _solve(X, y, pats, beta, activation, dtype=torch.float64, **kw):
    op = PatternOperator(X, pats.masks, dtype=dtype, activation=activation_from(activation))
    return solve_gated_fista(op, torch.as_tensor(y, dtype=dtype), beta, loss=LOGISTIC, **kw)


@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("seed", [0, 1])
def test_fit_fista_logistic_agrees_with_the_reference_to_the_gap(activation, seed):
    X, y, pats = _labels(seed=seed, n_patterns=40)
    kw = dict(patterns=pats, formulation="gated", loss="logistic", activation=activation)
    fast = cvxnn.fit(X, y, 0.5, solver="fista", tol=1e-6, **kw)
    ref = cvxnn.fit(X, y, 0.5, solver="reference", **kw)
    assert fast.solver == "fista" and fast.status == "optimal" and fast.relative_gap <= 1e-6
    # each lower bound is below the other solver's objective (both bound the same optimum)
    assert fast.lower_bound <= ref.objective * (1 + 1e-12) and ref.lower_bound <= fast.objective * (1 + 1e-12)
    assert abs(fast.objective - ref.objective) <= max(fast.gap, ref.gap) + 1e-12 * ref.objective


@pytest.mark.parametrize("screening,working_set", MODES)
def test_every_mode_reaches_the_reference_optimum_to_the_gap(problem, screening, working_set):
    X, y, pats, W, beta, activation, ref = problem
    tol = 1e-7
    out = _solve(X, y, pats, beta, activation, tol=tol, screening=screening, working_set=working_set)
    assert out.status == "optimal" and out.info["relative_gap"] <= tol
    obj = _objective(X, W, y, out.v, beta)
    assert obj == pytest.approx(out.info["objective"], rel=1e-12)
    # both bound the same optimum: each lower bound is below the other solver's objective
    assert out.info["lower_bound"] <= ref.objective * (1 + 1e-12) and ref.lower_bound <= obj * (1 + 1e-12)
    assert (obj - ref.objective) / ref.objective <= tol


def test_the_certificate_is_a_feasible_logistic_dual_point_for_all_groups(problem):
    """θ_k y_k ∈ [0, 1] (the conjugate's domain), ‖(W_iX)ᵀθ‖ ≤ β for every group, and d(θ) is the bound."""
    X, y, pats, W, beta, activation, _ = problem
    out = _solve(X, y, pats, beta, activation, tol=1e-6, screening=True, working_set=True)
    theta = out.info["dual_point"]
    p = theta * y
    assert p.min() >= 0 and p.max() <= 1
    assert np.linalg.norm((W * theta[:, None]).T @ X, axis=1).max() <= beta * (1 + 1e-10)
    assert out.info["lower_bound"] == pytest.approx(LOGISTIC.dual_value(theta, y), rel=1e-12)
    times, objectives, lowers = map(np.array, zip(*out.history))
    assert np.all(np.diff(lowers) >= 0) and np.all(lowers <= objectives.min() * (1 + 1e-12))


def test_screening_removes_only_groups_zero_at_the_optimum(problem):
    """The sphere ‖θ − θ*‖ ≤ √(2κG), κ = ¼, around the certificate's θ only drops groups with u_i* = 0."""
    X, y, pats, W, beta, activation, ref = problem
    out = _solve(X, y, pats, beta, activation, tol=1e-8, screening=True, working_set=False)
    screened = out.info["screened_groups"]
    assert out.info["screened"] == len(screened) > len(pats) // 2  # the test is not vacuous
    assert np.all(out.v[screened] == 0)
    ref_norms = np.linalg.norm(ref.v, axis=1)
    assert np.all(ref_norms[screened] <= 1e-7 * ref_norms.max())
    # the reason they are zero: the optimal dual point −∇L(ŷ*) is strictly inside their constraints
    lam = LOGISTIC.dual_direction(((X @ ref.v.T) * W).sum(axis=1), y)
    assert np.all(np.linalg.norm((W * lam[:, None]).T @ X, axis=1)[screened] < beta)


@pytest.mark.parametrize("screening,working_set", [(False, False), (True, True)])
def test_float32_agrees_with_float64(problem, screening, working_set):
    X, y, pats, W, beta, activation, ref = problem
    out = _solve(X, y, pats, beta, activation, dtype=torch.float32, tol=1e-5, screening=screening,
                 working_set=working_set)
    assert out.status == "optimal"
    assert abs(_objective(X, W, y, out.v, beta) - ref.objective) <= 1e-4 * ref.objective
    fit32 = cvxnn.fit(X, y, beta, patterns=pats, formulation="gated", solver="fista", loss="logistic",
                      activation=activation, dtype=torch.float32, tol=1e-5)
    assert fit32.status == "optimal" and abs(fit32.objective - ref.objective) <= 1e-4 * ref.objective
    assert fit32.lower_bound <= ref.objective * (1 + 1e-9)


def test_newton_polish_turns_a_loose_logistic_solution_into_a_certified_one(problem):
    X, y, pats, W, beta, activation, ref = problem
    op = PatternOperator(X, pats.masks, activation=activation_from(activation))
    yt = torch.as_tensor(y)
    loose = torch.as_tensor(solve_gated_fista(op, yt, beta, tol=1e-4, loss=LOGISTIC).v)  # support found
    polished = newton_polish(op.X, torch.as_tensor(W, dtype=torch.float64), yt, beta, loose, loss=LOGISTIC)
    (p0, d0, _), (p1, d1, _) = (gated_gap(op, yt, U, beta, loss=LOGISTIC) for U in (loose, polished))
    assert (p0 - d0) / p0 > 1e-6
    assert p1 <= p0 and (p1 - d1) / p1 < 1e-9
    assert p1 == pytest.approx(ref.objective, rel=1e-8)


def test_capabilities():
    assert _choose_solver("fista", "gated", 100, loss=LOGISTIC) == "fista"
    assert _choose_solver("auto", "gated", 10**6, loss=LOGISTIC) == "fista"
    assert _choose_solver("auto", "gated", 10**6, loss=SQUARED) == "fista"
    X, y, pats = _labels(n_patterns=5)
    with pytest.raises(ValueError, match="'fista' does not support the 'relu' program"):
        cvxnn.fit(X, y, 0.5, patterns=pats, formulation="relu", solver="fista", loss="logistic")

    @dataclasses.dataclass(frozen=True)
    class Undeclared(cvxnn.losses.Loss):
        name: str = "undeclared"

    with pytest.raises(ValueError, match="losses"):
        solve_gated_fista(PatternOperator(X, pats.masks), torch.as_tensor(y), 0.5, loss=Undeclared())
