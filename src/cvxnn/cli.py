"""The ``cvxnn`` command line: ``demo``, ``train``, ``certify`` and ``reproduce``.

    cvxnn demo                                   # breast cancer: convex program vs Adam/GD, ~15 s
    cvxnn train --data data.csv --target y       # the same comparison on your CSV; saves the model
    cvxnn certify out/model.safetensors --data data.csv --target y
    cvxnn reproduce all --quick                  # every paper claim: figures, verdicts, report

Bad input (missing file, unknown column, non-numeric or missing values, ...) prints one
line ``Error: ...`` on stderr and exits with status 1 before anything is written.
"""

from __future__ import annotations

import json
import math
import os
import sys
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from .activations import DEFAULT_NEGATIVE_SLOPE
from .certificate import DEFAULT_SEARCH_STARTS
from .devices import compute_device
from .experiment import ComparisonError, ComparisonResult, ProgressHook
from .training import check_time_limit

app = typer.Typer(
    name="cvxnn",
    help="Train two-layer ReLU networks to certified global optimality through their convex program, "
         "compare with Adam/GD, and certify networks trained elsewhere.",
    no_args_is_help=True, add_completion=False, pretty_exceptions_show_locals=False, rich_markup_mode="markdown",
)
out_console = Console(width=None if sys.stdout.isatty() or os.environ.get("COLUMNS") else 120)
err_console = Console(stderr=True)

INPUT_ERRORS = (ValueError, TypeError, FileNotFoundError, FileExistsError, MemoryError, ComparisonError,
                IsADirectoryError, PermissionError)
SEARCH_ROUNDS_HELP = "Rounds of pattern search from the best convex model, reported as one more model (0: none)."
DEVICE_HELP = ("Where the convex solvers and the Adam/GD runs compute: cpu, cuda or cuda:<index> (refused up front "
               "where PyTorch sees no such device).")
TIME_LIMIT_HELP = ("Seconds for each convex program's solve; an iterative solver stopped there keeps its best "
                   "certified point (default: no limit).")
DEMO_DATASET = "breast_cancer"
DEMO_BETA = 1.0
DEMO_PATTERNS = 50
DEMO_EPOCHS = 2000
DEMO_SEED = 0
DEFAULT_OUT = "cvxnn-report"
MODEL_FILE = "model.safetensors"


def _fail(message: str, code: int = 1) -> None:
    err_console.print(f"[bold red]Error:[/] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


class _RichHook(ProgressHook):
    """rich progress: a spinner for the convex stages, a bar for each gradient run."""

    def __init__(self, progress: Progress):
        self.progress = progress
        self.task = None
        self.label = ""

    def stage(self, label: str, total: int | None = None) -> None:
        self.label = label
        self.task = self.progress.add_task(label, total=total)

    def update(self, completed: int, info: str = "") -> None:
        if self.task is not None:
            self.progress.update(self.task, completed=completed, description=f"{self.label}  {info}")

    def done(self, info: str = "") -> None:
        if self.task is not None:
            t = self.progress.tasks[self.progress.task_ids.index(self.task)]
            self.progress.update(self.task, total=t.total or 1, completed=t.total or 1,
                                 description=f"[green]✓[/] {self.label}  {info}")
        self.task = None


def _progress() -> Progress:
    return Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(bar_width=24),
                    MofNCompleteColumn(), TimeElapsedColumn(), console=err_console, transient=False)


def _parse_floats(text: str, name: str, allow_auto: bool = False) -> list[float] | None:
    """'1e-3,1e-2' → [0.001, 0.01]; '' or 'none' → []; 'auto' → None (when allowed)."""
    t = text.strip().lower()
    if allow_auto and t == "auto":
        return None
    if t in ("", "none"):
        return []
    out = []
    for part in t.split(","):
        try:
            v = float(part)
        except ValueError:
            raise ComparisonError(f"{name} must be comma-separated positive numbers, got {text!r}.") from None
        if not math.isfinite(v) or v <= 0:
            raise ComparisonError(f"{name} must be positive numbers, got {part!r}.")
        out.append(v)
    return out


