"""Multi-class digits: the convex cross-entropy program vs Adam on the same architecture and loss.

    python benchmarks/bench_digits.py [--n-train 500] [--patterns 8] [--beta 1.0]

Data: sklearn's load_digits, standardized on the training split, 25% held out (stratified).
Convex: cvxnn.fit(loss="cross_entropy", vector_penalty="per_output", bias=True) on sampled
patterns — exact for networks whose neurons each feed one class score (THEORY §1.7); the
reported gap is the *restricted* gap (sampled patterns), not a global certificate.
Adam: the same two-layer ReLU network (width = the convex network's, bias via a ones column)
trained on NC = CE(f(X)) + (β/2)(‖W1‖² + ‖W2‖²), full batch, float64. Its NC is reported with
the ℓ2 output penalty (its own objective) and with ‖α_j‖₁² (the convex program's class).
"""

from __future__ import annotations

import argparse
import json
import time

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
    args = ap.parse_args()
    torch.set_num_threads(1)
    X, y = load_digits(return_X_y=True)
    Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.25, random_state=args.seed, stratify=y)
    Xtr, ytr = Xtr[:args.n_train], ytr[:args.n_train]
    mean, std = Xtr.mean(0), Xtr.std(0)
    std[std == 0] = 1.0
    Xtr, Xte = (Xtr - mean) / std, (Xte - mean) / std

    t0 = time.perf_counter()
    f = cvxnn.fit(Xtr, ytr, args.beta, patterns=args.patterns, bias=True, loss="cross_entropy", seed=args.seed)
    t_convex = time.perf_counter() - t0
    acc = lambda net, X_, y_: float(np.mean(np.argmax(net.predict(X_), axis=1) == y_))  # noqa: E731
    rows = {"convex": dict(objective=f.network_objective, program_objective=f.objective,
                           restricted_lower_bound=f.lower_bound, restricted_relative_gap=f.relative_gap,
                           width=f.network.width, train_acc=acc(f.network, Xtr, ytr),
                           test_acc=acc(f.network, Xte, yte), time_s=t_convex, patterns=len(f.patterns))}
    for lr in (1e-3, 1e-2):
        t0 = time.perf_counter()
        net = adam(Xtr, ytr, args.beta, f.network.width, args.epochs, lr, args.seed)
        rows[f"adam_lr{lr:g}"] = dict(
            objective=net.objective(Xtr, ytr, args.beta, loss="cross_entropy"),
            objective_l1_output=net.objective(Xtr, ytr, args.beta, loss="cross_entropy", output_norm="l1"),
            width=net.width, train_acc=acc(net, Xtr, ytr), test_acc=acc(net, Xte, yte),
            time_s=time.perf_counter() - t0)
    print(json.dumps({"n_train": len(ytr), "n_test": len(yte), "beta": args.beta, "epochs": args.epochs,
                      "results": rows}, indent=2))


if __name__ == "__main__":
    main()
