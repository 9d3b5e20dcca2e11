"""The primal-dual interior-point solver of the ReLU program (solvers/interior_point.py): it reaches the
reference optimum to the requested gap for every activation, the squared and logistic losses, sampled
and enumerated patterns; its bounds bracket the optimum; its points are cone feasible."""

from pathlib import Path

import numpy as np
import pytest
import torch

import cvxnn
from cvxnn.activations import activation_from
from cvxnn.data import add_bias
from cvxnn.losses import loss_from
from cvxnn.network import cone_violation, convex_objective
from cvxnn.operators import PatternOperator
from cvxnn.solvers import interior_point
from cvxnn.solvers.interior_point import solve_relu_interior
from cvxnn.training import _choose_solver

ACTIVATIONS = ["relu", "leaky_relu", "abs"]


def _problem(seed=0, n=30, d=3, loss="squared"):
    rng = np.random.default_rng(seed)
    X = add_bias(rng.standard_normal((n, d)))
    y = np.maximum(X @ rng.standard_normal(d + 1), 0) - np.maximum(X @ rng.standard_normal(d + 1), 0)
    y = y + 0.2 * rng.standard_normal(n)
    if loss == "logistic":  # a larger β: Clarabel's exponential cones fail on nearly separable data at small β
        return X, np.where(y > np.median(y), 1.0, -1.0), 2.0
    return X, y, 0.1


def _solve(X, y, beta, pats, act="relu", loss="squared", **kw):
    op = PatternOperator(X, pats.masks, activation=activation_from(act))
    gates = None if pats.gates is None else torch.as_tensor(pats.gates.T)
    return solve_relu_interior(op, torch.as_tensor(y), beta, interior=gates, loss=loss_from(loss), **kw)


@pytest.mark.parametrize("act", ACTIVATIONS)
@pytest.mark.parametrize("loss", ["squared", "logistic"])
@pytest.mark.parametrize("patterns", ["sampled", "enumerated"])
def test_ipm_reaches_the_reference_optimum_to_the_gap(act, loss, patterns):
    X, y, beta = _problem(loss=loss)
    pats = cvxnn.sample_patterns(X, 25, seed=1) if patterns == "sampled" else \
        cvxnn.enumerate_patterns(X[:12])
    if patterns == "enumerated":
        X, y = X[:12], y[:12]
    ref = cvxnn.fit(X, y, beta, patterns=pats, solver="reference", activation=act, loss=loss)
    out = _solve(X, y, beta, pats, act, loss, tol=1e-7)
    assert out.status == "optimal"
    _, primal, lower = out.history[-1]
    objective = convex_objective(X, y, pats.masks, out.v, out.w, beta, activation_from(act), loss_from(loss))
    assert objective == pytest.approx(out.info["objective"], rel=1e-12)
    assert lower <= ref.objective * (1 + 1e-9) and ref.objective <= objective * (1 + 1e-9)
    assert objective - lower <= 1e-7 * objective
    scale = np.abs(X).max() * max(np.abs(out.v).max(), np.abs(out.w).max())
    assert max(cone_violation(X, pats.masks, out.v), cone_violation(X, pats.masks, out.w)) <= 1e-12 * scale


def test_every_bound_in_the_history_brackets_the_optimum_and_a_stopped_solve_returns_its_best_point():
    X, y, beta = _problem(seed=3, n=40)
    pats = cvxnn.sample_patterns(X, 30, seed=0)
    ref = cvxnn.fit(X, y, beta, patterns=pats, solver="reference")
    out = _solve(X, y, beta, pats, max_iter=6)
    assert out.status == "max_iter" and out.n_iter == 6
    assert all(lower <= ref.objective * (1 + 1e-9) <= primal * (1 + 2e-9) for _, primal, lower in out.history)
    objective = convex_objective(X, y, pats.masks, out.v, out.w, beta)
    assert objective == pytest.approx(min(h[1] for h in out.history), rel=1e-12)
    assert objective > ref.objective * (1 + 1e-6)  # six iterations are not enough: the check means something


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_an_unreachable_gap_stops_as_stalled_once_the_iterates_stop_moving(seed):
    """tol = 0 cannot be met in floating point: the solve stops when for STALL_ITERATIONS iterations the lower
    bound has not risen and the objective has not moved, with the optimum reached."""
    X, y, beta = _problem(seed)
    pats = cvxnn.sample_patterns(X, 12, seed=seed)
    ref = cvxnn.fit(X, y, beta, patterns=pats, solver="reference")
    out = _solve(X, y, beta, pats, tol=0.0)
    assert out.status == "stalled" and out.n_iter < 60
    _, primal, lower = out.history[-1]
    assert primal - lower <= 1e-8 * primal
    assert convex_objective(X, y, pats.masks, out.v, out.w, beta) == pytest.approx(ref.objective, rel=1e-7)


