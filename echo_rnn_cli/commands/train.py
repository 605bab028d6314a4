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
from .common import EXIT_FAILURE, EXIT_OK, FilePath, UserError, WholeNumber, config_options, fail, given


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


def _prepare_outputs(config: Config, seeds: int, output: Path) -> tuple[list[Config], list[Path]]:
    """One config and one writable output per seed, all checked before anything trains."""
    from ..runs import check_writable

    check_models(config, seeds)
    seed_list = [config.seed + k for k in range(seeds)]
    configs = [config.replace(seed=s) for s in seed_list]
    outputs = seed_outputs(output, seed_list)
    for path in outputs:
        check_writable(path)
    return configs, outputs


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


def _train(configs, resumed, reporter, figure, warn, stop):
    """The runs, trained with the reporter (and the live figure) following every epoch."""
    from ..trainer import DeviceError, train_many

    def on_epoch(report) -> None:
        reporter.update(report)
        if figure is not None:
            figure.update(report)

    reporter.start(_headline(configs), configs[0].epochs)
    try:
        return train_many(configs, on_epoch=on_epoch, should_stop=stop,
                          resumes=[resumed] if resumed else None, warn=warn)
    except DeviceError as e:
        raise UserError(str(e)) from None
    finally:
        reporter.stop()


def _save(runs, outputs: list[Path], resumed, stop) -> bool:
    """Write the runs; False (and nothing written) when interrupted before any new epoch ended."""
    from ..runs import save_run

    epochs_before = resumed.epochs_completed if resumed else 0
    if stop.signum is not None and all(r.epochs_completed == epochs_before for r in runs):
        # Nothing new to keep: leave whatever is at the output as it was.
        fail("interrupted before the first epoch ended; nothing written")
        return False
    with stop.critical():  # a second Ctrl-C lets the files be renamed into place first
        for run, path in zip(runs, outputs, strict=True):
            save_run(run, path)
    return True


def _report(runs, outputs: list[Path], reporter, console, as_json: bool, quiet: bool, stop, figure) -> int:
    """The summary, the JSON lines, how to continue an interrupted run; the exit code."""
    reporter.summary([(str(p), r) for p, r in zip(outputs, runs, strict=True)])
    if as_json:
        for run, path in zip(runs, outputs, strict=True):
            click.echo(json.dumps(run.summary(str(path))))
    if stop.signum is not None:
        stopped = [shlex.quote(str(p)) for p, r in zip(outputs, runs, strict=True) if r.status == "interrupted"]
        if stopped and not quiet:
            console.print("continue with: " + " ; ".join(f"echo-rnn train --resume {p}" for p in stopped),
                          soft_wrap=True, markup=False)
        return stop.exit_code
    if figure is not None:
        figure.finish()
    diverged = [r for r in runs if r.status == "diverged"]
    for r in diverged:
        fail(r.message)
    return EXIT_FAILURE if diverged else EXIT_OK


@click.command()
@config_options
@click.option("--output", "-o", type=FilePath(), default=Path("run.npz"), show_default=True,
              help="Run file to write (with --seeds K: one per seed, named STEM-seedN.npz).")
@click.option("--seeds", type=WholeNumber(min=1), default=1, show_default=True,
              help="Train K models with seeds SEED..SEED+K-1 together in one compiled program.")
@click.option("--resume", type=click.Path(dir_okay=False, path_type=Path),
              help="Continue this run file up to --epochs in all (written back to --output, or to itself).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object per run on stdout.")
@click.option("--quiet", "-q", is_flag=True, help="Print nothing but warnings and errors.")
@click.option("--live", is_flag=True,
              help="Show the tutorial's figure updating after every epoch (needs a display; else a warning).")
def train(config_file, output, seeds, resume, as_json, quiet, live, **flags):
    """Train the tutorial's Echo-RNN and write a run file."""
    config, resumed, output = _resolve(config_file, flags, resume, seeds, output)
    configs, outputs = _prepare_outputs(config, seeds, output)

    from ..interrupts import stop_on_signals
    from ..progress import stderr_console, train_reporter, warning

    console = stderr_console()

    def warn(message: str) -> None:
        warning(console, message)

    reporter = train_reporter(quiet)
    figure = _live_figure(configs[0], warn) if live else None
    with stop_on_signals() as stop:
        runs = _train(configs, resumed, reporter, figure, warn, stop)
        if not _save(runs, outputs, resumed, stop):
            return stop.exit_code
    return _report(runs, outputs, reporter, console, as_json, quiet, stop, figure)
