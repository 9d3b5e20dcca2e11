"""The ipm on the 10-class cross-entropy ReLU program of digits: the Newton system through c per-class matrices and
the Schur complement S (``interior_point`` module docstring) against the joint (n(c − 1)) x (n(c − 1)) Woodbury
matrix it replaced, on the same program in one run.

    OMP_NUM_THREADS=1 python benchmarks/bench_softmax_ipm.py --sizes 400 1797 --patterns 30 50 \
        --joint-time-limit 300

Data: sklearn's digits (the first n of a fixed permutation), standardized, bias, β = n/1000 (alpha = 1e-3, the
estimators' default), sampled patterns (seed 0), tol 1e-6, float64, one torch thread. "joint" forces the previous
path by switching the system's Schur route off (the path the "group" penalty still takes); its solve is cut at
``--joint-time-limit`` seconds, so its time per iteration is what is compared.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from sklearn.datasets import load_digits

import cvxnn
from cvxnn.solvers import interior_point


def digits(n: int) -> tuple[np.ndarray, np.ndarray]:
    X, y = load_digits(return_X_y=True)
    idx = np.random.default_rng(0).permutation(len(y))[:n]
    X, y = X[idx], y[idx]
    std = X.std(0)
    return (X - X.mean(0)) / np.where(std > 0, std, 1.0), y


def solve(X: np.ndarray, y: np.ndarray, P: int, joint: bool, time_limit: float | None) -> dict:
    init = interior_point._System.__init__

    def joint_init(self, *args, **kwargs):
        init(self, *args, **kwargs)
        self.softmax = False

    interior_point._System.__init__ = joint_init if joint else init
    try:
        t = time.perf_counter()
        f = cvxnn.fit(X, y, beta=X.shape[0] * 1e-3, patterns=P, bias=True, loss="cross_entropy", solver="ipm",
                      tol=1e-6, time_limit=time_limit)
        elapsed = time.perf_counter() - t
    finally:
        interior_point._System.__init__ = init
    return dict(time=elapsed, iters=f.n_iter, status=f.status, objective=f.objective, gap=f.relative_gap)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", type=int, nargs="+", default=[400, 1797])
    ap.add_argument("--patterns", type=int, nargs="+", default=[30, 50])
    ap.add_argument("--joint-time-limit", type=float, default=300.0)
    args = ap.parse_args()
    torch.set_num_threads(1)
    print("| n | P | route | time | iterations | s / iteration | status | objective | gap |")
    print("|---|---|---|---|---|---|---|---|---|")
    for n, P in zip(args.sizes, args.patterns):
        X, y = digits(n)
        for joint in (False, True):
            r = solve(X, y, P, joint, args.joint_time_limit if joint else None)
            print(f"| {n} | {P} | {'joint K' if joint else 'Schur'} | {r['time']:.1f} s | {r['iters']} | "
                  f"{r['time'] / max(r['iters'], 1):.2f} | {r['status']} | {r['objective']:.8g} | {r['gap']:.1e} |",
                  flush=True)


if __name__ == "__main__":
    main()