def _print_table(result: ComparisonResult) -> None:
    from .report import table_rows

    header, rows = table_rows(result)
    table = Table(title=f"{result.dataset}: n={result.n_train} (test {result.n_test}), d={result.n_features}, "
                        f"β={result.beta:g}, bias={'yes' if result.bias else 'no'}", title_style="bold")
    for i, h in enumerate(header):
        table.add_column(h, justify="left" if i == 0 else "right", no_wrap=i == 0, overflow="fold")
    best = result.best_convex.name
    for m, r in zip(result.models, rows):
        table.add_row(*r, style="bold" if m.name == best else ("dim" if m.diverged else None))
    out_console.print(table)
    lb = result.certified_lower_bound
    out_console.print(f"Certified lower bound on NC for every network of any width: [bold]{lb:.6g}[/]", highlight=False)
    for name, c in result.certificates.items():
        if c.get("error"):
            out_console.print(f"  {name}: [yellow]not certified[/] ({c['error']})", highlight=False)
            continue
        verdict = {True: "globally optimal", False: "proved NOT globally optimal", None: "undecided"}[
            c["globally_optimal"]]
        out_console.print(f"  {name}: {verdict} ({c['method']}; max dual violation {c['max_dual_violation']:.3g})",
                          highlight=False)


def _comparison(X_train, y_train, X_test, y_test, *, task, out: Path, extra=None, **kwargs) -> ComparisonResult:
    from .experiment import run_comparison
    from .report import write_report

    with _progress() as progress:
        result = run_comparison(X_train, y_train, X_test, y_test, task=task, progress=_RichHook(progress), **kwargs)
    _print_table(result)
    path = write_report(result, out, extra=extra(result) if extra else None)
    out_console.print(f"Report written to [bold]{path}[/] (summary.json, objective_vs_time.png, report.md)",
                      highlight=False)
    return result


def _split(X, y, task: str, test_size: float, seed: int):
    from sklearn.model_selection import train_test_split

    if test_size == 0:
        return X, None, y, None
    n_test = math.ceil(test_size * len(y))
    if len(y) - n_test < 2 or n_test < 1:
        raise ComparisonError(f"{len(y)} rows are too few for --test-size {test_size:g}; "
                              "use a smaller test size or --test-size 0.")
    stratify = None
    if task == "classification":
        import numpy as np

        _, counts = np.unique(y, return_counts=True)
        if counts.min() >= 2 and n_test >= len(counts):
            stratify = y
    return train_test_split(X, y, test_size=test_size, random_state=seed, stratify=stratify)


# --------------------------------------------------------------------------- demo


@app.command()
def demo(
    out: Path = typer.Option(DEFAULT_OUT, "--out", "-o", help="Report directory (replaced if it holds a previous "
                             "report; any other non-empty directory is refused)."),
    beta: float = typer.Option(DEMO_BETA, "--beta", help="Weight decay β of NC = ½‖f(X)−y‖² + (β/2)Σ(‖u‖²+α²)."),
    patterns: int = typer.Option(DEMO_PATTERNS, "--patterns", help="Sampled activation patterns for the convex "
                                 "program (the reference solver's time grows with it)."),
    epochs: int = typer.Option(DEMO_EPOCHS, "--epochs", help="Full-batch steps of each Adam/GD run."),
    seed: int = typer.Option(DEMO_SEED, "--seed", help="Seed of the split, the patterns and the initializations."),
    search_starts: int = typer.Option(0, "--search-starts", help="Random starts of the certificate's local "
                                      "search for violated patterns (0: sampled patterns only; each start costs "
                                      "about a second here, and the search also starts from every neuron)."),
    time_limit: Optional[float] = typer.Option(None, "--time-limit", help=TIME_LIMIT_HELP),
    search_rounds: int = typer.Option(0, "--search-rounds", help=SEARCH_ROUNDS_HELP),
    device: str = typer.Option("cpu", "--device", help=DEVICE_HELP),
) -> None:
    """Breast cancer: the convex program vs Adam and GD, with certificates and a report (about 15 s).

    Uses scikit-learn's bundled breast cancer data (no download): 80/20 split, standardized features,
    ±1 targets, neurons with bias. Solves the convex program on sampled activation patterns, trains the
    same network with Adam and GD at three step sizes each, re-solves the convex program on the best
    run's activation patterns, certifies the convex models, prints the table and writes OUT/summary.json,
    OUT/objective_vs_time.png and OUT/report.md."""
    from .data import load_bundled

    try:
        _validate_common(beta=beta, epochs=epochs, seed=seed, time_limit=time_limit, search_rounds=search_rounds,
                         device=device)
        if patterns < 1:
            raise ComparisonError(f"--patterns must be a positive integer, got {patterns}.")
        from .report import check_output_dir

        check_output_dir(out)
        ds = load_bundled(DEMO_DATASET)
        err_console.print(f"[bold]cvxnn demo[/]: breast cancer, {ds.X.shape[0]} samples x {ds.X.shape[1]} features, "
                          f"80/20 split (seed {seed}), β={beta:g}, {patterns} sampled patterns + bias",
                          highlight=False)
        Xtr, Xte, ytr, yte = _split(ds.X, ds.y, "classification", 0.2, seed)
        _comparison(Xtr, ytr, Xte, yte, task="classification", out=out, dataset="breast_cancer (sklearn)",
                    feature_names=ds.feature_names, target_name="malignant(0)/benign(1)", beta=beta,
                    n_patterns=patterns, bias=True, epochs=epochs, seed=seed,
                    certify_search_starts=search_starts, time_limit=time_limit, search_rounds=search_rounds,
                    device=device)
    except KeyboardInterrupt:
        _fail("interrupted; no report written.", 130)
    except INPUT_ERRORS as exc:
        _fail(str(exc))


