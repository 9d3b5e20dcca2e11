"""Gated FISTA (and its Newton polish) with vector outputs, against the reference solver.

The program is min_U L(Σ_i W_iXU_i) + β Σ_g ‖U_g‖ with blocks U_i ∈ R^{d×c}, the groups being the
columns U_i[:, k] ("per_output") or the blocks U_i ("group"), L the squared loss with a matrix Y or
the softmax cross-entropy with one-hot Y; the certificate is d(tΛ) at Λ = −∇L(Σ_i W_iXU_i) scaled into
‖(W_iX)ᵀθ_k‖ ≤ β for every (i, k), or ‖(W_iX)ᵀθ‖_F ≤ β for every i.
"""

import itertools

import numpy as np
import pytest
import torch

import cvxnn
from cvxnn.activations import activation_from
from cvxnn.data import add_bias
from cvxnn.duality import max_dual_constraint_vector
from cvxnn.losses import CROSS_ENTROPY, SQUARED, loss_from
from cvxnn.operators import PatternOperator
from cvxnn.solvers.fista import gated_gap, solve_gated_fista
from cvxnn.solvers.newton import newton_polish
from cvxnn.training import _choose_solver

LOSSES = {"squared": SQUARED, "cross_entropy": CROSS_ENTROPY}
PENALTIES = ["per_output", "group"]
N, D, C, P = 40, 3, 3, 10


