"""A structured primal-dual interior-point method for the cone-constrained ReLU program.

Program, for fit weights W_i = aD_i + b(I − D_i) of the activation and S_i = 2D_i − I (THEORY §1.6),
written with one block U_j ∈ R^{d×c} per pattern and side (V_i: sign s_j = +1, W_i: s_j = −1) and c outputs
(c = 1: a scalar output, blocks u_j ∈ R^d):

    min  L(A(U)) + β Σ_g ‖U_g‖   s.t.  G_j = S_iXU_j ≥ 0 (every column),     A(U) = Σ_j s_j W_iXU_j ∈ R^{n×c},

for a smooth loss L (squared, logistic, cross-entropy) or the hinge (below), and
the groups g of the vector penalty (as in the reference solver): the columns U_j[:, k] ("per_output",
one group per pattern, side and output) or the blocks U_j ("group", Frobenius norm). Rows with x_k = 0
carry no constraint.

**Smoothing of the norm by the cone barrier.** Writing ‖U_g‖ ≤ t with the barrier −μ log(t² − ‖U_g‖²)
(a second-order cone of any dimension: d for a column, dc for a block) and minimizing over t in closed
form gives, with r = ‖U_g‖ and û = U_g/r,

    φ_μ(r) = min_t βt − μ log(t² − r²) = βt_μ − μ log(2μt_μ/β),   t_μ(r) = (μ + √(μ² + β²r²))/β,
    ∇φ_μ(U_g) = βU_g/t_μ,   ∇²φ_μ(U_g) = τ(I − ûûᵀ) + ρûûᵀ,   τ = β/t_μ,  ρ = τ − β²r²/(t_μ²√(μ² + β²r²)),

a smooth convex function that tends to β‖U_g‖ as μ → 0 (error at most μ(2 + |log(2μt/β)|) per group;
:class:`~cvxnn.solvers.smoothing.BarrierNorm`).

**Primal-dual steps (Mehrotra predictor-corrector) on the cone rows.** With multipliers m ≥ 0
(one per live row, block and column) the perturbed KKT conditions of min L(A(U)) + Σ_g φ_μ(U_g)
s.t. G(U) ≥ 0 are r_d = ∇f_μ(U) − Gᵀ(m) = 0 and g ∘ m = σμ. Newton's method on them gives

    (∇²f_μ + Gᵀdiag(m/g)G) ΔU = −r_d + Gᵀ(r_c/g),   Δm = (r_c − m ∘ GΔU)/g,

with r_c = σμ − g ∘ m (the corrector adds −Δg_aff ∘ Δm_aff); μ = gᵀm/N and σ = (μ_aff/μ)³ from
the affine predictor (σ = 0). Then up to CENTRALITY_CORRECTORS **centrality correctors** (Gondzio): at the
trial step ã = min(1, 1.5a + 0.1) the products v = (g + ãΔg) ∘ (m + ãΔm) outside [0.1σμ, 10σμ] are moved
back into the box, t = clip(v) − v (at least −10σμ), and r_c + t is solved again with the same factors; the
new direction is kept while its step grows by at least 0.01. A solve costs a small part of a factorization:
measured on the planted problem (n = 2000, d = 20, P = 100) 42 → 31 iterations and 17.2 s → 14.6 s, on breast
cancer 30 → 25 iterations at the same time. U and m take one common step, 99 % of the distance to the boundary
(g > 0, m > 0): with a non-quadratic objective (the smoothed norm moves with μ) separate primal and
dual steps were seen to cycle.

**The hinge** L(Z) = Σ_kl (1 − y_kl z_kl)_+ = min{Σ s_kl : s ≥ 0, s ≥ 1 − Y∘Z} gets its epigraph slacks s and
2nc more complementarity rows: s ≥ 0 with multipliers q, e = s − 1 + Y∘Z ≥ 0 with multipliers p, and the
stationarity 1 − p − q = 0 in s. Eliminating s under the log barriers of both rows would give the smooth
ψ_μ of :class:`~cvxnn.solvers.smoothing.BarrierHinge` (closed forms there); the IPM keeps s, p, q as
primal-dual variables instead (a primal barrier inside the Newton system was measured to stall far from the
central path) and starts them on ψ_μ's central path (s = ψ_μ's minimizer, p = ψ_μ', q = 1 − p). Newton
on the rows eliminates Δs, Δp, Δq (:class:`_HingePart`), so the U system keeps its form with a diagonal
H = diag(h), h = 1/(e/p + s/q) entrywise, the fit gradient −Y∘p in r_d, and one more right-hand-side term.
The hinge rows have the weight κ = N/(2nc) (N the cone rows): target κσμ, products counted as
(sᵀq + eᵀp)/κ in μ, so hinge and cones each carry about half the duality gap while h ~ 1/(κμ) stays κ times
smaller than with κ = 1 (measured at tol 1e-7 on five small problems and breast cancer: κ = 1 left two of them
stalled above 1e-6, κ = N/(2nc) none). The dual point of the certificate is Λ = Y∘clip(p, 0, 1), inside the
hinge conjugate's domain; it is returned as the solver's dual point.

**The Newton matrix** is R + AᵀHA with H = blockdiag_k(H_k) the per-sample c x c Hessian blocks of L
(I squared, diag(σ(1 − σ)) logistic, diag(p) − ppᵀ cross-entropy, diag(h) hinge) and R block diagonal over the
groups. The cone rows act on each column separately: with C_jk = Xᵀdiag(m_jk/g_jk)X (d x d),

* "per_output" (and one output): R_jk = C_jk + ∇²φ_μ(U_j[:, k]), a d x d block, Cholesky-factored as is;
* "group": R_j = B_j + (ρ − τ)ûûᵀ on vec U_j (dc x dc) with B_j = blockdiag_k(C_jk + τI) — the Cholesky
  factors of the c blocks C_jk + τI and Sherman–Morrison give R_j⁻¹ = B_j⁻¹ + γ_jw_jw_jᵀ,
  w_j = B_j⁻¹û, γ_j = (τ − ρ)/(ûᵀB_j⁻¹(C_j + ρI)û) (the denominator 1 − (τ − ρ)ûᵀB_j⁻¹û, rewritten with
  I − τB_j⁻¹ = B_j⁻¹C_j, without the subtraction). The dc x dc matrix is never formed: c d x d factors per
  block instead of one dc x dc factor (c² times less work). Near a solution the radial curvature ûᵀR_jû of
  a nonzero block is O(μ) while ‖C_j‖ is O(1/μ), so the denominator is known only to about ε‖B_j‖/τ: it is
  floored there (RADIAL_FLOOR), as :func:`_cholesky` shifts an indefinite d x d block — without the floor,
  γ_j came out zero or wrong by orders of magnitude, with Newton-step errors of 10–60 % that the
  refinement below could not repair (a 30-sample problem at μ ~ 1e-10).

**Woodbury, in O(n²·2P·d·c).** With H_k = J_kJ_kᵀ (J_k = H_k^½ diagonal for squared, logistic and hinge,
:meth:`~cvxnn.solvers.fista.SmoothLoss.hessian_roots`; the cross-entropy below) and J = blockdiag_k(J_k),

    (R + AᵀHA)⁻¹ = R⁻¹ − R⁻¹AᵀJ K⁻¹ JᵀAR⁻¹,     K = I + JᵀAR⁻¹AᵀJ   (n·c x n·c),

where AR⁻¹Aᵀ = blockdiag_k(M_k) + Σ_j γ_jf_jf_jᵀ, M_k = Σ_j F_jkF_jkᵀ with F_jk = W_iX L_jk^{-T}
(n x d; L_jk the factor of R_jk or of C_jk + τI; the sign s_j cancels) and f_j = vec(W_iXw_j) (group only).
So every iteration forms c Gram matrices M_k (the two sides of a pattern share W_iX, so their terms
are summed first: M_k = Σ_i W_iX N_ikXᵀW_i with N_ik = R_{i+,k}⁻¹ + R_{i−,k}⁻¹, chunked over patterns,
BLOCK_CHUNK_BYTES at a time; :func:`_fit_grams`). Only T = JK⁻¹Jᵀ is ever applied, and (but for the hinge with
"group", below) never through one (n·c) x (n·c) matrix. Without the rank-one terms and with a diagonal J
(squared, logistic or hinge loss with "per_output", in particular one output) K₀ = I + Jᵀblockdiag(M_k)J is block
diagonal: c matrices I + J_(k)M_kJ_(k) of size n x n, J_(k) = diag of the k-th entries of the J_k (with the squared
loss these are the c independent scalar programs, solved together), factored once for the predictor and the
correctors.

**The cross-entropy through c matrices of size n and one Schur complement.** The cross-entropy's coupling of the
classes is one projector per sample: H_a = D_a^½(I − q_aq_aᵀ)D_a^½ with D_a = diag(p_a) and the unit vector
q_a = √p_a, so J_a = D_a^½(I − q_aq_aᵀ) gives K₀ = I + Π𝔼Π with Π = blockdiag_a(I − q_aq_aᵀ) and
𝔼 = blockdiag_k(E_k), E_k = D_k^½M_kD_k^½ (D_k = diag(p_{·k}), n x n). Only JK₀⁻¹Jᵀ = D^½ΠK₀⁻¹ΠD^½ is needed, and
on the range of Π the inverse of the compression of G = I + 𝔼 is

    ΠK₀⁻¹Π = G⁻¹ − G⁻¹Q̃S⁻¹Q̃ᵀG⁻¹,   S = Q̃ᵀG⁻¹Q̃ = Σ_k D_k^½(I + E_k)⁻¹D_k^½   (n x n),

Q̃ the orthonormal columns q_a. So one iteration factors the c matrices G_k = I + E_k (formed as the separable
K_k are) and S, a sum of positive semidefinite terms with no subtraction, from the inverses G_k⁻¹
(:func:`_softmax_schur`): c·n³ flops instead of (n(c − 1))³/6 for the joint matrix of size n(c − 1) used before
(J_k = Q(QᵀH_kQ)^½, Q a basis of 1⊥). Digits' 10 classes, one thread (``benchmarks/bench_softmax_ipm.py``):
n = 1797, P = 50, 52 s an iteration with the joint matrix, 7.5 s now (32 iterations, 241 s, to a gap of 2e-7);
n = 400, P = 30, the same 21 iterations to the same objective and gap, 27.8 s → 10.0 s.

**"group": the blocks' rank-one terms through a 2P x 2P capacitance.** With Frobenius groups (c > 1),
K = K₀ + HHᵀ with the 2P columns H = JᵀF√Γ (F = [f_j]), so by Woodbury once more, with T₀ = JK₀⁻¹Jᵀ (symmetric)
applied to the 2P columns f_j once per iteration,

    T = T₀ − T₀F√Γ C⁻¹ √ΓFᵀT₀,     C = I + √ΓFᵀT₀F√Γ   (2P x 2P),

instead of one (n·c) x (n·c) matrix (n·(c − 1) for the cross-entropy): c·(n²Pd + n³/3) + 8P·c·n² + (2P)³/3 flops
against P·c·n²d + (n·c)³/6 + 2P·(n·c)², and c + 2 matrices of size n x n. The iterative refinement below checks
the composed solve against the Newton matrix itself. The hinge keeps the one matrix K = blockdiag_k(K_k) + HHᵀ
(:func:`_joint_matrix`): its margin curvature h ~ 1/μ makes the capacitance's correction cancel (two ±1 outputs,
40 samples, 20 patterns: stalled at a gap of 1.5e-4 through C, 5.1e-7 in 17 iterations through the one matrix), as
it costs the pattern side accuracy below. :func:`iteration_flops` estimates the cost.

**The pattern side, for n > Pd.** When K is separable and n exceeds about Pd (:func:`_sample_side` compares
n²Pd + n³/6 with n(Pd)² + (Pd)³/6), the same factors give a Pd x Pd system instead of n x n ones. Per output
column (H = diag(h), h = J², G = FᵀHF with F = [W_1X … W_PX], so AᵀHA = [[G, −G], [−G, G]] on the two sides),
R₊x₊ + G(x₊ − x₋) = b₊ and R₋x₋ − G(x₊ − x₋) = b₋ give for the net blocks u = x₊ − x₋

    (I + NG)u = R₊⁻¹b₊ − R₋⁻¹b₋,   N = blockdiag(N_i) = CCᵀ,   i.e.   K'ũ = C⁻¹(R₊⁻¹b₊ − R₋⁻¹b₋),  u = Cũ,
    K' = I + CᵀGC = I + 𝔽ᵀH𝔽   (𝔽 = [W_iXC_i]: the matrix whose n x n Gram the sample side forms),

then x = R⁻¹(b − Aᵀ(h ∘ Fu)) (:meth:`_System._pattern_solve`). K' is formed over chunks of samples
(:func:`_pattern_grams`), so no n x n matrix exists and the memory is O(nPc + (Pd)²): the ReLU program with
n = 100 000 samples fits. Composing the two Woodbury identities instead (K⁻¹ = I − J𝔽K'⁻¹𝔽ᵀJ inside the
sample-side formula) cancelled catastrophically near the solution (Newton residuals 1e-4 after refinement,
stalled at a gap of 1.4e-6 on n = 2000, d = 20, P = 20); this form keeps the sample side's accuracy there
(the same 26 iterations and gap, 3.9x faster). The hinge stays on the sample side: its curvature h ~ 1/μ at
margin points left the pattern side stalled at 5.5e-6 where the sample side reaches 3.6e-7 (same problem).

**The squared loss forms G once.** Its Hessian is H = I at every iterate, so G = FᵀF (Pd x Pd) is formed once per
solve (n·(Pd)²/2, :func:`_fit_gram`) and each iteration's K' = I + CᵀGC costs 2d·(Pd)² multiply-adds
(:func:`_congruence`: one product per block row of C) instead of n·(Pd)²; the refinement's fit term and the solve's
Aᵀ(A(x)) go through G as well (:meth:`_System._fit_curvature`). Planted d = 20 (one thread, the same iterations,
objectives and gaps; ``benchmarks/newton_sides_gram.txt``, ``benchmarks/large_n_gram.txt``): n = 2000, P = 50 3.26 s →
1.64 s; P = 100, where the sample side was chosen (10.32 s), 5.54 s; n = 20 000, P = 20 20.5 s → 11.3 s; n = 100 000,
P = 20 290 s → 142 s. The Cholesky factor of K' is then most of an iteration at n ≈ Pd (:data:`FACTOR_WEIGHT`), the
cone products at n ≫ Pd.

**Iterative refinement.** R⁻¹ is large (O(1/μ)) along the radial directions of nonzero blocks, where the
fit term supplies the curvature, so the Woodbury correction cancels against R⁻¹ there and loses digits
as μ → 0. Each solve
is therefore refined with the Newton matrix applied matrix-free (AᵀHA + Gᵀdiag(m/g)G + ∇²φ_μ, O(n·P·d·c)),
x ← x + W(rhs − Nx) with W the Woodbury solve, up to REFINEMENT_STEPS times while the residual exceeds
REFINEMENT_RTOL · ‖rhs‖ and each step halves it (early iterations need none: breast cancer 2.8 s → 2.4 s).
The d x d blocks are factored with a relative shift (:data:`BLOCK_SHIFT`, 1e-13 · the largest diagonal entry),
which the refinement removes: near the solution they are nearly singular, and without the shift the hinge's
large curvature h at margin points made the Woodbury solve lose all accuracy (a 40-sample problem with the
absolute value stalled at a gap of 1.1e-6 for 200 iterations; with it, 17 iterations).

**Certificate at every iteration.** With Λ = −∇L(A(U)) (n x c) and the multipliers m ≥ 0, Moreau's
decomposition (duality.py) bounds the dual constraint of column k of block j by
b_jk = ‖s_jXᵀW_iΛ[:, k] + XᵀS_im_jk‖ ≥ ‖Π_K(D_i)(s_jXᵀW_iΛ[:, k])‖ (at r_d = 0 it is the group's
β‖·‖/t_μ < β). The constraint of a group is b_jk ("per_output") or (Σ_k b_jk²)^½ ("group": the largest
⟨s_jXᵀW_iΛ, V⟩ over V with columns in K(D_i) and ‖V‖_F ≤ 1 is the root sum of the squared column values).
With σ_max the largest, θ = tΛ is dual feasible for t ∈ [0, β/σ_max] within the loss's domain (the
cross-entropy needs the rows of Y − tΛ in the simplex: t ≤ min{Y_kj/Λ_kj : Λ_kj > 0}, and λ = Y − softmax
has rows summing to 0), and d(tΛ) at the best such t (:meth:`~cvxnn.losses.Loss.best_scale`) is a lower
bound. When only a few groups exceed β (the multipliers of nearly-zero blocks converge last), or when
the gap would close were every group within β (|F − d(Λ)| ≤ tol·|F|: then the bounds of nonzero blocks,
≈ β − μ/‖U_g‖ + O(‖r_d‖), exceed β only because μ has reached the accuracy of the steps), their column
bounds are replaced by the exact ‖Π_K(s_jXᵀW_iΛ[:, k])‖ (a cone projection); so are all of them after
EXACT_STALE iterations without a higher lower bound (a pattern search's late round on breast cancer, 184 patterns
from a warm start: more than EXACT_BLOCKS multiplier bounds stayed above β, the bound kept its start value and the
solve stopped as stalled at a reported gap of 0.78 with the objective converged; it now certifies 4.9e-7 in 31
iterations, 3.5 s). The iterate is strictly feasible,
so its objective L(A(U)) + β Σ_g ‖U_g‖ is an upper bound. The solve stops when their relative gap is
≤ ``tol``.

**Polish on the face (smooth losses).** Λ moves with ‖X‖ ~ √n times the error of the prediction, so at large n the
iterates reach the optimal objective long before Λ certifies it, and the Newton systems (curvatures m/g up to 1e18)
lose the accuracy to go further: planted n = 8000, d = 20, P = 20 stalled at a gap of 1.0e-4 with the objective 5e-9
from the optimum. After an iteration whose objective has settled (POLISH_SETTLED) but whose lower bound did not rise
(by more than STALL_SPREAD of the gap), :func:`~cvxnn.solvers.polish.polish` fixes the binding rows and the zero
groups the iterate shows and solves the smooth program on that face by Newton's method, repairing the active set
where a step reaches a row or a multiplier comes out negative; its point, moved inside the cones along the interior
directions, and its multipliers go through the same certificate (Λ taken before the move, which only shifts
round-off violations). The same problem certifies 5e-12 (37 iterations, 5.0 s; 31 with the start below).

**Start.** Every column starts at εc_j inside its cone (:func:`_strict_start`, :func:`_start_scale`), c_j the
analytic center of the cone computed from the given interior direction (the gate; :func:`_analytic_centers`): a
gate can lie anywhere in its thin cone, and starting from the centers takes 10–20 % fewer iterations. A warm start
is shifted by at most WARM_START_SHIFT times its median column norm, so that it is not lost (25–60 % fewer
iterations from the patterns and Ψ of an Adam run).

Blocks of a pattern whose cone has empty interior are held at zero: with every full-dimensional
cell of the arrangement in the list such cones add nothing (each of their points lies in the
closure of a full-dimensional cell with the same fit term), and the certificate still covers them
(m_j = 0).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any, Callable

import torch

from ..data import check_memory
from ..duality import cone_sigma
from ..losses import SQUARED, Loss
from ..operators import PatternOperator
from .augmented_lagrangian import ConeRepair
from .fista import SmoothLoss, restrict
from .gram import add_lower_gram_, cholesky_solve, mirror_lower_
from .polish import polish
from .smoothing import BarrierHinge, BarrierNorm
from .result import RESOLUTION, NumericalBreakdown, SolverOutput, budget_status

BLOCK_CHUNK_BYTES = 256 * 2**20  # memory for the F_jk factors formed at once
TYPICAL_ITERATIONS = 30  # iterations a solve's one-time work is spread over when choosing a side (20–40 measured)
FACTOR_WEIGHT = 2.0  # a Cholesky multiply-add costs about two of a matrix product's when choosing a side (one
#                      thread, n = 2000, d = 20, squared loss: the pattern side took 0.21 / 0.56 / 1.12 s an iteration
#                      at Pd = 2000 / 3000 / 4000 against 0.40 / 0.57 / 0.76 s on the sample side); for the other
#                      losses the two sides' costs are symmetric in n and Pd, so n ≤ Pd decides with any weight
BOUNDARY_FRACTION = 0.99
RADIAL_FLOOR = 1e-14  # relative floor of a block's radial curvature in the Sherman–Morrison term ("group")
REFINEMENT_STEPS = 3  # iterative refinement of each Newton solve, while the residual halves
REFINEMENT_RTOL = 1e-9  # a Newton solve whose relative residual is at most this is not refined
CENTRALITY_CORRECTORS = 2  # Gondzio's multiple centrality correctors per iteration, at most
CENTRALITY_BOX = (0.1, 10.0)  # products g·m outside [0.1σμ, 10σμ] at the trial step are corrected
BLOCK_SHIFT = 1e-13  # relative shift of the d x d blocks of R when factored (module docstring, refinement)
STALL_ITERATIONS = 10  # stop ("stalled") when over this many iterations neither the lower bound has risen nor the
STALL_SPREAD = 1e-3  # objective values have spread by more than this fraction of the gap (plus RESOLUTION): the
#                      iterates no longer move. Measured: breast cancer, 153 patterns of a pattern search, the gap
#                      stuck at 1.44e-6 against tol 1e-6 from iteration 35 to 200 (28 s) with the objective unchanged
#                      to 4e-12. (Small problems also wander for 20 iterations with the best gap unchanged before
#                      converging; there the objective keeps moving.)
EXACT_BLOCKS = 8  # groups whose dual bound is recomputed exactly when only this many exceed β
EXACT_STALE = 3  # ... or every group above β, after this many iterations without a higher lower bound
CENTERING_STEPS = 50  # Newton steps of the analytic centers of the cones (the start's directions), at most
CENTERING_TOL = 1e-8  # ... until every squared Newton decrement is this small
CENTERING_ARMIJO = 0.25  # ... each step raising the centering objective by this fraction of its first-order gain
CENTERING_HALVINGS = 40  # ... the step halved this many times at most
WARM_START_SHIFT = 0.3  # a warm start's shift into the cones: at most this times its median nonzero column norm
WARM_START_DUST = 1e-6  # ... over the columns above this times the largest one
HINGE_START_MU = 1.0  # hinge: μ of the slacks for the start point's certificate, before the IPM's μ is known
POLISH_EVERY = 2  # a polish on the iterate's face (smooth losses) after an iteration whose lower bound did not rise
#                   (by more than STALL_SPREAD of the gap) while its objective moved by at most POLISH_SETTLED
#                   (relative), at most every this many iterations (doubled after each polish that leaves the gap
#                   open)
POLISH_SETTLED = 1e-6
POLISH_BUDGET = 10.0  # ... with Newton steps on the face worth at most this many iterations (iteration_flops): a
#                       pattern search's breast cancer list (P = 265) had faces of 2 600–4 900 free coordinates, a
#                       step 3–17 iterations' work, and 8 polishes took 50 s of a 55 s solve; at n = 8000, P = 20 a
#                       step is 0.1 iteration


def couples_outputs(c: int, loss_name: str, vector_penalty: str) -> bool:
    """Whether K couples the outputs: a non-diagonal loss Hessian (cross-entropy) or Frobenius groups."""
    return loss_name == "cross_entropy" or (vector_penalty == "group" and c > 1)


def _sample_side(n: int, d: int, P: int, loss_name: str = "squared") -> bool:
    """Whether the separable Woodbury system is solved on the sample side (K = I + J𝔽𝔽ᵀJ, n x n: n²·P·d to form,
    n³/6 to factor) rather than on the pattern side (K' = I + 𝔽ᵀJ²𝔽, Pd x Pd: (Pd)³/6 to factor and n·(Pd)² to
    form, or for the squared loss 2d·(Pd)² from the solve's one G = FᵀF, whose n·(Pd)²/2 is spread over
    TYPICAL_ITERATIONS; module docstring): when it is cheaper, and always for the hinge (its margin curvature
    h ~ 1/μ costs the pattern side accuracy: module docstring)."""
    (sample_form, sample_factor), (pattern_form, pattern_factor) = _side_costs(n, d, P, loss_name)
    return loss_name == "hinge" or \
        sample_form + FACTOR_WEIGHT * sample_factor <= pattern_form + FACTOR_WEIGHT * pattern_factor


def _side_costs(n: int, d: int, P: int, loss_name: str) -> tuple[tuple[float, float], tuple[float, float]]:
    """Multiply-adds (to form, to factor) of one iteration's K on the sample side and on the pattern side
    (:func:`_sample_side`)."""
    k = P * d
    form = 2.0 * d * k * k + n * k * k / (2.0 * TYPICAL_ITERATIONS) if loss_name == "squared" else n * k * k
    return (n * n * k, n ** 3 / 6.0), (form, k ** 3 / 6.0)


def iteration_flops(n: int, d: int, P: int, c: int = 1, loss_name: str = "squared",
                    vector_penalty: str = "per_output") -> float:
    """Multiply-adds of one iteration (module docstring), for n samples, d features, P patterns, c outputs:

    3·P·c·n·d²          the cone Hessians C_jk (n·d² per block and column) and the products XC_ik (n·d² per
                        pattern and column), plus, for the Woodbury matrix K,
    c·(n²Pd + n³/6) or c·(n(Pd)² + (Pd)³/6)   c matrices on the sample side (the Gram matrices M_k, n²d per
                        pattern and column: both sides' R⁻¹ are summed first, :func:`_fit_grams`) or on the pattern
                        side (:func:`_sample_side` chooses; always the sample side when the outputs are coupled;
                        squared loss: 2d(Pd)² + n(Pd)²/(2·TYPICAL_ITERATIONS) instead of n(Pd)², :func:`_side_costs`),
    c·5n³/6             for the cross-entropy: the inverses G_k⁻¹ for the Schur matrix S (:func:`_softmax_schur`),
    8P·c·n² + (2P)³/3   for "group" with c > 1: T₀ on the 2P rank-one columns and their capacitance, or
    (n·c)³/6 + 2P·(n·c)²  with the hinge, whose "group" program keeps one (n·c) x (n·c) matrix.
    """
    work = 3.0 * P * c * n * d * d
    sample, pattern = _side_costs(n, d, P, loss_name)
    if couples_outputs(c, loss_name, vector_penalty) or _sample_side(n, d, P, loss_name):
        work += c * sum(sample)
    else:
        work += c * sum(pattern)
    if loss_name == "cross_entropy":
        work += c * 5.0 * n ** 3 / 6.0
    if vector_penalty == "group" and c > 1:
        N = n * c
        work += N ** 3 / 6.0 + 2.0 * P * N * N if loss_name == "hinge" else 8.0 * P * c * n * n + (2.0 * P) ** 3 / 3.0
    return work


@dataclass
class _Factors:
    """One iteration's factorization of R + AᵀHA (module docstring).

    Linv: inverse Cholesky factors L_jk⁻¹ (2, P, c, d, d) of R_jk ("per_output") or C_jk + τI ("group"):
        applying them is a batched product, several times faster than batched triangular solves with d x d blocks.
    gamma, w: the Sherman–Morrison terms (2, P) and (2, P, c, d) of "group" (None otherwise).
    J: the roots of the loss Hessian (n, c) (:meth:`~cvxnn.solvers.fista.SmoothLoss.hessian_roots`); LK: the factors
    of K₀ (c, n, n) on the sample side (of the G_k for the cross-entropy), (c, Pd, Pd) on the pattern side.
    pattern: the factors C_ik of N_ik = R_{i+,k}⁻¹ + R_{i−,k}⁻¹, (P, c, d, d), when K is on the pattern side.
    schur: the factor of S (n, n), cross-entropy only. low_rank: T₀F√Γ (n, c, 2P) and the capacitance's factor
    (2P, 2P), "group" only.
    """

    Linv: torch.Tensor
    gamma: torch.Tensor | None
    w: torch.Tensor | None
    J: torch.Tensor
    LK: torch.Tensor
    pattern: torch.Tensor | None
    schur: torch.Tensor | None
    low_rank: tuple[torch.Tensor, torch.Tensor] | None
    curvature: tuple[torch.Tensor, ...]  # (m/g, H blocks, τ, ρ, û) for applying the Newton matrix itself


class _System:
    """The blocks' products and the Newton system at one iterate (module docstring); blocks U are (2, P, d, c)."""

    def __init__(self, op: PatternOperator, live: torch.Tensor, loss_name: str, beta: float, c: int,
                 vector_penalty: str, sample_side: bool) -> None:
        self.op, self.live, self.beta = op, live, beta
        self.grouped = vector_penalty == "group" and c > 1
        self.softmax = loss_name == "cross_entropy"  # K⁻¹ through S (module docstring)
        self.joint = self.grouped and loss_name == "hinge"  # one (n·c) x (n·c) matrix (module docstring)
        self.dims = (2, 3) if self.grouped else (2,)  # the axes of one group of U
        self.sample_side = sample_side  # K on the sample side (always when coupled: :func:`_sample_side`)
        self.constant_curvature = loss_name == "squared"  # H = I: K' = I + CᵀGC with G = FᵀF formed once
        self.fit_gram: torch.Tensor | None = None  # G (Pd x Pd), formed at the first pattern-side factor
        self.XX = (op.X[:, :, None] * op.X[:, None, :]).reshape(op.n, op.d * op.d)
        self.weights = torch.as_tensor(op.activation.fit_weights(op.masks.cpu().numpy()), dtype=op.dtype,
                                       device=op.device)  # (n, P)

    def cone(self, U: torch.Tensor) -> torch.Tensor:
        """G(U) (2, n, P, c): (S_iXU_j)_k for both sides and every column, zero on rows with x_k = 0."""
        G = torch.stack([self.op.cone_products(U[0]), self.op.cone_products(U[1])])
        return G * self.live[None, :, None, None]

    def cone_adjoint(self, M: torch.Tensor) -> torch.Tensor:
        """Gᵀ(M) (2, P, d, c)."""
        return torch.stack([self.op.cone_adjoint(M[0]), self.op.cone_adjoint(M[1])])

    def fit(self, U: torch.Tensor) -> torch.Tensor:
        """A(U) = Σ_i W_iX(V_i − W_i) (n, c)."""
        return self.op.matvec(U[0]) - self.op.matvec(U[1])

    def fit_adjoint(self, r: torch.Tensor) -> torch.Tensor:
        """Aᵀr = (XᵀW_ir, −XᵀW_ir) as (2, P, d, c)."""
        g = self.op.rmatvec(r)
        return torch.stack([g, -g])

    def norms(self, U: torch.Tensor) -> torch.Tensor:
        """‖U_g‖ per group: (2, P, c) for columns, (2, P) for blocks."""
        return U.norm(dim=self.dims)

    def spread(self, x: torch.Tensor) -> torch.Tensor:
        """A per-group quantity broadcast against U (2, P, d, c)."""
        return x[:, :, None, None] if self.grouped else x[:, :, None, :]

    def smoothed_norm(self, U: torch.Tensor, mu: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(∇φ_μ, the coefficients (τ, ρ) of I − ûûᵀ and ûûᵀ in ∇²φ_μ) per group
        (:class:`~cvxnn.solvers.smoothing.BarrierNorm`)."""
        tangential, radial = BarrierNorm(self.beta, mu).coefficients(self.norms(U))
        return self.spread(tangential) * U, tangential, radial

    def factor(self, U: torch.Tensor, loss: _SmoothPart, z: torch.Tensor, G: torch.Tensor, m: torch.Tensor,
               mu: float) -> _Factors:
        """Factors of the blocks of R, of K, and the loss Hessian factor J (module docstring)."""
        two, P, d, c = U.shape
        D = torch.where(self.live[None, :, None, None], m / torch.where(G > 0, G, 1.0), 0.0)
        C = (D.permute(0, 2, 3, 1).reshape(-1, self.op.n) @ self.XX).view(two, P, c, d, d)  # Xᵀdiag(m_jk/g_jk)X
        _, tangential, radial = self.smoothed_norm(U, mu)
        unit_blocks = U / self.spread(self.norms(U)).clamp(min=1e-300)
        unit = unit_blocks.transpose(2, 3)  # û by columns: (2, P, c, d)
        eye = torch.eye(d, dtype=U.dtype, device=U.device)
        gamma = w = None
        if self.grouped:
            B = C + tangential[..., None, None, None] * eye
            Linv = _inverse_factor(B)
            w = (Linv.transpose(-1, -2) @ (Linv @ unit[..., None]))[..., 0]  # B_j⁻¹û, column by column
            curv = (C @ unit[..., None])[..., 0] + radial[..., None, None] * unit  # (C_j + ρI)û
            # ûᵀB⁻¹(C + ρI)û is known to about ε‖B_j‖/τ only: floored there, as _cholesky shifts a block
            floor = RADIAL_FLOOR * B.diagonal(dim1=-2, dim2=-1).amax(dim=(-2, -1)) / tangential
            gamma = (tangential - radial) / torch.maximum((w * curv).sum(dim=(2, 3)), floor)
        else:
            R = C + tangential[..., None, None] * eye
            R = R + (radial - tangential)[..., None, None] * (unit[..., :, None] * unit[..., None, :])
            Linv = _inverse_factor(R)
        C = _cholesky((Linv.transpose(-1, -2) @ Linv).sum(dim=0))  # C_ikC_ikᵀ = N_ik, (P, c, d, d)
        J = loss.hessian_roots(z)  # (n, c): H_k = diag(J_k) Π_k diag(J_k) (softmax: J_k = √p_k)
        pattern = None
        if self.sample_side:  # K_k = I + diag(J_(k)) M_k diag(J_(k)) (softmax: G_k = I + E_k) in place, on the
            root = J.T  # (c, n)                                                 lower triangle Cholesky reads
            K = _fit_grams(self.op.X, C, self.weights).mul_(root[:, :, None]).mul_(root[:, None, :])
            K.diagonal(dim1=1, dim2=2).add_(1.0)
        elif self.constant_curvature:  # K'_k = I + C_kᵀGC_k with the solve's one G = FᵀF (module docstring)
            if self.fit_gram is None:
                self.fit_gram = _fit_gram(self.op.X, self.weights)
            K, pattern = _congruence(self.fit_gram, C), C
            K.diagonal(dim1=1, dim2=2).add_(1.0)
        else:  # K'_k = I + 𝔽_kᵀ diag(J_(k))² 𝔽_k, on its lower triangle
            K, pattern = _pattern_grams(self.op.X, C, self.weights, J), C
        fits = None if gamma is None else self._rank_one_fits(w, gamma).reshape(self.op.n, -1, c).transpose(1, 2)
        if self.joint:  # the hinge with "group": K₀'s blocks on the diagonal of one matrix, plus HHᵀ (H = J∘F)
            K = _joint_matrix(K, J[..., None] * fits)
        LK = _cholesky(K)
        curvature = (D, loss.hessian_blocks(z), tangential, radial, unit_blocks)
        f = _Factors(Linv, gamma, w, J, LK, pattern, _softmax_schur(LK, J) if self.softmax else None, None, curvature)
        if fits is not None and not self.joint:  # the rank-one terms F (n, c, 2P): T₀F and the capacitance
            TF = self._apply_kinv(f, fits)
            f.low_rank = (TF, _cholesky(torch.eye(TF.shape[2], dtype=TF.dtype, device=TF.device)
                                        + torch.einsum("akj,akl->jl", fits, TF)))
        return f

    def newton_apply(self, f: _Factors, V: torch.Tensor) -> torch.Tensor:
        """(∇²f_μ + Gᵀdiag(m/g)G) V: AᵀHAV + Gᵀ((m/g) ∘ GV) + τV + (ρ − τ)û⟨û, V⟩ per group (for the iterative
        refinement of the Woodbury solves), AᵀHA through G = FᵀF where the solve keeps it. The cone term stays
        matrix-free: the formed C_jk = Xᵀdiag(m_jk/g_jk)X carry round-off of the size of the largest m/g (up to 1e18)
        in every direction, which the refinement must see (applied through them, planted n = 20 000, P = 20 took 51
        iterations instead of 44)."""
        D, H, tangential, radial, unit = f.curvature
        out = self._fit_curvature(H, V) + self.cone_adjoint(D * self.cone(V))
        along = (unit * V).sum(dim=self.dims)
        return out + self.spread(tangential) * V + self.spread((radial - tangential) * along) * unit

    def _fit_curvature(self, H: torch.Tensor, V: torch.Tensor) -> torch.Tensor:
        """AᵀHAV (2, P, d, c) for the loss Hessian blocks H (n, c, c); with G = FᵀF (the squared loss, H = I, on the
        pattern side) as [Gu, −Gu] for the net blocks u = V₊ − V₋, (Pd)²·c multiply-adds instead of 2n·P·d·c."""
        if self.fit_gram is None:
            return self.fit_adjoint(torch.einsum("akl,al->ak", H, self.fit(V)))
        return self._gram_fit(V[0] - V[1])

    def _gram_fit(self, u: torch.Tensor) -> torch.Tensor:
        """AᵀA x = [Gu, −Gu] (2, P, d, c) for the net blocks u = x₊ − x₋ (P, d, c), through the kept G = FᵀF."""
        P, d, c = u.shape
        g = (self.fit_gram @ u.reshape(P * d, c)).view(P, d, c)
        return torch.stack([g, -g])

    def _rank_one_fits(self, w: torch.Tensor, gamma: torch.Tensor) -> torch.Tensor:
        """√γ_j W_iXw_j for every block j, as (n, 2, P, c) (the sign s_j cancels in f_jf_jᵀ)."""
        two, P, c, d = w.shape
        Xw = (self.op.X @ w.permute(3, 0, 1, 2).reshape(d, -1)).view(self.op.n, two, P, c)
        return Xw * self.weights[:, None, :, None] * gamma.clamp(min=0.0).sqrt()[None, :, :, None]

    def _apply_rinv(self, f: _Factors, rhs: torch.Tensor) -> torch.Tensor:
        """R⁻¹rhs: block Cholesky solves per column, plus γ_jw_j⟨w_j, rhs_j⟩ for "group"."""
        cols = rhs.transpose(2, 3)
        out = (f.Linv.transpose(-1, -2) @ (f.Linv @ cols[..., None]))[..., 0]
        if f.w is not None:
            out = out + (f.gamma * (f.w * cols).sum(dim=(2, 3)))[..., None, None] * f.w
        return out.transpose(2, 3)

    def _apply_kinv(self, f: _Factors, z: torch.Tensor) -> torch.Tensor:
        """J K⁻¹ Jᵀz for z (n, c) or a batch (n, c, m) (K on the sample side): T z with T = J K₀⁻¹ Jᵀ through the
        per-output factors (and S for the cross-entropy), then for "group" T z − TF C⁻¹ (TF)ᵀz with the capacitance
        C = I + FᵀTF of the blocks' rank-one terms F (module docstring)."""
        Z = z if z.ndim == 3 else z[..., None]
        root = f.J  # (n, c)
        v = (root[..., None] * Z).permute(1, 0, 2)  # (c, n, m)
        if self.joint:
            y = cholesky_solve(f.LK, v.reshape(1, -1, v.shape[2])).view(v.shape)
        else:
            y = cholesky_solve(f.LK, v)  # K_k⁻¹ or G_k⁻¹ D^½z, (c, n, m)
        if f.schur is not None:  # J_a = diag(√p_a)(I − q_aq_aᵀ), q_a = √p_a: JK₀⁻¹Jᵀ = D^½(G⁻¹ − G⁻¹Q̃S⁻¹Q̃ᵀG⁻¹)D^½
            t = cholesky_solve(f.schur, (root.T[..., None] * y).sum(dim=0))  # S⁻¹Q̃ᵀG⁻¹D^½z, (n, m)
            y = y - cholesky_solve(f.LK, root.T[..., None] * t)
        T = root[..., None] * y.permute(1, 0, 2)
        if f.low_rank is not None:
            TF, LC = f.low_rank
            T = T - TF @ cholesky_solve(LC, torch.einsum("akj,akm->jm", TF, Z))
        return T if z.ndim == 3 else T[..., 0]

    def _woodbury(self, f: _Factors, rhs: torch.Tensor) -> torch.Tensor:
        """(R + AᵀHA)⁻¹ rhs by Woodbury (K on the sample side) or through the net blocks (pattern side)."""
        Rinv = self._apply_rinv(f, rhs)
        if f.pattern is not None:
            return self._pattern_solve(f, rhs, Rinv)
        return Rinv - self._apply_rinv(f, self.fit_adjoint(self._apply_kinv(f, self.fit(Rinv))))

    def _pattern_solve(self, f: _Factors, rhs: torch.Tensor, Rinv: torch.Tensor) -> torch.Tensor:
        """(R + AᵀHA)x = b on the pattern side, H = diag(h) (module docstring): with G = FᵀHF (F = [W_iX]_i,
        A = [F, −F]) the net blocks u = x₊ − x₋ solve (I + N G)u = R₊⁻¹b₊ − R₋⁻¹b₋, N = blockdiag(C_ikC_ikᵀ); with
        u = Cũ that is K'ũ = C⁻¹(R₊⁻¹b₊ − R₋⁻¹b₋), K' = I + CᵀGC = I + 𝔽ᵀH𝔽. Then x = R⁻¹(b − Aᵀ(h ∘ A(x))),
        A(x) = Fu."""
        P, c, d, _ = f.pattern.shape
        net = (Rinv[0] - Rinv[1]).transpose(1, 2)[..., None]  # (P, c, d, 1)
        t = torch.linalg.solve_triangular(f.pattern, net, upper=False)
        t = cholesky_solve(f.LK, t[..., 0].permute(1, 0, 2).reshape(c, P * d, 1))
        u = (f.pattern @ t.view(c, P, d).permute(1, 0, 2)[..., None])[..., 0].transpose(1, 2)  # (P, d, c)
        if self.fit_gram is not None:  # Aᵀ(h ∘ A(x)) = [Gu, −Gu] (h = 1)
            return self._apply_rinv(f, rhs - self._gram_fit(u))
        h = f.J ** 2
        return self._apply_rinv(f, rhs - self.fit_adjoint(h * self.op.matvec(u)))

    def solve(self, f: _Factors, rhs: torch.Tensor) -> torch.Tensor:
        """(R + AᵀHA)⁻¹ rhs by Woodbury, with up to REFINEMENT_STEPS steps of iterative refinement while the
        residual exceeds REFINEMENT_RTOL · ‖rhs‖ and each step halves it."""
        x = self._woodbury(f, rhs)
        res = rhs - self.newton_apply(f, x)
        for _ in range(REFINEMENT_STEPS):
            if float(res.norm()) <= REFINEMENT_RTOL * float(rhs.norm()):
                break
            x_new = x + self._woodbury(f, res)
            res_new = rhs - self.newton_apply(f, x_new)
            if not bool(res_new.norm() < 0.5 * res.norm()):
                break
            x, res = x_new, res_new
        return x


class _SmoothPart:
    """A smooth loss in the Newton system: curvature H = ∇²L(Z) (per-sample c x c blocks, factor J) and gradient
    ∇L(Z). It has no variables or complementarity rows of its own; the other methods are those of
    :class:`_HingePart`, trivial here."""

    rows = 0
    weight = 1.0

    def __init__(self, smooth: SmoothLoss) -> None:
        self.smooth = smooth

    def center(self, z: torch.Tensor, mu: float) -> None:
        pass

    def products(self, delta: HingeStep | None = None, a_p: float = 0.0, a_d: float = 0.0) -> float:
        return 0.0

    def hessian_blocks(self, z: torch.Tensor) -> torch.Tensor:
        return self.smooth.hessian_blocks(z)

    def hessian_roots(self, z: torch.Tensor) -> torch.Tensor:
        return self.smooth.hessian_roots(z)

    def gradient(self, z: torch.Tensor) -> torch.Tensor:
        return self.smooth.value_and_gradient(z)[1]

    def targets(self, sigma_mu: float, affine: HingeStep | None) -> Any:
        return None

    def rhs(self, targets: Any) -> torch.Tensor | None:
        return None

    def direction(self, dz: torch.Tensor, targets: Any) -> HingeStep | None:
        return None

    def step_lengths(self, delta: HingeStep | None) -> tuple[float, float]:
        return 1.0, 1.0

    def move(self, step: float, delta: HingeStep | None) -> None:
        pass

    def dual(self, z: torch.Tensor) -> tuple[float, torch.Tensor]:
        """(L(Z), Λ = −∇L(Z))."""
        return self.smooth.dual_direction(z)


HingeStep = tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]  # (Δs, Δe, Δp, Δq)


class _HingePart(_SmoothPart):
    """The hinge in primal-dual form (module docstring): slacks s, e = s − 1 + Y∘Z, multipliers q, p (all n x c).

    Newton on qΔs + sΔq = r_q, pΔe + eΔp = r_p (Δe = Δs + Y∘ΔZ) and Δp + Δq = r_s = 1 − p − q gives, with
    w = p/e + q/s (entrywise),

        Δs = (r_p/e + r_q/s − r_s − (p/e) Y∘ΔZ)/w,   Δp = g − h∘Y∘ΔZ,   Δq = r_s − Δp,
        h = (p/e)(q/s)/w = 1/(e/p + s/q),   g = r_p/e − (p/e)(r_p/e + r_q/s − r_s)/w,

    so the hinge enters the U system through the curvature diag(h), the gradient −Y∘p (in r_d) and the
    right-hand side term Aᵀ(Y∘g). Its 2nc rows have the weight κ = ``cone_rows``/(2nc): targets κσμ, and
    products counted as (sᵀq + eᵀp)/κ in the duality measure.
    """

    def __init__(self, smooth: SmoothLoss, cone_rows: int) -> None:
        super().__init__(smooth)
        self.y = smooth.y64
        self.rows = 2 * int(self.y.numel())
        self.weight = max(cone_rows, 1) / self.rows
        self.s = self.e = self.p = self.q = torch.zeros_like(self.y)

    def center(self, z: torch.Tensor, mu: float) -> None:
        """Slacks and multipliers on the central path of ψ_μ at the prediction Z (qs = pe = μ, p + q = 1)."""
        barrier = BarrierHinge(mu)
        margin = 1 - self.y * z
        self.s = barrier.slack(margin)
        self.e = self.s - margin
        self.p = barrier.slope(margin)
        self.q = 1 - self.p

    def products(self, delta: HingeStep | None = None, a_p: float = 0.0, a_d: float = 0.0) -> float:
        """(sᵀq + eᵀp)/κ, after primal and dual steps a_p, a_d along delta when given."""
        if delta is None:
            return float((self.s * self.q + self.e * self.p).sum()) / self.weight
        ds, de, dp, dq = delta
        return float(((self.s + a_p * ds) * (self.q + a_d * dq) + (self.e + a_p * de) * (self.p + a_d * dp)).sum()
                     ) / self.weight

    def _curvature(self) -> torch.Tensor:
        return 1.0 / (self.e / self.p + self.s / self.q)

    def hessian_blocks(self, z: torch.Tensor) -> torch.Tensor:
        return torch.diag_embed(self._curvature())

    def hessian_roots(self, z: torch.Tensor) -> torch.Tensor:
        return self._curvature().sqrt()

    def gradient(self, z: torch.Tensor) -> torch.Tensor:
        return -self.y * self.p

    def targets(self, sigma_mu: float, affine: HingeStep | None) -> tuple[torch.Tensor, torch.Tensor]:
        """(r_q, r_p) = κσμ − q∘s, κσμ − p∘e, minus Δq∘Δs and Δp∘Δe of the affine step for the corrector."""
        goal = self.weight * sigma_mu
        r_q, r_p = goal - self.q * self.s, goal - self.p * self.e
        if affine is not None:
            ds, de, dp, dq = affine
            r_q, r_p = r_q - dq * ds, r_p - dp * de
        return r_q, r_p

    def _parts(self, targets: tuple[torch.Tensor, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(p/e, w, r_p/e + r_q/s − r_s)."""
        r_q, r_p = targets
        pe = self.p / self.e
        return pe, pe + self.q / self.s, r_p / self.e + r_q / self.s - (1 - self.p - self.q)

    def rhs(self, targets: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        """Y∘g, whose Aᵀ is the hinge's term of the U system's right-hand side."""
        pe, w, b = self._parts(targets)
        return self.y * (targets[1] / self.e - pe * b / w)

    def direction(self, dz: torch.Tensor, targets: tuple[torch.Tensor, torch.Tensor]) -> HingeStep:
        """(Δs, Δe, Δp, Δq) for the fit step ΔZ."""
        pe, w, b = self._parts(targets)
        ds = (b - pe * self.y * dz) / w
        de = ds + self.y * dz
        dp = (targets[1] - self.p * de) / self.e
        return ds, de, dp, (1 - self.p - self.q) - dp

    def step_lengths(self, delta: HingeStep | None) -> tuple[float, float]:
        """Fraction-to-the-boundary steps: primal (s, e > 0) and dual (p, q > 0)."""
        ds, de, dp, dq = delta
        return (min(_step_length(self.s, ds), _step_length(self.e, de)),
                min(_step_length(self.p, dp), _step_length(self.q, dq)))

    def move(self, step: float, delta: HingeStep | None) -> None:
        ds, de, dp, dq = delta
        self.s, self.e, self.p, self.q = self.s + step * ds, self.e + step * de, self.p + step * dp, self.q + step * dq

    def dual(self, z: torch.Tensor) -> tuple[float, torch.Tensor]:
        """(the hinge at Z, Λ = Y∘clip(p, 0, 1)): p repaired into the hinge conjugate's domain Λ_kl y_kl ∈ [0, 1]."""
        return self.smooth.loss_value(z), self.y * self.p.clamp(0.0, 1.0)


def _interior_directions(op: PatternOperator, interior: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
    """Unit directions c_i with S_iXc_i > 0 on the rows with x_k ≠ 0, and which patterns have one: the given
    ``interior`` directions (e.g. gates) where strictly interior, else the sharpness LP
    (:class:`~cvxnn.solvers.augmented_lagrangian.ConeRepair`, shared with the augmented Lagrangian)."""
    cones = ConeRepair(op, interior)
    cones.find_interior(torch.arange(op.P, device=op.device))
    C, ok = cones.C.clone(), cones.ok.clone()
    C[ok] /= C[ok].norm(dim=1, keepdim=True)
    return C, ok


def _analytic_centers(op: PatternOperator, live: torch.Tensor, XX: torch.Tensor, C: torch.Tensor) -> torch.Tensor:
    """The analytic centers of the cones from the interior directions C (P, d): per pattern the maximizer of

        f(u) = Σ_k log(s_kx_kᵀu) − (N/2)‖u‖²      (k over the N live rows, s_k = ±1 the signs of S_i),

    whose stationarity Σ_k s_kx_k/g_k = Nu gives ‖u‖ = 1 at the optimum (multiply by u). Newton steps (Hessian
    Xᵀdiag(1/g²)X + NI) with a backtracking line search (:func:`_centering_step`), batched over the patterns
    whose squared Newton decrement λ² still exceeds CENTERING_TOL, CENTERING_STEPS at most. A gate lies anywhere
    in its thin cone; the center's smallest relative margin s_kx_kᵀu/‖x_k‖ is 5–10x larger, and the ipm started
    from it takes fewer iterations (measured: breast cancer P = 100 25 → 21, planted n = 2000, d = 20, P = 100
    31 → 26, n = 20 000, P = 20 51 → 44). With the line search, digits (P = 100) takes 0.5 s; the damped step
    1/(1 + λ) of self-concordant analysis, which needs none, took all 50 steps and 1.6 s from decrements λ ≈ 15."""
    P, d = C.shape
    N = float(live.sum())
    if P == 0 or N == 0:
        return C
    U = C / C.norm(dim=1, keepdim=True)
    todo = torch.arange(P, device=C.device)
    eye = torch.eye(d, dtype=C.dtype, device=C.device)
    for _ in range(CENTERING_STEPS):
        cones = restrict(op, todo)
        G = cones.cone_products(U[todo])  # (n, p)
        inverse = torch.where(live[:, None], 1.0 / torch.where(G > 0, G, 1.0), 0.0)
        grad = cones.cone_adjoint(inverse) - N * U[todo]
        H = ((inverse * inverse).T @ XX).view(-1, d, d) + N * eye
        step = cholesky_solve(_cholesky(H), grad[..., None])[..., 0]  # SPD; shifted where round-off says otherwise
        decrement = (grad * step).sum(dim=1).clamp(min=0.0)
        U[todo] = _centering_step(cones, live, U[todo], G, step, decrement)
        todo = todo[decrement > CENTERING_TOL]
        if todo.numel() == 0:
            break
    return U / U.norm(dim=1, keepdim=True)


def _centering_step(op: PatternOperator, live: torch.Tensor, U: torch.Tensor, G: torch.Tensor, step: torch.Tensor,
                    decrement: torch.Tensor) -> torch.Tensor:
    """U + t·step per pattern (rows of U, cone products G), t the first of 1, ½, ¼, … that keeps every live row
    strictly inside the cone and raises f (:func:`_analytic_centers`) by at least CENTERING_ARMIJO·t·λ²
    (λ² = ``decrement``, the derivative along the Newton step); U itself where no t ≥ 2^−CENTERING_HALVINGS does."""
    N = float(live.sum())

    def value(V: torch.Tensor, G: torch.Tensor) -> torch.Tensor:
        inside = ((G > 0) | ~live[:, None]).all(dim=0)
        logs = torch.where(live[:, None] & (G > 0), G, 1.0).log().sum(dim=0)
        return torch.where(inside, logs - 0.5 * N * (V * V).sum(dim=1), -math.inf)

    base = value(U, G)
    t = torch.ones_like(decrement)
    accepted = torch.zeros_like(decrement, dtype=torch.bool)
    for _ in range(CENTERING_HALVINGS):
        trial = U + t[:, None] * step
        accepted = value(trial, op.cone_products(trial)) >= base + CENTERING_ARMIJO * t * decrement
        if bool(accepted.all()):
            break
        t = torch.where(accepted, t, 0.5 * t)
    return torch.where(accepted[:, None], U + t[:, None] * step, U)


def _strict_start(op: PatternOperator, live: torch.Tensor, C: torch.Tensor, U0: torch.Tensor, eps: float
                  ) -> torch.Tensor:
    """U0 (2, P, d, c) moved strictly inside the cones, column by column: U_j[:, k] + (τ_jk + ε)c_j with
    τ_jk = max_k' [−g_k'(U_j[:, k])/g_k'(c_j)]_+."""
    GC = op.cone_products(C)[live][:, :, None]
    out = U0.clone()
    for side in range(2):
        G = op.cone_products(U0[side])[live]
        shift = torch.clamp(-G / GC, min=0.0).amax(dim=0) * 1.01 + eps
        out[side] = U0[side] + shift[:, None, :] * C[:, :, None]
    return out


def _start_scale(op: PatternOperator, smooth: SmoothLoss, C: torch.Tensor, beta: float, group_norm: float,
                 U0: torch.Tensor) -> float:
    """ε for the start shift εc_j (every column): well inside the cones (interior-point methods start best
    far from the boundary, at a large μ), yet bounded — each side predicts about 100‖Y‖_F and the penalty
    2βεP·ν is at most 10·L(0), ν = ‖1_c‖ in the penalty's norm (c per output, √c per block, 1 for one
    output). Measured: breast cancer (P = 100, squared) 29 iterations, against 29 from a 10x and 55 from a
    1000x smaller ε; digits (500 samples, P = 20, cross-entropy) 29 against 44 from a 10x smaller ε; on
    30-sample problems with 3 outputs and "group" at most 27 against at most 62.

    A warm start U0 (2, P, d, c) with nonzero columns keeps its scale: ε is at most WARM_START_SHIFT times their
    median norm, over the columns above WARM_START_DUST times the largest (a solver's answer carries zero blocks
    as dust of 1e-14 to 1e-12, which would otherwise set the median). That ε was 27–180x the median before, and the
    shift all but erased the start. Measured from the race's starts (Ψ of a 1500-step Adam run, P = 97–100,
    tol 1e-2 / 1e-3 / 1e-6): breast cancer 11 / 13 / 19 → 8 / 10 / 15 iterations, digits 10 / 11 / 15 →
    7 / 9 / 13, planted n = 2000, d = 20 15 / 20 / 30 → 6 / 11 / 21, d = 50 10 / 14 / 22 → 6 / 9 / 16 (a factor
    0.1 or 1 gained less on two of the four)."""
    if op.P == 0:
        return 1.0
    c = smooth.y.shape[1]
    reach = float(op.matvec(C).norm()) * math.sqrt(c)
    base = smooth.loss_value(torch.zeros_like(smooth.y))
    eps = min(100.0 * float(smooth.y.norm()) / max(reach, 1e-300), 5.0 * base / (beta * op.P * group_norm))
    columns = U0.norm(dim=2).flatten()
    if bool((columns > 0).any()):
        significant = columns[columns > WARM_START_DUST * columns.max()]
        eps = min(eps, WARM_START_SHIFT * float(significant.median()))
    return max(eps, 1e-12)


def _memory_bytes(n: int, d: int, P: int, c: int, sample_side: bool, schur: bool, low_rank: bool,
                  joint: bool, fit_gram: bool = False) -> float:
    """Float64 bytes held at once: K, its factor and the previous iteration's factor (alive until replaced;
    ``fit_gram``: the squared loss's G = FᵀF on the pattern side, the product C_kᵀG of :func:`_congruence` and a copy
    made while G is formed;
    ``schur``: S, its factor, the previous one and one G_k⁻¹; ``low_rank``: T₀F, the capacitance and its factor,
    twice; ``joint``: the (n·c) x (n·c) matrix, its factor and the previous one), one chunk of 𝔽, the d x d blocks
    (C, R, L), the (2, n, P, c) cone tensors (G, m, their steps, D), the (2, P, d, c) blocks and the (n, d²)
    products x_kx_kᵀ of the cone Hessians."""
    k_entries = 3 * c * (n * n if sample_side else (P * d) ** 2) + (4 * n * n if schur else 0) \
        + (3 * (P * d) ** 2 if fit_gram else 0) \
        + (2 * (4 * P * n * c + 2 * (2 * P) ** 2) if low_rank else 0) + (3 * (n * c) ** 2 if joint else 0)
    return 8.0 * (k_entries + 3 * 2 * P * c * d * d + 10 * n * P * c + 20 * P * d * c + n * d * d) \
        + 2 * BLOCK_CHUNK_BYTES


def solve_relu_interior(op: PatternOperator, y: torch.Tensor, beta: float, tol: float = 1e-6,
                        V0: torch.Tensor | None = None, W0: torch.Tensor | None = None,
                        interior: torch.Tensor | None = None, loss: Loss = SQUARED, max_iter: int = 200,
                        time_limit: float | None = None,
                        callback: Callable[[int, float, float], object] | None = None,
                        vector_penalty: str = "per_output") -> SolverOutput:
    """Minimize the ReLU program on op's patterns by the primal-dual interior-point method until the
    certified relative gap ≤ tol.

    y: (n,) targets (blocks (P, d)) or (n, c) (blocks (P, d, c); one-hot rows for the cross-entropy),
    with the groups of ``vector_penalty`` ("per_output": columns, "group": blocks).
    Computed in float64 on op's device (an op in another dtype is converted). V0, W0: start blocks
    shaped as the result (zeros by default; every column is moved strictly inside its cone). interior:
    (P, d) interior directions (e.g. the gates). Status "optimal", "max_iter", "time_limit", "stalled"
    (no step possible, a Newton matrix that does not factor, or the iterates stopped moving short of the gap:
    STALL_ITERATIONS) or "interrupted" (Ctrl-C); the best certified point so far is returned in every
    case. ``callback(iteration, objective, lower_bound)`` after every iteration. One output: ``info`` holds
    the returned point's Λ ("dual_point") and upper bounds on its cone values σ_i^± (2, P): the
    multiplier bounds ‖±XᵀW_iΛ + XᵀS_im‖, exact where a cone projection computed them ("dual_bounds"). With the
    hinge the output's ``dual`` is the certificate's dual point tΛ (shaped as y); the smooth losses leave it None
    (their Λ is −∇L at the returned point).
    """
    start = time.perf_counter()
    if op.dtype != torch.float64:
        op = PatternOperator(op.X.double(), op.masks, device=op.device, activation=op.activation)
    f64 = dict(dtype=torch.float64, device=op.device)
    n, d, P = op.n, op.d, op.P
    Y = torch.as_tensor(y, **f64)
    scalar = Y.ndim == 1
    Y = Y[:, None] if scalar else Y
    c = Y.shape[1]
    smooth = SmoothLoss(loss, Y)
    live = op.X.norm(dim=1) > 0
    C, ok = _interior_directions(op, interior)
    keep = torch.nonzero(ok).flatten()
    Pk = int(keep.numel())
    coupled = couples_outputs(c, loss.name, vector_penalty)
    sample_side = coupled or _sample_side(n, d, Pk, loss.name)
    grouped = vector_penalty == "group" and c > 1
    check_memory(_memory_bytes(n, d, Pk, c, sample_side, loss.name == "cross_entropy",
                               grouped and loss.name != "hinge", grouped and loss.name == "hinge",
                               not sample_side and loss.name == "squared"),
                 f"the interior-point method on {n} samples x {Pk} patterns x {c} outputs",
                 "use fewer samples or patterns, or the gated program with solver='fista'.", device=op.device)
    system = _System(restrict(op, keep), live, loss.name, beta, c, vector_penalty, sample_side)
    U = torch.zeros(2, Pk, d, c, **f64)
    for side, B in enumerate((V0, W0)):
        if B is not None:
            U[side] = torch.as_tensor(B, **f64).reshape(P, d, c)[keep]
    group_norm = float(system.norms(torch.ones(1, 1, 1, c, **f64)).sum())
    C = _analytic_centers(system.op, live, system.XX, C[keep])  # the start shifts along the cones' centers
    U = _strict_start(system.op, live, C, U, _start_scale(system.op, smooth, C, beta, group_norm, U))
    n_rows = max(2 * Pk * c * int(live.sum()), 1)
    live4 = live[None, :, None, None]
    part = _SmoothPart(smooth) if loss.smooth else _HingePart(smooth, n_rows)
    history: list[tuple[float, float, float]] = []
    best = {"primal": math.inf, "lower": -math.inf, "U": U.clone(), "theta": None, "lam": None, "bounds": None}

    def certify(U: torch.Tensor, z: torch.Tensor, m: torch.Tensor, dual_z: torch.Tensor | None = None,
                exact: bool = False) -> float:
        """Upper bound at U (returned), lower bound d(tΛ) with the cone multipliers m; keep the best of each. Λ is
        taken at the prediction ``dual_z`` where given (a polished point before its move inside the cones)."""
        value, lam = part.dual(z)
        if dual_z is not None:
            lam = part.dual(dual_z)[1]
        primal = value + beta * float(system.norms(U).sum())
        fit_part = op.rmatvec(lam)  # XᵀW_iΛ (P, d, c), shared by both sides and the exact recomputation
        cone_part = torch.zeros(2, P, d, c, **f64)
        cone_part[:, keep] = system.cone_adjoint(m)  # XᵀS_im_jk
        bounds = torch.stack([(fit_part + cone_part[0]).norm(dim=1), (-fit_part + cone_part[1]).norm(dim=1)])
        improved = primal < best["primal"]
        if improved:
            best.update(primal=primal, U=U.clone(), lam=lam)
        # if the gap would close were every group within β (t ≤ 1), recompute every group above β exactly
        # (two-sided: far from the solution d(λ) can exceed the primal value, λ being far from feasible)
        optimistic = smooth.dual_on_ray(lam, smooth.best_scale(lam, 1.0))
        decisive = abs(best["primal"] - optimistic) <= tol * abs(best["primal"])
        bound, bounds = _sharpen(op, fit_part, bounds, beta, system.grouped,
                                 None if decisive or exact else EXACT_BLOCKS)
        if improved:
            best["bounds"] = bounds
        t = smooth.best_scale(lam, math.inf if bound <= 0 else beta / bound)
        lower = smooth.dual_on_ray(lam, t)
        if lower > best["lower"]:
            best["lower"], best["theta"] = lower, t * lam
        history.append((time.perf_counter() - start, primal, best["lower"]))
        return primal

    def gap_ok() -> bool:
        return best["primal"] - best["lower"] <= tol * max(abs(best["primal"]), 1e-300)

    z, G = system.fit(U), system.cone(U)
    part.center(z, HINGE_START_MU)
    trail = [(certify(U, z, torch.zeros_like(G)), best["lower"])]  # (the iterate's objective, the best lower bound)
    mu = max(best["primal"] - best["lower"], 1e-12 * abs(best["primal"])) / n_rows
    m = torch.where(live4, mu / G.clamp(min=1e-300), 0.0)
    part.center(z, part.weight * mu)
    rows = n_rows + part.rows

    def common_step(dG: torch.Tensor, dm: torch.Tensor, delta: HingeStep | None) -> float:
        """The one step U, m (and the hinge's variables) take along a direction: fraction to the boundary."""
        return min(_step_length(G, dG), _step_length(m, dm), *part.step_lengths(delta))

    status, it, polished, spacing = "optimal", 0, -POLISH_EVERY, POLISH_EVERY
    polish_budget = POLISH_BUDGET * iteration_flops(n, d, Pk, c, loss.name, vector_penalty)
    try:
        while not gap_ok():
            budget = budget_status(it, max_iter, start, time_limit)
            if budget is not None:
                status = budget
                break
            it += 1
            mu = (float((G * m).sum()) + part.products()) / rows
            factors = system.factor(U, part, z, G, m, mu)
            grad_norm = system.smoothed_norm(U, mu)[0]
            r_d = system.fit_adjoint(part.gradient(z)) + grad_norm - system.cone_adjoint(m)
            safe_G = torch.where(live4, G, 1.0)

            def direction(r_c: torch.Tensor, targets: Any
                          ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, HingeStep | None]:
                rhs = -r_d + system.cone_adjoint(r_c / safe_G)
                extra = part.rhs(targets)
                if extra is not None:
                    rhs = rhs + system.fit_adjoint(extra)
                dU = system.solve(factors, rhs)
                dG = system.cone(dU)
                delta = None if extra is None else part.direction(system.fit(dU), targets)
                return dU, dG, (r_c - m * dG) / safe_G, delta

            dU, dG, dm, delta = direction(-G * m, part.targets(0.0, None))  # affine predictor
            h_p, h_d = part.step_lengths(delta)
            a_p, a_d = min(_step_length(G, dG), h_p), min(_step_length(m, dm), h_d)
            mu_aff = (float(((G + a_p * dG) * (m + a_d * dm)).sum()) + part.products(delta, a_p, a_d)) / rows
            sigma = min(1.0, (mu_aff / mu) ** 3) if mu > 0 else 0.0
            r_c, hinge_targets = sigma * mu - G * m - dG * dm, part.targets(sigma * mu, delta)
            dU, dG, dm, delta = direction(r_c, hinge_targets)  # corrector
            step = common_step(dG, dm, delta)
            for _ in range(CENTRALITY_CORRECTORS):  # Gondzio's correctors (module docstring)
                goal = min(1.0, 1.5 * step + 0.1)
                trial = (G + goal * dG) * (m + goal * dm)
                low, high = CENTRALITY_BOX[0] * sigma * mu, CENTRALITY_BOX[1] * sigma * mu
                t = (trial.clamp(min=low, max=high) - trial).clamp(min=-high) * live4
                candidate = direction(r_c + t, hinge_targets)
                longer = common_step(*candidate[1:])
                if longer < step + 0.01:
                    break
                (dU, dG, dm, delta), step, r_c = candidate, longer, r_c + t
            if step == 0.0:
                status = "stalled"
                break
            U, G, m = U + step * dU, G + step * dG, (m + step * dm) * live4
            part.move(step, delta)
            z = system.fit(U)
            stale = len(trail) > EXACT_STALE and best["lower"] <= trail[-EXACT_STALE][1]
            primal = certify(U, z, m, exact=stale)
            risen = best["lower"] - trail[-1][1] > STALL_SPREAD * (trail[-1][0] - trail[-1][1])
            settled = abs(primal - trail[-1][0]) <= POLISH_SETTLED * abs(primal)
            if part.rows == 0 and settled and not risen and not gap_ok() and it >= polished + spacing:
                polished = it  # the objective settled, the lower bound did not follow: solve on the face (polish.py)
                face = polish(system.op, system.weights, live, system.XX, U, G, m, smooth, beta, system.grouped,
                              polish_budget)
                if face is not None:
                    inside = _strict_start(system.op, live, C, face[0], 0.0)
                    certify(inside, system.fit(inside), face[1], system.fit(face[0]))
                spacing *= 1 if gap_ok() else 2  # a polish that did not close the gap waits twice as long next
            trail.append((primal, best["lower"]))
            if callback is not None:
                callback(it, best["primal"], best["lower"])
            if len(trail) > STALL_ITERATIONS:
                recent = [p for p, _ in trail[-1 - STALL_ITERATIONS:]]
                spread = STALL_SPREAD * (best["primal"] - best["lower"]) + RESOLUTION * abs(best["primal"])
                if trail[-1][1] - trail[-1 - STALL_ITERATIONS][1] <= spread and max(recent) - min(recent) <= spread:
                    status = "stalled"
                    break
    except KeyboardInterrupt:
        status = "interrupted"
    except NumericalBreakdown:
        status = "stalled"
    V, W = torch.zeros(P, d, c, **f64), torch.zeros(P, d, c, **f64)
    V[keep], W[keep] = best["U"][0], best["U"][1]
    if scalar:
        V, W = V[..., 0], W[..., 0]
    info = {"objective": best["primal"], "lower_bound": best["lower"], "mu": mu, "empty_interior": int((~ok).sum())}
    if scalar and best["lam"] is not None:  # upper bounds on σ_i^± at the returned point's Λ, for fit's checks
        info["dual_point"] = best["lam"][:, 0].cpu().numpy()
        info["dual_bounds"] = best["bounds"][..., 0].cpu().numpy()
    dual = None if loss.smooth or best["theta"] is None else \
        (best["theta"][:, 0] if scalar else best["theta"]).cpu().numpy()
    return SolverOutput(V.cpu().numpy(), W.cpu().numpy(), status, it, time.perf_counter() - start, history,
                        dual=dual, info=info)


def _sharpen(op: PatternOperator, fit_part: torch.Tensor, bounds: torch.Tensor, beta: float, grouped: bool,
             limit: int | None = EXACT_BLOCKS) -> tuple[float, torch.Tensor]:
    """The largest group bound, and the column bounds used — the column bounds (2, P, c) themselves, or their root
    sum of squares per block when ``grouped`` — with, when at most ``limit`` groups (None: any number) exceed β,
    their column bounds replaced by the exact cone norm ‖Π_K(s_jXᵀW_iΛ[:, k])‖ (a projection,
    :func:`~cvxnn.duality.cone_sigma`; fit_part: the (P, d, c) XᵀW_iΛ). Near the solution the multipliers of a few
    nearly-zero blocks lag behind, and the bounds of nonzero blocks, β‖U_g‖/t_μ + O(‖r_d‖) with
    β‖U_g‖/t_μ ≈ β − μ/‖U_g‖, exceed β once μ falls to the accuracy of the Newton steps: the exact values remove
    both from the bound."""

    def per_group(b: torch.Tensor) -> torch.Tensor:
        return b.norm(dim=2) if grouped else b

    over = torch.nonzero(per_group(bounds) > beta)
    if over.shape[0] > 0 and (limit is None or over.shape[0] <= limit):
        Xn = op.X.cpu().numpy()
        fit_np = fit_part.cpu().numpy()
        bounds = bounds.clone()
        for side, i, *column in over.tolist():
            for k in column or range(fit_np.shape[2]):
                exact = cone_sigma(Xn, op.masks[:, i].cpu().numpy(), (1.0 - 2.0 * side) * fit_np[i, :, k])[0]
                bounds[side, i, k] = min(float(bounds[side, i, k]), exact)
    return (float(per_group(bounds).max()) if bounds.numel() else 0.0), bounds


def _step_length(x: torch.Tensor, dx: torch.Tensor) -> float:
    """min(1, 0.99 · the largest α with x + αdx ≥ 0) over the entries with x > 0."""
    if x.numel() == 0:
        return 1.0
    ratio = torch.where((dx < 0) & (x > 0), x / dx, -math.inf).max()  # −(the largest α) if any shrink
    return min(1.0, BOUNDARY_FRACTION * -float(ratio))


def _cholesky(R: torch.Tensor) -> torch.Tensor:
    """Batched Cholesky factors of the SPD blocks R, each block regularized by δ·max diag(R_j)·I with δ
    raised from 1e-14 until it factors. Near a solution R_j is ill-conditioned (rows with g_k → 0 give
    curvature ~m_k/g_k² beside O(1) along u_j), so round-off can make it indefinite; the small shift
    leaves the full Newton matrix R + AᵀHA, whose curvature along u_j comes from the fit term, nearly unchanged.
    Raises :class:`NumericalBreakdown` once δ would exceed 1 (a block with NaN or inf never factors)."""
    L, info = torch.linalg.cholesky_ex(R)
    shift = 1e-14
    while bool((info > 0).any()):
        if shift > 1.0:
            raise NumericalBreakdown("a Newton matrix is not positive definite at any shift")
        bad = info > 0
        Rb = R[bad]
        Rb = Rb + shift * Rb.diagonal(dim1=-2, dim2=-1).amax(dim=-1)[:, None, None] * torch.eye(
            R.shape[-1], dtype=R.dtype, device=R.device)
        Lb, info_b = torch.linalg.cholesky_ex(Rb)
        L[bad] = Lb
        info = info.clone()
        info[bad] = info_b
        shift *= 100
    return L


def _inverse_factor(R: torch.Tensor) -> torch.Tensor:
    """L⁻¹ for the Cholesky factors L of the batched SPD blocks R + BLOCK_SHIFT·max diag(R)·I (further
    regularized by :func:`_cholesky` if need be); the iterative refinement against the exact Newton matrix
    removes the shift."""
    shift = BLOCK_SHIFT * R.diagonal(dim1=-2, dim2=-1).amax(dim=-1)[..., None, None]
    L = _cholesky(R + shift * torch.eye(R.shape[-1], dtype=R.dtype, device=R.device))
    return torch.linalg.solve_triangular(L, torch.eye(R.shape[-1], dtype=R.dtype, device=R.device).expand_as(L),
                                         upper=False)


def _fit_grams(X: torch.Tensor, C: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """M_k = 𝔽_k𝔽_kᵀ = Σ_j F_jkF_jkᵀ (c, n, n) with F_jk = diag(w_i) X L_jk^{-T} (the sign s_j cancels), chunked
    over patterns; ``weights`` (n, P) holds the fit weights w_i (applied to XC in place). Only the
    lower triangles are formed (:func:`~cvxnn.solvers.gram.add_lower_gram_`; the strict upper ones hold partial
    sums): Cholesky reads no more, and :func:`~cvxnn.solvers.gram.mirror_lower_` completes them where needed.

    The two sides of pattern i share diag(w_i)X, so their terms add up to one per pattern:
    M_k = Σ_i A_iN_ikA_iᵀ with A_i = diag(w_i)X and N_ik = R_{i+,k}⁻¹ + R_{i−,k}⁻¹ = C_ikC_ikᵀ (d x d; C is
    (P, c, d, d)), half the n²d products of one term per side; 𝔽_k = [A_1C_1k … A_PC_Pk] for a chunk of
    patterns is one product.
    """
    n, d = X.shape
    P, c = C.shape[:2]
    M = torch.zeros(c, n, n, dtype=X.dtype, device=X.device)
    step = max(1, BLOCK_CHUNK_BYTES // (8 * n * d))
    for k in range(c):
        for a in range(0, P, step):
            add_lower_gram_(M[k], _scaled_columns(X, C[a:a + step, k], weights[:, a:a + step]))
    return M


def _scaled_columns(X: torch.Tensor, C: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """[diag(s_1)XC_1 … diag(s_p)XC_p] (rows, p·d) for blocks C (p, d, d) and row scales ``scale`` (rows, p):
    one product, scaled in place."""
    p, d = C.shape[:2]
    F = X @ C.permute(1, 0, 2).reshape(d, p * d)
    F.view(X.shape[0], p, d).mul_(scale[:, :, None])
    return F


def _pattern_grams(X: torch.Tensor, C: torch.Tensor, weights: torch.Tensor, root: torch.Tensor) -> torch.Tensor:
    """K'_k = I + 𝔽_kᵀ diag(root_k)² 𝔽_k (c, Pd, Pd), the pattern-side Woodbury matrices, with 𝔽_k as in
    :func:`_fit_grams` (block (i, j) is C_ikᵀXᵀW_i diag(root_k)² W_jXC_jk) and root (n, c) the square roots of
    the diagonal loss Hessian; chunked over samples, on the lower triangle only (the strict upper one holds
    partial sums)."""
    n, d = X.shape
    P, c = C.shape[:2]
    K = torch.zeros(c, P * d, P * d, dtype=X.dtype, device=X.device)
    step = max(1, BLOCK_CHUNK_BYTES // max(8 * P * d, 1))
    for k in range(c):
        for a in range(0, n, step):
            F = _scaled_columns(X[a:a + step], C[:, k], weights[a:a + step] * root[a:a + step, k, None])
            add_lower_gram_(K[k], F.T)
        K[k].diagonal().add_(1.0)
    return K


def _fit_gram(X: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """G = FᵀF (Pd x Pd, both triangles) for F = [W_1X … W_PX], W_i = diag(w_i) the fit weights (n, P); chunked
    over samples."""
    n, d = X.shape
    P = weights.shape[1]
    G = torch.zeros(P * d, P * d, dtype=X.dtype, device=X.device)
    step = max(1, BLOCK_CHUNK_BYTES // max(8 * P * d, 1))
    for a in range(0, n, step):
        F = (weights[a:a + step, :, None] * X[a:a + step, None, :]).reshape(min(step, n - a), P * d)
        add_lower_gram_(G, F.T)
    return mirror_lower_(G)


def _congruence(G: torch.Tensor, C: torch.Tensor) -> torch.Tensor:
    """C_kᵀGC_k (c, Pd, Pd) for G (Pd, Pd) and the block-diagonal C_k = blockdiag_i C_ik, C (P, c, d, d): block
    (i, j) is C_ikᵀG_ijC_jk. 2·d·(Pd)² multiply-adds per output against n·(Pd)² for 𝔽_kᵀ𝔽_k
    (:func:`_pattern_grams`)."""
    P, c, d, _ = C.shape
    k = P * d
    out = torch.empty(c, k, k, dtype=G.dtype, device=G.device)
    left = torch.empty(k, k, dtype=G.dtype, device=G.device)
    for o in range(c):
        Ct = C[:, o].transpose(-1, -2).contiguous()
        # one product per block row: a batched product of the d x d blocks was 3x slower (one thread, Pd = 2000)
        for i in range(P):
            torch.mm(Ct[i], G[i * d:(i + 1) * d], out=left[i * d:(i + 1) * d])  # C_kᵀG
        for i in range(P):  # C_kᵀ(C_kᵀG)ᵀ = C_kᵀGC_k, G being symmetric
            torch.mm(Ct[i], left.T[i * d:(i + 1) * d], out=out[o, i * d:(i + 1) * d])
    return out


def _joint_matrix(blocks: torch.Tensor, H: torch.Tensor) -> torch.Tensor:
    """K = blockdiag_k(K_k) + HHᵀ as (1, n·c, n·c), rows (k, a), from the c blocks (c, n, n; their lower triangles,
    which Cholesky reads) and the columns H (n, c, m)."""
    c, n, _ = blocks.shape
    K = torch.block_diag(*blocks)
    Hk = H.permute(1, 0, 2).reshape(c * n, -1)
    return K.addmm_(Hk, Hk.T)[None]


def _softmax_schur(LG: torch.Tensor, root: torch.Tensor) -> torch.Tensor:
    """The Cholesky factor of S = Σ_k D_k^½ G_k⁻¹ D_k^½ (n x n) from the factors LG (c, n, n) of the G_k and
    root (n, c) = √p (D_k = diag(p_{·k})), one class at a time (G_k⁻¹ from its factor: 2n³/3)."""
    S = torch.zeros_like(LG[0])
    for k in range(LG.shape[0]):
        S.add_(torch.cholesky_inverse(LG[k]).mul_(root[:, k, None]).mul_(root[None, :, k]))
    return _cholesky(S)
