"""The ``echo-rnn`` command: a thin click shell over the Python API.

Parses flags, resolves the config, calls the library, prints. TensorFlow is imported only when a
command actually trains, so ``--help`` and ``plot`` start fast.

Exit codes: 0 done; 1 a failure (a diverged run among them); 2 bad flags, config or input;
130 interrupted by Ctrl-C; 143 stopped by SIGTERM.
"""

from __future__ import annotations

import json
import os
import shlex
import sys
from pathlib import Path

import click

from . import __version__
from .config import DEVICES, INITS, OPTIMIZERS, Config, ConfigError, check_models, resolve
from .runs import RunFileError

EXIT_OK, EXIT_FAILURE, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


class UserError(click.ClickException):
    """A one-line error for bad input (exit 2 unless told otherwise)."""

    exit_code = EXIT_USAGE

    def __init__(self, message: str, exit_code: int | None = None) -> None:
        super().__init__(message)
        if exit_code is not None:
            self.exit_code = exit_code


def fail(message: str) -> None:
    print(f"Error: {message}", file=sys.stderr, flush=True)


class EchoGroup(click.Group):
    """Every error ends as one line on stderr and an exit code; never a traceback.

    Click's own usage errors keep their message and exit code 2, printed on one line with a
    pointer to --help. Set ECHO_RNN_DEBUG=1 to see tracebacks of unexpected failures.
    """

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        try:
            rv = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except click.UsageError as e:
            hint = ""
            if e.ctx is not None:
                hint = f" (see '{e.ctx.command_path} --help')"
            fail(e.format_message() + hint)
            sys.exit(e.exit_code)
        except click.ClickException as e:
            fail(e.format_message())
            sys.exit(e.exit_code)
        except click.Abort:
            fail("aborted")
            sys.exit(EXIT_INTERRUPTED)
        except KeyboardInterrupt:
            fail("interrupted")
            sys.exit(EXIT_INTERRUPTED)
        except BrokenPipeError:
            # The reader of our output went away (`| head`): not our failure, and nothing to say.
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            sys.exit(EXIT_FAILURE)
        except (ConfigError, RunFileError) as e:
            fail(str(e))
            sys.exit(EXIT_USAGE)
        except Exception as e:  # noqa: BLE001 - the promise is: never a traceback
            if os.environ.get("ECHO_RNN_DEBUG"):
                raise
            fail(f"{type(e).__name__}: {e}".splitlines()[0] + " (set ECHO_RNN_DEBUG=1 for details)")
            sys.exit(EXIT_FAILURE)
        sys.exit(rv if isinstance(rv, int) else EXIT_OK)


@click.group(cls=EchoGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="echo-rnn")
def cli() -> None:
    """Train, watch and sweep the Echo-RNN of the tutorial "How to Build a Recurrent Neural
    Network in TensorFlow"."""


class WholeNumber(click.ParamType):
    """An integer flag whose errors say what is allowed ("'1.5' is not a whole number; allowed: 1 or more")."""

    name = "integer"

    def __init__(self, min: int, max: int | None = None) -> None:  # noqa: A002 - click's own names
        self.min, self.max = min, max

    def allowed(self) -> str:
        return f"{self.min} or more" if self.max is None else f"{self.min} to {self.max}"

    def convert(self, value, param, ctx):
        if isinstance(value, int) and not isinstance(value, bool):
            n = value
        else:
            try:
                n = int(str(value).strip(), 10)
            except ValueError:
                self.fail(f"{value!r} is not a whole number; allowed: {self.allowed()}", param, ctx)
        if n < self.min or (self.max is not None and n > self.max):
            self.fail(f"{n} is out of range; allowed: {self.allowed()}", param, ctx)
        return n


