import numpy as np
import pytest
import torch

import cvxnn
from cvxnn.network import (TwoLayerNet, convex_from_network, convex_objective, convex_prediction,
                           network_from_convex, prune)


def _random_net(rng, m=6, d=3, bias=False):
    return TwoLayerNet(rng.standard_normal((m, d + bias)), rng.standard_normal(m), bias=bias)


def test_objective_is_the_canonical_sum_without_one_over_n():
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((10, 3)), rng.standard_normal(10)
    net = _random_net(rng)
    f = np.maximum(X @ net.W1.T, 0) @ net.w2
    expected = 0.5 * np.sum((f - y) ** 2) + 0.05 / 2 * (np.sum(net.W1**2) + np.sum(net.w2**2))
    assert net.objective(X, y, 0.05) == pytest.approx(expected, rel=1e-14)


def test_bias_appends_a_ones_column():
    rng = np.random.default_rng(1)
    X = rng.standard_normal((5, 2))
    net = _random_net(rng, d=2, bias=True)
    manual = np.maximum(X @ net.W1[:, :2].T + net.W1[:, 2], 0) @ net.w2
    assert np.allclose(net.predict(X), manual)


def test_phi_preserves_the_convex_objective(theory_problem):
    X, y, beta = theory_problem
    res = cvxnn.fit(X, y, beta, patterns="all", bias=True, prune_network=False)
    Xt = np.c_[X, np.ones(len(X))]
    cvx = convex_objective(Xt, y, res.patterns.masks, res.v, res.w, beta)
    net = network_from_convex(res.v, res.w, bias=True)
    assert net.objective(X, y, beta) == pytest.approx(cvx, rel=1e-9)


def test_psi_never_increases_the_objective_and_is_tight_for_balanced_nets():
    rng = np.random.default_rng(2)
    X, y = rng.standard_normal((12, 3)), rng.standard_normal(12)
    for _ in range(10):
        net = _random_net(rng, m=8)
        pats, v, w = convex_from_network(net, X)
        cvx = convex_objective(X, y, pats.masks, v, w, 0.1)
        assert cvx <= net.objective(X, y, 0.1) + 1e-12
        # feasibility: every block lies in its pattern cone
        S = np.where(pats.masks, 1.0, -1.0)
        assert np.all(S * (X @ v.T) >= -1e-12) and np.all(S * (X @ w.T) >= -1e-12)
        # same function
        assert np.allclose(convex_prediction(X, pats.masks, v, w), net.predict(X))
        bal = net.balanced()
        assert np.allclose(bal.predict(X), net.predict(X))
        assert bal.objective(X, y, 0.1) <= net.objective(X, y, 0.1) + 1e-12
        # balanced, distinct patterns and signs: Ψ is exact
        pats_b, vb, wb = convex_from_network(bal, X)
        if len(pats_b) == bal.width:
            assert convex_objective(X, y, pats_b.masks, vb, wb, 0.1) == pytest.approx(bal.objective(X, y, 0.1))


def test_prune_keeps_objective_and_uses_at_most_n_plus_one_blocks():
    rng = np.random.default_rng(4)
    X, y = rng.standard_normal((6, 2)), rng.standard_normal(6)
    P = cvxnn.enumerate_patterns(X)
    res = cvxnn.fit(X, y, 0.01, patterns=P, prune_network=False)
    before = convex_objective(X, y, P.masks, res.v, res.w, 0.01)
    # spread the solution: duplicate each block into two halves on a bigger list (same patterns twice)
    masks = np.hstack([P.masks, P.masks])
    v = np.vstack([res.v / 2, res.v / 2])
    w = np.vstack([res.w / 2, res.w / 2])
    assert np.count_nonzero(np.linalg.norm(np.vstack([v, w]), axis=1)) > 7
    pv, pw = prune(X, masks, v, w)
    nnz = np.count_nonzero(np.linalg.norm(np.vstack([pv, pw]), axis=1))
    assert nnz <= X.shape[0] + 1
    assert convex_objective(X, y, masks, pv, pw, 0.01) == pytest.approx(before, rel=1e-10)


def test_prune_of_many_blocks_in_general_position_keeps_fit_and_penalty():
    """60 cone-feasible blocks (each direction's own pattern) on 10 samples: one null-space basis, updated block by
    block, must leave at most n + 1 blocks with the same prediction and the same penalty."""
    from cvxnn.network import convex_prediction

    rng = np.random.default_rng(11)
    X = rng.standard_normal((10, 3))
    Z = rng.standard_normal((60, 3)) * rng.random((60, 1))
    masks = X @ Z.T >= 0
    v, w = Z[:30], Z[30:]
    masks = np.hstack([masks[:, :30], masks[:, 30:]])
    v_all, w_all = np.vstack([v, np.zeros_like(w)]), np.vstack([np.zeros_like(v), w])
    pv, pw = prune(X, masks, v_all, w_all)
    assert np.count_nonzero(np.linalg.norm(np.vstack([pv, pw]), axis=1)) <= X.shape[0] + 1
    np.testing.assert_allclose(convex_prediction(X, masks, pv, pw), convex_prediction(X, masks, v_all, w_all),
                               rtol=1e-10, atol=1e-10)
    penalty = np.linalg.norm(np.vstack([pv, pw]), axis=1).sum()
    assert penalty == pytest.approx(np.linalg.norm(Z, axis=1).sum(), rel=1e-10)


