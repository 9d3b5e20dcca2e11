"""Kim & Pilanci relaxation readings and pattern subsampling (cvxnn.theory.relaxation / .subsampling)."""

import json

import numpy as np
import pytest

from cvxnn import enumerate_patterns, fit, sample_patterns
from cvxnn.cones import min_norm_split
from cvxnn.network import cone_violation, convex_objective, convex_prediction, network_from_convex
from cvxnn.patterns import Patterns
from cvxnn.theory import relaxation, subsampling

SECTION_KEYS = {"name", "title", "setting", "claims", "figures", "data", "markdown"}


@pytest.fixture(scope="module")
def tiny():
    """n = 10 Gaussian points in d = 3 with teacher labels, all 92 patterns, 8 sampled ones."""
    rng = np.random.default_rng(5)
    X, y = relaxation.gaussian_problem(10, 3, rng)
    everything = enumerate_patterns(X)
    beta = 0.05 * relaxation.beta_max(X, y, everything)
    p_star = fit(X, y, beta, patterns="all").objective
    sampled = sample_patterns(X, 8, seed=3)
    return X, y, beta, everything, p_star, sampled


def test_certified_optimum_matches_enumeration(tiny):
    X, y, beta, everything, p_star, _ = tiny
    opt = relaxation.certified_optimum(X, y, beta, everything)
    assert opt.value == pytest.approx(p_star, rel=1e-6)
    assert opt.lower_bound <= p_star * (1 + 1e-9)
    assert opt.relative_gap <= 1e-7


def test_certified_optimum_needs_all_patterns(tiny):
    X, y, beta, _, _, sampled = tiny
    with pytest.raises(ValueError, match="complete"):
        relaxation.certified_optimum(X, y, beta, sampled)


def test_readings_are_networks_not_below_p_star(tiny):
    X, y, beta, _, p_star, sampled = tiny
    values = relaxation.relaxation_values(X, y, beta, sampled)
    for key in ("constrained", "decomposed_gate", "decomposed_optimal"):
        assert values[key] >= p_star * (1 - 1e-9), key
    # the cheapest split never costs more than the generating-gate split
    assert values["decomposed_optimal"] <= values["decomposed_gate"] * (1 + 1e-6)


@pytest.mark.parametrize("split", [relaxation.gate_split, relaxation.optimal_split])
def test_split_is_feasible_and_keeps_the_fit(tiny, split):
    X, y, beta, _, _, sampled = tiny
    gated = fit(X, y, beta, patterns=sampled, formulation="gated")
    V, W = split(X, sampled, gated.v)
    scale = np.abs(X @ gated.v.T).max()
    assert cone_violation(X, sampled.masks, V) <= 1e-7 * scale
    assert cone_violation(X, sampled.masks, W) <= 1e-7 * scale
    np.testing.assert_allclose(convex_prediction(X, sampled.masks, V, W),
                               convex_prediction(X, sampled.masks, gated.v, np.zeros_like(gated.v)), atol=1e-7 * scale)


def test_gate_split_network_objective_is_the_reported_value(tiny):
    X, y, beta, _, _, sampled = tiny
    gated = fit(X, y, beta, patterns=sampled, formulation="gated")
    V, W = relaxation.gate_split(X, sampled, gated.v)
    reported = relaxation.relaxation_values(X, y, beta, sampled)["decomposed_gate"]
    assert reported == pytest.approx(network_from_convex(V, W).objective(X, y, beta), rel=1e-10)
    assert reported == pytest.approx(convex_objective(X, y, sampled.masks, V, W, beta), rel=1e-10)
    # fit's own split (least-norm w) is never worse than the gate split and at least the cheapest one
    cheapest = relaxation.relaxation_values(X, y, beta, sampled)["decomposed_optimal"]
    assert cheapest * (1 - 1e-7) <= gated.network_objective <= reported * (1 + 1e-10)


def test_min_norm_split_is_feasible_and_within_three_of_the_cheapest(tiny):
    X, y, beta, _, _, sampled = tiny
    U = np.random.default_rng(7).standard_normal((len(sampled), X.shape[1]))
    V, W = relaxation.optimal_split(X, sampled, U)
    for i in range(len(sampled)):
        v, w = min_norm_split(X, sampled.masks[:, i], U[i])
        S = np.where(sampled.masks[:, i], 1.0, -1.0)
        np.testing.assert_allclose(v - w, U[i], atol=1e-12)
        scale = np.abs(X).max() * (np.linalg.norm(v) + np.linalg.norm(w))
        assert (S * (X @ v)).min() >= -1e-12 * scale and (S * (X @ w)).min() >= -1e-12 * scale
        cost, best = np.linalg.norm(v) + np.linalg.norm(w), np.linalg.norm(V[i]) + np.linalg.norm(W[i])
        assert best * (1 - 1e-6) <= cost <= 3 * best
    inside = 2.0 * sampled.gates[:, 0]  # a block already in its cone (its generating gate) splits as (u, 0)
    v, w = min_norm_split(X, sampled.masks[:, 0], inside)
    assert np.array_equal(v, inside) and not np.any(w)


