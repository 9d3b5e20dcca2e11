"""``cvxnn.path``: the convex program along decreasing β on one pattern list, with warm starts."""

from __future__ import annotations

import numpy as np
import pytest

import cvxnn
from cvxnn.duality import cone_sigma


def _data(seed: int = 0, n: int = 20, d: int = 3) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    return X, np.maximum(X @ rng.standard_normal(d), 0) + 0.1 * rng.standard_normal(n)


def test_path_objectives_match_independent_fits_to_the_gap():
    X, y = _data(0)
    res = cvxnn.path(X, y, betas=[0.05, 0.5, 0.2, 1.0], patterns=30, seed=1)
    assert np.array_equal(res.betas, [1.0, 0.5, 0.2, 0.05])  # largest first
    for beta, f in zip(res.betas, res.fits):
        alone = cvxnn.fit(X, y, beta, patterns=res.patterns)
        assert f.beta == beta and f.patterns is res.patterns
        assert abs(f.objective - alone.objective) <= f.gap + alone.gap + 1e-9 * alone.objective
    assert np.all(res.gaps <= 1e-6)
    assert np.all(np.diff(res.objectives) < 0)  # a smaller penalty, a smaller optimum
    assert len(res.networks) == 4 and res.n_neurons[-1] >= 1


def test_beta_max_gives_the_zero_network_and_below_it_a_nonzero_one():
    X, y = _data(1)
    pats = cvxnn.enumerate_patterns(X)
    beta_max = max(max(cone_sigma(X, m, X.T @ (m * y))[0], cone_sigma(X, m, -X.T @ (m * y))[0]) for m in pats.masks.T)
    res = cvxnn.path(X, y, betas=[2 * beta_max, beta_max, 0.9 * beta_max], patterns=pats)
    assert res.beta_max == pytest.approx(beta_max, rel=1e-9)
    for f in res.fits[:2]:
        assert f.n_neurons == 0 and not np.any(f.v) and not np.any(f.w)
        assert f.objective == pytest.approx(0.5 * y @ y) and f.gap == pytest.approx(0.0, abs=1e-12)
        assert f.certified_global
    assert res.fits[2].n_neurons >= 1 and res.fits[2].objective < 0.5 * y @ y


def test_default_grid_is_geometric_from_beta_max():
    X, y = _data(2)
    res = cvxnn.path(X, y, patterns=15, n_betas=4, eps=0.1)
    assert res.betas[0] == pytest.approx(res.beta_max) and res.betas[-1] == pytest.approx(0.1 * res.beta_max)
    assert np.allclose(np.diff(np.log(res.betas)), np.log(0.1) / 3)
    assert res.n_neurons[0] == 0


def test_gated_path_with_fista_warm_starts_and_meets_the_tolerance():
    X, y = _data(3, n=60, d=5)
    betas = [2.0, 1.0, 0.5, 0.25]
    res = cvxnn.path(X, y, betas=betas, patterns=40, formulation="gated", solver="fista", tol=1e-6)
    cold = [cvxnn.fit(X, y, b, patterns=res.patterns, formulation="gated", solver="fista", tol=1e-6) for b in betas]
    assert np.all(res.gaps <= 1e-6)
    for f, c in zip(res.fits, cold):
        assert abs(f.objective - c.objective) <= (f.gap + c.gap) + 1e-12
    assert res.n_iter.sum() < sum(c.n_iter for c in cold)
    gated_max = max(np.linalg.norm(X.T @ (m * y)) for m in res.patterns.masks.T)
    assert res.beta_max == pytest.approx(gated_max, rel=1e-12)


def test_bad_betas_are_rejected():
    X, y = _data(0)
    for bad in ([], [1.0, -1.0], [np.nan]):
        with pytest.raises(ValueError, match="betas"):
            cvxnn.path(X, y, betas=bad, patterns=5)
    with pytest.raises(ValueError, match="eps"):
        cvxnn.path(X, y, patterns=5, eps=2.0)
