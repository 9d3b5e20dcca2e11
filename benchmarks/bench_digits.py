"""Multi-class digits: the convex cross-entropy program vs Adam on the same architecture and loss.

    python benchmarks/bench_digits.py [--n-train 500] [--patterns 8] [--beta 1.0]
    python benchmarks/bench_digits.py --formulation gated --solver fista --patterns 300 \
        [--adam-widths 0 70] [--append benchmarks/digits_results.json]

Data: sklearn's load_digits, standardized on the training split, 25% held out (stratified).
Convex: cvxnn.fit(loss="cross_entropy", vector_penalty="per_output", bias=True) on sampled
patterns — exact for networks whose neurons each feed one class score (THEORY §1.7); the
reported gap is the *restricted* gap (sampled patterns), not a global certificate.
``--formulation gated``: the gated relaxation (no cone constraints; with ``--solver fista``, FISTA +
Newton); its ReLU network comes from the cone decomposition of every column, so its objective
(reported as ``objective``) is at least the program's. The gated model itself is also scored on the
test split, with the sampled gates deciding each pattern: D_i(x) = 1[x̃ᵀg_i ≥ 0]
(``ConvexFit.predict_gated``).
Adam: the same two-layer ReLU network (width = the convex network's, or each of ``--adam-widths``
with 0 standing for it; bias via a ones column)
trained on NC = CE(f(X)) + (β/2)(‖W1‖² + ‖W2‖²), full batch, float64. Its NC is reported with
the ℓ2 output penalty (its own objective) and with ‖α_j‖₁² (the convex program's class).
"""

from __future__ import annotations

import argparse
import datetime
import itertools
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

import cvxnn
from cvxnn.data import add_bias
from cvxnn.losses import CROSS_ENTROPY
from cvxnn.network import TwoLayerNet


def adam(X, y, beta, width, epochs, lr, seed):
    Y = torch.as_tensor(CROSS_ENTROPY.targets(y, X.shape[0]))
    Xt = torch.as_tensor(add_bias(X))
    g = torch.Generator().manual_seed(seed)
    W1 = (torch.randn(width, Xt.shape[1], generator=g, dtype=torch.float64) / np.sqrt(Xt.shape[1])).requires_grad_()
    W2 = (torch.randn(width, Y.shape[1], generator=g, dtype=torch.float64) / np.sqrt(width)).requires_grad_()
    opt = torch.optim.Adam([W1, W2], lr=lr)
    for _ in range(epochs):
        opt.zero_grad()
        nc = CROSS_ENTROPY.torch(torch.relu(Xt @ W1.T) @ W2, Y) + 0.5 * beta * (W1.pow(2).sum() + W2.pow(2).sum())
        nc.backward()
        opt.step()
    return TwoLayerNet(W1.detach().numpy(), W2.detach().numpy(), bias=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n-train", type=int, default=500)
    ap.add_argument("--patterns", type=int, default=8)
    ap.add_argument("--beta", type=float, default=1.0)
    ap.add_argument("--epochs", type=int, default=3000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--formulation", choices=("relu", "gated"), default="relu")
    ap.add_argument("--solver", choices=("auto", "reference", "fista", "ipm", "al"), default="auto")
    ap.add_argument("--vector-penalty", choices=("per_output", "group"), default="per_output")
    ap.add_argument("--tol", type=float, default=1e-6)
    ap.add_argument("--adam-widths", type=int, nargs="+", default=[0], help="0: the convex network's width")
    ap.add_argument("--append", help="also append this run (with its command and date) to this JSON file's runs")
    args = ap.parse_args()
    torch.set_num_threads(1)
    X, y = load_digits(return_X_y=True)
    Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.25, random_state=args.seed, stratify=y)
    Xtr, ytr = Xtr[:args.n_train], ytr[:args.n_train]
    mean, std = Xtr.mean(0), Xtr.std(0)
    std[std == 0] = 1.0
    Xtr, Xte = (Xtr - mean) / std, (Xte - mean) / std

    t0 = time.perf_counter()
    f = cvxnn.fit(Xtr, ytr, args.beta, patterns=args.patterns, bias=True, loss="cross_entropy", seed=args.seed,
                  formulation=args.formulation, solver=args.solver, vector_penalty=args.vector_penalty, tol=args.tol)
    t_convex = time.perf_counter() - t0
    acc = lambda net, X_, y_: float(np.mean(np.argmax(net.predict(X_), axis=1) == y_))  # noqa: E731
    rows = {"convex": dict(objective=f.network_objective, program_objective=f.objective,
                           restricted_lower_bound=f.lower_bound, restricted_relative_gap=f.relative_gap,
                           width=f.network.width, train_acc=acc(f.network, Xtr, ytr),
                           test_acc=acc(f.network, Xte, yte), time_s=t_convex, patterns=len(f.patterns),
                           formulation=f.formulation, solver=f.solver, vector_penalty=f.vector_penalty,
                           status=f.status, n_iter=f.n_iter)}
    if f.formulation == "gated":
        gated_acc = lambda X_, y_: float(np.mean(np.argmax(f.predict_gated(X_), axis=1) == y_))  # noqa: E731
        rows["convex"].update(gated_train_acc=gated_acc(Xtr, ytr), gated_test_acc=gated_acc(Xte, yte),
                              nonzero_blocks=int(np.count_nonzero(np.abs(f.v).reshape(len(f.patterns), -1).max(1))),
                              nonzero_columns=int(np.count_nonzero(np.linalg.norm(f.v, axis=1))))
    for width, lr in itertools.product([w or f.network.width for w in args.adam_widths], (1e-3, 1e-2)):
        t0 = time.perf_counter()
        net = adam(Xtr, ytr, args.beta, width, args.epochs, lr, args.seed)
        rows[f"adam_w{width}_lr{lr:g}"] = dict(
            objective=net.objective(Xtr, ytr, args.beta, loss="cross_entropy"),
            objective_l1_output=net.objective(Xtr, ytr, args.beta, loss="cross_entropy", output_norm="l1"),
            width=net.width, train_acc=acc(net, Xtr, ytr), test_acc=acc(net, Xte, yte),
            time_s=time.perf_counter() - t0)
    run = {"command": "python " + " ".join(sys.argv), "date": datetime.date.today().isoformat(),
           "n_train": len(ytr), "n_test": len(yte), "beta": args.beta, "epochs": args.epochs, "results": rows}
    print(json.dumps(run, indent=2))
    if args.append:
        path = Path(args.append)
        runs = json.loads(path.read_text())["runs"] if path.exists() else []
        path.write_text(json.dumps({"runs": runs + [run]}, indent=2) + "\n")


if __name__ == "__main__":
    main()
