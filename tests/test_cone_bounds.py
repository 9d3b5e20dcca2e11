"""Cone values by DAQP (duality.cone_sigma) and the banded Gram matrices of the ReLU ipm (solvers.gram)."""

import numpy as np
import pytest
import torch
from scipy.optimize import nnls

from cvxnn import cones
from cvxnn.duality import cone_sigma
from cvxnn.patterns import sample_patterns
from cvxnn.solvers.gram import add_lower_gram_, mirror_lower_


@pytest.mark.parametrize("seed", [0, 1])
def test_cone_sigma_by_qp_matches_nnls_and_certifies_itself(seed, monkeypatch):
    """σ = ‖Π_K(c)‖ from DAQP's multipliers equals the NNLS value min_{μ≥0}‖c + Aᵀμ‖ (to round-off), with the
    maximizer inside K; and the result does not depend on which of the two computed it."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((120, 7))
    masks = sample_patterns(X, 30, seed=seed).masks
    via_nnls = []
    for j in range(masks.shape[1]):
        A = np.where(masks[:, j], 1.0, -1.0)[:, None] * X
        for c in (X.T @ (masks[:, j] * rng.standard_normal(120)), -A.T @ rng.random(120)):  # the 2nd: σ = 0
            value, u = cone_sigma(X, masks[:, j], c)
            mu = nnls(A.T, -c, maxiter=5000)[0]
            exact = np.linalg.norm(c + A.T @ mu)
            assert value == pytest.approx(exact, abs=1e-10 * np.linalg.norm(c))
            if value > 1e-9 * np.linalg.norm(c):
                assert (A @ u).min() >= -1e-9 and c @ u == pytest.approx(value, rel=1e-9)
            via_nnls.append((j, c, value))
    monkeypatch.setattr(cones.daqp, "solve", lambda H, f, *a, **k: (np.zeros(H.shape[0]), 0.0, -4, {}))
    for j, c, value in via_nnls:  # DAQP reporting no optimum: NNLS gives the same values
        assert cone_sigma(X, masks[:, j], c)[0] == pytest.approx(value, abs=1e-10 * np.linalg.norm(c))


def test_a_warm_started_cone_sigma_gives_the_cold_value_whatever_rows_start_it(monkeypatch):
    """The working set ``active`` only starts DAQP: the rows binding at the cold maximizer (the right set), at a
    neighbouring cone's maximizer (as in the pattern search), random rows, more rows than dimensions, and none
    all give the cold value and maximizer; the right set needs fewer DAQP iterations."""
    rng = np.random.default_rng(3)
    X = rng.standard_normal((200, 8))
    pats = sample_patterns(X, 12, seed=3)
    masks = pats.masks
    iterations = []
    solve = cones.daqp.solve

    def counted(*args, **kwargs):
        out = solve(*args, **kwargs)
        iterations.append(out[3]["iterations"])
        return out

    monkeypatch.setattr(cones.daqp, "solve", counted)
    positive = 0
    for j in range(masks.shape[1]):
        c = pats.gates[:, j] / np.linalg.norm(pats.gates[:, j]) + rng.standard_normal(8)  # σ > 0 for most
        iterations.clear()
        value, u = cone_sigma(X, masks[:, j], c)
        cold = iterations[-1]
        positive += value > 1e-9 * np.linalg.norm(c)
        binding = np.flatnonzero(np.abs(X @ u) <= 1e-9 * np.linalg.norm(X, axis=1))
        flipped = masks[:, j].copy()
        flipped[binding[:1]] = ~flipped[binding[:1]]  # the cone across one face of the maximizer
        _, v = cone_sigma(X, flipped, X.T @ (flipped * rng.standard_normal(200)))
        near = np.flatnonzero(np.abs(X @ v) <= 1e-9 * np.linalg.norm(X, axis=1))
        for active in (binding, near, rng.choice(200, 5, replace=False), np.arange(20), np.arange(0)):
            iterations.clear()
            warm, w = cone_sigma(X, masks[:, j], c, active=active)
            assert warm == pytest.approx(value, abs=1e-10 * np.linalg.norm(c))
            if value > 1e-9 * np.linalg.norm(c):  # (at σ = 0 the maximizer is round-off)
                assert np.allclose(w, u, atol=1e-7)
            if active is binding and binding.size:
                assert iterations[0] < cold
    assert positive >= 8


@pytest.mark.parametrize("n,k", [(5, 3), (130, 40), (300, 700), (513, 90)])
def test_banded_gram_is_the_full_product(n, k):
    F = torch.randn(n, k, dtype=torch.float64, generator=torch.Generator().manual_seed(n))
    M = torch.zeros(n, n, dtype=torch.float64)
    add_lower_gram_(M, F[:, : k // 2])
    add_lower_gram_(M, F[:, k // 2:])  # accumulates, as over chunks of patterns
    mirror_lower_(M)
    torch.testing.assert_close(M, F @ F.T, rtol=1e-12, atol=1e-10)
    assert torch.equal(M, M.T)


def test_cholesky_reads_only_the_lower_triangle_of_the_banded_gram():
    """The ReLU ipm factors K = I + M with M's strict upper triangle left holding the bands' partial sums."""
    F = torch.randn(300, 700, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    M = torch.zeros(300, 300, dtype=torch.float64)
    add_lower_gram_(M, F)
    assert not torch.allclose(M, M.T)  # the upper triangle is incomplete
    M.diagonal().add_(1.0)
    L, info = torch.linalg.cholesky_ex(M)
    assert int(info) == 0
    torch.testing.assert_close(L, torch.linalg.cholesky(F @ F.T + torch.eye(300, dtype=torch.float64)),
                               rtol=1e-10, atol=1e-12)