def test_a_lower_bound_left_behind_by_the_multiplier_bounds_is_recomputed_exactly():
    """Round 12 of ``fit`` with search on breast cancer (standardized, bias column, ±1 targets, β = 1; three
    1500-step Adam seeds; captured in tests/data/breast_search_round.npz: 184 patterns with their gates, and the
    warm start, the previous round's solution padded with zero blocks). Many blocks are zero at the optimum, and
    the multiplier bounds ‖±XᵀW_iΛ + XᵀS_im‖ of more than EXACT_BLOCKS groups stay above β, so the lower bound
    kept its start value 2.48 while the objective converged to 11.1814: after STALL_ITERATIONS iterations the
    solve stopped as stalled at a reported gap of 0.78 (with one BLAS thread; with two, round-off took another
    path that converged). After EXACT_STALE iterations without a higher bound, every group above β is now
    projected exactly, and the solve certifies 1e-6."""
    ds = cvxnn.data.load_bundled("breast_cancer")
    scale = ds.X.std(0)
    X = add_bias((ds.X - ds.X.mean(0)) / np.where(scale > 0, scale, 1.0))
    y = 2.0 * ds.y - 1
    saved = np.load(Path(__file__).parent / "data" / "breast_search_round.npz")
    masks = np.unpackbits(saved["masks"], axis=0, count=X.shape[0]).astype(bool)
    out = solve_relu_interior(PatternOperator(X, masks), torch.as_tensor(y), 1.0, tol=1e-6,
                              V0=torch.as_tensor(saved["v"]), W0=torch.as_tensor(saved["w"]),
                              interior=torch.as_tensor(saved["gates"].T))
    gap = (out.info["objective"] - out.info["lower_bound"]) / out.info["objective"]
    assert out.status == "optimal" and gap <= 1e-6 and out.info["objective"] < 11.1808


def test_a_newton_matrix_that_never_factors_stops_the_solve_instead_of_hanging(monkeypatch):
    """Without the stall rule, tol = 0 drives the iterates past what float64 resolves; the d x d blocks then hold
    NaN, which no shift factors (this hung in _cholesky's retry loop before): the solve stops as "stalled" with
    its best point, the optimum."""
    monkeypatch.setattr(interior_point, "STALL_ITERATIONS", 10**6)
    raised, factor = [], interior_point._cholesky

    def spy(R):
        try:
            return factor(R)
        except interior_point.NumericalBreakdown:
            raised.append(R.shape)
            raise

    monkeypatch.setattr(interior_point, "_cholesky", spy)
    X, y, beta = _problem(0)
    pats = cvxnn.sample_patterns(X, 12, seed=0)
    ref = cvxnn.fit(X, y, beta, patterns=pats, solver="reference")
    out = _solve(X, y, beta, pats, tol=0.0)
    assert out.status == "stalled" and out.n_iter < 200 and len(raised) == 1
    assert convex_objective(X, y, pats.masks, out.v, out.w, beta) == pytest.approx(ref.objective, rel=1e-7)
    with pytest.raises(interior_point.NumericalBreakdown):
        factor(torch.full((2, 3, 3), float("nan"), dtype=torch.float64))


