"""The ``echo-rnn sweep`` and ``echo-rnn summary`` commands: thin click shells over ``sweep.run_sweep``
and ``summary.collect``, with the sweep's progress (a rich live table on a terminal, plain lines in
a pipe, nothing with --quiet). No TensorFlow here: the sweep's workers import it.
"""

from __future__ import annotations

import json
import math
import sys
import threading
import time
from pathlib import Path

import click

from .cli import EXIT_FAILURE, EXIT_OK, UserError, config_options
from .config import ConfigError, flag_name, resolve

# ---------------------------------------------------------------- progress


def _settings_text(settings: dict) -> str:
    from .sweep.grid import format_value, key_order

    return " ".join(f"{k}={format_value(settings[k])}" for k in key_order(settings))


def _num(v, digits: int = 4) -> str:
    return "-" if v is None or (isinstance(v, float) and not math.isfinite(v)) else f"{v:.{digits}f}"


class SweepProgress:
    """Follows the sweep's events; the base prints nothing (--quiet)."""

    def __init__(self, points) -> None:
        self.points = {p.name: p for p in points}
        self.order = [p.name for p in points]
        self.state = {n: "pending" for n in self.order}
        self.epoch: dict[str, str] = {}
        self.results: dict = {}
        self.start_time = time.monotonic()
        self.lock = threading.Lock()

    def __call__(self, event) -> None:
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
    def start(self, headline: str) -> None: ...
    def stop(self) -> None: ...

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


class PlainProgress(SweepProgress):
    """One line when a group starts and one per finished point; no escape codes."""

    def _print(self, text: str) -> None:
        print(text, file=sys.stderr, flush=True)

    def start(self, headline: str) -> None:
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


class RichProgress(SweepProgress):
    """A live table of every point (the running and latest ones when there are many)."""

    MAX_ROWS = 24

    def __init__(self, points, console) -> None:
        super().__init__(points)
        from rich.live import Live

        self.console = console
        self.headline = ""
        self.finished_order: list[str] = []
        self.live = Live(get_renderable=self._render, console=console, refresh_per_second=4, transient=False)

    def start(self, headline: str) -> None:
        self.headline = headline
        self.console.print(f"echo-rnn: {headline}")
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

    def _render(self):
        from rich.table import Table

        with self.lock:
            elapsed = time.monotonic() - self.start_time
            table = Table(title=f"{self.counts_text()}  [dim]{elapsed:.0f}s[/]", title_justify="left")
            for col in ("point", "state", "epoch", "held-out acc", "final loss", "wall"):
                table.add_column(col, justify="left" if col in ("point", "state") else "right")
            colours = {"done": "green", "running": "cyan", "pending": "dim", "failed": "red", "interrupted": "yellow"}
            for n in self._shown():
                state = self.state[n]
                r = self.results.get(n)
                s = (r.summary or {}) if r else {}
                label = state if not (r and r.skipped) else "done (earlier)"
                if state == "failed":
                    label = f"failed: {r.status}"
                table.add_row(_settings_text(self.points[n].settings), f"[{colours[state]}]{label}[/]",
                              self.epoch.get(n, "") or (str(s.get("epochs_completed", "")) if s else ""),
                              _num(s.get("eval_accuracy")), _num(s.get("final_loss")),
                              f"{s['wall_seconds']:.1f}s" if s.get("wall_seconds") is not None else "")
            hidden = len(self.order) - len(self._shown())
            if hidden:
                table.caption = f"{hidden} more points not shown"
            return table


def make_progress(points, quiet: bool) -> SweepProgress:
    from .progress import stderr_console

    if quiet:
        return SweepProgress(points)
    console = stderr_console()
    return RichProgress(points, console) if console.is_terminal else PlainProgress(points)


# ---------------------------------------------------------------- sweep


def _base_config(config_file, flags: dict, grid: dict):
    """The settings every point shares. If they are invalid only for values the grid replaces (a
    default window longer than a short series, say), the grid's first point stands in for them;
    every point is validated on its own afterwards."""
    try:
        return resolve(config_file, flags)
    except ConfigError:
        if not grid:
            raise
    return resolve(config_file, {**flags, **{k: v[0] for k, v in grid.items()}})


def _json_line(point, result, out_dir: Path) -> str:
    """The same object as ``train --json`` prints, plus the point's name and whether it was skipped."""
    if result.summary is not None:
        data = dict(result.summary)
    else:
        data = {"output": str(out_dir / point.file), "status": result.status, "message": result.message,
                "eval_accuracy": None, "eval_loss": None, "final_loss": None, "epochs_completed": 0,
                "windows": 0, "wall_seconds": None, "device": "", "config": point.config.to_dict()}
    data["point"] = point.name
    data["skipped"] = result.skipped
    return json.dumps(data)


@click.command()
@config_options
@click.option("--grid", "grid_specs", multiple=True, metavar="KEY=V1,V2,...",
              help="A setting and its values (repeat for more settings; the sweep is every combination), "
                   "e.g. --grid echo_step=1,2,3 --grid truncated_backprop_length=3,5,8.")
@click.option("--seeds", type=click.IntRange(min=1), default=1, show_default=True,
              help="Train every point with seeds SEED..SEED+N-1.")
@click.option("--out-dir", "-o", type=click.Path(path_type=Path, file_okay=False), default=Path("sweep"),
              show_default=True, help="Folder for the run files (one per point) and sweep.json.")