# --------------------------------------------------------------------------- train


ACTIVATION_HELP = ("Activation σ of every model: relu, leaky_relu (max(t, κt), κ = --negative-slope) or abs "
                   "(|t|).")
LOSS_HELP = ("Loss L of NC = L(f(X)) + (β/2)Σ(‖u‖²+‖α‖²): squared, logistic (two classes), hinge (two classes), "
             "cross_entropy (one output per class), or auto: logistic for two classes, cross_entropy for more, "
             "squared for regression.")


@app.command()
def train(
    data: Path = typer.Option(..., "--data", "-d", help="CSV file with a header row; all feature columns numeric."),
    target: str = typer.Option(..., "--target", "-t", help="Name of the target column. Classification when it "
                               "is non-numeric or has at most 10 distinct integers, else regression."),
    beta: float = typer.Option(1.0, "--beta", help="Weight decay β of NC = L(f(X)) + (β/2)Σ(‖u‖²+‖α‖²) on "
                               "standardized features and encoded (or standardized) targets."),
    activation: str = typer.Option("relu", "--activation", help=ACTIVATION_HELP),
    negative_slope: Optional[float] = typer.Option(None, "--negative-slope", help="Slope κ of leaky_relu for "
                                                   f"t < 0 (0 ≤ κ < 1; default {DEFAULT_NEGATIVE_SLOPE})."),
    loss: str = typer.Option("auto", "--loss", help=LOSS_HELP),
    patterns: str = typer.Option("50", "--patterns", "-p", help="Activation patterns for the convex program: a "
                                 "number to sample, 'all' (exact enumeration, small data only) or 'auto' (all "
                                 "when at most 300 exist, else 50 sampled)."),
    bias: bool = typer.Option(True, "--bias/--no-bias", help="Give each neuron a (penalized) bias."),
    epochs: int = typer.Option(2000, "--epochs", help="Full-batch steps of each Adam/GD run."),
    adam_lrs: str = typer.Option("1e-3,1e-2,1e-1", "--adam-lrs", help="Comma-separated Adam learning rates "
                                 "('none' to skip Adam)."),
    gd_lrs: str = typer.Option("auto", "--gd-lrs", help="Comma-separated GD step sizes, 'auto' (0.3, 1 and 3 "
                               "divided by ‖X̃‖₂²) or 'none'."),
    width: Optional[int] = typer.Option(None, "--width", help="Hidden width of the Adam/GD networks "
                                        "(default: the convex model's neuron count, at least 8)."),
    test_size: float = typer.Option(0.2, "--test-size", help="Fraction of rows held out for testing (0: none)."),
    seed: int = typer.Option(0, "--seed", help="Seed of the split, the patterns and the initializations."),
    out: Path = typer.Option(DEFAULT_OUT, "--out", "-o", help="Report directory (replaced if it holds a previous "
                             "report; any other non-empty directory is refused)."),
    model: Optional[Path] = typer.Option(None, "--model", "-m", help=f"Where to save the best convex model "
                                         f"(default OUT/{MODEL_FILE}); its preprocessing goes to the same "
                                         "name with .json."),
    refit: bool = typer.Option(True, "--refit/--no-refit", help="Also solve the convex program on the "
                               "activation patterns of the best gradient run (then at least as good as that run)."),
    certify_samples: int = typer.Option(1000, "--certify-samples", help="Gaussian patterns searched by the "
                                        "certificate when the patterns cannot all be enumerated."),
    search_starts: int = typer.Option(0, "--search-starts", help="Random starts of the certificate's local "
                                      "search for violated patterns (0: sampled patterns only; the search also "
                                      "starts from every neuron, so it can take minutes)."),
    threads: int = typer.Option(1, "--threads", help="torch threads for the gradient runs."),
    time_limit: Optional[float] = typer.Option(None, "--time-limit", help=TIME_LIMIT_HELP),
    search_rounds: int = typer.Option(0, "--search-rounds", help=SEARCH_ROUNDS_HELP),
    device: str = typer.Option("cpu", "--device", help=DEVICE_HELP),
) -> None:
    """The comparison of `cvxnn demo` on your CSV file; saves the best convex model.

    The model is written as safetensors (load it with cvxnn.load) with a JSON sidecar of the same name
    (.json) holding the feature standardization and target encoding, so it applies to raw data:
    f = net.predict((X − x_mean) / x_scale) with the columns in feature_names order; then, with one
    output, class = classes[1] if f ≥ 0 else classes[0]; with one output per class (cross_entropy, or
    squared on more than two classes), class = classes[argmax f]; regression value = f·y_scale + y_mean.
    The logistic and hinge losses need two classes; regression takes the squared loss only."""
    from .data import load_csv

    try:
        _validate_common(beta=beta, epochs=epochs, seed=seed, time_limit=time_limit, search_rounds=search_rounds,
                         device=device)
        if not 0 <= test_size < 1:
            raise ComparisonError(f"--test-size must be in [0, 1), got {test_size:g}.")
        if width is not None and width < 1:
            raise ComparisonError(f"--width must be a positive integer, got {width}.")
        if certify_samples < 1 or threads < 1 or search_starts < 0:
            raise ComparisonError("--certify-samples and --threads must be positive and --search-starts "
                                  "nonnegative integers.")
        act = _parse_activation(activation, negative_slope)
        from .experiment import LOSSES, parse_patterns

        if loss not in LOSSES:
            raise ComparisonError(f"--loss must be one of {', '.join(LOSSES)}, got {loss!r}.")
        from .report import check_output_dir

        spec = parse_patterns(patterns)
        a_lrs = _parse_floats(adam_lrs, "--adam-lrs")
        g_lrs = _parse_floats(gd_lrs, "--gd-lrs", allow_auto=True)
        check_output_dir(out)
        model_path = model if model is not None else None
        if model_path is not None and model_path.is_dir():
            raise ComparisonError(f"--model {str(model_path)!r} is a directory; give a file name.")
        if model_path is not None and not model_path.absolute().parent.is_dir():
            raise ComparisonError(f"the directory of --model {str(model_path)!r} does not exist.")
        ds = load_csv(data, target)
        import numpy as np

        from .experiment import infer_task, resolve_loss

        task = infer_task(ds.y)
        loss_name, _ = resolve_loss(loss, task, len(np.unique(ds.y)) if task == "classification" else 0)
        err_console.print(f"[bold]cvxnn train[/]: {data.name}, {ds.X.shape[0]} rows x {ds.X.shape[1]} features, "
                          f"target {target!r} ({task}), {act.name} activation, {loss_name} loss, β={beta:g}",
                          highlight=False)
        Xtr, Xte, ytr, yte = _split(ds.X, ds.y, task, test_size, seed)

        def extras(result: ComparisonResult):
            if model_path is not None:
                return None
            return {MODEL_FILE: lambda p: _save_model(result, p, data)}  # also writes model.json beside it

        result = _comparison(Xtr, ytr, Xte, yte, task=task, out=out, extra=extras, dataset=data.name,
                             feature_names=ds.feature_names, target_name=target, beta=beta, n_patterns=spec,
                             bias=bias, adam_lrs=a_lrs, gd_lrs=g_lrs, epochs=epochs, width=width, seed=seed,
                             refit=refit, certify_samples=certify_samples, certify_search_starts=search_starts,
                             threads=threads, activation=act, loss=loss, time_limit=time_limit,
                             search_rounds=search_rounds, device=device)
        saved = _save_model(result, model_path, data) if model_path is not None else out / MODEL_FILE
        out_console.print(f"Convex model ({result.best_convex.name}) saved to [bold]{saved}[/] with its "
                          f"preprocessing in [bold]{Path(saved).with_suffix('.json')}[/]", highlight=False)
    except KeyboardInterrupt:
        _fail("interrupted; no report written.", 130)
    except INPUT_ERRORS as exc:
        _fail(str(exc))


