"""Progress display (rich, on stderr) for long fits: search rounds and solver iterations."""

from __future__ import annotations

from types import TracebackType
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn


class FitProgress:
    """A bar over the β of a path (when ``total_betas`` is given), one over the search rounds (when
    ``total_rounds`` is given) and a line for the running solve; does nothing when disabled.

    Use as a context manager; :meth:`solver` is a solver callback (iteration, objective, lower
    bound), :meth:`round` takes a :class:`~cvxnn.pattern_search.RoundLog` and :meth:`path_step` a path's fit
    (the rounds bar then starts again for the next β).
    """

    def __init__(self, enabled: bool, total_rounds: int | None, total_betas: int | None = None) -> None:
        self.enabled = enabled
        self._progress: Progress | None = None
        self._path = self._rounds = self._solve = None
        self._total = total_rounds
        self._total_betas = total_betas

    def __enter__(self) -> "FitProgress":
        if self.enabled:
            self._progress = Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(bar_width=24),
                                      MofNCompleteColumn(), TimeElapsedColumn(), console=Console(stderr=True))
            self._progress.start()
            if self._total_betas is not None:
                self._path = self._progress.add_task("path", total=self._total_betas)
            if self._total is not None:
                self._rounds = self._progress.add_task("pattern search", total=self._total)
            self._solve = self._progress.add_task("solve", total=None)
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._progress is not None:
            self._progress.stop()

    def solver(self, iteration: int, objective: float, lower_bound: float) -> None:
        if self._progress is not None:
            gap = (objective - lower_bound) / max(abs(objective), 1e-300)
            self._progress.update(self._solve, description=f"solve: iteration {iteration}, objective "
                                                           f"{objective:.6g}, relative gap {gap:.2e}")

    def round(self, log: Any) -> None:
        if self._progress is not None:
            self._progress.update(self._rounds, advance=1, description=(
                f"pattern search: round {log.round}, {log.n_patterns} patterns, objective {log.objective:.6g}, "
                f"max violation {log.max_violation:.4g}β, {log.n_added} added"
                + (f", Adam move +{log.n_moved}" if log.n_moved else "")))

    def path_step(self, fit: Any) -> None:
        if self._progress is not None:
            self._progress.update(self._path, advance=1, description=(
                f"path: beta {fit.beta:.4g}, objective {fit.objective:.6g}, {len(fit.patterns)} patterns, "
                f"{fit.n_neurons} neurons"))
            if self._rounds is not None:
                self._progress.reset(self._rounds, total=self._total, description="pattern search")