def test_torch_round_trip_and_state_dict():
    rng = np.random.default_rng(5)
    X = rng.standard_normal((7, 3))
    for bias in (False, True):
        net = _random_net(rng, m=4, d=3, bias=bias)
        module = net.to_torch(dtype=torch.float64)
        out = module(torch.as_tensor(X)).detach().numpy()[:, 0]
        assert np.allclose(out, net.predict(X))
        back = TwoLayerNet.from_torch(module)
        assert back.bias == bias and np.allclose(back.W1, net.W1) and np.allclose(back.w2, net.w2)
        assert np.allclose(TwoLayerNet.from_torch(module.state_dict()).predict(X), net.predict(X))
    bad = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU(), torch.nn.Linear(4, 1))
    with pytest.raises(ValueError, match="second layer must have no bias"):
        TwoLayerNet.from_torch(bad)


def test_predict_returns_torch_for_torch_input():
    net = _random_net(np.random.default_rng(6))
    X = torch.randn(5, 3, dtype=torch.float64)
    out = net.predict(X)
    assert isinstance(out, torch.Tensor) and out.shape == (5,)


def test_save_and_load_are_safe_and_exact(tmp_path):
    net = _random_net(np.random.default_rng(7), bias=True)
    path = net.save(tmp_path / "model.safetensors")
    back = cvxnn.load(path)
    assert back.bias and np.array_equal(back.W1, net.W1) and np.array_equal(back.w2, net.w2)
    assert list(tmp_path.iterdir()) == [path]
    # a PyTorch state dict saved with torch.save loads too
    torch.save(net.to_torch(torch.float64).state_dict(), tmp_path / "sd.pt")
    assert np.allclose(cvxnn.load(tmp_path / "sd.pt").W1, net.W1)
    (tmp_path / "junk.bin").write_bytes(b"not a model at all")
    with pytest.raises(ValueError, match="cannot read model"):
        cvxnn.load(tmp_path / "junk.bin")
    with pytest.raises(FileNotFoundError):
        cvxnn.load(tmp_path / "missing.safetensors")


def test_save_leaves_nothing_behind_on_failure(tmp_path):
    net = _random_net(np.random.default_rng(8))
    with pytest.raises(Exception):
        net.save(tmp_path / "no_such_dir" / "m.safetensors")
    assert list(tmp_path.iterdir()) == []


def test_psi_for_vector_outputs_matches_the_network_and_bounds_its_objective():
    rng = np.random.default_rng(5)
    X, Y = rng.standard_normal((14, 3)), rng.standard_normal((14, 4))
    for trial in range(6):
        W1, A = rng.standard_normal((7, 3)), rng.standard_normal((7, 4))
        if trial % 2:  # sign-consistent output rows
            A = np.abs(A) * np.sign(rng.standard_normal(7))[:, None]
        net = TwoLayerNet(W1, A)
        pats, v, w = convex_from_network(net, X)
        assert v.shape == w.shape == (len(pats), 3, 4)
        assert np.allclose(convex_prediction(X, pats.masks, v, w), net.predict(X))
        S = np.where(pats.masks, 1.0, -1.0)
        for k in range(4):  # every column in its pattern cone
            assert np.all(S * (X @ v[:, :, k].T) >= -1e-12) and np.all(S * (X @ w[:, :, k].T) >= -1e-12)
        l1 = net.objective(X, Y, 0.3, output_norm="l1")
        for vp in ("per_output", "group"):
            assert convex_objective(X, Y, pats.masks, v, w, 0.3, vector_penalty=vp) <= l1 + 1e-12
        group = convex_objective(X, Y, pats.masks, v, w, 0.3, vector_penalty="group")
        if trial % 2:
            assert group <= net.objective(X, Y, 0.3) + 1e-12
    # one neuron per output row with a single nonzero entry: Ψ is exact for per_output
    net = TwoLayerNet(rng.standard_normal((4, 3)), np.eye(4) * np.array([1.5, -0.5, 2.0, -1.0])[:, None])
    pats, v, w = convex_from_network(net.balanced(), X)
    if len(pats) == 4:
        assert convex_objective(X, Y, pats.masks, v, w, 0.3) == pytest.approx(net.balanced().objective(X, Y, 0.3))


def test_prune_per_output_blocks_column_by_column():
    rng = np.random.default_rng(6)
    X, Y = rng.standard_normal((5, 2)), rng.standard_normal((5, 2))
    P = cvxnn.enumerate_patterns(X)
    res = cvxnn.fit(X, Y, 0.01, patterns=P, prune_network=False)
    masks = np.hstack([P.masks, P.masks])
    v, w = np.concatenate([res.v / 2, res.v / 2]), np.concatenate([res.w / 2, res.w / 2])
    before = convex_objective(X, Y, masks, v, w, 0.01)
    assert min(np.sum(np.linalg.norm(np.concatenate([v, w])[:, :, k], axis=1) > 0) for k in range(2)) > len(X) + 1
    pv, pw = prune(X, masks, v, w)
    assert convex_objective(X, Y, masks, pv, pw, 0.01) == pytest.approx(before, rel=1e-9)
    assert np.allclose(convex_prediction(X, masks, pv, pw), convex_prediction(X, masks, v, w))
    for k in range(2):
        nonzero = np.sum(np.linalg.norm(pv[:, :, k], axis=1) > 0) + np.sum(np.linalg.norm(pw[:, :, k], axis=1) > 0)
        assert nonzero <= len(X) + 1
    fitted = cvxnn.fit(X, Y, 0.01, patterns=P)
    assert fitted.network.width <= 2 * (len(X) + 1)
    assert fitted.network_objective == pytest.approx(fitted.objective, rel=1e-7)
