"""Paper A (Wang & Pilanci): max-margin convex program, dual condition, KKT certificate, training, reproduce."""

import json
import math

import numpy as np
import pytest
import torch

from cvxnn.duality import cone_sigma
from cvxnn.network import TwoLayerNet
from cvxnn.patterns import enumerate_patterns, sample_patterns
from cvxnn.theory.maxmargin import (
    _log_loss_terms,
    dual_feasibility,
    euler_multiplier,
    kkt_certificate,
    normalized_margin_objective,
    reproduce,
    solve_max_margin_convex,
    subgradient_flow,
    two_svm_solution,
)
from cvxnn.theory.separable import block_support, double_cone, is_orthogonally_separable

THEORY_TWO_SVM = 2.3037455  # THEORY.md §8.2b: ‖w_+‖ + ‖w_-‖ on block_support(5, 4, seed=3)


@pytest.fixture(scope="module")
def block():
    X, y = block_support(5, 4, d=6, seed=3)
    pats = enumerate_patterns(X)
    return X, y, pats, solve_max_margin_convex(X, y, pats), two_svm_solution(X, y)


@pytest.mark.parametrize("make", [
    lambda s: block_support(5, 4, seed=s),
    lambda s: block_support(3, 7, d=9, seed=s),
    lambda s: double_cone(8, 8, d=3, seed=s),
    lambda s: double_cone(20, 5, d=10, max_angle_deg=44.0, seed=s),
])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_generators_are_orthogonally_separable(make, seed):
    X, y = make(seed)
    assert set(np.unique(y)) == {-1.0, 1.0}
    assert is_orthogonally_separable(X, y, return_pair=True) == (True, None)


def test_checker_finds_the_worst_violation():
    X, y = block_support(5, 4, seed=0)
    X_cross = X.copy()
    X_cross[6, 0] = 0.5  # negative point 6 now has a positive product with every positive point
    ok, (k, kp) = is_orthogonally_separable(X_cross, y, return_pair=True)
    assert not ok and 6 in (k, kp) and y[k] != y[kp]
    X_same = X.copy()
    X_same[0] = [0, 0, 0, 0, 0, 0]  # a zero point has product 0 with its own class
    assert not is_orthogonally_separable(X_same, y)
    Xc, yc = double_cone(5, 5, d=3, seed=0)
    yc[1] = -1.0  # a mislabelled point has negative products with its new class
    ok, pair = is_orthogonally_separable(Xc, yc, return_pair=True)
    assert not ok and 1 in pair


def test_convex_value_equals_two_svms_and_dual_is_feasible(block):
    X, y, pats, sol, svm = block
    assert pats.complete and len(pats) == 308  # THEORY §8.2b: exact count 308
    assert svm.value == pytest.approx(THEORY_TWO_SVM, abs=1e-6)
    assert sol.value == pytest.approx(svm.value, rel=1e-5)
    assert np.all(y * sol.lam >= 0)
    assert float(sol.lam @ y) == pytest.approx(sol.value, rel=1e-5)
    check = dual_feasibility(X, sol.lam, pats)
    assert check.exact and check.value <= 1 + 1e-5
    assert check.value >= 1 - 1e-5  # the constraint is tight at the optimal neurons
    assert normalized_margin_objective(sol.net, X, y) == pytest.approx(sol.value, rel=1e-5)


def test_dual_feasibility_never_undercuts_random_directions(block):
    X, y, pats, sol, _ = block
    U = np.random.default_rng(0).standard_normal((X.shape[1], 50_000))
    U /= np.linalg.norm(U, axis=0)
    sampled = np.abs(sol.lam @ np.maximum(X @ U, 0.0)).max()
    assert sampled <= dual_feasibility(X, sol.lam, pats).value + 1e-9


def test_cone_sigma_is_exact_where_plain_nnls_is_off(block):
    """scipy.optimize.nnls can return a non-optimal point (scipy#25389); cone_sigma must still be exact:
    its maximizer is feasible and attains the value (lower bound = upper bound), and where plain NNLS
    is off it matches an SOCP solve."""
    import cvxpy as cp
    from scipy.optimize import nnls

    X, _, pats, sol, _ = block
    n_off = 0
    for i in range(len(pats)):
        mask = pats.masks[:, i]
        S = np.where(mask, 1.0, -1.0)
        for sign in (1, -1):
            c = sign * X.T @ (mask * sol.lam)
            value, u = cone_sigma(X, mask, c)
            A = S[:, None] * X
            plain = np.linalg.norm(c + A.T @ nnls(A.T, -c, maxiter=50 * max(A.shape))[0])
            assert value <= plain + 1e-11 * max(1.0, np.linalg.norm(c))  # never above NNLS's, to round-off
            if value > 1e-9:
                assert np.min(A @ u) >= -1e-9 and c @ u == pytest.approx(value, abs=1e-6)
            if plain - value > 1e-6:
                n_off += 1
                v = cp.Variable(X.shape[1])
                prob = cp.Problem(cp.Maximize(c @ v), [cp.multiply(S, X @ v) >= 0, cp.norm(v) <= 1])
                prob.solve(solver=cp.CLARABEL)
                assert value == pytest.approx(prob.value, abs=1e-6)
    assert dual_feasibility(X, sol.lam, pats).value == pytest.approx(1.0, abs=1e-6)