def test_warm_start_from_the_optimum_and_a_cone_without_interior():
    X, y, beta = _problem(seed=4)
    pats = cvxnn.sample_patterns(X, 20, seed=0)
    ref = cvxnn.fit(X, y, beta, patterns=pats, solver="reference")
    warm = _solve(X, y, beta, pats, V0=torch.as_tensor(ref.v), W0=torch.as_tensor(ref.w), tol=1e-7)
    assert warm.status == "optimal" and warm.info["objective"] == pytest.approx(ref.objective, rel=1e-7)
    # the row −x_0 with the mask of row 0 forces x_0ᵀu = 0 in every cone: none has an interior, all blocks stay 0
    Xd = np.vstack([X, -X[:1]])
    masks = np.vstack([pats.masks, pats.masks[:1]])
    degenerate = cvxnn.Patterns(masks, None, complete=False, method="given")
    out = _solve(Xd, np.r_[y, 0.0], beta, degenerate, tol=1e-7)
    ref_d = cvxnn.fit(Xd, np.r_[y, 0.0], beta, patterns=degenerate, solver="reference")
    assert out.info["empty_interior"] == len(pats)
    assert ref_d.objective <= out.info["objective"] * (1 + 1e-9)
    assert out.history[-1][2] <= ref_d.objective * (1 + 1e-9)


def test_a_warm_start_is_shifted_into_the_cones_by_a_fraction_of_its_own_scale():
    X, y, beta = _problem(seed=4)
    pats = cvxnn.sample_patterns(X, 20, seed=0)
    op = PatternOperator(X, pats.masks)
    smooth = interior_point.SmoothLoss(loss_from("squared"), torch.as_tensor(y)[:, None])
    C = torch.as_tensor(pats.gates.T)
    U0 = torch.zeros(2, len(pats), X.shape[1], 1, dtype=torch.float64)
    cold = interior_point._start_scale(op, smooth, C, beta, 1.0, U0)
    U0[0, :3, 0, 0] = torch.tensor([1e-3, 2e-3, 5.0], dtype=torch.float64)  # column norms with median 2e-3
    warm = interior_point._start_scale(op, smooth, C, beta, 1.0, U0)
    assert cold > 1e-2 and warm == pytest.approx(interior_point.WARM_START_SHIFT * 2e-3, rel=1e-12)
    U0[1, :5, 0, 0] = 1e-14  # a solver's dust on zero blocks does not count
    assert interior_point._start_scale(op, smooth, C, beta, 1.0, U0) == warm
    # from the optimum the shifted start stays close enough to save iterations, and converges to the same point
    ref = cvxnn.fit(X, y, beta, patterns=pats, solver="reference")
    start = _solve(X, y, beta, pats, V0=torch.as_tensor(ref.v), W0=torch.as_tensor(ref.w), tol=1e-7)
    scratch = _solve(X, y, beta, pats, tol=1e-7)
    assert start.n_iter <= 0.75 * scratch.n_iter  # 10 against 15 (14 when the cold shift, 9.6, erased the start)
    assert start.info["objective"] == pytest.approx(scratch.info["objective"], rel=1e-6)


@pytest.mark.parametrize("act", ["relu", "abs"])
@pytest.mark.parametrize("loss", ["squared", "logistic"])
def test_the_pattern_side_system_matches_the_sample_side_and_the_reference(act, loss, monkeypatch):
    X, y, beta = _problem(seed=6, n=150, loss=loss)
    pats = cvxnn.sample_patterns(X, 6, seed=0)  # Pd = 24 ≪ n = 150: the pattern side is chosen
    assert not interior_point._sample_side(150, 4, 6, loss) and interior_point._sample_side(150, 4, 6, "hinge")
    assert interior_point._sample_side(569, 31, 100)  # breast cancer at P = 100 stays on the sample side
    ref = cvxnn.fit(X, y, beta, patterns=pats, solver="reference", activation=act, loss=loss)
    pattern = _solve(X, y, beta, pats, act, loss, tol=1e-7)
    monkeypatch.setattr(interior_point, "_sample_side", lambda *args: True)
    sample = _solve(X, y, beta, pats, act, loss, tol=1e-7)
    for out in (pattern, sample):
        objective, lower = out.info["objective"], out.info["lower_bound"]
        assert out.status == "optimal" and objective - lower <= 1e-7 * objective
        assert lower <= ref.objective * (1 + 1e-9) and ref.objective <= objective * (1 + 1e-9)
    assert abs(pattern.n_iter - sample.n_iter) <= 2
    assert np.abs(pattern.v - sample.v).max() <= 1e-4 * np.abs(sample.v).max()


