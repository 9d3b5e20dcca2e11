"""The interior-point solver of the ReLU program with vector outputs (solvers/interior_point.py): blocks
V_i, W_i ∈ R^{d×c} with every column in the cone of pattern i, prediction Σ_i W_iX(V_i − W_i), the squared
loss with a matrix Y or the softmax cross-entropy with c classes, and the penalty β Σ ‖column‖ ("per_output")
or β Σ ‖block‖_F ("group"). Against the reference (Clarabel) solver: the certified gap brackets its optimum
at every iteration, the iterates are cone feasible column by column, warm starts, the per-output squared
program as c scalar programs, the automatic choice."""

import itertools

import numpy as np
import pytest
import torch

import cvxnn
from cvxnn.activations import activation_from
from cvxnn.data import add_bias
from cvxnn.losses import CROSS_ENTROPY, SQUARED, loss_from
from cvxnn.network import cone_violation, convex_objective
from cvxnn.operators import PatternOperator
from cvxnn.solvers import interior_point
from cvxnn.solvers.fista import SmoothLoss
from cvxnn.solvers.interior_point import iteration_flops, solve_relu_interior
from cvxnn.training import IPM_AUTO_FLOPS, _choose_solver

C = 3
LOSSES = {"squared": SQUARED, "cross_entropy": CROSS_ENTROPY}


