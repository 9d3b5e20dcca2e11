"""Two-piece activations σ(t) = a(t)_+ + b(t)_- (THEORY §1.6): the convex program, Φ, certify, torch, io."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import cvxnn
from cvxnn.activations import ABS, RELU, Activation, TwoPiece, activation_from, leaky_relu
from cvxnn.data import add_bias
from cvxnn.duality import spectral_dual_bound
from cvxnn.network import TwoLayerNet, convex_objective, load, network_from_convex
from cvxnn.patterns import enumerate_patterns, sample_patterns
from cvxnn.training import resolve_patterns

BETA = 0.05
ACTIVATIONS = {
    "relu": RELU,
    "leaky_0.1": leaky_relu(0.1),
    "leaky_0.5": leaky_relu(0.5),
    "abs": ABS,
    "two_piece": Activation(1.5, -0.3),
}


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(3)
    X = rng.standard_normal((8, 2))
    y = np.sin(2 * X[:, 0]) + 0.5 * X[:, 1] + 0.1 * rng.standard_normal(8)
    return X, y


@pytest.fixture(scope="module")
def fits(data):
    X, y = data
    return {k: cvxnn.fit(X, y, BETA, patterns="all", bias=True, activation=act) for k, act in ACTIVATIONS.items()}


def _independent_optimum(Xt: np.ndarray, y: np.ndarray, act: Activation, beta: float) -> float:
    """(CVX) with σ written from the definition: fit Σ_i (a D_i + b(I − D_i)) X (v_i − w_i), all patterns."""
    import cvxpy as cp

    masks = enumerate_patterns(Xt).masks
    n, d = Xt.shape
    fit, reg, cons = 0, 0, []
    for i in range(masks.shape[1]):
        D = np.diag(masks[:, i].astype(float))
        v, w = cp.Variable(d), cp.Variable(d)
        fit = fit + (act.a * D + act.b * (np.eye(n) - D)) @ Xt @ (v - w)
        reg = reg + cp.norm(v, 2) + cp.norm(w, 2)
        cons += [(2 * D - np.eye(n)) @ Xt @ v >= 0, (2 * D - np.eye(n)) @ Xt @ w >= 0]
    prob = cp.Problem(cp.Minimize(0.5 * cp.sum_squares(fit - y) + beta * reg), cons)
    prob.solve(solver=cp.CLARABEL)
    return float(prob.value)


@pytest.mark.parametrize("key", list(ACTIVATIONS))
def test_convex_optimum_matches_independent_model(data, fits, key):
    X, y = data
    assert fits[key].activation == ACTIVATIONS[key]
    ref = _independent_optimum(add_bias(X), y, ACTIVATIONS[key], BETA)
    assert fits[key].objective == pytest.approx(ref, rel=1e-6)
    assert fits[key].relative_gap < 1e-6


@pytest.mark.parametrize("key", list(ACTIVATIONS))
def test_phi_keeps_the_objective(data, fits, key):
    X, y = data
    f = fits[key]
    Xt = add_bias(X)
    net = network_from_convex(f.v, f.w, bias=True, activation=f.activation)
    cvx = convex_objective(Xt, y, f.patterns.masks, f.v, f.w, BETA, f.activation)
    assert net.objective(X, y, BETA) == pytest.approx(cvx, rel=1e-10)
    assert f.network.activation == f.activation
    assert f.network_objective == pytest.approx(f.objective, rel=1e-9)  # pruned network


@pytest.mark.parametrize("key", list(ACTIVATIONS))
def test_certify_proves_the_fit_globally_optimal(data, fits, key):
    X, y = data
    cert = cvxnn.certify(fits[key].network, X, y, BETA)
    assert cert.complete and cert.globally_optimal is True
    assert cert.lower_bound <= cert.objective


def _nc_objectives(act: Activation, X: np.ndarray, y: np.ndarray, beta: float, inits: int = 10, width: int = 12,
                   steps: int = 1500) -> np.ndarray:
    """Final NC objectives of Adam from ``inits`` random inits (batched), σ(t) = a·relu(t) + b·min(t, 0)."""
    torch.manual_seed(0)
    Xt = torch.as_tensor(add_bias(X))
    yt = torch.as_tensor(y)
    U = torch.nn.Parameter(torch.randn(inits, width, Xt.shape[1], dtype=torch.float64))
    alpha = torch.nn.Parameter(torch.randn(inits, width, dtype=torch.float64) / width**0.5)
    opt = torch.optim.Adam([U, alpha], lr=1e-2)

    def objective() -> torch.Tensor:
        Z = torch.einsum("nd,imd->inm", Xt, U)
        H = act.a * torch.relu(Z) + act.b * torch.clamp(Z, max=0.0)
        r = torch.einsum("inm,im->in", H, alpha) - yt
        return 0.5 * (r**2).sum(1) + 0.5 * beta * ((U**2).sum((1, 2)) + (alpha**2).sum(1))

    for _ in range(steps):
        opt.zero_grad()
        objective().sum().backward()
        opt.step()
    with torch.no_grad():
        return objective().numpy()


@pytest.mark.parametrize("key", list(ACTIVATIONS))
def test_gradient_descent_does_not_beat_the_certified_optimum(data, fits, key):
    X, y = data
    finals = _nc_objectives(ACTIVATIONS[key], X, y, BETA)
    assert np.all(finals >= fits[key].lower_bound * (1 - 1e-9))
    assert finals.min() <= 2 * fits[key].objective  # the runs did train


@pytest.mark.parametrize("key", list(ACTIVATIONS))
def test_torch_round_trip_and_save_load_keep_the_activation(data, fits, key, tmp_path):
    X, _ = data
    net = fits[key].network
    module = net.to_torch(dtype=torch.float64)
    Xtorch = torch.as_tensor(X)
    np.testing.assert_allclose(module(Xtorch).detach().numpy()[:, 0], net.predict(X), rtol=1e-12, atol=1e-12)
    back = TwoLayerNet.from_torch(module)
    assert back.activation == net.activation
    np.testing.assert_allclose(back.predict(X), net.predict(X), rtol=1e-12, atol=1e-12)
    loaded = load(net.save(tmp_path / "net.safetensors"))
    assert loaded.activation == net.activation
    np.testing.assert_array_equal(loaded.predict(X), net.predict(X))


@pytest.mark.parametrize("key", list(ACTIVATIONS))
def test_sigma_is_linear_on_each_cone(data, key):
    """σ(Xu) = (aD + b(I − D))Xu for u in K(D) (THEORY §8.2f): error exactly 0 at the cells' gates."""
    X, _ = data
    Xt = add_bias(X)
    act = ACTIVATIONS[key]
    pats = enumerate_patterns(Xt)
    lhs = act(Xt @ pats.gates)
    rhs = act.fit_weights(pats.masks) * (Xt @ pats.gates)
    assert np.max(np.abs(lhs - rhs)) == 0.0


