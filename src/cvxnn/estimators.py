"""scikit-learn estimators: :class:`ConvexReLURegressor` and :class:`ConvexReLUClassifier`.

Both train a two-layer ReLU network f(x) = Σ_j (x̃ᵀu_j)_+ α_j by solving its convex program
with :func:`cvxnn.fit` (THEORY §1), so the network returned is the exact optimum of the program
on the pattern list used, and ``dual_gap_`` certifies it.

Regularization convention (scikit-learn style, a *mean* loss)::

    (1/(2n)) ‖f(X) − y‖² + (alpha/2) Σ_j (‖u_j‖² + α_j²)   =   NC / n   with   β = n · alpha,

where NC = ½‖f(X) − y‖² + (β/2) Σ_j (‖u_j‖² + α_j²) is cvxnn's canonical objective (a sum over
samples). The estimators therefore call ``cvxnn.fit(X, y, beta=n_samples * alpha, ...)``; the
fitted ``objective_`` and ``lower_bound_`` are in the NC (sum) convention, so
``objective_ / n_samples`` is the value of the mean-loss objective above.

Preprocessing done inside ``fit`` (and replayed by ``predict``):

* ``standardize=True``: each feature is centred and divided by its standard deviation
  (population std, as :class:`sklearn.preprocessing.StandardScaler`); a (numerically)
  constant feature gets scale 1, so it becomes a zero column. The statistics are stored in
  ``mean_`` and ``scale_`` (zeros and ones when ``standardize=False``).
* ``fit_intercept=True``: a ones column is appended (``cvxnn.fit(..., bias=True)``), so every
  neuron gets a bias. The bias is part of u_j and is penalized like the other weights.

* ``normalize_y=True`` (regressor only): the targets are centred and divided by their standard
  deviation, ỹ = (y − y_mean_) / y_scale_, and ``predict`` returns y_mean_ + y_scale_ · f. The weight
  decay then means the same for targets of any unit: NC's loss grows with the square of the targets' scale
  but its penalty only linearly (the optimal network scales with them), so on raw targets a large scale acts as
  a small alpha. On diabetes (targets 25–346) the default fit's test R² was −1.1 on raw targets and 0.15
  normalized (``ConvexReLURegressor`` docstring).

``network_`` (and ``networks_``) act on the *standardized* inputs (X − mean_) / scale_ and
their NC objective on those inputs (and normalized targets) with β = ``beta_`` is ``objective_``.
"""

from __future__ import annotations

import numbers
import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, column_or_1d, validate_data

from .activations import DEFAULT_NEGATIVE_SLOPE, activation_from
from .data import add_bias
from .devices import compute_device
from .network import TwoLayerNet
from .patterns import Patterns, sample_patterns
from .pattern_search import SearchOptions
from .training import DEFAULT_SAMPLED_PATTERNS, FORMULATIONS, SOLVERS, check_time_limit, fit as convex_fit, \
    nonconvex_init, resolve_patterns

__all__ = ["ConvexReLUClassifier", "ConvexReLURegressor"]


def _fallback_pattern(Xt: np.ndarray, n_patterns, seed) -> Patterns:
    """One nonzero pattern when every sampled one was zero (all rows inactive).

    Of the gates h and −h at least one activates a row (a row with xᵀh = 0 is active under
    the ``>=`` tie rule), so the first such signed gate gives a realizable nonzero pattern.
    """
    k = n_patterns if isinstance(n_patterns, numbers.Integral) else DEFAULT_SAMPLED_PATTERNS
    gates = sample_patterns(Xt, int(k), seed=seed, drop_zero=False).gates
    for h in np.hstack([gates, -gates]).T:
        mask = Xt @ h >= 0
        if mask.any():
            return Patterns(mask[:, None], h[:, None], complete=False, method="sampled+negated")
    raise RuntimeError("no nonzero activation pattern found.")  # unreachable: see the docstring


# ---------------------------------------------------------------------- shared machinery


