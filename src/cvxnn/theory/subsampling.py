"""Approximation by pattern subsampling (Ergen & Pilanci, THEORY §2.6, §3.1, §3.4).

B-J announce a polynomial-time scheme "based on zonotope subsampling" with "a guaranteed
approximation ratio" ([V] abstract; ratio, conditions and sample count unknown). What is certain:
for any list D ⊆ 𝒫(X), q*(D) ≥ q*(𝒫(X)) = p* and Φ turns the solution into a network of NC
q*(D). This module measures, on low-rank data where 𝒫(X) is enumerable,

    ratio(m) = q*(D_m) / q*(𝒫(X)),     D_m = {D(h_1), …, D(h_m)},  h_i ~ N(0, I_d),

against m, with nested lists (D_m ⊆ D_2m: the first m of one sequence of gates), and the
coverage |D_m| / |𝒫(X)| (Gaussian gates hit each cell with probability equal to its solid
angle, so coverage approaches 1 slowly). No theoretical ratio is used.

Data: X = ZA with Z (n × r) and A (r × d) standard Gaussian, rank r = 3 in d = 6, so
|𝒫(X)| = 2 Σ_{k<3} C(n−1, k); labels from a planted ReLU teacher plus noise
(:func:`cvxnn.theory.relaxation.teacher_targets`); β a fixed fraction of β_max.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from ..patterns import Patterns, enumerate_patterns, network_patterns
from ..training import fit
from .relaxation import RATIO_TOL, beta_max, claims_table, teacher_targets

NAME = "subsampling"
TITLE = "Ergen & Pilanci: convex programs on subsampled patterns approximate the optimum"


@dataclass(frozen=True)
class SubsamplingConfig:
    """n samples of rank r in d dimensions; ``seeds`` gate sequences; sample counts ``ms`` (increasing).

    beta_ratio: β = beta_ratio · β_max; teacher_width, noise: the labels.
    target: the convergence claim holds when every seed's ratio at the largest m is ≤ 1 + target.
    """

    n: int
    ms: tuple[int, ...]
    seeds: int
    r: int = 3
    d: int = 6
    beta_ratio: float = 0.05
    teacher_width: int = 3
    noise: float = 0.1
    target: float = 0.01


QUICK = SubsamplingConfig(n=20, ms=(1, 4, 16, 64, 256, 1024, 4096), seeds=3)
FULL = SubsamplingConfig(n=40, ms=(1, 4, 16, 64, 256, 1024, 4096, 16384), seeds=5)


def low_rank_problem(n: int, r: int, d: int, rng: np.random.Generator, teacher_width: int = 3, noise: float = 0.1
                     ) -> tuple[np.ndarray, np.ndarray]:
    """X = ZA (Z: n × r, A: r × d, both N(0, 1); rank r), then teacher labels; drawn in that order."""
    X = rng.standard_normal((n, r)) @ rng.standard_normal((r, d))
    return X, teacher_targets(X, rng, teacher_width, noise)


def nested_patterns(X: np.ndarray, gates: np.ndarray, m: int) -> Patterns:
    """Distinct patterns D(h_i) = diag(1[Xh_i ≥ 0]) of the first m gates (columns of ``gates``)."""
    return network_patterns(gates[:, :m].T, X)


def coverage(sampled: Patterns, everything: Patterns) -> float:
    """|sampled ∩ 𝒫(X)| / |𝒫(X)| (patterns compared as bit columns)."""
    full = {col.tobytes() for col in np.packbits(everything.masks, axis=0).T}
    hit = {col.tobytes() for col in np.packbits(sampled.masks, axis=0).T}
    return len(full & hit) / len(full)


def subsampling_curve(X: np.ndarray, y: np.ndarray, beta: float, everything: Patterns, p_star: float,
                      ms: tuple[int, ...], rng: np.random.Generator) -> dict:
    """ratio(m) = q*(D_m)/p*, |D_m| and coverage for nested D_m from one sequence of max(ms) gates."""
    gates = rng.standard_normal((X.shape[1], max(ms)))
    ratios, counts, covered = [], [], []
    for m in ms:
        sampled = nested_patterns(X, gates, m)
        ratios.append(fit(X, y, beta, patterns=sampled).objective / p_star)
        counts.append(len(sampled))
        covered.append(coverage(sampled, everything))
    return {"ratio": ratios, "distinct": counts, "coverage": covered}


def _claims(curves: list[dict], cfg: SubsamplingConfig) -> list[dict]:
    all_ratios = [r for c in curves for r in c["ratio"]]
    last = [c["ratio"][-1] for c in curves]
    return [
        {"claim": f"q*(sampled patterns) ≥ q*(all patterns): every ratio ≥ 1 (tolerance {RATIO_TOL:g})",
         "measured": {"min_ratio": min(all_ratios)},
         "claim_holds": bool(min(all_ratios) >= 1 - RATIO_TOL)},
        {"claim": f"ratio → 1 as m grows: at the largest m = {cfg.ms[-1]}, every seed's ratio is within "
                  f"{cfg.target:.0%} of 1",
         "measured": {"ratio_at_largest_m": last,
                      "coverage_at_largest_m": [c["coverage"][-1] for c in curves]},
         "claim_holds": bool(max(last) <= 1 + cfg.target)},
    ]


def plot_curves(curves: list[dict], cfg: SubsamplingConfig, path: Path) -> None:
    """Left: ratio − 1 against m (log-log; zeros drawn at the bottom). Right: coverage against m."""
    fig = Figure(figsize=(11, 4.2))
    ax_r, ax_c = fig.subplots(1, 2)
    floor = 1e-9
    for k, c in enumerate(curves):
        ax_r.plot(cfg.ms, np.maximum(np.array(c["ratio"]) - 1, floor), "o-", alpha=0.7, label=f"gate seed {k}")
        ax_c.plot(cfg.ms, c["coverage"], "o-", alpha=0.7, label=f"gate seed {k}")
    ax_r.axhline(cfg.target, color="black", ls=":", label=f"{cfg.target:.0%}")
    ax_r.set(xscale="log", yscale="log", xlabel="m (Gaussian gates)", ylabel="q*(D_m)/q*(all) − 1",
             title=f"ratio − 1 (values below {floor:g} drawn at {floor:g})")
    ax_c.set(xscale="log", xlabel="m (Gaussian gates)", ylabel="|D_m| / |P(X)|", ylim=(0, 1.02),
             title="coverage of all patterns")
    ax_r.legend(fontsize=8)
    ax_c.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def _table(curves: list[dict], cfg: SubsamplingConfig) -> str:
    rows = ["| m | distinct patterns (mean) | coverage (mean) | ratio mean | ratio max |", "|---|---|---|---|---|"]
    for j, m in enumerate(cfg.ms):
        ratios = [c["ratio"][j] for c in curves]
        rows.append(f"| {m} | {np.mean([c['distinct'][j] for c in curves]):.1f} | "
                    f"{np.mean([c['coverage'][j] for c in curves]):.3f} | {np.mean(ratios):.6g} | {max(ratios):.6g} |")
    return "\n".join(rows)


def reproduce(out_dir: Path, quick: bool = False, seed: int = 0) -> dict:
    """Subsampled convex programs against the exact one ("subsampling"); see the module docstring.

    quick: n = 20 (382 patterns), m ∈ {1, 4, …, 4096}, 3 gate sequences.
    full: n = 40 (1562 patterns), m ∈ {1, 4, …, 16384}, 5 gate sequences.
    ``default_rng([seed, 0])`` draws the data; gate sequence k uses ``default_rng([seed, 1, k])``.
    """
    return run_experiment(QUICK if quick else FULL, Path(out_dir), seed)


def run_experiment(cfg: SubsamplingConfig, out_dir: Path, seed: int = 0) -> dict:
    """Measure the curves of ``cfg``, write the figure and return the report section."""
    out_dir.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    X, y = low_rank_problem(cfg.n, cfg.r, cfg.d, np.random.default_rng([seed, 0]), cfg.teacher_width, cfg.noise)
    everything = enumerate_patterns(X, max_patterns=10**5)
    beta = cfg.beta_ratio * beta_max(X, y, everything)
    exact = fit(X, y, beta, patterns=everything, max_patterns=10**5)
    curves = [subsampling_curve(X, y, beta, everything, exact.objective, cfg.ms, np.random.default_rng([seed, 1, k]))
              for k in range(cfg.seeds)]
    elapsed = time.perf_counter() - start
    claims = _claims(curves, cfg)
    figures = ["subsampling_ratio.png"]
    plot_curves(curves, cfg, out_dir / figures[0])
    setting = (
        f"X = ZA, Z ∈ R^{{{cfg.n}×{cfg.r}}}, A ∈ R^{{{cfg.r}×{cfg.d}}} standard Gaussian (rank {cfg.r}, "
        f"{len(everything)} patterns, enumerated); labels y = Σ_{{j<{cfg.teacher_width}}} ±(Xu_j)_+ + "
        f"{cfg.noise:g}·N(0, 1); no bias; β = {cfg.beta_ratio:g}·max_{{‖u‖≤1}}|yᵀ(Xu)_+| = {beta:.4g}. "
        f"q*(all) = {exact.objective:.6g} (reference solver, certified gap {exact.gap:.1e}, optimal width "
        f"{exact.network.width}). D_m: distinct patterns of the first m of one sequence of Gaussian gates in R^{cfg.d} "
        f"(nested in m), {cfg.seeds} sequences, seed {seed}."
    )
    data = {"ms": list(cfg.ms), "n_patterns": len(everything), "beta": beta, "q_star_all": exact.objective,
            "q_star_all_gap": exact.gap, "optimal_width": exact.network.width, "curves": curves, "seconds": elapsed}
    markdown = "\n\n".join([
        "## Ergen & Pilanci: subsampled convex programs",
        "**Claim** ([V] B-J abstract: a polynomial-time approximation scheme based on zonotope subsampling; "
        "its ratio is unknown, THEORY §2.6, and none is assumed): q*(D) ≥ q*(all patterns) for every sampled list "
        "D, and the measured ratio q*(D_m)/q*(all) approaches 1 as the number m of Gaussian gates grows.",
        f"**Setting.** {setting}",
        "**Measured** (over gate sequences):\n\n" + _table(curves, cfg),
        "**Verdicts.**\n\n" + claims_table(claims),
        f"Figures: {', '.join(figures)}. Wall time {elapsed:.0f} s.",
    ])
    return {"name": NAME, "title": TITLE, "setting": setting, "claims": claims, "figures": figures, "data": data,
            "markdown": markdown}
