"""What the face polish (solvers/polish.py) buys the ReLU ipm: the same solves with it and without it.

    PYTHONPATH=src OMP_NUM_THREADS=1 python benchmarks/bench_polish.py [--problems breast,planted20,planted50,digits]
        [--patterns 100] [--large 8000,20000] [--tols 1e-6,1e-8]

For every problem of ``bench_solvers.py`` (β as there) at P sampled patterns (seed 0), and for planted problems of
n samples, d = 20 at P = 20 (``--large``): ``solve_relu_interior`` at each tolerance, with the polish and with it
replaced by one that never succeeds, timing the solve, its iterations, status, certified relative gap and
objective. Without the polish the certificate stalls once the Newton systems lose accuracy; the polish solves
the program on the iterate's face and certifies to round-off.
"""

from __future__ import annotations

import argparse

import torch
from bench_solvers import ipm_cases
from problems import planted_problem, relative_gap, timed_relu_ipm

import cvxnn


def solve(X, y, pats, beta: float, tol: float, polish: bool) -> tuple[float, object]:
    """(seconds, SolverOutput), the polish switched off by replacing it with one that finds nothing."""
    return timed_relu_ipm(X, y, pats, beta, tol, **({} if polish else {"polish": lambda *args: None}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--problems", default="breast,planted20,planted50,digits")
    parser.add_argument("--patterns", type=int, default=100)
    parser.add_argument("--large", default="8000,20000", help="planted problems (n, d = 20) solved at P = 20")
    parser.add_argument("--tols", default="1e-6,1e-8")
    args = parser.parse_args()
    torch.set_num_threads(1)
    cases = ipm_cases(args.problems, args.patterns, args.large)
    X, y = planted_problem(200, 5)
    solve(X, y, cvxnn.sample_patterns(X, 5, seed=0), 10.0, 0.1, True)  # warm-up
    for label, X, y, beta, P in cases:
        pats = cvxnn.sample_patterns(X, P, seed=0)
        for tol in (float(t) for t in args.tols.split(",")):
            for polish in (False, True):
                seconds, out = solve(X, y, pats, beta, tol, polish)
                gap = relative_gap(out)
                print(f"{label:40s} P={P:4d} tol {tol:.0e} polish {'on ' if polish else 'off'}: {seconds:7.2f} s, "
                      f"{out.n_iter:3d} iterations, {out.status:8s} gap {gap:.1e}, "
                      f"objective {out.info['objective']:.12g}", flush=True)


if __name__ == "__main__":
    main()