class Number(click.ParamType):
    """A float flag; whether the value fits is the config's check (it knows the setting's rules)."""

    name = "number"

    def __init__(self, allowed: str) -> None:
        self._allowed = allowed

    def convert(self, value, param, ctx):
        if isinstance(value, float):
            return value
        try:
            return float(str(value).strip())
        except ValueError:
            self.fail(f"{value!r} is not a number; allowed: {self._allowed}", param, ctx)


class FilePath(click.Path):
    """A file to write: a name that ends in a separator (a folder, surely) or is empty is refused,
    before pathlib drops the separator and the run file takes the folder's name."""

    def __init__(self) -> None:
        super().__init__(dir_okay=False, path_type=Path)

    def convert(self, value, param, ctx):
        if isinstance(value, str):
            if not value.strip():
                self.fail("an empty name; give a file name such as 'run.npz'", param, ctx)
            if value.endswith(("/", os.sep)):
                self.fail(f"{value!r} names a folder; give a file name such as {value + 'run.npz'!r}", param, ctx)
        return super().convert(value, param, ctx)


def config_options(f):
    """One flag per config key; None means 'not given', so the TOML file and defaults apply."""
    d = Config()
    options = [
        click.option("--config", "config_file", type=click.Path(dir_okay=False, path_type=Path),
                     help="TOML file of settings (keys named like the flags, with _); flags override it."),
        click.option("--epochs", type=WholeNumber(min=1), help=f"Passes over a fresh series [{d.epochs}]."),
        click.option("--total-series-length", type=WholeNumber(min=1),
                     help=f"Symbols in each epoch's series [{d.total_series_length}]."),
        click.option("--truncated-backprop-length", type=WholeNumber(min=1),
                     help=f"Steps per window; the gradient stops at window edges [{d.truncated_backprop_length}]."),
        click.option("--state-size", type=WholeNumber(min=1), help=f"Units in the RNN state [{d.state_size}]."),
        click.option("--num-classes", type=WholeNumber(min=2),
                     help=f"Symbols 0..C-1; 2 feeds 0/1, more feed one-hot [{d.num_classes}]."),
        click.option("--echo-step", type=WholeNumber(min=0), help=f"How far the echo lags the input [{d.echo_step}]."),
        click.option("--batch-size", type=WholeNumber(min=1), help=f"Rows the series is cut into [{d.batch_size}]."),
        click.option("--learning-rate", type=Number("a positive finite number such as 0.3"),
                     help=f"Step size, a positive number [{d.learning_rate}]."),
        click.option("--optimizer", type=click.Choice(OPTIMIZERS, case_sensitive=False),
                     help=f"[{d.optimizer}]"),
        click.option("--init", type=click.Choice(INITS, case_sensitive=False),
                     help=f"Initial weights: tutorial (uniform [0,1)) or glorot (for larger states) [{d.init}]."),
        click.option("--seed", type=WholeNumber(min=0), help=f"Seeds data and initial weights [{d.seed}]."),
        click.option("--device", type=click.Choice(DEVICES, case_sensitive=False),
                     help=f"auto uses a GPU when TensorFlow sees one [{d.device}]."),
        click.option("--snapshot-every", type=WholeNumber(min=1),
                     help=f"Windows between prediction snapshots within an epoch [{d.snapshot_every}]."),
    ]
    for option in reversed(options):
        f = option(f)
    return f


def seed_outputs(output: Path, seeds: list[int]) -> list[Path]:
    """run.npz -> run-seed0.npz, run-seed1.npz, ... when several seeds train together."""
    if len(seeds) == 1:
        return [output]
    return [output.with_name(f"{output.stem}-seed{s}{output.suffix}") for s in seeds]


