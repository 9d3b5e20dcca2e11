"""Experiments on the theory of gradient descent for two-layer ReLU networks (THEORY.md §5, §7, §8).

Each module exposes a small library API plus ``reproduce(out_dir, quick=False, seed=0) -> dict``,
which runs one experiment, writes its figures into ``out_dir`` and returns a report section.
"""
