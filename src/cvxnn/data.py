"""Input validation, bundled datasets, CSV loading and memory estimates.

Every public entry point of cvxnn passes its arrays through :func:`as_matrix` and
:func:`as_targets`, so bad input fails early with a message that names the problem and
the fix, before anything is allocated or written.
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

BUNDLED_DATASETS = ("breast_cancer", "diabetes", "digits", "iris", "wine")


def _to_numpy(a: Any, name: str) -> np.ndarray:
    try:
        import torch

        if isinstance(a, torch.Tensor):
            return a.detach().cpu().numpy()
    except ImportError:  # pragma: no cover - torch is a hard dependency
        pass
    arr = np.asarray(a)
    if arr.dtype == object:
        raise TypeError(f"{name} contains non-numeric entries; convert it to a numeric array first.")
    return arr


def as_matrix(X: Any, name: str = "X") -> np.ndarray:
    """Return ``X`` as a finite float64 matrix of shape (n_samples, n_features)."""
    arr = _to_numpy(X, name)
    if arr.ndim == 1:
        raise ValueError(
            f"{name} must be 2-D (n_samples, n_features) but is 1-D with shape {arr.shape}; "
            f"use {name}.reshape(-1, 1) for a single feature or {name}.reshape(1, -1) for a single sample."
        )
    if arr.ndim != 2:
        raise ValueError(f"{name} must be 2-D (n_samples, n_features) but has shape {arr.shape}.")
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ValueError(f"{name} is empty (shape {arr.shape}); at least one sample and one feature are needed.")
    if not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
        raise TypeError(f"{name} must be numeric but has dtype {arr.dtype}.")
    if np.iscomplexobj(arr):
        raise TypeError(f"{name} must be real-valued but is complex.")
    arr = arr.astype(np.float64)
    _check_finite(arr, name)
    return arr


def as_targets(y: Any, n_samples: int, name: str = "y") -> np.ndarray:
    """Return regression targets as a finite float64 vector of length ``n_samples``."""
    arr = _to_numpy(y, name)
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim != 1:
        raise ValueError(
            f"{name} must be 1-D with one target per sample but has shape {arr.shape}; "
            "for c outputs pass an (n, c) array to cvxnn.fit (each column is validated like this)."
        )
    if arr.shape[0] != n_samples:
        raise ValueError(
            f"X and {name} disagree: X has {n_samples} samples but {name} has {arr.shape[0]}; "
            "they must have the same number of rows."
        )
    if not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
        raise TypeError(
            f"{name} must be numeric for regression but has dtype {arr.dtype}; "
            "use ConvexReLUClassifier for class labels."
        )
    arr = arr.astype(np.float64)
    _check_finite(arr, name)
    return arr


def _check_finite(arr: np.ndarray, name: str) -> None:
    bad = ~np.isfinite(arr)
    if bad.any():
        idx = np.argwhere(bad)[0]
        kind = "NaN" if np.isnan(arr[tuple(idx)]) else "inf"
        raise ValueError(
            f"{name} contains {int(bad.sum())} non-finite value(s) ({kind} at index {tuple(int(i) for i in idx)}); "
            "remove or impute them before fitting."
        )


def add_bias(X: np.ndarray) -> np.ndarray:
    """Append a ones column: a neuron's bias becomes its last weight (THEORY §0)."""
    return np.hstack([X, np.ones((X.shape[0], 1), dtype=X.dtype)])


# --------------------------------------------------------------------------- memory


def available_memory_bytes() -> int:
    """Physical memory available now (Linux ``MemAvailable``; a conservative 4 GiB elsewhere)."""
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 4 * 2**30


def memory_allowed(device: Any = None) -> float:
    """Bytes one request may take: half the free memory of ``device``, the torch device that will hold it (host
    memory for None or the CPU, the GPU's own free memory for CUDA)."""
    from .devices import free_memory_bytes

    return 0.5 * free_memory_bytes(device)