def model_metadata(result: ComparisonResult, data: Path | None = None) -> dict:
    """What `cvxnn certify` and users need to apply a saved model to raw data."""
    from .experiment import _jsonable

    best = result.best_convex
    return _jsonable({
        "format": "cvxnn.model-preprocessing", "version": 1,
        "usage": "f = net.predict((X - x_mean) / x_scale) with X's columns in feature_names order; "
                 "classification with one output: classes[1] if f >= 0 else classes[0]; with one output per "
                 "class: classes[argmax f]; regression: f * y_scale + y_mean",
        "activation": result.activation.to_dict(),
        "source": None if data is None else str(data), "target": result.target_name,
        "feature_names": result.feature_names, "beta": result.beta, "bias": result.bias, "model": best.name,
        "objective": best.objective, "certified_lower_bound": result.certified_lower_bound,
        **result.prepared.preprocessing(),
    })


def _save_model(result: ComparisonResult, path: Path, data: Path | None) -> Path:
    meta = model_metadata(result, data)
    path = Path(path)
    result.convex_network.save(path, metadata=meta)
    sidecar = path.with_suffix(".json")
    tmp = sidecar.with_name(sidecar.name + ".tmp")
    tmp.write_text(json.dumps(meta, indent=2, allow_nan=False) + "\n")
    os.replace(tmp, sidecar)
    return path


