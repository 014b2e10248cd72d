"""Rich progress bars for the stages' Progress protocol."""

from __future__ import annotations

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn, TimeRemainingColumn


class RichProgress:
    def __init__(self, console: Console):
        self._progress = Progress(
            SpinnerColumn(), TextColumn("{task.description:<34}"), BarColumn(), MofNCompleteColumn(),
            TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn(), console=console, transient=False,
        )
        self._task = None

    def __enter__(self) -> "RichProgress":
        self._progress.start()
        return self

    def __exit__(self, *exc) -> None:
        self._progress.stop()

    def start(self, label: str, total: int) -> None:
        self._task = self._progress.add_task(label, total=total or None)

    def advance(self, n: int = 1) -> None:
        if self._task is not None:
            self._progress.advance(self._task, n)

    def add_total(self, n: int) -> None:
        if self._task is not None and n:
            t = self._progress.tasks[-1]
            self._progress.update(self._task, total=(t.total or 0) + n)

    def done(self) -> None:
        if self._task is not None:
            t = self._progress.tasks[-1]
            self._progress.update(self._task, total=t.completed if t.total is None else t.total,
                                  completed=t.completed if t.total is None else t.total)
        self._task = None