def fits_memory(n_bytes: float, device: Any = None) -> bool:
    """Whether ``n_bytes`` fit in :func:`memory_allowed` of ``device``."""
    return n_bytes <= memory_allowed(device)


def check_memory(n_bytes: float, what: str, fix: str, limit: float | None = None, device: Any = None) -> None:
    """Refuse a request whose estimated size exceeds ``limit`` (default: :func:`memory_allowed` of ``device``)."""
    limit = memory_allowed(device) if limit is None else limit
    if n_bytes > limit:
        where = "" if device is None or str(device) == "cpu" else f" on {device}"
        raise MemoryError(f"{what} would need about {n_bytes / 2**30:.2f} GiB, more than the {limit / 2**30:.2f} GiB "
                          f"allowed{where}; {fix}")


# --------------------------------------------------------------------------- datasets


@dataclass(frozen=True)
class Dataset:
    """A table of features and targets with its column names."""

    X: np.ndarray
    y: np.ndarray
    feature_names: list[str]
    target_name: str
    task: str  # "regression" or "classification"


def load_bundled(name: str) -> Dataset:
    """One of scikit-learn's bundled datasets (no download): breast_cancer, diabetes, digits, iris, wine."""
    from sklearn import datasets

    if name not in BUNDLED_DATASETS:
        raise ValueError(f"unknown dataset {name!r}; choose one of {', '.join(BUNDLED_DATASETS)}.")
    bunch = getattr(datasets, f"load_{name}")()
    task = "regression" if name == "diabetes" else "classification"
    names = [str(f) for f in getattr(bunch, "feature_names", [f"x{i}" for i in range(bunch.data.shape[1])])]
    return Dataset(np.asarray(bunch.data, float), np.asarray(bunch.target), names, "target", task)


def load_csv(path: str | os.PathLike, target: str) -> Dataset:
    """Read a CSV file with a header row; every column must be numeric except possibly ``target``.

    The task is classification when the target column is non-numeric or holds at most
    ten distinct integer values, regression otherwise.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"cannot read {str(path)!r}: no such file.")
    try:
        with path.open(newline="") as fh:
            rows = list(csv.reader(fh))
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"cannot read {str(path)!r} as a CSV text file: {exc}") from exc
    if not rows or not any(cell.strip() for cell in rows[0]):
        raise ValueError(f"{str(path)!r} is empty; expected a header row and at least one data row.")
    header = [h.strip() for h in rows[0]]
    body = [r for r in rows[1:] if any(cell.strip() for cell in r)]
    if not body:
        raise ValueError(f"{str(path)!r} has a header but no data rows.")
    if target not in header:
        raise ValueError(
            f"target column {target!r} is not in {str(path)!r}; its columns are: {', '.join(header)}."
        )
    for i, r in enumerate(body, start=2):
        if len(r) != len(header):
            raise ValueError(f"{str(path)!r} line {i} has {len(r)} fields but the header has {len(header)}.")
    t = header.index(target)
    feature_names = [h for j, h in enumerate(header) if j != t]
    if not feature_names:
        raise ValueError(f"{str(path)!r} has only the target column; at least one feature column is needed.")
    X = np.empty((len(body), len(feature_names)))
    for j_out, j in enumerate(k for k in range(len(header)) if k != t):
        for i, r in enumerate(body):
            try:
                X[i, j_out] = float(r[j])
            except ValueError:
                raise ValueError(
                    f"column {header[j]!r} of {str(path)!r} is not numeric (line {i + 2}: {r[j]!r}); "
                    "encode it numerically or drop it."
                ) from None
    raw_target = [r[t].strip() for r in body]
    try:
        y: np.ndarray = np.array([float(v) for v in raw_target])
        integral = np.all(np.isfinite(y)) and np.all(y == np.round(y))
        task = "classification" if integral and len(np.unique(y)) <= 10 else "regression"
    except ValueError:
        y = np.array(raw_target)
        task = "classification"
    as_matrix(X, f"the features of {path.name}")
    return Dataset(X, y, feature_names, target, task)
