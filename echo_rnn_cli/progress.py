"""What people see while training or sweeping: one family of reporters, chosen the same way for
every command: rich on a terminal, plain lines in a pipe or log, nothing with --quiet. Everything
goes to stderr; stdout is kept for --json.

Every reporter has ``start(headline, total)``, ``update(item)``, ``stop()`` and ``summary(rows)``;
the base class (``Reporter``) prints nothing. Train's reporters follow ``EpochReport``s, the
sweep's follow the sweep's events (and keep each point's state, which their closing line needs
even with --quiet).
"""

from __future__ import annotations

import math
import sys
import threading
import time
from collections.abc import Sequence
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from .config import key_order
from .runs import Run


def stderr_console() -> Console:
    # highlight=False: numbers in messages stay plain; rich drops colour by itself off a terminal.
    return Console(stderr=True, highlight=False)


def warning(console: Console, message: str) -> None:
    console.print(f"[yellow]Warning:[/] {message}", soft_wrap=True)


class Reporter:
    """The protocol, printing nothing (--quiet). ``console`` is set for the rich reporters."""

    console: Console | None = None

    def start(self, headline: str, total: int | None = None) -> None: ...
    def update(self, item: Any) -> None: ...
    def stop(self) -> None: ...
    def summary(self, rows: Sequence[tuple[str, Run]]) -> None: ...

    def _print(self, text: str) -> None:
        """One line: through the console where there is one, else plainly to stderr."""
        if self.console is not None:
            self.console.print(text)
        else:
            print(text, file=sys.stderr, flush=True)


def _choose(quiet: bool, quiet_kind: type, plain: type, rich: type, *args: Any) -> Any:
    """The reporter for this terminal: quiet, plain off a terminal, rich on one."""
    if quiet:
        return quiet_kind(*args)
    console = stderr_console()
    return rich(*args, console=console) if console.is_terminal else plain(*args)


# ---------------------------------------------------------------- train


class TrainPlain(Reporter):
    """Periodic plain lines: one every ``every`` seconds at most, and the last epoch always."""

    def __init__(self, every: float = 2.0) -> None:
        self.every = every
        self._last = 0.0

    def start(self, headline: str, total: int | None = None) -> None:
        self._print(f"echo-rnn: {headline}")
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
                f"{run.final_loss:.4f}  {memory_text(run)}  {run.wall_seconds:.1f}s on {run.device}"
                + (f"  ({run.message})" if run.message else "")
            )


def memory_text(run: Run) -> str:
    """'rests on lag 3 (99%)': the lag of the input the network's predictions rest on most at the
    end, and its share of the memory profile; 'rests on no input' where none matters."""
    lag, share = run.memory_peak
    if lag is None:
        return "rests on no input" if run.memory_epoch.size and run.status != "diverged" else "rests on -"
    return f"rests on lag {lag} ({share:.0%})"


class TrainRich(Reporter):
    """A live bar: epochs, windows per second, current loss and accuracy; a table at the end."""

    def __init__(self, console: Console) -> None:
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

    def start(self, headline: str, total: int | None = None) -> None:
        self._print(f"echo-rnn: {headline}")
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
        for col in ("run file", "status", "epochs", "held-out acc", "held-out loss", "final loss", "memory", "wall",
                    "device"):
            table.add_column(col, justify="left" if col in ("run file", "status", "device") else "right")
        for output, run in rows:
            colour = {"completed": "green", "interrupted": "yellow"}.get(run.status, "red")
            table.add_row(output, f"[{colour}]{run.status}[/]", str(run.epochs_completed),
                          f"{run.eval_accuracy:.4f}", f"{run.eval_loss:.4f}", f"{run.final_loss:.4f}",
                          memory_text(run).removeprefix("rests on "), f"{run.wall_seconds:.1f}s", run.device)
        self.console.print(table)
        for _, run in rows:
            if run.message:
                self.console.print(f"[yellow]{run.message}[/]")


def train_reporter(quiet: bool) -> Reporter:
    return _choose(quiet, Reporter, TrainPlain, TrainRich)


# ---------------------------------------------------------------- sweep


def _settings_text(settings: dict) -> str:
    from .sweep import format_value

    return " ".join(f"{k}={format_value(settings[k])}" for k in key_order(settings))


def _num(v, digits: int = 4) -> str:
    return "-" if v is None or (isinstance(v, float) and not math.isfinite(v)) else f"{v:.{digits}f}"


