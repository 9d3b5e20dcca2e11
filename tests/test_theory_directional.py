"""Lin & Zhang setting: data, radial transform, sphere quadrature, population GD, the depth-1 oracle."""

import json
import math

import numpy as np
import pytest
import torch
from scipy.integrate import quad, solve_ivp

from cvxnn.theory import directional as D
from cvxnn.threads import torch_threads

GAUSS = D.chi_radial(3)


def test_generators_are_spherically_symmetric_and_labelled():
    X = D.gaussian_inputs(50_000, 4, seed=0)
    assert X.shape == (50_000, 4)
    np.testing.assert_allclose(X.T @ X / X.shape[0], np.eye(4), atol=0.03)
    S = D.spherical_inputs(1000, 5, D.unit_radial(), seed=1)
    np.testing.assert_allclose(np.linalg.norm(S, axis=1), 1.0, atol=1e-14)
    w_star = np.array([0.0, 1.0, 0.0, 0.0, 0.0])
    y = D.linear_labels(S, w_star)
    assert set(np.unique(y)) == {-1.0, 1.0}
    np.testing.assert_array_equal(y, np.sign(S[:, 1]))


def test_radial_transform_exponential_gaussian_closed_form():
    """Λ(c) = E_{ρ~χ₃} e^{−ρc} = √(2/π)[(1 + c²) M₀ − c], M₀ = √(π/2) erfcx(c/√2); Λ′ = −√(2/π) M₃."""
    c = np.array([-20.0, -3.0, -0.4, 0.0, 0.3, 2.0, 9.0, 40.0])
    m0 = np.sqrt(np.pi / 2) * D.g_depth1(c)
    m1 = 1 - c * m0
    m2 = m0 - c * m1
    m3 = 2 * m1 - c * m2
    transform = D.radial_transform("exponential", GAUSS)
    ct = torch.tensor(c, requires_grad=True)
    value = transform(ct)
    (grad,) = torch.autograd.grad(value.sum(), ct)
    np.testing.assert_allclose(value.detach().numpy(), np.sqrt(2 / np.pi) * m2, rtol=1e-9)
    # the gradient is the derivative of a cubic interpolant: O(h³) accurate
    np.testing.assert_allclose(grad.numpy(), -np.sqrt(2 / np.pi) * m3, rtol=3e-7)


def test_radial_transform_logistic_and_point_mass():
    transform = D.radial_transform("logistic", GAUSS)
    for c in (-2.0, 0.0, 0.7, 50.0):
        def integrand(r):
            return np.logaddexp(0.0, -r * c) * np.sqrt(2 / np.pi) * r * r * np.exp(-r * r / 2)

        ref = sum(quad(integrand, lo, hi, epsabs=0, epsrel=1e-12, limit=200)[0]
                  for lo, hi in ((0, 1 / (1 + abs(c))), (1 / (1 + abs(c)), 1), (1, 40)))
        assert transform(torch.tensor([c], dtype=torch.float64)).item() == pytest.approx(ref, rel=1e-10)
    point = D.radial_transform("logistic", D.unit_radial())
    c = torch.tensor([-3.0, 0.0, 1.5, 25.0], dtype=torch.float64)
    np.testing.assert_allclose(point(c).numpy(), torch.nn.functional.softplus(-c).numpy(), rtol=1e-10)
    with pytest.raises(ValueError, match="tabulated range"):
        point(torch.tensor([-100.0], dtype=torch.float64))


def test_sphere_quadrature_moments():
    normals = torch.tensor([[1.0, 0.0, 0.0], [0.3, -0.8, 0.5], [-0.2, 0.9, 0.4]], dtype=torch.float64)
    S, w = D.SphereQuadrature().nodes(normals)
    assert w.sum().item() == pytest.approx(1.0, abs=1e-12)
    np.testing.assert_allclose((S.T * w) @ S, np.eye(3) / 3, atol=1e-10)
    np.testing.assert_allclose(((S.abs() ** 3).T @ w).numpy(), 0.25, atol=1e-10)  # E|s_i|³ = 1/4 on S²


