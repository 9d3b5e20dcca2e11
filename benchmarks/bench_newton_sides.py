"""The ReLU ipm's Newton system on the sample side (n x n) against the pattern side (Pd x Pd), same problem.

    PYTHONPATH=src OMP_NUM_THREADS=1 python benchmarks/bench_newton_sides.py [--n 2000] [--d 20]
        [--patterns 10,20,50,100] [--tol 1e-6] [--loss squared]

For the planted problem (:mod:`problems`, n samples, d features, β = 10) and each pattern count P (Gaussian
gates, seed 0): ``solve_relu_interior`` with the side forced each way, timing the solve, its iterations, the
certified relative gap and the objective, and the side :func:`~cvxnn.solvers.interior_point._sample_side`
chooses. The two sides solve the same Newton systems, so the iterates agree to round-off; what differs is the
cost per iteration: n²·P·d + n³/6 against n·(P·d)² + (P·d)³/6.
"""

from __future__ import annotations

import argparse

import torch
from problems import planted_problem, relative_gap, timed_relu_ipm

import cvxnn
from cvxnn.solvers import interior_point


def solve(X, y, pats, beta: float, tol: float, loss: str, sample_side: bool) -> tuple[float, object]:
    """(seconds, SolverOutput) with the side forced."""
    return timed_relu_ipm(X, y, pats, beta, tol, loss, _sample_side=lambda *args: sample_side)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--d", type=int, default=20)
    parser.add_argument("--patterns", default="10,20,50,100")
    parser.add_argument("--tol", type=float, default=1e-6)
    parser.add_argument("--loss", default="squared", choices=("squared", "logistic"))
    args = parser.parse_args()
    torch.set_num_threads(1)
    X, y = planted_problem(args.n, args.d)
    if args.loss == "logistic":
        y = (y > y.mean()) * 2.0 - 1.0
    beta = 10.0
    solve(X[:200], y[:200], cvxnn.sample_patterns(X[:200], 5, seed=0), beta, 0.1, args.loss, True)  # warm-up
    for P in (int(p) for p in args.patterns.split(",")):
        pats = cvxnn.sample_patterns(X, P, seed=0)
        chosen = "sample" if interior_point._sample_side(args.n, args.d, len(pats), args.loss) else "pattern"
        for side in ("sample", "pattern"):
            seconds, out = solve(X, y, pats, beta, args.tol, args.loss, side == "sample")
            gap = relative_gap(out)
            print(f"n={args.n} d={args.d} P={len(pats):4d} Pd={len(pats) * args.d:5d} {side:7s} side"
                  f"{' (chosen)' if side == chosen else '         '}: {seconds:7.2f} s, {out.n_iter:3d} iterations, "
                  f"{seconds / max(out.n_iter, 1):.3f} s each, gap {gap:.1e}, {out.status}, "
                  f"objective {out.info['objective']:.10g}", flush=True)


if __name__ == "__main__":
    main()
