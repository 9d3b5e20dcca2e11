"""Side-by-side solver benchmark: cvxnn's solvers against the cvxpy + Clarabel reference and
against PyTorch Adam on the same problem and pattern list, in one run on one machine.

    .venv/bin/python benchmarks/bench_solvers.py [--quick] [--out benchmarks/results.json]

Problems: (a) synthetic regression from a planted ReLU teacher (n = 2000, d = 20),
(b) breast cancer (standardized, ±1 targets, bias). For each: the gated program at fixed sampled
patterns (P = 100) with FISTA (float64, stop at relative gap 1e-4 and 1e-6) and with the reference
solver; the ReLU program with the reference solver; full-batch Adam on a network of the same width
as the reference ReLU solution, from three seeds.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np
import torch

import cvxnn
from cvxnn.data import load_bundled
from cvxnn.nonconvex import train_nonconvex


def planted_problem(n: int, d: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    teacher = rng.standard_normal((5, d))
    y = np.maximum(X @ teacher.T, 0) @ rng.standard_normal(5) + 0.1 * rng.standard_normal(n)
    return X, y


def breast_cancer() -> tuple[np.ndarray, np.ndarray]:
    ds = load_bundled("breast_cancer")
    X = (ds.X - ds.X.mean(0)) / ds.X.std(0)
    return np.c_[X, np.ones(len(X))], 2.0 * ds.y - 1


def timed(fn):
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def run_problem(name: str, X: np.ndarray, y: np.ndarray, beta: float, n_patterns: int, adam_epochs: int) -> dict:
    P = cvxnn.sample_patterns(X, n_patterns, seed=0)
    row: dict = {"problem": name, "n": X.shape[0], "d": X.shape[1], "P": len(P), "beta": beta}
    ref_gated, t = timed(lambda: cvxnn.fit(X, y, beta, patterns=P, formulation="gated", solver="reference"))
    row["gated_reference_s"], row["gated_optimum"] = t, ref_gated.objective
    for tol in (1e-4, 1e-6):
        fast, t = timed(lambda: cvxnn.fit(X, y, beta, patterns=P, formulation="gated", solver="fista", tol=tol))
        row[f"gated_fista_{tol:g}_s"] = t
        row[f"gated_fista_{tol:g}_subopt"] = (fast.objective - ref_gated.objective) / ref_gated.objective
        row[f"gated_fista_{tol:g}_status"] = fast.status
    relu, t = timed(lambda: cvxnn.fit(X, y, beta, patterns=P, formulation="relu", solver="reference"))
    row["relu_reference_s"], row["relu_optimum"], row["relu_neurons"] = t, relu.objective, relu.n_neurons
    adam = []
    for seed in range(3):
        run = train_nonconvex(X, y, beta, width=max(relu.n_neurons, 1), optimizer="adam", lr=1e-2,
                              epochs=adam_epochs, seed=seed, record_every=25)
        adam.append((run.final_objective, run.wall_time))
    best = min(adam)
    row["adam_best_objective"], row["adam_time_s"] = best
    row["adam_vs_relu_optimum"] = (best[0] - relu.objective) / relu.objective
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="smaller problems (a smoke run)")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results.json"))
    args = parser.parse_args()
    torch.set_num_threads(max(1, torch.get_num_threads()))
    n, P, epochs = (500, 30, 500) if args.quick else (2000, 100, 2000)
    X, y = planted_problem(n, 20)
    rows = [run_problem(f"planted n={n} d=20", X, y, 10.0, P, epochs)]
    Xb, yb = breast_cancer()
    rows.append(run_problem("breast cancer", Xb, yb, 1.0, P, epochs))
    meta = {"machine": platform.processor() or platform.machine(), "cores": torch.get_num_threads(),
            "torch": torch.__version__, "command": "python benchmarks/bench_solvers.py" + (" --quick" if args.quick else "")}
    args.out.write_text(json.dumps({"meta": meta, "rows": rows}, indent=2))
    for r in rows:
        print(json.dumps(r, indent=1))


if __name__ == "__main__":
    main()
