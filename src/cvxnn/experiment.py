"""The comparison behind ``cvxnn demo`` and ``cvxnn train``: convex program vs gradient training.

:func:`run_comparison` takes a train/test split and

1. standardizes the features (mean and scale fitted on the training set) and encodes the
   targets for the loss (:func:`resolve_loss`, :func:`prepare`): binary classes become ±1
   (``classes[1]`` → +1, ``classes[0]`` → −1, the convention of
   :class:`cvxnn.estimators.ConvexReLUClassifier`) for the squared, logistic and hinge losses;
   for cross-entropy, class indices 0..c−1 (``classes[k]`` → k, c outputs); for the squared loss
   on c > 2 classes, one-vs-rest ±1 columns (c outputs); regression targets are standardized;
2. solves the convex program of the network with activation σ and loss L by :func:`cvxnn.fit`
   on sampled (or all) activation patterns and certifies the resulting network with
   :func:`cvxnn.certify` (same σ and L);
3. trains the same architecture (same σ, L, β and bias convention, width ≥ the convex model's
   neurons) with Adam and full-batch gradient descent at a few step sizes
   (:func:`cvxnn.nonconvex.train_nonconvex`), recording the NC objective against wall-clock time;
4. optionally (``refit=True``) solves the convex program again on the activation patterns of
   the best gradient-trained network. With one output, that network maps to a feasible point
   of this program (the map Ψ, THEORY §1.2; any convex loss), so the refit's optimum is at most
   its NC objective: the convex model is then at least as good as every gradient run and
   optimal (to the reported relative gap) among all networks of any width whose neurons use
   those patterns. (Adding the first solution's patterns as well would also guarantee the
   refit beats it, but about doubles the solve time; the best convex model is reported and
   saved either way.) With c outputs there is no such guarantee: the per-output program is
   exact for the output penalty ‖α_j‖₁² ≥ ‖α_j‖² (THEORY §1.7), while the gradient runs use ℓ2
   weight decay, so a gradient run may end below the convex model; ``settings`` says which case
   applies;
5. optionally (``search_rounds`` > 0) grows the pattern list of the best
   convex model so far by pattern search (:func:`cvxnn.pattern_search.column_generation`), warm-started
   from its solution, so the searched model is never worse than it.

All objectives are the canonical NC = L(f(X)) + (β/2) Σ_j (‖u_j‖² + ‖α_j‖²) (sum over the
training samples, no 1/n) on the *standardized* data and encoded targets.

Gaps. Two different numbers are reported for each convex model:

* ``program_relative_gap``: (objective − lower bound)/objective of its own program (a feasible
  dual point of that pattern list); certifies optimality among networks whose neurons use
  those patterns, and globally only when the patterns are all enumerated;
* ``certified_relative_gap``: the gap to ``certified_lower_bound``, the best lower bound that
  :func:`cvxnn.certify` proved for **every** network of any width on these data. With sampled
  patterns that bound comes from a loose spectral estimate, so this gap is usually large;
  it is also reported for the gradient-trained networks (the bound holds for them too).
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Sequence

import numpy as np

from .activations import DEFAULT_NEGATIVE_SLOPE, Activation, activation_from
from .certificate import Certificate, certify
from .data import add_bias, as_matrix, as_targets
from .devices import compute_device
from .losses import loss_from
from .network import TwoLayerNet
from .patterns import Patterns, count_patterns_bound, data_rank, enumerable, enumerate_patterns, \
    network_patterns, sample_patterns
from .threads import torch_threads
from .pattern_search import SearchOptions
from .training import ConvexFit, check_time_limit, fit

TASKS = ("auto", "classification", "regression")
LOSSES = ("auto", "squared", "logistic", "hinge", "cross_entropy")
ACTIVATIONS = ("relu", "leaky_relu", "abs")
LOSS_FORMULAS = {
    "squared": "1/2 ||f(X) - y||^2",
    "logistic": "sum_k log(1 + exp(-y_k f(x_k))), y_k in {-1, +1}",
    "hinge": "sum_k max(0, 1 - y_k f(x_k)), y_k in {-1, +1}",
    "cross_entropy": "sum_k [logsumexp(f(x_k)) - f(x_k)[y_k]], y_k the class index (c outputs)",
}
DEFAULT_ADAM_LRS = (1e-3, 1e-2, 1e-1)
DEFAULT_GD_LR_FACTORS = (0.3, 1.0, 3.0)  # step sizes c / ‖X̃‖₂², see gd_learning_rates
MAX_ENUMERATED = 300
MIN_WIDTH = 8


class ComparisonError(ValueError):
    """Bad input for a comparison (the message says what is wrong and what to do)."""


# --------------------------------------------------------------------------- progress


class ProgressHook:
    """Receives progress events; the default does nothing. ``cvxnn.cli`` implements it with rich."""

    def stage(self, label: str, total: int | None = None) -> None:
        """A new stage begins; ``total`` steps when known (None: indeterminate)."""

    def update(self, completed: int, info: str = "") -> None:
        """``completed`` steps of the current stage are done."""

    def done(self, info: str = "") -> None:
        """The current stage ended."""


# --------------------------------------------------------------------------- data


@dataclass
class Prepared:
    """Standardized data and the preprocessing that produced it (JSON-friendly fields)."""

    X_train: np.ndarray
    t_train: np.ndarray
    X_test: np.ndarray | None
    t_test: np.ndarray | None
    y_train: np.ndarray
    y_test: np.ndarray | None
    task: str
    x_mean: np.ndarray
    x_scale: np.ndarray
    classes: list | None = None
    y_mean: float = 0.0
    y_scale: float = 1.0
    loss: str = "squared"
    encoding: str = "pm1"

    def preprocessing(self) -> dict:
        """What a user needs to apply the model to raw data (see :func:`apply_preprocessing`)."""
        return {"x_mean": self.x_mean.tolist(), "x_scale": self.x_scale.tolist(), "task": self.task,
                "classes": self.classes, "y_mean": self.y_mean, "y_scale": self.y_scale, "loss": self.loss,
                "target_encoding": self.encoding}


ENCODINGS = {
    "pm1": "±1 (classes[1] → +1, classes[0] → −1)",
    "class_index": "class indices (classes[k] → k), one output per class",
    "one_vs_rest_pm1": "one-vs-rest ±1 columns (column k is +1 for classes[k]), one output per class",
    "standardized": "standardized ((y − y_mean)/y_scale)",
}


def resolve_loss(loss: str, task: str, n_classes: int = 0) -> tuple[str, str]:
    """(loss, target encoding) for a task; ``n_classes`` is the number of classes (classification).

    "auto" is logistic for two classes, cross_entropy for more, squared for regression. The
    logistic and hinge losses need two classes; regression takes the squared loss only.
    """
    if loss not in LOSSES:
        raise ComparisonError(f"loss must be one of {', '.join(LOSSES)}, got {loss!r}.")
    if task == "regression":
        if loss not in ("auto", "squared"):
            raise ComparisonError(f"the {loss} loss needs a classification target, but the target is treated "
                                  "as regression (numeric with more than ten distinct values or non-integer); "
                                  "use the squared loss, or a target with class labels.")
        return "squared", "standardized"
    if loss == "auto":
        loss = "logistic" if n_classes == 2 else "cross_entropy"
    if loss == "cross_entropy":
        return loss, "class_index"
    if n_classes == 2:
        return loss, "pm1"
    if loss == "squared":
        return loss, "one_vs_rest_pm1"
    raise ComparisonError(f"the {loss} loss is for two classes, but the target has {n_classes}; use the "
                          "cross_entropy (or squared) loss for multi-class targets.")


def infer_task(y: Any) -> str:
    """Classification when ``y`` is non-numeric or holds at most ten distinct integers (as :func:`load_csv`)."""
    arr = np.asarray(y)
    if not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
        return "classification"
    a = arr.astype(float)
    if np.all(np.isfinite(a)) and np.all(a == np.round(a)) and len(np.unique(a)) <= 10:
        return "classification"
    return "regression"


def prepare(X_train: Any, y_train: Any, X_test: Any = None, y_test: Any = None, task: str = "auto",
            loss: str = "squared") -> Prepared:
    """Validate, standardize features, encode targets for ``loss`` (see the module docstring and
    :func:`resolve_loss`)."""
    if task not in TASKS:
        raise ComparisonError(f"task must be one of {', '.join(TASKS)}, got {task!r}.")
    Xtr = as_matrix(X_train, "X_train")
    ytr = np.asarray(y_train)
    if ytr.ndim != 1 or ytr.shape[0] != Xtr.shape[0]:
        raise ComparisonError(f"y_train must be a vector with one target per row of X_train "
                              f"({Xtr.shape[0]}), got shape {ytr.shape}.")
    if Xtr.shape[0] < 2:
        raise ComparisonError(f"at least 2 training samples are needed, got {Xtr.shape[0]}.")
    Xte = yte = None
    if X_test is not None:
        Xte = as_matrix(X_test, "X_test")
        if Xte.shape[1] != Xtr.shape[1]:
            raise ComparisonError(f"X_test has {Xte.shape[1]} features but X_train has {Xtr.shape[1]}.")
        if y_test is None:
            raise ComparisonError("X_test was given without y_test.")
        yte = np.asarray(y_test)
        if yte.ndim != 1 or yte.shape[0] != Xte.shape[0]:
            raise ComparisonError(f"y_test must be a vector with one target per row of X_test "
                                  f"({Xte.shape[0]}), got shape {yte.shape}.")
    if task == "auto":
        task = infer_task(ytr if yte is None else np.concatenate([ytr, yte]))
    mean = Xtr.mean(axis=0)
    scale = Xtr.std(axis=0)
    scale = np.where(scale > 1e-12 * np.maximum(np.abs(mean), 1.0), scale, 1.0)  # constant columns: scale 1
    Xs = (Xtr - mean) / scale
    Xts = None if Xte is None else (Xte - mean) / scale
    if task == "classification":
        if np.issubdtype(ytr.dtype, np.number):
            as_targets(ytr, ytr.shape[0], "the training targets")  # NaN/inf check
            if yte is not None:
                as_targets(yte, yte.shape[0], "the test targets")
        classes = sorted(np.unique(ytr).tolist())
        if len(classes) < 2:
            raise ComparisonError(f"the training targets hold a single class ({_label(classes[0])}); "
                                  "classification needs two.")
        loss, encoding = resolve_loss(loss, task, len(classes))
        if yte is not None:
            unseen = sorted(set(np.unique(yte).tolist()) - set(classes))
            if unseen:
                raise ComparisonError(f"the test set holds labels not seen in training: "
                                      f"{', '.join(_label(c) for c in unseen)}.")
        ttr = encode_labels(ytr, classes, encoding)
        tte = None if yte is None else encode_labels(yte, classes, encoding)
        return Prepared(Xs, ttr, Xts, tte, ytr, yte, task, mean, scale, classes=classes, loss=loss,
                        encoding=encoding)
    loss, encoding = resolve_loss(loss, task)
    ytr_f = as_targets(ytr, Xtr.shape[0], "the training targets")
    yte_f = None if yte is None else as_targets(yte, yte.shape[0], "the test targets")
    y_mean = float(ytr_f.mean())
    y_scale = float(ytr_f.std())
    y_scale = y_scale if y_scale > 0 else 1.0
    tte = None if yte_f is None else (yte_f - y_mean) / y_scale
    return Prepared(Xs, (ytr_f - y_mean) / y_scale, Xts, tte, ytr_f, yte_f, task, mean, scale,
                    y_mean=y_mean, y_scale=y_scale, loss=loss, encoding=encoding)


def class_indices(y: Any, classes: Sequence) -> np.ndarray:
    """k for each label equal to ``classes[k]`` (int array); other labels are an error."""
    y = np.asarray(y)
    lookup = {c: k for k, c in enumerate(classes)}
    out = np.empty(len(y), dtype=int)
    for i, v in enumerate(y.tolist()):
        if v not in lookup:
            raise ComparisonError(f"label {_label(v)} is not one of the model's classes "
                                  f"({', '.join(_label(c) for c in classes)}).")
        out[i] = lookup[v]
    return out


def encode_classes(y: Any, classes: Sequence) -> np.ndarray:
    """±1 targets: ``classes[1]`` → +1, ``classes[0]`` → −1; other labels are an error."""
    return np.where(class_indices(y, classes[:2]) == 1, 1.0, -1.0)


def encode_labels(y: Any, classes: Sequence, encoding: str) -> np.ndarray:
    """Class labels in an encoding of :data:`ENCODINGS`: "pm1" (two classes, ±1), "class_index"
    (k as a float), "one_vs_rest_pm1" ((n, c) matrix, +1 in the label's column, −1 elsewhere)."""
    if encoding == "pm1":
        return encode_classes(y, classes)
    idx = class_indices(y, classes)
    if encoding == "class_index":
        return idx.astype(float)
    if encoding == "one_vs_rest_pm1":
        return 2.0 * np.eye(len(classes))[idx] - 1.0
    raise ComparisonError(f"unknown target encoding {encoding!r} for class labels.")


def apply_preprocessing(X: Any, preprocessing: dict) -> np.ndarray:
    """Standardize raw features with the stored ``x_mean`` / ``x_scale`` (what the model was trained on)."""
    Xm = as_matrix(X)
    mean = np.asarray(preprocessing["x_mean"], float)
    scale = np.asarray(preprocessing["x_scale"], float)
    if Xm.shape[1] != mean.shape[0]:
        raise ComparisonError(f"the model was trained on {mean.shape[0]} features but the data have {Xm.shape[1]}.")
    return (Xm - mean) / scale


def encode_targets(y: Any, preprocessing: dict) -> np.ndarray:
    """Targets as the model was trained on them (``target_encoding``; ±1 for classification and
    standardized for regression when it is absent, as in sidecars written before losses)."""
    if preprocessing.get("task") == "classification":
        return encode_labels(y, preprocessing["classes"], preprocessing.get("target_encoding", "pm1"))
    yv = as_targets(y, len(y))
    return (yv - float(preprocessing.get("y_mean", 0.0))) / float(preprocessing.get("y_scale", 1.0))


def _label(v: Any) -> str:
    if isinstance(v, float) and v == round(v):
        return repr(int(v))
    return repr(v)


# --------------------------------------------------------------------------- results


@dataclass
class ModelResult:
    """One row of the comparison (all objectives on the standardized training data)."""

    name: str
    kind: str  # "convex" or "nonconvex"
    objective: float
    neurons: int  # neurons with a nonzero contribution ‖u_j‖·|α_j|
    width: int
    wall_time: float
    train_metrics: dict
    test_metrics: dict | None
    optimizer: str | None = None
    lr: float | None = None
    epochs: int | None = None
    n_patterns: int | None = None
    patterns_complete: bool | None = None
    program_lower_bound: float | None = None
    program_relative_gap: float | None = None
    solver_status: str | None = None
    certificate: dict | None = None
    certified_relative_gap: float | None = None
    diverged: bool = False
    interrupted: bool = False
    history_times: list = field(default_factory=list)
    history_objectives: list = field(default_factory=list)

    def to_dict(self, with_history: bool = True) -> dict:
        d = asdict(self)
        if not with_history:
            d.pop("history_times")
            d.pop("history_objectives")
        return d


@dataclass
class ComparisonResult:
    """Everything :func:`run_comparison` computed (see :meth:`summary` for the JSON form)."""

    dataset: str
    task: str
    n_train: int
    n_test: int
    n_features: int
    beta: float
    bias: bool
    seed: int
    models: list[ModelResult]
    certified_lower_bound: float
    convex_network: TwoLayerNet
    convex_fits: dict
    certificates: dict
    prepared: Prepared
    settings: dict
    feature_names: list[str] | None = None
    target_name: str | None = None
    interrupted: bool = False

    @property
    def best_convex(self) -> ModelResult:
        return min((m for m in self.models if m.kind == "convex"), key=lambda m: m.objective)

    @property
    def activation(self) -> Activation:
        return self.convex_network.activation

    @property
    def loss(self) -> str:
        return self.prepared.loss

    def summary(self) -> dict:
        """A JSON-serializable dict (non-finite floats become None)."""
        return _jsonable({
            "dataset": {"name": self.dataset, "task": self.task, "n_train": self.n_train, "n_test": self.n_test,
                        "n_features": self.n_features, "feature_names": self.feature_names,
                        "target": self.target_name, "classes": self.prepared.classes},
            "objective": f"NC = L(f(X)) + (beta/2) sum_j (||u_j||^2 + ||alpha_j||^2), L(f(X)) = "
                         f"{LOSS_FORMULAS[self.loss]}, f(x) = sum_j sigma(x~^T u_j) alpha_j, "
                         f"sigma(t) = {self.activation.a:g} (t)_+ + {self.activation.b:g} (t)_-; summed over the "
                         "standardized training samples (no 1/n)",
            "activation": self.activation.to_dict(), "loss": self.loss,
            "n_outputs": self.convex_network.n_outputs,
            "n": self.n_train, "d": self.n_features, "beta": self.beta, "bias": self.bias, "seed": self.seed,
            "certified_lower_bound": self.certified_lower_bound,
            "certified_lower_bound_note": "a lower bound on NC for every two-layer network of any width with the "
                                          "same activation, loss, beta and bias convention (l2 weight decay), "
                                          "proved by cvxnn.certify; -inf (null) when no certificate succeeded",
            "best_convex_model": self.best_convex.name,
            "models": [m.to_dict() for m in self.models],
            "certificates": self.certificates,
            "preprocessing": self.prepared.preprocessing(),
            "settings": self.settings,
            "interrupted": self.interrupted,
        })


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _jsonable(obj.tolist())
    if isinstance(obj, (bool, np.bool_)):
        return bool(obj)
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        f = float(obj)
        return f if math.isfinite(f) else None
    if obj is None or isinstance(obj, str):
        return obj
    return str(obj)


# --------------------------------------------------------------------------- metrics


def predicted_classes(f: np.ndarray) -> np.ndarray:
    """Class indices from network outputs: 1 where f ≥ 0 for one output (classes[1] is +1), the
    argmax over the outputs otherwise."""
    return (f >= 0).astype(int) if f.ndim == 1 else np.argmax(f, axis=1)


def true_classes(t: np.ndarray, encoding: str) -> np.ndarray:
    """Class indices of encoded targets (the inverse of :func:`encode_labels`)."""
    if encoding == "pm1":
        return (t > 0).astype(int)
    if encoding == "class_index":
        return t.astype(int)
    return np.argmax(t, axis=1)


def metrics(net: TwoLayerNet, X: np.ndarray, t: np.ndarray, prepared: Prepared) -> dict:
    """Accuracy (classification: :func:`predicted_classes`) or R² and MSE in the original target
    units (regression)."""
    f = net.predict(X)
    if prepared.task == "classification":
        return {"accuracy": float(np.mean(predicted_classes(f) == true_classes(t, prepared.encoding)))}
    pred = f * prepared.y_scale + prepared.y_mean
    truth = t * prepared.y_scale + prepared.y_mean
    mse = float(np.mean((pred - truth) ** 2))
    var = float(np.var(truth))
    return {"r2": 1.0 - mse / var if var > 0 else float("nan"), "mse": mse}


def active_neurons(net: TwoLayerNet, rtol: float = 1e-6) -> int:
    """Neurons whose contribution ‖u_j‖·‖α_j‖ exceeds rtol times the largest one."""
    c = np.linalg.norm(net.W1, axis=1) * np.linalg.norm(net.w2.reshape(net.width, net.n_outputs), axis=1)
    return int(np.sum(c > rtol * max(c.max(initial=0.0), 1e-300))) if c.size else 0


# --------------------------------------------------------------------------- the comparison


def parse_patterns(value: Any) -> int | str:
    """``"all"``, ``"auto"`` or a positive integer (strings from the command line accepted)."""
    if isinstance(value, str):
        v = value.strip().lower()
        if v in ("all", "auto"):
            return v
        try:
            value = int(v)
        except ValueError:
            raise ComparisonError(f"patterns must be a positive integer, 'all' or 'auto', got {value!r}.") from None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ComparisonError(f"patterns must be a positive integer, 'all' or 'auto', got {value!r}.")
    return int(value)


def resolve_patterns(Xt: np.ndarray, spec: int | str, seed: int, auto_sampled: int = 50,
                     max_enumerated: int = MAX_ENUMERATED) -> Patterns:
    """Patterns for the convex program: sampled (int), all (enumerated), or auto (all when ≤ max_enumerated)."""
    spec = parse_patterns(spec)
    if spec == "auto":
        if enumerable(Xt, max_enumerated):
            return enumerate_patterns(Xt, max_patterns=max_enumerated)
        return sample_patterns(Xt, auto_sampled, seed=seed)
    if spec == "all":
        predicted = count_patterns_bound(Xt.shape[0], data_rank(Xt))
        if predicted > max_enumerated:
            raise ComparisonError(
                f"these data have up to {predicted:,} activation patterns, too many for the reference solver "
                f"(limit {max_enumerated}); give a number of sampled patterns instead.")
        return enumerate_patterns(Xt, max_patterns=max_enumerated)
    return sample_patterns(Xt, spec, seed=seed)


def gd_learning_rates(X: np.ndarray, bias: bool, factors: Sequence[float] = DEFAULT_GD_LR_FACTORS,
                      curvature: float = 1.0) -> list[float]:
    """Step sizes c/(κ‖X̃‖₂²) for full-batch GD: the data term's curvature scales with κ‖X̃‖₂² (sum over
    samples), κ the Lipschitz constant of ∇L (1 squared, 1/4 logistic, 1/2 cross-entropy); a
    nonsmooth loss (κ = ∞, hinge) uses κ = 1."""
    Xt = add_bias(X) if bias else X
    L = float(np.linalg.norm(Xt, 2)) ** 2 * (curvature if math.isfinite(curvature) else 1.0)
    return [float(f"{c / max(L, 1e-300):.3g}") for c in factors]


def run_comparison(X_train: Any, y_train: Any, X_test: Any = None, y_test: Any = None, *, task: str = "auto",
                   beta: float = 1.0, n_patterns: int | str = 50, bias: bool = True,
                   adam_lrs: Sequence[float] | None = DEFAULT_ADAM_LRS, gd_lrs: Sequence[float] | None = None,
                   epochs: int = 2000, width: int | None = None, seed: int = 0, refit: bool = True,
                   certify_samples: int = 1000, certify_search_starts: int = 0, record_every: int = 10,
                   threads: int | None = 1,
                   dataset: str = "data", feature_names: list[str] | None = None, target_name: str | None = None,
                   progress: ProgressHook | None = None, activation: Any = "relu",
                   negative_slope: float = DEFAULT_NEGATIVE_SLOPE, loss: str = "squared",
                   time_limit: float | None = None, search_rounds: int = 0, device: Any = "cpu") -> ComparisonResult:
    """Convex program vs Adam / GD on one train/test split (see the module docstring).

    Args:
        X_train, y_train, X_test, y_test: raw data; the test set is optional.
        task: "classification", "regression", or "auto" (as :func:`infer_task`).
        activation: σ of every model: "relu", "leaky_relu" (slope ``negative_slope``), "abs", a pair
            (a, b) or an :class:`~cvxnn.activations.Activation`.
        loss: "squared" (the default), "logistic", "hinge", "cross_entropy", or "auto" (logistic for
            two classes, cross_entropy for more, squared for regression); see :func:`resolve_loss`.
        beta: weight decay β (> 0) of the canonical objective on the standardized data.
        n_patterns: sampled activation patterns for the convex program, "all" (exact; small data
            only) or "auto".
        bias: each neuron gets a (penalized) bias (a ones column appended to X).
        adam_lrs, gd_lrs: step sizes of the gradient runs; ``gd_lrs=None`` picks
            :func:`gd_learning_rates`. An empty list skips that optimizer.
        epochs: full-batch steps of every gradient run.
        width: hidden width of the gradient runs; default max(neurons of the convex model, 8).
        refit: also solve the convex program on the patterns of the best gradient run (its
            optimum is then at most that run's objective).
        certify_samples: Gaussian patterns searched by :func:`cvxnn.certify` when the patterns
            cannot be enumerated.
        certify_search_starts: random starts of the certificate's local ascent over patterns
            (``n_search_starts`` of :func:`cvxnn.certify`); 0 skips that search, which otherwise
            also starts from every neuron and costs about a second per start on the demo data.
        record_every: record the NC objective every this many gradient steps.
        threads: torch threads during the gradient runs (restored afterwards); None leaves it.
        progress: a :class:`ProgressHook`.
        time_limit: seconds for each convex program's solve (``fit``'s ``time_limit``: an iterative solver
            stopped there returns its best certified point with status "time_limit"); None: no limit.
        search_rounds: rounds of pattern search (``fit(..., search=SearchOptions(max_rounds=...))``) from the
            best convex model above, warm-started and solved by the interior-point method (its warm starts suit
            the repeated solves), as one more model "convex (pattern search)"; 0: none.
        device: where the convex solvers and the gradient runs compute ("cpu", "cuda" or "cuda:<index>";
            ``fit``'s ``device``).
    """
    from .nonconvex import best_of, train_nonconvex

    hook = progress or ProgressHook()
    try:
        act = activation_from(activation, negative_slope)
        device = compute_device(device)
    except (TypeError, ValueError) as exc:
        raise ComparisonError(str(exc)) from None
    beta = _positive(beta, "beta")
    try:
        time_limit = check_time_limit(time_limit)
    except ValueError as exc:
        raise ComparisonError(str(exc)) from None
    epochs = _positive_int(epochs, "epochs")
    record_every = _positive_int(record_every, "record_every")
    certify_samples = _positive_int(certify_samples, "certify_samples")
    for label, value in (("certify_search_starts", certify_search_starts), ("search_rounds", search_rounds)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
            raise ComparisonError(f"{label} must be a nonnegative integer, got {value!r}.")
    if width is not None:
        width = _positive_int(width, "width")
    spec = parse_patterns(n_patterns)
    adam_lrs = [_positive(lr, "an Adam learning rate") for lr in (adam_lrs or [])]
    prep = prepare(X_train, y_train, X_test, y_test, task, loss)
    loss_fn = loss_from(prep.loss)
    if gd_lrs is None:
        gd_lrs = gd_learning_rates(prep.X_train, bias, curvature=loss_fn.curvature)
    gd_lrs = [_positive(lr, "a GD learning rate") for lr in gd_lrs]
    Xs, t = prep.X_train, prep.t_train
    Xt = add_bias(Xs) if bias else Xs

    models: list[ModelResult] = []
    fits: dict[str, ConvexFit] = {}
    certificates: dict[str, dict] = {}
    certs: dict[str, Certificate] = {}

    def convex_model(name: str, pats: Patterns, extra_time: float = 0.0, **options: Any) -> ModelResult:
        """Solve on ``pats`` (``options``: more of fit's arguments; with a search the list grows), then certify."""
        hook.stage(f"{name}: convex program on {len(pats)} patterns")
        start = time.perf_counter()
        cf = fit(Xs, t, beta, patterns=pats, bias=bias, seed=seed, activation=act, loss=loss_fn, time_limit=time_limit,
                 device=device, **options)
        pats = cf.patterns if "search" in options else pats  # the grown list
        elapsed = time.perf_counter() - start + extra_time
        hook.done(f"objective {cf.objective:.6g}, relative gap {cf.relative_gap:.1e}")
        hook.stage(f"{name}: certificate")
        try:  # output_norm "l2": the bound covers every network with l2 weight decay, gradient runs included
            cert = certify(cf.network, Xs, t, beta, patterns=pats, n_samples=certify_samples, seed=seed,
                           n_search_starts=int(certify_search_starts), loss=loss_fn, output_norm="l2")
        except (ValueError, NotImplementedError) as exc:
            hook.done(f"no certificate: {exc}")
            certificates[name] = failed_certificate(float(cf.network_objective), str(exc))
        else:
            hook.done(f"lower bound {cert.lower_bound:.6g}")
            certs[name] = cert
            certificates[name] = cert.summary()
        fits[name] = cf
        net = cf.network
        return ModelResult(
            name=name, kind="convex", objective=float(cf.network_objective), neurons=active_neurons(net),
            width=net.width, wall_time=elapsed, train_metrics=metrics(net, Xs, t, prep),
            test_metrics=None if prep.X_test is None else metrics(net, prep.X_test, prep.t_test, prep),
            n_patterns=len(pats), patterns_complete=bool(pats.complete),
            program_lower_bound=float(cf.lower_bound), program_relative_gap=float(cf.relative_gap),
            solver_status=cf.status, certificate=certificates[name],
            history_times=[elapsed], history_objectives=[float(cf.network_objective)])

    # 1. the convex program on sampled (or all) patterns
    pats = resolve_patterns(Xt, spec, seed)
    base_name = "convex (all patterns)" if pats.complete else f"convex ({len(pats)} sampled)"
    models.append(convex_model(base_name, pats))
    base = models[0]

    # 2. gradient training of the same architecture
    m = width if width is not None else max(base.neurons, MIN_WIDTH)
    runs = []
    interrupted = False
    with torch_threads(threads):
        if adam_lrs or gd_lrs:  # first optimizer construction imports lazily (seconds): keep it off the clocks
            for opt in ("adam", "gd"):
                train_nonconvex(Xs[:2], np.zeros(2), beta, 1, optimizer=opt, lr=1e-3, epochs=1, bias=bias,
                                device=device)
        for opt, lrs in (("adam", adam_lrs), ("gd", gd_lrs)):
            for lr in lrs:
                if interrupted:
                    break
                label = f"{'Adam' if opt == 'adam' else 'GD'} lr={lr:g}"
                hook.stage(f"{label}, width {m}", total=epochs)
                run = train_nonconvex(Xs, t, beta, m, optimizer=opt, lr=lr, epochs=epochs, seed=seed, bias=bias,
                                      record_every=record_every, activation=act, loss=loss_fn, device=device,
                                      callback=lambda step, obj: hook.update(step, f"NC {obj:.6g}"))
                hook.done(f"NC {run.final_objective:.6g}" + (" (diverged)" if run.diverged else "")
                          + (" (interrupted)" if run.interrupted else ""))
                interrupted = interrupted or run.interrupted
                runs.append(run)
                net = run.network
                models.append(ModelResult(
                    name=label, kind="nonconvex", objective=float(run.final_objective), neurons=active_neurons(net),
                    width=m, wall_time=float(run.wall_time), train_metrics=metrics(net, Xs, t, prep),
                    test_metrics=None if prep.X_test is None else metrics(net, prep.X_test, prep.t_test, prep),
                    optimizer=opt, lr=float(lr), epochs=epochs, diverged=bool(run.diverged),
                    interrupted=bool(run.interrupted), history_times=list(run.history.times),
                    history_objectives=list(run.history.objectives)))

    # 3. the convex program on the patterns of the best gradient run
    finite = [r for r in runs if not r.diverged and math.isfinite(r.final_objective)]
    refit_from = None
    if refit and finite and not pats.complete and not interrupted:
        best = best_of(finite)
        bnet = best.network.balanced()
        if bnet.width > 0:
            run_pats = network_patterns(bnet.W1, bnet.design(Xs))
            who = f"{'Adam' if best.optimizer == 'adam' else 'GD'} lr={best.lr:g}"
            refit_from = who
            models.append(convex_model(f"convex ({who} patterns)", run_pats, extra_time=best.wall_time))

    # 4. pattern search from the best convex model so far
    if search_rounds and not interrupted:
        start_model = min((mr for mr in models if mr.kind == "convex"), key=lambda mr: mr.objective)
        models.append(convex_model("convex (pattern search)", fits[start_model.name].patterns, solver="ipm",
                                   warm_start=fits[start_model.name], search=SearchOptions(max_rounds=search_rounds)))

    lower = max((c.lower_bound for c in certs.values()), default=-math.inf)
    for mr in models:
        mr.certified_relative_gap = (mr.objective - lower) / max(abs(mr.objective), 1e-300)
    best_convex = min((mr for mr in models if mr.kind == "convex"), key=lambda mr: mr.objective)
    vector = fits[base_name].network.n_outputs > 1
    settings = {"n_patterns": spec, "adam_lrs": adam_lrs, "gd_lrs": gd_lrs, "epochs": epochs, "width": m,
                "activation": act.to_dict(), "loss": prep.loss,
                "refit": refit, "refit_patterns_from": refit_from,
                "refit_guarantee": (
                    "none: with c outputs the per-output convex program is exact for the output penalty "
                    "||alpha_j||_1^2 >= ||alpha_j||^2, while the gradient runs use l2 weight decay, so a "
                    "gradient run may end below the convex models" if vector else
                    "the refit's objective is at most that gradient run's (the map Psi, THEORY 1.2)"),
                "certify_samples": certify_samples, "time_limit": time_limit, "search_rounds": int(search_rounds),
                "certify_search_starts": int(certify_search_starts),
                "record_every": record_every,
                "threads": threads, "device": str(device), "standardized_features": True,
                "targets": ENCODINGS[prep.encoding]}
    return ComparisonResult(
        dataset=dataset, task=prep.task, n_train=Xs.shape[0],
        n_test=0 if prep.X_test is None else prep.X_test.shape[0], n_features=Xs.shape[1], beta=beta, bias=bias,
        seed=seed, models=models, certified_lower_bound=lower, convex_network=fits[best_convex.name].network,
        convex_fits=fits, certificates=certificates, prepared=prep, settings=settings,
        feature_names=feature_names, target_name=target_name, interrupted=interrupted)


def failed_certificate(objective: float, reason: str) -> dict:
    """The certificate entry of a model :func:`cvxnn.certify` could not handle (no bound claimed)."""
    return {"objective": objective, "lower_bound": -math.inf, "gap": math.inf, "relative_gap": math.inf,
            "globally_optimal": None, "method": "not certified", "patterns_checked": 0, "complete": False,
            "max_dual_violation": math.nan, "checked": "nothing", "not_checked": f"everything: {reason}",
            "elapsed_s": 0.0, "error": reason}


def _positive(value: Any, name: str) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ComparisonError(f"{name} must be a positive number, got {value!r}.") from None
    if not math.isfinite(v) or v <= 0:
        raise ComparisonError(f"{name} must be a positive finite number, got {value!r}.")
    return v


def _positive_int(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ComparisonError(f"{name} must be a positive integer, got {value!r}.")
    return int(value)
