"""What every command shares: exit codes, one-line errors, the group that turns any failure into
one line on stderr, and the option types and builders. The command modules import from here;
nothing here imports a command.

Exit codes: 0 done; 1 a failure (a diverged run among them); 2 bad flags, config or input;
130 interrupted by Ctrl-C; 143 stopped by SIGTERM.
"""

from __future__ import annotations

import difflib
import os
import sys
from pathlib import Path

import click

from ..config import SETTINGS, ConfigError, Setting
from ..guards import GuardError
from ..interrupts import Terminated, begin, interrupted, raise_on_sigterm, terminated
from ..runs import RunFileError

EXIT_OK, EXIT_FAILURE, EXIT_USAGE, EXIT_INTERRUPTED, EXIT_TERMINATED = 0, 1, 2, 130, 143


class UserError(click.ClickException):
    """A one-line error for bad input (exit 2 unless told otherwise)."""

    exit_code = EXIT_USAGE

    def __init__(self, message: str, exit_code: int | None = None) -> None:
        super().__init__(message)
        if exit_code is not None:
            self.exit_code = exit_code


def fail(message: str) -> None:
    print(f"Error: {message}", file=sys.stderr, flush=True)


def given(name: str) -> bool:
    """Whether the current command's parameter ``name`` was set on the command line."""
    source = click.get_current_context().get_parameter_source(name)
    return source is not None and source.name == "COMMANDLINE"


def _usage_message(e: click.UsageError) -> str:
    """Click's message, but an unknown option's nearest flag first: click lists its close matches
    alphabetically (--echo-stpe: '--batch-size', '--echo-step', '--epochs'), difflib ranks them."""
    if isinstance(e, click.NoSuchOption) and e.possibilities:
        best = difflib.get_close_matches(e.option_name, e.possibilities, n=len(e.possibilities), cutoff=0)
        return f"{e.message} Did you mean {best[0]}?"
    return e.format_message()


def _exit_for(e: BaseException) -> int:
    """The one line for an exception that ended a command, printed, and its exit code."""
    if isinstance(e, click.UsageError):
        hint = f" (see '{e.ctx.command_path} --help')" if e.ctx is not None else ""
        fail(_usage_message(e) + hint)
        return e.exit_code
    if isinstance(e, click.ClickException):
        fail(e.format_message())
        return e.exit_code
    if isinstance(e, Terminated) or terminated():  # whatever the signal turned into on its way out
        fail("terminated (SIGTERM)")
        return EXIT_TERMINATED
    if isinstance(e, (click.Abort, KeyboardInterrupt)) or interrupted():  # Keras wraps it in a TypeError
        fail("aborted" if isinstance(e, click.Abort) and not interrupted() else "interrupted")
        return EXIT_INTERRUPTED
    if isinstance(e, BrokenPipeError):
        # The reader of our output went away (`| head`): not our failure, and nothing to say.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_FAILURE
    if isinstance(e, (ConfigError, RunFileError, GuardError)):
        fail(str(e))
        return EXIT_USAGE
    fail(f"{type(e).__name__}: {e}".splitlines()[0] + " (set ECHO_RNN_DEBUG=1 for details)")
    return EXIT_FAILURE


class EchoGroup(click.Group):
    """Every error ends as one line on stderr and an exit code; never a traceback.

    Click's own usage errors keep their message and exit code 2, printed on one line with a
    pointer to --help. Set ECHO_RNN_DEBUG=1 to see tracebacks of unexpected failures.
    """

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        begin()
        try:
            with raise_on_sigterm():
                rv = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except (click.ClickException, click.Abort, KeyboardInterrupt, Terminated, BrokenPipeError, ConfigError,
                RunFileError, GuardError) as e:
            sys.exit(_exit_for(e))
        except Exception as e:  # the promise is: never a traceback
            if os.environ.get("ECHO_RNN_DEBUG"):
                raise
            sys.exit(_exit_for(e))
        sys.exit(rv if isinstance(rv, int) else EXIT_OK)


    def format_commands(self, ctx, formatter) -> None:
        """The commands with their first sentences whole, wrapped: click's own cuts each to the
        terminal's width and ends it with '...'."""
        rows = []
        for name in self.list_commands(ctx):
            command = self.get_command(ctx, name)
            if command is not None and not command.hidden:
                rows.append((name, command.get_short_help_str(limit=1_000)))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


class WholeNumber(click.ParamType):
    """An integer flag whose errors say what is allowed ("'1.5' is not a whole number; allowed: 1 or more")."""

    name = "integer"

    def __init__(self, min: int, max: int | None = None) -> None:
        self.min, self.max = min, max

    def allowed(self) -> str:
        return f"{self.min} or more" if self.max is None else f"{self.min} to {self.max}"

    def convert(self, value, param, ctx):
        if isinstance(value, int) and not isinstance(value, bool):
            n = value
        else:
            text = str(value).strip()
            shown = repr(text) if len(text) <= 40 else f"'{text[:20]}...' ({len(text):,} characters)"
            try:
                n = int(text, 10)
            except ValueError:
                digits = text.lstrip("+-")
                # int() refuses more than 4,300 digits: a whole number still, just absurdly large.
                fault = "is out of range" if digits.isascii() and digits.isdigit() else "is not a whole number"
                self.fail(f"{shown} {fault}; allowed: {self.allowed()}", param, ctx)
        if n < self.min or (self.max is not None and n > self.max):
            self.fail(f"{_short(n)} is out of range; allowed: {self.allowed()}", param, ctx)
        return n


def _short(n: int) -> str:
    text = str(n)
    return text if len(text) <= 40 else f"{text[:20]}... ({len(text):,} digits)"


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


class NamedPath(click.Path):
    """A path that names something: an empty (or blank) one is refused, where click would turn it
    into '.' and write or read in the current folder unasked."""

    def convert(self, value, param, ctx):
        if isinstance(value, str) and not value.strip():
            self.fail("an empty name; give a file or folder name", param, ctx)
        return super().convert(value, param, ctx)


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


def setting_option(s: Setting):
    """The flag of one setting, typed by its rules; no default, so None means 'not given' and the
    TOML file and the config's defaults apply. Its help ends with the default in brackets, the one
    style of every option's default ('[100].'; never click's show_default)."""
    if s.choices:
        kind = click.Choice(s.choices, case_sensitive=False)
    elif s.kind == "float":
        kind = Number(s.allowed() if s.off is not None else f"{s.allowed()} such as {s.default}")
    else:
        kind = WholeNumber(min=s.min if s.min is not None else 0, max=s.max)
    return click.option(s.flag, s.name, type=kind, help=f"{s.help} [{s.default}].")


def config_options(f):
    """``--config FILE`` and one flag per setting, in the settings' order."""
    options = [click.option("--config", "config_file", type=NamedPath(dir_okay=False, path_type=Path),
                            help="TOML file of settings (keys named like the flags, with _); flags override it.")]
    options += [setting_option(s) for s in SETTINGS.values()]
    for option in reversed(options):
        f = option(f)
    return f


def read_run(path: Path):
    """A run file for a command that uses its weights: anything but a regular file (a FIFO that would
    block, a device) is refused before it is opened for real; every fault is one line, exit 2."""
    from ..guards import GuardError, open_regular
    from ..runs import load_run

    try:
        with open_regular(path, what="run file"):
            pass
    except GuardError as e:
        raise UserError(str(e)) from None
    return load_run(path)  # RunFileError: one line, exit 2 (the group's handler)