@pytest.mark.parametrize("a, b", [(0.5, 1.0), (5.0, 1e-3), (40.0, 1e-8)])
def test_depth1_population_risk_and_gradient_are_exact(a, b):
    """R(a e1 + b) = g(a) e^{‖b‖²/2}; ∂R/∂a = g′(a) e^{‖b‖²/2}; ∂R/∂b = b g(a) e^{‖b‖²/2}."""
    model = D.LinearModel(np.array([a, 0.6 * b, 0.8 * b]))
    risk = D.SpherePopulation("exponential", GAUSS).risk(model)
    (grad,) = torch.autograd.grad(risk, model.parameters())
    growth = math.exp(b * b / 2)
    assert risk.item() == pytest.approx(D.g_depth1(a) * growth, rel=5e-6)
    assert grad[0].item() == pytest.approx(D.g_depth1_prime(a) * growth, rel=5e-6)
    np.testing.assert_allclose(grad[1:].numpy(), np.array([0.6, 0.8]) * b * D.g_depth1(a) * growth, rtol=5e-6)


def test_g_and_its_derivative():
    for a in (0.0, 0.7, 4.0):
        ref = quad(lambda z: np.exp(-a * z) * np.sqrt(2 / np.pi) * np.exp(-z * z / 2), 0, np.inf)[0]
        assert D.g_depth1(a) == pytest.approx(ref, rel=1e-10)
        h = 1e-5
        numeric = (D.g_depth1(a + h) - D.g_depth1(a - h)) / (2 * h)
        assert D.g_depth1_prime(a) == pytest.approx(numeric, rel=1e-7, abs=1e-10)


@pytest.mark.parametrize("loss", D.LOSSES)
@pytest.mark.parametrize("radial", [GAUSS, D.unit_radial()], ids=["gaussian", "unit-sphere"])
def test_two_node_risk_matches_monte_carlo(loss, radial):
    rng = np.random.default_rng(3)
    model = D.TwoNodeNet(rng.standard_normal(3), rng.standard_normal(3))
    X = D.spherical_inputs(400_000, 3, radial, rng)
    mean, err = D.monte_carlo_risk(model, loss, X)
    with torch.no_grad():
        risk = D.SpherePopulation(loss, radial).risk(model).item()
    assert abs(risk - mean) < 4 * err


def test_deep_linear_effective_direction_and_risk():
    weights = D.deep_linear_init([3, 4, 2, 1], seed=4)
    net = D.DeepLinearNet(weights)
    v = (weights[2] @ weights[1] @ weights[0])[0]
    np.testing.assert_allclose(net.effective().detach().numpy(), v, rtol=1e-14)
    population = D.SpherePopulation("logistic", GAUSS)
    with torch.no_grad():
        assert population.risk(net).item() == pytest.approx(population.risk(D.LinearModel(v)).item(), rel=1e-12)


def test_depth1_oracle_regression_values():
    """THEORY §8.2g: LSODA, a(0) = 0.5, ‖b(0)‖ = 1, rtol 1e-10."""
    a, log_b = D.depth1_oracle(np.array([1e2, 1e4]))
    np.testing.assert_allclose(a, [5.851, 28.722], atol=6e-4)
    np.testing.assert_allclose(log_b, [-20.03, -418.5], atol=0.06)
    a_asym, log_b_asym = D.depth1_asymptotics(np.array([1e2, 1e4, 1e6]))
    np.testing.assert_allclose(a_asym, [6.209, 28.820, 133.768], atol=6e-4)
    np.testing.assert_allclose(log_b_asym, [-19.28, -415.3, -8947.0], atol=0.06)


