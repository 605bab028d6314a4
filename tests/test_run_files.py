"""Run files are never lost and stay bounded (issue 10, items 1-4 and 'Run files stay bounded').

Through the CLI, in subprocesses with timeouts: an existing run file is kept unless --force, an
output that is not a regular file or is one of the inputs is refused before any work, and a run
whose final save fails is kept beside its target. In process: format 2's trimming, which a resumed
run must repeat bit for bit, and a 100,000-epoch run that stays under 20 MB.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from echo_rnn_cli import runs as runs_module
from echo_rnn_cli.config import Config
from echo_rnn_cli.runs import FORMAT_VERSION, Run, kept_epochs, load_run, save_run, trim

from .conftest import SMALL, small_flags

V1 = Path(__file__).parent / "data" / "run_v1.npz"
ENV = {**os.environ, "PYTHONUNBUFFERED": "1", "MPLBACKEND": "Agg"}
OLD = b"yesterday's run, which must survive\n"


def cli(*args, cwd: Path, timeout: float = 240) -> tuple[int, str, str]:
    proc = subprocess.run([sys.executable, "-m", "echo_rnn_cli", *map(str, args)], capture_output=True, text=True,
                          env=ENV, cwd=cwd, timeout=timeout)
    return proc.returncode, proc.stdout, proc.stderr


def one_line(err: str, *fragments: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), err
    for fragment in fragments:
        assert fragment in lines[0], (fragment, err)
    return lines[0]


def refused_fast(args, cwd: Path, *fragments: str) -> str:
    """Exit 2 and one line, before TensorFlow is even imported (a refusal costs seconds, not a run)."""
    started = time.monotonic()
    code, out, err = cli(*args, cwd=cwd, timeout=60)
    assert code == 2, err
    assert time.monotonic() - started < 30 and out == ""
    return one_line(err, *fragments)


# ---------------------------------------------------------------- item 1: never replaced unless asked


@pytest.mark.slow  # several real echo-rnn processes
def test_an_existing_run_file_is_kept_unless_force(tmp_path):
    out = tmp_path / "run.npz"
    out.write_bytes(OLD)
    line = refused_fast(["train", *small_flags(), "-o", out], tmp_path, str(out), "already exists", "--force",
                        "another -o", "--resume")
    assert "Traceback" not in line and out.read_bytes() == OLD
    refused_fast(["train", *small_flags()], tmp_path, "run.npz", "already exists")  # the default -o too
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.npz"]

    code, _, err = cli("train", *small_flags(), "-o", out, "--force", "-q", cwd=tmp_path)
    assert code == 0, err
    assert load_run(out).status == "completed"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.npz"]  # replaced in place, no temporary left


def test_a_dangling_symlink_at_the_output_is_kept_unless_force(tmp_path):
    """Issue 21, case 7: a link to a disk not mounted yet is an entry the user made."""
    out = tmp_path / "run.npz"
    os.symlink("/mnt/not-mounted-yet/run.npz", out)
    refused_fast(["train", *small_flags(), "-o", out], tmp_path, "symlink to '/mnt/not-mounted-yet/run.npz'",
                 "does not exist", "--force")
    assert os.readlink(out) == "/mnt/not-mounted-yet/run.npz"
    code, _, err = cli("export", V1, out, cwd=tmp_path, timeout=60)
    assert code == 2 and "symlink" in one_line(err) and out.is_symlink(), err


@pytest.mark.parametrize("args", [
    ["train", "--tensorboard", "", "-o", "r.npz"],
    ["train", "--tensorboard", " ", "-o", "r.npz"],
    ["train", "--config", "", "-o", "r.npz"],
    ["train", "--resume", "", "-o", "r.npz"],
    ["sweep", "--grid", "echo_step=2,3", "--tensorboard", ""],
    ["sweep", "--grid", "echo_step=2,3", "-o", ""],
    ["plot", "", "-o", "f.png"],
    ["plot", "{v1}", "-o", ""],
    ["plot", "{v1}", "--animate", ""],
    ["plot", "--heatmap", "", "--x", "echo_step", "--y", "state_size"],
    ["summary", ""],
    ["echo", "", "0110"],
    ["export", "{v1}", ""],
    ["export", "", "m.keras"],
])
def test_an_empty_path_is_refused_before_any_work(tmp_path, args):
    """Issue 21, case 8: click turns "" into '.', and `--tensorboard ""` logged into ./run/."""
    args = [a.format(v1=V1) for a in args]
    refused_fast([args[0], *small_flags(), *args[1:]] if args[0] in ("train", "sweep") else args, tmp_path,
                 "empty")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow  # several real echo-rnn processes
def test_seeds_check_every_output_and_resume_may_write_back(tmp_path):
    shutil.copy(V1, tmp_path / "r-seed1.npz")
    refused_fast(["train", *small_flags(), "--seeds", "2", "-o", tmp_path / "r.npz"], tmp_path,
                 "r-seed1.npz", "already exists")
    assert not (tmp_path / "r-seed0.npz").exists()

    resumed = tmp_path / "v1.npz"
    shutil.copy(V1, resumed)
    other = tmp_path / "other.npz"
    other.write_bytes(OLD)
    refused_fast(["train", "--resume", resumed, "--epochs", "3", "-o", other], tmp_path, "other.npz", "exists")
    # Writing back to the resumed file is what --resume is for; a format-1 file resumes too.
    code, _, err = cli("train", "--resume", resumed, "--epochs", "3", "-q", cwd=tmp_path)
    assert code == 0, err
    run, before = load_run(resumed), load_run(V1)
    assert run.epochs_completed == 3 and run.status == "completed"
    np.testing.assert_array_equal(run.loss[: before.loss.size], before.loss)
    assert other.read_bytes() == OLD


# ---------------------------------------------------------------- item 2: not a regular file


def _socket(p: Path) -> None:
    import socket

    s = socket.socket(socket.AF_UNIX)
    s.bind(str(p))
    s.close()


@pytest.mark.parametrize("make,fragment,train_fragment", [
    (os.mkfifo, "FIFO", "not a regular file"),
    (_socket, "socket", "not a regular file"),
    (lambda p: p.symlink_to("/dev/null"), "character device (through a symlink)", "not a regular file"),
    (lambda p: p.symlink_to(p.parent), "folder", "is a directory"),  # train: click's words, as before
], ids=["fifo", "socket", "symlink to /dev/null", "symlink to a folder"])
def test_train_and_plot_refuse_an_output_that_is_not_a_regular_file(tmp_path, make, fragment, train_fragment):
    out = tmp_path / "out.npz"
    make(out)
    kind = os.lstat(out).st_mode
    kinds = [fragment] if train_fragment == "not a regular file" else []
    refused_fast(["train", *small_flags(), "-o", out, "--force"], tmp_path, "out.npz", train_fragment, *kinds)
    shutil.copy(V1, tmp_path / "r.npz")
    figure = tmp_path / "fig.png"
    make(figure)
    refused_fast(["plot", tmp_path / "r.npz", "-o", figure], tmp_path, "fig.png", fragment)
    assert os.lstat(out).st_mode == kind and os.lstat(figure).st_mode == kind


def test_a_device_is_never_replaced(tmp_path):
    refused_fast(["train", *small_flags(), "-o", "/dev/null", "--force"], tmp_path, "/dev/null", "character device")
    assert Path("/dev/null").is_char_device()


# ---------------------------------------------------------------- item 3: never one of the inputs


def test_the_output_is_never_an_input(tmp_path):
    config = tmp_path / "c.toml"
    config.write_text("epochs = 2\ntotal_series_length = 1500\n")
    for out in (config, tmp_path / "link.toml"):
        if out != config:
            out.symlink_to(config)
        refused_fast(["train", "--config", config, "-o", out, "--force"], tmp_path, "is the input", "c.toml")
    assert config.read_text() == "epochs = 2\ntotal_series_length = 1500\n"

    run = tmp_path / "r.npz"
    shutil.copy(V1, run)
    os.link(run, tmp_path / "r.png")  # plot's default figure name reaches the run file itself
    refused_fast(["plot", run], tmp_path, "r.png", "is the input")
    assert load_run(run).epochs_completed == 2
    (tmp_path / "r.png").unlink()
    (tmp_path / "r.png").write_bytes(b"an older figure")  # derived: replaced without asking
    code, _, err = cli("plot", run, "-q", cwd=tmp_path, timeout=120)
    assert code == 0 and (tmp_path / "r.png").read_bytes().startswith(b"\x89PNG"), err


# ---------------------------------------------------------------- item 4: a failed save loses nothing


def test_an_over_long_name_is_refused_before_work(tmp_path):
    refused_fast(["train", *small_flags(), "-o", tmp_path / ("a" * 300 + ".npz")], tmp_path, "bytes long")


def _immutable(path: Path) -> bool:
    chattr = shutil.which("chattr")
    return chattr is not None and subprocess.run([chattr, "+i", str(path)], capture_output=True).returncode == 0


@pytest.mark.slow  # real echo-rnn processes
def test_a_run_whose_final_save_fails_is_saved_beside_it(tmp_path):
    out = tmp_path / "out.npz"
    out.write_bytes(OLD)
    if not _immutable(out):
        pytest.skip("chattr +i is not available here (not root, or the file system has no such flag)")
    try:
        # learning_rate 1: the small run learns, so -q leaves nothing on stderr but the error line
        code, stdout, err = cli("train", *small_flags(learning_rate=1), "-o", out, "--force", "-q", "--json",
                                cwd=tmp_path)
    finally:
        subprocess.run(["chattr", "-i", str(out)], check=True)
    assert code == 1 and "Traceback" not in err, err
    kept = [p for p in tmp_path.iterdir() if p.name.startswith("out.unsaved-")]
    assert len(kept) == 1 and kept[0].suffix == ".npz"
    line = one_line(err, "cannot write the output", str(out), str(kept[0]))
    assert ".out.npz." not in line  # the temporary file means nothing to the user
    assert load_run(kept[0]).status == "completed" and out.read_bytes() == OLD
    assert str(kept[0]) in stdout  # --json says where the run is
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["out.npz", kept[0].name])


# ---------------------------------------------------------------- bounded run files (format 2)


def test_format_1_files_still_load_plot_and_summarise(tmp_path):
    run = load_run(V1)
    assert run.epochs_completed == 2 and run.loss.size == 2 * run.config.windows_per_epoch
    loss_means, _ = run.epoch_means()
    np.testing.assert_allclose(loss_means, [run.loss[:20].mean(), run.loss[20:].mean()], rtol=1e-6)
    shutil.copy(V1, tmp_path / "v1.npz")
    code, out, err = cli("summary", tmp_path / "v1.npz", "--format", "csv", cwd=tmp_path, timeout=120)
    assert code == 0 and "completed" in out, err
    code, _, err = cli("plot", tmp_path / "v1.npz", "-q", cwd=tmp_path, timeout=120)
    assert code == 0 and (tmp_path / "v1.png").stat().st_size > 1000, err


def test_kept_epochs_nest_so_a_resumed_file_trims_like_a_straight_one():
    c = Config(**SMALL)
    per_epoch = runs_module._bytes_per_epoch(c)
    for budget_epochs in (1, 2, 3, 5, 8, 20):
        budget = budget_epochs * per_epoch
        for n in range(1, 200):
            keep = kept_epochs(n, c, budget)
            assert keep[0] and keep[-1] and keep.sum() <= max(budget_epochs, 2)
            for m in range(1, n):  # what a file of m epochs kept, and the epochs trained after it
                available = np.zeros(n, bool)
                available[: m] = kept_epochs(m, c, budget)
                available[m:] = True
                assert not np.any(keep & ~available), (budget_epochs, m, n)


def test_epoch_means_do_not_depend_on_how_the_trace_is_chunked():
    rng = np.random.default_rng(0)
    epoch = np.repeat(np.arange(300, dtype=np.int32), rng.integers(1, 500, 300))
    values = rng.random(epoch.size).astype(np.float32)
    present, starts, counts = runs_module.epoch_runs(epoch)
    assert (present == np.arange(300)).all()
    whole = runs_module._segment_means(values, starts, counts)
    sums = [np.add.reduce(values[s:s + n].astype(np.float64)) for s, n in zip(starts, counts, strict=True)]
    one_by_one = np.array(sums) / counts
    np.testing.assert_array_equal(runs_module._segment_means(values, starts, counts, chunk=100), whole)
    np.testing.assert_array_equal(one_by_one, whole)


def _arrays(path: Path) -> dict[str, np.ndarray]:
    with np.load(path) as data:
        return {k: data[k] for k in data.files if k not in ("wall_seconds", "created", "epoch_seconds", "device")}


def test_a_resumed_trimmed_file_equals_the_straight_runs(tmp_path, monkeypatch):
    from echo_rnn_cli.trainer import train

    c = Config(**SMALL).replace(epochs=9)
    monkeypatch.setattr(runs_module, "TRACE_BUDGET", 5 * runs_module._bytes_per_epoch(c))  # 3 epochs between
    full = train(c)
    save_run(full, tmp_path / "straight.npz")
    save_run(train(c.replace(epochs=4)), tmp_path / "part.npz")
    for epochs in (7, 9):
        save_run(train(c.replace(epochs=epochs), resume=load_run(tmp_path / "part.npz")), tmp_path / "part.npz")

    straight, resumed = _arrays(tmp_path / "straight.npz"), _arrays(tmp_path / "part.npz")
    assert int(straight["format_version"]) == FORMAT_VERSION == 2
    assert sorted(np.unique(straight["epoch"])) == [0, 4, 8]  # first, last and a stride of 4
    assert straight["epoch_loss"].size == 9 and straight["snapshot_window"].size == 3
    assert straight.keys() == resumed.keys()
    for key in straight:
        np.testing.assert_array_equal(resumed[key], straight[key], err_msg=key)
    # Trimming is idempotent, and what a trimmed file reports matches the full run.
    loaded = load_run(tmp_path / "straight.npz")
    assert loaded.final_loss == full.final_loss and loaded.windows_trained == full.loss.size
    for key, value in trim(loaded).items():
        np.testing.assert_array_equal(value, straight.get(key, full.epoch_seconds), err_msg=key)
    np.testing.assert_array_equal(loaded.epoch_means()[0], full.epoch_means()[0])


def test_a_100000_epoch_run_stays_under_20_mb(tmp_path):
    """The traces of 100,000 default epochs (66.6 million windows, 1.6 GB untrimmed), built rather
    than trained; np.zeros keeps untouched pages off the machine's memory."""
    from echo_rnn_cli.figures.training import training_figure

    c = Config(epochs=100_000)
    W, epochs = c.windows_per_epoch, 100_000
    snaps_per_epoch = len(range(0, W, c.snapshot_every))
    K = epochs * snaps_per_epoch
    loss = np.zeros(epochs * W, np.float32)
    loss[-W:] = 0.25  # the last epoch, which must be kept whole
    run = Run(config=c, loss=loss, accuracy=np.zeros(epochs * W, np.float32),
              epoch=np.repeat(np.arange(epochs, dtype=np.int32), W), epoch_seconds=np.ones(epochs),
              snapshot_window=(np.arange(epochs)[:, None] * W + np.arange(0, W, c.snapshot_every)).ravel(),
              snapshot_inputs=np.zeros((K, c.batch_size, c.truncated_backprop_length), np.int32),
              snapshot_targets=np.zeros((K, c.batch_size, c.truncated_backprop_length), np.int32),
              snapshot_probs=np.zeros((K, c.batch_size, c.truncated_backprop_length, c.num_classes), np.float32),
              epochs_completed=epochs)
    untrimmed = loss.nbytes * 3 + K * (8 + c.batch_size * c.truncated_backprop_length * 16)
    assert untrimmed > 1.5e9
    path = save_run(run, tmp_path / "long.npz")
    size = path.stat().st_size
    assert size < 20 * 2**20, size
    del run, loss

    back = load_run(path)
    assert back.epochs_completed == epochs and back.epoch_loss.size == epochs
    assert back.windows_trained == epochs * W and back.final_loss == pytest.approx(0.25)
    kept = np.unique(back.epoch)
    assert kept[0] == 0 and kept[-1] == epochs - 1 and 10 < kept.size < 2000
    assert back.snapshot_window[-1] == (epochs - 1) * W + (snaps_per_epoch - 1) * c.snapshot_every
    fig = training_figure(back, rows=2)
    assert fig.panels.window == int(back.snapshot_window[-1])
