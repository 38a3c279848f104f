"""``python -m srgan_plugin.test -opt FILE``: BasicSR's test CLI with the plugin imported explicitly and results/ in
the current working directory; exit statuses of :mod:`srgan_plugin.base.errors`."""
import os
import sys
from typing import Optional, Sequence

import srgan_plugin  # noqa: F401  (registration and compatibility patches)
from basicsr.test import test_pipeline

from srgan_plugin.base.errors import command_errors

PROG = 'python -m srgan_plugin.test'
INTERRUPTED = 'results/ holds the images written so far (the last one may be incomplete)'


def main(argv: Optional[Sequence[str]] = None) -> None:
    """Test with the options of ``argv`` (default: the command line; BasicSR's parser reads ``sys.argv``)."""
    if argv is not None:
        sys.argv[1:] = list(argv)
    with command_errors(PROG, INTERRUPTED):
        test_pipeline(os.getcwd())


if __name__ == '__main__':
    main()