class _ConvexReLUBase(BaseEstimator):
    """Hyper-parameter checks, standardization, pattern sampling and the call to ``cvxnn.fit``."""

    _LOSSES: tuple = ("squared",)

    def __init__(self, alpha=1e-3, n_patterns=50, formulation="relu", fit_intercept=True, standardize=True,
                 random_state=0, activation="relu", negative_slope=DEFAULT_NEGATIVE_SLOPE, loss="squared",
                 solver="auto", search=None, tol=1e-6, time_limit=None, init_nonconvex=None, device="cpu",
                 verbose=0):
        self.alpha = alpha
        self.n_patterns = n_patterns
        self.formulation = formulation
        self.fit_intercept = fit_intercept
        self.standardize = standardize
        self.random_state = random_state
        self.activation = activation
        self.negative_slope = negative_slope
        self.loss = loss
        self.solver = solver
        self.search = search
        self.tol = tol
        self.time_limit = time_limit
        self.init_nonconvex = init_nonconvex
        self.device = device
        self.verbose = verbose

    # -------------------------------------------------------------- parameters
    def _check_params(self) -> None:
        name = type(self).__name__
        a = self.alpha
        if isinstance(a, (bool, np.bool_)) or not isinstance(a, numbers.Real):
            raise TypeError(f"{name}: alpha must be a positive real number, got {a!r}.")
        if not np.isfinite(a) or a <= 0:
            raise ValueError(f"{name}: alpha must be a positive finite number (the weight decay per sample), "
                             f"got {a!r}.")
        p = self.n_patterns
        if p is not None and not (isinstance(p, str) and p == "all"):
            if isinstance(p, (bool, np.bool_)) or not isinstance(p, numbers.Integral):
                raise TypeError(f"{name}: n_patterns must be a positive integer, 'all' or None, got {p!r}.")
            if p < 1:
                raise ValueError(f"{name}: n_patterns must be a positive integer, 'all' or None, got {p!r}.")
        if self.formulation not in FORMULATIONS:
            raise ValueError(f"{name}: formulation must be one of {FORMULATIONS}, got {self.formulation!r}.")
        for attr in ("fit_intercept", "standardize"):
            if not isinstance(getattr(self, attr), (bool, np.bool_)):
                raise TypeError(f"{name}: {attr} must be True or False, got {getattr(self, attr)!r}.")
        if self.solver not in SOLVERS:
            raise ValueError(f"{name}: solver must be one of {SOLVERS}, got {self.solver!r}.")
        if not (self.search is None or isinstance(self.search, (bool, np.bool_, SearchOptions))):
            raise TypeError(f"{name}: search must be None, True, False or a cvxnn.SearchOptions, got {self.search!r}.")
        if self.init_nonconvex is not None:
            try:
                nonconvex_init(self.init_nonconvex)
            except (TypeError, ValueError) as exc:
                raise type(exc)(f"{name}: {exc}") from None
        t = self.tol
        if isinstance(t, (bool, np.bool_)) or not isinstance(t, numbers.Real) or not (np.isfinite(t) and 0 < t < 1):
            raise ValueError(f"{name}: tol must be a number in (0, 1), got {t!r}.")
        for check, value in ((check_time_limit, self.time_limit), (compute_device, self.device)):
            try:
                check(value)
            except ValueError as exc:
                raise ValueError(f"{name}: {exc}") from None
        v = self.verbose
        if not isinstance(v, (numbers.Integral, np.bool_)) or v < 0:
            raise ValueError(f"{name}: verbose must be a non-negative integer or a bool, got {v!r}.")
        rs = self.random_state
        if not (rs is None or isinstance(rs, (numbers.Integral, np.random.RandomState, np.random.Generator))) \
                or isinstance(rs, (bool, np.bool_)):
            raise TypeError(f"{name}: random_state must be None, an int, a numpy RandomState or Generator, "
                            f"got {rs!r}.")
        try:
            activation_from(self.activation, self.negative_slope)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{name}: {exc}") from None
        if self.loss not in self._LOSSES:
            raise ValueError(f"{name}: loss must be one of {self._LOSSES}, got {self.loss!r}.")

    def _seed(self):
        """The seed handed to the pattern sampler: ints, None and Generators as given."""
        rs = self.random_state
        if isinstance(rs, np.random.RandomState):
            return int(rs.randint(np.iinfo(np.int32).max))
        return rs

    # -------------------------------------------------------------- preprocessing
    def _fit_scaling(self, X: np.ndarray) -> np.ndarray:
        d = X.shape[1]
        if self.standardize:
            mean = X.mean(axis=0)
            scale = X.std(axis=0)
            # constant columns (up to round-off) keep scale 1, like StandardScaler
            tiny = 10 * np.finfo(np.float64).eps * np.maximum(1.0, np.abs(mean))
            scale = np.where(scale <= tiny, 1.0, scale)
        else:
            mean, scale = np.zeros(d), np.ones(d)
        self.mean_, self.scale_ = mean, scale
        return self._scale(X)

    def _scale(self, X: np.ndarray) -> np.ndarray:
        return (np.asarray(X, dtype=np.float64) - self.mean_) / self.scale_

    def _validate_X_predict(self, X) -> np.ndarray:
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=np.float64)
        return self._scale(X)

    # -------------------------------------------------------------- patterns & solves
    def _patterns(self, Xs: np.ndarray) -> Patterns:
        """One pattern list for the design matrix (with the ones column when fitting an intercept)."""
        Xt = add_bias(Xs) if self.fit_intercept else Xs
        seed = self._seed()
        pats = resolve_patterns(Xt, self.n_patterns, seed=seed)
        if len(pats) == 0:
            # Every sampled gate h had Xh < 0 on all rows (possible only for tiny or degenerate
            # data, e.g. a single sample): then -h activates every row. Use one nonzero pattern
            # so that the model is not forced to be zero.
            pats = _fallback_pattern(Xt, self.n_patterns, seed)
        return pats

    def _solve(self, Xs: np.ndarray, y: np.ndarray, beta: float, pats: Patterns, loss: str = "squared"):
        return convex_fit(Xs, y, beta, patterns=pats, formulation=self.formulation, bias=bool(self.fit_intercept),
                          activation=self.activation, negative_slope=self.negative_slope, loss=loss,
                          solver=self.solver, search=bool(self.search) if isinstance(self.search, (bool, np.bool_))
                          else self.search, tol=float(self.tol), seed=self._seed(),
                          time_limit=self.time_limit, init_nonconvex=self.init_nonconvex, device=self.device,
                          progress=self.verbose > 0)

    def _store_fits(self, fits: list, beta: float, pats: Patterns) -> None:
        """Totals over the independent scalar programs (one for regression and binary problems)."""
        self.beta_ = beta
        self.patterns_ = pats
        self.objective_ = float(sum(f.network_objective for f in fits))
        self.lower_bound_ = float(sum(f.lower_bound for f in fits))
        self.dual_gap_ = (self.objective_ - self.lower_bound_) / max(abs(self.objective_), 1e-300)
        self.n_neurons_ = int(sum(f.n_neurons for f in fits))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = False
        tags.input_tags.allow_nan = False
        return tags


