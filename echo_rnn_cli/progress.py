"""What people see while training: a rich progress bar on a terminal, plain lines in a pipe or
log, nothing with --quiet. Everything goes to stderr; stdout is kept for --json."""

from __future__ import annotations

import sys
import time
from typing import Sequence

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from .runs import Run


def stderr_console() -> Console:
    # highlight=False: numbers in messages stay plain; rich drops colour by itself off a terminal.
    return Console(stderr=True, highlight=False)


class Quiet:
    def start(self, description: str, total: int) -> None: ...
    def update(self, report) -> None: ...
    def stop(self) -> None: ...
    def summary(self, rows: Sequence[tuple[str, Run]]) -> None: ...


class Plain(Quiet):
    """Periodic plain lines: one every ``every`` seconds at most, and the last epoch always."""

    def __init__(self, stream=None, every: float = 2.0) -> None:
        self.stream = stream or sys.stderr
        self.every = every
        self._last = 0.0

    def _print(self, text: str) -> None:
        print(text, file=self.stream, flush=True)

    def start(self, description: str, total: int) -> None:
        self._print(f"echo-rnn: {description}")
        self._last = time.monotonic()

    def update(self, r) -> None:
        now = time.monotonic()
        if r.epoch == r.epochs or now - self._last >= self.every:
            self._last = now
            self._print(
                f"epoch {r.epoch}/{r.epochs}  loss {r.loss:.4f}  accuracy {r.accuracy:.4f}  "
                f"{r.windows_per_second:,.0f} windows/s  {r.elapsed:.1f}s"
            )

    def summary(self, rows: Sequence[tuple[str, Run]]) -> None:
        for output, run in rows:
            self._print(
                f"{run.status}: {output}  epochs {run.epochs_completed}  held-out accuracy "
                f"{run.eval_accuracy:.4f}  held-out loss {run.eval_loss:.4f}  final loss "
                f"{run.final_loss:.4f}  {run.wall_seconds:.1f}s on {run.device}"
                + (f"  ({run.message})" if run.message else "")
            )


class Rich(Plain):
    """A live bar: epochs, windows per second, current loss and accuracy; a table at the end."""

    def __init__(self, console: Console) -> None:
        super().__init__()
        self.console = console
        self.progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("epochs"),
            TextColumn("{task.fields[rate]}"),
            TextColumn("loss [cyan]{task.fields[loss]}"),
            TextColumn("acc [green]{task.fields[acc]}"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=console,
            transient=False,
        )
        self.task = None

    def start(self, description: str, total: int) -> None:
        self.console.print(f"echo-rnn: {description}")
        self.progress.start()
        self.task = self.progress.add_task("compiling", total=total, rate="", loss="-", acc="-")

    def update(self, r) -> None:
        self.progress.update(self.task, description="training", completed=r.epoch, total=r.epochs,
                             rate=f"{r.windows_per_second:,.0f} win/s", loss=f"{r.loss:.4f}",
                             acc=f"{r.accuracy:.3f}")

    def stop(self) -> None:
        self.progress.stop()

    def summary(self, rows: Sequence[tuple[str, Run]]) -> None:
        table = Table(title="echo-rnn train", title_justify="left")
        for col in ("run file", "status", "epochs", "held-out acc", "held-out loss", "final loss", "wall", "device"):
            table.add_column(col, justify="left" if col in ("run file", "status", "device") else "right")
        for output, run in rows:
            colour = {"completed": "green", "interrupted": "yellow"}.get(run.status, "red")
            table.add_row(output, f"[{colour}]{run.status}[/]", str(run.epochs_completed),
                          f"{run.eval_accuracy:.4f}", f"{run.eval_loss:.4f}", f"{run.final_loss:.4f}",
                          f"{run.wall_seconds:.1f}s", run.device)
        self.console.print(table)
        for _, run in rows:
            if run.message:
                self.console.print(f"[yellow]{run.message}[/]")


def make_reporter(quiet: bool) -> Quiet:
    if quiet:
        return Quiet()
    console = stderr_console()
    return Rich(console) if console.is_terminal else Plain()