@pytest.mark.parametrize("way", ["daqp", "daqp-working-set", "nnls-working-set"])
def test_min_norm_split_gives_the_least_distance_over_all_rows(way, monkeypatch):
    """Every way min_norm_split solves its least-distance program — DAQP on every row, DAQP on a growing working
    set of rows (used above WORKING_SET_ROWS rows, lowered here), and (where DAQP reports no optimum, forced here)
    the NNLS rounds of a few rows at a time — ends at the least-norm w of the program with every row, solved as
    one NNLS."""
    from cvxnn import cones

    calls = []
    if way == "nnls-working-set":
        monkeypatch.setattr(cones.daqp, "solve", lambda H, f, A, *args, **kw: (np.zeros(H.shape[0]), 0.0, -4, {}))
    else:
        solve = cones.daqp.solve
        monkeypatch.setattr(cones.daqp, "solve", lambda H, f, A, *args, **kw: calls.append(len(A)) or
                            solve(H, f, A, *args, **kw))
    if way == "daqp-working-set":
        monkeypatch.setattr(cones, "WORKING_SET_ROWS", 50)
    rng = np.random.default_rng(11)
    X = rng.standard_normal((400, 8))
    pats = sample_patterns(X, 12, seed=3)
    for i, u in enumerate(3.0 * rng.standard_normal((12, 8))):
        S = np.where(pats.masks[:, i], 1.0, -1.0)
        A = S[:, None] * X / np.linalg.norm(X, axis=1)[:, None]
        b = np.maximum(-(A @ u), 0.0)
        assert int((b > 0).sum()) > 8  # many rows violated: more than one round of ⌈d/2⌉ rows
        v, w = min_norm_split(X, pats.masks[:, i], u)
        full = cones.least_distance(A, b)
        np.testing.assert_allclose(w, full, rtol=1e-9, atol=1e-12 * np.linalg.norm(full))
        np.testing.assert_allclose(v - w, u, atol=1e-12)
        assert (A @ w - b).min() >= -1e-12 * (np.linalg.norm(u) + np.linalg.norm(w))
    if way == "daqp":
        assert calls == [400] * 12
    elif way == "daqp-working-set":  # several rounds per block, on fewer rows than all
        assert len(calls) > 12 and max(calls) < 400 and min(calls) == 8


def test_subset_of_patterns_never_beats_all(tiny):
    X, y, beta, everything, p_star, _ = tiny
    rng = np.random.default_rng(0)
    for size in (1, 5, 20, len(everything) - 1):
        keep = np.sort(rng.choice(len(everything), size, replace=False))
        value = fit(X, y, beta, patterns=Patterns(everything.masks[:, keep])).objective
        assert value >= p_star * (1 - 1e-9)


def test_coverage_counts_shared_patterns(tiny):
    X, _, _, everything, _, sampled = tiny
    assert subsampling.coverage(everything, everything) == 1.0
    assert subsampling.coverage(sampled, everything) == pytest.approx(len(sampled) / len(everything))


def test_nested_patterns_grow_with_m(tiny):
    X = tiny[0]
    gates = np.random.default_rng(1).standard_normal((3, 50))
    small, large = subsampling.nested_patterns(X, gates, 10), subsampling.nested_patterns(X, gates, 50)
    assert subsampling.coverage(small, large) == pytest.approx(len(small) / len(large))


@pytest.mark.parametrize("module", [relaxation, subsampling])
def test_reproduce_quick_returns_a_section(tmp_path, module):
    section = module.reproduce(tmp_path, quick=True)
    assert set(section) == SECTION_KEYS
    assert section["name"] == module.NAME
    assert section["claims"]
    for claim in section["claims"]:
        assert isinstance(claim["claim"], str)
        assert isinstance(claim["claim_holds"], bool)
    for name in section["figures"]:
        assert name.endswith(".png")
        assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    json.dumps(section)  # json-able as returned
