"""Train the same two-layer network the convex program solves, by gradient methods (PyTorch).

The architecture is Linear(d̃, m, bias=False) → σ → Linear(m, c, bias=False) applied to
X̃ (X with a ones column when ``bias=True``), σ(t) = a(t)_+ + b(t)_- a two-piece activation
(ReLU by default, :mod:`cvxnn.activations`), and the objective minimized is exactly the canonical

    NC(W1, W2) = L(σ(X̃ W1ᵀ) W2) + (β/2)(‖W1‖_F² + ‖W2‖_F²)      (sum over samples, no 1/n),

with L a loss of :mod:`cvxnn.losses` (½‖· − y‖² by default). One output (W2 a vector w2) for
scalar targets; c outputs for (n, c) squared-loss targets or c-class cross-entropy. Its value is
:meth:`cvxnn.TwoLayerNet.objective` with the same loss, so it can be compared directly with the
certified optimum of :func:`cvxnn.fit` and the lower bound of :func:`cvxnn.certify` (same
activation and loss): no run of this module can go below them.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from .activations import DEFAULT_NEGATIVE_SLOPE, RELU, Activation, activation_from
from .data import add_bias, as_matrix
from .devices import compute_device
from .losses import SQUARED, Loss, loss_from
from .network import TwoLayerNet

OPTIMIZERS = ("adam", "gd", "sgd")
DEFAULT_SGD_BATCH = 32


@dataclass
class TrainHistory:
    """NC objective (float64, full data) at the recorded optimizer steps.

    steps: optimizer step counts (0 is the initialization).
    times: wall-clock seconds since the start of :func:`train_nonconvex`.
    objectives: NC objective at those steps; only finite values are recorded.
    """

    steps: list[int]
    times: list[float]
    objectives: list[float]


@dataclass
class NonconvexRun:
    """The result of one :func:`train_nonconvex` run.

    network: the recorded iterate with the lowest NC objective, as a float64 TwoLayerNet with the
        run's activation (second layer (m,) for one output, (m, c) for c outputs).
    final_objective: NC objective of ``network`` (computed by :meth:`TwoLayerNet.objective`
        with the run's loss).
    loss: name of the loss L.
    interrupted: stopped by KeyboardInterrupt (the best iterate so far is returned).
    diverged: stopped because the loss became NaN or inf (the best finite iterate is returned).
    """

    network: TwoLayerNet
    history: TrainHistory
    optimizer: str
    lr: float
    width: int
    seed: int
    epochs: int
    final_objective: float
    wall_time: float
    interrupted: bool
    diverged: bool
    loss: str = SQUARED.name


def nc_objective(Xt: torch.Tensor, y: torch.Tensor, W1: torch.Tensor, w2: torch.Tensor, beta: float,
                 data_scale: float = 1.0, activation: Activation = RELU, loss: Loss = SQUARED) -> torch.Tensor:
    """data_scale · L(σ(X̃ W1ᵀ) w2) + (β/2)(‖W1‖_F² + ‖w2‖_F²) (differentiable).

    y as returned by ``loss.targets`` (±1 labels, one-hot rows, ...); w2 of shape (m,) or (m, c).
    """
    pred = activation.torch(Xt @ W1.T) @ w2
    return data_scale * loss.torch(pred, y) + 0.5 * beta * (W1.pow(2).sum() + w2.pow(2).sum())


def train_nonconvex(X: Any, y: Any, beta: float, width: int, optimizer: str = "adam", lr: float = 1e-2,
                    epochs: int = 1000, init_scale: float = 1.0, seed: int = 0, bias: bool = False,
                    record_every: int = 10, batch_size: int | None = None, momentum: float = 0.0,
                    dtype: torch.dtype = torch.float64, device: str = "cpu",
                    callback: Callable[[int, float], Any] | None = None,
                    init: TwoLayerNet | None = None, activation: Any = "relu",
                    negative_slope: float = DEFAULT_NEGATIVE_SLOPE, loss: Any = "squared") -> NonconvexRun:
    """Minimize NC = L(f(X)) + (β/2) Σ_j (‖u_j‖² + ‖α_j‖²), f(x) = Σ_j σ(x̃ᵀu_j) α_j.

    Args:
        X, y: data (n × d) and targets, validated by :func:`cvxnn.data.as_matrix` and
            ``loss.targets``: (n,) for one output; (n, c) for c outputs with the squared loss;
            integer classes 0..c−1 (or one-hot rows) for cross-entropy, giving c outputs;
            labels in {−1, +1} for the logistic and hinge losses.
        beta: weight decay β ≥ 0.
        width: number of hidden neurons m.
        optimizer: "adam" (torch.optim.Adam), "gd" (torch.optim.SGD on the full batch) or
            "sgd" (torch.optim.SGD on minibatches).
        lr: step size. epochs: passes over the data; full-batch methods take one step per
            epoch, minibatch methods ⌈n / batch_size⌉ steps per epoch (last batch may be smaller).
        init_scale: initialization scale s: W1 ~ N(0, s²/d̃), w2 ~ N(0, s²/m), drawn in float64
            on the CPU from ``torch.Generator().manual_seed(seed)`` (W1 first, then w2), so a seed
            gives the same start on every device and dtype. Minibatch orders come from a second
            generator seeded with ``seed + 1``.
        seed: random seed (initialization and minibatch order).
        bias: append a ones column to X; the bias is the last column of W1 and is penalized.
        record_every: evaluate the full NC objective (in float64) every this many steps, at
            step 0 and after the last step, for the history. The returned network is the best
            iterate: with full batches the lowest NC over every step (each step's forward value is NC at
            the iterate before its update, compared and kept on the device, so no step waits for the host;
            the winner is evaluated again in float64), with minibatches the best recorded iterate.
        batch_size: minibatch size for "sgd" (default min(n, 32)) and optionally "adam"
            (default: full batch). On a minibatch B the data term is scaled by n/|B|, so the
            minibatch loss is an unbiased estimate of NC. Not allowed for "gd" unless ≥ n.
        momentum: SGD momentum ("gd"/"sgd" only).
        dtype, device: torch dtype and device of the training computation.
        callback: called as ``callback(step, objective)`` at each recording; it may raise
            KeyboardInterrupt to stop the run.
        init: start from this network instead of a random one (its width, bias, activation and
            number of outputs must match).
        activation: σ(t) = a(t)_+ + b(t)_-: "relu", "leaky_relu" (slope ``negative_slope``),
            "abs", a pair (a, b) or an :class:`~cvxnn.activations.Activation`.
        loss: L, a name ("squared", "logistic", "hinge", "cross_entropy") or a
            :class:`~cvxnn.losses.Loss`; gradients use ``loss.torch``, recorded objectives ``loss.value``.

    Returns:
        A :class:`NonconvexRun` holding the best iterate (``record_every``) and the objective history. The
        second-layer initialization is N(0, s²/m) of shape (m,) or (m, c).
        Ctrl-C (KeyboardInterrupt) stops training and returns the best iterate so far with
        ``interrupted=True``. The objective is checked for NaN/inf at each recording (not every
        step, which would synchronize a GPU each step); a non-finite value stops the run with
        ``diverged=True`` and is not recorded.
    """
    start = time.perf_counter()
    Xm = as_matrix(X)
    act = activation_from(activation, negative_slope)
    loss = loss_from(loss)
    yv = loss.targets(y, Xm.shape[0])
    outputs = yv.shape[1] if yv.ndim == 2 else 0  # 0: scalar output
    Xt_np = add_bias(Xm) if bias else Xm
    n, d = Xt_np.shape
    beta = _check_nonneg_float(beta, "beta")
    width = _check_int(width, "width", 1)
    epochs = _check_int(epochs, "epochs", 1)
    record_every = _check_int(record_every, "record_every", 1)
    seed = _check_int(seed, "seed", 0)
    lr = _check_positive_float(lr, "lr")
    init_scale = _check_nonneg_float(init_scale, "init_scale")
    momentum = _check_nonneg_float(momentum, "momentum")
    if optimizer not in OPTIMIZERS:
        raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {optimizer!r}.")
    if optimizer == "adam" and momentum != 0.0:
        raise ValueError("momentum applies to optimizer 'gd' or 'sgd' only; Adam uses its own moment estimates.")
    batch = _resolve_batch(batch_size, optimizer, n)
    if not (isinstance(dtype, torch.dtype) and dtype.is_floating_point):
        raise ValueError(f"dtype must be a floating torch dtype, got {dtype!r}.")
    if init is not None:
        if not isinstance(init, TwoLayerNet):
            raise TypeError(f"init must be a TwoLayerNet or None, got {type(init).__name__}.")
        if init.width != width or init.bias != bias or init.W1.shape[1] != d:
            raise ValueError(
                f"init has width {init.width}, bias={init.bias} and {init.W1.shape[1]} first-layer inputs; "
                f"expected width {width}, bias={bias} and {d} inputs."
            )
        if init.activation != act:
            raise ValueError(f"init has activation {init.activation.to_dict()} but training uses {act.to_dict()}.")
        if init.w2.shape[1:] != yv.shape[1:]:
            raise ValueError(f"init has {init.n_outputs} output(s) but the {loss.name} loss needs "
                             f"{max(outputs, 1)} for these targets.")

    dev = compute_device(device)
    X64 = torch.as_tensor(Xt_np, dtype=torch.float64, device=dev)
    y64 = torch.as_tensor(yv, dtype=torch.float64, device=dev)
    Xtr, ytr = X64.to(dtype), y64.to(dtype)
    W1_0, w2_0 = _initial_weights(init, width, d, init_scale, seed, outputs)
    W1 = W1_0.to(dtype=dtype, device=dev).requires_grad_(True)
    w2 = w2_0.to(dtype=dtype, device=dev).requires_grad_(True)
    if optimizer == "adam":
        opt: torch.optim.Optimizer = torch.optim.Adam([W1, w2], lr=lr)
    else:
        opt = torch.optim.SGD([W1, w2], lr=lr, momentum=momentum)
    order_gen = torch.Generator(device="cpu").manual_seed(seed + 1)
    steps_per_epoch = math.ceil(n / batch)

    history = TrainHistory([], [], [])
    best: dict[str, Any] = {"objective": math.inf, "W1": W1_0, "w2": w2_0}
    interrupted = diverged = False

    def exact_objective(W1_k: torch.Tensor, w2_k: torch.Tensor) -> float:
        """NC in float64 at (W1_k, w2_k), as :meth:`TwoLayerNet.objective` (loss.value on the predictions plus
        the penalty); NaN when it is not finite."""
        with torch.no_grad():
            W1d, w2d = W1_k.detach().double(), w2_k.detach().double()
            pred = (act.torch(X64 @ W1d.T) @ w2d).cpu().numpy()
            penalty = 0.5 * float(W1d.pow(2).sum() + w2d.pow(2).sum())
        if not (np.all(np.isfinite(pred)) and math.isfinite(penalty)):
            return math.nan
        obj = loss.value(pred, yv) + beta * penalty
        return obj if math.isfinite(obj) else math.nan

    def record(step: int) -> bool:
        """Evaluate NC in float64 at the current iterate; False when it is not finite."""
        obj = exact_objective(W1, w2)
        if math.isnan(obj):
            return False
        history.steps.append(step)
        history.times.append(time.perf_counter() - start)
        history.objectives.append(obj)
        if obj < best["objective"]:
            best.update(objective=obj, W1=W1.detach().double().cpu().clone(), w2=w2.detach().double().cpu().clone())
        if callback is not None:
            callback(step, obj)
        return True

    total_steps = epochs * steps_per_epoch
    perm = None
    tracked = _LowestIterate(W1, w2) if batch >= n else None  # full batch: each step's value is NC itself
    try:
        diverged = not record(0)
        step = 0
        while not diverged and step < total_steps:
            b = step % steps_per_epoch
            if batch < n and b == 0:
                perm = torch.randperm(n, generator=order_gen, device="cpu").to(dev)
            if perm is None:
                Xb, yb, scale = Xtr, ytr, 1.0
            else:
                idx = perm[b * batch:(b + 1) * batch]
                Xb, yb, scale = Xtr[idx], ytr[idx], n / idx.numel()
            opt.zero_grad(set_to_none=True)
            value = nc_objective(Xb, yb, W1, w2, beta, scale, act, loss)
            value.backward()
            if tracked is not None:
                tracked.offer(value, W1, w2)
            opt.step()
            step += 1
            if step % record_every == 0 or step == total_steps:
                diverged = not record(step)
    except KeyboardInterrupt:
        interrupted = True

    if tracked is not None and float(tracked.value) < best["objective"]:
        obj = exact_objective(tracked.W1, tracked.W2)
        if obj < best["objective"]:
            best.update(objective=obj, W1=tracked.W1.double().cpu(), w2=tracked.W2.double().cpu())
    network = TwoLayerNet(best["W1"].numpy(), best["w2"].numpy(), bias, act)
    return NonconvexRun(network=network, history=history, optimizer=optimizer, lr=lr, width=width, seed=seed,
                        epochs=epochs, final_objective=network.objective(Xm, yv, beta, loss),
                        wall_time=time.perf_counter() - start, interrupted=interrupted, diverged=diverged,
                        loss=loss.name)


def best_of(runs: list[NonconvexRun]) -> NonconvexRun:
    """The run with the lowest final NC objective (the first one on ties)."""
    runs = list(runs)
    if not runs:
        raise ValueError("best_of needs at least one run.")
    return min(runs, key=lambda r: r.final_objective)


# ---------------------------------------------------------------------- helpers


class _LowestIterate:
    """The full-batch iterate with the lowest training objective: :meth:`offer` compares a step's forward value
    NC(θ_k) with the lowest so far and keeps θ_k where it is lower, with tensor operations only (no host
    synchronization per step on a GPU; a NaN value is never lower)."""

    def __init__(self, W1: torch.Tensor, w2: torch.Tensor) -> None:
        self.value = torch.full((), math.inf, dtype=W1.dtype, device=W1.device)
        self.W1, self.W2 = W1.detach().clone(), w2.detach().clone()

    def offer(self, value: torch.Tensor, W1: torch.Tensor, w2: torch.Tensor) -> None:
        with torch.no_grad():
            lower = value.detach() < self.value
            self.value = torch.where(lower, value.detach(), self.value)
            self.W1 = torch.where(lower, W1.detach(), self.W1)
            self.W2 = torch.where(lower, w2.detach(), self.W2)


def _initial_weights(init: TwoLayerNet | None, width: int, d: int, scale: float, seed: int, outputs: int = 0
                     ) -> tuple[torch.Tensor, torch.Tensor]:
    """float64 CPU start: ``init``'s weights, or W1 ~ N(0, scale²/d), w2 ~ N(0, scale²/width) of
    shape (width,) (``outputs`` = 0, scalar output) or (width, outputs)."""
    if init is not None:
        return (torch.tensor(init.W1, dtype=torch.float64, device="cpu"),
                torch.tensor(init.w2, dtype=torch.float64, device="cpu"))
    gen = torch.Generator(device="cpu").manual_seed(seed)
    W1 = torch.randn(width, d, generator=gen, dtype=torch.float64, device="cpu") * (scale / math.sqrt(d))
    shape = (width,) if outputs == 0 else (width, outputs)
    w2 = torch.randn(*shape, generator=gen, dtype=torch.float64, device="cpu") * (scale / math.sqrt(width))
    return W1, w2


def _resolve_batch(batch_size: int | None, optimizer: str, n: int) -> int:
    if batch_size is None:
        return min(n, DEFAULT_SGD_BATCH) if optimizer == "sgd" else n
    batch_size = _check_int(batch_size, "batch_size", 1)
    if optimizer == "gd" and batch_size < n:
        raise ValueError(
            f"optimizer 'gd' is full-batch; got batch_size={batch_size} < n={n}. Use 'sgd' for minibatches."
        )
    return min(batch_size, n)


def _check_int(value: Any, name: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"{name} must be an integer ≥ {minimum}, got {value!r}.")
    if value < minimum:
        raise ValueError(f"{name} must be an integer ≥ {minimum}, got {value!r}.")
    return int(value)


def _check_float(value: Any, name: str) -> float:
    if isinstance(value, bool):
        raise ValueError(f"{name} must be a number, got {value!r}.")
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number, got {value!r}.") from None
    if not math.isfinite(v):
        raise ValueError(f"{name} must be finite, got {value!r}.")
    return v


def _check_positive_float(value: Any, name: str) -> float:
    v = _check_float(value, name)
    if v <= 0:
        raise ValueError(f"{name} must be positive, got {value!r}.")
    return v


def _check_nonneg_float(value: Any, name: str) -> float:
    v = _check_float(value, name)
    if v < 0:
        raise ValueError(f"{name} must be nonnegative, got {value!r}.")
    return v
