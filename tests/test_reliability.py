"""Reliability, as a user running sweeps from scripts meets it: every bad input refused with one
line and exit 2 before any work, nothing written or touched; Ctrl-C and SIGTERM keep the run; a
diverging run is saved and named; resume continues bit for bit; the same seed gives the same
trace in another process; every reader refuses broken files with one line."""

import io
import json
import os
import signal
import struct
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from echo_rnn_cli import Config, Run, interrupts, load_run, save_run, train
from echo_rnn_cli.runs import RunFileError
from tests.conftest import SMALL, small_flags
from tests.conftest import run_cli_output as run_cli

ENV = {**os.environ, "PYTHONUNBUFFERED": "1", "MPLBACKEND": "Agg"}
OLD = b"an older run file that must survive\n"


def assert_one_line_error(err: str, *fragments: str) -> None:
    assert "Traceback" not in err, err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("Error: "), err
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])


def files_in(folder: Path) -> set[str]:
    return {p.name for p in folder.iterdir()}


# ---------------------------------------------------------------- bad flags and config keys

#: (flags, fragments the one line must hold: the flag, the value, what is allowed)
BAD_FLAGS = [
    (["--epochs", "0"], ["--epochs", "0", "1 or more"]),
    (["--epochs", "-3"], ["--epochs", "-3", "1 or more"]),
    (["--epochs", "1.5"], ["--epochs", "'1.5' is not a whole number", "1 or more"]),
    (["--epochs", "ten"], ["--epochs", "'ten'", "whole number"]),
    (["--total-series-length", "0"], ["--total-series-length", "0", "1 or more"]),
    (["--truncated-backprop-length", "0"], ["--truncated-backprop-length", "0", "1 or more"]),
    (["--state-size", "-1"], ["--state-size", "-1", "1 or more"]),
    (["--state-size", "4.0"], ["--state-size", "'4.0'", "whole number"]),
    (["--batch-size", "0"], ["--batch-size", "0", "1 or more"]),
    (["--snapshot-every", "0"], ["--snapshot-every", "0", "1 to 1000000000"]),
    (["--num-classes", "1"], ["--num-classes", "1", "2 or more"]),
    (["--echo-step", "-1"], ["--echo-step", "-1", "0 or more"]),
    (["--echo-step", "300"], ["--echo-step 300", "not shorter than a row", "0 to 299"]),
    (["--truncated-backprop-length", "400"], ["--truncated-backprop-length 400", "longer than a row", "1 to 300"]),
    (["--total-series-length", "3"], ["--total-series-length 3", "too short", "batch_size"]),
    (["--seed", "-1"], ["--seed", "-1", "0 or more"]),
    (["--learning-rate", "0"], ["--learning-rate", "0.0", "positive finite number"]),
    (["--learning-rate", "-0.1"], ["--learning-rate", "-0.1", "positive finite number"]),
    (["--learning-rate", "nan"], ["--learning-rate", "nan", "positive finite number"]),
    (["--learning-rate", "inf"], ["--learning-rate", "inf", "positive finite number"]),
    (["--learning-rate", "fast"], ["--learning-rate", "'fast' is not a number", "positive finite number"]),
    (["--learning-rate", "1e39"], ["--learning-rate", "1e+39", "between", "float32"]),
    (["--optimizer", "lbfgs"], ["--optimizer", "'lbfgs'", "'adagrad', 'adam', 'sgd', 'rmsprop'"]),
    (["--device", "tpu"], ["--device", "'tpu'", "'auto', 'cpu', 'gpu'"]),
    (["--init", "zeros"], ["--init", "'zeros'", "'tutorial', 'glorot'"]),
    (["--stride", "16"], ["--stride 16", "longer than the window", "1 to 15"]),
    (["--dropout", "1"], ["--dropout", "1.0", "from 0 up to (not including) 1"]),
    (["--dropout", "-0.1"], ["--dropout", "-0.1", "from 0 up to (not including) 1"]),
    (["--num-layers", "0"], ["--num-layers", "0", "1 to 16"]),
    (["--cell", "lstm", "--init", "glorot"], ["--init 'glorot' does not apply to --cell 'lstm'", "auto, keras"]),
    (["--seeds", "0"], ["--seeds", "0", "1 or more"]),
    (["--seeds", str(10**30)], ["--seeds 1.00e+30", "models", "GiB", "at most"]),
    # Too big for memory: refused at once, naming the setting and the largest value that fits.
    (["--state-size", "100000"], ["--state-size 100000", "GiB of memory", "allowed: at most"]),
    (["--total-series-length", str(10**11)], ["--total-series-length 100000000000", "GiB", "at most"]),
    (["--epochs", str(10**12)], ["--epochs 1000000000000", "GiB", "at most"]),
    (["--num-classes", str(10**9)], ["--num-classes 1000000000", "GiB", "at most"]),
    (["--epochs", "1" + "0" * 400], ["--epochs 1.00e+400", "GiB", "at most"]),
    # Issue 21: every number has an upper bound, and one past Python's own limit is still one line.
    (["--epochs", "9" * 5000], ["--epochs", "(5,000 characters) is out of range"]),
    (["--snapshot-every", str(10**30)], ["--snapshot-every", "1 to 1000000000"]),
    (["--num-layers", "500"], ["--num-layers", "500", "1 to 16"]),
    (["--num-layers", "100000"], ["--num-layers", "100000", "1 to 16"]),
    (["--config", "missing.toml"], ["config file", "missing.toml", "does not exist"]),
    (["--colour", "red"], ["No such option", "--colour"]),
]


