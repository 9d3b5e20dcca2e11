"""Side-by-side solver benchmark at fixed patterns, in one run on one machine:
cvxnn's fast solvers against the cvxpy + Clarabel reference and against scnn (Mishkin et al.,
ICML 2022, ``pip install --no-deps pyscnn``; skipped with a note when it is not installed).

    .venv/bin/python benchmarks/bench_solvers.py [--quick] [--problems planted20,breast] [--patterns 100,500]
                                                 [--relu-only] [--loss squared] [--timeout 300]
                                                 [--out benchmarks/results.json]

For each problem and pattern count P (Gaussian gates, seed 0, the same gates for every solver):

* gated program  min ½‖Σ_i D_iXu_i − y‖² + βΣ‖u_i‖ : cvxnn FISTA + Newton (float64, stopping on a certified
  relative gap of 1e-4 and 1e-6; float32 at 1e-4), cvxnn's barrier method ("ipm", float64, certified 1e-4 and
  1e-6; not for the hinge), scnn's R-FISTA (its default tolerance and tighter ones), and the reference
  (P ≤ ``--reference-max-p``);
* ReLU program (the same with cone constraints, blocks v_i, w_i), for the problems in ``--relu``: cvxnn's
  augmented Lagrangian ("al", float64 to gap 1e-6 and float32 to 1e-4, each within ``--al-time`` seconds),
  cvxnn's interior-point method ("ipm", float64, certified gaps 1e-4 and 1e-6, through ``cvxnn.fit``),
  scnn's augmented Lagrangian (within ``--relu-timeout`` seconds) and the reference (P ≤ ``--reference-max-p``).

p* is, for the gated program, cvxnn's own float64 solve at a certified relative gap of 1e-10 (its
lower bound is a valid dual value, so p* is known to that accuracy); for the ReLU program, the
reference's optimum (its certified gap is in the row) for P ≤ ``--reference-max-p`` (100), and cvxnn's ipm
at a certified gap of 1e-8 above it, where the reference is not run. Every row reports the wall time and the relative
suboptimality (objective − p*)/p* of the returned point measured in cvxnn's scaling; scnn's objective
is (1/2n)‖·‖² + λΣ‖·‖, so λ = β/n gives the same program; its solutions are scored on our side
with its own (reordered) gates, and ReLU solutions also report their cone violation.
Each external run is a separate process with a wall-clock limit (``--timeout``).

``--loss logistic`` or ``--loss hinge`` (classification problems: breast, digits) runs the same rows for
that loss where the solver supports it: cvxnn FISTA, ipm (on the gated program: logistic, not the hinge) and the
reference; the augmented Lagrangian and scnn are squared-loss only and are skipped. For the hinge the gated p* is
the reference's optimum too (FISTA's barrier phase stalls near a certified 1e-7, short of 1e-10).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import platform
import time
from pathlib import Path
from typing import Callable

import numpy as np
import torch

import cvxnn
from cvxnn.network import convex_objective
from cvxnn.operators import PatternOperator
from cvxnn.solvers.augmented_lagrangian import solve_relu_al
from problems import breast_cancer, digits_binary, planted_problem


PROBLEMS: dict[str, tuple[str, Callable[[], tuple[np.ndarray, np.ndarray]], float]] = {
    "planted20": ("planted ReLU teacher n=2000 d=20", lambda: planted_problem(2000, 20), 10.0),
    "planted50": ("planted ReLU teacher n=2000 d=50", lambda: planted_problem(2000, 50), 10.0),
    "planted20_20k": ("planted ReLU teacher n=20000 d=20", lambda: planted_problem(20000, 20), 10.0),
    "planted20_100k": ("planted ReLU teacher n=100000 d=20", lambda: planted_problem(100000, 20), 10.0),
    "breast": ("breast cancer (standardized, ±1, bias)", breast_cancer, 1.0),
    "digits": ("digits <5 vs ≥5 (standardized, ±1, bias)", digits_binary, 1.0),
}


def ipm_cases(problems: str, patterns: int, large: str) -> list[tuple[str, np.ndarray, np.ndarray, float, int]]:
    """(label, X, y, β, P) for the comma-separated ``problems`` of PROBLEMS at ``patterns`` patterns, then for planted
    problems of the comma-separated sizes ``large`` (d = 20, β = 10) at P = 20: the cases of the scripts that compare
    parts of the ReLU ipm (bench_polish.py, bench_ipm_start.py)."""
    cases = []
    for key in filter(None, problems.split(",")):
        label, make, beta = PROBLEMS[key]
        cases.append((label, *make(), beta, patterns))
    for n in filter(None, large.split(",")):
        cases.append((f"planted ReLU teacher n={n} d=20", *planted_problem(int(n), 20), 10.0, 20))
    return cases


def cone_violation_relative(X, masks, V, W) -> float:
    """max over blocks b_i and samples k of (−((2D_i − I)Xb_i)_k)_+ / (max_k ‖x_k‖ · ‖b_i‖)."""
    S = np.where(masks, 1.0, -1.0)
    scale = np.linalg.norm(X, axis=1).max()
    viol = 0.0
    for B in (V, W):
        norms = np.maximum(np.linalg.norm(B, axis=1), 1e-300)
        viol = max(viol, float((np.maximum(-(S * (X @ B.T)), 0) / (scale * norms)).max()))
    return viol


# ----------------------------------------------------------------------------- scnn


def scnn_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("scnn") is not None


def _scnn_job(program: str, X, y, gates, beta, tol, queue) -> None:
    from scnn.metrics import Metrics
    from scnn.models import ConvexGatedReLU, ConvexReLU
    from scnn.optimize import optimize_model
    from scnn.regularizers import NeuronGL1
    from scnn.solvers import AL, RFISTA

    model = ConvexGatedReLU(gates) if program == "gated" else ConvexReLU(gates)
    solver = RFISTA(model, tol=tol) if program == "gated" else AL(model, tol=tol, constraint_tol=tol)
    start = time.perf_counter()
    cm, _ = optimize_model(model, solver, Metrics(), X, y, regularizer=NeuronGL1(beta / len(y)),
                           return_convex=True, unitize_data=False, dtype="float64")
    elapsed = time.perf_counter() - start
    masks = (X @ np.asarray(cm.G)) >= 0
    params = [np.asarray(p)[0] for p in cm.parameters]
    if program == "gated":  # u in v, w = 0; the gated program has no cone constraints
        V, W = params[0], np.zeros_like(params[0])
        viol = 0.0
    else:
        V, W = params[0], params[1]
        viol = cone_violation_relative(X, masks, V, W)
    queue.put((elapsed, convex_objective(X, y, masks, V, W, beta), viol, masks))


def in_child(job, args: tuple, timeout: float):
    """``job(*args, queue)`` in a forked child process; what it puts on the queue, or None after ``timeout`` s."""
    ctx = mp.get_context("fork")
    queue = ctx.Queue()
    proc = ctx.Process(target=job, args=(*args, queue))
    proc.start()
    try:
        return queue.get(timeout=timeout)
    except Exception:
        return None
    finally:
        proc.terminate()
        proc.join()


def _reference_job(X, y, pats, beta, program, loss, queue) -> None:
    start = time.perf_counter()
    fit = cvxnn.fit(X, y, beta, patterns=pats, formulation=program, solver="reference", loss=loss)
    queue.put((time.perf_counter() - start, fit.objective, fit.relative_gap))


def run_al(X, y, pats, beta, tol, dtype, time_limit: float) -> tuple[float, float, float, str]:
    """cvxnn's augmented Lagrangian on the ReLU program with a wall-clock limit:
    (seconds, objective at its cone-feasible point, certified relative gap, status)."""
    op = PatternOperator(X, pats.masks, dtype=dtype)
    start = time.perf_counter()
    out = solve_relu_al(op, torch.as_tensor(y, dtype=dtype), beta, tol=tol, time_limit=time_limit, design=X,
                        interior=pats.gates.T)
    seconds = time.perf_counter() - start
    objective, lower = min(h[1] for h in out.history), max(h[2] for h in out.history)
    return seconds, objective, (objective - lower) / abs(objective), out.status


# ----------------------------------------------------------------------------- one problem


def bench_problem(key: str, P: int, timeout: float, quick: bool, relu: bool, al_time: float,
                  gated: bool = True, loss: str = "squared", relu_timeout: float | None = None,
                  reference_max_p: int = 100) -> list[dict]:
    label, make, beta = PROBLEMS[key]
    X, y = make()
    if quick:
        X, y = X[:400], y[:400]
    pats = cvxnn.sample_patterns(X, P, seed=0)
    base = {"problem": label, "n": X.shape[0], "d": X.shape[1], "P": len(pats), "beta": beta, "loss": loss}
    squared = loss == "squared"  # the augmented Lagrangian and scnn solve the squared loss only
    rows: list[dict] = []
    programs = (["gated"] if gated else []) + (["relu"] if relu else [])
    for program in programs:
        fast = "fista" if program == "gated" else "al"
        reference = in_child(_reference_job, (X, y, pats, beta, program, loss), timeout) if P <= reference_max_p \
            else None
        if program == "gated" and loss != "hinge":  # certified to 1e-10 by FISTA + Newton
            p_star = cvxnn.fit(X, y, beta, patterns=pats, formulation=program, solver=fast, loss=loss,
                               tol=1e-10).objective
        elif P <= reference_max_p:  # the reference's optimum, certified by its own gap
            p_star = None if reference is None else reference[1]
        else:  # ReLU without the reference: cvxnn's ipm certified to 1e-8
            p_star = cvxnn.fit(X, y, beta, patterns=pats, solver="ipm", loss=loss, tol=1e-8).objective
        row0 = dict(base, program=program, p_star=p_star)

        def add(method: str, seconds: float | None, objective: float | None, **extra) -> None:
            sub = None if objective is None or p_star is None else (objective - p_star) / abs(p_star)
            rows.append(dict(row0, method=method, seconds=seconds, objective=objective, subopt=sub, **extra))
            shown = "timeout" if seconds is None else f"{seconds:8.2f} s  objective {objective:.8g}  subopt " + \
                ("?" if sub is None else f"{sub:.1e}")
            print(f"{label[:36]:36s} P={len(pats):4d} {program:5s} {method:28s} {shown}", flush=True)

        runs = ((1e-4, torch.float64), (1e-6, torch.float64), (1e-4, torch.float32)) if program == "gated" else \
            ((1e-6, torch.float64), (1e-4, torch.float32))
        for tol, dtype in runs:
            if program == "relu":  # the augmented Lagrangian rarely reaches these gaps: it gets a time limit
                if not squared:
                    continue
                seconds, objective, gap, status = run_al(X, y, pats, beta, tol, dtype, al_time)
            else:
                start = time.perf_counter()
                fit = cvxnn.fit(X, y, beta, patterns=pats, formulation=program, solver=fast, tol=tol, dtype=dtype,
                                loss=loss)
                seconds, objective, gap, status = time.perf_counter() - start, fit.objective, fit.relative_gap, \
                    fit.status
            add(f"cvxnn {fast} {str(dtype)[6:]} gap {tol:g}", seconds, objective, certified_gap=gap, status=status)
        if program == "relu" or loss != "hinge":  # the interior-point methods, certified (gated: smooth losses)
            for tol in (1e-4, 1e-6):
                start = time.perf_counter()
                fit = cvxnn.fit(X, y, beta, patterns=pats, formulation=program, solver="ipm", tol=tol, loss=loss)
                add(f"cvxnn ipm float64 gap {tol:g}", time.perf_counter() - start, fit.objective,
                    certified_gap=fit.relative_gap, status=fit.status)
        if scnn_available() and squared:
            name = "R-FISTA" if program == "gated" else "AL"
            for tol in ((1e-6, 1e-8, 1e-10) if program == "gated" else (1e-6,)):
                out = in_child(_scnn_job, (program, X, y, pats.gates, beta, tol),
                               timeout if program == "gated" or relu_timeout is None else relu_timeout)
                if out is None:
                    add(f"scnn {name} tol {tol:g}", None, None)
                    break
                seconds, objective, viol, masks = out
                same = {m.tobytes() for m in masks.T} == {m.tobytes() for m in pats.masks.T}
                add(f"scnn {name} tol {tol:g}", seconds, objective, cone_violation=viol, same_patterns=same)
        if P <= reference_max_p:
            seconds, objective, gap = reference if reference is not None else (None, None, None)
            add("cvxpy + Clarabel", seconds, objective, certified_gap=gap)
    return rows


def machine_info() -> dict:
    return {"machine": platform.processor() or platform.machine(), "threads": torch.get_num_threads(),
            "torch": torch.__version__}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="400 samples per problem (a smoke run)")
    parser.add_argument("--problems", default="planted20,planted50,breast,digits")
    parser.add_argument("--patterns", default="100,500")
    parser.add_argument("--relu", default="planted20,breast", help="problems whose ReLU program is also run")
    parser.add_argument("--relu-only", action="store_true", help="skip the gated program")
    parser.add_argument("--loss", default="squared", choices=("squared", "logistic", "hinge"),
                        help="the loss of both programs (logistic, hinge: ±1 labels, so breast or digits)")
    parser.add_argument("--al-time", type=float, default=60.0, help="seconds allowed to cvxnn's augmented Lagrangian")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds allowed to each scnn/reference run")
    parser.add_argument("--reference-max-p", type=int, default=100, help="the reference runs for P up to this")
    parser.add_argument("--relu-timeout", type=float, help="seconds allowed to scnn's augmented Lagrangian "
                        "(default: --timeout)")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results.json"))
    args = parser.parse_args()
    meta = dict(machine_info(), scnn=scnn_available(), omp_threads=os.environ.get("OMP_NUM_THREADS"),
                command="python benchmarks/bench_solvers.py " + " ".join(
                    f"--{k.replace('_', '-')} {v}" for k, v in vars(args).items()
                    if k not in ("quick", "out", "relu_only")) +
                (" --quick" if args.quick else "") + (" --relu-only" if args.relu_only else ""))
    rows: list[dict] = []
    for key in args.problems.split(","):
        for P in (int(p) for p in args.patterns.split(",")):
            rows.extend(bench_problem(key, P, args.timeout, args.quick, key in args.relu.split(","), args.al_time,
                                      gated=not args.relu_only, loss=args.loss, relu_timeout=args.relu_timeout,
                                      reference_max_p=args.reference_max_p))
            args.out.write_text(json.dumps({"meta": meta, "rows": rows}, indent=2))  # an interrupted run keeps its rows


if __name__ == "__main__":
    main()
