import os

import numpy as np
import pytest

os.environ.setdefault("MPLBACKEND", "Agg")

# THEORY.md §8.2a: 8 sorted U(-2, 2) draws (default_rng(1)), y = sin 2x + 0.1 N(0, 1).
THEORY_X = np.array([-1.42336155, -0.75267419, -0.36320345, -0.30669420, 0.04728650, 1.31081038, 1.79459779,
                     1.80185479])
THEORY_Y = np.array([-0.25415780, -0.96844580, -0.66134563, -0.52097017, 0.02078667, 0.48056476, -0.48101778,
                     -0.38595936])
THEORY_OPT = 0.3238123  # q* with bias, beta = 0.05, all 16 patterns


@pytest.fixture
def theory_problem():
    return THEORY_X[:, None].copy(), THEORY_Y.copy(), 0.05


@pytest.fixture
def small_problem():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((14, 3))
    y = rng.standard_normal(14)
    return X, y, 0.1
