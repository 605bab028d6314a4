"""A sweep loses nothing and makes nothing up (issue 10): killed drivers, two sweeps on one folder,
groups too big for memory, crafted sweep.json files, diverged points trained beside healthy ones,
and a Ray cluster that loses a node. Real training (tiny configs), real processes, real files."""

import json
import math
import os
import signal
import subprocess
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from echo_rnn_cli import Config, load_run
from echo_rnn_cli.cli import cli
from echo_rnn_cli.config import ConfigError
from echo_rnn_cli.sweep.executors.task import Task, train_task
from echo_rnn_cli.sweep.manifest import ManifestError, read_manifest
from echo_rnn_cli.sweep.run import LOCK, folder_lock, run_sweep
from tests.conftest import SMALL, kill_sweep_once_workers_run, run_cli, small_flags, sweep_cmd
from tests.conftest import SWEEP_ENV as ENV


def one_line(err: str) -> bool:
    return "Traceback" not in err and len(err.strip().splitlines()) == 1


def stamp(path: Path) -> tuple:
    return path.stat().st_mtime_ns, path.read_bytes()


# ---------------------------------------------------------------- a crafted sweep.json


def _deep(levels: int) -> str:
    return "[" * levels + "]" * levels


GOOD_POINT = {"file": "a.npz", "settings": {"echo_step": 1}, "status": "pending", "message": ""}
#: name -> (what sweep.json holds, a fragment of the one-line error). A new reader of sweep.json
#: belongs in every row: see test_readers_of_a_crafted_manifest_fail_with_one_line.
CRAFTED = {
    "settings-a-list": ({"base_config": {}, "points": [{**GOOD_POINT, "settings": [1, 2]}]},
                        "point 1: 'settings' is a list, not an object"),
    "no-base-config": ({"points": [GOOD_POINT]}, "'base_config' is missing or null, not an object"),
    "base-config-a-list": ({"base_config": [1], "points": [GOOD_POINT]}, "'base_config' is a list"),
    "point-a-number": ({"base_config": {}, "points": [GOOD_POINT, 7]}, "point 2 is a number"),
    "point-without-file": ({"base_config": {}, "points": [{"settings": {}, "status": "pending"}]},
                           "point 1: 'file' is missing or null, not a string"),
    "file-a-path": ({"base_config": {}, "points": [{**GOOD_POINT, "file": "../../etc/passwd"}]},
                    "not a plain file name"),
    "points-an-object": ({"base_config": {}, "points": {"a": 1}}, "'points' is an object, not a list"),
    "list-at-top": ([GOOD_POINT], "the top level is a list, not an object"),
    "deep-nesting": (_deep(100_000), "nested too deeply"),
    "deep-inside": ('{"base_config": {}, "points": [' + _deep(100_000) + "]}", "nested too deeply"),
    # 1 MB of '{},' parsed to 60 MB (256 MB, the size allowed, would take 7 GB): counted first.
    "many-objects": ('{"base_config": {}, "points": [' + ",".join(["{}"] * 500_000) + "]}",
                     "500,003 JSON objects and lists"),
    "many-numbers": ('{"base_config": {}, "points": [' + ",".join(["0"] * 7_000_000) + "]}",
                     "7,000,000 commas"),
    "not-json": ("{this is not json", "not JSON"),
    "not-utf8": (b"\xff\xfe{}", "not JSON"),
    "empty": ("", "not JSON"),
}


def write_crafted(folder: Path, content) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    if isinstance(content, (dict, list)):
        content = json.dumps(content)
    if isinstance(content, str):
        content = content.encode()
    (folder / "sweep.json").write_bytes(content)


def within(seconds: float, fn):
    """fn() in a thread; fails the test (instead of hanging it) when it does not return in time."""
    box = {}

    def target():
        try:
            box["value"] = fn()
        except BaseException as e:  # handed to the test
            box["error"] = e

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"still blocked after {seconds}s"
    if "error" in box:
        raise box["error"]
    return box["value"]


@pytest.mark.parametrize("name", CRAFTED)
def test_a_crafted_manifest_is_one_clear_error(tmp_path, name):
    content, fragment = CRAFTED[name]
    write_crafted(tmp_path, content)
    with pytest.raises(ManifestError) as info:
        within(20, lambda: read_manifest(tmp_path))
    message = str(info.value)
    assert fragment in message and str(tmp_path / "sweep.json") in message and "\n" not in message
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize("kind", ["fifo", "folder", "device"])
def test_a_manifest_that_is_not_a_file_is_refused_without_blocking(tmp_path, kind):
    path = tmp_path / "sweep.json"
    if kind == "fifo":
        os.mkfifo(path)  # no writer: a plain open would block forever
    elif kind == "folder":
        path.mkdir()
    else:
        path.symlink_to("/dev/zero")  # endless: a plain read would fill the memory
    with pytest.raises(ManifestError, match="is not a regular file|cannot be read"):
        within(10, lambda: read_manifest(tmp_path))


