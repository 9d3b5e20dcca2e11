"""The ReLU program by ipm on the planted problem at large n (P = 20 Gaussian gates, seed 0, β = 10, tol 1e-6).

    PYTHONPATH=src OMP_NUM_THREADS=1 python benchmarks/bench_large_n.py [--n 20000] [--d 20] [--patterns 20]

With n ≫ P·d the ipm solves its Newton systems on the pattern side (Pd x Pd), and no n x n matrix exists; prints
the time, iterations, certified relative gap and objective.
"""

from __future__ import annotations

import argparse

import torch
from problems import planted_problem, relative_gap, timed_relu_ipm

import cvxnn


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=20000)
    parser.add_argument("--d", type=int, default=20)
    parser.add_argument("--patterns", type=int, default=20)
    args = parser.parse_args()
    torch.set_num_threads(1)
    X, y = planted_problem(args.n, args.d)
    pats = cvxnn.sample_patterns(X, args.patterns, seed=0)
    seconds, out = timed_relu_ipm(X, y, pats, 10.0, 1e-6)
    print(f"n={args.n} d={args.d} P={len(pats)}: {seconds:.2f} s, {out.n_iter} iterations, "
          f"{seconds / max(out.n_iter, 1):.3f} s each, gap {relative_gap(out):.1e}, {out.status}, "
          f"objective {out.info['objective']:.10g}", flush=True)


if __name__ == "__main__":
    main()
