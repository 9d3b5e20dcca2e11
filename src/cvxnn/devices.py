"""The device a computation runs on, checked before any work: ``fit``, ``path``, ``train_nonconvex`` and the
estimators take ``device="cpu"`` (the default) or ``"cuda"`` / ``"cuda:<index>"``.

Every tensor the solvers create is placed on that device explicitly (``tests/test_device.py`` checks it on CPU
machines by making tensors without a device unusable). Apple's "mps" is not offered: the interior-point
methods and the certificates compute in float64, which it lacks.
"""

from __future__ import annotations

from typing import Any

import torch

DEVICE_TYPES = ("cpu", "cuda")


def compute_device(device: Any) -> torch.device:
    """``device`` ("cpu", "cuda", "cuda:<index>" or a torch.device) as a torch.device that PyTorch can use here;
    ValueError for any other value, or for CUDA where PyTorch sees no such CUDA device."""
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise ValueError(f"device must be 'cpu', 'cuda', 'cuda:<index>' or a torch.device, got {device!r}.") from None
    if dev.type not in DEVICE_TYPES:
        raise ValueError(f"device must be of a type in {DEVICE_TYPES}, got {device!r}.")
    if dev.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise ValueError(f"device {device!r} was requested, but PyTorch sees no CUDA device on this machine "
                             f"(torch {torch.__version__}, torch.cuda.is_available() is False): use device='cpu'.")
        if dev.index is not None and dev.index >= count:
            raise ValueError(f"device {device!r} was requested, but this machine has {count} CUDA device(s).")
    return dev


def free_memory_bytes(device: Any = None) -> int:
    """Free memory of ``device`` now: the GPU's (``torch.cuda.mem_get_info``) for a CUDA device, else the host's
    (:func:`cvxnn.data.available_memory_bytes`)."""
    if device is not None and torch.device(device).type == "cuda":
        return int(torch.cuda.mem_get_info(torch.device(device))[0])
    from .data import available_memory_bytes

    return available_memory_bytes()
