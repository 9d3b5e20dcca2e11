"""The gated program's pattern search (``fit(formulation="gated", search=...)``, :mod:`cvxnn.gated_search`).

Ground truth: the gated optimum over all enumerated patterns, and ν(D) = ‖X̃ᵀW_DΛ‖ recomputed per pattern.
"""

from __future__ import annotations

import numpy as np
import pytest

import cvxnn
from cvxnn import SearchOptions
from cvxnn.activations import activation_from
from cvxnn.gated_search import flip_ascent, gated_values, search_gated_violations
from cvxnn.network import convex_prediction


def _data(loss: str, seed: int = 0):
    """n = 16, d = 3 with a bias column (1 152 patterns): targets for ``loss``."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((16, 3))
    y = {"squared": np.sin(X @ rng.standard_normal(3)) + 0.1 * rng.standard_normal(16),
         "logistic": np.where(X[:, 0] * X[:, 1] > 0, 1.0, -1.0),
         "cross_entropy": (np.arctan2(X[:, 1], X[:, 0]) > 0).astype(int) + (X[:, 2] > 0.5),
         "two outputs": np.c_[np.sin(X[:, 0]), np.cos(X.sum(axis=1))]}[loss]
    return X, y


@pytest.mark.parametrize("case", [("squared", "relu", "per_output", 0), ("squared", "relu", "per_output", 1),
                                  ("squared", "leaky_relu", "per_output", 2), ("logistic", "relu", "per_output", 0),
                                  ("cross_entropy", "relu", "per_output", 0), ("two outputs", "relu", "group", 0),
                                  ("two outputs", "relu", "per_output", 0)])
def test_gated_search_prices_every_pattern_and_reaches_the_enumerated_optimum(case):
    """With the arrangement within ``max_patterns``, each round prices all 1 152 patterns exactly (ν is a closed
    form): the search converges to the all-pattern gated optimum, for every loss, leaky ReLU and both vector
    penalties, from 3 sampled patterns."""
    loss, activation, penalty, seed = case
    X, y = _data(loss, seed)
    loss_name = "squared" if loss == "two outputs" else loss
    beta = 0.5 if loss == "two outputs" else 0.1
    common = dict(formulation="gated", bias=True, loss=loss_name, activation=activation, vector_penalty=penalty,
                  tol=1e-9, max_patterns=2000)
    full = cvxnn.fit(X, y, beta, patterns="all", **common)
    assert full.objective - full.lower_bound <= 1e-6 * full.objective
    res = cvxnn.fit(X, y, beta, patterns=3, search=SearchOptions(max_rounds=40), **common)
    report = res.search
    # the last rounds' programs are small enough for the reference solver (Clarabel, accurate to about 1e-5)
    assert report.stopped == "converged" and report.max_violation <= 1 + 1e-4
    assert report.rounds[0].max_violation > 1 and report.rounds[0].n_added > 0
    searches = 1 if penalty == "group" or res.v.ndim == 2 else res.v.shape[2]  # one per output column
    assert report.n_screened == len(report.rounds) * 1152 * searches
    assert report.n_starts == report.n_projections == 0  # priced, not searched
    assert len(res.patterns) < len(full.patterns) / 10
    assert full.lower_bound * (1 - 1e-9) <= res.objective <= full.objective * (1 + 1e-7)
    assert np.all(np.diff(report.objectives) <= 1e-9 * report.objectives[0])


def _dual_point(seed: int):
    X, y = _data("squared", seed)
    Xt = np.c_[X, np.ones(16)]
    res = cvxnn.fit(X, y, 0.1, patterns=3, formulation="gated", bias=True, tol=1e-9)
    return Xt, y - convex_prediction(Xt, res.patterns.masks, res.v, res.w), res


def test_flip_ascent_is_monotone_and_its_values_are_exact():
    Xt, lam, _ = _dual_point(0)
    G = np.random.default_rng(3).standard_normal((4, 300))
    start = gated_values(Xt, lam[:, None], G)
    gates, values, local, steps = flip_ascent(Xt, lam[:, None], G, max_iter=100)
    assert steps > 0 and local.all()
    assert np.all(values >= start * (1 - 1e-12)) and np.any(values > start * 1.01)
    masks = Xt @ gates >= 0
    exact = np.linalg.norm(Xt.T @ (masks * lam[:, None]), axis=0)
    np.testing.assert_allclose(values, exact, rtol=1e-12)
    # leaky ReLU: W_D = D + κ(I − D); the ascent reports ν with those weights
    leaky = activation_from("leaky_relu", 0.2)
    _, lv, _, _ = flip_ascent(Xt, lam[:, None], G[:, :50], leaky, max_iter=100)
    assert np.all(lv >= gated_values(Xt, lam[:, None], G[:, :50], leaky) * (1 - 1e-12))


def test_search_without_enumeration_finds_violations_and_never_beats_the_optimum():
    """Above ``max_patterns`` the flip ascent searches (a heuristic): its values are exact ν of real gates, the
    search lowers the objective from 3 sampled patterns, and never below the enumerated optimum."""
    Xt, lam, first = _dual_point(1)
    found = search_gated_violations(Xt, lam, 0.1, n_random=1000, seed=0)
    assert found.best_value > 0.1 and found.n_projections == 0 and found.local_maxima.any()
    exact = np.linalg.norm(Xt.T @ (found.patterns.masks * lam[:, None]), axis=0)
    np.testing.assert_allclose(found.values, exact, rtol=1e-12)
    np.testing.assert_array_equal(found.patterns.masks, Xt @ found.patterns.gates >= 0)
    assert np.all(np.diff(found.values) <= 0)  # largest first
    reached = np.sum(found.directions.T * (Xt.T @ (found.patterns.masks * lam[:, None])), axis=0)
    np.testing.assert_allclose(reached, exact, rtol=1e-9)  # u = X̃ᵀDλ/ν attains ν
    X, y = _data("squared", 1)
    full = cvxnn.fit(X, y, 0.1, patterns="all", formulation="gated", bias=True, tol=1e-9, max_patterns=2000)
    res = cvxnn.fit(X, y, 0.1, patterns=3, formulation="gated", bias=True, tol=1e-9,
                    search=SearchOptions(max_rounds=30))  # default max_patterns = 1000 < 1 152: no pricing
    assert res.search.n_starts > 0 and res.search.n_projections == 0  # searched (flip ascents), not priced
    assert full.lower_bound * (1 - 1e-9) <= res.objective < first.objective * 0.9
    assert res.objective <= full.objective * 1.05


def test_gated_search_on_a_problem_too_large_to_enumerate():
    """n = 300, d = 6 (about 10¹² patterns): rounds of flip ascents lower the objective of 20 sampled patterns by
    a third and end each round's search at violated maxima; the rounds take the cold solver choice."""
    rng = np.random.default_rng(5)
    X = rng.standard_normal((300, 6))
    y = np.maximum(X @ rng.standard_normal((6, 4)), 0) @ rng.standard_normal(4) + 0.1 * rng.standard_normal(300)
    plain = cvxnn.fit(X, y, 1.0, patterns=20, formulation="gated")
    res = cvxnn.fit(X, y, 1.0, patterns=20, formulation="gated", search=SearchOptions(max_rounds=6))
    assert res.objective < plain.objective * 0.67
    assert all(r.max_violation > 1 and r.n_added > 0 for r in res.search.rounds[:-1])
    assert res.solver == "ipm" and res.relative_gap <= 1e-6
    assert res.lower_bound <= res.objective * (1 + 1e-12) and res.network_objective >= res.objective * (1 - 1e-9)
    # every pattern the search added has a gate realizing it: the gated model predicts the program's fit
    np.testing.assert_allclose(res.predict_gated(X), convex_prediction(X, res.patterns.masks, res.v, res.w),
                               rtol=1e-10, atol=1e-10)


def test_search_in_chunks_of_starts_gives_the_same_maxima(monkeypatch):
    """Large n: the starts are ascended CHUNK_ENTRIES // n at a time (memory); the paths do not interact."""
    import cvxnn.gated_search as gated

    Xt, lam, _ = _dual_point(2)
    whole = search_gated_violations(Xt, lam, 0.1, n_random=200, seed=1)
    monkeypatch.setattr(gated, "CHUNK_ENTRIES", 16 * 7)  # 7 starts per chunk
    chunked = search_gated_violations(Xt, lam, 0.1, n_random=200, seed=1)
    np.testing.assert_array_equal(chunked.patterns.masks, whole.patterns.masks)
    np.testing.assert_array_equal(chunked.values, whole.values)
    assert chunked.n_iter == whole.n_iter
    empty = search_gated_violations(Xt, lam, 0.1, n_random=0)
    assert len(empty.values) == 0 and empty.patterns.masks.shape == (16, 0)