# --------------------------------------------------------------------------- certify


@app.command("certify")
def certify_cmd(
    model: Path = typer.Argument(..., help="A cvxnn model (from `cvxnn train` or TwoLayerNet.save) or a PyTorch "
                                 "state dict of Linear(d, m) → ReLU → Linear(m, 1, bias=False). The loss is "
                                 "the one in the model's JSON sidecar (squared without one)."),
    data: Path = typer.Option(..., "--data", "-d", help="CSV file with a header row; all feature columns numeric."),
    target: str = typer.Option(..., "--target", "-t", help="Name of the target column."),
    beta: Optional[float] = typer.Option(None, "--beta", help="Weight decay β of NC = ½‖f(X)−y‖² + "
                                         "(β/2)Σ(‖u‖²+α²); default: the β stored in the model's JSON sidecar."),
    preprocess: bool = typer.Option(True, "--preprocess/--raw", help="Apply the feature standardization and target "
                                    "encoding of the model's JSON sidecar (MODEL with .json) when it exists; "
                                    "--raw uses the CSV's features and numeric targets as they are."),
    samples: int = typer.Option(2000, "--samples", help="Gaussian patterns searched when the patterns cannot all "
                                "be enumerated."),
    max_patterns: int = typer.Option(20000, "--max-patterns", help="Enumerate all activation patterns when at "
                                     "most this many exist (then the certificate is exact)."),
    seed: int = typer.Option(0, "--seed", help="Seed of the sampled patterns."),
    search_starts: int = typer.Option(DEFAULT_SEARCH_STARTS, "--search-starts", help="Random starts of the local "
                                      "search for violated patterns when they cannot all be enumerated (it also "
                                      "starts from every neuron; 0 skips it)."),
    as_json: bool = typer.Option(False, "--json", help="Print the certificate as JSON."),
    figures: Optional[Path] = typer.Option(None, "--figures", help="Write figures into this folder: for 2-D "
                                           "inputs (one feature plus bias, or two features) the dual constraint "
                                           "θ ↦ λᵀ(X̃u(θ))_+ on the circle with ±β and the neurons' directions."),
) -> None:
    """Certify a two-layer ReLU network on a CSV: objective, lower bound, gap, global optimality.

    The lower bound holds for every two-layer ReLU network of any width (same β and bias convention).
    When the model has a cvxnn JSON sidecar (MODEL with .json, written by `cvxnn train`), its feature
    standardization and target encoding are applied first. Without one (or with --raw) the model is
    applied to the CSV's feature columns as they are, in file order, and the target must be numeric."""
    import numpy as np

    from .certificate import certify
    from .data import load_csv
    from .experiment import _jsonable, apply_preprocessing, encode_targets
    from .network import load

    try:
        if samples < 1 or max_patterns < 1 or search_starts < 0:
            raise ComparisonError("--samples and --max-patterns must be positive and --search-starts "
                                  "nonnegative integers.")
        if not model.is_file():
            raise FileNotFoundError(f"cannot read model {str(model)!r}: no such file.")
        net = load(model)
        sidecar = model.with_suffix(".json")
        meta = None
        if preprocess and sidecar.is_file() and sidecar != model:
            try:
                meta = json.loads(sidecar.read_text())
            except (OSError, json.JSONDecodeError) as exc:
                raise ComparisonError(f"cannot read the sidecar {str(sidecar)!r}: {exc}") from None
            if meta.get("format") != "cvxnn.model-preprocessing":
                meta = None
        if beta is None:
            if meta is None or meta.get("beta") is None:
                raise ComparisonError("--beta is required (no cvxnn sidecar with a stored β next to the model).")
            beta = float(meta["beta"])
        ds = load_csv(data, target)
        X, y = ds.X, ds.y
        if meta is not None:
            names = meta.get("feature_names")
            if names:
                missing = [n for n in names if n not in ds.feature_names]
                if missing:
                    raise ComparisonError(f"the CSV lacks the model's feature column(s): {', '.join(missing)}.")
                X = X[:, [ds.feature_names.index(n) for n in names]]
            X = apply_preprocessing(X, meta)
            y = encode_targets(y, meta)
            how = f"features standardized and targets encoded as in {sidecar.name}"
        else:
            if not np.issubdtype(np.asarray(y).dtype, np.number):
                raise ComparisonError(f"target column {target!r} is not numeric; without a cvxnn sidecar the "
                                      "targets are used as they are (encode them, e.g. as ±1).")
            how = "features and targets used as they are in the CSV"
        if X.shape[1] != net.n_features:
            raise ComparisonError(f"the model expects {net.n_features} features but the CSV has {X.shape[1]} "
                                  f"(besides the target {target!r}).")
        loss = meta.get("loss", "squared") if meta is not None else "squared"
        with err_console.status("Certifying…"):
            cert = certify(net, X, y, beta, max_patterns=max_patterns, n_samples=samples, seed=seed,
                           n_search_starts=search_starts, loss=loss)
    except KeyboardInterrupt:
        _fail("interrupted.", 130)
    except INPUT_ERRORS as exc:
        _fail(str(exc))
    summary = cert.summary()
    if figures is not None:
        summary["figures"] = _certificate_figures(net, X, y, beta, figures, loss)
    if as_json:
        out_console.print_json(json.dumps(_jsonable({"model": str(model), "data": str(data), "beta": beta,
                                                     "loss": loss, "activation": net.activation.to_dict(),
                                                     "preprocessing": how, **summary}), allow_nan=False))
        return
    verdict = {True: "[bold green]yes[/] (gap within rtol)", False: "[bold red]no[/] (proved suboptimal)",
               None: "[yellow]undecided[/]"}[cert.globally_optimal]
    table = Table(title=f"Certificate: {model.name} on {data.name} (β={beta:g})", show_header=False,
                  title_style="bold")
    table.add_column(style="bold")
    table.add_column()
    for k, v in [("network", f"width {net.width}, bias {'yes' if net.bias else 'no'}, {net.activation.name} "
                             f"activation, {net.n_outputs} output(s), {X.shape[0]} samples"),
                 ("loss", loss),
                 ("data", how),
                 ("objective (NC)", f"{cert.objective:.8g}"),
                 ("lower bound (any width)", f"{cert.lower_bound:.8g}"),
                 ("gap", f"{cert.gap:.4g} (relative {cert.relative_gap:.3g})"),
                 ("globally optimal", verdict),
                 ("method", f"{cert.method}; {cert.patterns_checked} patterns; "
                            f"max dual violation {cert.max_dual_violation:.4g}"),
                 ("checked", cert.checked), ("not checked", cert.not_checked),
                 ("time", f"{cert.elapsed:.2f} s")]:
        table.add_row(k, v)
    out_console.print(table)