def _data(loss: str, seed: int = 0):
    """X (N, D), targets (an (N, C) matrix, or class labels 0..C−1) and P sampled patterns."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((N, D))
    scores = np.maximum(X @ rng.standard_normal((D, C)), 0) - 0.5 * np.maximum(X @ rng.standard_normal((D, C)), 0)
    if loss == "squared":
        return X, scores + 0.1 * rng.standard_normal((N, C))
    return X, np.argmax(scores + 0.3 * rng.standard_normal((N, C)), axis=1)


def _pattern_values(Xt, W, lam, vector_penalty):
    """The dual constraint value of every pattern at Λ: max_k ‖(W_iX)ᵀλ_k‖ or ‖(W_iX)ᵀΛ‖_F."""
    C_all = np.einsum("nd,ni,nk->idk", Xt, W, lam)
    cols = np.linalg.norm(C_all, axis=1)
    return cols.max(axis=1) if vector_penalty == "per_output" else np.linalg.norm(cols, axis=1)


def _objective(Xt, W, Y, U, beta, loss, vector_penalty):
    pred = np.einsum("ni,nd,idk->nk", W, Xt, U)
    pen = np.linalg.norm(U, axis=1).sum() if vector_penalty == "per_output" else np.linalg.norm(U, axis=(1, 2)).sum()
    return loss.value(pred, Y) + beta * float(pen)


CASES = list(itertools.product(LOSSES, PENALTIES, ["relu", "leaky_relu"], [False, True]))


@pytest.fixture(scope="module", params=CASES, ids=["-".join(map(str, c)) for c in CASES])
def problem(request):
    """A problem with a sparse optimum (β = 0.3 β_max, β_max the smallest β with U* = 0) and its
    reference solution."""
    loss_name, vp, activation, bias = request.param
    loss = LOSSES[loss_name]
    X, y = _data(loss_name)
    Xt = add_bias(X) if bias else X
    pats = cvxnn.sample_patterns(Xt, P, seed=1)
    Y = loss.targets(y, N)
    W = activation_from(activation).fit_weights(pats.masks)
    beta = 0.3 * float(_pattern_values(Xt, W, -loss.gradient(np.zeros_like(Y), Y), vp).max())
    kw = dict(patterns=pats, formulation="gated", loss=loss_name, vector_penalty=vp, activation=activation,
              bias=bias)
    ref = cvxnn.fit(X, y, beta, solver="reference", **kw)
    return dict(X=X, y=y, Y=Y, Xt=Xt, pats=pats, W=W, beta=beta, loss=loss, vp=vp, activation=activation,
                kw=kw, ref=ref)


def _solve(pb, dtype=torch.float64, **options):
    op = PatternOperator(pb["Xt"], pb["pats"].masks, dtype=dtype, activation=activation_from(pb["activation"]))
    return solve_gated_fista(op, torch.as_tensor(pb["Y"], dtype=dtype), pb["beta"], loss=pb["loss"],
                             vector_penalty=pb["vp"], **options)


def test_fit_fista_agrees_with_the_reference(problem):
    pb, ref = problem, problem["ref"]
    fast = cvxnn.fit(pb["X"], pb["y"], pb["beta"], solver="fista", tol=1e-8, **pb["kw"])
    assert fast.solver == "fista" and fast.status == "optimal" and fast.relative_gap <= 1e-8
    assert fast.v.shape == (len(pb["pats"]), pb["Xt"].shape[1], C) and not np.any(fast.w)
    assert abs(fast.objective - ref.objective) <= 1e-6 * ref.objective
    # each lower bound is below the other solver's objective (both bound the same optimum)
    assert fast.lower_bound <= ref.objective * (1 + 1e-12) and ref.lower_bound <= fast.objective * (1 + 1e-12)
    assert fast.objective == pytest.approx(_objective(pb["Xt"], pb["W"], pb["Y"], fast.v, pb["beta"], pb["loss"],
                                                      pb["vp"]), rel=1e-12)
    # the network from the column-wise cone decomposition: same prediction, no smaller penalty
    assert fast.network_objective >= fast.objective * (1 - 1e-9)
    assert fast.network_objective == pytest.approx(fast.network.objective(pb["X"], pb["y"], pb["beta"],
                                                                          pb["loss"]), rel=1e-12)
    np.testing.assert_allclose(fast.predict(pb["X"]), fast.predict_gated(pb["X"]), atol=1e-7)


@pytest.mark.parametrize("screening,working_set", [(False, False), (True, True)])
def test_the_certificate_is_a_feasible_dual_point_for_every_pattern(problem, screening, working_set):
    """θ in the conjugate's domain, every pattern's constraint ≤ β, and d(θ) is the lower bound."""
    pb = problem
    out = _solve(pb, tol=1e-7, screening=screening, working_set=working_set)
    assert out.status == "optimal" and out.info["relative_gap"] <= 1e-7
    theta = out.info["dual_point"]
    assert theta.shape == (N, C)
    assert _pattern_values(pb["Xt"], pb["W"], theta, pb["vp"]).max() <= pb["beta"] * (1 + 1e-10)
    assert out.info["lower_bound"] == pytest.approx(pb["loss"].dual_value(theta, pb["Y"]), rel=1e-12)
    assert out.info["lower_bound"] <= pb["ref"].objective * (1 + 1e-12)
    if pb["loss"] is CROSS_ENTROPY:  # rows of Y − θ in the simplex
        assert np.abs(theta.sum(axis=1)).max() <= 1e-12 and (pb["Y"] - theta).min() >= 0


def test_screening_removes_only_patterns_zero_at_the_optimum(problem):
    """The sphere ‖θ − θ*‖_F ≤ √(2κG) bounds every column and the block: screened patterns are zero in the reference."""
    pb = problem
    out = _solve(pb, tol=1e-9, screening=True, working_set=False)
    screened = out.info["screened_groups"]
    assert out.info["screened"] == len(screened) >= 1  # the test is not vacuous
    assert np.all(out.v[screened] == 0)
    ref_norms = np.linalg.norm(pb["ref"].v.reshape(len(pb["pats"]), -1), axis=1)
    assert np.all(ref_norms[screened] <= 1e-7 * ref_norms.max())


def test_float32_agrees_with_float64(problem):
    pb = problem
    out = _solve(pb, dtype=torch.float32, tol=1e-5)
    assert out.status == "optimal"
    obj = _objective(pb["Xt"], pb["W"], pb["Y"], out.v, pb["beta"], pb["loss"], pb["vp"])
    assert abs(obj - pb["ref"].objective) <= 1e-4 * pb["ref"].objective


@pytest.mark.parametrize("loss_name,vector_penalty", [("cross_entropy", "per_output"), ("cross_entropy", "group"),
                                                      ("squared", "group")])
def test_newton_polish_turns_a_loose_vector_solution_into_a_certified_one(loss_name, vector_penalty):
    X, y = _data(loss_name, seed=2)
    loss = LOSSES[loss_name]
    Y = torch.as_tensor(loss.targets(y, N))
    pats = cvxnn.sample_patterns(X, P, seed=1)
    op = PatternOperator(X, pats.masks)
    beta = 1.0
    loose = torch.as_tensor(solve_gated_fista(op, Y, beta, tol=1e-3, loss=loss, vector_penalty=vector_penalty).v)
    polished = newton_polish(op.X, op.masks.double(), Y, beta, loose, loss=loss, vector_penalty=vector_penalty)
    before, lower_before, _ = gated_gap(op, Y, loose, beta, loss=loss, vector_penalty=vector_penalty)
    after, lower_after, _ = gated_gap(op, Y, polished, beta, loss=loss, vector_penalty=vector_penalty)
    assert (before - lower_before) / before > 1e-5
    assert after <= before and (after - lower_after) / after < 1e-10


def test_per_output_squared_is_c_independent_scalar_programs():
    X, Y = _data("squared", seed=3)
    pats = cvxnn.sample_patterns(X, P, seed=1)
    vec = cvxnn.fit(X, Y, 0.5, patterns=pats, formulation="gated", solver="fista", tol=1e-9)
    cols = [cvxnn.fit(X, Y[:, k], 0.5, patterns=pats, formulation="gated", solver="fista", tol=1e-9)
            for k in range(C)]
    assert vec.objective == pytest.approx(sum(f.objective for f in cols), rel=1e-8)
    np.testing.assert_allclose(vec.v, np.stack([f.v for f in cols], axis=-1), atol=1e-6)


def test_operator_vector_products_are_columnwise_and_adjoint():
    rng = np.random.default_rng(4)
    X = rng.standard_normal((N, D))
    pats = cvxnn.sample_patterns(X, P, seed=1)
    op = PatternOperator(X, pats.masks, activation=activation_from("leaky_relu"), chunk_rows=7)
    g = torch.Generator().manual_seed(0)
    U = torch.randn(len(pats), D, C, generator=g, dtype=torch.float64)
    R = torch.randn(N, C, generator=g, dtype=torch.float64)
    AU, AtR = op.matvec(U), op.rmatvec(R)
    assert AU.shape == (N, C) and AtR.shape == (P, D, C)
    for k in range(C):
        assert torch.allclose(AU[:, k], op.matvec(U[:, :, k].contiguous()), rtol=1e-12, atol=1e-12)
        assert torch.allclose(AtR[:, :, k], op.rmatvec(R[:, k].contiguous()), rtol=1e-12, atol=1e-12)
    assert float((AU * R).sum()) == pytest.approx(float((U * AtR).sum()), rel=1e-12)


def test_fit_cross_entropy_fista_gives_a_network_above_the_program():
    X, y = _data("cross_entropy", seed=5)
    f = cvxnn.fit(X, y, 0.5, patterns=P, formulation="gated", loss="cross_entropy", solver="fista", bias=True)
    assert f.status == "optimal" and f.relative_gap <= 1e-6 and f.lower_bound <= f.objective
    assert f.network.n_outputs == C
    assert f.network.objective(X, y, 0.5, loss="cross_entropy") >= f.objective * (1 - 1e-9)
    # the lower bound's check uses the gated (plain-norm) constraints
    lam = CROSS_ENTROPY.dual_direction(f.predict_gated(X), CROSS_ENTROPY.targets(y, N))
    gated = max_dual_constraint_vector(add_bias(X), f.patterns.masks, lam, "per_output", formulation="gated")
    relu = max_dual_constraint_vector(add_bias(X), f.patterns.masks, lam, "per_output")
    assert gated.value >= relu.value - 1e-9 and gated.value == pytest.approx(f.beta, rel=1e-3)


def test_auto_picks_fista_for_large_gated_vector_problems_and_refusals_stay_clear():
    ce = loss_from("cross_entropy")
    assert _choose_solver("auto", "gated", 10**6, loss=ce, vector=True) == "fista"
    # the ReLU program goes to ipm only while its (n·(c − 1)) x (n·(c − 1)) Woodbury matrix is affordable
    assert _choose_solver("auto", "relu", 10**6, loss=ce, vector=True, design_shape=(10**4, 20), n_outputs=10) \
        == "reference"
    assert _choose_solver("auto", "gated", 10**6, loss=loss_from("hinge"), vector=True) == "fista"
    X, y = _data("cross_entropy")
    with pytest.raises(ValueError, match="'al' does not support vector outputs"):
        cvxnn.fit(X, np.eye(C)[y], 1.0, patterns=P, solver="al")
    with pytest.raises(ValueError, match="'fista' does not support the 'relu' program"):
        cvxnn.fit(X, y, 1.0, patterns=P, loss="cross_entropy", solver="fista")
    with pytest.raises(ValueError, match="'l2' vector dual constraint is not defined for formulation 'gated'"):
        max_dual_constraint_vector(X, np.ones((N, 1), dtype=bool), np.zeros((N, C)), "l2", formulation="gated")
    relu_fit = cvxnn.fit(X, y, 1.0, patterns=4, loss="cross_entropy")
    with pytest.raises(ValueError, match="predict_gated needs a formulation='gated' fit"):
        relu_fit.predict_gated(X)