def test_no_manifest_is_none_and_a_good_one_reads(tmp_path):
    assert read_manifest(tmp_path) is None
    write_crafted(tmp_path, {"base_config": {}, "points": [{k: v for k, v in GOOD_POINT.items() if k != "message"}]})
    assert read_manifest(tmp_path)["points"] == [GOOD_POINT]  # 'message' is optional and filled in


@pytest.mark.parametrize("name", ["settings-a-list", "no-base-config", "deep-nesting"])
def test_readers_of_a_crafted_manifest_fail_with_one_line(tmp_path, name):
    """summary (and plot --heatmap, through it) print the run files' rows and one line for sweep.json."""
    folder = tmp_path / "s"
    folder.mkdir()
    run = train_task(Task(["a"], [Config(**SMALL)], str(folder)))[0]
    assert run.status == "completed"
    write_crafted(folder, CRAFTED[name][0])
    result = CliRunner().invoke(cli, ["summary", str(folder), "--format", "json"])
    assert [Path(r["output"] if "output" in r else r["file"]).name for r in json.loads(result.stdout)] == ["a.npz"]
    assert CRAFTED[name][1] in result.stderr and one_line(result.stderr)


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs Linux /proc for the peak memory")
def test_a_manifest_of_millions_of_objects_is_refused_in_bounded_memory(tmp_path):
    """The same class as issue 21, case 3: 15 MB of '{},' in sweep.json made `summary` peak at
    420 MB (the 256 MB allowed: about 7 GB) before refusing it."""
    import subprocess
    import sys

    from tests.test_hostile_inputs import PEAK_MEMORY

    folder = tmp_path / "s"
    write_crafted(folder, '{"base_config": {}, "points": [' + ",".join(["{}"] * 5_000_000) + "]}")
    proc = subprocess.run([sys.executable, "-c", PEAK_MEMORY, "summary", str(folder)], capture_output=True,
                          text=True, env={**ENV, "HWM_FILE": str(tmp_path / "hwm")}, timeout=120)
    peak_mb = int((tmp_path / "hwm").read_text()) / 1024
    assert peak_mb < 150, f"peak {peak_mb:.0f} MB"
    assert "JSON objects and lists" in proc.stderr and one_line(proc.stderr), proc.stderr


# ---------------------------------------------------------------- checked before any work


def test_a_group_too_big_for_memory_is_refused_at_once(tmp_path, capsys):
    out = tmp_path / "never"
    t0 = time.monotonic()
    code = run_cli(["sweep", "--grid", "echo_step=1", "--seeds", "5000", "--total-series-length", "10000000",
                    "--epochs", "1", "-o", out])
    err = capsys.readouterr().err
    assert code == 2 and one_line(err), err
    assert "5,000 models" in err or "5000 models" in err
    assert time.monotonic() - t0 < 30 and not out.exists()


def test_groups_are_checked_one_by_one(tmp_path):
    """Two window lengths are two programs of 2,500 seeds each: each is too big on its own."""
    with pytest.raises(ConfigError, match="2500 models|2,500 models"):
        run_sweep(Config(epochs=1, total_series_length=10_000_000), {"truncated_backprop_length": [15, 16]},
                  seeds=2500, out_dir=tmp_path / "never")
    assert not (tmp_path / "never").exists()


def test_an_empty_out_dir_is_refused(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match="--out-dir: an empty name"):
        run_sweep(Config(**SMALL), {"echo_step": [1]}, out_dir="")
    assert list(tmp_path.iterdir()) == []


