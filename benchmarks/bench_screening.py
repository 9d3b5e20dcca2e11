"""What gap-safe screening and working sets buy the gated FISTA solver.

    PYTHONPATH=src .venv/bin/python benchmarks/bench_screening.py [--quick] [--problems ...] [--P 100 500]
        [--betas 0.1 0.01] [--tols 1e-4 1e-6] [--threads 2] [--time-limit 120] [--append]
        [--out benchmarks/results_screening.json]

``--append`` adds rows to an existing output file, so the grid can be run in short pieces; the
table printed at the end covers every row in the file.

For each problem, number of sampled patterns P (Gaussian gates, seed 0) and β = f · β_max, where
β_max = max_i ‖XᵀD_iy‖ is the smallest β at which U = 0 is optimal, the gated program is solved in
float64 to each relative duality gap (certified over all groups) by the four modes
(screening, working set) ∈ {off, on}². Reported: wall time, FISTA iterations, final objective,
certified relative gap, groups screened, working-set sizes and the support size of the solution.

Problems: planted ReLU teacher (n = 2000, d = 20 and d = 50, no bias); breast cancer
(standardized, ±1 targets, bias column); digits (standardized pixels, +1 for digits < 5 and −1
otherwise, bias column). Deterministic: fixed seeds, one run per cell.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np
import torch

from cvxnn.operators import PatternOperator
from cvxnn.patterns import sample_patterns
from cvxnn.solvers.fista import solve_gated_fista
from problems import breast_cancer, digits_binary, planted_problem

MODES = {"plain": (False, False), "screen": (True, False), "ws": (False, True), "screen+ws": (True, True)}


PROBLEMS = {
    "planted_d20": lambda: planted_problem(2000, 20),
    "planted_d50": lambda: planted_problem(2000, 50),
    "breast_cancer": breast_cancer,
    "digits": digits_binary,
}


def run_cell(op: PatternOperator, y: torch.Tensor, beta: float, mode: str, tol: float, time_limit: float) -> dict:
    screening, working_set = MODES[mode]
    start = time.perf_counter()
    out = solve_gated_fista(op, y, beta, tol=tol, max_iter=10**7, time_limit=time_limit,
                            screening=screening, working_set=working_set)
    seconds = time.perf_counter() - start
    return {"mode": mode, "tol": tol, "seconds": seconds, "status": out.status, "iterations": out.n_iter,
            "objective": out.info["objective"], "relative_gap": out.info["relative_gap"],
            "screened": out.info["screened"], "working_sets": out.info["working_sets"],
            "support": int((np.linalg.norm(out.v, axis=1) > 0).sum())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="planted d=20 and breast cancer, P=100, β=0.1 β_max")
    parser.add_argument("--problems", nargs="+", choices=sorted(PROBLEMS), default=list(PROBLEMS))
    parser.add_argument("--P", nargs="+", type=int, default=[100, 500], help="sampled patterns")
    parser.add_argument("--betas", nargs="+", type=float, default=[0.1, 0.01], help="β as fractions of β_max")
    parser.add_argument("--tols", nargs="+", type=float, default=[1e-4, 1e-6], help="relative gaps")
    parser.add_argument("--modes", nargs="+", choices=list(MODES), default=list(MODES))
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    parser.add_argument("--time-limit", type=float, default=120.0, help="seconds per solve")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results_screening.json"))
    parser.add_argument("--append", action="store_true", help="add the rows to those already in --out")
    args = parser.parse_args()
    if args.quick:
        args.problems, args.P, args.betas = ["planted_d20", "breast_cancer"], [100], [0.1]
    if args.threads:
        torch.set_num_threads(args.threads)
    rows = []
    for name in args.problems:
        X, y = PROBLEMS[name]()
        for n_patterns in args.P:
            pats = sample_patterns(X, n_patterns, seed=0)
            op = PatternOperator(X, pats.masks, dtype=torch.float64)
            yt = torch.as_tensor(y, dtype=torch.float64)
            beta_max = float(np.linalg.norm((pats.masks * y[:, None]).T @ X, axis=1).max())
            for frac in args.betas:
                beta = frac * beta_max
                for tol in args.tols:
                    for mode in args.modes:
                        cell = run_cell(op, yt, beta, mode, tol, args.time_limit)
                        row = {"problem": name, "n": X.shape[0], "d": X.shape[1], "P": len(pats),
                               "beta_frac": frac, "beta": beta, **cell}
                        rows.append(row)
                        print(f"{name:14s} P={len(pats):4d} β={frac:g}β_max tol={tol:g} {mode:10s} "
                              f"{cell['seconds']:8.2f} s  {cell['status']:10s} it={cell['iterations']:6d} "
                              f"gap={cell['relative_gap']:.1e} support={cell['support']} "
                              f"screened={cell['screened']} ws={cell['working_sets']}", flush=True)
    meta = {"machine": platform.processor() or platform.machine(), "threads": torch.get_num_threads(),
            "torch": torch.__version__, "dtype": "float64", "time_limit_s": args.time_limit,
            "command": "python benchmarks/bench_screening.py " + " ".join(
                f"--{k.replace('_', '-')} {' '.join(map(str, v)) if isinstance(v, list) else v}"
                for k, v in vars(args).items() if k not in ("quick", "out", "append") and v is not None)}
    runs = [meta]
    if args.append and args.out.exists():
        previous = json.loads(args.out.read_text())
        runs, rows = previous["runs"] + runs, previous["rows"] + rows
    args.out.write_text(json.dumps({"runs": runs, "rows": rows}, indent=1))
    print_table(rows)


def print_table(rows: list[dict]) -> None:
    """One line per (problem, P, β, tol): seconds per mode and the best speed-up over plain FISTA."""
    keys = sorted({(r["problem"], r["P"], r["beta_frac"], r["tol"]) for r in rows},
                  key=lambda k: (list(PROBLEMS).index(k[0]), k[1], -k[2], -k[3]))
    modes = [m for m in MODES if any(r["mode"] == m for r in rows)]
    print("\n| problem | P | β/β_max | tol | support | " + " | ".join(f"{m} (s)" for m in modes) + " | best vs plain |")
    print("|---|---|---|---|---|" + "---|" * (len(modes) + 1))
    for key in keys:
        cells = {r["mode"]: r for r in rows if (r["problem"], r["P"], r["beta_frac"], r["tol"]) == key}
        times = [f"{cells[m]['seconds']:.2f}" + ("" if cells[m]["status"] == "optimal" else "*") if m in cells
                 else "–" for m in modes]
        support = max(c["support"] for c in cells.values())
        speed = ""
        if "plain" in cells:
            best = min(c["seconds"] for m, c in cells.items() if m != "plain") if len(cells) > 1 else None
            speed = "" if best is None else f"{cells['plain']['seconds'] / best:.1f}×"
        print(f"| {key[0]} | {key[1]} | {key[2]:g} | {key[3]:g} | {support} | " + " | ".join(times) + f" | {speed} |")
    print("(* = stopped by the time limit before reaching the gap)")


if __name__ == "__main__":
    main()
