"""Breast cancer: fit with pattern search (seeded by a short Adam run) against Adam (issue 3).

    PYTHONPATH=src OMP_NUM_THREADS=1 python benchmarks/bench_search.py [--adam] [--sgd] [--time-limit S]
                                                                     [--solver NAME] [--seed-exact STEPS ...]
                                                                     [--no-search] [--tol G ...] [--target NC]

Data: scikit-learn's breast cancer (569 x 30), standardized, ones column (bias), targets ±1, β = 1,
NC = ½‖f(X) − y‖² + (β/2)Σ_j(‖u_j‖² + α_j²). Adam: learning rates 1e-3, 1e-2, 1e-1, seeds 0-2, full
batch, 5000 steps; SGD: learning rates 1e-5, 3e-5, 1e-4, 3e-4, seeds 0-2, minibatches of 64, momentum 0.9,
500 epochs; for each run the final NC and the time it needs to get within 1 % of it.
``--seed-exact STEPS ...``: for Adam (lr 1e-2, seed 2, the best run) stopped after each number of steps, the
exact ReLU program on that network's patterns (``fit(patterns=Ψ's patterns, warm_start=Ψ(network),
solver=--solver, tol=--tol)``, each tolerance from the same Adam run): how good a seed of that length can
get without any search, and what the solve costs. The race (issue target): the pipeline's total time, Adam's
own clock plus Ψ and ``fit`` on one clock, for a network with NC at or below ``--target`` (Adam's best run).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from sklearn.datasets import load_breast_cancer

import cvxnn
from cvxnn import NonconvexInit, SearchOptions
from cvxnn.network import convex_from_network
from cvxnn.nonconvex import train_nonconvex


def data() -> tuple[np.ndarray, np.ndarray]:
    X, y = load_breast_cancer(return_X_y=True)
    return (X - X.mean(0)) / X.std(0), np.where(y == 1, 1.0, -1.0)


def gradient_runs(X: np.ndarray, t: np.ndarray, width: int, optimizer: str) -> None:
    """Adam (full batch, 5000 steps) or SGD (minibatches of 64, momentum 0.9, 500 epochs = 4500 steps) over a
    learning-rate grid and three seeds: each run's final NC and the time it needs to get within 1 % of it."""
    train_nonconvex(X[:2], t[:2], 1.0, 1, epochs=1)  # lazy imports off the clock
    rates, kwargs = ((1e-3, 1e-2, 1e-1), {"epochs": 5000}) if optimizer == "adam" else \
        ((1e-5, 3e-5, 1e-4, 3e-4), {"epochs": 500, "batch_size": 64, "momentum": 0.9})
    for lr in rates:
        for seed in range(3):
            r = train_nonconvex(X, t, 1.0, width, optimizer=optimizer, lr=lr, seed=seed, bias=True, record_every=10,
                                **kwargs)
            obj, times = np.array(r.history.objectives), np.array(r.history.times)
            within = times[np.argmax(obj <= 1.01 * r.final_objective)]
            print(f"{optimizer} lr={lr:g} seed={seed}: final NC {r.final_objective:.4f}, {r.wall_time:.2f} s, "
                  f"within 1% after {within:.2f} s", flush=True)


def seed_exact(X: np.ndarray, t: np.ndarray, steps: list[int], width: int, solver: str, tols: list[float],
               target: float) -> None:
    if steps:  # lazy imports and the first solve's set-up off the clock
        train_nonconvex(X[:2], t[:2], 1.0, 1, epochs=1)
        net = train_nonconvex(X, t, 1.0, width, lr=1e-2, epochs=10, seed=2, bias=True).network
        pats, v, w = convex_from_network(net, X)
        cvxnn.fit(X, t, 1.0, bias=True, patterns=pats, solver=solver, tol=0.1, warm_start=(v, w))
    for k in steps:
        run = train_nonconvex(X, t, 1.0, width, lr=1e-2, epochs=k, seed=2, bias=True, record_every=10)
        for tol in tols:
            start = time.perf_counter()
            pats, v, w = convex_from_network(run.network, X)
            res = cvxnn.fit(X, t, 1.0, bias=True, patterns=pats, solver=solver, tol=tol, warm_start=(v, w))
            solve = time.perf_counter() - start
            total = run.wall_time + solve
            race = "at or below" if res.network_objective <= target else "above"
            print(f"adam lr=0.01 seed=2 stopped at {k} steps: NC {run.final_objective:.4f} ({run.wall_time:.2f} s), "
                  f"{len(pats)} patterns; exact program on them ({res.solver}, tol {tol:g}, from Ψ(network)): NC "
                  f"{res.network_objective:.4f} (relative gap {res.relative_gap:.1e}, {res.n_iter} iterations "
                  f"{res.solve_time:.2f} s, fit {solve:.2f} s); total with Adam {total:.2f} s, NC {race} the target "
                  f"{target:g}", flush=True)


def search_run(X: np.ndarray, t: np.ndarray, time_limit: float, solver: str, epochs: int, width: int) -> None:
    start = time.perf_counter()

    def show(log):
        print(f"  round {log.round}: {log.n_patterns} patterns, objective {log.objective:.4f}, max violation "
              f"{log.max_violation:.3f}β, +{log.n_added}, solve {log.solve_time:.1f} s, search "
              f"{log.search_time:.1f} s ({log.n_projections} projections, {log.n_screened} screened), "
              f"elapsed {time.perf_counter() - start:.1f} s", flush=True)

    res = cvxnn.fit(X, t, 1.0, bias=True, solver=solver, init_nonconvex=NonconvexInit(epochs=epochs, width=width),
                    search=SearchOptions(time_limit=time_limit), callback=show)
    s = res.search
    print(f"search: seed Adam NC {s.init_objective:.4f} ({s.init_time:.2f} s); final NC {res.network_objective:.4f} "
          f"with {res.n_neurons} neurons, {len(res.patterns)} patterns, stopped {s.stopped}, max violation "
          f"{s.max_violation:.3f}β, {s.n_projections} projections, total {s.total_time:.1f} s", flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--adam", action="store_true")
    parser.add_argument("--sgd", action="store_true", help="also minibatch SGD with momentum (learning-rate grid)")
    parser.add_argument("--time-limit", type=float, default=300.0)
    parser.add_argument("--solver", default="auto")
    parser.add_argument("--epochs", type=int, default=300)
    parser.add_argument("--width", type=int, default=100)
    parser.add_argument("--seed-exact", type=int, nargs="*", default=[])
    parser.add_argument("--no-search", action="store_true")
    parser.add_argument("--tol", type=float, nargs="+", default=[1e-6],
                        help="certified relative gaps of the --seed-exact solves (each from the same Adam run)")
    parser.add_argument("--target", type=float, default=11.5917, help="the race's NC (Adam's best run)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    X, t = data()
    for optimizer in [name for name, on in (("adam", args.adam), ("sgd", args.sgd)) if on]:
        gradient_runs(X, t, args.width, optimizer)
    seed_exact(X, t, args.seed_exact, args.width, args.solver, args.tol, args.target)
    if not args.no_search:
        search_run(X, t, args.time_limit, args.solver, args.epochs, args.width)