def _certificate_figures(net, X, y, beta: float, folder: Path, loss: str = "squared") -> list[str]:
    """The dual-extreme-points picture for 2-D designs and one output; returns the files written."""
    from .figures import dual_constraint_circle
    from .losses import loss_from

    Xt = net.design(X)
    if Xt.shape[1] != 2 or net.n_outputs != 1:
        err_console.print(f"[yellow]No figure:[/] the circle picture needs a 2-D input and one output (the "
                          f"network sees {Xt.shape[1]} inputs and has {net.n_outputs} outputs).")
        return []
    folder.mkdir(parents=True, exist_ok=True)
    lf = loss_from(loss)
    lam = lf.dual_direction(net.predict(X), lf.targets(y, Xt.shape[0]))
    path = folder / "dual_constraint_circle.png"
    dual_constraint_circle(Xt, lam, beta, neurons=net, path=path)
    return [str(path)]


@app.command("reproduce")
def reproduce_cmd(
    name: str = typer.Argument(..., metavar="NAME", help="ntk, relaxation-gap, subsampling, directional, "
                               "convex-vs-nonconvex, subgradient-flow, or all."),
    quick: bool = typer.Option(False, "--quick", help="Small settings that run in a minute or so each."),
    out: Path = typer.Option(Path("cvxnn-reproductions"), "--out", "-o", help="Report folder (replaced if it "
                             "exists)."),
    seed: int = typer.Option(0, "--seed", help="Seed of every random draw."),
) -> None:
    """Reproduce a paper's claim: figures, summary.json with a `claim_holds` verdict per claim, and a
    Markdown section; `all` also writes one report (Markdown and HTML with embedded figures)."""
    from . import reproduce

    names = list(reproduce.EXPERIMENTS) if name == "all" else [name]
    try:
        for n in names:
            reproduce.experiment(n)
        with _progress() as progress:
            task = progress.add_task("reproducing", total=len(names))

            def step(current: str) -> None:
                progress.update(task, description=f"reproducing {current}",
                                completed=names.index(current))

            summary = reproduce.run(names, out, quick=quick, seed=seed, progress=step)
            progress.update(task, completed=len(names), description="done")
    except KeyboardInterrupt:
        _fail("interrupted; nothing was written.", 130)
    except INPUT_ERRORS as exc:
        _fail(str(exc))
    table = Table(title=f"Reproductions ({'quick' if quick else 'full'}) in {out}", title_style="bold")
    for col in ("experiment", "claim", "holds", "time s"):
        table.add_column(col)
    for section in summary["sections"]:
        for c in section["claims"]:
            table.add_row(section["name"], c["claim"], "[green]yes[/]" if c["claim_holds"] else "[red]no[/]",
                          f"{section['elapsed_s']:.0f}")
    out_console.print(table)


