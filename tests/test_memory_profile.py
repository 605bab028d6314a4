"""What the network remembers (issue 20): the memory profile by the flip test, the gradient's reach,
recorded by train, stored in the run file, shown by plot --memory, echo --explain, --json, summary
and TensorBoard. On real trainings and on networks built by hand whose memory is known exactly."""

import dataclasses
import json
import subprocess
import sys

import numpy as np
import pytest
from click.testing import CliRunner

from echo_rnn_cli import Config, load_run, save_run, train, train_many
from echo_rnn_cli import memory_profile as mp
from echo_rnn_cli.cli import cli
from echo_rnn_cli.inference import encode_inputs, weight_shapes
from echo_rnn_cli.runs import Run, RunFileError
from tests.conftest import SMALL

#: The notebook's default run: the tutorial's network, 8 epochs of 20,000 symbols. Seeds 0, 1, 3, 4
#: and 5 learn the echo in them (held-out accuracy above 0.999); 2, 6 and 7 are still (or again) at
#: chance (measured on the 2-core AMD EPYC; the exact math makes it so on every CPU).
LEARNS = dict(epochs=8, total_series_length=20000)


def random_weights(cell: str, layers: int, classes: int, state: int, seed: int = 1, scale: float = 0.8):
    rng = np.random.default_rng(seed)
    shapes = weight_shapes(cell=cell, num_layers=layers, num_classes=classes, state_size=state)
    return {k: rng.normal(0, scale, size=v) for k, v in shapes.items()}


def delay_line(lag: int, gain: float = 4.0) -> dict[str, np.ndarray]:
    """A tanh network of lag + 1 units built as a shift register: unit 0 holds the input (as +-),
    unit j the input j steps back, and the softmax reads the last unit only. Its predictions rest
    on the input ``lag`` steps back and on nothing else, exactly."""
    s = lag + 1
    kernel = np.zeros((1, s))
    kernel[0, 0] = gain
    recurrent = np.zeros((s, s))
    for j in range(lag):
        recurrent[j, j + 1] = gain
    bias = np.zeros(s)
    bias[0] = -gain / 2  # input 0 -> -tanh(2), 1 -> +tanh(2)
    w2 = np.zeros((s, 2))
    w2[lag] = [-gain, gain]
    return {"kernel_0": kernel, "recurrent_0": recurrent, "bias_0": bias, "W2": w2, "b2": np.zeros(2)}


def delay_config(lag: int, **extra) -> Config:
    return Config(**{**SMALL, "state_size": lag + 1, "echo_step": lag, "truncated_backprop_length": 4,
                     "init": "glorot", **extra})


# --- the measures, on networks whose answer is known -----------------------------------------------

@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_gradients_are_the_loss_gradient_by_finite_differences(cell):
    """d loss / d h of every layer and step, against central differences of the real forward pass."""
    layers, classes, state, rows, steps = 2, 3, 3, 2, 5
    w = random_weights(cell, layers, classes, state)
    rng = np.random.default_rng(2)
    symbols, targets = rng.integers(0, classes, (rows, steps)), rng.integers(0, classes, (rows, steps))
    carried = [(rng.normal(size=(rows, state)), rng.normal(size=(rows, state))) for _ in range(layers)]
    grads = mp.window_gradients(w, cell, layers, classes, symbols, targets, carried)

    def last_loss(layer, step, unit, eps):
        x = encode_inputs(symbols.reshape(-1), classes).astype(float).reshape(rows, steps, -1)
        state_now = [list(s) for s in carried]
        for t in range(steps):
            inp = x[:, t]
            for k in range(layers):
                xz = mp.input_part(cell, inp, w[f"kernel_{k}"], w[f"bias_{k}"])
                h, c, _ = mp.cell_step(cell, xz, *state_now[k], w[f"recurrent_{k}"], w[f"bias_{k}"])
                if (k, t) == (layer, step):
                    h = h.copy()
                    h[:, unit] += eps
                state_now[k], inp = [h, c], h
        logits = inp @ w["W2"] + w["b2"]
        p = np.exp(logits - logits.max(-1, keepdims=True))
        p /= p.sum(-1, keepdims=True)
        return -np.log(p[np.arange(rows), targets[:, -1]])

    for layer in range(layers):
        for step in range(steps):
            for unit in range(state):
                fd = (last_loss(layer, step, unit, 1e-6) - last_loss(layer, step, unit, -1e-6)) / 2e-6
                assert np.allclose(fd, grads[layer][:, step, unit], atol=1e-8), (layer, step, unit)


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_the_gradient_reaches_exactly_to_the_window_edge(cell):
    c = Config(**{**SMALL, "cell": cell, "num_layers": 2, "state_size": 5, "truncated_backprop_length": 6})
    reach = mp.gradient_reach(random_weights(cell, 2, 2, 5), c)
    assert reach.shape == (2, mp.lags_for(c) + 1)
    assert np.all(reach[:, :6] > 0) and np.all(reach[:, 6:] == 0)


