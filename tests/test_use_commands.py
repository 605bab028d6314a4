"""`echo`, `export` and `plot --states` through the command line: a trained network used, not only looked at."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from echo_rnn_cli import Config, Run, load_run, save_run
from echo_rnn_cli.cli import cli
from echo_rnn_cli.data import eval_data
from echo_rnn_cli.figures.states import heldout_row
from echo_rnn_cli.inference import echo, random_symbols
from tests.use_runs import random_weights, trained_rnn_run

ROOT = Path(__file__).resolve().parents[1]


def invoke(args, **kw):
    return CliRunner().invoke(cli, [str(a) for a in args], **kw)


@pytest.fixture(scope="module")
def run_file(tmp_path_factory):
    """The small really trained rnn run, as a file."""
    return save_run(trained_rnn_run(), tmp_path_factory.mktemp("runs") / "trained.npz")


def cell_run_file(folder, monkeypatch, cell, layers, classes, state_size=4):
    """A real run file of ``cell`` with the contract's weights drawn at random (a trained LSTM costs
    a minute of compiling; what these tests check is that the commands compute what the weights say)."""
    base = dict(num_classes=classes, state_size=state_size, total_series_length=600, epochs=1, batch_size=5)
    params = random_weights(cell, layers, classes, state_size)
    path = folder / f"{cell}{layers}.npz"
    opt_state = {"step": np.float32(0)} | {f"slot{i}_{n}": np.zeros_like(w) for i in (1, 2) for n, w in params.items()}
    save_run(Run(config=Config(**base, cell=cell, num_layers=layers), params=params, opt_state=opt_state), path)
    return path, load_run(path)


def _one_error_line(result, fragment):
    assert result.exit_code == 2, result.output
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and fragment in lines[0], result.stderr
    assert "Traceback" not in result.output


# --- echo --------------------------------------------------------------------------------------

def test_echo_json_is_what_the_network_computes(run_file):
    result = invoke(["echo", run_file, "0110100111 0110", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    expected = echo(load_run(run_file), [0, 1, 1, 0, 1, 0, 0, 1, 1, 1, 0, 1, 1, 0])
    assert data == expected.to_json()
    assert set(data) == {"input", "target", "prediction", "accuracy"}
    assert data["input"] == "01101001110110" and data["target"] == "00001101001110"
    assert len(data["prediction"]) == 14 and isinstance(data["accuracy"], float)


def test_echo_prints_aligned_lines_with_wrong_steps_marked_in_a_pipe(run_file):
    symbols = random_symbols(40, 11, 2)
    result = invoke(["echo", run_file, "".join(map(str, symbols))])
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    expected = echo(load_run(run_file), symbols)
    assert lines[0] == "input      " + "".join(map(str, expected.input))
    assert lines[1] == "echo       " + "".join(map(str, expected.target))
    assert lines[2] == "prediction " + "".join(map(str, expected.prediction))
    marks = lines[3][11:].ljust(40)
    wrong = [t for t in range(3, 40) if not expected.correct[t]]
    assert [t for t, m in enumerate(marks) if m == "^"] == wrong
    assert marks[:3] == "..."
    assert lines[4].startswith(f"accuracy {expected.accuracy:.1%}: {37 - len(wrong)} of 37 steps")
    assert len(lines) == 5


def test_echo_random_is_seeded_and_long_sequences_come_in_aligned_blocks(run_file):
    result = invoke(["echo", run_file, "--random", "130", "--seed", "4"])
    assert result.exit_code == 0, result.stderr
    blocks = [line for line in result.stdout.splitlines() if line.startswith("input")]
    assert [len(b) - 11 for b in blocks] == [60, 60, 10]
    assert "".join(b[11:] for b in blocks) == "".join(map(str, random_symbols(130, 4, 2)))
    assert re.findall(r"^ +step (\d+)$", result.stdout, re.M) == ["0", "60", "120"]
    again = invoke(["echo", run_file, "--random", "130", "--seed", "4", "--width", "25"])
    assert [len(line) for line in again.stdout.splitlines() if line.startswith("echo ")] == [36] * 5 + [16]
    assert again.stdout.splitlines()[-1] == result.stdout.splitlines()[-1]  # the same accuracy


def test_echo_colours_wrong_steps_on_a_terminal(run_file):
    symbols = "0110100111" * 3
    coloured = invoke(["echo", run_file, symbols], env={"FORCE_COLOR": "1", "NO_COLOR": None, "COLUMNS": "100"})
    assert coloured.exit_code == 0, coloured.stderr
    assert "\x1b[" in coloured.stdout and "^" not in coloured.stdout
    plain = invoke(["echo", run_file, symbols], env={"FORCE_COLOR": "1", "NO_COLOR": "1"})
    assert "\x1b[" not in plain.stdout and "..." in plain.stdout  # NO_COLOR: the marker line instead


@pytest.mark.parametrize("args, fragment", [
    (["0120"], "digits 0..1"),
    ([""], "empty"),
    (["01", "--random", "5"], "not both"),
    (["--random", "0"], "out of range"),
    (["0101", "--seed", "2"], "--seed applies to --random"),
    ([], "give a SEQUENCE"),
])
def test_echo_refuses_bad_sequences_in_one_line(run_file, args, fragment):
    _one_error_line(invoke(["echo", run_file, *args]), fragment)


@pytest.mark.parametrize("args, fragment", [
    (["0,²,3"], "found '²'"),
    (["0," + "9" * 5000], "(5,000 characters)"),
    (["0," + "0" * 5000 + "13"], "(5,002 characters)"),
    (["0 ١ 3"], "found '١'"),
    (["--random", "1000000000000"], "allowed: 1 to 100000"),
    (["--random", str(10**30)], "allowed: 1 to 100000"),
    (["--random", "9" * 5000], "(5,000 characters) is out of range"),
    (["--random", "100001"], "allowed: 1 to 100000"),
    (["1," * 100_001], "more than the 100,000"),
])
def test_echo_refuses_absurd_input_in_one_line_with_the_limit(tmp_path, monkeypatch, args, fragment):
    """Issue 21, case 5: each of these was a traceback (exit 1) or ran for hours."""
    path, _ = cell_run_file(tmp_path, monkeypatch, "rnn", 1, 12)
    _one_error_line(invoke(["echo", path, *args]), fragment)


def test_echo_feeds_the_longest_sequence_it_allows_in_seconds(run_file):
    import time

    from echo_rnn_cli.commands.echo import MAX_SYMBOLS
    from echo_rnn_cli.inference import MAX_SYMBOLS as INFERENCE_MAX

    assert MAX_SYMBOLS == INFERENCE_MAX
    start = time.monotonic()
    result = invoke(["echo", run_file, "--random", str(MAX_SYMBOLS), "--json"])
    assert result.exit_code == 0, result.stderr
    assert len(json.loads(result.stdout)["input"]) == MAX_SYMBOLS
    assert time.monotonic() - start < 20


def test_echo_refuses_bad_runs_in_one_line(tmp_path):
    diverged = save_run(Run(config=Config(epochs=1, total_series_length=150), status="diverged"),
                        tmp_path / "diverged.npz")
    _one_error_line(invoke(["echo", diverged, "0110"]), "diverged")
    weightless = save_run(Run(config=Config(epochs=1, total_series_length=150), status="completed"),
                          tmp_path / "weightless.npz")
    result = invoke(["echo", weightless, "0110"])  # issue 21, case 10: not "the run diverged"
    _one_error_line(result, "holds no weights (its status is 'completed')")
    assert "diverged" not in result.stderr
    _one_error_line(invoke(["echo", tmp_path / "missing.npz", "0110"]), "does not exist")
    (tmp_path / "junk.npz").write_text("not a run")
    _one_error_line(invoke(["echo", tmp_path / "junk.npz", "0110"]), "not an .npz")
    os.mkfifo(tmp_path / "pipe.npz")  # no writer: opening it for real would wait forever
    _one_error_line(invoke(["echo", tmp_path / "pipe.npz", "0110"]), "FIFO")


@pytest.mark.parametrize("cell, layers, classes", [("lstm", 2, 2), ("gru", 1, 3)])
def test_echo_runs_every_cell(tmp_path, monkeypatch, cell, layers, classes):
    path, run = cell_run_file(tmp_path, monkeypatch, cell, layers, classes)
    text = "0110100111" if classes == 2 else "0120120021"
    result = invoke(["echo", path, text, "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == echo(run, [int(ch) for ch in text]).to_json()


def test_echo_and_plot_states_do_not_import_tensorflow(run_file, tmp_path):
    code = ("import sys; from echo_rnn_cli.cli import cli; "
            f"cli.main(['echo', {str(run_file)!r}, '0110100111', '--json'], standalone_mode=False); "
            f"cli.main(['plot', {str(run_file)!r}, '--states', '-o', {str(tmp_path / 's.png')!r}, '-q'], "
            "standalone_mode=False); "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras')), file=sys.stderr)")
    env = os.environ | {"MPLBACKEND": "Agg", "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env, cwd=ROOT)
    assert out.stderr.strip().splitlines()[-1] == "[]"
    assert json.loads(out.stdout)["input"] == "0110100111"
    assert (tmp_path / "s.png").stat().st_size > 0


# --- export ------------------------------------------------------------------------------------

def _predict(model_path, text, classes):
    import keras

    from echo_rnn_cli.export import keras_inputs

    model = keras.models.load_model(model_path)
    return model.predict(keras_inputs([int(ch) for ch in text], classes), verbose=0)[0].argmax(-1)


def test_export_predicts_what_echo_prints(run_file, tmp_path):
    out = tmp_path / "model.keras"
    result = invoke(["export", run_file, out])
    assert result.exit_code == 0, result.output
    assert f"wrote {out}" in result.stderr and "keras.models.load_model(" in result.stderr
    text = "".join(map(str, random_symbols(120, 9, 2)))
    printed = json.loads(invoke(["echo", run_file, text, "--json"]).stdout)
    assert "".join(map(str, _predict(out, text, 2))) == printed["prediction"]


@pytest.mark.parametrize("cell, layers, classes", [("lstm", 2, 2), ("gru", 2, 3), ("rnn", 2, 4)])
def test_export_of_every_cell_and_stack_predicts_what_echo_prints(tmp_path, monkeypatch, cell, layers, classes):
    path, _ = cell_run_file(tmp_path, monkeypatch, cell, layers, classes)
    out = tmp_path / f"{cell}.keras"
    assert invoke(["export", path, out, "-q"]).exit_code == 0
    text = "".join(map(str, random_symbols(50, layers, classes)))
    printed = json.loads(invoke(["echo", path, text, "--json"]).stdout)
    assert "".join(map(str, _predict(out, text, classes))) == printed["prediction"]


def test_export_keeps_what_exists_unless_forced(run_file, tmp_path):
    out = tmp_path / "model.keras"
    out.write_bytes(b"yesterday's model")
    _one_error_line(invoke(["export", run_file, out]), "already exists; use --force")
    assert out.read_bytes() == b"yesterday's model"
    assert invoke(["export", run_file, out, "--force", "-q"]).exit_code == 0
    assert out.read_bytes() != b"yesterday's model"
    _one_error_line(invoke(["export", run_file, run_file, "--format", "keras", "--force"]), "must end in .keras")
    _one_error_line(invoke(["export", run_file, run_file, "--format", "savedmodel", "--force"]), "is the input")
    os.mkfifo(tmp_path / "pipe.keras")
    _one_error_line(invoke(["export", run_file, tmp_path / "pipe.keras", "--force"]), "FIFO")
    _one_error_line(invoke(["export", run_file, tmp_path / "m.h5", "--format", "keras"]), "must end in .keras")
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "keep.txt").write_text("mine")
    _one_error_line(invoke(["export", run_file, tmp_path / "notes", "--force"]), "not a SavedModel")
    assert (tmp_path / "notes" / "keep.txt").read_text() == "mine"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.keras", "notes", "pipe.keras"]


def test_export_savedmodel_is_picked_by_the_name_and_replaced_only_when_forced(run_file, tmp_path):
    from echo_rnn_cli._tf import tf
    from echo_rnn_cli.export import keras_inputs

    out = tmp_path / "served"
    result = invoke(["export", run_file, out])
    assert result.exit_code == 0, result.output
    assert (out / "saved_model.pb").is_file() and "tf.saved_model.load(" in result.stderr
    _one_error_line(invoke(["export", run_file, out]), "already exists")
    assert invoke(["export", run_file, out, "--force", "-q"]).exit_code == 0
    symbols = random_symbols(30, 2, 2)
    loaded = tf.saved_model.load(str(out))  # kept: its variables die with it
    served = loaded.serve(tf.constant(keras_inputs(symbols, 2))).numpy()[0]
    assert np.array_equal(served.argmax(-1), echo(load_run(run_file), symbols).prediction)


@pytest.mark.slow
@pytest.mark.parametrize("args, temporary", [
    (["export", "{run}", "served", "--format", "savedmodel"], ".served.*"),
    (["export", "{run}", "m.keras"], ".m.keras.*"),
    (["plot", "{run}", "--animate", "a.gif", "--frames", "400", "-q"], ".a.gif.*"),
])
def test_sigterm_to_the_group_while_writing_leaves_nothing_behind(run_file, tmp_path, args, temporary):
    """Issue 21, case 10: SIGTERM killed an export inside its `finally`-guarded staging, leaving an
    empty hidden `.OUT.XXXXXXXX` folder beside OUT. Signalled as `timeout` does (the process, then
    its group) as soon as the temporary file or folder appears: exit 143, one line, nothing left."""
    import signal
    import time

    proc = subprocess.Popen([sys.executable, "-m", "echo_rnn_cli", *[a.format(run=run_file) for a in args]],
                            cwd=tmp_path, stderr=subprocess.PIPE, text=True, start_new_session=True,
                            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    deadline = time.monotonic() + 120
    def staging():  # the output's own temporary, not the write check's brief .probe file
        return [p for p in tmp_path.glob(temporary) if p.suffix != ".probe"]

    while not staging() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    assert proc.poll() is None, proc.stderr.read()
    os.kill(proc.pid, signal.SIGTERM)
    time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGTERM)
    err = proc.stderr.read()
    code = proc.wait(timeout=60)
    if code == 0:  # a small output can be renamed into place between the two looks (an idle machine)
        assert [p.name for p in tmp_path.iterdir()] == [args[2] if args[0] == "export" else "a.gif"], err
        return
    assert code == 143, err
    assert err.strip() == "Error: terminated (SIGTERM)", err
    assert list(tmp_path.iterdir()) == []


def test_export_refuses_a_diverged_run(tmp_path):
    diverged = save_run(Run(config=Config(epochs=1, total_series_length=150), status="diverged"), tmp_path / "d.npz")
    _one_error_line(invoke(["export", diverged, tmp_path / "d.keras"]), "diverged")
    assert not (tmp_path / "d.keras").exists()


# --- plot --states -----------------------------------------------------------------------------

def test_heldout_row_is_the_evaluations_data():
    config = Config(total_series_length=1500)
    xs, _ = eval_data(config)  # [W, B, T]
    for row in (0, 4):
        np.testing.assert_array_equal(heldout_row(config, row, 50), xs[:, row, :].reshape(-1)[:50])


def test_plot_states_writes_a_wide_png_beside_the_run(run_file, tmp_path):
    result = invoke(["plot", run_file, "--states", "--row", "2", "--steps", "45"])
    assert result.exit_code == 0, result.output
    png = run_file.with_name("trained-states.png")
    assert f"wrote {png}" in result.stderr and "held-out row 2 of 5, steps 0..44" in result.stderr
    width, height = Image.open(png).size
    assert width >= 800 and height > 200
    pixels = np.asarray(Image.open(png).convert("RGB")).astype(int)
    assert pixels.std() > 20
    svg = tmp_path / "states.svg"
    assert invoke(["plot", run_file, "--states", "-o", svg, "-q"]).exit_code == 0
    assert "from a zero state" in svg.read_text()


def test_plot_states_draws_the_lstm_cell_state_too(tmp_path, monkeypatch):
    rnn, _ = cell_run_file(tmp_path, monkeypatch, "rnn", 1, 2)
    lstm, _ = cell_run_file(tmp_path, monkeypatch, "lstm", 1, 2)
    for path in (rnn, lstm):
        assert invoke(["plot", path, "--states", "-q"]).exit_code == 0
    heights = [Image.open(p.with_name(f"{p.stem}-states.png")).size[1] for p in (rnn, lstm)]
    assert heights[1] > heights[0] * 1.3  # h and c panels against h alone


@pytest.mark.parametrize("args, fragment", [
    (["--states", "--row", "6"], "rows 1..5"),
    (["--states", "--steps", "100000"], "has 300 steps"),
    (["--row", "2"], "--row applies to --states only"),
    (["--states", "--rows", "2"], "--rows does not apply to --states"),
    (["--states", "--animate", "x.gif"], "cannot be combined with --animate"),
])
def test_plot_states_refuses_bad_requests(run_file, args, fragment):
    _one_error_line(invoke(["plot", run_file, *args]), fragment)


def test_plot_states_refuses_a_diverged_run(tmp_path):
    diverged = save_run(Run(config=Config(epochs=1, total_series_length=150), status="diverged"), tmp_path / "d.npz")
    _one_error_line(invoke(["plot", diverged, "--states"]), "diverged")


@pytest.fixture
def sigterm_raises():
    """``raise_on_sigterm`` as the commands run under it; the process's handler and flag restored after."""
    import signal

    from echo_rnn_cli import interrupts

    before = signal.getsignal(signal.SIGTERM)
    try:
        with interrupts.raise_on_sigterm():
            yield interrupts
    finally:
        signal.signal(signal.SIGTERM, before)
        interrupts.begin()