def test_the_squared_loss_pattern_side_matrix_from_one_fit_gram_equals_the_direct_one():
    """K'_k = I + C_kᵀGC_k with G = FᵀF formed once (the squared loss) against I + 𝔽_kᵀ𝔽_k formed from the scaled
    columns (every other loss), for leaky fit weights, two outputs and samples spread over several chunks."""
    rng = np.random.default_rng(11)
    n, d, P, c = 300, 4, 7, 2
    X = torch.as_tensor(rng.standard_normal((n, d)))
    weights = torch.as_tensor(np.where(rng.random((n, P)) < 0.5, 1.0, 0.1))
    B = torch.as_tensor(rng.standard_normal((P, c, d, d)))
    C = torch.linalg.cholesky(B @ B.transpose(-1, -2) + torch.eye(d, dtype=torch.float64))
    old = interior_point.BLOCK_CHUNK_BYTES
    try:
        interior_point.BLOCK_CHUNK_BYTES = 8 * P * d * 70  # chunks of 70 samples
        G = interior_point._fit_gram(X, weights)
        direct = interior_point._pattern_grams(X, C, weights, torch.ones(n, c, dtype=torch.float64))
    finally:
        interior_point.BLOCK_CHUNK_BYTES = old
    F = (weights[:, :, None] * X[:, None, :]).reshape(n, P * d)
    torch.testing.assert_close(G, F.T @ F, rtol=1e-12, atol=1e-10)
    K = interior_point._congruence(G, C) + torch.eye(P * d, dtype=torch.float64)
    for k in range(c):
        torch.testing.assert_close(K[k].tril(), direct[k].tril(), rtol=1e-11, atol=1e-9)
        torch.testing.assert_close(K[k], K[k].T, rtol=1e-12, atol=1e-9)


@pytest.mark.parametrize("act", ["relu", "leaky_relu"])
def test_the_fit_curvature_through_the_fit_gram_equals_the_operator_products(act):
    """AᵀA V as [Gu, −Gu] (u = V₊ − V₋, G = FᵀF kept by a squared-loss solve on the pattern side) against
    Aᵀ(A(V)) through the operator, two outputs."""
    rng = np.random.default_rng(12)
    n, d, P, c = 120, 3, 5, 2
    X = torch.as_tensor(rng.standard_normal((n, d)))
    masks = rng.random((n, P)) < 0.5
    op = PatternOperator(X, masks, activation=activation_from(act))
    system = interior_point._System(op, X.norm(dim=1) > 0, "squared", 1.0, c, "per_output", False)
    V = torch.as_tensor(rng.standard_normal((2, P, d, c)))
    H = torch.eye(c, dtype=torch.float64).expand(n, c, c)
    direct = system._fit_curvature(H, V)
    system.fit_gram = interior_point._fit_gram(X, system.weights)
    torch.testing.assert_close(system._fit_curvature(H, V), direct, rtol=1e-12, atol=1e-10)


def test_the_pattern_side_solves_a_program_whose_sample_side_matrix_would_not_fit_in_memory():
    rng = np.random.default_rng(7)
    n, d = 40_000, 4
    X = add_bias(rng.standard_normal((n, d - 1)))
    y = np.maximum(X @ rng.standard_normal(d), 0) + 0.1 * rng.standard_normal(n)
    pats = cvxnn.sample_patterns(X, 8, seed=0)
    three_matrices = interior_point._memory_bytes(n, d, 8, 1, True, False, False, False)
    assert three_matrices > 3.5e10  # three n x n matrices
    assert interior_point._memory_bytes(n, d, 8, 1, False, False, False, False) < 1e9
    out = _solve(X, y, 10.0, pats, tol=1e-6)
    objective, lower = out.info["objective"], out.info["lower_bound"]
    assert out.status == "optimal" and objective - lower <= 1e-6 * objective
    assert convex_objective(X, y, pats.masks, out.v, out.w, 10.0) == pytest.approx(objective, rel=1e-12)