def test_the_profile_finds_the_one_input_a_network_rests_on():
    """A shift register that reads the input 2 steps back: the flip test finds lag 2, with the
    whole change in probability there, and exactly nothing at any other lag."""
    c = delay_config(2)
    profile = mp.memory_profile(delay_line(2), c)
    assert profile.shape == (mp.lags_for(c) + 1,)
    assert profile[2] > 0.9 and np.all(np.delete(profile, 2) == 0)
    assert mp.peak(profile) == (2, 1.0)


def test_flipping_inputs_a_network_ignores_changes_nothing():
    w = delay_line(2)
    w["kernel_0"][:] = 0  # blind to its input
    profile = mp.memory_profile(w, delay_config(2))
    assert np.all(profile == 0) and mp.peak(profile) == (None, None)


@pytest.mark.parametrize("classes", [3, 12])
def test_more_classes_average_over_the_symbols_that_stand_in(classes):
    c = Config(**{**SMALL, "num_classes": classes, "state_size": 6})
    profile = mp.memory_profile(random_weights("rnn", 1, classes, 6), c)
    assert profile.shape == (mp.lags_for(c) + 1,) and np.all((profile >= 0) & (profile <= 1)) and profile[0] > 0


def test_the_schedule_is_dense_early_and_the_same_for_every_run_length():
    marks = [e for e in range(1, 200) if mp.records_after(e)]
    assert marks[:6] == [1, 2, 3, 4, 6, 8]
    assert 8 < len(marks) < 20 and {16, 32, 64, 128} <= set(marks)


# --- recorded by train ----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def learned():
    return train(Config(**LEARNS))


def assert_remembers_its_echo(run):
    """The test the issue asks for: at the end the profile's largest entry is at lag echo_step and
    holds most of the weight (0.96 to 0.999 measured over the seeds that learn); before training, no peak."""
    lag, share = run.memory_peak
    assert run.eval_accuracy > 0.99, run.eval_accuracy
    assert lag == run.config.echo_step and share > 0.9, (lag, share)
    assert mp.peak(run.memory_profile[0]) == (None, None), run.memory_profile[0]


def test_a_trained_default_run_rests_on_its_echo(learned):
    assert list(learned.memory_epoch) == [0, 1, 2, 3, 4, 6, 8]
    assert learned.memory_profile.shape == (7, 31) and learned.memory_reach.shape == (7, 1, 31)
    assert_remembers_its_echo(learned)
    assert np.all(learned.memory_reach[:, :, 15:] == 0)


@pytest.mark.slow  # eight models trained together
def test_every_seed_tried_rests_on_its_echo_once_it_learned_and_on_nothing_before():
    runs = train_many([Config(**LEARNS, seed=s) for s in range(8)])
    learned = [r for r in runs if r.eval_accuracy > 0.99]
    assert len(learned) >= 4
    for run in learned:
        assert_remembers_its_echo(run)
    for run in runs:
        if run not in learned:  # at chance: it rests on no input at all, the echo least of all
            assert run.eval_accuracy < 0.6 and run.memory_peak == (None, None), run.config.seed


def test_a_run_at_chance_has_no_peak_at_its_echo():
    """An echo longer than the window cannot be learned: the held-out accuracy stays at chance and
    nothing the network rests on is the echo."""
    run = train(Config(**LEARNS, truncated_backprop_length=3, echo_step=5))
    assert run.eval_accuracy < 0.6
    lag, _ = run.memory_peak
    assert lag != 5 and run.memory_profile[-1][5] < 0.05, run.memory_profile[-1]


def test_records_survive_the_file_and_a_resume_and_company(tmp_path):
    small = {**SMALL, "epochs": 3}
    straight = train(Config(**small))
    first = train(Config(**{**small, "epochs": 2}))
    save_run(first, tmp_path / "r.npz")
    resumed = train(Config(**small), resume=load_run(tmp_path / "r.npz"))
    together = train_many([Config(**small), Config(**small, seed=1)])[0]
    for run in (resumed, together, load_run(save_run(straight, tmp_path / "s.npz"))):
        for key in ("memory_epoch", "memory_profile", "memory_reach"):
            assert np.array_equal(getattr(run, key), getattr(straight, key)), key


