"""Gradient-training trajectories and the convex lower envelope they chase (THEORY §2.5, blog item 4).

:func:`train_with_trajectory` runs full-batch gradient descent (or Adam) on

    NC(U, α) = ½‖(X̃Uᵀ)_+ α − y‖² + (β/2)(‖U‖_F² + ‖α‖²)

and stores, at chosen steps, the objective, each neuron's activation pattern D(u_j), direction
u_j/‖u_j‖, norm ‖u_j‖ and output weight α_j. :func:`convex_along_trajectory` then solves (CVX) on
the patterns met so far, 𝒟_t = ∪_{s≤t} {D(u_j(s))}: since 𝒟_t grows, q*(𝒟_t) is non-increasing;
since Ψ(θ_t) is feasible on 𝒟_t, q*(𝒟_t) ≤ NC(θ_t); and q*(𝒟_t) ≥ q*(𝒫) = p*. At a stationary end
point (no ties) q*(own patterns) = NC(θ_T), so the envelope meets the curve there.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from .data import add_bias, as_matrix, as_targets
from .network import TwoLayerNet
from .nonconvex import _check_int, _check_nonneg_float, _check_positive_float, _initial_weights
from .patterns import Patterns, _unique_columns
from .training import _check_beta, fit

TRAJECTORY_OPTIMIZERS = ("gd", "adam")
ADAM_BETAS = (0.9, 0.999)
ADAM_EPS = 1e-8
DEFAULT_RECORDS = 30


@dataclass
class Trajectory:
    """A recorded training run; index t refers to ``steps[t]`` (T records, m neurons, X̃ is n × d̃).

    objectives: (T,) NC at the recorded steps.
    masks: (T, n, m) activation patterns, masks[t, k, j] = [x̃_kᵀu_j ≥ 0].
    directions: (T, m, d̃) u_j/‖u_j‖ (0 where u_j = 0); norms: (T, m) ‖u_j‖.
    alphas: (T, m) output weights α_j (signed; |α_j| is ``np.abs(alphas)``).
    """

    steps: np.ndarray
    objectives: np.ndarray
    masks: np.ndarray
    directions: np.ndarray
    norms: np.ndarray
    alphas: np.ndarray
    beta: float
    bias: bool
    optimizer: str
    lr: float
    seed: int

    def network(self, t: int) -> TwoLayerNet:
        """The network at record t."""
        return TwoLayerNet(self.directions[t] * self.norms[t][:, None], self.alphas[t], self.bias)

    @property
    def width(self) -> int:
        return self.alphas.shape[1]


def default_record_steps(epochs: int, n_records: int = DEFAULT_RECORDS) -> np.ndarray:
    """0 and about ``n_records`` steps spaced geometrically up to ``epochs`` (included)."""
    return np.unique(np.r_[0, np.geomspace(1, epochs, n_records).round().astype(int)])


def nc_value_and_grad(Xt: np.ndarray, y: np.ndarray, U: np.ndarray, a: np.ndarray, beta: float
                      ) -> tuple[float, np.ndarray, np.ndarray]:
    """NC and its gradient, with ReLU′(0) = 0 (as torch):

        r = (X̃Uᵀ)_+ α − y,   ∇_α = (X̃Uᵀ)_+ᵀ r + βα,   ∇_{u_j} = α_j X̃ᵀ(1[X̃u_j > 0] ∘ r) + βu_j.
    """
    Z = Xt @ U.T
    H = np.maximum(Z, 0.0)
    r = H @ a - y
    value = 0.5 * float(r @ r) + 0.5 * beta * float(np.sum(U * U) + a @ a)
    grad_a = H.T @ r + beta * a
    grad_U = ((Z > 0) * r[:, None] * a[None, :]).T @ Xt + beta * U
    return value, grad_U, grad_a


class _Optimizer:
    """The update rules of torch.optim.SGD (momentum, no dampening) and torch.optim.Adam (defaults)."""

    def __init__(self, kind: str, lr: float, momentum: float) -> None:
        self.kind, self.lr, self.momentum = kind, lr, momentum
        self.state: list[dict] = []
        self.t = 0

    def step(self, params: list[np.ndarray], grads: list[np.ndarray]) -> None:
        self.t += 1
        if not self.state:
            self.state = [{"m": np.zeros_like(p), "v": np.zeros_like(p)} for p in params]
        b1, b2 = ADAM_BETAS
        for p, g, s in zip(params, grads, self.state):
            if self.kind == "gd":
                s["m"] = g.copy() if self.t == 1 else self.momentum * s["m"] + g
                p -= self.lr * (s["m"] if self.momentum else g)
            else:
                s["m"] = b1 * s["m"] + (1 - b1) * g
                s["v"] = b2 * s["v"] + (1 - b2) * g * g
                denom = np.sqrt(s["v"]) / np.sqrt(1 - b2**self.t) + ADAM_EPS
                p -= (self.lr / (1 - b1**self.t)) * s["m"] / denom


def train_with_trajectory(X, y, beta: float, width: int, optimizer: str = "gd", lr: float = 1e-2,
                          epochs: int = 1000, record_steps: Iterable[int] | None = None, seed: int = 0,
                          bias: bool = False, init_scale: float = 1.0, momentum: float = 0.0) -> Trajectory:
    """Full-batch training of NC recorded at ``record_steps`` (default: :func:`default_record_steps`).

    Same initialization as :func:`cvxnn.nonconvex.train_nonconvex` (W1 ~ N(0, s²/d̃), w2 ~ N(0, s²/m)
    from ``torch.Generator().manual_seed(seed)``) and the same update rules as its "gd" and "adam"
    optimizers, run in float64 NumPy with the analytic gradient (ReLU′(0) = 0): the recorded
    objectives equal that function's history at the same steps (to round-off), about 15× faster on
    small problems. Unlike it, every record is the current iterate (not the best so far).

    Raises FloatingPointError when the objective becomes NaN or inf (lower ``lr``).
    """
    Xm = as_matrix(X)
    yv = as_targets(y, Xm.shape[0])
    Xt = add_bias(Xm) if bias else Xm
    beta = _check_beta(beta)
    width = _check_int(width, "width", 1)
    epochs = _check_int(epochs, "epochs", 1)
    seed = _check_int(seed, "seed", 0)
    lr = _check_positive_float(lr, "lr")
    init_scale = _check_nonneg_float(init_scale, "init_scale")
    momentum = _check_nonneg_float(momentum, "momentum")
    if optimizer not in TRAJECTORY_OPTIMIZERS:
        raise ValueError(f"optimizer must be one of {TRAJECTORY_OPTIMIZERS}, got {optimizer!r}.")
    if optimizer == "adam" and momentum != 0.0:
        raise ValueError("momentum applies to optimizer 'gd' only.")
    record = _record_steps(record_steps, epochs)
    W1_0, w2_0 = _initial_weights(None, width, Xt.shape[1], init_scale, seed)
    U, a = W1_0.numpy().copy(), w2_0.numpy().copy()
    opt = _Optimizer(optimizer, lr, momentum)
    rows: list[tuple] = []
    wanted = set(record.tolist())
    for step in range(record[-1] + 1):
        with np.errstate(over="ignore", invalid="ignore"):  # divergence is reported just below
            value, grad_U, grad_a = nc_value_and_grad(Xt, yv, U, a, beta)
        if not np.isfinite(value):
            raise FloatingPointError(f"the objective became {value} at step {step}; lower lr (now {lr}).")
        if step in wanted:
            rows.append((step, value, Xt @ U.T >= 0, U.copy(), a.copy()))
        opt.step([U, a], [grad_U, grad_a])
    return _as_trajectory(rows, beta, bias, optimizer, lr, seed)


def _record_steps(record_steps: Iterable[int] | None, epochs: int) -> np.ndarray:
    steps = default_record_steps(epochs) if record_steps is None else np.unique(np.asarray(list(record_steps)))
    if steps.size == 0 or steps.dtype.kind not in "iu" or steps[0] < 0 or steps[-1] > epochs:
        raise ValueError(f"record_steps must be integers in [0, epochs={epochs}], got {record_steps!r}.")
    return steps


def _as_trajectory(rows: list[tuple], beta: float, bias: bool, optimizer: str, lr: float, seed: int) -> Trajectory:
    steps, values, masks, Us, alphas = zip(*rows)
    U = np.array(Us)
    norms = np.linalg.norm(U, axis=2)
    directions = U / np.where(norms > 0, norms, 1.0)[:, :, None]
    return Trajectory(np.array(steps), np.array(values), np.array(masks), directions, norms, np.array(alphas),
                      beta, bias, optimizer, lr, seed)


@dataclass
class ConvexEnvelope:
    """q*(patterns met so far) along a :class:`Trajectory` (one entry per record).

    convex_objectives[t] = q*(𝒟_t), 𝒟_t = ∪_{s≤t} {D(u_j(s)) : ‖u_j(s)‖|α_j(s)| > 0, D ≠ 0};
    lower_bounds[t]: the dual value certified on 𝒟_t (≤ q*(𝒟_t));
    n_patterns[t] = |𝒟_t|; patterns: the final union 𝒟_T.
    """

    steps: np.ndarray
    network_objectives: np.ndarray
    convex_objectives: np.ndarray
    lower_bounds: np.ndarray
    n_patterns: np.ndarray
    patterns: Patterns


def convex_along_trajectory(traj: Trajectory, X, y, beta: float) -> ConvexEnvelope:
    """Solve (CVX) on the patterns met so far at every record of ``traj`` (refit only when new ones appear).

    The all-zero pattern adds nothing to (CVX) and is left out; with no pattern q*(∅) = ½‖y‖².
    """
    Xm = as_matrix(X)
    yv = as_targets(y, Xm.shape[0])
    beta = _check_beta(beta)
    if traj.masks.shape[1] != Xm.shape[0]:
        raise ValueError(f"the trajectory was recorded on {traj.masks.shape[1]} samples but X has {Xm.shape[0]}.")
    union = np.zeros((Xm.shape[0], 0), dtype=bool)
    value = lower = 0.5 * float(yv @ yv)
    convex, lowers, counts = [], [], []
    for t in range(len(traj.steps)):
        active = (traj.norms[t] * np.abs(traj.alphas[t]) > 0) & traj.masks[t].any(axis=0)
        grown = np.hstack([union, traj.masks[t][:, active]])
        grown = grown[:, _unique_columns(grown)]
        if grown.shape[1] > union.shape[1]:
            union = grown
            res = fit(Xm, yv, beta, patterns=Patterns(union, method="trajectory"), bias=traj.bias)
            value, lower = res.objective, res.lower_bound
        convex.append(value)
        lowers.append(lower)
        counts.append(union.shape[1])
    return ConvexEnvelope(traj.steps.copy(), traj.objectives.copy(), np.array(convex), np.array(lowers),
                          np.array(counts), Patterns(union, method="trajectory"))
