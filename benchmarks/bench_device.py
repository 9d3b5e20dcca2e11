"""``cvxnn.fit`` on an accelerator against the same call on the CPU, and against Adam on that accelerator: the GPU
timings of issue 3, up to n = 10⁶ samples.

    PYTHONPATH=src OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_device.py --device cuda \
        [--sizes 10000 100000 1000000] [--d 20] [--patterns 100] [--cpu-max 20000] [--out FILE]

For each n: the planted regression problem of ``problems.planted_problem`` (a 5-neuron teacher, d features,
β = 10), P Gaussian patterns (the same for every row), and

* the gated program by ``solver="fista"`` in float32 to a certified relative gap of 1e-4 and in float64 to 1e-6,
* the ReLU program by ``solver="ipm"`` (float64) to 1e-6 (its Pd x Pd system once n exceeds about Pd),
* 1000 full-batch Adam steps (lr 1e-2) on a network of width P in float32 (NC and seconds),

each on ``--device`` and, while n ≤ ``--cpu-max``, on the CPU as well, with the ratio. Every cvxnn time is a whole
``fit`` (solve, certificate, network); results come back as NumPy arrays, so the clock includes the device's
queue. The first call of each kind on a size is a warm-up off the clock (CUDA context, kernels' first use).
The operator's two products are timed against the device's dense matmul rate at the same flop count.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import torch

import cvxnn
from cvxnn.nonconvex import train_nonconvex
from cvxnn.operators import PatternOperator
from problems import planted_problem

BETA = 10.0


def synchronize(device: str) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


def timed(device: str, job):
    synchronize(device)
    start = time.perf_counter()
    out = job()
    synchronize(device)
    return time.perf_counter() - start, out


def jobs(X, y, pats):
    """name → a function of the device running one measured call, returning (objective, certified gap or None)."""
    def gated(dtype, tol):
        def run(device):
            f = cvxnn.fit(X, y, BETA, patterns=pats, formulation="gated", solver="fista", tol=tol, dtype=dtype,
                          device=device)
            return f.objective, f.relative_gap
        return run

    def relu(device):
        f = cvxnn.fit(X, y, BETA, patterns=pats, solver="ipm", tol=1e-6, device=device)
        return f.objective, f.relative_gap

    def adam(device):
        r = train_nonconvex(X, y, BETA, len(pats), lr=1e-2, epochs=1000, dtype=torch.float32, device=device,
                            record_every=1000)
        return r.final_objective, None

    return {"gated fista float32 1e-4": gated(torch.float32, 1e-4),
            "gated fista float64 1e-6": gated(torch.float64, 1e-6),
            "relu ipm 1e-6": relu, "adam 1000 steps float32": adam}


def operator_rate(X, pats, device: str, dtype: torch.dtype, reps: int = 5) -> dict:
    """Seconds of A(U) + Aᵀ(r) (4nPd flops) and of a dense (n x P)(P x d) product pair of the same count."""
    op = PatternOperator(X, pats.masks, dtype=dtype, device=device)
    U = torch.randn(op.P, op.d, dtype=dtype, device=device)
    r = torch.randn(op.n, dtype=dtype, device=device)
    A = torch.randn(op.n, op.P, dtype=dtype, device=device)
    B = torch.randn(op.P, op.d, dtype=dtype, device=device)

    def median(fn) -> float:
        fn()
        return sorted(timed(device, fn)[0] for _ in range(reps))[reps // 2]

    products = median(lambda: (op.matvec(U), op.rmatvec(r)))
    dense = median(lambda: (A @ B, A.T @ torch.randn(op.n, op.d, dtype=dtype, device=device)))
    return {"dtype": str(dtype)[6:], "products_s": products, "dense_s": dense, "fraction_of_dense": dense / products}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--d", type=int, default=20)
    parser.add_argument("--patterns", type=int, default=100)
    parser.add_argument("--cpu-max", type=int, default=20_000, help="largest n also run on the CPU")
    parser.add_argument("--skip", nargs="*", default=[], help="names of rows to leave out")
    parser.add_argument("--out", default="benchmarks/results_device.json")
    args = parser.parse_args()
    name = torch.cuda.get_device_name(torch.device(args.device)) if torch.device(args.device).type == "cuda" \
        else platform.processor() or platform.machine()
    rows = []
    for n in args.sizes:
        X, y = planted_problem(n, args.d)
        pats = cvxnn.sample_patterns(X, args.patterns, seed=0)
        devices = [args.device] + (["cpu"] if n <= args.cpu_max and args.device != "cpu" else [])
        for label, run in jobs(X, y, pats).items():
            if label in args.skip:
                continue
            row = {"n": n, "d": args.d, "P": len(pats), "job": label}
            for device in devices:
                small = planted_problem(min(n, 2000), args.d, seed=1)
                jobs(*small, cvxnn.sample_patterns(small[0], 10, seed=0))[label](device)  # warm-up
                seconds, (objective, gap) = timed(device, lambda: run(device))
                row[device] = {"seconds": seconds, "objective": objective, "relative_gap": gap}
            if len(devices) == 2:
                row["cpu_over_device"] = row["cpu"]["seconds"] / row[args.device]["seconds"]
            rows.append(row)
            shown = "  ".join(f"{dev}: {row[dev]['seconds']:8.2f} s, objective {row[dev]['objective']:.8g}"
                              for dev in devices)
            print(f"n={n:8d} {label:26s} {shown}" + (f"  ({row['cpu_over_device']:.1f}x)" if len(devices) == 2
                                                      else ""), flush=True)
        for dtype in (torch.float32, torch.float64):
            rate = operator_rate(X, pats, args.device, dtype)
            rows.append({"n": n, "d": args.d, "P": len(pats), "job": "operator products", args.device: rate})
            print(f"n={n:8d} operator products {rate['dtype']}: {rate['products_s'] * 1e3:.2f} ms, "
                  f"{rate['fraction_of_dense']:.2f} of the dense rate", flush=True)
    Path(args.out).write_text(json.dumps({"device": name, "torch": torch.__version__, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
