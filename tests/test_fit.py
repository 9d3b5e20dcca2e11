import numpy as np
import pytest
import torch

import cvxnn
from cvxnn.network import convex_objective

from conftest import THEORY_OPT


def test_theory_problem_reaches_the_published_optimum(theory_problem):
    X, y, beta = theory_problem
    res = cvxnn.fit(X, y, beta, patterns="all", bias=True)
    assert len(res.patterns) == 16 and res.patterns.complete and res.certified_global
    assert res.objective == pytest.approx(THEORY_OPT, abs=2e-7)
    assert res.lower_bound <= res.objective + 1e-9
    assert res.relative_gap < 1e-7
    assert res.network_objective == pytest.approx(res.objective, rel=1e-9)
    assert res.n_neurons <= len(X) + 1
    assert np.allclose(res.predict(X), res.network.predict(X))


def test_lower_bound_is_computed_from_a_dual_point_not_copied(small_problem):
    X, y, beta = small_problem
    res = cvxnn.fit(X, y, beta, patterns=20, seed=0)
    assert res.lower_bound != res.objective
    assert res.lower_bound <= res.objective + 1e-9
    assert res.dual_check.value <= beta * (1 + 1e-6)
    assert 0 <= res.dual_check.pattern < len(res.patterns)


def test_more_patterns_never_raise_the_optimum_and_all_patterns_give_the_least(small_problem):
    X, y, beta = small_problem
    full = cvxnn.fit(X, y, beta, patterns="all")
    P = full.patterns
    for k in (3, 10, 30):
        sub = cvxnn.Patterns(P.masks[:, :k], P.gates[:, :k])
        assert cvxnn.fit(X, y, beta, patterns=sub).objective >= full.objective - 1e-8
    sampled = cvxnn.fit(X, y, beta, patterns=40, seed=1)
    assert sampled.objective >= full.objective - 1e-8


def test_gated_relaxation_is_below_the_relu_program_and_its_network_is_feasible(small_problem):
    X, y, beta = small_problem
    relu = cvxnn.fit(X, y, beta, patterns="all")
    gated = cvxnn.fit(X, y, beta, patterns=relu.patterns, formulation="gated")
    assert gated.objective <= relu.objective + 1e-8
    assert gated.lower_bound <= gated.objective + 1e-9
    # the decomposed network is a genuine ReLU network: its NC objective is at least p*
    assert gated.network_objective >= relu.objective - 1e-8
    assert gated.network_objective == pytest.approx(gated.network.objective(X, y, beta))


def test_relu_solution_satisfies_its_cone_constraints(small_problem):
    X, y, beta = small_problem
    res = cvxnn.fit(X, y, beta, patterns=25, seed=2)
    S = np.where(res.patterns.masks, 1.0, -1.0)
    scale = np.abs(X).max() * max(np.abs(res.v).max(), np.abs(res.w).max())
    assert np.min(S * (X @ res.v.T)) >= -1e-8 * scale
    assert np.min(S * (X @ res.w.T)) >= -1e-8 * scale
    assert convex_objective(X, y, res.patterns.masks, res.v, res.w, beta) == pytest.approx(res.objective)


def test_accepts_torch_tensors_and_boolean_masks(small_problem):
    X, y, beta = small_problem
    P = cvxnn.sample_patterns(X, 10, seed=0)
    a = cvxnn.fit(torch.as_tensor(X), torch.as_tensor(y), beta, patterns=P.masks)
    b = cvxnn.fit(X, y, beta, patterns=P)
    assert a.objective == pytest.approx(b.objective, rel=1e-9)


def test_default_patterns_enumerate_small_problems(small_problem):
    X, y, beta = small_problem
    res = cvxnn.fit(X, y, beta)
    assert res.patterns.complete and res.patterns.method == "enumerated"


def test_more_weight_decay_means_fewer_neurons_and_a_smaller_norm(small_problem):
    X, y, _ = small_problem
    P = cvxnn.enumerate_patterns(X)
    small = cvxnn.fit(X, y, 0.01, patterns=P)
    large = cvxnn.fit(X, y, 3.0, patterns=P)
    assert large.n_neurons <= small.n_neurons
    assert large.network.penalty() < small.network.penalty()
    # beyond beta_max = max_u |y^T (Xu)_+| the zero network is optimal
    huge = cvxnn.fit(X, y, 1e3, patterns=P)
    assert huge.n_neurons == 0 and huge.objective == pytest.approx(0.5 * y @ y)


