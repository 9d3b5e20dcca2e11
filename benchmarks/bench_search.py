"""The race (issue 3): fit on the patterns of a short Adam run, against Adam and SGD run to the end.

    PYTHONPATH=src OMP_NUM_THREADS=1 python benchmarks/bench_search.py [--problem NAME] [--adam] [--sgd]
        [--seed-exact STEPS ...] [--seed-run LR SEED] [--solver NAME] [--tol G ...] [--target NC]
        [--no-search] [--time-limit S] [--epochs STEPS] [--restarts K] [--sampled P] [--nonconvex-steps K]
        [--loss squared|logistic] [--threads T]

Problems (:mod:`problems`, each with its ones column as the bias): ``breast`` (569 x 30, β = 1), ``digits``
(1797 x 64, digit < 5 against ≥ 5, β = 1), ``planted20`` / ``planted50`` (n = 2000 from a 5-neuron ReLU
teacher, d = 20 / 50, β = 10). NC = ½‖f(X) − y‖² + (β/2)Σ_j(‖u_j‖² + α_j²), width ``--width`` (100);
``--loss logistic`` (breast cancer and digits, ±1 targets) puts Σ_k log(1 + exp(−y_k f(x_k))) in place of the
squared loss for every run, solve and search.
Adam: learning rates 1e-3, 1e-2, 1e-1, seeds 0-2, full batch, 5000 steps. SGD: minibatches of 64, momentum
0.9, 500 epochs, learning rates (1e-5, 3e-5, 1e-4, 3e-4) · 569/n (its minibatch loss is scaled by n/64, so
the useful step shrinks like 1/n), seeds 0-2. For each run: the final NC and the time it needs to get within
1 % of it (every step's NC from a second, identical run; :func:`gradient_runs`). The target is the best final NC
of these runs (or ``--target``).
``--seed-exact STEPS ...``: the Adam run ``--seed-run`` (default: the best Adam run above) stopped after each
number of steps, then the exact ReLU program on that network's patterns (``fit(patterns=Ψ's patterns,
warm_start=Ψ(network), solver=--solver, tol=--tol)``, each tolerance from the same Adam run). The race: the
pipeline's total time (Adam's own clock plus Ψ and ``fit`` on one clock) for an NC at or below the target,
against the time the target's run needs to get within 1 % of its own final value.
Without ``--no-search``: ``fit`` with pattern search seeded by short Adam runs (``--epochs`` steps, ``--restarts``
runs from seeds 0, 1, …; ``--epochs 0``: none), from ``--sampled`` sampled patterns as well when given, with
``--nonconvex-steps`` Adam steps in each round's move (``SearchOptions.nonconvex_steps``).
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass

import numpy as np
import torch
from problems import breast_cancer, digits_binary, planted_problem

import cvxnn
from cvxnn import NonconvexInit, SearchOptions
from cvxnn.network import convex_from_network
from cvxnn.nonconvex import train_nonconvex

PROBLEMS = {
    "breast": (breast_cancer, 1.0),
    "digits": (digits_binary, 1.0),
    "planted20": (lambda: planted_problem(2000, 20), 10.0),
    "planted50": (lambda: planted_problem(2000, 50), 10.0),
}


@dataclass
class GradientRun:
    optimizer: str
    lr: float
    seed: int
    final: float
    within: float  # seconds to get within 1 % of final


def gradient_runs(X: np.ndarray, t: np.ndarray, beta: float, width: int, optimizer: str, loss: str
                  ) -> list[GradientRun]:
    """Adam (full batch, 5000 steps) or SGD (minibatches of 64, momentum 0.9, 500 epochs) over a learning-rate
    grid and three seeds: each run's final NC and the time it needs to get within 1 % of it.

    Each run is made twice from the same seed, so with the same iterates: once recording NC every 10 steps, for
    the clock (recording costs a float64 evaluation), and once recording every step. The final NC is the lowest
    over every step (what a full-batch run returns; for SGD, the best its records could hold), and the time is
    the first step at which the lowest NC so far is within 1 % of it, read on the first run's clock."""
    rates, kwargs = ((1e-3, 1e-2, 1e-1), {"epochs": 5000}) if optimizer == "adam" else \
        (tuple(r * 569 / len(X) for r in (1e-5, 3e-5, 1e-4, 3e-4)), {"epochs": 500, "batch_size": 64, "momentum": 0.9})
    runs = []
    for lr in rates:
        for seed in range(3):
            timed = train_nonconvex(X, t, beta, width, optimizer=optimizer, lr=lr, seed=seed, record_every=10,
                                    loss=loss, **kwargs)
            dense = train_nonconvex(X, t, beta, width, optimizer=optimizer, lr=lr, seed=seed, record_every=1,
                                    loss=loss, **kwargs)
            lowest = np.minimum.accumulate(dense.history.objectives)
            final = float(lowest[-1])
            step = dense.history.steps[int(np.argmax(lowest <= 1.01 * final))]
            within = float(np.interp(step, timed.history.steps, timed.history.times))
            runs.append(GradientRun(optimizer, lr, seed, final, within))
            print(f"{optimizer} lr={lr:.3g} seed={seed}: final NC {final:.4f} (returned {timed.final_objective:.4f}), "
                  f"{timed.wall_time:.2f} s, within 1% after {within:.2f} s (step {step})", flush=True)
    return runs


