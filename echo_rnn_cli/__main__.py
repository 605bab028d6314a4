from ._start import take_ctrl_c  # first of all: see ``_start``

take_ctrl_c()

from .cli import main  # noqa: E402

main()
