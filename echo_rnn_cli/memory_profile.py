"""What the network remembers: its memory profile by lag, and the gradient's reach (NumPy only).

The **memory profile** answers "which past input does each prediction rest on?" by the direct test:
flip the input k steps back, run the network on with its state carried as in training (a long
series from a zero state, no resets at window edges), and measure how much the probability of the
symbol it predicted changes. Averaged over many steps and rows of a held-out series, for every lag k
from 0 to ``lags_for(config)``, which reaches past the window: the state is carried across window
edges, so a network may rest on inputs that no gradient ever reached.

The **gradient's reach** is what training sees: the norm of d loss / d h at each step back from a
window's end (the loss of the window's last step), per layer. Backpropagation stops at the
window's edge, so it is exactly zero from lag ``truncated_backprop_length`` on; inside the window the
tanh cell's fades (the vanishing gradient) and the gated cells' can hold (the carousel).

Both in float64 (so the flip of an input the network ignores changes nothing, to the bit), from
one held-out series per run (its own random stream), so records through training differ only by
the weights. ``record`` is what the trainer calls; ``explain`` is ``echo --explain``'s flip test.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .data import MEMORY_STREAM, rng_for
from .inference import cell_step, input_part, sigmoid

#: Epochs after which the trainer records (besides before the first, and after the last of a
#: call): dense early, where the loss falls, then about two a doubling; the same for every run
#: length, so a resumed run records where a straight one does. (A default run of 100 epochs then
#: has 15 records, which cost under 5% of its time: ``benchmarks/memory_cost.py``.)
SCHEDULE_PER_DOUBLING = 2
#: Rows of the held-out series and flips per row: 256 flips, each measured by itself, which puts a
#: learned echo at 0.99-1.00 and a network at chance below 0.02 at every lag (docs/memory.md), at
#: about 2 ms a record for the default network.
ROWS, FLIPS_PER_ROW = 16, 16
#: The longest lag measured, whatever the window or the echo: each record steps the network through
#: about three times this many steps in NumPy (an echo of 500 in a window of 1,000 is past the
#: tutorial's questions; such runs get their first 512 lags).
MAX_LAGS = 512
#: A profile whose largest mean change in probability is below this has no lag that matters: a
#: network at chance moves by about 0.01 for any flip (0.012 at most, measured for echo 3 in a
#: window of 3), one that learned its echo by 0.45 (half learned) to 1.0 at the echo's lag.
NO_MEMORY_BELOW = 0.05
#: At most this many probabilities (8 bytes each) in memory at once while flips are measured: many
#: classes or long lags take the flips in smaller groups instead of more memory.
CHUNK_VALUES = 2**22
#: At most this many other symbols stand in for a flipped input (all of them up to 8 classes).
MAX_SUBSTITUTES = 7


@dataclass(frozen=True)
class Profile:
    """One record: ``profile[k]`` is the mean change in the probability of the predicted symbol when
    the input k steps back is flipped; ``reach[l, k]`` the mean norm of d loss / d h of layer l,
    k steps back from a window's end (0 from the window's length on)."""

    profile: np.ndarray  # [L + 1]
    reach: np.ndarray    # [layers, L + 1]


def lags_for(config: Any) -> int:
    """The longest lag measured: twice the window, and at least echo_step + 5; at most ``MAX_LAGS``."""
    return min(MAX_LAGS, max(2 * config.truncated_backprop_length, config.echo_step + 5))


def records_after(epoch: int) -> bool:
    """Whether the trainer records after ``epoch`` epochs (besides the first and last of a call):
    every epoch up to 4, then about ``SCHEDULE_PER_DOUBLING`` a doubling (6, 8, 11, 16, 23, 32, 45, ...)."""
    if epoch <= 4:
        return epoch >= 1
    marks = {round(2 ** (j / SCHEDULE_PER_DOUBLING)) for j in range(int(np.log2(epoch) * SCHEDULE_PER_DOUBLING) + 2)}
    return epoch in marks


def peak(profile: np.ndarray) -> tuple[int | None, float | None]:
    """(the lag with the most weight, its share of the whole profile); (None, None) when the
    network rests on no input: no flip moves its prediction by ``NO_MEMORY_BELOW`` on average (an
    untrained network's profile is all but flat), or the profile is empty or not finite."""
    total = float(np.sum(profile)) if profile.size else 0.0
    if not np.isfinite(total) or float(np.max(profile, initial=0.0)) < NO_MEMORY_BELOW:
        return None, None
    lag = int(np.argmax(profile))
    return lag, float(profile[lag] / total)


# --- the forward pass, batched, with what the backward pass needs ------------------------------

def _weights64(weights: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {k: np.asarray(v, np.float64) for k, v in weights.items()}


def _run(w, cell: str, num_layers: int, num_classes: int, symbols: np.ndarray, state=None, keep: bool = False):
    """Symbols [N, T] from ``state`` (per layer (h, c) of [N, S]; zeros if None) -> the states after
    every step (per layer: h [N, T, S], and c for an lstm, else None) and, with ``keep``, every
    step's backward-pass values (per layer, per step). The probabilities: ``_probs`` of the top h."""
    n, steps = symbols.shape
    s = w["W2"].shape[0]
    if state is None:
        state = [(np.zeros((n, s)), np.zeros((n, s))) for _ in range(num_layers)]
    states, saved = [], []
    x = None
    for layer in range(num_layers):
        kernel, recurrent, bias = w[f"kernel_{layer}"], w[f"recurrent_{layer}"], w[f"bias_{layer}"]
        if layer == 0:  # one-hot times the kernel is the symbol's row of it; the scalar 0/1 scales its one row
            first = kernel[symbols] if num_classes > 2 else symbols[..., None] * kernel[0]
            xz = first + (bias[0] if cell == "gru" else bias)
        else:  # as 2-D products: NumPy's batched 3-D matmul costs several times more at these sizes
            xz = input_part(cell, x.reshape(n * steps, s), kernel, bias).reshape(n, steps, -1)
        h, c = state[layer]
        hs, aux = np.empty((n, steps, s)), []
        cs = np.empty((n, steps, s)) if cell == "lstm" else None  # only an lstm has a cell state to carry
        for t in range(steps):
            h, c, back = cell_step(cell, xz[:, t], h, c, recurrent, bias)
            hs[:, t] = h
            if cs is not None:
                cs[:, t] = c
            if keep:
                aux.append(back)
        states.append((hs, cs))
        saved.append(aux)
        x = hs
    return states, saved


def _probs(w, h: np.ndarray) -> np.ndarray:
    """The softmax layer on top-layer states [..., S] -> probabilities [..., C]."""
    logits = (h.reshape(-1, h.shape[-1]) @ w["W2"] + w["b2"]).reshape(*h.shape[:-1], -1)
    if logits.shape[-1] == 2:  # the logistic of the difference: a reduction over 2 is slow in NumPy
        one = sigmoid(logits[..., 1] - logits[..., 0])
        return np.stack([1 - one, one], axis=-1)
    e = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def _state_at(states, t: int):
    """Every layer's (h, c) after step t (c zeros but for an lstm)."""
    return [(h[:, t], np.zeros_like(h[:, t]) if c is None else c[:, t]) for h, c in states]


# --- the memory profile --------------------------------------------------------------------------

def held_out(config: Any, rows: int = ROWS, flips: int = FLIPS_PER_ROW) -> np.ndarray:
    """The symbols [rows, warm-up + flips + L + 1] the profile is measured on: a warm-up of L steps
    (the state settles as in training), then the flipped steps, then L steps to see their effect."""
    lags = lags_for(config)
    rng = rng_for(config.seed, MEMORY_STREAM)
    return rng.integers(0, config.num_classes, size=(rows, 2 * lags + flips + 1), dtype=np.int32)


def substitutes(symbols: np.ndarray, num_classes: int, rng: np.random.Generator) -> np.ndarray:
    """[N, K]: the symbols that replace each flipped one: the other symbol for 2 classes, all the
    others up to 8 classes, else ``MAX_SUBSTITUTES`` of them drawn at random."""
    others = np.arange(1, num_classes)
    if num_classes - 1 > MAX_SUBSTITUTES:
        others = np.stack([rng.choice(others, MAX_SUBSTITUTES, replace=False) for _ in symbols])
    return (symbols[:, None] + others) % num_classes


def flip_effects(w, cell: str, num_layers: int, num_classes: int, symbols: np.ndarray, row_of: np.ndarray,
                 starts: np.ndarray, lags: int, rng: np.random.Generator, base=None) -> np.ndarray:
    """[N, L + 1]: for flip i (step starts[i] of row row_of[i] of ``symbols`` [R, n]), the change k
    steps on in the probability of the symbol the unflipped network predicted there (the mean over
    the symbols that stand in; NaN past the row's end). The base run once per row, the flipped runs
    from its states, as many flips at a time as keep their probabilities within ``CHUNK_VALUES``.
    ``base``: that run's ``_run`` result, if made."""
    states, _ = base if base is not None else _run(w, cell, num_layers, num_classes, symbols)
    n = symbols.shape[1]
    out = np.full((starts.size, lags + 1), np.nan)
    chunk = max(1, CHUNK_VALUES // ((lags + 1) * num_classes * min(num_classes - 1, MAX_SUBSTITUTES)))
    for lo in range(0, starts.size, chunk):
        rows, first = row_of[lo:lo + chunk], starts[lo:lo + chunk]
        ahead = first[:, None] + np.arange(lags + 1)                 # the steps the flip can reach
        inside = ahead < n
        ahead = np.minimum(ahead, n - 1)
        subs = substitutes(symbols[rows, first], num_classes, rng)  # [F, K]
        k = subs.shape[1]
        seq = np.repeat(symbols[rows[:, None], ahead], k, axis=0)   # [F * K, L + 1]
        seq[:, 0] = subs.reshape(-1)
        had = (first > 0)[:, None]                                  # step 0 starts from the zero state
        state = [(np.repeat(np.where(had, h[rows, first - 1], 0.0), k, axis=0),
                  np.repeat(np.where(had, c[rows, first - 1], 0.0), k, axis=0) if c is not None
                  else np.zeros((first.size * k, h.shape[-1]))) for h, c in states]
        flipped = _probs(w, _run(w, cell, num_layers, num_classes, seq, state)[0][-1][0])
        unflipped = _probs(w, states[-1][0][rows[:, None], ahead])   # [F, L + 1, C]
        predicted = unflipped.argmax(-1)
        base_p = np.take_along_axis(unflipped, predicted[..., None], -1)[..., 0]
        flip_p = np.take_along_axis(flipped, np.repeat(predicted, k, axis=0)[..., None], -1)[..., 0]
        change = np.abs(flip_p - np.repeat(base_p, k, axis=0)).reshape(-1, k, lags + 1).mean(axis=1)
        out[lo:lo + chunk] = np.where(inside, change, np.nan)
    return out


def memory_profile(weights: dict[str, np.ndarray], config: Any) -> np.ndarray:
    """[L + 1]: the mean change in the probability of the predicted symbol when the input k steps
    back is flipped, over ``ROWS`` x ``FLIPS_PER_ROW`` flips of the held-out series (each flip
    measured by itself, after a warm-up of L steps)."""
    return _profile(_Held.of(weights, config))


@dataclass(frozen=True)
class _Held:
    """What the profile and the reach share: the weights in float64, the held-out symbols and the
    network's run over them from a zero state (made once a record)."""

    config: Any
    w: dict[str, np.ndarray]
    symbols: np.ndarray
    states: list

    @classmethod
    def of(cls, weights: dict[str, np.ndarray], config: Any) -> _Held:
        w, symbols = _weights64(weights), held_out(config)
        states, _ = _run(w, config.cell, config.num_layers, config.num_classes, symbols)
        return cls(config, w, symbols, states)


def _profile(held: _Held) -> np.ndarray:
    c = held.config
    lags, rows = lags_for(c), held.symbols.shape[0]
    # Fewer flips a row where several symbols stand in for each: the cost stays that of 2 classes.
    per_row = max(2, FLIPS_PER_ROW // min(c.num_classes - 1, MAX_SUBSTITUTES))
    row_of = np.repeat(np.arange(rows), per_row)
    starts = np.tile(lags + np.arange(per_row), rows)
    rng = rng_for(c.seed, MEMORY_STREAM, 1)
    change = flip_effects(held.w, c.cell, c.num_layers, c.num_classes, held.symbols, row_of, starts, lags, rng,
                          base=(held.states, None))
    return change.mean(axis=0)


# --- the gradient's reach ------------------------------------------------------------------------

def cell_back(cell: str, recurrent: np.ndarray, kernel: np.ndarray, saved: tuple, dh: np.ndarray,
              dc: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One step of a layer backwards: from d loss / d (h, c) after the step to d loss / d (h, c)
    before it and d loss / d (the step's input). ``saved``: what ``cell_step`` returned for it."""
    if cell == "rnn":
        (h,) = saved
        da = dh * (1 - h * h)
        return da @ recurrent.T, dc, da @ kernel.T
    if cell == "lstm":
        i, f, g, o, c_prev, tanh_c = saved
        dct = dc + dh * o * (1 - tanh_c * tanh_c)
        dz = np.concatenate([dct * g * i * (1 - i), dct * c_prev * f * (1 - f), dct * i * (1 - g * g),
                             dh * tanh_c * o * (1 - o)], axis=-1)
        return dz @ recurrent.T, dct * f, dz @ kernel.T
    z, r, hh, hz, h_prev = saved
    s = h_prev.shape[-1]
    dah = dh * (1 - z) * (1 - hh * hh)
    daz = dh * (h_prev - hh) * z * (1 - z)
    dar = dah * hz[..., 2 * s:] * r * (1 - r)
    dxz = np.concatenate([daz, dar, dah], axis=-1)
    dhz = np.concatenate([daz, dar, dah * r], axis=-1)
    return dh * z + dhz @ recurrent.T, dc, dxz @ kernel.T


def window_gradients(w, cell: str, num_layers: int, num_classes: int, symbols: np.ndarray, targets: np.ndarray,
                     state) -> list[np.ndarray]:
    """d loss / d h of every layer at every step of a window [N, T], where the loss is the
    cross-entropy of the window's last step and ``state`` the state carried into the window (held
    fixed: the gradient stops at the window's edge, as in training). Per layer: [N, T, S]."""
    states, saved = _run(w, cell, num_layers, num_classes, symbols, state, keep=True)
    n, steps = symbols.shape
    dlogits = _probs(w, states[-1][0][:, -1])
    dlogits[np.arange(n), targets[:, -1]] -= 1
    s = w["W2"].shape[0]
    grads = [np.zeros((n, steps, s)) for _ in range(num_layers)]
    carry = [(np.zeros((n, s)), np.zeros((n, s))) for _ in range(num_layers)]  # from step t + 1
    for t in range(steps - 1, -1, -1):
        from_above = dlogits @ w["W2"].T if t == steps - 1 else np.zeros((n, s))
        for layer in range(num_layers - 1, -1, -1):
            dh = carry[layer][0] + from_above
            grads[layer][:, t] = dh
            dh_prev, dc_prev, dx = cell_back(cell, w[f"recurrent_{layer}"], w[f"kernel_{layer}"], saved[layer][t],
                                             dh, carry[layer][1])
            carry[layer] = (dh_prev, dc_prev)
            from_above = dx
    return grads


def gradient_reach(weights: dict[str, np.ndarray], config: Any) -> np.ndarray:
    """[layers, L + 1]: the mean norm of d loss / d h, k steps back from a window's end, over the
    held-out rows (one window each, after a warm-up of whole windows); 0 from the window's length on."""
    return _reach(_Held.of(weights, config))


def _reach(held: _Held) -> np.ndarray:
    c, w, symbols, states = held.config, held.w, held.symbols, held.states
    lags, steps = lags_for(c), c.truncated_backprop_length
    warm = -(-lags // steps) * steps  # whole windows, as training cuts them
    if warm + steps > symbols.shape[1]:  # a window longer than the lags measured (they stop at MAX_LAGS)
        extra = rng_for(c.seed, MEMORY_STREAM, 2).integers(0, c.num_classes, (symbols.shape[0], steps))
        symbols = np.concatenate([symbols, extra.astype(np.int32)], axis=1)
    if states[0][0].shape[1] < warm:
        states, _ = _run(w, c.cell, c.num_layers, c.num_classes, symbols[:, :warm])
    targets = np.roll(symbols, c.echo_step, axis=1)  # the echo; the first steps are warm-up only
    grads = window_gradients(w, c.cell, c.num_layers, c.num_classes, symbols[:, warm:warm + steps],
                             targets[:, warm:warm + steps], _state_at(states, warm - 1))
    reach = np.zeros((c.num_layers, lags + 1))
    for layer, g in enumerate(grads):
        norms = np.linalg.norm(g[:, ::-1], axis=-1).mean(axis=0)  # k steps back from the end
        reach[layer, : min(steps, lags + 1)] = norms[: lags + 1]
    return reach


def record(weights: dict[str, np.ndarray], config: Any) -> Profile:
    """The memory profile and the gradient's reach of one network (what the trainer stores), from
    one run over the held-out series."""
    held = _Held.of(weights, config)
    return Profile(_profile(held).astype(np.float32), _reach(held).astype(np.float32))


# --- echo --explain ------------------------------------------------------------------------------

@dataclass(frozen=True)
class Explanation:
    """For each step t of a sequence: the earlier input (``lag`` steps back) whose flip changes the
    probability of the symbol predicted at t the most, and by how much (``change``, 0 to 1)."""

    lag: np.ndarray     # [T] int
    change: np.ndarray  # [T] float
    changes: np.ndarray  # [T, L + 1]: the change for every lag (NaN before the sequence's start)


#: The most work ``echo --explain`` does (multiply-adds and exponentials, see ``explain_work``):
#: every step flipped ``substitutes`` ways and run on ``lags`` steps, each with a softmax over all
#: classes. About 30 s on the 2-core AMD EPYC of docs/speed.md; more is refused up front, with the
#: longest sequence this network can explain within it (1,000 steps of a 20,000-class network took
#: 182 s, and the 100,000 echo accepts would have taken hours, issue 27).
MAX_EXPLAIN_WORK = 4 * 10**9


def explain_work(config: Any, steps: int) -> int:
    """What ``explain`` costs for ``steps`` symbols of a run's network: per flip, each substitute
    run over ``lags_for`` + 1 steps, a softmax over every class at each (float64)."""
    from .inference import step_work

    subs = min(int(config.num_classes) - 1, MAX_SUBSTITUTES)
    return steps * (subs + 1) * (lags_for(config) + 1) * step_work(config)


def check_explain_work(config: Any, steps: int) -> None:
    from .inference import SequenceError

    work = explain_work(config, steps)
    if work > MAX_EXPLAIN_WORK:
        most = max(0, MAX_EXPLAIN_WORK // explain_work(config, 1))
        raise SequenceError(f"--explain flips each of the {steps:,} symbols and runs the network "
                            f"{lags_for(config) + 1} steps on for each ({work:.2g} operations for this network, "
                            f"{config.num_classes:,} classes), more than the {MAX_EXPLAIN_WORK:.0e} it does at "
                            f"once; give at most {most:,} symbols with --explain")


def explain(weights: dict[str, np.ndarray], *, cell: str, num_layers: int, num_classes: int, symbols: np.ndarray,
            lags: int) -> Explanation:
    """The flip test on one sequence from a zero state (as ``echo`` runs it): every step flipped in
    turn, its effect on each later prediction up to ``lags`` steps on."""
    steps = symbols.shape[0]
    starts = np.arange(steps)
    change = flip_effects(_weights64(weights), cell, num_layers, num_classes, symbols[None].astype(np.int32),
                          np.zeros(steps, np.int64), starts, lags, rng_for(0, MEMORY_STREAM, 3))
    changes = np.full((steps, lags + 1), np.nan)
    for k in range(min(lags, steps - 1) + 1):  # change[s, k]: flipping step s, seen at step s + k
        changes[k:, k] = change[: steps - k, k]
    filled = np.nan_to_num(changes, nan=-1.0)
    lag = filled.argmax(axis=1)
    return Explanation(lag=lag, change=filled[np.arange(steps), lag], changes=changes)
