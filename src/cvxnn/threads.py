"""Torch's intra-op thread count, set for one block of work.

Small per-step tensors (10⁴–10⁵ numbers) run many times slower with several threads on a loaded
2-core machine: the experiments and trainers that loop over such steps run them single-threaded.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import torch


@contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    """Run the block with ``n`` torch threads (None: leave the setting alone), then restore it."""
    if n is None:
        yield
        return
    previous = torch.get_num_threads()
    torch.set_num_threads(int(n))
    try:
        yield
    finally:
        torch.set_num_threads(previous)
