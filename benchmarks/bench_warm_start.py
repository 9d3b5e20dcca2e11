"""The ReLU ipm from a warm start, with its shift into the cones bounded by the start's own scale or not.

    PYTHONPATH=src OMP_NUM_THREADS=1 python benchmarks/bench_warm_start.py
        [--problems breast,digits,planted20,planted50] [--steps 1500] [--tol 1e-2 1e-3 1e-6]

The race's starts (``bench_search.py --seed-exact``): the first ``--steps`` steps of the best Adam run of each problem
(learning rate 1e-2 and the seed that won there: breast cancer 2, digits 1, planted d = 20 1, d = 50 2), then
``cvxnn.fit`` on Ψ(network)'s patterns from Ψ(network) by ipm. Since the ninth session the start is shifted into the
cones by at most WARM_START_SHIFT times its median column norm (``_start_scale`` in solvers/interior_point.py);
"unbounded" sets that factor to infinity, the shift of a cold start. Prints each solve's iterations, time, NC and
certified gap.
"""

from __future__ import annotations

import argparse
import time
from unittest import mock

import torch
from bench_search import PROBLEMS

import cvxnn
from cvxnn.network import convex_from_network
from cvxnn.nonconvex import train_nonconvex
from cvxnn.solvers import interior_point

SEEDS = {"breast": 2, "digits": 1, "planted20": 1, "planted50": 2}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--problems", default="breast,digits,planted20,planted50")
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--tol", type=float, nargs="+", default=[1e-2, 1e-3, 1e-6])
    args = parser.parse_args()
    torch.set_num_threads(1)
    for name in args.problems.split(","):
        load, beta = PROBLEMS[name]
        X, t = load()
        run = train_nonconvex(X, t, beta, 100, lr=1e-2, epochs=args.steps, seed=SEEDS[name])
        pats, v, w = convex_from_network(run.network, X)
        cvxnn.fit(X, t, beta, patterns=pats, solver="ipm", tol=0.1, warm_start=(v, w))  # set-up off the clock
        for label, shift in (("unbounded", float("inf")), ("bounded", interior_point.WARM_START_SHIFT)):
            for tol in args.tol:
                with mock.patch.object(interior_point, "WARM_START_SHIFT", shift):
                    start = time.perf_counter()
                    res = cvxnn.fit(X, t, beta, patterns=pats, solver="ipm", tol=tol, warm_start=(v, w))
                    seconds = time.perf_counter() - start
                print(f"{name:10s} Adam {args.steps} steps (NC {run.final_objective:.4f}), shift {label:9s} "
                      f"tol {tol:g}: {res.n_iter:3d} iterations, {seconds:6.2f} s, NC {res.network_objective:.4f}, "
                      f"gap {res.relative_gap:.1e}", flush=True)


if __name__ == "__main__":
    main()
