"""Write a comparison (:class:`cvxnn.experiment.ComparisonResult`) as a report directory.

    out/
      summary.json           every number, machine-readable (non-finite values as null)
      objective_vs_time.png  NC objective against wall-clock seconds (log-log)
      report.md              the table and the certificate, for people
      (+ any extra files the caller adds, e.g. the saved model)

The directory is built under a temporary name beside ``out`` and renamed into place only
when complete, so an error leaves no half-written report. An existing ``out`` is replaced
only when it is empty or holds a previous report (a ``summary.json``); anything else is
refused rather than deleted.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from .experiment import ENCODINGS, LOSS_FORMULAS, ComparisonResult

SUMMARY = "summary.json"
FIGURE = "objective_vs_time.png"
MARKDOWN = "report.md"


def check_output_dir(out: str | os.PathLike) -> Path:
    """Raise FileExistsError unless ``out`` can be (re)placed by a report; nothing is created."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise FileExistsError(f"{str(out)!r} exists and is not a directory; choose another --out.")
    if out.is_dir() and any(out.iterdir()) and not (out / SUMMARY).is_file():
        raise FileExistsError(f"{str(out)!r} exists, is not empty and is not a cvxnn report; "
                              "choose another --out (it is never deleted).")
    return out


def write_report(result: ComparisonResult, out: str | os.PathLike,
                 extra: dict[str, Callable[[Path], None]] | None = None) -> Path:
    """Write summary.json, objective_vs_time.png and report.md to ``out`` atomically.

    extra: file name → writer(path) for additional files (written into the temporary
    directory before the rename, so they appear together with the report or not at all).
    """
    out = check_output_dir(out).absolute()
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    try:
        summary = result.summary()
        (tmp / SUMMARY).write_text(json.dumps(summary, indent=2, allow_nan=False) + "\n")
        plot_objective_vs_time(result, tmp / FIGURE)
        (tmp / MARKDOWN).write_text(markdown(result))
        for name, writer in (extra or {}).items():
            writer(tmp / name)
        _replace_dir(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def _replace_dir(new: Path, out: Path) -> None:
    if not out.exists():
        os.replace(new, out)
        return
    old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
    old.rmdir()
    os.replace(out, old)
    try:
        os.replace(new, out)
    except BaseException:
        os.replace(old, out)
        raise
    shutil.rmtree(old, ignore_errors=True)


# --------------------------------------------------------------------------- figure


def plot_objective_vs_time(result: ComparisonResult, path: str | os.PathLike) -> None:
    """Objective against wall-clock time: gradient runs as curves, convex models as markers
    with a dashed line at their objective, and the certified lower bound as a dotted line."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8.5, 5.2))
    try:
        colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
        tops, bottoms, tmax, tmin = [], [], 0.0, math.inf
        k = 0
        for m in result.models:
            if m.kind != "nonconvex":
                continue
            pts = [(t, o) for t, o in zip(m.history_times, m.history_objectives) if t > 0 and o > 0]
            if not pts:
                continue
            ts, os_ = zip(*pts)
            style = "-" if m.optimizer == "adam" else "--"
            label = m.name + (" (diverged)" if m.diverged else "")
            ax.plot(ts, os_, style, color=colors[k % len(colors)], lw=1.4, label=label)
            k += 1
            tops.append(os_[0])
            bottoms.append(min(os_))
            tmax, tmin = max(tmax, max(ts)), min(tmin, min(ts))
        markers = ["*", "D", "s", "P"]
        for i, m in enumerate(mm for mm in result.models if mm.kind == "convex"):
            if m.objective <= 0:
                continue
            c = "black" if i == 0 else "tab:red"
            ax.axhline(m.objective, color=c, ls=(0, (4, 3)), lw=0.9, alpha=0.7)
            ax.plot([m.wall_time], [m.objective], markers[i % len(markers)], color=c, ms=12 if i == 0 else 9,
                    label=f"{m.name}: NC {m.objective:.5g} in {m.wall_time:.1f} s")
            tops.append(m.objective)
            bottoms.append(m.objective)
            tmax, tmin = max(tmax, m.wall_time), min(tmin, m.wall_time)
        lb = result.certified_lower_bound
        if math.isfinite(lb) and lb > 0:
            ax.axhline(lb, color="tab:green", ls=":", lw=1.6, label=f"certified lower bound (any width): {lb:.4g}")
            bottoms.append(lb)
        elif math.isfinite(lb):
            ax.text(0.01, 0.02, f"certified lower bound {lb:.3g} ≤ 0 (not shown on log scale)",
                    transform=ax.transAxes, fontsize=8)
        ax.set_xscale("log")
        ax.set_yscale("log")
        if bottoms and tops:
            ax.set_ylim(min(bottoms) / 1.3, max(tops) * 1.5)
        if math.isfinite(tmin):
            ax.set_xlim(tmin / 2, tmax * 2)
        ax.set_xlabel("wall-clock time (s)")
        ax.set_ylabel(f"NC objective  L(f(X)) + (β/2)Σ(‖u‖²+‖α‖²), L {result.loss}")
        ax.set_title(f"{result.dataset}: n={result.n_train}, d={result.n_features}, β={result.beta:g}, "
                     f"bias={'yes' if result.bias else 'no'}, {result.activation.name}")
        ax.grid(True, which="both", alpha=0.25)
        ax.legend(fontsize=7.5, loc="best")
        fig.tight_layout()
        fig.savefig(path, dpi=130)
    finally:
        plt.close(fig)


# --------------------------------------------------------------------------- tables


def metric_names(result: ComparisonResult) -> list[tuple[str, str]]:
    """(key, header) of the metrics shown per split."""
    return [("accuracy", "acc")] if result.task == "classification" else [("r2", "R²"), ("mse", "MSE")]


def table_rows(result: ComparisonResult) -> tuple[list[str], list[list[str]]]:
    """Header and formatted rows shared by the terminal table and report.md."""
    header = ["model", "objective", "gap prog", "gap cert"]
    for _, h in metric_names(result):
        header.append(f"train {h}")
        if result.n_test:
            header.append(f"test {h}")
    header += ["neurons", "time s"]
    rows = []
    for m in result.models:
        row = [m.name + (" diverged" if m.diverged else "") + (" (interrupted)" if m.interrupted else ""),
               f"{m.objective:.6g}",
               "—" if m.program_relative_gap is None else _pct(m.program_relative_gap),
               "—" if m.certified_relative_gap is None else _pct(m.certified_relative_gap)]
        for key, _ in metric_names(result):
            row.append(_metric(m.train_metrics, key))
            if result.n_test:
                row.append(_metric(m.test_metrics, key))
        row.append(str(m.neurons) if m.kind == "convex" else f"{m.neurons}/{m.width}")
        row.append(f"{m.wall_time:.2f}")
        rows.append(row)
    return header, rows


def _class_label(c) -> str:
    return str(int(c)) if isinstance(c, float) and c == int(c) else str(c)


def _pct(x: float) -> str:
    if not math.isfinite(x):
        return "n/a"
    if abs(x) < 1e-4:
        return f"{x:.1e}"
    return f"{100 * x:.2f}%"


def _metric(d: dict | None, key: str) -> str:
    if not d or d.get(key) is None or not math.isfinite(d[key]):
        return "—"
    v = d[key]
    return f"{v:.3f}" if key in ("accuracy", "r2") else f"{v:.4g}"


def markdown(result: ComparisonResult) -> str:
    """report.md: setting, table, certificate and notes."""
    header, rows = table_rows(result)
    lines = [f"# cvxnn report: {result.dataset}", "",
             f"- task: {result.task}; training samples n = {result.n_train}, test samples = {result.n_test}, "
             f"features d = {result.n_features}; β = {result.beta:g}; neuron bias: {'yes' if result.bias else 'no'}; "
             f"seed {result.seed}",
             "- objective (canonical, summed over the standardized training samples, no 1/n): "
             "NC = L(f(X)) + (β/2) Σ_j (‖u_j‖² + ‖α_j‖²), f(x) = Σ_j σ(x̃ᵀu_j) α_j",
             f"- loss: {result.loss}, L(f(X)) = `{LOSS_FORMULAS[result.loss]}`; activation: "
             f"{result.activation.name}, σ(t) = {result.activation.a:g}·(t)_+ + {result.activation.b:g}·(t)_-; "
             f"outputs: {result.convex_network.n_outputs}",
             "- features standardized with the training mean and scale; targets "
             + ENCODINGS[result.prepared.encoding]
             + ("; classes: " + ", ".join(_class_label(c) for c in result.prepared.classes)
                if result.task == "classification" else ""),
             f"- certified lower bound on NC for every network of any width: **{result.certified_lower_bound:.6g}**",
             ""]
    lines.append("| " + " | ".join(header) + " |")
    lines.append("|" + "|".join("---" for _ in header) + "|")
    for r in rows:
        lines.append("| " + " | ".join(r) + " |")
    lines += ["", "*objective*: NC on the standardized training data. *gap prog*: relative duality gap of "
              "the convex program on its own pattern list "
              "(optimal among networks whose neurons use these patterns; globally optimal only when all patterns "
              "are listed). *gap cert*: (NC − certified lower bound)/NC, the bound holding for every "
              "network of any width. *convex (P sampled)*: P Gaussian-sampled patterns; *convex (run patterns)*: "
              "the convex program on the activation patterns of that gradient run (the best one), so its "
              "optimum is at most that run's objective. Gradient runs: *neurons* = "
              "active/width; time is the run's wall-clock "
              "time. Convex time includes the solve, its polish and the pattern handling (for *run patterns*, also "
              "that run's time).", "", f"*refit*: {result.settings['refit_guarantee']}.", "",
              f"![objective vs time]({FIGURE})", "", "## Certificates", ""]
    for name, c in result.certificates.items():
        if c.get("error"):
            lines += [f"### {name}", "", f"- not certified: {c['error']}", ""]
            continue
        lines += [f"### {name}", "",
                  f"- objective {c['objective']:.6g}, lower bound {c['lower_bound']:.6g}, "
                  f"relative gap {_pct(c['relative_gap'])}",
                  f"- globally optimal: {c['globally_optimal']} ({c['method']}, {c['patterns_checked']} patterns, "
                  f"max dual violation {c['max_dual_violation']:.4g})",
                  f"- checked: {c['checked']}", f"- not checked: {c['not_checked']}", ""]
    if result.interrupted:
        lines += ["*Interrupted (Ctrl-C): the remaining runs were skipped.*", ""]
    return "\n".join(lines)