def test_fit_uses_ipm_for_large_relu_programs_and_it_refuses_what_it_lacks():
    assert _choose_solver("auto", "relu", 569 * 100, design_shape=(569, 31)) == "ipm"  # breast cancer, P = 100
    assert _choose_solver("auto", "relu", 100_000 * 20, design_shape=(100_000, 20)) == "ipm"  # pattern side, Pd = 400
    # 1.3e12 multiply-adds per iteration, yet the reference would need about 119 GiB: one output keeps the ipm
    assert _choose_solver("auto", "relu", 4000 * 4000, design_shape=(4000, 20)) == "ipm"
    assert _choose_solver("auto", "relu", 569 * 100, loss=loss_from("hinge"), design_shape=(569, 31)) == "ipm"
    assert _choose_solver("auto", "relu", 1000, design_shape=(100, 5)) == "reference"
    with pytest.raises(ValueError, match="'ipm' solves the gated program for one output"):
        _choose_solver("ipm", "gated", 10, loss=loss_from("hinge"))
    with pytest.raises(ValueError, match="'al' does not support the 'hinge' loss"):
        _choose_solver("al", "relu", 10, loss=loss_from("hinge"))
    X, y, beta = _problem(seed=5)
    res = cvxnn.fit(X, y, beta, patterns=20, solver="ipm", tol=1e-7)
    ref = cvxnn.fit(X, y, beta, patterns=20, solver="reference")
    assert res.solver == "ipm" and res.status == "optimal"
    assert res.objective == pytest.approx(ref.objective, rel=1e-6)
    assert res.network_objective == pytest.approx(res.objective, rel=1e-9)
    assert res.lower_bound <= ref.objective * (1 + 1e-9)


@pytest.mark.parametrize("act", ACTIVATIONS)
def test_the_dual_bounds_bound_every_cone_value_and_screen_the_exact_check(act):
    """info["dual_bounds"] ≥ σ_i^± at info["dual_point"] for every pattern and sign; used as screens, and shifted by
    the drift bound to a nearby λ, they leave the exact maximum unchanged while solving fewer cone programs."""
    from cvxnn.duality import cone_sigma, max_dual_constraint

    X, y, beta = _problem(seed=7)
    pats = cvxnn.sample_patterns(X, 25, seed=1)
    out = _solve(X, y, beta, pats, act, tol=1e-7)
    lam, bounds = out.info["dual_point"], out.info["dual_bounds"]
    weights = activation_from(act).fit_weights(pats.masks)
    for i in range(len(pats)):
        c = X.T @ (weights[:, i] * lam)
        for row, sign in enumerate((1, -1)):
            assert cone_sigma(X, pats.masks[:, i], sign * c)[0] <= bounds[row, i] * (1 + 1e-9) + 1e-12
    plain = max_dual_constraint(X, pats.masks, lam, activation=activation_from(act))
    screened = max_dual_constraint(X, pats.masks, lam, activation=activation_from(act), upper=bounds)
    assert screened.value == pytest.approx(plain.value, rel=1e-12) and screened.n_solved < plain.n_solved
    fit = cvxnn.fit(X, y, beta, patterns=pats, solver="ipm", tol=1e-7, activation=act)
    program = cvxnn.training.make_program(X, y, beta, activation=act)
    near = lam + 1e-3 * np.random.default_rng(0).standard_normal(lam.shape)
    upper = program._upper_bounds(out, near)
    exact = max_dual_constraint(X, pats.masks, near, activation=activation_from(act))
    assert max_dual_constraint(X, pats.masks, near, activation=activation_from(act), upper=upper).value == \
        pytest.approx(exact.value, rel=1e-12)
    assert fit.dual_check.value <= beta * (1 + 1e-6)