@pytest.mark.parametrize("existing", [False, True], ids=["no-file", "existing-file"])
@pytest.mark.parametrize("args, fragments", BAD_FLAGS, ids=[" ".join(a)[:40] for a, _ in BAD_FLAGS])
def test_bad_flag_is_one_line_exit_2_nothing_written(tmp_path, capsys, monkeypatch, args, fragments, existing):
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "r.npz"
    if existing:
        out.write_bytes(OLD)
    code, stdout, err = run_cli(["train", *small_flags(), "-o", out, *args], capsys)
    assert code == 2, err
    assert_one_line_error(err, *fragments)
    assert stdout == ""
    assert files_in(tmp_path) == ({"r.npz"} if existing else set())
    if existing:
        assert out.read_bytes() == OLD


#: (TOML text, fragments): each names the key, the file, the value and what is allowed.
BAD_TOML = [
    ("epochs = 2\nstate_size = 4\nbatch_size = = 5\n", ["not valid TOML", "line 3"]),
    ("epochs = 2\nstate_size =\n", ["not valid TOML", "line 2"]),
    ("epochs = 2\n[train", ["not valid TOML", "line 2"]),  # tomllib says "end of document" here
    ("epochs = 2\nepochs = 3\n", ["not valid TOML", "line 2"]),
    ("colour = 'red'\n", ["unknown key 'colour'", "allowed: epochs"]),
    ("echo-step = 3\n", ["unknown key 'echo-step'", "did you mean 'echo_step'"]),
    ("[train]\nepochs = 1\n", ["unknown key 'train'"]),
    ("epochs = '5'\n", ["'epochs' in", "must be a whole number, got '5'", "without quotes"]),
    ("epochs = 2.5\n", ["'epochs' in", "must be a whole number, got 2.5"]),
    ("batch_size = true\n", ["'batch_size' in", "must be a whole number, got True"]),
    ("state_size = [4]\n", ["'state_size' in", "must be a whole number, got [4]"]),
    ("learning_rate = 'fast'\n", ["'learning_rate' in", "positive finite number, got 'fast'"]),
    ("learning_rate = -1\n", ["'learning_rate' in", "positive finite number, got -1.0"]),
    ("learning_rate = inf\n", ["'learning_rate' in", "positive finite number, got inf"]),
    ("optimizer = 3\n", ["'optimizer' in", "one of adagrad, adam, sgd, rmsprop, got 3"]),
    ("optimizer = 'lbfgs'\n", ["'optimizer' in", "one of adagrad, adam, sgd, rmsprop, got 'lbfgs'"]),
    ("device = 'tpu'\n", ["'device' in", "one of auto, cpu, gpu, got 'tpu'"]),
    ("epochs = 0\n", ["'epochs' in", "at least 1, got 0"]),
    ("num_classes = 1\n", ["'num_classes' in", "at least 2, got 1"]),
    ("echo_step = -2\n", ["'echo_step' in", "0 or more, got -2"]),
    ("state_size = 100000\n", ["'state_size' in", "100000", "allowed: at most"]),
]


@pytest.mark.parametrize("text, fragments", BAD_TOML, ids=[t.splitlines()[-1][:30] for t, _ in BAD_TOML])
def test_bad_toml_is_one_line_exit_2_nothing_written(tmp_path, capsys, text, fragments):
    cfg = tmp_path / "c.toml"
    cfg.write_text(text)
    out = tmp_path / "r.npz"
    out.write_bytes(OLD)
    # The small settings as flags, except those the file sets (flags would override the file).
    flags = [a for k, v in SMALL.items() if k not in text for a in (f"--{k.replace('_', '-')}", v)]
    code, _, err = run_cli(["train", *flags, "--config", cfg, "-o", out], capsys)
    assert code == 2, err
    assert_one_line_error(err, "c.toml", *fragments)
    assert out.read_bytes() == OLD and files_in(tmp_path) == {"c.toml", "r.npz"}


