"""scikit-learn estimators: API compliance, the β = n·alpha mapping, accuracy and certificates."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.datasets import load_breast_cancer, load_iris
from sklearn.exceptions import NotFittedError
from sklearn.utils.estimator_checks import parametrize_with_checks

import cvxnn
from cvxnn.estimators import ConvexReLUClassifier, ConvexReLURegressor

SMALL = dict(n_patterns=8)


# ---------------------------------------------------------------------- scikit-learn's own checks


@parametrize_with_checks([ConvexReLURegressor(**SMALL), ConvexReLUClassifier(**SMALL)])
def test_sklearn_compatible(estimator, check):
    check(estimator)


# ---------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def regression_data():
    rng = np.random.default_rng(3)
    X = rng.standard_normal((40, 3)) * np.array([1.0, 5.0, 0.2]) + np.array([0.0, 3.0, -1.0])
    y = np.sin(X[:, 0]) + 0.3 * X[:, 1] - X[:, 2] + 0.1 * rng.standard_normal(40)
    return X, y


@pytest.fixture(scope="module")
def breast_cancer():
    X, y = load_breast_cancer(return_X_y=True)
    return X[:200], y[:200], X[200:400], y[200:400]


@pytest.fixture(scope="module")
def iris():
    return load_iris(return_X_y=True)


@pytest.fixture(scope="module")
def iris_fit(iris):
    X, y = iris
    return ConvexReLUClassifier(n_patterns=10, loss="squared").fit(X, y)


# ---------------------------------------------------------------------- regressor


def test_regressor_objective_is_nc_with_beta_n_alpha(regression_data):
    X, y = regression_data
    n, alpha = X.shape[0], 0.02
    est = ConvexReLURegressor(alpha=alpha, n_patterns=10).fit(X, y)
    Xs = (X - X.mean(axis=0)) / X.std(axis=0)
    ys = (y - y.mean()) / y.std()
    np.testing.assert_allclose(est.mean_, X.mean(axis=0))
    np.testing.assert_allclose(est.scale_, X.std(axis=0))
    assert (est.y_mean_, est.y_scale_) == (pytest.approx(y.mean(), rel=1e-14), pytest.approx(y.std(), rel=1e-14))
    assert est.beta_ == pytest.approx(n * alpha, rel=1e-15)
    net = est.network_
    # NC on the standardized data and normalized targets with beta = n * alpha
    assert est.objective_ == pytest.approx(net.objective(Xs, ys, n * alpha), rel=1e-8)
    # ... which is n times the mean-loss objective (1/(2n))||f - y||^2 + (alpha/2) sum(||u||^2 + a^2)
    r = net.predict(Xs) - ys
    mean_objective = 0.5 * np.mean(r**2) + alpha * net.penalty()
    assert est.objective_ == pytest.approx(n * mean_objective, rel=1e-8)
    # ... and the optimum of cvxnn.fit on the same program
    ref = cvxnn.fit(Xs, ys, n * alpha, patterns=est.patterns_, bias=True)
    assert est.objective_ == pytest.approx(ref.objective, rel=1e-8)
    np.testing.assert_allclose(est.predict(X), y.mean() + y.std() * net.predict(Xs), rtol=1e-12, atol=1e-12)
    assert net.bias and net.n_features == X.shape[1]
    assert est.n_neurons_ == net.width
    assert est.n_features_in_ == 3
    assert isinstance(est.n_iter_, int) and est.n_iter_ > 0
    assert 0 <= est.dual_gap_ < 1e-5
    assert est.lower_bound_ <= est.objective_ * (1 + 1e-12)
    assert est.score(X, y) > 0.9


def test_regressor_same_patterns_as_cvxnn_fit(regression_data):
    """An int random_state is cvxnn.fit's seed: the same patterns are sampled."""
    X, y = regression_data
    est = ConvexReLURegressor(n_patterns=12, random_state=5).fit(X, y)
    Xs = (X - est.mean_) / est.scale_
    ref = cvxnn.fit(Xs, (y - est.y_mean_) / est.y_scale_, X.shape[0] * est.alpha, patterns=12, bias=True, seed=5)
    np.testing.assert_array_equal(est.patterns_.masks, ref.patterns.masks)
    assert est.objective_ == pytest.approx(ref.network_objective, rel=1e-8)


