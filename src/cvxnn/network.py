"""Two-layer networks f(x) = Σ_j σ(x^T u_j) α_j with a two-piece activation σ(t) = a(t)_+ + b(t)_-
(ReLU by default), and the maps between them and the convex program (THEORY §1.2, §1.6).

* Φ (:func:`network_from_convex`): nonzero v_i ↦ (v_i/√‖v_i‖, +√‖v_i‖), nonzero w_i ↦ (w_i/√‖w_i‖, −√‖w_i‖).
  Then NC(Φ(v, w)) equals the convex objective.
* Ψ (:func:`convex_from_network`): neuron j with pattern D_i adds u_j α_j to v_i (α_j > 0) or
  u_j |α_j| to w_i (α_j < 0). Then the convex objective of Ψ(θ) is at most NC(θ).
* :func:`prune`: at most n + 1 nonzero blocks with the same objective (Carathéodory).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .activations import RELU, Activation, activation_from, activation_of_module
from .data import add_bias, as_matrix, as_targets
from .patterns import Patterns, _unique_columns

FORMAT_VERSION = 1


def _as_array(a: Any) -> np.ndarray:
    if isinstance(a, torch.Tensor):
        return a.detach().cpu().double().numpy()
    return np.asarray(a, dtype=np.float64)


@dataclass
class TwoLayerNet:
    """f(x) = Σ_j σ(x̃^T u_j) α_j with x̃ = [x, 1] when ``bias`` is True, else x̃ = x.

    Args:
        W1: (m, d) first-layer weights, rows u_j (with ``bias``, the last column is the bias).
        w2: (m,) second-layer weights α_j.
        bias: whether a ones column is appended to the inputs.
        activation: σ, anything :func:`~cvxnn.activations.activation_from` accepts ("relu",
            "abs", (a, b), an Activation); stored as an :class:`~cvxnn.activations.Activation`.
    """

    W1: np.ndarray
    w2: np.ndarray
    bias: bool = False
    activation: Activation | str = "relu"

    def __post_init__(self) -> None:
        self.activation = activation_from(self.activation)
        self.W1 = _as_array(self.W1)
        self.w2 = _as_array(self.w2).reshape(-1)
        if self.W1.ndim != 2:
            raise ValueError(f"W1 must be 2-D (width, inputs) but has shape {self.W1.shape}.")
        if self.W1.shape[0] != self.w2.shape[0]:
            raise ValueError(f"W1 has {self.W1.shape[0]} neurons but w2 has {self.w2.shape[0]} weights.")
        if not (np.all(np.isfinite(self.W1)) and np.all(np.isfinite(self.w2))):
            raise ValueError("network weights contain NaN or inf.")

    @property
    def width(self) -> int:
        return self.W1.shape[0]

    @property
    def n_features(self) -> int:
        """Number of input features the network expects (without the bias column)."""
        return self.W1.shape[1] - int(self.bias)

    def design(self, X: Any) -> np.ndarray:
        """The matrix X̃ the first layer sees: X, with a ones column when ``bias``."""
        Xm = as_matrix(X)
        if Xm.shape[1] != self.n_features:
            raise ValueError(f"the network expects {self.n_features} features but X has {Xm.shape[1]}.")
        return add_bias(Xm) if self.bias else Xm

    def hidden(self, X: Any) -> np.ndarray:
        """σ(X̃ U^T), the n x m hidden activations."""
        return self.activation(self.design(X) @ self.W1.T)

    def predict(self, X: Any):
        """f(X); a torch tensor when X is one, else a NumPy vector."""
        out = self.hidden(X) @ self.w2
        if isinstance(X, torch.Tensor):
            return torch.as_tensor(out, dtype=X.dtype if X.is_floating_point() else torch.float64, device=X.device)
        return out

    def penalty(self) -> float:
        """Σ_j (‖u_j‖² + α_j²)/2 (multiply by β)."""
        return 0.5 * float(np.sum(self.W1**2) + np.sum(self.w2**2))

    def objective(self, X: Any, y: Any, beta: float) -> float:
        """NC = ½‖f(X) − y‖² + (β/2) Σ_j (‖u_j‖² + α_j²): a sum over samples, no 1/n."""
        Xm = as_matrix(X)
        yv = as_targets(y, Xm.shape[0])
        r = self.hidden(Xm) @ self.w2 - yv
        return 0.5 * float(r @ r) + beta * self.penalty()

    def balanced(self) -> "TwoLayerNet":
        """Rescale each neuron to ‖u_j‖ = |α_j| (same function, penalty not larger)."""
        nu = np.linalg.norm(self.W1, axis=1)
        na = np.abs(self.w2)
        prod = nu * na
        keep = prod > 0
        c = np.sqrt(np.where(keep, na / np.where(nu > 0, nu, 1.0), 0.0))
        return TwoLayerNet(self.W1[keep] * c[keep, None], self.w2[keep] / c[keep], self.bias, self.activation)

    # ------------------------------------------------------------------ torch
    def to_torch(self, dtype: torch.dtype = torch.float32) -> torch.nn.Sequential:
        """Linear(d, m, bias=self.bias) → σ → Linear(m, 1, bias=False).

        σ is torch.nn.ReLU, torch.nn.LeakyReLU(κ) or a :class:`~cvxnn.activations.TwoPiece` module.
        """
        d = self.n_features
        first = torch.nn.Linear(d, self.width, bias=self.bias, dtype=dtype)
        second = torch.nn.Linear(self.width, 1, bias=False, dtype=dtype)
        with torch.no_grad():
            first.weight.copy_(torch.as_tensor(self.W1[:, :d]))
            if self.bias:
                first.bias.copy_(torch.as_tensor(self.W1[:, d]))
            second.weight.copy_(torch.as_tensor(self.w2[None, :]))
        return torch.nn.Sequential(first, self.activation.module(), second)

    @classmethod
    def from_torch(cls, module: torch.nn.Module, activation: Any = None) -> "TwoLayerNet":
        """Read a module Linear(d, m) → σ → Linear(m, 1, bias=False), or its state dict.

        activation: σ; None reads it from the module (a ReLU, LeakyReLU or TwoPiece child, ReLU
        when there is none) and means ReLU for a state dict, which does not record it.
        """
        if activation is None:
            activation = RELU if isinstance(module, dict) else activation_of_module(module)
        if isinstance(module, dict):
            tensors = [v for v in module.values() if isinstance(v, torch.Tensor)]
            names = list(module.keys())
        else:
            linears = [m for m in module.modules() if isinstance(m, torch.nn.Linear)]
            if len(linears) != 2:
                raise ValueError(f"expected a module with exactly two Linear layers, found {len(linears)}.")
            tensors, names = [], []
            for k, lin in enumerate(linears):
                tensors.append(lin.weight)
                names.append(f"{k}.weight")
                if lin.bias is not None:
                    tensors.append(lin.bias)
                    names.append(f"{k}.bias")
        return cls._from_tensors(names, tensors, activation_from(activation))

    @classmethod
    def _from_tensors(cls, names: list[str], tensors: list[torch.Tensor], activation: Activation) -> "TwoLayerNet":
        mats = [(n, t) for n, t in zip(names, tensors) if t.ndim == 2]
        vecs = [(n, t) for n, t in zip(names, tensors) if t.ndim == 1]
        if len(mats) != 2:
            raise ValueError(f"expected two weight matrices (first and second layer), found {len(mats)}.")
        (_, A), (_, B) = mats
        if B.shape[0] != 1 or B.shape[1] != A.shape[0]:
            raise ValueError(
                f"second layer must map {A.shape[0]} hidden units to 1 output, but has shape {tuple(B.shape)}."
            )
        W1 = _as_array(A)
        bias = False
        for name, v in vecs:
            if v.shape[0] == A.shape[0] and not bias:
                W1 = np.hstack([W1, _as_array(v)[:, None]])
                bias = True
            else:
                raise ValueError(
                    f"unsupported parameter {name!r} of shape {tuple(v.shape)}: the second layer must have no bias."
                )
        return cls(W1, _as_array(B)[0], bias, activation)

    # ------------------------------------------------------------------ io
    def save(self, path: str | os.PathLike, metadata: dict | None = None) -> Path:
        """Write weights as safetensors with JSON metadata (no pickle). Atomic: no half-written file."""
        from safetensors.numpy import save_file

        path = Path(path)
        meta = {"format": "cvxnn.TwoLayerNet", "version": str(FORMAT_VERSION), "bias": json.dumps(self.bias),
                "activation": json.dumps(self.activation.to_dict()), "extra": json.dumps(metadata or {})}
        tmp = path.with_name(path.name + ".tmp")
        try:
            save_file({"W1": np.ascontiguousarray(self.W1), "w2": np.ascontiguousarray(self.w2)}, str(tmp),
                      metadata=meta)
            os.replace(tmp, path)
        finally:
            if tmp.exists():
                tmp.unlink()
        return path


def load(path: str | os.PathLike) -> TwoLayerNet:
    """Read a network written by :meth:`TwoLayerNet.save`, or a PyTorch state dict of a two-layer net
    saved with ``torch.save(model.state_dict(), path)`` (loaded with ``weights_only=True``)."""
    from safetensors import SafetensorError
    from safetensors.numpy import load_file

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"cannot read model {str(path)!r}: no such file.")
    try:
        from safetensors import safe_open

        with safe_open(str(path), framework="numpy") as fh:
            meta = fh.metadata() or {}
        arrays = load_file(str(path))
    except (SafetensorError, OSError, ValueError, Exception) as exc:  # not safetensors: try a state dict
        try:
            state = torch.load(str(path), map_location="cpu", weights_only=True)
        except Exception:
            raise ValueError(
                f"cannot read model {str(path)!r}: it is neither a cvxnn model (safetensors) "
                f"nor a PyTorch state dict ({exc})."
            ) from None
        if not isinstance(state, dict):
            raise ValueError(f"{str(path)!r} holds a {type(state).__name__}, not a state dict.") from None
        return TwoLayerNet.from_torch(state)
    if meta.get("format") != "cvxnn.TwoLayerNet" or "W1" not in arrays or "w2" not in arrays:
        raise ValueError(f"{str(path)!r} is a safetensors file but not a cvxnn model.")
    activation = json.loads(meta["activation"]) if "activation" in meta else "relu"  # files before activations
    return TwoLayerNet(arrays["W1"], arrays["w2"], bias=json.loads(meta.get("bias", "false")), activation=activation)


# ---------------------------------------------------------------------- maps Φ / Ψ


def network_from_convex(v: np.ndarray, w: np.ndarray, bias: bool = False, tol: float = 0.0,
                        activation: Any = RELU) -> TwoLayerNet:
    """Φ: blocks v_i, w_i (rows of (P, d) arrays) → neurons (z/√‖z‖, ±√‖z‖) for ‖z‖ > tol.

    The same map for every two-piece σ: σ is positively 1-homogeneous, so the neuron gives
    ±√‖z‖ σ(Xz/√‖z‖) = ±σ(Xz) = ±(aD + b(I − D))Xz when z ∈ K(D).
    """
    rows, outs = [], []
    for blocks, sign in ((v, 1.0), (w, -1.0)):
        norms = np.linalg.norm(blocks, axis=1)
        for z, nz in zip(blocks, norms):
            if nz > tol and nz > 0:
                rows.append(z / np.sqrt(nz))
                outs.append(sign * np.sqrt(nz))
    d = v.shape[1]
    W1 = np.array(rows) if rows else np.zeros((0, d))
    return TwoLayerNet(W1, np.array(outs), bias, activation)


def convex_from_network(net: TwoLayerNet, X: Any, tie: str = ">=") -> tuple[Patterns, np.ndarray, np.ndarray]:
    """Ψ: the net's patterns and blocks (v, w), each (P, d), with v_i − w_i summing the neurons of pattern i.

    The same grouping for every two-piece σ (the fit weights aD_i + b(I − D_i) depend on the pattern only).
    """
    Xt = net.design(X)
    Z = Xt @ net.W1.T
    masks_all = Z >= 0 if tie == ">=" else Z > 0
    active = net.w2 != 0
    keep = _unique_columns(masks_all[:, active])
    idx_active = np.flatnonzero(active)
    masks = masks_all[:, idx_active[keep]]
    packed = np.packbits(masks, axis=0)
    v = np.zeros((masks.shape[1], Xt.shape[1]))
    w = np.zeros_like(v)
    for j in idx_active:
        col = np.packbits(masks_all[:, j])
        i = int(np.flatnonzero(np.all(packed == col[:, None], axis=0))[0])
        z = net.W1[j] * abs(net.w2[j])
        if net.w2[j] > 0:
            v[i] += z
        else:
            w[i] += z
    gates = net.W1[idx_active[keep]].T
    return Patterns(masks, gates, complete=False, method="network", info={"tie": tie}), v, w


def convex_prediction(Xt: np.ndarray, masks: np.ndarray, v: np.ndarray, w: np.ndarray,
                      activation: Activation = RELU) -> np.ndarray:
    """Σ_i (aD_i + b(I − D_i)) X (v_i − w_i) (Σ_i D_i X (v_i − w_i) for ReLU), without forming D_i X."""
    return np.sum(activation.fit_weights(masks) * (Xt @ (v - w).T), axis=1)


def convex_objective(Xt: np.ndarray, y: np.ndarray, masks: np.ndarray, v: np.ndarray, w: np.ndarray,
                     beta: float, activation: Activation = RELU) -> float:
    """½‖Σ_i (aD_i + b(I − D_i)) X (v_i − w_i) − y‖² + β Σ_i (‖v_i‖ + ‖w_i‖)  (THEORY (CVX), §1.6)."""
    r = convex_prediction(Xt, masks, v, w, activation) - y
    return 0.5 * float(r @ r) + beta * float(np.linalg.norm(v, axis=1).sum() + np.linalg.norm(w, axis=1).sum())


def cone_violation(Xt: np.ndarray, masks: np.ndarray, blocks: np.ndarray) -> float:
    """max_i max_k −((2D_i − I) X b_i)_k, ≤ 0 when every block lies in its cone."""
    if blocks.shape[0] == 0:
        return 0.0
    S = np.where(masks, 1.0, -1.0)
    return float(np.max(-(S * (Xt @ blocks.T))))


def prune(Xt: np.ndarray, masks: np.ndarray, v: np.ndarray, w: np.ndarray, tol: float = 1e-12,
          activation: Activation = RELU) -> tuple[np.ndarray, np.ndarray]:
    """Reduce to at most n + 1 nonzero blocks without changing the fit or the penalty.

    With a_k = ±(aD_i + b(I − D_i)) X z_k/‖z_k‖ and c_k = ‖z_k‖ the fit is Σ c_k a_k and the penalty β Σ c_k.
    While more than n + 1 blocks are nonzero, a null vector δ of [a_k; 1] exists; moving
    c ← c − tδ keeps both unchanged and zeroes a block (positive rescaling keeps cone membership).
    """
    n = Xt.shape[0]
    Z = np.vstack([v, w]).copy()
    signs = np.r_[np.ones(len(v)), -np.ones(len(w))]
    weights = activation.fit_weights(masks).T
    M = np.vstack([weights, weights])
    c = np.linalg.norm(Z, axis=1)
    c[c <= tol * max(c.max(initial=0.0), 1e-300)] = 0.0
    while True:
        act = np.flatnonzero(c > 0)
        if act.size <= n + 1:
            break
        act = act[: n + 2]
        dirs = Z[act] / np.linalg.norm(Z[act], axis=1)[:, None]
        A = (M[act] * (dirs @ Xt.T)) * signs[act][:, None]  # k x n
        K = np.vstack([A.T, np.ones(act.size)])  # (n+1) x k, k = n+2 > n+1
        delta = np.linalg.svd(K)[2][-1]
        if delta.max() <= 0:
            delta = -delta
        ratio = np.where(delta > 0, c[act] / np.where(delta > 0, delta, 1.0), np.inf)
        j = int(np.argmin(ratio))
        c_new = c[act] - ratio[j] * delta
        c_new[j] = 0.0
        c_new = np.maximum(c_new, 0.0)
        Z[act] = dirs * c_new[:, None]
        c[act] = c_new
    Z[c == 0] = 0.0
    return Z[: len(v)], Z[len(v):]
