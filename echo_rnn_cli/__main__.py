from ._start import take_ctrl_c

take_ctrl_c()  # before anything slow is imported (see ``_start``)

from .cli import main  # noqa: E402

main()