def test_population_gradient_flow_matches_depth1_oracle():
    """Gradient flow ẇ = −∇R(w) of the quadrature risk (linear model, Gaussian x, exponential loss) tracks the ODE."""
    population = D.SpherePopulation("exponential", GAUSS)

    def rhs(_t, w):
        model = D.LinearModel(w)
        (grad,) = torch.autograd.grad(population.risk(model), model.parameters())
        return -grad.numpy()

    t_eval = np.array([0.5, 1.0, 2.0, 4.0])
    with torch_threads(1):
        sol = solve_ivp(rhs, (0.0, 4.0), [0.5, 1.0, 0.0], method="RK45", t_eval=t_eval, rtol=1e-9, atol=1e-12)
    a, log_b = D.depth1_oracle(t_eval)
    np.testing.assert_allclose(sol.y[0], a, rtol=1e-6)
    np.testing.assert_allclose(np.log(np.hypot(sol.y[1], sol.y[2])), log_b, atol=1e-6)


def test_population_gd_records_and_converges_in_direction():
    rng = np.random.default_rng(5)
    model = D.TwoNodeNet(rng.standard_normal(3), rng.standard_normal(3))
    traj = D.population_gd(model, D.SpherePopulation("exponential", GAUSS), eta=0.25, t_max=10.0)
    assert traj.t.shape == traj.loss.shape == (41,)
    assert traj.params.shape == (41, 6)
    assert set(traj.angles) == {"w1", "w2"}
    assert traj.loss[-1] < traj.loss[0]
    assert all(angle[-1] < 0.5 * angle[0] for angle in traj.angles.values())
    assert not traj.reached_floor


def test_population_gd_stops_at_angle_floor():
    model = D.LinearModel(np.array([2.0, 1e-9, 0.0]))
    traj = D.population_gd(model, D.SpherePopulation("exponential", GAUSS), eta=0.25, t_max=10.0,
                           angle_floor=1e-9)
    assert traj.reached_floor and traj.t.size < 41


def test_angle_to_is_accurate_for_tiny_angles():
    assert D.angle_to(torch.tensor([3.0, 4e-13, 0.0], dtype=torch.float64), D.E1) == pytest.approx(4e-13 / 3)
    assert D.angle_to(torch.tensor([-1.0, 0.0, 0.0], dtype=torch.float64), D.E1) == pytest.approx(math.pi)


def test_fit_angle_rates_recovers_synthetic_laws():
    t = np.linspace(0.1, 100.0, 2000)
    stretched = D.fit_angle_rates(t, 0.3 * np.exp(-2.0 * t ** (2 / 3)), t_min=10.0)
    assert stretched["vs_t_two_thirds"]["slope"] == pytest.approx(-2.0)
    assert stretched["vs_t_two_thirds"]["r2"] == pytest.approx(1.0)
    assert stretched["best_power"]["q"] == pytest.approx(0.67)
    power = D.fit_angle_rates(t, 5.0 * t**-1.5, t_min=10.0)
    assert power["vs_log_t"]["slope"] == pytest.approx(-1.5)
    assert power["vs_log_t"]["r2"] > power["vs_t_two_thirds"]["r2"]
    assert power["best_power"]["q"] == pytest.approx(0.01)


def test_reproduce_quick_section(tmp_path):
    section = D.reproduce(tmp_path, quick=True)
    json.dumps(section)
    assert {"name", "title", "setting", "claims", "figures", "data", "markdown"} <= set(section)
    assert section["name"] == "directional"
    for claim in section["claims"]:
        assert set(claim) == {"claim", "measured", "claim_holds"}
        assert isinstance(claim["claim_holds"], bool)
    for name in section["figures"]:
        assert (tmp_path / name).is_file() and name.endswith(".png")
    fits = section["data"]["rate_fits"]
    assert all({"vs_t_two_thirds", "vs_log_t", "best_power"} <= set(f) for per in fits.values() for f in per.values())
    coarse, fine = section["data"]["depth1_simulator"]
    assert fine["max_rel_error_a"] < 0.35 * coarse["max_rel_error_a"]  # GD → gradient flow as η → 0
