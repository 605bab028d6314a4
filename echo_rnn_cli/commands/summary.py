"""The ``echo-rnn summary`` command: a thin click shell over ``summary.collect`` and its table, CSV
and JSON (no TensorFlow).
"""

from __future__ import annotations

from pathlib import Path

import click

from .common import EXIT_FAILURE, EXIT_OK, NamedPath, UserError


@click.command()
@click.argument("paths", nargs=-1, required=True, type=NamedPath(exists=True, path_type=Path),
                metavar="DIR|RUN.npz...")
@click.option("--format", "fmt", type=click.Choice(("table", "csv", "json"), case_sensitive=False),
              default="table",
              help="table: the settings that vary and the results; csv / json: every config key and the results "
                   "[table].")
def summary(paths, fmt):
    """One row per run: its settings and results (held-out accuracy, final loss, wall time, status).

    \b
      echo-rnn summary sweep                       # a table of a sweep's folder
      echo-rnn summary sweep --format csv > sweep.csv
      echo-rnn summary runs/*.npz --format json
    """
    from ..summary import collect, render_table, to_csv, to_json

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
        plain = not console.is_terminal
        if plain:  # a file or pipe has no width to fit: never cut a column
            console = Console(highlight=False, width=100_000)
        render_table(collected.rows, console, plain=plain)
    for error in collected.errors:
        click.echo(f"Error: skipped {error}", err=True)
    return EXIT_FAILURE if collected.errors else EXIT_OK