_PARAMS_DOC = """
    Parameters
    ----------
    alpha : float, default=1e-3
        Weight decay in the mean-loss convention (see the objective above); must be > 0.
        ``cvxnn.fit`` is called with ``beta = n_samples * alpha``.
    n_patterns : int, "all" or None, default=50
        Activation patterns of the convex program: an int samples that many Gaussian gates
        (duplicates removed, so fewer may remain); ``"all"`` enumerates every pattern (exact
        and globally certified, feasible only for small rank); None enumerates when at most
        1000 patterns are predicted and samples 100 otherwise. The solver is exact but its cost
        grows with n_samples x n_features x patterns: keep it small for large data.
    formulation : {"relu", "gated"}, default="relu"
        "relu": the exact cone-constrained program, whose optimum equals the best network
        using the listed patterns. "gated": the group-lasso relaxation, turned into a ReLU
        network by the cone decomposition (``objective_`` is then that network's objective,
        which may exceed the relaxation's optimum).
    fit_intercept : bool, default=True
        Append a ones column so each neuron has a (penalized) bias (``cvxnn.fit(..., bias=True)``).
    standardize : bool, default=True
        Standardize the features inside ``fit`` (mean 0, population std 1; constant features
        get scale 1). The statistics are stored in ``mean_`` and ``scale_`` and re-applied by
        ``predict``. The regularization acts on the standardized inputs.
    solver : {"auto", "reference", "fista", "ipm", "al"}, default="auto"
        The solver of ``cvxnn.fit`` ("auto" picks by problem size and formulation; "fista" solves
        the gated program only, "ipm" and "al" the ReLU program only).
    search : None, bool or cvxnn.SearchOptions, default=None
        Pattern search (column generation) from the ``n_patterns`` list: True for the default
        budget, a ``cvxnn.SearchOptions`` for another; for either formulation (the gated one searches its own
        dual constraint; the ReLU one also moves its network by Adam steps each round). The grown list of each
        program is in ``convex_fit_.patterns`` (``convex_fits_[k].patterns``).
    tol : float, default=1e-6
        Relative duality gap at which the iterative solvers stop.
    time_limit : float or None, default=None
        Seconds each convex program (one per class for multi-class problems) may take, search included
        (``cvxnn.fit(..., time_limit=...)``); a solve cut short keeps its best certified point, and
        ``dual_gap_`` says how far it got (the reference solver's limit covers Clarabel, not cvxpy's
        canonicalization).
    init_nonconvex : None, int or cvxnn.NonconvexInit, default=None
        Short Adam runs (an int: their epochs) whose neuron patterns join the ``n_patterns`` list of each
        program, started from Ψ of the best run (``cvxnn.fit(..., init_nonconvex=...)``); with
        ``cvxnn.NonconvexInit(restarts=k)``, k runs. The fit is then never worse than that run's network.
    random_state : int, RandomState, Generator or None, default=0
        Seed of the pattern sampler (and of the search's random starts). An int is passed through as
        ``cvxnn.fit``'s ``seed``, so the same patterns are drawn as by
        ``cvxnn.fit(Xs, y, beta, patterns=n_patterns, seed=random_state)`` on the standardized data Xs.
    activation : {"relu", "leaky_relu", "abs"} or (a, b), default="relu"
        The hidden activation σ(t) = a(t)_+ + b(t)_- (``cvxnn.fit(..., activation=...)``).
    negative_slope : float, default=0.01
        Slope κ of "leaky_relu" (0 ≤ κ < 1); ignored otherwise.
    device : str or torch.device, default="cpu"
        Where the iterative solvers (and ``init_nonconvex``'s Adam runs) compute: "cpu", "cuda" or
        "cuda:<index>" (``cvxnn.fit(..., device=...)``); ``fit`` refuses a device PyTorch cannot reach.
    verbose : int or bool, default=0
        Above 0 (or True), each convex program shows its progress on stderr: the running solve's
        iterations and certified bounds, and the search rounds (``cvxnn.fit(..., progress=True)``).
"""

