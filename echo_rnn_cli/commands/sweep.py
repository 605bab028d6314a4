"""The ``echo-rnn sweep`` command: a thin click shell over ``sweep.run_sweep``, with the sweep's
progress reporter (``progress.sweep_reporter``). No TensorFlow here: the sweep's workers import it.
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from ..config import ConfigError, flag_name, resolve
from .common import EXIT_FAILURE, EXIT_INTERRUPTED, EXIT_OK, NamedPath, UserError, WholeNumber, config_options


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
@click.option("--seeds", type=WholeNumber(min=1), default=1,
              help="Train every point with seeds SEED..SEED+N-1 [1].")
@click.option("--out-dir", "-o", type=NamedPath(file_okay=False), default="sweep",
              help="Folder for the run files (one per point) and sweep.json [sweep].")
@click.option("--jobs", "-j", type=WholeNumber(min=1),
              help="Worker processes (with --executor ray: tasks to split the sweep into) "
                   "[the CPU count; with ray: the cluster's].")
@click.option("--executor", type=click.Choice(("local", "ray"), case_sensitive=False), default="local",
              help="local: processes on this machine; ray: an existing Ray cluster [local].")
@click.option("--ray-address", metavar="ADDRESS",
              help="Ray cluster to use: HOST:PORT, 'auto' (started with `ray start` here) or 'local' "
                   "(a private one for this sweep) [RAY_ADDRESS].")
@click.option("--tensorboard", metavar="DIR", type=NamedPath(),
              help="Write TensorBoard event files as the points train: DIR/POINT for each, with its settings "
                   "as HParams (with --executor ray: DIR must be shared by every node).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object per point on stdout as it finishes.")
@click.option("--quiet", "-q", is_flag=True, help="Print nothing but warnings and errors.")
def sweep(config_file, grid_specs, seeds, out_dir, jobs, executor, ray_address, tensorboard, as_json, quiet,
          **flags):
    """Train every combination of settings, one run file per point; resumable.

    Other flags (--epochs, --config, ...) apply to every point. Points that differ only in seed,
    learning_rate, echo_step or init train together in one compiled program. Running the same
    sweep again skips the points already finished.

    \b
      echo-rnn sweep --grid echo_step=1,2,3,5 --grid truncated_backprop_length=3,5,8,15 -o sweep
      echo-rnn summary sweep --format csv > sweep.csv
      echo-rnn plot --heatmap sweep --x truncated_backprop_length --y echo_step
    """
    from .. import sweep as sw
    from ..interrupts import stop_on_signals
    from ..progress import stderr_console, sweep_reporter, warning

    out_dir = sw.check_out_dir(out_dir)  # '' would be the current folder, which nobody named

    executor = executor.lower()
    grid = sw.parse_grid(grid_specs)  # a ConfigError is one line and exit 2 (EchoGroup.main)
    _check_flags(grid, flags, executor, ray_address)
    base = _base_config(config_file, flags, grid)
    points = sw.expand_grid(base, grid, seeds)
    by_name = {p.name: p for p in points}
    console = stderr_console()
    for message in sw.learnability_warnings(points):
        warning(console, message)
    progress = sweep_reporter(points, quiet)
    workers = jobs or (None if executor == "ray" else sw.default_jobs())

    def on_event(event) -> None:
        if event.kind == "planned":
            n_done = len(event.skipped)
            progress.start(f"sweep of {len(points)} points into {str(out_dir)!r} on {executor}"
                           + (f" with {workers} jobs" if workers else "")
                           + (f"; {n_done} done already" if n_done else ""))
        progress.update(event)
        if as_json and event.kind == "finished":
            click.echo(_json_line(by_name[event.result.name], event.result, out_dir))

    with stop_on_signals() as stop:
        try:
            result = sw.run_sweep(base, grid, seeds=seeds, out_dir=out_dir, jobs=jobs, executor=executor,
                                  on_event=on_event, should_stop=stop, ray_address=ray_address,
                                  tensorboard=tensorboard)
            from ..interrupts import settle

            settle()  # every point's file and sweep.json are written: the exit code follows them now
        finally:
            progress.stop()

    return _closing(result, len(points), progress, console, quiet, out_dir, stop)


def _check_flags(grid: dict, flags: dict, executor: str, ray_address: str | None) -> None:
    for key in grid:
        if flags.get(key) is not None:
            raise UserError(f"{flag_name(key)} and --grid {key} both set {key}; give one of them")
    if ray_address is not None and executor != "ray":
        raise UserError("--ray-address applies to --executor ray")


def _closing(result, n_points: int, progress, console, quiet: bool, out_dir: Path, stop) -> int:
    """The failed points, how to finish an interrupted sweep, or the closing line; the exit code."""
    failed = result.failed
    if failed:
        lines = [f"{len(failed)} of {n_points} points failed:"]
        lines += [f"  {r.name}: {r.status}" + (f": {r.message}" if r.message else "") for r in failed]
        console.print("[red]Error:[/] " + "\n".join(lines), soft_wrap=True, highlight=False)
    if (stop.signum is not None or result.interrupted) and result.unfinished:
        left = len(result.unfinished)
        console.print(f"[yellow]Interrupted:[/] {n_points - left} of {n_points} points finished; run the "
                      f"same command again to train the other {left}", soft_wrap=True)
        return stop.exit_code or EXIT_INTERRUPTED
    if stop.signum is not None and not quiet:  # train's rule: a stop after the last epoch cut nothing short
        console.print("the stop came after the last point finished: nothing was cut short", soft_wrap=True)
    if not quiet:
        skipped = sum(1 for r in result.results.values() if r.skipped)
        console.print(f"sweep: {n_points} points in {str(out_dir)!r} ({progress.counts_text()}"
                      + (f", {skipped} from an earlier run" if skipped else "")
                      + f") in {result.wall_seconds:.1f}s; see: echo-rnn summary {out_dir}", soft_wrap=True)
    return EXIT_FAILURE if failed else EXIT_OK
