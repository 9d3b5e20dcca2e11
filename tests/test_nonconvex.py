"""Tests of the PyTorch trainer (cvxnn.nonconvex) against the certified convex optimum.

The central property: NC(θ) ≥ q*(P(X)) for every network θ of any width (THEORY §1.2), so no
gradient run may end below the certified lower bound of an enumerated-pattern fit.
"""

from __future__ import annotations

import math

import cvxpy as cp
import numpy as np
import pytest
import torch

import cvxnn
from cvxnn.losses import loss_from
from cvxnn.nonconvex import NonconvexRun, TrainHistory, best_of, nc_objective, train_nonconvex

# THEORY §8.2a: default_rng(1), 8 sorted U(-2, 2) points, y = sin 2x + 0.1 N(0, 1); X = [x, 1], β = 0.05.
X82 = np.array([-1.42336155, -0.75267419, -0.36320345, -0.30669420, 0.04728650, 1.31081038, 1.79459779,
                1.80185479])[:, None]
Y82 = np.array([-0.25415780, -0.96844580, -0.66134563, -0.52097017, 0.02078667, 0.48056476, -0.48101778,
                -0.38595936])
BETA82 = 0.05
Q82 = 0.3238123  # THEORY §8.2a, 7 digits

# Bounds and comparisons: a gradient run may never go below a certified lower bound by more than this.
LB_TOL = 1e-9