@pytest.mark.parametrize("make", ["mkstemp", "mkdtemp"])
def test_a_sigterm_as_the_temporary_appears_leaves_nothing_behind(tmp_path, monkeypatch, sigterm_raises, make):
    """The race the group-signal test above caught under load: the signal lands as ``mkstemp``
    (``mkdtemp`` for a SavedModel) returns, after the file exists and before its name is known.
    Here its handler runs at exactly that moment, as Python would run it there."""
    import signal
    import tempfile

    import echo_rnn_cli._tf  # noqa: F401 - loaded first: its compile cache makes a folder of its own
    from echo_rnn_cli.export import _save_savedmodel
    from echo_rnn_cli.files import atomic_write

    real = getattr(tempfile, make)

    def then_sigterm(*args, **kwargs):
        made = real(*args, **kwargs)
        signal.getsignal(signal.SIGTERM)(signal.SIGTERM, None)
        return made

    monkeypatch.setattr(tempfile, make, then_sigterm)
    with pytest.raises(sigterm_raises.Terminated):
        if make == "mkstemp":
            atomic_write(tmp_path / "out.npz", lambda tmp: tmp.write_bytes(b"never"))
        else:
            _save_savedmodel(None, tmp_path / "served")
    assert list(tmp_path.iterdir()) == []