def test_the_start_directions_are_the_analytic_centers_of_the_cones():
    """Each center u is unit, strictly inside its cone and the maximizer of Σ_k log(s_kx_kᵀu) − (N/2)‖u‖² to a Newton
    decrement of 1e-8; typically farther from the cone's boundary than the gate it starts from."""
    X, _, _ = _problem(seed=5, n=400, d=4)
    pats = cvxnn.sample_patterns(X, 15, seed=2)
    op = PatternOperator(X, pats.masks)
    live = op.X.norm(dim=1) > 0
    XX = (op.X[:, :, None] * op.X[:, None, :]).reshape(op.n, -1)
    gates = torch.as_tensor(pats.gates.T)
    U = interior_point._analytic_centers(op, live, XX, gates)
    G = op.cone_products(U)
    assert torch.allclose(U.norm(dim=1), torch.ones(len(pats), dtype=U.dtype), atol=1e-12)
    assert bool((G > 0).all())
    gradient = (op.cone_adjoint(1.0 / G) - op.n * U).numpy()
    S = np.where(pats.masks, 1.0, -1.0)
    for i in range(len(pats)):  # centered: the Newton decrement gᵀH⁻¹g, H = Σ_k a_ka_kᵀ/g_k² + NI, is tiny
        A = S[:, i, None] * X / G[:, i, None].numpy()
        assert gradient[i] @ np.linalg.solve(A.T @ A + op.n * np.eye(X.shape[1]), gradient[i]) <= 1e-8
    margin = (G / op.X.norm(dim=1)[:, None]).min(dim=0).values
    unit_gates = gates / gates.norm(dim=1, keepdim=True)
    gate_margin = (op.cone_products(unit_gates) / op.X.norm(dim=1)[:, None]).min(dim=0).values
    assert float(margin.median()) >= 2 * float(gate_margin.median())  # not pattern by pattern: no max-margin point


def test_a_gate_on_its_cones_boundary_is_replaced_and_the_centering_survives_it():
    """A gate from the pattern search's ascent can lie on its cone's boundary up to round-off (iris: a margin of
    1.1e-16 made the centering Hessian singular and the solve raise). Such a gate is not taken as the pattern's
    interior direction (the LP's central one is), the centering of the cones copes with it even when given, and
    the solve reaches the reference optimum."""
    X, y, beta = _problem(seed=4)
    pats = cvxnn.sample_patterns(X, 6, seed=0)
    gates = pats.gates.copy()
    x0 = X[0]
    gate = gates[:, 0] - (x0 @ gates[:, 0]) / (x0 @ x0) * x0  # orthogonal to x_0 ...
    gate += 1e-16 * np.linalg.norm(gate) * x0 / np.linalg.norm(x0)  # ... up to a margin of about 1e-16
    gates[:, 0] = gate
    boundary = cvxnn.Patterns(X @ gates >= 0, gates)
    op = PatternOperator(X, boundary.masks)
    G = (np.where(boundary.masks, 1.0, -1.0) * (X @ gates))[:, 0]
    assert 0 < G.min() < 1e-15 * np.linalg.norm(x0) * np.linalg.norm(gate)  # strictly inside, by round-off only
    C, ok = interior_point._interior_directions(op, torch.as_tensor(gates.T))
    assert bool(ok.all())
    margins = (torch.where(op.masks, 1.0, -1.0) * (op.X @ C.T)) / op.X.norm(dim=1)[:, None]
    assert float(margins[:, 0].min()) > 1e-3  # the LP's central direction, not the boundary gate
    live = op.X.norm(dim=1) > 0
    XX = (op.X[:, :, None] * op.X[:, None, :]).reshape(op.n, -1)
    unit_gates = torch.as_tensor(gates.T / np.linalg.norm(gates, axis=0)[:, None])
    centers = interior_point._analytic_centers(op, live, XX, unit_gates)  # the boundary gate given as is
    assert bool(torch.isfinite(centers).all()) and float(op.cone_products(centers).min()) > 0
    ref = cvxnn.fit(X, y, beta, patterns=boundary, solver="reference")
    out = _solve(X, y, beta, boundary, tol=1e-7)
    assert out.status == "optimal" and out.info["objective"] == pytest.approx(ref.objective, rel=1e-6)
