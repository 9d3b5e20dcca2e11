"""The barrier method for the gated program (solver="ipm", formulation="gated"): agreement with the reference,
certificates, warm and stopped solves, the removal of the barrier's dust, and what "auto" picks."""

import numpy as np
import pytest
import torch

import cvxnn
from cvxnn.losses import loss_from
from cvxnn.operators import PatternOperator
from cvxnn.solvers.fista import gated_gap
from cvxnn.solvers.gated_interior_point import solve_gated_interior
from cvxnn.training import _choose_solver


def _problem(seed: int = 0, n: int = 60, d: int = 4, logistic: bool = False):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    y = np.maximum(X @ rng.standard_normal(d), 0) - np.maximum(X @ rng.standard_normal(d), 0)
    y = y + 0.1 * rng.standard_normal(n)
    return X, (np.where(y > np.median(y), 1.0, -1.0) if logistic else y), 0.3


@pytest.mark.parametrize("activation", ["relu", "leaky_relu", "abs"])
@pytest.mark.parametrize("loss", ["squared", "logistic"])
@pytest.mark.parametrize("bias", [False, True])
def test_gated_ipm_agrees_with_the_reference(activation, loss, bias):
    X, y, beta = _problem(seed=1, logistic=loss == "logistic")
    pats = cvxnn.sample_patterns(np.c_[X, np.ones(len(X))] if bias else X, 30, seed=2)
    fast = cvxnn.fit(X, y, beta, patterns=pats, formulation="gated", solver="ipm", activation=activation, loss=loss,
                     bias=bias, tol=1e-7)
    ref = cvxnn.fit(X, y, beta, patterns=pats, formulation="gated", solver="reference", activation=activation,
                    loss=loss, bias=bias)
    assert fast.solver == "ipm" and fast.status == "optimal" and fast.relative_gap <= 1e-7
    assert fast.lower_bound <= ref.objective * (1 + 1e-9) and ref.lower_bound <= fast.objective * (1 + 1e-9)
    assert fast.objective == pytest.approx(ref.objective, rel=1e-6)
    # no dust: the blocks that are zero at the reference's solution are exactly zero
    support = np.linalg.norm(fast.v, axis=1) > 0
    assert 0 < support.sum() < len(pats)
    assert np.all(np.linalg.norm(ref.v[~support], axis=1) <= 1e-6 * np.linalg.norm(ref.v, axis=1).max())


def test_every_iterate_is_certified_and_the_history_is_monotone():
    X, y, beta = _problem(seed=3, n=80)
    pats = cvxnn.sample_patterns(X, 40, seed=0)
    op = PatternOperator(X, pats.masks)
    out = solve_gated_interior(op, torch.as_tensor(y), beta, op.masks.double(), tol=1e-9)
    ref = cvxnn.fit(X, y, beta, patterns=pats, formulation="gated", solver="reference")
    assert out.status == "optimal" and out.info["relative_gap"] <= 1e-9
    primal, lower = np.array([h[1] for h in out.history]), np.array([h[2] for h in out.history])
    assert np.all(np.diff(primal) <= 1e-12 * primal[0]) and np.all(np.diff(lower) >= 0)
    assert np.all(lower <= ref.objective * (1 + 1e-9)) and np.all(primal >= ref.objective * (1 - 1e-9))
    value, dual, _ = gated_gap(op, torch.as_tensor(y), torch.as_tensor(out.v), beta)
    assert value == pytest.approx(out.info["objective"], rel=1e-12) and value == pytest.approx(ref.objective, rel=1e-8)


def test_warm_start_float32_and_stopped_solves():
    X, y, beta = _problem(seed=4, n=100, d=5)
    pats = cvxnn.sample_patterns(X, 50, seed=1)
    op = PatternOperator(X, pats.masks)
    yt, weights = torch.as_tensor(y), op.masks.double()
    cold = solve_gated_interior(op, yt, beta, weights, tol=1e-8)
    warm = solve_gated_interior(op, yt, beta, weights, tol=1e-8, U0=torch.as_tensor(cold.v) * 0.9)
    assert warm.status == "optimal" and warm.n_iter < cold.n_iter
    assert warm.info["objective"] == pytest.approx(cold.info["objective"], rel=1e-7)
    op32 = PatternOperator(X, pats.masks, dtype=torch.float32)  # computed in float64 all the same
    single = solve_gated_interior(op32, yt.float(), beta, weights.float(), tol=1e-6)
    assert single.info["objective"] == pytest.approx(cold.info["objective"], rel=1e-6)
    stopped = solve_gated_interior(op, yt, beta, weights, tol=1e-12, max_iter=3)
    assert stopped.status == "max_iter" and stopped.n_iter == 3
    assert stopped.history[-1][2] <= cold.info["objective"] <= stopped.info["objective"]
    value, _, _ = gated_gap(op, yt, torch.as_tensor(stopped.v), beta)
    assert value == pytest.approx(stopped.info["objective"], rel=1e-12)


def test_auto_takes_ipm_where_a_step_is_cheap_and_ipm_refuses_what_it_lacks():
    assert _choose_solver("auto", "gated", 569 * 500, design_shape=(569, 31)) == "ipm"  # breast cancer
    assert _choose_solver("auto", "gated", 569 * 500, loss=loss_from("logistic"), design_shape=(569, 31)) == "ipm"
    assert _choose_solver("auto", "gated", 2000 * 500, design_shape=(2000, 20)) == "fista"  # n³ dominates
    assert _choose_solver("auto", "gated", 569 * 500, design_shape=(569, 31), warm=True) == "fista"  # continues
    assert _choose_solver("auto", "gated", 569 * 500, loss=loss_from("hinge"), design_shape=(569, 31)) == "fista"
    assert _choose_solver("auto", "gated", 569 * 500, vector=True, design_shape=(569, 31), n_outputs=1) == "fista"
    with pytest.raises(ValueError, match="one output with the squared or logistic loss; got the 'cross_entropy'"):
        _choose_solver("ipm", "gated", 10, loss=loss_from("cross_entropy"), vector=True)
    X, y, beta = _problem(seed=5)
    with pytest.raises(ValueError, match="Use solver='fista'"):
        cvxnn.fit(X, np.c_[y, -y], beta, patterns=10, formulation="gated", solver="ipm")
