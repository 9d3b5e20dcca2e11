"""Batched cone-value bounds (duality.cone_sigma_upper) and the banded Gram matrices of the ReLU ipm (solvers.gram)."""

import numpy as np
import pytest
import torch

from cvxnn.duality import cone_sigma, cone_sigma_upper
from cvxnn.patterns import sample_patterns
from cvxnn.solvers.gram import add_lower_gram_, mirror_lower_


def _cones(seed: int, n: int = 80, d: int = 6, P: int = 40):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    masks = sample_patterns(X, P, seed=seed).masks
    C = rng.standard_normal((d, masks.shape[1]))
    exact = np.array([cone_sigma(X, masks[:, j], C[:, j])[0] for j in range(masks.shape[1])])
    return X, masks, C, exact


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_cone_sigma_upper_never_underestimates_and_tightens(seed):
    X, masks, C, exact = _cones(seed)
    norms = np.linalg.norm(C, axis=0)
    bounds = cone_sigma_upper(X, masks, C, below=0.0, max_iter=300)  # below 0: no column leaves early
    assert np.all(bounds >= exact * (1 - 1e-12) - 1e-12)
    assert np.all(bounds <= norms + 1e-12)
    # projected gradient approaches the NNLS value: within 5 % of ‖c‖ after 300 iterations everywhere,
    # strictly tighter than the trivial bound ‖c‖ on the cones that c leaves
    assert np.max((bounds - exact) / norms) < 0.05
    assert np.all(bounds[exact < 0.9 * norms] < norms[exact < 0.9 * norms])


def test_cone_sigma_upper_decides_small_values():
    X, masks, C, exact = _cones(3)
    below = 0.5 * np.linalg.norm(C, axis=0).min()
    bounds = cone_sigma_upper(X, masks, C, below=below)
    small = exact < 0.5 * below
    assert small.sum() >= 5
    assert np.all(bounds[small] < below)  # each clearly smaller value is decided without NNLS
    assert np.all(bounds >= exact * (1 - 1e-12) - 1e-12)


@pytest.mark.parametrize("n,k", [(5, 3), (130, 40), (300, 700), (513, 90)])
def test_banded_gram_is_the_full_product(n, k):
    F = torch.randn(n, k, dtype=torch.float64, generator=torch.Generator().manual_seed(n))
    M = torch.zeros(n, n, dtype=torch.float64)
    add_lower_gram_(M, F[:, : k // 2])
    add_lower_gram_(M, F[:, k // 2:])  # accumulates, as over chunks of patterns
    mirror_lower_(M)
    torch.testing.assert_close(M, F @ F.T, rtol=1e-12, atol=1e-10)
    assert torch.equal(M, M.T)