_COMMON_ATTRS_DOC = """
    mean_, scale_ : ndarray of shape (n_features_in_,)
        Standardization statistics (zeros and ones when ``standardize=False``).
    beta_ : float
        The weight decay handed to ``cvxnn.fit``: ``n_samples * alpha``.
    objective_ : float
        NC value ½‖f(Xs) − y‖² + (β/2) Σ_j (‖u_j‖² + α_j²) of the fitted network(s) on the
        standardized training inputs, with β = ``beta_`` (divide by n for the mean-loss value).
    lower_bound_ : float
        Dual lower bound on the optimum of the convex program on ``patterns_`` (on every
        network of any width when ``patterns_.complete``).
    dual_gap_ : float
        (objective_ − lower_bound_) / objective_: the relative duality gap certificate (for the
        program on the fit's final pattern list).
    n_neurons_ : int
        Number of hidden neurons of the fitted network (all classes together for multi-class).
    n_features_in_ : int
        Number of features seen during fit.
    feature_names_in_ : ndarray of str
        Feature names, when X had string column names.
    patterns_ : cvxnn.Patterns
        The activation patterns of the design matrix [Xs, 1] (or Xs) the program started from
        (with ``search``, the search adds to it per program).
"""


# ---------------------------------------------------------------------- regressor


