"""Tests of cvxnn.pattern_search (local search for violated dual constraints, search certificates,
column generation) and of the dual-constraint circle figure.

Ground truth on small data: the exact dual-constraint maximum max_i max(σ_i^+, σ_i^-) over all
enumerated patterns (THEORY §2.2, §2.4), and the all-pattern optimum q*(𝒫).
"""

from __future__ import annotations

import numpy as np
import pytest

import cvxnn
from cvxnn.duality import cone_sigma, max_dual_constraint
from cvxnn.figures import dual_constraint_circle, dual_constraint_curve, neuron_angles
from cvxnn.network import TwoLayerNet, convex_prediction
from cvxnn.pattern_search import certify_with_search, column_generation_fit, screened_ascent, search_violations
from planted import planted_two_neuron

BETA = 0.1


def _suboptimal_duals(X: np.ndarray, y: np.ndarray, seed: int) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """(kind, λ, start directions) for suboptimal points: random nets and fits on 3 or 6 sampled patterns."""
    rng = np.random.default_rng(100 + seed)
    out = []
    for m in (1, 4):
        net = TwoLayerNet(0.7 * rng.standard_normal((m, X.shape[1])), 0.7 * rng.standard_normal(m))
        out.append((f"random net m={m}", y - net.predict(X), net.W1))
    for P in (3, 6):
        res = cvxnn.fit(X, y, BETA, patterns=P, seed=seed)
        out.append((f"fit on {P} samples", y - convex_prediction(X, res.patterns.masks, res.v, res.w),
                    res.network.W1))
    return out


def test_every_reported_value_is_an_exact_sigma_of_a_real_pattern():
    X, y = planted_two_neuron(0)
    _, lam, starts = _suboptimal_duals(X, y, 0)[1]
    res = search_violations(X, lam, BETA, starts=starts, n_random=10, seed=0)
    exact = max_dual_constraint(X, cvxnn.enumerate_patterns(X).masks, lam).value
    assert len(res.patterns) > 5 and res.n_projections >= len(res.patterns)
    assert np.array_equal(X @ res.patterns.gates >= 0, res.patterns.masks)  # the pattern of a real point
    for i in range(len(res.patterns)):
        mask, sign, u = res.patterns.masks[:, i], res.signs[i], res.directions[i]
        value, _ = cone_sigma(X, mask, sign * (X.T @ (mask * lam)))
        assert res.values[i] == pytest.approx(value, rel=1e-12)
        assert np.linalg.norm(u) == pytest.approx(1.0, rel=1e-9)
        assert np.min(np.where(mask, 1.0, -1.0) * (X @ u)) >= -1e-9  # u ∈ K(D_i)
    assert np.allclose(res.achieved, res.values, rtol=1e-9, atol=1e-12)
    assert res.values.max() <= exact * (1 + 1e-9)  # no value above the true supremum


def test_screened_ascent_reports_exact_values_that_more_steps_never_lower():
    """The batched ascent's values are λᵀ(X̃u)_+ at its unit points, and a longer run repeats a shorter one's
    path (the step lengths depend on the step number only), so its best values are at least as large; none
    exceeds the exact supremum over the enumerated patterns."""
    X, y = planted_two_neuron(1)
    _, lam, _ = _suboptimal_duals(X, y, 1)[2]
    H = np.random.default_rng(0).standard_normal((X.shape[1], 60))
    signs = np.tile([1.0, -1.0], 30)
    short_u, short_g = screened_ascent(X, lam, H, signs, 5)
    long_u, long_g = screened_ascent(X, lam, H, signs, 30)
    for U, g in ((short_u, short_g), (long_u, long_g)):
        assert np.allclose(np.linalg.norm(U, axis=0), 1.0)
        assert np.allclose(g, signs * (lam @ np.maximum(X @ U, 0.0)), rtol=1e-12, atol=1e-12)
    assert np.all(long_g >= short_g) and np.any(long_g > short_g)
    masks = cvxnn.enumerate_patterns(X).masks
    exact = max(max_dual_constraint(X, masks, lam).value, max_dual_constraint(X, masks, -lam).value)
    assert long_g.max() <= exact * (1 + 1e-9)


