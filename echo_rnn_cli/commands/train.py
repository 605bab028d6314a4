"""The ``echo-rnn train`` command: resolve the settings (or the run to resume), check the outputs,
train with a progress reporter, save, report. TensorFlow is imported only once training starts.
"""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import click

from ..config import Config, ConfigError, network_text, resolve
from ..memory import check_models
from .common import EXIT_FAILURE, EXIT_OK, FilePath, NamedPath, UserError, WholeNumber, config_options, fail, given


def seed_outputs(output: Path, seeds: list[int]) -> list[Path]:
    """run.npz -> run-seed0.npz, run-seed1.npz, ... when several seeds train together."""
    if len(seeds) == 1:
        return [output]
    return [output.with_name(f"{output.stem}-seed{s}{output.suffix}") for s in seeds]


def _resolve(config_file, flags: dict, resume: Path | None, seeds: int, output: Path):
    """The config to train, the run it resumes (or None) and the output path (a resumed run is
    written back to itself unless --output is given). ConfigError and RunFileError reach
    EchoGroup.main, which makes them one line and exit 2."""
    from ..runs import load_run

    if resume is None:
        return resolve(config_file, flags), None, output
    if seeds != 1:
        raise UserError("--resume continues one run; it cannot be combined with --seeds")
    resumed = load_run(resume)
    config = resolve(config_file, flags, base=resumed.config)
    from ..trainer import check_resume  # no TensorFlow yet: a refused resume costs nothing

    try:
        check_resume(resumed, config)
    except ConfigError as e:
        raise UserError(f"--resume {str(resume)!r}: {e}") from None
    return config, resumed, output if given("output") else resume


def _check_outputs(outputs: list[Path], config_file: Path | None, resume: Path | None, force: bool) -> list[bool]:
    """Refuse, before any work, an output that would lose something: an existing run file (unless
    --force, or it is the run --resume continues), anything but a regular file, the --config file.
    A missing folder is created first, as a user naming runs/x.npz expects. Returns, for each
    output, whether it may be replaced when it is written (else a file that appeared meanwhile,
    another writer's, is kept and this run saved beside it)."""
    from ..guards import check_output, same_file

    replaces = []
    for path in outputs:
        replace = force or (resume is not None and same_file(path, resume))
        check_output(path, inputs=[config_file] if config_file is not None else [], replace=replace,
                     what="output", make_parents=True)
        replaces.append(replace)
    return replaces


def _prepare_outputs(config: Config, seeds: int, output: Path) -> tuple[list[Config], list[Path]]:
    """One config and one output per seed."""
    check_models(config, seeds)
    seed_list = [config.seed + k for k in range(seeds)]
    configs = [config.replace(seed=s) for s in seed_list]
    return configs, seed_outputs(output, seed_list)


def _headline(configs: list[Config]) -> str:
    c = configs[0]
    what = f"{len(configs)} models" if len(configs) > 1 else "the Echo-RNN"
    if network_text(c):
        what += f" ({network_text(c)})"
    return (f"training {what}: {c.epochs} epochs x {c.windows_per_epoch} windows of "
            f"{c.truncated_backprop_length} steps, echo_step {c.echo_step}, state {c.state_size}")


def _live_figure(config: Config, warn):
    """The live figure of --live, or None (with one warning) where no window can open."""
    from ..figures.common import display_problem
    from ..figures.live import LiveFigure

    problem = display_problem()
    if problem is not None:
        warn(f"--live: {problem}; training goes on without the live figure")
        return None
    try:
        return LiveFigure(config, warn=warn)
    except Exception as e:  # a GUI that fails to start must not stop training
        warn(f"--live: the figure window did not open ({type(e).__name__}: {e}); training goes on")
        return None


def _train(configs, resumed, reporter, figure, warn, stop, logdirs=None):
    """The runs, trained with the reporter (the live figure, the TensorBoard loggers) following every epoch."""
    from ..trainer import DeviceError, train_many

    board = None
    if logdirs:
        from ..tensorboard import GroupLogger

        board = GroupLogger(logdirs, configs, resumed.epochs_completed if resumed else 0)

    def on_epoch(report) -> None:
        stop.nothing_to_lose = False
        reporter.update(report)
        if figure is not None:
            figure.update(report)
        if board is not None:
            board.on_epoch(report)

    reporter.start(_headline(configs), configs[0].epochs)
    stop.nothing_to_lose = stop.signum is None  # a compile of minutes ends at once on a signal
    try:
        runs = train_many(configs, on_epoch=on_epoch, should_stop=stop,
                          resumes=[resumed] if resumed else None, warn=warn)
        if board is not None:
            board.end(runs)
        return runs
    except DeviceError as e:
        raise UserError(str(e)) from None
    finally:
        reporter.stop()
        if board is not None:
            board.close()


def _save_one(run, path: Path, replace: bool) -> tuple[Path, bool]:
    """Write one run to its output, or, when that fails after all the training (a full disk, or
    another writer took the name meanwhile), beside it (the error line says where): (where it went,
    whether that is the output)."""
    from ..guards import save_beside
    from ..runs import save_run

    try:
        return save_run(run, path, replace=replace), True
    except OSError as e:
        reason = e.strerror or str(e)
    try:
        kept = save_beside(lambda p: save_run(run, p, replace=True), path)  # its own reserved name
    except OSError as e:
        fail(f"cannot write the output {str(path)!r} ({reason}), nor anywhere beside it "
             f"({e.strerror or e}); the trained run is lost")
        return path, False
    fail(f"cannot write the output {str(path)!r} ({reason}); the trained run is saved as {str(kept)!r}")
    return kept, False