def _regression(n: int = 30, d: int = 3, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    y = np.sin(X @ rng.standard_normal(d)) + 0.1 * rng.standard_normal(n)
    return X, y


def _certified(X: np.ndarray, y: np.ndarray, beta: float, bias: bool) -> tuple[cvxnn.ConvexFit, float]:
    """The enumerated-pattern fit and the tightest of its two certified lower bounds (fit's dual
    point and certify() of its network), each valid for every network of any width."""
    fit = cvxnn.fit(X, y, beta, patterns="all", bias=bias)
    assert fit.certified_global
    cert = cvxnn.certify(fit.network, X, y, beta)
    assert cert.complete and cert.globally_optimal is True  # gap within certify's rtol = 1e-6
    lower = max(fit.lower_bound, cert.lower_bound)
    assert lower <= fit.objective + LB_TOL
    return fit, lower


def _multistart(X, y, beta, bias, runs: list[tuple[str, int, int]], **kw) -> list[NonconvexRun]:
    """One run per (optimizer, seed, epochs): width 10, init scale 0.5, lr 1e-2."""
    return [train_nonconvex(X, y, beta, 10, opt, lr=1e-2, epochs=epochs, init_scale=0.5, seed=seed, bias=bias,
                            record_every=50, **kw) for opt, seed, epochs in runs]


def _assert_never_below(runs: list[NonconvexRun], lower_bound: float) -> None:
    below = [(r.optimizer, r.seed, r.final_objective) for r in runs
             if r.final_objective < lower_bound - LB_TOL
             or min(r.history.objectives) < lower_bound - LB_TOL]
    assert not below, f"runs below the certified lower bound {lower_bound!r}: {below}"


def _assert_certificates_below(runs: list[NonconvexRun], X, y, beta: float, upper: float) -> None:
    """Weak duality the other way: certify() of any network gives a bound ≤ its own objective and
    ≤ the objective of every other network, here the convex optimum ``upper``."""
    for r in runs:
        cert = cvxnn.certify(r.network, X, y, beta)
        assert cert.complete
        assert cert.lower_bound <= min(r.final_objective, upper) + LB_TOL, (r.optimizer, r.seed)


# ---------------------------------------------------------------------- bookkeeping


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_recorded_objective_is_the_returned_networks_objective(dtype):
    X, y = _regression()
    beta = 0.1
    run = train_nonconvex(X, y, beta, width=8, optimizer="adam", lr=1e-2, epochs=300, seed=3, record_every=7,
                          dtype=dtype)
    assert isinstance(run.history, TrainHistory) and isinstance(run.network, cvxnn.TwoLayerNet)
    assert run.network.W1.dtype == np.float64 and run.network.W1.shape == (8, 3) and not run.network.bias
    k = int(np.argmin(run.history.objectives))
    exact = run.network.objective(X, y, beta)
    assert abs(run.history.objectives[k] - exact) <= 1e-10 * max(1.0, exact)
    assert run.final_objective == exact
    # steps: 0, every 7th, and the last one
    assert run.history.steps[0] == 0 and run.history.steps[-1] == 300
    assert all(s % 7 == 0 for s in run.history.steps[:-1])
    assert len(run.history.steps) == len(run.history.times) == len(run.history.objectives)
    assert (run.optimizer, run.lr, run.width, run.seed, run.epochs) == ("adam", 1e-2, 8, 3, 300)
    assert not run.interrupted and not run.diverged


def test_nc_objective_matches_network_objective_with_bias():
    X, y = _regression(n=10, d=2, seed=1)
    rng = np.random.default_rng(5)
    net = cvxnn.TwoLayerNet(rng.standard_normal((4, 3)), rng.standard_normal(4), bias=True)
    Xt = torch.as_tensor(np.hstack([X, np.ones((10, 1))]))
    val = float(nc_objective(Xt, torch.as_tensor(y), torch.as_tensor(net.W1), torch.as_tensor(net.w2), 0.3))
    assert val == pytest.approx(net.objective(X, y, 0.3), rel=1e-13)


def test_adam_decreases_objective_and_times_are_monotone():
    X, y = _regression()
    run = train_nonconvex(X, y, 0.1, width=20, optimizer="adam", lr=1e-2, epochs=1000, seed=0, record_every=20)
    obj = run.history.objectives
    assert run.final_objective < 0.2 * obj[0]
    assert run.final_objective <= min(obj) * (1 + 1e-12)  # the lowest iterate of every step, recorded or not
    times = run.history.times
    assert all(t >= 0 for t in times) and all(b >= a for a, b in zip(times, times[1:]))
    assert run.wall_time >= times[-1]


@pytest.mark.parametrize("optimizer", ["adam", "gd"])
def test_a_full_batch_run_returns_its_lowest_iterate_whatever_it_records(optimizer):
    """Full batch: the network returned is the iterate with the lowest NC over every step, so record_every only
    changes the history: every 37th step recorded gives the network of recording every step, whose NC is the
    least recorded value (that run records every iterate), and lies below every 37th-step record."""
    X, y = _regression()
    lr = 1e-2 if optimizer == "adam" else 1e-3
    every = train_nonconvex(X, y, 0.1, 12, optimizer, lr=lr, epochs=400, seed=4, record_every=1)
    sparse = train_nonconvex(X, y, 0.1, 12, optimizer, lr=lr, epochs=400, seed=4, record_every=37)
    np.testing.assert_array_equal(sparse.network.W1, every.network.W1)
    np.testing.assert_array_equal(sparse.network.w2, every.network.w2)
    assert every.final_objective == pytest.approx(min(every.history.objectives), rel=1e-12)
    assert sparse.final_objective == every.final_objective <= min(sparse.history.objectives) * (1 + 1e-12)
    assert sparse.history.steps == list(range(0, 400, 37)) + [400]


def test_initialization_is_seeded_and_scaled():
    X, y = _regression(n=20, d=4)
    a = train_nonconvex(X, y, 0.1, 500, "gd", lr=1e-3, epochs=1, init_scale=2.0, seed=7, record_every=1)
    b = train_nonconvex(X, y, 0.1, 500, "gd", lr=1e-3, epochs=1, init_scale=2.0, seed=7, record_every=1)
    assert a.history.objectives == b.history.objectives
    gen = torch.Generator().manual_seed(7)
    W1 = torch.randn(500, 4, generator=gen, dtype=torch.float64) * (2.0 / 2.0)
    w2 = torch.randn(500, generator=gen, dtype=torch.float64) * (2.0 / math.sqrt(500))
    start = cvxnn.TwoLayerNet(W1.numpy(), w2.numpy())
    assert a.history.objectives[0] == pytest.approx(start.objective(X, y, 0.1), rel=1e-12)
    # the documented variances: W1 ~ N(0, s²/d), w2 ~ N(0, s²/m)
    assert np.var(W1.numpy()) == pytest.approx(1.0, rel=0.1)
    assert np.var(w2.numpy()) * 500 == pytest.approx(4.0, rel=0.2)


def test_init_network_is_the_starting_point():
    X, y = _regression(n=10, d=2)
    rng = np.random.default_rng(2)
    net = cvxnn.TwoLayerNet(rng.standard_normal((5, 3)), rng.standard_normal(5), bias=True)
    run = train_nonconvex(X, y, 0.2, 5, "gd", lr=1e-4, epochs=3, bias=True, init=net, record_every=1)
    assert run.history.objectives[0] == pytest.approx(net.objective(X, y, 0.2), rel=1e-13)
    assert run.network.bias is True and run.network.W1.shape == (5, 3)


def test_minibatch_sgd_is_seeded_and_decreases():
    X, y = _regression(n=40, d=3)
    runs = [train_nonconvex(X, y, 0.1, 20, "sgd", lr=2e-3, epochs=100, batch_size=8, momentum=0.9, seed=4)
            for _ in range(2)]
    assert runs[0].history.objectives == runs[1].history.objectives
    assert runs[0].history.steps[-1] == 100 * 5  # 5 minibatches per epoch
    assert runs[0].final_objective < 0.5 * runs[0].history.objectives[0]


def test_divergence_returns_best_finite_iterate():
    X, y = _regression()
    run = train_nonconvex(X, y, 0.1, 10, "gd", lr=50.0, epochs=500, seed=0, record_every=1)
    assert run.diverged and not run.interrupted
    assert run.history.steps[-1] < 500
    assert all(math.isfinite(v) for v in run.history.objectives)
    assert math.isfinite(run.final_objective)
    assert run.final_objective == pytest.approx(min(run.history.objectives), rel=1e-12)


def test_keyboard_interrupt_returns_best_so_far():
    X, y = _regression()
    seen: list[tuple[int, float]] = []

    def stop_after_three(step: int, objective: float) -> None:
        seen.append((step, objective))
        if len(seen) == 3:
            raise KeyboardInterrupt

    run = train_nonconvex(X, y, 0.1, 10, "adam", lr=1e-2, epochs=10_000, record_every=5, callback=stop_after_three)
    assert run.interrupted and not run.diverged
    assert [s for s, _ in seen] == [0, 5, 10] == run.history.steps
    assert isinstance(run.network, cvxnn.TwoLayerNet) and run.network.width == 10
    assert run.final_objective <= min(o for _, o in seen) * (1 + 1e-12)  # steps between the records count too
    assert run.final_objective == pytest.approx(run.network.objective(X, y, 0.1), rel=1e-12)
    assert run.network.predict(X).shape == (30,)


def test_best_of():
    X, y = _regression(n=10, d=2)
    runs = [train_nonconvex(X, y, 0.1, 5, "adam", epochs=20 * (s + 1), seed=s) for s in range(3)]
    assert best_of(runs) is min(runs, key=lambda r: r.final_objective)
    with pytest.raises(ValueError, match="at least one"):
        best_of([])


@pytest.mark.parametrize("kwargs, match", [
    (dict(width=0), "width"),
    (dict(width=2.5), "width"),
    (dict(width=True), "width"),
    (dict(lr=0.0), "lr"),
    (dict(lr=-1e-3), "lr"),
    (dict(lr=float("nan")), "lr"),
    (dict(epochs=0), "epochs"),
    (dict(epochs=10.0), "epochs"),
    (dict(optimizer="rmsprop"), "optimizer"),
    (dict(record_every=0), "record_every"),
    (dict(init_scale=-1.0), "init_scale"),
    (dict(beta=-0.1), "beta"),
    (dict(optimizer="gd", batch_size=3), "full-batch"),
    (dict(optimizer="sgd", batch_size=0), "batch_size"),
    (dict(optimizer="adam", momentum=0.9), "momentum"),
    (dict(dtype=torch.int64), "dtype"),
    (dict(init=cvxnn.TwoLayerNet(np.ones((3, 2)), np.ones(3))), "init has width"),
])
def test_invalid_arguments_raise(kwargs, match):
    X, y = _regression(n=10, d=2)
    args = dict(X=X, y=y, beta=0.1, width=4) | kwargs
    with pytest.raises(ValueError, match=match):
        train_nonconvex(**args)


def test_invalid_data_raise():
    X, y = _regression(n=10, d=2)
    with pytest.raises(ValueError, match="2-D"):
        train_nonconvex(X[:, 0], y, 0.1, 4)
    with pytest.raises(ValueError, match="disagree"):
        train_nonconvex(X, y[:-1], 0.1, 4)
    with pytest.raises(ValueError, match="non-finite"):
        train_nonconvex(X, np.r_[y[:-1], np.nan], 0.1, 4)


# ---------------------------------------------------------------------- never below the certified optimum


def test_theory_82a_no_run_beats_certified_optimum():
    fit, lower = _certified(X82, Y82, BETA82, bias=True)
    assert len(fit.patterns) == 2 * len(Y82)
    assert fit.objective == pytest.approx(Q82, abs=1e-7)
    assert lower == pytest.approx(Q82, rel=1e-6)
    # 20 Adam starts (about half reach 1e-3 of the optimum within 800 steps) and 4 GD starts
    # (slow at lr 1e-2: they only test the bound).
    runs = _multistart(X82, Y82, BETA82, True, [("adam", s, 800) for s in range(20)]
                       + [("gd", 100 + s, 1500) for s in range(4)])
    _assert_never_below(runs, lower)
    _assert_certificates_below(runs, X82, Y82, BETA82, fit.objective)
    assert best_of(runs).final_objective <= fit.objective * (1 + 1e-3)


def test_gd_started_at_the_certified_optimum_stays_above_the_bound():
    fit, lower = _certified(X82, Y82, BETA82, bias=True)
    run = train_nonconvex(X82, Y82, BETA82, fit.network.width, "gd", lr=1e-2, epochs=500, bias=True,
                          init=fit.network, record_every=1)
    assert run.history.objectives[0] == pytest.approx(fit.network_objective, rel=1e-12)
    assert min(run.history.objectives) >= lower - LB_TOL
    assert run.final_objective == pytest.approx(fit.objective, rel=1e-6)


def test_random_2d_problem_no_run_beats_certified_optimum():
    rng = np.random.default_rng(12)
    X = rng.standard_normal((12, 2))
    y = np.abs(X[:, 0]) - np.maximum(X[:, 1], 0.0) + 0.1 * rng.standard_normal(12)
    beta = 0.1
    fit, lower = _certified(X, y, beta, bias=False)
    assert len(fit.patterns) == 2 * 12  # 2 Σ_{k<2} C(11, k) for 12 points in general position in R²
    runs = _multistart(X, y, beta, False, [("adam", s, 600) for s in range(20)]
                       + [("gd", 100 + s, 600) for s in range(3)])
    _assert_never_below(runs, lower)
    _assert_certificates_below(runs, X, y, beta, fit.objective)
    assert best_of(runs).final_objective <= fit.objective * (1 + 1e-3)


# ---------------------------------------------------------------------- brute force, 1-D with bias


def _hand_patterns_1d(x: np.ndarray) -> set[tuple[bool, ...]]:
    """All patterns 1[a x_k + b ≥ 0] of distinct 1-D points, by hand: a hinge at a threshold t
    between consecutive sorted points (or outside them), pointing right ({x ≥ t}) or left ({x ≤ t})."""
    rank = np.argsort(np.argsort(x))  # rank of each point in sorted order
    n = len(x)
    masks = set()
    for k in range(n + 1):  # threshold between the (k-1)-th and k-th sorted points
        masks.add(tuple(bool(r >= k) for r in rank))  # a > 0: points to the right
        masks.add(tuple(bool(r < k) for r in rank))  # a < 0: points to the left
    return masks


def _hand_convex_program(x: np.ndarray, y: np.ndarray, beta: float, masks: set[tuple[bool, ...]]) -> float:
    """(CVX) written directly in cvxpy, one (v_i, w_i) pair per hand-built pattern."""
    Xt = np.column_stack([x, np.ones_like(x)])
    pred, penalty, cons = 0, 0, []
    for m in sorted(masks):
        D = np.diag(np.array(m, dtype=float))
        S = 2 * D - np.eye(len(x))
        v, w = cp.Variable(2), cp.Variable(2)
        pred = pred + D @ Xt @ (v - w)
        penalty = penalty + cp.norm(v, 2) + cp.norm(w, 2)
        cons += [S @ Xt @ v >= 0, S @ Xt @ w >= 0]
    prob = cp.Problem(cp.Minimize(0.5 * cp.sum_squares(pred - y) + beta * penalty), cons)
    prob.solve(solver=cp.CLARABEL, tol_gap_abs=1e-11, tol_gap_rel=1e-11, tol_feas=1e-11)
    assert prob.status == cp.OPTIMAL
    return float(prob.value)


def test_brute_force_1d_with_bias():
    x = np.array([0.9, -1.3, 0.2, 1.7, -0.4])  # unsorted on purpose
    y = np.array([0.5, 0.8, -0.3, 1.1, 0.1])
    beta = 0.05
    n = len(x)
    hand = _hand_patterns_1d(x)
    assert len(hand) == 2 * n
    enumerated = cvxnn.enumerate_patterns(np.column_stack([x, np.ones(n)]))
    assert {tuple(bool(b) for b in col) for col in enumerated.masks.T} == hand
    assert len(enumerated) == 2 * n and enumerated.complete

    q_hand = _hand_convex_program(x, y, beta, hand)
    fit, lower = _certified(x[:, None], y, beta, bias=True)
    assert fit.objective == pytest.approx(q_hand, rel=1e-6)
    assert lower == pytest.approx(q_hand, rel=1e-6)

    runs = _multistart(x[:, None], y, beta, True, [("adam", s, 600) for s in range(12)])
    # the hand optimum comes from an interior-point solve, so compare with its accuracy (1e-7);
    # the certified dual bound is a true lower bound, compared with LB_TOL.
    assert min(r.final_objective for r in runs) >= q_hand * (1 - 1e-7)
    _assert_never_below(runs, lower)
    assert best_of(runs).final_objective <= q_hand * (1 + 1e-2)


# ---------------------------------------------------------------------- activations and losses


def _tiny_2d(seed: int = 5) -> np.ndarray:
    """10 Gaussian points in R² (with bias: 92 enumerable patterns)."""
    return np.random.default_rng(seed).standard_normal((10, 2))


@pytest.mark.parametrize("kw, target", [
    (dict(loss="logistic"), "sign"),
    (dict(loss="hinge", activation="abs"), "sign"),
    (dict(loss="cross_entropy", activation="leaky_relu", negative_slope=0.1), "classes"),
    (dict(loss="squared", activation=(0.5, -2.0)), "matrix"),
])
def test_recorded_objective_is_the_network_objective_for_each_loss(kw, target):
    X = _tiny_2d()
    y = {"sign": np.where(X[:, 0] > X[:, 1], 1.0, -1.0),
         "classes": (X[:, 0] > 0).astype(int) + (X[:, 1] > 0.5),
         "matrix": np.column_stack([np.sin(X[:, 0]), X[:, 1] ** 2])}[target]
    run = train_nonconvex(X, y, 0.1, 6, "adam", lr=1e-2, epochs=40, seed=3, bias=True, record_every=1, **kw)
    net = run.network
    assert net.activation == cvxnn.activation_from(kw.get("activation", "relu"), kw.get("negative_slope", 0.01))
    outputs = {"sign": 1, "classes": 3, "matrix": 2}[target]
    assert net.n_outputs == outputs and net.w2.shape == ((6,) if outputs == 1 else (6, outputs))
    assert run.loss == kw["loss"]
    best = int(np.argmin(run.history.objectives))
    assert run.final_objective == net.objective(X, y, 0.1, kw["loss"])
    assert abs(run.history.objectives[best] - run.final_objective) <= 1e-10 * abs(run.final_objective)
    # every recorded value is NC of the iterate: check the start against an independently built network
    W1, w2 = _start(X, 6, seed=3, outputs=outputs)
    start = cvxnn.TwoLayerNet(W1, w2, True, net.activation).objective(X, y, 0.1, kw["loss"])
    assert abs(run.history.objectives[0] - start) <= 1e-10 * abs(start)


def _start(X: np.ndarray, width: int, seed: int, outputs: int) -> tuple[np.ndarray, np.ndarray]:
    """The documented initialization (init_scale 1, bias column): W1 ~ N(0, 1/d̃), then w2 ~ N(0, 1/m)."""
    gen = torch.Generator().manual_seed(seed)
    d = X.shape[1] + 1
    W1 = torch.randn(width, d, generator=gen, dtype=torch.float64) / math.sqrt(d)
    shape = (width,) if outputs == 1 else (width, outputs)
    w2 = torch.randn(*shape, generator=gen, dtype=torch.float64) / math.sqrt(width)
    return W1.numpy(), w2.numpy()


def test_nc_objective_with_activation_and_loss_matches_network():
    X = _tiny_2d()
    y = (X[:, 0] > 0).astype(int) + (X[:, 1] > 0.5)
    W1, w2 = _start(X, 5, seed=1, outputs=3)
    act = cvxnn.activation_from("leaky_relu", 0.3)
    loss = loss_from("cross_entropy")
    Xt = torch.as_tensor(np.column_stack([X, np.ones(10)]))
    val = float(nc_objective(Xt, torch.as_tensor(loss.targets(y, 10)), torch.as_tensor(W1), torch.as_tensor(w2),
                             0.2, activation=act, loss=loss))
    assert val == pytest.approx(cvxnn.TwoLayerNet(W1, w2, True, act).objective(X, y, 0.2, loss), rel=1e-12)


@pytest.mark.parametrize("loss, target", [("logistic", "sign"), ("cross_entropy", "classes")])
def test_adam_decreases_logistic_and_cross_entropy(loss, target):
    X = _tiny_2d()
    y = np.where(X[:, 0] * X[:, 1] > 0, 1.0, -1.0) if target == "sign" else (X[:, 0] > 0).astype(int) + (X[:, 1] > 0)
    run = train_nonconvex(X, y, 0.1, 8, "adam", lr=1e-2, epochs=300, seed=0, bias=True, loss=loss)
    obj = run.history.objectives
    assert run.final_objective < 0.7 * obj[0]
    assert obj[-1] < obj[len(obj) // 2] < obj[0]


def test_init_must_match_activation_and_outputs():
    X = _tiny_2d()
    y = np.where(X[:, 0] > 0, 1.0, -1.0)
    relu_net = cvxnn.TwoLayerNet(np.ones((4, 3)), np.ones(4), True)
    with pytest.raises(ValueError, match="activation"):
        train_nonconvex(X, y, 0.1, 4, epochs=1, bias=True, init=relu_net, activation="abs")
    with pytest.raises(ValueError, match="output"):
        train_nonconvex(X, (X[:, 0] > 0).astype(int), 0.1, 4, epochs=1, bias=True, init=relu_net,
                        loss="cross_entropy")
    with pytest.raises(ValueError, match="-1, \\+1"):
        train_nonconvex(X, (X[:, 0] > 0).astype(float), 0.1, 4, epochs=1, loss="logistic")
    with pytest.raises(ValueError, match="loss must be one of"):
        train_nonconvex(X, y, 0.1, 4, epochs=1, loss="l1")


@pytest.mark.parametrize("case", ["logistic", "leaky_relu"])
def test_no_adam_run_beats_the_certified_optimum_of_other_losses_and_activations(case):
    X = _tiny_2d()
    if case == "logistic":
        y, kw = np.where(X[:, 0] * X[:, 1] > 0, 1.0, -1.0), dict(loss="logistic")
    else:
        y, kw = np.sin(2 * X[:, 0]) + X[:, 1] ** 2, dict(activation="leaky_relu", negative_slope=0.2)
    beta = 0.1
    fit = cvxnn.fit(X, y, beta, patterns="all", bias=True, **kw)
    assert fit.patterns.complete and fit.relative_gap < 1e-8
    runs = [train_nonconvex(X, y, beta, 10, "adam", lr=1e-2, epochs=400, init_scale=0.5, seed=s, bias=True,
                            record_every=20, **kw) for s in range(4)]
    _assert_never_below(runs, fit.lower_bound)
    assert best_of(runs).final_objective <= fit.objective * 1.1  # and the optimum is within reach