def test_leaky_with_vanishing_slope_is_relu(data, fits):
    X, y = data
    zero = cvxnn.fit(X, y, BETA, patterns="all", bias=True, activation="leaky_relu", negative_slope=0.0)
    small = cvxnn.fit(X, y, BETA, patterns="all", bias=True, activation="leaky_relu", negative_slope=1e-5)
    assert zero.objective == pytest.approx(fits["relu"].objective, rel=1e-8)
    assert small.objective == pytest.approx(fits["relu"].objective, rel=1e-4)


def test_abs_keeps_one_pattern_of_each_complementary_pair(data, fits):
    X, _ = data
    Xt = add_bias(X)
    full = enumerate_patterns(Xt)
    half = resolve_patterns(Xt, "all", activation=ABS)
    assert 2 * len(half) == len(full) == len(fits["relu"].patterns)
    assert len(fits["abs"].patterns) == len(half) and half.complete
    keys = {m.tobytes() for m in half.masks.T}
    assert all((~m).tobytes() not in keys for m in half.masks.T)
    with pytest.raises(ValueError, match="complementary"):
        cvxnn.fit(X, np.zeros(len(X)), BETA, patterns=half, bias=True)


def test_sampling_keeps_the_zero_pattern_when_it_is_useful():
    X = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    gates = 400
    relu = resolve_patterns(X, gates, activation=RELU)
    leaky = resolve_patterns(X, gates, activation=leaky_relu(0.2))
    assert not (~relu.masks).all(axis=0).any()
    assert (~leaky.masks).all(axis=0).any()
    assert len(leaky) == len(sample_patterns(X, gates, drop_zero=False))


