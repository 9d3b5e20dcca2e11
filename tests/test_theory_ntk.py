"""Du et al. NTK experiment: Gram matrices, the first-layer GD simulator and the report section."""

import json

import numpy as np
import pytest
import torch

from cvxnn.theory import ntk


@pytest.fixture
def sphere6():
    X, y = ntk.unit_sphere_data(6, 5, seed=0)
    return X, y


def test_unit_sphere_data_rows_are_unit_and_seeded():
    X, y = ntk.unit_sphere_data(20, 10, seed=0)
    assert X.shape == (20, 10) and y.shape == (20,)
    np.testing.assert_allclose(np.linalg.norm(X, axis=1), 1.0, atol=1e-14)
    X2, y2 = ntk.unit_sphere_data(20, 10, seed=0)
    np.testing.assert_array_equal(X, X2)
    np.testing.assert_array_equal(y, y2)


def test_closed_form_matches_monte_carlo(sphere6):
    """THEORY §8.2d: n = 6, d = 5, 4·10⁵ draws, λ0 = 0.258."""
    X, _ = sphere6
    H = ntk.ntk_gram_infinite(X)
    H_mc = ntk.monte_carlo_gram(X, 400_000, seed=1)
    assert np.abs(H - H_mc).max() < 5e-3
    assert ntk.least_eigenvalue(H) == pytest.approx(0.258, abs=5e-4)


def test_closed_form_diagonal_and_scaling():
    X = np.random.default_rng(2).standard_normal((5, 3))
    H = ntk.ntk_gram_infinite(X)
    np.testing.assert_allclose(np.diag(H), 0.5 * np.sum(X**2, axis=1), rtol=1e-12)
    # parallel and antiparallel pairs: cos = ±1 gives x_iᵀx_j/2 and 0
    P = np.array([[1.0, 0.0], [2.0, 0.0], [-1.0, 0.0]])
    np.testing.assert_allclose(ntk.ntk_gram_infinite(P)[0], [0.5, 1.0, 0.0], atol=1e-12)


def test_gram_symmetric_psd_and_positive_for_nonparallel_inputs(sphere6):
    X, _ = sphere6
    H = ntk.ntk_gram_infinite(X)
    np.testing.assert_allclose(H, H.T, atol=1e-15)
    assert ntk.least_eigenvalue(H) > 0
    W = np.random.default_rng(3).standard_normal((500, 5))
    H0 = ntk.ntk_gram_empirical(W, X)
    np.testing.assert_allclose(H0, H0.T, atol=1e-15)
    assert ntk.least_eigenvalue(H0) > -1e-12


def test_parallel_inputs_make_lambda0_zero():
    X = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [2.0, 0.0, 0.0]])
    X = X / np.linalg.norm(X, axis=1, keepdims=True)
    assert abs(ntk.least_eigenvalue(ntk.ntk_gram_infinite(X))) < 1e-12


def test_empirical_gram_converges_to_closed_form(sphere6):
    X, _ = sphere6
    H = ntk.ntk_gram_infinite(X)
    rng = np.random.default_rng(4)
    errors = [np.linalg.norm(ntk.ntk_gram_empirical(rng.standard_normal((m, 5)), X) - H, 2)
              for m in (100, 10_000, 1_000_000)]
    assert errors[0] > errors[1] > errors[2]
    assert errors[2] < 3e-3


def test_simulator_matches_autograd_step():
    X, y = ntk.unit_sphere_data(8, 4, seed=5)
    W0, a = ntk.init_first_layer(30, 4, seed=6)
    eta = 0.3
    trace = ntk.simulate_gd(X, y, W0, a, eta, 2, ntk.ntk_gram_infinite(X))

    Xt, yt, at = (torch.tensor(v) for v in (X, y, a))
    W = torch.tensor(W0, requires_grad=True)

    def f(W):
        return torch.relu(Xt @ W.T) @ at / np.sqrt(W.shape[0])

    loss = 0.5 * ((f(W) - yt) ** 2).sum()
    (grad,) = torch.autograd.grad(loss, W)
    W1 = W.detach() - eta * grad
    assert trace.loss[0] == pytest.approx(2 * loss.item(), rel=1e-12)
    assert trace.loss[1] == pytest.approx(float(((f(W1) - yt) ** 2).sum()), rel=1e-12)
    assert trace.max_distance[1] == pytest.approx(float((W1 - W.detach()).norm(dim=1).max()), rel=1e-12)
    changed = ((Xt @ W1.T >= 0) != (Xt @ W.detach().T >= 0)).double().mean()
    assert trace.pattern_change[1] == pytest.approx(float(changed))
    assert trace.pattern_change[0] == 0.0 and trace.max_distance[0] == 0.0


def test_kernel_limit_and_bound_shapes():
    X, y = ntk.unit_sphere_data(10, 6, seed=7)
    H = ntk.ntk_gram_infinite(X)
    W0, a = ntk.init_first_layer(200, 6, seed=8)
    trace = ntk.simulate_gd(X, y, W0, a, 0.1, 20, H)
    assert trace.loss.shape == trace.bound.shape == trace.kernel_loss.shape == (21,)
    assert trace.kernel_loss[0] == pytest.approx(trace.loss[0])
    assert trace.bound[0] == pytest.approx(trace.loss[0])
    np.testing.assert_allclose(trace.bound[1:] / trace.bound[:-1], 1 - 0.1 * trace.lam0 / 2)
    assert np.all(np.diff(trace.kernel_loss) <= 0)
    trace.loss[2] = 1.5 * trace.bound[2]
    np.testing.assert_array_equal(trace.bound_violations(), [2])


def test_loglog_slope():
    m = np.array([10.0, 100.0, 1000.0])
    assert ntk.loglog_slope(m, 3.0 * m**-0.5) == pytest.approx(-0.5)


def test_reproduce_quick_section(tmp_path):
    section = ntk.reproduce(tmp_path, quick=True)
    assert {"name", "title", "setting", "claims", "figures", "data", "markdown"} <= set(section)
    json.dumps(section)
    assert section["name"] == "ntk"
    for claim in section["claims"]:
        assert set(claim) == {"claim", "measured", "claim_holds"}
        assert isinstance(claim["claim_holds"], bool)
    for name in section["figures"]:
        assert (tmp_path / name).is_file() and name.endswith(".png")
    # THEORY §8.2c regression values (default_rng(0)): λ0, pattern-change fraction, max distance
    data = section["data"]
    assert data["lambda0"] == pytest.approx(0.1220, abs=5e-5)
    change = [data["pattern_change"][m][-1] for m in ("100", "1000", "10000")]
    distance = [data["max_distance"][m][-1] for m in ("100", "1000", "10000")]
    np.testing.assert_allclose(change, [0.114, 0.035, 0.009], atol=1e-3)
    np.testing.assert_allclose(distance, [1.59, 0.51, 0.15], atol=5e-3)
    assert all(c["claim_holds"] for c in section["claims"])
