"""Tests of cvxnn.stationarity: a network against (CVX) on its own activation patterns (THEORY §2.5).

Invariants: q*(𝒫) ≤ q*(own patterns) ≤ NC(θ) for every network (Ψ is feasible); equality on the
right at stationary points without ties; global optimality is a different, stronger property.
"""

from __future__ import annotations

import numpy as np
import pytest

import cvxnn
from cvxnn.network import TwoLayerNet
from cvxnn.stationarity import nc_gradient_norm, own_patterns, stationarity_certificate
from cvxnn.trajectory import nc_value_and_grad, train_with_trajectory


def _gd_end(X, y, beta, width, seed, epochs):
    """The last iterate of full-batch GD (lr 1e-2, init scale 0.5, bias) on THEORY §8.2a data."""
    traj = train_with_trajectory(X, y, beta, width, optimizer="gd", lr=1e-2, epochs=epochs, record_steps=[epochs],
                                 seed=seed, bias=True, init_scale=0.5)
    return traj.network(0)


def test_the_global_optimum_is_stationary(theory_problem):
    X, y, beta = theory_problem
    opt = cvxnn.fit(X, y, beta, patterns="all", bias=True)
    cert = stationarity_certificate(opt.network, X, y, beta)
    assert cert.stationary and cert.n_ties == 0
    assert cert.restricted_optimum == pytest.approx(opt.objective, rel=1e-9)
    assert abs(cert.gap) <= 1e-9 * cert.objective
    assert cert.kkt_residual < 1e-6 and cert.max_imbalance < 1e-9
    assert cert.n_patterns == opt.network.width


def test_a_stationary_point_that_is_not_globally_optimal(theory_problem):
    """GD with 2 neurons (seed 1) converges to a local minimum at 0.6215 (optimum 0.3238): optimal on
    its own patterns, yet the exact global certificate proves it suboptimal."""
    X, y, beta = theory_problem
    net = _gd_end(X, y, beta, width=2, seed=1, epochs=20_000)
    cert = stationarity_certificate(net, X, y, beta)
    assert cert.stationary and cert.n_ties == 0
    assert cert.kkt_residual < 1e-5 and cert.max_imbalance < 1e-8
    assert cert.relative_gap < 1e-9
    glob = cvxnn.certify(net, X, y, beta)
    assert glob.complete and glob.globally_optimal is False
    assert glob.lower_bound < 0.33 < 0.62 < cert.restricted_optimum


def test_an_unconverged_network_is_not_stationary(theory_problem):
    X, y, beta = theory_problem
    net = _gd_end(X, y, beta, width=10, seed=2, epochs=50)
    cert = stationarity_certificate(net, X, y, beta)
    assert not cert.stationary
    assert cert.relative_gap > 1e-2 and cert.kkt_residual > 1e-2
    assert cert.fit is not None and cert.fit.patterns.masks.shape == (len(y), cert.n_patterns)


def test_rescaling_a_stationary_network_breaks_stationarity_by_the_penalty_increase(theory_problem):
    """(u, α) → (2u, α/2) keeps f and the patterns, so q*(own) is unchanged and the gap grows by
    exactly (β/2)Σ(3‖u‖² − ¾α²) (= (β/2)·(9/4)Σ‖u‖² for a balanced network)."""
    X, y, beta = theory_problem
    net = cvxnn.fit(X, y, beta, patterns="all", bias=True).network
    scaled = TwoLayerNet(2 * net.W1, net.w2 / 2, bias=True)
    a, b = stationarity_certificate(net, X, y, beta), stationarity_certificate(scaled, X, y, beta)
    increase = 0.5 * beta * (3 * np.sum(net.W1**2) - 0.75 * np.sum(net.w2**2))
    assert b.restricted_optimum == pytest.approx(a.restricted_optimum, rel=1e-9)
    assert b.gap - a.gap == pytest.approx(increase, rel=1e-6)
    assert not b.stationary and b.max_imbalance > 0.1


def test_the_restricted_optimum_sits_between_the_global_optimum_and_the_network(small_problem):
    X, y, beta = small_problem
    q_all = cvxnn.fit(X, y, beta, patterns="all").objective
    rng = np.random.default_rng(0)
    for m in (1, 3, 8):
        net = TwoLayerNet(0.5 * rng.standard_normal((m, 3)), 0.5 * rng.standard_normal(m))
        cert = stationarity_certificate(net, X, y, beta)
        assert q_all - 1e-9 <= cert.restricted_optimum <= cert.objective + 1e-9
        assert cert.restricted_lower_bound <= cert.restricted_optimum + 1e-12
        assert cert.n_patterns == len(own_patterns(net, X)) <= m


def test_networks_without_active_neurons(small_problem):
    """θ = 0 is always stationary (q*(∅) = ½‖y‖² = NC(0)); u = 0 with α = 1 is not (∂NC/∂α = β)."""
    X, y, beta = small_problem
    zero = stationarity_certificate(TwoLayerNet(np.zeros((2, 3)), np.zeros(2)), X, y, beta)
    assert zero.stationary and zero.fit is None and zero.n_patterns == 0 and zero.kkt_residual == 0
    assert zero.restricted_optimum == pytest.approx(0.5 * y @ y) == zero.objective
    idle = stationarity_certificate(TwoLayerNet(np.zeros((1, 3)), np.ones(1)), X, y, beta)
    assert not idle.stationary and idle.n_patterns == 0
    assert idle.gap == pytest.approx(0.5 * beta) and idle.kkt_residual == pytest.approx(beta)


def test_autograd_gradient_matches_the_analytic_gradient(small_problem):
    X, y, beta = small_problem
    rng = np.random.default_rng(1)
    net = TwoLayerNet(rng.standard_normal((4, 3)), rng.standard_normal(4))
    _, gU, ga = nc_value_and_grad(X, y, net.W1, net.w2, beta)
    assert nc_gradient_norm(net, X, y, beta) == pytest.approx(np.sqrt(np.sum(gU**2) + ga @ ga), rel=1e-12)
