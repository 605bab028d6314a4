#!/usr/bin/env bash
# Regenerate docs/quickstart.png, the README's quick-start figure, from a real run of the quick
# start's own commands (the tutorial's settings, echo_step 3), so the picture is what a user gets,
# with the numbers the docs quote of that run. docs/make.py does it (its part `default`; run
# docs/make.py alone for every figure and number of the docs). About 20 s on a 2-core CPU.
#   scripts/make_readme_figure.sh                                     # `python3` has echo-rnn
#   PYTHON=.venv/bin/python scripts/make_readme_figure.sh
#   ECHO_RNN=.venv/bin/echo-rnn scripts/make_readme_figure.sh         # that environment's python
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-python3}
if [[ -z "${PYTHON:-}" && -n "${ECHO_RNN:-}" ]]; then
  read -r -a echo_rnn <<< "$ECHO_RNN"
  case "${echo_rnn[0]}" in
    */echo-rnn) python="$(dirname "${echo_rnn[0]}")/python" ;;
    *) python="${echo_rnn[0]}" ;;  # `.venv/bin/python -m echo_rnn_cli`
  esac
fi
exec "$python" docs/make.py default
