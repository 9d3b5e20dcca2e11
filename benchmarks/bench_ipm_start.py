"""The ReLU ipm started along the cones' analytic centers against along the gates themselves.

    PYTHONPATH=src OMP_NUM_THREADS=1 python benchmarks/bench_ipm_start.py [--problems breast,planted20,planted50,digits]
        [--patterns 100] [--large 8000,20000] [--tol 1e-6]

The ipm's start shifts every block along an interior direction of its cone; since the eighth session these are
the analytic centers of the cones (``_analytic_centers`` in solvers/interior_point.py), computed from the gates.
For every problem of ``bench_solvers.py`` (β as there) at P sampled patterns (seed 0), and for planted problems of
n samples, d = 20 at P = 20 (``--large``): the solve with the centers and with the unit gates, timing the solve,
its iterations, status and certified relative gap.
"""

from __future__ import annotations

import argparse

import torch
from bench_solvers import ipm_cases
from problems import planted_problem, relative_gap, timed_relu_ipm

import cvxnn


def unit_gates(op, live, XX, C: torch.Tensor) -> torch.Tensor:
    """The start directions before the centering: the gates, normalized."""
    return C / C.norm(dim=1, keepdim=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--problems", default="breast,planted20,planted50,digits")
    parser.add_argument("--patterns", type=int, default=100)
    parser.add_argument("--large", default="8000,20000", help="planted problems (n, d = 20) solved at P = 20")
    parser.add_argument("--tol", type=float, default=1e-6)
    args = parser.parse_args()
    torch.set_num_threads(1)
    cases = ipm_cases(args.problems, args.patterns, args.large)
    X, y = planted_problem(200, 5)
    timed_relu_ipm(X, y, cvxnn.sample_patterns(X, 5, seed=0), 10.0, 0.1)  # warm-up
    for label, X, y, beta, P in cases:
        pats = cvxnn.sample_patterns(X, P, seed=0)
        for name, parts in (("gates", {"_analytic_centers": unit_gates}), ("centers", {})):
            seconds, out = timed_relu_ipm(X, y, pats, beta, args.tol, **parts)
            gap = relative_gap(out)
            print(f"{label:40s} P={P:4d} start along {name:7s}: {seconds:7.2f} s, {out.n_iter:3d} iterations, "
                  f"{out.status:8s} gap {gap:.1e}", flush=True)


if __name__ == "__main__":
    main()