def _data(loss: str, n: int, d: int, seed: int = 0):
    """X (n, d) and targets: a noisy (n, C) matrix of two-layer ReLU scores, or the class of the largest score."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    scores = np.maximum(X @ rng.standard_normal((d, C)), 0) - 0.5 * np.maximum(X @ rng.standard_normal((d, C)), 0)
    if loss == "squared":
        return X, scores + 0.1 * rng.standard_normal((n, C))
    labels = np.argmax(scores + 0.3 * rng.standard_normal((n, C)), axis=1)
    labels[:C] = np.arange(C)  # every class present
    return X, labels


def _problem(loss: str, patterns: str, bias: bool, seed: int = 0):
    """(X, y, targets Y, design Xt, patterns, β): 30 samples and 12 sampled patterns of 3 features, or all
    patterns of 8 samples with 2 features (16 without bias, 58 with)."""
    X, y = _data(loss, 8 if patterns == "enumerated" else 30, 2 if patterns == "enumerated" else 3, seed)
    Xt = add_bias(X) if bias else X
    pats = cvxnn.enumerate_patterns(Xt) if patterns == "enumerated" else cvxnn.sample_patterns(Xt, 12, seed=1)
    beta = 0.5 if loss == "squared" else 0.3
    return X, y, LOSSES[loss].targets(y, X.shape[0]), Xt, pats, beta


def _solve(Xt, Y, beta, pats, act="relu", loss="squared", vector_penalty="per_output", **kw):
    op = PatternOperator(Xt, pats.masks, activation=activation_from(act))
    gates = None if pats.gates is None else torch.as_tensor(pats.gates.T)
    return solve_relu_interior(op, torch.as_tensor(Y), beta, interior=gates, loss=loss_from(loss),
                               vector_penalty=vector_penalty, **kw)


def _column_violation(Xt, pats, blocks):
    """The largest cone violation over every column of every block, relative to the data and block scale."""
    scale = np.abs(Xt).max() * max(np.abs(blocks).max(), 1e-300)
    return max(cone_violation(Xt, pats.masks, blocks[:, :, k]) for k in range(blocks.shape[2])) / scale


CASES = list(itertools.product(LOSSES, ["per_output", "group"], ["relu", "leaky_relu", "abs"],
                               ["sampled", "enumerated"], [False, True]))


@pytest.mark.parametrize("loss,vector_penalty,act,patterns,bias", CASES,
                         ids=["-".join(map(str, c)) for c in CASES])
def test_ipm_reaches_the_reference_optimum_with_a_certified_gap(loss, vector_penalty, act, patterns, bias):
    X, y, Y, Xt, pats, beta = _problem(loss, patterns, bias)
    ref = cvxnn.fit(X, y, beta, patterns=pats, solver="reference", activation=act, loss=loss,
                    vector_penalty=vector_penalty, bias=bias)
    out = _solve(Xt, Y, beta, pats, act, loss, vector_penalty, tol=1e-7)
    assert out.status == "optimal" and out.v.shape == (len(pats), Xt.shape[1], C)
    objective = convex_objective(Xt, Y, pats.masks, out.v, out.w, beta, activation_from(act), loss_from(loss),
                                 vector_penalty)
    assert objective == pytest.approx(out.info["objective"], rel=1e-12)
    lower = out.info["lower_bound"]
    assert objective - lower <= 1e-7 * objective
    # every certified bound brackets the optimum, which lies in the reference's own certified interval (its objective
    # is feasible to ~1e-9 relative; with the exponential cones of the cross-entropy its gap can be ~1e-6)
    assert all(low <= ref.objective * (1 + 1e-9) and primal >= ref.lower_bound * (1 - 1e-9)
               for _, primal, low in out.history)
    assert abs(objective - ref.objective) <= 2e-7 * ref.objective
    assert max(_column_violation(Xt, pats, out.v), _column_violation(Xt, pats, out.w)) <= 1e-12


@pytest.mark.parametrize("loss,vector_penalty", [("cross_entropy", "per_output"), ("squared", "group")])
def test_a_stopped_solve_returns_its_best_point_with_a_valid_bound(loss, vector_penalty):
    X, y, Y, Xt, pats, beta = _problem(loss, "sampled", True, seed=3)
    ref = cvxnn.fit(X, y, beta, patterns=pats, solver="reference", loss=loss, vector_penalty=vector_penalty, bias=True)
    out = _solve(Xt, Y, beta, pats, loss=loss, vector_penalty=vector_penalty, max_iter=5)
    assert out.status == "max_iter" and out.n_iter == 5
    assert all(low <= ref.objective * (1 + 1e-9) <= primal * (1 + 2e-9) for _, primal, low in out.history)
    assert out.history[-1][2] > -np.inf  # a finite bound: for the cross-entropy, Y − tΛ stays in the simplex
    objective = convex_objective(Xt, Y, pats.masks, out.v, out.w, beta, loss=loss_from(loss),
                                 vector_penalty=vector_penalty)
    assert objective == pytest.approx(min(h[1] for h in out.history), rel=1e-12)
    assert objective > ref.objective * (1 + 1e-6)  # five iterations are not enough: the check means something


@pytest.mark.parametrize("vector_penalty", ["per_output", "group"])
def test_warm_start_from_the_reference_and_through_fit(vector_penalty):
    X, y, Y, Xt, pats, beta = _problem("cross_entropy", "sampled", True, seed=4)
    ref = cvxnn.fit(X, y, beta, patterns=pats, solver="reference", loss="cross_entropy",
                    vector_penalty=vector_penalty, bias=True)
    warm = _solve(Xt, Y, beta, pats, loss="cross_entropy", vector_penalty=vector_penalty, tol=1e-7,
                  V0=torch.as_tensor(ref.v), W0=torch.as_tensor(ref.w))
    assert warm.status == "optimal" and warm.info["objective"] == pytest.approx(ref.objective, rel=2e-7)
    kw = dict(patterns=pats, loss="cross_entropy", vector_penalty=vector_penalty, bias=True, solver="ipm", tol=1e-7)
    cold = cvxnn.fit(X, y, beta, **kw)
    for start in (cold, (cold.v, cold.w)):  # a previous fit, or (P, d, c) blocks
        again = cvxnn.fit(X, y, beta, warm_start=start, **kw)
        assert again.objective <= cold.objective * (1 + 1e-12) and again.relative_gap <= 1e-7
    with pytest.raises(ValueError, match=r"warm_start blocks must have shape \(12, 4, 3\)"):
        cvxnn.fit(X, y, beta, warm_start=(cold.v[:, :, 0], cold.w[:, :, 0]), **kw)
    one_output = cvxnn.fit(X, (y == 0).astype(float), beta, patterns=pats, bias=True, solver="ipm")
    with pytest.raises(ValueError, match=r"a fit with 1 output\(s\); this program has 3"):
        cvxnn.fit(X, y, beta, warm_start=one_output, **kw)


@pytest.mark.parametrize("loss,vector_penalty", [("cross_entropy", "per_output"), ("cross_entropy", "group"),
                                                  ("squared", "group")])
@pytest.mark.parametrize("seed", [0, 1])
def test_newton_solve_through_per_output_factors_is_exact(loss, vector_penalty, seed):
    """The Newton system solved through c per-output n x n factors — with the Schur matrix S for the cross-entropy
    and a 2P x 2P capacitance for the rank-one terms of "group" (module docstring) — agrees with a dense solve of
    the Newton matrix and leaves a residual at round-off, without refinement, at an iterate with curvatures m/g
    spread over eight orders of magnitude."""
    X, y, Y, Xt, pats, beta = _problem(loss, "sampled", True, seed=seed)
    op = PatternOperator(Xt, pats.masks)
    rng = np.random.default_rng(seed)
    n, d, P = op.n, op.d, op.P
    system = interior_point._System(op, op.X.norm(dim=1) > 0, loss, beta, C, vector_penalty, True)
    U = torch.as_tensor(rng.standard_normal((2, P, d, C)))
    G = torch.as_tensor(10.0 ** rng.uniform(-4, 0, (2, n, P, C)))
    m = torch.as_tensor(10.0 ** rng.uniform(-4, 0, (2, n, P, C)))
    part = interior_point._SmoothPart(SmoothLoss(LOSSES[loss], torch.as_tensor(Y)))
    z = 3.0 * system.fit(U)  # confident predictions: p spans (0, 1)
    f = system.factor(U, part, z, G, m, 1e-3)
    assert (f.schur is not None) == (loss == "cross_entropy")
    assert (f.low_rank is not None) == (vector_penalty == "group")
    basis = torch.eye(U.numel(), dtype=torch.float64).view(-1, *U.shape)
    dense = torch.stack([system.newton_apply(f, e).flatten() for e in basis], dim=1)
    rhs = torch.as_tensor(rng.standard_normal((2, P, d, C)))
    x = system._woodbury(f, rhs)
    residual = rhs - system.newton_apply(f, x)
    assert float(residual.norm()) <= 1e-9 * float(rhs.norm())
    exact = torch.linalg.solve(dense, rhs.flatten())
    assert float((x.flatten() - exact).norm()) <= 1e-9 * float(exact.norm())


def test_per_output_squared_is_c_scalar_programs():
    """The squared loss with per-column groups separates over outputs: one solve (c separate n x n Woodbury
    matrices) has the objective of c scalar solves, and each certificate bounds the other's optimum."""
    X, Y, _, Xt, pats, beta = _problem("squared", "sampled", True, seed=5)
    joint = _solve(Xt, Y, beta, pats, tol=1e-8)
    scalar = [_solve(Xt, Y[:, k], beta, pats, tol=1e-8) for k in range(C)]
    assert joint.status == "optimal" and all(s.status == "optimal" for s in scalar)
    total = sum(s.info["objective"] for s in scalar)
    assert joint.info["objective"] == pytest.approx(total, rel=2e-8)
    assert joint.info["lower_bound"] <= total * (1 + 1e-12)
    assert sum(s.info["lower_bound"] for s in scalar) <= joint.info["objective"] * (1 + 1e-12)
    for k, s in enumerate(scalar):  # the same blocks, column by column (a strictly convex fit: unique optimum)
        np.testing.assert_allclose(joint.v[:, :, k] - joint.w[:, :, k], s.v - s.w, atol=1e-4)


