import numpy as np
import pytest

import cvxnn
from cvxnn.patterns import count_patterns_bound, network_patterns


def _as_set(P):
    return {tuple(col) for col in P.masks.T}


@pytest.mark.parametrize("n,r,expected", [(6, 2, 12), (8, 3, 58), (10, 3, 92), (7, 4, 84), (24, 3, 554)])
def test_enumeration_matches_general_position_count(n, r, expected):
    X = np.random.default_rng(n * 10 + r).standard_normal((n, r))
    P = cvxnn.enumerate_patterns(X)
    assert count_patterns_bound(n, r) == expected
    assert len(P) == expected and P.complete
    # every gate lies strictly inside its cell and reproduces its mask
    Z = X @ P.gates
    assert np.all(np.abs(Z) > 0)
    assert np.array_equal(Z >= 0, P.masks)


def test_enumeration_finds_cells_that_sampling_misses():
    X = np.random.default_rng(0).standard_normal((24, 3))
    exact = cvxnn.enumerate_patterns(X)
    sampled = cvxnn.sample_patterns(X, 200_000, seed=1)
    assert _as_set(sampled) <= _as_set(exact)
    assert len(sampled) < len(exact) == 554


def test_low_rank_data_in_higher_dimension():
    rng = np.random.default_rng(3)
    X = rng.standard_normal((24, 3)) @ rng.standard_normal((3, 7))
    P = cvxnn.enumerate_patterns(X)
    assert len(P) == 554
    assert P.info["rank"] == 3


def test_one_dimensional_with_bias_has_2n_patterns_even_with_repeated_points():
    x = np.sort(np.random.default_rng(1).uniform(-2, 2, 8))
    X = np.c_[x, np.ones_like(x)]
    assert len(cvxnn.enumerate_patterns(X)) == 16
    # repeated points do not add cells: still 2 x (number of distinct points)
    X2 = np.c_[np.repeat(x, 2), np.ones(16)]
    assert len(cvxnn.enumerate_patterns(X2)) == 16


def test_degenerate_arrangement_matches_dense_sampling():
    # rows in special position (three collinear points in the plane of the first two features)
    X = np.array([[1.0, 0, 1], [2, 0, 1], [3, 0, 1], [0, 1, 1], [1, 1, 0], [-1, 2, 1], [0.5, -1, 1]])
    exact = cvxnn.enumerate_patterns(X)
    sampled = cvxnn.sample_patterns(X, 300_000, seed=0, drop_zero=False)
    assert _as_set(sampled) <= _as_set(exact)
    assert len(exact) == len(sampled)


def test_enumeration_refuses_large_counts_with_the_prediction():
    X = np.random.default_rng(0).standard_normal((100, 10))
    with pytest.raises(ValueError, match="3,836,629,637,040"):
        cvxnn.enumerate_patterns(X)
    X = np.random.default_rng(0).standard_normal((30, 3))
    with pytest.raises(ValueError, match="max_patterns"):
        cvxnn.enumerate_patterns(X, max_patterns=100)
    assert len(cvxnn.enumerate_patterns(X, max_patterns=1000)) == count_patterns_bound(30, 3)


def test_sampling_is_seeded_and_deduplicated():
    X = np.random.default_rng(0).standard_normal((30, 4))
    a = cvxnn.sample_patterns(X, 500, seed=3)
    b = cvxnn.sample_patterns(X, 500, seed=3)
    assert np.array_equal(a.masks, b.masks)
    assert len({tuple(c) for c in a.masks.T}) == len(a) <= 500
    assert not a.complete and a.masks.shape == (30, len(a)) and a.gates.shape == (4, len(a))


def test_tie_rule_is_a_parameter():
    X = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    W1 = np.array([[1.0, -1.0]])  # zero on the third row
    assert network_patterns(W1, X, tie=">=").masks[:, 0].tolist() == [True, False, True]
    assert network_patterns(W1, X, tie=">").masks[:, 0].tolist() == [True, False, False]
    with pytest.raises(ValueError, match="tie"):
        network_patterns(W1, X, tie="=>")
