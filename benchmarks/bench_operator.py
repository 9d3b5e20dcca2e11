"""Throughput and memory of the pattern operator A(U) = Σ_i D_iXu_i and Aᵀ(r) = [XᵀD_ir]_i.

    PYTHONPATH=src .venv/bin/python benchmarks/bench_operator.py [--quick] [--sizes 2000x20x500 ...]
        [--dtypes float32 float64] [--threads 2] [--legacy] [--memory-run] [--out benchmarks/results_operator.json]

Each product costs 2·n·d·P flops. Its rate is compared, in the same run, with this machine's
dense matmul rate at the same flop count: (a) torch.mm of a dense n x P matrix by a P x d one
(the same shapes as the operator's inner product) and (b) a square m x m by m x m product with
m³ = n·d·P. Times are medians of ``--reps`` runs after one warm-up. ``--legacy`` also times the
products as computed before the 0/1-mask rewrite (X Uᵀ masked elementwise and summed; masks
scaled by r and multiplied by X), for comparison.

``--memory-run`` (in a child process, so its peak is its own): n = 100 000, d = 100, P = 1 000 in
float32 (sizes settable), a planted regression target, and a few FISTA iterations of the gated
program; reports seconds per iteration and the peak resident set size (ru_maxrss), which must
stay below 8 GiB. Inputs are built in float32 chunks so nothing n x P in float64 is ever formed.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

import torch

from cvxnn.operators import PatternOperator
from cvxnn.solvers.fista import solve_gated_fista

DTYPES = {"float32": torch.float32, "float64": torch.float64}


def peak_rss_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux reports KiB


def median_seconds(fn, reps: int) -> float:
    fn()
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2]


def dense_seconds(A: torch.Tensor, B: torch.Tensor, reps: int) -> float:
    return median_seconds(lambda: A @ B, reps)


def random_problem(n: int, d: int, P: int, dtype: torch.dtype, seed: int = 0, chunk: int = 20_000
                   ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """X ~ N(0, 1), masks 1[Xh_i ≥ 0] for Gaussian gates h_i, y from a 5-neuron ReLU teacher; built in chunks."""
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(n, d, generator=g, dtype=dtype)
    gates = torch.randn(d, P, generator=g, dtype=dtype)
    teacher = torch.randn(d, 5, generator=g, dtype=dtype)
    out_w = torch.randn(5, generator=g, dtype=dtype)
    masks = torch.empty(n, P, dtype=torch.bool)
    y = torch.empty(n, dtype=dtype)
    for s in range(0, n, chunk):
        masks[s:s + chunk] = X[s:s + chunk] @ gates >= 0
        y[s:s + chunk] = torch.relu(X[s:s + chunk] @ teacher) @ out_w
    return X, masks, y


def legacy_products(op: PatternOperator):
    """The products as computed before the rewrite (for comparison only)."""
    def matvec(U):
        out = torch.empty(op.n, dtype=op.dtype)
        for s in range(0, op.n, op.chunk_rows):
            sl = slice(s, min(op.n, s + op.chunk_rows))
            out[sl] = ((op.X[sl] @ U.T) * op.masks[sl]).sum(dim=1)
        return out

    def rmatvec(r):
        out = torch.zeros(op.P, op.d, dtype=op.dtype)
        for s in range(0, op.n, op.chunk_rows):
            sl = slice(s, min(op.n, s + op.chunk_rows))
            out += (op.masks[sl] * r[sl, None]).T @ op.X[sl]
        return out
    return matvec, rmatvec


def throughput(n: int, d: int, P: int, dtype_name: str, reps: int, legacy: bool) -> dict:
    dtype = DTYPES[dtype_name]
    X, masks, _ = random_problem(n, d, P, dtype)
    op = PatternOperator(X, masks, dtype=dtype)
    g = torch.Generator().manual_seed(1)
    U = torch.randn(P, d, generator=g, dtype=dtype)
    r = torch.randn(n, generator=g, dtype=dtype)
    flops = 2.0 * n * d * P
    row = {"n": n, "d": d, "P": P, "dtype": dtype_name, "flops_per_product": flops}
    row["matvec_s"] = median_seconds(lambda: op.matvec(U), reps)
    row["rmatvec_s"] = median_seconds(lambda: op.rmatvec(r), reps)
    row["mm_same_shape_s"] = dense_seconds(torch.randn(n, P, generator=g, dtype=dtype), U, reps)
    m = max(1, round((n * d * P) ** (1 / 3)))
    A, B = torch.randn(m, m, generator=g, dtype=dtype), torch.randn(m, m, generator=g, dtype=dtype)
    row["mm_square_s"] = median_seconds(lambda: A @ B, reps) * (n * d * P) / m**3
    if legacy:
        mv, rmv = legacy_products(op)
        row["legacy_matvec_s"] = median_seconds(lambda: mv(U), reps)
        row["legacy_rmatvec_s"] = median_seconds(lambda: rmv(r), reps)
    for key in [k for k in row if k.endswith("_s")]:
        row[key[:-2] + "_gflops"] = flops / row[key] / 1e9
    peak = max(row["mm_same_shape_gflops"], row["mm_square_gflops"])
    for prod in ("matvec", "rmatvec") + (("legacy_matvec", "legacy_rmatvec") if legacy else ()):
        row[f"{prod}_fraction_of_dense"] = row[f"{prod}_gflops"] / peak
    row["operator_bytes"] = op.X.element_size() * op.X.numel() + op.masks.numel() + (
        0 if op._mask_values is None else op._mask_values.element_size() * op._mask_values.numel())
    return row


def memory_run(n: int, d: int, P: int, iters: int) -> dict:
    """A few FISTA iterations at (n, d, P) in float32; peak RSS of this process."""
    base = peak_rss_bytes()
    start = time.perf_counter()
    X, masks, y = random_problem(n, d, P, torch.float32)
    op = PatternOperator(X, masks, dtype=torch.float32)
    setup = time.perf_counter() - start
    beta = 0.01 * float(op.rmatvec(y).norm(dim=1).max())
    start = time.perf_counter()
    out = solve_gated_fista(op, y, beta, tol=1e-6, max_iter=iters, gap_every=max(1, iters // 2))
    solve = time.perf_counter() - start
    return {"n": n, "d": d, "P": P, "dtype": "float32", "setup_s": setup, "iterations": out.n_iter,
            "solve_s": solve, "status": out.status, "relative_gap": out.info["relative_gap"],
            "rss_before_bytes": base, "peak_rss_bytes": peak_rss_bytes(),
            "peak_rss_gib": peak_rss_bytes() / 2**30, "below_8_gib": peak_rss_bytes() < 8 * 2**30}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="one small size, 3 repetitions, no memory run")
    parser.add_argument("--sizes", nargs="+", default=["2000x20x500", "2000x50x500", "569x31x500", "1797x65x500",
                                                       "20000x100x1000"], help="n x d x P")
    parser.add_argument("--dtypes", nargs="+", choices=list(DTYPES), default=list(DTYPES))
    parser.add_argument("--reps", type=int, default=7)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--legacy", action="store_true", help="also time the pre-rewrite products")
    parser.add_argument("--memory-run", action="store_true", help="also run the memory-bounded solve")
    parser.add_argument("--memory-size", default="100000x100x1000")
    parser.add_argument("--memory-iters", type=int, default=6)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results_operator.json"))
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.child:  # the memory-bounded run, alone in its process
        n, d, P = map(int, args.memory_size.split("x"))
        print(json.dumps(memory_run(n, d, P, args.memory_iters)))
        return
    if args.quick:
        args.sizes, args.reps, args.memory_run = ["2000x20x500"], 3, False
    rows = []
    for size in args.sizes:
        n, d, P = map(int, size.split("x"))
        for dt in args.dtypes:
            row = throughput(n, d, P, dt, args.reps, args.legacy)
            rows.append(row)
            print(f"{size:16s} {dt}: matvec {row['matvec_gflops']:6.1f} GF/s, rmatvec {row['rmatvec_gflops']:6.1f} "
                  f"GF/s; dense mm same shape {row['mm_same_shape_gflops']:6.1f}, square {row['mm_square_gflops']:6.1f}"
                  + (f"; legacy {row['legacy_matvec_gflops']:.1f} / {row['legacy_rmatvec_gflops']:.1f}"
                     if args.legacy else ""), flush=True)
    memory = None
    if args.memory_run:
        cmd = [sys.executable, __file__, "--child", "--memory-size", args.memory_size,
               "--memory-iters", str(args.memory_iters)] + (["--threads", str(args.threads)] if args.threads else [])
        done = subprocess.run(cmd, capture_output=True, text=True, check=True)
        memory = json.loads(done.stdout.strip().splitlines()[-1])
    meta = {"machine": platform.processor() or platform.machine(), "threads": torch.get_num_threads(),
            "torch": torch.__version__, "command": "python " + " ".join(sys.argv)}
    args.out.write_text(json.dumps({"meta": meta, "throughput": rows, "memory_run": memory}, indent=1))
    print("\n| n x d x P | dtype | A(U) GF/s | Aᵀ(r) GF/s | dense mm GF/s (same shape / square) "
          "| A(U) / dense | Aᵀ(r) / dense |" + (" legacy A(U) / dense | legacy Aᵀ(r) / dense |" if args.legacy else ""))
    print("|---|---|---|---|---|---|---|" + ("---|---|" if args.legacy else ""))
    for r in rows:
        line = (f"| {r['n']}x{r['d']}x{r['P']} | {r['dtype']} | {r['matvec_gflops']:.1f} | {r['rmatvec_gflops']:.1f} | "
                f"{r['mm_same_shape_gflops']:.1f} / {r['mm_square_gflops']:.1f} | "
                f"{100 * r['matvec_fraction_of_dense']:.0f} % | {100 * r['rmatvec_fraction_of_dense']:.0f} % |")
        if args.legacy:
            line += (f" {100 * r['legacy_matvec_fraction_of_dense']:.0f} % |"
                     f" {100 * r['legacy_rmatvec_fraction_of_dense']:.0f} % |")
        print(line)
    print("(dense = the faster of the two dense products, same flop count)")
    if memory is not None:
        print(f"\nmemory-bounded run {memory['n']}x{memory['d']}x{memory['P']} float32: "
              f"setup {memory['setup_s']:.1f} s, "
              f"{memory['iterations']} FISTA iterations in {memory['solve_s']:.1f} s, "
              f"peak RSS {memory['peak_rss_gib']:.2f} GiB (< 8 GiB: {memory['below_8_gib']})")


if __name__ == "__main__":
    main()