def test_auto_picks_ipm_for_vector_relu_programs_by_their_cost_per_iteration(monkeypatch):
    ce = loss_from("cross_entropy")

    def auto(n, d, P, c, loss=ce, vector_penalty="per_output"):
        return _choose_solver("auto", "relu", n * P * c, loss=loss, vector=True, design_shape=(n, d),
                              n_outputs=c, vector_penalty=vector_penalty)

    assert auto(500, 65, 300, 10) == "ipm"  # digits with 300 patterns: 6.8e10 per iteration
    assert iteration_flops(500, 65, 500, 10, "cross_entropy") > IPM_AUTO_FLOPS  # 1.1e11
    monkeypatch.setattr(cvxnn.data, "available_memory_bytes", lambda: 256 * 2**30)
    assert auto(500, 65, 500, 10) == "reference"  # its 61 GiB fit
    monkeypatch.setattr(cvxnn.data, "available_memory_bytes", lambda: 32 * 2**30)
    assert auto(500, 65, 500, 10) == "ipm"  # they do not: the ipm is the only exact solver left
    monkeypatch.undo()
    # per-column groups keep c separate matrices (here Pd x Pd, on the pattern side); "group" keeps c n x n ones
    # and adds its rank-one terms through a 2P x 2P capacitance, except with the hinge, which keeps one (n·c) x (n·c)
    # matrix
    flops = iteration_flops(2000, 10, 10, 10)
    assert flops < iteration_flops(2000, 10, 10, 10, vector_penalty="group") < IPM_AUTO_FLOPS
    assert auto(2000, 10, 10, 10, SQUARED) == "ipm" and auto(2000, 10, 10, 10, SQUARED, "group") == "ipm"
    assert iteration_flops(2000, 10, 10, 10, "hinge", "group") > IPM_AUTO_FLOPS
    assert auto(2000, 10, 10, 10, loss_from("hinge"), "group") == "reference"
    assert auto(100, 5, 10, 3) == "reference"  # small: the reference
    X, y = _data("cross_entropy", 600, 3, seed=6)
    res = cvxnn.fit(X, y, 0.5, patterns=30, bias=True, loss="cross_entropy", tol=1e-6)  # n·P·c = 54 000
    assert res.solver == "ipm" and res.status == "optimal" and res.relative_gap <= 1e-6
    assert res.network_objective == pytest.approx(res.objective, rel=1e-9)  # per_output: Φ is exact
    assert res.lower_bound <= res.objective


