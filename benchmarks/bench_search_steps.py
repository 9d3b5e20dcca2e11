"""What each change to the pattern search's ascent buys, at one dual point of a real pattern search.

    PYTHONPATH=src OMP_NUM_THREADS=1 python benchmarks/bench_search_steps.py [--problem digits] [--steps 1500]

The dual point, as in the first round of ``fit`` with pattern search (``bench_search.py --problem P --solver ipm
--epochs 1500``): Adam for ``--steps`` steps (lr 1e-2, seed 0, width 100; the best of every 10th iterate, where the
search's seed keeps the best of every 75th), the exact ReLU program on its patterns by ipm from Ψ(network),
λ = y − ŷ. At that λ, ``search_violations`` runs as the search's round does (its starts: the
fit's neurons and gates, 1000 Gaussian directions screened, at most 40 violated local maxima: a round's limit
until the twelfth session, now ``max_add`` = 20), under four
settings, each adding one change to the previous:

1. the settings before the tenth session: 10 exact ascents from Gaussian starts (both signs), 10 batched ascent
   steps of constant length, cold DAQP projections;
2. no exact random starts (``SearchOptions.n_random`` = 0);
3. 30 batched steps of length 1/(1 + k/3) (``screen_steps``, ``SCREEN_STEP_DECAY``);
4. each neighbour's projection warm-started from the rows binding at the current maximizer (the default).

Each row: seconds, exact cone projections, exact ascent steps, and the 1st / 20th / 40th largest violated
local maxima (÷β). The neighbour points are formed in one product per step in every row (the old loop over faces
is gone).
"""

from __future__ import annotations

import argparse
import math
import time
from unittest import mock

import torch
from bench_search import PROBLEMS

import cvxnn
from cvxnn import pattern_search
from cvxnn.duality import cone_sigma
from cvxnn.network import convex_from_network, convex_prediction
from cvxnn.nonconvex import train_nonconvex
from cvxnn.pattern_search import _round_starts, search_violations


def cold_cone_sigma(Xt, mask, c, rtol=1e-7, active=None):
    """duality.cone_sigma without its warm start."""
    return cone_sigma(Xt, mask, c, rtol)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--problem", choices=sorted(PROBLEMS), default="digits")
    parser.add_argument("--steps", type=int, default=1500)
    args = parser.parse_args()
    torch.set_num_threads(1)
    load, beta = PROBLEMS[args.problem]
    X, t = load()
    net = train_nonconvex(X, t, beta, 100, lr=1e-2, epochs=args.steps, seed=0).network
    pats, v, w = convex_from_network(net, X)
    res = cvxnn.fit(X, t, beta, patterns=pats, solver="ipm", warm_start=(v, w))
    lam = t - convex_prediction(X, res.patterns.masks, res.v, res.w)
    print(f"{args.problem}: Adam {args.steps} steps, ipm on its {len(pats)} patterns: objective "
          f"{res.objective:.4f} (gap {res.relative_gap:.1e}); the search at λ = y − ŷ", flush=True)
    settings = [("before", 10, 10, math.inf, True), ("no exact random starts", 0, 10, math.inf, True),
                ("30 shrinking batched steps", 0, 30, 3.0, True), ("DAQP warm starts (default)", 0, 30, 3.0, False)]
    for label, n_random, screen_steps, decay, cold in settings:
        with mock.patch.object(pattern_search, "SCREEN_STEP_DECAY", decay), \
                mock.patch.object(pattern_search, "cone_sigma", cold_cone_sigma if cold else cone_sigma):
            start = time.perf_counter()
            found = search_violations(X, lam, beta, n_random=n_random, seed=0, screened_starts=_round_starts(res, pats),
                                      n_screen=1000, screen_steps=screen_steps, stop_after=40, viol_rtol=1e-6,
                                      first_improvement=True)
            seconds = time.perf_counter() - start
        maxima = found.values[found.violating(1e-6, local_maxima_only=True)] / beta
        ranks = ", ".join(f"{maxima[k - 1]:.3f}" if maxima.size >= k else "-" for k in (1, 20, 40))
        print(f"  {label:28s} {seconds:6.2f} s, {found.n_projections:5d} projections, {found.n_iter:5d} ascent steps, "
              f"violated local maxima 1st / 20th / 40th: {ranks}", flush=True)


if __name__ == "__main__":
    main()