class ConvexReLURegressor(RegressorMixin, _ConvexReLUBase):
    __doc__ = """Two-layer ReLU regression network trained to optimality by its convex program.

    Minimizes, over networks f(x) = Σ_j (x̃ᵀu_j)_+ α_j of any width whose neurons use the listed
    activation patterns (x̃ = [x_s, 1] with ``fit_intercept``, x_s the standardized features)::

        (1/(2n)) Σ_k (f(x_k) − y_k)² + (alpha/2) Σ_j (‖u_j‖² + α_j²)

    This equals NC/n for cvxnn's canonical NC = ½‖f(X) − y‖² + (β/2) Σ_j (‖u_j‖² + α_j²) with
    **β = n · alpha**, so ``fit`` calls ``cvxnn.fit(Xs, ỹ, beta=n_samples * alpha, bias=fit_intercept)``, where
    ỹ = (y − y_mean_) / y_scale_ are the normalized targets (``normalize_y=True``) or y itself.

    Several outputs (y of shape (n, c)): one network with c outputs, from the exact per-output program
    (``vector_penalty="per_output"`` of :mod:`cvxnn.training`; output penalty (alpha/2)Σ_j(‖u_j‖² + ‖α_j‖₁²), so
    each neuron feeds one output): with the squared loss, c independent programs on one pattern list.

    Normalizing the targets makes ``alpha`` independent of their unit. On diabetes (442 samples, targets
    25–346; 75/25 split, ``random_state=0``, 50 sampled patterns), test R² at alpha = 1e-3 / 1e-2 / 1e-1:
    −1.11 / −0.48 / 0.10 on the raw targets, 0.15 / 0.30 / 0.37 normalized (ridge regression with
    cross-validated alpha: 0.36; scikit-learn's MLPRegressor with 100 neurons: 0.28).
""" + _PARAMS_DOC + """    loss : {"squared"}, default="squared"
        The data term (the regressor fits the squared loss only).
    normalize_y : bool, default=True
        Centre the targets and divide them by their standard deviation inside ``fit`` (a constant target
        keeps scale 1); ``predict`` undoes it. ``objective_``, ``lower_bound_`` and ``network_`` refer to
        the normalized targets.
""" + """
    Attributes
    ----------
    network_ : cvxnn.TwoLayerNet
        The fitted network, acting on standardized inputs (X − mean_) / scale_ and predicting the
        normalized targets (y − y_mean_) / y_scale_.
    y_mean_, y_scale_ : float or ndarray of shape (n_outputs,)
        The targets' mean and standard deviation (0 and 1 when ``normalize_y=False``), per column for
        several outputs.
    n_iter_ : int
        Iterations of the (last) solve.
    convex_fit_ : cvxnn.ConvexFit
        The full result of ``cvxnn.fit`` (convex blocks, dual check, solver status).
""" + _COMMON_ATTRS_DOC

    def __init__(self, alpha=1e-3, n_patterns=50, formulation="relu", fit_intercept=True, standardize=True,
                 random_state=0, activation="relu", negative_slope=DEFAULT_NEGATIVE_SLOPE, loss="squared",
                 solver="auto", search=None, tol=1e-6, time_limit=None, init_nonconvex=None, device="cpu",
                 verbose=0, normalize_y=True):
        super().__init__(alpha=alpha, n_patterns=n_patterns, formulation=formulation, fit_intercept=fit_intercept,
                         standardize=standardize, random_state=random_state, activation=activation,
                         negative_slope=negative_slope, loss=loss, solver=solver, search=search, tol=tol,
                         time_limit=time_limit, init_nonconvex=init_nonconvex, device=device, verbose=verbose)
        self.normalize_y = normalize_y

    def fit(self, X, y):
        """Solve the convex program on (X, ỹ) and store the optimal network. Returns self."""
        self._check_params()
        if not isinstance(self.normalize_y, (bool, np.bool_)):
            raise TypeError(f"ConvexReLURegressor: normalize_y must be True or False, got {self.normalize_y!r}.")
        X, y = validate_data(self, X, y, dtype=np.float64, multi_output=True, y_numeric=True)
        if sp.issparse(y):
            raise ValueError("ConvexReLURegressor needs a dense target vector y, got a sparse matrix.")
        y = np.asarray(y)
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        y = self._normalize_targets(y.astype(np.float64))
        n = X.shape[0]
        Xs = self._fit_scaling(X)
        beta = float(n * self.alpha)
        pats = self._patterns(Xs)
        res = self._solve(Xs, y, beta, pats)
        self.convex_fit_ = res
        self.network_ = res.network
        self.n_iter_ = int(res.n_iter)
        self._store_fits([res], beta, pats)
        return self

    def _normalize_targets(self, y: np.ndarray) -> np.ndarray:
        """ỹ = (y − y_mean_) / y_scale_ per column, storing the statistics (floats for one output; a constant
        column keeps scale 1)."""
        if self.normalize_y:
            mean, scale = y.mean(axis=0), y.std(axis=0)
            scale = np.where(scale <= 10 * np.finfo(np.float64).eps * np.maximum(1.0, np.abs(mean)), 1.0, scale)
        else:
            mean, scale = np.zeros(y.shape[1:]), np.ones(y.shape[1:])
        self.y_mean_, self.y_scale_ = (float(mean), float(scale)) if y.ndim == 1 else (mean, scale)
        return (y - mean) / scale

    def predict(self, X):
        """y_mean_ + y_scale_ · f((X − mean_) / scale_), shape (n_samples,) or (n_samples, n_outputs)."""
        Xs = self._validate_X_predict(X)
        return self.y_mean_ + self.y_scale_ * np.asarray(self.network_.predict(Xs), dtype=np.float64)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags


# ---------------------------------------------------------------------- classifier


class ConvexReLUClassifier(ClassifierMixin, _ConvexReLUBase):
    __doc__ = """Two-layer ReLU classifier trained to optimality by its convex program.

    The loss (``loss``) defaults to ``"log_loss"``, what scikit-learn's LogisticRegression and
    MLPClassifier minimize: the logistic loss for two classes and softmax cross-entropy for more.
    All objectives are NC/n with **β = n · alpha**, NC = L(f(Xs)) + (β/2) Σ_j (‖u_j‖² + ‖α_j‖²)
    (``cvxnn.fit(Xs, targets, beta=n_samples * alpha, loss=...)``).

    Binary (2 classes), targets t_k = +1 for ``classes_[1]`` and −1 for ``classes_[0]``:
    "log_loss"/"logistic" L = Σ_k log(1 + exp(−t_k f(x_k))); "hinge" L = Σ_k max(0, 1 − t_k f(x_k));
    "squared" L = ½ Σ_k (f(x_k) − t_k)². One scalar program; the decision function is f and
    ``predict`` returns ``classes_[1]`` where f > 0. With "cross_entropy" the network has two
    outputs and the decision function is their difference.

    Multi-class (c ≥ 3 classes): one network with c outputs, trained with the exact per-output
    program (``vector_penalty="per_output"``, see :mod:`cvxnn.training`), which is exact for the
    output penalty (β/2)Σ_j(‖u_j‖² + ‖α_j‖₁²) — equivalently for networks whose neurons each feed one
    class score. "log_loss"/"cross_entropy": softmax cross-entropy on the class indices;
    "logistic"/"hinge": one-vs-rest ±1 targets T (n x c), the loss summed over the c columns.
    "squared": one-vs-rest one-hot targets and, since the loss decouples (THEORY §1.7), one
    scalar program per class on one shared pattern list (``networks_``, ``convex_fits_``).
    ``decision_function`` gives the c scores and ``predict`` their argmax. Labels may be of any
    hashable, sortable type (e.g. strings); continuous targets are rejected.
""" + _PARAMS_DOC + """    loss : {"log_loss", "logistic", "cross_entropy", "hinge", "squared"}, default="log_loss"
        The data term; "log_loss" is "logistic" for two classes and "cross_entropy" for more.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        The class labels.
    loss_ : str
        The loss used ("log_loss" resolved).
    network_ : cvxnn.TwoLayerNet
        The fitted network (on standardized inputs): one output for binary problems with a
        scalar loss, c outputs otherwise (for "squared" multi-class: the c per-class networks
        stacked, with block-sparse output weights).
    networks_ : list of cvxnn.TwoLayerNet
        Multi-class "squared" only: network k scores ``classes_[k]``.
    n_iter_ : int or ndarray of shape (n_classes,)
        Solver iterations (per class for multi-class "squared").
    convex_fit_ : cvxnn.ConvexFit
        The full result of ``cvxnn.fit`` (all but multi-class "squared").
    convex_fits_ : list of cvxnn.ConvexFit
        Multi-class "squared" only: one result per class.
""" + _COMMON_ATTRS_DOC

    _LOSSES = ("log_loss", "logistic", "cross_entropy", "hinge", "squared")

    def __init__(self, alpha=1e-3, n_patterns=50, formulation="relu", fit_intercept=True, standardize=True,
                 random_state=0, activation="relu", negative_slope=DEFAULT_NEGATIVE_SLOPE, loss="log_loss",
                 solver="auto", search=None, tol=1e-6, time_limit=None, init_nonconvex=None, device="cpu",
                 verbose=0):
        super().__init__(alpha=alpha, n_patterns=n_patterns, formulation=formulation, fit_intercept=fit_intercept,
                         standardize=standardize, random_state=random_state, activation=activation,
                         negative_slope=negative_slope, loss=loss, solver=solver, search=search, tol=tol,
                         time_limit=time_limit, init_nonconvex=init_nonconvex, device=device, verbose=verbose)

    def fit(self, X, y):
        """Solve the convex program(s) on (X, y) and store the optimal network(s). Returns self."""
        self._check_params()
        X, y = validate_data(self, X, y, dtype=np.float64)
        check_classification_targets(y)
        classes, y_idx = np.unique(y, return_inverse=True)
        if classes.size < 2:
            raise ValueError(
                f"ConvexReLUClassifier needs samples of at least two classes, but y has only one class "
                f"({classes[0]!r}); a classifier cannot be trained on 1 class."
            )
        self.classes_ = classes
        c = classes.size
        loss = self.loss if self.loss != "log_loss" else ("logistic" if c == 2 else "cross_entropy")
        self.loss_ = loss
        n = X.shape[0]
        Xs = self._fit_scaling(X)
        beta = float(n * self.alpha)
        pats = self._patterns(Xs)
        signs = np.where(np.arange(c)[None, :] == y_idx[:, None], 1.0, -1.0)  # one-vs-rest ±1, (n, c)
        if c > 2 and loss == "squared":
            fits = [self._solve(Xs, (y_idx == k).astype(np.float64), beta, pats) for k in range(c)]
            self.convex_fits_ = fits
            self.networks_ = [f.network for f in fits]
            self.network_ = TwoLayerNet(np.vstack([f.network.W1 for f in fits]),
                                        np.vstack([np.outer(f.network.w2, np.eye(c)[k]) for k, f in enumerate(fits)]),
                                        bool(self.fit_intercept), fits[0].network.activation)
            self.n_iter_ = np.array([f.n_iter for f in fits], dtype=int)
        else:
            if loss == "cross_entropy":
                targets = y_idx
            else:
                targets = signs[:, 1] if c == 2 else signs
            res = self._solve(Xs, targets, beta, pats, loss)
            self.convex_fit_ = res
            self.network_ = res.network
            self.n_iter_ = int(res.n_iter)
            fits = [res]
        self._store_fits(fits, beta, pats)
        return self

    def decision_function(self, X):
        """f(Xs), shape (n_samples,) for binary problems; the c class scores, (n_samples, c), otherwise."""
        Xs = self._validate_X_predict(X)
        scores = np.asarray(self.network_.predict(Xs), dtype=np.float64)
        if self.classes_.size == 2 and scores.ndim == 2:
            return scores[:, 1] - scores[:, 0]
        return scores

    def predict(self, X):
        """``classes_[1]`` where f > 0 else ``classes_[0]`` (binary); the argmax class (multi-class)."""
        scores = self.decision_function(X)
        if scores.ndim == 1:
            return self.classes_[(scores > 0).astype(int)]
        return self.classes_[np.argmax(scores, axis=1)]