def test_two_svm_network_is_feasible_optimal_and_certified(block):
    X, y, pats, sol, svm = block
    margins = y * svm.net.predict(X)
    assert margins.min() >= 1 - 1e-7
    assert normalized_margin_objective(svm.net, X, y) == pytest.approx(svm.value, rel=1e-7)
    np.testing.assert_allclose(np.linalg.norm(svm.net.W1, axis=1), np.abs(svm.net.w2))  # balanced
    cert = kkt_certificate(svm.net, X, y, patterns=pats)
    assert cert.verdict is True and cert.patterns_complete
    assert cert.residual < 1e-8 and cert.dual == pytest.approx(1.0, abs=1e-6)
    assert cert.lam_dot_y == pytest.approx(svm.value, rel=1e-6)
    assert cert.lower_bound <= sol.value * (1 + 1e-6) and cert.rel_gap < 1e-6


def test_sampled_patterns_never_certify(block):
    X, y, _, _, svm = block
    cert = kkt_certificate(svm.net, X, y, patterns=sample_patterns(X, 200, seed=0))
    assert cert.verdict is None and not cert.patterns_complete and math.isnan(cert.lower_bound)


def test_suboptimal_separating_network_fails(block):
    X, y, pats, sol, _ = block
    a, b = np.r_[1.0, 1, 1, 0, 0, 0], np.r_[0.0, 0, 0, 1, 1, 1]
    net = TwoLayerNet(np.vstack([a, b]) * 3.0, np.r_[3.0, -3.0])  # separates, margin not maximal
    assert (y * net.predict(X)).min() > 0
    assert normalized_margin_objective(net, X, y) > 1.2 * sol.value
    cert = kkt_certificate(net, X, y, patterns=pats)
    assert cert.verdict is not True
    assert cert.verdict is False and cert.residual > 0.1
    assert cert.lower_bound <= sol.value * (1 + 1e-9)  # still a valid bound


def test_non_separating_network():
    X, y = block_support(5, 4, seed=3)
    net = TwoLayerNet(np.eye(6)[:1], np.r_[1.0])  # f ≥ 0 everywhere: negatives have margin ≤ 0
    assert normalized_margin_objective(net, X, y) == math.inf
    assert kkt_certificate(net, X, y).verdict is False


def test_euler_multiplier_recovers_kkt_multiplier(block):
    X, y, pats, _, svm = block
    cert = kkt_certificate(svm.net, X, y, patterns=pats)
    np.testing.assert_allclose(euler_multiplier(svm.net, X, y, 7.0 * cert.mu), cert.lam, atol=1e-9)


def test_logistic_log_terms_are_stable():
    q = torch.tensor([-5.0, 0.0, 10.0, 29.0, 31.0, 1000.0], dtype=torch.float64, requires_grad=True)
    out = _log_loss_terms(q, "logistic")
    (g,) = torch.autograd.grad(out.sum(), q)
    expected = np.log(np.log1p(np.exp(-q.detach().numpy()[:5])))
    np.testing.assert_allclose(out.detach().numpy()[:5], expected, rtol=1e-12)
    assert out[-1].item() == -1000.0 and torch.isfinite(g).all()


@pytest.mark.parametrize("loss,step_rule", [("exp", "normalized"), ("logistic", "constant")])
def test_flow_objective_is_an_upper_bound_and_decreases(loss, step_rule):
    X, y = double_cone(4, 4, d=3, seed=1)
    pats = enumerate_patterns(X)
    val = solve_max_margin_convex(X, y, pats).value
    run = subgradient_flow(X, y, width=8, steps=1500, loss=loss, step_rule=step_rule, record_every=100,
                           patterns=pats, seed=0)
    finite = np.isfinite(run.objective)
    assert finite[-1] and np.all(run.objective[finite] >= val * (1 - 1e-9))
    assert run.objective[-1] < run.objective[finite][0]
    assert run.cosine.shape == (run.steps.size, 8) and run.dual_exact
    assert run.steps[0] == 0 and run.steps[-1] == 1500


def test_reproduce_quick(tmp_path):
    section = reproduce(tmp_path, quick=True, seed=0)
    assert set(section) == {"name", "title", "setting", "claims", "figures", "data", "markdown"}
    assert section["name"] == "subgradient-flow"
    json.dumps(section, allow_nan=False)
    for claim in section["claims"]:
        assert set(claim) == {"claim", "measured", "claim_holds"} and isinstance(claim["claim_holds"], bool)
    for name in section["figures"]:
        path = tmp_path / name
        assert name.endswith(".png") and path.stat().st_size > 1000
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    failed = [c["claim"] for c in section["claims"] if not c["claim_holds"]]
    assert not failed, failed
    constant = [c for c in section["claims"] if "constant η" in c["claim"]]
    assert len(constant) == 1 and constant[0]["measured"]["reached_1pct"] is False  # the slow step rule