def _save(runs, outputs: list[Path], replaces: list[bool], resumed, stop) -> tuple[list[Path], bool] | None:
    """Write the runs: (where each went, whether all went to their outputs); None (and nothing
    written) when interrupted before any new epoch ended. Once written, the exit code is settled:
    it follows the saved statuses whatever signal comes later (``interrupts.settle``)."""
    from ..interrupts import settle

    epochs_before = resumed.epochs_completed if resumed else 0
    if stop.signum is not None and all(r.epochs_completed == epochs_before for r in runs):
        # Nothing new to keep: leave whatever is at the output as it was.
        fail("interrupted before the first epoch ended; nothing written")
        return None
    with stop.critical():  # a second Ctrl-C lets the files be renamed into place first, then changes nothing
        saved = [_save_one(run, path, replace) for run, path, replace in zip(runs, outputs, replaces, strict=True)]
        settle()
    return [p for p, _ in saved], all(ok for _, ok in saved)


def _report(runs, outputs: list[Path], reporter, console, as_json: bool, quiet: bool, stop, figure) -> int:
    """The summary, the JSON lines, how to continue an interrupted run; the exit code, which follows
    the saved statuses: a Ctrl-C that came after the last epoch (during the held-out evaluation, say)
    stopped nothing, so a completed run exits 0, the same as without it."""
    reporter.summary([(str(p), r) for p, r in zip(outputs, runs, strict=True)])
    if as_json:
        for run, path in zip(runs, outputs, strict=True):
            click.echo(json.dumps(run.summary(str(path))))
    stopped = [shlex.quote(str(p)) for p, r in zip(outputs, runs, strict=True) if r.status == "interrupted"]
    if stopped:
        if not quiet:
            console.print("continue with: " + " ; ".join(f"echo-rnn train --resume {p}" for p in stopped),
                          soft_wrap=True, markup=False)
        return stop.exit_code
    if stop.signum is not None and not quiet:
        console.print("the stop came after the last epoch: nothing was cut short", soft_wrap=True, markup=False)
    if figure is not None and stop.signum is None:
        figure.finish()
    diverged = [r for r in runs if r.status == "diverged"]
    for r in diverged:
        fail(r.message)
    return EXIT_FAILURE if diverged else EXIT_OK


@click.command()
@config_options
@click.option("--output", "-o", type=FilePath(), default=Path("run.npz"),
              help="Run file to write (with --seeds K: one per seed, named STEM-seedN.npz) [run.npz].")
@click.option("--seeds", type=WholeNumber(min=1), default=1,
              help="Train K models with seeds SEED..SEED+K-1 together in one compiled program [1].")
@click.option("--resume", type=NamedPath(path_type=Path),  # a folder: load_run says so, like plot
              help="Continue this run file up to --epochs in all (written back to --output, or to itself).")
@click.option("--force", is_flag=True,
              help="Replace an existing run file at --output (atomically); without it an existing one is kept.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object per run on stdout.")
@click.option("--quiet", "-q", is_flag=True, help="Print nothing but warnings and errors.")
@click.option("--live", is_flag=True,
              help="Show the tutorial's figure updating after every epoch (needs a display; else a warning).")
@click.option("--tensorboard", type=NamedPath(path_type=Path), metavar="DIR",
              help="Write TensorBoard event files as training goes, into DIR/STEM (STEM: each run file's "
                   "name); view with: tensorboard --logdir DIR.")
def train(config_file, output, seeds, resume, force, as_json, quiet, live, tensorboard, **flags):
    """Train the tutorial's Echo-RNN and write a run file.

    Flags override the --config file, which overrides the tutorial's settings (the defaults shown).

    \b
      echo-rnn train --echo-step 3                  # the tutorial's network -> run.npz
      echo-rnn train --epochs 20 --seed 7 -o runs/seed7.npz
      echo-rnn train --config configs/long-echo.toml --json --quiet
      echo-rnn train --seeds 5 -o runs/run.npz      # run-seed0.npz ... run-seed4.npz
      echo-rnn train --resume run.npz --epochs 200  # continue a run to 200 epochs
      echo-rnn train --echo-step 5 --force          # replace an existing run.npz
      echo-rnn train --stop-at-accuracy 0.99 --tensorboard tb  # then: tensorboard --logdir tb
    """
    config, resumed, output = _resolve(config_file, flags, resume, seeds, output)
    configs, outputs = _prepare_outputs(config, seeds, output)
    replaces = _check_outputs(outputs, config_file, resume, force)
    logdirs = None
    if tensorboard is not None:
        from ..tensorboard import check_logdirs

        logdirs = check_logdirs(tensorboard, [p.stem for p in outputs])

    from ..interrupts import stop_on_signals
    from ..progress import stderr_console, train_reporter, warning

    console = stderr_console()

    def warn(message: str) -> None:
        warning(console, message)

    reporter = train_reporter(quiet)
    figure = _live_figure(configs[0], warn) if live else None
    with stop_on_signals() as stop:  # until the exit code is known, so that it matches what was saved
        runs = _train(configs, resumed, reporter, figure, warn, stop, logdirs)
        saved = _save(runs, outputs, replaces, resumed, stop)
        if saved is None:
            return stop.exit_code
        code = _report(runs, saved[0], reporter, console, as_json, quiet, stop, figure)
        return code if saved[1] else max(code, EXIT_FAILURE)