def test_json_and_summary_name_the_lag_it_rests_on(learned, tmp_path):
    save_run(learned, tmp_path / "a.npz")
    summary = learned.summary("a.npz")
    assert summary["memory_lag"] == 3 and 0.9 < summary["memory_share"] <= 1
    out = CliRunner().invoke(cli, ["summary", str(tmp_path), "--format", "json"])
    assert out.exit_code == 0 and json.loads(out.stdout)[0]["memory_lag"] == 3


# --- the run file ---------------------------------------------------------------------------------

def crafted(tmp_path, learned, **arrays):
    path = save_run(learned, tmp_path / "ok.npz")
    with np.load(path) as data:
        contents = dict(data)
    contents.update(arrays)
    for key in [k for k, v in arrays.items() if v is None]:
        del contents[key]
    bad = tmp_path / "bad.npz"
    np.savez(bad, **contents)
    return bad


@pytest.mark.parametrize("arrays, fragment", [
    ({"memory_profile": np.zeros((7, 9), np.float32)}, "do not fit 7 records"),
    ({"memory_reach": np.zeros((7, 2, 31), np.float32)}, "do not fit 7 records"),
    ({"memory_profile": np.full((7, 31), 2.0, np.float32)}, "changes in probability"),
    ({"memory_reach": np.full((7, 1, 31), np.nan, np.float32)}, "finite norms"),
    ({"memory_epoch": np.array([0, 1, 2, 3, 4, 8, 6], np.int32)}, "rising list"),
    ({"memory_epoch": np.arange(7, dtype=np.int32) * 5}, "rising list"),
    ({"memory_reach": None}, "has memory_epoch, memory_profile but not memory_reach"),
], ids=["profile-lags", "reach-layers", "above-1", "nan", "not-rising", "beyond-done", "partial"])
def test_crafted_memory_records_are_refused_in_one_line(tmp_path, learned, arrays, fragment):
    bad = crafted(tmp_path, learned, **arrays)
    with pytest.raises(RunFileError, match=fragment):
        load_run(bad)
    result = CliRunner().invoke(cli, ["plot", str(bad), "--memory"])
    assert result.exit_code == 2 and fragment in result.stderr and "Traceback" not in result.stderr


def test_files_from_before_the_records_load_without_them(repo_root):
    run = load_run(repo_root / "tests" / "data" / "run_v1.npz")
    assert run.memory_epoch.size == 0 and run.memory_peak == (None, None)
    assert run.summary()["memory_lag"] is None


# --- plot --memory ----------------------------------------------------------------------------------