@pytest.mark.parametrize("dtype,tol,rtol", [(torch.float64, 1e-7, 1e-6), (torch.float32, 1e-5, 1e-4)])
def test_fista_matches_the_reference_on_the_gated_program(small_problem, dtype, tol, rtol):
    X, y, beta = small_problem
    P = cvxnn.sample_patterns(X, 30, seed=0)
    ref = cvxnn.fit(X, y, beta, patterns=P, formulation="gated", solver="reference")
    fast = cvxnn.fit(X, y, beta, patterns=P, formulation="gated", solver="fista", tol=tol, dtype=dtype)
    assert fast.status == "optimal" and fast.solver == "fista"
    assert fast.objective == pytest.approx(ref.objective, rel=rtol)
    assert fast.lower_bound <= ref.objective * (1 + 1e-9)
    times = [h[0] for h in fast.history]
    assert times == sorted(times) and all(lb <= obj + 1e-9 for _, obj, lb in fast.history)


def test_solver_capabilities_are_declared(small_problem):
    X, y, beta = small_problem
    with pytest.raises(ValueError, match="does not support the 'relu' program"):
        cvxnn.fit(X, y, beta, patterns=5, solver="fista")


@pytest.mark.parametrize("formulation, solver", [("relu", "ipm"), ("gated", "fista")])
def test_a_time_limit_returns_the_best_certified_point_so_far(formulation, solver):
    rng = np.random.default_rng(3)
    X = rng.standard_normal((300, 8))
    y = np.maximum(X @ rng.standard_normal(8), 0.0) + 0.1 * rng.standard_normal(300)
    full = cvxnn.fit(X, y, 1.0, patterns=40, formulation=formulation, solver=solver, tol=1e-8)
    cut = cvxnn.fit(X, y, 1.0, patterns=40, formulation=formulation, solver=solver, tol=1e-8, time_limit=1e-6)
    assert full.status == "optimal" and cut.status == "time_limit"
    assert cut.n_iter < full.n_iter and cut.relative_gap > full.relative_gap
    # both bound the same program: the cut run's interval contains the optimum
    assert cut.lower_bound <= full.objective * (1 + 1e-9) and cut.objective >= full.lower_bound * (1 - 1e-9)
    assert cut.objective == pytest.approx(convex_objective(X, y, cut.patterns.masks, cut.v, cut.w, 1.0), rel=1e-9)


@pytest.mark.parametrize("limit", [0, -1.0, "5", float("nan"), float("inf"), True])
def test_a_time_limit_must_be_a_positive_number_of_seconds(small_problem, limit):
    X, y, beta = small_problem
    with pytest.raises(ValueError, match="time_limit"):
        cvxnn.fit(X, y, beta, patterns=5, time_limit=limit)