def test_sweep_o_empty_is_refused_like_train(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    code = run_cli(["sweep", *small_flags(), "--grid", "echo_step=1", "-o", ""])
    err = capsys.readouterr().err
    assert code == 2 and one_line(err) and "empty" in err, err
    assert list(tmp_path.glob("*.npz")) == []


@pytest.mark.parametrize("victim", ["sweep.json", "echo_step=1_seed=0.npz"])
def test_a_fifo_where_the_sweep_writes_is_refused(tmp_path, capsys, victim):
    out = tmp_path / "s"
    out.mkdir()
    os.mkfifo(out / victim)
    code = within(30, lambda: run_cli(["sweep", *small_flags(), "--grid", "echo_step=1", "-o", out]))
    err = capsys.readouterr().err
    assert code == 2 and one_line(err) and "not a regular file" in err, err
    assert (out / victim).is_fifo()


def test_a_locked_folder_is_refused_before_any_work(tmp_path, capsys):
    out = tmp_path / "s"
    out.mkdir()
    with folder_lock(out):
        assert (out / LOCK).read_text().strip() == str(os.getpid())
        code = run_cli(["sweep", *small_flags(), "--grid", "echo_step=1", "-o", out])
        err = capsys.readouterr().err
        assert code == 2 and one_line(err), err
        assert "is in use by another sweep" in err and f"process {os.getpid()}" in err
        assert not list(out.glob("*.npz")) and not (out / "sweep.json").exists()
    with folder_lock(out):  # released with the sweep
        pass


@pytest.mark.slow  # two real sweep processes
def test_two_sweeps_on_one_folder_never_both_train(tmp_path):
    """Two real `echo-rnn sweep` processes started together: one trains every point, the other is
    refused in one line (exit 2); every point is trained once."""
    out = tmp_path / "s"
    args = ("--grid", "echo_step=1,2", "--jobs", "1", "-o", out, "--json")
    procs = [subprocess.Popen(sweep_cmd(*args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV)
             for _ in range(2)]
    results = [(p.wait(timeout=300), *p.communicate()) for p in procs]
    codes = sorted(code for code, _, _ in results)
    assert codes == [0, 2], [err for _, _, err in results]
    (_, winner_out, _), = [r for r in results if r[0] == 0]
    (_, loser_out, loser_err), = [r for r in results if r[0] == 2]
    assert "is in use by another sweep" in loser_err and one_line(loser_err) and loser_out == ""
    assert sorted(json.loads(line)["point"] for line in winner_out.splitlines()) == \
        ["echo_step=1_seed=0", "echo_step=2_seed=0"]
    assert all(load_run(f).status == "completed" for f in out.glob("*.npz")) and len(list(out.glob("*.npz"))) == 2


# ---------------------------------------------------------------- killed drivers, finished points


def test_a_task_stopped_before_its_first_epoch_writes_nothing(tmp_path):
    """What a pool worker does when its driver is gone before an epoch ends: no file, and an earlier
    file of the point (here an interrupted run with an epoch) is left as it was."""
    c = Config(**{**SMALL, "epochs": 3})
    earlier = train_task(Task(["p"], [c], str(tmp_path)), should_stop=_after_epochs(1))[0]
    assert earlier.status == "interrupted" and load_run(tmp_path / "p.npz").epochs_completed == 1
    before = stamp(tmp_path / "p.npz")
    results = train_task(Task(["p", "q"], [c, c.replace(seed=1)], str(tmp_path)), should_stop=lambda: True)
    assert [(r.status, r.summary) for r in results] == [("interrupted", None)] * 2
    assert "nothing saved" in results[0].message
    assert stamp(tmp_path / "p.npz") == before and not (tmp_path / "q.npz").exists()
    # The Ray executor's workers return bytes instead: none either.
    assert train_task(Task(["q"], [c], None), should_stop=lambda: True)[0].data is None


def _after_epochs(n: int):
    calls = {"n": -1}

    def should_stop() -> bool:
        calls["n"] += 1
        return calls["n"] >= n

    return should_stop


def test_nothing_replaces_a_finished_point(tmp_path):
    """A task that trains a point whose file meanwhile holds a completed run (an orphaned worker of a
    killed sweep, when the sweep was run again) keeps that file, whether it completes or is stopped."""
    c = Config(**SMALL)
    done = train_task(Task(["p"], [c], str(tmp_path)))[0]
    assert done.status == "completed"
    before = stamp(tmp_path / "p.npz")
    again = train_task(Task(["p"], [c], str(tmp_path)))[0]
    stopped = train_task(Task(["p"], [c], str(tmp_path)), should_stop=_after_epochs(1))[0]
    assert stamp(tmp_path / "p.npz") == before
    assert again.status == "completed" and again.summary == done.summary
    assert stopped.status == "completed" and stopped.summary == done.summary
    other = train_task(Task(["p"], [c.replace(echo_step=1)], str(tmp_path)))[0]
    assert other.status == "error" and "completed run of other settings" in other.message
    assert stamp(tmp_path / "p.npz") == before


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="needs Linux /proc to find the workers")
def test_killing_the_driver_leaves_the_folder_as_it_was(tmp_path):
    """kill -9 a real sweep once its workers run: they leave (they watch their parent) and write no
    run file of 0 epochs; the finished point's file and an earlier interrupted one are untouched."""
    out = tmp_path / "s"
    c = Config(**{**SMALL, "epochs": 3, "total_series_length": 20000})
    grid = {"truncated_backprop_length": [5, 8, 10]}
    run_sweep(c, {"truncated_backprop_length": [5]}, out_dir=out, jobs=1)
    stop = threading.Event()
    run_sweep(c, {"truncated_backprop_length": [8]}, out_dir=out, jobs=1, should_stop=stop.is_set,
              on_event=lambda e: e.kind == "epoch" and stop.set())
    finished, partial = out / "truncated_backprop_length=5_seed=0.npz", out / "truncated_backprop_length=8_seed=0.npz"
    assert load_run(finished).status == "completed" and load_run(partial).epochs_completed == 1
    before = {f: stamp(f) for f in (finished, partial)}

    flags = ["--epochs", "3", "--total-series-length", "20000", "--jobs", "2", "-o", out,
             *[f"--grid=truncated_backprop_length={','.join(map(str, v))}" for v in grid.values()]]
    kill_sweep_once_workers_run(flags, tmp_path, settle=1.0)  # 1 s: into the workers' imports and compiles
    assert {f: stamp(f) for f in before} == before
    for f in out.glob("*.npz"):
        assert load_run(f).epochs_completed > 0, f
    manifest = {p["file"]: p["status"] for p in read_manifest(out)["points"]}
    assert manifest[finished.name] == "completed"


@pytest.mark.slow
@pytest.mark.parametrize("signum, code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)], ids=["SIGTERM", "SIGINT"])
def test_a_signal_to_the_sweeps_process_group_keeps_every_point(tmp_path, signum, code):
    """Issue 21, case 2: a batch scheduler, `kill -TERM -PGID`, a container stop and `timeout` signal
    the whole group, workers included (`timeout` the driver too, 50 ms before). SIGTERM killed the
    workers: every point 'error' (BrokenProcessPool), no run file. Each point must stop at its next
    epoch and be kept as 'interrupted'."""
    out = tmp_path / "s"
    flags = ["--epochs", "100000", "--grid", "echo_step=2,3", "--jobs", "2", "-o", out]
    proc = subprocess.Popen(sweep_cmd(*flags), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            env=ENV, start_new_session=True)
    started = 0
    for line in proc.stderr:
        started += line.startswith("training ")
        if started == 2:
            break
    assert started == 2 and proc.poll() is None
    time.sleep(20)  # both workers past their compile, into epochs of a tenth of a second
    os.kill(proc.pid, signum)
    time.sleep(0.05)
    os.killpg(proc.pid, signum)
    err = proc.stderr.read()
    assert proc.wait(timeout=120) == code, err
    assert "Traceback" not in err and "BrokenProcessPool" not in err, err
    runs = {p.name: load_run(p) for p in out.glob("*.npz")}
    assert len(runs) == 2 and all(r.status == "interrupted" and r.epochs_completed >= 1 for r in runs.values()), err
    assert {p["status"] for p in read_manifest(out)["points"]} == {"interrupted"}


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                    found.append(int(entry.name))
            except (OSError, IndexError, ValueError):
                continue
    return found


@pytest.mark.slow  # a real sweep signalled
@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux /proc to see the workers start")
def test_sigterm_to_the_group_as_the_workers_start_breaks_nothing(tmp_path):
    """A worker signalled while it is still starting (before it could set its own handler) died of
    SIGTERM's default action and broke the pool: every point 'error'. Signalled the moment the
    first worker process exists, the sweep stops cleanly: exit 143, no point failed."""
    out = tmp_path / "s"
    proc = subprocess.Popen(sweep_cmd("--epochs", "100000", "--grid", "echo_step=2,3", "--jobs", "2", "-o", out),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=ENV,
                            start_new_session=True)
    deadline = time.monotonic() + 120
    while len(_children(proc.pid)) < 2 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)  # the resource tracker, then the first worker
    os.killpg(proc.pid, signal.SIGTERM)
    err = proc.stderr.read()
    assert proc.wait(timeout=120) == 143, err
    assert "error" not in err and "BrokenProcessPool" not in err and "Traceback" not in err, err
    assert {p["status"] for p in read_manifest(out)["points"]} <= {"pending", "interrupted"}


# ---------------------------------------------------------------- diverged beside healthy


@pytest.mark.slow  # a sweep's worker processes
def test_a_diverged_point_reports_no_held_out_numbers():
    """learning_rate 3e38 diverges in the program it shares with 0.3: its held-out results are
    null in JSON and NaN in its file; its neighbour's are real."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "lr"
        result = CliRunner().invoke(cli, ["sweep", "--grid", "learning_rate=0.3,3e38", "--epochs", "3",
                                          "--total-series-length", "20000", "--snapshot-every", "25", "-j", "1",
                                          "--json", "-o", str(out)])
        assert result.exit_code == 1, result.output
        lines = {json.loads(line)["point"]: json.loads(line) for line in result.stdout.splitlines()}
        good, bad = lines["learning_rate=0.3_seed=0"], lines["learning_rate=3e+38_seed=0"]
        assert good["status"] == "completed" and 0 <= good["eval_accuracy"] <= 1
        assert bad["status"] == "diverged" and bad["eval_accuracy"] is None and bad["eval_loss"] is None
        run = load_run(out / "learning_rate=3e+38_seed=0.npz")
        assert run.status == "diverged" and math.isnan(run.eval_accuracy) and math.isnan(run.eval_loss)
        entry = {p["file"]: p for p in read_manifest(out)["points"]}["learning_rate=3e+38_seed=0.npz"]
        assert entry["eval_accuracy"] is None
        assert np.isfinite(load_run(out / "learning_rate=0.3_seed=0.npz").eval_accuracy)



# ---------------------------------------------------------------- a Ray cluster loses a node


@pytest.mark.slow
def test_a_lost_ray_node_loses_no_run(tmp_path):
    """A two-node cluster (a head without CPUs, a worker node with two), as Ray's own tests build
    one. The worker node is removed once the first point is written: the point still training
    there is reported lost (the sweep fails, nothing crashes); on a new node the same sweep trains
    only that point, and leaves the finished one's file alone."""
    ray = pytest.importorskip("ray", reason="Ray is not installed (pip install '.[ray]')")
    from ray.cluster_utils import Cluster

    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0, "include_dashboard": False})
    try:
        node = cluster.add_node(num_cpus=2)
        ray.init(address=cluster.address, log_to_driver=False)
        # Both of the node's workers started and TensorFlow imported in each, so that the sweep's
        # two tasks start together and the short one ends first.
        ray.get([ray.remote(num_cpus=1)(_warm_up).remote(2.0) for _ in range(2)])
        # Two programs (epochs is not a per-model setting): a short one and one still training
        # when the short one is written.
        # (300 epochs: long enough that on a loaded machine both cannot end before the node goes.)
        c, grid, out = Config(**{**SMALL, "total_series_length": 20000}), {"epochs": [1, 300]}, tmp_path / "s"
        removed = []
        once = threading.Lock()

        def on_event(e):
            with once:  # events may come from more than one thread: the node goes once
                if e.kind == "finished" and not removed:
                    removed.append(e.result.name)
                    cluster.remove_node(node, allow_graceful=False)

        first = within(150, lambda: run_sweep(c, grid, out_dir=out, jobs=2, executor="ray", on_event=on_event))
        # Which point finishes first is the machine's business (on a loaded machine the long one can
        # win the race to a CPU); what matters: the one written is kept, the other is reported lost.
        (done,) = removed
        (lost,) = first.failed
        assert first.results[done].status == "completed" and lost.name != done
        assert lost.status == "error" and "lost with its Ray" in lost.message
        assert not (out / f"{lost.name}.npz").exists()
        assert {p["file"]: p["status"] for p in read_manifest(out)["points"]}[f"{lost.name}.npz"] == "error"
        kept = stamp(out / f"{done}.npz")

        cluster.add_node(num_cpus=1)
        events = []
        second = within(150, lambda: run_sweep(c, grid, out_dir=out, jobs=2, executor="ray", on_event=events.append))
        assert not second.failed and not second.unfinished
        assert [e.result.name for e in events if e.kind == "finished" and not e.result.skipped] == [lost.name]
        assert stamp(out / f"{done}.npz") == kept
        assert load_run(out / f"{lost.name}.npz").status == "completed"
    finally:
        ray.shutdown()
        cluster.shutdown()


def _warm_up(seconds: float) -> None:
    import echo_rnn_cli.trainer  # noqa: F401 - imports TensorFlow

    time.sleep(seconds)