def test_regressor_without_scaling_or_intercept(regression_data):
    X, y = regression_data
    est = ConvexReLURegressor(n_patterns=8, standardize=False, fit_intercept=False, normalize_y=False).fit(X, y)
    np.testing.assert_array_equal(est.mean_, 0.0)
    np.testing.assert_array_equal(est.scale_, 1.0)
    assert (est.y_mean_, est.y_scale_) == (0.0, 1.0)
    assert not est.network_.bias
    assert est.objective_ == pytest.approx(est.network_.objective(X, y, X.shape[0] * est.alpha), rel=1e-8)
    np.testing.assert_allclose(est.predict(X), est.network_.predict(X), rtol=1e-12, atol=1e-12)


def test_regressor_gated(regression_data):
    X, y = regression_data
    est = ConvexReLURegressor(n_patterns=8, formulation="gated").fit(X, y)
    Xs = (X - est.mean_) / est.scale_
    # objective_ is the NC value of the ReLU network obtained by the cone decomposition
    assert est.objective_ == pytest.approx(est.network_.objective(Xs, (y - y.mean()) / y.std(), est.beta_), rel=1e-8)
    assert est.lower_bound_ <= est.objective_
    assert est.score(X, y) > 0.8


def test_normalized_targets_make_the_fit_independent_of_their_unit(regression_data):
    """With normalize_y, targets a·y + b give the same network and predictions a·f + b (a > 0); without it the
    fit on raw targets is cvxnn.fit's on y itself, and it differs."""
    X, y = regression_data
    base = ConvexReLURegressor(alpha=0.01, n_patterns=10).fit(X, y)
    moved = ConvexReLURegressor(alpha=0.01, n_patterns=10).fit(X, 250.0 * y + 1000.0)
    assert moved.objective_ == pytest.approx(base.objective_, rel=1e-7)
    np.testing.assert_allclose(moved.predict(X), 250.0 * base.predict(X) + 1000.0, rtol=1e-7)
    raw = ConvexReLURegressor(alpha=0.01, n_patterns=10, normalize_y=False).fit(X, 250.0 * y + 1000.0)
    ref = cvxnn.fit((X - raw.mean_) / raw.scale_, 250.0 * y + 1000.0, X.shape[0] * 0.01, patterns=raw.patterns_,
                    bias=True)
    assert raw.objective_ == pytest.approx(ref.objective, rel=1e-7)
    assert abs(raw.score(X, 250.0 * y + 1000.0) - moved.score(X, 250.0 * y + 1000.0)) > 1e-3
    constant = ConvexReLURegressor(n_patterns=4).fit(X, np.full(len(y), 3.5))
    assert constant.y_scale_ == 1.0 and constant.n_neurons_ == 0
    np.testing.assert_allclose(constant.predict(X), 3.5, rtol=1e-12)
    with pytest.raises(TypeError, match="normalize_y must be True or False"):
        ConvexReLURegressor(normalize_y="yes").fit(X, y)


def test_regressor_with_two_outputs_is_two_per_output_programs_on_one_pattern_list(regression_data):
    """With the squared loss the per-output program decouples: the two-output fit equals one fit per column
    (same patterns), in objective, certificate and predictions; each column is normalized on its own."""
    X, y = regression_data
    Y = np.column_stack([y, 40.0 * np.maximum(X[:, 0] - 0.5, 0.0) + 100.0])
    both = ConvexReLURegressor(alpha=0.01, n_patterns=10, tol=1e-8).fit(X, Y)
    cols = [ConvexReLURegressor(alpha=0.01, n_patterns=10, tol=1e-8).fit(X, Y[:, k]) for k in range(2)]
    np.testing.assert_allclose(both.y_mean_, Y.mean(axis=0), rtol=1e-14)
    np.testing.assert_allclose(both.y_scale_, Y.std(axis=0), rtol=1e-14)
    assert both.network_.n_outputs == 2 and both.predict(X).shape == (len(y), 2)
    assert both.objective_ == pytest.approx(sum(c.objective_ for c in cols), rel=1e-6)
    assert 0 <= both.dual_gap_ <= 1e-6
    for k in range(2):
        np.testing.assert_allclose(both.predict(X)[:, k], cols[k].predict(X), rtol=1e-4, atol=1e-4 * Y[:, k].std())
    assert both.score(X, Y) > 0.8


def test_regressor_column_target_warns_and_fits(regression_data):
    from sklearn.exceptions import DataConversionWarning

    X, y = regression_data
    with pytest.warns(DataConversionWarning):
        est = ConvexReLURegressor(**SMALL).fit(X, y[:, None])
    assert est.predict(X).shape == (X.shape[0],)


