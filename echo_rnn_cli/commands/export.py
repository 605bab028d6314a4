"""The ``echo-rnn export`` command: a run's trained network as a Keras model (``export.export_model``).

The destination is checked before TensorFlow is imported (seconds): an existing model is kept
unless ``--force``, and a FIFO, a device or the run file itself is never written over. A SavedModel
is a folder; ``--force`` replaces only a folder that holds a SavedModel, never any other folder.
"""

from __future__ import annotations

from pathlib import Path

import click

from .common import NamedPath, UserError, read_run

FORMATS = ("keras", "savedmodel")  # export.FORMATS, repeated so that --help imports nothing more
WAYS_OUT = "use --force to replace it, or give another name"


def _format(out: Path, fmt: str | None) -> str:
    if fmt is not None:
        return fmt.lower()
    return "keras" if out.suffix == ".keras" else "savedmodel"


def _check_folder_target(out: Path, run: Path, force: bool) -> None:
    """An existing SavedModel folder: replaced only with --force, and only if it is one."""
    if not force:
        raise UserError(f"model {str(out)!r} already exists; {WAYS_OUT}")
    if not (out / "saved_model.pb").is_file():
        raise UserError(f"{str(out)!r} is a folder but not a SavedModel (no saved_model.pb); echo-rnn replaces "
                        "only a SavedModel folder: give a new folder name")
    if out.resolve() in run.resolve().parents:
        raise UserError(f"the run file {str(run)!r} is inside {str(out)!r}; give another folder name")


def _check_target(out: Path, run: Path, fmt: str, force: bool) -> None:
    from ..guards import GuardError, check_output

    if fmt == "keras" and out.suffix != ".keras":
        raise UserError(f"a Keras model file must end in .keras, got {str(out)!r} (or use --format savedmodel)")
    folder = fmt == "savedmodel"
    try:
        check_output(out, inputs=[run], replace=force, what="model", ways_out=WAYS_OUT, folder=folder,
                     make_parents=True)
    except GuardError as e:
        raise UserError(str(e).replace("give another -o", "give another name")) from None
    if folder and out.is_symlink():
        raise UserError(f"{str(out)!r} is a symlink; echo-rnn replaces only a SavedModel folder itself: "
                        "give a new folder name")
    if folder and out.is_dir():
        _check_folder_target(out, run, force)


def _hint(out: Path, fmt: str, classes: int) -> str:
    features = 1 if classes == 2 else classes
    shape = f"(batch, time, {features})"
    if fmt == "keras":
        return (f"load it with: keras.models.load_model({str(out)!r}).predict(x), x float32 {shape}; "
                f"out: class probabilities (batch, time, {classes})")
    return (f"load it with: tf.saved_model.load({str(out)!r}).serve(x), x float32 {shape}; "
            f"out: class probabilities (batch, time, {classes})")


@click.command("export", short_help="Write a run's network as a Keras model (.keras or a SavedModel).")
@click.argument("run", type=NamedPath(path_type=Path), metavar="RUN.npz")
@click.argument("out", type=NamedPath(path_type=Path), metavar="OUT")
@click.option("--format", "fmt", type=click.Choice(FORMATS, case_sensitive=False),
              help="keras: one .keras file; savedmodel: a TensorFlow SavedModel folder "
                   "[keras if OUT ends in .keras, else savedmodel].")
@click.option("--force", is_flag=True, help="Replace OUT if it exists.")
@click.option("--quiet", "-q", is_flag=True, help="Print nothing but errors.")
def export(run, out, fmt, force, quiet):
    """Write RUN's trained network as a Keras model that predicts what `echo-rnn echo` does.

    Built from Keras's own SimpleRNN/LSTM/GRU and Dense layers: input (batch, time, features)
    float32, the symbol itself for 2 classes and one-hot for more; output the class probabilities
    at every step, from a zero state.

    Load it with ``keras.models.load_model('model.keras')`` (see docs/use.md for an example).

    \b
      echo-rnn export run.npz model.keras
      echo-rnn export run.npz served --format savedmodel
    """
    from ..export import ExportError
    from ..files import NameTaken
    from ..inference import WeightsError, run_weights

    loaded = read_run(run)
    fmt = _format(out, fmt)
    _check_target(out, run, fmt, force)
    try:
        run_weights(loaded)  # a diverged run says so before TensorFlow starts
        from ..export import export_model

        # Over what is there only with --force; the exit code settles as the model takes its name.
        path = export_model(loaded, out, fmt=fmt, replace=force, final=True)
    except (ExportError, WeightsError) as e:
        raise UserError(str(e)) from None
    except NameTaken as e:
        raise UserError(f"model {str(out)!r}: {e.strerror}; nothing was written", exit_code=1) from None
    if not quiet:
        layers = int(getattr(loaded.config, "num_layers", 1))
        net = f"{getattr(loaded.config, 'cell', 'rnn')}, {layers} layer{'s' if layers != 1 else ''}"
        click.echo(f"wrote {path} ({fmt}: {net}, state {loaded.config.state_size}, "
                   f"{loaded.config.num_classes} classes)", err=True)
        click.echo(_hint(path, fmt, int(loaded.config.num_classes)), err=True)
