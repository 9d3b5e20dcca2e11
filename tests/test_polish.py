"""The active-set Newton polish of the ReLU interior-point method (solvers/polish.py): on the face of the binding
cone rows it solves the program to round-off, so the certificate reaches gaps the interior-point iterates alone
stall above; the polished point is cone feasible and stationary with nonnegative multipliers, every exact cone
value is within β, and a wrong active set is repaired (a missing row by the ratio test, a spurious one by its
negative multiplier)."""

import numpy as np
import pytest
import torch

import cvxnn
from cvxnn.duality import cone_sigma
from cvxnn.activations import activation_from
from cvxnn.losses import SQUARED, loss_from
from cvxnn.network import cone_violation, convex_objective
from cvxnn.operators import PatternOperator
from cvxnn.solvers import interior_point, polish
from cvxnn.solvers.fista import SmoothLoss

BETA = 10.0


def _planted(n: int, d: int, seed: int = 0):
    """A noisy two-layer ReLU teacher with 5 neurons, and 10 sampled patterns."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    y = np.maximum(X @ rng.standard_normal((d, 5)), 0) @ rng.standard_normal(5) + 0.5 * rng.standard_normal(n)
    return X, y, cvxnn.sample_patterns(X, 10, seed=seed)


def _solve(X, y, pats, tol):
    return interior_point.solve_relu_interior(PatternOperator(X, pats.masks), torch.as_tensor(y), BETA, tol=tol,
                                              interior=torch.as_tensor(pats.gates.T))


def _gap(out):
    return (out.info["objective"] - out.info["lower_bound"]) / out.info["objective"]


@pytest.mark.parametrize("seed", [0, 1])
def test_the_polish_certifies_gaps_the_iterates_alone_stall_above(seed, monkeypatch):
    X, y, pats = _planted(1000, 10, seed)
    ref = cvxnn.fit(X, y, BETA, patterns=pats, solver="reference")
    out = _solve(X, y, pats, 1e-10)
    assert out.status == "optimal" and _gap(out) <= 1e-10
    assert out.info["lower_bound"] <= ref.objective * (1 + 1e-9) and out.info["objective"] >= ref.objective * (1 - 1e-9)
    assert convex_objective(X, y, pats.masks, out.v, out.w, BETA) == pytest.approx(ref.objective, rel=1e-8)
    scale = np.abs(X).max() * max(np.abs(out.v).max(), np.abs(out.w).max())
    assert max(cone_violation(X, pats.masks, out.v), cone_violation(X, pats.masks, out.w)) <= 1e-12 * scale
    calls = []
    monkeypatch.setattr(interior_point, "polish", lambda *args: calls.append(args[-1]))  # a polish that fails
    alone = _solve(X, y, pats, 1e-10)
    assert alone.status == "stalled" and _gap(alone) > 1e-9  # what the polish adds
    # each failed polish doubles the wait before the next (over the 10 stalled iterations, 2 to 3 tries, not 5),
    # and the budget passed is POLISH_BUDGET iterations' work
    assert 1 <= len(calls) <= 3
    assert calls[0] == pytest.approx(interior_point.POLISH_BUDGET * interior_point.iteration_flops(1000, 10, 10))


@pytest.mark.parametrize("act", ["relu", "leaky_relu", "abs"])
@pytest.mark.parametrize("loss", ["squared", "logistic"])
def test_the_polish_works_for_every_activation_and_smooth_loss(act, loss):
    """Without the polish five of these six stall, at gaps of 5e-8 to 2.3e-6 (measured; logistic with the absolute
    value reaches 8.7e-11 alone); with it all certify 1e-10."""
    X, y, pats = _planted(3000, 10)
    beta = BETA
    if loss == "logistic":
        y, beta = np.where(y > np.median(y), 1.0, -1.0), 2.0
    op = PatternOperator(X, pats.masks, activation=activation_from(act))
    out = interior_point.solve_relu_interior(op, torch.as_tensor(y), beta, tol=1e-10, loss=loss_from(loss),
                                             interior=torch.as_tensor(pats.gates.T))
    assert out.status == "optimal" and _gap(out) <= 1e-10
    objective = convex_objective(X, y, pats.masks, out.v, out.w, beta, activation_from(act), loss_from(loss))
    assert objective == pytest.approx(out.info["objective"], rel=1e-12)
    scale = np.abs(X).max() * max(np.abs(out.v).max(), np.abs(out.w).max())
    assert max(cone_violation(X, pats.masks, out.v), cone_violation(X, pats.masks, out.w)) <= 1e-12 * scale


def _polished_face(monkeypatch, X, y, pats):
    """The arguments and the result of the interior-point solve's last successful polish."""
    calls = []
    real = interior_point.polish

    def record(*args):
        out = real(*args)
        if out is not None:
            calls.append((args, out))
        return out

    monkeypatch.setattr(interior_point, "polish", record)
    _solve(X, y, pats, 1e-10)
    assert calls
    return calls[-1]