@cli.command()
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
    from .runs import check_writable, load_run, save_run

    resumed = None
    if resume is not None:
        if seeds != 1:
            raise UserError("--resume continues one run; it cannot be combined with --seeds")
        resumed = load_run(resume)
        if not click.get_current_context().get_parameter_source("output").name == "COMMANDLINE":
            output = resume
    # ConfigError and RunFileError reach EchoGroup.main, which makes them one line and exit 2.
    config = resolve(config_file, flags, base=resumed.config if resumed else None)
    if resumed is not None:
        from .trainer import check_resume  # no TensorFlow yet: a refused resume costs nothing

        try:
            check_resume(resumed, config)
        except ConfigError as e:
            raise UserError(f"--resume {str(resume)!r}: {e}") from None
    check_models(config, seeds)
    seed_list = [config.seed + k for k in range(seeds)]
    configs = [config.replace(seed=s) for s in seed_list]
    outputs = seed_outputs(output, seed_list)
    for path in outputs:
        check_writable(path)

    from .interrupts import stop_on_signals
    from .progress import make_reporter, stderr_console

    console = stderr_console()

    def warn(message: str) -> None:
        console.print(f"[yellow]Warning:[/] {message}", soft_wrap=True)

    reporter = make_reporter(quiet)
    figure = _live_figure(configs[0], warn) if live else None

    def on_epoch(report) -> None:
        reporter.update(report)
        if figure is not None:
            figure.update(report)
    c = configs[0]
    what = f"{len(configs)} models" if len(configs) > 1 else "the Echo-RNN"
    with stop_on_signals() as stop:
        from .trainer import DeviceError, train_many

        reporter.start(
            f"training {what}: {c.epochs} epochs x {c.windows_per_epoch} windows of "
            f"{c.truncated_backprop_length} steps, echo_step {c.echo_step}, state {c.state_size}", c.epochs)
        try:
            runs = train_many(configs, on_epoch=on_epoch, should_stop=stop,
                              resumes=[resumed] if resumed else None, warn=warn)
        except DeviceError as e:
            raise UserError(str(e)) from None
        finally:
            reporter.stop()
        epochs_before = resumed.epochs_completed if resumed else 0
        if stop.signum is not None and all(r.epochs_completed == epochs_before for r in runs):
            # Nothing new to keep: leave whatever is at the output as it was.
            fail("interrupted before the first epoch ended; nothing written")
            return stop.exit_code
        with stop.critical():  # a second Ctrl-C lets the files be renamed into place first
            for run, path in zip(runs, outputs):
                save_run(run, path)
    reporter.summary([(str(p), r) for p, r in zip(outputs, runs)])
    if as_json:
        for run, path in zip(runs, outputs):
            click.echo(json.dumps(run.summary(str(path))))
    if stop.signum is not None:
        stopped = [shlex.quote(str(p)) for p, r in zip(outputs, runs) if r.status == "interrupted"]
        if stopped and not quiet:
            console.print("continue with: " + " ; ".join(f"echo-rnn train --resume {p}" for p in stopped),
                          soft_wrap=True, markup=False)
        return stop.exit_code
    if figure is not None:
        figure.finish()
    if any(r.status == "diverged" for r in runs):
        for r in runs:
            if r.status == "diverged":
                fail(r.message)
        return EXIT_FAILURE
    return EXIT_OK


def _live_figure(config: Config, warn):
    """The live figure of --live, or None (with one warning) where no window can open."""
    from .figures.common import display_problem
    from .figures.live import LiveFigure

    problem = display_problem()
    if problem is not None:
        warn(f"--live: {problem}; training goes on without the live figure")
        return None
    try:
        return LiveFigure(config, warn=warn)
    except Exception as e:  # noqa: BLE001 - a GUI that fails to start must not stop training
        warn(f"--live: the figure window did not open ({type(e).__name__}: {e}); training goes on")
        return None


def main() -> None:
    cli(prog_name="echo-rnn")


from .plot_command import plot  # noqa: E402 - plot_command imports UserError from here

cli.add_command(plot)

from .sweep_commands import summary, sweep  # noqa: E402 - sweep_commands imports from here

cli.add_command(sweep)
cli.add_command(summary)

if __name__ == "__main__":  # pragma: no cover
    main()