@pytest.mark.parametrize("key", list(ACTIVATIONS))
def test_spectral_bound_dominates_sampled_values(data, key):
    X, _ = data
    Xt = add_bias(X)
    act = ACTIVATIONS[key]
    rng = np.random.default_rng(1)
    for _ in range(20):
        lam = rng.standard_normal(len(Xt))
        U = rng.standard_normal((2000, Xt.shape[1]))
        U /= np.linalg.norm(U, axis=1, keepdims=True)
        values = np.abs(act(Xt @ U.T).T @ lam)
        assert values.max() <= spectral_dual_bound(Xt, lam, act) * (1 + 1e-12)


@pytest.mark.parametrize("key", ["leaky_0.5", "abs"])
def test_certify_without_enumeration(data, fits, key):
    """Sampled patterns + the σ spectral bound: a valid lower bound, and no false 'suboptimal' verdict."""
    X, y = data
    cert = cvxnn.certify(fits[key].network, X, y, BETA, max_patterns=0, n_samples=200, n_search_starts=5)
    assert not cert.complete and cert.globally_optimal is not False
    assert cert.lower_bound <= fits[key].objective


def test_certify_detects_a_suboptimal_network_and_takes_an_activation(data, fits):
    X, y = data
    net = fits["abs"].network
    worse = TwoLayerNet(net.W1[:1], net.w2[:1], bias=True, activation="abs")
    cert = cvxnn.certify(worse, X, y, BETA)
    assert cert.globally_optimal is False
    relu_view = cvxnn.certify(net, X, y, BETA, activation="relu")
    assert relu_view.objective == pytest.approx(TwoLayerNet(net.W1, net.w2, True).objective(X, y, BETA))


def test_parser_and_solver_capabilities(data):
    X, y = data
    assert activation_from("leaky_relu", negative_slope=0.2) == Activation(1.0, 0.2, "leaky_relu")
    assert activation_from((1.0, -1.0)).even and ABS.even and not RELU.even
    assert activation_from(ABS.to_dict()) == ABS
    for bad in ({"spec": "tanh"}, {"spec": "leaky_relu", "negative_slope": 1.0}, {"spec": (0.0, 0.0)}):
        with pytest.raises(ValueError):
            activation_from(**bad)
    with pytest.raises(ValueError, match="slopes"):
        Activation(1.0, 0.5, "abs")
    with pytest.raises(ValueError, match="fista.*'relu' program"):
        cvxnn.fit(X, y, BETA, formulation="relu", solver="fista", activation="abs")
    assert isinstance(Activation(2.0, 0.5).module(), TwoPiece)
    assert isinstance(leaky_relu(0.3).module(), torch.nn.LeakyReLU)


def test_gated_program_with_an_activation_decomposes_to_a_network(data):
    X, y = data
    g = cvxnn.fit(X, y, BETA, patterns="all", bias=True, formulation="gated", activation=leaky_relu(0.3))
    assert g.network.activation == leaky_relu(0.3)
    assert g.network_objective >= g.objective * (1 - 1e-8)
    relu_cvx = cvxnn.fit(X, y, BETA, patterns="all", bias=True, activation=leaky_relu(0.3))
    assert g.objective <= relu_cvx.objective * (1 + 1e-8)  # g* ≤ q*


def test_stationarity_certificate_refuses_other_activations(data, fits):
    X, y = data
    with pytest.raises(ValueError, match="ReLU networks only"):
        cvxnn.stationarity_certificate(fits["abs"].network, X, y, BETA)


@pytest.mark.parametrize("act", [RELU, Activation(2.0, 0.0), leaky_relu(0.1), ABS, Activation(1.5, -0.3)],
                         ids=["relu", "scaled_relu", "leaky", "abs", "two_piece"])
def test_torch_activation_matches_numpy_with_slopes_a_b_and_zero_at_zero(act):
    """σ in torch (one relu for b = 0, the two-relu form otherwise) equals the NumPy σ, and its derivative is a
    for t > 0, b for t < 0 and 0 at t = 0 (torch.relu's convention)."""
    t = torch.tensor([-2.0, -0.5, 0.0, 0.5, 3.0], dtype=torch.float64, requires_grad=True)
    out = act.torch(t)
    np.testing.assert_allclose(out.detach().numpy(), act(t.detach().numpy()), rtol=0, atol=1e-15)
    out.sum().backward()
    np.testing.assert_allclose(t.grad.numpy(), [act.b, act.b, 0.0, act.a, act.a], rtol=0, atol=1e-15)
