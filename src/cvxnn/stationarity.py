"""Is a trained network a stationary point? Compare it with the convex program on its own patterns.

THEORY §2.5: let θ̄ be a stationary point of

    NC(θ) = ½‖Σ_j (X̃u_j)_+ α_j − y‖² + (β/2) Σ_j (‖u_j‖² + α_j²),     β > 0,

with no ties (x̃_kᵀū_j ≠ 0 for all k, j) and 𝒟̄ = {D(ū_j)} its patterns. Then Ψ(θ̄) solves (CVX) on
𝒟̄ and NC(θ̄) = q*(𝒟̄). Conversely, for every network NC(θ) ≥ obj_CVX(Ψ(θ)) ≥ q*(𝒟(θ)) (Ψ is
feasible on the network's own patterns), and when NC(θ) = q*(𝒟(θ)) with no ties, every small
perturbation keeps the patterns and so cannot lower NC: θ is a local minimum, hence stationary.
So, without ties, "NC(θ) = q*(own patterns)" is exactly "θ is stationary"; the restricted gap
NC(θ) − q*(𝒟(θ)) ≥ 0 measures how far θ is from it, in objective units.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .data import as_targets
from .duality import GapReport
from .network import TwoLayerNet
from .nonconvex import nc_objective
from .patterns import Patterns, network_patterns
from .training import ConvexFit, _check_beta, fit

TIE_TOL = 1e-9  # x̃_kᵀu_j is a tie when |x̃_kᵀu_j| ≤ TIE_TOL·‖x̃_k‖‖u_j‖


@dataclass
class StationarityCertificate(GapReport):
    """The network against the convex program restricted to its own activation patterns.

    objective: NC(θ).
    restricted_optimum: q*(𝒟(θ)), the optimum of (CVX) on the patterns of θ's active neurons
        (a feasible value, so an upper estimate of q* accurate to the solver's precision).
    restricted_lower_bound: the dual value certified on the same list (≤ q*(𝒟(θ))).
    stationary: NC(θ) − restricted_lower_bound ≤ rtol·|NC(θ)|: θ is optimal on its own patterns
        (without ties: a stationary point, THEORY §2.5). This says nothing about global optimality.
    kkt_residual: ‖∇NC(θ)‖₂ over all weights, from torch autograd in float64 with ReLU′(0) = 0
        (torch's convention; with no ties the choice does not matter).
    max_imbalance: max_j |‖u_j‖ − |α_j|| (0 at every stationary point with β > 0).
    n_ties: pairs (sample k, active neuron j) with |x̃_kᵀu_j| ≤ 1e-9·‖x̃_k‖‖u_j‖.
    patterns: the network's own patterns (active neurons: ‖u_j‖|α_j| > 0), on X̃.
    fit: the restricted convex fit (None when the network has no active neuron: then
        q*(∅) = ½‖y‖² = NC(0), and θ = 0 is always stationary).
    """

    objective: float
    restricted_optimum: float
    restricted_lower_bound: float
    stationary: bool
    kkt_residual: float
    max_imbalance: float
    n_ties: int
    rtol: float
    patterns: Patterns
    fit: ConvexFit | None

    @property
    def gap(self) -> float:
        """NC(θ) − q*(own patterns) ≥ 0 (up to the solver's precision)."""
        return self.objective - self.restricted_optimum

    @property
    def n_patterns(self) -> int:
        return len(self.patterns)


def active_neurons(net: TwoLayerNet) -> np.ndarray:
    """Boolean mask of the neurons with ‖u_j‖·|α_j| > 0 (the others add nothing to f)."""
    return (np.linalg.norm(net.W1, axis=1) * np.abs(net.w2)) > 0


def own_patterns(net: TwoLayerNet, X) -> Patterns:
    """The patterns D(u_j) = 1[X̃u_j ≥ 0] of the active neurons, on X̃ = net.design(X)."""
    Xt = net.design(X)
    active = active_neurons(net)
    if not active.any():
        return Patterns(np.zeros((Xt.shape[0], 0), dtype=bool), np.zeros((Xt.shape[1], 0)), method="network")
    return network_patterns(net.W1[active], Xt)


def nc_gradient_norm(net: TwoLayerNet, X, y, beta: float) -> float:
    """‖∇_θ NC(θ)‖₂ (torch autograd, float64; ReLU′(0) = 0)."""
    Xt = torch.as_tensor(net.design(X), dtype=torch.float64)
    yt = torch.as_tensor(as_targets(y, Xt.shape[0]), dtype=torch.float64)
    W1 = torch.tensor(net.W1, dtype=torch.float64, requires_grad=True)
    w2 = torch.tensor(net.w2, dtype=torch.float64, requires_grad=True)
    nc_objective(Xt, yt, W1, w2, beta).backward()
    return float(torch.sqrt(W1.grad.pow(2).sum() + w2.grad.pow(2).sum()))


def count_ties(net: TwoLayerNet, X, tol: float = TIE_TOL) -> int:
    """Pairs (k, j), j active, with |x̃_kᵀu_j| ≤ tol·‖x̃_k‖‖u_j‖."""
    Xt = net.design(X)
    W = net.W1[active_neurons(net)]
    scale = np.linalg.norm(Xt, axis=1)[:, None] * np.linalg.norm(W, axis=1)[None, :]
    return int(np.sum(np.abs(Xt @ W.T) <= tol * scale))


def stationarity_certificate(net: TwoLayerNet, X, y, beta: float, rtol: float = 1e-6) -> StationarityCertificate:
    """Solve (CVX) on the network's own patterns and compare with NC(θ) (THEORY §2.5).

    rtol: relative tolerance of the verdict ``stationary``. The convex optimum is accurate to
    about 1e-10 relative, while a gradient run stopped at ‖∇NC‖ = g is typically within O(g²)
    of its stationary value; so a run converged to ‖∇NC‖ ≈ 1e-3 certifies at about 1e-6.
    """
    beta = _check_beta(beta)
    if net.activation.name != "relu":  # the gradient check (nc_objective) is written for ReLU
        raise ValueError(f"stationarity_certificate supports ReLU networks only, not {net.activation.name!r}; "
                         "use cvxnn.certify for the global certificate.")
    Xt = net.design(X)
    yv = as_targets(y, Xt.shape[0])
    objective = net.objective(X, yv, beta)
    pats = own_patterns(net, X)
    if len(pats) == 0:
        res, q_star, lower = None, 0.5 * float(yv @ yv), 0.5 * float(yv @ yv)
    else:
        res = fit(X, yv, beta, patterns=pats, bias=net.bias)
        q_star, lower = res.objective, res.lower_bound
    balanced = np.abs(np.linalg.norm(net.W1, axis=1) - np.abs(net.w2))
    return StationarityCertificate(
        objective=objective, restricted_optimum=q_star, restricted_lower_bound=lower,
        stationary=bool(objective - lower <= rtol * max(abs(objective), 1e-300)),
        kkt_residual=nc_gradient_norm(net, X, yv, beta), max_imbalance=float(balanced.max(initial=0.0)),
        n_ties=count_ties(net, X), rtol=rtol, patterns=pats, fit=res)
