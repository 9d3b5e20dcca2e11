"""Every tensor the solvers create is placed on the computation's device, so ``device="cuda"`` never mixes devices.

On a GPU, a tensor made without ``device=`` lands on the CPU beside the CUDA ones and the first product between
them fails. CI has no GPU, so the CPU stands in for it: with PyTorch's default device set to "meta" (tensors
without data), a tensor made without an explicit device is a meta tensor, and any use of its values fails, while
the computation itself runs on ``device="cpu"``. Each path below must then give the same answer as a plain run.
The ``gpu`` tests run the same paths on CUDA against the CPU (``pytest -m gpu`` on a machine with a GPU).
"""

from contextlib import contextmanager

import numpy as np
import pytest
import torch

import cvxnn
from cvxnn.estimators import ConvexReLUClassifier, ConvexReLURegressor
from cvxnn.nonconvex import train_nonconvex
from cvxnn.pattern_search import SearchOptions


@contextmanager
def implicit_tensors_unusable():
    """Tensors created without ``device=`` hold no data while inside (PyTorch's default device is "meta")."""
    torch.set_default_device("meta")
    try:
        yield
    finally:
        torch.set_default_device(None)


def _data(n: int, d: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    y = np.maximum(X @ rng.standard_normal(d), 0) - np.maximum(X @ rng.standard_normal(d), 0) \
        + 0.1 * rng.standard_normal(n)
    return X, y


X, Y = _data(40, 3)
LABELS = np.where(Y > np.median(Y), 1.0, -1.0)
CLASSES = np.digitize(Y, np.quantile(Y, [1 / 3, 2 / 3]))
TWO = np.c_[Y, np.sin(X[:, 0])]
XB, YB = _data(300, 6, seed=1)  # large enough for the ReLU ipm's face polish and its pattern-side system
PB = cvxnn.sample_patterns(XB, 8, seed=0)

FITS = {
    "relu ipm": lambda dev: cvxnn.fit(X, Y, 0.1, solver="ipm", device=dev),
    "relu ipm, polish, pattern side": lambda dev: cvxnn.fit(XB, YB, 1.0, patterns=PB, solver="ipm", tol=1e-10,
                                                             device=dev),
    "relu ipm logistic": lambda dev: cvxnn.fit(X, LABELS, 0.1, solver="ipm", loss="logistic", device=dev),
    "relu ipm hinge": lambda dev: cvxnn.fit(X, LABELS, 0.1, solver="ipm", loss="hinge", device=dev),
    "relu ipm cross-entropy": lambda dev: cvxnn.fit(X, CLASSES, 0.1, solver="ipm", loss="cross_entropy", device=dev),
    "relu ipm two outputs, group": lambda dev: cvxnn.fit(X, TWO, 0.1, solver="ipm", vector_penalty="group",
                                                          device=dev),
    "relu ipm leaky": lambda dev: cvxnn.fit(X, Y, 0.1, solver="ipm", activation="leaky_relu", device=dev),
    "relu al": lambda dev: cvxnn.fit(X, Y, 0.1, patterns=4, solver="al", tol=1e-2, device=dev),
    "gated fista + newton": lambda dev: cvxnn.fit(XB, YB, 1.0, patterns=PB, formulation="gated", solver="fista",
                                                  device=dev),
    "gated fista, screening": lambda dev: cvxnn.fit(XB, YB, 3.0, patterns=60, formulation="gated", solver="fista",
                                                    device=dev),
    "gated fista float32": lambda dev: cvxnn.fit(X, Y, 0.1, formulation="gated", solver="fista", tol=1e-4,
                                                 dtype=torch.float32, device=dev),
    "gated fista logistic": lambda dev: cvxnn.fit(X, LABELS, 0.1, formulation="gated", solver="fista",
                                                  loss="logistic", device=dev),
    "gated fista hinge": lambda dev: cvxnn.fit(X, LABELS, 0.1, formulation="gated", solver="fista", loss="hinge",
                                               device=dev),
    "gated fista cross-entropy": lambda dev: cvxnn.fit(X, CLASSES, 0.1, patterns=8, formulation="gated",
                                                       solver="fista", loss="cross_entropy", device=dev),
    "gated fista two outputs": lambda dev: cvxnn.fit(X, TWO, 0.1, formulation="gated", solver="fista", device=dev),
    "gated ipm": lambda dev: cvxnn.fit(X, Y, 0.1, formulation="gated", solver="ipm", device=dev),
    "pattern search from adam": lambda dev: cvxnn.fit(X, Y, 0.1, patterns=5, solver="ipm", device=dev,
                                                      search=SearchOptions(max_rounds=2), init_nonconvex=100),
    "gated pattern search": lambda dev: cvxnn.fit(X, Y, 0.1, patterns=5, formulation="gated", device=dev,
                                                  search=SearchOptions(max_rounds=3)),
}


def _same_fit(a, b, rtol):
    assert a.objective == pytest.approx(b.objective, rel=rtol)
    assert a.lower_bound == pytest.approx(b.lower_bound, rel=rtol)
    assert a.network_objective == pytest.approx(b.network_objective, rel=rtol)


@pytest.mark.parametrize("name", FITS)
def test_fit_creates_no_tensor_off_its_device(name):
    plain = FITS[name]("cpu")
    with implicit_tensors_unusable():
        placed = FITS[name]("cpu")
    _same_fit(placed, plain, 1e-12)


def test_path_and_gradient_training_create_no_tensor_off_their_device():
    plain = cvxnn.path(X, Y, [0.5, 0.1], solver="ipm", device="cpu")
    with implicit_tensors_unusable():
        placed = cvxnn.path(X, Y, [0.5, 0.1], solver="ipm", device="cpu")
    np.testing.assert_allclose(placed.objectives, plain.objectives, rtol=1e-12)
    for options in ({}, {"optimizer": "sgd", "batch_size": 8}):
        plain = train_nonconvex(X, Y, 0.1, 10, epochs=30, device="cpu", **options)
        with implicit_tensors_unusable():
            placed = train_nonconvex(X, Y, 0.1, 10, epochs=30, device="cpu", **options)
        assert placed.final_objective == plain.final_objective


def test_the_estimators_create_no_tensor_off_their_device():
    for make, target in ((lambda: ConvexReLURegressor(n_patterns=8, solver="ipm", device="cpu"), Y),
                         (lambda: ConvexReLUClassifier(n_patterns=8, solver="ipm", device="cpu"), CLASSES)):
        plain = make().fit(X, target)
        with implicit_tensors_unusable():
            placed = make().fit(X, target)
        assert placed.objective_ == pytest.approx(plain.objective_, rel=1e-12)
        np.testing.assert_array_equal(placed.predict(X), plain.predict(X))


def test_the_cli_comparison_creates_no_tensor_off_its_device():
    from cvxnn.experiment import run_comparison

    def compare():
        return run_comparison(X, Y, task="regression", beta=0.5, n_patterns=4, epochs=40, adam_lrs=[0.01], gd_lrs=[],
                              certify_samples=50, dataset="tiny", search_rounds=2, device="cpu")

    plain = compare()
    with implicit_tensors_unusable():
        placed = compare()
    assert [m.name for m in placed.models] == [m.name for m in plain.models] and len(plain.models) == 4
    np.testing.assert_allclose([m.objective for m in placed.models], [m.objective for m in plain.models], rtol=1e-12)
    assert placed.settings["device"] == "cpu"


def _unreachable_cuda() -> str:
    return f"cuda:{torch.cuda.device_count()}" if torch.cuda.is_available() else "cuda"


@pytest.mark.parametrize("device", ["gpu", "mps", "meta", 3, "unreachable cuda"])
def test_a_device_pytorch_cannot_use_is_refused_before_any_work(device):
    device = _unreachable_cuda() if device == "unreachable cuda" else device
    message = "CUDA device" if str(device).startswith("cuda") else "device must be"
    with pytest.raises(ValueError, match=message):
        cvxnn.fit(X, Y, 0.1, solver="ipm", device=device)
    with pytest.raises(ValueError, match=message):
        train_nonconvex(X, Y, 0.1, 5, epochs=2, device=device)
    with pytest.raises(ValueError, match="ConvexReLURegressor: .*" + message):
        ConvexReLURegressor(device=device).fit(X, Y)


def test_memory_checks_count_the_memory_of_the_device_that_computes(monkeypatch):
    """A CUDA request is held against the GPU's free memory (torch.cuda.mem_get_info), a CPU one against the host's."""
    import cvxnn.data
    from cvxnn.data import check_memory
    from cvxnn.devices import free_memory_bytes

    gib = 2.0 ** 30
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device=None: (int(2 * gib), int(80 * gib)))
    monkeypatch.setattr(cvxnn.data, "available_memory_bytes", lambda: int(64 * gib))
    assert free_memory_bytes(torch.device("cuda:0")) == 2 * gib
    assert free_memory_bytes("cpu") == free_memory_bytes(None) == 64 * gib
    check_memory(0.9 * gib, "a product", "use less.", device=torch.device("cuda:0"))
    with pytest.raises(MemoryError, match="more than the 1.00 GiB allowed on cuda:0; use less"):
        check_memory(1.5 * gib, "a product", "use less.", device=torch.device("cuda:0"))
    check_memory(1.5 * gib, "a product", "use less.", device="cpu")
    with pytest.raises(MemoryError, match="more than the 32.00 GiB allowed; use less"):
        check_memory(40 * gib, "a product", "use less.")


def test_the_stand_in_catches_a_tensor_made_without_a_device():
    with implicit_tensors_unusable():
        placed = torch.ones(3, device="cpu")
        with pytest.raises((RuntimeError, NotImplementedError)):
            float((torch.ones(3) + placed).sum())
    assert float((torch.ones(3) + placed).sum()) == 6.0  # and the default device is restored on leaving


@pytest.mark.gpu
@pytest.mark.parametrize("name", FITS)
def test_fit_on_cuda_matches_the_cpu(name):
    if not torch.cuda.is_available():
        pytest.fail("the gpu tests need a CUDA device (run them with -m gpu on a machine that has one)")
    _same_fit(FITS[name]("cuda"), FITS[name]("cpu"), 1e-4)
