"""Every activation x loss against an independent cvxpy model (enumerated patterns), vector outputs,
solver capabilities and label errors."""

import cvxpy as cp
import numpy as np
import pytest
import torch

import cvxnn
from cvxnn.activations import activation_from
from cvxnn.data import add_bias
from cvxnn.losses import loss_from
from cvxnn.network import TwoLayerNet
from cvxnn.training import fit_per_output

BETA = 0.2
N = 8


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(3)
    X = rng.standard_normal((N, 2))
    return {"X": X,
            "squared": np.sin(2 * X[:, 0]) + 0.1 * rng.standard_normal(N),
            "logistic": np.where(X[:, 0] * X[:, 1] > 0, 1.0, -1.0),
            "hinge": np.where(X[:, 0] * X[:, 1] > 0, 1.0, -1.0),
            "cross_entropy": np.array([0, 1, 2, 0, 1, 2, 0, 1]),
            "multi": np.column_stack([np.sin(X[:, 0]), np.cos(X[:, 1])])}


def _independent_optimum(Xt, masks, y, loss_name, act, beta):
    """The convex program written out per pattern (no cvxnn code): optimum value."""
    c = 3 if loss_name == "cross_entropy" else 1
    fw = act.fit_weights(masks)
    terms, constraints, reg = [0] * c, [], 0
    for i in range(masks.shape[1]):
        S = np.diag(np.where(masks[:, i], 1.0, -1.0))
        Wi = np.diag(fw[:, i])
        for k in range(c):
            v, w = cp.Variable(Xt.shape[1]), cp.Variable(Xt.shape[1])
            constraints += [S @ Xt @ v >= 0, S @ Xt @ w >= 0]
            terms[k] = terms[k] + Wi @ Xt @ (v - w)
            reg = reg + cp.norm(v) + cp.norm(w)
    if loss_name == "squared":
        data_term = 0.5 * cp.sum_squares(terms[0] - y)
    elif loss_name == "logistic":
        data_term = cp.sum(cp.logistic(-cp.multiply(y, terms[0])))
    elif loss_name == "hinge":
        data_term = cp.sum(cp.pos(1 - cp.multiply(y, terms[0])))
    else:
        Z = cp.vstack(terms).T
        Y = np.eye(c)[y]
        data_term = cp.sum(cp.log_sum_exp(Z, axis=1)) - cp.sum(cp.multiply(Y, Z))
    prob = cp.Problem(cp.Minimize(data_term + beta * reg), constraints)
    prob.solve(solver=cp.CLARABEL)
    return prob.value


@pytest.mark.parametrize("activation", ["relu", "leaky_relu", "abs"])
@pytest.mark.parametrize("loss", ["squared", "logistic", "hinge", "cross_entropy"])
def test_activation_and_loss_against_an_independent_model(data, activation, loss):
    X, y = data["X"], data[loss]
    f = cvxnn.fit(X, y, BETA, patterns="all", bias=True, loss=loss, activation=activation, negative_slope=0.1)
    assert f.patterns.complete and f.certified_global
    act = activation_from(activation, 0.1)
    optimum = _independent_optimum(add_bias(X), f.patterns.masks, y, loss, act, BETA)
    assert f.objective == pytest.approx(optimum, rel=1e-5)
    # Φ: the network's NC objective equals the program objective (one output column per neuron for CE)
    assert f.network_objective == pytest.approx(f.objective, rel=1e-7)
    assert f.network.objective(X, y, BETA, loss=loss) == pytest.approx(f.network_objective, rel=1e-12)
    assert f.lower_bound <= optimum * (1 + 1e-6) and optimum <= f.objective * (1 + 1e-6)
    assert f.relative_gap < 1e-5
    cert = cvxnn.certify(f.network, X, y, BETA, loss=loss, output_norm="l1")
    assert cert.complete and cert.lower_bound <= f.objective * (1 + 1e-9)
    if loss == "hinge" and activation == "abs":
        # every point on the margin: λ is chosen by least squares on the neurons' stationarity
        # conditions, which here leaves a dual point that is valid but not tight (fit's own
        # certificate, from the solver's dual, is: see relative_gap above)
        assert cert.globally_optimal in (True, None)
    else:
        assert cert.globally_optimal is True