def test_config_that_is_not_a_text_file(tmp_path, capsys):
    cfg = tmp_path / "c.toml"
    cfg.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00")
    code, _, err = run_cli(["train", "--config", cfg, "-o", tmp_path / "r.npz"], capsys)
    assert code == 2
    assert_one_line_error(err, "c.toml", "not a TOML text file")
    code, _, err = run_cli(["train", "--config", tmp_path, "-o", tmp_path / "r.npz"], capsys)
    assert code == 2
    assert_one_line_error(err, "--config", "directory")
    assert files_in(tmp_path) == {"c.toml"}


def test_bad_input_is_refused_before_tensorflow_is_imported(tmp_path):
    """A mistake costs a fraction of a second: nothing heavy is loaded before it is named."""
    cases = [["--epochs", "0"], ["--learning-rate", "nan"], ["--state-size", "100000"], ["--seeds", "10000000"],
             ["-o", str(tmp_path / "file.txt" / "r.npz")], ["--resume", str(tmp_path / "missing.npz")],
             ["--resume", str(tmp_path / "r.npz"), "--state-size", "5"]]
    (tmp_path / "file.txt").write_text("a file, not a folder")
    save_run(Run(config=Config(**SMALL)), tmp_path / "r.npz")
    code = ("import sys\nfrom echo_rnn_cli.cli import cli\n"
            f"for args in {cases!r}:\n"
            "    try:\n        cli.main(['train', *args])\n"
            "    except SystemExit as e:\n        assert e.code == 2, (args, e.code)\n"
            "assert 'tensorflow' not in sys.modules, 'tensorflow was imported'\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=ENV, timeout=120,
                          cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == len(cases) and "Traceback" not in proc.stderr


# ---------------------------------------------------------------- fuzzing the numeric flags

NUMERIC_FLAGS = ["--epochs", "--total-series-length", "--truncated-backprop-length", "--state-size",
                 "--num-classes", "--echo-step", "--batch-size", "--seed", "--snapshot-every", "--learning-rate",
                 "--seeds"]
numbers = st.one_of(
    st.integers(min_value=-5, max_value=40),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(["", " ", "1e3", "0x10", "1_000", "--", "nan", "-inf", "3.", "٣", "1" * 60]),
    st.text(max_size=8),
).map(str)


@settings(max_examples=300, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(flags=st.dictionaries(st.sampled_from(NUMERIC_FLAGS), numbers, min_size=1, max_size=4))
def test_fuzzed_numeric_flags_never_trace_back(tmp_path, capsys, flags):
    """Whatever the numbers, one line and exit 2. The output is a path under a regular file, so a
    combination that passes validation is stopped by the output check (also exit 2) instead of
    training: every generated input goes through the whole validation, none trains."""
    blocker = tmp_path / "file.txt"
    blocker.write_text("not a folder")
    args = ["train", "--quiet", "-o", blocker / "r.npz"]
    for flag, value in flags.items():
        args += [f"{flag}={value}"]  # '=' so that values starting with '-' stay values
    code, stdout, err = run_cli(args, capsys)
    assert code == 2, (args, err)
    assert "Traceback" not in err and stdout == ""
    assert len(err.strip().splitlines()) == 1 and err.startswith("Error: "), (args, err)
    assert files_in(tmp_path) == {"file.txt"}


@pytest.mark.slow  # each example is a new shape: a compile each
@settings(max_examples=5, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(t=st.integers(1, 12), state=st.integers(1, 6), classes=st.integers(2, 4), echo=st.integers(0, 11),
       batch=st.integers(1, 5), series=st.integers(60, 400), snap=st.integers(1, 30),
       lr=st.sampled_from(["0.3", "1e-3", "1e38"]), optimizer=st.sampled_from(["adagrad", "adam", "sgd", "rmsprop"]))
def test_fuzzed_small_valid_settings_train(tmp_path, capsys, t, state, classes, echo, batch, series, snap, lr,
                                           optimizer):
    """Valid settings of every shape (rows of at least 12 steps: every window and echo fits) really
    train: exit 0, or 1 for a run that diverged, with its file either way; never a traceback."""
    out = tmp_path / "r.npz"
    args = ["train", "--json", "--quiet", "--force", "--epochs", "1", "-o", out, f"--snapshot-every={snap}",
            f"--truncated-backprop-length={t}", f"--state-size={state}", f"--num-classes={classes}",
            f"--echo-step={echo}", f"--batch-size={batch}", f"--total-series-length={series}",
            f"--learning-rate={lr}", "--optimizer", optimizer, "--init", "glorot"]
    code, stdout, err = run_cli(args, capsys)
    assert "Traceback" not in err
    summary = json.loads(stdout)
    assert (code, summary["status"]) in {(0, "completed"), (1, "diverged")}, (code, err)
    assert load_run(out).status == summary["status"]


# ---------------------------------------------------------------- output files


def test_output_that_cannot_be_written_is_refused_before_training(tmp_path, capsys):
    (tmp_path / "file.txt").write_text("a file")
    for target, fragment in [(tmp_path / "file.txt" / "r.npz", "cannot write the output"),
                             (tmp_path, "is a directory"), (f"{tmp_path / 'new'}/", "names a folder")]:
        code, _, err = run_cli(["train", *small_flags(), "-o", target], capsys)
        assert code == 2
        assert_one_line_error(err, str(target), fragment)
    assert files_in(tmp_path) == {"file.txt"}


def _read_only_folder(tmp_path) -> Path:
    """A folder this process cannot write to: a chmod 500 one, or as root (whom modes do not stop),
    sysfs, which the kernel keeps read-only even for root."""
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o500)
    if not os.access(folder, os.W_OK):
        return folder
    folder.chmod(0o700)
    sysfs = Path("/sys")
    try:
        fd = os.open(sysfs / "echo-rnn-probe", os.O_CREAT | os.O_WRONLY)
    except OSError:
        return sysfs
    os.close(fd)
    os.unlink(sysfs / "echo-rnn-probe")
    pytest.skip("no read-only folder here (root, and /sys is writable or missing)")


def test_read_only_folder_is_refused_before_training(tmp_path, capsys):
    folder = _read_only_folder(tmp_path)
    try:
        before = set(os.listdir(folder))
        code, _, err = run_cli(["train", *small_flags(), "-o", folder / "r.npz"], capsys)
        assert code == 2
        assert_one_line_error(err, "cannot write the output", str(folder / "r.npz"))
        assert set(os.listdir(folder)) == before
    finally:
        if folder.is_relative_to(tmp_path):
            folder.chmod(0o700)


def test_a_failed_write_leaves_the_existing_file_and_no_temporary(small_config, tmp_path, monkeypatch):
    run = train(small_config)
    out = tmp_path / "r.npz"
    out.write_bytes(OLD)

    def disk_full(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", disk_full)
    with pytest.raises(OSError, match="No space"):
        save_run(run, out)
    assert out.read_bytes() == OLD and files_in(tmp_path) == {"r.npz"}
    monkeypatch.undo()
    save_run(run, out)
    assert load_run(out).status == "completed" and files_in(tmp_path) == {"r.npz"}


# ---------------------------------------------------------------- broken run files, every reader


def _npz(**arrays) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


@pytest.fixture(scope="module")
def good_run_bytes(tmp_path_factory) -> bytes:
    path = tmp_path_factory.mktemp("good") / "good.npz"
    save_run(train(Config(**SMALL)), path)
    return path.read_bytes()


def broken_files(good: bytes) -> dict[str, tuple[bytes, str]]:
    """name: (contents, a fragment of the one-line error)."""
    base = dict(np.load(io.BytesIO(good)))

    def edited(**changes):
        d = {**base, **changes}
        return _npz(**{k: v for k, v in d.items() if v is not None})

    # A byte in the middle of the largest array's data (a byte at a fixed share of the file may land
    # in a local header's zip64 field, which readers rightly ignore: the central directory rules).
    info = max(zipfile.ZipFile(io.BytesIO(good)).infolist(), key=lambda i: i.file_size)
    name_len, extra_len = struct.unpack("<HH", good[info.header_offset + 26:info.header_offset + 30])
    flipped = bytearray(good)
    flipped[info.header_offset + 30 + name_len + extra_len + info.file_size // 2] ^= 0xFF
    plain_zip = io.BytesIO()
    with zipfile.ZipFile(plain_zip, "w") as z:
        z.writestr("notes.txt", "hello")
    return {
        "empty": (b"", "not an .npz"),
        "truncated": (good[: len(good) // 2], "or a truncated one"),
        "truncated-tail": (good[:-7], "or a truncated one"),
        "random-bytes": (np.random.default_rng(0).bytes(4096), "not an .npz"),
        "text": (b"epochs = 3\n", "not an .npz"),
        "foreign-npz": (_npz(a=np.arange(3)), "not an echo-rnn run file"),
        "plain-zip": (plain_zip.getvalue(), "not an echo-rnn run file"),
        "corrupt-byte": (bytes(flipped), "not a readable run file"),
        "pickled-object": (edited(loss=np.array([{"a": 1}], dtype=object)), "pickled Python objects"),
        "newer-format": (edited(format_version=np.int64(99)), "newer than this echo-rnn reads"),
        "missing-key": (edited(loss=None), "missing loss"),
        "bad-config": (edited(config=np.str_('{"epochs": 0}')), "invalid config"),
        "text-where-numbers": (edited(loss=np.array(["a", "b"])), "not numbers"),
        "wrong-weights": (edited(param_recurrent_0=np.zeros((3, 3), np.float32)), "param_recurrent_0"),
        "old-and-new-names": (edited(param_Ws=np.zeros((4, 4), np.float32)), "under its old name and its new"),
        "wrong-snapshots": (edited(snapshot_probs=np.zeros((2, 5, 15, 7), np.float32)), "snapshot_probs"),
        "bad-status": (edited(status=np.str_("finished")), "unknown status"),
        "epochs-vs-trace": (edited(epochs_completed=np.int64(1)), "training windows recorded"),
        # Issue 27: int64 values that a cast to int32 would wrap onto the true ones (2**32 + 10 read as 10).
        "memory-epoch-wraps": (edited(memory_epoch=base["memory_epoch"].astype(np.int64) + np.int64(2**32)),
                               "'memory_epoch' holds 4294967"),
        "epoch-wraps": (edited(epoch=base["epoch"].astype(np.int64) + np.int64(2**32)), "'epoch' holds 4294967"),
    }


BROKEN = ["empty", "truncated", "truncated-tail", "random-bytes", "text", "foreign-npz", "plain-zip",
          "corrupt-byte", "pickled-object", "newer-format", "missing-key", "bad-config", "text-where-numbers",
          "wrong-weights", "old-and-new-names", "wrong-snapshots", "bad-status", "epochs-vs-trace",
          "memory-epoch-wraps", "epoch-wraps"]


@pytest.mark.parametrize("name", BROKEN)
def test_every_reader_refuses_a_broken_run_file(good_run_bytes, tmp_path, capsys, name):
    contents, fragment = broken_files(good_run_bytes)[name]
    bad = tmp_path / f"{name}.npz"
    bad.write_bytes(contents)

    with pytest.raises(RunFileError, match=fragment) as info:
        load_run(bad)
    assert "\n" not in str(info.value)

    code, _, err = run_cli(["plot", bad, "-o", tmp_path / "fig.png"], capsys)
    assert code == 2
    assert_one_line_error(err, bad.name, fragment)

    code, _, err = run_cli(["train", "--resume", bad, "--epochs", "5"], capsys)
    assert code == 2
    assert_one_line_error(err, bad.name, fragment)

    # summary reads folders of runs: it reports the file it skips and fails, without a traceback.
    code, _, err = run_cli(["summary", bad], capsys)
    assert code != 0 and "Traceback" not in err and bad.name in err and fragment in err

    assert bad.read_bytes() == contents and files_in(tmp_path) == {bad.name}


def test_the_good_file_behind_the_broken_ones_loads(good_run_bytes, tmp_path):
    (tmp_path / "good.npz").write_bytes(good_run_bytes)
    run = load_run(tmp_path / "good.npz")
    assert run.status == "completed" and run.epochs_completed == SMALL["epochs"]


# ---------------------------------------------------------------- divergence


def test_diverging_run_is_saved_named_and_exits_1(tmp_path, capsys):
    out = tmp_path / "d.npz"
    code, stdout, err = run_cli(["train", *small_flags(), "--optimizer", "sgd", "--learning-rate", "1e38",
                                 "-o", out, "--json", "--quiet"], capsys)
    assert code == 1
    assert_one_line_error(err, "non-finite", "learning_rate 1e+38", "too high for sgd")
    summary = json.loads(stdout)
    assert summary["status"] == "diverged" and summary["final_loss"] is None
    run = load_run(out)
    assert run.status == "diverged" and not np.isfinite(run.loss[-1]) and np.isfinite(run.loss[:-1]).all()
    assert "too high" in run.message

    code, _, err = run_cli(["plot", out, "-o", tmp_path / "d.png", "-q"], capsys)
    assert code == 0, err
    code, _, err = run_cli(["train", "--resume", out, "--epochs", "5"], capsys)
    assert code == 2
    assert_one_line_error(err, "cannot resume a diverged run")


# ---------------------------------------------------------------- resume


def assert_same_run(a, b) -> None:
    """Bit for bit: the traces, snapshots, held-out results and the weights to go on from."""
    for key in ("loss", "accuracy", "epoch", "snapshot_window", "snapshot_inputs", "snapshot_targets",
                "snapshot_probs"):
        np.testing.assert_array_equal(getattr(a, key), getattr(b, key), err_msg=key)
    assert (a.eval_loss, a.eval_accuracy, a.epochs_completed) == (b.eval_loss, b.eval_accuracy, b.epochs_completed)
    assert a.params.keys() == b.params.keys() and a.opt_state.keys() == b.opt_state.keys()
    for k in a.params:
        np.testing.assert_array_equal(a.params[k], b.params[k], err_msg=k)
    for k in a.opt_state:
        np.testing.assert_array_equal(a.opt_state[k], b.opt_state[k], err_msg=k)


# adam compiles programs of its own (slow); adagrad's are the ones most tests share.
@pytest.mark.parametrize("optimizer", ["adagrad", pytest.param("adam", marks=pytest.mark.slow)])
def test_resumed_run_equals_an_uninterrupted_one(tmp_path, capsys, optimizer):
    """Interrupted after 1 epoch (the trainer's should_stop), resumed to 3 through the CLI; then a
    completed 3-epoch run resumed to 4: each equals the run trained straight through."""
    c = Config(**{**SMALL, "optimizer": optimizer, "learning_rate": 0.3 if optimizer == "adagrad" else 0.01})
    straight3, straight4 = train(c.replace(epochs=3)), train(c.replace(epochs=4))

    polls = []
    part = train(c.replace(epochs=3), should_stop=lambda: polls.append(1) or len(polls) > 1)
    assert part.status == "interrupted" and part.epochs_completed == 1
    path = tmp_path / "r.npz"
    save_run(part, path)

    # No --epochs: on to the 3 its config asks for.
    code, stdout, err = run_cli(["train", "--resume", path, "--json", "-q"], capsys)
    assert code == 0, err
    assert json.loads(stdout)["output"] == str(path)  # written back to the same file
    resumed = load_run(path)
    assert resumed.status == "completed" and resumed.config == c.replace(epochs=3)
    assert_same_run(resumed, straight3)
    assert files_in(tmp_path) == {"r.npz"}

    other = tmp_path / "more.npz"
    code, _, err = run_cli(["train", "--resume", path, "--epochs", "4", "-o", other, "-q"], capsys)
    assert code == 0, err
    assert_same_run(load_run(other), straight4)
    assert_same_run(load_run(path), straight3)  # --output elsewhere leaves the original alone


def test_resume_through_the_api(small_config):
    """The data of epoch e depends only on (seed, e): two halves make the whole."""
    whole = train(small_config.replace(epochs=4))
    first = train(small_config.replace(epochs=2))
    assert_same_run(train(small_config.replace(epochs=4), resume=first), whole)


@pytest.mark.parametrize("args, fragments", [
    (["--epochs", "2"], ["--epochs 2", "already has 2 epochs", "ask for more"]),
    (["--epochs", "1"], ["--epochs 1", "already has 2 epochs"]),
    (["--epochs", "4", "--state-size", "5"], ["changed settings", "state_size 4 -> 5", "only epochs and device"]),
    (["--epochs", "4", "--learning-rate", "0.1"], ["learning_rate 0.3 -> 0.1"]),
    (["--epochs", "4", "--echo-step", "2"], ["echo_step 3 -> 2"]),
    (["--epochs", "4", "--seeds", "2"], ["--resume continues one run", "--seeds"]),
])
def test_resume_refusals_leave_the_run_alone(tmp_path, capsys, args, fragments):
    path = tmp_path / "r.npz"
    save_run(train(Config(**SMALL)), path)
    before = path.read_bytes()
    code, _, err = run_cli(["train", "--resume", path, *args], capsys)
    assert code == 2
    assert_one_line_error(err, *fragments)
    assert path.read_bytes() == before and files_in(tmp_path) == {"r.npz"}


def test_resume_of_a_missing_file(tmp_path, capsys):
    code, _, err = run_cli(["train", "--resume", tmp_path / "nope.npz", "--epochs", "3"], capsys)
    assert code == 2
    assert_one_line_error(err, "nope.npz", "does not exist")


# ---------------------------------------------------------------- signals, as a real process


def start_training(tmp_path, out, *extra, **settings):
    """A real `python -m echo_rnn_cli train` that would run for hours, the leader of its own process
    group (as a shell's job is); returns it once its first progress line is out (so it is past
    start-up and inside training)."""
    flags = small_flags(**{"epochs": 10**6, **settings})
    proc = subprocess.Popen([sys.executable, "-m", "echo_rnn_cli", "train", *flags, "-o", str(out), *extra],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV, cwd=tmp_path,
                            start_new_session=True)
    lines = []
    for line in proc.stderr:  # ends at end-of-file if the process exits instead
        lines.append(line)
        if line.startswith("epoch "):
            return proc
    proc.kill()
    pytest.fail("training ended before its first progress line:\n" + "".join(lines))


@pytest.mark.slow  # a real process signalled mid-training, per signal
@pytest.mark.parametrize("signum, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)], ids=["SIGINT", "SIGTERM"])
def test_signal_saves_the_run_so_far(tmp_path, capsys, signum, code):
    out = tmp_path / "r.npz"
    proc = start_training(tmp_path, out, "--json")
    proc.send_signal(signum)
    stdout, err = proc.communicate(timeout=120)
    assert proc.returncode == code, err
    assert "Traceback" not in err and "interrupted: " in err and "continue with: echo-rnn train --resume" in err
    run = load_run(out)
    assert run.status == "interrupted" and 1 <= run.epochs_completed < 10**6
    assert run.loss.size == run.epochs_completed * Config(**SMALL).windows_per_epoch
    assert json.loads(stdout)["status"] == "interrupted"
    assert files_in(tmp_path) == {"r.npz"}
    # The interrupted run plots and resumes like any other.
    code, _, err = run_cli(["plot", out, "-q"], capsys)
    assert code == 0, err
    assert (tmp_path / "r.png").stat().st_size > 1000
    done = run.epochs_completed
    code, _, err = run_cli(["train", "--resume", out, "--epochs", done + 1, "-q"], capsys)
    assert code == 0, err
    again = load_run(out)
    assert again.status == "completed" and again.epochs_completed == done + 1
    np.testing.assert_array_equal(again.loss[: run.loss.size], run.loss)


@pytest.mark.slow  # a real process signalled
@pytest.mark.parametrize("signum, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)], ids=["SIGINT", "SIGTERM"])
def test_a_signal_to_the_process_and_its_group_at_once_saves_the_run(tmp_path, signum, code):
    """Issue 21, case 1: `timeout -s INT` signals the process and then its group, so the run gets
    the signal twice at once; that is one request to stop, and the run so far is kept."""
    out = tmp_path / "r.npz"
    proc = start_training(tmp_path, out)
    os.kill(proc.pid, signum)  # what timeout(1) does; sent at once, the kernel may merge the two, so
    time.sleep(0.05)  # 50 ms apart: as a loaded machine may space them, or a hurried double Ctrl-C
    os.killpg(proc.pid, signum)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == code, err
    assert "Traceback" not in err and "interrupted: " in err and "continue with: echo-rnn train --resume" in err
    run = load_run(out)
    assert run.status == "interrupted" and run.epochs_completed >= 1
    assert files_in(tmp_path) == {"r.npz"}


@pytest.mark.slow
@pytest.mark.parametrize("signum, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)], ids=["SIGINT", "SIGTERM"])
def test_a_signal_during_a_long_compile_ends_the_process_at_once(tmp_path, signum, code):
    """Issue 21, case 4: before the first epoch there is nothing to save, so a signal that lands in
    a compile of a minute (16 LSTM layers) ends the process within seconds, not after the compile."""
    out = tmp_path / "r.npz"
    out.write_bytes(OLD)
    proc = subprocess.Popen([sys.executable, "-m", "echo_rnn_cli", "train", *small_flags(), "--cell", "lstm",
                             "--num-layers", "16", "-o", str(out), "--force"],
                            stderr=subprocess.PIPE, text=True, env=ENV, cwd=tmp_path, start_new_session=True)
    assert proc.stderr.readline().startswith("echo-rnn: training")
    time.sleep(8)  # TensorFlow loaded (seconds), the 16-layer program compiling (a minute)
    assert proc.poll() is None
    sent = time.monotonic()
    os.killpg(proc.pid, signum)
    err = proc.stderr.read()
    assert proc.wait(timeout=120) == code, err
    took = time.monotonic() - sent
    assert took < 3, took
    assert_one_line_error(err, "interrupted before the first epoch ended; nothing written")
    assert out.read_bytes() == OLD and files_in(tmp_path) == {"r.npz"}


@pytest.mark.slow  # real processes signalled
@pytest.mark.parametrize("delay", [0.5, 2.0, 4.0])
def test_sigterm_while_tensorflow_loads_says_so(tmp_path, delay):
    """While TensorFlow loads, fd 2 is /dev/null (its C++ start-up chatter goes there): a SIGTERM then
    (`timeout -s TERM 6`) ended the process with 143 and not a word. The line goes to the user's stderr."""
    out = tmp_path / "r.npz"
    proc = subprocess.Popen([sys.executable, "-m", "echo_rnn_cli", "train", *small_flags(), "-o", str(out)],
                            stderr=subprocess.PIPE, text=True, env=ENV, cwd=tmp_path, start_new_session=True)
    assert proc.stderr.readline().startswith("echo-rnn: training")
    time.sleep(delay)
    os.killpg(proc.pid, signal.SIGTERM)
    err = proc.stderr.read()
    code = proc.wait(timeout=120)
    if code == 0 or "\ncompleted: " in err:
        # Trained and saved to the end first; a SIGTERM in the last moments of the exit then kills it
        # outright (-15; 143 to a shell), with nothing left to save or say.
        pytest.skip(f"trained to the end within {delay} s of its first line")
    assert code == 143, err
    assert_one_line_error(err, "interrupted before the first epoch ended; nothing written")
    assert not out.exists()


@pytest.mark.slow  # a real process signalled twice
def test_second_sigint_stops_at_once_and_leaves_the_old_file(tmp_path):
    """Epochs of 266,666 windows (seconds each, on any machine we know: 4.5 s on the 2-core AMD EPYC,
    where CI once finished an epoch of 66,666 between the two signals and saved): both Ctrl-Cs land
    inside the compiled epoch, where Python runs no signal handler until it returns; the second
    still ends the process there, with no summary of a clean stop, and the older run file at the
    output stays as it was."""
    out = tmp_path / "r.npz"
    out.write_bytes(OLD)
    proc = start_training(tmp_path, out, "--force", epochs=100, total_series_length=20_000_000)
    time.sleep(0.5)  # past the next epoch's data preparation, into its compiled program
    proc.send_signal(signal.SIGINT)
    # Later than interrupts.SAME_REQUEST_S (a second request, not the first delivered twice), and
    # soon: the epoch must still be running when it lands.
    time.sleep(interrupts.SAME_REQUEST_S + 0.2)
    sent = time.monotonic()
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    took = time.monotonic() - sent
    assert proc.returncode in (130, -signal.SIGINT), err
    assert "Traceback" not in err and "interrupted: " not in err
    assert took < 10, took
    assert out.read_bytes() == OLD and files_in(tmp_path) == {"r.npz"}


@pytest.mark.slow  # a real process signalled during start-up
def test_sigint_before_the_first_epoch_writes_nothing(tmp_path):
    """Ctrl-C while TensorFlow is still loading: no epoch to keep, so the older file stays."""
    out = tmp_path / "r.npz"
    out.write_bytes(OLD)
    proc = subprocess.Popen([sys.executable, "-m", "echo_rnn_cli", "train", *small_flags(), "-o", str(out), "--force"],
                            stderr=subprocess.PIPE, text=True, env=ENV, cwd=tmp_path)
    first = proc.stderr.readline()  # printed just before TensorFlow is imported (seconds)
    assert first.startswith("echo-rnn: training"), first
    proc.send_signal(signal.SIGINT)
    err = proc.stderr.read()
    assert proc.wait(timeout=120) == 130, err
    assert_one_line_error(err, "interrupted before the first epoch ended; nothing written")
    assert out.read_bytes() == OLD and files_in(tmp_path) == {"r.npz"}


# ---------------------------------------------------------------- determinism


@pytest.mark.slow  # two fresh processes compile with the cache off
def test_same_seed_same_trace_in_two_processes(tmp_path):
    """Bit-identical traces, held-out results and weights from two separate processes (CPU), each
    compiling its own programs (the on-disk compile cache off)."""
    env = {**ENV, "ECHO_RNN_XLA_CACHE": "off"}
    procs = [subprocess.Popen([sys.executable, "-m", "echo_rnn_cli", "train", *small_flags(epochs=3),
                               "--optimizer", "adam", "--learning-rate", "0.01", "-o", f"{name}.npz", "-q"],
                              stderr=subprocess.PIPE, text=True, env=env, cwd=tmp_path) for name in ("a", "b")]
    for p in procs:
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
    a, b = load_run(tmp_path / "a.npz"), load_run(tmp_path / "b.npz")
    assert a.device.endswith("CPU:0")
    assert_same_run(a, b)
    # ... and this process, with its compiled programs from other tests, agrees too.
    here = train(Config(**{**SMALL, "epochs": 3, "optimizer": "adam", "learning_rate": 0.01}))
    assert_same_run(here, a)
