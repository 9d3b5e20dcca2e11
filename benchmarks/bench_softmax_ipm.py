"""The ipm on the 10-class cross-entropy ReLU program of digits: the Newton system through c per-class matrices and
the Schur complement S (``interior_point`` module docstring).

    OMP_NUM_THREADS=1 python benchmarks/bench_softmax_ipm.py --sizes 400 1797 --patterns 30 50 \
        [--loss cross_entropy|squared] [--vector-penalty per_output|group]

Data: sklearn's digits (the first n of a fixed permutation), standardized, bias, β = n/1000 (alpha = 1e-3, the
estimators' default), sampled patterns (seed 0), tol 1e-6, float64, one torch thread. The "joint K" rows of
``softmax_ipm.txt`` (the (n(c − 1)) x (n(c − 1)) Woodbury matrix S replaced, cut at ``--joint-time-limit``
seconds) come from this script at commit 6ed5792, which could still force that route; the route is gone since.
``--loss squared`` fits the one-hot targets; ``--vector-penalty group`` the Frobenius groups (their rank-one terms
through a capacitance). The script only calls ``cvxnn.fit``, so ``PYTHONPATH=<an older checkout>/src`` times that
checkout on the same programs.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from sklearn.datasets import load_digits

import cvxnn


def digits(n: int) -> tuple[np.ndarray, np.ndarray]:
    X, y = load_digits(return_X_y=True)
    idx = np.random.default_rng(0).permutation(len(y))[:n]
    X, y = X[idx], y[idx]
    std = X.std(0)
    return (X - X.mean(0)) / np.where(std > 0, std, 1.0), y


def solve(X: np.ndarray, y: np.ndarray, P: int, loss: str, vector_penalty: str) -> dict:
    targets = y if loss == "cross_entropy" else np.eye(10)[y]
    t = time.perf_counter()
    f = cvxnn.fit(X, targets, beta=X.shape[0] * 1e-3, patterns=P, bias=True, loss=loss, solver="ipm", tol=1e-6,
                  vector_penalty=vector_penalty)
    elapsed = time.perf_counter() - t
    return dict(time=elapsed, iters=f.n_iter, status=f.status, objective=f.objective, gap=f.relative_gap)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", type=int, nargs="+", default=[400, 1797])
    ap.add_argument("--patterns", type=int, nargs="+", default=[30, 50])
    ap.add_argument("--loss", choices=("cross_entropy", "squared"), default="cross_entropy")
    ap.add_argument("--vector-penalty", choices=("per_output", "group"), default="per_output")
    args = ap.parse_args()
    torch.set_num_threads(1)
    print("| n | P | program | time | iterations | s / iteration | status | objective | gap |")
    print("|---|---|---|---|---|---|---|---|---|")
    for n, P in zip(args.sizes, args.patterns):
        X, y = digits(n)
        r = solve(X, y, P, args.loss, args.vector_penalty)
        print(f"| {n} | {P} | {args.loss}, {args.vector_penalty} | {r['time']:.1f} s | {r['iters']} | "
              f"{r['time'] / max(r['iters'], 1):.2f} | {r['status']} | {r['objective']:.8g} | {r['gap']:.1e} |",
              flush=True)


if __name__ == "__main__":
    main()
