import numpy as np
import pytest

import cvxnn
from cvxnn.network import TwoLayerNet


def test_exact_fit_over_all_patterns_is_certified_globally_optimal(small_problem, theory_problem):
    for X, y, beta, bias in (small_problem + (False,), theory_problem + (True,)):
        res = cvxnn.fit(X, y, beta, patterns="all", bias=bias)
        cert = cvxnn.certify(res.network, X, y, beta)
        assert cert.complete and cert.globally_optimal is True
        assert cert.lower_bound <= cert.objective + 1e-9
        assert cert.relative_gap < 1e-6
        assert cert.objective == pytest.approx(res.objective, rel=1e-8)


def test_weak_duality_for_random_networks(small_problem):
    """No network's certified lower bound exceeds the optimum, and none beats it."""
    X, y, beta = small_problem
    opt = cvxnn.fit(X, y, beta, patterns="all").objective
    rng = np.random.default_rng(0)
    for m in (1, 3, 10):
        for _ in range(5):
            net = TwoLayerNet(0.5 * rng.standard_normal((m, 3)), 0.5 * rng.standard_normal(m))
            cert = cvxnn.certify(net, X, y, beta)
            assert cert.lower_bound <= opt + 1e-9
            assert cert.objective >= opt - 1e-9
            assert cert.globally_optimal is False  # random networks are far from optimal
            assert cert.improving_direction is not None


def test_a_suboptimal_network_is_not_certified_and_the_bound_stays_valid(small_problem):
    X, y, beta = small_problem
    res = cvxnn.fit(X, y, beta, patterns="all")
    net = TwoLayerNet(res.network.W1[:1], res.network.w2[:1])  # keep one neuron
    cert = cvxnn.certify(net, X, y, beta)
    assert cert.globally_optimal is False
    assert cert.lower_bound <= res.objective + 1e-9 < cert.objective


def test_improving_direction_really_improves(small_problem):
    X, y, beta = small_problem
    net = TwoLayerNet(np.zeros((1, 3)), np.zeros(1))
    cert = cvxnn.certify(net, X, y, beta)
    assert cert.globally_optimal is False
    u, sign = cert.improving_direction, cert.improving_sign
    lam = y - net.predict(X)
    q = np.maximum(X @ u, 0)
    s = sign * (lam @ q)
    assert s > beta
    a = (s - beta) / (q @ q)  # neuron (sqrt(a) u, sign sqrt(a)) lowers NC by (s - beta)^2 / (2 q^T q)
    better = TwoLayerNet(np.sqrt(a) * u[None, :], np.array([sign * np.sqrt(a)]))
    assert better.objective(X, y, beta) == pytest.approx(cert.objective - (s - beta) ** 2 / (2 * q @ q))


def test_without_enumeration_the_certificate_is_honest():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((60, 8))
    y = np.maximum(X @ rng.standard_normal(8), 0) - np.maximum(X @ rng.standard_normal(8), 0)
    beta = 0.5
    res = cvxnn.fit(X, y, beta, patterns=30, seed=0)
    cert = cvxnn.certify(res.network, X, y, beta, max_patterns=1000, n_samples=300)
    assert not cert.complete and cert.globally_optimal is not True
    assert cert.lower_bound <= cert.objective
    assert "not excluded" in cert.not_checked
    # weak duality against a much better sampled program
    better = cvxnn.fit(X, y, beta, patterns=120, seed=5)
    assert cert.lower_bound <= better.objective + 1e-9
    summary = cert.summary()
    assert set(summary) >= {"objective", "lower_bound", "gap", "globally_optimal", "method", "checked",
                            "not_checked"}


def test_gated_fit_over_all_patterns_bounds_every_relu_network(small_problem):
    """With every pattern listed, the gated program's dual point is feasible for the ReLU program: its bound
    is global, below the ReLU optimum, and the gated network's NC lies above that optimum."""
    X, y, beta = small_problem
    for vp, Y in (("per_output", y), ("group", np.c_[y, -0.5 * y + 0.1])):
        relu = cvxnn.fit(X, Y, beta, patterns="all", vector_penalty=vp)
        gated = cvxnn.fit(X, Y, beta, patterns="all", formulation="gated", vector_penalty=vp)
        assert gated.certified_global and relu.certified_global
        assert gated.lower_bound <= gated.objective + 1e-9
        assert gated.lower_bound <= relu.objective + 1e-9
        assert relu.objective <= gated.network_objective + 1e-9
    sampled = cvxnn.fit(X, y, beta, patterns=3, formulation="gated")
    assert not sampled.certified_global