def seed_exact(X: np.ndarray, t: np.ndarray, beta: float, steps: list[int], width: int, lr: float, seed: int,
               solver: str, tols: list[float], target: float, target_time: float | None, loss: str) -> None:
    if steps:  # the first solve's set-up off the clock
        net = train_nonconvex(X, t, beta, width, lr=lr, epochs=10, seed=seed, loss=loss).network
        pats, v, w = convex_from_network(net, X)
        cvxnn.fit(X, t, beta, patterns=pats, solver=solver, tol=0.1, warm_start=(v, w), loss=loss)
    for k in steps:
        run = train_nonconvex(X, t, beta, width, lr=lr, epochs=k, seed=seed, record_every=10, loss=loss)
        for tol in tols:
            start = time.perf_counter()
            pats, v, w = convex_from_network(run.network, X)
            res = cvxnn.fit(X, t, beta, patterns=pats, solver=solver, tol=tol, warm_start=(v, w), loss=loss)
            solve = time.perf_counter() - start
            total = run.wall_time + solve
            race = "at or below" if res.network_objective <= target else "above"
            against = "" if target_time is None else \
                f" ({target_time / total:.2f}x the target run's {target_time:.2f} s)"
            print(f"adam lr={lr:g} seed={seed} stopped at {k} steps: NC {run.final_objective:.4f} "
                  f"({run.wall_time:.2f} s), {len(pats)} patterns; exact program on them ({res.solver}, tol {tol:g}, "
                  f"from Ψ(network)): NC {res.network_objective:.4f} (relative gap {res.relative_gap:.1e}, "
                  f"{res.n_iter} iterations {res.solve_time:.2f} s, fit {solve:.2f} s); total with Adam "
                  f"{total:.2f} s{against}, NC {race} the target {target:.4f}", flush=True)


