"""Tests of cvxnn.trajectory (recorded training runs, convex envelope along them) and of the
objective-vs-iterations figure.

Envelope invariants (THEORY §1.2, §2.5): with 𝒟_t the patterns met up to record t,
q*(𝒫) ≤ q*(𝒟_t) ≤ NC(θ_t), and q*(𝒟_t) is non-increasing in t.
"""

from __future__ import annotations

import numpy as np
import pytest

import cvxnn
from cvxnn.figures import objective_vs_iterations
from cvxnn.nonconvex import train_nonconvex
from cvxnn.stationarity import stationarity_certificate
from cvxnn.trajectory import convex_along_trajectory, default_record_steps, train_with_trajectory

GD = dict(optimizer="gd", lr=1e-2, bias=True, init_scale=0.5)


@pytest.mark.parametrize("optimizer, momentum", [("gd", 0.0), ("gd", 0.9), ("adam", 0.0)])
def test_the_recorded_objectives_match_the_torch_trainer(theory_problem, optimizer, momentum):
    X, y, beta = theory_problem
    run = train_nonconvex(X, y, beta, 5, optimizer=optimizer, lr=1e-2, epochs=200, init_scale=0.5, seed=1,
                          bias=True, record_every=40, momentum=momentum)
    traj = train_with_trajectory(X, y, beta, 5, optimizer=optimizer, lr=1e-2, epochs=200,
                                 record_steps=run.history.steps, seed=1, bias=True, init_scale=0.5,
                                 momentum=momentum)
    assert traj.steps.tolist() == run.history.steps == [0, 40, 80, 120, 160, 200]
    assert np.allclose(traj.objectives, run.history.objectives, rtol=1e-12, atol=0)


def test_records_are_consistent_with_the_networks_they_describe(theory_problem):
    X, y, beta = theory_problem
    traj = train_with_trajectory(X, y, beta, 4, epochs=300, seed=0, **GD)
    T, n, m = len(traj.steps), len(y), 4
    assert traj.steps[0] == 0 and traj.steps[-1] == 300 and np.all(np.diff(traj.steps) > 0)
    assert traj.steps.tolist() == default_record_steps(300).tolist()
    assert traj.masks.shape == (T, n, m) and traj.directions.shape == (T, m, 2)
    assert traj.norms.shape == traj.alphas.shape == (T, m) and traj.width == m
    assert np.allclose(np.linalg.norm(traj.directions, axis=2), 1.0)
    for t in range(T):
        net = traj.network(t)
        assert net.objective(X, y, beta) == pytest.approx(traj.objectives[t], rel=1e-12)
        assert np.array_equal(traj.masks[t], net.design(X) @ net.W1.T >= 0)
    assert traj.objectives[-1] < traj.objectives[0]


def test_the_convex_envelope_lies_between_the_optimum_and_the_run(theory_problem):
    X, y, beta = theory_problem
    q_all = cvxnn.fit(X, y, beta, patterns="all", bias=True).objective
    for width, seed in ((3, 1), (10, 0)):
        traj = train_with_trajectory(X, y, beta, width, epochs=3000, seed=seed, **GD)
        env = convex_along_trajectory(traj, X, y, beta)
        assert np.all(np.diff(env.convex_objectives) <= 1e-9 * env.convex_objectives[0])
        assert np.all(env.convex_objectives <= env.network_objectives + 1e-9)
        assert np.all(env.convex_objectives >= q_all - 1e-9)
        assert np.all(env.lower_bounds <= env.convex_objectives + 1e-12)
        assert np.all(np.diff(env.n_patterns) >= 0) and env.n_patterns[-1] == len(env.patterns)
        assert env.n_patterns[0] <= width


def test_at_a_stationary_end_point_the_envelope_meets_the_run(theory_problem):
    """GD, width 10, seed 2, 2·10⁴ steps ends at the global optimum 0.3238123 (THEORY §8.2a);
    width 2, seed 1 ends at a stationary point 0.6215 that is only locally optimal."""
    X, y, beta = theory_problem
    q_all = cvxnn.fit(X, y, beta, patterns="all", bias=True).objective
    for width, seed, globally in ((10, 2, True), (2, 1, False)):
        traj = train_with_trajectory(X, y, beta, width, epochs=20_000, seed=seed, **GD)
        end = traj.network(-1)
        assert stationarity_certificate(end, X, y, beta).stationary
        env = convex_along_trajectory(traj, X, y, beta)
        assert env.convex_objectives[-1] <= traj.objectives[-1] * (1 + 1e-6)
        if globally:
            assert traj.objectives[-1] == pytest.approx(q_all, rel=1e-6)
        else:
            assert traj.objectives[-1] > 1.5 * q_all


def test_bad_arguments_are_rejected(theory_problem):
    X, y, beta = theory_problem
    with pytest.raises(ValueError, match="optimizer"):
        train_with_trajectory(X, y, beta, 2, optimizer="sgd")
    with pytest.raises(ValueError, match="record_steps"):
        train_with_trajectory(X, y, beta, 2, epochs=10, record_steps=[0, 11])
    with pytest.raises(FloatingPointError, match="lower lr"):
        train_with_trajectory(X, y, beta, 2, lr=1e3, epochs=200, bias=True)
    traj = train_with_trajectory(X, y, beta, 2, epochs=5, bias=True)
    with pytest.raises(ValueError, match="samples"):
        convex_along_trajectory(traj, X[:4], y[:4], beta)


def test_objective_vs_iterations_draws_the_runs_and_the_certified_lines(theory_problem, tmp_path):
    X, y, beta = theory_problem
    runs = {f"seed {s}": train_with_trajectory(X, y, beta, 3, epochs=200, seed=s, **GD) for s in (0, 1)}
    env = convex_along_trajectory(runs["seed 0"], X, y, beta)
    path = tmp_path / "objective.png"
    fig = objective_vs_iterations(runs, certified_optimum=0.3238123, lower_bound=0.3, envelope=env, path=path)
    lines = fig.axes[0].lines
    assert path.stat().st_size > 1000 and len(lines) == 5  # 2 runs, envelope, optimum, lower bound
    for line, traj in zip(lines, runs.values()):
        assert np.array_equal(line.get_xdata(), traj.steps) and np.array_equal(line.get_ydata(), traj.objectives)
    assert np.array_equal(lines[2].get_ydata(), env.convex_objectives)
    assert lines[3].get_ydata()[0] == 0.3238123 and lines[4].get_ydata()[0] == 0.3
    gap = objective_vs_iterations([(runs["seed 1"].steps, runs["seed 1"].objectives)], 0.3238123, log_gap=True)
    assert gap.axes[0].get_yscale() == "log"
    assert np.allclose(gap.axes[0].lines[0].get_ydata(), runs["seed 1"].objectives - 0.3238123)
