"""Two-layer networks f(x) = Σ_j σ(x^T u_j) α_j with a two-piece activation σ(t) = a(t)_+ + b(t)_-
(ReLU by default), and the maps between them and the convex program (THEORY §1.2, §1.6).

* Φ (:func:`network_from_convex`): nonzero v_i ↦ (v_i/√‖v_i‖, +√‖v_i‖), nonzero w_i ↦ (w_i/√‖w_i‖, −√‖w_i‖).
  Then NC(Φ(v, w)) equals the convex objective.
* Ψ (:func:`convex_from_network`): neuron j with pattern D_i adds u_j α_j to v_i (α_j > 0) or
  u_j |α_j| to w_i (α_j < 0). Then the convex objective of Ψ(θ) is at most NC(θ).
* :func:`prune`: at most n + 1 nonzero blocks with the same objective (Carathéodory).

Vector outputs: the second layer is an (m, c) matrix with rows α_jᵀ, f(x) = Σ_j σ(x̃ᵀu_j) α_jᵀ ∈ R^c,
and the penalty (β/2)Σ_j(‖u_j‖² + ‖α_j‖²) (ℓ2 weight decay). Convex blocks are then (P, d, c);
see :func:`network_from_convex` for the two vector programs.
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
from .data import add_bias, as_matrix
from .losses import SQUARED, Loss, loss_from
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
        w2: (m,) second-layer weights α_j, or (m, c) for c outputs (row j is α_jᵀ).
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
        self.w2 = _as_array(self.w2)
        if self.w2.ndim != 2:
            self.w2 = self.w2.reshape(-1)
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
    def n_outputs(self) -> int:
        """c for an (m, c) second layer; 1 for a vector of weights (scalar output)."""
        return 1 if self.w2.ndim == 1 else self.w2.shape[1]

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
        """f(X), shape (n,) (or (n, c) for vector outputs); a torch tensor when X is one, else NumPy."""
        out = self.hidden(X) @ self.w2
        if isinstance(X, torch.Tensor):
            return torch.as_tensor(out, dtype=X.dtype if X.is_floating_point() else torch.float64, device=X.device)
        return out

    def penalty(self, output_norm: str = "l2") -> float:
        """Σ_j (‖u_j‖² + ‖α_j‖²)/2 (multiply by β); ``output_norm="l1"`` uses ‖α_j‖₁² instead.

        The two agree for scalar outputs and for rows α_j with one nonzero entry.
        """
        if output_norm not in ("l2", "l1"):
            raise ValueError(f"output_norm must be 'l2' or 'l1', got {output_norm!r}.")
        out = self.w2.reshape(self.width, self.n_outputs)
        second = np.sum(out**2) if output_norm == "l2" else np.sum(np.abs(out).sum(axis=1) ** 2)
        return 0.5 * float(np.sum(self.W1**2) + second)

    def objective(self, X: Any, y: Any, beta: float, loss: Loss | str = SQUARED,
                  output_norm: str = "l2") -> float:
        """NC = L(f(X)) + (β/2) Σ_j (‖u_j‖² + ‖α_j‖²): a sum over samples, no 1/n.

        loss: "squared" (½‖f(X) − y‖², the default), "logistic", "hinge", "cross_entropy" or a
        :class:`~cvxnn.losses.Loss`; y is validated by the loss (±1 labels, class indices, ...).
        output_norm: "l1" uses ‖α_j‖₁² (the penalty the per-output vector program is exact for).
        """
        loss = loss_from(loss)
        Xm = as_matrix(X)
        yv = loss.targets(y, Xm.shape[0])
        pred = self.hidden(Xm) @ self.w2
        if pred.shape != yv.shape:
            raise ValueError(f"the network's predictions have shape {pred.shape} but the {loss.name} loss "
                             f"needs {yv.shape} for these targets.")
        return loss.value(pred, yv) + beta * self.penalty(output_norm)

    def balanced(self) -> "TwoLayerNet":
        """Rescale each neuron to ‖u_j‖ = |α_j| (same function, penalty not larger)."""
        nu = np.linalg.norm(self.W1, axis=1)
        na = np.linalg.norm(self.w2.reshape(self.width, self.n_outputs), axis=1)
        prod = nu * na
        keep = prod > 0
        c = np.sqrt(np.where(keep, na / np.where(nu > 0, nu, 1.0), 0.0))
        scale = c[keep] if self.w2.ndim == 1 else c[keep, None]
        return TwoLayerNet(self.W1[keep] * c[keep, None], self.w2[keep] / scale, self.bias, self.activation)

    # ------------------------------------------------------------------ torch
    def to_torch(self, dtype: torch.dtype = torch.float32) -> torch.nn.Sequential:
        """Linear(d, m, bias=self.bias) → σ → Linear(m, c, bias=False) (c = 1 for scalar outputs).

        σ is torch.nn.ReLU, torch.nn.LeakyReLU(κ) or a :class:`~cvxnn.activations.TwoPiece` module.
        """
        d = self.n_features
        first = torch.nn.Linear(d, self.width, bias=self.bias, dtype=dtype)
        second = torch.nn.Linear(self.width, self.n_outputs, bias=False, dtype=dtype)
        with torch.no_grad():
            first.weight.copy_(torch.as_tensor(self.W1[:, :d]))
            if self.bias:
                first.bias.copy_(torch.as_tensor(self.W1[:, d]))
            second.weight.copy_(torch.as_tensor(self.w2.reshape(self.width, self.n_outputs).T))
        return torch.nn.Sequential(first, self.activation.module(), second)

    @classmethod
    def from_torch(cls, module: torch.nn.Module, activation: Any = None) -> "TwoLayerNet":
        """Read a module Linear(d, m) → σ → Linear(m, c, bias=False), or its state dict (c = 1: scalar output).

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
        if B.shape[1] != A.shape[0]:
            raise ValueError(
                f"second layer must map {A.shape[0]} hidden units to the outputs, but has shape {tuple(B.shape)}."
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
        out = _as_array(B)
        return cls(W1, out[0] if out.shape[0] == 1 else out.T, bias, activation)

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


VECTOR_PENALTIES = ("per_output", "group")


def network_from_convex(v: np.ndarray, w: np.ndarray, bias: bool = False, tol: float = 0.0,
                        activation: Any = RELU, vector_penalty: str = "per_output",
                        rank_rtol: float = 1e-6) -> TwoLayerNet:
    """Φ: blocks v_i, w_i (rows of (P, d) arrays) → neurons (z/√‖z‖, ±√‖z‖) for ‖z‖ > tol.

    The same map for every two-piece σ: σ is positively 1-homogeneous, so the neuron gives
    ±√‖z‖ σ(Xz/√‖z‖) = ±σ(Xz) = ±(aD + b(I − D))Xz when z ∈ K(D).

    Vector outputs, blocks (P, d, c):

    * "per_output": every nonzero column z = V_i[:, k] gives the neuron (z/√‖z‖, ±√‖z‖ e_k), an
      output row with one nonzero entry, so ‖u‖‖α‖ = ‖z‖ and NC(Φ) equals the program objective.
    * "group": a block with σ₂(V_i) ≤ ``rank_rtol``·σ₁(V_i) is treated as rank one, V_i ≈ u qᵀ with
      q ≥ 0 the (sign-fixed, clipped) top right singular vector and u = V_i q (a non-negative
      combination of columns in K(D_i), so in the cone); it gives one neuron (u/√‖u‖, ±√‖u‖ q),
      with ‖u‖ ≤ ‖V_i‖_F. Any other block is split into its c columns as for "per_output"; then
      the neuron penalty is Σ_k ‖V_i[:, k]‖ ≥ ‖V_i‖_F, so NC(Φ) may exceed the program objective.
    """
    if vector_penalty not in VECTOR_PENALTIES:
        raise ValueError(f"vector_penalty must be one of {VECTOR_PENALTIES}, got {vector_penalty!r}.")
    d = v.shape[1]
    c = v.shape[2] if v.ndim == 3 else 0
    rows, outs = [], []

    def add(z: np.ndarray, out: np.ndarray) -> None:
        nz = float(np.linalg.norm(z))
        if nz > tol and nz > 0:
            rows.append(z / np.sqrt(nz))
            outs.append(out * np.sqrt(nz))

    for blocks, sign in ((v, 1.0), (w, -1.0)):
        for B in blocks:
            if c == 0:
                add(B, np.float64(sign))
                continue
            if vector_penalty == "group" and np.any(B):
                _, sv, Vt = np.linalg.svd(B, full_matrices=False)
                if sv.size < 2 or sv[1] <= rank_rtol * sv[0]:
                    q = Vt[0] if Vt[0].sum() >= 0 else -Vt[0]
                    q = np.clip(q, 0.0, None)
                    if np.any(q):
                        q = q / np.linalg.norm(q)
                        u = B @ q
                        nu = float(np.linalg.norm(u))
                        if nu > tol and nu > 0:
                            rows.append(u / np.sqrt(nu))
                            outs.append(sign * np.sqrt(nu) * q)
                        continue
            for k in range(c):
                add(B[:, k], sign * np.eye(c)[k])
    W1 = np.array(rows) if rows else np.zeros((0, d))
    if c == 0:
        w2 = np.array(outs, dtype=float)
    else:
        w2 = np.array(outs) if outs else np.zeros((0, c))
    return TwoLayerNet(W1, w2, bias, activation)


def convex_from_network(net: TwoLayerNet, X: Any, tie: str = ">=") -> tuple[Patterns, np.ndarray, np.ndarray]:
    """Ψ: the net's patterns and blocks (v, w), each (P, d), with v_i − w_i summing the neurons of pattern i.

    The same grouping for every two-piece σ (the fit weights aD_i + b(I − D_i) depend on the pattern only).

    Vector outputs (w2 of shape (m, c)): blocks (P, d, c) with V_i = Σ_j u_j (α_j)₊ᵀ and W_i = Σ_j u_j (α_j)₋ᵀ
    over the neurons j of pattern i, so every column is a non-negative combination of cone vectors and
    Σ_i (aD_i + b(I − D_i))X(V_i − W_i) = f(X). Both vector penalties are at most Σ_j ‖u_j‖‖α_j‖₁ ≤ the
    network's penalty with output norm "l1"; "group" is at most Σ_j ‖u_j‖‖α_j‖ ≤ the "l2" one when
    every α_j is sign-consistent (all entries ≥ 0 or all ≤ 0).
    """
    Xt = net.design(X)
    Z = Xt @ net.W1.T
    masks_all = Z >= 0 if tie == ">=" else Z > 0
    out = net.w2.reshape(net.width, -1)  # (m, c), c = 1 for a scalar output
    active = np.any(out != 0, axis=1)
    keep = _unique_columns(masks_all[:, active])
    idx_active = np.flatnonzero(active)
    masks = masks_all[:, idx_active[keep]]
    packed = np.packbits(masks, axis=0)
    v = np.zeros((masks.shape[1], Xt.shape[1], out.shape[1]))
    w = np.zeros_like(v)
    for j in idx_active:
        col = np.packbits(masks_all[:, j])
        i = int(np.flatnonzero(np.all(packed == col[:, None], axis=0))[0])
        v[i] += np.outer(net.W1[j], np.clip(out[j], 0.0, None))
        w[i] += np.outer(net.W1[j], np.clip(-out[j], 0.0, None))
    if net.w2.ndim == 1:
        v, w = v[:, :, 0], w[:, :, 0]
    gates = net.W1[idx_active[keep]].T
    return Patterns(masks, gates, complete=False, method="network", info={"tie": tie}), v, w


def convex_prediction(Xt: np.ndarray, masks: np.ndarray, v: np.ndarray, w: np.ndarray,
                      activation: Activation = RELU) -> np.ndarray:
    """Σ_i (aD_i + b(I − D_i)) X (v_i − w_i) (Σ_i D_i X (v_i − w_i) for ReLU), without forming D_i X.

    Blocks (P, d) give an (n,) prediction; blocks (P, d, c) an (n, c) one (column by column).
    """
    F = activation.fit_weights(masks)
    Z = v - w
    if Z.ndim == 2:
        return np.sum(F * (Xt @ Z.T), axis=1)
    return np.column_stack([np.sum(F * (Xt @ Z[:, :, k].T), axis=1) for k in range(Z.shape[2])])


def block_penalty(v: np.ndarray, w: np.ndarray, vector_penalty: str = "per_output") -> float:
    """Σ_i (‖v_i‖ + ‖w_i‖); for (P, d, c) blocks Σ_{i,k} of column norms ("per_output") or Σ_i of
    Frobenius norms ("group")."""
    if v.ndim == 2 or vector_penalty == "per_output":
        return float(np.linalg.norm(v, axis=1).sum() + np.linalg.norm(w, axis=1).sum())
    if vector_penalty != "group":
        raise ValueError(f"vector_penalty must be one of {VECTOR_PENALTIES}, got {vector_penalty!r}.")
    return float(np.linalg.norm(v, axis=(1, 2)).sum() + np.linalg.norm(w, axis=(1, 2)).sum())


def convex_objective(Xt: np.ndarray, y: np.ndarray, masks: np.ndarray, v: np.ndarray, w: np.ndarray,
                     beta: float, activation: Activation = RELU, loss: Loss = SQUARED,
                     vector_penalty: str = "per_output") -> float:
    """L(Σ_i (aD_i + b(I − D_i)) X (v_i − w_i)) + β Σ_i (‖v_i‖ + ‖w_i‖)  (THEORY (CVX), §1.4, §1.6).

    L is ½‖· − y‖² by default; for vector blocks the penalty is :func:`block_penalty`.
    """
    pred = convex_prediction(Xt, masks, v, w, activation)
    return loss.value(pred, y) + beta * block_penalty(v, w, vector_penalty)


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
    While more than n + 1 blocks are nonzero, a null vector δ of K = [a_k; 1] (columns k) exists; moving
    c ← c − tδ (t = min c_j/δ_j over δ_j > 0) keeps both unchanged and zeroes block j (positive rescaling keeps
    cone membership). One SVD gives a basis N of null(K) for all active blocks; after each move the basis of
    the remaining blocks' null space is N's other columns minus δ times their j-th entries over δ_j (zero at j;
    blocks zeroed by ties are eliminated the same way with a pivot column), so an O(mr) update replaces an SVD
    per removed block (breast cancer, gated P = 500 at tol 1e-4, 598 blocks: 28 SVDs, 2.0 s, before).

    Blocks (P, d, c) are pruned output by output, which keeps every column's fit and norm: the
    "per_output" penalty is unchanged (not the "group" one, whose blocks couple the columns).
    """
    if v.ndim == 3:
        cols = [prune(Xt, masks, v[:, :, k], w[:, :, k], tol, activation) for k in range(v.shape[2])]
        return np.stack([col[0] for col in cols], axis=-1), np.stack([col[1] for col in cols], axis=-1)
    n = Xt.shape[0]
    Z = np.vstack([v, w]).copy()
    signs = np.r_[np.ones(len(v)), -np.ones(len(w))]
    weights = activation.fit_weights(masks).T
    M = np.vstack([weights, weights])
    c = np.linalg.norm(Z, axis=1)
    c[c <= tol * max(c.max(initial=0.0), 1e-300)] = 0.0
    act = np.flatnonzero(c > 0)
    if act.size > n + 1:
        dirs = Z[act] / c[act, None]
        K = np.vstack([((M[act] * (dirs @ Xt.T)) * signs[act][:, None]).T, np.ones(act.size)])  # (n+1) x m
        _, sv, Vt = np.linalg.svd(K)
        rank = int(np.sum(sv > max(K.shape) * np.finfo(float).eps * sv[0]))
        N = Vt[rank:].T  # m x r, r ≥ m − n − 1
        weights_c = c[act].copy()
        while N.shape[1]:
            delta = np.where(weights_c > 0, N[:, 0], 0.0)  # zero (up to round-off) where a block is gone
            if delta.max() <= 0:
                delta = -delta
            N = N[:, 1:]
            if delta.max() <= 0:
                continue
            ratio = np.where(delta > 0, weights_c / np.where(delta > 0, delta, 1.0), np.inf)
            j = int(np.argmin(ratio))
            before = weights_c
            weights_c = np.maximum(weights_c - ratio[j] * delta, 0.0)
            weights_c[j] = 0.0
            N = N - np.outer(delta, N[j] / delta[j])
            N[j] = 0.0
            for z in np.flatnonzero((weights_c == 0) & (before > 0)):  # zeroed by ties: out of the basis too
                scale = 1e-9 * np.linalg.norm(N, axis=0)
                p = int(np.argmax(np.abs(N[z]) - scale)) if N.shape[1] else 0
                if N.shape[1] and abs(N[z, p]) > scale[p]:
                    N = np.delete(N - np.outer(N[:, p], N[z] / N[z, p]), p, axis=1)
                    N[z] = 0.0
        Z[act] = dirs * weights_c[:, None]
        c[act] = weights_c
    Z[c == 0] = 0.0
    return Z[: len(v)], Z[len(v):]