def test_search_matches_the_exact_maximum_on_enumerable_data():
    """n = 15, d = 3 (212 patterns), 40 suboptimal dual points. The ascent stops at local maxima, so
    it cannot always reach the exact maximum: with 50 random starts it does in 39 of 40 cases (seed 8
    stops at 98.8% of it; 200 starts reach it), with 5 starts in 31 of 40. Every case is clearly
    violated (exact > 1.05β) and the search always finds a violation, even with 5 starts."""
    matches = {5: 0, 50: 0}
    for seed in range(10):
        X, y = planted_two_neuron(seed)
        masks = cvxnn.enumerate_patterns(X).masks
        for kind, lam, starts in _suboptimal_duals(X, y, seed):
            exact = max_dual_constraint(X, masks, lam).value
            assert exact > 1.05 * BETA, kind
            for n_random in matches:
                found = search_violations(X, lam, BETA, starts=starts, n_random=n_random, seed=seed)
                assert BETA < found.best_value <= exact * (1 + 1e-9), (seed, kind, n_random)
                matches[n_random] += found.best_value >= exact * (1 - 1e-6)
    assert matches[50] >= 38 and matches[5] >= 28


def test_at_the_optimum_the_search_finds_no_violation_and_the_constraint_is_tight():
    X, y = planted_two_neuron(1)
    res = cvxnn.fit(X, y, BETA, patterns="all")
    lam = y - res.network.predict(X)
    found = search_violations(X, lam, BETA, starts=res.network.W1, n_random=50, seed=0)
    assert found.best_value == pytest.approx(BETA, rel=1e-6)  # tight at the optimal neurons, never above
    assert found.violating(1e-6).size == 0


def test_certify_with_search_never_certifies_a_suboptimal_network():
    for seed in range(3):
        X, y = planted_two_neuron(seed)
        opt = cvxnn.fit(X, y, BETA, patterns="all")
        nets = [TwoLayerNet(opt.network.W1[:1], opt.network.w2[:1]),  # one neuron of the optimum
                TwoLayerNet(np.zeros((1, 3)), np.zeros(1)),
                cvxnn.fit(X, y, BETA, patterns=3, seed=seed).network]
        for net in nets:
            cert = certify_with_search(net, X, y, BETA, n_random=20, seed=seed)
            assert cert.objective > opt.objective * (1 + 1e-3)
            assert cert.globally_optimal is False
            assert cert.lower_bound <= opt.objective + 1e-9
            assert cert.max_dual_violation > 1 and not cert.complete
            u, s = cert.improving_direction, cert.improving_sign
            q = np.maximum(X @ u, 0)
            excess = s * (y - net.predict(X)) @ q - BETA
            assert excess > 0
            a = excess / (q @ q)  # add the neuron (√a u, s√a): NC drops by excess²/(2‖q‖²)
            better = TwoLayerNet(np.vstack([net.W1, np.sqrt(a) * u]), np.r_[net.w2, s * np.sqrt(a)])
            drop = cert.objective - better.objective(X, y, BETA)
            assert drop == pytest.approx(excess**2 / (2 * q @ q), rel=1e-9)


def test_certify_with_search_on_the_optimal_network_proves_nothing_false():
    X, y = planted_two_neuron(2)
    opt = cvxnn.fit(X, y, BETA, patterns="all")
    cert = certify_with_search(opt.network, X, y, BETA, n_random=50)
    assert cert.globally_optimal is not False
    assert cert.max_dual_violation <= 1 + 1e-6
    assert cert.lower_bound <= cert.objective + 1e-12
    assert cert.search is not None and cert.patterns_checked == len(cert.search.patterns)


def test_certify_with_search_takes_the_loss():
    """Logistic loss: the objective, λ = −∇L and the bound are the logistic ones (as in cvxnn.certify); a net from
    3 patterns is proved suboptimal, the all-pattern optimum is not, and every bound is below that optimum."""
    X, y = planted_two_neuron(0)
    labels = np.where(y > np.median(y), 1.0, -1.0)
    opt = cvxnn.fit(X, labels, BETA, patterns="all", loss="logistic", solver="ipm", tol=1e-9)
    few = cvxnn.fit(X, labels, BETA, patterns=3, seed=0, loss="logistic")
    for net, optimal in ((few.network, False), (opt.network, True)):
        cert = certify_with_search(net, X, labels, BETA, n_random=20, loss="logistic")
        assert cert.objective == pytest.approx(net.objective(X, labels, BETA, "logistic"), rel=1e-12)
        assert cert.lower_bound <= opt.objective * (1 + 1e-9)
        assert (cert.max_dual_violation > 1 + 1e-3) is not optimal
        assert cert.globally_optimal is (None if optimal else False)
    with pytest.raises(ValueError, match="one output"):
        certify_with_search(TwoLayerNet(np.ones((1, 3)), np.ones((1, 2))), X, np.c_[y, y], BETA)


