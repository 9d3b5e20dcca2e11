"""The `cvxnn` command line: train / certify / demo, reports, and clear errors on bad input."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

import cvxnn
from cvxnn.cli import app
from cvxnn.experiment import LOSS_FORMULAS

runner = CliRunner()

FAST = ["--patterns", "6", "--epochs", "60", "--certify-samples", "100"]
SUMMARY_KEYS = {"dataset", "n", "d", "objective", "beta", "bias", "certified_lower_bound", "models", "certificates",
                "preprocessing", "settings", "best_convex_model"}
MODEL_KEYS = {"name", "kind", "objective", "neurons", "width", "wall_time", "train_metrics", "test_metrics",
              "program_relative_gap", "certified_relative_gap", "history_times", "history_objectives"}


def _write_csv(path, header, rows):
    with open(path, "w") as fh:
        fh.write(",".join(header) + "\n")
        for r in rows:
            fh.write(",".join(str(v) for v in r) + "\n")
    return path


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("csv")
    rng = np.random.default_rng(0)
    X = rng.standard_normal((60, 3))
    label = np.where(X[:, 0] * X[:, 1] + 0.3 * X[:, 2] > 0, "yes", "no")
    _write_csv(d / "cls.csv", ["a", "b", "c", "label"],
               [[f"{v:.5f}" for v in x] + [lab] for x, lab in zip(X, label)])
    y = np.sin(X[:, 0]) + X[:, 1] ** 2 + 0.1 * rng.standard_normal(60)
    _write_csv(d / "reg.csv", ["a", "b", "c", "value"],
               [[f"{v:.5f}" for v in x] + [f"{t:.5f}"] for x, t in zip(X, y)])
    return d


@pytest.fixture(scope="module")
def trained(data_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "report"
    res = runner.invoke(app, ["train", "--data", str(data_dir / "cls.csv"), "--target", "label", "--out", str(out),
                              *FAST])
    assert res.exit_code == 0, res.output
    return out, res


def _leftovers(parent):
    return [p.name for p in parent.iterdir() if ".tmp-" in p.name or ".old-" in p.name]


def test_train_classification_writes_report_and_model(trained, data_dir):
    out, res = trained
    summary = json.loads((out / "summary.json").read_text())
    assert SUMMARY_KEYS <= set(summary)
    assert summary["dataset"]["task"] == "classification"
    assert summary["dataset"]["classes"] == ["no", "yes"]
    assert summary["dataset"]["n_train"] == 48 and summary["dataset"]["n_test"] == 12
    assert summary["dataset"]["n_features"] == 3
    assert summary["loss"] == "logistic" and summary["activation"]["name"] == "relu"  # --loss auto, two classes
    assert summary["n_outputs"] == 1 and summary["preprocessing"]["target_encoding"] == "pm1"
    kinds = [m["kind"] for m in summary["models"]]
    assert kinds[0] == "convex" and kinds.count("nonconvex") == 6 and kinds[-1] == "convex"
    for m in summary["models"]:
        assert MODEL_KEYS <= set(m)
        assert 0.0 <= m["train_metrics"]["accuracy"] <= 1.0
        assert 0.0 <= m["test_metrics"]["accuracy"] <= 1.0
        assert m["objective"] >= summary["certified_lower_bound"] - 1e-9  # the bound holds for every network
    # the refit on the best run's patterns is at least as good as every gradient run
    best_gd = min(m["objective"] for m in summary["models"] if m["kind"] == "nonconvex" and not m["diverged"])
    assert summary["models"][-1]["objective"] <= best_gd * (1 + 1e-6)
    assert summary["models"][0]["program_relative_gap"] < 1e-5
    assert set(summary["certificates"]) == {m["name"] for m in summary["models"] if m["kind"] == "convex"}
    assert (out / "objective_vs_time.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    md = (out / "report.md").read_text()
    assert "| model |" in md and "objective_vs_time.png" in md
    # the model and its preprocessing sidecar
    net = cvxnn.load(out / "model.safetensors")
    assert net.bias and net.n_features == 3
    meta = json.loads((out / "model.json").read_text())
    assert meta["classes"] == ["no", "yes"] and len(meta["x_mean"]) == 3 and meta["beta"] == 1.0
    assert abs(meta["objective"] - summary["models"][-1]["objective"]) < 1e-9
    assert _leftovers(out.parent) == []
    for word in ("objective", "gap cert", "Adam lr=0.01", "GD lr=", "patterns)"):
        assert word in res.output


def test_certify_saved_model(trained, data_dir):
    out, _ = trained
    res = runner.invoke(app, ["certify", str(out / "model.safetensors"), "--data", str(data_dir / "cls.csv"),
                              "--target", "label", "--samples", "100"])
    assert res.exit_code == 0, res.output
    for word in ("objective (NC)", "lower bound", "gap", "globally optimal", "method", "checked", "not checked",
                 "model.json"):
        assert word in res.output
    res = runner.invoke(app, ["certify", str(out / "model.safetensors"), "--data", str(data_dir / "cls.csv"),
                              "--target", "label", "--samples", "100", "--search-starts", "3", "--json"])
    assert res.exit_code == 0, res.output
    cert = json.loads(res.stdout)
    assert {"objective", "lower_bound", "gap", "globally_optimal", "method", "checked", "not_checked"} <= set(cert)
    assert cert["lower_bound"] <= cert["objective"] + 1e-9
    assert cert["beta"] == 1.0  # taken from the sidecar


def test_certify_torch_state_dict_raw(tmp_path):
    rng = np.random.default_rng(1)
    X = rng.standard_normal((30, 2))
    y = np.maximum(X @ np.array([1.0, -0.5]), 0) + 0.1 * rng.standard_normal(30)
    csv = _write_csv(tmp_path / "d.csv", ["x1", "x2", "y"], [[*x, t] for x, t in zip(X, y)])
    model = torch.nn.Sequential(torch.nn.Linear(2, 4), torch.nn.ReLU(), torch.nn.Linear(4, 1, bias=False))
    torch.save(model.state_dict(), tmp_path / "net.pt")
    res = runner.invoke(app, ["certify", str(tmp_path / "net.pt"), "--data", str(csv), "--target", "y",
                              "--beta", "0.1"])
    assert res.exit_code == 0, res.output
    assert "as they are" in res.output and "lower bound" in res.output
    # the dual-extreme-points figure needs a 2-D design: here d = 2 plus the first layer's bias
    res = runner.invoke(app, ["certify", str(tmp_path / "net.pt"), "--data", str(csv), "--target", "y",
                              "--beta", "0.1", "--figures", str(tmp_path / "figs")])
    assert res.exit_code == 0 and "needs a 2-D input" in res.output
    one = _write_csv(tmp_path / "one.csv", ["x", "y"], [[x[0], t] for x, t in zip(X, y)])
    model1 = torch.nn.Sequential(torch.nn.Linear(1, 3), torch.nn.ReLU(), torch.nn.Linear(3, 1, bias=False))
    torch.save(model1.state_dict(), tmp_path / "net1.pt")
    res = runner.invoke(app, ["certify", str(tmp_path / "net1.pt"), "--data", str(one), "--target", "y",
                              "--beta", "0.1", "--figures", str(tmp_path / "figs")])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "figs" / "dual_constraint_circle.png").stat().st_size > 5_000
    # no sidecar and no --beta: a clear error
    res = runner.invoke(app, ["certify", str(tmp_path / "net.pt"), "--data", str(csv), "--target", "y"])
    assert res.exit_code != 0 and "--beta is required" in res.output


def test_train_regression_no_bias_custom_model_path(data_dir, tmp_path):
    out, model = tmp_path / "rep", tmp_path / "m.safetensors"
    res = runner.invoke(app, ["train", "--data", str(data_dir / "reg.csv"), "--target", "value", "--out", str(out),
                              "--model", str(model), "--no-bias", "--no-refit", "--adam-lrs", "0.01",
                              "--gd-lrs", "none", "--test-size", "0", "--search-starts", "2", *FAST])
    assert res.exit_code == 0, res.output
    summary = json.loads((out / "summary.json").read_text())
    assert summary["dataset"]["task"] == "regression" and summary["dataset"]["n_test"] == 0
    assert summary["bias"] is False and summary["settings"]["certify_search_starts"] == 2
    assert [m["kind"] for m in summary["models"]] == ["convex", "nonconvex"]
    assert {"r2", "mse"} <= set(summary["models"][0]["train_metrics"])
    assert summary["models"][0]["test_metrics"] is None
    assert not (out / "model.safetensors").exists()
    net = cvxnn.load(model)
    assert not net.bias and net.n_features == 3
    meta = json.loads(model.with_suffix(".json").read_text())
    assert meta["task"] == "regression" and meta["y_scale"] > 0
    # applying the documented preprocessing reproduces the reported training R² on the full data (no test split)
    raw = np.genfromtxt(data_dir / "reg.csv", delimiter=",", skip_header=1)
    f = net.predict((raw[:, :3] - np.array(meta["x_mean"])) / np.array(meta["x_scale"]))
    pred = f * meta["y_scale"] + meta["y_mean"]
    r2 = 1 - np.mean((pred - raw[:, 3]) ** 2) / np.var(raw[:, 3])
    assert r2 == pytest.approx(summary["models"][0]["train_metrics"]["r2"], abs=1e-9)


def test_train_time_limit_stops_the_convex_solve(tmp_path):
    """--time-limit reaches fit: 800 training rows x 70 patterns go to the ipm ("auto"), which a limit of 1 ns
    stops after its first iteration with a valid, looser certificate; the report is still written."""
    rng = np.random.default_rng(1)
    X = rng.standard_normal((1000, 3))
    csv = _write_csv(tmp_path / "big.csv", ["a", "b", "c", "y"],
                     [[f"{v:.5f}" for v in x] + [f"{np.sin(x[0]) + x[1] * x[2]:.5f}"] for x in X])
    out = tmp_path / "rep"
    res = runner.invoke(app, ["train", "--data", str(csv), "--target", "y", "--out", str(out), "--patterns", "70",
                              "--epochs", "20", "--certify-samples", "50", "--adam-lrs", "0.01", "--gd-lrs", "none",
                              "--no-refit", "--time-limit", "1e-9"])
    assert res.exit_code == 0, res.output
    summary = json.loads((out / "summary.json").read_text())
    convex = summary["models"][0]
    assert summary["settings"]["time_limit"] == 1e-9
    assert convex["kind"] == "convex" and convex["solver_status"] == "time_limit"
    assert 1e-6 < convex["program_relative_gap"] < np.inf


MULTI_CLASS_CSV = "a,b,y\n" + "\n".join(f"{i},{i * i % 7},{i % 3}" for i in range(30)) + "\n"
REGRESSION_CSV = "a,b,y\n" + "\n".join(f"{i},{i * i % 7},{i * 0.37:.2f}" for i in range(30)) + "\n"


@pytest.fixture(scope="module")
def iris_csv(tmp_path_factory):
    """Ten flowers of each iris species (sklearn's bundled copy), species names as the target."""
    from sklearn.datasets import load_iris

    iris = load_iris()
    rows = [[f"{v:.1f}" for v in iris.data[i]] + [iris.target_names[iris.target[i]]]
            for c in range(3) for i in np.flatnonzero(iris.target == c)[:10]]
    return _write_csv(tmp_path_factory.mktemp("iris") / "iris.csv", ["sl", "sw", "pl", "pw", "species"], rows)


@pytest.mark.parametrize("loss, encoding", [("auto", "class_index"), ("squared", "one_vs_rest_pm1")])
def test_train_multiclass_iris(iris_csv, tmp_path, loss, encoding):
    out = tmp_path / "report"
    res = runner.invoke(app, ["train", "--data", str(iris_csv), "--target", "species", "--out", str(out),
                              "--loss", loss, *FAST])
    assert res.exit_code == 0, res.output
    summary = json.loads((out / "summary.json").read_text())
    assert summary["loss"] == ("cross_entropy" if loss == "auto" else "squared")
    assert summary["dataset"]["classes"] == ["setosa", "versicolor", "virginica"]
    assert summary["n_outputs"] == 3 and summary["preprocessing"]["target_encoding"] == encoding
    assert summary["dataset"]["n_train"] == 24 and summary["dataset"]["n_test"] == 6
    assert summary["settings"]["refit_guarantee"].startswith("none")  # c outputs: see experiment's docstring
    lower = summary["certified_lower_bound"]
    assert lower is not None and lower > 0
    for m in summary["models"]:
        assert 0.0 <= m["train_metrics"]["accuracy"] <= 1.0 and 0.0 <= m["test_metrics"]["accuracy"] <= 1.0
        assert m["objective"] >= lower - 1e-9  # output_norm "l2": the bound covers the gradient runs too
    assert max(m["train_metrics"]["accuracy"] for m in summary["models"]) >= 0.9
    assert all(c["method"].startswith("spectral") for c in summary["certificates"].values())
    assert "train acc" in res.output and "test acc" in res.output
    net = cvxnn.load(out / "model.safetensors")
    assert net.n_outputs == 3 and net.activation.name == "relu"
    meta = json.loads((out / "model.json").read_text())
    assert meta["loss"] == summary["loss"] and meta["target_encoding"] == encoding
    # `cvxnn certify` reads the loss and the class encoding from the sidecar
    res = runner.invoke(app, ["certify", str(out / "model.safetensors"), "--data", str(iris_csv),
                              "--target", "species", "--json"])
    assert res.exit_code == 0, res.output
    cert = json.loads(res.stdout)
    assert cert["loss"] == summary["loss"] and cert["lower_bound"] <= cert["objective"] + 1e-9


@pytest.mark.parametrize("options, loss, activation", [
    (["--activation", "leaky_relu", "--negative-slope", "0.1"], "logistic", {"name": "leaky_relu", "a": 1.0, "b": 0.1}),
    (["--activation", "abs", "--loss", "hinge"], "hinge", {"name": "abs", "a": 1.0, "b": -1.0}),
    (["--loss", "cross_entropy"], "cross_entropy", {"name": "relu", "a": 1.0, "b": 0.0}),
])
def test_train_binary_activation_and_loss(data_dir, tmp_path, options, loss, activation):
    out = tmp_path / "report"
    res = runner.invoke(app, ["train", "--data", str(data_dir / "cls.csv"), "--target", "label", "--out", str(out),
                              *options, *FAST])
    assert res.exit_code == 0, res.output
    summary = json.loads((out / "summary.json").read_text())
    assert summary["loss"] == loss and summary["activation"] == activation
    assert summary["settings"]["loss"] == loss and summary["settings"]["activation"] == activation
    assert summary["n_outputs"] == (2 if loss == "cross_entropy" else 1)
    assert LOSS_FORMULAS[loss] in summary["objective"]
    kinds = [m["kind"] for m in summary["models"]]
    assert kinds.count("nonconvex") == 6 and kinds[-1] == "convex"
    lower = summary["certified_lower_bound"]
    for m in summary["models"]:
        assert m["objective"] >= lower - 1e-9
    convex = [m for m in summary["models"] if m["kind"] == "convex"]
    assert all(m["program_relative_gap"] < 1e-5 for m in convex)
    if loss != "cross_entropy":  # one output: the refit on the best run's patterns is at least as good as every run
        best_gd = min(m["objective"] for m in summary["models"] if m["kind"] == "nonconvex" and not m["diverged"])
        assert summary["models"][-1]["objective"] <= best_gd * (1 + 1e-6)
        assert summary["settings"]["refit_guarantee"].startswith("the refit")
    net = cvxnn.load(out / "model.safetensors")
    assert net.activation.to_dict() == activation
    assert f"{activation['name']} activation, {loss} loss" in " ".join(res.stderr.split())


def _bad_inputs(tmp_path):
    good = ["a,b,y"] + [f"{i},{i % 3},{i % 2}" for i in range(12)]
    cases = {
        "missing file": (tmp_path / "nope.csv", "y", "no such file"),
        "missing target": (None, "target", "not in"),
        "non-numeric": ("a,b,y\n1,2,0\n3,x,1\n4,5,0\n", "y", "not numeric"),
        "nan": ("a,b,y\n1,2,0\n3,nan,1\n4,5,0\n", "y", "NaN"),
        "empty": ("", "y", "empty"),
        "logistic multi-class": (MULTI_CLASS_CSV, "y", "the logistic loss is for two classes"),
        "hinge multi-class": (MULTI_CLASS_CSV, "y", "use the cross_entropy"),
        "logistic regression": (REGRESSION_CSV, "y", "the logistic loss needs a classification target"),
        "cross-entropy regression": (REGRESSION_CSV, "y", "the cross_entropy loss needs a classification"),
        "unknown loss": (None, "y", "--loss must be one of"),
        "unknown activation": (None, "y", "--activation must be one of"),
        "slope without leaky": (None, "y", "--negative-slope applies to --activation leaky_relu only"),
        "bad slope": (None, "y", "--negative-slope must satisfy"),
        "bad time limit": (None, "y", "--time-limit must be a positive number of seconds"),
        "bad search rounds": (None, "y", "--search-rounds must be a nonnegative integer"),
        "unknown device": (None, "y", "--device: device must be 'cpu', 'cuda'"),
    }
    out = {}
    for name, (content, target, msg) in cases.items():
        if content is None:
            path = tmp_path / "good.csv"
            path.write_text("\n".join(good) + "\n")
        elif isinstance(content, str):
            path = tmp_path / f"{name.replace(' ', '_')}.csv"
            path.write_text(content)
        else:
            path = content
        out[name] = (path, target, msg)
    return out


BAD_OPTIONS = {"logistic multi-class": ["--loss", "logistic"], "hinge multi-class": ["--loss", "hinge"],
               "logistic regression": ["--loss", "logistic"], "cross-entropy regression": ["--loss", "cross_entropy"],
               "unknown loss": ["--loss", "l1"], "unknown activation": ["--activation", "tanh"],
               "slope without leaky": ["--negative-slope", "0.2"],
               "bad slope": ["--activation", "leaky_relu", "--negative-slope", "1.5"],
               "bad time limit": ["--time-limit", "0"], "bad search rounds": ["--search-rounds", "-1"],
               "unknown device": ["--device", "gpu"]}


@pytest.mark.parametrize("case", ["missing file", "missing target", "non-numeric", "nan", "empty", *BAD_OPTIONS])
def test_train_bad_input_clear_error_and_no_report(tmp_path, case):
    path, target, msg = _bad_inputs(tmp_path)[case]
    out = tmp_path / "report"
    res = runner.invoke(app, ["train", "--data", str(path), "--target", target, "--out", str(out), *FAST,
                              *BAD_OPTIONS.get(case, [])])
    assert res.exit_code in (1, 2), res.output
    assert res.exception is None or isinstance(res.exception, SystemExit)  # no traceback
    assert "Traceback" not in res.output
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    errors = [ln for ln in lines if ln.startswith("Error:")]
    assert len(errors) == 1 and msg in errors[0], res.stderr
    assert not out.exists()
    assert _leftovers(tmp_path) == []


@pytest.mark.parametrize("case", ["missing file", "missing target", "non-numeric", "nan", "empty"])
def test_certify_bad_input_clear_error(trained, tmp_path, case):
    out, _ = trained
    path, target, msg = _bad_inputs(tmp_path)[case]
    res = runner.invoke(app, ["certify", str(out / "model.safetensors"), "--data", str(path), "--target", target])
    assert res.exit_code in (1, 2)
    assert "Traceback" not in res.output
    assert msg in res.stderr and res.stderr.startswith("Error:")


def test_certify_missing_model(tmp_path, data_dir):
    res = runner.invoke(app, ["certify", str(tmp_path / "none.safetensors"), "--data", str(data_dir / "cls.csv"),
                              "--target", "label", "--beta", "1"])
    assert res.exit_code == 1 and "no such file" in res.stderr


def test_bad_options_refused_before_writing(data_dir, tmp_path):
    out = tmp_path / "report"
    for extra in (["--beta", "-1"], ["--beta", "0"], ["--epochs", "0"], ["--patterns", "many"],
                  ["--adam-lrs", "fast"], ["--test-size", "1.5"]):
        res = runner.invoke(app, ["train", "--data", str(data_dir / "cls.csv"), "--target", "label",
                                  "--out", str(out), *FAST, *extra])
        assert res.exit_code in (1, 2), (extra, res.output)
        assert "Traceback" not in res.output
        assert not out.exists()


def test_refuses_to_replace_a_foreign_directory(data_dir, tmp_path):
    out = tmp_path / "precious"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    res = runner.invoke(app, ["train", "--data", str(data_dir / "cls.csv"), "--target", "label",
                              "--out", str(out), *FAST])
    assert res.exit_code == 1 and "not a cvxnn report" in res.stderr
    assert (out / "notes.txt").read_text() == "keep me" and len(list(out.iterdir())) == 1


def test_replaces_a_previous_report(trained, data_dir):
    out, _ = trained
    before = json.loads((out / "summary.json").read_text())
    res = runner.invoke(app, ["train", "--data", str(data_dir / "cls.csv"), "--target", "label", "--out", str(out),
                              "--no-refit", "--adam-lrs", "0.01", "--gd-lrs", "none", *FAST])
    assert res.exit_code == 0, res.output
    after = json.loads((out / "summary.json").read_text())
    assert len(after["models"]) == 2 and len(before["models"]) == 8
    assert (out / "model.safetensors").exists()
    assert _leftovers(out.parent) == []


def _help_options(command):
    res = runner.invoke(app, [command, "--help"], env={"COLUMNS": "200", "TERMINAL_WIDTH": "200"})
    assert res.exit_code == 0
    return re.sub(r"\x1b\[[0-9;]*m", "", res.output)


@pytest.mark.parametrize("command, options", [
    ("demo", ["--out", "--beta", "--patterns", "--epochs", "--seed", "--search-starts"]),
    ("train", ["--data", "--target", "--beta", "--activation", "--negative-slope", "--loss", "--patterns", "--bias",
               "--no-bias", "--epochs", "--adam-lrs",
               "--gd-lrs", "--width", "--test-size", "--seed", "--out", "--model", "--refit", "--no-refit",
               "--certify-samples", "--search-starts", "--threads"]),
    ("certify", ["MODEL", "--data", "--target", "--beta", "--preprocess", "--raw", "--samples", "--max-patterns",
                 "--seed", "--search-starts", "--json", "--figures"]),
    ("reproduce", ["NAME", "--quick", "--out", "--seed"]),
])
def test_help_documents_every_option(command, options):
    text = _help_options(command)
    for opt in options:
        assert opt in text, (command, opt)


def test_top_level_help_lists_commands():
    res = runner.invoke(app, ["--help"])
    assert res.exit_code == 0
    for cmd in ("demo", "train", "certify", "reproduce"):
        assert cmd in res.output


@pytest.mark.slow
def test_demo_defaults(tmp_path):
    out = tmp_path / "demo"
    res = runner.invoke(app, ["demo", "--out", str(out)])
    assert res.exit_code == 0, res.output
    summary = json.loads((out / "summary.json").read_text())
    assert summary["dataset"]["n_train"] == 455 and summary["dataset"]["n_test"] == 114
    assert summary["dataset"]["n_features"] == 30
    convex = [m for m in summary["models"] if m["kind"] == "convex"]
    assert all(m["program_relative_gap"] < 1e-6 for m in convex)
    best_gd = min(m["objective"] for m in summary["models"] if m["kind"] == "nonconvex" and not m["diverged"])
    assert min(m["objective"] for m in convex) <= best_gd * (1 + 1e-6)
    assert all(m["test_metrics"]["accuracy"] > 0.9 for m in convex)
    assert (out / "objective_vs_time.png").exists() and (out / "report.md").exists()


def test_report_write_is_atomic(tmp_path, monkeypatch):
    from cvxnn import report
    from cvxnn.experiment import run_comparison

    rng = np.random.default_rng(3)
    X = rng.standard_normal((30, 2))
    y = np.where(X[:, 0] > 0.2, 1, 0)
    res = run_comparison(X, y, task="classification", beta=0.5, n_patterns=4, epochs=20, adam_lrs=[0.01],
                         gd_lrs=[], certify_samples=50, dataset="tiny")
    assert [m.kind for m in res.models] == ["convex", "nonconvex", "convex"]
    out = tmp_path / "rep"

    def boom(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(report, "plot_objective_vs_time", boom)
    with pytest.raises(RuntimeError):
        report.write_report(res, out)
    assert not out.exists() and list(tmp_path.iterdir()) == []
    monkeypatch.undo()
    report.write_report(res, out)
    assert sorted(p.name for p in out.iterdir()) == ["objective_vs_time.png", "report.md", "summary.json"]
    # a failing extra file also leaves the previous report untouched
    before = (out / "summary.json").read_text()
    with pytest.raises(RuntimeError):
        report.write_report(res, out, extra={"model.safetensors": boom})
    assert (out / "summary.json").read_text() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rep"]


@pytest.mark.parametrize("task,classes", [("regression", 0), ("classification", 2), ("classification", 3)])
def test_a_pattern_search_model_starts_from_the_best_convex_model_and_never_does_worse(task, classes):
    """search_rounds adds "convex (pattern search)": fit with search warm-started from the best convex model so far,
    so its objective is at most that model's, on a list at least as long, with a certificate below it. For every
    task's default loss: squared, logistic (two classes), cross-entropy (three: one search per class score)."""
    from cvxnn.experiment import run_comparison

    rng = np.random.default_rng(5)
    X = rng.standard_normal((60, 3))
    y = np.maximum(X @ np.array([1.0, -2.0, 0.5]), 0) - np.maximum(X @ np.array([-1.0, 0.5, 1.0]), 0)
    if classes:
        y = np.digitize(y, np.quantile(y, np.linspace(0, 1, classes + 1)[1:-1]))
    res = run_comparison(X, y, task=task, beta=0.5, n_patterns=4, epochs=40, adam_lrs=[0.01], gd_lrs=[],
                         certify_samples=50, dataset="tiny", search_rounds=3, loss="auto")
    names = [m.name for m in res.models]
    assert res.settings["loss"] == {0: "squared", 2: "logistic", 3: "cross_entropy"}[classes]
    assert names[-1] == "convex (pattern search)" and res.settings["search_rounds"] == 3
    searched = res.models[-1]
    before = min((m for m in res.models[:-1] if m.kind == "convex"), key=lambda m: m.objective)
    assert searched.objective <= before.objective * (1 - 1e-3)  # 3 rounds from 8 patterns: it finds better ones
    assert searched.n_patterns >= before.n_patterns
    assert res.convex_fits["convex (pattern search)"].search.rounds
    assert searched.certificate["lower_bound"] <= searched.objective * (1 + 1e-9)


def test_a_failed_certificate_is_reported_not_raised(tmp_path, monkeypatch):
    from cvxnn import experiment, report

    def refuse(*args, **kwargs):
        raise ValueError("this combination is not supported")

    monkeypatch.setattr(experiment, "certify", refuse)
    rng = np.random.default_rng(4)
    X = rng.standard_normal((24, 2))
    y = np.where(X[:, 0] * X[:, 1] > 0, "a", "b")
    res = experiment.run_comparison(X, y, beta=0.5, n_patterns=4, epochs=20, adam_lrs=[0.01], gd_lrs=[],
                                    loss="logistic", dataset="tiny")
    summary = res.summary()
    assert summary["certified_lower_bound"] is None  # -inf: nothing is claimed
    assert all(c["error"] == "this combination is not supported" and c["globally_optimal"] is None
               for c in summary["certificates"].values())
    assert all(m["certified_relative_gap"] is None for m in summary["models"])
    report.write_report(res, tmp_path / "rep")
    assert "not certified: this combination is not supported" in (tmp_path / "rep" / "report.md").read_text()


def test_reproduce_command(tmp_path):
    out = tmp_path / "rep"
    res = runner.invoke(app, ["reproduce", "subsampling", "--quick", "--out", str(out)])
    assert res.exit_code == 0, res.output
    summary = json.loads((out / "summary.json").read_text())
    assert summary["sections"][0]["name"] == "subsampling" and (out / "report.html").is_file()
    res = runner.invoke(app, ["reproduce", "nonsense", "--out", str(tmp_path / "x")])
    assert res.exit_code == 1 and "unknown reproduction" in res.output
    assert not (tmp_path / "x").exists()
