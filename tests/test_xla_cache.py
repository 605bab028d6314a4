"""The on-disk cache of compiled programs: shared between processes, never in the way."""

import json
import os
import subprocess
import sys

from echo_rnn_cli import xla_cache

SCRIPT = """
import json
from echo_rnn_cli import Config, train, xla_cache
run = train(Config(total_series_length=1500, epochs=1, snapshot_every=25))
print(json.dumps({"published": xla_cache.published, "stage": str(xla_cache.staging_folder()),
                  "shared": str(xla_cache.shared_folder()), "loss": run.loss.tolist(),
                  "eval": run.eval_loss}))
"""


def run_small(cache) -> dict:
    env = dict(os.environ, ECHO_RNN_XLA_CACHE=str(cache), TF_CPP_MIN_LOG_LEVEL="3")
    proc = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_root_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("ECHO_RNN_XLA_CACHE", str(tmp_path / "c"))
    assert xla_cache.root() == tmp_path / "c"
    for off in ("0", "off", "", "false"):
        monkeypatch.setenv("ECHO_RNN_XLA_CACHE", off)
        assert xla_cache.root() is None
    monkeypatch.delenv("ECHO_RNN_XLA_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert xla_cache.root() == tmp_path / "xdg" / "echo-rnn" / "xla"


def test_second_process_loads_what_the_first_compiled(tmp_path):
    first = run_small(tmp_path)
    shared = tmp_path / first["shared"]
    assert first["published"] >= 2  # the epoch and the evaluation
    entries = sorted(p.name for p in shared.glob("*.pb"))
    assert len(entries) == first["published"]
    assert not os.path.exists(first["stage"])  # the staging folder goes with its process

    # A staging folder left by a killed process is cleared by the next one.
    stale = shared / "stage-999999999-x"
    stale.mkdir()
    second = run_small(tmp_path)
    assert second["published"] == 0  # nothing compiled: everything came from the cache
    assert sorted(p.name for p in shared.glob("*.pb")) == entries
    assert not stale.exists()
    assert (second["loss"], second["eval"]) == (first["loss"], first["eval"])


def test_unusable_cache_folder_only_costs_compile_time(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    result = run_small(blocker / "cache")
    assert result["published"] == 0 and result["stage"] == "None"


def test_only_the_newest_entries_are_kept(monkeypatch, tmp_path):
    monkeypatch.setattr(xla_cache, "MAX_ENTRIES", 2)
    for i in range(4):
        entry = tmp_path / f"e{i}.pb"
        entry.write_bytes(b"x")
        os.utime(entry, (1000 + i, 1000 + i))
    xla_cache._prune(tmp_path)
    assert sorted(p.name for p in tmp_path.glob("*.pb")) == ["e2.pb", "e3.pb"]


def test_child_processes_do_not_inherit_the_staging_folder():
    from echo_rnn_cli._tf import tf  # noqa: F401 - sets the cache up, if it is on

    assert "tf_xla_persistent_cache_directory" not in os.environ.get("TF_XLA_FLAGS", "")