@pytest.mark.parametrize("loss", ["squared", "logistic", "hinge", "cross_entropy"])
def test_no_adam_run_beats_the_certified_optimum(data, loss):
    X, y = data["X"], data[loss]
    f = cvxnn.fit(X, y, BETA, patterns="all", bias=True, loss=loss)
    L = loss_from(loss)
    Y = torch.as_tensor(L.targets(y, N))
    Xt = torch.as_tensor(add_bias(X))
    c = 1 if Y.ndim == 1 else Y.shape[1]
    for seed in range(3):
        g = torch.Generator().manual_seed(seed)
        W1 = torch.randn(12, 3, generator=g, dtype=torch.float64).requires_grad_()
        W2 = (0.5 * torch.randn(12, c, generator=g, dtype=torch.float64)).requires_grad_()
        opt = torch.optim.Adam([W1, W2], lr=0.02)
        for _ in range(1500):
            opt.zero_grad()
            pred = torch.relu(Xt @ W1.T) @ W2
            nc = L.torch(pred[:, 0] if c == 1 else pred, Y) + 0.5 * BETA * (W1.pow(2).sum() + W2.pow(2).sum())
            nc.backward()
            opt.step()
        net = TwoLayerNet(W1.detach().numpy(), W2.detach().numpy()[:, 0] if c == 1 else W2.detach().numpy(),
                          bias=True)
        obj = net.objective(X, y, BETA, loss=loss, output_norm="l1")  # = l2 for c = 1; ≥ l2 for c > 1
        assert obj >= f.lower_bound * (1 - 1e-9)
        # l2 weight decay for CE: certify's l2 bound holds for every network
        cert = cvxnn.certify(net, X, y, BETA, loss=loss)
        assert net.objective(X, y, BETA, loss=loss) >= cert.lower_bound * (1 - 1e-9)


def test_multi_output_squared_per_output_is_c_independent_programs(data):
    X, Y = data["X"], data["multi"]
    joint = cvxnn.fit(X, Y, BETA, patterns="all", bias=True)
    net, fits = fit_per_output(X, Y, BETA, patterns="all", bias=True)
    assert joint.objective == pytest.approx(sum(f.objective for f in fits), rel=1e-6)
    assert net.objective(X, Y, BETA) == pytest.approx(joint.objective, rel=1e-6)
    assert net.n_outputs == 2 and net.width == sum(f.network.width for f in fits)
    assert np.all(np.count_nonzero(net.w2, axis=1) == 1)  # block-sparse output weights
    assert joint.network.predict(X).shape == (N, 2)
    assert cvxnn.certify(joint.network, X, Y, BETA, output_norm="l1").globally_optimal is True


def test_group_program_relaxes_sign_consistent_networks(data):
    X, Y = data["X"], data["multi"]
    group = cvxnn.fit(X, Y, BETA, patterns="all", bias=True, vector_penalty="group")
    per_output = cvxnn.fit(X, Y, BETA, patterns="all", bias=True)
    # ‖V‖_F ≤ Σ_k ‖V[:, k]‖: the group optimum is at most the per-output one
    assert group.objective <= per_output.objective * (1 + 1e-7)
    assert group.lower_bound <= group.objective * (1 + 1e-9)
    assert group.relative_gap < 1e-5
    # Φ is exact on rank-one blocks and splits the others into columns: never below the program
    assert group.network_objective >= group.objective * (1 - 1e-7)
    # any sign-consistent network is at least the certified bound
    rng = np.random.default_rng(0)
    for _ in range(5):
        net = TwoLayerNet(rng.standard_normal((6, 3)),
                          np.abs(rng.standard_normal((6, 2))) * rng.choice([-1, 1], (6, 1)), bias=True)
        assert net.objective(X, Y, BETA) >= group.lower_bound


def test_vector_network_torch_round_trip_and_save(tmp_path, data):
    f = cvxnn.fit(data["X"], data["cross_entropy"], BETA, patterns="all", bias=True, loss="cross_entropy")
    net = f.network
    module = net.to_torch(torch.float64)
    assert module[2].out_features == 3
    out = module(torch.as_tensor(data["X"])).detach().numpy()
    np.testing.assert_allclose(out, net.predict(data["X"]), atol=1e-12)
    back = TwoLayerNet.from_torch(module)
    np.testing.assert_allclose(back.w2, net.w2)
    path = net.save(tmp_path / "m.safetensors")
    np.testing.assert_allclose(cvxnn.load(path).w2, net.w2)


def test_solver_capabilities_are_declared(data):
    X = data["X"]
    with pytest.raises(ValueError, match="'fista' does not support the 'relu' program"):
        cvxnn.fit(X, data["logistic"], BETA, loss="logistic", solver="fista")
    with pytest.raises(ValueError, match="'al' does not support the 'hinge' loss"):
        cvxnn.fit(X, data["logistic"], BETA, loss="hinge", solver="al")
    with pytest.raises(ValueError, match="'al' does not support vector outputs"):
        cvxnn.training._choose_solver("al", "relu", 100, loss=loss_from("squared"), vector=True)


def test_bad_labels_give_clear_errors(data):
    X = data["X"]
    with pytest.raises(ValueError, match=r"logistic loss needs labels in \{-1, \+1\}"):
        cvxnn.fit(X, (data["logistic"] > 0).astype(int), BETA, loss="logistic")
    with pytest.raises(ValueError, match="integer class labels"):
        cvxnn.fit(X, data["squared"], BETA, loss="cross_entropy")
    with pytest.raises(ValueError, match="loss must be one of"):
        cvxnn.fit(X, data["squared"], BETA, loss="l1")