def test_constant_feature_and_single_sample():
    X = np.column_stack([np.linspace(-1, 1, 12), np.full(12, 7.0)])
    y = X[:, 0] ** 2
    est = ConvexReLURegressor(**SMALL).fit(X, y)
    assert est.scale_[1] == 1.0 and est.mean_[1] == 7.0
    assert np.all(np.isfinite(est.predict(X)))
    one = ConvexReLURegressor(**SMALL).fit([[2.0, 3.0]], [1.5])
    assert np.all(np.isfinite(one.predict([[2.0, 3.0], [0.0, 0.0]])))


# ---------------------------------------------------------------------- classifier


def test_binary_breast_cancer(breast_cancer):
    X, y, X_test, y_test = breast_cancer
    est = ConvexReLUClassifier(**SMALL, loss="squared").fit(X, y)
    assert est.score(X, y) > 0.9
    assert est.score(X_test, y_test) > 0.9
    assert 0 <= est.dual_gap_ < 1e-5
    np.testing.assert_array_equal(est.classes_, [0, 1])
    assert not hasattr(est, "networks_")
    # binary: one program on ±1 targets, decision function = the network, predict = its sign
    Xs = (X - est.mean_) / est.scale_
    t = np.where(y == 1, 1.0, -1.0)
    assert est.objective_ == pytest.approx(est.network_.objective(Xs, t, X.shape[0] * est.alpha), rel=1e-8)
    scores = est.decision_function(X_test)
    assert scores.shape == (X_test.shape[0],)
    np.testing.assert_array_equal(est.predict(X_test), est.classes_[(scores > 0).astype(int)])


def test_multiclass_iris(iris, iris_fit):
    X, y = iris
    est = iris_fit
    assert est.score(X, y) > 0.9
    assert 0 <= est.dual_gap_ < 1e-5
    assert len(est.networks_) == 3 and est.network_.n_outputs == 3
    assert est.n_iter_.shape == (3,)
    assert est.n_neurons_ == sum(net.width for net in est.networks_)
    scores = est.decision_function(X)
    assert scores.shape == (X.shape[0], 3)
    np.testing.assert_array_equal(est.predict(X), est.classes_[np.argmax(scores, axis=1)])
    # one-vs-rest one-hot programs on one shared pattern list; objective_ is the sum of the per-class NCs
    Xs = (X - est.mean_) / est.scale_
    beta = X.shape[0] * est.alpha
    total = sum(net.objective(Xs, (y == k).astype(float), beta) for k, net in enumerate(est.networks_))
    assert est.objective_ == pytest.approx(total, rel=1e-8)
    for f in est.convex_fits_:
        assert f.patterns is est.patterns_


def test_multiclass_is_vector_network_with_l1_output_penalty(iris, iris_fit):
    """THEORY §1.7: stacking the per-class networks gives a vector net whose NC with the
    (β/2)(‖u_j‖² + ‖α_j‖₁²) penalty equals objective_."""
    X, y = iris
    est = iris_fit
    Xs = np.hstack([(X - est.mean_) / est.scale_, np.ones((X.shape[0], 1))])
    W1 = np.vstack([net.W1 for net in est.networks_])
    A = np.zeros((W1.shape[0], 3))
    row = 0
    for k, net in enumerate(est.networks_):
        A[row:row + net.width, k] = net.w2
        row += net.width
    F = np.maximum(Xs @ W1.T, 0.0) @ A
    T = np.eye(3)[y]
    beta = X.shape[0] * est.alpha
    nc = 0.5 * np.sum((F - T) ** 2) + 0.5 * beta * (np.sum(W1**2) + np.sum(np.abs(A).sum(axis=1) ** 2))
    assert est.objective_ == pytest.approx(nc, rel=1e-8)


def test_string_labels(iris):
    X, y = iris
    names = np.array(["setosa", "versicolor", "virginica"])[y]
    est = ConvexReLUClassifier(**SMALL).fit(X, names)
    np.testing.assert_array_equal(est.classes_, ["setosa", "versicolor", "virginica"])
    pred = est.predict(X)
    assert pred.dtype.kind == "U" and set(pred) <= set(est.classes_)
    assert est.score(X, names) > 0.9
    binary = names != "setosa"
    est2 = ConvexReLUClassifier(**SMALL).fit(X[binary], names[binary])
    np.testing.assert_array_equal(est2.classes_, ["versicolor", "virginica"])
    assert est2.score(X[binary], names[binary]) > 0.9