def test_search_certificate_on_data_too_large_to_enumerate():
    """n = 120, d = 8: ~10^11 patterns. The search proves a small net suboptimal; its bound stays valid."""
    rng = np.random.default_rng(5)
    X = rng.standard_normal((120, 8))
    y = np.maximum(X @ rng.standard_normal(8), 0) - np.maximum(X @ rng.standard_normal(8), 0)
    res = cvxnn.fit(X, y, 1.0, patterns=20)
    cert = certify_with_search(res.network, X, y, 1.0, n_random=30)
    assert cert.globally_optimal is False and cert.max_dual_violation > 1
    assert cert.lower_bound <= res.objective
    assert cert.patterns_checked > 100 and cert.search.n_starts == 2 * (30 + res.network.width)


def test_column_generation_reaches_the_enumerated_optimum():
    for seed in (0, 3, 5):
        X, y = planted_two_neuron(seed)
        opt = cvxnn.fit(X, y, BETA, patterns="all")
        cg = column_generation_fit(X, y, BETA, patterns0=5, max_rounds=20, n_random=20, seed=seed)
        assert cg.converged
        assert cg.fit.objective == pytest.approx(opt.objective, rel=1e-6)
        assert np.all(np.diff(cg.objectives) <= 1e-9 * cg.objectives[0])  # nested lists
        assert cg.log[0].n_patterns <= 5 and len(cg.fit.patterns) < len(opt.patterns)
        assert cg.log[-1].max_violation <= 1 + 1e-6 and cg.log[-1].n_added == 0
        assert cvxnn.certify(cg.fit.network, X, y, BETA).globally_optimal is True


def test_column_generation_with_a_budget_stops_and_says_so():
    X, y = planted_two_neuron(0)
    cg = column_generation_fit(X, y, BETA, patterns0=3, max_rounds=1, n_random=10, max_add=2)
    assert not cg.converged and len(cg.log) == 1 and cg.log[0].n_added == 2


def test_bad_starts_are_rejected():
    X, y = planted_two_neuron(0)
    with pytest.raises(ValueError, match="starts"):
        search_violations(X, y, BETA, starts=np.ones((2, 4)))
    with pytest.raises(ValueError, match="n_random"):
        search_violations(X, y, BETA, n_random=-1)


# ---------------------------------------------------------------------- the circle figure


def test_dual_constraint_circle_plots_the_exact_curve(theory_problem):
    x, y, beta = theory_problem
    res = cvxnn.fit(x, y, beta, patterns="all", bias=True)
    lam = y - res.network.predict(x)
    fig = dual_constraint_circle(x, lam, beta, neurons=res.network, bias=True, n_angles=360)
    ax = fig.axes[0]
    thetas, values = ax.lines[0].get_xdata(), ax.lines[0].get_ydata()
    Xt = np.c_[x, np.ones_like(x)]
    direct = [sum(lam[k] * max(Xt[k, 0] * np.cos(t) + Xt[k, 1] * np.sin(t), 0.0) for k in range(len(y)))
              for t in thetas]
    assert len(thetas) == 360 and np.allclose(values, direct, rtol=0, atol=1e-13)
    assert np.max(np.abs(values)) <= beta * (1 + 1e-6)  # λ is dual feasible at the optimum
    vertical = [ln.get_xdata()[0] for ln in ax.lines[3:]]
    assert np.allclose(vertical, neuron_angles(res.network))
    at_neurons = dual_constraint_curve(Xt, lam, neuron_angles(res.network))
    assert np.allclose(at_neurons, np.sign(res.network.w2) * beta, rtol=1e-6)  # dual extreme points


def test_dual_constraint_circle_saves_and_checks_dimensions(tmp_path):
    X, y = planted_two_neuron(0, n=10, d=2)
    path = tmp_path / "circle.png"
    fig = dual_constraint_circle(X, y, 0.5, path=path)
    assert path.stat().st_size > 1000 and len(fig.axes[0].lines) == 3
    with pytest.raises(ValueError, match="2-D design"):
        dual_constraint_circle(np.ones((4, 3)), np.ones(4), 0.5)
