"""The regularization path with a pattern search against independent searches and sampled patterns (issue 3,
items 3 and 6).

    PYTHONPATH=src OMP_NUM_THREADS=1 python benchmarks/bench_path.py [--problem NAME] [--betas B ...]
        [--start P] [--sampled P ...] [--rounds K] [--time-limit S] [--formulation relu|gated] [--nonconvex-steps K]

For one problem (:mod:`problems`: ``breast``, ``digits``, ``planted20``, ``planted50``; squared loss, float64,
tol 1e-6, solver "auto", one thread), on the β grid ``--betas`` (decreasing), each timed as one call:
(1) ``cvxnn.path`` on ``--sampled`` Gaussian patterns (seed 0), no search; (2) ``cvxnn.path(..., patterns=--start,
search=SearchOptions(max_rounds=--rounds, time_limit=--time-limit, nonconvex_steps=--nonconvex-steps))``, each β
searching from the previous β's list and solution; (3) ``cvxnn.fit(..., patterns=--start, search=...)`` at each β
on its own (the same options, from the same sampled list). Prints each β's objective, list size, network width
and seconds, then the totals. The objective is the convex program's value on the fit's list; a lower value is a
better network (Φ of the ReLU program has that NC). The sampled paths' seconds are their total spread evenly over
the β.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from bench_gated_search import PROBLEMS

import cvxnn
from cvxnn import SearchOptions


def show(name: str, betas: np.ndarray, fits: list, seconds: list[float]) -> None:
    for beta, f, s in zip(betas, fits, seconds):
        rounds = "" if f.search is None else f", {len(f.search.rounds)} rounds ({f.search.stopped})"
        print(f"  {name:28s} beta {beta:8.4g}: objective {f.objective:10.4f}, {len(f.patterns):5d} patterns, "
              f"{f.n_neurons:4d} neurons, {s:7.2f} s{rounds}", flush=True)
    print(f"  {name:28s} total {sum(seconds):.2f} s", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--problem", choices=sorted(PROBLEMS), default="breast")
    parser.add_argument("--betas", type=float, nargs="+", default=[8.0, 4.0, 2.0, 1.0, 0.5])
    parser.add_argument("--start", type=int, default=100)
    parser.add_argument("--sampled", type=int, nargs="*", default=[100, 1000])
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--time-limit", type=float, help="seconds per beta for each search (SearchOptions.time_limit)")
    parser.add_argument("--formulation", choices=("relu", "gated"), default="relu")
    parser.add_argument("--nonconvex-steps", type=int, default=SearchOptions.nonconvex_steps,
                        help="Adam steps of each search round's move (SearchOptions.nonconvex_steps; 0: none)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    load, _ = PROBLEMS[args.problem]
    X, y = load()
    betas = np.sort(np.asarray(args.betas))[::-1]
    form = args.formulation
    print(f"== {args.problem}: n = {X.shape[0]}, d = {X.shape[1]}, {form} program, betas {betas.tolist()}, "
          f"search from {args.start} sampled patterns, at most {args.rounds} rounds and {args.time_limit} s per beta, "
          f"{args.nonconvex_steps} Adam steps per move", flush=True)
    cvxnn.path(X[:50], y[:50], betas=[1.0], patterns=5, formulation=form, search=True)  # imports off the clock
    options = SearchOptions(max_rounds=args.rounds, time_limit=args.time_limit, nonconvex_steps=args.nonconvex_steps)
    for P in args.sampled:
        start = time.perf_counter()
        res = cvxnn.path(X, y, betas=betas, patterns=P, formulation=form)
        total = time.perf_counter() - start
        show(f"path, {P} sampled", res.betas, res.fits, [total / len(betas)] * len(betas))
    start = time.perf_counter()
    res = cvxnn.path(X, y, betas=betas, patterns=args.start, formulation=form, search=options)
    total = time.perf_counter() - start
    times = [f.search.total_time if f.search is not None else 0.0 for f in res.fits]
    print(f"  (path with search: beta_max {res.beta_max:.4f}, {total:.2f} s in all)", flush=True)
    show("path with search", res.betas, res.fits, times)
    fits, times = [], []
    for beta in betas:
        start = time.perf_counter()
        fits.append(cvxnn.fit(X, y, float(beta), patterns=args.start, formulation=form, search=options))
        times.append(time.perf_counter() - start)
    show("independent searches", betas, fits, times)


if __name__ == "__main__":
    main()
