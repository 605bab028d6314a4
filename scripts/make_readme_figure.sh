#!/usr/bin/env bash
# Regenerate docs/quickstart.png, the README's quick-start figure, from a real run of the quick
# start's own two commands (the tutorial's settings, echo_step 3), so the picture is what a user gets.
# About a minute on a 2-core CPU.
#   scripts/make_readme_figure.sh                                     # `echo-rnn` on PATH
#   ECHO_RNN=".venv/bin/python -m echo_rnn_cli" scripts/make_readme_figure.sh
set -euo pipefail
cd "$(dirname "$0")/.."
read -r -a echo_rnn <<< "${ECHO_RNN:-echo-rnn}"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export MPLBACKEND=Agg
"${echo_rnn[@]}" train --echo-step 3 -o "$work/run.npz"   # named run.npz, as the figure's title shows
"${echo_rnn[@]}" plot "$work/run.npz" -o docs/quickstart.png
ls -l docs/quickstart.png
