"""The ``echo-rnn plot`` command: figures from run files, without TensorFlow.

Modes, chosen by the arguments and flags (see ``_mode``):

* one run: the tutorial's training figure, ``RUN.png`` beside the run file or ``--output``;
* several runs: their loss curves overlaid, ``compare.png`` beside the first or ``--output``;
* ``--animate FILE``: a replay of one run's snapshots (GIF, or MP4 where ffmpeg exists);
* ``--heatmap DIR --x KEY --y KEY``: a sweep's held-out accuracy over two settings, averaged over
  seeds, ``DIR/heatmap.png`` or ``--output`` (the figure is ``figures.heatmap.heatmap_figure``);
* ``--states``: one run's hidden state over a row of its held-out series, recomputed with NumPy
  from the saved weights, ``RUN-states.png`` or ``--output`` (``figures.states.states_figure``);
* ``--memory``: what each run's network rests on through training (its memory records),
  ``RUN-memory.png``, ``memory.png`` beside the first of several, or ``--output``.

``--show`` opens the figure in a window instead of writing the default file. A new mode (a sweep's
heatmap, say) adds its options to the decorators, a branch in ``_mode`` (where RUNS may then be
empty) and a ``_plot_<mode>`` function; the rest is shared.

Matplotlib is imported inside the functions, so ``echo-rnn --help`` does not pay for it.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import click

from .common import NamedPath, UserError, WholeNumber, given


def _say(quiet: bool, message: str) -> None:
    if not quiet:
        click.echo(message, err=True)


def _warn(message: str) -> None:
    click.echo(f"Warning: {message}", err=True)


def _refuse_given(names: tuple[str, ...], message: str) -> None:
    """A one-line error for the first of ``names`` set on the command line (``{flag}`` in the message)."""
    for name in names:
        if given(name):
            raise UserError(message.format(flag=f"--{name.replace('_scale', '')}"))


def _heatmap_mode(runs: tuple[Path, ...], animation: Path | None) -> str:
    if runs:
        raise UserError("--heatmap draws a sweep's folder; give no run files with it")
    if animation is not None:
        raise UserError("--animate replays one run; it cannot be combined with --heatmap")
    _refuse_given(("rows", "step", "log_scale", "fps", "frames"), "{flag} does not apply to --heatmap")
    if not (given("x") and given("y")):
        raise click.UsageError("--heatmap needs --x KEY and --y KEY (e.g. --x truncated_backprop_length "
                               "--y echo_step)")
    return "heatmap"


def _states_mode(runs: tuple[Path, ...], animation: Path | None, heatmap: Path | None) -> str:
    if heatmap is not None or animation is not None:
        raise UserError(f"--states draws one run's states; it cannot be combined with "
                        f"{'--heatmap' if heatmap is not None else '--animate'}")
    if len(runs) != 1:
        raise UserError(f"--states draws one run; got {len(runs)} run files")
    _refuse_given(("rows", "step", "log_scale", "fps", "frames", "x", "y"),
                  "{flag} does not apply to --states (it draws the final weights on the held-out series; "
                  "pick the row with --row)")
    return "states"


def _memory_mode(runs: tuple[Path, ...], animation: Path | None, heatmap: Path | None, states: bool) -> str:
    if heatmap is not None or animation is not None or states:
        other = "--heatmap" if heatmap is not None else "--animate" if animation is not None else "--states"
        raise UserError(f"--memory draws what run files remember; it cannot be combined with {other}")
    if not runs:
        raise click.UsageError("--memory needs one run file or more (RUN.npz ...)")
    _refuse_given(("rows", "step", "log_scale", "fps", "frames", "x", "y", "row", "steps"),
                  "{flag} does not apply to --memory (it draws every memory record of each run)")
    return "memory"


def _mode(runs: tuple[Path, ...], animation: Path | None, heatmap: Path | None = None, states: bool = False,
          memory: bool = False) -> str:
    """Which figure the arguments ask for; bad combinations are one-line errors."""
    if memory:
        return _memory_mode(runs, animation, heatmap, states)
    if states:
        return _states_mode(runs, animation, heatmap)
    _refuse_given(("row", "steps"), "{flag} applies to --states only")
    if heatmap is not None:
        return _heatmap_mode(runs, animation)
    _refuse_given(("x", "y"), "{flag} applies to --heatmap only")
    if not runs:
        raise click.UsageError("give one run file or more (RUN.npz ...)")
    if animation is not None:
        if len(runs) != 1:
            raise UserError(f"--animate replays one run; got {len(runs)} run files")
        return "animate"
    if len(runs) == 1:
        _refuse_given(("fps", "frames"), "{flag} applies to --animate only")
        return "one"
    _refuse_given(("rows", "step", "fps", "frames"),
                  "{flag} applies to one run; got " + f"{len(runs)} run files to compare")
    return "compare"


def _check_figure_path(path: Path, inputs, what: str = "output") -> None:
    """A figure may replace an older one (it is derived), but never a run file it draws, nor a
    FIFO, device or folder; a missing folder is created. GuardError: one line, exit 2. What was
    there at this check is what may be replaced: a file that appears later (another writer's run,
    say) is kept (``files.publish``), as the --replace rule of every writer says."""
    from ..guards import check_output

    check_output(path, inputs=inputs, replace=True, what=what, ways_out=None, make_parents=True)
    existed = os.path.lexists(path)
    click.get_current_context().meta.setdefault(_REPLACE, {})[str(path)] = existed


#: click's per-command store of each output's right to replace what is there (path -> bool).
_REPLACE = "echo_rnn.replace"


def _may_replace(path: Path) -> bool:
    ctx = click.get_current_context(silent=True)
    return bool(ctx is not None and ctx.meta.get(_REPLACE, {}).get(str(path), False))


def _save(fig, path: Path, dpi: int, final: bool) -> None:
    """``final``: the command's last file, and no window follows: the exit code settles as it takes
    its name (``interrupts.settle``; a window stays closable with Ctrl-C)."""
    from ..figures.common import save_figure

    save_figure(fig, path, dpi=dpi, replace=_may_replace(path), final=final)


def _output_path(output: Path | None, default: Path, inputs=()) -> Path:
    from ..figures.common import PlotError, figure_format

    path = output if output is not None else default
    if os.path.isdir(path):  # not Path.is_dir: it raises for a name too long, which check_output words
        raise UserError(f"--output {str(path)!r} is a folder; give a file name such as {str(path / 'run.png')!r}")
    try:
        figure_format(path)
    except PlotError as e:
        raise UserError(str(e)) from None
    _check_figure_path(path, inputs)
    return path


def _load(paths: tuple[Path, ...]):
    """Runs and their display names (the file names, or the paths where two share a name)."""
    from ..runs import load_run

    runs = [load_run(p) for p in paths]  # RunFileError: one line, exit 2 (the group's handler)
    names = [p.name for p in paths]
    if len(set(names)) < len(names):
        names = [str(p) for p in paths]
    return runs, names


@click.command()
@click.argument("runs", nargs=-1, type=NamedPath(path_type=Path), metavar="RUN.npz...")
@click.option("--output", "-o", type=NamedPath(path_type=Path),
              help="Figure file; its extension picks the format (.png, .svg, .pdf, ...). "
                   "[one run: RUN.png beside it; several: compare.png beside the first].")
@click.option("--rows", type=WholeNumber(min=1),
              help="Sample rows of the batch to draw, 1..batch_size [5, or all if fewer].")
@click.option("--step", type=WholeNumber(min=0), metavar="N",
              help="Draw the snapshot nearest training window N [the last].")
@click.option("--log/--no-log", "log_scale", default=None,
              help="Log or linear scale for the loss [log when it spans 2 decades or more, else linear].")
@click.option("--dpi", type=WholeNumber(min=20, max=1200), default=100,
              help="Resolution of PNG and other raster files (GIF/MP4: 80 unless given) [100].")
@click.option("--animate", "animation", type=NamedPath(path_type=Path, dir_okay=False), metavar="FILE",
              help="Write a replay of the run's snapshots to FILE.gif (or FILE.mp4 with ffmpeg).")
@click.option("--fps", type=WholeNumber(min=1, max=60), default=10,
              help="Frames per second of --animate [10].")
@click.option("--frames", type=WholeNumber(min=1), default=100,
              help="At most this many frames in --animate, snapshots spread evenly first to last [100].")
@click.option("--heatmap", type=NamedPath(path_type=Path, exists=True, file_okay=False), metavar="DIR",
              help="Draw a sweep's held-out accuracy over --x and --y, averaged over seeds [DIR/heatmap.png].")
@click.option("--x", "x", metavar="KEY", help="Setting along the heatmap's columns, e.g. truncated_backprop_length.")
@click.option("--y", "y", metavar="KEY", help="Setting along the heatmap's rows, e.g. echo_step.")
@click.option("--states", is_flag=True,
              help="Draw the hidden state (an LSTM's cell state too) of the trained network over a row of "
                   "the run's held-out series, from a zero state as the evaluation feeds it: data it never "
                   "trained on, long enough to watch it keep the last echo_step symbols [RUN-states.png].")
@click.option("--row", type=WholeNumber(min=1), metavar="N",
              help="Row of the held-out series for --states, 1..batch_size [1].")
@click.option("--steps", type=WholeNumber(min=1), metavar="N",
              help="Steps of the row for --states, from its start [4 windows of truncated_backprop_length].")
@click.option("--memory", is_flag=True,
              help="Draw what the network remembers through training: its memory profile (how much each "
                   "prediction changes when the input k steps back flips) and the gradient's reach, lag "
                   "against epochs, for each run; several runs' final profiles overlaid "
                   "[RUN-memory.png; several: memory.png beside the first].")
@click.option("--show", is_flag=True,
              help="Open the figure in a window instead of writing the default file (with -o: both).")
@click.option("--quiet", "-q", is_flag=True, help="Print nothing but warnings and errors.")
def plot(runs, output, rows, step, log_scale, dpi, animation, heatmap, x, y, fps, frames, states, row, steps, memory,
         show, quiet):
    """Draw run files: the tutorial's training figure for one run, loss curves for several.

    \b
      echo-rnn plot run.npz                      # -> run.png
      echo-rnn plot run.npz --step 2000 --rows 3 -o early.svg
      echo-rnn plot a.npz b.npz c.npz -o compare.png
      echo-rnn plot run.npz --animate replay.gif
      echo-rnn plot --heatmap sweep --x truncated_backprop_length --y echo_step
      echo-rnn plot run.npz --states --row 2      # -> run-states.png
      echo-rnn plot run.npz --memory             # -> run-memory.png
    """
    from ..figures.common import PlotError
    from ..files import NameTaken

    mode = _mode(runs, animation, heatmap, states, memory)
    started = time.perf_counter()
    try:
        if mode == "memory":
            _plot_memory(runs, output, dpi, show, quiet)
        elif mode == "states":
            _plot_states(runs[0], row, steps, output, dpi, show, quiet)
        elif mode == "heatmap":
            _plot_heatmap(heatmap, x, y, output, dpi, show, quiet)
        elif mode == "animate":
            _plot_animation(runs[0], animation, output, rows, step, log_scale,
                            dpi if given("dpi") else 80, dpi, fps, frames, quiet)
        else:
            _plot_still(mode, runs, output, rows, step, log_scale, dpi, show, quiet)
    except PlotError as e:
        raise UserError(str(e)) from None
    except NameTaken as e:  # another writer's file took the name while this one drew: it is kept
        raise UserError(f"{e.filename!r}: {e.strerror}; this figure was not written over it", exit_code=1) from None
    _say(quiet, f"done in {time.perf_counter() - started:.1f}s")


def _plot_still(mode, paths, output, rows, step, log_scale, dpi, show, quiet) -> None:
    from ..figures.compare import comparison_figure
    from ..figures.training import training_figure

    runs, names = _load(paths)
    default = (paths[0].with_suffix(".png") if mode == "one" else paths[0].parent / "compare.png")
    window, path = _window_or_file(show, output, default, paths)
    figure = None
    if window:
        import matplotlib.pyplot as plt

        try:
            figure = plt.figure()
            figure.canvas.manager.set_window_title("echo-rnn plot")
        except Exception as e:  # a GUI toolkit failing to start is a warning, not a crash
            window = False
            _warn(f"--show: the window did not open ({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}); "
                  f"writing {str(output if output is not None else default)!r} instead")
            path = _output_path(output, default, paths)
    if mode == "one":
        run = runs[0]
        fig = training_figure(run, rows=rows, step=step, log=log_scale, name=names[0], figure=figure)
        what = ""
        if run.snapshot_window.size:
            w = fig.panels.window
            what = f" (snapshot at window {w:,}, epoch {w // max(run.config.windows_per_epoch, 1) + 1})"
    else:
        fig = comparison_figure(runs, log=log_scale, names=names, figure=figure)
        what = f" ({len(runs)} runs)"
    if path is not None:
        _save(fig, path, dpi, final=not window)
        _say(quiet, f"wrote {path}{what}")
    if window:
        import matplotlib.pyplot as plt

        plt.show()


def _plot_animation(path, target, output, rows, step, log_scale, dpi, still_dpi, fps, frames, quiet) -> None:
    from ..figures.animation import animate, animation_format
    from ..figures.common import require_windows
    from ..figures.training import training_figure
    if step is not None:
        raise UserError("--step picks one snapshot; --animate replays them all (use --frames)")
    animation_format(target)
    _check_figure_path(target, (path,), what="--animate file")
    still = _output_path(output, output, (path, target)) if output is not None else None
    runs, names = _load((path,))
    require_windows(runs[0], names[0])
    n = animate(runs[0], target, fps=fps, rows=rows, log=log_scale, frames=frames, dpi=dpi, name=names[0],
                replace=_may_replace(target), final=still is None)
    _say(quiet, f"wrote {target} ({n} frames at {fps} fps)")
    if still is not None:
        _save(training_figure(runs[0], rows=rows, log=log_scale, name=names[0]), still, still_dpi, final=True)
        _say(quiet, f"wrote {still}")


def _plot_heatmap(folder: Path, x: str, y: str, output: Path | None, dpi: int, show: bool, quiet: bool) -> None:
    from ..figures.heatmap import HeatmapError, heatmap_figure
    from ..summary import collect

    inputs = [*folder.glob("*.npz"), folder / "sweep.json"]
    window, path = _window_or_file(show, output, folder / "heatmap.png", inputs)
    collected = collect([folder])
    for error in collected.errors:
        _warn(f"skipped {error}")
    if not collected.rows:
        raise UserError(f"no run files (*.npz) in {str(folder)!r}")
    try:
        fig = heatmap_figure(collected.rows, x, y, figure=_window_figure(window))
    except HeatmapError as e:
        raise UserError(str(e)) from None
    if path is not None:
        _save(fig, path, dpi, final=not window)
        _say(quiet, f"wrote {path} ({len(collected.rows)} runs)")
    _show_window(window)


def _plot_memory(paths: tuple[Path, ...], output: Path | None, dpi: int, show: bool, quiet: bool) -> None:
    from ..figures.memory import memory_figure

    default = (paths[0].with_name(f"{paths[0].stem}-memory.png") if len(paths) == 1
               else paths[0].parent / "memory.png")
    window, path = _window_or_file(show, output, default, paths)
    runs, names = _load(paths)
    fig = memory_figure(runs, names, figure=_window_figure(window, layout="constrained"))
    if path is not None:
        _save(fig, path, dpi, final=not window)
        records = ", ".join(str(r.memory_epoch.size) for r in runs)
        _say(quiet, f"wrote {path} ({records} memory records)")
    _show_window(window)


def _window_or_file(show: bool, output: Path | None, default: Path, inputs) -> tuple[bool, Path | None]:
    """(a window opens, the file to write): with --show a window where a display can show one,
    and a file when -o asks for one or no window can open (then with one warning)."""
    from ..figures.common import display_problem

    window = False
    if show:
        problem = display_problem()
        window = problem is None
        if problem is not None:
            _warn(f"--show: {problem}; writing {str(output if output is not None else default)!r} instead")
    path = _output_path(output, default, inputs) if (output is not None or not window) else None
    return window, path


def _window_figure(window: bool, **options):
    """A pyplot figure to draw into when a window will show it (None: the figure draws on its own)."""
    if not window:
        return None
    import matplotlib.pyplot as plt

    return plt.figure(**options)


def _show_window(window: bool) -> None:
    if window:
        import matplotlib.pyplot as plt

        plt.show()


def _states_symbols(run, row: int | None, steps: int | None):
    """The held-out row's first steps, and the title line that says which."""
    from ..figures.states import heldout_row

    c = run.config
    row = 1 if row is None else row
    if row > c.batch_size:
        raise UserError(f"--row {row}: the held-out series has rows 1..{c.batch_size} (batch_size {c.batch_size})")
    if steps is not None and steps > c.row_length:
        raise UserError(f"--steps {steps}: a row of the held-out series has {c.row_length} steps")
    steps = min(c.row_length, 4 * c.truncated_backprop_length) if steps is None else steps
    symbols = heldout_row(c, row - 1, steps)
    return symbols, f"held-out row {row} of {c.batch_size}, steps 0..{steps - 1}, final weights"


def _plot_states(path: Path, row: int | None, steps: int | None, output: Path | None, dpi: int, show: bool,
                 quiet: bool) -> None:
    from ..figures.states import states_figure
    from ..inference import SequenceError, WeightsError, run_weights
    from .common import read_run

    window, target = _window_or_file(show, output, path.with_name(f"{path.stem}-states.png"), [path])
    run = read_run(path)
    symbols, source = _states_symbols(run, row, steps)
    try:
        fig = states_figure(run_weights(run), run.config, symbols, figure=_window_figure(window, layout="constrained"),
                            source=source)
    except (SequenceError, WeightsError) as e:
        raise UserError(str(e)) from None
    if target is not None:
        _save(fig, target, dpi, final=not window)
        _say(quiet, f"wrote {target} ({source})")
    _show_window(window)