def search_run(X: np.ndarray, t: np.ndarray, beta: float, time_limit: float, solver: str, epochs: int,
               width: int, restarts: int, loss: str, sampled: int | None, nonconvex_steps: int) -> None:
    start = time.perf_counter()

    def show(log):
        print(f"  round {log.round}: {log.n_patterns} patterns, objective {log.objective:.4f}, max violation "
              f"{log.max_violation:.3f}β, +{log.n_added}, solve {log.solve_time:.1f} s, search "
              f"{log.search_time:.1f} s ({log.n_projections} projections, {log.n_screened} screened), Adam move "
              f"{log.nonconvex_objective:.4f} (+{log.n_moved}, {log.nonconvex_time:.2f} s), "
              f"elapsed {time.perf_counter() - start:.1f} s", flush=True)

    seeds = NonconvexInit(epochs=epochs, width=width, restarts=restarts) if epochs else None
    res = cvxnn.fit(X, t, beta, patterns=sampled, solver=solver, init_nonconvex=seeds, loss=loss,
                    search=SearchOptions(time_limit=time_limit, nonconvex_steps=nonconvex_steps), callback=show)
    s = res.search
    seeded = "no Adam seed" if s.init_objective is None else \
        f"seed Adam NC {s.init_objective:.4f} ({s.init_time:.2f} s)"
    print(f"search: {seeded}; final NC {res.network_objective:.4f} "
          f"with {res.n_neurons} neurons, {len(res.patterns)} patterns, stopped {s.stopped}, max violation "
          f"{s.max_violation:.3f}β, {s.n_projections} projections, total {s.total_time:.1f} s", flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--problem", choices=sorted(PROBLEMS), default="breast")
    parser.add_argument("--adam", action="store_true")
    parser.add_argument("--sgd", action="store_true", help="also minibatch SGD with momentum (learning-rate grid)")
    parser.add_argument("--time-limit", type=float, default=300.0)
    parser.add_argument("--solver", default="auto")
    parser.add_argument("--epochs", type=int, default=300, help="Adam steps of the search's seed (0: no seed)")
    parser.add_argument("--sampled", type=int, help="sampled patterns in the search's first list")
    parser.add_argument("--nonconvex-steps", type=int, default=SearchOptions.nonconvex_steps,
                        help="Adam steps of the search's move after each round (0: none)")
    parser.add_argument("--restarts", type=int, default=1, help="Adam runs seeding the search (NonconvexInit)")
    parser.add_argument("--width", type=int, default=100)
    parser.add_argument("--seed-exact", type=int, nargs="*", default=[])
    parser.add_argument("--seed-run", type=float, nargs=2, metavar=("LR", "SEED"),
                        help="the Adam run the --seed-exact solves start from (default: the best Adam run above)")
    parser.add_argument("--no-search", action="store_true")
    parser.add_argument("--tol", type=float, nargs="+", default=[1e-6],
                        help="certified relative gaps of the --seed-exact solves (each from the same Adam run)")
    parser.add_argument("--target", type=float, help="the race's NC (default: the best Adam/SGD run above)")
    parser.add_argument("--loss", choices=("squared", "logistic"), default="squared")
    parser.add_argument("--threads", type=int, default=1, help="torch threads for every run, solve and search")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    load, beta = PROBLEMS[args.problem]
    X, t = load()
    if args.loss == "logistic" and args.problem.startswith("planted"):
        parser.error("--loss logistic needs ±1 targets: --problem breast or digits")
    train_nonconvex(X[:2], t[:2], beta, 1, epochs=1)  # the lazy imports of every run below, off their clocks
    runs = [r for name, on in (("adam", args.adam), ("sgd", args.sgd)) if on
            for r in gradient_runs(X, t, beta, args.width, name, args.loss)]
    best = min(runs, key=lambda r: r.final, default=None)
    if best is not None:
        print(f"best gradient run: {best.optimizer} lr={best.lr:.3g} seed={best.seed}, NC {best.final:.4f}, within 1% "
              f"after {best.within:.2f} s", flush=True)
    target = args.target if args.target is not None else (best.final if best else float("-inf"))
    adam = min((r for r in runs if r.optimizer == "adam"), key=lambda r: r.final, default=None)
    lr, seed = args.seed_run if args.seed_run else ((adam.lr, adam.seed) if adam else (1e-2, 2))
    seed_exact(X, t, beta, args.seed_exact, args.width, lr, int(seed), args.solver, args.tol, target,
               best.within if best is not None and args.target is None else None, args.loss)
    if not args.no_search:
        search_run(X, t, beta, args.time_limit, args.solver, args.epochs, args.width, args.restarts, args.loss,
                   args.sampled, args.nonconvex_steps)
