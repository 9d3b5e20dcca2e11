"""The gated program's pattern search against more sampled patterns (issue 3, item 3 for the gated program).

    PYTHONPATH=src OMP_NUM_THREADS=1 python benchmarks/bench_gated_search.py [--problems NAME ...]
        [--sampled P ...] [--start P] [--time-limit S]

For each problem (:mod:`problems`; ``breast``, ``digits``, ``planted20``, ``planted50``): the gated program
(squared loss, one thread, float64, tol 1e-6, solver "auto") on ``--sampled`` Gaussian patterns (seed 0), each
solve timed; then ``fit(formulation="gated", patterns=--start, search=SearchOptions(time_limit=--time-limit))``,
printing every round (patterns, objective, largest violation ν/β found, solve and search seconds). The gated
objective is ½‖Σ_i D_iX̃u_i − y‖² + βΣ_i‖u_i‖ of the gated model f(x) = Σ_i 1[x̃ᵀg_i ≥ 0]x̃ᵀu_i
(``ConvexFit.predict_gated``); a lower value on more patterns is a better gated model.
"""

from __future__ import annotations

import argparse
import time

import torch
from problems import breast_cancer, digits_binary, planted_problem

import cvxnn
from cvxnn import SearchOptions

PROBLEMS = {
    "breast": (breast_cancer, 1.0),
    "digits": (digits_binary, 1.0),
    "planted20": (lambda: planted_problem(2000, 20), 10.0),
    "planted50": (lambda: planted_problem(2000, 50), 10.0),
}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--problems", nargs="+", choices=sorted(PROBLEMS), default=["breast", "digits"])
    parser.add_argument("--sampled", type=int, nargs="*", default=[100, 500, 2000])
    parser.add_argument("--start", type=int, default=100)
    parser.add_argument("--time-limit", type=float, default=60.0)
    args = parser.parse_args()
    torch.set_num_threads(1)
    for name in args.problems:
        load, beta = PROBLEMS[name]
        X, y = load()
        print(f"== {name}: n = {X.shape[0]}, d = {X.shape[1]}, beta = {beta}", flush=True)
        cvxnn.fit(X[:50], y[:50], beta, patterns=5, formulation="gated")  # imports off the clock
        for P in args.sampled:
            start = time.perf_counter()
            res = cvxnn.fit(X, y, beta, patterns=P, formulation="gated")
            print(f"sampled P = {P}: objective {res.objective:.4f} (gap {res.relative_gap:.1e}, {res.solver}), "
                  f"{time.perf_counter() - start:.2f} s", flush=True)
        start = time.perf_counter()

        def show(log):
            print(f"  round {log.round}: {log.n_patterns} patterns, objective {log.objective:.4f}, max violation "
                  f"{log.max_violation:.3f}β, +{log.n_added}, solve {log.solve_time:.2f} s, search "
                  f"{log.search_time:.2f} s, elapsed {time.perf_counter() - start:.1f} s", flush=True)

        res = cvxnn.fit(X, y, beta, patterns=args.start, formulation="gated", callback=show,
                        search=SearchOptions(time_limit=args.time_limit, max_rounds=10_000))
        s = res.search
        print(f"search from {args.start} sampled patterns: objective {res.objective:.4f} on {len(res.patterns)} "
              f"patterns after {len(s.rounds)} rounds, stopped {s.stopped}, last max violation "
              f"{s.max_violation:.3f}β, {s.total_time:.1f} s", flush=True)


if __name__ == "__main__":
    main()
