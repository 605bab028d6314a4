#!/usr/bin/env bash
# A sweep in plain shell: which echo lengths can a truncation window learn?
#
# Trains one run per (echo step, window length) with `echo-rnn train --json`, keeps each run file in
# $OUT and every run's JSON line in $OUT/results.jsonl, then prints a small table. Arguments are
# passed to every `echo-rnn train` (e.g. --state-size 8 or --config configs/smoke.toml).
#
#   scripts/sweep_echo.sh                                   # echo 1 2 3 5 x window 5 15, 20 epochs
#   ECHO_STEPS="1 3" WINDOWS="3 8" EPOCHS=5 OUT=runs/try scripts/sweep_echo.sh --state-size 8
#
# A run that fails (it diverged, say) is reported and the loop goes on; the script then exits 1.
# `echo-rnn sweep` does the same in parallel, resumably, with one compiled program per shape.
set -euo pipefail

OUT=${OUT:-runs}
ECHO_STEPS=${ECHO_STEPS:-"1 2 3 5"}
WINDOWS=${WINDOWS:-"5 15"}
EPOCHS=${EPOCHS:-20}

mkdir -p "$OUT"
results="$OUT/results.jsonl"
: > "$results"
failed=0

for echo_step in $ECHO_STEPS; do
  for window in $WINDOWS; do
    name="echo${echo_step}-window${window}"
    # --json prints one line per run on stdout; -q keeps progress off stderr (warnings stay).
    if ! echo-rnn train --echo-step "$echo_step" --truncated-backprop-length "$window" --epochs "$EPOCHS" \
        --json -q -o "$OUT/$name.npz" "$@" >> "$results"; then
      echo "failed: $name" >&2
      failed=1
    fi
  done
done

# The JSON lines hold everything (see docs/training.md, --json); pick a few fields with sed alone.
field() { sed -E "s/.*\"$1\": (null|\"[^\"]*\"|[-0-9.e+]+).*/\\1/" <<< "$2"; }
printf '%-10s %-7s %-11s %-13s %s\n' echo_step window status "held-out acc" "final loss"
while IFS= read -r line; do
  printf '%-10s %-7s %-11s %-13.4f %.4f\n' \
    "$(field echo_step "$line")" "$(field truncated_backprop_length "$line")" \
    "$(field status "$line" | tr -d '"')" "$(field eval_accuracy "$line" | sed 's/null/nan/')" \
    "$(field final_loss "$line" | sed 's/null/nan/')"
done < "$results"
echo "wrote $(wc -l < "$results") runs to $OUT (JSON lines: $results)"
exit "$failed"
