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


def _planted(n: int = 16, d: int = 3, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Two ReLU neurons plus noise; with a bias column the arrangement has 1 152 patterns (n = 16, d = 3)."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    y = np.maximum(X @ [1.0, -1.0, 0.5], 0) - 0.5 * np.maximum(X @ [-0.3, 1.0, 1.0], 0) + 0.1 * rng.standard_normal(n)
    return X, y


@pytest.mark.parametrize("formulation", ["relu", "gated"])
def test_path_with_search_follows_the_all_pattern_path(formulation):
    """From 3 sampled patterns, the search at each β (warm-started from the previous β's list) reaches the optimum
    over all 1 152 enumerated patterns at every β, on lists of a few dozen patterns; its β_max (the search at
    λ₀ = y) is the all-pattern β_max."""
    X, y = _planted()
    full = cvxnn.path(X, y, patterns="all", formulation=formulation, n_betas=5, eps=0.05, bias=True,
                      max_patterns=2000, tol=1e-8)
    res = cvxnn.path(X, y, betas=full.betas, patterns=3, formulation=formulation, bias=True, max_patterns=2000,
                     search=True, tol=1e-8)
    assert res.beta_max == pytest.approx(full.beta_max, rel=1e-9)
    assert res.status == "complete" and np.array_equal(res.betas, full.betas)
    assert res.n_neurons[0] == 0 and res.fits[0].search is None  # β = β_max: the zero network, nothing solved
    for f, opt in zip(res.fits[1:], full.fits[1:]):
        assert f.search.stopped == "converged"
        assert f.objective == pytest.approx(opt.objective, rel=1e-6)
        assert f.objective >= opt.lower_bound - 1e-9 * opt.objective  # never below the certified optimum
    assert np.all(res.n_patterns[1:] < 60) and res.patterns is res.fits[-1].patterns


def test_the_search_at_the_zero_network_raises_beta_max_past_the_list():
    """The list's own β_max is below the all-pattern one; the search at λ₀ adds the patterns beyond it, so the
    default grid starts at the zero network of the whole arrangement and the next β is already nonzero."""
    X, y = _planted(seed=1)
    listed = cvxnn.path(X, y, patterns=2, n_betas=3, bias=True)
    searched = cvxnn.path(X, y, patterns=2, n_betas=3, bias=True, search=True)
    full_max = cvxnn.path(X, y, patterns="all", betas=[1.0], bias=True, max_patterns=2000).beta_max
    assert listed.beta_max < 0.99 * full_max
    assert searched.beta_max == pytest.approx(full_max, rel=1e-9)
    assert searched.n_neurons[0] == 0 and searched.n_neurons[1] > 0


@pytest.mark.parametrize("loss,outputs", [("logistic", 1), ("hinge", 1), ("cross_entropy", 3), ("squared", 2)])
def test_beta_max_is_the_dual_constraint_at_the_zero_networks_dual_point(loss, outputs):
    """λ₀ = −∇L(0): y/2 for the logistic loss (y for the hinge), one-hot − 1/c for the cross-entropy, Y for c
    squared outputs. At β_max the zero network is optimal with gap 0; just below it a solve finds a nonzero one."""
    rng = np.random.default_rng(4)
    X = rng.standard_normal((30, 3))
    y = {1: np.where(X[:, 0] * X[:, 1] > 0, 1.0, -1.0), 3: (X[:, 0] > 0).astype(int) + (X[:, 1] > 0.3),
         2: np.c_[np.sin(X[:, 0]), np.cos(X[:, 1])]}[outputs]
    pats = cvxnn.sample_patterns(X, 12, seed=0)
    res = cvxnn.path(X, y, patterns=pats, n_betas=2, eps=0.98, loss=loss, solver="reference")
    lam0 = np.eye(3)[y] - 1 / 3 if loss == "cross_entropy" else y / 2 if loss == "logistic" else y
    sigmas = [cone_sigma(X, m, s * X.T @ (m[:, None] * lam0.reshape(30, -1))[:, k])[0]
              for m in pats.masks.T for s in (1, -1) for k in range(lam0.reshape(30, -1).shape[1])]
    assert res.beta_max == pytest.approx(max(sigmas), rel=1e-7)
    zero, below = res.fits
    assert zero.n_neurons == 0 and zero.gap == pytest.approx(0.0, abs=1e-9 * zero.objective)
    assert below.n_neurons > 0 and below.objective < zero.objective and below.relative_gap <= 1e-6


def test_a_time_limit_or_an_interrupt_stops_the_path_with_the_fits_so_far(monkeypatch):
    X, y = _planted(n=40, d=3, seed=2)
    res = cvxnn.path(X, y, patterns=3, n_betas=30, search=True, time_limit=0.05)
    assert res.status == "time_limit" and len(res.fits) == len(res.betas) < 30
    per_beta = cvxnn.path(X, y, patterns=3, n_betas=3, search=cvxnn.SearchOptions(time_limit=0.001))
    assert per_beta.status == "complete" and len(per_beta.fits) == 3  # a search's own budget ends that β only
    assert [f.search.stopped for f in per_beta.fits[1:]] == ["time_limit"] * 2
    from cvxnn import training

    calls = []
    real = training.Program.solve

    def second_interrupts(self, *args, **kwargs):
        calls.append(self.beta)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(self, *args, **kwargs)

    monkeypatch.setattr(training.Program, "solve", second_interrupts)
    res = cvxnn.path(X, y, patterns=10, n_betas=4, solver="reference")
    assert res.status == "interrupted" and len(res.fits) == 2 and len(res.betas) == 2
    assert res.fits[1].relative_gap <= 1e-6  # the first solve, finished before the interrupt
    from cvxnn import pattern_search

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(pattern_search, "round_patterns", interrupted)  # Ctrl-C in the search at λ₀, before any β
    res = cvxnn.path(X, y, patterns=10, n_betas=4, search=True)
    assert res.status == "interrupted" and len(res.fits) == len(res.betas) == 0 and len(res.patterns) == 10
    assert res.beta_max == pytest.approx(cvxnn.path(X, y, patterns=10, n_betas=1).beta_max, rel=1e-12)


def test_arguments_path_does_not_take_are_named():
    X, y = _data(0)
    with pytest.raises(TypeError, match="init_nonconvex.*activation, negative_slope, loss"):
        cvxnn.path(X, y, patterns=5, init_nonconvex=100)


@pytest.mark.parametrize("loss", ["logistic", "cross_entropy"])
def test_path_with_search_for_classification_losses(loss):
    """The logistic loss and the 3-class cross-entropy (one dual constraint per class column, each searched): the
    path with a search from 3 sampled patterns meets the all-pattern path (242 patterns) at every β below β_max."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((16, 3))
    y = np.where(X[:, 0] * X[:, 1] > 0, 1.0, -1.0) if loss == "logistic" else \
        (np.arctan2(X[:, 1], X[:, 0]) > 0).astype(int) + (X[:, 2] > 0.5)
    full = cvxnn.path(X, y, patterns="all", loss=loss, n_betas=3, eps=0.1, tol=1e-8)
    res = cvxnn.path(X, y, betas=full.betas, patterns=3, loss=loss, search=True, tol=1e-8)
    assert res.beta_max == pytest.approx(full.beta_max, rel=1e-9)
    for f, opt in zip(res.fits[1:], full.fits[1:]):
        assert f.search.stopped == "converged" and len(f.patterns) < len(opt.patterns)
        assert f.objective == pytest.approx(opt.objective, rel=1e-6)


def test_progress_shows_the_path_and_its_search_rounds(capsys):
    X, y = _planted(n=30, seed=3)
    res = cvxnn.path(X, y, patterns=3, n_betas=3, search=cvxnn.SearchOptions(max_rounds=2), progress=True)
    err = capsys.readouterr().err
    assert len(res.fits) == 3 and "path: beta" in err and "pattern search" in err
    plain = cvxnn.path(X, y, patterns=10, n_betas=2, solver="ipm", progress=True)
    err = capsys.readouterr().err
    assert len(plain.fits) == 2 and "path: beta" in err and "relative gap" in err and "pattern search" not in err