def test_the_polished_point_is_feasible_stationary_and_every_cone_value_is_within_beta(monkeypatch):
    X, y, pats = _planted(1000, 10, 0)
    args, (U, m) = _polished_face(monkeypatch, X, y, pats)
    U, m = U[..., 0].numpy(), m[..., 0].numpy()
    S = np.where(pats.masks, 1.0, -1.0)
    scale = np.abs(X).max() * np.abs(U).max()
    assert max(cone_violation(X, pats.masks, U[0]), cone_violation(X, pats.masks, U[1])) <= 1e-12 * scale
    assert (m >= 0).all()
    lam = y - sum(pats.masks[:, i] * (X @ (U[0, i] - U[1, i])) for i in range(len(pats)))
    fit = X.T @ (pats.masks * lam[:, None])  # XᵀD_iΛ
    nonzero = 0
    for side in range(2):
        for i in range(len(pats)):
            v = (1 - 2 * side) * fit[:, i]
            sigma = cone_sigma(X, pats.masks[:, i], v)[0]
            assert sigma <= BETA * (1 + 1e-9)
            u = U[side, i]
            if np.linalg.norm(u) > 0:  # stationary: v + XᵀS_im = βu/‖u‖, so the exact cone value is β
                nonzero += 1
                residual = v + X.T @ (S[:, i] * m[side, :, i]) - BETA * u / np.linalg.norm(u)
                assert np.linalg.norm(residual) <= 1e-8 * BETA
                assert sigma == pytest.approx(BETA, rel=1e-9)
    assert nonzero >= 5


def _optimal_inputs(monkeypatch):
    """An optimal polished point as polish's input (the iterate U, its cone values G, multipliers m), with the
    operator arguments around it, and its objective."""
    X, y, pats = _planted(1000, 10, 0)
    args, (U, m) = _polished_face(monkeypatch, X, y, pats)
    op, weights, live, XX = args[:4]
    G = torch.stack([op.cone_products(U[0]), op.cone_products(U[1])])
    smooth = SmoothLoss(SQUARED, torch.as_tensor(y)[:, None])
    objective = convex_objective(X, y, pats.masks, U[0, ..., 0].numpy(), U[1, ..., 0].numpy(), BETA)
    return (op, weights, live, XX), U, G, m, smooth, objective


def test_a_missing_active_row_is_added_by_the_ratio_test(monkeypatch):
    operator, U, G, m, smooth, objective = _optimal_inputs(monkeypatch)
    nonzero = (U.norm(dim=2) > 0)[:, None]
    rows = torch.nonzero((m > 0) & (G.abs() < 1e-9) & nonzero)  # binding rows of nonzero columns
    side, k, i, col = rows[0].tolist()
    G, m = G.clone(), m.clone()
    G[side, k, i, col], m[side, k, i, col] = 1e-3, 0.0  # now it looks inactive
    steps = []
    real = polish._solve_face
    monkeypatch.setattr(polish, "_solve_face", lambda *a: steps.append(real(*a)) or steps[-1])
    out = polish.polish(*operator, U, G, m, smooth, BETA, False)
    assert out is not None and steps[0][1] is not None and bool(steps[0][1][side, k, i, col])  # blocked by it
    V, W = out[0][0, ..., 0].numpy(), out[0][1, ..., 0].numpy()
    X, y = operator[0].X.numpy(), smooth.y[:, 0].numpy()
    assert convex_objective(X, y, operator[0].masks.numpy(), V, W, BETA) == pytest.approx(objective, rel=1e-12)


def test_a_spurious_active_row_leaves_by_its_negative_multiplier(monkeypatch):
    operator, U, G, m, smooth, objective = _optimal_inputs(monkeypatch)
    op = operator[0]
    norms = U.norm(dim=2)
    # the tightest inactive row of the largest column: held at zero it would need a negative multiplier
    side, i = divmod(int(norms[..., 0].argmax()), op.P)
    k = int(torch.where(m[side, :, i, 0] > 0, torch.inf, G[side, :, i, 0]).argmin())
    G, m = G.clone(), m.clone()
    m[side, k, i, 0] = 1e6 * float(m.max())
    negatives = []
    real = polish._multipliers
    monkeypatch.setattr(polish, "_multipliers", lambda *a: negatives.append(real(*a)[1]) or real(*a))
    out = polish.polish(*operator, U, G, m, smooth, BETA, False)
    assert out is not None
    assert bool(negatives[0][side, k, i, 0]) and not bool(negatives[-1].any())
    V, W = out[0][0, ..., 0].numpy(), out[0][1, ..., 0].numpy()
    assert convex_objective(op.X.numpy(), smooth.y[:, 0].numpy(), op.masks.numpy(), V, W, BETA) == \
        pytest.approx(objective, rel=1e-12)


def test_the_polish_keeps_to_its_budget_of_newton_work(monkeypatch):
    """A face Newton step costs q²n + q³/3 (q free coordinates): with less budget than one step the polish takes
    none and returns None; with a few steps' worth it solves the same face as without a budget."""
    operator, U, G, m, smooth, objective = _optimal_inputs(monkeypatch)
    formed = []
    real = polish._Face.newton_step
    monkeypatch.setattr(polish._Face, "newton_step", lambda self, *a: formed.append(self.q) or real(self, *a))
    free = polish.polish(*operator, U, G, m, smooth, BETA, False)
    assert free is not None and formed
    q, n = formed[0], operator[0].n
    formed.clear()
    assert polish.polish(*operator, U, G, m, smooth, BETA, False, budget=0.5 * (q * q * n + q ** 3 / 3)) is None
    assert formed == []
    bounded = polish.polish(*operator, U, G, m, smooth, BETA, False, budget=20 * (q * q * n + q ** 3 / 3))
    assert bounded is not None and 0 < len(formed) <= 20
    torch.testing.assert_close(bounded[0], free[0], rtol=0, atol=1e-12 * float(free[0].abs().max()))
