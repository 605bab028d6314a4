from ._start import take_ctrl_c  # first of all: see ``_start``

take_ctrl_c()

from .cli import main  # noqa: E402 - imported after take_ctrl_c() on purpose: Ctrl-C is ours from here

main()
