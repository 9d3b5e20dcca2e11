"""Lin & Zhang (ICML 2021) setting: directional convergence of population gradient descent (THEORY.md §7, §8.3 E).

Data: spherically symmetric inputs x = ρ s (s uniform on the sphere, ρ ≥ 0 independent; ρ ~ χ_d gives
x ~ N(0, I_d)), zero-margin linear labels y = sign⟨w*, x⟩. Models, all positively 1-homogeneous in x:

* linear            f(x) = wᵀx                                   (direction w → w*),
* two hidden nodes  f(x) = relu(w1ᵀx) − relu(w2ᵀx)               (w1 → w*, w2 → −w*),
* deep linear       f(x) = W_N⋯W_1 x                             (effective row W_N⋯W_1 → w*).

Population risk (exact reduction, our derivation): for 1-homogeneous f, f(ρs) = ρ f(s) and y(ρs) = y(s), so

    R(θ) = E_x ℓ(y f(x)) = E_{s ~ unif(S²)} Λ_ℓ(y(s) f(s)),      Λ_ℓ(c) = E_ρ ℓ(ρc),

for ℓ(s) = e^{−s} (exponential) or log(1 + e^{−s}) (logistic). Λ_ℓ is tabulated once per (loss, radial law) by
graded Gauss–Legendre quadrature in ρ and interpolated (cubic Hermite on log Λ in u = asinh c); E_s is a
quadrature in spherical angles (θ from w* = e1, φ around it) whose panels are split at every kink of the
integrand (the label circle and the ReLU circles wᵢᵀs = 0, and in φ at their intersections), so the only
errors are smooth-integrand quadrature errors. The simulator works in R³ with w* = e1. For the linear and
two-node models this loses nothing: their population gradients stay in span{w1, w2, w*}, and the marginal of a
spherically symmetric law on a 3-D subspace is again spherically symmetric (N(0, I_d) → N(0, I_3), radial law
χ_3). For deep linear nets the input dimension 3 is a choice of setting.

Depth-1 oracle (THEORY §7, our derivation, not from the paper): f = wᵀx, x ~ N(0, I), exponential loss,
w = a w* + b with b ⊥ w*: R = g(a) e^{‖b‖²/2}, g(a) = erfcx(a/√2), g′(a) = a g(a) − √(2/π), and gradient flow is

    ȧ = −g′(a) e^{‖b‖²/2},      d/dt log‖b‖ = −g(a) e^{‖b‖²/2}.

Rates of the paper are unknown (THEORY §7): angles are fitted, never assumed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
from matplotlib.figure import Figure
from scipy.integrate import solve_ivp
from scipy.special import erfcx, gammaln

from ..threads import torch_threads

SeedLike = int | np.random.Generator
LOSSES = ("exponential", "logistic")
DEPTH1_CHECK_HORIZON = 40.0  # t-range of the simulator-vs-oracle comparison in :func:`reproduce`
E1 = torch.tensor([1.0, 0.0, 0.0], dtype=torch.float64)


# ----------------------------------------------------------------------------------------------- data


@dataclass(frozen=True)
class RadialLaw:
    """Law of ρ = ‖x‖ for x = ρ s: ``kind`` "chi" (ρ ~ χ_k, k = ``param``; x ~ N(0, I_k) when k = d) or
    "point" (ρ = ``param``; x uniform on the sphere of that radius)."""

    kind: str
    param: float

    def __post_init__(self) -> None:
        if self.kind not in ("chi", "point") or not self.param > 0:
            raise ValueError(f"radial law must be 'chi' (degrees of freedom > 0) or 'point' (radius > 0), got "
                             f"{self.kind!r} with parameter {self.param!r}")

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """n independent draws of ρ."""
        if self.kind == "chi":
            return np.sqrt(rng.chisquare(self.param, size=n))
        return np.full(n, float(self.param))

    def quadrature(self, rho_max: float) -> tuple[np.ndarray, np.ndarray]:
        """Nodes and log-weights with Σ exp(logw) h(ρ) ≈ E h(ρ) for h smooth on (0, ∞) but possibly concentrated
        near 0 (h(ρ) = ℓ(ρc) with c ≫ 1): Gauss–Legendre on panels graded geometrically toward 0 (down to
        ρ = 2⁻⁴⁰) and uniform (width ½) above 1; ``rho_max`` truncates the χ density."""
        if self.kind == "point":
            return np.array([float(self.param)]), np.zeros(1)
        k = float(self.param)
        geometric = 2.0 ** -np.arange(40, -1, -1)
        edges = np.concatenate([[0.0], geometric, np.arange(1.5, rho_max + 0.5, 0.5)])
        t, w = np.polynomial.legendre.leggauss(10)
        lo, hi = edges[:-1, None], edges[1:, None]
        rho = (lo + (hi - lo) * (t + 1) / 2).ravel()
        logw = np.log(((hi - lo) * w / 2).ravel())
        log_density = (k - 1) * np.log(rho) - rho**2 / 2 - (k / 2 - 1) * math.log(2) - gammaln(k / 2)
        return rho, logw + log_density


def chi_radial(k: int) -> RadialLaw:
    """ρ ~ χ_k: with s uniform on S^{k−1}, x = ρ s ~ N(0, I_k)."""
    return RadialLaw("chi", float(k))


def unit_radial() -> RadialLaw:
    """ρ = 1: x uniform on the unit sphere."""
    return RadialLaw("point", 1.0)


def spherical_inputs(n: int, d: int, radial: RadialLaw, seed: SeedLike = 0) -> np.ndarray:
    """x_i = ρ_i s_i with s_i = g_i/‖g_i‖ (g_i ~ N(0, I_d)) uniform on S^{d−1} and ρ_i ~ ``radial``, independent."""
    rng = np.random.default_rng(seed)
    g = rng.standard_normal((n, d))
    return g / np.linalg.norm(g, axis=1, keepdims=True) * radial.sample(rng, n)[:, None]


def gaussian_inputs(n: int, d: int, seed: SeedLike = 0) -> np.ndarray:
    """x_i ~ N(0, I_d): the spherically symmetric law with ρ ~ χ_d."""
    return spherical_inputs(n, d, chi_radial(d), seed)


def linear_labels(X: np.ndarray, w_star: np.ndarray) -> np.ndarray:
    """y_i = sign⟨w*, x_i⟩ in {±1} (ties, a null event, go to +1)."""
    return np.where(np.asarray(X) @ np.asarray(w_star) >= 0, 1.0, -1.0)


# --------------------------------------------------------------------------------------- losses


def _log_loss(name: str, s: np.ndarray) -> np.ndarray:
    """log ℓ(s)."""
    if name == "exponential":
        return -s
    softplus = np.logaddexp(0.0, -s)
    return np.where(s > 30.0, -s - 0.5 * np.exp(-np.clip(s, 30.0, 700.0)), np.log(np.maximum(softplus, 1e-300)))


def _log_neg_dloss(name: str, s: np.ndarray) -> np.ndarray:
    """log(−ℓ′(s)); ℓ′ < 0 for both losses."""
    if name == "exponential":
        return -s
    return -np.logaddexp(0.0, s)


def loss_fn(name: str, s: torch.Tensor) -> torch.Tensor:
    """ℓ(s): e^{−s} or log(1 + e^{−s})."""
    if name == "exponential":
        return torch.exp(-s)
    if name == "logistic":
        return torch.nn.functional.softplus(-s)
    raise ValueError(f"unknown loss {name!r}; choose one of {LOSSES}")


# --------------------------------------------------------------------------- radial transform Λ_ℓ


@dataclass(frozen=True)
class RadialTransform:
    """Λ_ℓ(c) = E_ρ ℓ(ρc) as a differentiable torch function: cubic Hermite interpolation of log Λ on the uniform
    grid u_k = u0 + k h in u = asinh(c), from tabulated values ``log_value`` and u-derivatives ``log_slope``
    (built by :func:`radial_transform`)."""

    u0: float
    h: float
    log_value: torch.Tensor
    log_slope: torch.Tensor

    @property
    def c_range(self) -> tuple[float, float]:
        """Interval of c covered by the table."""
        return math.sinh(self.u0), math.sinh(self.u0 + self.h * (self.log_value.numel() - 1))

    def __call__(self, c: torch.Tensor) -> torch.Tensor:
        x = (torch.asinh(c) - self.u0) / self.h
        n = self.log_value.numel()
        if bool(x.min() < 0) or bool(x.max() > n - 1):
            lo, hi = self.c_range
            raise ValueError(f"margin y·f outside the tabulated range [{lo:.3g}, {hi:.3g}]; the dynamics diverged "
                             "or c_min/c_max must be widened")
        i = x.detach().floor().clamp(0, n - 2).long()
        tau = x - i
        y0, y1 = self.log_value[i], self.log_value[i + 1]
        m0, m1 = self.h * self.log_slope[i], self.h * self.log_slope[i + 1]
        tau2, tau3 = tau * tau, tau * tau * tau
        log_lam = ((2 * tau3 - 3 * tau2 + 1) * y0 + (tau3 - 2 * tau2 + tau) * m0
                   + (-2 * tau3 + 3 * tau2) * y1 + (tau3 - tau2) * m1)
        return torch.exp(log_lam)


@lru_cache(maxsize=16)
def radial_transform(loss: str, radial: RadialLaw, c_min: float = -30.0, c_max: float = 1e6,
                     h: float = 0.005) -> RadialTransform:
    """Tabulate log Λ_ℓ(c) and d log Λ/du = (Λ′(c)/Λ(c)) cosh u, with Λ′(c) = E_ρ ρ ℓ′(ρc), on u ∈ [asinh c_min,
    asinh c_max]; the ρ-quadrature is done in log space (log-sum-exp) so e^{ρ|c|} growth cannot overflow."""
    if loss not in LOSSES:
        raise ValueError(f"unknown loss {loss!r}; choose one of {LOSSES}")
    u = np.arange(math.asinh(c_min), math.asinh(c_max) + h, h)
    c = np.sinh(u)
    rho, logw = radial.quadrature(rho_max=abs(c_min) + 4.0 * math.sqrt(radial.param) + 12.0)
    s = c[:, None] * rho[None, :]
    log_value = _logsumexp(logw[None, :] + _log_loss(loss, s))
    log_neg_slope = _logsumexp(logw[None, :] + np.log(rho)[None, :] + _log_neg_dloss(loss, s))
    log_slope = -np.exp(log_neg_slope - log_value) * np.cosh(u)
    return RadialTransform(float(u[0]), h, torch.tensor(log_value), torch.tensor(log_slope))


def _logsumexp(a: np.ndarray) -> np.ndarray:
    top = a.max(axis=1)
    return top + np.log(np.exp(a - top[:, None]).sum(axis=1))


# ------------------------------------------------------------------------------ sphere quadrature


@dataclass(frozen=True)
class SphereQuadrature:
    """Quadrature for E_{s ~ unif(S²)} h(s) with s = (cos θ, sin θ cos φ, sin θ sin φ), dμ = sin θ dθ dφ/(4π),
    for h smooth except on great circles {nᵀs = 0} (``normals``).

    φ: ``n_arcs`` equal arcs further split at the φ of every pairwise intersection n_i × n_j, ``q_phi`` Gauss
    nodes per arc. θ (for each φ node): breakpoints θ_k(φ) where n_kᵀs = 0, each surrounded by panels
    graded geometrically (sizes h0·2^{−j}, j < ``levels``) to resolve boundary layers of width ~1/‖w‖, plus
    ``n_fixed`` equal panels on [0, π]; ``q_theta`` Gauss nodes per panel.
    """

    n_fixed: int = 8
    levels: int = 16
    h0: float = 0.5
    q_theta: int = 4
    n_arcs: int = 8
    q_phi: int = 6

    def nodes(self, normals: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Points S (N × 3) and weights (N,) summing to ≈ 1, adapted to the kink circles of ``normals`` (K × 3)."""
        normals = normals.detach().to(torch.float64)
        phi, w_phi = self._phi_nodes(normals)
        alpha = normals[:, 0]
        p = torch.cos(phi)[:, None] * normals[:, 1] + torch.sin(phi)[:, None] * normals[:, 2]  # (P, K)
        sgn = torch.where(alpha >= 0, 1.0, -1.0).to(torch.float64)
        theta_k = torch.atan2(alpha.abs().expand_as(p), -p * sgn)  # n_kᵀs = 0 at θ_k ∈ [0, π]
        steps = self.h0 * 2.0 ** -torch.arange(self.levels, dtype=torch.float64)
        offsets = torch.cat([torch.zeros(1, dtype=torch.float64), steps, -steps])
        graded = (theta_k[:, :, None] + offsets).reshape(phi.numel(), -1)
        fixed = torch.linspace(0.0, math.pi, self.n_fixed + 1, dtype=torch.float64).expand(phi.numel(), -1)
        mesh = torch.sort(torch.cat([graded.clamp(0.0, math.pi), fixed], dim=1), dim=1).values
        theta, w_theta = _gauss_panels(mesh, self.q_theta)
        sin_t = torch.sin(theta)
        S = torch.stack([torch.cos(theta), sin_t * torch.cos(phi)[:, None], sin_t * torch.sin(phi)[:, None]], dim=-1)
        weights = w_theta * sin_t * w_phi[:, None] / (4.0 * math.pi)
        return S.reshape(-1, 3), weights.reshape(-1)

    def _phi_nodes(self, normals: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        cuts = [torch.arange(self.n_arcs, dtype=torch.float64) * (2.0 * math.pi / self.n_arcs)]
        for i in range(normals.shape[0]):
            for j in range(i):
                c = torch.linalg.cross(normals[i], normals[j])
                base = torch.atan2(c[2], c[1])
                cuts.append(torch.stack([base, base + math.pi]).remainder(2.0 * math.pi))
        cuts = torch.sort(torch.cat(cuts)).values
        edges = torch.cat([cuts, cuts[:1] + 2.0 * math.pi])[None, :]
        phi, w_phi = _gauss_panels(edges, self.q_phi)
        return phi[0], w_phi[0]


def _gauss_panels(mesh: torch.Tensor, q: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Gauss–Legendre nodes/weights (q per panel) on the panels between consecutive entries of each row of the
    sorted ``mesh`` (B × M) → (B × (M−1)q); zero-width panels get zero weight."""
    t, w = np.polynomial.legendre.leggauss(q)
    t = torch.tensor((t + 1.0) / 2.0)
    w = torch.tensor(w / 2.0)
    lo, width = mesh[:, :-1, None], (mesh[:, 1:] - mesh[:, :-1])[:, :, None]
    return (lo + width * t).reshape(mesh.shape[0], -1), (width * w).reshape(mesh.shape[0], -1)


# ------------------------------------------------------------------------------------------- models


def angle_to(w: torch.Tensor, target: torch.Tensor) -> float:
    """Angle between w and the unit vector ``target``, atan2(‖w − (wᵀt)t‖, wᵀt) (accurate for tiny angles)."""
    along = torch.dot(w, target)
    return float(torch.atan2(torch.linalg.vector_norm(w - along * target), along))


class LinearModel:
    """f(x) = wᵀx (depth 1); w = a w* + b in the oracle's coordinates."""

    def __init__(self, w: np.ndarray):
        self.w = torch.tensor(w, dtype=torch.float64, requires_grad=True)

    def parameters(self) -> list[torch.Tensor]:
        return [self.w]

    def __call__(self, S: torch.Tensor) -> torch.Tensor:
        return S @ self.w

    def kink_normals(self) -> torch.Tensor:
        return torch.zeros((0, 3), dtype=torch.float64)

    def angles(self) -> dict[str, float]:
        return {"w": angle_to(self.w.detach(), E1)}


class TwoNodeNet:
    """f(x) = relu(w1ᵀx) − relu(w2ᵀx); directional convergence means w1 → w*, w2 → −w* in direction."""

    def __init__(self, w1: np.ndarray, w2: np.ndarray):
        self.w1 = torch.tensor(w1, dtype=torch.float64, requires_grad=True)
        self.w2 = torch.tensor(w2, dtype=torch.float64, requires_grad=True)

    def parameters(self) -> list[torch.Tensor]:
        return [self.w1, self.w2]

    def __call__(self, S: torch.Tensor) -> torch.Tensor:
        return torch.relu(S @ self.w1) - torch.relu(S @ self.w2)

    def kink_normals(self) -> torch.Tensor:
        return torch.stack([self.w1, self.w2]).detach()

    def angles(self) -> dict[str, float]:
        return {"w1": angle_to(self.w1.detach(), E1), "w2": angle_to(self.w2.detach(), -E1)}


class DeepLinearNet:
    """f(x) = W_N⋯W_1 x with W_1: k_1 × 3, …, W_N: 1 × k_{N−1}; its direction is that of the effective row."""

    def __init__(self, weights: list[np.ndarray]):
        self.weights = [torch.tensor(W, dtype=torch.float64, requires_grad=True) for W in weights]

    def parameters(self) -> list[torch.Tensor]:
        return list(self.weights)

    def effective(self) -> torch.Tensor:
        """The row vector W_N⋯W_1 ∈ R³."""
        v = self.weights[-1]
        for W in reversed(self.weights[:-1]):
            v = v @ W
        return v[0]

    def __call__(self, S: torch.Tensor) -> torch.Tensor:
        return S @ self.effective()

    def kink_normals(self) -> torch.Tensor:
        return torch.zeros((0, 3), dtype=torch.float64)

    def angles(self) -> dict[str, float]:
        return {"effective": angle_to(self.effective().detach(), E1)}


Model = LinearModel | TwoNodeNet | DeepLinearNet


def deep_linear_init(widths: list[int], seed: SeedLike = 0) -> list[np.ndarray]:
    """W_l ~ N(0, 1/k_{l−1}) entrywise for layer sizes ``widths`` = [3, k_1, …, 1]."""
    rng = np.random.default_rng(seed)
    return [rng.standard_normal((k_out, k_in)) / math.sqrt(k_in) for k_in, k_out in zip(widths, widths[1:])]


# ----------------------------------------------------------------------------------- population GD


class SpherePopulation:
    """Population risk R = E_s Λ_ℓ(y(s) f(s)) for inputs in R³ with w* = e1 and a spherically symmetric law."""

    def __init__(self, loss: str = "exponential", radial: RadialLaw = chi_radial(3),
                 quadrature: SphereQuadrature = SphereQuadrature()):
        self.loss = loss
        self.quadrature = quadrature
        self.transform = radial_transform(loss, radial)

    def risk(self, model: Model) -> torch.Tensor:
        """Differentiable population risk of ``model`` (quadrature nodes adapted to its current kinks)."""
        S, weights = self.quadrature.nodes(torch.cat([E1[None, :], model.kink_normals()]))
        y = torch.sign(S[:, 0])  # never 0: θ = π/2 is a panel edge and Gauss nodes are interior
        return (weights * self.transform(y * model(S))).sum()


@dataclass
class Trajectory:
    """Population GD record at t = kη: risk, the angles of ``model.angles()`` (radians) and the flattened
    parameters (one row per step)."""

    t: np.ndarray
    loss: np.ndarray
    angles: dict[str, np.ndarray]
    params: np.ndarray
    reached_floor: bool


def population_gd(model: Model, population: SpherePopulation, eta: float, t_max: float,
                  angle_floor: float = 1e-10) -> Trajectory:
    """Full-population gradient descent θ ← θ − η∇R(θ) up to time t_max = (steps)·η, recording every step
    (single-threaded, see :func:`cvxnn.threads.torch_threads`).

    Stops early once every angle is below ``angle_floor``: beyond it float64 cancellation in the ⊥ components of
    the gradient (sums of O(1) terms with a result of order angle) would dominate.
    """
    with torch_threads(1):
        return _population_gd(model, population, eta, t_max, angle_floor)


def _population_gd(model: Model, population: SpherePopulation, eta: float, t_max: float,
                   angle_floor: float) -> Trajectory:
    params = model.parameters()
    times, losses, angles, history = [], [], {k: [] for k in model.angles()}, []
    n_steps = int(round(t_max / eta))
    reached = False
    for k in range(n_steps + 1):
        risk = population.risk(model)
        current = model.angles()
        times.append(k * eta)
        losses.append(float(risk.detach()))
        history.append(torch.cat([p.detach().reshape(-1) for p in params]).numpy().copy())
        for key, value in current.items():
            angles[key].append(value)
        reached = max(current.values()) < angle_floor
        if k == n_steps or reached:
            break
        grads = torch.autograd.grad(risk, params)
        with torch.no_grad():
            for p, g in zip(params, grads):
                p -= eta * g
    return Trajectory(np.array(times), np.array(losses), {k: np.array(v) for k, v in angles.items()},
                      np.array(history), reached)


def monte_carlo_risk(model: Model, loss: str, X: np.ndarray) -> tuple[float, float]:
    """Mean of ℓ(y f(x)) over a fixed sample X (n × 3, w* = e1) and its standard error."""
    with torch.no_grad():
        Xt = torch.as_tensor(X, dtype=torch.float64)
        values = loss_fn(loss, torch.as_tensor(linear_labels(X, E1.numpy())) * model(Xt))
    return float(values.mean()), float(values.std() / math.sqrt(values.numel()))


# ------------------------------------------------------------------------------------ depth-1 oracle


def g_depth1(a: np.ndarray | float) -> np.ndarray | float:
    """g(a) = E_{z~N(0,1)} e^{−a|z|} = erfcx(a/√2)."""
    return erfcx(np.asarray(a) / math.sqrt(2.0))


def g_depth1_prime(a: np.ndarray | float) -> np.ndarray | float:
    """g′(a) = a g(a) − √(2/π)."""
    return np.asarray(a) * g_depth1(a) - math.sqrt(2.0 / math.pi)


def depth1_oracle(t_eval: np.ndarray, a0: float = 0.5, b0: float = 1.0, rtol: float = 1e-10) -> tuple[np.ndarray,
                                                                                                     np.ndarray]:
    """Solve ȧ = −g′(a)e^{‖b‖²/2}, d/dt log‖b‖ = −g(a)e^{‖b‖²/2} (LSODA) from (a0, ‖b0‖); returns a(t), log‖b(t)‖."""

    def rhs(_t: float, state: np.ndarray) -> list[float]:
        a, log_b = state
        growth = math.exp(math.exp(2.0 * log_b) / 2.0)
        return [-float(g_depth1_prime(a)) * growth, -float(g_depth1(a)) * growth]

    t_eval = np.asarray(t_eval, dtype=np.float64)
    sol = solve_ivp(rhs, (0.0, float(t_eval[-1])), [a0, math.log(b0)], method="LSODA", t_eval=t_eval,
                    rtol=rtol, atol=1e-12)
    if not sol.success:
        raise RuntimeError(f"depth-1 oracle ODE failed: {sol.message}")
    return sol.y[0], sol.y[1]


def depth1_asymptotics(t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """a(t) ~ (3√(2/π) t)^{1/3} and log‖b(t)‖ ~ −(3/2)√(2/π)(3√(2/π))^{−1/3} t^{2/3} (THEORY §7)."""
    k = math.sqrt(2.0 / math.pi)
    t = np.asarray(t, dtype=np.float64)
    return (3.0 * k * t) ** (1.0 / 3.0), -1.5 * k * (3.0 * k) ** (-1.0 / 3.0) * t ** (2.0 / 3.0)


# ------------------------------------------------------------------------------------------ rate fits


def _linear_fit(x: np.ndarray, y: np.ndarray) -> dict[str, float]:
    slope, intercept = np.polyfit(x, y, 1)
    resid = y - (slope * x + intercept)
    r2 = 1.0 - float(resid @ resid) / float(((y - y.mean()) ** 2).sum())
    return {"slope": float(slope), "intercept": float(intercept), "r2": r2}


def fit_angle_rates(t: np.ndarray, angle: np.ndarray, t_min: float) -> dict:
    """Least-squares fits of log(angle) on t ≥ t_min: against t^{2/3} (angle ~ e^{−c t^{2/3}}), against log t
    (angle ~ t^{−p}), and against t^q with q chosen on the grid 0.01, 0.02, …, 1.5 to maximize R² ("best_power";
    as q → 0 the t^q fit becomes the log t fit, so a best q at the grid's lower end means a power law)."""
    mask = (t >= t_min) & (angle > 0)
    t, log_angle = t[mask], np.log(angle[mask])
    powers = np.round(np.arange(0.01, 1.5001, 0.01), 2)
    fits = [_linear_fit(t**q, log_angle) for q in powers]
    best = int(np.argmax([f["r2"] for f in fits]))
    return {
        "window": [float(t[0]), float(t[-1])],
        "vs_t_two_thirds": _linear_fit(t ** (2.0 / 3.0), log_angle),
        "vs_log_t": _linear_fit(np.log(t), log_angle),
        "best_power": {"q": float(powers[best]), **fits[best]},
    }


# ------------------------------------------------------------------------------------------ reproduce


@dataclass(frozen=True)
class _Run:
    label: str
    model: str
    loss: str
    radial: RadialLaw


def _make_model(kind: str, rng: np.random.Generator) -> Model:
    if kind == "two-node":
        return TwoNodeNet(rng.standard_normal(3), rng.standard_normal(3))
    return DeepLinearNet(deep_linear_init([3, 3, 3, 1], rng))


def _verdict_line(claims: list[dict]) -> str:
    failed = [c["claim"] for c in claims if not c["claim_holds"]]
    line = f"**Verdicts**: {len(claims) - len(failed)} of {len(claims)} claims hold"
    return line + (" (fails: " + "; ".join(failed) + ")." if failed else ".")


def _thin(tr: Trajectory, max_points: int = 400) -> Trajectory:
    """The trajectory at ≤ max_points steps, spaced both linearly and logarithmically in t (for plots and JSON)."""
    n = tr.t.size
    idx = np.unique(np.concatenate([np.linspace(0, n - 1, max_points // 2),
                                    np.geomspace(1, max(n - 1, 1), max_points // 2)]).astype(int))
    return Trajectory(tr.t[idx], tr.loss[idx], {k: v[idx] for k, v in tr.angles.items()}, tr.params[idx],
                      tr.reached_floor)


def _plot_angles(trajs: dict[str, Trajectory], out_dir: Path) -> str:
    name = "directional_angles.png"
    fig = Figure(figsize=(11.0, 4.4))
    ax_pow, ax_log = fig.subplots(1, 2)
    for i, (label, tr) in enumerate(trajs.items()):
        for j, (key, ang) in enumerate(tr.angles.items()):
            style = dict(color=f"C{i}", ls="-" if j == 0 else "--", label=f"{label}: {key}")
            ax_pow.semilogy(tr.t ** (2.0 / 3.0), ang, **style)
            ax_log.loglog(tr.t[1:], ang[1:], **style)
    ax_pow.set_xlabel("$t^{2/3}$")
    ax_log.set_xlabel("t")
    for ax in (ax_pow, ax_log):
        ax.set_ylabel("angle to ±w* (rad)")
    ax_pow.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out_dir / name, dpi=110)
    return name


def _plot_losses(trajs: dict[str, Trajectory], out_dir: Path) -> str:
    name = "directional_loss.png"
    fig = Figure(figsize=(6.4, 4.4))
    ax = fig.subplots()
    for i, (label, tr) in enumerate(trajs.items()):
        ax.loglog(tr.t[1:], tr.loss[1:], color=f"C{i}", label=label)
    ax.set_xlabel("t")
    ax.set_ylabel("population risk")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out_dir / name, dpi=110)
    return name


def _plot_oracle(t: np.ndarray, a: np.ndarray, log_b: np.ndarray, sims: list[dict], out_dir: Path) -> str:
    name = "directional_depth1_oracle.png"
    a_asym, log_b_asym = depth1_asymptotics(t)
    fig = Figure(figsize=(11.0, 4.4))
    ax_a, ax_b = fig.subplots(1, 2)
    ax_a.loglog(t, a, label="ODE a(t)")
    ax_a.loglog(t, a_asym, "k--", lw=0.8, label=r"$(3\sqrt{2/\pi}\,t)^{1/3}$")
    ax_b.loglog(t, -log_b, label="ODE −log‖b(t)‖")
    ax_b.loglog(t, -log_b_asym, "k--", lw=0.8, label=r"$\frac{3}{2}\sqrt{2/\pi}\,(3\sqrt{2/\pi})^{-1/3}\,t^{2/3}$")
    for sim in sims:
        ts = np.asarray(sim["t"][1:])
        ax_a.loglog(ts, sim["a"][1:], ":", lw=2, label=f"population GD, η = {sim['eta']:g}")
        ax_b.loglog(ts, -np.asarray(sim["log_b"][1:]), ":", lw=2, label=f"population GD, η = {sim['eta']:g}")
    for ax in (ax_a, ax_b):
        ax.set_xlabel("t")
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out_dir / name, dpi=110)
    return name


def reproduce(out_dir: Path, quick: bool = False, seed: int = 0) -> dict:
    """Directional convergence of population GD (THEORY §7, §8.3 E) plus the depth-1 oracle.

    Runs two-node and deep linear (3 → 3 → 3 → 1) nets under exponential and logistic loss on Gaussian inputs,
    and the two-node net under exponential loss on uniform-on-the-sphere inputs; η = 0.25 up to t = 40 (quick)
    or 600 (full), stopping early when all angles fall below 1e-10. Initial weights (and the Monte Carlo samples
    that cross-check the quadrature at initialization) come from ``default_rng(seed)``.
    """
    out_dir = Path(out_dir)
    eta, t_max = 0.25, (40.0 if quick else 600.0)
    gaussian, sphere = chi_radial(3), unit_radial()
    runs = [
        _Run("two-node, exponential", "two-node", "exponential", gaussian),
        _Run("two-node, logistic", "two-node", "logistic", gaussian),
        _Run("deep linear, exponential", "deep-linear", "exponential", gaussian),
        _Run("deep linear, logistic", "deep-linear", "logistic", gaussian),
        _Run("two-node, exponential, unit sphere", "two-node", "exponential", sphere),
    ]
    rng = np.random.default_rng(seed)
    trajs: dict[str, Trajectory] = {}
    mc_checks: dict[str, dict] = {}
    for run in runs:
        model = _make_model(run.model, rng)
        population = SpherePopulation(run.loss, run.radial)
        mc_checks[run.label] = _mc_check(model, population, spherical_inputs(200_000, 3, run.radial, rng))
        trajs[run.label] = population_gd(model, population, eta, t_max)

    # depth-1: the simulator (linear model from the oracle's initial point) at two steps, and the ODE itself
    sims = [_depth1_simulation(step, DEPTH1_CHECK_HORIZON) for step in (eta, eta / 5.0)]
    t_ode = np.logspace(-2, 6, 161)
    ode_a, ode_log_b = depth1_oracle(t_ode)
    a_asym, log_b_asym = depth1_asymptotics(t_ode)

    claims, fits, loss_slopes = [], {}, {}
    for label, tr in trajs.items():
        initial = {k: float(v[0]) for k, v in tr.angles.items()}
        final = {k: float(v[-1]) for k, v in tr.angles.items()}
        claims.append({
            "claim": f"directional convergence ({label}): final angle < 10% of initial for every node",
            "measured": {"initial_angle": initial, "final_angle": final, "t_final": float(tr.t[-1])},
            "claim_holds": all(final[k] < 0.1 * initial[k] for k in final),
        })
        fits[label] = {k: fit_angle_rates(tr.t, v, t_min=tr.t[-1] / 10.0) for k, v in tr.angles.items()}
        window = tr.t >= tr.t[-1] / 10.0
        loss_slopes[label] = _linear_fit(np.log(tr.t[window]), np.log(tr.loss[window]))
    ratio_a = float(ode_a[-1] / a_asym[-1])
    claims.append({
        "claim": "depth-1 ODE matches the asymptotics a(t) ~ (3√(2/π) t)^{1/3}: ratio at t = 1e6 within 1%",
        "measured": {"a_ratio_at_1e6": ratio_a, "log_b_ratio_at_1e6": float(ode_log_b[-1] / log_b_asym[-1])},
        "claim_holds": abs(ratio_a - 1.0) < 0.01,
    })

    shown = {label: _thin(tr) for label, tr in trajs.items()}
    figures = [_plot_angles(shown, out_dir), _plot_losses(shown, out_dir),
               _plot_oracle(t_ode, ode_a, ode_log_b, sims, out_dir)]
    setting = (
        f"Inputs in R³ (w* = e1; for Gaussian inputs the 3-D reduction is exact), y = sign⟨w*, x⟩ (zero margin). "
        f"Population risk R = E_s Λ_ℓ(y f(s)), Λ_ℓ(c) = E_ρ ℓ(ρc), by kink-adapted quadrature (no sampling). "
        f"Full-population GD, η = {eta}, t = kη ≤ {t_max:g} (early stop when all angles < 1e-10); initial weights "
        f"from `default_rng({seed})`: two-node w1, w2 ~ N(0, I₃); deep linear 3→3→3→1 with W_l ~ N(0, 1/fan_in). "
        f"Rate fits: log(angle) regressed on t^{{2/3}}, on log t, and on t^q (best q on a grid) over "
        f"t ∈ [t_end/10, t_end]. Depth-1 oracle: LSODA, rtol 1e-10, a(0) = 0.5, ‖b(0)‖ = 1."
    )
    data = {
        "eta": eta,
        "t_max": t_max,
        "trajectories": {label: {"t": tr.t.tolist(), "loss": tr.loss.tolist(),
                                 "angles": {k: v.tolist() for k, v in tr.angles.items()},
                                 "reached_angle_floor": tr.reached_floor} for label, tr in shown.items()},
        "rate_fits": fits,
        "loss_loglog_fits": loss_slopes,
        "quadrature_vs_monte_carlo_at_init": mc_checks,
        "depth1_ode": {"t": t_ode.tolist(), "a": ode_a.tolist(), "log_b": ode_log_b.tolist(),
                       "a_asymptotic": a_asym.tolist(), "log_b_asymptotic": log_b_asym.tolist()},
        "depth1_simulator": sims,
    }
    markdown = "\n\n".join([
        "**Claim** (THEORY.md §7, abstract only): with spherically symmetric inputs and y = sign⟨w*, x⟩, gradient "
        "flow/descent on exponential or logistic loss converges in direction (two-node nets: w1 → w*, w2 → −w*; "
        "deep linear nets: W_N⋯W_1 → w*), with rates the abstract calls exact but does not state; no rate is "
        "assumed here, the measured angles are fitted instead.",
        f"**Setting.** {setting}",
        "**Rate fits** (measured, not claims):\n\n" + _fits_table(fits),
        "Risk vs t on the same windows, log-log slope (THEORY §7 derives Θ(t^{-1/3}) for depth 1 only): "
        + "; ".join(f"{k}: {v['slope']:.3f} (R² {v['r2']:.4f})" for k, v in loss_slopes.items()) + ".",
        "**Depth-1 oracle.** ODE vs asymptotics at t = 1e6: a ratio "
        f"{ratio_a:.5f}, log‖b‖ ratio {ode_log_b[-1] / log_b_asym[-1]:.5f}. Population GD on the linear model vs "
        f"the ODE (its gradient flow) for t ≤ {DEPTH1_CHECK_HORIZON:g}: "
        + "; ".join(f"η = {sim['eta']:g}: max relative error of a {sim['max_rel_error_a']:.2e}, max error of "
                    f"log‖b‖ {sim['max_abs_error_log_b']:.2e}" for sim in sims)
        + " (Euler discretization: the error should shrink ∝ η).",
        "**Quadrature vs Monte Carlo** (2·10⁵ samples of the run's input law, risk at initialization): "
        + "; ".join(f"{k}: quadrature {v['quadrature']:.5f}, MC {v['monte_carlo']:.5f} ± {v['mc_std_error']:.5f}"
                    for k, v in mc_checks.items()) + ".",
        _verdict_line(claims),
    ])
    return {
        "name": "directional",
        "title": "Lin & Zhang: directional convergence of population gradient descent",
        "setting": setting,
        "claims": claims,
        "figures": figures,
        "data": data,
        "markdown": markdown,
    }


def _mc_check(model: Model, population: SpherePopulation, X: np.ndarray) -> dict[str, float]:
    mean, err = monte_carlo_risk(model, population.loss, X)
    with torch.no_grad():
        quadrature = population.risk(model).item()
    return {"quadrature": quadrature, "monte_carlo": mean, "mc_std_error": err}


def _depth1_simulation(eta: float, t_max: float) -> dict:
    """Population GD on f = wᵀx (Gaussian x, exponential loss) from w = (0.5, 1, 0), i.e. a(0) = 0.5, ‖b(0)‖ = 1,
    in the oracle's coordinates a = w₁, log‖b‖ = log‖(w₂, w₃)‖, with its deviation from the ODE at the same t."""
    sim = population_gd(LinearModel(np.array([0.5, 1.0, 0.0])), SpherePopulation("exponential", chi_radial(3)),
                        eta, t_max)
    a, log_b = sim.params[:, 0], np.log(np.linalg.norm(sim.params[:, 1:], axis=1))
    ode_a, ode_log_b = depth1_oracle(sim.t)
    return {"eta": eta, "t": sim.t.tolist(), "a": a.tolist(), "log_b": log_b.tolist(),
            "max_rel_error_a": float(np.max(np.abs(a / ode_a - 1.0))),
            "max_abs_error_log_b": float(np.max(np.abs(log_b - ode_log_b)))}


def _fits_table(fits: dict) -> str:
    rows = ["| run | node | window | slope vs t^{2/3} | R² | slope vs log t | R² | best q | R² |",
            "|---|---|---|---|---|---|---|---|---|"]
    for label, per_node in fits.items():
        for key, f in per_node.items():
            rows.append(
                f"| {label} | {key} | [{f['window'][0]:.3g}, {f['window'][1]:.3g}] "
                f"| {f['vs_t_two_thirds']['slope']:.4g} | {f['vs_t_two_thirds']['r2']:.4f} "
                f"| {f['vs_log_t']['slope']:.4g} | {f['vs_log_t']['r2']:.4f} "
                f"| {f['best_power']['q']:.2f} | {f['best_power']['r2']:.4f} |")
    return "\n".join(rows)
