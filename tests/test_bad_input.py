"""Every bad input gets a clear error that names the problem and the fix, and loses nothing."""
import numpy as np
import pytest

import cvxnn
from cvxnn.data import load_csv


@pytest.fixture
def Xy():
    rng = np.random.default_rng(0)
    return rng.standard_normal((10, 2)), rng.standard_normal(10)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_features_and_targets(Xy, bad):
    X, y = Xy
    X2 = X.copy()
    X2[3, 1] = bad
    with pytest.raises(ValueError, match=r"X contains 1 non-finite value.*\(3, 1\).*impute"):
        cvxnn.fit(X2, y, 0.1, patterns=5)
    y2 = y.copy()
    y2[4] = bad
    with pytest.raises(ValueError, match=r"y contains 1 non-finite"):
        cvxnn.fit(X, y2, 0.1, patterns=5)


def test_shape_mismatch(Xy):
    X, y = Xy
    with pytest.raises(ValueError, match="X has 10 samples but y has 9"):
        cvxnn.fit(X, y[:9], 0.1, patterns=5)


def test_one_dimensional_X_names_the_fix(Xy):
    _, y = Xy
    with pytest.raises(ValueError, match=r"reshape\(-1, 1\)"):
        cvxnn.fit(np.arange(10.0), y, 0.1)


def test_empty_data():
    with pytest.raises(ValueError, match="empty"):
        cvxnn.fit(np.zeros((0, 3)), np.zeros(0), 0.1)
    with pytest.raises(ValueError, match="empty"):
        cvxnn.fit(np.zeros((4, 0)), np.zeros(4), 0.1)


def test_wrong_label_kinds(Xy):
    X, _ = Xy
    with pytest.raises(TypeError, match="ConvexReLUClassifier"):
        cvxnn.fit(X, np.array(["a", "b"] * 5), 0.1, patterns=5)
    with pytest.raises(TypeError, match="non-numeric"):
        cvxnn.fit(np.array([[1, "x"]] * 10, dtype=object), np.zeros(10), 0.1)
    with pytest.raises(ValueError, match="one target per sample"):
        cvxnn.fit(X, np.zeros((10, 2, 2)), 0.1, patterns=5)


@pytest.mark.parametrize("beta", [0, -1.0, np.nan, np.inf])
def test_invalid_beta(Xy, beta):
    X, y = Xy
    with pytest.raises(ValueError, match="beta must be a positive finite"):
        cvxnn.fit(X, y, beta, patterns=5)


def test_invalid_options(Xy):
    X, y = Xy
    with pytest.raises(ValueError, match="formulation"):
        cvxnn.fit(X, y, 0.1, formulation="relu6")
    with pytest.raises(ValueError, match="solver"):
        cvxnn.fit(X, y, 0.1, solver="magic")
    with pytest.raises(ValueError, match="n_patterns"):
        cvxnn.sample_patterns(X, 0)
    with pytest.raises(ValueError, match="patterns must be"):
        cvxnn.fit(X, y, 0.1, patterns="most")


def test_pattern_requests_that_would_exhaust_memory_are_refused_before_allocating():
    X = np.zeros((100_000, 3))
    X[:, 0] = 1.0
    with pytest.raises(MemoryError, match=r"GiB.*ask for fewer patterns"):
        cvxnn.sample_patterns(X, 10**9)
    rng = np.random.default_rng(0)
    X = rng.standard_normal((4000, 20))
    with pytest.raises(MemoryError, match="reference solver.*fewer patterns"):  # about 119 GiB for cvxpy
        cvxnn.fit(X, rng.standard_normal(4000), 1.0, patterns=4000, solver="reference")


def test_network_input_mismatch(Xy):
    X, y = Xy
    net = cvxnn.TwoLayerNet(np.ones((2, 3)), np.ones(2))
    with pytest.raises(ValueError, match="expects 3 features but X has 2"):
        net.predict(X)
    with pytest.raises(ValueError, match="2 neurons but w2 has 3"):
        cvxnn.TwoLayerNet(np.ones((2, 3)), np.ones(3))
    with pytest.raises(ValueError, match="NaN or inf"):
        cvxnn.TwoLayerNet(np.full((2, 3), np.nan), np.ones(2))


def test_csv_errors(tmp_path):
    good = tmp_path / "good.csv"
    good.write_text("a,b,label\n1,2,0\n3,4,1\n5,6,0\n")
    ds = load_csv(good, "label")
    assert ds.X.shape == (3, 2) and ds.task == "classification"
    with pytest.raises(ValueError, match="target column 'y' is not in.*a, b, label"):
        load_csv(good, "y")
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b,label\n1,x,0\n3,4,1\n")
    with pytest.raises(ValueError, match=r"column 'b'.*not numeric.*line 2"):
        load_csv(bad, "label")
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(ValueError, match="empty"):
        load_csv(empty, "label")
    with pytest.raises(FileNotFoundError, match="no such file"):
        load_csv(tmp_path / "missing.csv", "label")
    binary = tmp_path / "binary.csv"
    binary.write_bytes(b"\xff\xfe\x00\x81garbage")
    with pytest.raises(ValueError, match="cannot read"):
        load_csv(binary, "label")
    nan = tmp_path / "nan.csv"
    nan.write_text("a,label\n1,0\nnan,1\n")
    with pytest.raises(ValueError, match="non-finite"):
        load_csv(nan, "label")