def _parse_activation(name: str, negative_slope: float | None):
    """--activation / --negative-slope (None: the default slope) as an Activation; ComparisonError
    for anything else."""
    from .activations import activation_from
    from .experiment import ACTIVATIONS

    if name not in ACTIVATIONS:
        raise ComparisonError(f"--activation must be one of {', '.join(ACTIVATIONS)}, got {name!r}.")
    if negative_slope is None:
        negative_slope = DEFAULT_NEGATIVE_SLOPE
    elif name != "leaky_relu":
        raise ComparisonError(f"--negative-slope applies to --activation leaky_relu only, not {name}.")
    if not (math.isfinite(negative_slope) and 0 <= negative_slope < 1):
        raise ComparisonError(f"--negative-slope must satisfy 0 <= κ < 1, got {negative_slope:g}.")
    return activation_from(name, negative_slope)


def _validate_common(*, beta: float, epochs: int, seed: int, time_limit: float | None, search_rounds: int,
                     device: str) -> None:
    try:
        compute_device(device)
    except ValueError as exc:
        raise ComparisonError(f"--device: {exc}") from None
    if search_rounds < 0:
        raise ComparisonError(f"--search-rounds must be a nonnegative integer, got {search_rounds}.")
    try:
        check_time_limit(time_limit)
    except ValueError:
        raise ComparisonError(f"--time-limit must be a positive number of seconds, got {time_limit:g}.") from None
    if not math.isfinite(beta) or beta <= 0:
        raise ComparisonError(f"--beta must be a positive number, got {beta:g}.")
    if epochs < 1:
        raise ComparisonError(f"--epochs must be a positive integer, got {epochs}.")
    if seed < 0:
        raise ComparisonError(f"--seed must be nonnegative, got {seed}.")


if __name__ == "__main__":  # pragma: no cover
    app()