def test_the_reference_solver_stops_at_the_time_limit_with_a_feasible_certified_point():
    """Clarabel gets ``time_limit`` (it needs 17 s and 32 iterations here): its last iterate, projected onto the
    pattern cones, is a feasible point whose objective and lower bound bracket the optimum (ipm's, certified)."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((600, 10))
    y = np.maximum(X @ rng.standard_normal(10), 0) + 0.1 * rng.standard_normal(600)
    pats = cvxnn.sample_patterns(X, 80, seed=0)
    res = cvxnn.fit(X, y, 1.0, patterns=pats, solver="reference", time_limit=0.5)
    opt = cvxnn.fit(X, y, 1.0, patterns=pats, solver="ipm", tol=1e-8)
    assert res.status == "time_limit" and res.n_iter < 32
    signs = np.where(pats.masks, 1.0, -1.0)
    scale = np.abs(X).max() * max(np.abs(res.v).max(), np.abs(res.w).max())
    assert (signs * (X @ res.v.T)).min() >= -1e-9 * scale and (signs * (X @ res.w.T)).min() >= -1e-9 * scale
    assert res.lower_bound <= opt.objective and res.objective >= opt.lower_bound
    assert res.network_objective == pytest.approx(res.objective, rel=1e-9)


@pytest.mark.parametrize("loss", ["squared", "logistic"])
def test_costly_blocks_are_dropped_from_a_dusty_point_and_none_from_the_optimum(loss):
    """Small cone-feasible blocks added to the optimum (a gate lies in its own cone) raise the objective; the sweeps
    remove them and give the optimum back, and at the optimum itself they remove nothing."""
    from cvxnn.data import add_bias
    from cvxnn.losses import loss_from
    from cvxnn.training import _drop_costly_blocks

    rng = np.random.default_rng(4)
    X = add_bias(rng.standard_normal((40, 2)))
    y = np.maximum(X @ np.array([1.0, -1.0, 0.3]), 0) + 0.1 * rng.standard_normal(40)
    if loss == "logistic":
        y = np.where(y > np.median(y), 1.0, -1.0)
    pats = cvxnn.sample_patterns(X, 30, seed=2)
    res = cvxnn.fit(X, y, 0.5, patterns=pats, solver="reference", loss=loss)
    L = loss_from(loss)
    v, w = _drop_costly_blocks(X, y, pats.masks, res.v, res.w, 0.5, loss=L)
    np.testing.assert_array_equal(v, res.v)
    np.testing.assert_array_equal(w, res.w)
    zero = np.flatnonzero((np.linalg.norm(res.v, axis=1) == 0) & (np.linalg.norm(res.w, axis=1) == 0))[:6]
    assert zero.size >= 3
    dusty_v, dusty_w = res.v.copy(), res.w.copy()
    dusty_v[zero] = 0.05 * pats.gates[:, zero].T / np.linalg.norm(pats.gates[:, zero], axis=0)[:, None]
    dusty_w[zero[:2]] = 0.5 * dusty_v[zero[:2]]  # both sides of two patterns
    dusty = convex_objective(X, y, pats.masks, dusty_v, dusty_w, 0.5, loss=L)
    assert dusty > res.objective * (1 + 1e-3)
    v, w = _drop_costly_blocks(X, y, pats.masks, dusty_v, dusty_w, 0.5, loss=L)
    assert np.all(v[zero] == 0) and np.all(w[zero] == 0)
    assert convex_objective(X, y, pats.masks, v, w, 0.5, loss=L) == pytest.approx(res.objective, rel=1e-9)


def test_an_unfinished_ipm_fit_keeps_fewer_neurons_and_a_lower_objective(monkeypatch):
    """A solve stopped after 8 iterations (status max_iter) leaves weight on every block; fit drops the blocks that
    cost more than they give: 22 neurons instead of 80, and a lower objective than the raw iterate's."""
    import cvxnn.training as training
    from cvxnn.data import add_bias

    rng = np.random.default_rng(5)
    X = add_bias(rng.standard_normal((120, 4)))
    y = np.maximum(X @ rng.standard_normal(5), 0) - np.maximum(X @ rng.standard_normal(5), 0)
    pats = cvxnn.sample_patterns(X, 40, seed=0)
    solve = training.solve_relu_interior
    monkeypatch.setattr(training, "solve_relu_interior", lambda *a, **k: solve(*a, **dict(k, max_iter=8)))
    cut = cvxnn.fit(X, y, 0.5, patterns=pats, solver="ipm")
    monkeypatch.setattr(training, "_drop_costly_blocks", lambda Xt, y, masks, v, w, *rest: (v, w))
    raw = cvxnn.fit(X, y, 0.5, patterns=pats, solver="ipm")
    monkeypatch.undo()
    full = cvxnn.fit(X, y, 0.5, patterns=pats, solver="ipm", tol=1e-8)
    assert cut.status == raw.status == "max_iter"
    assert cut.n_neurons < raw.n_neurons and cut.objective < raw.objective
    assert full.objective <= cut.objective and cut.lower_bound <= full.objective * (1 + 1e-9)
    assert cut.network_objective == pytest.approx(cut.objective, rel=1e-9)
