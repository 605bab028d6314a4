"""The ``echo-rnn echo`` command: feed a sequence to a trained network and show its echo.

NumPy alone (``inference``): no TensorFlow import, so it answers in a fraction of a second. Three
aligned lines per block of steps (input, the echo it should produce, the prediction), wrong steps in
colour on a terminal and marked on a line of their own in a pipe or with NO_COLOR, then the accuracy
over the steps that can be predicted (from echo_step on).
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from .common import NamedPath, UserError, WholeNumber, given, read_run

#: ``inference.MAX_SYMBOLS``, not imported: that module imports NumPy, and --help must stay light.
MAX_SYMBOLS = 100_000

LABEL = 11  # "prediction " and the other labels, padded to this width
PIPE_STEPS = 60  # steps per block when there is no terminal width to fill
ROWS = (("input", "input"), ("echo", "target"), ("prediction", "prediction"))
#: Under each step in the marker line: a wrong prediction, one not counted (nothing to echo yet).
WRONG_MARK, UNCOUNTED_MARK = "^", "."


def _symbols(run, sequence: str | None, length: int | None, seed: int):
    from ..inference import SequenceError, parse_symbols, random_symbols

    classes = int(run.config.num_classes)
    if sequence is not None and length is not None:
        raise UserError("give a SEQUENCE or --random N, not both")
    if sequence is None and length is None:
        raise click.UsageError("give a SEQUENCE of symbols (e.g. 0110100111) or --random N")
    if length is None and given("seed"):
        raise UserError("--seed applies to --random only")
    try:
        return parse_symbols(sequence, classes) if length is None else random_symbols(length, seed, classes)
    except SequenceError as e:
        raise UserError(str(e)) from None


def _explained(run, result) -> dict:
    """``--explain``: by the flip test (``memory_profile.explain``), the lag of the earlier input
    each prediction rests on most (None where no input moves it by ``NO_MEMORY_BELOW``) and how
    much flipping that input changes the probability of the predicted symbol."""
    from ..inference import network_of, run_weights
    from ..memory_profile import NO_MEMORY_BELOW, explain, lags_for

    found = explain(run_weights(run), symbols=result.input, lags=lags_for(run.config), **network_of(run.config))
    rests = found.change >= NO_MEMORY_BELOW
    return {"lag": [int(k) if ok else None for k, ok in zip(found.lag, rests, strict=True)],
            "change": [round(float(c), 4) for c in found.change]}


def _cells(result, extra: dict[str, list[str]] | None = None) -> tuple[dict[str, list[str]], list[str], int]:
    """Each row's symbol per step as text (and the --explain row), the mark of each step (ok /
    wrong / uncounted) and the width every step takes so that the rows stay aligned."""
    rows = {key: [str(int(s)) for s in getattr(result, key)] for _, key in ROWS} | (extra or {})
    marks = ["uncounted" if t < result.echo_step else ("ok" if ok else "wrong")
             for t, ok in enumerate(result.correct)]
    width = max(len(s) for cells in rows.values() for s in cells)
    return rows, marks, width + (1 if result.num_classes > 10 else 0)  # numbers need a space between


def _block_steps(width: int, per_block: int | None, terminal_width: int | None) -> int:
    if per_block is not None:
        return per_block
    if terminal_width is None:
        return PIPE_STEPS
    fit = max(10, (terminal_width - LABEL) // width)
    return fit - fit % 10 if fit >= 20 else fit  # whole tens read easily when there is room


def _row_names(rows: dict) -> tuple:
    return ROWS + tuple((key, key) for key in rows if key not in {k for _, k in ROWS})


def _plain_blocks(result, per_block: int | None, extra: dict | None = None) -> list[str]:
    rows, marks, width = _cells(result, extra)
    step = _block_steps(width, per_block, None)
    symbol = {"ok": " ", "wrong": WRONG_MARK, "uncounted": UNCOUNTED_MARK}
    lines = []
    for start in range(0, len(marks), step):
        stop = min(start + step, len(marks))
        if len(marks) > step:
            lines.append(f"{'':{LABEL}}step {start}")
        for label, key in _row_names(rows):
            lines.append(f"{label:{LABEL}}" + "".join(f"{s:>{width}}" for s in rows[key][start:stop]))
        lines.append((" " * LABEL + "".join(f"{symbol[m]:>{width}}" for m in marks[start:stop])).rstrip())
    return lines


def _print_rich(console, result, per_block: int | None, extra: dict | None = None) -> None:
    from rich.text import Text

    rows, marks, width = _cells(result, extra)
    step = _block_steps(width, per_block, console.width)
    style = {"ok": "green", "wrong": "bold white on red", "uncounted": "dim"}
    for start in range(0, len(marks), step):
        stop = min(start + step, len(marks))
        if len(marks) > step:
            console.print(Text(f"{'':{LABEL}}step {start}", style="dim"))
        for label, key in _row_names(rows):
            line = Text()
            line.append(f"{label:{LABEL}}", style="bold")  # not Text(..., style=): that would bold the whole line
            for t in range(start, stop):
                cell = f"{rows[key][t]:>{width}}"
                line.append(cell, style=style[marks[t]] if key == "prediction" else ("dim" if t < result.echo_step
                                                                                      else ""))
            console.print(line, soft_wrap=True)


def _accuracy_line(result, marked: bool) -> str:
    counted = max(0, result.correct.size - result.echo_step)
    if result.accuracy is None:
        return (f"accuracy n/a: no step from echo_step {result.echo_step} on (give more than "
                f"{result.echo_step} symbols)")
    right = int(result.correct[result.echo_step:].sum())
    legend = (f"; {WRONG_MARK} wrong, {UNCOUNTED_MARK} nothing to echo yet" if marked
              else "; wrong steps in red, the first steps have nothing to echo yet")
    return (f"accuracy {result.accuracy:.1%}: {right} of {counted} steps from step {result.echo_step} "
            f"(echo_step) on{legend}")


@click.command("echo", short_help="Feed symbols to a trained network and show its echo (no TensorFlow).")
@click.argument("run", type=NamedPath(path_type=Path), metavar="RUN.npz")
@click.argument("sequence", required=False)
@click.option("--random", "length", type=WholeNumber(min=1, max=MAX_SYMBOLS), metavar="N",
              help=f"Feed N random symbols instead of a SEQUENCE (at most {MAX_SYMBOLS:,}).")
@click.option("--seed", type=WholeNumber(min=0), default=0,
              help="Seed of the --random symbols [0].")
@click.option("--json", "as_json", is_flag=True,
              help="Print one JSON object: input, target, prediction (strings) and accuracy.")
@click.option("--width", "per_block", type=WholeNumber(min=1), metavar="STEPS",
              help="Steps per block of lines [as many as fit the terminal; 60 in a pipe].")
@click.option("--explain", is_flag=True,
              help="Add a line 'rests on': for each prediction, how many steps back the input lies whose flip "
                   "changes it most (- where no input moves it by 5%), by flipping each input in turn; in "
                   "--json, 'rests_on' and 'change' lists.")
def echo(run, sequence, length, seed, as_json, per_block, explain):
    """Feed a SEQUENCE of symbols to RUN's trained network and show its echo.

    The network starts from a zero state and carries it step by step. SEQUENCE is digits 0..C-1
    (0110100111; commas and spaces ignored), or for more than 10 classes whole numbers separated
    by commas. The accuracy counts the steps from echo_step on: before them there is nothing to
    echo yet. No TensorFlow is needed.

    \b
      echo-rnn echo run.npz 0110100111
      echo-rnn echo run.npz --random 200 --seed 7
      echo-rnn echo run.npz 0110100111 --json
      echo-rnn echo run.npz 0110100111 --explain
    """
    from ..inference import SequenceError, WeightsError
    from ..inference import echo as echo_sequence

    loaded = read_run(run)
    symbols = _symbols(loaded, sequence, length, seed)
    if explain:  # its bound first: refused before any work, with the longest sequence it takes
        from ..memory_profile import check_explain_work

        try:
            check_explain_work(loaded.config, symbols.shape[0])
        except SequenceError as e:
            raise UserError(str(e)) from None
    try:
        result = echo_sequence(loaded, symbols, keep_states=False)  # states are not printed
    except (SequenceError, WeightsError) as e:
        raise UserError(str(e)) from None
    explained = _explained(loaded, result) if explain else None
    if as_json:
        extra = {} if explained is None else {"rests_on": explained["lag"], "change": explained["change"]}
        click.echo(json.dumps(result.to_json() | extra))
        return
    from rich.console import Console

    extra = None if explained is None else {"rests on": ["-" if k is None else str(k) for k in explained["lag"]]}
    console = Console(highlight=False)
    coloured = console.is_terminal and not console.no_color
    if coloured:
        _print_rich(console, result, per_block, extra)
    else:
        click.echo("\n".join(_plain_blocks(result, per_block, extra)))
    click.echo(_accuracy_line(result, marked=not coloured))