@click.option("--jobs", "-j", type=click.IntRange(min=1),
              help="Worker processes (with --executor ray: tasks to split the sweep into) "
                   "[the CPU count; with ray: the cluster's].")
@click.option("--executor", type=click.Choice(("local", "ray"), case_sensitive=False), default="local",
              show_default=True, help="local: processes on this machine; ray: an existing Ray cluster.")
@click.option("--ray-address", metavar="ADDRESS",
              help="Ray cluster to use: HOST:PORT, 'auto' (started with `ray start` here) or 'local' "
                   "(a private one for this sweep) [RAY_ADDRESS].")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object per point on stdout as it finishes.")
@click.option("--quiet", "-q", is_flag=True, help="Print nothing but warnings and errors.")
def sweep(config_file, grid_specs, seeds, out_dir, jobs, executor, ray_address, as_json, quiet, **flags):
    """Train every combination of settings, one run file per point; resumable.

    Other flags (--epochs, --config, ...) apply to every point. Points that differ only in seed,
    learning_rate, echo_step or init train together in one compiled program. Running the same
    sweep again skips the points already finished.

    \b
      echo-rnn sweep --grid echo_step=1,2,3,5 --grid truncated_backprop_length=3,5,8,15 -o sweep
      echo-rnn summary sweep --format csv > sweep.csv
      echo-rnn plot --heatmap sweep --x truncated_backprop_length --y echo_step
    """
    from . import sweep as sw

    executor = executor.lower()
    grid = sw.parse_grid(grid_specs)  # a ConfigError is one line and exit 2 (EchoGroup.main)
    for key in grid:
        if flags.get(key) is not None:
            raise UserError(f"{flag_name(key)} and --grid {key} both set {key}; give one of them")
    if ray_address is not None and executor != "ray":
        raise UserError("--ray-address applies to --executor ray")
    base = _base_config(config_file, flags, grid)
    points = sw.expand_grid(base, grid, seeds)
    by_name = {p.name: p for p in points}

    from .interrupts import stop_on_signals
    from .progress import stderr_console

    console = stderr_console()
    for message in sw.learnability_warnings(points):
        console.print(f"[yellow]Warning:[/] {message}", soft_wrap=True)
    progress = make_progress(points, quiet)
    workers = jobs or (None if executor == "ray" else sw.default_jobs())

    def on_event(event) -> None:
        if event.kind == "planned":
            n_done = len(event.skipped)
            progress.start(f"sweep of {len(points)} points into {str(out_dir)!r} on {executor}"
                           + (f" with {workers} jobs" if workers else "")
                           + (f"; {n_done} done already" if n_done else ""))
        progress(event)
        if as_json and event.kind == "finished":
            click.echo(_json_line(by_name[event.result.name], event.result, out_dir))

    with stop_on_signals() as stop:
        try:
            result = sw.run_sweep(base, grid, seeds=seeds, out_dir=out_dir, jobs=jobs, executor=executor,
                                  on_event=on_event, should_stop=stop, ray_address=ray_address)
        finally:
            progress.stop()

    failed = result.failed
    if failed:
        lines = [f"{len(failed)} of {len(points)} points failed:"]
        lines += [f"  {r.name}: {r.status}" + (f": {r.message}" if r.message else "") for r in failed]
        console.print("[red]Error:[/] " + "\n".join(lines), soft_wrap=True, highlight=False)
    if stop.signum is not None or result.interrupted:
        left = len(result.unfinished)
        console.print(f"[yellow]Interrupted:[/] {len(points) - left} of {len(points)} points finished; run the "
                      f"same command again to train the other {left}", soft_wrap=True)
        return stop.exit_code or 130
    if not quiet:
        skipped = sum(1 for r in result.results.values() if r.skipped)
        console.print(f"sweep: {len(points)} points in {str(out_dir)!r} ({progress.counts_text()}"
                      + (f", {skipped} from an earlier run" if skipped else "")
                      + f") in {result.wall_seconds:.1f}s; see: echo-rnn summary {out_dir}", soft_wrap=True)
    return EXIT_FAILURE if failed else EXIT_OK


# ---------------------------------------------------------------- summary


@click.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path),
                metavar="DIR|RUN.npz...")
@click.option("--format", "fmt", type=click.Choice(("table", "csv", "json"), case_sensitive=False),
              default="table", show_default=True,
              help="table: the settings that vary and the results; csv / json: every config key and the results.")
def summary(paths, fmt):
    """One row per run: its settings and results (held-out accuracy, final loss, wall time, status).

    \b
      echo-rnn summary sweep                       # a table of a sweep's folder
      echo-rnn summary sweep --format csv > sweep.csv
      echo-rnn summary runs/*.npz --format json
    """
    from .summary import collect, render_table, to_csv, to_json

    collected = collect(paths)
    if not collected.rows and not collected.errors:
        raise UserError("no run files (*.npz) in " + ", ".join(repr(str(p)) for p in paths))
    fmt = fmt.lower()
    if fmt == "csv":
        click.echo(to_csv(collected.rows), nl=False)
    elif fmt == "json":
        click.echo(to_json(collected.rows))
    else:
        from rich.console import Console

        console = Console(highlight=False)
        if not console.is_terminal:  # a file or pipe has no width to fit: never cut a column
            console = Console(highlight=False, width=100_000)
        render_table(collected.rows, console)
    for error in collected.errors:
        click.echo(f"Error: skipped {error}", err=True)
    return EXIT_FAILURE if collected.errors else EXIT_OK