def test_classifier_rejects_continuous_targets(iris):
    X, _ = iris
    with pytest.raises(ValueError, match="Unknown label type"):
        ConvexReLUClassifier(**SMALL).fit(X, np.linspace(0.0, 1.0, X.shape[0]))


def test_classifier_rejects_one_class(iris):
    X, _ = iris
    with pytest.raises(ValueError, match="at least two classes"):
        ConvexReLUClassifier(**SMALL).fit(X, np.zeros(X.shape[0], dtype=int))


# ---------------------------------------------------------------------- parameters and plumbing


@pytest.mark.parametrize("params, error, match", [
    (dict(alpha=0.0), ValueError, "alpha"),
    (dict(alpha=-1.0), ValueError, "alpha"),
    (dict(alpha="big"), TypeError, "alpha"),
    (dict(n_patterns=0), ValueError, "n_patterns"),
    (dict(n_patterns=2.5), TypeError, "n_patterns"),
    (dict(n_patterns="some"), TypeError, "n_patterns"),
    (dict(formulation="leaky"), ValueError, "formulation"),
    (dict(fit_intercept="yes"), TypeError, "fit_intercept"),
    (dict(standardize=None), TypeError, "standardize"),
    (dict(random_state="seed"), TypeError, "random_state"),
    (dict(time_limit=0), ValueError, "time_limit"),
    (dict(time_limit="1"), ValueError, "time_limit"),
    (dict(time_limit=float("inf")), ValueError, "time_limit"),
    (dict(verbose=-1), ValueError, "verbose"),
    (dict(verbose="loud"), ValueError, "verbose"),
])
def test_bad_hyper_parameters(params, error, match, regression_data):
    X, y = regression_data
    with pytest.raises(error, match=match):
        ConvexReLURegressor(**params).fit(X, y)


def test_init_stores_parameters_unmodified():
    rs = np.random.RandomState(0)
    est = ConvexReLUClassifier(alpha=2, n_patterns="all", formulation="gated", fit_intercept=False,
                               standardize=False, random_state=rs)
    assert est.get_params() == dict(alpha=2, n_patterns="all", formulation="gated", fit_intercept=False,
                                    standardize=False, random_state=rs, activation="relu", negative_slope=0.01,
                                    loss="log_loss", solver="auto", search=None, tol=1e-6, time_limit=None,
                                    init_nonconvex=None, device="cpu", verbose=0)


@pytest.mark.parametrize("verbose", [0, 1, True])
def test_verbose_shows_the_solve_on_stderr(verbose, iris, capsys):
    X, y = iris
    ConvexReLUClassifier(**SMALL, verbose=verbose).fit(X, y)
    assert ("solve" in capsys.readouterr().err) == bool(verbose)


def test_a_time_limit_reaches_the_solver_and_keeps_a_certified_fit(regression_data):
    X, y = regression_data
    full = ConvexReLURegressor(alpha=1e-3, n_patterns=30, solver="ipm", tol=1e-8).fit(X, y)
    cut = ConvexReLURegressor(alpha=1e-3, n_patterns=30, solver="ipm", tol=1e-8, time_limit=1e-6).fit(X, y)
    assert full.convex_fit_.status == "optimal" and cut.convex_fit_.status == "time_limit"
    assert 0 <= full.dual_gap_ <= 1e-8 < cut.dual_gap_
    assert cut.lower_bound_ <= full.objective_ * (1 + 1e-9) and np.all(np.isfinite(cut.predict(X)))


def test_nonconvex_seed_runs_join_the_pattern_list(regression_data):
    """init_nonconvex reaches cvxnn.fit: the seed runs' patterns join the 10 sampled ones, so the program is
    solved on a superset and its optimum is at most the sampled list's; bad values are refused at fit."""
    X, y = regression_data
    plain = ConvexReLURegressor(alpha=1e-2, n_patterns=10).fit(X, y)
    seeded = ConvexReLURegressor(alpha=1e-2, n_patterns=10,
                                 init_nonconvex=cvxnn.NonconvexInit(epochs=60, width=6, restarts=2)).fit(X, y)
    sampled = {plain.convex_fit_.patterns.masks[:, i].tobytes() for i in range(len(plain.convex_fit_.patterns))}
    grown = {seeded.convex_fit_.patterns.masks[:, i].tobytes() for i in range(len(seeded.convex_fit_.patterns))}
    assert sampled < grown
    assert seeded.objective_ <= plain.objective_ * (1 + 1e-6)
    assert seeded.convex_fit_.search.init_objective >= seeded.objective_ * (1 - 1e-9)
    assert clone(seeded).get_params()["init_nonconvex"] == seeded.init_nonconvex
    for bad, error in ((0, ValueError), (True, TypeError), (2.5, TypeError), ("adam", TypeError)):
        with pytest.raises(error, match="ConvexReLURegressor: init_nonconvex"):
            ConvexReLURegressor(init_nonconvex=bad).fit(X, y)


