"""`cvxnn.fit`: train a two-layer ReLU network by solving its convex program (THEORY §1).

    fit(X, y, beta, patterns=..., formulation="relu" | "gated",
        solver="auto" | "reference" | "fista" | "ipm" | "al",
        activation="relu" | "leaky_relu" | "abs" | (a, b),
        loss="squared" | "logistic" | "hinge" | "cross_entropy", vector_penalty="per_output" | "group",
        search=False | True | SearchOptions(...), init_nonconvex=None | epochs | NonconvexInit(...),
        warm_start=None | ConvexFit | (v, w))

ReLU ("relu"): the exact cone-constrained program (CVX) on the given patterns; with all
patterns (``patterns="all"``) its optimum equals the best NC objective of any width.
Gated ("gated"): the group-lasso relaxation; its solution is turned into a ReLU network by
the cone decomposition, so ``network_objective`` may exceed ``objective``.
Activation σ(t) = a(t)_+ + b(t)_- (THEORY §1.6): both programs use the fit weights
aD_i + b(I − D_i) in place of D_i in the fit term; cones, penalty and Φ are unchanged.

Losses (THEORY §1.4): any convex L replaces ½‖· − y‖²; Φ, Ψ and the equivalence are unchanged
(rescaling does not touch the loss). The lower bound is d(tλ) = −L*(−tλ) (:mod:`cvxnn.losses`).

Vector outputs (y of shape (n, c), or cross-entropy with c classes). A network
f(x) = Σ_j σ(x̃ᵀu_j) α_jᵀ, α_j ∈ R^c, with ℓ2 weight decay (β/2)Σ_j(‖u_j‖² + ‖α_j‖²) has, after
rescaling each neuron, the penalty β Σ_j ‖u_j‖‖α_j‖ = β Σ_j ‖u_j α_jᵀ‖_F. Grouping its neurons by
pattern gives blocks Σ_j u_j α_jᵀ whose columns are *signed* combinations of cone vectors, so
the exact program would need a cone-constrained nuclear norm (a copositive program, Sahiner
et al., ICLR 2021). cvxnn offers two tractable programs, both with blocks V_i, W_i ∈ R^{d×c}
whose every column lies in K(D_i) and prediction Σ_i (aD_i + b(I − D_i))X(V_i − W_i):

* ``vector_penalty="per_output"``: penalty β Σ_{i,k}(‖V_i[:, k]‖ + ‖W_i[:, k]‖). **Exact** for
  networks whose neurons each feed a single output (output rows with one nonzero entry), and
  more generally for the output penalty (β/2)Σ_j(‖u_j‖² + ‖α_j‖₁²) (THEORY §1.7: rescaled it is
  β Σ_{j,k}‖u_j‖|α_jk|, unchanged by splitting a neuron into single-output ones). For a loss that
  is a sum over outputs (squared) it is c independent scalar programs on one pattern list
  (:func:`fit_per_output`); for cross-entropy the outputs are coupled through the loss but the
  program stays exact. Φ gives one neuron per nonzero column (c·width neurons at most, block-sparse
  output weights) with NC = program objective. Certificate: with all patterns, the lower bound
  holds for every network of any width under the ‖α_j‖₁² output penalty.
* ``vector_penalty="group"``: penalty β Σ_i(‖V_i‖_F + ‖W_i‖_F). A **relaxation** of training
  *sign-consistent* networks (every α_j ≥ 0 or ≤ 0 entrywise) with ℓ2 weight decay: Ψ maps such a
  network to feasible blocks with ‖Σ_j u_j α_jᵀ‖_F ≤ Σ_j ‖u_j‖‖α_j‖, so the program's optimum is at
  most their best NC; it is **exact** when the optimal blocks are rank one (Φ then gives one neuron
  per block with NC = objective), otherwise Φ splits the block into columns and
  ``network_objective`` exceeds ``objective``. Networks with mixed-sign output rows are outside
  this class. Certificate: with all patterns, the lower bound holds for every sign-consistent
  network of any width (for a bound on *every* network with ℓ2 weight decay use
  :func:`cvxnn.certify` with ``output_norm="l2"``).

Gated program with vector outputs (``formulation="gated"``): blocks U_i ∈ R^{d×c} without cone
constraints, prediction Σ_i (aD_i + b(I − D_i))XU_i, penalty β Σ_{i,k}‖U_i[:, k]‖ ("per_output") or
β Σ_i ‖U_i‖_F ("group"); dual constraints ‖((aD_i + b(I − D_i))X)ᵀλ_k‖ ≤ β for every (i, k), or
‖((aD_i + b(I − D_i))X)ᵀΛ‖_F ≤ β for every i. It **relaxes the same network class** as the ReLU
program with that penalty — networks of single-output neurons (output penalty ‖α_j‖₁²) for
"per_output", sign-consistent networks with ℓ2 weight decay for "group": a feasible (V, W) of the ReLU
program gives U = V − W with the same prediction and a penalty no larger (triangle inequality per
column, or per block), so the gated optimum is at most the ReLU program's, hence at most the best NC
of the class on the listed patterns (of any width, with all patterns). The network returned decomposes
every nonzero column, U_i[:, k] = v − w with v, w ∈ K(D_i) and ‖w‖ least (:func:`~cvxnn.cones.min_norm_split`,
within a factor 3 of the cheapest split's ‖v‖ + ‖w‖), and maps
the columns by Φ (one neuron per column for "per_output"; see :func:`~cvxnn.network.network_from_convex`
for "group"): same prediction, penalty Σ_k(‖V_i[:, k]‖ + ‖W_i[:, k]‖) ≥ the gated penalty, so it is a
network of the class with ``network_objective`` ≥ ``objective`` ≥ the gated optimum ≥ ``lower_bound``.

Bias (``bias=True``): a ones column is appended to X for every activation and loss, so the bias
is the last weight of u_j, penalized with it, and cones and patterns are those of [X, 1];
certificates then compare with networks whose neurons have a (penalized) bias.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from .activations import DEFAULT_NEGATIVE_SLOPE, RELU, Activation, activation_from
from .cones import min_norm_split
from .data import add_bias, as_matrix, fits_memory
from .devices import compute_device
from .duality import DualCheck, GapReport, cone_sigma, group_cone_sigma, max_dual_constraint, \
    max_dual_constraint_vector, scaled_dual_value
from .losses import LOSS_NAMES, SQUARED, Loss, loss_from
from .network import VECTOR_PENALTIES, TwoLayerNet, block_penalty, convex_objective, convex_prediction, \
    network_from_convex, prune
from .patterns import Patterns, drop_complements, enumerable, enumerate_patterns, sample_patterns
from .progress import FitProgress
from .operators import PatternOperator
from .solvers.augmented_lagrangian import solve_relu_al
from .solvers.gated_interior_point import solve_gated_interior, step_flops
from .solvers.interior_point import couples_outputs, iteration_flops, solve_relu_interior
from .solvers.newton import solve_gated_polished
from .solvers.reference import reference_memory_bytes, solve_reference
from .solvers.result import SolverOutput

if TYPE_CHECKING:
    from .pattern_search import SearchReport

FORMULATIONS = ("relu", "gated")
SOLVERS = ("auto", "reference", "fista", "ipm", "al")
# solver capabilities: which formulations and which activations (by name) each solver handles
SOLVER_FORMULATIONS = {"reference": ("relu", "gated"), "fista": ("gated",), "ipm": ("relu", "gated"), "al": ("relu",)}
SOLVER_ACTIVATIONS = {name: ("relu", "leaky_relu", "abs", "two_piece") for name in ("reference", "fista", "ipm", "al")}
SOLVER_LOSSES = {"reference": LOSS_NAMES, "fista": ("squared", "logistic", "cross_entropy", "hinge"),
                 "ipm": ("squared", "logistic", "cross_entropy", "hinge"), "al": ("squared",)}
SOLVER_OUTPUTS = {"reference": ("scalar", "vector"), "fista": ("scalar", "vector"), "ipm": ("scalar", "vector"),
                  "al": ("scalar",)}
SOLVER_WARM_STARTS = ("fista", "ipm", "al")  # solvers that start from a given point (the others ignore it)
GATED_IPM_LOSSES = ("squared", "logistic")  # ipm on the gated program: one output and these losses
# "auto" takes ipm for the gated program while one step costs at most this many FISTA iterations: measured
# (gated_interior_point's docstring) ipm wins at ratios 41-195 (breast cancer, digits, planted d = 50, P = 100) and
# loses at 230 and 487 (planted d = 20, P = 500 and 100)
GATED_IPM_STEP_RATIO = 200.0
AUTO_FAST_SIZE = 5_000  # n·P·c (c outputs) above which "auto" uses fista (gated) or ipm (ReLU), not the reference:
#                          the demo's programs (455 x 31, P = 50-55) took 12.0 and 17.5 s by Clarabel, 0.5 and 1.4 s
#                          by ipm
IPM_AUTO_FLOPS = 1e11  # "auto" uses ipm for a program that couples outputs (cross-entropy, "group") only while one
#                        iteration (interior_point.iteration_flops) stays below this or the reference would be refused
#                        for its memory (digits' 10 classes, P = 50: 1.7e11 flops, 7.5 s an iteration on one
#                        thread, 22 GiB for the reference); separable ones (one output, or per-output groups with
#                        a diagonal loss Hessian) always: their iteration costs c·min(n²Pd, n(Pd)²), and the
#                        reference's canonicalization alone grows as n·d·P (n = 30 000, d = 20, P = 100: 1.25e11 ipm
#                        flops per iteration, 22 GiB for the reference)
AUTO_ENUMERATE_LIMIT = 1000
DEFAULT_SAMPLED_PATTERNS = 100


@dataclass
class ConvexFit(GapReport):
    """The solution of a convex program and what it certifies.

    objective: value of the convex program at the returned variables.
    lower_bound: d(tλ) = −L*(−tλ) for a feasible dual point of *this pattern list* (λ = −∇L(ŷ),
        or the solver's dual point, scaled by t). A lower bound on the program's optimum; a bound
        on every network of the class ``network_class`` only when ``patterns.complete`` (then
        ``certified_global`` is True).
    gap, relative_gap: objective − lower_bound and its ratio to max(objective, tiny).
    network: the network Φ(v, w) with the fit's activation (after pruning to at most n + 1 neurons,
        per output for "per_output" vector blocks; "group" blocks are not pruned).
    network_objective: its NC objective (equals ``objective`` for "relu", except for "group"
        blocks that are not rank one).
    v, w: (P, d) convex blocks, (P, d, c) for vector outputs; for "gated", u = v with w = 0.
    loss: the :class:`~cvxnn.losses.Loss`; vector_penalty: the vector program (module docstring).
    search: with ``fit(..., search=...)`` or ``init_nonconvex``: how the pattern list was built
        (:class:`~cvxnn.pattern_search.SearchReport`: rounds, largest violation found, starts,
        projections); None otherwise.
    dual_point: the dual direction λ ((n,) or (n, c)) that ``lower_bound`` scales into feasibility: the solver's
        multiplier of the prediction where it returns one (the hinge), else −∇L at the solver's point; repaired
        into the loss's dual domain (:meth:`~cvxnn.losses.Loss.repair`).
    """

    objective: float
    lower_bound: float
    network: TwoLayerNet
    network_objective: float
    v: np.ndarray
    w: np.ndarray
    patterns: Patterns
    beta: float
    formulation: str
    solver: str
    status: str
    n_iter: int
    solve_time: float
    dual_check: DualCheck
    bias: bool = False
    history: list = field(default_factory=list)
    activation: Activation = RELU
    loss: Loss = SQUARED
    vector_penalty: str = "per_output"
    search: SearchReport | None = None
    dual_point: np.ndarray | None = None

    @property
    def certified_global(self) -> bool:
        """True when the lower bound holds for every network of ``network_class``: all patterns are listed.

        For "gated" too: its dual constraints ‖XᵀW_iλ‖ ≤ β bound the cone ones (σ_i^± ≤ ‖XᵀW_iλ‖), so its
        dual point is feasible for the ReLU program. Its objective may lie below that program's optimum,
        so the network's own certified suboptimality is ``network_objective − lower_bound``.
        """
        return self.patterns.complete

    @property
    def network_class(self) -> str:
        """The networks the lower bound covers when ``certified_global`` (see the module docstring)."""
        base = f"two-layer {self.activation.name} networks of any width ({self.loss.name} loss"
        if self.v.ndim == 2:
            return base + ", l2 weight decay)"
        if self.vector_penalty == "per_output":
            return base + ", output penalty ||alpha_j||_1^2; = l2 weight decay for single-output neurons)"
        return base + ", l2 weight decay) whose output rows alpha_j are all >= 0 or all <= 0"

    @property
    def n_neurons(self) -> int:
        return self.network.width

    def predict(self, X: Any) -> np.ndarray:
        return self.network.predict(X)

    def predict_gated(self, X: Any) -> np.ndarray:
        """The gated model itself at new inputs: Σ_i (aD_i(X) + b(I − D_i(X)))X̃u_i with the gates
        D_i(x) = 1[x̃ᵀg_i ≥ 0] of ``patterns.gates`` (on the training inputs, the program's prediction)."""
        if self.formulation != "gated" or self.patterns.gates is None:
            raise ValueError("predict_gated needs a formulation='gated' fit whose patterns have gates "
                             f"(this one: formulation={self.formulation!r}, gates "
                             f"{'missing' if self.patterns.gates is None else 'present'}).")
        Xt = self.network.design(X)
        Z = Xt @ self.patterns.gates
        masks = Z > 0 if self.patterns.info.get("tie") == ">" else Z >= 0
        return convex_prediction(Xt, masks, self.v, np.zeros_like(self.v), self.activation)


def resolve_patterns(Xt: np.ndarray, patterns: Any, seed: int | None = 0,
                     max_patterns: int = AUTO_ENUMERATE_LIMIT, activation: Activation = RELU) -> Patterns:
    """Turn the ``patterns`` argument into a :class:`Patterns` list for the design matrix Xt.

    None: all patterns if at most ``max_patterns`` are predicted, else 100 sampled ones.
    "all": enumerate (error if more than ``max_patterns`` are predicted).
    int: that many Gaussian samples. A Patterns object or (n, P) boolean array: used as given.
    For an even activation (abs) the lists made here keep one pattern of each complementary
    pair; the all-zero pattern is dropped from samples only when it is useless (b = 0).
    """
    n = Xt.shape[0]
    if patterns is None:
        if enumerable(Xt, max_patterns):
            return _for_activation(enumerate_patterns(Xt, max_patterns=max_patterns), activation)
        patterns = DEFAULT_SAMPLED_PATTERNS
    if isinstance(patterns, str):
        if patterns != "all":
            raise ValueError(f"patterns must be None, 'all', an int, or a Patterns object; got {patterns!r}.")
        return _for_activation(enumerate_patterns(Xt, max_patterns=max_patterns), activation)
    if isinstance(patterns, (int, np.integer)) and not isinstance(patterns, bool):
        sampled = sample_patterns(Xt, int(patterns), seed=seed, drop_zero=activation.zero_pattern_useless)
        return _for_activation(sampled, activation)
    if isinstance(patterns, Patterns):
        if patterns.n_samples != n:
            raise ValueError(f"the patterns are for {patterns.n_samples} samples but X has {n}.")
        check_patterns_for(patterns, activation)
        return patterns
    masks = np.asarray(patterns)
    if masks.dtype != bool or masks.ndim != 2 or masks.shape[0] != n:
        raise ValueError(f"patterns given as an array must be ({n}, P) boolean, got {masks.dtype} {masks.shape}.")
    return Patterns(masks, method="given")


def _for_activation(patterns: Patterns, activation: Activation) -> Patterns:
    """Drop complementary patterns for an even activation (they give the same neurons)."""
    return drop_complements(patterns) if activation.even else patterns


def check_patterns_for(patterns: Patterns, activation: Activation) -> None:
    """Refuse a list halved by :func:`~cvxnn.patterns.drop_complements` for an activation that is not even."""
    if patterns.info.get("complements_dropped") and not activation.even:
        raise ValueError(f"these patterns keep one of each complementary pair, enough only for an even "
                         f"activation (abs); the {activation.name!r} activation needs both.")


@dataclass(frozen=True)
class NonconvexInit:
    """Short nonconvex runs whose neuron patterns seed the pattern list (``fit(..., init_nonconvex=...)``).

    :func:`cvxnn.nonconvex.train_nonconvex` with these settings, ``restarts`` times from the seeds
    seed, seed + 1, … (``seed`` None: fit's seed). The list holds the patterns of every run; the start is
    Ψ of the run with the lowest NC, a feasible point of the program on that list, so the fit's objective
    is at most min NC(θ) (THEORY §1.2). Measured (1500 Adam steps, width 100, ipm to 1e-6): three restarts
    give 10.3886 on digits (300 patterns, 36 s) where the single runs' patterns give 11.1448, 10.6305 and
    10.8479, and 11.3865 on breast cancer (297 patterns, 3.5 s) against 11.7224, 11.6276 and 11.6326.
    """

    epochs: int = 200
    width: int = 50
    lr: float = 1e-2
    optimizer: str = "adam"
    seed: int | None = None
    restarts: int = 1

    def __post_init__(self) -> None:
        if isinstance(self.restarts, bool) or not isinstance(self.restarts, (int, np.integer)) or self.restarts < 1:
            raise ValueError(f"NonconvexInit.restarts must be a positive integer, got {self.restarts!r}.")


def nonconvex_init(spec: Any) -> NonconvexInit:
    """``init_nonconvex`` of ``fit`` and the estimators as a :class:`NonconvexInit`: one as is, an int ≥ 1 as Adam
    epochs; TypeError or ValueError otherwise."""
    if isinstance(spec, NonconvexInit):
        return spec
    if isinstance(spec, (bool, np.bool_)) or not isinstance(spec, (int, np.integer)):
        raise TypeError(f"init_nonconvex must be None, an int (Adam epochs) or a NonconvexInit, got {spec!r}.")
    if spec < 1:
        raise ValueError(f"init_nonconvex as Adam epochs must be at least 1, got {spec!r}.")
    return NonconvexInit(epochs=int(spec))


@dataclass(frozen=True)
class Program:
    """One convex program (data, β, formulation, activation, loss) and how to solve it, on any pattern list.

    Used by :func:`fit`, by its pattern search (one solve per round) and by :func:`cvxnn.path`.
    """

    Xm: np.ndarray
    y: np.ndarray
    Xt: np.ndarray
    beta: float
    formulation: str = "relu"
    solver: str = "auto"
    activation: Activation = RELU
    bias: bool = False
    tol: float = 1e-6
    dtype: torch.dtype = torch.float64
    device: torch.device = torch.device("cpu")
    verbose: bool = False
    prune_network: bool = True
    loss: Loss = SQUARED
    vector_penalty: str = "per_output"

    @property
    def vector(self) -> bool:
        return self.y.ndim == 2

    def solve(self, pats: Patterns, start: tuple[np.ndarray, np.ndarray] | None = None,
              callback: Callable[[int, float, float], Any] | None = None,
              time_limit: float | None = None, near_start: bool = True) -> ConvexFit:
        """Solve the program on ``pats``; solvers in SOLVER_WARM_STARTS start from ``start`` = (v, w).

        ``near_start``: the start is expected near the answer (a step of a β path), so "auto" lets FISTA continue
        from it on the gated program; False (a pattern-search round, whose new patterns move the optimum) keeps
        auto's cold choice (:func:`_choose_solver`).

        ``callback(iteration, objective, lower_bound)`` and ``time_limit`` (seconds) reach the
        first-order solvers. If ``start`` has a lower objective than the solver's answer (an
        inexact stop), ``start`` is returned, with the better of the two lower bounds: the fit is
        never worse than its start. It still reports the solver that ran, its iterations, time and history.
        """
        size = self.y.size * len(pats)  # n·P·c
        solver = _choose_solver(self.solver, self.formulation, size, self.activation, self.loss, self.vector,
                                self.Xt.shape, self.y.shape[1] if self.vector else 1, self.vector_penalty,
                                warm=start is not None and near_start)
        if solver in ("fista", "ipm", "al"):
            on = dict(dtype=self.dtype, device=self.device)
            op = PatternOperator(self.Xt, pats.masks, activation=self.activation, **on)
            yt = torch.as_tensor(self.y, **on)
            if self.formulation == "gated":  # fista or ipm, on the blocks u = v − w
                weights = torch.as_tensor(self.activation.fit_weights(pats.masks), **on)
                U0 = None if start is None else torch.as_tensor(start[0] - start[1], **on)
                if solver == "fista":
                    out = solve_gated_polished(op, yt, self.beta, weights, tol=self.tol, U0=U0, loss=self.loss,
                                               vector_penalty=self.vector_penalty, callback=callback,
                                               time_limit=time_limit)
                else:  # the barrier method, in float64
                    out = solve_gated_interior(op, yt, self.beta, weights, tol=self.tol, U0=U0, loss=self.loss,
                                               callback=callback, time_limit=time_limit)
            else:
                V0, W0 = (None, None) if start is None else (torch.as_tensor(b, **on) for b in start)
                if solver == "ipm":  # strictly cone-feasible iterates in float64
                    out = solve_relu_interior(op, yt, self.beta, tol=self.tol, V0=V0, W0=W0, loss=self.loss,
                                              interior=None if pats.gates is None else
                                              torch.as_tensor(pats.gates.T, device=self.device),
                                              callback=callback, time_limit=time_limit,
                                              vector_penalty=self.vector_penalty)
                else:  # al: returns cone-feasible blocks (repaired in float64), so no polishing
                    out = solve_relu_al(op, yt, self.beta, tol=self.tol, V0=V0, W0=W0, callback=callback,
                                        time_limit=time_limit, design=self.Xt,
                                        interior=None if pats.gates is None else pats.gates.T)
        else:
            out = solve_reference(self.Xt, self.y, pats.masks, self.beta, self.formulation, verbose=self.verbose,
                                  activation=self.activation, loss=self.loss, vector_penalty=self.vector_penalty,
                                  time_limit=time_limit)
        # interior-point dust (fista's barrier phase for the hinge leaves it too)
        res = self._finish(pats, out, solver, polish=solver in ("reference", "ipm") or
                           (solver == "fista" and not self.loss.smooth))
        if start is not None and self.objective(pats, *start) < res.objective:
            begin = self.at(pats, start[0], start[1], out.status)
            if res.lower_bound > begin.lower_bound:  # both bound the same program: keep the solver's
                begin.lower_bound, begin.dual_check = res.lower_bound, res.dual_check
            begin.solver, begin.n_iter, begin.solve_time = solver, res.n_iter, res.solve_time
            begin.history = res.history
            return begin
        return res

    def objective(self, pats: Patterns, v: np.ndarray, w: np.ndarray) -> float:
        """The program's objective at the blocks (v, w) on ``pats`` (feasibility is not checked)."""
        return _program_objective(self.Xt, self.y, pats.masks, v, w, self.beta, self.formulation, self.activation,
                                  self.loss, self.vector_penalty)

    def at(self, pats: Patterns, v: np.ndarray, w: np.ndarray, status: str) -> ConvexFit:
        """The fit at a given feasible point (v, w) on ``pats``, with its certificate; nothing is solved."""
        return self._finish(pats, SolverOutput(v, w, status, 0, 0.0), "none", polish=False)

    def zero_blocks(self, pats: Patterns) -> tuple[np.ndarray, np.ndarray]:
        """(v, w) of the zero network on ``pats``: (P, d) blocks, (P, d, c) for c outputs."""
        zeros = np.zeros((len(pats), self.Xt.shape[1], *self.y.shape[1:]))
        return zeros, zeros.copy()

    def zero_dual_point(self) -> np.ndarray:
        """λ₀ = −∇L(0), the dual point of the zero network (repaired into the conjugate's domain): y for the squared
        loss and the hinge, y/2 for the logistic loss, one-hot(y) − 1/c for the cross-entropy. The zero network is
        optimal on a list exactly when β ≥ :meth:`dual_check` (list, λ₀).value, since d(λ₀) = L(0)."""
        return self.loss.repair(self.loss.dual_direction(np.zeros(self.y.shape), self.y), self.y)

    def dual_check(self, pats: Patterns, lam: np.ndarray, values: dict[tuple[int, int], float] | None = None,
                   upper: np.ndarray | None = None) -> DualCheck:
        """The largest dual-constraint value at λ over the list, this program's kind (formulation, vector
        penalty); for scalar outputs the exact cone values computed are left in ``values`` (``upper``: bounds
        on them, :meth:`_upper_bounds`)."""
        if self.vector:
            return max_dual_constraint_vector(self.Xt, pats.masks, lam, self.vector_penalty, self.activation,
                                              self.formulation)
        return max_dual_constraint(self.Xt, pats.masks, lam, self.formulation, self.activation, values, upper)

    def _bound(self, pats: Patterns, lam: np.ndarray, values: dict[tuple[int, int], float] | None = None,
               upper: np.ndarray | None = None) -> tuple[float, DualCheck]:
        """d(tλ) for the repaired λ scaled into feasibility, and the constraint check (:meth:`dual_check`)."""
        lam = self.loss.repair(lam, self.y)
        c = self.dual_check(pats, lam, values, upper)
        return scaled_dual_value(lam, self.y, c.value, self.beta, self.loss)[0], c

    def _upper_bounds(self, out: SolverOutput, lam: np.ndarray) -> np.ndarray | None:
        """Upper bounds (2, P) on the cone values σ_i^± at λ from a solver's bounds at its own point Λ
        (``info`` "dual_bounds" and "dual_point", scalar ReLU programs): σ_i^± is 1-Lipschitz in XᵀW_iλ and
        ‖XᵀW_i‖₂ ≤ max(|a|, |b|)·‖X‖₂, so σ_i^±(λ) ≤ b_i^± + max(|a|, |b|)·‖X‖₂·‖λ − Λ‖."""
        info = out.info or {}
        if self.vector or self.formulation != "relu" or "dual_bounds" not in info:
            return None
        drift = float(np.linalg.norm(lam - info["dual_point"]))
        if drift > 0:
            drift *= max(abs(self.activation.a), abs(self.activation.b)) * float(np.linalg.norm(self.Xt, 2))
        return info["dual_bounds"] + drift

    def _finish(self, pats: Patterns, out: SolverOutput, solver: str, polish: bool) -> ConvexFit:
        Xt, yv, beta, act, loss = self.Xt, self.y, self.beta, self.activation, self.loss
        form, vp = self.formulation, self.vector_penalty
        solver_dual = _solver_dual(out.dual, yv, loss)
        raw_lam = solver_dual if solver_dual is not None else \
            loss.dual_direction(convex_prediction(Xt, pats.masks, out.v, out.w, act), yv)
        lam = loss.repair(raw_lam, yv)
        sigmas: dict[tuple[int, int], float] = {}  # exact cone values at the repaired λ, reused by the polish
        upper = None if solver_dual is not None else self._upper_bounds(out, lam)
        lower, check = self._bound(pats, raw_lam, sigmas, upper)
        if solver in ("al", "fista", "ipm") and out.history:  # the solvers' own certificates hold for the same program
            lower = max(lower, max(h[2] for h in out.history))
        v, w = out.v, out.w
        objective = _program_objective(Xt, yv, pats.masks, v, w, beta, form, act, loss, vp)
        if polish:  # interior-point dust; proximal methods return exact zeros
            # λ is accurate to about the square root of the relative gap: the KKT test gets that much slack,
            # and a polish that raises the objective (a real block taken for dust) is redone without it.
            raw_gap = max(objective - lower, 0.0) / max(abs(objective), 1e-300)
            kkt_rtol = max(1e-6, 10 * np.sqrt(raw_gap))
            v, w = _polish(Xt, lam, pats.masks, out.v, out.w, beta, form, act, vp, kkt_rtol=kkt_rtol, known=sigmas,
                           upper=upper)
            polished = _program_objective(Xt, yv, pats.masks, v, w, beta, form, act, loss, vp)
            if polished > objective + max(objective - lower, 1e-9 * abs(objective)):
                v, w = _polish(Xt, lam, pats.masks, out.v, out.w, beta, form, act, vp, use_kkt=False)
                polished = _program_objective(Xt, yv, pats.masks, v, w, beta, form, act, loss, vp)
            # Any λ gives a valid bound once scaled: while the gap is above tol, try the polished point's
            # and the solver's primal point's (each an all-pattern check, so a λ already checked is skipped).
            for cand in (loss.dual_direction(convex_prediction(Xt, pats.masks, v, w, act), yv),
                         loss.dual_direction(convex_prediction(Xt, pats.masks, out.v, out.w, act), yv)):
                if min(polished, objective) - lower <= self.tol * abs(polished) or np.array_equal(cand, raw_lam):
                    continue
                value, c = self._bound(pats, cand)
                if value > lower:
                    lower, check = value, c
            # a polish that would leave a gap above both tol and the raw point's keeps the raw point (seen with
            # the hinge, whose kinks make zeroing dust cost up to the gap)
            if polished - lower <= max(self.tol * abs(polished), objective - lower):
                objective = polished
            else:
                v, w = out.v, out.w
        if polish and out.status != "optimal" and v.ndim == 2:  # an unfinished interior iterate: its blocks spread
            v, w = _drop_costly_blocks(Xt, yv, pats.masks, v, w, beta, act, loss)
            objective = min(objective, _program_objective(Xt, yv, pats.masks, v, w, beta, form, act, loss, vp))
        if form == "gated":
            nv, nw = _decompose_all(Xt, pats, v)
        else:
            nv, nw = v, w
        if self.prune_network and (not self.vector or vp == "per_output"):
            nv, nw = prune(Xt, pats.masks, nv, nw, activation=act)
        net = network_from_convex(nv, nw, bias=self.bias, activation=act, vector_penalty=vp)
        return ConvexFit(objective=objective, lower_bound=lower, network=net,
                         network_objective=net.objective(self.Xm, yv, beta, loss), v=v, w=w, patterns=pats,
                         beta=beta, formulation=form, solver=solver, status=out.status, n_iter=out.n_iter,
                         solve_time=out.time, dual_check=check, bias=self.bias, history=out.history, activation=act,
                         loss=loss, vector_penalty=vp, dual_point=lam)


def fit(X: Any, y: Any, beta: float, patterns: Any = None, formulation: str = "relu", solver: str = "auto",
        bias: bool = False, seed: int | None = 0, max_patterns: int = AUTO_ENUMERATE_LIMIT,
        prune_network: bool = True, verbose: bool = False, tol: float = 1e-6,
        dtype: torch.dtype = torch.float64, device: str = "cpu", activation: Any = "relu",
        negative_slope: float = DEFAULT_NEGATIVE_SLOPE, loss: Any = "squared",
        vector_penalty: str = "per_output", search: Any = None, init_nonconvex: Any = None,
        warm_start: Any = None, progress: bool = False, callback: Callable[[Any], Any] | None = None,
        time_limit: float | None = None) -> ConvexFit:
    """Solve the convex program of a two-layer network with weight decay β.

    The objective matched is NC = L(f(X)) + (β/2)Σ_j(‖u_j‖² + ‖α_j‖²) (sum over samples), with
    L = ½‖· − y‖² by default. ``bias=True`` appends a ones column to X, so each neuron gets a
    (penalized) bias.

    activation: σ(t) = a(t)_+ + b(t)_- — "relu", "leaky_relu" (slope ``negative_slope``), "abs",
    a pair (a, b) or an :class:`~cvxnn.activations.Activation` (THEORY §1.6). The program is
    (CVX) with (aD_i + b(I − D_i))X in place of D_iX in the fit term.

    loss: "squared", "logistic" (y ∈ {−1, +1}), "hinge" (y ∈ {−1, +1}), "cross_entropy" (integer
    classes 0..c−1 or one-hot rows; c outputs) or a :class:`~cvxnn.losses.Loss`.
    y of shape (n, c) with the squared loss fits c outputs. vector_penalty: the vector-output
    program, "per_output" (exact, single-output neurons) or "group" (module docstring).

    solver: "reference" (cvxpy + Clarabel, float64, both formulations, every loss, vector
    outputs), "fista" (accelerated proximal gradient in PyTorch on ``device``/``dtype``, then
    Newton on the active blocks (:mod:`cvxnn.solvers.newton`); gated program, squared, logistic,
    cross-entropy or hinge loss (the hinge: Nesterov-smoothed FISTA with continuation, then a
    barrier path by Newton's method; certified against the true hinge program), scalar or vector
    outputs; stops at relative duality gap ``tol``), "ipm" (interior-point methods in PyTorch, float64, on
    ``device``, stopping at a certified relative gap ``tol``: for the ReLU program the primal-dual method of
    :mod:`cvxnn.solvers.interior_point` — squared, logistic, cross-entropy or hinge loss (the hinge
    through epigraph slacks), scalar or vector outputs with either vector penalty; holds c n x n
    matrices (c Pd x Pd ones when n exceeds about Pd, for smooth losses and per-output groups; for the
    cross-entropy one more n x n, a Schur complement; for "group" a 2P x 2P capacitance, or with the hinge one
    (n·c) x (n·c) matrix); for
    the gated program the barrier method of :mod:`cvxnn.solvers.gated_interior_point` — one output,
    squared or logistic loss (GATED_IPM_LOSSES), n x n and P x P matrices), "al" (augmented Lagrangian in
    PyTorch, ReLU program, squared loss, scalar output; slow to reach small gaps, so never chosen
    automatically), or "auto" (for n·P·c > 5 000, c outputs, and a combination they declare: for the
    gated program ipm while one of its steps (:func:`~cvxnn.solvers.gated_interior_point.step_flops`,
    about 3n²P + n³/3) costs at most GATED_IPM_STEP_RATIO = 200 FISTA iterations (2nPd each), else
    fista; for the ReLU program ipm, except where its Woodbury matrix couples the outputs (cross-entropy, or
    "group" with c > 1), one iteration (:func:`~cvxnn.solvers.interior_point.iteration_flops`) costs more
    than 1e11 and the reference fits in memory; else reference). A solver refuses what it does not declare in
    SOLVER_FORMULATIONS, SOLVER_ACTIVATIONS, SOLVER_LOSSES, SOLVER_OUTPUTS (and ipm, on the gated program, other
    losses or vector outputs).

    search: False/None (solve once on ``patterns``), True (default
    :class:`~cvxnn.pattern_search.SearchOptions`) or a SearchOptions: column generation
    (:func:`cvxnn.pattern_search.column_generation`) — solve, search for patterns violating the
    dual constraint |λ_kᵀσ(X̃u)| ≤ β at Λ = −∇L(ŷ) (y − ŷ for the squared loss; the solver's dual point for the
    hinge; each output column k of the "per_output" program), add them, re-solve, until none is found or the
    budget is spent. Every loss and both formulations and vector penalties: the ReLU program's "group" penalty
    searches (Σ_k σ_k^±(D)²)^½ ≤ β over all columns at once; the gated program its constraint ‖X̃ᵀW_DΛ_k‖ ≤ β
    (‖X̃ᵀW_DΛ‖_F ≤ β for "group"), by :func:`~cvxnn.gated_search.search_gated_violations`, or on every pattern
    when at most ``max_patterns`` are predicted. For the ReLU program each round also takes a short Adam run from
    its network; when Ψ of the result is better, it starts the next solve on its own patterns and the round's
    violated ones (``SearchOptions.nonconvex_steps``).
    ``fit.search`` reports the rounds and the largest violation found; without a complete list ``certified_global``
    stays False.
    init_nonconvex: an int (Adam epochs) or a :class:`NonconvexInit`: the patterns of short
        nonconvex runs (one, or ``NonconvexInit.restarts``) seed the list (alone when ``patterns`` is None, else
        merged with it), and the best run's network (by Ψ) is the starting point, so the objective is at most
        its NC.
    warm_start: a previous :class:`ConvexFit` (its blocks are matched to this list by pattern; its
        list is used when ``patterns`` is None) or blocks (v, w) of shape (P, d), (P, d, c) for c outputs,
        for this list.
        Solvers in SOLVER_WARM_STARTS start there; the fit is never worse than the start.
    progress: show the search rounds and the iterative solvers' progress (objective, gap) with rich
        on stderr (the reference solver prints its own log when ``verbose``).
    callback: with a search, called with each round's :class:`~cvxnn.pattern_search.RoundLog`;
        raising KeyboardInterrupt there (or Ctrl-C) ends the search with the best fit so far
        (status "interrupted").
    time_limit: seconds for every solver, and with a search or a nonconvex seed for the whole call (the smaller
        of it and ``SearchOptions.time_limit``). A solve that reaches it returns its best certified point with
        status "time_limit"; the reference solver passes it to Clarabel (cvxpy's canonicalization before it is
        not interrupted) and returns Clarabel's last iterate projected onto the pattern cones.
    device: "cpu", "cuda" or "cuda:<index>" (:func:`~cvxnn.devices.compute_device`; ValueError where PyTorch
        cannot reach it): where the iterative solvers and a nonconvex seed compute. The cone projections of
        the certificates and of the pattern search run on the CPU (DAQP), as does the reference solver.
    """
    time_limit = check_time_limit(time_limit)
    program = make_program(X, y, beta, formulation, solver, bias, activation, negative_slope, tol, dtype, device,
                           verbose, prune_network, loss, vector_penalty)
    Xt, act = program.Xt, program.activation
    if patterns is None and isinstance(warm_start, ConvexFit):
        patterns = warm_start.patterns
    if init_nonconvex is None and not search:
        pats = resolve_patterns(Xt, patterns, seed=seed, max_patterns=max_patterns, activation=act)
        with FitProgress(progress, None) as bar:
            return program.solve(pats, start=warm_start_blocks(warm_start, pats, Xt.shape[1], program.y.shape[1:]),
                                 callback=bar.solver, time_limit=time_limit)
    from .pattern_search import column_generation, search_options

    options = search_options(search)
    return column_generation(program, patterns, options, init_nonconvex=init_nonconvex, warm_start=warm_start,
                             seed=seed, max_patterns=max_patterns, progress=progress or verbose, callback=callback,
                             time_limit=time_limit)


def make_program(X: Any, y: Any, beta: float, formulation: str = "relu", solver: str = "auto", bias: bool = False,
                 activation: Any = "relu", negative_slope: float = DEFAULT_NEGATIVE_SLOPE, tol: float = 1e-6,
                 dtype: torch.dtype = torch.float64, device: str = "cpu", verbose: bool = False,
                 prune_network: bool = True, loss: Any = "squared", vector_penalty: str = "per_output") -> Program:
    """Validate ``fit``'s arguments and return the :class:`Program` they describe."""
    Xm = as_matrix(X)
    loss = loss_from(loss)
    yv = loss.targets(y, Xm.shape[0])
    beta = _check_beta(beta)
    if formulation not in FORMULATIONS:
        raise ValueError(f"formulation must be one of {FORMULATIONS}, got {formulation!r}.")
    if solver not in SOLVERS:
        raise ValueError(f"solver must be one of {SOLVERS}, got {solver!r}.")
    if vector_penalty not in VECTOR_PENALTIES:
        raise ValueError(f"vector_penalty must be one of {VECTOR_PENALTIES}, got {vector_penalty!r}.")
    act = activation_from(activation, negative_slope)
    Xt = add_bias(Xm) if bias else Xm
    return Program(Xm, yv, Xt, beta, formulation, solver, act, bias, tol, dtype, compute_device(device), verbose,
                   prune_network, loss, vector_penalty)


def warm_start_blocks(warm_start: Any, pats: Patterns, d: int, outputs: tuple[int, ...] = ()
                      ) -> tuple[np.ndarray, np.ndarray] | None:
    """The blocks (v, w) of ``warm_start`` on the list ``pats``: a ConvexFit's blocks matched by pattern
    (zero for patterns it lacks), or a pair of (P, d) arrays — (P, d, c) for ``outputs`` = (c,) — checked
    against the list; None stays None."""
    if warm_start is None:
        return None
    if isinstance(warm_start, ConvexFit):
        if warm_start.v.shape[2:] != tuple(outputs):
            raise ValueError(f"warm_start is a fit with {(*warm_start.v.shape[2:], 1)[0]} output(s); this program "
                             f"has {(*outputs, 1)[0]}.")
        return align_blocks(warm_start.patterns, warm_start.v, warm_start.w, pats)
    try:
        v, w = (np.asarray(b, dtype=float) for b in warm_start)
    except (TypeError, ValueError):
        raise TypeError("warm_start must be a ConvexFit, a pair (v, w) of arrays or None.") from None
    shape = (len(pats), d, *outputs)
    if v.shape != shape or w.shape != shape:
        raise ValueError(f"warm_start blocks must have shape {shape} for this pattern list, "
                         f"got {v.shape} and {w.shape}.")
    if not (np.all(np.isfinite(v)) and np.all(np.isfinite(w))):
        raise ValueError("warm_start blocks contain NaN or inf.")
    return v, w


def align_blocks(source: Patterns, v: np.ndarray, w: np.ndarray, target: Patterns
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Blocks for the list ``target``: the block of each pattern also in ``source``, zero for the others
    ((P, d) or (P, d, c) blocks)."""
    index = {source.masks[:, i].tobytes(): i for i in range(len(source))}
    nv, nw = np.zeros((len(target), *v.shape[1:])), np.zeros((len(target), *v.shape[1:]))
    for j in range(len(target)):
        i = index.get(target.masks[:, j].tobytes())
        if i is not None:
            nv[j], nw[j] = v[i], w[i]
    return nv, nw


def fit_per_output(X: Any, Y: Any, beta: float, patterns: Any = None, **kwargs: Any) -> tuple[TwoLayerNet, list]:
    """The exact one-network-per-output decomposition for the squared loss: c independent scalar fits.

    ½‖F(X) − Y‖_F² = Σ_k ½‖F(X)_{:,k} − Y_{:,k}‖², so with single-output neurons (or the output
    penalty ‖α_j‖₁², THEORY §1.7) the program splits into one scalar program per column, all on
    one pattern list (resolved once from ``patterns``). Returns the combined network — the
    neurons of all c networks, output row e_kᵀα for a neuron of network k, so c·width neurons
    with block-sparse output weights — and the c :class:`ConvexFit` results; their objectives
    and lower bounds add up to the combined network's. ``kwargs`` go to :func:`fit`.
    """
    Xm = as_matrix(X)
    Ym = SQUARED.targets(Y, Xm.shape[0])
    if Ym.ndim == 1:
        Ym = Ym[:, None]
    if kwargs.get("loss", "squared") not in ("squared", SQUARED):
        raise ValueError("the per-output decomposition into independent programs needs the squared loss; use "
                         "fit(..., vector_penalty='per_output') for other losses (one coupled program).")
    bias = bool(kwargs.get("bias", False))
    act = activation_from(kwargs.get("activation", "relu"), kwargs.get("negative_slope", DEFAULT_NEGATIVE_SLOPE))
    Xt = add_bias(Xm) if bias else Xm
    pats = resolve_patterns(Xt, patterns, seed=kwargs.get("seed", 0),
                            max_patterns=kwargs.get("max_patterns", AUTO_ENUMERATE_LIMIT), activation=act)
    fits = [fit(Xm, Ym[:, k], beta, patterns=pats, **kwargs) for k in range(Ym.shape[1])]
    c = Ym.shape[1]
    W1 = np.vstack([f.network.W1 for f in fits])
    w2 = np.vstack([np.outer(f.network.w2, np.eye(c)[k]) for k, f in enumerate(fits)])
    return TwoLayerNet(W1, w2, bias, act), fits


def _solver_dual(dual: np.ndarray | None, y: np.ndarray, loss: Loss) -> np.ndarray | None:
    """The solver's multiplier of z = prediction is ±λ (the sign depends on the solver's convention):
    keep the sign whose repaired point has the larger dual value."""
    if dual is None:
        return None
    options = [loss.repair(s * dual, y) for s in (1.0, -1.0)]
    return max(options, key=lambda lam: loss.dual_value(lam, y))


def _choose_solver(solver: str, formulation: str, size: int, activation: Activation = RELU,
                   loss: Loss = SQUARED, vector: bool = False, design_shape: tuple[int, int] = (0, 0),
                   n_outputs: int = 1, vector_penalty: str = "per_output", warm: bool = False) -> str:
    """Resolve "auto" (size = n·P·c for the (n, d) design and c = ``n_outputs``; ReLU program: ipm while its cost per
    iteration, :func:`~cvxnn.solvers.interior_point.iteration_flops`, is at most IPM_AUTO_FLOPS; gated program:
    ipm for one output and GATED_IPM_LOSSES while a step, :func:`~cvxnn.solvers.gated_interior_point.step_flops`,
    costs at most GATED_IPM_STEP_RATIO FISTA iterations of 2nPd and the solve is not ``warm`` (started from a given
    point, which FISTA continues from while the barrier method recenters: breast cancer, P = 200, an 8-value
    β path took 3.0 s with ipm, 1.1 s with fista), else fista) and refuse combinations a solver
    does not declare (SOLVER_FORMULATIONS, SOLVER_ACTIVATIONS, SOLVER_LOSSES, SOLVER_OUTPUTS, and for ipm on the
    gated program GATED_IPM_LOSSES with one output)."""
    outputs = "vector" if vector else "scalar"
    gated_ipm = formulation == "gated" and loss.name in GATED_IPM_LOSSES and not vector
    if solver == "auto":
        n, d = design_shape
        P = size // max(n * n_outputs, 1)
        fast = "fista" if formulation == "gated" else "ipm"
        if gated_ipm and not warm and step_flops(n, P) <= GATED_IPM_STEP_RATIO * 2.0 * n * P * d:
            fast = "ipm"
        capable = (activation.name in SOLVER_ACTIVATIONS[fast] and loss.name in SOLVER_LOSSES[fast]
                   and outputs in SOLVER_OUTPUTS[fast])
        affordable = formulation == "gated" or not couples_outputs(n_outputs, loss.name, vector_penalty) or \
            iteration_flops(n, d, P, n_outputs, loss.name, vector_penalty) <= IPM_AUTO_FLOPS or \
            not fits_memory(reference_memory_bytes(n, d, P, formulation, n_outputs))
        large = size > AUTO_FAST_SIZE and affordable
        return fast if capable and large else "reference"
    if solver == "ipm" and formulation == "gated" and not gated_ipm:
        raise ValueError("solver 'ipm' solves the gated program for one output with the "
                         f"{' or '.join(GATED_IPM_LOSSES)} loss; got the {loss.name!r} loss"
                         f"{' with vector outputs' if vector else ''}. "
                         "Use solver='fista'.")
    if formulation not in SOLVER_FORMULATIONS[solver]:
        raise ValueError(f"solver {solver!r} does not support the {formulation!r} program; "
                         f"it supports {', '.join(SOLVER_FORMULATIONS[solver])}. Use solver='reference'.")
    if activation.name not in SOLVER_ACTIVATIONS[solver]:
        raise ValueError(f"solver {solver!r} does not support the {activation.name!r} activation; "
                         f"it supports {', '.join(SOLVER_ACTIVATIONS[solver])}. Use solver='reference'.")
    if loss.name not in SOLVER_LOSSES[solver]:
        raise ValueError(f"solver {solver!r} does not support the {loss.name!r} loss; "
                         f"it supports {', '.join(SOLVER_LOSSES[solver])}. Use solver='reference'.")
    if outputs not in SOLVER_OUTPUTS[solver]:
        raise ValueError(f"solver {solver!r} does not support {outputs} outputs; it supports "
                         f"{', '.join(SOLVER_OUTPUTS[solver])} outputs. Use solver='reference'.")
    return solver


def check_time_limit(time_limit: Any) -> float | None:
    """None, or a positive finite number of seconds as a float (ValueError otherwise): ``fit``'s and the
    estimators' ``time_limit``."""
    if time_limit is None:
        return None
    if isinstance(time_limit, (bool, np.bool_)) or not isinstance(time_limit, numbers.Real) \
            or not (np.isfinite(time_limit) and time_limit > 0):
        raise ValueError(f"time_limit must be None or a positive number of seconds, got {time_limit!r}.")
    return float(time_limit)


def _check_beta(beta: Any) -> float:
    try:
        b = float(beta)
    except (TypeError, ValueError):
        raise TypeError(f"beta must be a number, got {beta!r}.") from None
    if not np.isfinite(b) or b <= 0:
        raise ValueError(f"beta must be a positive finite number (the weight decay), got {beta!r}.")
    return b


def _polish(Xt: np.ndarray, lam: np.ndarray, masks: np.ndarray, v: np.ndarray, w: np.ndarray, beta: float,
            formulation: str, activation: Activation = RELU, vector_penalty: str = "per_output",
            use_kkt: bool = True, rtol: float = 1e-10, kkt_rtol: float = 1e-6,
            cone_rtol: float = 1e-6, known: dict[tuple[int, int], float] | None = None,
            upper: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Zero the round-off "dust" an interior-point solver leaves in every block.

    λ is the (approximately) optimal dual point: −∇L(ŷ) for a smooth loss, the solver's for hinge.
    A block is dust when (a) its norm is below ``rtol`` times the largest; or (b) its dual
    constraint at λ is clearly inactive, σ(λ) < β(1 − kkt_rtol), which by the KKT
    conditions forces the block to zero at the optimum; or (c, ReLU) it violates its cone by
    more than ``cone_rtol`` relative to its own size (numerically a zero block: rescaling it
    while pruning would turn the violation into a real error). ``use_kkt=False`` skips (b).
    Vector outputs: "per_output" polishes each output column as a scalar program with λ[:, k];
    "group" applies (a) and (c) to each column and (b) to whole blocks with the group constraint
    (:func:`_zero_inactive_groups`). ``known``: cone values σ_i^± at this λ already computed, keyed (i, ±1), and
    ``upper``: upper bounds (2, P) on them (scalar outputs). (b) needs no projection where these, ‖c‖ ≥ σ, or
    the block's own direction (û = b/‖b‖ inside its cone gives σ ≥ cᵀû) decide it.
    """
    if v.ndim == 3:
        v, w = v.copy(), w.copy()
        for k in range(v.shape[2]):
            v[:, :, k], w[:, :, k] = _polish(Xt, lam[:, k], masks, v[:, :, k], w[:, :, k], beta, formulation,
                                             activation, use_kkt=use_kkt and vector_penalty == "per_output",
                                             rtol=rtol, kkt_rtol=kkt_rtol, cone_rtol=cone_rtol)
        if use_kkt and vector_penalty == "group":
            v, w = _zero_inactive_groups(Xt, lam, masks, v, w, beta * (1 - kkt_rtol), formulation, activation)
        return v, w
    weights = activation.fit_weights(masks)
    S = np.where(masks, 1.0, -1.0)
    scale = np.linalg.norm(Xt, axis=1).max()
    out = []
    for row, (blocks, sign) in enumerate(((v, 1.0), (w, -1.0))):
        b = blocks.copy()
        norms = np.linalg.norm(b, axis=1)
        b[norms <= rtol * max(norms.max(initial=0.0), 1e-300)] = 0.0
        threshold = beta * (1 - kkt_rtol)
        live = np.flatnonzero(np.linalg.norm(b, axis=1) > 0) if use_kkt else np.zeros(0, dtype=int)
        C = sign * (Xt.T @ (weights[:, live] * lam[:, None]))  # c_i, one column per live block
        sigma = np.linalg.norm(C, axis=0)  # ≥ σ_i; exact for the gated program
        kept = np.zeros(live.size, dtype=bool)
        if formulation == "relu":
            if upper is not None:
                sigma = np.minimum(sigma, upper[row, live])
            for j, i in enumerate(live if known else ()):
                sigma[j] = known.get((int(i), int(sign)), sigma[j])  # exact
            unit = b[live] / np.linalg.norm(b[live], axis=1)[:, None]
            inside = (S[:, live] * (Xt @ unit.T)).min(axis=0, initial=0.0) >= 0
            kept = inside & (np.einsum("dj,jd->j", C, unit) >= threshold)  # û ∈ K gives σ ≥ cᵀû
            for j in np.flatnonzero((sigma >= threshold) & ~kept):
                sigma[j] = cone_sigma(Xt, masks[:, live[j]], C[:, j])[0]
        b[live[(sigma < threshold) & ~kept]] = 0.0
        if formulation == "relu":
            viol = np.max(-(S * (Xt @ b.T)), axis=0, initial=0.0)
            b[viol > cone_rtol * scale * np.maximum(norms, 1e-300)] = 0.0
        out.append(b)
    return out[0], out[1]


DROP_SWEEPS = 3  # sweeps of :func:`_drop_costly_blocks`, at most


def _drop_costly_blocks(Xt: np.ndarray, y: np.ndarray, masks: np.ndarray, v: np.ndarray, w: np.ndarray, beta: float,
                        activation: Activation = RELU, loss: Loss = SQUARED) -> tuple[np.ndarray, np.ndarray]:
    """Zero, one at a time, the blocks (one output) whose removal lowers the objective L(z) + β Σ(‖v_i‖ + ‖w_i‖).

    Block j predicts p_j = ±W_iXu_j; zeroing it changes the objective by Δ_j = L(z − p_j) − L(z) − β‖u_j‖. Each
    sweep takes the blocks with Δ_j < 0, most negative first, and zeroes each one whose removal still lowers the
    objective at the updated z; at most DROP_SWEEPS sweeps. At an optimum no Δ_j is negative. An interior-point
    iterate stopped early (time limit, Ctrl-C) spreads weight over every block: breast cancer (P = 100, β = 1) after
    1 s had 190 neurons at 30.4708, and 126 at 30.4053 after the sweeps (the optimum: 30.3581 with 88 neurons).
    Zero blocks stay feasible, so the fit's certificate holds with the lower objective."""
    weights = activation.fit_weights(masks)
    v, w = v.copy(), w.copy()
    blocks = ((v, 1.0), (w, -1.0))

    def prediction(side: int, i: int) -> np.ndarray:
        B, sign = blocks[side]
        return sign * weights[:, i] * (Xt @ B[i])

    z = convex_prediction(Xt, masks, v, w, activation)
    for _ in range(DROP_SWEEPS):
        fit = loss.value(z, y)
        live = [(side, i) for side, (B, _) in enumerate(blocks) for i in np.flatnonzero(np.linalg.norm(B, axis=1))]
        deltas = np.array([loss.value(z - prediction(side, i), y) - fit - beta * np.linalg.norm(blocks[side][0][i])
                           for side, i in live])
        dropped = False
        for j in np.argsort(deltas)[:int(np.sum(deltas < 0))]:
            side, i = live[j]
            p = prediction(side, i)
            trial = loss.value(z - p, y)
            if trial - fit < beta * np.linalg.norm(blocks[side][0][i]):
                z, fit, dropped = z - p, trial, True
                blocks[side][0][i] = 0.0
        if not dropped:
            break
    return v, w


def _zero_inactive_groups(Xt: np.ndarray, lam: np.ndarray, masks: np.ndarray, v: np.ndarray, w: np.ndarray,
                          threshold: float, formulation: str, activation: Activation = RELU
                          ) -> tuple[np.ndarray, np.ndarray]:
    """Zero each "group" block V_i (W_i) whose dual constraint at Λ is below ``threshold``: (Σ_k σ_ik^±²)^½ for the
    ReLU program (cone projections, only where the screen ‖X̃ᵀW_iΛ‖_F, an upper bound, does not decide it),
    ‖X̃ᵀW_iΛ‖_F for the gated one (its blocks are V_i = U_i, W_i = 0). By the KKT conditions such a block is zero
    at the optimum, so what the interior-point method left there is dust."""
    weights = activation.fit_weights(masks)
    out = []
    for blocks, sign in ((v, 1.0), (w, -1.0)):
        b = blocks.copy()
        for i in np.flatnonzero(np.any(b != 0, axis=(1, 2))):
            C = sign * (Xt.T @ (weights[:, [i]] * lam))  # (d, c)
            value = float(np.linalg.norm(C))
            if formulation == "relu" and value >= threshold:
                value = group_cone_sigma(Xt, masks[:, i], C)[0]
            if value < threshold:
                b[i] = 0.0
        out.append(b)
    return out[0], out[1]


def _program_objective(Xt, y, masks, v, w, beta, formulation, activation: Activation = RELU,
                       loss: Loss = SQUARED, vector_penalty: str = "per_output") -> float:
    if formulation == "relu":
        return convex_objective(Xt, y, masks, v, w, beta, activation, loss, vector_penalty)
    pred = convex_prediction(Xt, masks, v, np.zeros_like(v), activation)
    return loss.value(pred, y) + beta * block_penalty(v, np.zeros_like(v), vector_penalty)


def _decompose_all(Xt: np.ndarray, pats: Patterns, u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Gated blocks u → cone blocks (v, w) with v − w = u (:func:`~cvxnn.cones.min_norm_split`), block by
    block, and for (P, d, c) blocks column by column: each column of V_i, W_i lies in K(D_i)."""
    if u.ndim == 3:
        pairs = [_decompose_all(Xt, pats, u[:, :, k]) for k in range(u.shape[2])]
        return np.stack([p[0] for p in pairs], axis=-1), np.stack([p[1] for p in pairs], axis=-1)
    v, w = np.zeros_like(u), np.zeros_like(u)
    for i in np.flatnonzero(np.linalg.norm(u, axis=1) > 0):
        v[i], w[i] = min_norm_split(Xt, pats.masks[:, i], u[i])
    return v, w