class SweepReporter(Reporter):
    """Follows the sweep's events (``update``, from any thread) and keeps each point's state; prints
    nothing (--quiet). ``counts_text`` is the sweep's closing line."""

    def __init__(self, points) -> None:
        self.points = {p.name: p for p in points}
        self.order = [p.name for p in points]
        self.state = {n: "pending" for n in self.order}
        self.epoch: dict[str, str] = {}
        self.results: dict = {}
        self.start_time = time.monotonic()
        self.lock = threading.Lock()

    def update(self, event) -> None:
        with self.lock:
            if event.kind == "started":
                for n in event.names:
                    self.state[n] = "running"
                    self.epoch[n] = "compiling"
            elif event.kind == "epoch":
                for n in event.names:
                    self.epoch[n] = f"{event.epoch}/{event.epochs}"
            elif event.kind == "finished":
                r = event.result
                self.results[r.name] = r
                self.state[r.name] = ("done" if r.status == "completed" else
                                      "interrupted" if r.status == "interrupted" else "failed")
                self.epoch.pop(r.name, None)
        self.on_event(event)

    def on_event(self, event) -> None: ...

    def counts(self) -> dict[str, int]:
        out = {"done": 0, "running": 0, "pending": 0, "failed": 0, "interrupted": 0}
        for s in self.state.values():
            out[s] += 1
        return out

    def counts_text(self) -> str:
        c = self.counts()
        parts = [f"{c['done']} done", f"{c['running']} running", f"{c['pending']} pending", f"{c['failed']} failed"]
        if c["interrupted"]:
            parts.append(f"{c['interrupted']} interrupted")
        return ", ".join(parts)


class SweepPlain(SweepReporter):
    """One line when a group starts and one per finished point; no escape codes."""

    def start(self, headline: str, total: int | None = None) -> None:
        self._print(f"echo-rnn: {headline}")

    def on_event(self, event) -> None:
        if event.kind == "started":
            what = ", ".join(_settings_text(self.points[n].settings) for n in event.names)
            self._print(f"training {len(event.names)} in one program: {what}")
        elif event.kind == "finished":
            r = event.result
            s = r.summary or {}
            done = sum(1 for v in self.state.values() if v not in ("pending", "running"))
            status = "already done" if r.skipped else r.status
            line = (f"[{done}/{len(self.order)}] {status}: {_settings_text(self.points[r.name].settings)}  "
                    f"held-out acc {_num(s.get('eval_accuracy'))}  final loss {_num(s.get('final_loss'))}  "
                    f"{_num(s.get('wall_seconds'), 1)}s")
            self._print(line + (f"  ({r.message})" if r.message else ""))


class SweepRich(SweepReporter):
    """A live table of every point (the running and latest ones when there are many)."""

    MAX_ROWS = 24
    COLOURS = {"done": "green", "running": "cyan", "pending": "dim", "failed": "red", "interrupted": "yellow"}

    def __init__(self, points, console: Console) -> None:
        super().__init__(points)
        from rich.live import Live

        self.console = console
        self.finished_order: list[str] = []
        self.live = Live(get_renderable=self._render, console=console, refresh_per_second=4, transient=False)

    def start(self, headline: str, total: int | None = None) -> None:
        self._print(f"echo-rnn: {headline}")
        self.live.start()

    def on_event(self, event) -> None:
        if event.kind == "finished":
            with self.lock:
                self.finished_order.append(event.result.name)
        self.live.refresh()

    def stop(self) -> None:
        self.live.stop()

    def _shown(self) -> list[str]:
        if len(self.order) <= self.MAX_ROWS:
            return self.order
        running = [n for n in self.order if self.state[n] == "running"]
        failed = [n for n in self.order if self.state[n] == "failed"]
        room = max(self.MAX_ROWS - len(running) - len(failed), 4)
        recent = [n for n in self.finished_order if self.state[n] != "failed"][-room:]
        keep = set(running) | set(failed) | set(recent)
        return [n for n in self.order if n in keep]

    def _row(self, n: str) -> list[str]:
        state = self.state[n]
        r = self.results.get(n)
        s = (r.summary or {}) if r else {}
        label = state if not (r and r.skipped) else "done (earlier)"
        if state == "failed":
            label = f"failed: {r.status}"
        return [_settings_text(self.points[n].settings), f"[{self.COLOURS[state]}]{label}[/]",
                self.epoch.get(n, "") or (str(s.get("epochs_completed", "")) if s else ""),
                _num(s.get("eval_accuracy")), _num(s.get("final_loss")),
                f"{s['wall_seconds']:.1f}s" if s.get("wall_seconds") is not None else ""]

    def _render(self):
        with self.lock:
            elapsed = time.monotonic() - self.start_time
            table = Table(title=f"{self.counts_text()}  [dim]{elapsed:.0f}s[/]", title_justify="left")
            for col in ("point", "state", "epoch", "held-out acc", "final loss", "wall"):
                table.add_column(col, justify="left" if col in ("point", "state") else "right")
            shown = self._shown()
            for n in shown:
                table.add_row(*self._row(n))
            hidden = len(self.order) - len(shown)
            if hidden:
                table.caption = f"{hidden} more points not shown"
            return table


def sweep_reporter(points, quiet: bool) -> SweepReporter:
    return _choose(quiet, SweepReporter, SweepPlain, SweepRich, points)