def test_all_patterns_give_a_global_certificate():
    rng = np.random.default_rng(0)
    X = rng.uniform(-2, 2, size=(8, 1))
    y = np.sin(2 * X[:, 0])
    est = ConvexReLURegressor(alpha=0.05 / 8, n_patterns="all").fit(X, y)
    assert est.patterns_.complete and len(est.patterns_) == 16  # 1-D plus bias: 2n patterns
    assert 0 <= est.dual_gap_ < 1e-5


def test_random_state_reproducible_and_random_state_instance(regression_data):
    X, y = regression_data
    a = ConvexReLURegressor(n_patterns=8, random_state=1).fit(X, y)
    b = clone(a).fit(X, y)
    np.testing.assert_array_equal(a.patterns_.masks, b.patterns_.masks)
    np.testing.assert_array_equal(a.predict(X), b.predict(X))
    c = ConvexReLURegressor(n_patterns=8, random_state=np.random.RandomState(1)).fit(X, y)
    assert np.all(np.isfinite(c.predict(X)))


def test_unfitted_and_pickle(iris_fit, iris):
    X, _ = iris
    with pytest.raises(NotFittedError):
        ConvexReLUClassifier().predict(X)
    again = pickle.loads(pickle.dumps(iris_fit))
    np.testing.assert_array_equal(again.decision_function(X), iris_fit.decision_function(X))


def test_feature_count_checked_at_predict(iris_fit, iris):
    X, _ = iris
    with pytest.raises(ValueError, match="features"):
        iris_fit.predict(X[:, :3])


def test_all_sampled_patterns_zero_falls_back_to_negated_gate():
    """random_state=4 draws one gate h < 0, so 1[Xh >= 0] is zero on positive data; -h is used."""
    X, y = np.array([[1.0], [2.0]]), np.array([1.0, 2.0])
    est = ConvexReLURegressor(n_patterns=1, random_state=4, fit_intercept=False, standardize=False,
                              normalize_y=False).fit(X, y)
    assert est.patterns_.method == "sampled+negated"
    np.testing.assert_array_equal(est.patterns_.masks, [[True], [True]])
    np.testing.assert_allclose(est.predict(X), y, rtol=1e-2)


def test_classifier_default_loss_is_log_loss(iris):
    """log_loss resolves to logistic (binary) and cross-entropy (multi-class), as in scikit-learn."""
    X, y = iris
    binary = y < 2
    est = ConvexReLUClassifier(n_patterns=6).fit(X[binary], y[binary])
    assert est.loss_ == "logistic" and est.network_.n_outputs == 1
    assert est.score(X[binary], y[binary]) == 1.0 and est.dual_gap_ < 1e-5
    Xs = (X[binary] - est.mean_) / est.scale_
    t = np.where(y[binary] == 1, 1.0, -1.0)
    assert est.objective_ == pytest.approx(est.network_.objective(Xs, t, est.beta_, loss="logistic"), rel=1e-8)
    multi = ConvexReLUClassifier(n_patterns=10).fit(X, y)
    assert multi.loss_ == "cross_entropy" and multi.network_.n_outputs == 3
    assert multi.score(X, y) > 0.9 and multi.dual_gap_ < 1e-5
    leaky = ConvexReLUClassifier(alpha=1e-2, n_patterns=6, activation="leaky_relu", negative_slope=0.1).fit(X, y)
    assert leaky.network_.activation.name == "leaky_relu" and leaky.dual_gap_ < 1e-5
    assert multi.decision_function(X).shape == (X.shape[0], 3)


def test_classifier_rejects_unknown_loss_and_activation(iris):
    X, y = iris
    with pytest.raises(ValueError, match="loss must be one of"):
        ConvexReLUClassifier(loss="exponential").fit(X, y)
    with pytest.raises(ValueError, match="activation"):
        ConvexReLUClassifier(activation="tanh").fit(X, y)