def test_plot_memory_draws_each_run_and_overlays_several(tmp_path, learned):
    a = save_run(learned, tmp_path / "a.npz")
    b = save_run(train(Config(**{**SMALL, "cell": "gru"})), tmp_path / "b.npz")
    one = CliRunner().invoke(cli, ["plot", str(a), "--memory"])
    assert one.exit_code == 0, one.output
    assert (tmp_path / "a-memory.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "7 memory records" in one.stderr
    several = CliRunner().invoke(cli, ["plot", str(a), str(b), "--memory"])
    assert several.exit_code == 0 and (tmp_path / "memory.png").stat().st_size > 10_000


def test_plot_memory_reads_at_a_glance(learned):
    """The figure's own words: where the network rests at the end, lines at the echo and the edge."""
    from echo_rnn_cli.figures.memory import memory_figure

    fig = memory_figure([learned], ["a.npz"])
    titles = [ax.get_title() for ax in fig.axes]
    labels = [label for ax in fig.axes for label in ax.get_legend_handles_labels()[1]]
    assert any("at the end: rests on lag 3" in t for t in titles), titles
    assert "echo_step 3" in labels and "window edge (15 steps)" in labels


def test_plot_memory_of_two_runs_tells_their_window_edges_apart(learned):
    """Two runs of different windows: each window-edge line in its run's colour and named (issue 29:
    both were black); the loss panel on a log scale with a guess's loss marked, so a fall from 0.69
    to 0.001 reads at a glance."""
    from matplotlib.colors import to_hex

    from echo_rnn_cli.figures.memory import memory_figure

    other = dataclasses.replace(learned, config=learned.config.replace(truncated_backprop_length=4))
    fig = memory_figure([learned, other], ["a.npz", "b.npz"])
    overlay = fig.axes[-1]
    curves = {line.get_label().split(" ")[0]: to_hex(line.get_color()) for line in overlay.lines
              if line.get_label().endswith(")") and "window edge" not in line.get_label()}
    edges = {line.get_label(): to_hex(line.get_color()) for line in overlay.lines
             if line.get_label().startswith("window edge")}
    assert edges == {"window edge 4: b.npz": curves["b.npz"], "window edge 15: a.npz": curves["a.npz"]}
    assert curves["a.npz"] != curves["b.npz"]
    losses = [ax for ax in fig.axes if ax.get_title().startswith("mean loss")]
    assert len(losses) == 2 and all(ax.get_xscale() == "log" for ax in losses)
    assert any(line.get_label() == "a guess: ln 2" for line in losses[0].lines)


@pytest.mark.parametrize("args, fragment", [
    (["--states"], "cannot be combined with --states"),
    (["--rows", "2"], "--rows does not apply to --memory"),
])
def test_plot_memory_refuses_what_does_not_apply(tmp_path, learned, args, fragment):
    a = save_run(learned, tmp_path / "a.npz")
    result = CliRunner().invoke(cli, ["plot", str(a), "--memory", *args])
    assert result.exit_code == 2 and fragment in result.stderr


def test_plot_memory_of_an_old_file_says_why_not(repo_root, tmp_path):
    result = CliRunner().invoke(cli, ["plot", str(repo_root / "tests" / "data" / "run_v1.npz"), "--memory",
                                      "-o", str(tmp_path / "m.png")])
    assert result.exit_code == 2 and "has no memory records" in result.stderr
    assert not (tmp_path / "m.png").exists()


def test_plot_memory_does_not_import_tensorflow(tmp_path, learned):
    a = save_run(learned, tmp_path / "a.npz")
    code = ("import sys; from echo_rnn_cli.cli import cli\n"
            f"try:\n    cli.main(['plot', {str(a)!r}, '--memory', '-q'])\nexcept SystemExit as e:\n"
            "    assert e.code == 0, e.code\n"
            "assert 'tensorflow' not in sys.modules, 'tensorflow was imported'")
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, timeout=120)


# --- echo --explain -------------------------------------------------------------------------------

def test_explain_names_the_input_each_prediction_rests_on(tmp_path, learned):
    a = save_run(learned, tmp_path / "a.npz")
    result = CliRunner().invoke(cli, ["echo", str(a), "--random", "60", "--explain", "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert len(out["rests_on"]) == len(out["change"]) == 60
    assert out["rests_on"][3:] == [3] * 57 and min(out["change"][3:]) > 0.9
    lines = CliRunner().invoke(cli, ["echo", str(a), "0110100111", "--explain"]).stdout.splitlines()
    assert lines[0].startswith("input") and lines[3].startswith("rests on") and lines[3][14:] == "3333333"


def test_explain_on_a_network_built_to_read_two_steps_back(tmp_path):
    c = delay_config(2)
    run = Run(config=c, params={k: v.astype(np.float32) for k, v in delay_line(2).items()}, epochs_completed=2)
    found = mp.explain(run.params, cell="rnn", num_layers=1, num_classes=2, symbols=np.array([0, 1, 1, 0, 1, 0, 0, 1]),
                       lags=mp.lags_for(c))
    assert list(found.lag[2:]) == [2] * 6 and np.all(found.change[2:] > 0.9)
    assert np.all(np.nan_to_num(found.changes[2:], nan=0)[:, [0, 1, 3]] == 0)


# --- TensorBoard ----------------------------------------------------------------------------------

def test_tensorboard_gets_the_lag_and_the_profiles(tmp_path, learned):
    from echo_rnn_cli.tensorboard import TensorBoardLogger
    from tests.conftest import event_series, read_events

    with TensorBoardLogger(tmp_path / "tb", learned.config) as logger:
        logger.log_end(learned)
    ea = read_events(tmp_path / "tb")
    assert event_series(ea, "memory/lag")[-1] == (8, 3)
    assert len(ea.Tensors("memory/profile")) == len(ea.Tensors("memory/reach")) == 7


def test_many_classes_are_measured_within_bounded_memory():
    """20,000 classes: one-hot inputs are never built (np.eye would take 1.6 GB first) and the
    flips go in groups that keep their probabilities within memory.CHUNK_VALUES."""
    import tracemalloc

    c = Config(**{**SMALL, "num_classes": 20000})
    tracemalloc.start()
    try:
        record = mp.record(random_weights("rnn", 1, 20000, 4), c)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 400 * 2**20, peak
    assert record.profile.shape == (31,) and np.all(np.isfinite(record.reach))