def test_auto_keeps_ipm_for_large_separable_relu_programs(monkeypatch):
    """One output (or per-output groups with a diagonal loss Hessian): the ipm's iteration costs c·min(n²Pd, n(Pd)²)
    and fits in O(nP + (Pd)²) memory on the pattern side, while the reference's canonicalization needs about
    200 bytes per block entry (22 GiB at n = 30 000, d = 20, P = 100), so auto keeps the ipm beyond IPM_AUTO_FLOPS."""
    n, d, P = 30_000, 20, 100
    assert iteration_flops(n, d, P, 1, "logistic") > IPM_AUTO_FLOPS
    assert iteration_flops(n, d, P) < iteration_flops(n, d, P, 1, "logistic") / 15  # squared: G = FᵀF formed once
    assert _choose_solver("auto", "relu", n * P, loss=loss_from("logistic"), design_shape=(n, d)) == "ipm"
    assert _choose_solver("auto", "relu", n * P, design_shape=(n, d)) == "ipm"
    assert _choose_solver("auto", "relu", n * P * 3, loss=SQUARED, vector=True, design_shape=(n, d), n_outputs=3) \
        == "ipm"
    monkeypatch.setattr(cvxnn.data, "available_memory_bytes", lambda: 256 * 2**30)  # the reference's 67 GiB fit
    assert _choose_solver("auto", "relu", n * P * 3, loss=loss_from("cross_entropy"), vector=True,
                          design_shape=(n, d), n_outputs=3) == "reference"  # coupled: 3 n x n matrices and S
