"""``python -m srgan_plugin.prepare COMMAND ...``: see :mod:`srgan_plugin.prepare.cli`."""
import sys

from srgan_plugin.prepare.cli import main

if __name__ == '__main__':
    sys.exit(main())
