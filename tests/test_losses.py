"""Losses: conjugates (Fenchel–Young), gradients, scaling into the conjugate's domain, labels."""

import numpy as np
import pytest

from cvxnn.losses import CROSS_ENTROPY, HINGE, LOGISTIC, SQUARED, loss_from

rng = np.random.default_rng(7)
N, C = 9, 3


def _sample(loss, rng):
    """(prediction z, targets y, a random λ in the conjugate's domain)."""
    if loss is CROSS_ENTROPY:
        y = loss.targets(rng.permutation(np.arange(N) % C), N)
        z = 2 * rng.standard_normal((N, C))
        Q = rng.dirichlet(np.ones(C), size=N)
        return z, y, y - Q
    if loss is SQUARED:
        y = rng.standard_normal(N)
        return rng.standard_normal(N), y, rng.standard_normal(N)
    y = np.where(rng.random(N) < 0.5, -1.0, 1.0)
    return 2 * rng.standard_normal(N), y, y * rng.random(N)


LOSSES = [SQUARED, LOGISTIC, HINGE, CROSS_ENTROPY]


@pytest.mark.parametrize("loss", LOSSES, ids=lambda l: l.name)
def test_fenchel_young(loss):
    """L(z) + L*(s) ≥ zᵀs, i.e. L(z) + ⟨λ, z⟩ ≥ d(λ) with s = −λ; equality at λ = −∇L(z)."""
    for seed in range(5):
        z, y, lam = _sample(loss, np.random.default_rng(seed))
        assert loss.value(z, y) + float(np.vdot(lam, z)) >= loss.dual_value(lam, y) - 1e-12
        if loss.smooth:
            lam_star = loss.dual_direction(z, y)
            assert loss.value(z, y) + float(np.vdot(lam_star, z)) == pytest.approx(
                loss.dual_value(lam_star, y), rel=1e-10, abs=1e-12)


def test_hinge_fenchel_young_equality_at_a_subgradient():
    y = np.array([1.0, -1.0, 1.0, -1.0])
    z = np.array([0.3, 2.0, -1.0, 0.5])  # no point exactly on the margin
    lam = HINGE.dual_direction(z, y)
    assert HINGE.value(z, y) + lam @ z == pytest.approx(HINGE.dual_value(lam, y))


@pytest.mark.parametrize("loss", [SQUARED, LOGISTIC, CROSS_ENTROPY], ids=lambda l: l.name)
def test_gradient_matches_finite_differences(loss):
    z, y, _ = _sample(loss, rng)
    g = loss.gradient(z, y)
    E = np.zeros_like(z)
    for idx in [(0,) + (0,) * (z.ndim - 1), (N - 1,) + (z.ndim - 1) * (1,)]:
        E[:] = 0
        E[idx] = 1e-6
        fd = (loss.value(z + E, y) - loss.value(z - E, y)) / 2e-6
        assert fd == pytest.approx(g[idx], abs=1e-6)


@pytest.mark.parametrize("loss", LOSSES, ids=lambda l: l.name)
@pytest.mark.parametrize("t_max", [0.3, 1.0, 5.0, np.inf])
def test_best_scale_maximizes_on_the_allowed_range(loss, t_max):
    z, y, _ = _sample(loss, rng)
    lam = loss.dual_direction(z, y)
    t = loss.best_scale(lam, y, t_max)
    upper = min(t_max, loss.domain_scale(lam, y))
    assert 0 <= t <= upper
    best = loss.dual_value(t * lam, y)
    assert np.isfinite(best)
    for s in np.linspace(0, upper if np.isfinite(upper) else 10.0, 401):
        assert loss.dual_value(s * lam, y) <= best + 1e-9


def test_domains():
    y = np.array([1.0, -1.0])
    assert LOGISTIC.dual_value(np.array([0.5, 0.1]), y) == -np.inf  # λ_2 y_2 < 0
    assert LOGISTIC.domain_scale(np.array([0.5, -0.25]), y) == pytest.approx(2.0)
    assert HINGE.dual_value(np.array([1.5, -0.5]), y) == -np.inf
    Y = np.eye(3)[[0, 2]]
    assert CROSS_ENTROPY.dual_value(np.array([[0.1, 0.0, 0.0], [0.0, 0.0, 0.0]]), Y) == -np.inf  # row sum ≠ 0
    assert CROSS_ENTROPY.dual_value(np.zeros((2, 3)), Y) == 0.0  # entropy of one-hot rows
    lam = CROSS_ENTROPY.dual_direction(np.zeros((2, 3)), Y)
    assert CROSS_ENTROPY.dual_value(lam, Y) == pytest.approx(2 * np.log(3))


def test_repair_lands_in_the_domain():
    y = np.where(rng.random(N) < 0.5, -1.0, 1.0)
    for loss in (LOGISTIC, HINGE):
        assert np.isfinite(loss.dual_value(loss.repair(3 * rng.standard_normal(N), y), y))
    Y = CROSS_ENTROPY.targets(np.arange(N) % C, N)
    lam = CROSS_ENTROPY.repair(rng.standard_normal((N, C)), Y)
    assert np.isfinite(CROSS_ENTROPY.dual_value(lam, Y))


def test_numerically_stable_at_extreme_predictions():
    y = np.array([1.0, -1.0])
    z = np.array([-1000.0, -1000.0])
    assert LOGISTIC.value(z, y) == pytest.approx(1000.0)
    assert np.all(np.isfinite(LOGISTIC.gradient(z, y)))
    Z = np.array([[1000.0, -1000.0, 0.0]])
    assert CROSS_ENTROPY.value(Z, np.array([[0.0, 1.0, 0.0]])) == pytest.approx(2000.0)
    assert np.all(np.isfinite(CROSS_ENTROPY.gradient(Z, np.array([[0.0, 1.0, 0.0]]))))


def test_cross_entropy_targets():
    Y = CROSS_ENTROPY.targets(np.array([0, 2, 1, 2]), 4)
    np.testing.assert_array_equal(Y, np.eye(3)[[0, 2, 1, 2]])
    np.testing.assert_array_equal(CROSS_ENTROPY.targets(Y, 4), Y)


@pytest.mark.parametrize("loss", ["logistic", "hinge"])
def test_sign_labels_are_required(loss):
    with pytest.raises(ValueError, match=r"labels in \{-1, \+1\}.*2\*y - 1"):
        loss_from(loss).targets(np.array([0, 1, 1, 0]), 4)
    with pytest.raises(ValueError, match=r"labels in \{-1, \+1\}"):
        loss_from(loss).targets(np.array([-1, 1, 2, 1]), 4)


def test_cross_entropy_labels_are_checked():
    with pytest.raises(ValueError, match="integer class labels"):
        CROSS_ENTROPY.targets(np.array([0, 1.5, 1]), 3)
    with pytest.raises(ValueError, match="integer class labels"):
        CROSS_ENTROPY.targets(np.array([0, -1, 1]), 3)
    with pytest.raises(ValueError, match="not one-hot"):
        CROSS_ENTROPY.targets(np.array([[1.0, 1.0], [0.0, 1.0]]), 2)


def test_loss_from():
    assert loss_from("logistic") is LOGISTIC and loss_from(HINGE) is HINGE
    with pytest.raises(ValueError, match="loss must be one of"):
        loss_from("huber")
