"""Kim & Pilanci's relaxation gap on Gaussian data, measured against the certified optimum (THEORY §6, §8.3 D).

Claim under test ([V] abstract; form [S]): for random data, networks built from a convex
relaxation on m̃ Gaussian-sampled patterns are optimal up to a factor O(√log n),

    p* ≤ p̃* ≤ C √log(2n) · p*,        m̃ = κ · max{m*, log n}   (C, κ, m̃ unknown → parameters),

where p* = q*(𝒫(X)) is the optimum of (NC) (any width) and m* the optimal width. For each
instance we compute, with D̃ = {D(h_1), …, D(h_m̃)}, h_i ~ N(0, I_d) (duplicates removed):

* p*: the ReLU program (CVX) on **all** patterns (enumerated, small d), solved by working sets
  and certified by a dual point feasible for every pattern (relative gap ≤ ``tol``);
* constrained reading: p̃*_c = q*(D̃), the ReLU program on the sampled patterns; Φ makes it a
  network, so p̃*_c ≥ p*;
* unconstrained reading: the gated program g*(D̃) (a group lasso; not a ReLU net, not ordered
  with p*), then each gated block u_i is split as u_i = v_i − w_i with v_i, w_i ∈ 𝒦(D_i):

  - "gate": the §1.5 split with the generating gate c_i = h_i,
    t = max_k[−s_k x_kᵀu_i / s_k x_kᵀc_i]_+, v_i = u_i + t c_i, w_i = t c_i;
  - "optimal": the cheapest split, min ‖v_i‖ + ‖w_i‖ s.t. v_i − w_i = u_i, v_i, w_i ∈ 𝒦(D_i)
    (one small SOCP for all blocks).

  Both keep the fit D_iXv_i − D_iXw_i = D_iXu_i, so Φ(v, w) is a ReLU network with NC ≥ p*;
  the value reported is that network's NC, ½‖f(X) − y‖² + β Σ_i (‖v_i‖ + ‖w_i‖);
* reference: the best of a few Adam runs of width n + 1 (:func:`cvxnn.nonconvex.train_nonconvex`),
  and the zero network, whose ratio ½‖y‖²/p* shows how much room the labels leave.

Data: X_ij ~ N(0, 1), d = 3 (so 𝒫(X) is enumerable), labels from a planted ReLU teacher plus
noise (Gaussian labels would make even the zero network nearly optimal for small d). β is a
fixed fraction of β_max = max_{‖u‖≤1} |yᵀ(Xu)_+|, the smallest weight decay at which the zero
network is optimal, so the regularization keeps the same strength as n grows.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cvxpy as cp
import numpy as np
from matplotlib.figure import Figure

from ..threads import torch_threads
from ..cones import decompose
from ..duality import cone_sigma, gated_norms, max_dual_constraint, scaled_dual_value
from ..network import convex_prediction, network_from_convex
from ..nonconvex import train_nonconvex
from ..patterns import Patterns, enumerate_patterns, sample_patterns
from ..training import fit

NAME = "relaxation-gap"
TITLE = "Kim & Pilanci: convex relaxations on sampled patterns are within O(√log n) of the global optimum"
READINGS = ("constrained", "decomposed_gate", "decomposed_optimal")
READING_LABELS = {
    "constrained": "constrained: q*(sampled patterns)",
    "decomposed_gate": "gated → cone split (generating gate)",
    "decomposed_optimal": "gated → cone split (cheapest)",
    "gd": "best Adam run",
}
RATIO_TOL = 1e-6  # p* is certified to ≤ 1e-7 relative; ratios ≥ 1 − RATIO_TOL count as ≥ 1


@dataclass(frozen=True)
class RelaxationConfig:
    """One run of the experiment.

    ns: sample sizes n; d: input dimension; seeds: instances per n.
    kappas: sample-count multipliers, m̃ = ⌈κ · max{m*, log n}⌉ Gaussian gates per instance.
    teacher_width, noise: labels y = Σ_j a_j (Xu_j)_+ + noise · ε (:func:`teacher_targets`).
    beta_ratio: β = beta_ratio · β_max.
    gd_runs, gd_epochs, gd_lr: Adam reference (width n + 1, init scale 1); 0 runs disables it.
    growth_limit: the bounded-C claim holds when C(n_max) ≤ growth_limit · C(n_min).
    """

    ns: tuple[int, ...]
    kappas: tuple[float, ...]
    seeds: int
    d: int = 3
    teacher_width: int = 3
    noise: float = 0.1
    beta_ratio: float = 0.05
    gd_runs: int = 3
    gd_epochs: int = 2000
    gd_lr: float = 1e-2
    growth_limit: float = 2.0
    tol: float = 1e-7


QUICK = RelaxationConfig(ns=(8, 16, 24), kappas=(1.0, 4.0), seeds=2, gd_runs=1, gd_epochs=1000)
FULL = RelaxationConfig(ns=(8, 16, 32, 64, 128), kappas=(1.0, 2.0, 4.0), seeds=3)


# ---------------------------------------------------------------------------------------------- data


def teacher_targets(X: np.ndarray, rng: np.random.Generator, width: int = 3, noise: float = 0.1) -> np.ndarray:
    """y = Σ_{j<width} a_j (Xu_j)_+ + noise · ε with u_j uniform on the unit sphere, a_j = +1, −1, +1, …
    and ε ~ N(0, I_n). Draws the u_j first, then ε."""
    U = rng.standard_normal((X.shape[1], width))
    U /= np.linalg.norm(U, axis=0)
    a = np.where(np.arange(width) % 2 == 0, 1.0, -1.0)
    return np.maximum(X @ U, 0.0) @ a + noise * rng.standard_normal(X.shape[0])


def gaussian_problem(n: int, d: int, rng: np.random.Generator, teacher_width: int = 3, noise: float = 0.1
                     ) -> tuple[np.ndarray, np.ndarray]:
    """X_ij ~ N(0, 1) (n × d), then teacher labels (:func:`teacher_targets`)."""
    X = rng.standard_normal((n, d))
    return X, teacher_targets(X, rng, teacher_width, noise)


def beta_max(Xt: np.ndarray, y: np.ndarray, patterns: Patterns) -> float:
    """max_{‖u‖≤1} |yᵀ(Xu)_+| over the listed cones: exact when ``patterns`` is complete; the zero
    network is optimal iff β ≥ this value (dual constraint at λ = y)."""
    return max_dual_constraint(Xt, patterns.masks, y).value


# ------------------------------------------------------------------------------------------- p*


@dataclass(frozen=True)
class Optimum:
    """p* = q*(all patterns) with its certificate.

    value: (CVX) objective of a feasible point (= NC of its network), an upper bound on p*.
    lower_bound: d(tλ) for a dual point feasible for every pattern, a lower bound on p*.
    width: m*, the width of the optimal network (after :func:`cvxnn.fit`'s pruning).
    rounds: working-set rounds; seconds: wall time.
    """

    value: float
    lower_bound: float
    width: int
    rounds: int
    seconds: float

    @property
    def relative_gap(self) -> float:
        return (self.value - self.lower_bound) / self.value


def dual_violations(Xt: np.ndarray, masks: np.ndarray, lam: np.ndarray, beta: float) -> tuple[float, list[int]]:
    """(s, violators): s = max_i max(σ_i^+, σ_i^-) over all listed patterns (THEORY §2.2) and the
    patterns with σ_i^± > β, most violated first.

    Patterns are visited by decreasing screen ‖XᵀD_iλ‖ ≥ σ_i^±; once the screen is at most
    min(β, best σ so far), no later pattern can raise s or violate the constraint.
    """
    screens = gated_norms(Xt, masks, lam)
    best, found = 0.0, []
    for i in np.argsort(-screens):
        if screens[i] <= min(best, beta):
            break
        c = Xt.T @ (masks[:, i] * lam)
        value = max(cone_sigma(Xt, masks[:, i], c)[0], cone_sigma(Xt, masks[:, i], -c)[0])
        best = max(best, value)
        if value > beta:
            found.append((value, int(i)))
    return best, [i for _, i in sorted(found, reverse=True)]


def certified_optimum(Xt: np.ndarray, y: np.ndarray, beta: float, patterns: Patterns, tol: float = 1e-7,
                      max_rounds: int = 100) -> Optimum:
    """p* = q*(all patterns) by working sets, certified over the complete list.

    Start from the n patterns with the largest screen ‖XᵀD_iy‖; repeat: solve (CVX) on the working
    set W (:func:`cvxnn.fit`; blocks outside W are zero, so the point is feasible for the full
    program); with λ = y − ŷ and s from :func:`dual_violations` over **all** patterns, tλ
    (t ≤ β/s) is feasible for the full dual and d(tλ) ≤ p*; stop at relative gap ≤ ``tol``,
    else add the ⌈n/2⌉ most violated patterns. Same value as ``fit(..., patterns="all")``, faster.
    """
    if not patterns.complete:
        raise ValueError("p* needs the complete pattern list (enumerate_patterns).")
    start = time.perf_counter()
    n = Xt.shape[0]
    masks = patterns.masks
    work = [int(i) for i in np.argsort(-gated_norms(Xt, masks, y))[:n]]
    lower = -np.inf
    for rounds in range(1, max_rounds + 1):
        sub = fit(Xt, y, beta, patterns=Patterns(masks[:, work]))
        lam = y - convex_prediction(Xt, masks[:, work], sub.v, sub.w)
        s, violators = dual_violations(Xt, masks, lam, beta)
        lower = max(lower, scaled_dual_value(lam, y, s, beta)[0])
        if sub.objective - lower <= tol * sub.objective:
            return Optimum(sub.objective, lower, sub.network.width, rounds, time.perf_counter() - start)
        in_work = set(work)
        new = [i for i in violators if i not in in_work][: max(n // 2, 1)]
        if not new:
            break
        work += new
    raise RuntimeError(f"working sets stopped at relative gap {(sub.objective - lower) / sub.objective:.2e} "
                       f"after {rounds} rounds.")


# -------------------------------------------------------------------------------- decompositions


def gate_split(Xt: np.ndarray, patterns: Patterns, U: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """§1.5 split of every gated block with its generating gate: v_i = u_i + t_i h_i, w_i = t_i h_i."""
    V, W = np.zeros_like(U), np.zeros_like(U)
    for i in np.flatnonzero(np.linalg.norm(U, axis=1) > 0):
        V[i], W[i] = decompose(Xt, patterns.masks[:, i], U[i], patterns.gates[:, i])
    return V, W


def optimal_split(Xt: np.ndarray, patterns: Patterns, U: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The cheapest split: min Σ_i ‖u_i + w_i‖ + ‖w_i‖ s.t. (2D_i − I)X(u_i + w_i) ≥ 0, (2D_i − I)Xw_i ≥ 0;
    returns (v, w) = (u + w, w). Zero blocks stay zero."""
    V, W = np.zeros_like(U), np.zeros_like(U)
    act = np.flatnonzero(np.linalg.norm(U, axis=1) > 0)
    if act.size == 0:
        return V, W
    Ua = U[act]
    S = np.where(patterns.masks[:, act], 1.0, -1.0)  # n × p
    Wv = cp.Variable(Ua.shape)
    objective = cp.sum(cp.norm(Ua + Wv, 2, axis=1)) + cp.sum(cp.norm(Wv, 2, axis=1))
    constraints = [cp.multiply(S, Xt @ (Ua + Wv).T) >= 0, cp.multiply(S, Xt @ Wv.T) >= 0]
    cp.Problem(cp.Minimize(objective), constraints).solve(solver=cp.CLARABEL)
    W[act] = Wv.value
    V[act] = Ua + Wv.value
    return V, W


def split_network_objective(X: np.ndarray, y: np.ndarray, beta: float, V: np.ndarray, W: np.ndarray) -> float:
    """NC of the ReLU network Φ(v, w) (evaluated as a network, so any cone violation would show)."""
    return network_from_convex(V, W).objective(X, y, beta)


# ------------------------------------------------------------------------------------ one instance


def sample_count(kappa: float, m_star: int, n: int) -> int:
    """m̃ = ⌈κ · max{m*, log n}⌉ (the [S] form; κ is a parameter)."""
    return max(1, math.ceil(kappa * max(m_star, math.log(n))))


def relaxation_values(X: np.ndarray, y: np.ndarray, beta: float, sampled: Patterns) -> dict[str, float]:
    """NC of the networks of both readings on one sampled pattern list, and the gated value g*(D̃).

    "constrained": NC of Φ(q*(D̃) solution); "gated": g*(D̃) (not a network); "decomposed_gate",
    "decomposed_optimal": NC of Φ(v, w) after :func:`gate_split` / :func:`optimal_split`.
    """
    gated = fit(X, y, beta, patterns=sampled, formulation="gated")
    return {
        "constrained": fit(X, y, beta, patterns=sampled).network_objective,
        "gated": gated.objective,
        "decomposed_gate": split_network_objective(X, y, beta, *gate_split(X, sampled, gated.v)),
        "decomposed_optimal": split_network_objective(X, y, beta, *optimal_split(X, sampled, gated.v)),
    }


def best_adam(X: np.ndarray, y: np.ndarray, beta: float, cfg: RelaxationConfig, seed: int) -> float | None:
    """Lowest NC over ``cfg.gd_runs`` Adam runs of width n + 1 (None when disabled)."""
    if cfg.gd_runs == 0:
        return None
    with torch_threads(1):  # these matrices are tiny: extra threads only add contention
        runs = [train_nonconvex(X, y, beta, width=X.shape[0] + 1, optimizer="adam", lr=cfg.gd_lr,
                                epochs=cfg.gd_epochs, seed=seed + k, record_every=50) for k in range(cfg.gd_runs)]
    return min(r.final_objective for r in runs)


def measure_instance(n: int, cfg: RelaxationConfig, seed: Sequence[int]) -> dict:
    """All readings on one Gaussian instance; every ratio is objective / p*.

    ``default_rng(seed)`` draws X, then the teacher and noise; the gates for κ come from
    ``default_rng([*seed, k])`` for the k-th κ; Adam runs use torch seeds 1000·seed[-1] + k.
    """
    rng = np.random.default_rng(list(seed))
    X, y = gaussian_problem(n, cfg.d, rng, cfg.teacher_width, cfg.noise)
    everything = enumerate_patterns(X, max_patterns=10**6)
    beta = cfg.beta_ratio * beta_max(X, y, everything)
    opt = certified_optimum(X, y, beta, everything, cfg.tol)
    rows = []
    for k, kappa in enumerate(cfg.kappas):
        m_tilde = sample_count(kappa, opt.width, n)
        sampled = sample_patterns(X, m_tilde, seed=np.random.default_rng([*seed, k]))
        values = relaxation_values(X, y, beta, sampled)
        rows.append({"kappa": kappa, "m_tilde": m_tilde, "distinct": len(sampled),
                     **{key: v / opt.value for key, v in values.items()}})
    gd = best_adam(X, y, beta, cfg, 1000 * seed[-1])
    return {"n": n, "beta": beta, "n_patterns": len(everything), "p_star": opt.value,
            "p_star_lower_bound": opt.lower_bound, "p_star_relative_gap": opt.relative_gap, "m_star": opt.width,
            "working_set_rounds": opt.rounds, "zero_ratio": 0.5 * float(y @ y) / opt.value,
            "gd": None if gd is None else gd / opt.value, "rows": rows}


# ------------------------------------------------------------------------------------- summaries


def reading_ratios(instances: list[dict], reading: str, n: int, kappa_index: int | None = None) -> list[float]:
    """Ratios of one reading at sample size n over seeds, for the κ of index ``kappa_index`` (None: every κ;
    ignored for "gd", which has one value per instance)."""
    at_n = [inst for inst in instances if inst["n"] == n]
    if reading == "gd":
        return [inst["gd"] for inst in at_n if inst["gd"] is not None]
    return [row[reading] for inst in at_n for k, row in enumerate(inst["rows"]) if kappa_index in (None, k)]


def fitted_constants(instances: list[dict], ns: Sequence[int], reading: str, kappa_index: int | None = None
                     ) -> list[float]:
    """C_n = max ratio / √log(2n) for each n (max over seeds, at one κ or, with None, over every κ)."""
    return [max(reading_ratios(instances, reading, n, kappa_index)) / math.sqrt(math.log(2 * n)) for n in ns]


def constants_by_kappa(instances: list[dict], cfg: RelaxationConfig, reading: str) -> dict[str, list[float]]:
    """{"κ=…": [C_n for n in cfg.ns]} for one reading."""
    return {f"κ={kappa:g}": fitted_constants(instances, cfg.ns, reading, k) for k, kappa in enumerate(cfg.kappas)}


def _ratio_claims(instances: list[dict], cfg: RelaxationConfig, readings: Sequence[str]) -> list[dict]:
    mins = {r: min(min(reading_ratios(instances, r, n)) for n in cfg.ns) for r in readings}
    claims = [{
        "claim": "every network built from the relaxation (and every Adam run) has NC ≥ p*: all ratios ≥ 1 "
                 f"(tolerance {RATIO_TOL:g}, p* certified to relative gap ≤ {cfg.tol:g})",
        "measured": {"min_ratio": mins},
        "claim_holds": all(v >= 1 - RATIO_TOL for v in mins.values()),
    }]
    for r in READINGS:
        consts = constants_by_kappa(instances, cfg, r)
        growth = {key: c[-1] / c[0] for key, c in consts.items()}
        claims.append({
            "claim": f"{READING_LABELS[r]}: the ratio grows no faster than C√log(2n) for some fixed κ; measured "
                     f"C_n(κ) = max over seeds of ratio / √log(2n), and the claim holds when, for at least one "
                     f"tested κ, C_n at n = {cfg.ns[-1]} is at most {cfg.growth_limit:g}× C_n at n = {cfg.ns[0]}",
            "measured": {"C_per_n": {key: dict(zip(map(str, cfg.ns), c)) for key, c in consts.items()},
                         "growth": growth},
            "claim_holds": bool(min(growth.values()) <= cfg.growth_limit),
        })
    return claims


# ----------------------------------------------------------------------------------------- figures


def _mean_over_seeds(instances: list[dict], ns: Sequence[int], key: str, kappa_index: int | None) -> list[float]:
    vals = []
    for n in ns:
        at_n = [inst for inst in instances if inst["n"] == n]
        vals.append(float(np.mean([inst[key] if kappa_index is None else inst["rows"][kappa_index][key]
                                   for inst in at_n])))
    return vals


def plot_ratios(instances: list[dict], cfg: RelaxationConfig, path: Path) -> None:
    """Mean ratio (over seeds) against √log(2n), one panel per reading, one line per κ, with the
    zero network's ratio and the line C_max √log(2n) for C_max the largest fitted C_n."""
    s = np.sqrt(np.log(2 * np.array(cfg.ns, float)))
    panels = [*READINGS, "gd"] if cfg.gd_runs else list(READINGS)
    fig = Figure(figsize=(11, 8))
    axes = fig.subplots(2, 2).ravel()
    for ax, reading in zip(axes, panels):
        if reading == "gd":
            ax.plot(s, _mean_over_seeds(instances, cfg.ns, "gd", None), "o-", label="Adam (best of runs)")
        else:
            for k, kappa in enumerate(cfg.kappas):
                ax.plot(s, _mean_over_seeds(instances, cfg.ns, reading, k), "o-", label=f"κ = {kappa:g}")
            c_max = max(fitted_constants(instances, cfg.ns, reading))
            ax.plot(s, c_max * s, "k:", label=f"{c_max:.2f}·√log(2n)")
        ax.plot(s, _mean_over_seeds(instances, cfg.ns, "zero_ratio", None), "--", color="grey", label="zero network")
        ax.axhline(1.0, color="black", lw=0.8)
        ax.set_yscale("log")
        ax.set_title(READING_LABELS[reading], fontsize=10)
        ax.set_xlabel("√log(2n)")
        ax.set_ylabel("NC / p*")
        ax.legend(fontsize=8)
    for ax in axes[len(panels):]:
        ax.set_visible(False)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def plot_constants(instances: list[dict], cfg: RelaxationConfig, path: Path) -> None:
    """C_n(κ) = max over seeds of ratio / √log(2n) against n: one colour per reading, one line style per κ."""
    fig = Figure(figsize=(7, 4.6))
    ax = fig.subplots()
    styles = ["o-", "s--", "^:", "d-."]
    for colour, reading in enumerate(READINGS):
        for k, (key, consts) in enumerate(constants_by_kappa(instances, cfg, reading).items()):
            ax.plot(cfg.ns, consts, styles[k % len(styles)], color=f"C{colour}",
                    label=f"{READING_LABELS[reading]}, {key}")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("n")
    ax.set_ylabel("C_n = max ratio / √log(2n)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


# ------------------------------------------------------------------------------------------- report


def _table(instances: list[dict], cfg: RelaxationConfig) -> str:
    """Markdown table of per-n means (one value per κ, separated by slashes)."""
    rows = ["| n | P | m* | p* | m̃ (κ = " + ", ".join(f"{k:g}" for k in cfg.kappas) + ") | constrained | "
            "gated value | split (gate) | split (cheapest) | Adam | zero net |", "|" + "---|" * 11]
    for n in cfg.ns:
        at_n = [inst for inst in instances if inst["n"] == n]

        def per_kappa(key: str) -> str:
            return " / ".join(f"{np.mean([inst['rows'][k][key] for inst in at_n]):.3g}" for k in range(len(cfg.kappas)))

        def mean(key: str) -> str:
            vals = [inst[key] for inst in at_n if inst[key] is not None]
            return f"{np.mean(vals):.4g}" if vals else "—"

        cells = [str(n), str(at_n[0]["n_patterns"]), mean("m_star"), mean("p_star"), per_kappa("m_tilde"),
                 *(per_kappa(key) for key in ("constrained", "gated", "decomposed_gate", "decomposed_optimal")),
                 mean("gd"), mean("zero_ratio")]
        rows.append("| " + " | ".join(cells) + " |")
    return "\n".join(rows)


def _baseline_note(instances: list[dict]) -> str:
    """How many relaxation networks are worse than the zero network (NC = ½‖y‖²), per reading."""
    counts = []
    for reading in READINGS:
        pairs = [(row[reading], inst["zero_ratio"]) for inst in instances for row in inst["rows"]]
        counts.append(f"{READING_LABELS[reading]}: {sum(r > z for r, z in pairs)} of {len(pairs)}")
    return ("Baseline: the zero network's ratio ½‖y‖²/p* is between "
            f"{min(i['zero_ratio'] for i in instances):.3g} and {max(i['zero_ratio'] for i in instances):.3g}. "
            "Networks worse than the zero network (instance, κ): " + "; ".join(counts) + ".")


def claims_table(claims: list[dict]) -> str:
    """Markdown table: claim | measured (JSON) | holds."""
    rows = ["| claim | measured | holds |", "|---|---|---|"]
    rows += [f"| {c['claim']} | `{json.dumps(c['measured'], default=float)}` | "
             f"{'yes' if c['claim_holds'] else '**no**'} |"
             for c in claims]
    return "\n".join(rows)


def reproduce(out_dir: Path, quick: bool = False, seed: int = 0) -> dict:
    """Kim & Pilanci relaxation gap ("relaxation-gap"); see the module docstring.

    quick: n ∈ {8, 16, 24}, κ ∈ {1, 4}, 2 instances per n, one Adam run of 1000 epochs.
    full: n ∈ {8, 16, 32, 64, 128}, κ ∈ {1, 2, 4}, 3 instances per n, best of 3 Adam runs of 2000 epochs.
    Instance k at size n uses ``default_rng([seed, n, k])``.
    """
    cfg = QUICK if quick else FULL
    return run_experiment(cfg, Path(out_dir), seed)


def run_experiment(cfg: RelaxationConfig, out_dir: Path, seed: int = 0) -> dict:
    """Measure every instance of ``cfg``, write the figures and return the report section."""
    out_dir.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    instances = [measure_instance(n, cfg, (seed, n, k)) for n in cfg.ns for k in range(cfg.seeds)]
    elapsed = time.perf_counter() - start
    readings = [*READINGS, "gd"] if cfg.gd_runs else list(READINGS)
    claims = _ratio_claims(instances, cfg, readings)
    figures = ["relaxation_ratios.png", "relaxation_constants.png"]
    plot_ratios(instances, cfg, out_dir / figures[0])
    plot_constants(instances, cfg, out_dir / figures[1])
    setting = (
        f"X_ij ~ N(0, 1), d = {cfg.d}, n ∈ {list(cfg.ns)} ({cfg.seeds} instances each, seed {seed}); labels from a "
        f"planted teacher y = Σ_{{j<{cfg.teacher_width}}} ±(Xu_j)_+ + {cfg.noise:g}·N(0, 1), u_j uniform on the "
        f"sphere; no bias; β = {cfg.beta_ratio:g}·max_{{‖u‖≤1}}|yᵀ(Xu)_+|. p* = q*(all patterns) by working sets "
        f"over the enumerated 𝒫(X), certified to relative gap ≤ {cfg.tol:g}. Sampled patterns: m̃ = "
        f"⌈κ·max(m*, log n)⌉ Gaussian gates, κ ∈ {list(cfg.kappas)}, duplicates removed. Adam: width n + 1, "
        f"lr {cfg.gd_lr:g}, {cfg.gd_epochs} epochs, best of {cfg.gd_runs}. Note: d is fixed, so n/d grows with n, "
        "unlike the theorem's n/d = const."
    )
    data = {"ns": list(cfg.ns), "kappas": list(cfg.kappas), "sqrt_log_2n": [math.sqrt(math.log(2 * n)) for n in cfg.ns],
            "C_per_n": {r: constants_by_kappa(instances, cfg, r) for r in READINGS},
            "instances": instances, "seconds": elapsed}
    markdown = "\n\n".join([
        "## Kim & Pilanci (ICML 2024): relaxation gap on Gaussian data",
        "**Claim** ([V] abstract: relative gap O(√log n) for random data; form [S]: p* ≤ p̃* ≤ C√log(2n)·p* with "
        "m̃ = κ·max{m*, O(log n)} sampled patterns; C, κ are parameters, not assumed). Both readings of p̃* are "
        "measured: the ReLU program on sampled patterns (constrained), and the gated relaxation followed by a cone "
        "split into a ReLU network (unconstrained; split with the generating gate as in THEORY §1.5, and the "
        "cheapest split).",
        f"**Setting.** {setting}",
        "**Measured** (means over instances; ratios are NC / p*; 'gated value' is g*(D̃)/p*, not a network, "
        "so it may be below 1):\n\n" + _table(instances, cfg),
        "C_n(κ) = max over instances of ratio / √log(2n):\n\n| reading | κ | "
        + " | ".join(f"n = {n}" for n in cfg.ns) + " |\n|---|---|" + "---|" * len(cfg.ns) + "\n" + "\n".join(
            f"| {READING_LABELS[r]} | {key} | " + " | ".join(f"{c:.3g}" for c in consts) + " |"
            for r in READINGS for key, consts in constants_by_kappa(instances, cfg, r).items()),
        _baseline_note(instances),
        "**Verdicts.**\n\n" + claims_table(claims),
        f"Figures: {', '.join(figures)}. Wall time {elapsed:.0f} s.",
    ])
    return {"name": NAME, "title": TITLE, "setting": setting, "claims": claims, "figures": figures, "data": data,
            "markdown": markdown}
